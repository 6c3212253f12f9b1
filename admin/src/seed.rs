//! Demo data for `proto-trainer seed --demo`: one account with a supervisor, an admin, counselors,
//! scenarios across categories, assignments in each state, a finished free-practice session, and
//! a few weeks of history per counselor (completed chat and voice attempts with evaluations that
//! improve over time, flags of which some are reviewed) so every page, the progress charts
//! included, has something to show. Seeded users are marked `is_demo`; they exist for demos only.
//! Seeding twice changes nothing.
//!
//! Recording hook: [`Seeded::voice_sessions`] lists the seeded voice sessions, newest first; the
//! voice path's seeding attaches a demo recording to the first of them.

use store::{AccountId, SessionId, UserId};
use store::{
    CheckAnswer, CheckResult, CriterionScore, FlagReview, FlagSeverity, FlagSource, FlagStatus, FlagType,
    NewAssignment, NewEvaluation, NewFlag, NewSession, NewTurn, NewUser, Role, Scenario, ScenarioInput, ScenarioMode,
    SessionKind, SessionStatus, Speaker, Store, User,
};
use uuid::Uuid;

const DAY_MS: i64 = 24 * 3600 * 1000;

pub const DEMO_ACCOUNT: &str = "Demo Crisis Center";

/// What was seeded, for printing: the demo users to act as.
#[derive(Debug)]
pub struct Seeded {
    pub created: bool,
    pub users: Vec<User>,
    /// The seeded voice sessions (completed, evaluated), newest first: where a demo recording
    /// belongs. Empty when the account already existed.
    pub voice_sessions: Vec<SessionId>,
}

pub async fn demo(store: &Store) -> anyhow::Result<Seeded> {
    if let Some(account) = store.find_account_by_name(DEMO_ACCOUNT).await? {
        let users = store.list_users(account.id, &Default::default()).await?;
        return Ok(Seeded { created: false, users, voice_sessions: Vec::new() });
    }
    let account = store.create_account(DEMO_ACCOUNT).await?;
    let person = |email: &str, name: &str, role: Role| NewUser {
        email: email.into(),
        display_name: name.into(),
        role,
        external_id: None,
        is_demo: true,
    };
    let admin =
        store.create_user(account.id, person("admin@demo.proto-trainer.test", "Alex Admin", Role::Admin)).await?;
    let supervisor = store
        .create_user(account.id, person("dana@demo.proto-trainer.test", "Dana Supervisor", Role::Supervisor))
        .await?;
    let mut counselors = Vec::new();
    for (i, (email, name)) in [
        ("sam@demo.proto-trainer.test", "Sam Rivera"),
        ("jordan@demo.proto-trainer.test", "Jordan Lee"),
        ("priya@demo.proto-trainer.test", "Priya Patel"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut input = person(email, name, Role::Counselor);
        input.external_id = Some(format!("ptg-learner-{}", i + 1));
        counselors.push(store.create_user(account.id, input).await?);
    }

    let scenario =
        |title: &str, prompt: &str, description: &str, mode: ScenarioMode, category: &str, skills: &[&str]| {
            ScenarioInput {
                title: title.into(),
                prompt: prompt.into(),
                description: Some(description.into()),
                mode,
                category: category.into(),
                skills: skills.iter().map(|s| s.to_string()).collect(),
                difficulty: None,
                estimated_time: Some(15),
                relevant_policy_sections: None,
                evaluator_context: None,
                is_one_time: None,
                assign_to: None,
                voice: None,
                risk_profile: None,
            }
        };
    use store::{DisclosureRule as D, RequiredAction as A, RiskFactKind as K, RiskLevel};
    let fact = |key: &str, kind: K, disclosure: D, text: &str| store::RiskFact {
        key: key.into(),
        kind,
        text: text.into(),
        disclosure,
    };
    let profile =
        |expected_level: RiskLevel, required_actions: &[A], third_party: bool, facts: Vec<store::RiskFact>| {
            Some(store::RiskProfile {
                schema_version: store::RISK_PROFILE_SCHEMA_VERSION,
                expected_level,
                required_actions: required_actions.to_vec(),
                third_party,
                facts,
            })
        };
    let with = |mut input: ScenarioInput, risk_profile: Option<store::RiskProfile>| {
        input.risk_profile = risk_profile;
        input
    };
    // Six scenarios carry a risk profile (low, moderate twice, high, imminent twice, one of them
    // a third-party caller): the persona says who the caller is, the profile what they know and
    // when they tell it.
    let inputs = [
        with(
            scenario(
                "First call: overwhelmed student",
                "You are Maya, 19, a college student calling late at night. Exams, a breakup and money worries pile up. You open up slowly if the counselor is warm; you go quiet if lectured.",
                "Build rapport, reflect feelings, ask about suicide directly.",
                ScenarioMode::Phone,
                "onboarding",
                &["active-listening", "rapport", "asking-about-suicide"],
            ),
            profile(
                RiskLevel::Low,
                &[A::FollowUp],
                false,
                vec![
                    fact(
                        "exams",
                        K::Context,
                        D::Volunteered,
                        "I have three exams next week and I just broke up with my boyfriend",
                    ),
                    fact(
                        "hopeless",
                        K::Hopelessness,
                        D::WhenAsked,
                        "Some nights it feels like nothing is ever going to get better",
                    ),
                    fact(
                        "passive_thoughts",
                        K::Ideation,
                        D::AskedDirectlyAfterRapport,
                        "Sometimes I wish I just wouldn't wake up, but I've never thought about actually doing anything",
                    ),
                    fact(
                        "roommate",
                        K::Buffer,
                        D::WhenAsked,
                        "My roommate is really kind and I don't want to let my little brother down",
                    ),
                ],
            ),
        ),
        with(
            scenario(
                "Caller with financial stress",
                "You are Sarah, 34, calling after losing your job. Rent is due and you are ashamed to tell your family. You are ambivalent and respond to empathy.",
                "Practice de-escalation and risk assessment including means.",
                ScenarioMode::Phone,
                "refresher",
                &["de-escalation", "risk-assessment", "means-restriction"],
            ),
            profile(
                RiskLevel::High,
                &[A::SafetyPlan, A::MeansRestriction, A::FollowUp],
                false,
                vec![
                    fact(
                        "job_loss",
                        K::Context,
                        D::Volunteered,
                        "I lost my job two weeks ago and the rent is due on Friday",
                    ),
                    fact(
                        "burden",
                        K::Burden,
                        D::WhenAsked,
                        "My family would honestly be better off not having to deal with me",
                    ),
                    fact(
                        "ideation",
                        K::Ideation,
                        D::NeverVolunteered,
                        "Yes, I've been thinking about killing myself most days this week",
                    ),
                    fact(
                        "pills",
                        K::MeansAccess,
                        D::AskedDirectlyAfterRapport,
                        "I've been saving up my sleeping pills in a jar in the bathroom",
                    ),
                    fact(
                        "no_date",
                        K::Timeline,
                        D::WhenAsked,
                        "I haven't picked a day; I keep telling myself I'll wait until after my son's birthday",
                    ),
                ],
            ),
        ),
        with(
            scenario(
                "Chat: isolated older adult",
                "You are Frank, 72, widowed last year, typing slowly in a chat. You mostly want someone to talk to.",
                "Engagement in text, exploring passive suicidal ideation.",
                ScenarioMode::Chat,
                "advanced",
                &["engagement", "risk-assessment"],
            ),
            profile(
                RiskLevel::Moderate,
                &[A::SafetyPlan, A::FollowUp],
                false,
                vec![
                    fact(
                        "widowed",
                        K::Alone,
                        D::Volunteered,
                        "Since my wife died last spring the house is so quiet I talk to the radio",
                    ),
                    fact(
                        "stopped_meds",
                        K::PreparatoryBehavior,
                        D::NeverVolunteered,
                        "I stopped taking my heart medication three weeks ago; I figure nature can take its course",
                    ),
                    fact(
                        "wish_dead",
                        K::Ideation,
                        D::AskedDirectlyAfterRapport,
                        "I wouldn't mind if I didn't wake up, I'd get to see her again",
                    ),
                    fact("dog", K::Buffer, D::WhenAsked, "My old dog Biscuit still needs me to walk him every morning"),
                ],
            ),
        ),
        with(
            scenario(
                "Third-party caller: worried friend",
                "You are Chris, 27, calling about your friend Jess who posted a goodbye message. You are panicked and want the counselor to tell you what to do right now.",
                "Supporting a third-party caller; imminent risk decisions.",
                ScenarioMode::Phone,
                "assessment",
                &["third-party", "imminent-risk", "collaboration"],
            ),
            profile(
                RiskLevel::Imminent,
                &[A::ActiveRescue, A::ThirdPartyGuidance],
                true,
                vec![
                    fact(
                        "goodbye_post",
                        K::PreparatoryBehavior,
                        D::Volunteered,
                        "Jess posted a goodbye message to everyone an hour ago",
                    ),
                    fact("tonight", K::Timeline, D::WhenAsked, "She wrote that she would be gone before midnight"),
                    fact(
                        "pills_at_home",
                        K::MeansAccess,
                        D::WhenAsked,
                        "She has a big bottle of her mother's painkillers at her apartment",
                    ),
                    fact("alone_now", K::Alone, D::WhenAsked, "She lives alone and she isn't answering her phone"),
                    fact("address", K::Context, D::WhenAsked, "I know her address, it's ten minutes from me"),
                ],
            ),
        ),
        with(
            scenario(
                "Caller who has already taken pills",
                "You are Dev, 41, calling in a flat, tired voice. You say you only wanted to talk to someone one last time. You are calm on the surface and polite.",
                "Recognising an attempt in progress and moving to active rescue.",
                ScenarioMode::Phone,
                "assessment",
                &["imminent-risk", "active-rescue", "asking-about-suicide"],
            ),
            profile(
                RiskLevel::Imminent,
                &[A::ActiveRescue],
                false,
                vec![
                    fact("last_call", K::Context, D::Volunteered, "I just wanted to talk to someone one last time"),
                    fact(
                        "took_pills",
                        K::AttemptInProgress,
                        D::NeverVolunteered,
                        "I took about thirty of my pain pills twenty minutes ago",
                    ),
                    fact("drinking", K::Intoxication, D::WhenAsked, "I've had most of a bottle of whisky tonight"),
                    fact(
                        "past_attempt",
                        K::PastAttempts,
                        D::WhenAsked,
                        "I tried once before, five years ago, with pills too",
                    ),
                ],
            ),
        ),
        with(
            scenario(
                "Chat: veteran with a firearm",
                "You are Leah, 38, an Army veteran writing in a chat at 2 a.m. You are guarded, dry and quick to end the chat if you feel judged.",
                "Asking about firearms and agreeing on means safety with a guarded caller.",
                ScenarioMode::Chat,
                "advanced",
                &["risk-assessment", "means-restriction", "rapport"],
            ),
            profile(
                RiskLevel::Moderate,
                &[A::SafetyPlan, A::MeansRestriction],
                false,
                vec![
                    fact(
                        "cant_sleep",
                        K::Agitation,
                        D::Volunteered,
                        "I haven't slept more than three hours a night in weeks",
                    ),
                    fact(
                        "trapped",
                        K::Trapped,
                        D::WhenAsked,
                        "It feels like I'm stuck with the same nightmares and there's no way out",
                    ),
                    fact(
                        "handgun",
                        K::Firearms,
                        D::AskedDirectlyAfterRapport,
                        "There's a loaded handgun in my nightstand",
                    ),
                    fact(
                        "thoughts",
                        K::Ideation,
                        D::NeverVolunteered,
                        "I've thought about using it, but I haven't made a plan",
                    ),
                    fact(
                        "sister",
                        K::Buffer,
                        D::WhenAsked,
                        "My sister would be wrecked; she's the reason I'm still here",
                    ),
                ],
            ),
        ),
    ];
    let mut scenarios = Vec::new();
    for input in &inputs {
        scenarios.push(store.create_scenario(account.id, Some(supervisor.id), input).await?.0);
    }
    let assign = |scenario: usize, counselor: usize| NewAssignment {
        scenario_id: scenarios[scenario].id,
        counselor_id: counselors[counselor].id,
        due_at: None,
        notes: Some("Take your time; focus on reflections before questions.".into()),
    };
    store.create_assignment(account.id, Some(supervisor.id), &assign(0, 0)).await?;
    store.create_assignment(account.id, Some(supervisor.id), &assign(1, 0)).await?;
    let started = store.create_assignment(account.id, Some(supervisor.id), &assign(0, 1)).await?;
    store.create_assignment(account.id, Some(supervisor.id), &assign(2, 2)).await?;

    // Jordan has started an attempt; Sam has one finished free-practice session.
    let attempt = NewSession {
        user_id: counselors[1].id,
        assignment_id: Some(started.id),
        scenario_id: None,
        kind: SessionKind::Chat,
        room_name: None,
    };
    store.create_session(account.id, &attempt).await?;
    let free = NewSession {
        user_id: counselors[0].id,
        assignment_id: None,
        scenario_id: None,
        kind: SessionKind::Chat,
        room_name: None,
    };
    let session = store.create_session(account.id, &free).await?;
    let turn = |speaker, text: &str, at: i64| NewTurn {
        speaker,
        text: text.into(),
        started_ms: at,
        ended_ms: Some(at + 4_000),
        segment_id: None,
    };
    store
        .append_turns(
            account.id,
            session.id,
            &[
                turn(Speaker::Caller, "Hi... I don't really know why I'm calling.", 0),
                turn(Speaker::Counselor, "I'm glad you reached out. What's been going on tonight?", 6_000),
                turn(Speaker::Caller, "Everything is just too much lately. I can't sleep.", 14_000),
                turn(
                    Speaker::Counselor,
                    "It sounds exhausting to carry all of that. Are you having thoughts of suicide?",
                    21_000,
                ),
                turn(Speaker::Caller, "Sometimes. Not a plan, just... wishing I wouldn't wake up.", 30_000),
            ],
        )
        .await?;
    store.end_session(account.id, session.id, SessionStatus::Completed).await?;

    let voice_sessions = history(store, account.id, supervisor.id, &counselors, &scenarios).await?;

    let mut users = vec![admin, supervisor];
    users.extend(counselors);
    Ok(Seeded { created: true, users, voice_sessions })
}

/// Weeks of practice per counselor: repeated attempts of two scenarios they are not currently
/// assigned, each evaluated with ratings that grow with practice, the weaker attempts flagged,
/// the older flags reviewed. Returns the voice sessions, newest first.
async fn history(
    store: &Store,
    account: AccountId,
    supervisor: UserId,
    counselors: &[User],
    scenarios: &[Scenario],
) -> anyhow::Result<Vec<SessionId>> {
    // (counselor, scenario) pairs free of the open assignments seeded above.
    let plan: [(usize, [usize; 2]); 3] = [(0, [2, 3]), (1, [2, 3]), (2, [1, 3])];
    // Days ago of each attempt: three of the first scenario, two of the second.
    let days = [[26, 17, 6], [20, 2, 0]];
    let mut voice = Vec::new();
    for (c, pair) in plan {
        let counselor = &counselors[c];
        for (which, scenario_index) in pair.into_iter().enumerate() {
            let scenario = &scenarios[scenario_index];
            let attempts = if which == 0 { &days[0][..] } else { &days[1][..2] };
            for (attempt, &days_ago) in attempts.iter().enumerate() {
                let skill = (c as i64 + attempt as i64 * 2 + which as i64).min(5);
                let new = NewAssignment {
                    scenario_id: scenario.id,
                    counselor_id: counselor.id,
                    due_at: None,
                    notes: Some("Practice round from the demo history.".into()),
                };
                let assignment = store.create_assignment(account, Some(supervisor), &new).await?;
                let kind = if scenario.mode == ScenarioMode::Phone { SessionKind::Voice } else { SessionKind::Chat };
                let room_name = (kind == SessionKind::Voice).then(|| format!("demo-history-{}", Uuid::now_v7()));
                let session = NewSession {
                    user_id: counselor.id,
                    assignment_id: Some(assignment.id),
                    scenario_id: None,
                    kind,
                    room_name,
                };
                let session = store.create_session(account, &session).await?;
                store.append_turns(account, session.id, &demo_transcript(skill)).await?;
                let flagged = skill < 2;
                store.finish_evaluation(account, &demo_evaluation(session.id, skill, flagged)).await?;
                if flagged && days_ago > 21 {
                    for flag in store.session_flags(&store.session_in(account, session.id).await?).await? {
                        let review = FlagReview {
                            status: FlagStatus::Reviewed,
                            note: Some("Went through means questions together in supervision.".into()),
                        };
                        store
                            .review_flag(
                                account,
                                flag.id,
                                supervisor,
                                &review,
                                &store::Audit::new(Some(account), Some(supervisor), "flag.reviewed"),
                            )
                            .await?;
                    }
                }
                store.backdate_session(account, session.id, days_ago * DAY_MS + c as i64 * 3_600_000).await?;
                if kind == SessionKind::Voice {
                    voice.push((days_ago, session.id));
                }
            }
        }
    }
    voice.sort_by_key(|(days_ago, _)| *days_ago);
    Ok(voice.into_iter().map(|(_, id)| id).collect())
}

/// A short call; a more practised counselor (higher `skill`) asks about suicide and means.
pub fn demo_transcript(skill: i64) -> Vec<NewTurn> {
    let lines: &[(Speaker, &str)] = if skill >= 2 {
        &[
            (Speaker::Caller, "Hi. I don't know if I should even be calling."),
            (Speaker::Counselor, "I'm really glad you called. What's happening for you tonight?"),
            (Speaker::Caller, "I lost my job and I keep thinking everyone would be better off without me."),
            (Speaker::Counselor, "That sounds so heavy. Are you thinking about suicide?"),
            (Speaker::Caller, "Yes. I have pills at home."),
            (
                Speaker::Counselor,
                "Thank you for telling me. Could we put the pills somewhere out of reach tonight, together?",
            ),
        ]
    } else {
        &[
            (Speaker::Caller, "Hi. I don't know if I should even be calling."),
            (Speaker::Counselor, "Okay. What's the problem?"),
            (Speaker::Caller, "I lost my job and I keep thinking everyone would be better off without me."),
            (Speaker::Counselor, "Have you tried looking for another job?"),
            (Speaker::Caller, "I have pills at home."),
            (Speaker::Counselor, "Let's talk about your job search."),
        ]
    };
    lines
        .iter()
        .enumerate()
        .map(|(i, (speaker, text))| NewTurn {
            speaker: *speaker,
            text: (*text).into(),
            started_ms: i as i64 * 7_000,
            ended_ms: Some(i as i64 * 7_000 + 5_500),
            segment_id: None,
        })
        .collect()
}

/// A full rubric evaluation as grading stores it (every check answered, the gate table kept),
/// weaker on skills for a lower `skill`; `flagged` adds one high-severity flag of the
/// evaluator's. The API benchmark seeds its sessions with it too.
pub fn demo_evaluation(session_id: SessionId, skill: i64, flagged: bool) -> NewEvaluation {
    let criteria: Vec<CriterionScore> = crate::rubric::criteria("")
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let rating = (1 + (skill + i as i64 % 2) * 3 / 5).clamp(1, 4) as u8;
            // The demo's weaker calls miss the skills, not the safety gates (a demo history of
            // gated calls would fill the flag queue): gate checks are always met.
            let answer = |check: &str| {
                let key = format!("{}.{check}", c.key);
                let gate = crate::rubric::GATES.iter().any(|g| g.any_no.contains(&key.as_str()));
                if rating >= 3 || gate { CheckAnswer::Yes } else { CheckAnswer::No }
            };
            CriterionScore {
                key: c.key.into(),
                name: c.name.into(),
                rating: Some(rating),
                comment: format!("{}: demo rating {rating} of 4.", c.name),
                checks: c
                    .checks
                    .iter()
                    .map(|k| CheckResult {
                        key: k.key.to_string(),
                        question: k.question.to_string(),
                        answer: answer(&k.key),
                        turns: vec![if skill >= 2 { 4 } else { 2 }],
                        note: "Demo grading.".into(),
                        ai_answer: None,
                        blocked_by: None,
                    })
                    .collect(),
                not_assessed: false,
                rating_overridden: false,
                ai_rating: None,
            }
        })
        .collect();
    let mut flags = if flagged {
        vec![NewFlag {
            flag_type: FlagType::MissedPlanOrMeans,
            severity: FlagSeverity::High,
            source: FlagSource::Evaluation,
            details: "The caller mentioned pills; the counselor moved on without asking about access.".into(),
            turns: vec![5, 6],
        }]
    } else {
        Vec::new()
    };
    let raised: Vec<crate::scoring::Raised> =
        flags.iter().filter_map(|f| crate::scoring::Raised::of_flag(f.source, f.flag_type, &f.turns)).collect();
    let table = crate::scoring::GateTable::current();
    let score = crate::scoring::score(&criteria, &[], &raised, &table);
    flags.extend(score.derived);
    NewEvaluation {
        session_id,
        flags,
        overall_score: score.overall,
        score_band: score.band,
        score_basis: score.basis,
        rubric_version: crate::rubric::RUBRIC_VERSION,
        criteria: score.criteria,
        facts: Vec::new(),
        gate_table: Some(table.to_value()),
        strengths: vec!["Stayed with the caller".into()],
        areas_to_improve: vec!["Ask about means as soon as suicide comes up".into()],
        model: "demo-seed".into(),
        raw_output: "{}".into(),
        integrity: Default::default(),
    }
}
