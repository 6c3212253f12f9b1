import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, call, fileForm, type Schemas } from "@/api/client";
import { Button, Card, ErrorNote, Field, Spinner, TextInput } from "@/components/ui";
import { formatDateTime, label } from "@/lib/format";
import { useConfirm } from "@/components/ConfirmDialog";
import { useNotify } from "@/components/Notices";
import { keys } from "@/api/keys";

/**
 * The account's scenario categories: add, rename (the scenarios in one follow) and delete one no
 * scenario uses. Names keep their capitals and may hold "&" and "+" ("Youth & LGBTQ+"); the
 * server refuses a duplicate (ignoring capitals) and a category in use, saying what to do.
 */
export function CategoriesPanel() {
  const client = useQueryClient();
  const categories = useQuery({ queryKey: keys.categories(), queryFn: () => call(api.GET("/api/categories")) });
  const [name, setName] = useState("");
  const [editing, setEditing] = useState<{ from: string; to: string } | null>(null);
  const [confirm, confirmDialog] = useConfirm();
  const notify = useNotify();
  const refresh = () => client.invalidateQueries({ queryKey: keys.categories() });
  const add = useMutation({
    mutationFn: () => call(api.POST("/api/categories", { body: { name } })),
    onSuccess: () => {
      notify(`Category “${name.trim()}” added.`);
      setName("");
      refresh();
    },
  });
  const rename = useMutation({
    mutationFn: (r: { from: string; to: string }) => call(api.PATCH("/api/categories/{name}", { params: { path: { name: r.from } }, body: { name: r.to } })),
    onSuccess: (_, r) => {
      notify(`Category renamed to “${r.to.trim()}”; its scenarios moved with it.`);
      setEditing(null);
      refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (c: string) => call(api.DELETE("/api/categories/{name}", { params: { path: { name: c } } })),
    onSuccess: (_, c) => notify(`Category “${categoryName(c)}” deleted.`),
    onSettled: refresh,
  });
  const askRemove = async (c: string) => {
    rename.reset();
    if (await confirm({ title: `Delete the category “${categoryName(c)}”?`, body: "Scenarios cannot be filed under it any more. A category that scenarios still use cannot be deleted: move them first, or rename it.", confirmLabel: "Delete category" })) remove.mutate(c);
  };
  return (
    <Card title="Scenario categories">
      <ul className="mb-3 flex flex-col gap-2 text-sm" aria-label="Categories">
        {categories.data?.categories.map((c) => (
          <li key={c} className="flex flex-wrap items-end gap-2">
            {editing?.from === c ? (
              <form
                className="flex flex-wrap items-end gap-2"
                onSubmit={(e) => {
                  e.preventDefault();
                  rename.mutate(editing);
                }}
              >
                <TextInput label={`New name for ${categoryName(c)}`} required maxLength={64} value={editing.to} onChange={(e) => setEditing({ from: c, to: e.target.value })} />
                <Button type="submit" disabled={rename.isPending}>Save</Button>
                <Button type="button" variant="ghost" onClick={() => { setEditing(null); rename.reset(); }}>Cancel</Button>
              </form>
            ) : (
              <>
                <span className="rounded-full bg-slate-200 px-3 py-1">{categoryName(c)}</span>
                <Button variant="ghost" onClick={() => { remove.reset(); rename.reset(); setEditing({ from: c, to: categoryName(c) }); }}>Rename<span className="sr-only"> {categoryName(c)}</span></Button>
                <Button variant="ghost" onClick={() => askRemove(c)} disabled={remove.isPending}>Delete<span className="sr-only"> {categoryName(c)}</span></Button>
              </>
            )}
          </li>
        ))}
      </ul>
      <ErrorNote error={rename.error ?? remove.error} />
      <form onSubmit={(e) => { e.preventDefault(); add.mutate(); }} className="flex items-end gap-3">
        <TextInput label="New category" hint="Letters, digits, spaces and & + - / ' , ( ); capitals are kept." required maxLength={64} value={name} onChange={(e) => setName(e.target.value)} />
        <Button type="submit" disabled={add.isPending}>Add</Button>
      </form>
      <ErrorNote error={categories.error ?? add.error} />
      {confirmDialog}
    </Card>
  );
}

/** A category as people read it: the built-in keys (`cohort_training`) through the label table,
 * names an admin typed ("Youth & LGBTQ+") exactly as typed. */
function categoryName(c: string): string {
  return /^[a-z0-9_]+$/.test(c) ? label(c) : c;
}

export function PoliciesPanel() {
  const client = useQueryClient();
  const policies = useQuery({ queryKey: keys.policies(), queryFn: () => call(api.GET("/api/policies")) });
  const [file, setFile] = useState<File | null>(null);
  const send = useMutation({
    mutationFn: (f: File) => call(api.POST("/api/policies", { body: fileForm(f) })),
    onSuccess: () => client.invalidateQueries({ queryKey: keys.policies() }),
  });
  const [confirm, confirmDialog] = useConfirm();
  const notify = useNotify();
  const remove = useMutation({
    mutationFn: (p: Schemas["Policy"]) => call(api.DELETE("/api/policies/{id}", { params: { path: { id: p.id } } })).then(() => p),
    onSuccess: (p) => notify(`“${p.fileName}” deleted. New evaluations no longer use it.`),
    onSettled: () => client.invalidateQueries({ queryKey: keys.policies() }),
  });
  const askRemove = async (p: Schemas["Policy"]) => {
    if (await confirm({ title: `Delete the policy “${p.fileName}”?`, body: "The evaluator stops grading against it. To use it again you must upload it again.", confirmLabel: "Delete policy" })) remove.mutate(p);
  };
  return (
    <Card title="Policy documents">
      <p className="mb-2 text-sm text-slate-700">The evaluator grades sessions against these (PDF, DOCX, TXT or Markdown).</p>
      <form onSubmit={(e) => { e.preventDefault(); if (file) send.mutate(file); }} className="flex items-end gap-3">
        <Field label="Document">{(id) => <input id={id} type="file" accept=".pdf,.docx,.txt,.md" className="text-sm" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />}</Field>
        <Button type="submit" disabled={!file || send.isPending}>Upload</Button>
      </form>
      {send.isPending && <Spinner label="Extracting and indexing the document…" />}
      <ErrorNote error={send.error ?? policies.error ?? remove.error} />
      <ul className="mt-3 divide-y divide-slate-200 text-sm">
        {policies.data?.map((p) => (
          <li key={p.id} className="flex items-center gap-3 py-2">
            <span className="font-medium">{p.fileName}</span>
            <span className="text-slate-700">{p.textChars.toLocaleString()} characters, {p.embeddedChunks}/{p.chunks} passages indexed, {formatDateTime(p.createdAt)}</span>
            <Button variant="danger" className="ml-auto" onClick={() => askRemove(p)}>Delete<span className="sr-only"> {p.fileName}</span></Button>
          </li>
        ))}
      </ul>
      {confirmDialog}
    </Card>
  );
}
