// Grading against a scenario's clinical truth, as the counselor's feedback and the supervisor's
// review show it: the risk determination (call record vs the scenario), which hidden facts were
// uncovered, the required actions, where the AI caller did not follow the scenario (and that
// the counselor was not marked down for it), and the suggested alternatives shown beside the
// transcript at their turn.
import type { ReactNode } from "react";
import type { Schemas } from "@/api/client";
import { Badge, Notice } from "@/components/ui";
import { label } from "@/lib/format";
import { levelLabel, type CenterLevel } from "@/lib/riskLevels";

type Evaluation = Schemas["Evaluation"];
type Truth = Schemas["TruthAssessment"];
type Suggestion = Schemas["Suggestion"];

const OUTCOME: Record<Schemas["FactOutcome"], { text: string; tone: "green" | "blue" | "red" | "slate" }> = {
  elicited: { text: "You drew this out", tone: "green" },
  volunteered: { text: "The caller told you unasked", tone: "blue" },
  missed: { text: "Not uncovered", tone: "red" },
  withheld_by_caller: { text: "The caller held this back (not counted against you)", tone: "slate" },
};

const DETERMINATION: Record<Schemas["Determination"], { text: string; tone: "green" | "red" | "amber" | "slate" }> = {
  correct: { text: "Matches the scenario", tone: "green" },
  under_estimate: { text: "Lower than the scenario's risk", tone: "red" },
  over_estimate: { text: "Higher than the scenario's risk", tone: "amber" },
  not_filed: { text: "No call record filed", tone: "slate" },
};

function TurnLinks({ turns, onTurn }: { turns: number[]; onTurn: (n: number) => void }) {
  if (turns.length === 0) return null;
  return (
    <span className="text-xs text-slate-700">
      {" "}(turn{turns.length > 1 ? "s" : ""}{" "}
      {turns.map((t, i) => (
        <span key={t}>
          {i > 0 && ", "}
          <button type="button" className="text-blue-800 underline" onClick={() => onTurn(t)}>{t}</button>
        </span>
      ))}
      )
    </span>
  );
}

/** What grading against the scenario's risk profile found. */
/** `levels`: the center's names for the risk levels (grading compares the standard levels they
 * map to); the standard names without them. */
export function TruthPanel({ truth, onTurn, levels }: { truth: Truth; onTurn: (n: number) => void; levels?: CenterLevel[] }) {
  const d = truth.determination;
  const det = DETERMINATION[d.result];
  const uncovered = truth.facts.filter((f) => f.outcome === "elicited" || f.outcome === "volunteered").length;
  const counted = truth.facts.filter((f) => f.outcome !== "withheld_by_caller").length;
  return (
    <section aria-label="Against the scenario's truth" className="flex flex-col gap-3 text-sm">
      <div>
        <h3 className="font-semibold">Your risk determination</h3>
        <p>
          You judged <strong>{d.filed ? levelLabel(levels, d.filed) : "—"}</strong>; the scenario's risk was <strong>{levelLabel(levels, d.expected)}</strong>.{" "}
          <Badge tone={det.tone}>{det.text}</Badge>
        </p>
        {d.heldHarmless && <p className="text-slate-700">{d.heldHarmless}</p>}
      </div>
      <div>
        <h3 className="font-semibold">What the caller was carrying ({uncovered} of {counted} uncovered)</h3>
        <ul className="flex flex-col gap-1" aria-label="Facts of the scenario">
          {truth.facts.map((f) => (
            <li key={f.key} data-fact={f.key} data-outcome={f.outcome}>
              <Badge tone={OUTCOME[f.outcome].tone}>{OUTCOME[f.outcome].text}</Badge> {f.text}
              <TurnLinks turns={f.disclosedTurns?.length ? f.disclosedTurns : (f.askedTurns ?? [])} onTurn={onTurn} />
            </li>
          ))}
        </ul>
      </div>
      {truth.actions.length > 0 && (
        <div>
          <h3 className="font-semibold">What this call needed</h3>
          <ul className="flex flex-col gap-1">
            {truth.actions.map((a) => (
              <li key={a.action}>
                <Badge tone={a.answer === "yes" ? "green" : a.answer === "no" ? "red" : "slate"}>
                  {a.answer === "yes" ? "Done in the call" : a.answer === "no" ? "Not done in the call" : "Not assessed"}
                </Badge>{" "}
                {label(a.action)}
                {a.inCallRecord && <span className="text-slate-700"> · in your call record</span>}
                <TurnLinks turns={a.answer === "yes" ? (a.turns ?? []) : []} onTurn={onTurn} />
              </li>
            ))}
          </ul>
        </div>
      )}
      {truth.deviations.length > 0 && (
        <Notice tone="warning">
          The AI caller did not follow the scenario{" "}
          {truth.deviations.map((x, i) => (
            <span key={`${x.factKey}-${x.kind}`}>
              {i > 0 && "; "}
              {label(x.kind)}: {truth.facts.find((f) => f.key === x.factKey)?.text ?? x.factKey}
              <TurnLinks turns={x.turns ?? []} onTurn={onTurn} />
            </span>
          ))}
          . You were not marked down for what it held back.
        </Notice>
      )}
    </section>
  );
}

/** What a suggestion answers, in words: the failed check's question or the missed fact. */
export function suggestionAbout(evaluation: Evaluation, s: Suggestion): string {
  if (s.target.startsWith("fact:")) {
    const fact = evaluation.truth?.facts.find((f) => `fact:${f.key}` === s.target);
    return fact ? `Not uncovered: ${fact.text}` : "A fact not uncovered";
  }
  const [criterion, check] = s.target.replace(/^check:/, "").split(".");
  const q = evaluation.criteria.find((c) => c.key === criterion)?.checks?.find((k) => k.key === check)?.question;
  return q ?? label(check ?? criterion);
}

/** The suggestions as transcript annotations, at their turns. */
export function suggestionAnnotations(
  evaluation: Evaluation | null | undefined,
  render: (s: Suggestion) => ReactNode = (s) => <SuggestionNote key={s.id} evaluation={evaluation!} suggestion={s} />,
): Record<number, ReactNode> {
  const out: Record<number, ReactNode[]> = {};
  for (const s of evaluation?.suggestions ?? []) (out[s.turn] ??= []).push(render(s));
  return out;
}

export function SuggestionNote({ evaluation, suggestion, children }: { evaluation: Evaluation; suggestion: Suggestion; children?: ReactNode }) {
  return (
    <div className="mt-2 rounded border border-emerald-300 bg-emerald-50 p-2 text-sm" data-suggestion={suggestion.target}>
      <p className="text-xs font-semibold text-emerald-900">What you could say here · {suggestionAbout(evaluation, suggestion)}</p>
      <p className="whitespace-pre-wrap">{suggestion.text}</p>
      {children}
    </div>
  );
}
