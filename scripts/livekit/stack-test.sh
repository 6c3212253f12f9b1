#!/usr/bin/env bash
# The whole product against real parts, the way it is deployed:
#   livekit-server  <-  `proto-trainer serve` (admin service + voice agent as its supervised child
#                        process, SQLite, seeded demo data; turns straight to the database;
#                        OpenAI = the simulator)
#                   <-  LiveKit's Python client as the counselor (voice_client.py), who signs in
#                        and gets its token from POST /api/livekit/token (stack_counselor.py)
# The counselor speaks three utterances; six turns are in the store (read through the API)
# during the call; after the hang-up the evaluation is stored within the simulator's latency + 1 s
# (the measured milliseconds are printed); the agent's /metrics then shows the call's per-turn
# metrics.
#
# FAULT=agent_kill: two calls at once (calls A and B, two counselors); after A's first answer the
#   agent child is killed (SIGKILL) and both counselors hang up. /healthz, probed every 100 ms
#   throughout, answers 200 within 1 s; the death is logged with its reason and the agent
#   restarted; a third call (C) is answered and graded; every turn the killed agent logged as
#   final for A or B is stored, once.
# FAULT=admin_kill: the same two calls; after A's first answer `serve` itself is killed (SIGKILL)
#   and started again 3 s later. Its orphaned agent child finishes both calls (six turns each
#   stored once, in order, both graded by the new service), call C goes to the new agent, and
#   the orphan exits once its calls have ended.
#
# FAULT=admin_down: the agent runs apart (`proto-trainer agent`, the internal API with the
#   call's own credential) beside `proto-trainer admin`; after the first answer the admin process
#   is stopped for 10 s and started again: every spoken turn is in the store exactly once, in
#   order, and the call is still graded. The agent's own metrics port is scraped.
# FAULT=sigterm: one SIGTERM to `proto-trainer serve` as the second answer is heard: the call ends as
#   agentShutdown (written through the store before the service stops), the session is completed,
#   not left active, its turns (the answer cut where it stopped) stored once, in order, and its
#   grading queued; the process exits 0.
# Installs and builds outside; runs every peer inside a fresh loopback-only network namespace.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
repo="$(cd "$here/../.." && pwd)"
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export FAULT="${FAULT:-}"

if [[ "${1:-}" != "--inside" ]]; then
  "$here/install.sh"
  # `cargo xtask ci` builds every binary once, with the test run's features (PROTO_TRAINER_PREBUILT):
  # a build here with this package subset's features would recompile dependencies.
  [[ -n "${PROTO_TRAINER_PREBUILT:-}" ]] ||
    cargo build --quiet --manifest-path "$repo/Cargo.toml" -p proto-trainer -p proto-trainer-openai-sim --bins
  make_log_dir lk-stack
  export LK_API_KEY="devkey"
  export LK_API_SECRET="devsecret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  say() { espeak-ng -w "$LOG_DIR/raw.wav" "$2" 2>/dev/null && sox "$LOG_DIR/raw.wav" -r 48000 -c 1 -b 16 "$LOG_DIR/$1.wav"; }
  say u1 "Hello, this is the crisis line. How can I help you tonight?"
  say u2 "That sounds really hard. Can you tell me more?"
  say u3 "I hear you. Are you safe right now?"
  echo "logs: $LOG_DIR" >&2
  exec "$here/netns-run.sh" "$0" --inside
fi

# ---- inside the namespace ----
export LK_PORT=7880 LK_UDP_PORT=7882 LK_TCP_PORT=7881
sim_port=8089 admin_port=3103 metrics_port=9464
base="http://127.0.0.1:$admin_port"
"$here/render-config.sh" >"$LOG_DIR/livekit.yaml"
bin="$CARGO_TARGET_DIR/debug/proto-trainer"

pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -s "$LOG_DIR/admin.pid" ]] && kill "$(cat "$LOG_DIR/admin.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  ((rc == 0)) || dump_logs service.log agent.log sim.log client.log result.json client-a.log client-b.log \
    client-c.log result-a.json result-b.json result-c.json server.log
  finish_log_dir "$rc"
}
trap cleanup EXIT
quote() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
rule() { # utterance transcript reply
  printf '{"endpoint":"realtime","utterance":%s,"transcript":%s,"reply":{"text":%s}}' "$1" "$(quote "$2")" "$(quote "$3")"
}
{
  echo "["
  rule 1 "Hello, this is the crisis line. How can I help you tonight?" \
    "Hi. I have not been sleeping and everything feels heavy lately."; echo ","
  rule 2 "That sounds really hard. Can you tell me more?" \
    "Work has been falling apart and my sister stopped talking to me."; echo ","
  rule 3 "I hear you. Are you safe right now?" "I think so. I am at home and I am not going to do anything tonight."
  echo "]"
} >"$LOG_DIR/rules.json"

"$CACHE/bin/livekit-server" --config "$LOG_DIR/livekit.yaml" >"$LOG_DIR/server.log" 2>&1 &
pids+=($!)
"$CARGO_TARGET_DIR/debug/openai-sim" --bind "127.0.0.1:$sim_port" --rules "$LOG_DIR/rules.json" \
  >"$LOG_DIR/sim.out" 2>"$LOG_DIR/sim.log" &
pids+=($!)

export RUST_LOG="${RUST_LOG:-info,str0m=warn,sqlx=warn}"
export DATABASE_URL="sqlite://$LOG_DIR/trainer.db?mode=rwc" DEMO_MODE=true PORT=$admin_port BIND_ADDR=127.0.0.1
export OPENAI_BASE_URL="http://127.0.0.1:$sim_port/v1" OPENAI_API_KEY="sk-sim"
export LIVEKIT_URL="ws://127.0.0.1:$LK_PORT" LIVEKIT_API_KEY="$LK_API_KEY" LIVEKIT_API_SECRET="$LK_API_SECRET"
export RECORDINGS_DIR="$LOG_DIR/recordings" VOICE_SILENCE_SECS=60 JOB_POLL_MS=500
# The service's /metrics answers only this bearer token (the agent's own port needs none).
export METRICS_TOKEN="stack-test-metrics-token"
"$bin" seed --demo >"$LOG_DIR/seed.out"
wait_port $LK_PORT 150
wait_port $sim_port 150

client_args=(--utterance "$LOG_DIR/u1.wav" --utterance "$LOG_DIR/u2.wav" --utterance "$LOG_DIR/u3.wav")

if [[ $FAULT == agent_kill || $FAULT == admin_kill ]]; then
  # Two calls at once under `serve`, then one side killed (SIGKILL) after call A's first answer.
  py="$CACHE/livekit-venv/bin/python"
  start_serve() {
    "$bin" serve >>"$LOG_DIR/service.log" 2>&1 &
    serve_pid=$!
    pids+=($serve_pid)
    echo "$serve_pid" >"$LOG_DIR/serve.pid"
  }
  # registered N: waits until the service log shows N agent registrations.
  registered() {
    for _ in $(seq 300); do (($(grep -c "worker registered" "$LOG_DIR/service.log") >= $1)) && return 0; sleep 0.1; done
    return 1
  }
  start_serve
  wait_port $admin_port 150
  registered 1 || { echo "the agent child never registered" >&2; exit 1; }
  # /healthz every 100 ms from now to the end: each answer's time and status, one per line.
  (while [[ ! -e "$LOG_DIR/health.stop" ]]; do
    curl -s -o /dev/null -m 2 -w '%{time_total} %{http_code}\n' "$base/healthz" >>"$LOG_DIR/health.log" || echo "2 000" >>"$LOG_DIR/health.log"
    sleep 0.1
  done) &
  prober=$!
  # The fault, run by call A's client after its first answer. agent_kill: the agent child (the
  # serve process's only child); the counselors then hang up (a killed agent answers nothing
  # more). admin_kill: the serve process itself; its agent child, now an orphan, goes on.
  cat >"$LOG_DIR/kill.sh" <<EOF
#!/usr/bin/env bash
serve=\$(cat "$LOG_DIR/serve.pid")
child=\$(pgrep -P \$serve -f 'agent --supervised')
echo "\$child" >"$LOG_DIR/child.pid"
if [[ $FAULT == agent_kill ]]; then kill -KILL \$child; else kill -KILL \$serve; fi
date +%s.%N >"$LOG_DIR/killed.at"
[[ $FAULT == agent_kill ]] && touch "$LOG_DIR/stop"
EOF
  chmod +x "$LOG_DIR/kill.sh"
  counselor_call() { # name counselor-index [stack_counselor options...] -- [voice_client options...]
    local name=$1 index=$2
    shift 2
    local opts=()
    while [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    "$py" "$here/stack_counselor.py" --base "$base" --turns-file "$LOG_DIR/turns-$name.jsonl" --counselor "$index" \
      "${opts[@]}" -- "$py" "$here/voice_client.py" --url unused --api-key unused --api-secret unused --room unused \
      --scenario conversation "${client_args[@]}" "$@" 2>"$LOG_DIR/client-$name.log" >"$LOG_DIR/result-$name.json"
  }
  set +e
  if [[ $FAULT == agent_kill ]]; then
    counselor_call a 0 --killed -- --stop-file "$LOG_DIR/stop" --mid-cmd "$LOG_DIR/kill.sh" &
    call_a=$!
    sleep 1.5
    counselor_call b 1 --killed -- --stop-file "$LOG_DIR/stop" &
    call_b=$!
  else
    # Grading after the parent's death: the orphan's wake-ups go nowhere, so the new service's
    # job poll (JOB_POLL_MS) finds it.
    counselor_call a 0 --grading-limit-ms 5000 -- --mid-cmd "$LOG_DIR/kill.sh" &
    call_a=$!
    sleep 1.5
    counselor_call b 1 --grading-limit-ms 5000 -- &
    call_b=$!
  fi
  for _ in $(seq 600); do [[ -s "$LOG_DIR/killed.at" ]] && break; sleep 0.1; done
  status=0
  [[ -s "$LOG_DIR/killed.at" ]] || { echo "the fault never ran" >&2; status=1; }
  if [[ $FAULT == admin_kill ]]; then
    # The operator's (or systemd's) restart, 3 s later: a new service and a new agent child.
    sleep 3
    start_serve
    wait_port $admin_port 150
  fi
  wait $call_a || { echo "call A failed: $(cat "$LOG_DIR/result-a.json")" >&2; status=1; }
  wait $call_b || { echo "call B failed: $(cat "$LOG_DIR/result-b.json")" >&2; status=1; }
  # The supervisor restarted the agent (agent_kill), or the new service started one (admin_kill):
  # a new call is answered and graded like any other.
  registered 2 || { echo "no agent registered after the kill" >&2; status=1; }
  counselor_call c 2 -- || { echo "call C (after the kill) failed: $(cat "$LOG_DIR/result-c.json")" >&2; status=1; }
  touch "$LOG_DIR/health.stop"
  wait $prober
  child=$(cat "$LOG_DIR/child.pid")
  if [[ $FAULT == admin_kill ]]; then
    # The orphan took no new call and left once its calls had ended.
    for _ in $(seq 100); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$child" 2>/dev/null && { echo "the orphaned agent $child is still running" >&2; kill -KILL "$child"; status=1; }
  fi
  set -e
  "$py" - "$LOG_DIR" "$FAULT" "$child" <<'EOF' || status=1
import json, re, sqlite3, sys
log, fault, child = sys.argv[1:4]
fails = []
service = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{log}/service.log").read())
db = sqlite3.connect(f"{log}/trainer.db")
results = {n: json.load(open(f"{log}/result-{n}.json")) for n in "abc"}
out = {}
for name in "ab":
    session = results[name]["session"]
    stored = [r[0] for r in db.execute(
        "SELECT segment_id FROM transcript_turns WHERE session_id = ? ORDER BY started_ms", (session,))]
    # Every turn the agent made final (and logged) for this call is in the store: those of the
    # killed agent before it died, and for admin_kill all of them, the admin being dead meanwhile.
    final = set(re.findall(r"turn segment=(%s-\S+)" % session.replace("-", ""), service))
    out[name] = {"stored": len(stored), "final": len(final)}
    if not final <= set(stored):
        fails.append(f"call {name}: turns made final but not stored: {sorted(final - set(stored))}")
    if len(stored) != len(set(stored)):
        fails.append(f"call {name}: a turn stored twice")
    want = 2 if fault == "agent_kill" else 6
    if name == "a" and len(stored) < want:
        fails.append(f"call a: {len(stored)} turns stored, want at least {want}")
health = [l.split() for l in open(f"{log}/health.log") if l.strip()]
slowest = max(float(t) for t, _ in health)
bad = [c for _, c in health if c != "200"]
out["healthz"] = {"probes": len(health), "slowest_ms": round(slowest * 1000), "not_200": len(bad)}
if fault == "agent_kill":
    # The admin service answered throughout the agent's death and restart.
    if slowest >= 1.0 or bad:
        fails.append(f"/healthz: slowest {slowest:.3f} s, {len(bad)} answers not 200")
    died = [l for l in service.splitlines() if "the voice agent process died" in l]
    if not died or "SIGKILL" not in died[0]:
        fails.append(f"the agent's death is not logged with its reason: {died}")
    if service.count("voice agent process started") < 2:
        fails.append("the supervisor did not restart the agent")
else:
    if f"the admin service (this agent's parent) is gone" not in service:
        fails.append("the orphaned agent did not notice its parent's death")
out["fails"] = fails
print(json.dumps(out), file=sys.stderr)
sys.exit(1 if fails else 0)
EOF
  kill -TERM "$serve_pid" 2>/dev/null || true
  wait_exit "$serve_pid"
  echo "service exit after SIGTERM: $EXIT_STATUS" >&2
  [[ $EXIT_STATUS == 0 ]] || status=1
  echo "stack test ($FAULT): $([[ $status == 0 ]] && echo PASS || echo FAIL)$(logs_note "$status")" >&2
  exit "$status"
fi
if [[ $FAULT == admin_down ]]; then
  # Apart: the admin service alone (restartable) and the agent through the internal API.
  cat >"$LOG_DIR/admin.sh" <<EOF
#!/usr/bin/env bash
"$bin" admin >>"$LOG_DIR/service.log" 2>&1 &
echo \$! >"$LOG_DIR/admin.pid"
EOF
  chmod +x "$LOG_DIR/admin.sh"
  "$LOG_DIR/admin.sh"
  PROTO_TRAINER_ADMIN_URL="$base" AGENT_METRICS_ADDR="127.0.0.1:$metrics_port" \
    "$bin" agent >"$LOG_DIR/agent.log" 2>&1 &
  agent_pid=$!
  pids+=($agent_pid)
  # After the first answer: admin down (SIGTERM, waited for), 10 s later up again; in the
  # background, so the client keeps speaking meanwhile.
  cat >"$LOG_DIR/outage.sh" <<EOF
#!/usr/bin/env bash
pid=\$(cat "$LOG_DIR/admin.pid"); kill -TERM \$pid
while kill -0 \$pid 2>/dev/null; do sleep 0.05; done
echo "admin down at \$(date +%s.%N)" >>"$LOG_DIR/outage.log"
sleep 10
"$LOG_DIR/admin.sh"
echo "admin up at \$(date +%s.%N)" >>"$LOG_DIR/outage.log"
EOF
  chmod +x "$LOG_DIR/outage.sh"
  client_args+=(--mid-cmd "$LOG_DIR/outage.sh >/dev/null 2>&1 &")
else
  "$bin" serve >"$LOG_DIR/service.log" 2>&1 &
  agent_pid=$!
  pids+=($agent_pid)
  [[ $FAULT == sigterm ]] && client_args+=(--mid-cmd "kill -TERM $agent_pid" --mid-at answer2 --agent-leaves)
fi
wait_port $admin_port 150
# The agent registers with LiveKit before the counselor dispatches it.
for _ in $(seq 100); do grep -q "worker connected" "$LOG_DIR/service.log" "$LOG_DIR/agent.log" 2>/dev/null && break; sleep 0.1; done

set +e
"$CACHE/livekit-venv/bin/python" "$here/stack_counselor.py" --base "$base" --turns-file "$LOG_DIR/turns.jsonl" \
  --grading-limit-ms "${GRADING_LIMIT_MS:-1000}" $([[ $FAULT == sigterm ]] && echo --call-only) -- \
  "$CACHE/livekit-venv/bin/python" "$here/voice_client.py" --url unused --api-key unused --api-secret unused \
  --room unused --scenario conversation "${client_args[@]}" 2>"$LOG_DIR/client.log" | tee "$LOG_DIR/result.json"
status=${PIPESTATUS[0]}
set -e

if [[ $FAULT == sigterm ]]; then
  for _ in $(seq 150); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
  session=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"])' "$LOG_DIR/result.json")
  python3 - "$LOG_DIR/trainer.db" "$session" <<'EOF' || status=1
import json, sqlite3, sys
db, session = sys.argv[1:3]
c = sqlite3.connect(db)
status, reason = c.execute("SELECT status, end_reason FROM sessions WHERE id = ?", (session,)).fetchone()
turns = c.execute("SELECT speaker, text, started_ms, segment_id FROM transcript_turns WHERE session_id = ? "
                  "ORDER BY started_ms, created_at", (session,)).fetchall()
jobs = c.execute("SELECT count(*) FROM jobs WHERE session_id = ? AND kind = 'evaluate_session'", (session,)).fetchone()[0]
fails = []
if status != "completed": fails.append(f"session {status}")
if reason != "agent_shutdown": fails.append(f"end reason {reason}")
segs = [t[3] for t in turns]
if len(segs) != len(set(segs)): fails.append("a turn stored twice")
speakers = [t[0] for t in turns]
if len(turns) < 2 or speakers[:2] != ["counselor", "caller"]: fails.append(f"turns {speakers}")
if jobs != 1: fails.append(f"{jobs} grading jobs queued")
print(json.dumps({"status": status, "reason": reason, "speakers": speakers, "jobs": jobs, "fails": fails}), file=sys.stderr)
sys.exit(1 if fails else 0)
EOF
else
  # The call's per-turn metrics on the agent process's own /metrics port (`serve`'s agent child
  # or `proto-trainer agent` alone).
  scrape="http://127.0.0.1:$metrics_port/metrics"
  curl -sf -H "Authorization: Bearer $METRICS_TOKEN" "$scrape" >"$LOG_DIR/metrics.txt" || echo "scrape of $scrape failed" >&2
  for m in agent_response_latency_seconds_count agent_realtime_first_audio_seconds_count \
    agent_mic_to_append_seconds_count agent_delta_to_frame_seconds_count agent_delta_to_rtp_seconds_count \
    agent_calls_ended_total; do
    if ! grep -Eq "^$m [1-9]" "$LOG_DIR/metrics.txt"; then
      echo "metrics: no $m sample at $scrape" >&2
      status=1
    fi
  done
  for m in agent_playout_underruns_total agent_realtime_reconnects_total agent_barge_in_stop_seconds_count; do
    grep -Eq "^$m " "$LOG_DIR/metrics.txt" || { echo "metrics: $m missing at $scrape" >&2; status=1; }
  done
  grep -E "^agent_(response_latency_seconds_(sum|count)|playout_underruns_total|calls_ended_total) " "$LOG_DIR/metrics.txt" >&2 || true

fi

# One signal stops everything cleanly: the process exits 0 with no session left active.
kill -TERM "$agent_pid" 2>/dev/null || true
wait_exit "$agent_pid"
exit_status=$EXIT_STATUS
echo "$([[ $FAULT == admin_down ]] && echo agent || echo service) exit after SIGTERM: $exit_status" >&2
[[ $exit_status == 0 ]] || status=1
[[ -s "$LOG_DIR/outage.log" ]] && cat "$LOG_DIR/outage.log" >&2
echo "stack test${FAULT:+ ($FAULT)}: $([[ $status == 0 ]] && echo PASS || echo FAIL)$(logs_note "$status")" >&2
exit "$status"
