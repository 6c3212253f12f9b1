// The microphone's level as a meter, with "we can't hear you" when it sends silence: the
// presentational `LevelMeter` (shared with MicTest) and `MicMeter`, the meter during a call, fed
// by the counselor's published microphone track. A counselor whose microphone sends silence had
// no sign they were not heard.
import { levelWords } from "@/lib/level";
import { useMicLevel } from "./useMicLevel";

export function LevelMeter({ level, silent, label = "Microphone level" }: { level: number; silent: boolean; label?: string }) {
  const words = levelWords(level, silent);
  return (
    <div className="flex flex-col gap-1">
      <div className="flex items-center gap-2 text-sm">
        <span className="shrink-0 font-medium text-slate-800" aria-hidden="true">{label}</span>
        <div
          role="meter"
          aria-label={label}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={level}
          aria-valuetext={`${words} (${level} of 100)`}
          data-testid="mic-level"
          className="h-3 min-w-0 flex-1 overflow-hidden rounded-full bg-slate-200"
        >
          <div className={`h-full rounded-full ${silent ? "bg-red-700" : level < 15 ? "bg-amber-600" : "bg-green-700"}`} style={{ width: `${level}%` }} />
        </div>
        <span className="w-20 shrink-0 text-xs text-slate-700" aria-hidden="true">{words}</span>
      </div>
      {/* Always in the page, so the warning is announced when its text appears. */}
      <p role="status" className={silent ? "rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-900" : "sr-only"}>
        {silent ? "We can't hear you: check the microphone (is it muted, unplugged, or the wrong one?)." : ""}
      </p>
    </div>
  );
}

/** The meter during a call. Muted, it says so instead of measuring. */
export function MicMeter({ track, muted }: { track: MediaStreamTrack | null | undefined; muted: boolean }) {
  // Before the first sound the warning comes after 3 s; once the microphone was heard, only
  // after 30 s of silence (the counselor listens to the caller for a while).
  const { level, silent } = useMicLevel(muted ? null : track, 3000, 30_000);
  if (muted) return <p className="text-sm text-slate-800">Your microphone is muted: the caller cannot hear you.</p>;
  if (!track) return null;
  return <LevelMeter level={level} silent={silent} />;
}
