//! Draining the durable job queue (`store::jobs`), by every admin replica at once: ended voice
//! calls (and partner-triggered evaluations) are graded here with the one shared
//! [`evaluation::evaluate_session`], every evaluation is followed by its analysis
//! ([`evaluation::analyze_session`]), and every flag's e-mail is sent ([`notify::notify_flag`]). A worker wakes
//! when this process queues a job (the store's notifier: an agent co-deployed in this process, or
//! an internal API request that reached this replica) and otherwise polls every `JOB_POLL_MS`;
//! claims are leases, so a restart between hang-up and grading only delays the grade.
//!
//! Scenario test runs (`test_run` jobs) hold their AI counselor's call and grade it
//! ([`crate::testrun`]), renewing their lease as the call goes.
//!
//! Also the voice housekeeping: sessions whose room the counselor never joined are closed as
//! abandoned, calls whose agent vanished are completed, and old recordings are deleted.

use std::sync::Arc;
use std::time::Duration;

use store::{Job, JobKind, Timestamp};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::error::ApiError;
use crate::evaluation;
use crate::notify::{self, Notified};

/// Jobs one replica runs at once (each is mostly waiting on the LLM).
const CONCURRENCY: usize = 4;
/// A job that keeps failing is given up after this many attempts.
const MAX_ATTEMPTS: i64 = 6;

/// How a background loop paces itself while the database fails: the wait doubles from the loop's
/// usual pace up to a minute, so a database that is down is not hammered (nor the log flooded)
/// by every replica's loops, and the first success returns to the usual pace.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration) -> Self {
        Backoff { base: base.max(Duration::from_millis(10)), max: Duration::from_secs(60), failures: 0 }
    }

    /// A failed round: how long to wait before the next one.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doubled = self.base.saturating_mul(1u32 << (self.failures - 1).min(16));
        doubled.min(self.max)
    }

    /// A round that reached the database: answers whether it had been failing (to log recovery).
    pub fn succeeded(&mut self) -> bool {
        std::mem::take(&mut self.failures) > 0
    }
}

/// A lease outlasts the longest evaluation: every LLM attempt timing out, plus a margin.
pub(crate) fn lease_ms(state: &AppState) -> i64 {
    let c = &state.config;
    i64::from(c.llm_timeout_secs) * i64::from(c.llm_max_retries + 1) * 1000 + 60_000
}

/// Runs this replica's job workers until `stop` is cancelled; then claims nothing more and
/// returns once the jobs in flight have finished (the caller bounds how long it waits).
pub async fn run(state: AppState, stop: CancellationToken) {
    let worker = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7());
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let poll = Duration::from_millis(u64::from(state.config.voice.job_poll_ms));
    let mut running = tokio::task::JoinSet::new();
    let mut backoff = Backoff::new(poll);
    loop {
        while running.try_join_next().is_some() {}
        if stop.is_cancelled() {
            break;
        }
        // Registered before looking, so a job queued while we look still wakes us.
        let queued = state.store.job_queued();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let free = permits.available_permits() as i64;
        let jobs = if free > 0 {
            match state.store.claim_jobs(&worker, lease_ms(&state), free).await {
                Ok(jobs) => {
                    if backoff.succeeded() {
                        tracing::info!("claiming jobs again: the database answers");
                    }
                    jobs
                }
                Err(e) => {
                    let wait = backoff.failed();
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "claiming jobs failed; backing off");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = stop.cancelled() => {}
                    }
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        let claimed = !jobs.is_empty();
        for job in jobs {
            // Claimed jobs are run even when a stop comes meanwhile: they are leased to us.
            let Ok(permit) = permits.clone().acquire_owned().await else { break };
            let (state, worker) = (state.clone(), worker.clone());
            running.spawn(async move {
                run_job(&state, &worker, &job).await;
                drop(permit);
            });
        }
        if claimed {
            // More may be due; look again at once (a full pool waits for a permit above).
            continue;
        }
        tokio::select! {
            () = &mut queued => {}
            () = tokio::time::sleep(poll) => {}
            () = stop.cancelled() => {}
        }
    }
    // Draining: what was claimed finishes and records its outcome.
    while running.join_next().await.is_some() {}
}

/// Why a job stopped: done (with a note when there was nothing to do), or failed (retried if
/// `retry`).
enum Outcome {
    Done(Option<String>),
    Failed {
        error: String,
        retry: bool,
    },
    /// Not yet: run again at this time (a profiled session's grading waits for the call record).
    Deferred {
        why: String,
        until: Timestamp,
    },
}

/// The job's session, in the account that queued it.
async fn job_session(state: &AppState, job: &Job) -> crate::error::Result<store::SessionRef> {
    Ok(state.store.session_in(job.account_id, job.session_id).await?)
}

async fn run_job(state: &AppState, worker: &str, job: &Job) {
    let started = std::time::Instant::now();
    let session_id = job.session_id;
    let outcome = match job.kind {
        JobKind::EvaluateSession => match call_record_wait(state, job).await {
            Ok(Some(until)) => Outcome::Deferred { why: "waiting for the counselor's call record".into(), until },
            Ok(None) => {
                match async { evaluation::evaluate_session(state, &job_session(state, job).await?).await }.await {
                    Ok(done) => {
                        tracing::info!(%session_id, created = done.created, ms = started.elapsed().as_millis() as u64, "session graded");
                        metrics::histogram!("voice_grading_seconds").record(started.elapsed().as_secs_f64());
                        Outcome::Done(None)
                    }
                    Err(e) => api_outcome(e, state.llm.is_some()),
                }
            }
            Err(e) => api_outcome(e, state.llm.is_some()),
        },
        JobKind::AnalyzeSession => {
            match async { evaluation::analyze_session(state, &job_session(state, job).await?).await }.await {
                Ok(analysis) => {
                    tracing::info!(%session_id, findings = analysis.findings, "session analysed");
                    Outcome::Done(None)
                }
                Err(e) => api_outcome(e, state.llm.is_some()),
            }
        }
        JobKind::NotifyFlag => notify(state, job).await,
        JobKind::TestRun => match crate::testrun::run(state, job, worker, lease_ms(state)).await {
            Ok(note) => Outcome::Done(note),
            Err(e) => api_outcome(e, state.llm.is_some()),
        },
    };
    let recorded = match outcome {
        Outcome::Done(note) => state.store.complete_job(job, worker, note.as_deref()).await,
        Outcome::Deferred { why, until } => {
            tracing::info!(%session_id, %until, "grading deferred: {why}");
            state.store.fail_job(job, worker, &why, Some(until)).await
        }
        Outcome::Failed { error, retry } => {
            let retry = (retry && job.attempts < MAX_ATTEMPTS).then(|| {
                // 10 s, 20 s, 40 s, ... capped at 10 minutes.
                let wait = (10_000i64 << (job.attempts - 1).clamp(0, 6)).min(600_000);
                Timestamp::from_millis(Timestamp::now().millis() + wait)
            });
            tracing::warn!(%session_id, kind = job.kind.as_str(), %error, attempt = job.attempts, will_retry = retry.is_some(), "job failed");
            if retry.is_none() && job.kind == JobKind::TestRun {
                crate::testrun::give_up(state, job, &error).await;
            }
            state.store.fail_job(job, worker, &error, retry).await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(%session_id, error = %e, "recording a job's outcome");
    }
}

/// Until when a grading job waits for the counselor's call record (None: grade now).
async fn call_record_wait(state: &AppState, job: &Job) -> Result<Option<Timestamp>, ApiError> {
    let session = job_session(state, job).await?;
    let detail = state.store.session_detail(&session).await?;
    evaluation::awaiting_call_record(state, job.account_id, &detail).await
}

/// An evaluation's or analysis's error as a job outcome.
fn api_outcome(e: ApiError, has_llm: bool) -> Outcome {
    match e {
        // Nothing to grade (no counselor turns) or the session is gone: done, with the reason.
        e @ (ApiError::Validation(_) | ApiError::NotFound(_)) => Outcome::Done(Some(e.to_string())),
        // No AI provider configured: retrying cannot help until a restart with one.
        e @ ApiError::Unavailable(_) if !has_llm => Outcome::Failed { error: e.to_string(), retry: false },
        e => Outcome::Failed { error: e.to_string(), retry: true },
    }
}

/// Sends a `notify_flag` job's e-mail.
async fn notify(state: &AppState, job: &Job) -> Outcome {
    let Some(flag_id) = job.subject else {
        return Outcome::Failed { error: "a notify_flag job without its flag".into(), retry: false };
    };
    let notice = match notify::flag_notice(&state.store, job.account_id, flag_id.into()).await {
        Ok(notice) => notice,
        Err(store::Error::NotFound(what)) => return Outcome::Done(Some(format!("the {what} is gone"))),
        Err(e) => return Outcome::Failed { error: e.to_string(), retry: true },
    };
    match notify::notify_flag(&state.store, state.mailer.as_ref(), &notice).await {
        Ok(Notified::Sent { .. }) => Outcome::Done(None),
        Ok(Notified::NoMailer) => Outcome::Done(Some("SMTP_URL not set".into())),
        Ok(Notified::NoRecipients) => Outcome::Done(Some("no active supervisor or admin".into())),
        Err(e) => Outcome::Failed { error: e.to_string(), retry: true },
    }
}

/// Voice housekeeping, every 30 s: the sweeps, and once an hour the recording retention; each
/// account's retention every `RETENTION_PURGE_SECS` (an hour by default). Returns when `stop` is
/// cancelled, between rounds (a round in progress finishes).
pub async fn housekeeping(state: AppState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    let mut purge = tokio::time::interval(Duration::from_secs(u64::from(state.config.voice.retention_purge_secs)));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                sweep(&state).await;
                if n.is_multiple_of(120) {
                    purge_recordings(&state).await;
                }
                n += 1;
            }
            _ = purge.tick() => purge_expired(&state).await,
            () = stop.cancelled() => return,
        }
    }
}

/// Closes never-joined voice sessions and completes calls whose agent vanished.
pub async fn sweep(state: &AppState) {
    let v = &state.config.voice;
    // A joined call outlives its maximum only when its agent died without ending it.
    let max_live = (v.max_duration_ms + 10 * 60_000) as i64;
    match state.store.sweep_voice_sessions(v.join_timeout_ms as i64, max_live).await {
        Ok((0, 0)) => {}
        Ok((unjoined, failed)) => tracing::info!(unjoined, failed, "closed voice sessions nobody ended"),
        Err(e) => tracing::warn!(error = %e, "sweeping voice sessions"),
    }
}

/// Deletes recordings past `RECORDINGS_RETENTION_DAYS` (rows, then files), and files in the
/// directory no row names that are older than a day (their session was deleted, or a purge
/// stopped between the row and the file).
pub async fn purge_recordings(state: &AppState) {
    let v = &state.config.voice;
    let before = Timestamp::now().millis() - i64::from(v.recordings_retention_days) * 86_400_000;
    let files = match state.store.purge_recordings(Timestamp::from_millis(before)).await {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(error = %e, "purging recordings");
            return;
        }
    };
    for f in &files {
        remove(&v.recordings_dir.join(f)).await;
    }
    if !files.is_empty() {
        tracing::info!(deleted = files.len(), "recordings past their retention deleted");
    }
    let Ok(mut dir) = tokio::fs::read_dir(&v.recordings_dir).await else { return };
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
    let mut candidates = Vec::new();
    while let Ok(Some(entry)) = dir.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = entry.metadata().await.ok().and_then(|m| m.modified().ok()).is_some_and(|t| t < day_ago);
        if old && name.ends_with(".ogg") {
            candidates.push(name);
        }
    }
    if candidates.is_empty() {
        return;
    }
    match state.store.recording_files(&candidates).await {
        Ok(known) => {
            for orphan in candidates.iter().filter(|c| !known.contains(c)) {
                remove(&v.recordings_dir.join(orphan)).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing recording files"),
    }
}

/// Purges what each account's retention no longer keeps (transcripts, evaluations, audit records).
pub async fn purge_expired(state: &AppState) {
    match state.store.purge_expired(Timestamp::now()).await {
        Ok(done) => {
            for (account_id, p) in done {
                tracing::info!(%account_id, transcript_turns = p.transcript_turns, evaluations = p.evaluations,
                    audit_events = p.audit_events, "records past the account's retention purged");
            }
        }
        Err(e) => tracing::warn!(error = %e, "purging records past their retention"),
    }
}

async fn remove(path: &std::path::Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, path = %path.display(), "deleting a recording file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_back_off_while_the_database_fails_and_recover_at_once() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let waits: Vec<u64> = (0..10).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(waits, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
        assert!(b.succeeded(), "it had been failing");
        assert!(!b.succeeded(), "and now it is not");
        assert_eq!(b.failed(), Duration::from_millis(500), "a new outage starts at the usual pace");
        // Many failures never overflow.
        let mut b = Backoff::new(Duration::from_secs(1));
        for _ in 0..100 {
            assert!(b.failed() <= Duration::from_secs(60));
        }
    }
}
