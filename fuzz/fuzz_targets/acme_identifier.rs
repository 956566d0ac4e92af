//! ACME identifiers as newOrder's payload carries them, and the DNS name syntax under
//! them: checking and normalising must not fail on any text, must be idempotent, and a
//! profile's name rules must take whatever normalisation gives.
#![no_main]

use certkeeper_acme::Identifier;
use certkeeper_ca::{DnsRule, normalize_dns_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ids) = serde_json::from_slice::<Vec<Identifier>>(data) {
        for id in ids {
            if let Ok(checked) = id.checked() {
                assert_eq!(checked.checked().expect("checked twice"), checked);
                let _ = checked.challenge_types();
                let _ = checked.base();
            }
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = normalize_dns_name(text) {
        assert_eq!(normalize_dns_name(&n).as_deref(), Ok(n.as_str()));
        for rule in ["*", "example.com", "*.example.com", ".example.com"] {
            let _ = rule.parse::<DnsRule>().expect("rule").allows(&n);
        }
    }
    if let Ok(id) = Identifier::dns(text) {
        assert_eq!(Identifier::dns(&id.value).expect("dns twice"), id);
    }
    if let Ok(rule) = text.parse::<DnsRule>() {
        let _ = rule.allows("www.example.com");
        let shown = rule.to_string();
        assert_eq!(shown.parse::<DnsRule>().expect("rule shown parses"), rule);
    }
});
