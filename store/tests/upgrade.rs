//! Rolling updates run two releases against one database: migrations are forward-only and the
//! release before a migration must keep working on the schema after it (ARCHITECTURE.md,
//! "Upgrades"). This runs the previous release's own queries (a fixture of its SQL) against the
//! fully migrated schema on each backend, and reads what the new release writes with them.

use store::testing;

/// The release before migration 0034, as SQL (literal values in place of its binds).
const BEFORE_0034: &str = include_str!("fixtures/release_before_0034.sql");

fn statements(sql: &str) -> Vec<&str> {
    sql.split(";\n").map(str::trim).filter(|s| !s.is_empty() && !s.lines().all(|l| l.starts_with("--"))).collect()
}

#[tokio::test]
async fn the_previous_release_runs_against_the_migrated_schema() {
    let statements = statements(BEFORE_0034);
    assert!(statements.len() >= 6, "the fixture holds the old release's statements: {}", statements.len());
    for (backend, db) in testing::all().await {
        let state = db.store.migration_state().await.expect("state");
        assert!(state.current() && state.latest >= 34, "{backend:?}: migrated past 0034: {state:?}");
        for sql in &statements {
            let body: String = sql.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
            db.store
                .raw_execute(&body)
                .await
                .unwrap_or_else(|e| panic!("{backend:?}: the old release's `{body}` fails: {e}"));
        }
        // What the new release writes (an erased user, an account's retention) the old one
        // reads without knowing the new columns or table.
        db.store
            .raw_execute("UPDATE users SET erased_at = 1765000002000 WHERE id = '01900000-0000-7000-8000-00000000b001'")
            .await
            .expect("new release writes erased_at");
        let old_read = statements.iter().find(|s| s.contains("WHERE email =")).expect("an old read");
        db.store.raw_execute(old_read).await.unwrap_or_else(|e| panic!("{backend:?}: old read after new write: {e}"));
    }
}

#[test]
fn the_fixture_splits_into_statements() {
    let parts = statements("-- only a comment;\nSELECT 1;\n\nSELECT 2;\n");
    assert_eq!(parts, ["SELECT 1", "SELECT 2"]);
}
