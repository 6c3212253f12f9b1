import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, call, type Schemas } from "@/api/client";
import { webhookEventValues } from "@/api/schema";
import { Badge, Button, Card, ErrorNote, Spinner, TextInput } from "@/components/ui";
import { formatDateTime, label } from "@/lib/format";
import { ShownOnce } from "./ShownOnce";
import { useConfirm } from "@/components/ConfirmDialog";
import { useNotify } from "@/components/Notices";
import { keys } from "@/api/keys";

export function ApiKeysPanel() {
  const client = useQueryClient();
  const apiKeys = useQuery({ queryKey: keys.apiKeys(), queryFn: () => call(api.GET("/api/api-keys")) });
  const [name, setName] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => call(api.POST("/api/api-keys", { body: { name } })),
    onSuccess: (k) => {
      setSecret(k.key);
      setName("");
      client.invalidateQueries({ queryKey: keys.apiKeys() });
    },
  });
  const [confirm, confirmDialog] = useConfirm();
  const notify = useNotify();
  const revoke = useMutation({
    mutationFn: (k: Schemas["ApiKey"]) => call(api.DELETE("/api/api-keys/{id}", { params: { path: { id: k.id } } })).then(() => k),
    onSuccess: (k) => notify(`Key “${k.name}” revoked. Partners using it can no longer connect.`),
    onSettled: () => client.invalidateQueries({ queryKey: keys.apiKeys() }),
  });
  const askRevoke = async (k: Schemas["ApiKey"]) => {
    const yes = await confirm({
      title: `Revoke the key “${k.name}”?`,
      body: "Anything using this key stops working at once. This cannot be undone; you can create a new key.",
      confirmLabel: "Revoke key",
    });
    if (yes) revoke.mutate(k);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <div className="flex flex-col gap-4">
      <Card title="New partner API key">
        <form onSubmit={submit} className="flex items-end gap-3">
          <TextInput label="What it is for" required value={name} onChange={(e) => setName(e.target.value)} />
          <Button type="submit" disabled={create.isPending}>Create key</Button>
        </form>
        <ErrorNote error={create.error} />
      </Card>
      <Card title="API keys">
        <ErrorNote error={apiKeys.error ?? revoke.error} />
        {apiKeys.isPending ? <Spinner label="Loading keys…" /> : (
          <ul className="divide-y divide-slate-200 text-sm">
            {apiKeys.data?.map((k) => (
              <li key={k.id} className="flex items-center gap-3 py-2">
                <span className="font-medium">{k.name}</span>
                <code>{k.prefix}…</code>
                <span className="text-slate-700">created {formatDateTime(k.createdAt)}, last used {formatDateTime(k.lastUsedAt)}</span>
                {k.revokedAt ? <Badge>Revoked</Badge> : <Button variant="danger" className="ml-auto" onClick={() => askRevoke(k)}>Revoke<span className="sr-only"> {k.name}</span></Button>}
              </li>
            ))}
          </ul>
        )}
      </Card>
      {confirmDialog}
      {secret && <ShownOnce title="Your new API key" what="API key" secret={secret} onClose={() => setSecret(null)} />}
    </div>
  );
}

type Event = Schemas["WebhookEvent"];
/** What a webhook can subscribe to: `ping` is the test event, sent on request only. */
const SUBSCRIBABLE: Event[] = webhookEventValues.filter((ev) => ev !== "ping");

export function WebhooksPanel() {
  const client = useQueryClient();
  const hooks = useQuery({ queryKey: keys.webhooks.all(), queryFn: () => call(api.GET("/api/webhooks")) });
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<Event[]>([...SUBSCRIBABLE]);
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => call(api.POST("/api/webhooks", { body: { url, events } })),
    onSuccess: (w) => {
      setSecret(w.secret);
      setUrl("");
      client.invalidateQueries({ queryKey: keys.webhooks.all() });
    },
  });
  const [confirm, confirmDialog] = useConfirm();
  const notify = useNotify();
  const remove = useMutation({
    mutationFn: (id: string) => call(api.DELETE("/api/webhooks/{id}", { params: { path: { id } } })),
    onSuccess: () => notify("Webhook deleted. It receives no more events."),
    onSettled: () => client.invalidateQueries({ queryKey: keys.webhooks.all() }),
  });
  // "Send test event": a ping through the ordinary outbox; the delivery log opens and follows it.
  const [testing, setTesting] = useState<{ hook: string; delivery: string } | null>(null);
  const test = useMutation({
    mutationFn: (id: string) => call(api.POST("/api/webhooks/{id}/test", { params: { path: { id } } })),
    onSuccess: (sent, id) => {
      setTesting({ hook: id, delivery: sent.deliveryId });
      setOpen(id);
      client.invalidateQueries({ queryKey: keys.webhooks.deliveries(id) });
    },
  });
  const askRemove = async (id: string, url: string) => {
    if (await confirm({ title: "Delete this webhook?", body: `${url} will receive no more events, and its delivery log is deleted with it.`, confirmLabel: "Delete webhook" })) remove.mutate(id);
  };
  return (
    <div className="flex flex-col gap-4">
      <Card title="New webhook">
        <form onSubmit={(e) => { e.preventDefault(); create.mutate(); }} className="flex flex-col gap-3">
          <TextInput label="URL (https)" type="url" required value={url} onChange={(e) => setUrl(e.target.value)} />
          <fieldset className="flex flex-wrap gap-3 text-sm">
            <legend className="font-medium">Events</legend>
            {SUBSCRIBABLE.map((ev) => (
              <label key={ev} className="flex items-center gap-1">
                <input type="checkbox" checked={events.includes(ev)} onChange={(e) => setEvents((xs) => (e.target.checked ? [...xs, ev] : xs.filter((x) => x !== ev)))} />
                {ev}
              </label>
            ))}
          </fieldset>
          <div><Button type="submit" disabled={create.isPending || events.length === 0}>Create webhook</Button></div>
        </form>
        <ErrorNote error={create.error} />
      </Card>
      <Card title="Webhooks">
        <ErrorNote error={hooks.error ?? remove.error ?? test.error} />
        <ul className="divide-y divide-slate-200 text-sm">
          {hooks.data?.map((w) => (
            <li key={w.id} className="py-2">
              <div className="flex flex-wrap items-center gap-2">
                <code className="break-all">{w.url}</code>
                {w.events.map((e) => <Badge key={e}>{e}</Badge>)}
                <Button variant="secondary" className="ml-auto" disabled={test.isPending} onClick={() => test.mutate(w.id)}>Send test event<span className="sr-only"> to {w.url}</span></Button>
                <Button variant="ghost" aria-expanded={open === w.id} onClick={() => setOpen(open === w.id ? null : w.id)}>Delivery log</Button>
                <Button variant="danger" onClick={() => askRemove(w.id, w.url)}>Delete<span className="sr-only"> webhook {w.url}</span></Button>
              </div>
              {open === w.id && <Deliveries id={w.id} following={testing?.hook === w.id ? testing.delivery : undefined} />}
            </li>
          ))}
        </ul>
      </Card>
      {confirmDialog}
      {secret && <ShownOnce title="Webhook signing secret" what="signing secret" secret={secret} onClose={() => setSecret(null)} />}
    </div>
  );
}

/** What became of a test event, in words. */
function testOutcome(d: Schemas["WebhookDelivery"]): string {
  if (d.status === "delivered") return `Test event delivered: the endpoint answered ${d.lastStatusCode ?? "OK"}.`;
  if (d.status === "failed") return `Test event not delivered: ${d.lastError ?? "the endpoint refused it"}.`;
  if (d.attempts > 0) return `Test event not delivered yet (${d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : d.lastError ?? "no answer"}); it is retried with the usual backoff.`;
  return "Test event queued; sending…";
}

function Deliveries({ id, following }: { id: string; following?: string }) {
  const log = useQuery({
    queryKey: keys.webhooks.deliveries(id),
    queryFn: () => call(api.GET("/api/webhooks/{id}/deliveries", { params: { path: { id } } })),
    // While a test event is on its way, poll until its first attempt is recorded.
    refetchInterval: (q) => {
      const d = following ? q.state.data?.find((x) => x.id === following) : undefined;
      return following && (!d || (d.status === "pending" && d.attempts === 0)) ? 1000 : false;
    },
  });
  if (log.isPending) return <Spinner label="Loading deliveries…" />;
  if (log.error) return <ErrorNote error={log.error} />;
  const test = following ? log.data?.find((d) => d.id === following) : undefined;
  return (
    <>
      {following && (
        <p role="status" className="mt-2 text-slate-800">
          {test ? testOutcome(test) : "Test event queued; sending…"}
        </p>
      )}
      {!log.data?.length ? (
        <p className="mt-2 text-slate-700">No deliveries yet.</p>
      ) : (
        <table className="mt-2 w-full text-left text-xs">
          <thead><tr><th>Event</th><th>Status</th><th>Attempts</th><th>Last answer</th><th>Created</th></tr></thead>
          <tbody>
            {log.data.map((d) => (
              <tr key={d.id}>
                <td>{d.event === "ping" ? "ping (test event)" : d.event}</td>
                <td>{label(d.status)}</td>
                <td>{d.attempts}</td>
                <td>{d.lastStatusCode ?? d.lastError ?? "—"}</td>
                <td>{formatDateTime(d.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
