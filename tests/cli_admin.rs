//! The administration commands of the `certkeeper` client (alerts, ACME, discovery, EST),
//! run as a user would against a real server: each change is checked through the API, a
//! test message reaches a real HTTP receiver, secrets are read from files and never
//! printed back except the ones the server creates, once.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use common::{Db, TestServer, bin};
use reqwest::Method;
use serde_json::Value;

type Log = Arc<Mutex<Vec<Vec<u8>>>>;

async fn record(State(log): State<Log>, body: Bytes) -> StatusCode {
    log.lock().unwrap().push(body.to_vec());
    StatusCode::OK
}

/// An HTTP receiver for webhooks; returns what it got and its URL.
async fn receiver() -> (Log, String) {
    let log: Log = Arc::default();
    let app = axum::Router::new().fallback(record).with_state(log.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook-secret-path", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (log, url)
}

/// Run the client against `s`; returns (success, stdout, stderr).
async fn cli(s: &TestServer, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(bin());
    cmd.arg("--data-dir")
        .arg(&s.data_dir)
        .arg("--server")
        .arg(format!("https://localhost:{}", s.https_port))
        .args(args)
        .env_remove("CERTKEEPER_TOKEN")
        .env_remove("CERTKEEPER_SERVER")
        .env_remove("CERTKEEPER_CA_FILE");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("the client runs"))
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run and insist on success; returns stdout.
async fn ok(s: &TestServer, args: &[&str]) -> String {
    let (ok, out, err) = cli(s, args).await;
    assert!(ok, "certkeeper {args:?}: {err}\n{out}");
    out
}

/// Run with `--json` and parse what it printed.
async fn json(s: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ok(s, &all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

fn write(dir: &Path, name: &str, data: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_for_alerts_acme_discovery_and_est() {
    let s = TestServer::start_with(
        Db::Sqlite,
        &[("CERTKEEPER_DISCOVERY__ALLOW", "127.0.0.0/8")],
    )
    .await;
    let dir = s.dir.path();

    // Alerts: a webhook whose URL comes from a file and is never printed back.
    let (log, url) = receiver().await;
    let url_file = write(dir, "hook.url", &format!("{url}\n"));
    let hmac_file = write(dir, "hook.hmac", "sekrit-hmac\n");
    let created = ok(
        &s,
        &[
            "alert",
            "channel",
            "create",
            "ops",
            "--kind",
            "webhook",
            "--url-file",
            &url_file,
            "--hmac-key-file",
            &hmac_file,
            "--header",
            "X-Team=platform",
        ],
    )
    .await;
    assert!(
        created.contains("ops") && created.contains("webhook"),
        "{created}"
    );
    let listed = ok(&s, &["alert", "channel", "list"]).await;
    for secret in ["hook-secret-path", "sekrit-hmac", "platform"] {
        assert!(
            !created.contains(secret) && !listed.contains(secret),
            "{secret}: {listed}"
        );
    }
    let (st, channels) = s.api(Method::GET, "/alerts/channels", None).await;
    assert_eq!(st, 200);
    assert_eq!(channels[0]["config"]["signed"], true, "{channels}");
    ok(&s, &["alert", "channel", "test", "ops"]).await;
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "the test message reached the receiver"
    );

    let rule = json(
        &s,
        &[
            "alert",
            "rule",
            "create",
            "expiring",
            "--channel",
            "ops",
            "--threshold",
            "10",
            "--threshold",
            "3",
            "--event",
            "certificate.revoked",
            "--san",
            "*.example.com",
        ],
    )
    .await;
    assert_eq!(rule["thresholds"], serde_json::json!([10, 3]), "{rule}");
    assert_eq!(rule["selector"]["san"], "*.example.com");
    let rules = json(&s, &["alert", "rule", "list"]).await;
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");
    ok(&s, &["alert", "sweep"]).await;
    let outbox = json(&s, &["alert", "outbox", "--limit", "5"]).await;
    assert!(outbox.is_array(), "{outbox}");
    // A channel in use cannot go; after its rule it can.
    let (gone, _, err) = cli(&s, &["alert", "channel", "delete", "ops"]).await;
    assert!(!gone && err.contains("409"), "{err}");
    ok(&s, &["alert", "rule", "delete", "expiring"]).await;
    ok(&s, &["alert", "channel", "delete", "ops"]).await;
    let (_, channels) = s.api(Method::GET, "/alerts/channels", None).await;
    assert_eq!(channels, serde_json::json!([]));

    // ACME: an EAB key is printed once, listed without its HMAC key.
    let eab = ok(
        &s,
        &[
            "acme",
            "eab",
            "create",
            "--profile",
            "default",
            "--name",
            "ci",
        ],
    )
    .await;
    let key_id = eab
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .expect("key id printed")
        .trim()
        .to_string();
    let hmac = eab
        .lines()
        .find_map(|l| l.strip_prefix("hmac key:"))
        .expect("hmac key printed")
        .trim()
        .to_string();
    assert!(hmac.contains("shown once"), "{eab}");
    let keys = json(&s, &["acme", "eab", "list"]).await;
    assert!(keys.to_string().contains(&key_id), "{keys}");
    assert!(!keys.to_string().contains(hmac.split(' ').next().unwrap()));
    let window = json(
        &s,
        &[
            "acme",
            "renewal-window",
            "--ca",
            "intermediate",
            "--start",
            "2026-01-01T00:00:00Z",
            "--end",
            "2026-01-02T00:00:00Z",
        ],
    )
    .await;
    assert!(window["id"].is_string(), "{window}");
    let (refused, _, err) = cli(
        &s,
        &[
            "acme",
            "renewal-window",
            "--start",
            "2026-01-01T00:00:00Z",
            "--end",
            "2026-01-02T00:00:00Z",
        ],
    )
    .await;
    assert!(!refused && err.contains("--ca"), "{err}");

    // EST: a label, a credential whose password is printed once, then revoked.
    ok(
        &s,
        &["est", "label", "create", "routers", "--profile", "default"],
    )
    .await;
    let labels = json(&s, &["est", "label", "list"]).await;
    assert_eq!(labels[0]["label"], "routers", "{labels}");
    let cred = ok(
        &s,
        &[
            "est",
            "credential",
            "create",
            "router-7",
            "--label",
            "routers",
            "--max-uses",
            "1",
        ],
    )
    .await;
    assert!(
        cred.contains("password:") && cred.contains("shown once"),
        "{cred}"
    );
    let creds = json(&s, &["est", "credential", "list"]).await;
    let id = creds[0]["id"].as_str().expect("credential id").to_string();
    assert!(creds[0]["revoked_at"].is_null(), "{creds}");
    ok(&s, &["est", "credential", "revoke", &id]).await;
    let creds = json(&s, &["est", "credential", "list"]).await;
    assert!(creds[0]["revoked_at"].is_string(), "{creds}");

    // Discovery: a schedule made from scan arguments, the inventory, the scans.
    let sched = json(
        &s,
        &[
            "discovery",
            "schedule",
            "create",
            "--name",
            "nightly",
            "--cron",
            "0 3 * * *",
            "127.0.0.1",
            "--ports",
            "8443",
        ],
    )
    .await;
    assert_eq!(sched["name"], "nightly", "{sched}");
    assert_eq!(sched["spec"]["targets"], serde_json::json!(["127.0.0.1"]));
    let scheds = json(&s, &["discovery", "schedule", "list"]).await;
    assert!(scheds.to_string().contains("nightly"), "{scheds}");
    let sched_id = sched["id"].as_str().expect("schedule id");
    ok(&s, &["discovery", "schedule", "delete", sched_id]).await;
    let scheds = json(&s, &["discovery", "schedule", "list"]).await;
    assert!(!scheds.to_string().contains("nightly"), "{scheds}");
    for what in ["scans", "certificates", "endpoints"] {
        let v = json(&s, &["discovery", what]).await;
        assert!(v["items"].is_array(), "{what}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_rollover_from_the_command_line() {
    let s = TestServer::start(Db::Sqlite).await;
    ok(&s, &["ca", "create-root", "lab-root", "--cn", "Lab Root"]).await;
    let table = ok(&s, &["ca", "rollover", "lab-root", "--name", "lab-root-g2"]).await;
    assert!(
        table.contains("lab-root-g2") && table.contains("CN=Lab Root G2"),
        "{table}"
    );
    let cross = json(&s, &["ca", "cross-certificates", "lab-root"]).await;
    let cross = cross.as_array().unwrap();
    assert_eq!(cross.len(), 2, "{cross:?}");
    let (_, g2) = s.api(Method::GET, "/cas/lab-root-g2", None).await;
    assert_eq!(cross[0]["subject_ca_id"], g2["id"]);
    let list = ok(&s, &["ca", "list"]).await;
    let row = list.lines().find(|l| l.starts_with("lab-root ")).unwrap();
    assert!(row.contains(g2["id"].as_str().unwrap()), "{list}");
    // A second rollover of the same CA is refused with the server's reason.
    let (done, _, err) = cli(&s, &["ca", "rollover", "lab-root", "--name", "lab-root-g3"]).await;
    assert!(!done && err.contains("already has a successor"), "{err}");
}
