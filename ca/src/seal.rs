//! Sealing secrets at rest with AES-256-GCM under a master key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::CaError;

const VERSION: u8 = 1;

/// The 256-bit key that seals CA private keys and other secrets in the database.
///
/// Its `Debug` output never shows the key.
pub struct MasterKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh random master key; returns it with its raw bytes (to be stored by the caller).
    pub fn generate() -> Result<(MasterKey, [u8; 32]), CaError> {
        let mut raw = [0u8; 32];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| CaError::Crypto("random generator failed".into()))?;
        Ok((Self::from_bytes(&raw)?, raw))
    }

    /// A master key from its 32 raw bytes.
    pub fn from_bytes(raw: &[u8]) -> Result<MasterKey, CaError> {
        let unbound = UnboundKey::new(&AES_256_GCM, raw)
            .map_err(|_| CaError::Crypto("master key must be exactly 32 bytes".into()))?;
        Ok(MasterKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seal `plaintext`; `context` (for example the CA's id) is authenticated, so a sealed
    /// value cannot be moved to another record.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CaError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CaError::Crypto("random generator failed".into()))?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buf,
            )
            .map_err(|_| CaError::Crypto("sealing failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Open a value made by [`MasterKey::seal`] with the same context.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, CaError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(CaError::Unseal);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
            .map_err(|_| CaError::Unseal)?;
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| CaError::Unseal)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let (mk, raw) = MasterKey::generate().unwrap();
        let sealed = mk.seal(b"secret key", b"ca-1").unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"secret key"));
        assert_eq!(mk.open(&sealed, b"ca-1").unwrap(), b"secret key");
        assert!(matches!(mk.open(&sealed, b"ca-2"), Err(CaError::Unseal)));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(mk.open(&bad, b"ca-1").is_err());
        let (other, _) = MasterKey::generate().unwrap();
        assert!(other.open(&sealed, b"ca-1").is_err());
        assert_eq!(
            MasterKey::from_bytes(&raw)
                .unwrap()
                .open(&sealed, b"ca-1")
                .unwrap(),
            b"secret key"
        );
        assert!(MasterKey::from_bytes(&[0u8; 16]).is_err());
        assert_eq!(format!("{mk:?}"), "MasterKey(<redacted>)");
    }
}
