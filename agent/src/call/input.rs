//! Counselor audio in, sans-IO: 20 ms frames of 48 kHz are resampled to 24 kHz (rubato) and
//! sent as `input_audio_buffer.append` batches. While no socket can take them (connecting, or
//! holding live audio for an announced pre-connect buffer, bounded by its timeout) they are held,
//! at most [`MAX_HELD_INPUT`]; the pre-connect buffer goes ahead of them.
//!
//! The last appended audio is kept (`recent`) as far back as the oldest counselor turn still
//! waiting for its transcript (else [`SPEECH_LOOKBACK`]): when a socket drops, that speech is
//! held again, first, to be appended on the next socket ([`Input::replay`]).
//!
//! Every buffer is allocated once per call and reused; only the append text, which the socket
//! takes, is new per batch.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::audio::FRAME_SAMPLES;
use crate::realtime;
use crate::resample::{Converter, REALTIME_FRAME_SAMPLES};

/// Counselor audio kept while the Realtime socket is down (24 kHz samples: 30 s).
pub const MAX_HELD_INPUT: usize = 30 * 24_000;
/// How far before `speech_started` a counselor turn's audio is taken to begin (the event comes
/// after the VAD's onset and prefix padding), for a replay after a drop (24 kHz samples: 1 s).
pub const SPEECH_LOOKBACK: u64 = 24_000;
/// Held audio goes out in appends of this many samples (100 ms).
const HELD_CHUNK: usize = 2400;

/// Where the input's appends go, and what it needs to know of the rest of the call.
pub trait InputSink {
    /// An append can be sent now (a socket is open).
    fn open(&self) -> bool;
    /// Where the oldest counselor turn still waiting for its transcript begins (appended samples).
    fn pending_from(&self) -> Option<u64>;
    /// Replayed speech that began at `from` on the dead socket begins at `at` on this one.
    fn rebase(&mut self, from: u64, at: u64);
    fn append(&mut self, text: String);
    /// Oldest sample of a live batch received -> its append sent.
    fn mic_to_append(&mut self, ms: u32);
}

pub struct Input {
    down: Converter,
    frame: Vec<i16>,
    frame_len: usize,
    half: Vec<i16>,
    batch: Vec<i16>,
    batch_samples: usize,
    batch_started: Option<Instant>,
    held: VecDeque<i16>,
    chunk: Vec<i16>,
    /// Set by a drop that put untranscribed speech first in `held`: where that speech started on
    /// the dead socket (see [`InputSink::rebase`]).
    replay_rebase: Option<u64>,
    append_bytes: Vec<u8>,
    appended: u64,
    recent: VecDeque<i16>,
    holding_until: Option<Instant>,
}

impl Input {
    /// `append_batch`: counselor audio per append (at least one 20 ms frame).
    pub fn new(append_batch: Duration) -> Self {
        Input {
            down: Converter::down(),
            frame: vec![0; FRAME_SAMPLES],
            frame_len: 0,
            half: vec![0; REALTIME_FRAME_SAMPLES],
            batch: Vec::with_capacity(4800),
            batch_samples: (append_batch.as_millis() as usize * 24).max(REALTIME_FRAME_SAMPLES),
            batch_started: None,
            held: VecDeque::new(),
            chunk: Vec::with_capacity(HELD_CHUNK),
            replay_rebase: None,
            append_bytes: Vec::with_capacity(9600),
            appended: 0,
            recent: VecDeque::new(),
            holding_until: None,
        }
    }

    /// 24 kHz samples appended so far (on every socket).
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// 24 kHz samples waiting for a socket.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Until when live audio waits for an announced pre-connect buffer.
    pub fn holding_until(&self) -> Option<Instant> {
        self.holding_until
    }

    /// The oldest live audio not sent yet: the time it waits for the next socket counts as
    /// added latency for its batch.
    pub fn mark_waiting(&mut self, now: Instant) {
        self.batch_started = self.batch_started.or(Some(now));
    }

    /// Counselor audio (48 kHz mono, any length), `received` off the network.
    pub fn feed(&mut self, now: Instant, received: Instant, pcm: &[i16], sink: &mut impl InputSink) {
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (FRAME_SAMPLES - self.frame_len).min(rest.len());
            self.frame[self.frame_len..self.frame_len + take].copy_from_slice(&rest[..take]);
            self.frame_len += take;
            rest = &rest[take..];
            if self.frame_len == FRAME_SAMPLES {
                self.frame_len = 0;
                self.down.process(&self.frame, &mut self.half);
                if self.batch.is_empty() {
                    self.batch_started = Some(received);
                }
                self.batch.extend_from_slice(&self.half);
                if self.batch.len() >= self.batch_samples {
                    self.send_batch(now, sink);
                }
            }
        }
    }

    /// A pre-connect buffer was announced: hold live audio until it arrives or `until`.
    pub fn expect_preconnect(&mut self, until: Instant) {
        if self.holding_until.is_none() && self.appended == 0 {
            self.holding_until = Some(until);
        }
    }

    /// The pre-connect buffer (24 kHz): ahead of whatever live audio was held meanwhile.
    pub fn preconnect(&mut self, pcm24: &[i16], sink: &mut impl InputSink) {
        for &s in pcm24.iter().rev() {
            self.held.push_front(s);
        }
        self.holding_until = None;
        self.flush_held(sink);
    }

    /// The pre-connect wait is over at `now` (answers whether it ended now).
    pub fn preconnect_timeout(&mut self, now: Instant, sink: &mut impl InputSink) -> bool {
        if self.holding_until.is_some_and(|h| now >= h) {
            self.holding_until = None;
            self.flush_held(sink);
            return true;
        }
        false
    }

    /// The socket dropped with counselor speech from `from` (appended samples) untranscribed:
    /// that speech is held again, ahead of live audio held meanwhile.
    pub fn replay(&mut self, from: u64) {
        self.replay_rebase = Some(from);
        let base = self.appended - self.recent.len() as u64;
        let skip = from.saturating_sub(base) as usize;
        for &s in self.recent.iter().skip(skip).rev() {
            self.held.push_front(s);
        }
    }

    fn send_batch(&mut self, now: Instant, sink: &mut impl InputSink) {
        if self.batch.is_empty() {
            return;
        }
        if !sink.open() || self.holding_until.is_some() {
            self.held.extend(self.batch.drain(..));
            let over = self.held.len().saturating_sub(MAX_HELD_INPUT);
            self.held.drain(..over);
            return;
        }
        if !self.held.is_empty() {
            self.flush_held(sink);
        }
        let mut text = String::with_capacity(self.batch.len() * 8 / 3 + 64);
        realtime::append_audio(&self.batch, &mut self.append_bytes, &mut text);
        self.appended += self.batch.len() as u64;
        let keep = self.recent_needed(sink.pending_from());
        keep_recent(&mut self.recent, &self.batch, keep);
        self.batch.clear();
        if let Some(started) = self.batch_started.take() {
            sink.mic_to_append(now.saturating_duration_since(started).as_millis() as u32);
        }
        sink.append(text);
    }

    /// Sends held audio (pre-connect, or what arrived while no socket could take it) in 100 ms
    /// appends, when a socket can take it; the live batch follows it.
    pub fn flush_held(&mut self, sink: &mut impl InputSink) {
        if !sink.open() || self.holding_until.is_some() {
            return;
        }
        if let Some(from) = self.replay_rebase.take() {
            sink.rebase(from, self.appended);
        }
        while !self.held.is_empty() {
            self.chunk.clear();
            let n = self.held.len().min(HELD_CHUNK);
            self.chunk.extend(self.held.drain(..n));
            let mut text = String::with_capacity(n * 8 / 3 + 64);
            realtime::append_audio(&self.chunk, &mut self.append_bytes, &mut text);
            self.appended += n as u64;
            let keep = self.recent_needed(sink.pending_from());
            keep_recent(&mut self.recent, &self.chunk, keep);
            sink.append(text);
        }
    }

    /// How much recent audio a replay could need.
    fn recent_needed(&self, pending_from: Option<u64>) -> usize {
        let from = pending_from.unwrap_or(self.appended).min(self.appended.saturating_sub(SPEECH_LOOKBACK));
        (self.appended - from).min(MAX_HELD_INPUT as u64) as usize
    }
}

/// Appends `pcm` to the recent-audio window and keeps its last `keep` samples.
fn keep_recent(recent: &mut VecDeque<i16>, pcm: &[i16], keep: usize) {
    recent.extend(pcm.iter().copied());
    let over = recent.len().saturating_sub(keep);
    recent.drain(..over);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Sink {
        open: bool,
        pending_from: Option<u64>,
        rebased: Vec<(u64, u64)>,
        appends: Vec<usize>,
        latencies: Vec<u32>,
    }

    impl InputSink for Sink {
        fn open(&self) -> bool {
            self.open
        }
        fn pending_from(&self) -> Option<u64> {
            self.pending_from
        }
        fn rebase(&mut self, from: u64, at: u64) {
            self.rebased.push((from, at));
        }
        fn append(&mut self, text: String) {
            let v: serde_json::Value = serde_json::from_str(&text).expect("json");
            let bytes =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v["audio"].as_str().expect("audio"))
                    .expect("base64");
            self.appends.push(bytes.len() / 2);
        }
        fn mic_to_append(&mut self, ms: u32) {
            self.latencies.push(ms);
        }
    }

    #[test]
    fn frames_are_appended_one_each_and_held_while_no_socket_takes_them() {
        let t0 = Instant::now();
        let mut input = Input::new(Duration::from_millis(20));
        let mut sink = Sink { open: true, ..Sink::default() };
        // Any packet size: two and a half frames make two appends of 20 ms at 24 kHz.
        input.feed(t0 + Duration::from_millis(3), t0, &[500; 2400], &mut sink);
        assert_eq!(sink.appends, [480, 480]);
        assert_eq!(sink.latencies, [3, 3]);
        sink.open = false;
        input.feed(t0, t0, &[500; 960 * 3], &mut sink);
        assert_eq!(sink.appends.len(), 2, "held");
        assert_eq!(input.held(), 3 * 480);
        sink.open = true;
        input.flush_held(&mut sink);
        assert_eq!(sink.appends.len(), 3, "held audio goes in one 100 ms append");
        assert_eq!(input.appended(), 2 * 480 + 3 * 480);
    }

    #[test]
    fn preconnect_audio_goes_ahead_of_held_live_audio_and_the_wait_is_bounded() {
        let t0 = Instant::now();
        let mut input = Input::new(Duration::from_millis(20));
        let mut sink = Sink { open: true, ..Sink::default() };
        input.expect_preconnect(t0 + Duration::from_secs(3));
        input.feed(t0, t0, &[500; 960], &mut sink);
        assert!(sink.appends.is_empty() && input.held() == 480);
        input.preconnect(&[7; 4800], &mut sink);
        assert_eq!(sink.appends, [2400, 2400, 480]);
        // A second announcement after audio went out is ignored; a wait that times out releases.
        let mut later = Input::new(Duration::from_millis(20));
        later.expect_preconnect(t0 + Duration::from_secs(3));
        later.feed(t0, t0, &[500; 960], &mut sink);
        assert!(!later.preconnect_timeout(t0 + Duration::from_secs(2), &mut sink));
        assert!(later.preconnect_timeout(t0 + Duration::from_secs(3), &mut sink));
        assert_eq!(later.appended(), 480);
    }

    #[test]
    fn a_drop_holds_the_untranscribed_speech_again_and_rebases_it_on_the_new_socket() {
        let t0 = Instant::now();
        let mut input = Input::new(Duration::from_millis(20));
        let mut sink = Sink { open: true, pending_from: Some(0), ..Sink::default() };
        for _ in 0..10 {
            input.feed(t0, t0, &[500; 960], &mut sink);
        }
        assert_eq!(input.appended(), 4800);
        // The turn started at sample 960 had no transcript when the socket dropped.
        input.replay(960);
        assert_eq!(input.held(), 3840);
        input.flush_held(&mut sink);
        assert_eq!(sink.rebased, [(960, 4800)]);
        assert_eq!(input.appended(), 4800 + 3840);
    }

    #[test]
    fn held_audio_is_bounded() {
        let t0 = Instant::now();
        let mut input = Input::new(Duration::from_millis(20));
        let mut sink = Sink::default();
        for _ in 0..(MAX_HELD_INPUT / 480 + 50) {
            input.feed(t0, t0, &[1; 960], &mut sink);
        }
        assert_eq!(input.held(), MAX_HELD_INPUT);
    }
}
