// The call record a counselor files after hanging up, as on a real line: the risk level they
// judged, what they learned (a checklist of kinds of facts, not the facts), what they did or
// planned, and a note. A new counselor is nervous here, so the form says plainly that it is
// practice, that there are no trick questions, that it takes a minute, and that skipping is
// allowed (recorded as "not filed"). Grading of the call waits for it.
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, call, type Schemas } from "@/api/client";
import { requiredActionValues, riskFactKindValues } from "@/api/schema";
import { Button, Card, ErrorNote, TextArea } from "@/components/ui";
import { DEFAULT_LEVELS, useRiskLevels } from "@/lib/riskLevels";

type Level = Schemas["RiskLevel"];
type Kind = Schemas["RiskFactKind"];
type Action = Schemas["RequiredAction"];

/** What each standard level means, beside the center's label for it. */
const MEANS: Record<Level, string> = {
  low: "thoughts of suicide may be there, but no plan, intent or means at hand",
  moderate: "suicidal desire with some capability, no plan or intent",
  high: "a plan, means or past attempts, without intent to act right now",
  imminent: "intent and means to act now, or an attempt under way",
};

const KIND_LABELS: Record<Kind, string> = {
  psychological_pain: "Psychological pain",
  hopelessness: "Hopelessness",
  trapped: "Feeling trapped",
  burden: "Feeling a burden",
  alone: "Feeling alone",
  means_access: "Access to means",
  firearms: "Firearms",
  past_attempts: "Past attempts",
  intoxication: "Intoxication",
  agitation: "Agitation",
  ideation: "Suicidal thoughts",
  plan: "A plan",
  timeline: "A timeline",
  preparatory_behavior: "Preparations",
  attempt_in_progress: "An attempt in progress",
  buffer: "Buffers / reasons for living",
  risk_to_others: "Risk to others",
  context: "Other context",
};

const ACTION_LABELS: Record<Action, string> = {
  safety_plan: "Safety plan",
  means_restriction: "Means restriction",
  active_rescue: "Active rescue (emergency services or mobile crisis)",
  follow_up: "Follow-up contact",
  warm_handoff: "Warm hand-off to another service",
  third_party_guidance: "Guidance for a third-party caller",
};

function toggle<T>(list: T[], value: T): T[] {
  return list.includes(value) ? list.filter((v) => v !== value) : [...list, value];
}

export function CallRecordForm({ sessionId, onFiled }: { sessionId: string; onFiled: () => void }) {
  // The center's levels (several may map to one standard level: the choice is kept by position).
  const levels = useRiskLevels().data?.levels ?? DEFAULT_LEVELS;
  const [chosen, setChosen] = useState<number | null>(null);
  const level: Level | null = chosen === null ? null : (levels[chosen]?.standard ?? null);
  const [kinds, setKinds] = useState<Kind[]>([]);
  const [actions, setActions] = useState<Action[]>([]);
  const [notes, setNotes] = useState("");
  const file = useMutation({
    mutationFn: (body: Schemas["CallRecordInput"]) =>
      call(api.PUT("/api/sessions/{id}/call-record", { params: { path: { id: sessionId } }, body })),
    onSuccess: onFiled,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (level) file.mutate({ status: "filed", riskLevel: level, factKinds: kinds, actions, notes });
  };
  return (
    <Card title="Your call record">
      <form onSubmit={submit} className="flex flex-col gap-4" aria-label="Call record">
        <p className="text-sm text-slate-700">
          Before your feedback, write down what you concluded, as you would after a real call. There are no trick
          questions and it takes about a minute. Your feedback then compares it with what the caller was carrying.
          Once grading starts it can't be changed.
        </p>
        <fieldset className="flex flex-col gap-1">
          <legend className="text-sm font-semibold">Risk level you judged</legend>
          {levels.map((l, i) => (
            <label key={i} className="flex items-start gap-2 text-sm">
              <input type="radio" name="riskLevel" value={l.standard} checked={chosen === i} onChange={() => setChosen(i)} />
              <span>{l.label} — {MEANS[l.standard]}</span>
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend className="text-sm font-semibold">What you learned (tick what came up)</legend>
          <div className="grid grid-cols-1 gap-1 sm:grid-cols-2">
            {riskFactKindValues.map((k) => (
              <label key={k} className="flex items-center gap-2 text-sm">
                <input type="checkbox" checked={kinds.includes(k)} onChange={() => setKinds(toggle(kinds, k))} />
                {KIND_LABELS[k]}
              </label>
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend className="text-sm font-semibold">What you did or planned</legend>
          <div className="flex flex-col gap-1">
            {requiredActionValues.map((a) => (
              <label key={a} className="flex items-center gap-2 text-sm">
                <input type="checkbox" checked={actions.includes(a)} onChange={() => setActions(toggle(actions, a))} />
                {ACTION_LABELS[a]}
              </label>
            ))}
          </div>
        </fieldset>
        <TextArea label="Notes (optional)" value={notes} maxLength={2000} onChange={(e) => setNotes(e.target.value)} />
        <ErrorNote error={file.error} />
        <div className="flex flex-wrap gap-2">
          <Button type="submit" disabled={!level || file.isPending}>File call record</Button>
          <Button variant="secondary" disabled={file.isPending} onClick={() => file.mutate({ status: "skipped" })}>
            Skip — go to feedback
          </Button>
        </div>
        {!level && <p className="text-xs text-slate-600">Choose a risk level to file the record, or skip it.</p>}
      </form>
    </Card>
  );
}
