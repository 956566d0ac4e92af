//! dns-01 through AWS Route 53, with the official SDK (`aws-sdk-route53`), configured like
//! the AWS destinations ([`certkeeper_sync::aws_sdk_config`]: region, endpoint, sealed
//! access keys or the standard AWS chain or a profile).
//!
//! Route 53 keeps all TXT values of a name in one record set, so a challenge value is
//! added beside the others: the set is read and the union written back (`UPSERT`); a
//! wildcard and its base name put two values on the same name. Removal takes only our
//! value out (`UPSERT` of the rest, `DELETE` when it was the last). After a change,
//! `GetChange` is polled until Route 53 reports `INSYNC`; the caller then waits for the
//! record on the zone's authoritative servers (the hosted zone's delegation set, or the
//! `nameservers` override). Without a hosted zone id, the zone of a name is found by the
//! longest suffix of it that names a public hosted zone (`ListHostedZonesByName`).
//! Every call is bounded in time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use certkeeper_sync::{AwsCredentials, SyncError, aws_sdk_config, aws_sdk_error};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::services::issuers::port::{BoxFuture, DnsProvider, UpstreamFailure};

/// The region requests are signed for when none is set (Route 53 is a global service of
/// the `aws` partition, answered from `us-east-1`).
pub const DEFAULT_REGION: &str = "us-east-1";
/// Longest wait for one API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a change to be `INSYNC` on Route 53's servers.
const SYNC_TIMEOUT: Duration = Duration::from_secs(180);
/// Pause between `GetChange` polls.
const SYNC_POLL: Duration = Duration::from_secs(2);
/// Time to live of a challenge record set that certkeeper creates, in seconds (an
/// existing set keeps its own).
const TXT_TTL: i64 = 60;
/// Most TXT values kept at one name (Route 53 takes up to 1,000 records per change).
const MAX_VALUES: usize = 100;
/// Most labels of a name searched for its zone.
const MAX_LABELS: usize = 32;

/// The settings of a Route 53 provider (static credentials, when given, are sealed apart).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route53Config {
    /// The hosted zone's id (`Z1D633PJN98FT9`); when absent, the zone of each name is
    /// found by the longest matching public hosted zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    /// The region requests are signed for; `us-east-1` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint (a VPC endpoint, or a test server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// A profile of the shared AWS config files to take credentials from (static keys,
    /// `credential_process`, SSO, an assumed role); without it and without stored
    /// credentials, the standard AWS chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Servers to wait for instead of the hosted zone's delegation set (by address).
    #[serde(default)]
    pub nameservers: Vec<SocketAddr>,
}

/// A hosted zone id as Route 53 writes it in some answers (`/hostedzone/Z...`), bare.
fn bare_zone_id(id: &str) -> &str {
    id.trim_start_matches("/hostedzone/")
}

impl Route53Config {
    /// Check the settings and the static `credentials` before anything is stored (region,
    /// endpoint and profile are checked when the client is built).
    pub fn validate(&self, credentials: Option<&AwsCredentials>) -> Result<(), String> {
        if let Some(id) = &self.hosted_zone_id {
            let id = bare_zone_id(id);
            if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err("hosted_zone_id must be 1 to 32 letters and digits".into());
            }
        }
        if self.nameservers.len() > 10 {
            return Err("at most 10 nameservers".into());
        }
        if let Some(c) = credentials {
            let printable = |s: &str, max: usize| {
                !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
            };
            if !printable(&c.access_key_id, 128) || !printable(&c.secret_access_key, 256) {
                return Err(
                    "access_key_id and secret_access_key must be 1 to 128 and 1 to 256 \
                     printable characters"
                        .into(),
                );
            }
            if c.session_token
                .as_deref()
                .is_some_and(|t| !printable(t, 4096))
            {
                return Err("session_token must be 1 to 4096 printable characters".into());
            }
        }
        Ok(())
    }
}

/// A hosted zone as used here: its bare id, its name (lowercase, no final dot) and the
/// names of its authoritative servers.
#[derive(Debug, Clone)]
struct Zone {
    id: String,
    name: String,
    nameservers: Vec<String>,
}

/// A Route 53 provider.
pub struct Route53 {
    config: Route53Config,
    client: aws_sdk_route53::Client,
    /// The zone of each record name, found once per provider.
    zones: tokio::sync::Mutex<HashMap<String, Zone>>,
}

impl std::fmt::Debug for Route53 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route53")
            .field("hosted_zone_id", &self.config.hosted_zone_id)
            .finish_non_exhaustive()
    }
}

/// A name without its final dot, lowercase: how names are compared here.
fn plain(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A TXT value as Route 53 writes it: one quoted string.
fn quoted(value: &str) -> String {
    format!("\"{value}\"")
}

/// Run a Route 53 call with a time limit; a failure names the IAM action `action` (the
/// missing permission, when refused).
async fn bounded<T, E>(
    action: &str,
    call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, UpstreamFailure>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => {
            r.map_err(|e| UpstreamFailure::plain(format!("Route 53: {}", aws_sdk_error(action, e))))
        }
        Err(_) => Err(UpstreamFailure::plain(format!(
            "Route 53: no answer to {action} within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

impl Route53 {
    /// The provider `config`, with static `credentials` or else the profile or the
    /// standard AWS chain. Unusable settings are [`SyncError::Config`].
    pub async fn new(
        config: Route53Config,
        credentials: Option<AwsCredentials>,
    ) -> Result<Route53, SyncError> {
        let conf = aws_sdk_config(
            Some(config.region.as_deref().unwrap_or(DEFAULT_REGION)),
            config.endpoint_url.as_deref(),
            config.profile.as_deref(),
            credentials,
        )
        .await?;
        Ok(Route53 {
            config,
            client: aws_sdk_route53::Client::new(&conf),
            zones: Default::default(),
        })
    }

    /// The hosted zone `id`: its name and name servers (`GetHostedZone`).
    async fn hosted_zone(&self, id: &str) -> Result<Zone, UpstreamFailure> {
        let out = bounded(
            "route53:GetHostedZone",
            self.client.get_hosted_zone().id(bare_zone_id(id)).send(),
        )
        .await?;
        let zone = out
            .hosted_zone()
            .ok_or_else(|| UpstreamFailure::plain("Route 53 sent no hosted zone"))?;
        if zone.config().is_some_and(|c| c.private_zone()) {
            return Err(UpstreamFailure::plain(format!(
                "Route 53 hosted zone {id} ({}) is private: ACME CAs query public DNS",
                zone.name()
            )));
        }
        Ok(Zone {
            id: bare_zone_id(zone.id()).to_string(),
            name: plain(zone.name()),
            nameservers: out
                .delegation_set()
                .map(|d| d.name_servers().to_vec())
                .unwrap_or_default(),
        })
    }

    /// The public hosted zone named exactly `name`, if there is one.
    async fn zone_named(&self, name: &str) -> Result<Option<String>, UpstreamFailure> {
        let out = bounded(
            "route53:ListHostedZonesByName",
            self.client
                .list_hosted_zones_by_name()
                .dns_name(format!("{name}."))
                .max_items(10)
                .send(),
        )
        .await?;
        let found: Vec<&str> = out
            .hosted_zones()
            .iter()
            .filter(|z| plain(z.name()) == name && !z.config().is_some_and(|c| c.private_zone()))
            .map(|z| bare_zone_id(z.id()))
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.to_string())),
            _ => Err(UpstreamFailure::plain(format!(
                "Route 53 has several public hosted zones named {name}: set hosted_zone_id"
            ))),
        }
    }

    /// The hosted zone that holds `name`: the configured one, or the public zone whose
    /// name is the longest suffix of `name`.
    async fn zone_for(&self, name: &str) -> Result<Zone, UpstreamFailure> {
        let name = plain(name);
        let mut zones = self.zones.lock().await;
        if let Some(z) = zones.get(&name) {
            return Ok(z.clone());
        }
        let zone = match &self.config.hosted_zone_id {
            Some(id) => self.hosted_zone(id).await?,
            None => {
                let labels: Vec<&str> = name.split('.').collect();
                let mut found = None;
                for i in 0..labels.len().min(MAX_LABELS) {
                    let suffix = labels[i..].join(".");
                    if let Some(id) = self.zone_named(&suffix).await? {
                        found = Some(id);
                        break;
                    }
                }
                let id = found.ok_or_else(|| {
                    UpstreamFailure::plain(format!("Route 53 has no public hosted zone for {name}"))
                })?;
                self.hosted_zone(&id).await?
            }
        };
        if name != zone.name && !name.ends_with(&format!(".{}", zone.name)) {
            return Err(UpstreamFailure::plain(format!(
                "{name} is not in Route 53 hosted zone {} ({})",
                zone.id, zone.name
            )));
        }
        zones.insert(name, zone.clone());
        Ok(zone)
    }

    /// The TXT record set at `name` in `zone` (its TTL and values), if there is one.
    async fn txt_set(
        &self,
        zone: &Zone,
        name: &str,
    ) -> Result<Option<(i64, Vec<String>)>, UpstreamFailure> {
        let out = bounded(
            "route53:ListResourceRecordSets",
            self.client
                .list_resource_record_sets()
                .hosted_zone_id(&zone.id)
                .start_record_name(name)
                .start_record_type(RrType::Txt)
                .max_items(1)
                .send(),
        )
        .await?;
        let Some(set) = out.resource_record_sets().first() else {
            return Ok(None);
        };
        if plain(set.name()) != plain(name) || set.r#type() != &RrType::Txt {
            return Ok(None);
        }
        if set.set_identifier().is_some() || set.alias_target().is_some() {
            return Err(UpstreamFailure::plain(format!(
                "the TXT records at {name} use a routing policy or an alias: certkeeper only \
                 changes simple record sets"
            )));
        }
        let values = set
            .resource_records()
            .iter()
            .map(|r| r.value().to_string())
            .collect();
        Ok(Some((set.ttl().unwrap_or(TXT_TTL), values)))
    }

    /// Write `values` at `name` (`UPSERT`, or `DELETE` of the set as read when `values` is
    /// empty); answers the change's id.
    async fn write(
        &self,
        zone: &Zone,
        name: &str,
        ttl: i64,
        action: ChangeAction,
        values: &[String],
    ) -> Result<String, UpstreamFailure> {
        let bad = |e: aws_sdk_route53::error::BuildError| {
            UpstreamFailure::plain(format!("Route 53 change: {e}"))
        };
        let records = values
            .iter()
            .map(|v| ResourceRecord::builder().value(v).build().map_err(bad))
            .collect::<Result<Vec<_>, _>>()?;
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Txt)
            .ttl(ttl)
            .set_resource_records(Some(records))
            .build()
            .map_err(bad)?;
        let change = Change::builder()
            .action(action)
            .resource_record_set(set)
            .build()
            .map_err(bad)?;
        let batch = ChangeBatch::builder()
            .comment("ACME dns-01 challenge (certkeeper)")
            .changes(change)
            .build()
            .map_err(bad)?;
        let out = bounded(
            "route53:ChangeResourceRecordSets",
            self.client
                .change_resource_record_sets()
                .hosted_zone_id(&zone.id)
                .change_batch(batch)
                .send(),
        )
        .await?;
        Ok(out
            .change_info()
            .map(|c| c.id().to_string())
            .unwrap_or_default())
    }

    /// Wait until the change `id` is `INSYNC` on Route 53's servers, at most
    /// [`SYNC_TIMEOUT`].
    async fn wait_insync(&self, id: &str) -> Result<(), UpstreamFailure> {
        let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
        loop {
            let out = bounded(
                "route53:GetChange",
                self.client
                    .get_change()
                    .id(id.trim_start_matches("/change/"))
                    .send(),
            )
            .await?;
            if out
                .change_info()
                .is_some_and(|c| c.status() == &ChangeStatus::Insync)
            {
                return Ok(());
            }
            if tokio::time::Instant::now() + SYNC_POLL >= deadline {
                return Err(UpstreamFailure::plain(format!(
                    "Route 53 change {id} was not INSYNC within {}s",
                    SYNC_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(SYNC_POLL).await;
        }
    }

    async fn add(&self, name: &str, value: &str) -> Result<(), UpstreamFailure> {
        let zone = self.zone_for(name).await?;
        let ours = quoted(value);
        let (ttl, mut values) = self
            .txt_set(&zone, name)
            .await?
            .unwrap_or((TXT_TTL, vec![]));
        if values.contains(&ours) {
            return Ok(());
        }
        if values.len() >= MAX_VALUES {
            return Err(UpstreamFailure::plain(format!(
                "{name} already holds {MAX_VALUES} TXT values in Route 53"
            )));
        }
        values.push(ours);
        let change = self
            .write(&zone, name, ttl, ChangeAction::Upsert, &values)
            .await?;
        self.wait_insync(&change).await
    }

    async fn remove(&self, name: &str, value: &str) -> Result<(), UpstreamFailure> {
        let zone = self.zone_for(name).await?;
        let ours = quoted(value);
        let Some((ttl, values)) = self.txt_set(&zone, name).await? else {
            return Ok(());
        };
        if !values.contains(&ours) {
            return Ok(());
        }
        let rest: Vec<String> = values.iter().filter(|v| **v != ours).cloned().collect();
        if rest.is_empty() {
            self.write(&zone, name, ttl, ChangeAction::Delete, &values)
                .await?;
        } else {
            self.write(&zone, name, ttl, ChangeAction::Upsert, &rest)
                .await?;
        }
        Ok(())
    }

    async fn servers(&self, name: &str) -> Result<Vec<SocketAddr>, UpstreamFailure> {
        if !self.config.nameservers.is_empty() {
            return Ok(self.config.nameservers.clone());
        }
        let zone = self.zone_for(name).await?;
        let mut out = Vec::new();
        for ns in &zone.nameservers {
            let host = ns.trim_end_matches('.');
            let addrs: Vec<SocketAddr> =
                tokio::time::timeout(CALL_TIMEOUT, tokio::net::lookup_host((host, 53)))
                    .await
                    .map_err(|_| UpstreamFailure::plain(format!("resolving {host}: timed out")))?
                    .map_err(|e| UpstreamFailure::plain(format!("resolving {host}: {e}")))?
                    .collect();
            // One address per server: IPv4 where it has one.
            if let Some(a) = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
                out.push(*a);
            }
        }
        if out.is_empty() {
            return Err(UpstreamFailure::plain(format!(
                "Route 53 hosted zone {} lists no name servers to wait for: set nameservers",
                zone.id
            )));
        }
        Ok(out)
    }

    async fn check_zone(&self) -> Result<Value, UpstreamFailure> {
        match &self.config.hosted_zone_id {
            Some(id) => {
                let zone = self.hosted_zone(id).await?;
                Ok(json!({
                    "hosted_zone_id": zone.id, "zone": zone.name, "nameservers": zone.nameservers,
                }))
            }
            None => {
                let out = bounded(
                    "route53:ListHostedZonesByName",
                    self.client.list_hosted_zones_by_name().max_items(1).send(),
                )
                .await?;
                Ok(json!({"hosted_zones_visible": !out.hosted_zones().is_empty()}))
            }
        }
    }
}

impl DnsProvider for Route53 {
    fn set_txt<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>> {
        Box::pin(self.add(name, value))
    }

    fn remove_txt<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>> {
        Box::pin(self.remove(name, value))
    }

    fn authoritative<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SocketAddr>, UpstreamFailure>> {
        Box::pin(self.servers(name))
    }

    fn check(&self) -> BoxFuture<'_, Result<Value, UpstreamFailure>> {
        Box::pin(self.check_zone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let ok = Route53Config {
            hosted_zone_id: Some("/hostedzone/Z1D633PJN98FT9".into()),
            ..Default::default()
        };
        assert!(ok.validate(None).is_ok());
        let bad = Route53Config {
            hosted_zone_id: Some("Z1 bad".into()),
            ..Default::default()
        };
        assert!(bad.validate(None).unwrap_err().contains("hosted_zone_id"));
        let creds = AwsCredentials {
            access_key_id: String::new(),
            secret_access_key: "s".into(),
            session_token: None,
        };
        assert!(Route53Config::default().validate(Some(&creds)).is_err());
        let many = Route53Config {
            nameservers: vec!["127.0.0.1:53".parse().unwrap(); 11],
            ..Default::default()
        };
        assert!(many.validate(None).is_err());
    }
}
