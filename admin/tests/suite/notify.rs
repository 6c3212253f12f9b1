//! Flag notifications against an in-process SMTP sink: who receives them, what they say, that
//! neither a missing nor a failing relay, nor hostile text, can hurt the caller, and that a flag
//! stored while no worker ran is still mailed, once, by two replicas draining the queue.

use crate::common::smtp;

use std::time::Duration;

use admin::notify::{FlagNotice, Mailer, Notified, notify_flag};
use admin::{Config, Secret};
use smtp::{Mode, SmtpSink};
use store::testing::TestDb;
use store::{NewUser, Role};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

/// An account with two active supervisors, an admin, a counselor and a deactivated supervisor,
/// and another account's supervisor.
struct Fixture {
    db: TestDb,
    account: store::AccountId,
    counselor: store::UserId,
    /// The e-mail addresses that should be notified, sorted.
    expected: Vec<String>,
    /// Addresses that must never be notified.
    excluded: Vec<String>,
}

async fn fixture() -> Fixture {
    fixture_on(store::testing::sqlite().await).await
}

async fn fixture_on(db: TestDb) -> Fixture {
    let s = &db.store;
    let account = s.create_account(&format!("Center {}", Uuid::now_v7())).await.expect("account").id;
    let other = s.create_account(&format!("Other {}", Uuid::now_v7())).await.expect("account").id;
    let user = async |account: store::AccountId, name: &str, role: Role| {
        let email = format!("{}-{}@example.org", name.to_lowercase(), Uuid::now_v7().simple());
        let new =
            NewUser { email: email.clone(), display_name: name.to_owned(), role, external_id: None, is_demo: false };
        (s.create_user(account, new).await.expect("user").id, email)
    };
    let (_, sup1) = user(account, "Sue", Role::Supervisor).await;
    let (_, sup2) = user(account, "Sam", Role::Supervisor).await;
    let (_, admin) = user(account, "Ada", Role::Admin).await;
    let (counselor_id, counselor) = user(account, "Casey", Role::Counselor).await;
    let (gone_id, gone) = user(account, "Gone", Role::Supervisor).await;
    s.set_user_active(account, gone_id, false).await.expect("deactivate");
    let (_, outsider) = user(other, "Olga", Role::Supervisor).await;
    let mut expected = vec![sup1, sup2, admin];
    expected.sort();
    Fixture { db, account, counselor: counselor_id, expected, excluded: vec![counselor, gone, outsider] }
}

fn config(db: &TestDb, smtp_url: Option<String>) -> Config {
    let mut config = Config::for_database(&db.url);
    config.smtp_url = smtp_url.map(Secret::new);
    config
}

fn mailer(db: &TestDb, sink: &SmtpSink) -> Mailer {
    Mailer::from_config(&config(db, Some(sink.url()))).expect("valid SMTP config").expect("SMTP configured")
}

fn notice(account_id: store::AccountId) -> FlagNotice {
    FlagNotice {
        account_id,
        session_id: store::SessionId::new(),
        flag_id: store::FlagId::new(),
        flag_type: "missed_suicide_inquiry".into(),
        severity: "high".into(),
        source: "evaluation".into(),
        details: "The counselor did not ask about suicidal thoughts after the caller said she had a plan.".into(),
        counselor_name: "Casey".into(),
        scenario_title: Some("Bridge at night".into()),
    }
}

#[tokio::test]
async fn active_supervisors_and_admins_of_the_account_get_one_mail() {
    let f = fixture().await;
    let sink = SmtpSink::start().await;
    let mailer = mailer(&f.db, &sink);
    let notice = notice(f.account);

    let sent = notify_flag(&f.db.store, Some(&mailer), &notice).await.expect("sent");
    assert_eq!(sent, Notified::Sent { recipients: 3 });

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "one message for all recipients");
    let mail = &got[0];
    let mut recipients = mail.recipients.clone();
    recipients.sort();
    assert_eq!(recipients, f.expected);
    for address in &f.excluded {
        assert!(!mail.data.contains(address.as_str()), "{address} must not appear");
    }
    assert_eq!(mail.from, "noreply@localhost");

    // Recipients are hidden from each other: only the sender is in the headers.
    for address in &f.expected {
        assert!(!mail.headers().contains(address.as_str()), "recipient {address} exposed in headers");
    }
    assert!(mail.header("Bcc").is_none());
    assert!(mail.header("To").expect("To").contains("noreply@localhost"));
    assert!(mail.header("Message-ID").expect("Message-ID").ends_with("@localhost>"));

    let subject = mail.header("Subject").expect("Subject");
    assert_eq!(subject, "[Proto Trainer] high severity flag: missed_suicide_inquiry");
    assert!(mail.header("Content-Type").expect("Content-Type").contains("text/plain"));
    let body = mail.decoded_body();
    // The flag's details may quote the call: they stay in the product, never in e-mail.
    assert!(!body.contains(&notice.details), "details leaked into the body:\n{body}");
    assert!(body.contains(&notice.session_id.to_string()));
    assert!(body.contains("Scenario:  Bridge at night"));
    assert!(body.contains("Counselor: Casey"));
    assert!(body.contains("Source:    evaluation"));
    assert!(body.contains("review session"));
}

#[tokio::test]
async fn utf8_is_declared() {
    let f = fixture().await;
    let sink = SmtpSink::start().await;
    let mut notice = notice(f.account);
    notice.counselor_name = "Zoë Ångström".into();
    notice.scenario_title = Some("Nuit « sans sommeil »".into());

    notify_flag(&f.db.store, Some(&mailer(&f.db, &sink)), &notice).await.expect("sent");

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let content_type = got[0].header("Content-Type").expect("Content-Type").to_lowercase();
    assert!(content_type.contains("charset=utf-8"), "{content_type}");
    let body = got[0].decoded_body();
    assert!(body.contains("Counselor: Zoë Ångström"), "{body}");
    assert!(body.contains("Nuit « sans sommeil »"), "{body}");
}

#[tokio::test]
async fn without_smtp_nothing_is_sent() {
    let f = fixture().await;
    let sink = SmtpSink::start().await;
    let mailer = Mailer::from_config(&config(&f.db, None)).expect("valid config");
    assert!(mailer.is_none());

    let outcome = notify_flag(&f.db.store, mailer.as_ref(), &notice(f.account)).await.expect("no error");
    assert_eq!(outcome, Notified::NoMailer);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_account_without_supervisors_sends_nothing() {
    let db = store::testing::sqlite().await;
    let account = db.store.create_account("Lonely center").await.expect("account").id;
    let sink = SmtpSink::start().await;
    let outcome = notify_flag(&db.store, Some(&mailer(&db, &sink)), &notice(account)).await.expect("no error");
    assert_eq!(outcome, Notified::NoRecipients);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_failing_relay_does_not_fail_the_caller() {
    let f = fixture().await;

    // A relay that refuses DATA.
    let sink = SmtpSink::start_with(Mode::RejectData).await;
    let mailer = mailer(&f.db, &sink);
    let sent = mailer.send(&f.expected, "subject", "body").await;
    assert!(sent.is_err(), "the relay's 451 reaches send");
    let outcome = tokio::time::timeout(WAIT, notify_flag(&f.db.store, Some(&mailer), &notice(f.account)))
        .await
        .expect("notify_flag returns");
    assert!(outcome.is_err(), "a refused message is an error, for the job queue to retry");
    assert!(sink.messages().is_empty());

    // No relay at all: the port is closed.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let config = config(&f.db, Some(format!("smtp://127.0.0.1:{port}")));
    let mailer = Mailer::from_config(&config).expect("valid").expect("configured");
    let outcome = tokio::time::timeout(WAIT, notify_flag(&f.db.store, Some(&mailer), &notice(f.account)))
        .await
        .expect("notify_flag returns");
    assert!(outcome.is_err());
}

#[tokio::test]
async fn hostile_text_cannot_add_headers() {
    let f = fixture().await;
    let sink = SmtpSink::start().await;
    let mut notice = notice(f.account);
    notice.flag_type = "other\r\nBcc: evil@example.net\r\nX-Injected: type".into();
    notice.severity = "high\nX-Injected: severity".into();
    notice.scenario_title = Some("Title\r\n\r\nX-Injected: title".into());
    notice.counselor_name = "Casey\rX-Injected: name".into();

    notify_flag(&f.db.store, Some(&mailer(&f.db, &sink)), &notice).await.expect("sent");

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let mail = &got[0];
    let mut recipients = mail.recipients.clone();
    recipients.sort();
    assert_eq!(recipients, f.expected, "no recipient smuggled in");
    for (name, _) in mail.header_fields() {
        assert!(!name.eq_ignore_ascii_case("bcc") && !name.eq_ignore_ascii_case("x-injected"), "forged header {name}");
    }
    let decoded = mail.decoded_body();
    for line in mail.data.split("\r\n").chain(decoded.lines()) {
        assert!(!line.starts_with("X-Injected") && !line.starts_with("Bcc"), "forged line {line:?}");
    }
    let subject = mail.header("Subject").expect("Subject");
    assert!(subject.contains("other Bcc: evil@example.net X-Injected: type"), "{subject}");
    assert!(mail.decoded_body().contains("Scenario:  Title X-Injected: title"));
}

#[tokio::test]
async fn configuration_errors_name_the_variable_and_hide_secrets() {
    let db = store::testing::sqlite().await;
    let sink = SmtpSink::start().await;

    // Debug never shows the relay's password.
    let with_password = format!("smtp://user:s3cret@127.0.0.1:{}", sink.port());
    let mailer = Mailer::from_config(&config(&db, Some(with_password))).expect("valid").expect("configured");
    let debug = format!("{mailer:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("noreply@localhost"), "{debug}");

    // Accepted forms.
    for url in [
        "smtp://127.0.0.1:2525",
        "smtp://relay.example.org",
        "smtp://user:s3cret@mail.example.org:587?tls=required",
        "smtps://user:s3cret@mail.example.org",
        "smtp://user:s3cret@localhost:2525",
    ] {
        let mailer = Mailer::from_config(&config(&db, Some(url.into())));
        assert!(matches!(mailer, Ok(Some(_))), "{url} is accepted");
    }

    // Refused forms name SMTP_URL, never its value.
    for url in [
        "ftp://user:s3cret@mail.example.org",
        "smtp://user:s3cret@mail.example.org?tls=none",
        "smtp://user:s3cret@mail.example.org",
        "smtp://user:s3cret@mail.example.org?tls=opportunistic",
        "not a url s3cret",
    ] {
        let err = Mailer::from_config(&config(&db, Some(url.into()))).expect_err(url).to_string();
        assert!(err.contains("SMTP_URL"), "{url}: {err}");
        assert!(!err.contains("s3cret"), "{url}: {err}");
    }

    let mut bad_from = config(&db, Some(sink.url()));
    bad_from.mail_from = "not an address s3cret".into();
    let err = Mailer::from_config(&bad_from).expect_err("bad MAIL_FROM").to_string();
    assert!(err.contains("MAIL_FROM") && !err.contains("s3cret"), "{err}");

    // An unset SMTP_URL makes a bad MAIL_FROM irrelevant.
    bad_from.smtp_url = None;
    assert!(matches!(Mailer::from_config(&bad_from), Ok(None)));
}

#[tokio::test]
async fn send_refuses_no_recipients_and_skips_bad_addresses() {
    let db = store::testing::sqlite().await;
    let sink = SmtpSink::start().await;
    let mailer = mailer(&db, &sink);
    assert!(mailer.send(&[], "s", "b").await.is_err());
    assert!(mailer.send(&["not an address".into()], "s", "b").await.is_err());
    mailer.send(&["ok@example.org".into(), "bad address".into()], "s", "b").await.expect("sent");
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recipients, ["ok@example.org"]);
}

/// The "crash between the action and the dispatch": flags are stored (their e-mail jobs with
/// them) while no worker runs, as if the process died right after the commit. Two replicas then
/// drain the queue: every flag is mailed, each exactly once. On PostgreSQL too when
/// `TEST_POSTGRES_URL` is set, where the replicas race for the same rows.
#[tokio::test]
async fn flags_stored_before_a_crash_are_mailed_once_by_two_replicas() {
    let mut dbs = vec![store::testing::sqlite().await];
    dbs.extend(store::testing::postgres().await);
    for db in dbs {
        let f = fixture_on(db).await;
        let s = &f.db.store;
        let session = s
            .create_session(
                f.account,
                &store::NewSession {
                    user_id: f.counselor,
                    assignment_id: None,
                    scenario_id: None,
                    kind: store::SessionKind::Chat,
                    room_name: None,
                },
            )
            .await
            .expect("session");
        let mut flags = Vec::new();
        for i in 0..5 {
            let new = store::NewFlag {
                flag_type: store::FlagType::AiCallerProblem,
                severity: store::FlagSeverity::Medium,
                source: store::FlagSource::UserFeedback,
                details: format!("report {i}"),
                turns: Vec::new(),
            };
            flags.push(s.insert_flag(f.account, session.id, &new).await.expect("flag").id);
        }
        for id in &flags {
            let job = s.job_state(session.id, store::JobKind::NotifyFlag, Some(id.as_uuid())).await.expect("job");
            assert_eq!(job.expect("queued with the flag").status, store::JobStatus::Pending);
        }

        let sink = SmtpSink::start().await;
        let replicas: Vec<_> = (0..2)
            .map(|_| {
                let state = admin::AppState::new(s.clone(), config(&f.db, Some(sink.url()))).expect("state");
                tokio::spawn(admin::jobs::run(state, tokio_util::sync::CancellationToken::new()))
            })
            .collect();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut done = 0;
            for id in &flags {
                let job = s.job_state(session.id, store::JobKind::NotifyFlag, Some(id.as_uuid())).await.expect("job");
                done += usize::from(job.is_some_and(|j| j.status == store::JobStatus::Done));
            }
            if done == flags.len() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {done} of {} notifications sent", flags.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for r in &replicas {
            r.abort();
        }
        let got = sink.messages();
        assert_eq!(got.len(), flags.len(), "one mail per flag, none twice");
        for id in &flags {
            let n = got.iter().filter(|m| m.decoded_body().contains(&format!("Flag:      {id}"))).count();
            assert_eq!(n, 1, "flag {id} mailed once");
        }
    }
}

/// Starts the whole service on `f`'s database with `sink` as relay and the given grace period;
/// answers the shutdown trigger and the server task.
async fn serve(
    f: &Fixture,
    sink: &SmtpSink,
    grace_ms: u32,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let mut config = config(&f.db, Some(sink.url()));
    config.shutdown_grace_ms = grace_ms;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(admin::run(config, listener, async {
        let _ = rx.await;
    }));
    (tx, server)
}

/// Raises one flag on a new session of `f`'s counselor; answers (session, flag).
async fn raise_flag(f: &Fixture) -> (store::SessionId, store::FlagId) {
    let s = &f.db.store;
    let session = s
        .create_session(
            f.account,
            &store::NewSession {
                user_id: f.counselor,
                assignment_id: None,
                scenario_id: None,
                kind: store::SessionKind::Chat,
                room_name: None,
            },
        )
        .await
        .expect("session");
    let new = store::NewFlag {
        flag_type: store::FlagType::AiCallerProblem,
        severity: store::FlagSeverity::Medium,
        source: store::FlagSource::UserFeedback,
        details: "drain me".into(),
        turns: Vec::new(),
    };
    (session.id, s.insert_flag(f.account, session.id, &new).await.expect("flag").id)
}

async fn job_status(f: &Fixture, session: store::SessionId, flag: store::FlagId) -> store::JobStatus {
    f.db.store
        .job_state(session, store::JobKind::NotifyFlag, Some(flag.into()))
        .await
        .expect("job")
        .expect("queued")
        .status
}

/// Shutdown drains: a mail being sent when the service is told to stop is finished and recorded
/// (the job is `done`, not left `running` for its lease to expire), and the service exits.
#[tokio::test]
async fn shutdown_lets_a_mail_in_flight_finish() {
    let f = fixture().await;
    let sink = SmtpSink::start_with(Mode::Slow(1_500)).await;
    let (stop, server) = serve(&f, &sink, 20_000).await;
    let (session, flag) = raise_flag(&f).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while job_status(&f, session, flag).await != store::JobStatus::Running {
        assert!(tokio::time::Instant::now() < deadline, "the worker claims the job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).expect("server running");
    tokio::time::timeout(WAIT, server).await.expect("exits after draining").expect("joins").expect("runs");
    assert_eq!(sink.messages().len(), 1, "the mail in flight was delivered");
    assert_eq!(job_status(&f, session, flag).await, store::JobStatus::Done);
}

/// The grace period bounds the drain: a relay that hangs does not keep the service from exiting;
/// the job stays leased (`running`) for another replica or the next start to take over.
#[tokio::test]
async fn shutdown_gives_up_after_the_grace_period() {
    let f = fixture().await;
    let sink = SmtpSink::start_with(Mode::Slow(60_000)).await;
    let (stop, server) = serve(&f, &sink, 300).await;
    let (session, flag) = raise_flag(&f).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while job_status(&f, session, flag).await != store::JobStatus::Running {
        assert!(tokio::time::Instant::now() < deadline, "the worker claims the job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).expect("server running");
    tokio::time::timeout(WAIT, server).await.expect("exits after the grace period").expect("joins").expect("runs");
    assert!(sink.messages().is_empty());
    assert_eq!(job_status(&f, session, flag).await, store::JobStatus::Running, "left to its lease");
}
