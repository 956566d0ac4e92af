//! # certkeeper-cli
//!
//! The client side of the `certkeeper` command, apart from the server library (it depends on
//! the library crates only, never on the server):
//! - [`client`]: commands that talk to a running server's REST API over HTTPS with a bearer
//!   token, printing tables for people or JSON for scripts;
//! - [`est`]: an EST (RFC 7030) client and `certkeeper est enroll`;
//! - [`scan`]: `certkeeper scan`, run here or submitted to a server;
//! - [`agent`]: `certkeeper agent`, which keeps a host's certificate files current.
//!
//! The binary (`src/main.rs` of the `certkeeper` package) parses the command line with these
//! types and runs them.

pub mod agent;
pub mod client;
pub mod est;
pub mod scan;
