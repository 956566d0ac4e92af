//! Challenge validation: the only code in this crate that dials out. Each attempt has a
//! timeout; failures become the problem stored in the challenge's `error`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::{
    CaaDecision, CaaRecord, ChallengeType, Identifier, IdentifierKind, Problem, ProblemType, b64,
    caa_decision,
};

/// Where and how validation connects.
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// Port for http-01 (80 in production).
    pub http01_port: u16,
    /// Port for tls-alpn-01 (443 in production).
    pub tls_alpn01_port: u16,
    /// DNS servers for lookups; empty means the system's.
    pub dns_resolvers: Vec<SocketAddr>,
    /// Limit for one validation attempt, and separately for the CAA check that follows it.
    pub timeout: Duration,
    /// This CA's issuer domain names for CAA (RFC 8659); empty turns CAA checking off.
    pub caa_identities: Vec<String>,
}

impl ValidationConfig {
    /// The challenge types this validator can check.
    pub fn supported(&self) -> &'static [ChallengeType] {
        &[
            ChallengeType::Http01,
            ChallengeType::Dns01,
            ChallengeType::TlsAlpn01,
        ]
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
            ChallengeType::TlsAlpn01 => tls_alpn01(cfg, identifier, key_authorization).await,
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

/// The most of an http-01 response body that is read: a key authorization is under 100
/// bytes, so anything longer is wrong and the rest is never read.
pub const HTTP01_MAX_BODY: usize = 4096;

/// The most redirects an http-01 validation follows.
pub const HTTP01_MAX_REDIRECTS: usize = 10;

/// The fixed detail of each class of http-01 failure. The transport's own error text is
/// never shown: it would tell a client probing through redirects or DNS a closed port, a
/// non-HTTP service and an HTTP service apart.
mod http01_detail {
    pub(super) const DNS: &str = "the identifier could not be resolved";
    pub(super) const CONNECTION: &str = "the challenge response could not be fetched";
    pub(super) const TLS: &str = "TLS handshake on a redirect failed";
    pub(super) const REDIRECT: &str = "a redirect went elsewhere than http on the http-01 port or https on the tls-alpn-01 port, or there were too many";
    pub(super) const TOO_LONG: &str = "the response body is longer than a key authorization can be";
}

/// Which redirects http-01 follows: at most [`HTTP01_MAX_REDIRECTS`], only to `http` on
/// the http-01 port or `https` on the tls-alpn-01 port (as Let's Encrypt does, with this
/// server's ports), so a challenge cannot be pointed at other services.
fn redirect_policy(cfg: &ValidationConfig) -> reqwest::redirect::Policy {
    let (http_port, https_port) = (cfg.http01_port, cfg.tls_alpn01_port);
    reqwest::redirect::Policy::custom(move |attempt| {
        let url = attempt.url();
        let allowed = match (url.scheme(), url.port_or_known_default()) {
            ("http", Some(p)) => p == http_port,
            ("https", Some(p)) => p == https_port,
            _ => false,
        };
        if allowed && attempt.previous().len() <= HTTP01_MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.error(RedirectRefused)
        }
    })
}

/// A redirect [`redirect_policy`] did not follow.
#[derive(Debug)]
struct RedirectRefused;

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(http01_detail::REDIRECT)
    }
}

impl std::error::Error for RedirectRefused {}

/// Whether `e` is a TLS failure: a rustls error, also inside (nested) I/O errors, whose
/// `source` skips the error they wrap.
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => is_tls_error(inner),
        None => false,
    }
}

/// The class of an http-01 transport failure, as a problem with a fixed detail.
fn http01_failure(url: &str, e: &reqwest::Error) -> Problem {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<RedirectRefused>() {
            return Problem::new(
                ProblemType::Connection,
                format!("fetching {url}: {}", http01_detail::REDIRECT),
            );
        }
        if is_tls_error(s) {
            return Problem::new(
                ProblemType::Tls,
                format!("fetching {url}: {}", http01_detail::TLS),
            );
        }
        src = s.source();
    }
    Problem::new(
        ProblemType::Connection,
        format!("fetching {url}: {}", http01_detail::CONNECTION),
    )
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
    // Redirects to https are followed without checking the certificate, as Let's Encrypt
    // does: http-01 exists to bootstrap certificates, so a self-signed or expired one on
    // the way is normal. (It also spares loading the system's trust store per validation.)
    let mut builder = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .redirect(redirect_policy(cfg))
        .danger_accept_invalid_certs(true);
    if identifier.kind == IdentifierKind::Dns {
        // The name is resolved here (with the configured DNS servers, or the system's), so
        // that a failed lookup is told apart as a `dns` problem.
        let name = identifier.value.as_str();
        let addrs: Vec<SocketAddr> = if cfg.dns_resolvers.is_empty() {
            tokio::net::lookup_host((name, cfg.http01_port))
                .await
                .map(|a| a.collect())
                .unwrap_or_default()
        } else {
            lookup_ip(cfg, name)
                .await
                .map(|ip| vec![SocketAddr::new(ip, cfg.http01_port)])
                .unwrap_or_default()
        };
        if addrs.is_empty() {
            return Err(Problem::new(
                ProblemType::Dns,
                format!("{name}: {}", http01_detail::DNS),
            ));
        }
        builder = builder.resolve_to_addrs(name, &addrs);
    }
    let client = builder.build().map_err(|_| Problem::internal())?;
    let mut resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| http01_failure(&url, &e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!("fetching {url}: HTTP status {}", status.as_u16()),
        ));
    }
    // Read with a running cap: a host streaming an endless body costs one small buffer.
    let mut body: Vec<u8> = Vec::with_capacity(256);
    while let Some(chunk) = resp.chunk().await.map_err(|e| http01_failure(&url, &e))? {
        if body.len() + chunk.len() > HTTP01_MAX_BODY {
            return Err(Problem::new(
                ProblemType::IncorrectResponse,
                format!("fetching {url}: {}", http01_detail::TOO_LONG),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    if text.trim_end() != key_authorization {
        return Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!("the key authorization at {url} does not match"),
        ));
    }
    Ok(())
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

/// Check CAA (RFC 8659) for an identifier, as a CA must before an authorization becomes
/// valid. The Relevant RRset is looked up through the configured resolvers: CAA at the name
/// (a wildcard's base name), then at each parent up to but excluding the root, the first
/// non-empty answer winning (CNAMEs followed by the resolver); [`caa_decision`] decides.
///
/// `Ok` when checking is off (`caa_identities` empty), for IP addresses (CAA covers DNS names
/// only), with no CAA at all (NXDOMAIN or empty answers all the way up), or when the records
/// authorize this CA. A refusal is a `caa` problem naming the record set; a lookup that fails
/// (SERVFAIL, timeout) is a `dns` problem, since without an answer the CA must not issue
/// (RFC 8659 §4).
pub async fn check_caa(cfg: &ValidationConfig, identifier: &Identifier) -> Result<(), Problem> {
    if cfg.caa_identities.is_empty() || identifier.kind != IdentifierKind::Dns {
        return Ok(());
    }
    let name = identifier.base();
    let found = tokio::time::timeout(cfg.timeout, relevant_caa(cfg, name))
        .await
        .map_err(|_| {
            Problem::new(
                ProblemType::Dns,
                format!(
                    "looking up CAA for {name} timed out after {} s",
                    cfg.timeout.as_secs()
                ),
            )
        })??;
    let Some((owner, records)) = found else {
        return Ok(());
    };
    match caa_decision(&records, identifier.is_wildcard(), &cfg.caa_identities) {
        CaaDecision::Allowed => Ok(()),
        CaaDecision::Forbidden(why) => Err(Problem::new(
            ProblemType::Caa,
            format!(
                "CAA record for {owner} prevents issuance for {}: {why}",
                identifier.value
            ),
        )),
    }
}

/// The Relevant CAA RRset of `name` and where it was found: the first non-empty CAA answer
/// climbing from `name` towards the root (the root itself is not asked). `None` when there is
/// no CAA anywhere.
async fn relevant_caa(
    cfg: &ValidationConfig,
    name: &str,
) -> Result<Option<(String, Vec<CaaRecord>)>, Problem> {
    let r = resolver(cfg)?;
    let mut current = name.trim_end_matches('.');
    while !current.is_empty() {
        let fqdn = format!("{current}.");
        match r.lookup(fqdn.as_str(), RecordType::CAA).await {
            Ok(lookup) => {
                let records: Vec<CaaRecord> = lookup
                    .answers()
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        RData::CAA(caa) => Some(CaaRecord::new(
                            caa.flags(),
                            caa.tag.clone(),
                            String::from_utf8_lossy(&caa.value).into_owned(),
                        )),
                        _ => None,
                    })
                    .collect();
                if !records.is_empty() {
                    return Ok(Some((current.to_string(), records)));
                }
            }
            // NXDOMAIN or NOERROR without CAA: nothing at this level, ask the parent.
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {}
            Err(e) => {
                return Err(Problem::new(
                    ProblemType::Dns,
                    format!("looking up CAA for {current}: {e}"),
                ));
            }
        }
        current = current.split_once('.').map_or("", |(_, parent)| parent);
    }
    Ok(None)
}

/// The acmeIdentifier extension (RFC 8737 §6.1).
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

/// Accepts any certificate (tls-alpn-01 certificates are self-signed by design) but still
/// checks the handshake signatures, so the peer holds the certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate;

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ED25519,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PSS_SHA384,
            SignatureScheme::RSA_PSS_SHA512,
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PKCS1_SHA512,
        ]
    }
}

/// Check a handshake signature against the certificate's key. webpki cannot be used: it
/// refuses the (critical, by design) acmeIdentifier extension.
fn verify_handshake_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use aws_lc_rs::signature as sig;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|_| rustls::Error::General("unparsable certificate".into()))?;
    let key = parsed.public_key().subject_public_key.data.as_ref();
    let alg: &dyn sig::VerificationAlgorithm = match dss.scheme {
        SignatureScheme::ECDSA_NISTP256_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
        SignatureScheme::ECDSA_NISTP384_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
        SignatureScheme::ED25519 => &sig::ED25519,
        SignatureScheme::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
        SignatureScheme::RSA_PSS_SHA384 => &sig::RSA_PSS_2048_8192_SHA384,
        SignatureScheme::RSA_PSS_SHA512 => &sig::RSA_PSS_2048_8192_SHA512,
        SignatureScheme::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        SignatureScheme::RSA_PKCS1_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        SignatureScheme::RSA_PKCS1_SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        _ => {
            return Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoSignatureSchemesInCommon,
            ));
        }
    };
    sig::UnparsedPublicKey::new(alg, key)
        .verify(message, dss.signature())
        .map(|_| HandshakeSignatureValid::assertion())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))
}

/// The address validation connects to for an identifier.
async fn target_ip(cfg: &ValidationConfig, identifier: &Identifier) -> Result<IpAddr, Problem> {
    match identifier.kind {
        IdentifierKind::Ip => identifier
            .value
            .parse()
            .map_err(|_| Problem::malformed("bad IP identifier")),
        IdentifierKind::Dns if !cfg.dns_resolvers.is_empty() => {
            lookup_ip(cfg, &identifier.value).await
        }
        IdentifierKind::Dns => tokio::net::lookup_host((identifier.value.as_str(), 0))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
            .ok_or_else(|| {
                Problem::new(
                    ProblemType::Dns,
                    format!("{} does not resolve", identifier.value),
                )
            }),
    }
}

/// The SNI of a tls-alpn-01 handshake: the name, or for an IP address its reverse-DNS name
/// (RFC 8738 §6).
fn sni(identifier: &Identifier) -> Result<ServerName<'static>, Problem> {
    let name = match identifier.kind {
        IdentifierKind::Dns => identifier.value.clone(),
        IdentifierKind::Ip => match identifier.value.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => {
                let o = v4.octets();
                format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
            }
            Ok(IpAddr::V6(v6)) => {
                let mut labels: Vec<String> = Vec::new();
                for b in v6.octets().iter().rev() {
                    labels.push(format!("{:x}", b & 0xf));
                    labels.push(format!("{:x}", b >> 4));
                }
                format!("{}.ip6.arpa", labels.join("."))
            }
            Err(_) => return Err(Problem::malformed("bad IP identifier")),
        },
    };
    ServerName::try_from(name).map_err(|_| Problem::malformed("identifier is not a valid SNI name"))
}

/// tls-alpn-01 (RFC 8737): a TLS handshake with ALPN `acme-tls/1` must present a certificate
/// for exactly this identifier with a critical acmeIdentifier extension holding the digest
/// of the key authorization.
async fn tls_alpn01(
    cfg: &ValidationConfig,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), Problem> {
    let ip = target_ip(cfg, identifier).await?;
    let addr = SocketAddr::new(ip, cfg.tls_alpn01_port);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Problem::internal())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    // Fixed details, never the transport's text (see `http01_detail`).
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|_| {
        Problem::new(
            ProblemType::Connection,
            format!("connecting to {addr} failed"),
        )
    })?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(sni(identifier)?, tcp)
        .await
        .map_err(|_| {
            Problem::new(
                ProblemType::Tls,
                format!("TLS handshake with {addr} failed"),
            )
        })?;
    let (_, conn) = tls.get_ref();
    if conn.alpn_protocol() != Some(b"acme-tls/1".as_slice()) {
        return Err(Problem::new(
            ProblemType::Tls,
            format!("{addr} did not negotiate the acme-tls/1 protocol"),
        ));
    }
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| Problem::new(ProblemType::Tls, "no certificate presented"))?;
    check_alpn_certificate(cert.as_ref(), identifier, key_authorization)
}

fn check_alpn_certificate(
    der: &[u8],
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), Problem> {
    use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
    let wrong = |d: String| Problem::unauthorized(format!("tls-alpn-01 certificate: {d}"));
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| wrong(format!("unparsable: {e}")))?;
    let mut names = Vec::new();
    let mut digest = None;
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == ACME_IDENTIFIER_OID {
            if !ext.critical {
                return Err(wrong("the acmeIdentifier extension is not critical".into()));
            }
            digest = Some(ext.value.to_vec());
        }
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for n in &san.general_names {
                match n {
                    GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => names.push(
                            IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()).to_string(),
                        ),
                        16 => names.push(
                            IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()).to_string(),
                        ),
                        _ => names.push(String::new()),
                    },
                    _ => names.push(String::new()),
                }
            }
        }
    }
    if names != [identifier.value.clone()] {
        return Err(wrong(format!(
            "its subjectAltName must be exactly {}, not {names:?}",
            identifier.value
        )));
    }
    let expected =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    let mut want = vec![0x04, 0x20];
    want.extend_from_slice(expected.as_ref());
    match digest {
        None => Err(wrong("no acmeIdentifier extension".into())),
        Some(d) if d == want => Ok(()),
        Some(_) => Err(Problem::new(
            ProblemType::IncorrectResponse,
            "the acmeIdentifier extension does not hold the key authorization's digest",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS server that never answers: a bound UDP socket nobody reads.
    fn silent_resolver() -> (std::net::UdpSocket, SocketAddr) {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        (sock, addr)
    }

    fn config(resolver: SocketAddr, identities: &[&str]) -> ValidationConfig {
        ValidationConfig {
            http01_port: 80,
            tls_alpn01_port: 443,
            dns_resolvers: vec![resolver],
            timeout: Duration::from_secs(1),
            caa_identities: identities.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn caa_checking_is_off_without_identities_and_for_ip_addresses() {
        let (_sock, addr) = silent_resolver();
        let name = Identifier::dns("www.example.com").unwrap();
        // No identities: no lookup at all (the resolver would never answer).
        check_caa(&config(addr, &[]), &name).await.unwrap();
        let ip = Identifier {
            kind: IdentifierKind::Ip,
            value: "192.0.2.1".into(),
        };
        check_caa(&config(addr, &["ca.example"]), &ip)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_caa_lookup_without_an_answer_forbids_issuance() {
        let (_sock, addr) = silent_resolver();
        let name = Identifier::dns("www.example.com").unwrap();
        let p = check_caa(&config(addr, &["ca.example"]), &name)
            .await
            .unwrap_err();
        assert_eq!(p.kind, ProblemType::Dns, "{p}");
        assert!(p.detail.contains("CAA"), "{p}");
    }
}
