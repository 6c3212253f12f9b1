//! `eval-golden`'s profiled cases (`golden/truth/*.json`): a transcript, the scenario's risk
//! profile, the counselor's call record, and the expected outcome of grading against the truth
//! (per fact: elicited / volunteered / missed / withheld by the caller; the determination and
//! whether its gate fires). Each case runs through the production path — a fresh SQLite store
//! with the profiled scenario, the session and its turns, the filed record, then
//! `admin::evaluation::evaluate_session` — and the evaluation's truth assessment is compared with
//! the expectation: **elicitation agreement** (facts whose outcome matches) and **determination
//! agreement** (cases whose result and gate both match).
//!
//! Against `--sim` the simulator answers the truth call by keyword matching on the real
//! transcript (`sim/src/truth.rs`), so the figures measure that heuristic and the plumbing, not
//! a model; against `--base-url` they measure the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use admin::calibration::{GoldenTurn, Party};
use admin::{AppState, Config, Secret};
use anyhow::{Context, Result, anyhow, bail};
use openai_sim::{Rule, Simulator};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{CallRecordInput, Determination, FactOutcome, RiskProfile, ScenarioInput};

use crate::golden::CaseCall;

/// One profiled golden case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthCase {
    pub id: String,
    pub title: String,
    /// The caller persona (free text beside the profile).
    pub prompt: String,
    pub profile: RiskProfile,
    pub turns: Vec<GoldenTurn>,
    pub call_record: CallRecordInput,
    pub expected: Expected,
    /// Why the labels are what they are (for people; not measured).
    #[allow(dead_code)]
    pub notes: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Fact key -> outcome, for every fact of the profile.
    pub facts: BTreeMap<String, FactOutcome>,
    pub determination: Determination,
    /// Whether an under-estimate gate holds the score.
    pub gated: bool,
}

pub fn load(dir: &Path) -> Result<Vec<TruthCase>> {
    let dir = dir.join("truth");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let case: TruthCase = serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
            if p.file_stem().is_none_or(|stem| stem != case.id.as_str()) {
                bail!("{}: the id `{}` differs from the file name", p.display(), case.id);
            }
            Ok(case)
        })
        .collect()
}

/// What is wrong with a case, if anything: an invalid profile or record, expectations that do
/// not name exactly the profile's facts, or a determination the record and level do not give.
pub fn validate(case: &TruthCase) -> Vec<String> {
    let mut problems = Vec::new();
    let at = |p: String| format!("{}: {p}", case.id);
    if let Err(errors) = case.profile.validate("profile") {
        problems.extend(errors.iter().map(|e| at(format!("profile: {} {}", e.field, e.message))));
    }
    if case.call_record.validate().is_err() {
        problems.push(at("the call record is invalid".into()));
    }
    let keys: Vec<&String> = case.profile.facts.iter().map(|f| &f.key).collect();
    if case.expected.facts.keys().collect::<Vec<_>>() != {
        let mut k = keys.clone();
        k.sort();
        k
    } {
        problems.push(at("expected.facts must name every profile fact once".into()));
    }
    let filed =
        (case.call_record.status == store::CallRecordStatus::Filed).then_some(case.call_record.risk_level).flatten();
    let mechanical = admin::truth::determination(case.profile.expected_level, filed);
    if mechanical != case.expected.determination {
        problems
            .push(at(format!("the determination of this record is {mechanical}, not {}", case.expected.determination)));
    }
    if case.expected.gated
        && !(mechanical == Determination::UnderEstimate
            && matches!(case.profile.expected_level, store::RiskLevel::High | store::RiskLevel::Imminent))
    {
        problems.push(at("only an under-estimate of high or imminent risk can be gated".into()));
    }
    if case.turns.len() < 4 {
        problems.push(at("at least 4 turns".into()));
    }
    problems
}

/// One case's outcome.
#[derive(Debug, Clone)]
pub struct TruthResult {
    pub facts: BTreeMap<String, FactOutcome>,
    pub determination: Determination,
    pub gated: bool,
}

/// The figures over all cases.
#[derive(Debug, Clone)]
pub struct TruthReport {
    pub mode: &'static str,
    pub cases: usize,
    pub facts: usize,
    pub facts_agreeing: usize,
    pub determinations_agreeing: usize,
    /// (case, fact or "determination", expected, got).
    pub disagreements: Vec<(String, String, String, String)>,
}

/// An evaluator answer for the simulator: every check yes at the first counselor turn (the
/// rubric is not what these cases measure).
fn neutral_answer(first_counselor_turn: u32) -> Value {
    let criteria: Vec<Value> = admin::rubric::criteria("")
        .iter()
        .map(|c| {
            let checks: Vec<Value> = c
                .checks
                .iter()
                .map(|k| json!({"key": k.key, "answer": "yes", "turns": [first_counselor_turn], "note": "golden"}))
                .collect();
            json!({"key": c.key, "checks": checks, "rating": 4, "comment": "golden"})
        })
        .collect();
    json!({"criteria": criteria, "strengths": [], "areas_to_improve": [], "overall_score": 90, "flags": [], "facts": []})
}

async fn run_case(
    case: &TruthCase,
    dir: &Path,
    base_url: &str,
    api_key: &str,
    model: &str,
    sim: Option<&Simulator>,
) -> Result<TruthResult> {
    let scenario = ScenarioInput {
        risk_profile: Some(case.profile.clone()),
        ..crate::golden::case_scenario(&case.title, &case.prompt)
    };
    let CaseCall { url, store, account, session } =
        crate::golden::open_case_call(dir, &case.id, Some(&scenario), &case.turns).await?;
    store.file_call_record(account.id, session, &case.call_record).await?;
    if let Some(sim) = sim {
        let first = case.turns.iter().position(|t| t.speaker == Party::Counselor).map_or(1, |i| i as u32 + 1);
        sim.clear_rules();
        sim.add_rule(Rule::chat().schema_name("evaluation").reply_json(neutral_answer(first)));
        sim.add_rule(
            Rule::chat().schema_name("analysis").reply_json(json!({"summary": "Golden run.", "findings": []})),
        );
    }
    let mut config = Config::for_database(&url);
    config.openai_base_url = base_url.to_owned();
    config.openai_api_key = Some(Secret::new(api_key.to_owned()));
    config.evaluator_model = model.to_owned();
    config.llm_timeout_secs = if sim.is_some() { 30 } else { 180 };
    let state = AppState::new(store.clone(), config)?;
    let handle = store.session_in(account.id, session).await?;
    let evaluated = admin::evaluation::evaluate_session(&state, &handle)
        .await
        .map_err(|e| anyhow!("case {}: the evaluation failed: {e}", case.id))?
        .evaluation;
    store.close().await;
    let truth = evaluated.truth.ok_or_else(|| anyhow!("case {}: no truth assessment", case.id))?;
    let gated =
        evaluated.score_basis.capped_by.iter().any(|f| {
            matches!(f, store::FlagType::ImminentRiskUnderestimated | store::FlagType::HighRiskUnderestimated)
        });
    Ok(TruthResult {
        facts: truth.facts.iter().map(|f| (f.key.clone(), f.outcome)).collect(),
        determination: truth.determination.result,
        gated,
    })
}

/// Runs the profiled cases (all, or those named in `only`) and compares them with the labels.
pub async fn run(
    golden_dir: &Path,
    only: &[String],
    target: Option<(&str, &str)>,
    model: &str,
    work: &Path,
) -> Result<TruthReport> {
    let mut cases = load(golden_dir)?;
    let problems: Vec<String> = cases.iter().flat_map(validate).collect();
    if !problems.is_empty() {
        bail!("the profiled golden cases are invalid:\n  {}", problems.join("\n  "));
    }
    if !only.is_empty() {
        cases.retain(|c| only.contains(&c.id));
    }
    let sim = match target {
        None => Some(Simulator::start().await.context("starting the OpenAI simulator")?),
        Some(_) => None,
    };
    let (base_url, api_key) = match (target, &sim) {
        (Some((url, key)), _) => (url.to_owned(), key.to_owned()),
        (None, Some(s)) => (s.base_url(), "sim-key".to_owned()),
        (None, None) => bail!("no endpoint"),
    };
    let mut report = TruthReport {
        mode: if sim.is_some() { "simulator" } else { "model" },
        cases: cases.len(),
        facts: 0,
        facts_agreeing: 0,
        determinations_agreeing: 0,
        disagreements: Vec::new(),
    };
    for case in &cases {
        eprintln!("eval-golden: {} (truth) ...", case.id);
        let got = run_case(case, work, &base_url, &api_key, model, sim.as_ref()).await?;
        for (key, want) in &case.expected.facts {
            report.facts += 1;
            let have = got.facts.get(key).copied();
            if have == Some(*want) {
                report.facts_agreeing += 1;
            } else {
                let have = have.map_or("absent".to_owned(), |h| h.to_string());
                report.disagreements.push((case.id.clone(), key.clone(), want.to_string(), have));
            }
        }
        if got.determination == case.expected.determination && got.gated == case.expected.gated {
            report.determinations_agreeing += 1;
        } else {
            report.disagreements.push((
                case.id.clone(),
                "determination".into(),
                format!("{} (gated {})", case.expected.determination, case.expected.gated),
                format!("{} (gated {})", got.determination, got.gated),
            ));
        }
    }
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(report)
}

fn share(n: usize, d: usize) -> String {
    if d == 0 { "n/a".into() } else { format!("{:.1}% ({n}/{d})", 100.0 * n as f64 / d as f64) }
}

pub fn render(report: &TruthReport) -> String {
    let mut out = format!(
        "\nProfiled cases (grading against the truth, {}): {}\n  elicitation agreement:   {}\n  determination agreement: {}\n",
        report.mode,
        report.cases,
        share(report.facts_agreeing, report.facts),
        share(report.determinations_agreeing, report.cases)
    );
    for (case, what, want, got) in &report.disagreements {
        out.push_str(&format!("  - {case} {what}: expected {want}, got {got}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profiled_case_is_valid_and_there_are_at_least_ten() -> Result<()> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden");
        let cases = load(&dir)?;
        assert!(cases.len() >= 10, "{} profiled cases", cases.len());
        let problems: Vec<String> = cases.iter().flat_map(validate).collect();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        // Every outcome and determination is represented, and both gates.
        let outcomes: std::collections::HashSet<FactOutcome> =
            cases.iter().flat_map(|c| c.expected.facts.values().copied()).collect();
        assert_eq!(outcomes.len(), FactOutcome::ALL.len(), "{outcomes:?}");
        let determinations: std::collections::BTreeSet<&str> =
            cases.iter().map(|c| c.expected.determination.as_str()).collect();
        assert_eq!(determinations.len(), Determination::ALL.len());
        assert!(cases.iter().any(|c| c.expected.gated && c.profile.expected_level == store::RiskLevel::Imminent));
        assert!(cases.iter().any(|c| c.expected.gated && c.profile.expected_level == store::RiskLevel::High));
        Ok(())
    }

    /// The plumbing through `golden::open_case_call`: every profiled case's scenario, turns and
    /// call record reach grading, whose truth call the simulator answers from the transcript.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_simulator_run_agrees_with_every_profiled_case() -> Result<()> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden");
        let work = crate::golden::WorkDir::new()?;
        let report = run(&dir, &[], None, "gpt-4o", &work.0).await?;
        let text = render(&report);
        assert_eq!(report.mode, "simulator");
        assert!(report.cases >= 10 && report.facts >= 20, "{text}");
        assert_eq!((report.facts_agreeing, report.determinations_agreeing), (report.facts, report.cases), "{text}");
        Ok(())
    }
}
