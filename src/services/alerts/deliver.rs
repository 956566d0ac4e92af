//! The outbox worker: lease due rows, send them, record the result.
//!
//! Each channel is delivered to on its own: its due rows are leased a few at a time and
//! sent one after another, while up to `alerts.concurrency` channels are served at once,
//! so a slow or dead receiver holds up only its own channel. A channel already being
//! served in this process is skipped by a further pass until that one ends.
//!
//! Failures are retried with exponential backoff (`alerts.retry_base`, doubling,
//! at most an hour), never sooner than a `Retry-After` the receiver asked for (HTTP 429 or
//! 503); after `alerts.max_attempts` attempts a row is dead. Sends to one channel are paced
//! (Slack: one a second; Discord: five every two seconds) within this replica, outbox and
//! test sends alike, in one place (`Pacer`). Of a receiver's answer at most
//! [`MAX_ANSWER_BYTES`] are read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use aws_lc_rs::hmac;
use serde::Serialize;

use super::channels::{self, ChannelSecrets};
use super::events::test_event;
use super::render;
use super::rules::{self, SweepReport};
use crate::error::Error;
use crate::services::pki::Pki;
use crate::store::{ChannelRecord, Claimed, NewEvent};

/// How long a lease lasts; a replica that dies mid-send frees its rows after this.
const LEASE_SECONDS: i64 = 300;
/// The longest one HTTP send may take, the receiver's answer included.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of a receiver's answer that is read: the start of an error answer is kept
/// (and Discord's `retry_after` is in it); the rest is never read.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024;
/// Longest wait between attempts.
const MAX_BACKOFF_SECONDS: i64 = 3600;
/// Header carrying the generic webhook's signature.
pub const SIGNATURE_HEADER: &str = "x-certkeeper-signature";

/// The result of one send.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "lowercase")]
#[schema(as = AlertSendOutcome)]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered {
        /// HTTP status, if HTTP.
        status: Option<u16>,
    },
    /// It did not.
    Failed {
        /// HTTP status, if any.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// Seconds the receiver asked us to wait.
        retry_after: Option<i64>,
    },
}

/// What one outbox pass did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DeliveryReport {
    /// Rows delivered.
    pub delivered: usize,
    /// Rows that failed and will be retried.
    pub retried: usize,
    /// Rows that failed for the last time.
    pub dead: usize,
}

/// The alerting service: sweeps, delivery and test sends.
pub struct Alerts {
    pub(super) pki: Arc<Pki>,
    http: reqwest::Client,
    pacer: Pacer,
    /// Channels being delivered to by a pass in this process.
    busy: Mutex<HashSet<String>>,
    /// One permit per channel being delivered to (`alerts.concurrency`).
    slots: Semaphore,
    /// Notified when there is something to deliver now (see [`Alerts::delivery_wake`]).
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").finish_non_exhaustive()
    }
}

/// Per-channel pacing, the one place that says how often a channel may be sent to; every
/// send (outbox and test) waits its turn here.
#[derive(Debug, Default)]
struct Pacer {
    next: Mutex<HashMap<String, tokio::time::Instant>>,
}

impl Pacer {
    /// Minimum time between two sends to one channel of this kind.
    fn gap(kind: &str) -> Duration {
        match kind {
            "slack" => Duration::from_secs(1),
            "discord" => Duration::from_millis(400),
            _ => Duration::ZERO,
        }
    }

    /// Wait until channel `ch` may be sent to, and book the next turn.
    async fn wait_turn(&self, ch: &ChannelRecord) {
        let gap = Pacer::gap(&ch.kind);
        if gap.is_zero() {
            return;
        }
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            let at = next.get(&ch.id).copied().unwrap_or(now).max(now);
            next.insert(ch.id.clone(), at + gap);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// The longest one send to a channel of this kind may take, its pacing included.
fn send_bound(kind: &str) -> Duration {
    let send = if kind == "email" {
        super::email::SEND_TIMEOUT
    } else {
        HTTP_TIMEOUT
    };
    send + Pacer::gap(kind)
}

/// Rows of one channel leased at a time: as many as can surely be sent within half a
/// lease, so a lease never runs out under a send that is still under way.
fn rows_per_round(kind: &str) -> i64 {
    let bound = send_bound(kind).as_secs().max(1) as i64;
    (LEASE_SECONDS / 2 / bound).max(1)
}

/// A channel marked busy in `Alerts::busy`; unmarked when dropped (finished or
/// cancelled).
struct BusyChannel<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for BusyChannel<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl DeliveryReport {
    fn add(&mut self, other: &DeliveryReport) {
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.dead += other.dead;
    }
}

/// Read at most `cap` bytes of a response body; the rest is left unread (the connection
/// is then closed, not reused).
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < cap {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(cap - out.len());
                out.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(key: &[u8], t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

fn retry_after(resp: &reqwest::Response, now: i64) -> Option<i64> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    if let Ok(s) = v.trim().parse::<i64>() {
        return Some(s.clamp(0, 86_400));
    }
    let at = time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc2822)
        .ok()?;
    Some((at.unix_timestamp() - now).clamp(0, 86_400))
}

impl Alerts {
    /// A service over `pki`.
    pub fn new(pki: Arc<Pki>) -> Alerts {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("certkeeper/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let slots = Semaphore::new(pki.settings().alerts.concurrency);
        Alerts {
            pki,
            http,
            pacer: Pacer::default(),
            busy: Mutex::new(HashSet::new()),
            slots,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notified when alerts are queued that should go out now (an on-demand sweep): the
    /// delivery job runs a pass when it is.
    pub fn delivery_wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Ask the delivery job for a pass now.
    pub(super) fn wake_delivery(&self) {
        self.wake.notify_one();
    }

    /// Evaluate every rule now.
    pub async fn sweep(&self) -> Result<SweepReport, Error> {
        rules::sweep(&self.pki).await
    }

    /// Send every due outbox row: every channel with due rows that no other pass in this
    /// process is serving is served until it has none due, up to `alerts.concurrency`
    /// channels at once. A channel that fails (its settings cannot be read, the database
    /// errs) does not stop the others; the first such error is returned after all ended.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, Error> {
        let now = self.pki.now().unix_timestamp();
        let due = self.pki.store().due_outbox_channels(now).await?;
        let mine: Vec<BusyChannel<'_>> = {
            let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
            due.into_iter()
                .filter(|id| busy.insert(id.clone()))
                .map(|id| BusyChannel {
                    set: &self.busy,
                    id,
                })
                .collect()
        };
        let results = futures::future::join_all(mine.into_iter().map(|b| async move {
            // The semaphore is never closed.
            let _slot = self.slots.acquire().await;
            let r = self.deliver_channel(&b.id).await;
            drop(b);
            r
        }))
        .await;
        let mut report = DeliveryReport::default();
        let mut first_error = None;
        for r in results {
            match r {
                Ok(r) => report.add(&r),
                Err(e) => {
                    tracing::error!(error = %e, "alert delivery to a channel failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Serve one channel until it has no due rows: lease a few, send them in order,
    /// record each result.
    async fn deliver_channel(&self, channel_id: &str) -> Result<DeliveryReport, Error> {
        let store = self.pki.store();
        let ch = store.get_channel(channel_id).await?;
        let sec = channels::secrets(&self.pki, &ch)?;
        let per_round = rows_per_round(&ch.kind);
        let mut report = DeliveryReport::default();
        loop {
            let now = self.pki.now().unix_timestamp();
            let batch = store
                .claim_outbox(&ch.id, now, now + LEASE_SECONDS, per_round)
                .await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for c in batch {
                let outcome = self.send_with(&ch, &sec, &c.event).await;
                self.record(&ch, &c, outcome, &mut report).await?;
            }
        }
    }

    /// Record the outcome of sending outbox row `c`.
    async fn record(
        &self,
        ch: &ChannelRecord,
        c: &Claimed,
        outcome: Outcome,
        report: &mut DeliveryReport,
    ) -> Result<(), Error> {
        let store = self.pki.store();
        let settings = self.pki.settings();
        let now = self.pki.now().unix_timestamp();
        match outcome {
            Outcome::Delivered { status } => {
                store
                    .outbox_delivered(c, status.map(i64::from), now)
                    .await?;
                report.delivered += 1;
            }
            Outcome::Failed {
                status,
                error,
                retry_after,
            } => {
                let attempts = c.attempts + 1;
                let retry_at = if attempts >= i64::from(settings.alerts.max_attempts) {
                    report.dead += 1;
                    None
                } else {
                    report.retried += 1;
                    let backoff = (settings.alerts.retry_base.as_secs() as i64)
                        .saturating_mul(1 << (attempts - 1).min(20))
                        .min(MAX_BACKOFF_SECONDS);
                    Some(now + backoff.max(retry_after.unwrap_or(0)))
                };
                tracing::warn!(outbox = %c.id, channel = %ch.name, attempts, error = %error, dead = retry_at.is_none(), "alert delivery failed");
                store
                    .outbox_failed(c, status.map(i64::from), &error, retry_at)
                    .await?;
            }
        }
        Ok(())
    }

    /// Send a test message to a channel at once (not through the outbox).
    pub async fn send_test(&self, ch: &ChannelRecord) -> Result<Outcome, Error> {
        let sec = channels::secrets(&self.pki, ch)?;
        let event = test_event(self.pki.now().unix_timestamp());
        Ok(self.send_with(ch, &sec, &event).await)
    }

    async fn send_with(&self, ch: &ChannelRecord, sec: &ChannelSecrets, e: &NewEvent) -> Outcome {
        self.pacer.wait_turn(ch).await;
        if ch.kind == "email" {
            return match channels::email_config(ch) {
                Ok(cfg) => send_email(&ch.id, &cfg, sec, e).await,
                Err(err) => Outcome::Failed {
                    status: None,
                    error: err.to_string(),
                    retry_after: None,
                },
            };
        }
        let Some(url) = &sec.url else {
            return Outcome::Failed {
                status: None,
                error: "the channel has no URL".into(),
                retry_after: None,
            };
        };
        let summary = render::summarize(e);
        let (body, content_type) = match ch.kind.as_str() {
            "slack" => (render::slack(&summary), "application/json"),
            "teams" => (render::teams(&summary), "application/json"),
            "discord" => (render::discord(&summary), "application/json"),
            _ => (
                render::cloudevent(e, &self.pki.settings().server.public_url),
                "application/cloudevents+json; charset=utf-8",
            ),
        };
        let body = body.to_string().into_bytes();
        let mut req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type);
        if ch.kind == "webhook" {
            for (k, v) in &sec.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(key) = &sec.hmac_key {
                let t = self.pki.now().unix_timestamp();
                req = req.header(SIGNATURE_HEADER, signature(key.as_bytes(), t, &body));
            }
        }
        match req.body(body).send().await {
            Ok(resp) if resp.status().is_success() => Outcome::Delivered {
                status: Some(resp.status().as_u16()),
            },
            Ok(resp) => {
                let status = resp.status();
                let now = self.pki.now().unix_timestamp();
                let mut wait = retry_after(&resp, now);
                let text = read_capped(resp, MAX_ANSWER_BYTES).await;
                let text = String::from_utf8_lossy(&text);
                if wait.is_none() && status.as_u16() == 429 {
                    // Discord puts it in the body, in (fractional) seconds.
                    wait = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["retry_after"].as_f64())
                        .map(|s| s.ceil() as i64);
                }
                Outcome::Failed {
                    status: Some(status.as_u16()),
                    error: format!(
                        "HTTP {status}: {}",
                        text.chars().take(200).collect::<String>()
                    ),
                    retry_after: wait,
                }
            }
            Err(err) => Outcome::Failed {
                status: None,
                // Without the URL: Slack, Teams and Discord URLs are credentials.
                error: format!("request failed: {}", err.without_url()),
                retry_after: None,
            },
        }
    }
}

async fn send_email(
    channel_id: &str,
    cfg: &channels::EmailConfig,
    sec: &ChannelSecrets,
    e: &NewEvent,
) -> Outcome {
    match super::email::send(channel_id, cfg, sec, e).await {
        Ok(code) => Outcome::Delivered { status: Some(code) },
        Err(error) => Outcome::Failed {
            status: None,
            error,
            retry_after: None,
        },
    }
}
