//! `cargo xtask bench scale [N]`: N voice calls (default 10) dispatched to one agent worker, then
//! to two, through the whole deployed path (`scripts/livekit/scale-test.sh --bench N`: two
//! livekit-server nodes over Redis, two admin replicas on PostgreSQL behind a round-robin
//! balancer, tokens from `POST /api/livekit/token`, inside the loopback-only namespace). Prints,
//! side by side: calls held at once, dispatch latency (token issued -> agent in the room, p50 and
//! p95), calls and load per worker, and turns lost (spoken or heard but not stored).

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::run;

pub fn main(args: &[&str]) -> Result<()> {
    let calls: u32 = match args {
        [] => 10,
        [n] => n.parse().with_context(|| format!("not a number of calls: {n}"))?,
        _ => bail!("usage: cargo xtask bench scale [CALLS]"),
    };
    run(crate::cargo().args(["build", "--quiet", "-p", "proto-trainer", "-p", "proto-trainer-openai-sim", "--bins"]))?;
    let out = Command::new("scripts/livekit/scale-test.sh")
        .args(["--bench", &calls.to_string()])
        .env("PROTO_TRAINER_PREBUILT", "1")
        .stderr(Stdio::inherit())
        .output()
        .context("running scripts/livekit/scale-test.sh")?;
    let line = String::from_utf8_lossy(&out.stdout);
    let report: Value =
        line.lines().rev().find_map(|l| serde_json::from_str(l).ok()).context("scale-test.sh printed no result")?;
    let rows = report["bench"].as_array().cloned().unwrap_or_default();
    println!("{}", table(&rows));
    if !out.status.success() {
        bail!("the benchmark failed: {}", report["fails"]);
    }
    Ok(())
}

/// One column per round (1 worker, 2 workers), one line per measure.
fn table(rows: &[Value]) -> String {
    let measures: [(&str, &str); 8] = [
        ("calls", "calls started"),
        ("answered", "calls answered"),
        ("held_at_once", "calls held at once"),
        ("dispatch_p50_ms", "dispatch p50 (ms)"),
        ("dispatch_p95_ms", "dispatch p95 (ms)"),
        ("per_worker_calls", "calls per worker"),
        ("per_worker_load", "load per worker"),
        ("turns_lost", "turns lost"),
    ];
    let mut out = format!("{:<22}", "");
    for r in rows {
        out += &format!("{:>24}", format!("{} worker(s)", r["workers"]));
    }
    for (key, label) in measures {
        out += &format!("\n{label:<22}");
        for r in rows {
            out += &format!("{:>24}", cell(&r[key]));
        }
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(" / "),
        Value::Null => "-".into(),
        // Loads are fractions (f32 on the wire): two decimals are what a reader compares.
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or_default()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_puts_the_rounds_side_by_side() {
        let rows = serde_json::json!([
            {"workers": 1, "calls": 10, "answered": 10, "held_at_once": 10, "dispatch_p50_ms": 400, "dispatch_p95_ms": 900,
             "per_worker_calls": [10], "per_worker_load": [1.0], "turns_lost": 0},
            {"workers": 2, "calls": 10, "answered": 9, "held_at_once": 10, "dispatch_p50_ms": 350, "dispatch_p95_ms": null,
             "per_worker_calls": [6, 4], "per_worker_load": [0.6000000238418579, 0.4], "turns_lost": 1},
        ]);
        let t = table(rows.as_array().unwrap());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("1 worker(s)") && lines[0].contains("2 worker(s)"), "{t}");
        assert!(
            lines.iter().any(|l| l.starts_with("calls per worker") && l.contains("10") && l.contains("6 / 4")),
            "{t}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("dispatch p95 (ms)") && l.contains("900") && l.trim_end().ends_with('-')),
            "{t}"
        );
        assert!(lines.iter().any(|l| l.starts_with("turns lost") && l.trim_end().ends_with('1')), "{t}");
        assert!(lines.iter().any(|l| l.starts_with("load per worker") && l.contains("0.60 / 0.40")), "{t}");
    }
}
