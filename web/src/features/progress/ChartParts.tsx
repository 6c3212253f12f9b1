// What every progress chart has beside its drawing: a legend in the page's own flow and a table
// of the same numbers.
// The legend is HTML, not Recharts' `<Legend>`: Recharts places its legend absolutely inside the
// chart's fixed height, so at 390 px, where the names wrap onto several lines, it covered the
// plot. Here it is a wrapping list under the chart. The table ("Show as table", a native
// `<details>`) is the chart's text alternative: a screen reader, or anyone who wants the exact
// values, reads the same data as rows.
import type { ReactNode } from "react";

export function ChartLegend({ items, label }: { items: { name: string; color: string }[]; label: string }) {
  return (
    <ul aria-label={label} className="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-xs text-slate-800" data-testid="chart-legend">
      {items.map((it) => (
        <li key={it.name} className="flex min-w-0 items-center gap-1.5">
          <span aria-hidden="true" className="inline-block h-2.5 w-2.5 shrink-0 rounded-full" style={{ background: it.color }} />
          <span className="break-words">{it.name}</span>
        </li>
      ))}
    </ul>
  );
}

export function ChartTable({ caption, columns, rows }: { caption: string; columns: string[]; rows: { key: string; cells: ReactNode[] }[] }) {
  return (
    <details className="mt-2 text-sm" data-testid="chart-table">
      <summary className="cursor-pointer text-blue-800 underline focus-visible:ring-2 focus-visible:ring-blue-700">Show as table</summary>
      <div className="mt-2 max-h-80 overflow-auto">
        <table className="w-full text-left text-sm">
          <caption className="sr-only">{caption}</caption>
          <thead>
            <tr className="border-b border-slate-300">
              {columns.map((c, i) => (
                <th key={c} scope="col" className={i === 0 ? "py-1 pr-2" : "px-2 py-1"}>{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.key} className="border-b border-slate-200">
                {r.cells.map((cell, i) =>
                  i === 0 ? <th key={i} scope="row" className="py-1 pr-2 font-normal">{cell}</th> : <td key={i} className="px-2 py-1">{cell}</td>,
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

/** A table wider than a phone scrolls inside this box, never the page; the box takes the focus
 * so keyboard users can scroll it too (axe: scrollable-region-focusable). */
export function ScrollX({ label, children }: { label: string; children: ReactNode }) {
  return (
    // eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex
    <div role="region" aria-label={label} tabIndex={0} className="overflow-x-auto focus-visible:ring-2 focus-visible:ring-blue-700">
      {children}
    </div>
  );
}
