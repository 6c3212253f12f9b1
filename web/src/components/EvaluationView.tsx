// An evaluation: overall score, each criterion's rating with its checks, each check's quoted
// turns as links into the transcript, strengths and improvements. A supervisor-reviewed
// evaluation is marked as reviewed and shows, beside each overridden item, the AI's answer and
// the supervisor's reason. A score held by a safety gate says which gate and why, in plain
// words; a check an earlier omission made impossible shows as "not reached" and why.
import type { Schemas } from "@/api/client";
import { Badge } from "./ui";
import { formatDateTime, humanQuestion, label } from "@/lib/format";

type Evaluation = Schemas["Evaluation"];
type Gate = Schemas["GateHit"];

/** Who or what held the score, as a counselor reads it. */
const GATE_SOURCE: Record<Gate["source"], string> = {
  answers: "found in the evaluation's answers",
  evaluation: "raised by the AI evaluator",
  analysis: "raised by the post-call review",
  supervisor: "raised by a supervisor",
  counselor: "raised in a report from the counselor",
};

/**
 * One sentence beside the score saying why a gate capped it: "Capped at 25 because of a safety
 * flag: Missed rescue (raised by a supervisor); the rest of the call scored 59." (issue 20: a
 * supervisor's flag cut 59 to 25 with no word why).
 */
export function scoreExplanation(gates: Gate[], uncapped?: number | null): string | null {
  if (gates.length === 0) return null;
  const cap = Math.floor(Math.min(...gates.map((g) => g.cap)));
  const causes = gates.map((g) => `${label(g.flag)} (${GATE_SOURCE[g.source]})`).join("; ");
  const flags = gates.length === 1 ? "a safety flag" : `${gates.length} safety flags`;
  const rest = uncapped != null ? `; the rest of the call scored ${Math.round(uncapped)}` : "";
  return `Capped at ${cap} because of ${flags}: ${causes}${rest}.`;
}

function GateBanner({ gates, uncapped, onEvidence }: { gates: Gate[]; uncapped?: number | null; onEvidence: (turn: number) => void }) {
  const cap = Math.min(...gates.map((g) => g.cap));
  return (
    <div role="alert" aria-label="Safety gate" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-950">
      <p className="font-medium">
        {gates.length === 1 ? "A safety gate held this score" : `${gates.length} safety gates held this score`} in Needs work (at most {Math.floor(cap)})
        {uncapped != null && `; the rest of the call scored ${Math.round(uncapped)}`}.
      </p>
      <ul className="mt-1 flex flex-col gap-1">
        {gates.map((g) => (
          <li key={g.flag}>
            <strong>{label(g.flag)}</strong> ({g.severity === "critical" ? "a danger to life" : "a serious safety miss"}, {GATE_SOURCE[g.source]}): {g.reason}
            {g.turns?.map((t) => (
              <a
                key={t}
                href={`#turn-${t}`}
                className="ml-2 text-blue-800 underline"
                onClick={(e) => {
                  e.preventDefault();
                  onEvidence(t);
                }}
              >
                turn {t}
              </a>
            ))}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Why a blocked check was not reached: the check it depended on, in words. */
function notReached(evaluation: Evaluation, root: string): string {
  const [criterion, check] = root.split(".", 2);
  const found = evaluation.criteria.find((c) => c.key === criterion)?.checks?.find((k) => k.key === check);
  const question = humanQuestion(found?.question);
  if (found?.answer === "yes") return `Not reached because a rescue came first${question ? ` (“${question}”)` : ""}; not counted against you.`;
  return `Not reached because an earlier step was not done${question ? ` (“${question}”)` : ""}; counted once, there.`;
}

function answerTone(answer: string) {
  return answer === "yes" ? "green" : answer === "no" ? "red" : "slate";
}

function ReviewBanner({ review, evaluation }: { review: Schemas["ReviewSummary"]; evaluation: Evaluation }) {
  const added = review.flags.filter((f) => !review.aiFlags.includes(f));
  const removed = review.aiFlags.filter((f) => !review.flags.includes(f));
  return (
    <div role="note" aria-label="Supervisor review" className="rounded-md border border-green-300 bg-green-50 p-3 text-sm text-green-950">
      <p className="font-medium">
        Reviewed by {review.reviewerName ?? "a supervisor"} on {formatDateTime(review.reviewedAt)}
        {review.overrides.length === 0 ? " — the AI's evaluation was confirmed." : ` — ${review.overrides.length} ${review.overrides.length === 1 ? "answer" : "answers"} changed.`}
      </p>
      {review.overrides.length > 0 && review.aiOverallScore !== evaluation.overallScore && (
        <p>The AI's score was {review.aiOverallScore == null ? "none" : Math.round(review.aiOverallScore)}{review.aiScoreBand ? ` (${label(review.aiScoreBand)})` : ""}.</p>
      )}
      {added.length > 0 && <p>Flag raised by the supervisor: {added.map(label).join(", ")}.</p>}
      {removed.length > 0 && <p>AI flag withdrawn by the supervisor: {removed.map(label).join(", ")}.</p>}
      {review.notes.map((n, i) => <p key={i}>“{n}”</p>)}
    </div>
  );
}

export function EvaluationView({ evaluation, onEvidence }: { evaluation: Evaluation; onEvidence: (turn: number) => void }) {
  const reasons = new Map((evaluation.review?.overrides ?? []).map((o) => [`${o.kind}:${o.target}`, o.reason]));
  const explanation = scoreExplanation(evaluation.scoreBasis?.gates ?? [], evaluation.scoreBasis?.uncapped);
  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-baseline gap-3">
        {evaluation.overallScore == null ? (
          <span className="text-slate-700">
            No overall score{evaluation.scoreBasis?.absentReason ? `: ${evaluation.scoreBasis.absentReason}` : ""}
          </span>
        ) : (
          <>
            <span className="text-4xl font-bold text-blue-900" aria-label={`Overall score ${Math.round(evaluation.overallScore)} of 100`} aria-describedby={explanation ? "score-explanation" : undefined}>
              {Math.round(evaluation.overallScore)}
            </span>
            <span className="text-slate-700">/ 100 overall</span>
          </>
        )}
        {evaluation.scoreBand && <Badge tone={evaluation.scoreBand === "needs_work" ? "red" : "slate"}>{label(evaluation.scoreBand)}</Badge>}
        {evaluation.review?.reviewed && <Badge tone="green">Reviewed by a supervisor</Badge>}
      </div>
      {explanation && evaluation.overallScore != null && <p id="score-explanation" className="-mt-2 text-sm font-medium text-red-900">{explanation}</p>}
      {(evaluation.scoreBasis?.gates?.length ?? 0) > 0 && (
        <GateBanner gates={evaluation.scoreBasis.gates ?? []} uncapped={evaluation.scoreBasis.uncapped} onEvidence={onEvidence} />
      )}
      {evaluation.review && <ReviewBanner review={evaluation.review} evaluation={evaluation} />}
      <div className="grid gap-4 md:grid-cols-2">
        <div>
          <h3 className="font-semibold">Strengths</h3>
          <ul className="list-disc pl-5 text-sm">
            {evaluation.strengths.map((s) => <li key={s}>{s}</li>)}
          </ul>
        </div>
        <div>
          <h3 className="font-semibold">To improve</h3>
          <ul className="list-disc pl-5 text-sm">
            {evaluation.areasToImprove.map((s) => <li key={s}>{s}</li>)}
          </ul>
        </div>
      </div>
      <ul className="flex flex-col gap-3" aria-label="Criteria">
        {evaluation.criteria.map((c) => (
          <li key={c.key} className="rounded-md border border-slate-300 p-3">
            <div className="flex items-center justify-between gap-2">
              <h3 className="font-semibold">{c.name}</h3>
              <span className="flex items-center gap-2">
                {c.ratingOverridden && <span className="text-xs text-slate-700">AI: {c.aiRating == null ? "not applicable" : `${c.aiRating} / 4`}</span>}
                <Badge tone={c.rating == null ? "slate" : c.rating >= 3 ? "green" : c.rating === 2 ? "amber" : "red"}>
                  {c.rating == null ? "Not applicable" : `${c.rating} / 4`}
                </Badge>
              </span>
            </div>
            {c.ratingOverridden && reasons.get(`rating:${c.key}`) && <p className="text-sm text-green-900">Supervisor: {reasons.get(`rating:${c.key}`)}</p>}
            <p className="mt-1 text-sm text-slate-800">{c.comment}</p>
            {c.checks && c.checks.length > 0 && (
              <ul className="mt-2 flex flex-col gap-1 text-sm">
                {c.checks.map((k) => {
                  const reason = reasons.get(`check:${c.key}.${k.key}`);
                  const overridden = reason !== undefined && (k.aiAnswer ?? null) !== k.answer;
                  const blocked = k.blockedBy ? notReached(evaluation, k.blockedBy) : null;
                  return (
                  <li key={k.key} className="flex items-start gap-2" data-overridden={overridden || undefined} data-blocked={blocked ? true : undefined}>
                    <span className="shrink-0 pt-0.5">
                      {blocked ? <Badge tone="slate">Not reached</Badge> : <Badge tone={answerTone(k.answer)}>{label(k.answer)}</Badge>}
                    </span>
                    <div className="min-w-0 flex-1">
                      <span>{humanQuestion(k.question)}</span>
                      {blocked && <p className="text-slate-700">{blocked}</p>}
                      {overridden && <span className="ml-1 text-xs text-slate-700">(reviewed; AI said {k.aiAnswer ? label(k.aiAnswer) : "nothing"})</span>}
                      {k.turns?.map((t) => (
                        <a
                          key={t}
                          href={`#turn-${t}`}
                          className="ml-2 text-blue-800 underline"
                          onClick={(e) => {
                            e.preventDefault();
                            onEvidence(t);
                          }}
                        >
                          turn {t}
                        </a>
                      ))}
                      {k.note && <span className="text-slate-700"> — {k.note}</span>}
                      {overridden && <p className="text-green-900">Supervisor: {reason}</p>}
                    </div>
                  </li>
                  );
                })}
              </ul>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
