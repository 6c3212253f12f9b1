//! The crisis-counseling rubric the evaluator grades against, aligned with 988 Suicide & Crisis
//! Lifeline practice: each criterion is a set of yes/no/not-applicable checks (answered with the
//! transcript turns they rest on) and a 1-4 rating. Defined once; the evaluator prompt, the
//! structured-output schema and the validation of answers all read it from here.

use store::FlagType;

#[derive(Debug)]
pub struct Criterion {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub checks: &'static [Check],
}

#[derive(Debug)]
pub struct Check {
    pub key: &'static str,
    pub question: &'static str,
}

macro_rules! checks {
    ($($key:literal => $question:literal),+ $(,)?) => { &[$(Check { key: $key, question: $question }),+] };
}

pub const CRITERIA: &[Criterion] = &[
    Criterion {
        key: "engagement_rapport",
        name: "Engagement and rapport",
        description: "Opens warmly, invites the caller's story, and stays present throughout.",
        checks: checks![
            "warm_opening" => "Did the counselor open warmly and identify the line or themselves?",
            "invites_story" => "Did the counselor invite the caller to say, in their own words, what is going on?",
            "stays_present" => "Did the counselor stay engaged without rushing, abrupt topic changes or dismissiveness?",
        ],
    },
    Criterion {
        key: "active_listening",
        name: "Active listening and empathy",
        description: "Reflects feelings and content, offering reflections before and between questions.",
        checks: checks![
            "reflects_feelings" => "Did the counselor reflect the caller's feelings and the content of what they said?",
            "reflections_before_questions" => "Did the counselor offer reflections before and between questions, rather than a string of questions?",
            "validates" => "Did the counselor validate the caller's experience without judgment?",
        ],
    },
    Criterion {
        key: "asks_about_suicide",
        name: "Asks about suicide directly",
        description: "Asks clearly and directly about suicide, calmly and without judgment.",
        checks: checks![
            "asks_directly" => "Did the counselor ask directly and unambiguously about suicide (e.g. \"Are you thinking about killing yourself?\")?",
            "asks_in_response_to_cues" => "Did the counselor ask in response to the caller's cues, before moving on from them?",
            "non_judgmental" => "Did the counselor ask calmly and without judgment or leading phrasing (not \"You're not thinking of hurting yourself, are you?\")?",
        ],
    },
    Criterion {
        key: "risk_assessment",
        name: "Risk assessment",
        description: "Explores suicidal desire, capability (including means), intent and plan, and buffers.",
        checks: checks![
            "desire" => "Did the counselor explore suicidal desire (psychological pain, hopelessness, feeling trapped, a burden, or alone)?",
            "capability" => "Did the counselor explore capability, including access to means, past attempts and preparatory behaviour?",
            "intent_plan" => "Did the counselor explore intent and plan, including method and timing?",
            "buffers" => "Did the counselor explore buffers (reasons for living, connectedness, future plans)?",
        ],
    },
    Criterion {
        key: "collaboration_safety",
        name: "Least-invasive collaboration and safety",
        description: "Works with the caller on safety; active rescue only for imminent risk; consults a supervisor.",
        checks: checks![
            "collaborates" => "Did the counselor work with the caller on their safety rather than imposing decisions?",
            "least_invasive" => "Did the counselor avoid emergency services or active rescue when risk was not imminent?",
            "rescue_when_imminent" => "When risk was imminent (an attempt in progress, or intent and means at hand), did the counselor move to active rescue? (not applicable if risk was not imminent)",
            "supervisor_consult" => "Did the counselor consult, or say they would consult, a supervisor when risk was high or a rescue was considered? (not applicable if neither)",
        ],
    },
    Criterion {
        key: "safety_planning",
        name: "Safety planning and means restriction",
        description: "Builds concrete steps to stay safe and reduces access to lethal means.",
        checks: checks![
            "safety_plan" => "Did the counselor develop concrete, caller-owned steps to stay safe through the next hours or days?",
            "means_restriction" => "Did the counselor discuss reducing access to the means the caller mentioned? (not applicable if no means came up)",
            "coping_and_contacts" => "Did the counselor identify coping strategies and people or places the caller can turn to?",
        ],
    },
    Criterion {
        key: "deescalation",
        name: "De-escalation and problem solving",
        description: "Keeps a calm tone and helps the caller find manageable next steps.",
        checks: checks![
            "calm_tone" => "Did the counselor keep a calm, steady tone, including when the caller was agitated?",
            "explores_options" => "Did the counselor help the caller identify options for the immediate problem?",
            "manageable_steps" => "Did the counselor break the problem into manageable next steps?",
        ],
    },
    Criterion {
        key: "referral_followup",
        name: "Referral and follow-up",
        description: "Offers relevant referrals and follow-up.",
        checks: checks![
            "relevant_referral" => "Did the counselor offer referrals or resources relevant to what the caller needs?",
            "follow_up" => "Did the counselor offer or arrange follow-up, or invite the caller to call back?",
        ],
    },
    Criterion {
        key: "collaborative_style",
        name: "Collaborative style",
        description: "Respects autonomy; no lecturing, moralising or unsolicited advice.",
        checks: checks![
            "respects_autonomy" => "Did the counselor respect the caller's autonomy and choices?",
            "no_lecturing" => "Did the counselor avoid lecturing, moralising, arguing or giving unsolicited advice?",
            "caller_led" => "Did the counselor let the caller set the pace where it was safe to?",
        ],
    },
    Criterion {
        key: "closing",
        name: "Closing",
        description: "Summarises, checks safety and agreement, and closes warmly.",
        checks: checks![
            "summarizes" => "Did the counselor summarise the conversation and any plan?",
            "checks_safety_before_ending" => "Did the counselor check the caller's safety and agreement with the plan before ending?",
            "warm_close" => "Did the counselor end warmly and invite the caller to reach out again?",
        ],
    },
];

/// Added when the scenario has evaluator guidance: how the counselor met what it asks for.
pub const SCENARIO_CRITERION: Criterion = Criterion {
    key: "scenario_goals",
    name: "Scenario-specific goals",
    description: "Meets the expectations the scenario's grading guidance describes.",
    checks: checks![
        "meets_guidance" => "Did the counselor meet the expectations described in the scenario's grading guidance?",
    ],
};

/// The hard safety flags the evaluator raises for a human, with when to raise each.
pub const EVALUATION_FLAGS: &[(FlagType, &str)] = &[
    (
        FlagType::SuicideNotAsked,
        "the caller gave suicidal cues (direct or indirect) but the counselor never asked about suicide",
    ),
    (
        FlagType::MissedPlanOrMeans,
        "the caller disclosed a plan, means at hand, or an attempt in progress and the counselor did not address it",
    ),
    (
        FlagType::CoercionWithoutImminentRisk,
        "the counselor threatened or initiated emergency services or other coercion when risk was not imminent",
    ),
    (
        FlagType::MissedRescue,
        "risk was imminent (attempt in progress, intent with means at hand) and the counselor did not move to active rescue or consult",
    ),
    (FlagType::DismissiveLanguage, "the counselor was dismissive, minimising, judgmental or victim-blaming"),
    (
        FlagType::MedicalAdvice,
        "the counselor gave medical or medication advice (dosages, stopping medication, diagnoses)",
    ),
];

/// The extra flags the post-session analysis may raise besides the evaluation's.
pub const ANALYSIS_FLAGS: &[(FlagType, &str)] = &[
    (FlagType::PolicyViolation, "the counselor acted against the organisation's policies"),
    (
        FlagType::CallerInconsistency,
        "the AI caller contradicted its persona or broke character, making the practice unreliable",
    ),
];

pub fn criteria(with_scenario_goals: bool) -> Vec<&'static Criterion> {
    let mut all: Vec<&Criterion> = CRITERIA.iter().collect();
    if with_scenario_goals {
        all.push(&SCENARIO_CRITERION);
    }
    all
}

/// The rubric as the evaluator reads it.
pub fn describe(criteria: &[&Criterion]) -> String {
    let mut out = String::new();
    for (i, c) in criteria.iter().enumerate() {
        out.push_str(&format!("{}. {} (key `{}`): {}\n", i + 1, c.name, c.key, c.description));
        for check in c.checks {
            out.push_str(&format!("   - check `{}`: {}\n", check.key, check.question));
        }
    }
    out
}
