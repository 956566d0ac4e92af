//! The real certbot (from PyPI, installed into `target/certbot-venv` by `.ci/run`) against
//! the ACME server: registration, http-01 issuance with `--standalone`, dns-01 with manual
//! hooks that set TXT records in `pebble-challtestsrv`, renewal and revocation, on SQLite
//! and PostgreSQL.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Db, TestServer, free_port, openssl, p};

/// The certbot executable: `CERTKEEPER_TEST_CERTBOT` or the venv `.ci/run` creates.
fn certbot() -> PathBuf {
    let path = std::env::var("CERTKEEPER_TEST_CERTBOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/certbot-venv/bin/certbot")
        });
    assert!(
        path.exists(),
        "certbot not found at {} (run .ci/run, or python3 -m venv target/certbot-venv && target/certbot-venv/bin/pip install certbot)",
        path.display()
    );
    path
}

/// `pebble-challtestsrv` serving DNS on a free port, answering A queries with 127.0.0.1.
struct ChallSrv {
    child: Child,
    dns_port: u16,
    mgmt_port: u16,
}

impl ChallSrv {
    fn start() -> ChallSrv {
        let dns_port = free_port();
        let mgmt_port = free_port();
        let child = Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-management",
                &format!("127.0.0.1:{mgmt_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv6",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv (Debian package pebble) runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", mgmt_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble-challtestsrv did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ChallSrv {
            child,
            dns_port,
            mgmt_port,
        }
    }
}

impl Drop for ChallSrv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Certbot<'a> {
    s: &'a TestServer,
    dir: PathBuf,
    root: PathBuf,
    server_ca: PathBuf,
}

impl Certbot<'_> {
    fn new(s: &TestServer) -> Certbot<'_> {
        let dir = s.path("certbot");
        std::fs::create_dir_all(&dir).unwrap();
        let root = s.write("root-ca.pem", &s.root_pem);
        let server_ca = s.write("server-ca.pem", &s.server_ca_pem);
        Certbot {
            s,
            dir,
            root,
            server_ca,
        }
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let server = self.s.url("/acme/directory");
        let mut cmd = Command::new(certbot());
        cmd.args(args)
            .args([
                "--server",
                &server,
                "--config-dir",
                p(&self.dir.join("config")),
                "--work-dir",
                p(&self.dir.join("work")),
                "--logs-dir",
                p(&self.dir.join("logs")),
                "--non-interactive",
                "--no-random-sleep-on-renew",
            ])
            .env("REQUESTS_CA_BUNDLE", &self.server_ca);
        let out = cmd.output().expect("certbot runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn live(&self, name: &str, file: &str) -> PathBuf {
        self.dir.join("config/live").join(name).join(file)
    }
}

fn verify(root: &Path, fullchain: &Path) -> String {
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(root),
        "-untrusted",
        p(fullchain),
        p(fullchain),
    ]);
    assert!(ok, "openssl verify: {out}");
    out
}

fn serial_of(cert: &Path) -> String {
    let (ok, out) = openssl(&["x509", "-in", p(cert), "-noout", "-serial"]);
    assert!(ok, "{out}");
    out.trim().trim_start_matches("serial=").to_lowercase()
}

async fn http01_issue_renew_revoke(db: Db) {
    let chall = ChallSrv::start();
    let http01 = free_port();
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_ACME__HTTP01_PORT", &http01.to_string()),
            (
                "CERTKEEPER_ACME__DNS_RESOLVERS",
                &format!("[\"127.0.0.1:{}\"]", chall.dns_port),
            ),
        ],
    )
    .await;
    let cb = Certbot::new(&s);
    let domain = "www.certbot.test";

    // Registration and http-01 issuance with certbot's own standalone web server.
    let (ok, out) = cb.run(&[
        "certonly",
        "--standalone",
        "--http-01-port",
        &http01.to_string(),
        "--http-01-address",
        "127.0.0.1",
        "--agree-tos",
        "--register-unsafely-without-email",
        "-d",
        domain,
    ]);
    assert!(ok, "certbot certonly: {out}\nserver: {}", s.logs());
    let fullchain = cb.live(domain, "fullchain.pem");
    let out = verify(&cb.root, &fullchain);
    assert!(out.contains(": OK"), "{out}");
    let (_, text) = openssl(&[
        "x509",
        "-in",
        p(&fullchain),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(text.contains(&format!("DNS:{domain}")), "{text}");
    let first_serial = serial_of(&cb.live(domain, "cert.pem"));

    // The certificate is in the inventory, issued under the default profile.
    let (st, certs) = s
        .api(
            reqwest::Method::GET,
            &format!("/certificates?san={domain}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{certs}");
    let items = certs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{certs}");
    assert_eq!(items[0]["profile"], "default", "{certs}");

    // Renewal: a new certificate for the same name.
    let (ok, out) = cb.run(&[
        "renew",
        "--force-renewal",
        "--standalone",
        "--http-01-port",
        &http01.to_string(),
        "--http-01-address",
        "127.0.0.1",
    ]);
    assert!(ok, "certbot renew: {out}\nserver: {}", s.logs());
    let renewed = cb.live(domain, "cert.pem");
    let second_serial = serial_of(&renewed);
    assert_ne!(
        first_serial, second_serial,
        "renewal issues a new certificate"
    );
    verify(&cb.root, &cb.live(domain, "fullchain.pem"));

    // Revocation by the owning account, reflected in OCSP and the CRL.
    let (ok, out) = cb.run(&[
        "revoke",
        "--cert-path",
        p(&renewed),
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
    ]);
    assert!(ok, "certbot revoke: {out}\nserver: {}", s.logs());
    let chain = cb.live(domain, "chain.pem");
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&chain),
        "-cert",
        p(&renewed),
        "-url",
        &s.http_url("/ocsp"),
        "-CAfile",
        p(&cb.root),
        "-no_nonce",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("revoked") && out.contains("keyCompromise"),
        "{out}"
    );
    let (_, text) = openssl(&[
        "x509",
        "-in",
        p(&renewed),
        "-noout",
        "-ext",
        "crlDistributionPoints",
    ]);
    let crl_url = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("URI:"))
        .expect("certificate names a CRL")
        .to_string();
    let crl = reqwest::get(&crl_url).await.unwrap().bytes().await.unwrap();
    let crl_path = s.write("acme.crl", &crl);
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_path),
        "-noout",
        "-text",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.to_lowercase().replace(':', "").contains(&second_serial),
        "serial {second_serial} in the CRL: {out}"
    );
    assert!(
        !out.to_lowercase().replace(':', "").contains(&first_serial),
        "{out}"
    );
}

/// A certbot `--manual` hook, in Python (certbot's own interpreter), that sets or clears the
/// TXT record through pebble-challtestsrv's management API.
fn hook(s: &TestServer, name: &str, endpoint: &str, mgmt_port: u16) -> PathBuf {
    let python = certbot().with_file_name("python3");
    let script = format!(
        r#"#!{python}
import json, os, urllib.request
host = "_acme-challenge." + os.environ["CERTBOT_DOMAIN"] + "."
body = {{"host": host, "value": os.environ.get("CERTBOT_VALIDATION", "")}}
req = urllib.request.Request("http://127.0.0.1:{mgmt_port}/{endpoint}", data=json.dumps(body).encode(), method="POST")
urllib.request.urlopen(req).read()
"#,
        python = python.display()
    );
    let path = s.write(name, script);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

async fn dns01_wildcard(db: Db) {
    let chall = ChallSrv::start();
    let s = TestServer::start_with(
        db,
        &[(
            "CERTKEEPER_ACME__DNS_RESOLVERS",
            &format!("[\"127.0.0.1:{}\"]", chall.dns_port),
        )],
    )
    .await;
    let cb = Certbot::new(&s);
    let auth = hook(&s, "auth-hook", "set-txt", chall.mgmt_port);
    let cleanup = hook(&s, "cleanup-hook", "clear-txt", chall.mgmt_port);
    let (ok, out) = cb.run(&[
        "certonly",
        "--manual",
        "--preferred-challenges",
        "dns",
        "--manual-auth-hook",
        p(&auth),
        "--manual-cleanup-hook",
        p(&cleanup),
        "--agree-tos",
        "--register-unsafely-without-email",
        "--cert-name",
        "dns",
        "-d",
        "dns.certbot.test",
        "-d",
        "*.dns.certbot.test",
    ]);
    assert!(ok, "certbot dns-01: {out}\nserver: {}", s.logs());
    let fullchain = cb.live("dns", "fullchain.pem");
    verify(&cb.root, &fullchain);
    let (_, text) = openssl(&[
        "x509",
        "-in",
        p(&fullchain),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        text.contains("DNS:dns.certbot.test") && text.contains("DNS:*.dns.certbot.test"),
        "{text}"
    );

    // Without the TXT record, validation fails with a problem in the challenge and no
    // certificate is issued.
    let noop = s.write("noop-hook", "#!/bin/sh\nexit 0\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&noop, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, out) = cb.run(&[
        "certonly",
        "--manual",
        "--preferred-challenges",
        "dns",
        "--manual-auth-hook",
        p(&noop),
        "--cert-name",
        "missing",
        "-d",
        "missing.certbot.test",
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("unauthorized") || out.contains("TXT"), "{out}");
    assert!(!cb.live("missing", "cert.pem").exists());
}

#[tokio::test]
async fn certbot_dns01_sqlite() {
    dns01_wildcard(Db::Sqlite).await;
}

#[tokio::test]
async fn certbot_dns01_postgres() {
    dns01_wildcard(Db::Postgres).await;
}

#[tokio::test]
async fn certbot_http01_sqlite() {
    http01_issue_renew_revoke(Db::Sqlite).await;
}

#[tokio::test]
async fn certbot_http01_postgres() {
    http01_issue_renew_revoke(Db::Postgres).await;
}
