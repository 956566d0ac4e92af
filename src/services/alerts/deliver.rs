//! The outbox worker: lease due rows, send them, record the result.
//!
//! Failures are retried with exponential backoff (`alerts.retry_base`, doubling,
//! at most an hour), never sooner than a `Retry-After` the receiver asked for (HTTP 429 or
//! 503); after `alerts.max_attempts` attempts a row is dead. Sends to one channel are paced
//! (Slack: one a second; Discord: five every two seconds) within this replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use serde::Serialize;

use super::channels::{self, ChannelSecrets};
use super::events::test_event;
use super::render;
use super::rules::{self, SweepReport};
use crate::error::Error;
use crate::services::pki::Pki;
use crate::store::{ChannelRecord, NewEvent};

/// Rows leased per round.
const BATCH: i64 = 50;
/// How long a lease lasts; a replica that dies mid-send frees its rows after this.
const LEASE_SECONDS: i64 = 300;
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
    pacing: Mutex<HashMap<String, tokio::time::Instant>>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").finish_non_exhaustive()
    }
}

/// Minimum time between two sends to one channel of this kind.
fn pace(kind: &str) -> Duration {
    match kind {
        "slack" => Duration::from_secs(1),
        "discord" => Duration::from_millis(400),
        _ => Duration::ZERO,
    }
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
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("certkeeper/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Alerts {
            pki,
            http,
            pacing: Mutex::new(HashMap::new()),
        }
    }

    /// Evaluate every rule now.
    pub async fn sweep(&self) -> Result<SweepReport, Error> {
        rules::sweep(&self.pki).await
    }

    /// Send every due outbox row (in rounds, until none is due).
    pub async fn deliver_due(&self) -> Result<DeliveryReport, Error> {
        let store = self.pki.store();
        let settings = self.pki.settings();
        let mut report = DeliveryReport::default();
        let mut channels: HashMap<String, (ChannelRecord, ChannelSecrets)> = HashMap::new();
        loop {
            let now = self.pki.now().unix_timestamp();
            let batch = store.claim_outbox(now, now + LEASE_SECONDS, BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for c in batch {
                if !channels.contains_key(&c.channel_id) {
                    let ch = store.get_channel(&c.channel_id).await?;
                    let sec = channels::secrets(&self.pki, &ch)?;
                    channels.insert(c.channel_id.clone(), (ch, sec));
                }
                let Some((ch, sec)) = channels.get(&c.channel_id) else {
                    continue;
                };
                let outcome = self.send_with(ch, sec, &c.event).await;
                let now = self.pki.now().unix_timestamp();
                match outcome {
                    Outcome::Delivered { status } => {
                        store
                            .outbox_delivered(&c, status.map(i64::from), now)
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
                            .outbox_failed(&c, status.map(i64::from), &error, retry_at)
                            .await?;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Send a test message to a channel at once (not through the outbox).
    pub async fn send_test(&self, ch: &ChannelRecord) -> Result<Outcome, Error> {
        let sec = channels::secrets(&self.pki, ch)?;
        let event = test_event(self.pki.now().unix_timestamp());
        Ok(self.send_with(ch, &sec, &event).await)
    }

    async fn wait_turn(&self, ch: &ChannelRecord) {
        let gap = pace(&ch.kind);
        if gap.is_zero() {
            return;
        }
        let wait = {
            let mut p = self.pacing.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            let at = p.get(&ch.id).copied().unwrap_or(now).max(now);
            p.insert(ch.id.clone(), at + gap);
            at
        };
        tokio::time::sleep_until(wait).await;
    }

    async fn send_with(&self, ch: &ChannelRecord, sec: &ChannelSecrets, e: &NewEvent) -> Outcome {
        self.wait_turn(ch).await;
        if ch.kind == "email" {
            return match channels::email_config(ch) {
                Ok(cfg) => send_email(&cfg, sec, e).await,
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
                let text = resp.text().await.unwrap_or_default();
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

async fn send_email(cfg: &channels::EmailConfig, sec: &ChannelSecrets, e: &NewEvent) -> Outcome {
    match super::email::send(cfg, sec, e).await {
        Ok(code) => Outcome::Delivered { status: Some(code) },
        Err(error) => Outcome::Failed {
            status: None,
            error,
            retry_after: None,
        },
    }
}
