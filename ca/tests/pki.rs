//! Hierarchy, issuance, policy, CRL and PKCS#12, checked with the real `openssl` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use certkeeper_ca::*;
use rcgen::PublicKeyData;
use time::{Duration, OffsetDateTime};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ck-ca-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn pem(der: &[u8]) -> String {
    pem_encode_certs([der])
}

fn links() -> Links {
    Links {
        ca_issuers_url: Some("http://127.0.0.1:8080/ca/x.crt".into()),
        ocsp_url: Some("http://127.0.0.1:8080/ocsp".into()),
        crl_url: Some("http://127.0.0.1:8080/crl/x.crl".into()),
    }
}

fn web_profile() -> Profile {
    let mut p = Profile::tls_server("web");
    p.allowed_dns_names = vec![
        ".example.com".parse().unwrap(),
        "example.com".parse().unwrap(),
    ];
    p.allowed_ip_ranges = vec!["10.0.0.0/8".parse().unwrap()];
    p
}

#[test]
fn three_level_chain_for_every_key_type_verifies_with_openssl() {
    let now = OffsetDateTime::now_utc();
    for alg in KeyAlgorithm::GENERATABLE {
        let dir = tmpdir(&format!("chain-{alg}"));
        let root = create_root(&CaSpec::new("Test Root", alg), now).unwrap();
        let root_ca = SigningCa::load(root.cert_der.clone(), &root.key_pkcs8).unwrap();
        let mut spec = CaSpec::new("Test Intermediate 1", alg);
        spec.path_len = Some(1);
        let int1 = create_intermediate(&spec, &root_ca, &links(), now).unwrap();
        let int1_ca = SigningCa::load(int1.cert_der.clone(), &int1.key_pkcs8).unwrap();
        let int2 = create_intermediate(
            &CaSpec::new("Test Intermediate 2", alg),
            &int1_ca,
            &links(),
            now,
        )
        .unwrap();
        assert_eq!(
            int2.info.path_len,
            Some(0),
            "inherits one less than the parent"
        );
        let int2_ca = SigningCa::load(int2.cert_der.clone(), &int2.key_pkcs8).unwrap();
        // A fourth level is refused: the parent has path length 0.
        let err = create_intermediate(&CaSpec::new("Too deep", alg), &int2_ca, &links(), now)
            .unwrap_err();
        assert!(err.to_string().contains("path length 0"), "{err}");

        let leaf_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let req = IssuanceRequest::for_key(&leaf_key.subject_public_key_info())
            .with_dns("www.example.com");
        let approved = web_profile().approve(req, &int2_ca, now).unwrap();
        let leaf = int2_ca.issue(&approved, &links()).unwrap();
        assert_eq!(leaf.info.serial.len(), 32);
        let root_p = write(&dir, "root.pem", pem(&root.cert_der));
        let chain_p = write(
            &dir,
            "chain.pem",
            format!("{}{}", pem(&int2.cert_der), pem(&int1.cert_der)),
        );
        let leaf_p = write(&dir, "leaf.pem", leaf.pem());
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            root_p.to_str().unwrap(),
            "-untrusted",
            chain_p.to_str().unwrap(),
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "www.example.com",
            leaf_p.to_str().unwrap(),
        ]);
        assert!(ok && out.contains(": OK"), "{alg}: {out}");
        let (_, text) = openssl(&["x509", "-in", leaf_p.to_str().unwrap(), "-noout", "-text"]);
        assert!(
            text.contains("OCSP - URI:http://127.0.0.1:8080/ocsp"),
            "{text}"
        );
        assert!(
            text.contains("CA Issuers - URI:http://127.0.0.1:8080/ca/x.crt"),
            "{text}"
        );
        assert!(
            text.contains("URI:http://127.0.0.1:8080/crl/x.crl"),
            "{text}"
        );
        assert!(text.contains("CA:FALSE"), "{text}");
    }
}

#[test]
fn policy_violations_name_the_rule() {
    let now = OffsetDateTime::now_utc();
    let root = create_root(&CaSpec::new("Policy Root", KeyAlgorithm::EcdsaP256), now).unwrap();
    let ca = SigningCa::load(root.cert_der.clone(), &root.key_pkcs8).unwrap();
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let spki = key.subject_public_key_info();
    let p = web_profile();
    let rule = |req: IssuanceRequest, p: &Profile| p.approve(req, &ca, now).unwrap_err().rule;
    assert_eq!(
        rule(IssuanceRequest::for_key(&spki).with_dns("evil.org"), &p),
        "allowed_dns_names"
    );
    let mut r = IssuanceRequest::for_key(&spki).with_dns("a.example.com");
    r.ip_addresses.push("192.168.1.1".parse().unwrap());
    assert_eq!(rule(r, &p), "allowed_ip_ranges");
    let mut r = IssuanceRequest::for_key(&spki).with_dns("a.example.com");
    r.validity = Some(Duration::days(365));
    let v = p.approve(r, &ca, now).unwrap_err();
    assert_eq!(v.rule, "max_validity_days");
    assert!(v.to_string().contains("maximum of 90 days"), "{v}");
    let mut strict = p.clone();
    strict.allowed_key_types = vec![KeyAlgorithm::Rsa(3072)];
    assert_eq!(
        rule(
            IssuanceRequest::for_key(&spki).with_dns("a.example.com"),
            &strict
        ),
        "allowed_key_types"
    );
    strict = p.clone();
    strict.allow_wildcards = false;
    assert_eq!(
        rule(
            IssuanceRequest::for_key(&spki).with_dns("*.example.com"),
            &strict
        ),
        "allow_wildcards"
    );
    assert_eq!(
        rule(IssuanceRequest::for_key(&spki), &p),
        "allowed_dns_names"
    );
    assert_eq!(
        rule(
            IssuanceRequest::for_key(&spki).with_dns("bad_name.example.com"),
            &p
        ),
        "allowed_dns_names"
    );
    // A request within policy is clamped to the CA's own end of validity.
    let mut short = CaSpec::new("Short Root", KeyAlgorithm::EcdsaP256);
    short.validity_days = 10;
    let short = create_root(&short, now).unwrap();
    let short_ca = SigningCa::load(short.cert_der.clone(), &short.key_pkcs8).unwrap();
    let ok = p
        .approve(
            IssuanceRequest::for_key(&spki).with_dns("a.example.com"),
            &short_ca,
            now,
        )
        .unwrap();
    let cert = short_ca.issue(&ok, &Links::none()).unwrap();
    assert!(cert.info.not_after <= short.info.not_after);
}

#[test]
fn name_constraints_are_written_and_enforced() {
    let now = OffsetDateTime::now_utc();
    let root = create_root(&CaSpec::new("NC Root", KeyAlgorithm::EcdsaP256), now).unwrap();
    let root_ca = SigningCa::load(root.cert_der.clone(), &root.key_pkcs8).unwrap();
    let mut spec = CaSpec::new("NC Intermediate", KeyAlgorithm::EcdsaP256);
    spec.name_constraints = Some(NameConstraintSpec {
        permitted_dns: vec!["corp.example.com".into()],
        excluded_dns: vec!["secret.corp.example.com".into()],
        permitted_ips: vec!["10.1.0.0/16".parse().unwrap()],
        excluded_ips: vec![],
    });
    let int = create_intermediate(&spec, &root_ca, &Links::none(), now).unwrap();
    let ca = SigningCa::load(int.cert_der.clone(), &int.key_pkcs8).unwrap();
    let mut p = Profile::tls_server("any");
    p.allowed_dns_names = vec!["*".parse().unwrap()];
    p.allowed_ip_ranges = vec!["0.0.0.0/0".parse().unwrap()];
    let key = KeyAlgorithm::Ed25519.generate().unwrap();
    let spki = key.subject_public_key_info();
    assert!(
        p.approve(
            IssuanceRequest::for_key(&spki).with_dns("a.corp.example.com"),
            &ca,
            now
        )
        .is_ok()
    );
    let e = p
        .approve(
            IssuanceRequest::for_key(&spki).with_dns("a.other.com"),
            &ca,
            now,
        )
        .unwrap_err();
    assert_eq!(e.rule, "ca_name_constraints");
    let e = p
        .approve(
            IssuanceRequest::for_key(&spki).with_dns("x.secret.corp.example.com"),
            &ca,
            now,
        )
        .unwrap_err();
    assert!(e.detail.contains("excluded"), "{e}");
    let mut r = IssuanceRequest::for_key(&spki).with_dns("a.corp.example.com");
    r.ip_addresses.push("10.2.0.1".parse().unwrap());
    assert_eq!(
        p.approve(r, &ca, now).unwrap_err().rule,
        "ca_name_constraints"
    );
    let dir = tmpdir("nc");
    let p_int = write(&dir, "int.pem", pem(&int.cert_der));
    let (_, text) = openssl(&["x509", "-in", p_int.to_str().unwrap(), "-noout", "-text"]);
    assert!(
        text.contains("Permitted:") && text.contains("DNS:corp.example.com"),
        "{text}"
    );
}

#[test]
fn crl_lists_revoked_serials_and_openssl_verifies_it() {
    let now = OffsetDateTime::now_utc();
    let root = create_root(&CaSpec::new("CRL Root", KeyAlgorithm::EcdsaP384), now).unwrap();
    let ca = SigningCa::load(root.cert_der.clone(), &root.key_pkcs8).unwrap();
    let entries = vec![RevokedEntry {
        serial_hex: "4a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d".into(),
        revoked_at: now,
        reason: reason_from_code(1),
    }];
    let crl = build_crl(
        &ca,
        &entries,
        7,
        now,
        now + Duration::days(1),
        Some("http://x/crl"),
    )
    .unwrap();
    let dir = tmpdir("crl");
    let crl_p = write(&dir, "ca.crl", &crl);
    let root_p = write(&dir, "root.pem", pem(&root.cert_der));
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_p.to_str().unwrap(),
        "-CAfile",
        root_p.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    assert!(
        out.to_uppercase()
            .contains("4A0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D"),
        "{out}"
    );
    assert!(out.contains("Key Compromise"), "{out}");
    assert!(
        out.contains("X509v3 CRL Number") && out.contains("7"),
        "{out}"
    );
    assert!(reason_from_code(7).is_none());
}

#[test]
fn imports_external_and_pending_cas_and_rejects_mismatches() {
    let now = OffsetDateTime::now_utc();
    let dir = tmpdir("import");
    // An "external" root made by openssl.
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=External Root",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        dir.join("ext.key").to_str().unwrap(),
        "-out",
        dir.join("ext.pem").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let cert = std::fs::read(dir.join("ext.pem")).unwrap();
    let key = std::fs::read(dir.join("ext.key")).unwrap();
    let imported = import_ca(&cert, &key).unwrap();
    assert_eq!(imported.info.subject, "CN=External Root");
    let other = KeyAlgorithm::EcdsaP256.generate().unwrap();
    assert!(matches!(
        import_ca(&cert, other.serialize_pem().as_bytes()),
        Err(CaError::BadKey(_))
    ));
    assert!(import_ca(b"not a cert", &key).is_err());

    // A pending intermediate whose CSR openssl signs with the external root.
    let pending =
        PendingCa::new(&CaSpec::new("Pending Int", KeyAlgorithm::EcdsaP256), now).unwrap();
    write(&dir, "int.csr", pending.csr_pem());
    write(
        &dir,
        "ext.cnf",
        "[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n",
    );
    let (ok, out) = openssl(&[
        "x509",
        "-req",
        "-in",
        dir.join("int.csr").to_str().unwrap(),
        "-CA",
        dir.join("ext.pem").to_str().unwrap(),
        "-CAkey",
        dir.join("ext.key").to_str().unwrap(),
        "-days",
        "10",
        "-extfile",
        dir.join("ext.cnf").to_str().unwrap(),
        "-extensions",
        "v3",
        "-out",
        dir.join("int.pem").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let signed = std::fs::read(dir.join("int.pem")).unwrap();
    let installed = install_signed(&pending.key_pkcs8, &signed).unwrap();
    assert_eq!(installed.info.issuer, "CN=External Root");
    // A certificate for another key is refused.
    assert!(install_signed(&other.serialize_der(), &signed).is_err());
    // A non-CA certificate is refused.
    let leaf_ca = SigningCa::load(installed.cert_der.clone(), &installed.key_pkcs8).unwrap();
    let mut p = Profile::tls_server("p");
    p.allowed_dns_names = vec!["*".parse().unwrap()];
    let leaf_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let leaf = leaf_ca
        .issue(
            &p.approve(
                IssuanceRequest::for_key(&leaf_key.subject_public_key_info()).with_dns("a.b"),
                &leaf_ca,
                now,
            )
            .unwrap(),
            &Links::none(),
        )
        .unwrap();
    let e = import_ca(leaf.pem().as_bytes(), leaf_key.serialize_pem().as_bytes()).unwrap_err();
    assert!(e.to_string().contains("not a CA"), "{e}");
}

#[test]
fn csr_parsing_checks_the_signature() {
    let dir = tmpdir("csr");
    let (ok, out) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=www.example.com/O=Acme",
        "-addext",
        "subjectAltName=DNS:www.example.com,IP:10.0.0.5",
        "-keyout",
        dir.join("k.pem").to_str().unwrap(),
        "-out",
        dir.join("r.csr").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let csr = std::fs::read(dir.join("r.csr")).unwrap();
    let parsed = parse_csr(&csr).unwrap();
    assert_eq!(parsed.key_algorithm, KeyAlgorithm::Rsa(2048));
    assert_eq!(parsed.dns_names, vec!["www.example.com"]);
    assert_eq!(
        parsed.ip_addresses,
        vec!["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(parsed.common_name(), Some("www.example.com"));
    // Flip a byte in the signature: proof of possession fails.
    let mut der = ::pem::parse(&csr).unwrap().into_contents();
    let n = der.len();
    der[n - 5] ^= 0x55;
    let e = parse_csr(&der).unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
    assert!(parse_csr(b"garbage").is_err());
    assert!(parse_csr(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
}

#[test]
fn pkcs12_opens_with_openssl() {
    let now = OffsetDateTime::now_utc();
    let root = create_root(&CaSpec::new("P12 Root", KeyAlgorithm::EcdsaP256), now).unwrap();
    let ca = SigningCa::load(root.cert_der.clone(), &root.key_pkcs8).unwrap();
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let mut p = Profile::tls_server("p");
    p.allowed_dns_names = vec!["*".parse().unwrap()];
    let cert = ca
        .issue(
            &p.approve(
                IssuanceRequest::for_key(&key.subject_public_key_info()).with_dns("p12.test"),
                &ca,
                now,
            )
            .unwrap(),
            &Links::none(),
        )
        .unwrap();
    let p12 = export_pkcs12(
        &key.serialize_der(),
        &cert.der,
        std::slice::from_ref(&root.cert_der),
        "s3cret",
        "p12.test",
    )
    .unwrap();
    let dir = tmpdir("p12");
    let f = write(&dir, "b.p12", p12);
    let (ok, out) = openssl(&[
        "pkcs12",
        "-in",
        f.to_str().unwrap(),
        "-passin",
        "pass:s3cret",
        "-nodes",
        "-info",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("BEGIN PRIVATE KEY") && out.contains("CN=p12.test"),
        "{out}"
    );
    let (ok, _) = openssl(&[
        "pkcs12",
        "-in",
        f.to_str().unwrap(),
        "-passin",
        "pass:wrong",
        "-nodes",
    ]);
    assert!(!ok);
}

/// A DNS name over RFC 5280's 64-character bound for a CN is issued with no CN (its names
/// in a critical subjectAltName), and a shorter requested name is the CN when there is one.
#[test]
fn names_longer_than_a_common_name_are_issued_without_one() {
    let now = OffsetDateTime::now_utc();
    let dir = tmpdir("long-cn");
    let root = create_root(&CaSpec::new("Long Root", KeyAlgorithm::EcdsaP256), now).unwrap();
    let ca = SigningCa::load(root.cert_der.clone(), &root.key_pkcs8).unwrap();
    let long = format!("{}.service.example.com", "a".repeat(60));
    assert!(long.len() > 64);
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let req = IssuanceRequest::for_key(&key.subject_public_key_info()).with_dns(&long);
    let approved = web_profile().approve(req, &ca, now).unwrap();
    let leaf = ca.issue(&approved, &links()).unwrap();
    assert_eq!(leaf.info.dns_names, vec![long.clone()]);
    let root_p = write(&dir, "root.pem", pem(&root.cert_der));
    let leaf_p = write(&dir, "leaf.pem", leaf.pem());
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        root_p.to_str().unwrap(),
        "-purpose",
        "sslserver",
        "-verify_hostname",
        &long,
        leaf_p.to_str().unwrap(),
    ]);
    assert!(ok && out.contains(": OK"), "{out}");
    let (_, text) = openssl(&["x509", "-in", leaf_p.to_str().unwrap(), "-noout", "-text"]);
    assert!(!text.contains("CN="), "no CN: {text}");
    assert!(
        text.contains("X509v3 Subject Alternative Name: critical"),
        "{text}"
    );

    // With a short name beside it, the short one is the CN.
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let req = IssuanceRequest::for_key(&key.subject_public_key_info())
        .with_dns(&long)
        .with_dns("www.example.com");
    let approved = web_profile().approve(req, &ca, now).unwrap();
    let leaf = ca.issue(&approved, &links()).unwrap();
    assert_eq!(leaf.info.subject, "CN=www.example.com");
}
