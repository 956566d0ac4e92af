//! One endpoint's result in a serialisable form: what callers print, store and return.

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisContext, ChainReport, analyze_chain};
use crate::scanner::ProbeReport;
use crate::starttls::StartTls;

/// The outcome of probing one endpoint, with the chain analysed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Observation {
    /// Address probed.
    pub address: String,
    /// Port probed.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 65535))]
    pub port: u16,
    /// Server name sent, if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub sni: Option<String>,
    /// STARTTLS protocol spoken first, if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub starttls: Option<StartTls>,
    /// `ok`, or why no certificate was obtained (`refused`, `timeout`, `starttls`, `tls`,
    /// `io`). TLS 1.2 and 1.3 only: a server that speaks nothing newer than TLS 1.1 shows
    /// as `tls`.
    #[cfg_attr(feature = "openapi", schema(schema_with = status_schema))]
    pub status: String,
    /// The error, when the status is not `ok`.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub error: Option<String>,
    /// Negotiated TLS version (`TLSv1_3`, `TLSv1_2`).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub tls_version: Option<String>,
    /// Negotiated cipher suite.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cipher_suite: Option<String>,
    /// The analysed chain, when the handshake completed.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub chain: Option<ChainReport>,
}

/// [`Observation::status`] as a scan's results have it: they keep only endpoints that
/// answered (no `refused` or `timeout`).
#[cfg(feature = "openapi")]
fn status_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some(
            "`ok`, or why no certificate was obtained. TLS 1.2 and 1.3 only: a server that \
             speaks nothing newer than TLS 1.1 shows as `tls`.",
        ))
        .enum_values(Some(["ok", "starttls", "tls", "io"]))
        .build()
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

    /// Whether something answered at the endpoint: anything but a refused connection or a
    /// timeout (a server that spoke something other than TLS answered).
    pub fn answered(&self) -> bool {
        !matches!(self.status.as_str(), "refused" | "timeout")
    }

    /// Whether the handshake completed and a certificate was presented.
    pub fn has_certificate(&self) -> bool {
        self.chain
            .as_ref()
            .is_some_and(|c| !c.certificates.is_empty())
    }
}
