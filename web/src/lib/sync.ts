// Transcript <-> recording sync: which turn is being spoken at a playback time, and where to seek
// for a turn. Turn times are milliseconds from the session's start, as is the recording.

export interface TimedTurn {
  startedMs: number;
  endedMs?: number | null;
}

/**
 * The index of the turn playing at `timeMs`: the last turn that started at or before it. A turn
 * with an end time stops being current once it ended and the next has not begun (silence), so
 * nothing is highlighted in a pause; -1 before the first turn.
 */
export function currentTurnIndex(turns: readonly TimedTurn[], timeMs: number): number {
  let lo = 0;
  let hi = turns.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (turns[mid]!.startedMs <= timeMs) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found < 0) return -1;
  const ended = turns[found]!.endedMs;
  if (ended != null && ended < timeMs) return -1;
  return found;
}

/** Seconds to seek the player to for a turn (its start, a little early so its first word is heard). */
export function seekSeconds(turn: TimedTurn, leadMs = 250): number {
  return Math.max(0, turn.startedMs - leadMs) / 1000;
}
