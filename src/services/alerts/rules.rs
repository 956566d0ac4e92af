//! Rules: threshold windows and the expiry sweep.
//!
//! Thresholds are days before expiry, e.g. 30, 14, 7, 1. Each sweep gives every threshold
//! a window of expiry times, `(now + next smaller threshold, now + threshold]`, so a
//! certificate fires the tightest threshold it is in and never the wider ones it skipped
//! (one issued with ten days left fires 14, later 7 and 1, never 30). Expired certificates
//! (within the last week, so that enabling a rule does not flood a channel with ancient
//! ones) fire once more as `expired`. With a daily reminder, the days below the last
//! threshold get one window each (`r3`, `r2`, ...), so a reminder fires once a day.

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::events::{EventKind, certificate_json};
use crate::error::Error;
use crate::services::pki::Pki;
use crate::store::{FiredRow, NewEvent, RuleRecord, SweepFrom, Window, WindowSource, new_id};

/// Thresholds used when a rule names none.
pub const DEFAULT_THRESHOLDS: [u32; 4] = [30, 14, 7, 1];
const DAY: i64 = 86_400;
/// How far back an expiry still fires `expired`.
const EXPIRED_LOOKBACK: i64 = 7 * DAY;

/// What a sweep did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SweepReport {
    /// Rules evaluated.
    pub rules: usize,
    /// Threshold crossings that fired for the first time.
    pub fired: usize,
}

/// Thresholds largest first, without repeats or zeros.
pub fn normalize_thresholds(t: &[u32]) -> Vec<u32> {
    let mut v: Vec<u32> = t.iter().copied().filter(|d| *d > 0).collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.dedup();
    v
}

/// The windows one sweep of `rule` evaluates at `now` (Unix seconds).
pub fn windows(rule: &RuleRecord, now: i64) -> Vec<Window> {
    let t = normalize_thresholds(&rule.thresholds);
    let mut out = Vec::new();
    let watch_cas = rule
        .events
        .iter()
        .any(|e| e == EventKind::CaExpiring.short());
    for (i, days) in t.iter().enumerate() {
        let hi = now + i64::from(*days) * DAY;
        let lo = match t.get(i + 1) {
            Some(next) => now + i64::from(*next) * DAY,
            None => now,
        };
        let last_with_reminder = rule.daily_reminder && t.get(i + 1).is_none();
        out.push(Window {
            slot: format!("d{days}"),
            lo: if last_with_reminder { hi - DAY } else { lo },
            hi,
            source: WindowSource::Certificates,
        });
        if watch_cas {
            out.push(Window {
                slot: format!("ca-d{days}"),
                lo,
                hi,
                source: WindowSource::Cas,
            });
        }
    }
    if rule.daily_reminder
        && let Some(last) = t.last()
    {
        for d in (1..i64::from(*last)).rev() {
            out.push(Window {
                slot: format!("r{d}"),
                lo: now + (d - 1) * DAY,
                hi: now + d * DAY,
                source: WindowSource::Certificates,
            });
        }
    }
    out.push(Window {
        slot: "expired".into(),
        lo: now - EXPIRED_LOOKBACK,
        hi: now,
        source: WindowSource::Certificates,
    });
    out
}

fn slot_facts(slot: &str) -> (EventKind, Option<u32>, bool) {
    if slot == "expired" {
        (EventKind::CertificateExpired, None, false)
    } else if let Some(d) = slot.strip_prefix("ca-d") {
        (EventKind::CaExpiring, d.parse().ok(), false)
    } else if let Some(d) = slot.strip_prefix('r') {
        (EventKind::CertificateExpiring, d.parse().ok(), true)
    } else {
        (
            EventKind::CertificateExpiring,
            slot.strip_prefix('d').and_then(|d| d.parse().ok()),
            false,
        )
    }
}

/// The events for the rows that fired: one per row, or (digest) one for all certificate
/// rows plus one per CA row.
pub(crate) fn make_events(rule: &RuleRecord, rows: Vec<FiredRow>, now: i64) -> Vec<NewEvent> {
    let rule_json = json!({"id": rule.id, "name": rule.name});
    let mut out = Vec::new();
    let mut digest = Vec::new();
    for row in rows {
        let (kind, threshold, reminder) = slot_facts(&row.slot);
        let cert = certificate_json(&row, now);
        if rule.digest && kind != EventKind::CaExpiring {
            let mut c = cert;
            c["threshold_days"] = json!(threshold);
            c["expired"] = json!(kind == EventKind::CertificateExpired);
            digest.push(c);
            continue;
        }
        out.push(NewEvent {
            id: new_id(),
            kind: kind.cloudevents_type(),
            subject: row.certificate_id.clone(),
            data: json!({
                "rule": rule_json,
                "threshold_days": threshold,
                "reminder": reminder,
                "certificates": [cert],
            }),
            created_at: now,
        });
    }
    if !digest.is_empty() {
        out.push(NewEvent {
            id: new_id(),
            kind: EventKind::ExpiryDigest.cloudevents_type(),
            subject: None,
            data: json!({"rule": rule_json, "certificates": digest}),
            created_at: now,
        });
    }
    out
}

/// What a rule's sweep mark is recorded under: its windows relative to `now` and its
/// selector. A rule whose thresholds, reminders, CA watch or selector changed gets a new
/// key, and so one full sweep that sees every certificate already inside its windows.
fn rule_key(rule: &RuleRecord, windows: &[Window], now: i64) -> String {
    let mut key = serde_json::to_string(&rule.selector).unwrap_or_default();
    for w in windows {
        key.push_str(&format!("|{}:{}:{}", w.slot, w.lo - now, w.hi - now));
    }
    key
}

/// Evaluate every enabled rule once at the injected clock's now. Each rule reads only
/// what moved since its previous sweep (see [`crate::store::Store::sweep_rule`]).
pub async fn sweep(pki: &Pki) -> Result<SweepReport, Error> {
    let now = pki.now().unix_timestamp();
    let mut report = SweepReport::default();
    for rule in pki.store().list_rules().await? {
        if !rule.enabled || rule.channels.is_empty() || rule.thresholds.is_empty() {
            continue;
        }
        report.rules += 1;
        let w = windows(&rule, now);
        let rule_key = rule_key(&rule, &w, now);
        let since = pki.store().swept_at(&rule.id, &rule_key).await?;
        let from = SweepFrom { rule_key, since };
        report.fired += pki
            .store()
            .sweep_rule(&rule, &w, now, &from, |rows| make_events(&rule, rows, now))
            .await?;
    }
    Ok(report)
}

/// Days left until `not_after`, rounded up (0 once expired).
pub fn days_left(not_after: i64, now: i64) -> i64 {
    if not_after <= now {
        0
    } else {
        (not_after - now + DAY - 1) / DAY
    }
}

/// RFC 3339 of Unix seconds.
pub(crate) fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Selector;

    fn rule(t: &[u32], reminder: bool) -> RuleRecord {
        RuleRecord {
            id: "r".into(),
            name: "r".into(),
            selector: Selector::default(),
            thresholds: t.to_vec(),
            channels: vec!["c".into()],
            events: vec![],
            daily_reminder: reminder,
            digest: false,
            enabled: true,
            created_at: 0,
        }
    }

    #[test]
    fn windows_tile_the_time_before_expiry() {
        let w = windows(&rule(&[7, 30, 14, 1, 7], false), 0);
        let got: Vec<(String, i64, i64)> = w.iter().map(|w| (w.slot.clone(), w.lo, w.hi)).collect();
        assert_eq!(
            got,
            vec![
                ("d30".into(), 14 * DAY, 30 * DAY),
                ("d14".into(), 7 * DAY, 14 * DAY),
                ("d7".into(), DAY, 7 * DAY),
                ("d1".into(), 0, DAY),
                ("expired".into(), -7 * DAY, 0),
            ]
        );
    }

    #[test]
    fn reminders_take_one_window_per_day_below_the_last_threshold() {
        let w = windows(&rule(&[14, 3], true), 0);
        let got: Vec<(String, i64, i64)> = w.iter().map(|w| (w.slot.clone(), w.lo, w.hi)).collect();
        assert_eq!(
            got,
            vec![
                ("d14".into(), 3 * DAY, 14 * DAY),
                ("d3".into(), 2 * DAY, 3 * DAY),
                ("r2".into(), DAY, 2 * DAY),
                ("r1".into(), 0, DAY),
                ("expired".into(), -7 * DAY, 0),
            ]
        );
    }

    #[test]
    fn days_left_rounds_up() {
        assert_eq!(days_left(DAY, 0), 1);
        assert_eq!(days_left(DAY + 1, 0), 2);
        assert_eq!(days_left(0, 0), 0);
    }
}
