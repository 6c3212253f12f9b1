// A counselor's own progress over time.
import { useQuery } from "@tanstack/react-query";
import { api, call } from "@/api/client";
import { ErrorNote, PageTitle, Spinner } from "@/components/ui";
import { ProgressView } from "./ProgressView";
import { keys } from "@/api/keys";

export default function MyProgressPage() {
  const progress = useQuery({ queryKey: keys.progress(), queryFn: () => call(api.GET("/api/progress")) });
  return (
    <div>
      <PageTitle>My progress</PageTitle>
      <ErrorNote error={progress.error} />
      {progress.isPending ? <Spinner label="Loading progress…" /> : progress.data && <ProgressView progress={progress.data} showCounselor={false} />}
    </div>
  );
}
