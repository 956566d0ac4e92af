//! How long each dashboard page takes to render over a large store, and how fast the
//! REST API issues certificates there.
//!
//! Boots certkeeper in process (fresh SQLite data directory, or a PostgreSQL database
//! given with `--database-url`), fills `certificates` with `--certificates` rows and their
//! names (set-based INSERTs of `--chunk` rows each, so a 10,000,000-row fill is streamed
//! in bounded transactions; serials and fingerprints in random order as real ones are,
//! expiry spread over the next 400 days, names under domains of 100 each, so a domain
//! search finds as many at any size; up to 99,999,999 rows) and the discovery
//! inventory with `--endpoints` endpoints, each serving its own certificate, signs in with
//! the admin token, then requests each page `--runs` times through the HTTPS application
//! (routing, session, services, store, rendering; no TLS or network) and prints the
//! median and the slowest time per page. Last, `--issue` certificates are issued through
//! `POST /api/v1/certificates` of the same application from `--concurrency` tasks (CSR
//! check, signing, the durable record; no TLS or network): the rate and the process CPU
//! time per certificate.
//!
//! Run it at 100,000 and at 10,000,000 certificates to compare the two.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{Request, header};
use certkeeper::server::{AppState, https_app};
use certkeeper::store::Engine;
use certkeeper::web::SESSION_COOKIE;
use certkeeper_bench::{fmt_ms, percentile_ms, process_cpu};
use clap::Parser;
use tower::ServiceExt;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "dashboard-pages",
    about = "Time each dashboard page and REST issuance over a large store"
)]
struct Args {
    /// Certificates in the store.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(i64).range(1..=99_999_999))]
    certificates: i64,
    /// Certificates (and their names) inserted per statement while filling.
    #[arg(long, default_value_t = 250_000, value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
    chunk: i64,
    /// Discovered endpoints (each with its own certificate).
    #[arg(long, default_value_t = 10_000)]
    endpoints: i64,
    /// Requests per page.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Certificates issued through the API after the pages (0: none).
    #[arg(long, default_value_t = 2_000)]
    issue: usize,
    /// Tasks issuing at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// An empty PostgreSQL database to use instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
}

/// The names the default profile may issue for in the issuance part.
const CONFIG: &str = "[ca]\ndefault_profile_names = [\".bench.example\"]\n";

/// Row `n`'s serial: 32 hex digits whose order is unrelated to `n` (as random serials
/// are), the same as the fill's SQL.
fn serial_of(n: i64) -> String {
    format!("{:08x}{n:024x}", (n * 1_000_003) % 2_147_483_647)
}

/// Row `n`'s fingerprint: 64 hex digits in an order unrelated to `n`.
fn fingerprint_of(n: i64) -> String {
    format!("{:08x}{n:056x}", (n * 48_271) % 2_147_483_647)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (_dir, _clock, booted) =
        certkeeper_bench::boot_in_process(args.database_url.as_deref(), CONFIG).await?;
    let token = booted.new_admin_token.clone().context("admin token")?;
    let pki = booted.pki.clone();
    let store = pki.store_for_tests();
    let now = pki.now().unix_timestamp();
    let ca = store.get_ca("intermediate").await?;
    let der = ca
        .cert_der
        .clone()
        .context("the intermediate's certificate")?;

    let series = |what: &str, n: &str| match store.engine() {
        Engine::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n}) {what} FROM s"
        ),
        Engine::Postgres => format!("{what} FROM generate_series(1, {n}) AS s(n)"),
    };
    // Rows `$1` to `$2`.
    let range = |what: &str| match store.engine() {
        Engine::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM s WHERE n < $2) {what} FROM s"
        ),
        Engine::Postgres => {
            format!("{what} FROM generate_series($1::bigint, $2::bigint) AS s(n)")
        }
    };
    // The same as `serial_of` and `fingerprint_of`.
    let (serial, fingerprint) = match store.engine() {
        Engine::Sqlite => (
            "printf('%08x%024x', (n * 1000003) % 2147483647, n)",
            "printf('%08x%056x', (n * 48271) % 2147483647, n)",
        ),
        Engine::Postgres => (
            "lpad(to_hex((n * 1000003) % 2147483647), 8, '0') || lpad(to_hex(n), 24, '0')",
            "lpad(to_hex((n * 48271) % 2147483647), 8, '0') || lpad(to_hex(n), 56, '0')",
        ),
    };
    // Names `h<8 digits>.d<6 digits>.example` (100 a domain) and the same reversed, as the store keeps them
    // for domain searches (digits reversed by arithmetic: neither engine's SQL needs a
    // string function for it).
    let padded = |expr: &str, digits: usize| match store.engine() {
        Engine::Sqlite => format!("printf('%0{digits}d', {expr})"),
        Engine::Postgres => format!("lpad(({expr})::text, {digits}, '0')"),
    };
    let reversed_digits = |expr: &str, digits: u32| {
        let terms: Vec<String> = (0..digits)
            .map(|i| {
                format!(
                    "((({expr}) / {}) % 10) * {}",
                    10i64.pow(i),
                    10i64.pow(digits - 1 - i)
                )
            })
            .collect();
        padded(&terms.join(" + "), digits as usize)
    };
    let name = format!(
        "'h' || {} || '.d' || {} || '.example'",
        padded("n", 8),
        padded("n / 100", 6)
    );
    let name_reversed = format!(
        "'elpmaxe.' || {} || 'd.' || {} || 'h'",
        reversed_digits("n / 100", 6),
        reversed_digits("n", 8)
    );
    let cols = "id, ca_id, profile_name, serial, subject, common_name, sans, issuer, not_before, not_after, fingerprint, status, der, created_at, created_by";
    let vals = format!(
        "'b' || n, $3, 'default', {serial}, 'CN=' || {name}, {name}, '[\"' || {name} || '\"]', 'CN=bench', $4, $4 + ((n * 7919) % $5) * (400 * 86400 / $5), {fingerprint}, CASE WHEN n % 50 = 0 THEN 'revoked' ELSE 'valid' END, $6, $4 - $5 + n, 'bench'"
    );
    let insert_certs = range(&format!("INSERT INTO certificates ({cols}) SELECT {vals}"));
    let insert_names = range(&format!(
        "INSERT INTO certificate_names (certificate_id, name, name_reversed) SELECT 'b' || n, {name}, {name_reversed}"
    ));
    let t = Instant::now();
    let mut lo = 1;
    while lo <= args.certificates {
        let hi = (lo + args.chunk - 1).min(args.certificates);
        sqlx::query(&insert_certs)
            .bind(lo)
            .bind(hi)
            .bind(&ca.id)
            .bind(now)
            .bind(args.certificates)
            .bind(der.clone())
            .execute(store.pool())
            .await
            .context("filling certificates")?;
        sqlx::query(&insert_names)
            .bind(lo)
            .bind(hi)
            .execute(store.pool())
            .await
            .context("filling certificate names")?;
        eprintln!(
            "filled {hi} certificates in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        lo = hi + 1;
    }
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
    // The fill bypassed the store's writes: count it into the tallies the dashboard reads.
    store.recount_certificate_tallies().await?;
    // No ANALYZE: the server never runs it, so the planner works here without statistics
    // as it does there.
    // The fill's reversed names are what the store would write: a domain holds its 100.
    let k = (args.certificates / 2) / 100;
    let below: String = format!(".d{k:06}.example").chars().rev().collect();
    let (found,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM certificate_names WHERE name_reversed >= $1 AND name_reversed < $2",
    )
    .bind(&below)
    .bind(format!("{}/", below.trim_end_matches('.')))
    .fetch_one(store.pool())
    .await?;
    // n in 1..=N with n / 100 == k.
    let expected = args.certificates.min(k * 100 + 99) - (k * 100).max(1) + 1;
    anyhow::ensure!(
        found == expected,
        "{found} names under .d{k:06}.example, expected {expected}"
    );
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
    let row = format!("/certificates/b{mid}\"");
    let domain = format!(".d{:06}.example", mid / 100);
    // Each page, and what a search must find (the row it looked for).
    let pages: Vec<(String, Option<&str>)> = vec![
        ("/".into(), None),
        ("/hierarchy".into(), None),
        ("/certificates".into(), None),
        ("/certificates?sort=expiry".into(), None),
        ("/certificates?status=expiring".into(), None),
        (
            format!("/certificates?by=name&q=h{mid:08}{domain}"),
            Some(&row),
        ),
        (format!("/certificates?by=name&q=*{domain}"), Some(&domain)),
        (
            format!("/certificates?by=serial&q={}", serial_of(mid)),
            Some(&row),
        ),
        (
            format!("/certificates?by=fingerprint&q={}", fingerprint_of(mid)),
            Some(&row),
        ),
        (format!("/certificates/b{mid}"), None),
        ("/profiles".into(), None),
        ("/discovery".into(), None),
        ("/discovery/endpoints".into(), None),
        (
            "/discovery/endpoints?finding=self_signed&page=20".into(),
            None,
        ),
        ("/managed".into(), None),
        ("/alerts".into(), None),
        ("/enrollment/acme".into(), None),
        ("/enrollment/est".into(), None),
        ("/tokens".into(), None),
        ("/audit".into(), None),
    ];
    println!("| page | median ms | slowest ms |");
    println!("|---|---|---|");
    for (path, finds) in &pages {
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
            if let Some(finds) = finds {
                anyhow::ensure!(
                    String::from_utf8_lossy(&body).contains(finds),
                    "{path} did not find {finds}"
                );
            }
        }
        times.sort();
        println!(
            "| `{path}` | {:.2} | {:.2} |",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        );
    }
    if args.issue > 0 {
        issue(app, &token, args.issue, args.concurrency as usize).await?;
    }
    Ok(())
}

/// Issue `count` certificates through `POST /api/v1/certificates` from `tasks` tasks (after
/// a warm-up of one per task) and print the rate, the process CPU time per certificate
/// and the latencies.
async fn issue(app: axum::Router, token: &str, count: usize, tasks: usize) -> Result<()> {
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::new(vec!["issue.bench.example".into()])?
        .serialize_request(&key)?
        .pem()?;
    let body = Arc::new(serde_json::to_vec(
        &serde_json::json!({"profile": "default", "csr": csr}),
    )?);
    let auth = Arc::new(format!("Bearer {token}"));
    let one = {
        let (app, body, auth) = (app.clone(), body.clone(), auth.clone());
        move || {
            let req = Request::post("/api/v1/certificates")
                .header(header::AUTHORIZATION, auth.as_str())
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_vec()));
            let app = app.clone();
            async move {
                let resp = app.oneshot(req?).await?;
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await?;
                anyhow::ensure!(
                    status.as_u16() == 201,
                    "issuing: {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            }
        }
    };
    for _ in 0..tasks {
        one().await?;
    }
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(count));
    let cpu = process_cpu(std::process::id())?;
    let t = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (one, left) = (one.clone(), left.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while left
                .fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                let t = Instant::now();
                one().await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(count);
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    let wall = t.elapsed();
    let cpu = process_cpu(std::process::id())? - cpu;
    latencies.sort();
    println!(
        "issued {count} certificates through the API from {tasks} tasks in {:.2} s: {:.0} certificates/s, \
         {:.1} µs of process CPU per certificate, latency p50 {} ms, p99 {} ms",
        wall.as_secs_f64(),
        count as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / count as f64,
        fmt_ms(percentile_ms(&latencies, 50.0)),
        fmt_ms(percentile_ms(&latencies, 99.0)),
    );
    Ok(())
}
