//! EST bodies: the base64 body of simpleenroll, simplereenroll and serverkeygen, decoded and
//! read as a PKCS#10 request as the EST front end does; and a certs-only CMS SignedData (what
//! the EST client reads from `cacerts` and enrollment answers), raw and base64, with each
//! certificate in it inspected.
#![no_main]

use certkeeper_ca::est_wire;
use libfuzzer_sys::fuzz_target;

fn certs_only(cms: &[u8]) {
    if let Ok(certs) = est_wire::parse_certs_only(cms) {
        for c in certs {
            let _ = certkeeper_ca::inspect_certificate(&c);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(der) = est_wire::decode_base64_body(data) {
        if der.first() == Some(&0x30) {
            let _ = certkeeper_ca::parse_csr(&der);
        }
        certs_only(&der);
    }
    certs_only(data);
});
