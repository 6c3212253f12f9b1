// One flag with its review (note, reviewed by/at) and the supervisor's review form: whose
// session and which scenario, turns that open the review page at that turn (or jump there when
// already on it), a note required to close a high or critical flag, and reopening a closed one.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { Badge, Button, ErrorNote, TextArea } from "./ui";
import { formatDateTime, label } from "@/lib/format";
import { keys } from "@/api/keys";

type Flag = Schemas["SessionFlag"];

/** Where a flag came from, in words: a `derived` flag is a safety gate the answers fired. */
const SOURCE: Record<Flag["source"], string> = {
  evaluation: "the AI evaluation",
  analysis: "the post-call review",
  user_feedback: "the counselor's report",
  derived: "a safety gate in the evaluation's answers",
  supervisor: "a supervisor's review",
};

export function FlagCard({ flag, reviewerName, showSessionLink, onTurn }: { flag: Flag; reviewerName?: (id: string) => string; showSessionLink?: boolean; onTurn?: (n: number) => void }) {
  const client = useQueryClient();
  const [note, setNote] = useState("");
  const serious = flag.severity === "critical" || flag.severity === "high";
  const review = useMutation({
    mutationFn: (status: Flag["status"]) => call(api.PATCH("/api/flags/{id}", { params: { path: { id: flag.id } }, body: { status, note: note || null } })),
    onSuccess: () => {
      setNote("");
      client.invalidateQueries({ queryKey: keys.flags.all() });
      client.invalidateQueries({ queryKey: keys.session.detail(flag.sessionId) });
      client.invalidateQueries({ queryKey: keys.sessions.all() });
    },
  });
  const tone = flag.severity === "critical" || flag.severity === "high" ? "red" : flag.severity === "medium" ? "amber" : "slate";
  return (
    <article className="rounded-md border border-slate-300 bg-white p-3 text-sm" aria-label={`Flag: ${label(flag.flagType)}`}>
      <div className="flex flex-wrap items-center gap-2">
        <Badge tone={tone}>{label(flag.severity)}</Badge>
        <span className="font-semibold">{label(flag.flagType)}</span>
        <span className="text-slate-700">from {SOURCE[flag.source] ?? label(flag.source)} · {formatDateTime(flag.createdAt)}</span>
        <Badge tone={flag.status === "open" ? "amber" : "green"}>{label(flag.status)}</Badge>
        {showSessionLink && <Link to={`/sessions/${flag.sessionId}`} className="ml-auto text-blue-800 underline">Open session<span className="sr-only"> of {flag.counselorName}</span></Link>}
      </div>
      <p className="mt-1 text-slate-800">
        <span className="font-medium">{flag.counselorName}</span> · {flag.scenarioTitle ?? "Free practice, improvised caller"}
      </p>
      <p className="mt-1">{flag.details}</p>
      {flag.turns.length > 0 && (
        <p className="mt-1 text-slate-700">
          Turns:{" "}
          {flag.turns.map((t) =>
            onTurn ? (
              <button key={t} type="button" className="mr-1 text-blue-800 underline" onClick={() => onTurn(t)}>{t}</button>
            ) : (
              <Link key={t} to={`/sessions/${flag.sessionId}?turn=${t}`} className="mr-1 text-blue-800 underline" aria-label={`Open the session at turn ${t}`}>{t}</Link>
            ),
          )}
        </p>
      )}
      {flag.status !== "open" ? (
        <div className="mt-2 flex flex-wrap items-center gap-2 text-slate-800">
          <p>
            {label(flag.status)} by {flag.reviewedBy ? reviewerName?.(flag.reviewedBy) ?? "a supervisor" : "—"} on {formatDateTime(flag.reviewedAt)}
            {flag.reviewNote && <>: “{flag.reviewNote}”</>}
          </p>
          <Button variant="secondary" onClick={() => review.mutate("open")} disabled={review.isPending}>Reopen</Button>
          <ErrorNote error={review.error} />
        </div>
      ) : (
        <div className="mt-2 flex flex-col gap-2">
          <TextArea
            label={serious ? "Review note (required: what was done, or why it is not a concern)" : "Review note"}
            rows={2}
            value={note}
            onChange={(e) => setNote(e.target.value)}
          />
          <div className="flex gap-2">
            <Button onClick={() => review.mutate("reviewed")} disabled={review.isPending || (serious && !note.trim())}>Mark reviewed</Button>
            <Button variant="secondary" onClick={() => review.mutate("dismissed")} disabled={review.isPending || (serious && !note.trim())}>Dismiss</Button>
          </div>
          <ErrorNote error={review.error} />
        </div>
      )}
    </article>
  );
}
