// One flag with its review (note, reviewed by/at) and the supervisor's review form.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { Badge, Button, ErrorNote, TextArea } from "./ui";
import { formatDateTime, label } from "@/lib/format";

type Flag = Schemas["SessionFlag"];

/** Where a flag came from, in words: a `derived` flag is a safety gate the answers fired. */
const SOURCE: Record<Flag["source"], string> = {
  evaluation: "the AI evaluation",
  analysis: "the post-call review",
  user_feedback: "the counselor's report",
  derived: "a safety gate in the evaluation's answers",
};

export function FlagCard({ flag, reviewerName, showSessionLink, onTurn }: { flag: Flag; reviewerName?: (id: string) => string; showSessionLink?: boolean; onTurn?: (n: number) => void }) {
  const client = useQueryClient();
  const [note, setNote] = useState("");
  const review = useMutation({
    mutationFn: (status: Flag["status"]) => call(api.PATCH("/api/flags/{id}", { params: { path: { id: flag.id } }, body: { status, note: note || null } })),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: ["flags"] });
      client.invalidateQueries({ queryKey: ["session", flag.sessionId] });
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
        {showSessionLink && <Link to={`/sessions/${flag.sessionId}`} className="ml-auto text-blue-800 underline">Open session</Link>}
      </div>
      <p className="mt-1">{flag.details}</p>
      {flag.turns.length > 0 && (
        <p className="mt-1 text-slate-700">
          Turns:{" "}
          {flag.turns.map((t) =>
            onTurn ? (
              <button key={t} type="button" className="mr-1 text-blue-800 underline" onClick={() => onTurn(t)}>{t}</button>
            ) : (
              <span key={t} className="mr-1">{t}</span>
            ),
          )}
        </p>
      )}
      {flag.status !== "open" ? (
        <p className="mt-2 text-slate-800">
          {label(flag.status)} by {flag.reviewedBy ? reviewerName?.(flag.reviewedBy) ?? "a supervisor" : "—"} on {formatDateTime(flag.reviewedAt)}
          {flag.reviewNote && <>: “{flag.reviewNote}”</>}
        </p>
      ) : (
        <div className="mt-2 flex flex-col gap-2">
          <TextArea label="Review note" rows={2} value={note} onChange={(e) => setNote(e.target.value)} />
          <div className="flex gap-2">
            <Button onClick={() => review.mutate("reviewed")} disabled={review.isPending}>Mark reviewed</Button>
            <Button variant="secondary" onClick={() => review.mutate("dismissed")} disabled={review.isPending}>Dismiss</Button>
          </div>
          <ErrorNote error={review.error} />
        </div>
      )}
    </article>
  );
}
