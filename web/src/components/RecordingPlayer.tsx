// The voice session's recording (`GET /api/sessions/{id}/recording`, served with Range so the
// browser can seek) and the hook that keeps the transcript in step with it.
import { forwardRef, useCallback, useRef, useState } from "react";
import { currentTurnIndex, seekSeconds, type TimedTurn } from "@/lib/sync";

export function recordingUrl(sessionId: string) {
  return `/api/sessions/${sessionId}/recording`;
}

export const RecordingPlayer = forwardRef<HTMLAudioElement, { sessionId: string; onTime: (ms: number) => void }>(function RecordingPlayer({ sessionId, onTime }, ref) {
  const [failed, setFailed] = useState(false);
  // Remounted (keyed by the session's status) once a live call ends, so a recording that did not
  // exist yet is asked for again.
  if (failed) return <p className="text-sm text-slate-700">No recording is available for this session.</p>;
  return (
    // The transcript beside the player is the recording's text alternative (it follows the
    // playback); a caption track would repeat it.
    // eslint-disable-next-line jsx-a11y/media-has-caption
    <audio
      ref={ref}
      controls
      preload="metadata"
      src={recordingUrl(sessionId)}
      aria-label="Session recording"
      className="w-full"
      onTimeUpdate={(e) => onTime(e.currentTarget.currentTime * 1000)}
      onSeeked={(e) => onTime(e.currentTarget.currentTime * 1000)}
      onError={() => setFailed(true)}
    />
  );
});

/** Current turn while playing, and a seek-to-turn for clicks on turns or evidence quotes. */
export function useRecordingSync(turns: readonly TimedTurn[]) {
  const audio = useRef<HTMLAudioElement>(null);
  const [current, setCurrent] = useState(-1);
  const onTime = useCallback((ms: number) => setCurrent(currentTurnIndex(turns, ms)), [turns]);
  const seekTo = useCallback(
    (index: number) => {
      const turn = turns[index];
      const el = audio.current;
      if (!turn || !el) return false;
      el.currentTime = seekSeconds(turn);
      setCurrent(index);
      return true;
    },
    [turns],
  );
  return { audio, current, onTime, seekTo };
}
