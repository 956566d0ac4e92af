//! ACME issuance benchmark.
//!
//! Runs many ACME accounts concurrently through the whole RFC 8555 flow against certkeeper
//! and, in the same run, against Pebble, one target after the other:
//! new order for a fresh DNS name, http-01 validated for real by the server (it resolves
//! the name through the DNS server it was given and fetches the key authorization from this
//! program's responder), finalize with a new CSR, poll, download. The client is
//! `instant-acme`, with the same polling policy for every target.
//!
//! An issuance counts only when the downloaded chain's leaf names the ordered DNS name and
//! every certificate in the chain is signed by the next one.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use certkeeper_bench::{
    ServerCpu, WorkerStats, cpu_per_op_us, error_chain, fmt_ms, percentile_ms, publish, ratio,
};
use clap::Parser;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use serde::Serialize;
use tokio::task::JoinSet;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "acme-bench",
    about = "ACME issuance benchmark: certkeeper vs Pebble, same client, same concurrency"
)]
struct Args {
    /// certkeeper's ACME directory URL. Omit to benchmark Pebble alone.
    #[arg(long, requires = "certkeeper_root")]
    certkeeper_directory: Option<String>,

    /// PEM certificate to trust for certkeeper's HTTPS: its `server-ca.pem`.
    #[arg(long)]
    certkeeper_root: Option<PathBuf>,

    /// Pebble's ACME directory URL. Omit to benchmark certkeeper alone.
    #[arg(long, requires = "pebble_root")]
    pebble_directory: Option<String>,

    /// PEM root certificate to trust for Pebble's HTTPS.
    #[arg(long)]
    pebble_root: Option<PathBuf>,

    /// Where the http-01 responder listens; both servers validate against this port.
    #[arg(long)]
    http01_listen: SocketAddr,

    /// DNS suffix of the ordered names; the servers' DNS must answer every name under it
    /// with the responder's address.
    #[arg(long, default_value = "bench.test")]
    domain: String,

    /// Concurrent ACME accounts per target, each running orders back to back.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    accounts: u32,

    /// Length of the measured window per target, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration_secs: u64,

    /// Warm-up per target before measuring starts, in seconds (not counted).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    warmup_secs: u64,

    /// Limit for one whole issuance, in seconds (past it the issuance is an error).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    issuance_timeout_secs: u64,

    /// Write the results as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,

    /// Process id of the certkeeper server: its CPU time over the measured window is
    /// reported per issuance.
    #[arg(long)]
    certkeeper_pid: Option<u32>,

    /// Process id of Pebble, for the same report.
    #[arg(long)]
    pebble_pid: Option<u32>,
}

/// One server under test.
#[derive(Debug, Clone)]
struct Target {
    /// Short name for reports.
    name: &'static str,
    /// ACME directory URL.
    directory: String,
    /// Root certificate trusted for the server's HTTPS.
    root: PathBuf,
    /// The server's process, to sample its CPU time, if known.
    pid: Option<u32>,
}

/// Key authorizations the responder serves, by token.
type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// The polling policy used for orders on every target: a short first wait that grows, so a
/// fast server is not held back and a slow one is not hammered; `Retry-After` is honoured.
fn polling(timeout: Duration) -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(5))
        .backoff(1.5)
        .timeout(timeout)
}

/// Starts the http-01 responder (`/.well-known/acme-challenge/<token>`).
async fn start_responder(listen: SocketAddr, tokens: Tokens) -> Result<()> {
    async fn answer(
        State(tokens): State<Tokens>,
        Path(token): Path<String>,
    ) -> (StatusCode, String) {
        let found = tokens.lock().ok().and_then(|t| t.get(&token).cloned());
        match found {
            Some(key_authorization) => (StatusCode::OK, key_authorization),
            None => (StatusCode::NOT_FOUND, String::new()),
        }
    }
    let app = axum::Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
        .with_state(tokens);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the http-01 responder to {listen}"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("acme-bench: http-01 responder stopped: {e}");
        }
    });
    Ok(())
}

/// An HTTPS client for one account that trusts only `root`. Like instant-acme's own
/// client (HTTP/1.1 and HTTP/2, one connection pool per account), but with `TCP_NODELAY`:
/// without it a request written in more than one segment waits for the peer's delayed
/// ACK (40 ms on Linux), and every server would be measured at the pace of that timer.
fn http_client(root: &std::path::Path) -> Result<Box<dyn instant_acme::HttpClient>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root)
        .with_context(|| format!("reading {}", root.display()))?
    {
        roots.add(cert.with_context(|| format!("parsing {}", root.display()))?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, instant_acme::BodyWrapper<bytes::Bytes>>(https);
    Ok(Box::new(client))
}

/// A CSR (DER) for `name` with a fresh ECDSA P-256 key.
fn csr_for(name: &str) -> Result<Vec<u8>, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| format!("CSR key: {e}"))?;
    let mut params =
        rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(|e| format!("CSR: {e}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| format!("CSR: {e}"))?;
    Ok(csr.der().to_vec())
}

/// Checks a downloaded chain: the leaf names `name`, each certificate is signed by the next.
fn check_chain(pem: &str, name: &str) -> Result<(), String> {
    let blocks: Vec<Pem> = Pem::iter_from_buffer(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("chain is not PEM: {e}"))?;
    let certs = blocks
        .iter()
        .map(|b| {
            b.parse_x509()
                .map_err(|e| format!("chain: bad certificate: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if certs.len() < 2 {
        return Err(format!(
            "chain has {} certificate(s), want a leaf and its issuer",
            certs.len()
        ));
    }
    let names_it = certs[0]
        .subject_alternative_name()
        .map_err(|e| format!("leaf SAN: {e}"))?
        .is_some_and(|san| {
            san.value
                .general_names
                .iter()
                .any(|g| matches!(g, GeneralName::DNSName(n) if *n == name))
        });
    if !names_it {
        return Err(format!("leaf does not name {name}"));
    }
    for pair in certs.windows(2) {
        pair[0]
            .verify_signature(Some(pair[1].public_key()))
            .map_err(|e| format!("chain: {} not signed by its issuer: {e}", pair[0].subject()))?;
    }
    Ok(())
}

/// Renders an ACME client error with its sources.
fn acme_error(step: &str, e: instant_acme::Error) -> String {
    format!("{step}: {}", error_chain(&e))
}

/// The steps of one issuance, in [`Phases`] order.
const PHASES: [&str; 4] = ["order+challenge", "validation", "finalize", "download"];

/// How long each step of one issuance took: newOrder, authorization and challenge
/// requests; waiting for the order to be ready (the server validates); finalize; waiting
/// for and downloading the certificate.
type Phases = [Duration; 4];

/// One complete issuance for `name`: order, http-01, finalize, download, check.
async fn issue_once(
    account: &Account,
    name: &str,
    tokens: &Tokens,
    retry: &RetryPolicy,
) -> Result<Phases, String> {
    let mut phases = Phases::default();
    let mut mark = Instant::now();
    let mut lap = |i: usize| {
        phases[i] = mark.elapsed();
        mark = Instant::now();
    };
    let ids = [Identifier::Dns(name.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| acme_error("newOrder", e))?;
    let mut served = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(|e| acme_error("authorization", e))?;
        if authz.status == AuthorizationStatus::Valid {
            continue;
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| format!("no http-01 challenge offered for {name}"))?;
        let token = challenge.token.clone();
        let key_authorization = challenge.key_authorization().as_str().to_owned();
        tokens
            .lock()
            .map_err(|_| "token map poisoned".to_owned())?
            .insert(token.clone(), key_authorization);
        served.push(token);
        challenge
            .set_ready()
            .await
            .map_err(|e| acme_error("challenge", e))?;
    }
    lap(0);
    let outcome = async {
        let status = order
            .poll_ready(retry)
            .await
            .map_err(|e| acme_error("waiting for ready", e))?;
        lap(1);
        if status != OrderStatus::Ready {
            return Err(format!("order for {name} became {status:?}, not ready"));
        }
        order
            .finalize_csr(&csr_for(name)?)
            .await
            .map_err(|e| acme_error("finalize", e))?;
        lap(2);
        let chain = order
            .poll_certificate(retry)
            .await
            .map_err(|e| acme_error("download", e))?;
        lap(3);
        check_chain(&chain, name)
    }
    .await;
    if let Ok(mut t) = tokens.lock() {
        for token in &served {
            t.remove(token);
        }
    }
    outcome.map(|()| phases)
}

/// Shared settings of one target's run.
struct Run {
    target: Target,
    domain: String,
    tokens: Tokens,
    retry: RetryPolicy,
    issuance_timeout: Duration,
    measure_start: Instant,
    end: Instant,
    sequence: AtomicU64,
}

impl Run {
    /// A DNS name never ordered before in this run.
    fn next_name(&self, worker: u32) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("{}-{worker}-{n}.{}", self.target.name, self.domain)
    }
}

/// One worker: its account orders certificates back to back until the window closes;
/// only issuances that end inside the measured window count.
/// What one worker saw: counters, summed step times of its successes, issuances it had in
/// flight when the window closed, and when its last success in the window ended.
type WorkerReport = (WorkerStats, Phases, u64, Option<Instant>);

async fn worker(run: Arc<Run>, account: Account, index: u32) -> WorkerReport {
    let mut stats = WorkerStats::default();
    let mut phase_totals = Phases::default();
    let mut late = 0;
    let mut last_success = None;
    while Instant::now() < run.end {
        let name = run.next_name(index);
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            run.issuance_timeout,
            issue_once(&account, &name, &run.tokens, &run.retry),
        )
        .await
        .unwrap_or_else(|_| Err(format!("issuance for {name} timed out")));
        let finished = Instant::now();
        if finished >= run.measure_start && finished <= run.end {
            if let Ok(phases) = &outcome {
                for (total, p) in phase_totals.iter_mut().zip(phases) {
                    *total += *p;
                }
                last_success = Some(finished);
            }
            stats.record(outcome.map(drop), finished - started);
        } else if finished > run.end {
            late += 1;
            if std::env::var_os("ACME_BENCH_DEBUG").is_some() {
                eprintln!(
                    "late: {name} started {:?} after the window opened, took {:?}: {:?}",
                    started.saturating_duration_since(run.measure_start),
                    finished - started,
                    outcome
                );
            }
        }
    }
    (stats, phase_totals, late, last_success)
}

/// Results for one target.
#[derive(Debug, Serialize)]
struct TargetReport {
    /// Target name.
    name: &'static str,
    /// ACME directory URL.
    directory: String,
    /// Concurrent accounts.
    accounts: u32,
    /// Seconds taken to create the accounts (not part of the measured window).
    account_setup_secs: f64,
    /// Seconds the rate is taken over: the window, or up to the last success if stalled.
    measured_secs: f64,
    /// Complete, checked issuances in the window.
    issued: u64,
    /// Failed issuances in the window.
    errors: u64,
    /// Issuances per second.
    issuances_per_sec: f64,
    /// The server's CPU time (user + system, every thread) per issuance completed in the
    /// measured window, in milliseconds, when its process id was given.
    server_cpu_ms_per_issuance: Option<f64>,
    /// Median issuance latency, in milliseconds.
    p50_ms: Option<f64>,
    /// 99th percentile issuance latency, in milliseconds.
    p99_ms: Option<f64>,
    /// Slowest issuance, in milliseconds.
    max_ms: Option<f64>,
    /// Issuances still running when the window closed (not counted); each worker has at
    /// most one.
    unfinished: u64,
    /// Seconds after the window closed until the last of them ended.
    drain_secs: f64,
    /// Whether the server stopped answering: issuances hung until the timeout. The rate
    /// is then over `measured_secs`, the time until the last success.
    stalled: bool,
    /// Mean time per step of a successful issuance, in milliseconds, by step name.
    mean_phase_ms: Vec<(&'static str, f64)>,
    /// A few distinct error messages.
    error_samples: Vec<String>,
}

/// Creates the accounts, checks one issuance end to end, then measures.
async fn run_target(target: Target, args: &Args, tokens: &Tokens) -> Result<TargetReport> {
    let name = target.name;
    let setup = Instant::now();
    let mut creating = JoinSet::new();
    for _ in 0..args.accounts {
        let (root, directory) = (&target.root, target.directory.clone());
        let http = http_client(root)?;
        creating.spawn(async move {
            let (account, _credentials) = Account::builder_with_http(http)
                .create(
                    &NewAccount {
                        contact: &[],
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    directory,
                    None,
                )
                .await?;
            Ok::<_, instant_acme::Error>(account)
        });
    }
    let mut accounts = Vec::new();
    while let Some(joined) = creating.join_next().await {
        let account = joined
            .context("account task panicked")?
            .map_err(|e| anyhow!("{name}: creating an account: {}", error_chain(&e)))?;
        accounts.push(account);
    }
    let account_setup_secs = setup.elapsed().as_secs_f64();

    let warmup = Duration::from_secs(args.warmup_secs);
    let duration = Duration::from_secs(args.duration_secs);
    let issuance_timeout = Duration::from_secs(args.issuance_timeout_secs);
    let retry = polling(issuance_timeout);
    let preflight = format!("{name}-preflight.{}", args.domain);
    issue_once(&accounts[0], &preflight, tokens, &retry)
        .await
        .map_err(|e| anyhow!("{name}: preflight issuance failed: {e}"))?;
    eprintln!(
        "{name}: {} accounts in {account_setup_secs:.1}s, preflight issuance ok; {}s warm-up + {}s measured",
        args.accounts, args.warmup_secs, args.duration_secs
    );

    let measure_start = Instant::now() + warmup;
    let run = Arc::new(Run {
        target: target.clone(),
        domain: args.domain.clone(),
        tokens: tokens.clone(),
        retry,
        issuance_timeout,
        measure_start,
        end: measure_start + duration,
        sequence: AtomicU64::new(0),
    });
    let mut workers = JoinSet::new();
    for (index, account) in (0u32..).zip(accounts) {
        workers.spawn(worker(run.clone(), account, index));
    }
    // The server's CPU time is sampled at the window's start and end.
    let mut cpu = ServerCpu::new(target.pid);
    tokio::time::sleep_until(measure_start.into()).await;
    cpu.start()?;
    tokio::time::sleep_until(run.end.into()).await;
    let server_cpu = cpu.finish()?;
    let mut total = WorkerStats::default();
    let mut phase_totals = Phases::default();
    let mut late = 0;
    let mut last_success: Option<Instant> = None;
    while let Some(joined) = workers.join_next().await {
        let (stats, phases, worker_late, worker_last) =
            joined.context("benchmark worker panicked")?;
        late += worker_late;
        last_success = last_success.max(worker_last);
        total.merge(stats);
        for (t, p) in phase_totals.iter_mut().zip(phases) {
            *t += p;
        }
    }
    total.latencies.sort_unstable();
    // A server that stops answering (Pebble 2.4 can deadlock under concurrent load) leaves
    // every worker waiting until the issuance timeout. Then the rate is taken over the time
    // it was still issuing, up to its last success: the stall is reported, not averaged in.
    let drain_secs = run.end.elapsed().as_secs_f64();
    let stalled = late > 0 && drain_secs >= issuance_timeout.as_secs_f64() / 2.0;
    let measured_secs = match (stalled, last_success) {
        (true, Some(t)) => (t - measure_start).as_secs_f64().max(0.001),
        _ => duration.as_secs_f64(),
    };
    let per_issuance = total.successes.max(1) as f64;
    let mean_phase_ms = PHASES
        .iter()
        .zip(phase_totals)
        .map(|(name, t)| (*name, t.as_secs_f64() * 1000.0 / per_issuance))
        .collect();
    Ok(TargetReport {
        name,
        directory: target.directory,
        accounts: args.accounts,
        account_setup_secs,
        measured_secs,
        issued: total.successes,
        errors: total.errors,
        issuances_per_sec: total.successes as f64 / measured_secs,
        server_cpu_ms_per_issuance: cpu_per_op_us(server_cpu, total.successes)
            .map(|us| us / 1000.0),
        p50_ms: percentile_ms(&total.latencies, 50.0),
        p99_ms: percentile_ms(&total.latencies, 99.0),
        max_ms: total.latencies.last().map(|d| d.as_secs_f64() * 1000.0),
        unfinished: late,
        drain_secs,
        stalled,
        mean_phase_ms,
        error_samples: total.error_samples,
    })
}

/// Whole-run results, as written by `--json-out`.
#[derive(Debug, Serialize)]
struct Report {
    /// Concurrent accounts per target.
    accounts: u32,
    /// Warm-up per target, in seconds.
    warmup_secs: u64,
    /// Measured window per target, in seconds.
    duration_secs: u64,
    /// Per-target results, in the order they ran.
    results: Vec<TargetReport>,
    /// certkeeper issuances/s divided by Pebble's, when both ran and Pebble issued.
    ratio_certkeeper_over_pebble: Option<f64>,
}

/// Renders the result table.
fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ACME issuance (newOrder, http-01, finalize, download): {} accounts per target, {}s measured after {}s warm-up",
        report.accounts, report.duration_secs, report.warmup_secs
    );
    let _ = writeln!(
        out,
        "{:<12} {:>8} {:>7} {:>12} {:>9} {:>9} {:>9} {:>15}",
        "target", "issued", "errors", "issuances/s", "p50 ms", "p99 ms", "max ms", "server CPU ms"
    );
    for r in &report.results {
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>7} {:>12.1} {:>9} {:>9} {:>9} {:>15}",
            r.name,
            r.issued,
            r.errors,
            r.issuances_per_sec,
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            fmt_ms(r.max_ms),
            r.server_cpu_ms_per_issuance
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"))
        );
    }
    for r in &report.results {
        let steps: Vec<String> = r
            .mean_phase_ms
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.1}"))
            .collect();
        let _ = writeln!(out, "{} mean ms per step: {}", r.name, steps.join(", "));
        let _ = writeln!(
            out,
            "{} issuances unfinished when the window closed: {} (the last ended {:.1}s later)",
            r.name, r.unfinished, r.drain_secs
        );
        if r.stalled {
            let _ = writeln!(
                out,
                "{} STALLED: issuances hung until the timeout; its rate is over the {:.1}s until its last success",
                r.name, r.measured_secs
            );
        }
    }
    if let Some(ratio) = report.ratio_certkeeper_over_pebble {
        let _ = writeln!(out, "ratio certkeeper/pebble: {ratio:.2}x");
    }
    for r in &report.results {
        for sample in &r.error_samples {
            let _ = writeln!(out, "{} error sample: {sample}", r.name);
        }
    }
    out
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("acme-bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the whole benchmark as configured by `args`.
async fn run(args: Args) -> Result<()> {
    let mut targets = Vec::new();
    if let (Some(directory), Some(root)) = (&args.certkeeper_directory, &args.certkeeper_root) {
        targets.push(Target {
            name: "certkeeper",
            directory: directory.clone(),
            root: root.clone(),
            pid: args.certkeeper_pid,
        });
    }
    if let (Some(directory), Some(root)) = (&args.pebble_directory, &args.pebble_root) {
        targets.push(Target {
            name: "pebble",
            directory: directory.clone(),
            root: root.clone(),
            pid: args.pebble_pid,
        });
    }
    if targets.is_empty() {
        bail!("nothing to benchmark: give --certkeeper-directory and/or --pebble-directory");
    }
    let tokens = Tokens::default();
    start_responder(args.http01_listen, tokens.clone()).await?;

    let mut results = Vec::new();
    // Targets run strictly one after the other, never concurrently.
    for target in targets {
        results.push(run_target(target, &args, &tokens).await?);
    }
    let rates: Vec<(&str, f64)> = results
        .iter()
        .map(|r| (r.name, r.issuances_per_sec))
        .collect();
    let ratio = ratio(&rates, "certkeeper", "pebble");
    let report = Report {
        accounts: args.accounts,
        warmup_secs: args.warmup_secs,
        duration_secs: args.duration_secs,
        results,
        ratio_certkeeper_over_pebble: ratio,
    };
    let completed: Vec<(&str, u64)> = report.results.iter().map(|r| (r.name, r.issued)).collect();
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

    /// A two-certificate chain (leaf for `name`, its issuer) made with rcgen.
    fn chain(name: &str) -> (String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        (leaf.pem(), ca_cert.pem())
    }

    #[test]
    fn a_good_chain_passes() {
        let (leaf, ca) = chain("a.bench.test");
        assert_eq!(check_chain(&format!("{leaf}{ca}"), "a.bench.test"), Ok(()));
    }

    #[test]
    fn wrong_name_missing_issuer_and_wrong_issuer_fail() {
        let (leaf, ca) = chain("a.bench.test");
        let (_, other_ca) = chain("b.bench.test");
        assert!(check_chain(&format!("{leaf}{ca}"), "b.bench.test").is_err());
        assert!(check_chain(&leaf, "a.bench.test").is_err());
        let err = check_chain(&format!("{leaf}{other_ca}"), "a.bench.test").unwrap_err();
        assert!(err.contains("not signed"), "{err}");
        assert!(check_chain("not pem", "a.bench.test").is_err());
    }

    #[test]
    fn csr_names_only_the_ordered_name() {
        use x509_parser::prelude::FromDer;
        let der = csr_for("x.bench.test").unwrap();
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        let names: Vec<String> = csr
            .requested_extensions()
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) => Some(
                    san.general_names
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(names, vec!["DNSName(x.bench.test)".to_owned()]);
    }
}
