// The account's AI-vs-supervisor agreement over a chosen period: where the AI can be trusted and
// where a human must look. Per check and per criterion (kappa, Gwet's AC1, PABAK with bootstrap
// intervals; weighted kappa for ratings), score bands, flags, and the most-disagreed checks.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, call, type Schemas } from "@/api/client";
import { Card, ErrorNote, Notice, PageTitle, Spinner, TextInput } from "@/components/ui";
import { checkLabel, formatDate, label } from "@/lib/format";
import { daysBefore, formatCi, formatRatio, formatStat, isoDay } from "@/lib/stats";
import { keys } from "@/api/keys";

const PRESETS = [30, 90, 365];

export default function AgreementPage() {
  const today = isoDay(new Date());
  const [from, setFrom] = useState(daysBefore(today, 90));
  const [to, setTo] = useState(today);
  const query = { from: from || undefined, to: to || undefined };
  const report = useQuery({
    queryKey: keys.agreement(query),
    queryFn: () => call(api.GET("/api/calibration/agreement", { params: { query } })),
  });
  const r = report.data;
  return (
    <div className="flex flex-col gap-4">
      <PageTitle>Calibration: AI vs supervisors</PageTitle>
      <Card title="Period">
        <form className="flex flex-wrap items-end gap-3" onSubmit={(e) => e.preventDefault()} aria-label="Period">
          <TextInput label="Reviews from" type="date" value={from} max={to} onChange={(e) => setFrom(e.target.value)} />
          <TextInput label="to" type="date" value={to} min={from} onChange={(e) => setTo(e.target.value)} />
          <div className="flex gap-1" role="group" aria-label="Preset periods">
            {PRESETS.map((d) => (
              <button
                key={d}
                type="button"
                aria-pressed={from === daysBefore(today, d) && to === today}
                className="rounded-md border border-slate-400 px-3 py-2 text-sm aria-pressed:bg-blue-100 aria-pressed:text-blue-950"
                onClick={() => {
                  setFrom(daysBefore(today, d));
                  setTo(today);
                }}
              >
                Last {d} days
              </button>
            ))}
          </div>
        </form>
      </Card>
      <ErrorNote error={report.error} />
      {report.isPending && <Spinner label="Computing agreement…" />}
      {r && <Report report={r} />}
    </div>
  );
}

function Report({ report: r }: { report: Schemas["AgreementReport"] }) {
  const byKey = new Map(r.checks.map((c) => [c.key, c]));
  if (r.evaluations === 0) {
    return <Notice>No reviewed evaluations between {formatDate(r.from)} and {formatDate(r.to)}. Review sessions (Sessions → a session → Review and override) to measure the AI against your supervisors.</Notice>;
  }
  const checks = [...r.checks].sort((a, b) => b.disagreements - a.disagreements || a.key.localeCompare(b.key));
  return (
    <>
      <Card title="Summary">
        <p className="text-sm">
          {r.evaluations} reviewed evaluations ({r.reviews} reviews, {r.overrides} overrides in force) from {formatDate(r.from)} to {formatDate(r.to)}.
        </p>
        <dl className="mt-3 grid grid-cols-2 gap-3 text-sm sm:grid-cols-4">
          <Stat name="Check answers agreed" value={formatRatio(r.allChecks.agreed, r.allChecks.n)} />
          <Stat name="Kappa (checks)" value={`${formatStat(r.allChecks.kappa)} ${formatCi(r.allChecks.kappaCi)}`} />
          <Stat name="AC1 (checks)" value={`${formatStat(r.allChecks.ac1)} ${formatCi(r.allChecks.ac1Ci)}`} />
          <Stat name="PABAK (checks)" value={formatStat(r.allChecks.pabak)} />
          <Stat name="Supervisor “no”, AI N/A or skipped" value={String(r.allChecks.noAnsweredNa)} />
          <Stat name="Ratings, weighted kappa" value={`${formatStat(r.ratings.weightedKappa)} ${formatCi(r.ratings.weightedKappaCi)}`} />
          <Stat name="Ratings within one point" value={formatRatio(r.ratings.withinOne, r.ratings.bothRated)} />
          <Stat name="Score bands agreed" value={`${formatRatio(r.bands.agreed, r.bands.n)}${r.bands.otherHigher ? ` · AI higher ${r.bands.otherHigher}×` : ""}`} />
        </dl>
      </Card>
      <Card title="Where a human must look">
        {r.mostDisagreed.length === 0 ? (
          <p className="text-sm">The AI agreed with the supervisors on every check in this period.</p>
        ) : (
          <ol className="list-decimal pl-5 text-sm" aria-label="Most-disagreed checks">
            {r.mostDisagreed.map((k) => (
              <li key={k}>
                {checkLabel(k)} — disagreed {byKey.get(k)?.disagreements ?? 0} of {byKey.get(k)?.n ?? 0} times
                {(byKey.get(k)?.noAnsweredNa ?? 0) > 0 && `, ${byKey.get(k)?.noAnsweredNa} where the supervisor said no and the AI said N/A`}
              </li>
            ))}
          </ol>
        )}
      </Card>
      <Card title="Per criterion">
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Agreement per criterion</caption>
            <thead>
              <tr className="border-b border-slate-300">
                <th scope="col" className="py-1 pr-3">Criterion</th>
                <th scope="col" className="pr-3">Checks agreed</th>
                <th scope="col" className="pr-3">Kappa</th>
                <th scope="col" className="pr-3">AC1</th>
                <th scope="col" className="pr-3">PABAK</th>
                <th scope="col" className="pr-3">Ratings exact</th>
                <th scope="col">Weighted kappa</th>
              </tr>
            </thead>
            <tbody>
              {r.criteria.map((c) => (
                <tr key={c.criterion} className="border-b border-slate-200">
                  <th scope="row" className="py-1 pr-3 font-medium">{label(c.criterion)}</th>
                  <td className="pr-3">{formatRatio(c.checks.agreed, c.checks.n)}</td>
                  <td className="pr-3">{formatStat(c.checks.kappa)} {formatCi(c.checks.kappaCi)}</td>
                  <td className="pr-3">{formatStat(c.checks.ac1)}</td>
                  <td className="pr-3">{formatStat(c.checks.pabak)}</td>
                  <td className="pr-3">{formatRatio(c.ratings.exact, c.ratings.n)}</td>
                  <td>{formatStat(c.ratings.weightedKappa)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
      <Card title="Per check (most disagreed first)">
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Agreement per check</caption>
            <thead>
              <tr className="border-b border-slate-300">
                <th scope="col" className="py-1 pr-3">Check</th>
                <th scope="col" className="pr-3">Disagreements</th>
                <th scope="col" className="pr-3">Agreed</th>
                <th scope="col" className="pr-3">No → N/A</th>
                <th scope="col" className="pr-3">Kappa</th>
                <th scope="col" className="pr-3">AC1</th>
                <th scope="col">Applicability kappa</th>
              </tr>
            </thead>
            <tbody>
              {checks.map((c) => (
                <tr key={c.key} className="border-b border-slate-200">
                  <th scope="row" className="py-1 pr-3 font-normal">{checkLabel(c.key)}</th>
                  <td className="pr-3">{c.disagreements}</td>
                  <td className="pr-3">{formatRatio(c.agreed, c.n)}</td>
                  <td className="pr-3">{c.noAnsweredNa}</td>
                  <td className="pr-3">{formatStat(c.kappa)}</td>
                  <td className="pr-3">{formatStat(c.ac1)}</td>
                  <td>{formatStat(c.applicabilityKappa)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
      <Card title="Flags">
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Flag precision and recall, supervisors as the reference</caption>
            <thead>
              <tr className="border-b border-slate-300">
                <th scope="col" className="py-1 pr-3">Flag</th>
                <th scope="col" className="pr-3">Supervisors raised</th>
                <th scope="col" className="pr-3">AI raised</th>
                <th scope="col" className="pr-3">Precision</th>
                <th scope="col" className="pr-3">Recall</th>
                <th scope="col">Kappa</th>
              </tr>
            </thead>
            <tbody>
              {r.flags.map((f) => (
                <tr key={f.flagType} className="border-b border-slate-200">
                  <th scope="row" className="py-1 pr-3 font-normal">{f.flagType === "all" ? "All flags" : label(f.flagType)}</th>
                  <td className="pr-3">{f.expected}</td>
                  <td className="pr-3">{f.raised}</td>
                  <td className="pr-3">{formatStat(f.precision)}</td>
                  <td className="pr-3">{formatStat(f.recall)}</td>
                  <td>{formatStat(f.kappa)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
    </>
  );
}

function Stat({ name, value }: { name: string; value: string }) {
  return (
    <div className="rounded border border-slate-300 p-2">
      <dt className="text-slate-700">{name}</dt>
      <dd className="text-lg font-semibold">{value}</dd>
    </div>
  );
}
