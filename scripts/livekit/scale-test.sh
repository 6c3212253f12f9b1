#!/usr/bin/env bash
# Scale-out on one machine, with the engines a deployment uses, inside the loopback-only namespace:
#   PostgreSQL (Debian's, a throwaway cluster)  <- two `proto-trainer admin` replicas behind a
#                                                  round-robin balancer (scale-proxy.py)
#   Redis (Debian's redis-server)               <- two livekit-server nodes (A: 7880, B: 7890)
#   agent workers (`proto-trainer agent`)        -> node B; their turns through the balancer
#   counselors (LiveKit's Python client)         -> tokens through the balancer, rooms via node A
#   the OpenAI simulator                         <- the agents' Realtime calls and the grading
# The phases and their assertions are in scale-test.py (dispatch across workers and the load
# limit, a replica killed mid-grading, a worker drained by SIGTERM, a worker killed mid-call,
# both LiveKit nodes in Redis). Prints one JSON line; exits 0 when every assertion holds.
#
# usage: scale-test.sh             the proof (a few minutes)
#        scale-test.sh --bench N   `cargo xtask bench scale`: N calls with 1 and with 2 workers
# Installs and builds outside (PROTO_TRAINER_PREBUILT=1: the binaries are built already).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
repo="$(cd "$here/../.." && pwd)"
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

if [[ "${1:-}" != "--inside" ]]; then
  "$here/install.sh"
  [[ -n "${PROTO_TRAINER_PREBUILT:-}" ]] ||
    cargo build --quiet --manifest-path "$repo/Cargo.toml" -p proto-trainer -p proto-trainer-openai-sim --bins
  make_log_dir lk-scale
  # PostgreSQL runs as its own user, which must reach its directory under this one.
  chmod 755 "$LOG_DIR"
  # The binaries as they are now: a build elsewhere may replace target/debug meanwhile.
  # (SCALE_BIN_DIR: binaries built and copied aside before.)
  mkdir -p "$LOG_DIR/bin"
  cp "${SCALE_BIN_DIR:-$CARGO_TARGET_DIR/debug}/proto-trainer" "${SCALE_BIN_DIR:-$CARGO_TARGET_DIR/debug}/openai-sim" "$LOG_DIR/bin/"
  export LK_API_KEY="devkey"
  export LK_API_SECRET="devsecret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  say() { espeak-ng -w "$LOG_DIR/raw.wav" "$2" 2>/dev/null && sox "$LOG_DIR/raw.wav" -r 48000 -c 1 -b 16 "$LOG_DIR/$1.wav"; }
  say u1 "Hello, this is the crisis line. How can I help you tonight?"
  say u2 "That sounds really hard. Can you tell me more?"
  echo "logs: $LOG_DIR" >&2
  exec "$here/netns-run.sh" "$0" --inside "$@"
fi
shift

# ---- inside the namespace ----
pids=()
pgdata="$LOG_DIR/pg/data"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -d $pgdata ]] && as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  ((rc == 0)) || dump_logs server-a.log server-b.log admin1.log admin2.log worker1.log worker2.log worker3.log sim.log redis.log
  finish_log_dir "$rc"
}
trap cleanup EXIT

# PostgreSQL: a throwaway cluster on loopback (the namespace's own), as postgres when root.
pg_port=5432
mkdir -p "$LOG_DIR/pg"
[[ $(id -u) == 0 ]] && chown postgres:postgres "$LOG_DIR/pg"
as_pg "$pgbin/initdb" -D "$pgdata" -U postgres -A trust --no-sync -E UTF8 >"$LOG_DIR/initdb.log"
as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$LOG_DIR/pg/server.log" -w start -o \
  "-p $pg_port -k $LOG_DIR/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300" \
  >/dev/null
export PG_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"

# Redis, and two livekit-server nodes sharing it (LiveKit's multi-node mode).
export REDIS_PORT=6379
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no >"$LOG_DIR/redis.log" 2>&1 &
pids+=($!)
wait_port $REDIS_PORT 100
node() { # name http-port rtc-tcp-port rtc-udp-port
  LK_PORT=$2 LK_TCP_PORT=$3 LK_UDP_PORT=$4 "$here/render-config.sh" >"$LOG_DIR/livekit-$1.yaml"
  printf 'redis:\n  address: 127.0.0.1:%s\n' "$REDIS_PORT" >>"$LOG_DIR/livekit-$1.yaml"
  "$CACHE/bin/livekit-server" --config "$LOG_DIR/livekit-$1.yaml" >"$LOG_DIR/server-$1.log" 2>&1 &
  pids+=($!)
}
node a 7880 7881 7882
node b 7890 7891 7892
export NODE_A_URL="ws://127.0.0.1:7880" NODE_B_URL="ws://127.0.0.1:7890"

# The simulator: every utterance gets a short spoken answer; grading takes 4 s, so a replica can
# be killed while it holds one.
sim_port=8089
cat >"$LOG_DIR/rules.json" <<'EOF'
[
 {"endpoint":"realtime","transcript":"Hello, this is the crisis line.","reply":{"text":"I am not doing well tonight."}},
 {"endpoint":"chat","schemaName":"evaluation","latencyMs":4000}
]
EOF
"$LOG_DIR/bin/openai-sim" --bind "127.0.0.1:$sim_port" --rules "$LOG_DIR/rules.json" >"$LOG_DIR/sim.out" 2>"$LOG_DIR/sim.log" &
pids+=($!)
export OPENAI_BASE_URL="http://127.0.0.1:$sim_port/v1"
wait_port 7880 150
wait_port 7890 150
wait_port $sim_port 150

export PT_BIN="$LOG_DIR/bin/proto-trainer"
DATABASE_URL="$PG_URL" "$PT_BIN" seed --demo >"$LOG_DIR/seed.out" 2>&1

set +e
"$CACHE/livekit-venv/bin/python" "$here/scale-test.py" --u1 "$LOG_DIR/u1.wav" --u2 "$LOG_DIR/u2.wav" "$@" \
  | tee "$LOG_DIR/result.json"
status=${PIPESTATUS[0]}
set -e
echo "scale test: $([[ $status == 0 ]] && echo PASS || echo FAIL)$(logs_note "$status")" >&2
exit "$status"
