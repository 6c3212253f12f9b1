// A scenario's test runs: an AI counselor (thorough or poor) practises a text call against the
// scenario's caller and the call is graded as counselors' are. The panel starts runs, lists them
// (polling while one is unfinished) and sets the last two finished runs side by side: which
// facts came out, whether the caller stayed true to the profile, the determination and the grade.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { Badge, Button, Card, ErrorNote, Notice } from "@/components/ui";
import { formatDateTime, label } from "@/lib/format";
import { keys } from "@/api/keys";

type Run = Schemas["TestRunView"];

const unfinished = (r: Run) => r.status === "queued" || r.status === "running";

function statusTone(status: Run["status"]): "slate" | "green" | "amber" | "red" | "blue" {
  return status === "done" ? "green" : status === "failed" ? "red" : "blue";
}

function score(r: Run): string {
  const s = r.evaluation?.overallScore;
  return s == null ? "—" : `${Math.round(s)}${r.evaluation?.scoreBand ? ` (${label(r.evaluation.scoreBand)})` : ""}`;
}

function determination(r: Run): string {
  const d = r.evaluation?.truth?.determination;
  if (!d) return "—";
  return `${d.filed ? label(d.filed) : "not filed"} vs ${label(d.expected)}: ${label(d.result)}`;
}

function fidelity(r: Run): string {
  const t = r.evaluation?.truth;
  if (!t) return "—";
  return t.deviations.length === 0 ? "stayed true" : `${t.deviations.length} deviation${t.deviations.length === 1 ? "" : "s"}`;
}

function elicited(r: Run): string {
  const facts = r.evaluation?.truth?.facts;
  if (!facts) return "—";
  const gated = facts.filter((f) => f.rule !== "volunteered");
  return `${gated.filter((f) => f.outcome === "elicited").length} of ${gated.length}`;
}

export function TestRunsPanel({ scenarioId }: { scenarioId: string }) {
  const client = useQueryClient();
  const key = keys.scenarios.testRuns(scenarioId);
  const runs = useQuery({
    queryKey: key,
    queryFn: () => call(api.GET("/api/scenarios/{id}/test-runs", { params: { path: { id: scenarioId } } })),
    refetchInterval: (q) => ((q.state.data ?? []).some(unfinished) ? 1500 : false),
  });
  const start = useMutation({
    mutationFn: (kind: Run["kind"]) => call(api.POST("/api/scenarios/{id}/test-runs", { params: { path: { id: scenarioId } }, body: { kind } })),
    onSuccess: () => client.invalidateQueries({ queryKey: key }),
  });
  const rerun = useMutation({
    mutationFn: () => call(api.POST("/api/scenarios/test-runs/rerun-all")),
    onSuccess: () => client.invalidateQueries({ queryKey: key }),
  });
  const list = runs.data ?? [];
  const finished = list.filter((r) => r.status === "done").slice(0, 2);
  return (
    <section aria-labelledby="test-runs-title">
      <Card
        title="Test runs"
        actions={
          <div className="flex flex-wrap gap-2">
            <Button disabled={start.isPending} onClick={() => start.mutate("thorough")}>Run a thorough counselor</Button>
            <Button variant="secondary" disabled={start.isPending} onClick={() => start.mutate("poor")}>Run a poor counselor</Button>
            <Button variant="ghost" disabled={rerun.isPending} onClick={() => rerun.mutate()}>Re-run all profiled scenarios</Button>
          </div>
        }
      >
        <h2 id="test-runs-title" className="sr-only">Test runs</h2>
        <p className="text-sm text-slate-600">
          An AI counselor practises a text call with this scenario's caller; the call is graded like a counselor's. Try a thorough and a poor counselor before assigning the scenario.
        </p>
        <ErrorNote error={runs.error ?? start.error ?? rerun.error} />
        {rerun.data && <Notice tone="success">{rerun.data.queued} runs queued.</Notice>}
        {list.length === 0 ? (
          <p className="mt-2 text-sm">No test runs yet.</p>
        ) : (
          <table className="mt-3 w-full text-left text-sm">
            <caption className="sr-only">Test runs of this scenario, newest first</caption>
            <thead>
              <tr><th scope="col">Counselor</th><th scope="col">Status</th><th scope="col">Started</th><th scope="col">Turns</th><th scope="col">Score</th><th scope="col">Determination</th><th scope="col">Transcript</th></tr>
            </thead>
            <tbody>
              {list.map((r) => (
                <tr key={r.id} className="border-t border-slate-200" data-testid="test-run">
                  <td>{label(r.kind)}</td>
                  <td><Badge tone={statusTone(r.status)}>{label(r.status)}</Badge>{r.error && <span className="ml-1 text-red-700">{r.error}</span>}</td>
                  <td>{formatDateTime(r.startedAt ?? r.createdAt)}</td>
                  <td>{r.counselorTurns}</td>
                  <td>{score(r)}</td>
                  <td>{determination(r)}</td>
                  <td>{r.counselorTurns > 0 ? <Link className="underline" to={`/sessions/${r.sessionId}`}>Open<span className="sr-only"> the {label(r.kind).toLowerCase()} test run of {formatDateTime(r.startedAt ?? r.createdAt)}</span></Link> : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {finished.length === 2 && <SideBySide newer={finished[0]} older={finished[1]} />}
      </Card>
    </section>
  );
}

function SideBySide({ newer, older }: { newer: Run; older: Run }) {
  const keys = Array.from(new Set([...(older.evaluation?.truth?.facts ?? []), ...(newer.evaluation?.truth?.facts ?? [])].map((f) => f.key)));
  const outcome = (r: Run, key: string) => {
    const f = r.evaluation?.truth?.facts.find((x) => x.key === key);
    return f ? label(f.outcome) : "—";
  };
  const text = (key: string) => (newer.evaluation?.truth?.facts ?? older.evaluation?.truth?.facts ?? []).find((f) => f.key === key)?.text ?? key;
  const head = (r: Run) => `${label(r.kind)}, ${formatDateTime(r.finishedAt)}`;
  return (
    <table className="mt-4 w-full text-left text-sm" data-testid="test-run-comparison">
      <caption className="text-left font-semibold">The last two runs side by side</caption>
      <thead>
        <tr><th scope="col">What</th><th scope="col">{head(older)}</th><th scope="col">{head(newer)}</th></tr>
      </thead>
      <tbody>
        <tr className="border-t border-slate-200"><th scope="row">Grade</th><td>{score(older)}</td><td>{score(newer)}</td></tr>
        <tr className="border-t border-slate-200"><th scope="row">Hidden facts elicited</th><td>{elicited(older)}</td><td>{elicited(newer)}</td></tr>
        <tr className="border-t border-slate-200"><th scope="row">Caller followed the profile</th><td>{fidelity(older)}</td><td>{fidelity(newer)}</td></tr>
        <tr className="border-t border-slate-200"><th scope="row">Risk determination</th><td>{determination(older)}</td><td>{determination(newer)}</td></tr>
        {keys.map((k) => (
          <tr key={k} className="border-t border-slate-200"><th scope="row" className="font-normal">Fact: {text(k)}</th><td>{outcome(older, k)}</td><td>{outcome(newer, k)}</td></tr>
        ))}
      </tbody>
    </table>
  );
}
