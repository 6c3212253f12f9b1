//! Assignments: a scenario given to a counselor, and its state machine
//! (see [`AssignmentStatus::can_become`]).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};

use crate::db::{RowExt, Store, for_update, lock_ids, page};
use crate::domain::{AssignmentStatus, Difficulty, Role, ScenarioMode, Timestamp};
use crate::error::{Error, Result, Violation, violation};
use crate::ids::{AccountId, AssignmentId, ScenarioId, UserId};

pub const MAX_BULK_PAIRS: usize = 500;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    #[schema(value_type = Uuid)]
    pub id: AssignmentId,
    #[schema(value_type = Uuid)]
    pub account_id: AccountId,
    #[schema(value_type = Uuid)]
    pub scenario_id: ScenarioId,
    pub scenario: ScenarioSummary,
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    pub counselor: CounselorSummary,
    #[schema(value_type = Option<Uuid>)]
    pub assigned_by: Option<UserId>,
    pub status: AssignmentStatus,
    pub due_at: Option<Timestamp>,
    /// Past its due date and not completed.
    pub overdue: bool,
    /// Supervisor notes for the counselor.
    pub notes: String,
    /// Practice sessions started for this assignment; an ended voice call in which the counselor
    /// never spoke is not an attempt.
    pub attempts: i64,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a counselor may see of the scenario behind an assignment (no prompt, no grading guidance).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioSummary {
    pub title: String,
    pub description: String,
    pub mode: ScenarioMode,
    pub category: String,
    pub difficulty: Option<Difficulty>,
    pub estimated_time: Option<i64>,
    pub is_one_time: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CounselorSummary {
    pub display_name: String,
    pub email: String,
    pub external_id: Option<String>,
}

const ASSIGNMENT_SELECT: &str = "SELECT a.id, a.account_id, a.scenario_id, a.counselor_id, a.assigned_by, a.status, \
    a.due_at, a.notes, a.started_at, a.completed_at, a.created_at, a.updated_at, \
    (SELECT COUNT(*) FROM sessions x WHERE x.assignment_id = a.id AND NOT (x.kind = 'voice' AND x.status <> 'active' \
        AND NOT EXISTS (SELECT 1 FROM transcript_turns t WHERE t.session_id = x.id AND t.speaker = 'counselor'))) AS attempts, \
    s.title, s.description, s.mode, s.category, s.difficulty, s.estimated_time_minutes, s.is_one_time, \
    u.display_name, u.email, u.external_id \
    FROM assignments a JOIN scenarios s ON s.id = a.scenario_id JOIN users u ON u.id = a.counselor_id";

impl Assignment {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Assignment {
            id: row.uuid("id")?,
            account_id: row.uuid("account_id")?,
            scenario_id: row.uuid("scenario_id")?,
            scenario: ScenarioSummary {
                title: row.text("title")?,
                description: row.text("description")?,
                mode: row.parsed("mode")?,
                category: row.text("category")?,
                difficulty: row.opt_parsed("difficulty")?,
                estimated_time: row.opt_int("estimated_time_minutes")?,
                is_one_time: row.flag("is_one_time")?,
            },
            counselor_id: row.uuid("counselor_id")?,
            counselor: CounselorSummary {
                display_name: row.text("display_name")?,
                email: row.text("email")?,
                external_id: row.opt_text("external_id")?,
            },
            assigned_by: row.opt_uuid("assigned_by")?,
            status: row.parsed("status")?,
            due_at: row.opt_ts("due_at")?,
            overdue: row.parsed::<AssignmentStatus>("status")? != AssignmentStatus::Completed
                && row.opt_ts("due_at")?.is_some_and(|d| d.millis() < Timestamp::now().millis()),
            notes: row.text("notes")?,
            attempts: row.int("attempts")?,
            started_at: row.opt_ts("started_at")?,
            completed_at: row.opt_ts("completed_at")?,
            created_at: row.ts("created_at")?,
            updated_at: row.ts("updated_at")?,
        })
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewAssignment {
    #[schema(value_type = Uuid)]
    pub scenario_id: ScenarioId,
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    #[serde(default)]
    pub due_at: Option<Timestamp>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A change to an assignment. Status moves follow the state machine; who may ask for which is
/// decided by the caller (counselors start, supervisors reset).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentPatch {
    #[serde(default)]
    pub status: Option<AssignmentStatus>,
    /// A date-time, or null to clear it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Option<Timestamp>>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// Tells "absent" (leave as is) from `null` (clear) in a PATCH body.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AssignmentFilter {
    #[param(value_type = Option<Uuid>)]
    pub counselor_id: Option<UserId>,
    #[param(value_type = Option<Uuid>)]
    pub scenario_id: Option<ScenarioId>,
    pub status: Option<AssignmentStatus>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Outcome of a bulk assignment: every counselor x scenario pair lands in exactly one list.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentReport {
    pub created: Vec<Assignment>,
    /// Pairs that already have an active assignment.
    pub skipped: Vec<SkippedPair>,
    /// Pairs that cannot be assigned (unknown counselor or scenario, not a counselor, ...).
    pub blocked: Vec<BlockedPair>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedPair {
    #[schema(value_type = Uuid)]
    pub scenario_id: ScenarioId,
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    pub reason: String,
    #[schema(value_type = Option<Uuid>)]
    pub existing_assignment_id: Option<AssignmentId>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockedPair {
    #[schema(value_type = Uuid)]
    pub scenario_id: ScenarioId,
    #[schema(value_type = Uuid)]
    pub counselor_id: UserId,
    pub reason: String,
}

/// A due date given now must lie ahead: one already past would make the assignment overdue the
/// moment it is made (a date alone means the end of that day, so today is accepted).
fn check_due(due_at: Option<Timestamp>) -> Result<()> {
    match due_at {
        Some(d) if d.millis() < Timestamp::now().millis() => {
            Err(Error::invalid("dueAt", "the due date has passed: choose today or a later day"))
        }
        _ => Ok(()),
    }
}

/// Why a counselor or scenario cannot take an assignment, if it cannot.
async fn blocker(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    scenario_id: ScenarioId,
    counselor_id: UserId,
) -> Result<Option<String>> {
    // Both rows are locked so the answer stays true until the insert commits: a deactivation,
    // a mode change or another one-time assignment waits (lock order: counselor, then scenario).
    let counselor =
        sqlx::query(&format!("SELECT role, active FROM users WHERE id = $1 AND account_id = $2{}", for_update(tx)))
            .bind(counselor_id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    match counselor {
        None => return Ok(Some("counselor not found".into())),
        Some(row) if row.parsed::<Role>("role")? != Role::Counselor => {
            return Ok(Some("user is not a counselor".into()));
        }
        Some(row) if !row.flag("active")? => return Ok(Some("counselor is deactivated".into())),
        Some(_) => {}
    }
    let locked = sqlx::query(&format!("SELECT id FROM scenarios WHERE id = $1 AND account_id = $2{}", for_update(tx)))
        .bind(scenario_id.to_string())
        .bind(account_id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    if locked.is_none() {
        return Ok(Some("scenario not found".into()));
    }
    // A statement after the lock, so (under read committed) it counts what committed before it.
    let scenario = sqlx::query(
        "SELECT s.is_one_time, (SELECT COUNT(*) FROM assignments a WHERE a.scenario_id = s.id) AS n \
         FROM scenarios s WHERE s.id = $1 AND s.account_id = $2",
    )
    .bind(scenario_id.to_string())
    .bind(account_id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    match scenario {
        None => Ok(Some("scenario not found".into())),
        Some(row) if row.flag("is_one_time")? && row.int("n")? > 0 => {
            Ok(Some("one-time scenario is already assigned".into()))
        }
        Some(_) => Ok(None),
    }
}

/// Inserts an assignment unless the pair already has an active one. The partial unique index
/// decides (`ON CONFLICT DO NOTHING`), so racing requests cannot both win and no statement fails
/// inside the caller's transaction.
async fn try_insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    assigned_by: Option<UserId>,
    new: &NewAssignment,
) -> Result<Option<AssignmentId>> {
    let id = AssignmentId::new();
    let now = Timestamp::now().millis();
    let done = sqlx::query(
        "INSERT INTO assignments (id, account_id, scenario_id, counselor_id, assigned_by, status, due_at, notes, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $8) \
         ON CONFLICT (counselor_id, scenario_id) WHERE status <> 'completed' DO NOTHING",
    )
    .bind(id.to_string())
    .bind(account_id.to_string())
    .bind(new.scenario_id.to_string())
    .bind(new.counselor_id.to_string())
    .bind(assigned_by.map(|u| u.to_string()))
    .bind(new.due_at.map(Timestamp::millis))
    .bind(new.notes.as_deref().unwrap_or("").trim())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok((done.rows_affected() == 1).then_some(id))
}

async fn active_assignment_id(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    scenario_id: ScenarioId,
    counselor_id: UserId,
) -> Result<Option<AssignmentId>> {
    let row = sqlx::query(
        "SELECT id FROM assignments WHERE scenario_id = $1 AND counselor_id = $2 AND status <> 'completed'",
    )
    .bind(scenario_id.to_string())
    .bind(counselor_id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| r.uuid("id")).transpose()
}

/// Checks and inserts one assignment inside the caller's transaction.
pub(crate) async fn insert_assignment(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: AccountId,
    assigned_by: Option<UserId>,
    new: &NewAssignment,
) -> Result<AssignmentId> {
    if let Some(reason) = blocker(tx, account_id, new.scenario_id, new.counselor_id).await? {
        return Err(match reason.as_str() {
            "counselor not found" => Error::invalid("counselorId", reason),
            "scenario not found" => Error::invalid("scenarioId", reason),
            "one-time scenario is already assigned" => Error::conflict(reason),
            _ => Error::invalid("counselorId", reason),
        });
    }
    match try_insert(tx, account_id, assigned_by, new).await? {
        Some(id) => Ok(id),
        None => {
            let existing = active_assignment_id(tx, new.scenario_id, new.counselor_id).await?;
            Err(Error::Conflict {
                message: "the counselor already has an active assignment for this scenario".into(),
                existing_id: existing.map(|id| id.to_string()),
            })
        }
    }
}

impl Store {
    pub async fn create_assignment(
        &self,
        account_id: AccountId,
        assigned_by: Option<UserId>,
        new: &NewAssignment,
    ) -> Result<Assignment> {
        self.create_assignment_audited(account_id, assigned_by, new, None).await
    }

    /// [`Store::create_assignment`], with `audit` written in its transaction.
    pub async fn create_assignment_audited(
        &self,
        account_id: AccountId,
        assigned_by: Option<UserId>,
        new: &NewAssignment,
        audit: Option<&crate::Audit>,
    ) -> Result<Assignment> {
        check_due(new.due_at)?;
        let mut tx = self.write_tx().await?;
        let id = insert_assignment(&mut tx, account_id, assigned_by, new).await?;
        if let Some(audit) = audit {
            crate::accounts::audit_tx(&mut tx, &audit.clone().target("assignment", id)).await?;
        }
        tx.commit().await?;
        self.assignment(account_id, id).await
    }

    /// Assigns every scenario to every counselor (at most [`MAX_BULK_PAIRS`] pairs), reporting
    /// each pair as created, skipped (already active) or blocked.
    pub async fn bulk_assign(
        &self,
        account_id: AccountId,
        assigned_by: Option<UserId>,
        scenario_ids: &[ScenarioId],
        counselor_ids: &[UserId],
        due_at: Option<Timestamp>,
        notes: Option<&str>,
    ) -> Result<AssignmentReport> {
        let scenario_ids = dedup(scenario_ids);
        let counselor_ids = dedup(counselor_ids);
        let pairs = scenario_ids.len() * counselor_ids.len();
        if pairs == 0 {
            return Err(Error::invalid("scenarioIds", "give at least one scenario and one counselor"));
        }
        check_due(due_at)?;
        if pairs > MAX_BULK_PAIRS {
            return Err(Error::invalid(
                "counselorIds",
                format!("{pairs} counselor x scenario pairs; at most {MAX_BULK_PAIRS} per request"),
            ));
        }
        let mut report = AssignmentReport::default();
        let mut created = Vec::new();
        let mut tx = self.write_tx().await?;
        // All counselors, then all scenarios, each in id order: the order every other path takes
        // (one counselor, then one scenario), so overlapping bulk requests cannot deadlock.
        lock_ids(&mut tx, "users", &counselor_ids).await?;
        lock_ids(&mut tx, "scenarios", &scenario_ids).await?;
        for scenario_id in &scenario_ids {
            for counselor_id in &counselor_ids {
                if let Some(reason) = blocker(&mut tx, account_id, *scenario_id, *counselor_id).await? {
                    report.blocked.push(BlockedPair { scenario_id: *scenario_id, counselor_id: *counselor_id, reason });
                    continue;
                }
                let new = NewAssignment {
                    scenario_id: *scenario_id,
                    counselor_id: *counselor_id,
                    due_at,
                    notes: notes.map(str::to_owned),
                };
                match try_insert(&mut tx, account_id, assigned_by, &new).await? {
                    Some(id) => created.push(id),
                    None => report.skipped.push(SkippedPair {
                        scenario_id: *scenario_id,
                        counselor_id: *counselor_id,
                        reason: "an active assignment exists".into(),
                        existing_assignment_id: active_assignment_id(&mut tx, *scenario_id, *counselor_id).await?,
                    }),
                }
            }
        }
        tx.commit().await?;
        for id in created {
            report.created.push(self.assignment(account_id, id).await?);
        }
        Ok(report)
    }

    pub async fn assignment(&self, account_id: AccountId, id: AssignmentId) -> Result<Assignment> {
        let row = sqlx::query(&format!("{ASSIGNMENT_SELECT} WHERE a.id = $1 AND a.account_id = $2"))
            .bind(id.to_string())
            .bind(account_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("assignment"))?;
        Assignment::from_row(&row)
    }

    pub async fn list_assignments(&self, account_id: AccountId, filter: &AssignmentFilter) -> Result<Vec<Assignment>> {
        let (limit, offset) = page(filter.limit, filter.offset);
        let rows = sqlx::query(&format!(
            "{ASSIGNMENT_SELECT} WHERE a.account_id = $1 \
             AND ($2 IS NULL OR a.counselor_id = $2) \
             AND ($3 IS NULL OR a.scenario_id = $3) \
             AND ($4 IS NULL OR a.status = $4) \
             ORDER BY a.created_at DESC, a.id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(account_id.to_string())
        .bind(filter.counselor_id.map(|u| u.to_string()))
        .bind(filter.scenario_id.map(|u| u.to_string()))
        .bind(filter.status.map(AssignmentStatus::as_str))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Assignment::from_row).collect()
    }

    /// Applies a patch. A status change must be a legal move from the status read, and is
    /// written only if nobody changed the status in between (compare-and-set).
    /// Changes an assignment's status, due date or notes; `audit` (a supervisor's reset) is
    /// written in the same transaction.
    pub async fn patch_assignment(
        &self,
        account_id: AccountId,
        id: AssignmentId,
        patch: &AssignmentPatch,
        audit: Option<&crate::Audit>,
    ) -> Result<Assignment> {
        check_due(patch.due_at.flatten())?;
        let current = self.assignment(account_id, id).await?;
        let now = Timestamp::now().millis();
        let mut tx = self.write_tx().await?;
        if let Some(to) = patch.status.filter(|to| *to != current.status) {
            if to == AssignmentStatus::Completed {
                return Err(Error::conflict("an assignment is completed by its evaluation, not by hand"));
            }
            if !current.status.can_become(to) {
                return Err(Error::conflict(format!("cannot move an assignment from {} to {to}", current.status)));
            }
            let done = sqlx::query(
                "UPDATE assignments SET status = $1, started_at = CASE WHEN $1 = 'in_progress' THEN COALESCE(started_at, $2) ELSE started_at END, \
                 updated_at = $2 WHERE id = $3 AND account_id = $4 AND status = $5",
            )
            .bind(to.as_str())
            .bind(now)
            .bind(id.to_string())
            .bind(account_id.to_string())
            .bind(current.status.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(Error::conflict("the assignment changed meanwhile; reload and retry"));
            }
        }
        if let Some(due_at) = patch.due_at {
            sqlx::query("UPDATE assignments SET due_at = $1, updated_at = $2 WHERE id = $3 AND account_id = $4")
                .bind(due_at.map(Timestamp::millis))
                .bind(now)
                .bind(id.to_string())
                .bind(account_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(notes) = &patch.notes {
            sqlx::query("UPDATE assignments SET notes = $1, updated_at = $2 WHERE id = $3 AND account_id = $4")
                .bind(notes.trim())
                .bind(now)
                .bind(id.to_string())
                .bind(account_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(audit) = audit {
            crate::accounts::audit_tx(&mut tx, &audit.clone().target("assignment", id)).await?;
        }
        tx.commit().await?;
        self.assignment(account_id, id).await
    }

    /// Marks an in-progress assignment completed (its evaluation is done). Completing a completed
    /// one is a no-op, so a repeated evaluation is harmless.
    /// For tests: production completes an assignment through its evaluation.
    #[cfg(feature = "testing")]
    pub async fn complete_assignment(&self, account_id: AccountId, id: AssignmentId) -> Result<Assignment> {
        let now = Timestamp::now().millis();
        let done = sqlx::query(
            "UPDATE assignments SET status = 'completed', completed_at = $1, updated_at = $1 \
             WHERE id = $2 AND account_id = $3 AND status = 'in_progress'",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(account_id.to_string())
        .execute(&self.pool)
        .await?;
        let assignment = self.assignment(account_id, id).await?;
        if done.rows_affected() == 0 && assignment.status != AssignmentStatus::Completed {
            return Err(Error::conflict(format!("cannot complete an assignment that is {}", assignment.status)));
        }
        Ok(assignment)
    }

    /// Deletes an assignment without attempts; one with sessions keeps its training record (409).
    pub async fn delete_assignment(&self, account_id: AccountId, id: AssignmentId) -> Result<()> {
        let done = sqlx::query("DELETE FROM assignments WHERE id = $1 AND account_id = $2")
            .bind(id.to_string())
            .bind(account_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => {
                    Error::conflict("the assignment has practice sessions; it cannot be deleted")
                }
                _ => e.into(),
            })?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound("assignment"));
        }
        Ok(())
    }
}

fn dedup<T: Copy + Eq + std::hash::Hash>(ids: &[T]) -> Vec<T> {
    let mut seen = HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}
