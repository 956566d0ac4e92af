//! # certkeeper
//!
//! An X.509 certificate lifecycle manager: a private CA with a REST API, a CLI, CRLs and
//! OCSP, on SQLite (embedded default) or PostgreSQL (several replicas).
//!
//! The binary is thin (`main.rs`); this library wires the pieces:
//! [`config`] (layered settings), [`store`] (sqlx persistence), [`pki`] (the one issuance
//! path over [`certkeeper_ca`]), the front ends [`api`] (REST under `/api/v1`), [`acme`]
//! (RFC 8555 under `/acme/`) and [`est`] (RFC 7030 under `/.well-known/est/`), [`public`]
//! (AIA, CRL, OCSP, health), [`managed`] (renewal and cloud sync), [`alerts`] (rules,
//! events and delivery), [`discovery`] (server-side scans and schedules), [`server`]
//! (listeners and jobs), [`bootstrap`] (first start), and the CLI's [`client`] commands and
//! [`scan_cli`] (`certkeeper scan`).

pub mod acme;
pub mod alerts;
pub mod api;
pub mod bootstrap;
pub mod cache;
pub mod client;
pub mod config;
pub mod discovery;
pub mod error;
pub mod est;
pub mod managed;
pub mod metrics;
pub mod pki;
pub mod public;
pub mod scan_cli;
pub mod server;
pub mod store;
