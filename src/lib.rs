//! # certkeeper
//!
//! An X.509 certificate lifecycle manager: a private CA with a REST API, a CLI, CRLs and
//! OCSP, on SQLite (embedded default) or PostgreSQL (several replicas).
//!
//! The binary is thin (`main.rs`); this library wires the pieces:
//! [`config`] (layered settings), [`store`] (sqlx persistence), [`pki`] (the one issuance
//! path over [`certkeeper_ca`]), [`api`] (REST under `/api/v1`), [`est`] (RFC 7030
//! enrollment under `/.well-known/est/`), [`public`] (AIA, CRL, OCSP, health), [`server`]
//! (listeners and jobs), [`bootstrap`] (first start), and [`client`] (the CLI's client
//! commands).
//! path over [`certkeeper_ca`]), [`api`] (REST under `/api/v1`), [`public`] (AIA, CRL,
//! OCSP, health), [`server`] (listeners and jobs), [`bootstrap`] (first start), and
//! [`client`] (the CLI's client commands), [`scan_cli`] (`certkeeper scan`), [`discovery`] (server-side scans and schedules).

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
