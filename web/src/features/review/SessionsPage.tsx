// Supervisors' list of practice sessions, newest first, filterable by counselor.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { api, call } from "@/api/client";
import { Badge, Card, ErrorNote, PageTitle, Select, Spinner } from "@/components/ui";
import { formatDateTime, label } from "@/lib/format";

export default function SessionsPage() {
  const [userId, setUserId] = useState("");
  // Deactivated and erased counselors too: their sessions stay, under their (pseudonymised) name.
  const users = useQuery({ queryKey: ["users", "counselor", "all"], queryFn: () => call(api.GET("/api/users", { params: { query: { role: "counselor", limit: 500, includeInactive: true } } })) });
  const sessions = useQuery({
    queryKey: ["sessions", "all", userId],
    queryFn: () => call(api.GET("/api/sessions", { params: { query: { type: "all", userId: userId || undefined, limit: 200 } } })),
  });
  const name = (id: string) => users.data?.find((u) => u.id === id)?.displayName ?? "—";
  return (
    <div>
      <PageTitle>Sessions</PageTitle>
      <div className="mb-3 max-w-xs">
        <Select label="Counselor" value={userId} onChange={(e) => setUserId(e.target.value)}>
          <option value="">All counselors</option>
          {users.data?.map((u) => <option key={u.id} value={u.id}>{u.displayName}</option>)}
        </Select>
      </div>
      <ErrorNote error={sessions.error ?? users.error} />
      <Card>
        {sessions.isPending ? <Spinner label="Loading sessions…" /> : (
          <table className="w-full text-left text-sm">
            <thead><tr className="border-b border-slate-300"><th className="py-2">Started</th><th>Counselor</th><th>Kind</th><th>Status</th><th>Attempt</th><th><span className="sr-only">Open</span></th></tr></thead>
            <tbody>
              {sessions.data?.map((s) => (
                <tr key={s.id} className="border-b border-slate-200">
                  <td className="py-2">{formatDateTime(s.startedAt)}</td>
                  <td>{name(s.userId)}</td>
                  <td>{label(s.kind)}</td>
                  <td><Badge tone={s.status === "completed" ? "green" : "slate"}>{label(s.status)}</Badge></td>
                  <td>{s.attemptNumber ?? "Free practice"}</td>
                  <td className="text-right"><Link className="text-blue-800 underline" to={`/sessions/${s.id}`}>Review<span className="sr-only"> session of {name(s.userId)} at {formatDateTime(s.startedAt)}</span></Link></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </div>
  );
}
