// The center's own risk levels (account admins): an ordered list from least to most severe, each
// with the center's label and the standard level it maps to (which grading's gates and the
// under/over comparison read). The profile form, the call record form and feedback show these
// labels. The server checks the list: an empty or duplicate label, or levels out of order,
// answer 422 per field; removing the only level mapped to a standard level a scenario expects or
// a call record carries answers 409.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { keys } from "@/api/keys";
import { api, call } from "@/api/client";
import { riskLevelValues } from "@/api/schema";
import { Button, Card, ErrorNote, Notice, Select, Spinner, TextInput } from "@/components/ui";
import { useRiskLevels, type CenterLevel } from "@/lib/riskLevels";

/** The server's cap (`store::RISK_LEVELS_MAX`, the document's `maxItems`). */
const MAX_LEVELS = 12;

const STANDARD: Record<CenterLevel["standard"], string> = { low: "Low", moderate: "Moderate", high: "High", imminent: "Imminent" };

export function RiskLevelsPanel() {
  const client = useQueryClient();
  const levels = useRiskLevels();
  const [rows, setRows] = useState<CenterLevel[]>([]);
  useEffect(() => setRows(levels.data?.levels ?? []), [levels.data]);
  const save = useMutation({
    mutationFn: (body: { levels: CenterLevel[] }) => call(api.PUT("/api/accounts/risk-levels", { body })),
    onSuccess: () => client.invalidateQueries({ queryKey: keys.riskLevels() }),
  });
  const set = (i: number, patch: Partial<CenterLevel>) => setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const move = (i: number, by: number) => {
    const next = [...rows];
    const [r] = next.splice(i, 1);
    next.splice(i + by, 0, r!);
    setRows(next);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate({ levels: rows });
  };
  if (levels.isPending) return <Spinner label="Loading the risk levels…" />;
  return (
    <Card title="Risk levels">
      <p className="text-sm text-slate-700">
        Your center's risk levels, from least to most severe. Each maps to a standard level, which the grading's safety gates and the
        comparison with a scenario's expected level use. Scenario forms, call records and feedback show your labels.
      </p>
      <ErrorNote error={levels.error} />
      <form onSubmit={submit} className="mt-3 flex flex-col gap-2" aria-label="Risk levels">
        <ol className="flex flex-col gap-2">
          {rows.map((r, i) => (
            <li key={i} className="grid items-end gap-2 md:grid-cols-[1fr_12rem_auto]">
              <TextInput label={`Level ${i + 1} label`} value={r.label} maxLength={60} onChange={(e) => set(i, { label: e.target.value })} />
              <Select label={`Level ${i + 1} maps to`} value={r.standard} onChange={(e) => set(i, { standard: e.target.value as CenterLevel["standard"] })}>
                {riskLevelValues.map((s) => <option key={s} value={s}>{STANDARD[s]}</option>)}
              </Select>
              <div className="flex gap-1">
                <Button variant="ghost" aria-label={`Move level ${i + 1} up`} disabled={i === 0} onClick={() => move(i, -1)}>↑</Button>
                <Button variant="ghost" aria-label={`Move level ${i + 1} down`} disabled={i === rows.length - 1} onClick={() => move(i, 1)}>↓</Button>
                <Button variant="ghost" aria-label={`Remove level ${i + 1}`} onClick={() => setRows(rows.filter((_, j) => j !== i))}>Remove</Button>
              </div>
            </li>
          ))}
        </ol>
        <div className="flex flex-wrap gap-2">
          <Button
            variant="secondary"
            disabled={rows.length >= MAX_LEVELS}
            aria-describedby={rows.length >= MAX_LEVELS ? "risk-levels-max" : undefined}
            onClick={() => setRows([...rows, { label: "", standard: rows.at(-1)?.standard ?? "low" }])}
          >
            Add a level
          </Button>
          <Button type="submit" disabled={save.isPending}>Save risk levels</Button>
        </div>
        {rows.length >= MAX_LEVELS && <p id="risk-levels-max" className="text-sm text-slate-700">A center has at most {MAX_LEVELS} levels.</p>}
        <ErrorNote error={save.error} />
        {save.isSuccess && <Notice tone="success">Risk levels saved.</Notice>}
      </form>
    </Card>
  );
}
