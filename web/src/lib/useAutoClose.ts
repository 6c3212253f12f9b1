import { useEffect } from "react";
import { autoCloseDelay, type ReportOutcome } from "./report";

/** Closes a report after `autoCloseDelay` when the rule says so. */
export function useAutoClose(report: ReportOutcome | null, error: unknown, close: () => void) {
  useEffect(() => {
    const delay = autoCloseDelay(report, error);
    if (delay == null) return;
    const timer = setTimeout(close, delay);
    return () => clearTimeout(timer);
  }, [report, error, close]);
}
