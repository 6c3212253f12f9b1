#!/usr/bin/env bash
# End-to-end voice role-play test against real parts:
#   livekit-server  <-  Rust agent worker (role-play job; OpenAI = the simulator in sim/)
#                   <-  Python `livekit` client as the counselor (espeak-ng utterances)
#   openai-sim      <-  the agent's Realtime WebSocket (scripted transcripts and replies)
# Turns go to the agent's file-backed turn store ($LOG_DIR/turns/<room>/turns.jsonl), which the
# client reads during the call.
#
# SCENARIO=conversation (default): three utterances, three answers, six turns in order, captions
#   for both sides, agent states; after the client leaves the call ends (end.json).
# SCENARIO=preconnect: speech sent as the pre-connect byte stream is the first counselor turn.
# SCENARIO=bargein: the counselor talks over the caller's second answer: the caller stops, the
#   simulator saw a truncate with the played milliseconds, the stored caller turn is cut.
# SCENARIO=early: barge-in before any caller audio: a delete, no error, nothing stored for it.
# SCENARIO=hostile: the conversation while the room attacks the agent (voice_client.py --hostile:
#   pre-connect streams with sampleRate 1/0/2^32, 3 channels, over the byte budget, a second one,
#   one after speaking, one from another participant, 170 byte streams left open, 8 MiB byte and
#   text streams, 20 000 data packets): every attack is dropped and logged, every turn is still
#   stored once in order, and the agent's peak RSS (VmHWM) stays within HOSTILE_RSS_MIB.
#   HOSTILE_ATTACKS picks some (comma list of preconnect, open, big, flood; default all).
# Every scenario prints the agent's peak RSS.
# FAULT=realtime_drop: the simulator drops the Realtime socket mid-answer (utterance 2): the agent
#   reconnects, re-seeds, and the new socket carries the answer on from what was heard.
# FAULT=signal_cut: the agent's LiveKit signal socket is cut after the first answer (resume).
# FAULT=session_cap: the agent's own cap is 3 s, so it recycles its socket between turns (the
#   simulator's cap, 20 s, is never reached); and the simulator's cap strikes mid-answer 2.
# FAULT=sigterm: SIGTERM to the worker 0.8 s into the caller's second answer: the call ends
#   cleanly (end.json, agentShutdown) with what was heard of that answer as a cut turn.
# After each: every spoken turn is in the store exactly once, in spoken order; the answer a
# fault cut may be stored cut (and, after a reconnect, carried on in a second turn), its words
# never missing or repeated.
# Installs and builds outside; runs every peer inside a fresh loopback-only network namespace.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
repo="$(cd "$here/../.." && pwd)"
CACHE="${PROTO_TRAINER_CACHE:-$HOME/.cache/proto-trainer}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export SCENARIO="${SCENARIO:-conversation}" FAULT="${FAULT:-}"

if [[ "${1:-}" != "--inside" ]]; then
  "$here/install.sh"
  # Under `cargo test` the agent binary is the one cargo just built for the test (AGENT_BIN):
  # building it again here with other features would relink it for every test.
  # `cargo xtask ci` has built every binary already (PROTO_TRAINER_PREBUILT).
  if [[ -n "${PROTO_TRAINER_PREBUILT:-}" ]]; then
    : "${AGENT_BIN:=$CARGO_TARGET_DIR/debug/proto-trainer-agent}"
    export AGENT_BIN
  elif [[ -n "${AGENT_BIN:-}" ]]; then
    cargo build --quiet --manifest-path "$repo/Cargo.toml" -p proto-trainer-openai-sim --bins
  else
    cargo build --quiet --manifest-path "$repo/Cargo.toml" -p proto-trainer-agent -p proto-trainer-openai-sim --bins
    export AGENT_BIN="$CARGO_TARGET_DIR/debug/proto-trainer-agent"
  fi
  make_log_dir lk-voice
  export LK_API_KEY="devkey"
  export LK_API_SECRET="devsecret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  say() { espeak-ng -w "$LOG_DIR/raw.wav" "$2" 2>/dev/null && sox "$LOG_DIR/raw.wav" -r 48000 -c 1 -b 16 "$LOG_DIR/$1.wav"; }
  # Short utterances keep the run fast; the simulator's rules give their transcripts.
  say u1 "Hello, crisis line. How can I help?"
  say u2 "Can you tell me more?"
  say u3 "Are you safe right now?"
  say pre "Hi, is anyone there?"
  echo "logs: $LOG_DIR" >&2
  exec "$here/netns-run.sh" "$0" --inside
fi

# ---- inside the namespace ----
export LK_PORT=7880 LK_UDP_PORT=7882 LK_TCP_PORT=7881
url="ws://127.0.0.1:$LK_PORT"
room="voice-$$"
sim_port=8089
"$here/render-config.sh" >"$LOG_DIR/livekit.yaml"

pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ((rc == 0)) || dump_logs agent.log sim.log client.log result.json server.log
  finish_log_dir "$rc"
}
trap cleanup EXIT

# The simulator's script: each utterance's transcript and the caller's spoken answer.
T1="Hello, crisis line. How can I help?"
T2="Can you tell me more?"
T3="Are you safe right now?"
A1="Hi. I cannot sleep lately."
A2="Work is falling apart, and my sister stopped talking to me."
A3="I think so. I am at home."
t1="$T1" t2="$T2" t3="$T3"
if [[ $SCENARIO == preconnect ]]; then t1="Hi, is anyone there?" t2="$T1" t3="$T2"; fi
rule() { # utterance transcript reply [extra json]
  printf '{"endpoint":"realtime","utterance":%s,"transcript":%s,"reply":{"text":%s}%s}' \
    "$1" "$(quote "$2")" "$(quote "$3")" "${4:-}"
}
quote() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
extra2=""
[[ $FAULT == realtime_drop ]] && extra2=',"fault":{"kind":"drop_connection"},"times":1'
# A cap rule for an utterance strikes mid-way through its answer.
[[ $FAULT == session_cap ]] && extra2=',"fault":{"kind":"session_cap","afterMs":0},"times":1'
extra1=""
[[ $SCENARIO == early ]] && extra1=',"latencyMs":2500'
{
  echo "["
  [[ $FAULT == session_cap ]] && echo '{"endpoint":"realtime","fault":{"kind":"session_cap","afterMs":20000}},'
  rule 1 "$t1" "$A1" "$extra1"; echo ","
  rule 2 "$t2" "$A2" "$extra2"; echo ","
  # After the fault the agent re-seeds (so the answer is still utterance 2) and asks again.
  [[ -n $extra2 ]] && { rule 2 "$t2" "$A2"; echo ","; }
  rule 3 "$t3" "$A3"; echo ","
  rule 4 "$T3" "$A3"
  echo "]"
} >"$LOG_DIR/rules.json"
# What the store must hold afterwards: each utterance's transcript and its answer.
python3 -c 'import json, sys; print(json.dumps({"counselor": sys.argv[1:5], "caller": sys.argv[5:9]}))' \
  "$t1" "$t2" "$t3" "$T3" "$A1" "$A2" "$A3" "$A3" >"$LOG_DIR/script.json"

"$CACHE/bin/livekit-server" --config "$LOG_DIR/livekit.yaml" >"$LOG_DIR/server.log" 2>&1 &
pids+=($!)
"$CARGO_TARGET_DIR/debug/openai-sim" --bind "127.0.0.1:$sim_port" --rules "$LOG_DIR/rules.json" \
  >"$LOG_DIR/sim.out" 2>"$LOG_DIR/sim.log" &
pids+=($!)
wait_port $LK_PORT
wait_port $sim_port

mkdir -p "$LOG_DIR/turns"
echo '{"silenceTimeoutSecs": 60}' >"$LOG_DIR/turns/setup.json"
export RUST_LOG="${RUST_LOG:-info,str0m=warn}"
export OPENAI_BASE_URL="http://127.0.0.1:$sim_port/v1" OPENAI_API_KEY="sk-sim"
export PROTO_TRAINER_TURNS_DIR="$LOG_DIR/turns"
# Every call records (stereo Ogg/Opus); the conversation checks the file with another decoder.
export PROTO_TRAINER_RECORDING_DIR="$LOG_DIR/rec"
[[ $FAULT == session_cap ]] && export REALTIME_SESSION_CAP_SECS=3
"$AGENT_BIN" worker --url "$url" --api-key "$LK_API_KEY" \
  --api-secret "$LK_API_SECRET" --agent-name proto-trainer >"$LOG_DIR/agent.out" 2>"$LOG_DIR/agent.log" &
agent_pid=$!
pids+=($agent_pid)
# The dispatch needs a registered worker: poll for it instead of sleeping.
for _ in $(seq 100); do grep -q "worker registered" "$LOG_DIR/agent.log" 2>/dev/null && break; sleep 0.05; done

client_args=(--utterance "$LOG_DIR/u1.wav" --utterance "$LOG_DIR/u2.wav" --utterance "$LOG_DIR/u3.wav")
[[ $SCENARIO == preconnect ]] && client_args+=(--preconnect-wav "$LOG_DIR/pre.wav")
case "$FAULT" in
  signal_cut)
    keep=$(ss -tnpH state established "( dport = :$LK_PORT )" | grep "pid=$agent_pid," |
      awk '{print $3}' | sed 's/.*://' | tr '\n' ' ')
    client_args+=(--mid-cmd "$here/cut-signal.sh $agent_pid $LK_PORT $keep") ;;
  sigterm) client_args+=(--mid-cmd "kill -TERM $agent_pid" --mid-at answer2 --agent-leaves) ;;
esac
client_scenario=$SCENARIO
[[ $SCENARIO == preconnect ]] && client_scenario=preconnect
[[ $SCENARIO == hostile ]] && client_scenario=conversation \
  client_args+=(--hostile --attacks "${HOSTILE_ATTACKS:-preconnect,open,big,flood}")

set +e
"$CACHE/livekit-venv/bin/python" "$here/voice_client.py" --url "$url" --api-key "$LK_API_KEY" \
  --api-secret "$LK_API_SECRET" --room "$room" --scenario "$client_scenario" \
  --turns-file "$LOG_DIR/turns/$room/turns.jsonl" "${client_args[@]}" \
  2>"$LOG_DIR/client.log" | tee "$LOG_DIR/result.json"
status=${PIPESTATUS[0]}
set -e

# The call ends when the client leaves (or at SIGTERM): the store must have the end.
for _ in $(seq 100); do [[ -s "$LOG_DIR/turns/$room/end.json" ]] && break; sleep 0.1; done
curl -s "http://127.0.0.1:$sim_port/_sim/realtime/events" >"$LOG_DIR/sim-events.json" || true
python3 - "$LOG_DIR" "$room" "$SCENARIO" "$FAULT" "${HOSTILE_ATTACKS:-preconnect,open,big,flood}" <<'EOF' || status=1
import glob, json, re, sys
log, room, scenario, fault, attacks = sys.argv[1:6]
turns = [json.loads(l) for l in open(f"{log}/turns/{room}/turns.jsonl") if l.strip()]
end = json.load(open(f"{log}/turns/{room}/end.json"))
script = json.load(open(f"{log}/script.json"))
fails = []
ids = [t["segmentId"] for t in turns]
if len(ids) != len(set(ids)): fails.append("a segment id stored twice")
if [t["startedMs"] for t in turns] != sorted(t["startedMs"] for t in turns): fails.append("out of spoken order")
speakers = [t["speaker"] for t in turns]
try:
    conns = json.load(open(f"{log}/sim-events.json"))
except Exception:
    conns = []
conns = conns if isinstance(conns, list) else []
events = [e for c in conns for e in c.get("events", [])]
kinds = lambda d: [e for e in events if e.get("direction") == d]
closes = [c.get("closeReason") for c in conns]
agent_log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{log}/agent.log").read())
m = re.search(r"call metrics.*summary=(\{.*\})", agent_log)
stats = json.loads(m.group(1)) if m else {}

if scenario in ("conversation", "preconnect", "hostile"):
    # Every spoken turn exactly once, in order: each counselor utterance once, and after it the
    # caller's answer, whose words (over the turns it was split into by a fault) are all there
    # once. The answer a fault hit may be cut; no other is.
    n = 4 if scenario == "preconnect" else 3
    hit = 2 if fault in ("realtime_drop", "session_cap", "sigterm") else None
    if fault == "sigterm": n = 2
    exchanges = []
    for t in turns:
        if t["speaker"] == "counselor": exchanges.append((t, []))
        elif exchanges: exchanges[-1][1].append(t)
        else: fails.append(f"caller turn before any counselor turn: {t['text']!r}")
    said = [c["text"] for c, _ in exchanges]
    if said != script["counselor"][:n]: fails.append(f"counselor turns {said}, want {script['counselor'][:n]}")
    for i, (c, answer) in enumerate(exchanges[:n], start=1):
        want = script["caller"][i - 1].split()
        words = " ".join(t["text"] for t in answer).split()
        cut = [t["cut"] for t in answer]
        if i != hit:
            if len(answer) != 1 or cut != [False] or words != want:
                fails.append(f"answer {i}: {[(t['text'], t['cut']) for t in answer]}, want {want}")
        elif fault == "sigterm":
            # Shut down a few words in: what was heard is one cut turn, the start of the answer.
            if cut != [True] or not 0 < len(words) < len(want) or words != want[: len(words)]:
                fails.append(f"answer {i} at SIGTERM: {[(t['text'], t['cut']) for t in answer]}")
        else:
            # Cut by the fault, then carried on by the new socket: every word once, in order.
            if words != want or len(answer) > 2 or (len(answer) == 2 and cut != [True, False]):
                fails.append(f"answer {i} across the fault: {[(t['text'], t['cut']) for t in answer]}, want {want}")
    if fault != "sigterm" and len(exchanges) != n: fails.append(f"{len(exchanges)} exchanges, want {n}")
    if scenario == "preconnect" and turns and "anyone there" not in turns[0]["text"]:
        fails.append(f"first turn is not the pre-connect speech: {turns[0]['text']!r}")
    # The fault really happened.
    if fault == "realtime_drop":
        if "dropped" not in closes: fails.append(f"no dropped Realtime socket: {closes}")
        if stats.get("reconnects", 0) < 1: fails.append(f"no reconnect: {stats.get('reconnects')}")
    if fault == "session_cap":
        if "session_cap" not in closes: fails.append(f"the simulator's cap never struck: {closes}")
        if stats.get("recycles", 0) < 1: fails.append(f"the agent never recycled before its cap: {stats.get('recycles')}")
    if fault == "signal_cut" and "signal resumed" not in agent_log and "rejoined" not in agent_log:
        fails.append("the signal connection was not resumed")
    want_end = "agentShutdown" if fault == "sigterm" else "counselorLeft"
    if end["reason"] != want_end: fails.append(f"end reason {end['reason']}, want {want_end}")
if scenario == "bargein":
    cut = [t for t in turns if t["speaker"] == "caller" and t["cut"]]
    if not cut: fails.append("no cut caller turn")
    if events:
        tr = [e for e in kinds("client") if e.get("type") == "conversation.item.truncate"]
        if not tr: fails.append("simulator saw no truncate")
if scenario == "early" and events:
    if not any(e.get("type") == "conversation.item.delete" for e in kinds("client")): fails.append("no delete")
    # Our cancel races the server's own (interrupt_response): "no active response" is harmless.
    errs = [e for e in kinds("server") if e.get("type") == "error"
            and e.get("event", {}).get("error", {}).get("code") != "response_cancel_not_active"]
    if errs: fails.append(f"errors: {errs}")
if scenario == "hostile" and "preconnect" in attacks:
    # Each attack dropped and named in the log. The agent holds live audio for the buffer 3 s;
    # when sending the 2.5 MiB stream takes longer (a loaded machine), live audio goes first, and
    # it and the second stream are refused as coming after it instead.
    dropped = [d.strip() for d in re.findall(r"pre-connect stream dropped.*?why=(.*)", agent_log)]
    want = ['SampleRate("1")', 'SampleRate("0")', 'SampleRate("4294967296")', 'Channels("3")',
            "NotTheCounselor", "AfterMicAudio"]
    for w in want:
        if w not in dropped: fails.append(f"no drop logged as {w}: {dropped}")
    late = dropped.count("AfterMicAudio")
    over = any(d.startswith("OverBudget") for d in dropped)
    second = "SecondStream" in dropped
    # Over budget then second; or over budget then (late) second; or both late: plus the one
    # sent after speaking, which is always late.
    if not (over and second or over and late >= 2 or late >= 3):
        fails.append(f"the over-budget or the second stream was not dropped: {dropped}")
if scenario == "hostile" and "panicked" in agent_log: fails.append("the agent panicked")
if end.get("usage", {}).get("outputAudioMs", 0) <= 0: fails.append("no usage")
print(json.dumps({"turns": len(turns), "speakers": speakers, "end": end["reason"], "closes": closes,
                  "reconnects": stats.get("reconnects"), "recycles": stats.get("recycles"), "fails": fails}), file=sys.stderr)
sys.exit(1 if fails else 0)
EOF

# The recording: decodes (libsndfile, not our writer's code), stereo, as long as the call was for
# the client (within 1 s), the counselor on the left and the caller on the right at their turns.
if [[ $SCENARIO == conversation && -z $FAULT ]]; then
  recording=$(python3 -c 'import json,sys; print((json.load(open(sys.argv[1])).get("recording") or {}).get("path", ""))' \
    "$LOG_DIR/turns/$room/end.json" 2>/dev/null || true)
  in_call_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("in_call_ms", 0))' \
    "$LOG_DIR/result.json" 2>/dev/null || echo 0)
  if [[ -s $recording ]]; then
    "$CACHE/livekit-venv/bin/python" "$here/check_recording.py" "$recording" "$LOG_DIR/turns/$room/turns.jsonl" \
      "$in_call_ms" >&2 || status=1
  else
    echo "no recording file (end.json: ${recording:-none})" >&2
    status=1
  fi
fi

# The agent's peak resident memory over the whole call (it served this one call only).
peak_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$agent_pid/status" 2>/dev/null || echo 0)
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status" 2>/dev/null || echo 0)
echo "agent RSS ($SCENARIO${FAULT:+ $FAULT}): peak $((peak_kib / 1024)) MiB, now $((rss_kib / 1024)) MiB" >&2
if [[ $SCENARIO == hostile ]] && ((peak_kib > ${HOSTILE_RSS_MIB:-64} * 1024)); then
  echo "agent peak RSS $((peak_kib / 1024)) MiB over the budget of ${HOSTILE_RSS_MIB:-64} MiB" >&2
  status=1
fi

if [[ $FAULT != sigterm ]]; then
  kill -TERM "$agent_pid"
fi
wait_exit "$agent_pid"
agent_status=$EXIT_STATUS
echo "worker exit after SIGTERM: $agent_status" >&2
grep -h "call metrics" "$LOG_DIR/agent.log" | sed -e 's/\x1b\[[0-9;]*m//g' | cut -c1-600 >&2 || true
[[ $agent_status == 0 ]] || status=1
echo "voice test ($SCENARIO${FAULT:+ $FAULT}): $([[ $status == 0 ]] && echo PASS || echo FAIL)$(logs_note "$status")" >&2
exit "$status"
