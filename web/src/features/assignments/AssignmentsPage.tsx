// Assignments: bulk assign (counselors by type-ahead x scenarios) with a per-pair report that
// closes itself only on pure success, and the list: filters (status, scenario, overdue, search by
// counselor or scenario, `?counselor=`; `?scenario=` from a scenario that cannot be deleted), overdue marked, due-date edit,
// unassign (confirmed; only without attempts: attempts are a training record), "reset an
// abandoned attempt", CSV export of what is shown.
import { enumLabel } from "@/api/labels";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { assignmentStatusValues } from "@/api/schema";
import { CounselorPicker } from "@/components/CounselorPicker";
import { Modal } from "@/components/Modal";
import { Badge, Button, Card, ErrorNote, Notice, PageTitle, Select, Spinner, TextInput } from "@/components/ui";
import { downloadCsv, toCsv } from "@/lib/csv";
import { formatDate, label } from "@/lib/format";
import { useAutoClose } from "@/lib/useAutoClose";
import { keys, lists } from "@/api/keys";

type User = Schemas["User"];
type Report = Schemas["AssignmentReport"];
type Status = Schemas["AssignmentStatus"];
type Assignment = Schemas["Assignment"];

/** A date input's value (a day) as the end of that day, local time: "due on the 5th" includes the 5th. */
function endOfDay(day: string): string {
  return new Date(`${day}T23:59:00`).toISOString();
}

function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export default function AssignmentsPage() {
  const [params] = useSearchParams();
  const client = useQueryClient();
  const [counselors, setCounselors] = useState<User[]>([]);
  const [scenarioIds, setScenarioIds] = useState<string[]>(params.get("scenarioId") ? [params.get("scenarioId")!] : []);
  const [due, setDue] = useState("");
  const [report, setReport] = useState<{ report: Report | null; error: unknown } | null>(null);
  const [status, setStatus] = useState<Status | "">("");
  // A counselor is found by the search (name or e-mail) or `?counselor=`: a second list of
  // counselor options beside the picker's would be one too many.
  const counselorFilter = params.get("counselor") ?? "";
  const [scenarioFilter, setScenarioFilter] = useState(params.get("scenario") ?? "");
  const [overdueOnly, setOverdueOnly] = useState(false);
  const [search, setSearch] = useState("");
  const [editing, setEditing] = useState<Assignment | null>(null);
  const [removing, setRemoving] = useState<Assignment | null>(null);
  const [done, setDone] = useState("");
  const scenarios = useQuery({ queryKey: keys.scenarios.list(lists.allScenarios), queryFn: () => call(api.GET("/api/scenarios", { params: { query: lists.allScenarios } })) });
  const query = { status: status || undefined, counselorId: counselorFilter || undefined, scenarioId: scenarioFilter || undefined, limit: 500 };
  const assignments = useQuery({
    queryKey: keys.assignments.list(query),
    queryFn: () => call(api.GET("/api/assignments", { params: { query } })),
  });
  const words = search.trim().toLowerCase();
  const shown = (assignments.data ?? []).filter(
    (a) => (!overdueOnly || a.overdue) && (!words || `${a.counselor.displayName} ${a.counselor.email} ${a.scenario.title}`.toLowerCase().includes(words)),
  );
  const exportCsv = () =>
    downloadCsv(
      "assignments.csv",
      toCsv(
        ["Counselor", "E-mail", "Scenario", "Status", "Overdue", "Due", "Attempts", "Assigned", "Completed"],
        shown.map((a) => [a.counselor.displayName, a.counselor.email, a.scenario.title, label(a.status), a.overdue ? "yes" : "no", a.dueAt ?? "", a.attempts, a.createdAt, a.completedAt ?? ""]),
      ),
    );
  const unassign = useMutation({
    mutationFn: (id: string) => call(api.DELETE("/api/assignments/{id}", { params: { path: { id } } })),
    onSuccess: () => {
      setDone(`Unassigned “${removing?.scenario.title}” from ${removing?.counselor.displayName}.`);
      setRemoving(null);
    },
    onSettled: () => client.invalidateQueries({ queryKey: keys.assignments.all() }),
  });
  const assign = useMutation({
    mutationFn: () =>
      call(api.POST("/api/assignments", { body: { counselorIds: counselors.map((c) => c.id), scenarioIds, dueAt: due ? endOfDay(due) : null } })) as Promise<Report>,
    onSuccess: (r) => setReport({ report: r, error: null }),
    onError: (e) => setReport({ report: null, error: e }),
    onSettled: () => client.invalidateQueries({ queryKey: keys.assignments.all() }),
  });
  const reset = useMutation({
    mutationFn: (id: string) => call(api.PATCH("/api/assignments/{id}", { params: { path: { id } }, body: { status: "pending" } })),
    onSettled: () => client.invalidateQueries({ queryKey: keys.assignments.all() }),
  });
  const title = (id: string) => scenarios.data?.find((s) => s.id === id)?.title ?? id;
  const person = (id: string) => counselors.find((c) => c.id === id)?.displayName ?? assignments.data?.find((a) => a.counselorId === id)?.counselor.displayName ?? id;
  const toggle = (id: string) => setScenarioIds((ids) => (ids.includes(id) ? ids.filter((x) => x !== id) : [...ids, id]));
  const close = useCallback(() => setReport(null), []);
  return (
    <div className="flex flex-col gap-6">
      <PageTitle>Assignments</PageTitle>
      <Card title="Assign scenarios">
        <div className="grid grid-cols-1 gap-4 md:grid-cols-2">
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
          <TextInput label="Due date (optional)" type="date" min={today()} value={due} onChange={(e) => setDue(e.target.value)} hint="Today or later." />
        </div>
        <div className="mt-3 flex items-center gap-3">
          <Button disabled={counselors.length === 0 || scenarioIds.length === 0 || assign.isPending} onClick={() => assign.mutate()}>
            Assign {scenarioIds.length} scenario{scenarioIds.length === 1 ? "" : "s"} to {counselors.length} counselor{counselors.length === 1 ? "" : "s"}
          </Button>
          {assign.isPending && <Spinner label="Assigning…" />}
        </div>
      </Card>
      <Card title="All assignments" actions={<Button variant="secondary" onClick={exportCsv} disabled={shown.length === 0}>Export CSV</Button>}>
        <div className="mb-3 grid gap-3 md:grid-cols-4">
          <Select label="Status" value={status} onChange={(e) => setStatus(e.target.value as Status | "")}>
            <option value="">Any</option>
            {assignmentStatusValues.map((s) => <option key={s} value={s}>{enumLabel("AssignmentStatus", s)}</option>)}
          </Select>
          <Select label="Scenario" value={scenarioFilter} onChange={(e) => setScenarioFilter(e.target.value)}>
            <option value="">All scenarios</option>
            {scenarios.data?.map((s) => <option key={s.id} value={s.id}>{s.title}</option>)}
          </Select>
          <TextInput label="Search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} hint="Counselor or scenario" />
          <label className="flex items-center gap-2 self-center text-sm">
            <input type="checkbox" checked={overdueOnly} onChange={(e) => setOverdueOnly(e.target.checked)} /> Overdue only
          </label>
        </div>
        {done && <div className="mb-2"><Notice tone="success">{done}</Notice></div>}
        <ErrorNote error={assignments.error ?? reset.error} />
        {assignments.isPending && <Spinner label="Loading assignments…" />}
        <table className="w-full text-left text-sm">
          <thead>
            <tr className="border-b border-slate-300">
              <th className="py-2">Counselor</th><th>Scenario</th><th>Status</th><th>Due</th><th>Attempts</th><th><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {shown.map((a) => (
              <tr key={a.id} className="border-b border-slate-200" data-testid="assignment-row">
                <td className="py-2">{a.counselor.displayName}</td>
                <td>{a.scenario.title}</td>
                <td><Badge tone={a.status === "completed" ? "green" : a.status === "in_progress" ? "blue" : "amber"}>{enumLabel("AssignmentStatus", a.status)}</Badge></td>
                <td>{formatDate(a.dueAt)} {a.overdue && <Badge tone="red">Overdue</Badge>}</td>
                <td>{a.attempts}</td>
                <td className="text-right">
                  <div className="flex flex-wrap justify-end gap-1">
                    {a.status !== "completed" && (
                      <Button variant="ghost" onClick={() => setEditing(a)} aria-label={`Due date of ${a.counselor.displayName} on ${a.scenario.title}`}>Due date</Button>
                    )}
                    {a.status === "in_progress" && (
                      <Button variant="ghost" onClick={() => reset.mutate(a.id)} aria-label={`Reset attempt of ${a.counselor.displayName} on ${a.scenario.title}`}>Reset attempt</Button>
                    )}
                    {a.attempts === 0 && (
                      <Button variant="ghost" onClick={() => { setDone(""); setRemoving(a); }} aria-label={`Unassign ${a.scenario.title} from ${a.counselor.displayName}`}>Unassign</Button>
                    )}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {assignments.data && shown.length === 0 && <p className="mt-2 text-sm text-slate-700">No assignments match.</p>}
      </Card>
      {editing && <DueDateModal assignment={editing} onClose={() => setEditing(null)} />}
      {removing && (
        <Modal title="Unassign?" onClose={() => setRemoving(null)}>
          <p className="text-sm">
            Unassign “{removing.scenario.title}” from {removing.counselor.displayName}? They have not started it; it disappears from their list.
          </p>
          <ErrorNote error={unassign.error} />
          <div className="mt-3 flex gap-2">
            <Button onClick={() => unassign.mutate(removing.id)} disabled={unassign.isPending}>Unassign</Button>
            <Button variant="secondary" onClick={() => setRemoving(null)}>Cancel</Button>
          </div>
        </Modal>
      )}
      {report && <ReportModal report={report.report} error={report.error} title={title} person={person} onClose={close} />}
    </div>
  );
}

function DueDateModal({ assignment, onClose }: { assignment: Assignment; onClose: () => void }) {
  const client = useQueryClient();
  const [day, setDay] = useState(assignment.dueAt && !assignment.overdue ? assignment.dueAt.slice(0, 10) : "");
  const save = useMutation({
    mutationFn: (dueAt: string | null) => call(api.PATCH("/api/assignments/{id}", { params: { path: { id: assignment.id } }, body: { dueAt } })),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: keys.assignments.all() });
      onClose();
    },
  });
  return (
    <Modal title={`Due date: ${assignment.scenario.title}, ${assignment.counselor.displayName}`} onClose={onClose}>
      <TextInput label="Due date" type="date" min={today()} value={day} onChange={(e) => setDay(e.target.value)} hint="Today or later; leave empty for no due date." />
      <ErrorNote error={save.error} />
      <div className="mt-3 flex gap-2">
        <Button onClick={() => save.mutate(day ? endOfDay(day) : null)} disabled={save.isPending}>Save</Button>
        <Button variant="secondary" onClick={onClose}>Cancel</Button>
      </div>
    </Modal>
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
