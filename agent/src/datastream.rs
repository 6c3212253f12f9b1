//! LiveKit data streams (text), as data packets: one header, content chunks, one trailer.
//!
//! This is how captions reach the browser: a stream on topic `lk.transcription` per segment,
//! with `lk.segment_id`, `lk.transcribed_track_id` and `lk.transcription_final` attributes.
//! Sending is pure functions (the caller sends the packets in order on the reliable channel);
//! receiving is [`TextStreamReceiver`], fed every data packet, which yields whole texts (byte
//! streams: only the pre-connect buffer is received, by `preconnect::PreConnectReceiver`).

use std::collections::{BTreeMap, HashMap};

use livekit_protocol as proto;
use proto::data_stream;

/// Topic the browser components read captions from.
pub const TRANSCRIPTION_TOPIC: &str = "lk.transcription";
/// Largest chunk content. LiveKit's SDKs use 15 000 bytes to stay well below SCTP message limits.
pub const MAX_CHUNK: usize = 15_000;

/// One text stream to send.
#[derive(Debug, Clone)]
pub struct TextStream<'a> {
    pub stream_id: &'a str,
    pub topic: &'a str,
    pub text: &'a str,
    pub attributes: HashMap<String, String>,
    /// Milliseconds since the Unix epoch, set by the caller (keeps this module clock-free).
    pub timestamp_ms: i64,
}

/// The header, chunks and trailer of `stream`, ready for the reliable channel.
pub fn text_stream_packets(stream: &TextStream<'_>) -> Vec<proto::DataPacket> {
    let mut packets = Vec::new();
    let header = data_stream::Header {
        stream_id: stream.stream_id.to_owned(),
        timestamp: stream.timestamp_ms,
        topic: stream.topic.to_owned(),
        mime_type: "text/plain".to_owned(),
        total_length: Some(stream.text.len() as u64),
        attributes: stream.attributes.clone(),
        content_header: Some(data_stream::header::ContentHeader::TextHeader(data_stream::TextHeader {
            operation_type: data_stream::OperationType::Create as i32,
            ..Default::default()
        })),
        ..Default::default()
    };
    packets.push(reliable(proto::data_packet::Value::StreamHeader(header)));
    for (index, content) in utf8_chunks(stream.text, MAX_CHUNK).enumerate() {
        packets.push(reliable(proto::data_packet::Value::StreamChunk(data_stream::Chunk {
            stream_id: stream.stream_id.to_owned(),
            chunk_index: index as u64,
            content: content.as_bytes().to_vec(),
            ..Default::default()
        })));
    }
    packets.push(reliable(proto::data_packet::Value::StreamTrailer(data_stream::Trailer {
        stream_id: stream.stream_id.to_owned(),
        ..Default::default()
    })));
    packets
}

/// A text stream received in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedText {
    pub stream_id: String,
    pub topic: String,
    /// Identity of the sending participant, as the SFU stamped it on the packets.
    pub sender_identity: String,
    pub text: String,
    pub attributes: HashMap<String, String>,
}

/// Largest text we reassemble; a stream growing past it is dropped (a peer cannot make us
/// buffer without bound).
pub const MAX_RECEIVED_TEXT: usize = 1 << 20;
/// Streams open at once per receiver; older ones are the sender's bug, newer ones are refused.
pub const MAX_OPEN_STREAMS: usize = 16;
/// Bytes held over all open streams: streams left open cannot add up past it (a new stream's
/// chunks are dropped once it is reached).
pub const MAX_OPEN_TEXT_BYTES: usize = 2 << 20;

struct PartialText {
    topic: String,
    sender_identity: String,
    attributes: HashMap<String, String>,
    chunks: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
}

/// Reassembles incoming text streams from header, chunk and trailer packets.
///
/// We advertise the plain data-stream client protocol without compression, so senders split
/// text into chunks; an inline header is still accepted. Byte streams and compressed streams
/// are ignored. What it holds is bounded: [`MAX_OPEN_STREAMS`] streams, each at most
/// [`MAX_RECEIVED_TEXT`], all together at most [`MAX_OPEN_TEXT_BYTES`].
#[derive(Default)]
pub struct TextStreamReceiver {
    open: HashMap<String, PartialText>,
    /// Bytes over all of `open`.
    held: usize,
}

impl TextStreamReceiver {
    /// Feeds one data packet; returns the text when this packet completed a stream.
    pub fn handle(&mut self, packet: &proto::DataPacket) -> Option<ReceivedText> {
        use proto::data_packet::Value;
        match packet.value.as_ref()? {
            Value::StreamHeader(h) => {
                let is_text = matches!(h.content_header, Some(data_stream::header::ContentHeader::TextHeader(_)));
                let plain = h.compression == data_stream::CompressionType::None as i32;
                if !is_text || !plain || self.open.len() >= MAX_OPEN_STREAMS {
                    return None;
                }
                let mut partial = PartialText {
                    topic: h.topic.clone(),
                    sender_identity: packet.participant_identity.clone(),
                    attributes: h.attributes.clone(),
                    chunks: BTreeMap::new(),
                    bytes: 0,
                };
                if let Some(inline) = &h.inline_content {
                    if inline.len() > MAX_RECEIVED_TEXT || self.held + inline.len() > MAX_OPEN_TEXT_BYTES {
                        return None;
                    }
                    partial.bytes = inline.len();
                    partial.chunks.insert(0, inline.clone());
                }
                self.held += partial.bytes;
                // A stream id sent again replaces its stream.
                if let Some(old) = self.open.insert(h.stream_id.clone(), partial) {
                    self.held -= old.bytes;
                }
                None
            }
            Value::StreamChunk(c) => {
                // The sender stamped on the header owns the stream id.
                let partial = self.open.get_mut(&c.stream_id)?;
                if partial.sender_identity != packet.participant_identity {
                    return None;
                }
                let n = c.content.len();
                if partial.bytes + n > MAX_RECEIVED_TEXT || self.held + n > MAX_OPEN_TEXT_BYTES {
                    let dropped = partial.bytes;
                    self.open.remove(&c.stream_id);
                    self.held -= dropped;
                    return None;
                }
                partial.bytes += n;
                self.held += n;
                partial.chunks.insert(c.chunk_index, c.content.clone());
                None
            }
            Value::StreamTrailer(t) => {
                if self.open.get(&t.stream_id)?.sender_identity != packet.participant_identity {
                    return None;
                }
                let partial = self.open.remove(&t.stream_id)?;
                self.held -= partial.bytes;
                let bytes: Vec<u8> = partial.chunks.into_values().flatten().collect();
                let mut attributes = partial.attributes;
                // Trailer attributes are final values; they win over the header's.
                attributes.extend(t.attributes.clone());
                Some(ReceivedText {
                    stream_id: t.stream_id.clone(),
                    topic: partial.topic,
                    sender_identity: partial.sender_identity,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    attributes,
                })
            }
            _ => None,
        }
    }
}

/// The header that opens an incremental text stream (a caption growing as it is spoken).
pub fn open_text_stream(
    stream_id: &str,
    topic: &str,
    attributes: HashMap<String, String>,
    timestamp_ms: i64,
) -> proto::DataPacket {
    reliable(proto::data_packet::Value::StreamHeader(data_stream::Header {
        stream_id: stream_id.to_owned(),
        timestamp: timestamp_ms,
        topic: topic.to_owned(),
        mime_type: "text/plain".to_owned(),
        attributes,
        content_header: Some(data_stream::header::ContentHeader::TextHeader(data_stream::TextHeader {
            operation_type: data_stream::OperationType::Create as i32,
            ..Default::default()
        })),
        ..Default::default()
    }))
}

/// One piece of an incremental text stream (at most [`MAX_CHUNK`] bytes; callers send deltas).
pub fn text_chunk(stream_id: &str, chunk_index: u64, text: &str) -> proto::DataPacket {
    reliable(proto::data_packet::Value::StreamChunk(data_stream::Chunk {
        stream_id: stream_id.to_owned(),
        chunk_index,
        content: text.as_bytes().to_vec(),
        ..Default::default()
    }))
}

/// The trailer closing a stream; its attributes are final values (e.g. `lk.transcription_final`).
pub fn close_stream(stream_id: &str, attributes: HashMap<String, String>) -> proto::DataPacket {
    reliable(proto::data_packet::Value::StreamTrailer(data_stream::Trailer {
        stream_id: stream_id.to_owned(),
        attributes,
        ..Default::default()
    }))
}

/// Caption attributes for a final segment of agent speech.
pub fn transcription_attributes(segment_id: &str, track_sid: &str) -> HashMap<String, String> {
    HashMap::from([
        ("lk.segment_id".to_owned(), segment_id.to_owned()),
        ("lk.transcribed_track_id".to_owned(), track_sid.to_owned()),
        ("lk.transcription_final".to_owned(), "true".to_owned()),
    ])
}

fn reliable(value: proto::data_packet::Value) -> proto::DataPacket {
    // No `kind`: it is deprecated; the channel a packet is sent on says how reliable it is.
    proto::DataPacket { value: Some(value), ..Default::default() }
}

/// Splits text into pieces of at most `max` bytes without cutting a UTF-8 character, so each
/// chunk decodes on its own (receivers may show partial text).
fn utf8_chunks(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        rest = tail;
        Some(head)
    })
}

// Hand-written: the inner codec, socket and task handles have no useful Debug, and a token must
// never be printed.
impl std::fmt::Debug for TextStreamReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextStreamReceiver").field("open_streams", &self.open.len()).field("held", &self.held).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_reassembles_what_the_sender_splits() {
        let text = format!("{}é{}", "a".repeat(MAX_CHUNK - 1), "b".repeat(10));
        let mut packets = text_stream_packets(&TextStream {
            stream_id: "s2",
            topic: "lk.chat",
            text: &text,
            attributes: HashMap::from([("k".to_owned(), "v".to_owned())]),
            timestamp_ms: 1,
        });
        for p in &mut packets {
            p.participant_identity = "counselor".into();
        }
        // Chunks may arrive out of order relative to each other; the index orders them.
        packets.swap(1, 2);
        let mut rx = TextStreamReceiver::default();
        let results: Vec<ReceivedText> = packets.iter().filter_map(|p| rx.handle(p)).collect();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].text, text);
        assert_eq!(results[0].topic, "lk.chat");
        assert_eq!(results[0].sender_identity, "counselor");
        assert_eq!(results[0].attributes["k"], "v");
        assert!(rx.open.is_empty());
    }

    #[test]
    fn streams_left_open_are_bounded_in_count_and_bytes() {
        let mut rx = TextStreamReceiver::default();
        for i in 0..100 {
            let id = format!("open-{i}");
            assert!(rx.handle(&open_text_stream(&id, "t", HashMap::new(), 1)).is_none());
            for k in 0..10 {
                assert!(rx.handle(&text_chunk(&id, k, &"x".repeat(MAX_CHUNK))).is_none());
            }
            assert!(rx.open.len() <= MAX_OPEN_STREAMS);
            assert!(rx.held <= MAX_OPEN_TEXT_BYTES);
            assert_eq!(rx.held, rx.open.values().map(|p| p.bytes).sum::<usize>());
        }
        // A stream's chunks from someone else are not added to it, nor can they close it.
        let mut foreign = text_chunk("open-0", 99, "y");
        foreign.participant_identity = "intruder".into();
        let before = rx.held;
        assert!(rx.handle(&foreign).is_none());
        assert_eq!(rx.held, before);
    }

    #[test]
    fn receiver_drops_oversized_streams() {
        let text = "x".repeat(MAX_RECEIVED_TEXT + 1);
        let packets = text_stream_packets(&TextStream {
            stream_id: "big",
            topic: "t",
            text: &text,
            attributes: HashMap::new(),
            timestamp_ms: 1,
        });
        let mut rx = TextStreamReceiver::default();
        assert!(packets.iter().all(|p| rx.handle(p).is_none()));
        assert!(rx.open.is_empty());
    }

    #[test]
    fn header_chunks_trailer_in_order() {
        let text = "é".repeat(MAX_CHUNK); // 2 bytes each: needs 2 chunks, split on a boundary
        let packets = text_stream_packets(&TextStream {
            stream_id: "s1",
            topic: TRANSCRIPTION_TOPIC,
            text: &text,
            attributes: transcription_attributes("seg1", "TR_x"),
            timestamp_ms: 1,
        });
        assert_eq!(packets.len(), 4);
        let Some(proto::data_packet::Value::StreamHeader(h)) = &packets[0].value else {
            panic!("header first");
        };
        assert_eq!(h.topic, TRANSCRIPTION_TOPIC);
        assert_eq!(h.total_length, Some(text.len() as u64));
        assert_eq!(h.attributes["lk.transcription_final"], "true");
        let mut joined = Vec::new();
        for (i, p) in packets[1..3].iter().enumerate() {
            let Some(proto::data_packet::Value::StreamChunk(c)) = &p.value else {
                panic!("chunk");
            };
            assert_eq!(c.chunk_index, i as u64);
            assert!(std::str::from_utf8(&c.content).is_ok());
            joined.extend_from_slice(&c.content);
        }
        assert_eq!(joined, text.as_bytes());
        assert!(matches!(packets[3].value, Some(proto::data_packet::Value::StreamTrailer(_))));
    }
}
