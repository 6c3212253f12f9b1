import { describe, expect, it } from "vitest";
import { budgetUse, formatUsd, fromForm, toForm } from "./spend";

describe("budget form", () => {
  it("empty fields mean no limit, and round-trips", () => {
    expect(fromForm({ monthlyBudgetUsd: "", sessionTokenCap: " " })).toEqual({
      budget: { monthlyBudgetUsd: null, sessionTokenCap: null },
    });
    const budget = { monthlyBudgetUsd: 25.5, sessionTokenCap: 200000 };
    expect(fromForm(toForm(budget))).toEqual({ budget });
    expect(toForm(undefined)).toEqual({ monthlyBudgetUsd: "", sessionTokenCap: "" });
  });

  it("accepts a dollar sign and thousands separators", () => {
    expect(fromForm({ monthlyBudgetUsd: "$40", sessionTokenCap: "100,000" })).toEqual({
      budget: { monthlyBudgetUsd: 40, sessionTokenCap: 100000 },
    });
  });

  it("names the problem", () => {
    expect(fromForm({ monthlyBudgetUsd: "-3", sessionTokenCap: "" })).toHaveProperty("problem");
    expect(fromForm({ monthlyBudgetUsd: "ten", sessionTokenCap: "" })).toHaveProperty("problem");
    expect(fromForm({ monthlyBudgetUsd: "", sessionTokenCap: "500" })).toHaveProperty("problem");
    expect(fromForm({ monthlyBudgetUsd: "", sessionTokenCap: "1500.5" })).toHaveProperty("problem");
  });
});

describe("budget use", () => {
  it("is a capped percentage, reached at the budget", () => {
    expect(budgetUse(5, null)).toBeNull();
    expect(budgetUse(5, 20)).toEqual({ percent: 25, reached: false });
    expect(budgetUse(20, 20)).toEqual({ percent: 100, reached: true });
    expect(budgetUse(35, 20)).toEqual({ percent: 100, reached: true });
    expect(budgetUse(0, 0)).toEqual({ percent: 100, reached: true });
  });

  it("formats small amounts with more digits", () => {
    expect(formatUsd(12.345)).toBe("$12.35");
    expect(formatUsd(0.0012)).toBe("$0.0012");
    expect(formatUsd(0)).toBe("$0.00");
  });
});
