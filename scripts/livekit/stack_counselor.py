"""A counselor against the whole stack (stack-test.sh): signs in to the admin service as a demo
counselor, asks `POST /api/livekit/token` for a voice session, and runs voice_client.py with that
token. While the call runs it copies the session's stored transcript from the API into the
client's --turns-file (so the client's "turns in the store during the call" check reads the real
store), and after the client has left it waits for the evaluation and measures how long after
the hang-up it was stored.

Checks at the end: the transcript holds every spoken turn exactly once, in spoken order
(counselor, caller, ... six turns), the session is completed, and the evaluation was stored
within --grading-limit-ms of the hang-up. Prints one JSON line; exits 0 when every check passes.
Standard library only (runs with the LiveKit venv's python). Inside the loopback-only namespace.
"""

import argparse
import http.cookiejar
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


class Api:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def call(self, method: str, path: str, body=None, timeout: float = 5.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if self.csrf:
            req.add_header("x-csrf-token", self.csrf)
        with self.opener.open(req, timeout=timeout) as r:
            return json.loads(r.read() or b"null")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True, help="the admin service, e.g. http://127.0.0.1:3103")
    p.add_argument("--turns-file", required=True)
    p.add_argument("--want-turns", type=int, default=6)
    p.add_argument("--grading-limit-ms", type=float, default=1000.0)
    p.add_argument("--call-only", action="store_true",
                   help="stop after the call (the service is stopped mid-call; the caller checks the database)")
    p.add_argument("--counselor", type=int, default=0, help="which demo counselor (calls at once: one each)")
    p.add_argument("--killed", action="store_true",
                   help="the agent is killed mid-call: check that the stored turns survive, not the whole call")
    p.add_argument("client", nargs=argparse.REMAINDER, help="-- voice_client.py and its arguments")
    args = p.parse_args()
    client = [a for a in args.client if a != "--"] if args.client[:1] == ["--"] else args.client

    api = Api(args.base)
    counselor = [u for u in api.call("GET", "/api/auth/demo-users") if u["role"] == "counselor"][args.counselor]
    api.csrf = api.call("POST", "/api/auth/demo-login", {"userId": counselor["id"]})["csrfToken"]
    grant = api.call("POST", "/api/livekit/token", {})
    session_id = grant["sessionId"]
    result: dict = {"session": session_id, "room": grant["roomName"]}
    failures: list[str] = []

    # The store, as the API shows it, copied into the client's turns file while the call runs.
    seen = {"max": 0, "errors": 0, "full_at": None}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                s = api.call("GET", f"/api/sessions/{session_id}", timeout=2.0)
            except (urllib.error.URLError, OSError, ValueError):
                seen["errors"] += 1  # the admin service may be down (the fault): keep trying
                time.sleep(0.2)
                continue
            turns = s["transcript"]
            lines = [
                json.dumps({"segmentId": t["id"], "speaker": t["speaker"], "text": t["text"],
                            "startedMs": t["startedMs"], "cut": False})
                for t in turns
            ]
            tmp = args.turns_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("".join(line + "\n" for line in lines))
            os.replace(tmp, args.turns_file)
            seen["max"] = max(seen["max"], len(turns))
            if len(turns) >= args.want_turns and seen["full_at"] is None:
                seen["full_at"] = time.monotonic()
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    started = time.monotonic()
    proc = subprocess.Popen(
        client + ["--token", grant["token"], "--url", grant["url"], "--turns-file", args.turns_file],
        stdout=subprocess.PIPE, text=True,
    )
    # The client prints its result right after leaving the room: that line is the hang-up.
    line = proc.stdout.readline()
    left = time.monotonic()
    proc.wait()
    stop.set()
    poller.join()
    try:
        result["client"] = json.loads(line)
    except ValueError:
        result["client"] = line.strip()
    # The client knows the counselor as "counselor" (the identity it signs itself); here the
    # admin service named it by the user's id, so its counselor-caption check is redone here.
    client_failures = result["client"].get("failures", ["no result"]) if isinstance(result["client"], dict) else ["no result"]
    if "no counselor caption" in client_failures:
        captions = result["client"].get("captions", [])
        if any(c[0] == counselor["id"] for c in captions):
            client_failures = [f for f in client_failures if f != "no counselor caption"]
    # Killed mid-call, the client cannot hear every answer: the store is what is checked.
    if proc.returncode != 0 and client_failures and not args.killed:
        failures.append(f"voice client failed ({proc.returncode}): {client_failures}")
    result["call_s"] = round(left - started, 1)
    result["turns_seen_during_call"] = seen["max"]
    if args.killed:
        # The agent died mid-call: what the store had during the call is still there, once each
        # (stack-test.sh also holds it to every turn the killed agent logged as final).
        during = {json.loads(line)["segmentId"] for line in open(args.turns_file) if line.strip()}
        session = api.call("GET", f"/api/sessions/{session_id}")
        stored = [t["id"] for t in session["transcript"]]
        result["speakers"] = [t["speaker"] for t in session["transcript"]]
        if not during <= set(stored):
            failures.append(f"turns stored during the call are gone: {sorted(during - set(stored))}")
        if len(stored) != len(set(stored)):
            failures.append("a turn was stored twice")
        result["failures"] = failures
        result["ok"] = not failures
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    if seen["full_at"] is None or seen["full_at"] > left:
        failures.append(f"only {seen['max']} turns in the store during the call, want {args.want_turns}")

    if args.call_only:
        result["ok"] = True
        print(json.dumps(result))
        return 0

    # After the hang-up: the evaluation, graded from the durable queue.
    evaluated_ms = None
    deadline = left + 20
    session = None
    while time.monotonic() < deadline:
        try:
            session = api.call("GET", f"/api/sessions/{session_id}", timeout=2.0)
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.05)
            continue
        if session.get("evaluation"):
            evaluated_ms = (time.monotonic() - left) * 1000
            break
        time.sleep(0.02)
    if session is None:
        failures.append("the session could not be read after the call")
        session = {"transcript": [], "status": None}
    result["grading_ms"] = None if evaluated_ms is None else round(evaluated_ms)
    if evaluated_ms is None:
        failures.append(f"no evaluation 20 s after the hang-up ({session.get('evaluationStatus')})")
    elif evaluated_ms > args.grading_limit_ms:
        failures.append(f"evaluation stored {evaluated_ms:.0f} ms after the hang-up, over {args.grading_limit_ms:.0f}")

    turns = session["transcript"]
    speakers = [t["speaker"] for t in turns]
    result["status"] = session.get("status")
    result["end_reason"] = session.get("endReason")
    result["speakers"] = speakers
    if session.get("status") != "completed":
        failures.append(f"session status {session.get('status')}")
    if len(turns) != args.want_turns:
        failures.append(f"{len(turns)} turns stored, want {args.want_turns}: {[t['text'] for t in turns]}")
    if speakers != ["counselor", "caller"] * (len(turns) // 2) or len(turns) % 2:
        failures.append(f"speakers {speakers}")
    texts = [(t["speaker"], t["text"]) for t in turns]
    if len(set(texts)) != len(texts):
        failures.append("a turn was stored twice")
    starts = [t["startedMs"] for t in turns]
    if starts != sorted(starts):
        failures.append("turns not in spoken order")
    result["failures"] = failures
    result["ok"] = not failures
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
