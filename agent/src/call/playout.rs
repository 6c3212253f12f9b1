//! Caller audio out, sans-IO: Realtime audio deltas (24 kHz) are upsampled to 48 kHz (rubato,
//! in fixed 20 ms chunks) into a queue, and one 20 ms frame leaves it per tick of a drift-free
//! frame clock: ticks are deadlines `start + k * 20 ms`; a late tick is followed by a prompt
//! one, and a stall over [`RESYNC_AFTER`] re-anchors the grid instead of catching up in a
//! burst. An answer's first frame may leave the moment its audio arrives ([`Playout::start_now`]);
//! the time that gains is clock debt, paid back by skipping idle ticks, so over a call there is
//! one tick per 20 ms. Every buffer here is allocated once per call and reused.
//!
//! A tick with nothing to play while an answer is still arriving is an underrun: the caller's
//! voice has a gap ([`Frame::Underrun`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::audio::FRAME_SAMPLES;
use crate::phone::PhoneLine;
use crate::resample::{Converter, REALTIME_FRAME_SAMPLES};

pub const FRAME: Duration = Duration::from_millis(20);
/// A tick later than this re-anchors the frame grid instead of catching up in a burst.
pub const RESYNC_AFTER: Duration = Duration::from_millis(100);

/// What one tick played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A caller frame is in [`Playout::frame`].
    Played,
    /// Nothing to play, but an answer is still arriving: a gap in the caller's voice.
    Underrun,
    /// Nothing to play, nothing expected: silence.
    Idle,
}

/// Whether the frame clock is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    NotYet,
    /// An idle tick skipped to pay back clock debt.
    Skipped,
    /// Run a tick; `late`: the grid was re-anchored after a stall.
    Tick {
        late: bool,
    },
}

pub struct Playout {
    up: Converter,
    chunk: Vec<i16>,
    chunk_len: usize,
    up_out: Vec<i16>,
    queue: VecDeque<i16>,
    frame: Vec<i16>,
    phone: Option<PhoneLine>,
    next_tick: Instant,
    /// The last tick played a caller frame.
    playing: bool,
    clock_debt: Duration,
}

impl Playout {
    /// The clock's first tick is one frame after `now`; `phone` band-limits the caller's voice.
    pub fn new(now: Instant, phone: bool) -> Self {
        Playout {
            up: Converter::up(),
            chunk: vec![0; REALTIME_FRAME_SAMPLES],
            chunk_len: 0,
            up_out: vec![0; FRAME_SAMPLES],
            queue: VecDeque::with_capacity(48_000 * 4),
            frame: vec![0; FRAME_SAMPLES],
            phone: phone.then(PhoneLine::new),
            next_tick: now + FRAME,
            playing: false,
            clock_debt: Duration::ZERO,
        }
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn next_tick(&self) -> Instant {
        self.next_tick
    }

    /// The frame of the last [`Frame::Played`] tick.
    pub fn frame(&self) -> &[i16] {
        &self.frame
    }

    /// An audio delta (24 kHz); answers the 48 kHz samples it queued.
    pub fn push(&mut self, pcm: &[i16]) -> usize {
        let mut queued = 0;
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (REALTIME_FRAME_SAMPLES - self.chunk_len).min(rest.len());
            self.chunk[self.chunk_len..self.chunk_len + take].copy_from_slice(&rest[..take]);
            self.chunk_len += take;
            rest = &rest[take..];
            if self.chunk_len == REALTIME_FRAME_SAMPLES {
                self.chunk_len = 0;
                queued += self.upsample_chunk();
            }
        }
        queued
    }

    fn upsample_chunk(&mut self) -> usize {
        self.up.process(&self.chunk, &mut self.up_out);
        self.queue.extend(self.up_out.iter().copied());
        FRAME_SAMPLES
    }

    /// The answer's audio is complete: pads the last partial chunk and pushes the filter's tail
    /// out; answers the samples that queued.
    pub fn flush(&mut self) -> usize {
        let mut queued = 0;
        if self.chunk_len > 0 {
            self.chunk[self.chunk_len..].fill(0);
            self.chunk_len = 0;
            queued += self.upsample_chunk();
        }
        if self.up.delay() > 0 {
            self.chunk.fill(0);
            queued += self.upsample_chunk();
        }
        self.up.reset();
        queued
    }

    /// Stops the caller now (barge-in, or a new answer cutting an orphan): the next tick is silent.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.chunk_len = 0;
        self.up.reset();
    }

    /// An answer's first audio arrived: its first frame is due now rather than at the next tick
    /// (the clock only has to be steady while the caller speaks).
    pub fn start_now(&mut self, now: Instant) {
        if !self.playing && self.queue.len() >= FRAME_SAMPLES && self.next_tick > now {
            self.clock_debt += self.next_tick - now;
            self.next_tick = now;
        }
    }

    /// Advances the clock at `now`; `idle`: no answer exists (so a tick may be skipped to pay
    /// back clock debt).
    pub fn due(&mut self, now: Instant, idle: bool) -> Due {
        if now < self.next_tick {
            return Due::NotYet;
        }
        let late = now.saturating_duration_since(self.next_tick) > RESYNC_AFTER;
        if late {
            self.next_tick = now;
        }
        self.next_tick += FRAME;
        if idle && !self.playing && self.queue.is_empty() && self.clock_debt >= FRAME {
            self.clock_debt -= FRAME;
            return Due::Skipped;
        }
        Due::Tick { late }
    }

    /// The tick's frame: a whole one, or the last partial one once `audio_done` (its answer has
    /// all arrived); `expecting`: an answer is being heard and more of it is coming.
    pub fn next_frame(&mut self, audio_done: bool, expecting: bool) -> Frame {
        let played = if self.queue.len() >= FRAME_SAMPLES {
            for (d, s) in self.frame.iter_mut().zip(self.queue.drain(..FRAME_SAMPLES)) {
                *d = s;
            }
            true
        } else if !self.queue.is_empty() && audio_done {
            let n = self.queue.len();
            for (d, s) in self.frame.iter_mut().zip(self.queue.drain(..)) {
                *d = s;
            }
            self.frame[n..].fill(0);
            true
        } else {
            false
        };
        self.playing = played;
        if played {
            if let Some(phone) = self.phone.as_mut() {
                phone.process(&mut self.frame);
            }
            Frame::Played
        } else if expecting {
            Frame::Underrun
        } else {
            Frame::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_arriving_slower_than_it_plays_underruns_and_its_tail_plays_once_done() {
        let t0 = Instant::now();
        let mut p = Playout::new(t0, false);
        // 30 ms of answer (24 kHz): one whole 20 ms frame queued, 10 ms held in the resampler's chunk.
        assert_eq!(p.push(&[100; 720]), FRAME_SAMPLES);
        assert_eq!(p.next_frame(false, true), Frame::Played);
        assert!(p.playing);
        // Nothing whole queued and more expected: not played short, counted as a gap.
        assert_eq!(p.next_frame(false, true), Frame::Underrun);
        assert!(!p.playing);
        // The answer's audio is complete: the filter's tail comes out, the partial frame plays.
        assert!(p.flush() > 0);
        assert_eq!(p.next_frame(true, false), Frame::Played);
        while !p.is_empty() {
            assert_eq!(p.next_frame(true, false), Frame::Played);
        }
        assert_eq!(p.next_frame(true, false), Frame::Idle, "done and empty: silence, not a gap");
    }

    #[test]
    fn a_barge_in_empties_the_queue_at_once() {
        let mut p = Playout::new(Instant::now(), true);
        p.push(&[3000; 4800]);
        assert_eq!(p.next_frame(false, true), Frame::Played);
        p.clear();
        assert!(p.is_empty());
        assert_eq!(p.next_frame(false, false), Frame::Idle);
    }

    #[test]
    fn the_clock_starts_an_answer_at_once_and_pays_the_time_back_when_idle() {
        let t0 = Instant::now();
        let mut p = Playout::new(t0, false);
        let now = t0 + Duration::from_millis(5);
        assert_eq!(p.due(now, true), Due::NotYet);
        p.push(&[1; 480]);
        p.start_now(now);
        assert_eq!(p.next_tick(), now, "the first frame leaves now");
        assert_eq!(p.due(now, false), Due::Tick { late: false });
        assert_eq!(p.next_frame(false, true), Frame::Played);
        assert_eq!(p.next_tick(), now + FRAME);
        // 15 ms of debt is under a frame; a second early start makes it 30, one frame to pay back.
        p.push(&[1; 480]);
        let early = now + Duration::from_millis(5);
        p.playing = false;
        p.start_now(early);
        assert_eq!(p.due(early, false), Due::Tick { late: false });
        p.next_frame(false, false);
        p.next_frame(false, false);
        assert_eq!(p.due(early + FRAME, true), Due::Skipped, "an idle tick pays a frame back");
        assert_eq!(p.due(early + FRAME * 2, true), Due::Tick { late: false });
        // A stall re-anchors the grid.
        let stalled = early + Duration::from_secs(1);
        assert_eq!(p.due(stalled, true), Due::Tick { late: true });
        assert_eq!(p.next_tick(), stalled + FRAME);
    }
}
