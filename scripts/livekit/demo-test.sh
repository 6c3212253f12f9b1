#!/usr/bin/env bash
# The offline demo's voice path, checked the way a newcomer would use it but inside the
# loopback-only namespace: `cargo xtask demo --no-build` (seeded SQLite, the OpenAI simulator as
# chat, grader and Realtime caller, a local livekit-server on 127.0.0.1 with loopback candidates,
# `proto-trainer serve` with the agent as its child process) and one voice call by LiveKit's Python client
# signed in as a demo counselor (stack_counselor.py): six turns stored during the call, the
# evaluation after the hang-up, and SIGTERM to the demo stopping every process it started.
# Installs and builds (debug) outside; runs the demo and the client inside a fresh namespace.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
repo="$(cd "$here/../.." && pwd)"
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

if [[ "${1:-}" != "--inside" ]]; then
  "$here/install.sh"
  cargo build --quiet --manifest-path "$repo/Cargo.toml" -p proto-trainer -p proto-trainer-openai-sim -p xtask --bins
  make_log_dir lk-demo
  say() { espeak-ng -w "$LOG_DIR/raw.wav" "$2" 2>/dev/null && sox "$LOG_DIR/raw.wav" -r 48000 -c 1 -b 16 "$LOG_DIR/$1.wav"; }
  say u1 "Hi, you have reached the crisis line. My name is Sam. What is going on for you tonight?"
  say u2 "That sounds really hard. Can you tell me more?"
  say u3 "I am really glad you called. Are you safe right now?"
  echo "logs: $LOG_DIR" >&2
  exec "$here/netns-run.sh" "$0" --inside
fi

# ---- inside the namespace ----
unset OPENAI_API_KEY OPENAI_BASE_URL LIVEKIT_URL LIVEKIT_API_KEY LIVEKIT_API_SECRET
export DATABASE_URL="sqlite://$LOG_DIR/demo.db?mode=rwc" RECORDINGS_DIR="$LOG_DIR/recordings"
export DEMO_BIN_DIR="$CARGO_TARGET_DIR/debug" RUST_LOG="${RUST_LOG:-info,str0m=warn,sqlx=warn}"

cd "$repo"
setsid "$CARGO_TARGET_DIR/debug/xtask" demo --no-build >"$LOG_DIR/demo.log" 2>&1 &
demo_pid=$!
cleanup() {
  local rc=$?
  kill -KILL -- "-$demo_pid" 2>/dev/null || true
  if ((rc != 0)); then
    echo "----- demo.log (last 60 lines) -----" >&2
    sed -e 's/\x1b\[[0-9;]*m//g' "$LOG_DIR/demo.log" | tail -n 60 | cut -c1-300 >&2
  fi
  finish_log_dir "$rc"
}
trap cleanup EXIT
wait_port 3003 300
for _ in $(seq 100); do grep -q "worker connected" "$LOG_DIR/demo.log" && break; sleep 0.1; done

set +e
"$CACHE/livekit-venv/bin/python" "$here/stack_counselor.py" --base "http://127.0.0.1:3003" \
  --turns-file "$LOG_DIR/turns.jsonl" -- \
  "$CACHE/livekit-venv/bin/python" "$here/voice_client.py" --url unused --api-key unused --api-secret unused \
  --room unused --scenario conversation \
  --utterance "$LOG_DIR/u1.wav" --utterance "$LOG_DIR/u2.wav" --utterance "$LOG_DIR/u3.wav" \
  2>"$LOG_DIR/client.log" | tee "$LOG_DIR/result.json"
status=${PIPESTATUS[0]}
set -e

# One SIGTERM to the demo: the service drains, the simulator and livekit-server stop with it.
kill -TERM "$demo_pid"
wait_exit "$demo_pid" 200
demo_status=$EXIT_STATUS
echo "demo exit after SIGTERM: $demo_status" >&2
[[ $demo_status == 0 ]] || status=1
sleep 0.5
if pgrep -g "$demo_pid" >/dev/null 2>&1; then
  echo "processes left after the demo stopped: $(pgrep -g "$demo_pid" -a)" >&2
  status=1
fi
echo "demo voice test: $([[ $status == 0 ]] && echo PASS || echo FAIL)$(logs_note "$status")" >&2
exit "$status"
