//! The newer destinations end to end against the real binary: AWS Secrets Manager and AWS
//! load balancer listeners (moto in server mode, IAM enforced where permissions are the
//! point), Cloudflare custom certificates (a local server following Cloudflare's documented
//! API, as no Cloudflare server can run here), and for every kind the connection test
//! (REST) and removal of what certkeeper put there when a binding goes (a destination
//! setting, off by default). Push, renewal, failure and removal paths, on SQLite and
//! PostgreSQL.

mod cloud;
mod common;

use certkeeper_sync::{AwsElb, AwsElbConfig, AwsSecretsManager, AwsSecretsManagerConfig};
use cloud::azure::{
    CLIENT_ID, CLIENT_SECRET, FEDERATED_TOKEN, FakeAzure, IDENTITY_HEADER, MANAGED_CLIENT_ID,
};
use cloud::cloudflare::{EDIT_TOKEN, FakeCloudflare, READ_TOKEN, ZONE_ID};
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

async fn create_destination(s: &TestServer, body: Value) -> Value {
    let (st, d) = s.api(Method::POST, "/destinations", Some(body)).await;
    assert_eq!(st, 201, "{d}");
    d
}

async fn test_connection(s: &TestServer, dest: &str) -> Value {
    let (st, t) = s
        .api(Method::POST, &format!("/destinations/{dest}/test"), None)
        .await;
    assert_eq!(st, 200, "{t}");
    t
}

/// Create managed certificate `name` bound to `destinations`, and push version 1.
async fn managed_pushed(s: &TestServer, name: &str, destinations: &[&str]) -> Value {
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({
                "name": name, "profile": "default", "dns_names": [format!("{name}.example.com")],
                "validity_days": 30, "destinations": destinations,
            })),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    sync(s, name).await
}

async fn sync(s: &TestServer, name: &str) -> Value {
    let (st, m) = s
        .api(Method::POST, &format!("/managed/{name}/sync"), None)
        .await;
    assert_eq!(st, 200, "{m}");
    m
}

/// Renew `name` and push the new version.
async fn renewed(s: &TestServer, name: &str) -> Value {
    let (st, m) = s
        .api(Method::POST, &format!("/managed/{name}/renew"), None)
        .await;
    assert_eq!(st, 200, "{m}");
    sync(s, name).await
}

/// The PEM of the newest version of managed certificate `m`.
async fn newest_pem(s: &TestServer, m: &Value) -> String {
    let id = m["versions"][0]["certificate_id"].as_str().unwrap();
    let (_, c) = s
        .api(Method::GET, &format!("/certificates/{id}"), None)
        .await;
    c["certificate"].as_str().unwrap().to_string()
}

fn der_of(pem_text: &str) -> Vec<u8> {
    pem::parse_many(pem_text).unwrap()[0].contents().to_vec()
}

async fn unbind(s: &TestServer, name: &str, dest: &str, query: &str) -> (u16, Value) {
    s.api(
        Method::DELETE,
        &format!("/managed/{name}/bindings/{dest}{query}"),
        None,
    )
    .await
}

async fn secrets_manager(db: Db) {
    let s = TestServer::start(db).await;
    let moto = Moto::start();
    let mut config = moto.config();
    config["secret_name"] = json!("prod/web/tls");
    let sm_json = create_destination(
        &s,
        json!({"name": "sm-json", "kind": "aws_secrets_manager", "config": config,
               "credentials": Moto::credentials(), "remove_on_unbind": true}),
    )
    .await;
    assert_eq!(sm_json["remove_on_unbind"], true);
    assert_eq!(sm_json["config"]["format"], "json");
    let mut pem_config = moto.config();
    pem_config["secret_name"] = json!("prod/web/tls.pem");
    pem_config["format"] = json!("pem");
    let sm_pem = create_destination(
        &s,
        json!({"name": "sm-pem", "kind": "aws_secrets_manager", "config": pem_config,
               "credentials": Moto::credentials()}),
    )
    .await;
    assert_eq!(sm_pem["remove_on_unbind"], false, "off by default");

    // Bad configurations are refused.
    for (config, why) in [
        (
            json!({"secret_name": "a b", "region": "us-east-1"}),
            "secret_name",
        ),
        (
            json!({"secret_name": "x", "region": "us-east-1", "format": "pkcs12"}),
            "unknown variant `pkcs12`",
        ),
        (
            json!({"secret_name": "x", "region": "us-east-1", "recovery_window_days": 3}),
            "recovery_window_days",
        ),
    ] {
        let (st, p) = s
            .api(
                Method::POST,
                "/destinations",
                Some(json!({"name": "bad", "kind": "aws_secrets_manager", "config": config})),
            )
            .await;
        assert_eq!(st, 400, "{p}");
        assert!(p["detail"].as_str().unwrap().contains(why), "{p}");
    }

    // The connection test before the secret exists.
    let t = test_connection(&s, "sm-json").await;
    assert_eq!(t["ok"], true, "{t}");
    assert!(
        t["checks"][0]
            .as_str()
            .unwrap()
            .contains("secretsmanager:ListSecrets"),
        "{t}"
    );

    // Version 1 reaches both secrets.
    let m = managed_pushed(&s, "web", &["sm-json", "sm-pem"]).await;
    let pem1 = newest_pem(&s, &m).await;
    let b = binding(&m, "sm-json");
    assert_eq!(b["pushed_version"], 1, "{b}");
    let arn = b["remote_id"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:"),
        "{arn}"
    );
    let version1 = b["remote_version"].as_str().unwrap().to_string();
    let sm = AwsSecretsManager::new(
        serde_json::from_value::<AwsSecretsManagerConfig>(config.clone()).unwrap(),
        Some(serde_json::from_value(Moto::credentials()).unwrap()),
    )
    .await
    .unwrap();
    let value = |id: String| {
        let client = sm.client().clone();
        async move {
            client
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .unwrap()
                .secret_string()
                .unwrap()
                .to_string()
        }
    };
    let v1: Value = serde_json::from_str(&value(arn.clone()).await).unwrap();
    assert_eq!(der_of(v1["certificate"].as_str().unwrap()), der_of(&pem1));
    assert!(
        v1["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        !pem::parse_many(v1["certificate_chain"].as_str().unwrap())
            .unwrap()
            .is_empty(),
        "the issuing CA's chain goes with it"
    );
    let pem_arn = binding(&m, "sm-pem")["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = value(pem_arn.clone()).await;
    let blocks = pem::parse_many(&text).unwrap();
    assert_eq!(blocks[0].contents(), der_of(&pem1).as_slice());
    assert_eq!(blocks.last().unwrap().tag(), "PRIVATE KEY");
    let t = test_connection(&s, "sm-json").await;
    assert!(
        t["checks"][0]
            .as_str()
            .unwrap()
            .contains("secretsmanager:DescribeSecret on \"prod/web/tls\" in us-east-1"),
        "{t}"
    );

    // Renewal: a new version of the same secret holds the new certificate.
    let m = renewed(&s, "web").await;
    let pem2 = newest_pem(&s, &m).await;
    assert_ne!(der_of(&pem2), der_of(&pem1));
    let b = binding(&m, "sm-json");
    assert_eq!(b["pushed_version"], 2, "{b}");
    assert_eq!(b["remote_id"], arn.as_str(), "same secret");
    assert_ne!(b["remote_version"], version1.as_str(), "a new version");
    let v2: Value = serde_json::from_str(&value(arn.clone()).await).unwrap();
    assert_eq!(der_of(v2["certificate"].as_str().unwrap()), der_of(&pem2));
    let described = sm
        .client()
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    let stages = described.version_ids_to_stages().unwrap();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert_eq!(
        stages[b["remote_version"].as_str().unwrap()],
        ["AWSCURRENT"]
    );
    assert_eq!(stages[&version1], ["AWSPREVIOUS"]);

    // Removal: the destination that asks for it loses the secret (recoverable for 30
    // days), the other keeps it.
    assert_eq!(unbind(&s, "web", "sm-json", "").await.0, 204);
    assert_eq!(unbind(&s, "web", "sm-pem", "").await.0, 204);
    let gone = sm
        .client()
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    assert!(gone.deleted_date().is_some(), "{gone:?}");
    let kept = sm
        .client()
        .describe_secret()
        .secret_id(&pem_arn)
        .send()
        .await
        .unwrap();
    assert!(kept.deleted_date().is_none(), "{kept:?}");
}

#[tokio::test]
async fn secrets_manager_sqlite() {
    secrets_manager(Db::Sqlite).await;
}

#[tokio::test]
async fn secrets_manager_postgres() {
    secrets_manager(Db::Postgres).await;
}

/// With IAM enforced, a missing permission is named by the connection test and by the
/// failed push.
#[tokio::test]
async fn aws_missing_permissions_are_named() {
    let moto = Moto::start_enforcing_iam(8);
    let read_only = moto.user(&[
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
    ]);
    let nothing = moto.user(&[]);
    let s = TestServer::start(Db::Sqlite).await;
    let mut config = moto.config();
    config["secret_name"] = json!("web");
    create_destination(
        &s,
        json!({"name": "ro", "kind": "aws_secrets_manager", "config": config,
               "credentials": read_only}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "none", "kind": "aws_secrets_manager", "config": config,
               "credentials": nothing}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "bad-key", "kind": "aws_secrets_manager", "config": config,
               "credentials": {"access_key_id": "AKIDNOSUCHKEY0000000", "secret_access_key": "x"}}),
    )
    .await;

    let t = test_connection(&s, "ro").await;
    assert_eq!(t["ok"], true, "{t}");
    let t = test_connection(&s, "none").await;
    assert_eq!(t["ok"], false, "{t}");
    let e = t["error"].as_str().unwrap();
    assert!(
        e.contains("missing permission secretsmanager:DescribeSecret"),
        "{e}"
    );
    let t = test_connection(&s, "bad-key").await;
    assert_eq!(t["ok"], false, "{t}");
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("credentials were not accepted"),
        "{t}"
    );

    // The read-only user cannot write: the push fails, names the action, and is retried.
    let m = managed_pushed(&s, "web", &["ro"]).await;
    let b = binding(&m, "ro");
    assert_eq!(b["pushed_version"], Value::Null, "{b}");
    let err = b["last_error"].as_str().unwrap();
    assert!(
        err.contains("missing permission secretsmanager:CreateSecret"),
        "{err}"
    );
    assert_eq!(m["events"][0]["kind"], "sync_failed");
}

async fn elb(db: Db) {
    // The fixture first: the server closes idle connections, and the client's pooled one
    // would not survive the wait.
    let moto = Moto::start();
    let fixture = moto.load_balancer();
    let s = TestServer::start(db).await;
    let placeholder = fixture["placeholder"].as_str().unwrap().to_string();
    let default_listener = fixture["listeners"]["443"].as_str().unwrap().to_string();
    let sni_listener = fixture["listeners"]["8443"].as_str().unwrap().to_string();
    let config = |listener: &str, slot: &str| {
        json!({"listener_arn": listener, "slot": slot, "endpoint_url": moto.url,
               "tags": {"owner": "certkeeper-tests"}})
    };

    // A region other than the listener's is refused at once; a listener that is not in
    // the region its ARN names is reported by the connection test.
    let mut wrong = config(&default_listener, "default");
    wrong["region"] = json!("eu-west-1");
    let (st, p) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({"name": "wrong", "kind": "aws_elb", "config": wrong,
                        "credentials": Moto::credentials()})),
        )
        .await;
    assert_eq!(st, 400, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains(
            "wrong region: the listener is in us-east-1, the destination names eu-west-1"
        ),
        "{p}"
    );
    let elsewhere = default_listener.replace(":us-east-1:", ":eu-west-1:");
    create_destination(
        &s,
        json!({"name": "elsewhere", "kind": "aws_elb", "config": config(&elsewhere, "default"),
               "credentials": Moto::credentials()}),
    )
    .await;
    let t = test_connection(&s, "elsewhere").await;
    assert_eq!(t["ok"], false, "{t}");
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("not found in eu-west-1"),
        "{t}"
    );

    create_destination(
        &s,
        json!({"name": "lb-default", "kind": "aws_elb",
               "config": config(&default_listener, "default"),
               "credentials": Moto::credentials()}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "lb-sni", "kind": "aws_elb", "config": config(&sni_listener, "sni"),
               "credentials": Moto::credentials(), "remove_on_unbind": true}),
    )
    .await;
    let t = test_connection(&s, "lb-default").await;
    assert_eq!(t["ok"], true, "{t}");
    assert!(
        t["checks"][0]
            .as_str()
            .unwrap()
            .contains("HTTPS listener on port 443"),
        "{t}"
    );

    let lb = AwsElb::new(
        serde_json::from_value::<AwsElbConfig>(config(&default_listener, "default")).unwrap(),
        Some(serde_json::from_value(Moto::credentials()).unwrap()),
    )
    .await
    .unwrap();
    let attached = |listener: String| {
        let client = lb.elb_client().clone();
        async move {
            let out = client
                .describe_listener_certificates()
                .listener_arn(listener)
                .send()
                .await
                .unwrap();
            let mut certs: Vec<(String, bool)> = out
                .certificates()
                .iter()
                .map(|c| {
                    (
                        c.certificate_arn().unwrap().to_string(),
                        c.is_default().unwrap_or(false),
                    )
                })
                .collect();
            certs.sort();
            certs
        }
    };
    let in_acm = |arn: String| {
        let client = lb.acm_client().clone();
        async move {
            match client.get_certificate().certificate_arn(arn).send().await {
                Ok(out) => Some(out.certificate().unwrap().to_string()),
                Err(_) => None,
            }
        }
    };

    // Version 1: the default slot replaces the placeholder; the SNI slot adds to it.
    let m = managed_pushed(&s, "web", &["lb-default", "lb-sni"]).await;
    let pem1 = newest_pem(&s, &m).await;
    let d1 = binding(&m, "lb-default")["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s1 = binding(&m, "lb-sni")["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(d1, s1, "a certificate of its own for each listener");
    assert_eq!(
        attached(default_listener.clone()).await,
        [(d1.clone(), true)]
    );
    let mut want = vec![(placeholder.clone(), true), (s1.clone(), false)];
    want.sort();
    assert_eq!(attached(sni_listener.clone()).await, want);
    assert_eq!(
        der_of(&in_acm(d1.clone()).await.unwrap()),
        der_of(&pem1),
        "ACM holds version 1"
    );

    // Version 2: the listeners hold new ARNs, the old ones are detached and deleted.
    let m = renewed(&s, "web").await;
    let pem2 = newest_pem(&s, &m).await;
    let d2 = binding(&m, "lb-default")["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s2 = binding(&m, "lb-sni")["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(binding(&m, "lb-default")["pushed_version"], 2);
    assert_ne!(d2, d1);
    assert_ne!(s2, s1);
    assert_eq!(
        attached(default_listener.clone()).await,
        [(d2.clone(), true)]
    );
    let mut want = vec![(placeholder.clone(), true), (s2.clone(), false)];
    want.sort();
    assert_eq!(attached(sni_listener.clone()).await, want);
    assert_eq!(der_of(&in_acm(d2.clone()).await.unwrap()), der_of(&pem2));
    assert!(in_acm(d1).await.is_none(), "version 1 deleted from ACM");
    assert!(in_acm(s1).await.is_none(), "version 1 deleted from ACM");

    // Removal: the SNI certificate comes off its listener and out of ACM; a listener's
    // default certificate cannot go, so that unbind is refused and the binding stays.
    assert_eq!(unbind(&s, "web", "lb-sni", "").await.0, 204);
    assert_eq!(
        attached(sni_listener.clone()).await,
        [(placeholder.clone(), true)]
    );
    assert!(in_acm(s2).await.is_none());
    let (st, p) = unbind(&s, "web", "lb-default", "?delete_remote=true").await;
    assert_eq!(st, 409, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("the listener's default certificate"),
        "{p}"
    );
    assert_eq!(
        attached(default_listener.clone()).await,
        [(d2.clone(), true)]
    );
    let (_, m) = s.api(Method::GET, "/managed/web", None).await;
    assert_eq!(binding(&m, "lb-default")["pushed_version"], 2);
    // Without removal the binding goes and the listener keeps serving.
    assert_eq!(unbind(&s, "web", "lb-default", "").await.0, 204);
    assert_eq!(attached(default_listener).await, [(d2.clone(), true)]);
    assert!(in_acm(d2).await.is_some());
}

#[tokio::test]
async fn elb_listener_sqlite() {
    elb(Db::Sqlite).await;
}

#[tokio::test]
async fn elb_listener_postgres() {
    elb(Db::Postgres).await;
}

#[tokio::test]
async fn cloudflare_custom_certificates() {
    let s = TestServer::start(Db::Sqlite).await;
    let cf = FakeCloudflare::start().await;
    let mut legacy = cf.config(ZONE_ID);
    legacy["bundle_method"] = json!("force");
    legacy["geo_restrictions"] = json!("eu");
    let d = create_destination(
        &s,
        json!({"name": "cf", "kind": "cloudflare", "config": legacy,
               "credentials": {"api_token": EDIT_TOKEN}, "remove_on_unbind": true}),
    )
    .await;
    assert!(
        !d.to_string().contains(EDIT_TOKEN),
        "the token is never shown"
    );
    let mut sni = cf.config(ZONE_ID);
    sni["type"] = json!("sni_custom");
    create_destination(
        &s,
        json!({"name": "cf-sni", "kind": "cloudflare", "config": sni,
               "credentials": {"api_token": EDIT_TOKEN}}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "cf-ro", "kind": "cloudflare", "config": cf.config(ZONE_ID),
               "credentials": {"api_token": READ_TOKEN}}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "cf-bad-token", "kind": "cloudflare", "config": cf.config(ZONE_ID),
               "credentials": {"api_token": "not-a-token"}}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "cf-wrong-zone", "kind": "cloudflare",
               "config": cf.config("0000000000000000000000000000abcd"),
               "credentials": {"api_token": EDIT_TOKEN}}),
    )
    .await;
    let (st, p) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({"name": "cf-none", "kind": "cloudflare", "config": cf.config(ZONE_ID)})),
        )
        .await;
    assert_eq!(st, 400, "{p}");

    // Connection tests.
    let t = test_connection(&s, "cf").await;
    assert_eq!(t["ok"], true, "{t}");
    assert_eq!(t["checks"][0], "the API token is active");
    let t = test_connection(&s, "cf-bad-token").await;
    assert_eq!(t["ok"], false);
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("the API token was not accepted"),
        "{t}"
    );
    let t = test_connection(&s, "cf-wrong-zone").await;
    assert_eq!(t["ok"], false);
    assert!(
        t["error"].as_str().unwrap().contains("wrong zone_id"),
        "{t}"
    );
    assert_eq!(test_connection(&s, "cf-ro").await["ok"], true);

    // Upload, then replace in place on renewal.
    let m = managed_pushed(&s, "web", &["cf", "cf-sni", "cf-ro"]).await;
    let pem1 = newest_pem(&s, &m).await;
    let id = binding(&m, "cf")["remote_id"].as_str().unwrap().to_string();
    let sni1 = binding(&m, "cf-sni")["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ro = binding(&m, "cf-ro");
    assert_eq!(ro["pushed_version"], Value::Null);
    assert!(
        ro["last_error"]
            .as_str()
            .unwrap()
            .contains("missing permission Zone / SSL and Certificates / Edit"),
        "{ro}"
    );
    {
        let seen = cf.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        let stored = seen.certificates.iter().find(|c| c.id == id).unwrap();
        assert_eq!(stored.leaf_der(), der_of(&pem1));
        assert_eq!(stored.bundle_method, "force");
        assert_eq!(stored.geo.as_deref(), Some("eu"));
        assert_eq!(stored.cert_type, "legacy_custom");
        assert!(
            pem::parse_many(&stored.certificate).unwrap().len() >= 2,
            "the chain goes with the certificate"
        );
        let post = seen.requests.iter().find(|r| r.method == "POST").unwrap();
        assert_eq!(post.authorization, format!("Bearer {EDIT_TOKEN}"));
        assert_eq!(post.path, format!("/zones/{ZONE_ID}/custom_certificates"));
    }
    let m = renewed(&s, "web").await;
    let pem2 = newest_pem(&s, &m).await;
    assert_eq!(binding(&m, "cf")["pushed_version"], 2);
    assert_eq!(binding(&m, "cf")["remote_id"], id.as_str(), "same id");
    let sni2 = binding(&m, "cf-sni")["remote_id"].as_str().unwrap();
    assert_ne!(
        sni2, sni1,
        "Cloudflare's new id for an sni_custom edit is kept"
    );
    {
        let seen = cf.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        let patches: Vec<&str> = seen
            .requests
            .iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(patches.len(), 2, "{patches:?}");
        assert!(patches.contains(&format!("/zones/{ZONE_ID}/custom_certificates/{id}").as_str()));
        let stored = seen.certificates.iter().find(|c| c.id == id).unwrap();
        assert_eq!(stored.leaf_der(), der_of(&pem2));
        assert_eq!(seen.certificates.len(), 2, "replaced, not added");
    }

    // Removal: on for `cf`, so its certificate is deleted; `cf-sni` keeps its copy.
    assert_eq!(unbind(&s, "web", "cf", "").await.0, 204);
    assert_eq!(unbind(&s, "web", "cf-sni", "").await.0, 204);
    let seen = cf.seen();
    assert!(seen.certificates.iter().all(|c| c.id != id));
    assert_eq!(seen.certificates.len(), 1);
    assert!(
        seen.requests
            .iter()
            .any(|r| r.method == "DELETE" && r.path.ends_with(&id))
    );
}

/// The two older kinds: connection test and removal on unbind (and on deleting the managed
/// certificate).
#[tokio::test]
async fn acm_and_key_vault_test_and_removal() {
    let s = TestServer::start(Db::Postgres).await;
    let moto = Moto::start();
    let azure = FakeAzure::start().await;
    create_destination(
        &s,
        json!({"name": "acm", "kind": "aws_acm", "config": moto.config(),
               "credentials": Moto::credentials(), "remove_on_unbind": true}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "vault", "kind": "azure_key_vault", "config": azure.config("web"),
               "credentials": {"client_secret": CLIENT_SECRET}, "remove_on_unbind": true}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "vault-bad", "kind": "azure_key_vault", "config": azure.config("web"),
               "credentials": {"client_secret": "wrong"}}),
    )
    .await;
    let t = test_connection(&s, "acm").await;
    assert_eq!(t["ok"], true, "{t}");
    assert!(
        t["checks"][0]
            .as_str()
            .unwrap()
            .contains("acm:ListCertificates in us-east-1")
    );
    let t = test_connection(&s, "vault").await;
    assert_eq!(t["ok"], true, "{t}");
    assert!(
        t["checks"][1]
            .as_str()
            .unwrap()
            .contains("does not exist yet"),
        "{t}"
    );
    azure.seen().forbid_gets = true;
    let t = test_connection(&s, "vault").await;
    assert_eq!(t["ok"], false, "{t}");
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("missing permission certificates/get"),
        "{t}"
    );
    azure.seen().forbid_gets = false;
    let t = test_connection(&s, "vault-bad").await;
    assert_eq!(t["ok"], false, "{t}");
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("Invalid client secret"),
        "{t}"
    );

    let m = managed_pushed(&s, "web", &["acm", "vault"]).await;
    let arn = binding(&m, "acm")["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(binding(&m, "vault")["pushed_version"], 1);
    let t = test_connection(&s, "vault").await;
    assert!(t["checks"][1].as_str().unwrap().contains("exists"), "{t}");
    assert!(azure.seen().imports.len() == 1);

    // Unbinding the ACM destination deletes the certificate; deleting the managed
    // certificate removes the Key Vault copy.
    let acm = certkeeper_sync::AwsAcm::new(
        serde_json::from_value(moto.config()).unwrap(),
        Some(serde_json::from_value(Moto::credentials()).unwrap()),
    )
    .await
    .unwrap();
    assert!(
        acm.client()
            .get_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .is_ok()
    );
    assert_eq!(unbind(&s, "web", "acm", "").await.0, 204);
    assert!(
        acm.client()
            .get_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .is_err(),
        "deleted from ACM"
    );
    assert!(azure.seen().deletes.is_empty());
    let (st, _) = s.api(Method::DELETE, "/managed/web", None).await;
    assert_eq!(st, 204);
    assert_eq!(azure.seen().deletes, ["web"]);
}

/// Key Vault through the Azure SDK with each credential kind: client secret, managed
/// identity (the App Service / sidecar identity endpoint named by `IDENTITY_ENDPOINT` and
/// `IDENTITY_HEADER`, which the server process is given) and workload identity federation
/// (a projected service account token file exchanged at the authority). Each one passes the
/// connection test, pushes version 1 and a renewal as new Key Vault versions; a refused
/// credential of each kind fails the connection test with Entra ID's reason.
#[tokio::test]
async fn key_vault_credential_kinds() {
    let azure = FakeAzure::start().await;
    let identity_endpoint = azure.start_identity_endpoint().await;
    let tokens = tempfile::tempdir().unwrap();
    let token_file = tokens.path().join("azure-identity-token");
    std::fs::write(&token_file, FEDERATED_TOKEN).unwrap();
    let wrong_file = tokens.path().join("other-token");
    std::fs::write(&wrong_file, "eyJhbGciOiJSUzI1NiJ9.b3RoZXI.c2ln").unwrap();
    let s = TestServer::start_with(
        Db::Sqlite,
        &[
            ("IDENTITY_ENDPOINT", identity_endpoint.as_str()),
            ("IDENTITY_HEADER", IDENTITY_HEADER),
        ],
    )
    .await;
    let token_path = token_file.to_str().unwrap();
    let kinds = [
        (
            "vault-cs",
            azure.config("cs"),
            Some(json!({"client_secret": CLIENT_SECRET})),
        ),
        (
            "vault-mi",
            azure.managed_config("mi", MANAGED_CLIENT_ID),
            None,
        ),
        ("vault-wi", azure.workload_config("wi", token_path), None),
    ];
    for (name, config, credentials) in &kinds {
        let mut body = json!({"name": name, "kind": "azure_key_vault", "config": config});
        if let Some(c) = credentials {
            body["credentials"] = c.clone();
        }
        create_destination(&s, body).await;
        let t = test_connection(&s, name).await;
        assert_eq!(t["ok"], true, "{name}: {t}");
        assert!(
            t["checks"][1]
                .as_str()
                .unwrap()
                .contains("does not exist yet"),
            "{name}: {t}"
        );
    }
    let t = test_connection(&s, "vault-mi").await;
    assert!(
        t["checks"][0].as_str().unwrap().contains(&format!(
            "user-assigned managed identity {MANAGED_CLIENT_ID}"
        )),
        "{t}"
    );

    for (name, _, _) in &kinds {
        let cert = &name["vault-".len()..];
        let m = managed_pushed(&s, cert, &[name]).await;
        assert_eq!(binding(&m, name)["pushed_version"], 1, "{m}");
        let v1 = binding(&m, name)["remote_version"].clone();
        let m = renewed(&s, cert).await;
        assert_eq!(binding(&m, name)["pushed_version"], 2, "{m}");
        assert_ne!(binding(&m, name)["remote_version"], v1);
        let t = test_connection(&s, name).await;
        assert!(t["checks"][1].as_str().unwrap().contains("exists"), "{t}");
        let newest = der_of(&newest_pem(&s, &m).await);
        let seen = azure.seen();
        let imports: Vec<_> = seen
            .imports
            .iter()
            .filter(|i| i.name == cert && i.version.is_some())
            .collect();
        assert_eq!(imports.len(), 2, "{name}");
        assert_eq!(
            imports[1].certificate_der, newest,
            "{name}: the renewal is the vault's newest version"
        );
    }
    {
        let seen = azure.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        assert!(
            seen.challenges > 0,
            "the SDK learns the scope from the challenge"
        );
        let assertion = seen
            .token_requests
            .iter()
            .find(|f| f.contains_key("client_assertion"))
            .expect("a workload identity token request");
        assert_eq!(assertion["client_assertion"], FEDERATED_TOKEN);
        assert_eq!(
            assertion["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        assert_eq!(assertion["client_id"], CLIENT_ID);
        assert!(!assertion.contains_key("client_secret"));
        let mi = &seen.identity_requests[0];
        assert_eq!(mi["client_id"], MANAGED_CLIENT_ID);
        assert_eq!(mi["resource"], "https://vault.azure.net");
    }

    // Refused credentials of each kind: the connection test names Entra ID's reason.
    create_destination(
        &s,
        json!({"name": "bad-cs", "kind": "azure_key_vault", "config": azure.config("cs"),
               "credentials": {"client_secret": "wrong"}}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "bad-mi", "kind": "azure_key_vault",
               "config": azure.managed_config("cs", "5f0c1d2e-0000-4000-8000-000000000000")}),
    )
    .await;
    create_destination(
        &s,
        json!({"name": "bad-wi", "kind": "azure_key_vault",
               "config": azure.workload_config("cs", wrong_file.to_str().unwrap())}),
    )
    .await;
    for (name, reason) in [
        ("bad-cs", "Invalid client secret"),
        ("bad-mi", "has not been assigned"),
        ("bad-wi", "No matching federated identity record"),
    ] {
        let t = test_connection(&s, name).await;
        assert_eq!(t["ok"], false, "{name}: {t}");
        let error = t["error"].as_str().unwrap();
        assert!(error.contains(reason), "{name}: {error}");
        assert!(!error.contains(CLIENT_SECRET) && !error.contains(FEDERATED_TOKEN));
    }
    // A client secret credential without its secret, or a secret given to another kind.
    let (st, p) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({"name": "no-secret", "kind": "azure_key_vault",
                        "config": azure.config("cs")})),
        )
        .await;
    assert_eq!(st, 400, "{p}");
    let (st, p) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({"name": "mi-secret", "kind": "azure_key_vault",
                        "config": azure.managed_config("cs", MANAGED_CLIENT_ID),
                        "credentials": {"client_secret": "x"}})),
        )
        .await;
    assert_eq!(st, 400, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("only the client_secret"),
        "{p}"
    );
}

/// A destination on a profile of the shared AWS config whose credentials come from
/// `credential_process`: the server runs the process a temporary config file names, and
/// moto, enforcing IAM, accepts only the keys that process prints.
#[tokio::test]
async fn aws_profile_with_credential_process() {
    use std::os::unix::fs::PermissionsExt;
    let moto = Moto::start_enforcing_iam(4);
    let user = moto.user(&["secretsmanager:*"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("credentials.sh");
    let printed = json!({
        "Version": 1,
        "AccessKeyId": user["access_key_id"],
        "SecretAccessKey": user["secret_access_key"],
    });
    std::fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' '{printed}'\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let aws_config = dir.path().join("config");
    std::fs::write(
        &aws_config,
        format!(
            "[profile certkeeper-test]\nregion = us-east-1\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    let s = TestServer::start_with(
        Db::Sqlite,
        &[
            ("AWS_CONFIG_FILE", aws_config.to_str().unwrap()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.path().join("absent").to_str().unwrap(),
            ),
        ],
    )
    .await;
    let config = json!({"secret_name": "via-process", "endpoint_url": moto.url,
                        "profile": "certkeeper-test"});
    create_destination(
        &s,
        json!({"name": "sm", "kind": "aws_secrets_manager", "config": config}),
    )
    .await;
    let mut other = config.clone();
    other["profile"] = json!("no-such-profile");
    other["region"] = json!("us-east-1");
    create_destination(
        &s,
        json!({"name": "sm-other", "kind": "aws_secrets_manager", "config": other}),
    )
    .await;
    let (st, p) = s
        .api(
            Method::POST,
            "/destinations",
            Some(
                json!({"name": "both", "kind": "aws_secrets_manager", "config": config,
                        "credentials": Moto::credentials()}),
            ),
        )
        .await;
    assert_eq!(st, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("not both"), "{p}");

    let t = test_connection(&s, "sm").await;
    assert_eq!(t["ok"], true, "{t}");
    let t = test_connection(&s, "sm-other").await;
    assert_eq!(t["ok"], false, "{t}");
    assert!(
        t["error"].as_str().unwrap().contains("no-such-profile"),
        "{t}"
    );
    let m = managed_pushed(&s, "web", &["sm"]).await;
    let b = binding(&m, "sm");
    assert_eq!(b["pushed_version"], 1, "{b}");
    let sm = AwsSecretsManager::new(
        serde_json::from_value::<AwsSecretsManagerConfig>(
            json!({"secret_name": "via-process", "endpoint_url": moto.url, "region": "us-east-1"}),
        )
        .unwrap(),
        Some(serde_json::from_value(user).unwrap()),
    )
    .await
    .unwrap();
    let got = sm
        .client()
        .describe_secret()
        .secret_id("via-process")
        .send()
        .await
        .unwrap();
    assert_eq!(got.arn(), b["remote_id"].as_str());
}
