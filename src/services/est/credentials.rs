//! EST credentials: passwords stored as PBKDF2 hashes, generated when not chosen.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use base64::Engine;

use crate::error::Error;

/// PBKDF2-HMAC-SHA256 iterations. Stored with each hash, so it can be raised later. Every
/// verification costs this much on the server, which bounds a password-guessing attacker.
const PBKDF2_ITERATIONS: u32 = 100_000;
const HASH_LEN: usize = 32;
const SCHEME: &str = "pbkdf2-sha256";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD_NO_PAD
}

/// Hash a password for storage: `pbkdf2-sha256$<iterations>$<salt>$<hash>` (PHC-like).
pub fn hash_password(password: &str) -> Result<String, Error> {
    use aws_lc_rs::rand::SecureRandom;
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::Internal("random generator failed".into()))?;
    let mut out = [0u8; HASH_LEN];
    let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "{SCHEME}${PBKDF2_ITERATIONS}${}${}",
        b64().encode(salt),
        b64().encode(out)
    ))
}

/// Whether `password` matches a stored hash (constant-time comparison).
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
        iter.parse::<u32>().ok().and_then(NonZeroU32::new),
        b64().decode(salt),
        b64().decode(hash),
    ) else {
        return false;
    };
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
    }
}
