// The report modal itself under fake timers: it closes on pure success after 1.5 s and stays
// open on skipped pairs (the second bulk run of the E2E scenario).
import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ReportModal } from "./AssignmentsPage";

const assignment = { id: "a1", scenario: { title: "Night caller" }, counselor: { displayName: "Sam" } };

describe("ReportModal", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    cleanup();
    vi.useRealTimers();
  });
  const show = (report: unknown, error: unknown = null) => {
    const onClose = vi.fn();
    render(<ReportModal report={report as never} error={error} title={(id) => id} person={(id) => id} onClose={onClose} />);
    return onClose;
  };
  it("closes itself about 1.5 s after pure success", () => {
    const onClose = show({ created: [assignment], skipped: [], blocked: [] });
    expect(screen.getByText(/1 created/)).toBeTruthy();
    act(() => vi.advanceTimersByTime(1400));
    expect(onClose).not.toHaveBeenCalled();
    act(() => vi.advanceTimersByTime(200));
    expect(onClose).toHaveBeenCalledTimes(1);
  });
  it("stays open when pairs were skipped", () => {
    const onClose = show({ created: [], skipped: [{ scenarioId: "s", counselorId: "c", reason: "already has an active assignment" }], blocked: [] });
    act(() => vi.advanceTimersByTime(10_000));
    expect(onClose).not.toHaveBeenCalled();
    expect(screen.getByText(/already has an active assignment/)).toBeTruthy();
  });
  it("stays open on an error", () => {
    const onClose = show(null, new Error("Validation failed"));
    act(() => vi.advanceTimersByTime(10_000));
    expect(onClose).not.toHaveBeenCalled();
    expect(screen.getByRole("alert").textContent).toContain("Validation failed");
  });
});
