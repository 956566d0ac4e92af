//! The PKI against hostile clients, in process with an injected clock: the server's own
//! certificate under a CA of its own that no profile reaches, the server's names refused by
//! every door (REST, EST, ACME), a `default` profile that allows no names until told,
//! CRLs that never lose a revocation to concurrent regenerations, EST password logins that
//! cost the same for unknown users and are throttled, client numbers range-checked, and a
//! token cache that a flood of made-up tokens does not grow.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use base64::Engine;
use certkeeper::bootstrap::{Booted, boot};
use certkeeper::config::Settings;
use certkeeper::server::{AppState, https_app};
use certkeeper::services::pki::{Actor, Pki};
use certkeeper_ca::{IssuanceRequest, KeyAlgorithm, ManualClock, PublicKeyData};
use common::{Db, openssl, p, pg_admin_url};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;
use x509_parser::prelude::FromDer;

struct App {
    app: axum::Router,
    pki: Arc<Pki>,
    token: String,
    dir: tempfile::TempDir,
    pg_db: Option<String>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(db) = &self.pg_db {
            common::drop_database(db);
        }
    }
}

/// A booted server on `db`; `tune` changes the settings first (the `default` profile allows
/// no names unless it says so).
async fn app(db: Db, tune: impl FnOnce(&mut Settings)) -> App {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::load(dir.path(), None).unwrap();
    let pg_db = match db {
        Db::Sqlite => None,
        Db::Postgres => {
            let name = format!(
                "ck_hostile_{}_{}",
                std::process::id(),
                certkeeper::store::new_id().replace('-', "_")
            );
            let out = std::process::Command::new("psql")
                .args([
                    &pg_admin_url(),
                    "-q",
                    "-c",
                    &format!("CREATE DATABASE {name}"),
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let base = pg_admin_url();
            settings.database.url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
            Some(name)
        }
    };
    tune(&mut settings);
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let Booted {
        pki,
        metrics,
        new_admin_token,
    } = boot(Arc::new(settings), clock).await.unwrap();
    let state = AppState::new(pki.clone(), metrics);
    state
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    App {
        app: https_app(&state),
        pki,
        token: new_admin_token.unwrap(),
        dir,
        pg_db,
    }
}

const FROM: &str = "192.0.2.7:40000";

async fn call(a: &App, mut req: Request<Body>) -> (StatusCode, String) {
    if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
        req.extensions_mut()
            .insert(ConnectInfo(FROM.parse::<SocketAddr>().unwrap()));
    }
    let resp = a.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn api(a: &App, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(format!("/api/v1{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let (st, text) = call(a, req).await;
    (
        st.as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn csr_b64(names: &[&str]) -> String {
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let csr =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .serialize_request(&key)
            .unwrap();
    base64::engine::general_purpose::STANDARD.encode(csr.der())
}

fn enroll(user: &str, password: &str, names: &[&str], from: &str) -> Request<Body> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut req = Request::post("/.well-known/est/simpleenroll")
        .header("content-type", "application/pkcs10")
        .header(
            "authorization",
            format!("Basic {}", b64.encode(format!("{user}:{password}"))),
        )
        .body(Body::from(csr_b64(names)))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(from.parse::<SocketAddr>().unwrap()));
    req
}

fn any_name(s: &mut Settings) {
    common::any_name_under_default(s);
}

// ---------------------------------------------------------------------------------------
// Item: the server's own certificate and names.

#[tokio::test]
async fn server_certificate_has_its_own_ca_and_no_profile_reaches_it() {
    let a = app(Db::Sqlite, any_name).await;
    let (chain, _key) = certkeeper::bootstrap::server_certificate(&a.pki)
        .await
        .unwrap();
    let leaf = a.dir.path().join("server-leaf.pem");
    std::fs::write(
        &leaf,
        certkeeper_ca::pem_encode_certs([chain[0].as_slice()]),
    )
    .unwrap();
    let data = a.dir.path();
    // It verifies under server-ca.pem, and not under root.pem (what profiles issue under)
    // even with the default intermediate beside it.
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&data.join("server-ca.pem")),
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "localhost",
        p(&leaf),
    ]);
    assert!(ok && out.contains(": OK"), "{out}");
    let (_, int) = api(&a, &a.token, "GET", "/cas/intermediate", None).await;
    let int_pem = a.dir.path().join("int.pem");
    std::fs::write(&int_pem, int["certificate"].as_str().unwrap()).unwrap();
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&data.join("root.pem")),
        "-untrusted",
        p(&int_pem),
        p(&leaf),
    ]);
    assert!(
        !ok,
        "the server certificate must not chain to root.pem: {out}"
    );

    // The server CA is not a profile's CA and not a parent.
    let (st, body) = api(
        &a,
        &a.token,
        "POST",
        "/profiles",
        Some(json!({"name": "sneaky", "ca": "certkeeper-server-ca", "allowed_dns_names": ["*"]})),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = api(
        &a,
        &a.token,
        "POST",
        "/cas",
        Some(json!({"name": "sneaky-int", "type": "intermediate", "parent": "certkeeper-server-ca", "common_name": "Sneaky"})),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    // No profile by the old internal name is left to scope a token to.
    let (st, _) = api(&a, &a.token, "GET", "/profiles/certkeeper-server", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn no_door_issues_the_servers_own_names() {
    let a = app(Db::Sqlite, |s| {
        any_name(s);
        s.server.cert_names = vec!["ca.example.org".into()];
    })
    .await;
    let (st, t) = api(
        &a,
        &a.token,
        "POST",
        "/tokens",
        Some(json!({"name": "issuer", "role": "issuer", "profiles": ["default"]})),
    )
    .await;
    assert_eq!(st, 201, "{t}");
    let issuer = t["token"].as_str().unwrap().to_string();

    // REST, with an issuer token scoped to `default`: localhost, a configured name, and a
    // wildcard that covers it are policy violations; another name is issued.
    for names in [
        json!(["localhost"]),
        json!(["LocalHost."]),
        json!(["ca.example.org"]),
        json!(["*.example.org"]),
    ] {
        let (st, body) = api(
            &a,
            &issuer,
            "POST",
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": names})),
        )
        .await;
        assert_eq!(st, 403, "{names}: {body}");
        assert!(
            body["type"].as_str().unwrap().ends_with("policy-violation"),
            "{body}"
        );
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("server's own names"),
            "{body}"
        );
    }
    let (st, body) = api(
        &a,
        &issuer,
        "POST",
        "/certificates",
        Some(json!({"profile": "default", "csr": pem_csr(&["app.example.org", "localhost"])})),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = api(
        &a,
        &issuer,
        "POST",
        "/certificates/generate",
        Some(json!({"profile": "default", "dns_names": ["app.example.org"]})),
    )
    .await;
    assert_eq!(st, 201, "{body}");

    // EST.
    let (st, c) = api(
        &a,
        &a.token,
        "POST",
        "/est/credentials",
        Some(json!({"username": "dev"})),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    let pw = c["password"].as_str().unwrap().to_string();
    let (st, text) = call(&a, enroll("dev", &pw, &["localhost"], FROM)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("server's own names"), "{text}");
    let (st, text) = call(&a, enroll("dev", &pw, &["ca.example.org"], FROM)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{text}");

    // ACME: the engine's finalize goes through the registration authority as its Issuer.
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let mut req = IssuanceRequest::for_key(&key.subject_public_key_info());
    req.dns_names = vec!["localhost".into()];
    let actor = certkeeper_acme::Actor {
        name: "acme:account".into(),
        source: None,
    };
    let e = certkeeper_acme::Issuer::issue_for_order(&*a.pki, "default", req, &actor, "order-1")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, certkeeper_acme::IssuerError::Refused(d) if d.contains("server's own names")),
        "{e:?}"
    );
}

fn pem_csr(names: &[&str]) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(csr_b64(names))
        .unwrap();
    pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der))
}

#[tokio::test]
async fn the_default_profile_allows_no_names_until_told() {
    let a = app(Db::Sqlite, |_| {}).await;
    let (st, prof) = api(&a, &a.token, "GET", "/profiles/default", None).await;
    assert_eq!(st, 200, "{prof}");
    assert_eq!(prof["allowed_dns_names"], json!([]), "{prof}");
    assert_eq!(prof["allowed_ip_ranges"], json!([]), "{prof}");
    let (st, body) = api(
        &a,
        &a.token,
        "POST",
        "/certificates/generate",
        Some(json!({"profile": "default", "dns_names": ["app.example.com"]})),
    )
    .await;
    assert_eq!(st, 403, "{body}");

    // First-start settings name what it allows.
    let a = app(Db::Sqlite, |s| {
        s.ca.default_profile_dns = vec![".example.com".parse().unwrap()];
        s.ca.default_profile_ips = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let (st, body) = api(
        &a,
        &a.token,
        "POST",
        "/certificates/generate",
        Some(json!({"profile": "default", "dns_names": ["app.example.com"], "ip_addresses": ["10.1.2.3"]})),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = api(
        &a,
        &a.token,
        "POST",
        "/certificates/generate",
        Some(json!({"profile": "default", "dns_names": ["app.example.net"]})),
    )
    .await;
    assert_eq!(st, 403, "{body}");
}

/// The CLI pins the server CA: with the data directory's `server-ca.pem` (its default) it
/// works, and told to trust `root.pem` instead it refuses the server.
#[tokio::test]
async fn cli_pins_the_server_ca() {
    let s = common::TestServer::start(Db::Sqlite).await;
    let run = |extra: &[&str]| {
        std::process::Command::new(common::bin())
            .arg("--data-dir")
            .arg(&s.data_dir)
            .args(["--server", &s.url("")])
            .args(extra)
            .args(["ca", "list"])
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("intermediate"),
        "{out:?}"
    );
    let root = s.data_dir.join("root.pem");
    let out = run(&["--ca-file", p(&root)]);
    assert!(
        !out.status.success(),
        "root.pem must not vouch for the server: {out:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Item: CRLs never lose a revocation.

async fn crl_keeps_every_revocation(db: Db) {
    // Few connections, so that regenerations queue for one between their statements.
    let a = app(db, |s| {
        any_name(s);
        s.database.max_connections = 3;
    })
    .await;
    let profile = a.pki.profile("default").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..24 {
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let req = IssuanceRequest::for_key(&key.subject_public_key_info())
            .with_dns(&format!("crl-{i}.example.com"));
        let issued = a
            .pki
            .issue(&profile, req, None, &Actor::system())
            .await
            .unwrap();
        ids.push((issued.id, issued.cert.info.serial));
    }
    let ca_id = profile.ca_id.clone();
    // Revocations (each regenerating the CRL) and bare regenerations, all at once.
    let mut tasks = tokio::task::JoinSet::new();
    for (id, _) in &ids {
        let pki = a.pki.clone();
        let id = id.clone();
        tasks.spawn(async move { pki.revoke(&id, 1, &Actor::system()).await.map(|_| ()) });
        for _ in 0..2 {
            let pki = a.pki.clone();
            let ca = ca_id.clone();
            tasks.spawn(async move { pki.regenerate_crl(&ca).await.map(|_| ()) });
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let (der, _, _) = a
        .pki
        .store_for_tests()
        .get_crl(&ca_id)
        .await
        .unwrap()
        .unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let listed: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    for (_, serial) in &ids {
        assert!(
            listed.iter().any(|l| l.eq_ignore_ascii_case(serial)),
            "revoked serial {serial} is missing from the stored CRL ({} listed)",
            listed.len()
        );
    }
}

/// A regeneration already under way when a revocation commits, and finishing after it,
/// must list it: the CRL number is taken (its row locked) before the revocations are read.
/// Here another connection holds the CA row, so the regeneration waits at its number; the
/// revocation commits meanwhile (without a regeneration of its own), then the row is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crl_regeneration_in_flight_lists_a_revocation_committed_meanwhile() {
    use sqlx::Connection;
    let a = app(Db::Postgres, any_name).await;
    let profile = a.pki.profile("default").await.unwrap();
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let req =
        IssuanceRequest::for_key(&key.subject_public_key_info()).with_dns("meanwhile.example.com");
    let issued = a
        .pki
        .issue(&profile, req, None, &Actor::system())
        .await
        .unwrap();
    let ca_id = profile.ca_id.clone();
    let url = a.pki.settings().database.url.clone();
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT id FROM cas WHERE id = $1 FOR NO KEY UPDATE")
        .bind(&ca_id)
        .execute(&mut holder)
        .await
        .unwrap();
    let pki = a.pki.clone();
    let ca = ca_id.clone();
    let regeneration = tokio::spawn(async move { pki.regenerate_crl(&ca).await });
    // Wait (bounded) until the regeneration waits for the row.
    let mut waiting = false;
    for _ in 0..600 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(&mut watcher)
            .await
            .unwrap();
        if n > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(waiting, "the regeneration never reached the CA row");
    let ev = certkeeper::store::AuditEvent::new("test", None, "certificate.revoke", "certificate");
    a.pki
        .store_for_tests()
        .revoke_certificate(&issued.id, 1, "test", &ev, a.pki.now())
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    let der = regeneration.await.unwrap().unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let listed: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    assert!(
        listed
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&issued.cert.info.serial)),
        "the revocation committed while the regeneration waited is missing: {listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn crl_keeps_every_revocation_postgres() {
    crl_keeps_every_revocation(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crl_keeps_every_revocation_sqlite() {
    crl_keeps_every_revocation(Db::Sqlite).await;
}

// ---------------------------------------------------------------------------------------
// Item: EST Basic authentication is throttled.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn est_logins_are_throttled_per_address_and_per_user() {
    let a = app(Db::Sqlite, |s| {
        any_name(s);
        s.est.max_auth_failures = 3;
    })
    .await;
    let (st, c) = api(
        &a,
        &a.token,
        "POST",
        "/est/credentials",
        Some(json!({"username": "alice", "max_uses": 10})),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    let pw = c["password"].as_str().unwrap().to_string();

    // Per address: three failures (unknown users too) from one address, then even the
    // right password from there is refused with 429; another address still works.
    for user in ["nobody", "alice", "mallory"] {
        let (st, text) = call(
            &a,
            enroll(user, "wrong-password", &["a.example.com"], "192.0.2.1:1"),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{text}");
    }
    let (st, text) = call(&a, enroll("alice", &pw, &["a.example.com"], "192.0.2.1:2")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{text}");
    let (st, text) = call(&a, enroll("alice", &pw, &["a.example.com"], "192.0.2.2:1")).await;
    assert_eq!(st, StatusCode::OK, "{text}");

    // Per user: failures for one user from many addresses lock that user only.
    for i in 0..3 {
        let (st, _) = call(
            &a,
            enroll(
                "alice",
                "wrong-password",
                &["a.example.com"],
                &format!("198.51.100.{i}:1"),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, text) = call(
        &a,
        enroll("alice", &pw, &["a.example.com"], "203.0.113.9:1"),
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{text}");
    let (st, c) = api(
        &a,
        &a.token,
        "POST",
        "/est/credentials",
        Some(json!({"username": "bob"})),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    let (st, text) = call(
        &a,
        enroll(
            "bob",
            c["password"].as_str().unwrap(),
            &["b.example.com"],
            "203.0.113.9:1",
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{text}");
}

// ---------------------------------------------------------------------------------------
// Item: numbers from clients are range-checked.

#[tokio::test]
async fn huge_lifetimes_are_bad_requests_not_panics() {
    let a = app(Db::Sqlite, any_name).await;
    for (path, body) in [
        (
            "/tokens",
            json!({"name": "forever", "role": "viewer", "expires_in_days": 4_000_000_000u64}),
        ),
        (
            "/est/credentials",
            json!({"username": "forever", "expires_in_days": 4_000_000_000u64}),
        ),
        (
            "/tokens",
            json!({"name": "long", "role": "viewer", "expires_in_days": 36_501}),
        ),
        (
            "/est/credentials",
            json!({"username": "long", "expires_in_days": 36_501}),
        ),
        (
            "/tokens",
            json!({"name": "negative", "role": "viewer", "expires_in_days": -1}),
        ),
        (
            "/certificates/generate",
            json!({"profile": "default", "dns_names": ["x.example.com"], "validity_days": 4_000_000_000u64}),
        ),
        (
            "/certificates/generate",
            json!({"profile": "default", "dns_names": ["x.example.com"], "validity_days": 99_999_999_999u64}),
        ),
    ] {
        let req = Request::post(format!("/api/v1{path}"))
            .header("authorization", format!("Bearer {}", a.token))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = a.app.clone().oneshot(req).await.unwrap();
        let st = resp.status();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        let text = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(
            st == StatusCode::BAD_REQUEST
                || (path == "/certificates/generate" && st == StatusCode::FORBIDDEN),
            "{path} {body}: {st} {}",
            String::from_utf8_lossy(&text)
        );
        assert_eq!(ct, "application/problem+json");
    }
    // The largest allowed lifetime works.
    let (st, body) = api(
        &a,
        &a.token,
        "POST",
        "/tokens",
        Some(json!({"name": "century", "role": "viewer", "expires_in_days": 36_500})),
    )
    .await;
    assert_eq!(st, 201, "{body}");
}

// ---------------------------------------------------------------------------------------
// Item: the token cache.

#[tokio::test]
async fn made_up_tokens_do_not_grow_the_token_cache() {
    let a = app(Db::Sqlite, any_name).await;
    let (st, _) = api(&a, &a.token, "GET", "/cas", None).await;
    assert_eq!(st, 200);
    let (st, t) = api(
        &a,
        &a.token,
        "POST",
        "/tokens",
        Some(json!({"name": "viewer", "role": "viewer"})),
    )
    .await;
    assert_eq!(st, 201, "{t}");
    let viewer = t["token"].as_str().unwrap().to_string();
    let (st, _) = api(&a, &viewer, "GET", "/cas", None).await;
    assert_eq!(st, 200);
    let cached = a.pki.cached_tokens();
    assert!(cached <= 2, "{cached}");

    // A flood of random bearer tokens, well-formed and not: all 401, none cached.
    for i in 0..300 {
        let (fake, _) = certkeeper::services::tokens::new_token().unwrap();
        let bearer = if i % 2 == 0 {
            fake
        } else {
            format!("junk-{i}")
        };
        let (st, body) = api(&a, &bearer, "GET", "/cas", None).await;
        assert_eq!(st, 401, "{body}");
    }
    assert_eq!(a.pki.cached_tokens(), cached, "misses are not cached");
    let (st, _) = api(&a, &viewer, "GET", "/cas", None).await;
    assert_eq!(st, 200, "a real token still works");

    // Revoked: it stops working at once.
    let id = t["id"].as_str().unwrap();
    let (st, body) = api(&a, &a.token, "DELETE", &format!("/tokens/{id}"), None).await;
    assert!(st == 204 || st == 200, "{st} {body}");
    let (st, _) = api(&a, &viewer, "GET", "/cas", None).await;
    assert_eq!(st, 401);
}

// ---------------------------------------------------------------------------------------
// Item: EST client certificates under a bootstrap CA get RFC 5280 path validation.

/// Make `name.key` and `name.pem` in `dir` with openssl: a key from `key` (`-newkey`
/// arguments), signed by `issuer` (self-signed when none) with `digest`, carrying the
/// extension lines `ext`.
fn make_cert(
    dir: &std::path::Path,
    name: &str,
    key: &[&str],
    issuer: Option<&str>,
    digest: &str,
    ext: &str,
) -> Vec<u8> {
    let f = |n: &str, suffix: &str| {
        dir.join(format!("{n}.{suffix}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let (key_path, csr, ext_path, pem) = (
        f(name, "key"),
        f(name, "csr"),
        f(name, "ext"),
        f(name, "pem"),
    );
    let subj = format!("/CN={name}");
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend_from_slice(key);
    args.extend(["-subj", &subj, "-keyout", &key_path, "-out", &csr]);
    let (ok, out) = openssl(&args);
    assert!(ok, "{out}");
    std::fs::write(&ext_path, format!("[v3]\n{ext}\n")).unwrap();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-days",
        "30",
        digest,
        "-extfile",
        &ext_path,
        "-extensions",
        "v3",
        "-out",
        &pem,
    ];
    let (ca, ca_key) = match issuer {
        Some(i) => (f(i, "pem"), f(i, "key")),
        None => (String::new(), String::new()),
    };
    if issuer.is_some() {
        args.extend(["-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial"]);
    } else {
        args.extend(["-key", &key_path]);
    }
    let (ok, out) = openssl(&args);
    assert!(ok, "{name}: {out}");
    certkeeper_ca::parse_pem_or_der_certs(&std::fs::read(&pem).unwrap())
        .unwrap()
        .remove(0)
}

#[test]
fn bootstrap_client_certificates_get_path_validation() {
    use certkeeper::services::est::verify_chain;
    const EC: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    const RSA1024: &[&str] = &["-newkey", "rsa:1024"];
    const CA: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign";
    const CLIENT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:device.example.com";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A little ahead, so that certificates made during the test are valid then.
    let now = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let root = make_cert(d, "boot-root", EC, None, "-sha256", CA);
    let anchors = vec![root.clone()];
    let check = |chain: &[Vec<u8>], anchors: &[Vec<u8>]| verify_chain(chain, anchors, now);

    // A good device certificate, and one without EKU or keyUsage at all, are trusted.
    let good = make_cert(d, "good", EC, Some("boot-root"), "-sha256", CLIENT);
    assert_eq!(check(&[good], &anchors).unwrap(), 0);
    let bare = make_cert(
        d,
        "bare",
        EC,
        Some("boot-root"),
        "-sha256",
        "subjectAltName=DNS:bare.example.com",
    );
    check(&[bare], &anchors).unwrap();

    let refused = |what: &str, chain: &[Vec<u8>], anchors: &[Vec<u8>], says: &str| {
        let e = match check(chain, anchors) {
            Ok(_) => panic!("{what}: trusted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(says), "{what}: {e}");
    };
    // extendedKeyUsage without clientAuth.
    let server_only = make_cert(
        d,
        "server-only",
        EC,
        Some("boot-root"),
        "-sha256",
        &CLIENT.replace("extendedKeyUsage=clientAuth", "extendedKeyUsage=serverAuth"),
    );
    refused("serverAuth only", &[server_only], &anchors, "clientAuth");
    // keyUsage without digitalSignature.
    let no_sig = make_cert(
        d,
        "no-sig",
        EC,
        Some("boot-root"),
        "-sha256",
        &CLIENT.replace(
            "keyUsage=critical,digitalSignature",
            "keyUsage=critical,keyEncipherment",
        ),
    );
    refused(
        "keyEncipherment only",
        &[no_sig],
        &anchors,
        "digitalSignature",
    );
    // SHA-1 signatures.
    let sha1 = make_cert(d, "sha1", EC, Some("boot-root"), "-sha1", CLIENT);
    refused("SHA-1", &[sha1], &anchors, "not accepted");
    // An RSA-1024 device key, and an RSA-1024 CA.
    let weak_leaf = make_cert(
        d,
        "weak-leaf",
        RSA1024,
        Some("boot-root"),
        "-sha256",
        CLIENT,
    );
    refused("RSA-1024 leaf", &[weak_leaf], &anchors, "2048");
    let weak_root = make_cert(d, "weak-root", RSA1024, None, "-sha256", CA);
    let under_weak = make_cert(d, "under-weak", EC, Some("weak-root"), "-sha256", CLIENT);
    refused(
        "RSA-1024 CA",
        &[under_weak],
        std::slice::from_ref(&weak_root),
        "2048",
    );
    // Path length: a root that allows no intermediate, with one.
    let short = make_cert(
        d,
        "short-root",
        EC,
        None,
        "-sha256",
        &CA.replace("CA:TRUE", "CA:TRUE,pathlen:0"),
    );
    let int = make_cert(d, "short-int", EC, Some("short-root"), "-sha256", CA);
    let deep = make_cert(d, "deep", EC, Some("short-int"), "-sha256", CLIENT);
    refused(
        "path length",
        &[deep, int],
        std::slice::from_ref(&short),
        "path length",
    );
    // Name constraints: a root for example.com, a device named elsewhere.
    let nc = make_cert(
        d,
        "nc-root",
        EC,
        None,
        "-sha256",
        &format!("{CA}\nnameConstraints=critical,permitted;DNS:example.com"),
    );
    let outside = make_cert(
        d,
        "outside",
        EC,
        Some("nc-root"),
        "-sha256",
        &CLIENT.replace("device.example.com", "device.example.org"),
    );
    refused(
        "name constraints",
        &[outside],
        std::slice::from_ref(&nc),
        "name constraints",
    );
    let inside = make_cert(d, "inside", EC, Some("nc-root"), "-sha256", CLIENT);
    check(&[inside], std::slice::from_ref(&nc)).unwrap();
    // A certificate that is not a CA cannot issue.
    let not_ca = make_cert(d, "not-ca", EC, Some("boot-root"), "-sha256", CLIENT);
    let under_leaf = make_cert(d, "under-leaf", EC, Some("not-ca"), "-sha256", CLIENT);
    assert!(check(&[under_leaf, not_ca], &anchors).is_err());
    // An unrelated anchor.
    let other = make_cert(d, "other-root", EC, None, "-sha256", CA);
    let good = make_cert(d, "good2", EC, Some("boot-root"), "-sha256", CLIENT);
    refused(
        "unknown issuer",
        &[good],
        std::slice::from_ref(&other),
        "no trusted CA",
    );
}
