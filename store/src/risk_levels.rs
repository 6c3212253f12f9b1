//! The center's own risk levels: an ordered list per account (least to most severe), each with
//! the center's label and the standard level it maps to. The standard level is what grading
//! reads (the gates, the under/over comparison) and what the partner API speaks; the labels are
//! what people read in the profile form, the call record, feedback and progress. An account
//! without rows uses the four standard levels under their own names.
//!
//! A scenario's profile and a call record store the standard level, so a center level is "in
//! use" when it is the only one mapping to a standard level that a profile expects or a filed
//! call record carries: removing it would leave those without a label of the center's (409).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::{RowExt, Store};
use crate::domain::RiskLevel;
use crate::error::{Error, FieldError, Result};
use crate::ids::AccountId;
use crate::{Audit, RiskProfile};

/// The longest label.
pub const RISK_LEVEL_LABEL_MAX: usize = 60;
/// The most levels a center may have.
pub const RISK_LEVELS_MAX: usize = 12;

/// One of the center's risk levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CenterRiskLevel {
    /// The center's name for it (1 to 60 characters, unique in the account ignoring case).
    #[schema(min_length = 1, max_length = 60)]
    pub label: String,
    /// The standard level it maps to: grading's gates and the under/over comparison read it.
    pub standard: RiskLevel,
}

/// The four standard levels under their own names.
pub fn default_risk_levels() -> Vec<CenterRiskLevel> {
    RiskLevel::ALL
        .iter()
        .map(|l| {
            let name = l.as_str();
            let label = name[..1].to_uppercase() + &name[1..];
            CenterRiskLevel { label, standard: *l }
        })
        .collect()
}

fn rank(level: RiskLevel) -> usize {
    RiskLevel::ALL.iter().position(|l| *l == level).unwrap_or(0)
}

/// The list checked and tidied (labels trimmed), or one error per field.
pub fn validate_risk_levels(levels: &[CenterRiskLevel]) -> std::result::Result<Vec<CenterRiskLevel>, Vec<FieldError>> {
    // An oversize list is one error, checked before any level: 10,000 duplicates would otherwise
    // be compared pairwise (quadratic) and answered with 10,000 field errors.
    if levels.len() > RISK_LEVELS_MAX {
        return Err(vec![FieldError::new(
            "levels",
            format!("at most {RISK_LEVELS_MAX} levels (this list has {})", levels.len()),
        )]);
    }
    let mut errors = Vec::new();
    if levels.is_empty() {
        errors.push(FieldError::new("levels", "needs at least one level"));
    }
    let mut out: Vec<CenterRiskLevel> = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let label = level.label.split_whitespace().collect::<Vec<_>>().join(" ");
        let field = format!("levels[{i}].label");
        if label.is_empty() {
            errors.push(FieldError::new(&field, "a label is required"));
        } else if label.chars().count() > RISK_LEVEL_LABEL_MAX {
            errors.push(FieldError::new(&field, format!("at most {RISK_LEVEL_LABEL_MAX} characters")));
        } else if out.iter().any(|o| o.label.to_lowercase() == label.to_lowercase()) {
            errors.push(FieldError::new(&field, format!("“{label}” is already a level")));
        }
        if let Some(previous) = out.last()
            && rank(level.standard) < rank(previous.standard)
        {
            errors.push(FieldError::new(
                format!("levels[{i}].standard"),
                "levels go from least to most severe: this one maps lower than the one before",
            ));
        }
        out.push(CenterRiskLevel { label, standard: level.standard });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

impl Store {
    /// The account's risk levels in order (the standard four when it has none of its own).
    pub async fn risk_levels(&self, account_id: AccountId) -> Result<Vec<CenterRiskLevel>> {
        let rows = sqlx::query("SELECT label, standard FROM risk_levels WHERE account_id = $1 ORDER BY position")
            .bind(account_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        if rows.is_empty() {
            return Ok(default_risk_levels());
        }
        rows.iter()
            .map(|row| Ok(CenterRiskLevel { label: row.text("label")?, standard: row.parsed("standard")? }))
            .collect()
    }

    /// Replaces the account's risk levels (audited). 422 per field; 409 when a standard level a
    /// profile expects or a filed call record carries would be left without a level. The
    /// account's row is locked first, so two admins' edits apply one after the other.
    pub async fn set_risk_levels(
        &self,
        account_id: AccountId,
        levels: &[CenterRiskLevel],
        audit: &Audit,
    ) -> Result<Vec<CenterRiskLevel>> {
        let levels = validate_risk_levels(levels).map_err(Error::Invalid)?;
        let mut tx = self.write_tx().await?;
        sqlx::query(&format!("SELECT id FROM accounts WHERE id = $1{}", crate::db::for_update(&tx)))
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound("account"))?;
        let rows = sqlx::query("SELECT label, standard FROM risk_levels WHERE account_id = $1 ORDER BY position")
            .bind(account_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
        let old: Vec<CenterRiskLevel> = if rows.is_empty() {
            default_risk_levels()
        } else {
            rows.iter()
                .map(|row| Ok(CenterRiskLevel { label: row.text("label")?, standard: row.parsed("standard")? }))
                .collect::<Result<_>>()?
        };
        let dropped: Vec<RiskLevel> = RiskLevel::ALL
            .iter()
            .copied()
            .filter(|s| old.iter().any(|o| o.standard == *s) && !levels.iter().any(|n| n.standard == *s))
            .collect();
        if !dropped.is_empty() {
            let profiles: Vec<String> = sqlx::query_scalar(
                "SELECT risk_profile FROM scenarios WHERE account_id = $1 AND risk_profile IS NOT NULL",
            )
            .bind(account_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
            let filed: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT risk_level FROM call_records WHERE account_id = $1 AND risk_level IS NOT NULL",
            )
            .bind(account_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
            for standard in dropped {
                let scenarios = profiles
                    .iter()
                    .filter(|p| RiskProfile::from_stored(p).is_ok_and(|p| p.expected_level == standard))
                    .count();
                let recorded = filed.iter().any(|l| l == standard.as_str());
                if scenarios > 0 || recorded {
                    let label =
                        old.iter().filter(|o| o.standard == standard).map(|o| o.label.as_str()).collect::<Vec<_>>();
                    let used = match (scenarios, recorded) {
                        (0, _) => "call records".to_owned(),
                        (n, false) => format!("{n} scenario{}", if n == 1 { "" } else { "s" }),
                        (n, true) => format!("{n} scenario{} and call records", if n == 1 { "" } else { "s" }),
                    };
                    return Err(Error::conflict(format!(
                        "“{}” is in use ({used}): keep a level mapped to {} or change those first",
                        label.join("”, “"),
                        standard.as_str()
                    )));
                }
            }
        }
        sqlx::query("DELETE FROM risk_levels WHERE account_id = $1")
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        for (position, level) in levels.iter().enumerate() {
            sqlx::query("INSERT INTO risk_levels (account_id, position, label, standard) VALUES ($1, $2, $3, $4)")
                .bind(account_id.to_string())
                .bind(position as i64)
                .bind(&level.label)
                .bind(level.standard.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let mut audit = audit.clone();
        audit.details = serde_json::json!({"old": old, "new": levels});
        crate::accounts::audit_tx(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(label: &str, standard: RiskLevel) -> CenterRiskLevel {
        CenterRiskLevel { label: label.into(), standard }
    }

    fn fields(r: std::result::Result<Vec<CenterRiskLevel>, Vec<FieldError>>) -> Vec<String> {
        r.err().unwrap_or_default().iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn the_defaults_are_the_four_standard_levels_in_order() {
        let d = default_risk_levels();
        assert_eq!(d.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(), ["Low", "Moderate", "High", "Imminent"]);
        assert_eq!(validate_risk_levels(&d), Ok(d.clone()));
    }

    #[test]
    fn labels_are_required_unique_and_levels_ordered() {
        use RiskLevel::*;
        let ok = [level(" Green ", Low), level("Amber", Moderate), level("Amber+", Moderate), level("Red", Imminent)];
        assert_eq!(validate_risk_levels(&ok).map(|l| l[0].label.clone()), Ok("Green".into()));
        assert_eq!(fields(validate_risk_levels(&[])), ["levels"]);
        assert_eq!(fields(validate_risk_levels(&[level("  ", Low)])), ["levels[0].label"]);
        assert_eq!(fields(validate_risk_levels(&[level("Red", Low), level("red", High)])), ["levels[1].label"]);
        assert_eq!(fields(validate_risk_levels(&[level("High", High), level("Low", Low)])), ["levels[1].standard"]);
        assert_eq!(fields(validate_risk_levels(&[level(&"x".repeat(61), Low)])), ["levels[0].label"]);
    }

    #[test]
    fn an_oversize_list_is_one_error_whatever_its_levels() {
        use RiskLevel::*;
        let at_cap: Vec<_> = (0..RISK_LEVELS_MAX).map(|i| level(&format!("L{i}"), Low)).collect();
        assert!(validate_risk_levels(&at_cap).is_ok());
        let over: Vec<_> = (0..10_000).map(|i| level("Same", if i % 2 == 0 { Imminent } else { Low })).collect();
        assert_eq!(fields(validate_risk_levels(&over)), ["levels"]);
        assert_eq!(fields(validate_risk_levels(&over[..RISK_LEVELS_MAX + 1])), ["levels"]);
    }
}
