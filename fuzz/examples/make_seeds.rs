//! Writes the seed corpora under `fuzz/corpus/<target>/`: the same kinds of input the test
//! suite sends (ACME JWS signed with each account key type, JWKs, identifiers, CSRs made
//! with rcgen as the CLI makes them, EST bodies, OCSP requests made by `openssl ocsp` as in
//! the CA crate's OCSP tests, and chains issued by the CA crate). Run it from `fuzz/` with
//! `cargo run --example make_seeds`; each file is a few KiB at most.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use certkeeper_ca::est_wire;
use certkeeper_ca::{
    CaSpec, IssuanceRequest, KeyAlgorithm, Links, Profile, PublicKeyData, SigningCa,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Signs a JWS's signing input.
type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// An account key: its JWK and `alg`, and how it signs.
struct AccountKey {
    jwk: Value,
    alg: &'static str,
    sign: Signer,
}

fn ec_key(curve: &'static str) -> AccountKey {
    let (alg, fixed, half) = match curve {
        "P-256" => ("ES256", &ECDSA_P256_SHA256_FIXED_SIGNING, 32),
        _ => ("ES384", &ECDSA_P384_SHA384_FIXED_SIGNING, 48),
    };
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(fixed, &rng).expect("EC key");
    let kp = EcdsaKeyPair::from_pkcs8(fixed, pkcs8.as_ref()).expect("EC key");
    let point = kp.public_key().as_ref().to_vec();
    AccountKey {
        jwk: json!({"kty": "EC", "crv": curve,
            "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])}),
        alg,
        sign: Box::new(move |m| {
            kp.sign(&SystemRandom::new(), m)
                .expect("sign")
                .as_ref()
                .to_vec()
        }),
    }
}

fn ed_key() -> AccountKey {
    let kp = Ed25519KeyPair::generate().expect("Ed25519 key");
    AccountKey {
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())}),
        alg: "EdDSA",
        sign: Box::new(move |m| kp.sign(m).as_ref().to_vec()),
    }
}

fn rsa_key() -> AccountKey {
    let kp = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key");
    let c = PublicKeyComponents::<Vec<u8>>::from(kp.public_key());
    AccountKey {
        jwk: json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)}),
        alg: "RS256",
        sign: Box::new(move |m| {
            let mut sig = vec![0; kp.public_modulus_len()];
            kp.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), m, &mut sig)
                .expect("sign");
            sig
        }),
    }
}

/// A flattened JWS over `header` and `payload` (`None`: POST-as-GET), signed by `sign`.
fn flattened(header: &Value, payload: Option<&Value>, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let protected = b64(header.to_string().as_bytes());
    let payload = payload
        .map(|p| b64(p.to_string().as_bytes()))
        .unwrap_or_default();
    let sig = sign(format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64(&sig)})
        .to_string()
        .into_bytes()
}

/// A JWS signed by an account key.
fn jws(key: &AccountKey, mut header: Value, payload: Option<&Value>) -> Vec<u8> {
    header["alg"] = json!(key.alg);
    flattened(&header, payload, &key.sign)
}

/// A JWS with an HS256 MAC, as the external account binding's inner JWS.
fn hs256_jws(mac_key: &[u8], mut header: Value, payload: &Value) -> Vec<u8> {
    header["alg"] = json!("HS256");
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, mac_key);
    flattened(&header, Some(payload), &|m| {
        aws_lc_rs::hmac::sign(&k, m).as_ref().to_vec()
    })
}

/// A CSR as the CLI and the tests make it, with rcgen.
fn csr(alg: KeyAlgorithm, subject: &[(rcgen::DnType, &str)], sans: &[&str]) -> Vec<u8> {
    let key = alg.generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    for (t, v) in subject {
        dn.push(t.clone(), *v);
    }
    params.distinguished_name = dn;
    for s in sans {
        params.subject_alt_names.push(match s.parse() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName((*s).try_into().expect("DNS name")),
        });
    }
    params.serialize_request(&key).expect("CSR").der().to_vec()
}

struct Corpus(PathBuf);

impl Corpus {
    fn write(&self, target: &str, name: &str, data: impl AsRef<[u8]>) {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), data).expect("write seed");
    }
}

/// OCSP requests from `openssl ocsp -reqout`, as the CA crate's OCSP tests make them.
fn ocsp_requests(out: &Corpus, issuer_der: &[u8], leaf_der: &[u8]) {
    let dir = std::env::temp_dir().join(format!("certkeeper-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("issuer.pem"), pem_cert(issuer_der)).expect("write");
    std::fs::write(dir.join("leaf.pem"), pem_cert(leaf_der)).expect("write");
    let runs: [(&str, &[&str]); 4] = [
        ("leaf_nonce", &["-cert", "leaf.pem"]),
        ("leaf_no_nonce", &["-cert", "leaf.pem", "-no_nonce"]),
        (
            "sha256_two_serials",
            &["-sha256", "-serial", "0x1234", "-serial", "77"],
        ),
        (
            "sha384_serial",
            &["-sha384", "-serial", "0x00ff00ff00ff00ff00", "-no_nonce"],
        ),
    ];
    for (name, args) in runs {
        let status = Command::new("openssl")
            .current_dir(&dir)
            .args(["ocsp", "-issuer", "issuer.pem", "-reqout", "req.der"])
            .args(args)
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl ocsp {args:?}");
        out.write(
            "ocsp_request",
            name,
            std::fs::read(dir.join("req.der")).expect("read"),
        );
    }
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}

fn pem_cert(der: &[u8]) -> String {
    certkeeper_ca::pem_encode_certs([der])
}

fn main() {
    let root_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let out = Corpus(root_dir);
    let now = OffsetDateTime::now_utc();

    // ACME: JWS bodies and their JWKs.
    let url = "https://acme.example/acme/new-order";
    let kid = "https://acme.example/acme/account/01JD8Z";
    let order = json!({"identifiers": [{"type": "dns", "value": "www.example.com"},
        {"type": "ip", "value": "10.0.0.1"}]});
    for (name, key) in [
        ("es256", ec_key("P-256")),
        ("es384", ec_key("P-384")),
        ("eddsa", ed_key()),
        ("rs256", rsa_key()),
    ] {
        out.write("acme_jwk", name, key.jwk.to_string());
        let account = json!({"termsOfServiceAgreed": true, "contact": ["mailto:ops@example.com"]});
        out.write(
            "acme_jws",
            &format!("new_account_{name}"),
            jws(
                &key,
                json!({"nonce": "bm9uY2U", "url": url, "jwk": key.jwk}),
                Some(&account),
            ),
        );
        if name == "es256" {
            let hdr = json!({"nonce": "bm9uY2U", "url": url, "kid": kid});
            out.write(
                "acme_jws",
                "new_order_kid",
                jws(&key, hdr.clone(), Some(&order)),
            );
            out.write("acme_jws", "post_as_get_kid", jws(&key, hdr, None));
            let eab = hs256_jws(
                b"an external account binding key",
                json!({"kid": "eab-1", "url": "https://acme.example/acme/new-account"}),
                &key.jwk,
            );
            out.write("acme_jws", "eab_inner_hs256", eab);
        }
    }

    // ACME identifiers: names, addresses and newOrder's list.
    for (name, text) in [
        ("dns", "www.example.com"),
        ("dns_upper_dot", "WWW.Example.COM."),
        ("wildcard", "*.example.com"),
        ("localhost", "localhost"),
        ("rule_suffix", ".example.com"),
    ] {
        out.write("acme_identifier", name, text);
    }
    out.write(
        "acme_identifier",
        "new_order_list",
        order["identifiers"].to_string(),
    );
    out.write(
        "acme_identifier",
        "ipv6_list",
        json!([{"type": "ip", "value": "2001:db8::1"}, {"type": "dns", "value": "*.example.org"}])
            .to_string(),
    );

    // CSRs, DER and PEM, each key type, with subjects and both kinds of names.
    use rcgen::DnType::{CommonName, CountryName, OrganizationName, OrganizationalUnitName};
    let p256 = csr(
        KeyAlgorithm::EcdsaP256,
        &[
            (CommonName, "www.example.com"),
            (OrganizationName, "Example"),
            (CountryName, "DE"),
        ],
        &[
            "www.example.com",
            "api.example.com",
            "10.0.0.1",
            "2001:db8::1",
        ],
    );
    out.write("csr_policy", "p256_names.der", &p256);
    out.write(
        "csr_policy",
        "p256_names.pem",
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", p256.clone())),
    );
    out.write(
        "csr_policy",
        "p384_wildcard.der",
        csr(
            KeyAlgorithm::EcdsaP384,
            &[(OrganizationalUnitName, "Ops")],
            &["*.example.com"],
        ),
    );
    out.write(
        "csr_policy",
        "ed25519_ip.der",
        csr(
            KeyAlgorithm::Ed25519,
            &[(CommonName, "10.1.2.3")],
            &["10.1.2.3"],
        ),
    );
    let rsa = csr(
        KeyAlgorithm::Rsa(2048),
        &[(CommonName, "rsa.example.com")],
        &["rsa.example.com"],
    );
    out.write("csr_policy", "rsa2048.der", &rsa);

    // A chain from the CA crate: root, intermediate, leaf.
    let root = certkeeper_ca::create_root(&CaSpec::new("Seed Root", KeyAlgorithm::EcdsaP256), now)
        .expect("root");
    let root_ca = SigningCa::load(root.cert_der.clone(), &root.key_pkcs8).expect("root");
    let inter = certkeeper_ca::create_intermediate(
        &CaSpec::new("Seed Issuing CA", KeyAlgorithm::EcdsaP384),
        &root_ca,
        &Links::none(),
        now,
    )
    .expect("intermediate");
    let inter_ca = SigningCa::load(inter.cert_der.clone(), &inter.key_pkcs8).expect("inter");
    let mut profile = Profile::tls_server("seeds");
    profile.allowed_dns_names = vec!["*".parse().expect("rule")];
    let leaf_key = KeyAlgorithm::EcdsaP256.generate().expect("leaf key");
    let req =
        IssuanceRequest::for_key(&leaf_key.subject_public_key_info()).with_dns("www.example.com");
    let approved = profile.approve(req, &inter_ca, now).expect("approve");
    let leaf = inter_ca
        .issue(&approved, &Links::none())
        .expect("issue")
        .der;
    let self_signed = rcgen::CertificateParams::new(vec!["self.example.com".into()])
        .expect("params")
        .self_signed(&leaf_key)
        .expect("self-signed")
        .der()
        .to_vec();

    // EST: base64 bodies of the CSRs, certs-only CMS of the chain.
    out.write("est_body", "enroll_p256.b64", est_wire::base64_lines(&p256));
    out.write("est_body", "enroll_rsa.b64", est_wire::base64_lines(&rsa));
    let cms = est_wire::certs_only(&[&inter.cert_der, &root.cert_der]);
    out.write("est_body", "cacerts.p7", &cms);
    out.write("est_body", "cacerts.p7.b64", est_wire::base64_lines(&cms));
    out.write("est_body", "enrolled.p7", est_wire::certs_only(&[&leaf]));

    // Discovery: chains as servers present them.
    let cat = |parts: &[&[u8]]| parts.concat();
    out.write(
        "discovery_chain",
        "leaf_inter_root",
        cat(&[&leaf, &inter.cert_der, &root.cert_der]),
    );
    out.write(
        "discovery_chain",
        "leaf_inter",
        cat(&[&leaf, &inter.cert_der]),
    );
    out.write("discovery_chain", "leaf_only", &leaf);
    out.write("discovery_chain", "self_signed", &self_signed);
    out.write(
        "discovery_chain",
        "pem_chain",
        pem_cert(&leaf) + &pem_cert(&inter.cert_der),
    );

    // OCSP requests for the leaf and for bare serials.
    ocsp_requests(&out, &inter.cert_der, &leaf);
}
