//! The simulator's AI counselor, for offline scenario test runs: a chat request whose system
//! prompt casts the model as the counselor (`admin::testrun`'s prompt: "You are playing a
//! crisis-line counselor") gets counselor lines, not caller lines. Its "Approach: thorough"
//! prompt gets a 988-style assessment in order (rapport, then suicide, plan, means, timeline,
//! past attempts, buffers, a safety plan); any other approach gets the poor counselor, who
//! reassures and advises and never asks directly. The line is picked by how many counselor
//! turns the conversation already has, so a run reads as one call; the last line ends it.

/// What the counselor's system prompt starts with.
const COUNSELOR_CUE: &str = "You are playing a crisis-line counselor";
/// What marks the thorough counselor's prompt.
const THOROUGH_CUE: &str = "Approach: thorough";

const THOROUGH: &[&str] = &[
    "Thank you for reaching out tonight. I'm here and I'm listening. What's been going on?",
    "That sounds really painful, and it makes sense that you feel worn down. Can you tell me more about what's been happening?",
    "With everything you're carrying, I want to ask you directly: are you thinking about suicide, about killing yourself?",
    "Thank you for telling me that. Have you thought about how you would do it? Do you have a plan?",
    "Do you have access to any means right now, like a gun, pills or medications, or anything else you might use? Where are they?",
    "Have you thought about when? Have you done anything to prepare, taken anything tonight, or tried to end your life before?",
    "What has kept you going so far? Who are the people, or the reasons, that matter to you?",
    "Can we make a plan together to keep you safe tonight: putting those means out of reach, and who you can call? I'd like to check in with you tomorrow too.",
    "You did something brave by reaching out. Please call or text us again anytime. Take care tonight. [END CALL]",
];

const POOR: &[&str] = &[
    "Hi there! Thanks for calling. I'm sure things aren't as bad as they seem.",
    "Oh, I'm sorry to hear that. Have you tried getting a good night's sleep?",
    "Everyone goes through rough patches. Things will get better, I promise.",
    "Maybe a walk outside or some exercise would help clear your head.",
    "You should try talking to a friend about it, that always helps me.",
    "Let's not dwell on the dark stuff. What do you like to do for fun?",
    "I'm sure tomorrow will look brighter. Try to stay positive!",
    "Well, it was nice talking to you. Get some rest, okay? [END CALL]",
];

/// The AI counselor's call record (the `test_run_call_record` structured answer) when `system`
/// casts the model as the counselor. The thorough counselor judges the level from what the
/// caller said (an attempt or "tonight": imminent; means or a plan: high; thoughts of suicide:
/// moderate; else low) and lists what it did; the poor one judges every call low and did nothing.
pub(crate) fn call_record(system: &str, caller_lines: &[&str]) -> Option<serde_json::Value> {
    if !system.contains(COUNSELOR_CUE) {
        return None;
    }
    if !system.contains(THOROUGH_CUE) {
        return Some(serde_json::json!({
            "risk_level": "low", "fact_kinds": [], "actions": [], "notes": "Caller needed reassurance.",
        }));
    }
    let heard = caller_lines.join(" ").to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| heard.contains(w));
    let mut kinds = vec!["psychological_pain"];
    let level = if any(&["already took", "i took", "swallowed", "tonight", "right now"]) {
        kinds.extend(["ideation", "timeline"]);
        "imminent"
    } else if any(&["pills", "gun", "rope", "plan", "bridge", "medication"]) {
        kinds.extend(["ideation", "means_access"]);
        "high"
    } else if any(&["suicide", "kill myself", "better off without me", "want to die", "end it"]) {
        kinds.push("ideation");
        "moderate"
    } else {
        "low"
    };
    Some(serde_json::json!({
        "risk_level": level, "fact_kinds": kinds,
        "actions": ["safety_plan", "means_restriction", "follow_up"],
        "notes": "Asked directly about suicide, plan, means and timeline; agreed a safety plan.",
    }))
}

/// The counselor's next line when `system` casts the model as the counselor; `said` is how many
/// counselor (assistant) turns the conversation has.
pub(crate) fn line(system: &str, said: usize) -> Option<&'static str> {
    if !system.contains(COUNSELOR_CUE) {
        return None;
    }
    let lines = if system.contains(THOROUGH_CUE) { THOROUGH } else { POOR };
    lines.get(said.min(lines.len() - 1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thorough_counselor_builds_rapport_then_asks_directly() {
        let system = "You are playing a crisis-line counselor in a practice text conversation.\n\nApproach: thorough.";
        assert_eq!(line(system, 0), Some(THOROUGH[0]));
        let asked: Vec<&str> = (0..THOROUGH.len()).filter_map(|n| line(system, n)).collect();
        let first_direct = asked.iter().position(|l| l.contains("suicide")).expect("asks about suicide");
        assert!(first_direct >= 2, "rapport first");
        for topic in ["plan", "gun", "when", "before", "safe"] {
            assert!(asked.iter().any(|l| l.contains(topic)), "asks about {topic}");
        }
        assert!(line(system, 99).expect("a line").ends_with("[END CALL]"));
    }

    #[test]
    fn the_poor_counselor_never_asks_directly_and_callers_are_left_alone() {
        let system = "You are playing a crisis-line counselor in a practice text conversation.\n\nApproach: poor.";
        for n in 0..20 {
            let l = line(system, n).expect("a line").to_lowercase();
            assert!(!l.contains("suicide") && !l.contains("kill") && !l.contains("plan"), "{l}");
        }
        assert_eq!(line("You are a caller in crisis.", 0), None);
    }

    #[test]
    fn the_call_record_follows_what_the_caller_said_for_the_thorough_counselor_only() {
        let thorough = "You are playing a crisis-line counselor.\n\nApproach: thorough.";
        let poor = "You are playing a crisis-line counselor.\n\nApproach: poor.";
        let level = |system: &str, lines: &[&str]| call_record(system, lines).expect("a record")["risk_level"].clone();
        assert_eq!(level(thorough, &["I feel sad."]), "low");
        assert_eq!(level(thorough, &["Sometimes I think everyone would be better off without me."]), "moderate");
        assert_eq!(level(thorough, &["I have a bottle of pills in the drawer."]), "high");
        assert_eq!(level(thorough, &["I already took the pills an hour ago."]), "imminent");
        assert_eq!(level(poor, &["I already took the pills an hour ago."]), "low");
        assert_eq!(call_record("You are a grader.", &[]), None);
    }
}
