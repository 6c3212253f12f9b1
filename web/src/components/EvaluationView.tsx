// An evaluation: overall score, each criterion's rating with its checks, each check's quoted
// turns as links into the transcript, strengths and improvements.
import type { Schemas } from "@/api/client";
import { Badge } from "./ui";
import { label } from "@/lib/format";

type Evaluation = Schemas["Evaluation"];

function answerTone(answer: string) {
  return answer === "yes" ? "green" : answer === "no" ? "red" : "slate";
}

export function EvaluationView({ evaluation, onEvidence }: { evaluation: Evaluation; onEvidence: (turn: number) => void }) {
  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-baseline gap-3">
        {evaluation.overallScore == null ? (
          <span className="text-slate-700">
            No overall score{evaluation.scoreBasis?.absentReason ? `: ${evaluation.scoreBasis.absentReason}` : ""}
          </span>
        ) : (
          <>
            <span className="text-4xl font-bold text-blue-900" aria-label={`Overall score ${Math.round(evaluation.overallScore)} of 100`}>
              {Math.round(evaluation.overallScore)}
            </span>
            <span className="text-slate-700">/ 100 overall</span>
          </>
        )}
        {evaluation.scoreBand && <Badge tone={evaluation.scoreBand === "needs_work" ? "red" : "slate"}>{label(evaluation.scoreBand)}</Badge>}
        {evaluation.review?.reviewed && <Badge tone="green">Reviewed by a supervisor</Badge>}
      </div>
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
              <Badge tone={c.rating == null ? "slate" : c.rating >= 3 ? "green" : c.rating === 2 ? "amber" : "red"}>
                {c.rating == null ? "Not applicable" : `${c.rating} / 4`}
              </Badge>
            </div>
            <p className="mt-1 text-sm text-slate-800">{c.comment}</p>
            {c.checks && c.checks.length > 0 && (
              <ul className="mt-2 flex flex-col gap-1 text-sm">
                {c.checks.map((k) => (
                  <li key={k.key} className="flex flex-wrap items-center gap-2">
                    <Badge tone={answerTone(k.answer)}>{label(k.answer)}</Badge>
                    <span>{k.question}</span>
                    {k.turns?.map((t) => (
                      <a
                        key={t}
                        href={`#turn-${t}`}
                        className="text-blue-800 underline"
                        onClick={(e) => {
                          e.preventDefault();
                          onEvidence(t);
                        }}
                      >
                        turn {t}
                      </a>
                    ))}
                    {k.note && <span className="text-slate-700">— {k.note}</span>}
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
