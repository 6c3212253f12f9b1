import { describe, expect, it } from "vitest";
import { feedbackPollMs, POLL_MS, VOICE_GRADING_WAIT_MS, voiceGradingPending } from "./feedbackPoll";

const now = Date.parse("2026-01-01T12:00:00Z");
const ago = (ms: number) => new Date(now - ms).toISOString();

describe("the feedback page's polling", () => {
  it("polls while an evaluation runs and stops once there is one", () => {
    expect(feedbackPollMs({ kind: "chat", status: "completed", evaluationStatus: "running" }, now)).toBe(POLL_MS);
    expect(feedbackPollMs({ kind: "voice", status: "completed", evaluationStatus: "completed", evaluation: {} }, now)).toBe(false);
  });
  it("does not poll an ungraded chat session (the counselor starts its grading)", () => {
    expect(feedbackPollMs({ kind: "chat", status: "completed", evaluationStatus: "not_started", endedAt: ago(1000) }, now)).toBe(false);
  });
  it("polls a voice call the agent is still saving, and its queued grading for a while", () => {
    const call = { kind: "voice", evaluationStatus: "not_started" };
    expect(feedbackPollMs({ ...call, status: "active" }, now)).toBe(POLL_MS);
    expect(feedbackPollMs({ ...call, status: "completed", endedAt: ago(5000) }, now)).toBe(POLL_MS);
    expect(voiceGradingPending({ ...call, status: "completed", endedAt: ago(5000) }, now)).toBe(true);
    expect(feedbackPollMs({ ...call, status: "completed", endedAt: ago(VOICE_GRADING_WAIT_MS + 1) }, now)).toBe(false);
    expect(voiceGradingPending({ ...call, status: "completed", endedAt: ago(VOICE_GRADING_WAIT_MS + 1) }, now)).toBe(false);
  });
  it("stops on a failed grading or an abandoned call", () => {
    expect(feedbackPollMs({ kind: "voice", status: "completed", evaluationStatus: "failed", endedAt: ago(1000) }, now)).toBe(false);
    expect(feedbackPollMs({ kind: "voice", status: "abandoned", evaluationStatus: "not_started", endedAt: ago(1000) }, now)).toBe(false);
  });
});
