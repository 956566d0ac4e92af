//! Key types: naming, generation, loading, and recognising a public key's type.

use std::fmt;
use std::str::FromStr;

#[cfg(test)]
use rcgen::PublicKeyData;
use rcgen::{KeyPair, RsaKeySize};
use serde::{Deserialize, Serialize};
use x509_parser::der_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::CaError;

/// A key type and size. Written as `ecdsa-p256`, `ecdsa-p384`, `ed25519`, `rsa-2048`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// ECDSA on NIST P-521 (accepted in CSRs; not generated).
    EcdsaP521,
    /// Ed25519.
    Ed25519,
    /// RSA with the given modulus size in bits.
    Rsa(u32),
}

impl KeyAlgorithm {
    /// The key types certkeeper can generate, CAs included.
    pub const GENERATABLE: [KeyAlgorithm; 6] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa(2048),
        KeyAlgorithm::Rsa(3072),
        KeyAlgorithm::Rsa(4096),
    ];

    /// Generate a new key of this type.
    pub fn generate(self) -> Result<KeyPair, CaError> {
        generate_key(self)
    }

    /// Recognise the key type of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Result<KeyAlgorithm, CaError> {
        let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| CaError::BadKey(format!("unparseable public key: {e}")))?;
        Self::of_parsed_spki(&spki)
    }

    pub(crate) fn of_parsed_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyAlgorithm, CaError> {
        let oid = spki.algorithm.algorithm.to_id_string();
        // The parameters must be what each algorithm's RFC asks (NULL for RSA, a named
        // curve's OID for EC, none for Ed25519): a key that names its type in any other way
        // is not one the signer can certify, so it is refused here, before policy.
        let params = spki.algorithm.parameters.as_ref();
        let malformed =
            |what: &str| CaError::BadKey(format!("malformed {what} public key parameters"));
        match oid.as_str() {
            "1.2.840.113549.1.1.1" => {
                if !params.is_some_and(|p| universal(p, Tag::Null) && p.data.is_empty()) {
                    return Err(malformed("RSA"));
                }
                match spki.parsed() {
                    Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                        Ok(KeyAlgorithm::Rsa(rsa.key_size() as u32))
                    }
                    _ => Err(CaError::BadKey("malformed RSA public key".into())),
                }
            }
            "1.2.840.10045.2.1" => {
                let curve = params
                    .filter(|p| universal(p, Tag::Oid))
                    .ok_or_else(|| malformed("EC"))?
                    .as_oid()
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    "1.2.840.10045.3.1.7" => Ok(KeyAlgorithm::EcdsaP256),
                    "1.3.132.0.34" => Ok(KeyAlgorithm::EcdsaP384),
                    "1.3.132.0.35" => Ok(KeyAlgorithm::EcdsaP521),
                    other => Err(CaError::UnsupportedKey(format!("EC curve {other}"))),
                }
            }
            "1.3.101.112" if params.is_some() => Err(malformed("Ed25519")),
            "1.3.101.112" => Ok(KeyAlgorithm::Ed25519),
            other => Err(CaError::UnsupportedKey(format!(
                "public key algorithm {other}"
            ))),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::EcdsaP256 => f.write_str("ecdsa-p256"),
            KeyAlgorithm::EcdsaP384 => f.write_str("ecdsa-p384"),
            KeyAlgorithm::EcdsaP521 => f.write_str("ecdsa-p521"),
            KeyAlgorithm::Ed25519 => f.write_str("ed25519"),
            KeyAlgorithm::Rsa(bits) => write!(f, "rsa-{bits}"),
        }
    }
}

impl FromStr for KeyAlgorithm {
    type Err = CaError;
    fn from_str(s: &str) -> Result<Self, CaError> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "ecdsa-p256" | "p256" | "ec-p256" | "es256" => Ok(KeyAlgorithm::EcdsaP256),
            "ecdsa-p384" | "p384" | "ec-p384" | "es384" => Ok(KeyAlgorithm::EcdsaP384),
            "ecdsa-p521" | "p521" => Ok(KeyAlgorithm::EcdsaP521),
            "ed25519" => Ok(KeyAlgorithm::Ed25519),
            _ => lower
                .strip_prefix("rsa-")
                .or_else(|| lower.strip_prefix("rsa"))
                .and_then(|b| b.parse::<u32>().ok())
                .filter(|b| (1024..=16384).contains(b))
                .map(KeyAlgorithm::Rsa)
                .ok_or_else(|| {
                    CaError::UnsupportedKey(format!(
                        "{s:?} (expected ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096)"
                    ))
                }),
        }
    }
}

impl TryFrom<String> for KeyAlgorithm {
    type Error = CaError;
    fn try_from(s: String) -> Result<Self, CaError> {
        s.parse()
    }
}

impl From<KeyAlgorithm> for String {
    fn from(k: KeyAlgorithm) -> String {
        k.to_string()
    }
}

/// Generate a new key pair of the given type.
pub fn generate_key(alg: KeyAlgorithm) -> Result<KeyPair, CaError> {
    let kp = match alg {
        KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyAlgorithm::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        KeyAlgorithm::Rsa(2048) => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
        }
        KeyAlgorithm::Rsa(3072) => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
        }
        KeyAlgorithm::Rsa(4096) => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
        }
        other => {
            return Err(CaError::UnsupportedKey(format!(
                "{other} cannot be generated (use ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096)"
            )));
        }
    };
    kp.map_err(|e| CaError::Crypto(e.to_string()))
}

/// Whether `p` is a primitive universal-class `tag`.
fn universal(p: &Any<'_>, tag: Tag) -> bool {
    p.header.class() == Class::Universal && p.header.tag() == tag && p.header.is_primitive()
}

/// Load a private key from DER (PKCS#8, PKCS#1 or SEC1) or PEM.
pub fn load_key(bytes: &[u8]) -> Result<KeyPair, CaError> {
    let der = match ::pem::parse(bytes) {
        Ok(p) => p.into_contents(),
        Err(_) => bytes.to_vec(),
    };
    KeyPair::try_from(der.as_slice())
        .map_err(|e| CaError::BadKey(format!("unsupported or malformed private key: {e}")))
}

/// The key type of a key pair.
#[cfg(test)]
pub(crate) fn key_algorithm_of(kp: &KeyPair) -> Result<KeyAlgorithm, CaError> {
    KeyAlgorithm::of_spki(&kp.subject_public_key_info())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_and_recognises_every_type() {
        for alg in KeyAlgorithm::GENERATABLE {
            let kp = alg.generate().unwrap();
            assert_eq!(key_algorithm_of(&kp).unwrap(), alg);
            let reloaded = load_key(kp.serialize_pem().as_bytes()).unwrap();
            assert_eq!(
                reloaded.subject_public_key_info(),
                kp.subject_public_key_info()
            );
        }
    }

    #[test]
    fn names_round_trip_and_bad_names_fail() {
        for alg in KeyAlgorithm::GENERATABLE {
            assert_eq!(alg.to_string().parse::<KeyAlgorithm>().unwrap(), alg);
        }
        assert!("dsa-1024".parse::<KeyAlgorithm>().is_err());
        assert!("rsa-12".parse::<KeyAlgorithm>().is_err());
        assert!(generate_key(KeyAlgorithm::Rsa(1024)).is_err());
    }
}
