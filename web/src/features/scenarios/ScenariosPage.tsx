// The scenario library: global (reusable) and one-time tabs, a category filter, and from here
// create, edit, CSV import, generation from a complaint, promotion and deletion.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api, ApiError, call, type Schemas } from "@/api/client";
import { Modal } from "@/components/Modal";
import { useNotify } from "@/components/Notices";
import { Badge, Button, Card, ErrorNote, Notice, PageTitle, Select, Spinner, Tabs } from "@/components/ui";
import { label } from "@/lib/format";
import { useCategories } from "./api";
import { ImportDialog } from "./ImportDialog";
import { GenerateDialog } from "./GenerateDialog";
import { keys } from "@/api/keys";

type Scenario = Schemas["Scenario"];
type Kind = "reusable" | "one_time";

export default function ScenariosPage() {
  const [kind, setKind] = useState<Kind>("reusable");
  const [category, setCategory] = useState("");
  const [dialog, setDialog] = useState<"import" | "generate" | null>(null);
  const [promoting, setPromoting] = useState<Scenario | null>(null);
  const [deleting, setDeleting] = useState<Scenario | null>(null);
  const navigate = useNavigate();
  const categories = useCategories();
  const query = { kind, category: category || undefined, limit: 500 };
  const list = useQuery({
    queryKey: keys.scenarios.list(query),
    queryFn: () => call(api.GET("/api/scenarios", { params: { query } })),
  });
  return (
    <div>
      <PageTitle
        actions={
          <>
            <Button onClick={() => navigate("/scenarios/new")}>New scenario</Button>
            <Button variant="secondary" onClick={() => setDialog("import")}>Import CSV</Button>
            <Button variant="secondary" onClick={() => setDialog("generate")}>Generate from complaint</Button>
          </>
        }
      >
        Scenarios
      </PageTitle>
      <Tabs label="Scenario kind" value={kind} onChange={setKind} options={[{ value: "reusable", label: "Global" }, { value: "one_time", label: "One-time" }]} />
      <div className="mb-3 max-w-xs">
        <Select label="Category" value={category} onChange={(e) => setCategory(e.target.value)}>
          <option value="">All categories</option>
          {categories.data?.categories.map((c) => <option key={c} value={c}>{label(c)}</option>)}
        </Select>
      </div>
      <ErrorNote error={list.error ?? categories.error} />
      <Card>
        {list.isPending ? (
          <Spinner label="Loading scenarios…" />
        ) : list.data?.length === 0 ? (
          <p className="text-sm text-slate-700">No scenarios here yet.</p>
        ) : (
          <table className="w-full text-left text-sm">
            <thead>
              <tr className="border-b border-slate-300">
                <th className="py-2">Title</th>
                <th>Mode</th>
                <th>Category</th>
                <th>Skills</th>
                <th>Assigned</th>
                <th><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {list.data?.map((s) => (
                <tr key={s.id} className="border-b border-slate-200 align-top">
                  <td className="py-2 font-medium">{s.title}</td>
                  <td>{label(s.mode)}</td>
                  <td>{label(s.category)}</td>
                  <td className="flex flex-wrap gap-1 py-2">{s.skills.map((k) => <Badge key={k}>{k}</Badge>)}</td>
                  <td>{s.assignmentCount}</td>
                  <td className="whitespace-nowrap py-1 text-right">
                    <Link className="px-2 text-blue-800 underline" to={`/scenarios/${s.id}/edit`} aria-label={`Edit ${s.title}`}>Edit</Link>
                    <Link className="px-2 text-blue-800 underline" to={`/assignments?scenarioId=${s.id}`} aria-label={`Assign ${s.title}`}>Assign</Link>
                    {s.isOneTime && <button type="button" className="px-2 text-blue-800 underline" onClick={() => setPromoting(s)} aria-label={`Promote ${s.title}`}>Promote</button>}
                    <button type="button" className="px-2 text-red-800 underline" onClick={() => setDeleting(s)} aria-label={`Delete ${s.title}`}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      {dialog === "import" && <ImportDialog onClose={() => setDialog(null)} />}
      {dialog === "generate" && <GenerateDialog onClose={() => setDialog(null)} />}
      {promoting && <PromoteDialog scenario={promoting} onClose={() => setPromoting(null)} />}
      {deleting && <DeleteDialog scenario={deleting} onClose={() => setDeleting(null)} />}
    </div>
  );
}

function PromoteDialog({ scenario, onClose }: { scenario: Scenario; onClose: () => void }) {
  const client = useQueryClient();
  const [confirmed, setConfirmed] = useState(false);
  const promote = useMutation({
    mutationFn: () => call(api.POST("/api/scenarios/{id}/promote", { params: { path: { id: scenario.id } }, body: { confirmPersonalDetailsReviewed: confirmed } })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: keys.scenarios.all() });
      onClose();
    },
  });
  return (
    <Modal title={`Promote “${scenario.title}” to the global library`} onClose={onClose}>
      <Notice tone="warning">
        One-time scenarios are often written for one person and may hold their personal details (names, places, history). Once global, every supervisor can assign it to anyone.
      </Notice>
      <label className="my-3 flex items-center gap-2 text-sm">
        <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.target.checked)} />
        I checked this scenario and removed any personal details.
      </label>
      <ErrorNote error={promote.error} />
      <div className="flex gap-2">
        <Button disabled={!confirmed || promote.isPending} onClick={() => promote.mutate()}>Promote</Button>
        <Button variant="secondary" onClick={onClose}>Cancel</Button>
      </div>
    </Modal>
  );
}

function DeleteDialog({ scenario, onClose }: { scenario: Scenario; onClose: () => void }) {
  const client = useQueryClient();
  const notify = useNotify();
  const remove = useMutation({
    mutationFn: () => call(api.DELETE("/api/scenarios/{id}", { params: { path: { id: scenario.id } } })),
    onSuccess: async () => {
      notify(`“${scenario.title}” deleted.`);
      await client.invalidateQueries({ queryKey: keys.scenarios.all() });
      onClose();
    },
  });
  const conflict = remove.error instanceof ApiError && remove.error.status === 409;
  return (
    <Modal title={`Delete “${scenario.title}”?`} onClose={onClose}>
      {conflict ? (
        <Notice tone="warning">
          This scenario cannot be deleted because counselors have been assigned it ({remove.error?.message}). Their assignments and sessions keep their history; delete those assignments first, or leave the scenario in place.{" "}
          <Link className="text-blue-800 underline" to={`/assignments?scenario=${scenario.id}`}>See the assignments of “{scenario.title}”</Link>
        </Notice>
      ) : (
        <>
          <p className="mb-3 text-sm">This removes the scenario for good.</p>
          <ErrorNote error={remove.error} />
        </>
      )}
      <div className="mt-3 flex gap-2">
        {!conflict && <Button variant="danger" disabled={remove.isPending} onClick={() => remove.mutate()}>Delete</Button>}
        <Button variant="secondary" onClick={onClose}>{conflict ? "Close" : "Cancel"}</Button>
      </div>
    </Modal>
  );
}
