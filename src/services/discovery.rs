//! Server-side discovery: running scans for the API and for saved schedules, and feeding
//! their results into the inventory.
//!
//! Scans started here are limited to the configured allowlist (`discovery.allow`) and to
//! `discovery.max_endpoints` endpoints each. A scheduled scan is run by whichever replica
//! takes the schedule row's lease first; the lease is a conditional update, so it works
//! the same on SQLite and PostgreSQL.
//!
//! A running scan records what answered as it goes, in batches of at most
//! [`BATCH_ROWS`] results or one second's worth, each in its own short transaction, so a
//! large scan never holds the database's only writer (SQLite) for long; refused and
//! timed-out endpoints are not kept. It checks once a second whether it was cancelled (by
//! any replica: the mark is on the scan's row) and stops if so.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use certkeeper_discovery::{AnalysisContext, Observation, ProbeConfig, ScanOptions, ScanPlan};
use croner::Cron;

use crate::error::Error;
use crate::jobs::Jobs;
use crate::services::pki::{Actor, Pki};
use crate::store::{
    InventoryCertificate, InventoryEndpoint, ScanChanges, ScanRecord, ScheduleRecord, StoreError,
    new_id,
};

/// What a scan request carries (shared with the CLI, which builds it).
pub use certkeeper_discovery::ScanSpec;

/// How long a replica holds a schedule's lease at most (a replica that dies mid-scan
/// releases it by letting it expire); also how long a scan may run before it is taken
/// for abandoned.
const LEASE_SECS: i64 = 6 * 3600;

/// Most results a scan records in one transaction.
pub const BATCH_ROWS: usize = 256;

/// Mark scans that have been running for longer than any scan should (their replica
/// stopped) as failed. Returns how many.
pub async fn fail_abandoned_scans(pki: &Pki) -> Result<u64, Error> {
    let now = pki.now().unix_timestamp();
    Ok(pki
        .store()
        .fail_abandoned_scans(now - LEASE_SECS, now)
        .await?)
}

/// Check a scan request and build its plan: targets must parse, lie in the allowlist, and
/// make at most `discovery.max_endpoints` endpoints.
pub async fn plan_for(pki: &Pki, spec: &ScanSpec) -> Result<ScanPlan, Error> {
    let plan = spec
        .plan()
        .await
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let max = pki.settings().discovery.max_endpoints;
    if plan.len() > max {
        return Err(Error::BadRequest(format!(
            "the scan would probe {} endpoints (targets × ports × names); at most {max} are \
             allowed per scan (discovery.max_endpoints): split it into smaller scans",
            plan.len()
        )));
    }
    plan.check_allowed(&pki.settings().discovery.allow)
        .map_err(|e| {
            Error::Forbidden(format!(
                "{e}; the server may scan only the networks in discovery.allow"
            ))
        })?;
    Ok(plan)
}

/// Record a new running scan for `plan`.
pub async fn create_scan(
    pki: &Pki,
    spec: &ScanSpec,
    plan: &ScanPlan,
    actor: &Actor,
    schedule_id: Option<String>,
) -> Result<ScanRecord, Error> {
    let now = pki.now().unix_timestamp();
    let rec = ScanRecord {
        id: new_id(),
        schedule_id,
        spec: serde_json::to_value(spec).map_err(|e| Error::Internal(e.to_string()))?,
        status: "running".into(),
        total: i64::try_from(plan.len()).unwrap_or(i64::MAX),
        done: 0,
        handshakes: 0,
        error: None,
        changes: None,
        created_at: now,
        started_at: Some(now),
        finished_at: None,
        created_by: actor.name.clone(),
    };
    let ev = actor
        .event("discovery_scan.create", "discovery_scan")
        .object(&rec.id)
        .detail(serde_json::json!({"spec": rec.spec, "endpoints": rec.total}));
    pki.store().insert_scan(&rec, &ev).await?;
    Ok(rec)
}

/// Run a recorded scan to the end: probe, analyse against certkeeper's CAs, update the
/// inventory. Failures are recorded on the scan.
pub async fn execute(pki: Arc<Pki>, id: String, plan: ScanPlan) {
    if let Err(e) = execute_inner(&pki, &id, plan).await {
        tracing::error!(scan = %id, error = %e, "discovery scan failed");
        let now = pki.now().unix_timestamp();
        if let Err(e) = pki.store().fail_scan(&id, &e.to_string(), now).await {
            tracing::error!(scan = %id, error = %e, "recording a failed scan");
        }
    }
}

async fn execute_inner(pki: &Arc<Pki>, id: &str, plan: ScanPlan) -> Result<(), Error> {
    let settings = &pki.settings().discovery;
    let our_cas = pki
        .store()
        .list_cas()
        .await?
        .into_iter()
        .filter_map(|c| c.cert_der)
        .collect();
    let ctx = Arc::new(AnalysisContext {
        now: pki.now().unix_timestamp(),
        alert_window: settings.alert_window.as_secs() as i64,
        our_cas,
        trust_anchors: Vec::new(),
    });
    let options = ScanOptions {
        concurrency: settings.concurrency,
        per_host: 16,
        packets_per_second: settings.packets_per_second,
        probe: ProbeConfig {
            connect_timeout: settings.timeout,
            starttls_timeout: settings.timeout,
            handshake_timeout: settings.timeout,
            ..ProbeConfig::default()
        },
    };
    let plan = Arc::new(plan);
    let (mut rx, progress) = certkeeper_discovery::observe(plan.clone(), options, ctx)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let mut batch = Recorder::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(obs) => {
                    if obs.answered() {
                        batch.pending.push(obs);
                    }
                    if batch.pending.len() >= BATCH_ROWS {
                        batch.flush(pki, id).await?;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                batch.flush(pki, id).await?;
                let running = pki
                    .store()
                    .scan_progress(id, progress.done(), progress.handshakes())
                    .await?;
                if !running {
                    // Cancelled: dropping the receiver stops the scanner.
                    tracing::info!(scan = %id, done = progress.done(), "discovery scan cancelled");
                    return Ok(());
                }
            }
        }
    }
    batch.flush(pki, id).await?;
    let covers = |address: &str, port: u16, sni: &str| {
        address.parse().is_ok_and(|ip| {
            plan.covers(SocketAddr::new(ip, port), (!sni.is_empty()).then_some(sni))
        })
    };
    let now = pki.now().unix_timestamp();
    let finished = pki
        .store()
        .finish_scan(id, batch.changes, batch.handshakes, &covers, now)
        .await?;
    match finished {
        Some(changes) => {
            crate::services::alerts::events::on_scan_finished(pki, id, &changes).await;
            // What the scan saw may show old versions of managed certificates still served.
            let managed = crate::services::managed::Managed::new(pki.clone());
            if let Err(e) = managed.sweep_stale().await {
                tracing::error!(scan = %id, error = %e, "looking for stale deployments failed");
            }
        }
        None => tracing::info!(scan = %id, "discovery scan cancelled before it finished"),
    }
    Ok(())
}

/// A running scan's results not yet recorded, and what recording them so far found.
#[derive(Default)]
struct Recorder {
    pending: Vec<Observation>,
    next_seq: i64,
    seen_certs: HashSet<String>,
    changes: ScanChanges,
    handshakes: i64,
}

impl Recorder {
    /// Record the pending results in one short transaction.
    async fn flush(&mut self, pki: &Pki, id: &str) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let now = pki.now().unix_timestamp();
        self.handshakes += pki
            .store()
            .record_scan_batch(
                id,
                &self.pending,
                self.next_seq + 1,
                &mut self.seen_certs,
                &mut self.changes,
                now,
            )
            .await?;
        self.next_seq += i64::try_from(self.pending.len()).unwrap_or(i64::MAX);
        self.pending.clear();
        Ok(())
    }
}

/// Parse a cron expression (5 fields, or 6 with seconds; UTC).
pub fn parse_cron(expr: &str) -> Result<Cron, Error> {
    Cron::from_str(expr).map_err(|e| Error::BadRequest(format!("cron {expr:?}: {e}")))
}

/// The first run of `cron` strictly after `after` (Unix seconds).
pub fn next_run(cron: &Cron, after: i64) -> Result<i64, Error> {
    let t = chrono::DateTime::from_timestamp(after, 0)
        .ok_or_else(|| Error::Internal("time out of range".into()))?;
    cron.find_next_occurrence(&t, false)
        .map(|n| n.timestamp())
        .map_err(|e| Error::BadRequest(format!("cron {:?}: {e}", cron.pattern.to_string())))
}

/// Run every due scheduled scan this replica can lease, one after another; returns the
/// scans started. `owner` names this replica.
pub async fn run_due_schedules(pki: &Arc<Pki>, owner: &str) -> Result<Vec<String>, Error> {
    let mut started = Vec::new();
    loop {
        let now = pki.now().unix_timestamp();
        let Some(sched) = pki
            .store()
            .claim_due_schedule(owner, now, now + LEASE_SECS)
            .await?
        else {
            return Ok(started);
        };
        let actor = Actor::system();
        let outcome = async {
            let spec: ScanSpec = serde_json::from_value(sched.spec.clone())
                .map_err(|e| Error::Internal(format!("stored scan spec: {e}")))?;
            let plan = plan_for(pki, &spec).await?;
            let rec = create_scan(pki, &spec, &plan, &actor, Some(sched.id.clone())).await?;
            execute(pki.clone(), rec.id.clone(), plan).await;
            Ok::<_, Error>(rec.id)
        }
        .await;
        let scan_id = match outcome {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(schedule = %sched.name, error = %e, "scheduled scan not started");
                None
            }
        };
        let next = parse_cron(&sched.cron).and_then(|c| next_run(&c, pki.now().unix_timestamp()));
        let next = next.unwrap_or(i64::MAX);
        pki.store()
            .release_schedule(&sched.id, owner, next, scan_id.as_deref())
            .await?;
        started.extend(scan_id);
    }
}

/// What a new schedule is created with.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// Unique name, 1 to 100 characters.
    pub name: String,
    /// Cron expression (UTC).
    pub cron: String,
    /// Whether it runs.
    pub enabled: bool,
    /// The scan it runs.
    pub scan: ScanSpec,
}

/// The discovery service: scans on request (run by the jobs runner), their results, the
/// inventory, and saved schedules.
#[derive(Debug, Clone)]
pub struct DiscoveryService {
    pki: Arc<Pki>,
    jobs: Jobs,
}

impl DiscoveryService {
    /// The service over `pki`; requested scans run on `jobs`, and `jobs`' owner name is
    /// this replica's name in schedule leases.
    pub fn new(pki: Arc<Pki>, jobs: Jobs) -> DiscoveryService {
        DiscoveryService { pki, jobs }
    }

    /// Check and record a scan, and hand it to the runner; it is `running` when returned.
    pub async fn start_scan(&self, spec: &ScanSpec, actor: &Actor) -> Result<ScanRecord, Error> {
        let plan = plan_for(&self.pki, spec).await?;
        let rec = create_scan(&self.pki, spec, &plan, actor, None).await?;
        self.jobs.submit(
            "discovery-scan",
            execute(self.pki.clone(), rec.id.clone(), plan),
        );
        Ok(rec)
    }

    /// The latest `limit` scans (1 to 1000), newest first.
    pub async fn list_scans(&self, limit: i64) -> Result<Vec<ScanRecord>, Error> {
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
        }
        Ok(self.pki.store().list_scans(limit).await?)
    }

    /// Cancel a running scan: it is marked `cancelled` at once and its runner stops
    /// within about a second (whichever replica runs it). What it recorded so far stays.
    pub async fn cancel_scan(&self, id: &str, actor: &Actor) -> Result<ScanRecord, Error> {
        let store = self.pki.store();
        let ev = actor
            .event("discovery_scan.cancel", "discovery_scan")
            .object(id);
        let now = self.pki.now().unix_timestamp();
        if !store.cancel_scan(id, &ev, now).await? {
            let scan = store.scan(id).await?;
            return Err(Error::Conflict(format!(
                "the scan is {}, not running",
                scan.status
            )));
        }
        Ok(store.scan(id).await?)
    }

    /// One scan.
    pub async fn scan(&self, id: &str) -> Result<ScanRecord, Error> {
        Ok(self.pki.store().scan(id).await?)
    }

    /// The results of one scan.
    pub async fn scan_results(&self, id: &str) -> Result<Vec<serde_json::Value>, Error> {
        let store = self.pki.store();
        store.scan(id).await?;
        Ok(store.scan_results(id).await?)
    }

    /// Every certificate in the inventory.
    pub async fn certificates(&self) -> Result<Vec<InventoryCertificate>, Error> {
        Ok(self.pki.store().inventory_certificates().await?)
    }

    /// One page of the endpoints still served, each with its certificate, and how many
    /// match `filter` in all.
    pub async fn endpoint_page(
        &self,
        filter: &crate::store::EndpointFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<(InventoryEndpoint, InventoryCertificate)>), Error> {
        Ok(self
            .pki
            .store()
            .endpoint_page(filter, offset, limit)
            .await?)
    }

    /// Every endpoint in the inventory.
    pub async fn endpoints(&self) -> Result<Vec<InventoryEndpoint>, Error> {
        Ok(self.pki.store().inventory_endpoints().await?)
    }

    /// Save a schedule; its cron expression and scan are checked now, so a schedule that
    /// could never run is refused at once.
    pub async fn create_schedule(
        &self,
        new: NewSchedule,
        actor: &Actor,
    ) -> Result<ScheduleRecord, Error> {
        if new.name.trim().is_empty() || new.name.len() > 100 {
            return Err(Error::BadRequest("name must be 1 to 100 characters".into()));
        }
        let cron = parse_cron(&new.cron)?;
        plan_for(&self.pki, &new.scan).await?;
        let now = self.pki.now().unix_timestamp();
        let rec = ScheduleRecord {
            id: new_id(),
            name: new.name,
            spec: serde_json::to_value(&new.scan).map_err(|e| Error::Internal(e.to_string()))?,
            cron: new.cron,
            enabled: new.enabled,
            next_run: next_run(&cron, now)?,
            last_scan_id: None,
            created_at: now,
            created_by: actor.name.clone(),
        };
        let ev = actor
            .event("discovery_schedule.create", "discovery_schedule")
            .object(&rec.id)
            .detail(serde_json::json!({"name": rec.name, "cron": rec.cron, "spec": rec.spec}));
        self.pki
            .store()
            .insert_schedule(&rec, &ev)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    Error::Conflict("a schedule with this name already exists".into())
                }
                other => other.into(),
            })?;
        Ok(rec)
    }

    /// Every schedule.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, Error> {
        Ok(self.pki.store().list_schedules().await?)
    }

    /// Delete a schedule.
    pub async fn delete_schedule(&self, id: &str, actor: &Actor) -> Result<(), Error> {
        let ev = actor
            .event("discovery_schedule.delete", "discovery_schedule")
            .object(id);
        self.pki
            .store()
            .delete_schedule(id, &ev, self.pki.now().unix_timestamp())
            .await?;
        Ok(())
    }

    /// One pass of the `discovery-schedules` job: mark abandoned scans failed, then run
    /// every due schedule this replica can lease.
    pub async fn run_due(&self) -> Result<(), Error> {
        match fail_abandoned_scans(&self.pki).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(scans = n, "abandoned discovery scans marked failed"),
            Err(e) => tracing::error!(error = %e, "sweeping abandoned discovery scans"),
        }
        let started = run_due_schedules(&self.pki, self.jobs.owner()).await?;
        if !started.is_empty() {
            tracing::info!(scans = started.len(), "scheduled discovery scans ran");
        }
        Ok(())
    }
}
