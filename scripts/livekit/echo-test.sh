#!/usr/bin/env bash
# End-to-end echo test against a real livekit-server:
#   livekit-server  <-  Rust agent worker        (registered on /agent as `proto-trainer`)
#                   <-  Python `livekit` client  (its token dispatches the agent; publishes
#                                                 440 Hz then 880 Hz and checks the echo, the
#                                                 agent's attribute, and data both ways)
# The worker is dispatched into the room, joins with the job's token, echoes, ends the job when
# the client leaves, and on SIGTERM drains and exits 0.
# ECHO_MODE=direct skips the worker protocol: the agent joins the room itself (`echo`).
# RESUME=1 cuts the agent's signal connection when the tone switches; the echo of the second
# tone (and the data round trip after it) then proves the session resumed.
# SPEECH=1 publishes espeak-ng speech instead of the tones and checks the echo by
# cross-correlation (lag within the delay bound, normalised peak >= 0.5).
# WORKER_CUT=1 cuts the worker's /agent connection before the call; it must re-register.
# REJOIN=1 has the server simulate a node failure on the agent's session at the switch: the
# resume is refused, the agent rejoins as a new participant, and the second tone still echoes.
# It implies ECHO_MODE=direct: in a dispatched job the server terminates the job of an agent
# participant it drops ("agent worker left the room"; the worker then ends the job) once it has
# linked the participant to the job. livekit-server v1.13 does that about 5 s after the dispatch
# (when its CheckEnabled round ends), so in worker mode a switch before then passed and one after
# it (a slow client start on a loaded machine) failed every time.
# Fault scenarios (RESUME, REJOIN) play 5 s tones and allow the second tone's echo to start up to
# 3 s late: recovering the session is part of that delay.
# Installs and builds outside; runs every peer inside a fresh loopback-only network namespace.
# Exit status 0 when the client's checks pass. Logs go to $LOG_DIR (default: a temp dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
repo="$(cd "$here/../.." && pwd)"
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
if [[ "${REJOIN:-0}" == 1 ]]; then
  if [[ "${ECHO_MODE:-direct}" != direct ]]; then
    echo "REJOIN=1 needs ECHO_MODE=direct: the server ends a dispatched agent's job when it drops the agent's participant" >&2
    exit 2
  fi
  export ECHO_MODE=direct
fi

if [[ "${1:-}" != "--inside" ]]; then
  "$here/install.sh"
  # Under `cargo test` the agent binary is the one cargo just built for the test (AGENT_BIN):
  # building it again here with other features would relink it for every test.
  [[ -n "${AGENT_BIN:-}" ]] || cargo build --quiet --manifest-path "$repo/agent/Cargo.toml" --bin proto-trainer-agent
  make_log_dir lk-echo
  # A fresh dev key pair per run; livekit-server wants secrets of at least 32 characters.
  export LK_API_KEY="devkey"
  export LK_API_SECRET="devsecret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "logs: $LOG_DIR" >&2
  exec "$here/netns-run.sh" "$0" --inside
fi

# ---- inside the namespace: only `lo` exists, so every port is free ----
export LK_PORT=7880 LK_UDP_PORT=7882 LK_TCP_PORT=7881
url="ws://127.0.0.1:$LK_PORT"
room="echo-$$"
"$here/render-config.sh" >"$LOG_DIR/livekit.yaml"

pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ((rc == 0)) || dump_logs agent.log agent.out client.log result.json server.log
  finish_log_dir "$rc"
}
trap cleanup EXIT

"$CACHE/bin/livekit-server" --config "$LOG_DIR/livekit.yaml" >"$LOG_DIR/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/$LK_PORT) 2>/dev/null; then break; fi
  sleep 0.1
done

agent_bin="${AGENT_BIN:-$CARGO_TARGET_DIR/debug/proto-trainer-agent}"
export RUST_LOG="${RUST_LOG:-info,str0m=warn}"
if [[ "${ECHO_MODE:-worker}" == direct ]]; then
  "$agent_bin" echo --url "$url" --api-key "$LK_API_KEY" --api-secret "$LK_API_SECRET" \
    --room "$room" --identity echo-agent --seconds 60 --test-hooks \
    >"$LOG_DIR/agent.out" 2>"$LOG_DIR/agent.log" &
  client_args=(--agent-identity echo-agent)
else
  "$agent_bin" worker --url "$url" --api-key "$LK_API_KEY" --api-secret "$LK_API_SECRET" \
    --agent-name proto-trainer --mode echo --test-hooks >"$LOG_DIR/agent.out" 2>"$LOG_DIR/agent.log" &
  client_args=(--dispatch proto-trainer)
fi
agent_pid=$!
pids+=($agent_pid)
sleep 1 # let the worker register before the room exists
if [[ "${WORKER_CUT:-0}" == 1 ]]; then
  # Cut the worker's /agent connection before any room exists: it must reconnect and register
  # again, or the dispatch below never reaches it.
  "$here/cut-signal.sh" "$agent_pid" "$LK_PORT"
  sleep 2
fi
if [[ "${RESUME:-0}" == 1 ]]; then
  # The worker's own /agent socket is the only one to the server so far: keep it.
  keep=$(ss -tnpH state established "( dport = :$LK_PORT )" | grep "pid=$agent_pid," |
    awk '{print $3}' | sed 's/.*://' | tr '\n' ' ')
  client_args+=(--mid-cmd "$here/cut-signal.sh $agent_pid $LK_PORT $keep" --tone-seconds 5 --max-delay 3)
fi
if [[ "${SPEECH:-0}" == 1 ]]; then
  espeak-ng -w "$LOG_DIR/speech-raw.wav" \
    "Hello, this is the counselor. Can you hear me clearly? Please repeat after me." 2>/dev/null
  sox "$LOG_DIR/speech-raw.wav" -r 48000 -c 1 -b 16 "$LOG_DIR/speech.wav"
  client_args+=(--speech-wav "$LOG_DIR/speech.wav")
fi
if [[ "${REJOIN:-0}" == 1 ]]; then
  client_args+=(--mid-simulate node_failure --tone-seconds 5 --max-delay 3)
fi

set +e
"$CACHE/livekit-venv/bin/python" "$here/echo_client.py" --url "$url" --api-key "$LK_API_KEY" \
  --api-secret "$LK_API_SECRET" --room "$room" "${client_args[@]}" \
  2>"$LOG_DIR/client.log" | tee "$LOG_DIR/result.json"
status=${PIPESTATUS[0]}
set -e

if [[ "${ECHO_MODE:-worker}" != direct ]]; then
  # Drain: the job ends once the client has left; SIGTERM must then stop the worker cleanly.
  sleep 2
  kill -TERM "$agent_pid"
  wait_exit "$agent_pid"
  agent_status=$EXIT_STATUS
  echo "worker exit after SIGTERM: $agent_status" >&2
  grep -h "echo done" "$LOG_DIR/agent.out" >&2 || true
  [[ $agent_status == 0 ]] || status=1
fi
echo "echo test: $([[ $status == 0 ]] && echo PASS || echo FAIL)$(logs_note "$status")" >&2
exit "$status"
