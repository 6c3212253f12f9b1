//! Proto Trainer's domain types and their persistence.
//!
//! One [`Store`] serves both backends: SQLite (embedded default) and PostgreSQL (for scale-out),
//! chosen from the database URL's scheme at start-up. Queries are written once in the SQL both
//! dialects accept (`$n` placeholders, BIGINT epoch-millisecond timestamps, UUID text ids) and run
//! through sqlx's `Any` driver; each backend owns its migrations under `migrations/<backend>/`.
//!
//! The store knows nothing of HTTP. It enforces the product's rules in the schema (CHECKs, foreign
//! keys, partial unique indexes) and reports violations as typed [`Error`]s the callers map.

mod accounts;
mod ai;
mod assignments;
mod audit_log;
mod auth;
mod backup;
mod calibration;
mod call_records;
pub mod credential;
mod db;
pub mod domain;
mod error;
mod evaluations;
mod flags;
mod ids;
mod jobs;
mod partner;
pub mod persona;
mod privacy;
pub mod profile;
mod progress;
mod recordings;
mod revisions;
mod risk_levels;
mod scenarios;
mod scoped;
mod sessions;
mod sign_ins;
mod test_runs;
#[cfg(feature = "testing")]
pub mod testing;
mod users;
mod voice;

pub use accounts::{Account, Audit, AuditEvent};
pub use ai::{
    AccountBudget, Analysis, CounselorSpend, DaySpend, DocumentGap, DocumentReview, LlmCall, NewAnalysis,
    NewDocumentReview, NewPolicy, Policy, PolicyChunk, ReviewClaim, SpendCheck, SpendReport, Usage, month_start,
};
pub use assignments::{
    Assignment, AssignmentFilter, AssignmentPatch, AssignmentReport, BlockedPair, CounselorSummary, NewAssignment,
    ScenarioSummary, SkippedPair,
};
pub use audit_log::{AUDIT_PAGE_MAX, AuditEntry, AuditFilter, AuditPage};
pub use auth::{ApiKey, AuthSession, Credentials, NewAuthSession, UserPatch};
pub use backup::MigrationState;
pub use calibration::{NewOverride, Override, Review, ReviewedEvaluation, ScoringInput};
pub use call_records::{
    CALL_RECORD_NOTES_MAX, CallRecord, CallRecordInput, CallerDeviation, DeviationCounts, ScenarioDeviations,
    SessionDeviation,
};
pub use db::{Backend, Store, sqlite_path};
pub use domain::*;
pub use error::{Error, FieldError, Result};
pub use evaluations::{
    ActionAssessment, CallFact, CheckResult, CriterionScore, DeterminationResult, DowngradedCheck, Evaluation,
    EvaluationHold, FactAssessment, GateHit, GraderAudit, GraderOutput, HeldHarmless, Integrity, ManipulationSignal,
    NewEvaluation, NewSuggestion, ReviewSummary, ScoreBasis, Suggestion, TruthAssessment, TruthRecord,
};
pub use flags::{FlagFilter, FlagReview, NewFlag, SessionFlag};
pub use ids::{
    AccountId, ApiKeyId, AssignmentId, FlagId, RecordingId, ScenarioId, SessionId, TestRunId, UserId, WebhookId,
};
pub use jobs::{Job, JobState};
pub use partner::{DueDelivery, IdempotencyState, NewWebhook, Webhook, WebhookDelivery};
pub use privacy::{Purged, Retention};
pub use profile::{RISK_PROFILE_SCHEMA_VERSION, RiskDomain, RiskFact, RiskProfile};
pub use progress::{
    Activity, CounselorCriterion, CriterionWeek, FlagCounts, FlagWeek, Progress, ProgressQuery, ProgressScope,
    ScenarioScores, ScorePoint, SessionFigures, TruthWeek,
};
pub use recordings::{Recording, RecordingFilter};
pub use revisions::{REVISION_TRACKED, REVISION_UNTRACKED};
pub use risk_levels::{
    CenterRiskLevel, RISK_LEVEL_LABEL_MAX, RISK_LEVELS_MAX, default_risk_levels, validate_risk_levels,
};
pub use scenarios::{
    ImportReport, ImportRowCreated, ImportRowFailed, ImportRowSkipped, MAX_EVALUATOR_CONTEXT_CHARS, OneTimeAssignment,
    Scenario, ScenarioDraft, ScenarioFilter, ScenarioInput,
};
pub use scoped::SessionRef;
pub use sessions::{NewSession, NewTurn, Session, SessionDetail, SessionFilter, SessionListItem, TranscriptTurn};
pub use test_runs::{MAX_TEST_RUN_TURNS, NewTestRun, TestRun};
pub use users::{NewUser, User, UserFilter};
pub use voice::{
    CREDENTIAL_GRACE_MS, CallDefaults, PriorTurn, REALTIME_VOICES, RealtimeUsage, RecordingMeta,
    SUPERVISOR_END_GRACE_MS, ScenarioVoice, TurnMetrics, VoiceEnd, VoiceSetup, VoiceUsage, realtime_cost_usd,
    recording_file_name,
};
