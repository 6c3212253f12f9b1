//! `cargo xtask bench api`: the API benchmark (`admin/benches/api.rs`, a release build) on SQLite
//! and PostgreSQL in one run. PostgreSQL is `TEST_POSTGRES_URL` when set, otherwise a throwaway
//! server started here the way `cargo xtask pg` starts one (and removed afterwards), so the two
//! databases are always printed side by side.

use anyhow::Result;

use crate::{postgres, run};

pub fn main() -> Result<()> {
    let mut cmd = crate::cargo();
    cmd.args(["bench", "-p", "proto-trainer-admin", "--bench", "api"]);
    // `cargo run` gave this process the xtask package's own variables. Build scripts (ring's)
    // rerun when those change, so passed on they would rebuild the release tree's dependencies
    // on every alternation with a plain `cargo bench`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(&*name, "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR")
        {
            cmd.env_remove(&*name);
        }
    }
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(_) => run(&mut cmd),
        Err(_) => {
            let server = postgres::TestServer::start()?;
            let result = run(cmd.env("TEST_POSTGRES_URL", server.url()));
            drop(server);
            result
        }
    }
}
