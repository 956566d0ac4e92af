//! The serial part of issuance: how fast the store records certificates.
//!
//! Every issuance, however many cores sign, ends in one durable write: the certificate row,
//! its names for search and its audit event, committed before the caller is answered. On
//! SQLite those writes queue behind one writer connection, so the rate measured here bounds
//! what any number of cores can issue.
//!
//! Boots certkeeper in process (fresh SQLite data directory, or an empty PostgreSQL
//! database given with `--database-url`), signs `--certificates` leaf certificates under
//! the default intermediate CA *before* timing (distinct names and random serials, each with
//! the record and audit event issuance builds), then records them through
//! `Store::insert_certificate` — the call issuance makes, with the server's durability and
//! its group commit — from `--writers` concurrent tasks, and prints certificates per
//! second, wall time, process CPU time per certificate (`getrusage`, every thread) and the
//! latency of one record. Finally it counts the rows to check that all of them landed.
//!
//! There is no separate batched call to compare: `insert_certificate` already queues into
//! the store's group-commit writer. On SQLite that is a thread of its own with prepared
//! statements (`src/store/sqlite_writer.rs`), which writes whatever is waiting (up to 2,048
//! certificates) in one transaction; on PostgreSQL a task sends up to 256 at a time as
//! multi-row statements (`src/store/writer.rs`). `--writers` sets how many can be waiting,
//! and so how large a batch can grow.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use certkeeper::bootstrap::{DEFAULT_INTERMEDIATE, DEFAULT_PROFILE};
use certkeeper::services::pki::Actor;
use certkeeper::store::{AuditEvent, NewCertificate, Store, new_id};
use certkeeper_bench::{WorkerStats, fmt_ms, percentile_ms};
use certkeeper_ca::{DnsRule, IssuanceRequest};
use clap::Parser;
use nix::sys::resource::{UsageWho, getrusage};
use rcgen::PublicKeyData;

/// The server's allocator (`src/main.rs`), so that the store's work costs here what it
/// costs in the server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "store-bench",
    about = "Record pre-signed certificates through the store as fast as it accepts them"
)]
struct Args {
    /// Certificates to sign beforehand and then record.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    certificates: u32,
    /// Concurrent tasks recording them (each waits for its record before the next).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    writers: u32,
    /// DNS names in each certificate (each is one row of `certificate_names`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    names: u32,
    /// An empty PostgreSQL database to use instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
}

/// The actor the records are made by, as a REST issuance with a token would be.
const ACTOR: &str = "token:store-bench";

/// One certificate as issuance hands it to the store.
type Record = (NewCertificate, AuditEvent);

fn main() -> Result<()> {
    // The scheduling policy `certkeeper serve` takes (`src/sched.rs`), before any thread
    // starts, so that every thread of the benchmark inherits it as the server's do.
    certkeeper::sched::run_as_batch_work();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<()> {
    let args = Args::parse();
    let (_dir, _clock, booted) =
        certkeeper_bench::boot_in_process(args.database_url.as_deref(), "").await?;
    let pki = booted.pki.clone();
    let store = pki.store_for_tests().clone();

    let t = Instant::now();
    let records = presign(&pki, args.certificates, args.names).await?;
    println!(
        "engine {:?}, {} tokio worker thread(s): signed {} certificates in {:.1} s (not timed)",
        store.engine(),
        tokio::runtime::Handle::current().metrics().num_workers(),
        records.len(),
        t.elapsed().as_secs_f64()
    );

    let (stats, wall, cpu) = record_all(&store, records, args.writers as usize).await?;
    let n = stats.successes;
    let mut latencies = stats.latencies;
    latencies.sort_unstable();
    println!(
        "recorded {n} certificates ({} names each) from {} writers in {:.3} s: {:.0} certificates/s",
        args.names,
        args.writers,
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64()
    );
    println!(
        "process CPU time {:.3} s: {:.1} µs per certificate; latency of one record p50 {} ms, p99 {} ms",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
        fmt_ms(percentile_ms(&latencies, 50.0)),
        fmt_ms(percentile_ms(&latencies, 99.0)),
    );
    if stats.errors > 0 {
        bail!(
            "{} records failed, e.g.: {}",
            stats.errors,
            stats.error_samples.join(" | ")
        );
    }
    check_rows(&store, n, args.names).await
}

/// Sign `count` certificates under the default intermediate CA through its profile, and
/// build each record and audit event as issuance does.
async fn presign(
    pki: &certkeeper::services::pki::Pki,
    count: u32,
    names: u32,
) -> Result<Vec<Record>> {
    let store = pki.store_for_tests();
    let ca = store.get_ca(DEFAULT_INTERMEDIATE).await?;
    let mut profile = store.get_profile(DEFAULT_PROFILE).await?.policy;
    // The default profile allows no names until configured; this is its configuration.
    profile.allowed_dns_names = vec![DnsRule::Suffix("bench.example".into())];
    let signer = pki
        .signer(&ca)
        .map_err(|e| anyhow::anyhow!("loading the default CA: {e}"))?;
    let links = pki.links_for(&ca.id);
    let spki = rcgen::KeyPair::generate()?.subject_public_key_info();
    let actor = Actor {
        name: ACTOR.into(),
        source: Some(IpAddr::from([127, 0, 0, 1]).to_string()),
    };
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let mut request = IssuanceRequest::for_key(&spki);
        for j in 0..names {
            request = request.with_dns(&format!("h{i}-{j}.bench.example"));
        }
        let approved = profile
            .approve(request, &signer, pki.now())
            .map_err(|v| anyhow::anyhow!("profile refused: {v:?}"))?;
        let cert = signer.issue(&approved, &links)?;
        let id = new_id();
        let rec = NewCertificate {
            id: id.clone(),
            ca_id: ca.id.clone(),
            profile_name: Some(profile.name.clone()),
            info: cert.info,
            der: cert.der,
            key_sealed: None,
            created_by: actor.name.clone(),
            created_at: pki.now(),
        };
        let mut sans = rec.info.dns_names.clone();
        sans.sort();
        let ev = actor
            .event("certificate.issue", "certificate")
            .object(&id)
            .detail(serde_json::json!({
                "profile": profile.name, "serial": rec.info.serial, "ca": ca.id,
                "names": sans, "managed": false,
            }));
        out.push((rec, ev));
    }
    Ok(out)
}

/// Record every certificate from `writers` tasks, each taking the next one when its last
/// is committed. Returns the merged counters, the wall time and the process CPU time.
async fn record_all(
    store: &Store,
    records: Vec<Record>,
    writers: usize,
) -> Result<(WorkerStats, Duration, Duration)> {
    let mut shares: Vec<Vec<Record>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, r) in records.into_iter().enumerate() {
        shares[i % writers].push(r);
    }
    let cpu0 = cpu_time()?;
    let start = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut stats = WorkerStats::default();
                for (rec, ev) in share {
                    let t = Instant::now();
                    let r = store.insert_certificate(rec, ev, None).await;
                    stats.record(r.map(|_| ()).map_err(|e| e.to_string()), t.elapsed());
                }
                stats
            })
        })
        .collect();
    let mut stats = WorkerStats::default();
    for task in tasks {
        stats.merge(task.await.context("a writer task panicked")?);
    }
    let wall = start.elapsed();
    let cpu = cpu_time()? - cpu0;
    Ok((stats, wall, cpu))
}

/// User plus system CPU time of this process so far (every thread).
fn cpu_time() -> Result<Duration> {
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let d =
        |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    Ok(d(u.user_time()) + d(u.system_time()))
}

/// Check that every certificate, name and audit event landed.
async fn check_rows(store: &Store, n: u64, names: u32) -> Result<()> {
    let count = |sql: &'static str| async move {
        let (c,): (i64,) = sqlx::query_as(sql)
            .bind(ACTOR)
            .fetch_one(store.pool())
            .await?;
        anyhow::Ok(c as u64)
    };
    let certs = count("SELECT COUNT(*) FROM certificates WHERE created_by = $1").await?;
    let name_rows = count(
        "SELECT COUNT(*) FROM certificate_names n JOIN certificates c ON c.id = n.certificate_id WHERE c.created_by = $1",
    )
    .await?;
    let events =
        count("SELECT COUNT(*) FROM audit_log WHERE actor = $1 AND action = 'certificate.issue'")
            .await?;
    if (certs, name_rows, events) != (n, n * u64::from(names), n) {
        bail!(
            "expected {n} certificates, {} names and {n} audit events; found {certs}, {name_rows} and {events}",
            n * u64::from(names)
        );
    }
    println!("checked: {certs} certificate rows, {name_rows} name rows, {events} audit events");
    Ok(())
}
