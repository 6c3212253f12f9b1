// The panel stops adding levels at the server's cap (12) and says why, rather than letting an
// admin fill in a thirteenth only to have the save refused.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RiskLevelsPanel } from "./RiskLevelsPanel";

// One object, as react-query keeps one: the panel copies it into its form when it changes.
const query = vi.hoisted(() => ({
  isPending: false,
  error: null,
  data: { levels: Array.from({ length: 11 }, (_, i) => ({ label: `Level ${i + 1}`, standard: "low" })) },
}));

vi.mock("@/lib/riskLevels", () => ({ useRiskLevels: () => query }));

function renderPanel() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <RiskLevelsPanel />
    </QueryClientProvider>,
  );
}

describe("RiskLevelsPanel", () => {
  afterEach(cleanup);

  it("adds levels up to twelve, then says the limit", () => {
    renderPanel();
    const add = screen.getByRole("button", { name: "Add a level" }) as HTMLButtonElement;
    expect(add.disabled).toBe(false);
    expect(screen.queryByText(/at most 12 levels/)).toBeNull();
    fireEvent.click(add);
    expect(screen.getByLabelText("Level 12 label")).toBeTruthy();
    expect(add.disabled).toBe(true);
    expect(add.getAttribute("aria-describedby")).toBe("risk-levels-max");
    expect(screen.getByText("A center has at most 12 levels.")).toBeTruthy();
  });
});
