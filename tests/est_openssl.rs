//! EST (RFC 7030) as an operator would use it: `curl` and `openssl` only, against the real
//! server on SQLite and PostgreSQL. Every issued certificate is checked with `openssl verify`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use reqwest::Method;
use serde_json::json;

/// Run a shell pipeline; returns (success, stdout, stderr).
fn sh(script: &str) -> (bool, String, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn q(path: &Path) -> String {
    format!("'{}'", path.display())
}

fn verify(root: &Path, untrusted: &Path, cert: &Path) {
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(root),
        "-untrusted",
        p(untrusted),
        p(cert),
    ]);
    assert!(ok && out.contains(": OK"), "openssl verify: {out}");
}

async fn operator_flow(db: Db) {
    let s = TestServer::start(db).await;
    let dir = s.dir.path();
    let root = s.write("root.pem", &s.root_pem);
    // What curl trusts for the server's HTTPS: the server CA (root.pem is what issues).
    let server_ca = s.write("server-ca.pem", &s.server_ca_pem);
    // The EST listener that asks for client certificates (re-enrollment uses one).
    let est = s.est_url("/.well-known/est");

    // cacerts: the chain as certs-only CMS, readable by openssl pkcs7.
    let cacerts = dir.join("cacerts.pem");
    let (ok, out, err) = sh(&format!(
        "curl -sSf --cacert {} {est}/cacerts | base64 -d | openssl pkcs7 -inform DER -print_certs -out {}",
        q(&server_ca),
        q(&cacerts)
    ));
    assert!(ok, "{out}{err}");
    let chain_text = std::fs::read_to_string(&cacerts).unwrap();
    assert_eq!(
        chain_text.matches("BEGIN CERTIFICATE").count(),
        2,
        "{chain_text}"
    );
    let (ok, out) = openssl(&["verify", "-CAfile", p(&root), p(&cacerts)]);
    assert!(
        ok,
        "the chain's first certificate verifies to the root: {out}"
    );

    // An HTTP Basic credential good for two enrollments.
    let (status, cred) = s
        .api(
            Method::POST,
            "/est/credentials",
            Some(json!({"username": "router-7", "max_uses": 2})),
        )
        .await;
    assert_eq!(status, 201, "{cred}");
    let password = cred["password"].as_str().unwrap();

    // simpleenroll with a CSR made by openssl req.
    let (key, _) = openssl_csr(
        dir,
        "router",
        "/CN=router-7.example.net",
        "DNS:router-7.example.net",
        EC_P256,
    );
    let cert = dir.join("router.pem");
    let (ok, out, err) = sh(&format!(
        "openssl req -in {csr} -outform DER | base64 > {b64} && \
         curl -sSf --cacert {server_ca} -u 'router-7:{password}' -H 'Content-Type: application/pkcs10' \
              --data-binary @{b64} {est}/simpleenroll -D {hdr} -o {p7} && \
         base64 -d {p7} | openssl pkcs7 -inform DER -print_certs -out {cert}",
        csr = q(&dir.join("router.csr")),
        b64 = q(&dir.join("router.b64")),
        server_ca = q(&server_ca),
        hdr = q(&dir.join("enroll.headers")),
        p7 = q(&dir.join("router.p7")),
        cert = q(&cert),
    ));
    assert!(ok, "{out}{err}");
    let headers = std::fs::read_to_string(dir.join("enroll.headers"))
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("content-type: application/pkcs7-mime; smime-type=certs-only"),
        "{headers}"
    );
    assert!(
        headers.contains("content-transfer-encoding: base64"),
        "{headers}"
    );
    verify(&root, &cacerts, &cert);
    let (_, text) = openssl(&[
        "x509",
        "-in",
        p(&cert),
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName",
    ]);
    assert!(text.contains("router-7.example.net"), "{text}");

    // simplereenroll, authenticated by the issued certificate as TLS client certificate.
    let renewed = dir.join("renewed.pem");
    let (ok, out, err) = sh(&format!(
        "curl -sSf --cacert {server_ca} --cert {cert} --key {key} -H 'Content-Type: application/pkcs10' \
              --data-binary @{b64} {est}/simplereenroll | base64 -d | \
         openssl pkcs7 -inform DER -print_certs -out {renewed}",
        server_ca = q(&server_ca),
        cert = q(&cert),
        key = q(&key),
        b64 = q(&dir.join("router.b64")),
        renewed = q(&renewed),
    ));
    assert!(ok, "{out}{err}");
    verify(&root, &cacerts, &renewed);
    assert_ne!(
        std::fs::read_to_string(&renewed).unwrap(),
        std::fs::read_to_string(&cert).unwrap()
    );

    // serverkeygen: the server makes the key; multipart/mixed with PKCS#8 and certs-only.
    let (ok, out, err) = sh(&format!(
        "openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=sensor.example.net \
              -addext subjectAltName=DNS:sensor.example.net -keyout /dev/null -outform DER | base64 | \
         curl -sSf --cacert {server_ca} -u 'router-7:{password}' -H 'Content-Type: application/pkcs10' \
              --data-binary @- {est}/serverkeygen -D {hdr} -o {body}",
        server_ca = q(&server_ca),
        hdr = q(&dir.join("keygen.headers")),
        body = q(&dir.join("keygen.body")),
    ));
    assert!(ok, "{out}{err}");
    let headers = std::fs::read_to_string(dir.join("keygen.headers")).unwrap();
    let boundary = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-type: multipart/mixed")
                .then(|| l.split("boundary=").nth(1).unwrap().trim().to_string())
        })
        .unwrap_or_else(|| panic!("multipart/mixed: {headers}"));
    let body = std::fs::read_to_string(dir.join("keygen.body")).unwrap();
    let parts: Vec<&str> = body
        .split(&format!("--{boundary}"))
        .filter(|p| p.contains("Content-Type"))
        .collect();
    assert_eq!(parts.len(), 2, "{body}");
    let part_body = |part: &str| part.split("\r\n\r\n").nth(1).unwrap().to_string();
    assert!(
        parts[0].contains("Content-Type: application/pkcs8"),
        "{}",
        parts[0]
    );
    assert!(parts[1].contains("smime-type=certs-only"), "{}", parts[1]);
    s.write("keygen.key.b64", part_body(parts[0]));
    s.write("keygen.p7.b64", part_body(parts[1]));
    let (ok, out, err) = sh(&format!(
        "base64 -d {kb} | openssl pkey -inform DER -out {key} && \
         base64 -d {cb} | openssl pkcs7 -inform DER -print_certs -out {cert} && \
         openssl x509 -in {cert} -noout -pubkey > {p1} && openssl pkey -in {key} -pubout > {p2} && cmp {p1} {p2}",
        kb = q(&dir.join("keygen.key.b64")),
        key = q(&dir.join("keygen.key")),
        cb = q(&dir.join("keygen.p7.b64")),
        cert = q(&dir.join("keygen.pem")),
        p1 = q(&dir.join("p1")),
        p2 = q(&dir.join("p2")),
    ));
    assert!(
        ok,
        "the generated key belongs to the certificate: {out}{err}"
    );
    verify(&root, &cacerts, &dir.join("keygen.pem"));

    // The credential allowed two enrollments: a third is refused with a Basic challenge.
    let (ok, out, _) = sh(&format!(
        "curl -s --cacert {server_ca} -u 'router-7:{password}' -H 'Content-Type: application/pkcs10' \
              --data-binary @{b64} {est}/simpleenroll -D - -o /dev/null",
        server_ca = q(&server_ca),
        b64 = q(&dir.join("router.b64")),
    ));
    assert!(ok, "{out}");
    assert!(
        out.starts_with("HTTP/2 401") || out.starts_with("HTTP/1.1 401"),
        "{out}"
    );
    assert!(
        out.to_ascii_lowercase().contains("www-authenticate: basic"),
        "{out}"
    );
}

#[tokio::test]
async fn operator_flow_sqlite() {
    operator_flow(Db::Sqlite).await;
}

#[tokio::test]
async fn operator_flow_postgres() {
    operator_flow(Db::Postgres).await;
}
