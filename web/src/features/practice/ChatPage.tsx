// A chat practice session: the AI caller's messages and the counselor's replies; "end and get
// feedback" asks for the evaluation (which can take a while) and opens the feedback page.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { api, call, type Schemas } from "@/api/client";
import { Transcript } from "@/components/Transcript";
import { Button, Card, ErrorNote, PageTitle, Spinner, TextArea } from "@/components/ui";
import { keys } from "@/api/keys";

type Turn = Schemas["TranscriptTurn"];

export function ChatPage() {
  const { sessionId = "" } = useParams();
  const navigate = useNavigate();
  const client = useQueryClient();
  const session = useQuery({ queryKey: keys.session.detail(sessionId), queryFn: () => call(api.GET("/api/sessions/{id}", { params: { path: { id: sessionId } } })) });
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState("");
  const bottom = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (session.data) setTurns(session.data.transcript);
  }, [session.data]);
  useEffect(() => {
    bottom.current?.scrollIntoView?.({ block: "end" });
  }, [turns.length]);
  const send = useMutation({
    mutationFn: (content: string) => call(api.POST("/api/sessions/{id}/message", { params: { path: { id: sessionId } }, body: { content } })),
    onSuccess: (exchange) => {
      setTurns((t) => [...t, exchange.counselor, exchange.caller]);
      setDraft("");
    },
  });
  const finish = useMutation({
    // A scenario with a risk profile asks for the call record first (on the feedback page);
    // its grading waits for it.
    mutationFn: async () => {
      if (session.data?.callRecordExpected) return null;
      return call(api.POST("/api/sessions/{id}/evaluate", { params: { path: { id: sessionId } } }));
    },
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: keys.session.detail(sessionId) });
      navigate(`/feedback/${sessionId}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (draft.trim()) send.mutate(draft.trim());
  };
  const active = session.data?.status === "active";
  const end = (
    <Button variant="secondary" onClick={() => finish.mutate()} disabled={finish.isPending || turns.length < 2}>
      End and get feedback
    </Button>
  );
  return (
    <div className="flex flex-col gap-4">
      <PageTitle actions={active ? undefined : end}>Chat practice</PageTitle>
      {session.data && <p className="-mt-3 text-sm text-slate-700">{session.data.scenarioTitle ? `Scenario: ${session.data.scenarioTitle}` : "Free practice with an improvised caller"}</p>}
      <ErrorNote error={session.error} />
      <Card>
        <div aria-live="polite">
          {session.isPending ? <Spinner label="Loading the conversation…" /> : <Transcript turns={turns} />}
        </div>
        {send.isPending && <div className="mt-2"><Spinner label="The caller is typing…" /></div>}
      </Card>
      {finish.isPending && <Spinner label="Evaluating your session — this can take up to a minute…" />}
      <ErrorNote error={send.error ?? finish.error} />
      {active ? (
        // The reply box and End stay on screen however long the conversation grows (on a phone
        // they scrolled away after four messages): the bar sticks to the bottom of the window
        // while the conversation scrolls above it.
        <form onSubmit={submit} data-testid="chat-composer" className="sticky bottom-0 z-10 -mx-4 flex flex-col gap-2 border-t border-slate-300 bg-white px-4 pb-3 pt-2 shadow-[0_-2px_6px_rgba(15,23,42,0.08)]">
          <TextArea
            label="Your reply"
            value={draft}
            maxLength={4000}
            rows={2}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) submit(e);
            }}
            hint="Enter sends; Shift+Enter starts a new line."
          />
          <div className="flex flex-wrap items-center justify-between gap-2">
            <Button type="submit" disabled={send.isPending || !draft.trim()}>Send</Button>
            {end}
          </div>
        </form>
      ) : (
        session.data && <p className="text-sm text-slate-700">This session has ended.</p>
      )}
      {/* Scrolling here shows the newest message right above the reply bar. */}
      <div ref={bottom} />
    </div>
  );
}
