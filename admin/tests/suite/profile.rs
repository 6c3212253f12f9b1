//! A scenario's risk profile through HTTP, on every backend: validation answers per-field 422s
//! (camelCase in our API, snake_case in the partner API, CSV columns in an import), the profile
//! round-trips through all three and the caller preview, counselors never see it, and the AI
//! caller of a chat receives it as facts and behaviour (never a label) and, played by the
//! simulator, follows its disclosure rules.

use openai_sim::Simulator;
use reqwest::StatusCode;
use serde_json::{Value, json};
use store::testing;

use crate::common::{App, id, spawn_with};

/// A high-risk caller: one volunteered fact, one told when asked, one gated on rapport, one never
/// volunteered. Texts carry markers a test can look for anywhere.
fn profile() -> Value {
    json!({
        "expectedLevel": "high",
        "requiredActions": ["safety_plan", "means_restriction"],
        "facts": [
            {"key": "job_loss", "kind": "context", "text": "I lost my job three weeks ago (FACT-A)", "disclosure": "volunteered"},
            {"key": "hopeless", "kind": "hopelessness", "text": "Nothing is going to get better (FACT-B)", "disclosure": "when_asked"},
            {"key": "gun", "kind": "firearms", "text": "My father's pistol is in the closet (FACT-C)", "disclosure": "asked_directly_after_rapport"},
            {"key": "thoughts", "kind": "ideation", "text": "I think about dying every night (FACT-D)", "disclosure": "never_volunteered"},
        ],
    })
}

fn scenario(title: &str, mode: &str, profile: Value) -> Value {
    json!({"title": title, "prompt": "You are Alex, 52, a retired teacher.", "mode": mode, "category": "onboarding",
        "riskProfile": profile})
}

fn fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .or_else(|| body["fields"].as_array())
        .map(|a| a.iter().map(|f| f["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn profiles_validate_round_trip_and_preview() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |_| {}).await;
        // Imminent without an attempt, plan or timeline, and without active rescue: two problems,
        // each named by its field.
        let mut imminent = profile();
        imminent["expectedLevel"] = json!("imminent");
        imminent["facts"][1]["key"] = json!("Bad Key");
        let (status, body) = app.post(app.supervisor, "/api/scenarios", scenario("Imminent", "phone", imminent)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {body}");
        assert_eq!(
            fields(&body),
            vec!["riskProfile.facts[1].key", "riskProfile.expectedLevel", "riskProfile.requiredActions"],
            "{body}"
        );
        // An unknown rule is a malformed body (400), not a server error.
        let mut bad = profile();
        bad["facts"][0]["disclosure"] = json!("sometimes");
        let (status, _) = app.post(app.supervisor, "/api/scenarios", scenario("Bad", "phone", bad)).await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY, "{status}");

        let (status, created) =
            app.post(app.supervisor, "/api/scenarios", scenario("Profiled", "phone", profile())).await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {created}");
        assert_eq!(created["riskProfile"]["schemaVersion"], 1);
        assert_eq!(created["riskProfile"]["facts"][2]["disclosure"], "asked_directly_after_rapport");
        let (_, read) = app.get(app.supervisor, &format!("/api/scenarios/{}", id(&created))).await;
        assert_eq!(read["riskProfile"], created["riskProfile"]);
        assert_eq!(read["riskProfile"]["expectedLevel"], "high");

        // An update replaces it; without one the scenario is free text again, as before profiles.
        let mut lower = profile();
        lower["expectedLevel"] = json!("moderate");
        let (status, updated) = app
            .call(
                Some(app.supervisor),
                reqwest::Method::PUT,
                &format!("/api/scenarios/{}", id(&created)),
                Some(scenario("Profiled", "phone", lower)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["riskProfile"]["expectedLevel"], "moderate");
        let mut plain = scenario("Profiled", "phone", Value::Null);
        plain.as_object_mut().expect("object").remove("riskProfile");
        let (_, updated) = app
            .call(Some(app.supervisor), reqwest::Method::PUT, &format!("/api/scenarios/{}", id(&created)), Some(plain))
            .await;
        assert!(updated["riskProfile"].is_null(), "{updated}");

        // The preview compiles what chat and voice would send, labels left out.
        let (status, preview) = app
            .post(
                app.supervisor,
                "/api/scenarios/preview-caller",
                json!({"prompt": "You are Alex.", "mode": "chat", "riskProfile": profile()}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        let text = preview["instructions"].as_str().expect("instructions");
        for marker in ["FACT-A", "FACT-B", "FACT-C", "FACT-D", "You are Alex."] {
            assert!(text.contains(marker), "{marker} missing: {text}");
        }
        for label in ["high", "safety_plan", "asked_directly_after_rapport", "never_volunteered", "risk"] {
            assert!(!text.to_lowercase().contains(label), "`{label}` reached the caller: {text}");
        }
        let mut invalid = profile();
        invalid["facts"] = json!([]);
        invalid["requiredActions"] = json!(["safety_plan"]);
        let (status, body) = app
            .post(app.supervisor, "/api/scenarios/preview-caller", json!({"prompt": "x", "riskProfile": invalid}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(fields(&body), vec!["riskProfile.facts"]);
        let (status, _) = app.post(app.counselor, "/api/scenarios/preview-caller", json!({"prompt": "x"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn partner_api_and_csv_carry_profiles_in_their_own_spelling() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |_| {}).await;
        let (_, key) = admin::auth::create_api_key(&app.store, app.account, "p", None).await.expect("key");
        let partner = |body: Value| {
            app.http.post(app.url("/api/external/scenarios")).header("x-api-key", &key).json(&body).send()
        };
        let snake = json!({
            "expected_level": "imminent",
            "required_actions": ["active_rescue", "third_party_guidance"],
            "third_party": true,
            "facts": [{"key": "tonight", "kind": "timeline", "text": "She said tonight", "disclosure": "when_asked"}],
        });
        let body = json!({"title": "Partner profiled", "prompt": "You are Chris.", "mode": "phone", "category": "onboarding",
            "risk_profile": snake});
        let res = partner(body.clone()).await.expect("request");
        assert_eq!(res.status(), StatusCode::CREATED, "{backend:?}");
        let created: Value = res.json().await.expect("json");
        assert_eq!(created["risk_profile"]["expected_level"], "imminent");
        assert_eq!(created["risk_profile"]["third_party"], true);
        assert_eq!(created["risk_profile"]["facts"][0]["key"], "tonight");
        // Our API reads the same profile in camelCase.
        let (_, ours) = app.get(app.supervisor, &format!("/api/scenarios/{}", id(&created))).await;
        assert_eq!(ours["riskProfile"]["requiredActions"], json!(["active_rescue", "third_party_guidance"]));
        // Problems are named in snake_case.
        let mut wrong = body.clone();
        wrong["title"] = json!("Partner wrong");
        wrong["risk_profile"]["required_actions"] = json!([]);
        let res = partner(wrong).await.expect("request");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem: Value = res.json().await.expect("json");
        assert_eq!(fields(&problem), vec!["risk_profile.required_actions"], "{problem}");
        // The seed contract is unchanged: a body without a profile still makes a scenario.
        let mut plain = body.clone();
        plain["title"] = json!("Partner plain");
        plain.as_object_mut().expect("object").remove("risk_profile");
        let res = partner(plain).await.expect("request");
        assert_eq!(res.status(), StatusCode::CREATED);
        let plain: Value = res.json().await.expect("json");
        assert!(plain["risk_profile"].is_null());

        let csv = "title,prompt,mode,category,risk_level,required_actions,fact:firearms,fact:tonight\n\
                   CSV profiled,You are Lee.,chat,onboarding,imminent,active_rescue;means_restriction,when_asked|A rifle in the truck,timeline|never_volunteered|Tonight after work\n\
                   CSV wrong,You are Kim.,chat,onboarding,low,active_rescue,volunteered|A gun,\n\
                   CSV plain,You are Bo.,chat,onboarding,,,,\n";
        let (status, report) =
            app.raw(app.supervisor, reqwest::Method::POST, "/api/scenarios/import", "text/csv", csv.into()).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["created"].as_array().map(Vec::len), Some(2), "{report}");
        assert_eq!(report["failed"][0]["row"], 2);
        assert_eq!(report["failed"][0]["errors"][0]["field"], "required_actions");
        let imported = &report["created"][0]["id"];
        let (_, s) =
            app.get(app.supervisor, &format!("/api/scenarios/{}", imported.as_str().unwrap_or_default())).await;
        assert_eq!(s["riskProfile"]["facts"][0]["kind"], "firearms");
        assert_eq!(s["riskProfile"]["facts"][1]["disclosure"], "never_volunteered");
        assert_eq!(s["riskProfile"]["facts"][1]["text"], "Tonight after work");
    }
}

/// "Generate from a complaint" drafts a profile too; the simulator's default answer is one that
/// holds together, and the draft saves as is.
#[tokio::test]
async fn drafts_from_a_complaint_carry_a_profile() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let base = sim.base_url();
        let app: App = spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = base;
            c.llm_max_retries = 0;
        })
        .await;
        let (status, draft) = app
            .post(app.supervisor, "/api/scenarios/generate", json!({"complaintText": "The volunteer rushed me."}))
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {draft}");
        let facts = draft["riskProfile"]["facts"].as_array().cloned().unwrap_or_default();
        assert!(!facts.is_empty(), "{draft}");
        assert_eq!(facts[0]["key"], facts[0]["kind"], "keys are made from the kinds");
        let schema = &sim.chat_requests()[0]["response_format"]["json_schema"]["schema"];
        assert_eq!(schema["$defs"]["DraftFact"]["properties"]["disclosure"]["enum"][1], "when_asked");
        let mut body = draft.clone();
        body["title"] = json!(format!("Drafted {}", uuid::Uuid::now_v7()));
        let (status, saved) = app.post(app.supervisor, "/api/scenarios", body).await;
        assert_eq!(status, StatusCode::CREATED, "{saved}");
        assert_eq!(saved["riskProfile"], draft["riskProfile"]);
    }
}

/// Every counselor-visible read of a scenario they practise leaves the profile out.
#[tokio::test]
async fn counselors_never_see_the_profile_and_the_caller_follows_it() {
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let base = sim.base_url();
        let app: App = spawn_with(&db, |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = base;
            c.llm_max_retries = 0;
        })
        .await;
        let (status, created) =
            app.post(app.supervisor, "/api/scenarios", scenario("Chat profiled", "chat", profile())).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (status, assignment) = app
            .post(app.supervisor, "/api/assignments", json!({"scenarioId": id(&created), "counselorId": app.counselor}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{assignment}");
        let hidden = |body: &Value| {
            let text = body.to_string();
            !text.contains("riskProfile")
                && !text.contains("FACT-B")
                && !text.contains("FACT-C")
                && !text.contains("FACT-D")
        };
        assert_eq!(app.get(app.counselor, &format!("/api/scenarios/{}", id(&created))).await.0, StatusCode::FORBIDDEN);
        assert_eq!(app.get(app.counselor, "/api/scenarios").await.0, StatusCode::FORBIDDEN);
        let (_, list) = app.get(app.counselor, "/api/assignments").await;
        assert!(hidden(&list), "{backend:?}: {list}");
        let (_, one) = app.get(app.counselor, &format!("/api/assignments/{}", id(&assignment))).await;
        assert!(hidden(&one), "{one}");

        // The chat starts: the caller (the simulator, no scripted rule) volunteers the
        // volunteered fact and nothing gated.
        let (status, started) =
            app.post(app.counselor, "/api/sessions", json!({"assignmentId": id(&assignment)})).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        assert!(hidden(&started), "{started}");
        assert!(started["opening"]["text"].as_str().unwrap_or_default().contains("FACT-A"), "{started}");
        let session = started["session"]["id"].as_str().expect("id").to_owned();
        let say = async |text: &str| {
            let (status, exchange) =
                app.post(app.counselor, &format!("/api/sessions/{session}/message"), json!({"content": text})).await;
            assert_eq!(status, StatusCode::OK, "{exchange}");
            exchange["caller"]["text"].as_str().unwrap_or_default().to_owned()
        };
        assert!(say("Do you think things could get better?").await.contains("FACT-B"));
        // Asked directly about the gun before any rapport: a hesitation, never the fact or a denial.
        let early = say("Do you have a gun at home?").await;
        assert!(!early.contains("FACT-C") && !early.to_lowercase().starts_with("no"), "{early}");
        say("That sounds really hard.").await;
        say("I hear how exhausted you are.").await;
        assert!(say("Are there any guns or firearms at home?").await.contains("FACT-C"));
        assert!(say("Are you thinking of suicide?").await.contains("FACT-D"));
        let (_, detail) = app.get(app.counselor, &format!("/api/sessions/{session}")).await;
        assert!(!detail.to_string().contains("riskProfile"), "{detail}");

        // What the caller model was told: every fact with its behaviour, no label.
        let prompt = sim.chat_requests().last().and_then(|r| r["messages"][0]["content"].as_str().map(str::to_owned));
        let prompt = prompt.expect("a caller prompt");
        assert!(prompt.contains("- Topic: guns, firearms, weapons at home. What is true: My father's pistol"));
        for label in ["high", "means_restriction", "when_asked", "risk level"] {
            assert!(!prompt.to_lowercase().contains(label), "`{label}` reached the caller");
        }
    }
}

/// The voice agent's setup carries the same compiled caller (the agent plays what chat plays).
#[tokio::test]
async fn a_voice_call_gets_the_compiled_caller() {
    for (backend, db) in testing::all().await {
        let app = spawn_with(&db, |_| {}).await;
        let (status, created) =
            app.post(app.supervisor, "/api/scenarios", scenario("Voice profiled", "phone", profile())).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let scenario_id: store::ScenarioId = id(&created).parse().expect("id");
        let session = app
            .store
            .create_session(
                app.account,
                &store::NewSession {
                    user_id: app.counselor,
                    assignment_id: None,
                    scenario_id: Some(scenario_id),
                    kind: store::SessionKind::Voice,
                    room_name: Some(format!("room-{}", uuid::Uuid::now_v7())),
                },
            )
            .await
            .expect("session");
        let handle = crate::common::session_ref(&app.store, session.id).await;
        let setup = app.store.voice_setup(&handle, &store::CallDefaults::default()).await.expect("setup");
        let scenario = app.store.scenario(app.account, scenario_id).await.expect("scenario");
        let expected = store::persona::caller_instructions(
            Some(&scenario.prompt),
            scenario.risk_profile.as_ref(),
            store::persona::Medium::Voice,
        );
        assert_eq!(setup.instructions, expected, "{backend:?}");
        assert_eq!(setup.instructions.matches("\n- Topic: ").count(), 4);
    }
}

/// The demo seeds six profiled scenarios: every level, and a third-party caller.
#[tokio::test]
async fn the_demo_seeds_profiled_scenarios_of_every_level() {
    for (backend, db) in testing::all().await {
        let seeded = admin::seed::demo(&db.store).await.expect("seeds");
        let account = seeded.users.first().expect("users").account_id;
        let scenarios = db.store.list_scenarios(account, &Default::default()).await.expect("scenarios");
        let profiles: Vec<&store::RiskProfile> = scenarios.iter().filter_map(|s| s.risk_profile.as_ref()).collect();
        assert!(profiles.len() >= 6, "{backend:?}: {}", profiles.len());
        for level in store::RiskLevel::ALL {
            assert!(profiles.iter().any(|p| p.expected_level == *level), "{level}");
        }
        assert!(profiles.iter().any(|p| p.third_party));
        assert!(profiles.iter().all(|p| p.gated_facts().count() >= 2), "every profiled caller hides something");
    }
}

/// A counselor's natural question about each kind of fact (not the prompt's topic words).
fn question(kind: store::RiskFactKind) -> &'static str {
    use store::RiskFactKind::*;
    match kind {
        PsychologicalPain => "How much pain are you in right now?",
        Hopelessness => "Do you feel any hope about the future?",
        Trapped => "Do you feel trapped, like you're stuck?",
        Burden => "Do you ever feel like a burden to people?",
        Alone => "Do you have friends or family you can lean on?",
        MeansAccess => "Do you have pills or medication you could use to hurt yourself?",
        Firearms => "Do you have a gun at home?",
        PastAttempts => "Have you ever attempted suicide in the past?",
        Intoxication => "Have you been drinking or using drugs tonight?",
        Agitation => "Have you been able to sleep, or do you feel restless?",
        Ideation => "Are you thinking about suicide?",
        Plan => "Do you have a plan for how you would do it?",
        Timeline => "Have you thought about timing, like tonight or soon?",
        PreparatoryBehavior => "Have you made any preparations, like giving things away or writing goodbye notes?",
        AttemptInProgress => "Have you already taken something? Are you safe right now?",
        Buffer => "What are your reasons for living?",
        RiskToOthers => "Are you thinking about hurting someone else?",
        Context => "What happened today?",
    }
}

/// Measures the offline caller on the demo's profiles: a thorough counselor (two empathic turns,
/// then a direct question per fact) uncovers every fact; a poor one (no empathy, never asks
/// directly) uncovers no fact that waits for a direct question.
#[tokio::test]
async fn the_simulated_caller_rewards_a_thorough_assessment_on_the_demo_profiles() {
    let db = testing::sqlite().await;
    let seeded = admin::seed::demo(&db.store).await.expect("seeds");
    let account = seeded.users.first().expect("users").account_id;
    let scenarios = db.store.list_scenarios(account, &Default::default()).await.expect("scenarios");
    let (mut gated, mut thorough_found, mut poor_found) = (0, 0, 0);
    for s in scenarios.iter().filter(|s| s.risk_profile.is_some()) {
        let profile = s.risk_profile.as_ref().expect("profile");
        let prompt = store::persona::caller_instructions(Some(&s.prompt), Some(profile), store::persona::Medium::Chat);
        let converse = |counselor: &[String]| {
            let mut turns: Vec<(bool, String)> = Vec::new();
            let mut said = String::new();
            for line in counselor {
                turns.push((true, line.clone()));
                let view: Vec<(bool, &str)> = turns.iter().map(|(c, t)| (*c, t.as_str())).collect();
                let reply = openai_sim::profiled_reply(&prompt, &view).expect("profiled");
                said.push_str(&reply);
                said.push('\n');
                turns.push((false, reply));
            }
            said
        };
        let mut thorough = vec!["That sounds really hard.".to_owned(), "I hear how tired you are.".to_owned()];
        thorough.extend(profile.facts().iter().map(|f| question(f.kind).to_owned()));
        let poor: Vec<String> =
            profile.facts().iter().map(|f| question(f.kind).trim_end_matches('?').replace('?', ".") + ".").collect();
        let (t, p) = (converse(&thorough), converse(&poor));
        for f in profile.gated_facts() {
            gated += 1;
            let text = f.text.trim_end_matches('.');
            assert!(t.contains(text), "{}: a thorough counselor should uncover `{}`:\n{t}", s.title, f.key);
            thorough_found += 1;
            if p.contains(text) {
                poor_found += 1;
                assert_eq!(
                    f.disclosure,
                    store::DisclosureRule::WhenAsked,
                    "{}: `{}` leaked to a poor counselor",
                    s.title,
                    f.key
                );
            }
        }
    }
    println!(
        "simulated caller on the demo profiles: thorough counselor uncovered {thorough_found}/{gated} gated facts, poor counselor {poor_found}/{gated} (only facts told when their topic comes up)"
    );
}
