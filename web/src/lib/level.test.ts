import { describe, expect, it } from "vitest";
import { levelPercent, levelWords, rms, SilenceWatch, SILENCE_RMS } from "./level";

describe("microphone level", () => {
  it("measures RMS and maps it to a 0-100 meter on a log scale", () => {
    expect(rms([])).toBe(0);
    expect(rms([0.5, -0.5, 0.5, -0.5])).toBeCloseTo(0.5);
    expect(levelPercent(0)).toBe(0);
    expect(levelPercent(0.0005)).toBe(0); // below -60 dBFS
    expect(levelPercent(Math.pow(10, -35 / 20))).toBe(50); // -35 dBFS: half way
    expect(levelPercent(1)).toBe(100);
    expect(levelWords(70, false)).toBe("Good");
    expect(levelWords(0, true)).toBe("No sound");
  });

  it("says silent after the quiet lasted long enough, never for a sound", () => {
    const w = new SilenceWatch(3000);
    expect(w.feed(0, 0)).toBe(false);
    expect(w.feed(0, 2900)).toBe(false);
    expect(w.feed(0, 3000)).toBe(true);
    // A sound resets the wait.
    expect(w.feed(0.05, 3100)).toBe(false);
    expect(w.feed(SILENCE_RMS / 2, 3200)).toBe(false);
    expect(w.feed(0, 6100)).toBe(false);
    expect(w.feed(0, 6200)).toBe(true);
  });

  it("waits longer once the microphone was heard (a listening counselor is quiet)", () => {
    const w = new SilenceWatch(3000, 30_000);
    expect(w.feed(0, 0)).toBe(false);
    expect(w.feed(0, 3000)).toBe(true);
    expect(w.feed(0.1, 3100)).toBe(false);
    expect(w.feed(0, 3200)).toBe(false);
    expect(w.feed(0, 20_000)).toBe(false);
    expect(w.feed(0, 33_200)).toBe(true);
    w.reset();
    expect(w.feed(0, 40_000)).toBe(false);
    expect(w.feed(0, 43_000)).toBe(true);
  });
});
