// Supervisors' progress: one counselor, the cohort assigned a scenario, or every counselor.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, call } from "@/api/client";
import { ErrorNote, PageTitle, Select, Spinner } from "@/components/ui";
import { ProgressView } from "./ProgressView";

export default function ProgressPage() {
  const [counselorId, setCounselor] = useState("");
  const [scenarioId, setScenario] = useState("");
  const users = useQuery({ queryKey: ["users", "counselor", ""], queryFn: () => call(api.GET("/api/users", { params: { query: { role: "counselor", limit: 500 } } })) });
  const scenarios = useQuery({ queryKey: ["scenarios", "all"], queryFn: () => call(api.GET("/api/scenarios", { params: { query: { kind: "all", limit: 500 } } })) });
  const progress = useQuery({
    queryKey: ["progress", counselorId, scenarioId],
    queryFn: () => call(api.GET("/api/progress", { params: { query: { counselorId: counselorId || undefined, scenarioId: scenarioId || undefined } } })),
  });
  return (
    <div>
      <PageTitle>Progress</PageTitle>
      <div className="mb-4 grid max-w-2xl gap-3 md:grid-cols-2">
        <Select label="Counselor" value={counselorId} onChange={(e) => setCounselor(e.target.value)}>
          <option value="">All counselors</option>
          {users.data?.map((u) => <option key={u.id} value={u.id}>{u.displayName}</option>)}
        </Select>
        <Select label="Cohort: counselors assigned" value={scenarioId} onChange={(e) => setScenario(e.target.value)}>
          <option value="">Any scenario</option>
          {scenarios.data?.map((s) => <option key={s.id} value={s.id}>{s.title}</option>)}
        </Select>
      </div>
      <ErrorNote error={progress.error ?? users.error} />
      {progress.isPending ? <Spinner label="Loading progress…" /> : progress.data && <ProgressView progress={progress.data} showCounselor={!counselorId} />}
    </div>
  );
}
