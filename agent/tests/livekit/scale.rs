//! Scale-out, proven on this machine inside the loopback-only namespace
//! (`scripts/livekit/scale-test.sh`, its phases and assertions in `scale-test.py`): two
//! livekit-server nodes over Redis, agent workers on node B, counselors through node A with their
//! tokens from `POST /api/livekit/token`, two admin replicas on one PostgreSQL behind a
//! round-robin balancer.

use std::process::Command;

/// 20 calls spread over two workers, one of them full at `AGENT_MAX_JOBS`=3 (reports full, gets
/// no more, `agent_load` 1 on its `/metrics`); the requests alternate between the replicas (a
/// chat practice's too: both serve it, every turn in order, graded once; and the partner flow's:
/// API key, webhook, scenario and assignment through the partner API, a chat practice with a
/// reported flag, the result and transcript read back); the replica holding a grading is
/// SIGKILLed and the other grades every session once; every webhook delivery reaches the
/// partner's receiver exactly once and every flag e-mail reaches the SMTP sink once; SIGTERM drains
/// a worker (its call goes on to the counselor's hang-up, the next call goes to the other); a
/// SIGKILLed worker's call: the counselor sees the agent leave, the turns so far are stored, the
/// ended call is graded, the next call goes to the survivor; both LiveKit nodes in Redis; every
/// spoken turn stored once.
#[test]
#[ignore = "needs root, livekit-server, Redis, PostgreSQL and the Python client (scripts/livekit/install.sh)"]
fn scale_out_across_workers_nodes_and_replicas() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/livekit/scale-test.sh");
    let status = Command::new(script).status().expect("run scale-test.sh");
    assert!(status.success(), "scale-test.sh failed: {status}");
}
