//! Spoken order, sans-IO: turns reach the store in the order they were spoken, whatever order
//! their words arrive in. A counselor turn takes its place when its speech starts and waits for
//! its transcript (bounded by a deadline); a caller turn takes its place when it is final (what
//! was heard of it: a barge-in's truncation is decided before it gets here). Only the final
//! turns at the front are released, so a caller turn never overtakes the counselor turn it
//! answered.
//!
//! After a socket drop the counselor turns still waiting for their transcript are marked for
//! replay: their audio is appended again on the new socket, and the next `speech_started` is
//! the same turn (same segment, same start), not a new one.

use std::collections::VecDeque;
use std::time::Instant;

use crate::turns::{Speaker, SpokenTurn};

/// A turn waiting for its place in spoken order.
#[derive(Debug)]
enum Slot {
    Counselor {
        item_id: String,
        segment_id: String,
        started_ms: u64,
        /// Given up (no transcript) at this moment; none while the counselor still speaks.
        deadline: Option<Instant>,
        turn: Option<SpokenTurn>,
        /// Where its audio begins in the appended stream (the input's appended samples).
        audio_from: u64,
        /// Its socket dropped before the transcript came: its audio is appended again and the
        /// next `speech_started` is this turn.
        replay: bool,
    },
    Ready(SpokenTurn),
}

/// The conversation so far (`history`, released in order) and the turns waiting for their place.
#[derive(Debug)]
pub struct SpokenOrder {
    slots: VecDeque<Slot>,
    history: Vec<SpokenTurn>,
}

impl SpokenOrder {
    /// Starts from the turns already stored (a restarted agent).
    pub fn new(history: Vec<SpokenTurn>) -> Self {
        SpokenOrder { slots: VecDeque::new(), history }
    }

    /// The released turns, oldest first.
    pub fn history(&self) -> &[SpokenTurn] {
        &self.history
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The released turns and then the final ones still waiting: what a new socket is seeded with.
    pub fn known_turns(&self) -> impl Iterator<Item = &SpokenTurn> {
        let waiting = self.slots.iter().filter_map(|slot| match slot {
            Slot::Ready(turn) | Slot::Counselor { turn: Some(turn), .. } => Some(turn),
            Slot::Counselor { turn: None, .. } => None,
        });
        self.history.iter().chain(waiting)
    }

    /// The earliest transcript deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Counselor { deadline, .. } => *deadline,
                Slot::Ready(_) => None,
            })
            .min()
    }

    /// Where the audio of the oldest counselor turn still waiting for its words begins.
    pub fn pending_audio_from(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Counselor { turn: None, audio_from, .. } => Some(*audio_from),
                _ => None,
            })
            .min()
    }

    /// Counselor speech started (`item_id` from the server): a new turn, or the replay of a
    /// turn a dropped socket did not transcribe (which keeps its segment and start).
    pub fn speech_started(
        &mut self,
        item_id: String,
        audio_from: u64,
        started_ms: u64,
        new_segment: impl FnOnce() -> String,
    ) {
        let replayed = self.slots.iter_mut().find_map(|s| match s {
            Slot::Counselor { replay: r @ true, item_id: id, deadline, audio_from: from, .. } => {
                Some((r, id, deadline, from))
            }
            _ => None,
        });
        if let Some((replay, id, deadline, from)) = replayed {
            *replay = false;
            *id = item_id;
            *deadline = None;
            *from = audio_from;
        } else {
            self.slots.push_back(Slot::Counselor {
                item_id,
                segment_id: new_segment(),
                started_ms,
                deadline: None,
                turn: None,
                audio_from,
                replay: false,
            });
        }
    }

    /// Counselor speech stopped: its transcript is waited for until `deadline` (an empty
    /// `item_id` matches every turn still open).
    pub fn speech_stopped(&mut self, item_id: &str, deadline: Instant) {
        for slot in self.slots.iter_mut() {
            if let Slot::Counselor { item_id: id, deadline: d, .. } = slot
                && (id == item_id || item_id.is_empty())
                && d.is_none()
            {
                *d = Some(deadline);
            }
        }
    }

    /// The segment of the counselor turn `item_id` (or the oldest one still waiting for words).
    pub fn counselor_segment(&self, item_id: &str) -> Option<String> {
        let pending = || {
            self.slots.iter().filter_map(|s| match s {
                Slot::Counselor { item_id, segment_id, turn: None, replay: false, .. } => Some((item_id, segment_id)),
                _ => None,
            })
        };
        pending()
            .find(|(id, _)| *id == item_id)
            .or_else(|| pending().find(|(id, _)| id.is_empty()))
            .or_else(|| pending().next())
            .map(|(_, s)| s.clone())
    }

    /// A counselor turn's transcript (empty: nothing was said, the turn is dropped).
    pub fn counselor_final(&mut self, segment_id: &str, text: &str, ended_ms: u64) {
        let Some(i) =
            self.slots.iter().position(|slot| matches!(slot, Slot::Counselor { segment_id: s, .. } if s == segment_id))
        else {
            return;
        };
        if text.is_empty() {
            self.slots.remove(i);
        } else if let Some(Slot::Counselor { segment_id, started_ms, turn, .. }) = self.slots.get_mut(i) {
            *turn = Some(SpokenTurn {
                segment_id: segment_id.clone(),
                speaker: Speaker::Counselor,
                text: text.to_owned(),
                started_ms: *started_ms,
                ended_ms: ended_ms.max(*started_ms),
                cut: false,
            });
        }
    }

    /// A final caller turn (what was heard of it) takes its place.
    pub fn caller_final(&mut self, turn: SpokenTurn) {
        self.slots.push_back(Slot::Ready(turn));
    }

    /// Gives up the counselor turns whose transcript is overdue; answers whether any was.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| !matches!(s, Slot::Counselor { deadline: Some(d), turn: None, .. } if *d <= now));
        self.slots.len() != before
    }

    /// Gives up every counselor turn still waiting for its words (the call ends).
    pub fn give_up_pending(&mut self) {
        self.slots.retain(|s| !matches!(s, Slot::Counselor { turn: None, .. }));
    }

    /// Releases the final turns at the front, in order, into the history and `emit`.
    pub fn release(&mut self, mut emit: impl FnMut(&SpokenTurn)) {
        loop {
            let front_final =
                matches!(self.slots.front(), Some(Slot::Ready(_)) | Some(Slot::Counselor { turn: Some(_), .. }));
            if !front_final {
                return;
            }
            let turn = match self.slots.pop_front() {
                Some(Slot::Ready(t)) | Some(Slot::Counselor { turn: Some(t), .. }) => t,
                _ => return,
            };
            emit(&turn);
            self.history.push(turn);
        }
    }

    /// The socket dropped: counselor turns still waiting for their words are replayed on the
    /// next one. Answers where the oldest one's audio begins, if any.
    pub fn mark_replays(&mut self) -> Option<u64> {
        let from = self.pending_audio_from()?;
        for slot in self.slots.iter_mut() {
            if let Slot::Counselor { turn: None, item_id, deadline, replay, .. } = slot {
                item_id.clear();
                *deadline = None;
                *replay = true;
            }
        }
        Some(from)
    }

    /// The new socket opened: a replayed turn it does not find again (merged with the next) is
    /// given up at `deadline`, like a transcript that never came.
    pub fn arm_replays(&mut self, deadline: Instant) {
        for slot in self.slots.iter_mut() {
            if let Slot::Counselor { replay: true, deadline: d, .. } = slot {
                *d = Some(deadline);
            }
        }
    }

    /// The replayed audio that began at `from` on the dead socket begins at `at` on the new one.
    pub fn rebase_replays(&mut self, from: u64, at: u64) {
        for slot in self.slots.iter_mut() {
            if let Slot::Counselor { turn: None, replay: true, audio_from, .. } = slot {
                *audio_from = at + audio_from.saturating_sub(from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn caller(segment: &str, text: &str, cut: bool) -> SpokenTurn {
        SpokenTurn {
            segment_id: segment.into(),
            speaker: Speaker::Caller,
            text: text.into(),
            started_ms: 0,
            ended_ms: 0,
            cut,
        }
    }

    fn released(order: &mut SpokenOrder) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        order.release(|t| out.push((t.text.clone(), t.cut)));
        out
    }

    #[test]
    fn a_barge_in_cut_caller_turn_waits_for_nothing_but_the_interrupting_turn_waits_for_its_words() {
        let t0 = Instant::now();
        let mut order = SpokenOrder::new(Vec::new());
        // The counselor speaks; the caller answers; the counselor barges in over the answer.
        order.speech_started("u1".into(), 0, 0, || "c1".into());
        order.speech_stopped("u1", t0 + Duration::from_secs(10));
        order.caller_final(caller("r1", "I lost my job", true));
        order.speech_started("u2".into(), 48_000, 3000, || "c2".into());
        assert!(released(&mut order).is_empty(), "the first counselor turn has no words yet");
        // The interrupting turn's words come first: still nothing overtakes the first turn.
        let seg2 = order.counselor_segment("u2").expect("u2");
        order.counselor_final(&seg2, "Wait, are you safe?", 4000);
        assert!(released(&mut order).is_empty());
        let seg1 = order.counselor_segment("u1").expect("u1");
        order.counselor_final(&seg1, "Crisis line, I'm here.", 1000);
        assert_eq!(
            released(&mut order),
            [
                ("Crisis line, I'm here.".into(), false),
                ("I lost my job".into(), true),
                ("Wait, are you safe?".into(), false)
            ]
        );
        assert_eq!(order.history().len(), 3);
        assert!(order.is_empty());
    }

    #[test]
    fn an_overdue_transcript_is_given_up_and_releases_what_waited_behind_it() {
        let t0 = Instant::now();
        let mut order = SpokenOrder::new(Vec::new());
        order.speech_started("u1".into(), 0, 0, || "c1".into());
        assert_eq!(order.next_deadline(), None, "still speaking");
        order.speech_stopped("u1", t0 + Duration::from_secs(10));
        order.caller_final(caller("r1", "Hello?", false));
        assert_eq!(order.next_deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(!order.expire(t0 + Duration::from_secs(9)));
        assert!(order.expire(t0 + Duration::from_secs(10)));
        assert_eq!(released(&mut order), [("Hello?".into(), false)]);
        // An empty transcript drops the turn at once.
        order.speech_started("u2".into(), 0, 0, || "c2".into());
        order.caller_final(caller("r2", "Are you there?", false));
        order.counselor_final("c2", "", 10);
        assert_eq!(released(&mut order), [("Are you there?".into(), false)]);
    }

    #[test]
    fn a_drop_replays_untranscribed_turns_as_the_same_turn() {
        let t0 = Instant::now();
        let mut order = SpokenOrder::new(Vec::new());
        order.speech_started("u1".into(), 24_000, 500, || "c1".into());
        order.speech_stopped("u1", t0 + Duration::from_secs(10));
        assert_eq!(order.mark_replays(), Some(24_000));
        assert_eq!(order.next_deadline(), None, "waits for the new socket");
        assert_eq!(order.counselor_segment(""), None, "no words are taken for it until it is heard again");
        order.rebase_replays(24_000, 100);
        assert_eq!(order.pending_audio_from(), Some(100));
        order.arm_replays(t0 + Duration::from_secs(20));
        assert_eq!(order.next_deadline(), Some(t0 + Duration::from_secs(20)));
        let mut made = false;
        order.speech_started("u9".into(), 120, 9000, || {
            made = true;
            "c9".into()
        });
        assert!(!made, "the replay is the same turn");
        order.counselor_final(&order.counselor_segment("u9").expect("u9"), "Are you safe?", 9500);
        let turns: Vec<_> = order.known_turns().map(|t| (t.segment_id.clone(), t.started_ms)).collect();
        assert_eq!(turns, [("c1".to_string(), 500)]);
    }
}
