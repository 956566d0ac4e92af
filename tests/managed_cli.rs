//! `certkeeper managed ...` and `certkeeper destination ...` (including the connection
//! test) run as a user would, against a real server on SQLite and PostgreSQL and a Key
//! Vault stand-in.

mod cloud;
mod common;

use std::process::Output;

use cloud::azure::{CLIENT_SECRET, FakeAzure};
use common::{Db, TestServer, cli};
use reqwest::Method;
use serde_json::{Value, json};

fn run(s: &TestServer, args: &[&str]) -> Output {
    cli(s, args)
}

#[track_caller]
fn ok(s: &TestServer, args: &[&str]) -> String {
    let out = run(s, args);
    assert!(
        out.status.success(),
        "certkeeper {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn json_out(s: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(s, &all)).unwrap()
}

async fn scenario(db: Db) {
    let s = TestServer::start(db).await;
    let azure = FakeAzure::start().await;
    let config = s.write("vault.json", azure.config("cli-web").to_string());
    let creds = s.write(
        "creds.json",
        json!({ "client_secret": CLIENT_SECRET }).to_string(),
    );
    let out = ok(
        &s,
        &[
            "destination",
            "create",
            "vault",
            "--kind",
            "azure_key_vault",
            "--config",
            config.to_str().unwrap(),
            "--credentials",
            creds.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("vault") && out.contains("azure_key_vault"),
        "{out}"
    );
    assert!(!out.contains(CLIENT_SECRET));
    let list = ok(&s, &["destination", "list"]);
    assert!(list.contains("vault"), "{list}");

    // The connection test: ok, and a failure (wrong client secret) that exits 1 and says
    // why; the remove-on-unbind setting is shown.
    let out = ok(&s, &["destination", "test", "vault"]);
    assert!(out.contains("connection ok"), "{out}");
    let wrong = s.write(
        "wrong.json",
        json!({ "client_secret": "not the secret" }).to_string(),
    );
    let out = ok(
        &s,
        &[
            "destination",
            "create",
            "vault-wrong",
            "--kind",
            "azure_key_vault",
            "--config",
            config.to_str().unwrap(),
            "--credentials",
            wrong.to_str().unwrap(),
            "--remove-on-unbind",
        ],
    );
    assert!(out.contains("REMOVE_ON_UNBIND"), "{out}");
    let v = json_out(&s, &["destination", "get", "vault-wrong"]);
    assert_eq!(v["remove_on_unbind"], true, "{v}");
    let out = run(&s, &["destination", "test", "vault-wrong"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Invalid client secret"), "{err}");
    ok(&s, &["destination", "delete", "vault-wrong"]);

    let out = ok(
        &s,
        &[
            "managed",
            "create",
            "web",
            "--profile",
            "default",
            "--dns",
            "web.example.com",
            "--days",
            "30",
            "--renew-at-percent",
            "50",
            "--destination",
            "vault",
        ],
    );
    assert!(
        out.contains("web.example.com") && out.contains("versions:"),
        "{out}"
    );
    let v = json_out(&s, &["managed", "sync", "web"]);
    assert_eq!(v["bindings"][0]["in_sync"], true, "{v}");
    let v = json_out(&s, &["managed", "renew", "web"]);
    assert_eq!(v["current_version"], 2);
    let out = ok(&s, &["managed", "sync", "web"]);
    assert!(out.contains("destinations:"), "{out}");
    let v = json_out(&s, &["managed", "get", "web"]);
    assert_eq!(v["bindings"][0]["pushed_version"], 2);
    assert_eq!(v["renew_at_percent"], 50);
    assert_eq!(azure.seen().imports.len(), 2);
    let list = ok(&s, &["managed", "list"]);
    assert!(list.contains("web"), "{list}");

    // Errors are reported, and change nothing.
    let out = run(&s, &["managed", "create", "web", "--profile", "default"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));
    let out = run(&s, &["destination", "delete", "vault"]);
    assert!(!out.status.success(), "bound destinations stay");

    let v = json_out(&s, &["managed", "revoke", "web", "--reason", "superseded"]);
    assert_eq!(v["status"], "revoked");
    ok(
        &s,
        &[
            "managed",
            "unbind",
            "web",
            "--destination",
            "vault",
            "--keep-remote",
        ],
    );
    ok(&s, &["managed", "delete", "web"]);
    ok(&s, &["destination", "delete", "vault"]);
    let (_, list) = s.api(Method::GET, "/managed", None).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_cli_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_cli_postgres() {
    scenario(Db::Postgres).await;
}
