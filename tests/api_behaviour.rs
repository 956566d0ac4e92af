//! End-to-end behaviour of the REST API under `/api/v1`, against the real `certkeeper`
//! binary on SQLite and on PostgreSQL.
//!
//! Every scenario is an `async fn scenario_*(db: Db)` run twice, once per database, by a
//! pair of `#[tokio::test]` wrappers (`*_sqlite`, `*_postgres`). Certificates are checked
//! with the `openssl` command line tool, errors by their RFC 7807 problem documents, and
//! every scenario ends by checking through `/metrics` that the server never answered 5xx.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use base64::Engine;
use common::{Db, EC_P256, RSA_2048, TestServer, openssl, openssl_csr, p};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The problem `type` URN for a kind.
fn problem(kind: &str) -> String {
    format!("urn:certkeeper:problem:{kind}")
}

/// Assert a problem answer: status, `type`, and that `status` in the body agrees.
#[track_caller]
fn assert_problem(got: &(u16, Value), status: u16, kind: &str) {
    let (st, body) = got;
    assert_eq!(*st, status, "status of {body}");
    assert_eq!(body["type"], problem(kind), "problem type of {body}");
    assert_eq!(body["status"], status, "problem status of {body}");
    assert!(body["title"].is_string(), "problem title in {body}");
    assert!(body["detail"].is_string(), "problem detail in {body}");
}

/// Assert a policy violation (403) naming `profile` and `rule`.
#[track_caller]
fn assert_policy(got: &(u16, Value), profile: &str, rule: &str) {
    assert_problem(got, 403, "policy-violation");
    assert_eq!(got.1["profile"], profile, "{}", got.1);
    assert_eq!(got.1["rule"], rule, "{}", got.1);
}

/// The `detail` of a problem, for substring checks.
fn detail(v: &Value) -> String {
    v["detail"].as_str().unwrap_or_default().to_string()
}

/// A request with full control over authentication, content type and body; returns the
/// status, the headers and the raw body.
async fn raw(
    s: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, HeaderMap, Vec<u8>) {
    let mut req = s.client.request(method, s.url(&format!("/api/v1{path}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("request is answered");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body").to_vec();
    (status, headers, bytes)
}

/// POST an oversized JSON body to `/certificates` on a connection of its own: the server
/// answers before reading the whole body and then closes the connection, which must not
/// poison the shared client's connection pool. A transport error while the body is still
/// being written (the server closed first) is retried.
async fn oversized(s: &TestServer, body: Vec<u8>) -> (u16, HeaderMap, Vec<u8>) {
    let mut last_err = String::new();
    for _ in 0..5 {
        let cert = reqwest::Certificate::from_pem(s.server_ca_pem.as_bytes()).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([cert])
            .build()
            .unwrap();
        let sent = client
            .post(s.url("/api/v1/certificates"))
            .bearer_auth(&s.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let bytes = resp.bytes().await.expect("body").to_vec();
                return (status, headers, bytes);
            }
            Err(e) => last_err = format!("{e:?}"),
        }
    }
    panic!("the oversized request was never answered: {last_err}");
}

/// The content type of a response.
fn content_type(h: &HeaderMap) -> String {
    h.get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A raw answer that must be a problem document: returns (status, body).
#[track_caller]
fn as_problem(r: &(u16, HeaderMap, Vec<u8>)) -> (u16, Value) {
    assert_eq!(
        content_type(&r.1),
        "application/problem+json",
        "problem content type; body {}",
        String::from_utf8_lossy(&r.2)
    );
    (
        r.0,
        serde_json::from_slice(&r.2).expect("problem body is JSON"),
    )
}

/// Admin GET of a non-JSON resource: (status, content type, body).
async fn get_bytes(s: &TestServer, path: &str) -> (u16, String, Vec<u8>) {
    let (st, h, b) = raw(s, Method::GET, path, Some(&s.token), None, None).await;
    (st, content_type(&h), b)
}

/// Issue from a fresh openssl CSR; returns the raw API answer.
async fn issue_csr(
    s: &TestServer,
    profile: &str,
    name: &str,
    sans: &str,
    key: &[&str],
    extra: Value,
) -> (u16, Value) {
    let cn = sans
        .split(',')
        .next()
        .and_then(|x| x.split_once(':'))
        .map(|(_, v)| v)
        .unwrap_or("none");
    let (_, csr) = openssl_csr(s.dir.path(), name, &format!("/CN={cn}"), sans, key);
    let mut body = json!({"profile": profile, "csr": csr});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    s.api(Method::POST, "/certificates", Some(body)).await
}

/// Issue and insist on success.
async fn issue_ok(s: &TestServer, profile: &str, name: &str, sans: &str) -> Value {
    let r = issue_csr(s, profile, name, sans, EC_P256, json!({})).await;
    assert_eq!(r.0, 201, "issuing {sans} under {profile}: {}", r.1);
    r.1
}

/// `openssl verify -CAfile root -untrusted chain leaf`; asserts it prints OK.
#[track_caller]
fn assert_verifies(root: &Path, chain: Option<&Path>, leaf: &Path) {
    let mut args = vec!["verify", "-CAfile", p(root)];
    if let Some(c) = chain {
        args.extend(["-untrusted", p(c)]);
    }
    args.push(p(leaf));
    let (ok, out) = openssl(&args);
    assert!(ok, "openssl verify failed: {out}");
    assert_eq!(
        out.trim(),
        format!("{}: OK", p(leaf)),
        "openssl verify output"
    );
}

/// The DER certificates in a PEM text.
fn pem_certs(text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text)
        .expect("PEM parses")
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect()
}

/// A counter's value from the Prometheus text of `/metrics`.
async fn metric(s: &TestServer, line_prefix: &str) -> u64 {
    let text = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{line_prefix} ")))
        .unwrap_or_else(|| panic!("no metric {line_prefix} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// No request of the scenario was answered with a 5xx.
async fn assert_no_server_errors(s: &TestServer) {
    assert_eq!(
        metric(s, "certkeeper_http_responses_total{class=\"server_error\"}").await,
        0,
        "the server answered 5xx; logs:\n{}",
        s.logs()
    );
}

fn parse_time(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("time string"), &Rfc3339).expect("RFC 3339")
}

/// Ids of a certificate page.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Serial numbers compare as integers: hex, case and leading zeros aside.
fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.replace(':', "")
            .trim_start_matches("serial=")
            .trim()
            .trim_start_matches('0')
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// A self-signed CA made with openssl: returns (cert path, key path).
fn openssl_root(s: &TestServer, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let cfg = s.write(
        &format!("{name}.cnf"),
        format!(
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {cn}\n\
             [v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\n"
        ),
    );
    let cert = s.path(&format!("{name}.pem"));
    let key = s.path(&format!("{name}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-config",
        p(&cfg),
        "-extensions",
        "v3_ca",
        "-nodes",
    ];
    args.extend_from_slice(EC_P256);
    args.extend(["-keyout", p(&key), "-out", p(&cert), "-days", "365"]);
    let (ok, out) = openssl(&args);
    assert!(ok, "{out}");
    (cert, key)
}

/// Sign a CA CSR with an openssl CA; returns the certificate path.
fn openssl_sign_ca(
    s: &TestServer,
    csr_pem: &str,
    ca: &(PathBuf, PathBuf),
    out_name: &str,
    serial: &str,
) -> PathBuf {
    let csr = s.write(&format!("{out_name}.csr"), csr_pem);
    let ext = s.write(
        &format!("{out_name}.ext"),
        "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    );
    let out = s.path(&format!("{out_name}.pem"));
    let (ok, text) = openssl(&[
        "x509",
        "-req",
        "-in",
        p(&csr),
        "-CA",
        p(&ca.0),
        "-CAkey",
        p(&ca.1),
        "-set_serial",
        serial,
        "-days",
        "365",
        "-extfile",
        p(&ext),
        "-out",
        p(&out),
    ]);
    assert!(ok, "{text}");
    out
}

/// Write the leaf, chain and root of an issuance answer; returns their paths.
fn write_issued(s: &TestServer, prefix: &str, v: &Value) -> (PathBuf, PathBuf, PathBuf) {
    let leaf = s.write(
        &format!("{prefix}-leaf.pem"),
        v["certificate"].as_str().unwrap(),
    );
    let chain = s.write(&format!("{prefix}-chain.pem"), v["chain"].as_str().unwrap());
    let root = s.write(&format!("{prefix}-root.pem"), v["root"].as_str().unwrap());
    (leaf, chain, root)
}

// ---------------------------------------------------------------------------------------
// 1. Hierarchy over the API, path lengths, name constraints
// ---------------------------------------------------------------------------------------

async fn scenario_hierarchy(db: Db) {
    let s = TestServer::start(db).await;

    let (st, root) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "r2", "type": "root", "common_name": "Test Root Two", "key_algorithm": "ecdsa-p384"})),
        )
        .await;
    assert_eq!(st, 201, "{root}");
    assert_eq!(root["name"], "r2");
    assert_eq!(root["kind"], "root");
    assert_eq!(root["status"], "active");
    assert_eq!(root["key_algorithm"], "ecdsa-p384");
    assert_eq!(root["parent_id"], Value::Null);
    assert_eq!(root["path_len"], Value::Null);
    assert!(
        root["subject"].as_str().unwrap().contains("Test Root Two"),
        "{root}"
    );
    let root_id = root["id"].as_str().unwrap().to_string();

    // A second CA with the same name conflicts.
    let dup = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "r2", "type": "root", "common_name": "Again"})),
        )
        .await;
    assert_problem(&dup, 409, "conflict");

    let (st, i1) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "i1", "type": "intermediate", "parent": "r2", "common_name": "Level One", "path_len": 1})),
        )
        .await;
    assert_eq!(st, 201, "{i1}");
    assert_eq!(i1["kind"], "intermediate");
    assert_eq!(i1["parent_id"], root_id.as_str());
    assert_eq!(i1["path_len"], 1);
    let i1_id = i1["id"].as_str().unwrap().to_string();

    // Below a path length of 1, asking for 1 again is refused.
    let too_long = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "i2x", "type": "intermediate", "parent": i1_id, "common_name": "Too long", "path_len": 1})),
        )
        .await;
    assert_problem(&too_long, 400, "bad-request");
    assert!(detail(&too_long.1).contains("path_len"), "{}", too_long.1);

    // The parent may be named by id; the path length is inherited as 0.
    let (st, i2) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "i2", "type": "intermediate", "parent": i1_id, "common_name": "Level Two"})),
        )
        .await;
    assert_eq!(st, 201, "{i2}");
    assert_eq!(i2["parent_id"], i1_id.as_str());
    assert_eq!(i2["path_len"], 0);
    let i2_pem = s.write("i2.pem", i2["certificate"].as_str().unwrap());
    let (ok, bc) = openssl(&[
        "x509",
        "-in",
        p(&i2_pem),
        "-noout",
        "-ext",
        "basicConstraints",
    ]);
    assert!(ok, "{bc}");
    assert!(bc.contains("CA:TRUE") && bc.contains("pathlen:0"), "{bc}");

    // Level four is refused: the parent has path length 0.
    let four = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "i3", "type": "intermediate", "parent": "i2", "common_name": "Level Three"})),
        )
        .await;
    assert_problem(&four, 400, "bad-request");
    assert!(detail(&four.1).contains("path length"), "{}", four.1);
    let (_, cas) = s.api(Method::GET, "/cas", None).await;
    assert!(
        !cas.as_array().unwrap().iter().any(|c| c["name"] == "i3"),
        "the refused CA is not stored"
    );

    // Issue from the deepest CA and verify the whole chain with openssl.
    let (st, prof) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "deep", "ca": "i2", "allowed_dns_names": ["*"]})),
        )
        .await;
    assert_eq!(st, 201, "{prof}");
    assert_eq!(prof["ca"], i2["id"]);
    let issued = issue_ok(&s, "deep", "deep", "DNS:deep.example.com").await;
    assert_eq!(issued["ca_id"], i2["id"]);
    assert_eq!(issued["profile"], "deep");
    assert_eq!(issued["sans"], json!(["deep.example.com"]));
    let (leaf, chain, root_pem) = write_issued(&s, "deep", &issued);
    assert_verifies(&root_pem, Some(chain.as_path()), &leaf);

    // The answer's chain (no root) and root agree with GET /cas/{id}.
    let (st, i2_full) = s.api(Method::GET, "/cas/i2", None).await;
    assert_eq!(st, 200);
    let ca_chain = pem_certs(i2_full["chain"].as_str().unwrap());
    let mut answer_chain = pem_certs(issued["chain"].as_str().unwrap());
    assert_eq!(answer_chain.len(), 2, "chain is i2 and i1");
    answer_chain.extend(pem_certs(issued["root"].as_str().unwrap()));
    assert_eq!(ca_chain, answer_chain, "GET /cas/i2 chain = i2, i1, r2");
    assert_eq!(
        pem_certs(issued["root"].as_str().unwrap()),
        pem_certs(root["certificate"].as_str().unwrap())
    );
    // The chain from GET /cas/{id} works too, and the default root does not verify it.
    let ca_chain_file = s.write("i2-chain.pem", i2_full["chain"].as_str().unwrap());
    assert_verifies(&root_pem, Some(ca_chain_file.as_path()), &leaf);
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&s.data_dir.join("root.pem")),
        "-untrusted",
        p(&chain),
        p(&leaf),
    ]);
    assert!(!ok, "must not verify against another root: {out}");

    // Name constraints: permitted corp.example only.
    let (st, corp) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "corp", "type": "intermediate", "parent": "root", "common_name": "Corp CA",
                        "name_constraints": {"permitted_dns": ["corp.example"]}})),
        )
        .await;
    assert_eq!(st, 201, "{corp}");
    let corp_pem = s.write("corp.pem", corp["certificate"].as_str().unwrap());
    let (ok, nc) = openssl(&[
        "x509",
        "-in",
        p(&corp_pem),
        "-noout",
        "-ext",
        "nameConstraints",
    ]);
    assert!(ok && nc.contains("DNS:corp.example"), "{nc}");
    let (st, _) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "corp-any", "ca": "corp", "allowed_dns_names": ["*"]})),
        )
        .await;
    assert_eq!(st, 201);
    let refused = issue_csr(
        &s,
        "corp-any",
        "other",
        "DNS:a.other.example",
        EC_P256,
        json!({}),
    )
    .await;
    assert_policy(&refused, "corp-any", "ca_name_constraints");
    let ok_inside = issue_ok(&s, "corp-any", "inside", "DNS:a.corp.example").await;
    let (leaf, chain, root_pem) = write_issued(&s, "corp", &ok_inside);
    assert_eq!(
        pem_certs(&std::fs::read_to_string(&root_pem).unwrap()),
        pem_certs(&s.root_pem),
        "the corp CA chains to the default root"
    );
    assert_verifies(&root_pem, Some(chain.as_path()), &leaf);

    let (_, page) = s
        .api(Method::GET, "/certificates?profile=corp-any", None)
        .await;
    assert_eq!(
        ids(&page),
        vec![ok_inside["id"].as_str().unwrap().to_string()]
    );
    assert_no_server_errors(&s).await;
}

#[tokio::test]
async fn hierarchy_sqlite() {
    scenario_hierarchy(Db::Sqlite).await;
}

#[tokio::test]
async fn hierarchy_postgres() {
    scenario_hierarchy(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 2. Imported and externally signed CAs
// ---------------------------------------------------------------------------------------

async fn scenario_external_and_imported(db: Db) {
    let s = TestServer::start(db).await;
    let ossl = openssl_root(&s, "osslroot", "OpenSSL Test Root");
    let ossl_pem = std::fs::read_to_string(&ossl.0).unwrap();

    // Import the openssl CA with its key.
    let (st, imported) = s
        .api(
            Method::POST,
            "/cas/import",
            Some(json!({"name": "imported", "certificate": ossl_pem,
                        "private_key": std::fs::read_to_string(&ossl.1).unwrap()})),
        )
        .await;
    assert_eq!(st, 201, "{imported}");
    assert_eq!(imported["kind"], "imported");
    assert_eq!(imported["status"], "active");
    assert!(
        imported["subject"]
            .as_str()
            .unwrap()
            .contains("OpenSSL Test Root")
    );
    assert_eq!(
        pem_certs(imported["certificate"].as_str().unwrap()),
        pem_certs(&ossl_pem)
    );

    // A key that does not belong to the certificate is refused.
    let other = openssl_root(&s, "otherroot", "Other Root");
    let mismatch = s
        .api(
            Method::POST,
            "/cas/import",
            Some(json!({"name": "mismatch", "certificate": ossl_pem,
                        "private_key": std::fs::read_to_string(&other.1).unwrap()})),
        )
        .await;
    assert_problem(&mismatch, 400, "bad-request");

    let (st, _) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "imp", "ca": "imported", "allowed_dns_names": [".example.net"]})),
        )
        .await;
    assert_eq!(st, 201);
    let issued = issue_ok(&s, "imp", "imp", "DNS:www.example.net").await;
    let (leaf, _, root) = write_issued(&s, "imp", &issued);
    assert_eq!(
        pem_certs(&std::fs::read_to_string(&root).unwrap()),
        pem_certs(&ossl_pem)
    );
    assert_eq!(issued["chain"], "", "an imported root has no intermediates");
    assert_verifies(&ossl.0, None, &leaf);

    // An externally signed CA starts pending, with a CSR.
    let (st, ext) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "ext", "type": "external", "common_name": "External Sub CA"})),
        )
        .await;
    assert_eq!(st, 201, "{ext}");
    assert_eq!(ext["kind"], "external");
    assert_eq!(ext["status"], "pending");
    assert_eq!(ext["certificate_url"], Value::Null);
    assert!(ext.get("certificate").is_none(), "{ext}");
    let ext_id = ext["id"].as_str().unwrap().to_string();
    let (st, ct, csr) = get_bytes(&s, &format!("/cas/{ext_id}/csr")).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/x-pem-file");
    let csr = String::from_utf8(csr).unwrap();
    assert!(
        csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{csr}"
    );
    assert_eq!(
        ext["csr"].as_str().unwrap(),
        csr,
        "POST answer carries the same CSR"
    );
    let csr_file = s.write("ext-request.csr", &csr);
    let (ok, out) = openssl(&["req", "-in", p(&csr_file), "-noout", "-verify", "-subject"]);
    assert!(ok && out.contains("External Sub CA"), "{out}");

    // A profile on a pending CA is refused, so nothing can be issued under it.
    let pending_profile = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "ext-prof", "ca": "ext", "allowed_dns_names": ["*"]})),
        )
        .await;
    assert_problem(&pending_profile, 400, "bad-request");
    assert!(
        detail(&pending_profile.1).contains("pending"),
        "{}",
        pending_profile.1
    );
    let (st, _) = s.api(Method::GET, "/profiles/ext-prof", None).await;
    assert_eq!(st, 404);
    // An intermediate cannot be made under a pending CA either.
    let child = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "ext-child", "type": "intermediate", "parent": "ext", "common_name": "Child"})),
        )
        .await;
    assert_problem(&child, 409, "conflict");

    // A certificate for another key is refused while pending.
    let (_, stranger_csr) = openssl_csr(s.dir.path(), "stranger", "/CN=Stranger CA", "", EC_P256);
    let stranger = openssl_sign_ca(&s, &stranger_csr, &ossl, "stranger-ca", "4001");
    let wrong = s
        .api(
            Method::POST,
            &format!("/cas/{ext_id}/certificate"),
            Some(json!({"certificate": std::fs::read_to_string(&stranger).unwrap()})),
        )
        .await;
    assert_problem(&wrong, 400, "bad-request");
    assert!(detail(&wrong.1).contains("does not match"), "{}", wrong.1);
    let (_, still) = s.api(Method::GET, "/cas/ext", None).await;
    assert_eq!(still["status"], "pending");

    // Sign with the openssl root and install (with the root as its chain).
    let signed = openssl_sign_ca(&s, &csr, &ossl, "ext-signed", "4002");
    let signed_pem = std::fs::read_to_string(&signed).unwrap();
    let (st, active) = s
        .api(
            Method::POST,
            &format!("/cas/{ext_id}/certificate"),
            Some(json!({"certificate": format!("{signed_pem}{ossl_pem}")})),
        )
        .await;
    assert_eq!(st, 200, "{active}");
    assert_eq!(active["status"], "active");
    assert_eq!(active["kind"], "external");
    assert!(active["certificate_url"].is_string(), "{active}");
    assert_eq!(
        pem_certs(active["certificate"].as_str().unwrap()),
        pem_certs(&signed_pem)
    );
    let mut expect_chain = pem_certs(&signed_pem);
    expect_chain.extend(pem_certs(&ossl_pem));
    assert_eq!(pem_certs(active["chain"].as_str().unwrap()), expect_chain);
    let (st, _, _) = get_bytes(&s, &format!("/cas/{ext_id}/csr")).await;
    assert_eq!(st, 409, "an active CA has no CSR");

    // Installing again conflicts.
    let again = s
        .api(
            Method::POST,
            &format!("/cas/{ext_id}/certificate"),
            Some(json!({"certificate": signed_pem})),
        )
        .await;
    assert_problem(&again, 409, "conflict");

    // Now it issues, and the chain verifies against the openssl root.
    let (st, prof) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "ext-prof", "ca": "ext", "allowed_dns_names": ["*"]})),
        )
        .await;
    assert_eq!(st, 201, "{prof}");
    assert_eq!(prof["ca"], ext_id.as_str());
    let issued = issue_ok(&s, "ext-prof", "extleaf", "DNS:leaf.ext.example").await;
    assert_eq!(issued["ca_id"], ext_id.as_str());
    let (leaf, chain, root) = write_issued(&s, "ext", &issued);
    assert_eq!(
        pem_certs(&std::fs::read_to_string(&chain).unwrap()),
        pem_certs(&signed_pem)
    );
    assert_eq!(
        pem_certs(&std::fs::read_to_string(&root).unwrap()),
        pem_certs(&ossl_pem)
    );
    assert_verifies(&ossl.0, Some(chain.as_path()), &leaf);
    assert_no_server_errors(&s).await;
}

#[tokio::test]
async fn external_and_imported_sqlite() {
    scenario_external_and_imported(Db::Sqlite).await;
}

#[tokio::test]
async fn external_and_imported_postgres() {
    scenario_external_and_imported(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 3. Profiles and policy
// ---------------------------------------------------------------------------------------

/// Two views of one profile agree. Times are compared to the second: the database keeps
/// whole seconds, while create and update answers echo the sub-second time of the request.
#[track_caller]
fn assert_same_profile(a: &Value, b: &Value) {
    let strip = |v: &Value| {
        let mut v = v.clone();
        let o = v.as_object_mut().unwrap();
        o.remove("created_at");
        o.remove("updated_at");
        v
    };
    assert_eq!(strip(a), strip(b));
    for k in ["created_at", "updated_at"] {
        assert_eq!(
            parse_time(&a[k]).unix_timestamp(),
            parse_time(&b[k]).unix_timestamp(),
            "{k}: {a} vs {b}"
        );
    }
}

async fn scenario_profiles(db: Db) {
    let s = TestServer::start(db).await;
    let (_, intermediate) = s.api(Method::GET, "/cas/intermediate", None).await;
    let web = json!({"name": "web", "ca": "intermediate", "allowed_dns_names": [".example.com"],
                     "max_validity_days": 30, "allowed_key_types": ["ecdsa-p256"]});
    let (st, created) = s.api(Method::POST, "/profiles", Some(web.clone())).await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["name"], "web");
    assert_eq!(created["ca"], intermediate["id"]);
    assert_eq!(created["max_validity_days"], 30);
    assert_eq!(created["allowed_key_types"], json!(["ecdsa-p256"]));
    assert_eq!(created["allowed_dns_names"], json!([".example.com"]));
    assert_eq!(created["allowed_ip_ranges"], json!([]));

    let (st, got) = s.api(Method::GET, "/profiles/web", None).await;
    assert_eq!(st, 200);
    assert_same_profile(&got, &created);
    let (st, list) = s.api(Method::GET, "/profiles", None).await;
    assert_eq!(st, 200);
    let names: HashSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The server's own certificate has a CA of its own, not a profile.
    assert_eq!(names, HashSet::from(["default", "web"]));

    // Conflicts and bad bodies.
    assert_problem(
        &s.api(Method::POST, "/profiles", Some(web.clone())).await,
        409,
        "conflict",
    );
    let unknown = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "x", "ca": "intermediate", "colour": "blue"})),
        )
        .await;
    assert_problem(&unknown, 400, "bad-request");
    assert!(detail(&unknown.1).contains("colour"), "{}", unknown.1);
    assert_problem(
        &s.api(Method::POST, "/profiles", Some(json!({"name": "noca"})))
            .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "badca", "ca": "nope"})),
        )
        .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "zero", "ca": "intermediate", "max_validity_days": 0})),
        )
        .await,
        400,
        "bad-request",
    );

    // PUT replaces the policy; the name cannot change.
    let renamed = s
        .api(
            Method::PUT,
            "/profiles/web",
            Some(json!({"name": "web2", "allowed_dns_names": [".example.com"]})),
        )
        .await;
    assert_problem(&renamed, 400, "bad-request");
    let unknown = s
        .api(
            Method::PUT,
            "/profiles/web",
            Some(json!({"allowed_dns_names": [".example.com"], "colour": "blue"})),
        )
        .await;
    assert_problem(&unknown, 400, "bad-request");
    assert_problem(
        &s.api(Method::PUT, "/profiles/nope", Some(json!({}))).await,
        404,
        "not-found",
    );
    let (st, updated) = s
        .api(
            Method::PUT,
            "/profiles/web",
            Some(
                json!({"allowed_dns_names": [".example.com"], "max_validity_days": 45,
                        "allowed_key_types": ["ecdsa-p256"]}),
            ),
        )
        .await;
    assert_eq!(st, 200, "{updated}");
    assert_eq!(updated["name"], "web");
    assert_eq!(updated["max_validity_days"], 45);
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(
        parse_time(&updated["created_at"]).unix_timestamp(),
        parse_time(&created["created_at"]).unix_timestamp()
    );
    let (_, got) = s.api(Method::GET, "/profiles/web", None).await;
    assert_eq!(got["max_validity_days"], 45);
    assert_same_profile(&got, &updated);

    // Policy refusals, each with its rule.
    let rejections_before = metric(&s, "certkeeper_policy_rejections_total").await;
    assert_policy(
        &issue_csr(&s, "web", "evil", "DNS:evil.org", EC_P256, json!({})).await,
        "web",
        "allowed_dns_names",
    );
    assert_policy(
        &issue_csr(&s, "web", "rsa", "DNS:rsa.example.com", RSA_2048, json!({})).await,
        "web",
        "allowed_key_types",
    );
    assert_policy(
        &issue_csr(
            &s,
            "web",
            "long",
            "DNS:long.example.com",
            EC_P256,
            json!({"validity_days": 365}),
        )
        .await,
        "web",
        "max_validity_days",
    );
    assert_policy(
        &issue_csr(
            &s,
            "web",
            "ip",
            "DNS:ip.example.com,IP:10.1.2.3",
            EC_P256,
            json!({}),
        )
        .await,
        "web",
        "allowed_ip_ranges",
    );
    // The bare suffix itself is not below it.
    assert_policy(
        &issue_csr(&s, "web", "apex", "DNS:example.com", EC_P256, json!({})).await,
        "web",
        "allowed_dns_names",
    );
    assert_eq!(
        metric(&s, "certkeeper_policy_rejections_total").await,
        rejections_before + 5
    );

    // Successes: an explicit validity, and the default (the profile's maximum).
    let ten = issue_csr(
        &s,
        "web",
        "ten",
        "DNS:www.example.com",
        EC_P256,
        json!({"validity_days": 10}),
    )
    .await;
    assert_eq!(ten.0, 201, "{}", ten.1);
    let life = parse_time(&ten.1["not_after"]) - parse_time(&ten.1["not_before"]);
    assert_eq!(life.whole_days(), 10, "{}", ten.1);
    let dflt = issue_ok(&s, "web", "deep", "DNS:a.b.example.com").await;
    let life = parse_time(&dflt["not_after"]) - parse_time(&dflt["not_before"]);
    assert_eq!(life.whole_days(), 45, "{dflt}");
    // The subject CN is the requested name.
    assert_eq!(dflt["subject"], "CN=a.b.example.com");

    // Nothing is stored for refused requests.
    let (st, page) = s.api(Method::GET, "/certificates?profile=web", None).await;
    assert_eq!(st, 200);
    let mut got_ids = ids(&page);
    got_ids.sort();
    let mut want = vec![
        ten.1["id"].as_str().unwrap().to_string(),
        dflt["id"].as_str().unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(got_ids, want);
    for c in page["items"].as_array().unwrap() {
        assert_eq!(c["profile"], "web");
        assert_eq!(c["status"], "valid");
    }

    // DELETE; afterwards the profile is gone but its certificates stay.
    let (st, _) = s.api(Method::DELETE, "/profiles/web", None).await;
    assert_eq!(st, 204);
    assert_problem(
        &s.api(Method::GET, "/profiles/web", None).await,
        404,
        "not-found",
    );
    assert_problem(
        &s.api(Method::DELETE, "/profiles/web", None).await,
        404,
        "not-found",
    );
    let gone = issue_csr(
        &s,
        "web",
        "gone",
        "DNS:gone.example.com",
        EC_P256,
        json!({}),
    )
    .await;
    assert_problem(&gone, 400, "bad-request");
    let (_, page) = s.api(Method::GET, "/certificates?profile=web", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_no_server_errors(&s).await;
}

#[tokio::test]
async fn profiles_sqlite() {
    scenario_profiles(Db::Sqlite).await;
}

#[tokio::test]
async fn profiles_postgres() {
    scenario_profiles(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 4. Tokens, roles and the audit log
// ---------------------------------------------------------------------------------------

async fn scenario_tokens(db: Db) {
    let s = TestServer::start(db).await;

    // No token, a bad scheme, an unknown token.
    let r = raw(&s, Method::GET, "/cas", None, None, None).await;
    let www =
        r.1.get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
    assert!(www.starts_with("Bearer"), "WWW-Authenticate: {www:?}");
    assert_problem(&as_problem(&r), 401, "unauthorized");
    let basic = s
        .client
        .get(s.url("/api/v1/cas"))
        .basic_auth("admin", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
    let unknown = s
        .api_as("ck_not-a-real-token", Method::GET, "/cas", None)
        .await;
    assert_problem(&unknown, 401, "unauthorized");

    // Token creation validation.
    assert_problem(
        &s.api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "i", "role": "issuer"})),
        )
        .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "v", "role": "viewer", "profiles": ["default"]})),
        )
        .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "i", "role": "issuer", "profiles": ["nope"]})),
        )
        .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "r", "role": "root"})),
        )
        .await,
        400,
        "bad-request",
    );

    // A viewer reads but cannot change anything.
    let (st, viewer) = s
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "watcher", "role": "viewer"})),
        )
        .await;
    assert_eq!(st, 201, "{viewer}");
    assert_eq!(viewer["role"], "viewer");
    assert_eq!(viewer["name"], "watcher");
    assert!(viewer.get("token_hash").is_none());
    let viewer_secret = viewer["token"].as_str().unwrap().to_string();
    assert!(viewer_secret.starts_with("ck_"), "{viewer_secret}");
    let viewer_id = viewer["id"].as_str().unwrap().to_string();

    let (st, cas) = s.api_as(&viewer_secret, Method::GET, "/cas", None).await;
    assert_eq!(st, 200);
    assert!(
        cas.as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "intermediate")
    );
    let (st, certs) = s
        .api_as(&viewer_secret, Method::GET, "/certificates", None)
        .await;
    assert_eq!(st, 200);
    assert!(certs["items"].is_array());
    let (st, _) = s
        .api_as(&viewer_secret, Method::GET, "/profiles/default", None)
        .await;
    assert_eq!(st, 200);
    let (_, csr) = openssl_csr(
        s.dir.path(),
        "viewer",
        "/CN=v.example.com",
        "DNS:v.example.com",
        EC_P256,
    );
    assert_problem(
        &s.api_as(
            &viewer_secret,
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": csr})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_problem(
        &s.api_as(
            &viewer_secret,
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": ["v.example.com"]})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_problem(
        &s.api_as(&viewer_secret, Method::GET, "/audit", None).await,
        403,
        "forbidden",
    );
    assert_problem(
        &s.api_as(
            &viewer_secret,
            Method::POST,
            "/tokens",
            Some(json!({"name": "escalate", "role": "admin"})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_problem(
        &s.api_as(&viewer_secret, Method::GET, "/tokens", None).await,
        403,
        "forbidden",
    );

    // An issuer limited to `default`.
    let (st, _) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "other", "ca": "intermediate", "allowed_dns_names": ["*"]})),
        )
        .await;
    assert_eq!(st, 201);
    let (st, issuer) = s
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "ci-issuer", "role": "issuer", "profiles": ["default"]})),
        )
        .await;
    assert_eq!(st, 201, "{issuer}");
    assert_eq!(issuer["profiles"], json!(["default"]));
    let issuer_secret = issuer["token"].as_str().unwrap().to_string();
    let issuer_id = issuer["id"].as_str().unwrap().to_string();
    let (_, csr) = openssl_csr(
        s.dir.path(),
        "issuer",
        "/CN=i.example.com",
        "DNS:i.example.com",
        EC_P256,
    );
    let (st, issued) = s
        .api_as(
            &issuer_secret,
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": csr})),
        )
        .await;
    assert_eq!(st, 201, "{issued}");
    let issued_id = issued["id"].as_str().unwrap().to_string();
    let (_, rec) = s
        .api(Method::GET, &format!("/certificates/{issued_id}"), None)
        .await;
    assert_eq!(rec["created_by"], format!("token:ci-issuer:{issuer_id}"));
    assert_problem(
        &s.api_as(
            &issuer_secret,
            Method::POST,
            "/certificates",
            Some(json!({"profile": "other", "csr": csr})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_problem(
        &s.api_as(
            &issuer_secret,
            Method::POST,
            "/profiles",
            Some(json!({"name": "mine", "ca": "intermediate"})),
        )
        .await,
        403,
        "forbidden",
    );
    // A certificate of another profile cannot be revoked by the issuer; its own can.
    let (st, other_cert) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "other", "dns_names": ["o.example.com"]})),
        )
        .await;
    assert_eq!(st, 201);
    let other_id = other_cert["id"].as_str().unwrap().to_string();
    assert_problem(
        &s.api_as(
            &issuer_secret,
            Method::POST,
            &format!("/certificates/{other_id}/revoke"),
            Some(json!({})),
        )
        .await,
        403,
        "forbidden",
    );
    let (st, revoked) = s
        .api_as(
            &issuer_secret,
            Method::POST,
            &format!("/certificates/{issued_id}/revoke"),
            Some(json!({"reason": "superseded"})),
        )
        .await;
    assert_eq!(st, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revocation_reason"], 4);
    let (st, _) = s
        .api(
            Method::POST,
            &format!("/certificates/{other_id}/revoke"),
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(st, 200);

    // The secrets appear only in the create answers.
    let (st, listing) = s.api(Method::GET, "/tokens", None).await;
    assert_eq!(st, 200);
    let text = listing.to_string();
    for secret in [&viewer_secret, &issuer_secret, &s.token] {
        assert!(
            !text.contains(secret.as_str()),
            "token listing leaks a secret: {text}"
        );
    }
    let tokens = listing.as_array().unwrap();
    assert_eq!(tokens.len(), 3, "{listing}");
    for t in tokens {
        assert!(t.get("token").is_none(), "{t}");
        assert!(t.get("token_hash").is_none(), "{t}");
    }
    let admin_id = tokens
        .iter()
        .find(|t| t["name"] == "admin")
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_string();

    // Revoking a token makes it useless at once.
    let (st, _) = s
        .api(Method::DELETE, &format!("/tokens/{viewer_id}"), None)
        .await;
    assert_eq!(st, 204);
    let after = s.api_as(&viewer_secret, Method::GET, "/cas", None).await;
    assert_problem(&after, 401, "unauthorized");
    assert_problem(
        &s.api(Method::DELETE, &format!("/tokens/{viewer_id}"), None)
            .await,
        404,
        "not-found",
    );
    let (_, listing) = s.api(Method::GET, "/tokens", None).await;
    let v = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == viewer_id.as_str())
        .unwrap();
    assert!(v["revoked_at"].is_string(), "{v}");
    let (st, _) = s.api_as(&issuer_secret, Method::GET, "/cas", None).await;
    assert_eq!(st, 200, "other tokens keep working");

    // The audit log names who did what, from where.
    let (st, audit) = s.api(Method::GET, "/audit?limit=1000", None).await;
    assert_eq!(st, 200, "{audit}");
    let items = audit["items"].as_array().unwrap();
    let admin_actor = format!("token:admin:{admin_id}");
    let issuer_actor = format!("token:ci-issuer:{issuer_id}");
    let find = |action: &str, actor: &str, object: &str| {
        items
            .iter()
            .find(|e| e["action"] == action && e["actor"] == actor && e["object_id"] == object)
    };
    let checks = [
        (
            "certificate.issue",
            issuer_actor.as_str(),
            issued_id.as_str(),
        ),
        ("certificate.issue", admin_actor.as_str(), other_id.as_str()),
        (
            "certificate.revoke",
            issuer_actor.as_str(),
            issued_id.as_str(),
        ),
        (
            "certificate.revoke",
            admin_actor.as_str(),
            other_id.as_str(),
        ),
        ("token.create", admin_actor.as_str(), viewer_id.as_str()),
        ("token.create", admin_actor.as_str(), issuer_id.as_str()),
        ("token.revoke", admin_actor.as_str(), viewer_id.as_str()),
    ];
    for (action, actor, object) in checks {
        let e = find(action, actor, object)
            .unwrap_or_else(|| panic!("no audit entry {action} by {actor} on {object}: {audit}"));
        assert_eq!(e["source"], "127.0.0.1", "{e}");
    }
    let pc = items
        .iter()
        .find(|e| e["action"] == "profile.create" && e["actor"] == admin_actor.as_str())
        .expect("profile.create by admin");
    assert_eq!(pc["source"], "127.0.0.1");
    assert_eq!(pc["detail"]["name"], "other");
    // Start-up entries are by `system`, with no source.
    let boot = items
        .iter()
        .find(|e| e["action"] == "token.create" && e["object_id"] == admin_id.as_str())
        .expect("bootstrap token.create");
    assert_eq!(boot["actor"], "system");
    assert_eq!(boot["source"], Value::Null);
    // Newest first, and the action filter works.
    let seq: Vec<i64> = items.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(seq.windows(2).all(|w| w[0] > w[1]), "{seq:?}");
    let (_, only) = s.api(Method::GET, "/audit?action=token.create", None).await;
    let only = only["items"].as_array().unwrap();
    assert_eq!(only.len(), 3);
    assert!(only.iter().all(|e| e["action"] == "token.create"));
    // No secret in the audit log either.
    let text = audit.to_string();
    for secret in [&viewer_secret, &issuer_secret, &s.token] {
        assert!(!text.contains(secret.as_str()), "audit log leaks a secret");
    }
    // The issuer cannot read the audit log.
    assert_problem(
        &s.api_as(&issuer_secret, Method::GET, "/audit", None).await,
        403,
        "forbidden",
    );
    assert_no_server_errors(&s).await;
}

#[tokio::test]
async fn tokens_sqlite() {
    scenario_tokens(Db::Sqlite).await;
}

#[tokio::test]
async fn tokens_postgres() {
    scenario_tokens(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 5. Bad input
// ---------------------------------------------------------------------------------------

async fn scenario_bad_input(db: Db) {
    let s = TestServer::start(db).await;

    // CSRs.
    let junk = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": "this is not a CSR"})),
        )
        .await;
    assert_problem(&junk, 400, "bad-csr");
    let wrong_block = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": s.root_pem})),
        )
        .await;
    assert_problem(&wrong_block, 400, "bad-csr");
    let (_, csr) = openssl_csr(
        s.dir.path(),
        "flip",
        "/CN=flip.example.com",
        "DNS:flip.example.com",
        EC_P256,
    );
    let mut der = pem::parse(&csr).unwrap().into_contents();
    let n = der.len();
    der[n - 1] ^= 0x01;
    let tampered = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
    let flipped = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": tampered})),
        )
        .await;
    assert_problem(&flipped, 400, "bad-csr");
    assert!(detail(&flipped.1).contains("signature"), "{}", flipped.1);
    // The untampered CSR is fine.
    let (st, good) = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": csr})),
        )
        .await;
    assert_eq!(st, 201, "{good}");
    let good_id = good["id"].as_str().unwrap().to_string();

    // Bodies.
    let r = raw(
        &s,
        Method::POST,
        "/certificates",
        Some(&s.token),
        Some("application/json"),
        Some(b"{\"profile\": \"default\", \"csr\": ".to_vec()),
    )
    .await;
    assert_problem(&as_problem(&r), 400, "bad-request");
    let r = raw(
        &s,
        Method::POST,
        "/certificates",
        Some(&s.token),
        None,
        Some(serde_json::to_vec(&json!({"profile": "default", "csr": csr})).unwrap()),
    )
    .await;
    assert_problem(&as_problem(&r), 415, "unsupported-media-type");
    let r = raw(
        &s,
        Method::POST,
        "/certificates",
        Some(&s.token),
        Some("text/plain"),
        Some(serde_json::to_vec(&json!({"profile": "default", "csr": csr})).unwrap()),
    )
    .await;
    assert_problem(&as_problem(&r), 415, "unsupported-media-type");
    let big = format!(
        "{{\"profile\": \"default\", \"csr\": \"{}\"}}",
        "A".repeat(2 * 1024 * 1024)
    );
    let r = oversized(&s, big.into_bytes()).await;
    assert_problem(&as_problem(&r), 413, "payload-too-large");
    let unknown = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": csr, "validity": 3})),
        )
        .await;
    assert_problem(&unknown, 400, "bad-request");
    assert!(detail(&unknown.1).contains("validity"), "{}", unknown.1);
    assert_problem(
        &s.api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": csr, "validity_days": 0})),
        )
        .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": csr, "validity_days": 5,
                        "not_after": "2030-01-01T00:00:00Z"})),
        )
        .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "nope", "csr": csr})),
        )
        .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/cas",
            Some(json!({"name": "x", "type": "bogus", "common_name": "X"})),
        )
        .await,
        400,
        "bad-request",
    );

    // Lookups and queries.
    assert_problem(
        &s.api(Method::GET, "/certificates/nonexistent", None).await,
        404,
        "not-found",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates/nonexistent/pem", None)
            .await,
        404,
        "not-found",
    );
    assert_problem(
        &s.api(Method::GET, "/cas/nonexistent", None).await,
        404,
        "not-found",
    );
    assert_problem(
        &s.api(Method::GET, "/profiles/nonexistent", None).await,
        404,
        "not-found",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates?status=bogus", None).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates?limit=0", None).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates?limit=1001", None).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates?limit=abc", None).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates?cursor=%21%21%21", None)
            .await,
        400,
        "bad-request",
    );
    let no_dot = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("garbage");
    assert_problem(
        &s.api(Method::GET, &format!("/certificates?cursor={no_dot}"), None)
            .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates?bogus=1", None).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates?expiring_before=tomorrow", None)
            .await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/certificates?ca=nope", None).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/audit?limit=0", None).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::GET, "/cas/intermediate/crl?format=txt", None)
            .await,
        400,
        "bad-request",
    );

    // Revocation.
    let path = format!("/certificates/{good_id}/revoke");
    let bogus = s
        .api(Method::POST, &path, Some(json!({"reason": "bogus"})))
        .await;
    assert_problem(&bogus, 400, "bad-request");
    assert!(detail(&bogus.1).contains("bogus"), "{}", bogus.1);
    assert_problem(
        &s.api(Method::POST, &path, Some(json!({"reason": 7}))).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::POST, &path, Some(json!({"reason": 8}))).await,
        400,
        "bad-request",
    );
    assert_problem(
        &s.api(Method::POST, &path, Some(json!({"reason": 300})))
            .await,
        400,
        "bad-request",
    );
    let (_, still) = s
        .api(Method::GET, &format!("/certificates/{good_id}"), None)
        .await;
    assert_eq!(
        still["status"], "valid",
        "refused revocations change nothing"
    );
    let (st, first) = s
        .api(
            Method::POST,
            &path,
            Some(json!({"reason": "key_compromise"})),
        )
        .await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(first["revocation_reason"], 1);
    assert_problem(
        &s.api(Method::POST, &path, Some(json!({}))).await,
        409,
        "conflict",
    );
    assert_problem(
        &s.api(
            Method::POST,
            "/certificates/nonexistent/revoke",
            Some(json!({})),
        )
        .await,
        404,
        "not-found",
    );

    // Routing.
    let unknown_path = s.api(Method::GET, "/nothing/here", None).await;
    assert_problem(&unknown_path, 404, "not-found");
    assert!(
        detail(&unknown_path.1).contains("/nothing/here"),
        "{}",
        unknown_path.1
    );
    // A wrong method is a 405 problem that names the method.
    let wrong = raw(&s, Method::DELETE, "/cas", Some(&s.token), None, None).await;
    let allow = wrong
        .1
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let wrong = as_problem(&wrong);
    assert_problem(&wrong, 405, "method-not-allowed");
    assert!(detail(&wrong.1).contains("DELETE"), "{}", wrong.1);
    let allow = allow.expect("a 405 carries Allow");
    let allowed: HashSet<&str> = allow.split(',').map(str::trim).collect();
    assert!(
        allowed.contains("GET") && allowed.contains("POST"),
        "Allow: {allow}"
    );
    assert!(!allowed.contains("DELETE"), "Allow: {allow}");
    let wrong = s
        .api(Method::PATCH, &format!("/certificates/{good_id}"), None)
        .await;
    assert_problem(&wrong, 405, "method-not-allowed");

    assert_no_server_errors(&s).await;
}

#[tokio::test]
async fn bad_input_sqlite() {
    scenario_bad_input(Db::Sqlite).await;
}

#[tokio::test]
async fn bad_input_postgres() {
    scenario_bad_input(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 6. Search and pagination
// ---------------------------------------------------------------------------------------

/// Issue the five search fixtures under profile `search`; returns their answers in issuance
/// order, after revoking the second one (`b.example.com`).
async fn search_fixtures(s: &TestServer) -> Vec<Value> {
    let (st, _) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "search", "ca": "intermediate", "allowed_dns_names": [".example.com"],
                        "allowed_ip_ranges": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(st, 201);
    let mut issued = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        let mut body = json!({"profile": "search", "dns_names": [format!("{name}.example.com")]});
        if name == "c" {
            body["ip_addresses"] = json!(["10.0.0.9"]);
        }
        let (st, v) = s
            .api(Method::POST, "/certificates/generate", Some(body))
            .await;
        assert_eq!(st, 201, "{v}");
        issued.push(v);
    }
    let (st, _) = s
        .api(
            Method::POST,
            &format!("/certificates/{}/revoke", issued[1]["id"].as_str().unwrap()),
            Some(json!({"reason": "superseded"})),
        )
        .await;
    assert_eq!(st, 200);
    issued
}

async fn scenario_search(db: Db) {
    let s = TestServer::start(db).await;
    let issued = search_fixtures(&s).await;
    let id = |i: usize| issued[i]["id"].as_str().unwrap().to_string();
    let all: HashSet<String> = (0..5).map(id).collect();
    let set = |v: &Value| ids(v).into_iter().collect::<HashSet<String>>();
    let q = |query: String| {
        let s = &s;
        async move {
            let (st, v) = s
                .api(Method::GET, &format!("/certificates?{query}"), None)
                .await;
            assert_eq!(st, 200, "{query}: {v}");
            v
        }
    };

    assert_eq!(ids(&q("san=a.example.com".into()).await), vec![id(0)]);
    assert_eq!(
        ids(&q("san=A.Example.COM.".into()).await),
        vec![id(0)],
        "names are normalised"
    );
    assert_eq!(ids(&q("san=10.0.0.9".into()).await), vec![id(2)]);
    assert_eq!(set(&q("san=*.example.com".into()).await), all);
    assert_eq!(set(&q("san=.example.com".into()).await), all);
    assert_eq!(set(&q("san=*.COM".into()).await), all, "any depth below");
    assert!(
        ids(&q("san=*.ample.com".into()).await).is_empty(),
        "a domain search matches whole labels"
    );
    assert!(ids(&q("san=*.a.example.com".into()).await).is_empty());
    assert!(ids(&q("san=example.com".into()).await).is_empty());
    assert!(ids(&q("san=z.example.com".into()).await).is_empty());

    let revoked = q("status=revoked".into()).await;
    assert_eq!(ids(&revoked), vec![id(1)]);
    assert_eq!(revoked["items"][0]["status"], "revoked");
    assert_eq!(revoked["items"][0]["revocation_reason"], 4);
    let valid = q("status=valid&profile=search".into()).await;
    assert_eq!(set(&valid), HashSet::from([id(0), id(2), id(3), id(4)]));
    // Without the profile filter, the server's own HTTPS certificate is valid too.
    let valid_all = q("status=valid".into()).await;
    let items = valid_all["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{valid_all}");
    let server_certs: Vec<&Value> = items.iter().filter(|c| c["profile"] != "search").collect();
    assert_eq!(server_certs.len(), 1);
    assert_eq!(server_certs[0]["profile"], "certkeeper-server");
    assert!(ids(&q("status=expired".into()).await).is_empty());

    assert_eq!(set(&q("profile=search".into()).await), all);
    assert!(ids(&q("profile=default".into()).await).is_empty());
    let (_, inter) = s.api(Method::GET, "/cas/intermediate", None).await;
    let by_name = q("ca=intermediate".into()).await;
    assert_eq!(
        by_name["items"].as_array().unwrap().len(),
        5,
        "five: the server's certificate is under the server CA"
    );
    let by_id = q(format!("ca={}", inter["id"].as_str().unwrap())).await;
    assert_eq!(ids(&by_id), ids(&by_name));
    assert!(ids(&q("ca=root".into()).await).is_empty());

    let serial = issued[3]["serial"].as_str().unwrap().to_string();
    assert_eq!(ids(&q(format!("serial={serial}")).await), vec![id(3)]);
    let colons = serial
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(
        ids(&q(format!("serial={colons}")).await),
        vec![id(3)],
        "serial {colons}"
    );

    assert_eq!(
        set(&q("expiring_before=2999-01-01T00:00:00Z&profile=search".into()).await),
        all
    );
    assert!(ids(&q("expiring_before=2000-01-01T00:00:00Z".into()).await).is_empty());
    let combined =
        q("san=*.example.com&status=valid&expiring_before=2999-01-01T00:00:00Z".into()).await;
    assert_eq!(set(&combined), HashSet::from([id(0), id(2), id(3), id(4)]));

    // Pagination: every certificate exactly once, newest (by creation time) first.
    let mut seen: Vec<String> = Vec::new();
    let mut created: Vec<OffsetDateTime> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = "profile=search&limit=2".to_string();
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let page = q(query).await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() <= 2, "{page}");
        for c in items {
            seen.push(c["id"].as_str().unwrap().to_string());
            created.push(parse_time(&c["created_at"]));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    // A single page of the same query has the same order.
    assert_eq!(ids(&q("profile=search&limit=5".into()).await), seen);
    assert_eq!(
        q("profile=search&limit=5".into()).await["next_cursor"],
        Value::Null
    );

    // The formats of one certificate.
    let d = &issued[3];
    let (st, ct, pem_body) = get_bytes(&s, &format!("/certificates/{}/pem", id(3))).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/x-pem-file");
    let pem_text = String::from_utf8(pem_body).unwrap();
    assert_eq!(
        pem_certs(&pem_text),
        pem_certs(d["certificate"].as_str().unwrap())
    );
    let (st, ct, der) = get_bytes(&s, &format!("/certificates/{}/der", id(3))).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/pkix-cert");
    assert_eq!(vec![der.clone()], pem_certs(&pem_text));
    let der_file = s.write("d.der", &der);
    let (ok, out) = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        p(&der_file),
        "-noout",
        "-serial",
        "-subject",
    ]);
    assert!(ok, "{out}");
    let serial_line = out.lines().find(|l| l.starts_with("serial=")).unwrap();
    assert!(
        same_serial(serial_line, &serial),
        "{serial_line} vs {serial}"
    );
    assert!(out.contains("d.example.com"), "{out}");
    let (st, ct, chain) = get_bytes(&s, &format!("/certificates/{}/chain", id(3))).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/pem-certificate-chain");
    let chain = pem_certs(&String::from_utf8(chain).unwrap());
    assert_eq!(chain.len(), 2, "leaf and intermediate, no root");
    assert_eq!(chain[0], der);
    assert_eq!(
        chain[1],
        pem_certs(inter["certificate"].as_str().unwrap())[0]
    );
    assert!(!chain.contains(&pem_certs(&s.root_pem)[0]));
    let (st, one) = s
        .api(Method::GET, &format!("/certificates/{}", id(3)), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(one["serial"], serial.as_str());
    assert_eq!(one["sans"], json!(["d.example.com"]));
    assert_eq!(one["common_name"], "d.example.com");
    assert_eq!(one["status"], "valid");
    assert_eq!(one["managed"], false);
    assert_eq!(one["ca_id"], inter["id"]);
    assert_eq!(one["fingerprint_sha256"], d["fingerprint_sha256"]);
    assert_eq!(pem_certs(one["certificate"].as_str().unwrap()), vec![der]);
    let (_, c) = s
        .api(Method::GET, &format!("/certificates/{}", id(2)), None)
        .await;
    let sans: HashSet<&str> = c["sans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(sans, HashSet::from(["c.example.com", "10.0.0.9"]));
    assert_no_server_errors(&s).await;
}

#[tokio::test]
async fn search_sqlite() {
    scenario_search(Db::Sqlite).await;
}

#[tokio::test]
async fn search_postgres() {
    scenario_search(Db::Postgres).await;
}

/// Listings are documented as "newest first", but rows are ordered by
/// `created_at` (whole seconds) and then by the random UUID id, so certificates issued in
/// the same second come back in random order rather than newest first.
async fn scenario_newest_first(db: Db) {
    let s = TestServer::start(db).await;
    let issued = search_fixtures(&s).await;
    let mut newest_first: Vec<String> = issued
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    newest_first.reverse();
    let (_, page) = s
        .api(Method::GET, "/certificates?profile=search", None)
        .await;
    assert_eq!(ids(&page), newest_first, "newest first");
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/certificates?profile=search&limit=2&cursor={c}"),
            None => "/certificates?profile=search&limit=2".to_string(),
        };
        let (_, page) = s.api(Method::GET, &path, None).await;
        paged.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, newest_first, "pages newest first");
}

#[tokio::test]
async fn newest_first_sqlite() {
    scenario_newest_first(Db::Sqlite).await;
}

#[tokio::test]
async fn newest_first_postgres() {
    scenario_newest_first(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 7. Server-side keys
// ---------------------------------------------------------------------------------------

async fn scenario_server_keys(db: Db) {
    let s = TestServer::start(db).await;

    // PEM: the key belongs to the certificate.
    let (st, pem_out) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": ["k.example.com"], "format": "pem"})),
        )
        .await;
    assert_eq!(st, 201, "{pem_out}");
    let key_pem = pem_out["private_key"].as_str().unwrap().to_string();
    assert!(
        key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{key_pem}"
    );
    assert!(pem_out.get("pkcs12").is_none());
    let key_file = s.write("k.key", &key_pem);
    let cert_file = s.write("k.pem", pem_out["certificate"].as_str().unwrap());
    let (ok, from_key) = openssl(&["pkey", "-in", p(&key_file), "-pubout"]);
    assert!(ok, "{from_key}");
    let (ok, from_cert) = openssl(&["x509", "-in", p(&cert_file), "-pubkey", "-noout"]);
    assert!(ok, "{from_cert}");
    assert_eq!(from_key, from_cert);
    assert!(from_key.starts_with("-----BEGIN PUBLIC KEY-----"));
    let (_, one) = s
        .api(
            Method::GET,
            &format!("/certificates/{}", pem_out["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(one["managed"], false);
    assert_eq!(one["key_algorithm"], "ecdsa-p256");

    // Another key type.
    let (st, p384) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": ["k384.example.com"], "key_algorithm": "ecdsa-p384"})),
        )
        .await;
    assert_eq!(st, 201, "{p384}");
    let (_, one) = s
        .api(
            Method::GET,
            &format!("/certificates/{}", p384["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(one["key_algorithm"], "ecdsa-p384");

    // PKCS#12 with a password opens with openssl.
    let (st, p12_out) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(
                json!({"profile": "default", "dns_names": ["p12.example.com"], "format": "pkcs12",
                        "password": "s3cret-pw"}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{p12_out}");
    assert!(p12_out.get("private_key").is_none(), "{p12_out}");
    let p12 = base64::engine::general_purpose::STANDARD
        .decode(p12_out["pkcs12"].as_str().unwrap())
        .expect("base64");
    let p12_file = s.write("k.p12", &p12);
    let (ok, opened) = openssl(&[
        "pkcs12",
        "-in",
        p(&p12_file),
        "-passin",
        "pass:s3cret-pw",
        "-nodes",
    ]);
    assert!(ok, "{opened}");
    assert!(opened.contains("-----BEGIN PRIVATE KEY-----"), "{opened}");
    let in_p12 = pem_certs(&opened);
    assert!(
        in_p12.contains(&pem_certs(p12_out["certificate"].as_str().unwrap())[0]),
        "the PKCS#12 holds the certificate"
    );
    let (ok, out) = openssl(&[
        "pkcs12",
        "-in",
        p(&p12_file),
        "-passin",
        "pass:wrong-pw",
        "-nodes",
    ]);
    assert!(!ok, "a wrong password must not open it: {out}");
    // Key and certificate from the PKCS#12 match.
    let (ok, key_only) = openssl(&[
        "pkcs12",
        "-in",
        p(&p12_file),
        "-passin",
        "pass:s3cret-pw",
        "-nodes",
        "-nocerts",
    ]);
    assert!(ok, "{key_only}");
    let p12_key = s.write("p12.key", &key_only);
    let p12_cert = s.write("p12.pem", p12_out["certificate"].as_str().unwrap());
    let (_, a) = openssl(&["pkey", "-in", p(&p12_key), "-pubout"]);
    let (_, b) = openssl(&["x509", "-in", p(&p12_cert), "-pubkey", "-noout"]);
    assert_eq!(a, b);

    // Password rules.
    for body in [
        json!({"profile": "default", "dns_names": ["x.example.com"], "format": "pkcs12"}),
        json!({"profile": "default", "dns_names": ["x.example.com"], "format": "pkcs12", "password": "abc"}),
        json!({"profile": "default", "dns_names": ["x.example.com"], "password": "s3cret-pw"}),
        json!({"profile": "default", "dns_names": ["x.example.com"], "format": "jks"}),
    ] {
        let r = s
            .api(Method::POST, "/certificates/generate", Some(body.clone()))
            .await;
        assert_problem(&r, 400, "bad-request");
    }
    // A key type the profile does not allow is refused before generation.
    let (st, _) = s
        .api(
            Method::POST,
            "/profiles",
            Some(
                json!({"name": "p256only", "ca": "intermediate", "allowed_dns_names": ["*"],
                        "allowed_key_types": ["ecdsa-p256"]}),
            ),
        )
        .await;
    assert_eq!(st, 201);
    let r = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "p256only", "dns_names": ["x.example.com"], "key_algorithm": "rsa-2048"})),
        )
        .await;
    assert_policy(&r, "p256only", "allowed_key_types");
    let (_, page) = s
        .api(Method::GET, "/certificates?profile=default", None)
        .await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        3,
        "refused requests store nothing"
    );

    // Managed: the key stays on the server, and no GET ever shows it.
    let (st, managed) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": ["m.example.com"], "managed": true})),
        )
        .await;
    assert_eq!(st, 201, "{managed}");
    let mid = managed["id"].as_str().unwrap().to_string();
    let mkey = managed["private_key"].as_str().unwrap().to_string();
    let key_body: String = pem::parse(&mkey)
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b.contents()))
        .unwrap();
    let (_, one) = s
        .api(Method::GET, &format!("/certificates/{mid}"), None)
        .await;
    assert_eq!(one["managed"], true);
    let (_, page) = s
        .api(Method::GET, "/certificates?san=m.example.com", None)
        .await;
    assert_eq!(page["items"][0]["managed"], true);
    let mut texts = vec![one.to_string(), page.to_string()];
    for path in [
        format!("/certificates/{mid}"),
        format!("/certificates/{mid}/pem"),
        format!("/certificates/{mid}/chain"),
        format!("/certificates/{mid}/der"),
        "/certificates?limit=1000".to_string(),
        "/audit?limit=1000".to_string(),
        "/cas".to_string(),
        "/cas/intermediate".to_string(),
    ] {
        let (st, _, body) = get_bytes(&s, &path).await;
        assert_eq!(st, 200, "{path}");
        texts.push(String::from_utf8_lossy(&body).to_string());
    }
    for t in &texts {
        assert!(!t.contains("PRIVATE KEY"), "a GET shows a private key: {t}");
        assert!(!t.contains(&key_body), "a GET shows the managed key");
        assert!(
            !t.contains(&key_body[10..50]),
            "a GET shows part of the managed key"
        );
    }
    assert_no_server_errors(&s).await;
}

#[tokio::test]
async fn server_keys_sqlite() {
    scenario_server_keys(Db::Sqlite).await;
}

#[tokio::test]
async fn server_keys_postgres() {
    scenario_server_keys(Db::Postgres).await;
}
