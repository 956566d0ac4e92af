//! End-to-end tests of the `certkeeper` client commands: the real binary, run as a user
//! would, against a real server on SQLite and on PostgreSQL.
//!
//! The client finds the admin token and the root certificate in the server's data
//! directory (`--data-dir`) and talks to `--server https://localhost:<port>`. Results are
//! checked through the API and with the `openssl` command line tool.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{Db, TestServer, bin, free_port, openssl, p};
use reqwest::Method;
use serde_json::Value;

/// Run the client with the server's data directory and URL, plus `args`.
fn run(s: &TestServer, server: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(&s.data_dir)
        .arg("--server")
        .arg(server)
        .args(args)
        .env_remove("CERTKEEPER_SERVER")
        .env_remove("CERTKEEPER_TOKEN")
        .env_remove("CERTKEEPER_CA_FILE")
        .env_remove("CERTKEEPER_DATA_DIR")
        .env_remove("CERTKEEPER_CONFIG")
        .output()
        .expect("the client runs")
}

/// The server's HTTPS URL as the client wants it.
fn server_url(s: &TestServer) -> String {
    format!("https://localhost:{}", s.https_port)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Run and insist on success; returns stdout.
#[track_caller]
fn ok(s: &TestServer, args: &[&str]) -> String {
    let out = run(s, &server_url(s), args);
    assert!(
        out.status.success(),
        "certkeeper {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Run and insist on failure; returns stderr.
#[track_caller]
fn fails(s: &TestServer, server: &str, args: &[&str]) -> String {
    let out = run(s, server, args);
    assert!(
        !out.status.success(),
        "certkeeper {args:?} should fail:\nstdout: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Serial numbers compare as integers: hex, case, separators and leading zeros aside.
fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.replace(':', "")
            .trim()
            .trim_start_matches('0')
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

async fn scenario_cli(db: Db) {
    let s = TestServer::start(db).await;
    let dir = s.path("work");
    std::fs::create_dir_all(&dir).unwrap();

    // ca list: a table, and JSON that matches the API.
    let table = ok(&s, &["ca", "list"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("STATUS") && header.contains("DAYS_LEFT"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("intermediate "))
        .unwrap_or_else(|| panic!("no intermediate row: {table}"));
    assert!(row.contains("active"), "{row}");
    // The column after the expiry: days left (the intermediate lives five years or so).
    let tokens: Vec<&str> = row.split_whitespace().collect();
    let after_expiry = tokens
        .iter()
        .position(|t| t.ends_with('Z'))
        .and_then(|i| tokens.get(i + 1))
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no days left in: {row}"));
    assert!((300..=4000).contains(&after_expiry), "{row}");
    assert!(table.lines().any(|l| l.starts_with("root ")), "{table}");
    let listed: Value = serde_json::from_str(&ok(&s, &["ca", "list", "--json"])).expect("JSON");
    let (_, api_cas) = s.api(Method::GET, "/cas", None).await;
    assert_eq!(listed, api_cas);
    let intermediate = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "intermediate")
        .unwrap()
        .clone();
    assert!(row.contains(intermediate["id"].as_str().unwrap()), "{row}");

    // cert generate writes the certificate, chain and a private key file.
    let out_dir = dir.join("gen");
    let out = ok(
        &s,
        &[
            "cert",
            "generate",
            "--profile",
            "default",
            "--dns",
            "cli.example.com",
            "--out-dir",
            p(&out_dir),
        ],
    );
    assert!(out.contains("cli.example.com"), "{out}");
    assert!(
        !out.contains("PRIVATE KEY"),
        "the key is not printed: {out}"
    );
    let (cert, chain, key) = (
        out_dir.join("cert.pem"),
        out_dir.join("chain.pem"),
        out_dir.join("key.pem"),
    );
    assert_eq!(mode(&key), 0o600, "key.pem is private");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let root = s.data_dir.join("root.pem");
    let (verified, vout) = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&chain),
        p(&cert),
    ]);
    assert!(verified, "{vout}");
    assert_eq!(vout.trim(), format!("{}: OK", p(&cert)));
    let (_, from_key) = openssl(&["pkey", "-in", p(&key), "-pubout"]);
    let (_, from_cert) = openssl(&["x509", "-in", p(&cert), "-pubkey", "-noout"]);
    assert_eq!(from_key, from_cert, "key.pem belongs to cert.pem");

    // --json output of generate leaves the key out.
    let json_dir = dir.join("gen-json");
    let gen_json: Value = serde_json::from_str(&ok(
        &s,
        &[
            "cert",
            "generate",
            "--dns",
            "json.example.com",
            "--out-dir",
            p(&json_dir),
            "--json",
        ],
    ))
    .expect("JSON");
    assert!(gen_json.get("private_key").is_none(), "{gen_json}");
    assert_eq!(gen_json["profile"], "default");
    assert_eq!(mode(&json_dir.join("key.pem")), 0o600);

    // cert list --json finds it.
    let page: Value = serde_json::from_str(&ok(
        &s,
        &["cert", "list", "--json", "--san", "cli.example.com"],
    ))
    .expect("JSON");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let id = items[0]["id"].as_str().unwrap().to_string();
    let serial = items[0]["serial"].as_str().unwrap().to_string();
    assert_eq!(items[0]["status"], "valid");
    let all: Value =
        serde_json::from_str(&ok(&s, &["cert", "list", "--json", "--profile", "default"]))
            .expect("JSON");
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    let table = ok(&s, &["cert", "list", "--san", "cli.example.com"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("valid")),
        "{table}"
    );

    // cert get --format pem matches cert.pem.
    let got_pem = dir.join("got.pem");
    ok(
        &s,
        &["cert", "get", &id, "--format", "pem", "--out", p(&got_pem)],
    );
    assert_eq!(
        std::fs::read_to_string(&got_pem).unwrap().trim(),
        std::fs::read_to_string(&cert).unwrap().trim()
    );

    // cert revoke with an RFC 5280 reason name.
    let out = ok(&s, &["cert", "revoke", &id, "--reason", "keyCompromise"]);
    assert!(out.contains("revoked"), "{out}");
    let (_, rec) = s
        .api(Method::GET, &format!("/certificates/{id}"), None)
        .await;
    assert_eq!(rec["status"], "revoked");
    assert_eq!(rec["revocation_reason"], 1);
    let err = fails(&s, &server_url(&s), &["cert", "revoke", &id]);
    assert!(err.contains("409"), "{err}");

    // ca crl: a PEM CRL signed by the intermediate that lists the serial.
    let crl = dir.join("crl.pem");
    ok(&s, &["ca", "crl", "intermediate", "--out", p(&crl)]);
    assert!(
        std::fs::read_to_string(&crl)
            .unwrap()
            .starts_with("-----BEGIN X509 CRL-----")
    );
    let bundle = s.write(
        "bundle.pem",
        format!(
            "{}{}",
            s.root_pem,
            ok(&s, &["ca", "get", "intermediate", "--json"])
                .parse::<Value>()
                .map(|v| v["certificate"].as_str().unwrap().to_string())
                .unwrap()
        ),
    );
    let (crl_ok, crl_text) = openssl(&[
        "crl",
        "-in",
        p(&crl),
        "-CAfile",
        p(&bundle),
        "-noout",
        "-text",
    ]);
    assert!(crl_ok, "{crl_text}");
    assert!(crl_text.contains("verify OK"), "{crl_text}");
    let listed_serials: Vec<&str> = crl_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number:"))
        .collect();
    assert!(
        listed_serials.iter().any(|x| same_serial(x, &serial)),
        "serial {serial} not in CRL: {crl_text}"
    );
    assert!(crl_text.contains("Key Compromise"), "{crl_text}");

    // token create prints the secret once; a viewer token reads but cannot issue.
    let created = run(
        &s,
        &server_url(&s),
        &["token", "create", "--name", "ci", "--role", "viewer"],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let token = text(&created.stdout).trim().to_string();
    assert!(
        token.starts_with("ck_") && !token.contains(char::is_whitespace),
        "{token}"
    );
    assert!(
        text(&created.stderr).contains("shown only once"),
        "{}",
        text(&created.stderr)
    );
    let listed = ok(&s, &["token", "list", "--json"]);
    assert!(!listed.contains(&token), "token list shows no secret");
    assert!(listed.contains("\"ci\""), "{listed}");

    let as_viewer = ok(&s, &["--token", &token, "ca", "list"]);
    assert!(
        as_viewer.lines().any(|l| l.starts_with("intermediate ")),
        "{as_viewer}"
    );
    let denied_dir = dir.join("denied");
    let err = fails(
        &s,
        &server_url(&s),
        &[
            "--token",
            &token,
            "cert",
            "generate",
            "--profile",
            "default",
            "--dns",
            "viewer.example.com",
            "--out-dir",
            p(&denied_dir),
        ],
    );
    assert!(err.contains("403"), "{err}");
    assert!(
        !denied_dir.join("key.pem").exists(),
        "nothing written on failure"
    );
    let err = fails(&s, &server_url(&s), &["--token", &token, "audit"]);
    assert!(err.contains("403"), "{err}");
    let err = fails(
        &s,
        &server_url(&s),
        &["--token", "ck_unknown", "ca", "list"],
    );
    assert!(err.contains("401"), "{err}");

    // The audit log shows the CLI's actions.
    let audit: Value = serde_json::from_str(&ok(
        &s,
        &["audit", "--json", "--action", "certificate.revoke"],
    ))
    .expect("JSON");
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["object_id"], id.as_str());
    assert!(
        entries[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("token:admin:")
    );

    // A wrong port fails with a clear error and a non-zero exit.
    let port = free_port();
    let wrong = format!("https://localhost:{port}");
    let err = fails(&s, &wrong, &["ca", "list"]);
    assert!(err.contains(&format!("connecting to {wrong}")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn cli_sqlite() {
    scenario_cli(Db::Sqlite).await;
}

#[tokio::test]
async fn cli_postgres() {
    scenario_cli(Db::Postgres).await;
}

/// Client set-up errors: no token file, an unreadable --ca-file, and a server whose
/// certificate is not trusted.
async fn scenario_client_setup(db: Db) {
    let s = TestServer::start(db).await;
    let empty = s.path("empty-data");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(bin())
        .args([
            "--data-dir",
            p(&empty),
            "--server",
            &server_url(&s),
            "ca",
            "list",
        ])
        .env_remove("CERTKEEPER_TOKEN")
        .env_remove("CERTKEEPER_SERVER")
        .env_remove("CERTKEEPER_CA_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("admin.token"), "{err}");

    let missing = s.path("missing.pem");
    let err = fails(
        &s,
        &server_url(&s),
        &["--ca-file", p(&missing), "ca", "list"],
    );
    assert!(err.contains("missing.pem"), "{err}");

    // Trusting another root: the TLS handshake fails, and the client says where it went.
    let (okk, other) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=Unrelated Root",
        "-keyout",
        p(&s.path("unrelated.key")),
        "-out",
        p(&s.path("unrelated.pem")),
        "-days",
        "30",
    ]);
    assert!(okk, "{other}");
    let err = fails(
        &s,
        &server_url(&s),
        &["--ca-file", p(&s.path("unrelated.pem")), "ca", "list"],
    );
    assert!(
        err.contains(&format!("connecting to {}", server_url(&s))),
        "{err}"
    );
}

#[tokio::test]
async fn client_setup_sqlite() {
    scenario_client_setup(Db::Sqlite).await;
}

#[tokio::test]
async fn client_setup_postgres() {
    scenario_client_setup(Db::Postgres).await;
}
