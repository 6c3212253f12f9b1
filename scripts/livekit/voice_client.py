"""The counselor side of the voice role-play tests: a real LiveKit client (the `livekit` Python
SDK) that dispatches the Rust agent, speaks espeak-ng utterances, and checks what a counselor
would: the AI caller answers each one (audio heard), captions arrive for both sides, and every
final turn reaches the (file-backed) turn store during the call, in order.

Scenarios (--scenario):
  conversation  speak each --utterance, wait for the caller's whole answer after each.
  preconnect    first send --preconnect-wav as the `lk.agent.pre-connect-audio-buffer` byte stream
                (raw PCM16, what LiveKit's mobile SDKs send), then continue like conversation.
  bargein       utterance 1 normally; during the caller's answer to utterance 2, speak
                utterance 3 over it; the caller must stop.
  early         barge in right after utterance 1 ends, before any caller audio is heard.

The microphone always publishes (silence between utterances), as a browser does, so the
simulator's VAD sees the end of each utterance. An answer is over when its audio has gone quiet
and (conversation, preconnect) the store holds it as a whole caller turn: a wait that polls, so
the run is as fast as the call, and an answer that a fault split in two is waited for in full.
--mid-cmd runs a fault: after the first answer, or (--mid-at answer2) 0.8 s into the second
answer; with --agent-leaves the client then waits for the agent to leave and stops. --stop-file:
the counselor hangs up as soon as that file exists (a killed agent answers nothing more).
--hostile (with conversation) attacks the agent through the room while the call goes on: the
counselor sends pre-connect streams over the byte budget, a second one, ones with sampleRate 1,
0 and 2^32 and 3 channels, one after speaking and 70 left open; a second participant
("intruder") sends a pre-connect stream, 100 byte streams of 64 KiB left open, an 8 MiB byte
stream and an 8 MiB text stream, and 20 000 data packets of 1 KiB. The conversation's checks
still hold (every answer heard, every turn stored); voice-test.sh checks the agent's log and RSS.
--attacks picks some of them (comma list of preconnect, open, big, flood; default all), to
measure each one's memory alone.
Prints one JSON line with the measurements; exits 0 when every check passes.
Runs inside the loopback-only network namespace (see netns-run.sh).
"""

import argparse
import asyncio
import json
import os
import sys
import time
import wave

import numpy as np
from livekit import api, rtc
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

RATE = 48000
FRAME = 480  # 10 ms
SPEECH_RMS = 300.0
PRE_CONNECT_TOPIC = "lk.agent.pre-connect-audio-buffer"
MIB = 1 << 20
# The agent's byte budget for a pre-connect buffer (agent/src/preconnect.rs).
PRE_CONNECT_BUDGET = 2 * MIB


def load_wav(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()


def read_turns(path: str) -> list[dict]:
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


async def send_bytes(lp, to: str, attributes, payload: bytes, topic=PRE_CONNECT_TOPIC, close=True, name="buffer"):
    writer = await lp.stream_bytes(
        name, mime_type="audio/pcm", topic=topic, attributes=attributes, destination_identities=[to]
    )
    if payload:
        await writer.write(payload)
    if close:
        await writer.aclose()
    return writer


async def intruder(args) -> int:
    """The second participant of --hostile: streams and packets at the agent, then leaves."""
    started = time.monotonic()
    token = (
        api.AccessToken(args.api_key, args.api_secret)
        .with_identity("intruder")
        .with_grants(api.VideoGrants(room_join=True, room=args.room))
        .to_jwt()
    )
    room = rtc.Room()
    await room.connect(args.url, token)
    lp, agent = room.local_participant, args.agent_identity
    attacks = args.attacks.split(",")
    left_open = []
    if "preconnect" in attacks:
        await send_bytes(lp, agent, {"sampleRate": "48000", "channels": "1"}, bytes(96000))  # not the counselor's
    if "open" in attacks:
        for i in range(100):
            left_open.append(
                await send_bytes(lp, agent, {}, os.urandom(64 * 1024), topic="x.files", close=False, name=f"open{i}")
            )
    if "big" in attacks:
        await send_bytes(lp, agent, {}, bytes(8 * MIB), topic="x.files", name="big")
        text = await lp.stream_text(topic="lk.chat", destination_identities=[agent])
        await text.write("x" * (8 * MIB))
        await text.aclose()
    flood_started = time.monotonic()
    if "flood" in attacks:
        payload = os.urandom(1024)
        for i in range(20000):
            await lp.publish_data(payload, reliable=i % 2 == 0, destination_identities=[agent])
    flood_s = time.monotonic() - flood_started
    await room.disconnect()
    print(json.dumps({"open_streams": len(left_open), "flood_packets": 20000, "flood_s": round(flood_s, 1),
                      "total_s": round(time.monotonic() - started, 1)}))
    return 0


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--api-secret", required=True)
    p.add_argument("--room", required=True)
    p.add_argument("--dispatch", default="proto-trainer")
    p.add_argument("--scenario", default="conversation")
    p.add_argument("--utterance", action="append", default=[], help="48 kHz mono WAV, in order")
    p.add_argument("--preconnect-wav")
    p.add_argument("--turns-file", required=True)
    p.add_argument("--reply-timeout", type=float, default=20.0)
    p.add_argument("--mid-cmd", help="shell command run after the first caller answer (a fault)")
    p.add_argument("--token", help="join with this token (POST /api/livekit/token) instead of signing one")
    p.add_argument("--mid-at", choices=["after1", "answer2"], default="after1")
    p.add_argument("--agent-leaves", action="store_true", help="after --mid-cmd the agent leaves")
    p.add_argument("--hostile", action="store_true", help="attack the agent through the room (see above)")
    p.add_argument("--intruder", action="store_true", help="be the hostile second participant (--hostile runs it)")
    p.add_argument("--attacks", default="preconnect,open,big,flood", help="with --hostile: which (see above)")
    p.add_argument("--agent-identity")
    p.add_argument("--stop-file", help="hang up once this file exists (the agent was killed: no answer comes)")
    args = p.parse_args()
    if args.intruder:
        return await intruder(args)
    utterances = [load_wav(u) for u in args.utterance]

    token = (
        api.AccessToken(args.api_key, args.api_secret)
        .with_identity("counselor")
        .with_name("counselor")
        .with_grants(api.VideoGrants(room_join=True, room=args.room, can_update_own_metadata=True))
        .with_room_config(RoomConfiguration(agents=[RoomAgentDispatch(agent_name=args.dispatch, metadata="{}")]))
    )
    if args.preconnect_wav or args.hostile:
        # Hostile: the agent holds live audio for the buffer, so the first streams arrive before
        # any microphone audio went to the model (the over-budget one is then received in part).
        token = token.with_attributes({"lk.agent.pre-connect-audio": "true"})
    token = args.token or token.to_jwt()

    room = rtc.Room()
    heard: list[tuple[float, float]] = []  # (arrival, rms) of every agent frame
    captions: list[dict] = []
    agent_joined = asyncio.get_running_loop().create_future()
    agent_left = asyncio.Event()
    states: list[str] = []

    async def record(track):
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        async for ev in stream:
            samples = np.frombuffer(ev.frame.data, dtype=np.int16)
            heard.append((time.monotonic(), float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))))

    @room.on("track_subscribed")
    def _on_track(track, _pub, participant):
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and track.kind == rtc.TrackKind.KIND_AUDIO:
            asyncio.ensure_future(record(track))
            if not agent_joined.done():
                agent_joined.set_result(participant)

    @room.on("participant_disconnected")
    def _on_left(participant):
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            agent_left.set()

    @room.on("participant_attributes_changed")
    def _on_attrs(changed, participant):
        if "lk.agent.state" in changed:
            states.append(changed["lk.agent.state"])

    async def read_caption(reader, sender: str):
        text = await reader.read_all()
        captions.append({"from": sender, "text": text, "attributes": dict(reader.info.attributes), "t": time.monotonic()})

    room.register_text_stream_handler(
        "lk.transcription", lambda reader, sender: asyncio.ensure_future(read_caption(reader, sender))
    )

    await room.connect(args.url, token)
    source = rtc.AudioSource(RATE, 1, queue_size_ms=50)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    publication = await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    speaking: list[np.ndarray] = []  # what the mic loop plays next; empty = silence

    async def mic():
        frame = rtc.AudioFrame.create(RATE, 1, FRAME)
        buf = np.frombuffer(frame.data, dtype=np.int16)
        while True:
            if speaking:
                chunk = speaking[0][:FRAME]
                speaking[0] = speaking[0][FRAME:]
                if len(speaking[0]) == 0:
                    speaking.pop(0)
                buf[:] = 0
                buf[: len(chunk)] = chunk
            else:
                buf[:] = 0
            await source.capture_frame(frame)

    mic_task = asyncio.ensure_future(mic())
    result: dict = {"scenario": args.scenario}
    failures: list[str] = []

    async def say(pcm: np.ndarray) -> float:
        speaking.append(pcm.copy())
        started = time.monotonic()
        while speaking:
            await asyncio.sleep(0.01)
        return started

    def stopped() -> bool:
        if args.stop_file and os.path.exists(args.stop_file):
            result["stopped"] = True
        return bool(result.get("stopped"))

    def whole_caller_turns() -> int:
        return sum(1 for t in read_turns(args.turns_file) if t["speaker"] == "caller" and not t.get("cut"))

    async def caller_answer(since: float, timeout: float, turns: int | None = None) -> tuple[float, float] | None:
        """Waits for caller audio after `since`, then quiet: 1.2 s, or 0.3 s once the store holds
        `turns` whole caller turns. Returns the (first, last) loud frame."""
        deadline = time.monotonic() + timeout
        first = None
        while time.monotonic() < deadline:
            if stopped():
                return None
            loud = [t for t, r in heard if t > since and r > SPEECH_RMS]
            if loud:
                first = loud[0]
                quiet = time.monotonic() - loud[-1]
                if turns is None and quiet > 1.2 or turns is not None and quiet > 0.3 and whole_caller_turns() >= turns:
                    return first, loud[-1]
            await asyncio.sleep(0.05)
        return (first, first) if first else None

    left_open = []  # writers never closed (kept referenced so they are not closed on collection)

    async def counselor_attacks():
        lp = room.local_participant
        good = {"sampleRate": "48000", "channels": "1"}
        to = result["agent"]
        await send_bytes(lp, to, good, bytes(PRE_CONNECT_BUDGET + MIB // 2))  # over the byte budget
        await send_bytes(lp, to, good, bytes(9600))  # a second stream
        for rate, channels, size in (("1", "1", 2 * MIB), ("0", "1", 9600), ("4294967296", "1", 9600), ("48000", "3", 9600)):
            await send_bytes(lp, to, {"sampleRate": rate, "channels": channels}, bytes(size))

    async def run_intruder():
        # Its own process: sharing this event loop, its flood would starve our microphone (a gap
        # in an utterance splits it, which is the client's fault, not the agent's).
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--intruder", "--url", args.url, "--api-key", args.api_key,
            "--api-secret", args.api_secret, "--room", args.room, "--turns-file", "-",
            "--agent-identity", result["agent"], "--attacks", args.attacks, stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            failures.append(f"intruder failed ({proc.returncode})")
        result["intruder"] = json.loads(out or b"{}")

    async def run_fault() -> bool:
        """Runs --mid-cmd; True when the call is over (the agent left, as it should)."""
        os.system(args.mid_cmd)
        result["fault_at"] = time.monotonic()
        if not args.agent_leaves:
            return False
        try:
            await asyncio.wait_for(agent_left.wait(), 10)
        except asyncio.TimeoutError:
            failures.append("the agent did not leave after the fault")
        return True

    try:
        agent = await asyncio.wait_for(agent_joined, 20)
        result["agent"] = agent.identity
        agent_seen = time.monotonic()  # the call (and its recording) runs from about here
        answers = []
        intruder_task = None
        if args.hostile:
            intruder_task = asyncio.ensure_future(run_intruder())
            if "preconnect" in args.attacks:
                await counselor_attacks()
        if args.preconnect_wav:
            pcm = load_wav(args.preconnect_wav)
            writer = await room.local_participant.stream_bytes(
                "preconnect-buffer",
                mime_type="audio/pcm",
                topic="lk.agent.pre-connect-audio-buffer",
                destination_identities=[agent.identity],
                attributes={"trackId": publication.sid, "sampleRate": str(RATE), "channels": "1"},
            )
            await writer.write(pcm.tobytes())
            await writer.aclose()
            got = await caller_answer(time.monotonic(), args.reply_timeout, turns=1)
            answers.append(got)
            if not got:
                failures.append("no caller answer to the pre-connect speech")
        if args.scenario in ("conversation", "preconnect"):
            for i, pcm in enumerate(utterances):
                start = await say(pcm)
                if i == 1 and args.mid_cmd and args.mid_at == "answer2":
                    while time.monotonic() < start + args.reply_timeout and not any(
                        t > start and r > SPEECH_RMS for t, r in heard
                    ):
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(0.8)  # a few words in
                    if await run_fault():
                        break
                got = await caller_answer(start, args.reply_timeout, turns=len(answers) + 1)
                if stopped():
                    break
                answers.append(got)
                if not got:
                    failures.append(f"no caller answer to utterance {i + 1}")
                if i == 0 and args.mid_cmd and args.mid_at == "after1" and await run_fault():
                    break
                if i == 0 and args.hostile and "preconnect" in args.attacks:
                    # After microphone audio: a well-formed buffer comes too late.
                    lp, to = room.local_participant, result["agent"]
                    await send_bytes(lp, to, {"sampleRate": "48000", "channels": "1"}, bytes(9600))
                if i == 0 and args.hostile and "open" in args.attacks:
                    # 70 pre-connect streams left open, 256 KiB each (what took an agent from 26 to
                    # 405 MiB when each could hold up to 10 MiB).
                    lp, to = room.local_participant, result["agent"]
                    for k in range(70):
                        left_open.append(
                            await send_bytes(lp, to, {}, bytes(256 * 1024), close=False, name=f"open{k}")
                        )
        elif args.scenario == "bargein":
            start = await say(utterances[0])
            answers.append(await caller_answer(start, args.reply_timeout))
            start = await say(utterances[1])
            # Wait until the caller is audibly answering, then talk over it.
            deadline = time.monotonic() + args.reply_timeout
            while time.monotonic() < deadline and not any(t > start and r > SPEECH_RMS for t, r in heard):
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.8)
            barge = time.monotonic()
            await say(utterances[2])
            loud_after = [t for t, r in heard if t > barge and r > SPEECH_RMS]
            # The caller's audio must stop soon after our speech starts (VAD onset + one frame +
            # the network and jitter buffer): it must not keep talking over us.
            stop = (loud_after[-1] - barge) if loud_after else 0.0
            result["caller_audio_after_barge_s"] = round(stop, 3)
            if stop > 1.0:
                failures.append(f"caller kept talking {stop:.2f}s into the barge-in")
            answers.append(await caller_answer(time.monotonic(), args.reply_timeout))
        elif args.scenario == "early":
            start = await say(utterances[0])
            # Speak again after a pause the VAD ends the turn on (its silence is 500 ms) but before
            # the caller's answer can play (the simulator delays it 2.5 s for this scenario).
            await asyncio.sleep(1.0)
            await say(utterances[1])
            answers.append(await caller_answer(time.monotonic(), args.reply_timeout))
        if intruder_task is not None:
            await asyncio.wait_for(intruder_task, 120)
        await asyncio.sleep(0.3)
        turns = read_turns(args.turns_file)
        result["turns_during_call"] = [(t["speaker"], t["text"], t.get("cut", False)) for t in turns]
        result["answers"] = len([a for a in answers if a])
        result["captions"] = [(c["from"], c["text"], c["attributes"].get("lk.transcription_final")) for c in captions]
        result["states"] = sorted(set(states))
        ids = [t["segmentId"] for t in turns]
        if len(ids) != len(set(ids)):
            failures.append("a turn was stored twice")
        starts = [t["startedMs"] for t in turns]
        if starts != sorted(starts):
            failures.append("turns not in spoken order")
        if not any(c["from"] == "counselor" for c in captions):
            failures.append("no counselor caption")
        if not any(c["from"] == agent.identity for c in captions):
            failures.append("no caller caption")
        if "speaking" not in states or "listening" not in states:
            failures.append(f"agent states seen: {states}")
    except Exception as e:  # noqa: BLE001 - reported as a failure
        failures.append(f"error: {e!r}")
    mic_task.cancel()
    result["failures"] = failures
    result["ok"] = not failures
    await room.disconnect()
    if "agent" in result:
        result["in_call_ms"] = round((time.monotonic() - agent_seen) * 1000)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
