// The counselor picker on Downshift keeps what the hand-built one did: the search runs as you
// type, the first answer is highlighted and named by `aria-activedescendant`, arrow keys move it,
// Enter picks it (the multiple picker stays open for the next one), leaving the field picks
// nobody, and a search without answers says so. The API is stubbed; the component is real.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Schemas } from "@/api/client";

type User = Schemas["User"];
const people = ["Casey Counselor", "Robin Counselor", "Sam Counselor"].map(
  (name, i) => ({ id: `01a24e30-0000-7000-8000-00000000000${i}`, displayName: name, email: `${name.split(" ")[0]!.toLowerCase()}@e2e.test`, role: "counselor" }) as unknown as User,
);
const get = vi.fn(async (_path: string, init: { params: { query: { q?: string } } }) => {
  const q = init.params.query.q?.toLowerCase() ?? "";
  return { data: people.filter((p) => p.displayName.toLowerCase().includes(q)), error: undefined, response: new Response() };
});
vi.mock("@/api/client", () => ({
  api: { GET: (...args: [string, { params: { query: { q?: string } } }]) => get(...args) },
  call: async (p: Promise<{ data: unknown }>) => (await p).data,
}));

import { CounselorPicker } from "./CounselorPicker";

const picked = vi.fn();
function Harness({ multiple = true }: { multiple?: boolean }) {
  const [value, setValue] = useState<User[]>([]);
  return (
    <>
      <CounselorPicker
        value={value}
        multiple={multiple}
        label={multiple ? "Counselors" : "Learner"}
        onChange={(users) => {
          picked(users.map((u) => u.displayName));
          setValue(users);
        }}
      />
      <button type="button">elsewhere</button>
    </>
  );
}

function view(multiple = true) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <Harness multiple={multiple} />
    </QueryClientProvider>,
  );
  return screen.getByRole("combobox", { name: multiple ? "Counselors" : "Learner" });
}

const highlighted = (box: HTMLElement) => {
  const id = box.getAttribute("aria-activedescendant");
  return id ? document.getElementById(id) : null;
};

describe("CounselorPicker", () => {
  afterEach(() => {
    cleanup();
    picked.mockClear();
    get.mockClear();
  });

  it("highlights the first answer, moves with the arrow keys and picks with Enter", async () => {
    const box = view();
    fireEvent.change(box, { target: { value: "Counselor" } });
    await screen.findByRole("option", { name: /Sam Counselor/ });
    expect(box.getAttribute("aria-expanded")).toBe("true");
    expect(highlighted(box)?.textContent).toMatch(/^Casey Counselor/);
    expect(highlighted(box)?.getAttribute("aria-selected")).toBe("true");
    fireEvent.keyDown(box, { key: "ArrowDown" });
    expect(highlighted(box)?.textContent).toMatch(/^Robin Counselor/);
    expect(screen.getByRole("option", { name: /Casey Counselor/ }).getAttribute("aria-selected")).toBe("false");
    fireEvent.keyDown(box, { key: "End" });
    expect(highlighted(box)?.textContent).toMatch(/^Sam Counselor/);
    fireEvent.keyDown(box, { key: "Home" });
    fireEvent.keyDown(box, { key: "ArrowDown" });
    fireEvent.keyDown(box, { key: "Enter" });
    expect(picked).toHaveBeenLastCalledWith(["Robin Counselor"]);
    expect((box as HTMLInputElement).value).toBe("");
    screen.getByRole("button", { name: "Remove Robin Counselor" });
    // Still open for the next pick, without the one just picked, the first answer highlighted.
    await waitFor(() => expect(screen.getAllByRole("option")).toHaveLength(2));
    expect(screen.queryByRole("option", { name: /Robin/ })).toBeNull();
    expect(highlighted(box)?.textContent).toMatch(/^Casey Counselor/);
    fireEvent.click(screen.getByRole("option", { name: /Sam Counselor/ }));
    expect(picked).toHaveBeenLastCalledWith(["Robin Counselor", "Sam Counselor"]);
    // A chip removes its counselor.
    fireEvent.click(screen.getByRole("button", { name: "Remove Robin Counselor" }));
    expect(picked).toHaveBeenLastCalledWith(["Sam Counselor"]);
  });

  it("opens on focus, names no option while nothing is listed, and closes with Escape", async () => {
    const box = view();
    act(() => box.focus());
    await screen.findByRole("option", { name: /Casey Counselor/ });
    expect(get).toHaveBeenCalled();
    expect(highlighted(box)?.textContent).toMatch(/^Casey/);
    fireEvent.keyDown(box, { key: "Escape" });
    expect(box.getAttribute("aria-expanded")).toBe("false");
    expect(box.getAttribute("aria-activedescendant")).toBeNull();
    expect(screen.queryByRole("option")).toBeNull();
  });

  it("picks nobody when focus leaves the field", async () => {
    const box = view();
    fireEvent.change(box, { target: { value: "Casey" } });
    await screen.findByRole("option", { name: /Casey Counselor/ });
    expect(highlighted(box)).not.toBeNull();
    fireEvent.blur(box, { relatedTarget: screen.getByRole("button", { name: "elsewhere" }) });
    expect(box.getAttribute("aria-expanded")).toBe("false");
    expect(picked).not.toHaveBeenCalled();
    expect((box as HTMLInputElement).value).toBe("Casey");
  });

  it("says when no counselor matches", async () => {
    const box = view();
    fireEvent.change(box, { target: { value: "Nobody" } });
    expect((await screen.findByRole("status")).textContent).toBe("No counselor matches “Nobody”.");
    expect(box.getAttribute("aria-expanded")).toBe("false");
    expect(box.getAttribute("aria-activedescendant")).toBeNull();
  });

  it("the single picker replaces its choice and closes", async () => {
    const box = view(false);
    fireEvent.change(box, { target: { value: "Sam" } });
    await screen.findByRole("option", { name: /Sam Counselor/ });
    fireEvent.keyDown(box, { key: "Enter" });
    expect(picked).toHaveBeenLastCalledWith(["Sam Counselor"]);
    expect(box.getAttribute("aria-expanded")).toBe("false");
    fireEvent.change(box, { target: { value: "Casey" } });
    fireEvent.click(await screen.findByRole("option", { name: /Casey Counselor/ }));
    expect(picked).toHaveBeenLastCalledWith(["Casey Counselor"]);
    expect(screen.queryByRole("button", { name: "Remove Sam Counselor" })).toBeNull();
  });
});
