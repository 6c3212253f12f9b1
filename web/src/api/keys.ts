// The one query-key factory: every TanStack Query key the UI uses comes from here, one entry per
// resource, so two pages that read the same thing share its cache and a mutation invalidates by
// a prefix that is written once. A list's key carries the very query object it sends (typed by
// the generated `paths`), so two different requests can never share a key: before this, the
// counselor picker's 20-row search and the progress page's 500-row list both used
// ["users", "counselor", ""] and overwrote each other's cache. ESLint forbids inline
// `queryKey: [...]` arrays (eslint.config.js).
import type { paths } from "./schema";

/** The query parameters of `GET <path>`, as the generated client takes them. */
type GetQuery<P extends keyof paths> = paths[P] extends { get: { parameters: { query?: infer Q } } } ? NonNullable<Q> : never;

export const keys = {
  me: () => ["me"] as const,
  demoUsers: () => ["demo-users"] as const,
  users: {
    all: () => ["users"] as const,
    list: (query: GetQuery<"/api/users"> = {}) => ["users", "list", query] as const,
  },
  sessions: {
    /** Every session list (not the single sessions below). */
    all: () => ["sessions"] as const,
    list: (query: GetQuery<"/api/sessions"> = {}) => ["sessions", "list", query] as const,
  },
  session: {
    detail: (id: string) => ["session", id] as const,
    reviews: (id: string) => ["reviews", id] as const,
    documentReviews: (id: string) => ["document-reviews", id] as const,
    goldenDraft: (id: string) => ["golden-draft", id] as const,
  },
  assignments: {
    all: () => ["assignments"] as const,
    list: (query: GetQuery<"/api/assignments"> = {}) => ["assignments", "list", query] as const,
  },
  scenarios: {
    all: () => ["scenarios"] as const,
    list: (query: GetQuery<"/api/scenarios"> = {}) => ["scenarios", "list", query] as const,
    detail: (id: string) => ["scenario", id] as const,
    testRuns: (id: string) => ["test-runs", id] as const,
    callerPreview: (body: unknown) => ["caller-preview", body] as const,
  },
  categories: () => ["categories"] as const,
  flags: {
    /** The queue's lists and the navigation's count. */
    all: () => ["flags"] as const,
    list: (query: GetQuery<"/api/flags"> = {}) => ["flags", "list", query] as const,
    count: () => ["flags", "count"] as const,
  },
  progress: (query: GetQuery<"/api/progress"> = {}) => ["progress", query] as const,
  agreement: (query: GetQuery<"/api/calibration/agreement"> = {}) => ["agreement", query] as const,
  budget: () => ["budget"] as const,
  spend: {
    all: () => ["spend"] as const,
    report: (query: GetQuery<"/api/accounts/spend"> = {}) => ["spend", query] as const,
  },
  apiKeys: () => ["api-keys"] as const,
  webhooks: {
    all: () => ["webhooks"] as const,
    deliveries: (id: string) => ["webhooks", "deliveries", id] as const,
  },
  policies: () => ["policies"] as const,
  retention: () => ["retention"] as const,
  auditEvents: (filter: unknown) => ["audit-events", filter] as const,
};

/** Lists more than one page asks for, so they share one request and one cache entry. */
export const lists = {
  /** The counselor's own assignments (home, voice page). */
  myAssignments: { limit: 200 },
  mySessions: { type: "all", limit: 50 },
  allScenarios: { kind: "all", limit: 500 },
  /** Everyone in the account, deactivated users too (names on old sessions and flags). */
  everyone: { limit: 500, includeInactive: true },
  counselors: { role: "counselor", limit: 500, includeInactive: true },
  activeCounselors: { role: "counselor", limit: 500 },
} as const satisfies {
  myAssignments: GetQuery<"/api/assignments">;
  mySessions: GetQuery<"/api/sessions">;
  allScenarios: GetQuery<"/api/scenarios">;
  everyone: GetQuery<"/api/users">;
  counselors: GetQuery<"/api/users">;
  activeCounselors: GetQuery<"/api/users">;
};
