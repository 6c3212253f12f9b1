//! The room session as a sans-IO state machine: LiveKit's two-peer-connection flow (protocol 17)
//! on top of two str0m [`Rtc`] instances.
//!
//! The session owns no socket and no clock. The shell (`participant`) feeds it signal messages,
//! UDP datagrams, the current time and application commands, then drains [`Session::poll_output`]
//! and waits until [`Session::poll_timeout`]. That keeps every protocol decision testable without
//! a network, and keeps str0m's "mutate, then drain to `Timeout`" contract in one place
//! ([`Peer::drain`]).
//!
//! The flow it implements:
//! - Publisher PC (we offer): `AddTrackRequest{cid}` -> `TrackPublishedResponse{cid}` -> our offer
//!   with the `_reliable`/`_lossy` data channels and a send-only Opus m-line whose msid track id is
//!   the cid -> the SFU's answer. Without audio the offer carries the data channels only.
//! - Subscriber PC (the SFU offers): we answer; remote audio arrives there, and the SFU names each
//!   track in the offer's msid (`PA_xxx|TR_xxx`).
//! - Trickle ICE both ways, tagged with the PC's `SignalTarget`. Candidates that arrive before the
//!   PC has its remote description are held until it has one.
//!
//! str0m takes the controlling ICE role on both PCs by itself: it offers on the publisher, and on
//! the subscriber it answers an ICE-lite offer, which also makes it controlling (RFC 8445 6.1.1).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use livekit_protocol as proto;
use prost::Message as _;
use proto::{signal_request, signal_response};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};
use thiserror::Error;
use tracing::{debug, info, trace, warn};

use crate::audio::{self, AudioError, Decoder, Encoder};
use crate::sdp::{self, CandidateInit, TrackOrigin};

/// Label of the ordered, reliable data channel LiveKit clients open on the publisher PC.
pub const RELIABLE_CHANNEL: &str = "_reliable";
/// Label of the unordered, no-retransmit data channel.
pub const LOSSY_CHANNEL: &str = "_lossy";

#[derive(Debug, Error)]
pub enum SessionError {
    #[error("webrtc: {0}")]
    Rtc(#[from] RtcError),
    #[error("sdp from the server: {0}")]
    Sdp(String),
    #[error("audio: {0}")]
    Audio(#[from] AudioError),
    #[error("the {0} data channel is not open yet")]
    ChannelNotOpen(&'static str),
}

/// Which of LiveKit's two peer connections a thing belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// Carries what we send; we make the offers.
    Publisher,
    /// Carries what we receive; the SFU makes the offers.
    Subscriber,
}

impl PeerRole {
    fn target(self) -> proto::SignalTarget {
        match self {
            PeerRole::Publisher => proto::SignalTarget::Publisher,
            PeerRole::Subscriber => proto::SignalTarget::Subscriber,
        }
    }

    fn from_target(target: i32) -> Option<Self> {
        match proto::SignalTarget::try_from(target).ok()? {
            proto::SignalTarget::Publisher => Some(PeerRole::Publisher),
            proto::SignalTarget::Subscriber => Some(PeerRole::Subscriber),
        }
    }
}

/// What the application wants from the session at start.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Local UDP address of the publisher PC's socket (its only ICE host candidate).
    pub publisher_addr: SocketAddr,
    /// Local UDP address of the subscriber PC's socket.
    pub subscriber_addr: SocketAddr,
    /// Publish one microphone-type Opus track, fed by [`Session::publish_audio`].
    pub publish_audio: bool,
    /// Name of the published track as other participants see it.
    pub track_name: String,
}

/// Something the shell must do, or hand to the application.
#[derive(Debug)]
pub enum SessionOutput {
    /// Send on the signal WebSocket (boxed: signal messages dwarf the other variants).
    Signal(Box<signal_request::Message>),
    /// Send a datagram from the given PC's socket.
    Transmit { role: PeerRole, destination: SocketAddr, contents: Vec<u8> },
    /// Tell the application.
    Event(SessionEvent),
}

/// What happened in the room, for the application.
#[derive(Debug)]
pub enum SessionEvent {
    /// ICE and DTLS are up on this PC.
    Connected(PeerRole),
    /// ICE lost the peer on this PC.
    Disconnected(PeerRole),
    /// The SFU accepted our audio track; `track_sid` is how others see it.
    TrackPublished { cid: String, track_sid: String },
    /// One decoded frame (usually 20 ms) of 48 kHz mono PCM from a remote track, with the Opus
    /// packet it came from (the recording keeps the packet as it is instead of encoding again).
    /// `received` is when the packet came off the network.
    Audio { origin: TrackOrigin, pcm: Vec<i16>, packet: std::sync::Arc<[u8]>, received: Instant },
    /// A data packet from the SFU (user packets, stream headers/chunks/trailers, ...).
    Data(Box<proto::DataPacket>),
    /// The session was given up and joined again as a new participant (new sid).
    Rejoined { sid: String, identity: String },
    /// Participants joined, changed or left (`state` DISCONNECTED).
    Participants(Vec<proto::ParticipantInfo>),
    /// The server asked us to leave (or told us we were removed).
    Left(proto::LeaveRequest),
}

/// Where the publisher PC is in its negotiation.
enum Publishing {
    /// Waiting for `TrackPublishedResponse` before the first offer.
    AwaitingTrack,
    /// Our offer is out; the SFU's answer completes it.
    Offered(SdpPendingOffer),
    /// Negotiated; audio and data can flow once ICE/DTLS are up.
    Negotiated,
}

/// One str0m peer connection plus the bookkeeping LiveKit's signalling needs around it.
struct Peer {
    role: PeerRole,
    rtc: Rtc,
    candidate: Candidate,
    timeout: Instant,
    /// Whether the remote description is applied, so remote candidates can be added.
    has_remote: bool,
    /// Remote candidates trickled before the remote description.
    early_candidates: Vec<Candidate>,
    /// Whether our host candidate was trickled to the SFU (done once, after our first SDP).
    trickled: bool,
    /// Open data channels by label.
    channels: HashMap<String, ChannelId>,
    /// Whether ICE currently has a working pair; a resume restarts ICE only where it has not.
    ice_connected: bool,
}

impl Peer {
    fn new(role: PeerRole, now: Instant, addr: SocketAddr) -> Result<Self, SessionError> {
        // Opus only, without RED: we ask the SFU for plain Opus (`disable_red`) and str0m's
        // depacketizer then hands us whole Opus frames.
        let mut rtc = Rtc::builder().clear_codecs().enable_opus(true, false).build(now);
        let candidate = Candidate::host(addr, "udp").map_err(|e| SessionError::Sdp(e.to_string()))?;
        rtc.add_local_candidate(candidate.clone());
        Ok(Self {
            role,
            rtc,
            candidate,
            timeout: now,
            has_remote: false,
            early_candidates: Vec::new(),
            trickled: false,
            channels: HashMap::new(),
            ice_connected: false,
        })
    }

    /// Drains str0m after a mutation, as its run-loop contract requires, collecting transmits
    /// into `out` and returning the events for the session to interpret.
    fn drain(&mut self, out: &mut VecDeque<SessionOutput>) -> Result<Vec<Event>, SessionError> {
        let mut events = Vec::new();
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return Ok(events);
                }
                Output::Transmit(t) => out.push_back(SessionOutput::Transmit {
                    role: self.role,
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                }),
                Output::Event(e) => events.push(e),
            }
        }
    }

    fn set_has_remote(&mut self) {
        self.has_remote = true;
        for c in std::mem::take(&mut self.early_candidates) {
            self.rtc.add_remote_candidate(c);
        }
    }

    /// Our host candidate as a `TrickleRequest`, once, after our first local description.
    fn trickle_request(&mut self, local_sdp: &str) -> Option<signal_request::Message> {
        if self.trickled {
            return None;
        }
        self.trickled = true;
        let init = CandidateInit {
            candidate: self.candidate.to_sdp_string(),
            sdp_mid: sdp::first_mid(local_sdp),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        Some(signal_request::Message::Trickle(proto::TrickleRequest {
            candidate_init: serde_json::to_string(&init).expect("plain struct serializes"),
            target: self.role.target() as i32,
            r#final: false,
        }))
    }
}

/// The room session: both PCs, the published track and the decoders of subscribed tracks.
pub struct Session {
    publisher: Peer,
    subscriber: Peer,
    publishing: Publishing,
    /// Client id of our audio track; also its msid track id, which is how the SFU matches the
    /// media it receives to our `AddTrackRequest`.
    cid: String,
    track_name: String,
    publish_audio: bool,
    audio_mid: Option<Mid>,
    opus_pt: Option<Pt>,
    encoder: Encoder,
    /// RTP clock of our track in samples; advances one frame per published frame.
    rtp_samples: u64,
    frames_dropped: u64,
    /// Subscriber mids to the track they carry, from the SFU's latest offer.
    origins: HashMap<String, TrackOrigin>,
    decoders: HashMap<Mid, Decoder>,
    outputs: VecDeque<SessionOutput>,
    local_participant_sid: String,
    /// What a resume's `SyncState` reports: our published track, our last SDP on each PC.
    published: Option<proto::TrackPublishedResponse>,
    last_publisher_offer: Option<String>,
    last_subscriber_answer: Option<String>,
}

impl Session {
    /// Starts a session after the signal connection produced `join`.
    pub fn new(now: Instant, config: SessionConfig, join: &proto::JoinResponse) -> Result<Self, SessionError> {
        let local_participant_sid = join.participant.as_ref().map(|p| p.sid.clone()).unwrap_or_default();
        // The cid only has to be unique within our own participant; deriving it from the sid
        // keeps it readable in server logs. msid allows only token characters, which it is.
        let cid = format!("{local_participant_sid}-mic");
        let mut session = Self {
            publisher: Peer::new(PeerRole::Publisher, now, config.publisher_addr)?,
            subscriber: Peer::new(PeerRole::Subscriber, now, config.subscriber_addr)?,
            publishing: Publishing::AwaitingTrack,
            cid,
            track_name: config.track_name,
            publish_audio: config.publish_audio,
            audio_mid: None,
            opus_pt: None,
            encoder: Encoder::new()?,
            rtp_samples: 0,
            frames_dropped: 0,
            origins: HashMap::new(),
            decoders: HashMap::new(),
            outputs: VecDeque::new(),
            local_participant_sid,
            published: None,
            last_publisher_offer: None,
            last_subscriber_answer: None,
        };
        if session.publish_audio {
            // LiveKit wants the track announced before it appears in an offer.
            session.signal(signal_request::Message::AddTrack(proto::AddTrackRequest {
                cid: session.cid.clone(),
                name: session.track_name.clone(),
                r#type: proto::TrackType::Audio as i32,
                source: proto::TrackSource::Microphone as i32,
                disable_red: true,
                ..Default::default()
            }));
        } else {
            session.offer_publisher(false)?;
        }
        Ok(session)
    }

    /// The sid the server gave us in `JoinResponse`.
    pub fn participant_sid(&self) -> &str {
        &self.local_participant_sid
    }

    /// Frames handed to [`Session::publish_audio`] before the track could carry them.
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped
    }

    /// Next output for the shell, if any.
    pub fn poll_output(&mut self) -> Option<SessionOutput> {
        self.outputs.pop_front()
    }

    /// When the shell must call [`Session::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Instant {
        self.publisher.timeout.min(self.subscriber.timeout)
    }

    /// Advances both PCs' timers (ICE checks, DTLS retransmits, RTCP, SCTP).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        for role in [PeerRole::Publisher, PeerRole::Subscriber] {
            if self.peer(role).timeout <= now {
                self.peer_mut(role).rtc.handle_input(Input::Timeout(now))?;
                self.drain(role)?;
            }
        }
        Ok(())
    }

    /// A datagram arrived on `role`'s socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        role: PeerRole,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> Result<(), SessionError> {
        let Ok(contents) = contents.try_into() else {
            // Not STUN, DTLS, RTP or RTCP: nothing str0m can use.
            trace!(?role, %source, "ignoring unrecognised datagram");
            return Ok(());
        };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination, contents });
        self.peer_mut(role).rtc.handle_input(input)?;
        self.drain(role)
    }

    /// A message from the signal connection.
    pub fn handle_signal(&mut self, _now: Instant, message: signal_response::Message) -> Result<(), SessionError> {
        use signal_response::Message as M;
        match message {
            M::TrackPublished(published) => {
                if published.cid != self.cid {
                    debug!(cid = %published.cid, "TrackPublished for a track we did not add");
                    return Ok(());
                }
                let track_sid = published.track.as_ref().map(|t| t.sid.clone()).unwrap_or_default();
                info!(%track_sid, "audio track accepted by the server");
                self.published = Some(published);
                self.emit(SessionEvent::TrackPublished { cid: self.cid.clone(), track_sid });
                if matches!(self.publishing, Publishing::AwaitingTrack) {
                    self.offer_publisher(true)?;
                }
            }
            M::Answer(answer) => self.accept_publisher_answer(&answer.sdp)?,
            M::Offer(offer) => self.answer_subscriber(offer)?,
            M::Trickle(trickle) => self.add_remote_candidate(&trickle)?,
            M::Leave(leave) => self.emit(SessionEvent::Left(leave)),
            M::Update(update) => self.emit(SessionEvent::Participants(update.participants)),
            M::Join(_) => warn!("unexpected second JoinResponse"),
            other => trace!(message = ?other, "signal message not handled"),
        }
        Ok(())
    }

    /// Publishes one 20 ms frame of 48 kHz mono PCM on our audio track.
    ///
    /// Frames given before the track is negotiated are dropped and counted: audio is real-time,
    /// so holding them would only add delay.
    pub fn publish_audio(&mut self, now: Instant, pcm: &[i16]) -> Result<(), SessionError> {
        if !self.can_publish() {
            self.frames_dropped += 1;
            return Ok(());
        }
        let packet = self.encoder.encode(pcm)?;
        self.publish_opus(now, packet)
    }

    /// Whether a frame given now would be sent (the track is negotiated).
    fn can_publish(&self) -> bool {
        self.audio_mid.is_some() && matches!(self.publishing, Publishing::Negotiated)
    }

    /// Publishes one 20 ms Opus packet that the caller encoded (48 kHz, mono or stereo).
    pub fn publish_opus(&mut self, now: Instant, packet: Vec<u8>) -> Result<(), SessionError> {
        let (Some(mid), Publishing::Negotiated) = (self.audio_mid, &self.publishing) else {
            self.frames_dropped += 1;
            return Ok(());
        };
        let Some(writer) = self.publisher.rtc.writer(mid) else {
            self.frames_dropped += 1;
            return Ok(());
        };
        let pt = match self.opus_pt {
            Some(pt) => pt,
            None => {
                let Some(pt) = writer.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt()) else {
                    return Err(SessionError::Sdp("the SFU did not accept Opus".into()));
                };
                self.opus_pt = Some(pt);
                pt
            }
        };
        // Media time counts samples, so the receiver's jitter buffer sees an exact 20 ms cadence
        // no matter how unevenly the frames reach us.
        let rtp_time = MediaTime::new(self.rtp_samples, Frequency::FORTY_EIGHT_KHZ);
        self.rtp_samples += audio::FRAME_SAMPLES as u64;
        writer.write(pt, now, rtp_time, packet)?;
        self.drain(PeerRole::Publisher)
    }

    /// Sends a data packet on the publisher's `_reliable` (or `_lossy`) channel.
    pub fn send_data(&mut self, packet: &proto::DataPacket, reliable: bool) -> Result<(), SessionError> {
        let label = if reliable { RELIABLE_CHANNEL } else { LOSSY_CHANNEL };
        let id = *self.publisher.channels.get(label).ok_or(SessionError::ChannelNotOpen(label))?;
        let Some(mut channel) = self.publisher.rtc.channel(id) else {
            return Err(SessionError::ChannelNotOpen(label));
        };
        channel.write(true, &packet.encode_to_vec())?;
        self.drain(PeerRole::Publisher)
    }

    /// Whether the publisher's reliable data channel is open.
    pub fn data_ready(&self) -> bool {
        self.publisher.channels.contains_key(RELIABLE_CHANNEL)
    }

    /// Asks the server to leave the room.
    pub fn leave(&mut self) {
        self.signal(signal_request::Message::Leave(proto::LeaveRequest {
            can_reconnect: false,
            reason: proto::DisconnectReason::ClientInitiated as i32,
            action: proto::leave_request::Action::Disconnect as i32,
            ..Default::default()
        }));
    }

    /// Queues a signal request (for callers that build their own, e.g. attribute updates).
    pub fn signal(&mut self, message: signal_request::Message) {
        self.outputs.push_back(SessionOutput::Signal(Box::new(message)));
    }

    /// Continues the session after the signal socket was re-established (`ReconnectResponse`).
    ///
    /// The SFU restarts ICE on the subscriber PC itself (its next offer carries new credentials).
    /// The publisher PC is ours to restart, and only needs it if ICE lost the SFU; media may well
    /// have kept flowing while only the WebSocket was down. Then the server gets our `SyncState`
    /// so it can check that it still knows our published track.
    pub fn resume(&mut self) -> Result<(), SessionError> {
        if !self.publisher.ice_connected && matches!(self.publishing, Publishing::Negotiated) {
            let mut api = self.publisher.rtc.sdp_api();
            api.ice_restart(true);
            if let Some((offer, pending)) = api.apply() {
                self.send_publisher_offer(offer, pending)?;
            }
        }
        let sync = self.sync_state();
        self.signal(signal_request::Message::SyncState(sync));
        Ok(())
    }

    /// Our side of the session as the server checks it on resume. Without the published track's
    /// `TrackInfo` the server gives up on the resume and asks for a full reconnect.
    pub fn sync_state(&self) -> proto::SyncState {
        let sdp = |kind: &str, text: &Option<String>| {
            text.as_ref().map(|sdp| proto::SessionDescription {
                r#type: kind.into(),
                sdp: sdp.clone(),
                ..Default::default()
            })
        };
        let mut subscribed: Vec<String> = self.origins.values().map(|o| o.track_sid.clone()).collect();
        subscribed.sort();
        proto::SyncState {
            answer: sdp("answer", &self.last_subscriber_answer),
            offer: sdp("offer", &self.last_publisher_offer),
            subscription: Some(proto::UpdateSubscription {
                track_sids: subscribed,
                subscribe: true,
                ..Default::default()
            }),
            publish_tracks: self.published.iter().cloned().collect(),
            ..Default::default()
        }
    }

    fn emit(&mut self, event: SessionEvent) {
        self.outputs.push_back(SessionOutput::Event(event));
    }

    fn peer(&self, role: PeerRole) -> &Peer {
        match role {
            PeerRole::Publisher => &self.publisher,
            PeerRole::Subscriber => &self.subscriber,
        }
    }

    fn peer_mut(&mut self, role: PeerRole) -> &mut Peer {
        match role {
            PeerRole::Publisher => &mut self.publisher,
            PeerRole::Subscriber => &mut self.subscriber,
        }
    }

    fn offer_publisher(&mut self, with_audio: bool) -> Result<(), SessionError> {
        let mut api = self.publisher.rtc.sdp_api();
        // Reliable: ordered, retransmitted until delivered. Lossy: unordered, never retransmitted
        // (what LiveKit's SDKs open, and what the SFU expects for each kind of DataPacket).
        api.add_channel_with_config(ChannelConfig {
            label: RELIABLE_CHANNEL.into(),
            ordered: true,
            reliability: Reliability::Reliable,
            ..Default::default()
        });
        api.add_channel_with_config(ChannelConfig {
            label: LOSSY_CHANNEL.into(),
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..Default::default()
        });
        if with_audio {
            let mid = api.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                Some(self.local_participant_sid.clone()),
                Some(self.cid.clone()),
                None,
            );
            self.audio_mid = Some(mid);
        }
        let Some((offer, pending)) = api.apply() else {
            return Err(SessionError::Sdp("publisher offer had no changes".into()));
        };
        let sdp = self.send_publisher_offer(offer, pending)?;
        if let Some(t) = self.publisher.trickle_request(&sdp) {
            self.signal(t);
        }
        Ok(())
    }

    /// Sends a publisher offer (first or ICE restart) and remembers it for SyncState; the
    /// SFU's answer completes it. Answers the offer's SDP text.
    fn send_publisher_offer(&mut self, offer: SdpOffer, pending: SdpPendingOffer) -> Result<String, SessionError> {
        let sdp = offer.to_sdp_string();
        self.drain(PeerRole::Publisher)?;
        self.publishing = Publishing::Offered(pending);
        self.last_publisher_offer = Some(sdp.clone());
        self.signal(signal_request::Message::Offer(proto::SessionDescription {
            r#type: "offer".into(),
            sdp: sdp.clone(),
            ..Default::default()
        }));
        Ok(sdp)
    }

    fn accept_publisher_answer(&mut self, sdp_text: &str) -> Result<(), SessionError> {
        let Publishing::Offered(pending) = std::mem::replace(&mut self.publishing, Publishing::Negotiated) else {
            warn!("publisher answer without an outstanding offer; ignored");
            return Ok(());
        };
        let answer = SdpAnswer::from_sdp_string(sdp_text).map_err(|e| SessionError::Sdp(e.to_string()))?;
        self.publisher.rtc.sdp_api().accept_answer(pending, answer)?;
        self.publisher.set_has_remote();
        self.drain(PeerRole::Publisher)
    }

    fn answer_subscriber(&mut self, offer: proto::SessionDescription) -> Result<(), SessionError> {
        let parsed = SdpOffer::from_sdp_string(&offer.sdp).map_err(|e| SessionError::Sdp(e.to_string()))?;
        let answer = self.subscriber.rtc.sdp_api().accept_offer(parsed)?;
        self.origins = sdp::track_origins(&offer.sdp);
        info!(id = offer.id, tracks = self.origins.len(), "answering the SFU's subscriber offer");
        self.subscriber.set_has_remote();
        let sdp_text = answer.to_sdp_string();
        self.drain(PeerRole::Subscriber)?;
        self.last_subscriber_answer = Some(sdp_text.clone());
        // The answer echoes the offer's id so the SFU can pair them (it renegotiates freely).
        self.signal(signal_request::Message::Answer(proto::SessionDescription {
            r#type: "answer".into(),
            sdp: sdp_text.clone(),
            id: offer.id,
            ..Default::default()
        }));
        if let Some(t) = self.subscriber.trickle_request(&sdp_text) {
            self.signal(t);
        }
        Ok(())
    }

    fn add_remote_candidate(&mut self, trickle: &proto::TrickleRequest) -> Result<(), SessionError> {
        let Some(role) = PeerRole::from_target(trickle.target) else {
            warn!(target = trickle.target, "trickle for an unknown target");
            return Ok(());
        };
        let init: CandidateInit = match serde_json::from_str(&trickle.candidate_init) {
            Ok(init) => init,
            Err(e) => {
                warn!(error = %e, "unparsable trickle candidate");
                return Ok(());
            }
        };
        if init.candidate.is_empty() {
            // End-of-candidates marker.
            return Ok(());
        }
        let candidate = match Candidate::from_sdp_string(&init.candidate) {
            Ok(c) => c,
            Err(e) => {
                debug!(candidate = %init.candidate, error = %e, "candidate str0m cannot use");
                return Ok(());
            }
        };
        // We gather UDP only; a TCP candidate could never pair.
        if candidate.proto() != Protocol::Udp {
            return Ok(());
        }
        let peer = self.peer_mut(role);
        if peer.has_remote {
            peer.rtc.add_remote_candidate(candidate);
            self.drain(role)
        } else {
            peer.early_candidates.push(candidate);
            Ok(())
        }
    }

    fn drain(&mut self, role: PeerRole) -> Result<(), SessionError> {
        let events = match role {
            PeerRole::Publisher => self.publisher.drain(&mut self.outputs)?,
            PeerRole::Subscriber => self.subscriber.drain(&mut self.outputs)?,
        };
        for event in events {
            self.on_rtc_event(role, event);
        }
        Ok(())
    }

    fn on_rtc_event(&mut self, role: PeerRole, event: Event) {
        match event {
            Event::Connected => {
                info!(?role, "peer connection up");
                self.peer_mut(role).ice_connected = true;
                self.emit(SessionEvent::Connected(role));
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                warn!(?role, "ICE disconnected");
                self.peer_mut(role).ice_connected = false;
                self.emit(SessionEvent::Disconnected(role));
            }
            Event::IceConnectionStateChange(IceConnectionState::Connected | IceConnectionState::Completed) => {
                self.peer_mut(role).ice_connected = true;
            }
            Event::ChannelOpen(id, label) => {
                debug!(?role, %label, "data channel open");
                self.peer_mut(role).channels.insert(label, id);
            }
            Event::ChannelData(data) => match proto::DataPacket::decode(data.data.as_slice()) {
                Ok(packet) => self.emit(SessionEvent::Data(Box::new(packet))),
                Err(e) => warn!(?role, error = %e, "undecodable data packet"),
            },
            Event::MediaData(media) if role == PeerRole::Subscriber => {
                let origin = self.origins.get(&media.mid.to_string()).cloned().unwrap_or_else(|| TrackOrigin {
                    participant_sid: String::new(),
                    track_sid: media.mid.to_string(),
                });
                let decoder = match self.decoders.entry(media.mid) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => match Decoder::new() {
                        Ok(d) => e.insert(d),
                        Err(err) => {
                            warn!(error = %err, "cannot create an Opus decoder");
                            return;
                        }
                    },
                };
                match decoder.decode(&media.data) {
                    Ok(pcm) => {
                        self.emit(SessionEvent::Audio { origin, pcm, packet: media.data, received: media.network_time })
                    }
                    Err(e) => debug!(error = %e, "undecodable Opus packet"),
                }
            }
            other => trace!(?role, event = ?other, "rtc event"),
        }
    }
}

/// The IP to bind both PCs' sockets to when the server is on this host; LiveKit's loopback
/// candidate (`rtc.enable_loopback_candidate`) pairs with it.
pub const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

// Hand-written: the inner codec, socket and task handles have no useful Debug, and a token must
// never be printed.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("cid", &self.cid).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The session against an in-memory stand-in for the SFU's two PCs: str0m instances in
    //! ICE-lite mode, as LiveKit's SFU is. Datagrams are passed by hand and time is simulated, so
    //! the whole LiveKit flow (AddTrack, offer/answer both ways, trickle, ICE, DTLS, SCTP, Opus)
    //! runs with no socket and no sleep.

    use std::time::Duration;

    use super::*;

    const PUBLISHER: &str = "127.0.0.1:10000";
    const SUBSCRIBER: &str = "127.0.0.1:10001";
    const SFU_PUBLISHER_SIDE: &str = "127.0.0.1:20000";
    const SFU_SUBSCRIBER_SIDE: &str = "127.0.0.1:20001";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// One of the SFU's peer connections.
    struct SfuPeer {
        rtc: Rtc,
        addr: SocketAddr,
        events: Vec<Event>,
    }

    impl SfuPeer {
        fn new(now: Instant, a: &str) -> Self {
            let mut rtc = Rtc::builder().set_ice_lite(true).clear_codecs().enable_opus(true, false).build(now);
            rtc.add_local_candidate(Candidate::host(addr(a), "udp").unwrap());
            Self { rtc, addr: addr(a), events: Vec::new() }
        }

        /// Drains the SFU side; returns its datagrams for the session.
        fn drain(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
            let mut out = Vec::new();
            loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Timeout(_) => return out,
                    Output::Transmit(t) => out.push((t.destination, t.contents.to_vec())),
                    Output::Event(e) => self.events.push(e),
                }
            }
        }

        fn candidate_trickle(&self, target: proto::SignalTarget) -> signal_response::Message {
            let c = Candidate::host(self.addr, "udp").unwrap();
            let init = CandidateInit {
                candidate: c.to_sdp_string(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            };
            signal_response::Message::Trickle(proto::TrickleRequest {
                candidate_init: serde_json::to_string(&init).unwrap(),
                target: target as i32,
                r#final: false,
            })
        }
    }

    struct Harness {
        now: Instant,
        session: Session,
        sfu_pub: SfuPeer,
        sfu_sub: SfuPeer,
        /// Signal requests from the session not yet looked at by the test.
        signals: Vec<signal_request::Message>,
        events: Vec<SessionEvent>,
    }

    impl Harness {
        fn new(publish_audio: bool) -> Self {
            let now = Instant::now();
            let join = proto::JoinResponse {
                participant: Some(proto::ParticipantInfo {
                    sid: "PA_agent".into(),
                    identity: "agent".into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let config = SessionConfig {
                publisher_addr: addr(PUBLISHER),
                subscriber_addr: addr(SUBSCRIBER),
                publish_audio,
                track_name: "mic".into(),
            };
            let mut h = Self {
                now,
                session: Session::new(now, config, &join).unwrap(),
                sfu_pub: SfuPeer::new(now, SFU_PUBLISHER_SIDE),
                sfu_sub: SfuPeer::new(now, SFU_SUBSCRIBER_SIDE),
                signals: Vec::new(),
                events: Vec::new(),
            };
            h.pump();
            h
        }

        /// Moves every pending datagram both ways until nothing is left in flight.
        fn pump(&mut self) {
            loop {
                let mut moved = false;
                while let Some(out) = self.session.poll_output() {
                    match out {
                        SessionOutput::Signal(m) => self.signals.push(*m),
                        SessionOutput::Event(e) => self.events.push(e),
                        SessionOutput::Transmit { role, destination, contents } => {
                            moved = true;
                            let (sfu, source) = match role {
                                PeerRole::Publisher => (&mut self.sfu_pub, addr(PUBLISHER)),
                                PeerRole::Subscriber => (&mut self.sfu_sub, addr(SUBSCRIBER)),
                            };
                            assert_eq!(destination, sfu.addr);
                            let input = Input::Receive(
                                self.now,
                                Receive {
                                    proto: Protocol::Udp,
                                    source,
                                    destination,
                                    contents: contents.as_slice().try_into().unwrap(),
                                },
                            );
                            sfu.rtc.handle_input(input).unwrap();
                        }
                    }
                }
                for role in [PeerRole::Publisher, PeerRole::Subscriber] {
                    let sfu = match role {
                        PeerRole::Publisher => &mut self.sfu_pub,
                        PeerRole::Subscriber => &mut self.sfu_sub,
                    };
                    let source = sfu.addr;
                    for (destination, contents) in sfu.drain() {
                        moved = true;
                        self.session.handle_datagram(self.now, role, source, destination, &contents).unwrap();
                    }
                }
                if !moved {
                    return;
                }
            }
        }

        /// Advances simulated time and fires every timer that is due.
        fn advance(&mut self, by: Duration) {
            self.now += by;
            self.session.handle_timeout(self.now).unwrap();
            self.sfu_pub.rtc.handle_input(Input::Timeout(self.now)).unwrap();
            self.sfu_sub.rtc.handle_input(Input::Timeout(self.now)).unwrap();
            self.pump();
        }

        fn take_signal(&mut self) -> signal_request::Message {
            assert!(!self.signals.is_empty(), "expected a signal request");
            self.signals.remove(0)
        }

        fn connected(&self, role: PeerRole) -> bool {
            self.events.iter().any(|e| matches!(e, SessionEvent::Connected(r) if *r == role))
        }

        fn signal(&mut self, message: signal_response::Message) {
            self.session.handle_signal(self.now, message).unwrap();
            self.pump();
        }
    }

    fn tone_frame(k: usize) -> Vec<i16> {
        (0..audio::FRAME_SAMPLES)
            .map(|i| {
                let t = (k * audio::FRAME_SAMPLES + i) as f64 / audio::SAMPLE_RATE as f64;
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect()
    }

    /// Publisher PC: AddTrack first, the offer only after TrackPublished, msid track id == cid,
    /// both data channels, our candidate trickled; then ICE/DTLS up, data and Opus reach the SFU.
    #[test]
    fn publishes_audio_and_data_to_an_ice_lite_sfu() {
        let mut h = Harness::new(true);

        let signal_request::Message::AddTrack(add) = h.take_signal() else {
            panic!("first request must be AddTrack");
        };
        assert_eq!(add.cid, "PA_agent-mic");
        assert!(add.disable_red);
        assert!(h.signals.is_empty(), "no offer before TrackPublished");

        h.signal(signal_response::Message::TrackPublished(proto::TrackPublishedResponse {
            cid: add.cid.clone(),
            track: Some(proto::TrackInfo { sid: "TR_agent".into(), ..Default::default() }),
        }));
        let signal_request::Message::Offer(offer) = h.take_signal() else {
            panic!("expected the publisher offer");
        };
        assert!(offer.sdp.contains(" PA_agent-mic\r\n"), "msid track id is the cid");
        assert!(offer.sdp.contains("m=application"), "data channels negotiated");
        let signal_request::Message::Trickle(trickle) = h.take_signal() else {
            panic!("expected our candidate");
        };
        assert_eq!(trickle.target, proto::SignalTarget::Publisher as i32);
        assert!(trickle.candidate_init.contains("127.0.0.1 10000 typ host"));

        let answer = h.sfu_pub.rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(&offer.sdp).unwrap()).unwrap();
        h.pump();
        let sfu_candidate = h.sfu_pub.candidate_trickle(proto::SignalTarget::Publisher);
        h.signal(signal_response::Message::Answer(proto::SessionDescription {
            r#type: "answer".into(),
            sdp: answer.to_sdp_string(),
            ..Default::default()
        }));
        h.signal(sfu_candidate);

        for _ in 0..400 {
            h.advance(Duration::from_millis(5));
            if h.connected(PeerRole::Publisher) && h.session.data_ready() {
                break;
            }
        }
        assert!(h.connected(PeerRole::Publisher), "ICE + DTLS up");
        assert!(h.session.data_ready(), "_reliable open");

        let packet = proto::DataPacket {
            value: Some(proto::data_packet::Value::User(proto::UserPacket {
                payload: b"hello".to_vec(),
                topic: Some("test".into()),
                ..Default::default()
            })),
            ..Default::default()
        };
        h.session.send_data(&packet, true).unwrap();
        h.pump();
        for k in 0..25 {
            h.session.publish_audio(h.now, &tone_frame(k)).unwrap();
            h.advance(Duration::from_millis(20));
        }

        let labels: Vec<&str> = h
            .sfu_pub
            .events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelOpen(_, label) => Some(label.as_str()),
                _ => None,
            })
            .collect();
        assert!(labels.contains(&RELIABLE_CHANNEL) && labels.contains(&LOSSY_CHANNEL));
        let data: Vec<proto::DataPacket> = h
            .sfu_pub
            .events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelData(d) => proto::DataPacket::decode(d.data.as_slice()).ok(),
                _ => None,
            })
            .collect();
        assert_eq!(data, vec![packet]);
        let frames = h.sfu_pub.events.iter().filter(|e| matches!(e, Event::MediaData(_))).count();
        assert!(frames >= 20, "SFU received {frames} Opus frames");
    }

    /// Subscriber PC: the SFU offers; we answer with the offer's id, learn the track's origin
    /// from its msid, and deliver decoded 48 kHz PCM.
    #[test]
    fn receives_audio_offered_by_the_sfu() {
        let mut h = Harness::new(false);
        // Without audio the publisher offers at once (data channels only); not needed here.
        h.signals.clear();

        let mut api = h.sfu_sub.rtc.sdp_api();
        let mid = api.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some("PA_caller|TR_caller".into()),
            Some("TR_caller".into()),
            None,
        );
        let (offer, pending) = api.apply().unwrap();
        h.pump();
        // Trickle before the offer reaches the session: it must be held, not lost.
        let early = h.sfu_sub.candidate_trickle(proto::SignalTarget::Subscriber);
        h.signal(early);
        h.signal(signal_response::Message::Offer(proto::SessionDescription {
            r#type: "offer".into(),
            sdp: offer.to_sdp_string(),
            id: 7,
            ..Default::default()
        }));
        let signal_request::Message::Answer(answer) = h.take_signal() else {
            panic!("expected the subscriber answer");
        };
        assert_eq!(answer.id, 7);
        h.sfu_sub.rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer.sdp).unwrap()).unwrap();
        h.pump();

        for _ in 0..400 {
            h.advance(Duration::from_millis(5));
            if h.connected(PeerRole::Subscriber) {
                break;
            }
        }
        assert!(h.connected(PeerRole::Subscriber));

        let mut encoder = Encoder::new().unwrap();
        for k in 0..10 {
            let writer = h.sfu_sub.rtc.writer(mid).unwrap();
            let pt = writer.payload_params().next().unwrap().pt();
            let rtp = MediaTime::new((k * audio::FRAME_SAMPLES) as u64, Frequency::FORTY_EIGHT_KHZ);
            let packet = encoder.encode(&tone_frame(k)).unwrap();
            writer.write(pt, h.now, rtp, packet).unwrap();
            h.advance(Duration::from_millis(20));
        }
        let audio: Vec<(&TrackOrigin, usize)> = h
            .events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Audio { origin, pcm, .. } => Some((origin, pcm.len())),
                _ => None,
            })
            .collect();
        assert!(audio.len() >= 8, "decoded {} frames", audio.len());
        assert!(
            audio.iter().all(|(o, n)| { o.participant_sid == "PA_caller" && o.track_sid == "TR_caller" && *n == 960 })
        );
    }
}
