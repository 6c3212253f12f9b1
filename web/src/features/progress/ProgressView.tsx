// Progress charts (Recharts): overall score per session over time (one line per counselor, so
// different people's sessions are never joined), the risk determination, hidden facts and
// required actions on profiled scenarios, a counselor x criterion heat map for supervisors (a
// table: colour plus the value as text) or each criterion's weekly average for a counselor,
// flags raised per week; first / best / latest per scenario; attempts and completion.
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis, Bar, BarChart } from "recharts";
import type { Schemas } from "@/api/client";
import { Card } from "@/components/ui";
import { formatDate } from "@/lib/format";
import { ChartLegend, ChartTable, ScrollX } from "./ChartParts";

type Progress = Schemas["Progress"];

const COLORS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf"];

function day(ms: number) {
  return new Date(ms).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

type TruthWeek = Schemas["TruthWeek"];

type Totals = { sessions: number; correct: number; under: number; over: number; notFiled: number; hidden: number; elicited: number; actions: number; taken: number };

function sum(weeks: TruthWeek[]): Totals {
  const t: Totals = { sessions: 0, correct: 0, under: 0, over: 0, notFiled: 0, hidden: 0, elicited: 0, actions: 0, taken: 0 };
  for (const w of weeks) {
    t.sessions += w.sessions; t.correct += w.correct; t.under += w.under; t.over += w.over; t.notFiled += w.notFiled;
    t.hidden += w.hiddenFacts; t.elicited += w.elicited; t.actions += w.requiredActions; t.taken += w.actionsTaken;
  }
  return t;
}

function pct(part: number, whole: number): string {
  return whole === 0 ? "—" : `${Math.round((100 * part) / whole)}% (${part}/${whole})`;
}

/** A heat-map cell's background for an average rating 1-4 (red to green); the value is always
 * printed too, so the colour is never the only carrier. */
function heat(rating: number): string {
  const hues = ["#fecaca", "#fed7aa", "#fef08a", "#bbf7d0", "#86efac"];
  return hues[Math.max(0, Math.min(4, Math.round((rating - 1) * (4 / 3))))]!;
}

function TruthCard({ weeks, showCounselor }: { weeks: TruthWeek[]; showCounselor: boolean }) {
  const total = sum(weeks);
  const byCounselor = new Map<string, { name: string; weeks: TruthWeek[] }>();
  for (const w of weeks) {
    const e = byCounselor.get(w.counselorId) ?? { name: w.counselorName, weeks: [] };
    e.weeks.push(w);
    byCounselor.set(w.counselorId, e);
  }
  const byWeek = new Map<string, TruthWeek[]>();
  for (const w of weeks) byWeek.set(w.weekStart, [...(byWeek.get(w.weekStart) ?? []), w]);
  const row = (name: string, t: Totals) => (
    <tr key={name} className="border-b border-slate-200">
      <th scope="row" className="py-1 font-normal">{name}</th>
      <td>{t.sessions}</td>
      <td>{pct(t.correct, t.sessions)}</td>
      <td>{t.under}</td>
      <td>{t.over}</td>
      <td>{pct(t.elicited, t.hidden)}</td>
      <td>{pct(t.taken, t.actions)}</td>
    </tr>
  );
  return (
    <Card title="Risk determination and hidden facts (profiled scenarios)">
      {total.sessions === 0 ? <p className="text-sm text-slate-700">No calls on profiled scenarios graded yet.</p> : (
        <div className="flex flex-col gap-3" data-testid="determination-accuracy">
          <p className="text-sm">
            Risk level judged correctly in <strong>{pct(total.correct, total.sessions)}</strong> of calls; under-estimated {total.under}, over-estimated {total.over}
            {total.notFiled > 0 ? `, no call record ${total.notFiled}` : ""}. Hidden facts elicited: <strong>{pct(total.elicited, total.hidden)}</strong>. Required actions taken: <strong>{pct(total.taken, total.actions)}</strong>.
          </p>
          <ScrollX label="Risk determination table">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Risk determination, hidden facts and required actions</caption>
            <thead><tr className="border-b border-slate-300"><th scope="col" className="py-1">{showCounselor ? "Counselor / week" : "Week"}</th><th scope="col">Calls</th><th scope="col">Level correct</th><th scope="col">Under</th><th scope="col">Over</th><th scope="col">Hidden facts elicited</th><th scope="col">Actions taken</th></tr></thead>
            <tbody>
              {showCounselor && Array.from(byCounselor.values()).map((c) => row(c.name, sum(c.weeks)))}
              {Array.from(byWeek.entries()).map(([week, ws]) => row(`Week of ${formatDate(week)}`, sum(ws)))}
            </tbody>
          </table>
          </ScrollX>
        </div>
      )}
    </Card>
  );
}

function HeatMap({ cells }: { cells: Schemas["CounselorCriterion"][] }) {
  const criteria = Array.from(new Map(cells.map((c) => [c.key, c.name])).entries());
  const counselors = Array.from(new Map(cells.map((c) => [c.counselorId, c.counselorName])).entries());
  const at = new Map(cells.map((c) => [`${c.counselorId}/${c.key}`, c]));
  return (
    <Card title="Counselors by rubric criterion: average rating (1–4)">
      {cells.length === 0 ? <p className="text-sm text-slate-700">No ratings yet.</p> : (
        <ScrollX label="Heat map table">
          <table className="text-left text-xs" data-testid="criterion-heatmap">
            <caption className="sr-only">Average rating of each counselor on each rubric criterion; 1 is not demonstrated, 4 exemplary</caption>
            <thead>
              <tr><th scope="col" className="p-1">Counselor</th>{criteria.map(([k, name]) => <th key={k} scope="col" className="p-1 align-bottom font-medium">{name}</th>)}</tr>
            </thead>
            <tbody>
              {counselors.map(([id, name]) => (
                <tr key={id}>
                  <th scope="row" className="p-1 font-medium">{name}</th>
                  {criteria.map(([k]) => {
                    const c = at.get(`${id}/${k}`);
                    return c ? (
                      <td key={k} className="border border-white p-1 text-center text-slate-900" style={{ background: heat(c.averageRating) }} title={`${c.ratings} rating${c.ratings === 1 ? "" : "s"}`}>
                        {c.averageRating.toFixed(1)}
                      </td>
                    ) : <td key={k} className="border border-white p-1 text-center text-slate-500">—</td>;
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollX>
      )}
    </Card>
  );
}

export function ProgressView({ progress, showCounselor }: { progress: Progress; showCounselor: boolean }) {
  const scorePoints = progress.scores.map((p) => ({ t: new Date(p.at).getTime(), score: Math.round(p.overallScore), who: p.counselorName, id: p.counselorId, title: p.scenarioTitle ?? "Free practice" }));
  // One line per counselor: joining different people's sessions into one line draws a trend
  // nobody had.
  const series = Array.from(
    scorePoints.reduce((m, p) => m.set(p.id, { name: p.who, points: [...(m.get(p.id)?.points ?? []), p] }), new Map<string, { name: string; points: typeof scorePoints }>()).entries(),
  );
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
              <LineChart margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                <CartesianGrid stroke="#cbd5e1" strokeDasharray="3 3" />
                <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} scale="time" tickFormatter={day} stroke="#334155" allowDuplicatedCategory={false} />
                <YAxis domain={[0, 100]} stroke="#334155" />
                <Tooltip labelFormatter={(t) => day(Number(t))} formatter={(v, _n, item) => [v, `${showCounselor ? `${item.payload.who}: ` : ""}${item.payload.title}`]} />
                {series.map(([id, s], i) => (
                  <Line key={id} data={s.points} type="monotone" dataKey="score" name={showCounselor ? s.name : "Overall score"} stroke={COLORS[i % COLORS.length]} strokeWidth={2} dot={{ r: 4 }} isAnimationActive={false} />
                ))}
              </LineChart>
            </ResponsiveContainer>
          </div>
        )}
        {showCounselor && series.length > 1 && <ChartLegend label="Counselors" items={series.map(([, s], i) => ({ name: s.name, color: COLORS[i % COLORS.length]! }))} />}
        {scorePoints.length > 0 && (
          <ChartTable
            caption="Overall score per session"
            columns={["Date", ...(showCounselor ? ["Counselor"] : []), "Scenario", "Score"]}
            rows={[...scorePoints].sort((x, y) => x.t - y.t).map((p, i) => ({ key: `${p.id}-${p.t}-${i}`, cells: [formatDate(new Date(p.t).toISOString()), ...(showCounselor ? [p.who] : []), p.title, p.score] }))}
          />
        )}
      </Card>
      <TruthCard weeks={progress.truth} showCounselor={showCounselor} />
      {showCounselor ? <HeatMap cells={progress.counselorCriteria} /> : <Card title="Rubric criteria: average rating per week (1–4)">
        {criteriaRows.length === 0 ? <p className="text-sm text-slate-700">No ratings yet.</p> : (
          <div className="h-72" role="img" aria-label="Average rating of each rubric criterion per week">
            <ResponsiveContainer width="100%" height="100%">
              <LineChart data={criteriaRows} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                <CartesianGrid stroke="#cbd5e1" strokeDasharray="3 3" />
                <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} scale="time" tickFormatter={day} stroke="#334155" />
                <YAxis domain={[1, 4]} ticks={[1, 2, 3, 4]} stroke="#334155" />
                <Tooltip labelFormatter={(t) => `Week of ${day(Number(t))}`} />
                {keys.map(([key, name], i) => (
                  <Line key={key} type="monotone" dataKey={key} name={name} stroke={COLORS[i % COLORS.length]} strokeWidth={2} dot isAnimationActive={false} connectNulls />
                ))}
              </LineChart>
            </ResponsiveContainer>
          </div>
        )}
        {criteriaRows.length > 0 && (
          <>
            <ChartLegend label="Rubric criteria" items={keys.map(([, name], i) => ({ name, color: COLORS[i % COLORS.length]! }))} />
            <ChartTable
              caption="Average rating of each rubric criterion per week (1 to 4)"
              columns={["Week of", ...keys.map(([, name]) => name)]}
              rows={criteriaRows.map((r) => ({ key: String(r.t), cells: [formatDate(new Date(r.t!).toISOString()), ...keys.map(([k]) => (r[k] === undefined ? "—" : r[k]!.toFixed(2)))] }))}
            />
          </>
        )}
      </Card>}
      {/* grid-cols-1 (minmax(0, 1fr)) keeps a wide table from widening the page on a phone. */}
      <div className="grid grid-cols-1 gap-4 md:grid-cols-2">
        <Card title="Per scenario: first, best, latest">
          {progress.scenarios.length === 0 ? <p className="text-sm text-slate-700">No assigned scenarios evaluated yet.</p> : (
            <ScrollX label="Scores per scenario table">
            <table className="w-full text-left text-sm">
              <caption className="sr-only">First, best and latest score per scenario</caption>
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
            </ScrollX>
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
          {flagRows.length > 0 && (
            <ChartTable caption="Flags raised per week" columns={["Week of", "Flags raised"]} rows={flagRows.map((r) => ({ key: String(r.t), cells: [formatDate(new Date(r.t).toISOString()), r.raised] }))} />
          )}
        </Card>
      </div>
    </div>
  );
}
