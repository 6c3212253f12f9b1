// The scenario's risk profile (its clinical truth) beside the persona: the caller's facts grouped
// by the 988 Lifeline assessment's parts, each with when the caller reveals it, the expected risk
// level and the required actions, and a live preview of the caller instructions they compile to
// (compiled by the API, so the preview is exactly what chat and voice send).
import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, call, type Schemas } from "@/api/client";
import { disclosureRuleValues, requiredActionValues, riskLevelValues } from "@/api/schema";
import { Button, Card, ErrorNote, Select, TextArea, TextInput } from "@/components/ui";
import { keys } from "@/api/keys";

type Profile = Schemas["RiskProfile"];
type Fact = Schemas["RiskFact"];
type Kind = Schemas["RiskFactKind"];
type Rule = Schemas["DisclosureRule"];
type Action = Schemas["RequiredAction"];

/** The assessment's parts and the kinds of fact each holds, with the words people read. */
export const GROUPS: { title: string; kinds: { kind: Kind; label: string }[] }[] = [
  { title: "Suicidal desire", kinds: [
    { kind: "psychological_pain", label: "Psychological pain" }, { kind: "hopelessness", label: "Hopelessness" },
    { kind: "trapped", label: "Feeling trapped" }, { kind: "burden", label: "Feeling a burden" }, { kind: "alone", label: "Feeling alone" }] },
  { title: "Suicidal capability", kinds: [
    { kind: "means_access", label: "Means and access" }, { kind: "firearms", label: "Firearms" }, { kind: "past_attempts", label: "Past attempts" },
    { kind: "intoxication", label: "Intoxication" }, { kind: "agitation", label: "Agitation" }] },
  { title: "Suicidal intent", kinds: [
    { kind: "ideation", label: "Ideation" }, { kind: "plan", label: "Plan" }, { kind: "timeline", label: "Timeline" },
    { kind: "preparatory_behavior", label: "Preparatory behaviour" }, { kind: "attempt_in_progress", label: "Attempt in progress" }] },
  { title: "Buffers", kinds: [{ kind: "buffer", label: "Buffer (reasons for living, support)" }] },
  { title: "Risk to others", kinds: [{ kind: "risk_to_others", label: "Risk to others" }] },
  { title: "Context", kinds: [{ kind: "context", label: "Context" }] },
];

export const RULE_LABELS: Record<Rule, string> = {
  volunteered: "Volunteered: brings it up early",
  when_asked: "Told when asked about it",
  asked_directly_after_rapport: "Only when asked directly, after rapport",
  never_volunteered: "Never volunteered; truthful if asked directly",
};

export const LEVEL_LABELS: Record<Schemas["RiskLevel"], string> = { low: "Low", moderate: "Moderate", high: "High", imminent: "Imminent" };

export const ACTION_LABELS: Record<Action, string> = {
  safety_plan: "Safety plan",
  means_restriction: "Means restriction",
  active_rescue: "Active rescue",
  follow_up: "Follow-up",
  warm_handoff: "Warm handoff",
  third_party_guidance: "Guidance for a third-party caller",
};

export const emptyProfile: Profile = { expectedLevel: "low", requiredActions: [], thirdParty: false, facts: [] };

/** A fresh key for a new fact of `kind`, unique in the profile. */
export function newKey(facts: Fact[], kind: Kind): string {
  let key: string = kind;
  for (let n = 2; facts.some((f) => f.key === key); n++) key = `${kind}_${n}`;
  return key;
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function RiskProfileForm({ profile, onChange, prompt, mode }: { profile: Profile | null | undefined; onChange: (p: Profile | null) => void; prompt: string; mode: Schemas["ScenarioMode"] }) {
  const p = profile ?? null;
  const facts = p?.facts ?? [];
  const setFacts = (next: Fact[]) => p && onChange({ ...p, facts: next });
  const setFact = (i: number, patch: Partial<Fact>) => setFacts(facts.map((f, j) => (j === i ? { ...f, ...patch } : f)));
  const actions = p?.requiredActions ?? [];
  const preview = useDebounced({ prompt, mode, riskProfile: p }, 400);
  const compiled = useQuery({
    queryKey: keys.scenarios.callerPreview(preview),
    queryFn: () => call(api.POST("/api/scenarios/preview-caller", { body: preview })),
    enabled: !!preview.riskProfile,
    retry: false,
  });
  return (
    <Card title="Risk profile (the caller's clinical truth; never shown to counselors before feedback)">
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" checked={!!p} onChange={(e) => onChange(e.target.checked ? { ...emptyProfile } : null)} />
        This scenario has a risk profile
      </label>
      {p && (
        <div className="mt-3 grid gap-4 lg:grid-cols-2">
          <div className="flex flex-col gap-3">
            <div className="grid gap-3 md:grid-cols-2">
              <Select label="Expected risk level" value={p.expectedLevel} onChange={(e) => onChange({ ...p, expectedLevel: e.target.value as Profile["expectedLevel"] })}>
                {riskLevelValues.map((l) => <option key={l} value={l}>{LEVEL_LABELS[l]}</option>)}
              </Select>
              <label className="flex items-center gap-2 self-end text-sm">
                <input type="checkbox" checked={!!p.thirdParty} onChange={(e) => onChange({ ...p, thirdParty: e.target.checked })} />
                Third-party caller (calling about someone else)
              </label>
            </div>
            <fieldset className="flex flex-wrap gap-3 text-sm">
              <legend className="mb-1 font-medium">Required actions</legend>
              {requiredActionValues.map((a) => (
                <label key={a} className="flex items-center gap-1">
                  <input type="checkbox" checked={actions.includes(a)} onChange={(e) => onChange({ ...p, requiredActions: e.target.checked ? [...actions, a] : actions.filter((x) => x !== a) })} />
                  {ACTION_LABELS[a]}
                </label>
              ))}
            </fieldset>
            {GROUPS.map((group) => {
              const inGroup = facts.map((f, i) => ({ f, i })).filter(({ f }) => group.kinds.some((k) => k.kind === f.kind));
              const first = group.kinds[0]!.kind;
              return (
                <section key={group.title} aria-label={group.title} className="rounded border border-slate-200 p-2">
                  <div className="flex items-center justify-between">
                    <h3 className="text-sm font-semibold">{group.title}</h3>
                    <Button variant="secondary" onClick={() => setFacts([...facts, { key: newKey(facts, first), kind: first, text: "", disclosure: "when_asked" }])}>Add {group.title.toLowerCase()} fact</Button>
                  </div>
                  {inGroup.map(({ f, i }) => (
                    <div key={i} className="mt-2 grid gap-2 border-t border-slate-100 pt-2 md:grid-cols-3">
                      <Select label="Kind" value={f.kind} onChange={(e) => setFact(i, { kind: e.target.value as Kind })}>
                        {group.kinds.map((k) => <option key={k.kind} value={k.kind}>{k.label}</option>)}
                      </Select>
                      <TextInput label="Key" value={f.key} onChange={(e) => setFact(i, { key: e.target.value })} hint="Short, lowercase; grading names the fact by it." />
                      <Select label="When the caller reveals it" value={f.disclosure} onChange={(e) => setFact(i, { disclosure: e.target.value as Rule })}>
                        {disclosureRuleValues.map((r) => <option key={r} value={r}>{RULE_LABELS[r]}</option>)}
                      </Select>
                      <div className="md:col-span-3">
                        <TextArea label="What the caller knows (in their words)" rows={2} value={f.text} onChange={(e) => setFact(i, { text: e.target.value })} />
                      </div>
                      <div><Button variant="ghost" onClick={() => setFacts(facts.filter((_, j) => j !== i))}>Remove fact</Button></div>
                    </div>
                  ))}
                </section>
              );
            })}
          </div>
          <div>
            <h3 className="text-sm font-semibold">Caller instructions preview</h3>
            <p className="text-xs text-slate-600">What the AI caller is told, compiled from the persona and this profile. It never sees the level or the rule names.</p>
            <ErrorNote error={compiled.error} />
            <pre aria-label="Caller instructions preview" className="mt-2 max-h-[40rem] overflow-auto whitespace-pre-wrap rounded bg-slate-50 p-2 text-xs">{compiled.data?.instructions ?? ""}</pre>
          </div>
        </div>
      )}
    </Card>
  );
}
