//! Administration of alerting: channels, rules, the outbox, certificate tags and an
//! on-demand sweep. Each change writes its audit event; rule changes clear the rule cache.

use serde_json::json;

use super::Alerts;
use super::channels::{self, NewChannel};
use super::deliver::Outcome;
use super::events::{EventKind, SUBSCRIBABLE};
use super::rules::{DEFAULT_THRESHOLDS, SweepReport, normalize_thresholds};
use crate::error::Error;
use crate::services::pki::Actor;
use crate::store::{ChannelRecord, OutboxRecord, RuleRecord, Selector, StoreError, new_id};

/// What a new rule is created with.
#[derive(Debug, Clone, Default)]
pub struct NewRule {
    /// Unique name, 1 to 100 characters (trimmed).
    pub name: String,
    /// Channels by id or name; at least one.
    pub channels: Vec<String>,
    /// Which certificates the rule watches.
    pub selector: Selector,
    /// Days before expiry to fire at; the defaults when absent.
    pub thresholds: Option<Vec<u32>>,
    /// Lifecycle events to deliver.
    pub events: Vec<String>,
    /// Remind daily inside the last threshold.
    pub daily_reminder: bool,
    /// One message per sweep instead of one per certificate.
    pub digest: bool,
    /// Whether the rule is evaluated.
    pub enabled: bool,
}

/// A certificate's SHA-256 fingerprint in lower-case hex, or a refusal.
fn check_fingerprint(fp: &str) -> Result<String, Error> {
    let fp = fp.to_ascii_lowercase();
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::BadRequest(
            "the fingerprint must be the certificate's SHA-256 in 64 hex digits".into(),
        ));
    }
    Ok(fp)
}

impl Alerts {
    /// Every channel.
    pub async fn list_channels(&self) -> Result<Vec<ChannelRecord>, Error> {
        Ok(self.pki.store().list_channels().await?)
    }

    /// One channel, by id or name.
    pub async fn channel(&self, id: &str) -> Result<ChannelRecord, Error> {
        Ok(self.pki.store().get_channel(id).await?)
    }

    /// Check and record a channel; its secrets are sealed.
    pub async fn create_channel(
        &self,
        new: NewChannel,
        actor: &Actor,
    ) -> Result<ChannelRecord, Error> {
        let id = new_id();
        let now = self.pki.now().unix_timestamp();
        let rec = channels::prepare(&self.pki, &id, new, now)?;
        let ev = actor
            .event("alert_channel.create", "alert_channel")
            .object(&id)
            .detail(json!({"name": rec.name, "kind": rec.kind}));
        match self.pki.store().insert_channel(&rec, &ev, now).await {
            Err(StoreError::Conflict(_)) => Err(Error::Conflict(format!(
                "an alert channel named {:?} already exists",
                rec.name
            ))),
            other => other.map_err(Error::from),
        }?;
        Ok(rec)
    }

    /// Delete a channel.
    pub async fn delete_channel(&self, id: &str, actor: &Actor) -> Result<(), Error> {
        let ch = self.pki.store().get_channel(id).await?;
        let ev = actor
            .event("alert_channel.delete", "alert_channel")
            .object(&ch.id)
            .detail(json!({"name": ch.name}));
        self.pki
            .store()
            .delete_channel(&ch.id, &ev, self.pki.now().unix_timestamp())
            .await?;
        Ok(())
    }

    /// Send a test message to a channel at once, and record that it was sent.
    pub async fn test_channel(&self, id: &str, actor: &Actor) -> Result<Outcome, Error> {
        let ch = self.pki.store().get_channel(id).await?;
        let outcome = self.send_test(&ch).await?;
        let ev = actor
            .event("alert_channel.test", "alert_channel")
            .object(&ch.id);
        self.pki
            .store()
            .audit(&ev, self.pki.now().unix_timestamp())
            .await?;
        Ok(outcome)
    }

    /// Check and record a rule.
    pub async fn create_rule(&self, new: NewRule, actor: &Actor) -> Result<RuleRecord, Error> {
        let store = self.pki.store();
        let name = new.name.trim().to_string();
        if name.is_empty() || name.len() > 100 {
            return Err(Error::BadRequest("name must be 1 to 100 characters".into()));
        }
        if new.channels.is_empty() {
            return Err(Error::BadRequest(
                "channels must name at least one channel".into(),
            ));
        }
        let mut channel_ids = Vec::new();
        for c in &new.channels {
            match store.get_channel(c).await {
                Ok(ch) => channel_ids.push(ch.id),
                Err(StoreError::NotFound(_)) => {
                    return Err(Error::BadRequest(format!("no alert channel {c:?}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        channel_ids.sort();
        channel_ids.dedup();
        let thresholds = match new.thresholds {
            None => DEFAULT_THRESHOLDS.to_vec(),
            Some(t) => {
                if t.len() > 10 || t.iter().any(|d| *d == 0 || *d > 3650) {
                    return Err(Error::BadRequest(
                        "thresholds are at most 10 numbers of days between 1 and 3650".into(),
                    ));
                }
                normalize_thresholds(&t)
            }
        };
        for e in &new.events {
            if EventKind::subscribable(e).is_none() {
                let known: Vec<&str> = SUBSCRIBABLE.iter().map(|k| k.short()).collect();
                return Err(Error::BadRequest(format!(
                    "unknown event {e:?}; known: {}",
                    known.join(", ")
                )));
            }
        }
        if thresholds.is_empty() && new.events.is_empty() {
            return Err(Error::BadRequest(
                "a rule needs thresholds or events".into(),
            ));
        }
        let mut selector = new.selector;
        if let Some(ca) = &selector.ca_id {
            match store.get_ca(ca).await {
                Ok(c) => selector.ca_id = Some(c.id),
                Err(StoreError::NotFound(_)) => {
                    return Err(Error::BadRequest(format!("no CA {ca:?}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(san) = &selector.san
            && (san.trim().is_empty() || san.len() > 253)
        {
            return Err(Error::BadRequest(
                "selector.san must be 1 to 253 characters".into(),
            ));
        }
        if selector.tags.iter().any(|t| t.is_empty() || t.len() > 100) {
            return Err(Error::BadRequest("tags must be 1 to 100 characters".into()));
        }
        let now = self.pki.now().unix_timestamp();
        let rec = RuleRecord {
            id: new_id(),
            name,
            selector,
            thresholds,
            channels: channel_ids,
            events: new.events,
            daily_reminder: new.daily_reminder,
            digest: new.digest,
            enabled: new.enabled,
            created_at: now,
        };
        let ev = actor
            .event("alert_rule.create", "alert_rule")
            .object(&rec.id)
            .detail(json!({"name": rec.name}));
        match store.insert_rule(&rec, &ev, now).await {
            Err(StoreError::Conflict(_)) => Err(Error::Conflict(format!(
                "an alert rule named {:?} already exists",
                rec.name
            ))),
            other => other.map_err(Error::from),
        }?;
        self.pki.invalidate_alert_rules();
        Ok(rec)
    }

    /// Every rule.
    pub async fn list_rules(&self) -> Result<Vec<RuleRecord>, Error> {
        Ok(self.pki.store().list_rules().await?)
    }

    /// One rule, by id or name.
    pub async fn rule(&self, id: &str) -> Result<RuleRecord, Error> {
        Ok(self.pki.store().get_rule(id).await?)
    }

    /// Delete a rule (and what it has fired).
    pub async fn delete_rule(&self, id: &str, actor: &Actor) -> Result<(), Error> {
        let r = self.pki.store().get_rule(id).await?;
        let ev = actor
            .event("alert_rule.delete", "alert_rule")
            .object(&r.id)
            .detail(json!({"name": r.name}));
        self.pki
            .store()
            .delete_rule(&r.id, &ev, self.pki.now().unix_timestamp())
            .await?;
        self.pki.invalidate_alert_rules();
        Ok(())
    }

    /// Up to `limit` (1 to 1000) outbox rows, newest first, of one status (`pending`,
    /// `delivered`, `dead`) or all, after the keyset position `after` (the previous page's
    /// last `(created_at, id)`).
    pub async fn outbox(
        &self,
        status: Option<&str>,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<OutboxRecord>, Error> {
        if let Some(s) = status
            && !matches!(s, "pending" | "delivered" | "dead")
        {
            return Err(Error::BadRequest(
                "status must be pending, delivered or dead".into(),
            ));
        }
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
        }
        Ok(self
            .pki
            .store()
            .list_outbox_page(status, after, limit)
            .await?)
    }

    /// Send dead notifications again: the outbox row `id`, or every dead row when `id` is
    /// none, goes back to pending with its attempts counted afresh, and the delivery job is
    /// woken to send it. Returns how many rows were put back. A row that is not dead is
    /// refused (409).
    pub async fn retry_dead(&self, id: Option<&str>, actor: &Actor) -> Result<u64, Error> {
        let ev = actor.event("alert_outbox.retry", "alert_outbox");
        let ev = match id {
            Some(id) => ev.object(id),
            None => ev.detail(json!({"all_dead": true})),
        };
        let n = self
            .pki
            .store()
            .outbox_retry(id, &ev, self.pki.now().unix_timestamp())
            .await?;
        if n > 0 {
            self.wake_delivery();
        }
        Ok(n)
    }

    /// Evaluate every rule now and queue what fired; the delivery job is woken to send
    /// it (and anything else due), so the caller never waits on a receiver.
    pub async fn sweep_and_queue(&self) -> Result<SweepReport, Error> {
        let sweep = self.sweep().await?;
        self.wake_delivery();
        Ok(sweep)
    }

    /// A certificate's tags; the fingerprint as normalised, and the tags.
    pub async fn tags(&self, fingerprint: &str) -> Result<(String, Vec<String>), Error> {
        let fp = check_fingerprint(fingerprint)?;
        let tags = self.pki.store().tags_of(&fp).await?;
        Ok((fp, tags))
    }

    /// Replace a certificate's tags (the `tags` selector of rules matches them); returns
    /// the fingerprint as normalised and the tags, sorted and without repeats.
    pub async fn set_tags(
        &self,
        fingerprint: &str,
        given: &[String],
        actor: &Actor,
    ) -> Result<(String, Vec<String>), Error> {
        let fp = check_fingerprint(fingerprint)?;
        if given.len() > 32 {
            return Err(Error::BadRequest("at most 32 tags".into()));
        }
        let mut tags: Vec<String> = Vec::new();
        for t in given {
            let ok = !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
            if !ok {
                return Err(Error::BadRequest(format!(
                    "tag {t:?} must be 1 to 64 letters, digits or - _ . : /"
                )));
            }
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        tags.sort();
        let ev = actor
            .event("certificate.tag", "certificate")
            .object(&fp)
            .detail(json!({"tags": tags}));
        self.pki
            .store()
            .set_tags(&fp, &tags, &ev, self.pki.now().unix_timestamp())
            .await?;
        Ok((fp, tags))
    }
}
