// The one confirmation for destructive or account-changing actions. A native `<dialog>` opened
// with `showModal()`: the browser makes the rest of the page inert (focus cannot leave it), Escape
// cancels, and focus returns to the button that asked. `useConfirm` lets a handler ask and await.
import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from "react";
import { Button } from "./ui";

export interface ConfirmOptions {
  /** The question, e.g. "Revoke the key “CRM sync”?" — the dialog's accessible name. */
  title: string;
  /** What happens and whether it can be undone. */
  body?: ReactNode;
  /** The button that does it, named for the action ("Revoke key"), never "OK". */
  confirmLabel: string;
  /** Red for what cannot be undone. */
  danger?: boolean;
}

export function ConfirmDialog({ title, body, confirmLabel, danger = true, onConfirm, onCancel }: ConfirmOptions & { onConfirm: () => void; onCancel: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const bodyId = useId();
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
      aria-describedby={body ? bodyId : undefined}
      // Escape fires `cancel`; the dialog closes itself and we say it was a no.
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
      className="w-full max-w-md rounded-lg bg-white p-5 shadow-xl backdrop:bg-slate-900/50"
    >
      <h2 id={titleId} className="mb-2 text-lg font-semibold">{title}</h2>
      {body && <div id={bodyId} className="mb-4 text-sm text-slate-800">{body}</div>}
      <div className="flex justify-end gap-2">
        {/* The safe choice has the focus first (the ARIA dialog pattern's advice for destructive
            actions; showModal would otherwise focus the first button in order). */}
        {/* eslint-disable-next-line jsx-a11y/no-autofocus */}
        <Button variant="secondary" autoFocus onClick={onCancel}>Cancel</Button>
        <Button variant={danger ? "danger" : "primary"} onClick={onConfirm}>{confirmLabel}</Button>
      </div>
    </dialog>
  );
}

/**
 * `const [confirm, dialog] = useConfirm();` then `if (await confirm({...})) doIt();` and render
 * `{dialog}` once. One question at a time.
 */
export function useConfirm(): [(options: ConfirmOptions) => Promise<boolean>, ReactNode] {
  const [asking, setAsking] = useState<(ConfirmOptions & { resolve: (yes: boolean) => void }) | null>(null);
  const confirm = useCallback((options: ConfirmOptions) => new Promise<boolean>((resolve) => setAsking({ ...options, resolve })), []);
  const answer = (yes: boolean) => {
    asking?.resolve(yes);
    setAsking(null);
  };
  const dialog = asking ? <ConfirmDialog {...asking} onConfirm={() => answer(true)} onCancel={() => answer(false)} /> : null;
  return [confirm, dialog];
}
