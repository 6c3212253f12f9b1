//! Hostile uploads through every route that parses documents, on every available backend: deeply
//! nested PDF arrays, a Form XObject that draws itself, a Flate bomb, a DOCX zip bomb and garbage
//! behind a PDF header, each sent to documentation review (counselor), extract-text (supervisor)
//! and policy upload (supervisor). Each answers 4xx — 422 with a message that says what is wrong
//! where the route takes the file's kind, 415 where it does not — while `/healthz`, polled
//! throughout, answers within a second, and the service reads an honest PDF afterwards. Then the
//! sandbox's own limits, with stand-in children: a crash, a hang past the wall-time limit, and a
//! bomb small enough for the pre-checks that meets the memory limit instead.
//!
//! The files are built here, in code. Run with `--nocapture` to see each attack's time to the
//! answer and the service's resident memory (this test process: the service runs in it).

use std::time::{Duration, Instant};

use admin::documents::{DocError, DocKind};
use openai_sim::Simulator;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use store::testing;
use store::{NewEvaluation, NewSession, NewTurn, SessionKind, Speaker};

use crate::common::pdf::pdf_with_text;
use crate::common::{App, send, spawn_with};

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// A PDF of `objects` (numbered from 1, the first the catalog) with a correct cross-reference
/// table.
fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).bytes());
        out.extend(body);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    out.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
    out
}

/// A one-page PDF whose page draws `content` with `resources`, followed by `extra` objects
/// (numbered from 5).
fn page_pdf(content: &[u8], content_dict: &str, resources: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut stream = format!("<< /Length {} {content_dict} >>\nstream\n", content.len()).into_bytes();
    stream.extend(content);
    stream.extend(b"\nendstream");
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources {resources} >>")
            .into_bytes(),
        stream,
    ];
    objects.extend(extra.iter().cloned());
    pdf_of(&objects)
}

/// `/X [[[...]]]` 50,000 levels deep in the catalog: 100 KB.
fn nested_arrays() -> Vec<u8> {
    let catalog = format!("<< /Type /Catalog /Pages 2 0 R /X {}{} >>", "[".repeat(50_000), "]".repeat(50_000));
    pdf_of(&[
        catalog.into_bytes(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_vec(),
    ])
}

/// A page that draws Form XObject 5, which draws itself.
fn self_drawing_form() -> Vec<u8> {
    let form = b"<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /X1 5 0 R >> >> \
                 /Length 6 >>\nstream\n/X1 Do\nendstream"
        .to_vec();
    page_pdf(b"/X1 Do", "", "<< /XObject << /X1 5 0 R >> >>", &[form])
}

/// Writes bits least-significant first, as DEFLATE does.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl Bits {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.len;
        self.len += bits;
        while self.len >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    /// Huffman codes are defined most-significant bit first.
    fn put_code(&mut self, code: u32, bits: u32) {
        self.put(code.reverse_bits() >> (32 - bits), bits);
    }

    /// A literal/length symbol of the fixed Huffman code (RFC 1951, 3.2.6).
    fn put_symbol(&mut self, symbol: u32) {
        match symbol {
            0..=143 => self.put_code(0x30 + symbol, 8),
            144..=255 => self.put_code(0x190 + symbol - 144, 9),
            256..=279 => self.put_code(symbol - 256, 7),
            _ => self.put_code(0xC0 + symbol - 280, 8),
        }
    }
}

/// DEFLATE data inflating to `prefix`, `count` spaces and `suffix`, written by hand so a huge
/// output costs little input and no compression time (matches of 258 at distance 1).
fn deflate_bomb(prefix: &[u8], count: usize, suffix: &[u8]) -> Vec<u8> {
    let mut bits = Bits { out: Vec::new(), acc: 0, len: 0 };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman codes
    for &b in prefix {
        bits.put_symbol(u32::from(b));
    }
    bits.put_symbol(u32::from(b' '));
    let mut left = count - 1;
    while left >= 258 {
        bits.put_symbol(285); // length 258
        bits.put_code(0, 5); // distance 1
        left -= 258;
    }
    for &b in std::iter::repeat_n(&b' ', left).chain(suffix) {
        bits.put_symbol(u32::from(b));
    }
    bits.put_symbol(256);
    bits.put(0, 7);
    bits.out
}

/// A page whose content stream is zlib data inflating to `mb` MB of spaces between two text
/// operators.
fn flate_bomb(mb: usize) -> Vec<u8> {
    let mut zlib = vec![0x78, 0x9C];
    zlib.extend(deflate_bomb(b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET\n", mb * 1024 * 1024, b"\n"));
    zlib.extend([0, 0, 0, 0]); // the checksum is never reached
    let font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec();
    page_pdf(&zlib, "/Filter /FlateDecode", "<< /Font << /F1 5 0 R >> >>", &[font])
}

/// A DOCX whose `word/document.xml` inflates to 60 MB (and says so).
fn zip_bomb() -> Vec<u8> {
    let prefix = b"<w:document><w:body><w:p><w:r><w:t>";
    let suffix = b"</w:t></w:r></w:p></w:body></w:document>";
    let spaces = 60 * 1024 * 1024;
    let deflated = deflate_bomb(prefix, spaces, suffix);
    let size = u32::try_from(prefix.len() + spaces + suffix.len()).expect("fits");
    let name = b"word/document.xml";
    let le16 = |v: u16| v.to_le_bytes();
    let le32 = |v: u32| v.to_le_bytes();
    let compressed = u32::try_from(deflated.len()).expect("fits");
    let mut out = Vec::new();
    out.extend(le32(0x0403_4b50));
    for v in [20, 0, 8, 0, 0x21] {
        out.extend(le16(v));
    }
    for v in [0, compressed, size] {
        out.extend(le32(v));
    }
    out.extend(le16(name.len() as u16));
    out.extend(le16(0));
    out.extend(name);
    out.extend(&deflated);
    let directory = u32::try_from(out.len()).expect("fits");
    out.extend(le32(0x0201_4b50));
    for v in [20, 20, 0, 8, 0, 0x21] {
        out.extend(le16(v));
    }
    for v in [0, compressed, size] {
        out.extend(le32(v));
    }
    for v in [name.len() as u16, 0, 0, 0, 0] {
        out.extend(le16(v));
    }
    out.extend(le32(0));
    out.extend(le32(0));
    out.extend(name);
    let directory_len = u32::try_from(out.len()).expect("fits") - directory;
    out.extend(le32(0x0605_4b50));
    for v in [0, 0, 1, 1] {
        out.extend(le16(v));
    }
    out.extend(le32(directory_len));
    out.extend(le32(directory));
    out.extend(le16(0));
    out
}

/// A PDF header and 256 KB of pseudo-random bytes (xorshift, fixed seed).
fn garbage() -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    while out.len() < 256 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend(x.to_le_bytes());
    }
    out
}

struct Attack {
    name: &'static str,
    file_name: &'static str,
    mime: &'static str,
    bytes: Vec<u8>,
    /// What the 422 message says.
    says: &'static str,
}

fn attacks() -> Vec<Attack> {
    let pdf = |name, bytes, says| Attack { name, file_name: "upload.pdf", mime: "application/pdf", bytes, says };
    vec![
        pdf("nested arrays", nested_arrays(), "nests arrays or dictionaries more than 64 levels deep"),
        pdf("self-drawing Form XObject", self_drawing_form(), "draws itself"),
        pdf("Flate bomb (300 MB)", flate_bomb(300), "inflates to more than 256 MB"),
        Attack {
            name: "zip bomb (DOCX)",
            file_name: "upload.docx",
            mime: DOCX_TYPE,
            bytes: zip_bomb(),
            says: "larger than 50 MB uncompressed",
        },
        pdf("garbage", garbage(), "damaged"),
    ]
}

/// This process's resident memory now and at its peak, in MB (`/proc/self/status`).
fn rss_mb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A free-practice session of the counselor with an evaluation, so its documentation can be
/// reviewed.
async fn evaluated_session(app: &App) -> store::SessionId {
    let new = NewSession {
        user_id: app.counselor,
        assignment_id: None,
        scenario_id: None,
        kind: SessionKind::Chat,
        room_name: None,
    };
    let session = app.store.create_session(app.account, &new).await.expect("session").id;
    let turn = NewTurn {
        speaker: Speaker::Caller,
        text: "I keep thinking about ending it.".into(),
        started_ms: 0,
        ended_ms: None,
        segment_id: None,
    };
    app.store.append_turns(app.account, session, &[turn]).await.expect("turns");
    let evaluation = NewEvaluation {
        session_id: session,
        flags: vec![],
        overall_score: Some(70.0),
        score_band: Some(store::ScoreBand::Proficient),
        score_basis: Default::default(),
        rubric_version: 2,
        criteria: vec![],
        facts: Vec::new(),
        gate_table: None,
        integrity: Default::default(),
        strengths: vec![],
        areas_to_improve: vec![],
        model: "test".into(),
        raw_output: "{}".into(),
    };
    app.store.finish_evaluation(app.account, &evaluation).await.expect("evaluation");
    session
}

async fn upload(app: &App, user: store::UserId, path: &str, attack: &Attack) -> (StatusCode, Value) {
    let part = Part::bytes(attack.bytes.clone()).file_name(attack.file_name).mime_str(attack.mime).expect("mime");
    send(app.as_user(user, app.http.post(app.url(path))).multipart(Form::new().part("file", part))).await
}

/// What the `/healthz` watcher saw.
struct Health {
    slowest: Duration,
    polls: usize,
    failures: Vec<String>,
}

/// Polls `/healthz` every 50 ms until stopped.
fn watch_health(app: &App) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Health>) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let url = app.url("/healthz");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let task = tokio::spawn(async move {
        let mut health = Health { slowest: Duration::ZERO, polls: 0, failures: Vec::new() };
        loop {
            let started = Instant::now();
            match http.get(&url).send().await {
                Ok(res) if res.status() == StatusCode::OK => {}
                Ok(res) => health.failures.push(format!("status {}", res.status())),
                Err(e) => health.failures.push(e.to_string()),
            }
            health.slowest = health.slowest.max(started.elapsed());
            health.polls += 1;
            tokio::select! {
                _ = &mut stopped => return health,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_through_every_upload_route_answers_4xx_while_the_service_stays_up() {
    let attacks = attacks();
    for (backend, db) in testing::all().await {
        let sim = Simulator::start().await.expect("sim");
        let base_url = sim.base_url();
        let app = spawn_with(&db, move |c| {
            c.openai_api_key = Some(admin::Secret::new("sim-key"));
            c.openai_base_url = base_url;
            c.llm_max_retries = 0;
        })
        .await;
        let session = evaluated_session(&app).await;
        let review = format!("/api/sessions/{session}/document-review");
        // Route, caller, whether it takes DOCX.
        let routes = [
            (review.as_str(), app.counselor, false),
            ("/api/scenarios/extract-text", app.supervisor, false),
            ("/api/policies", app.supervisor, true),
        ];
        let (stop, health) = watch_health(&app);
        for attack in &attacks {
            for &(path, user, takes_docx) in &routes {
                let started = Instant::now();
                let (status, body) = upload(&app, user, path, attack).await;
                let took = started.elapsed();
                let (rss, peak) = rss_mb();
                println!(
                    "{backend:?}: {:<26} {:>8} B -> {path:<45} {status} in {:>6.0} ms; service RSS {rss} MB (peak {peak} MB)",
                    attack.name,
                    attack.bytes.len(),
                    took.as_secs_f64() * 1000.0
                );
                if attack.mime == DOCX_TYPE && !takes_docx {
                    assert_eq!(
                        status,
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "{backend:?} {} {path}: {body}",
                        attack.name
                    );
                    continue;
                }
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{backend:?} {} {path}: {body}", attack.name);
                assert_eq!(body["fields"][0]["field"], "file", "{body}");
                let message = body["fields"][0]["message"].as_str().unwrap_or_default();
                assert!(message.contains(attack.says), "{backend:?} {} {path}: {message}", attack.name);
            }
        }
        // The service goes on: an honest PDF reads as before.
        let honest = Attack {
            name: "honest",
            file_name: "complaint.pdf",
            mime: "application/pdf",
            bytes: pdf_with_text("The counselor never asked about safety"),
            says: "",
        };
        let (status, body) = upload(&app, app.supervisor, "/api/scenarios/extract-text", &honest).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["text"], "The counselor never asked about safety");
        let _ = stop.send(());
        let Health { slowest, polls, failures } = health.await.expect("health watcher");
        println!("{backend:?}: /healthz polled {polls} times, slowest {:.0} ms", slowest.as_secs_f64() * 1000.0);
        assert!(failures.is_empty(), "{backend:?}: /healthz failed: {failures:?}");
        assert!(slowest < Duration::from_secs(1), "{backend:?}: /healthz took {slowest:?}");
        assert!(polls > 5, "{backend:?}: /healthz was polled only {polls} times");
    }
}

/// A stand-in for the extraction child: a shell script in a temporary directory.
fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

async fn extract_with(app: &App, bytes: Vec<u8>) -> (StatusCode, String) {
    let attack = Attack { name: "", file_name: "upload.pdf", mime: "application/pdf", bytes, says: "" };
    let (status, body) = upload(app, app.supervisor, "/api/scenarios/extract-text", &attack).await;
    (status, body["fields"][0]["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_crash_a_hang_or_a_limit_in_the_child_is_one_422() {
    let db = testing::sqlite().await;
    let dir = tempfile::tempdir().expect("tempdir");

    // A child that dies of a signal, as a stack overflow or an abort does.
    let crash = script(&dir, "crash", "kill -SEGV $$");
    let app = spawn_with(&db, |c| c.extract.program = Some(crash)).await;
    let (status, message) = extract_with(&app, pdf_with_text("hello")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
    assert!(message.contains("crashed"), "{message}");

    // A child that hangs is killed at the wall-time limit.
    let hang = script(&dir, "hang", "exec sleep 30");
    let app = spawn_with(&db, |c| {
        c.extract.program = Some(hang);
        c.extract.timeout_secs = 1;
    })
    .await;
    let started = Instant::now();
    let (status, message) = extract_with(&app, pdf_with_text("hello")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
    assert!(message.contains("longer than 1 s"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // A bomb under the pre-check's cap, in a child with little memory: the allocation fails.
    let app = spawn_with(&db, |c| c.extract.memory_mb = 160).await;
    let (status, message) = extract_with(&app, flate_bomb(200)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
    assert!(message.contains("more than 160 MB of memory"), "{message}");

    // A child that cannot start is the service's fault (a 500, logged), not the file's.
    let mut missing = crate::common::extract_config();
    missing.program = Some(dir.path().join("missing"));
    let err = admin::sandbox::read_upload(&missing, None, &pdf_with_text("hello"), &[DocKind::Pdf]).await;
    assert!(matches!(err, Err(DocError::Unavailable(_))), "{err:?}");

    // And after all that, the real child still reads.
    let app = spawn_with(&db, |_| {}).await;
    let (status, _) = extract_with(&app, pdf_with_text("hello")).await;
    assert_eq!(status, StatusCode::OK);
}
