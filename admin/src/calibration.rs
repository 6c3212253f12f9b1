//! Calibration with the center's own trainers:
//! - a supervisor reviews a session's evaluation and may override any check answer, rating or
//!   flag, each with a reason; the overrides are stored beside the AI's answer (the evaluation
//!   row is never updated) and audited in the same transaction;
//! - everyone who sees the evaluation (the counselor too) sees the reviewed version, marked as
//!   reviewed, with the AI's answer kept beside each overridden item and the score recomputed;
//! - an agreement report per account over a period: AI vs supervisor, per check and criterion,
//!   with the statistics of [`crate::agreement`], and the checks where they disagree most;
//! - a reviewed session exported as a golden case (the format of `golden/*.json`, defined here
//!   once for the harness and the exporter), after the exporter reviews a draft whose names,
//!   numbers, e-mail addresses and places are masked.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::json;
use store::{
    CheckAnswer, Evaluation, FlagOverride, FlagSource, FlagStatus, FlagType, GateSource, OverrideKind, RatingOverride,
    Review, ReviewSummary, SessionFlag, Speaker, Timestamp,
};
use utoipa::ToSchema;

use crate::AppState;
use crate::agreement::{self, Answer, BandAgreement, CheckAgreement, FlagAgreement, RatingAgreement};
use crate::error::{ApiError, Result};
use crate::identity::Actor;
use crate::{rubric, scoring};
use store::{SessionId, SessionRef};

const MAX_OVERRIDES: usize = 500;
const MAX_REASON_CHARS: usize = 2000;
const MAX_NOTE_CHARS: usize = 4000;

// ---------------------------------------------------------------------------------------------
// The golden case format

/// Which part of the golden set a case belongs to: `held_out` cases are never used to tune the
/// evaluator prompt, only to measure it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Dev,
    HeldOut,
}

/// One golden case (`golden/<id>.json`; snake_case, the file format).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldenCase {
    pub id: String,
    pub title: String,
    pub split: Split,
    /// `written` (authored for the set) or `supervisor_review` (exported from a reviewed session).
    #[serde(default = "written")]
    pub source: String,
    /// `null` for free practice.
    pub scenario: Option<GoldenScenario>,
    pub turns: Vec<GoldenTurn>,
    /// Makes one turn long (for a transcript near the truncation limit) without committing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<Pad>,
    /// The first labelling pass.
    pub labels: Labels,
    /// Why the labels are what they are.
    pub notes: String,
    /// Where the two passes disagreed: what was decided, and why.
    #[serde(default)]
    pub resolutions: Vec<Resolution>,
}

fn written() -> String {
    "written".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldenScenario {
    pub title: String,
    pub description: String,
    /// The caller persona (the evaluator does not see it by default).
    pub prompt: String,
    /// Grading guidance; each list item becomes a `scenario_goals.goal_N` check.
    #[serde(default)]
    pub evaluator_context: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldenTurn {
    pub speaker: Party,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Counselor,
    Caller,
}

/// Repeats `sentences` into turn `turn` (1-based) until the numbered transcript is about
/// `target_chars` long.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pad {
    pub turn: usize,
    pub target_chars: usize,
    pub sentences: Vec<String>,
}

/// One pass of labels: `<criterion>.<check>` → answer (unlabelled checks are not scored), the
/// call facts (rubric v3: fact key → yes / no, see `rubric::FACTS`), and exactly the flags that
/// must be raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    pub checks: BTreeMap<String, CheckAnswer>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, CheckAnswer>,
    pub flags: Vec<FlagType>,
}

impl Labels {
    /// The facts as an evaluation stores them.
    pub fn call_facts(&self) -> Vec<store::CallFact> {
        self.facts.iter().map(|(k, a)| store::CallFact { key: k.clone(), answer: *a, turns: Vec::new() }).collect()
    }
}

/// A disagreement between the passes and its resolution. `key` is a check key or `flag:<type>`;
/// values are answers, or `raised` / `not_raised` for flags.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub key: String,
    pub first: String,
    pub second: String,
    pub resolved: String,
    pub reason: String,
}

impl GoldenCase {
    /// The turns, with the pad applied.
    pub fn expanded_turns(&self) -> Vec<GoldenTurn> {
        let mut turns = self.turns.clone();
        if let Some(pad) = &self.pad
            && pad.turn >= 1
            && pad.turn <= turns.len()
            && !pad.sentences.is_empty()
        {
            let mut length: usize = turns.iter().map(|t| t.text.len() + 16).sum();
            let mut extra = String::new();
            let mut i = 0;
            while length < pad.target_chars {
                let s = &pad.sentences[i % pad.sentences.len()];
                extra.push(' ');
                extra.push_str(s);
                length += s.len() + 1;
                i += 1;
            }
            let t = &mut turns[pad.turn - 1];
            t.text = format!("{}{extra}", t.text);
        }
        turns
    }

    pub fn guidance(&self) -> &str {
        self.scenario.as_ref().map(|s| s.evaluator_context.as_str()).unwrap_or("")
    }
}

// ---------------------------------------------------------------------------------------------
// Reviews and overrides

/// One override in a review.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideInput {
    pub kind: OverrideKind,
    /// `<criterion>.<check>` (check), `<criterion>` (rating), or a flag type (flag).
    pub target: String,
    /// check: yes | no | not_applicable; rating: 1 | 2 | 3 | 4 | none; flag: raised | not_raised.
    pub value: String,
    /// Why (required, 1-2000 characters).
    pub reason: String,
}

/// A supervisor's review: overrides (possibly none: the AI's answer is confirmed) and a note.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewInput {
    #[serde(default)]
    pub overrides: Vec<OverrideInput>,
    #[serde(default)]
    pub note: Option<String>,
}

fn rating_value(rating: Option<u8>) -> String {
    rating.map(|r| r.to_string()).unwrap_or_else(|| "none".into())
}

fn flag_value(raised: bool) -> &'static str {
    if raised { FlagOverride::Raised } else { FlagOverride::NotRaised }.as_str()
}

/// The AI's flag types for a session (the evaluation's own flags).
async fn ai_flags(state: &AppState, session: &SessionRef) -> Result<Vec<FlagType>> {
    let mut flags: Vec<FlagType> = state
        .store
        .session_flags(session)
        .await?
        .into_iter()
        .filter(|f| f.source == FlagSource::Evaluation)
        .map(|f| f.flag_type)
        .collect();
    flags.sort_by_key(|f| f.as_str());
    flags.dedup();
    Ok(flags)
}

/// Checks one override against the evaluation; answers the AI's value for its target.
fn validate_override(
    i: usize,
    o: &OverrideInput,
    evaluation: &Evaluation,
    flags: &[FlagType],
) -> Result<Option<String>> {
    let field = |name: &str| format!("overrides[{i}].{name}");
    let reason = o.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::validation(&field("reason"), "a reason of 1 to 2000 characters is required"));
    }
    match o.kind {
        OverrideKind::Check => {
            let (criterion, check) = o
                .target
                .split_once('.')
                .ok_or_else(|| ApiError::validation(&field("target"), "a check is `<criterion>.<check>`"))?;
            let ai = evaluation
                .criteria
                .iter()
                .find(|c| c.key == criterion)
                .and_then(|c| c.checks.iter().find(|k| k.key == check))
                .map(|k| k.answer.as_str().to_owned());
            let in_rubric = evaluation.criteria.iter().any(|c| c.key == criterion)
                && rubric::find_check(&rubric::criteria(""), &o.target).is_some();
            if ai.is_none() && !in_rubric {
                return Err(ApiError::validation(
                    &field("target"),
                    format!("`{}` is not a check of this evaluation", o.target),
                ));
            }
            o.value.parse::<CheckAnswer>().map_err(|e| ApiError::validation(&field("value"), e.to_string()))?;
            Ok(ai)
        }
        OverrideKind::Rating => {
            let c = evaluation.criteria.iter().find(|c| c.key == o.target).ok_or_else(|| {
                ApiError::validation(&field("target"), format!("`{}` is not a criterion of this evaluation", o.target))
            })?;
            parse_rating(&o.value).map_err(|m| ApiError::validation(&field("value"), m))?;
            Ok(Some(rating_value(c.rating)))
        }
        OverrideKind::Flag => {
            let flag: FlagType = o
                .target
                .parse()
                .map_err(|e: store::UnknownVariant| ApiError::validation(&field("target"), e.to_string()))?;
            if !rubric::EVALUATION_FLAGS.iter().any(|(f, _)| *f == flag) {
                return Err(ApiError::validation(&field("target"), "not a flag the evaluation raises"));
            }
            parse_flag(&o.value).map_err(|m| ApiError::validation(&field("value"), m))?;
            Ok(Some(flag_value(flags.contains(&flag)).to_owned()))
        }
    }
}

fn parse_rating(value: &str) -> std::result::Result<Option<u8>, String> {
    match value.parse::<RatingOverride>() {
        Ok(RatingOverride::One) => Ok(Some(1)),
        Ok(RatingOverride::Two) => Ok(Some(2)),
        Ok(RatingOverride::Three) => Ok(Some(3)),
        Ok(RatingOverride::Four) => Ok(Some(4)),
        Ok(RatingOverride::Unrated) => Ok(None),
        Err(_) => Err(format!("`{value}` is not a rating: 1, 2, 3, 4 or none")),
    }
}

fn parse_flag(value: &str) -> std::result::Result<bool, String> {
    match value.parse::<FlagOverride>() {
        Ok(FlagOverride::Raised) => Ok(true),
        Ok(FlagOverride::NotRaised) => Ok(false),
        Err(_) => Err(format!("`{value}` is not raised or not_raised")),
    }
}

/// Records a supervisor's review of a session's evaluation; answers the reviewed evaluation.
pub async fn review_session(
    state: &AppState,
    actor: &Actor,
    session_id: SessionId,
    input: ReviewInput,
) -> Result<Evaluation> {
    actor.require_supervisor()?;
    let session = actor.session(&state.store, session_id).await?;
    // A supervisor who practises is graded like anyone: their reviewed evaluation is what the
    // agreement report and their progress count, so they cannot be their own reviewer.
    if session.user_id == actor.user_id {
        return Err(ApiError::Forbidden("a supervisor cannot review their own session"));
    }
    let evaluation = state.store.ai_evaluation_raw(&session).await?.ok_or_else(|| ApiError::Conflict {
        message: "the session has no evaluation to review yet".into(),
        existing_id: None,
    })?;
    if input.overrides.len() > MAX_OVERRIDES {
        return Err(ApiError::validation("overrides", format!("at most {MAX_OVERRIDES} overrides per review")));
    }
    let note = input.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::validation("note", "at most 4000 characters"));
    }
    let flags = ai_flags(state, &session).await?;
    let mut seen = BTreeSet::new();
    let mut new = Vec::with_capacity(input.overrides.len());
    for (i, o) in input.overrides.iter().enumerate() {
        if !seen.insert((o.kind.as_str(), o.target.clone())) {
            return Err(ApiError::validation(&format!("overrides[{i}].target"), "overridden twice in one review"));
        }
        let ai_value = validate_override(i, o, &evaluation, &flags)?;
        new.push(store::NewOverride {
            kind: o.kind,
            target: o.target.clone(),
            ai_value,
            value: Some(o.value.clone()),
            reason: o.reason.trim().to_owned(),
        });
    }
    let raised = supervisor_flags(state, &session, &new).await?;
    state.store.record_review_raising(actor.account_id, session_id, actor.user_id, &note, &new, &raised).await?;
    if !raised.is_empty() {
        let flags = state.store.session_flags(&session).await?;
        let theirs: Vec<SessionFlag> = flags.into_iter().filter(|f| f.source == FlagSource::Supervisor).collect();
        crate::flags_raised(state, &theirs);
    }
    reviewed(state, &session, evaluation).await
}

/// The flags a review raises: each flag override to `raised` whose type the session has no
/// standing flag of (one dismissed does not count), as a `supervisor` flag with the gate's
/// severity, so it reaches the queue, the session's panel and webhooks. Before this, such a flag
/// only lived in the override: it cut the score but no supervisor queue or partner ever saw it.
async fn supervisor_flags(
    state: &AppState,
    session: &store::SessionRef,
    overrides: &[store::NewOverride],
) -> Result<Vec<store::NewFlag>> {
    let standing: Vec<FlagType> = state
        .store
        .session_flags(session)
        .await?
        .into_iter()
        .filter(|f| f.status != FlagStatus::Dismissed)
        .map(|f| f.flag_type)
        .collect();
    let mut out: Vec<store::NewFlag> = Vec::new();
    for o in overrides.iter().filter(|o| o.kind == OverrideKind::Flag && o.value.as_deref() == Some("raised")) {
        let Ok(flag) = o.target.parse::<FlagType>() else { continue };
        if standing.contains(&flag) || out.iter().any(|f| f.flag_type == flag) {
            continue;
        }
        let gate = rubric::GATES.iter().find(|g| g.flag == flag);
        out.push(store::NewFlag {
            flag_type: flag,
            severity: match gate.map(|g| g.severity) {
                Some(store::GateSeverity::Critical) => store::FlagSeverity::Critical,
                Some(store::GateSeverity::Hard) => store::FlagSeverity::High,
                None => store::FlagSeverity::Medium,
            },
            source: FlagSource::Supervisor,
            details: match gate {
                Some(g) => format!("Raised by a supervisor: {} (Their reason: {}.)", g.reason, o.reason.trim()),
                None => format!("Raised by a supervisor: {}", o.reason.trim()),
            },
            turns: Vec::new(),
        });
    }
    Ok(out)
}

/// The evaluation as everyone sees it: the reviewed version when a supervisor reviewed it, and
/// (rubric v3) scored with every flag of the session, whoever raised it.
pub async fn reviewed(state: &AppState, session: &SessionRef, evaluation: Evaluation) -> Result<Evaluation> {
    let reviews = state.store.reviews(session).await?;
    if reviews.is_empty() && evaluation.gate_table.is_none() {
        return Ok(evaluation);
    }
    let flags = state.store.session_flags(session).await?;
    Ok(apply(evaluation, &flags, &reviews))
}

/// The AI's flag types among a session's flags (the evaluation's own).
fn ai_flag_types(flags: &[SessionFlag]) -> Vec<FlagType> {
    let mut out: Vec<FlagType> =
        flags.iter().filter(|f| f.source == FlagSource::Evaluation).map(|f| f.flag_type).collect();
    out.sort_by_key(|f| f.as_str());
    out.dedup();
    out
}

/// The latest override per (kind, target), in the order first made.
fn in_force(reviews: &[Review]) -> Vec<store::Override> {
    let mut latest: BTreeMap<(String, String), store::Override> = BTreeMap::new();
    for o in reviews.iter().flat_map(|r| &r.overrides) {
        latest.insert((o.kind.as_str().to_owned(), o.target.clone()), o.clone());
    }
    let mut out: Vec<store::Override> = latest.into_values().collect();
    out.sort_by_key(|o| (o.created_at, o.id));
    out
}

/// Applies the reviews' overrides to the AI's evaluation (pure): the reviewed version with the
/// AI's answers kept beside overridden items and the score recomputed. An evaluation scored with
/// a gate table (v3) is re-scored with that table and every flag of the session as a gate
/// source (the evaluator's as overridden, a supervisor's, the analysis's, the counselor's; not
/// dismissed ones, and not `derived` ones: the answers are re-read); one stored before v3 keeps
/// its own version's caps and is re-scored only when reviewed.
pub fn apply(mut evaluation: Evaluation, session_flags: &[SessionFlag], reviews: &[Review]) -> Evaluation {
    let table = scoring::GateTable::stored(evaluation.gate_table.as_ref());
    if reviews.is_empty() && table.is_none() {
        return evaluation;
    }
    let ai_flags = ai_flag_types(session_flags);
    let overrides = in_force(reviews);
    let mut flags: Vec<FlagType> = ai_flags.clone();
    for o in &overrides {
        let Some(value) = o.value.as_deref() else { continue };
        match o.kind {
            OverrideKind::Check => {
                let Some((criterion, check)) = o.target.split_once('.') else { continue };
                let Ok(answer) = value.parse::<CheckAnswer>() else { continue };
                let Some(c) = evaluation.criteria.iter_mut().find(|c| c.key == criterion) else { continue };
                match c.checks.iter_mut().find(|k| k.key == check) {
                    Some(k) => {
                        k.ai_answer = Some(k.ai_answer.unwrap_or(k.answer));
                        k.answer = answer;
                    }
                    None => c.checks.push(store::CheckResult {
                        key: check.to_owned(),
                        question: rubric::find_check(&rubric::criteria(""), &o.target)
                            .map(|(_, k)| k.question.to_string())
                            .unwrap_or_default(),
                        answer,
                        turns: Vec::new(),
                        note: format!("Added by a supervisor: {}", o.reason),
                        ai_answer: None,
                        blocked_by: None,
                    }),
                }
                c.not_assessed = false;
            }
            OverrideKind::Rating => {
                let Ok(rating) = parse_rating(value) else { continue };
                let Some(c) = evaluation.criteria.iter_mut().find(|c| c.key == o.target) else { continue };
                if !c.rating_overridden {
                    c.ai_rating = c.rating;
                }
                c.rating = rating;
                c.rating_overridden = true;
                c.not_assessed = false;
            }
            OverrideKind::Flag => {
                let (Ok(flag), Ok(raised)) = (o.target.parse::<FlagType>(), parse_flag(value)) else { continue };
                flags.retain(|f| *f != flag);
                if raised {
                    flags.push(flag);
                }
            }
        }
    }
    flags.sort_by_key(|f| f.as_str());
    let computed = match &table {
        Some(table) => {
            let mut raised: Vec<scoring::Raised> = flags
                .iter()
                .map(|f| {
                    let own = session_flags.iter().find(|s| s.source == FlagSource::Evaluation && s.flag_type == *f);
                    match own {
                        Some(s) => scoring::Raised { flag: *f, source: GateSource::Evaluation, turns: s.turns.clone() },
                        None => scoring::Raised { flag: *f, source: GateSource::Supervisor, turns: Vec::new() },
                    }
                })
                .collect();
            raised.extend(
                session_flags
                    .iter()
                    .filter(|f| f.source != FlagSource::Evaluation && f.status != FlagStatus::Dismissed)
                    .filter_map(|f| scoring::Raised::of_flag(f.source, f.flag_type, &f.turns)),
            );
            scoring::score(&evaluation.criteria, &evaluation.facts, &raised, table)
        }
        None => scoring::legacy_score(&evaluation.criteria, &flags),
    };
    if let Some(last) = reviews.last() {
        evaluation.review = Some(ReviewSummary {
            reviewed: true,
            reviewed_at: last.created_at,
            reviewer_id: last.reviewer_id,
            reviewer_name: last.reviewer_name.clone(),
            notes: reviews.iter().map(|r| r.note.clone()).filter(|n| !n.is_empty()).collect(),
            overrides,
            ai_overall_score: evaluation.overall_score,
            ai_score_band: evaluation.score_band,
            flags,
            ai_flags,
        });
    }
    if table.is_some() {
        evaluation.criteria = computed.criteria;
    }
    evaluation.overall_score = computed.overall;
    evaluation.score_band = computed.band;
    evaluation.score_basis = computed.basis;
    evaluation
}

// ---------------------------------------------------------------------------------------------
// The agreement report

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Reviews from (RFC 3339 or YYYY-MM-DD; default: 90 days before `to`); at most 366 days
    /// before `to` (422 otherwise).
    pub from: Option<String>,
    /// Reviews before (RFC 3339 or YYYY-MM-DD, the end of that day; default: now).
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckRow {
    /// `<criterion>.<check>`.
    pub key: String,
    pub criterion: String,
    pub disagreements: usize,
    #[serde(flatten)]
    pub agreement: CheckAgreement,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CriterionRow {
    pub criterion: String,
    /// Every check of the criterion pooled.
    pub checks: CheckAgreement,
    pub ratings: RatingAgreement,
}

/// AI vs supervisor over the evaluations reviewed in a period. The supervisor's reviewed
/// version is the reference; a review without overrides counts as full agreement.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgreementReport {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Reviewed evaluations compared.
    pub evaluations: usize,
    pub reviews: usize,
    /// Overrides in force.
    pub overrides: usize,
    pub all_checks: CheckAgreement,
    pub checks: Vec<CheckRow>,
    pub criteria: Vec<CriterionRow>,
    pub ratings: RatingAgreement,
    pub bands: BandAgreement,
    pub flags: Vec<FlagAgreement>,
    /// The checks with the most disagreements (up to 10, at least one each): where a human must look.
    pub most_disagreed: Vec<String>,
}

/// The longest period an agreement report covers (a year, leap day included).
pub const MAX_REPORT_DAYS: i64 = 366;

/// The agreement report for the actor's account.
pub async fn agreement_report(state: &AppState, actor: &Actor, query: &ReportQuery) -> Result<AgreementReport> {
    actor.require_supervisor()?;
    let parse = |field: &str, v: &Option<String>| -> Result<Option<Timestamp>> {
        v.as_deref().map(|t| Timestamp::parse(t).map_err(|m| ApiError::validation(field, m))).transpose()
    };
    let to = parse("to", &query.to)?.unwrap_or_else(Timestamp::now);
    let from = parse("from", &query.from)?.unwrap_or(Timestamp::from_millis(to.millis() - 90 * 86_400_000));
    if from > to {
        return Err(ApiError::validation("from", "must not be after `to`"));
    }
    // Every reviewed evaluation of the period is loaded and compared in memory (with a
    // bootstrap), so the period is bounded: a few years of reviews in one request would hold a
    // worker and the database for as long as it takes.
    if to.millis() - from.millis() > MAX_REPORT_DAYS * 86_400_000 {
        return Err(ApiError::validation("from", format!("the period may span at most {MAX_REPORT_DAYS} days")));
    }
    let reviewed = state.store.reviewed_evaluations(actor.account_id, from, to).await?;
    let items: Vec<(Evaluation, Evaluation, Vec<FlagType>, usize)> = reviewed
        .into_iter()
        .map(|r| {
            let flags = ai_flag_types(&r.flags);
            let count = r.reviews.len();
            let resolved = apply(r.evaluation.clone(), &r.flags, &r.reviews);
            (r.evaluation, resolved, flags, count)
        })
        .collect();
    Ok(compare(from, to, &items))
}

/// A criterion's (supervisor, AI) check answers and ratings.
type CriterionPairs = (Vec<(Answer, Answer)>, Vec<(Option<u8>, Option<u8>)>);

/// The report from (AI evaluation, reviewed evaluation, AI flags, review count) items.
fn compare(
    from: Timestamp,
    to: Timestamp,
    items: &[(Evaluation, Evaluation, Vec<FlagType>, usize)],
) -> AgreementReport {
    // Per check key: (supervisor, AI) pairs.
    let mut by_check: BTreeMap<String, Vec<(Answer, Answer)>> = BTreeMap::new();
    let mut by_criterion: BTreeMap<String, CriterionPairs> = BTreeMap::new();
    let mut ratings = Vec::new();
    let mut bands = Vec::new();
    let mut flag_items = Vec::new();
    let mut overrides = 0;
    for (ai, reviewed, ai_flags, _) in items {
        for c in &reviewed.criteria {
            let ai_c = ai.criteria.iter().find(|a| a.key == c.key);
            for k in &c.checks {
                let ai_answer = ai_c.and_then(|a| a.checks.iter().find(|x| x.key == k.key)).map(|x| x.answer);
                let pair = (Answer::of(Some(k.answer)), Answer::of(ai_answer));
                by_check.entry(format!("{}.{}", c.key, k.key)).or_default().push(pair);
                by_criterion.entry(c.key.clone()).or_default().0.push(pair);
            }
            let rating_pair = (c.rating, ai_c.and_then(|a| a.rating));
            by_criterion.entry(c.key.clone()).or_default().1.push(rating_pair);
            ratings.push(rating_pair);
        }
        bands.push((reviewed.score_band, ai.score_band));
        let summary = reviewed.review.as_ref();
        overrides += summary.map_or(0, |s| s.overrides.len());
        flag_items.push((summary.map(|s| s.flags.clone()).unwrap_or_else(|| ai_flags.clone()), ai_flags.clone()));
    }
    let all: Vec<(Answer, Answer)> = by_check.values().flatten().copied().collect();
    let checks: Vec<CheckRow> = by_check
        .iter()
        .map(|(key, pairs)| CheckRow {
            key: key.clone(),
            criterion: key.split_once('.').map(|(c, _)| c).unwrap_or(key).to_owned(),
            disagreements: pairs.iter().filter(|(a, b)| a != b).count(),
            agreement: CheckAgreement::of(pairs, agreement::seed_for(key)),
        })
        .collect();
    let mut ranked: Vec<&CheckRow> = checks.iter().filter(|c| c.disagreements > 0).collect();
    ranked.sort_by(|a, b| b.disagreements.cmp(&a.disagreements).then(a.key.cmp(&b.key)));
    let flag_types: Vec<FlagType> = rubric::EVALUATION_FLAGS.iter().map(|(f, _)| *f).collect();
    AgreementReport {
        from,
        to,
        evaluations: items.len(),
        reviews: items.iter().map(|i| i.3).sum(),
        overrides,
        all_checks: CheckAgreement::of(&all, agreement::seed_for("all")),
        most_disagreed: ranked.iter().take(10).map(|c| c.key.clone()).collect(),
        checks,
        criteria: by_criterion
            .iter()
            .map(|(key, (pairs, ratings))| CriterionRow {
                criterion: key.clone(),
                checks: CheckAgreement::of(pairs, agreement::seed_for(key)),
                ratings: RatingAgreement::of(ratings, agreement::seed_for(&format!("{key}.rating"))),
            })
            .collect(),
        ratings: RatingAgreement::of(&ratings, agreement::seed_for("ratings")),
        bands: BandAgreement::of(&bands),
        flags: FlagAgreement::per_type(&flag_types, &flag_items),
    }
}

// ---------------------------------------------------------------------------------------------
// Export as a golden case

/// A personal detail found in the transcript and masked in the draft.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redaction {
    /// 1-based turn number.
    pub turn: usize,
    /// name | phone | email | place | number
    pub kind: String,
    pub original: String,
    pub replacement: String,
}

/// The draft an exporter reviews: the golden case with personal details masked, and what was
/// masked. Nothing is exported until the exporter confirms (POST).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoldenDraft {
    pub case: GoldenCase,
    pub redactions: Vec<Redaction>,
    /// What the exporter must still check by hand (the masking is a heuristic).
    pub review_notice: String,
}

/// The exporter's confirmed case.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoldenExportInput {
    /// The draft's case, edited by the exporter.
    pub case: GoldenCase,
    /// The exporter confirms they read every turn and removed what identifies anyone.
    pub personal_details_removed: bool,
}

const REVIEW_NOTICE: &str = "Names, phone numbers, e-mail addresses, street addresses and places were masked \
automatically. Read every turn: remove anything else that could identify a caller, a counselor or your center \
(workplaces, schools, unusual events, dates), then confirm.";

/// The labels a reviewed evaluation resolves to.
fn resolved_labels(evaluation: &Evaluation) -> Labels {
    let checks = evaluation
        .criteria
        .iter()
        .flat_map(|c| c.checks.iter().map(move |k| (format!("{}.{}", c.key, k.key), k.answer)))
        .collect();
    let flags = evaluation.review.as_ref().map(|r| r.flags.clone()).unwrap_or_default();
    let facts = evaluation.facts.iter().map(|f| (f.key.clone(), f.answer)).collect();
    Labels { checks, facts, flags }
}

/// The masked draft of a reviewed session as a golden case (supervisors).
pub async fn golden_draft(state: &AppState, actor: &Actor, session_id: SessionId) -> Result<GoldenDraft> {
    actor.require_supervisor()?;
    let session = actor.session(&state.store, session_id).await?;
    let detail = state.store.session_detail(&session).await?;
    let evaluation = detail
        .evaluation
        .clone()
        .ok_or_else(|| ApiError::Conflict { message: "the session has no evaluation".into(), existing_id: None })?;
    let evaluation = reviewed(state, &session, evaluation).await?;
    if evaluation.review.is_none() {
        return Err(ApiError::Conflict {
            message: "only a supervisor-reviewed session can be exported as a golden case".into(),
            existing_id: None,
        });
    }
    let counselor = state.store.user(actor.account_id, detail.session.user_id).await?;
    let account = state.store.account(actor.account_id).await?;
    let known: Vec<String> = [counselor.display_name.clone(), account.name.clone()]
        .into_iter()
        .flat_map(|n| {
            let mut parts: Vec<String> = n.split_whitespace().filter(|p| p.len() > 2).map(str::to_owned).collect();
            parts.push(n);
            parts
        })
        .collect();
    let mut masker = Masker::new(known);
    let mut turns = Vec::new();
    for (i, t) in detail.transcript.iter().enumerate() {
        let speaker = match t.speaker {
            Speaker::Counselor => Party::Counselor,
            Speaker::Caller | Speaker::System => Party::Caller,
        };
        let text = masker.mask(i + 1, &t.text);
        turns.push(GoldenTurn { speaker, text });
    }
    let scenario = match detail.session.scenario_id {
        Some(id) => {
            let s = state.store.scenario(actor.account_id, id).await?;
            Some(GoldenScenario {
                title: masker.mask(0, &s.title),
                description: masker.mask(0, &s.description),
                prompt: masker.mask(0, &s.prompt),
                evaluator_context: s.evaluator_context.clone(),
            })
        }
        None => None,
    };
    let id = format!("review_{}", &session_id.as_uuid().simple().to_string()[..12]);
    let case = GoldenCase {
        id,
        title: "Exported from a supervisor review (retitle)".into(),
        split: Split::HeldOut,
        source: "supervisor_review".into(),
        scenario,
        turns,
        pad: None,
        labels: resolved_labels(&evaluation),
        notes: evaluation.review.as_ref().map(|r| r.notes.join("\n")).unwrap_or_default(),
        resolutions: Vec::new(),
    };
    Ok(GoldenDraft { case, redactions: masker.redactions, review_notice: REVIEW_NOTICE.into() })
}

/// The confirmed export: the case as the exporter edited it, once they confirm the personal
/// details review and no detectable detail is left. Audited.
pub async fn golden_export(
    state: &AppState,
    actor: &Actor,
    session_id: SessionId,
    input: GoldenExportInput,
) -> Result<GoldenCase> {
    let draft = golden_draft(state, actor, session_id).await?;
    if !input.personal_details_removed {
        return Err(ApiError::validation(
            "personalDetailsRemoved",
            "confirm that you reviewed and removed personal details",
        ));
    }
    let case = input.case;
    if case.turns.len() != draft.case.turns.len() {
        return Err(ApiError::validation("case.turns", "keep every turn (edit their text instead)"));
    }
    let mut check =
        Masker::new(draft.redactions.iter().filter(|r| r.kind == "name").map(|r| r.original.clone()).collect());
    for (i, t) in case.turns.iter().enumerate() {
        check.mask(i + 1, &t.text);
    }
    if let Some(left) = check.redactions.first() {
        return Err(ApiError::validation(
            &format!("case.turns[{}].text", left.turn - 1),
            format!("still holds a personal detail ({}): `{}`", left.kind, left.original),
        ));
    }
    // An export changes nothing, so its record stands alone (written before the case is answered).
    let audit = store::Audit::new(Some(actor.account_id), Some(actor.user_id), "evaluation.golden_exported")
        .target("session", session_id)
        .details(json!({"caseId": case.id, "redactions": draft.redactions.len()}));
    state.store.audit(&audit).await?;
    Ok(case)
}

/// Masks personal details with numbered placeholders (`[NAME 1]`), the same detail with the
/// same placeholder throughout. A heuristic: the exporter's review is the safeguard.
///
/// Linear in the text: each word looks back at a bounded tail of what came before it (the cues
/// are short), and known names are a set. (Joining all the output for every word made a
/// 100k-token transcript take 20 s and stalled the server.)
struct Masker {
    /// Lowercased.
    known_names: std::collections::HashSet<String>,
    seen: BTreeMap<(String, String), String>,
    counts: BTreeMap<String, usize>,
    redactions: Vec<Redaction>,
    /// Characters looked at to find cues before words, summed over every `mask` call: the work
    /// the tests hold to a bound per word.
    scanned: usize,
}

/// How far back a word looks for a cue: longer than the longest cue with its leading space.
const CUE_LOOKBACK: usize = 24;

/// Words that introduce a name or a place.
const NAME_CUES: &[&str] = &[
    "my name is",
    "this is",
    "i'm",
    "i am",
    "called",
    "named",
    "name's",
    "my son",
    "my daughter",
    "my wife",
    "my husband",
    "my partner",
    "my friend",
    "my boyfriend",
    "my girlfriend",
    "my mum",
    "my mom",
    "my dad",
    "my brother",
    "my sister",
];
const PLACE_CUES: &[&str] = &["i live in", "live in", "i'm in", "i am in", "from", "near", "at", "in"];
const STREET_WORDS: &[&str] = &[
    "street",
    "st",
    "road",
    "rd",
    "avenue",
    "ave",
    "lane",
    "ln",
    "drive",
    "dr",
    "way",
    "close",
    "court",
    "boulevard",
    "blvd",
];
/// Capitalised words that are not personal details.
const NOT_NAMES: &[&str] = &[
    "I",
    "I'm",
    "I've",
    "I'll",
    "I'd",
    "Okay",
    "OK",
    "Yes",
    "No",
    "Hi",
    "Hello",
    "Thanks",
    "Thank",
    "Crisis",
    "Line",
    "Lifeline",
    "God",
    "Mum",
    "Mom",
    "Dad",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Christmas",
    "ER",
    "A&E",
    "ICU",
    "911",
    "988",
    "The",
    "And",
    "But",
    "So",
    "It",
    "My",
    "We",
    "You",
    "He",
    "She",
    "They",
];

impl Masker {
    fn new(known_names: Vec<String>) -> Self {
        Masker {
            known_names: known_names.iter().map(|n| n.to_lowercase()).collect(),
            seen: BTreeMap::new(),
            counts: BTreeMap::new(),
            redactions: Vec::new(),
            scanned: 0,
        }
    }

    /// The lowercased end of `out` joined by spaces: at least [`CUE_LOOKBACK`] characters, or
    /// all of it (then `true`). Cues are matched against this, never the whole text.
    fn tail(&mut self, out: &[String]) -> (String, bool) {
        let mut rev: Vec<char> = Vec::with_capacity(CUE_LOOKBACK + 16);
        let mut whole = true;
        'words: for (k, word) in out.iter().rev().enumerate() {
            if k > 0 {
                rev.push(' ');
            }
            for c in word.chars().rev() {
                if rev.len() >= CUE_LOOKBACK {
                    whole = false;
                    break 'words;
                }
                rev.push(c);
            }
        }
        self.scanned += rev.len();
        let text: String = rev.into_iter().rev().collect();
        (text.to_lowercase(), whole)
    }

    fn placeholder(&mut self, turn: usize, kind: &str, original: &str) -> String {
        let key = (kind.to_owned(), original.to_lowercase());
        let replacement = match self.seen.get(&key) {
            Some(r) => r.clone(),
            None => {
                let n = self.counts.entry(kind.to_owned()).or_insert(0);
                *n += 1;
                let r = format!("[{} {}]", kind.to_uppercase(), n);
                self.seen.insert(key, r.clone());
                r
            }
        };
        self.redactions.push(Redaction {
            turn,
            kind: kind.into(),
            original: original.into(),
            replacement: replacement.clone(),
        });
        replacement
    }

    fn mask(&mut self, turn: usize, text: &str) -> String {
        let tokens: Vec<&str> = text.split(' ').collect();
        let mut out: Vec<String> = Vec::with_capacity(tokens.len());
        let mut i = 0;
        while i < tokens.len() {
            let raw = tokens[i];
            let word = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '@' && c != '.' && c != '+' && c != '-');
            let word = word.trim_end_matches('.');
            let (lead, trail) = match raw.find(word) {
                Some(at) if !word.is_empty() => (&raw[..at], &raw[at + word.len()..]),
                _ => ("", ""),
            };
            let (lower_before, whole) = self.tail(&out);
            let kind = if word.contains('@') && word.contains('.') {
                Some("email")
            } else if word.chars().filter(|c| c.is_ascii_digit()).count() >= 7 {
                Some("phone")
            } else if raw.starts_with('[') {
                None
            } else if word.chars().all(|c| c.is_ascii_digit())
                && !word.is_empty()
                && tokens.iter().skip(i + 1).take(4).any(|n| {
                    STREET_WORDS.contains(&n.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase().as_str())
                })
            {
                Some("address")
            } else if !self.known_names.is_empty() && self.known_names.contains(&word.to_lowercase()) {
                Some("name")
            } else if is_capitalised(word) && !NOT_NAMES.contains(&word) {
                let sentence_start = out.last().is_none_or(|p| p.ends_with(['.', '!', '?', ':']) || p.ends_with("\""));
                if NAME_CUES.iter().any(|c| lower_before.ends_with(c)) {
                    Some("name")
                } else if PLACE_CUES
                    .iter()
                    .any(|c| lower_before.ends_with(&format!(" {c}")) || (whole && lower_before == *c))
                {
                    Some("place")
                } else if !sentence_start {
                    Some("name")
                } else {
                    None
                }
            } else {
                None
            };
            match kind {
                Some("address") => {
                    // The number and the capitalised words after it, up to a street word.
                    let mut j = i + 1;
                    let mut parts = vec![word.to_owned()];
                    while j < tokens.len() && j < i + 5 {
                        let w = tokens[j].trim_matches(|c: char| !c.is_alphanumeric());
                        parts.push(w.to_owned());
                        j += 1;
                        if STREET_WORDS.contains(&w.to_lowercase().as_str()) {
                            break;
                        }
                    }
                    let original = parts.join(" ");
                    let trail = tokens[j - 1].trim_start_matches(|c: char| c.is_alphanumeric());
                    let r = self.placeholder(turn, "address", &original);
                    out.push(format!("{lead}{r}{trail}"));
                    i = j;
                    continue;
                }
                Some(kind) => {
                    let r = self.placeholder(turn, kind, word);
                    out.push(format!("{lead}{r}{trail}"));
                }
                None => out.push(raw.to_owned()),
            }
            i += 1;
        }
        out.join(" ")
    }
}

fn is_capitalised(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase)
        && chars.clone().count() >= 1
        && chars.all(|c| c.is_lowercase() || c == '\'' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(flag_type: FlagType, source: FlagSource) -> SessionFlag {
        SessionFlag {
            id: store::FlagId::new(),
            account_id: store::AccountId::new(),
            session_id: store::SessionId::new(),
            flag_type,
            severity: store::FlagSeverity::High,
            source,
            status: FlagStatus::Open,
            details: "d".into(),
            turns: vec![3],
            review_note: None,
            reviewed_by: None,
            reviewed_at: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            counselor_id: store::UserId::new(),
            counselor_name: "c".into(),
            scenario_title: None,
        }
    }

    fn evaluation(gate_table: Option<serde_json::Value>) -> Evaluation {
        let criteria = vec![store::CriterionScore {
            key: "closing".into(),
            name: "Closing".into(),
            rating: Some(4),
            comment: String::new(),
            checks: Vec::new(),
            not_assessed: false,
            rating_overridden: false,
            ai_rating: None,
        }];
        Evaluation {
            id: uuid::Uuid::now_v7(),
            session_id: store::SessionId::new(),
            overall_score: Some(100.0),
            score_band: Some(store::ScoreBand::Strong),
            score_basis: store::ScoreBasis::default(),
            rubric_version: if gate_table.is_some() { 3 } else { 2 },
            criteria,
            facts: Vec::new(),
            strengths: Vec::new(),
            areas_to_improve: Vec::new(),
            model: "m".into(),
            created_at: Timestamp::now(),
            gate_table,
            review: None,
            hold: None,
            downgraded_checks: Vec::new(),
            truth: None,
            suggestions: Vec::new(),
        }
    }

    /// Frozen for audit: an evaluation stored before v3 reads as it was given, whatever flags
    /// arrive later; a v3 one is scored with every flag of the session, but not a dismissed one.
    #[test]
    fn flags_from_anyone_gate_v3_scores_and_old_grades_stay_as_given() {
        let analysis = [flag(FlagType::MedicalAdvice, FlagSource::Analysis)];
        let old = apply(evaluation(None), &analysis, &[]);
        assert_eq!((old.overall_score, old.score_band), (Some(100.0), Some(store::ScoreBand::Strong)));
        let table = scoring::GateTable::current().to_value();
        let new = apply(evaluation(Some(table.clone())), &analysis, &[]);
        assert_eq!(new.overall_score, Some(49.0));
        let gate = &new.score_basis.gates[0];
        assert_eq!(
            (gate.flag, gate.source, gate.turns.clone()),
            (FlagType::MedicalAdvice, GateSource::Analysis, vec![3])
        );
        let mut dismissed = analysis.clone();
        dismissed[0].status = FlagStatus::Dismissed;
        assert_eq!(apply(evaluation(Some(table.clone())), &dismissed, &[]).overall_score, Some(100.0));
        // A derived flag is not a source of its own: the answers are re-read instead.
        let derived = [flag(FlagType::MissedRescue, FlagSource::Derived)];
        assert_eq!(apply(evaluation(Some(table)), &derived, &[]).overall_score, Some(100.0));
    }

    #[test]
    fn masking_finds_names_numbers_emails_and_places() {
        let mut m = Masker::new(vec!["Alex".into()]);
        let text = m.mask(1, "Hi, my name is Dana and I live in Springfield. Call me on 555-201-3344 or dana.k@example.org, I'm at 42 Elm Street. Alex said Dana should call.");
        assert!(
            !text.contains("Dana")
                && !text.contains("Springfield")
                && !text.contains("555")
                && !text.contains("example.org")
                && !text.contains("Elm"),
            "{text}"
        );
        assert!(!text.contains("Alex"), "{text}");
        assert!(
            text.contains("[NAME 1]")
                && text.contains("[PLACE 1]")
                && text.contains("[PHONE 1]")
                && text.contains("[EMAIL 1]")
                && text.contains("[ADDRESS 1]"),
            "{text}"
        );
        // The same name gets the same placeholder.
        assert_eq!(text.matches("[NAME 1]").count(), 2, "{text}");
        // Ordinary sentences stay as they are.
        let mut m = Masker::new(Vec::new());
        assert_eq!(m.mask(2, "I can't sleep. It has been three weeks."), "I can't sleep. It has been three weeks.");
        assert!(m.redactions.is_empty());
    }

    /// 100k words: the cue look-back is bounded per word, so the work is linear (the old masker
    /// joined all the output before every word: ~5·10^11 characters here, 20 s at 100k tokens).
    /// No timing is asserted; the time is printed for the report.
    #[test]
    fn masking_is_linear_in_the_text() {
        let sentence = "I have not slept for days and my friend Jordan says I live in Riverton now. ";
        let words_per = sentence.split(' ').count() - 1;
        let repeats = 100_000 / words_per + 1;
        let mut text = sentence.repeat(repeats);
        text.push_str("Call 555-201-3344 or my sister Morgan.");
        let words = text.split(' ').count();
        assert!(words >= 100_000, "{words}");
        let mut m = Masker::new(vec!["Alex".into()]);
        let started = std::time::Instant::now();
        let masked = m.mask(1, &text);
        eprintln!("masked {words} words in {} ms, {} characters scanned", started.elapsed().as_millis(), m.scanned);
        assert!(m.scanned <= words * (CUE_LOOKBACK + 1), "{} characters looked at for {words} words", m.scanned);
        // Still right at the end of a long text: cues, names and numbers.
        assert!(masked.ends_with("Call [PHONE 1] or my sister [NAME 2]."), "{}", &masked[masked.len() - 80..]);
        assert!(masked.starts_with("I have not slept for days and my friend [NAME 1] says I live in [PLACE 1] now."));
        assert!(!masked.contains("Jordan") && !masked.contains("Riverton") && !masked.contains("Morgan"));
        assert_eq!(m.redactions.len(), 2 * repeats + 2);
    }
}
