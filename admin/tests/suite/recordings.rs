//! Recording retention: the housekeeping job deletes recordings past `RECORDINGS_RETENTION_DAYS`
//! (row and file) and files no row names once they are a day old (a deleted session's, or a purge
//! interrupted between row and file), and keeps everything else — a fresh unnamed file may be one
//! an agent is still writing. On every backend.

use std::path::Path;
use std::time::{Duration, SystemTime};

use store::testing;

use crate::common::{App, spawn_with};

async fn app_keeping(db: &testing::TestDb, dir: &Path, days: u32) -> App {
    let dir = dir.to_owned();
    spawn_with(db, move |c| {
        c.voice.recordings_dir = dir;
        c.voice.recordings_retention_days = days;
    })
    .await
}

/// An ended voice call of the app's counselor with a recording file in `dir`.
async fn recorded_call(app: &App, dir: &Path) -> (store::SessionId, String) {
    let s = &app.store;
    let new = store::NewSession {
        user_id: app.counselor,
        assignment_id: None,
        scenario_id: None,
        kind: store::SessionKind::Voice,
        room_name: None,
    };
    let expires = store::Timestamp::from_millis(store::Timestamp::now().millis() + 60_000);
    let session = s.start_voice_session(app.account, &new, Some(("h", expires))).await.expect("session").0.id;
    let file = format!("{session}.ogg");
    std::fs::write(dir.join(&file), b"OggS recording").expect("file");
    let end = store::VoiceEnd {
        reason: store::EndReason::CounselorLeft,
        usage: None,
        turn_metrics: vec![],
        recording: Some(store::RecordingMeta { duration_ms: 1000, bytes: 14 }),
    };
    s.end_voice_session(&crate::common::session_ref(s, session).await, &end).await.expect("ended");
    (session, file)
}

fn age(path: &Path, by: Duration) {
    let f = std::fs::File::options().write(true).open(path).expect("open");
    f.set_modified(SystemTime::now() - by).expect("set mtime");
}

#[tokio::test]
async fn retention_deletes_old_recordings_and_stray_files_and_keeps_the_rest() {
    for (backend, db) in testing::all().await {
        let dir = tempfile::tempdir().expect("dir");
        let first = app_keeping(&db, dir.path(), 90).await;
        let (account, session, file) = {
            let (session, file) = recorded_call(&first, dir.path()).await;
            (first.account, session, file)
        };
        let stray_old = dir.path().join("0190aaaa-0000-7000-8000-000000000000.ogg");
        let stray_new = dir.path().join("0190bbbb-0000-7000-8000-000000000000.ogg");
        let other = dir.path().join("notes.txt");
        for f in [&stray_old, &stray_new, &other] {
            std::fs::write(f, b"x").expect("file");
        }
        age(&stray_old, Duration::from_secs(2 * 86_400));
        age(&other, Duration::from_secs(2 * 86_400));
        drop(first);

        // A 90-day retention (its pass runs at start-up) keeps today's recording.
        let keeping = app_keeping(&db, dir.path(), 90).await;
        assert!(eventually(|| !stray_old.exists()).await, "{backend:?}: a day-old file no row names is deleted");
        assert!(dir.path().join(&file).exists(), "{backend:?}: a fresh recording's file is kept");
        keeping
            .store
            .recording(&keeping.store.session_in(account, session).await.expect("session"))
            .await
            .expect("a fresh recording's row is kept");
        assert!(stray_new.exists(), "{backend:?}: a fresh unnamed file may be one being written");
        assert!(other.exists(), "{backend:?}: only recordings are touched");
        drop(keeping);

        // A zero-day retention: everything recorded before now goes, file and row.
        let purging = app_keeping(&db, dir.path(), 0).await;
        assert!(eventually(|| !dir.path().join(&file).exists()).await, "{backend:?}: the expired file is deleted");
        let row = purging.store.recording(&purging.store.session_in(account, session).await.expect("session")).await;
        assert!(matches!(row, Err(store::Error::NotFound(_))), "{backend:?}: the expired row is deleted: {row:?}");
        assert!(stray_new.exists() && other.exists(), "{backend:?}: fresh and foreign files survive");
    }
}

async fn eventually(done: impl Fn() -> bool) -> bool {
    for _ in 0..50 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}
