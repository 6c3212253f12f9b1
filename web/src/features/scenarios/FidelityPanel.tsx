// Where the AI caller departed from this scenario's risk profile, across its graded sessions and
// test runs: the counts, then each deviation with the fact, the rule it broke, what happened and
// a link to the session at its turn. A caller that keeps drifting makes the scenario easier
// than written and its grades wrong: this is the supervisor's cue to rewrite the persona or
// the fact.
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { keys } from "@/api/keys";
import { api, call, type Schemas } from "@/api/client";
import { Card, ErrorNote } from "@/components/ui";
import { formatDateTime } from "@/lib/format";
import { RULE_LABELS } from "./RiskProfileForm";

const WHAT: Record<Schemas["DeviationKind"], string> = {
  withheld: "Held it back although its rule was met",
  denied: "Denied it when asked",
  volunteered_gated: "Told it before its rule was met",
};

export function FidelityPanel({ scenarioId }: { scenarioId: string }) {
  const fidelity = useQuery({
    queryKey: keys.scenarios.fidelity(scenarioId),
    queryFn: () => call(api.GET("/api/scenarios/{id}/fidelity", { params: { path: { id: scenarioId } } })),
  });
  const f = fidelity.data;
  return (
    <section aria-labelledby="fidelity-title">
      <Card title="Caller fidelity">
        <h2 id="fidelity-title" className="sr-only">Caller fidelity</h2>
        <ErrorNote error={fidelity.error} />
        {f && (f.sessionsChecked === 0 ? (
          <p className="text-sm">No session of this scenario has been graded against its profile yet.</p>
        ) : (
          <>
            <p className="text-sm" data-testid="fidelity-summary">
              The caller departed from the profile {f.deviations} time{f.deviations === 1 ? "" : "s"}, in {f.sessionsWithDeviations} of {f.sessionsChecked} graded session{f.sessionsChecked === 1 ? "" : "s"} and test runs
              {f.deviations > 0 ? ` (held back ${f.withheld}, denied ${f.denied}, told too early ${f.volunteeredGated})` : ""}.
            </p>
            {f.entries.length > 0 && (
              <table className="mt-2 w-full text-left text-sm">
                <caption className="sr-only">The caller's departures from the profile, newest first</caption>
                <thead><tr><th scope="col">Fact</th><th scope="col">Its rule</th><th scope="col">What happened</th><th scope="col">Where</th></tr></thead>
                <tbody>
                  {f.entries.map((e, i) => (
                    <tr key={`${e.sessionId}-${e.factKey}-${e.kind}-${i}`} className="border-t border-slate-200" data-testid="fidelity-entry">
                      <td>{e.factText ?? "A fact since removed from the profile"}</td>
                      <td>{e.rule ? RULE_LABELS[e.rule] : "—"}</td>
                      <td>{WHAT[e.kind]}</td>
                      <td>
                        <Link className="underline" to={`/sessions/${e.sessionId}${e.turns?.length ? `?turn=${e.turns[0]}` : ""}`}>
                          {e.testRun ? "Test run" : (e.counselorName ?? "Session")}{e.turns?.length ? `, turn ${e.turns.join(", ")}` : ""}
                        </Link>{" "}
                        <span className="text-xs text-slate-600">{formatDateTime(e.foundAt)}</span>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        ))}
      </Card>
    </section>
  );
}
