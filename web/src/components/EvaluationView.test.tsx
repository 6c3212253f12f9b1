// The feedback page's evaluation: a gated score says which gate held it and why, blocked checks
// read "not reached", and neither grader instructions nor internal keys reach the page.
import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { EvaluationView } from "./EvaluationView";

const check = (key: string, answer: string, question: string, blockedBy: string | null = null) => ({
  key, answer, question, turns: [2], note: "", aiAnswer: null, blockedBy,
});

const evaluation = {
  id: "e1", sessionId: "s1", overallScore: 20.1, scoreBand: "needs_work", rubricVersion: 3, model: "m", createdAt: "2026-01-01T00:00:00Z",
  strengths: [], areasToImprove: [], facts: [], review: null,
  scoreBasis: {
    notAssessed: [], notApplicable: [], blocked: [], cappedBy: ["missed_rescue"], uncapped: 80.4, absentReason: null,
    gates: [{ flag: "missed_rescue", severity: "critical", cap: 25, source: "answers", turns: [4], reason: "The caller's life was in danger right now, and no rescue was started." }],
  },
  criteria: [{
    key: "imminent_risk", name: "Imminent risk", rating: 1, comment: "", notAssessed: false, ratingOverridden: false, aiRating: null,
    checks: [
      check("active_rescue", "no", "When risk was imminent, did the counselor move to active rescue?"),
      check("stays_on_line", "no", "During the emergency response, did the counselor stay on the line? (not_applicable only when risk was not imminent.)", "imminent_risk.active_rescue"),
    ],
  }],
};

describe("EvaluationView", () => {
  afterEach(cleanup);
  it("shows the gate that held the score and why", () => {
    render(<EvaluationView evaluation={evaluation as never} onEvidence={() => {}} />);
    const gate = screen.getByRole("alert", { name: "Safety gate" });
    expect(gate.textContent).toContain("Missed rescue");
    expect(gate.textContent).toContain("no rescue was started");
    expect(gate.textContent).toContain("found in the evaluation's answers");
    expect(gate.textContent).toContain("the rest of the call scored 80");
  });
  it("says beside the score why it was capped, naming who raised the flag", () => {
    const byHand = { ...evaluation, overallScore: 25, scoreBasis: { ...evaluation.scoreBasis, uncapped: 59, gates: [{ ...evaluation.scoreBasis.gates[0]!, source: "supervisor" }] } };
    render(<EvaluationView evaluation={byHand as never} onEvidence={() => {}} />);
    const score = screen.getByLabelText("Overall score 25 of 100");
    const note = document.getElementById(score.getAttribute("aria-describedby") ?? "");
    expect(note?.textContent).toBe("Capped at 25 because of a safety flag: Missed rescue (raised by a supervisor); the rest of the call scored 59.");
  });
  it("marks blocked checks as not reached, with human questions only", () => {
    const { container } = render(<EvaluationView evaluation={evaluation as never} onEvidence={() => {}} />);
    expect(screen.getByText("Not reached")).toBeTruthy();
    expect(container.textContent).toContain("Not reached because an earlier step was not done (“When risk was imminent, did the counselor move to active rescue?”)");
    expect(container.textContent).not.toContain("not_applicable");
    expect(container.textContent).not.toContain("imminent_risk.active_rescue");
  });
});
