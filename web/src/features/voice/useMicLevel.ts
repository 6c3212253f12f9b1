// The level of a live microphone track, ten times a second, through Web Audio: the track feeds
// an AnalyserNode (nothing reaches the speakers) whose samples give an RMS; `SilenceWatch`
// (lib/level) decides when to say the microphone sends silence. The audio context is closed
// when the track changes or the component goes.
import { useEffect, useState } from "react";
import { levelPercent, rms, SilenceWatch } from "@/lib/level";

export interface MicLevel {
  /** 0-100 (lib/level's log scale). */
  level: number;
  /** No sound for long enough to tell the counselor. */
  silent: boolean;
}

const TICK_MS = 100;

export function useMicLevel(track: MediaStreamTrack | null | undefined, firstMs = 3000, laterMs = firstMs): MicLevel {
  const [state, setState] = useState<MicLevel>({ level: 0, silent: false });
  useEffect(() => {
    if (!track || typeof AudioContext === "undefined") return;
    const context = new AudioContext();
    // Created after a click (Test microphone, Connect), so the browser lets it run; resume in
    // case it started suspended.
    void context.resume().catch(() => {});
    const source = context.createMediaStreamSource(new MediaStream([track]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const watch = new SilenceWatch(firstMs, laterMs);
    const tick = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      const value = rms(samples);
      const silent = watch.feed(value, performance.now());
      const level = levelPercent(value);
      setState((s) => (s.level === level && s.silent === silent ? s : { level, silent }));
    }, TICK_MS);
    return () => {
      clearInterval(tick);
      source.disconnect();
      void context.close().catch(() => {});
      setState({ level: 0, silent: false });
    };
  }, [track, firstMs, laterMs]);
  return state;
}
