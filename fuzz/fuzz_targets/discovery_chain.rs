//! Certificate chains as a discovery probe receives them from a TLS server: the input is
//! consecutive DER certificates (leaf first). Each is inspected alone, and the chain is
//! analysed with the last presented certificate as a trust anchor and the test CA as
//! certkeeper's own, with and without a server name.
#![no_main]

use certkeeper_discovery::{AnalysisContext, analyze_chain, certificate_info};
use certkeeper_fuzz::{ROOT, split_der};
use libfuzzer_sys::fuzz_target;

/// As many certificates as a probe keeps and a few more.
const MAX_CERTS: usize = 12;

fuzz_target!(|data: &[u8]| {
    let chain: Vec<Vec<u8>> = split_der(data, MAX_CERTS)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    for der in &chain {
        let _ = certificate_info(der);
        let _ = certkeeper_ca::inspect_certificate(der);
    }
    let ctx = AnalysisContext {
        now: 1_796_000_000,
        alert_window: 30 * 86_400,
        our_cas: vec![ROOT.cert_der().to_vec()],
        trust_anchors: chain.last().cloned().into_iter().collect(),
    };
    for name in [None, Some("www.example.com"), Some("10.0.0.1")] {
        let report = analyze_chain(&chain, name, false, &ctx);
        assert!(report.certificates.len() <= chain.len());
    }
    let _ = certkeeper_ca::parse_pem_or_der_certs(data);
});
