//! # certkeeper
//!
//! An X.509 certificate lifecycle manager: a private CA with a REST API, a CLI, CRLs and
//! OCSP, on SQLite (embedded default) or PostgreSQL (several replicas).
//!
//! The binary is thin (`main.rs`); this library is layered (see `ARCHITECTURE.md`):
//! - front ends parse, authenticate, call one service method and render: [`api`] (REST
//!   under `/api/v1`), [`acme`] (the HTTP adapter of the RFC 8555 engine in
//!   [`certkeeper_acme`]), [`est`] (RFC 7030 under `/.well-known/est/`), [`public`] (AIA,
//!   CRL, OCSP, health); [`problem`] maps the services' [`error::Error`] to RFC 7807;
//! - [`services`] own every change: rules, audit events, cache invalidation;
//! - [`store`] is the only code that speaks SQL; [`jobs`] runs every background task;
//! - [`config`] (layered settings), [`bootstrap`] (first start), [`server`] (listeners).
//!
//! The CLI's client commands are outside the server library, in the `certkeeper-cli` crate.

pub mod acme;
pub mod api;
pub mod backup;
pub mod bootstrap;
pub mod cache;
pub mod config;
pub mod error;
pub mod est;
pub mod hsm;
pub mod jobs;
pub mod master_key;
pub mod metrics;
pub mod problem;
pub mod public;
pub mod sched;
pub mod server;
pub mod services;
pub mod store;
pub mod upstream;
pub mod web;
