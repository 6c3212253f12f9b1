// A session's transcript, numbered as evaluations cite it (1-based), each turn addressable as
// #turn-N so evidence links can scroll to it; the current turn (while a recording plays, or the
// one an evidence link points to) is highlighted.
import clsx from "clsx";
import type { ReactNode } from "react";
import type { Schemas } from "@/api/client";
import { formatClock, label } from "@/lib/format";

type Turn = Schemas["TranscriptTurn"];

export function turnAnchor(n: number) {
  return `turn-${n}`;
}

/** Scrolls a turn into view and moves focus there, for evidence links. */
export function scrollToTurn(n: number) {
  const el = document.getElementById(turnAnchor(n));
  if (!el) return;
  // Centred when it fits; a turn with suggested alternatives under it can be taller than the
  // window, and then its start (what was said) goes to the top.
  const fits = el.getBoundingClientRect().height < window.innerHeight * 0.8;
  el.scrollIntoView({ behavior: "smooth", block: fits ? "center" : "start" });
  el.focus({ preventScroll: true });
}

export function Transcript({
  turns,
  current,
  onTurnClick,
  highlighted,
  annotations,
}: {
  turns: Turn[];
  current?: number;
  highlighted?: number | null;
  onTurnClick?: (index: number) => void;
  /** Shown under a turn (1-based), e.g. what the counselor could have said there. */
  annotations?: Record<number, ReactNode>;
}) {
  if (turns.length === 0) return <p className="text-sm text-slate-700">No transcript yet.</p>;
  // Chat turns carry no spoken time (all 0): a clock there would only say 0:00.
  const timed = turns.some((t) => t.startedMs > 0);
  return (
    <ol className="flex flex-col gap-2" aria-label="Transcript">
      {turns.map((t, i) => {
        const n = i + 1;
        const counselor = t.speaker === "counselor";
        const body = (
          <>
            <span className="mb-0.5 block text-xs font-semibold text-slate-700">
              {n}. {label(t.speaker)}{timed && ` · ${formatClock(t.startedMs)}`}
            </span>
            <span className="whitespace-pre-wrap">{t.text}</span>
          </>
        );
        return (
          <li
            key={t.id}
            id={turnAnchor(n)}
            tabIndex={-1}
            aria-current={current === i ? "true" : undefined}
            className={clsx(
              "rounded-md border p-2 text-sm focus:outline-none",
              counselor ? "ml-8 border-blue-200 bg-blue-50" : "mr-8 border-slate-300 bg-white",
              (current === i || highlighted === n) && "turn-highlight",
            )}
          >
            {onTurnClick ? (
              <button type="button" className="w-full text-left focus-visible:ring-2 focus-visible:ring-blue-700" onClick={() => onTurnClick(i)}>
                <span className="sr-only">Play from turn {n}: </span>
                {body}
              </button>
            ) : (
              body
            )}
            {annotations?.[n]}
          </li>
        );
      })}
    </ol>
  );
}
