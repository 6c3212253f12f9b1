// A dialog on the native `<dialog>` element opened with `showModal()`, like ConfirmDialog: the
// browser keeps keyboard focus inside (the rest of the page is inert), Escape closes it, and
// focus goes back to what had it before. (It was a `div role="dialog"` with a hand-written
// focus trap, which jsx-a11y rightly flags: a key handler on a non-interactive element.)
import { useEffect, useId, useRef, type ReactNode } from "react";

export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    const before = document.activeElement as HTMLElement | null;
    // jsdom has no showModal; the open attribute still shows it there.
    if (dialog && !dialog.open) {
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
    }
    return () => before?.focus?.();
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      // Escape fires `cancel`: the parent unmounts the dialog, the browser does not close it.
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      className="max-h-[90vh] w-full max-w-2xl overflow-y-auto rounded-lg bg-white p-5 shadow-xl backdrop:bg-slate-900/50"
    >
      <div className="mb-3 flex items-start justify-between gap-4">
        <h2 id={titleId} className="text-lg font-semibold">
          {title}
        </h2>
        <button type="button" onClick={onClose} className="rounded px-2 text-slate-700 hover:bg-slate-100 focus-visible:ring-2 focus-visible:ring-blue-700" aria-label="Close dialog">
          ×
        </button>
      </div>
      {children}
    </dialog>
  );
}
