// Copying a one-time secret says whether it worked; a refused clipboard leaves the text selected.
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ShownOnce } from "./ShownOnce";

describe("ShownOnce copy", () => {
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("confirms a copy", async () => {
    const writeText = vi.fn().mockResolvedValue(undefined);
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText } });
    render(<ShownOnce title="One-time password for Sam" what="one-time password" secret="s3cret-pass" onClose={() => {}} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Copy" })));
    expect(writeText).toHaveBeenCalledWith("s3cret-pass");
    expect(screen.getByText(/^Copied\./).getAttribute("role")).toBe("status");
  });

  it("selects the secret and says how to copy when the clipboard is refused", async () => {
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText: vi.fn().mockRejectedValue(new DOMException("denied", "NotAllowedError")) } });
    render(<ShownOnce title="One-time password for Sam" what="one-time password" secret="s3cret-pass" onClose={() => {}} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Copy" })));
    expect(screen.getByText(/did not allow copying/).getAttribute("role")).toBe("status");
    expect(window.getSelection()?.toString()).toBe("s3cret-pass");
  });
});
