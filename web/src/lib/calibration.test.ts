import { describe, expect, it } from "vitest";
import type { Schemas } from "@/api/client";
import { calibrationItems, isOverridden, itemKey, pendingReview } from "./calibration";

const ts = "2026-01-01T00:00:00Z" as Schemas["Timestamp"];

function evaluation(review?: Partial<Schemas["ReviewSummary"]>, criteria?: Schemas["CriterionScore"][]): Schemas["Evaluation"] {
  return {
    id: "e",
    sessionId: "s",
    overallScore: 70,
    scoreBand: "developing",
    scoreBasis: {},
    rubricVersion: 2,
    criteria: criteria ?? [
      {
        key: "risk",
        name: "Risk assessment",
        rating: 3,
        comment: "",
        checks: [
          { key: "asks_directly", question: "Asked directly?", answer: "yes", turns: [2] },
          { key: "means", question: "Asked about means?", answer: "no", turns: [] },
        ],
      },
    ],
    strengths: [],
    areasToImprove: [],
    model: "m",
    createdAt: ts,
    review: review
      ? { reviewed: true, reviewedAt: ts, notes: [], overrides: [], flags: [], aiFlags: [], ...review }
      : null,
  } as Schemas["Evaluation"];
}

const flag = (flagType: Schemas["FlagType"], source: Schemas["FlagSource"] = "evaluation") =>
  ({ flagType, source }) as Schemas["SessionFlag"];

describe("calibration items", () => {
  it("lists each criterion's rating and checks, then the AI's flags, with the AI's answer beside what is in force", () => {
    const items = calibrationItems(evaluation(), [flag("missed_plan_or_means"), flag("ai_caller_problem", "user_feedback")]);
    expect(items.map(itemKey)).toEqual(["rating:risk", "check:risk.asks_directly", "check:risk.means", "flag:missed_plan_or_means"]);
    expect(items.every((i) => !isOverridden(i))).toBe(true);
    expect(items[1]).toMatchObject({ ai: "yes", current: "yes", options: ["yes", "no", "not_applicable"] });
    expect(items[3]).toMatchObject({ ai: "raised", current: "raised" });
  });

  it("in a reviewed evaluation shows the AI's value from the override, the supervisor's as current, and the reason", () => {
    const ev = evaluation(
      {
        overrides: [
          { id: "o1", reviewId: "r", kind: "check", target: "risk.asks_directly", aiValue: "yes", value: "no", reason: "leading question", createdAt: ts },
          { id: "o2", reviewId: "r", kind: "flag", target: "missed_plan_or_means", aiValue: "raised", value: "not_raised", reason: "means were asked", createdAt: ts },
          { id: "o3", reviewId: "r", kind: "flag", target: "suicide_not_asked", aiValue: "not_raised", value: "raised", reason: "never asked", createdAt: ts },
        ],
        aiFlags: ["missed_plan_or_means"],
        flags: ["suicide_not_asked"],
      },
      [
        {
          key: "risk",
          name: "Risk assessment",
          rating: 2,
          aiRating: 3,
          ratingOverridden: true,
          comment: "",
          checks: [{ key: "asks_directly", question: "Asked directly?", answer: "no", aiAnswer: "yes", turns: [] }],
        },
      ],
    );
    const items = calibrationItems(ev, []);
    const by = Object.fromEntries(items.map((i) => [itemKey(i), i]));
    expect(by["rating:risk"]).toMatchObject({ ai: "3", current: "2" });
    expect(by["check:risk.asks_directly"]).toMatchObject({ ai: "yes", current: "no", reason: "leading question" });
    expect(by["flag:missed_plan_or_means"]).toMatchObject({ ai: "raised", current: "not_raised" });
    expect(by["flag:suicide_not_asked"]).toMatchObject({ ai: "not_raised", current: "raised", reason: "never asked" });
    expect(items.filter(isOverridden).length).toBe(4);
  });

  it("adds a flag the supervisor is about to raise as not raised by the AI", () => {
    const items = calibrationItems(evaluation(), [], ["medical_advice"]);
    expect(items.find((i) => i.kind === "flag")).toMatchObject({ target: "medical_advice", ai: "not_raised", current: "not_raised" });
  });
});

describe("the pending review", () => {
  const items = calibrationItems(evaluation(), [flag("missed_plan_or_means")]);

  it("sends only the items whose value changed, with their trimmed reason", () => {
    const review = pendingReview(items, {
      "check:risk.asks_directly": { value: "no", reason: "  a leading question, not a direct ask " },
      "check:risk.means": { value: "no", reason: "" },
      "flag:missed_plan_or_means": { value: "not_raised", reason: "means were explored in turn 4" },
    });
    expect(review.overrides).toEqual([
      { kind: "check", target: "risk.asks_directly", value: "no", reason: "a leading question, not a direct ask" },
      { kind: "flag", target: "missed_plan_or_means", value: "not_raised", reason: "means were explored in turn 4" },
    ]);
    expect(review.missingReason).toEqual([]);
  });

  it("names the changed items that still lack a reason", () => {
    const review = pendingReview(items, { "rating:risk": { value: "1", reason: "   " } });
    expect(review.overrides).toHaveLength(1);
    expect(review.missingReason).toEqual(["rating:risk"]);
  });

  it("is empty when nothing changed (a review that confirms the AI)", () => {
    expect(pendingReview(items, {})).toEqual({ overrides: [], missingReason: [] });
  });
});
