//! The role-play job: the tokio shell around [`Call`] that bridges a LiveKit room to the OpenAI
//! Realtime API.
//!
//! One task per call runs the loop: wait for the first of a room event, a Realtime message, a
//! socket (re)connect, the call's next deadline (the 20 ms frame clock), a store answer or the
//! stop signal; feed it to the call; then carry out what the call asked (send on the socket,
//! publish a caller frame, set `lk.agent.state`, send captions, push turns, record). The Realtime
//! socket is written from this task too, without waiting: what the socket cannot take yet waits
//! in a queue that the loop flushes whenever the socket is writable, so a slow socket never stalls
//! the frame clock, and the append a frame produced leaves in the same pass (no task hop).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use livekit_protocol as proto;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{info, warn};

use crate::audio::{AudioError, Encoder};
use crate::call::socket::Backlog;
use crate::call::{Call, CallConfig, CallOutput, CallStats, Caption};
use crate::datastream::{self, TRANSCRIPTION_TOPIC};
use crate::echo::AGENT_STATE_ATTRIBUTE;
use crate::participant::{Command, Participant, ParticipantError};
use crate::preconnect::{PRE_CONNECT_ATTRIBUTE, PreConnectEvent, PreConnectReceiver};
use crate::realtime::RealtimeConfig;
use crate::recording::Recorder;
use crate::session::SessionEvent;
use crate::turns::{CallEnd, Speaker, TurnStore, TurnStoreError, TurnWriter};

/// Consecutive failed Realtime connects after which the call ends as failed (about a minute).
const MAX_CONNECT_FAILURES: u32 = 15;
pub use crate::call::socket::MAX_REALTIME_BACKLOG;

/// How long a call waits for a counselor who left the room (a reload, an accidental click away,
/// a dropped connection) to come back before it ends as `counselor_left`: the web page rejoins
/// the same room with a fresh token, and the session is not ended by a brief absence.
pub const COUNSELOR_REJOIN_GRACE: Duration = Duration::from_secs(60);

/// Whether a participant's disconnect reason is a lost connection rather than a leave.
fn connection_lost(reason: i32) -> bool {
    use proto::DisconnectReason as R;
    [
        R::DuplicateIdentity,
        R::StateMismatch,
        R::JoinFailure,
        R::Migration,
        R::SignalClose,
        R::ConnectionTimeout,
        R::MediaFailure,
    ]
    .iter()
    .any(|r| *r as i32 == reason)
}

#[derive(Debug, Error)]
pub enum RoleplayError {
    #[error("turn store: {0}")]
    Store(#[from] TurnStoreError),
    #[error(transparent)]
    Participant(#[from] ParticipantError),
    #[error("realtime: {0}")]
    Realtime(String),
    #[error(transparent)]
    Audio(#[from] AudioError),
}

/// What a role-play job needs besides its room and its store.
#[derive(Debug, Clone)]
pub struct RoleplayOptions {
    pub realtime: RealtimeConfig,
    pub call: CallConfig,
    /// Where recordings go (`recording::path_for`); none when unset.
    pub recording_dir: Option<PathBuf>,
}

/// Process-wide counters, Prometheus-style (`render_prometheus`).
#[derive(Debug, Default)]
pub struct Metrics {
    pub calls_started: AtomicU64,
    pub calls_ended: AtomicU64,
    pub frames_played: AtomicU64,
    pub underruns: AtomicU64,
    pub reconnects: AtomicU64,
    pub recycles: AtomicU64,
    pub barge_ins: AtomicU64,
}

pub static METRICS: Metrics = Metrics {
    calls_started: AtomicU64::new(0),
    calls_ended: AtomicU64::new(0),
    frames_played: AtomicU64::new(0),
    underruns: AtomicU64::new(0),
    reconnects: AtomicU64::new(0),
    recycles: AtomicU64::new(0),
    barge_ins: AtomicU64::new(0),
};

/// The counters in Prometheus' text format.
pub fn render_prometheus() -> String {
    let m = &METRICS;
    let rows = [
        ("agent_calls_started_total", &m.calls_started),
        ("agent_calls_ended_total", &m.calls_ended),
        ("agent_caller_frames_played_total", &m.frames_played),
        ("agent_playout_underruns_total", &m.underruns),
        ("agent_realtime_reconnects_total", &m.reconnects),
        ("agent_realtime_recycles_total", &m.recycles),
        ("agent_barge_ins_total", &m.barge_ins),
    ];
    rows.iter().map(|(name, v)| format!("# TYPE {name} counter\n{name} {}\n", v.load(Ordering::Relaxed))).collect()
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type ConnectFuture = Pin<Box<dyn Future<Output = Result<Ws, String>> + Send>>;
type PollFuture = Pin<Box<dyn Future<Output = Result<bool, TurnStoreError>> + Send>>;

/// An open Realtime socket and the messages it has not taken yet.
struct Socket {
    ws: Ws,
    /// Bounded by [`MAX_REALTIME_BACKLOG`] (`call::socket::Backlog`).
    backlog: Backlog<Message>,
    unflushed: bool,
}

/// What the socket's select branch saw.
enum SocketEvent {
    Read(Option<Result<Message, tungstenite::Error>>),
    WriteFailed(tungstenite::Error),
}

impl Socket {
    fn new(ws: Ws) -> Self {
        Self { ws, backlog: Backlog::default(), unflushed: false }
    }

    /// Queues a message; `false` when the socket has not taken [`MAX_REALTIME_BACKLOG`] bytes
    /// (stalled: the caller replaces it rather than buffer without bound).
    fn queue(&mut self, text: String) -> bool {
        let len = text.len();
        self.backlog.push(Message::Text(text.into()), len)
    }

    /// Hands the queued messages to the socket and flushes, as far as it takes them now; when it
    /// is full, `cx` is woken once it can take more.
    fn write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>> {
        while let Some(message) = self.backlog.pop() {
            match self.ws.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => self.ws.start_send_unpin(message)?,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    let len = message.len();
                    self.backlog.unpop(message, len);
                    return Poll::Pending;
                }
            }
            self.unflushed = true;
        }
        if self.unflushed {
            ready!(self.ws.poll_flush_unpin(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Ready with the next message read, or with a failed write; writes progress meanwhile.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<SocketEvent> {
        if let Poll::Ready(Err(e)) = self.write(cx) {
            return Poll::Ready(SocketEvent::WriteFailed(e));
        }
        self.ws.poll_next_unpin(cx).map(SocketEvent::Read)
    }

    /// Sends what is still queued and closes the socket (a close frame, as a clean client
    /// sends), in the background.
    fn close_later(self) {
        let Socket { mut ws, mut backlog, .. } = self;
        let backlog: Vec<Message> = backlog.drain().collect();
        tokio::spawn(tokio::time::timeout(Duration::from_secs(2), async move {
            for message in backlog {
                if ws.feed(message).await.is_err() {
                    return;
                }
            }
            let _ = ws.close(None).await;
        }));
    }
}

/// Caption text a stream may hold unsent (the room loop stalled); more is dropped. An answer's
/// caption is a few hundred bytes.
const MAX_CAPTION_BACKLOG: usize = 64 * 1024;

/// One caption stream in flight.
struct CaptionStream {
    stream_id: String,
    segment_id: String,
    speaker: Speaker,
    next_chunk: u64,
    /// Its header went out.
    opened: bool,
    /// Text not sent yet (deltas merge: one chunk carries them all).
    pending: String,
    /// Closed by the call; the trailer goes once `pending` is out.
    closing: bool,
}

/// Who the caption packets speak for, as of sending.
struct CaptionContext<'a> {
    own_identity: &'a str,
    own_track_sid: &'a str,
    counselor_identity: &'a str,
    counselor_track_sid: &'a str,
}

/// The call's caption streams, sent without waiting (`try_send`, like frames): what the room loop
/// cannot take yet stays here and goes on the next try, in order. A stalled room loop so delays
/// captions instead of stalling the frame clock, and never skips a chunk (a gap in the chunk
/// indices makes the browser drop the whole caption).
#[derive(Default)]
struct Captions {
    streams: HashMap<String, CaptionStream>,
    /// Some stream has something unsent.
    waiting: bool,
    /// Caption text dropped past [`MAX_CAPTION_BACKLOG`].
    dropped_bytes: u64,
}

impl Captions {
    fn push(&mut self, caption: Caption) {
        match caption {
            Caption::Open { segment_id, speaker } => {
                let stream = CaptionStream {
                    stream_id: format!("{segment_id}-{}", unix_millis()),
                    segment_id: segment_id.clone(),
                    speaker,
                    next_chunk: 0,
                    opened: false,
                    pending: String::new(),
                    closing: false,
                };
                self.streams.insert(segment_id, stream);
            }
            Caption::Text { segment_id, delta } => {
                let Some(stream) = self.streams.get_mut(&segment_id) else { return };
                if stream.pending.len() + delta.len() > MAX_CAPTION_BACKLOG {
                    self.dropped_bytes += delta.len() as u64;
                } else {
                    stream.pending.push_str(&delta);
                }
            }
            Caption::Close { segment_id } => {
                if let Some(stream) = self.streams.get_mut(&segment_id) {
                    stream.closing = true;
                }
            }
        }
        self.waiting = true;
    }

    /// Sends what it can, in order per stream; stops at the first packet `send` refuses (the
    /// queue is full), which is tried again next time.
    fn flush(&mut self, ctx: &CaptionContext<'_>, mut send: impl FnMut(proto::DataPacket) -> bool) {
        if !self.waiting {
            return;
        }
        let mut done = Vec::new();
        let mut blocked = false;
        for (key, stream) in self.streams.iter_mut() {
            let (identity, track) = match stream.speaker {
                Speaker::Caller => (ctx.own_identity, ctx.own_track_sid),
                Speaker::Counselor => (ctx.counselor_identity, ctx.counselor_track_sid),
            };
            let attributes = |last: bool| {
                let mut a = datastream::transcription_attributes(&stream.segment_id, track);
                a.insert("lk.transcription_final".into(), last.to_string());
                a
            };
            let mut packet = |mut p: proto::DataPacket| {
                p.participant_identity = identity.to_owned();
                send(p)
            };
            if !stream.opened {
                let header = datastream::open_text_stream(
                    &stream.stream_id,
                    TRANSCRIPTION_TOPIC,
                    attributes(false),
                    unix_millis(),
                );
                if !packet(header) {
                    blocked = true;
                    break;
                }
                stream.opened = true;
            }
            while !stream.pending.is_empty() {
                let mut end = stream.pending.len().min(datastream::MAX_CHUNK);
                while !stream.pending.is_char_boundary(end) {
                    end -= 1;
                }
                if !packet(datastream::text_chunk(&stream.stream_id, stream.next_chunk, &stream.pending[..end])) {
                    blocked = true;
                    break;
                }
                stream.next_chunk += 1;
                stream.pending.drain(..end);
            }
            if blocked {
                break;
            }
            if stream.closing {
                if !packet(datastream::close_stream(&stream.stream_id, attributes(true))) {
                    blocked = true;
                    break;
                }
                done.push(key.clone());
            }
        }
        for key in done {
            self.streams.remove(&key);
        }
        self.waiting = blocked;
    }
}

/// Runs one call in the room until it ends, then ends the session in the store and leaves.
pub async fn run(
    mut participant: Participant,
    store: Arc<dyn TurnStore>,
    options: RoleplayOptions,
    stop: impl Future<Output = ()>,
) -> Result<CallEnd, RoleplayError> {
    tokio::pin!(stop);
    let mut encoder = Encoder::new()?;
    let setup = setup_with_retry(store.as_ref()).await?;
    let session_id = setup.session_id;
    info!(%session_id, caller_first = setup.caller_speaks_first, prior_turns = setup.prior_turns.len(), "role-play call starting");
    METRICS.calls_started.fetch_add(1, Ordering::Relaxed);
    crate::metrics::call_started();
    let writer = TurnWriter::spawn(store.clone());
    let mut recorder = match &options.recording_dir {
        Some(dir) => match Recorder::create(&crate::recording::path_for(dir, session_id)) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(error = %e, "recording disabled: cannot create the file");
                None
            }
        },
        None => None,
    };
    let mut call = Call::new(Instant::now(), setup, options.realtime.clone(), options.call.clone());

    // The counselor: the first participant who is not an agent.
    let is_agent = |p: &proto::ParticipantInfo| p.kind == proto::participant_info::Kind::Agent as i32;
    let mut counselor: Option<proto::ParticipantInfo> = participant.others.iter().find(|p| !is_agent(p)).cloned();
    // The counselor who left (a reload, a dropped connection) and since when: the call waits
    // [`COUNSELOR_REJOIN_GRACE`] for them (same identity) to come back before it ends.
    let mut away: Option<(String, Instant)> = None;
    if counselor.as_ref().is_some_and(|c| c.attributes.contains_key(PRE_CONNECT_ATTRIBUTE)) {
        call.expect_preconnect(Instant::now());
    }
    let mut own_track_sid = String::new();
    let mut preconnect = PreConnectReceiver::default();
    let mut captions = Captions::default();
    let mut socket: Option<Socket> = None;
    let mut connect: Option<ConnectFuture> = None;
    let mut connect_failures = 0u32;
    let mut poll: Option<PollFuture> = None;
    let commands = participant.commands();
    // Each answer's first delta, and word from the room loop of when its first packet was sent.
    let mut answers_sent: Vec<(Instant, oneshot::Receiver<Instant>)> = Vec::new();
    let mut handled_due = false;
    // How many queued events may still go before a due deadline (see `events_first`).
    let mut queued_first = crate::participant::EVENT_QUEUE;
    // Pre-connect streams refused (a hostile room can send thousands: the log names the first
    // ones, then every power of two, and the total at the end).
    let mut preconnect_dropped = 0u64;

    let reason = 'call: loop {
        // Carry out everything the last input produced.
        while let Some(output) = call.poll_output() {
            match output {
                CallOutput::Realtime(text) => {
                    if let Some(s) = socket.as_mut()
                        && !s.queue(text)
                    {
                        warn!(backlog = s.backlog.bytes(), "realtime socket stalled; replacing it");
                        socket = None;
                        call.realtime_closed(Instant::now());
                    }
                }
                CallOutput::Connect { after } => {
                    if let Some(s) = socket.take() {
                        s.close_later();
                    }
                    connect = Some(Box::pin(open_socket(options.realtime.clone(), after)));
                }
                CallOutput::Tick { caller, answer_from } => {
                    // Encoded here, not in the room loop, so the recording stores the very
                    // packet the counselor hears.
                    let packet = if caller {
                        match encoder.encode(call.caller_frame()) {
                            Ok(p) => Some(p),
                            Err(e) => {
                                warn!(error = %e, "caller frame not encoded");
                                None
                            }
                        }
                    } else {
                        None
                    };
                    if let Some(p) = &packet {
                        let sent = answer_from.map(|from| {
                            let (tx, rx) = oneshot::channel();
                            answers_sent.push((from, rx));
                            tx
                        });
                        // try_send: a stalled room loop must not stall the frame clock; a frame
                        // that cannot be queued is dropped (and shows as a gap, not a delay).
                        let _ = commands.try_send(Command::PublishOpus { packet: p.clone(), sent });
                    }
                    if let Some(r) = recorder.as_mut()
                        && let Err(e) = r.tick(packet.as_deref())
                    {
                        warn!(error = %e, "recording stopped");
                        recorder = None;
                    }
                }
                CallOutput::State(state) => {
                    let attributes = HashMap::from([(AGENT_STATE_ATTRIBUTE.to_owned(), state.as_str().to_owned())]);
                    let _ = commands.try_send(Command::SetAttributes(attributes));
                }
                CallOutput::Caption(caption) => captions.push(caption),
                CallOutput::Turn(turn) => {
                    info!(segment = %turn.segment_id, speaker = ?turn.speaker, cut = turn.cut, "turn");
                    writer.push(turn);
                }
                CallOutput::PollEndedElsewhere => {
                    let store = store.clone();
                    poll = Some(Box::pin(async move { store.ended_elsewhere().await }));
                }
                CallOutput::End(reason) => break 'call reason,
            }
        }

        // Captions go as far as the room loop takes them now; the rest on a later pass.
        if captions.waiting {
            flush_captions(&mut captions, &participant, &commands, &own_track_sid, counselor.as_ref());
        }

        // A deadline already due (an answer's first frame is due the moment its audio arrives)
        // is handled now: through the timer it would wait for the runtime's next timer pass,
        // a few ms on a busy worker. Never twice running, so a deadline that does not move
        // cannot keep the loop from the runtime.
        // What the call wrote leaves now, in this pass.
        if let Some(s) = socket.as_mut()
            && !s.backlog.is_empty()
            && let Poll::Ready(Err(e)) = std::future::poll_fn(|cx| Poll::Ready(s.write(cx))).await
        {
            warn!(error = %e, "realtime socket failed");
            socket = None;
            call.realtime_closed(Instant::now());
            continue;
        }
        // Events already received go before a due deadline, at most one queue's worth: under a
        // data flood the counselor's audio waits behind up to three quarters of the queue, and a
        // deadline handled first would take that audio's delay for a silence (DTX) and feed the
        // model silence inside the counselor's speech, splitting one utterance into two turns.
        let events_first = queued_first > 0 && participant.queued_events() > 0;
        let now = Instant::now();
        if !handled_due && !events_first && call.poll_timeout() <= now {
            call.handle_timeout(now);
            handled_due = true;
            queued_first = crate::participant::EVENT_QUEUE;
            continue;
        }
        handled_due = false;
        // Live microphone audio went to the model: a pre-connect buffer would now come after it.
        if call.audio_sent()
            && let Some(dropped) = preconnect.mic_started()
        {
            log_dropped(&dropped, &mut preconnect_dropped);
        }
        let mut deadline = tokio::time::Instant::from_std(call.poll_timeout());
        if let Some((_, since)) = &away {
            deadline = deadline.min(tokio::time::Instant::from_std(*since + COUNSELOR_REJOIN_GRACE));
        }
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(deadline), if !events_first => {
                let now = Instant::now();
                if away.as_ref().is_some_and(|(_, since)| now >= *since + COUNSELOR_REJOIN_GRACE) {
                    away = None;
                    call.counselor_left(now);
                } else {
                    call.handle_timeout(now);
                }
                queued_first = crate::participant::EVENT_QUEUE;
            }
            event = participant.next_event() => {
                queued_first = queued_first.saturating_sub(1);
                let now = Instant::now();
                match event {
                    None | Some(SessionEvent::Left(_)) => call.counselor_left(now),
                    Some(SessionEvent::Audio { origin, pcm, packet, received }) => {
                        if counselor.as_ref().is_none_or(|c| c.sid == origin.participant_sid) {
                            call.counselor_audio(now, received, &pcm);
                            if let Some(r) = recorder.as_mut() {
                                r.counselor_audio(packet, &pcm);
                            }
                        }
                    }
                    Some(SessionEvent::TrackPublished { track_sid, .. }) => own_track_sid = track_sid,
                    Some(SessionEvent::Data(packet)) => {
                        match preconnect.handle(&packet, counselor.as_ref().map(|c| c.identity.as_str())) {
                            Some(PreConnectEvent::Audio { bytes, format, pcm }) => {
                                info!(bytes, ?format, ms = pcm.len() / 24, "pre-connect audio");
                                call.preconnect_audio(now, &pcm);
                            }
                            Some(dropped @ PreConnectEvent::Dropped { .. }) => {
                                log_dropped(&dropped, &mut preconnect_dropped);
                            }
                            None => {}
                        }
                    }
                    Some(SessionEvent::Participants(updates)) => {
                        for p in updates {
                            if is_agent(&p) || p.sid == participant.sid {
                                continue;
                            }
                            let gone = p.state == proto::participant_info::State::Disconnected as i32;
                            match &counselor {
                                // A lost connection (a drop, a timeout, the same identity
                                // joining again) waits for a rejoin; a hang-up the client chose
                                // (its leave) ends the call at once, as it always did.
                                Some(c) if c.sid == p.sid && gone && connection_lost(p.disconnect_reason) => {
                                    info!(grace_s = COUNSELOR_REJOIN_GRACE.as_secs(), reason = p.disconnect_reason, "the counselor's connection was lost; waiting for a rejoin");
                                    away = Some((c.identity.clone(), now));
                                    counselor = None;
                                }
                                Some(c) if c.sid == p.sid && gone => {
                                    counselor = None;
                                    call.counselor_left(now);
                                }
                                Some(c) if c.sid == p.sid => counselor = Some(p),
                                // The same identity under a new sid while the old one is not yet
                                // reported gone: a reload's join overtook the lost connection's
                                // departure. The new one is the counselor; the old one's later
                                // "gone" no longer matches and is ignored.
                                Some(c) if c.identity == p.identity && !gone => {
                                    info!("the counselor rejoined, replacing the lost connection");
                                    counselor = Some(p);
                                }
                                // Back within the grace period (a reload): the call goes on with them.
                                None if !gone && away.as_ref().is_some_and(|(who, _)| *who == p.identity) => {
                                    info!("the counselor rejoined");
                                    away = None;
                                    counselor = Some(p);
                                }
                                None if !gone && away.is_none() => {
                                    if p.attributes.contains_key(PRE_CONNECT_ATTRIBUTE) {
                                        call.expect_preconnect(now);
                                    }
                                    counselor = Some(p);
                                }
                                _ => {}
                            }
                        }
                    }
                    Some(SessionEvent::Rejoined { sid, .. }) => participant.sid = sid,
                    Some(_) => {}
                }
            }
            event = std::future::poll_fn(|cx| socket.as_mut().expect("guarded").poll_event(cx)), if socket.is_some() => {
                let now = Instant::now();
                match event {
                    SocketEvent::Read(Some(Ok(Message::Text(text)))) => call.realtime_message(now, &text),
                    SocketEvent::Read(Some(Ok(Message::Close(frame)))) => {
                        info!(?frame, "realtime socket closed by the server");
                        socket = None;
                        call.realtime_closed(now);
                    }
                    SocketEvent::Read(Some(Ok(_))) => {}
                    SocketEvent::Read(Some(Err(e))) | SocketEvent::WriteFailed(e) => {
                        warn!(error = %e, "realtime socket failed");
                        socket = None;
                        call.realtime_closed(now);
                    }
                    SocketEvent::Read(None) => {
                        socket = None;
                        call.realtime_closed(now);
                    }
                }
            }
            result = async { connect.as_mut().expect("guarded").await }, if connect.is_some() => {
                connect = None;
                match result {
                    Ok(ws) => {
                        connect_failures = 0;
                        socket = Some(Socket::new(ws));
                        call.realtime_opened(Instant::now());
                    }
                    Err(e) => {
                        connect_failures += 1;
                        warn!(error = %e, failures = connect_failures, "realtime connect failed");
                        if connect_failures >= MAX_CONNECT_FAILURES {
                            call.fail(Instant::now());
                        } else {
                            call.realtime_closed(Instant::now());
                        }
                    }
                }
            }
            answer = async { poll.as_mut().expect("guarded").await }, if poll.is_some() => {
                poll = None;
                match answer {
                    Ok(ended) => call.ended_elsewhere(Instant::now(), ended),
                    Err(e) => {
                        warn!(error = %e, "ended_elsewhere poll failed");
                        call.ended_elsewhere(Instant::now(), false);
                    }
                }
            }
            _ = &mut stop => call.shutdown(Instant::now()),
        }
    };

    if let Some(s) = socket.take() {
        s.close_later();
    }
    let (usage, turn_metrics, mut stats) = call.summary();
    stats.delta_to_rtp_ms = answers_sent
        .into_iter()
        .filter_map(|(from, mut rx)| {
            rx.try_recv().ok().map(|sent| sent.saturating_duration_since(from).as_millis() as u32)
        })
        .collect();
    record_metrics(&stats);
    crate::metrics::call_ended(&stats);
    let recording = recorder.and_then(|r| r.finish().map_err(|e| warn!(error = %e, "recording not finished")).ok());
    let end = CallEnd { reason, usage, turn_metrics, recording };
    if preconnect_dropped > 0 {
        warn!(%session_id, preconnect_dropped, "pre-connect streams dropped in this call");
    }
    if captions.dropped_bytes > 0 {
        warn!(%session_id, dropped_bytes = captions.dropped_bytes, "caption text dropped: the room loop was stalled");
    }
    info!(%session_id, reason = ?end.reason, summary = %stats_json(&stats), "call metrics");
    let stored = writer.finish(end.clone()).await;
    METRICS.calls_ended.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = participant.leave().await {
        warn!(error = %e, "leaving the room failed");
    }
    stored?;
    Ok(end)
}

async fn setup_with_retry(store: &dyn TurnStore) -> Result<crate::turns::CallSetup, TurnStoreError> {
    let mut attempt = 0u32;
    loop {
        match store.setup().await {
            Ok(setup) => return Ok(setup),
            Err(TurnStoreError::Unavailable(e)) if attempt < 5 => {
                attempt += 1;
                warn!(error = %e, attempt, "call setup unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens the Realtime WebSocket after `after` (Bearer auth, no beta header: the GA protocol).
pub async fn open_socket(config: RealtimeConfig, after: Duration) -> Result<Ws, String> {
    tokio::time::sleep(after).await;
    let url = config.url()?;
    let mut request = url.as_str().into_client_request().map_err(|e| e.to_string())?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", config.api_key)).map_err(|_| "bad API key".to_string())?;
    request.headers_mut().insert("Authorization", bearer);
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before every read, even
    // one that finds nothing: 14% of the agent's CPU at 100 calls. 16 KiB holds a typical delta.
    // No Nagle: each append is a small write that must leave now, not wait for the last ACK.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(response))) => Err(format!("refused: {}", response.status())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out".into()),
    }
}

/// A refused pre-connect stream, named in the log (the room is not trusted, so this is where a
/// hostile one shows).
fn log_dropped(event: &PreConnectEvent, count: &mut u64) {
    *count += 1;
    if let PreConnectEvent::Dropped { stream_id, sender, why } = event
        && (*count <= 16 || count.is_power_of_two())
    {
        warn!(dropped = *count, stream_id = %stream_id.chars().take(64).collect::<String>(),
            sender = %sender.chars().take(64).collect::<String>(), ?why, "pre-connect stream dropped");
    }
}

/// Sends the captions' waiting packets as `lk.transcription` streams: the caller's from us, the
/// counselor's on their behalf (the server lets agents do that). Like a frame, with `try_send`:
/// a stalled room loop must not stall the frame clock.
fn flush_captions(
    captions: &mut Captions,
    participant: &Participant,
    commands: &mpsc::Sender<Command>,
    own_track_sid: &str,
    counselor: Option<&proto::ParticipantInfo>,
) {
    let counselor_track = counselor
        .and_then(|c| c.tracks.iter().find(|t| t.r#type == proto::TrackType::Audio as i32))
        .map(|t| t.sid.as_str())
        .unwrap_or_default();
    let ctx = CaptionContext {
        own_identity: &participant.identity,
        own_track_sid,
        counselor_identity: counselor.map(|c| c.identity.as_str()).unwrap_or_default(),
        counselor_track_sid: counselor_track,
    };
    captions.flush(&ctx, |packet| {
        commands.try_send(Command::SendData { packet: Box::new(packet), reliable: true }).is_ok()
    });
}

fn record_metrics(stats: &CallStats) {
    METRICS.frames_played.fetch_add(stats.frames_played, Ordering::Relaxed);
    METRICS.underruns.fetch_add(u64::from(stats.underruns), Ordering::Relaxed);
    METRICS.reconnects.fetch_add(u64::from(stats.reconnects), Ordering::Relaxed);
    METRICS.recycles.fetch_add(u64::from(stats.recycles), Ordering::Relaxed);
    METRICS.barge_ins.fetch_add(u64::from(stats.barge_ins), Ordering::Relaxed);
}

/// The call's counters and latency samples as one JSON line (the voice benchmark reads it).
pub fn stats_json(stats: &CallStats) -> String {
    serde_json::json!({
        "framesPlayed": stats.frames_played,
        "underruns": stats.underruns,
        "reconnects": stats.reconnects,
        "recycles": stats.recycles,
        "lateTicks": stats.late_ticks,
        "bargeIns": stats.barge_ins,
        "micToAppendMs": stats.mic_to_append_ms,
        "deltaToFrameMs": stats.delta_to_frame_ms,
        "deltaToRtpMs": stats.delta_to_rtp_ms,
        "responseLatencyMs": stats.response_latency_ms,
        "realtimeFirstAudioMs": stats.realtime_first_audio_ms,
        "bargeInStopMs": stats.barge_in_stop_ms,
    })
    .to_string()
}

fn unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastream::TextStreamReceiver;

    fn ctx() -> CaptionContext<'static> {
        CaptionContext {
            own_identity: "agent",
            own_track_sid: "TR_agent",
            counselor_identity: "counselor",
            counselor_track_sid: "TR_counselor",
        }
    }

    #[test]
    fn captions_held_back_by_a_full_queue_arrive_whole_and_in_order() {
        let mut captions = Captions::default();
        let mut sent: Vec<proto::DataPacket> = Vec::new();
        // The room loop takes every other packet offered.
        let mut turn = 0u32;
        let mut offer = |captions: &mut Captions, sent: &mut Vec<proto::DataPacket>| {
            captions.flush(&ctx(), |p| {
                turn += 1;
                if turn.is_multiple_of(2) {
                    sent.push(p);
                    true
                } else {
                    false
                }
            });
        };
        captions.push(Caption::Open { segment_id: "s1".into(), speaker: Speaker::Caller });
        offer(&mut captions, &mut sent);
        for word in ["Work ", "is ", "falling ", "apart."] {
            captions.push(Caption::Text { segment_id: "s1".into(), delta: word.into() });
            offer(&mut captions, &mut sent);
        }
        captions.push(Caption::Close { segment_id: "s1".into() });
        for _ in 0..10 {
            offer(&mut captions, &mut sent);
        }
        assert!(!captions.waiting && captions.streams.is_empty());
        // What a browser makes of it: one whole caption, chunk indices without a gap.
        let mut rx = TextStreamReceiver::default();
        let mut indices = Vec::new();
        let texts: Vec<_> = sent
            .iter()
            .inspect(|p| {
                if let Some(proto::data_packet::Value::StreamChunk(c)) = &p.value {
                    indices.push(c.chunk_index);
                }
            })
            .filter_map(|p| rx.handle(p))
            .collect();
        assert_eq!(indices, (0..indices.len() as u64).collect::<Vec<_>>());
        assert_eq!(texts.len(), 1);
        assert_eq!(texts[0].text, "Work is falling apart.");
        assert_eq!(texts[0].sender_identity, "agent");
        assert_eq!(texts[0].attributes["lk.transcription_final"], "true");
        assert_eq!(texts[0].attributes["lk.transcribed_track_id"], "TR_agent");
    }

    #[test]
    fn a_stalled_room_loop_bounds_what_captions_hold() {
        let mut captions = Captions::default();
        captions.push(Caption::Open { segment_id: "s".into(), speaker: Speaker::Counselor });
        for _ in 0..1000 {
            captions.push(Caption::Text { segment_id: "s".into(), delta: "x".repeat(1000) });
            captions.flush(&ctx(), |_| false);
        }
        assert!(captions.streams["s"].pending.len() <= MAX_CAPTION_BACKLOG);
        assert!(captions.dropped_bytes > 0);
    }
}
