// The AI spend page's rules without React: the budget form's text <-> the API's limits (empty
// means no limit), and how much of the monthly budget is used.
import type { Schemas } from "@/api/client";

export type Budget = Schemas["AccountBudget"];

export interface BudgetForm {
  monthlyBudgetUsd: string;
  sessionTokenCap: string;
}

export function toForm(budget: Budget | undefined): BudgetForm {
  return {
    monthlyBudgetUsd: budget?.monthlyBudgetUsd == null ? "" : String(budget.monthlyBudgetUsd),
    sessionTokenCap: budget?.sessionTokenCap == null ? "" : String(budget.sessionTokenCap),
  };
}

/** The limits to send, or the first problem in the form's words (the server checks again). */
export function fromForm(form: BudgetForm): { budget: Budget } | { problem: string } {
  const dollars = form.monthlyBudgetUsd.trim().replace(/^\$/, "");
  const tokens = form.sessionTokenCap.trim().replace(/[,_\s]/g, "");
  const monthly = dollars === "" ? null : Number(dollars);
  if (monthly !== null && (!Number.isFinite(monthly) || monthly < 0)) {
    return { problem: "The monthly budget must be a number of dollars, 0 or more (empty: no limit)." };
  }
  const cap = tokens === "" ? null : Number(tokens);
  if (cap !== null && (!Number.isInteger(cap) || cap < 1000)) {
    return { problem: "The session token cap must be a whole number of at least 1000 (empty: no cap)." };
  }
  return { budget: { monthlyBudgetUsd: monthly, sessionTokenCap: cap } };
}

/** This month's spend against the budget: percent used (capped at 100) and whether it is reached. */
export function budgetUse(spent: number, budget: number | null | undefined): { percent: number; reached: boolean } | null {
  if (budget == null) return null;
  if (budget <= 0) return { percent: 100, reached: true };
  return { percent: Math.min(100, Math.round((spent / budget) * 100)), reached: spent >= budget };
}

export function formatUsd(value: number): string {
  return value < 0.01 && value > 0 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`;
}
