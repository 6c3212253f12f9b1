//! A room participant: the thin tokio shell around [`Session`].
//!
//! It owns what the session must not: the signal WebSocket (`livekit-signaling`, which also does
//! the ping/pong keep-alive), one UDP socket per peer connection and the clock. One task runs the
//! loop: drain the session's outputs, then wait for the first of a datagram, a signal message, an
//! application command or the session's next timeout, and feed that one input back.
//!
//! When the signal socket drops, it resumes: `SignalClient::restart` reconnects with
//! `reconnect=1`, then the session ICE-restarts the publisher if needed and sends `SyncState`.
//! Media keeps flowing over the peer connections while that happens. A resume the server refuses,
//! or that keeps failing, or a server `leave` with action RECONNECT, falls back to a full rejoin:
//! a new signal session and a new [`Session`] on the same sockets, republishing our track; the
//! application is told with [`SessionEvent::Rejoined`].
//! In a dispatched job the job usually ends instead: livekit-server terminates the job of an agent
//! participant it drops ("agent worker left the room"), once it has linked the two (v1.13: about
//! 5 s after the dispatch), and the worker stops the job.
//!
//! Leaving waits (at most [`LEAVE_CONFIRM_WAIT`]) for the server to confirm: its own `leave`
//! back, or the socket closed. Closing the socket right after sending the request raced the
//! server's handling of it, and the room then saw us go only when our peer connection timed out.
//!
//! The signal protocol is 17, not `livekit-signaling`'s default 18: 18 pre-negotiates the data
//! channels (fixed SCTP ids), while we open them in-band (DCEP) as protocol 17 clients do.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livekit_protocol as proto;
use livekit_signaling::{SignalClient, SignalError, SignalEvent, SignalOptions, SignalResult};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::session::{PeerRole, Session, SessionConfig, SessionError, SessionEvent, SessionOutput};

/// The signal protocol version we implement (two peer connections, `TrickleRequest` targets,
/// `AddTrackRequest` before the offer).
pub const PROTOCOL_VERSION: u32 = 17;

/// Signal reconnects tried before falling back to a full rejoin (about 5 s with the backoff).
const MAX_RESUME_ATTEMPTS: u32 = 6;
/// Full rejoins tried before the participant gives up.
const MAX_REJOIN_ATTEMPTS: u32 = 3;
/// How long a leaving participant waits for the server to confirm its leave (its own `Leave`
/// back, or closing the socket) before it closes the socket anyway.
const LEAVE_CONFIRM_WAIT: Duration = Duration::from_secs(2);
/// Room events queued for the application at most (audio frames, data packets, updates).
pub const EVENT_QUEUE: usize = 256;
/// Slots of the event queue a data packet may not take: a flood of data packets is dropped
/// before it can crowd out the counselor's audio (a frame every 20 ms).
const DATA_HEADROOM: usize = EVENT_QUEUE / 4;

#[derive(Debug, Error)]
pub enum ParticipantError {
    #[error("signal: {0}")]
    Signal(#[from] SignalError),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("the participant task has stopped")]
    Stopped,
}

/// How to join.
#[derive(Debug, Clone)]
pub struct ParticipantConfig {
    /// `ws://host:port` of the LiveKit server.
    pub url: String,
    /// Access token with a room-join grant for one room.
    pub token: String,
    /// Local address to gather the UDP host candidates on.
    pub bind_ip: IpAddr,
    /// Publish an audio track fed by [`Participant::publish_audio`].
    pub publish_audio: bool,
    pub track_name: String,
}

/// What the application asks of a running participant.
#[derive(Debug)]
pub enum Command {
    /// One 20 ms frame of 48 kHz mono PCM for our audio track.
    PublishAudio(Vec<i16>),
    /// One 20 ms Opus packet, already encoded (48 kHz), for our audio track. `sent`, when given,
    /// is told the moment the packet went to the socket (latency measurement).
    PublishOpus { packet: Vec<u8>, sent: Option<oneshot::Sender<Instant>> },
    /// A data packet on the reliable or lossy channel.
    SendData { packet: Box<proto::DataPacket>, reliable: bool },
    /// Replace our participant attributes (e.g. `lk.agent.state`).
    SetAttributes(HashMap<String, String>),
    /// Ask the server to simulate a fault on our session (tests of resume and rejoin).
    Simulate(proto::SimulateScenario),
    /// Leave the room and stop.
    Leave,
}

/// A joined participant. Dropping it (or [`Participant::leave`]) ends the session.
pub struct Participant {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<SessionEvent>,
    task: JoinHandle<Result<(), ParticipantError>>,
    /// Our participant sid and identity, from the join response.
    pub sid: String,
    pub identity: String,
    /// Who was in the room when we joined; later changes come as
    /// [`SessionEvent::Participants`].
    pub others: Vec<proto::ParticipantInfo>,
}

impl Participant {
    /// Connects the signal socket, joins the room and starts the session task.
    pub async fn connect(config: ParticipantConfig) -> Result<Self, ParticipantError> {
        let publisher_socket = UdpSocket::bind(SocketAddr::new(config.bind_ip, 0)).await?;
        let subscriber_socket = UdpSocket::bind(SocketAddr::new(config.bind_ip, 0)).await?;
        let sockets = Sockets { publisher: publisher_socket, subscriber: subscriber_socket };
        let link = join(&config, &sockets).await?;
        let me = link.join.participant.clone().unwrap_or_default();
        let others = link.join.other_participants.clone();

        // Commands carry real-time audio: a short queue, so a stalled loop shows as back-pressure
        // instead of a growing delay.
        let (command_tx, command_rx) = mpsc::channel(64);
        let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
        let task = tokio::spawn(run(config, link, sockets, command_rx, event_tx));
        Ok(Self { commands: command_tx, events: event_rx, task, sid: me.sid, identity: me.identity, others })
    }

    /// The next room event; `None` once the session has ended.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// Events received and not yet taken (at most [`EVENT_QUEUE`]).
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// A cloneable sender of commands, for feeding audio from another task.
    pub fn commands(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    pub async fn publish_audio(&self, pcm: Vec<i16>) -> Result<(), ParticipantError> {
        self.send(Command::PublishAudio(pcm)).await
    }

    pub async fn send(&self, command: Command) -> Result<(), ParticipantError> {
        self.commands.send(command).await.map_err(|_| ParticipantError::Stopped)
    }

    /// Leaves the room and waits for the session task to finish.
    pub async fn leave(self) -> Result<(), ParticipantError> {
        let _ = self.commands.send(Command::Leave).await;
        match self.task.await {
            Ok(result) => result,
            Err(_) => Err(ParticipantError::Stopped),
        }
    }
}

/// The two UDP sockets, one per peer connection; they outlive a full rejoin.
struct Sockets {
    publisher: UdpSocket,
    subscriber: UdpSocket,
}

/// One signalling session with the server and the room session built on it.
struct Link {
    signal: Arc<SignalClient>,
    events: mpsc::UnboundedReceiver<SignalEvent>,
    join: proto::JoinResponse,
    session: Session,
}

/// Connects the signal socket and builds a fresh session from the join response.
async fn join(config: &ParticipantConfig, sockets: &Sockets) -> Result<Link, ParticipantError> {
    let mut options = SignalOptions::default();
    options.protocol_version = PROTOCOL_VERSION;
    options.auto_subscribe = true;
    // Self-hosted server: there are no cloud regions to fail over to.
    options.region_failover = false;
    // Advertise the plain data-stream protocol and no compression: we do not yet decode inline
    // or deflated stream content, so peers must not send it.
    options.client_protocol = livekit_signaling::CLIENT_PROTOCOL_DEFAULT;
    options.client_capabilities = Vec::new();
    let (signal, join, events) = SignalClient::connect(&config.url, &config.token, options, None).await?;
    let me = join.participant.clone().unwrap_or_default();
    info!(sid = %me.sid, identity = %me.identity, room = ?join.room.as_ref().map(|r| &r.name),
        server = ?join.server_info.as_ref().map(|s| &s.version), "joined");
    let session = Session::new(
        Instant::now(),
        SessionConfig {
            publisher_addr: sockets.publisher.local_addr()?,
            subscriber_addr: sockets.subscriber.local_addr()?,
            publish_audio: config.publish_audio,
            track_name: config.track_name.clone(),
        },
        &join,
    )?;
    Ok(Link { signal: Arc::new(signal), events, join, session })
}

type ResumeFuture = Pin<Box<dyn Future<Output = SignalResult<proto::ReconnectResponse>> + Send>>;

/// A resume attempt after `delay`, owning its handle on the signal client.
fn resume_attempt(signal: &Arc<SignalClient>, delay: Duration) -> ResumeFuture {
    let signal = signal.clone();
    Box::pin(async move {
        tokio::time::sleep(delay).await;
        signal.restart(proto::ReconnectReason::RrSignalDisconnected).await
    })
}

/// What the loop does next about the signal link.
enum Recovery {
    /// Nothing wrong.
    None,
    /// Resume the session (same participant, same peer connections).
    Resume,
    /// Give the session up and join again as a new participant, republishing.
    Rejoin,
}

/// The session loop. Returns when we leave, the server removes us, or recovery fails.
async fn run(
    config: ParticipantConfig,
    mut link: Link,
    sockets: Sockets,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<SessionEvent>,
) -> Result<(), ParticipantError> {
    let publisher_addr = sockets.publisher.local_addr()?;
    let subscriber_addr = sockets.subscriber.local_addr()?;
    let mut publisher_buf = vec![0u8; 2000];
    let mut subscriber_buf = vec![0u8; 2000];
    // Set once we asked to leave: until then (bounded) we wait for the server to confirm.
    let mut leaving: Option<tokio::time::Instant> = None;
    // A resume in flight: the signal socket is being re-established (`SignalClient::restart`).
    // Media keeps flowing meanwhile; only signalling waits.
    let mut resume: Option<ResumeFuture> = None;
    // Signal requests made while a resume is in flight. The attempt holds the signal client's
    // state lock across its connect, and it only progresses while the loop below polls it, so
    // awaiting `SignalClient::send` (or `close`) meanwhile would wait for it forever.
    let mut held: Vec<proto::signal_request::Message> = Vec::new();
    let mut resume_attempts = 0u32;
    let mut confirm_resumed = false;
    let mut recovery = Recovery::None;
    // Told once the packet of the last `PublishOpus` has been sent (by the drain below).
    let mut sent_waiting: Option<oneshot::Sender<Instant>> = None;
    // Data packets dropped because the application was behind (logged now and then).
    let mut data_dropped = 0u64;

    loop {
        // Drain: everything the last input produced goes out before we wait again.
        while let Some(output) = link.session.poll_output() {
            match output {
                SessionOutput::Signal(message) if resume.is_some() => held.push(*message),
                SessionOutput::Signal(message) => link.signal.send(*message).await,
                SessionOutput::Transmit { role, destination, contents } => {
                    let socket = match role {
                        PeerRole::Publisher => &sockets.publisher,
                        PeerRole::Subscriber => &sockets.subscriber,
                    };
                    if let Err(e) = socket.send_to(&contents, destination).await {
                        debug!(?role, %destination, error = %e, "send failed");
                    }
                }
                SessionOutput::Event(SessionEvent::Left(leave)) => {
                    use proto::leave_request::Action;
                    info!(reason = leave.reason, action = leave.action, "server sent leave");
                    // While we are leaving, any leave from the server confirms ours.
                    match Action::try_from(leave.action) {
                        Ok(Action::Resume) if leaving.is_none() => recovery = Recovery::Resume,
                        Ok(Action::Reconnect) if leaving.is_none() => recovery = Recovery::Rejoin,
                        _ => {
                            // try_send: an application that is leaving no longer reads, and the
                            // end of the queue (None) tells it as well.
                            let _ = events.try_send(SessionEvent::Left(leave));
                            drop(resume.take());
                            link.signal.close().await;
                            return Ok(());
                        }
                    }
                }
                SessionOutput::Event(SessionEvent::Data(_)) if events.capacity() <= DATA_HEADROOM => {
                    data_dropped += 1;
                    if data_dropped.is_power_of_two() {
                        warn!(data_dropped, "data packets dropped: they arrive faster than the call takes them");
                    }
                }
                SessionOutput::Event(event) => {
                    // A full event queue means the application stopped reading; dropping events
                    // there is better than stalling the media loop.
                    if events.try_send(event).is_err() {
                        debug!("event queue full; event dropped");
                    }
                }
            }
        }
        if let Some(tx) = sent_waiting.take() {
            let _ = tx.send(Instant::now());
        }
        if let Some(deadline) = leaving
            && (resume.is_some() || tokio::time::Instant::now() >= deadline)
        {
            // Give up a resume in flight first: it holds the lock `close` needs. Our leave
            // request goes with it; the server drops a participant whose signal is gone anyway.
            if resume.is_some() {
                debug!("leaving during a resume: the leave request is not confirmed");
            } else {
                warn!("the server did not confirm our leave; closing the signal connection");
            }
            drop(resume.take());
            link.signal.close().await;
            return Ok(());
        }
        if confirm_resumed {
            // SyncState (and any ICE-restart offer) went out above; release what the signal
            // client held back while reconnecting.
            confirm_resumed = false;
            link.signal.set_reconnected().await;
        }
        match std::mem::replace(&mut recovery, Recovery::None) {
            Recovery::None => {}
            Recovery::Resume => {
                if resume.is_none() {
                    resume_attempts = 1;
                    resume = Some(resume_attempt(&link.signal, Duration::ZERO));
                }
            }
            Recovery::Rejoin => {
                resume = None;
                if !held.is_empty() {
                    debug!(requests = held.len(), "signal requests of the abandoned session dropped");
                    held.clear();
                }
                link.signal.close().await;
                link = rejoin(&config, &sockets).await?;
                let me = link.join.participant.clone().unwrap_or_default();
                let _ = events.send(SessionEvent::Rejoined { sid: me.sid, identity: me.identity }).await;
                continue;
            }
        }

        let deadline = tokio::time::Instant::from_std(link.session.poll_timeout());
        tokio::select! {
            received = sockets.publisher.recv_from(&mut publisher_buf) => {
                let (n, source) = received?;
                link.session.handle_datagram(Instant::now(), PeerRole::Publisher, source,
                    publisher_addr, &publisher_buf[..n])?;
            }
            received = sockets.subscriber.recv_from(&mut subscriber_buf) => {
                let (n, source) = received?;
                link.session.handle_datagram(Instant::now(), PeerRole::Subscriber, source,
                    subscriber_addr, &subscriber_buf[..n])?;
            }
            event = link.events.recv() => match event {
                Some(SignalEvent::Message(message)) => {
                    link.session.handle_signal(Instant::now(), *message)?;
                }
                // The server closed the socket after our leave: that is its confirmation.
                Some(SignalEvent::Close(_)) if leaving.is_some() => {
                    link.signal.close().await;
                    return Ok(());
                }
                Some(SignalEvent::Close(reason)) => {
                    warn!(%reason, "signal connection lost; resuming");
                    recovery = Recovery::Resume;
                }
                None => return Ok(()),
            },
            // Once leaving, nothing more is asked of the session (and a closed queue would
            // answer at once, forever).
            command = commands.recv(), if leaving.is_none() => match command {
                Some(Command::PublishAudio(pcm)) => link.session.publish_audio(Instant::now(), &pcm)?,
                Some(Command::PublishOpus { packet, sent }) => {
                    link.session.publish_opus(Instant::now(), packet)?;
                    sent_waiting = sent;
                }
                Some(Command::SendData { packet, reliable }) => {
                    if let Err(e) = link.session.send_data(&packet, reliable) {
                        warn!(error = %e, "data packet not sent");
                    }
                }
                Some(Command::SetAttributes(attributes)) => {
                    link.session.signal(proto::signal_request::Message::UpdateMetadata(
                        proto::UpdateParticipantMetadata { attributes, ..Default::default() },
                    ));
                }
                Some(Command::Simulate(scenario)) => {
                    link.session.signal(proto::signal_request::Message::Simulate(scenario));
                }
                Some(Command::Leave) | None => {
                    // The leave goes out with the next drain; the loop then waits for the
                    // server's confirmation, so the room sees us go now rather than when our
                    // peer connection times out (about 20 s later: a counselor's page would show
                    // the caller still there). Closing the socket right after sending raced the
                    // server's handling of the request (1 shutdown in 10 lost it).
                    link.session.leave();
                    leaving = Some(tokio::time::Instant::now() + LEAVE_CONFIRM_WAIT);
                }
            },
            result = async { resume.as_mut().expect("guarded by is_some").await }, if resume.is_some() => {
                resume = None;
                match result {
                    Ok(_reconnect) => {
                        info!(attempts = resume_attempts, "signal resumed");
                        // What was asked meanwhile goes first; `SignalClient` holds back all but
                        // negotiation until `set_reconnected`, after our SyncState.
                        for message in held.drain(..) {
                            link.signal.send(message).await;
                        }
                        link.session.resume()?;
                        confirm_resumed = true;
                    }
                    Err(SignalError::LeaveRequest { reason, action }) => {
                        warn!(?reason, ?action, "server refused the resume; rejoining");
                        recovery = Recovery::Rejoin;
                    }
                    Err(e) if resume_attempts < MAX_RESUME_ATTEMPTS => {
                        warn!(error = %e, attempt = resume_attempts, "resume failed; retrying");
                        resume_attempts += 1;
                        let backoff = Duration::from_millis(300 * u64::from(resume_attempts));
                        resume = Some(resume_attempt(&link.signal, backoff));
                    }
                    Err(e) => {
                        warn!(error = %e, "resume keeps failing; rejoining");
                        recovery = Recovery::Rejoin;
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                link.session.handle_timeout(Instant::now())?;
            }
            _ = tokio::time::sleep_until(leaving.unwrap_or(deadline)), if leaving.is_some() => {}
        }
    }
}

/// A full rejoin: a new participant in the same room with the same token, republishing.
/// The old participant (same identity) is removed by the server as a duplicate.
async fn rejoin(config: &ParticipantConfig, sockets: &Sockets) -> Result<Link, ParticipantError> {
    let mut last = None;
    for attempt in 1..=MAX_REJOIN_ATTEMPTS {
        match join(config, sockets).await {
            Ok(link) => {
                info!(attempt, "rejoined the room");
                return Ok(link);
            }
            Err(e) => {
                warn!(attempt, error = %e, "rejoin failed");
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
        }
    }
    Err(last.unwrap_or(ParticipantError::Stopped))
}

// Hand-written: the inner codec, socket and task handles have no useful Debug, and a token must
// never be printed.
impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant").field("sid", &self.sid).field("identity", &self.identity).finish_non_exhaustive()
    }
}
