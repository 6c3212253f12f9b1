// AI spend (account admins): the monthly budget and the chat session token cap every AI call is
// checked against before it is made, and the estimated spend per counselor and per day.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { api, call } from "@/api/client";
import { Button, Card, ErrorNote, Notice, Spinner, TextInput } from "@/components/ui";
import { formatDate } from "@/lib/format";
import { budgetUse, formatUsd, fromForm, toForm, type BudgetForm } from "./spend";
import { keys } from "@/api/keys";

export function SpendPanel() {
  return (
    <div className="flex flex-col gap-4">
      <BudgetCard />
      <SpendTables />
    </div>
  );
}

function BudgetCard() {
  const client = useQueryClient();
  const budget = useQuery({ queryKey: keys.budget(), queryFn: () => call(api.GET("/api/accounts/budget")) });
  const [form, setForm] = useState<BudgetForm>(toForm(undefined));
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => setForm(toForm(budget.data)), [budget.data]);
  const save = useMutation({
    mutationFn: (body: NonNullable<typeof budget.data>) => call(api.PUT("/api/accounts/budget", { body })),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: keys.budget() });
      client.invalidateQueries({ queryKey: keys.spend.all() });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = fromForm(form);
    if ("problem" in parsed) {
      setProblem(parsed.problem);
      return;
    }
    setProblem(null);
    save.mutate(parsed.budget);
  };
  return (
    <Card title="AI budget">
      <p className="mb-3 text-sm text-slate-700">
        Every AI call of the account (chat, grading, analysis, drafting, documentation review) is checked against these
        limits before it is made. Over the monthly budget, or a chat session over its token cap, the call is refused with
        a message saying why, until you raise the limit or the month ends (UTC). Calls already running finish, so
        spending can pass the budget by one call each. Leave a field empty for no limit.
      </p>
      {budget.isPending ? <Spinner label="Loading the budget…" /> : (
        <form onSubmit={submit} className="flex flex-wrap items-end gap-3">
          <TextInput
            label="Monthly budget (US dollars)"
            inputMode="decimal"
            value={form.monthlyBudgetUsd}
            onChange={(e) => setForm({ ...form, monthlyBudgetUsd: e.target.value })}
          />
          <TextInput
            label="Tokens per chat session"
            hint="At least 1000"
            inputMode="numeric"
            value={form.sessionTokenCap}
            onChange={(e) => setForm({ ...form, sessionTokenCap: e.target.value })}
          />
          <Button type="submit" disabled={save.isPending}>Save limits</Button>
        </form>
      )}
      {save.isSuccess && !save.isPending && <Notice tone="success">Limits saved.</Notice>}
      <ErrorNote error={problem ?? budget.error ?? save.error} />
    </Card>
  );
}

function SpendTables() {
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const query = { ...(from ? { from } : {}), ...(to ? { to } : {}) };
  const spend = useQuery({
    queryKey: keys.spend.report(query),
    queryFn: () => call(api.GET("/api/accounts/spend", { params: { query } })),
  });
  const report = spend.data;
  const use = report ? budgetUse(report.monthSpentUsd, report.budget.monthlyBudgetUsd) : null;
  return (
    <Card title="AI spend">
      <div className="mb-3 flex flex-wrap items-end gap-3">
        <TextInput label="From" type="date" value={from} onChange={(e) => setFrom(e.target.value)} hint="Default: start of this month" />
        <TextInput label="To" type="date" value={to} onChange={(e) => setTo(e.target.value)} hint="At most 366 days" />
      </div>
      <ErrorNote error={spend.error} />
      {spend.isPending && <Spinner label="Loading spend…" />}
      {report && (
        <>
          <p className="mb-2 text-sm">
            This month (since {formatDate(report.monthStart)}): <strong>{formatUsd(report.monthSpentUsd)}</strong>
            {report.budget.monthlyBudgetUsd != null && <> of {formatUsd(report.budget.monthlyBudgetUsd)}</>}
            {use && <> ({use.percent}%)</>}. In the period shown: {formatUsd(report.totalUsd)}.
          </p>
          {use?.reached && (
            <Notice tone="warning">The monthly budget is reached: chat and grading are refused until you raise it or the month ends.</Notice>
          )}
          <h3 className="mt-4 mb-1 font-semibold">Per counselor</h3>
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Estimated AI spend per counselor</caption>
            <thead>
              <tr className="border-b border-slate-300">
                <th scope="col" className="py-1">Counselor</th>
                <th scope="col" className="py-1 text-right">Calls</th>
                <th scope="col" className="py-1 text-right">Tokens</th>
                <th scope="col" className="py-1 text-right">Cost</th>
              </tr>
            </thead>
            <tbody>
              {report.byCounselor.map((r) => (
                <tr key={r.userId ?? "none"} className="border-b border-slate-200">
                  <td className="py-1">{r.displayName ?? (r.userId ? "Deleted user" : "Not tied to a session (drafting, documents, chat openings)")}</td>
                  <td className="py-1 text-right">{r.calls.toLocaleString()}</td>
                  <td className="py-1 text-right">{(r.promptTokens + r.completionTokens).toLocaleString()}</td>
                  <td className="py-1 text-right">{formatUsd(r.costUsd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {report.byCounselor.length === 0 && <p className="text-sm text-slate-700">No AI calls in this period.</p>}
          <h3 className="mt-4 mb-1 font-semibold">Per day (UTC)</h3>
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Estimated AI spend per day</caption>
            <thead>
              <tr className="border-b border-slate-300">
                <th scope="col" className="py-1">Day</th>
                <th scope="col" className="py-1 text-right">Calls</th>
                <th scope="col" className="py-1 text-right">Tokens</th>
                <th scope="col" className="py-1 text-right">Cost</th>
              </tr>
            </thead>
            <tbody>
              {report.byDay.map((d) => (
                <tr key={d.day} className="border-b border-slate-200">
                  <td className="py-1">{d.day}</td>
                  <td className="py-1 text-right">{d.calls.toLocaleString()}</td>
                  <td className="py-1 text-right">{(d.promptTokens + d.completionTokens).toLocaleString()}</td>
                  <td className="py-1 text-right">{formatUsd(d.costUsd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Card>
  );
}
