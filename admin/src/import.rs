//! CSV scenario import: turns a file into one parsed [`ScenarioInput`] (or the row's field
//! errors) per data row. Validation against the account and duplicate detection happen in the
//! store, which reports every row.

use std::collections::HashMap;

use store::{Difficulty, FieldError, ScenarioInput, ScenarioMode};

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
];
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
    let mut unknown = Vec::new();
    for (i, header) in headers.iter().enumerate() {
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
            format!("unknown column(s) {}; known: {}", unknown.join(", "), COLUMNS.join(", ")),
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
        rows.push((row, parse_row(&cell)));
    }
    Ok(rows)
}

fn parse_row(cell: &dyn Fn(&str) -> String) -> Result<ScenarioInput, Vec<FieldError>> {
    let mut errors = Vec::new();
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
            risk_profile: None,
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
    fn missing_and_unknown_columns_fail_the_file() {
        let Err(ApiError::Validation(errors)) = parse_csv(b"title,prompt,colour\n") else {
            panic!("expected a validation error");
        };
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("missing column `mode`")));
        assert!(messages.iter().any(|m| m.contains("unknown column(s) colour")));
    }
}
