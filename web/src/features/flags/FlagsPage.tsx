// The flag queue: open flags first; reviewed and dismissed ones with who reviewed them and when.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, call, type Schemas } from "@/api/client";
import { flagStatusValues } from "@/api/schema";
import { FlagCard } from "@/components/FlagCard";
import { ErrorNote, PageTitle, Spinner, Tabs } from "@/components/ui";
import { label } from "@/lib/format";
import { keys, lists } from "@/api/keys";

type Status = Schemas["FlagStatus"];

export default function FlagsPage() {
  const [status, setStatus] = useState<Status>("open");
  const flags = useQuery({ queryKey: keys.flags.list({ status, limit: 200 }), queryFn: () => call(api.GET("/api/flags", { params: { query: { status, limit: 200 } } })) });
  const users = useQuery({ queryKey: keys.users.list(lists.everyone), queryFn: () => call(api.GET("/api/users", { params: { query: lists.everyone } })) });
  const name = (id: string) => users.data?.find((u) => u.id === id)?.displayName ?? "a supervisor";
  return (
    <div>
      <PageTitle>Flags</PageTitle>
      <Tabs label="Flag status" value={status} onChange={setStatus} options={flagStatusValues.map((s) => ({ value: s, label: label(s) }))} />
      <ErrorNote error={flags.error} />
      {flags.isPending ? <Spinner label="Loading flags…" /> : flags.data?.length === 0 ? <p className="text-sm text-slate-700">No {label(status).toLowerCase()} flags.</p> : (
        <div className="flex flex-col gap-2">{flags.data?.map((f) => <FlagCard key={f.id} flag={f} reviewerName={name} showSessionLink />)}</div>
      )}
    </div>
  );
}
