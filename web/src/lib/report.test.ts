import { describe, expect, it } from "vitest";
import { AUTO_CLOSE_MS, autoCloseDelay } from "./report";

const pair = { scenarioId: "s", counselorId: "c", reason: "already assigned" };

describe("the bulk-assignment report's closing rule", () => {
  it("closes itself after about 1.5 s on pure success", () => {
    expect(autoCloseDelay({ created: [{}, {}], skipped: [], blocked: [] }, null)).toBe(AUTO_CLOSE_MS);
    expect(AUTO_CLOSE_MS).toBe(1500);
  });
  it("stays open when anything was skipped", () => {
    expect(autoCloseDelay({ created: [{}], skipped: [pair], blocked: [] }, null)).toBeNull();
    expect(autoCloseDelay({ created: [], skipped: [pair, pair], blocked: [] }, null)).toBeNull();
  });
  it("stays open when anything was blocked", () => {
    expect(autoCloseDelay({ created: [{}], skipped: [], blocked: [pair] }, null)).toBeNull();
  });
  it("stays open on an error or when nothing was created", () => {
    expect(autoCloseDelay(null, new Error("422"))).toBeNull();
    expect(autoCloseDelay({ created: [{}], skipped: [], blocked: [] }, new Error("late failure"))).toBeNull();
    expect(autoCloseDelay({ created: [], skipped: [], blocked: [] }, null)).toBeNull();
  });
});
