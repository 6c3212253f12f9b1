// Assignments: bulk assign (counselors by type-ahead x scenarios) with a per-pair report that
// closes itself only on pure success, and the list with "reset an abandoned attempt".
import { enumLabel } from "@/api/labels";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { assignmentStatusValues } from "@/api/schema";
import { CounselorPicker } from "@/components/CounselorPicker";
import { Modal } from "@/components/Modal";
import { Badge, Button, Card, ErrorNote, Notice, PageTitle, Select, Spinner, TextInput } from "@/components/ui";
import { formatDate } from "@/lib/format";
import { useAutoClose } from "@/lib/useAutoClose";

type User = Schemas["User"];
type Report = Schemas["AssignmentReport"];
type Status = Schemas["AssignmentStatus"];

export default function AssignmentsPage() {
  const [params] = useSearchParams();
  const client = useQueryClient();
  const [counselors, setCounselors] = useState<User[]>([]);
  const [scenarioIds, setScenarioIds] = useState<string[]>(params.get("scenarioId") ? [params.get("scenarioId")!] : []);
  const [due, setDue] = useState("");
  const [report, setReport] = useState<{ report: Report | null; error: unknown } | null>(null);
  const [status, setStatus] = useState<Status | "">("");
  const scenarios = useQuery({ queryKey: ["scenarios", "all"], queryFn: () => call(api.GET("/api/scenarios", { params: { query: { kind: "all", limit: 500 } } })) });
  const assignments = useQuery({
    queryKey: ["assignments", status],
    queryFn: () => call(api.GET("/api/assignments", { params: { query: { status: status || undefined, limit: 500 } } })),
  });
  const assign = useMutation({
    mutationFn: () =>
      call(api.POST("/api/assignments", { body: { counselorIds: counselors.map((c) => c.id), scenarioIds, dueAt: due ? new Date(`${due}T23:59:00`).toISOString() : null } })) as Promise<Report>,
    onSuccess: (r) => setReport({ report: r, error: null }),
    onError: (e) => setReport({ report: null, error: e }),
    onSettled: () => client.invalidateQueries({ queryKey: ["assignments"] }),
  });
  const reset = useMutation({
    mutationFn: (id: string) => call(api.PATCH("/api/assignments/{id}", { params: { path: { id } }, body: { status: "pending" } })),
    onSettled: () => client.invalidateQueries({ queryKey: ["assignments"] }),
  });
  const title = (id: string) => scenarios.data?.find((s) => s.id === id)?.title ?? id;
  const person = (id: string) => counselors.find((c) => c.id === id)?.displayName ?? assignments.data?.find((a) => a.counselorId === id)?.counselor.displayName ?? id;
  const toggle = (id: string) => setScenarioIds((ids) => (ids.includes(id) ? ids.filter((x) => x !== id) : [...ids, id]));
  const close = useCallback(() => setReport(null), []);
  return (
    <div className="flex flex-col gap-6">
      <PageTitle>Assignments</PageTitle>
      <Card title="Assign scenarios">
        <div className="grid gap-4 md:grid-cols-2">
          <CounselorPicker value={counselors} onChange={setCounselors} />
          <fieldset>
            <legend className="text-sm font-medium text-slate-800">Scenarios</legend>
            {scenarios.isPending && <Spinner label="Loading scenarios…" />}
            <ul className="max-h-56 overflow-y-auto rounded-md border border-slate-300 p-2">
              {scenarios.data?.map((s) => (
                <li key={s.id}>
                  <label className="flex items-center gap-2 py-0.5 text-sm">
                    <input type="checkbox" checked={scenarioIds.includes(s.id)} onChange={() => toggle(s.id)} />
                    {s.title} {s.isOneTime && <Badge>One-time</Badge>}
                  </label>
                </li>
              ))}
            </ul>
          </fieldset>
          <TextInput label="Due date (optional)" type="date" value={due} onChange={(e) => setDue(e.target.value)} />
        </div>
        <div className="mt-3 flex items-center gap-3">
          <Button disabled={counselors.length === 0 || scenarioIds.length === 0 || assign.isPending} onClick={() => assign.mutate()}>
            Assign {scenarioIds.length} scenario{scenarioIds.length === 1 ? "" : "s"} to {counselors.length} counselor{counselors.length === 1 ? "" : "s"}
          </Button>
          {assign.isPending && <Spinner label="Assigning…" />}
        </div>
      </Card>
      <Card title="All assignments" actions={
        <div className="w-48">
          <Select label="Status" value={status} onChange={(e) => setStatus(e.target.value as Status | "")}>
            <option value="">Any</option>
            {assignmentStatusValues.map((s) => <option key={s} value={s}>{enumLabel("AssignmentStatus", s)}</option>)}
          </Select>
        </div>
      }>
        <ErrorNote error={assignments.error ?? reset.error} />
        <table className="w-full text-left text-sm">
          <thead>
            <tr className="border-b border-slate-300">
              <th className="py-2">Counselor</th><th>Scenario</th><th>Status</th><th>Due</th><th>Attempts</th><th><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {assignments.data?.map((a) => (
              <tr key={a.id} className="border-b border-slate-200">
                <td className="py-2">{a.counselor.displayName}</td>
                <td>{a.scenario.title}</td>
                <td><Badge tone={a.status === "completed" ? "green" : a.status === "in_progress" ? "blue" : "amber"}>{enumLabel("AssignmentStatus", a.status)}</Badge></td>
                <td>{formatDate(a.dueAt)}</td>
                <td>{a.attempts}</td>
                <td className="text-right">
                  {a.status === "in_progress" && (
                    <Button variant="ghost" onClick={() => reset.mutate(a.id)} aria-label={`Reset the attempt of ${a.counselor.displayName} on ${a.scenario.title}`}>Reset attempt</Button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Card>
      {report && <ReportModal report={report.report} error={report.error} title={title} person={person} onClose={close} />}
    </div>
  );
}

export function ReportModal({ report, error, title, person, onClose }: { report: Report | null; error: unknown; title: (id: string) => string; person: (id: string) => string; onClose: () => void }) {
  useAutoClose(report, error, onClose);
  const pure = report && report.skipped.length === 0 && report.blocked.length === 0;
  return (
    <Modal title="Assignment report" onClose={onClose}>
      <ErrorNote error={error} />
      {report && (
        <div className="flex flex-col gap-2 text-sm" data-testid="assignment-report">
          <p className="font-medium">{report.created.length} created · {report.skipped.length} skipped · {report.blocked.length} blocked</p>
          {pure && <Notice tone="success">All assigned. This closes by itself.</Notice>}
          {report.created.length > 0 && (
            <ul className="list-disc pl-5">{report.created.map((a) => <li key={a.id}>Assigned “{a.scenario.title}” to {a.counselor.displayName}</li>)}</ul>
          )}
          {report.skipped.length > 0 && (
            <>
              <h3 className="font-semibold">Skipped</h3>
              <ul className="list-disc pl-5">{report.skipped.map((p) => <li key={p.scenarioId + p.counselorId}>{person(p.counselorId)} — “{title(p.scenarioId)}”: {p.reason}</li>)}</ul>
            </>
          )}
          {report.blocked.length > 0 && (
            <>
              <h3 className="font-semibold text-red-900">Blocked</h3>
              <ul className="list-disc pl-5">{report.blocked.map((p) => <li key={p.scenarioId + p.counselorId}>{person(p.counselorId)} — “{title(p.scenarioId)}”: {p.reason}</li>)}</ul>
            </>
          )}
        </div>
      )}
      <div className="mt-3"><Button variant="secondary" onClick={onClose}>Close</Button></div>
    </Modal>
  );
}
