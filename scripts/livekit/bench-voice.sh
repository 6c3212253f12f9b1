#!/usr/bin/env bash
# Voice benchmark: N concurrent role-play calls through a real livekit-server.
#   worker (release, role-play job)  <- dispatched once per synthetic counselor's room
#   openai-sim (release)             <- the agent's Realtime sockets (energy VAD, voiced replies)
#   lk-load --talk-ms --quiet-ms     <- N synthetic counselors (this crate's participant): a tone
#                                       "utterance", then silence while the caller answers
# Prints per N: the agent process's CPU % (of one core) and RSS per call, calls answered, the
# CPU of livekit-server, the simulator, the load client and the whole machine (all share 2 cores),
# underruns, and p50/p99 of each latency the calls report ("call metrics" log lines):
# mic frame -> append, delta -> frame out, end of speech -> first caller frame, Realtime first audio.
# usage: bench-voice.sh [N ...]   (default: 1 10 50 100; BENCH_SECONDS per round, default 30)
# BENCH_PROFILE=1: also samples the agent with `perf record` during the last round and prints
# the hottest functions (where the time goes), the report kept in $LOG_DIR/perf-report.txt.
# BENCH_AGENT_LOG: the agent's RUST_LOG filter (default warn,agent::roleplay=info), e.g. to see
# the worker's dispatch with agent::worker=debug.
# Everything runs inside a fresh loopback-only network namespace (see netns-run.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
repo="$(cd "$here/../.." && pwd)"
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

if [[ "${1:-}" != "--inside" ]]; then
  "$here/install.sh"
  cargo build --quiet --release --manifest-path "$repo/Cargo.toml" -p proto-trainer-agent -p proto-trainer-openai-sim --bins
  export LOG_DIR="${LOG_DIR:-$(mktemp -d /tmp/lk-bench-voice.XXXXXX)}"
  export LK_API_KEY="devkey"
  export LK_API_SECRET="devsecret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "logs: $LOG_DIR" >&2
  exec "$here/netns-run.sh" "$0" --inside "${@:-1 10 50 100}"
fi
shift
rounds=($*)
seconds="${BENCH_SECONDS:-30}"

export LK_PORT=7880 LK_UDP_PORT=7882 LK_TCP_PORT=7881 LK_LOG_LEVEL=warn
url="ws://127.0.0.1:$LK_PORT"
sim_port=8089
"$here/render-config.sh" >"$LOG_DIR/livekit.yaml"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$CACHE/bin/livekit-server" --config "$LOG_DIR/livekit.yaml" >"$LOG_DIR/server.log" 2>&1 &
pids+=($!)
# Every utterance gets a short spoken answer (about 2 s), so answers fit between utterances.
echo '[{"endpoint":"realtime","transcript":"Hello.","reply":{"text":"I am not doing well tonight."}}]' >"$LOG_DIR/rules.json"
# The simulator and the load client stand in for OpenAI and for 100 remote browsers: their CPU
# would not be on the agent's machine. At nice $BENCH_HARNESS_NICE (default 10; 0 = equal) they
# take what livekit-server and the agent leave, instead of delaying their ticks.
harness_nice="${BENCH_HARNESS_NICE:-10}"
RUST_LOG=warn nice -n "$harness_nice" "$CARGO_TARGET_DIR/release/openai-sim" --bind "127.0.0.1:$sim_port" --rules "$LOG_DIR/rules.json" \
  >"$LOG_DIR/sim.out" 2>"$LOG_DIR/sim.log" &
pids+=($!)
wait_port $LK_PORT
wait_port $sim_port

mkdir -p "$LOG_DIR/turns"
# Full calls, as deployed: every call is recorded too.
RUST_LOG="${BENCH_AGENT_LOG:-warn,agent::roleplay=info}" OPENAI_BASE_URL="http://127.0.0.1:$sim_port/v1" OPENAI_API_KEY="sk-sim" \
  PROTO_TRAINER_TURNS_DIR="$LOG_DIR/turns" PROTO_TRAINER_RECORDING_DIR="$LOG_DIR/recordings" \
  "$CARGO_TARGET_DIR/release/proto-trainer-agent" worker --url "$url" \
  --api-key "$LK_API_KEY" --api-secret "$LK_API_SECRET" --max-jobs 200 \
  >"$LOG_DIR/agent.out" 2>"$LOG_DIR/agent.log" &
agent=$!
pids+=($agent)
sleep 1

tck=$(getconf CLK_TCK)
cpu_s() { awk -v t="$tck" '{print ($14 + $15) / t}' "/proc/${1:-$agent}/stat"; }
# The whole machine's busy time (all cores): the other processes share the 2 cores with the agent,
# and a saturated machine delays the agent's ticks whatever the agent costs.
machine_s() { awk -v t="$tck" '/^cpu / {print ($2 + $3 + $4 + $7 + $8) / t; exit}' /proc/stat; }
server_pid=${pids[0]}
sim_pid=${pids[1]}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$agent/status"; }
base_rss=$(rss_kib)
echo "agent idle RSS: $((base_rss / 1024)) MiB" >&2
for n in "${rounds[@]}"; do
  lines_before=$(wc -l <"$LOG_DIR/agent.log")
  cpu0=$(cpu_s)
  others0="$(cpu_s "$server_pid") $(cpu_s "$sim_pid") $(machine_s)"
  t0=$(date +%s.%N)
  nice -n "$harness_nice" "$CARGO_TARGET_DIR/release/lk-load" --url "$url" --api-key "$LK_API_KEY" --api-secret "$LK_API_SECRET" \
    --sessions "$n" --seconds "$seconds" --talk-ms 1500 --quiet-ms 4500 \
    >"$LOG_DIR/load-$n.json" 2>"$LOG_DIR/load-$n.log" &
  load=$!
  sleep 0.2
  load0="$(cpu_s "$load" 2>/dev/null || echo 0) $(date +%s.%N)"
  perf_pid=""
  if [[ -n "${BENCH_PROFILE:-}" && $n == "${rounds[-1]}" ]] && command -v perf >/dev/null; then
    sleep 3 # past the joins: sample steady calls
    perf record -F 499 -p "$agent" -o "$LOG_DIR/perf.data" -- sleep $((seconds / 2)) >/dev/null 2>&1 &
    perf_pid=$!
  fi
  sleep $((seconds / 2 + n / 10 + 2))
  rss=$(rss_kib)
  load1="$(cpu_s "$load" 2>/dev/null || echo "${load0% *}") $(date +%s.%N)"
  wait "$load" || true
  [[ -n $perf_pid ]] && wait "$perf_pid" || true
  sleep 3 # calls end when their counselor leaves
  cpu1=$(cpu_s)
  others1="$(cpu_s "$server_pid") $(cpu_s "$sim_pid") $(machine_s)"
  t1=$(date +%s.%N)
  tail -n +"$((lines_before + 1))" "$LOG_DIR/agent.log" | sed -e 's/\x1b\[[0-9;]*m//g' | grep "call metrics" \
    >"$LOG_DIR/metrics-$n.log" || true
  python3 - "$n" "$cpu0" "$cpu1" "$t0" "$t1" "$rss" "$base_rss" "$LOG_DIR/metrics-$n.log" "$LOG_DIR/load-$n.json" \
    "$others0" "$others1" "$load0" "$load1" <<'EOF'
import json, re, sys
n, cpu0, cpu1, t0, t1, rss, base = int(sys.argv[1]), *map(float, sys.argv[2:8])
o0, o1 = [list(map(float, a.split())) for a in sys.argv[10:12]]
(l0, lt0), (l1, lt1) = [map(float, a.split()) for a in sys.argv[12:14]]
load_cpu = (l1 - l0) / (lt1 - lt0)
calls = []
for line in open(sys.argv[8]):
    m = re.search(r"summary=(\{.*\})", line)
    if m:
        calls.append(json.loads(m.group(1)))
try:
    load = json.load(open(sys.argv[9]))
except Exception:
    load = {}
def pct(key, p):
    xs = sorted(x for c in calls for x in c.get(key, []))
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else None
cpu = 100 * (cpu1 - cpu0) / (t1 - t0)
row = {
    "N": n,
    "calls_ended": len(calls),
    "answered": f"{load.get('sessions_echoed', '?')}/{n}",
    "cpu_pct": round(cpu, 1),
    "rss_per_call_MiB": round((rss - base) / 1024 / n, 2),
    # The rest of the machine (% of one core; the machine has 200): livekit-server, the simulator,
    # the load client (the N counselors), and every process together.
    "server_cpu_pct": round(100 * (o1[0] - o0[0]) / (t1 - t0), 1),
    "sim_cpu_pct": round(100 * (o1[1] - o0[1]) / (t1 - t0), 1),
    "load_cpu_pct": round(100 * load_cpu, 1),
    "machine_cpu_pct": round(100 * (o1[2] - o0[2]) / (t1 - t0), 1),
    "underruns": sum(c.get("underruns", 0) for c in calls),
    "late_ticks": sum(c.get("lateTicks", 0) for c in calls),
}
for key, name in [("micToAppendMs", "mic_to_append"), ("deltaToFrameMs", "delta_to_frame"), ("deltaToRtpMs", "delta_to_rtp"),
                  ("responseLatencyMs", "speech_end_to_first_frame"), ("realtimeFirstAudioMs", "realtime_first_audio")]:
    row[name + "_p50_p99_ms"] = [pct(key, 50), pct(key, 99)]
print(json.dumps(row))
EOF
done
if [[ -s "$LOG_DIR/perf.data" ]]; then
  perf report -i "$LOG_DIR/perf.data" --stdio --no-children --sort symbol --percent-limit 1.5 2>/dev/null \
    >"$LOG_DIR/perf-report.txt" || true
  echo "hottest functions in the agent during N=${rounds[-1]} (self time; $LOG_DIR/perf-report.txt):" >&2
  grep -E '^ +[0-9.]+%' "$LOG_DIR/perf-report.txt" | head -25 | cut -c1-160 >&2 || true
fi
