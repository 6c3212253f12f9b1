/**
 * How often the feedback page asks again for a session, or false to stop. A chat session is
 * graded while the counselor waits (the server marks it running). A voice call is graded in the
 * background after the agent saves it: the session stays active until the agent reports the
 * call's end, then the grading job is queued (not started) until a worker claims it — the page
 * keeps asking through both, for a bounded time, instead of offering a button that cannot work.
 */
export const POLL_MS = 1500;
/** After a voice call ended, how long the page waits for its queued grading. */
export const VOICE_GRADING_WAIT_MS = 3 * 60_000;

export interface PolledSession {
  kind: string;
  status: string;
  evaluationStatus: string;
  endedAt?: string | null;
  evaluation?: unknown;
}

export function feedbackPollMs(s: PolledSession | undefined, nowMs: number): number | false {
  if (!s || s.evaluation) return false;
  if (s.evaluationStatus === "running") return POLL_MS;
  if (s.kind !== "voice" || s.evaluationStatus === "failed") return false;
  if (s.status === "active") return POLL_MS;
  if (s.status === "completed" && s.evaluationStatus === "not_started" && s.endedAt) {
    return nowMs - Date.parse(s.endedAt) < VOICE_GRADING_WAIT_MS ? POLL_MS : false;
  }
  return false;
}

/** Whether a voice call is still being saved or graded in the background (nothing to click yet). */
export function voiceGradingPending(s: PolledSession, nowMs: number): boolean {
  return s.kind === "voice" && feedbackPollMs(s, nowMs) !== false && s.evaluationStatus !== "running";
}
