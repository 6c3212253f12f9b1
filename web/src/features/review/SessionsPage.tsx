// Supervisors' list of practice sessions: every filter, the sort and the paging run on the
// server (counselor, scenario, status, date range, search, "needs review": open flags, held
// evaluations, low scores not yet reviewed); each row names the scenario and counselor with the
// reviewed score and open flags; CSV export of the rows shown. `?needsReview=1` opens the queue.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { sessionSortValues, sessionStatusValues } from "@/api/schema";
import { Badge, Button, Card, ErrorNote, PageTitle, Select, Spinner, Tabs, TextInput } from "@/components/ui";
import { downloadCsv, toCsv } from "@/lib/csv";
import { formatDateTime, label } from "@/lib/format";
import { keys, lists } from "@/api/keys";

type Sort = Schemas["SessionSort"];
type Status = Schemas["SessionStatus"];

const PAGE = 100;

const SORT_LABEL: Record<Sort, string> = {
  newest: "Newest first",
  oldest: "Oldest first",
  score_low: "Lowest score first",
  score_high: "Highest score first",
};

/** A date input's day as an instant: the start of that day (from) or of the next (to). */
function dayStart(day: string, next = false): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (next) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

export default function SessionsPage() {
  const [params, setParams] = useSearchParams();
  const view = params.get("needsReview") ? "review" : "all";
  const [userId, setUserId] = useState("");
  const [scenarioId, setScenarioId] = useState("");
  const [status, setStatus] = useState<Status | "">("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [q, setQ] = useState("");
  const [sort, setSort] = useState<Sort>("newest");
  const [offset, setOffset] = useState(0);
  const users = useQuery({ queryKey: keys.users.list(lists.counselors), queryFn: () => call(api.GET("/api/users", { params: { query: lists.counselors } })) });
  const scenarios = useQuery({ queryKey: keys.scenarios.list(lists.allScenarios), queryFn: () => call(api.GET("/api/scenarios", { params: { query: lists.allScenarios } })) });
  const query = {
    type: "all" as const,
    userId: userId || undefined,
    scenarioId: scenarioId || undefined,
    status: status || undefined,
    from: dayStart(from),
    to: dayStart(to, true),
    q: q.trim() || undefined,
    sort,
    needsReview: view === "review" ? true : undefined,
    limit: PAGE,
    offset,
  };
  const sessions = useQuery({ queryKey: keys.sessions.list(query), queryFn: () => call(api.GET("/api/sessions", { params: { query } })) });
  const reset = <T,>(set: (v: T) => void) => (v: T) => {
    setOffset(0);
    set(v);
  };
  const rows = sessions.data ?? [];
  const exportCsv = () =>
    downloadCsv(
      view === "review" ? "sessions-needing-review.csv" : "sessions.csv",
      toCsv(
        ["Started", "Counselor", "Scenario", "Kind", "Status", "Attempt", "Score", "Band", "Flags", "Open flags", "Reviewed", "Needs review", "Session id"],
        rows.map((s) => [s.startedAt, s.counselorName, s.scenarioTitle ?? "Improvised caller", s.kind, s.status, s.attemptNumber ?? "free practice", s.overallScore == null ? "" : Math.round(s.overallScore), s.scoreBand ?? "", s.flags, s.openFlags, s.reviewed ? "yes" : "no", s.needsReview ? "yes" : "no", s.id]),
      ),
    );
  return (
    <div>
      <PageTitle actions={<Button variant="secondary" onClick={exportCsv} disabled={rows.length === 0}>Export CSV</Button>}>Sessions</PageTitle>
      <Tabs
        label="Which sessions"
        value={view}
        onChange={(v) => {
          setOffset(0);
          setParams(v === "review" ? { needsReview: "1" } : {});
        }}
        options={[{ value: "all", label: "All sessions" }, { value: "review", label: "Needs review" }]}
      />
      {view === "review" && <p className="mb-2 text-sm text-slate-700">Sessions with an open flag, an evaluation held for review, or a score under 50 no supervisor has reviewed yet.</p>}
      <div className="mb-3 grid gap-3 md:grid-cols-4">
        <Select label="Counselor" value={userId} onChange={(e) => reset(setUserId)(e.target.value)}>
          <option value="">All counselors</option>
          {users.data?.map((u) => <option key={u.id} value={u.id}>{u.displayName}</option>)}
        </Select>
        <Select label="Scenario" value={scenarioId} onChange={(e) => reset(setScenarioId)(e.target.value)}>
          <option value="">All scenarios</option>
          {scenarios.data?.map((s) => <option key={s.id} value={s.id}>{s.title}</option>)}
        </Select>
        <Select label="Status" value={status} onChange={(e) => reset(setStatus)(e.target.value as Status | "")}>
          <option value="">Any</option>
          {sessionStatusValues.map((s) => <option key={s} value={s}>{label(s)}</option>)}
        </Select>
        <Select label="Sort" value={sort} onChange={(e) => reset(setSort)(e.target.value as Sort)}>
          {sessionSortValues.map((s) => <option key={s} value={s}>{SORT_LABEL[s]}</option>)}
        </Select>
        <TextInput label="From" type="date" value={from} max={to || undefined} onChange={(e) => reset(setFrom)(e.target.value)} />
        <TextInput label="To" type="date" value={to} min={from || undefined} onChange={(e) => reset(setTo)(e.target.value)} />
        <TextInput label="Search" type="search" value={q} maxLength={200} onChange={(e) => reset(setQ)(e.target.value)} hint="Scenario, counselor name or e-mail" />
      </div>
      <ErrorNote error={sessions.error ?? users.error} />
      <Card>
        {sessions.isPending ? <Spinner label="Loading sessions…" /> : rows.length === 0 ? <p className="text-sm text-slate-700">No sessions match.</p> : (
          <table className="w-full text-left text-sm">
            <thead>
              <tr className="border-b border-slate-300">
                <th className="py-2">Started</th><th>Counselor</th><th>Scenario</th><th>Kind</th><th>Status</th><th>Score</th><th>Flags</th><th><span className="sr-only">Open</span></th>
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.id} className="border-b border-slate-200" data-testid="session-row">
                  <td className="py-2">{formatDateTime(s.startedAt)}</td>
                  <td>{s.counselorName}</td>
                  <td>{s.scenarioTitle ?? <span className="text-slate-600">Improvised caller</span>}{s.attemptNumber ? ` (attempt ${s.attemptNumber})` : ""}</td>
                  <td>{label(s.kind)}</td>
                  <td>
                    <Badge tone={s.status === "completed" ? "green" : "slate"}>{label(s.status)}</Badge>
                    {s.held && <> <Badge tone="amber">Held</Badge></>}
                    {s.reviewed && <> <Badge tone="blue">Reviewed</Badge></>}
                  </td>
                  <td>{s.overallScore == null ? "—" : Math.round(s.overallScore)}</td>
                  <td>{s.openFlags > 0 ? <Badge tone="red">{s.openFlags} open</Badge> : s.flags > 0 ? `${s.flags} closed` : "—"}</td>
                  <td className="text-right"><Link className="text-blue-800 underline" to={`/sessions/${s.id}`}>Review<span className="sr-only"> session of {s.counselorName} on {s.scenarioTitle ?? "free practice"} at {formatDateTime(s.startedAt)}</span></Link></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div className="mt-3 flex items-center gap-2 text-sm">
          <Button variant="secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Previous</Button>
          <Button variant="secondary" disabled={rows.length < PAGE} onClick={() => setOffset(offset + PAGE)}>Next</Button>
          <span className="text-slate-700">{rows.length > 0 ? `Rows ${offset + 1}–${offset + rows.length}` : ""}</span>
        </div>
      </Card>
    </div>
  );
}
