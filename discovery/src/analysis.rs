//! Certificate analysis: the fields an inventory records, and findings about a presented
//! chain (expiry, self-signed, name mismatch, weak crypto, incomplete or untrusted chains,
//! and whether certkeeper issued it).
//!
//! Pure functions: the caller passes the current time, the alert window, its own CA
//! certificates and any other trust anchors.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// The fields recorded for one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = PresentedCertificate))]
pub struct CertificateInfo {
    /// SHA-256 over the DER encoding, lower-case hex: the inventory key.
    pub fingerprint_sha256: String,
    /// Subject distinguished name (RFC 4514 form).
    pub subject: String,
    /// Subject common name (CN), if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub common_name: Option<String>,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, lower-case hex without leading zero bytes.
    pub serial: String,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// End of validity (Unix seconds).
    pub not_after: i64,
    /// DNS names in subjectAltName.
    pub dns_names: Vec<String>,
    /// IP addresses in subjectAltName.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub ip_addresses: Vec<IpAddr>,
    /// Key type: `RSA`, `EC`, `Ed25519`, `DSA` or the algorithm's name.
    pub key_type: String,
    /// Key size in bits (0 when unknown).
    pub key_bits: u32,
    /// Signature algorithm name (for example `sha256WithRSAEncryption`).
    pub signature_algorithm: String,
    /// Whether basicConstraints says CA.
    pub is_ca: bool,
    /// Subject equals issuer and the signature verifies with the certificate's own key.
    pub self_signed: bool,
    /// The DER encoding.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// Something worth telling an operator about a presented chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// The leaf's notAfter has passed.
    Expired,
    /// The leaf's notBefore is in the future.
    NotYetValid,
    /// The leaf expires within the alert window.
    Expiring,
    /// The leaf is self-signed.
    SelfSigned,
    /// The name sent as SNI is not among the leaf's names.
    HostnameMismatch,
    /// A key in the chain is weak (RSA or DSA under 2048 bits, EC under 224).
    WeakKey,
    /// A signature in the chain uses SHA-1 or MD5 (a trust anchor's self-signature excepted).
    WeakSignature,
    /// The chain stops at a certificate that is not a CA and whose issuer was neither
    /// presented nor known: an intermediate is missing. (A chain that stops at a presented
    /// CA certificate is only missing its root, which servers normally leave out.)
    IncompleteChain,
    /// The chain does not lead to a known trust anchor.
    UntrustedChain,
    /// The server presented more certificates than the scanner keeps.
    ChainTruncated,
}

/// What the caller knows: the time, the alert window, and the anchors.
#[derive(Debug, Clone, Default)]
pub struct AnalysisContext {
    /// Current time, Unix seconds (from the caller's clock).
    pub now: i64,
    /// Seconds before expiry at which [`Finding::Expiring`] is raised.
    pub alert_window: i64,
    /// certkeeper's own CA certificates (DER): roots and intermediates. A chain reaching one
    /// of them is "issued by certkeeper", and trusted.
    pub our_cas: Vec<Vec<u8>>,
    /// Other trust anchors (DER).
    pub trust_anchors: Vec<Vec<u8>>,
}

/// The analysis of one presented chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainReport {
    /// The presented certificates as presented, leaf first (unparseable ones are left
    /// out).
    pub certificates: Vec<CertificateInfo>,
    /// Findings about the chain, sorted.
    pub findings: Vec<Finding>,
    /// Whether the leaf chains (by signature) to one of certkeeper's CAs.
    pub issued_by_certkeeper: bool,
    /// Whether the leaf chains to a known anchor (certkeeper's CAs).
    pub trusted: bool,
}

impl ChainReport {
    /// The leaf certificate, if the chain had a parseable one.
    pub fn leaf(&self) -> Option<&CertificateInfo> {
        self.certificates.first()
    }
}

/// Parse one DER certificate.
pub fn certificate_info(der: &[u8]) -> Option<CertificateInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(info_of(&cert, der))
}

fn info_of(cert: &X509Certificate<'_>, der: &[u8]) -> CertificateInfo {
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for gn in &san.value.general_names {
            match gn {
                GeneralName::DNSName(n) => dns_names.push(n.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(a));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(a));
                    }
                }
                _ => {}
            }
        }
    }
    let (key_type, key_bits) = key_of(cert);
    let sig_oid = &cert.signature_algorithm.algorithm;
    CertificateInfo {
        fingerprint_sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)),
        subject: cert.subject().to_string(),
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        issuer: cert.issuer().to_string(),
        serial: {
            let raw = cert.raw_serial();
            let start = raw
                .iter()
                .position(|&b| b != 0)
                .unwrap_or(raw.len().saturating_sub(1));
            hex::encode(&raw[start..])
        },
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns_names,
        ip_addresses,
        key_type,
        key_bits,
        signature_algorithm: oid2sn(sig_oid, oid_registry())
            .map(str::to_string)
            .unwrap_or_else(|_| sig_oid.to_id_string()),
        is_ca: matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw()
            && cert.verify_signature(None).is_ok(),
        der: der.to_vec(),
    }
}

fn key_of(cert: &X509Certificate<'_>) -> (String, u32) {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match (alg.as_str(), spki.parsed()) {
        ("1.3.101.112", _) => ("Ed25519".into(), 256),
        ("1.3.101.113", _) => ("Ed448".into(), 456),
        (_, Ok(PublicKey::RSA(k))) => ("RSA".into(), k.key_size() as u32),
        (_, Ok(PublicKey::EC(k))) => ("EC".into(), k.key_size() as u32),
        (_, Ok(PublicKey::DSA(y))) => ("DSA".into(), (y.len() * 8) as u32),
        _ => (
            oid2sn(&spki.algorithm.algorithm, oid_registry())
                .map(str::to_string)
                .unwrap_or(alg),
            0,
        ),
    }
}

fn weak_key(c: &CertificateInfo) -> bool {
    match c.key_type.as_str() {
        "RSA" | "DSA" => c.key_bits < 2048,
        "EC" => c.key_bits < 224,
        _ => false,
    }
}

fn weak_signature(c: &CertificateInfo) -> bool {
    let s = c.signature_algorithm.to_ascii_lowercase();
    s.contains("sha1") || s.contains("md5") || s.contains("md2") || s.contains("sha-1")
}

/// Whether `name` matches a certificate name pattern (`*.example.com` covers one label).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == name,
    }
}

fn matches_name(leaf: &CertificateInfo, name: &str) -> bool {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return leaf.ip_addresses.contains(&ip);
    }
    if leaf.dns_names.is_empty() && leaf.ip_addresses.is_empty() {
        return leaf
            .common_name
            .as_deref()
            .is_some_and(|cn| name_matches(cn, name));
    }
    leaf.dns_names.iter().any(|p| name_matches(p, name))
}

/// Whether `issuer` signed `subject` (names chain and the signature verifies).
fn signed_by(subject: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    subject.issuer().as_raw() == issuer.subject().as_raw()
        && subject.verify_signature(Some(issuer.public_key())).is_ok()
}

/// How many certificates the chain walk follows at most.
const MAX_DEPTH: usize = 16;

/// Analyse a presented chain (leaf first). `server_name` is the name sent as SNI, checked
/// against the leaf; without one there is no name check (a scan by address alone cannot
/// know which name the server should carry).
pub fn analyze_chain(
    chain: &[Vec<u8>],
    server_name: Option<&str>,
    truncated: bool,
    ctx: &AnalysisContext,
) -> ChainReport {
    let parsed: Vec<(X509Certificate<'_>, &Vec<u8>)> = chain
        .iter()
        .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| (c, der)))
        .collect();
    let certificates: Vec<CertificateInfo> =
        parsed.iter().map(|(c, der)| info_of(c, der)).collect();
    let ours: Vec<X509Certificate<'_>> = ctx
        .our_cas
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .collect();
    let anchors: Vec<X509Certificate<'_>> = ctx
        .trust_anchors
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .collect();
    let mut findings = Vec::new();
    if truncated {
        findings.push(Finding::ChainTruncated);
    }
    let Some((leaf, _)) = parsed.first() else {
        return ChainReport {
            certificates,
            findings,
            issued_by_certkeeper: false,
            trusted: false,
        };
    };
    let leaf_info = &certificates[0];
    if leaf_info.not_after < ctx.now {
        findings.push(Finding::Expired);
    } else if leaf_info.not_after < ctx.now.saturating_add(ctx.alert_window) {
        findings.push(Finding::Expiring);
    }
    if leaf_info.not_before > ctx.now {
        findings.push(Finding::NotYetValid);
    }
    if leaf_info.self_signed {
        findings.push(Finding::SelfSigned);
    }
    if let Some(name) = server_name
        && !matches_name(leaf_info, name)
    {
        findings.push(Finding::HostnameMismatch);
    }
    if certificates.iter().any(weak_key) {
        findings.push(Finding::WeakKey);
    }

    // Walk up from the leaf: presented certificates first, then the known anchors.
    let is_anchor = |c: &X509Certificate<'_>| {
        ours.iter()
            .chain(anchors.iter())
            .any(|a| a.as_ref() == c.as_ref())
    };
    let mut issued_by_certkeeper = ours.iter().any(|a| a.as_ref() == leaf.as_ref());
    let mut trusted = issued_by_certkeeper || is_anchor(leaf);
    let mut weak_sig = false;
    // The walk stays on presented certificates (their details are already in
    // `certificates`, so no signature is checked twice): a step to one of our CAs or an
    // anchor makes the chain trusted, which ends it.
    let mut current = 0;
    let mut incomplete = false;
    for _ in 0..MAX_DEPTH {
        if trusted {
            break;
        }
        let (cert, _) = &parsed[current];
        let info = &certificates[current];
        if info.self_signed {
            break;
        }
        if weak_signature(info) {
            weak_sig = true;
        }
        if ours.iter().any(|a| signed_by(cert, a)) {
            issued_by_certkeeper = true;
            trusted = true;
        } else if anchors.iter().any(|a| signed_by(cert, a)) {
            trusted = true;
        } else if let Some(next) = (1..parsed.len())
            .find(|&i| parsed[i].0.as_ref() != cert.as_ref() && signed_by(cert, &parsed[i].0))
        {
            current = next;
            let next = &parsed[next].0;
            if is_anchor(next) {
                trusted = true;
                issued_by_certkeeper |= ours.iter().any(|a| a.as_ref() == next.as_ref());
            }
        } else {
            incomplete = !matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
            break;
        }
    }
    if weak_sig {
        findings.push(Finding::WeakSignature);
    }
    if incomplete && !leaf_info.self_signed {
        findings.push(Finding::IncompleteChain);
    }
    if !trusted {
        findings.push(Finding::UntrustedChain);
    }
    findings.sort();
    findings.dedup();
    ChainReport {
        certificates,
        findings,
        issued_by_certkeeper,
        trusted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("*.example.com", "a.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(name_matches("Example.com.", "example.COM"));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(certificate_info(b"\x30\x03\x02\x01\x01").is_none());
        let r = analyze_chain(
            &[b"junk".to_vec()],
            None,
            false,
            &AnalysisContext::default(),
        );
        assert!(r.certificates.is_empty());
        assert!(!r.trusted);
    }
}
