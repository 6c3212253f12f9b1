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

/// A login session for `user`, as the admin service writes one; answers its id (the token's hash).
async fn sign_in(db: &TestDb, user: &User) -> String {
    let id = format!("{:064x}", Uuid::now_v7().as_u128());
    let new = NewAuthSession {
        id: &id,
        user_id: user.id,
        account_id: user.account_id,
        csrf_token: "csrf-test",
        expires_at: Timestamp::from_millis(Timestamp::now().millis() + 3_600_000),
        ip: None,
        user_agent: None,
    };
    db.store
        .create_auth_session(&new, &Audit::new(Some(user.account_id), Some(user.id), "login.test"))
        .await
        .expect("session");
    id
}

/// Sign-in lookups made at one moment share a query (`WHERE s.id IN (...)`, padded with
/// repeats): each still gets its own session, user and account revision, and an unknown id gets
/// nothing, whatever else is in its batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_lookups_made_at_once_each_get_their_own_session() {
    for (backend, db) in testing::all().await {
        let (first, second) = (account(&db).await, account(&db).await);
        // The second account has a revision of its own, moved by a write the first never sees.
        let other = user(&db, second.id, Role::Supervisor).await;
        db.store
            .create_scenario(second.id, Some(other.id), &scenario_input("Moves the revision", false))
            .await
            .expect("scenario");
        let mut signed_in = Vec::new();
        for i in 0..30 {
            let (account, role) = if i % 3 == 0 { (&second, Role::Supervisor) } else { (&first, Role::Counselor) };
            let user = user(&db, account.id, role).await;
            signed_in.push((sign_in(&db, &user).await, user));
        }
        let mut expected = Vec::new();
        for (id, user) in signed_in {
            let revision = db.store.account_revision(user.account_id).await.expect("revision");
            expected.push((id, Some((user.id, revision))));
        }
        for _ in 0..10 {
            expected.push((format!("{:064x}", Uuid::now_v7().as_u128()), None));
        }
        // Every id asked three times at once: a batch holds repeats and more than one batch runs.
        let asks: Vec<_> = expected.iter().cycle().take(expected.len() * 3).cloned().collect();
        let answers = race(asks.len(), |i| {
            let (store, id) = (db.store.clone(), asks[i].0.clone());
            async move { store.auth_session(&id).await.expect("lookup") }
        })
        .await;
        for ((id, want), got) in asks.iter().zip(answers) {
            let got = got.map(|s| {
                assert_eq!(&s.id, id, "{backend:?}: another session's row");
                assert!(!format!("{s:?}").contains("csrf-test"), "the CSRF token in Debug output");
                (s.user.id, s.revision)
            });
            assert_eq!(&got, want, "{backend:?}: session {id}");
        }
        assert_ne!(
            db.store.account_revision(first.id).await.expect("revision"),
            db.store.account_revision(second.id).await.expect("revision")
        );
    }
}

/// A lookup reads the database as of after it was asked, however busy the shared query is:
/// a sign-out or a new revision committed before it is always seen, never an answer from a
/// batch that was already under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_lookup_sees_what_was_committed_before_it() {
    for (backend, db) in testing::all().await {
        let account = account(&db).await;
        let supervisor = user(&db, account.id, Role::Supervisor).await;
        let busy_id = sign_in(&db, &supervisor).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Other requests keep the shared query busy throughout.
        let busy: Vec<_> = (0..8)
            .map(|_| {
                let (store, id, stop) = (db.store.clone(), busy_id.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        store.auth_session(&id).await.expect("busy lookup").expect("busy session");
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for round in 0..20 {
            let id = sign_in(&db, &supervisor).await;
            let before = db.store.auth_session(&id).await.expect("lookup").expect("signed in").revision;
            db.store
                .create_scenario(account.id, Some(supervisor.id), &scenario_input(&format!("Round {round}"), false))
                .await
                .expect("scenario");
            let after = db.store.auth_session(&id).await.expect("lookup").expect("signed in").revision;
            assert!(after > before, "{backend:?} round {round}: revision {before} -> {after}");
            db.store.delete_auth_session(&id, None).await.expect("sign out");
            assert!(
                db.store.auth_session(&id).await.expect("lookup").is_none(),
                "{backend:?} round {round}: signed out"
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in busy {
            task.await.expect("busy task");
        }
    }
}

/// A lookup given up half-way (its request dropped: the client went away) costs the others
/// nothing: the lookups behind it are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_lookup_given_up_leaves_the_others_answered() {
    for (backend, db) in testing::all().await {
        let account = account(&db).await;
        let supervisor = user(&db, account.id, Role::Supervisor).await;
        let id = sign_in(&db, &supervisor).await;
        for round in 0..50 {
            let abandoned: Vec<_> = (0..8)
                .map(|_| {
                    let (store, id) = (db.store.clone(), id.clone());
                    tokio::spawn(async move { store.auth_session(&id).await })
                })
                .collect();
            for task in &abandoned {
                task.abort();
            }
            let answered = tokio::time::timeout(std::time::Duration::from_secs(10), db.store.auth_session(&id))
                .await
                .unwrap_or_else(|_| panic!("{backend:?} round {round}: a lookup waited for an abandoned one"));
            assert!(answered.expect("lookup").is_some(), "{backend:?} round {round}");
        }
    }
}

/// The shared query runs on the runtime that first asked; when that runtime has ended (tests
/// run one per test), the next lookup starts it again where it runs.
#[test]
fn sign_in_lookups_outlive_the_runtime_that_started_them() {
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let (db, id) = first.block_on(async {
        let db = testing::sqlite().await;
        let account = account(&db).await;
        let supervisor = user(&db, account.id, Role::Supervisor).await;
        let id = sign_in(&db, &supervisor).await;
        assert!(db.store.auth_session(&id).await.expect("lookup").is_some());
        (db, id)
    });
    drop(first);
    let second = tokio::runtime::Runtime::new().expect("runtime");
    let found = second
        .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(10), db.store.auth_session(&id)).await });
    assert!(found.expect("answered in time").expect("lookup").is_some());
}
