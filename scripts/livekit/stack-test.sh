#!/usr/bin/env bash
# The whole product against real parts, the way it is deployed:
#   livekit-server  <-  `proto-trainer serve` (admin service + voice agent in one process, SQLite,
#                        seeded demo data; turns straight to the store; OpenAI = the simulator)
#                   <-  LiveKit's Python client as the counselor (voice_client.py), who signs in
#                        and gets its token from POST /api/livekit/token (stack_counselor.py)
# The counselor speaks three utterances; six turns are in the store (read through the API)
# during the call; after the hang-up the evaluation is stored within the simulator's latency + 1 s
# (the measured milliseconds are printed); /metrics then shows the call's per-turn metrics.
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
  export LOG_DIR="${LOG_DIR:-$(mktemp -d /tmp/lk-stack.XXXXXX)}"
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
  ((rc == 0)) || dump_logs service.log agent.log sim.log client.log result.json server.log
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
echo "stack test${FAULT:+ ($FAULT)}: $([[ $status == 0 ]] && echo PASS || echo FAIL) (logs in $LOG_DIR)" >&2
exit "$status"
