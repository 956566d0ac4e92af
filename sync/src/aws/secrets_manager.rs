//! AWS Secrets Manager through the official SDK: the certificate, its chain and its key as
//! one secret, JSON (`certificate`, `private_key`, `certificate_chain`) or PEM text; the
//! first push creates the secret (or adopts one of that name), every later push is a new
//! version of it (`PutSecretValue`), idempotent per certificate through its request token.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::Tag;
use serde::{Deserialize, Serialize};

use super::{AwsCredentials, check_tags, sdk_config, sdk_error};
use crate::{BoxFuture, CertificateVersion, Destination, Pushed, SyncError};

/// Secrets Manager's limit on a secret value.
const MAX_SECRET_BYTES: usize = 65_536;

/// How the secret value is written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecretFormat {
    /// `{"certificate", "private_key", "certificate_chain"}`, each PEM.
    #[default]
    Json,
    /// PEM text: the certificate, its chain (nearest first), then the private key.
    Pem,
}

fn default_recovery_window() -> i64 {
    30
}

/// Which secret, and how (everything but the credentials).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsSecretsManagerConfig {
    /// The secret's name (1-512 of letters, digits and `/_+=.@-`).
    pub secret_name: String,
    /// JSON (default) or PEM text.
    #[serde(default)]
    pub format: SecretFormat,
    /// The region; when absent, from the standard AWS chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint (VPC endpoint, or a test server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// A profile of the shared AWS config and credentials files (`AWS_CONFIG_FILE`,
    /// `~/.aws/config`) to take credentials from: static keys, `credential_process`, SSO,
    /// or a role to assume. Without it (and without stored credentials), the default chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The KMS key that encrypts the secret (id, ARN or alias); the account's
    /// `aws/secretsmanager` key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Tags set when the secret is created.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// When certkeeper removes the secret: days it stays recoverable (7-30, default 30).
    #[serde(default = "default_recovery_window")]
    pub recovery_window_days: i64,
}

/// A Secrets Manager destination.
#[derive(Debug, Clone)]
pub struct AwsSecretsManager {
    client: aws_sdk_secretsmanager::Client,
    cfg: AwsSecretsManagerConfig,
}

fn check_secret_name(name: &str) -> Result<(), SyncError> {
    if name.is_empty()
        || name.len() > 512
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
    {
        return Err(SyncError::Config(format!(
            "secret_name {name:?} must be 1 to 512 letters, digits or /_+=.@-"
        )));
    }
    Ok(())
}

impl AwsSecretsManager {
    /// A destination; region and credentials fall back to the standard AWS chain.
    pub async fn new(
        cfg: AwsSecretsManagerConfig,
        credentials: Option<AwsCredentials>,
    ) -> Result<Self, SyncError> {
        check_secret_name(&cfg.secret_name)?;
        check_tags(&cfg.tags)?;
        if !(7..=30).contains(&cfg.recovery_window_days) {
            return Err(SyncError::Config(
                "recovery_window_days must be between 7 and 30".into(),
            ));
        }
        if let Some(k) = &cfg.kms_key_id
            && (k.is_empty() || k.len() > 2048)
        {
            return Err(SyncError::Config(
                "kms_key_id must be 1 to 2048 characters".into(),
            ));
        }
        let conf = sdk_config(
            cfg.region.as_deref(),
            cfg.endpoint_url.as_deref(),
            cfg.profile.as_deref(),
            credentials,
        )
        .await?;
        Ok(AwsSecretsManager {
            client: aws_sdk_secretsmanager::Client::new(&conf),
            cfg,
        })
    }

    /// The SDK client, for callers that want to read back what was written.
    pub fn client(&self) -> &aws_sdk_secretsmanager::Client {
        &self.client
    }

    /// The secret value of `v` in the configured format.
    pub fn value(&self, v: &CertificateVersion) -> String {
        match self.cfg.format {
            SecretFormat::Json => serde_json::json!({
                "certificate": v.certificate_pem(),
                "private_key": v.key_pem(),
                "certificate_chain": v.chain_pem(),
            })
            .to_string(),
            SecretFormat::Pem => {
                format!("{}{}{}", v.certificate_pem(), v.chain_pem(), v.key_pem())
            }
        }
    }

    async fn put(
        &self,
        v: &CertificateVersion,
        remote_id: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<Pushed, SyncError> {
        let facts = v.facts()?;
        if facts.not_after <= now {
            return Err(SyncError::Refused("the certificate has expired".into()));
        }
        let value = self.value(v);
        if value.len() > MAX_SECRET_BYTES {
            return Err(SyncError::Refused(format!(
                "the secret would be {} bytes; Secrets Manager takes at most {MAX_SECRET_BYTES}",
                value.len()
            )));
        }
        // The same certificate always gets the same token, so a retried push makes no
        // second version.
        let token = format!("certkeeper-{:0>32}", facts.serial_hex);
        if remote_id.is_none() {
            let tags: Vec<Tag> = self
                .cfg
                .tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            let created = self
                .client
                .create_secret()
                .name(&self.cfg.secret_name)
                .description("certificate, chain and key, written by certkeeper")
                .set_kms_key_id(self.cfg.kms_key_id.clone())
                .set_tags((!tags.is_empty()).then_some(tags))
                .secret_string(&value)
                .client_request_token(&token)
                .send()
                .await;
            match created {
                Ok(out) => {
                    return Ok(Pushed {
                        remote_id: out
                            .arn()
                            .ok_or_else(|| {
                                SyncError::Transport("CreateSecret returned no ARN".into())
                            })?
                            .to_string(),
                        remote_version: out.version_id().map(str::to_string),
                    });
                }
                // A secret of that name exists: the new version goes there.
                Err(e) if e.code() == Some("ResourceExistsException") => {}
                Err(e) => return Err(sdk_error("secretsmanager:CreateSecret", e)),
            }
        }
        let out = self
            .client
            .put_secret_value()
            .secret_id(remote_id.unwrap_or(&self.cfg.secret_name))
            .secret_string(&value)
            .client_request_token(&token)
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:PutSecretValue", e))?;
        Ok(Pushed {
            remote_id: out
                .arn()
                .ok_or_else(|| SyncError::Transport("PutSecretValue returned no ARN".into()))?
                .to_string(),
            remote_version: out.version_id().map(str::to_string),
        })
    }

    async fn remove(&self, remote_id: &str) -> Result<(), SyncError> {
        match self
            .client
            .delete_secret()
            .secret_id(remote_id)
            .recovery_window_in_days(self.cfg.recovery_window_days)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(sdk_error("secretsmanager:DeleteSecret", e)),
        }
    }

    async fn probe(&self) -> Result<Vec<String>, SyncError> {
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let described = self
            .client
            .describe_secret()
            .secret_id(&self.cfg.secret_name)
            .send()
            .await;
        match described {
            Ok(_) => Ok(vec![format!(
                "secretsmanager:DescribeSecret on {:?} in {region}",
                self.cfg.secret_name
            )]),
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                self.client
                    .list_secrets()
                    .max_results(1)
                    .send()
                    .await
                    .map_err(|e| sdk_error("secretsmanager:ListSecrets", e))?;
                Ok(vec![format!(
                    "secretsmanager:ListSecrets in {region}; secret {:?} does not exist there yet \
                     and is created by the first push",
                    self.cfg.secret_name
                )])
            }
            Err(e) => Err(sdk_error("secretsmanager:DescribeSecret", e)),
        }
    }
}

impl Destination for AwsSecretsManager {
    fn kind(&self) -> &'static str {
        "aws_secrets_manager"
    }

    fn push<'a>(
        &'a self,
        version: &'a CertificateVersion,
        remote_id: Option<&'a str>,
        now: time::OffsetDateTime,
    ) -> BoxFuture<'a, Result<Pushed, SyncError>> {
        Box::pin(self.put(version, remote_id, now))
    }

    fn delete<'a>(&'a self, remote_id: &'a str) -> BoxFuture<'a, Result<(), SyncError>> {
        Box::pin(self.remove(remote_id))
    }

    fn check(&self) -> BoxFuture<'_, Result<Vec<String>, SyncError>> {
        Box::pin(self.probe())
    }
}
