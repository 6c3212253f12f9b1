//! `cargo xtask eval-golden`: how well does the evaluator agree with human labels?
//!
//! Each file in `golden/` is a labelled practice-call transcript: the answers a careful trainer
//! gives to rubric checks (`<criterion>.<check>` → yes / no / not_applicable) and exactly the safety
//! flags that must be raised. For every case this task builds what production would hold — a fresh
//! SQLite store with an account, a counselor, the scenario (if any), a chat session and its turns —
//! and runs the real `admin::evaluation::evaluate_session` against an OpenAI-compatible endpoint.
//! It then compares the evaluation's check answers with the labels (agreement, Cohen's kappa) and
//! the flags the evaluation stored with the expected ones (precision, recall).
//!
//! It is a measurement, not a gate: disagreements still exit 0. Only plumbing failures (the
//! evaluation call erroring, an invalid golden file) exit non-zero.
//!
//! `--sim` (or `--base-url sim`) runs against the in-process OpenAI simulator instead, scripted to
//! answer each case with an oracle built from its labels. That proves the plumbing end to end —
//! store, prompt, schema, parsing, validation, flag storage, comparison — and must show kappa 1.0
//! and full flag recall; it says nothing about any model's quality.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use admin::rubric;
use admin::{AppState, Config, Secret};
use anyhow::{Context, Result, anyhow, bail};
use openai_sim::{Rule, Simulator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{
    CheckAnswer, FlagSource, FlagType, NewSession, NewTurn, NewUser, Role, ScenarioInput, ScenarioMode, SessionKind,
    SessionStatus, Speaker,
};

const USAGE: &str = "usage: cargo xtask eval-golden (--base-url <OpenAI-compatible URL> | --sim) \
[--api-key-env OPENAI_API_KEY] [--model gpt-4o] [--report path.json] [--case <id> ...] [--golden-dir golden]";

/// Checks every case must label: the ones the safety flags and a supervisor's trust rest on.
pub const REQUIRED_CHECKS: &[&str] = &[
    "asks_about_suicide.asks_directly",
    "risk_assessment.capability",
    "risk_assessment.intent_plan",
    "collaboration_safety.least_invasive",
    "collaboration_safety.rescue_when_imminent",
    "collaborative_style.no_lecturing",
    "safety_planning.means_restriction",
];

/// Turns per transcript.
const MIN_TURNS: usize = 8;
const MAX_TURNS: usize = 30;
/// The set must stay big enough to mean something.
const MIN_CASES: usize = 12;

const SIM_NOTE: &str = "simulator: plumbing check, not a quality measurement (the simulator answers each case with \
an oracle built from its golden labels, so agreement must be perfect)";

// ---------------------------------------------------------------------------------------------
// The golden files

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub title: String,
    /// `null` for free practice.
    pub scenario: Option<ScenarioSpec>,
    pub turns: Vec<Turn>,
    pub expected: Expected,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub title: String,
    pub description: String,
    /// The caller persona.
    pub prompt: String,
    /// Grading guidance; when non-empty the rubric gains `scenario_goals`.
    #[serde(default)]
    pub evaluator_context: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub speaker: Party,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Counselor,
    Caller,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// `<criterion_key>.<check_key>` → the labelled answer; unlabelled checks are not scored.
    pub checks: BTreeMap<String, CheckAnswer>,
    /// Exactly the flag types the evaluation must raise.
    pub flags: Vec<FlagType>,
    pub notes: String,
}

impl Case {
    fn has_guidance(&self) -> bool {
        self.scenario.as_ref().is_some_and(|s| !s.evaluator_context.trim().is_empty())
    }

    fn label(&self, key: &str) -> Option<CheckAnswer> {
        self.expected.checks.get(key).copied()
    }
}

/// Reads every `*.json` in `dir`, sorted by file name.
pub fn load_cases(dir: &Path) -> Result<Vec<(PathBuf, Case)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let case: Case = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            Ok((path, case))
        })
        .collect()
}

/// What is wrong with one case (empty: nothing). `file_stem` must equal the case id.
pub fn validate_case(case: &Case, file_stem: &str) -> Vec<String> {
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
    let criteria = rubric::criteria(case.has_guidance());
    for key in case.expected.checks.keys() {
        let known = key.split_once('.').is_some_and(|(criterion, check)| {
            criteria.iter().any(|c| c.key == criterion && c.checks.iter().any(|k| k.key == check))
        });
        if !known {
            let hint =
                if key.starts_with("scenario_goals.") { " (needs a scenario with evaluator_context)" } else { "" };
            problems.push(format!("unknown check `{key}`{hint}"));
        }
    }
    for key in REQUIRED_CHECKS {
        if !case.expected.checks.contains_key(*key) {
            problems.push(format!("required check `{key}` is not labelled"));
        }
    }
    let mut seen = BTreeSet::new();
    for flag in &case.expected.flags {
        if !rubric::EVALUATION_FLAGS.iter().any(|(f, _)| f == flag) {
            problems.push(format!("flag `{}` is not one the evaluation raises", flag.as_str()));
        }
        if !seen.insert(flag.as_str()) {
            problems.push(format!("flag `{}` listed twice", flag.as_str()));
        }
    }
    if case.expected.notes.trim().is_empty() {
        problems.push("notes are empty: say why the labels are what they are".into());
    }
    // The labels and the flags must tell the same story.
    let flagged = |f: FlagType| case.expected.flags.contains(&f);
    let consistency = [
        (FlagType::SuicideNotAsked, "asks_about_suicide.asks_directly", CheckAnswer::No, false),
        (FlagType::MissedRescue, "collaboration_safety.rescue_when_imminent", CheckAnswer::No, true),
        (FlagType::CoercionWithoutImminentRisk, "collaboration_safety.least_invasive", CheckAnswer::No, true),
    ];
    for (flag, check, answer, both_ways) in consistency {
        let labelled = case.label(check) == Some(answer);
        if flagged(flag) && !labelled {
            problems.push(format!("flag `{}` needs `{check}` = {}", flag.as_str(), answer.as_str()));
        }
        if both_ways && labelled && !flagged(flag) {
            problems.push(format!("`{check}` = {} needs flag `{}`", answer.as_str(), flag.as_str()));
        }
    }
    problems
}

/// Problems with the set as a whole: size, unique ids, every evaluation flag exercised.
pub fn validate_set(cases: &[(PathBuf, Case)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, case) in cases {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        problems.extend(validate_case(case, stem).into_iter().map(|p| format!("{}: {p}", path.display())));
    }
    if cases.len() < MIN_CASES {
        problems.push(format!("{} cases; the set needs at least {MIN_CASES}", cases.len()));
    }
    let ids: BTreeSet<&str> = cases.iter().map(|(_, c)| c.id.as_str()).collect();
    if ids.len() != cases.len() {
        problems.push("case ids are not unique".into());
    }
    for (flag, _) in rubric::EVALUATION_FLAGS {
        if !cases.iter().any(|(_, c)| c.expected.flags.contains(flag)) {
            problems.push(format!("no case expects flag `{}`", flag.as_str()));
        }
    }
    if !cases.iter().any(|(_, c)| c.expected.flags.is_empty()) {
        problems.push("no case expects no flags (false positives would go unmeasured)".into());
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Cohen's kappa for two raters over the same items: (p_o - p_e) / (1 - p_e), where p_o is the
/// observed agreement and p_e the agreement expected by chance from each rater's own category
/// frequencies. `None` when undefined: no items, or p_e = 1 (both raters used one and the same
/// category for everything, so chance already explains all agreement).
pub fn cohens_kappa<T: PartialEq + Copy>(pairs: &[(T, T)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let mut categories: Vec<T> = Vec::new();
    for (a, b) in pairs {
        for c in [*a, *b] {
            if !categories.contains(&c) {
                categories.push(c);
            }
        }
    }
    let observed = pairs.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let chance: f64 = categories
        .iter()
        .map(|c| {
            let first = pairs.iter().filter(|(a, _)| a == c).count() as f64 / n;
            let second = pairs.iter().filter(|(_, b)| b == c).count() as f64 / n;
            first * second
        })
        .sum();
    if (1.0 - chance).abs() < 1e-12 {
        return None;
    }
    Some((observed - chance) / (1.0 - chance))
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

// ---------------------------------------------------------------------------------------------
// Running

/// Where evaluations are sent.
#[derive(Debug, Clone)]
pub enum Target {
    /// The in-process simulator, scripted with oracle answers.
    Sim,
    /// A real OpenAI-compatible endpoint.
    Api { base_url: String, api_key: String },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub model: String,
    pub golden_dir: PathBuf,
    /// Only these case ids (empty: all).
    pub only: Vec<String>,
}

/// One labelled check and what the evaluator answered (`None`: it skipped the check).
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub key: String,
    pub criterion: String,
    pub expected: CheckAnswer,
    pub actual: Option<CheckAnswer>,
}

impl CheckOutcome {
    fn agrees(&self) -> bool {
        self.actual == Some(self.expected)
    }

    /// Both answers yes/no: the pair kappa is computed on.
    fn yes_no(&self) -> Option<(bool, bool)> {
        let b = |a: CheckAnswer| match a {
            CheckAnswer::Yes => Some(true),
            CheckAnswer::No => Some(false),
            CheckAnswer::NotApplicable => None,
        };
        Some((b(self.expected)?, b(self.actual?)?))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub title: String,
    pub overall_score: f64,
    pub checks: Vec<CheckOutcome>,
    pub expected_flags: Vec<FlagType>,
    pub raised_flags: Vec<FlagType>,
    pub mismatches: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// Labelled checks.
    pub labelled: usize,
    /// Answered exactly as labelled (yes / no / not_applicable as three categories).
    pub agreed: usize,
    /// Labelled checks the evaluator did not answer (counted as disagreements).
    pub missing: usize,
    pub agreement: Option<f64>,
    /// Cohen's kappa over the checks both the label and the evaluator answered yes or no.
    pub kappa_yes_no: Option<f64>,
    /// How many checks that kappa rests on.
    pub kappa_n: usize,
}

impl Agreement {
    fn of<'a>(outcomes: impl Iterator<Item = &'a CheckOutcome>) -> Self {
        let outcomes: Vec<&CheckOutcome> = outcomes.collect();
        let agreed = outcomes.iter().filter(|o| o.agrees()).count();
        let pairs: Vec<(bool, bool)> = outcomes.iter().filter_map(|o| o.yes_no()).collect();
        Agreement {
            labelled: outcomes.len(),
            agreed,
            missing: outcomes.iter().filter(|o| o.actual.is_none()).count(),
            agreement: ratio(agreed, outcomes.len()),
            kappa_yes_no: cohens_kappa(&pairs),
            kappa_n: pairs.len(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CriterionAgreement {
    pub criterion: String,
    #[serde(flatten)]
    pub agreement: Agreement,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlagScore {
    pub flag_type: String,
    pub expected: usize,
    pub raised: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

impl FlagScore {
    fn new(flag_type: String, tp: usize, fp: usize, fneg: usize) -> Self {
        FlagScore {
            flag_type,
            expected: tp + fneg,
            raised: tp + fp,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fneg,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fneg),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub note: String,
    pub base_url: String,
    pub model: String,
    pub cases: usize,
    pub checks: Agreement,
    pub criteria: Vec<CriterionAgreement>,
    pub flags: Vec<FlagScore>,
    pub flags_overall: FlagScore,
    /// Kappa over every (case, flag type) raise/not-raise decision.
    pub flags_kappa: Option<f64>,
    pub per_case: Vec<CaseResult>,
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
    let problems = validate_set(&cases);
    if !problems.is_empty() {
        bail!("the golden set is invalid:\n  {}", problems.join("\n  "));
    }
    if !options.only.is_empty() {
        if let Some(unknown) = options.only.iter().find(|id| !cases.iter().any(|(_, c)| &c.id == *id)) {
            bail!("no golden case `{unknown}`");
        }
        cases.retain(|(_, c)| options.only.contains(&c.id));
    }
    let live = match &options.target {
        Target::Sim => {
            let sim = Simulator::start().await.context("starting the OpenAI simulator")?;
            Live { base_url: sim.base_url(), api_key: "sim-key".into(), sim: Some(sim) }
        }
        Target::Api { base_url, api_key } => Live { base_url: base_url.clone(), api_key: api_key.clone(), sim: None },
    };
    // One directory for the run's databases, removed at the end: a background task of a finished
    // case that reconnects late then fails instead of leaving a stray file behind.
    let work = WorkDir::new()?;
    let mut results = Vec::new();
    for (_, case) in &cases {
        eprintln!("eval-golden: {} ...", case.id);
        if let Some(sim) = &live.sim {
            script_oracle(sim, case);
        }
        results.push(evaluate_case(case, &live, &options.model, &work.0).await?);
    }
    if let Some(sim) = live.sim {
        sim.shutdown().await;
    }
    drop(work);
    let (mode, note) = match &options.target {
        Target::Sim => ("simulator", SIM_NOTE.to_owned()),
        Target::Api { .. } => ("model", format!("model {} graded {} golden cases", options.model, results.len())),
    };
    Ok(score(mode, note, &live.base_url, &options.model, results))
}

/// A private temporary directory, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("proto-trainer-golden-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // A closing connection may still be writing its WAL index; try again briefly.
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

/// One case through the production path: store → `evaluate_session` → stored evaluation and flags.
async fn evaluate_case(case: &Case, live: &Live, model: &str, dir: &Path) -> Result<CaseResult> {
    let url = format!("sqlite://{}?mode=rwc", dir.join(format!("{}.db", case.id)).display());
    let store = store::Store::connect(&url).await?;
    store.migrate().await?;
    let account = store.create_account(&format!("Golden {}", case.id)).await?;
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
    let scenario_id = match &case.scenario {
        Some(s) => {
            let input = ScenarioInput {
                title: s.title.clone(),
                prompt: s.prompt.clone(),
                description: Some(s.description.clone()),
                mode: ScenarioMode::Chat,
                category: "assessment".into(),
                skills: Vec::new(),
                difficulty: None,
                estimated_time: None,
                relevant_policy_sections: None,
                evaluator_context: Some(s.evaluator_context.clone()),
                is_one_time: None,
                assign_to: None,
                voice: None,
            };
            Some(store.create_scenario(account.id, None, &input).await?.0.id)
        }
        None => None,
    };
    let session = store
        .create_session(
            account.id,
            &NewSession {
                user_id: counselor.id,
                assignment_id: None,
                scenario_id,
                kind: SessionKind::Chat,
                room_name: None,
            },
        )
        .await?;
    let turns: Vec<NewTurn> = case
        .turns
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

    let mut config = Config::for_database(&url);
    config.openai_base_url = live.base_url.clone();
    config.openai_api_key = Some(Secret::new(live.api_key.clone()));
    config.evaluator_model = model.to_owned();
    config.llm_timeout_secs = if live.sim.is_some() { 30 } else { 180 };
    let state = AppState::new(store.clone(), config)?;
    let evaluated = admin::evaluation::evaluate_session(&state, account.id, session.id)
        .await
        .map_err(|e| anyhow!("case {}: the evaluation failed: {e} ({e:?})", case.id))?;
    if let Some(sim) = &live.sim {
        // The plumbing check proper: the evaluator was sent this case's scenario and every turn.
        let sent = sim
            .chat_requests()
            .into_iter()
            .rfind(|b| b["response_format"]["json_schema"]["name"] == "evaluation")
            .map(|b| message_text(&b))
            .ok_or_else(|| anyhow!("case {}: no evaluation request reached the simulator", case.id))?;
        let persona = case.scenario.as_ref().map(|s| s.prompt.trim());
        if let Some(missing) = case.turns.iter().map(|t| t.text.trim()).chain(persona).find(|t| !sent.contains(t)) {
            bail!("case {}: the evaluation request lacks `{missing}`", case.id);
        }
    }
    // Only the evaluation's flags are measured; the background analysis may add its own.
    let raised: BTreeSet<&'static str> = store
        .session_flags(session.id)
        .await?
        .into_iter()
        .filter(|f| f.source == FlagSource::Evaluation)
        .map(|f| f.flag_type.as_str())
        .collect();
    // Closing the pool cuts off the background analysis (its next query fails), so it neither
    // outlives the case's database nor keeps spending tokens.
    store.close().await;

    let answers: BTreeMap<String, CheckAnswer> = evaluated
        .evaluation
        .criteria
        .iter()
        .flat_map(|c| c.checks.iter().map(move |k| (format!("{}.{}", c.key, k.key), k.answer)))
        .collect();
    let checks: Vec<CheckOutcome> = case
        .expected
        .checks
        .iter()
        .map(|(key, expected)| CheckOutcome {
            key: key.clone(),
            criterion: key.split_once('.').map(|(c, _)| c).unwrap_or(key).to_owned(),
            expected: *expected,
            actual: answers.get(key).copied(),
        })
        .collect();
    let expected_flags: BTreeSet<&'static str> = case.expected.flags.iter().map(|f| f.as_str()).collect();
    let mut mismatches: Vec<String> = checks
        .iter()
        .filter(|o| !o.agrees())
        .map(|o| {
            format!(
                "{}: expected {}, got {}",
                o.key,
                o.expected.as_str(),
                o.actual.map(CheckAnswer::as_str).unwrap_or("no answer")
            )
        })
        .collect();
    mismatches.extend(expected_flags.difference(&raised).map(|f| format!("flag missed: {f}")));
    mismatches.extend(raised.difference(&expected_flags).map(|f| format!("flag not expected: {f}")));
    let to_types = |set: &BTreeSet<&str>| set.iter().filter_map(|f| f.parse::<FlagType>().ok()).collect::<Vec<_>>();
    Ok(CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        overall_score: evaluated.evaluation.overall_score,
        checks,
        expected_flags: to_types(&expected_flags),
        raised_flags: to_types(&raised),
        mismatches,
    })
}

/// Scripts the simulator to answer the next evaluation with `case`'s oracle.
fn script_oracle(sim: &Simulator, case: &Case) {
    sim.clear_rules();
    sim.clear_requests();
    sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(oracle_answer(case)));
    // The post-session analysis the evaluation starts: nothing to add, and not measured.
    sim.add_rule(Rule::chat().schema_name("analysis").reply_json(json!({"summary": "Golden run.", "findings": []})));
}

/// The answer a perfect evaluator would give for `case`, in the evaluator's schema: labelled
/// checks as labelled (unlabelled ones not_applicable), each rating from its criterion's labelled
/// yes/no share, exactly the expected flags.
pub fn oracle_answer(case: &Case) -> Value {
    let mut ratings = Vec::new();
    let criteria: Vec<Value> = rubric::criteria(case.has_guidance())
        .iter()
        .map(|criterion| {
            let (mut yes, mut no) = (0u32, 0u32);
            let checks: Vec<Value> = criterion
                .checks
                .iter()
                .map(|check| {
                    let label = case.label(&format!("{}.{}", criterion.key, check.key));
                    match label {
                        Some(CheckAnswer::Yes) => yes += 1,
                        Some(CheckAnswer::No) => no += 1,
                        _ => {}
                    }
                    let note = if label.is_some() { "golden label" } else { "not labelled in the golden set" };
                    let answer = label.unwrap_or(CheckAnswer::NotApplicable).as_str();
                    json!({"key": check.key, "answer": answer, "turns": [], "note": note})
                })
                .collect();
            // 1 (none met) to 4 (all met); null when no labelled check applied.
            let rating = (yes + no > 0).then(|| 1 + (3.0 * f64::from(yes) / f64::from(yes + no)).round() as u8);
            ratings.extend(rating);
            json!({"key": criterion.key, "checks": checks, "rating": rating, "comment": "Oracle answer from the golden labels."})
        })
        .collect();
    let overall = if ratings.is_empty() {
        0.0
    } else {
        ratings.iter().map(|r| f64::from(r - 1) / 3.0 * 100.0).sum::<f64>() / ratings.len() as f64
    };
    let flags: Vec<Value> = case
        .expected
        .flags
        .iter()
        .map(|flag| {
            let severity = match flag {
                FlagType::MissedRescue => "critical",
                FlagType::SuicideNotAsked | FlagType::MissedPlanOrMeans => "high",
                _ => "medium",
            };
            json!({
                "flag_type": flag.as_str(),
                "severity": severity,
                "details": format!("Golden oracle: `{}` is expected for case {}.", flag.as_str(), case.id),
                "turns": [],
            })
        })
        .collect();
    json!({
        "criteria": criteria,
        "strengths": ["Oracle answer: built from the golden labels."],
        "areas_to_improve": [],
        "overall_score": overall,
        "flags": flags,
    })
}

fn score(mode: &'static str, note: String, base_url: &str, model: &str, results: Vec<CaseResult>) -> Report {
    let all: Vec<&CheckOutcome> = results.iter().flat_map(|r| &r.checks).collect();
    let criteria = rubric::criteria(true)
        .iter()
        .filter(|c| all.iter().any(|o| o.criterion == c.key))
        .map(|c| CriterionAgreement {
            criterion: c.key.to_owned(),
            agreement: Agreement::of(all.iter().copied().filter(|o| o.criterion == c.key)),
        })
        .collect();
    let mut flags = Vec::new();
    let mut decisions = Vec::new();
    let (mut tp_all, mut fp_all, mut fn_all) = (0, 0, 0);
    for (flag, _) in rubric::EVALUATION_FLAGS {
        let (mut tp, mut fp, mut fneg) = (0, 0, 0);
        for r in &results {
            let (expected, raised) = (r.expected_flags.contains(flag), r.raised_flags.contains(flag));
            decisions.push((expected, raised));
            match (expected, raised) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fneg += 1,
                (false, false) => {}
            }
        }
        tp_all += tp;
        fp_all += fp;
        fn_all += fneg;
        flags.push(FlagScore::new(flag.as_str().to_owned(), tp, fp, fneg));
    }
    Report {
        mode,
        note,
        base_url: base_url.to_owned(),
        model: model.to_owned(),
        cases: results.len(),
        checks: Agreement::of(all.iter().copied()),
        criteria,
        flags,
        flags_overall: FlagScore::new("all".into(), tp_all, fp_all, fn_all),
        flags_kappa: cohens_kappa(&decisions),
        per_case: results,
    }
}

// ---------------------------------------------------------------------------------------------
// Output

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "-".into())
}

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

/// The human-readable report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("eval-golden: {} cases, model `{}` at {}", report.cases, report.model, report.base_url));
    line(format!("  {}", report.note));
    line(String::new());
    line("Rubric checks (agreement: yes / no / not_applicable as three categories, a skipped check counts".into());
    line("as a disagreement; kappa: Cohen's kappa on the checks where both the label and the evaluator".into());
    line("said yes or no, '-' where undefined: no such checks, or only one answer ever given)".into());
    line(format!(
        "  {:<22} {:>8} {:>7} {:>8} {:>10} {:>11} {:>9}",
        "criterion", "labelled", "agreed", "skipped", "agreement", "kappa(y/n)", "n(y/n)"
    ));
    let row = |name: &str, a: &Agreement| {
        format!(
            "  {:<22} {:>8} {:>7} {:>8} {:>10} {:>11} {:>9}",
            name,
            a.labelled,
            a.agreed,
            a.missing,
            pct(a.agreement),
            num(a.kappa_yes_no),
            a.kappa_n
        )
    };
    for c in &report.criteria {
        line(row(&c.criterion, &c.agreement));
    }
    line(row("all checks", &report.checks));
    line(String::new());
    line(format!("Safety flags (per type, over {} cases; '-' where undefined)", report.cases));
    line(format!(
        "  {:<31} {:>8} {:>6} {:>3} {:>3} {:>3} {:>9} {:>7}",
        "flag type", "expected", "raised", "TP", "FP", "FN", "precision", "recall"
    ));
    for f in report.flags.iter().chain([&report.flags_overall]) {
        line(format!(
            "  {:<31} {:>8} {:>6} {:>3} {:>3} {:>3} {:>9} {:>7}",
            f.flag_type,
            f.expected,
            f.raised,
            f.true_positives,
            f.false_positives,
            f.false_negatives,
            num(f.precision),
            num(f.recall)
        ));
    }
    line(format!("  kappa over every (case, flag type) raise decision: {}", num(report.flags_kappa)));
    line(String::new());
    line("Cases".into());
    for r in &report.per_case {
        let agreed = r.checks.iter().filter(|o| o.agrees()).count();
        let names = |flags: &[FlagType]| {
            if flags.is_empty() {
                "none".to_owned()
            } else {
                flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        line(format!(
            "  {:<4} {:<36} checks {:>2}/{:<2} score {:>5.1}  flags expected [{}] raised [{}]",
            if r.mismatches.is_empty() { "ok" } else { "DIFF" },
            r.id,
            agreed,
            r.checks.len(),
            r.overall_score,
            names(&r.expected_flags),
            names(&r.raised_flags)
        ));
        for m in &r.mismatches {
            line(format!("         - {m}"));
        }
    }
    line(String::new());
    line(format!(
        "Overall: check agreement {} ({}/{}), kappa (yes/no) {} over {} checks; flags precision {}, recall {}, kappa {}",
        pct(report.checks.agreement),
        report.checks.agreed,
        report.checks.labelled,
        num(report.checks.kappa_yes_no),
        report.checks.kappa_n,
        num(report.flags_overall.precision),
        num(report.flags_overall.recall),
        num(report.flags_kappa)
    ));
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
    let options = Options { target, model, golden_dir, only };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(run(&options))?;
    print!("{}", render(&report));
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

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn kappa_is_one_for_perfect_agreement() {
        let pairs = [(true, true), (false, false), (true, true), (false, false), (true, true)];
        assert!(close(cohens_kappa(&pairs), 1.0));
        let three = [("yes", "yes"), ("no", "no"), ("not_applicable", "not_applicable")];
        assert!(close(cohens_kappa(&three), 1.0));
    }

    #[test]
    fn kappa_is_zero_at_chance() {
        // Each rater says yes half the time, independently: p_o = p_e = 0.5.
        let pairs = [(true, true), (true, false), (false, true), (false, false)];
        assert!(close(cohens_kappa(&pairs), 0.0));
    }

    #[test]
    fn kappa_matches_textbook_example() {
        // The common textbook table (e.g. Wikipedia, "Cohen's kappa"): 50 items, both yes 20,
        // A yes / B no 5, A no / B yes 10, both no 15. p_o = 0.7, p_e = 0.5, kappa = 0.4.
        let mut pairs = Vec::new();
        pairs.extend(std::iter::repeat_n((true, true), 20));
        pairs.extend(std::iter::repeat_n((true, false), 5));
        pairs.extend(std::iter::repeat_n((false, true), 10));
        pairs.extend(std::iter::repeat_n((false, false), 15));
        assert!(close(cohens_kappa(&pairs), 0.4));
        // Same source, "same observed agreement, different kappa": p_o = 0.6 in both tables.
        // 45/15/25/15: p_e = 0.54, kappa = 0.06 / 0.46 = 0.1304; 25/35/5/35: p_e = 0.46,
        // kappa = 0.14 / 0.54 = 0.2593.
        let table = |a, b, c, d| {
            let mut pairs = Vec::new();
            pairs.extend(std::iter::repeat_n((true, true), a));
            pairs.extend(std::iter::repeat_n((true, false), b));
            pairs.extend(std::iter::repeat_n((false, true), c));
            pairs.extend(std::iter::repeat_n((false, false), d));
            pairs
        };
        assert!(close(cohens_kappa(&table(45, 15, 25, 15)), 0.06 / 0.46));
        assert!(close(cohens_kappa(&table(25, 35, 5, 35)), 0.14 / 0.54));
        assert_eq!(cohens_kappa(&table(45, 15, 25, 15)).map(|k| (k * 1e4).round() / 1e4), Some(0.1304));
    }

    #[test]
    fn kappa_is_negative_below_chance_and_undefined_when_degenerate() {
        assert!(close(cohens_kappa(&[(true, false), (false, true)]), -1.0));
        assert_eq!(cohens_kappa::<bool>(&[]), None);
        // One category used by both raters for everything: p_e = 1, kappa undefined (not NaN).
        assert_eq!(cohens_kappa(&[(true, true), (true, true)]), None);
        // One rater constant, the other not: defined (p_e < 1) and 0.
        assert!(close(cohens_kappa(&[(true, true), (true, false)]), 0.0));
    }

    #[test]
    fn every_golden_file_is_valid() -> Result<()> {
        let cases = load_cases(&golden_dir())?;
        let problems = validate_set(&cases);
        assert!(problems.is_empty(), "golden set problems:\n{}", problems.join("\n"));
        assert!(cases.len() >= MIN_CASES);
        for (path, case) in &cases {
            // Every labelled key is a real rubric check and every flag a real evaluation flag.
            for key in case.expected.checks.keys() {
                let (criterion, check) = key.split_once('.').context("key without a dot")?;
                let c = rubric::criteria(true).into_iter().find(|c| c.key == criterion);
                assert!(c.is_some_and(|c| c.checks.iter().any(|k| k.key == check)), "{}: {key}", path.display());
            }
            assert!(case.turns.iter().all(|t| !t.text.trim().is_empty()), "{}", path.display());
        }
        Ok(())
    }

    #[test]
    fn validation_catches_bad_cases() -> Result<()> {
        let (path, mut case) = load_cases(&golden_dir())?.into_iter().next().context("no golden case")?;
        let stem = path.file_stem().and_then(|s| s.to_str()).context("file name")?.to_owned();
        assert!(validate_case(&case, &stem).is_empty());
        case.expected.checks.insert("risk_assessment.vibes".into(), CheckAnswer::Yes);
        case.expected.checks.insert("scenario_goals.meets_guidance".into(), CheckAnswer::Yes);
        case.expected.checks.remove("collaborative_style.no_lecturing");
        case.expected.flags.push(FlagType::PolicyViolation);
        case.expected.flags.push(FlagType::MissedRescue);
        case.turns.truncate(3);
        let problems = validate_case(&case, "another_name").join("\n");
        for needle in [
            "id `",
            "3 turns",
            "unknown check `risk_assessment.vibes`",
            "needs a scenario with evaluator_context",
            "required check `collaborative_style.no_lecturing`",
            "flag `policy_violation` is not one the evaluation raises",
            "flag `missed_rescue` needs `collaboration_safety.rescue_when_imminent` = no",
        ] {
            assert!(problems.contains(needle), "missing `{needle}` in:\n{problems}");
        }
        Ok(())
    }

    #[test]
    fn unknown_fields_in_a_golden_file_are_rejected() {
        let text = r#"{"id":"x","title":"t","scenario":null,"turns":[],"expected":{"checks":{},"flags":[],"notes":"n"},"extra":1}"#;
        assert!(serde_json::from_str::<Case>(text).is_err());
        let bad_answer = r#"{"id":"x","title":"t","scenario":null,"turns":[],"expected":{"checks":{"a.b":"maybe"},"flags":[],"notes":"n"}}"#;
        assert!(serde_json::from_str::<Case>(bad_answer).is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn disagreements_are_reported() -> Result<()> {
        // The simulator answers case 02 as if the counselor had asked about suicide, raising the
        // wrong flag: the comparison must see every difference.
        let (_, case) = load_cases(&golden_dir())?
            .into_iter()
            .find(|(_, c)| c.id == "02_suicide_not_asked")
            .context("case 02 is in the set")?;
        let mut wrong = case.clone();
        wrong.expected.checks.insert("asks_about_suicide.asks_directly".into(), CheckAnswer::Yes);
        wrong.expected.checks.remove("risk_assessment.capability");
        wrong.expected.flags = vec![FlagType::MedicalAdvice];
        let sim = Simulator::start().await?;
        let live = Live { base_url: sim.base_url(), api_key: "sim-key".into(), sim: Some(sim) };
        let work = WorkDir::new()?;
        if let Some(sim) = &live.sim {
            script_oracle(sim, &wrong);
        }
        let result = evaluate_case(&case, &live, "gpt-4o", &work.0).await?;
        assert_eq!(
            result.mismatches,
            [
                "asks_about_suicide.asks_directly: expected no, got yes",
                "risk_assessment.capability: expected no, got not_applicable",
                "flag missed: suicide_not_asked",
                "flag not expected: medical_advice",
            ]
        );
        let report = score("simulator", String::new(), "sim", "gpt-4o", vec![result]);
        let asks = report.criteria.iter().find(|c| c.criterion == "asks_about_suicide").context("criterion")?;
        assert_eq!((asks.agreement.labelled, asks.agreement.agreed), (2, 1));
        assert!(close(report.flags_overall.recall, 0.0));
        assert!(close(report.flags_overall.precision, 0.0));
        assert!(report.checks.kappa_yes_no.is_some_and(|k| k < 1.0));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn simulator_run_agrees_perfectly() -> Result<()> {
        let options =
            Options { target: Target::Sim, model: "gpt-4o".into(), golden_dir: golden_dir(), only: Vec::new() };
        let report = run(&options).await?;
        let text = render(&report);
        assert!(text.contains("simulator: plumbing check, not a quality measurement"), "{text}");
        assert_eq!(report.cases, load_cases(&golden_dir())?.len());
        assert_eq!(report.checks.agreed, report.checks.labelled, "{text}");
        assert_eq!(report.checks.missing, 0);
        assert!(close(report.checks.kappa_yes_no, 1.0), "{text}");
        assert!(close(report.flags_overall.recall, 1.0), "{text}");
        assert!(close(report.flags_overall.precision, 1.0), "{text}");
        assert!(close(report.flags_kappa, 1.0), "{text}");
        assert!(report.per_case.iter().all(|r| r.mismatches.is_empty()), "{text}");
        // The JSON report carries the same numbers.
        let json = serde_json::to_value(&report)?;
        assert_eq!(json["checks"]["kappa_yes_no"], json!(1.0));
        assert_eq!(json["mode"], "simulator");
        Ok(())
    }
}
