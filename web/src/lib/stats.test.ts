import { describe, expect, it } from "vitest";
import { daysBefore, formatCi, formatRatio, formatStat, isoDay } from "./stats";

describe("agreement formatting", () => {
  it("shows a missing statistic as a dash, never as 0", () => {
    expect(formatStat(null)).toBe("—");
    expect(formatStat(undefined)).toBe("—");
    expect(formatStat(Number.NaN)).toBe("—");
    expect(formatStat(0)).toBe("0.00");
    expect(formatStat(0.4567)).toBe("0.46");
  });
  it("shows an interval only when it has two ends", () => {
    expect(formatCi([0.412, 0.789])).toBe("[0.41, 0.79]");
    expect(formatCi(null)).toBe("");
    expect(formatCi([0.5])).toBe("");
  });
  it("shows a ratio with its percentage, and a dash when nothing was compared", () => {
    expect(formatRatio(17, 20)).toBe("17 / 20 (85%)");
    expect(formatRatio(0, 0)).toBe("—");
  });
});

describe("report periods", () => {
  it("counts calendar days back across month and year ends", () => {
    expect(daysBefore("2026-03-01", 1)).toBe("2026-02-28");
    expect(daysBefore("2026-01-15", 30)).toBe("2025-12-16");
    expect(daysBefore("2024-03-30", 90)).toBe("2023-12-31");
  });
  it("formats a local date as YYYY-MM-DD", () => {
    expect(isoDay(new Date(2026, 0, 5))).toBe("2026-01-05");
  });
});
