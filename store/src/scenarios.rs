//! Scenarios: the caller persona the AI plays, and how the call is graded.
//!
//! Input arrives as [`ScenarioInput`] (from the admin API, the partner API or a CSV row) and is
//! parsed against the account's category list into a [`ScenarioDraft`]; only drafts are stored.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};

use crate::assignments::{Assignment, NewAssignment};
use crate::db::{RowExt, Store, for_update, like_pattern, page};
use crate::domain::{Difficulty, ScenarioListKind, ScenarioMode, Timestamp};
use crate::error::{Error, FieldError, Result, Violation, violation};
use crate::ids::{AccountId, ScenarioId, UserId};
use crate::profile::RiskProfile;

/// Limits from PRODUCT.md.
pub const MAX_EVALUATOR_CONTEXT_CHARS: usize = 50_000;
pub const MAX_IMPORT_ROWS: usize = 100;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    #[schema(value_type = Uuid)]
    pub id: ScenarioId,
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    pub title: String,
    /// The caller persona: the only scenario text the AI caller ever sees.
    pub prompt: String,
    pub description: String,
    pub mode: ScenarioMode,
    pub category: String,
    pub skills: Vec<String>,
    pub difficulty: Option<Difficulty>,
    /// Estimated time in minutes.
    pub estimated_time: Option<i64>,
    pub relevant_policy_sections: String,
    /// Extra grading guidance for the evaluator; never shown to the AI caller.
    pub evaluator_context: String,
    /// One-time scenarios are hidden from lists and exist for a single assignment.
    pub is_one_time: bool,
    #[schema(value_type = Option<Uuid>)]
    pub created_by: Option<UserId>,
    /// How many assignments use it; its mode is locked once this is above zero.
    pub assignment_count: i64,
    /// How a voice call of this scenario sounds and starts.
    pub voice: crate::voice::ScenarioVoice,
    /// The scenario's clinical truth, if written: for supervisors, the caller's prompt compiler
    /// and grading; never shown to counselors before feedback.
    pub risk_profile: Option<RiskProfile>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const SCENARIO_COLUMNS: &str = "s.id, s.account_id, s.title, s.prompt, s.description, s.mode, s.category, \
    s.skills, s.difficulty, s.estimated_time_minutes, s.relevant_policy_sections, s.evaluator_context, \
    s.is_one_time, s.created_by, s.created_at, s.updated_at, s.caller_speaks_first, s.voice, s.phone_line, \
    s.risk_profile, (SELECT COUNT(*) FROM assignments a WHERE a.scenario_id = s.id) AS assignment_count";

impl Scenario {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Scenario {
            id: row.uuid("id")?,
            account_id: row.uuid("account_id")?,
            title: row.text("title")?,
            prompt: row.text("prompt")?,
            description: row.text("description")?,
            mode: row.parsed("mode")?,
            category: row.text("category")?,
            skills: row.json("skills")?,
            difficulty: row.opt_parsed("difficulty")?,
            estimated_time: row.opt_int("estimated_time_minutes")?,
            relevant_policy_sections: row.text("relevant_policy_sections")?,
            evaluator_context: row.text("evaluator_context")?,
            is_one_time: row.flag("is_one_time")?,
            created_by: row.opt_uuid("created_by")?,
            assignment_count: row.int("assignment_count")?,
            voice: crate::voice::ScenarioVoice::from_row(row)?,
            risk_profile: row.opt_text("risk_profile")?.as_deref().map(RiskProfile::from_stored).transpose()?,
            created_at: row.ts("created_at")?,
            updated_at: row.ts("updated_at")?,
        })
    }
}

/// A scenario as a client sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    #[schema(min_length = 1, max_length = 50000, pattern = r"\S")]
    pub prompt: String,
    #[serde(default)]
    pub description: Option<String>,
    pub mode: ScenarioMode,
    pub category: String,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub difficulty: Option<Difficulty>,
    /// Minutes, 1 to 600.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 600)]
    pub estimated_time: Option<i64>,
    #[serde(default)]
    pub relevant_policy_sections: Option<String>,
    /// At most 50,000 characters.
    #[serde(default)]
    pub evaluator_context: Option<String>,
    #[serde(default)]
    pub is_one_time: Option<bool>,
    /// With `isOneTime`, creates the scenario's single assignment in the same transaction.
    #[serde(default)]
    pub assign_to: Option<OneTimeAssignment>,
    /// Voice call settings; absent: the defaults on create, unchanged on update.
    #[serde(default)]
    pub voice: Option<crate::voice::ScenarioVoice>,
    /// The scenario's clinical truth; absent or null: none (an update replaces it like the
    /// other fields).
    #[serde(default)]
    pub risk_profile: Option<RiskProfile>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OneTimeAssignment {
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    #[serde(default)]
    pub due_at: Option<Timestamp>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A validated scenario, ready to store.
#[derive(Debug, Clone)]
pub struct ScenarioDraft {
    pub title: String,
    pub prompt: String,
    pub description: String,
    pub mode: ScenarioMode,
    pub category: String,
    pub skills: Vec<String>,
    pub difficulty: Option<Difficulty>,
    pub estimated_time: Option<i64>,
    pub relevant_policy_sections: String,
    pub evaluator_context: String,
    pub is_one_time: bool,
    pub risk_profile: Option<RiskProfile>,
}

impl ScenarioInput {
    /// Parses the input against the account's categories, collecting every field's problem.
    pub fn validate(&self, categories: &[String]) -> Result<ScenarioDraft> {
        let mut errors = Vec::new();
        let title = self.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 {
            errors.push(FieldError::new("title", "must be 1 to 200 characters"));
        }
        let prompt = self.prompt.trim().to_owned();
        if prompt.is_empty() {
            errors.push(FieldError::new("prompt", "must not be empty"));
        } else if prompt.chars().count() > MAX_EVALUATOR_CONTEXT_CHARS {
            errors.push(FieldError::new("prompt", "must be at most 50000 characters"));
        }
        // Matched ignoring case and extra spaces, stored as the account spells it.
        let typed = self.category.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let category = categories.iter().find(|c| c.to_lowercase() == typed).cloned().unwrap_or_default();
        if category.is_empty() {
            errors.push(FieldError::new(
                "category",
                format!("unknown category `{}`; allowed: {}", self.category, categories.join(", ")),
            ));
        }
        let mut skills = Vec::new();
        for skill in &self.skills {
            let skill = skill.trim();
            if skill.is_empty() || skill.chars().count() > 100 {
                errors.push(FieldError::new("skills", "each skill must be 1 to 100 characters"));
                break;
            }
            if !skills.iter().any(|s: &String| s.eq_ignore_ascii_case(skill)) {
                skills.push(skill.to_owned());
            }
        }
        if skills.len() > 50 {
            errors.push(FieldError::new("skills", "at most 50 skills"));
        }
        if self.estimated_time.is_some_and(|t| !(1..=600).contains(&t)) {
            errors.push(FieldError::new("estimatedTime", "must be 1 to 600 minutes"));
        }
        let evaluator_context = self.evaluator_context.as_deref().unwrap_or("").trim().to_owned();
        if evaluator_context.chars().count() > MAX_EVALUATOR_CONTEXT_CHARS {
            errors.push(FieldError::new("evaluatorContext", "must be at most 50000 characters"));
        }
        let is_one_time = self.is_one_time.unwrap_or(false);
        if self.assign_to.is_some() && !is_one_time {
            errors.push(FieldError::new("assignTo", "only a one-time scenario is assigned on creation"));
        }
        // PostgreSQL text cannot hold NUL; say so instead of failing the insert.
        let texts = [
            ("title", Some(self.title.as_str())),
            ("prompt", Some(self.prompt.as_str())),
            ("description", self.description.as_deref()),
            ("evaluatorContext", self.evaluator_context.as_deref()),
            ("relevantPolicySections", self.relevant_policy_sections.as_deref()),
        ];
        for (field, text) in texts {
            if text.is_some_and(|t| t.contains('\0')) {
                errors.push(FieldError::new(field, "must not contain NUL characters"));
            }
        }
        if skills.iter().any(|s| s.contains('\0')) {
            errors.push(FieldError::new("skills", "must not contain NUL characters"));
        }
        if let Some(voice) = &self.voice {
            errors.extend(voice.problems());
        }
        let risk_profile = match self.risk_profile.as_ref().map(|p| p.validate("riskProfile")).transpose() {
            Ok(p) => p,
            Err(problems) => {
                errors.extend(problems);
                None
            }
        };
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(ScenarioDraft {
            title,
            prompt,
            description: self.description.as_deref().unwrap_or("").trim().to_owned(),
            mode: self.mode,
            category,
            skills,
            difficulty: self.difficulty,
            estimated_time: self.estimated_time,
            relevant_policy_sections: self.relevant_policy_sections.as_deref().unwrap_or("").trim().to_owned(),
            evaluator_context,
            is_one_time,
            risk_profile,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ScenarioFilter {
    #[serde(default)]
    #[param(inline)]
    pub kind: ScenarioListKind,
    pub category: Option<String>,
    pub mode: Option<ScenarioMode>,
    /// Case-insensitive substring of the title.
    pub q: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Per-row outcome of a bulk import: every row is accounted for in exactly one list.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub created: Vec<ImportRowCreated>,
    pub skipped: Vec<ImportRowSkipped>,
    pub failed: Vec<ImportRowFailed>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRowCreated {
    /// 1-based data row number (the header is row 0).
    pub row: usize,
    #[schema(value_type = Uuid)]
    pub id: ScenarioId,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRowSkipped {
    pub row: usize,
    pub title: String,
    pub reason: String,
    #[schema(value_type = Option<Uuid>)]
    pub existing_id: Option<ScenarioId>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRowFailed {
    pub row: usize,
    pub errors: Vec<FieldError>,
}

impl Store {
    /// Creates a scenario; a one-time scenario may bring its single assignment, made in the same
    /// transaction so neither exists without the other.
    pub async fn create_scenario(
        &self,
        account_id: AccountId,
        created_by: Option<UserId>,
        input: &ScenarioInput,
    ) -> Result<(Scenario, Option<Assignment>)> {
        self.create_scenario_audited(account_id, created_by, input, None).await
    }

    /// [`Store::create_scenario`], with `audit` written in its transaction.
    pub async fn create_scenario_audited(
        &self,
        account_id: AccountId,
        created_by: Option<UserId>,
        input: &ScenarioInput,
        audit: Option<&crate::Audit>,
    ) -> Result<(Scenario, Option<Assignment>)> {
        let categories = self.categories(account_id).await?;
        let draft = input.validate(&categories)?;
        let mut tx = self.write_tx().await?;
        let id = insert_scenario(&mut tx, account_id, created_by, &draft).await?;
        if let Some(voice) = &input.voice {
            crate::voice::set_scenario_voice(&mut tx, id, voice).await?;
        }
        let assignment_id = match &input.assign_to {
            Some(a) => {
                let new = NewAssignment {
                    scenario_id: id,
                    counselor_id: a.counselor_id,
                    due_at: a.due_at,
                    notes: a.notes.clone(),
                };
                Some(crate::assignments::insert_assignment(&mut tx, account_id, created_by, &new).await?)
            }
            None => None,
        };
        if let Some(audit) = audit {
            crate::accounts::audit_tx(&mut tx, &audit.clone().target("scenario", id)).await?;
        }
        tx.commit().await?;
        let scenario = self.scenario(account_id, id).await?;
        let assignment = match assignment_id {
            Some(aid) => Some(self.assignment(account_id, aid).await?),
            None => None,
        };
        Ok((scenario, assignment))
    }

    pub async fn scenario(&self, account_id: AccountId, id: ScenarioId) -> Result<Scenario> {
        let row =
            sqlx::query(&format!("SELECT {SCENARIO_COLUMNS} FROM scenarios s WHERE s.id = $1 AND s.account_id = $2"))
                .bind(id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(Error::NotFound("scenario"))?;
        Scenario::from_row(&row)
    }

    pub async fn list_scenarios(&self, account_id: AccountId, filter: &ScenarioFilter) -> Result<Vec<Scenario>> {
        let one_time = match filter.kind {
            ScenarioListKind::Reusable => Some(false),
            ScenarioListKind::OneTime => Some(true),
            ScenarioListKind::All => None,
        };
        let (limit, offset) = page(filter.limit, filter.offset);
        let rows = sqlx::query(&format!(
            "SELECT {SCENARIO_COLUMNS} FROM scenarios s WHERE s.account_id = $1 \
             AND ($2 IS NULL OR s.is_one_time = $2) \
             AND ($3 IS NULL OR lower(s.category) = $3) \
             AND ($4 IS NULL OR s.mode = $4) \
             AND ($5 IS NULL OR lower(s.title) LIKE $5 ESCAPE '\\') \
             ORDER BY s.created_at DESC, s.id DESC LIMIT $6 OFFSET $7"
        ))
        .bind(account_id.to_string())
        .bind(one_time)
        .bind(filter.category.as_deref().map(|c| c.trim().to_lowercase()))
        .bind(filter.mode.map(ScenarioMode::as_str))
        .bind(filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(like_pattern))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Scenario::from_row).collect()
    }

    /// Replaces a scenario's fields. Its mode is locked once assignments exist, and whether it is
    /// one-time changes only through [`Store::promote_scenario`].
    pub async fn update_scenario(
        &self,
        account_id: AccountId,
        id: ScenarioId,
        input: &ScenarioInput,
    ) -> Result<Scenario> {
        let categories = self.categories(account_id).await?;
        let mut draft = input.validate(&categories)?;
        if input.assign_to.is_some() {
            return Err(Error::invalid("assignTo", "only allowed when creating a scenario"));
        }
        let mut tx = self.write_tx().await?;
        // Locked first, so an assignment being made now either commits before the count below
        // or waits for this change.
        sqlx::query(&format!("SELECT id FROM scenarios WHERE id = $1 AND account_id = $2{}", for_update(&tx)))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let current = sqlx::query(
            "SELECT s.mode, s.is_one_time, (SELECT COUNT(*) FROM assignments a WHERE a.scenario_id = s.id) AS n \
             FROM scenarios s WHERE s.id = $1 AND s.account_id = $2",
        )
        .bind(id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("scenario"))?;
        let mode: ScenarioMode = current.parsed("mode")?;
        let is_one_time = current.flag("is_one_time")?;
        if mode != draft.mode && current.int("n")? > 0 {
            return Err(Error::conflict("the scenario's mode cannot change once assignments exist"));
        }
        match input.is_one_time {
            Some(wanted) if wanted != is_one_time => {
                return Err(Error::invalid(
                    "isOneTime",
                    "cannot be changed here; promote a one-time scenario to make it reusable",
                ));
            }
            _ => draft.is_one_time = is_one_time,
        }
        sqlx::query(
            "UPDATE scenarios SET title = $1, prompt = $2, description = $3, mode = $4, category = $5, skills = $6, \
             difficulty = $7, estimated_time_minutes = $8, relevant_policy_sections = $9, evaluator_context = $10, \
             risk_profile = $11, updated_at = $12 WHERE id = $13 AND account_id = $14",
        )
        .bind(&draft.title)
        .bind(&draft.prompt)
        .bind(&draft.description)
        .bind(draft.mode.as_str())
        .bind(&draft.category)
        .bind(serde_json::Value::from(draft.skills.clone()).to_string())
        .bind(draft.difficulty.map(Difficulty::as_str))
        .bind(draft.estimated_time)
        .bind(&draft.relevant_policy_sections)
        .bind(&draft.evaluator_context)
        .bind(draft.risk_profile.as_ref().map(RiskProfile::to_stored))
        .bind(Timestamp::now().millis())
        .bind(id.to_string())
        .bind(account_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| title_conflict(e, &draft.title))?;
        if let Some(voice) = &input.voice {
            crate::voice::set_scenario_voice(&mut tx, id, voice).await?;
        }
        tx.commit().await?;
        self.scenario(account_id, id).await
    }

    /// Deletes a scenario nothing depends on; one with assignments or sessions is refused, never
    /// orphaned (the foreign keys restrict it, so a racing assignment cannot slip in). Its test
    /// runs go with it: they are the scenario's own trials, nobody's practice. Audited with
    /// `audit` in the same transaction.
    pub async fn delete_scenario(&self, account_id: AccountId, id: ScenarioId, audit: &crate::Audit) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM sessions WHERE scenario_id = $1 AND account_id = $2 AND test_run = TRUE")
            .bind(id.to_string())
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM scenarios WHERE id = $1 AND account_id = $2")
            .bind(id.to_string())
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => {
                    Error::conflict("the scenario has assignments or sessions; it cannot be deleted")
                }
                _ => e.into(),
            })?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("scenario"));
        }
        crate::accounts::audit_tx(&mut tx, &audit.clone().target("scenario", id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns a one-time scenario into a reusable one. The caller has warned the user that it may
    /// hold personal details of the person it was written for.
    pub async fn promote_scenario(
        &self,
        account_id: AccountId,
        id: ScenarioId,
        audit: &crate::Audit,
    ) -> Result<Scenario> {
        let scenario = self.scenario(account_id, id).await?;
        if !scenario.is_one_time {
            return Err(Error::conflict("the scenario is already reusable"));
        }
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE scenarios SET is_one_time = FALSE, updated_at = $1 WHERE id = $2 AND account_id = $3")
            .bind(Timestamp::now().millis())
            .bind(id.to_string())
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| title_conflict(e, &scenario.title))?;
        crate::accounts::audit_tx(&mut tx, &audit.clone().target("scenario", id)).await?;
        tx.commit().await?;
        self.scenario(account_id, id).await
    }

    /// Bulk import of reusable scenarios: rows that fail validation, and titles that already
    /// exist (case-insensitive, in the account or earlier in the same file), are reported and
    /// skipped; the valid rest is created in one transaction.
    pub async fn import_scenarios(
        &self,
        account_id: AccountId,
        created_by: Option<UserId>,
        rows: Vec<(usize, Result<ScenarioInput, Vec<FieldError>>)>,
    ) -> Result<ImportReport> {
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(Error::invalid("file", format!("{} rows; at most {MAX_IMPORT_ROWS} per import", rows.len())));
        }
        let categories = self.categories(account_id).await?;
        let mut report = ImportReport::default();
        let mut tx = self.write_tx().await?;
        let existing =
            sqlx::query("SELECT id, lower(title) AS t FROM scenarios WHERE account_id = $1 AND NOT is_one_time")
                .bind(account_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
        let mut titles = std::collections::HashMap::new();
        for r in &existing {
            titles.insert(r.text("t")?, r.uuid("id")?);
        }
        let mut seen_in_file = HashSet::new();
        for (row, parsed) in rows {
            let input = match parsed {
                Ok(mut input) => {
                    input.is_one_time = Some(false);
                    input
                }
                Err(errors) => {
                    report.failed.push(ImportRowFailed { row, errors });
                    continue;
                }
            };
            let draft = match input.validate(&categories) {
                Ok(d) => d,
                Err(Error::Invalid(errors)) => {
                    report.failed.push(ImportRowFailed { row, errors });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let key = draft.title.to_lowercase();
            if let Some(existing_id) = titles.get(&key) {
                report.skipped.push(ImportRowSkipped {
                    row,
                    title: draft.title,
                    reason: "a scenario with this title exists".into(),
                    existing_id: Some(*existing_id),
                });
                continue;
            }
            if !seen_in_file.insert(key) {
                report.skipped.push(ImportRowSkipped {
                    row,
                    title: draft.title,
                    reason: "duplicate title earlier in the file".into(),
                    existing_id: None,
                });
                continue;
            }
            let id = insert_scenario(&mut tx, account_id, created_by, &draft).await?;
            report.created.push(ImportRowCreated { row, id, title: draft.title });
        }
        tx.commit().await?;
        Ok(report)
    }
}

async fn insert_scenario(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    created_by: Option<UserId>,
    draft: &ScenarioDraft,
) -> Result<ScenarioId> {
    let id = ScenarioId::new();
    let now = Timestamp::now().millis();
    sqlx::query(
        "INSERT INTO scenarios (id, account_id, title, prompt, description, mode, category, skills, difficulty, \
         estimated_time_minutes, relevant_policy_sections, evaluator_context, is_one_time, created_by, created_at, updated_at, \
         risk_profile) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)",
    )
    .bind(id.to_string())
    .bind(account_id.to_string())
    .bind(&draft.title)
    .bind(&draft.prompt)
    .bind(&draft.description)
    .bind(draft.mode.as_str())
    .bind(&draft.category)
    .bind(serde_json::Value::from(draft.skills.clone()).to_string())
    .bind(draft.difficulty.map(Difficulty::as_str))
    .bind(draft.estimated_time)
    .bind(&draft.relevant_policy_sections)
    .bind(&draft.evaluator_context)
    .bind(draft.is_one_time)
    .bind(created_by.map(|u| u.to_string()))
    .bind(now)
    .bind(draft.risk_profile.as_ref().map(RiskProfile::to_stored))
    .execute(&mut **tx)
    .await
    .map_err(|e| title_conflict(e, &draft.title))?;
    Ok(id)
}

fn title_conflict(e: sqlx::Error, title: &str) -> Error {
    match violation(&e) {
        Some(Violation::Unique(_)) => Error::conflict(format!("a reusable scenario titled `{title}` exists")),
        _ => e.into(),
    }
}
