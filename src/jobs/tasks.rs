//! The server's periodic tasks, registered with the runner at start.

use std::sync::Arc;
use std::time::Duration;

use super::{Every, JobIntervals, Jobs, StoreLeases};
use crate::acme::AcmeEngine;
use crate::server::ServerCert;
use crate::services::Services;

/// Register every periodic task of a server:
///
/// | task | interval | replicas |
/// |---|---|---|
/// | `crl-refresh` | `crl_refresh` | one at a time (job lease) |
/// | `server-certificate` | `server_certificate`, first after one interval | each its own |
/// | `managed` (renewals, then pushes) | `managed` | row leases per certificate |
/// | `acme-reclaim` (only with ACME on) | `acme_reclaim` | compare-and-set per challenge |
/// | `acme-prune` | `acme_prune`, first after one interval | one at a time (job lease) |
/// | `discovery-schedules` | `discovery_schedules` | row lease per schedule |
/// | `alert-sweep` | `alert_sweep` | one at a time (job lease) |
/// | `alert-delivery` | `alert_delivery` or when woken by an on-demand sweep; each run starts a pass in the background, dropped at once on shutdown | row lease per outbox row |
///
/// Used ACME nonces are also purged as uses are recorded (see the store); `acme-prune`
/// catches those left when no uses come. `acme` is the server's ACME engine: validations
/// taken over count against its caps on validations in flight.
pub fn start(
    jobs: &Jobs,
    services: &Services,
    acme: Arc<AcmeEngine>,
    cert: Arc<ServerCert>,
    every: &JobIntervals,
) {
    let pki = services.pki.clone();
    let leases = Arc::new(StoreLeases::new(pki.clone()));

    let p = pki.clone();
    jobs.every(
        Every::new("crl-refresh", every.crl_refresh).leased(leases.clone()),
        move || {
            let pki = p.clone();
            async move {
                match pki.refresh_due_crls().await? {
                    0 => {}
                    n => tracing::info!(count = n, "regenerated CRLs"),
                }
                Ok::<_, crate::error::Error>(())
            }
        },
    );

    let p = pki.clone();
    jobs.every(
        Every::new("server-certificate", every.server_certificate).after_first_interval(),
        move || {
            let (pki, cert) = (p.clone(), cert.clone());
            async move { cert.renew(&pki).await }
        },
    );

    let managed = services.managed.clone();
    jobs.every(Every::new("managed", every.managed), move || {
        let managed = managed.clone();
        async move {
            match managed.run_due().await? {
                (0, 0) => {}
                (renewed, pushed) => tracing::info!(renewed, pushed, "managed certificates"),
            }
            Ok::<_, crate::error::Error>(())
        }
    });

    if pki.settings().acme.enabled {
        let runner = jobs.clone();
        jobs.every(Every::new("acme-reclaim", every.acme_reclaim), move || {
            let (engine, runner) = (acme.clone(), runner.clone());
            async move {
                match crate::acme::reclaim_stuck_validations(&engine, &runner).await? {
                    0 => {}
                    n => tracing::info!(
                        count = n,
                        "validating ACME challenges again that a stopped process left unfinished"
                    ),
                }
                crate::acme::fail_interrupted_orders(&engine).await?;
                Ok::<_, certkeeper_acme::AcmeError>(())
            }
        });
    }

    let acme_service = services.acme.clone();
    jobs.every(
        Every::new("acme-prune", every.acme_prune)
            .after_first_interval()
            .leased(leases.clone()),
        move || {
            let acme = acme_service.clone();
            async move {
                let pruned = acme.prune_expired().await?;
                if !pruned.is_empty() {
                    tracing::info!(
                        orders = pruned.orders,
                        authorizations = pruned.authorizations,
                        challenges = pruned.challenges,
                        rate_limits = pruned.rate_limits,
                        nonces = pruned.nonces,
                        "pruned expired ACME records"
                    );
                }
                Ok::<_, crate::error::Error>(())
            }
        },
    );

    let discovery = services.discovery.clone();
    jobs.every(
        Every::new("discovery-schedules", every.discovery_schedules),
        move || {
            let discovery = discovery.clone();
            async move { discovery.run_due().await }
        },
    );

    let alerts = services.alerts.clone();
    jobs.every(
        Every::new("alert-sweep", every.alert_sweep).leased(leases),
        move || {
            let alerts = alerts.clone();
            async move {
                let r = alerts.sweep().await?;
                if r.fired > 0 {
                    tracing::info!(fired = r.fired, "alert sweep");
                }
                Ok::<_, crate::error::Error>(())
            }
        },
    );

    // Each tick (or wake-up by an on-demand sweep) starts a delivery pass without waiting
    // for the previous one: a pass held up by a slow receiver keeps only that receiver's
    // channel, and the next pass serves the others. A shutdown does not wait for slow
    // receivers: rows being sent stay leased and are sent again (same event id) once
    // their lease runs out.
    let alerts = services.alerts.clone();
    let runner = jobs.clone();
    jobs.every(
        Every::new("alert-delivery", every.alert_delivery)
            .grace(Duration::ZERO)
            .woken_by(alerts.delivery_wake()),
        move || {
            let alerts = alerts.clone();
            runner.submit("alert-delivery-pass", async move {
                if let Err(e) = alerts.deliver_due().await {
                    tracing::error!(error = %e, "alert delivery pass failed");
                }
            });
            std::future::ready(Ok::<_, crate::error::Error>(()))
        },
    );
}
