//! The managed-certificate and destination API against the real binary, on SQLite and
//! PostgreSQL: create, list, get, renew now, push now to Azure Key Vault (a local server
//! following Microsoft's REST contract) and AWS Certificate Manager (moto), revoke, unbind,
//! delete; bad input refused without losing anything; credentials never shown or stored in
//! the clear.

mod cloud;
mod common;

use cloud::azure::{CLIENT_SECRET, FakeAzure};
use cloud::moto::Moto;
use common::{Db, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

fn binding<'a>(m: &'a Value, dest: &str) -> &'a Value {
    m["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["destination"] == dest)
        .unwrap_or_else(|| panic!("binding {dest} in {m:#}"))
}

async fn scenario(db: Db) {
    let s = TestServer::start(db).await;
    let azure = FakeAzure::start().await;
    let moto = Moto::start();

    // Destinations: bad ones are refused and leave nothing behind.
    let mut bad_name = azure.config("web_example");
    bad_name["certificate_name"] = json!("web_example");
    for (body, why) in [
        (
            json!({"name": "vault", "kind": "azure_key_vault", "config": bad_name, "credentials": {"client_secret": CLIENT_SECRET}}),
            "Key Vault certificate name",
        ),
        (
            json!({"name": "vault", "kind": "azure_key_vault", "config": azure.config("web")}),
            "needs credentials",
        ),
        (
            json!({"name": "vault", "kind": "gcp", "config": {}}),
            "is not one of",
        ),
        (
            json!({"name": "vault", "kind": "azure_key_vault", "config": {"vault_url": "http://x"}, "credentials": {"client_secret": "x"}}),
            "config",
        ),
    ] {
        let (st, p) = s
            .api(Method::POST, "/destinations", Some(body.clone()))
            .await;
        assert_eq!(st, 400, "{body}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(why), "{p}");
    }
    let (_, list) = s.api(Method::GET, "/destinations", None).await;
    assert_eq!(list["items"], json!([]));

    let (st, vault) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({
                "name": "vault", "kind": "azure_key_vault", "config": azure.config("web-example"),
                "credentials": {"client_secret": CLIENT_SECRET},
            })),
        )
        .await;
    assert_eq!(st, 201, "{vault}");
    assert_eq!(vault["has_credentials"], true);
    assert!(!vault.to_string().contains(CLIENT_SECRET));
    let (st, acm) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({
                "name": "acm", "kind": "aws_acm", "config": moto.config(),
                "credentials": Moto::credentials(),
            })),
        )
        .await;
    assert_eq!(st, 201, "{acm}");
    assert!(!acm.to_string().contains("test-secret"));
    let (st, _) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({"name": "acm", "kind": "aws_acm", "config": moto.config()})),
        )
        .await;
    assert_eq!(st, 409);
    let (_, got) = s.api(Method::GET, "/destinations/vault", None).await;
    assert_eq!(got["config"]["certificate_name"], "web-example");
    assert!(!got.to_string().contains(CLIENT_SECRET));

    // Managed certificates: bad input first.
    for (body, st_want) in [
        (
            json!({"name": "web", "profile": "default", "dns_names": ["web.example.com"], "renew_at_percent": 100}),
            400,
        ),
        (
            json!({"name": "web", "profile": "nope", "dns_names": ["web.example.com"]}),
            400,
        ),
        (
            json!({"name": "we b", "profile": "default", "dns_names": ["web.example.com"]}),
            400,
        ),
        (
            json!({"name": "web", "profile": "default", "dns_names": ["web.example.com"], "validity_days": 400}),
            403,
        ),
        (
            json!({"name": "web", "profile": "default", "dns_names": ["web.example.com"], "destinations": ["nope"]}),
            400,
        ),
    ] {
        let (st, p) = s.api(Method::POST, "/managed", Some(body.clone())).await;
        assert_eq!(st, st_want, "{body}: {p}");
    }
    let (_, list) = s.api(Method::GET, "/managed", None).await;
    assert_eq!(list["items"], json!([]));

    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({
                "name": "web", "profile": "default", "dns_names": ["web.example.com"],
                "validity_days": 30, "destinations": ["vault", "acm"],
            })),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 1);
    assert_eq!(m["versions"].as_array().unwrap().len(), 1);
    assert_eq!(binding(&m, "vault")["in_sync"], false);
    let (st, _) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "web", "profile": "default", "dns_names": ["web.example.com"]})),
        )
        .await;
    assert_eq!(st, 409);

    // Push now: both destinations hold version 1.
    let (st, m) = s.api(Method::POST, "/managed/web/sync", None).await;
    assert_eq!(st, 200, "{m}");
    for d in ["vault", "acm"] {
        let b = binding(&m, d);
        assert_eq!(b["in_sync"], true, "{b}");
        assert_eq!(b["pushed_version"], 1);
        assert_eq!(b["last_error"], Value::Null);
    }
    let arn = binding(&m, "acm")["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    let kv1 = binding(&m, "vault")["remote_version"].clone();
    let cert1 = m["versions"][0]["certificate_id"].as_str().unwrap();
    let (_, c1) = s
        .api(Method::GET, &format!("/certificates/{cert1}"), None)
        .await;
    assert_eq!(c1["managed"], true);
    assert_eq!(
        binding(&m, "acm")["remote_version"],
        c1["serial"],
        "ACM reports the serial now under the ARN"
    );

    // The vault stops accepting the cached token: the next push gets a new one.
    assert_eq!(azure.seen().token_requests.len(), 1);
    azure.seen().tokens.clear();

    // Renew now: version 2 goes to the same ARN and is a new Key Vault version.
    let (st, m) = s.api(Method::POST, "/managed/web/renew", None).await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["current_version"], 2);
    assert_eq!(binding(&m, "acm")["in_sync"], false);
    let (_, m) = s.api(Method::POST, "/managed/web/sync", None).await;
    assert_eq!(binding(&m, "acm")["remote_id"], arn.as_str());
    assert_eq!(binding(&m, "acm")["pushed_version"], 2);
    assert_eq!(binding(&m, "vault")["pushed_version"], 2, "{m}");
    assert_ne!(binding(&m, "vault")["remote_version"], kv1);
    {
        let seen = azure.seen();
        // The refused attempt (401) and the SDK's retry after the challenge, both with the
        // token its credential cached; then the import with a fresh credential's token.
        assert_eq!(seen.imports.len(), 4);
        assert_eq!(seen.token_requests.len(), 2);
        assert_eq!(seen.imports[1].authorization, seen.imports[0].authorization);
        assert_eq!(seen.imports[2].authorization, seen.imports[0].authorization);
        assert_ne!(seen.imports[3].authorization, seen.imports[2].authorization);
        assert_eq!(
            seen.imports[3].authorization,
            format!("Bearer {}", seen.tokens[0])
        );
        assert_eq!(
            seen.violations,
            [
                "import without a valid bearer token",
                "import without a valid bearer token"
            ]
        );
    }
    let kinds: Vec<&str> = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"renewed") && kinds.contains(&"synced"),
        "{kinds:?}"
    );

    // ACM refuses Ed25519 keys: refused before sending, recorded on the binding.
    let (st, ed) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({
                "name": "ed", "profile": "default", "dns_names": ["ed.example.com"],
                "key_algorithm": "ed25519", "destinations": ["acm"],
            })),
        )
        .await;
    assert_eq!(st, 201, "{ed}");
    let (_, ed) = s.api(Method::POST, "/managed/ed/sync", None).await;
    let b = binding(&ed, "acm");
    assert_eq!(b["in_sync"], false);
    assert_eq!(b["failures"], 1);
    assert!(
        b["last_error"]
            .as_str()
            .unwrap()
            .contains("ACM does not import Ed25519"),
        "{b}"
    );
    assert_eq!(ed["events"][0]["kind"], "sync_failed");

    // A bound destination cannot be deleted.
    let (st, _) = s.api(Method::DELETE, "/destinations/acm", None).await;
    assert_eq!(st, 409);

    // Revoke: every version revoked, no more renewals.
    let (st, r) = s
        .api(
            Method::POST,
            "/managed/web/revoke",
            Some(json!({"reason": "superseded"})),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], "revoked");
    assert_eq!(r["next_renewal_at"], Value::Null);
    assert!(
        r["versions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["status"] == "revoked")
    );
    let (st, _) = s.api(Method::POST, "/managed/web/renew", None).await;
    assert_eq!(st, 409);

    // Unbind, deleting the remote copies; delete.
    let (st, _) = s
        .api(
            Method::DELETE,
            "/managed/web/bindings/vault?delete_remote=true",
            None,
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(azure.seen().deletes, ["web-example"]);
    let (st, _) = s
        .api(
            Method::DELETE,
            "/managed/web/bindings/acm?delete_remote=true",
            None,
        )
        .await;
    assert_eq!(st, 204);
    let acm_client = certkeeper_sync::AwsAcm::new(
        serde_json::from_value(moto.config()).unwrap(),
        Some(serde_json::from_value(Moto::credentials()).unwrap()),
    )
    .await
    .unwrap();
    let gone = acm_client
        .client()
        .describe_certificate()
        .certificate_arn(&arn)
        .send()
        .await;
    assert!(gone.is_err(), "the ACM certificate is deleted");
    let (st, _) = s
        .api(Method::DELETE, "/managed/web/bindings/acm", None)
        .await;
    assert_eq!(st, 404);
    for path in ["/managed/web", "/managed/ed"] {
        let (st, _) = s.api(Method::DELETE, path, None).await;
        assert_eq!(st, 204);
    }
    let (st, _) = s.api(Method::GET, "/managed/web", None).await;
    assert_eq!(st, 404);
    let (st, _) = s.api(Method::DELETE, "/destinations/acm", None).await;
    assert_eq!(st, 204);
    let (_, c1) = s
        .api(Method::GET, &format!("/certificates/{cert1}"), None)
        .await;
    assert_eq!(c1["status"], "revoked", "versions stay on record");

    // Secrets never in the audit log, and (SQLite) never in the clear on disk.
    let (_, audit) = s.api(Method::GET, "/audit?limit=1000", None).await;
    assert!(!audit.to_string().contains(CLIENT_SECRET));
    if db == Db::Sqlite {
        for e in std::fs::read_dir(&s.data_dir).unwrap().flatten() {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            assert!(
                !bytes
                    .windows(CLIENT_SECRET.len())
                    .any(|w| w == CLIENT_SECRET.as_bytes()),
                "{} holds the client secret",
                e.path().display()
            );
        }
    }
}

#[tokio::test]
async fn managed_api_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test]
async fn managed_api_postgres() {
    scenario(Db::Postgres).await;
}

/// ACM with region and credentials from the standard AWS chain (the server's environment).
async fn standard_chain(db: Db) {
    let moto = Moto::start();
    let s = TestServer::start_with(
        db,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_REGION", "eu-central-1"),
        ],
    )
    .await;
    let (st, d) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({"name": "acm", "kind": "aws_acm", "config": {"endpoint_url": moto.url}})),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(d["has_credentials"], false);
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({
                "name": "env", "profile": "default", "dns_names": ["env.example.com"],
                "key_algorithm": "rsa-2048", "destinations": ["acm"],
            })),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let (_, m) = s.api(Method::POST, "/managed/env/sync", None).await;
    let b = binding(&m, "acm");
    assert_eq!(b["in_sync"], true, "{b}");
    assert!(
        b["remote_id"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:acm:eu-central-1:"),
        "{b}"
    );
}

#[tokio::test]
async fn standard_aws_chain_sqlite() {
    standard_chain(Db::Sqlite).await;
}

#[tokio::test]
async fn standard_aws_chain_postgres() {
    standard_chain(Db::Postgres).await;
}
