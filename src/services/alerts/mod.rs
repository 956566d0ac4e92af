//! Expiry alerts and lifecycle events, delivered to chat, webhooks and email.
//!
//! - [`rules`]: which certificates a rule watches and the threshold windows a sweep fires.
//! - [`events`]: event types and the lifecycle hooks (issued, renewed, revoked, ...) that
//!   other parts of the server call; see [`emit`].
//! - [`render`]: the payload of each channel flavour (CloudEvents webhook, Slack, Teams,
//!   Discord, email).
//! - [`deliver`]: the outbox worker: leases, HTTP/SMTP sending, retries and pacing.
//! - [`channels`]: channel settings and their sealed secrets.
//! - administration (channels, rules, outbox, tags): methods of [`Alerts`].
//!
//! ## Where certificates come from
//! The sweep reads the `alert_inventory` view (migration 0004), today a projection of the
//! `certificates` table with `source = 'issued'`. Discovery joins by replacing the view in
//! its own migration with a `UNION ALL` of its inventory table projected to the same
//! columns (`certificate_id, fingerprint, ca_id, profile_name, subject, common_name, sans,
//! not_after, status, source`, and since migration 0021 `added_at`) with `source = 'discovered'`, an index on its `not_after`,
//! and its names in `certificate_names` (or an equivalent table the SAN selector reads).
//! Tags live in `inventory_tags`, keyed by fingerprint, so they apply to either source.
//!
//! ## Guarantees
//! - A notification is written to the outbox (with the dedup row that caused it) in one
//!   transaction before anything is sent; a crash loses nothing.
//! - `alert_fired` has the primary key (rule, fingerprint, slot): each threshold fires
//!   once per certificate and rule, on any number of replicas; a renewed certificate has a
//!   new fingerprint and starts fresh, and the certificate it replaced stops alerting.
//! - A sweep reads only what moved since the rule's previous sweep (recorded in
//!   `alert_sweeps`, shared by replicas, in the sweep's transaction): rows whose expiry
//!   entered a window since then, and rows added (or seen again by discovery) since then.
//!   A rule that is new, or whose thresholds or selector changed, is swept in full once;
//!   so are rules with tag selectors after a certificate's tags change. After the clock
//!   went back, a sweep reads only added rows and records the earlier time, so the next
//!   ones re-read from there (finding what already fired); a clock that jumped ahead
//!   reads whole windows, like a full sweep.
//! - Outbox rows are leased before sending, so two replicas never send the same row; a
//!   row is marked delivered only after the receiver accepted it. A crash between the
//!   receiver's answer and that mark means one more delivery of the same event id
//!   (at-least-once); receivers can drop repeats by the CloudEvents `id`.

mod admin;
pub mod channels;
pub mod deliver;
mod email;
pub mod events;
pub mod render;
pub mod rules;

pub use admin::NewRule;
pub use deliver::{Alerts, DeliveryReport, Outcome};
pub use events::{EventKind, emit};
pub use rules::SweepReport;
