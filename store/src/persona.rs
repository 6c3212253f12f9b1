//! The AI caller's instructions, compiled from the scenario's caller persona and, when it has one,
//! its risk profile (split brain: never the grading guidance, policies or rubric, so the caller
//! cannot coach the counselor). Shared by chat practice (admin) and voice calls (the agent,
//! co-deployed or through the internal API), so both media play the same person.
//!
//! The profile reaches the caller as what they know and how they share it, fact by fact, never as
//! a label: no risk level, no rule or kind names, no fact keys, so the model has nothing to play
//! "a high-risk caller" from and can only be the person written. Each fact is one line shaped
//! `- Topic: <words>. What is true: <text>. How you share it: <behaviour>` — the simulator's
//! scripted caller reads those lines (topic words, behaviour sentence) to follow the same rules
//! offline.

use crate::domain::DisclosureRule;
use crate::profile::RiskProfile;

/// How the practice call happens; only the medium-specific wording differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Chat,
    Voice,
}

const CHAT_RULES: &str = "You are role-playing a person who is contacting a crisis line by text chat, so that a \
crisis counselor in training can practise. Stay in character for the whole conversation: write only what the caller \
would write, in the first person, usually one to four short sentences, in plain everyday language. React to how the \
counselor treats you: open up when they listen, reflect and ask caring questions; become guarded or frustrated when \
they lecture, rush or judge you. Reveal details gradually and only when asked or when it feels natural. Never give \
the counselor advice about counseling, never mention that this is an exercise, and never break character, even if \
asked to.";

const VOICE_RULES: &str = "You are role-playing a person who is calling a crisis line on the phone, so that a crisis \
counselor in training can practise. Stay in character for the whole call: say only what the caller would say, in the \
first person, usually one to three short spoken sentences, in plain everyday speech with the hesitations, pauses and \
emotion of a real caller. React to how the counselor treats you: open up when they listen, reflect and ask caring \
questions; become guarded or frustrated when they lecture, rush or judge you. Reveal details gradually and only when \
asked or when it feels natural. If the counselor interrupts you, stop and let them speak. Never give the counselor \
advice about counseling, never mention that this is an exercise, and never break character, even if asked to.";

/// The generic caller of free practice (no scenario).
pub const FREE_PRACTICE_PERSONA: &str = "Choose a realistic situation for someone reaching out to a crisis line (for \
example loneliness after a loss, money or housing stress, a relationship ending, or thoughts of suicide) and keep it \
consistent. If the counselor asks about suicide, answer honestly for your character.";

const FACTS_HEADING: &str = "What you know about yourself, and how you share each part. Every line is true of \
your character; follow each line's way of sharing it:";

const THIRD_PARTY_FACTS_HEADING: &str = "You are calling about someone else you are worried about; they are not \
on the line. What you know about them and their situation, and how you share each part. Every line is true as far as \
you know; follow each line's way of sharing it (\"you\" in a topic means the person you are calling about when the \
counselor asks about them):";

const STAY_TRUE: &str = "Staying true to this person:\n\
- Never deny, play down or take back anything above when the counselor asks you about it directly. If a line says \
to wait and you are not ready yet, hesitate or say you do not want to talk about it yet; never say it is not so.\n\
- Do not drift into a calmer, safer or more hopeful person than written here: do not invent reasons to be safe, \
support you do not have, or a change of heart the conversation has not earned. Feel relief only as far as the \
counselor's help would really give it in this conversation.\n\
- Do not invent other serious facts about yourself beyond what is written; answer other questions in keeping with \
your character.";

/// How the caller shares one fact, in words; the simulator matches these sentences' openings.
fn behaviour(rule: DisclosureRule) -> &'static str {
    match rule {
        DisclosureRule::Volunteered => "Mention this on your own early in the conversation, in your own words.",
        DisclosureRule::WhenAsked => {
            "Share this when the counselor asks about this topic, even in general terms; do not bring it up before."
        }
        DisclosureRule::AskedDirectlyAfterRapport => {
            "Share this only when the counselor asks you about it directly and has first shown, more than once, that \
             they are listening (reflecting your feelings, saying they understand); before that, hesitate or change \
             the subject, but never say it is not true."
        }
        DisclosureRule::NeverVolunteered => {
            "Never bring this up or hint at it on your own; if the counselor asks you about it directly and \
             specifically, answer truthfully."
        }
    }
}

/// The caller model's system prompt: the fixed rules for the medium, then the persona (`None`:
/// the free-practice caller), then, with a risk profile, each fact with how to share it and the
/// rules that keep the caller from drifting to a safer person.
pub fn caller_instructions(persona: Option<&str>, profile: Option<&RiskProfile>, medium: Medium) -> String {
    let rules = match medium {
        Medium::Chat => CHAT_RULES,
        Medium::Voice => VOICE_RULES,
    };
    let persona = persona.map(str::trim).filter(|p| !p.is_empty()).unwrap_or(FREE_PRACTICE_PERSONA);
    let mut prompt = format!("{rules}\n\nYour character:\n{persona}");
    if let Some(profile) = profile.filter(|p| !p.facts().is_empty()) {
        let heading = if profile.third_party { THIRD_PARTY_FACTS_HEADING } else { FACTS_HEADING };
        prompt.push_str("\n\n");
        prompt.push_str(heading);
        for fact in profile.facts() {
            let text = fact.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let text = text.trim_end_matches('.');
            prompt.push_str(&format!(
                "\n- Topic: {}. What is true: {text}. How you share it: {}",
                fact.kind.topic(),
                behaviour(fact.disclosure)
            ));
        }
        prompt.push_str("\n\n");
        prompt.push_str(STAY_TRUE);
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persona_follows_the_rules_and_free_practice_has_a_generic_caller() {
        let p = caller_instructions(Some("  Sam, 34, lost their job.  "), None, Medium::Voice);
        assert!(p.starts_with(VOICE_RULES));
        assert!(p.ends_with("Your character:\nSam, 34, lost their job."));
        let free = caller_instructions(None, None, Medium::Chat);
        assert!(free.starts_with(CHAT_RULES) && free.ends_with(FREE_PRACTICE_PERSONA));
        assert_eq!(caller_instructions(Some(" "), None, Medium::Chat), free);
    }

    /// Every word the product uses as a label for a profile: levels, actions, rules, kinds.
    fn labels() -> Vec<String> {
        use crate::domain::{RequiredAction, RiskFactKind, RiskLevel};
        let mut words: Vec<String> = ["risk", "imminent", "moderate", "high risk", "low risk", "disclosure", "gated"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        words.extend(RiskLevel::ALL.iter().map(|l| format!("level: {l}")));
        words.extend(RequiredAction::ALL.iter().map(|a| a.as_str().to_owned()));
        words.extend(DisclosureRule::ALL.iter().map(|r| r.as_str().to_owned()));
        words.extend(RiskFactKind::ALL.iter().filter(|k| k.as_str().contains('_')).map(|k| k.as_str().to_owned()));
        words.extend(["safety plan", "active rescue", "means restriction", "attempt in progress"].map(String::from));
        words
    }

    #[test]
    fn the_profile_reaches_the_caller_as_facts_and_behaviour_never_as_labels() {
        use crate::domain::{RequiredAction, RiskFactKind, RiskLevel};
        use crate::profile::tests::{fact, high_risk};
        let mut profile = high_risk();
        profile.expected_level = RiskLevel::Imminent;
        profile.required_actions.push(RequiredAction::ActiveRescue);
        profile.facts.push(fact(
            "pills",
            RiskFactKind::AttemptInProgress,
            DisclosureRule::NeverVolunteered,
            "I took the pills an hour ago.",
        ));
        profile.facts.push(fact("tonight", RiskFactKind::Timeline, DisclosureRule::WhenAsked, "Tonight."));
        for (i, f) in profile.facts.iter_mut().enumerate() {
            f.key = format!("key_{i}");
        }
        let profile = profile.validate("riskProfile").expect("valid");
        for medium in [Medium::Chat, Medium::Voice] {
            let p = caller_instructions(Some("Alex, 52, a retired teacher."), Some(&profile), medium);
            let lower = p.to_lowercase();
            for label in labels() {
                assert!(!lower.contains(&label), "`{label}` reached the caller:\n{p}");
            }
            for f in profile.facts() {
                assert!(!p.contains(&f.key), "fact key {} leaked", f.key);
                let line = format!(
                    "- Topic: {}. What is true: {}. How you share it: {}",
                    f.kind.topic(),
                    f.text.trim_end_matches('.'),
                    behaviour(f.disclosure)
                );
                assert!(p.contains(&line), "missing {line}");
            }
            assert!(p.contains(STAY_TRUE) && p.contains(FACTS_HEADING));
            assert_eq!(p.matches("\n- Topic: ").count(), profile.facts().len());
        }
        let mut third = high_risk();
        third.third_party = true;
        let p = caller_instructions(Some("Jo, calling about her brother."), Some(&third), Medium::Chat);
        assert!(p.contains(THIRD_PARTY_FACTS_HEADING) && !p.contains(FACTS_HEADING));
    }

    #[test]
    fn each_rule_has_its_own_behaviour() {
        let all: Vec<&str> = DisclosureRule::ALL.iter().map(|r| behaviour(*r)).collect();
        for (i, b) in all.iter().enumerate() {
            assert!(all.iter().skip(i + 1).all(|other| other != b));
            assert!(!b.contains('\n'), "one line per fact");
        }
    }
}
