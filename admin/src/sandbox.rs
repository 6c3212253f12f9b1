//! Uploaded documents are parsed in a child process, where a crash costs nothing.
//!
//! A hostile PDF can overflow a parser's stack or make it allocate gigabytes; both abort the
//! process, and `catch_unwind` catches neither. So the service never parses an upload itself:
//! [`read_upload`] starts `<program> extract` (by default this binary, `proto-trainer extract`;
//! `EXTRACT_BIN` names another, e.g. the `proto-trainer-extract` binary tests use), writes it
//! one request on standard input and reads the text back from standard output. The child:
//!
//! - gets an empty environment (no database URL, no API keys) besides `RUST_LOG=off`;
//! - limits itself before it reads a byte of the upload ([`child_main`]): address space
//!   (`RLIMIT_AS`, `EXTRACT_MEMORY_MB`), CPU time (`RLIMIT_CPU`, `EXTRACT_CPU_SECS`; SIGXCPU,
//!   then SIGKILL a second later), no core dumps;
//! - is killed by the service after `EXTRACT_TIMEOUT_SECS` of wall time (`kill_on_drop` too, so a
//!   cancelled request leaves no child behind), and its answer is read through a cap of
//!   [`MAX_ANSWER_BYTES`];
//! - runs at most `EXTRACT_CONCURRENCY` at a time per service process; more wait their turn.
//!
//! Whatever happens in the child — a refusal, a crash, a limit, a timeout — the upload answers a
//! [`DocError`] (422 with a message for the person who uploaded it); only a child that cannot
//! be started at all is the service's fault (`DocError::Unavailable`, 500).
//!
//! The protocol: one JSON line ([`Request`]) then exactly `bytes` bytes of the file on stdin;
//! one JSON line ([`Answer`]) on stdout, the last line written.

use std::io::{BufRead, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::MAX_UPLOAD_BYTES;
use crate::config::ExtractConfig;
use crate::documents::{self, DocError, DocKind};

/// The most the child may answer: text of a 10 MB upload, JSON-escaped, fits with room to spare.
pub const MAX_ANSWER_BYTES: u64 = 32 * 1024 * 1024;

/// What the service asks the child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    /// The name to sniff with (see [`documents::sniff`]).
    file_name: Option<String>,
    allowed: Vec<DocKind>,
    /// The file's length; the file follows the request line.
    bytes: usize,
    memory_bytes: u64,
    cpu_secs: u64,
}

/// What the child answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Answer {
    Text { kind: DocKind, text: String },
    Refused(DocError),
}

/// Sniffs and extracts an upload's text in a limited child process (see the module docs).
pub async fn read_upload(
    config: &ExtractConfig,
    file_name: Option<String>,
    bytes: &[u8],
    allowed: &[DocKind],
) -> Result<(DocKind, String), DocError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(DocError::TooLarge);
    }
    let slots = config.slots.get_or_init(|| tokio::sync::Semaphore::new(config.concurrency.max(1) as usize));
    let _turn = slots.acquire().await.map_err(|_| DocError::Unavailable("the extractor is shutting down".into()))?;
    let started = Instant::now();
    let request = Request {
        file_name,
        allowed: allowed.to_vec(),
        bytes: bytes.len(),
        memory_bytes: u64::from(config.memory_mb) * 1024 * 1024,
        cpu_secs: u64::from(config.cpu_secs),
    };
    let (outcome, result) = match run_child(config, &request, bytes).await {
        Ok(Answer::Text { kind, text }) => ("text", Ok((kind, text))),
        Ok(Answer::Refused(e)) => ("refused", Err(e)),
        Err(failure) => {
            let outcome = failure.outcome();
            tracing::warn!(outcome, detail = %failure.detail(), "document extraction failed");
            (outcome, Err(failure.into_doc_error(config)))
        }
    };
    metrics::counter!("document_extractions_total", "outcome" => outcome).increment(1);
    metrics::histogram!("document_extraction_seconds").record(started.elapsed().as_secs_f64());
    result
}

/// How a child failed to answer.
#[derive(Debug)]
enum Failure {
    /// It could not be started, or its pipes failed (the service's problem).
    Start(std::io::Error),
    /// Killed after the wall-time limit.
    Timeout,
    /// It wrote more than [`MAX_ANSWER_BYTES`].
    TooMuchOutput,
    /// It ended without an answer: crashed, killed by a limit, or exited with an error.
    Died { status: ExitStatus, stderr: String },
}

impl Failure {
    fn outcome(&self) -> &'static str {
        match self {
            Failure::Start(_) => "unavailable",
            Failure::Timeout => "timeout",
            Failure::TooMuchOutput => "too_much_output",
            Failure::Died { .. } => match self.cause() {
                Some(Cause::Memory) => "memory_limit",
                Some(Cause::Cpu) => "cpu_limit",
                Some(Cause::Stack) => "stack_overflow",
                None => "crashed",
            },
        }
    }

    /// For the log: how it ended, never the child's output (it may quote the document).
    fn detail(&self) -> String {
        match self {
            Failure::Start(e) => e.to_string(),
            Failure::Timeout => "wall-time limit".into(),
            Failure::TooMuchOutput => "answer over the cap".into(),
            Failure::Died { status, .. } => status.to_string(),
        }
    }

    fn cause(&self) -> Option<Cause> {
        use nix::sys::signal::Signal;
        let Failure::Died { status, stderr } = self else { return None };
        let signal = status.signal();
        if [Signal::SIGXCPU, Signal::SIGKILL].into_iter().any(|s| signal == Some(s as i32)) {
            // Only the CPU limit's hard step kills with SIGKILL here: the wall-time kill is a
            // Timeout, and nothing else signals the child.
            return Some(Cause::Cpu);
        }
        if stderr.contains("memory allocation of") || stderr.contains("capacity overflow") {
            return Some(Cause::Memory);
        }
        if stderr.contains("has overflowed its stack") {
            return Some(Cause::Stack);
        }
        None
    }

    fn into_doc_error(self, config: &ExtractConfig) -> DocError {
        let stopped = |why: String| DocError::Unreadable(format!("reading the document was stopped: {why}"));
        match self {
            Failure::Start(e) => DocError::Unavailable(format!("the document reader could not run: {e}")),
            Failure::Timeout => stopped(format!(
                "it took longer than {} s (the file is damaged or built to exhaust the reader)",
                config.timeout_secs
            )),
            Failure::TooMuchOutput => {
                stopped(format!("its text is larger than {} MB", MAX_ANSWER_BYTES / (1024 * 1024)))
            }
            Failure::Died { .. } => match self.cause() {
                Some(Cause::Memory) => stopped(format!("it needed more than {} MB of memory", config.memory_mb)),
                Some(Cause::Cpu) => stopped(format!("it needed more than {} s of processing", config.cpu_secs)),
                Some(Cause::Stack) => stopped("its structure is nested too deeply for the reader".into()),
                None => DocError::Unreadable(
                    "the document reader crashed on this file; it is damaged or not a document we can read".into(),
                ),
            },
        }
    }
}

enum Cause {
    Memory,
    Cpu,
    Stack,
}

/// Keeps the first `keep` bytes of `reader` and discards the rest, so a chatty child never blocks
/// on a full pipe.
async fn read_head(mut reader: impl tokio::io::AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = keep.saturating_sub(head.len());
        head.extend_from_slice(&buf[..n.min(room)]);
    }
    head
}

async fn run_child(config: &ExtractConfig, request: &Request, bytes: &[u8]) -> Result<Answer, Failure> {
    let program = match &config.program {
        Some(program) => program.clone(),
        None => std::env::current_exe().map_err(Failure::Start)?,
    };
    let mut child = tokio::process::Command::new(program)
        .arg("extract")
        .env_clear()
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Failure::Start)?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Failure::Start(std::io::Error::other("the child's pipes are missing")));
    };
    let mut header = serde_json::to_vec(request).map_err(|e| Failure::Start(e.into()))?;
    header.push(b'\n');
    let write = async move {
        // A child that answers (or dies) before reading everything closes its end: not an error
        // here, its answer or status says what happened.
        if stdin.write_all(&header).await.is_ok() {
            let _ = stdin.write_all(bytes).await;
        }
        drop(stdin);
    };
    let read = async move {
        let mut out = Vec::new();
        let mut limited = stdout.take(MAX_ANSWER_BYTES + 1);
        let read = limited.read_to_end(&mut out).await;
        // Dropping the pipe here makes an over-long writer fail instead of block.
        drop(limited);
        read.map(|_| out)
    };
    let work = async {
        let ((), out, err) = tokio::join!(write, read, read_head(stderr, 16 * 1024));
        let status = child.wait().await;
        (out, err, status)
    };
    let wall = Duration::from_secs(u64::from(config.timeout_secs));
    let finished = tokio::time::timeout(wall, work).await;
    let Ok((out, err, status)) = finished else {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(Failure::Timeout);
    };
    let out = out.map_err(Failure::Start)?;
    if out.len() as u64 > MAX_ANSWER_BYTES {
        return Err(Failure::TooMuchOutput);
    }
    let status = status.map_err(Failure::Start)?;
    let last_line = out.split(|&b| b == b'\n').rev().find(|l| !l.is_empty()).unwrap_or_default();
    match serde_json::from_slice::<Answer>(last_line) {
        Ok(answer) if status.success() => Ok(answer),
        _ => Err(Failure::Died { status, stderr: String::from_utf8_lossy(&err).into_owned() }),
    }
}

/// The child: `proto-trainer extract` (and `proto-trainer-extract`). Reads one [`Request`] and
/// the file from stdin, limits itself, extracts, writes one [`Answer`] to stdout and exits;
/// exit code 2 if the request itself could not be read or the answer not written.
pub fn child_main() -> ! {
    let code = match child() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("proto-trainer extract: {e}");
            2
        }
    };
    std::process::exit(code)
}

fn child() -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    (&mut input).take(64 * 1024).read_until(b'\n', &mut line)?;
    let request: Request = serde_json::from_slice(&line)?;
    anyhow::ensure!(request.bytes <= MAX_UPLOAD_BYTES, "the file is larger than the upload limit");
    // The limits hold before a byte of the upload is read. The CPU limit's soft step sends
    // SIGXCPU, its hard step a second later SIGKILL (in case SIGXCPU is ignored).
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    setrlimit(Resource::RLIMIT_AS, request.memory_bytes, request.memory_bytes)?;
    setrlimit(Resource::RLIMIT_CPU, request.cpu_secs, request.cpu_secs + 1)?;
    let mut bytes = Vec::with_capacity(request.bytes);
    (&mut input).take(request.bytes as u64).read_to_end(&mut bytes)?;
    anyhow::ensure!(bytes.len() == request.bytes, "the file ended early ({} of {} bytes)", bytes.len(), request.bytes);
    let answer = match documents::read_document(request.file_name.as_deref(), &bytes, &request.allowed) {
        Ok((kind, text)) => Answer::Text { kind, text },
        Err(e) => Answer::Refused(e),
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &answer)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
