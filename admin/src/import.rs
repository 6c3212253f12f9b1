//! CSV scenario import: turns a file into one parsed [`ScenarioInput`] (or the row's field
//! errors) per data row. Validation against the account and duplicate detection happen in the
//! store, which reports every row.
//!
//! A row may carry a risk profile in compact columns: `risk_level` (low, moderate, high,
//! imminent), `required_actions` (a `;` list), `third_party` (yes/no), and one column per fact,
//! `fact:<key>`, whose cell is `<rule>|<text>` when the key names a fact kind (`fact:firearms`)
//! and `<kind>|<rule>|<text>` otherwise; an empty cell means the row has no such fact. Problems
//! are reported under those column names.

use std::collections::HashMap;

use store::{
    Difficulty, DisclosureRule, FieldError, RequiredAction, RiskFact, RiskFactKind, RiskLevel, RiskProfile,
    ScenarioInput, ScenarioMode,
};

use crate::error::ApiError;

/// Canonical column names; headers match them ignoring case, spaces, `_` and `-`.
const COLUMNS: &[&str] = &[
    "title",
    "prompt",
    "description",
    "mode",
    "category",
    "skills",
    "difficulty",
    "estimated_time",
    "relevant_policy_sections",
    "evaluator_context",
    "risk_level",
    "required_actions",
    "third_party",
];
/// The prefix of a fact column, `fact:<key>`.
const FACT_PREFIX: &str = "fact:";
const REQUIRED: &[&str] = &["title", "prompt", "mode", "category"];

fn squash(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

pub type ParsedRow = (usize, Result<ScenarioInput, Vec<FieldError>>);

pub fn parse_csv(bytes: &[u8]) -> Result<Vec<ParsedRow>, ApiError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text =
        std::str::from_utf8(bytes).map_err(|_| ApiError::BadRequest("the CSV file must be UTF-8 text".into()))?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| ApiError::BadRequest(format!("unreadable CSV header: {e}")))?.clone();
    let mut index: HashMap<&'static str, usize> = HashMap::new();
    let mut fact_columns: Vec<(String, usize)> = Vec::new();
    let mut unknown = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        if header.get(..FACT_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(FACT_PREFIX)) {
            fact_columns.push((header[FACT_PREFIX.len()..].trim().to_owned(), i));
            continue;
        }
        let key = squash(header);
        let known =
            COLUMNS.iter().find(|c| squash(c) == key || (**c == "estimated_time" && key == "estimatedtimeminutes"));
        match known {
            Some(col) => {
                index.insert(col, i);
            }
            None if header.is_empty() => {}
            None => unknown.push(header.to_owned()),
        }
    }
    let mut errors: Vec<FieldError> = REQUIRED
        .iter()
        .filter(|c| !index.contains_key(*c))
        .map(|c| FieldError::new("file", format!("missing column `{c}`")))
        .collect();
    if !unknown.is_empty() {
        errors.push(FieldError::new(
            "file",
            format!("unknown column(s) {}; known: {}, fact:<key>", unknown.join(", "), COLUMNS.join(", ")),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }

    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let row = n + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push((row, Err(vec![FieldError::new("row", format!("unreadable CSV row: {e}"))])));
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cell = |col: &str| index.get(col).and_then(|i| record.get(*i)).unwrap_or("").to_owned();
        let facts: Vec<(&str, &str)> = fact_columns
            .iter()
            .map(|(key, i)| (key.as_str(), record.get(*i).unwrap_or("")))
            .filter(|(_, cell)| !cell.is_empty())
            .collect();
        rows.push((row, parse_row(&cell, &facts)));
    }
    Ok(rows)
}

/// The row's risk profile from its compact columns (`None`: the row has none), validated here so
/// problems name the CSV columns rather than the JSON fields.
fn parse_profile(
    cell: &dyn Fn(&str) -> String,
    facts: &[(&str, &str)],
    errors: &mut Vec<FieldError>,
) -> Option<RiskProfile> {
    let level = cell("risk_level").to_lowercase();
    let actions = cell("required_actions");
    if level.is_empty() && facts.is_empty() && actions.is_empty() {
        return None;
    }
    let before = errors.len();
    let expected_level = match level.parse::<RiskLevel>() {
        Ok(l) => Some(l),
        Err(_) if level.is_empty() => {
            errors.push(FieldError::new("risk_level", "needed with a risk profile (fact or required_actions columns)"));
            None
        }
        Err(e) => {
            errors.push(FieldError::new("risk_level", e.to_string()));
            None
        }
    };
    let mut required_actions = Vec::new();
    for action in actions.split([';', '|', ',']).map(str::trim).filter(|a| !a.is_empty()) {
        match action.to_lowercase().parse::<RequiredAction>() {
            Ok(a) => required_actions.push(a),
            Err(e) => errors.push(FieldError::new("required_actions", e.to_string())),
        }
    }
    let third_party = match cell("third_party").to_lowercase().as_str() {
        "" | "no" | "false" | "0" => false,
        "yes" | "true" | "1" => true,
        other => {
            errors.push(FieldError::new("third_party", format!("`{other}` is not yes or no")));
            false
        }
    };
    let mut parsed = Vec::new();
    for (key, text) in facts {
        let column = format!("{FACT_PREFIX}{key}");
        let parts: Vec<&str> = text.splitn(3, '|').map(str::trim).collect();
        let (kind, rule, text) = match (key.parse::<RiskFactKind>(), parts.as_slice()) {
            (Ok(kind), [rule, text]) => (Ok(kind), rule, text.to_string()),
            (Ok(kind), [rule, a, b]) => (Ok(kind), rule, format!("{a}|{b}")),
            (Err(_), [kind, rule, text]) => (kind.to_lowercase().parse::<RiskFactKind>(), rule, text.to_string()),
            _ => {
                errors.push(FieldError::new(
                    column,
                    "write `<rule>|<text>` (when the key names a fact kind) or `<kind>|<rule>|<text>`",
                ));
                continue;
            }
        };
        let rule = rule.to_lowercase().parse::<DisclosureRule>();
        match (kind, rule) {
            (Ok(kind), Ok(disclosure)) => parsed.push(RiskFact { key: key.to_string(), kind, text, disclosure }),
            (Err(e), _) | (_, Err(e)) => errors.push(FieldError::new(column, e.to_string())),
        }
    }
    if errors.len() > before {
        return None;
    }
    let profile = RiskProfile {
        schema_version: store::RISK_PROFILE_SCHEMA_VERSION,
        expected_level: expected_level?,
        required_actions,
        third_party,
        facts: parsed,
    };
    match profile.validate("riskProfile") {
        Ok(p) => Some(p),
        Err(problems) => {
            // Named by column: `fact:<key>` for a fact's problem, the profile's columns otherwise.
            for problem in problems {
                let field = problem.field.trim_start_matches("riskProfile.");
                let column = if let Some(rest) = field.strip_prefix("facts[") {
                    let i: usize = rest.split(']').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                    facts.get(i).map(|(k, _)| format!("{FACT_PREFIX}{k}")).unwrap_or_else(|| "fact".into())
                } else {
                    match field {
                        "expectedLevel" => "risk_level".into(),
                        "requiredActions" => "required_actions".into(),
                        "facts" => "fact".into(),
                        other => other.to_owned(),
                    }
                };
                errors.push(FieldError::new(column, problem.message));
            }
            None
        }
    }
}

fn parse_row(cell: &dyn Fn(&str) -> String, facts: &[(&str, &str)]) -> Result<ScenarioInput, Vec<FieldError>> {
    let mut errors = Vec::new();
    let risk_profile = parse_profile(cell, facts, &mut errors);
    let mode = match cell("mode").to_lowercase().parse::<ScenarioMode>() {
        Ok(m) => Some(m),
        Err(e) => {
            errors.push(FieldError::new("mode", e.to_string()));
            None
        }
    };
    let difficulty = match cell("difficulty").to_lowercase().as_str() {
        "" => None,
        d => match d.parse::<Difficulty>() {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(FieldError::new("difficulty", e.to_string()));
                None
            }
        },
    };
    let estimated_time = match cell("estimated_time").as_str() {
        "" => None,
        t => match t.parse::<i64>() {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(FieldError::new("estimated_time", format!("`{t}` is not a whole number of minutes")));
                None
            }
        },
    };
    let optional = |col: &str| Some(cell(col)).filter(|s| !s.is_empty());
    let skills =
        cell("skills").split([';', '|', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    match mode {
        Some(mode) if errors.is_empty() => Ok(ScenarioInput {
            title: cell("title"),
            prompt: cell("prompt"),
            description: optional("description"),
            mode,
            category: cell("category"),
            skills,
            difficulty,
            estimated_time,
            relevant_policy_sections: optional("relevant_policy_sections"),
            evaluator_context: optional("evaluator_context"),
            is_one_time: Some(false),
            assign_to: None,
            voice: None,
            risk_profile,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_reports_bad_cells() {
        let csv = "\u{feff}Title,Prompt,Mode,Category,Skills,Estimated Time\n\
                   A,You are A,phone,onboarding,listening; empathy,15\n\
                   B,You are B,video,onboarding,,soon\n\
                   ,,,,,\n";
        let rows = parse_csv(csv.as_bytes()).expect("header is fine");
        assert_eq!(rows.len(), 2);
        let first = rows[0].1.as_ref().expect("row 1 parses");
        assert_eq!(first.skills, vec!["listening", "empathy"]);
        assert_eq!(first.estimated_time, Some(15));
        let fields: Vec<_> =
            rows[1].1.as_ref().err().map(|e| e.iter().map(|f| f.field.clone()).collect()).unwrap_or_default();
        assert_eq!(fields, vec!["mode", "estimated_time"]);
    }

    #[test]
    fn a_risk_profile_comes_from_compact_columns() {
        let csv = "title,prompt,mode,category,risk_level,required_actions,fact:firearms,fact:tonight,fact:job\n\
                   A,You are A,phone,onboarding,imminent,active_rescue; safety_plan,asked_directly_after_rapport|A rifle in the truck,timeline|when_asked|Tonight,,\n\
                   B,You are B,chat,onboarding,,,when_asked|x,,\n\
                   C,You are C,chat,onboarding,imminent,,volunteered|A gun,,context|sometimes|Lost my job\n\
                   D,You are D,chat,onboarding,,,,,\n";
        let rows = parse_csv(csv.as_bytes()).expect("header is fine");
        let a = rows[0].1.as_ref().expect("row A parses").risk_profile.clone().expect("A has a profile");
        assert_eq!(a.expected_level, RiskLevel::Imminent);
        assert_eq!(a.required_actions, vec![RequiredAction::ActiveRescue, RequiredAction::SafetyPlan]);
        assert_eq!(a.facts.len(), 2);
        assert_eq!(a.facts[0].key, "firearms");
        assert_eq!(a.facts[0].kind, RiskFactKind::Firearms);
        assert_eq!(a.facts[0].disclosure, DisclosureRule::AskedDirectlyAfterRapport);
        assert_eq!(a.facts[1].kind, RiskFactKind::Timeline);
        assert_eq!(a.facts[1].text, "Tonight");
        let fields = |i: usize| -> Vec<String> {
            rows[i].1.as_ref().err().map(|e| e.iter().map(|f| f.field.clone()).collect()).unwrap_or_default()
        };
        assert_eq!(fields(1), vec!["risk_level"]);
        assert_eq!(fields(2), vec!["fact:job"]);
        assert!(rows[3].1.as_ref().expect("row D parses").risk_profile.is_none());
        let csv = "title,prompt,mode,category,risk_level,fact:firearms\nE,You are E,chat,onboarding,imminent,volunteered|A gun\n";
        let rows = parse_csv(csv.as_bytes()).expect("header");
        let errors = rows[0].1.as_ref().err().cloned().unwrap_or_default();
        let got: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("risk_level", "imminent risk needs a fact about an attempt in progress, a plan or a timeline"),
                ("required_actions", "imminent risk requires active rescue"),
            ]
        );
    }

    #[test]
    fn missing_and_unknown_columns_fail_the_file() {
        let Err(ApiError::Validation(errors)) = parse_csv(b"title,prompt,colour\n") else {
            panic!("expected a validation error");
        };
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("missing column `mode`")));
        assert!(messages.iter().any(|m| m.contains("unknown column(s) colour")));
    }
}
