// Supervisors' progress: one counselor, the cohort assigned a scenario, or every counselor.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, call } from "@/api/client";
import { ErrorNote, PageTitle, Select, Spinner } from "@/components/ui";
import { ProgressView } from "./ProgressView";
import { keys, lists } from "@/api/keys";

export default function ProgressPage() {
  const [counselorId, setCounselor] = useState("");
  const [scenarioId, setScenario] = useState("");
  const users = useQuery({ queryKey: keys.users.list(lists.activeCounselors), queryFn: () => call(api.GET("/api/users", { params: { query: lists.activeCounselors } })) });
  const scenarios = useQuery({ queryKey: keys.scenarios.list(lists.allScenarios), queryFn: () => call(api.GET("/api/scenarios", { params: { query: lists.allScenarios } })) });
  const query = { counselorId: counselorId || undefined, scenarioId: scenarioId || undefined };
  const progress = useQuery({
    queryKey: keys.progress(query),
    queryFn: () => call(api.GET("/api/progress", { params: { query } })),
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
