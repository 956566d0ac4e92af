//! Knowing what is deployed: host agents fetch the current version of the managed
//! certificates their token was given and report what they deployed; every managed
//! certificate shows where each version lives (destinations from sync state, hosts from
//! agents' reports, endpoints from discovery); and a place still serving an old version
//! after a newer one was issued is stale, alerted once (`deployment.stale`).

use certkeeper_sync::CertificateVersion;
use serde_json::json;
use time::OffsetDateTime;

use super::Managed;
use crate::error::Error;
use crate::services::alerts::{EventKind, emit};
use crate::services::tokens::Caller;
use crate::store::{AgentReport, ManagedRecord, StaleRecord, from_ts, ts};

/// The longest host name an agent may report.
pub const MAX_HOST_LEN: usize = 253;
/// The most characters of a reload command's output kept with a report.
pub const MAX_OUTPUT_CHARS: usize = 4096;
/// The most hosts reporting on one managed certificate.
pub const MAX_HOSTS: usize = 1000;

/// What an agent reports after a pass over one managed certificate.
#[derive(Debug, Clone)]
pub struct DeploymentReport {
    /// The host it runs on: 1 to 253 printable characters, no spaces.
    pub host: String,
    /// The version it wrote.
    pub version: i64,
    /// Whether the reload command succeeded.
    pub reload_ok: bool,
    /// The reload command's output, when it failed (cut to [`MAX_OUTPUT_CHARS`]).
    pub output: Option<String>,
}

/// Where a version lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    /// A cloud destination (from sync state).
    Destination,
    /// A host running the agent (from its reports).
    Host,
    /// An endpoint discovery saw serving it.
    Endpoint,
}

impl PlaceKind {
    /// `destination`, `host` or `endpoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaceKind::Destination => "destination",
            PlaceKind::Host => "host",
            PlaceKind::Endpoint => "endpoint",
        }
    }
}

/// One place holding one version of a managed certificate.
#[derive(Debug, Clone)]
pub struct Place {
    /// What kind of place.
    pub kind: PlaceKind,
    /// The destination's name, the host name, or the endpoint (`address:port (sni)`).
    pub name: String,
    /// The version it holds or serves.
    pub version: i64,
    /// Since when it holds this version (a destination: its last change).
    pub since: OffsetDateTime,
    /// When this was last known: the agent's last report, discovery's last sight, the
    /// binding's last change.
    pub last_seen: OffsetDateTime,
    /// For a host, whether its last reload succeeded; for a destination, whether its last
    /// push did.
    pub ok: bool,
    /// A host's failed reload output, or a destination's last push error.
    pub detail: Option<String>,
    /// For a host or endpoint seen with an old version after a newer one was issued: since
    /// when it has been stale.
    pub stale_since: Option<OffsetDateTime>,
}

/// Where every version of a managed certificate lives.
#[derive(Debug, Clone)]
pub struct Deployments {
    /// The certificate.
    pub record: ManagedRecord,
    /// Every version and when it was issued, newest first.
    pub versions: Vec<(i64, OffsetDateTime)>,
    /// Every place, by kind then name.
    pub places: Vec<Place>,
}

fn check_report(r: &DeploymentReport) -> Result<(), Error> {
    if r.host.is_empty()
        || r.host.len() > MAX_HOST_LEN
        || !r.host.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(Error::BadRequest(format!(
            "host must be 1 to {MAX_HOST_LEN} printable ASCII characters without spaces"
        )));
    }
    if r.version < 1 {
        return Err(Error::BadRequest("version must be at least 1".into()));
    }
    Ok(())
}

/// `output` cut to [`MAX_OUTPUT_CHARS`] characters.
fn bounded(output: Option<String>) -> Option<String> {
    output.map(|o| o.chars().take(MAX_OUTPUT_CHARS).collect())
}

/// The hosts and endpoints among `places` that serve an old version and were seen doing
/// so after the version that replaced it was issued (in a later second); each gets its
/// `stale_since`.
fn mark_stale(current: i64, versions: &[(i64, OffsetDateTime)], places: &mut [Place]) {
    for p in places.iter_mut() {
        if p.kind == PlaceKind::Destination || p.version >= current {
            continue;
        }
        let Some((_, superseded_at)) = versions.iter().find(|(v, _)| *v == p.version + 1) else {
            continue;
        };
        // Times are whole seconds: seen in the second the newer version was issued is not
        // known to be after it.
        if p.last_seen > *superseded_at {
            p.stale_since = Some(p.since.max(*superseded_at));
        }
    }
}

impl Managed {
    /// The managed certificate `id` (or name) for an agent token given it.
    async fn for_agent(&self, caller: &Caller, id: &str) -> Result<ManagedRecord, Error> {
        // An agent learns nothing about certificates it was not given, not even whether
        // they exist.
        let rec = match self.pki.store().get_managed(id).await {
            Ok(rec) => rec,
            Err(crate::store::StoreError::NotFound(_)) => {
                caller.require_agent_for("")?;
                return Err(Error::NotFound(format!("managed certificate {id:?}")));
            }
            Err(e) => return Err(e.into()),
        };
        caller.require_agent_for(&rec.id)?;
        Ok(rec)
    }

    /// The current version of a managed certificate, with its chain and key, for an agent
    /// token given it; with `host`, also what that host last reported (so an agent that
    /// restarted knows whether its last reload failed).
    pub async fn agent_fetch(
        &self,
        caller: &Caller,
        id: &str,
        host: Option<&str>,
    ) -> Result<(ManagedRecord, CertificateVersion, Option<AgentReport>), Error> {
        let rec = self.for_agent(caller, id).await?;
        if rec.status != "active" {
            return Err(Error::Conflict(format!(
                "managed certificate {:?} is {}",
                rec.name, rec.status
            )));
        }
        let version = self.current_version(&rec.id).await?;
        let reported = match host {
            Some(h) => self
                .pki
                .store()
                .agent_reports(&rec.id)
                .await?
                .into_iter()
                .find(|r| r.host == h),
            None => None,
        };
        Ok((rec, version, reported))
    }

    /// Record what an agent deployed (audited when the host's version or reload result
    /// changes, not on every poll); a reload that starts failing raises
    /// `deployment.failed`, and an old version makes the host stale (see
    /// [`Managed::sweep_stale`]).
    pub async fn agent_report(
        &self,
        caller: &Caller,
        id: &str,
        report: DeploymentReport,
    ) -> Result<AgentReport, Error> {
        check_report(&report)?;
        let rec = self.for_agent(caller, id).await?;
        if report.version > rec.current_version {
            return Err(Error::BadRequest(format!(
                "version {} does not exist (the newest is {})",
                report.version, rec.current_version
            )));
        }
        let hosts = self.pki.store().agent_reports(&rec.id).await?;
        if hosts.len() >= MAX_HOSTS && !hosts.iter().any(|h| h.host == report.host) {
            return Err(Error::Conflict(format!(
                "managed certificate {:?} already has reports from {MAX_HOSTS} hosts",
                rec.name
            )));
        }
        let output = if report.reload_ok {
            None
        } else {
            bounded(report.output)
        };
        let now = self.pki.now();
        let audit = caller
            .actor
            .event("managed.deploy", "managed_certificate")
            .object(&rec.id)
            .detail(json!({
                "host": report.host, "version": report.version, "reload_ok": report.reload_ok,
            }));
        let (stored, changed) = self
            .pki
            .store()
            .record_agent_report(
                &rec.id,
                &report.host,
                &caller.token.id,
                report.version,
                report.reload_ok,
                output.as_deref(),
                &audit,
                ts(now),
            )
            .await?;
        if changed && report.reload_ok {
            self.event(
                &rec.id,
                "deployed",
                json!({"host": report.host, "version": report.version}),
            )
            .await;
        }
        // Once per failure, not on every poll that finds it still failing.
        if changed && !report.reload_ok {
            let detail = json!({"host": report.host, "version": report.version, "output": output});
            self.event(&rec.id, "deployment_failed", detail).await;
            emit(
                &self.pki,
                EventKind::DeploymentFailed,
                Some(&rec.id),
                None,
                json!({
                    "managed_certificate": rec.id,
                    "managed_certificate_name": rec.name,
                    "host": report.host,
                    "version": report.version,
                    "output": output,
                }),
            )
            .await;
        }
        self.sweep_stale_of(&rec).await?;
        Ok(stored)
    }

    /// Where every version of `m` lives.
    pub async fn deployments(&self, m: ManagedRecord) -> Result<Deployments, Error> {
        let store = self.pki.store();
        let versions: Vec<(i64, OffsetDateTime)> = store
            .managed_versions(&m.id)
            .await?
            .into_iter()
            .map(|v| (v.version, v.created_at))
            .collect();
        let destinations = store.list_destinations().await?;
        let mut places = Vec::new();
        for b in store.bindings_of(&m.id).await? {
            let Some(version) = b.pushed_version else {
                continue;
            };
            let name = destinations
                .iter()
                .find(|d| d.id == b.destination_id)
                .map(|d| d.name.clone())
                .unwrap_or(b.destination_id);
            places.push(Place {
                kind: PlaceKind::Destination,
                name,
                version,
                since: b.updated_at,
                last_seen: b.updated_at,
                ok: b.last_error.is_none(),
                detail: b.last_error,
                stale_since: None,
            });
        }
        for r in store.agent_reports(&m.id).await? {
            places.push(Place {
                kind: PlaceKind::Host,
                name: r.host,
                version: r.version,
                since: from_ts(r.since),
                last_seen: from_ts(r.reported_at),
                ok: r.reload_ok,
                detail: r.output,
                stale_since: None,
            });
        }
        for e in store.endpoints_serving(&m.id).await? {
            places.push(Place {
                kind: PlaceKind::Endpoint,
                name: e.label(),
                version: e.version,
                since: from_ts(e.since),
                last_seen: from_ts(e.last_seen),
                ok: true,
                detail: None,
                stale_since: None,
            });
        }
        if m.status == "active" {
            mark_stale(m.current_version, &versions, &mut places);
        }
        Ok(Deployments {
            record: m,
            versions,
            places,
        })
    }

    /// Raise `deployment.stale` for each place of `m` newly found serving an old version,
    /// and forget the places that no longer do. Returns how many alerts were raised.
    async fn sweep_stale_of(&self, m: &ManagedRecord) -> Result<usize, Error> {
        let store = self.pki.store();
        let deployments = self.deployments(m.clone()).await?;
        let now = ts(self.pki.now());
        let stale: Vec<StaleRecord> = deployments
            .places
            .iter()
            .filter_map(|p| {
                p.stale_since.map(|since| StaleRecord {
                    managed_id: m.id.clone(),
                    place_kind: p.kind.as_str().to_string(),
                    place: p.name.clone(),
                    version: p.version,
                    since: ts(since),
                    alerted_at: now,
                })
            })
            .collect();
        for old in store.stale_of(&m.id).await? {
            let still = stale.iter().any(|s| {
                s.place_kind == old.place_kind && s.place == old.place && s.version == old.version
            });
            if !still {
                store.delete_stale(&old).await?;
            }
        }
        let mut raised = 0;
        for s in stale {
            if !store.insert_stale(&s).await? {
                continue;
            }
            raised += 1;
            let since = from_ts(s.since);
            let data = json!({
                "managed_certificate": m.id,
                "managed_certificate_name": m.name,
                "place_kind": s.place_kind,
                "place": s.place,
                "version": s.version,
                "current_version": m.current_version,
                "since": crate::services::alerts::rules::rfc3339(s.since),
            });
            tracing::warn!(managed = %m.id, place = %s.place, version = s.version, since = %since, "an old version is still deployed");
            self.event(&m.id, "deployment_stale", data.clone()).await;
            emit(
                &self.pki,
                EventKind::DeploymentStale,
                Some(&m.id),
                None,
                data,
            )
            .await;
        }
        Ok(raised)
    }

    /// [`Managed::sweep_stale_of`] for every managed certificate; returns how many alerts
    /// were raised. Run by the managed-certificates job and after each discovery scan.
    pub async fn sweep_stale(&self) -> Result<usize, Error> {
        let mut raised = 0;
        for m in self.pki.store().list_managed().await? {
            raised += self.sweep_stale_of(&m).await?;
        }
        Ok(raised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn place(kind: PlaceKind, version: i64, since: i64, last_seen: i64) -> Place {
        let t = |s| OffsetDateTime::UNIX_EPOCH + Duration::seconds(s);
        Place {
            kind,
            name: "p".into(),
            version,
            since: t(since),
            last_seen: t(last_seen),
            ok: true,
            detail: None,
            stale_since: None,
        }
    }

    #[test]
    fn old_versions_seen_after_their_successor_are_stale() {
        let t = |s| OffsetDateTime::UNIX_EPOCH + Duration::seconds(s);
        let versions = vec![(1, t(0)), (2, t(100)), (3, t(200))];
        let mut places = vec![
            // Seen with v1 after v2 was issued: stale since v2.
            place(PlaceKind::Endpoint, 1, 10, 150),
            // Seen with v1 only before v2 was issued, or in the same second: not known to
            // be stale.
            place(PlaceKind::Endpoint, 1, 10, 90),
            place(PlaceKind::Endpoint, 1, 10, 100),
            // Started serving v2 after v3 was issued: stale since it started.
            place(PlaceKind::Host, 2, 250, 260),
            // The current version.
            place(PlaceKind::Host, 3, 210, 260),
            // Destinations are sync's business.
            place(PlaceKind::Destination, 1, 10, 300),
        ];
        mark_stale(3, &versions, &mut places);
        let got: Vec<Option<OffsetDateTime>> = places.iter().map(|p| p.stale_since).collect();
        assert_eq!(
            got,
            vec![Some(t(100)), None, None, Some(t(250)), None, None]
        );
    }

    #[test]
    fn reports_are_checked_and_output_bounded() {
        let ok = DeploymentReport {
            host: "web-1.example.com".into(),
            version: 1,
            reload_ok: true,
            output: None,
        };
        assert!(check_report(&ok).is_ok());
        for host in ["", "a b", "x\n", &"h".repeat(MAX_HOST_LEN + 1)] {
            let r = DeploymentReport {
                host: host.into(),
                ..ok.clone()
            };
            assert!(check_report(&r).is_err(), "{host:?}");
        }
        let r = DeploymentReport { version: 0, ..ok };
        assert!(check_report(&r).is_err());
        let long = bounded(Some("é".repeat(MAX_OUTPUT_CHARS + 10))).unwrap();
        assert_eq!(long.chars().count(), MAX_OUTPUT_CHARS);
    }
}
