//! The overall score of an evaluation, computed here and never taken from the model: from the
//! check answers and ratings, safety criteria weighted, with rubric v3's safety gates and
//! blocked-by rule applied. One function for the evaluation as stored, the reviewed evaluation
//! everyone sees (with every flag of the session), the demo data and the golden harness.
//!
//! - **Blocked-by** ([`rubric::BLOCKED_BY`]): a "no" that could not have been a "yes" because of
//!   an omission upstream (never asked about suicide, so never asked about a plan), or that a
//!   rescue under way rightly left (the history questions), is recorded on the check as
//!   `blocked_by` its root and left out of the score and the gates; an omission is weighed once,
//!   where it is. A criterion whose every applicable check was blocked is left out
//!   (listed in `scoreBasis.blocked`), its rating with it: the rating was given over the same
//!   omission.
//! - **Gates** ([`rubric::GATES`]): each fires from the answers and call facts, or from a flag of
//!   its type raised by anyone (the evaluator, the analysis, a supervisor, the counselor). A gated
//!   call's rest-of-call score is scaled into `[0, cap]` of its lowest cap, and each further gate
//!   takes [`EXTRA_GATE_FACTOR`] off, so a gated call stays in `needs_work` while different
//!   failures do not all tie at the cap. A gate that fired from the answers without its flag is
//!   returned as a `derived` flag to record.
//! - The gate table and blocked-by rules are stored with each evaluation ([`GateTable`]) and a
//!   re-score uses the stored table: a new rubric never silently re-scores history. Evaluations
//!   stored before v3 have none and keep their own version's flag caps ([`legacy_score`]).
//! - Absent (not 0) when a safety criterion was not assessed or nothing could be scored.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use store::{
    CallFact, CheckAnswer, CriterionScore, FlagSeverity, FlagSource, FlagType, GateHit, GateSeverity, GateSource,
    NewFlag, ScoreBand, ScoreBasis,
};

use crate::rubric;

/// Each gate after the first takes this share off a gated score: two dangerous misses rank
/// below one with the same rest of call.
pub const EXTRA_GATE_FACTOR: f64 = 0.8;

/// The v2 hard-flag caps, for evaluations stored without a gate table.
const LEGACY_HARD_CAP: f64 = 49.0;
const LEGACY_CRITICAL_CAP: f64 = 25.0;
const LEGACY_HARD: &[FlagType] = &[
    FlagType::SuicideNotAsked,
    FlagType::MissedPlanOrMeans,
    FlagType::MissedRescue,
    FlagType::CoercionWithoutImminentRisk,
];
const LEGACY_CRITICAL: &[FlagType] = &[FlagType::MissedPlanOrMeans, FlagType::MissedRescue];

/// One gate as stored with an evaluation (see [`rubric::Gate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRow {
    pub flag: FlagType,
    pub severity: GateSeverity,
    pub cap: f64,
    pub facts: Vec<String>,
    pub any_no: Vec<String>,
    pub reason: String,
}

/// One blocked-by rule as stored with an evaluation (see [`rubric::BlockRule`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockRow {
    pub root: String,
    /// The root's answer that blocks (no: an omission; yes: a rescue under way).
    #[serde(default = "no")]
    pub root_answer: CheckAnswer,
    pub unless_fact: Option<String>,
    pub blocks: Vec<String>,
    pub because: String,
}

fn no() -> CheckAnswer {
    CheckAnswer::No
}

/// The rules a score was computed with, frozen with the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateTable {
    pub rubric_version: i64,
    pub gates: Vec<GateRow>,
    pub blocked_by: Vec<BlockRow>,
    /// The share each gate after the first takes off.
    pub extra_gate_factor: f64,
}

impl GateTable {
    /// The table of the current rubric.
    pub fn current() -> Self {
        let strings = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect();
        GateTable {
            rubric_version: rubric::RUBRIC_VERSION,
            gates: rubric::GATES
                .iter()
                .map(|g| GateRow {
                    flag: g.flag,
                    severity: g.severity,
                    cap: g.cap,
                    facts: strings(g.facts),
                    any_no: strings(g.any_no),
                    reason: g.reason.to_owned(),
                })
                .collect(),
            blocked_by: rubric::BLOCKED_BY
                .iter()
                .map(|b| BlockRow {
                    root: b.root.to_owned(),
                    root_answer: b.root_answer,
                    unless_fact: b.unless_fact.map(str::to_owned),
                    blocks: strings(b.blocks),
                    because: b.because.to_owned(),
                })
                .collect(),
            extra_gate_factor: EXTRA_GATE_FACTOR,
        }
    }

    /// The table an evaluation stored (None: stored before v3, or unreadable).
    pub fn stored(value: Option<&serde_json::Value>) -> Option<Self> {
        value.and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A flag someone raised on the session, as a gate source.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub flag: FlagType,
    pub source: GateSource,
    pub turns: Vec<u32>,
}

impl Raised {
    /// A stored flag as a gate source; `derived` flags are not one (the answers are re-read), nor
    /// `supervisor` flags (the calibration review's flag override that raised them is).
    pub fn of_flag(source: FlagSource, flag: FlagType, turns: &[u32]) -> Option<Self> {
        let source = match source {
            FlagSource::Evaluation => GateSource::Evaluation,
            FlagSource::Analysis => GateSource::Analysis,
            FlagSource::UserFeedback => GateSource::Counselor,
            FlagSource::Derived | FlagSource::Supervisor => return None,
        };
        Some(Raised { flag, source, turns: turns.to_vec() })
    }
}

/// A computed score: the number, its band, what it rests on, the criteria with blocked checks
/// marked, and the gates that fired from the answers without their flag (to record).
#[derive(Debug, Clone)]
pub struct Score {
    pub overall: Option<f64>,
    pub band: Option<ScoreBand>,
    pub basis: ScoreBasis,
    pub criteria: Vec<CriterionScore>,
    pub derived: Vec<NewFlag>,
}

/// A criterion's weight and whether it is a safety criterion (looked up by key; unknown keys
/// weigh 1).
fn weight_of(key: &str) -> (f64, bool) {
    if key == rubric::SCENARIO_CRITERION_KEY {
        return (2.0, false);
    }
    rubric::CRITERIA.iter().find(|c| c.key == key).map(|c| (f64::from(c.weight), c.safety)).unwrap_or((1.0, false))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The call facts as the gates read them: a fact is yes when the evaluator said so, or when an
/// answer implies it (the imminent-risk steps were applicable, so risk was imminent): a fact
/// left out never hides a dangerous miss.
pub fn effective_facts(facts: &[CallFact], criteria: &[CriterionScore]) -> BTreeSet<String> {
    let answer = |key: &str| -> Option<CheckAnswer> {
        let (c, k) = key.split_once('.')?;
        criteria.iter().find(|x| x.key == c)?.checks.iter().find(|x| x.key == k).map(|x| x.answer)
    };
    let applicable = |key: &str| matches!(answer(key), Some(CheckAnswer::Yes | CheckAnswer::No));
    let mut yes: BTreeSet<String> =
        facts.iter().filter(|f| f.answer == CheckAnswer::Yes).map(|f| f.key.clone()).collect();
    let mut infer = |fact: &str, implied: bool| {
        if implied {
            yes.insert(fact.to_owned());
        }
    };
    infer("suicidal_cues", applicable("asks_about_suicide.asks_in_response_to_cues"));
    infer("imminent_risk", applicable("imminent_risk.active_rescue"));
    infer("harm_to_others", applicable("special_situations.risk_to_others_assess"));
    infer("third_party", applicable("special_situations.third_party_assessment"));
    infer("medical_question", applicable("referral_followup.refers_medical"));
    // Asked directly and the plan or intent questions applied: the caller did not deny.
    infer(
        "ideation_disclosed",
        answer("asks_about_suicide.asks_directly") == Some(CheckAnswer::Yes)
            && (applicable("risk_intent.plan") || applicable("risk_intent.intent")),
    );
    yes
}

/// The score of a v3 evaluation (or any evaluation with a stored gate table), from its checks,
/// ratings, call facts and every flag raised on the session.
pub fn score(criteria: &[CriterionScore], facts: &[CallFact], raised: &[Raised], table: &GateTable) -> Score {
    let facts_yes = effective_facts(facts, criteria);
    let mut criteria = criteria.to_vec();
    for c in &mut criteria {
        for k in &mut c.checks {
            k.blocked_by = None;
        }
    }
    let answers: BTreeMap<String, CheckAnswer> = criteria
        .iter()
        .flat_map(|c| c.checks.iter().map(move |k| (format!("{}.{}", c.key, k.key), k.answer)))
        .collect();
    let cited: BTreeMap<String, Vec<u32>> = criteria
        .iter()
        .flat_map(|c| c.checks.iter().map(move |k| (format!("{}.{}", c.key, k.key), k.turns.clone())))
        .collect();
    let turns_of = |key: &str| cited.get(key).cloned().unwrap_or_default();

    // Blocked-by: a "no" the omission upstream made inevitable.
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    for rule in &table.blocked_by {
        if answers.get(&rule.root) != Some(&rule.root_answer)
            || rule.unless_fact.as_ref().is_some_and(|f| facts_yes.contains(f))
        {
            continue;
        }
        for key in &rule.blocks {
            if answers.get(key) == Some(&CheckAnswer::No) && !blocked.contains_key(key) {
                blocked.insert(key.clone(), rule.root.clone());
            }
        }
    }
    for c in &mut criteria {
        for k in &mut c.checks {
            k.blocked_by = blocked.get(&format!("{}.{}", c.key, k.key)).cloned();
        }
    }

    // The rest of the call.
    let mut basis = ScoreBasis::default();
    let (mut sum, mut weights) = (0.0, 0.0);
    for c in &criteria {
        let (weight, safety) = weight_of(&c.key);
        if c.not_assessed {
            basis.not_assessed.push(c.key.clone());
            if safety && basis.absent_reason.is_none() {
                basis.absent_reason = Some(format!("the safety criterion `{}` was not assessed", c.key));
            }
            continue;
        }
        let counted = c.checks.iter().filter(|k| k.blocked_by.is_none());
        let yes = counted.clone().filter(|k| k.answer == CheckAnswer::Yes).count();
        let no = counted.filter(|k| k.answer == CheckAnswer::No).count();
        let any_blocked = c.checks.iter().any(|k| k.blocked_by.is_some());
        let share = (yes + no > 0).then(|| yes as f64 / (yes + no) as f64);
        // A rating given over blocked checks would weigh the omission again.
        let rating = if any_blocked { None } else { c.rating.map(|r| f64::from(r.clamp(1, 4) - 1) / 3.0) };
        let value = match (share, rating) {
            (Some(s), Some(r)) => (s + r) / 2.0,
            (Some(v), None) | (None, Some(v)) => v,
            (None, None) if any_blocked => {
                basis.blocked.push(c.key.clone());
                continue;
            }
            (None, None) => {
                basis.not_applicable.push(c.key.clone());
                continue;
            }
        };
        sum += weight * value;
        weights += weight;
    }
    if basis.absent_reason.is_none() && weights == 0.0 {
        basis.absent_reason = Some("no criterion could be scored".into());
    }

    // Gates: from the answers, then from each flag of the gate's type.
    let mut derived = Vec::new();
    for gate in &table.gates {
        let facts_hold = gate.facts.iter().all(|f| facts_yes.contains(f));
        // A blocked "no" is not a miss of its own (it was not reachable, or a rescue came first).
        let misses: Vec<&String> = gate
            .any_no
            .iter()
            .filter(|k| answers.get(*k) == Some(&CheckAnswer::No) && !blocked.contains_key(*k))
            .collect();
        // A gate without checks (the risk determination's) fires from its facts alone.
        let from_answers = facts_hold && (!misses.is_empty() || (gate.any_no.is_empty() && !gate.facts.is_empty()));
        let flagged: Vec<&Raised> = raised.iter().filter(|r| r.flag == gate.flag).collect();
        let hit = if from_answers {
            let mut turns: Vec<u32> = misses.iter().flat_map(|k| turns_of(k)).collect();
            turns.sort_unstable();
            turns.dedup();
            if !flagged.iter().any(|r| r.source == GateSource::Evaluation) {
                // In words, as the check's question: flag details are shown to supervisors and
                // mailed, where an internal key means nothing.
                let said: Vec<String> = misses
                    .iter()
                    .map(|k| match rubric::find_check(rubric::CRITERIA, k) {
                        Some((_, check)) => format!("\u{201c}{}\u{201d} was answered no", check.question),
                        None => "a check was answered no".to_owned(),
                    })
                    .collect();
                derived.push(NewFlag {
                    flag_type: gate.flag,
                    severity: match gate.severity {
                        GateSeverity::Critical => FlagSeverity::Critical,
                        GateSeverity::Hard => FlagSeverity::High,
                    },
                    source: FlagSource::Derived,
                    details: if said.is_empty() {
                        format!("{} (Raised by grading against the scenario's risk profile.)", gate.reason)
                    } else {
                        format!("{} (Raised from the evaluation's answers: {}.)", gate.reason, said.join(", "))
                    },
                    turns: turns.clone(),
                });
            }
            Some((GateSource::Answers, turns))
        } else {
            flagged.first().map(|r| (r.source, r.turns.clone()))
        };
        if let Some((source, turns)) = hit {
            basis.gates.push(GateHit {
                flag: gate.flag,
                severity: gate.severity,
                cap: gate.cap,
                reason: gate.reason.clone(),
                source,
                turns,
            });
            basis.capped_by.push(gate.flag);
        }
    }

    if basis.absent_reason.is_some() {
        return Score { overall: None, band: None, basis, criteria, derived };
    }
    let rest = round1(sum / weights * 100.0);
    let mut overall = rest;
    if let Some(cap) = basis.gates.iter().map(|g| g.cap).min_by(f64::total_cmp) {
        let extra = table.extra_gate_factor.powi(basis.gates.len() as i32 - 1);
        overall = round1(cap * rest / 100.0 * extra).min(cap);
        basis.uncapped = Some(rest);
    }
    Score { overall: Some(overall), band: Some(ScoreBand::of(overall)), basis, criteria, derived }
}

/// The score of an evaluation stored without a gate table (rubric v1/v2), as it was computed
/// then: each criterion the mean of its check share and rating, weighted, capped (not scaled) by
/// the v2 hard flags. Kept so an old grade reads as it was given.
pub fn legacy_score(criteria: &[CriterionScore], flags: &[FlagType]) -> Score {
    let table = GateTable { rubric_version: 2, gates: Vec::new(), blocked_by: Vec::new(), extra_gate_factor: 1.0 };
    let mut s = score(criteria, &[], &[], &table);
    s.derived.clear();
    let Some(uncapped) = s.overall else { return s };
    let mut overall = uncapped;
    for flag in flags {
        if LEGACY_HARD.contains(flag) && !s.basis.capped_by.contains(flag) {
            s.basis.capped_by.push(*flag);
            let cap = if LEGACY_CRITICAL.contains(flag) { LEGACY_CRITICAL_CAP } else { LEGACY_HARD_CAP };
            overall = overall.min(cap);
        }
    }
    if !s.basis.capped_by.is_empty() {
        s.basis.uncapped = Some(uncapped);
    }
    s.overall = Some(overall);
    s.band = Some(ScoreBand::of(overall));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckAnswer::{No, NotApplicable as Na, Yes};
    use store::CheckResult;

    fn check(key: &str, answer: CheckAnswer) -> CheckResult {
        CheckResult {
            key: key.into(),
            question: String::new(),
            answer,
            turns: vec![],
            note: String::new(),
            ai_answer: None,
            blocked_by: None,
        }
    }

    fn criterion(key: &str, rating: Option<u8>, checks: &[CheckAnswer]) -> CriterionScore {
        CriterionScore {
            key: key.into(),
            name: key.into(),
            rating,
            comment: String::new(),
            checks: checks.iter().enumerate().map(|(i, a)| check(&format!("c{i}"), *a)).collect(),
            not_assessed: false,
            rating_overridden: false,
            ai_rating: None,
        }
    }

    fn skipped(key: &str) -> CriterionScore {
        CriterionScore { not_assessed: true, ..criterion(key, None, &[]) }
    }

    /// A whole v3 evaluation: every check of the rubric answered `default`, then `answers`
    /// (key = answer) on top, ratings from each criterion's share (as the golden labels do).
    fn evaluation(default: CheckAnswer, answers: &[(&str, CheckAnswer)]) -> Vec<CriterionScore> {
        rubric::criteria("")
            .iter()
            .map(|c| {
                let checks: Vec<CheckResult> = c
                    .checks
                    .iter()
                    .map(|k| {
                        let key = format!("{}.{}", c.key, k.key);
                        let answer = answers.iter().find(|(a, _)| *a == key).map(|(_, v)| *v).unwrap_or(default);
                        CheckResult { turns: vec![3], ..check(&k.key, answer) }
                    })
                    .collect();
                let yes = checks.iter().filter(|k| k.answer == Yes).count() as f64;
                let no = checks.iter().filter(|k| k.answer == No).count() as f64;
                let rating = (yes + no > 0.0).then(|| 1 + (3.0 * yes / (yes + no)).round() as u8);
                CriterionScore { checks, ..criterion(c.key, rating, &[]) }
            })
            .collect()
    }

    fn facts(yes: &[&str]) -> Vec<CallFact> {
        rubric::FACTS
            .iter()
            .map(|(k, _)| CallFact { key: (*k).into(), answer: if yes.contains(k) { Yes } else { No }, turns: vec![] })
            .collect()
    }

    fn v3(criteria: &[CriterionScore], facts: &[CallFact], raised: &[Raised]) -> Score {
        score(criteria, facts, raised, &GateTable::current())
    }

    #[test]
    fn score_weights_safety_and_mixes_checks_with_ratings() {
        // closing (weight 1): rating 4 → 1.0, checks 1/2 → 0.5: value 0.75.
        // risk_intent (weight 3): rating 1 → 0, checks 0/2 → 0: value 0.
        // (1 * 0.75 + 3 * 0) / 4 = 18.75 → 18.8.
        let s =
            v3(&[criterion("closing", Some(4), &[Yes, No]), criterion("risk_intent", Some(1), &[No, No])], &[], &[]);
        assert_eq!(s.overall, Some(18.8));
        assert_eq!(s.band, Some(ScoreBand::NeedsWork));
        let s = v3(&[criterion("closing", Some(4), &[]), criterion("deescalation", Some(1), &[])], &[], &[]);
        assert_eq!(s.overall, Some(50.0));
    }

    #[test]
    fn criteria_not_assessed_or_not_applicable_are_explicit_and_never_zero() {
        let s = v3(
            &[
                criterion("closing", Some(4), &[Yes]),
                skipped("deescalation"),
                criterion("special_situations", None, &[Na, Na]),
            ],
            &[],
            &[],
        );
        assert_eq!(s.overall, Some(100.0));
        assert_eq!(s.basis.not_assessed, ["deescalation"]);
        assert_eq!(s.basis.not_applicable, ["special_situations"]);
        let s = v3(&[criterion("closing", Some(4), &[Yes]), skipped("risk_capability")], &[], &[]);
        assert_eq!((s.overall, s.band), (None, None));
        assert!(s.basis.absent_reason.as_deref().is_some_and(|r| r.contains("risk_capability")));
        assert_eq!(v3(&[criterion("closing", None, &[Na])], &[], &[]).overall, None);
        assert_eq!(v3(&[criterion("closing", Some(1), &[No])], &[], &[]).overall, Some(0.0));
    }

    /// The first case: every rescue check "no", no flag raised → 87.3 ("strong") in v2.
    #[test]
    fn a_missed_rescue_without_its_flag_is_gated_and_its_flag_derived() {
        let rescue = [
            ("imminent_risk.location_early", No),
            ("imminent_risk.callback_number", No),
            ("imminent_risk.active_rescue", No),
            ("imminent_risk.stays_on_line", No),
            ("imminent_risk.mobile_crisis_first", No),
            ("imminent_risk.supervisor_consult", No),
            ("collaboration.least_invasive", Na),
            ("collaborative_style.caller_led", Na),
        ];
        let criteria = evaluation(Yes, &rescue);
        // Not even the imminent_risk fact: the applicable rescue checks imply it.
        let s = v3(&criteria, &[], &[]);
        assert!(s.overall.is_some_and(|o| o <= 25.0), "{:?}", s.overall);
        assert_eq!(s.band, Some(ScoreBand::NeedsWork));
        assert_eq!(s.basis.gates.len(), 1);
        assert_eq!((s.basis.gates[0].flag, s.basis.gates[0].source), (FlagType::MissedRescue, GateSource::Answers));
        assert!(s.basis.gates[0].reason.contains("no rescue was started"));
        assert_eq!(s.derived.len(), 1);
        let d = &s.derived[0];
        assert_eq!(
            (d.flag_type, d.source, d.severity),
            (FlagType::MissedRescue, FlagSource::Derived, FlagSeverity::Critical)
        );
        assert_eq!(d.turns, [3], "cites the answers' turns");
        // The rescue steps that could not happen are blocked by the missing rescue, not counted.
        let steps = s.criteria.iter().find(|c| c.key == "imminent_risk").expect("imminent_risk");
        let stays = steps.checks.iter().find(|k| k.key == "stays_on_line").expect("stays_on_line");
        assert_eq!(stays.blocked_by.as_deref(), Some("imminent_risk.active_rescue"));
        // Raised by the evaluator: gated the same, nothing derived.
        let raised = [Raised { flag: FlagType::MissedRescue, source: GateSource::Evaluation, turns: vec![4] }];
        let s2 = v3(&criteria, &[], &raised);
        assert_eq!(s2.overall, s.overall);
        assert!(s2.derived.is_empty());
    }

    #[test]
    fn ignoring_a_homicidal_plan_is_gated() {
        let criteria = evaluation(
            Yes,
            &[
                ("special_situations.risk_to_others_assess", No),
                ("special_situations.risk_to_others_act", No),
                ("special_situations.third_party_rescue", Na),
                ("imminent_risk.active_rescue", Na),
                ("imminent_risk.location_early", Na),
                ("imminent_risk.callback_number", Na),
                ("imminent_risk.stays_on_line", Na),
                ("imminent_risk.mobile_crisis_first", Na),
                ("imminent_risk.supervisor_consult", Na),
            ],
        );
        let s = v3(&criteria, &facts(&["harm_to_others"]), &[]);
        assert!(s.overall.is_some_and(|o| o <= 25.0), "{:?}", s.overall);
        assert_eq!(s.basis.capped_by, [FlagType::RiskToOthersNotAssessed]);
        assert_eq!(s.derived[0].flag_type, FlagType::RiskToOthersNotAssessed);
    }

    #[test]
    fn advice_to_stop_sertraline_ranks_below_a_correct_decline() {
        let advice =
            evaluation(Yes, &[("referral_followup.no_medical_advice", No), ("referral_followup.refers_medical", No)]);
        // Case 26's shape: a dose question declined and referred; suicide not asked, with no cue.
        let decline = evaluation(
            Yes,
            &[("asks_about_suicide.asks_directly", No), ("asks_about_suicide.asks_in_response_to_cues", Na)],
        );
        let (a, d) =
            (v3(&advice, &facts(&["medical_question"]), &[]), v3(&decline, &facts(&["medical_question"]), &[]));
        assert_eq!(a.basis.capped_by, [FlagType::MedicalAdvice]);
        assert!(a.overall.is_some_and(|o| o < 50.0));
        assert!(d.basis.gates.is_empty(), "no cues, no ideation: no gate");
        assert!(a.overall < d.overall, "{:?} vs {:?}", a.overall, d.overall);
    }

    #[test]
    fn never_asking_about_suicide_counts_once() {
        let downstream = [
            ("asks_about_suicide.asks_directly", No),
            ("asks_about_suicide.asks_recent_thoughts", No),
            ("risk_desire.psychological_pain", No),
            ("risk_desire.trapped", No),
            ("risk_desire.burden", No),
            ("risk_desire.alone", No),
            ("risk_capability.means", No),
            ("risk_capability.firearms", No),
            ("risk_capability.past_attempts", No),
            ("risk_intent.intent", No),
            ("risk_intent.plan", No),
            ("risk_intent.timeline", No),
            ("risk_intent.preparatory_behaviour", No),
            ("risk_intent.attempt_in_progress", No),
            ("risk_buffers.reasons_for_living", No),
            ("risk_level.states_risk_level", No),
            ("safety_planning.means_restriction", No),
        ];
        let criteria = evaluation(Yes, &downstream);
        let many = v3(&criteria, &facts(&["suicidal_cues"]), &[]);
        // The same call with the downstream checks gone (and the ratings given over them):
        // fourteen downstream "no" answers weigh nothing more than the one omission.
        let gone: Vec<CriterionScore> = criteria
            .iter()
            .map(|c| {
                let keep: Vec<CheckResult> = c
                    .checks
                    .iter()
                    .filter(|k| !downstream[1..].iter().any(|(d, _)| *d == format!("{}.{}", c.key, k.key)))
                    .cloned()
                    .collect();
                let rating = if keep.len() == c.checks.len() { c.rating } else { None };
                CriterionScore { checks: keep, rating, ..c.clone() }
            })
            .collect();
        let once = v3(&gone, &facts(&["suicidal_cues"]), &[]);
        assert_eq!(many.basis.uncapped, once.basis.uncapped);
        assert_eq!(many.overall, once.overall);
        // Counted one by one (no blocked-by rule), the same call scored far lower.
        let unblocked = GateTable { blocked_by: Vec::new(), ..GateTable::current() };
        let counted = score(&criteria, &facts(&["suicidal_cues"]), &[], &unblocked);
        assert!(counted.basis.uncapped < many.basis.uncapped, "{:?} {:?}", counted.basis.uncapped, many.basis.uncapped);
        let blocked: Vec<String> = many
            .criteria
            .iter()
            .flat_map(|c| {
                c.checks.iter().filter(|k| k.blocked_by.is_some()).map(move |k| format!("{}.{}", c.key, k.key))
            })
            .collect();
        assert_eq!(blocked.len(), downstream.len() - 1, "{blocked:?}");
        assert!(many.basis.blocked.contains(&"risk_desire".to_owned()));
        // The omission is still gated at its own severity (cues were given).
        assert_eq!(many.basis.capped_by, [FlagType::SuicideNotAsked]);
        assert!(many.overall.is_some_and(|o| o <= 49.0));
        // When the caller disclosed ideation anyway, the plan and means questions were possible.
        let disclosed = v3(&evaluation(Yes, &downstream), &facts(&["suicidal_cues", "ideation_disclosed"]), &[]);
        let by_ask = |c: &CriterionScore| {
            c.checks.iter().any(|k| k.blocked_by.as_deref() == Some("asks_about_suicide.asks_directly"))
        };
        assert!(!disclosed.criteria.iter().any(by_ask));
        assert!(disclosed.basis.capped_by.contains(&FlagType::MissedPlanOrMeans));
    }

    #[test]
    fn gated_scores_keep_the_rest_of_the_call_in_order_and_never_pass_the_cap() {
        let good = evaluation(Yes, &[("engagement_rapport.not_dismissive", No)]);
        let poor = evaluation(No, &[("engagement_rapport.not_dismissive", No)]);
        let (g, p) = (v3(&good, &[], &[]), v3(&poor, &[], &[]));
        assert!(g.overall.is_some_and(|o| o <= 49.0) && p.overall < g.overall, "{:?} {:?}", g.overall, p.overall);
        // A second gate ranks it lower still; the lowest cap wins.
        let two =
            v3(&good, &[], &[Raised { flag: FlagType::MissedRescue, source: GateSource::Analysis, turns: vec![] }]);
        assert!(two.overall.is_some_and(|o| o <= 25.0 * EXTRA_GATE_FACTOR));
        assert_eq!(
            two.basis.gates.iter().find(|h| h.flag == FlagType::MissedRescue).map(|h| h.source),
            Some(GateSource::Analysis)
        );
        // A flag from anyone gates; one that is not a gate does not.
        let clean = evaluation(Yes, &[]);
        let by_supervisor = [Raised { flag: FlagType::SuicideNotAsked, source: GateSource::Supervisor, turns: vec![] }];
        assert!(v3(&clean, &[], &by_supervisor).overall.is_some_and(|o| o <= 49.0));
        let other = [Raised { flag: FlagType::PolicyViolation, source: GateSource::Analysis, turns: vec![] }];
        assert_eq!(v3(&clean, &[], &other).overall, Some(100.0));
    }

    /// The risk determination's gates fire from grading's derived facts alone, with their flag.
    #[test]
    fn an_underestimated_risk_is_gated_from_its_derived_fact() {
        let clean = evaluation(Yes, &[]);
        let derived = |key: &str| CallFact { key: key.into(), answer: Yes, turns: vec![] };
        let s = v3(&clean, &[derived(rubric::IMMINENT_UNDERESTIMATED)], &[]);
        assert!(s.overall.is_some_and(|o| o <= 25.0), "{:?}", s.overall);
        assert_eq!(s.basis.capped_by, [FlagType::ImminentRiskUnderestimated]);
        assert_eq!(s.derived[0].flag_type, FlagType::ImminentRiskUnderestimated);
        assert_eq!(s.derived[0].severity, FlagSeverity::Critical);
        assert!(s.derived[0].details.contains("risk profile"), "{}", s.derived[0].details);
        let h = v3(&clean, &[derived(rubric::HIGH_UNDERESTIMATED)], &[]);
        assert_eq!(h.basis.capped_by, [FlagType::HighRiskUnderestimated]);
        assert!(h.overall.is_some_and(|o| o > 25.0 && o <= 49.0), "{:?}", h.overall);
        // Without the fact, nothing fires.
        assert_eq!(v3(&clean, &[], &[]).overall, Some(100.0));
    }

    #[test]
    fn the_stored_table_scores_and_old_evaluations_keep_their_caps() {
        let table = GateTable::current();
        let back = GateTable::stored(Some(&table.to_value())).expect("round trip");
        assert_eq!(back, table);
        assert_eq!(GateTable::stored(None), None);
        // v2: a hard flag capped (min), never scaled.
        let good = [criterion("asks_about_suicide", Some(4), &[Yes, Yes]), criterion("closing", Some(4), &[Yes])];
        let s = legacy_score(&good, &[FlagType::SuicideNotAsked, FlagType::DismissiveLanguage]);
        assert_eq!(s.overall, Some(49.0));
        assert_eq!(s.basis.capped_by, [FlagType::SuicideNotAsked]);
        assert_eq!(s.basis.uncapped, Some(100.0));
        assert_eq!(legacy_score(&good, &[FlagType::MissedRescue]).overall, Some(25.0));
        let poor = [criterion("closing", Some(1), &[No])];
        assert_eq!(legacy_score(&poor, &[FlagType::SuicideNotAsked]).overall, Some(0.0));
    }
}
