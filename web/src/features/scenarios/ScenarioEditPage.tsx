// Create or edit a scenario with all its fields (skills as chips; the mode is locked once the
// scenario is assigned). A one-time scenario can be created and assigned to one learner in one
// step; a draft from "generate from complaint" arrives prefilled and can be saved and assigned.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { useLocation, useNavigate, useParams } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { difficultyValues, scenarioModeValues } from "@/api/schema";
import { CounselorPicker } from "@/components/CounselorPicker";
import { Button, Card, ErrorNote, Notice, PageTitle, Select, Spinner, TextArea, TextInput } from "@/components/ui";
import { label } from "@/lib/format";
import { useCategories } from "./api";
import { RiskProfileForm } from "./RiskProfileForm";
import { TestRunsPanel } from "./TestRunsPanel";
import { keys } from "@/api/keys";

type Input = Schemas["ScenarioInput"];
type User = Schemas["User"];

const empty: Input = { title: "", prompt: "", description: "", mode: "phone", category: "", skills: [], difficulty: null, estimatedTime: 15, relevantPolicySections: "", evaluatorContext: "", isOneTime: false };

export default function ScenarioEditPage() {
  const { id } = useParams();
  const location = useLocation();
  const navigate = useNavigate();
  const client = useQueryClient();
  const categories = useCategories();
  const draft = (location.state as { draft?: Schemas["GeneratedScenario"] } | null)?.draft;
  const existing = useQuery({ queryKey: keys.scenarios.detail(id ?? ""), queryFn: () => call(api.GET("/api/scenarios/{id}", { params: { path: { id: id! } } })), enabled: !!id });
  const [form, setForm] = useState<Input>(() => {
    if (!draft) return empty;
    // The draft's notes on a profile the AI got wrong are shown, not sent back.
    const { riskProfileProblems: _problems, ...fields } = draft;
    return { ...empty, ...fields };
  });
  const [skill, setSkill] = useState("");
  const [learner, setLearner] = useState<User[]>([]);
  useEffect(() => {
    const s = existing.data;
    if (s) setForm({ title: s.title, prompt: s.prompt, description: s.description, mode: s.mode, category: s.category, skills: s.skills, difficulty: s.difficulty ?? null, estimatedTime: s.estimatedTime ?? null, relevantPolicySections: s.relevantPolicySections, evaluatorContext: s.evaluatorContext, isOneTime: s.isOneTime, riskProfile: s.riskProfile ?? null });
  }, [existing.data]);
  useEffect(() => {
    if (!form.category && categories.data?.categories[0]) setForm((f) => ({ ...f, category: categories.data!.categories[0]! }));
  }, [categories.data, form.category]);
  const modeLocked = (existing.data?.assignmentCount ?? 0) > 0;
  const save = useMutation({
    mutationFn: async (andAssign: boolean) => {
      const body: Input = { ...form, assignTo: !id && form.isOneTime && learner[0] ? { counselorId: learner[0].id } : undefined };
      const saved = id
        ? await call(api.PUT("/api/scenarios/{id}", { params: { path: { id } }, body }))
        : await call(api.POST("/api/scenarios", { body }));
      return { saved, andAssign };
    },
    onSuccess: async ({ saved, andAssign }) => {
      await client.invalidateQueries({ queryKey: keys.scenarios.all() });
      navigate(andAssign ? `/assignments?scenarioId=${saved.id}` : "/scenarios");
    },
  });
  const set = <K extends keyof Input>(key: K, value: Input[K]) => setForm((f) => ({ ...f, [key]: value }));
  const addSkill = () => {
    const s = skill.trim();
    if (s && !form.skills?.includes(s)) set("skills", [...(form.skills ?? []), s]);
    setSkill("");
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate(false);
  };
  if (id && existing.isPending) return <Spinner label="Loading the scenario…" />;
  const oneTimeCreate = !id && form.isOneTime;
  return (
    <div>
      <PageTitle>{id ? "Edit scenario" : "New scenario"}</PageTitle>
      <ErrorNote error={existing.error ?? categories.error} />
      {draft && <Notice>This draft was generated from a complaint: review every field before saving.</Notice>}
      {draft && (draft.riskProfileProblems?.length ?? 0) > 0 && (
        <Notice tone="warning">The AI's draft of the risk profile was left out ({draft.riskProfileProblems?.join("; ")}); write it below.</Notice>
      )}
      <form onSubmit={submit} className="mt-3 flex flex-col gap-4">
        <Card>
          <div className="grid gap-3 md:grid-cols-2">
            <TextInput label="Title" required value={form.title} onChange={(e) => set("title", e.target.value)} />
            <Select label="Category" required value={form.category} onChange={(e) => set("category", e.target.value)}>
              {categories.data?.categories.map((c) => <option key={c} value={c}>{label(c)}</option>)}
            </Select>
            <Select label="Mode" value={form.mode} disabled={modeLocked} onChange={(e) => set("mode", e.target.value as Input["mode"])} hint={modeLocked ? "Locked: the scenario is assigned." : undefined}>
              {scenarioModeValues.map((m) => <option key={m} value={m}>{label(m)}</option>)}
            </Select>
            <Select label="Difficulty" value={form.difficulty ?? ""} onChange={(e) => set("difficulty", (e.target.value || null) as Input["difficulty"])}>
              <option value="">Not set</option>
              {difficultyValues.map((d) => <option key={d} value={d}>{label(d)}</option>)}
            </Select>
            <TextInput label="Estimated time (minutes)" type="number" min={1} max={600} value={form.estimatedTime ?? ""} onChange={(e) => set("estimatedTime", e.target.value ? Number(e.target.value) : null)} />
          </div>
          <div className="mt-3 flex flex-col gap-3">
            <TextArea label="Description" value={form.description ?? ""} onChange={(e) => set("description", e.target.value)} />
            <TextArea label="Caller persona (the prompt the AI caller plays)" required rows={6} value={form.prompt} onChange={(e) => set("prompt", e.target.value)} />
            <div className="flex flex-col gap-1">
              <div className="flex items-end gap-2">
                <div className="flex-1">
                  <TextInput label="Skills" value={skill} onChange={(e) => setSkill(e.target.value)} onKeyDown={(e) => { if (e.key === "Enter" || e.key === ",") { e.preventDefault(); addSkill(); } }} hint="Enter adds a skill." />
                </div>
                <Button variant="secondary" onClick={addSkill}>Add skill</Button>
              </div>
              <ul className="flex flex-wrap gap-1" aria-label="Chosen skills">
                {form.skills?.map((s) => (
                  <li key={s} className="flex items-center gap-1 rounded-full bg-slate-200 px-2 py-0.5 text-sm">
                    {s}
                    <button type="button" aria-label={`Remove skill ${s}`} onClick={() => set("skills", form.skills!.filter((x) => x !== s))}>×</button>
                  </li>
                ))}
              </ul>
            </div>
            <TextArea label="Relevant policy sections" value={form.relevantPolicySections ?? ""} onChange={(e) => set("relevantPolicySections", e.target.value)} />
            <TextArea label="Grading guidance for the evaluator (never shown to the AI caller)" value={form.evaluatorContext ?? ""} onChange={(e) => set("evaluatorContext", e.target.value)} />
            {!id && (
              <label className="flex items-center gap-2 text-sm">
                <input type="checkbox" checked={!!form.isOneTime} onChange={(e) => set("isOneTime", e.target.checked)} />
                One-time scenario (for a single learner; hidden from the global library)
              </label>
            )}
            {oneTimeCreate && <CounselorPicker label="Learner" multiple={false} value={learner} onChange={setLearner} />}
          </div>
        </Card>
        <RiskProfileForm profile={form.riskProfile} onChange={(p) => set("riskProfile", p)} prompt={form.prompt} mode={form.mode} />
        <ErrorNote error={save.error} />
        <div className="flex gap-2">
          {oneTimeCreate ? (
            <Button type="submit" disabled={save.isPending || learner.length === 0}>Create &amp; assign</Button>
          ) : (
            <>
              <Button type="submit" disabled={save.isPending}>Save</Button>
              <Button variant="secondary" disabled={save.isPending} onClick={() => save.mutate(true)}>Save &amp; assign</Button>
            </>
          )}
          <Button variant="ghost" onClick={() => navigate("/scenarios")}>Cancel</Button>
        </div>
      </form>
      {id && <div className="mt-6"><TestRunsPanel scenarioId={id} /></div>}
    </div>
  );
}
