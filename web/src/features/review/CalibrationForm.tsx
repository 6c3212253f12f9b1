// The supervisor's calibration of one evaluation: every check answer, rating and evaluation flag
// with the AI's answer beside a control for the supervisor's own, a reason for each change, and
// a note. Saving records a review (stored beside the AI's answers, never over them); the
// counselor then sees the reviewed version. Also lists the earlier reviews.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState, type FormEvent } from "react";
import { api, call, type Schemas } from "@/api/client";
import { flagTypeValues } from "@/api/schema";
import { Badge, Button, ErrorNote, Notice, Spinner, TextArea } from "@/components/ui";
import { calibrationItems, isOverridden, itemKey, pendingReview, type CalibrationItem, type Edit } from "@/lib/calibration";
import { checkLabel, formatDateTime, label } from "@/lib/format";
import { keys } from "@/api/keys";

function valueLabel(kind: Schemas["OverrideKind"], value: string | null | undefined): string {
  if (value == null) return "no answer";
  if (kind === "rating") return value === "none" ? "Not applicable" : `${value} / 4`;
  return label(value);
}

export function CalibrationForm({ session, onDone }: { session: Schemas["SessionView"]; onDone: () => void }) {
  const evaluation = session.evaluation!;
  const client = useQueryClient();
  const [extraFlags, setExtraFlags] = useState<Schemas["FlagType"][]>([]);
  const [edits, setEdits] = useState<Record<string, Edit>>({});
  const [note, setNote] = useState("");
  const [tried, setTried] = useState(false);
  const items = useMemo(() => calibrationItems(evaluation, session.flags, extraFlags), [evaluation, session.flags, extraFlags]);
  const pending = pendingReview(items, edits);
  const save = useMutation({
    mutationFn: () =>
      call(api.POST("/api/sessions/{id}/review", { params: { path: { id: session.id } }, body: { overrides: pending.overrides, note: note.trim() || null } })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: keys.session.detail(session.id) });
      await client.invalidateQueries({ queryKey: keys.session.reviews(session.id) });
      onDone();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTried(true);
    if (pending.missingReason.length === 0) save.mutate();
  };
  const edit = (item: CalibrationItem, patch: Partial<Edit>) =>
    setEdits((all) => {
      const before: Edit = all[itemKey(item)] ?? { value: item.current, reason: "" };
      return { ...all, [itemKey(item)]: { ...before, ...patch } };
    });
  const shown = new Set(items.filter((i) => i.kind === "flag").map((i) => i.target));
  const addable = flagTypeValues.filter((f) => !shown.has(f));
  const criteria = evaluation.criteria;
  const row = (item: CalibrationItem) => <ItemRow key={itemKey(item)} item={item} edit={edits[itemKey(item)]} onEdit={(p) => edit(item, p)} missing={tried && pending.missingReason.includes(itemKey(item))} />;
  return (
    <form onSubmit={submit} className="flex flex-col gap-4" aria-label="Calibrate the evaluation">
      <Notice>
        Change any answer the AI got wrong and say why. The AI&apos;s answers are kept; the counselor sees your reviewed version, marked as reviewed.
        Saving without changes confirms the AI&apos;s evaluation.
      </Notice>
      {criteria.map((c) => {
        const own = items.filter((i) => i.criterion === c.key);
        const overridden = own.filter(isOverridden).length;
        const changed = pending.overrides.filter((o) => own.some((i) => i.kind === o.kind && i.target === o.target)).length;
        return (
          <details key={c.key} className="rounded-md border border-slate-300 p-3" open={overridden > 0 || undefined}>
            <summary className="cursor-pointer font-semibold focus-visible:ring-2 focus-visible:ring-blue-700">
              {c.name}
              <span className="ml-2 text-sm font-normal text-slate-700">
                {c.rating == null ? "not applicable" : `${c.rating} / 4`} · {own.length - 1} checks
                {overridden > 0 && ` · ${overridden} overridden`}
                {changed > 0 && ` · ${changed} changed now`}
              </span>
            </summary>
            <ul className="mt-2 flex flex-col gap-2">{own.map(row)}</ul>
          </details>
        );
      })}
      <fieldset className="rounded-md border border-slate-300 p-3">
        <legend className="px-1 font-semibold">Flags</legend>
        <ul className="flex flex-col gap-2">{items.filter((i) => i.kind === "flag").map(row)}</ul>
        {items.every((i) => i.kind !== "flag") && <p className="text-sm text-slate-700">The AI raised no flag.</p>}
        {addable.length > 0 && (
          <div className="mt-2 flex flex-wrap items-end gap-2">
            <label className="flex flex-col gap-1 text-sm font-medium text-slate-800">
              Raise a flag the AI missed
              <select
                className="rounded-md border border-slate-400 bg-white px-3 py-2 text-sm"
                value=""
                onChange={(e) => {
                  const f = e.target.value as Schemas["FlagType"];
                  if (!f) return;
                  setExtraFlags((x) => [...x, f]);
                  setEdits((all) => ({ ...all, [`flag:${f}`]: { value: "raised", reason: "" } }));
                }}
              >
                <option value="">Choose a flag…</option>
                {addable.map((f) => <option key={f} value={f}>{label(f)}</option>)}
              </select>
            </label>
          </div>
        )}
      </fieldset>
      <TextArea label="Review note (optional)" value={note} onChange={(e) => setNote(e.target.value)} maxLength={4000} />
      {tried && pending.missingReason.length > 0 && <ErrorNote error={`Give a reason for each change (${pending.missingReason.length} missing).`} />}
      <ErrorNote error={save.error} />
      <div className="flex flex-wrap items-center gap-2">
        <Button type="submit" disabled={save.isPending}>
          {pending.overrides.length === 0 ? "Confirm the AI's evaluation" : `Save review (${pending.overrides.length} ${pending.overrides.length === 1 ? "change" : "changes"})`}
        </Button>
        <Button variant="secondary" onClick={onDone}>Cancel</Button>
        {save.isPending && <Spinner label="Saving the review…" />}
      </div>
    </form>
  );
}

function ItemRow({ item, edit, onEdit, missing }: { item: CalibrationItem; edit?: Edit; onEdit: (p: Partial<Edit>) => void; missing: boolean }) {
  const value = edit?.value ?? item.current;
  const changed = value !== item.current;
  const text = item.kind === "flag" ? `Flag: ${label(item.target)}` : item.text;
  return (
    <li className="flex flex-col gap-1 text-sm">
      <div className="flex flex-wrap items-center gap-2">
        <span className="min-w-0 flex-1">{text}</span>
        <span className="text-slate-700">AI: <strong>{valueLabel(item.kind, item.ai)}</strong></span>
        {isOverridden(item) && <Badge tone="blue">Overridden</Badge>}
        <select
          aria-label={`Your answer: ${text}`}
          className="rounded-md border border-slate-400 bg-white px-2 py-1 text-sm"
          value={value}
          onChange={(e) => onEdit({ value: e.target.value })}
        >
          {item.options.map((o) => <option key={o} value={o}>{valueLabel(item.kind, o)}</option>)}
        </select>
      </div>
      {item.reason && !changed && <p className="text-slate-700">Reason: {item.reason}</p>}
      {changed && (
        <label className="flex flex-col gap-1 pl-4">
          <span className="font-medium text-slate-800">Reason for the change: {text}</span>
          <input
            className="rounded-md border border-slate-400 px-2 py-1"
            value={edit?.reason ?? ""}
            onChange={(e) => onEdit({ reason: e.target.value })}
            aria-invalid={missing}
            maxLength={2000}
          />
        </label>
      )}
    </li>
  );
}

/** The session's reviews, oldest first, with each override's AI value beside the supervisor's. */
export function ReviewHistory({ sessionId }: { sessionId: string }) {
  const reviews = useQuery({ queryKey: keys.session.reviews(sessionId), queryFn: () => call(api.GET("/api/sessions/{id}/reviews", { params: { path: { id: sessionId } } })) });
  if (reviews.isPending) return <Spinner label="Loading reviews…" />;
  if (reviews.error) return <ErrorNote error={reviews.error} />;
  if (reviews.data.length === 0) return <p className="text-sm text-slate-700">Not reviewed yet.</p>;
  return (
    <ol className="flex flex-col gap-2 text-sm" aria-label="Reviews">
      {reviews.data.map((r) => (
        <li key={r.id} className="rounded border border-slate-300 p-2">
          <p className="font-medium">{r.reviewerName ?? "A supervisor"} · {formatDateTime(r.createdAt)}{r.overrides.length === 0 && " · confirmed the AI's evaluation"}</p>
          {r.note && <p>{r.note}</p>}
          <ul className="list-disc pl-5">
            {r.overrides.map((o) => (
              <li key={o.id}>
                {label(o.kind)} “{o.kind === "check" ? checkLabel(o.target) : label(o.target)}”: AI {valueLabel(o.kind, o.aiValue)} → {valueLabel(o.kind, o.value)} — {o.reason}
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ol>
  );
}
