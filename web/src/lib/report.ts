// The bulk-assignment report's closing rule: it closes itself only on pure success (everything
// created, nothing skipped or blocked, no error), after about 1.5 s so the result can be read;
// anything else stays open until the supervisor closes it.

export const AUTO_CLOSE_MS = 1500;

export interface ReportOutcome {
  created: readonly unknown[];
  skipped: readonly unknown[];
  blocked: readonly unknown[];
}

/** Milliseconds after which the report closes itself, or `null` when it must stay open. */
export function autoCloseDelay(report: ReportOutcome | null, error: unknown): number | null {
  if (error || !report) return null;
  if (report.skipped.length > 0 || report.blocked.length > 0) return null;
  if (report.created.length === 0) return null;
  return AUTO_CLOSE_MS;
}
