// Forced (after a one-time password) or voluntary password change.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { api, call } from "@/api/client";
import { Button, Card, ErrorNote, Notice, TextInput, useDocumentTitle } from "@/components/ui";
import { useMe } from "@/lib/session";
import { keys } from "@/api/keys";

export function ChangePasswordPage() {
  useDocumentTitle("Choose your password");
  const me = useMe();
  const client = useQueryClient();
  const navigate = useNavigate();
  const [currentPassword, setCurrent] = useState("");
  const [newPassword, setNew] = useState("");
  const [repeat, setRepeat] = useState("");
  const [mismatch, setMismatch] = useState(false);
  const change = useMutation({
    mutationFn: () => call(api.POST("/api/auth/password", { body: { currentPassword, newPassword } })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: keys.me() });
      navigate("/", { replace: true });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setMismatch(newPassword !== repeat);
    if (newPassword === repeat) change.mutate();
  };
  return (
    <main className="mx-auto flex max-w-md flex-col gap-4 px-4 py-12">
      <h1 className="text-center text-3xl font-bold">Proto Trainer</h1>
      <Card title="Choose your password">
        {me.data?.mustChangePassword && <Notice tone="warning">You signed in with a one-time password. Choose your own before you continue.</Notice>}
        <form onSubmit={submit} className="mt-3 flex flex-col gap-3">
          <TextInput label="Current password" type="password" autoComplete="current-password" required value={currentPassword} onChange={(e) => setCurrent(e.target.value)} />
          <TextInput label="New password" hint="At least 12 characters." type="password" autoComplete="new-password" required value={newPassword} onChange={(e) => setNew(e.target.value)} />
          <TextInput label="Repeat the new password" type="password" autoComplete="new-password" required value={repeat} onChange={(e) => setRepeat(e.target.value)} />
          {mismatch && <ErrorNote error="The two new passwords differ." />}
          <ErrorNote error={change.error} />
          <Button type="submit" disabled={change.isPending}>{change.isPending ? "Saving…" : "Save password"}</Button>
        </form>
      </Card>
    </main>
  );
}
