// What the graders answered for a session's evaluation, exactly as received, for a supervisor's
// audit: the rubric grader's answer and, when one was made, the truth grader's (uncovered facts
// and suggestions), each with its model and prompt version. Fetched only when opened: the
// answers are long and most reviews never need them.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { keys } from "@/api/keys";
import { api, call, type Schemas } from "@/api/client";
import { Card, ErrorNote, Spinner } from "@/components/ui";

function pretty(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return raw;
  }
}

function Output({ title, output }: { title: string; output: Schemas["GraderOutput"] }) {
  return (
    <div className="mt-2">
      <h3 className="text-sm font-semibold">{title}</h3>
      <p className="text-xs text-slate-700">Model {output.model} · prompt version {output.promptVersion}</p>
      {/* A long answer scrolls: focusable so a keyboard can scroll it (axe: scrollable-region-focusable). */}
      {/* eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex */}
      <pre tabIndex={0} role="region" aria-label={`${title}, as received`} className="mt-1 max-h-96 overflow-auto whitespace-pre-wrap rounded bg-slate-50 p-2 text-xs">{pretty(output.rawOutput)}</pre>
    </div>
  );
}

export function GraderOutput({ sessionId }: { sessionId: string }) {
  const [open, setOpen] = useState(false);
  const audit = useQuery({
    queryKey: keys.session.graderOutput(sessionId),
    queryFn: () => call(api.GET("/api/sessions/{id}/grader-output", { params: { path: { id: sessionId } } })),
    enabled: open,
  });
  return (
    <Card title="Audit">
      <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
        <summary className="cursor-pointer text-sm">What the graders answered, as received</summary>
        <ErrorNote error={audit.error} />
        {audit.isFetching && <Spinner label="Loading the graders' answers…" />}
        {audit.data && (
          <>
            <Output title="Rubric grader" output={audit.data.rubric} />
            {audit.data.truth ? <Output title="Truth grader (facts and suggestions)" output={audit.data.truth} /> : <p className="mt-2 text-sm text-slate-700">No truth grader call was made for this evaluation.</p>}
          </>
        )}
      </details>
    </Card>
  );
}
