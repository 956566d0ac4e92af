//! Cloud destinations: their records (credentials sealed with the master key, never shown
//! again), the live clients built from them, connection tests, and bindings of managed
//! certificates (with removal of the remote copy when the destination asks for it).

use std::sync::Arc;

use certkeeper_sync::{
    AwsAcm, AwsAcmConfig, AwsCredentials, AwsElb, AwsElbConfig, AwsSecretsManager,
    AwsSecretsManagerConfig, AzureCredentialKind, AzureKeyVault, AzureKeyVaultConfig, Cloudflare,
    CloudflareConfig, Destination, SyncError,
};
use serde::Deserialize;

use super::Managed;
use crate::error::Error;
use crate::services::pki::Actor;
use crate::store::{DestinationRecord, new_id};

/// Kind name of AWS Certificate Manager destinations.
pub const AWS_ACM: &str = "aws_acm";
/// Kind name of Azure Key Vault destinations.
pub const AZURE_KEY_VAULT: &str = "azure_key_vault";
/// Kind name of AWS Secrets Manager destinations.
pub const AWS_SECRETS_MANAGER: &str = "aws_secrets_manager";
/// Kind name of AWS load balancer listener destinations.
pub const AWS_ELB: &str = "aws_elb";
/// Kind name of Cloudflare custom certificate destinations.
pub const CLOUDFLARE: &str = "cloudflare";
/// Every kind, as listed in errors.
const KINDS: &str = "aws_acm, aws_secrets_manager, aws_elb, azure_key_vault, cloudflare";

/// What a new destination is created with.
#[derive(Debug, Clone)]
pub struct NewDestination {
    /// Unique name.
    pub name: String,
    /// One of `aws_acm`, `aws_secrets_manager`, `aws_elb`, `azure_key_vault`, `cloudflare`.
    pub kind: String,
    /// The kind's settings (no secrets).
    pub config: serde_json::Value,
    /// The kind's credentials: `{"client_secret"}` for Azure (required); `{"api_token"}`
    /// for Cloudflare (required); `{"access_key_id", "secret_access_key",
    /// "session_token"?}` for AWS (optional: the standard AWS chain otherwise).
    pub credentials: Option<serde_json::Value>,
    /// Remove what certkeeper put there when a binding to this destination is deleted.
    pub remove_on_unbind: bool,
}

/// What a connection test found.
#[derive(Debug, Clone)]
pub struct ConnectionTest {
    /// The destination's kind.
    pub kind: String,
    /// What was checked and passed, in order.
    pub checks: Vec<String>,
    /// Why the test failed (the missing permission, the wrong region or zone, ...); None
    /// when every check passed.
    pub error: Option<String>,
}

/// Azure credentials as given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureSecret {
    client_secret: String,
}

/// Cloudflare credentials as given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudflareSecret {
    api_token: String,
}

/// The seal context of a destination's credentials.
pub(crate) fn seal_context(id: &str) -> Vec<u8> {
    format!("destination:{id}").into_bytes()
}

fn config_error(e: SyncError) -> Error {
    match e {
        SyncError::Config(m) => Error::BadRequest(m),
        other => Error::BadRequest(other.to_string()),
    }
}

/// A live client for a destination, and its configuration as stored (normalised).
async fn build(
    kind: &str,
    config: &serde_json::Value,
    credentials: Option<&[u8]>,
) -> Result<(Arc<dyn Destination>, serde_json::Value), Error> {
    let bad = |what: &str, e: serde_json::Error| Error::BadRequest(format!("{what}: {e}"));
    match kind {
        AZURE_KEY_VAULT => {
            let cfg: AzureKeyVaultConfig =
                serde_json::from_value(config.clone()).map_err(|e| bad("config", e))?;
            let secret = credentials
                .map(|c| {
                    serde_json::from_slice::<AzureSecret>(c).map_err(|e| bad("credentials", e))
                })
                .transpose()?
                .map(|s| s.client_secret);
            if cfg.credential == AzureCredentialKind::ClientSecret && secret.is_none() {
                return Err(Error::BadRequest(
                    "an azure_key_vault destination with the client_secret credential needs \
                     credentials {\"client_secret\": ...}"
                        .into(),
                ));
            }
            let stored = serde_json::to_value(&cfg).map_err(|e| bad("config", e))?;
            let dest = AzureKeyVault::new(cfg, secret).map_err(config_error)?;
            Ok((Arc::new(dest), stored))
        }
        CLOUDFLARE => {
            let cfg: CloudflareConfig =
                serde_json::from_value(config.clone()).map_err(|e| bad("config", e))?;
            let creds = credentials.ok_or_else(|| {
                Error::BadRequest(
                    "a cloudflare destination needs credentials {\"api_token\": ...}".into(),
                )
            })?;
            let secret: CloudflareSecret =
                serde_json::from_slice(creds).map_err(|e| bad("credentials", e))?;
            let stored = serde_json::to_value(&cfg).map_err(|e| bad("config", e))?;
            let dest = Cloudflare::new(cfg, secret.api_token).map_err(config_error)?;
            Ok((Arc::new(dest), stored))
        }
        AWS_ACM | AWS_SECRETS_MANAGER | AWS_ELB => {
            let creds: Option<AwsCredentials> = credentials
                .map(serde_json::from_slice)
                .transpose()
                .map_err(|e| bad("credentials", e))?;
            let (dest, stored): (Arc<dyn Destination>, _) = match kind {
                AWS_ACM => {
                    let cfg: AwsAcmConfig =
                        serde_json::from_value(config.clone()).map_err(|e| bad("config", e))?;
                    let stored = serde_json::to_value(&cfg).map_err(|e| bad("config", e))?;
                    let dest = AwsAcm::new(cfg, creds).await.map_err(config_error)?;
                    (Arc::new(dest), stored)
                }
                AWS_SECRETS_MANAGER => {
                    let cfg: AwsSecretsManagerConfig =
                        serde_json::from_value(config.clone()).map_err(|e| bad("config", e))?;
                    let stored = serde_json::to_value(&cfg).map_err(|e| bad("config", e))?;
                    let dest = AwsSecretsManager::new(cfg, creds)
                        .await
                        .map_err(config_error)?;
                    (Arc::new(dest), stored)
                }
                _ => {
                    let cfg: AwsElbConfig =
                        serde_json::from_value(config.clone()).map_err(|e| bad("config", e))?;
                    let stored = serde_json::to_value(&cfg).map_err(|e| bad("config", e))?;
                    let dest = AwsElb::new(cfg, creds).await.map_err(config_error)?;
                    (Arc::new(dest), stored)
                }
            };
            Ok((dest, stored))
        }
        other => Err(Error::BadRequest(format!(
            "destination kind {other:?} is not one of {KINDS}"
        ))),
    }
}

impl Managed {
    /// The live client of a destination (built once per replica).
    pub(super) async fn destination(&self, id: &str) -> Result<Arc<dyn Destination>, Error> {
        let mut cache = self.destinations.lock().await;
        if let Some(d) = cache.get(id) {
            return Ok(d.clone());
        }
        let rec = self.pki.store().get_destination(id).await?;
        let creds = match &rec.secret_sealed {
            Some(s) => Some(self.pki.master().open(s, &seal_context(&rec.id))?),
            None => None,
        };
        let (dest, _) = build(&rec.kind, &rec.config, creds.as_deref()).await?;
        cache.insert(rec.id.clone(), dest.clone());
        Ok(dest)
    }

    /// Record a destination after checking that a client can be built from it.
    pub async fn create_destination(
        &self,
        new: NewDestination,
        actor: &Actor,
    ) -> Result<DestinationRecord, Error> {
        super::validate_name(&new.name)?;
        let creds = new
            .credentials
            .as_ref()
            .map(|c| serde_json::to_vec(c).map_err(|e| Error::Internal(e.to_string())))
            .transpose()?;
        let (dest, config) = build(&new.kind, &new.config, creds.as_deref()).await?;
        let id = new_id();
        let secret_sealed = match &creds {
            Some(c) => Some(self.pki.master().seal(c, &seal_context(&id))?),
            None => None,
        };
        let rec = DestinationRecord {
            id: id.clone(),
            name: new.name.clone(),
            kind: new.kind.clone(),
            config,
            secret_sealed,
            remove_on_unbind: new.remove_on_unbind,
            created_at: self.pki.now(),
            created_by: actor.name.clone(),
        };
        let ev = actor
            .event("destination.create", "destination")
            .object(&id)
            .detail(serde_json::json!({
                "name": rec.name, "kind": rec.kind, "remove_on_unbind": rec.remove_on_unbind,
            }));
        self.pki.store().insert_destination(&rec, &ev).await?;
        self.destinations.lock().await.insert(id, dest);
        Ok(rec)
    }

    /// Test a destination's connection with read-only calls: credentials, permissions, and
    /// that the configured place (region, listener, secret, vault, zone) is right. Nothing
    /// changes; a failed test is an answer, not an error.
    pub async fn test_destination(&self, id: &str) -> Result<ConnectionTest, Error> {
        let rec = self.pki.store().get_destination(id).await?;
        let dest = self.destination(&rec.id).await?;
        let (checks, error) = match dest.check().await {
            Ok(checks) => (checks, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Ok(ConnectionTest {
            kind: rec.kind,
            checks,
            error,
        })
    }

    /// Delete a destination no certificate is bound to.
    pub async fn delete_destination(&self, id: &str, actor: &Actor) -> Result<(), Error> {
        let rec = self.pki.store().get_destination(id).await?;
        let ev = actor
            .event("destination.delete", "destination")
            .object(&rec.id)
            .detail(serde_json::json!({"name": rec.name}));
        self.pki
            .store()
            .delete_destination(&rec.id, &ev, self.pki.now())
            .await?;
        self.destinations.lock().await.remove(&rec.id);
        Ok(())
    }

    /// Create a managed certificate and bind it to `destinations` (ids or names, each
    /// checked before anything is issued); the first version is pushed by the next sync
    /// run.
    pub async fn create_bound(
        &self,
        new: super::NewManaged,
        destinations: &[String],
        actor: &Actor,
    ) -> Result<crate::store::ManagedRecord, Error> {
        let mut destinations = destinations.to_vec();
        destinations.sort();
        destinations.dedup();
        for d in &destinations {
            self.pki
                .store()
                .get_destination(d)
                .await
                .map_err(|_| Error::BadRequest(format!("no destination {d:?}")))?;
        }
        let rec = self.create(new, actor).await?;
        for d in &destinations {
            self.bind(&rec.id, d, actor).await?;
        }
        Ok(rec)
    }

    /// Bind a managed certificate to a destination; its current version is pushed by the
    /// next sync run.
    pub async fn bind(&self, managed: &str, destination: &str, actor: &Actor) -> Result<(), Error> {
        let m = self.pki.store().get_managed(managed).await?;
        let d = self
            .pki
            .store()
            .get_destination(destination)
            .await
            .map_err(|_| Error::BadRequest(format!("no destination {destination:?}")))?;
        let ev = actor
            .event("managed.bind", "managed_certificate")
            .object(&m.id)
            .detail(serde_json::json!({"destination": d.id}));
        self.pki
            .store()
            .insert_binding(&m.id, &d.id, &ev, self.pki.now())
            .await?;
        Ok(())
    }

    /// Remove a binding. With `delete_remote` (by default the destination's
    /// `remove_on_unbind`), what certkeeper put at the destination is removed first (if
    /// that fails, nothing changes); otherwise it stays.
    pub async fn unbind(
        &self,
        managed: &str,
        destination: &str,
        delete_remote: Option<bool>,
        actor: &Actor,
    ) -> Result<(), Error> {
        let store = self.pki.store();
        let m = store.get_managed(managed).await?;
        let d = store.get_destination(destination).await?;
        let b = store.get_binding(&m.id, &d.id).await?;
        let delete_remote = delete_remote.unwrap_or(d.remove_on_unbind);
        if delete_remote && let Some(remote) = &b.remote_id {
            self.remove_remote(&d, remote).await?;
        }
        let ev = actor
            .event("managed.unbind", "managed_certificate")
            .object(&m.id)
            .detail(serde_json::json!({
                "destination": d.id, "remote_id": b.remote_id, "remote_deleted": delete_remote,
            }));
        store
            .delete_binding(&m.id, &d.id, &ev, self.pki.now())
            .await?;
        Ok(())
    }

    /// Remove what a binding put at destination `d`.
    pub(super) async fn remove_remote(
        &self,
        d: &DestinationRecord,
        remote: &str,
    ) -> Result<(), Error> {
        let dest = self.destination(&d.id).await?;
        dest.delete(remote).await.map_err(|e| {
            Error::Conflict(format!(
                "removing {remote} at destination {:?} failed: {e}",
                d.name
            ))
        })
    }
}
