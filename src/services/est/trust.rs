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

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| untrusted(format!("unparseable certificate: {e}")))
}

fn check_time(c: &X509Certificate<'_>, now: OffsetDateTime) -> Result<(), Error> {
    let t = now.unix_timestamp();
    let v = c.validity();
    if t < v.not_before.timestamp() || t > v.not_after.timestamp() {
        return Err(untrusted(format!(
            "{} is not valid now (valid {} to {})",
            c.subject(),
            v.not_before,
            v.not_after
        )));
    }
    Ok(())
}

/// Check that `chain` (leaf first, as the client sent it) leads to one of `anchors`, each
/// link's signature verifying and each certificate valid at `now`. Intermediates from the
/// client must be CAs. Returns the index of the anchor reached.
pub fn verify_chain(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<usize, Error> {
    let leaf_der = chain
        .first()
        .ok_or_else(|| untrusted("no certificate was sent"))?;
    let anchors: Vec<X509Certificate<'_>> = anchors
        .iter()
        .filter_map(|a| X509Certificate::from_der(a).ok().map(|(_, c)| c))
        .collect();
    let mut current = parse(leaf_der)?;
    check_time(&current, now)?;
    for _ in 0..8 {
        for (i, a) in anchors.iter().enumerate() {
            if a.subject().as_raw() == current.issuer().as_raw()
                && current.verify_signature(Some(a.public_key())).is_ok()
            {
                check_time(a, now)?;
                return Ok(i);
            }
        }
        let next = chain[1..]
            .iter()
            .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
            .find(|c| {
                c.subject().as_raw() == current.issuer().as_raw()
                    && c.is_ca()
                    && current.verify_signature(Some(c.public_key())).is_ok()
            })
            .ok_or_else(|| {
                untrusted(format!(
                    "no trusted CA issued {:?}",
                    current.subject().to_string()
                ))
            })?;
        check_time(&next, now)?;
        current = next;
    }
    Err(untrusted("the chain is too long"))
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
