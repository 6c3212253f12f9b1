// A supervisor reviews one session: transcript, evaluation with evidence links, flags with
// their review, analysis and usage, and (voice) the recording synced to the transcript: the
// current turn is highlighted while playing; a click on a turn or an evidence quote seeks there.
// Calibration: the supervisor overrides the evaluation's answers with reasons (CalibrationForm),
// sees the earlier reviews, and exports a reviewed session as a golden case. An evaluation held
// for review (a forged transcript) shows why, with a Release button (HeldBanner). A profiled
// scenario's session shows the counselor's call record and the comparison with the scenario
// (TruthPanel); suggested alternatives sit beside the transcript at their turn, where the
// supervisor edits or removes them (audited).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useParams, useSearchParams } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { EvaluationView } from "@/components/EvaluationView";
import { CalibrationForm, ReviewHistory } from "./CalibrationForm";
import { GoldenExport } from "./GoldenExport";
import { HeldBanner } from "./HeldBanner";
import { FlagCard } from "@/components/FlagCard";
import { RecordingPlayer, useRecordingSync } from "@/components/RecordingPlayer";
import { scrollToTurn, Transcript } from "@/components/Transcript";
import { suggestionAnnotations, SuggestionNote, TruthPanel } from "@/components/Truth";
import { Button, Card, ErrorNote, Notice, PageTitle, Spinner, TextArea } from "@/components/ui";
import { feedbackPollMs } from "@/lib/feedbackPoll";
import { formatDateTime, label } from "@/lib/format";
import { keys, lists } from "@/api/keys";

export default function SessionReviewPage() {
  const { id = "" } = useParams();
  const session = useQuery({
    queryKey: keys.session.detail(id),
    queryFn: () => call(api.GET("/api/sessions/{id}", { params: { path: { id } } })),
    refetchInterval: (q) => feedbackPollMs(q.state.data, Date.now()),
  });
  const users = useQuery({ queryKey: keys.users.list(lists.everyone), queryFn: () => call(api.GET("/api/users", { params: { query: lists.everyone } })) });
  const s = session.data;
  const sync = useRecordingSync(s?.transcript ?? []);
  const [highlighted, setHighlighted] = useState<number | null>(null);
  const [calibrating, setCalibrating] = useState(false);
  const [exporting, setExporting] = useState(false);
  const voice = s?.kind === "voice";
  const goToTurn = (n: number) => {
    setHighlighted(n);
    if (voice) sync.seekTo(n - 1);
    scrollToTurn(n);
  };
  const name = (uid: string) => users.data?.find((u) => u.id === uid)?.displayName ?? "a supervisor";
  // `?turn=N` (a flag's turn link from the queue): open at that turn once the transcript is here.
  const [params] = useSearchParams();
  const turnParam = Number(params.get("turn"));
  const loaded = !!s;
  useEffect(() => {
    if (loaded && Number.isInteger(turnParam) && turnParam > 0) {
      setHighlighted(turnParam);
      scrollToTurn(turnParam);
    }
  }, [loaded, turnParam]);
  return (
    <div className="flex flex-col gap-4">
      <PageTitle>Session review</PageTitle>
      <ErrorNote error={session.error} />
      {session.isPending && <Spinner label="Loading the session…" />}
      {s && (
        <>
          <p className="text-sm text-slate-700">
            {name(s.userId)} · {s.scenarioTitle ?? "Free practice, improvised caller"} · {label(s.kind)} · {formatDateTime(s.startedAt)} · {label(s.status)}
            {s.attemptNumber ? ` · attempt ${s.attemptNumber}` : " · free practice"}
            {s.usage && ` · ${s.usage.calls} AI calls, $${s.usage.costUsd.toFixed(3)}`}
          </p>
          <div className="grid gap-4 lg:grid-cols-2">
            <div className="flex flex-col gap-4">
              <Card title="Flags">
                {s.flags.length === 0 ? <p className="text-sm text-slate-700">No flags.</p> : (
                  <div className="flex flex-col gap-2">{s.flags.map((f) => <FlagCard key={f.id} flag={f} reviewerName={name} onTurn={goToTurn} />)}</div>
                )}
                {s.analysis && <div className="mt-2"><Notice>Analysis: {s.analysis.summary}</Notice></div>}
              </Card>
              <Card
                title="Evaluation"
                actions={s.evaluation && !calibrating && (
                  <div className="flex gap-2">
                    <Button variant="secondary" onClick={() => setCalibrating(true)}>Review and override</Button>
                    {s.evaluation.review && <Button variant="secondary" onClick={() => setExporting(true)}>Export as golden case</Button>}
                  </div>
                )}
              >
                {s.evaluation?.hold && <div className="mb-3"><HeldBanner sessionId={s.id} hold={s.evaluation.hold} onTurn={goToTurn} /></div>}
                {s.evaluation && calibrating ? <CalibrationForm session={s} onDone={() => setCalibrating(false)} /> :
                  s.evaluation ? <EvaluationView evaluation={s.evaluation} onEvidence={goToTurn} /> :
                  s.evaluationStatus === "running" ? <Spinner label="Evaluating…" /> :
                  <p className="text-sm text-slate-700">{s.evaluationStatus === "failed" ? `Evaluation failed: ${s.evaluationError ?? ""}` : "Not evaluated yet."}</p>}
              </Card>
              {(s.callRecordExpected || s.callRecord) && <CallRecordCard record={s.callRecord ?? null} />}
              {s.evaluation?.truth && <Card title="Against the scenario's truth"><TruthPanel truth={s.evaluation.truth} onTurn={goToTurn} /></Card>}
              {s.evaluation && <Card title="Reviews"><ReviewHistory sessionId={s.id} /></Card>}
            </div>
            <Card title="Transcript">
              {voice && (
                <div className="sticky top-0 z-10 mb-3 bg-white pb-2">
                  <RecordingPlayer key={s.status} ref={sync.audio} sessionId={s.id} onTime={sync.onTime} />
                </div>
              )}
              <Transcript
                turns={s.transcript}
                current={voice ? sync.current : undefined}
                highlighted={highlighted}
                onTurnClick={voice ? (i) => { setHighlighted(null); sync.seekTo(i); } : undefined}
                annotations={suggestionAnnotations(s.evaluation, (g) => <EditableSuggestion key={g.id} sessionId={s.id} evaluation={s.evaluation!} suggestion={g} />)}
              />
            </Card>
          </div>
          {exporting && <GoldenExport sessionId={s.id} onClose={() => setExporting(false)} />}
        </>
      )}
    </div>
  );
}

function CallRecordCard({ record }: { record: Schemas["CallRecord"] | null }) {
  return (
    <Card title="Counselor's call record">
      {!record ? (
        <p className="text-sm text-slate-700">Not filed yet.</p>
      ) : record.status === "skipped" ? (
        <p className="text-sm text-slate-700">Skipped by the counselor.</p>
      ) : (
        <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-sm">
          <dt className="font-medium">Risk level</dt>
          <dd>{label(record.riskLevel)}</dd>
          <dt className="font-medium">Noted</dt>
          <dd>{record.factKinds.length ? record.factKinds.map(label).join(", ") : "—"}</dd>
          <dt className="font-medium">Actions</dt>
          <dd>{record.actions.length ? record.actions.map(label).join(", ") : "—"}</dd>
          {record.notes && (
            <>
              <dt className="font-medium">Notes</dt>
              <dd className="whitespace-pre-wrap">{record.notes}</dd>
            </>
          )}
        </dl>
      )}
    </Card>
  );
}

/** A suggestion the supervisor may edit or remove (audited). */
function EditableSuggestion({ sessionId, evaluation, suggestion }: { sessionId: string; evaluation: Schemas["Evaluation"]; suggestion: Schemas["Suggestion"] }) {
  const client = useQueryClient();
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(suggestion.text);
  const done = () => client.invalidateQueries({ queryKey: keys.session.detail(sessionId) });
  const save = useMutation({
    mutationFn: () => call(api.PATCH("/api/evaluation-suggestions/{id}", { params: { path: { id: suggestion.id } }, body: { text } })),
    onSuccess: async () => {
      setEditing(false);
      await done();
    },
  });
  const remove = useMutation({
    mutationFn: () => call(api.DELETE("/api/evaluation-suggestions/{id}", { params: { path: { id: suggestion.id } } })),
    onSuccess: done,
  });
  return (
    <SuggestionNote evaluation={evaluation} suggestion={suggestion}>
      {suggestion.aiText && <p className="mt-1 text-xs text-slate-700">Edited; the AI suggested: {suggestion.aiText}</p>}
      {editing ? (
        <form
          className="mt-2 flex flex-col gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            save.mutate();
          }}
        >
          <TextArea label="Suggestion" value={text} maxLength={300} onChange={(e) => setText(e.target.value)} />
          <div className="flex gap-2">
            <Button type="submit" disabled={!text.trim() || save.isPending}>Save</Button>
            <Button variant="secondary" onClick={() => setEditing(false)}>Cancel</Button>
          </div>
        </form>
      ) : (
        <div className="mt-1 flex gap-2">
          <Button variant="ghost" onClick={() => setEditing(true)}>Edit</Button>
          <Button variant="ghost" disabled={remove.isPending} onClick={() => remove.mutate()}>Remove</Button>
        </div>
      )}
      <ErrorNote error={save.error ?? remove.error} />
    </SuggestionNote>
  );
}
