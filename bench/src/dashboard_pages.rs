//! How long each dashboard page takes to render over a large store.
//!
//! Boots certkeeper in process (fresh SQLite data directory, or a PostgreSQL database
//! given with `--database-url`), fills `certificates` with `--certificates` rows (one
//! set-based INSERT, expiry spread over the next 400 days) and the discovery inventory with
//! `--endpoints` endpoints, each serving its own certificate, signs in with the admin
//! token, then requests each page `--runs` times through the HTTPS application (routing,
//! session, services, store, rendering; no TLS or network) and prints the median and the
//! slowest time per page.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{Request, header};
use certkeeper::server::{AppState, https_app};
use certkeeper::store::Engine;
use certkeeper::web::SESSION_COOKIE;
use clap::Parser;
use tower::ServiceExt;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "dashboard-pages",
    about = "Time each dashboard page over a large store"
)]
struct Args {
    /// Certificates in the store.
    #[arg(long, default_value_t = 100_000)]
    certificates: i64,
    /// Discovered endpoints (each with its own certificate).
    #[arg(long, default_value_t = 10_000)]
    endpoints: i64,
    /// Requests per page.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// An empty PostgreSQL database to use instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (_dir, _clock, booted) =
        certkeeper_bench::boot_in_process(args.database_url.as_deref()).await?;
    let token = booted.new_admin_token.clone().context("admin token")?;
    let pki = booted.pki.clone();
    let store = pki.store_for_tests();
    let now = pki.now().unix_timestamp();
    let ca = store.get_ca("intermediate").await?;

    let series = |what: &str, n: &str| match store.engine() {
        Engine::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n}) {what} FROM s"
        ),
        Engine::Postgres => format!("{what} FROM generate_series(1, {n}) AS s(n)"),
    };
    // Fingerprints are 64 hex digits, as the services expect.
    let hex64 = match store.engine() {
        Engine::Sqlite => "printf('%064x', n)",
        Engine::Postgres => "lpad(to_hex(n), 64, '0')",
    };
    let t = Instant::now();
    let cols = "id, ca_id, profile_name, serial, subject, common_name, sans, issuer, not_before, not_after, fingerprint, status, der, created_at, created_by";
    let vals = format!(
        "'b' || n, $1, 'default', 's' || n, 'CN=h' || n || '.example', 'h' || n || '.example', '[\"h' || n || '.example\"]', 'CN=bench', $2, $2 + ((n * 7919) % $3) * (400 * 86400 / $3), {hex64}, CASE WHEN n % 50 = 0 THEN 'revoked' ELSE 'valid' END, $4, $2 - $3 + n, 'bench'"
    );
    sqlx::query(&series(
        &format!("INSERT INTO certificates ({cols}) SELECT {vals}"),
        "$3",
    ))
    .bind(&ca.id)
    .bind(now)
    .bind(args.certificates)
    .bind(vec![0u8])
    .execute(store.pool())
    .await
    .context("filling certificates")?;
    sqlx::query(&series(
        "INSERT INTO certificate_names (certificate_id, name) SELECT 'b' || n, 'h' || n || '.example'",
        "$1",
    ))
    .bind(args.certificates)
    .execute(store.pool())
    .await
    .context("filling certificate names")?;
    let dcols = "fingerprint, subject, issuer, serial, not_before, not_after, dns_names, key_type, key_bits, signature_algorithm, issued_by_certkeeper, der, first_seen, last_seen";
    let dvals = "'dfp' || n, 'CN=e' || n || '.example', 'CN=Other CA', 'ds' || n, $1, $1 + (n % 400) * 86400, '[\"e' || n || '.example\"]', 'EC', 256, 'ecdsa-with-SHA256', 0, $2, $1, $1";
    sqlx::query(&series(
        &format!("INSERT INTO discovery_certificates ({dcols}) SELECT {dvals}"),
        "$3",
    ))
    .bind(now)
    .bind(vec![0u8])
    .bind(args.endpoints)
    .execute(store.pool())
    .await
    .context("filling discovered certificates")?;
    let ecols = "id, address, port, sni, fingerprint, findings, tls_version, cipher_suite, first_seen, last_seen, last_scan_id";
    let evals = "'e' || n, '10.0.' || (n / 250) || '.' || (n % 250), 443, '', 'dfp' || n, CASE WHEN n % 3 = 0 THEN '[\"self_signed\"]' ELSE '[]' END, 'TLSv1.3', 'TLS13_AES_128_GCM_SHA256', $1, $1, 'bench'";
    sqlx::query(&series(
        &format!("INSERT INTO discovery_endpoints ({ecols}) SELECT {evals}"),
        "$2",
    ))
    .bind(now)
    .bind(args.endpoints)
    .execute(store.pool())
    .await
    .context("filling endpoints")?;
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    println!(
        "engine {:?}: {} certificates, {} endpoints inserted in {:.1} s",
        store.engine(),
        args.certificates,
        args.endpoints,
        t.elapsed().as_secs_f64()
    );

    let state = AppState::new(booted.pki, booted.metrics);
    state
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (_, cookie) = state
        .services
        .sessions
        .sign_in(&token, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = https_app(&state);
    let mid = args.certificates / 2;
    let pages = [
        "/".to_string(),
        "/hierarchy".into(),
        "/certificates".into(),
        "/certificates?sort=expiry".into(),
        "/certificates?status=expiring".into(),
        format!("/certificates?by=name&q=h{mid}.example"),
        format!("/certificates?by=serial&q=s{mid}"),
        format!("/certificates/b{mid}"),
        "/profiles".into(),
        "/discovery".into(),
        "/discovery/endpoints".into(),
        "/discovery/endpoints?finding=self_signed&page=20".into(),
        "/managed".into(),
        "/alerts".into(),
        "/enrollment/acme".into(),
        "/enrollment/est".into(),
        "/tokens".into(),
        "/audit".into(),
    ];
    println!("| page | median ms | slowest ms |");
    println!("|---|---|---|");
    for path in &pages {
        let mut times: Vec<Duration> = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let req = Request::get(path.as_str())
                .header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"))
                .body(Body::empty())?;
            let t = Instant::now();
            let resp = app.clone().oneshot(req).await?;
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await?;
            times.push(t.elapsed());
            anyhow::ensure!(
                status.is_success(),
                "{path}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        times.sort();
        println!(
            "| `{path}` | {:.1} | {:.1} |",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
