// The account's audit trail for its admins: who did what and when, who read which transcript or
// recording; filtered by person, kind of action and dates, newest first, older pages on demand.
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, call } from "@/api/client";
import { Button, Card, ErrorNote, Select, Spinner, TextInput } from "@/components/ui";
import { formatDateTime, label } from "@/lib/format";
import { keys } from "@/api/keys";

/** What each recorded action means, in words; an unknown one is shown as its words. */
const ACTIONS: Record<string, string> = {
  "session.transcript_read": "Read a session's transcript",
  "recording.read": "Played a call recording",
  "login.succeeded": "Signed in",
  "login.failed": "Failed sign-in",
  "login.demo": "Signed in as a demo user",
  "password.changed": "Changed their password",
  "password.reset": "Reset a password",
  "user.created": "Added a user",
  "user.role_changed": "Changed a user's role",
  "user.deactivated": "Deactivated a user",
  "user.reactivated": "Reactivated a user",
  "api_key.created": "Created a partner API key",
  "api_key.revoked": "Revoked a partner API key",
  "webhook.created": "Added a webhook",
  "webhook.deleted": "Removed a webhook",
  "webhook.test_sent": "Sent a webhook test event",
  "category.renamed": "Renamed a scenario category",
  "category.deleted": "Deleted a scenario category",
  "policy.uploaded": "Uploaded a policy document",
  "policy.deleted": "Deleted a policy document",
  "scenario.promoted": "Promoted a scenario to the library",
  "scenario.evaluator_context_uploaded": "Uploaded grading guidance",
  "assignment.completed": "An assignment was completed",
  "assignment.reset": "Reset an assignment",
  "flag.raised": "A flag was raised",
  "flag.reviewed": "Reviewed a flag",
  "flag.reopened": "Reopened a flag",
  "evaluation.completed": "A session was graded",
  "evaluation.golden_exported": "Exported a golden case",
  "analysis.clean": "The safety analysis found nothing",
  "account.created": "The account was created",
};

/** The filter choices: groups (a prefix) and the commonest single actions. */
const FILTERS: { value: string; label: string }[] = [
  { value: "", label: "Everything" },
  { value: "session.transcript_read", label: "Transcript reads" },
  { value: "recording.read", label: "Recording plays" },
  { value: "login.", label: "Sign-ins" },
  { value: "user.", label: "User changes" },
  { value: "password.", label: "Passwords" },
  { value: "api_key.", label: "API keys" },
  { value: "webhook.", label: "Webhooks" },
  { value: "policy.", label: "Policy documents" },
  { value: "flag.", label: "Flags" },
];

export function actionLabel(action: string): string {
  return ACTIONS[action] ?? label(action.replace(/\./g, " "));
}

type Filter = { userId: string; action: string; from: string; to: string };

/** A date input's day as the start of that day (from) or of the next (to), in local time. */
function dayBound(day: string, next: boolean): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (next) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

export function AuditPanel() {
  const users = useQuery({ queryKey: keys.users.list(), queryFn: () => call(api.GET("/api/users")) });
  const [draft, setDraft] = useState<Filter>({ userId: "", action: "", from: "", to: "" });
  const [filter, setFilter] = useState<Filter>(draft);
  const log = useInfiniteQuery({
    queryKey: keys.auditEvents(filter),
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      call(
        api.GET("/api/audit-events", {
          params: {
            query: {
              userId: filter.userId || undefined,
              action: filter.action || undefined,
              from: dayBound(filter.from, false),
              to: dayBound(filter.to, true),
              before: pageParam,
              limit: 50,
            },
          },
        }),
      ),
    getNextPageParam: (last) => last.nextBefore ?? undefined,
  });
  const names = new Map((users.data ?? []).map((u) => [u.id, u.displayName]));
  const entries = log.data?.pages.flatMap((p) => p.entries) ?? [];
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilter(draft);
  };
  return (
    <div className="flex flex-col gap-4">
      <Card title="Filter the audit log">
        <form onSubmit={apply} className="flex flex-wrap items-end gap-3">
          <Select label="Person" value={draft.userId} onChange={(e) => setDraft({ ...draft, userId: e.target.value })}>
            <option value="">Anyone</option>
            {(users.data ?? []).map((u) => (
              <option key={u.id} value={u.id}>{u.displayName}</option>
            ))}
          </Select>
          <Select label="What" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })}>
            {FILTERS.map((f) => (
              <option key={f.value} value={f.value}>{f.label}</option>
            ))}
          </Select>
          <TextInput label="From" type="date" value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.target.value })} />
          <TextInput label="To" type="date" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.target.value })} />
          <Button type="submit">Show</Button>
        </form>
      </Card>
      <Card title="Audit log">
        <ErrorNote error={log.error} />
        {log.isPending ? (
          <Spinner label="Loading the audit log…" />
        ) : entries.length === 0 ? (
          <p className="text-sm text-slate-700">Nothing recorded matches these filters.</p>
        ) : (
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Audit log entries, newest first</caption>
            <thead>
              <tr className="border-b border-slate-200">
                <th scope="col" className="py-2 pr-3">When</th>
                <th scope="col" className="py-2 pr-3">Who</th>
                <th scope="col" className="py-2 pr-3">What</th>
                <th scope="col" className="py-2">On</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {entries.map((e) => (
                <tr key={e.id}>
                  <td className="py-2 pr-3 whitespace-nowrap">{formatDateTime(e.createdAt)}</td>
                  <td className="py-2 pr-3">
                    {e.actorName ?? (e.actorUserId ? names.get(e.actorUserId) ?? "A former user" : "The system or a partner")}
                  </td>
                  <td className="py-2 pr-3">{actionLabel(e.action)}</td>
                  <td className="py-2">
                    {e.targetType ? `${label(e.targetType)} ${e.targetId?.slice(0, 8) ?? ""}` : "—"}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {log.hasNextPage && (
          <div className="mt-3">
            <Button variant="secondary" disabled={log.isFetchingNextPage} onClick={() => log.fetchNextPage()}>
              {log.isFetchingNextPage ? "Loading…" : "Older entries"}
            </Button>
          </div>
        )}
      </Card>
    </div>
  );
}
