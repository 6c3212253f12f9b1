//! Proto Trainer's LiveKit participant and agent worker, in pure Rust.
//!
//! The official `livekit` crate needs a prebuilt libwebrtc, which our machines cannot download,
//! so this crate speaks LiveKit's protocol itself: signalling through `livekit-signaling`,
//! WebRTC through str0m (see `docs/adr/0001-webrtc-stack.md`).
//!
//! - [`audio`]: Opus at 48 kHz mono, 20 ms frames.
//! - [`sdp`]: the SDP/candidate details LiveKit's signalling needs beyond str0m.
//! - [`session`]: the sans-IO room session (both peer connections, publish, subscribe, data).
//! - [`participant`]: the tokio shell that drives a session over real sockets.
//! - [`datastream`]: text streams (`lk.transcription` captions) as data packets.
//! - [`echo`]: the echo job, the test mode that proves media and data end to end.
//! - [`call`]: the sans-IO role-play call (Realtime events, paced playout, barge-in, captions,
//!   ordered turns, socket recycle and reconnect); [`roleplay`]: its tokio shell, the job.
//! - [`realtime`]: the OpenAI Realtime (GA) protocol; [`resample`]: 48 kHz <-> 24 kHz.
//! - [`preconnect`]: the pre-connect audio buffer (WebM/Opus or PCM16).
//! - [`turns`], [`recording`], [`phone`]: the seams to the store, the recorder and the
//!   phone-line effect (`tools/VOICE-INTERFACES.md`); [`turns_file`]: a file-backed store.
//! - [`token`]: access tokens for tests and the dev echo mode.
//! - [`worker`]: the sans-IO agent worker protocol (`/agent`: register, jobs, load, drain).
//! - [`worker_shell`]: the tokio shell that runs a worker and its jobs; [`service`]: the worker
//!   with its settings from the environment, as `proto-trainer-agent` and `proto-trainer` run it.
//! - [`metrics`]: per-turn latencies and per-call counters for Prometheus.
//! - [`turns`]: where a call's turns go (the store, or the internal API), off the media loop.
//! - [`recording`]: the stereo Ogg/Opus call recording; [`phone`]: the phone-line band-pass.

pub mod audio;
pub mod call;
pub mod datastream;
pub mod echo;
pub mod metrics;
pub mod participant;
pub mod phone;
pub mod preconnect;
pub mod realtime;
pub mod recording;
pub mod resample;
pub mod roleplay;
pub mod sdp;
pub mod service;
pub mod session;
pub mod token;
pub mod turns;
pub mod turns_file;
pub mod worker;
pub mod worker_shell;
