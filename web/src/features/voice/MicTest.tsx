// The microphone test before a call: the browser's microphone (asked for on a click, never on
// page load), its level on a meter, and "we can't hear you" when it stays silent for about 3
// seconds; with more than one input a picker, whose choice the call then uses (`onDevice`).
// The test's stream is stopped when the test stops or the page moves on to the call.
import { useEffect, useState } from "react";
import { Button, ErrorNote, Select } from "@/components/ui";
import { LevelMeter } from "./MicMeter";
import { useMicLevel } from "./useMicLevel";

function micError(e: unknown): Error {
  const name = e instanceof DOMException ? e.name : "";
  if (name === "NotAllowedError") return new Error("The browser was not allowed to use the microphone: allow it in the address bar's site settings, then test again.");
  if (name === "NotFoundError" || name === "OverconstrainedError") return new Error("No microphone was found: plug one in, then test again.");
  if (name === "NotReadableError") return new Error("The microphone is in use by another program or cannot be read: close that program, then test again.");
  return new Error(`The microphone could not be opened${e instanceof Error && e.message ? `: ${e.message}` : "."}`);
}

export function MicTest({ onDevice }: { onDevice?: (deviceId: string) => void }) {
  const [stream, setStream] = useState<MediaStream | null>(null);
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const [deviceId, setDeviceId] = useState("");
  const [error, setError] = useState<Error | null>(null);
  const [starting, setStarting] = useState(false);
  const track = stream?.getAudioTracks()[0] ?? null;
  const { level, silent } = useMicLevel(track, 3000);
  // The test's stream is the page's to stop: when replaced, stopped, or the page moves on.
  useEffect(() => () => stream?.getTracks().forEach((t) => t.stop()), [stream]);

  const open = async (id: string) => {
    setStarting(true);
    setError(null);
    try {
      const next = await navigator.mediaDevices.getUserMedia({ audio: id ? { deviceId: { exact: id } } : true });
      setStream(next);
      // Labels and the full list come only after permission.
      const inputs = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
      setDevices(inputs);
      const used = next.getAudioTracks()[0]?.getSettings().deviceId ?? id;
      setDeviceId(used);
    } catch (e) {
      setError(micError(e));
    } finally {
      setStarting(false);
    }
  };

  return (
    <section aria-labelledby="mic-test-title" className="flex flex-col gap-2 rounded-md border border-slate-300 p-3">
      <h2 id="mic-test-title" className="text-sm font-semibold">Test your microphone</h2>
      {!stream ? (
        <>
          <p className="text-sm text-slate-800">Check that the caller will hear you: say a few words and watch the level.</p>
          <div>
            <Button variant="secondary" onClick={() => open(deviceId)} disabled={starting}>
              Test microphone
            </Button>
          </div>
        </>
      ) : (
        <>
          <p className="text-sm text-slate-800">Say a few words: the bar should move.</p>
          <LevelMeter level={level} silent={silent} />
          {devices.length > 1 && (
            <Select
              label="Microphone"
              value={deviceId}
              onChange={(e) => {
                onDevice?.(e.target.value);
                void open(e.target.value);
              }}
            >
              {devices.map((d, i) => (
                <option key={d.deviceId || i} value={d.deviceId}>
                  {d.label || `Microphone ${i + 1}`}
                </option>
              ))}
            </Select>
          )}
          <div>
            <Button variant="secondary" onClick={() => setStream(null)}>
              Stop test
            </Button>
          </div>
        </>
      )}
      <ErrorNote error={error} />
    </section>
  );
}
