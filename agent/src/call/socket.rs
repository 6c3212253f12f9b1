//! The Realtime socket's lifecycle, sans-IO: whether one is open, which generation it is (a
//! reply from an older socket is not in the current conversation), the reconnect backoff after a
//! drop, the recycle before the provider's session cap, and the bounded write backlog the shell
//! keeps for it (past [`MAX_REALTIME_BACKLOG`] the socket counts as stalled and is replaced,
//! which the call then handles like a drop).
//!
//! ```text
//!   Connecting ──opened──► Open ──closed (drop, failed write, stalled backlog)──► Connecting (after backoff)
//!       ▲                   │
//!       └──recycle (cap)────┘ (between turns; reconnect at once)
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes the Realtime socket may leave unsent before it counts as stalled and is replaced (the
/// call then reconnects and replays, as after a drop): 1 MiB is about 16 s of appended audio.
pub const MAX_REALTIME_BACKLOG: usize = 1 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum State {
    /// A connect was asked for (and the old socket, if any, dropped).
    Connecting,
    Open,
}

/// What [`Lifecycle::closed`] decided.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Closed {
    /// An open socket dropped (not a connect that failed).
    pub was_open: bool,
    /// Reconnect after this long.
    pub reconnect_after: Duration,
}

#[derive(Debug)]
pub struct Lifecycle {
    state: State,
    opened_at: Instant,
    /// No socket has opened yet in this call.
    first: bool,
    backoff: Duration,
    /// A recycle's replacement is connecting (the old socket is already dropped).
    recycling: bool,
    generation: u32,
}

impl Lifecycle {
    /// A call starts by connecting.
    pub fn new(now: Instant) -> Self {
        Lifecycle {
            state: State::Connecting,
            opened_at: now,
            first: true,
            backoff: FIRST_BACKOFF,
            recycling: false,
            generation: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Counts socket opens: a reply remembers the one it came from.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// A socket opened; answers whether it is the call's first.
    pub fn opened(&mut self, now: Instant) -> bool {
        self.state = State::Open;
        self.recycling = false;
        self.opened_at = now;
        self.generation += 1;
        self.backoff = FIRST_BACKOFF;
        std::mem::replace(&mut self.first, false)
    }

    /// The socket closed or failed to open (a recycle's replacement too): reconnect with a
    /// backoff that doubles up to [`MAX_BACKOFF`] and resets on the next open.
    pub fn closed(&mut self) -> Closed {
        let was_open = self.state == State::Open;
        self.state = State::Connecting;
        self.recycling = false;
        let reconnect_after = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Closed { was_open, reconnect_after }
    }

    /// Whether the open socket has reached `cap` and should be replaced (the caller checks that
    /// nobody is speaking).
    pub fn recycle_due(&self, now: Instant, cap: Duration) -> bool {
        self.state == State::Open && !self.recycling && now.saturating_duration_since(self.opened_at) >= cap
    }

    /// Replaces the open socket now: audio meanwhile is held for the new one.
    pub fn recycle(&mut self) {
        self.recycling = true;
        self.state = State::Connecting;
    }
}

/// The messages a socket has not taken yet, with their bytes counted against
/// [`MAX_REALTIME_BACKLOG`].
#[derive(Debug)]
pub struct Backlog<T> {
    queue: VecDeque<(T, usize)>,
    bytes: usize,
    cap: usize,
}

impl<T> Default for Backlog<T> {
    fn default() -> Self {
        Backlog::with_cap(MAX_REALTIME_BACKLOG)
    }
}

impl<T> Backlog<T> {
    pub fn with_cap(cap: usize) -> Self {
        Backlog { queue: VecDeque::new(), bytes: 0, cap }
    }

    /// Queues a message of `len` bytes; `false` once the backlog is over its cap (the socket is
    /// stalled: replace it rather than buffer without bound).
    pub fn push(&mut self, message: T, len: usize) -> bool {
        self.bytes += len;
        self.queue.push_back((message, len));
        self.bytes <= self.cap
    }

    /// The next message to write.
    pub fn pop(&mut self) -> Option<T> {
        let (message, len) = self.queue.pop_front()?;
        self.bytes -= len;
        Some(message)
    }

    /// A message the socket did not take after all: first again.
    pub fn unpop(&mut self, message: T, len: usize) {
        self.bytes += len;
        self.queue.push_front((message, len));
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Everything still queued, in order (for a clean close).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.bytes = 0;
        self.queue.drain(..).map(|(m, _)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_back_off_doubling_to_five_seconds_and_an_open_resets_it() {
        let t0 = Instant::now();
        let mut s = Lifecycle::new(t0);
        assert!(!s.is_open());
        let first = s.closed();
        assert_eq!(first, Closed { was_open: false, reconnect_after: FIRST_BACKOFF });
        let waits: Vec<_> = (0..6).map(|_| s.closed().reconnect_after.as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 5000, 5000]);
        assert!(s.opened(t0), "the call's first socket");
        assert_eq!(s.generation(), 1);
        assert_eq!(s.closed(), Closed { was_open: true, reconnect_after: FIRST_BACKOFF });
        assert!(!s.opened(t0), "not the first any more");
        assert_eq!(s.generation(), 2);
    }

    #[test]
    fn a_socket_is_recycled_once_past_the_cap_and_a_failed_replacement_reconnects() {
        let t0 = Instant::now();
        let cap = Duration::from_secs(60);
        let mut s = Lifecycle::new(t0);
        assert!(!s.recycle_due(t0 + cap, cap), "not open");
        s.opened(t0);
        assert!(!s.recycle_due(t0 + cap - Duration::from_millis(1), cap));
        assert!(s.recycle_due(t0 + cap, cap));
        s.recycle();
        assert!(!s.is_open() && !s.recycle_due(t0 + cap * 2, cap), "asked once");
        // The replacement failed to open: retried like a drop, and not counted as one.
        assert!(!s.closed().was_open);
        s.opened(t0 + cap);
        assert_eq!(s.generation(), 2);
        assert!(s.recycle_due(t0 + cap * 2, cap), "the new socket has its own cap");
    }

    #[test]
    fn a_backlog_past_its_cap_says_the_socket_is_stalled() {
        let mut b: Backlog<&str> = Backlog::with_cap(10);
        assert!(b.push("abcd", 4) && b.push("efgh", 4));
        assert_eq!(b.pop(), Some("abcd"));
        assert_eq!(b.bytes(), 4);
        b.unpop("abcd", 4);
        assert!(b.push("ij", 2), "exactly at the cap is still fine");
        assert!(!b.push("k", 1), "over it: replace the socket");
        assert_eq!(b.drain().collect::<Vec<_>>(), ["abcd", "efgh", "ij", "k"]);
        assert!(b.is_empty() && b.bytes() == 0);
        assert_eq!(Backlog::<()>::default().cap, MAX_REALTIME_BACKLOG);
    }
}
