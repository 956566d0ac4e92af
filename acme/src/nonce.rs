//! Anti-replay nonces (RFC 8555 §6.5) that cost nothing to hand out.
//!
//! A nonce is `issued_at (8 bytes, big-endian Unix seconds) || 16 random bytes || the first
//! 16 bytes of HMAC-SHA256(key, the 24 bytes before)`, base64url-encoded. The server can
//! tell from the nonce alone that it made it, and when; what it must still remember is which
//! nonces were *used*, and only until they expire. Replicas that share the key accept each
//! other's nonces.

use aws_lc_rs::hmac;

use crate::{b64, b64_decode};

const STAMP: usize = 8;
const RANDOM: usize = 16;
const TAG: usize = 16;
const LEN: usize = STAMP + RANDOM + TAG;

/// Why a nonce is not acceptable (before asking whether it was used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceRejection {
    /// Not one of ours: wrong length, bad base64url, or a tag that does not verify.
    Unknown,
    /// Ours, but older than the lifetime (or from the future).
    Expired,
}

/// The secret that authenticates nonces.
pub struct NonceKey {
    key: hmac::Key,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

impl NonceKey {
    /// A key from 32 secret bytes.
    pub fn new(secret: &[u8; 32]) -> NonceKey {
        NonceKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// A fresh nonce issued at `now` (Unix seconds).
    pub fn issue(&self, now: i64) -> Result<String, crate::Problem> {
        let mut raw = [0u8; LEN];
        raw[..STAMP].copy_from_slice(&now.to_be_bytes());
        aws_lc_rs::rand::fill(&mut raw[STAMP..STAMP + RANDOM]).map_err(|_| {
            crate::Problem::new(
                crate::ProblemType::ServerInternal,
                "no randomness for a nonce",
            )
        })?;
        let tag = hmac::sign(&self.key, &raw[..STAMP + RANDOM]);
        raw[STAMP + RANDOM..].copy_from_slice(&tag.as_ref()[..TAG]);
        Ok(b64(&raw))
    }

    /// Checks that `nonce` is ours and younger than `lifetime` seconds at `now`; returns
    /// when it expires (the time until which its use must be remembered).
    pub fn check(&self, nonce: &str, now: i64, lifetime: i64) -> Result<i64, NonceRejection> {
        let raw = b64_decode(nonce, "nonce").map_err(|_| NonceRejection::Unknown)?;
        if raw.len() != LEN {
            return Err(NonceRejection::Unknown);
        }
        let (signed, tag) = raw.split_at(STAMP + RANDOM);
        let expected = hmac::sign(&self.key, signed);
        // Constant-time comparison of the truncated tag.
        if aws_lc_rs::constant_time::verify_slices_are_equal(&expected.as_ref()[..TAG], tag)
            .is_err()
        {
            return Err(NonceRejection::Unknown);
        }
        let mut stamp = [0u8; STAMP];
        stamp.copy_from_slice(&signed[..STAMP]);
        let issued = i64::from_be_bytes(stamp);
        // A little tolerance for replicas whose clocks disagree by a few seconds.
        if issued > now + 30 || now - issued > lifetime {
            return Err(NonceRejection::Expired);
        }
        Ok(issued + lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> NonceKey {
        NonceKey::new(&[byte; 32])
    }

    #[test]
    fn a_nonce_checks_until_it_expires() {
        let k = key(1);
        let n = k.issue(1_000).unwrap();
        assert_eq!(k.check(&n, 1_000, 3600), Ok(4_600));
        assert_eq!(k.check(&n, 4_600, 3600), Ok(4_600));
        assert_eq!(k.check(&n, 4_601, 3600), Err(NonceRejection::Expired));
        assert_eq!(k.check(&n, 900, 3600), Err(NonceRejection::Expired));
    }

    #[test]
    fn nonces_differ_and_other_keys_reject_them() {
        let k = key(1);
        let (a, b) = (k.issue(5).unwrap(), k.issue(5).unwrap());
        assert_ne!(a, b);
        assert_eq!(key(2).check(&a, 5, 60), Err(NonceRejection::Unknown));
    }

    #[test]
    fn tampered_or_malformed_nonces_are_unknown() {
        let k = key(1);
        let n = k.issue(5).unwrap();
        let mut raw = b64_decode(&n, "n").unwrap();
        raw[0] ^= 1; // move the timestamp
        assert_eq!(
            k.check(&b64(&raw), 5, 1 << 40),
            Err(NonceRejection::Unknown)
        );
        assert_eq!(k.check("", 5, 60), Err(NonceRejection::Unknown));
        assert_eq!(k.check("!!!", 5, 60), Err(NonceRejection::Unknown));
        assert_eq!(
            k.check(&n[..n.len() - 2], 5, 60),
            Err(NonceRejection::Unknown)
        );
    }
}
