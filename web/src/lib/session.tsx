// Who is signed in: `GET /api/me` through TanStack Query, shared by every page. A 401 means
// "signed out", not an error.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, call, setCsrfToken, type Schemas } from "@/api/client";
import { keys } from "@/api/keys";

export type Me = Schemas["SessionInfo"];
export type Role = Schemas["Role"];

export function useMe() {
  return useQuery({
    queryKey: keys.me(),
    queryFn: async (): Promise<Me | null> => {
      try {
        const me = await call(api.GET("/api/me"));
        setCsrfToken(me.csrfToken);
        return me;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          setCsrfToken(null);
          return null;
        }
        throw e;
      }
    },
    staleTime: 60_000,
  });
}

/** Stores a fresh sign-in answer as the current session. */
export function useSetMe() {
  const client = useQueryClient();
  return (me: Me | null) => {
    setCsrfToken(me?.csrfToken ?? null);
    client.setQueryData(keys.me(), me);
    if (!me) client.removeQueries({ predicate: (q) => q.queryKey[0] !== keys.me()[0] });
  };
}

export function isSupervisor(role: Role | undefined): boolean {
  return role === "supervisor" || role === "admin";
}
