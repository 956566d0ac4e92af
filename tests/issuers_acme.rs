//! External ACME issuers end to end against Debian's Pebble (the real ACME test server,
//! started here with real validation: `PEBBLE_VA_ALWAYS_VALID=0`) and `pebble-challtestsrv`
//! as its DNS, on SQLite and PostgreSQL: an issuer is created (its account registered),
//! tested and refused when bad; a profile names it; a managed certificate for two names is
//! ordered with http-01 answered by certkeeper's own listener, chains to Pebble's root
//! (`openssl verify`), is pushed to AWS Certificate Manager (moto) and renews into a new
//! version pushed to the same ACM certificate; revoking a certificate Pebble issued is
//! forwarded to Pebble (its management API shows it revoked); a name Pebble refuses ends in
//! a failure recorded with Pebble's problem document and an `issuance.failed` alert.
//!
//! dns-01 goes through RFC 2136 (a real BIND), Cloudflare (a stand-in following its
//! documented API) and AWS Route 53 (moto in server mode, with the test playing Route 53's
//! name servers).
//!
//! Pebble rejects `PEBBLE_WFE_NONCEREJECT` percent of good nonces (5 here, its default
//! rate): every order passes through dozens of signed requests, so the `badNonce` retries
//! are exercised on most runs.

mod acme_support;
mod cloud;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use acme_support::ChallSrv;
use cloud::moto::Moto;
use common::{Db, TestServer, cli, cli_json, free_port, openssl, openssl_csr, p};
use reqwest::Method;
use serde_json::{Value, json};

/// The external account binding Pebble knows: key id and HMAC key (base64url).
const EAB_KID: &str = "kid-1";
const EAB_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

/// The name Pebble's `domainBlocklist` refuses.
const BLOCKED: &str = "blocked.example";

/// Pebble on free ports, validating http-01 on `http_port` and resolving names through
/// `dns_port`.
struct Pebble {
    child: Child,
    port: u16,
    mgmt_port: u16,
    /// The root of Pebble's own TLS certificate (for its API).
    tls_root: String,
    dir: PathBuf,
}

impl Pebble {
    fn start(dir: &Path, http_port: u16, dns_port: u16) -> Pebble {
        Pebble::start_with(dir, http_port, dns_port, &[])
    }

    /// Pebble with extra environment (`PEBBLE_ALTERNATE_ROOTS`, ...).
    fn start_with(dir: &Path, http_port: u16, dns_port: u16, env: &[(&str, &str)]) -> Pebble {
        let dir = dir.join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        let f = |n: &str| dir.join(n).to_str().unwrap().to_string();
        let run = |args: &[&str]| {
            let (ok, out) = openssl(args);
            assert!(ok, "openssl {args:?}: {out}");
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test pebble TLS root",
            "-keyout",
            &f("root.key"),
            "-out",
            &f("root.pem"),
        ]);
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &f("key.pem"),
            "-out",
            &f("server.csr"),
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            &f("server.csr"),
            "-CA",
            &f("root.pem"),
            "-CAkey",
            &f("root.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &f("cert.pem"),
            "-extfile",
            &f("ext.cnf"),
        ]);
        let port = free_port();
        let mgmt_port = free_port();
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": f("cert.pem"),
            "privateKey": f("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            // An account may bind to this key (checked when a binding is sent).
            "externalAccountMACKeys": {EAB_KID: EAB_KEY},
            "domainBlocklist": [BLOCKED],
            // 90 days, as Let's Encrypt; the profile must allow the upstream's lifetime.
            "certificateValidityPeriod": 7_776_000,
        }});
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
        let child = Command::new("pebble")
            .args([
                "-config",
                &f("config.json"),
                "-dnsserver",
                &format!("127.0.0.1:{dns_port}"),
            ])
            .env("PEBBLE_VA_ALWAYS_VALID", "0")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "5")
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("pebble (Debian package pebble) runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Pebble {
            child,
            port,
            mgmt_port,
            tls_root: std::fs::read_to_string(dir.join("root.pem")).unwrap(),
            dir,
        }
    }

    /// What Pebble's management API says of the certificate with `serial` (hex):
    /// `Valid` or `Revoked`.
    fn cert_status(&self, serial: &str) -> String {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--cacert",
                p(&self.dir.join("root.pem")),
                &format!(
                    "https://127.0.0.1:{}/cert-status-by-serial/{serial}",
                    self.mgmt_port
                ),
            ])
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "fetching the status of {serial}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["Status"].as_str().unwrap_or_default().to_string()
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The root Pebble issues under, from its management API.
    fn issuing_root(&self) -> String {
        self.root(0)
    }

    /// Pebble's root number `n` (more than one with `PEBBLE_ALTERNATE_ROOTS`).
    fn root(&self, n: usize) -> String {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--cacert",
                p(&self.dir.join("root.pem")),
                &format!("https://127.0.0.1:{}/roots/{n}", self.mgmt_port),
            ])
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "fetching Pebble's root");
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Download a certificate with its chain; answers the files of the leaf and of the
/// intermediates.
async fn download_chain(s: &TestServer, id: &str) -> (PathBuf, PathBuf) {
    let pem = s
        .client
        .get(s.url(&format!("/api/v1/certificates/{id}/chain")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let blocks: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    assert!(blocks.len() >= 2, "leaf and intermediate: {pem}");
    let leaf = s.write(&format!("{id}-leaf.pem"), blocks[0]);
    let chain = s.write(&format!("{id}-chain.pem"), blocks[1..].concat());
    (leaf, chain)
}

/// `openssl verify`: `leaf` chains through `chain` to `root`.
fn verify_chain(root: &Path, leaf: &Path, chain: &Path) {
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(root),
        "-untrusted",
        p(chain),
        p(leaf),
    ]);
    assert!(ok, "chains to Pebble's root: {out}");
}

async fn managed(s: &TestServer, name: &str) -> Value {
    let (st, m) = s.api(Method::GET, &format!("/managed/{name}"), None).await;
    assert_eq!(st, 200, "{m}");
    m
}

/// Revoke certificate `id` (superseded) through the API: forwarded to Pebble, which
/// held it valid before and revoked after, and recorded here.
async fn revoke_upstream(s: &TestServer, pebble: &Pebble, id: &str) {
    let (_, before) = s
        .api(Method::GET, &format!("/certificates/{id}"), None)
        .await;
    assert_eq!(pebble.cert_status(&serial(&before)), "Valid");
    let (st, c) = s
        .api(
            Method::POST,
            &format!("/certificates/{id}/revoke"),
            Some(json!({"reason": 4})),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["status"], "revoked", "{c}");
    assert_eq!(pebble.cert_status(&serial(&c)), "Revoked");
}

/// Delete the ACME issuer `name`: its account is deactivated at the CA first, which the
/// audit event records.
async fn delete_deactivating(s: &TestServer, name: &str) {
    let (st, p) = s
        .api(Method::DELETE, &format!("/issuers/{name}"), None)
        .await;
    assert_eq!(st, 204, "{p}");
    let (_, audit) = s
        .api(Method::GET, "/audit?action=issuer.delete", None)
        .await;
    assert_eq!(audit["items"][0]["detail"]["name"], name, "{audit}");
    assert_eq!(
        audit["items"][0]["detail"]["account_deactivated"], true,
        "{audit}"
    );
}

/// A version's serial, as hex without separators.
fn serial(v: &Value) -> String {
    v["serial"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_ascii_lowercase()
}

/// The serial ACM holds for the one binding of `m`, after a push.
fn pushed_serial(m: &Value) -> String {
    let b = &m["bindings"][0];
    assert_eq!(b["in_sync"], true, "{m}");
    b["remote_version"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_ascii_lowercase()
}

async fn scenario(db: Db) {
    let chall = ChallSrv::start();
    let s = TestServer::start(db).await;
    let pebble = Pebble::start(s.dir.path(), s.http_port, chall.dns_port);

    // Bad issuers are refused and leave nothing behind.
    let unreachable = format!("https://127.0.0.1:{}/dir", free_port());
    for (body, status, why) in [
        (
            json!({"name": "pebble", "kind": "acme", "directory_url": unreachable, "trust_bundle": pebble.tls_root}),
            502,
            "",
        ),
        (
            json!({"name": "pebble", "kind": "acme", "directory_url": pebble.directory()}),
            502,
            "",
        ),
        (
            json!({"name": "pebble", "kind": "acme", "directory_url": format!("http://127.0.0.1:{}/dir", pebble.port)}),
            400,
            "https",
        ),
        (
            json!({"name": "pebble", "kind": "acme", "directory_url": pebble.directory(), "eab_kid": "kid-1"}),
            400,
            "together",
        ),
        (
            json!({"name": "pebble", "kind": "acme", "directory_url": pebble.directory(), "contact": ["ops@example.com"]}),
            400,
            "mailto",
        ),
        (
            json!({"name": "pebble", "kind": "aws_pca", "directory_url": pebble.directory()}),
            400,
            "does not take directory_url",
        ),
        (
            json!({"name": "pebble", "kind": "x509", "directory_url": pebble.directory()}),
            400,
            "not one of acme, aws_pca",
        ),
    ] {
        let (st, p) = s.api(Method::POST, "/issuers", Some(body.clone())).await;
        assert_eq!(st, status, "{body}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(why), "{p}");
    }
    // A wrong EAB HMAC key: Pebble refuses the binding, nothing is stored.
    let (st, refused) = s
        .api(
            Method::POST,
            "/issuers",
            Some(json!({
                "name": "pebble", "kind": "acme", "directory_url": pebble.directory(),
                "trust_bundle": pebble.tls_root, "eab_kid": EAB_KID,
                "eab_hmac_key": "d3JvbmcgbWFjIGtleSB3cm9uZyBtYWMga2V5IHdyb25nIG1hYyBrZXk",
            })),
        )
        .await;
    assert_eq!(st, 502, "{refused}");
    let (_, list) = s.api(Method::GET, "/issuers", None).await;
    assert!(
        list.as_array().unwrap().iter().all(|i| i["kind"] == "ca"),
        "{list}"
    );
    // The right one binds; the key is never shown.
    let (st, bound) = s
        .api(
            Method::POST,
            "/issuers",
            Some(json!({
                "name": "pebble-eab", "kind": "acme", "directory_url": pebble.directory(),
                "trust_bundle": pebble.tls_root, "eab_kid": EAB_KID, "eab_hmac_key": EAB_KEY,
            })),
        )
        .await;
    assert_eq!(st, 201, "{bound}");
    assert_eq!(bound["eab_kid"], EAB_KID, "{bound}");
    assert!(!bound.to_string().contains(EAB_KEY), "{bound}");
    let (st, _) = s.api(Method::DELETE, "/issuers/pebble-eab", None).await;
    assert_eq!(st, 204);

    // The issuer: its account is registered at once.
    let (st, issuer) = s
        .api(
            Method::POST,
            "/issuers",
            Some(json!({
                "name": "pebble", "kind": "acme", "directory_url": pebble.directory(),
                "contact": ["mailto:ops@example.com"], "trust_bundle": pebble.tls_root,
            })),
        )
        .await;
    assert_eq!(st, 201, "{issuer}");
    assert_eq!(issuer["kind"], "acme");
    assert!(
        issuer["account_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("https://127.0.0.1:{}/", pebble.port)),
        "{issuer}"
    );
    let (st, tested) = s.api(Method::POST, "/issuers/pebble/test", None).await;
    assert_eq!(st, 200, "{tested}");
    assert_eq!(tested["account_url"], issuer["account_url"]);
    let (st, again) = s
        .api(
            Method::POST,
            "/issuers",
            Some(json!({"name": "pebble", "kind": "acme", "directory_url": pebble.directory(), "trust_bundle": pebble.tls_root})),
        )
        .await;
    assert_eq!(st, 409, "{again}");

    // The same through the CLI: create (the EAB key would come from a file), list, show,
    // test, remove.
    let bundle = s.write("pebble-tls-root.pem", &pebble.tls_root);
    let created = cli_json(
        &s,
        &[
            "--json",
            "issuer",
            "create-acme",
            "pebble-cli",
            "--directory",
            &pebble.directory(),
            "--contact",
            "mailto:cli@example.com",
            "--trust-bundle",
            p(&bundle),
        ],
    );
    assert_eq!(created["contact"], json!(["mailto:cli@example.com"]));
    let out = cli(&s, &["issuer", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("pebble-cli") && table.contains("acme"),
        "{table}"
    );
    let out = cli(&s, &["issuer", "test", "pebble-cli"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(created["account_url"].as_str().unwrap())
    );
    let out = cli(&s, &["issuer", "remove", "pebble-cli"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&s, &["issuer", "get", "pebble-cli"]);
    assert!(!out.status.success(), "removed, and it had issued nothing");

    // A profile names it; its rules apply before anything goes upstream.
    let (st, prof) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "public", "ca": "pebble", "allowed_dns_names": [".example.test", BLOCKED]})),
        )
        .await;
    assert_eq!(st, 201, "{prof}");
    let (st, refused) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "outside", "profile": "public", "dns_names": ["www.other.test"]})),
        )
        .await;
    assert_eq!(
        (st, refused["rule"].as_str()),
        (403, Some("allowed_dns_names")),
        "{refused}"
    );

    // A managed certificate for two names, validated by http-01 on our own listener, and
    // pushed to AWS Certificate Manager (moto).
    let moto = Moto::start();
    let (st, d) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({"name": "acm", "kind": "aws_acm", "config": moto.config(), "credentials": Moto::credentials()})),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({
                "name": "web", "profile": "public", "dns_names": ["a.example.test", "b.example.test"],
                "destinations": ["acm"],
            })),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 1, "{m}");
    let (st, m) = s.api(Method::POST, "/managed/web/sync", None).await;
    assert_eq!(st, 200, "{m}");
    let pushed = pushed_serial(&m);
    let arn = m["bindings"][0]["remote_id"].as_str().unwrap().to_string();
    let m = managed(&s, "web").await;
    let first = m["versions"][0]["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(pushed, serial(&m["versions"][0]), "{m}");

    let root = s.write("pebble-root.pem", pebble.issuing_root());
    {
        let id = first.as_str();
        let (leaf_path, chain_path) = download_chain(&s, id).await;
        verify_chain(&root, &leaf_path, &chain_path);
        let (_, text) = openssl(&[
            "x509",
            "-in",
            p(&leaf_path),
            "-noout",
            "-ext",
            "subjectAltName",
        ]);
        assert!(
            text.contains("a.example.test") && text.contains("b.example.test"),
            "{text}"
        );
    }
    // The certificate is in the inventory under the issuer.
    let (_, found) = s.api(Method::GET, "/certificates?ca=pebble", None).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");

    // Renewal orders again: a new version, a new certificate.
    let (st, r) = s.api(Method::POST, "/managed/web/renew", None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["current_version"], 2, "{r}");
    let (_, synced) = s.api(Method::POST, "/managed/web/sync", None).await;
    let m = managed(&s, "web").await;
    let second = m["versions"][0]["certificate_id"].as_str().unwrap();
    assert_ne!(second, first);
    // The new version went to the same ACM certificate (moto read it back).
    assert_eq!(
        pushed_serial(&synced),
        serial(&m["versions"][0]),
        "{synced}"
    );
    assert_eq!(synced["bindings"][0]["remote_id"], arn.as_str());

    // REST issuance through the issuer: a client's CSR is forwarded as it is (its key never
    // leaves the client), and a key made here; a refused name answers 502 with Pebble's
    // problem document.
    let (key, csr) = openssl_csr(
        s.dir.path(),
        "rest",
        "/CN=rest.example.test",
        "DNS:rest.example.test",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (st, c) = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "public", "csr": csr})),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let leaf = s.write("rest.pem", c["certificate"].as_str().unwrap());
    let (_, cert_key) = openssl(&["x509", "-in", p(&leaf), "-noout", "-pubkey"]);
    let (_, csr_key) = openssl(&["pkey", "-in", p(&key), "-pubout"]);
    assert_eq!(cert_key, csr_key, "the certificate is for the client's key");
    let (st, c) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "public", "dns_names": ["gen.example.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["ca_id"], issuer["id"], "{c}");
    let (_, csr) = openssl_csr(
        s.dir.path(),
        "refused",
        "/CN=blocked.example",
        "DNS:blocked.example",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (st, p502) = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "public", "csr": csr})),
        )
        .await;
    assert_eq!(st, 502, "{p502}");
    assert_eq!(
        p502["upstream"]["type"], "urn:ietf:params:acme:error:rejectedIdentifier",
        "{p502}"
    );

    // Pebble refuses a name: the managed certificate exists with no version, the failure
    // and Pebble's problem document are on it, and an alert is raised.
    let (st, ch) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({"name": "ops", "kind": "webhook", "url": format!("http://127.0.0.1:{}/hook", free_port())})),
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    let (st, rule) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(json!({"name": "upstream", "channels": ["ops"], "events": ["issuance.failed"]})),
        )
        .await;
    assert_eq!(st, 201, "{rule}");
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "blocked", "profile": "public", "dns_names": [BLOCKED]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 0, "{m}");
    assert_eq!(m["renewal_failures"], 1, "{m}");
    assert_eq!(
        m["last_problem"]["type"], "urn:ietf:params:acme:error:rejectedIdentifier",
        "{m}"
    );
    let m = managed(&s, "blocked").await;
    let events: Vec<&str> = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"issuance_failed"), "{m}");
    let (st, outbox) = s.api(Method::GET, "/alerts/outbox", None).await;
    assert_eq!(st, 200, "{outbox}");
    assert!(
        outbox
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["event_type"] == "io.certkeeper.issuance.failed"),
        "{outbox}"
    );

    // Revocation is forwarded to Pebble (revokeCert, signed by the account that ordered
    // it), then recorded here; Pebble's management API shows it revoked.
    revoke_upstream(&s, &pebble, &first).await;

    // The upstream's answer is held to the profile too: a 90-day certificate is refused
    // under a profile that allows 30 days (recorded, retried later), and not kept.
    let (st, prof) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "short", "ca": "pebble", "allowed_dns_names": [".example.test"], "max_validity_days": 30})),
        )
        .await;
    assert_eq!(st, 201, "{prof}");
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "short", "profile": "short", "dns_names": ["c.example.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 0, "{m}");
    assert!(
        m["last_error"]
            .as_str()
            .unwrap()
            .contains("max_validity_days"),
        "{m}"
    );
    let (_, found) = s.api(Method::GET, "/certificates?ca=pebble", None).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 4, "{found}");

    // The http-01 answers were withdrawn once the orders were done.
    let resp = s
        .client
        .get(s.http_url("/.well-known/acme-challenge/no-such-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Removal: refused while the profile names it, then the account is deactivated.
    let (st, p) = s.api(Method::DELETE, "/issuers/pebble", None).await;
    assert_eq!(st, 409, "{p}");
    for name in ["web", "blocked", "short"] {
        let (st, _) = s
            .api(Method::DELETE, &format!("/managed/{name}"), None)
            .await;
        assert_eq!(st, 204);
    }
    for name in ["public", "short"] {
        let (st, _) = s
            .api(Method::DELETE, &format!("/profiles/{name}"), None)
            .await;
        assert_eq!(st, 204);
    }
    delete_deactivating(&s, "pebble").await;
    let (st, _) = s.api(Method::GET, "/issuers/pebble", None).await;
    assert_eq!(st, 200, "the certificates it issued keep its CA row");
}

/// TSIG secret of the test zone's update key (base64 of 32 bytes).
const TSIG_SECRET: &str = "c2VjcmV0LWtleS1mb3ItdGhlLWNlcnRrZWVwZXItdGVzdHM=";

/// A real BIND 9 (`named` from Debian's bind9) on a free port, as this user, primary for
/// `example.test` and taking updates signed with the TSIG key `certkeeper`.
struct Bind {
    child: Child,
    port: u16,
}

impl Bind {
    fn start(dir: &Path) -> Bind {
        let dir = dir.join("bind");
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let d = dir.to_str().unwrap();
        std::fs::write(
            dir.join("example.test.zone"),
            "$TTL 60\n\
             @ IN SOA ns1.example.test. hostmaster.example.test. ( 1 60 60 600 60 )\n\
             @ IN NS ns1.example.test.\n\
             ns1 IN A 127.0.0.1\n\
             @ IN A 127.0.0.1\n\
             * IN A 127.0.0.1\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("named.conf"),
            format!(
                r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
controls {{ }};
key "certkeeper" {{ algorithm hmac-sha256; secret "{TSIG_SECRET}"; }};
zone "example.test" {{
    type primary;
    file "{d}/example.test.zone";
    allow-update {{ key "certkeeper"; }};
}};
"#
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("named.log")).unwrap();
        let child = Command::new("named")
            .args(["-g", "-c", &format!("{d}/named.conf")])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("named (Debian package bind9) runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "named did not start: {}",
                std::fs::read_to_string(dir.join("named.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Bind { child, port }
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A wildcard certificate from Pebble by dns-01: certkeeper writes the TXT records into
/// BIND with TSIG-signed RFC 2136 updates, waits until BIND answers them, and Pebble (whose
/// DNS is that BIND) validates. A wrong TSIG secret is refused by BIND and recorded.
async fn dns01_rfc2136(db: Db) {
    let s = TestServer::start(db).await;
    let bind = Bind::start(s.dir.path());
    let pebble = Pebble::start(s.dir.path(), s.http_port, bind.port);
    let rfc2136 = json!({
        "server": format!("127.0.0.1:{}", bind.port), "zone": "example.test",
        "key_name": "certkeeper", "algorithm": "hmac-sha256",
    });
    let base = json!({
        "kind": "acme", "directory_url": pebble.directory(), "trust_bundle": pebble.tls_root,
        "challenge": "dns-01", "rfc2136": rfc2136,
    });
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    // dns-01 without its secret, or with a bad one, is refused before anything is stored.
    for (body, why) in [
        (with(json!({"name": "dns"})), "tsig_secret"),
        (
            with(json!({"name": "dns", "tsig_secret": "c2hvcnQ="})),
            "16 to 512",
        ),
        (
            with(json!({"name": "dns", "tsig_secret": TSIG_SECRET, "challenge": "tls-alpn-01"})),
            "not one of",
        ),
    ] {
        let (st, p) = s.api(Method::POST, "/issuers", Some(body.clone())).await;
        assert_eq!(st, 400, "{body}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(why), "{p}");
    }
    // Created through the CLI: settings and secret from files.
    let settings = s.write("rfc2136.json", rfc2136.to_string());
    let secret = s.write("tsig.key", TSIG_SECRET);
    let bundle = s.write("pebble-tls-root.pem", &pebble.tls_root);
    let issuer = cli_json(
        &s,
        &[
            "--json",
            "issuer",
            "create-acme",
            "dns",
            "--directory",
            &pebble.directory(),
            "--trust-bundle",
            p(&bundle),
            "--rfc2136",
            p(&settings),
            "--tsig-secret-file",
            p(&secret),
        ],
    );
    assert_eq!(issuer["challenge"], "dns-01");
    assert_eq!(issuer["rfc2136"]["zone"], "example.test");
    assert!(!issuer.to_string().contains(TSIG_SECRET), "{issuer}");
    // The same zone with the wrong secret: BIND refuses the update.
    let wrong = "d3Jvbmctc2VjcmV0LWtleS1mb3ItdGhlLXRlc3Rz";
    let (st, bad) = s
        .api(
            Method::POST,
            "/issuers",
            Some(with(json!({"name": "dns-wrong", "tsig_secret": wrong}))),
        )
        .await;
    assert_eq!(st, 201, "{bad}");
    for (profile, issuer) in [("wild", "dns"), ("wild-wrong", "dns-wrong")] {
        let (st, p) = s
            .api(
                Method::POST,
                "/profiles",
                Some(json!({"name": profile, "ca": issuer, "allowed_dns_names": [".example.test", "example.test"]})),
            )
            .await;
        assert_eq!(st, 201, "{p}");
    }

    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "wild", "profile": "wild", "dns_names": ["*.example.test", "example.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 1, "{m}");
    let m = managed(&s, "wild").await;
    let id = m["versions"][0]["certificate_id"].as_str().unwrap();
    let (leaf, chain) = download_chain(&s, id).await;
    let root = s.write("pebble-root.pem", pebble.issuing_root());
    verify_chain(&root, &leaf, &chain);
    let (_, text) = openssl(&["x509", "-in", p(&leaf), "-noout", "-ext", "subjectAltName"]);
    assert!(text.contains("*.example.test"), "{text}");

    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "wild-wrong", "profile": "wild-wrong", "dns_names": ["*.example.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 0, "{m}");
    assert!(
        m["last_error"].as_str().unwrap().contains("DNS update"),
        "{m}"
    );
}

/// The Cloudflare API token the stand-in accepts.
const CF_TOKEN: &str = "cf-test-token-with-zone-dns-edit";
/// The zone id the stand-in serves.
const CF_ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// A local server that follows Cloudflare's documented DNS records API (v4: the envelope
/// `{"success", "errors", "messages", "result"}`, bearer API tokens, `POST`, `GET` with
/// `type`/`name`/`content` filters and `DELETE` under `/zones/{zone_id}/dns_records`),
/// since Cloudflare itself cannot run here. The records it holds are served as DNS by
/// `pebble-challtestsrv`, which stands for Cloudflare's nameservers.
#[derive(Clone)]
struct FakeCloudflare {
    records: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
    created: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    chall_mgmt: u16,
}

fn cf_envelope(status: u16, result: Value, errors: Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = json!({"success": status < 300, "errors": errors, "messages": [], "result": result});
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(body),
    )
        .into_response()
}

async fn cf_handle(
    axum::extract::State(cf): axum::extract::State<FakeCloudflare>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {CF_TOKEN}"))
    {
        return cf_envelope(
            403,
            Value::Null,
            json!([{"code": 10000, "message": "Authentication error"}]),
        );
    }
    let prefix = format!("/client/v4/zones/{CF_ZONE}/dns_records");
    let Some(rest) = uri.path().strip_prefix(&prefix) else {
        return cf_envelope(
            404,
            Value::Null,
            json!([{"code": 7003, "message": "Could not route to this path"}]),
        );
    };
    let mgmt = |endpoint: &str, body: Value| {
        let url = format!("http://127.0.0.1:{}/{endpoint}", cf.chall_mgmt);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    };
    match (method.as_str(), rest) {
        ("POST", "") => {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let (Some("TXT"), Some(name), Some(content)) = (
                v["type"].as_str(),
                v["name"].as_str(),
                v["content"].as_str(),
            ) else {
                return cf_envelope(
                    400,
                    Value::Null,
                    json!([{"code": 9005, "message": "type, name and content are required"}]),
                );
            };
            let id = format!(
                "{:032x}",
                cf.created.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
            );
            cf.records
                .lock()
                .unwrap()
                .push((id.clone(), name.to_string(), content.to_string()));
            mgmt(
                "set-txt",
                json!({"host": format!("{name}."), "value": content}),
            )
            .await;
            cf_envelope(
                200,
                json!({"id": id, "type": "TXT", "name": name, "content": content, "ttl": v["ttl"]}),
                json!([]),
            )
        }
        ("GET", "") => {
            let q: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let found: Vec<Value> = cf
                .records
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, n, c)| {
                    q.get("name").is_none_or(|x| x == n) && q.get("content").is_none_or(|x| x == c)
                })
                .map(|(id, n, c)| json!({"id": id, "type": "TXT", "name": n, "content": c}))
                .collect();
            cf_envelope(200, json!(found), json!([]))
        }
        ("DELETE", id) => {
            let id = id.trim_start_matches('/').to_string();
            let removed = {
                let mut records = cf.records.lock().unwrap();
                let before = records.len();
                let gone: Vec<String> = records
                    .iter()
                    .filter(|(i, _, _)| *i == id)
                    .map(|(_, n, _)| n.clone())
                    .collect();
                records.retain(|(i, _, _)| *i != id);
                (before != records.len()).then(|| gone[0].clone())
            };
            match removed {
                Some(name) => {
                    mgmt("clear-txt", json!({"host": format!("{name}.")})).await;
                    cf_envelope(200, json!({"id": id}), json!([]))
                }
                None => cf_envelope(
                    404,
                    Value::Null,
                    json!([{"code": 81044, "message": "Record does not exist."}]),
                ),
            }
        }
        _ => cf_envelope(
            405,
            Value::Null,
            json!([{"code": 10000, "message": "method not allowed"}]),
        ),
    }
}

impl FakeCloudflare {
    async fn start(chall_mgmt: u16) -> (FakeCloudflare, String) {
        let cf = FakeCloudflare {
            records: Default::default(),
            created: Default::default(),
            chall_mgmt,
        };
        let app = axum::Router::new()
            .fallback(cf_handle)
            .with_state(cf.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/client/v4", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (cf, url)
    }
}

/// A wildcard certificate from Pebble by dns-01 through the Cloudflare API stand-in (its
/// records served by `pebble-challtestsrv`, Pebble's DNS); a wrong API token ends in a
/// failure recorded with Cloudflare's errors.
async fn dns01_cloudflare(db: Db) {
    let chall = ChallSrv::start();
    let (cf, api_url) = FakeCloudflare::start(chall.mgmt_port).await;
    let s = TestServer::start(db).await;
    let pebble = Pebble::start(s.dir.path(), s.http_port, chall.dns_port);
    let issuer = |name: &str, token: &str| {
        json!({
            "name": name, "kind": "acme", "directory_url": pebble.directory(),
            "trust_bundle": pebble.tls_root, "challenge": "dns-01",
            "cloudflare": {
                "zone_id": CF_ZONE, "api_url": api_url,
                "nameservers": [format!("127.0.0.1:{}", chall.dns_port)],
            },
            "cloudflare_api_token": token,
        })
    };
    let mut half = issuer("cf", CF_TOKEN);
    half.as_object_mut().unwrap().remove("cloudflare_api_token");
    let (st, p) = s.api(Method::POST, "/issuers", Some(half)).await;
    assert_eq!(st, 400, "{p}");
    for (name, token) in [("cf", CF_TOKEN), ("cf-wrong", "not-the-token")] {
        let (st, i) = s
            .api(Method::POST, "/issuers", Some(issuer(name, token)))
            .await;
        assert_eq!(st, 201, "{i}");
        assert!(!i.to_string().contains(token), "{i}");
        let (st, p) = s
            .api(
                Method::POST,
                "/profiles",
                Some(json!({"name": name, "ca": name, "allowed_dns_names": [".example.test"]})),
            )
            .await;
        assert_eq!(st, 201, "{p}");
    }
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "wild", "profile": "cf", "dns_names": ["*.example.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 1, "{m}");
    let m = managed(&s, "wild").await;
    let id = m["versions"][0]["certificate_id"].as_str().unwrap();
    let (leaf, chain) = download_chain(&s, id).await;
    let root = s.write("pebble-root.pem", pebble.issuing_root());
    verify_chain(&root, &leaf, &chain);
    // The record was made through the API and removed once the order was done.
    assert_eq!(cf.created.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(cf.records.lock().unwrap().is_empty());

    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "wrong", "profile": "cf-wrong", "dns_names": ["*.example.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 0, "{m}");
    assert_eq!(m["last_problem"]["errors"][0]["code"], 10000, "{m}");
}

/// The common name of a certificate's subject (PEM), through `openssl`.
fn subject_cn(pem_path: &Path) -> String {
    let (ok, out) = openssl(&[
        "x509",
        "-in",
        p(pem_path),
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
    ]);
    assert!(ok, "{out}");
    out.trim()
        .trim_start_matches("subject=")
        .split(',')
        .find_map(|part| part.trim().strip_prefix("CN="))
        .unwrap_or_else(|| panic!("a CN in {out}"))
        .to_string()
}

/// Pebble offers each certificate under two chains (`PEBBLE_ALTERNATE_ROOTS=1`): an
/// issuer with `preferred_chain` naming the second root keeps the chain under it, one
/// without keeps Pebble's default. Then the issuer's ACME account key is rolled over
/// (over the API and the CLI): the account stays the same, the new key works for the
/// account check and for a renewal, and bad requests change nothing.
async fn preferred_chain_and_key_rollover(db: Db) {
    let chall = ChallSrv::start();
    let s = TestServer::start(db).await;
    let pebble = Pebble::start_with(
        s.dir.path(),
        s.http_port,
        chall.dns_port,
        &[("PEBBLE_ALTERNATE_ROOTS", "1")],
    );
    let default_root = s.write("root-0.pem", pebble.root(0));
    let alternate_root = s.write("root-1.pem", pebble.root(1));
    let preferred = subject_cn(&alternate_root);
    assert_ne!(preferred, subject_cn(&default_root), "two distinct roots");

    let (st, bad) = s
        .api(
            Method::POST,
            "/issuers",
            Some(json!({
                "name": "alt", "kind": "acme", "directory_url": pebble.directory(),
                "trust_bundle": pebble.tls_root, "preferred_chain": " ",
            })),
        )
        .await;
    assert_eq!(st, 400, "{bad}");
    for (name, chain) in [("alt", Some(preferred.as_str())), ("plain", None)] {
        let mut body = json!({
            "name": name, "kind": "acme", "directory_url": pebble.directory(),
            "trust_bundle": pebble.tls_root,
        });
        if let Some(c) = chain {
            body["preferred_chain"] = json!(c);
        }
        let (st, issuer) = s.api(Method::POST, "/issuers", Some(body)).await;
        assert_eq!(st, 201, "{issuer}");
        assert_eq!(issuer["preferred_chain"].as_str(), chain, "{issuer}");
        let (st, prof) = s
            .api(
                Method::POST,
                "/profiles",
                Some(json!({"name": format!("{name}-profile"), "ca": name, "allowed_dns_names": [".chain.test"]})),
            )
            .await;
        assert_eq!(st, 201, "{prof}");
        let (st, m) = s
            .api(
                Method::POST,
                "/managed",
                Some(json!({
                    "name": format!("{name}-cert"), "profile": format!("{name}-profile"),
                    "dns_names": [format!("{name}.chain.test")],
                })),
            )
            .await;
        assert_eq!(st, 201, "{m}\n{}", s.logs());
        let id = managed(&s, &format!("{name}-cert")).await["versions"][0]["certificate_id"]
            .as_str()
            .unwrap()
            .to_string();
        let (leaf, intermediates) = download_chain(&s, &id).await;
        let (under, not_under) = match chain {
            Some(_) => (&alternate_root, &default_root),
            None => (&default_root, &alternate_root),
        };
        verify_chain(under, &leaf, &intermediates);
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            p(not_under),
            "-untrusted",
            p(&intermediates),
            p(&leaf),
        ]);
        assert!(!ok, "{name}: the other chain was kept: {out}");
    }

    // Account key rollover: the same account, on a new key.
    let (_, before) = s.api(Method::GET, "/issuers/alt", None).await;
    let (st, rolled) = s.api(Method::POST, "/issuers/alt/account-key", None).await;
    assert_eq!(st, 200, "{rolled}");
    assert_eq!(rolled["account_url"], before["account_url"], "{rolled}");
    let (st, tested) = s.api(Method::POST, "/issuers/alt/test", None).await;
    assert_eq!(st, 200, "the new key signs for the account: {tested}");
    let (st, r) = s.api(Method::POST, "/managed/alt-cert/renew", None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["current_version"], 2, "{r}");
    let (_, audit) = s
        .api(
            Method::GET,
            "/audit?action=issuer.account_key.rollover",
            None,
        )
        .await;
    assert_eq!(
        audit["items"].as_array().map(Vec::len),
        Some(1),
        "one audited rollover: {audit}"
    );
    let out = cli(&s, &["--json", "issuer", "rollover-key", "plain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, tested) = s.api(Method::POST, "/issuers/plain/test", None).await;
    assert_eq!(st, 200, "{tested}");
    // Not an external issuer, or none at all: 404, nothing audited.
    for name in ["no-such-issuer", "intermediate"] {
        let (st, p) = s
            .api(Method::POST, &format!("/issuers/{name}/account-key"), None)
            .await;
        assert_eq!(st, 404, "{name}: {p}");
    }
}

#[tokio::test]
async fn preferred_chain_and_key_rollover_sqlite() {
    preferred_chain_and_key_rollover(Db::Sqlite).await;
}

#[tokio::test]
async fn preferred_chain_and_key_rollover_postgres() {
    preferred_chain_and_key_rollover(Db::Postgres).await;
}

/// A CA that refuses nearly a third of good nonces (RFC 8555 §6.5 lets it refuse any):
/// every signed request certkeeper sends it (registration, the account check, the order,
/// each authorization and challenge, polling, finalization, revocation, key rollover,
/// deactivation) still goes through at once. At 30 % the client's own three tries all
/// fail for about one request in 37, so without retries of our own past the client's this
/// failed in half the runs; with them one request in ~50,000 would.
#[tokio::test]
async fn a_ca_refusing_many_nonces() {
    let chall = ChallSrv::start();
    let s = TestServer::start(Db::Sqlite).await;
    let pebble = Pebble::start_with(
        s.dir.path(),
        s.http_port,
        chall.dns_port,
        &[("PEBBLE_WFE_NONCEREJECT", "30")],
    );
    for round in 0..2 {
        let (st, issuer) = s
            .api(
                Method::POST,
                "/issuers",
                Some(json!({
                    "name": format!("refusing-{round}"), "kind": "acme",
                    "directory_url": pebble.directory(), "trust_bundle": pebble.tls_root,
                    "contact": ["mailto:ops@example.com"],
                })),
            )
            .await;
        assert_eq!(st, 201, "{issuer}\n{}", s.logs());
        let (st, tested) = s
            .api(
                Method::POST,
                &format!("/issuers/refusing-{round}/test"),
                None,
            )
            .await;
        assert_eq!(st, 200, "{tested}");
    }
    let (st, prof) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "refusing", "ca": "refusing-0", "allowed_dns_names": [".nonce.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{prof}");
    let names: Vec<String> = (0..4).map(|i| format!("n{i}.nonce.test")).collect();
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "refused", "profile": "refusing", "dns_names": names})),
        )
        .await;
    assert_eq!(st, 201, "{m}\n{}", s.logs());
    assert_eq!(m["current_version"], 1, "issued at once: {m}\n{}", s.logs());
    let first = managed(&s, "refused").await["versions"][0]["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, rolled) = s
        .api(Method::POST, "/issuers/refusing-0/account-key", None)
        .await;
    assert_eq!(st, 200, "{rolled}");
    let (st, r) = s.api(Method::POST, "/managed/refused/renew", None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        r["current_version"],
        2,
        "renewed at once: {r}\n{}",
        s.logs()
    );
    revoke_upstream(&s, &pebble, &first).await;
    delete_deactivating(&s, "refusing-1").await;
}

/// The value of the TXT record at the challenge name that was there before (a domain
/// verification of some other service): it must survive every change certkeeper makes.
const R53_UNRELATED: &str = "\"unrelated-site-verification=4f1c\"";
/// The challenge name of `*.r53.test` and `r53.test` alike.
const R53_CHALLENGE: &str = "_acme-challenge.r53.test.";

/// A Route 53 client for moto.
async fn route53_client(moto: &Moto) -> aws_sdk_route53::Client {
    let creds: certkeeper_sync::AwsCredentials =
        serde_json::from_value(Moto::credentials()).unwrap();
    let conf =
        certkeeper_sync::aws_sdk_config(Some("us-east-1"), Some(&moto.url), None, Some(creds))
            .await
            .unwrap();
    aws_sdk_route53::Client::new(&conf)
}

/// A public hosted zone `name` in moto; answers its bare id.
async fn r53_zone(r53: &aws_sdk_route53::Client, name: &str) -> String {
    let out = r53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("certkeeper-test-{name}"))
        .send()
        .await
        .unwrap();
    out.hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

/// The TXT record sets of a zone in moto: name (lowercase, final dot) → (TTL, values as
/// Route 53 writes them, quoted).
async fn r53_txt(
    r53: &aws_sdk_route53::Client,
    zone: &str,
) -> std::collections::BTreeMap<String, (i64, Vec<String>)> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .filter(|r| r.r#type() == &aws_sdk_route53::types::RrType::Txt)
        .map(|r| {
            let values = r
                .resource_records()
                .iter()
                .map(|v| v.value().to_string())
                .collect();
            (
                r.name().to_ascii_lowercase(),
                (r.ttl().unwrap_or(0), values),
            )
        })
        .collect()
}

/// What the name-server stand-in saw: every TXT value found in moto at each name, and the
/// most values found there at once.
#[derive(Default)]
struct R53Seen {
    values: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    most: std::collections::BTreeMap<String, usize>,
}

/// Route 53's name servers, played by the test: moto answers Route 53's API but no DNS, so
/// this task polls moto's `ListResourceRecordSets` for the zone and mirrors its TXT records
/// into `pebble-challtestsrv` through its management API (`set-txt` for each new value;
/// `clear-txt` and `set-txt` of what is left when a value goes). That server is the DNS
/// that Pebble validates against and the `nameservers` override the issuer waits on.
struct R53NameServers {
    seen: std::sync::Arc<std::sync::Mutex<R53Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl R53NameServers {
    fn start(r53: aws_sdk_route53::Client, zone: String, chall_mgmt: u16) -> R53NameServers {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(R53Seen::default()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let manage = |endpoint: &'static str, body: Value| {
                let req = http
                    .post(format!("http://127.0.0.1:{chall_mgmt}/{endpoint}"))
                    .json(&body);
                async move {
                    let r = req.send().await.unwrap();
                    assert!(
                        r.status().is_success(),
                        "challtestsrv {endpoint}: {}",
                        r.status()
                    );
                }
            };
            let mut served: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            loop {
                let now: std::collections::BTreeMap<String, Vec<String>> = r53_txt(&r53, &zone)
                    .await
                    .into_iter()
                    .map(|(name, (_, values))| {
                        let plain = values
                            .iter()
                            .map(|v| v.trim_matches('"').to_string())
                            .collect();
                        (name, plain)
                    })
                    .collect();
                {
                    let mut seen = record.lock().unwrap();
                    for (name, values) in &now {
                        seen.values
                            .entry(name.clone())
                            .or_default()
                            .extend(values.iter().cloned());
                        let most = seen.most.entry(name.clone()).or_default();
                        *most = (*most).max(values.len());
                    }
                }
                let names: std::collections::BTreeSet<String> =
                    served.keys().chain(now.keys()).cloned().collect();
                for name in names {
                    let old = served.get(&name).cloned().unwrap_or_default();
                    let new = now.get(&name).cloned().unwrap_or_default();
                    if old.iter().all(|v| new.contains(v)) {
                        for v in new.iter().filter(|v| !old.contains(v)) {
                            manage("set-txt", json!({"host": name, "value": v})).await;
                        }
                    } else {
                        manage("clear-txt", json!({"host": name})).await;
                        for v in &new {
                            manage("set-txt", json!({"host": name, "value": v})).await;
                        }
                    }
                }
                served = now;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        R53NameServers { seen, task }
    }
}

impl Drop for R53NameServers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A certificate for a wildcard and its base name (`*.r53.test`, `r53.test`) from Pebble by
/// dns-01 through AWS Route 53, which moto in server mode stands for. moto does not answer
/// DNS: the test plays Route 53's name servers itself ([`R53NameServers`] mirrors the TXT
/// records it finds in moto into `pebble-challtestsrv`, the DNS Pebble queries and the
/// issuer's `nameservers` override). The two challenge values share one name, beside an
/// unrelated TXT value that was there before: both are seen in moto during issuance, both
/// are gone afterwards, and the unrelated value is still there. The issuer created through
/// the CLI finds its zone (`r53.test`, not the parent zone `test`) by name; a zone id that
/// moto does not have, credentials it does not accept, and bad settings are refused and
/// nothing is stored.
async fn dns01_route53(db: Db) {
    let moto = Moto::start();
    let chall = ChallSrv::start();
    let s = TestServer::start(db).await;
    let pebble = Pebble::start(s.dir.path(), s.http_port, chall.dns_port);
    let r53 = route53_client(&moto).await;
    let parent = r53_zone(&r53, "test").await;
    let zone = r53_zone(&r53, "r53.test").await;
    let unrelated = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name(R53_CHALLENGE)
        .r#type(aws_sdk_route53::types::RrType::Txt)
        .ttl(300)
        .resource_records(
            aws_sdk_route53::types::ResourceRecord::builder()
                .value(R53_UNRELATED)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(
                    aws_sdk_route53::types::Change::builder()
                        .action(aws_sdk_route53::types::ChangeAction::Create)
                        .resource_record_set(unrelated)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ns = R53NameServers::start(r53.clone(), zone.clone(), chall.mgmt_port);
    let nameservers = json!([format!("127.0.0.1:{}", chall.dns_port)]);
    let settings = |zone_id: &str| {
        json!({
            "hosted_zone_id": zone_id, "region": "us-east-1", "endpoint_url": moto.url,
            "nameservers": nameservers,
        })
    };
    let issuer = |name: &str, route53: Value| {
        json!({
            "name": name, "kind": "acme", "directory_url": pebble.directory(),
            "trust_bundle": pebble.tls_root, "challenge": "dns-01",
            "route53": route53, "route53_credentials": Moto::credentials(),
        })
    };

    // Bad input: nothing is stored.
    let (_, before) = s.api(Method::GET, "/issuers", None).await;
    let (st, problem) = s
        .api(
            Method::POST,
            "/issuers",
            Some(issuer("r53", settings("Z0NOSUCHZONE0000000000"))),
        )
        .await;
    assert_eq!(st, 502, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("NoSuchHostedZone"), "{problem}");
    assert!(!problem.to_string().contains("test-secret"), "{problem}");
    let mut with_profile = settings(&zone);
    with_profile["profile"] = json!("default");
    let mut creds_only = issuer("r53", Value::Null);
    creds_only.as_object_mut().unwrap().remove("route53");
    let mut http01 = issuer("r53", settings(&zone));
    http01["challenge"] = json!("http-01");
    for (body, why) in [
        (issuer("r53", settings("not a zone!")), "hosted_zone_id"),
        (issuer("r53", with_profile), "profile or credentials"),
        (creds_only, "one DNS provider"),
        (http01, "dns-01 challenge"),
    ] {
        let (st, problem) = s.api(Method::POST, "/issuers", Some(body.clone())).await;
        assert_eq!(st, 400, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{why}: {problem}"
        );
    }
    // Credentials Route 53 does not accept (moto enforcing IAM, which knows no such key).
    let strict = Moto::start_enforcing_iam(0);
    let mut unknown_key = issuer("r53", settings(&zone));
    unknown_key["route53"]["endpoint_url"] = json!(strict.url);
    let (st, problem) = s.api(Method::POST, "/issuers", Some(unknown_key)).await;
    assert_eq!(st, 502, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("credentials were not accepted"),
        "{problem}"
    );
    assert!(!problem.to_string().contains("test-secret"), "{problem}");
    drop(strict);
    let (_, after) = s.api(Method::GET, "/issuers", None).await;
    assert_eq!(before, after);

    // Through REST with the zone id: tested, the secret never shown.
    let (st, i) = s
        .api(
            Method::POST,
            "/issuers",
            Some(issuer("r53", settings(&zone))),
        )
        .await;
    assert_eq!(st, 201, "{i}");
    assert_eq!(i["route53"]["hosted_zone_id"], zone.as_str(), "{i}");
    assert!(!i.to_string().contains("test-secret"), "{i}");
    let (st, t) = s.api(Method::POST, "/issuers/r53/test", None).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["dns"]["zone"], "r53.test", "{t}");
    assert_eq!(t["dns"]["hosted_zone_id"], zone.as_str(), "{t}");

    // Through the CLI without a zone id: the zone is found by the challenge name.
    let mut found = settings(&zone);
    found.as_object_mut().unwrap().remove("hosted_zone_id");
    let cfg = s.write("route53.json", found.to_string());
    let creds = s.write("route53-credentials.json", Moto::credentials().to_string());
    let bundle = s.write("pebble-tls-root.pem", &pebble.tls_root);
    let created = cli_json(
        &s,
        &[
            "--json",
            "issuer",
            "create-acme",
            "r53-found",
            "--directory",
            &pebble.directory(),
            "--trust-bundle",
            p(&bundle),
            "--route53",
            p(&cfg),
            "--route53-credentials-file",
            p(&creds),
        ],
    );
    assert_eq!(created["challenge"], "dns-01", "{created}");
    assert!(
        created["route53"].get("hosted_zone_id").is_none(),
        "{created}"
    );
    assert!(!created.to_string().contains("test-secret"), "{created}");

    let (st, problem) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "r53", "ca": "r53-found", "allowed_dns_names": [".r53.test", "r53.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{problem}");
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "r53", "profile": "r53", "dns_names": ["*.r53.test", "r53.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m} {}", s.logs());
    assert_eq!(m["current_version"], 1, "{m}");
    let m = managed(&s, "r53").await;
    let id = m["versions"][0]["certificate_id"].as_str().unwrap();
    let (leaf, chain) = download_chain(&s, id).await;
    let root = s.write("pebble-root.pem", pebble.issuing_root());
    verify_chain(&root, &leaf, &chain);
    let (_, text) = openssl(&["x509", "-in", p(&leaf), "-noout", "-ext", "subjectAltName"]);
    assert!(
        text.contains("*.r53.test") && text.contains("DNS:r53.test"),
        "{text}"
    );

    // Both challenge values stood in moto beside the unrelated one, at the same time...
    let unrelated_plain = R53_UNRELATED.trim_matches('"').to_string();
    {
        let seen = ns.seen.lock().unwrap();
        let values = &seen.values[R53_CHALLENGE];
        assert!(values.contains(&unrelated_plain), "{values:?}");
        assert_eq!(
            values.len(),
            3,
            "the unrelated value and two of ours: {values:?}"
        );
        assert_eq!(seen.most[R53_CHALLENGE], 3, "{values:?}");
    }
    // ...and only the unrelated one is left, as it was; the parent zone is untouched.
    let txt = r53_txt(&r53, &zone).await;
    assert_eq!(
        txt.get(R53_CHALLENGE),
        Some(&(300, vec![R53_UNRELATED.to_string()])),
        "{txt:?}"
    );
    assert_eq!(txt.len(), 1, "{txt:?}");
    assert!(r53_txt(&r53, &parent).await.is_empty());
}

#[tokio::test]
async fn dns01_cloudflare_sqlite() {
    dns01_cloudflare(Db::Sqlite).await;
}

#[tokio::test]
async fn dns01_cloudflare_postgres() {
    dns01_cloudflare(Db::Postgres).await;
}

#[tokio::test]
async fn dns01_route53_sqlite() {
    dns01_route53(Db::Sqlite).await;
}

#[tokio::test]
async fn dns01_route53_postgres() {
    dns01_route53(Db::Postgres).await;
}

#[tokio::test]
async fn dns01_rfc2136_sqlite() {
    dns01_rfc2136(Db::Sqlite).await;
}

#[tokio::test]
async fn dns01_rfc2136_postgres() {
    dns01_rfc2136(Db::Postgres).await;
}

#[tokio::test]
async fn acme_issuer_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test]
async fn acme_issuer_postgres() {
    scenario(Db::Postgres).await;
}
