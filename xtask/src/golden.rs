//! `cargo xtask eval-golden`: how well does the evaluator agree with human labels, and how well
//! do two labelling passes agree with each other (the ceiling)?
//!
//! Each file in `golden/` is a labelled practice-call transcript in the format of
//! [`admin::calibration::GoldenCase`]: a first labelling pass (`labels`), with the second pass in
//! `golden/second_pass/<id>.json`, labelled without seeing the first; where they disagree the case
//! records the resolution and its reason. The resolved labels are what the evaluator is measured
//! against. For every case this task builds what production would hold — a fresh SQLite store
//! with an account, a counselor, the scenario (if any), a chat session and its turns — and runs
//! the real `admin::evaluation::evaluate_session` against an OpenAI-compatible endpoint, `--runs`
//! times, with the caller persona hidden from the evaluator (production) or shown (`--persona
//! with`), or both to measure the difference.
//!
//! Statistics ([`admin::agreement`]): per check and per criterion, answers compared with
//! not_applicable and skipped as categories (Cohen's kappa, Gwet's AC1, PABAK, bootstrap 95%
//! intervals), applicability agreement, quadratic-weighted kappa for the 1-4 ratings, score-band
//! agreement, flag precision / recall per type with counts; per split (dev / held_out); the two
//! label passes' agreement; run-to-run variance.
//!
//! It is a measurement, not a gate: disagreements exit 0. Only plumbing failures (an evaluation
//! call erroring, an invalid golden file) exit non-zero. `--sim` runs against the in-process
//! OpenAI simulator answering each case with an oracle built from its resolved labels: a plumbing
//! check that must agree perfectly, and says nothing about any model's quality.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use admin::agreement::{self, Answer, BandAgreement, CheckAgreement, FlagAgreement, RatingAgreement};
use admin::calibration::{GoldenCase, GoldenTurn, Labels, Party, Split};
use admin::rubric::{self, NaRule};
use admin::{AppState, Config, Secret};
use anyhow::{Context, Result, anyhow, bail};
use openai_sim::{Rule, Simulator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{
    CheckAnswer, CheckResult, CriterionScore, FlagSource, FlagType, NewSession, NewTurn, NewUser, Role, ScenarioInput,
    ScenarioMode, ScoreBand, SessionKind, SessionStatus, Speaker,
};

pub type Case = GoldenCase;

const USAGE: &str = "usage: cargo xtask eval-golden (--base-url <OpenAI-compatible URL> | --sim) \
[--api-key-env OPENAI_API_KEY] [--model gpt-4o] [--runs K] [--persona without|with|both] [--split all|dev|held_out] \
[--report path.json] [--case <id> ...] [--golden-dir golden]";

/// The safety checks: labelled in every case by both passes, and each needs at least
/// [`MIN_SAFETY_NO`] "no" labels across the set so a miss can be measured.
pub const SAFETY_CHECKS: &[&str] = &[
    "asks_about_suicide.asks_directly",
    "risk_capability.means",
    "risk_capability.firearms",
    "risk_capability.past_attempts",
    "risk_intent.intent",
    "risk_intent.plan",
    "risk_intent.timeline",
    "imminent_risk.active_rescue",
    "collaboration.least_invasive",
    "safety_planning.safety_plan",
    "safety_planning.means_restriction",
];

/// Also labelled in every case: the checks the flags must agree with.
pub const FLAG_LINKED_CHECKS: &[&str] = &[
    "asks_about_suicide.asks_in_response_to_cues",
    "engagement_rapport.not_dismissive",
    "referral_followup.no_medical_advice",
];

/// Flag types rubric v3 added: the set is being relabelled on v3, so their coverage is reported
/// (the flag table's "expected" column), not yet required.
const NEW_IN_V3: &[FlagType] = &[
    FlagType::FirearmsNotAsked,
    FlagType::RiskToOthersNotAssessed,
    FlagType::FalseThreatsOrCoercion,
    FlagType::MissedThirdPartyRescue,
];

const MIN_TURNS: usize = 8;
const MAX_TURNS: usize = 30;
pub const MIN_CASES: usize = 50;
pub const MIN_SAFETY_NO: usize = 10;
pub const MIN_FLAG_POSITIVES: usize = 5;
/// The production default of `TRANSCRIPT_MAX_CHARS`: one case must come near it.
const TRANSCRIPT_LIMIT: usize = 30_000;

const SIM_NOTE: &str = "simulator: plumbing check, not a quality measurement (the simulator answers each case with \
an oracle built from its resolved labels, so agreement must be perfect)";

// ---------------------------------------------------------------------------------------------
// The golden files

/// The second labelling pass of a case (`golden/second_pass/<id>.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondPass {
    pub id: String,
    pub labels: Labels,
}

/// A case with its second pass and the labels they resolve to.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub path: PathBuf,
    pub case: Case,
    pub second: Option<Labels>,
    pub resolved: Labels,
}

fn flag_key(f: FlagType) -> String {
    format!("flag:{}", f.as_str())
}

fn raised_str(b: bool) -> &'static str {
    if b { "raised" } else { "not_raised" }
}

/// The resolved labels: where both passes agree, that; where they differ, the case's resolution.
/// A check labelled by one pass only is taken from it. Answers the problems found too.
pub fn resolve(case: &Case, second: Option<&Labels>) -> (Labels, Vec<String>) {
    let mut problems = Vec::new();
    // A single-pass case is measured against its one pass; the label ceiling counts only cases
    // with a second pass.
    let Some(second) = second else {
        return (case.labels.clone(), Vec::new());
    };
    let resolution = |key: &str| case.resolutions.iter().find(|r| r.key == key);
    let mut used = BTreeSet::new();
    let mut checks = BTreeMap::new();
    let keys: BTreeSet<&String> = case.labels.checks.keys().chain(second.checks.keys()).collect();
    for key in keys {
        let (a, b) = (case.labels.checks.get(key), second.checks.get(key));
        let value = match (a, b) {
            (Some(a), Some(b)) if a == b => *a,
            (Some(a), Some(b)) => match resolution(key) {
                Some(r) if r.first == a.as_str() && r.second == b.as_str() && !r.reason.trim().is_empty() => {
                    used.insert(key.clone());
                    match r.resolved.parse::<CheckAnswer>() {
                        Ok(v) => v,
                        Err(_) => {
                            problems.push(format!("resolution of `{key}`: `{}` is not an answer", r.resolved));
                            *a
                        }
                    }
                }
                Some(_) => {
                    problems.push(format!(
                        "resolution of `{key}` does not match the passes ({} / {}) or has no reason",
                        a.as_str(),
                        b.as_str()
                    ));
                    *a
                }
                None => {
                    problems.push(format!(
                        "passes disagree on `{key}` ({} / {}) with no resolution",
                        a.as_str(),
                        b.as_str()
                    ));
                    *a
                }
            },
            (Some(v), None) | (None, Some(v)) => *v,
            (None, None) => continue,
        };
        checks.insert(key.clone(), value);
    }
    // Facts: like checks, keyed `fact:<key>` in resolutions.
    let mut facts = BTreeMap::new();
    let fact_keys: BTreeSet<&String> = case.labels.facts.keys().chain(second.facts.keys()).collect();
    for key in fact_keys {
        let rkey = format!("fact:{key}");
        let value = match (case.labels.facts.get(key), second.facts.get(key)) {
            (Some(a), Some(b)) if a != b => match resolution(&rkey) {
                Some(r) if r.first == a.as_str() && r.second == b.as_str() && !r.reason.trim().is_empty() => {
                    used.insert(rkey.clone());
                    r.resolved.parse::<CheckAnswer>().unwrap_or(*a)
                }
                _ => {
                    problems.push(format!("passes disagree on `{rkey}` with no matching resolution"));
                    *a
                }
            },
            (Some(v), _) | (None, Some(v)) => *v,
            (None, None) => continue,
        };
        facts.insert(key.clone(), value);
    }
    let mut flags = Vec::new();
    for (flag, _) in rubric::EVALUATION_FLAGS {
        let (a, b) = (case.labels.flags.contains(flag), second.flags.contains(flag));
        let key = flag_key(*flag);
        let raised = if a == b {
            a
        } else {
            match resolution(&key) {
                Some(r) if r.first == raised_str(a) && r.second == raised_str(b) && !r.reason.trim().is_empty() => {
                    used.insert(key.clone());
                    r.resolved == "raised"
                }
                _ => {
                    problems.push(format!("passes disagree on `{key}` with no matching resolution"));
                    a
                }
            }
        };
        if raised {
            flags.push(*flag);
        }
    }
    for r in &case.resolutions {
        if !used.contains(&r.key) {
            problems.push(format!("resolution of `{}` matches no disagreement", r.key));
        }
    }
    (Labels { checks, facts, flags }, problems)
}

/// Reads every `*.json` in `dir` (sorted by name) and its second pass.
pub fn load_cases(dir: &Path) -> Result<Vec<Labelled>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        // The ordering set lives beside the cases.
        .filter(|path| path.file_name().is_none_or(|n| n != "ordering.json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let case: Case = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            let second_path = dir.join("second_pass").join(path.file_name().context("file name")?);
            let second = match std::fs::read_to_string(&second_path) {
                Ok(text) => {
                    let pass: SecondPass =
                        serde_json::from_str(&text).with_context(|| format!("parsing {}", second_path.display()))?;
                    if pass.id != case.id {
                        bail!("{}: id `{}` is not `{}`", second_path.display(), pass.id, case.id);
                    }
                    Some(pass.labels)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("reading {}", second_path.display())),
            };
            let (resolved, _) = resolve(&case, second.as_ref());
            Ok(Labelled { path, case, second, resolved })
        })
        .collect()
}

/// The numbered transcript length the evaluator would get.
fn transcript_chars(case: &Case) -> usize {
    case.expanded_turns()
        .iter()
        .enumerate()
        .map(|(i, t)| format!("[{}] Counselor: {}\n", i + 1, t.text.trim()).len())
        .sum()
}

/// What is wrong with one pass of labels against the rubric's N/A rules and the flag rules.
pub fn validate_labels(labels: &Labels, guidance: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let criteria = rubric::criteria(guidance);
    let get = |key: &str| labels.checks.get(key).copied();
    use CheckAnswer::{No, NotApplicable as Na, Yes};
    for (key, answer) in &labels.checks {
        let Some((_, check)) = rubric::find_check(&criteria, key) else {
            let hint = if key.starts_with("scenario_goals.") { " (the guidance has fewer goals)" } else { "" };
            problems.push(format!("unknown check `{key}`{hint}"));
            continue;
        };
        if *answer != Na {
            continue;
        }
        let asked = get("asks_about_suicide.asks_directly");
        let rule_problem = match check.na {
            NaRule::Never => Some("is never not_applicable".to_owned()),
            NaRule::DeniedAfterAsk | NaRule::DeniedNoGun if asked != Some(Yes) => {
                Some("is not_applicable only after a direct ask (asks_directly = yes) the caller denied".into())
            }
            NaRule::DeniedNoGun if labels.facts.get("gun_in_situation") == Some(&Yes) => {
                Some("is not_applicable only when no gun is part of the caller's situation (fact gun_in_situation = yes)".into())
            }
            NaRule::Imminent if get("imminent_risk.active_rescue") == Some(Na) => {
                Some("is not_applicable only when risk was imminent (imminent_risk.active_rescue applies)".into())
            }
            NaRule::NotAsked if asked == Some(Yes) => Some("is not_applicable only when suicide was never raised".into()),
            NaRule::NoMeans if !matches!(get("risk_capability.means"), Some(Yes) | Some(Na)) => {
                Some("is not_applicable only when means were asked about (risk_capability.means = yes / not_applicable)".into())
            }
            NaRule::NoPlanNeeded
                if asked != Some(Yes)
                    || ["special_situations.abuser_current_safety", "special_situations.risk_to_others_assess"]
                        .iter()
                        .any(|k| matches!(get(k), Some(Yes) | Some(No))) =>
            {
                Some("is not_applicable only when the caller denied suicidal thoughts after a direct ask and no abuse or risk to others came up".into())
            }
            _ => None,
        };
        if let Some(p) = rule_problem {
            problems.push(format!("`{key}` {p}"));
        }
    }
    // Denied after a direct ask: then no check with that rule can be a "no" (the caller's denial
    // made them not applicable, not missed).
    let denied: Vec<&String> = labels
        .checks
        .iter()
        .filter(|(k, a)| {
            **a == Na && rubric::find_check(&criteria, k).is_some_and(|(_, c)| c.na == NaRule::DeniedAfterAsk)
        })
        .map(|(k, _)| k)
        .collect();
    if !denied.is_empty() {
        for (k, a) in &labels.checks {
            if *a == No && rubric::find_check(&criteria, k).is_some_and(|(_, c)| c.na == NaRule::DeniedAfterAsk) {
                problems.push(format!(
                    "`{k}` = no, but `{}` = not_applicable says the caller denied suicidal thoughts",
                    denied[0]
                ));
            }
        }
    }
    // Imminent or not: least_invasive is N/A exactly when risk was imminent, the imminent-risk
    // steps exactly when it was not.
    if let (Some(li), Some(ar)) = (get("collaboration.least_invasive"), get("imminent_risk.active_rescue")) {
        if (li == Na) == (ar == Na) {
            problems.push("exactly one of `collaboration.least_invasive` (N/A when imminent) and `imminent_risk.active_rescue` (N/A when not) is not_applicable".into());
        }
        for k in ["imminent_risk.location_early", "imminent_risk.callback_number", "imminent_risk.supervisor_consult"] {
            if get(k).is_some_and(|a| (a == Na) != (ar == Na)) {
                problems.push(format!("`{k}` is not_applicable exactly when `imminent_risk.active_rescue` is"));
            }
        }
        // v3: imminent risk with no rescue started is a "no" for staying on the line (the
        // counselor caused the gap); not imminent, not applicable.
        for k in ["imminent_risk.stays_on_line", "imminent_risk.mobile_crisis_first"] {
            if ar != Na && k == "imminent_risk.stays_on_line" && get(k) == Some(Na) {
                problems.push(format!("`{k}` is not_applicable only when risk was not imminent"));
            }
            if ar == Na && get(k).is_some_and(|a| a != Na) {
                problems.push(format!("`{k}` must be not_applicable: risk was not imminent"));
            }
        }
    }
    for (key, answer) in &labels.facts {
        if !rubric::FACTS.iter().any(|(k, _)| k == key) {
            problems.push(format!("unknown fact `{key}`"));
        }
        if *answer == Na {
            problems.push(format!("fact `{key}` is yes or no"));
        }
    }
    if let Some(plan) = get("safety_planning.safety_plan") {
        for k in [
            "safety_planning.warning_signs",
            "safety_planning.coping",
            "safety_planning.people",
            "safety_planning.professionals",
            "closing.summarizes_plan",
            "closing.checks_agreement",
        ] {
            if get(k).is_some_and(|a| (a == Na) != (plan == Na)) {
                problems.push(format!("`{k}` is not_applicable exactly when `safety_planning.safety_plan` is"));
            }
        }
    }
    // v3: means restriction may apply when the caller's own means do not (means to harm someone
    // else, a third party's means), so `means` N/A no longer forces it N/A; means never asked
    // about (`means` = no) still forbids N/A (the NoMeans rule above).
    // The flags and the gates tell the same story: with the facts labelled (v3 cases), exactly
    // the gates that fire from the labels are flagged. Cases labelled before v3 carry no facts;
    // for them the harness reports gate recall instead of refusing the set.
    if !labels.facts.is_empty() {
        let missing: Vec<&str> =
            rubric::FACTS.iter().map(|(k, _)| *k).filter(|k| !labels.facts.contains_key(*k)).collect();
        if !missing.is_empty() {
            problems.push(format!("facts not labelled: {}", missing.join(", ")));
        }
        let fired = gates_from_labels(labels, guidance);
        // The agreed v3 table has no rescue-first rule (`rubric::BLOCKED_BY`'s last): a flag it
        // would fire (firearms not asked during a rescue) is accepted, not required.
        let mut agreed = admin::scoring::GateTable::current();
        agreed.blocked_by.retain(|b| b.root_answer == CheckAnswer::No);
        let agreed_fired = gates_with(labels, guidance, &agreed);
        for flag in &fired {
            if !labels.flags.contains(flag) {
                problems.push(format!("the labels fire the gate `{}`: flag it", flag.as_str()));
            }
        }
        for flag in &labels.flags {
            if !fired.contains(flag) && !agreed_fired.contains(flag) {
                problems
                    .push(format!("flag `{}` is not fired by the labels (its gate's facts and checks)", flag.as_str()));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for flag in &labels.flags {
        if !rubric::EVALUATION_FLAGS.iter().any(|(f, _)| f == flag) {
            problems.push(format!("flag `{}` is not one the evaluation raises", flag.as_str()));
        }
        if !seen.insert(flag.as_str()) {
            problems.push(format!("flag `{}` listed twice", flag.as_str()));
        }
    }
    problems
}

/// The gates that fire from a pass of labels alone (answers and facts; no flags), as production
/// scores them.
pub fn gates_from_labels(labels: &Labels, guidance: &str) -> Vec<FlagType> {
    gates_with(labels, guidance, &admin::scoring::GateTable::current())
}

fn gates_with(labels: &Labels, guidance: &str, table: &admin::scoring::GateTable) -> Vec<FlagType> {
    let s = admin::scoring::score(&label_criteria(labels, guidance), &labels.call_facts(), &[], table);
    s.basis.gates.iter().map(|g| g.flag).collect()
}

/// The reference score of a case: its resolved labels' checks, derived ratings, facts and
/// flags (as the evaluator's own), through the production scoring. Unlabelled checks are left
/// out (neither yes nor no), as a skipped check is.
pub fn label_score(l: &Labelled) -> admin::scoring::Score {
    let raised: Vec<admin::scoring::Raised> = l
        .resolved
        .flags
        .iter()
        .map(|f| admin::scoring::Raised { flag: *f, source: store::GateSource::Evaluation, turns: Vec::new() })
        .collect();
    admin::scoring::score(
        &label_criteria(&l.resolved, l.case.guidance()),
        &l.resolved.call_facts(),
        &raised,
        &admin::scoring::GateTable::current(),
    )
}

/// What is wrong with one case (empty: nothing). `file_stem` must equal the case id.
pub fn validate_case(l: &Labelled, file_stem: &str) -> Vec<String> {
    let case = &l.case;
    let mut problems = Vec::new();
    if case.id.trim().is_empty() || case.id != file_stem {
        problems.push(format!("id `{}` must be the file name without .json (`{file_stem}`)", case.id));
    }
    if case.title.trim().is_empty() {
        problems.push("title is empty".into());
    }
    if let Some(s) = &case.scenario
        && (s.title.trim().is_empty() || s.title.chars().count() > 200 || s.prompt.trim().is_empty())
    {
        problems.push("scenario needs a title (1-200 characters) and a prompt".into());
    }
    if !(MIN_TURNS..=MAX_TURNS).contains(&case.turns.len()) {
        problems.push(format!("{} turns; a case has {MIN_TURNS} to {MAX_TURNS}", case.turns.len()));
    }
    for (i, turn) in case.turns.iter().enumerate() {
        if turn.text.trim().is_empty() {
            problems.push(format!("turn {} is empty", i + 1));
        }
    }
    for party in [Party::Counselor, Party::Caller] {
        if !case.turns.iter().any(|t| t.speaker == party) {
            problems.push(format!("no {party:?} turn"));
        }
    }
    if transcript_chars(case) > TRANSCRIPT_LIMIT {
        problems.push(format!(
            "the transcript ({} characters) is past the {TRANSCRIPT_LIMIT} limit",
            transcript_chars(case)
        ));
    }
    if case.notes.trim().is_empty() {
        problems.push("notes are empty: say why the labels are what they are".into());
    }
    let (_, resolve_problems) = resolve(case, l.second.as_ref());
    problems.extend(resolve_problems);
    let passes =
        [("first pass", Some(&case.labels)), ("second pass", l.second.as_ref()), ("resolved", Some(&l.resolved))];
    for (name, labels) in passes {
        let Some(labels) = labels else { continue };
        for key in SAFETY_CHECKS.iter().chain(FLAG_LINKED_CHECKS) {
            if !labels.checks.contains_key(*key) {
                problems.push(format!("{name}: required check `{key}` is not labelled"));
            }
        }
        let found = validate_labels(labels, case.guidance());
        // A blind second pass may break a rule where it disagreed with the first and the
        // disagreement was resolved (the resolved labels are held to every rule); elsewhere not.
        let resolved_keys: Vec<&str> = case.resolutions.iter().map(|r| r.key.as_str()).collect();
        let excused = |p: &str| name == "second pass" && resolved_keys.iter().any(|k| p.starts_with(&format!("`{k}`")));
        problems.extend(found.into_iter().filter(|p| !excused(p)).map(|p| format!("{name}: {p}")));
    }
    problems
}

/// Problems with the set as a whole: size, coverage of every safety check and flag, the splits.
pub fn validate_set(cases: &[Labelled]) -> Vec<String> {
    let mut problems = Vec::new();
    for l in cases {
        let stem = l.path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        problems.extend(validate_case(l, stem).into_iter().map(|p| format!("{}: {p}", l.path.display())));
    }
    if cases.len() < MIN_CASES {
        problems.push(format!("{} cases; the set needs at least {MIN_CASES}", cases.len()));
    }
    let ids: BTreeSet<&str> = cases.iter().map(|l| l.case.id.as_str()).collect();
    if ids.len() != cases.len() {
        problems.push("case ids are not unique".into());
    }
    for key in SAFETY_CHECKS {
        let no = cases.iter().filter(|l| l.resolved.checks.get(*key) == Some(&CheckAnswer::No)).count();
        if no < MIN_SAFETY_NO {
            problems.push(format!("safety check `{key}` has {no} \"no\" labels; the set needs {MIN_SAFETY_NO}"));
        }
    }
    for (flag, _) in rubric::EVALUATION_FLAGS.iter().filter(|(f, _)| !NEW_IN_V3.contains(f)) {
        let n = cases.iter().filter(|l| l.resolved.flags.contains(flag)).count();
        if n < MIN_FLAG_POSITIVES {
            problems
                .push(format!("flag `{}` is expected in {n} cases; the set needs {MIN_FLAG_POSITIVES}", flag.as_str()));
        }
    }
    problems.extend(validate_v2_coverage(cases));
    if !cases.iter().any(|l| l.resolved.flags.is_empty()) {
        problems.push("no case expects no flags (false positives would go unmeasured)".into());
    }
    let held_out = cases.iter().filter(|l| l.case.split == Split::HeldOut).count();
    if held_out * 4 < cases.len() {
        problems.push(format!("{held_out} held-out cases; at least a quarter of the set is held out"));
    }
    if !cases.iter().any(|l| transcript_chars(&l.case) * 10 >= TRANSCRIPT_LIMIT * 9) {
        problems.push(format!("no case comes within 10% of the {TRANSCRIPT_LIMIT}-character truncation limit"));
    }
    problems
}

/// Golden set v2's coverage (issue 21): every case labels every check in two passes; every
/// check has at least [`MIN_CHECK_NO`] "no" labels across the set; the held-out split has at
/// least [`MIN_FLAG_POSITIVES`] positives of every flag and [`MIN_HELD_OUT_SAFETY_NO`] "no"
/// labels of every check of a safety criterion.
pub fn validate_v2_coverage(cases: &[Labelled]) -> Vec<String> {
    let mut problems = Vec::new();
    if cases.len() < MIN_CASES_V2 {
        problems.push(format!("{} cases; golden set v2 has at least {MIN_CASES_V2}", cases.len()));
    }
    for l in cases.iter().filter(|l| l.second.is_none()) {
        problems.push(format!("{}: no second labelling pass", l.case.id));
    }
    let held_out: Vec<&Labelled> = cases.iter().filter(|l| l.case.split == Split::HeldOut).collect();
    for criterion in rubric::CRITERIA {
        for check in criterion.checks.iter() {
            let key = format!("{}.{}", criterion.key, check.key);
            let no = |set: &mut dyn Iterator<Item = &Labelled>| {
                set.filter(|l| l.resolved.checks.get(&key) == Some(&CheckAnswer::No)).count()
            };
            let all = no(&mut cases.iter());
            if all < MIN_CHECK_NO {
                problems.push(format!("check `{key}` has {all} \"no\" labels; the set needs {MIN_CHECK_NO}"));
            }
            let held = no(&mut held_out.iter().copied());
            if criterion.safety && held < MIN_HELD_OUT_SAFETY_NO {
                problems.push(format!(
                    "safety check `{key}` has {held} \"no\" labels in the held-out split; it needs {MIN_HELD_OUT_SAFETY_NO}"
                ));
            }
            for l in cases {
                if !l.resolved.checks.contains_key(&key) {
                    problems.push(format!("{}: `{key}` is not labelled", l.case.id));
                }
            }
        }
    }
    for (flag, _) in rubric::EVALUATION_FLAGS {
        let n = held_out.iter().filter(|l| l.resolved.flags.contains(flag)).count();
        if n < MIN_FLAG_POSITIVES {
            problems.push(format!(
                "flag `{}` is expected in {n} held-out cases; the held-out split needs {MIN_FLAG_POSITIVES}",
                flag.as_str()
            ));
        }
    }
    problems
}

pub const MIN_CASES_V2: usize = 80;
pub const MIN_CHECK_NO: usize = 3;
pub const MIN_HELD_OUT_SAFETY_NO: usize = 3;

// ---------------------------------------------------------------------------------------------
// The ordering set and the reference figures

/// One pair of the ordering set (`golden/ordering.json`): a trainer would clearly rank `better`
/// above `worse`, for `reason`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderingPair {
    pub better: String,
    pub worse: String,
    pub reason: String,
}

pub const MIN_ORDERING_PAIRS: usize = 30;

/// Reads `ordering.json` in `dir` (none: empty).
pub fn load_ordering(dir: &Path) -> Result<Vec<OrderingPair>> {
    let path = dir.join("ordering.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// What is wrong with the ordering set: unknown cases, pairs without a reason, duplicates, size.
pub fn validate_ordering(pairs: &[OrderingPair], cases: &[Labelled]) -> Vec<String> {
    let mut problems = Vec::new();
    let known = |id: &str| cases.iter().any(|l| l.case.id == id);
    let mut seen = BTreeSet::new();
    for (i, p) in pairs.iter().enumerate() {
        for id in [&p.better, &p.worse] {
            if !known(id) {
                problems.push(format!("ordering.json[{i}]: no golden case `{id}`"));
            }
        }
        if p.better == p.worse {
            problems.push(format!("ordering.json[{i}]: a case paired with itself"));
        }
        if p.reason.trim().is_empty() {
            problems.push(format!("ordering.json[{i}]: say why `{}` ranks above `{}`", p.better, p.worse));
        }
        let key = if p.better < p.worse { (&p.better, &p.worse) } else { (&p.worse, &p.better) };
        if !seen.insert(key) {
            problems.push(format!("ordering.json[{i}]: `{}` / `{}` paired twice", p.better, p.worse));
        }
    }
    if pairs.len() < MIN_ORDERING_PAIRS {
        problems.push(format!("{} ordering pairs; the set needs at least {MIN_ORDERING_PAIRS}", pairs.len()));
    }
    problems
}

/// Pairs ordered correctly (strictly: a tie is not an order) out of those with both scores,
/// and the wrong ones.
fn ordering_of(pairs: &[OrderingPair], score: impl Fn(&str) -> Option<f64>) -> Ordering {
    let mut out = Ordering { compared: 0, correct: 0, share: None, wrong: Vec::new() };
    for p in pairs {
        let (Some(b), Some(w)) = (score(&p.better), score(&p.worse)) else { continue };
        out.compared += 1;
        if b > w {
            out.correct += 1;
        } else {
            out.wrong.push(format!("{} ({b:.1}) should rank above {} ({w:.1}): {}", p.better, p.worse, p.reason));
        }
    }
    out.share = (out.compared > 0).then(|| out.correct as f64 / out.compared as f64);
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct Ordering {
    pub compared: usize,
    pub correct: usize,
    pub share: Option<f64>,
    pub wrong: Vec<String>,
}

/// What the resolved labels alone say through the production scoring: the gates, the caps,
/// the ordering set, and how much of the rubric is labelled.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceFigures {
    /// Reference flags of a gate's type.
    pub expected_gates: usize,
    /// ... whose gate fires from the labels' answers and facts.
    pub recalled_gates: usize,
    pub gate_recall: Option<f64>,
    /// Gates firing from the labels with no reference flag of their type.
    pub unflagged_gates: Vec<String>,
    pub missed_gates: Vec<String>,
    /// Cases whose gated reference score is above its cap (must be none).
    pub over_cap: Vec<String>,
    pub gated_cases: usize,
    pub ordering: Ordering,
    /// Labelled checks / all checks of the cases' rubric (v3; the set is being relabelled).
    pub labelled_checks: usize,
    pub all_checks: usize,
    pub coverage: Option<f64>,
    /// Cases with the call facts labelled, of all the set's cases.
    pub cases_with_facts: usize,
    pub cases: usize,
}

pub fn reference_figures(cases: &[Labelled], pairs: &[OrderingPair]) -> ReferenceFigures {
    let (mut expected, mut recalled) = (0, 0);
    let (mut unflagged, mut missed, mut over_cap) = (Vec::new(), Vec::new(), Vec::new());
    let (mut gated, mut labelled, mut all) = (0, 0, 0);
    let mut scores = BTreeMap::new();
    for l in cases {
        let fired = gates_from_labels(&l.resolved, l.case.guidance());
        for flag in &l.resolved.flags {
            if rubric::gate_of(*flag).is_some() {
                expected += 1;
                if fired.contains(flag) {
                    recalled += 1;
                } else {
                    missed.push(format!("{}: {}", l.case.id, flag.as_str()));
                }
            }
        }
        for flag in fired.iter().filter(|f| !l.resolved.flags.contains(f)) {
            unflagged.push(format!("{}: {}", l.case.id, flag.as_str()));
        }
        let s = label_score(l);
        if let Some(cap) = s.basis.gates.iter().map(|g| g.cap).min_by(f64::total_cmp) {
            gated += 1;
            if s.overall.is_some_and(|o| o > cap) {
                over_cap.push(format!("{}: {:.1} > {cap}", l.case.id, s.overall.unwrap_or_default()));
            }
        }
        scores.insert(l.case.id.clone(), s.overall);
        let criteria = rubric::criteria(l.case.guidance());
        all += criteria.iter().map(|c| c.checks.len()).sum::<usize>();
        labelled += l.resolved.checks.keys().filter(|k| rubric::find_check(&criteria, k).is_some()).count();
    }
    ReferenceFigures {
        expected_gates: expected,
        recalled_gates: recalled,
        gate_recall: (expected > 0).then(|| recalled as f64 / expected as f64),
        unflagged_gates: unflagged,
        missed_gates: missed,
        over_cap,
        gated_cases: gated,
        ordering: ordering_of(pairs, |id| scores.get(id).copied().flatten()),
        labelled_checks: labelled,
        all_checks: all,
        coverage: (all > 0).then(|| labelled as f64 / all as f64),
        cases_with_facts: cases.iter().filter(|l| !l.resolved.facts.is_empty()).count(),
        cases: cases.len(),
    }
}

// ---------------------------------------------------------------------------------------------
// Running

/// Where evaluations are sent.
#[derive(Debug, Clone)]
pub enum Target {
    Sim,
    Api { base_url: String, api_key: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Persona {
    /// Production: the evaluator does not see the caller persona.
    Without,
    With,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub model: String,
    pub golden_dir: PathBuf,
    /// Only these case ids (empty: all).
    pub only: Vec<String>,
    pub runs: usize,
    pub personas: Vec<Persona>,
    pub split: Option<Split>,
}

/// What one evaluation of one case answered.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub answers: BTreeMap<String, CheckAnswer>,
    pub ratings: BTreeMap<String, Option<u8>>,
    pub overall_score: Option<f64>,
    pub score_band: Option<ScoreBand>,
    pub flags: Vec<FlagType>,
    /// Held for a supervisor's review (the transcript carried manipulation signals).
    pub held: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub split: Split,
    /// The resolved labels' own score and band (ratings derived from the labelled checks).
    pub label_score: Option<f64>,
    pub label_band: Option<ScoreBand>,
    pub runs: Vec<RunOutcome>,
    /// Mismatches of the first run.
    pub mismatches: Vec<String>,
}

/// One group's statistics: evaluator (first run) vs resolved labels.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    pub cases: usize,
    pub all_checks: CheckAgreement,
    pub safety_checks: CheckAgreement,
    pub checks: BTreeMap<String, CheckAgreement>,
    pub criteria: BTreeMap<String, CheckAgreement>,
    pub ratings: BTreeMap<String, RatingAgreement>,
    pub all_ratings: RatingAgreement,
    pub bands: BandAgreement,
    pub flags: Vec<FlagAgreement>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Variance {
    pub runs: usize,
    /// (case, check) answers that differed between runs, of all compared.
    pub unstable_checks: usize,
    pub compared_checks: usize,
    /// Cases whose band differed between runs.
    pub unstable_bands: usize,
    /// Cases whose flags differed between runs.
    pub unstable_flags: usize,
    /// Mean over cases of the score's standard deviation across runs.
    pub mean_score_sd: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonaRun {
    pub persona: Persona,
    pub all: GroupStats,
    pub dev: GroupStats,
    pub held_out: GroupStats,
    pub variance: Variance,
    /// The ordering set by the evaluator's scores (first run; pairs with both cases run).
    pub ordering: Ordering,
    pub per_case: Vec<CaseResult>,
}

/// The two labelling passes against each other: the ceiling for any evaluator.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub cases: usize,
    pub all_checks: CheckAgreement,
    pub safety_checks: CheckAgreement,
    pub checks: BTreeMap<String, CheckAgreement>,
    pub flags: Vec<FlagAgreement>,
    pub resolutions: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub note: String,
    pub base_url: String,
    pub model: String,
    pub rubric_version: i64,
    pub cases: usize,
    pub held_out: usize,
    pub ceiling: Ceiling,
    pub reference: ReferenceFigures,
    pub runs: Vec<PersonaRun>,
}

/// The endpoint the cases are evaluated against, kept for the whole run.
struct Live {
    base_url: String,
    api_key: String,
    sim: Option<Simulator>,
}

/// Runs every case and scores the results. Errors only when the plumbing fails.
pub async fn run(options: &Options) -> Result<Report> {
    let mut cases = load_cases(&options.golden_dir)?;
    let pairs = load_ordering(&options.golden_dir)?;
    let mut problems = validate_set(&cases);
    problems.extend(validate_ordering(&pairs, &cases));
    if !problems.is_empty() {
        bail!("the golden set is invalid:\n  {}", problems.join("\n  "));
    }
    let ceiling = ceiling(&cases);
    let reference = reference_figures(&cases, &pairs);
    if !options.only.is_empty() {
        if let Some(unknown) = options.only.iter().find(|id| !cases.iter().any(|l| &l.case.id == *id)) {
            bail!("no golden case `{unknown}`");
        }
        cases.retain(|l| options.only.contains(&l.case.id));
    }
    if let Some(split) = options.split {
        cases.retain(|l| l.case.split == split);
    }
    let live = match &options.target {
        Target::Sim => {
            let sim = Simulator::start().await.context("starting the OpenAI simulator")?;
            Live { base_url: sim.base_url(), api_key: "sim-key".into(), sim: Some(sim) }
        }
        Target::Api { base_url, api_key } => Live { base_url: base_url.clone(), api_key: api_key.clone(), sim: None },
    };
    let work = WorkDir::new()?;
    let mut runs = Vec::new();
    for persona in &options.personas {
        let mut results = Vec::new();
        for l in &cases {
            eprintln!("eval-golden: {} ({persona:?} persona) ...", l.case.id);
            let mut outcomes = Vec::new();
            for run in 0..options.runs.max(1) {
                if let Some(sim) = &live.sim {
                    script_oracle(sim, l);
                }
                let dir = work.0.join(format!("{persona:?}-{run}"));
                std::fs::create_dir_all(&dir)?;
                outcomes.push(evaluate_case(l, &live, &options.model, &dir, *persona).await?);
            }
            results.push(case_result(l, outcomes));
        }
        let by_id: BTreeMap<&str, Option<f64>> =
            results.iter().map(|r| (r.id.as_str(), r.runs[0].overall_score)).collect();
        let ordering = ordering_of(&pairs, |id| by_id.get(id).copied().flatten());
        runs.push(PersonaRun {
            persona: *persona,
            all: group(&results, &cases, None),
            dev: group(&results, &cases, Some(Split::Dev)),
            held_out: group(&results, &cases, Some(Split::HeldOut)),
            variance: variance(&results),
            ordering,
            per_case: results,
        });
    }
    if let Some(sim) = live.sim {
        sim.shutdown().await;
    }
    drop(work);
    let (mode, note) = match &options.target {
        Target::Sim => ("simulator", SIM_NOTE.to_owned()),
        Target::Api { .. } => ("model", format!("model {} graded {} golden cases", options.model, cases.len())),
    };
    Ok(Report {
        mode,
        note,
        base_url: live.base_url,
        model: options.model.clone(),
        rubric_version: rubric::RUBRIC_VERSION,
        cases: cases.len(),
        held_out: cases.iter().filter(|l| l.case.split == Split::HeldOut).count(),
        ceiling,
        reference,
        runs,
    })
}

/// The labels' own ratings: each criterion's share of labelled yes among its labelled yes / no,
/// 1 (none) to 4 (all); null when none of its labelled checks applied.
pub fn label_criteria(labels: &Labels, guidance: &str) -> Vec<CriterionScore> {
    rubric::criteria(guidance)
        .iter()
        .map(|criterion| {
            let checks: Vec<CheckResult> = criterion
                .checks
                .iter()
                .filter_map(|check| {
                    let answer = labels.checks.get(&format!("{}.{}", criterion.key, check.key))?;
                    Some(CheckResult {
                        key: check.key.to_string(),
                        question: String::new(),
                        answer: *answer,
                        turns: Vec::new(),
                        note: String::new(),
                        ai_answer: None,
                        blocked_by: None,
                    })
                })
                .collect();
            let yes = checks.iter().filter(|c| c.answer == CheckAnswer::Yes).count() as f64;
            let no = checks.iter().filter(|c| c.answer == CheckAnswer::No).count() as f64;
            let rating = (yes + no > 0.0).then(|| 1 + (3.0 * yes / (yes + no)).round() as u8);
            CriterionScore {
                key: criterion.key.to_owned(),
                name: criterion.name.to_owned(),
                rating,
                comment: String::new(),
                checks,
                not_assessed: false,
                rating_overridden: false,
                ai_rating: None,
            }
        })
        .collect()
}

fn case_result(l: &Labelled, runs: Vec<RunOutcome>) -> CaseResult {
    let label_score = label_score(l);
    let first = &runs[0];
    let mut mismatches: Vec<String> = l
        .resolved
        .checks
        .iter()
        .filter(|(k, a)| first.answers.get(*k) != Some(a))
        .map(|(k, a)| {
            format!(
                "{k}: expected {}, got {}",
                a.as_str(),
                first.answers.get(k).map(|x| x.as_str()).unwrap_or("no answer")
            )
        })
        .collect();
    let expected: BTreeSet<&str> = l.resolved.flags.iter().map(|f| f.as_str()).collect();
    let raised: BTreeSet<&str> = first.flags.iter().map(|f| f.as_str()).collect();
    mismatches.extend(expected.difference(&raised).map(|f| format!("flag missed: {f}")));
    mismatches.extend(raised.difference(&expected).map(|f| format!("flag not expected: {f}")));
    CaseResult {
        id: l.case.id.clone(),
        split: l.case.split,
        label_score: label_score.overall,
        label_band: label_score.band,
        runs,
        mismatches,
    }
}

/// A (label, evaluator) rating pair.
type RatingPair = (Option<u8>, Option<u8>);

fn is_safety(key: &str) -> bool {
    SAFETY_CHECKS.contains(&key)
}

/// Evaluator (first run) vs resolved labels over the cases of `split` (None: all).
fn group(results: &[CaseResult], cases: &[Labelled], split: Option<Split>) -> GroupStats {
    let mut checks: BTreeMap<String, Vec<(Answer, Answer)>> = BTreeMap::new();
    let mut criteria: BTreeMap<String, Vec<(Answer, Answer)>> = BTreeMap::new();
    let mut ratings: BTreeMap<String, Vec<RatingPair>> = BTreeMap::new();
    let mut bands = Vec::new();
    let mut flag_items = Vec::new();
    let mut n = 0;
    for (r, l) in results.iter().zip(cases) {
        if split.is_some_and(|s| s != r.split) {
            continue;
        }
        n += 1;
        let first = &r.runs[0];
        for (key, label) in &l.resolved.checks {
            let pair = (Answer::of(Some(*label)), Answer::of(first.answers.get(key).copied()));
            checks.entry(key.clone()).or_default().push(pair);
            let criterion = key.split_once('.').map(|(c, _)| c).unwrap_or(key);
            criteria.entry(criterion.to_owned()).or_default().push(pair);
        }
        for c in label_criteria(&l.resolved, l.case.guidance()) {
            if c.checks.is_empty() {
                continue;
            }
            ratings.entry(c.key.clone()).or_default().push((c.rating, first.ratings.get(&c.key).copied().flatten()));
        }
        bands.push((r.label_band, first.score_band));
        flag_items.push((l.resolved.flags.clone(), first.flags.clone()));
    }
    let all: Vec<(Answer, Answer)> = checks.values().flatten().copied().collect();
    let safety: Vec<(Answer, Answer)> =
        checks.iter().filter(|(k, _)| is_safety(k)).flat_map(|(_, v)| v.iter().copied()).collect();
    let all_ratings: Vec<(Option<u8>, Option<u8>)> = ratings.values().flatten().copied().collect();
    let flag_types: Vec<FlagType> = rubric::EVALUATION_FLAGS.iter().map(|(f, _)| *f).collect();
    GroupStats {
        cases: n,
        all_checks: CheckAgreement::of(&all, agreement::seed_for("all")),
        safety_checks: CheckAgreement::of(&safety, agreement::seed_for("safety")),
        checks: checks.iter().map(|(k, v)| (k.clone(), CheckAgreement::of(v, agreement::seed_for(k)))).collect(),
        criteria: criteria.iter().map(|(k, v)| (k.clone(), CheckAgreement::of(v, agreement::seed_for(k)))).collect(),
        ratings: ratings
            .iter()
            .map(|(k, v)| (k.clone(), RatingAgreement::of(v, agreement::seed_for(&format!("{k}.rating")))))
            .collect(),
        all_ratings: RatingAgreement::of(&all_ratings, agreement::seed_for("ratings")),
        bands: BandAgreement::of(&bands),
        flags: FlagAgreement::per_type(&flag_types, &flag_items),
    }
}

/// First pass vs second pass, over the checks both labelled.
fn ceiling(cases: &[Labelled]) -> Ceiling {
    let mut checks: BTreeMap<String, Vec<(Answer, Answer)>> = BTreeMap::new();
    let mut flag_items = Vec::new();
    for l in cases {
        let Some(second) = &l.second else { continue };
        for (key, a) in &l.case.labels.checks {
            if let Some(b) = second.checks.get(key) {
                checks.entry(key.clone()).or_default().push((Answer::of(Some(*a)), Answer::of(Some(*b))));
            }
        }
        flag_items.push((l.case.labels.flags.clone(), second.flags.clone()));
    }
    let all: Vec<(Answer, Answer)> = checks.values().flatten().copied().collect();
    let safety: Vec<(Answer, Answer)> =
        checks.iter().filter(|(k, _)| is_safety(k)).flat_map(|(_, v)| v.iter().copied()).collect();
    let flag_types: Vec<FlagType> = rubric::EVALUATION_FLAGS.iter().map(|(f, _)| *f).collect();
    Ceiling {
        cases: flag_items.len(),
        all_checks: CheckAgreement::of(&all, agreement::seed_for("ceiling")),
        safety_checks: CheckAgreement::of(&safety, agreement::seed_for("ceiling.safety")),
        checks: checks.iter().map(|(k, v)| (k.clone(), CheckAgreement::of(v, agreement::seed_for(k)))).collect(),
        flags: FlagAgreement::per_type(&flag_types, &flag_items),
        resolutions: cases.iter().map(|l| l.case.resolutions.len()).sum(),
    }
}

fn variance(results: &[CaseResult]) -> Variance {
    let runs = results.first().map_or(0, |r| r.runs.len());
    let (mut unstable, mut compared, mut bands, mut flags) = (0, 0, 0, 0);
    let mut sds = Vec::new();
    for r in results {
        let keys: BTreeSet<&String> = r.runs.iter().flat_map(|o| o.answers.keys()).collect();
        for k in keys {
            compared += 1;
            let first = r.runs[0].answers.get(k);
            if r.runs.iter().any(|o| o.answers.get(k) != first) {
                unstable += 1;
            }
        }
        if r.runs.iter().any(|o| o.score_band != r.runs[0].score_band) {
            bands += 1;
        }
        if r.runs.iter().any(|o| o.flags != r.runs[0].flags) {
            flags += 1;
        }
        let scores: Vec<f64> = r.runs.iter().filter_map(|o| o.overall_score).collect();
        if scores.len() >= 2 {
            let mean = scores.iter().sum::<f64>() / scores.len() as f64;
            let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (scores.len() - 1) as f64;
            sds.push(var.sqrt());
        }
    }
    Variance {
        runs,
        unstable_checks: unstable,
        compared_checks: compared,
        unstable_bands: bands,
        unstable_flags: flags,
        mean_score_sd: (!sds.is_empty()).then(|| sds.iter().sum::<f64>() / sds.len() as f64),
    }
}

/// A private temporary directory, removed when dropped.
pub(crate) struct WorkDir(pub(crate) PathBuf);

impl WorkDir {
    pub(crate) fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("proto-trainer-golden-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        for _ in 0..10 {
            let _ = std::fs::remove_dir_all(&self.0);
            if !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("eval-golden: could not remove {}", self.0.display());
    }
}

/// The text of every message of a recorded chat request.
fn message_text(body: &Value) -> String {
    let mut text = String::new();
    for message in body["messages"].as_array().into_iter().flatten() {
        match &message["content"] {
            Value::String(s) => text.push_str(s),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).for_each(|s| text.push_str(s)),
            _ => {}
        }
        text.push('\n');
    }
    text
}

/// A golden case's call as every golden run opens it: a fresh SQLite store of its own, its
/// account and counselor, the case's scenario when it has one, and a completed chat session
/// holding the turns (15 s apart, 12 s each), ready for `evaluate_session`.
pub struct CaseCall {
    pub url: String,
    pub store: store::Store,
    pub account: store::Account,
    pub session: store::SessionId,
}

/// A golden scenario: a chat scenario in the "assessment" category with nothing else set;
/// callers add what their case holds (description, evaluator context, risk profile).
pub fn case_scenario(title: &str, prompt: &str) -> ScenarioInput {
    ScenarioInput {
        title: title.to_owned(),
        prompt: prompt.to_owned(),
        description: None,
        mode: ScenarioMode::Chat,
        category: "assessment".into(),
        skills: Vec::new(),
        difficulty: None,
        estimated_time: None,
        relevant_policy_sections: None,
        evaluator_context: None,
        is_one_time: None,
        assign_to: None,
        voice: None,
        risk_profile: None,
    }
}

/// Opens `case_id`'s call in a database of its own under `dir` (see [`CaseCall`]).
pub async fn open_case_call(
    dir: &Path,
    case_id: &str,
    scenario: Option<&ScenarioInput>,
    turns: &[GoldenTurn],
) -> Result<CaseCall> {
    let url = format!("sqlite://{}?mode=rwc", dir.join(format!("{case_id}.db")).display());
    let store = store::Store::connect(&url).await?;
    store.migrate().await?;
    let account = store.create_account(&format!("Golden {case_id}")).await?;
    let counselor = store
        .create_user(
            account.id,
            NewUser {
                email: "counselor@golden.example.org".into(),
                display_name: "Golden Counselor".into(),
                role: Role::Counselor,
                external_id: None,
                is_demo: false,
            },
        )
        .await?;
    let scenario_id = match scenario {
        Some(input) => Some(store.create_scenario(account.id, None, input).await?.0.id),
        None => None,
    };
    let new = NewSession {
        user_id: counselor.id,
        assignment_id: None,
        scenario_id,
        kind: SessionKind::Chat,
        room_name: None,
    };
    let session = store.create_session(account.id, &new).await?;
    let turns: Vec<NewTurn> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| NewTurn {
            speaker: match t.speaker {
                Party::Counselor => Speaker::Counselor,
                Party::Caller => Speaker::Caller,
            },
            text: t.text.clone(),
            started_ms: i as i64 * 15_000,
            ended_ms: Some(i as i64 * 15_000 + 12_000),
            segment_id: None,
        })
        .collect();
    store.append_turns(account.id, session.id, &turns).await?;
    store.end_session(account.id, session.id, SessionStatus::Completed).await?;
    Ok(CaseCall { url, store, account, session: session.id })
}

/// One case through the production path: store → `evaluate_session` → stored evaluation and flags.
async fn evaluate_case(l: &Labelled, live: &Live, model: &str, dir: &Path, persona: Persona) -> Result<RunOutcome> {
    let case = &l.case;
    let scenario = case.scenario.as_ref().map(|s| ScenarioInput {
        description: Some(s.description.clone()),
        evaluator_context: Some(s.evaluator_context.clone()),
        ..case_scenario(&s.title, &s.prompt)
    });
    let expanded = case.expanded_turns();
    let CaseCall { url, store, account, session } = open_case_call(dir, &case.id, scenario.as_ref(), &expanded).await?;

    let mut config = Config::for_database(&url);
    config.openai_base_url = live.base_url.clone();
    config.openai_api_key = Some(Secret::new(live.api_key.clone()));
    config.evaluator_model = model.to_owned();
    config.llm_timeout_secs = if live.sim.is_some() { 30 } else { 180 };
    config.evaluator_sees_persona = persona == Persona::With;
    let state = AppState::new(store.clone(), config)?;
    let handle = store.session_in(account.id, session).await?;
    let evaluated = admin::evaluation::evaluate_session(&state, &handle)
        .await
        .map_err(|e| anyhow!("case {}: the evaluation failed: {e} ({e:?})", case.id))?;
    if let Some(sim) = &live.sim {
        // The plumbing check proper: every turn reached the evaluator, and the persona exactly
        // when asked for.
        let sent = sim
            .chat_requests()
            .into_iter()
            .rfind(|b| b["response_format"]["json_schema"]["name"] == "evaluation")
            .map(|b| message_text(&b))
            .ok_or_else(|| anyhow!("case {}: no evaluation request reached the simulator", case.id))?;
        let limit = state.config.transcript_max_chars as usize;
        if transcript_chars(case) <= limit
            // The evaluator reads turns as JSON strings: a turn may arrive escaped.
            && let Some(missing) = expanded.iter().map(|t| t.text.trim()).find(|t| {
                let escaped = serde_json::to_string(t).unwrap_or_default();
                !sent.contains(t) && !sent.contains(escaped.trim_matches('"'))
            })
        {
            bail!("case {}: the evaluation request lacks `{missing}`", case.id);
        }
        if let Some(s) = &case.scenario {
            let shown = sent.contains(s.prompt.trim());
            if shown != (persona == Persona::With) {
                bail!(
                    "case {}: the persona was {} the evaluator",
                    case.id,
                    if shown { "shown to" } else { "hidden from" }
                );
            }
        }
    }
    let mut flags: Vec<FlagType> = store
        .session_flags(&handle)
        .await?
        .into_iter()
        .filter(|f| f.source == FlagSource::Evaluation)
        .map(|f| f.flag_type)
        .collect();
    flags.sort_by_key(|f| f.as_str());
    flags.dedup();
    store.close().await;
    let e = evaluated.evaluation;
    Ok(RunOutcome {
        answers: e
            .criteria
            .iter()
            .flat_map(|c| c.checks.iter().map(move |k| (format!("{}.{}", c.key, k.key), k.answer)))
            .collect(),
        ratings: e.criteria.iter().map(|c| (c.key.clone(), c.rating)).collect(),
        overall_score: e.overall_score,
        score_band: e.score_band,
        flags,
        held: e.hold.is_some(),
    })
}

/// Scripts the simulator to answer the next evaluation with the case's oracle.
fn script_oracle(sim: &Simulator, l: &Labelled) {
    sim.clear_rules();
    sim.clear_requests();
    sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(oracle_answer(l)));
    sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({"summary": "Golden run.", "findings": []})));
}

/// The answer a perfect evaluator would give: labelled checks as resolved (unlabelled ones
/// left out: skipped), ratings from the labels ([`label_criteria`]), exactly the expected flags.
pub fn oracle_answer(l: &Labelled) -> Value {
    // A yes must cite a counselor turn or it is not assessed: the oracle cites the first one.
    let counselor_turn: Vec<u32> = l
        .case
        .expanded_turns()
        .iter()
        .position(|t| t.speaker == Party::Counselor)
        .map(|i| i as u32 + 1)
        .into_iter()
        .collect();
    let criteria: Vec<Value> = label_criteria(&l.resolved, l.case.guidance())
        .iter()
        .map(|c| {
            let checks: Vec<Value> = c
                .checks
                .iter()
                .map(|k| {
                    let turns = if k.answer == CheckAnswer::Yes { counselor_turn.clone() } else { Vec::new() };
                    json!({"key": k.key, "answer": k.answer.as_str(), "turns": turns, "note": "golden label"})
                })
                .collect();
            json!({"key": c.key, "checks": checks, "rating": c.rating, "comment": "Oracle answer from the golden labels."})
        })
        .collect();
    let flags: Vec<Value> = l
        .resolved
        .flags
        .iter()
        .map(|flag| {
            let severity = match flag {
                FlagType::MissedRescue => "critical",
                FlagType::SuicideNotAsked | FlagType::MissedPlanOrMeans => "high",
                _ => "medium",
            };
            json!({"flag_type": flag.as_str(), "severity": severity,
                "details": format!("Golden oracle: `{}` is expected for case {}.", flag.as_str(), l.case.id), "turns": []})
        })
        .collect();
    let facts: Vec<Value> =
        l.resolved.facts.iter().map(|(k, a)| json!({"key": k, "answer": a.as_str(), "turns": []})).collect();
    json!({
        "criteria": criteria,
        "strengths": ["Oracle answer: built from the golden labels."],
        "areas_to_improve": [],
        "overall_score": 50,
        "flags": flags,
        "facts": facts,
    })
}

// ---------------------------------------------------------------------------------------------
// Output

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

fn ci(v: Option<[f64; 2]>) -> String {
    v.map(|[a, b]| format!("[{a:.2},{b:.2}]")).unwrap_or_else(|| "-".into())
}

fn agreement_header() -> String {
    format!(
        "  {:<46} {:>3} {:>4} {:>3} {:>4} {:>6} {:>7} {:>13} {:>7} {:>13} {:>6} {:>6}",
        "", "n", "agr", "no", "no>na", "agree", "kappa", "kappa 95% CI", "AC1", "AC1 95% CI", "PABAK", "appl."
    )
}

fn agreement_row(name: &str, a: &CheckAgreement) -> String {
    format!(
        "  {:<46} {:>3} {:>4} {:>3} {:>4} {:>6} {:>7} {:>13} {:>7} {:>13} {:>6} {:>6}",
        name,
        a.n,
        a.agreed,
        a.reference_no,
        a.no_answered_na,
        num(a.agreement),
        num(a.kappa),
        ci(a.kappa_ci),
        num(a.ac1),
        ci(a.ac1_ci),
        num(a.pabak),
        num(a.applicability_agreement)
    )
}

fn flag_rows(flags: &[FlagAgreement], line: &mut impl FnMut(String)) {
    line(format!(
        "  {:<31} {:>8} {:>6} {:>3} {:>3} {:>3} {:>3} {:>9} {:>7} {:>7}",
        "flag type", "expected", "raised", "TP", "FP", "FN", "TN", "precision", "recall", "kappa"
    ));
    for f in flags {
        line(format!(
            "  {:<31} {:>8} {:>6} {:>3} {:>3} {:>3} {:>3} {:>9} {:>7} {:>7}",
            f.flag_type,
            f.expected,
            f.raised,
            f.true_positives,
            f.false_positives,
            f.false_negatives,
            f.true_negatives,
            num(f.precision),
            num(f.recall),
            num(f.kappa)
        ));
    }
}

/// The human-readable report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "eval-golden: {} cases ({} held out), rubric v{}, model `{}` at {}",
        report.cases, report.held_out, report.rubric_version, report.model, report.base_url
    ));
    line(format!("  {}", report.note));
    line(String::new());
    line("Columns: n compared; agr agreed; no = reference \"no\" labels; no>na = reference no answered".into());
    line(
        "not_applicable or skipped (the most dangerous miss); kappa, AC1, PABAK over yes / no / not_applicable /"
            .into(),
    );
    line("skipped as four categories, with seeded bootstrap 95% intervals; appl. = applicability agreement".into());
    line("(applicable / not_applicable / skipped). '-' = undefined (too few items or a single category).".into());
    line(String::new());
    let c = &report.ceiling;
    line(format!(
        "Label ceiling: first vs second labelling pass over {} cases ({} disagreements resolved with a reason)",
        c.cases, c.resolutions
    ));
    line(agreement_header());
    line(agreement_row("all checks both passes labelled", &c.all_checks));
    line(agreement_row("safety checks", &c.safety_checks));
    for key in SAFETY_CHECKS {
        if let Some(a) = c.checks.get(*key) {
            line(agreement_row(key, a));
        }
    }
    flag_rows(&c.flags, &mut line);
    let r = &report.reference;
    let pct = |v: Option<f64>| v.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "-".into());
    line(String::new());
    line("Safety gates and ordering, from the resolved labels through the production scoring:".into());
    line(format!(
        "  gate recall: {} ({} of {} reference flags of a gate's type fire their gate from the labels' answers and facts)",
        pct(r.gate_recall),
        r.recalled_gates,
        r.expected_gates
    ));
    for m in &r.missed_gates {
        line(format!("    - not fired: {m}"));
    }
    line(format!("  gates firing from the labels with no reference flag: {}", r.unflagged_gates.len()));
    for m in &r.unflagged_gates {
        line(format!("    - {m}"));
    }
    line(format!("  gated reference cases above their cap: {} (of {} gated)", r.over_cap.len(), r.gated_cases));
    for m in &r.over_cap {
        line(format!("    - {m}"));
    }
    line(format!(
        "  ordering share (reference labels): {} ({} of {} pairs)",
        pct(r.ordering.share),
        r.ordering.correct,
        r.ordering.compared
    ));
    for w in &r.ordering.wrong {
        line(format!("    - wrong: {w}"));
    }
    line(format!(
        "  coverage: {} ({} labelled of {} checks); call facts labelled in {} of {} cases",
        pct(r.coverage),
        r.labelled_checks,
        r.all_checks,
        r.cases_with_facts,
        r.cases
    ));
    line("  (an unlabelled check is left out of the reference score, as a skipped check is; a fact left".into());
    line("  unlabelled is read from the answers it implies, as in production)".into());
    for run in &report.runs {
        line(String::new());
        line(format!(
            "Evaluator vs resolved labels — persona {} the evaluator, {} run(s) per case",
            match run.persona {
                Persona::Without => "hidden from",
                Persona::With => "shown to",
            },
            run.variance.runs
        ));
        let held = run.per_case.iter().filter(|c| c.runs.iter().any(|o| o.held)).count();
        line(format!(
            "  held for review: {held} of {} cases (a golden transcript carries no manipulation, so 0 is right)",
            run.per_case.len()
        ));
        line("Per check (all cases):".into());
        line(agreement_header());
        for (key, a) in &run.all.checks {
            line(agreement_row(key, a));
        }
        line("Per criterion (checks pooled; ratings: quadratic-weighted kappa vs the labels' derived ratings):".into());
        line(agreement_header());
        for (key, a) in &run.all.criteria {
            line(agreement_row(key, a));
        }
        line(format!("  {:<46} {:>3} {:>6} {:>6} {:>7} {:>13}", "ratings", "n", "exact", "±1", "w.kappa", "95% CI"));
        for (key, r) in
            run.all.ratings.iter().map(|(k, r)| (k.as_str(), r)).chain([("all ratings", &run.all.all_ratings)])
        {
            line(format!(
                "  {:<46} {:>3} {:>6} {:>6} {:>7} {:>13}",
                key,
                r.n,
                r.exact,
                r.within_one,
                num(r.weighted_kappa),
                ci(r.weighted_kappa_ci)
            ));
        }
        for (name, g) in [("all", &run.all), ("dev", &run.dev), ("held_out", &run.held_out)] {
            line(format!("Split {name} ({} cases):", g.cases));
            line(agreement_header());
            line(agreement_row("all checks", &g.all_checks));
            line(agreement_row("safety checks", &g.safety_checks));
            line(format!(
                "  score bands: {}/{} agree ({}), kappa {}, weighted kappa {}, evaluator band higher than the labels' in {}",
                g.bands.agreed,
                g.bands.n,
                num(g.bands.agreement),
                num(g.bands.kappa),
                num(g.bands.weighted_kappa),
                g.bands.other_higher
            ));
            flag_rows(&g.flags, &mut line);
        }
        line(format!(
            "Ordering share (evaluator's scores): {} ({} of {} pairs)",
            pct(run.ordering.share),
            run.ordering.correct,
            run.ordering.compared
        ));
        for w in &run.ordering.wrong {
            line(format!("  - wrong: {w}"));
        }
        let v = &run.variance;
        line(format!(
            "Run-to-run variance over {} runs: {} of {} check answers changed between runs; bands changed in {} cases, \
             flags in {}; mean score SD {}",
            v.runs,
            v.unstable_checks,
            v.compared_checks,
            v.unstable_bands,
            v.unstable_flags,
            v.mean_score_sd.map(|s| format!("{s:.2}")).unwrap_or_else(|| "- (one run)".into())
        ));
        line("Cases:".into());
        for r in &run.per_case {
            let first = &r.runs[0];
            let score = |s: Option<f64>| s.map(|s| format!("{s:5.1}")).unwrap_or_else(|| "    -".into());
            let band = |b: Option<ScoreBand>| b.map(|b| b.as_str()).unwrap_or("-");
            line(format!(
                "  {:<4} {:<44} {:<8} score {} ({}) labels' score {} ({})",
                if r.mismatches.is_empty() { "ok" } else { "DIFF" },
                r.id,
                match r.split {
                    Split::Dev => "dev",
                    Split::HeldOut => "held_out",
                },
                score(first.overall_score),
                band(first.score_band),
                score(r.label_score),
                band(r.label_band)
            ));
            for m in &r.mismatches {
                line(format!("         - {m}"));
            }
        }
    }
    if report.runs.len() == 2 {
        let (a, b) = (&report.runs[0].all, &report.runs[1].all);
        line(String::new());
        line(format!(
            "Persona effect: all-checks kappa {} hidden vs {} shown; safety-check kappa {} vs {}; flag recall {} vs {}",
            num(a.all_checks.kappa),
            num(b.all_checks.kappa),
            num(a.safety_checks.kappa),
            num(b.safety_checks.kappa),
            num(a.flags.last().and_then(|f| f.recall)),
            num(b.flags.last().and_then(|f| f.recall))
        ));
    }
    if report.mode == "simulator" {
        line(format!("Note: {SIM_NOTE}."));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Command line

fn usage_exit(problem: &str) -> ! {
    eprintln!("eval-golden: {problem}\n{USAGE}");
    std::process::exit(2);
}

/// `cargo xtask eval-golden ...`
pub fn main(args: &[&str]) -> Result<()> {
    let mut base_url = None;
    let mut sim = false;
    let mut key_env = "OPENAI_API_KEY".to_owned();
    let mut model = "gpt-4o".to_owned();
    let mut report_path = None;
    let mut golden_dir = PathBuf::from("golden");
    let mut only = Vec::new();
    let mut runs = 1;
    let mut personas = vec![Persona::Without];
    let mut split = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value =
            || it.next().map(|v| (*v).to_owned()).unwrap_or_else(|| usage_exit(&format!("{arg} needs a value")));
        match *arg {
            "--sim" => sim = true,
            "--base-url" => base_url = Some(value()),
            "--api-key-env" => key_env = value(),
            "--model" => model = value(),
            "--report" => report_path = Some(PathBuf::from(value())),
            "--golden-dir" => golden_dir = PathBuf::from(value()),
            "--case" => only.push(value()),
            "--runs" => {
                runs = value()
                    .parse()
                    .ok()
                    .filter(|k| (1..=20).contains(k))
                    .unwrap_or_else(|| usage_exit("--runs is 1 to 20"))
            }
            "--persona" => {
                personas = match value().as_str() {
                    "without" => vec![Persona::Without],
                    "with" => vec![Persona::With],
                    "both" => vec![Persona::Without, Persona::With],
                    _ => usage_exit("--persona is without, with or both"),
                }
            }
            "--split" => {
                split = match value().as_str() {
                    "all" => None,
                    "dev" => Some(Split::Dev),
                    "held_out" => Some(Split::HeldOut),
                    _ => usage_exit("--split is all, dev or held_out"),
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => usage_exit(&format!("unknown argument `{other}`")),
        }
    }
    let target = match (sim, base_url) {
        (true, Some(url)) if url != "sim" => usage_exit("give either --sim or --base-url, not both"),
        (true, _) => Target::Sim,
        (false, Some(url)) if url == "sim" => Target::Sim,
        (false, Some(base_url)) => {
            let api_key = std::env::var(&key_env)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| anyhow!("{key_env} is not set: the API key for {base_url} is read from it"))?;
            Target::Api { base_url, api_key }
        }
        (false, None) => usage_exit("--base-url (or --sim) is required"),
    };
    // The profiled cases (`golden/truth/`) are named by `--case` too.
    let truth_ids: Vec<String> = crate::golden_truth::load(&golden_dir)?.into_iter().map(|c| c.id).collect();
    let (truth_only, only): (Vec<String>, Vec<String>) = only.into_iter().partition(|id| truth_ids.contains(id));
    let main_set = !only.is_empty() || truth_only.is_empty();
    let options = Options { target, model, golden_dir, only, runs, personas, split };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = if main_set { Some(runtime.block_on(run(&options))?) } else { None };
    if let Some(report) = &report {
        print!("{}", render(report));
    }
    if options.only.is_empty() || !truth_only.is_empty() {
        let target = match &options.target {
            Target::Sim => None,
            Target::Api { base_url, api_key } => Some((base_url.as_str(), api_key.as_str())),
        };
        let work = WorkDir::new()?;
        let truth = runtime.block_on(crate::golden_truth::run(
            &options.golden_dir,
            &truth_only,
            target,
            &options.model,
            &work.0,
        ))?;
        print!("{}", crate::golden_truth::render(&truth));
    }
    let Some(report) = report else { return Ok(()) };
    if let Some(path) = report_path {
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("eval-golden: wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden")
    }

    #[test]
    fn every_golden_file_is_valid() -> Result<()> {
        let cases = load_cases(&golden_dir())?;
        let problems = validate_set(&cases);
        assert!(problems.is_empty(), "golden set problems:\n{}", problems.join("\n"));
        Ok(())
    }

    fn labels(checks: &[(&str, CheckAnswer)], flags: &[FlagType]) -> Labels {
        Labels {
            checks: checks.iter().map(|(k, a)| (k.to_string(), *a)).collect(),
            facts: BTreeMap::new(),
            flags: flags.to_vec(),
        }
    }

    #[test]
    fn the_validator_enforces_na_rules_and_flag_consistency() {
        use CheckAnswer::{No, NotApplicable as Na, Yes};
        let problems = |l: &Labels| validate_labels(l, "").join("\n");
        // N/A for means without a direct ask: the counselor caused the gap.
        let p = problems(&labels(&[("asks_about_suicide.asks_directly", No), ("risk_capability.means", Na)], &[]));
        assert!(p.contains("`risk_capability.means` is not_applicable only after a direct ask"), "{p}");
        // Never-N/A checks.
        let p = problems(&labels(&[("collaborative_style.no_lecturing", Na)], &[]));
        assert!(p.contains("never not_applicable"), "{p}");
        // Denied after a direct ask, yet a "no" on another check with that rule.
        let p = problems(&labels(
            &[("asks_about_suicide.asks_directly", Yes), ("risk_intent.plan", Na), ("risk_intent.timeline", No)],
            &[],
        ));
        assert!(p.contains("`risk_intent.timeline` = no, but"), "{p}");
        // Imminent and not imminent at once.
        let p = problems(&labels(&[("collaboration.least_invasive", Na), ("imminent_risk.active_rescue", Na)], &[]));
        assert!(p.contains("exactly one of"), "{p}");
        // Means restriction N/A although means were never asked about.
        let p = problems(&labels(&[("risk_capability.means", No), ("safety_planning.means_restriction", Na)], &[]));
        assert!(p.contains("only when means were asked about"), "{p}");
        // With the facts labelled, the flags are exactly the gates the labels fire.
        let facts = |yes: &[&str]| -> BTreeMap<String, CheckAnswer> {
            rubric::FACTS.iter().map(|(k, _)| ((*k).to_owned(), if yes.contains(k) { Yes } else { No })).collect()
        };
        let mut l = labels(&[("imminent_risk.active_rescue", No), ("collaboration.least_invasive", Na)], &[]);
        l.facts = facts(&["imminent_risk"]);
        let p = problems(&l);
        assert!(p.contains("the labels fire the gate `missed_rescue`: flag it"), "{p}");
        let mut l = labels(
            &[("imminent_risk.active_rescue", Yes), ("collaboration.least_invasive", Na)],
            &[FlagType::MissedRescue],
        );
        l.facts = facts(&["imminent_risk"]);
        let p = problems(&l);
        assert!(p.contains("flag `missed_rescue` is not fired by the labels"), "{p}");
        let mut l = labels(&[("risk_capability.firearms", No), ("asks_about_suicide.asks_directly", Yes)], &[]);
        l.facts = facts(&["ideation_disclosed", "gun_in_situation"]);
        let p = problems(&l);
        assert!(p.contains("gate `firearms_not_asked`"), "{p}");
        // Firearms not asked during a rescue: not required (the rescue came first), but a flag
        // the agreed v3 table would fire is accepted.
        let rescue = [
            ("asks_about_suicide.asks_directly", Yes),
            ("risk_intent.plan", Yes),
            ("risk_capability.means", Yes),
            ("risk_capability.firearms", No),
            ("imminent_risk.active_rescue", Yes),
            ("collaboration.least_invasive", Na),
        ];
        for flags in [vec![], vec![FlagType::FirearmsNotAsked]] {
            let mut l = labels(&rescue, &flags);
            l.facts = facts(&["ideation_disclosed", "imminent_risk", "suicidal_cues"]);
            assert!(!problems(&l).contains("firearms_not_asked"), "{flags:?}: {}", problems(&l));
        }
        // A gun in the situation: firearms is asked even after a denial.
        let mut l = labels(&[("asks_about_suicide.asks_directly", Yes), ("risk_capability.firearms", Na)], &[]);
        l.facts = facts(&["gun_in_situation"]);
        assert!(problems(&l).contains("no gun is part of the caller's situation"), "{}", problems(&l));
        // v3: imminent risk and no rescue started: staying on the line is a no, not N/A.
        let p = problems(&labels(
            &[
                ("imminent_risk.active_rescue", No),
                ("collaboration.least_invasive", Na),
                ("imminent_risk.stays_on_line", Na),
            ],
            &[],
        ));
        assert!(p.contains("`imminent_risk.stays_on_line` is not_applicable only when risk was not imminent"), "{p}");
        let p = problems(&labels(&[("risk_vibes.x", Yes), ("scenario_goals.goal_1", Yes)], &[]));
        assert!(p.contains("unknown check `risk_vibes.x`") && p.contains("fewer goals"), "{p}");
        // A consistent set passes.
        let ok = labels(
            &[
                ("asks_about_suicide.asks_directly", No),
                ("asks_about_suicide.asks_in_response_to_cues", No),
                ("collaboration.least_invasive", Yes),
                ("imminent_risk.active_rescue", Na),
                ("imminent_risk.stays_on_line", Na),
            ],
            &[FlagType::SuicideNotAsked],
        );
        assert!(problems(&ok).is_empty(), "{}", problems(&ok));
    }

    #[test]
    fn disagreements_need_a_resolution_with_a_reason() -> Result<()> {
        let l =
            load_cases(&golden_dir())?.into_iter().find(|l| l.second.is_some()).context("a double-labelled case")?;
        let mut second = l.second.clone().context("second")?;
        let key = "risk_capability.firearms";
        let flipped = match second.checks[key] {
            CheckAnswer::Yes => CheckAnswer::No,
            _ => CheckAnswer::Yes,
        };
        second.checks.insert(key.into(), flipped);
        let mut case = l.case.clone();
        case.resolutions.retain(|r| r.key != key);
        let (_, problems) = resolve(&case, Some(&second));
        assert!(problems.iter().any(|p| p.contains("passes disagree on `risk_capability.firearms`")), "{problems:?}");
        case.resolutions.push(admin::calibration::Resolution {
            key: key.into(),
            first: case.labels.checks[key].as_str().into(),
            second: flipped.as_str().into(),
            resolved: flipped.as_str().into(),
            reason: "The second pass read turn 5 correctly.".into(),
        });
        let (resolved, problems) = resolve(&case, Some(&second));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(resolved.checks[key], flipped);
        Ok(())
    }

    #[test]
    fn case_03_now_scores_below_case_08() -> Result<()> {
        // Computed from the resolved labels' own checks, ratings and flags: the call that missed
        // forty stockpiled pills must not outscore the dismissive call.
        let cases = load_cases(&golden_dir())?;
        let score = |prefix: &str| -> Result<(Option<f64>, Option<ScoreBand>)> {
            let l = cases.iter().find(|l| l.case.id.starts_with(prefix)).context("case")?;
            let s = label_score(l);
            Ok((s.overall, s.band))
        };
        let (s03, b03) = score("03_")?;
        let (s08, _) = score("08_")?;
        assert!(s03.zip(s08).is_some_and(|(a, b)| a < b), "03 {s03:?} vs 08 {s08:?}");
        assert_eq!(b03, Some(ScoreBand::NeedsWork));
        Ok(())
    }

    /// The issue's "done when": every ordering pair right from the reference labels, no gated
    /// reference case above its cap.
    #[test]
    fn the_ordering_set_is_right_and_no_gated_case_passes_its_cap() -> Result<()> {
        let cases = load_cases(&golden_dir())?;
        let pairs = load_ordering(&golden_dir())?;
        let problems = validate_ordering(&pairs, &cases);
        assert!(problems.is_empty(), "{problems:?}");
        let r = reference_figures(&cases, &pairs);
        assert_eq!(r.ordering.compared, pairs.len());
        assert_eq!(r.ordering.correct, pairs.len(), "{:#?}", r.ordering.wrong);
        assert!(r.over_cap.is_empty(), "{:?}", r.over_cap);
        assert!(r.gated_cases > 0 && r.coverage.is_some_and(|c| c > 0.0 && c <= 1.0));
        // The issue's inversions, the right way round.
        for (better, worse) in [
            ("04_attempt_in_progress_rescue", "07_lecturing_moralising"),
            ("22_imminent_refuses_rescue", "07_lecturing_moralising"),
            ("26_declines_medical_question", "09_medical_advice_stop_medication"),
        ] {
            assert!(pairs.iter().any(|p| p.better == better && p.worse == worse), "{better} > {worse}");
        }
        Ok(())
    }

    #[test]
    fn unknown_fields_in_a_golden_file_are_rejected() {
        let text = r#"{"id":"x","title":"t","split":"dev","scenario":null,"turns":[],"labels":{"checks":{},"flags":[]},"notes":"n","extra":1}"#;
        assert!(serde_json::from_str::<Case>(text).is_err());
        let bad = r#"{"id":"x","title":"t","split":"dev","scenario":null,"turns":[],"labels":{"checks":{"a.b":"maybe"},"flags":[]},"notes":"n"}"#;
        assert!(serde_json::from_str::<Case>(bad).is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn disagreements_are_reported() -> Result<()> {
        // The simulator answers a case as if the counselor had done otherwise: the comparison
        // must see every difference, N/A for a "no" included.
        let l = load_cases(&golden_dir())?
            .into_iter()
            .find(|l| l.case.id.starts_with("02_"))
            .context("case 02 is in the set")?;
        let mut wrong = l.clone();
        wrong.resolved.checks.insert("asks_about_suicide.asks_directly".into(), CheckAnswer::Yes);
        wrong.resolved.checks.insert("risk_capability.means".into(), CheckAnswer::NotApplicable);
        wrong.resolved.flags = vec![FlagType::MedicalAdvice];
        let sim = Simulator::start().await?;
        let live = Live { base_url: sim.base_url(), api_key: "sim-key".into(), sim: Some(sim) };
        let work = WorkDir::new()?;
        if let Some(sim) = &live.sim {
            script_oracle(sim, &wrong);
        }
        let outcome = evaluate_case(&l, &live, "gpt-4o", &work.0, Persona::Without).await?;
        let result = case_result(&l, vec![outcome]);
        for needle in [
            "asks_about_suicide.asks_directly: expected no, got yes",
            "risk_capability.means: expected no, got not_applicable",
            "flag missed: suicide_not_asked",
            "flag not expected: medical_advice",
        ] {
            assert!(result.mismatches.iter().any(|m| m == needle), "{needle} in {:?}", result.mismatches);
        }
        let g = group(std::slice::from_ref(&result), std::slice::from_ref(&l), None);
        assert_eq!(g.checks["risk_capability.means"].no_answered_na, 1);
        assert!(g.all_checks.kappa.is_some_and(|k| k < 1.0));
        let all = g.flags.last().context("all")?;
        assert_eq!((all.true_positives, all.false_positives), (0, 1));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn simulator_run_agrees_perfectly_with_and_without_the_persona() -> Result<()> {
        let options = Options {
            target: Target::Sim,
            model: "gpt-4o".into(),
            golden_dir: golden_dir(),
            only: Vec::new(),
            runs: 2,
            personas: vec![Persona::Without, Persona::With],
            split: None,
        };
        let report = run(&options).await?;
        let text = render(&report);
        assert!(text.contains("simulator: plumbing check, not a quality measurement"), "{text}");
        assert!(report.cases >= MIN_CASES);
        for run in &report.runs {
            let all = &run.all.all_checks;
            assert_eq!(all.agreed, all.n, "{text}");
            assert_eq!(all.skipped, 0);
            assert_eq!(all.kappa, Some(1.0), "{text}");
            let flags = run.all.flags.last().context("all")?;
            assert_eq!((flags.precision, flags.recall), (Some(1.0), Some(1.0)), "{text}");
            assert_eq!(run.all.bands.agreed, run.all.bands.n, "{text}");
            assert_eq!(run.variance.unstable_checks, 0);
            assert!(run.per_case.iter().all(|r| r.mismatches.is_empty()), "{text}");
            // The evaluator's scores equal the labels' scores, so its ordering is the labels'.
            assert_eq!(run.ordering.share, report.reference.ordering.share, "{text}");
        }
        assert_eq!(report.reference.ordering.share, Some(1.0), "{text}");
        for needle in [
            "gate recall:",
            "ordering share (reference labels): 100.0%",
            "coverage:",
            "above their cap: 0",
            "held for review: 0 of",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        let json = serde_json::to_value(&report)?;
        assert_eq!(json["mode"], "simulator");
        Ok(())
    }
}
