// Calibration: what a supervisor may override in an evaluation (every check answer, every
// criterion's rating, every evaluation flag), the AI's answer beside what is in force now, and
// the review to send from the supervisor's edits (only the items they changed, each with its
// reason). Values are the API's wire forms (see `OverrideInput`).
import type { Schemas } from "@/api/client";
import { checkAnswerValues, flagOverrideValues, ratingOverrideValues } from "@/api/schema";
import { checkLabel, humanQuestion } from "./format";

type Evaluation = Schemas["Evaluation"];
type OverrideKind = Schemas["OverrideKind"];
type FlagType = Schemas["FlagType"];

export interface CalibrationItem {
  kind: OverrideKind;
  /** `<criterion>.<check>` (check), `<criterion>` (rating) or a flag type (flag). */
  target: string;
  /** The criterion it belongs to (flags: none). */
  criterion?: string;
  /** What the item asks, for labels. */
  text: string;
  /** The AI's value (null: the AI gave none). */
  ai: string | null;
  /** The value in force (the supervisor's when overridden). */
  current: string;
  /** The reason of the override in force, if any. */
  reason?: string;
  options: string[];
}

export interface Edit {
  value: string;
  reason: string;
}

export function itemKey(item: Pick<CalibrationItem, "kind" | "target">): string {
  return `${item.kind}:${item.target}`;
}

export function ratingValue(rating: number | null | undefined): string {
  return rating == null ? "none" : String(rating);
}

/** The flag types the AI raised: the review's record, else the evaluation's own flags. */
export function aiFlagTypes(evaluation: Evaluation, sessionFlags: Schemas["SessionFlag"][]): FlagType[] {
  if (evaluation.review) return [...evaluation.review.aiFlags];
  return [...new Set(sessionFlags.filter((f) => f.source === "evaluation").map((f) => f.flagType))].sort();
}

/**
 * Every item of the evaluation a supervisor can override, in rubric order: per criterion its
 * rating, then its checks; then the flags raised by the AI or in force after a review, plus
 * `extraFlags` (flags the supervisor is about to add).
 */
export function calibrationItems(evaluation: Evaluation, sessionFlags: Schemas["SessionFlag"][], extraFlags: FlagType[] = []): CalibrationItem[] {
  const overrides = new Map((evaluation.review?.overrides ?? []).map((o) => [`${o.kind}:${o.target}`, o]));
  const items: CalibrationItem[] = [];
  for (const c of evaluation.criteria) {
    const ro = overrides.get(`rating:${c.key}`);
    items.push({
      kind: "rating",
      target: c.key,
      criterion: c.key,
      text: `Rating of ${c.name}`,
      ai: ro ? ro.aiValue ?? null : ratingValue(c.ratingOverridden ? c.aiRating : c.rating),
      current: ratingValue(c.rating),
      reason: ro?.reason,
      options: [...ratingOverrideValues],
    });
    for (const k of c.checks ?? []) {
      const target = `${c.key}.${k.key}`;
      const o = overrides.get(`check:${target}`);
      items.push({
        kind: "check",
        target,
        criterion: c.key,
        text: humanQuestion(k.question) || checkLabel(target),
        ai: o ? o.aiValue ?? null : k.aiAnswer ?? k.answer,
        current: k.answer,
        reason: o?.reason,
        // `not_assessed` is the server's verdict on an uncited yes, not an answer to give.
        options: checkAnswerValues.filter((v) => v !== "not_assessed"),
      });
    }
  }
  const ai = aiFlagTypes(evaluation, sessionFlags);
  const inForce = evaluation.review ? evaluation.review.flags : ai;
  const flags = [...new Set([...ai, ...inForce, ...extraFlags])].sort();
  for (const f of flags) {
    const o = overrides.get(`flag:${f}`);
    items.push({
      kind: "flag",
      target: f,
      text: f,
      ai: ai.includes(f) ? "raised" : "not_raised",
      current: inForce.includes(f) ? "raised" : "not_raised",
      reason: o?.reason,
      options: [...flagOverrideValues],
    });
  }
  return items;
}

/** Whether the value in force differs from the AI's: the item was overridden. */
export function isOverridden(item: CalibrationItem): boolean {
  return item.ai !== item.current;
}

export interface PendingReview {
  overrides: Schemas["OverrideInput"][];
  /** Keys of changed items still without a reason (the review cannot be sent). */
  missingReason: string[];
}

/** The overrides the supervisor's edits make: only items whose new value differs from the one in force. */
export function pendingReview(items: CalibrationItem[], edits: Record<string, Edit>): PendingReview {
  const overrides: Schemas["OverrideInput"][] = [];
  const missingReason: string[] = [];
  for (const item of items) {
    const edit = edits[itemKey(item)];
    if (!edit || edit.value === item.current) continue;
    const reason = edit.reason.trim();
    if (!reason) missingReason.push(itemKey(item));
    overrides.push({ kind: item.kind, target: item.target, value: edit.value, reason });
  }
  return { overrides, missingReason };
}
