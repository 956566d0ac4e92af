//! EST authentication: HTTP Basic credentials (password hashes) and TLS client
//! certificates checked against the trust set.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

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

/// The user name and password of an `Authorization: Basic` header, if there is one.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, Error> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || Error::Unauthorized("malformed Authorization: Basic header".into());
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::Unauthorized(
            "EST takes HTTP Basic credentials or a TLS client certificate".into(),
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (user, pass) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((user.to_string(), pass.to_string())))
}

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

    #[test]
    fn basic_header_parsing() {
        let mut h = HeaderMap::new();
        assert!(basic_credentials(&h).unwrap().is_none());
        h.insert(AUTHORIZATION, "Basic dXNlcjpwYTpzcw==".parse().unwrap());
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("user".into(), "pa:ss".into()))
        );
        h.insert(AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(basic_credentials(&h).is_err());
        h.insert(AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(basic_credentials(&h).is_err());
    }
}
