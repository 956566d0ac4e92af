//! Dashboard sessions end when they expire: in process with an injected clock (no
//! sleeping), a session works until the end of its lifetime and sends the browser back to
//! the sign-in form after it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use certkeeper::bootstrap::boot;
use certkeeper::config::Settings;
use certkeeper::server::{AppState, https_app};
use certkeeper::services::sessions::SESSION_LIFETIME;
use certkeeper::web::SESSION_COOKIE;
use certkeeper_ca::ManualClock;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

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

/// The `name=value` of cookie `name` among a response's `Set-Cookie` headers.
fn set_cookie(headers: &axum::http::HeaderMap, name: &str) -> String {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("a {name} cookie in {headers:?}"))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_session_ends_when_it_expires() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let settings = Arc::new(Settings::load(dir.path(), None).unwrap());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let booted = boot(settings, clock.clone()).await.unwrap();
    let token = booted.new_admin_token.clone().unwrap();
    let state = AppState::new(booted.pki, booted.metrics);
    state
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let app = https_app(&state);

    // Sign in through the form.
    let (status, headers, body) =
        call(&app, Request::get("/sign-in").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let pre = set_cookie(&headers, "__Host-certkeeper_signin");
    let csrf = pre.split_once('=').unwrap().1.to_string();
    assert!(body.contains(&csrf));
    let form = format!("csrf={csrf}&token={token}");
    let (status, headers, _) = call(
        &app,
        Request::post("/sign-in")
            .header(header::COOKIE, &pre)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = set_cookie(&headers, SESSION_COOKIE);

    let overview = |cookie: String| {
        let app = app.clone();
        async move {
            call(
                &app,
                Request::get("/")
                    .header(header::COOKIE, cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(overview(session.clone()).await.0, StatusCode::OK);
    // A second before the end it still works; at the end it does not.
    clock.advance(SESSION_LIFETIME - Duration::seconds(1));
    assert_eq!(overview(session.clone()).await.0, StatusCode::OK);
    clock.advance(Duration::seconds(1));
    let (status, headers, _) = overview(session).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/sign-in");
}
