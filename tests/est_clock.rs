//! EST credential rules that depend on time or on concurrency, in process with an injected
//! clock (no sleeping), on SQLite and PostgreSQL: expiry, and a use limit that concurrent
//! enrollments cannot overrun.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use certkeeper::bootstrap::boot;
use certkeeper::config::Settings;
use certkeeper::server::{AppState, https_app};
use certkeeper_ca::ManualClock;
use common::{Db, pg_admin_url};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

struct App {
    app: axum::Router,
    clock: Arc<ManualClock>,
    token: String,
    _dir: tempfile::TempDir,
    pg_db: Option<String>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(db) = &self.pg_db {
            common::drop_database(db);
        }
    }
}

async fn app(db: Db) -> App {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let pg_db = match db {
        Db::Sqlite => None,
        Db::Postgres => {
            let name = format!("ck_est_clock_{}_{}", std::process::id(), rand_suffix());
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
            let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
            std::fs::write(
                dir.path().join("certkeeper.toml"),
                format!("[database]\nurl = {url:?}\n"),
            )
            .unwrap();
            Some(name)
        }
    };
    let mut settings = Settings::load(dir.path(), None).unwrap();
    common::any_name_under_default(&mut settings);
    let settings = Arc::new(settings);
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let booted = boot(settings, clock.clone()).await.unwrap();
    let token = booted.new_admin_token.clone().unwrap();
    let state = AppState::new(booted.pki, booted.metrics);
    state
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    App {
        app: https_app(&state),
        clock,
        token,
        _dir: dir,
        pg_db,
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

async fn call(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn credential(a: &App, body: Value) -> String {
    let req = Request::post("/api/v1/est/credentials")
        .header("authorization", format!("Bearer {}", a.token))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (st, _, text) = call(&a.app, req).await;
    assert_eq!(st, StatusCode::CREATED, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["password"].as_str().unwrap().to_string()
}

fn enroll_request(user: &str, password: &str, cn: &str) -> Request<Body> {
    let key = certkeeper_ca::KeyAlgorithm::EcdsaP256.generate().unwrap();
    let csr = rcgen::CertificateParams::new(vec![cn.to_string()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    Request::post("/.well-known/est/simpleenroll")
        .header("content-type", "application/pkcs10")
        .header(
            "authorization",
            format!("Basic {}", b64.encode(format!("{user}:{password}"))),
        )
        .body(Body::from(b64.encode(csr.der())))
        .unwrap()
}

async fn expiry_and_use_limit(db: Db) {
    let a = app(db).await;

    // Expiry follows the injected clock.
    let pw = credential(&a, json!({"username": "temp", "expires_in_days": 1})).await;
    let (st, _, text) = call(&a.app, enroll_request("temp", &pw, "t1.example.com")).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    a.clock.advance(Duration::hours(23));
    let (st, _, text) = call(&a.app, enroll_request("temp", &pw, "t2.example.com")).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    a.clock.advance(Duration::hours(2));
    let (st, headers, text) = call(&a.app, enroll_request("temp", &pw, "t3.example.com")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("expired"), "{text}");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );

    // Six concurrent enrollments against a credential good for two: exactly two succeed.
    let pw = credential(&a, json!({"username": "twice", "max_uses": 2})).await;
    let attempts = (0..6).map(|i| {
        call(
            &a.app,
            enroll_request("twice", &pw, &format!("c{i}.example.com")),
        )
    });
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| r.0 == StatusCode::OK).count();
    let refused = results
        .iter()
        .filter(|r| r.0 == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((ok, refused), (2, 4), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_and_use_limit_sqlite() {
    expiry_and_use_limit(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_and_use_limit_postgres() {
    expiry_and_use_limit(Db::Postgres).await;
}
