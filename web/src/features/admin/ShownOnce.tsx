import { Modal } from "@/components/Modal";
import { Button, Notice } from "@/components/ui";

/** A secret (password, key, signing secret) the server hands out once. */
export function ShownOnce({ title, what, secret, onClose }: { title: string; what: string; secret: string; onClose: () => void }) {
  return (
    <Modal title={title} onClose={onClose}>
      <Notice tone="warning">This {what} is shown only now. Copy it and hand it over safely; it cannot be shown again.</Notice>
      <p className="my-3 select-all break-all rounded bg-slate-100 p-3 font-mono text-sm" aria-label={what}>{secret}</p>
      <div className="flex gap-2">
        <Button variant="secondary" onClick={() => void navigator.clipboard?.writeText(secret)}>Copy</Button>
        <Button onClick={onClose}>Done</Button>
      </div>
    </Modal>
  );
}
