/**
 * The one table of words people read for the API's enum values and field names. Each enum's
 * table is typed by the generated schema (`Record<Schemas["X"], string>`), so a value added on
 * the server fails the build here until it has words, and no page invents its own spelling
 * ("Ai caller problem", "cohort_training").
 */
import type { Schemas } from "./client";

type Table<K extends keyof Schemas> = Record<Schemas[K] & string, string>;

const assignmentStatus: Table<"AssignmentStatus"> = { pending: "Not started", in_progress: "In progress", completed: "Completed" };
const checkAnswer: Table<"CheckAnswer"> = { yes: "Yes", no: "No", not_applicable: "Not applicable", not_assessed: "Not assessed" };
const deliveryStatus: Table<"DeliveryStatus"> = { pending: "Pending", delivered: "Delivered", failed: "Failed" };
const difficulty: Table<"Difficulty"> = { beginner: "Beginner", intermediate: "Intermediate", advanced: "Advanced" };
const endReason: Table<"EndReason"> = {
  counselor_left: "Counselor left",
  max_duration: "Time limit reached",
  silence: "Ended after silence",
  ended_by_supervisor: "Ended by a supervisor",
  agent_shutdown: "AI caller stopped",
  failed: "Failed",
  never_joined: "Counselor never joined",
  replaced: "Replaced by a new call",
};
const evaluationStatus: Table<"EvaluationStatus"> = { not_started: "Not started", running: "Grading", failed: "Grading failed", completed: "Completed", pending: "Waiting to be graded" };
const flagSeverity: Table<"FlagSeverity"> = { low: "Low", medium: "Medium", high: "High", critical: "Critical" };
const flagSource: Table<"FlagSource"> = { evaluation: "Evaluation", analysis: "Analysis", user_feedback: "Counselor report", derived: "Derived from answers", supervisor: "Supervisor" };
const flagStatus: Table<"FlagStatus"> = { open: "Open", reviewed: "Reviewed", dismissed: "Dismissed" };
const flagType: Table<"FlagType"> = {
  suicide_not_asked: "Suicide not asked about",
  missed_plan_or_means: "Missed plan or means",
  coercion_without_imminent_risk: "Coercion without imminent risk",
  missed_rescue: "Missed rescue",
  dismissive_language: "Dismissive language",
  medical_advice: "Medical advice",
  policy_violation: "Policy violation",
  caller_inconsistency: "Caller inconsistency",
  ai_caller_problem: "AI caller problem",
  other: "Other",
  firearms_not_asked: "Firearms not asked about",
  risk_to_others_not_assessed: "Risk to others not assessed",
  false_threats_or_coercion: "False threats or coercion",
  missed_third_party_rescue: "Missed third-party rescue",
  imminent_risk_underestimated: "Imminent risk under-estimated",
  high_risk_underestimated: "High risk under-estimated",
};
const gateSource: Table<"GateSource"> = { answers: "Check answers", evaluation: "Evaluation", analysis: "Analysis", supervisor: "Supervisor", counselor: "Counselor" };
const jobStatus: Table<"JobStatus"> = { pending: "Pending", running: "Running", done: "Done", failed: "Failed" };
const llmTask: Table<"LlmTask"> = { chat: "Chat", evaluation: "Evaluation", analysis: "Analysis", document_review: "Document review", scenario_generation: "Scenario generation", embedding: "Embedding", voice: "Voice call" };
const manipulationKind: Table<"ManipulationKind"> = { turn_marker: "Turn marker", speaker_label: "Speaker label", grader_note: "Grader note", data_tag: "Data tag" };
const overrideKind: Table<"OverrideKind"> = { check: "Check", rating: "Rating", flag: "Flag" };
const reportedFlagType: Table<"ReportedFlagType"> = { ai_caller_problem: "AI caller problem", caller_inconsistency: "Caller inconsistency", other: "Other" };
const role: Table<"Role"> = { counselor: "Counselor", supervisor: "Supervisor", admin: "Admin" };
const scenarioMode: Table<"ScenarioMode"> = { phone: "Phone", chat: "Chat" };
const scoreBand: Table<"ScoreBand"> = { needs_work: "Needs work", developing: "Developing", proficient: "Proficient", strong: "Strong" };
const sessionKind: Table<"SessionKind"> = { chat: "Chat", voice: "Voice" };
const sessionListType: Table<"SessionListType"> = { free_practice: "Free practice", assigned: "Assigned", all: "All" };
const sessionStatus: Table<"SessionStatus"> = { active: "In progress", completed: "Completed", abandoned: "Abandoned" };
const speaker: Table<"Speaker"> = { counselor: "Counselor", caller: "Caller", system: "System" };
const split: Table<"Split"> = { dev: "Development", held_out: "Held out" };

/** Every enum's words, by schema name: `enumLabel("FlagType", f.flagType)`. */
export const LABELS = {
  // First: its plain words are the untyped fallback for values shared with later enums.
  DeliveryStatus: deliveryStatus,
  AssignmentStatus: assignmentStatus,
  CheckAnswer: checkAnswer,
  Difficulty: difficulty,
  EndReason: endReason,
  EvaluationStatus: evaluationStatus,
  FlagSeverity: flagSeverity,
  FlagSource: flagSource,
  FlagStatus: flagStatus,
  FlagType: flagType,
  GateSource: gateSource,
  JobStatus: jobStatus,
  LlmTask: llmTask,
  ManipulationKind: manipulationKind,
  OverrideKind: overrideKind,
  ReportedFlagType: reportedFlagType,
  Role: role,
  ScenarioMode: scenarioMode,
  ScoreBand: scoreBand,
  SessionKind: sessionKind,
  SessionListType: sessionListType,
  SessionStatus: sessionStatus,
  Speaker: speaker,
  Split: split,
} as const;

type Kind = keyof typeof LABELS;

/** The words for one enum value, by the enum's schema name. */
export function enumLabel<K extends Kind>(kind: K, value: keyof (typeof LABELS)[K] & string): string {
  return (LABELS[kind] as Record<string, string>)[value] ?? humanize(value);
}

// Values that mean the same across enums share their words; the first table wins where two
// enums spell a value differently (the typed `enumLabel` picks the right one).
const ANY: Record<string, string> = {};
for (const table of Object.values(LABELS)) for (const [k, v] of Object.entries(table)) ANY[k] ??= v;

/** `in_progress` -> `In progress`: a wire value whose enum the caller does not name. */
export function anyLabel(value: string): string {
  return ANY[value] ?? humanize(value);
}

function humanize(value: string): string {
  const words = value.replace(/[_.]/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * Server validation names fields by their API name (`scenarioId`, `displayName`); people read the
 * form's label. Unknown names fall back to words split from the camel or snake case.
 */
const FIELDS: Record<string, string> = {
  title: "Title",
  prompt: "Caller persona",
  name: "Name",
  description: "Description",
  displayName: "Name",
  email: "E-mail",
  password: "Password",
  newPassword: "New password",
  currentPassword: "Current password",
  role: "Role",
  mode: "Mode",
  difficulty: "Difficulty",
  category: "Category",
  estimatedTime: "Estimated time (minutes)",
  estimated_time: "Estimated time (minutes)",
  evaluatorContext: "Grading guidance for the evaluator",
  skills: "Skills",
  externalId: "External ID",
  scenarioId: "Scenario",
  scenarioIds: "Scenarios",
  counselorId: "Counselor",
  sessionId: "Session",
  assignTo: "Assign to",
  monthlyBudgetUsd: "Monthly budget (US dollars)",
  url: "URL",
  events: "Events",
  file: "File",
  note: "Note",
  reason: "Reason",
  dueAt: "Due date",
  from: "From",
  to: "To",
  before: "Before",
  limit: "Limit",
  status: "Status",
  scoreBand: "Score band",
  overallScore: "Overall score",
  overrides: "Reviewed answers",
  details: "Details",
  action: "Action",
  row: "Row",
  maxTurns: "Most counselor turns",
};

/** A field's label for an error message. */
export function fieldLabel(field: string): string {
  if (FIELDS[field]) return FIELDS[field];
  const words = field.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/[_.]/g, " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
