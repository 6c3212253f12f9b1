#!/usr/bin/env bash
# Agent media benchmark: N concurrent echo sessions through a real livekit-server.
#   worker (release build) <- dispatched once per caller room
#   lk-load                <- N callers (this crate's participant), each publishing a tone
# Prints, per N, the agent process's CPU seconds per session-minute and RSS per session.
# usage: bench-agent-media.sh [N ...]   (default: 1 10 50; BENCH_SECONDS per round, default 30)
# Everything runs inside a fresh loopback-only network namespace (see netns-run.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

if [[ "${1:-}" != "--inside" ]]; then
  "$here/install.sh"
  cargo build --quiet --release --manifest-path "$repo/agent/Cargo.toml" --bin proto-trainer-agent --bin lk-load
  export LOG_DIR="${LOG_DIR:-$(mktemp -d /tmp/lk-bench.XXXXXX)}"
  export LK_API_KEY="devkey"
  export LK_API_SECRET="devsecret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "logs: $LOG_DIR" >&2
  exec "$here/netns-run.sh" "$0" --inside "${@:-1 10 50}"
fi
shift
rounds=($*)
seconds="${BENCH_SECONDS:-30}"

export LK_PORT=7880 LK_UDP_PORT=7882 LK_TCP_PORT=7881 LK_LOG_LEVEL=warn
url="ws://127.0.0.1:$LK_PORT"
"$here/render-config.sh" >"$LOG_DIR/livekit.yaml"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$CACHE/bin/livekit-server" --config "$LOG_DIR/livekit.yaml" >"$LOG_DIR/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$LK_PORT) 2>/dev/null && break; sleep 0.1; done

RUST_LOG=warn "$CARGO_TARGET_DIR/release/proto-trainer-agent" worker --url "$url" \
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
printf '%-6s %-10s %-22s %-18s %s\n' N echoed "cpu_s/session-minute" "rss/session_MiB" "load-client result"
for n in "${rounds[@]}"; do
  cpu0=$(cpu_s)
  "$CARGO_TARGET_DIR/release/lk-load" --url "$url" --api-key "$LK_API_KEY" \
    --api-secret "$LK_API_SECRET" --sessions "$n" --seconds "$seconds" \
    >"$LOG_DIR/load-$n.json" 2>"$LOG_DIR/load-$n.log" &
  load=$!
  # Sample RSS in the steady state: every session joined, all still talking.
  sleep $((seconds / 2 + n / 10 + 2))
  rss=$(rss_kib)
  wait "$load" || true
  sleep 3 # jobs end when their caller leaves
  cpu1=$(cpu_s)
  result=$(cat "$LOG_DIR/load-$n.json" 2>/dev/null || echo '{}')
  echoed=$(sed -n 's/.*"sessions_echoed": \([0-9]*\).*/\1/p' <<<"$result")
  awk -v n="$n" -v s="$seconds" -v c0="$cpu0" -v c1="$cpu1" -v r="$rss" -v b="$base_rss" \
    -v e="${echoed:-0}" -v res="$result" \
    'BEGIN { printf "%-6d %-10s %-22.3f %-18.2f %s\n", n, e "/" n, (c1 - c0) / (n * s / 60), (r - b) / 1024 / n, res }'
done
