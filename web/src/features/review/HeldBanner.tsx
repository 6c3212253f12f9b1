// An evaluation held for review: its transcript imitated turns or addressed the grader, so the
// counselor sees "under review", partners "pending" and no webhook has fired. The supervisor
// sees why (each signal with its turn, a click jumps there), may override answers first
// (Review and override), and releases it.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, call, type Schemas } from "@/api/client";
import { Button, ErrorNote, Notice, TextArea } from "@/components/ui";
import { label } from "@/lib/format";
import { keys } from "@/api/keys";

export function HeldBanner({ sessionId, hold, onTurn }: { sessionId: string; hold: Schemas["EvaluationHold"]; onTurn: (turn: number) => void }) {
  const client = useQueryClient();
  const [note, setNote] = useState("");
  const release = useMutation({
    mutationFn: () => call(api.POST("/api/sessions/{id}/evaluation/release", { params: { path: { id: sessionId } }, body: { note } })),
    onSuccess: () => client.invalidateQueries({ queryKey: keys.session.detail(sessionId) }),
  });
  if (!hold.held) {
    return <Notice>This evaluation was held for review ({hold.signals.length} {hold.signals.length === 1 ? "signal" : "signals"}) and released.</Notice>;
  }
  return (
    <section aria-label="Held for review" className="flex flex-col gap-2 rounded-md border border-amber-400 bg-amber-50 p-3 text-sm text-amber-950">
      <p className="font-semibold">Held for review: the counselor sees “under review”, partners see “pending”, and no webhook has been sent.</p>
      <p>Why: {hold.reason}</p>
      <ul className="list-disc pl-5">
        {hold.signals.map((s, i) => (
          <li key={i}>
            <button type="button" className="underline" onClick={() => onTurn(s.turn)}>Turn {s.turn}</button> ({label(s.speaker)}) · {label(s.kind)}: <q>{s.excerpt}</q>
          </li>
        ))}
      </ul>
      <TextArea label="Release note (optional)" value={note} onChange={(e) => setNote(e.target.value)} />
      <ErrorNote error={release.error} />
      <div><Button onClick={() => release.mutate()} disabled={release.isPending}>Release evaluation</Button></div>
    </section>
  );
}
