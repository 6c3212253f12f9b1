"""Checks a call's server-side recording with an independent decoder (libsndfile, through the
`soundfile` package): the Ogg/Opus file decodes, is stereo, lasts as long as the call (within 1 s),
and holds each speaker on their own side — the counselor left, the caller right — at the times the
stored turns say they spoke.

usage: check_recording.py RECORDING.ogg TURNS.jsonl CALL_MS
Prints one JSON line; exits non-zero when a check fails.
"""

import json
import sys

import numpy as np
import soundfile as sf


def rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def main():
    path, turns_path, call_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    fails = []
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    channels = audio.shape[1]
    seconds = audio.shape[0] / rate
    if channels != 2:
        fails.append(f"{channels} channels, want 2")
    if abs(seconds * 1000 - call_ms) > 1000:
        fails.append(f"lasts {seconds:.2f} s, the call {call_ms / 1000:.2f} s")
    turns = [json.loads(line) for line in open(turns_path) if line.strip()]
    sides = []
    for t in turns:
        a, b = int(t["startedMs"] * rate / 1000), int(t["endedMs"] * rate / 1000)
        if b <= a or channels != 2:
            continue
        left, right = rms(audio[a:b, 0]), rms(audio[a:b, 1])
        own, other = (left, right) if t["speaker"] == "counselor" else (right, left)
        sides.append({"speaker": t["speaker"], "own": round(own, 4), "other": round(other, 4)})
        # The speaker's side carries the speech; the other side is quiet or far quieter.
        if own < 0.005 or own < 3 * other:
            fails.append(f"{t['speaker']} turn at {t['startedMs']} ms is not on its own side: {own:.4f} vs {other:.4f}")
    print(json.dumps({"channels": channels, "rate": rate, "seconds": round(seconds, 2),
                      "callSeconds": round(call_ms / 1000, 2), "sides": sides, "fails": fails}))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
