// A microphone's level for people: the loudness of a block of samples on a 0-100 scale, and
// when to say "we can't hear you". Pure functions over numbers, so the rules are unit-tested;
// the Web Audio plumbing is in the voice feature (useMicLevel).

/** Below this RMS (about -60 dBFS) a block counts as silence: a muted, dead or disconnected
 * microphone sends zeros or the faintest noise, while a working one in a quiet room stays above
 * it. */
export const SILENCE_RMS = 0.001;
/** The meter's range: -60 dBFS reads 0, -10 dBFS (loud speech close to the microphone) 100. */
const FLOOR_DB = -60;
const CEILING_DB = -10;

/** Root mean square of samples in [-1, 1]. */
export function rms(samples: ArrayLike<number>): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!;
  return Math.sqrt(sum / samples.length);
}

/** The meter's value, 0-100, from an RMS: logarithmic, like hearing. */
export function levelPercent(value: number): number {
  if (value <= 0) return 0;
  const db = 20 * Math.log10(value);
  return Math.round(Math.max(0, Math.min(1, (db - FLOOR_DB) / (CEILING_DB - FLOOR_DB))) * 100);
}

/** Words for the meter's value (its `aria-valuetext`). */
export function levelWords(percent: number, silent: boolean): string {
  if (silent) return "No sound";
  if (percent < 15) return "Very quiet";
  if (percent < 45) return "Quiet";
  return "Good";
}

/**
 * Tells a microphone that sends silence from one that works: `silent` once no block was louder
 * than silence for `quietMs`. Before any sound was heard the wait is `firstMs` (the test asks
 * the counselor to speak; a call's first seconds show whether anyone hears them); after a sound
 * it is `laterMs`, since a counselor who listens to the caller is quiet for a while and a
 * working microphone should not be blamed for it.
 */
export class SilenceWatch {
  private since: number | null = null;
  private heard = false;
  constructor(
    private readonly firstMs = 3000,
    private readonly laterMs = firstMs,
  ) {}

  /** Feeds one block's RMS at time `now` (ms); answers whether the microphone seems silent. */
  feed(value: number, now: number): boolean {
    if (value >= SILENCE_RMS) {
      this.heard = true;
      this.since = null;
      return false;
    }
    if (this.since === null) this.since = now;
    return now - this.since >= (this.heard ? this.laterMs : this.firstMs);
  }

  /** Starts over (another device, unmuted). */
  reset() {
    this.since = null;
    this.heard = false;
  }
}
