//! One endpoint's result in a serialisable form: what callers print, store and return.

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisContext, ChainReport, analyze_chain};
use crate::scanner::ProbeReport;
use crate::starttls::StartTls;

/// The outcome of probing one endpoint, with the chain analysed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    /// Address probed.
    pub address: String,
    /// Port probed.
    pub port: u16,
    /// Server name sent, if any.
    pub sni: Option<String>,
    /// STARTTLS protocol spoken first, if any.
    pub starttls: Option<StartTls>,
    /// `ok`, or why not: `refused`, `timeout`, `starttls`, `tls`, `io`.
    pub status: String,
    /// The error, when the status is not `ok`.
    pub error: Option<String>,
    /// Negotiated TLS version.
    pub tls_version: Option<String>,
    /// Negotiated cipher suite.
    pub cipher_suite: Option<String>,
    /// The analysed chain, when the handshake completed.
    pub chain: Option<ChainReport>,
}

impl Observation {
    /// Analyse a probe report.
    pub fn from_report(report: ProbeReport, ctx: &AnalysisContext) -> Observation {
        let ep = report.endpoint;
        let mut obs = Observation {
            address: ep.addr.ip().to_string(),
            port: ep.addr.port(),
            sni: ep.sni,
            starttls: ep.starttls,
            status: "ok".into(),
            error: None,
            tls_version: None,
            cipher_suite: None,
            chain: None,
        };
        match report.outcome {
            Ok(hs) => {
                obs.chain = Some(analyze_chain(
                    &hs.chain,
                    obs.sni.as_deref(),
                    hs.chain_truncated,
                    ctx,
                ));
                obs.tls_version = Some(hs.tls_version);
                obs.cipher_suite = Some(hs.cipher_suite);
            }
            Err(e) => {
                obs.status = e.kind().into();
                obs.error = Some(e.to_string());
            }
        }
        obs
    }

    /// Whether the handshake completed and a certificate was presented.
    pub fn has_certificate(&self) -> bool {
        self.chain
            .as_ref()
            .is_some_and(|c| !c.certificates.is_empty())
    }
}
