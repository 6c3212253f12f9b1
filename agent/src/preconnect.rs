//! Pre-connect audio: what the counselor said before the agent joined.
//!
//! `livekit-client` with `preConnectBuffer: true` records the microphone with `MediaRecorder`
//! (`audio/webm;codecs=opus`, 100 ms timeslices) and, once an agent is in the room, sends it as a
//! byte stream on topic [`PRE_CONNECT_TOPIC`] with attributes `trackId`, `sampleRate`, `channels`.
//! The mobile SDKs send raw PCM16 instead (mime type `audio/pcm`). Both become 24 kHz mono PCM
//! here, ready for `input_audio_buffer.append`.
//!
//! Anyone in the room can send such a stream, so [`PreConnectReceiver`] takes one on the rules
//! the real clients keep, and drops (and names) anything else: from the counselor only, one
//! stream per call, before the first microphone audio went to the model, a mime type we decode,
//! the sample rates and channel counts the SDKs report, within [`MAX_PRE_CONNECT_BYTES`]; and the
//! audio decoded from it is cut at [`MAX_PRE_CONNECT_MS`] (a WebM of tiny blocks decodes to far
//! more audio than it has bytes).

use std::collections::BTreeMap;

use livekit_protocol as proto;
use proto::data_stream;

use crate::audio::{Decoder, FRAME_SAMPLES};
use crate::resample::Converter;

pub const PRE_CONNECT_TOPIC: &str = "lk.agent.pre-connect-audio-buffer";
/// Attribute a client sets on itself while it records a pre-connect buffer.
pub const PRE_CONNECT_ATTRIBUTE: &str = "lk.agent.pre-connect-audio";
/// The byte budget of the one pre-connect buffer a call takes: 2 MiB holds 10 s of 48 kHz stereo
/// PCM16 (the mobile SDKs' 10 s buffer) and minutes of WebM/Opus; a stream past it is dropped.
pub const MAX_PRE_CONNECT_BYTES: usize = 2 << 20;
/// Longest audio taken from a buffer; the clients record at most 10 s before an agent joins.
pub const MAX_PRE_CONNECT_MS: usize = 20_000;
/// The sample rates a client reports for its microphone (`MediaTrackSettings.sampleRate`, the
/// mobile SDKs' capture rate). Anything else (0, 1, 10^9) is not a microphone.
pub const SAMPLE_RATES: [u32; 7] = [8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000];
/// Microphones are mono or stereo.
pub const MAX_CHANNELS: u16 = 2;

/// How a buffer is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `MediaRecorder`'s WebM with Opus blocks (browsers).
    WebmOpus,
    /// Raw PCM16 little-endian, interleaved (mobile SDKs).
    Pcm16 { sample_rate: u32, channels: u16 },
}

/// Why a pre-connect stream was dropped; logged with the stream id and its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Sent by someone other than the counselor.
    NotTheCounselor,
    /// The call already took (or gave up on) a pre-connect buffer.
    SecondStream,
    /// Live microphone audio already went to the model: this would arrive after it.
    AfterMicAudio,
    /// Compressed content (we do not advertise it).
    Encoded,
    UnknownMimeType(String),
    SampleRate(String),
    Channels(String),
    /// Over [`MAX_PRE_CONNECT_BYTES`] (announced in the header or counted as chunks came).
    OverBudget(u64),
}

/// What [`PreConnectReceiver::handle`] makes of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreConnectEvent {
    /// The buffer, complete: its size on the wire and its audio (24 kHz mono).
    Audio { bytes: usize, format: Format, pcm: Vec<i16> },
    /// A stream on the pre-connect topic that was refused, or given up part way.
    Dropped { stream_id: String, sender: String, why: Refusal },
}

#[derive(Debug)]
enum State {
    /// No pre-connect stream yet.
    Waiting,
    /// The one stream being received.
    Receiving { stream_id: String, sender: String, format: Format, chunks: BTreeMap<u64, Vec<u8>>, bytes: usize },
    /// One was taken or refused, or live audio went first: later ones are refused with this.
    Done(Refusal),
}

/// Receives the call's one pre-connect buffer (sans-IO: fed every data packet of the room).
#[derive(Debug)]
pub struct PreConnectReceiver {
    state: State,
}

impl Default for PreConnectReceiver {
    fn default() -> Self {
        Self { state: State::Waiting }
    }
}

impl PreConnectReceiver {
    /// Feeds one data packet. `counselor` is the counselor's identity (none yet: nobody's
    /// stream is taken). Packets of other topics and other kinds are ignored (never buffered).
    pub fn handle(&mut self, packet: &proto::DataPacket, counselor: Option<&str>) -> Option<PreConnectEvent> {
        use proto::data_packet::Value;
        let sender = packet.participant_identity.as_str();
        match packet.value.as_ref()? {
            Value::StreamHeader(h) => {
                if h.topic != PRE_CONNECT_TOPIC
                    || !matches!(h.content_header, Some(data_stream::header::ContentHeader::ByteHeader(_)))
                {
                    return None;
                }
                let dropped = |why| {
                    Some(PreConnectEvent::Dropped { stream_id: h.stream_id.clone(), sender: sender.to_owned(), why })
                };
                if counselor != Some(sender) {
                    return dropped(Refusal::NotTheCounselor);
                }
                // What is wrong with the stream itself first (the most telling reason in the
                // log); a refused header holds nothing, so it does not use up the call's one.
                let format = match admit(h) {
                    Ok(format) => format,
                    Err(why) => return dropped(why),
                };
                match &self.state {
                    State::Waiting => {}
                    State::Receiving { .. } => return dropped(Refusal::SecondStream),
                    State::Done(why) => return dropped(why.clone()),
                }
                let mut chunks = BTreeMap::new();
                let mut bytes = 0;
                if let Some(inline) = &h.inline_content {
                    bytes = inline.len();
                    chunks.insert(0, inline.clone());
                }
                if bytes > MAX_PRE_CONNECT_BYTES {
                    self.state = State::Done(Refusal::SecondStream);
                    return dropped(Refusal::OverBudget(bytes as u64));
                }
                self.state = State::Receiving {
                    stream_id: h.stream_id.clone(),
                    sender: sender.to_owned(),
                    format,
                    chunks,
                    bytes,
                };
                None
            }
            Value::StreamChunk(c) => {
                let State::Receiving { stream_id, sender: from, chunks, bytes, .. } = &mut self.state else {
                    return None;
                };
                if *stream_id != c.stream_id || from != sender {
                    return None;
                }
                // A chunk index sent twice replaces the first; counting both keeps the budget
                // an upper bound.
                *bytes += c.content.len();
                if *bytes > MAX_PRE_CONNECT_BYTES {
                    let total = *bytes as u64;
                    return self.give_up(Refusal::OverBudget(total));
                }
                chunks.insert(c.chunk_index, c.content.clone());
                None
            }
            Value::StreamTrailer(t) => {
                let State::Receiving { stream_id, sender: from, .. } = &self.state else { return None };
                if *stream_id != t.stream_id || from != sender {
                    return None;
                }
                let State::Receiving { chunks, format, .. } =
                    std::mem::replace(&mut self.state, State::Done(Refusal::SecondStream))
                else {
                    return None;
                };
                let buffer: Vec<u8> = chunks.into_values().flatten().collect();
                let pcm = decode(format, &buffer);
                Some(PreConnectEvent::Audio { bytes: buffer.len(), format, pcm })
            }
            _ => None,
        }
    }

    /// Live microphone audio went to the model: a buffer still coming would now arrive after it,
    /// so it is given up and later ones are refused.
    pub fn mic_started(&mut self) -> Option<PreConnectEvent> {
        match self.state {
            State::Receiving { .. } => self.give_up(Refusal::AfterMicAudio),
            State::Waiting | State::Done(_) => {
                self.state = State::Done(Refusal::AfterMicAudio);
                None
            }
        }
    }

    /// Whether a stream is being received (the call waits for it).
    pub fn receiving(&self) -> bool {
        matches!(self.state, State::Receiving { .. })
    }

    /// Bytes held for a stream in progress (at most [`MAX_PRE_CONNECT_BYTES`]).
    pub fn held_bytes(&self) -> usize {
        match &self.state {
            State::Receiving { bytes, .. } => *bytes,
            _ => 0,
        }
    }

    fn give_up(&mut self, why: Refusal) -> Option<PreConnectEvent> {
        match std::mem::replace(&mut self.state, State::Done(Refusal::SecondStream)) {
            State::Receiving { stream_id, sender, .. } => Some(PreConnectEvent::Dropped { stream_id, sender, why }),
            _ => None,
        }
    }
}

/// The format a header announces, if it is one a LiveKit client sends.
fn admit(h: &data_stream::Header) -> Result<Format, Refusal> {
    if h.compression != data_stream::CompressionType::None as i32 {
        return Err(Refusal::Encoded);
    }
    if let Some(total) = h.total_length
        && total > MAX_PRE_CONNECT_BYTES as u64
    {
        return Err(Refusal::OverBudget(total));
    }
    // Absent attributes take the browser's defaults; present ones must be a microphone's.
    let sample_rate = match h.attributes.get("sampleRate") {
        None => 48_000,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(rate) if SAMPLE_RATES.contains(&rate) => rate,
            _ => return Err(Refusal::SampleRate(truncated(v))),
        },
    };
    let channels = match h.attributes.get("channels") {
        None => 1,
        Some(v) => match v.trim().parse::<u16>() {
            Ok(n) if (1..=MAX_CHANNELS).contains(&n) => n,
            _ => return Err(Refusal::Channels(truncated(v))),
        },
    };
    let mime = h.mime_type.to_ascii_lowercase();
    if mime.starts_with("audio/webm") {
        Ok(Format::WebmOpus)
    } else if mime.starts_with("audio/pcm") {
        Ok(Format::Pcm16 { sample_rate, channels })
    } else {
        Err(Refusal::UnknownMimeType(truncated(&h.mime_type)))
    }
}

/// A peer's value as it goes into a log line: short.
fn truncated(v: &str) -> String {
    v.chars().take(32).collect()
}

/// Decodes one received buffer to 24 kHz mono PCM16, at most [`MAX_PRE_CONNECT_MS`] of it.
pub fn decode(format: Format, bytes: &[u8]) -> Vec<i16> {
    let max48 = MAX_PRE_CONNECT_MS * 48;
    let mono48 = match format {
        Format::WebmOpus => {
            let mut decoder = match Decoder::new() {
                Ok(d) => d,
                Err(_) => return Vec::new(),
            };
            let mut pcm = Vec::new();
            for frame in webm_frames(bytes) {
                if pcm.len() >= max48 {
                    break;
                }
                if let Ok(samples) = decoder.decode(frame) {
                    pcm.extend_from_slice(&samples);
                }
            }
            pcm.truncate(max48);
            pcm
        }
        Format::Pcm16 { sample_rate, channels } => {
            let channels = usize::from(channels.max(1));
            // The rate was checked against the microphone rates, so this bounds the output too.
            let max_in = MAX_PRE_CONNECT_MS * sample_rate as usize / 1000;
            let mono: Vec<i16> = bytes
                .chunks_exact(2 * channels)
                .take(max_in)
                .map(|frame| {
                    let sum: i32 = frame.chunks_exact(2).map(|b| i32::from(i16::from_le_bytes([b[0], b[1]]))).sum();
                    (sum / channels as i32) as i16
                })
                .collect();
            match sample_rate {
                24_000 => return mono,
                48_000 => mono,
                rate => linear(&mono, rate, 48_000),
            }
        }
    };
    // 48 kHz -> 24 kHz in 20 ms chunks; the last partial chunk is padded with silence.
    let mut down = Converter::down();
    let mut out = Vec::with_capacity(mono48.len() / 2 + FRAME_SAMPLES);
    let mut chunk = vec![0i16; FRAME_SAMPLES];
    let mut half = vec![0i16; FRAME_SAMPLES / 2];
    for piece in mono48.chunks(FRAME_SAMPLES) {
        chunk[..piece.len()].copy_from_slice(piece);
        chunk[piece.len()..].fill(0);
        down.process(&chunk, &mut half);
        out.extend_from_slice(&half);
    }
    out
}

/// Plain linear interpolation, for the rates other than 24 and 48 kHz (rare; quality is
/// secondary). `from` is one of [`SAMPLE_RATES`], so the output is at most 6x the input.
fn linear(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if input.is_empty() || from == 0 {
        return Vec::new();
    }
    let n = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * f64::from(from) / f64::from(to);
            let k = pos as usize;
            let frac = pos - k as f64;
            let a = f64::from(input[k.min(input.len() - 1)]);
            let b = f64::from(input[(k + 1).min(input.len() - 1)]);
            (a + (b - a) * frac) as i16
        })
        .collect()
}

const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const SIMPLE_BLOCK: u32 = 0xA3;

/// Reads an EBML variable-length integer; `keep_marker` for element ids. Returns (value, length,
/// all value bits set = "unknown size").
fn vint(bytes: &[u8], keep_marker: bool) -> Option<(u64, usize, bool)> {
    let first = *bytes.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || bytes.len() < len {
        return None;
    }
    let mut value = if keep_marker { u64::from(first) } else { u64::from(first) & ((1u64 << (8 - len)) - 1) };
    for b in &bytes[1..len] {
        value = (value << 8) | u64::from(*b);
    }
    let unknown = !keep_marker && value == (1u64 << (7 * len)) - 1;
    Some((value, len, unknown))
}

/// The Opus frames of a WebM (Matroska) stream as `MediaRecorder` writes it: segment and clusters
/// of unknown size, one audio track, unlaced blocks. Anything else is skipped.
pub fn webm_frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some((id, id_len, _)) = vint(&bytes[pos..], true) else { break };
        let Some((size, size_len, unknown)) = vint(&bytes[pos + id_len..], false) else { break };
        let body = pos + id_len + size_len;
        let id = id as u32;
        if matches!(id, SEGMENT | CLUSTER | BLOCK_GROUP) {
            // Descend: a master element's children follow its header directly.
            pos = body;
            continue;
        }
        if unknown {
            break;
        }
        let end = body.saturating_add(size as usize).min(bytes.len());
        if matches!(id, SIMPLE_BLOCK | BLOCK) && end > body {
            let block = &bytes[body..end];
            if let Some((_, track_len, _)) = vint(block, false) {
                let header = track_len + 3;
                let lacing = block.get(track_len + 2).map(|f| f & 0x06).unwrap_or(0);
                if lacing == 0 && block.len() > header {
                    frames.push(&block[header..]);
                }
            }
        }
        pos = end;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Encoder;

    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        // An 8-byte size, as some muxers write.
        out.push(0x01);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn webm_with_unknown_sized_segment_and_cluster() {
        let mut enc = Encoder::new().unwrap();
        let tone: Vec<i16> = (0..FRAME_SAMPLES).map(|i| ((i as f64 * 0.06).sin() * 8000.0) as i16).collect();
        let mut webm = element(&[0x1a, 0x45, 0xdf, 0xa3], &[0x42, 0x86, 0x81, 0x01]);
        webm.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        webm.extend(element(&[0x16, 0x54, 0xae, 0x6b], &[0xae, 0x80])); // Tracks, skipped
        webm.extend_from_slice(&[0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        webm.extend(element(&[0xe7], &[0x00])); // cluster timecode
        for k in 0..5u8 {
            let mut block = vec![0x81, 0x00, k * 20, 0x80];
            block.extend(enc.encode(&tone).unwrap());
            webm.extend(element(&[0xa3], &block));
        }
        assert_eq!(webm_frames(&webm).len(), 5);
        let pcm = decode(Format::WebmOpus, &webm);
        assert_eq!(pcm.len(), 5 * FRAME_SAMPLES / 2);
    }

    #[test]
    fn raw_pcm_at_24k_stereo_and_48k() {
        let stereo: Vec<u8> = [100i16, 300].iter().cycle().take(960).flat_map(|s| s.to_le_bytes()).collect();
        let pcm = decode(Format::Pcm16 { sample_rate: 24_000, channels: 2 }, &stereo);
        assert_eq!(pcm.len(), 480);
        assert!(pcm.iter().all(|&s| s == 200));
        let mono48: Vec<u8> = std::iter::repeat_n(0i16, 1920).flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(decode(Format::Pcm16 { sample_rate: 48_000, channels: 1 }, &mono48).len(), 960);
        assert!(webm_frames(&[0xff, 0x00]).is_empty());
    }

    const COUNSELOR: &str = "counselor";

    fn header(id: &str, from: &str, mime: &str, attributes: &[(&str, &str)]) -> proto::DataPacket {
        proto::DataPacket {
            participant_identity: from.into(),
            value: Some(proto::data_packet::Value::StreamHeader(data_stream::Header {
                stream_id: id.into(),
                topic: PRE_CONNECT_TOPIC.into(),
                mime_type: mime.into(),
                attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                content_header: Some(data_stream::header::ContentHeader::ByteHeader(data_stream::ByteHeader {
                    name: "buffer".into(),
                })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn pcm_header(id: &str, rate: &str, channels: &str) -> proto::DataPacket {
        header(id, COUNSELOR, "audio/pcm", &[("sampleRate", rate), ("channels", channels)])
    }

    fn chunk(id: &str, index: u64, content: Vec<u8>) -> proto::DataPacket {
        proto::DataPacket {
            participant_identity: COUNSELOR.into(),
            value: Some(proto::data_packet::Value::StreamChunk(data_stream::Chunk {
                stream_id: id.into(),
                chunk_index: index,
                content,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn trailer(id: &str) -> proto::DataPacket {
        proto::DataPacket {
            participant_identity: COUNSELOR.into(),
            value: Some(proto::data_packet::Value::StreamTrailer(data_stream::Trailer {
                stream_id: id.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn refusal(event: Option<PreConnectEvent>) -> Refusal {
        match event {
            Some(PreConnectEvent::Dropped { why, .. }) => why,
            other => panic!("expected a drop, got {other:?}"),
        }
    }

    /// 100 ms of 48 kHz mono PCM16 as the mobile SDKs send it.
    fn pcm_100ms() -> Vec<u8> {
        (0..4800i16).flat_map(|i| (i % 300).to_le_bytes()).collect()
    }

    #[test]
    fn the_counselors_one_buffer_is_taken() {
        let mut rx = PreConnectReceiver::default();
        assert_eq!(rx.handle(&pcm_header("p1", "48000", "1"), Some(COUNSELOR)), None);
        assert!(rx.receiving());
        assert_eq!(rx.handle(&chunk("p1", 0, pcm_100ms()), Some(COUNSELOR)), None);
        let Some(PreConnectEvent::Audio { bytes, format, pcm }) = rx.handle(&trailer("p1"), Some(COUNSELOR)) else {
            panic!("the buffer");
        };
        assert_eq!(bytes, 9600);
        assert_eq!(format, Format::Pcm16 { sample_rate: 48_000, channels: 1 });
        assert_eq!(pcm.len(), 2400, "100 ms at 24 kHz");
        // One per call: a second stream, even a well-formed one, is refused.
        assert_eq!(refusal(rx.handle(&pcm_header("p2", "48000", "1"), Some(COUNSELOR))), Refusal::SecondStream);
    }

    #[test]
    fn hostile_headers_are_refused_without_buffering() {
        let cases: [(proto::DataPacket, Refusal); 8] = [
            (pcm_header("a", "1", "1"), Refusal::SampleRate("1".into())),
            (pcm_header("a", "0", "1"), Refusal::SampleRate("0".into())),
            (pcm_header("a", "4294967295", "1"), Refusal::SampleRate("4294967295".into())),
            (pcm_header("a", "99999999999999999999", "1"), Refusal::SampleRate("99999999999999999999".into())),
            (pcm_header("a", "48000", "3"), Refusal::Channels("3".into())),
            (pcm_header("a", "48000", "0"), Refusal::Channels("0".into())),
            (header("a", COUNSELOR, "video/mp4", &[]), Refusal::UnknownMimeType("video/mp4".into())),
            (header("a", "intruder", "audio/pcm", &[]), Refusal::NotTheCounselor),
        ];
        for (packet, why) in cases {
            let mut rx = PreConnectReceiver::default();
            assert_eq!(refusal(rx.handle(&packet, Some(COUNSELOR))), why);
            assert!(!rx.receiving() && rx.held_bytes() == 0);
            // Its chunks are not kept either.
            assert_eq!(rx.handle(&chunk("a", 0, vec![0; 1000]), Some(COUNSELOR)), None);
            assert_eq!(rx.held_bytes(), 0);
        }
        // A refused header holds nothing and does not use up the call's one buffer.
        let mut rx = PreConnectReceiver::default();
        assert_eq!(refusal(rx.handle(&pcm_header("bad", "1", "1"), Some(COUNSELOR))), Refusal::SampleRate("1".into()));
        assert_eq!(rx.handle(&pcm_header("good", "16000", "2"), Some(COUNSELOR)), None);
        assert!(rx.receiving());
        // Nobody's stream is taken before the counselor is known.
        let mut rx = PreConnectReceiver::default();
        assert_eq!(refusal(rx.handle(&pcm_header("a", "48000", "1"), None)), Refusal::NotTheCounselor);
        // An announced size over the budget is refused at the header.
        let mut big = pcm_header("b", "48000", "1");
        if let Some(proto::data_packet::Value::StreamHeader(h)) = &mut big.value {
            h.total_length = Some(MAX_PRE_CONNECT_BYTES as u64 + 1);
        }
        assert_eq!(refusal(rx.handle(&big, Some(COUNSELOR))), Refusal::OverBudget(MAX_PRE_CONNECT_BYTES as u64 + 1));
        // Other topics are none of this receiver's business, and never held.
        let mut other = pcm_header("c", "1", "1");
        if let Some(proto::data_packet::Value::StreamHeader(h)) = &mut other.value {
            h.topic = "elsewhere".into();
        }
        let mut rx = PreConnectReceiver::default();
        assert_eq!(rx.handle(&other, Some(COUNSELOR)), None);
        assert!(!rx.receiving());
    }

    #[test]
    fn a_stream_over_the_byte_budget_is_dropped_as_it_grows() {
        let mut rx = PreConnectReceiver::default();
        rx.handle(&pcm_header("big", "48000", "1"), Some(COUNSELOR));
        let piece = vec![0u8; 15_000];
        let mut index = 0;
        let dropped = loop {
            if let Some(event) = rx.handle(&chunk("big", index, piece.clone()), Some(COUNSELOR)) {
                break event;
            }
            assert!(rx.held_bytes() <= MAX_PRE_CONNECT_BYTES);
            index += 1;
        };
        assert!(matches!(refusal(Some(dropped)), Refusal::OverBudget(n) if n > MAX_PRE_CONNECT_BYTES as u64));
        assert_eq!(rx.held_bytes(), 0);
        assert_eq!(rx.handle(&trailer("big"), Some(COUNSELOR)), None);
    }

    #[test]
    fn a_buffer_after_microphone_audio_is_refused_and_one_in_flight_given_up() {
        let mut rx = PreConnectReceiver::default();
        assert_eq!(rx.mic_started(), None);
        assert_eq!(refusal(rx.handle(&pcm_header("late", "48000", "1"), Some(COUNSELOR))), Refusal::AfterMicAudio);

        let mut rx = PreConnectReceiver::default();
        rx.handle(&pcm_header("slow", "48000", "1"), Some(COUNSELOR));
        rx.handle(&chunk("slow", 0, pcm_100ms()), Some(COUNSELOR));
        assert_eq!(refusal(rx.mic_started()), Refusal::AfterMicAudio);
        assert_eq!(rx.held_bytes(), 0);
        assert_eq!(rx.handle(&trailer("slow"), Some(COUNSELOR)), None);
    }

    #[test]
    fn decoded_audio_is_cut_at_the_time_budget() {
        // 2 MiB of 8 kHz mono would be 131 s; a WebM of 1-byte Opus frames (each 20 ms of
        // silence) would be hours. Both stop at MAX_PRE_CONNECT_MS.
        let max24 = MAX_PRE_CONNECT_MS * 24;
        let pcm = decode(Format::Pcm16 { sample_rate: 8_000, channels: 1 }, &vec![0u8; MAX_PRE_CONNECT_BYTES]);
        assert!(pcm.len() <= max24 + FRAME_SAMPLES, "{}", pcm.len());
        let mut webm = vec![0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        // SimpleBlock: id a3, size 5, track 1, timecode 0 0, flags 0x80, Opus TOC 0xf8 (20 ms
        // CELT, one frame) with no payload: a packet that decodes to 20 ms.
        while webm.len() < MAX_PRE_CONNECT_BYTES {
            webm.extend_from_slice(&[0xa3, 0x85, 0x81, 0x00, 0x00, 0x80, 0xf8]);
        }
        let pcm = decode(Format::WebmOpus, &webm);
        assert!(pcm.len() <= max24 + FRAME_SAMPLES, "{}", pcm.len());
        assert!(pcm.len() >= max24 / 2, "the buffer still decodes: {}", pcm.len());
    }
}
