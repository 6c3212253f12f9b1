// CSV import with its per-row report (created, skipped, failed with each field's problem).
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, call } from "@/api/client";
import { Modal } from "@/components/Modal";
import { Button, ErrorNote, Field, Spinner } from "@/components/ui";
import { keys } from "@/api/keys";

export function ImportDialog({ onClose }: { onClose: () => void }) {
  const client = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const run = useMutation({
    mutationFn: async (f: File) => {
      const text = await f.text();
      return call(api.POST("/api/scenarios/import", { body: text, bodySerializer: (b) => b as string, headers: { "content-type": "text/csv" } }));
    },
    onSuccess: () => client.invalidateQueries({ queryKey: keys.scenarios.all() }),
  });
  const report = run.data;
  return (
    <Modal title="Import scenarios from CSV" onClose={onClose}>
      <p className="mb-2 text-sm text-slate-700">Columns: title, prompt, mode, category, and optionally description, skills (separated by ;), difficulty, estimated_time, relevant_policy_sections, evaluator_context. A risk profile in compact columns: risk_level (low, moderate, high, imminent), required_actions (separated by ;, e.g. safety_plan;means_restriction), third_party (yes/no), and one column per fact named fact:&lt;key&gt; holding rule|text when the key is a fact kind (fact:firearms → when_asked|A rifle in the truck) or kind|rule|text otherwise (fact:tonight → timeline|never_volunteered|Tonight after work). Rules: volunteered, when_asked, asked_directly_after_rapport, never_volunteered.</p>
      <div className="flex items-end gap-2">
        <Field label="CSV file">{(id) => <input id={id} type="file" accept=".csv,text/csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} className="text-sm" />}</Field>
        <Button disabled={!file || run.isPending} onClick={() => file && run.mutate(file)}>Import</Button>
      </div>
      {run.isPending && <Spinner label="Importing…" />}
      <ErrorNote error={run.error} />
      {report && (
        <div className="mt-3 text-sm" role="status">
          <p className="font-medium">{report.created.length} created, {report.skipped.length} skipped, {report.failed.length} failed</p>
          <ul className="mt-2 list-disc pl-5">
            {report.created.map((r) => <li key={`c${r.row}`}>Row {r.row}: created “{r.title}”</li>)}
            {report.skipped.map((r) => <li key={`s${r.row}`}>Row {r.row}: skipped “{r.title}” — {r.reason}</li>)}
            {report.failed.map((r) => <li key={`f${r.row}`} className="text-red-900">Row {r.row}: {r.errors.map((e) => `${e.field}: ${e.message}`).join("; ")}</li>)}
          </ul>
        </div>
      )}
      <div className="mt-3"><Button variant="secondary" onClick={onClose}>Close</Button></div>
    </Modal>
  );
}
