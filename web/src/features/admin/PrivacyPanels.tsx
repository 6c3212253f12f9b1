// Privacy for account admins: how long the account keeps transcripts, evaluations and audit
// records, and erasing a person (confirmed by typing their name, since it cannot be undone).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { api, call, type Schemas } from "@/api/client";
import { Button, Card, ErrorNote, Notice, Spinner, TextInput } from "@/components/ui";
import { Modal } from "@/components/Modal";
import { useNotify } from "@/components/Notices";
import { keys } from "@/api/keys";

type Retention = Schemas["Retention"];

/** A number input's text as days (empty: keep forever). */
function days(text: string): number | null {
  const t = text.trim();
  return t === "" ? null : Number(t);
}

export function RetentionPanel() {
  const client = useQueryClient();
  const current = useQuery({ queryKey: keys.retention(), queryFn: () => call(api.GET("/api/retention")) });
  const [form, setForm] = useState({ transcript: "", evaluation: "", audit: "" });
  useEffect(() => {
    if (current.data) {
      const text = (n: number | null | undefined) => (n == null ? "" : String(n));
      setForm({ transcript: text(current.data.transcriptDays), evaluation: text(current.data.evaluationDays), audit: text(current.data.auditDays) });
    }
  }, [current.data]);
  const save = useMutation({
    mutationFn: (body: Retention) => call(api.PUT("/api/retention", { body })),
    onSuccess: () => client.invalidateQueries({ queryKey: keys.retention() }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate({ transcriptDays: days(form.transcript), evaluationDays: days(form.evaluation), auditDays: days(form.audit) });
  };
  if (current.isPending) return <Spinner label="Loading the retention settings…" />;
  return (
    <Card title="How long records are kept">
      <p className="mb-3 text-sm text-slate-700">
        Records older than this are deleted for good, once an hour. Leave a field empty to keep those records.
        Recordings follow the server's own setting.
      </p>
      <form onSubmit={submit} className="flex flex-wrap items-end gap-3">
        <TextInput label="Transcripts (days after the call)" type="number" min={1} max={3650} value={form.transcript}
          onChange={(e) => setForm({ ...form, transcript: e.target.value })} />
        <TextInput label="Evaluations and flags (days after the call)" type="number" min={1} max={3650} value={form.evaluation}
          onChange={(e) => setForm({ ...form, evaluation: e.target.value })} />
        <TextInput label="Audit log (days, at least 30)" type="number" min={30} max={3650} value={form.audit}
          onChange={(e) => setForm({ ...form, audit: e.target.value })} />
        <Button type="submit" disabled={save.isPending}>Save</Button>
      </form>
      <ErrorNote error={current.error ?? save.error} />
      {save.isSuccess && <Notice tone="success">Saved. The next hourly clean-up applies it.</Notice>}
    </Card>
  );
}

/** Confirms and erases one user; `onDone` gets the pseudonymised user. */
export function EraseUserDialog({ user, onClose }: { user: Schemas["User"]; onClose: () => void }) {
  const client = useQueryClient();
  const [typed, setTyped] = useState("");
  const notify = useNotify();
  const erase = useMutation({
    mutationFn: () => call(api.POST("/api/users/{id}/erase", { params: { path: { id: user.id } } })),
    onSuccess: () => {
      notify(`${user.displayName} is erased: their name and e-mail are gone and they cannot sign in.`);
      client.invalidateQueries({ queryKey: keys.users.all() });
      onClose();
    },
  });
  return (
    <Modal title={`Erase ${user.displayName}?`} onClose={onClose}>
      <p className="text-sm">
        Their name and e-mail are replaced by a pseudonym, they can no longer sign in, and their call recordings are
        deleted. Their practice stays in the account's statistics under the pseudonym. This cannot be undone.
      </p>
      <form
        className="mt-3 flex flex-col gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          erase.mutate();
        }}
      >
        <TextInput label={`Type "${user.displayName}" to confirm`} value={typed} onChange={(e) => setTyped(e.target.value)} />
        <ErrorNote error={erase.error} />
        <div className="flex gap-2">
          <Button type="submit" variant="danger" disabled={typed !== user.displayName || erase.isPending}>Erase for good</Button>
          <Button type="button" variant="secondary" onClick={onClose}>Cancel</Button>
        </div>
      </form>
    </Modal>
  );
}
