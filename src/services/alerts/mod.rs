//! Expiry alerts and lifecycle events, delivered to chat, webhooks and email.
//!
//! - [`rules`]: which certificates a rule watches and the threshold windows a sweep fires.
//! - [`events`]: event types and the lifecycle hooks (issued, renewed, revoked, ...) that
//!   other parts of the server call; see [`emit`].
//! - [`render`]: the payload of each channel flavour (CloudEvents webhook, Slack, Teams,
//!   Discord, email).
//! - [`deliver`]: the outbox worker: leases, HTTP/SMTP sending, retries and pacing.
//! - [`channels`]: channel settings and their sealed secrets.
//!
//! ## Where certificates come from
//! The sweep reads the `alert_inventory` view (migration 0004), today a projection of the
//! `certificates` table with `source = 'issued'`. Discovery joins by replacing the view in
//! its own migration with a `UNION ALL` of its inventory table projected to the same
//! columns (`certificate_id, fingerprint, ca_id, profile_name, subject, common_name, sans,
//! not_after, status, source`) with `source = 'discovered'`, an index on its `not_after`,
//! and its names in `certificate_names` (or an equivalent table the SAN selector reads).
//! Tags live in `inventory_tags`, keyed by fingerprint, so they apply to either source.
//!
//! ## Guarantees
//! - A notification is written to the outbox (with the dedup row that caused it) in one
//!   transaction before anything is sent; a crash loses nothing.
//! - `alert_fired` has the primary key (rule, fingerprint, slot): each threshold fires
//!   once per certificate and rule, on any number of replicas; a renewed certificate has a
//!   new fingerprint and starts fresh, and the certificate it replaced stops alerting.
//! - Outbox rows are leased before sending, so two replicas never send the same row; a
//!   row is marked delivered only after the receiver accepted it. A crash between the
//!   receiver's answer and that mark means one more delivery of the same event id
//!   (at-least-once); receivers can drop repeats by the CloudEvents `id`.

pub mod channels;
pub mod deliver;
mod email;
pub mod events;
pub mod render;
pub mod rules;

use std::sync::Arc;

use tokio::sync::watch;

pub use deliver::{Alerts, DeliveryReport, Outcome};
pub use events::{EventKind, emit};
pub use rules::SweepReport;

use crate::services::pki::Pki;

/// The alerting background task: a sweep every `jobs.alert_sweep` and an outbox pass
/// every `jobs.alert_delivery`, until `stop` changes.
pub async fn run(pki: Arc<Pki>, mut stop: watch::Receiver<bool>) {
    let alerts = Alerts::new(pki.clone());
    let settings = pki.settings();
    let mut sweep_tick = tokio::time::interval(settings.jobs.alert_sweep);
    let mut deliver_tick = tokio::time::interval(settings.jobs.alert_delivery);
    loop {
        tokio::select! {
            _ = sweep_tick.tick() => {
                match alerts.sweep().await {
                    Ok(r) if r.fired > 0 => tracing::info!(fired = r.fired, "alert sweep"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "alert sweep failed"),
                }
            }
            _ = deliver_tick.tick() => {
                // A shutdown does not wait for slow receivers: rows being sent stay leased
                // and are sent again (same event id) once their lease runs out.
                tokio::select! {
                    r = alerts.deliver_due() => {
                        if let Err(e) = r {
                            tracing::error!(error = %e, "alert delivery failed");
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
            _ = stop.changed() => break,
        }
    }
}
