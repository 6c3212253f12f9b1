// Grading against the truth on the feedback page: the determination and the facts in words, the
// caller's deviations said to be not held against the counselor, and suggestions placed at
// their turn with what they answer.
import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { suggestionAbout, suggestionAnnotations, TruthPanel } from "./Truth";

const truth = {
  facts: [
    { key: "plan", kind: "plan", text: "Plans to drive to the bridge.", rule: "when_asked", outcome: "elicited", askedTurns: [2], disclosedTurns: [3], deniedTurns: [] },
    { key: "gun", kind: "firearms", text: "A rifle in the garage.", rule: "never_volunteered", outcome: "missed", askedTurns: [], disclosedTurns: [], deniedTurns: [] },
    { key: "attempt", kind: "past_attempts", text: "An overdose last year.", rule: "when_asked", outcome: "withheld_by_caller", askedTurns: [4], disclosedTurns: [], deniedTurns: [5] },
  ],
  determination: { expected: "high", filed: "moderate", result: "under_estimate", heldHarmless: null },
  actions: [{ action: "means_restriction", answer: "no", turns: [], inCallRecord: false, note: "" }],
  deviations: [{ factKey: "attempt", kind: "denied", turns: [5] }],
  heldHarmless: [],
};

const evaluation = {
  criteria: [{ key: "risk_capability", checks: [{ key: "firearms", question: "Did the counselor ask about access to a gun?" }] }],
  truth,
  suggestions: [
    { id: "a", target: "fact:gun", turn: 3, text: "You could ask: \"Is there a gun at home?\"", aiText: null },
    { id: "b", target: "check:risk_capability.firearms", turn: 3, text: "Ask about guns here.", aiText: null },
  ],
};

describe("TruthPanel", () => {
  afterEach(cleanup);
  it("says how the determination compares and which facts came out", () => {
    render(<TruthPanel truth={truth as never} onTurn={() => {}} />);
    expect(screen.getByText("Lower than the scenario's risk")).toBeTruthy();
    expect(screen.getByText(/1 of 2 uncovered/)).toBeTruthy();
    expect(screen.getByText("Not uncovered")).toBeTruthy();
    expect(screen.getByText(/not marked down/)).toBeTruthy();
  });

  it("places suggestions at their turn with what they answer", () => {
    const notes = suggestionAnnotations(evaluation as never);
    expect(Object.keys(notes)).toEqual(["3"]);
    render(<div>{notes[3]}</div>);
    expect(screen.getByText("Ask about guns here.")).toBeTruthy();
    expect(suggestionAbout(evaluation as never, evaluation.suggestions[0] as never)).toBe("Not uncovered: A rifle in the garage.");
    expect(suggestionAbout(evaluation as never, evaluation.suggestions[1] as never)).toBe("Did the counselor ask about access to a gun?");
  });
});
