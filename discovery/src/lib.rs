//! Network discovery of TLS certificates.
//!
//! This crate finds the certificates servers present: it expands targets (addresses, CIDR
//! blocks, ranges, host names, `host:port` items) into endpoints lazily, probes them
//! concurrently (TCP connect, optional STARTTLS for SMTP, IMAP, POP3 and LDAP, then a TLS
//! 1.2/1.3 handshake with a verifier that records instead of rejecting), and analyses each
//! presented chain. It knows nothing about databases or HTTP: the caller stores the results.
//!
//! - [`Target`], [`PortSet`], [`SniMode`] and [`ScanPlan`]: what to scan. A plan resolves
//!   host names once and then yields [`Endpoint`]s one at a time, so a /8 is never held in
//!   memory; [`ScanPlan::check_allowed`] enforces an allowlist.
//! - [`scan`] with [`ScanOptions`] (global and per-host concurrency, a connection-rate
//!   budget, per-step timeouts in [`ProbeConfig`], bounded reads and chain length) sends one
//!   [`ProbeReport`] per endpoint on a channel and exposes [`Progress`] counters;
//!   [`observe`] sends each as an [`Observation`] instead, analysed by the task that probed
//!   it.
//! - [`analyze_chain`] turns a chain into [`CertificateInfo`]s and [`Finding`]s, given the
//!   time, the alert window and the caller's own CA certificates in an [`AnalysisContext`];
//!   [`Observation`] is one endpoint's result in a serialisable form.
//!
//! rustls implements TLS 1.2 and 1.3 only; servers limited to TLS 1.0 or 1.1 show up as
//! handshake failures.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use certkeeper_discovery::{AnalysisContext, PortSet, ScanOptions, ScanPlan, SniMode, Target};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), certkeeper_discovery::Error> {
//! let targets: Vec<Target> = vec!["127.0.0.1".parse()?];
//! let plan = ScanPlan::resolve(&targets, "1,9".parse::<PortSet>()?, SniMode::Auto).await?;
//! plan.check_allowed(&["127.0.0.0/8".parse().unwrap()])?;
//! let (mut results, progress) = certkeeper_discovery::scan(Arc::new(plan), ScanOptions::default())?;
//! let ctx = AnalysisContext { now: 1_800_000_000, alert_window: 30 * 86400, ..Default::default() };
//! while let Some(report) = results.recv().await {
//!     match report.outcome {
//!         Ok(hs) => {
//!             let chain = certkeeper_discovery::analyze_chain(
//!                 &hs.chain, report.endpoint.sni.as_deref(), hs.chain_truncated, &ctx);
//!             println!("{} {:?}", report.endpoint.addr, chain.findings);
//!         }
//!         Err(e) => println!("{}: {e}", report.endpoint.addr),
//!     }
//! }
//! assert_eq!(progress.done(), 2);
//! # Ok(())
//! # }
//! ```

mod analysis;
mod error;
mod observation;
mod probe;
mod scanner;
mod spec;
mod starttls;
mod targets;

pub use analysis::{
    AnalysisContext, CertificateInfo, ChainReport, Finding, analyze_chain, certificate_info,
    name_matches,
};
pub use error::{Error, ProbeError};
pub use observation::Observation;
pub use probe::{Handshake, ProbeConfig, client_config, probe};
pub use scanner::{ProbeReport, Progress, ScanOptions, observe, scan};
pub use spec::ScanSpec;
pub use starttls::StartTls;
pub use targets::{DEFAULT_PORTS, Endpoint, PortSet, ScanPlan, SniMode, Target, parse_target_list};
