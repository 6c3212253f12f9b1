// The frame of every signed-in page: navigation by role (for supervisors, the open-flag count on
// Flags and a "Needs review" queue), the user, sign-out.
import { useMutation, useQuery } from "@tanstack/react-query";
import clsx from "clsx";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { api, call } from "@/api/client";
import { Badge, useFocusHeadingOnNavigation } from "@/components/ui";
import { label } from "@/lib/format";
import { isSupervisor, useMe, useSetMe } from "@/lib/session";
import { keys } from "@/api/keys";

export function Layout() {
  const me = useMe().data!;
  const setMe = useSetMe();
  const navigate = useNavigate();
  useFocusHeadingOnNavigation(useLocation().key);
  const logout = useMutation({
    mutationFn: () => call(api.POST("/api/auth/logout")),
    onSettled: () => {
      setMe(null);
      navigate("/sign-in", { replace: true });
    },
  });
  const role = me.user.role;
  const links: { to: string; text: string; count?: number }[] = [];
  // Polled gently: a badge a minute old is fine, and it refreshes when a flag is reviewed here.
  const openFlags = useQuery({
    queryKey: keys.flags.count(),
    queryFn: () => call(api.GET("/api/flags/count")),
    enabled: isSupervisor(role),
    refetchInterval: 60_000,
  });
  if (role === "counselor") {
    links.push({ to: "/practice", text: "My assignments" }, { to: "/my-progress", text: "My progress" });
  }
  if (isSupervisor(role)) {
    links.push(
      { to: "/scenarios", text: "Scenarios" },
      { to: "/assignments", text: "Assignments" },
      { to: "/sessions", text: "Sessions" },
      { to: "/flags", text: "Flags", count: openFlags.data?.open },
      { to: "/progress", text: "Progress" },
      { to: "/calibration", text: "Calibration" },
    );
  }
  if (isSupervisor(role)) links.push({ to: "/admin", text: role === "admin" ? "Account" : "Policies" });
  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:p-2">
        Skip to content
      </a>
      <header className="border-b border-slate-300 bg-white">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center gap-4 px-4 py-3">
          <span className="text-lg font-bold text-blue-900">Proto Trainer</span>
          <nav aria-label="Main" className="flex flex-wrap gap-1">
            {links.map((l) => (
              <NavLink
                key={l.to}
                to={l.to}
                aria-describedby={l.count ? "open-flag-count" : undefined}
                className={({ isActive }) =>
                  clsx("rounded px-3 py-1.5 text-sm font-medium focus-visible:ring-2 focus-visible:ring-blue-700", isActive ? "bg-blue-100 text-blue-950" : "text-slate-800 hover:bg-slate-100")
                }
              >
                {l.text}
                {l.count ? (
                  // The link keeps its name ("Flags"); the count is its description.
                  <span className="ml-1 rounded-full bg-red-700 px-1.5 text-xs font-semibold text-white" aria-hidden="true" data-testid="open-flags">
                    {l.count}
                  </span>
                ) : null}
              </NavLink>
            ))}
          </nav>
          {openFlags.data?.open ? <span id="open-flag-count" className="sr-only">{openFlags.data.open} open flags</span> : null}
          <div className="ml-auto flex items-center gap-3 text-sm">
            {me.demoMode && <Badge tone="amber">Demo mode</Badge>}
            <span>
              {me.user.displayName} <span className="text-slate-600">({label(role)})</span>
            </span>
            <NavLink to="/change-password" className="text-blue-800 underline">
              Password
            </NavLink>
            <button type="button" className="rounded px-2 py-1 text-blue-800 underline focus-visible:ring-2 focus-visible:ring-blue-700" onClick={() => logout.mutate()}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-6xl px-4 py-6">
        <Outlet />
      </main>
    </div>
  );
}
