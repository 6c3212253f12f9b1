import { describe, expect, it } from "vitest";
import { currentTurnIndex, seekSeconds } from "./sync";

const turns = [
  { startedMs: 0, endedMs: 4000 },
  { startedMs: 6000, endedMs: 12000 },
  { startedMs: 14000, endedMs: 20000 },
  { startedMs: 21000, endedMs: null },
];

describe("transcript and recording sync", () => {
  it("highlights the turn being spoken", () => {
    expect(currentTurnIndex(turns, 0)).toBe(0);
    expect(currentTurnIndex(turns, 3999)).toBe(0);
    expect(currentTurnIndex(turns, 6000)).toBe(1);
    expect(currentTurnIndex(turns, 15000)).toBe(2);
  });
  it("highlights nothing before the first turn or in a pause between turns", () => {
    expect(currentTurnIndex(turns, -1)).toBe(-1);
    expect(currentTurnIndex(turns, 5000)).toBe(-1);
    expect(currentTurnIndex(turns, 20500)).toBe(-1);
    expect(currentTurnIndex([], 1000)).toBe(-1);
  });
  it("keeps a turn without an end current until the next begins", () => {
    expect(currentTurnIndex(turns, 999_999)).toBe(3);
  });
  it("seeks a little before a turn so its first word is heard, never before zero", () => {
    expect(seekSeconds(turns[1]!)).toBeCloseTo(5.75);
    expect(seekSeconds(turns[0]!)).toBe(0);
  });
  it("agrees with a linear scan over many turns", () => {
    const many = Array.from({ length: 200 }, (_, i) => ({ startedMs: i * 1000, endedMs: i * 1000 + 800 }));
    for (let t = -500; t < 201_000; t += 137) {
      let expected = -1;
      many.forEach((turn, i) => {
        if (turn.startedMs <= t && turn.endedMs >= t) expected = i;
      });
      expect(currentTurnIndex(many, t)).toBe(expected);
    }
  });
});
