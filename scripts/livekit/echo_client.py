"""The counselor side of the echo test: a real LiveKit client (the `livekit` Python SDK, which
carries LiveKit's native WebRTC) that publishes a test signal and checks that the Rust agent
echoes it back.

The signal is a 440 Hz tone followed by an 880 Hz tone. Checking both halves proves the audio we
get back is our own, in order, and not a coincidence; the moment the echo switches from 440 to
880 Hz gives the round-trip delay.

With --dispatch NAME the client's token carries `RoomConfiguration.agents = [RoomAgentDispatch
{agent_name: NAME}]`, so the server dispatches the Rust worker into the room; the agent is then
recognised by its participant kind (AGENT). The client also checks the data paths both ways:
the agent's `lk.agent.state` attribute, and a data packet and a text stream each answered with
an `lk.transcription` text stream.

Prints one JSON line with the measurements and exits 0 when every check passes.
Runs inside the loopback-only network namespace (see netns-run.sh).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import numpy as np
from livekit import api, rtc
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

RATE = 48000
FRAME = 480  # 10 ms, what the SDK's AudioSource is fed in
TONES = (440.0, 880.0)
DEFAULT_MAX_DELAY = 1.0  # seconds: the round trip of an undisturbed echo


def dominant_frequency(samples: np.ndarray) -> float:
    """Frequency of the strongest FFT bin, Hann-windowed."""
    if len(samples) < 1024:
        return 0.0
    windowed = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed))
    spectrum[:5] = 0  # ignore DC and rumble
    return float(np.argmax(spectrum) * RATE / len(samples))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--api-secret", required=True)
    p.add_argument("--room", required=True)
    p.add_argument("--agent-identity", help="the agent's identity; default: any participant of kind AGENT")
    p.add_argument("--dispatch", metavar="AGENT_NAME", help="dispatch this agent with the token")
    p.add_argument("--tone-seconds", type=float, default=3.0)
    p.add_argument(
        "--max-delay",
        type=float,
        default=DEFAULT_MAX_DELAY,
        help="seconds allowed for the round trip (with a fault at the switch: for the recovery too)",
    )
    p.add_argument("--wait-agent", type=float, default=20.0)
    p.add_argument(
        "--speech-wav",
        help="publish this 48 kHz mono 16-bit WAV (e.g. espeak-ng speech) instead of the tones and "
        "check the echo by cross-correlation",
    )
    p.add_argument("--mid-cmd", help="shell command run when the tone switches (e.g. cut a socket)")
    p.add_argument(
        "--mid-simulate",
        help="at the tone switch, ask the agent (topic lk-test.simulate) to have the server simulate "
        "this fault on its session, e.g. node_failure (agent must run with --test-hooks)",
    )
    args = p.parse_args()
    if args.tone_seconds - max(args.max_delay - DEFAULT_MAX_DELAY, 0.0) < 1.5:
        p.error("--tone-seconds must exceed the extra --max-delay by 1.5 s, or too little of the "
                "second tone's echo is left to check")

    token = (
        api.AccessToken(args.api_key, args.api_secret)
        .with_identity("counselor")
        .with_name("counselor")
        .with_grants(api.VideoGrants(room_join=True, room=args.room))
    )
    if args.dispatch:
        token = token.with_room_config(
            RoomConfiguration(agents=[RoomAgentDispatch(agent_name=args.dispatch, metadata="{}")])
        )
    token = token.to_jwt()

    def is_agent(participant) -> bool:
        if args.agent_identity:
            return participant.identity == args.agent_identity
        return participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT

    room = rtc.Room()
    # (arrival time, samples) of every frame from the agent's track.
    received: list[tuple[float, np.ndarray]] = []
    agent_track = asyncio.get_running_loop().create_future()
    captions: list[dict] = []

    recorders: list[asyncio.Task] = []

    async def record(track):
        stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
        async for ev in stream:
            samples = np.frombuffer(ev.frame.data, dtype=np.int16).copy()
            # An ended track's stream may keep yielding digital silence; after a rejoin it would
            # interleave with the new track's audio, so only frames with signal are kept. The
            # speech check has one track and keeps every frame: the stream yields one per 10 ms
            # whether packets came or not, so the silent ones hold the speech's pauses (and any
            # gap) in place; dropping them squeezed the echo out of step with the speech.
            if args.speech_wav or np.any(samples):
                received.append((time.monotonic(), samples))

    @room.on("track_subscribed")
    def _on_track(track, _publication, participant):
        if is_agent(participant) and track.kind == rtc.TrackKind.KIND_AUDIO:
            # Every agent audio track is recorded: after a full rejoin the agent is a new
            # participant with a new track.
            recorders.append(asyncio.ensure_future(record(track)))
            if not agent_track.done():
                agent_track.set_result((track, participant))

    async def read_caption(reader, sender: str):
        text = await reader.read_all()
        captions.append({"from": sender, "text": text, "attributes": dict(reader.info.attributes)})

    room.register_text_stream_handler(
        "lk.transcription", lambda reader, sender: asyncio.ensure_future(read_caption(reader, sender))
    )

    await room.connect(args.url, token)
    print(f"client joined room {room.name}", file=sys.stderr)

    # A short queue, so capture_frame paces us in real time and the 440->880 switch time is
    # when the SDK actually takes the first 880 Hz frame, not up to a second earlier.
    source = rtc.AudioSource(RATE, 1, queue_size_ms=50)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )

    try:
        remote, agent = await asyncio.wait_for(agent_track, args.wait_agent)
    except asyncio.TimeoutError:
        print(json.dumps({"ok": False, "error": "agent track never subscribed"}))
        await room.disconnect()
        return 1


    if args.speech_wav:
        return await speech_check(args, room, source, agent, received, recorders)

    # Publish the two tones, paced in real time by the source's own queue.
    switch_at = None
    n = 0
    start = time.monotonic()
    for tone in TONES:
        if tone == TONES[1]:
            if args.mid_cmd:
                subprocess.run(args.mid_cmd, shell=True, check=True)
            if args.mid_simulate:
                await room.local_participant.publish_data(
                    args.mid_simulate.encode(), reliable=True, topic="lk-test.simulate"
                )
            switch_at = time.monotonic()
        for _ in range(int(args.tone_seconds * RATE / FRAME)):
            t = (n + np.arange(FRAME)) / RATE
            pcm = (8000 * np.sin(2 * np.pi * tone * t)).astype(np.int16)
            n += FRAME
            frame = rtc.AudioFrame.create(RATE, 1, FRAME)
            np.frombuffer(frame.data, dtype=np.int16)[:] = pcm
            await source.capture_frame(frame)
    sent_seconds = time.monotonic() - start
    await asyncio.sleep(args.max_delay + 0.5)  # let the tail of the echo arrive
    for r in recorders:
        r.cancel()

    # Data both ways: our packet reaches the agent, its caption stream reaches us.
    nonce = f"ping-{int(time.time() * 1000) % 100000}"
    await room.local_participant.publish_data(nonce.encode(), reliable=True, topic="test")
    # And a text stream (header/chunk/trailer), as typed chat would be sent.
    chat = f"chat-{nonce}"
    await room.local_participant.send_text(chat, topic="lk.chat")
    for _ in range(50):
        if len(captions) >= 2:
            break
        await asyncio.sleep(0.1)
    # The agent as it is now (after a rejoin it is a new participant with the same identity).
    agent = next((p for p in room.remote_participants.values() if p.identity == agent.identity), agent)
    agent_state = agent.attributes.get("lk.agent.state")
    agent_kind = int(agent.kind)

    # Analyse in 100 ms windows: frequency and level of the echo over time.
    windows = []
    buf, buf_t = [], None
    for t, s in received:
        if buf_t is None:
            buf_t = t
        buf.append(s)
        if sum(len(b) for b in buf) >= RATE // 10:
            x = np.concatenate(buf)
            windows.append((buf_t, dominant_frequency(x.astype(np.float64)), rms(x)))
            buf, buf_t = [], None

    loud = [w for w in windows if w[2] > 500]
    low = [w for w in loud if abs(w[1] - TONES[0]) < 15]
    high = [w for w in loud if abs(w[1] - TONES[1]) < 15]
    first_high = high[0][0] if high else None
    delay = (first_high - switch_at) if (first_high and switch_at) else None
    result = {
        "sent_seconds": round(sent_seconds, 2),
        "received_seconds": round(sum(len(s) for _, s in received) / RATE, 2),
        "loud_windows": len(loud),
        "windows_440": len(low),
        "windows_880": len(high),
        "echo_rms": round(float(np.median([w[2] for w in loud])), 1) if loud else 0.0,
        "switch_delay_s": round(delay, 3) if delay is not None else None,
    }
    # Each tone lasts tone_seconds = 10 * tone_seconds windows; ask for most of them, in order.
    # The second tone's echo may start up to max_delay late (a fault at the switch holds it back
    # until the session has recovered), so of it only the part that can still arrive after the
    # extra delay is asked for; fault scenarios play longer tones so that part stays long.
    need = int(args.tone_seconds * 10 * 0.7)
    late = max(args.max_delay - DEFAULT_MAX_DELAY, 0.0)
    need_high = int((args.tone_seconds - late) * 10 * 0.7)
    result["ok"] = bool(
        len(low) >= need
        and len(high) >= need_high
        and low[0][0] < high[0][0]
        and delay is not None
        and 0 <= delay <= args.max_delay
    )
    result["agent_identity"] = agent.identity
    result["agent_kind_is_agent"] = agent_kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    result["agent_state"] = agent_state
    result["captions"] = captions
    def answered(heard: str) -> bool:
        return any(
            c["text"] == f"heard: {heard}" and c["attributes"].get("lk.transcription_final") == "true"
            for c in captions
        )

    caption_ok = answered(nonce) and answered(chat)
    result["audio_ok"] = result.pop("ok")
    result["ok"] = bool(result["audio_ok"] and caption_ok and agent_state == "listening"
                        and (result["agent_kind_is_agent"] or not args.dispatch))
    await room.disconnect()
    print(json.dumps(result))
    return 0 if result["ok"] else 1


async def speech_check(args, room, source, agent, received, recorders) -> int:
    """Publishes the WAV, then finds it in the echo: the lag of the cross-correlation peak is the
    round-trip delay, and its normalised height says how much of the speech survived."""
    import wave

    with wave.open(args.speech_wav) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    start = time.monotonic()
    for i in range(0, len(speech) - FRAME + 1, FRAME):
        frame = rtc.AudioFrame.create(RATE, 1, FRAME)
        np.frombuffer(frame.data, dtype=np.int16)[:] = speech[i : i + FRAME]
        await source.capture_frame(frame)
    await asyncio.sleep(args.max_delay + 0.5)
    for r in recorders:
        r.cancel()
    # The echo as one signal, from the moment we started speaking.
    echo = np.concatenate([s for t, s in received if t >= start] or [np.zeros(1, np.int16)])

    # Compare loudness envelopes (RMS per 10 ms), not waveforms: two Opus passes keep speech
    # intelligible but not its phase, so a waveform correlation understates a perfect echo.
    def envelope(x: np.ndarray) -> np.ndarray:
        n = len(x) // FRAME
        e = np.sqrt(np.mean(x[: n * FRAME].astype(np.float64).reshape(n, FRAME) ** 2, axis=1))
        return e - e.mean()

    ea, eb = envelope(speech), envelope(echo)
    best_lag, best = 0, -1.0
    for lag in range(0, min(len(eb) - len(ea), int(args.max_delay * 100)) + 1):
        seg = eb[lag : lag + len(ea)]
        denom = np.sqrt(np.sum(ea**2) * np.sum((seg - seg.mean()) ** 2)) or 1.0
        c = float(np.sum(ea * (seg - seg.mean())) / denom)
        if c > best:
            best_lag, best = lag, c
    result = {
        "speech_seconds": round(len(speech) / RATE, 2),
        "echo_seconds": round(len(echo) / RATE, 2),
        "lag_s": round(best_lag / 100, 3),
        "envelope_correlation": round(best, 3),
        "agent_identity": agent.identity,
    }
    # A true echo's envelope tracks the speech closely (> 0.9 in practice); silence, noise or a
    # different utterance stay far below 0.8.
    result["ok"] = bool(best >= 0.8)
    await room.disconnect()
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the SDK's native FFI has been seen aborting there ("panic in a
    # function that cannot unwind") after a clean disconnect, which would turn a passed check
    # into a failed test.
    os._exit(code)
