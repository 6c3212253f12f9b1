// A scenario drafted from a complaint: paste it or upload a PDF/TXT (its text is extracted
// first), the AI drafts a scenario, and the edit form opens with the draft to review and save.
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router-dom";
import { api, call, fileForm } from "@/api/client";
import { Modal } from "@/components/Modal";
import { Button, ErrorNote, Field, Notice, Spinner, TextArea } from "@/components/ui";

export function GenerateDialog({ onClose }: { onClose: () => void }) {
  const navigate = useNavigate();
  const [text, setText] = useState("");
  const extract = useMutation({
    mutationFn: (f: File) => call(api.POST("/api/scenarios/extract-text", { body: fileForm(f) })),
    onSuccess: (r) => setText(r.text),
  });
  const generate = useMutation({
    mutationFn: () => call(api.POST("/api/scenarios/generate", { body: { complaintText: text } })),
    onSuccess: (draft) => navigate("/scenarios/new", { state: { draft } }),
  });
  return (
    <Modal title="Generate a scenario from a complaint" onClose={onClose}>
      <Field label="Upload a complaint (PDF or TXT)">
        {(id) => <input id={id} type="file" accept="application/pdf,text/plain,.txt" className="text-sm" onChange={(e) => e.target.files?.[0] && extract.mutate(e.target.files[0])} />}
      </Field>
      {extract.isPending && <Spinner label="Reading the document…" />}
      {extract.data?.truncated && <Notice tone="warning">The document was long; only its first part was kept.</Notice>}
      <div className="mt-3">
        <TextArea label="Or paste the complaint" rows={8} value={text} onChange={(e) => setText(e.target.value)} />
      </div>
      <ErrorNote error={extract.error ?? generate.error} />
      {generate.isPending && <Spinner label="Drafting the scenario — this can take a minute…" />}
      <div className="mt-3 flex gap-2">
        <Button disabled={!text.trim() || generate.isPending} onClick={() => generate.mutate()}>Draft scenario</Button>
        <Button variant="secondary" onClick={onClose}>Cancel</Button>
      </div>
    </Modal>
  );
}
