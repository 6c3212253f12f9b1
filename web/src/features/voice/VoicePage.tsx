// A voice practice call in the browser, on LiveKit's own pieces: `POST /api/livekit/token`
// creates the session and dispatches the agent (the AI caller) into the room; the microphone
// starts with a pre-connect buffer so the counselor can speak at once; agent state, a bar
// visualizer of the caller's voice, live captions for both sides (`useTranscriptions`), device
// selection, `StartAudio` for autoplay blocks, mute, a timer and hang up. If the caller has not
// joined in time, the page says so instead of waiting silently. While connected, leaving the page
// asks first (`beforeunload`). Hang-up and reload differ: only "Hang up" (or leaving the page
// inside the app) sends LiveKit's leave, which ends the call at once; the room does not leave on
// page unload (`disconnectOnPageLeave: false`), so a reload or a closed tab is a lost connection,
// which the agent waits `COUNSELOR_REJOIN_GRACE` (60 s) for. If the caller leaves while the
// counselor is still connected (its agent worker died), the page says the caller dropped, and
// hanging up ends the session so it is graded at once. After a reload in the same tab the
// page rejoins that call by itself (the tab's sessionStorage remembers it); elsewhere, or after
// a dropped connection, it offers "Rejoin call": a token for the same room and session.
// Before connecting, a microphone test (MicTest); during the call, a level meter (MicMeter);
// both say so when the microphone sends silence. Captions follow the newest line (CaptionList).
// Loaded on demand (React.lazy): LiveKit's client is large and only this page needs it.
import { BarVisualizer, RoomAudioRenderer, RoomContext, StartAudio, useLocalParticipant, useMediaDeviceSelect, useTranscriptions, useVoiceAssistant } from "@livekit/components-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { Room, RoomEvent } from "livekit-client";
import { useEffect, useMemo, useRef, useState } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { Button, Card, ErrorNote, Notice, PageTitle, Select, Spinner } from "@/components/ui";
import { formatClock, label } from "@/lib/format";
import { keys, lists } from "@/api/keys";
import { CaptionList } from "./CaptionList";
import { MicMeter } from "./MicMeter";
import { MicTest } from "./MicTest";

/** How long the AI caller may take to join before the page reports it. */
export const AGENT_JOIN_TIMEOUT_MS = 20_000;

type Token = Schemas["VoiceToken"];

// Hanging up (or a drop) while a caption is still streaming ends that stream with LiveKit's
// "Room disconnected in the middle of receiving data"; the captions hook subscribes without an
// error handler, so RxJS rethrows it from a timer as an uncaught error. The caption simply stops
// there: no error for the page. Registered once, with the page's module, because it lands after
// the call's components have unmounted.
function isCutCaption(error: unknown): boolean {
  const e = error as { name?: string; reasonName?: string } | null;
  return e?.name === "DataStreamError" && e.reasonName === "AbnormalEnd";
}
if (typeof window !== "undefined") {
  window.addEventListener("error", (e: ErrorEvent) => {
    if (isCutCaption(e.error)) e.preventDefault();
  });
  window.addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
    if (isCutCaption(e.reason)) e.preventDefault();
  });
}

export default function VoicePage() {
  const [params] = useSearchParams();
  const assignmentId = params.get("assignmentId");
  // No leave on page unload: a reload must look like a lost connection (the agent waits for a
  // rejoin), not a hang-up (the agent ends the call at once).
  const room = useMemo(() => new Room({ adaptiveStream: true, dynacast: true, disconnectOnPageLeave: false }), []);
  const [call_, setCall] = useState<Token | null>(null);
  // A live call of this assignment (or free practice) left by a reload: offered to rejoin.
  const liveQuery = { type: assignmentId ? "assigned" : "free_practice", status: "active", assignmentId: assignmentId ?? undefined, limit: 20 } as const;
  const live = useQuery({
    queryKey: keys.sessions.list(liveQuery),
    queryFn: () => call(api.GET("/api/sessions", { params: { query: liveQuery } })),
    select: (rows) => rows.find((s) => s.kind === "voice" && (s.assignmentId ?? null) === assignmentId) ?? null,
  });
  const start = useMutation({
    mutationFn: async (rejoinSessionId?: string) => {
      const token = await call(api.POST("/api/livekit/token", { body: rejoinSessionId ? { rejoinSessionId } : { assignmentId } }));
      // Microphone first with a pre-connect buffer: what the counselor says while the room
      // connects reaches the agent once it joins.
      await Promise.all([
        room.localParticipant.setMicrophoneEnabled(true, undefined, { preConnectBuffer: true }),
        room.connect(token.url, token.token),
      ]);
      return token;
    },
    onSuccess: (token) => {
      rememberCall(token.sessionId);
      setCall(token);
    },
  });
  useEffect(() => () => void room.disconnect(), [room]);
  // Reloaded mid-call: the call this tab was in is still live, so rejoin it without a click.
  const autoRejoined = useRef(false);
  useEffect(() => {
    if (autoRejoined.current || call_ || !live.data || live.data.id !== rememberedCall()) return;
    autoRejoined.current = true;
    start.mutate(live.data.id);
  }, [live.data, call_, start]);
  // The same query (and cache) as the counselor's home, to name what is being practised.
  const assignments = useQuery({
    queryKey: keys.assignments.list(lists.myAssignments),
    queryFn: () => call(api.GET("/api/assignments", { params: { query: lists.myAssignments } })),
    enabled: !!assignmentId,
  });
  const scenario = assignments.data?.find((a) => a.id === assignmentId)?.scenario.title;
  return (
    <RoomContext.Provider value={room}>
      <div className="flex flex-col gap-4">
        <PageTitle>Voice practice</PageTitle>
        <p className="-mt-3 text-sm text-slate-700">{assignmentId ? (scenario ? `Scenario: ${scenario}` : "Assigned scenario") : "Free practice"}</p>
        {!call_ ? (
          <Card>
            <p className="mb-3 text-sm">When you connect, your browser asks for the microphone. The AI caller joins the call; captions appear for both of you.</p>
            <div className="mb-3"><MicTest onDevice={(id) => void room.switchActiveDevice("audioinput", id).catch(() => {})} /></div>
            {live.data && (
              <Notice tone="warning">{start.isPending && autoRejoined.current ? "Rejoining your call…" : "Your call is still open: the caller is waiting for you. Rejoin it to carry on where you left off."}</Notice>
            )}
            <div className="mt-3 flex items-center gap-3">
              {live.data && <Button onClick={() => start.mutate(live.data!.id)} disabled={start.isPending}>Rejoin call</Button>}
              <Button variant={live.data ? "secondary" : "primary"} onClick={() => start.mutate(undefined)} disabled={start.isPending}>{live.data ? "Start a new call" : "Connect"}</Button>
              {start.isPending && <Spinner label="Connecting…" />}
            </div>
            <div className="mt-3"><ErrorNote error={start.error} /></div>
          </Card>
        ) : (
          <InCall room={room} token={call_} onRejoin={() => start.mutate(call_.sessionId)} rejoining={start.isPending} />
        )}
      </div>
    </RoomContext.Provider>
  );
}

export function InCall({ room, token, onRejoin, rejoining }: { room: Room; token: Token; onRejoin: () => void; rejoining: boolean }) {
  const navigate = useNavigate();
  const { state, audioTrack, agent } = useVoiceAssistant();
  const { isMicrophoneEnabled, localParticipant, microphoneTrack } = useLocalParticipant();
  const transcriptions = useTranscriptions();
  const [elapsed, setElapsed] = useState(0);
  const [timedOut, setTimedOut] = useState(false);
  const [ended, setEnded] = useState(false);
  const startedAt = useRef(Date.now());
  useEffect(() => {
    const tick = setInterval(() => setElapsed(Date.now() - startedAt.current), 1000);
    return () => clearInterval(tick);
  }, []);
  useEffect(() => {
    if (agent) {
      setTimedOut(false);
      return;
    }
    const timer = setTimeout(() => setTimedOut(true), AGENT_JOIN_TIMEOUT_MS);
    return () => clearTimeout(timer);
  }, [agent]);
  // The caller was in the call and is gone while the counselor is still connected: its agent
  // worker died, or the service ended the call. Said plainly, instead of "waiting to join".
  const [agentSeen, setAgentSeen] = useState(false);
  useEffect(() => {
    if (agent) setAgentSeen(true);
  }, [agent]);
  const callerDropped = agentSeen && !agent && !ended;
  useEffect(() => {
    const onDisconnect = () => setEnded(true);
    room.on(RoomEvent.Disconnected, onDisconnect);
    return () => void room.off(RoomEvent.Disconnected, onDisconnect);
  }, [room]);
  const hungUp = useRef(false);
  // While connected, leaving the page (reload, closing the tab, a stray click) asks first.
  useEffect(() => {
    if (ended) return;
    const warn = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = "";
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [ended]);
  useEffect(() => {
    const onConnected = () => setEnded(false);
    room.on(RoomEvent.Connected, onConnected);
    return () => void room.off(RoomEvent.Connected, onConnected);
  }, [room]);
  const hangUp = async () => {
    hungUp.current = true;
    forgetCall();
    // A dropped call is ended now, so its grading starts instead of waiting for the sweep.
    if (callerDropped) await call(api.POST("/api/sessions/{id}/end", { params: { path: { id: token.sessionId } } })).catch(() => undefined);
    await room.disconnect();
    navigate(`/feedback/${token.sessionId}`);
  };
  return (
    <>
      <RoomAudioRenderer />
      <StartAudio label="Click to allow the caller's audio" className="rounded-md bg-amber-600 px-3 py-2 text-sm font-medium text-white" />
      {callerDropped && (
        <Notice tone="warning">
          The caller dropped: the voice service lost or ended this call. What was said so far is saved. Hang up to see your feedback.
        </Notice>
      )}
      {timedOut && !agent && !agentSeen && (
        <Notice tone="warning">
          The AI caller has not joined after {AGENT_JOIN_TIMEOUT_MS / 1000} seconds. The voice service may be busy or down: hang up and try again, or practise by chat.
        </Notice>
      )}
      {ended && !hungUp.current && (
        <Notice tone="warning">
          The connection dropped. The caller waits about a minute for you:{" "}
          <Button onClick={onRejoin} disabled={rejoining}>Rejoin call</Button>
        </Notice>
      )}
      <div className="grid gap-4 md:grid-cols-3">
        <Card title="Caller">
          <p className="mb-2 text-sm" aria-live="polite">
            {agent ? `The caller is ${state === "speaking" ? "speaking" : state === "thinking" ? "thinking" : state === "listening" ? "listening" : label(state)}.` : agentSeen ? "The caller has left the call." : "Waiting for the caller to join…"}
          </p>
          <div className="h-24 text-blue-700" aria-hidden>
            <BarVisualizer state={state} track={audioTrack} barCount={7} className="flex h-full items-center justify-center gap-1 [&>span]:w-3 [&>span]:rounded [&>span]:bg-current" />
          </div>
          <p className="mt-2 font-mono text-lg" aria-label={`Call time ${formatClock(elapsed)}`}>{formatClock(elapsed)}</p>
        </Card>
        <Card title="Controls">
          <div className="flex flex-col gap-3">
            <Button variant="secondary" onClick={() => localParticipant.setMicrophoneEnabled(!isMicrophoneEnabled)} aria-pressed={!isMicrophoneEnabled}>
              {isMicrophoneEnabled ? "Mute microphone" : "Unmute microphone"}
            </Button>
            <MicMeter track={microphoneTrack?.track?.mediaStreamTrack} muted={!isMicrophoneEnabled} />
            <DeviceSelect kind="audioinput" label="Microphone" room={room} />
            <DeviceSelect kind="audiooutput" label="Speaker" room={room} />
            <Button variant="danger" onClick={hangUp}>Hang up</Button>
          </div>
        </Card>
        <Card title="Live captions">
          <CaptionList captions={transcriptions.map((t) => ({ id: t.streamInfo.id, mine: t.participantInfo.identity === room.localParticipant.identity, text: t.text }))} />
        </Card>
      </div>
    </>
  );
}

/** The call this tab is in, kept across a reload (sessionStorage is per tab), so a reload
 * rejoins it by itself while another tab or a later visit only offers to. */
const CALL_KEY = "pt-voice-call";

function rememberCall(sessionId: string) {
  try {
    sessionStorage.setItem(CALL_KEY, sessionId);
  } catch {
    // Storage blocked: the page offers "Rejoin call" instead.
  }
}

function rememberedCall(): string | null {
  try {
    return sessionStorage.getItem(CALL_KEY);
  } catch {
    return null;
  }
}

function forgetCall() {
  try {
    sessionStorage.removeItem(CALL_KEY);
  } catch {
    // Nothing remembered.
  }
}

/**
 * A device picker on LiveKit's `useMediaDeviceSelect`, as a native select: LiveKit's own
 * `MediaDeviceSelect` renders options holding buttons outside a listbox, which screen readers
 * cannot use (axe: aria-required-parent, nested-interactive).
 */
function DeviceSelect({ kind, label: text, room }: { kind: MediaDeviceKind; label: string; room: Room }) {
  const { devices, activeDeviceId, setActiveMediaDevice } = useMediaDeviceSelect({ kind, room });
  const [error, setError] = useState<unknown>(null);
  if (devices.length === 0) return null;
  const active = devices.some((d) => d.deviceId === activeDeviceId) ? activeDeviceId : devices[0]!.deviceId;
  return (
    <div className="text-sm">
      <Select label={text} value={active} onChange={(e) => setActiveMediaDevice(e.target.value).then(() => setError(null), setError)}>
        {devices.map((d, i) => <option key={d.deviceId || i} value={d.deviceId}>{d.label || `${text} ${i + 1}`}</option>)}
      </Select>
      <ErrorNote error={error} />
    </div>
  );
}
