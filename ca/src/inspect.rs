//! Reading certificates: the fields an inventory needs, and PEM/DER conversion.

use std::net::IpAddr;

use ::time::OffsetDateTime;
use serde::Serialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

use crate::{CaError, KeyAlgorithm};

/// What an inventory records about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Subject distinguished name (RFC 4514 form).
    pub subject: String,
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// Issuer distinguished name (RFC 4514 form).
    pub issuer: String,
    /// Serial number, lower-case hex without separators.
    pub serial: String,
    /// Start of validity.
    #[serde(with = "::time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "::time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// DNS names in the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses in the subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
    /// The subject key's type, when recognised.
    pub key_algorithm: Option<String>,
    /// SHA-256 over the DER certificate, lower-case hex.
    pub fingerprint_sha256: String,
    /// Whether basicConstraints says CA.
    pub is_ca: bool,
    /// pathLenConstraint, when present.
    pub path_len: Option<u32>,
    /// Whether subject and issuer are the same name and the signature verifies with its own key.
    pub self_signed: bool,
}

/// Parse a DER certificate into its inventory fields.
pub fn inspect_certificate(der: &[u8]) -> Result<CertInfo, CaError> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| CaError::BadCertificate(format!("not a DER X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(CaError::BadCertificate(
            "trailing data after the certificate".into(),
        ));
    }
    Ok(info_of(&cert, der))
}

pub(crate) fn info_of(cert: &X509Certificate<'_>, der: &[u8]) -> CertInfo {
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for gn in &san.value.general_names {
            match gn {
                GeneralName::DNSName(n) => dns_names.push(n.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let (is_ca, path_len) = match cert.basic_constraints() {
        Ok(Some(bc)) => (bc.value.ca, bc.value.path_len_constraint),
        _ => (false, None),
    };
    let self_signed =
        cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok();
    CertInfo {
        subject: cert.subject().to_string(),
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        issuer: cert.issuer().to_string(),
        serial: hex::encode(cert.raw_serial())
            .trim_start_matches("00")
            .to_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        dns_names,
        ip_addresses,
        key_algorithm: KeyAlgorithm::of_parsed_spki(cert.public_key())
            .ok()
            .map(|k| k.to_string()),
        fingerprint_sha256: sha256_hex(der),
        is_ca,
        path_len,
        self_signed,
    }
}

/// Whether a DER certificate is self-issued (subject equals issuer), as a root is. Cheap: no
/// signature check.
pub fn is_self_issued(der: &[u8]) -> bool {
    X509Certificate::from_der(der).is_ok_and(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
}

pub(crate) fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

/// Read one or more certificates given as PEM (any number of `CERTIFICATE` blocks) or a single DER.
pub fn parse_pem_or_der_certs(input: &[u8]) -> Result<Vec<Vec<u8>>, CaError> {
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let blocks = ::pem::parse_many(trimmed)
            .map_err(|e| CaError::BadCertificate(format!("malformed PEM: {e}")))?;
        let certs: Vec<Vec<u8>> = blocks
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.into_contents())
            .collect();
        if certs.is_empty() {
            return Err(CaError::BadCertificate(
                "no CERTIFICATE block in the PEM input".into(),
            ));
        }
        for c in &certs {
            inspect_certificate(c)?;
        }
        Ok(certs)
    } else {
        inspect_certificate(input)?;
        Ok(vec![input.to_vec()])
    }
}

/// PEM-encode a list of DER certificates, one block each, in order.
pub fn pem_encode_certs<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut out = String::new();
    for der in ders {
        out.push_str(&::pem::encode(&::pem::Pem::new(
            "CERTIFICATE",
            der.to_vec(),
        )));
    }
    out.replace("\r\n", "\n")
}
