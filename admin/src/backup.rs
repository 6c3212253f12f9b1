//! `proto-trainer backup <file>` and `proto-trainer restore <file>`: SQLite's online backup
//! (the store's `VACUUM INTO`, consistent while the service serves) and its restore, which
//! refuses while the service runs or over a database that holds data unless `--force`.
//! PostgreSQL is backed up with its own tools; both commands print the line to use instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

/// What to restore, where, and how carefully.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The database to replace (`DATABASE_URL`).
    pub database_url: String,
    /// The backup file (`proto-trainer backup` wrote it).
    pub source: PathBuf,
    /// Replace a database that holds data (it is kept beside, renamed, not deleted).
    pub force: bool,
    /// The service's address: if it answers `/healthz` there, the restore refuses.
    pub service: Option<SocketAddr>,
}

/// The PostgreSQL tools' lines, printed where SQLite's commands cannot help.
pub const PG_DUMP: &str = "pg_dump --format=custom --file=<file> \"$DATABASE_URL\"";
pub const PG_RESTORE: &str = "pg_restore --clean --if-exists --no-owner --dbname=\"$DATABASE_URL\" <file>";

/// Writes a consistent copy of the SQLite database to `dest` while the service may be serving;
/// returns what to tell the operator.
pub async fn backup(database_url: &str, dest: &Path) -> anyhow::Result<String> {
    if store::Backend::from_url(database_url)? == store::Backend::Postgres {
        bail!("this is a PostgreSQL database: back it up with its own tool, e.g.\n  {PG_DUMP}");
    }
    let source = store::sqlite_path(database_url).context("DATABASE_URL names no SQLite file")?;
    if !source.exists() {
        bail!("no database at {}: check DATABASE_URL", source.display());
    }
    let store = store::Store::connect(database_url).await?;
    let result = store.backup_sqlite(dest).await;
    store.close().await;
    let size = result.map_err(|e| anyhow::anyhow!("backup to {} failed: {}", dest.display(), describe(&e)))?;
    Ok(format!("Backed up {} to {} ({} bytes).", source.display(), dest.display(), size))
}

/// Replaces the SQLite database with a backup after checking it (readable, intact, not from a
/// newer release). A database that holds data is renamed beside it (`<name>.before-restore-<ms>`)
/// rather than deleted.
pub async fn restore(request: &Restore) -> anyhow::Result<String> {
    if store::Backend::from_url(&request.database_url)? == store::Backend::Postgres {
        bail!("this is a PostgreSQL database: restore it with its own tool, e.g.\n  {PG_RESTORE}");
    }
    let target = store::sqlite_path(&request.database_url).context("DATABASE_URL names no SQLite file")?;
    if !request.source.is_file() {
        bail!("no backup file at {}", request.source.display());
    }
    if let Some(addr) = request.service
        && service_answers(addr).await
    {
        bail!(
            "the service is running (it answers at http://{addr}/healthz): stop it first \
             (e.g. `systemctl stop proto-trainer`), then restore, then start it again"
        );
    }
    let holders = processes_holding(&target);
    if !holders.is_empty() {
        bail!(
            "process {} has {} open: stop the service first (e.g. `systemctl stop proto-trainer`)",
            holders.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
            target.display()
        );
    }
    let holds_data = std::fs::metadata(&target).is_ok_and(|m| m.len() > 0);
    if holds_data && !request.force {
        bail!(
            "{} holds a database already; restoring replaces it. Run again with --force to do so \
             (the current file is kept beside it, renamed)",
            target.display()
        );
    }
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    // Check a copy (opening a database may write to it: WAL mode), so the backup file itself is
    // never touched.
    let check = dir.join(format!(".restore-check-{}.db", std::process::id()));
    std::fs::copy(&request.source, &check).with_context(|| format!("reading {}", request.source.display()))?;
    let verdict = verify(&check).await;
    remove_with_sidecars(&check);
    verdict?;

    let incoming = dir.join(format!(".restore-incoming-{}.db", std::process::id()));
    std::fs::copy(&request.source, &incoming).with_context(|| format!("writing {}", incoming.display()))?;
    std::fs::File::open(&incoming).and_then(|f| f.sync_all()).context("flushing the restored file")?;
    let mut kept = None;
    if target.exists() {
        let stamp = store::Timestamp::now().millis();
        let aside = PathBuf::from(format!("{}.before-restore-{stamp}", target.display()));
        std::fs::rename(&target, &aside).with_context(|| format!("moving {} aside", target.display()))?;
        // A leftover write-ahead log belongs to the old file: beside the restored one SQLite
        // would replay it into it.
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", target.display()));
            if side.exists() {
                std::fs::rename(&side, format!("{}{suffix}", aside.display()))
                    .with_context(|| format!("moving {} aside", side.display()))?;
            }
        }
        kept = Some(aside);
    }
    std::fs::rename(&incoming, &target).with_context(|| format!("placing {}", target.display()))?;
    let mut message = format!("Restored {} from {}.", target.display(), request.source.display());
    if let Some(aside) = kept {
        message.push_str(&format!(" The previous database is kept at {}.", aside.display()));
    }
    message.push_str(" Start the service: it applies any newer migrations.");
    Ok(message)
}

/// The backup opens, passes SQLite's integrity check, and carries no migration newer than this
/// binary knows (a newer release's schema could not be served by this one).
async fn verify(copy: &Path) -> anyhow::Result<()> {
    let url = format!("sqlite://{}", copy.display());
    let store = store::Store::connect(&url).await.context("the backup does not open as a SQLite database")?;
    let checks = async {
        store.integrity_check().await.map_err(|e| anyhow::anyhow!("the backup is damaged: {}", describe(&e)))?;
        let state = store
            .migration_state()
            .await
            .map_err(|e| anyhow::anyhow!("the backup is not a Proto Trainer database: {}", describe(&e)))?;
        if state.applied == 0 {
            bail!("the backup holds no Proto Trainer schema (no migrations recorded)");
        }
        if !state.unknown.is_empty() {
            bail!(
                "the backup comes from a newer release (migrations {:?} are unknown to this binary): \
                 restore it with that release",
                state.unknown
            );
        }
        Ok(())
    };
    let result = checks.await;
    store.close().await;
    result
}

fn remove_with_sidecars(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Whether something answers HTTP `/healthz` at `addr` within a second.
async fn service_answers(addr: SocketAddr) -> bool {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build();
    let Ok(client) = client else { return false };
    client.get(format!("http://{addr}/healthz")).send().await.is_ok()
}

/// Other processes with the database (or its write-ahead log) open, from `/proc/*/fd` (Linux;
/// processes of other users are visible to root only, so the `/healthz` probe comes first).
fn processes_holding(db: &Path) -> Vec<u32> {
    let Ok(canonical) = db.canonicalize() else { return Vec::new() };
    let wanted = [canonical.clone(), PathBuf::from(format!("{}-wal", canonical.display()))];
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        if fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| wanted.contains(&link))) {
            out.push(pid);
        }
    }
    out
}

fn describe(err: &store::Error) -> String {
    match err {
        store::Error::Invalid(fields) => {
            fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    }
}
