//! `serve`'s voice agent in its own process: the parent (the admin service) runs
//! `proto-trainer agent --supervised` as a child, restarts it with back-off whenever it dies
//! (a crash, an abort, the OOM killer), logging why, and on shutdown forwards SIGTERM and waits
//! for its calls to drain before the admin service stops. So a room that crashes the agent costs
//! the calls of that process, never the admin API, and a crash of the admin service costs no
//! call: the child writes turns straight to the database, not through its parent.
//!
//! The two are tied by a socket pair passed as the child's standard input (the *lifeline*):
//! - the child writes one byte on it whenever it queued a job (a call's grading), so the parent's
//!   job workers start at once instead of at their next poll, as they did in one process;
//! - the parent's end closes when the parent dies, however it dies (the kernel closes it, even
//!   after SIGKILL), and the child then takes no new call but lets its running calls go on to
//!   their natural end, storing every turn, and exits (a restarted `serve` starts a new agent,
//!   which takes the new calls meanwhile).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// The first restart waits this long; each quick death doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long before dying counts as healthy: the next restart is quick again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What to run as the child, and how long its drain may take once told to stop.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
    /// SIGTERM first; SIGKILL this long after (the admin's sweep then completes its calls).
    pub drain_within: Duration,
}

impl ChildSpec {
    /// This binary as `proto-trainer agent --supervised`, with the parent's environment.
    pub fn agent(drain_within: Duration) -> anyhow::Result<ChildSpec> {
        let program = std::env::current_exe().context("finding this binary to run the voice agent")?;
        Ok(ChildSpec { program, args: vec!["agent".into(), "--supervised".into()], drain_within })
    }
}

/// How one run of the child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Stopped by us (SIGTERM, drained) with this status.
    Stopped(Option<i32>),
    /// Did not drain within `drain_within`: killed.
    KilledAfterDrain,
    /// Died on its own: the reason in words.
    Died(String),
    /// Could not be started.
    SpawnFailed(String),
}

/// Runs the child until `stop` turns true, restarting it whenever it dies. `on_wake` is called
/// for every wake byte the child sends (the admin service passes `Store::wake_jobs`). Answers
/// every run's end, in order (for logs and tests).
pub async fn supervise(spec: ChildSpec, on_wake: impl Fn() + Send, mut stop: watch::Receiver<bool>) -> Vec<Exit> {
    let mut exits = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stop.borrow() {
            return exits;
        }
        let started = Instant::now();
        let exit = run_once(&spec, &on_wake, &mut stop).await;
        let stopping = matches!(exit, Exit::Stopped(_) | Exit::KilledAfterDrain);
        exits.push(exit);
        if stopping {
            return exits;
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        tracing::warn!(restart_in_ms = backoff.as_millis() as u64, "restarting the voice agent process");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return exits,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn run_once(spec: &ChildSpec, on_wake: &(impl Fn() + Send), stop: &mut watch::Receiver<bool>) -> Exit {
    let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return spawn_failed(format!("socket pair: {e}")),
    };
    let spawned = tokio::process::Command::new(&spec.program)
        .args(&spec.args)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        // Not killed with the parent: an orphan drains its calls (see the module docs).
        .kill_on_drop(false)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return spawn_failed(format!("{}: {e}", spec.program.display())),
    };
    let pid = child.id();
    tracing::info!(pid, "voice agent process started");
    let lifeline = ours.set_nonblocking(true).and_then(|()| tokio::net::UnixStream::from_std(ours));
    let mut lifeline = match lifeline {
        Ok(l) => Some(l),
        Err(e) => {
            // Without it the child only misses its wake-ups (grading waits for the poll).
            tracing::warn!(error = %e, "voice agent lifeline unusable");
            None
        }
    };
    let mut buf = [0u8; 64];
    let status = 'run: loop {
        let read = async {
            match lifeline.as_mut() {
                Some(l) => l.read(&mut buf).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => break Some(status),
            n = read => match n {
                Ok(n) if n > 0 => on_wake(),
                // The child closed its end: it is exiting; `wait` tells how.
                _ => lifeline = None,
            },
            _ = stop.wait_for(|s| *s) => break 'run None,
        }
    };
    let Some(status) = status else { return stop_child(child, pid, spec.drain_within).await };
    match status {
        Ok(status) => {
            let reason = describe(status);
            tracing::error!(pid, %reason, "the voice agent process died; its calls end (the sweep completes them)");
            Exit::Died(reason)
        }
        Err(e) => {
            tracing::error!(pid, error = %e, "the voice agent process could not be waited for");
            Exit::Died(e.to_string())
        }
    }
}

fn spawn_failed(why: String) -> Exit {
    tracing::error!(error = %why, "the voice agent process could not be started");
    Exit::SpawnFailed(why)
}

/// SIGTERM (the agent ends its calls as `agentShutdown` through the store), then waits; SIGKILL
/// after `within`.
async fn stop_child(mut child: tokio::process::Child, pid: Option<u32>, within: Duration) -> Exit {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    tracing::info!(pid, "voice agent process told to stop (SIGTERM); waiting for its calls to end");
    match tokio::time::timeout(within, child.wait()).await {
        Ok(Ok(status)) => {
            tracing::info!(pid, status = %describe(status), "voice agent process stopped");
            Exit::Stopped(status.code())
        }
        Ok(Err(e)) => {
            tracing::error!(pid, error = %e, "the voice agent process could not be waited for");
            Exit::Stopped(None)
        }
        Err(_) => {
            tracing::warn!(
                pid,
                within_s = within.as_secs(),
                "voice agent process did not drain in time: killed; the sweep completes its calls"
            );
            let _ = child.kill().await;
            Exit::KilledAfterDrain
        }
    }
}

/// Why a process ended, in words an operator can act on.
pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    let Some(signal) = status.signal() else { return status.to_string() };
    let name =
        nix::sys::signal::Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.to_string());
    let why = match signal {
        9 => " (the kernel's OOM killer, or an operator)",
        6 => " (an abort: a failed allocation or a panic while panicking)",
        11 | 7 | 4 => " (a crash)",
        15 | 2 => " (told to stop by someone else)",
        _ => "",
    };
    let core = if status.core_dumped() { ", core dumped" } else { "" };
    format!("killed by {name}{why}{core}")
}

/// The child's end of the lifeline: its standard input, a socket from `serve`.
#[derive(Debug)]
pub struct Lifeline {
    read: tokio::sync::Mutex<tokio::net::unix::OwnedReadHalf>,
    write: tokio::sync::Mutex<tokio::net::unix::OwnedWriteHalf>,
}

impl Lifeline {
    /// Standard input as the lifeline; an error unless it is a socket (`agent --supervised` is
    /// for `serve` only).
    pub fn from_stdin() -> anyhow::Result<Lifeline> {
        let fd = std::io::stdin().as_fd().try_clone_to_owned().context("standard input")?;
        let socket = std::os::unix::net::UnixStream::from(fd);
        socket
            .local_addr()
            .context("`agent --supervised` is run by `proto-trainer serve` (standard input is not its socket)")?;
        Self::from_socket(socket)
    }

    fn from_socket(socket: std::os::unix::net::UnixStream) -> anyhow::Result<Lifeline> {
        socket.set_nonblocking(true)?;
        let (read, write) = tokio::net::UnixStream::from_std(socket)?.into_split();
        Ok(Lifeline { read: tokio::sync::Mutex::new(read), write: tokio::sync::Mutex::new(write) })
    }

    /// Tells the parent a job was queued. A parent already gone is not an error.
    pub async fn wake(&self) {
        let _ = self.write.lock().await.write_all(b"w").await;
    }

    /// Resolves when the parent is gone (its end closed).
    pub async fn parent_gone(&self) {
        let mut buf = [0u8; 16];
        let mut read = self.read.lock().await;
        loop {
            match read.read(&mut buf).await {
                Ok(n) if n > 0 => continue,
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn sh(script: &str, drain_within: Duration) -> ChildSpec {
        ChildSpec { program: "/bin/sh".into(), args: vec!["-c".into(), script.into()], drain_within }
    }

    #[tokio::test]
    async fn a_child_that_dies_is_restarted_with_back_off_and_its_death_described() {
        let (tx, rx) = watch::channel(false);
        let spec = sh("kill -9 $$", Duration::from_secs(5));
        let started = Instant::now();
        let run = tokio::spawn(supervise(spec, || {}, rx));
        // Deaths at about 0, 0.5, 1.5 s, the next at 3.5 s (back-off 0.5 s, 1 s, 2 s, ...): the
        // stop at 2.5 s is a second from either side.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        tx.send(true).unwrap();
        let exits = run.await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(3_300), "the stop waits for no back-off");
        assert_eq!(exits.len(), 3, "{exits:?}");
        for exit in exits {
            let Exit::Died(reason) = exit else { panic!("{exit:?}") };
            assert!(reason.contains("killed by SIGKILL (the kernel's OOM killer"), "{reason}");
        }
    }

    #[tokio::test]
    async fn stop_forwards_sigterm_and_waits_for_the_drain() {
        let (tx, rx) = watch::channel(false);
        // Drains for 0.3 s after SIGTERM, then exits 0.
        let spec = sh("trap 'sleep 0.3; exit 0' TERM; while :; do sleep 0.05; done", Duration::from_secs(5));
        let run = tokio::spawn(supervise(spec, || {}, rx));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let asked = Instant::now();
        tx.send(true).unwrap();
        let exits = run.await.unwrap();
        assert_eq!(exits, vec![Exit::Stopped(Some(0))]);
        assert!(asked.elapsed() >= Duration::from_millis(250), "returned before the drain: {:?}", asked.elapsed());
    }

    #[tokio::test]
    async fn a_child_that_does_not_drain_is_killed() {
        let (tx, rx) = watch::channel(false);
        let spec = sh("trap '' TERM; while :; do sleep 0.05; done", Duration::from_millis(400));
        let run = tokio::spawn(supervise(spec, || {}, rx));
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send(true).unwrap();
        assert_eq!(run.await.unwrap(), vec![Exit::KilledAfterDrain]);
    }

    #[tokio::test]
    async fn wake_bytes_reach_the_parent() {
        let (tx, rx) = watch::channel(false);
        let wakes = Arc::new(AtomicUsize::new(0));
        // Three wake bytes on the lifeline (stdin, a socket), then it waits.
        let spec = sh("printf www >&0; while :; do sleep 0.05; done", Duration::from_secs(5));
        let counted = wakes.clone();
        let run = tokio::spawn(supervise(
            spec,
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
            },
            rx,
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        while wakes.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(wakes.load(Ordering::SeqCst) >= 1, "no wake-up reached the parent");
        tx.send(true).unwrap();
        // SIGTERM kills `sh`: stopped, not restarted.
        let exits = run.await.unwrap();
        assert_eq!(exits.len(), 1, "{exits:?}");
        assert!(matches!(exits[0], Exit::Stopped(_)), "{exits:?}");
    }

    #[tokio::test]
    async fn the_child_wakes_the_parent_and_sees_it_go() {
        let (parent, child) = std::os::unix::net::UnixStream::pair().unwrap();
        let lifeline = Arc::new(Lifeline::from_socket(child).unwrap());
        lifeline.wake().await;
        parent.set_nonblocking(false).unwrap();
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut (&parent), &mut byte).unwrap();
        assert_eq!(&byte, b"w");
        let watching = lifeline.clone();
        let gone = tokio::spawn(async move { watching.parent_gone().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!gone.is_finished(), "the parent is still there");
        drop(parent);
        tokio::time::timeout(Duration::from_secs(2), gone).await.expect("parent_gone after its end closed").unwrap();
        // Waking a parent that is gone is no error.
        lifeline.wake().await;
    }

    #[test]
    fn exit_statuses_are_described() {
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with status 3");
        assert!(describe(ExitStatus::from_raw(6)).contains("SIGABRT"));
        assert!(describe(ExitStatus::from_raw(11)).contains("a crash"));
    }
}
