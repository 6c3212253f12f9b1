//! Retention and erasure: an account's retention purges transcripts, evaluations (with their
//! flags) and audit records past it and leaves live sessions and other accounts alone; erasing a
//! user pseudonymises them, ends their sign-in, deletes their recordings and redacts audit details
//! naming their e-mail. On every backend.

use reqwest::StatusCode;
use serde_json::json;
use store::testing;

use crate::common::{App, PASSWORD, spawn_with};

const DAY_MS: i64 = 86_400_000;

async fn app(db: &testing::TestDb, dir: &std::path::Path) -> App {
    let dir = dir.to_owned();
    spawn_with(db, move |c| c.voice.recordings_dir = dir).await
}

#[tokio::test]
async fn retention_purges_what_is_past_it_and_nothing_else() {
    for (backend, db) in testing::all().await {
        let dir = tempfile::tempdir().expect("dir");
        let app = app(&db, dir.path()).await;
        let s = &app.store;
        // Ended and evaluated: its transcript, evaluation and flag are what a purge takes.
        let old = crate::calibration::evaluated_session(&app).await;
        s.end_session(app.account, old, store::SessionStatus::Completed).await.expect("ended");
        // The other account sets no retention: its records stay.
        s.audit(&store::Audit::new(Some(app.other_account), None, "test.kept")).await.expect("audit");

        // Validation: 422 naming the field; the audit trail is kept at least 30 days.
        for (body, field) in [
            (json!({"transcriptDays": 0}), "transcriptDays"),
            (json!({"evaluationDays": 4000}), "evaluationDays"),
            (json!({"auditDays": 7}), "auditDays"),
        ] {
            let (status, got) = app.call(Some(app.admin), reqwest::Method::PUT, "/api/retention", Some(body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?}: {got}");
            assert!(got.to_string().contains(field), "{backend:?}: {got}");
        }
        let (status, got) = app
            .call(
                Some(app.admin),
                reqwest::Method::PUT,
                "/api/retention",
                Some(json!({"transcriptDays": 1, "evaluationDays": 2, "auditDays": 30})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {got}");
        let (_, got) = app.get(app.admin, "/api/retention").await;
        assert_eq!(got, json!({"transcriptDays": 1, "evaluationDays": 2, "auditDays": 30}), "{backend:?}");

        // Today nothing is old enough.
        assert!(s.purge_expired(store::Timestamp::now()).await.expect("purge").is_empty(), "{backend:?}");
        assert!(!s.transcript(&crate::common::session_ref(s, old).await).await.expect("turns").is_empty());

        // A day and a half later: transcripts go, evaluations stay (two days), a live session too.
        let live = s
            .create_session(
                app.account,
                &store::NewSession {
                    user_id: app.counselor,
                    assignment_id: None,
                    scenario_id: None,
                    kind: store::SessionKind::Chat,
                    room_name: None,
                },
            )
            .await
            .expect("live")
            .id;
        let turn = store::NewTurn {
            speaker: store::Speaker::Counselor,
            text: "Still talking.".into(),
            started_ms: 0,
            ended_ms: None,
            segment_id: None,
        };
        s.append_turns(app.account, live, &[turn]).await.expect("turn");
        let later = store::Timestamp::from_millis(store::Timestamp::now().millis() + DAY_MS * 3 / 2);
        let done = s.purge_expired(later).await.expect("purge");
        assert_eq!(done.len(), 1, "{backend:?}: one account purged: {done:?}");
        assert!(done[0].1.transcript_turns >= 4 && done[0].1.evaluations == 0, "{backend:?}: {done:?}");
        assert!(
            s.transcript(&crate::common::session_ref(s, old).await).await.expect("turns").is_empty(),
            "{backend:?}: the old transcript is gone"
        );
        assert!(
            s.ai_evaluation_raw(&crate::common::session_ref(s, old).await).await.expect("read").is_some(),
            "{backend:?}: evaluations kept 2 days"
        );
        assert_eq!(
            s.transcript(&crate::common::session_ref(s, live).await).await.expect("turns").len(),
            1,
            "{backend:?}: a live session is never purged"
        );

        // Three days later the evaluation and its flag go too; 31 days later the audit trail.
        let later = store::Timestamp::from_millis(store::Timestamp::now().millis() + 3 * DAY_MS);
        let done = s.purge_expired(later).await.expect("purge");
        assert!(done[0].1.evaluations >= 1, "{backend:?}: {done:?}");
        assert!(
            s.ai_evaluation_raw(&crate::common::session_ref(s, old).await).await.expect("read").is_none(),
            "{backend:?}"
        );
        assert!(
            s.session_flags(&crate::common::session_ref(s, old).await).await.expect("flags").is_empty(),
            "{backend:?}: flags go with the evaluation"
        );
        let later = store::Timestamp::from_millis(store::Timestamp::now().millis() + 31 * DAY_MS);
        let done = s.purge_expired(later).await.expect("purge");
        assert!(done[0].1.audit_events >= 1, "{backend:?}: {done:?}");
        let log = s.audit_log(app.account, &store::AuditFilter::default()).await.expect("log");
        // What is left: the purge's own record of what it deleted.
        assert!(log.entries.iter().all(|e| e.action == "retention.purged"), "{backend:?}: {:?}", log.entries);
        let kept = s.audit_log(app.other_account, &store::AuditFilter::default()).await.expect("log");
        assert!(kept.entries.iter().any(|e| e.action == "test.kept"), "{backend:?}: another account keeps its records");
    }
}

#[tokio::test]
async fn erasing_a_user_pseudonymises_them_and_deletes_their_recordings() {
    for (backend, db) in testing::all().await {
        let dir = tempfile::tempdir().expect("dir");
        let app = app(&db, dir.path()).await;
        let s = &app.store;
        // A recorded voice call of the counselor.
        let new = store::NewSession {
            user_id: app.counselor,
            assignment_id: None,
            scenario_id: None,
            kind: store::SessionKind::Voice,
            room_name: None,
        };
        let expires = store::Timestamp::from_millis(store::Timestamp::now().millis() + 60_000);
        let call = s.start_voice_session(app.account, &new, Some(("h", expires))).await.expect("session").0.id;
        let file = store::recording_file_name(call);
        std::fs::write(dir.path().join(&file), b"OggS recording").expect("file");
        let end = store::VoiceEnd {
            reason: store::EndReason::CounselorLeft,
            usage: None,
            turn_metrics: vec![],
            recording: Some(store::RecordingMeta { duration_ms: 1000, bytes: 14 }),
        };
        s.end_voice_session(&crate::common::session_ref(s, call).await, &end).await.expect("ended");
        // An audit record that names the counselor's e-mail: a failed sign-in.
        let email = app.emails[&app.counselor].clone();
        let (status, _) = app.login(&email, "wrong password").await.expect_err("refused");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend:?}");

        // Not yourself, not by a supervisor, not in another account.
        let path = format!("/api/users/{}/erase", app.counselor);
        assert_eq!(app.post(app.supervisor, &path, json!({})).await.0, StatusCode::FORBIDDEN, "{backend:?}");
        let (status, _) = app.post(app.admin, &format!("/api/users/{}/erase", app.admin), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend:?}: not yourself");
        let (status, _) = app.post(app.admin, &format!("/api/users/{}/erase", app.outsider), json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend:?}: another account's user is not found");

        let (status, user) = app.post(app.admin, &path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {user}");
        assert!(user["displayName"].as_str().is_some_and(|n| n.starts_with("Erased user ")), "{backend:?}: {user}");
        assert!(user["email"].as_str().is_some_and(|e| e.ends_with("@erased.invalid")), "{backend:?}: {user}");
        assert_eq!(user["active"], false, "{backend:?}");
        assert_eq!(app.post(app.admin, &path, json!({})).await.0, StatusCode::CONFLICT, "{backend:?}: once");

        // Sign-in is gone, with the old e-mail and password.
        let (status, _) = app.login(&email, PASSWORD).await.expect_err("refused");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend:?}");
        // The recording: row and file.
        assert!(
            matches!(s.recording(&crate::common::session_ref(s, call).await).await, Err(store::Error::NotFound(_))),
            "{backend:?}"
        );
        assert!(!dir.path().join(&file).exists(), "{backend:?}: the recording file is deleted");
        // The session itself stays, under the pseudonym.
        assert_eq!(s.session(app.account, call).await.expect("session").user_id, app.counselor);
        // No audit detail names the old e-mail any more; the erasure is on record.
        let log = s.audit_log(app.account, &store::AuditFilter::default()).await.expect("log");
        assert!(!log.entries.iter().any(|e| e.details.to_string().contains(&email)), "{backend:?}: {:?}", log.entries);
        assert!(log.entries.iter().any(|e| e.action == "user.erased"), "{backend:?}");
    }
}
