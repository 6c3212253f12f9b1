//! The admin service's integration tests, one binary so the crate links once: the real app on
//! 127.0.0.1:0, real HTTP, a fresh database per test on every available backend (SQLite always,
//! PostgreSQL when `TEST_POSTGRES_URL` is set). `logs.rs` stays apart: it installs the
//! process-wide log subscriber.

mod common;

mod adversarial;
mod ai;
mod api;
mod audit_log;
mod auth;
mod authz;
mod calibration;
mod contract;
mod documents;
mod external;
mod gates;
mod hardening;
mod hostile_auth;
mod hostile_categories;
mod hostile_documents;
mod hostile_risk_levels;
mod list_cache;
mod load_and_spend;
mod notify;
mod operations;
mod privacy;
mod profile;
mod progress;
mod recordings;
mod test_runs;
mod truth;
mod uploads;
mod voice;
mod worklists;
