//! Progress over time for one counselor or a cohort (every counselor of the account, or those
//! assigned a given scenario): overall scores per evaluated session, each rubric criterion's
//! average rating per week, first / best / latest score per scenario, attempts and completion,
//! and flags raised. Every number is aggregated in SQL (criterion ratings come from the
//! `evaluation_criteria` rows a trigger fills from each evaluation), in the one dialect both
//! backends accept.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::{RowExt, Store};
use crate::domain::{CheckAnswer, Determination, DisclosureRule, FactOutcome, SessionKind, Timestamp};
use crate::error::{Error, Result};
use crate::evaluations::TruthAssessment;
use crate::ids::{AccountId, ScenarioId, SessionId, UserId};

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
    /// One point per evaluated session, oldest first (at most 2,000, the newest).
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
    /// Evaluated sessions of this scenario.
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
    pub async fn progress(&self, account_id: AccountId, query: &ProgressQuery) -> Result<Progress> {
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
        // An evaluation held for review counts nowhere until a supervisor releases it.
        let joins = "FROM sessions s JOIN evaluations e ON e.session_id = s.id AND NOT e.held JOIN users u ON u.id = s.user_id \
                     LEFT JOIN assignments a ON a.id = s.assignment_id \
                     LEFT JOIN scenarios sc ON sc.id = COALESCE(s.scenario_id, a.scenario_id)";

        let sql = format!(
            "SELECT * FROM (SELECT s.id, s.user_id, u.display_name, sc.id AS scenario_id, sc.title, s.kind, {AT} AS at, \
             e.overall_score {joins} WHERE {SESSION_FILTER} ORDER BY {AT} DESC, s.id DESC LIMIT 2000) AS recent \
             ORDER BY at, id"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let scores = rows
            .iter()
            .map(|r| {
                Ok(ScorePoint {
                    session_id: r.uuid("id")?,
                    counselor_id: r.uuid("user_id")?,
                    counselor_name: r.text("display_name")?,
                    scenario_id: r.opt_uuid("scenario_id")?,
                    scenario_title: r.opt_text("title")?,
                    kind: r.parsed("kind")?,
                    at: r.ts("at")?,
                    overall_score: r.float("overall_score")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let week_of_session = week(AT);
        let sql = format!(
            "SELECT c.criterion_key, MIN(c.name) AS name, {week_of_session} AS week_start, \
             CAST(AVG(c.rating) AS DOUBLE PRECISION) AS average_rating, COUNT(c.rating) AS ratings \
             FROM evaluation_criteria c JOIN sessions s ON s.id = c.session_id \
             WHERE {SESSION_FILTER} AND c.rating IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM evaluations h WHERE h.session_id = s.id AND h.held) \
             GROUP BY c.criterion_key, {week_of_session} ORDER BY week_start, MIN(c.position), c.criterion_key"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let criteria = rows
            .iter()
            .map(|r| {
                Ok(CriterionWeek {
                    key: r.text("criterion_key")?,
                    name: r.text("name")?,
                    week_start: r.ts("week_start")?,
                    average_rating: r.float("average_rating")?,
                    ratings: r.int("ratings")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let sql = format!(
            "SELECT user_id, display_name, scenario_id, title, COUNT(*) AS attempts, MAX(score) AS best_score, \
             MAX(CASE WHEN first_rank = 1 THEN score END) AS first_score, \
             MAX(CASE WHEN last_rank = 1 THEN score END) AS latest_score \
             FROM (SELECT s.user_id, u.display_name, sc.id AS scenario_id, sc.title, e.overall_score AS score, \
                   ROW_NUMBER() OVER (PARTITION BY s.user_id, sc.id ORDER BY {AT}, s.id) AS first_rank, \
                   ROW_NUMBER() OVER (PARTITION BY s.user_id, sc.id ORDER BY {AT} DESC, s.id DESC) AS last_rank \
                   {joins} WHERE {SESSION_FILTER} AND sc.id IS NOT NULL) AS ranked \
             GROUP BY user_id, display_name, scenario_id, title ORDER BY display_name, title, scenario_id"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let scenarios = rows
            .iter()
            .map(|r| {
                Ok(ScenarioScores {
                    counselor_id: r.uuid("user_id")?,
                    counselor_name: r.text("display_name")?,
                    scenario_id: r.uuid("scenario_id")?,
                    scenario_title: r.text("title")?,
                    attempts: r.int("attempts")?,
                    first_score: r.float("first_score")?,
                    best_score: r.float("best_score")?,
                    latest_score: r.float("latest_score")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let sql = format!(
            "SELECT COUNT(*) AS started, COUNT(CASE WHEN s.status = 'completed' THEN 1 END) AS completed, \
             COUNT(e.id) AS evaluated FROM sessions s LEFT JOIN evaluations e ON e.session_id = s.id AND NOT e.held \
             WHERE {SESSION_FILTER}"
        );
        let sessions = bound(&sql, f).fetch_one(&self.pool).await?;
        let assignments = bound(
            "SELECT COUNT(*) AS total, COUNT(CASE WHEN a.status = 'completed' THEN 1 END) AS completed \
             FROM assignments a WHERE a.account_id = $1 AND ($2 IS NULL OR a.counselor_id = $2) \
             AND ($3 IS NULL OR a.counselor_id IN (SELECT counselor_id FROM assignments WHERE account_id = $1 AND scenario_id = $3))",
            f,
        )
        .fetch_one(&self.pool)
        .await?;
        let activity = Activity {
            sessions_started: sessions.int("started")?,
            sessions_completed: sessions.int("completed")?,
            sessions_evaluated: sessions.int("evaluated")?,
            assignments: assignments.int("total")?,
            assignments_completed: assignments.int("completed")?,
        };

        let sql = format!(
            "SELECT COUNT(*) AS raised, COUNT(CASE WHEN f.status = 'open' THEN 1 END) AS open_flags, \
             COUNT(CASE WHEN f.status = 'reviewed' THEN 1 END) AS reviewed, \
             COUNT(CASE WHEN f.status = 'dismissed' THEN 1 END) AS dismissed \
             FROM session_flags f JOIN sessions s ON s.id = f.session_id WHERE {SESSION_FILTER}"
        );
        let row = bound(&sql, f).fetch_one(&self.pool).await?;
        let flags = FlagCounts {
            raised: row.int("raised")?,
            open: row.int("open_flags")?,
            reviewed: row.int("reviewed")?,
            dismissed: row.int("dismissed")?,
        };
        let week_of_flag = week("f.created_at");
        let sql = format!(
            "SELECT {week_of_flag} AS week_start, COUNT(*) AS raised \
             FROM session_flags f JOIN sessions s ON s.id = f.session_id WHERE {SESSION_FILTER} \
             GROUP BY {week_of_flag} ORDER BY week_start"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let flags_by_week = rows
            .iter()
            .map(|r| Ok(FlagWeek { week_start: r.ts("week_start")?, raised: r.int("raised")? }))
            .collect::<Result<Vec<_>>>()?;

        let sql = format!(
            "SELECT s.user_id, MIN(u.display_name) AS display_name, c.criterion_key, MIN(c.name) AS name, \
             CAST(AVG(c.rating) AS DOUBLE PRECISION) AS average_rating, COUNT(c.rating) AS ratings \
             FROM evaluation_criteria c JOIN sessions s ON s.id = c.session_id JOIN users u ON u.id = s.user_id \
             WHERE {SESSION_FILTER} AND c.rating IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM evaluations h WHERE h.session_id = s.id AND h.held) \
             GROUP BY s.user_id, c.criterion_key ORDER BY MIN(u.display_name), s.user_id, MIN(c.position), c.criterion_key"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let counselor_criteria = rows
            .iter()
            .map(|r| {
                Ok(CounselorCriterion {
                    counselor_id: r.uuid("user_id")?,
                    counselor_name: r.text("display_name")?,
                    key: r.text("criterion_key")?,
                    name: r.text("name")?,
                    average_rating: r.float("average_rating")?,
                    ratings: r.int("ratings")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        // The truth assessment is JSON whose reading the two backends do not share: rows are
        // read here and counted per counselor and week below.
        let sql = format!(
            "SELECT s.user_id, u.display_name, {week_of_session} AS week_start, e.truth \
             {joins} WHERE {SESSION_FILTER} AND e.truth IS NOT NULL ORDER BY week_start, u.display_name, s.user_id"
        );
        let rows = bound(&sql, f).fetch_all(&self.pool).await?;
        let mut truth: Vec<TruthWeek> = Vec::new();
        for r in &rows {
            let counselor_id: UserId = r.uuid("user_id")?;
            let week_start = r.ts("week_start")?;
            let assessment: TruthAssessment = r.json("truth")?;
            let at = match truth.iter().position(|w| w.counselor_id == counselor_id && w.week_start == week_start) {
                Some(i) => i,
                None => {
                    let name = r.text("display_name")?;
                    truth.push(TruthWeek::new(counselor_id, name, week_start));
                    truth.len() - 1
                }
            };
            truth[at].add(&assessment);
        }

        Ok(Progress { scores, criteria, scenarios, activity, flags, flags_by_week, counselor_criteria, truth })
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
