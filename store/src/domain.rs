//! Domain vocabulary: every enum of the product (roles, statuses, modes, ...) is defined here once
//! and derived everywhere else: serde for the API, utoipa for OpenAPI (and so the web UI's types),
//! `as_str`/`FromStr` for the database, whose CHECK constraints a test holds to [`ALL`](Role::ALL).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// A string that named no variant of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{value}`; allowed: {allowed}")]
pub struct UnknownVariant {
    pub value: String,
    pub allowed: String,
}

macro_rules! str_enum {
    ($(#[doc = $doc:literal])* pub enum $name:ident { $($(#[doc = $vdoc:literal])* $variant:ident = $s:literal,)+ }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[doc = $vdoc])* #[serde(rename = $s)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s,)+ }
            }
        }

        // Written by hand rather than derived: utoipa's derive does not see a `serde(rename)`
        // whose value arrives as a macro fragment, and published the Rust variant names.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                enum_schema(&[$($s,)+], concat!($($doc, "\n",)*)).into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(value: &str) -> Result<Self, UnknownVariant> {
                match value {
                    $($s => Ok($name::$variant),)+
                    _ => Err(UnknownVariant {
                        value: value.to_owned(),
                        allowed: [$($s,)+].join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// The OpenAPI schema of a string enum: its wire values, and its doc comment as description.
fn enum_schema(values: &[&'static str], doc: &str) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let doc = doc.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let doc = doc.trim();
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(values.iter().copied()))
        .description((!doc.is_empty()).then(|| doc.to_owned()))
        .build()
}

str_enum! {
    /// What a user may do. Account admins manage users and keys and can do all a supervisor can.
    pub enum Role {
        Counselor = "counselor",
        Supervisor = "supervisor",
        Admin = "admin",
    }
}

impl Role {
    /// Supervisors and account admins manage scenarios, assignments and counselors.
    pub fn is_supervisor(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }
}

str_enum! {
    /// How a scenario is practised: a voice call or a text chat.
    pub enum ScenarioMode {
        Phone = "phone",
        Chat = "chat",
    }
}

str_enum! {
    pub enum Difficulty {
        Beginner = "beginner",
        Intermediate = "intermediate",
        Advanced = "advanced",
    }
}

str_enum! {
    /// pending -> in_progress (counselor starts) -> completed (evaluation done);
    /// in_progress -> pending (supervisor resets an abandoned attempt).
    pub enum AssignmentStatus {
        Pending = "pending",
        InProgress = "in_progress",
        Completed = "completed",
    }
}

impl AssignmentStatus {
    /// The assignment state machine: whether `self -> to` is a legal move.
    pub fn can_become(self, to: AssignmentStatus) -> bool {
        use AssignmentStatus::*;
        matches!((self, to), (Pending, InProgress) | (InProgress, Completed) | (InProgress, Pending))
    }
}

str_enum! {
    /// The medium of one practice session.
    pub enum SessionKind {
        Chat = "chat",
        Voice = "voice",
    }
}

str_enum! {
    pub enum SessionStatus {
        Active = "active",
        Completed = "completed",
        Abandoned = "abandoned",
    }
}

str_enum! {
    pub enum Speaker {
        Counselor = "counselor",
        Caller = "caller",
        System = "system",
    }
}

str_enum! {
    /// The kinds of concern a flag raises for a human reviewer.
    pub enum FlagType {
        SuicideNotAsked = "suicide_not_asked",
        MissedPlanOrMeans = "missed_plan_or_means",
        CoercionWithoutImminentRisk = "coercion_without_imminent_risk",
        MissedRescue = "missed_rescue",
        DismissiveLanguage = "dismissive_language",
        MedicalAdvice = "medical_advice",
        PolicyViolation = "policy_violation",
        CallerInconsistency = "caller_inconsistency",
        AiCallerProblem = "ai_caller_problem",
        Other = "other",
        /// Rubric v3: firearms never asked about in a call with suicidal ideation.
        FirearmsNotAsked = "firearms_not_asked",
        /// Rubric v3: homicidal ideation or threats whose risk was never assessed.
        RiskToOthersNotAssessed = "risk_to_others_not_assessed",
        /// Rubric v3: false statements about what the line can do, or coercion.
        FalseThreatsOrCoercion = "false_threats_or_coercion",
        /// Rubric v3: a third party's imminent risk with no rescue started for them.
        MissedThirdPartyRescue = "missed_third_party_rescue",
        /// A profiled scenario's risk was imminent and the counselor's call record put it lower.
        ImminentRiskUnderestimated = "imminent_risk_underestimated",
        /// A profiled scenario's risk was high and the counselor's call record put it at low or
        /// moderate.
        HighRiskUnderestimated = "high_risk_underestimated",
    }
}

str_enum! {
    /// The flags a counselor may raise on their own session: problems with the practice itself.
    /// The safety flags (a missed risk question, dismissive language, ...) judge the counselor;
    /// they come from grading or a supervisor, never from the counselor.
    pub enum ReportedFlagType {
        AiCallerProblem = "ai_caller_problem",
        CallerInconsistency = "caller_inconsistency",
        Other = "other",
    }
}

impl From<ReportedFlagType> for FlagType {
    fn from(reported: ReportedFlagType) -> Self {
        match reported {
            ReportedFlagType::AiCallerProblem => FlagType::AiCallerProblem,
            ReportedFlagType::CallerInconsistency => FlagType::CallerInconsistency,
            ReportedFlagType::Other => FlagType::Other,
        }
    }
}

str_enum! {
    pub enum FlagSeverity {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

str_enum! {
    pub enum FlagSource {
        Evaluation = "evaluation",
        Analysis = "analysis",
        UserFeedback = "user_feedback",
        /// A safety gate fired from the evaluation's check answers without the evaluator raising
        /// its flag: recorded so the flag queue, e-mail and webhooks see it.
        Derived = "derived",
        /// A supervisor raised it in a calibration review of the evaluation.
        Supervisor = "supervisor",
    }
}

str_enum! {
    /// How hard a safety gate holds a score down: `critical` (a danger to life right now) caps
    /// lower than `hard`.
    pub enum GateSeverity {
        Critical = "critical",
        Hard = "hard",
    }
}

str_enum! {
    /// What made a safety gate hold a score: the check answers themselves, or a flag of the gate's
    /// type raised by the evaluator, the post-session analysis, a supervisor or the counselor.
    pub enum GateSource {
        Answers = "answers",
        Evaluation = "evaluation",
        Analysis = "analysis",
        Supervisor = "supervisor",
        Counselor = "counselor",
    }
}

str_enum! {
    /// Whether the counselor filed a call record after hanging up, or skipped it.
    pub enum CallRecordStatus {
        Filed = "filed",
        Skipped = "skipped",
    }
}

str_enum! {
    /// The counselor's risk level (call record) against the scenario's expected level.
    pub enum Determination {
        Correct = "correct",
        /// Lower than the truth: the dangerous direction.
        UnderEstimate = "under_estimate",
        OverEstimate = "over_estimate",
        /// No call record was filed (skipped, or grading could not wait longer).
        NotFiled = "not_filed",
    }
}

str_enum! {
    /// What became of one fact of a scenario's risk profile in a call.
    pub enum FactOutcome {
        /// The counselor asked and the caller disclosed it.
        Elicited = "elicited",
        /// The caller said it before anyone asked: heard, not elicited.
        Volunteered = "volunteered",
        /// Never came out, and the caller was not at fault.
        Missed = "missed",
        /// The caller kept it back against the profile (its rule was met, or asked directly the
        /// caller denied it): not held against the counselor.
        WithheldByCaller = "withheld_by_caller",
    }
}

str_enum! {
    /// How the AI caller departed from the scenario's risk profile.
    pub enum DeviationKind {
        /// The fact's disclosure rule was met and the caller did not reveal it.
        Withheld = "withheld",
        /// Asked directly, the caller denied a true fact.
        Denied = "denied",
        /// The caller volunteered a fact its rule keeps back until asked.
        VolunteeredGated = "volunteered_gated",
    }
}

str_enum! {
    pub enum FlagStatus {
        Open = "open",
        Reviewed = "reviewed",
        Dismissed = "dismissed",
    }
}

str_enum! {
    /// What an LLM call was for (usage and cost are summed per task and session).
    pub enum LlmTask {
        Chat = "chat",
        Evaluation = "evaluation",
        Analysis = "analysis",
        DocumentReview = "document_review",
        ScenarioGeneration = "scenario_generation",
        Embedding = "embedding",
        /// A voice call's Realtime usage (audio and text tokens), one row per call, recorded
        /// with the call's end.
        Voice = "voice",
    }
}

str_enum! {
    /// An answer to one rubric check.
    pub enum CheckAnswer {
        Yes = "yes",
        No = "no",
        NotApplicable = "not_applicable",
        /// Set by validation, never by the evaluator: it answered yes without citing a real
        /// counselor turn, so the answer counts as neither yes nor no.
        NotAssessed = "not_assessed",
    }
}

str_enum! {
    /// Text inside a transcript turn that imitates the transcript's structure or talks to the
    /// grader: neutralised before any model reads it, and a reason to hold the evaluation.
    pub enum ManipulationKind {
        /// A line starting like a numbered turn (`[4] Counselor:`) or a turn's JSON fields.
        TurnMarker = "turn_marker",
        /// A line starting with a speaker label (`Caller:`, `System:`).
        SpeakerLabel = "speaker_label",
        /// A note addressed to the grader or evaluator, or an order to ignore instructions.
        GraderNote = "grader_note",
        /// A tag imitating the prompt's data blocks (`<data>`, `</transcript>`).
        DataTag = "data_tag",
    }
}

str_enum! {
    /// Where an overall score falls. The score is capped inside `needs_work` when a hard safety
    /// flag is raised, so a call with a dangerous miss never reads as proficient.
    pub enum ScoreBand {
        /// Below 50, or any score capped by a hard safety flag.
        NeedsWork = "needs_work",
        /// 50 to below 70.
        Developing = "developing",
        /// 70 to below 85.
        Proficient = "proficient",
        /// 85 and above.
        Strong = "strong",
    }
}

impl ScoreBand {
    /// The band of a 0-100 score.
    pub fn of(score: f64) -> ScoreBand {
        match score {
            s if s < 50.0 => ScoreBand::NeedsWork,
            s if s < 70.0 => ScoreBand::Developing,
            s if s < 85.0 => ScoreBand::Proficient,
            _ => ScoreBand::Strong,
        }
    }

    /// Ordinal position (0 lowest), for weighted agreement.
    pub fn rank(self) -> u8 {
        ScoreBand::ALL.iter().position(|b| *b == self).unwrap_or(0) as u8
    }
}

str_enum! {
    /// What a supervisor's override changes in an evaluation.
    pub enum OverrideKind {
        /// A check answer: target `<criterion>.<check>`, value yes | no | not_applicable.
        Check = "check",
        /// A criterion rating: target `<criterion>`, value 1-4 or `none` (did not apply).
        Rating = "rating",
        /// A flag: target the flag type, value `raised` | `not_raised`.
        Flag = "flag",
    }
}

str_enum! {
    /// The value of a rating override (`OverrideKind::Rating`): a rating from 1 (not
    /// demonstrated) to 4 (exemplary), or `none` (the criterion did not apply). Published so the
    /// calibration form offers exactly what the server accepts.
    pub enum RatingOverride {
        One = "1",
        Two = "2",
        Three = "3",
        Four = "4",
        Unrated = "none",
    }
}

str_enum! {
    /// The value of a flag override (`OverrideKind::Flag`).
    pub enum FlagOverride {
        Raised = "raised",
        NotRaised = "not_raised",
    }
}

str_enum! {
    /// Events a partner webhook can subscribe to, and `ping`, the test event an admin sends on
    /// request ("Send test event"; never subscribed to).
    pub enum WebhookEvent {
        AssignmentCompleted = "assignment.completed",
        EvaluationCompleted = "evaluation.completed",
        FlagRaised = "flag.raised",
        Ping = "ping",
    }
}

str_enum! {
    pub enum DeliveryStatus {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
}

str_enum! {
    /// Why a voice call ended.
    pub enum EndReason {
        CounselorLeft = "counselor_left",
        MaxDuration = "max_duration",
        Silence = "silence",
        EndedBySupervisor = "ended_by_supervisor",
        AgentShutdown = "agent_shutdown",
        Failed = "failed",
        /// The counselor never joined the room before the join timeout.
        NeverJoined = "never_joined",
        /// The counselor started another voice session.
        Replaced = "replaced",
    }
}

str_enum! {
    /// Durable background work (the `jobs` table).
    pub enum JobKind {
        EvaluateSession = "evaluate_session",
        /// The post-session analysis, queued with the evaluation it follows.
        AnalyzeSession = "analyze_session",
        /// One flag's e-mail to the account's supervisors, queued with the flag.
        NotifyFlag = "notify_flag",
        /// A scenario test run: the AI counselor's call, then its grading (`test_runs`).
        TestRun = "test_run",
    }
}

str_enum! {
    /// The AI counselor of a scenario test run: a thorough 988-style risk assessment, or a
    /// deliberately poor call that never asks directly (to see what the scenario hides from it).
    pub enum TestRunKind {
        Thorough = "thorough",
        Poor = "poor",
    }
}

str_enum! {
    /// Where a scenario test run stands.
    pub enum TestRunStatus {
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

str_enum! {
    pub enum JobStatus {
        Pending = "pending",
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

str_enum! {
    /// Which scenarios a list shows: reusable ones (the default; one-time scenarios are hidden
    /// from lists), one-time ones, or all.
    pub enum ScenarioListKind {
        Reusable = "reusable",
        OneTime = "one_time",
        All = "all",
    }
}

// By hand: `str_enum!` takes no `#[default]` on a variant.
#[allow(clippy::derivable_impls)]
impl Default for ScenarioListKind {
    fn default() -> Self {
        Self::Reusable
    }
}

str_enum! {
    /// Which sessions a list shows: free practice (the default), assigned attempts, or all.
    pub enum SessionListType {
        FreePractice = "free_practice",
        Assigned = "assigned",
        All = "all",
    }
}

// By hand: `str_enum!` takes no `#[default]` on a variant.
#[allow(clippy::derivable_impls)]
impl Default for SessionListType {
    fn default() -> Self {
        Self::FreePractice
    }
}

str_enum! {
    /// The risk level a scenario's caller is at, on the center's scale (the 988 Lifeline's
    /// assessment: low, moderate, high, imminent risk of suicide). A scenario's risk profile
    /// names the level a counselor should reach; never shown to the AI caller.
    pub enum RiskLevel {
        Low = "low",
        Moderate = "moderate",
        High = "high",
        Imminent = "imminent",
    }
}

str_enum! {
    /// What a counselor must do on a scenario's call, given its risk (a risk profile's required
    /// actions).
    pub enum RequiredAction {
        /// Build a safety plan with the caller (warning signs, coping, people, professionals).
        SafetyPlan = "safety_plan",
        /// Reduce access to the means the caller has (lock away, hand over, remove).
        MeansRestriction = "means_restriction",
        /// Send emergency help without or against the caller's consent when life is at stake.
        ActiveRescue = "active_rescue",
        /// Agree a follow-up contact with the caller.
        FollowUp = "follow_up",
        /// Connect the caller to another service while on the line.
        WarmHandoff = "warm_handoff",
        /// Guide a third-party caller on helping the person at risk.
        ThirdPartyGuidance = "third_party_guidance",
    }
}

str_enum! {
    /// When the AI caller reveals one fact of a scenario's risk profile.
    pub enum DisclosureRule {
        /// The caller brings it up on their own, early.
        Volunteered = "volunteered",
        /// The caller tells it when the counselor asks about its topic.
        WhenAsked = "when_asked",
        /// The caller tells it only when asked directly, after the counselor has built rapport.
        AskedDirectlyAfterRapport = "asked_directly_after_rapport",
        /// The caller never brings it up; asked directly and specifically, they answer truthfully.
        NeverVolunteered = "never_volunteered",
    }
}

str_enum! {
    /// What one fact of a risk profile is about, in the 988 Lifeline's assessment's terms:
    /// suicidal desire, capability, intent, buffers, risk to others, or other context.
    pub enum RiskFactKind {
        PsychologicalPain = "psychological_pain",
        Hopelessness = "hopelessness",
        Trapped = "trapped",
        Burden = "burden",
        Alone = "alone",
        MeansAccess = "means_access",
        Firearms = "firearms",
        PastAttempts = "past_attempts",
        Intoxication = "intoxication",
        Agitation = "agitation",
        Ideation = "ideation",
        Plan = "plan",
        Timeline = "timeline",
        PreparatoryBehavior = "preparatory_behavior",
        AttemptInProgress = "attempt_in_progress",
        Buffer = "buffer",
        RiskToOthers = "risk_to_others",
        Context = "context",
    }
}

str_enum! {
    /// How a session list is ordered: newest (the default) or oldest first, or by score.
    pub enum SessionSort {
        Newest = "newest",
        Oldest = "oldest",
        ScoreLow = "score_low",
        ScoreHigh = "score_high",
    }
}

// By hand: `str_enum!` takes no `#[default]` on a variant.
#[allow(clippy::derivable_impls)]
impl Default for SessionSort {
    fn default() -> Self {
        Self::Newest
    }
}

/// Every enum above as a named OpenAPI schema: the API document lists them all as components,
/// so a reference from a query parameter always resolves.
pub fn enum_schemas() -> Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)> {
    macro_rules! schemas {
        ($($name:ident),+ $(,)?) => {
            vec![$((stringify!($name).to_owned(), <$name as utoipa::PartialSchema>::schema()),)+]
        };
    }
    schemas![
        Role,
        ScenarioMode,
        Difficulty,
        AssignmentStatus,
        SessionKind,
        SessionStatus,
        Speaker,
        FlagType,
        ReportedFlagType,
        FlagSeverity,
        FlagSource,
        GateSeverity,
        GateSource,
        CallRecordStatus,
        Determination,
        FactOutcome,
        DeviationKind,
        FlagStatus,
        LlmTask,
        CheckAnswer,
        ManipulationKind,
        ScoreBand,
        OverrideKind,
        RatingOverride,
        FlagOverride,
        WebhookEvent,
        DeliveryStatus,
        EndReason,
        JobKind,
        JobStatus,
        TestRunKind,
        TestRunStatus,
        ScenarioListKind,
        SessionListType,
        RiskLevel,
        RequiredAction,
        DisclosureRule,
        RiskFactKind,
        SessionSort,
    ]
}

/// Categories every new account starts with (PRODUCT.md); an account may add its own.
pub const DEFAULT_CATEGORIES: &[&str] = &["onboarding", "refresher", "advanced", "assessment", "cohort_training"];

/// An instant, stored as Unix epoch milliseconds and written as RFC 3339 on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339, or a bare `YYYY-MM-DD` date meaning the end of that day (UTC), which is
    /// what a person giving a due date means.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
            return Ok(Self((t.unix_timestamp_nanos() / 1_000_000) as i64));
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        match time::Date::parse(text, &format) {
            Ok(date) => {
                let end = date.with_hms_milli(23, 59, 59, 999).map_err(|e| e.to_string())?;
                Ok(Self((end.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64))
            }
            Err(_) => Err(format!("`{text}` is not an RFC 3339 date-time or a YYYY-MM-DD date")),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000).map_err(|_| fmt::Error)?;
        f.write_str(&t.format(&Rfc3339).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 date-time"))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

/// A new time-ordered id (UUIDv7), so ids sort by creation and index well. Typed ids have
/// the same as `new()` (`crate::ids`).
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_allows_only_product_transitions() {
        use AssignmentStatus::*;
        let allowed: Vec<_> = AssignmentStatus::ALL
            .iter()
            .flat_map(|a| AssignmentStatus::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(allowed, vec![(Pending, InProgress), (InProgress, Pending), (InProgress, Completed)]);
    }

    #[test]
    fn enums_round_trip_through_text_and_json() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(*role));
            assert_eq!(serde_json::to_value(role).ok(), Some(serde_json::json!(role.as_str())));
        }
        let err = "boss".parse::<Role>().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown value `boss`; allowed: counselor, supervisor, admin"));
    }

    /// Each enum's published schema lists exactly its wire values, and every enum defined here
    /// is published (the document lists them all as components).
    #[test]
    fn enum_schemas_publish_the_wire_values() {
        fn wire<T: Serialize>(all: &[T]) -> serde_json::Value {
            serde_json::Value::Array(all.iter().map(|v| serde_json::to_value(v).expect("enum serialises")).collect())
        }
        macro_rules! wire_values {
            ($($name:ident),+ $(,)?) => { vec![$((stringify!($name), wire($name::ALL)),)+] };
        }
        let expected = wire_values![
            Role,
            ScenarioMode,
            Difficulty,
            AssignmentStatus,
            SessionKind,
            SessionStatus,
            Speaker,
            FlagType,
            ReportedFlagType,
            FlagSeverity,
            FlagSource,
            GateSeverity,
            GateSource,
            CallRecordStatus,
            Determination,
            FactOutcome,
            DeviationKind,
            FlagStatus,
            LlmTask,
            CheckAnswer,
            ManipulationKind,
            ScoreBand,
            OverrideKind,
            RatingOverride,
            FlagOverride,
            WebhookEvent,
            DeliveryStatus,
            EndReason,
            JobKind,
            JobStatus,
            TestRunKind,
            TestRunStatus,
            ScenarioListKind,
            SessionListType,
            RiskLevel,
            RequiredAction,
            DisclosureRule,
            RiskFactKind,
            SessionSort,
        ];
        let published: Vec<(String, serde_json::Value)> = enum_schemas()
            .into_iter()
            .map(|(name, schema)| (name, serde_json::to_value(schema).expect("schema serialises")["enum"].clone()))
            .collect();
        for (name, values) in &expected {
            let found = published.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            assert_eq!(found, Some(values), "{name}");
        }
        let defined = include_str!("domain.rs").matches(concat!("str_enum", "! {")).count();
        assert_eq!(defined, published.len(), "every str_enum! must be listed in enum_schemas()");
        assert_eq!(defined, expected.len(), "and in this test");
    }

    #[test]
    fn timestamps_parse_rfc3339_and_dates() {
        let t = Timestamp::parse("2026-01-02T03:04:05.006Z").ok();
        assert_eq!(t.map(Timestamp::millis), Some(1_767_323_045_006));
        assert_eq!(t.map(|t| t.to_string()).as_deref(), Some("2026-01-02T03:04:05.006Z"));
        let d = Timestamp::parse("2026-01-02").ok().map(|t| t.to_string());
        assert_eq!(d.as_deref(), Some("2026-01-02T23:59:59.999Z"));
        assert!(Timestamp::parse("tomorrow").is_err());
    }
}
