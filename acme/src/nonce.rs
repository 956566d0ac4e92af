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

/// The used nonces of a single server process, in memory, bounded.
///
/// For a deployment with one process (the embedded SQLite database) this replaces the
/// shared table: a nonce is accepted once if it is unexpired and not seen before. At most
/// `capacity` uses are remembered; when more arrive, the oldest-issued are forgotten and
/// every nonce issued up to then is refused from that moment (a client then retries with a
/// fresh nonce, as RFC 8555 §6.5 expects), so forgetting never lets a nonce through twice.
#[derive(Debug)]
pub struct UsedNonces {
    capacity: usize,
    /// (expiry, nonce): ordered by expiry, which orders by issue time.
    used: std::collections::BTreeSet<(i64, String)>,
    /// Nonces expiring at or before this are refused.
    floor: i64,
}

impl UsedNonces {
    /// An empty set that remembers at most `capacity` uses.
    pub fn new(capacity: usize) -> UsedNonces {
        UsedNonces {
            capacity: capacity.max(1),
            used: std::collections::BTreeSet::new(),
            floor: i64::MIN,
        }
    }

    /// Record a use of `nonce` (checked with [`NonceKey::check`], which gave `expires_at`)
    /// at `now`: true if this is its first use.
    pub fn use_once(&mut self, nonce: &str, expires_at: i64, now: i64) -> bool {
        // Expired nonces are refused by `check`: their uses need not be remembered.
        while self.used.first().is_some_and(|(at, _)| *at < now) {
            self.used.pop_first();
        }
        if expires_at <= self.floor || !self.used.insert((expires_at, nonce.to_owned())) {
            return false;
        }
        while self.used.len() > self.capacity {
            if let Some((at, _)) = self.used.pop_first() {
                self.floor = self.floor.max(at);
            }
        }
        true
    }

    /// How many uses are remembered.
    pub fn len(&self) -> usize {
        self.used.len()
    }

    /// True when no use is remembered.
    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
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

    #[test]
    fn a_nonce_is_used_once() {
        let k = key(1);
        let mut used = UsedNonces::new(10);
        let n = k.issue(100).unwrap();
        let exp = k.check(&n, 100, 60).unwrap();
        assert!(used.use_once(&n, exp, 100));
        assert!(!used.use_once(&n, exp, 101));
        let m = k.issue(100).unwrap();
        assert!(used.use_once(&m, exp, 101));
        assert_eq!(used.len(), 2);
    }

    #[test]
    fn expired_uses_are_forgotten() {
        let mut used = UsedNonces::new(10);
        assert!(used.use_once("a", 160, 100));
        assert!(used.use_once("b", 170, 100));
        assert!(used.use_once("c", 200, 165));
        assert_eq!(used.len(), 2, "a expired at 160 and is dropped at 165");
    }

    #[test]
    fn a_full_set_refuses_what_it_forgot_and_everything_older() {
        let mut used = UsedNonces::new(2);
        assert!(used.use_once("a", 110, 100));
        assert!(used.use_once("b", 120, 100));
        assert!(used.use_once("c", 130, 100));
        assert_eq!(used.len(), 2);
        // "a" was forgotten: it must still not be accepted again, nor an unused nonce
        // issued as early.
        assert!(!used.use_once("a", 110, 100));
        assert!(!used.use_once("d", 105, 100));
        assert!(!used.use_once("b", 120, 100));
        assert!(used.use_once("e", 125, 100));
    }
}
