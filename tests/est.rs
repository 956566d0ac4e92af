//! EST (RFC 7030) with the Rust client (`certkeeper_cli::est::EstClient`) against the
//! real server on SQLite and PostgreSQL: every endpoint, every refusal, the audit trail of
//! refusals, nothing stored by a refused request, channel binding over a raw TLS
//! connection, and `certkeeper est enroll` enrolling and renewing a host.

mod common;

use std::sync::Arc;

use base64::Engine;
use certkeeper_cli::est::{Basic, EstClient, EstClientError};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The EST listener that asks for client certificates (`est.mtls_listen`): Basic and
/// certificate authentication both work there.
fn server(s: &TestServer) -> String {
    format!("https://localhost:{}", s.est_port)
}

fn client(s: &TestServer, label: Option<&str>) -> EstClient {
    EstClient::new(&server(s), label, Some(s.server_ca_pem.as_bytes()), None).unwrap()
}

fn client_with_identity(
    s: &TestServer,
    label: Option<&str>,
    cert_der: &[u8],
    key: &rcgen::KeyPair,
) -> EstClient {
    let pem = format!(
        "{}{}",
        certkeeper_ca::pem_encode_certs([cert_der]),
        key.serialize_pem()
    );
    EstClient::new(
        &server(s),
        label,
        Some(s.server_ca_pem.as_bytes()),
        Some(pem.as_bytes()),
    )
    .unwrap()
}

/// A key and a DER CSR for `cn` with DNS names, with optional extra attributes.
fn csr_with(
    alg: certkeeper_ca::KeyAlgorithm,
    cn: &str,
    dns: &[&str],
    attrs: Vec<rcgen::Attribute>,
) -> (rcgen::KeyPair, Vec<u8>) {
    let key = alg.generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let csr = params
        .serialize_request_with_attributes(&key, attrs)
        .unwrap();
    (key, csr.der().to_vec())
}

fn csr(cn: &str, dns: &[&str]) -> (rcgen::KeyPair, Vec<u8>) {
    csr_with(certkeeper_ca::KeyAlgorithm::EcdsaP256, cn, dns, Vec::new())
}

fn challenge_password(value: &str) -> rcgen::Attribute {
    rcgen::Attribute {
        oid: &[1, 2, 840, 113549, 1, 9, 7],
        values: yasna::construct_der(|w| w.write_set(|w| w.next().write_utf8_string(value))),
    }
}

fn status_of(e: &EstClientError) -> u16 {
    match e {
        EstClientError::Status { status, .. } => status.as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

fn detail_of(e: &EstClientError) -> String {
    match e {
        EstClientError::Status { detail, .. } => detail.clone(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

fn verify_with_openssl(s: &TestServer, chain: &[Vec<u8>], cert: &[u8], name: &str) {
    let root = s.write("est-root.pem", &s.root_pem);
    let inter = s.write(
        "est-chain.pem",
        certkeeper_ca::pem_encode_certs(chain.iter().map(Vec::as_slice)),
    );
    let leaf = s.write(name, certkeeper_ca::pem_encode_certs([cert]));
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&inter),
        p(&leaf),
    ]);
    assert!(ok, "openssl verify {name}: {out}");
}

fn spki_of_cert(der: &[u8]) -> Vec<u8> {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    c.public_key().raw.to_vec()
}

async fn cert_count(s: &TestServer) -> usize {
    let (st, body) = s.api(Method::GET, "/certificates?limit=1000", None).await;
    assert_eq!(st, 200, "{body}");
    body["items"].as_array().unwrap().len()
}

async fn new_credential(s: &TestServer, body: Value) -> (String, String, String) {
    let (st, c) = s.api(Method::POST, "/est/credentials", Some(body)).await;
    assert_eq!(st, 201, "{c}");
    assert!(c.get("password_hash").is_none());
    (
        c["id"].as_str().unwrap().to_string(),
        c["username"].as_str().unwrap().to_string(),
        c["password"].as_str().unwrap().to_string(),
    )
}

/// POST a raw body to an EST operation; returns (status, headers, body).
async fn raw_post(
    s: &TestServer,
    path: &str,
    content_type: &str,
    auth: Option<(&str, &str)>,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = s
        .client
        .post(s.url(&format!("/.well-known/est{path}")))
        .header("content-type", content_type)
        .body(body);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

fn b64(der: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(der)
        .into_bytes()
}

async fn every_endpoint_and_refusal(db: Db) {
    let s = TestServer::start(db).await;
    let bare = client(&s, None);

    // cacerts: intermediate and root; the root is ours.
    let chain = bare.cacerts().await.unwrap();
    assert_eq!(chain.len(), 2);
    let root_der = certkeeper_ca::parse_pem_or_der_certs(s.root_pem.as_bytes()).unwrap();
    assert_eq!(chain.last(), root_der.first());

    // csrattrs: the default profile's key types, DER CsrAttrs.
    let attrs = bare
        .csrattrs()
        .await
        .unwrap()
        .expect("the profile asks for key types");
    let items = yasna::parse_der(&attrs, |r| r.collect_sequence_of(|r| r.read_der())).unwrap();
    assert!(!items.is_empty());
    let ec_public_key = yasna::construct_der(|w| {
        w.write_oid(&yasna::models::ObjectIdentifier::from_slice(&[
            1, 2, 840, 10045, 2, 1,
        ]))
    });
    assert!(
        items
            .iter()
            .any(|i| i.windows(ec_public_key.len()).any(|w| w == ec_public_key))
    );

    // Labels select a profile; admin only; unknown labels are 404.
    let (_, default) = s.api(Method::GET, "/profiles/default", None).await;
    let (st, prof) = s
        .api(
            Method::POST,
            "/profiles",
            Some(
                json!({"name": "iot", "ca": default["ca"], "allowed_dns_names": [".example.net"]}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{prof}");
    let (st, l) = s
        .api(
            Method::POST,
            "/est/labels",
            Some(json!({"label": "devices", "profile": "iot"})),
        )
        .await;
    assert_eq!(st, 201, "{l}");
    let (st, _) = s
        .api(
            Method::POST,
            "/est/labels",
            Some(json!({"label": "devices", "profile": "default"})),
        )
        .await;
    assert_eq!(st, 409);
    let (st, _) = s
        .api(
            Method::POST,
            "/est/labels",
            Some(json!({"label": "x", "profile": "nope"})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .api(
            Method::POST,
            "/est/labels",
            Some(json!({"label": "cacerts", "profile": "default"})),
        )
        .await;
    assert_eq!(st, 400);
    let devices = client(&s, Some("devices"));
    assert_eq!(devices.cacerts().await.unwrap(), chain);
    let e = client(&s, Some("nope")).cacerts().await.unwrap_err();
    assert_eq!(status_of(&e), 404, "{e}");

    let (_, bare_user, bare_pw) = new_credential(&s, json!({"username": "bare-1"})).await;
    let (dev_id, dev_user, dev_pw) = new_credential(
        &s,
        json!({"username": "dev-1", "label": "devices", "max_uses": 1}),
    )
    .await;
    let (st, list) = s.api(Method::GET, "/est/credentials", None).await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&dev_pw),
        "passwords are never listed"
    );

    let before = cert_count(&s).await;

    // --- refusals, none of which stores anything ---
    let (_, good_csr) = csr("dev-1.example.net", &["dev-1.example.net"]);
    // No credentials: 401 with a Basic challenge.
    let (st, h, body) = raw_post(
        &s,
        "/simpleenroll",
        "application/pkcs10",
        None,
        b64(&good_csr),
    )
    .await;
    assert_eq!(st, 401, "{body}");
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic "),
        "{h:?}"
    );
    assert_eq!(h["content-type"], "application/problem+json");
    // Wrong password, unknown user.
    let e = bare
        .simpleenroll(
            &good_csr,
            Some(Basic {
                username: &bare_user,
                password: "wrong-password",
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 401, "{e}");
    let e = bare
        .simpleenroll(
            &good_csr,
            Some(Basic {
                username: "nobody",
                password: "whatever-it-is",
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 401, "{e}");
    // A credential of another label: 403.
    let e = bare
        .simpleenroll(
            &good_csr,
            Some(Basic {
                username: &dev_user,
                password: &dev_pw,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    assert!(detail_of(&e).contains("/.well-known/est/devices/"), "{e}");
    let dev = Some((dev_user.as_str(), dev_pw.as_str()));
    // Wrong content type.
    let (st, _, body) = raw_post(
        &s,
        "/devices/simpleenroll",
        "application/json",
        dev,
        b64(&good_csr),
    )
    .await;
    assert_eq!(st, 415, "{body}");
    // Not base64.
    let (st, _, body) = raw_post(
        &s,
        "/devices/simpleenroll",
        "application/pkcs10",
        dev,
        b"%%% not base64 %%%".to_vec(),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("base64"), "{body}");
    // Base64 of something that is not DER, and DER that is not a CSR (a certificate).
    let (st, _, body) = raw_post(
        &s,
        "/devices/simpleenroll",
        "application/pkcs10",
        dev,
        b64(b"hello"),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    let (st, _, body) = raw_post(
        &s,
        "/devices/simpleenroll",
        "application/pkcs10",
        dev,
        b64(&chain[0]),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("PKCS#10"), "{body}");
    // A CSR whose signature fails.
    let mut forged = good_csr.clone();
    let n = forged.len();
    forged[n - 5] ^= 0x55;
    let (st, _, body) = raw_post(
        &s,
        "/devices/simpleenroll",
        "application/pkcs10",
        dev,
        b64(&forged),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("signature"), "{body}");
    // Oversized.
    let (st, _, body) = raw_post(
        &s,
        "/devices/simpleenroll",
        "application/pkcs10",
        dev,
        vec![b'A'; 200 * 1024],
    )
    .await;
    assert_eq!(st, 413, "{body}");
    // Refused by profile policy (an IP address the profile does not allow): 403, and the
    // one-time credential's use is given back.
    let (_, ip_csr) = {
        let key = certkeeper_ca::KeyAlgorithm::EcdsaP256.generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("192.0.2.1".parse().unwrap()));
        let der = params.serialize_request(&key).unwrap().der().to_vec();
        (key, der)
    };
    let e = devices
        .simpleenroll(
            &ip_csr,
            Some(Basic {
                username: &dev_user,
                password: &dev_pw,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    assert_eq!(
        cert_count(&s).await,
        before,
        "refused requests store nothing"
    );
    let (_, list) = s.api(Method::GET, "/est/credentials", None).await;
    let dev_rec = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == dev_id.as_str())
        .unwrap();
    assert_eq!(dev_rec["uses_left"], 1, "failed attempts use nothing up");

    // --- simpleenroll under the label, once ---
    let (dev_key, dev_csr) = csr("dev-1.example.net", &["dev-1.example.net"]);
    let dev_cert = devices
        .simpleenroll(
            &dev_csr,
            Some(Basic {
                username: &dev_user,
                password: &dev_pw,
            }),
        )
        .await
        .unwrap();
    verify_with_openssl(&s, &chain[..1], &dev_cert, "dev1.pem");
    assert_eq!(cert_count(&s).await, before + 1);
    let e = devices
        .simpleenroll(
            &dev_csr,
            Some(Basic {
                username: &dev_user,
                password: &dev_pw,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 401, "a one-time password works once: {e}");

    // --- simplereenroll ---
    // Without a client certificate: 401.
    let e = devices.simplereenroll(&dev_csr).await.unwrap_err();
    assert_eq!(status_of(&e), 401, "{e}");
    // With a self-signed certificate nobody trusts: 403.
    let stranger_key = certkeeper_ca::KeyAlgorithm::EcdsaP256.generate().unwrap();
    let stranger = rcgen::CertificateParams::new(vec!["dev-1.example.net".to_string()])
        .unwrap()
        .self_signed(&stranger_key)
        .unwrap();
    let e = client_with_identity(&s, Some("devices"), stranger.der(), &stranger_key)
        .simplereenroll(&dev_csr)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    assert!(detail_of(&e).contains("not trusted"), "{e}");
    // With the issued certificate, but another subject: 400.
    let with_cert = client_with_identity(&s, Some("devices"), &dev_cert, &dev_key);
    let (_, other) = csr("someone-else.example.net", &["someone-else.example.net"]);
    let e = with_cert.simplereenroll(&other).await.unwrap_err();
    assert_eq!(status_of(&e), 400, "{e}");
    assert!(detail_of(&e).contains("subject"), "{e}");
    // Same subject and names, new key: renewed.
    let (new_key, renew_csr) = csr("dev-1.example.net", &["dev-1.example.net"]);
    let renewed = with_cert.simplereenroll(&renew_csr).await.unwrap();
    verify_with_openssl(&s, &chain[..1], &renewed, "dev1-renewed.pem");
    assert_eq!(
        spki_of_cert(&renewed),
        rcgen::PublicKeyData::subject_public_key_info(&new_key)
    );
    // A revoked certificate can no longer renew.
    let fp = certkeeper_ca::inspect_certificate(&dev_cert)
        .unwrap()
        .serial;
    let (_, found) = s
        .api(Method::GET, &format!("/certificates?serial={fp}"), None)
        .await;
    let id = found["items"][0]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .api(
            Method::POST,
            &format!("/certificates/{id}/revoke"),
            Some(json!({"reason": "superseded"})),
        )
        .await;
    assert_eq!(st, 200);
    let e = with_cert.simplereenroll(&renew_csr).await.unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    assert!(detail_of(&e).contains("revoked"), "{e}");

    // --- serverkeygen (bare path, unlimited credential), EC and RSA ---
    let bare_basic = Some(Basic {
        username: &bare_user,
        password: &bare_pw,
    });
    let (_, kg_csr) = csr("sensor.example.net", &["sensor.example.net"]);
    let (pkcs8, cert) = bare.serverkeygen(&kg_csr, bare_basic).await.unwrap();
    let key = rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap();
    assert_eq!(
        spki_of_cert(&cert),
        rcgen::PublicKeyData::subject_public_key_info(&key),
        "the returned key belongs to the certificate"
    );
    verify_with_openssl(&s, &chain[..1], &cert, "sensor.pem");
    let (_, rsa_csr) = csr_with(
        certkeeper_ca::KeyAlgorithm::Rsa(2048),
        "rsa.example.net",
        &["rsa.example.net"],
        Vec::new(),
    );
    let (pkcs8, cert) = bare.serverkeygen(&rsa_csr, bare_basic).await.unwrap();
    let info = certkeeper_ca::inspect_certificate(&cert).unwrap();
    assert_eq!(info.key_algorithm.as_deref(), Some("rsa-2048"));
    assert!(rcgen::KeyPair::try_from(pkcs8.as_slice()).is_ok());
    // simpleenroll on the bare path too.
    let (_, b_csr) = csr("bare.example.net", &["bare.example.net"]);
    let b_cert = bare.simpleenroll(&b_csr, bare_basic).await.unwrap();
    verify_with_openssl(&s, &chain[..1], &b_cert, "bare.pem");

    // A revoked credential stops working.
    let (rid, ruser, rpw) = new_credential(
        &s,
        json!({"username": "gone", "password": "a-long-chosen-password"}),
    )
    .await;
    assert_eq!(rpw, "a-long-chosen-password");
    let (st, _) = s
        .api(Method::DELETE, &format!("/est/credentials/{rid}"), None)
        .await;
    assert_eq!(st, 204);
    let e = bare
        .simpleenroll(
            &b_csr,
            Some(Basic {
                username: &ruser,
                password: &rpw,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 401, "{e}");
    assert!(detail_of(&e).contains("revoked"), "{e}");

    // Refusals are audited with who and why; issuances are recorded as est actors.
    let (st, audit) = s
        .api(Method::GET, "/audit?action=est.refuse&limit=1000", None)
        .await;
    assert_eq!(st, 200);
    let items = audit["items"].as_array().unwrap();
    assert!(items.len() >= 8, "{audit}");
    assert!(items.iter().any(|i| i["actor"] == "est:anonymous"));
    assert!(
        items
            .iter()
            .any(|i| i["actor"] == "est:dev-1" && i["detail"]["status"] == 403)
    );
    assert!(items.iter().any(|i| i["actor"] == "est:gone"));
    assert!(
        items
            .iter()
            .any(|i| i["actor"].as_str().unwrap().starts_with("est-cert:"))
    );
    let (_, issued) = s
        .api(
            Method::GET,
            "/audit?action=certificate.issue&limit=1000",
            None,
        )
        .await;
    assert!(
        issued["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["actor"] == "est:dev-1")
    );

    // Only admins manage EST; deleting a label revokes its credentials.
    let (st, viewer) = s
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "v", "role": "viewer"})),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = s
        .api_as(
            viewer["token"].as_str().unwrap(),
            Method::GET,
            "/est/credentials",
            None,
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = s.api(Method::DELETE, "/est/labels/devices", None).await;
    assert_eq!(st, 204);
    let e = devices.cacerts().await.unwrap_err();
    assert_eq!(status_of(&e), 404);
}

#[tokio::test]
async fn every_endpoint_and_refusal_sqlite() {
    every_endpoint_and_refusal(Db::Sqlite).await;
}

#[tokio::test]
async fn every_endpoint_and_refusal_postgres() {
    every_endpoint_and_refusal(Db::Postgres).await;
}

/// One HTTP/1.1 POST over a TLS connection whose exporter value goes into the CSR.
async fn bound_enroll(s: &TestServer, user: &str, pw: &str, tamper: bool) -> (u16, String) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in certkeeper_ca::parse_pem_or_der_certs(s.server_ca_pem.as_bytes()).unwrap() {
        roots.add(c.into()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.https_port))
        .await
        .unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let mut binding = tls
        .get_ref()
        .1
        .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
        .unwrap();
    if tamper {
        binding[0] ^= 1;
    }
    let value = base64::engine::general_purpose::STANDARD.encode(binding);
    let (_, der) = csr_with(
        certkeeper_ca::KeyAlgorithm::EcdsaP256,
        "bound.example.net",
        &["bound.example.net"],
        vec![challenge_password(&value)],
    );
    let body = b64(&der);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    let head = format!(
        "POST /.well-known/est/bound/simpleenroll HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\nContent-Type: application/pkcs10\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn channel_binding(db: Db) {
    let s = TestServer::start(db).await;
    let (st, l) = s
        .api(
            Method::POST,
            "/est/labels",
            Some(json!({"label": "bound", "profile": "default", "require_channel_binding": true})),
        )
        .await;
    assert_eq!(st, 201, "{l}");
    let (_, user, pw) = new_credential(&s, json!({"username": "b", "label": "bound"})).await;
    // csrattrs asks for challengePassword.
    let attrs = client(&s, Some("bound")).csrattrs().await.unwrap().unwrap();
    let cp = yasna::construct_der(|w| {
        w.write_oid(&yasna::models::ObjectIdentifier::from_slice(&[
            1, 2, 840, 113549, 1, 9, 7,
        ]))
    });
    assert!(attrs.windows(cp.len()).any(|w| w == cp));
    // Without binding: 403.
    let (_, plain) = csr("bound.example.net", &["bound.example.net"]);
    let e = client(&s, Some("bound"))
        .simpleenroll(
            &plain,
            Some(Basic {
                username: &user,
                password: &pw,
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    assert!(detail_of(&e).contains("channel binding"), "{e}");
    // A binding from another connection (or altered): 403.
    let (st, text) = bound_enroll(&s, &user, &pw, true).await;
    assert_eq!(st, 403, "{text}");
    // This connection's binding: issued.
    let (st, text) = bound_enroll(&s, &user, &pw, false).await;
    assert_eq!(st, 200, "{text}");
    assert!(text.contains("application/pkcs7-mime"), "{text}");
}

#[tokio::test]
async fn channel_binding_sqlite() {
    channel_binding(Db::Sqlite).await;
}

#[tokio::test]
async fn channel_binding_postgres() {
    channel_binding(Db::Postgres).await;
}

async fn cli_enrolls_and_renews(db: Db) {
    let s = TestServer::start(db).await;
    let (_, user, pw) = new_credential(&s, json!({"username": "host-1", "max_uses": 1})).await;
    let root = s.write("root.pem", &s.root_pem);
    let server_ca = s.write("server-ca.pem", &s.server_ca_pem);
    let key = s.path("host.key");
    let cert = s.path("host.pem");
    let run = |extra: &[&str], with_password: bool| {
        let mut cmd = std::process::Command::new(bin());
        cmd.args([
            "--server",
            &server(&s),
            "--ca-file",
            p(&server_ca),
            "est",
            "enroll",
        ])
        .args([
            "--dns",
            "host-1.example.net",
            "--key",
            p(&key),
            "--cert",
            p(&cert),
        ])
        .args(extra)
        .env_remove("CERTKEEPER_EST_PASSWORD");
        if with_password {
            cmd.env("CERTKEEPER_EST_USERNAME", &user)
                .env("CERTKEEPER_EST_PASSWORD", &pw);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // First run without a password: a clear error, no files.
    let (ok, out) = run(&[], false);
    assert!(!ok && out.contains("--password"), "{out}");
    assert!(!cert.exists() && !key.exists());
    // Enroll.
    let (ok, out) = run(&[], true);
    assert!(ok && out.contains("enrolled"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let chain = s.write("chain.pem", {
        let certs = client(&s, None).cacerts().await.unwrap();
        certkeeper_ca::pem_encode_certs([certs[0].as_slice()])
    });
    let verify = || {
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            p(&root),
            "-untrusted",
            p(&chain),
            "-verify_hostname",
            "host-1.example.net",
            p(&cert),
        ]);
        assert!(ok, "{out}");
    };
    verify();
    let first = std::fs::read(&cert).unwrap();
    let first_key = std::fs::read(&key).unwrap();
    // Run again: far from expiry, nothing to do (and the one-time password is spent).
    let (ok, out) = run(&[], false);
    assert!(ok && out.contains("nothing to do"), "{out}");
    assert_eq!(std::fs::read(&cert).unwrap(), first);
    // Near expiry (here: a renewal window longer than the lifetime): simplereenroll with
    // the current certificate, a new key, the same names.
    let (ok, out) = run(&["--renew-days", "3650"], false);
    assert!(ok && out.contains("renewed"), "{out}");
    assert_ne!(std::fs::read(&cert).unwrap(), first);
    assert_ne!(std::fs::read(&key).unwrap(), first_key);
    verify();
    let (ok, out) = openssl(&["x509", "-in", p(&cert), "-noout", "-subject"]);
    assert!(ok && out.contains("host-1.example.net"), "{out}");
    let (ok, m1) = openssl(&["x509", "-in", p(&cert), "-noout", "-pubkey"]);
    assert!(ok);
    let (ok, m2) = openssl(&["pkey", "-in", p(&key), "-pubout"]);
    assert!(ok);
    assert_eq!(m1, m2, "the new key matches the new certificate");
}

#[tokio::test]
async fn cli_enrolls_and_renews_sqlite() {
    cli_enrolls_and_renews(Db::Sqlite).await;
}

#[tokio::test]
async fn cli_enrolls_and_renews_postgres() {
    cli_enrolls_and_renews(Db::Postgres).await;
}

/// A bootstrap (manufacturer) CA and a device certificate it issued, made with openssl.
fn manufacturer_pki(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = dir.join("mca.key");
    let ca = dir.join("mca.pem");
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=Acme Manufacturing CA",
        "-keyout",
        p(&ca_key),
        "-out",
        p(&ca),
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    assert!(ok, "{out}");
    let (dev_key, _) = openssl_csr(dir, "idevid", "/CN=idevid-0001", "", EC_P256);
    let dev = dir.join("idevid.pem");
    // Extensions make it a v3 certificate, which rustls requires.
    let ext = dir.join("idevid.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let (ok, out) = openssl(&[
        "x509",
        "-req",
        "-in",
        p(&dir.join("idevid.csr")),
        "-CA",
        p(&ca),
        "-CAkey",
        p(&ca_key),
        "-days",
        "30",
        "-extfile",
        p(&ext),
        "-out",
        p(&dev),
    ]);
    assert!(ok, "{out}");
    (ca, dev, dev_key)
}

async fn bootstrap_ca_certificates(db: Db) {
    let tmp = tempfile::tempdir().unwrap();
    let (mca, dev, dev_key) = manufacturer_pki(tmp.path());
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_EST__CLIENT_CA_FILE", p(&mca)),
            ("CERTKEEPER_EST__TRUST_OWN_CAS", "false"),
        ],
    )
    .await;
    let identity = [
        std::fs::read(&dev).unwrap(),
        std::fs::read(&dev_key).unwrap(),
    ]
    .concat();
    let device = EstClient::new(
        &server(&s),
        None,
        Some(s.server_ca_pem.as_bytes()),
        Some(&identity),
    )
    .unwrap();
    // The manufacturer's certificate authenticates simpleenroll without a password.
    let (key, der) = csr("device-0001.example.net", &["device-0001.example.net"]);
    let issued = device.simpleenroll(&der, None).await.unwrap();
    let chain = client(&s, None).cacerts().await.unwrap();
    verify_with_openssl(&s, &chain[..1], &issued, "device-0001.pem");
    // With our own CAs left out of the trust set, our certificate does not authenticate.
    let (_, again) = csr("device-0001.example.net", &["device-0001.example.net"]);
    let e = client_with_identity(&s, None, &issued, &key)
        .simplereenroll(&again)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    // The manufacturer's certificate is not one of ours, so it cannot renew either.
    let e = device.simplereenroll(&again).await.unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");

    // `certkeeper est enroll` with the bootstrap certificate instead of a password.
    let server_ca = s.write("server-ca.pem", &s.server_ca_pem);
    let (key_out, cert_out) = (s.path("boot.key"), s.path("boot.pem"));
    let out = std::process::Command::new(bin())
        .args([
            "--server",
            &server(&s),
            "--ca-file",
            p(&server_ca),
            "est",
            "enroll",
        ])
        .args(["--dns", "device-0003.example.net"])
        .args(["--bootstrap-cert", p(&dev), "--bootstrap-key", p(&dev_key)])
        .args(["--key", p(&key_out), "--cert", p(&cert_out)])
        .env_remove("CERTKEEPER_EST_USERNAME")
        .env_remove("CERTKEEPER_EST_PASSWORD")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let issued = certkeeper_ca::parse_pem_or_der_certs(&std::fs::read(&cert_out).unwrap()).unwrap();
    verify_with_openssl(&s, &chain[..1], &issued[0], "device-0003.pem");
}

async fn own_certificates_renew_only(db: Db) {
    let tmp = tempfile::tempdir().unwrap();
    let (mca, dev, dev_key) = manufacturer_pki(tmp.path());
    let s = TestServer::start_with(db, &[("CERTKEEPER_EST__CLIENT_CA_FILE", p(&mca))]).await;
    let identity = [
        std::fs::read(&dev).unwrap(),
        std::fs::read(&dev_key).unwrap(),
    ]
    .concat();
    let device = EstClient::new(
        &server(&s),
        None,
        Some(s.server_ca_pem.as_bytes()),
        Some(&identity),
    )
    .unwrap();
    let (key, der) = csr("device-0002.example.net", &["device-0002.example.net"]);
    let issued = device.simpleenroll(&der, None).await.unwrap();
    let ours = client_with_identity(&s, None, &issued, &key);
    // Our certificate renews itself...
    let renewed = ours.simplereenroll(&der).await.unwrap();
    assert_ne!(renewed, issued);
    // ...but does not let its holder enroll for other names without a password.
    let (_, other) = csr("other.example.net", &["other.example.net"]);
    let e = ours.simpleenroll(&other, None).await.unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    // A manufacturer certificate cannot renew: it is not one of ours.
    let e = device.simplereenroll(&der).await.unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    // Nor can ours renew under a label whose profile it was not issued under.
    let (_, default) = s.api(Method::GET, "/profiles/default", None).await;
    let (st, _) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "other", "ca": default["ca"], "allowed_dns_names": ["*"]})),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = s
        .api(
            Method::POST,
            "/est/labels",
            Some(json!({"label": "elsewhere", "profile": "other"})),
        )
        .await;
    assert_eq!(st, 201);
    let e = EstClient::new(
        &server(&s),
        Some("elsewhere"),
        Some(s.server_ca_pem.as_bytes()),
        Some(
            format!(
                "{}{}",
                certkeeper_ca::pem_encode_certs([issued.as_slice()]),
                key.serialize_pem()
            )
            .as_bytes(),
        ),
    )
    .unwrap()
    .simplereenroll(&der)
    .await
    .unwrap_err();
    assert_eq!(status_of(&e), 403, "{e}");
    assert!(detail_of(&e).contains("profile"), "{e}");
}

#[tokio::test]
async fn own_certificates_renew_only_sqlite() {
    own_certificates_renew_only(Db::Sqlite).await;
}

#[tokio::test]
async fn own_certificates_renew_only_postgres() {
    own_certificates_renew_only(Db::Postgres).await;
}

#[tokio::test]
async fn bootstrap_ca_certificates_sqlite() {
    bootstrap_ca_certificates(Db::Sqlite).await;
}

#[tokio::test]
async fn bootstrap_ca_certificates_postgres() {
    bootstrap_ca_certificates(Db::Postgres).await;
}

/// Records whether the server asked for a client certificate; offers none.
#[derive(Debug, Default)]
struct AskedForCert(std::sync::atomic::AtomicBool);

impl rustls::client::ResolvesClientCert for AskedForCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Whether a TLS handshake with `port` brings a certificate request.
async fn asks_for_client_certificate(s: &TestServer, port: u16) -> bool {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in certkeeper_ca::parse_pem_or_der_certs(s.server_ca_pem.as_bytes()).unwrap() {
        roots.add(c.into()).unwrap();
    }
    let asked = Arc::new(AskedForCert::default());
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_cert_resolver(asked.clone());
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    asked.0.load(std::sync::atomic::Ordering::SeqCst)
}

/// Browsers opening the dashboard on the main listener are never asked for a client
/// certificate; the EST listener asks, and EST with a password works on both.
#[tokio::test]
async fn only_the_est_listener_asks_for_client_certificates() {
    let s = TestServer::start(Db::Sqlite).await;
    assert!(!asks_for_client_certificate(&s, s.https_port).await);
    assert!(asks_for_client_certificate(&s, s.est_port).await);
    // The EST listener serves EST and the public endpoints, not the API or the dashboard.
    let on_est = s
        .client
        .get(s.est_url("/api/v1/cas"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(on_est.status(), 404);
    let on_est = s.client.get(s.est_url("/")).send().await.unwrap();
    assert_eq!(on_est.status(), 404);
    // Enrollment with a password on the main listener.
    let (_, user, pw) = new_credential(&s, json!({"username": "main-1"})).await;
    let main = EstClient::new(
        &format!("https://localhost:{}", s.https_port),
        None,
        Some(s.server_ca_pem.as_bytes()),
        None,
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(vec!["main-1.example.net".to_string()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    main.simpleenroll(
        csr.der(),
        Some(Basic {
            username: &user,
            password: &pw,
        }),
    )
    .await
    .unwrap();
}
