//! `cargo xtask <task>`: the project's developer tasks in Rust instead of shell sprawl.
//!
//! - `demo`: build, seed the demo data into SQLite, and serve on http://localhost:3003.
//! - `ci`: everything CI checks: formatting, ESLint on the web UI, known advisories in `Cargo.lock` (offline), clippy,
//!   generated-file drift, the deployment files and the container image, the whole test suite on
//!   SQLite and on a throwaway PostgreSQL server this task installs and starts, and the voice
//!   agent's end-to-end tests against a real livekit-server and LiveKit client.
//! - `audit`: the CI step that checks `Cargo.lock` against the RustSec advisory snapshot.
//! - `web-build`: `npm ci` (when the lockfile changed) and the Vite build into `web/dist`, which
//!   the binary embeds; `demo` and `ci` run it first.
//! - `codegen`: regenerate checked-in generated files (the OpenAPI document and the web UI's
//!   TypeScript types generated from it).
//! - `e2e`: the web UI end to end in headless Chromium (playwright-core driving Debian's
//!   `chromium`) against the real binary, a fresh SQLite database and the OpenAI simulator.
//! - `bench web`: first-load JavaScript (gzip) and time to interactive of the counselor home and
//!   the voice page in headless Chromium.
//! - `bench api`: HTTP throughput and latency of the list routes on SQLite and PostgreSQL (a
//!   throwaway server unless `TEST_POSTGRES_URL` is set) next to a bare axum handler.
//! - `bench agent-media [N ...]`: N concurrent echo sessions through a real livekit-server; CPU
//!   seconds per session-minute and RSS per session of the agent process.
//! - `bench voice [N ...]`: N concurrent role-play calls (synthetic counselors, the simulator as
//!   OpenAI) through a real livekit-server; CPU, RSS per call, underruns and latency percentiles.
//! - `bench scale [N]`: N voice calls dispatched to one, then two agent workers through two
//!   livekit-server nodes over Redis and two admin replicas on PostgreSQL; calls held, dispatch
//!   latency, per-worker load and turns lost side by side (`bench_scale.rs`).
//! - `deploy-check`: the deployment files against the tools that read them (systemd-analyze,
//!   podman-compose, helm, kubeconform; `deploy/tools/install.sh` installs them pinned).
//! - `image-test`: builds the container image from the host's binary and checks it answers
//!   (`deploy/image-test.sh`).
//! - `eval-golden --base-url <url> | --sim`: the evaluator against the labelled transcripts in
//!   `golden/` (agreement, Cohen's kappa, flag precision/recall); see `golden/README.md`.

mod bench_api;
mod bench_scale;
mod deploy;
mod golden;
mod golden_truth;
mod postgres;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["demo"] => demo(true),
        ["demo", "--no-build"] => demo(false),
        ["ci"] => ci(),
        ["audit"] => audit(),
        ["web-build"] => web_build(),
        ["e2e"] => e2e(),
        ["bench", "web"] => bench_web(),
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        ["bench", "api"] => bench_api::main(),
        ["bench", "agent-media", sizes @ ..] => {
            let sizes = if sizes.is_empty() { vec!["1", "10", "50"] } else { sizes.to_vec() };
            run(Command::new("scripts/livekit/bench-agent-media.sh").args(sizes))
        }
        ["bench", "voice", sizes @ ..] => {
            let sizes = if sizes.is_empty() { vec!["1", "10", "50", "100"] } else { sizes.to_vec() };
            run(Command::new("scripts/livekit/bench-voice.sh").args(sizes))
        }
        ["bench", "scale", rest @ ..] => bench_scale::main(rest),
        ["eval-golden", rest @ ..] => golden::main(rest),
        ["pg"] => pg(),
        ["deploy-check"] => deploy::check(),
        ["image-test"] => deploy::image_test(),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo [--no-build] | ci | audit | web-build | e2e | codegen [--check] | bench api | bench web | bench agent-media [N ...] | bench voice [N ...] | bench scale [N] | eval-golden ... | pg | deploy-check | image-test>"
            );
            std::process::exit(2);
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into())
}

/// Runs a command, failing with its name if it fails.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("$ {shown}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// The product on this machine with demo data. Without `OPENAI_API_KEY` it runs offline: the
/// OpenAI simulator (scripted with plausible grading answers) stands in for the provider.
/// The offline demo: the UI and API on http://localhost:3003 with seeded demo users, the OpenAI
/// simulator (chat, grading and the Realtime voice caller) unless `OPENAI_API_KEY` is set, and
/// voice practice through a local livekit-server on 127.0.0.1 (loopback candidates only) unless
/// `LIVEKIT_URL` is set; `proto-trainer serve` runs the voice agent in-process.
///
/// `--no-build` skips the installs and builds and runs the binaries in `DEMO_BIN_DIR` (default
/// `target/release`): how `scripts/livekit/demo-test.sh` runs the demo's stack inside the
/// loopback-only namespace, where nothing can be installed.
fn demo(build: bool) -> Result<()> {
    if build {
        // Before anything else: it needs the package registries (go, pip) the first time.
        if std::env::var_os("LIVEKIT_URL").is_none() {
            run(&mut Command::new("scripts/livekit/install.sh"))?;
        }
        web_build()?;
        run(cargo().args(["build", "--release", "-p", "proto-trainer", "-p", "proto-trainer-openai-sim", "--bins"]))?;
    }
    let bin_dir = PathBuf::from(std::env::var_os("DEMO_BIN_DIR").unwrap_or_else(|| "target/release".into()));
    let bin = bin_dir.join("proto-trainer");
    run(Command::new(&bin).args(["seed", "--demo"]))?;
    let mut serve = Command::new(&bin);
    serve.arg("serve").env("DEMO_MODE", "true");
    let _simulator = if std::env::var_os("OPENAI_API_KEY").is_none() {
        let rules = Path::new("target/demo-sim-rules.json");
        std::fs::write(rules, serde_json::to_vec_pretty(&demo_rules())?)?;
        let child = Command::new(bin_dir.join("openai-sim"))
            .args(["--bind", "127.0.0.1:8089", "--rules"])
            .arg(rules)
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting openai-sim")?;
        serve.env("OPENAI_BASE_URL", "http://127.0.0.1:8089/v1").env("OPENAI_API_KEY", "offline-demo");
        eprintln!(
            "No OPENAI_API_KEY: the AI caller (chat and voice) and grading come from the offline OpenAI simulator (127.0.0.1:8089)."
        );
        Some(KillOnDrop(child))
    } else {
        None
    };
    let _livekit = demo_livekit(&mut serve)?;
    eprintln!("Serving on http://localhost:3003 (DEMO_MODE=true); Ctrl-C stops it.");
    // Ctrl-C reaches the whole process group; a SIGTERM to this task alone is passed on, so the
    // service ends its calls cleanly and the helpers stop.
    let mut child = serve.spawn().context("starting proto-trainer serve")?;
    let status = wait_forwarding_term(&mut child)?;
    if !status.success() {
        bail!("proto-trainer serve exited with {status}");
    }
    Ok(())
}

/// Waits for `child`; a SIGTERM to this process is sent on to it first.
fn wait_forwarding_term(child: &mut std::process::Child) -> Result<std::process::ExitStatus> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            tokio::select! {
                _ = term.recv() => {
                    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                }
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
            }
        }
    })
}

/// Voice for the demo: `LIVEKIT_URL` (with its key pair) when set, else a local livekit-server
/// (installed by `scripts/livekit/install.sh`) bound to 127.0.0.1 with loopback candidates only
/// (`scripts/livekit/render-config.sh`) and a key pair made for this run.
fn demo_livekit(serve: &mut Command) -> Result<Option<KillOnDrop>> {
    if let Ok(url) = std::env::var("LIVEKIT_URL") {
        eprintln!("Voice practice through LiveKit at {url} (LIVEKIT_URL).");
        return Ok(None);
    }
    let cache = std::env::var_os("PROTO_TRAINER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/proto-trainer")))
        .context("HOME is not set (the livekit-server install lives under ~/.cache/proto-trainer)")?;
    let server = cache.join("bin/livekit-server");
    if !server.exists() {
        bail!("{} is missing: run scripts/livekit/install.sh (cargo xtask demo does)", server.display());
    }
    let mut secret = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut secret)?;
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("demo-{secret}");
    let rendered = Command::new("scripts/livekit/render-config.sh")
        .env("LK_API_KEY", "devkey")
        .env("LK_API_SECRET", &secret)
        .env("LK_LOG_LEVEL", "warn")
        .output()
        .context("rendering the livekit-server config")?;
    if !rendered.status.success() {
        bail!("render-config.sh failed: {}", String::from_utf8_lossy(&rendered.stderr));
    }
    let config = Path::new("target/demo-livekit.yaml");
    std::fs::write(config, &rendered.stdout)?;
    let log = std::fs::File::create("target/demo-livekit.log")?;
    let child = Command::new(&server)
        .arg("--config")
        .arg(config)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting livekit-server")?;
    serve.env("LIVEKIT_URL", "ws://127.0.0.1:7880").env("LIVEKIT_API_KEY", "devkey").env("LIVEKIT_API_SECRET", &secret);
    eprintln!("Voice practice through a local livekit-server on 127.0.0.1:7880 (log: target/demo-livekit.log).");
    Ok(Some(KillOnDrop(child)))
}

/// Stops a helper process when the task ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Simulator rules for the offline demo: a complete, plausible evaluation (every rubric check),
/// a clean analysis, a document review and a scenario draft. Chat uses the simulator's default
/// caller lines.
fn demo_rules() -> serde_json::Value {
    use serde_json::json;
    let criteria: Vec<serde_json::Value> = admin::rubric::criteria("Expect a direct ask.")
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let checks: Vec<serde_json::Value> = c
                .checks
                .iter()
                .map(|k| json!({"key": k.key, "answer": if i % 3 == 2 { "no" } else { "yes" }, "turns": [2], "note": "Offline demo grading."}))
                .collect();
            json!({"key": c.key, "checks": checks, "rating": if i % 3 == 2 { 2 } else { 3 },
                   "comment": format!("{}: offline demo grading from the simulator.", c.name)})
        })
        .collect();
    json!([
        {"endpoint": "chat", "schemaName": "evaluation", "reply": {"json": {
            "criteria": criteria,
            "strengths": ["Warm, steady opening", "Asked about suicide directly"],
            "areas_to_improve": ["Reflect feelings before the next question", "Close with a concrete safety plan"],
            "overall_score": 70, "flags": []}}},
        {"endpoint": "chat", "schemaName": "analysis", "reply": {"json": {"summary": "No further concerns (offline demo).", "findings": []}}},
        {"endpoint": "chat", "schemaName": "document_review", "reply": {"json": {
            "completeness": 72, "accuracy": 85, "consistency": 80,
            "gaps": [{"description": "The safety plan agreed with the caller is not documented.", "severity": "medium"}]}}},
    ])
}

/// `cargo`, without incremental compilation under CI (`CI` set, `CARGO_INCREMENTAL` not): a clean
/// clone builds once, so incremental state would only take disk, gigabytes for this workspace's
/// test binaries, on a machine whose disk a CI run (builds, databases, recordings) fills a lot.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
    if std::env::var_os("CI").is_some() && std::env::var_os("CARGO_INCREMENTAL").is_none() {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

fn ci() -> Result<()> {
    let started = std::time::Instant::now();
    let mut steps = Steps::default();
    // The live tests' peers (livekit-server built with `go install`, LiveKit's Python client)
    // install in the background from the start: their downloads overlap the Rust build instead of
    // adding to it. install.sh needs the package registries, so it runs outside any namespace.
    let install = Background::spawn("scripts/livekit/install.sh", Path::new("target/ci-install.log"))?;
    let free_at_start = free_disk_gb();
    if let Some(free) = free_at_start {
        eprintln!("ci: {free:.1} GB free on the project's disk");
        if free < CI_DISK_GB {
            eprintln!(
                "ci: WARNING: a full run from a clean clone takes about {CI_DISK_GB} GB (the build, \
                 databases, recordings); with less it may stop with 'No space left on device'"
            );
        }
    }
    let result = ci_steps(&mut steps, install);
    steps.print();
    if let (Some(start), Some(end)) = (free_at_start, free_disk_gb()) {
        eprintln!("ci: {end:.1} GB free at the end ({:+.1} GB)", end - start);
    }
    result?;
    eprintln!("ci: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// What a CI run from a clean clone takes on disk, rounded up: measured 7.3 GB at its peak
/// (the build without incremental state 4.2 GB, then the test databases, recordings and images).
const CI_DISK_GB: f64 = 10.0;

/// Free space, in GB, on the filesystem of the working directory (the project), as `df` reports
/// it; none when `df` cannot say. Printed by CI: a full disk once failed a run before any test.
fn free_disk_gb() -> Option<f64> {
    let out = Command::new("df").args(["-Pk", "."]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kb: f64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kb / 1024.0 / 1024.0)
}

fn ci_steps(steps: &mut Steps, install: Background) -> Result<()> {
    steps.time("fmt", || run(cargo().args(["fmt", "--all", "--", "--check"])))?;
    steps.time("advisories (cargo audit, offline)", audit)?;
    // The UI first: the binary that clippy, the tests and the E2E run build embeds web/dist.
    steps.time("web build", web_build)?;
    steps.time("clippy", || {
        run(cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))
    })?;
    // Every library, binary and test target in one build: the test run, the codegen check, the
    // E2E run and the live tests then use these artifacts. (A `cargo build -p` of a subset of the
    // packages unifies other features and would compile the dependencies again.)
    steps.time("build (libs, binaries, tests)", || {
        run(cargo().args(["build", "--workspace", "--locked", "--lib", "--bins", "--tests"]))
    })?;
    steps.time("codegen drift", || codegen_with(true, true))?;
    steps.time("deploy check (systemd, compose, Helm)", deploy::check)?;
    // The image from the debug binary just built (the release build is the image's own stage
    // elsewhere); the Debian base is made once with debootstrap and cached in target/image.
    steps.time("container image (podman build + run)", deploy::image_test)?;
    // ESLint (hook rules, jsx-a11y, feature import boundaries, query keys from the factory):
    // web/eslint.config.js.
    steps.time("eslint", || run(Command::new("npm").args(["run", "--silent", "lint"]).current_dir("web")))?;
    steps.time("vitest", || run(Command::new("npm").args(["test", "--silent"]).current_dir("web")))?;
    steps.time("cargo test (SQLite + PostgreSQL)", || {
        let server = postgres::TestServer::start()?;
        let result = run(cargo()
            .args(["test", "--workspace", "--locked"])
            .env("TEST_POSTGRES_URL", server.url())
            .env("REQUIRE_POSTGRES", "1"));
        drop(server);
        result
    })?;
    steps.time("install live peers (wait)", || install.wait())?;
    steps.time("e2e (Chromium, voice in the namespace)", || e2e_run(false))?;
    // The voice path against real peers: livekit-server and LiveKit's Python client, each test in
    // its own loopback-only network namespace, so two run at once (they wait on speech, not CPU).
    // The scale test runs alone after them: it holds 20 calls on two workers, and beside another
    // live test (the admin-kill stack test saturates both cores) a starved participant's audio
    // arrived late enough to barge in on two answers in one CI run.
    steps.time("live LiveKit tests", || {
        run(cargo()
            .args(["test", "--workspace", "--locked", "--test", "livekit", "--", "--ignored", "--test-threads=2"])
            .args(["--skip", SCALE_TEST])
            .env("PROTO_TRAINER_PREBUILT", "1"))
    })?;
    steps.time("live scale-out test (alone)", || {
        run(cargo()
            .args(["test", "--workspace", "--locked", "--test", "livekit", "--", "--ignored", "--exact", SCALE_TEST])
            .env("PROTO_TRAINER_PREBUILT", "1"))
    })
}

/// The multi-node proof (`agent/tests/livekit/scale.rs`), which CI runs on its own.
const SCALE_TEST: &str = "scale::scale_out_across_workers_nodes_and_replicas";

/// `Cargo.lock` against the RustSec advisory database snapshot beside the clone
/// (`../shared/advisory-db`, or `ADVISORY_DB`), offline: a known advisory fails unless
/// `.cargo/audit.toml` ignores it with its reason. cargo-audit is installed once, pinned and
/// `--locked`, into the tool cache the live peers use (`PROTO_TRAINER_CACHE`, default
/// `~/.cache/proto-trainer`), and reused from there.
fn audit() -> Result<()> {
    let db =
        std::env::var_os("ADVISORY_DB").map_or_else(|| project_root().join("../shared/advisory-db"), PathBuf::from);
    if !db.join("crates").is_dir() {
        bail!("no advisory database at {} (set ADVISORY_DB to a copy of rustsec/advisory-db)", db.display());
    }
    let cache = std::env::var_os("PROTO_TRAINER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/proto-trainer")))
        .context("HOME is not set (cargo-audit is installed under ~/.cache/proto-trainer)")?;
    let audit = cache.join("bin/cargo-audit");
    if !audit.exists() {
        run(cargo()
            .args(["install", "--locked", "cargo-audit", "--version", "0.22.2", "--no-default-features", "--root"])
            .arg(&cache)
            // Its own target dir: the workspace's build lock stays free for the other steps.
            .env("CARGO_TARGET_DIR", cache.join("cargo-audit-build")))?;
    }
    run(Command::new(audit).args(["audit", "--no-fetch", "--stale", "--db"]).arg(db))
}

/// Wall-clock time per CI step, printed at the end (also when a step failed), so the time budget
/// can be watched on a clean clone.
#[derive(Default)]
struct Steps(Vec<(&'static str, std::time::Duration, bool)>);

impl Steps {
    fn time(&mut self, name: &'static str, step: impl FnOnce() -> Result<()>) -> Result<()> {
        let started = std::time::Instant::now();
        let result = step();
        self.0.push((name, started.elapsed(), result.is_ok()));
        result
    }

    fn print(&self) {
        eprintln!("ci: time per step");
        for (name, took, ok) in &self.0 {
            eprintln!("  {:>6.1} s  {name}{}", took.as_secs_f64(), if *ok { "" } else { "  (FAILED)" });
        }
    }
}

/// A command run beside the others, its output in a log file shown only when it fails.
struct Background {
    child: std::process::Child,
    log: PathBuf,
}

impl Background {
    fn spawn(program: &str, log: &Path) -> Result<Self> {
        std::fs::create_dir_all(log.parent().unwrap_or(Path::new(".")))?;
        let out = std::fs::File::create(log)?;
        let child = Command::new(program)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        eprintln!("$ {program} (in the background, log {})", log.display());
        Ok(Self { child, log: log.to_path_buf() })
    }

    fn wait(mut self) -> Result<()> {
        let status = self.child.wait()?;
        if !status.success() {
            eprintln!("{}", std::fs::read_to_string(&self.log).unwrap_or_default());
            bail!("background step failed with {status} (log above)");
        }
        Ok(())
    }
}

/// A throwaway PostgreSQL server for running tests by hand: prints its URL (for
/// `TEST_POSTGRES_URL`) and serves until standard input closes, then removes it.
fn pg() -> Result<()> {
    let server = postgres::TestServer::start()?;
    println!("{}", server.url());
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())?;
    drop(server);
    Ok(())
}

/// Generated files: regenerate them, or with `check` fail when the checked-in copy drifted.
fn codegen(check: bool) -> Result<()> {
    codegen_with(check, false)
}

/// `prebuilt`: the binary in `target/debug` is current (CI built it in its build step).
fn codegen_with(check: bool, prebuilt: bool) -> Result<()> {
    let mut openapi = if prebuilt {
        Command::new("target/debug/proto-trainer")
    } else {
        let mut c = cargo();
        c.args(["run", "--quiet", "--locked", "--bin", "proto-trainer", "--"]);
        c
    };
    let out = openapi.arg("openapi").output().context("running proto-trainer openapi")?;
    if !out.status.success() {
        bail!("proto-trainer openapi failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let target = Path::new("web/openapi.json");
    if check {
        let current = std::fs::read(target).unwrap_or_default();
        if current != out.stdout {
            bail!("{} is out of date: run `cargo xtask codegen` and commit the result", target.display());
        }
        eprintln!("codegen: {} is up to date", target.display());
    } else {
        std::fs::write(target, &out.stdout)?;
        eprintln!("codegen: wrote {}", target.display());
    }
    typescript_types(check)
}

/// The web UI's API types (`web/src/api/schema.ts`, with each enum's values as a constant list)
/// generated from `web/openapi.json` by openapi-typescript, pinned in `web/package-lock.json`.
fn typescript_types(check: bool) -> Result<()> {
    npm_ci()?;
    let target = Path::new("web/src/api/schema.ts");
    let fresh = Path::new("target/schema.generated.ts");
    std::fs::create_dir_all("target")?;
    run(Command::new("web/node_modules/.bin/openapi-typescript")
        .args(["web/openapi.json", "--enum-values", "--output"])
        .arg(fresh))?;
    let generated = std::fs::read(fresh)?;
    if check {
        if std::fs::read(target).unwrap_or_default() != generated {
            bail!("{} is out of date: run `cargo xtask codegen` and commit the result", target.display());
        }
        eprintln!("codegen: {} is up to date", target.display());
    } else {
        std::fs::write(target, generated)?;
        eprintln!("codegen: wrote {}", target.display());
    }
    Ok(())
}

/// `npm ci` from the lockfile, skipped when `node_modules` already holds exactly that lockfile.
fn npm_ci() -> Result<()> {
    let lock = std::fs::read("web/package-lock.json").context("reading web/package-lock.json")?;
    let stamp = Path::new("web/node_modules/.ci-lock");
    if std::fs::read(stamp).ok().as_deref() == Some(lock.as_slice()) {
        return Ok(());
    }
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir("web"))?;
    std::fs::write(stamp, lock)?;
    Ok(())
}

/// The UI into `web/dist` (type check, then Vite), for the binary to embed.
fn web_build() -> Result<()> {
    npm_ci()?;
    run(Command::new("npm").args(["run", "--silent", "build"]).current_dir("web"))
}

/// The binaries the browser runs against (debug: the test suite built most of them already);
/// `proto-trainer serve` runs the voice agent in-process when LiveKit is configured.
fn e2e_binaries() -> Result<()> {
    run(cargo().args(["build", "--locked", "-p", "proto-trainer", "-p", "proto-trainer-openai-sim", "--bins"]))
}

/// The browser end to end: `web/e2e/run.mjs` starts the binary on 127.0.0.1 with a fresh SQLite
/// database and the simulator scripted by [`e2e_rules`], and drives Debian's Chromium. With the
/// voice scenario (the default; `E2E_VOICE=0` leaves it out) the whole run happens inside the
/// loopback-only network namespace (`scripts/livekit/netns-run.sh`), beside livekit-server (the
/// binary runs the voice agent in-process); installs (`install.sh`, Chromium) happen before,
/// outside it.
fn e2e() -> Result<()> {
    web_build()?;
    e2e_run(true)
}

/// The E2E run once `web/dist` is built (CI builds it first, for everything that embeds it).
/// `build`: build the binaries first (CI has built them already).
fn e2e_run(build: bool) -> Result<()> {
    let voice = std::env::var("E2E_VOICE").map_or(true, |v| v != "0");
    if build {
        e2e_binaries()?;
    }
    let rules = Path::new("target/e2e-sim-rules.json");
    std::fs::create_dir_all("target/e2e")?;
    std::fs::write(rules, serde_json::to_vec_pretty(&e2e_rules())?)?;
    let mut node = if voice {
        run(&mut Command::new("scripts/livekit/install.sh"))?;
        run(Command::new("node").args([
            "--input-type=module",
            "-e",
            "import('./web/e2e/lib.mjs').then((m) => m.ensureChromium())",
        ]))?;
        let mut c = Command::new("scripts/livekit/netns-run.sh");
        c.args(["node", "web/e2e/run.mjs"]).env("E2E_VOICE", "1");
        c
    } else {
        let mut c = Command::new("node");
        c.arg("web/e2e/run.mjs").env("E2E_VOICE", "0");
        c
    };
    run(node
        .env("E2E_BIN", "target/debug/proto-trainer")
        .env("E2E_SIM_BIN", "target/debug/openai-sim")
        .env("E2E_SIM_RULES", rules)
        .env("E2E_OUT", "target/e2e"))
}

/// First-load JavaScript and time to interactive, measured by `web/e2e/bench.mjs`.
fn bench_web() -> Result<()> {
    web_build()?;
    e2e_binaries()?;
    let rules = Path::new("target/e2e-sim-rules.json");
    std::fs::create_dir_all("target/e2e")?;
    std::fs::write(rules, serde_json::to_vec_pretty(&e2e_rules())?)?;
    run(Command::new("node")
        .arg("web/e2e/bench.mjs")
        .env("E2E_BIN", "target/debug/proto-trainer")
        .env("E2E_SIM_BIN", "target/debug/openai-sim")
        .env("E2E_SIM_RULES", rules)
        .env("E2E_OUT", "target/e2e"))
}

/// The demo's grading, plus one safety flag citing a turn, so the E2E run sees a flag raised by
/// an evaluation and reviews it; and the voice call's Realtime script: the caller's opening
/// (response 0, the caller speaks first), then what the fake microphone says (the simulator
/// does not recognise speech) and the caller's answer. Short lines keep the call quick.
fn e2e_rules() -> serde_json::Value {
    let mut rules = demo_rules();
    if let Some(flags) = rules[0]["reply"]["json"].get_mut("flags") {
        *flags = serde_json::json!([{"flag_type": "missed_plan_or_means", "severity": "high",
            "details": "The caller mentioned pills; the counselor did not ask about access to them.", "turns": [2]}]);
    }
    if let Some(list) = rules.as_array_mut() {
        list.extend([
            serde_json::json!({"endpoint": "realtime", "utterance": 0, "reply": {"text": "Hi. I can't sleep."}}),
            serde_json::json!({"endpoint": "realtime", "utterance": 1,
                "transcript": "Hello, this is the crisis line. Are you thinking about suicide?",
                "reply": {"text": "Sometimes. I have pills at home."}}),
        ]);
    }
    rules
}

#[cfg(test)]
mod disk_tests {
    /// `df`'s answer is read: CI prints it first, so a run short of disk says so.
    #[test]
    fn free_disk_is_read_from_df() {
        let free = super::free_disk_gb().expect("df's free space");
        assert!(free > 0.0 && free < 1_000_000.0, "{free} GB");
    }
}

#[cfg(test)]
mod demo_tests {
    /// The offline demo's simulator rules parse, and its scripted evaluation answers every
    /// rubric check, so a demo evaluation is complete.
    #[test]
    fn demo_rules_are_valid() {
        let rules = super::demo_rules();
        assert_eq!(openai_sim::rules_from_json(rules.clone()).map(|r| r.len()), Ok(3));
        let criteria = &rules[0]["reply"]["json"]["criteria"];
        let checks: usize = criteria
            .as_array()
            .map(|c| c.iter().map(|c| c["checks"].as_array().map_or(0, Vec::len)).sum())
            .unwrap_or(0);
        let expected: usize = admin::rubric::criteria("Expect a direct ask.").iter().map(|c| c.checks.len()).sum();
        assert_eq!(checks, expected);
    }

    /// The E2E grading is the demo's plus exactly one valid flag, and the voice call's two
    /// Realtime rules parse.
    #[test]
    fn e2e_rules_raise_one_flag() {
        let rules = super::e2e_rules();
        let demo = super::demo_rules().as_array().map_or(0, Vec::len);
        assert_eq!(openai_sim::rules_from_json(rules.clone()).map(|r| r.len()), Ok(demo + 2));
        assert_eq!(rules[0]["reply"]["json"]["flags"].as_array().map(Vec::len), Some(1));
    }
}
