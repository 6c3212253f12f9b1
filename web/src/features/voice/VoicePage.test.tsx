// The in-call view when the AI caller leaves while the counselor is still connected (its agent
// worker died): "the caller dropped", not "waiting to join", and hanging up ends the session so
// it is graded at once. LiveKit's hooks are stubbed: the agent is there, then gone.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";

const assistant: { state: string; audioTrack: undefined; agent: object | undefined } = { state: "listening", audioTrack: undefined, agent: { identity: "agent-AJ_1" } };
vi.mock("@livekit/components-react", () => ({
  useVoiceAssistant: () => assistant,
  useLocalParticipant: () => ({ isMicrophoneEnabled: true, localParticipant: { setMicrophoneEnabled: vi.fn() } }),
  useTranscriptions: () => [],
  useMediaDeviceSelect: () => ({ devices: [], activeDeviceId: "", setActiveMediaDevice: vi.fn() }),
  RoomAudioRenderer: () => null,
  StartAudio: () => null,
  BarVisualizer: () => null,
  RoomContext: { Provider: ({ children }: { children: unknown }) => children },
}));
const post = vi.fn(async (..._args: unknown[]) => ({ data: {}, error: undefined, response: new Response() }));
vi.mock("@/api/client", () => ({
  api: { POST: (...args: unknown[]) => post(...args) },
  call: async (p: Promise<{ data: unknown }>) => (await p).data,
}));

import { InCall } from "./VoicePage";

const room = { on: vi.fn(), off: vi.fn(), disconnect: vi.fn(async () => undefined) };
const token = { token: "t", url: "ws://lk", roomName: "pt-1", sessionId: "01a24e30-0000-7000-8000-000000000001", agentName: "proto-trainer" };

function view() {
  return render(
    <MemoryRouter>
      <InCall room={room as never} token={token} onRejoin={() => undefined} rejoining={false} />
    </MemoryRouter>,
  );
}

describe("the caller drops", () => {
  afterEach(() => {
    cleanup();
    post.mockClear();
    room.disconnect.mockClear();
    assistant.agent = { identity: "agent-AJ_1" };
  });

  it("says the caller dropped once the agent left, and ends the session on hang-up", async () => {
    const { rerender } = view();
    expect(screen.getByText("The caller is listening.")).toBeTruthy();
    expect(screen.queryByText(/The caller dropped/)).toBeNull();
    assistant.agent = undefined;
    rerender(
      <MemoryRouter>
        <InCall room={room as never} token={token} onRejoin={() => undefined} rejoining={false} />
      </MemoryRouter>,
    );
    expect(screen.getByText(/The caller dropped/)).toBeTruthy();
    expect(screen.getByText("The caller has left the call.")).toBeTruthy();
    expect(screen.queryByText("Waiting for the caller to join…")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Hang up" }));
    await waitFor(() => expect(room.disconnect).toHaveBeenCalled());
    expect(post).toHaveBeenCalledWith("/api/sessions/{id}/end", { params: { path: { id: token.sessionId } } });
  });

  it("before the caller ever joined, it is still waiting, and hang-up ends nothing itself", async () => {
    assistant.agent = undefined;
    view();
    expect(screen.getByText("Waiting for the caller to join…")).toBeTruthy();
    expect(screen.queryByText(/The caller dropped/)).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Hang up" }));
    await waitFor(() => expect(room.disconnect).toHaveBeenCalled());
    expect(post).not.toHaveBeenCalled();
  });
});
