//! `certkeeper master-key rotate` on SQLite and PostgreSQL: after a rotation every kind of
//! sealed value opens under the new key (CA keys sign, the OCSP responder key answers, an
//! alert channel's secrets reach its receiver), the old key opens nothing, and a rotation
//! that cannot open a value changes nothing.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

type Hits = Arc<Mutex<usize>>;

async fn hit(State(hits): State<Hits>) -> StatusCode {
    *hits.lock().unwrap() += 1;
    StatusCode::OK
}

async fn receiver() -> (Hits, String) {
    let hits: Hits = Arc::default();
    let app = axum::Router::new().fallback(hit).with_state(hits.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (hits, url)
}

fn rotate(s: &TestServer) -> (bool, String) {
    let mut cmd = Command::new(bin());
    cmd.args(["--data-dir", p(&s.data_dir), "master-key", "rotate"])
        .env("RUST_BACKTRACE", "0");
    if let Some(url) = &s.database_url {
        cmd.env("CERTKEEPER_DATABASE__URL", url);
    }
    let out = cmd.output().expect("certkeeper runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn generate(s: &TestServer, name: &str) -> (u16, Value) {
    s.api(
        Method::POST,
        "/certificates/generate",
        Some(json!({"profile": "rotation", "dns_names": [name], "managed": true})),
    )
    .await
}

fn ocsp_good(s: &TestServer, cert: &Value) {
    let leaf = s.write("leaf.pem", cert["certificate"].as_str().unwrap());
    let chain = s.write("chain.pem", cert["chain"].as_str().unwrap());
    let bundle = s.write(
        "bundle.pem",
        format!(
            "{}{}",
            cert["root"].as_str().unwrap(),
            cert["chain"].as_str().unwrap()
        ),
    );
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&chain),
        "-cert",
        p(&leaf),
        "-url",
        &s.http_url("/ocsp"),
        "-CAfile",
        p(&bundle),
    ]);
    assert!(
        ok && out.contains(": good") && out.contains("Response verify OK"),
        "{out}"
    );
}

async fn rotation(db: Db) {
    let mut s = TestServer::start(db).await;
    let (_, default) = s.api(Method::GET, "/profiles/default", None).await;
    let (st, body) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "rotation", "ca": default["ca"], "allowed_dns_names": [".rotation.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    // One of each kind of sealed value: a kept subscriber key, an OCSP responder key (made
    // at the first OCSP request), an alert channel's secrets, an EAB key.
    let (st, first) = generate(&s, "a.rotation.test").await;
    assert_eq!(st, 201, "{first}");
    ocsp_good(&s, &first);
    let (hits, url) = receiver().await;
    let (st, ch) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({"name": "hook", "kind": "webhook", "url": url, "hmac_key": "k"})),
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    let (st, eab) = s
        .api(
            Method::POST,
            "/acme/eab-keys",
            Some(json!({"profile": "default"})),
        )
        .await;
    assert!(st == 200 || st == 201, "{eab}");
    s.stop();

    // A rotation that cannot open a value changes nothing.
    let key_path = s.data_dir.join("master.key");
    let old_key = std::fs::read_to_string(&key_path).unwrap();
    std::fs::write(&key_path, "q7YQ8m3cC4LJ0K5xZ2Vb1nR9tW6sE8uA3dF5gH7jK0M=\n").unwrap();
    let (ok, out) = rotate(&s);
    assert!(!ok && out.contains("nothing was changed"), "{out}");
    assert!(!s.data_dir.join("master.key.new").exists());
    std::fs::write(&key_path, &old_key).unwrap();

    let (ok, out) = rotate(&s);
    assert!(ok, "rotate: {out}");
    let new_key = std::fs::read_to_string(&key_path).unwrap();
    assert_ne!(new_key, old_key);
    assert!(!s.data_dir.join("master.key.new").exists());
    let resealed: usize = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count: {out}"));
    // Two CA keys, two OCSP keys at most, the kept key, the channel, the EAB key.
    assert!(resealed >= 5, "{out}");

    // Everything opens under the new key.
    s.spawn(&[]).await;
    let (st, second) = generate(&s, "b.rotation.test").await;
    assert_eq!(st, 201, "the CA key opens: {second}");
    ocsp_good(&s, &first);
    let (st, outcome) = s
        .api(Method::POST, "/alerts/channels/hook/test", None)
        .await;
    assert_eq!(st, 200, "{outcome}");
    assert_eq!(*hits.lock().unwrap(), 1, "the channel's URL opened");
    s.stop();

    // The old key opens nothing: a server given it refuses to start.
    let mut env = vec![("CERTKEEPER_CA__MASTER_KEY", old_key.trim())];
    if let Some(url) = &s.database_url {
        env.push(("CERTKEEPER_DATABASE__URL", url));
    }
    let said = refused_start(&s.data_dir, &env);
    assert!(
        said.contains("wrong master key"),
        "a server with the old key must not start: {said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_sqlite() {
    rotation(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_postgres() {
    rotation(Db::Postgres).await;
}
