// Export a reviewed session as a golden case: the server's draft has personal details masked
// and lists what it masked; the supervisor reads and edits every turn, confirms the review, and
// downloads the case file the server answers (422 names any detail still left).
import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, call, type Schemas } from "@/api/client";
import { splitValues } from "@/api/schema";
import { Modal } from "@/components/Modal";
import { Button, ErrorNote, Notice, Select, Spinner, TextInput } from "@/components/ui";
import { label } from "@/lib/format";
import { keys } from "@/api/keys";

export function GoldenExport({ sessionId, onClose }: { sessionId: string; onClose: () => void }) {
  const draft = useQuery({
    queryKey: keys.session.goldenDraft(sessionId),
    queryFn: () => call(api.GET("/api/sessions/{id}/golden-case", { params: { path: { id: sessionId } } })),
    gcTime: 0,
  });
  const [edited, setEdited] = useState<Schemas["GoldenCase"] | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  useEffect(() => {
    if (draft.data && !edited) setEdited(draft.data.case);
  }, [draft.data, edited]);
  const exportCase = useMutation({
    mutationFn: (c: Schemas["GoldenCase"]) =>
      call(api.POST("/api/sessions/{id}/golden-case", { params: { path: { id: sessionId } }, body: { case: c, personalDetailsRemoved: confirmed } })),
  });
  const [href, setHref] = useState<string | null>(null);
  useEffect(() => {
    if (!exportCase.data) return;
    const url = URL.createObjectURL(new Blob([JSON.stringify(exportCase.data, null, 2) + "\n"], { type: "application/json" }));
    setHref(url);
    return () => URL.revokeObjectURL(url);
  }, [exportCase.data]);
  const setTurn = (i: number, text: string) => setEdited((c) => c && { ...c, turns: c.turns.map((t, j) => (j === i ? { ...t, text } : t)) });
  return (
    <Modal title="Export as a golden case" onClose={onClose}>
      {draft.isPending && <Spinner label="Masking personal details…" />}
      <ErrorNote error={draft.error} />
      {draft.data && edited && !exportCase.data && (
        <form
          className="flex flex-col gap-3"
          onSubmit={(e) => {
            e.preventDefault();
            exportCase.mutate(edited);
          }}
        >
          <Notice tone="warning">{draft.data.reviewNotice}</Notice>
          <p className="text-sm">
            {draft.data.redactions.length === 0
              ? "Nothing was masked automatically."
              : `Masked automatically: ${draft.data.redactions.map((r) => `${r.turn === 0 ? "scenario" : `turn ${r.turn}`} ${r.kind} “${r.original}” → ${r.replacement}`).join("; ")}.`}
          </p>
          <div className="grid gap-3 sm:grid-cols-2">
            <TextInput label="Case id" value={edited.id} onChange={(e) => setEdited({ ...edited, id: e.target.value })} required />
            <Select label="Split" value={edited.split} onChange={(e) => setEdited({ ...edited, split: e.target.value as Schemas["Split"] })}>
              {splitValues.map((s) => <option key={s} value={s}>{label(s)}</option>)}
            </Select>
          </div>
          <TextInput label="Title" value={edited.title} onChange={(e) => setEdited({ ...edited, title: e.target.value })} required />
          <p className="text-sm">
            Labels from the review: {Object.keys(edited.labels.checks).length} check answers; flags: {edited.labels.flags.length ? edited.labels.flags.map(label).join(", ") : "none"}.
          </p>
          <ol className="flex flex-col gap-2" aria-label="Turns to review">
            {edited.turns.map((t, i) => (
              <li key={i}>
                <label className="flex flex-col gap-1 text-sm">
                  <span className="font-medium">Turn {i + 1} · {label(t.speaker)}</span>
                  <textarea className="rounded-md border border-slate-400 px-2 py-1" rows={2} value={t.text} onChange={(e) => setTurn(i, e.target.value)} />
                </label>
              </li>
            ))}
          </ol>
          <label className="flex items-start gap-2 text-sm">
            <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.target.checked)} className="mt-1" />
            I read every turn and removed anything that could identify a caller, a counselor or our center.
          </label>
          <ErrorNote error={exportCase.error} />
          <div className="flex gap-2">
            <Button type="submit" disabled={!confirmed || exportCase.isPending}>Export the case</Button>
            <Button variant="secondary" onClick={onClose}>Cancel</Button>
            {exportCase.isPending && <Spinner label="Exporting…" />}
          </div>
        </form>
      )}
      {exportCase.data && (
        <div className="flex flex-col gap-3">
          <Notice tone="success">Exported {exportCase.data.id}. Add the file to the golden set as golden/{exportCase.data.id}.json.</Notice>
          {href && (
            <a className="text-blue-800 underline" href={href} download={`${exportCase.data.id}.json`}>
              Download {exportCase.data.id}.json
            </a>
          )}
          <div><Button onClick={onClose}>Done</Button></div>
        </div>
      )}
    </Modal>
  );
}
