//! What the fuzz targets share: a signing CA made once per process, the two profiles a CSR
//! is run through, and the splitting of one input into several DER objects.

use std::sync::LazyLock;

use certkeeper_ca::{CaSpec, KeyAlgorithm, NameConstraintSpec, Profile, SigningCa};
use time::OffsetDateTime;

/// A P-256 root CA (made at first use) that signs and answers OCSP in the targets.
pub static ROOT: LazyLock<SigningCa> = LazyLock::new(|| {
    let root = certkeeper_ca::create_root(
        &CaSpec::new("Fuzz Root", KeyAlgorithm::EcdsaP256),
        OffsetDateTime::now_utc(),
    )
    .expect("root CA");
    SigningCa::load(root.cert_der, &root.key_pkcs8).expect("load root CA")
});

/// An intermediate under [`ROOT`] with DNS and IP name constraints, for the strict profile.
pub static CONSTRAINED: LazyLock<SigningCa> = LazyLock::new(|| {
    let mut spec = CaSpec::new("Fuzz Constrained", KeyAlgorithm::EcdsaP256);
    spec.name_constraints = Some(NameConstraintSpec {
        permitted_dns: vec!["example.com".into()],
        excluded_dns: vec!["secret.example.com".into()],
        permitted_ips: vec!["10.0.0.0/8".parse().expect("CIDR")],
        ..Default::default()
    });
    let ca = certkeeper_ca::create_intermediate(
        &spec,
        &ROOT,
        &certkeeper_ca::Links::none(),
        OffsetDateTime::now_utc(),
    )
    .expect("intermediate CA");
    SigningCa::load(ca.cert_der, &ca.key_pkcs8).expect("load intermediate CA")
});

fn profile(json: serde_json::Value) -> Profile {
    let p: Profile = serde_json::from_value(json).expect("profile JSON");
    p.validate().expect("valid profile");
    p
}

/// A profile that allows any name, any address and copies the subject: the most of a CSR
/// reaches the certificate.
pub static PERMISSIVE: LazyLock<Profile> = LazyLock::new(|| {
    profile(serde_json::json!({
        "name": "permissive",
        "allowed_dns_names": ["*"],
        "allowed_ip_ranges": ["0.0.0.0/0", "::/0"],
        "copy_subject": true,
        "max_names": 1000,
        "max_validity_days": 3650,
    }))
});

/// A profile with every rule narrowed: one key type, names under `.example.com` and in
/// 10.0.0.0/8 only, no wildcards, at most three names, a short validity.
pub static STRICT: LazyLock<Profile> = LazyLock::new(|| {
    profile(serde_json::json!({
        "name": "strict",
        "allowed_key_types": ["ecdsa-p256"],
        "allowed_dns_names": [".example.com", "example.com"],
        "allow_wildcards": false,
        "allowed_ip_ranges": ["10.0.0.0/8"],
        "max_names": 3,
        "max_validity_days": 30,
    }))
});

/// Split `data` into consecutive DER TLVs by their outer length (definite lengths of up to
/// four octets); whatever does not fit a header is the last piece. At most `max` pieces.
pub fn split_der(mut data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() + 1 < max {
        let Some(len) = tlv_len(data) else { break };
        let (piece, rest) = data.split_at(len.min(data.len()));
        out.push(piece);
        data = rest;
    }
    if !data.is_empty() {
        out.push(data);
    }
    out
}

/// The whole length (header and content) of the TLV at the start of `data`.
fn tlv_len(data: &[u8]) -> Option<usize> {
    let first = *data.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let bytes = data.get(2..2 + n)?;
    let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Some(2 + n + len)
}
