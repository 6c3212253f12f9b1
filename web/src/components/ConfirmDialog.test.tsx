// The confirmation asks before acting, names itself by its question, and a cancel (button or
// Escape's `cancel` event) answers no.
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { useState } from "react";
import { useConfirm } from "./ConfirmDialog";
import { NoticeProvider, useNotify } from "./Notices";

function Revoker() {
  const [confirm, dialog] = useConfirm();
  const notify = useNotify();
  const [answer, setAnswer] = useState("none");
  const ask = async () => {
    const yes = await confirm({ title: "Revoke the key “CRM”?", body: "It stops working at once.", confirmLabel: "Revoke key" });
    setAnswer(yes ? "yes" : "no");
    if (yes) notify("Key “CRM” revoked.");
  };
  return (
    <>
      <button type="button" onClick={ask}>Revoke</button>
      <p>answer: {answer}</p>
      {dialog}
    </>
  );
}

describe("confirm and acknowledge", () => {
  afterEach(cleanup);

  it("acts only after the confirm button, then announces it", async () => {
    render(<NoticeProvider><Revoker /></NoticeProvider>);
    fireEvent.click(screen.getByRole("button", { name: "Revoke" }));
    const dialog = await screen.findByRole("dialog", { name: "Revoke the key “CRM”?" });
    expect(dialog.textContent).toContain("It stops working at once.");
    expect(screen.getByText("answer: none")).toBeTruthy();
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Revoke key" })));
    expect(screen.getByText("answer: yes")).toBeTruthy();
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(screen.getByRole("status").textContent).toBe("Key “CRM” revoked.");
  });

  it("Escape and Cancel answer no", async () => {
    render(<NoticeProvider><Revoker /></NoticeProvider>);
    fireEvent.click(screen.getByRole("button", { name: "Revoke" }));
    const dialog = await screen.findByRole("dialog");
    await act(async () => fireEvent(dialog, new Event("cancel", { cancelable: true })));
    expect(screen.getByText("answer: no")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Revoke" }));
    await screen.findByRole("dialog");
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Cancel" })));
    expect(screen.getByText("answer: no")).toBeTruthy();
    expect(screen.getByRole("status").textContent).toBe("");
  });
});
