//! The role-play call, sans-IO: a state machine fed the counselor's audio, Realtime server
//! events and time, which yields Realtime client events, paced caller frames, agent state,
//! captions, final turns and the end of the call. No sockets, no clock, no tasks: the tokio
//! shell in `roleplay` drives it, and the tests drive it in simulated time.
//!
//! [`Call`] composes sans-IO parts, each a module with its own tests, and holds only what ties
//! them together (the conversation's state, captions, limits, the outputs queue):
//! `input` (counselor audio -> appends, held audio, the pre-connect hold, the replay after a
//! drop), `playout` (answer audio -> paced frames, the frame clock, underruns), `reply` (the
//! reply in progress as a state machine, and the cancelled ids), `order` (spoken order and the
//! turns released so far) and `socket` (the Realtime socket's lifecycle and the write backlog's
//! bound). A call whose Realtime tokens reach the session's cap (`CallSetup::token_cap`) ends
//! once the answer in progress was heard ([`EndReason::TokenCap`]).
//!
//! - Audio in: 20 ms frames of 48 kHz -> 24 kHz (rubato) -> `input_audio_buffer.append` batches.
//! - Audio out: deltas (24 kHz) -> 48 kHz -> a playout queue, one 20 ms frame per tick. Ticks
//!   are deadlines `start + k * 20 ms` on the caller's monotonic clock, so nothing drifts; a
//!   late tick is followed by a prompt one, and a stall over [`RESYNC_AFTER`] resets the grid.
//! - Barge-in: `speech_started` while the caller is heard or generating stops the caller at once
//!   (the next tick is silent), cancels, and truncates the reply to what was played (or deletes
//!   it when nothing was); the stored turn and the caption hold only what was heard.
//! - Captions: the caller's text is revealed in proportion to the audio actually played.
//! - Turns are emitted in spoken order: a caller turn waits for the transcript of any counselor
//!   turn that started before it (bounded by [`TRANSCRIPT_WAIT`]).
//! - The Realtime socket is recycled between turns before the session cap, and reconnected with
//!   backoff when it drops; either way the new session is re-seeded from the stored turns. A
//!   reply the drop cut short plays out what had arrived and becomes a (cut) turn; once it has
//!   been heard and seeded, the new session is asked for the answer the counselor is still owed
//!   (`response.create`), so the model carries on from what the counselor heard: nothing is lost
//!   and nothing is said twice. Counselor speech whose transcript the dropped socket still owed
//!   is appended again on the new one (from the recent audio kept for that), and its words land
//!   in the same turn, stamped when it was first spoken.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod input;
mod order;
mod playout;
mod reply;
pub mod socket;

use self::input::{Input, InputSink, SPEECH_LOOKBACK};
use self::order::SpokenOrder;
pub use self::playout::RESYNC_AFTER;
use self::playout::{Due, Frame, Playout};
use self::reply::{Cancelled, Reply};
use self::socket::Lifecycle;
use crate::audio::FRAME_SAMPLES;
use crate::realtime::{self, RealtimeConfig, ServerEvent};
use crate::turns::{CallSetup, EndReason, RealtimeUsage, Speaker, SpokenTurn, TurnMetrics};

/// The input's sink over the call's disjoint fields (so `self.input` can be borrowed beside it).
macro_rules! sink {
    ($call:ident) => {
        CallSink {
            socket: &$call.socket,
            order: &mut $call.order,
            outputs: &mut $call.outputs,
            stats: &mut $call.stats,
        }
    };
}

/// How long a caller turn waits for an earlier counselor turn's transcript.
pub const TRANSCRIPT_WAIT: Duration = Duration::from_secs(10);
/// How often `ended_elsewhere` is polled (between turns only).
const POLL_EVERY: Duration = Duration::from_secs(3);
/// No counselor audio for this long means the sender stopped sending in silence (DTX).
const DTX_GAP: Duration = Duration::from_millis(60);
static SILENCE: [i16; FRAME_SAMPLES] = [0; FRAME_SAMPLES];
/// Rough speaking rate for revealing a caption whose audio is still arriving (ms per byte).
const MS_PER_CHAR: u64 = 60;

/// The agent state the browser shows (`lk.agent.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Initializing,
    Listening,
    Thinking,
    Speaking,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Initializing => "initializing",
            AgentState::Listening => "listening",
            AgentState::Thinking => "thinking",
            AgentState::Speaking => "speaking",
        }
    }
}

/// One caption segment's life: opened, text appended, closed (final).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caption {
    Open { segment_id: String, speaker: Speaker },
    Text { segment_id: String, delta: String },
    Close { segment_id: String },
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutput {
    /// Send this text on the Realtime socket.
    Realtime(String),
    /// (Re)open the Realtime socket after `after`, dropping the current one if any (without
    /// feeding its close back); answer with [`Call::realtime_opened`] or [`Call::realtime_closed`].
    Connect {
        after: Duration,
    },
    /// A 20 ms tick happened: publish [`Call::caller_frame`] when `caller` is set (and record
    /// it); the recorder advances one frame either way. `answer_from` is set on an answer's
    /// first frame: when its first audio delta arrived, so the shell can time delta -> RTP out
    /// up to the socket (and report it with [`CallStats::delta_to_rtp_ms`]).
    Tick {
        caller: bool,
        answer_from: Option<Instant>,
    },
    State(AgentState),
    Caption(Caption),
    /// A final turn, in spoken order.
    Turn(SpokenTurn),
    /// Ask the store whether a supervisor ended the session; answer with [`Call::ended_elsewhere`].
    PollEndedElsewhere,
    /// The call is over; collect [`Call::summary`] and stop.
    End(EndReason),
}

/// Tunables that are not per call.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// Counselor audio per `input_audio_buffer.append`.
    pub append_batch: Duration,
    /// How long to hold live audio for an expected pre-connect buffer.
    pub preconnect_timeout: Duration,
    pub session_cap: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            // One frame per append: a second frame's wait would add 20 ms to every turn-taking
            // decision the server's VAD makes.
            append_batch: Duration::from_millis(20),
            preconnect_timeout: Duration::from_secs(3),
            session_cap: Duration::from_secs(25 * 60),
        }
    }
}

/// Counters and latency samples of one call (milliseconds), for the call end and the bench.
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    pub frames_played: u64,
    pub samples_played: u64,
    pub underruns: u32,
    pub reconnects: u32,
    pub recycles: u32,
    pub late_ticks: u32,
    pub barge_ins: u32,
    /// Oldest sample of a batch received -> its append sent.
    pub mic_to_append_ms: Vec<u32>,
    /// First audio delta of a reply received -> its first frame made (by the core).
    pub delta_to_frame_ms: Vec<u32>,
    /// First audio delta of a reply received -> its first RTP packet handed to the socket.
    /// Measured by the shell (the room loop sends the packet), so the core leaves it empty.
    pub delta_to_rtp_ms: Vec<u32>,
    pub response_latency_ms: Vec<u32>,
    pub realtime_first_audio_ms: Vec<u32>,
    pub barge_in_stop_ms: Vec<u32>,
}

/// One role-play call.
pub struct Call {
    config: CallConfig,
    realtime: RealtimeConfig,
    setup: CallSetup,
    start: Instant,
    outputs: VecDeque<CallOutput>,
    ended: bool,
    state: AgentState,

    socket: Lifecycle,
    /// A drop left the counselor's last turn without its (whole) answer: ask the next socket.
    answer_owed: bool,

    // Audio in.
    /// Counselor audio -> appends (held while no socket takes them).
    input: Input,
    /// Appended samples at the last `speech_stopped`.
    last_stop_at: u64,
    last_counselor_input: Option<Instant>,

    // Audio out.
    /// Realtime audio -> paced caller frames.
    playout: Playout,
    /// The reply in progress; none: idle.
    reply: Option<Reply>,
    cancelled: Cancelled,

    // Conversation.
    /// The turns released so far and those waiting for their place.
    order: SpokenOrder,
    /// Counselor caption segments opened and not yet closed.
    open_counselor: Vec<String>,
    next_segment: u64,
    counselor_speaking: bool,
    speech_stopped_at: Option<Instant>,
    barge_in_at: Option<Instant>,
    last_activity: Instant,
    last_poll: Instant,
    poll_in_flight: bool,

    usage: RealtimeUsage,
    /// When the Realtime tokens reached the session's cap: the call ends once the answer in
    /// progress has been heard (and the counselor's pending transcripts came, within
    /// [`TRANSCRIPT_WAIT`]).
    cap_reached_at: Option<Instant>,
    metrics: Vec<TurnMetrics>,
    stats: CallStats,
}

impl Call {
    pub fn new(now: Instant, setup: CallSetup, realtime: RealtimeConfig, config: CallConfig) -> Self {
        let playout = Playout::new(now, setup.phone_line);
        let input = Input::new(config.append_batch);
        let history = setup.prior_turns.clone();
        let next_segment = history.len() as u64;
        let usage = RealtimeUsage { model: realtime.model.clone(), ..Default::default() };
        let mut call = Call {
            config,
            realtime,
            setup,
            start: now,
            outputs: VecDeque::new(),
            ended: false,
            state: AgentState::Initializing,
            socket: Lifecycle::new(now),
            answer_owed: false,
            input,
            last_stop_at: 0,
            last_counselor_input: None,
            playout,
            reply: None,
            cancelled: Cancelled::default(),
            order: SpokenOrder::new(history),
            open_counselor: Vec::new(),
            next_segment,
            counselor_speaking: false,
            speech_stopped_at: None,
            barge_in_at: None,
            last_activity: now,
            last_poll: now,
            poll_in_flight: false,
            usage,
            cap_reached_at: None,
            metrics: Vec::new(),
            stats: CallStats::default(),
        };
        call.outputs.push_back(CallOutput::State(AgentState::Initializing));
        call.outputs.push_back(CallOutput::Connect { after: Duration::ZERO });
        call
    }

    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.outputs.pop_front()
    }

    /// The caller frame of the last `Tick { caller: true }`.
    pub fn caller_frame(&self) -> &[i16] {
        self.playout.frame()
    }

    /// Whether any counselor audio (pre-connect or live) went to the model yet.
    pub fn audio_sent(&self) -> bool {
        self.input.appended() > 0
    }

    pub fn stats(&self) -> &CallStats {
        &self.stats
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Milliseconds since the call started.
    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64
    }

    /// The next moment [`Call::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.playout.next_tick();
        if let Some(h) = self.input.holding_until() {
            t = t.min(h);
        }
        if let Some(d) = self.order.next_deadline() {
            t = t.min(d);
        }
        t
    }

    // ---- inputs -------------------------------------------------------------------------------

    /// The Realtime socket is open: configure the session, re-seed, release held audio.
    pub fn realtime_opened(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        let first_socket = self.socket.opened(now);
        let update = realtime::session_update(&self.realtime, &self.setup.instructions, &self.setup.voice);
        self.outputs.push_back(CallOutput::Realtime(update));
        // The stored turns, then the final ones still waiting for their place in spoken order.
        for turn in self.order.known_turns() {
            if !turn.text.is_empty() {
                self.outputs.push_back(CallOutput::Realtime(realtime::seed_item(turn)));
            }
        }
        // A replayed turn the new socket's VAD does not find again (merged with the next one) is
        // given up like a transcript that never came.
        let replay_wait = Duration::from_millis(self.input.held() as u64 / 24) + TRANSCRIPT_WAIT;
        self.order.arm_replays(now + replay_wait);
        let fresh_call = first_socket && self.order.history().is_empty();
        if first_socket {
            self.set_state(AgentState::Listening);
        }
        if fresh_call && self.setup.caller_speaks_first {
            self.speech_stopped_at = Some(now);
            self.outputs.push_back(CallOutput::Realtime(realtime::response_create()));
            self.set_state(AgentState::Thinking);
        }
        self.input.flush_held(&mut sink!(self));
        self.maybe_request_owed_answer(now);
    }

    /// The socket closed or failed to open. Unless we closed it to recycle, reconnect with backoff.
    pub fn realtime_closed(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        // A replacement socket (recycle) that failed to open is retried like a drop.
        let closed = self.socket.closed();
        let was_open = closed.was_open;
        if was_open {
            self.stats.reconnects += 1;
        }
        // The counselor is owed an answer when the drop came after their turn ended and before
        // its reply was complete (a reply that had all arrived just plays out).
        let reply_incomplete = self.reply.as_ref().is_some_and(Reply::generating);
        let awaiting_reply = self.reply.is_none() && self.speech_stopped_at.is_some() && !self.counselor_speaking;
        if was_open && (reply_incomplete || awaiting_reply) {
            self.answer_owed = true;
        }
        // Counselor turns still waiting for their transcript (replayed ones too: a second drop
        // before the new socket heard them): their audio goes again, first.
        let replay_from = if was_open { self.order.mark_replays() } else { None };
        if let Some(from) = replay_from {
            self.input.replay(from);
            // The new socket's turn detection answers the replayed speech itself.
            self.answer_owed = false;
        }
        // A reply in flight keeps playing what already arrived; nothing more will come for it.
        if let Some(r) = self.reply.as_mut()
            && r.socket_dropped().flush_audio
        {
            self.flush_generated();
        }
        self.counselor_speaking = false;
        self.input.mark_waiting(now);
        self.outputs.push_back(CallOutput::Connect { after: closed.reconnect_after });
    }

    /// One decoded piece of the counselor's audio (48 kHz mono, any length).
    /// `received` is when its packet came off the network: mic -> append counts from there, so
    /// the room loop's queueing is part of the added latency.
    pub fn counselor_audio(&mut self, now: Instant, received: Instant, pcm: &[i16]) {
        if self.ended {
            return;
        }
        self.last_counselor_input = Some(now);
        self.input.feed(now, received.min(now), pcm, &mut sink!(self));
    }

    /// The counselor advertised    /// The counselor advertised a pre-connect buffer: hold live audio until it arrives (bounded).
    pub fn expect_preconnect(&mut self, now: Instant) {
        self.input.expect_preconnect(now + self.config.preconnect_timeout);
    }

    /// The pre-connect buffer (24 kHz mono): it goes to the model before any live audio.
    pub fn preconnect_audio(&mut self, _now: Instant, pcm24: &[i16]) {
        if self.ended {
            return;
        }
        self.input.preconnect(pcm24, &mut sink!(self));
    }

    /// One text message from the Realtime socket.
    pub fn realtime_message(&mut self, now: Instant, text: &str) {
        if self.ended {
            return;
        }
        let Some(event) = realtime::parse(text) else { return };
        self.realtime_event(now, event);
    }

    pub fn realtime_event(&mut self, now: Instant, event: ServerEvent) {
        match event {
            ServerEvent::SpeechStarted { item_id } => self.speech_started(now, item_id),
            ServerEvent::SpeechStopped { item_id } => {
                self.counselor_speaking = false;
                self.last_activity = now;
                self.speech_stopped_at = Some(now);
                self.last_stop_at = self.input.appended();
                self.order.speech_stopped(&item_id, now + TRANSCRIPT_WAIT);
                if self.reply.is_none() {
                    self.set_state(AgentState::Thinking);
                }
            }
            ServerEvent::InputTranscriptDelta { item_id, delta } => {
                if let Some(segment_id) = self.counselor_segment(&item_id) {
                    self.open_counselor_caption(&segment_id);
                    if !delta.is_empty() {
                        self.outputs.push_back(CallOutput::Caption(Caption::Text { segment_id, delta }));
                    }
                }
            }
            ServerEvent::InputTranscriptCompleted { item_id, transcript } => {
                self.counselor_final(now, &item_id, Some(transcript))
            }
            ServerEvent::InputTranscriptFailed { item_id } => self.counselor_final(now, &item_id, None),
            ServerEvent::ResponseCreated { response_id } => {
                if self.reply.as_ref().is_some_and(Reply::live) {
                    // One reply at a time: a second would talk over the first.
                    return;
                }
                self.answer_owed = false;
                if self.reply.is_some() {
                    // An orphan still playing is cut here: the new reply must not queue behind it.
                    self.playout.clear();
                    self.finish_reply(now, true);
                }
                let segment_id = self.new_segment("caller");
                let socket_gen = self.socket.generation();
                self.reply = Some(Reply::new(response_id, segment_id, self.speech_stopped_at.take(), socket_gen));
                self.set_state(AgentState::Thinking);
            }
            ServerEvent::ReplyItem { response_id, item_id } => {
                if let Some(r) = self.current(&response_id)
                    && r.item_id.is_empty()
                {
                    r.item_id = item_id;
                }
            }
            ServerEvent::AudioDelta { response_id, item_id, pcm } => {
                let Some(r) = self.current(&response_id) else { return };
                if r.item_id.is_empty() {
                    r.item_id = item_id;
                }
                r.first_delta_at.get_or_insert(now);
                r.generated += pcm.len() as u64;
                let starting = r.first_frame_at.is_none();
                self.usage.output_audio_ms += pcm.len() as u64 / 24;
                self.push_generated(&pcm);
                // The first frame of an answer goes out now, not at the next 20 ms tick: the
                // clock only has to be steady while the caller speaks.
                if starting {
                    self.playout.start_now(now);
                }
            }
            ServerEvent::AudioDone { response_id } => {
                let Some(r) = self.current(&response_id) else { return };
                if r.audio_finished() {
                    self.flush_generated();
                }
            }
            ServerEvent::TranscriptDelta { response_id, item_id, delta } => {
                let Some(r) = self.current(&response_id) else { return };
                if r.item_id.is_empty() {
                    r.item_id = item_id;
                }
                r.transcript.push_str(&delta);
            }
            ServerEvent::TranscriptDone { response_id, transcript, .. } => {
                let Some(r) = self.current(&response_id) else { return };
                r.transcript_finished(transcript);
                self.maybe_finish_reply(now);
            }
            ServerEvent::ResponseDone { response_id, usage, .. } => {
                self.usage.input_text_tokens += usage.input_text_tokens;
                self.usage.input_audio_tokens += usage.input_audio_tokens;
                self.usage.output_text_tokens += usage.output_text_tokens;
                self.usage.output_audio_tokens += usage.output_audio_tokens;
                self.usage.cached_tokens += usage.cached_tokens;
                if self.cap_reached_at.is_none()
                    && let Some(cap) = self.setup.token_cap
                    && self.usage.total_tokens() >= cap
                {
                    tracing::info!(
                        tokens = self.usage.total_tokens(),
                        cap,
                        "the session's token cap is reached; ending the call"
                    );
                    self.cap_reached_at = Some(now);
                }
                if let Some(r) = self.current(&response_id) {
                    // Whatever its status: a reply that ends without a transcript (cancelled by
                    // the server, failed) is final with what it has.
                    if r.response_finished() {
                        self.flush_generated();
                    }
                    self.maybe_finish_reply(now);
                }
            }
            ServerEvent::Error { code, message } => {
                // Errors answer one client event; the call goes on (a cancel that raced the
                // server's own interruption is the common, harmless one).
                tracing::debug!(%code, %message, "realtime error event");
            }
            ServerEvent::SessionCreated | ServerEvent::SessionUpdated | ServerEvent::Other(_) => {}
        }
    }

    /// A 20 ms deadline (or another timer) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        self.input.preconnect_timeout(now, &mut sink!(self));
        self.expire_slots(now);
        if let Due::Tick { late } = self.playout.due(now, self.reply.is_none()) {
            if late {
                self.stats.late_ticks += 1;
            }
            self.tick(now);
        }
        self.check_limits(now);
    }

    pub fn counselor_left(&mut self, now: Instant) {
        self.end(now, EndReason::CounselorLeft);
    }

    /// SIGTERM: end the session cleanly now (turns flushed, session never left active).
    pub fn shutdown(&mut self, now: Instant) {
        self.end(now, EndReason::AgentShutdown);
    }

    /// The store failed for good, or the socket could not be reopened: end as failed.
    pub fn fail(&mut self, now: Instant) {
        self.end(now, EndReason::Failed);
    }

    pub fn ended_elsewhere(&mut self, now: Instant, ended: bool) {
        self.poll_in_flight = false;
        if ended {
            self.end(now, EndReason::EndedBySupervisor);
        }
    }

    /// Usage, per-turn metrics and counters, once the call has ended.
    pub fn summary(&self) -> (RealtimeUsage, Vec<TurnMetrics>, CallStats) {
        let mut usage = self.usage.clone();
        usage.input_audio_ms = self.input.appended() / 24;
        (usage, self.metrics.clone(), self.stats.clone())
    }

    // ---- internals ----------------------------------------------------------------------------

    fn set_state(&mut self, state: AgentState) {
        if self.state != state {
            self.state = state;
            self.outputs.push_back(CallOutput::State(state));
        }
    }

    fn new_segment(&mut self, who: &str) -> String {
        segment_name(&mut self.next_segment, self.setup.session_id, who)
    }

    /// The reply `response_id` names, unless it was cancelled or is not ours.
    fn current(&mut self, response_id: &str) -> Option<&mut Reply> {
        if self.cancelled.contains(response_id) {
            return None;
        }
        self.reply.as_mut().filter(|r| r.live() && (response_id.is_empty() || r.response_id == response_id))
    }

    /// An answer's audio delta goes to the playout    /// An answer's audio delta goes to the playout; the reply counts what it queued.
    fn push_generated(&mut self, pcm: &[i16]) {
        let queued = self.playout.push(pcm);
        if let Some(r) = self.reply.as_mut() {
            r.queued += queued;
        }
    }

    /// The reply's audio is complete: the playout's tail is queued for it.
    fn flush_generated(&mut self) {
        let queued = self.playout.flush();
        if let Some(r) = self.reply.as_mut() {
            r.queued += queued;
        }
    }

    fn tick(&mut self, now: Instant) {
        // Senders stop sending packets in silence (Opus DTX): the model's VAD only sees elapsed
        // silence as appended audio, so a counselor who went quiet is fed digital silence.
        if self.last_counselor_input.is_some_and(|t| now.saturating_duration_since(t) >= DTX_GAP) {
            self.input.feed(now, now, &SILENCE, &mut sink!(self));
        }
        // A stopped caller (barge-in) shows here: the first tick after it is silent.
        if let Some(at) = self.barge_in_at.take() {
            let ms = now.saturating_duration_since(at).as_millis() as u32;
            self.stats.barge_in_stop_ms.push(ms);
            if let Some(m) = self.metrics.last_mut() {
                m.barge_in_stop_ms = Some(ms);
            }
        }
        let mut answer_from = None;
        let audio_done = self.reply.as_ref().is_none_or(Reply::audio_done);
        let expecting = self.reply.as_ref().is_some_and(|r| r.first_frame_at.is_some() && !r.audio_done());
        let frame = self.playout.next_frame(audio_done, expecting);
        let caller = frame == Frame::Played;
        if caller {
            self.stats.frames_played += 1;
            self.last_activity = now;
            let start_ms = self.ms(now);
            if let Some(r) = self.reply.as_mut() {
                let played = FRAME_SAMPLES.min(r.queued);
                r.queued -= played;
                r.played += played as u64;
                self.stats.samples_played += played as u64;
                if r.first_frame_at.is_none() {
                    r.first_frame_at = Some(now);
                    r.started_ms = start_ms;
                    if let Some(d) = r.first_delta_at {
                        self.stats.delta_to_frame_ms.push(now.saturating_duration_since(d).as_millis() as u32);
                        answer_from = Some(d);
                    }
                }
            }
            self.set_state(AgentState::Speaking);
            self.reveal_caption(false);
        } else if frame == Frame::Underrun
            && let Some(r) = self.reply.as_mut()
        {
            r.underruns += 1;
            self.stats.underruns += 1;
        }
        self.maybe_finish_reply(now);
        self.outputs.push_back(CallOutput::Tick { caller, answer_from });
        self.maybe_recycle(now);
        self.maybe_poll(now);
    }

    /// Captions the caller's text up to what the played audio covers (at a word boundary).
    fn reveal_caption(&mut self, all: bool) {
        let Some(r) = self.reply.as_mut() else { return };
        let len = r.transcript.len();
        let target = if all {
            len
        } else if r.audio_done() && r.transcript_done() {
            let total = (r.generated * 2).max(1);
            (len as u64 * r.played / total) as usize
        } else {
            // Still arriving: a speaking-rate estimate, never past what the audio so far covers.
            let by_rate = (r.played / 48 / MS_PER_CHAR) as usize;
            let by_audio = (len as u64 * r.played / (r.generated * 2).max(1)) as usize;
            by_rate.min(by_audio)
        };
        // The final transcript may differ from the deltas it replaces: keep the mark valid.
        r.revealed = r.revealed.min(len);
        while !r.transcript.is_char_boundary(r.revealed) {
            r.revealed -= 1;
        }
        let mut end = target.min(len);
        if end <= r.revealed {
            return;
        }
        if end < len {
            // Back to the end of the last whole word.
            while end > r.revealed && !r.transcript.is_char_boundary(end) {
                end -= 1;
            }
            match r.transcript[r.revealed..end].rfind(' ') {
                Some(i) => end = r.revealed + i + 1,
                None => end = r.revealed,
            }
        }
        if end <= r.revealed {
            return;
        }
        let delta = r.transcript[r.revealed..end].to_owned();
        r.revealed = end;
        let segment_id = r.segment_id.clone();
        if !r.caption_open {
            r.caption_open = true;
            self.outputs.push_back(CallOutput::Caption(Caption::Open {
                segment_id: segment_id.clone(),
                speaker: Speaker::Caller,
            }));
        }
        self.outputs.push_back(CallOutput::Caption(Caption::Text { segment_id, delta }));
    }

    /// A reply whose audio has all been played and whose transcript is known is a final turn.
    fn maybe_finish_reply(&mut self, now: Instant) {
        let done = self.reply.as_ref().is_some_and(|r| r.is_complete(self.playout.is_empty()));
        if done {
            self.finish_reply(now, false);
        }
    }

    /// Ends the reply: full text when `cut` is false, what was heard otherwise.
    fn finish_reply(&mut self, now: Instant, cut: bool) {
        let orphaned = self.reply.as_ref().is_some_and(Reply::orphaned);
        self.reveal_caption(!cut && !orphaned);
        let Some(r) = self.reply.take() else { return };
        let heard = r.transcript[..r.revealed].trim().to_owned();
        if r.caption_open {
            self.outputs.push_back(CallOutput::Caption(Caption::Close { segment_id: r.segment_id.clone() }));
        }
        let ms = |t: Option<Instant>, from: Option<Instant>| match (t, from) {
            (Some(t), Some(f)) => Some(t.saturating_duration_since(f).as_millis() as u32),
            _ => None,
        };
        let metrics = TurnMetrics {
            segment_id: r.segment_id.clone(),
            response_latency_ms: ms(r.first_frame_at, r.trigger_at),
            realtime_first_audio_ms: ms(r.first_delta_at, r.trigger_at),
            barge_in_stop_ms: None,
            underruns: r.underruns,
        };
        if let Some(v) = metrics.response_latency_ms {
            self.stats.response_latency_ms.push(v);
        }
        if let Some(v) = metrics.realtime_first_audio_ms {
            self.stats.realtime_first_audio_ms.push(v);
        }
        if r.played > 0 && !heard.is_empty() {
            let cut = cut || r.cut_by_drop() || r.revealed < r.transcript.len();
            self.metrics.push(metrics);
            let turn = SpokenTurn {
                segment_id: r.segment_id,
                speaker: Speaker::Caller,
                text: heard,
                started_ms: r.started_ms,
                ended_ms: self.ms(now),
                cut,
            };
            // A reply from a socket that is gone, finished after its successor opened: the new
            // conversation has not seen it (the seed at open only had the turns final by then).
            if self.socket.is_open() && r.socket_gen < self.socket.generation() {
                self.outputs.push_back(CallOutput::Realtime(realtime::seed_item(&turn)));
            }
            self.order.caller_final(turn);
            self.release_turns();
        }
        if !self.counselor_speaking {
            self.set_state(AgentState::Listening);
        }
        self.maybe_request_owed_answer(now);
    }

    /// After a drop: once the cut reply has been heard and the new socket knows the conversation,
    /// ask for the answer the counselor is still owed.
    fn maybe_request_owed_answer(&mut self, now: Instant) {
        if self.answer_owed && self.socket.is_open() && self.reply.is_none() && !self.counselor_speaking {
            self.answer_owed = false;
            self.speech_stopped_at = Some(now);
            self.outputs.push_back(CallOutput::Realtime(realtime::response_create()));
            self.set_state(AgentState::Thinking);
        }
    }

    fn speech_started(&mut self, now: Instant, item_id: String) {
        self.counselor_speaking = true;
        self.last_activity = now;
        // The counselor spoke again: the model answers this turn, not the one a drop cut.
        self.answer_owed = false;
        self.speech_stopped_at = None;
        let barging = self
            .reply
            .as_ref()
            .is_some_and(|r| !self.playout.is_empty() || (!r.orphaned() && (r.generating() || r.queued > 0)));
        if barging && let Some(r) = self.reply.as_mut() {
            self.stats.barge_ins += 1;
            let playing = !self.playout.is_empty();
            self.playout.clear();
            if playing {
                self.barge_in_at = Some(now);
            }
            let orphaned = r.orphaned();
            if r.barged_in() {
                self.outputs.push_back(CallOutput::Realtime(realtime::response_cancel()));
            }
            self.cancelled.insert(&r.response_id);
            if !r.item_id.is_empty() && !orphaned {
                // Never more than was generated, or the server refuses the truncate.
                let played_ms = r.played / 48;
                let generated_ms = r.generated / 24;
                if played_ms == 0 {
                    self.outputs.push_back(CallOutput::Realtime(realtime::delete(&r.item_id)));
                } else {
                    self.outputs
                        .push_back(CallOutput::Realtime(realtime::truncate(&r.item_id, played_ms.min(generated_ms))));
                }
            }
            self.finish_reply(now, true);
        }
        let audio_from = self.input.appended().saturating_sub(SPEECH_LOOKBACK).max(self.last_stop_at);
        let started_ms = self.ms(now);
        let (next_segment, session_id) = (&mut self.next_segment, self.setup.session_id);
        // A replayed turn (speech a dropped socket did not transcribe) keeps its segment.
        self.order
            .speech_started(item_id, audio_from, started_ms, || segment_name(next_segment, session_id, "counselor"));
        self.set_state(AgentState::Listening);
    }

    /// The segment of the counselor turn `item_id` (or the oldest one still waiting for words).
    fn counselor_segment(&self, item_id: &str) -> Option<String> {
        self.order.counselor_segment(item_id)
    }

    fn open_counselor_caption(&mut self, segment_id: &str) {
        if !self.open_captions_contains(segment_id) {
            self.open_counselor.push(segment_id.to_owned());
            self.outputs.push_back(CallOutput::Caption(Caption::Open {
                segment_id: segment_id.to_owned(),
                speaker: Speaker::Counselor,
            }));
        }
    }

    fn open_captions_contains(&self, segment_id: &str) -> bool {
        self.open_counselor.iter().any(|s| s == segment_id)
    }

    fn counselor_final(&mut self, now: Instant, item_id: &str, transcript: Option<String>) {
        let Some(segment_id) = self.counselor_segment(item_id) else { return };
        let text = transcript.unwrap_or_default().trim().to_owned();
        // No deltas came (or none were captioned): the whole text in one piece.
        if !text.is_empty() && !self.open_captions_contains(&segment_id) {
            self.open_counselor_caption(&segment_id);
            self.outputs
                .push_back(CallOutput::Caption(Caption::Text { segment_id: segment_id.clone(), delta: text.clone() }));
        }
        if self.open_captions_contains(&segment_id) {
            self.open_counselor.retain(|s| *s != segment_id);
            self.outputs.push_back(CallOutput::Caption(Caption::Close { segment_id: segment_id.clone() }));
        }
        let ended_ms = self.ms(now);
        self.order.counselor_final(&segment_id, &text, ended_ms);
        self.release_turns();
    }

    fn expire_slots(&mut self, now: Instant) {
        if self.order.expire(now) {
            self.release_turns();
        }
    }

    /// Emits the turns at the front of the spoken order that are final.
    fn release_turns(&mut self) {
        let outputs = &mut self.outputs;
        self.order.release(|turn| outputs.push_back(CallOutput::Turn(turn.clone())));
    }

    /// Between turns: nobody speaking, no reply, no transcript pending.
    fn between_turns(&self) -> bool {
        self.reply.is_none() && !self.counselor_speaking && self.order.is_empty() && self.playout.is_empty()
    }

    fn maybe_recycle(&mut self, now: Instant) {
        if self.socket.recycle_due(now, self.config.session_cap) && self.between_turns() {
            self.stats.recycles += 1;
            // Audio the counselor speaks meanwhile is held and appended on the new socket.
            self.socket.recycle();
            self.outputs.push_back(CallOutput::Connect { after: Duration::ZERO });
        }
    }

    fn maybe_poll(&mut self, now: Instant) {
        if !self.poll_in_flight && now.saturating_duration_since(self.last_poll) >= POLL_EVERY && self.between_turns() {
            self.poll_in_flight = true;
            self.last_poll = now;
            self.outputs.push_back(CallOutput::PollEndedElsewhere);
        }
    }

    fn check_limits(&mut self, now: Instant) {
        let capped = self.cap_reached_at.is_some_and(|at| {
            self.reply.is_none()
                && self.playout.is_empty()
                && (self.order.is_empty() || now.saturating_duration_since(at) >= TRANSCRIPT_WAIT)
        });
        if capped {
            self.end(now, EndReason::TokenCap);
        } else if now.saturating_duration_since(self.start) >= self.setup.max_duration {
            self.end(now, EndReason::MaxDuration);
        } else if self.between_turns()
            && now.saturating_duration_since(self.last_activity) >= self.setup.silence_timeout
        {
            self.end(now, EndReason::Silence);
        }
    }

    fn end(&mut self, now: Instant, reason: EndReason) {
        if self.ended {
            return;
        }
        self.answer_owed = false;
        // What was heard of a reply in progress is a (cut) turn; transcripts still pending are
        // given up (their words never came).
        if self.reply.is_some() {
            let heard_all =
                self.reply.as_ref().is_some_and(|r| r.audio_done() && r.transcript_done() && self.playout.is_empty());
            self.playout.clear();
            self.finish_reply(now, !heard_all);
        }
        self.order.give_up_pending();
        self.release_turns();
        for segment_id in std::mem::take(&mut self.open_counselor) {
            self.outputs.push_back(CallOutput::Caption(Caption::Close { segment_id }));
        }
        self.ended = true;
        self.outputs.push_back(CallOutput::End(reason));
    }
}

/// The next segment id of the session (`<session>-<who>-<n>`).
fn segment_name(next: &mut u64, session_id: uuid::Uuid, who: &str) -> String {
    *next += 1;
    format!("{}-{who}-{next}", session_id.simple())
}

/// The input's view of the call: the socket, spoken order (for replays), outputs and stats.
struct CallSink<'a> {
    socket: &'a Lifecycle,
    order: &'a mut SpokenOrder,
    outputs: &'a mut VecDeque<CallOutput>,
    stats: &'a mut CallStats,
}

impl InputSink for CallSink<'_> {
    fn open(&self) -> bool {
        self.socket.is_open()
    }
    fn pending_from(&self) -> Option<u64> {
        self.order.pending_audio_from()
    }
    fn rebase(&mut self, from: u64, at: u64) {
        self.order.rebase_replays(from, at);
    }
    fn append(&mut self, text: String) {
        self.outputs.push_back(CallOutput::Realtime(text));
    }
    fn mic_to_append(&mut self, ms: u32) {
        self.stats.mic_to_append_ms.push(ms);
    }
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("session_id", &self.setup.session_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
