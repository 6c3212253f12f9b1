/** Formatting of agreement statistics and report periods (no API knowledge). */

/** A statistic to two decimals; "—" when it cannot be computed (too few answers, no variance). */
export function formatStat(value: number | null | undefined): string {
  return value == null || Number.isNaN(value) ? "—" : value.toFixed(2);
}

/** A bootstrap interval as "[0.41, 0.78]", or nothing. */
export function formatCi(ci: number[] | null | undefined): string {
  if (!ci || ci.length !== 2 || ci.some((v) => v == null || Number.isNaN(v))) return "";
  return `[${ci[0]!.toFixed(2)}, ${ci[1]!.toFixed(2)}]`;
}

/** "17 / 20 (85%)"; "—" when nothing was compared. */
export function formatRatio(part: number, whole: number): string {
  if (whole === 0) return "—";
  return `${part} / ${whole} (${Math.round((100 * part) / whole)}%)`;
}

/** A date as the API's YYYY-MM-DD, in local time (what a date input shows). */
export function isoDay(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The YYYY-MM-DD `days` calendar days before `day` (safe across DST and month ends). */
export function daysBefore(day: string, days: number): string {
  const [y, m, d] = day.split("-").map(Number);
  return isoDay(new Date(y!, m! - 1, d! - days));
}
