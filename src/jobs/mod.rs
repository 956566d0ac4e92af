//! The one runner of background work: periodic tasks and work handed over by the
//! services (a challenge to validate, a scan to run). Nothing else spawns tasks that
//! outlive a request; everything here stops on shutdown.
//!
//! - [`Jobs::every`] runs a named task on an interval until the runner stops; a failed
//!   run is logged with the task's name and the next one runs on time. A task that must
//!   not run on two replicas at once takes a lease ([`Leases`]) before each run; a task
//!   given a [`Notify`] also runs early when a service asks for it (an on-demand sweep
//!   waking the alert delivery).
//! - [`Jobs::submit`] runs one piece of work in the background (a requested scan).
//! - [`JobIntervals`] is where every interval comes from; [`tasks::start`] registers the
//!   server's periodic tasks.

mod lease;
pub mod tasks;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;

pub use lease::{Leases, StoreLeases};

/// How long a periodic run that is under way when the runner stops may take to finish
/// before it is dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A handle to the runner: cheap to clone, shared by the services and the server.
#[derive(Clone, Debug)]
pub struct Jobs {
    tracker: TaskTracker,
    stop: CancellationToken,
    /// This runner's name in leases.
    owner: Arc<str>,
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs {
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
            owner: format!("replica:{}", crate::store::new_id()).into(),
        }
    }
}

/// How a periodic task runs: its name, interval, first run, lease and shutdown grace.
#[derive(Clone)]
pub struct Every {
    name: &'static str,
    interval: Duration,
    delay_first: bool,
    lease: Option<Arc<dyn Leases>>,
    grace: Duration,
    wake: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Every {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Every")
            .field("name", &self.name)
            .field("interval", &self.interval)
            .field("delay_first", &self.delay_first)
            .field("leased", &self.lease.is_some())
            .field("grace", &self.grace)
            .field("wakeable", &self.wake.is_some())
            .finish()
    }
}

impl Every {
    /// Task `name` every `interval` (at least a millisecond), the first run at once, on
    /// every replica, with [`SHUTDOWN_GRACE`] to finish a run under way at shutdown.
    pub fn new(name: &'static str, interval: Duration) -> Every {
        Every {
            name,
            interval: interval.max(Duration::from_millis(1)),
            delay_first: false,
            lease: None,
            grace: SHUTDOWN_GRACE,
            wake: None,
        }
    }

    /// Also run as soon as `wake` is notified (once per notification received while
    /// waiting, however many arrived), besides on the interval.
    pub fn woken_by(mut self, wake: Arc<Notify>) -> Every {
        self.wake = Some(wake);
        self
    }

    /// The first run after one interval instead of at once.
    pub fn after_first_interval(mut self) -> Every {
        self.delay_first = true;
        self
    }

    /// Run only while this runner holds the task's lease in `leases`: taken (or renewed)
    /// for one and a half intervals before each run, so of several replicas one runs the
    /// task, and another takes over once the holder has stopped.
    pub fn leased(mut self, leases: Arc<dyn Leases>) -> Every {
        self.lease = Some(leases);
        self
    }

    /// How long a run under way at shutdown may take to finish (zero: dropped at once).
    pub fn grace(mut self, grace: Duration) -> Every {
        self.grace = grace;
        self
    }
}

impl Jobs {
    /// A runner with nothing running.
    pub fn new() -> Jobs {
        Jobs::default()
    }

    /// This runner's name in leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Run `task` in the background until it ends, or until [`SHUTDOWN_GRACE`] after the
    /// runner stops, whichever is first (a validation under way when a replica drains
    /// finishes there). `name` says what it is in the logs.
    pub fn submit<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.stop.is_cancelled() {
            tracing::debug!(job = name, "not started: shutting down");
            return;
        }
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = async {
                    stop.cancelled().await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } => tracing::warn!(job = name, "stopped by shutdown"),
            }
        });
    }

    /// Run `work` as described by `every` until the runner stops. Each run's error is
    /// logged with the task's name; a run that falls behind delays the next tick rather
    /// than bunching runs up.
    pub fn every<F, Fut, E>(&self, every: Every, mut work: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        if self.stop.is_cancelled() {
            tracing::debug!(job = every.name, "not started: shutting down");
            return;
        }
        let stop = self.stop.clone();
        let owner = self.owner.clone();
        self.tracker.spawn(async move {
            let Every {
                name,
                interval,
                delay_first,
                lease,
                grace,
                wake,
            } = every;
            let start = tokio::time::Instant::now();
            let first = if delay_first { start + interval } else { start };
            let mut tick = tokio::time::interval_at(first, interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                    _ = async {
                        match &wake {
                            Some(w) => w.notified().await,
                            None => std::future::pending().await,
                        }
                    } => {}
                }
                if let Some(leases) = &lease {
                    // Held for half an interval more than the holder needs to renew it, so
                    // a holder a little late keeps it; a stopped holder's lapses.
                    match leases.take(name, &owner, interval + interval / 2).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::error!(job = name, error = %e, "taking the job's lease failed");
                            continue;
                        }
                    }
                }
                let run = work();
                tokio::pin!(run);
                let finished = tokio::select! {
                    r = &mut run => Some(r),
                    _ = async {
                        stop.cancelled().await;
                        tokio::time::sleep(grace).await;
                    } => None,
                };
                match finished {
                    Some(Ok(())) => {}
                    Some(Err(e)) => tracing::error!(job = name, error = %e, "job failed"),
                    None => {
                        tracing::warn!(job = name, "run interrupted by shutdown");
                        break;
                    }
                }
            }
            if let Some(leases) = &lease
                && let Err(e) = leases.release(name, &owner).await
            {
                tracing::warn!(job = name, error = %e, "giving up the job's lease failed");
            }
            tracing::debug!(job = name, "stopped");
        });
    }

    /// A token that is cancelled when the runner stops.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stop every task and wait until all have ended.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// How often each periodic task runs. Built from the settings in one place,
/// [`JobIntervals::from_settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIntervals {
    /// Regenerate CRLs that are due.
    pub crl_refresh: Duration,
    /// Check the server's own TLS certificate and swap in a renewed one.
    pub server_certificate: Duration,
    /// Renew due managed certificates and push versions to their destinations.
    pub managed: Duration,
    /// Take over ACME validations and finalizations a stopped process left unfinished.
    pub acme_reclaim: Duration,
    /// Run due discovery schedules (and mark abandoned scans failed).
    pub discovery_schedules: Duration,
    /// Evaluate alert rules.
    pub alert_sweep: Duration,
    /// Send due alert notifications.
    pub alert_delivery: Duration,
    /// Delete expired ACME bookkeeping.
    pub acme_prune: Duration,
}

impl JobIntervals {
    /// Every interval, from the `[jobs]` settings.
    pub fn from_settings(settings: &Settings) -> JobIntervals {
        let jobs = &settings.jobs;
        JobIntervals {
            crl_refresh: jobs.crl_refresh,
            server_certificate: jobs.server_certificate,
            managed: jobs.managed_certificates,
            acme_reclaim: jobs.acme_reclaim,
            discovery_schedules: jobs.discovery_schedules,
            alert_sweep: jobs.alert_sweep,
            alert_delivery: jobs.alert_delivery,
            acme_prune: jobs.acme_prune,
        }
    }
}

#[cfg(test)]
mod tests;
