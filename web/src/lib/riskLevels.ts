// The center's own risk levels (GET /api/accounts/risk-levels): an ordered list, each with the
// center's label and the standard level it maps to. Grading and the API speak the standard
// levels; people read the center's labels. Until loaded (or for a standard level the center
// maps nothing to) the standard level's own name is shown.
import { useQuery } from "@tanstack/react-query";
import { keys } from "@/api/keys";
import { api, call, type Schemas } from "@/api/client";

export type CenterLevel = Schemas["CenterRiskLevel"];
type Standard = Schemas["RiskLevel"];

const STANDARD_NAMES: Record<Standard, string> = { low: "Low", moderate: "Moderate", high: "High", imminent: "Imminent" };

export const DEFAULT_LEVELS: CenterLevel[] = (Object.keys(STANDARD_NAMES) as Standard[]).map((s) => ({ label: STANDARD_NAMES[s], standard: s }));

/** The label people read for a standard level: the center's level(s) mapped to it, in order. */
export function levelLabel(levels: CenterLevel[] | undefined, standard: Standard): string {
  const mine = (levels ?? []).filter((l) => l.standard === standard).map((l) => l.label);
  return mine.length ? mine.join(" / ") : STANDARD_NAMES[standard];
}

export function useRiskLevels() {
  return useQuery({ queryKey: keys.riskLevels(), queryFn: () => call(api.GET("/api/accounts/risk-levels")), staleTime: 60_000 });
}
