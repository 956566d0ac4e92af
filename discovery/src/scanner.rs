//! The concurrent scanner: walks a [`ScanPlan`] lazily and probes endpoints under a global
//! limit, a per-host limit and an optional connection rate, sending each result on a channel.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::analysis::AnalysisContext;
use crate::error::{Error, ProbeError};
use crate::observation::Observation;
use crate::probe::{Handshake, ProbeConfig, client_config, probe};
use crate::targets::{Endpoint, ScanPlan};

/// Limits for a scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Probes in flight against one address at once.
    pub per_host: usize,
    /// New connections per second, at most (each starts with one SYN packet); `None` for no
    /// budget.
    pub packets_per_second: Option<u32>,
    /// Timeouts and bounds of each probe.
    pub probe: ProbeConfig,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            concurrency: 512,
            per_host: 16,
            packets_per_second: None,
            probe: ProbeConfig::default(),
        }
    }
}

impl ScanOptions {
    fn check(&self) -> Result<(), Error> {
        if self.concurrency == 0 || self.concurrency > 100_000 {
            return Err(Error::Option("concurrency must be 1..=100000".into()));
        }
        if self.per_host == 0 {
            return Err(Error::Option("per-host limit must be at least 1".into()));
        }
        if self.packets_per_second == Some(0) {
            return Err(Error::Option(
                "packets per second must be at least 1".into(),
            ));
        }
        if self.probe.max_chain == 0 {
            return Err(Error::Option("chain length must be at least 1".into()));
        }
        Ok(())
    }
}

/// The result of probing one endpoint.
#[derive(Debug)]
pub struct ProbeReport {
    /// What was probed.
    pub endpoint: Endpoint,
    /// The handshake, or why there was none.
    pub outcome: Result<Handshake, ProbeError>,
}

/// Counters a caller can watch while a scan runs.
#[derive(Debug, Default, Serialize)]
pub struct Progress {
    /// Endpoints the plan holds.
    pub total: u64,
    /// Endpoints probed so far.
    pub done: AtomicU64,
    /// Probes that completed a handshake.
    pub handshakes: AtomicU64,
}

impl Progress {
    /// Endpoints probed so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }
}

/// Per-address semaphores, created on first use and dropped when idle.
#[derive(Default)]
struct HostLimits {
    map: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

impl HostLimits {
    fn semaphore(&self, ip: IpAddr, limit: usize) -> Arc<Semaphore> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(ip)
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone()
    }

    fn release(&self, ip: IpAddr, sem: Arc<Semaphore>, permit: OwnedSemaphorePermit) {
        drop(permit);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // One reference in the map and ours: nobody else waits on this address.
        if Arc::strong_count(&sem) == 2 {
            map.remove(&ip);
        }
    }
}

/// Start scanning `plan`. Results arrive on the returned channel in completion order; the
/// channel closes when every endpoint has been probed. Dropping the receiver stops the scan.
/// Must be called within a Tokio runtime.
pub fn scan(
    plan: Arc<ScanPlan>,
    options: ScanOptions,
) -> Result<(mpsc::Receiver<ProbeReport>, Arc<Progress>), Error> {
    scan_with(plan, options, |report| report)
}

/// [`scan`], each result analysed into an [`Observation`] by the task that probed it, so
/// the analysis (parsing the chain, checking a self-signed certificate's signature) runs on
/// every worker of the runtime instead of in the one task that reads the channel.
pub fn observe(
    plan: Arc<ScanPlan>,
    options: ScanOptions,
    ctx: Arc<AnalysisContext>,
) -> Result<(mpsc::Receiver<Observation>, Arc<Progress>), Error> {
    scan_with(plan, options, move |report| {
        Observation::from_report(report, &ctx)
    })
}

/// The scanner: `finish` turns each probe's report into what the channel carries.
fn scan_with<T, F>(
    plan: Arc<ScanPlan>,
    options: ScanOptions,
    finish: F,
) -> Result<(mpsc::Receiver<T>, Arc<Progress>), Error>
where
    T: Send + 'static,
    F: Fn(ProbeReport) -> T + Send + Sync + 'static,
{
    options.check()?;
    let finish = Arc::new(finish);
    let progress = Arc::new(Progress {
        total: plan.len(),
        ..Progress::default()
    });
    let (tx, rx) = mpsc::channel(options.concurrency.min(4096));
    let tls = client_config();
    let limit = Arc::new(Semaphore::new(options.concurrency));
    let hosts = Arc::new(HostLimits::default());
    let progress_out = progress.clone();
    tokio::spawn(async move {
        let mut pacer = options.packets_per_second.map(|pps| {
            let mut i = tokio::time::interval(Duration::from_secs(1) / pps);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        for endpoint in plan.endpoints() {
            if tx.is_closed() {
                return;
            }
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            if let Some(p) = pacer.as_mut() {
                p.tick().await;
            }
            let (tx, tls, hosts, progress, finish) = (
                tx.clone(),
                tls.clone(),
                hosts.clone(),
                progress.clone(),
                finish.clone(),
            );
            let probe_config = options.probe.clone();
            let per_host = options.per_host;
            tokio::spawn(async move {
                let ip = endpoint.addr.ip();
                let sem = hosts.semaphore(ip, per_host);
                let Ok(host_permit) = sem.clone().acquire_owned().await else {
                    return;
                };
                let outcome = probe(&endpoint, &probe_config, tls).await;
                hosts.release(ip, sem, host_permit);
                if outcome.is_ok() {
                    progress.handshakes.fetch_add(1, Ordering::Relaxed);
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(finish(ProbeReport { endpoint, outcome })).await;
                drop(permit);
            });
        }
    });
    Ok((rx, progress_out))
}
