//! Event types and the lifecycle hooks.
//!
//! Expiry crossings are made by the sweep ([`super::rules`]). Everything else is an event
//! some part of the server reports through [`emit`]: it is written to the outbox for the
//! channels of every enabled rule that subscribes to its type (and whose selector matches
//! the certificate, when there is one). Issuance and revocation call it from `Pki`; the
//! renewal, sync and discovery jobs call it with their own kinds.

use serde_json::{Value, json};

use super::rules::{days_left, rfc3339};
use crate::services::pki::Pki;
use crate::store::{FiredRow, NewEvent, new_id};

/// Every event type. The short name is what rules subscribe to; the CloudEvents type is
/// `io.certkeeper.<short name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A certificate crossed a threshold (or a daily reminder).
    CertificateExpiring,
    /// A certificate expired.
    CertificateExpired,
    /// A digest of every crossing of one sweep.
    ExpiryDigest,
    /// A certificate was issued.
    CertificateIssued,
    /// A certificate was issued for the same subject and names as a valid one.
    CertificateRenewed,
    /// A certificate was revoked.
    CertificateRevoked,
    /// A CA crossed a threshold.
    CaExpiring,
    /// Pushing a certificate to a destination failed.
    SyncFailed,
    /// Renewing a managed certificate failed (it is retried with backoff).
    RenewalFailed,
    /// An upstream CA refused or failed to issue a managed certificate (retried with
    /// backoff); the data carries the upstream's problem document.
    IssuanceFailed,
    /// Discovery found a certificate it had not seen.
    DiscoveryNew,
    /// Discovery found a different certificate at a known endpoint.
    DiscoveryChanged,
    /// Discovery found an expired certificate.
    DiscoveryExpired,
    /// A host agent deployed a managed certificate but its reload command failed.
    DeploymentFailed,
    /// A managed certificate was renewed but an old version is still served somewhere.
    DeploymentStale,
    /// A test message from the "send test" endpoint.
    Test,
}

/// The kinds rules may subscribe to, by short name.
pub const SUBSCRIBABLE: &[EventKind] = &[
    EventKind::CertificateIssued,
    EventKind::CertificateRenewed,
    EventKind::CertificateRevoked,
    EventKind::CertificateExpired,
    EventKind::CaExpiring,
    EventKind::SyncFailed,
    EventKind::RenewalFailed,
    EventKind::IssuanceFailed,
    EventKind::DiscoveryNew,
    EventKind::DiscoveryChanged,
    EventKind::DiscoveryExpired,
    EventKind::DeploymentFailed,
    EventKind::DeploymentStale,
];

impl EventKind {
    /// The short name (`certificate.issued`).
    pub fn short(self) -> &'static str {
        match self {
            EventKind::CertificateExpiring => "certificate.expiring",
            EventKind::CertificateExpired => "certificate.expired",
            EventKind::ExpiryDigest => "certificate.expiring.digest",
            EventKind::CertificateIssued => "certificate.issued",
            EventKind::CertificateRenewed => "certificate.renewed",
            EventKind::CertificateRevoked => "certificate.revoked",
            EventKind::CaExpiring => "ca.expiring",
            EventKind::SyncFailed => "sync.failed",
            EventKind::RenewalFailed => "certificate.renewal_failed",
            EventKind::IssuanceFailed => "issuance.failed",
            EventKind::DiscoveryNew => "discovery.new",
            EventKind::DiscoveryChanged => "discovery.changed",
            EventKind::DiscoveryExpired => "discovery.expired",
            EventKind::DeploymentFailed => "deployment.failed",
            EventKind::DeploymentStale => "deployment.stale",
            EventKind::Test => "test",
        }
    }

    /// The CloudEvents type (`io.certkeeper.certificate.issued`).
    pub fn cloudevents_type(self) -> String {
        format!("io.certkeeper.{}", self.short())
    }

    /// The kind of a CloudEvents type.
    pub fn from_type(t: &str) -> Option<EventKind> {
        let short = t.strip_prefix("io.certkeeper.")?;
        [
            EventKind::CertificateExpiring,
            EventKind::ExpiryDigest,
            EventKind::Test,
        ]
        .iter()
        .chain(SUBSCRIBABLE)
        .copied()
        .find(|k| k.short() == short)
    }

    /// A subscribable kind by short name.
    pub fn subscribable(short: &str) -> Option<EventKind> {
        SUBSCRIBABLE.iter().copied().find(|k| k.short() == short)
    }
}

/// The JSON describing one certificate in an event.
pub(crate) fn certificate_json(row: &FiredRow, now: i64) -> Value {
    json!({
        "id": row.certificate_id,
        "fingerprint": row.fingerprint,
        "subject": row.subject,
        "not_after": rfc3339(row.not_after),
        "days_left": days_left(row.not_after, now),
    })
}

/// Report a lifecycle event. `fingerprint` names the certificate it is about, if any, for
/// rule selectors. Failures are logged, never returned: the action that caused the event
/// has already happened.
pub async fn emit(
    pki: &Pki,
    kind: EventKind,
    subject: Option<&str>,
    fingerprint: Option<&str>,
    data: Value,
) {
    if let Err(e) = emit_inner(pki, kind, subject, fingerprint, data).await {
        tracing::error!(event = kind.short(), error = %e, "recording an alert event failed");
    }
}

async fn emit_inner(
    pki: &Pki,
    kind: EventKind,
    subject: Option<&str>,
    fingerprint: Option<&str>,
    data: Value,
) -> Result<(), crate::store::StoreError> {
    let store = pki.store();
    let mut channels: Vec<String> = Vec::new();
    for rule in store.list_rules().await? {
        if !rule.enabled || !rule.events.iter().any(|e| e == kind.short()) {
            continue;
        }
        if let Some(fp) = fingerprint
            && rule.selector != Default::default()
            && !store.selector_matches(&rule.selector, fp).await?
        {
            continue;
        }
        channels.extend(rule.channels.iter().cloned());
    }
    channels.sort();
    channels.dedup();
    if channels.is_empty() {
        return Ok(());
    }
    let now = pki.now().unix_timestamp();
    let event = NewEvent {
        id: new_id(),
        kind: kind.cloudevents_type(),
        subject: subject.map(str::to_string),
        data,
        created_at: now,
    };
    store.enqueue_event(&event, &channels, now).await
}

/// Whether any enabled rule subscribes to one of `kinds` (a cheap check before work).
async fn anyone_listens(pki: &Pki, kinds: &[EventKind]) -> bool {
    match pki.alert_rules().await {
        Ok(rules) => rules.iter().any(|r| {
            r.enabled
                && kinds
                    .iter()
                    .any(|k| r.events.iter().any(|e| e == k.short()))
        }),
        Err(e) => {
            tracing::error!(error = %e, "reading alert rules failed");
            false
        }
    }
}

/// The hook `Pki::issue` calls after the certificate is committed: `certificate.renewed`
/// when a valid certificate with the same subject and names already existed, else
/// `certificate.issued`.
pub async fn on_issued(pki: &Pki, id: &str, info: &certkeeper_ca::CertInfo, profile: &str) {
    if !anyone_listens(
        pki,
        &[EventKind::CertificateIssued, EventKind::CertificateRenewed],
    )
    .await
    {
        return;
    }
    let renewed = pki.store().has_predecessor(id).await.unwrap_or(false);
    let kind = if renewed {
        EventKind::CertificateRenewed
    } else {
        EventKind::CertificateIssued
    };
    let now = pki.now().unix_timestamp();
    let row = FiredRow {
        certificate_id: Some(id.to_string()),
        fingerprint: info.fingerprint_sha256.clone(),
        subject: info.subject.clone(),
        not_after: info.not_after.unix_timestamp(),
        slot: String::new(),
    };
    let mut cert = certificate_json(&row, now);
    cert["serial"] = json!(info.serial);
    cert["profile"] = json!(profile);
    cert["sans"] = json!(info.dns_names);
    emit(
        pki,
        kind,
        Some(id),
        Some(&info.fingerprint_sha256),
        json!({"certificates": [cert]}),
    )
    .await;
}

/// The hook `Pki::revoke` calls after the revocation is committed.
pub async fn on_revoked(pki: &Pki, rec: &crate::store::CertRecord) {
    if !anyone_listens(pki, &[EventKind::CertificateRevoked]).await {
        return;
    }
    let now = pki.now().unix_timestamp();
    let row = FiredRow {
        certificate_id: Some(rec.id.clone()),
        fingerprint: rec.fingerprint.clone(),
        subject: rec.subject.clone(),
        not_after: rec.not_after.unix_timestamp(),
        slot: String::new(),
    };
    let mut cert = certificate_json(&row, now);
    cert["serial"] = json!(rec.serial);
    cert["revocation_reason"] = json!(rec.revocation_reason);
    emit(
        pki,
        EventKind::CertificateRevoked,
        Some(&rec.id),
        Some(&rec.fingerprint),
        json!({"certificates": [cert]}),
    )
    .await;
}

/// A test event for a channel.
pub(crate) fn test_event(now: i64) -> NewEvent {
    NewEvent {
        id: new_id(),
        kind: EventKind::Test.cloudevents_type(),
        subject: None,
        data: json!({"message": "certkeeper test notification"}),
        created_at: now,
    }
}

/// The hook discovery calls after a scan is recorded: `discovery.new` for each certificate
/// never seen before, `discovery.changed` for each endpoint now serving another one, and
/// `discovery.expired` for each that expired since it was last seen.
pub async fn on_scan_finished(pki: &Pki, scan_id: &str, changes: &crate::store::ScanChanges) {
    let kinds = [
        EventKind::DiscoveryNew,
        EventKind::DiscoveryChanged,
        EventKind::DiscoveryExpired,
    ];
    if !anyone_listens(pki, &kinds).await {
        return;
    }
    let groups = [
        (
            EventKind::DiscoveryNew,
            &changes.new_certificates,
            "fingerprint",
        ),
        (EventKind::DiscoveryChanged, &changes.changed, "current"),
        (EventKind::DiscoveryExpired, &changes.expired, "fingerprint"),
    ];
    for (kind, items, fp_field) in groups {
        for item in items {
            let fingerprint = item[fp_field].as_str();
            let subject = item["subject"]
                .as_str()
                .or_else(|| item["endpoint"].as_str());
            let data = serde_json::json!({ "scan": scan_id, "finding": item });
            emit(pki, kind, subject, fingerprint, data).await;
        }
    }
}
