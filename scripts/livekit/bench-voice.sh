#!/usr/bin/env bash
# Voice benchmark: N concurrent role-play calls through a real livekit-server.
#   worker (release, role-play job)  <- dispatched once per synthetic counselor's room
#   openai-sim (release)             <- the agent's Realtime sockets (energy VAD, voiced replies)
#   lk-load --talk-ms --quiet-ms     <- N synthetic counselors (this crate's participant): a tone
#                                       "utterance", then silence while the caller answers
# Prints per N: the agent process's CPU % (of one core) and RSS per call, calls answered,
# underruns, and p50/p99 of each latency the calls report ("call metrics" log lines):
# mic frame -> append, delta -> frame out, end of speech -> first caller frame, Realtime first audio.
# usage: bench-voice.sh [N ...]   (default: 1 10 50 100; BENCH_SECONDS per round, default 30)
# BENCH_PROFILE=1: also samples the agent with `perf record` during the last round and prints
# the hottest functions (where the time goes), the report kept in $LOG_DIR/perf-report.txt.
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
RUST_LOG=warn "$CARGO_TARGET_DIR/release/openai-sim" --bind "127.0.0.1:$sim_port" --rules "$LOG_DIR/rules.json" \
  >"$LOG_DIR/sim.out" 2>"$LOG_DIR/sim.log" &
pids+=($!)
wait_port $LK_PORT
wait_port $sim_port

mkdir -p "$LOG_DIR/turns"
RUST_LOG="warn,agent::roleplay=info" OPENAI_BASE_URL="http://127.0.0.1:$sim_port/v1" OPENAI_API_KEY="sk-sim" \
  PROTO_TRAINER_TURNS_DIR="$LOG_DIR/turns" \
  "$CARGO_TARGET_DIR/release/proto-trainer-agent" worker --url "$url" \
  --api-key "$LK_API_KEY" --api-secret "$LK_API_SECRET" --max-jobs 200 \
  >"$LOG_DIR/agent.out" 2>"$LOG_DIR/agent.log" &
agent=$!
pids+=($agent)
sleep 1

tck=$(getconf CLK_TCK)
cpu_s() { awk -v t="$tck" '{print ($14 + $15) / t}' "/proc/$agent/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$agent/status"; }
base_rss=$(rss_kib)
echo "agent idle RSS: $((base_rss / 1024)) MiB" >&2
for n in "${rounds[@]}"; do
  lines_before=$(wc -l <"$LOG_DIR/agent.log")
  cpu0=$(cpu_s)
  t0=$(date +%s.%N)
  "$CARGO_TARGET_DIR/release/lk-load" --url "$url" --api-key "$LK_API_KEY" --api-secret "$LK_API_SECRET" \
    --sessions "$n" --seconds "$seconds" --talk-ms 1500 --quiet-ms 4500 \
    >"$LOG_DIR/load-$n.json" 2>"$LOG_DIR/load-$n.log" &
  load=$!
  perf_pid=""
  if [[ -n "${BENCH_PROFILE:-}" && $n == "${rounds[-1]}" ]] && command -v perf >/dev/null; then
    sleep 3 # past the joins: sample steady calls
    perf record -F 499 -p "$agent" -o "$LOG_DIR/perf.data" -- sleep $((seconds / 2)) >/dev/null 2>&1 &
    perf_pid=$!
  fi
  sleep $((seconds / 2 + n / 10 + 2))
  rss=$(rss_kib)
  wait "$load" || true
  [[ -n $perf_pid ]] && wait "$perf_pid" || true
  sleep 3 # calls end when their counselor leaves
  cpu1=$(cpu_s)
  t1=$(date +%s.%N)
  tail -n +"$((lines_before + 1))" "$LOG_DIR/agent.log" | sed -e 's/\x1b\[[0-9;]*m//g' | grep "call metrics" \
    >"$LOG_DIR/metrics-$n.log" || true
  python3 - "$n" "$cpu0" "$cpu1" "$t0" "$t1" "$rss" "$base_rss" "$LOG_DIR/metrics-$n.log" "$LOG_DIR/load-$n.json" <<'EOF'
import json, re, sys
n, cpu0, cpu1, t0, t1, rss, base = int(sys.argv[1]), *map(float, sys.argv[2:8])
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
    "underruns": sum(c.get("underruns", 0) for c in calls),
    "late_ticks": sum(c.get("lateTicks", 0) for c in calls),
}
for key, name in [("micToAppendMs", "mic_to_append"), ("deltaToFrameMs", "delta_to_frame"),
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
