// Routes: thin, composed from features. Heavy pages (voice with LiveKit, charts, admin) load on
// demand so the counselor's first page stays small.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense, type ReactNode } from "react";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router-dom";
import { ErrorNote, Spinner } from "@/components/ui";
import { NoticeProvider } from "@/components/Notices";
import { isSupervisor, useMe } from "@/lib/session";
import { Layout } from "./Layout";
import { SignInPage } from "@/features/auth/SignInPage";
import { ChangePasswordPage } from "@/features/auth/ChangePasswordPage";
import { CounselorHome } from "@/features/practice/CounselorHome";
import { ChatPage } from "@/features/practice/ChatPage";
import { FeedbackPage } from "@/features/feedback/FeedbackPage";

const VoicePage = lazy(() => import("@/features/voice/VoicePage"));
const ScenariosPage = lazy(() => import("@/features/scenarios/ScenariosPage"));
const ScenarioEditPage = lazy(() => import("@/features/scenarios/ScenarioEditPage"));
const AssignmentsPage = lazy(() => import("@/features/assignments/AssignmentsPage"));
const SessionsPage = lazy(() => import("@/features/review/SessionsPage"));
const SessionReviewPage = lazy(() => import("@/features/review/SessionReviewPage"));
const FlagsPage = lazy(() => import("@/features/flags/FlagsPage"));
const ProgressPage = lazy(() => import("@/features/progress/ProgressPage"));
const MyProgressPage = lazy(() => import("@/features/progress/MyProgressPage"));
const AgreementPage = lazy(() => import("@/features/calibration/AgreementPage"));
const AdminPage = lazy(() => import("@/features/admin/AdminPage"));

const queryClient = new QueryClient({
  defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: false } },
});

function Loading() {
  return (
    <div className="p-8">
      <Spinner label="Loading…" />
    </div>
  );
}

/** Pages that need a signed-in user (and a password they chose). */
function Protected({ children, supervisor }: { children: ReactNode; supervisor?: boolean }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <Loading />;
  if (me.error) return <div className="p-8"><ErrorNote error={me.error} /></div>;
  if (!me.data) return <Navigate to="/sign-in" replace state={{ from: location.pathname }} />;
  if (me.data.mustChangePassword && location.pathname !== "/change-password") return <Navigate to="/change-password" replace />;
  if (supervisor && !isSupervisor(me.data.user.role)) return <Navigate to="/" replace />;
  return <>{children}</>;
}

function Home() {
  const me = useMe().data;
  return <Navigate to={me && isSupervisor(me.user.role) ? "/scenarios" : "/practice"} replace />;
}

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <NoticeProvider>
      <BrowserRouter>
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route path="/sign-in" element={<SignInPage />} />
            <Route path="/change-password" element={<Protected><ChangePasswordPage /></Protected>} />
            <Route element={<Protected><Layout /></Protected>}>
              <Route index element={<Home />} />
              <Route path="practice" element={<CounselorHome />} />
              <Route path="practice/chat/:sessionId" element={<ChatPage />} />
              <Route path="practice/voice" element={<VoicePage />} />
              <Route path="feedback/:sessionId" element={<FeedbackPage />} />
              <Route path="my-progress" element={<MyProgressPage />} />
              <Route path="scenarios" element={<Protected supervisor><ScenariosPage /></Protected>} />
              <Route path="scenarios/new" element={<Protected supervisor><ScenarioEditPage /></Protected>} />
              <Route path="scenarios/:id/edit" element={<Protected supervisor><ScenarioEditPage /></Protected>} />
              <Route path="assignments" element={<Protected supervisor><AssignmentsPage /></Protected>} />
              <Route path="sessions" element={<Protected supervisor><SessionsPage /></Protected>} />
              <Route path="sessions/:id" element={<Protected supervisor><SessionReviewPage /></Protected>} />
              <Route path="flags" element={<Protected supervisor><FlagsPage /></Protected>} />
              <Route path="progress" element={<Protected supervisor><ProgressPage /></Protected>} />
              <Route path="calibration" element={<Protected supervisor><AgreementPage /></Protected>} />
              <Route path="admin" element={<Protected supervisor><AdminPage /></Protected>} />
              <Route path="*" element={<p>Page not found.</p>} />
            </Route>
          </Routes>
        </Suspense>
      </BrowserRouter>
      </NoticeProvider>
    </QueryClientProvider>
  );
}
