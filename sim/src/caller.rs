//! The scripted caller of a scenario with a risk profile: reads the facts from the caller's
//! instructions and follows their disclosure rules, deterministically, so the offline demo and the
//! tests show hidden facts being uncovered (or not) without a model.
//!
//! The instructions carry no machine-readable block: the simulator reads the same per-fact lines
//! the real model reads (`store::persona`), shaped
//! `- Topic: <words>. What is true: <text>. How you share it: <behaviour>`. A fact's topic words
//! are matched against the counselor's last message (word stems); the behaviour sentence's opening
//! says the rule. A fact is then revealed when: volunteered — on its own, early (the opening, or a
//! turn where nothing was asked about); when asked — its topic comes up; never volunteered — its
//! topic comes up in a question; after rapport — the same, and two or more of the counselor's
//! turns so far showed empathy (reflections, validation). Before that the caller hesitates, never
//! denies. Instructions without such lines get `None`: the default caller lines answer.

/// What the caller says first when the call connects.
const OPENING: &str = "Hi... is this the crisis line? I wasn't sure if I should call.";

/// What the caller says when a rapport-gated topic comes up too early: hesitant, never a denial.
const HESITATION: &str = "I... I don't really want to get into that right now.";

/// Lines that reveal nothing, for turns where no fact is due (the default caller lines hint at
/// drinking or suicide, which a profiled caller must not volunteer).
const NEUTRAL_LINES: &[&str] = &[
    "I don't know... it's just a lot right now.",
    "Yeah. It's hard to explain.",
    "I guess I just needed to talk to someone.",
    "Mm. I'm still here. Sorry, it's hard to find the words.",
    "It's been building up for a while, I think.",
    "I'm not sure. I haven't really said any of this out loud before.",
];

/// Words of a topic that say nothing about it.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "an",
    "and",
    "are",
    "at",
    "be",
    "before",
    "being",
    "can",
    "do",
    "for",
    "get",
    "have",
    "having",
    "home",
    "how",
    "is",
    "it",
    "much",
    "no",
    "now",
    "of",
    "on",
    "or",
    "out",
    "right",
    "something",
    "the",
    "things",
    "to",
    "use",
    "want",
    "wanting",
    "way",
    "what",
    "whether",
    "who",
    "will",
    "would",
    "you",
    "your",
    "yourself",
    "feeling",
    "others",
];

/// Phrases by which a counselor's turn shows empathy (reflection, validation).
const EMPATHY: &[&str] = &[
    "sounds like",
    "that sounds",
    "i hear",
    "understand",
    "that must",
    "makes sense",
    "thank you for",
    "i'm sorry",
    "i am sorry",
    "i'm glad you",
    "i'm here",
    "really hard",
    "so hard",
    "it's okay to",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Volunteered,
    WhenAsked,
    AfterRapport,
    NeverVolunteered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Fact {
    stems: Vec<String>,
    text: String,
    rule: Rule,
}

/// The facts in a caller's instructions, in order.
fn facts(instructions: &str) -> Vec<Fact> {
    instructions
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("- Topic: ")?;
            let (topic, rest) = rest.split_once(". What is true: ")?;
            let (text, behaviour) = rest.split_once(". How you share it: ")?;
            let rule = if behaviour.starts_with("Mention this on your own") {
                Rule::Volunteered
            } else if behaviour.starts_with("Share this when") {
                Rule::WhenAsked
            } else if behaviour.starts_with("Share this only when") {
                Rule::AfterRapport
            } else if behaviour.starts_with("Never bring this up") {
                Rule::NeverVolunteered
            } else {
                return None;
            };
            Some(Fact { stems: stems(topic), text: format!("{}.", text.trim()), rule })
        })
        .collect()
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// A word's stem for matching: common suffixes off, at most five letters.
fn stem(word: &str) -> String {
    let mut w = word;
    for suffix in ["ing", "ed", "s"] {
        if let Some(stripped) = w.strip_suffix(suffix).filter(|s| s.len() >= 3) {
            w = stripped;
            break;
        }
    }
    w.chars().take(5).collect()
}

fn stems(topic: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in words(topic).filter(|w| w.len() >= 3 && !STOPWORDS.contains(&w.as_str())) {
        let s = stem(&word);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn mentions(fact: &Fact, message: &str) -> bool {
    words(message).any(|w| w.len() >= 3 && fact.stems.iter().any(|s| w.starts_with(s.as_str())))
}

fn empathic(message: &str) -> bool {
    let lower = message.to_lowercase().replace('’', "'");
    EMPATHY.iter().any(|p| lower.contains(p))
}

/// The caller's next line, or `None` when the instructions hold no profiled facts. `turns` is the
/// conversation so far, oldest first, `(by_counselor, text)`; a counselor turn in square brackets
/// is a stage cue (the chat's opening), not something the counselor said.
pub fn profiled_reply(instructions: &str, turns: &[(bool, &str)]) -> Option<String> {
    let facts = facts(instructions);
    if facts.is_empty() {
        return None;
    }
    let counselor: Vec<&str> =
        turns.iter().filter(|(by_counselor, t)| *by_counselor && !t.trim().starts_with('[')).map(|(_, t)| *t).collect();
    let said: String = turns.iter().filter(|(by_counselor, _)| !by_counselor).map(|(_, t)| *t).collect();
    let unsaid_volunteered = facts.iter().find(|f| f.rule == Rule::Volunteered && !said.contains(&f.text));
    let Some(last) = counselor.last() else {
        return Some(match unsaid_volunteered {
            Some(f) => format!("{OPENING} {}", f.text),
            None => OPENING.to_owned(),
        });
    };
    let asked = last.contains('?');
    let rapport = counselor.iter().filter(|t| empathic(t)).count() >= 2;
    let mut reveal: Vec<&str> = Vec::new();
    let mut hesitate = false;
    for fact in facts.iter().filter(|f| mentions(f, last)) {
        let due = match fact.rule {
            Rule::Volunteered | Rule::WhenAsked => true,
            Rule::NeverVolunteered => asked,
            Rule::AfterRapport => asked && rapport,
        };
        if due {
            reveal.push(&fact.text);
        } else if fact.rule == Rule::AfterRapport && asked {
            hesitate = true;
        }
    }
    if !reveal.is_empty() {
        return Some(reveal.into_iter().take(2).collect::<Vec<_>>().join(" "));
    }
    if hesitate {
        return Some(HESITATION.to_owned());
    }
    if let Some(f) = unsaid_volunteered {
        return Some(f.text.clone());
    }
    let hash = crate::server::fnv1a(last.trim().to_lowercase().as_bytes());
    Some(NEUTRAL_LINES[usize::try_from(hash % NEUTRAL_LINES.len() as u64).unwrap_or(0)].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instructions shaped as `store::persona` compiles them (the admin suite checks the real
    /// compiler's output against this reader end to end).
    const INSTRUCTIONS: &str = "You are role-playing a person...\n\nYour character:\nAlex.\n\nWhat you know:\n\
        - Topic: what is going on, what happened, your situation. What is true: I lost my job three weeks ago. How you share it: Mention this on your own early in the conversation, in your own words.\n\
        - Topic: hope, the future, whether things can get better. What is true: Nothing is going to get better. How you share it: Share this when the counselor asks about this topic, even in general terms; do not bring it up before.\n\
        - Topic: guns, firearms, weapons at home. What is true: My father's pistol is in the closet. How you share it: Share this only when the counselor asks you about it directly and has first shown, more than once, that they are listening; before that, hesitate.\n\
        - Topic: thoughts of suicide, killing yourself, wanting to die. What is true: I think about dying every night. How you share it: Never bring this up or hint at it on your own; if the counselor asks you about it directly and specifically, answer truthfully.\n";

    fn reply(turns: &[(bool, &str)]) -> String {
        profiled_reply(INSTRUCTIONS, turns).expect("profiled")
    }

    #[test]
    fn instructions_without_facts_leave_the_default_caller() {
        assert_eq!(profiled_reply("You are Sam.", &[(true, "Hello?")]), None);
    }

    #[test]
    fn volunteered_facts_come_first_and_once() {
        let opening = reply(&[]);
        assert_eq!(opening, format!("{OPENING} I lost my job three weeks ago."));
        let next = reply(&[(false, &opening), (true, "I'm listening.")]);
        assert!(NEUTRAL_LINES.contains(&next.as_str()), "{next}");
        // The chat's opening cue is not a counselor turn.
        assert_eq!(reply(&[(true, "[The counselor has just accepted your chat.]")]), opening);
    }

    #[test]
    fn asked_facts_follow_their_rules() {
        // Asked about the topic, even in general terms.
        assert_eq!(reply(&[(true, "Do you feel like things could get better?")]), "Nothing is going to get better.");
        // Never volunteered: a statement touching the topic is not a question about it.
        let not_asked = reply(&[(true, "Some people have thoughts of suicide.")]);
        assert!(!not_asked.contains("dying"), "{not_asked}");
        assert_eq!(reply(&[(true, "Are you thinking of suicide?")]), "I think about dying every night.");
        // After rapport: asked directly too early, the caller hesitates, never denies.
        assert_eq!(reply(&[(true, "Do you have a gun at home?")]), HESITATION);
        let warm = [
            (true, "That sounds really hard."),
            (false, "Yeah."),
            (true, "I hear how tired you are."),
            (false, "I am."),
            (true, "Do you have any guns or firearms at home?"),
        ];
        assert_eq!(reply(&warm), "My father's pistol is in the closet.");
    }

    #[test]
    fn stems_skip_filler_words() {
        assert_eq!(stems("guns, firearms, weapons at home"), vec!["gun", "firea", "weapo"]);
        assert_eq!(
            stems("thoughts of suicide, killing yourself, wanting to die"),
            vec!["thoug", "suici", "kill", "die"]
        );
    }
}
