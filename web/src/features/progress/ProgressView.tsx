// Progress charts (Recharts): overall score per session over time, each criterion's weekly
// average rating, flags raised per week; first / best / latest per scenario; attempts and
// completion.
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis, Bar, BarChart } from "recharts";
import type { Schemas } from "@/api/client";
import { Card } from "@/components/ui";
import { formatDate } from "@/lib/format";

type Progress = Schemas["Progress"];

const COLORS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf"];

function day(ms: number) {
  return new Date(ms).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

export function ProgressView({ progress, showCounselor }: { progress: Progress; showCounselor: boolean }) {
  const scorePoints = progress.scores.map((p) => ({ t: new Date(p.at).getTime(), score: Math.round(p.overallScore), who: p.counselorName, title: p.scenarioTitle ?? "Free practice" }));
  const keys = Array.from(new Map(progress.criteria.map((c) => [c.key, c.name])).entries());
  const weeks = new Map<number, Record<string, number>>();
  for (const c of progress.criteria) {
    const t = new Date(c.weekStart).getTime();
    const row = weeks.get(t) ?? { t };
    row[c.key] = Math.round(c.averageRating * 100) / 100;
    weeks.set(t, row);
  }
  const criteriaRows = Array.from(weeks.values()).sort((a, b) => a.t! - b.t!);
  const flagRows = progress.flagsByWeek.map((w) => ({ t: new Date(w.weekStart).getTime(), raised: w.raised }));
  const a = progress.activity;
  return (
    <div className="flex flex-col gap-4">
      <dl className="grid grid-cols-2 gap-3 md:grid-cols-5">
        {[
          ["Sessions started", a.sessionsStarted],
          ["Sessions completed", a.sessionsCompleted],
          ["Evaluated", a.sessionsEvaluated],
          ["Assignments completed", `${a.assignmentsCompleted} / ${a.assignments}`],
          ["Flags (open)", `${progress.flags.raised} (${progress.flags.open})`],
        ].map(([k, v]) => (
          <div key={k} className="rounded-lg border border-slate-300 bg-white p-3">
            <dt className="text-xs text-slate-700">{k}</dt>
            <dd className="text-xl font-semibold">{v}</dd>
          </div>
        ))}
      </dl>
      <Card title="Overall score per session">
        {scorePoints.length === 0 ? <p className="text-sm text-slate-700">No evaluated sessions yet.</p> : (
          <div className="h-64" data-testid="score-chart" role="img" aria-label={`Overall score of ${scorePoints.length} evaluated sessions over time; latest ${scorePoints[scorePoints.length - 1]!.score}`}>
            <ResponsiveContainer width="100%" height="100%">
              <LineChart data={scorePoints} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                <CartesianGrid stroke="#cbd5e1" strokeDasharray="3 3" />
                <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} scale="time" tickFormatter={day} stroke="#334155" />
                <YAxis domain={[0, 100]} stroke="#334155" />
                <Tooltip labelFormatter={(t) => day(Number(t))} formatter={(v, _n, item) => [v, `${showCounselor ? `${item.payload.who}: ` : ""}${item.payload.title}`]} />
                <Line type="monotone" dataKey="score" name="Overall score" stroke="#1d4ed8" strokeWidth={2} dot={{ r: 4 }} isAnimationActive={false} />
              </LineChart>
            </ResponsiveContainer>
          </div>
        )}
      </Card>
      <Card title="Rubric criteria: average rating per week (1–4)">
        {criteriaRows.length === 0 ? <p className="text-sm text-slate-700">No ratings yet.</p> : (
          <div className="h-72" role="img" aria-label="Average rating of each rubric criterion per week">
            <ResponsiveContainer width="100%" height="100%">
              <LineChart data={criteriaRows} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                <CartesianGrid stroke="#cbd5e1" strokeDasharray="3 3" />
                <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} scale="time" tickFormatter={day} stroke="#334155" />
                <YAxis domain={[1, 4]} ticks={[1, 2, 3, 4]} stroke="#334155" />
                <Tooltip labelFormatter={(t) => `Week of ${day(Number(t))}`} />
                <Legend />
                {keys.map(([key, name], i) => (
                  <Line key={key} type="monotone" dataKey={key} name={name} stroke={COLORS[i % COLORS.length]} strokeWidth={2} dot isAnimationActive={false} connectNulls />
                ))}
              </LineChart>
            </ResponsiveContainer>
          </div>
        )}
      </Card>
      <div className="grid gap-4 md:grid-cols-2">
        <Card title="Per scenario: first, best, latest">
          {progress.scenarios.length === 0 ? <p className="text-sm text-slate-700">No assigned scenarios evaluated yet.</p> : (
            <table className="w-full text-left text-sm">
              <thead><tr className="border-b border-slate-300">{showCounselor && <th>Counselor</th>}<th className="py-1">Scenario</th><th>Attempts</th><th>First</th><th>Best</th><th>Latest</th></tr></thead>
              <tbody>
                {progress.scenarios.map((s) => (
                  <tr key={s.counselorId + s.scenarioId} className="border-b border-slate-200">
                    {showCounselor && <td>{s.counselorName}</td>}
                    <td className="py-1">{s.scenarioTitle}</td>
                    <td>{s.attempts}</td>
                    <td>{Math.round(s.firstScore)}</td>
                    <td>{Math.round(s.bestScore)}</td>
                    <td>{Math.round(s.latestScore)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Flags raised per week">
          {flagRows.length === 0 ? <p className="text-sm text-slate-700">No flags raised.</p> : (
            <div className="h-48" role="img" aria-label={`${progress.flags.raised} flags raised, ${progress.flags.reviewed} reviewed, ${progress.flags.dismissed} dismissed`}>
              <ResponsiveContainer width="100%" height="100%">
                <BarChart data={flagRows}>
                  <CartesianGrid stroke="#cbd5e1" strokeDasharray="3 3" />
                  <XAxis dataKey="t" tickFormatter={day} stroke="#334155" />
                  <YAxis allowDecimals={false} stroke="#334155" />
                  <Tooltip labelFormatter={(t) => `Week of ${formatDate(new Date(Number(t)).toISOString())}`} />
                  <Bar dataKey="raised" name="Flags raised" fill="#b45309" isAnimationActive={false} />
                </BarChart>
              </ResponsiveContainer>
            </div>
          )}
        </Card>
      </div>
    </div>
  );
}
