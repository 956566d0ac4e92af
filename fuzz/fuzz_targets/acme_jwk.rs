//! JWKs (the `jwk` of a newAccount, key change or revocation JWS): parsing, the RFC 7638
//! thumbprint and the key as a certificate would carry it. A parsed key's canonical form
//! must parse back to a key with the same thumbprint.
#![no_main]

use certkeeper_acme::PublicJwk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(key) = PublicJwk::from_json(&value) else {
        return;
    };
    let canonical = key.canonical_json();
    let _ = key.subject_public_key();
    let again: serde_json::Value = serde_json::from_str(&canonical).expect("canonical JWK is JSON");
    let back = PublicJwk::from_json(&again).expect("canonical JWK parses back");
    assert_eq!(back.thumbprint(), key.thumbprint());
});
