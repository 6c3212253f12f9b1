import { describe, expect, it } from "vitest";
import { checkLabel, humanQuestion } from "./format";

describe("rubric text on pages", () => {
  it("drops the grader's not-applicable rule from questions stored before v3", () => {
    expect(humanQuestion("Did the counselor end warmly? (not_applicable only when the caller left before the counselor could reasonably do it.)")).toBe("Did the counselor end warmly?");
    expect(humanQuestion("Did the counselor avoid lecturing or moralising? (Never not_applicable: answer yes or no.)")).toBe("Did the counselor avoid lecturing or moralising?");
    expect(humanQuestion("When risk was imminent (an attempt in progress), did the counselor act?")).toBe("When risk was imminent (an attempt in progress), did the counselor act?");
    expect(humanQuestion(undefined)).toBe("");
  });

  it("labels a check key in words", () => {
    expect(checkLabel("asks_about_suicide.not_leading")).toBe("Asks about suicide: not leading");
    expect(checkLabel("closing")).toBe("Closing");
  });
});
