//! `cargo xtask deploy-check`: the deployment files checked with the tools that read them —
//! the environment file documents every variable the code reads (and nothing it does not),
//! `deploy/install.sh` installs into a scratch root where `systemd-analyze verify` and
//! `security --offline` judge the units, `podman-compose config` renders compose.yaml (and
//! refuses it without its secrets), and the Helm chart passes `helm lint --strict` and
//! `helm template | kubeconform -strict` against Kubernetes' own schemas, offline.
//! `cargo xtask image-test` builds and runs the container image (`deploy/image-test.sh`).
//! The tools come pinned from `deploy/tools/install.sh`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::run;

/// The Kubernetes version the chart is validated against (schemas from `kubernetes-validate`).
const KUBERNETES: &str = "1.37.0";
/// Sources whose string literals name the environment variables the product reads.
const CONFIG_SOURCES: &[&str] =
    &["admin/src/config.rs", "admin/src/telemetry.rs", "agent/src/realtime.rs", "agent/src/service.rs", "src/main.rs"];
/// Read by libraries, not by a literal in our sources.
const LIBRARY_VARIABLES: &[&str] = &["RUST_LOG"];
const ENV_FILE: &str = "deploy/systemd/proto-trainer.env";

fn cache() -> Result<PathBuf> {
    std::env::var_os("PROTO_TRAINER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/proto-trainer")))
        .context("HOME is not set (the deploy tools live under ~/.cache/proto-trainer)")
}

fn scratch(name: &str) -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let dir = target.join("deploy-check").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub fn check() -> Result<()> {
    run(&mut Command::new("deploy/tools/install.sh"))?;
    env_file_documents_every_variable()?;
    systemd()?;
    compose()?;
    helm()?;
    eprintln!("deploy-check: environment file, systemd units, install.sh, compose and Helm chart all pass");
    Ok(())
}

pub fn image_test() -> Result<()> {
    run(&mut Command::new("deploy/tools/install.sh"))?;
    run(&mut Command::new("deploy/image-test.sh"))
}

/// Uppercase string literals that look like variable names (`"DATABASE_URL"`), minus HTTP verbs.
fn variable_literals(text: &str) -> BTreeSet<String> {
    // HTTP verbs, and clap's `value_name`s.
    const NOT_VARIABLES: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "URL"];
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() >= 3
                && s.starts_with(|c: char| c.is_ascii_uppercase())
                && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .filter(|s| !NOT_VARIABLES.contains(s))
        .map(str::to_owned)
        .collect()
}

/// `NAME=` at the start of a line, commented out (`#NAME=`) or not.
fn documented_variables(env_file: &str) -> BTreeSet<String> {
    env_file
        .lines()
        .filter_map(|line| {
            let line = line.strip_prefix('#').unwrap_or(line);
            let (name, _) = line.split_once('=')?;
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .then(|| name.to_owned())
        })
        .collect()
}

fn env_file_documents_every_variable() -> Result<()> {
    let mut read = BTreeSet::new();
    for source in CONFIG_SOURCES {
        read.extend(variable_literals(&std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?));
    }
    read.extend(LIBRARY_VARIABLES.iter().map(|s| (*s).to_owned()));
    let documented = documented_variables(&std::fs::read_to_string(ENV_FILE)?);
    let missing: Vec<_> = read.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&read).collect();
    ensure!(missing.is_empty(), "{ENV_FILE} does not document {missing:?}, which the code reads");
    ensure!(stale.is_empty(), "{ENV_FILE} documents {stale:?}, which no code reads");
    eprintln!("deploy-check: {ENV_FILE} documents all {} variables", read.len());
    Ok(())
}

/// install.sh into a scratch root (with this machine's users and systemd's own units), then
/// `systemd-analyze verify` and `security --offline` there. verify exits 0 on unknown keys, so
/// any output fails.
fn systemd() -> Result<()> {
    let root = scratch("root")?;
    let root = root.canonicalize()?;
    std::fs::create_dir_all(root.join("etc"))?;
    for file in ["passwd", "group", "shadow", "gshadow"] {
        let from = Path::new("/etc").join(file);
        if from.exists() {
            std::fs::copy(&from, root.join("etc").join(file))?;
        }
    }
    std::fs::create_dir_all(root.join("usr/lib/systemd"))?;
    run(Command::new("cp").arg("-r").arg("/usr/lib/systemd/system").arg(root.join("usr/lib/systemd/")))?;
    let stand_in = root.join("stand-in");
    std::fs::write(&stand_in, "#!/bin/sh\nexit 0\n")?;
    run(Command::new("chmod").arg("0755").arg(&stand_in))?;
    run(Command::new("deploy/install.sh")
        .env("ROOT", &root)
        .arg("--binary")
        .arg(&stand_in)
        .arg("--livekit-server")
        .arg(&stand_in))?;
    for file in
        ["usr/local/bin/proto-trainer", "usr/local/bin/proto-trainer-ctl", "etc/proto-trainer/proto-trainer.env"]
    {
        ensure!(root.join(file).exists(), "install.sh did not install /{file}");
    }
    let env = std::fs::read_to_string(root.join("etc/proto-trainer/proto-trainer.env"))?;
    ensure!(env.contains("LIVEKIT_API_KEY=API"), "install.sh did not put the generated LiveKit key in the env file");
    let units = ["proto-trainer.service", "livekit-server.service"];
    for unit in units {
        let wanted = root.join("etc/systemd/system/multi-user.target.wants").join(unit);
        ensure!(wanted.symlink_metadata().is_ok(), "install.sh did not enable {unit}");
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(units)
        .output()
        .context("running systemd-analyze (Debian's systemd package)")?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() || !said.trim().is_empty() {
        bail!("systemd-analyze verify: {}\n{said}", out.status);
    }
    eprintln!("deploy-check: systemd-analyze verify passes for {units:?}");
    // Exposure 0 (locked down) to 10 (unprotected); the unit scores ~1.7.
    run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=25", "--no-pager"])
        .arg(format!("--root={}", root.display()))
        .arg("proto-trainer.service")
        .stdout(std::process::Stdio::null()))
    .context("systemd-analyze security: proto-trainer.service is exposed above 2.5")?;
    Ok(())
}

fn compose() -> Result<()> {
    let dir = scratch("compose")?;
    let env = dir.join("test.env");
    std::fs::write(
        &env,
        "POSTGRES_PASSWORD=check\nLIVEKIT_API_KEY=APIcheck\nLIVEKIT_API_SECRET=check-secret-check-secret-check-secret\n\
         INTERNAL_SERVICE_KEY=check-internal-key-0123456789abcdef\n",
    )?;
    let compose = cache()?.join("deploy-venv/bin/podman-compose");
    let rendered = Command::new(&compose)
        .arg("--env-file")
        .arg(&env)
        .args(["-f", "deploy/compose.yaml", "config"])
        .output()
        .with_context(|| format!("running {}", compose.display()))?;
    if !rendered.status.success() {
        bail!("podman-compose config failed:\n{}", String::from_utf8_lossy(&rendered.stderr));
    }
    let text = String::from_utf8_lossy(&rendered.stdout);
    for service in ["postgres:", "redis:", "livekit:", "admin:", "agent:"] {
        ensure!(text.contains(&format!("\n  {service}")), "compose.yaml renders without the {service} service");
    }
    ensure!(text.contains("http://admin:3004"), "the agent service does not reach the admin service's internal API");
    // Without its secrets the file must refuse to render, not start with empty passwords.
    let empty = dir.join("empty.env");
    std::fs::write(&empty, "")?;
    let refused = Command::new(&compose)
        .arg("--env-file")
        .arg(&empty)
        .args(["-f", "deploy/compose.yaml", "config"])
        .env_remove("POSTGRES_PASSWORD")
        .output()?;
    ensure!(!refused.status.success(), "compose.yaml rendered without POSTGRES_PASSWORD");
    eprintln!("deploy-check: podman-compose config renders compose.yaml (5 services) and refuses it without secrets");
    Ok(())
}

/// Kubernetes' schemas from the `kubernetes-validate` wheel, with their absolute `/api/...`
/// references rewritten to files, so kubeconform reads them offline.
fn schemas() -> Result<PathBuf> {
    let lib = cache()?.join("deploy-venv/lib");
    let python = std::fs::read_dir(&lib)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("python3")))
        .context("no python3 folder in the deploy venv")?;
    let folder = format!("v{KUBERNETES}-local-strict");
    let from = python.join("site-packages/kubernetes_validate/kubernetes-json-schema").join(&folder);
    let out = scratch("schemas")?.canonicalize()?;
    let to = out.join(&folder);
    std::fs::create_dir_all(&to)?;
    let definitions = format!("\"file://{}/_definitions.json", to.display());
    for entry in std::fs::read_dir(&from).with_context(|| format!("reading {}", from.display()))?.flatten() {
        let text = std::fs::read_to_string(entry.path())?;
        std::fs::write(to.join(entry.file_name()), text.replace("\"/api/_definitions.json", &definitions))?;
    }
    Ok(out)
}

fn helm() -> Result<()> {
    let bin = cache()?.join("bin");
    let chart = "deploy/helm/proto-trainer";
    let values = scratch("helm")?.join("values.yaml");
    std::fs::write(
        &values,
        "secrets:\n  DATABASE_URL: postgres://proto:check@postgres/proto_trainer\n  OPENAI_API_KEY: sk-check\n",
    )?;
    let kube = format!("--kube-version={KUBERNETES}");
    run(Command::new(bin.join("helm")).args(["lint", "--strict", chart, &kube, "-f"]).arg(&values))?;
    let schemas = schemas()?;
    let location = format!(
        "{}/{{{{ .NormalizedKubernetesVersion }}}}-local-strict/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        schemas.display()
    );
    let variants: [&[&str]; 2] = [
        &[],
        &[
            "--set",
            "agent.autoscaling.enabled=false,networkPolicy.enabled=false,existingSecret=pt,recordings.existingClaim=rec",
        ],
    ];
    for extra in variants {
        let rendered = Command::new(bin.join("helm"))
            .args(["template", "check", chart, &kube, "-f"])
            .arg(&values)
            .args(extra)
            .output()?;
        ensure!(rendered.status.success(), "helm template failed:\n{}", String::from_utf8_lossy(&rendered.stderr));
        let file = values.with_file_name("rendered.yaml");
        std::fs::write(&file, &rendered.stdout)?;
        run(Command::new(bin.join("kubeconform"))
            .args(["-strict", "-summary", "-kubernetes-version", KUBERNETES, "-schema-location", &location])
            .arg(&file))?;
    }
    // A SQLite URL cannot serve replicas: the chart refuses it.
    let refused = Command::new(bin.join("helm"))
        .args(["template", "check", chart, &kube, "--set", "secrets.DATABASE_URL=sqlite://x.db"])
        .output()?;
    ensure!(!refused.status.success(), "the chart rendered with a SQLite DATABASE_URL");
    eprintln!("deploy-check: helm lint --strict, helm template | kubeconform -strict (Kubernetes {KUBERNETES}) pass");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_are_read_from_literals_and_the_env_file() {
        let source = r#"var("DATABASE_URL"); number("JOB_POLL_MS", 2000); "GET"; "lower"; "X""#;
        let found = variable_literals(source);
        assert_eq!(found.into_iter().collect::<Vec<_>>(), ["DATABASE_URL", "JOB_POLL_MS"]);
        let env = "# comment: PORT is the port\nPORT=3003\n#DEMO_MODE=false\n  # indented\nnot a line\n";
        assert_eq!(documented_variables(env).into_iter().collect::<Vec<_>>(), ["DEMO_MODE", "PORT"]);
    }
}
