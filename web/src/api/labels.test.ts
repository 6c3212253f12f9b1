import { describe, expect, it } from "vitest";
import { ApiError } from "./client";
import { enumLabel, fieldLabel } from "./labels";
import { label } from "@/lib/format";

describe("words for people", () => {
  it("shows enum values through the one table", () => {
    expect(label("ai_caller_problem")).toBe("AI caller problem");
    expect(enumLabel("AssignmentStatus", "pending")).toBe("Not started");
    expect(label("pending")).toBe("Pending");
    expect(enumLabel("CheckAnswer", "not_applicable")).toBe("Not applicable");
    expect(label("something_new")).toBe("Something new");
  });

  it("names fields by their label, not their API name", () => {
    expect(fieldLabel("scenarioId")).toBe("Scenario");
    expect(fieldLabel("displayName")).toBe("Name");
    expect(fieldLabel("cohortTraining")).toBe("Cohort training");
    const error = new ApiError(422, {
      error: "validation_failed",
      message: "title: must be 1 to 200 characters; prompt: must not be empty",
      fields: [
        { field: "title", message: "must be 1 to 200 characters" },
        { field: "prompt", message: "must not be empty" },
      ],
    });
    expect(error.message).toBe("Title: must be 1 to 200 characters. Caller persona: must not be empty.");
    expect(error.message).not.toMatch(/(^|\. )(title|prompt):/);
  });
});
