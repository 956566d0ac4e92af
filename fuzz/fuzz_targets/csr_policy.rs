//! CSRs (PEM or DER) as REST, ACME finalize and EST pass them on: parse and verify, then run
//! the request through a permissive and a strict profile's policy; what the permissive
//! profile approves is signed, and the certificate must carry what was approved.
#![no_main]

use certkeeper_ca::{IssuanceRequest, Links};
use certkeeper_fuzz::{CONSTRAINED, PERMISSIVE, ROOT, STRICT};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fuzz_target!(|data: &[u8]| {
    let Ok(csr) = certkeeper_ca::parse_csr(data) else {
        return;
    };
    let _ = csr.common_name();
    let now = OffsetDateTime::now_utc();
    let req = IssuanceRequest::from_csr(&csr);
    if let Ok(approved) = STRICT.approve(req.clone(), &CONSTRAINED, now) {
        assert!(approved.dns_names().len() + approved.ip_addresses().len() <= 3);
    }
    if let Ok(approved) = PERMISSIVE.approve(req, &ROOT, now) {
        let cert = ROOT
            .issue(&approved, &Links::none())
            .expect("an approved request is signed");
        assert_eq!(cert.info.dns_names, approved.dns_names());
        let _ = certkeeper_ca::inspect_certificate(&cert.der).expect("our certificate parses");
    }
});
