//! Challenge validation: the only code in this crate that dials out. Each attempt has a
//! timeout; failures become the problem stored in the challenge's `error`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::{ChallengeType, Identifier, IdentifierKind, Problem, ProblemType, b64};

/// Where and how validation connects.
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// Port for http-01 (80 in production).
    pub http01_port: u16,
    /// Port for tls-alpn-01 (443 in production).
    pub tls_alpn01_port: u16,
    /// DNS servers for lookups; empty means the system's.
    pub dns_resolvers: Vec<SocketAddr>,
    /// Limit for one validation attempt.
    pub timeout: Duration,
}

impl ValidationConfig {
    /// The challenge types this validator can check.
    pub fn supported(&self) -> &'static [ChallengeType] {
        &[ChallengeType::Http01, ChallengeType::Dns01]
    }
}

/// The key authorization of a challenge token for an account key thumbprint (§8.1).
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The TXT record value dns-01 expects (§8.4).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    b64(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes())
            .as_ref(),
    )
}

/// Validate one challenge for an identifier. `Ok` means the client proved control.
pub async fn validate(
    cfg: &ValidationConfig,
    kind: ChallengeType,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
) -> Result<(), Problem> {
    let attempt = async {
        match kind {
            ChallengeType::Http01 => http01(cfg, identifier, token, key_authorization).await,
            ChallengeType::Dns01 => dns01(cfg, identifier, key_authorization).await,
            other => Err(Problem::malformed(format!(
                "challenge type {} is not supported by this server",
                other.as_str()
            ))),
        }
    };
    match tokio::time::timeout(cfg.timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(Problem::new(
            ProblemType::Connection,
            format!("validation timed out after {} s", cfg.timeout.as_secs()),
        )),
    }
}

async fn http01(
    cfg: &ValidationConfig,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
) -> Result<(), Problem> {
    let host = match identifier.kind {
        IdentifierKind::Dns => identifier.value.clone(),
        IdentifierKind::Ip => match identifier.value.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => identifier.value.clone(),
        },
    };
    let url = format!(
        "http://{host}:{}/.well-known/acme-challenge/{token}",
        cfg.http01_port
    );
    let mut builder = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .redirect(reqwest::redirect::Policy::limited(10));
    if identifier.kind == IdentifierKind::Dns && !cfg.dns_resolvers.is_empty() {
        // Resolve with the configured DNS servers, not the system's.
        let ip = lookup_ip(cfg, &identifier.value).await?;
        builder = builder.resolve(&identifier.value, SocketAddr::new(ip, cfg.http01_port));
    }
    let client = builder.build().map_err(|_| Problem::internal())?;
    let resp = client.get(&url).send().await.map_err(|e| {
        Problem::new(
            ProblemType::Connection,
            format!("fetching {url}: {}", describe(&e)),
        )
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Problem::unauthorized(format!(
            "fetching {url}: HTTP status {}",
            status.as_u16()
        )));
    }
    let body = resp.bytes().await.map_err(|e| {
        Problem::new(
            ProblemType::Connection,
            format!("reading {url}: {}", describe(&e)),
        )
    })?;
    let body = body.get(..4096).unwrap_or(&body);
    let text = String::from_utf8_lossy(body);
    if text.trim_end() != key_authorization {
        return Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!("the key authorization at {url} does not match"),
        ));
    }
    Ok(())
}

fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

fn resolver(cfg: &ValidationConfig) -> Result<TokioResolver, Problem> {
    let mut builder = if cfg.dns_resolvers.is_empty() {
        Resolver::builder_tokio().map_err(|e| {
            Problem::new(
                ProblemType::Dns,
                format!("no system DNS configuration: {e}"),
            )
        })?
    } else {
        let mut conf = ResolverConfig::from_parts(None, Vec::new(), Vec::new());
        for addr in &cfg.dns_resolvers {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            conf.add_name_server(ns);
        }
        Resolver::builder_with_config(conf, TokioRuntimeProvider::default())
    };
    let opts = builder.options_mut();
    opts.timeout = cfg.timeout;
    opts.attempts = 2;
    // Each validation gets a fresh resolver: no answer cached from before the client set
    // its records.
    opts.cache_size = 0;
    builder
        .build()
        .map_err(|e| Problem::new(ProblemType::Dns, format!("DNS resolver: {e}")))
}

async fn lookup_ip(cfg: &ValidationConfig, name: &str) -> Result<IpAddr, Problem> {
    let r = resolver(cfg)?;
    let fqdn = format!("{name}.");
    let ips = r
        .lookup_ip(fqdn.as_str())
        .await
        .map_err(|e| Problem::new(ProblemType::Dns, format!("looking up {name}: {e}")))?;
    ips.iter()
        .next()
        .ok_or_else(|| Problem::new(ProblemType::Dns, format!("{name} has no A or AAAA record")))
}

/// dns-01: a TXT record at `_acme-challenge.<name>` (CNAMEs followed by the resolver) must
/// hold the digest of the key authorization.
async fn dns01(
    cfg: &ValidationConfig,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), Problem> {
    if identifier.kind != IdentifierKind::Dns {
        return Err(Problem::malformed("dns-01 validates DNS names only"));
    }
    let name = format!("_acme-challenge.{}.", identifier.base());
    let r = resolver(cfg)?;
    let lookup = r.txt_lookup(name.as_str()).await.map_err(|e| {
        if e.is_no_records_found() || e.is_nx_domain() {
            Problem::unauthorized(format!("no TXT record at {name}"))
        } else {
            Problem::new(ProblemType::Dns, format!("looking up TXT {name}: {e}"))
        }
    })?;
    let expected = dns01_txt_value(key_authorization);
    let mut seen = 0;
    for record in lookup.answers() {
        if let RData::TXT(txt) = &record.data {
            seen += 1;
            let value: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            if value == expected.as_bytes() {
                return Ok(());
            }
        }
    }
    Err(Problem::unauthorized(format!(
        "none of the {seen} TXT records at {name} holds the expected value"
    )))
}
