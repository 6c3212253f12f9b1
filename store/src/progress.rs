//! Progress over time for one counselor or a cohort (every counselor of the account, or those
//! assigned a given scenario): overall scores per evaluated session, each rubric criterion's
//! average rating per week, first / best / latest score per scenario, attempts and completion,
//! and flags raised. Counts and orders come from SQL, in the one dialect both backends accept;
//! per-session figures (scores, first / best / latest, criterion averages) are computed here
//! from one pass over the sessions in scope. Criterion ratings come from the
//! `evaluation_criteria` rows a trigger fills from each evaluation, which never change, so they
//! are read once per process and evaluation (`CriteriaCache`): a render does not grow with the
//! number of ratings. What a review or a flag changes (scores, ratings, the truth re-read) is
//! given to [`ProgressScope::finish`] by the caller, which computes it (`SessionFigures`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::{RowExt, Store};
use crate::domain::{CheckAnswer, Determination, DisclosureRule, FactOutcome, SessionKind, Timestamp};
use crate::error::{Error, Result};
use crate::evaluations::TruthAssessment;
use crate::ids::{AccountId, ScenarioId, SessionId, UserId};
use crate::scoped::SessionRef;
use crate::sessions::{SESSION_COLUMNS, Session};

/// Whose progress: a counselor, a cohort (those assigned a scenario), or the whole account.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    /// One counselor (counselors always get their own progress, whatever they ask for).
    #[param(value_type = Option<Uuid>)]
    pub counselor_id: Option<UserId>,
    /// The cohort of counselors who have (or had) an assignment of this scenario.
    #[param(value_type = Option<Uuid>)]
    pub scenario_id: Option<ScenarioId>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// One point per scored session, oldest first (at most 2,000, the newest); an evaluation
    /// without a score counts in `activity` only.
    pub scores: Vec<ScorePoint>,
    /// Each criterion's average rating (1-4) per week, weeks starting Monday 00:00 UTC.
    pub criteria: Vec<CriterionWeek>,
    /// First, best and latest overall score per counselor and scenario.
    pub scenarios: Vec<ScenarioScores>,
    pub activity: Activity,
    pub flags: FlagCounts,
    /// Flags raised per week.
    pub flags_by_week: Vec<FlagWeek>,
    /// Each counselor's average rating (1-4) per criterion over the whole period (the heat map).
    pub counselor_criteria: Vec<CounselorCriterion>,
    /// What matters on a profiled scenario, per counselor and week: the risk determination
    /// (exact, under, over), the hidden facts elicited and the required actions taken. A cohort's
    /// figures are the sums over its counselors.
    pub truth: Vec<TruthWeek>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CounselorCriterion {
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    pub counselor_name: String,
    pub key: String,
    pub name: String,
    pub average_rating: f64,
    /// How many ratings the average is over.
    pub ratings: i64,
}

/// One counselor's calls on profiled scenarios in one week (Monday 00:00 UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TruthWeek {
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    pub counselor_name: String,
    pub week_start: Timestamp,
    /// Evaluated sessions graded against a risk profile.
    pub sessions: i64,
    /// Risk determinations: the filed level matched the profile's, was lower (the dangerous
    /// direction), was higher, or no call record was filed.
    pub correct: i64,
    pub under: i64,
    pub over: i64,
    pub not_filed: i64,
    /// Facts the caller does not volunteer, and of those the ones the counselor drew out (a
    /// fact the caller withheld against the profile is left out: nobody could elicit it).
    pub hidden_facts: i64,
    pub elicited: i64,
    /// Required actions of the profiles, and of those the ones taken in the call.
    pub required_actions: i64,
    pub actions_taken: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScorePoint {
    #[schema(value_type = Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    pub counselor_name: String,
    #[schema(value_type = Option<Uuid>)]
    pub scenario_id: Option<ScenarioId>,
    /// None for free practice with an improvised caller.
    pub scenario_title: Option<String>,
    pub kind: SessionKind,
    /// When the session ended (or started, if it has no end).
    pub at: Timestamp,
    pub overall_score: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CriterionWeek {
    pub key: String,
    pub name: String,
    pub week_start: Timestamp,
    pub average_rating: f64,
    /// How many ratings the average is over (not-applicable criteria are left out).
    pub ratings: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioScores {
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    pub counselor_name: String,
    #[schema(value_type = Uuid)]
    pub scenario_id: ScenarioId,
    pub scenario_title: String,
    /// Evaluated sessions of this scenario (the scores are those of the scored ones; a scenario
    /// with none scored is not listed).
    pub attempts: i64,
    pub first_score: f64,
    pub best_score: f64,
    pub latest_score: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub sessions_started: i64,
    pub sessions_completed: i64,
    pub sessions_evaluated: i64,
    pub assignments: i64,
    pub assignments_completed: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagCounts {
    pub raised: i64,
    pub open: i64,
    pub reviewed: i64,
    pub dismissed: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagWeek {
    pub week_start: Timestamp,
    pub raised: i64,
}

/// Sessions of the account, of one counselor ($2), of the cohort assigned a scenario ($3).
const SESSION_FILTER: &str = "s.account_id = $1 AND s.test_run = FALSE AND ($2 IS NULL OR s.user_id = $2) \
     AND ($3 IS NULL OR s.user_id IN (SELECT counselor_id FROM assignments WHERE account_id = $1 AND scenario_id = $3))";

/// Epoch milliseconds of the Monday (00:00 UTC) starting the week of `at`; 1970-01-01 was a
/// Thursday, hence the three-day shift.
fn week(at: &str) -> String {
    format!("((({at}) - 259200000) / 604800000) * 604800000 + 259200000")
}

const AT: &str = "COALESCE(s.ended_at, s.started_at)";

/// The three parameters of [`SESSION_FILTER`], bound afresh for each query.
fn bound<'q>(
    sql: &'q str,
    (account, counselor, scenario): (&str, &Option<String>, &Option<String>),
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    use sqlx::Arguments;
    let mut args = sqlx::any::AnyArguments::default();
    // Adding a text or an optional text to Any arguments cannot fail.
    let _ = args.add(account.to_owned());
    let _ = args.add(counselor.clone());
    let _ = args.add(scenario.clone());
    sqlx::query_with(sql, args)
}

impl Store {
    /// Progress in a handful of queries whose cost does not grow with the number of ratings:
    /// one pass over the sessions in scope (their evaluation through a covering index, so the
    /// large evaluation rows are not read) from which scores, first / best / latest per
    /// scenario and the activity counts are computed; criterion ratings from
    /// `criteria_of`'s per-process cache (an evaluation's `evaluation_criteria` rows never
    /// change); flags per week with their status counts in one grouped query; the truth
    /// assessments through a partial index. Orders that compare people's words (names,
    /// titles) stay in SQL, so each backend sorts them by its own collation as before.
    pub async fn progress(&self, account_id: AccountId, query: &ProgressQuery) -> Result<Progress> {
        Ok(self.progress_scope(account_id, query).await?.finish(&HashMap::new()))
    }

    /// What [`Store::progress`] reads, with the figures that rest on sessions' evaluations
    /// (score points, first / best / latest per scenario, criterion averages, truth) left to
    /// [`ProgressScope::finish`], so the caller can give the figures everyone sees (reviewed,
    /// re-scored with every flag) in place of the stored ones.
    pub async fn progress_scope(&self, account_id: AccountId, query: &ProgressQuery) -> Result<ProgressScope> {
        let account = account_id.to_string();
        let counselor = query.counselor_id.map(|u| u.to_string());
        let scenario = query.scenario_id.map(|u| u.to_string());
        // Another account's counselor or scenario is "not found", never an empty chart.
        if let Some(id) = &counselor {
            let found = sqlx::query("SELECT id FROM users WHERE account_id = $1 AND id = $2")
                .bind(&account)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            found.ok_or(Error::NotFound("counselor"))?;
        }
        if let Some(id) = &scenario {
            let found = sqlx::query("SELECT id FROM scenarios WHERE account_id = $1 AND id = $2")
                .bind(&account)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            found.ok_or(Error::NotFound("scenario"))?;
        }
        let f = (account.as_str(), &counselor, &scenario);

        // Every session in scope, by counselor name, scenario title and id: the order of the
        // per-scenario figures and of the counselors in the heat map. An evaluation held for
        // review counts nowhere until a supervisor releases it. `e.held = FALSE` (rather than
        // `NOT e.held`) lets SQLite read the evaluation from `evaluations_progress_idx` alone.
        // The session's own columns come along, so the evaluated ones are handed out as handles
        // (`ProgressScope::evaluated`) without reading them again.
        let columns = SESSION_COLUMNS.split(", ").map(|c| format!("s.{}", c.trim())).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns}, u.display_name, sc.id AS scope_scenario_id, sc.title, \
             CASE WHEN s.status = 'completed' THEN 1 ELSE 0 END AS completed, {AT} AS at, \
             e.id AS evaluation_id, e.overall_score \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             LEFT JOIN evaluations e ON e.session_id = s.id AND e.held = FALSE \
             LEFT JOIN assignments a ON a.id = s.assignment_id \
             LEFT JOIN scenarios sc ON sc.id = COALESCE(s.scenario_id, a.scenario_id) \
             WHERE {SESSION_FILTER} ORDER BY u.display_name, sc.title, sc.id, s.user_id"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let mut sessions = Vec::with_capacity(rows.len());
        for r in &rows {
            let scenario = match r.opt_uuid::<ScenarioId>("scope_scenario_id")? {
                Some(id) => Some((id, r.text("title")?)),
                None => None,
            };
            sessions.push(InScope {
                id: r.uuid("id")?,
                counselor_id: r.uuid("user_id")?,
                counselor_name: r.text("display_name")?,
                scenario,
                kind: r.parsed("kind")?,
                completed: r.flag("completed")?,
                at: r.int("at")?,
                evaluation: match r.opt_uuid::<Uuid>("evaluation_id")? {
                    Some(id) => {
                        Some((id, r.try_get::<Option<f64>, _>("overall_score").map_err(|e| corrupt_score(&e))?))
                    }
                    None => None,
                },
                handle: None,
            });
            if let Some(last) = sessions.last_mut().filter(|s| s.evaluation.is_some()) {
                last.handle = Some(SessionRef::new(Session::from_row(r)?));
            }
        }
        drop(rows);

        let activity_sessions = (
            sessions.len() as i64,
            sessions.iter().filter(|s| s.completed).count() as i64,
            sessions.iter().filter(|s| s.evaluation.is_some()).count() as i64,
        );
        let evaluated: Vec<Uuid> = sessions.iter().filter_map(|s| s.evaluation.map(|(id, _)| id)).collect();
        let rated = self.criteria_of(&evaluated).await?;

        let assignments = bound(
            "SELECT COUNT(*) AS total, COUNT(CASE WHEN a.status = 'completed' THEN 1 END) AS completed \
             FROM assignments a WHERE a.account_id = $1 AND ($2 IS NULL OR a.counselor_id = $2) \
             AND ($3 IS NULL OR a.counselor_id IN (SELECT counselor_id FROM assignments WHERE account_id = $1 AND scenario_id = $3))",
            f,
        )
        .fetch_one(&self.pool)
        .await?;
        let activity = Activity {
            sessions_started: activity_sessions.0,
            sessions_completed: activity_sessions.1,
            sessions_evaluated: activity_sessions.2,
            assignments: assignments.int("total")?,
            assignments_completed: assignments.int("completed")?,
        };

        // Flags per week with their status counts; the totals are their sums.
        let week_of_flag = week("f.created_at");
        let sql = format!(
            "SELECT {week_of_flag} AS week_start, COUNT(*) AS raised, COUNT(CASE WHEN f.status = 'open' THEN 1 END) AS open_flags, \
             COUNT(CASE WHEN f.status = 'reviewed' THEN 1 END) AS reviewed, \
             COUNT(CASE WHEN f.status = 'dismissed' THEN 1 END) AS dismissed \
             FROM session_flags f JOIN sessions s ON s.id = f.session_id WHERE {SESSION_FILTER} \
             GROUP BY {week_of_flag} ORDER BY week_start"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let mut flags = FlagCounts { raised: 0, open: 0, reviewed: 0, dismissed: 0 };
        let mut flags_by_week = Vec::with_capacity(rows.len());
        for r in &rows {
            let raised = r.int("raised")?;
            flags.raised += raised;
            flags.open += r.int("open_flags")?;
            flags.reviewed += r.int("reviewed")?;
            flags.dismissed += r.int("dismissed")?;
            flags_by_week.push(FlagWeek { week_start: r.ts("week_start")?, raised });
        }

        // The truth assessment is JSON whose reading the two backends do not share: rows are
        // read here and counted per counselor and week in `finish`. `evaluations_truth_idx`
        // holds only evaluations with one, so sessions without are not read.
        let week_of_session = week(AT);
        let sql = format!(
            "SELECT s.id, s.user_id, u.display_name, {week_of_session} AS week_start, e.truth \
             FROM sessions s JOIN evaluations e ON e.session_id = s.id AND e.held = FALSE AND e.truth IS NOT NULL \
             JOIN users u ON u.id = s.user_id \
             WHERE {SESSION_FILTER} ORDER BY week_start, u.display_name, s.user_id"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let mut truth = Vec::with_capacity(rows.len());
        for r in &rows {
            truth.push(TruthRow {
                session: r.uuid("id")?,
                counselor_id: r.uuid("user_id")?,
                counselor_name: r.text("display_name")?,
                week_start: r.ts("week_start")?,
                assessment: r.json("truth")?,
            });
        }

        let progress = Progress {
            scores: Vec::new(),
            criteria: Vec::new(),
            scenarios: Vec::new(),
            activity,
            flags,
            flags_by_week,
            counselor_criteria: Vec::new(),
            truth: Vec::new(),
        };
        Ok(ProgressScope { sessions, rated, truth, progress })
    }

    /// The criterion rows of these evaluations, from the process's cache where it has them and
    /// in one query per 500 otherwise.
    async fn criteria_of(&self, evaluations: &[Uuid]) -> Result<HashMap<Uuid, Rated>> {
        let mut found = HashMap::with_capacity(evaluations.len());
        let mut missing = Vec::new();
        {
            let cache = criteria_cache();
            for id in evaluations {
                match cache.entries.get(id) {
                    Some(rated) => {
                        found.insert(*id, rated.clone());
                    }
                    None => missing.push(*id),
                }
            }
        }
        for chunk in missing.chunks(500) {
            let sql = format!(
                "SELECT evaluation_id, position, criterion_key, name, rating FROM evaluation_criteria \
                 WHERE evaluation_id IN ({}) ORDER BY evaluation_id, position",
                crate::db::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.to_string());
            }
            let rows = q.fetch_all(&self.pool).await?;
            let mut read: HashMap<Uuid, Vec<CriterionRow>> = HashMap::new();
            for r in &rows {
                let id: Uuid = r.uuid("evaluation_id")?;
                let rating = match r.opt_int("rating")? {
                    Some(v) => Some(u8::try_from(v).map_err(|_| Error::Corrupt(format!("column rating: {v}")))?),
                    None => None,
                };
                let row = (r.int("position")?, r.text("criterion_key")?, r.text("name")?, rating);
                read.entry(id).or_default().push(row);
            }
            let mut cache = criteria_cache();
            for id in chunk {
                // An evaluation without criteria (none rated, or none at all) is cached empty.
                let rated = cache.insert(*id, read.remove(id).unwrap_or_default());
                found.insert(*id, rated);
            }
        }
        Ok(found)
    }
}

/// A progress query's reads, waiting for its sessions' figures ([`Store::progress_scope`]).
#[derive(Debug)]
pub struct ProgressScope {
    sessions: Vec<InScope>,
    /// The stored criterion ratings of the evaluations in scope.
    rated: HashMap<Uuid, Rated>,
    /// The stored truth assessments of the sessions in scope, in the truth figures' order.
    truth: Vec<TruthRow>,
    /// The figures that read neither scores, ratings nor truth (activity, flags).
    progress: Progress,
}

/// One evaluated session's figures as everyone sees them, where they may differ from what its
/// evaluation stored: a supervisor's review overrides ratings and checks (which the truth is
/// re-read against), and flags cap the score ([`ProgressScope::finish`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFigures {
    /// The overall score (`None`: it has none).
    pub score: Option<f64>,
    /// Criterion ratings in force that differ from the stored ones, by criterion key.
    pub ratings: Vec<(String, Option<u8>)>,
    /// The truth assessment in force, when it differs from the stored one.
    pub truth: Option<TruthAssessment>,
}

impl ProgressScope {
    /// The sessions in scope with an evaluation (not held): those whose figures are read.
    pub fn evaluated(&self) -> Vec<&SessionRef> {
        self.sessions.iter().filter_map(|s| s.handle.as_ref()).collect()
    }

    /// The figures, each evaluated session at its figures in `figures` or, when absent there,
    /// at what its evaluation stored: score points, first / best / latest per scenario,
    /// criterion averages (weekly and the heat map) and the truth figures.
    pub fn finish(mut self, figures: &HashMap<SessionId, SessionFigures>) -> Progress {
        for s in &mut self.sessions {
            let (Some((evaluation, stored)), Some(given)) = (&mut s.evaluation, figures.get(&s.id)) else { continue };
            *stored = given.score;
            if given.ratings.is_empty() {
                continue;
            }
            if let Some(rated) = self.rated.get_mut(evaluation) {
                *rated = rated.with_ratings(&given.ratings);
            }
        }
        self.progress.scores = score_points(&self.sessions);
        self.progress.scenarios = scenario_scores(&self.sessions);
        let (criteria, counselor_criteria) = criterion_averages(&self.sessions, &self.rated);
        self.progress.criteria = criteria;
        self.progress.counselor_criteria = counselor_criteria;
        let mut truth: Vec<TruthWeek> = Vec::new();
        for row in &self.truth {
            let assessment = figures.get(&row.session).and_then(|f| f.truth.as_ref()).unwrap_or(&row.assessment);
            let at =
                match truth.iter().position(|w| w.counselor_id == row.counselor_id && w.week_start == row.week_start) {
                    Some(i) => i,
                    None => {
                        truth.push(TruthWeek::new(row.counselor_id, row.counselor_name.clone(), row.week_start));
                        truth.len() - 1
                    }
                };
            truth[at].add(assessment);
        }
        self.progress.truth = truth;
        self.progress
    }
}

/// A session's stored truth assessment with what its truth figure is counted under.
#[derive(Debug)]
struct TruthRow {
    session: SessionId,
    counselor_id: UserId,
    counselor_name: String,
    week_start: Timestamp,
    assessment: TruthAssessment,
}

/// One session in the scope of a progress query.
#[derive(Debug)]
struct InScope {
    id: SessionId,
    counselor_id: UserId,
    counselor_name: String,
    scenario: Option<(ScenarioId, String)>,
    kind: SessionKind,
    completed: bool,
    at: i64,
    /// Its evaluation, unless none or held: id and overall score.
    evaluation: Option<(Uuid, Option<f64>)>,
    /// The session as a handle, when it has an evaluation: for the caller to score it.
    handle: Option<SessionRef>,
}

impl InScope {
    /// Ids are UUIDs in their canonical lowercase text, whose order is the order of their
    /// bytes: (at, id) sorts as SQL's `ORDER BY at, id` did.
    fn order(&self) -> (i64, SessionId) {
        (self.at, self.id)
    }

    /// Its evaluation's overall score, if it has an evaluation with one.
    fn score(&self) -> Option<f64> {
        self.evaluation.and_then(|(_, score)| score)
    }
}

fn corrupt_score(e: &dyn std::fmt::Display) -> Error {
    Error::Corrupt(format!("column overall_score: {e}"))
}

/// One point per scored session, the newest 2,000, oldest first. An evaluation without a score
/// (nothing could be scored, or the safety criterion was not assessed) is no point on a chart.
fn score_points(sessions: &[InScope]) -> Vec<ScorePoint> {
    let mut scored: Vec<(&InScope, f64)> = sessions.iter().filter_map(|s| Some((s, s.score()?))).collect();
    scored.sort_unstable_by_key(|(s, _)| std::cmp::Reverse(s.order()));
    scored.truncate(2000);
    scored.reverse();
    scored
        .into_iter()
        .map(|(s, overall_score)| ScorePoint {
            session_id: s.id,
            counselor_id: s.counselor_id,
            counselor_name: s.counselor_name.clone(),
            scenario_id: s.scenario.as_ref().map(|(id, _)| *id),
            scenario_title: s.scenario.as_ref().map(|(_, t)| t.clone()),
            kind: s.kind,
            at: Timestamp::from_millis(s.at),
            overall_score,
        })
        .collect()
}

/// First, best and latest score per counselor and scenario, in the sessions' order (counselor
/// name, scenario title, scenario id), where each pair's sessions are adjacent. Attempts count
/// every evaluated session; the scores are the scored ones' (a pair with none has no figures).
fn scenario_scores(sessions: &[InScope]) -> Vec<ScenarioScores> {
    let mut out: Vec<ScenarioScores> = Vec::new();
    let mut group: Vec<&InScope> = Vec::new();
    let mut flush = |group: &mut Vec<&InScope>| {
        let group = std::mem::take(group);
        let scored = || group.iter().filter_map(|s| Some((s.order(), s.score()?)));
        let (Some((_, first_score)), Some((_, latest_score))) =
            (scored().min_by_key(|(order, _)| *order), scored().max_by_key(|(order, _)| *order))
        else {
            return;
        };
        let best_score = scored().map(|(_, score)| score).fold(f64::NEG_INFINITY, f64::max);
        // Only sessions with a scenario are grouped.
        let Some(first) = group.first() else { return };
        let Some((id, title)) = first.scenario.clone() else { return };
        out.push(ScenarioScores {
            counselor_id: first.counselor_id,
            counselor_name: first.counselor_name.clone(),
            scenario_id: id,
            scenario_title: title,
            attempts: group.len() as i64,
            first_score,
            best_score,
            latest_score,
        });
    };
    for s in sessions.iter().filter(|s| s.evaluation.is_some()) {
        let Some((scenario, _)) = &s.scenario else { continue };
        if let Some(last) = group.last()
            && (last.counselor_id != s.counselor_id || last.scenario.as_ref().map(|(id, _)| id) != Some(scenario))
        {
            flush(&mut group);
        }
        group.push(s);
    }
    flush(&mut group);
    out
}

/// Ratings summed per group and criterion, with the criterion's smallest position and name
/// among them (as SQL's `MIN`).
#[derive(Clone)]
struct Totals {
    sum: i64,
    count: i64,
    position: i64,
    name: Arc<str>,
}

impl Totals {
    fn add(&mut self, rating: u8, position: i64, name: &Arc<str>) {
        self.sum += i64::from(rating);
        self.count += 1;
        self.position = self.position.min(position);
        if !Arc::ptr_eq(&self.name, name) && name.as_bytes() < self.name.as_bytes() {
            self.name = name.clone();
        }
    }

    /// The average as SQL computed it: the integer sum over the count, in floating point.
    fn average(&self) -> f64 {
        self.sum as f64 / self.count as f64
    }
}

/// Each criterion's average rating per week, and per counselor over the whole period, over the
/// rated criteria of the evaluated sessions.
fn criterion_averages(
    sessions: &[InScope],
    rated: &HashMap<Uuid, Rated>,
) -> (Vec<CriterionWeek>, Vec<CounselorCriterion>) {
    // Counselors in the heat map's order: by name as the database sorted them, then by id.
    let mut counselors: Vec<(usize, UserId, &str)> = Vec::new();
    let mut name_rank = 0;
    let mut previous: Option<&str> = None;
    let mut counselor_of: HashMap<UserId, usize> = HashMap::new();
    for s in sessions {
        if previous != Some(s.counselor_name.as_str()) {
            name_rank += 1;
            previous = Some(s.counselor_name.as_str());
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = counselor_of.entry(s.counselor_id) {
            slot.insert(counselors.len());
            counselors.push((name_rank, s.counselor_id, s.counselor_name.as_str()));
        }
    }
    // Criterion keys, weeks and counselors numbered first, so the work per rating is indexing
    // into flat tables rather than hashing.
    let mut key_index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut keys: Vec<Arc<str>> = Vec::new();
    let mut shape_of: HashMap<*const Criterion, usize> = HashMap::new();
    let mut shape_keys: Vec<Vec<usize>> = Vec::new();
    let mut week_of: HashMap<i64, usize> = HashMap::new();
    let mut weeks: Vec<i64> = Vec::new();
    let mut scored: Vec<(usize, usize, &Rated, usize)> = Vec::new();
    for s in sessions {
        let Some((evaluation, _)) = s.evaluation else { continue };
        let Some(r) = rated.get(&evaluation) else { continue };
        let shape = *shape_of.entry(r.shape.as_ptr()).or_insert_with(|| {
            let slots = r
                .shape
                .iter()
                .map(|c| {
                    *key_index.entry(c.key.clone()).or_insert_with(|| {
                        keys.push(c.key.clone());
                        keys.len() - 1
                    })
                })
                .collect();
            shape_keys.push(slots);
            shape_keys.len() - 1
        });
        let week = *week_of.entry(week_start(s.at)).or_insert_with(|| {
            weeks.push(week_start(s.at));
            weeks.len() - 1
        });
        scored.push((week, counselor_of[&s.counselor_id], r, shape));
    }
    let n = keys.len();
    let mut by_week: Vec<Option<Totals>> = vec![None; weeks.len() * n];
    let mut by_counselor: Vec<Option<Totals>> = vec![None; counselors.len() * n];
    for (week, counselor, r, shape) in scored {
        for ((c, rating), key) in r.shape.iter().zip(r.ratings.iter()).zip(shape_keys[shape].iter()) {
            let Some(rating) = *rating else { continue };
            for slot in [&mut by_week[week * n + key], &mut by_counselor[counselor * n + key]] {
                slot.get_or_insert_with(|| Totals { sum: 0, count: 0, position: c.position, name: c.name.clone() })
                    .add(rating, c.position, &c.name);
            }
        }
    }
    let by_week = by_week.into_iter().enumerate().filter_map(|(i, t)| Some(((weeks[i / n], i % n), t?)));
    let by_counselor = by_counselor.into_iter().enumerate().filter_map(|(i, t)| Some(((i / n, i % n), t?)));
    // ORDER BY week_start, MIN(position), key.
    let mut weekly: Vec<((i64, i64, &str), CriterionWeek)> = by_week
        .into_iter()
        .map(|((week_start, key), t)| {
            let item = CriterionWeek {
                key: keys[key].to_string(),
                name: t.name.to_string(),
                week_start: Timestamp::from_millis(week_start),
                average_rating: t.average(),
                ratings: t.count,
            };
            ((week_start, t.position, &*keys[key]), item)
        })
        .collect();
    weekly.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // ORDER BY MIN(display_name), user_id, MIN(position), key.
    let mut heat: Vec<(HeatOrder, CounselorCriterion)> = by_counselor
        .into_iter()
        .map(|((counselor, key), t)| {
            let (rank, id, name) = counselors[counselor];
            let item = CounselorCriterion {
                counselor_id: id,
                counselor_name: name.to_owned(),
                key: keys[key].to_string(),
                name: t.name.to_string(),
                average_rating: t.average(),
                ratings: t.count,
            };
            ((rank, id, t.position, &*keys[key]), item)
        })
        .collect();
    heat.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    (weekly.into_iter().map(|(_, c)| c).collect(), heat.into_iter().map(|(_, c)| c).collect())
}

/// Epoch milliseconds of the Monday (00:00 UTC) starting the week of `at`, as [`week`] computes
/// it in SQL (integer division truncating toward zero, as Rust's does).
fn week_start(at: i64) -> i64 {
    ((at - 259_200_000) / 604_800_000) * 604_800_000 + 259_200_000
}

/// An `evaluation_criteria` row as read: position, key, name, rating.
type CriterionRow = (i64, String, String, Option<u8>);

/// The heat map's order: counselor name's rank, counselor id, criterion position and key.
type HeatOrder<'a> = (usize, UserId, i64, &'a str);

/// One rubric criterion as an evaluation's `evaluation_criteria` row names it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Criterion {
    position: i64,
    key: Arc<str>,
    name: Arc<str>,
}

/// An evaluation's criterion rows: their names (shared by every evaluation with the same list)
/// and its ratings, in position order.
#[derive(Debug, Clone)]
struct Rated {
    shape: Arc<[Criterion]>,
    ratings: Arc<[Option<u8>]>,
}

impl Rated {
    /// These rows with the given ratings (by criterion key) in place of the stored ones; a key
    /// the rows do not have is ignored, as the evaluation shown has no such criterion either.
    fn with_ratings(&self, ratings: &[(String, Option<u8>)]) -> Rated {
        let ratings = self
            .shape
            .iter()
            .zip(self.ratings.iter())
            .map(|(c, stored)| ratings.iter().find(|(key, _)| **key == *c.key).map_or(*stored, |(_, r)| *r))
            .collect();
        Rated { shape: self.shape.clone(), ratings }
    }
}

/// Criterion rows by evaluation id, for this process. Sound without invalidation: the rows are
/// written by the trigger that inserts the evaluation and never changed (a new grading is a new
/// evaluation id; a deleted evaluation drops out of the sessions it is looked up from), and
/// evaluation ids are UUIDv7, so one cache serves every database the process opens. Bounded:
/// when full it starts afresh.
#[derive(Default)]
struct CriteriaCache {
    entries: HashMap<Uuid, Rated>,
    shapes: HashSet<Arc<[Criterion]>>,
}

/// About 100 bytes each (names are shared with every evaluation of the same rubric): 10 MB at most.
const CRITERIA_CACHE_MAX: usize = 100_000;

fn criteria_cache() -> std::sync::MutexGuard<'static, CriteriaCache> {
    static CACHE: LazyLock<Mutex<CriteriaCache>> = LazyLock::new(Default::default);
    CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl CriteriaCache {
    fn insert(&mut self, id: Uuid, rows: Vec<CriterionRow>) -> Rated {
        if self.entries.len() >= CRITERIA_CACHE_MAX {
            self.entries.clear();
            self.shapes.clear();
        }
        let shape: Vec<Criterion> = rows
            .iter()
            .map(|(position, key, name, _)| Criterion {
                position: *position,
                key: key.as_str().into(),
                name: name.as_str().into(),
            })
            .collect();
        let shape = match self.shapes.get(shape.as_slice()) {
            Some(known) => known.clone(),
            None => {
                let shape: Arc<[Criterion]> = shape.into();
                self.shapes.insert(shape.clone());
                shape
            }
        };
        let rated = Rated { shape, ratings: rows.iter().map(|r| r.3).collect() };
        self.entries.insert(id, rated.clone());
        rated
    }
}
impl TruthWeek {
    fn new(counselor_id: UserId, counselor_name: String, week_start: Timestamp) -> Self {
        TruthWeek {
            counselor_id,
            counselor_name,
            week_start,
            sessions: 0,
            correct: 0,
            under: 0,
            over: 0,
            not_filed: 0,
            hidden_facts: 0,
            elicited: 0,
            required_actions: 0,
            actions_taken: 0,
        }
    }

    /// Counts one graded call.
    fn add(&mut self, t: &TruthAssessment) {
        self.sessions += 1;
        match t.determination.result {
            Determination::Correct => self.correct += 1,
            Determination::UnderEstimate => self.under += 1,
            Determination::OverEstimate => self.over += 1,
            Determination::NotFiled => self.not_filed += 1,
        }
        for fact in t.facts.iter().filter(|f| f.rule != DisclosureRule::Volunteered) {
            if fact.outcome == FactOutcome::WithheldByCaller {
                continue;
            }
            self.hidden_facts += 1;
            self.elicited += i64::from(fact.outcome == FactOutcome::Elicited);
        }
        for action in &t.actions {
            self.required_actions += 1;
            self.actions_taken += i64::from(action.answer == CheckAnswer::Yes);
        }
    }
}

impl Store {
    /// Moves a finished session, its transcript's evaluation and flags `by_ms` into the past, so
    /// the demo seed can hold weeks of history. For seeding only: nothing in the product rewrites
    /// when something happened.
    pub async fn backdate_session(&self, account_id: AccountId, session_id: SessionId, by_ms: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let (account, session) = (account_id.to_string(), session_id.to_string());
        let moved = sqlx::query(
            "UPDATE sessions SET started_at = started_at - $3, created_at = created_at - $3, \
             ended_at = ended_at - $3 WHERE account_id = $1 AND id = $2",
        )
        .bind(&account)
        .bind(&session)
        .bind(by_ms)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Err(Error::NotFound("session"));
        }
        sqlx::query("UPDATE evaluations SET created_at = created_at - $2 WHERE session_id = $1")
            .bind(&session)
            .bind(by_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE session_flags SET created_at = created_at - $3, updated_at = updated_at - $3, \
             reviewed_at = reviewed_at - $3 WHERE account_id = $1 AND session_id = $2",
        )
        .bind(&account)
        .bind(&session)
        .bind(by_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
