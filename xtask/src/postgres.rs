//! A throwaway PostgreSQL server for the test suite: installed from Debian's packages if missing,
//! initialised in a temporary directory, listening on loopback on a free port, and stopped and
//! deleted when dropped. As root it runs as the `postgres` user (initdb refuses root).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run;

#[derive(Debug)]
pub struct TestServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl TestServer {
    pub fn start() -> Result<Self> {
        let bin = match find_bin_dir() {
            Some(bin) => bin,
            None => {
                install()?;
                find_bin_dir().context("postgresql installed but initdb not found")?
            }
        };
        let as_postgres = is_root();
        sweep_abandoned();
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("proto-trainer-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let server = TestServer { bin, dir, port, as_postgres };
        if as_postgres {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&server.dir))?;
        }
        let data = server.dir.join("data");
        run(&mut server
            .cmd("initdb", &["-D", path(&data)?, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]))?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            path(&server.dir)?
        );
        let log = server.dir.join("server.log");
        run(&mut server.cmd("pg_ctl", &["-D", path(&data)?, "-l", path(&log)?, "-o", &options, "-w", "start"]))?;
        eprintln!("postgres: test server on 127.0.0.1:{port}");
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn cmd(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(exe).args(args);
            cmd
        } else {
            let mut cmd = Command::new(exe);
            cmd.args(args);
            cmd
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if let Ok(data) = path(&data) {
            let _ = self.cmd("pg_ctl", &["-D", data, "-m", "immediate", "stop"]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Deletes the directories of test servers whose process was killed before `Drop` ran (a run
/// interrupted by hand): a benchmark's cluster holds gigabytes. A directory is kept while its
/// postmaster lives, and for ten minutes after it was made when none has started (yet).
fn sweep_abandoned() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("proto-trainer-pg-") {
            continue;
        }
        let dir = entry.path();
        let postmaster = std::fs::read_to_string(dir.join("data/postmaster.pid")).ok();
        let alive = postmaster
            .as_deref()
            .and_then(|pid| pid.lines().next())
            .is_some_and(|pid| Path::new("/proc").join(pid.trim()).exists());
        let young = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < std::time::Duration::from_secs(600));
        if !alive && (postmaster.is_some() || !young) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("temporary path is not UTF-8")
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn install() -> Result<()> {
    eprintln!("postgres: not installed; installing Debian's postgresql package");
    if !is_root() {
        bail!("PostgreSQL is not installed and this is not root: run `sudo apt-get install -y postgresql`");
    }
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "postgresql"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
