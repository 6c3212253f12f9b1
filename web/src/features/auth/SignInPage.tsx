// Sign-in with e-mail and password; in demo mode also the demo user switcher, marked as demo.
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { api, ApiError, call } from "@/api/client";
import { Button, Card, ErrorNote, Notice, TextInput, useDocumentTitle } from "@/components/ui";
import { useSetMe } from "@/lib/session";
import { label } from "@/lib/format";
import { keys } from "@/api/keys";

export function SignInPage() {
  useDocumentTitle("Sign in");
  const setMe = useSetMe();
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const login = useMutation({
    mutationFn: () => call(api.POST("/api/auth/login", { body: { email, password } })),
    onSuccess: (me) => {
      setMe(me);
      navigate(me.mustChangePassword ? "/change-password" : "/", { replace: true });
    },
  });
  const demoUsers = useQuery({
    queryKey: keys.demoUsers(),
    queryFn: async () => {
      try {
        return await call(api.GET("/api/auth/demo-users"));
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return null; // demo mode is off
        throw e;
      }
    },
    retry: false,
  });
  const demoLogin = useMutation({
    mutationFn: (userId: string) => call(api.POST("/api/auth/demo-login", { body: { userId } })),
    onSuccess: (me) => {
      setMe(me);
      navigate("/", { replace: true });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    login.mutate();
  };
  return (
    <main className="mx-auto flex max-w-md flex-col gap-6 px-4 py-12">
      <h1 className="text-center text-3xl font-bold">Proto Trainer</h1>
      <Card title="Sign in">
        <form onSubmit={submit} className="flex flex-col gap-3">
          <TextInput label="E-mail" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
          <TextInput label="Password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <ErrorNote error={signInError(login.error)} />
          <Button type="submit" disabled={login.isPending}>
            {login.isPending ? "Signing in…" : "Sign in"}
          </Button>
        </form>
      </Card>
      {demoUsers.data && demoUsers.data.length > 0 && (
        <section aria-labelledby="demo-title" className="rounded-lg border-2 border-dashed border-amber-500 bg-amber-50 p-4">
          <h2 id="demo-title" className="text-lg font-semibold text-amber-950">
            Demo mode — switch user
          </h2>
          <p className="mb-3 text-sm text-amber-950">These seeded demo users have no password. Demo mode must never hold real data.</p>
          <ErrorNote error={demoLogin.error} />
          <ul className="flex flex-col gap-2">
            {demoUsers.data.map((u) => (
              <li key={u.id}>
                <Button variant="secondary" className="w-full justify-between" onClick={() => demoLogin.mutate(u.id)} disabled={demoLogin.isPending}>
                  <span>{u.displayName}</span>
                  <span className="text-xs text-slate-700">{label(u.role)}</span>
                </Button>
              </li>
            ))}
          </ul>
        </section>
      )}
      {demoUsers.error && <Notice tone="warning">Could not load the demo users: {String(demoUsers.error)}</Notice>}
    </main>
  );
}

// The server answers a wrong e-mail or password with a bare 401 ("authentication required");
// people need to hear which thing to retype.
function signInError(error: Error | null): Error | null {
  if (error instanceof ApiError && error.status === 401) return new Error("Wrong e-mail or password. Check both and try again.");
  return error;
}
