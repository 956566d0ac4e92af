//! REST issuance benchmark.
//!
//! Drives certkeeper's CSR-signing endpoint (`POST /api/v1/certificates`) and
//! `cfssl serve` (`POST /api/v1/cfssl/sign`) with the same ECDSA P-256 CSR at
//! the same concurrency, one target after the other, and reports certificates
//! issued per second for each target, latency percentiles, and the ratio
//! certkeeper / cfssl.
//!
//! An issuance only counts as a success when the HTTP status is the expected
//! success status *and* the response body really carries a PEM certificate.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;

use certkeeper_bench::{
    ServerCpu, WorkerStats, cpu_per_op_us, error_chain, fmt_ms, percentile_ms, publish, ratio,
};

/// DNS name requested in the benchmark CSR.
const CSR_DNS_NAME: &str = "bench.example.com";

/// Marker that must appear in a returned certificate for it to count.
const PEM_CERT_MARKER: &str = "-----BEGIN CERTIFICATE-----";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "certkeeper-bench",
    about = "REST issuance benchmark: certkeeper vs cfssl, same CSR, same concurrency"
)]
struct Args {
    /// Base URL of certkeeper's HTTPS API, e.g. `https://127.0.0.1:8443`.
    /// Omit to benchmark cfssl alone.
    #[arg(long, requires = "certkeeper_token_file")]
    certkeeper_url: Option<String>,

    /// File holding the bearer token sent to certkeeper (surrounding
    /// whitespace is trimmed).
    #[arg(long)]
    certkeeper_token_file: Option<PathBuf>,

    /// PEM file with the certificate(s) to trust for certkeeper's HTTPS: its
    /// `server-ca.pem`. When given, only these are trusted. (The server's `default` profile
    /// must allow the benchmark's DNS name: see `ca.default_profile_names`.)
    #[arg(long)]
    certkeeper_ca_file: Option<PathBuf>,

    /// Base URL of `cfssl serve`, e.g. `http://127.0.0.1:8888`.
    /// Omit to benchmark certkeeper alone.
    #[arg(long)]
    cfssl_url: Option<String>,

    /// Number of concurrent workers (in-flight requests) per target.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,

    /// Length of the measured window per target, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration_secs: u64,

    /// Warm-up time per target before measuring starts, in seconds
    /// (requests completed during warm-up are not counted).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    warmup_secs: u64,

    /// Per-request timeout, in seconds (a timed-out request is an error).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    request_timeout_secs: u64,

    /// Write the results as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,

    /// Process id of the certkeeper server: its CPU time over the measured window is
    /// reported per certificate.
    #[arg(long)]
    certkeeper_pid: Option<u32>,

    /// Process id of `cfssl serve`, for the same report.
    #[arg(long)]
    cfssl_pid: Option<u32>,
}

/// Which API dialect a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// certkeeper: `POST /api/v1/certificates`, 201 + `{"certificate": "<PEM>"}`.
    Certkeeper,
    /// cfssl: `POST /api/v1/cfssl/sign`, `{"success": true, "result": {"certificate": "<PEM>"}}`.
    Cfssl,
}

impl Kind {
    /// Short name used in reports.
    fn name(self) -> &'static str {
        match self {
            Kind::Certkeeper => "certkeeper",
            Kind::Cfssl => "cfssl",
        }
    }
}

/// One benchmark target with its pre-built request.
#[derive(Debug)]
struct Target {
    /// API dialect.
    kind: Kind,
    /// Full URL of the signing endpoint.
    endpoint: String,
    /// `Authorization` header value, if any.
    auth: Option<HeaderValue>,
    /// Serialized JSON request body (identical for every request).
    body: Vec<u8>,
    /// The server's process, to sample its CPU time, if known.
    pid: Option<u32>,
}

impl Target {
    /// Builds the certkeeper target.
    fn certkeeper(base_url: &str, token: &str, csr_pem: &str) -> Result<Self> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("certkeeper token is not a valid HTTP header value")?;
        auth.set_sensitive(true);
        let body = serde_json::to_vec(&serde_json::json!({
            "profile": "default",
            "csr": csr_pem,
        }))?;
        Ok(Self {
            kind: Kind::Certkeeper,
            endpoint: join_url(base_url, "/api/v1/certificates"),
            auth: Some(auth),
            body,
            pid: None,
        })
    }

    /// Builds the cfssl target.
    fn cfssl(base_url: &str, csr_pem: &str) -> Result<Self> {
        let body = serde_json::to_vec(&serde_json::json!({
            "certificate_request": csr_pem,
        }))?;
        Ok(Self {
            kind: Kind::Cfssl,
            endpoint: join_url(base_url, "/api/v1/cfssl/sign"),
            auth: None,
            body,
            pid: None,
        })
    }
}

/// Joins a base URL and an absolute path without doubling the slash.
fn join_url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// First part of a response body, for error messages.
fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Sends one issuance request and checks that a PEM certificate came back.
async fn issue_once(client: &Client, target: &Target) -> Result<(), String> {
    let mut request = client
        .post(&target.endpoint)
        .header(CONTENT_TYPE, "application/json")
        .body(target.body.clone());
    if let Some(auth) = &target.auth {
        request = request.header(AUTHORIZATION, auth.clone());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading response body failed: {}", error_chain(&e)))?;
    check_response(target.kind, status, &body)
}

/// Decides whether a response is a successful issuance for the given dialect.
fn check_response(kind: Kind, status: StatusCode, body: &[u8]) -> Result<(), String> {
    let status_ok = match kind {
        Kind::Certkeeper => status == StatusCode::CREATED,
        Kind::Cfssl => status.is_success(),
    };
    if !status_ok {
        return Err(format!("HTTP {status}: {}", snippet(body)));
    }
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "HTTP {status} but body is not JSON ({e}): {}",
            snippet(body)
        )
    })?;
    let certificate = match kind {
        Kind::Certkeeper => json.get("certificate").and_then(Value::as_str),
        Kind::Cfssl => {
            if json.get("success").and_then(Value::as_bool) != Some(true) {
                return Err(format!("cfssl reported failure: {}", snippet(body)));
            }
            json.pointer("/result/certificate").and_then(Value::as_str)
        }
    };
    match certificate {
        Some(pem) if pem.contains(PEM_CERT_MARKER) => Ok(()),
        Some(_) => Err(format!(
            "HTTP {status}: certificate field is not PEM: {}",
            snippet(body)
        )),
        None => Err(format!(
            "HTTP {status}: no certificate in response: {}",
            snippet(body)
        )),
    }
}

/// One worker: issues requests back to back until `end`, recording only the
/// requests that complete inside `[measure_start, end]`.
async fn worker(
    client: Client,
    target: Arc<Target>,
    measure_start: Instant,
    end: Instant,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let outcome = issue_once(&client, &target).await;
        let finished = Instant::now();
        if finished < measure_start || finished > end {
            continue;
        }
        stats.record(outcome, finished - started);
    }
    stats
}

/// Results for one target.
#[derive(Debug, Serialize)]
struct TargetReport {
    /// Target name (`certkeeper` or `cfssl`).
    name: &'static str,
    /// Signing endpoint URL.
    endpoint: String,
    /// Concurrent workers used.
    concurrency: u32,
    /// Length of the measured window in seconds.
    measured_secs: f64,
    /// Successful issuances in the window.
    successes: u64,
    /// Failed requests in the window.
    errors: u64,
    /// Successful issuances per second.
    certs_per_sec: f64,
    /// The server's CPU time (user + system, every thread) per successful issuance over
    /// the measured window, in microseconds, when its process id was given.
    server_cpu_us_per_cert: Option<f64>,
    /// Median latency of successful issuances, in milliseconds.
    p50_ms: Option<f64>,
    /// 99th percentile latency of successful issuances, in milliseconds.
    p99_ms: Option<f64>,
    /// Maximum latency of successful issuances, in milliseconds.
    max_ms: Option<f64>,
    /// A few distinct error messages seen in the window.
    error_samples: Vec<String>,
}

/// Runs one target: a preflight request, then `concurrency` workers for the
/// warm-up plus the measured window.
async fn run_target(
    client: &Client,
    target: Target,
    concurrency: u32,
    warmup: Duration,
    duration: Duration,
) -> Result<TargetReport> {
    let name = target.kind.name();
    issue_once(client, &target).await.map_err(|e| {
        anyhow!(
            "{name} preflight request to {} failed: {e}",
            target.endpoint
        )
    })?;
    eprintln!(
        "{name}: preflight ok; {concurrency} workers, {}s warm-up + {}s measured",
        warmup.as_secs(),
        duration.as_secs()
    );

    let target = Arc::new(target);
    let measure_start = Instant::now() + warmup;
    let end = measure_start + duration;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        workers.spawn(worker(
            client.clone(),
            Arc::clone(&target),
            measure_start,
            end,
        ));
    }
    // The server's CPU time is sampled at the window's start and end.
    let mut cpu = ServerCpu::new(target.pid);
    tokio::time::sleep_until(measure_start.into()).await;
    cpu.start()?;
    tokio::time::sleep_until(end.into()).await;
    let server_cpu = cpu.finish()?;
    let mut total = WorkerStats::default();
    while let Some(joined) = workers.join_next().await {
        total.merge(joined.context("benchmark worker panicked")?);
    }

    total.latencies.sort_unstable();
    let measured_secs = duration.as_secs_f64();
    Ok(TargetReport {
        name,
        endpoint: target.endpoint.clone(),
        concurrency,
        measured_secs,
        successes: total.successes,
        errors: total.errors,
        certs_per_sec: total.successes as f64 / measured_secs,
        server_cpu_us_per_cert: cpu_per_op_us(server_cpu, total.successes),
        p50_ms: percentile_ms(&total.latencies, 50.0),
        p99_ms: percentile_ms(&total.latencies, 99.0),
        max_ms: total.latencies.last().map(|d| d.as_secs_f64() * 1000.0),
        error_samples: total.error_samples,
    })
}

/// Whole-run results, as written by `--json-out`.
#[derive(Debug, Serialize)]
struct Report {
    /// DNS name requested in the CSR.
    csr_dns_name: &'static str,
    /// CSR key algorithm.
    csr_key: &'static str,
    /// Concurrent workers per target.
    concurrency: u32,
    /// Warm-up per target, in seconds.
    warmup_secs: u64,
    /// Measured window per target, in seconds.
    duration_secs: u64,
    /// Per-target results, in the order they were run.
    results: Vec<TargetReport>,
    /// certkeeper certificates/s divided by cfssl certificates/s, when both ran
    /// and cfssl issued at least one certificate.
    ratio_certkeeper_over_cfssl: Option<f64>,
}

/// Renders the result table.
fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "REST issuance: ECDSA P-256 CSR for {}, concurrency {}, {}s measured after {}s warm-up",
        report.csr_dns_name, report.concurrency, report.duration_secs, report.warmup_secs
    );
    let _ = writeln!(
        out,
        "{:<12} {:>10} {:>8} {:>10} {:>9} {:>9} {:>9} {:>16}",
        "target", "issued", "errors", "certs/s", "p50 ms", "p99 ms", "max ms", "server µs/cert"
    );
    for r in &report.results {
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>8} {:>10.1} {:>9} {:>9} {:>9} {:>16}",
            r.name,
            r.successes,
            r.errors,
            r.certs_per_sec,
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            fmt_ms(r.max_ms),
            r.server_cpu_us_per_cert
                .map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"))
        );
    }
    match report.ratio_certkeeper_over_cfssl {
        Some(ratio) => {
            let _ = writeln!(out, "ratio certkeeper/cfssl: {ratio:.2}x");
        }
        None if report.results.len() > 1 => {
            let _ = writeln!(out, "ratio certkeeper/cfssl: n/a (cfssl issued nothing)");
        }
        None => {}
    }
    for r in &report.results {
        for sample in &r.error_samples {
            let _ = writeln!(out, "{} error sample: {sample}", r.name);
        }
    }
    out
}

/// Generates the benchmark CSR (fresh ECDSA P-256 key) as PEM.
fn generate_csr() -> Result<String> {
    let key = rcgen::KeyPair::generate().context("generating the CSR key")?;
    let csr = rcgen::CertificateParams::new(vec![CSR_DNS_NAME.into()])
        .context("building CSR parameters")?
        .serialize_request(&key)
        .context("signing the CSR")?
        .pem()
        .context("encoding the CSR as PEM")?;
    Ok(csr)
}

/// Builds the shared HTTP client: HTTP/1.1 keep-alive with enough idle
/// connections per host for every worker.
fn build_client(args: &Args) -> Result<Client> {
    let mut builder = Client::builder()
        .http1_only()
        .pool_max_idle_per_host(args.concurrency as usize)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(args.request_timeout_secs));
    if let Some(ca_file) = &args.certkeeper_ca_file {
        let pem = std::fs::read(ca_file)
            .with_context(|| format!("reading CA file {}", ca_file.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing CA file {}", ca_file.display()))?;
        if roots.is_empty() {
            bail!("CA file {} holds no certificate", ca_file.display());
        }
        builder = builder.tls_certs_only(roots);
    }
    builder.build().context("building the HTTP client")
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("certkeeper-bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the whole benchmark as configured by `args`.
async fn run(args: Args) -> Result<()> {
    if args.certkeeper_url.is_none() && args.cfssl_url.is_none() {
        bail!("nothing to benchmark: give --certkeeper-url and/or --cfssl-url");
    }

    let csr_pem = generate_csr()?;
    let client = build_client(&args)?;

    let mut targets = Vec::new();
    if let Some(url) = &args.certkeeper_url {
        let token_file = args
            .certkeeper_token_file
            .as_ref()
            .context("--certkeeper-url needs --certkeeper-token-file")?;
        let token = std::fs::read_to_string(token_file)
            .with_context(|| format!("reading token file {}", token_file.display()))?;
        let token = token.trim();
        if token.is_empty() {
            bail!("token file {} is empty", token_file.display());
        }
        let mut target = Target::certkeeper(url, token, &csr_pem)?;
        target.pid = args.certkeeper_pid;
        targets.push(target);
    }
    if let Some(url) = &args.cfssl_url {
        let mut target = Target::cfssl(url, &csr_pem)?;
        target.pid = args.cfssl_pid;
        targets.push(target);
    }

    let warmup = Duration::from_secs(args.warmup_secs);
    let duration = Duration::from_secs(args.duration_secs);
    let mut results = Vec::new();
    // Targets run strictly one after the other, never concurrently.
    for target in targets {
        results.push(run_target(&client, target, args.concurrency, warmup, duration).await?);
    }

    let rates: Vec<(&str, f64)> = results.iter().map(|r| (r.name, r.certs_per_sec)).collect();
    let ratio = ratio(&rates, Kind::Certkeeper.name(), Kind::Cfssl.name());
    let report = Report {
        csr_dns_name: CSR_DNS_NAME,
        csr_key: "ECDSA P-256",
        concurrency: args.concurrency,
        warmup_secs: args.warmup_secs,
        duration_secs: args.duration_secs,
        results,
        ratio_certkeeper_over_cfssl: ratio,
    };

    let completed: Vec<(&str, u64)> = report
        .results
        .iter()
        .map(|r| (r.name, r.successes))
        .collect();
    publish(
        &render_table(&report),
        &report,
        args.json_out.as_deref(),
        &completed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certkeeper_success_needs_201_and_pem() {
        let ok =
            br#"{"certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}"#;
        assert!(check_response(Kind::Certkeeper, StatusCode::CREATED, ok).is_ok());
        assert!(check_response(Kind::Certkeeper, StatusCode::OK, ok).is_err());
        let no_pem = br#"{"certificate":"nope"}"#;
        assert!(check_response(Kind::Certkeeper, StatusCode::CREATED, no_pem).is_err());
        assert!(check_response(Kind::Certkeeper, StatusCode::CREATED, b"{}").is_err());
        assert!(check_response(Kind::Certkeeper, StatusCode::CREATED, b"oops").is_err());
    }

    #[test]
    fn cfssl_success_needs_flag_and_pem() {
        let ok =
            br#"{"success":true,"result":{"certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n"}}"#;
        assert!(check_response(Kind::Cfssl, StatusCode::OK, ok).is_ok());
        let failed = br#"{"success":false,"result":{"certificate":"-----BEGIN CERTIFICATE-----"}}"#;
        assert!(check_response(Kind::Cfssl, StatusCode::OK, failed).is_err());
        assert!(check_response(Kind::Cfssl, StatusCode::BAD_REQUEST, ok).is_err());
        let empty = br#"{"success":true,"result":{}}"#;
        assert!(check_response(Kind::Cfssl, StatusCode::OK, empty).is_err());
    }

    #[test]
    fn csr_is_pem() -> Result<()> {
        let csr = generate_csr()?;
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        Ok(())
    }

    #[test]
    fn urls_join_without_double_slash() {
        assert_eq!(
            join_url("http://h:1/", "/api/v1/cfssl/sign"),
            "http://h:1/api/v1/cfssl/sign"
        );
        assert_eq!(
            join_url("http://h:1", "/api/v1/certificates"),
            "http://h:1/api/v1/certificates"
        );
    }

    #[test]
    fn snippet_truncates_on_char_boundary() {
        let long = "é".repeat(300);
        let s = snippet(long.as_bytes());
        assert!(s.ends_with("..."));
        assert_eq!(s.chars().count(), 203);
    }
}
