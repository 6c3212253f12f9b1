import { describe, expect, it } from "vitest";
import { disclosureRuleValues, requiredActionValues, riskFactKindValues } from "@/api/schema";
import { ACTION_LABELS, GROUPS, RULE_LABELS, newKey } from "./RiskProfileForm";

describe("risk profile form", () => {
  it("groups every fact kind exactly once and labels every rule and action", () => {
    const grouped = GROUPS.flatMap((g) => g.kinds.map((k) => k.kind));
    expect([...grouped].sort()).toEqual([...riskFactKindValues].sort());
    for (const r of disclosureRuleValues) expect(RULE_LABELS[r]).toBeTruthy();
    for (const a of requiredActionValues) expect(ACTION_LABELS[a]).toBeTruthy();
  });

  it("makes unique keys for new facts", () => {
    const facts = [
      { key: "firearms", kind: "firearms" as const, text: "", disclosure: "when_asked" as const },
      { key: "firearms_2", kind: "firearms" as const, text: "", disclosure: "when_asked" as const },
    ];
    expect(newKey(facts, "firearms")).toBe("firearms_3");
    expect(newKey(facts, "plan")).toBe("plan");
  });
});
