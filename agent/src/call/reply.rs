//! The caller's reply in progress, as an explicit state machine.
//!
//! A reply exists from `response.created` until it is final (a turn, or nothing when nothing was
//! heard); "no reply" is the call's idle state (`Option<Reply>`). While it exists it is in one
//! [`Phase`]:
//!
//! ```text
//!            audio.done / transcript.done (each once)
//!           ┌──────────┐
//!           ▼          │
//!   created ─► Streaming ──response.done──► Done ──drop──► Orphaned { cut_by_drop: false }
//!                │  │                        │
//!                │  └──drop──► Orphaned { cut_by_drop: true }
//!                └──barge-in──► Cancelled ◄──┘ (barge-in while Done still plays)
//! ```
//!
//! `Streaming` is the only phase in which the model is still generating (a barge-in sends
//! `response.cancel` only then); every other phase has all its audio and transcript. A cancelled
//! reply's id goes into [`Cancelled`], so the `response.done` (and deltas) the server still sends
//! for it are ignored. The reply is final once all of it has arrived and the playout has played
//! what was queued ([`Reply::is_complete`]).

use std::time::Instant;

/// Where a reply is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Generating: audio and transcript still arriving (each may have finished already).
    Streaming { audio_done: bool, transcript_done: bool },
    /// `response.done` came: everything arrived; what is queued plays out.
    Done,
    /// Its socket dropped: nothing more will arrive; what had arrived plays out. `cut_by_drop`:
    /// the drop came before the reply was complete, so what is heard is a cut turn.
    Orphaned { cut_by_drop: bool },
    /// The counselor barged in: stopped, cancelled at the server, final with what was heard.
    Cancelled,
}

/// What a drop did to the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// It was still arriving from the dropped socket (the counselor is owed the rest).
    pub incomplete: bool,
    /// Its audio had not been declared done: the playout must flush its tail.
    pub flush_audio: bool,
}

/// The caller's reply in progress.
#[derive(Debug)]
pub struct Reply {
    pub response_id: String,
    pub item_id: String,
    pub segment_id: String,
    pub phase: Phase,
    pub transcript: String,
    /// Bytes of `transcript` already captioned.
    pub revealed: usize,
    pub caption_open: bool,
    /// 24 kHz samples received; 48 kHz samples played.
    pub generated: u64,
    pub played: u64,
    /// 48 kHz samples queued for this reply and not yet played.
    pub queued: usize,
    pub trigger_at: Option<Instant>,
    pub first_delta_at: Option<Instant>,
    pub first_frame_at: Option<Instant>,
    pub started_ms: u64,
    pub underruns: u32,
    /// The socket generation it came from (see `socket::Lifecycle::generation`).
    pub socket_gen: u32,
}

impl Reply {
    /// `response.created`.
    pub fn new(response_id: String, segment_id: String, trigger_at: Option<Instant>, socket_gen: u32) -> Self {
        Reply {
            response_id,
            item_id: String::new(),
            segment_id,
            phase: Phase::Streaming { audio_done: false, transcript_done: false },
            transcript: String::new(),
            revealed: 0,
            caption_open: false,
            generated: 0,
            played: 0,
            queued: 0,
            trigger_at,
            first_delta_at: None,
            first_frame_at: None,
            started_ms: 0,
            underruns: 0,
            socket_gen,
        }
    }

    /// The model is still generating it.
    pub fn generating(&self) -> bool {
        matches!(self.phase, Phase::Streaming { .. })
    }

    /// All of its audio arrived (nothing more will be queued).
    pub fn audio_done(&self) -> bool {
        !matches!(self.phase, Phase::Streaming { audio_done: false, .. })
    }

    /// Its transcript is final.
    pub fn transcript_done(&self) -> bool {
        !matches!(self.phase, Phase::Streaming { transcript_done: false, .. })
    }

    /// Its socket is gone.
    pub fn orphaned(&self) -> bool {
        matches!(self.phase, Phase::Orphaned { .. })
    }

    pub fn cut_by_drop(&self) -> bool {
        matches!(self.phase, Phase::Orphaned { cut_by_drop: true })
    }

    /// Events from the server still apply to it (not orphaned, not cancelled).
    pub fn live(&self) -> bool {
        matches!(self.phase, Phase::Streaming { .. } | Phase::Done)
    }

    /// `response.output_audio.done`: answers whether the playout must flush (the first time).
    pub fn audio_finished(&mut self) -> bool {
        match &mut self.phase {
            Phase::Streaming { audio_done, .. } if !*audio_done => {
                *audio_done = true;
                true
            }
            _ => false,
        }
    }

    /// `response.output_audio_transcript.done`, with the final text when it has one.
    pub fn transcript_finished(&mut self, transcript: String) {
        if !transcript.is_empty() {
            self.transcript = transcript;
        }
        if let Phase::Streaming { transcript_done, .. } = &mut self.phase {
            *transcript_done = true;
        }
    }

    /// `response.done` (any status: a reply that ends without a transcript is final with what it
    /// has). Answers whether the playout must flush (its audio was not declared done).
    pub fn response_finished(&mut self) -> bool {
        match self.phase {
            Phase::Streaming { audio_done, .. } => {
                self.phase = Phase::Done;
                !audio_done
            }
            _ => false,
        }
    }

    /// Its socket dropped.
    pub fn socket_dropped(&mut self) -> Dropped {
        let (incomplete, flush_audio) = match self.phase {
            Phase::Streaming { audio_done, .. } => (true, !audio_done),
            _ => (false, false),
        };
        self.phase = match self.phase {
            Phase::Streaming { .. } => Phase::Orphaned { cut_by_drop: true },
            Phase::Done => Phase::Orphaned { cut_by_drop: false },
            other => other,
        };
        Dropped { incomplete, flush_audio }
    }

    /// The counselor barged in: answers whether the server is still generating it (so it must be
    /// cancelled there).
    pub fn barged_in(&mut self) -> bool {
        let generating = self.generating();
        let orphaned = self.orphaned();
        self.phase = if orphaned { Phase::Orphaned { cut_by_drop: self.cut_by_drop() } } else { Phase::Cancelled };
        self.queued = 0;
        generating
    }

    /// All of it arrived and the playout played what was queued (`playout_empty`): final.
    pub fn is_complete(&self, playout_empty: bool) -> bool {
        self.audio_done() && self.transcript_done() && self.queued == 0 && playout_empty
    }
}

/// Ids of replies cancelled by a barge-in: the server's late events for them are ignored. The
/// last [`Cancelled::KEEP`] are kept (a late event comes within a turn or two).
#[derive(Debug, Default)]
pub struct Cancelled {
    ids: std::collections::VecDeque<String>,
}

impl Cancelled {
    pub const KEEP: usize = 16;

    pub fn insert(&mut self, response_id: &str) {
        if response_id.is_empty() {
            return;
        }
        self.ids.push_back(response_id.to_owned());
        if self.ids.len() > Self::KEEP {
            self.ids.pop_front();
        }
    }

    pub fn contains(&self, response_id: &str) -> bool {
        self.ids.iter().any(|c| c == response_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> Reply {
        Reply::new("resp_1".into(), "seg".into(), None, 1)
    }

    #[test]
    fn a_reply_streams_then_completes_once_everything_arrived_and_played() {
        let mut r = reply();
        assert!(r.generating() && r.live() && !r.audio_done() && !r.transcript_done());
        r.queued = 960;
        assert!(r.audio_finished(), "first audio.done flushes");
        assert!(!r.audio_finished(), "a second does not");
        r.transcript_finished("I can't sleep.".into());
        assert_eq!(r.phase, Phase::Streaming { audio_done: true, transcript_done: true });
        assert!(r.generating(), "response.done has not come");
        assert!(!r.response_finished(), "audio was already done: nothing to flush");
        assert_eq!(r.phase, Phase::Done);
        assert!(!r.is_complete(true), "still queued");
        r.queued = 0;
        assert!(!r.is_complete(false), "the playout still holds it");
        assert!(r.is_complete(true));
    }

    #[test]
    fn response_done_without_audio_done_or_transcript_flushes_and_is_final() {
        let mut r = reply();
        r.transcript.push_str("I can");
        assert!(r.response_finished());
        assert!(r.audio_done() && r.transcript_done() && !r.generating() && r.live());
        assert_eq!(r.transcript, "I can");
        // An empty final transcript keeps the deltas.
        let mut r = reply();
        r.transcript.push_str("partial");
        r.transcript_finished(String::new());
        assert_eq!(r.transcript, "partial");
    }

    #[test]
    fn a_drop_mid_stream_orphans_a_cut_reply_and_a_drop_after_done_a_whole_one() {
        let mut r = reply();
        assert_eq!(r.socket_dropped(), Dropped { incomplete: true, flush_audio: true });
        assert_eq!(r.phase, Phase::Orphaned { cut_by_drop: true });
        assert!(r.orphaned() && r.cut_by_drop() && !r.live() && !r.generating());
        assert!(r.audio_done() && r.transcript_done());
        // A second drop (the next socket) changes nothing.
        assert_eq!(r.socket_dropped(), Dropped { incomplete: false, flush_audio: false });
        assert!(r.cut_by_drop());

        let mut r = reply();
        r.audio_finished();
        assert_eq!(r.socket_dropped(), Dropped { incomplete: true, flush_audio: false });

        let mut r = reply();
        r.response_finished();
        assert_eq!(r.socket_dropped(), Dropped { incomplete: false, flush_audio: false });
        assert_eq!(r.phase, Phase::Orphaned { cut_by_drop: false });
    }

    #[test]
    fn barge_in_during_streaming_cancels_and_after_done_only_stops() {
        let mut r = reply();
        r.queued = 4800;
        assert!(r.barged_in(), "still generating: cancel at the server");
        assert_eq!(r.phase, Phase::Cancelled);
        assert_eq!(r.queued, 0);
        assert!(r.audio_done() && r.transcript_done() && !r.live());
        assert!(!r.response_finished(), "a late response.done changes nothing");
        assert_eq!(r.phase, Phase::Cancelled);

        let mut r = reply();
        r.response_finished();
        assert!(!r.barged_in(), "done: nothing to cancel");
        assert_eq!(r.phase, Phase::Cancelled);

        // An orphan still playing is only stopped: it stays a drop's (cut) turn.
        let mut r = reply();
        r.socket_dropped();
        assert!(!r.barged_in());
        assert_eq!(r.phase, Phase::Orphaned { cut_by_drop: true });
    }

    #[test]
    fn cancelled_ids_are_remembered_boundedly() {
        let mut c = Cancelled::default();
        c.insert("");
        assert!(!c.contains(""));
        for i in 0..=Cancelled::KEEP {
            c.insert(&format!("resp_{i}"));
        }
        assert!(!c.contains("resp_0"), "the oldest is forgotten");
        assert!(c.contains("resp_1") && c.contains(&format!("resp_{}", Cancelled::KEEP)));
    }
}
