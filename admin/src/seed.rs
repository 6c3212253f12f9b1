//! Demo data for `proto-trainer seed --demo`: one account with a supervisor, an admin, counselors,
//! scenarios across categories, assignments in each state and a finished free-practice session.
//! Seeded users are marked `is_demo`; they exist for demos only. Seeding twice changes nothing.

use store::{
    NewAssignment, NewSession, NewTurn, NewUser, Role, ScenarioInput, ScenarioMode, SessionKind, SessionStatus,
    Speaker, Store, User,
};

pub const DEMO_ACCOUNT: &str = "Demo Crisis Center";

/// What was seeded, for printing: the demo users to act as.
#[derive(Debug)]
pub struct Seeded {
    pub created: bool,
    pub users: Vec<User>,
}

pub async fn demo(store: &Store) -> anyhow::Result<Seeded> {
    if let Some(account) = store.find_account_by_name(DEMO_ACCOUNT).await? {
        let users = store.list_users(account.id, &Default::default()).await?;
        return Ok(Seeded { created: false, users });
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
            }
        };
    let inputs = [
        scenario(
            "First call: overwhelmed student",
            "You are Maya, 19, a college student calling late at night. Exams, a breakup and money worries pile up. You feel hopeless and have had passing thoughts of not wanting to wake up, but no plan. You open up slowly if the counselor is warm; you go quiet if lectured.",
            "Build rapport, reflect feelings, ask about suicide directly.",
            ScenarioMode::Phone,
            "onboarding",
            &["active-listening", "rapport", "asking-about-suicide"],
        ),
        scenario(
            "Caller with financial stress",
            "You are Sarah, 34, calling after losing your job. Rent is due, you are ashamed to tell your family. You have thought about suicide and have pills at home. You are ambivalent and respond to empathy.",
            "Practice de-escalation and risk assessment including means.",
            ScenarioMode::Phone,
            "refresher",
            &["de-escalation", "risk-assessment", "means-restriction"],
        ),
        scenario(
            "Chat: isolated older adult",
            "You are Frank, 72, widowed last year, typing slowly in a chat. You mostly want someone to talk to. You mention you have stopped taking your heart medication.",
            "Engagement in text, exploring passive suicidal ideation.",
            ScenarioMode::Chat,
            "advanced",
            &["engagement", "risk-assessment"],
        ),
        scenario(
            "Third-party caller: worried friend",
            "You are Chris, 27, calling about a friend who posted a goodbye message. You are panicked and want the counselor to tell you what to do right now.",
            "Supporting a third-party caller; imminent risk decisions.",
            ScenarioMode::Phone,
            "assessment",
            &["third-party", "imminent-risk", "collaboration"],
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

    let mut users = vec![admin, supervisor];
    users.extend(counselors);
    Ok(Seeded { created: true, users })
}
