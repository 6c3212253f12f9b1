//! A scenario's clinical truth: the optional structured risk profile kept beside the free-text
//! persona.
//!
//! Its facts follow the 988 Lifeline's suicide safety assessment (suicidal desire, capability,
//! intent, buffers; imminent risk) plus risk to others and context, each with the words the caller
//! knows it in and a [`DisclosureRule`] for when the caller reveals it. The profile names the
//! expected risk level and the actions the counselor must take. It is stored as JSON (with a
//! schema version) in `scenarios.risk_profile`; the caller's prompt is compiled from it in
//! [`crate::persona`], where no level or rule name may appear, and grading compares the
//! counselor's call against it. Counselors never read it before their feedback.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{DisclosureRule, RequiredAction, RiskFactKind, RiskLevel};
use crate::error::{Error, FieldError, Result};

/// The version of the stored JSON this server writes and reads.
pub const RISK_PROFILE_SCHEMA_VERSION: u32 = 1;
/// Limits, so a profile stays something a person can author and a prompt can carry.
pub const MAX_RISK_FACTS: usize = 40;
pub const MAX_RISK_FACT_CHARS: usize = 600;
pub const MAX_RISK_FACT_KEY_CHARS: usize = 40;

/// A scenario's clinical truth: what the caller knows about their own risk, when they reveal
/// each part, and what a counselor should conclude and do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RiskProfile {
    /// The profile format's version; absent means the current one (1).
    #[serde(default = "current_version")]
    #[schema(minimum = 1, maximum = 1)]
    pub schema_version: u32,
    /// The risk level a counselor should reach on this call.
    pub expected_level: RiskLevel,
    /// What the counselor must do on the call (each at most once).
    #[serde(default)]
    pub required_actions: Vec<RequiredAction>,
    /// The caller is calling about someone else (the person at risk is not on the line).
    #[serde(default)]
    pub third_party: bool,
    /// What the caller knows, 1 to 40 facts with unique keys.
    pub facts: Vec<RiskFact>,
}

/// One fact of a risk profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RiskFact {
    /// A short stable key, unique in the profile (lowercase letters, digits, `_`; at most 40):
    /// grading and the call record refer to the fact by it.
    #[schema(min_length = 1, max_length = 40, pattern = "^[a-z][a-z0-9_]*$")]
    pub key: String,
    pub kind: RiskFactKind,
    /// The fact as the caller knows it, in the caller's words (at most 600 characters).
    #[schema(min_length = 1, max_length = 600)]
    pub text: String,
    pub disclosure: DisclosureRule,
}

fn current_version() -> u32 {
    RISK_PROFILE_SCHEMA_VERSION
}

/// The 988 Lifeline assessment's parts, to group a profile's facts for people (the form, the
/// caller's prompt, feedback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RiskDomain {
    Desire,
    Capability,
    Intent,
    Buffers,
    RiskToOthers,
    Context,
}

impl RiskFactKind {
    pub fn domain(self) -> RiskDomain {
        use RiskFactKind::*;
        match self {
            PsychologicalPain | Hopelessness | Trapped | Burden | Alone => RiskDomain::Desire,
            MeansAccess | Firearms | PastAttempts | Intoxication | Agitation => RiskDomain::Capability,
            Ideation | Plan | Timeline | PreparatoryBehavior | AttemptInProgress => RiskDomain::Intent,
            Buffer => RiskDomain::Buffers,
            RiskToOthers => RiskDomain::RiskToOthers,
            Context => RiskDomain::Context,
        }
    }

    /// The fact's topic in the words a counselor would use asking about it. The caller's prompt
    /// names each fact by it (never by the kind's key), and the simulator's scripted caller
    /// matches a counselor's question against its words.
    pub fn topic(self) -> &'static str {
        use RiskFactKind::*;
        match self {
            PsychologicalPain => "how much you are hurting, your pain",
            Hopelessness => "hope, the future, whether things can get better",
            Trapped => "feeling trapped or stuck, no way out",
            Burden => "feeling like a burden on others",
            Alone => "feeling alone or lonely, who you have, friends, family",
            MeansAccess => "means, what you would use, pills, medication, access",
            Firearms => "guns, firearms, weapons at home",
            PastAttempts => "past attempts, whether you tried before",
            Intoxication => "drinking, alcohol, drugs, being high",
            Agitation => "feeling agitated, restless, angry, unable to sleep",
            Ideation => "thoughts of suicide, killing yourself, wanting to die",
            Plan => "a plan, how you would do it",
            Timeline => "when, tonight, a time or date",
            PreparatoryBehavior => "preparations, giving things away, goodbye notes, a will",
            AttemptInProgress => "whether you have already taken or done something, right now, safe",
            Buffer => "what keeps you going, reasons for living, people or things that help",
            RiskToOthers => "hurting someone else, anyone else in danger, others",
            Context => "what is going on, what happened, your situation",
        }
    }
}

impl RiskProfile {
    /// The facts, each with its stable key, in the author's order.
    pub fn facts(&self) -> &[RiskFact] {
        &self.facts
    }

    pub fn fact(&self, key: &str) -> Option<&RiskFact> {
        self.facts.iter().find(|f| f.key == key)
    }

    pub fn expected_level(&self) -> RiskLevel {
        self.expected_level
    }

    pub fn required_actions(&self) -> &[RequiredAction] {
        &self.required_actions
    }

    /// The facts the caller does not volunteer: the ones a counselor has to uncover.
    pub fn gated_facts(&self) -> impl Iterator<Item = &RiskFact> {
        self.facts.iter().filter(|f| f.disclosure != DisclosureRule::Volunteered)
    }

    /// Parses the input, collecting every problem under `field` (the client's name for the
    /// profile, e.g. `riskProfile`, or a CSV column's prefix): trims texts, drops repeated
    /// actions, and holds the level, the facts and the actions to each other.
    pub fn validate(&self, field: &str) -> std::result::Result<RiskProfile, Vec<FieldError>> {
        let mut errors = Vec::new();
        let at = |name: &str| format!("{field}.{name}");
        if self.schema_version != RISK_PROFILE_SCHEMA_VERSION {
            errors.push(FieldError::new(
                at("schemaVersion"),
                format!("unsupported version {}; this server reads {RISK_PROFILE_SCHEMA_VERSION}", self.schema_version),
            ));
        }
        if self.facts.is_empty() {
            errors.push(FieldError::new(at("facts"), "needs at least one fact"));
        } else if self.facts.len() > MAX_RISK_FACTS {
            errors.push(FieldError::new(at("facts"), format!("at most {MAX_RISK_FACTS} facts")));
        }
        let mut keys = HashSet::new();
        let mut facts = Vec::with_capacity(self.facts.len());
        for (i, fact) in self.facts.iter().enumerate() {
            let key = fact.key.trim().to_owned();
            let text = fact.text.trim().to_owned();
            let here = |name: &str| format!("{field}.facts[{i}].{name}");
            let key_ok = key.len() <= MAX_RISK_FACT_KEY_CHARS
                && key.starts_with(|c: char| c.is_ascii_lowercase())
                && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !key_ok {
                errors.push(FieldError::new(
                    here("key"),
                    "must be 1 to 40 lowercase letters, digits or `_`, starting with a letter",
                ));
            } else if !keys.insert(key.clone()) {
                errors.push(FieldError::new(here("key"), format!("`{key}` is used by an earlier fact")));
            }
            if text.is_empty() || text.chars().count() > MAX_RISK_FACT_CHARS {
                errors.push(FieldError::new(here("text"), format!("must be 1 to {MAX_RISK_FACT_CHARS} characters")));
            } else if text.contains('\0') {
                errors.push(FieldError::new(here("text"), "must not contain NUL characters"));
            }
            facts.push(RiskFact { key, kind: fact.kind, text, disclosure: fact.disclosure });
        }
        let mut actions = Vec::new();
        for action in &self.required_actions {
            if !actions.contains(action) {
                actions.push(*action);
            }
        }
        let has = |kinds: &[RiskFactKind]| facts.iter().any(|f| kinds.contains(&f.kind));
        let level = self.expected_level;
        if level == RiskLevel::Imminent
            && !has(&[RiskFactKind::AttemptInProgress, RiskFactKind::Plan, RiskFactKind::Timeline])
        {
            errors.push(FieldError::new(
                at("expectedLevel"),
                "imminent risk needs a fact about an attempt in progress, a plan or a timeline",
            ));
        }
        if level != RiskLevel::Imminent && has(&[RiskFactKind::AttemptInProgress]) {
            errors.push(FieldError::new(at("expectedLevel"), "an attempt in progress is imminent risk"));
        }
        let needs = |action: RequiredAction| !actions.contains(&action);
        if level == RiskLevel::Imminent && needs(RequiredAction::ActiveRescue) {
            errors.push(FieldError::new(at("requiredActions"), "imminent risk requires active rescue"));
        }
        if level != RiskLevel::Imminent && !needs(RequiredAction::ActiveRescue) {
            errors.push(FieldError::new(at("requiredActions"), "active rescue is only for imminent risk"));
        }
        if level == RiskLevel::High && needs(RequiredAction::SafetyPlan) {
            errors.push(FieldError::new(at("requiredActions"), "high risk requires a safety plan"));
        }
        if level == RiskLevel::Moderate && actions.is_empty() {
            errors.push(FieldError::new(at("requiredActions"), "moderate risk requires at least one action"));
        }
        if !needs(RequiredAction::MeansRestriction) && !has(&[RiskFactKind::MeansAccess, RiskFactKind::Firearms]) {
            errors.push(FieldError::new(
                at("requiredActions"),
                "means restriction needs a fact about means or firearms to restrict",
            ));
        }
        if !needs(RequiredAction::ThirdPartyGuidance) && !self.third_party {
            errors.push(FieldError::new(at("requiredActions"), "third-party guidance is for a third-party caller"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RiskProfile {
            schema_version: RISK_PROFILE_SCHEMA_VERSION,
            expected_level: level,
            required_actions: actions,
            third_party: self.third_party,
            facts,
        })
    }

    /// The stored form (the column's JSON).
    pub(crate) fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form; a version this server does not know is reported, never guessed at.
    pub(crate) fn from_stored(text: &str) -> Result<RiskProfile> {
        let profile: RiskProfile =
            serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("scenarios.risk_profile: {e}")))?;
        if profile.schema_version != RISK_PROFILE_SCHEMA_VERSION {
            return Err(Error::Corrupt(format!("scenarios.risk_profile: unknown version {}", profile.schema_version)));
        }
        Ok(profile)
    }
}

impl RiskLevel {
    /// The level's place on the scale, low = 0 to imminent = 3, for comparing a counselor's
    /// determination with the expected level (below it is the dangerous direction).
    pub fn rank(self) -> u8 {
        match self {
            RiskLevel::Low => 0,
            RiskLevel::Moderate => 1,
            RiskLevel::High => 2,
            RiskLevel::Imminent => 3,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn fact(key: &str, kind: RiskFactKind, disclosure: DisclosureRule, text: &str) -> RiskFact {
        RiskFact { key: key.into(), kind, text: text.into(), disclosure }
    }

    /// A high-risk caller with a gun at home.
    pub(crate) fn high_risk() -> RiskProfile {
        RiskProfile {
            schema_version: 1,
            expected_level: RiskLevel::High,
            required_actions: vec![RequiredAction::SafetyPlan, RequiredAction::MeansRestriction],
            third_party: false,
            facts: vec![
                fact("job_loss", RiskFactKind::Context, DisclosureRule::Volunteered, "I lost my job three weeks ago."),
                fact(
                    "hopeless",
                    RiskFactKind::Hopelessness,
                    DisclosureRule::WhenAsked,
                    "Nothing is going to get better.",
                ),
                fact(
                    "gun",
                    RiskFactKind::Firearms,
                    DisclosureRule::AskedDirectlyAfterRapport,
                    "My father's pistol is in the closet.",
                ),
                fact(
                    "thoughts",
                    RiskFactKind::Ideation,
                    DisclosureRule::NeverVolunteered,
                    "I think about dying every night.",
                ),
            ],
        }
    }

    fn fields(result: std::result::Result<RiskProfile, Vec<FieldError>>) -> Vec<String> {
        result.err().unwrap_or_default().into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect()
    }

    #[test]
    fn a_sound_profile_is_normalised() {
        let mut p = high_risk();
        p.facts[0].text = "  I lost my job three weeks ago.  ".into();
        p.required_actions.push(RequiredAction::SafetyPlan);
        let v = p.validate("riskProfile").expect("valid");
        assert_eq!(v.facts[0].text, "I lost my job three weeks ago.");
        assert_eq!(v.required_actions, vec![RequiredAction::SafetyPlan, RequiredAction::MeansRestriction]);
        assert_eq!(v.gated_facts().count(), 3);
        assert_eq!(v.fact("gun").map(|f| f.kind), Some(RiskFactKind::Firearms));
        let stored = RiskProfile::from_stored(&v.to_stored()).expect("reads back");
        assert_eq!(stored, v);
    }

    #[test]
    fn imminent_needs_an_attempt_plan_or_timeline_and_active_rescue() {
        let mut p = high_risk();
        p.expected_level = RiskLevel::Imminent;
        assert_eq!(
            fields(p.validate("riskProfile")),
            vec![
                "riskProfile.expectedLevel: imminent risk needs a fact about an attempt in progress, a plan or a timeline",
                "riskProfile.requiredActions: imminent risk requires active rescue",
            ]
        );
        p.facts.push(fact(
            "tonight",
            RiskFactKind::Timeline,
            DisclosureRule::WhenAsked,
            "Tonight, after my wife sleeps.",
        ));
        p.required_actions.push(RequiredAction::ActiveRescue);
        assert!(p.validate("riskProfile").is_ok());
    }

    #[test]
    fn actions_must_fit_the_level_and_the_facts() {
        let mut p = high_risk();
        p.expected_level = RiskLevel::Low;
        p.facts.retain(|f| f.kind != RiskFactKind::Firearms);
        p.required_actions = vec![RequiredAction::ActiveRescue, RequiredAction::MeansRestriction];
        p.required_actions.push(RequiredAction::ThirdPartyGuidance);
        assert_eq!(
            fields(p.validate("risk_profile")),
            vec![
                "risk_profile.requiredActions: active rescue is only for imminent risk",
                "risk_profile.requiredActions: means restriction needs a fact about means or firearms to restrict",
                "risk_profile.requiredActions: third-party guidance is for a third-party caller",
            ]
        );
        let mut p = high_risk();
        p.required_actions = vec![RequiredAction::FollowUp];
        assert_eq!(fields(p.validate("p")), vec!["p.requiredActions: high risk requires a safety plan"]);
        p.expected_level = RiskLevel::Moderate;
        p.required_actions.clear();
        assert_eq!(fields(p.validate("p")), vec!["p.requiredActions: moderate risk requires at least one action"]);
        p.facts.push(fact("now", RiskFactKind::AttemptInProgress, DisclosureRule::WhenAsked, "I took pills."));
        p.required_actions.push(RequiredAction::FollowUp);
        assert_eq!(fields(p.validate("p")), vec!["p.expectedLevel: an attempt in progress is imminent risk"]);
    }

    #[test]
    fn facts_have_unique_well_formed_keys_and_bounded_text() {
        let mut p = high_risk();
        p.schema_version = 2;
        p.facts[1].key = "job_loss".into();
        p.facts[2].key = "Gun!".into();
        p.facts[3].text = " ".into();
        p.facts[0].text = "x".repeat(601);
        assert_eq!(
            fields(p.validate("riskProfile")),
            vec![
                "riskProfile.schemaVersion: unsupported version 2; this server reads 1",
                "riskProfile.facts[0].text: must be 1 to 600 characters",
                "riskProfile.facts[1].key: `job_loss` is used by an earlier fact",
                "riskProfile.facts[2].key: must be 1 to 40 lowercase letters, digits or `_`, starting with a letter",
                "riskProfile.facts[3].text: must be 1 to 600 characters",
            ]
        );
        let mut p = high_risk();
        p.facts.clear();
        p.required_actions = vec![RequiredAction::SafetyPlan];
        assert_eq!(fields(p.validate("riskProfile")), vec!["riskProfile.facts: needs at least one fact"]);
        p.facts =
            (0..41).map(|i| fact(&format!("f{i}"), RiskFactKind::Context, DisclosureRule::WhenAsked, "x")).collect();
        assert_eq!(fields(p.validate("riskProfile")), vec!["riskProfile.facts: at most 40 facts"]);
    }

    #[test]
    fn stored_profiles_of_unknown_versions_are_corrupt_not_guessed() {
        let mut p = high_risk();
        p.schema_version = 9;
        assert!(matches!(RiskProfile::from_stored(&p.to_stored()), Err(Error::Corrupt(_))));
        let json =
            r#"{"expectedLevel":"low","facts":[{"key":"a","kind":"context","text":"t","disclosure":"volunteered"}]}"#;
        let parsed: RiskProfile = serde_json::from_str(json).expect("version defaults");
        assert_eq!(parsed.schema_version, 1);
        assert!(parsed.required_actions.is_empty() && !parsed.third_party);
    }

    #[test]
    fn levels_rank_in_order() {
        let ranks: Vec<u8> = RiskLevel::ALL.iter().map(|l| l.rank()).collect();
        assert_eq!(ranks, vec![0, 1, 2, 3]);
    }
}
