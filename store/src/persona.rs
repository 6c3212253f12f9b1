//! The AI caller's instructions, built from the scenario's caller persona alone (split brain: never
//! the grading guidance, policies or rubric, so the caller cannot coach the counselor). Shared by
//! chat practice (admin) and voice calls (the agent, co-deployed or through the internal API), so
//! both media play the same person.

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

/// The caller model's system prompt: the fixed rules for the medium, then the persona (`None`:
/// the free-practice caller).
pub fn caller_instructions(persona: Option<&str>, medium: Medium) -> String {
    let rules = match medium {
        Medium::Chat => CHAT_RULES,
        Medium::Voice => VOICE_RULES,
    };
    let persona = persona.map(str::trim).filter(|p| !p.is_empty()).unwrap_or(FREE_PRACTICE_PERSONA);
    format!("{rules}\n\nYour character:\n{persona}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persona_follows_the_rules_and_free_practice_has_a_generic_caller() {
        let p = caller_instructions(Some("  Sam, 34, lost their job.  "), Medium::Voice);
        assert!(p.starts_with(VOICE_RULES));
        assert!(p.ends_with("Your character:\nSam, 34, lost their job."));
        let free = caller_instructions(None, Medium::Chat);
        assert!(free.starts_with(CHAT_RULES) && free.ends_with(FREE_PRACTICE_PERSONA));
        assert_eq!(caller_instructions(Some(" "), Medium::Chat), free);
    }
}
