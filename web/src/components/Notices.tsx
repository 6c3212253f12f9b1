// The one acknowledgement pattern: after a change succeeds, a short notice in a polite live
// region that screen readers announce, shown for a few seconds at the bottom of the page. The
// region is always in the page so the announcement is not lost when it appears.
import { createContext, useCallback, useContext, useRef, useState, type ReactNode } from "react";

type Notify = (message: string) => void;

const NoticeContext = createContext<Notify>(() => {});

const SHOW_MS = 6000;

export function NoticeProvider({ children }: { children: ReactNode }) {
  const [notices, setNotices] = useState<{ id: number; message: string }[]>([]);
  const next = useRef(0);
  const notify = useCallback((message: string) => {
    const id = ++next.current;
    setNotices((xs) => [...xs, { id, message }]);
    setTimeout(() => setNotices((xs) => xs.filter((n) => n.id !== id)), SHOW_MS);
  }, []);
  return (
    <NoticeContext.Provider value={notify}>
      {children}
      <div role="status" aria-live="polite" className="pointer-events-none fixed inset-x-0 bottom-4 z-50 flex flex-col items-center gap-2 px-4">
        {notices.map((n) => (
          <p key={n.id} className="pointer-events-auto rounded-md border border-green-400 bg-green-50 px-4 py-2 text-sm text-green-950 shadow">
            {n.message}
          </p>
        ))}
      </div>
    </NoticeContext.Provider>
  );
}

/** `notify("Key revoked.")` after a change succeeds. */
export function useNotify(): Notify {
  return useContext(NoticeContext);
}
