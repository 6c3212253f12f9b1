//! The agent worker protocol on LiveKit's `/agent` WebSocket, as a sans-IO state machine.
//!
//! The worker registers under an agent name (explicit dispatch only), answers availability
//! requests, turns assignments into jobs for the shell to run, reports job status and its load,
//! and drains: once asked to stop it declines new jobs, reports FULL, and is done when its last
//! job has ended. The shell (`worker_shell`) owns the socket, the clock and the job tasks.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use livekit_protocol as proto;
use proto::{server_message, worker_message};
use tracing::{debug, info, warn};

/// Default agent name; tokens dispatch it with `RoomAgentDispatch{agent_name}`.
pub const DEFAULT_AGENT_NAME: &str = "proto-trainer";

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub agent_name: String,
    pub version: String,
    /// Jobs this worker runs at once; at this many it reports FULL and declines.
    pub max_jobs: usize,
    /// How often load is reported even when nothing changed (the server's view goes stale).
    pub status_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            agent_name: DEFAULT_AGENT_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            max_jobs: 10,
            status_interval: Duration::from_secs(5),
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerOutput {
    /// Send on the `/agent` socket (boxed: the message dwarfs the other variants).
    Send(Box<proto::WorkerMessage>),
    /// Join the job's room with `token` (already of kind agent) and run the job.
    StartJob { job: Box<proto::Job>, url: Option<String>, token: String },
    /// The server terminated this job: leave its room.
    StopJob { job_id: String },
}

/// The worker's protocol state.
pub struct Worker {
    config: WorkerConfig,
    worker_id: Option<String>,
    /// Jobs we said yes to and whose assignment has not come yet; they count toward load so
    /// a burst of availability requests cannot overbook us.
    offered: HashMap<String, Instant>,
    running: HashMap<String, proto::Job>,
    draining: bool,
    last_reported: Option<(proto::WorkerStatus, usize)>,
    next_status: Instant,
    outputs: VecDeque<WorkerOutput>,
}

/// How long an availability "yes" holds a slot; the server gives up after 10 s.
const OFFER_TTL: Duration = Duration::from_secs(15);

impl Worker {
    /// A worker that registers as soon as the socket is up.
    pub fn new(now: Instant, config: WorkerConfig) -> Self {
        let mut worker = Self {
            config,
            worker_id: None,
            offered: HashMap::new(),
            running: HashMap::new(),
            draining: false,
            last_reported: None,
            next_status: now,
            outputs: VecDeque::new(),
        };
        worker.send(worker_message::Message::Register(worker.register_request()));
        worker
    }

    fn register_request(&self) -> proto::RegisterWorkerRequest {
        proto::RegisterWorkerRequest {
            r#type: proto::JobType::JtRoom as i32,
            agent_name: self.config.agent_name.clone(),
            version: self.config.version.clone(),
            // None: the server's default grants (publish, subscribe, data, own metadata).
            allowed_permissions: None,
            ..Default::default()
        }
    }

    pub fn worker_id(&self) -> Option<&str> {
        self.worker_id.as_deref()
    }

    /// The calls this worker takes at once (`AGENT_MAX_JOBS`).
    pub fn max_jobs(&self) -> usize {
        self.config.max_jobs
    }

    pub fn job_count(&self) -> usize {
        self.running.len()
    }

    /// Fraction of capacity in use, as reported to the server.
    pub fn load(&self) -> f32 {
        let used = self.running.len() + self.offered.len();
        (used as f32 / self.config.max_jobs.max(1) as f32).min(1.0)
    }

    fn status(&self) -> proto::WorkerStatus {
        if self.draining || self.running.len() + self.offered.len() >= self.config.max_jobs {
            proto::WorkerStatus::WsFull
        } else {
            proto::WorkerStatus::WsAvailable
        }
    }

    /// Draining and no job left: the shell may exit.
    pub fn is_drained(&self) -> bool {
        self.draining && self.running.is_empty() && self.offered.is_empty()
    }

    pub fn poll_output(&mut self) -> Option<WorkerOutput> {
        self.outputs.pop_front()
    }

    /// When [`Worker::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Instant {
        self.next_status
    }

    pub fn handle_message(&mut self, now: Instant, message: proto::ServerMessage) {
        use server_message::Message as M;
        match message.message {
            Some(M::Register(r)) => {
                info!(worker_id = %r.worker_id, server = ?r.server_info.map(|s| s.version),
                    "worker registered");
                self.worker_id = Some(r.worker_id);
                self.report_status(now, true);
            }
            Some(M::Availability(request)) => self.answer_availability(now, request),
            Some(M::Assignment(assignment)) => self.start_job(now, assignment),
            Some(M::Termination(t)) => {
                if self.running.contains_key(&t.job_id) {
                    info!(job_id = %t.job_id, "job terminated by the server");
                    self.outputs.push_back(WorkerOutput::StopJob { job_id: t.job_id });
                }
            }
            Some(M::Pong(_)) => {}
            Some(other) => debug!(message = ?other, "server message not handled"),
            None => warn!("empty server message"),
        }
    }

    /// Periodic duties: load report, expiry of availability answers never followed up.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.offered.retain(|_, offered_at| now.duration_since(*offered_at) < OFFER_TTL);
        if now >= self.next_status {
            self.report_status(now, true);
        }
    }

    /// A job's room session ended; `error` says why if it failed.
    pub fn job_ended(&mut self, now: Instant, job_id: &str, error: Option<String>) {
        if self.running.remove(job_id).is_none() {
            return;
        }
        let status = if error.is_some() { proto::JobStatus::JsFailed } else { proto::JobStatus::JsSuccess };
        self.send(worker_message::Message::UpdateJob(proto::UpdateJobStatus {
            job_id: job_id.to_owned(),
            status: status as i32,
            error: error.unwrap_or_default(),
        }));
        self.report_status(now, false);
    }

    /// The `/agent` connection was re-established: register again. Running jobs go on (they
    /// live in their rooms, not on this connection); unanswered availability offers are void.
    pub fn reconnected(&mut self, now: Instant) {
        self.worker_id = None;
        self.last_reported = None;
        self.offered.clear();
        self.next_status = now;
        self.send(worker_message::Message::Register(self.register_request()));
    }

    /// Stop taking jobs; running ones finish.
    pub fn drain(&mut self, now: Instant) {
        if !self.draining {
            info!(jobs = self.running.len(), "draining");
            self.draining = true;
            self.report_status(now, false);
        }
    }

    fn answer_availability(&mut self, now: Instant, request: proto::AvailabilityRequest) {
        let Some(job) = request.job else {
            warn!("availability request without a job");
            return;
        };
        let available = self.status() == proto::WorkerStatus::WsAvailable;
        if available {
            self.offered.insert(job.id.clone(), now);
        }
        debug!(job_id = %job.id, available, "availability");
        self.send(worker_message::Message::Availability(proto::AvailabilityResponse {
            job_id: job.id.clone(),
            available,
            // One identity per job, so two jobs in one room cannot collide.
            participant_identity: format!("agent-{}", job.id),
            participant_name: self.config.agent_name.clone(),
            ..Default::default()
        }));
        self.report_status(now, false);
    }

    fn start_job(&mut self, now: Instant, assignment: proto::JobAssignment) {
        let Some(job) = assignment.job else {
            warn!("assignment without a job");
            return;
        };
        self.offered.remove(&job.id);
        info!(job_id = %job.id, room = ?job.room.as_ref().map(|r| &r.name), "job assigned");
        self.send(worker_message::Message::UpdateJob(proto::UpdateJobStatus {
            job_id: job.id.clone(),
            status: proto::JobStatus::JsRunning as i32,
            error: String::new(),
        }));
        self.running.insert(job.id.clone(), job.clone());
        self.outputs.push_back(WorkerOutput::StartJob {
            job: Box::new(job),
            url: assignment.url,
            token: assignment.token,
        });
        self.report_status(now, false);
    }

    /// Sends `UpdateWorkerStatus` when status or job count changed, or when `periodic`.
    fn report_status(&mut self, now: Instant, periodic: bool) {
        if self.worker_id.is_none() {
            return; // The server ignores status before registration.
        }
        let status = self.status();
        let current = (status, self.running.len());
        if !periodic && self.last_reported == Some(current) {
            return;
        }
        // A change between available and full is an operator's question ("why did this worker
        // get no calls?"); logged once per change, not per periodic report.
        if self.last_reported.map(|(s, _)| s) != Some(status) {
            info!(status = ?status, load = self.load(), jobs = self.running.len(), draining = self.draining,
                "worker status reported");
        }
        self.last_reported = Some(current);
        self.next_status = now + self.config.status_interval;
        let load = self.load();
        self.send(worker_message::Message::UpdateWorker(proto::UpdateWorkerStatus {
            status: Some(status as i32),
            load,
            job_count: self.running.len() as u32,
            ..Default::default()
        }));
    }

    fn send(&mut self, message: worker_message::Message) {
        self.outputs.push_back(WorkerOutput::Send(Box::new(proto::WorkerMessage { message: Some(message) })));
    }
}

// Hand-written: the inner codec, socket and task handles have no useful Debug, and a token must
// never be printed.
impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("worker_id", &self.worker_id)
            .field("offered", &self.offered.len())
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(w: &mut Worker) -> Vec<WorkerOutput> {
        std::iter::from_fn(|| w.poll_output()).collect()
    }

    fn sent(outputs: &[WorkerOutput]) -> Vec<&worker_message::Message> {
        outputs
            .iter()
            .filter_map(|o| match o {
                WorkerOutput::Send(m) => m.message.as_ref(),
                _ => None,
            })
            .collect()
    }

    fn server(m: server_message::Message) -> proto::ServerMessage {
        proto::ServerMessage { message: Some(m) }
    }

    fn availability(id: &str) -> proto::ServerMessage {
        server(server_message::Message::Availability(proto::AvailabilityRequest {
            job: Some(proto::Job { id: id.into(), ..Default::default() }),
            resuming: false,
        }))
    }

    fn assignment(id: &str) -> proto::ServerMessage {
        server(server_message::Message::Assignment(proto::JobAssignment {
            job: Some(proto::Job { id: id.into(), ..Default::default() }),
            url: None,
            token: format!("token-{id}"),
        }))
    }

    fn registered(max_jobs: usize) -> (Worker, Instant) {
        let now = Instant::now();
        let mut w = Worker::new(now, WorkerConfig { max_jobs, ..Default::default() });
        let out = drain(&mut w);
        let [worker_message::Message::Register(r)] = sent(&out)[..] else {
            panic!("register first: {out:?}");
        };
        assert_eq!(r.agent_name, DEFAULT_AGENT_NAME);
        assert_eq!(r.r#type, proto::JobType::JtRoom as i32);
        w.handle_message(
            now,
            server(server_message::Message::Register(proto::RegisterWorkerResponse {
                worker_id: "AW_1".into(),
                ..Default::default()
            })),
        );
        drain(&mut w);
        (w, now)
    }

    fn last_status(outputs: &[WorkerOutput]) -> Option<proto::UpdateWorkerStatus> {
        sent(outputs).into_iter().rev().find_map(|m| match m {
            worker_message::Message::UpdateWorker(u) => Some(*u),
            _ => None,
        })
    }

    #[test]
    fn accepts_runs_and_completes_a_job() {
        let (mut w, now) = registered(2);
        w.handle_message(now, availability("J1"));
        let out = drain(&mut w);
        let worker_message::Message::Availability(a) = sent(&out)[0] else {
            panic!("availability answer");
        };
        assert!(a.available);
        assert_eq!(a.participant_identity, "agent-J1");

        w.handle_message(now, assignment("J1"));
        let out = drain(&mut w);
        assert!(out.iter().any(|o| matches!(o,
            WorkerOutput::StartJob { token, .. } if token == "token-J1")));
        assert!(sent(&out).iter().any(|m| matches!(m,
            worker_message::Message::UpdateJob(u) if u.status == proto::JobStatus::JsRunning as i32)));
        assert_eq!(last_status(&out).unwrap().job_count, 1);

        w.job_ended(now, "J1", None);
        let out = drain(&mut w);
        assert!(sent(&out).iter().any(|m| matches!(m,
            worker_message::Message::UpdateJob(u) if u.status == proto::JobStatus::JsSuccess as i32)));
        assert_eq!(w.job_count(), 0);
    }

    #[test]
    fn goes_full_at_capacity_and_declines() {
        let (mut w, now) = registered(1);
        w.handle_message(now, availability("J1"));
        w.handle_message(now, assignment("J1"));
        let out = drain(&mut w);
        let status = last_status(&out).unwrap();
        assert_eq!(status.status, Some(proto::WorkerStatus::WsFull as i32));
        assert_eq!(status.load, 1.0);

        w.handle_message(now, availability("J2"));
        let out = drain(&mut w);
        let worker_message::Message::Availability(a) = sent(&out)[0] else {
            panic!("availability answer");
        };
        assert!(!a.available);
    }

    #[test]
    fn reports_load_periodically() {
        let (mut w, now) = registered(4);
        let later = now + Duration::from_secs(6);
        assert!(w.poll_timeout() <= later);
        w.handle_timeout(later);
        let status = last_status(&drain(&mut w)).unwrap();
        assert_eq!(status.status, Some(proto::WorkerStatus::WsAvailable as i32));
        assert_eq!(status.load, 0.0);
    }

    #[test]
    fn drains_running_jobs_and_takes_no_new_ones() {
        let (mut w, now) = registered(4);
        w.handle_message(now, availability("J1"));
        w.handle_message(now, assignment("J1"));
        drain(&mut w);

        w.drain(now);
        let status = last_status(&drain(&mut w)).unwrap();
        assert_eq!(status.status, Some(proto::WorkerStatus::WsFull as i32));
        assert!(!w.is_drained(), "J1 still running");

        w.handle_message(now, availability("J2"));
        let out = drain(&mut w);
        let worker_message::Message::Availability(a) = sent(&out)[0] else {
            panic!("availability answer");
        };
        assert!(!a.available);

        w.job_ended(now, "J1", Some("boom".into()));
        let out = drain(&mut w);
        assert!(sent(&out).iter().any(|m| matches!(m,
            worker_message::Message::UpdateJob(u)
                if u.status == proto::JobStatus::JsFailed as i32 && u.error == "boom")));
        assert!(w.is_drained());
    }

    #[test]
    fn reregisters_after_reconnect_and_keeps_running_jobs() {
        let (mut w, now) = registered(4);
        w.handle_message(now, availability("J1"));
        w.handle_message(now, assignment("J1"));
        w.handle_message(now, availability("J2")); // offered, never assigned
        drain(&mut w);

        w.reconnected(now);
        let out = drain(&mut w);
        assert!(matches!(sent(&out)[..], [worker_message::Message::Register(_)]), "only Register: {out:?}");
        assert_eq!(w.worker_id(), None);
        w.handle_message(
            now,
            server(server_message::Message::Register(proto::RegisterWorkerResponse {
                worker_id: "AW_2".into(),
                ..Default::default()
            })),
        );
        let status = last_status(&drain(&mut w)).unwrap();
        assert_eq!(status.job_count, 1, "J1 still runs");
        assert_eq!(status.load, 0.25, "J2's offer is void");
    }

    #[test]
    fn termination_stops_only_known_jobs() {
        let (mut w, now) = registered(4);
        w.handle_message(now, availability("J1"));
        w.handle_message(now, assignment("J1"));
        drain(&mut w);
        let terminate =
            |id: &str| server(server_message::Message::Termination(proto::JobTermination { job_id: id.into() }));
        w.handle_message(now, terminate("nope"));
        assert!(drain(&mut w).is_empty());
        w.handle_message(now, terminate("J1"));
        assert_eq!(drain(&mut w), vec![WorkerOutput::StopJob { job_id: "J1".into() }]);
    }
}
