// The counselor's home: assignments (status, due date, overdue, attempts) with start by chat or
// voice, free practice, and past sessions (named by scenario) leading to their feedback. Start
// on an assignment in progress resumes its attempt (the server answers the one in progress), and
// every start button waits while a start is pending: one click, one attempt.
import { enumLabel } from "@/api/labels";
import { useMutation, useQuery } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { Badge, Button, Card, ErrorNote, PageTitle, Spinner } from "@/components/ui";
import { formatDate, formatDateTime, label } from "@/lib/format";
import { keys, lists } from "@/api/keys";

type Assignment = Schemas["Assignment"];

function statusTone(s: Assignment["status"]) {
  return s === "completed" ? "green" : s === "in_progress" ? "blue" : "amber";
}

export function CounselorHome() {
  const navigate = useNavigate();
  const assignments = useQuery({ queryKey: keys.assignments.list(lists.myAssignments), queryFn: () => call(api.GET("/api/assignments", { params: { query: lists.myAssignments } })) });
  const sessions = useQuery({ queryKey: keys.sessions.list(lists.mySessions), queryFn: () => call(api.GET("/api/sessions", { params: { query: lists.mySessions } })) });
  const startChat = useMutation({
    mutationFn: (assignmentId: string | null) => call(api.POST("/api/sessions", { body: { assignmentId } })),
    onSuccess: (started) => navigate(`/practice/chat/${started.session.id}`),
  });
  const open = assignments.data?.filter((a) => a.status !== "completed") ?? [];
  const done = assignments.data?.filter((a) => a.status === "completed") ?? [];
  return (
    <div className="flex flex-col gap-6">
      <PageTitle>My assignments</PageTitle>
      <ErrorNote error={assignments.error ?? startChat.error} />
      {startChat.isPending && <Spinner label="The caller is picking up…" />}
      <Card title="To do">
        {assignments.isPending ? (
          <Spinner label="Loading assignments…" />
        ) : open.length === 0 ? (
          <p className="text-sm text-slate-700">Nothing assigned right now. Try free practice below.</p>
        ) : (
          <ul className="flex flex-col divide-y divide-slate-200">
            {open.map((a) => (
              <li key={a.id} className="flex flex-wrap items-center gap-3 py-3">
                <div className="min-w-0 flex-1">
                  <p className="font-medium">{a.scenario.title}</p>
                  <p className="text-sm text-slate-700">{a.scenario.description}</p>
                  <p className="mt-1 flex flex-wrap gap-2 text-xs text-slate-700">
                    <Badge tone={statusTone(a.status)}>{enumLabel("AssignmentStatus", a.status)}</Badge>
                    {a.overdue ? <Badge tone="red">Overdue: was due {formatDate(a.dueAt)}</Badge> : <span>Due {formatDate(a.dueAt)}</span>}
                    <span>{a.attempts} attempt{a.attempts === 1 ? "" : "s"}</span>
                    <span>{label(a.scenario.mode)}</span>
                  </p>
                  {a.notes && <p className="mt-1 text-xs italic text-slate-700">Note: {a.notes}</p>}
                </div>
                <div className="flex gap-2">
                  {a.scenario.mode === "chat" ? (
                    <Button onClick={() => startChat.mutate(a.id)} disabled={startChat.isPending} aria-label={`${a.status === "in_progress" ? "Resume" : "Start"} chat: ${a.scenario.title}`}>
                      {a.status === "in_progress" ? "Resume chat" : "Start chat"}
                    </Button>
                  ) : (
                    <Button onClick={() => navigate(`/practice/voice?assignmentId=${a.id}`)} aria-label={`Start voice call: ${a.scenario.title}`}>
                      Start voice call
                    </Button>
                  )}
                </div>
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title="Free practice">
        <p className="mb-3 text-sm text-slate-700">Practise with an improvised caller; it does not count toward an assignment.</p>
        <div className="flex gap-2">
          <Button onClick={() => startChat.mutate(null)} disabled={startChat.isPending}>Free chat practice</Button>
          <Button variant="secondary" onClick={() => navigate("/practice/voice")}>Free voice practice</Button>
        </div>
      </Card>
      {done.length > 0 && (
        <Card title="Completed assignments">
          <ul className="text-sm">
            {done.map((a) => (
              <li key={a.id} className="py-1">
                {a.scenario.title} — completed {formatDate(a.completedAt)} ({a.attempts} attempt{a.attempts === 1 ? "" : "s"})
              </li>
            ))}
          </ul>
        </Card>
      )}
      <Card title="My sessions">
        <ErrorNote error={sessions.error} />
        {sessions.data && sessions.data.length === 0 && <p className="text-sm text-slate-700">No sessions yet.</p>}
        <ul className="flex flex-col divide-y divide-slate-200 text-sm">
          {sessions.data?.map((s) => (
            <li key={s.id} className="flex items-center gap-3 py-2">
              <span>{formatDateTime(s.startedAt)}</span>
              <span className="font-medium">{s.scenarioTitle ?? "Improvised caller"}</span>
              <Badge>{label(s.kind)}</Badge>
              <Badge tone={s.status === "completed" ? "green" : "slate"}>{label(s.status)}</Badge>
              {s.status === "active" && s.kind === "chat" ? (
                <Link className="ml-auto text-blue-800 underline" to={`/practice/chat/${s.id}`}>Continue<span className="sr-only"> {s.scenarioTitle ?? "free practice"}</span></Link>
              ) : (
                <Link className="ml-auto text-blue-800 underline" to={`/feedback/${s.id}`}>Feedback<span className="sr-only"> for {s.scenarioTitle ?? "free practice"}, {formatDateTime(s.startedAt)}</span></Link>
              )}
            </li>
          ))}
        </ul>
      </Card>
    </div>
  );
}
