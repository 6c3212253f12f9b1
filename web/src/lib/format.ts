/** Display helpers shared by features; enum words come from the one table in `@/api/labels`. */
import { anyLabel } from "@/api/labels";

export function formatDate(value: string | null | undefined): string {
  if (!value) return "—";
  const d = new Date(value);
  return d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function formatDateTime(value: string | null | undefined): string {
  if (!value) return "—";
  return new Date(value).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** `ai_caller_problem` -> `AI caller problem`: wire values shown through the label table. */
export function label(value: string | null | undefined): string {
  if (!value) return "—";
  return anyLabel(value);
}

export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${m}:${s.toString().padStart(2, "0")}`;
}

/**
 * A rubric question as a counselor reads it. Evaluations graded before rubric v3 stored the
 * grader's not-applicable rule after the question ("… (not_applicable only when …)"); that is an
 * instruction to the evaluator, never shown on a page.
 */
export function humanQuestion(question: string | null | undefined): string {
  if (!question) return "";
  const cuts = [" (Never not_applicable", " (not_applicable"].map((m) => question.indexOf(m)).filter((i) => i >= 0);
  return (cuts.length > 0 ? question.slice(0, Math.min(...cuts)) : question).trim();
}

/** `asks_about_suicide.not_leading` -> `Asks about suicide: not leading`, where no question is at hand. */
export function checkLabel(key: string): string {
  const [criterion, check] = key.split(".", 2);
  return check ? `${label(criterion)}: ${check.replace(/_/g, " ")}` : label(criterion);
}
