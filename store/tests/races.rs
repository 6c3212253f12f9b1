//! Read-then-write rules under concurrency. SQLite serialises writers (`BEGIN IMMEDIATE`), so
//! these tests matter on PostgreSQL read committed, where each rule needs a row lock or a
//! constraint: many tasks start together behind a barrier and race for the same rows.

use std::sync::Arc;

use store::testing::{self, TestDb};
use store::*;
use tokio::sync::Barrier;
use uuid::Uuid;

async fn account(db: &TestDb) -> Account {
    db.store.create_account(&format!("Race {}", Uuid::now_v7())).await.expect("account")
}

async fn user(db: &TestDb, account: store::AccountId, role: Role) -> User {
    let email = format!("u-{}@example.org", Uuid::now_v7().simple());
    let new = NewUser { email, display_name: "Racer".into(), role, external_id: None, is_demo: false };
    db.store.create_user(account, new).await.expect("user")
}

fn scenario_input(title: &str, one_time: bool) -> ScenarioInput {
    serde_json::from_value(serde_json::json!({
        "title": title, "prompt": "You are a caller.", "mode": "phone", "category": "onboarding",
        "isOneTime": one_time,
    }))
    .expect("valid input")
}

/// Runs `n` copies of `work` at once (all released by one barrier) and collects their results.
async fn race<T, F, Fut>(n: usize, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let fut = work(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_demotions_never_leave_an_account_without_an_admin() {
    for (backend, db) in testing::all().await {
        for round in 0..10 {
            let account = account(&db).await;
            let mut admins = Vec::new();
            for _ in 0..6 {
                admins.push(user(&db, account.id, Role::Admin).await.id);
            }
            let results =
                race(admins.len(), |i| {
                    let store = db.store.clone();
                    let id = admins[i];
                    // Half demote, half deactivate: both must count against the last-admin rule.
                    let patch = if i % 2 == 0 {
                        UserPatch { role: Some(Role::Supervisor), ..Default::default() }
                    } else {
                        UserPatch { active: Some(false), ..Default::default() }
                    };
                    async move {
                        store.update_user(account.id, id, &patch, &Audit::new(Some(account.id), None, "test")).await
                    }
                })
                .await;
            let ok = results.iter().filter(|r| r.is_ok()).count();
            let admins_left = db
                .store
                .list_users(account.id, &UserFilter::default())
                .await
                .expect("list")
                .iter()
                .filter(|u| u.role == Role::Admin && u.active)
                .count();
            assert_eq!((ok, admins_left), (admins.len() - 1, 1), "{backend:?} round {round}: {results:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_session_attaches_to_an_assignment_after_it_completed() {
    for (backend, db) in testing::all().await {
        for round in 0..10 {
            let account = account(&db).await;
            let counselor = user(&db, account.id, Role::Counselor).await;
            let (scenario, _) =
                db.store.create_scenario(account.id, None, &scenario_input("Race", false)).await.expect("scenario");
            let new = NewAssignment { scenario_id: scenario.id, counselor_id: counselor.id, due_at: None, notes: None };
            let assignment = db.store.create_assignment(account.id, None, &new).await.expect("assignment");
            let start = NewSession {
                user_id: counselor.id,
                assignment_id: Some(assignment.id),
                scenario_id: None,
                kind: SessionKind::Chat,
                room_name: None,
            };
            db.store.create_session(account.id, &start).await.expect("first attempt");
            // Task 0 completes the assignment and counts its attempts right after the commit;
            // the others keep starting attempts until they are told it is completed.
            let results = race(12, |i| {
                let store = db.store.clone();
                let start = start.clone();
                let (account_id, assignment_id) = (account.id, assignment.id);
                async move {
                    if i == 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        store.complete_assignment(account_id, assignment_id).await.expect("complete");
                        let a = store.assignment(account_id, assignment_id).await.expect("read");
                        return Some(a.attempts);
                    }
                    loop {
                        match store.create_session(account_id, &start).await {
                            Err(Error::Conflict { message, .. }) if message.contains("completed") => return None,
                            _ => tokio::task::yield_now().await,
                        }
                    }
                }
            })
            .await;
            let at_completion = results[0].expect("completer's count");
            let after = db.store.assignment(account.id, assignment.id).await.expect("read").attempts;
            assert_eq!(at_completion, after, "{backend:?} round {round}: an attempt was attached after completion");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_time_scenario_is_assigned_once_under_a_race() {
    for (backend, db) in testing::all().await {
        for round in 0..10 {
            let account = account(&db).await;
            let mut counselors = Vec::new();
            for _ in 0..6 {
                counselors.push(user(&db, account.id, Role::Counselor).await.id);
            }
            let (scenario, _) = db
                .store
                .create_scenario(account.id, None, &scenario_input(&format!("Once {round}"), true))
                .await
                .expect("one-time scenario");
            let results = race(counselors.len(), |i| {
                let store = db.store.clone();
                let new =
                    NewAssignment { scenario_id: scenario.id, counselor_id: counselors[i], due_at: None, notes: None };
                async move { store.create_assignment(account.id, None, &new).await }
            })
            .await;
            let ok = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(ok, 1, "{backend:?} round {round}: {results:?}");
        }
    }
}

/// A grading replica killed mid-evaluation leaves its claim behind: racing claimers get exactly one
/// claim while it is fresh, none while it is younger than their bound on an evaluation, and exactly
/// one once it is older (a survivor finishes the grading when the job's lease runs out, not after a
/// fixed ten minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evaluation_claim_is_taken_over_once_older_than_the_bound() {
    for (backend, db) in testing::all().await {
        let account = account(&db).await;
        let counselor = user(&db, account.id, Role::Counselor).await;
        let start = NewSession {
            user_id: counselor.id,
            assignment_id: None,
            scenario_id: None,
            kind: SessionKind::Voice,
            room_name: Some(format!("pt-{}", Uuid::now_v7())),
        };
        let session = db.store.create_session(account.id, &start).await.expect("session").id;
        let claims = |stale_ms: i64| {
            let store = db.store.clone();
            race(8, move |_| {
                let store = store.clone();
                async move { store.claim_evaluation(session, stale_ms).await.expect("claim") }
            })
        };
        let won = claims(60_000).await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{backend:?}: a fresh session is claimed once");
        let won = claims(60_000).await;
        assert!(won.iter().all(|w| !w), "{backend:?}: a live claim was taken over");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let won = claims(1000).await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{backend:?}: a stale claim is taken over once");
    }
}
