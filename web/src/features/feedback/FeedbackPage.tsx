// Feedback on one of the counselor's sessions: the evaluation with evidence links into the
// transcript, a way to report a problem with the AI caller, and documentation upload with its
// review. A scenario with a risk profile first asks for the call record (CallRecordForm), then
// grades; its feedback compares the record and the call with the scenario (TruthPanel) and shows
// what the counselor could have said beside the transcript at each turn where it mattered.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useRef, useState, type FormEvent } from "react";
import { useParams } from "react-router-dom";
import { api, call, fileForm } from "@/api/client";
import { EvaluationView } from "@/components/EvaluationView";
import { scrollToTurn, Transcript } from "@/components/Transcript";
import { useRiskLevels } from "@/lib/riskLevels";
import { suggestionAnnotations, TruthPanel } from "@/components/Truth";
import { Button, Card, ErrorNote, Field, Notice, PageTitle, Spinner, TextArea } from "@/components/ui";
import { feedbackPollMs, voiceGradingPending } from "@/lib/feedbackPoll";
import { formatDateTime, label } from "@/lib/format";
import { CallRecordForm } from "./CallRecordForm";
import { keys } from "@/api/keys";

export function FeedbackPage() {
  const { sessionId = "" } = useParams();
  const client = useQueryClient();
  const levels = useRiskLevels().data?.levels;
  const session = useQuery({
    queryKey: keys.session.detail(sessionId),
    queryFn: () => call(api.GET("/api/sessions/{id}", { params: { path: { id: sessionId } } })),
    refetchInterval: (q) => feedbackPollMs(q.state.data, Date.now()),
  });
  const [highlighted, setHighlighted] = useState<number | null>(null);
  const evaluate = useMutation({
    mutationFn: () => call(api.POST("/api/sessions/{id}/evaluate", { params: { path: { id: sessionId } } })),
    onSettled: () => client.invalidateQueries({ queryKey: keys.session.detail(sessionId) }),
  });
  const onEvidence = (turn: number) => {
    setHighlighted(turn);
    scrollToTurn(turn);
  };
  const s = session.data;
  // Grading of a profiled scenario waits for the record: ask for it before anything else.
  const needsRecord = !!s && s.callRecordExpected && !s.callRecord && !s.evaluation && s.evaluationStatus !== "running";
  const recordFiled = async () => {
    await client.invalidateQueries({ queryKey: keys.session.detail(sessionId) });
    // A chat is graded on request; a voice call's queued grading was woken by the record.
    if (s?.kind === "chat") evaluate.mutate();
  };
  return (
    <div className="flex flex-col gap-4">
      <PageTitle>Feedback</PageTitle>
      <ErrorNote error={session.error} />
      {session.isPending && <Spinner label="Loading…" />}
      {s && (
        <>
          <p className="text-sm text-slate-700">
            {s.scenarioTitle ?? "Free practice"} · {label(s.kind)} session, {formatDateTime(s.startedAt)} · {label(s.status)}
            {s.attemptNumber ? ` · attempt ${s.attemptNumber}` : ""}
          </p>
          <div className="grid grid-cols-1 gap-4 lg:grid-cols-2">
            {needsRecord ? <CallRecordForm sessionId={sessionId} onFiled={recordFiled} /> : <Card title="Evaluation">
              {s.notGradedReason ? (
                <Notice>{s.notGradedReason}</Notice>
              ) : s.evaluation?.hold?.held ? (
                <Notice>Under review: a supervisor is looking at this evaluation before it is shown. Your feedback will appear here once they have.</Notice>
              ) : s.evaluation ? (
                <div className="flex flex-col gap-4">
                  {s.evaluation.truth && <TruthPanel truth={s.evaluation.truth} onTurn={onEvidence} levels={levels} />}
                  <EvaluationView evaluation={s.evaluation} onEvidence={onEvidence} />
                </div>
              ) : s.evaluationStatus === "running" || evaluate.isPending ? (
                <Spinner label="Evaluating — this can take up to a minute…" />
              ) : voiceGradingPending(s, Date.now()) ? (
                <Spinner label={s.status === "active" ? "Saving the call…" : "The call is saved; grading starts in a moment…"} />
              ) : (
                <div className="flex flex-col gap-2">
                  {s.evaluationStatus === "failed" ? (
                    <Notice tone="warning">Grading did not work this time (the grading service may be busy). Try again in a few minutes.</Notice>
                  ) : (
                    <p className="text-sm">{s.kind === "voice" && s.status === "completed" ? "Grading has not started yet. Try again in a few minutes." : "No evaluation yet."}</p>
                  )}
                  <div><Button onClick={() => evaluate.mutate()} disabled={evaluate.isPending}>{s.evaluationStatus === "failed" ? "Try grading again" : "Evaluate this session"}</Button></div>
                  <ErrorNote error={evaluate.error} />
                </div>
              )}
            </Card>}
            <Card title="Transcript">
              <Transcript turns={s.transcript} highlighted={highlighted} annotations={s.evaluation?.hold?.held ? undefined : suggestionAnnotations(s.evaluation)} />
            </Card>
          </div>
          <ReportProblem sessionId={sessionId} />
          {s.status === "completed" && <Documentation sessionId={sessionId} />}
        </>
      )}
    </div>
  );
}

function ReportProblem({ sessionId }: { sessionId: string }) {
  const [details, setDetails] = useState("");
  const report = useMutation({
    mutationFn: () => call(api.POST("/api/sessions/{id}/flag", { params: { path: { id: sessionId } }, body: { details, flagType: "ai_caller_problem" } })),
    onSuccess: () => setDetails(""),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    report.mutate();
  };
  return (
    <Card title="Report a problem with the AI caller">
      <form onSubmit={submit} className="flex flex-col gap-2">
        <TextArea label="What went wrong?" required value={details} onChange={(e) => setDetails(e.target.value)} />
        <ErrorNote error={report.error} />
        {report.isSuccess && <Notice tone="success">Thank you — a supervisor will look at it.</Notice>}
        <div><Button type="submit" variant="secondary" disabled={report.isPending || !details.trim()}>Send report</Button></div>
      </form>
    </Card>
  );
}

function Documentation({ sessionId }: { sessionId: string }) {
  const client = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const reviews = useQuery({ queryKey: keys.session.documentReviews(sessionId), queryFn: () => call(api.GET("/api/sessions/{id}/document-reviews", { params: { path: { id: sessionId } } })) });
  // One click, one review: a second submit before the first re-render is dropped here, and the
  // server answers a repeat of the same file with the first review anyway.
  const sending = useRef(false);
  const send = useMutation({
    mutationFn: (f: File) => call(api.POST("/api/sessions/{id}/document-review", { params: { path: { id: sessionId } }, body: fileForm(f) })),
    onSettled: () => {
      sending.current = false;
      client.invalidateQueries({ queryKey: keys.session.documentReviews(sessionId) });
    },
  });
  return (
    <Card title="Your documentation">
      <form
        className="flex flex-wrap items-end gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          if (!file || sending.current) return;
          sending.current = true;
          send.mutate(file);
        }}
      >
        <Field label="Call notes (PDF)">
          {(id) => <input id={id} type="file" accept="application/pdf" onChange={(e) => setFile(e.target.files?.[0] ?? null)} className="text-sm" />}
        </Field>
        <Button type="submit" disabled={!file || send.isPending}>Upload for review</Button>
      </form>
      {send.isPending && <Spinner label="Reviewing your documentation…" />}
      <ErrorNote error={send.error ?? reviews.error} />
      <ul className="mt-3 flex flex-col gap-3 text-sm">
        {reviews.data?.map((r) => (
          <li key={r.id} className="rounded border border-slate-300 p-2">
            <p className="font-medium">{r.fileName} — {formatDateTime(r.createdAt)}</p>
            <p>Completeness {r.completenessScore} · Accuracy {r.accuracyScore} · Consistency {r.consistencyScore}</p>
            <ul className="list-disc pl-5">
              {r.gaps.map((g, i) => <li key={i}>{g.description} ({g.severity})</li>)}
            </ul>
          </li>
        ))}
      </ul>
    </Card>
  );
}
