import { useRef, useState } from "react";
import { Modal } from "@/components/Modal";
import { Button, Notice } from "@/components/ui";

/**
 * A secret (password, key, signing secret) the server hands out once. Copy says whether it
 * worked; where the browser refuses the clipboard (permissions, plain http) the secret is
 * selected instead so the keyboard copy works, and the page says so.
 */
export function ShownOnce({ title, what, secret, onClose }: { title: string; what: string; secret: string; onClose: () => void }) {
  const text = useRef<HTMLParagraphElement>(null);
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const selectSecret = () => {
    const node = text.current;
    const selection = window.getSelection();
    if (!node || !selection) return;
    const range = document.createRange();
    range.selectNodeContents(node);
    selection.removeAllRanges();
    selection.addRange(range);
  };
  const copy = async () => {
    try {
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(secret);
      setCopied("yes");
    } catch {
      selectSecret();
      setCopied("no");
    }
  };
  return (
    <Modal title={title} onClose={onClose}>
      <Notice tone="warning">This {what} is shown only now. Copy it and hand it over safely; it cannot be shown again.</Notice>
      <p ref={text} className="my-3 select-all break-all rounded bg-slate-100 p-3 font-mono text-sm" aria-label={what}>{secret}</p>
      <p role="status" className="mb-2 text-sm text-slate-800">
        {copied === "yes" && `Copied. Paste the ${what} where it is needed.`}
        {copied === "no" && `The browser did not allow copying. The ${what} is selected: press Ctrl+C (⌘C on a Mac) to copy it.`}
      </p>
      <div className="flex gap-2">
        <Button variant="secondary" onClick={() => void copy()}>Copy</Button>
        <Button onClick={onClose}>Done</Button>
      </div>
    </Modal>
  );
}
