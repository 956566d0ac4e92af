//! EST credentials: passwords stored as PBKDF2 hashes, generated when not chosen.

use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::pbkdf2;
use base64::Engine;

use crate::error::Error;

/// PBKDF2-HMAC-SHA256 iterations for new hashes: OWASP's figure for this function (Password
/// Storage Cheat Sheet, 2023 and since). Stored with each hash, so hashes made with fewer
/// (100,000 before) still verify with their own count.
const PBKDF2_ITERATIONS: u32 = 600_000;
const HASH_LEN: usize = 32;
const SCHEME: &str = "pbkdf2-sha256";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD_NO_PAD
}

/// Key derivations run by [`verify_password`] (and so by [`verify_or_dummy`]) since start.
static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many password verifications (each a full key derivation) have run, for tests that a
/// path does the same work as another.
#[cfg(test)]
fn verifications() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

/// A hash of a random password nobody knows, made once with the current iteration count:
/// an unknown user name is verified against it, so that it costs what a known one does.
fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let pw = new_password().unwrap_or_else(|_| "unguessable-dummy".into());
        hash_password(&pw).unwrap_or_else(|_| {
            format!(
                "{SCHEME}${PBKDF2_ITERATIONS}${}${}",
                b64().encode([0u8; 16]),
                b64().encode([0u8; HASH_LEN])
            )
        })
    });
    &DUMMY
}

/// Whether `password` matches `stored`; with no stored hash (an unknown user) the same key
/// derivation runs against a dummy hash and the answer is no, so a caller cannot tell an
/// unknown user from a wrong password by the time it takes.
pub fn verify_or_dummy(password: &str, stored: Option<&str>) -> bool {
    match stored {
        Some(h) => verify_password(password, h),
        None => {
            verify_password(password, dummy_hash());
            false
        }
    }
}

/// Hash a password for storage: `pbkdf2-sha256$<iterations>$<salt>$<hash>` (PHC-like).
pub fn hash_password(password: &str) -> Result<String, Error> {
    hash_with_iterations(password, PBKDF2_ITERATIONS)
}

fn hash_with_iterations(password: &str, iterations: u32) -> Result<String, Error> {
    use aws_lc_rs::rand::SecureRandom;
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::Internal("random generator failed".into()))?;
    let mut out = [0u8; HASH_LEN];
    let n = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "{SCHEME}${iterations}${}${}",
        b64().encode(salt),
        b64().encode(out)
    ))
}

/// Whether `password` matches a stored hash (constant-time comparison), derived with the
/// hash's own iteration count (at most ten times the current one, so a stored value cannot
/// make a login arbitrarily costly).
pub fn verify_password(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iter), Ok(salt), Ok(hash)) = (
        iter.parse::<u32>()
            .ok()
            .filter(|n| *n <= PBKDF2_ITERATIONS * 10)
            .and_then(NonZeroU32::new),
        b64().decode(salt),
        b64().decode(hash),
    ) else {
        return false;
    };
    VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iter,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// A new random password (24 bytes, URL-safe base64).
pub fn new_password() -> Result<String, Error> {
    use aws_lc_rs::rand::SecureRandom;
    let mut raw = [0u8; 24];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| Error::Internal("random generator failed".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_verify_and_differ() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("pbkdf2-sha256$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert_ne!(h, hash_password("correct horse").unwrap());
        assert!(!verify_password("x", "garbage"));
        let iterations: u32 = h.split('$').nth(1).unwrap().parse().unwrap();
        assert_eq!(iterations, 600_000, "OWASP's figure for PBKDF2-HMAC-SHA256");
    }

    #[test]
    fn old_hashes_verify_with_their_own_iteration_count() {
        let old = hash_with_iterations("an old password", 100_000).unwrap();
        assert!(old.starts_with("pbkdf2-sha256$100000$"));
        assert!(verify_password("an old password", &old));
        assert!(!verify_password("another password", &old));
    }

    #[test]
    fn an_unknown_user_costs_one_key_derivation_like_a_known_one() {
        // Warm the dummy hash first (made once per process).
        dummy_hash();
        let known = hash_password("correct horse").unwrap();
        let before = verifications();
        assert!(!verify_or_dummy("correct horse", None));
        let unknown_cost = verifications() - before;
        let before = verifications();
        assert!(!verify_or_dummy("wrong horse", Some(&known)));
        let known_cost = verifications() - before;
        // Other tests in this process may verify at the same time: at least one each.
        assert!(unknown_cost >= 1, "the dummy path runs the key derivation");
        assert!(known_cost >= 1);
        assert!(dummy_hash().starts_with(&format!("pbkdf2-sha256${PBKDF2_ITERATIONS}$")));
    }
}
