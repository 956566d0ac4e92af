//! Which TLS client certificates EST trusts, and the checks RFC 7030 asks of a request:
//! channel binding (§3.5) and unchanged names on renewal (§4.2.2).

use base64::Engine;
use certkeeper_ca::ParsedCsr;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::Error;

/// Why a client certificate chain is not trusted.
fn untrusted(why: impl std::fmt::Display) -> Error {
    Error::Forbidden(format!("the TLS client certificate is not trusted: {why}"))
}

/// The signature algorithms a client chain may use: webpki's aws-lc-rs set, which has no
/// SHA-1 and no RSA key under 2048 bits.
static ALGORITHMS: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm] =
    webpki::ALL_VERIFICATION_ALGS;

/// Check that `chain` (leaf first, as the client sent it) leads to one of `anchors` by
/// RFC 5280 path validation (rustls-webpki): signatures with SHA-2 and RSA of 2048 bits or
/// more, validity at `now`, basicConstraints and path length, name constraints, and
/// extendedKeyUsage `clientAuth` where the certificate names extended usages. webpki
/// leaves keyUsage alone, so it is checked here: a leaf that lists key usages must allow
/// `digitalSignature` (it signs the TLS handshake), a CA that lists them `keyCertSign`.
/// Returns the index of the anchor reached.
pub fn verify_chain(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<usize, Error> {
    validate(chain, anchors, now, webpki::KeyUsage::client_auth())
}

/// [`verify_chain`] for a certificate this server issued that renews itself
/// (`simplereenroll`): the same path validation, but any extended key usage, because the
/// certificate being renewed may be a TLS server's (it is then checked against our records).
pub(super) fn verify_own_chain(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<usize, Error> {
    validate(chain, anchors, now, AnyUsage)
}

/// Accepts every extended key usage.
struct AnyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, _: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn validate(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
    usage: impl webpki::ExtendedKeyUsageValidator,
) -> Result<usize, Error> {
    use rustls::pki_types::{CertificateDer, UnixTime};
    let leaf_der = chain
        .first()
        .ok_or_else(|| untrusted("no certificate was sent"))?;
    let trust: Vec<(usize, rustls::pki_types::TrustAnchor<'static>)> = anchors
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            webpki::anchor_from_trusted_cert(&CertificateDer::from(a.as_slice()))
                .ok()
                .map(|t| (i, t.to_owned()))
        })
        .collect();
    let trust_anchors: Vec<rustls::pki_types::TrustAnchor<'static>> =
        trust.iter().map(|(_, t)| t.clone()).collect();
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let leaf = CertificateDer::from(leaf_der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| untrusted(format!("unparseable certificate: {e}")))?;
    let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let path = ee
        .verify_for_usage(
            ALGORITHMS,
            &trust_anchors,
            &intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
            usage,
            None,
            None,
        )
        .map_err(|e| untrusted(describe(&e)))?;
    check_key_usage(leaf_der, KeyUsageNeeded::DigitalSignature)?;
    check_leaf_key(leaf_der)?;
    for c in path.intermediate_certificates() {
        check_key_usage(&c.der(), KeyUsageNeeded::KeyCertSign)?;
    }
    let reached = path.anchor().subject.as_ref();
    let index = trust
        .iter()
        .find(|(_, t)| {
            t.subject.as_ref() == reached
                && t.subject_public_key_info.as_ref()
                    == path.anchor().subject_public_key_info.as_ref()
        })
        .map(|(i, _)| *i)
        .ok_or_else(|| untrusted("no trusted CA issued it"))?;
    // webpki keeps no path length for a trust anchor: the anchor's own applies here.
    let below = path.intermediate_certificates().count();
    let (_, anchor) = X509Certificate::from_der(&anchors[index])
        .map_err(|e| untrusted(format!("unparseable trusted CA: {e}")))?;
    if let Ok(Some(bc)) = anchor.basic_constraints()
        && let Some(n) = bc.value.path_len_constraint
        && below > n as usize
    {
        return Err(untrusted("the chain exceeds a CA's path length"));
    }
    Ok(index)
}

/// What a path validation failure means, in words a device's operator can act on.
fn describe(e: &webpki::Error) -> String {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } | E::CertNotValidYet { .. } => {
            "a certificate in the chain is not valid now".into()
        }
        E::UnknownIssuer => "no trusted CA issued it".into(),
        E::RequiredEkuNotFoundContext(_) => {
            "its extendedKeyUsage does not allow TLS client authentication (clientAuth)".into()
        }
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "the chain uses a signature algorithm or key size that is not accepted (SHA-1, RSA under 2048 bits)".into()
        }
        E::InvalidSignatureForPublicKey => {
            "a signature in the chain does not verify under its issuer's key (an RSA issuer key needs at least 2048 bits)".into()
        }
        E::NameConstraintViolation => "it violates a CA's name constraints".into(),
        E::PathLenConstraintViolated => "the chain exceeds a CA's path length".into(),
        E::CaUsedAsEndEntity => "it is a CA certificate".into(),
        E::EndEntityUsedAsCa => "a certificate in the chain that is not a CA issued another".into(),
        other => format!("path validation failed: {other}"),
    }
}

/// The leaf's own key signs the TLS handshake, which path validation does not look at: an
/// RSA key must have at least 2048 bits there too.
fn check_leaf_key(der: &[u8]) -> Result<(), Error> {
    use x509_parser::public_key::PublicKey;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| untrusted(format!("unparseable certificate: {e}")))?;
    if let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed()
        && rsa.key_size() < 2048
    {
        return Err(untrusted(format!(
            "its RSA key has {} bits; at least 2048 are needed",
            rsa.key_size()
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum KeyUsageNeeded {
    DigitalSignature,
    KeyCertSign,
}

/// A certificate that lists key usages must list `needed`.
fn check_key_usage(der: &[u8], needed: KeyUsageNeeded) -> Result<(), Error> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| untrusted(format!("unparseable certificate: {e}")))?;
    let ku = cert
        .key_usage()
        .map_err(|e| untrusted(format!("bad keyUsage: {e}")))?;
    let Some(ku) = ku else {
        return Ok(());
    };
    let (ok, name) = match needed {
        KeyUsageNeeded::DigitalSignature => (ku.value.digital_signature(), "digitalSignature"),
        KeyUsageNeeded::KeyCertSign => (ku.value.key_cert_sign(), "keyCertSign"),
    };
    if ok {
        Ok(())
    } else {
        Err(untrusted(format!(
            "{:?} has a keyUsage without {name}",
            cert.subject().to_string()
        )))
    }
}

/// RFC 7030 §3.5: a challengePassword that looks like a channel-binding value must match
/// this connection's `tls-exporter` value (RFC 9266); `required` (a label's rule) demands one.
pub(super) fn check_channel_binding(
    csr: &ParsedCsr,
    binding: Option<[u8; 32]>,
    required: bool,
) -> Result<(), Error> {
    let expected = binding.map(|cb| base64::engine::general_purpose::STANDARD.encode(cb));
    let given = csr.challenge_password.as_deref().map(str::trim);
    let looks_like_binding = given.is_some_and(|g| {
        base64::engine::general_purpose::STANDARD
            .decode(g)
            .is_ok_and(|b| b.len() == 32)
    });
    match (given, expected) {
        (Some(g), Some(e)) if g == e => Ok(()),
        (Some(_), _) if looks_like_binding || required => Err(Error::Forbidden(
            "the CSR's challengePassword does not match this TLS connection's channel binding (base64 of the RFC 9266 tls-exporter value); the request may have been relayed".into(),
        )),
        (None, _) if required => Err(Error::Forbidden(
            "this EST label requires channel binding: put base64 of the TLS connection's tls-exporter value (RFC 9266) in the CSR's challengePassword".into(),
        )),
        _ => Ok(()),
    }
}

/// RFC 7030 §4.2.2: a renewal's subject and subjectAltName must be those of the
/// certificate being renewed.
pub(super) fn same_names(csr: &ParsedCsr, cert_der: &[u8]) -> Result<(), Error> {
    let info = certkeeper_ca::inspect_certificate(cert_der)?;
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| Error::BadRequest(format!("client certificate: {e}")))?;
    let mut cert_subject: Vec<(String, String)> = Vec::new();
    for rdn in cert.subject().iter() {
        for attr in rdn.iter() {
            let oid = attr.attr_type();
            let key = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string());
            cert_subject.push((key, attr.as_str().unwrap_or_default().to_string()));
        }
    }
    let mut csr_subject = csr.subject.clone();
    cert_subject.sort();
    csr_subject.sort();
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut cert_ips = info.ip_addresses.clone();
    let mut csr_ips = csr.ip_addresses.clone();
    cert_ips.sort();
    csr_ips.sort();
    if cert_subject != csr_subject
        || norm(&info.dns_names) != norm(&csr.dns_names)
        || cert_ips != csr_ips
    {
        return Err(Error::BadRequest(format!(
            "simplereenroll must keep the subject and subjectAltName of the certificate being renewed ({}; {})",
            info.subject,
            info.dns_names
                .iter()
                .cloned()
                .chain(info.ip_addresses.iter().map(|i| i.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}
