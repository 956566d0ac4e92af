//! The key a CA signs with: a key pair in memory (opened from its sealed form) or a key held
//! outside this process, such as in a PKCS#11 token, behind the [`RemoteKey`] trait. The
//! crate stays free of I/O: whoever implements [`RemoteKey`] talks to the device.

use std::sync::Arc;

use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm, SigningKey};

use crate::{CaError, KeyAlgorithm};

/// A private key that never leaves the device holding it: it signs on request.
///
/// Implementations must be safe to call from several threads at once.
pub trait RemoteKey: Send + Sync {
    /// The key type.
    fn key_algorithm(&self) -> KeyAlgorithm;

    /// The public key as the `subjectPublicKey` BIT STRING of X.509 carries it: the
    /// uncompressed point for EC keys, the DER `RSAPublicKey` for RSA keys.
    fn public_key_raw(&self) -> &[u8];

    /// Sign `message` with the key type's signature algorithm (ECDSA with SHA-256 on P-256,
    /// SHA-384 on P-384; RSA PKCS#1 v1.5 with SHA-256), returning the signature as X.509
    /// carries it (for ECDSA, the DER `ECDSA-Sig-Value`; see [`ecdsa_signature_der`]).
    /// Certificate and CRL signing reach the caller only as "the remote key failed", so an
    /// implementation logs the cause of a failure itself.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError>;
}

/// The signature algorithm a CA key of type `alg` signs with.
fn signature_algorithm(alg: KeyAlgorithm) -> Result<&'static SignatureAlgorithm, CaError> {
    match alg {
        KeyAlgorithm::EcdsaP256 => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyAlgorithm::EcdsaP384 => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyAlgorithm::Ed25519 => Ok(&rcgen::PKCS_ED25519),
        KeyAlgorithm::Rsa(_) => Ok(&rcgen::PKCS_RSA_SHA256),
        KeyAlgorithm::EcdsaP521 => Err(CaError::UnsupportedKey(
            "ecdsa-p521 cannot be a CA key".into(),
        )),
    }
}

/// Convert a raw ECDSA signature (`r || s`, each half the curve's size, as PKCS#11's
/// `CKM_ECDSA` returns it) to the DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`
/// that X.509 signatures hold (RFC 3279 §2.2.3).
pub fn ecdsa_signature_der(raw: &[u8]) -> Result<Vec<u8>, CaError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 132 {
        return Err(CaError::Crypto(format!(
            "an ECDSA signature of {} bytes is not r || s",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    for half in [r, s] {
        let trimmed = match half.iter().position(|b| *b != 0) {
            Some(i) => &half[i..],
            None => {
                return Err(CaError::Crypto(
                    "an ECDSA signature with r or s zero".into(),
                ));
            }
        };
        let pad = trimmed[0] & 0x80 != 0;
        body.push(0x02);
        push_length(&mut body, trimmed.len() + usize::from(pad));
        if pad {
            body.push(0);
        }
        body.extend_from_slice(trimmed);
    }
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    push_length(&mut out, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

/// A DER length (at most 65535, which covers every signature here).
fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

/// The key a CA signs with.
pub enum CaKey {
    /// A key pair in this process's memory (opened from the database's sealed copy).
    Local(KeyPair),
    /// A key held by a device that signs on request.
    Remote {
        /// The device's handle on the key.
        key: Arc<dyn RemoteKey>,
        /// The signature algorithm of its type.
        algorithm: &'static SignatureAlgorithm,
    },
}

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaKey::Local(_) => f.write_str("CaKey::Local"),
            CaKey::Remote { key, .. } => write!(f, "CaKey::Remote({})", key.key_algorithm()),
        }
    }
}

impl CaKey {
    /// A key pair held in memory.
    pub fn local(key: KeyPair) -> CaKey {
        CaKey::Local(key)
    }

    /// A key held by a device; refused when its type cannot sign certificates.
    pub fn remote(key: Arc<dyn RemoteKey>) -> Result<CaKey, CaError> {
        let algorithm = signature_algorithm(key.key_algorithm())?;
        Ok(CaKey::Remote { key, algorithm })
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::Local(k) => k.der_bytes(),
            CaKey::Remote { key, .. } => key.public_key_raw(),
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            CaKey::Local(k) => k.algorithm(),
            CaKey::Remote { algorithm, .. } => algorithm,
        }
    }
}

impl SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::Local(k) => k.sign(msg),
            // rcgen's error has no room for the cause: a [`RemoteKey`] reports it itself.
            CaKey::Remote { key, .. } => key.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_become_der() {
        // r with its top bit set gets a zero byte; s with leading zeros loses them.
        let mut raw = vec![0x80; 32];
        raw.extend_from_slice(&[0u8; 31]);
        raw.push(0x05);
        let der = ecdsa_signature_der(&raw).unwrap();
        let mut want = vec![0x30, 0x26, 0x02, 0x21, 0x00];
        want.extend_from_slice(&[0x80; 32]);
        want.extend_from_slice(&[0x02, 0x01, 0x05]);
        assert_eq!(der, want);
        // P-384 sizes fit too.
        let der = ecdsa_signature_der(&[0x7f; 96]).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x64, 0x02, 0x30]);
        assert!(ecdsa_signature_der(&[1, 2, 3]).is_err());
        assert!(ecdsa_signature_der(&[0; 64]).is_err());
    }

    /// A remote key that is an in-memory key pair underneath, as a device would behave:
    /// raw `r || s` converted with [`ecdsa_signature_der`].
    struct Soft(KeyPair, KeyAlgorithm);
    impl RemoteKey for Soft {
        fn key_algorithm(&self) -> KeyAlgorithm {
            self.1
        }
        fn public_key_raw(&self) -> &[u8] {
            self.0.der_bytes()
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
            use aws_lc_rs::signature::{
                ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
            };
            let alg = match self.1 {
                KeyAlgorithm::EcdsaP256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
                _ => &ECDSA_P384_SHA384_FIXED_SIGNING,
            };
            let kp = EcdsaKeyPair::from_pkcs8(alg, &self.0.serialize_der()).unwrap();
            let sig = kp
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .unwrap();
            ecdsa_signature_der(sig.as_ref())
        }
    }

    #[test]
    fn a_remote_key_signs_certificates_that_verify() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
            let kp = alg.generate().unwrap();
            let key = CaKey::remote(Arc::new(Soft(kp, alg))).unwrap();
            let now = time::OffsetDateTime::now_utc();
            let root =
                crate::create_root_for_key(&crate::CaSpec::new("Remote", alg), &key, now).unwrap();
            let (_, cert) =
                x509_parser::parse_x509_certificate(&root.der).expect("the certificate parses");
            cert.verify_signature(None)
                .expect("the self-signature verifies");
        }
    }
}
