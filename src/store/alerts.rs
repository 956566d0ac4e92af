//! Alert rules, channels, fired thresholds, events and the delivery outbox.
//!
//! The expiry sweep is set-based: one `INSERT ... SELECT ... ON CONFLICT DO NOTHING
//! RETURNING` per threshold window over the `alert_inventory` view (an index range on
//! `certificates.not_after`), so its cost follows the number of certificates crossing a
//! threshold, not the size of the inventory. The primary key of `alert_fired` is the
//! deduplication across sweeps and replicas. `alert_sweeps` remembers each rule's last
//! sweep, so the next one reads only the rows whose expiry entered a window since, or
//! that were added since (see [`Store::sweep_rule`]).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::certs::{Arg, names_matching};
use super::writer::placeholders;
use super::{AuditEvent, Engine, Store, StoreError, new_id};

/// Which certificates a rule watches. Every field set must match (AND); none set means all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Issuing CA (id, or name in a request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_id: Option<String>,
    /// Profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// A DNS name or IP address in the certificate; `*.example.com` matches every name
    /// below `example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub san: Option<String>,
    /// The certificate carries at least one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only certificates found by discovery.
    #[serde(default)]
    pub discovered_only: bool,
}

/// A stored alert rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRecord {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Which certificates.
    pub selector: Selector,
    /// Days before expiry, largest first.
    pub thresholds: Vec<u32>,
    /// Channel ids to notify.
    pub channels: Vec<String>,
    /// Lifecycle event types this rule forwards (besides expiry alerts).
    pub events: Vec<String>,
    /// Once past the last threshold, remind every day until expiry.
    pub daily_reminder: bool,
    /// One message per sweep listing every crossing, instead of one per certificate.
    pub digest: bool,
    /// Whether the rule is evaluated.
    pub enabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A stored channel; its secrets stay sealed here.
#[derive(Debug, Clone)]
pub struct ChannelRecord {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `webhook`, `slack`, `teams`, `discord` or `email`.
    pub kind: String,
    /// Settings that may be shown (JSON object).
    pub config: serde_json::Value,
    /// Sealed JSON with the secrets (URL, HMAC key, headers, SMTP password).
    pub secret_sealed: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// What the inventory holds about a certificate that crossed a threshold.
#[derive(Debug, Clone, Serialize)]
pub struct FiredRow {
    /// Inventory id (`None` for a CA).
    pub certificate_id: Option<String>,
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// Subject DN.
    pub subject: String,
    /// Expiry (Unix seconds).
    pub not_after: i64,
    /// The threshold slot (`d14`, `expired`, `r20411`, `ca-d30`).
    pub slot: String,
}

/// Which rows a threshold window is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSource {
    /// The certificate inventory, filtered by the rule's selector.
    Certificates,
    /// Active CAs (the selector's `ca_id` alone applies).
    Cas,
}

/// One threshold window: rows with `lo < not_after <= hi` fire `slot`.
#[derive(Debug, Clone)]
pub struct Window {
    /// Dedup slot name.
    pub slot: String,
    /// Exclusive lower bound (Unix seconds).
    pub lo: i64,
    /// Inclusive upper bound (Unix seconds).
    pub hi: i64,
    /// Where from.
    pub source: WindowSource,
}

/// An event to deliver.
#[derive(Debug, Clone, Serialize)]
pub struct NewEvent {
    /// Id (the CloudEvents id).
    pub id: String,
    /// Type, e.g. `io.certkeeper.certificate.expiring`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it is about (a certificate or CA id).
    pub subject: Option<String>,
    /// Payload.
    pub data: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
}

/// An outbox row as shown by the API.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRecord {
    /// Id.
    pub id: String,
    /// Event id.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// Channel id.
    pub channel_id: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Next attempt (Unix seconds), while pending.
    pub next_attempt_at: i64,
    /// Last failure.
    pub last_error: Option<String>,
    /// Last HTTP status seen.
    pub last_status: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub delivered_at: Option<i64>,
}

/// A claimed outbox row with what is needed to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Outbox id.
    pub id: String,
    /// The lease token; results are recorded only under it.
    pub lease_token: String,
    /// Attempts before this one.
    pub attempts: i64,
    /// Channel id.
    pub channel_id: String,
    /// The event.
    pub event: NewEvent,
}

fn json_col<T: serde::de::DeserializeOwned>(r: &AnyRow, col: &str) -> Result<T, StoreError> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn flag(r: &AnyRow, col: &str) -> Result<bool, StoreError> {
    Ok(r.try_get::<i64, _>(col)? != 0)
}

fn row_to_rule(r: &AnyRow) -> Result<RuleRecord, StoreError> {
    Ok(RuleRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        selector: json_col(r, "selector")?,
        thresholds: json_col(r, "thresholds")?,
        channels: json_col(r, "channels")?,
        events: json_col(r, "events")?,
        daily_reminder: flag(r, "daily_reminder")?,
        digest: flag(r, "digest")?,
        enabled: flag(r, "enabled")?,
        created_at: r.try_get("created_at")?,
    })
}

fn row_to_channel(r: &AnyRow) -> Result<ChannelRecord, StoreError> {
    Ok(ChannelRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        config: json_col(r, "config")?,
        secret_sealed: r.try_get("secret_sealed")?,
        created_at: r.try_get("created_at")?,
    })
}

fn row_to_outbox(r: &AnyRow) -> Result<OutboxRecord, StoreError> {
    Ok(OutboxRecord {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("type")?,
        channel_id: r.try_get("channel_id")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        last_status: r.try_get("last_status")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

/// SQL conditions (over alias `i` of `alert_inventory`) for a selector; its parameters
/// are appended to `args` and numbered after those already there.
fn selector_sql(sel: &Selector, args: &mut Vec<Arg>) -> Vec<String> {
    let mut conds = Vec::new();
    let next = |a: Arg, args: &mut Vec<Arg>| {
        args.push(a);
        args.len()
    };
    if let Some(ca) = &sel.ca_id {
        let n = next(Arg::Text(ca.clone()), args);
        conds.push(format!("i.ca_id = ${n}"));
    }
    if let Some(p) = &sel.profile {
        let n = next(Arg::Text(p.clone()), args);
        conds.push(format!("i.profile_name = ${n}"));
    }
    if let Some(san) = &sel.san {
        let ids = names_matching(san, |a| next(a, args));
        conds.push(format!("i.certificate_id IN ({ids})"));
    }
    if !sel.tags.is_empty() {
        let ns: Vec<String> = sel
            .tags
            .iter()
            .map(|t| format!("${}", next(Arg::Text(t.clone()), args)))
            .collect();
        conds.push(format!(
            "i.fingerprint IN (SELECT fingerprint FROM inventory_tags WHERE tag IN ({}))",
            ns.join(", ")
        ));
    }
    if sel.discovered_only {
        conds.push("i.source = 'discovered'".into());
    }
    conds
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s),
            Arg::Int(i) => q.bind(i),
        };
    }
    q
}

const RULE_COLS: &str =
    "id, name, selector, thresholds, channels, events, daily_reminder, digest, enabled, created_at";
const OUTBOX_COLS: &str = "o.id, o.event_id, e.type, o.channel_id, o.status, o.attempts, o.next_attempt_at, o.last_error, o.last_status, o.created_at, o.delivered_at";

impl Store {
    /// Record a new rule.
    pub async fn insert_rule(
        &self,
        r: &RuleRecord,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "INSERT INTO alert_rules ({RULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&r.id)
        .bind(&r.name)
        .bind(serde_json::to_string(&r.selector).unwrap_or_default())
        .bind(serde_json::to_string(&r.thresholds).unwrap_or_default())
        .bind(serde_json::to_string(&r.channels).unwrap_or_default())
        .bind(serde_json::to_string(&r.events).unwrap_or_default())
        .bind(i64::from(r.daily_reminder))
        .bind(i64::from(r.digest))
        .bind(i64::from(r.enabled))
        .bind(r.created_at)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every rule, oldest first.
    pub async fn list_rules(&self) -> Result<Vec<RuleRecord>, StoreError> {
        self.all_rows(
            &format!("SELECT {RULE_COLS} FROM alert_rules ORDER BY created_at, id"),
            row_to_rule,
        )
        .await
    }

    /// A rule by id or name.
    pub async fn get_rule(&self, key: &str) -> Result<RuleRecord, StoreError> {
        self.one_by_key(
            &format!("SELECT {RULE_COLS} FROM alert_rules WHERE id = $1 OR name = $1"),
            key,
            row_to_rule,
            "alert rule",
        )
        .await
    }

    /// Delete a rule (and its dedup history).
    pub async fn delete_rule(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM alert_fired WHERE rule_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM alert_sweeps WHERE rule_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("alert rule {id:?}")));
        }
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Record a new channel.
    pub async fn insert_channel(
        &self,
        c: &ChannelRecord,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO alert_channels (id, name, kind, config, secret_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.kind)
        .bind(c.config.to_string())
        .bind(&c.secret_sealed)
        .bind(c.created_at)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every channel, oldest first.
    pub async fn list_channels(&self) -> Result<Vec<ChannelRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, kind, config, secret_sealed, created_at FROM alert_channels ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_channel).collect()
    }

    /// A channel by id or name.
    pub async fn get_channel(&self, key: &str) -> Result<ChannelRecord, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, kind, config, secret_sealed, created_at FROM alert_channels WHERE id = $1 OR name = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("alert channel {key:?}")))?;
        row_to_channel(&row)
    }

    /// Delete a channel; refused while a rule still names it.
    pub async fn delete_channel(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        if self
            .list_rules()
            .await?
            .iter()
            .any(|r| r.channels.iter().any(|c| c == id))
        {
            return Err(StoreError::Conflict(
                "the channel is still used by an alert rule".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM alert_channels WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("alert channel {id:?}")));
        }
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// When `rule_id` was last swept with the definition `rule_key` (see
    /// [`Store::sweep_rule`]); `None` when never, or with another definition.
    pub async fn swept_at(&self, rule_id: &str, rule_key: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT rule_key, swept_at FROM alert_sweeps WHERE rule_id = $1")
            .bind(rule_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) if r.try_get::<String, _>("rule_key")? == rule_key => {
                Ok(Some(r.try_get("swept_at")?))
            }
            _ => Ok(None),
        }
    }

    /// Fire every window of one rule and enqueue what `make_events` builds from the rows
    /// that fired for the first time, in one transaction: a crash either keeps both the
    /// dedup rows and the outbox rows, or neither. The same transaction records `now` as
    /// the rule's last sweep under `from.rule_key`.
    ///
    /// With `from.since` (the previous sweep of the same definition) a certificate window
    /// reads only the rows that moved since: those whose expiry entered the window
    /// (`not_after` in `(max(lo, hi - (now - since)), hi]`, a range of the `not_after`
    /// index) and those added or seen again since (`added_at`, less a margin
    /// for clock skew between replicas and transactions still open at the last sweep).
    /// Everything else in the window was there at the previous sweep, which fired it.
    pub async fn sweep_rule<F>(
        &self,
        rule: &RuleRecord,
        windows: &[Window],
        now: i64,
        from: &SweepFrom,
        make_events: F,
    ) -> Result<usize, StoreError>
    where
        F: FnOnce(Vec<FiredRow>) -> Vec<NewEvent>,
    {
        let mut tx = self.begin_write().await?;
        let mut fired = Vec::new();
        for w in windows {
            for (lo, added_after) in window_reads(w, now, from.since) {
                fired.extend(fire_window(&mut tx, rule, w, now, lo, added_after).await?);
            }
        }
        sqlx::query(
            "INSERT INTO alert_sweeps (rule_id, rule_key, swept_at) VALUES ($1, $2, $3)
             ON CONFLICT (rule_id) DO UPDATE SET rule_key = excluded.rule_key, swept_at = excluded.swept_at",
        )
        .bind(&rule.id)
        .bind(&from.rule_key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let n = fired.len();
        if n > 0 {
            let events = make_events(fired);
            insert_events(&mut tx, self.engine, &events, &rule.channels, now).await?;
        }
        tx.commit().await?;
        Ok(n)
    }
    /// Enqueue one event for the given channels.
    pub async fn enqueue_event(
        &self,
        event: &NewEvent,
        channels: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        if channels.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        insert_events(
            &mut tx,
            self.engine,
            std::slice::from_ref(event),
            channels,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the inventory row with this fingerprint matches a selector.
    pub async fn selector_matches(
        &self,
        selector: &Selector,
        fingerprint: &str,
    ) -> Result<bool, StoreError> {
        let mut args = vec![Arg::Text(fingerprint.to_string())];
        let conds = selector_sql(selector, &mut args);
        let extra: String = conds.iter().map(|c| format!(" AND {c}")).collect();
        let sql = format!("SELECT 1 AS x FROM alert_inventory i WHERE i.fingerprint = $1{extra}");
        Ok(bind_all(sqlx::query(&sql), args)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Whether another valid certificate with the same subject and names exists (this one
    /// is then a renewal).
    pub async fn has_predecessor(&self, certificate_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS x FROM certificates c JOIN certificates p ON p.subject = c.subject AND p.sans = c.sans
             WHERE c.id = $1 AND p.id <> c.id AND p.status = 'valid' AND p.not_after <= c.not_after",
        )
        .bind(certificate_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The channels that have outbox rows due and not leased at `now`.
    pub async fn due_outbox_channels(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT channel_id FROM alert_outbox
             WHERE status = 'pending' AND next_attempt_at <= $1 AND lease_until <= $1
             ORDER BY channel_id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("channel_id"))
            .collect::<Result<_, _>>()?)
    }

    /// Lease up to `limit` due outbox rows of channel `channel_id` until `lease_until`,
    /// oldest due first. A row leased by one replica is invisible to the others until its
    /// lease runs out.
    pub async fn claim_outbox(
        &self,
        channel_id: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let token = new_id();
        let lock = match self.engine {
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let ids: Vec<String> = sqlx::query(&format!(
            "UPDATE alert_outbox SET lease_until = $1, lease_token = $2
             WHERE id IN (SELECT id FROM alert_outbox WHERE channel_id = $5 AND status = 'pending' AND next_attempt_at <= $3 AND lease_until <= $3
                          ORDER BY next_attempt_at, id LIMIT $4{lock})
               AND status = 'pending' AND lease_until <= $3
             RETURNING id"
        ))
        .bind(lease_until)
        .bind(&token)
        .bind(now)
        .bind(limit)
        .bind(channel_id)
        .fetch_all(&self.writes)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let r = sqlx::query(
                "SELECT o.id, o.attempts, o.channel_id, o.next_attempt_at, e.id AS event_id, e.type, e.subject, e.data, e.created_at
                 FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id WHERE o.id = $1",
            )
            .bind(&id)
            .fetch_one(&self.pool)
            .await?;
            let due: i64 = r.try_get("next_attempt_at")?;
            out.push((
                due,
                Claimed {
                    id,
                    lease_token: token.clone(),
                    attempts: r.try_get("attempts")?,
                    channel_id: r.try_get("channel_id")?,
                    event: NewEvent {
                        id: r.try_get("event_id")?,
                        kind: r.try_get("type")?,
                        subject: r.try_get("subject")?,
                        data: json_col(&r, "data")?,
                        created_at: r.try_get("created_at")?,
                    },
                },
            ));
        }
        // In the order they became due, as the sending order.
        out.sort_by(|(a, x), (b, y)| (a, &x.id).cmp(&(b, &y.id)));
        Ok(out.into_iter().map(|(_, c)| c).collect())
    }

    /// Record a successful delivery (only under the lease that sent it).
    pub async fn outbox_delivered(
        &self,
        c: &Claimed,
        status: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = $1, last_status = $2,
             last_error = NULL, lease_until = 0 WHERE id = $3 AND lease_token = $4 AND status = 'pending'",
        )
        .bind(now)
        .bind(status)
        .bind(&c.id)
        .bind(&c.lease_token)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Record a failed attempt: try again at `retry_at`, or dead when `None`.
    pub async fn outbox_failed(
        &self,
        c: &Claimed,
        status: Option<i64>,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let (new_status, next) = match retry_at {
            Some(t) => ("pending", t),
            None => ("dead", 0),
        };
        sqlx::query(
            "UPDATE alert_outbox SET status = $1, attempts = attempts + 1, next_attempt_at = $2, last_status = $3,
             last_error = $4, lease_until = 0 WHERE id = $5 AND lease_token = $6 AND status = 'pending'",
        )
        .bind(new_status)
        .bind(next)
        .bind(status)
        .bind(error)
        .bind(&c.id)
        .bind(&c.lease_token)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Give a claimed row back unsent (rate limit or shutdown), due again at `at`.
    pub async fn outbox_release(&self, c: &Claimed, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_outbox SET lease_until = 0, next_attempt_at = $1 WHERE id = $2 AND lease_token = $3 AND status = 'pending'",
        )
        .bind(at)
        .bind(&c.id)
        .bind(&c.lease_token)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Up to `limit` outbox rows, newest first, optionally by status.
    pub async fn list_outbox(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        self.list_outbox_page(status, None, limit).await
    }

    /// Outbox rows, newest first, optionally by status: `limit` rows after the keyset
    /// position `after` (the previous page's last `(created_at, id)`).
    pub async fn list_outbox_page(
        &self,
        status: Option<&str>,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        if let Some(s) = status {
            args.push(Arg::Text(s.to_string()));
            conds.push(format!("o.status = ${}", args.len()));
        }
        if let Some((at, id)) = after {
            args.push(Arg::Int(at));
            let n = args.len();
            args.push(Arg::Text(id));
            conds.push(format!(
                "(o.created_at < ${n} OR (o.created_at = ${n} AND o.id < ${}))",
                n + 1
            ));
        }
        args.push(Arg::Int(limit));
        let sql = format!(
            "SELECT {OUTBOX_COLS} FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id
             {} ORDER BY o.created_at DESC, o.id DESC LIMIT ${}",
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            },
            args.len()
        );
        let mut q = sqlx::query(&sql);
        for a in args {
            q = match a {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(row_to_outbox).collect()
    }

    /// Put dead outbox rows back to pending, due at `now`, their attempts counted afresh:
    /// the row `id`, or every dead row when `id` is none. The audit event, with the number
    /// of rows (`retried`) added to its detail, is written in the same transaction. Returns
    /// that number; a row `id` that is missing is `NotFound`, one that is not dead a
    /// `Conflict`, and nothing changes.
    pub async fn outbox_retry(
        &self,
        id: Option<&str>,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let set = "UPDATE alert_outbox SET status = 'pending', attempts = 0, next_attempt_at = $1,
                   lease_until = 0, lease_token = NULL WHERE status = 'dead'";
        let done = match id {
            Some(id) => {
                sqlx::query(&format!("{set} AND id = $2"))
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
            }
            None => sqlx::query(set).bind(now).execute(&mut *tx).await?,
        };
        let n = done.rows_affected();
        if let (Some(id), 0) = (id, n) {
            let row = sqlx::query("SELECT status FROM alert_outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match row {
                None => StoreError::NotFound(format!("outbox row {id:?}")),
                Some(r) => StoreError::Conflict(format!(
                    "outbox row {id:?} is {}: only a dead notification is retried",
                    r.try_get::<String, _>("status")?
                )),
            });
        }
        if n > 0 {
            let mut ev = audit.clone();
            match &mut ev.detail {
                serde_json::Value::Object(m) => {
                    m.insert("retried".into(), n.into());
                }
                other => *other = serde_json::json!({ "retried": n }),
            }
            ev.write(&mut *tx, now).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// The event behind an outbox row.
    pub async fn get_event(&self, id: &str) -> Result<NewEvent, StoreError> {
        let r = sqlx::query(
            "SELECT id, type, subject, data, created_at FROM alert_events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("event {id:?}")))?;
        Ok(NewEvent {
            id: r.try_get("id")?,
            kind: r.try_get("type")?,
            subject: r.try_get("subject")?,
            data: json_col(&r, "data")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

// Five values a row; 200 rows a statement keeps well under either engine's limit.
const EVENT_BATCH: usize = 200;

/// Seconds before the previous sweep from which an added row is read again: covers clock
/// skew between replicas and a transaction still open while the previous sweep read.
const ADDED_MARGIN: i64 = 15 * 60;

/// Where a sweep of one rule starts (see [`Store::sweep_rule`]).
#[derive(Debug, Clone)]
pub struct SweepFrom {
    /// The rule's definition as far as the windows and the selector go; a sweep mark
    /// recorded under another key does not count.
    pub rule_key: String,
    /// The previous sweep of this definition, if any.
    pub since: Option<i64>,
}

/// The reads one window takes: `(exclusive lower bound, added after)` pairs over
/// `(lower bound, w.hi]`. Without a previous sweep (or for CAs, which are few) the whole
/// window once; else the part whose expiry entered the window since `since` (nothing
/// when the clock went back) and the rows added since.
fn window_reads(w: &Window, now: i64, since: Option<i64>) -> Vec<(i64, Option<i64>)> {
    let Some(since) = since.filter(|_| w.source == WindowSource::Certificates) else {
        return vec![(w.lo, None)];
    };
    let mut reads = Vec::with_capacity(2);
    let entered =
        w.lo.max(w.hi.saturating_sub(now.saturating_sub(since).max(0)));
    if entered < w.hi {
        reads.push((entered, None));
    }
    reads.push((w.lo, Some(since.saturating_sub(ADDED_MARGIN))));
    reads
}

/// Fire the rows of one window with `not_after` in `(lo, w.hi]` (and `added_at` after
/// `added_after`, when given) that have not fired yet; the rows that fired now.
async fn fire_window(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rule: &RuleRecord,
    w: &Window,
    now: i64,
    lo: i64,
    added_after: Option<i64>,
) -> Result<Vec<FiredRow>, StoreError> {
    let mut args = vec![
        Arg::Text(rule.id.clone()),
        Arg::Text(w.slot.clone()),
        Arg::Int(now),
        Arg::Int(lo),
        Arg::Int(w.hi),
    ];
    let sql = match w.source {
        WindowSource::Certificates => {
            let mut conds = Vec::new();
            // Reading the added rows walks the `added_at` index; the unary plus keeps the
            // planner off the `not_after` index, whose range here is the whole window.
            let expiry = if let Some(after) = added_after {
                args.push(Arg::Int(after));
                conds.push(format!("i.added_at > ${}", args.len()));
                "+i.not_after"
            } else {
                "i.not_after"
            };
            conds.extend(selector_sql(&rule.selector, &mut args));
            // Our certificates without a profile are delegated OCSP responders,
            // which renew themselves: not inventory anyone is warned about.
            conds.push("(i.certificate_id IS NULL OR i.profile_name IS NOT NULL)".into());
            // A certificate renewed (same subject and names, later expiry, in either
            // table of the inventory) is done. The check names the two tables rather than
            // the view: SQLite cannot push a correlated condition into the view's
            // `UNION ALL` and would build a temporary index over the whole inventory for
            // every statement; on the tables it is a range of their (subject, not_after)
            // indexes.
            conds.push(
                "NOT EXISTS (SELECT 1 FROM certificates n WHERE n.subject = i.subject AND n.not_after > i.not_after AND n.sans = i.sans AND n.status = 'valid') \
                 AND NOT EXISTS (SELECT 1 FROM discovery_certificates n WHERE n.subject = i.subject AND n.not_after > i.not_after AND n.dns_names = i.sans AND n.certificate_id IS NULL \
                 AND EXISTS (SELECT 1 FROM discovery_endpoints e WHERE e.fingerprint = n.fingerprint AND e.gone_at IS NULL))"
                    .into(),
            );
            let extra: String = conds.iter().map(|c| format!(" AND {c}")).collect();
            format!(
                "INSERT INTO alert_fired (rule_id, fingerprint, slot, certificate_id, subject, not_after, fired_at)
                 SELECT $1, i.fingerprint, $2, i.certificate_id, i.subject, i.not_after, $3
                 FROM alert_inventory i
                 WHERE i.status = 'valid' AND {expiry} > $4 AND {expiry} <= $5{extra}
                 ON CONFLICT DO NOTHING
                 RETURNING certificate_id, fingerprint, subject, not_after"
            )
        }
        WindowSource::Cas => {
            let extra = match &rule.selector.ca_id {
                Some(ca) => {
                    args.push(Arg::Text(ca.clone()));
                    " AND c.id = $6".to_string()
                }
                None => String::new(),
            };
            format!(
                "INSERT INTO alert_fired (rule_id, fingerprint, slot, certificate_id, subject, not_after, fired_at)
                 SELECT $1, c.fingerprint, $2, c.id, c.subject, c.not_after, $3
                 FROM cas c
                 WHERE c.status = 'active' AND c.fingerprint IS NOT NULL AND c.not_after > $4 AND c.not_after <= $5{extra}
                 ON CONFLICT DO NOTHING
                 RETURNING certificate_id, fingerprint, subject, not_after"
            )
        }
    };
    let rows = bind_all(sqlx::query(&sql), args)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(FiredRow {
                certificate_id: r.try_get("certificate_id")?,
                fingerprint: r.try_get("fingerprint")?,
                subject: r.try_get("subject")?,
                not_after: r.try_get("not_after")?,
                slot: w.slot.clone(),
            })
        })
        .collect()
}

async fn insert_events(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    engine: Engine,
    events: &[NewEvent],
    channels: &[String],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in events.chunks(EVENT_BATCH) {
        let sql = format!(
            "INSERT INTO alert_events (id, type, subject, data, created_at) VALUES {}",
            placeholders(engine, chunk.len(), 5, None)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(&e.id)
                .bind(&e.kind)
                .bind(&e.subject)
                .bind(e.data.to_string())
                .bind(e.created_at);
        }
        q.execute(&mut **tx).await?;
        let pairs: Vec<(&NewEvent, &String)> = chunk
            .iter()
            .flat_map(|e| channels.iter().map(move |c| (e, c)))
            .collect();
        for part in pairs.chunks(EVENT_BATCH) {
            let sql = format!(
                "INSERT INTO alert_outbox (id, event_id, channel_id, status, next_attempt_at, created_at) VALUES {}",
                placeholders(engine, part.len(), 6, Some((3, "'pending'")))
            );
            let mut q = sqlx::query(&sql);
            for (e, c) in part {
                q = q.bind(new_id()).bind(&e.id).bind(*c).bind(now).bind(now);
            }
            q.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

impl Store {
    /// Replace the tags of a certificate (ours or discovered), by SHA-256 fingerprint.
    pub async fn set_tags(
        &self,
        fingerprint: &str,
        tags: &[String],
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM inventory_tags WHERE fingerprint = $1")
            .bind(fingerprint)
            .execute(&mut *tx)
            .await?;
        for tag in tags {
            sqlx::query("INSERT INTO inventory_tags (fingerprint, tag) VALUES ($1, $2)")
                .bind(fingerprint)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        // A certificate that gains a tag may now match a tag selector while already inside
        // a window: rules with tag selectors are swept in full next time.
        sqlx::query(
            "DELETE FROM alert_sweeps WHERE rule_id IN (SELECT id FROM alert_rules WHERE selector LIKE '%\"tags\"%')",
        )
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tags of a certificate, sorted.
    pub async fn tags_of(&self, fingerprint: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT tag FROM inventory_tags WHERE fingerprint = $1 ORDER BY tag")
                .bind(fingerprint)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| r.try_get("tag").map_err(Into::into))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn d14(now: i64, source: WindowSource) -> Window {
        Window {
            slot: "d14".into(),
            lo: now + 7 * DAY,
            hi: now + 14 * DAY,
            source,
        }
    }

    #[test]
    fn a_window_reads_only_what_entered_or_was_added_since() {
        let now = 100 * DAY;
        let w = d14(now, WindowSource::Certificates);
        assert_eq!(
            window_reads(&w, now, None),
            vec![(w.lo, None)],
            "first sweep"
        );
        assert_eq!(
            window_reads(&w, now, Some(now - DAY)),
            vec![(w.hi - DAY, None), (w.lo, Some(now - DAY - ADDED_MARGIN))],
            "a day later: the last day of the window, and what was added"
        );
        assert_eq!(
            window_reads(&w, now, Some(now - 30 * DAY)),
            vec![(w.lo, None), (w.lo, Some(now - 30 * DAY - ADDED_MARGIN))],
            "a long gap reads the whole window"
        );
        assert_eq!(
            window_reads(&w, now, Some(now + DAY)),
            vec![(w.lo, Some(now + DAY - ADDED_MARGIN))],
            "the clock went back: only what was added"
        );
        let ca = d14(now, WindowSource::Cas);
        assert_eq!(window_reads(&ca, now, Some(now - DAY)), vec![(ca.lo, None)]);
    }
}
