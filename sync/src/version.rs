//! One version of a managed certificate, as handed to destinations.

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::SyncError;

/// A certificate version with its private key. The key is never printed by `Debug`.
#[derive(Clone)]
pub struct CertificateVersion {
    /// The version number of the managed certificate (1, 2, ...).
    pub version: i64,
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The issuer chain without the root, nearest first, DER.
    pub chain_der: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for CertificateVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateVersion")
            .field("version", &self.version)
            .field("chain_len", &self.chain_der.len())
            .finish_non_exhaustive()
    }
}

/// The public key type of a certificate, as cloud stores tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyKind {
    /// RSA with this modulus size in bits.
    Rsa(usize),
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// ECDSA on P-521.
    EcP521,
    /// Ed25519.
    Ed25519,
    /// Anything else (the OID).
    Other(String),
}

impl std::fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKeyKind::Rsa(bits) => write!(f, "RSA {bits}"),
            PublicKeyKind::EcP256 => f.write_str("ECDSA P-256"),
            PublicKeyKind::EcP384 => f.write_str("ECDSA P-384"),
            PublicKeyKind::EcP521 => f.write_str("ECDSA P-521"),
            PublicKeyKind::Ed25519 => f.write_str("Ed25519"),
            PublicKeyKind::Other(oid) => write!(f, "key algorithm {oid}"),
        }
    }
}

/// The facts about the certificate that destinations check before pushing.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) key: PublicKeyKind,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) serial_hex: String,
}

impl CertificateVersion {
    pub(crate) fn facts(&self) -> Result<Facts, SyncError> {
        let (_, cert) = X509Certificate::from_der(&self.certificate_der)
            .map_err(|e| SyncError::Refused(format!("unreadable certificate: {e}")))?;
        let spki = cert.public_key();
        let oid = spki.algorithm.algorithm.to_id_string();
        let key = match oid.as_str() {
            "1.2.840.113549.1.1.1" => match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                    PublicKeyKind::Rsa(rsa.key_size())
                }
                _ => PublicKeyKind::Other(oid),
            },
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    "1.2.840.10045.3.1.7" => PublicKeyKind::EcP256,
                    "1.3.132.0.34" => PublicKeyKind::EcP384,
                    "1.3.132.0.35" => PublicKeyKind::EcP521,
                    _ => PublicKeyKind::Other(format!("{oid} ({curve})")),
                }
            }
            "1.3.101.112" => PublicKeyKind::Ed25519,
            _ => PublicKeyKind::Other(oid),
        };
        Ok(Facts {
            key,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            serial_hex: hex_lower(cert.raw_serial()),
        })
    }

    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        pem_block("CERTIFICATE", &self.certificate_der)
    }

    /// The chain, PEM, nearest first.
    pub fn chain_pem(&self) -> String {
        self.chain_der
            .iter()
            .map(|d| pem_block("CERTIFICATE", d))
            .collect()
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        pem_block("PRIVATE KEY", &self.key_pkcs8_der)
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => &[0],
    };
    trimmed.iter().map(|b| format!("{b:02x}")).collect()
}

fn pem_block(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}
