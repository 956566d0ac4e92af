//! ACME request bodies: a flattened JWS as `POST /acme/...` receives it, with and without
//! HS256 allowed (the external account binding's inner JWS), then everything the engine
//! does with a parsed one before it looks up an account.
#![no_main]

use certkeeper_acme::{Jws, KeyRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for allow_hmac in [false, true] {
        let Ok(jws) = Jws::parse(data, allow_hmac) else {
            continue;
        };
        if let KeyRef::Jwk(key) = &jws.header.key {
            let _ = key.thumbprint();
            let _ = key.subject_public_key();
            let _ = jws.verify(key);
        }
        let _ = jws.verify_hmac(b"an external account binding key");
        let _ = jws.is_post_as_get();
        let _ = jws.json::<serde_json::Value>();
    }
});
