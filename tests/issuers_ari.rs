//! Renewal information (RFC 9773) from an upstream ACME CA decides when a managed
//! certificate renews, and the renewal order says which certificate it replaces.
//!
//! Debian's Pebble 2.4 offers no renewal information, so the upstream here is another
//! certkeeper (B, a real server process on SQLite or PostgreSQL) whose ACME server does,
//! and whose administrators can move a certificate's window. The certkeeper under test
//! (A) runs in this process on the same kind of database with a clock the test moves, so
//! that the upstream's `Retry-After` (six hours) passes without sleeping; its http-01
//! answers are served on a real listener that B validates against, resolving names
//! through `pebble-challtestsrv`. A's renewal work is run as its jobs runner runs it.

mod acme_support;
mod common;

use std::sync::Arc;

use acme_support::ChallSrv;
use axum::body::Body;
use axum::http::{Method, Request, header};
use certkeeper::bootstrap::boot;
use certkeeper::config::Settings;
use certkeeper::server::{AppState, http_app, https_app};
use certkeeper_ca::{Clock, ManualClock};
use common::{Db, TestServer, drop_database, new_pg_database};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

/// A REST call to A (in process).
async fn call(
    app: &axum::Router,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/api/v1{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap_or_else(|| panic!("a time: {v}")),
        &Rfc3339,
    )
    .unwrap()
}

/// The upstream B (a certkeeper process with `b_env`), the certkeeper under test A (in
/// process, its clock in hand) with B as its ACME issuer and a profile `upstream` naming
/// it, and what the test needs of both.
struct Pair {
    b: TestServer,
    app: axum::Router,
    token: String,
    clock: Arc<ManualClock>,
    state: AppState,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    pg: Option<(String, String)>,
    _chall: ChallSrv,
    _dir: tempfile::TempDir,
}

impl Pair {
    async fn start(db: Db, b_env: &[(&str, &str)]) -> Pair {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let chall = ChallSrv::start();

        // A's plain-HTTP listener, where B validates http-01.
        let a_http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a_http_port = a_http.local_addr().unwrap().port().to_string();
        let resolvers = format!("[\"127.0.0.1:{}\"]", chall.dns_port);
        let mut env = vec![
            ("CERTKEEPER_ACME__HTTP01_PORT", a_http_port.as_str()),
            ("CERTKEEPER_ACME__DNS_RESOLVERS", resolvers.as_str()),
        ];
        env.extend_from_slice(b_env);
        let b = TestServer::start_with(db, &env).await;

        // A, in process, on the same kind of database.
        let dir = tempfile::tempdir().unwrap();
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(new_pg_database()),
        };
        let config = dir.path().join("certkeeper.toml");
        match &pg {
            Some((url, _)) => {
                std::fs::write(&config, format!("[database]\nurl = \"{url}\"\n")).unwrap()
            }
            None => std::fs::write(&config, "").unwrap(),
        }
        let settings = Arc::new(Settings::load(&dir.path().join("data"), Some(&config)).unwrap());
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let booted = boot(settings, clock.clone()).await.unwrap();
        let token = booted.new_admin_token.clone().unwrap();
        let state = AppState::new(booted.pki, booted.metrics);
        state
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let app = https_app(&state);
        let plain = http_app(&state);
        let server = tokio::spawn(async move { axum::serve(a_http, plain).await });

        let (st, issuer) = call(
            &app,
            &token,
            Method::POST,
            "/issuers",
            Some(json!({
                "name": "upstream", "kind": "acme", "directory_url": b.url("/acme/directory"),
                "trust_bundle": b.server_ca_pem,
            })),
        )
        .await;
        assert_eq!(st, 201, "{issuer}");
        let (st, prof) = call(
            &app,
            &token,
            Method::POST,
            "/profiles",
            Some(json!({"name": "upstream", "ca": "upstream", "allowed_dns_names": [".ari.test"]})),
        )
        .await;
        assert_eq!(st, 201, "{prof}");
        Pair {
            b,
            app,
            token,
            clock,
            state,
            server,
            pg,
            _chall: chall,
            _dir: dir,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.app, &self.token, method, path, body).await
    }

    fn stop(self) {
        self.server.abort();
        drop(self.state);
        if let Some((_, name)) = self.pg {
            drop_database(&name);
        }
    }
}

async fn follows_upstream_renewal_information(db: Db) {
    let pair = Pair::start(db, &[]).await;
    let (b, app, token, clock) = (&pair.b, &pair.app, pair.token.as_str(), &pair.clock);
    // A managed certificate from B.
    let (st, m) = call(
        app,
        token,
        Method::POST,
        "/managed",
        Some(json!({"name": "web", "profile": "upstream", "dns_names": ["www.ari.test"]})),
    )
    .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 1, "{m}");
    assert!(m["upstream_renewal_window"].is_null(), "not asked yet: {m}");

    // The first run asks B: its window is recorded and the renewal lies inside it.
    let managed = pair.state.services.managed.clone();
    managed.run_due().await.unwrap();
    let (_, m) = call(app, token, Method::GET, "/managed/web", None).await;
    let w = &m["upstream_renewal_window"];
    assert!(w.is_object(), "B's window: {m}");
    let (start, end) = (at(&w["start"]), at(&w["end"]));
    let next = at(&m["next_renewal_at"]);
    assert!(
        start <= next && next <= end,
        "{next} in {start}..{end}: {m}"
    );
    assert_eq!(m["current_version"], 1, "not due yet: {m}");
    // B said when to ask again (its Retry-After, six hours).
    let asked_again = at(&w["next_check"]) - clock.now();
    assert!(
        asked_again > Duration::minutes(359) && asked_again <= Duration::hours(6),
        "{asked_again}: {m}"
    );

    // B's administrator moves the certificate's window to now.
    let serial = m["versions"][0]["serial"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    let (_, found) = b
        .api(reqwest::Method::GET, "/certificates?san=www.ari.test", None)
        .await;
    let b_cert = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["serial"]
                .as_str()
                .unwrap()
                .replace(':', "")
                .to_lowercase()
                == serial
        })
        .unwrap_or_else(|| panic!("B issued {serial}: {found}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = OffsetDateTime::now_utc();
    let (st, moved) = b
        .api(
            reqwest::Method::POST,
            "/acme/renewal-windows",
            Some(json!({
                "certificate": b_cert,
                "start": (now - Duration::hours(1)).format(&Rfc3339).unwrap(),
                "end": (now + Duration::hours(1)).format(&Rfc3339).unwrap(),
            })),
        )
        .await;
    assert_eq!(st, 201, "{moved}");

    // Before B's Retry-After has passed, A does not ask again: nothing moves.
    clock.advance(Duration::hours(5));
    managed.run_due().await.unwrap();
    let (_, m) = call(app, token, Method::GET, "/managed/web", None).await;
    assert_eq!(m["current_version"], 1, "{m}");
    assert_eq!(at(&m["upstream_renewal_window"]["start"]), start, "{m}");

    // Once it has, A asks, finds the window open, and renews at once.
    clock.advance(Duration::hours(1) + Duration::minutes(1));
    managed.run_due().await.unwrap();
    let (_, m) = call(app, token, Method::GET, "/managed/web", None).await;
    assert_eq!(m["current_version"], 2, "renewed on B's word: {m}");
    assert!(
        m["upstream_renewal_window"].is_null(),
        "the new version has not been asked about yet: {m}"
    );

    // The renewal order told B which certificate it replaces.
    let (_, audit) = b
        .api(
            reqwest::Method::GET,
            "/audit?action=acme.order.create",
            None,
        )
        .await;
    let replaces: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["detail"]["replaces"])
        .collect();
    assert_eq!(replaces.len(), 2, "{audit}");
    assert!(
        replaces.iter().any(|r| r.as_str() == Some(b_cert.as_str())),
        "the renewal names {b_cert}: {audit}"
    );
    assert!(
        replaces.iter().any(|r| r.is_null()),
        "the first order replaced nothing: {audit}"
    );

    pair.stop();
}

/// An upstream that rate-limits (B allows one new order per account per hour) answers a
/// renewal with `rateLimited` and a `Retry-After`: the failure is recorded with B's
/// problem document, and the retry waits until B said (the end of its hourly window), not
/// the first minute of backoff.
#[tokio::test]
async fn a_rate_limit_is_waited_out() {
    let pair = Pair::start(
        Db::Sqlite,
        &[("CERTKEEPER_ACME__NEW_ORDERS_PER_ACCOUNT_PER_HOUR", "1")],
    )
    .await;
    let (st, m) = pair
        .call(
            Method::POST,
            "/managed",
            Some(json!({"name": "web", "profile": "upstream", "dns_names": ["rl.ari.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let (st, refused) = pair.call(Method::POST, "/managed/web/renew", None).await;
    assert_eq!(st, 502, "{refused}");
    let (_, m) = pair.call(Method::GET, "/managed/web", None).await;
    assert_eq!(m["current_version"], 1, "{m}");
    assert_eq!(
        m["last_problem"]["type"], "urn:ietf:params:acme:error:rateLimited",
        "{m}"
    );
    // B's hourly window ends in `asked` seconds (its Retry-After, also in its detail).
    let asked: i64 = m["last_problem"]["detail"]
        .as_str()
        .unwrap()
        .rsplit_once("retry in ")
        .and_then(|(_, t)| t.trim_end_matches(" s").parse().ok())
        .unwrap_or_else(|| panic!("B's wait in {m}"));
    let wait = (at(&m["next_renewal_at"]) - pair.clock.now()).whole_seconds();
    let expected = asked.max(60);
    assert!(
        (expected - 5..=expected + 1).contains(&wait),
        "the retry waits for B's Retry-After ({asked} s), not the first minute of backoff: {wait} s: {m}"
    );
    pair.stop();
}

#[tokio::test]
async fn follows_upstream_renewal_information_sqlite() {
    follows_upstream_renewal_information(Db::Sqlite).await;
}

#[tokio::test]
async fn follows_upstream_renewal_information_postgres() {
    follows_upstream_renewal_information(Db::Postgres).await;
}
