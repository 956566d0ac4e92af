//! OCSP requests (RFC 6960) as `POST /ocsp` and `GET /ocsp/<base64>` receive them: parse,
//! then answer as the registration authority does, for every CertID (the test CA's or
//! not) and with the request's nonce. A request that parses must be answerable.
#![no_main]

use certkeeper_ca::ocsp::{self, CertStatus, Responder, SingleResponse};
use certkeeper_fuzz::ROOT;
use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};

fuzz_target!(|data: &[u8]| {
    let Ok(req) = ocsp::parse_request(data) else {
        return;
    };
    let now = OffsetDateTime::now_utc();
    let responses: Vec<SingleResponse> = req
        .cert_ids
        .iter()
        .map(|id| SingleResponse {
            cert_id: id.clone(),
            status: if id.matches_issuer(ROOT.cert_der()) {
                CertStatus::Good
            } else {
                CertStatus::Unknown
            },
            this_update: now - Duration::minutes(1),
            next_update: Some(now + Duration::hours(1)),
        })
        .collect();
    let responder = Responder {
        cert_der: ROOT.cert_der(),
        key: ROOT.key(),
        delegated: false,
    };
    ocsp::build_response(&responder, &responses, req.nonce.as_deref(), now)
        .expect("a request that parses is answered");
});
