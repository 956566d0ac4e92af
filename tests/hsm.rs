//! CA keys in a PKCS#11 token, against Debian's SoftHSM2 (`softhsm2`), whose token each test
//! initialises in a directory of its own: a root and an intermediate with their keys made
//! in the token, certificates issued through the REST API and checked with `openssl verify`,
//! a revocation seen in a CRL (`openssl crl -verify`) and over OCSP (`openssl ocsp`), the
//! keys inspected with `pkcs11-tool` (OpenSC), a restart that still signs, and a start with
//! the module, the token or a key missing refused with an error that names it; the
//! dashboard's create-CA form making a CA whose key is in the token.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const LABEL: &str = "certkeeper-test";
const SO_PIN: &str = "12345678";
const PIN: &str = "87654321";

/// A SoftHSM2 token initialised in a temporary directory.
struct SoftHsm {
    dir: tempfile::TempDir,
}

impl SoftHsm {
    fn new() -> SoftHsm {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).unwrap();
        let hsm = SoftHsm { dir };
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", hsm.conf())
            .args([
                "--init-token",
                "--free",
                "--label",
                LABEL,
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ])
            .output()
            .expect("softhsm2-util runs (Debian package softhsm2)");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        hsm
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The server's environment for this token, the PIN read from a file.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SOFTHSM2_CONF".into(), self.conf().display().to_string()),
            ("CERTKEEPER_HSM__MODULE".into(), MODULE.into()),
            ("CERTKEEPER_HSM__TOKEN_LABEL".into(), LABEL.into()),
            (
                "CERTKEEPER_HSM__PIN_FILE".into(),
                self.dir.path().join("pin").display().to_string(),
            ),
        ]
    }

    /// `pkcs11-tool --list-objects` for one object type, logged in.
    fn list(&self, kind: &str) -> String {
        let out = Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", self.conf())
            .args([
                "--module",
                MODULE,
                "--token-label",
                LABEL,
                "--login",
                "--pin",
                PIN,
                "--list-objects",
                "--type",
                kind,
            ])
            .output()
            .expect("pkcs11-tool runs (Debian package opensc)");
        assert!(
            out.status.success(),
            "pkcs11-tool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn create_ca(s: &TestServer, body: Value) -> Value {
    let (status, ca) = s.api(Method::POST, "/cas", Some(body)).await;
    assert_eq!(status, 201, "{ca}");
    assert_eq!(ca["key_storage"], "pkcs11", "{ca}");
    ca
}

async fn issue(s: &TestServer, name: &str) -> Value {
    let (_, csr) = openssl_csr(
        s.dir.path(),
        name,
        &format!("/CN={name}.hsm.test"),
        &format!("DNS:{name}.hsm.test"),
        EC_P256,
    );
    let (status, body) = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "hsm", "csr": csr})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// `openssl verify` of an issued certificate against the token-backed root.
fn verify(s: &TestServer, root: &Path, cert: &Value, name: &str) {
    let chain = s.write(
        &format!("{name}-chain.pem"),
        cert["chain"].as_str().unwrap(),
    );
    let leaf = s.write(
        &format!("{name}.pem"),
        cert["certificate"].as_str().unwrap(),
    );
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(root),
        "-untrusted",
        p(&chain),
        "-purpose",
        "sslserver",
        "-verify_hostname",
        &format!("{name}.hsm.test"),
        p(&leaf),
    ]);
    assert!(ok && out.contains(": OK"), "{out}");
}

/// `openssl ocsp` for `cert` at the server; returns its output.
fn ocsp(s: &TestServer, bundle: &Path, int: &Path, cert: &Value, name: &str) -> String {
    let leaf = s.write(
        &format!("{name}.pem"),
        cert["certificate"].as_str().unwrap(),
    );
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(int),
        "-cert",
        p(&leaf),
        "-url",
        &format!("http://127.0.0.1:{}/ocsp", s.http_port),
        "-CAfile",
        p(bundle),
    ]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    out
}

/// The stored key columns of a CA: (length of key_sealed, key_ref).
async fn stored_key(s: &TestServer, ca_id: &str) -> (usize, Option<String>) {
    sqlx::any::install_default_drivers();
    let url = s.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=ro",
            s.data_dir.join("certkeeper.db").display()
        )
    });
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let row = sqlx::query("SELECT key_sealed, key_ref FROM cas WHERE id = $1")
        .bind(ca_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let sealed: Vec<u8> = row.try_get(0).unwrap();
    let key_ref: Option<String> = row.try_get(1).unwrap();
    pool.close().await;
    (sealed.len(), key_ref)
}

async fn hierarchy_in_the_token(db: Db, ocsp_signer: &str) {
    let hsm = SoftHsm::new();
    let mut env = hsm.env();
    env.push(("CERTKEEPER_CA__OCSP_SIGNER".into(), ocsp_signer.into()));
    let mut s = TestServer::start_with(db, &refs(&env)).await;

    let root = create_ca(
        &s,
        json!({"name": "hsm-root", "type": "root", "common_name": "HSM Root",
               "key_algorithm": "ecdsa-p384", "key_storage": "pkcs11"}),
    )
    .await;
    // The intermediate through the CLI, as an operator would.
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(&s.data_dir)
        .args(["--server", &s.url("")])
        .args([
            "ca",
            "create-intermediate",
            "hsm-int",
            "--parent",
            "hsm-root",
            "--cn",
            "HSM Intermediate",
            "--key-type",
            "ecdsa-p256",
            "--path-len",
            "0",
            "--key-storage",
            "pkcs11",
        ])
        .env_remove("CERTKEEPER_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, int) = s.api(Method::GET, "/cas/hsm-int", None).await;
    assert_eq!(status, 200, "{int}");
    assert_eq!(int["key_storage"], "pkcs11", "{int}");
    assert_eq!(int["parent_id"], root["id"], "{int}");
    let (status, body) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "hsm", "ca": "hsm-int", "allowed_dns_names": [".hsm.test"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // The keys are in the token, sensitive and never extractable, and the database holds
    // only their references: nothing sealed.
    let keys = hsm.list("privkey");
    assert_eq!(keys.matches("Private Key Object").count(), 2, "{keys}");
    let field = |name: &str| -> Vec<String> {
        keys.lines()
            .filter_map(|l| l.trim_start().strip_prefix(name))
            .map(|v| v.trim().to_string())
            .collect()
    };
    let access = field("Access:");
    assert_eq!(access.len(), 2, "{keys}");
    for a in &access {
        let flags: Vec<&str> = a.split(", ").collect();
        assert!(
            flags.contains(&"sensitive") && flags.contains(&"never extractable"),
            "{keys}"
        );
        assert!(!flags.contains(&"extractable"), "{keys}");
    }
    assert_eq!(
        field("Usage:"),
        ["sign", "sign"],
        "signing keys only: {keys}"
    );
    for ca in [&root, &int] {
        let id = ca["id"].as_str().unwrap();
        let (sealed, key_ref) = stored_key(&s, id).await;
        assert_eq!(
            sealed, 0,
            "nothing is sealed for a CA whose key is in the token"
        );
        let key_ref = key_ref.expect("the CA records where its key is");
        assert!(
            key_ref.starts_with(&format!("pkcs11:token={LABEL};id=%")),
            "{key_ref}"
        );
        assert!(keys.contains(&format!("certkeeper-ca-{id}")), "{keys}");
    }
    // The root signed the intermediate's certificate with the token's key.
    let root_p = s.write("hsm-root.pem", root["certificate"].as_str().unwrap());
    let int_p = s.write("hsm-int.pem", int["certificate"].as_str().unwrap());
    let (ok, out) = openssl(&["verify", "-CAfile", p(&root_p), p(&int_p)]);
    assert!(ok, "{out}");
    let bundle = s.write(
        "bundle.pem",
        format!(
            "{}{}",
            root["certificate"].as_str().unwrap(),
            int["certificate"].as_str().unwrap()
        ),
    );

    // Certificates issued at once all sign through the token's pooled sessions.
    let names: Vec<String> = (0..6).map(|i| format!("web{i}")).collect();
    let issued = futures::future::join_all(names.iter().map(|n| issue(&s, n))).await;
    for (cert, name) in issued.iter().zip(&names) {
        assert_eq!(cert["ca_id"], int["id"]);
        verify(&s, &root_p, cert, name);
    }

    // A revocation: the CRL, signed in the token, verifies and lists it; OCSP says revoked.
    let revoked = &issued[0];
    let (status, body) = s
        .api(
            Method::POST,
            &format!("/certificates/{}/revoke", revoked["id"].as_str().unwrap()),
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let crl = reqwest::get(s.http_url(&format!("/crl/{}.crl", int["id"].as_str().unwrap())))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let crl_p = s.write("hsm-int.crl", crl);
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_p),
        "-CAfile",
        p(&bundle),
        "-verify",
        "-noout",
        "-text",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    assert!(
        out.contains(&revoked["serial"].as_str().unwrap().to_uppercase()),
        "{out}"
    );
    let out = ocsp(&s, &bundle, &int_p, revoked, "web0");
    assert!(out.contains("web0.pem: revoked"), "{out}");
    let out = ocsp(&s, &bundle, &int_p, &issued[1], "web1");
    assert!(out.contains("web1.pem: good"), "{out}");

    // After a restart the server finds its keys in the token and still signs.
    s.stop();
    s.spawn(&refs(&env)).await;
    let after = issue(&s, "after").await;
    verify(&s, &root_p, &after, "after");
    let out = ocsp(&s, &bundle, &int_p, &after, "after");
    assert!(out.contains("after.pem: good"), "{out}");
    let out = ocsp(&s, &bundle, &int_p, revoked, "web0");
    assert!(out.contains("web0.pem: revoked"), "{out}");
    assert_eq!(
        hsm.list("privkey").matches("Private Key Object").count(),
        2,
        "no key was made or lost by the restart"
    );

    // Renewing the token's root: the old root cross-signs its (sealed) successor with the
    // token's key.
    let (status, rolled) = s
        .api(
            Method::POST,
            &format!("/cas/{}/rollover", root["id"].as_str().unwrap()),
            Some(json!({"name": "hsm-root-g2"})),
        )
        .await;
    assert_eq!(status, 201, "{rolled}");
    assert_eq!(rolled["successor"]["key_storage"], "sealed", "{rolled}");
    let by_old = &rolled["cross_certificates"][0];
    assert_eq!(by_old["issuer_ca_id"], root["id"], "{rolled}");
    let by_old_p = s.write("g2-by-old.pem", by_old["certificate"].as_str().unwrap());
    let (ok, out) = openssl(&["verify", "-CAfile", p(&root_p), p(&by_old_p)]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hierarchy_in_the_token_sqlite() {
    hierarchy_in_the_token(Db::Sqlite, "ca").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hierarchy_in_the_token_postgres() {
    // The delegated responder's certificate is signed by the token's key too.
    hierarchy_in_the_token(Db::Postgres, "delegated").await;
}

fn with(env: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut env: Vec<_> = env.iter().filter(|(k, _)| k != key).cloned().collect();
    env.push((key.into(), value.into()));
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_module_token_or_key_stops_the_start() {
    let hsm = SoftHsm::new();
    let env = hsm.env();
    let fresh = tempfile::tempdir().unwrap();

    let out = refused_start(
        &fresh.path().join("a"),
        &refs(&with(
            &env,
            "CERTKEEPER_HSM__MODULE",
            "/nonexistent/libpkcs11.so",
        )),
    );
    assert!(
        out.contains("PKCS#11 module /nonexistent/libpkcs11.so (hsm.module) does not exist"),
        "{out}"
    );
    let out = refused_start(
        &fresh.path().join("b"),
        &refs(&with(&env, "CERTKEEPER_HSM__TOKEN_LABEL", "no-such-token")),
    );
    assert!(
        out.contains("no PKCS#11 token labelled \"no-such-token\"")
            && out.contains(&format!("\"{LABEL}\"")),
        "{out}"
    );
    let wrong_pin = hsm.dir.path().join("wrong-pin");
    std::fs::write(&wrong_pin, "11111111\n").unwrap();
    let out = refused_start(
        &fresh.path().join("c"),
        &refs(&with(
            &env,
            "CERTKEEPER_HSM__PIN_FILE",
            wrong_pin.to_str().unwrap(),
        )),
    );
    assert!(out.contains("refused the PIN"), "{out}");
    assert!(!out.contains("11111111"), "the PIN is never shown: {out}");

    // A server whose CA key is in the token, restarted against another token with the
    // same label (the first one is gone) or without [hsm] at all, names the CA and key.
    let mut s = TestServer::start_with(Db::Sqlite, &refs(&env)).await;
    let root = create_ca(
        &s,
        json!({"name": "hsm-root", "type": "root", "common_name": "HSM Root",
               "key_storage": "pkcs11"}),
    )
    .await;
    s.stop();
    let other = SoftHsm::new();
    let out = refused_start(&s.data_dir, &refs(&other.env()));
    assert!(
        out.contains("CA \"hsm-root\"")
            && out.contains(&format!("has no private key pkcs11:token={LABEL};id=%")),
        "{out}"
    );
    let out = refused_start(&s.data_dir, &[]);
    assert!(
        out.contains("the key of CA \"hsm-root\" is in the PKCS#11 token")
            && out.contains("[hsm] is not configured"),
        "{out}"
    );
    // Back on its own token, it signs again.
    s.spawn(&refs(&env)).await;
    let (status, body) = s
        .api(
            Method::GET,
            &format!("/cas/{}", root["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let crl = reqwest::get(s.http_url(&format!("/crl/{}.crl", root["id"].as_str().unwrap())))
        .await
        .unwrap();
    assert_eq!(crl.status(), 200);
    let crl_p = s.write("root.crl", crl.bytes().await.unwrap());
    let root_p = s.write("hsm-root.pem", root["certificate"].as_str().unwrap());
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_p),
        "-CAfile",
        p(&root_p),
        "-verify",
        "-noout",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");

    // A master key rotation re-seals what is sealed and leaves the token's CA alone: it
    // still signs after it (here an intermediate whose own key is sealed).
    s.stop();
    let out = Command::new(bin())
        .args(["--data-dir", p(&s.data_dir), "master-key", "rotate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.spawn(&refs(&env)).await;
    let (status, int) = s
        .api(
            Method::POST,
            "/cas",
            Some(
                json!({"name": "sealed-int", "type": "intermediate", "parent": "hsm-root",
                        "common_name": "Sealed Intermediate"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{int}");
    assert_eq!(int["key_storage"], "sealed");
    let int_p = s.write("sealed-int.pem", int["certificate"].as_str().unwrap());
    let (ok, out) = openssl(&["verify", "-CAfile", p(&root_p), p(&int_p)]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pkcs11_storage_is_refused_where_it_cannot_be() {
    // Without a token configured, and for an external CA, key_storage pkcs11 is a 400.
    let s = TestServer::start(Db::Sqlite).await;
    let (status, body) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "x", "type": "root", "common_name": "X",
                        "key_storage": "pkcs11"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no PKCS#11 token is configured"),
        "{body}"
    );
    drop(s);
    let hsm = SoftHsm::new();
    let s = TestServer::start_with(Db::Sqlite, &refs(&hsm.env())).await;
    let (status, body) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "x", "type": "external", "common_name": "X",
                        "key_storage": "pkcs11"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "x", "type": "root", "common_name": "X",
                        "key_algorithm": "ed25519", "key_storage": "pkcs11"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        hsm.list("privkey").matches("Private Key Object").count() == 0,
        "a refused CA leaves no key behind"
    );
    // The same name twice: the second key is removed from the token again.
    let root = json!({"name": "dup", "type": "root", "common_name": "Dup",
                      "key_storage": "pkcs11", "key_algorithm": "rsa-2048"});
    let (status, body) = s.api(Method::POST, "/cas", Some(root.clone())).await;
    assert_eq!(status, 201, "{body}");
    let rsa = s.write("rsa-root.pem", body["certificate"].as_str().unwrap());
    let (ok, out) = openssl(&["verify", "-CAfile", p(&rsa), p(&rsa)]);
    assert!(ok, "the token's RSA key signed its own certificate: {out}");
    let (_, text) = openssl(&["x509", "-in", p(&rsa), "-noout", "-text"]);
    assert!(
        text.contains("sha256WithRSAEncryption") && text.contains("Public-Key: (2048 bit)"),
        "{text}"
    );
    let (status, body) = s.api(Method::POST, "/cas", Some(root)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        hsm.list("privkey").matches("Private Key Object").count(),
        1,
        "{}",
        hsm.list("privkey")
    );
}

/// The dashboard's create-CA form offers the token when `[hsm]` is set; a CA made there
/// keeps its key in the token, and the hierarchy page says so.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_creates_a_ca_in_the_token() {
    let hsm = SoftHsm::new();
    let s = TestServer::start_with(Db::Sqlite, &refs(&hsm.env())).await;
    let mut b = common::plain::Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);
    let page = b.get("/hierarchy").await;
    assert!(
        page.body.contains("<option value=\"pkcs11\">"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let made = b
        .post(
            "/hierarchy",
            &[
                ("csrf", &csrf),
                ("name", "dash-hsm-int"),
                ("kind", "intermediate"),
                ("parent", "root"),
                ("common_name", "Dashboard HSM Intermediate"),
                ("key_algorithm", "ecdsa-p256"),
                ("key_storage", "pkcs11"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let (status, ca) = s.api(Method::GET, "/cas/dash-hsm-int", None).await;
    assert_eq!(status, 200, "{ca}");
    assert_eq!(ca["key_storage"], "pkcs11", "{ca}");
    assert_eq!(
        hsm.list("privkey").matches("Private Key Object").count(),
        1,
        "the key is in the token"
    );
    let page = b.get("/hierarchy").await;
    let row = &page.body[page
        .body
        .find(&format!("id=\"ca-{}\"", ca["id"].as_str().unwrap()))
        .expect("the CA's row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("in the PKCS#11 token"), "{row}");
    assert!(
        page.body.contains("software (sealed)"),
        "the bootstrap CAs are sealed in software"
    );
}
