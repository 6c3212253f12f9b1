import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, call, type Schemas } from "@/api/client";
import { roleValues } from "@/api/schema";
import { Badge, Button, Card, ErrorNote, Select, Spinner, TextInput } from "@/components/ui";
import { label } from "@/lib/format";
import { ShownOnce } from "./ShownOnce";
import { useConfirm } from "@/components/ConfirmDialog";
import { useNotify } from "@/components/Notices";
import { EraseUserDialog } from "./PrivacyPanels";
import { keys, lists } from "@/api/keys";

type Role = Schemas["Role"];

export function UsersPanel() {
  const client = useQueryClient();
  const users = useQuery({ queryKey: keys.users.list(lists.everyone), queryFn: () => call(api.GET("/api/users", { params: { query: lists.everyone } })) });
  const [email, setEmail] = useState("");
  const [displayName, setName] = useState("");
  const [role, setRole] = useState<Role>("counselor");
  const [secret, setSecret] = useState<{ who: string; password: string } | null>(null);
  const [erasing, setErasing] = useState<Schemas["User"] | null>(null);
  const refresh = () => client.invalidateQueries({ queryKey: keys.users.all() });
  const create = useMutation({
    mutationFn: () => call(api.POST("/api/users", { body: { email, displayName, role } })),
    onSuccess: (u) => {
      // Only an account admin's answer carries it; a supervisor's new counselor gets theirs from an admin's reset.
      if (u.temporaryPassword) setSecret({ who: u.displayName, password: u.temporaryPassword });
      setEmail("");
      setName("");
      refresh();
    },
  });
  const [confirm, confirmDialog] = useConfirm();
  const notify = useNotify();
  const update = useMutation({
    mutationFn: ({ id, patch }: { id: string; patch: Schemas["UserPatch"]; done: string }) => call(api.PATCH("/api/users/{id}", { params: { path: { id } }, body: patch })),
    onSuccess: (_, { done }) => notify(done),
    onSettled: refresh,
  });
  const askRole = async (u: Schemas["User"], next: Role) => {
    if (next === u.role) return;
    const yes = await confirm({
      title: `Make ${u.displayName} ${/^[aeiou]/i.test(label(next)) ? "an" : "a"} ${label(next).toLowerCase()}?`,
      body: `${u.displayName} is now ${/^[aeiou]/i.test(label(u.role)) ? "an" : "a"} ${label(u.role).toLowerCase()}. What they can see and change follows the new role.`,
      confirmLabel: "Change role",
      danger: false,
    });
    if (yes) update.mutate({ id: u.id, patch: { role: next }, done: `${u.displayName} is now ${/^[aeiou]/i.test(label(next)) ? "an" : "a"} ${label(next).toLowerCase()}.` });
  };
  const askActive = async (u: Schemas["User"]) => {
    if (!u.active) return update.mutate({ id: u.id, patch: { active: true }, done: `${u.displayName} can sign in again.` });
    const yes = await confirm({
      title: `Deactivate ${u.displayName}?`,
      body: "They are signed out and cannot sign in until reactivated. Their sessions and feedback are kept.",
      confirmLabel: "Deactivate",
    });
    if (yes) update.mutate({ id: u.id, patch: { active: false }, done: `${u.displayName} is deactivated.` });
  };
  const reset = useMutation({
    mutationFn: (u: Schemas["User"]) => call(api.POST("/api/users/{id}/password-reset", { params: { path: { id: u.id } } })).then((r) => ({ r, u })),
    onSuccess: ({ r, u }) => setSecret({ who: u.displayName, password: r.temporaryPassword }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <div className="flex flex-col gap-4">
      <Card title="Add a user">
        <form onSubmit={submit} className="grid items-end gap-3 md:grid-cols-4">
          <TextInput label="E-mail" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          <TextInput label="Name" required value={displayName} onChange={(e) => setName(e.target.value)} />
          <Select label="Role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {roleValues.map((r) => <option key={r} value={r}>{label(r)}</option>)}
          </Select>
          <Button type="submit" disabled={create.isPending}>Create user</Button>
        </form>
        <div className="mt-2"><ErrorNote error={create.error} /></div>
      </Card>
      <Card title="Users">
        <ErrorNote error={users.error ?? update.error ?? reset.error} />
        {users.isPending ? <Spinner label="Loading users…" /> : (
          <table className="w-full text-left text-sm">
            <thead><tr className="border-b border-slate-300"><th className="py-2">Name</th><th>E-mail</th><th>Role</th><th>Status</th><th><span className="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {users.data?.map((u) => (
                <tr key={u.id} className="border-b border-slate-200">
                  <td className="py-2">{u.displayName} {u.isDemo && <Badge tone="amber">Demo</Badge>}</td>
                  <td>{u.email}</td>
                  <td>
                    <label className="sr-only" htmlFor={`role-${u.id}`}>Role of {u.displayName}</label>
                    <select id={`role-${u.id}`} className="rounded border border-slate-400 px-2 py-1" value={u.role} onChange={(e) => askRole(u, e.target.value as Role)}>
                      {roleValues.map((r) => <option key={r} value={r}>{label(r)}</option>)}
                    </select>
                  </td>
                  <td><Badge tone={u.active ? "green" : "slate"}>{u.active ? "Active" : "Deactivated"}</Badge></td>
                  <td className="whitespace-nowrap text-right">
                    <Button variant="ghost" onClick={() => askActive(u)}>{u.active ? "Deactivate" : "Reactivate"}<span className="sr-only"> {u.displayName}</span></Button>
                    <Button variant="ghost" onClick={() => reset.mutate(u)}>Reset password<span className="sr-only"> of {u.displayName}</span></Button>
                    {!u.displayName.startsWith("Erased user ") && (
                      <Button variant="ghost" onClick={() => setErasing(u)}>Erase<span className="sr-only"> {u.displayName}</span></Button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      {secret && <ShownOnce title={`One-time password for ${secret.who}`} what="one-time password" secret={secret.password} onClose={() => setSecret(null)} />}
      {confirmDialog}
      {erasing && <EraseUserDialog user={erasing} onClose={() => setErasing(null)} />}
    </div>
  );
}
