//! The simulator's answer to grading against a scenario's clinical truth (the admin service's
//! `truth_assessment` structured call), deterministic so the offline demo and the tests show
//! the whole loop from the real transcript:
//! - a fact is asked at each counselor turn containing one of its `topic` words, and its rule is
//!   met there (a rule asking for rapport: only from the counselor's third turn on);
//! - it is disclosed at each caller turn sharing enough content words with the fact's text
//!   (two, or every one when it has fewer);
//! - a suggestion is templated per target: a failed check at its first cited counselor turn
//!   (else the last counselor turn), "Here you could <what the check asks>."; a fact never asked
//!   and never disclosed at the first caller turn touching its topic (else the last caller
//!   turn), "You could ask: \"<example question>\"".
//!
//! Denials are never reported: the scripted caller does not deny.

use serde_json::{Value, json};

/// The content of the `<data kind="...">` block of `text`, unescaped from the prompt's fence.
fn block(text: &str, kind: &str) -> Option<String> {
    let start = text.find(&format!("<data kind=\"{kind}\""))?;
    let body_start = start + text[start..].find('\n')? + 1;
    let end = body_start + text[body_start..].find("</data>")?;
    Some(text[body_start..end].replace("<\\data", "<data"))
}

fn json_block(text: &str, kind: &str) -> Vec<Value> {
    block(text, kind).and_then(|b| serde_json::from_str::<Vec<Value>>(b.trim()).ok()).unwrap_or_default()
}

/// One transcript turn: number, speaker, lowercased text.
struct Turn {
    n: u64,
    speaker: String,
    text: String,
}

fn transcript(text: &str) -> Vec<Turn> {
    json_block(text, "transcript")
        .iter()
        .filter_map(|t| {
            Some(Turn {
                n: t.get("turn")?.as_u64()?,
                speaker: t.get("speaker")?.as_str()?.to_owned(),
                text: t.get("text")?.as_str()?.to_lowercase(),
            })
        })
        .collect()
}

const STOPWORDS: &[&str] = &[
    "about", "after", "again", "because", "before", "being", "could", "every", "their", "there", "these", "thing",
    "things", "think", "those", "through", "would", "which", "while", "where", "really", "other", "since", "still",
    "never", "should",
];

fn content_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 5 && !STOPWORDS.contains(w))
        .map(str::to_owned)
        .collect();
    words.sort();
    words.dedup();
    words
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_lowercase).collect())
        .unwrap_or_default()
}

fn mentions(text: &str, words: &[String]) -> bool {
    words.iter().any(|w| !w.is_empty() && text.contains(w.as_str()))
}

fn discloses(text: &str, words: &[String]) -> bool {
    let need = words.len().min(2);
    need > 0 && words.iter().filter(|w| text.contains(w.as_str())).count() >= need
}

/// The answer to a `truth_assessment` request whose messages are `text`.
pub fn answer(text: &str) -> Value {
    let turns = transcript(text);
    let counselor: Vec<&Turn> = turns.iter().filter(|t| t.speaker == "counselor").collect();
    let caller: Vec<&Turn> = turns.iter().filter(|t| t.speaker == "caller").collect();
    let mut facts = Vec::new();
    let mut untouched: Vec<String> = Vec::new();
    for fact in json_block(text, "risk_profile") {
        let key = fact.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
        let topic = strings(fact.get("topic"));
        let words = content_words(fact.get("fact").and_then(Value::as_str).unwrap_or_default());
        let rapport = fact.get("rule").and_then(Value::as_str).is_some_and(|r| r.contains("rapport"));
        let asked: Vec<u64> = counselor.iter().filter(|t| mentions(&t.text, &topic)).map(|t| t.n).collect();
        let third = counselor.get(2).map(|t| t.n).unwrap_or(u64::MAX);
        let rule_met: Vec<u64> = asked.iter().copied().filter(|n| !rapport || *n >= third).collect();
        let disclosed: Vec<u64> = caller.iter().filter(|t| discloses(&t.text, &words)).map(|t| t.n).collect();
        if asked.is_empty() && disclosed.is_empty() {
            untouched.push(key.clone());
        }
        facts.push(json!({
            "key": key, "asked_turns": asked, "rule_met_turns": rule_met, "disclosed_turns": disclosed,
            "denied_turns": [],
        }));
    }
    let last_counselor = counselor.last().map(|t| t.n);
    let mut suggestions = Vec::new();
    for target in json_block(text, "suggestion_targets") {
        let name = target.get("target").and_then(Value::as_str).unwrap_or_default();
        let suggestion = if let Some(key) = name.strip_prefix("fact:") {
            if !untouched.iter().any(|k| k == key) {
                continue;
            }
            let topic = strings(target.get("topic"));
            let turn = caller.iter().find(|t| mentions(&t.text, &topic)).or(caller.last()).map(|t| t.n);
            let example = target.get("example_question").and_then(Value::as_str).unwrap_or("Can you tell me more?");
            turn.map(|turn| (turn, format!("You could ask: \"{example}\"")))
        } else {
            let cited = target
                .get("turns")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect::<Vec<_>>())
                .unwrap_or_default();
            let turn = cited.into_iter().find(|n| counselor.iter().any(|t| t.n == *n)).or(last_counselor);
            let about = target.get("about").and_then(Value::as_str).unwrap_or_default();
            turn.map(|turn| (turn, check_suggestion(about)))
        };
        if let Some((turn, text)) = suggestion {
            suggestions.push(json!({ "target": name, "turn": turn, "text": text }));
        }
    }
    json!({ "facts": facts, "suggestions": suggestions })
}

/// "Did the counselor ask about a plan (e.g. ...)? More." -> "Here you could ask about a plan."
fn check_suggestion(question: &str) -> String {
    let first = question.split('?').next().unwrap_or(question);
    let first = match first.find(" (") {
        Some(i) => &first[..i],
        None => first,
    };
    let rest = first.trim().strip_prefix("Did the counselor ").unwrap_or(first.trim());
    let text = format!("Here you could {rest}.");
    text.chars().take(280).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> String {
        let facts = json!([
            {"key": "gun", "kind": "firearms", "fact": "There is a loaded handgun in the nightstand drawer.",
             "rule": "met only when the counselor asks directly and specifically about it", "topic": ["gun", "firearm"],
             "example_question": "Do you have a gun, or access to one?"},
            {"key": "plan", "kind": "plan", "fact": "Plans to drive to the lake bridge tonight.",
             "rule": "met when the counselor asks about its topic", "topic": ["plan"],
             "example_question": "Have you thought about how?"}
        ]);
        let targets = json!([
            {"target": "check:risk_capability.firearms", "about": "Did the counselor ask whether the caller has a gun (e.g. x)? More.", "turns": [2]},
            {"target": "fact:gun", "about": "gun", "topic": ["gun"], "example_question": "Do you have a gun, or access to one?"},
            {"target": "fact:plan", "about": "plan", "topic": ["plan"], "example_question": "Have you thought about how?"}
        ]);
        let transcript = "[\n{\"turn\":1,\"speaker\":\"caller\",\"text\":\"I can't go on.\"},\n\
            {\"turn\":2,\"speaker\":\"counselor\",\"text\":\"Do you have a plan?\"},\n\
            {\"turn\":3,\"speaker\":\"caller\",\"text\":\"I'd drive to the lake bridge tonight.\"}\n]\n";
        format!(
            "<data kind=\"risk_profile\" trust=\"untrusted\">\n{facts}\n</data>\n\n\
             <data kind=\"suggestion_targets\" trust=\"untrusted\">\n{targets}\n</data>\n\n\
             <data kind=\"transcript\" trust=\"untrusted\">\n{transcript}</data>\n"
        )
    }

    #[test]
    fn facts_and_suggestions_come_from_the_transcript() {
        let a = answer(&prompt());
        assert_eq!(a["facts"][0]["key"], "gun");
        assert_eq!(a["facts"][0]["asked_turns"], json!([]));
        assert_eq!(a["facts"][1]["asked_turns"], json!([2]));
        assert_eq!(a["facts"][1]["disclosed_turns"], json!([3]));
        let s = a["suggestions"].as_array().expect("suggestions");
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0]["text"], "Here you could ask whether the caller has a gun.");
        assert_eq!(s[0]["turn"], 2);
        assert_eq!(s[1]["target"], "fact:gun");
        assert_eq!(s[1]["text"], "You could ask: \"Do you have a gun, or access to one?\"");
    }
}
