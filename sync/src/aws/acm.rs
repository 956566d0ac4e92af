//! AWS Certificate Manager through the official SDK: `ImportCertificate` with the PEM
//! certificate, key and chain; every later version is re-imported to the same ARN so
//! listeners keep working; tags go with the first import and through
//! `AddTagsToCertificate` afterwards (ACM refuses tags on re-import).

use std::collections::BTreeMap;

use aws_sdk_acm::error::ProvideErrorMetadata;
use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::Tag;
use serde::{Deserialize, Serialize};

use super::{AwsCredentials, check_tags, sdk_config, sdk_error};
use crate::{BoxFuture, CertificateVersion, Destination, PublicKeyKind, Pushed, SyncError};

/// Where to import (everything but the credentials).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct AwsAcmConfig {
    /// The region; when absent, from the standard AWS chain (`AWS_REGION`, profile).
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
    /// Tags on the ACM certificate.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An ACM destination.
#[derive(Debug, Clone)]
pub struct AwsAcm {
    client: aws_sdk_acm::Client,
    tags: BTreeMap<String, String>,
}

impl AwsAcm {
    /// A destination; region and credentials fall back to the standard AWS chain.
    pub async fn new(
        cfg: AwsAcmConfig,
        credentials: Option<AwsCredentials>,
    ) -> Result<Self, SyncError> {
        check_tags(&cfg.tags)?;
        let conf = sdk_config(
            cfg.region.as_deref(),
            cfg.endpoint_url.as_deref(),
            cfg.profile.as_deref(),
            credentials,
        )
        .await?;
        Ok(AwsAcm {
            client: aws_sdk_acm::Client::new(&conf),
            tags: cfg.tags,
        })
    }

    /// The SDK client, for callers that want to read back what was imported.
    pub fn client(&self) -> &aws_sdk_acm::Client {
        &self.client
    }
}

/// ACM tags from a map.
pub(super) fn tag_list(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, SyncError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| SyncError::Config(format!("tag {k:?}: {e}")))
        })
        .collect()
}

/// Import `v` into ACM: a new certificate with `tags`, or over the one at `arn` (whose tags
/// are then added apart, as ACM refuses tags on re-import).
pub(super) async fn import(
    client: &aws_sdk_acm::Client,
    tags: &BTreeMap<String, String>,
    v: &CertificateVersion,
    arn: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<Pushed, SyncError> {
    let facts = v.facts()?;
    refuse_unimportable(&facts, now)?;
    let mut req = client
        .import_certificate()
        .certificate(Blob::new(v.certificate_pem()))
        .private_key(Blob::new(v.key_pem()));
    if !v.chain_der.is_empty() {
        req = req.certificate_chain(Blob::new(v.chain_pem()));
    }
    let tags = tag_list(tags)?;
    match arn {
        Some(arn) => req = req.certificate_arn(arn),
        None => {
            for t in &tags {
                req = req.tags(t.clone());
            }
        }
    }
    let out = req
        .send()
        .await
        .map_err(|e| sdk_error("acm:ImportCertificate", e))?;
    let new_arn = out
        .certificate_arn()
        .ok_or_else(|| SyncError::Transport("ImportCertificate returned no ARN".into()))?
        .to_string();
    if arn.is_some() && !tags.is_empty() {
        client
            .add_tags_to_certificate()
            .certificate_arn(&new_arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error("acm:AddTagsToCertificate", e))?;
    }
    Ok(Pushed {
        remote_id: new_arn,
        remote_version: Some(facts.serial_hex),
    })
}

/// Delete an ACM certificate; one that is already gone is fine.
pub(super) async fn delete(client: &aws_sdk_acm::Client, arn: &str) -> Result<(), SyncError> {
    match client
        .delete_certificate()
        .certificate_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
        Err(e) => Err(sdk_error("acm:DeleteCertificate", e)),
    }
}

/// The read-only check of ACM access: one page of `ListCertificates`.
pub(super) async fn check(client: &aws_sdk_acm::Client) -> Result<String, SyncError> {
    client
        .list_certificates()
        .max_items(1)
        .send()
        .await
        .map_err(|e| sdk_error("acm:ListCertificates", e))?;
    Ok(format!(
        "acm:ListCertificates in {}",
        client.config().region().map(|r| r.as_ref()).unwrap_or("?")
    ))
}

/// What ACM refuses to import: key types other than RSA 1024-4096 and ECDSA P-256/384/521,
/// and certificates outside their validity.
fn refuse_unimportable(
    facts: &crate::version::Facts,
    now: time::OffsetDateTime,
) -> Result<(), SyncError> {
    match facts.key {
        PublicKeyKind::Rsa(1024 | 2048 | 3072 | 4096)
        | PublicKeyKind::EcP256
        | PublicKeyKind::EcP384
        | PublicKeyKind::EcP521 => {}
        ref other => {
            return Err(SyncError::Refused(format!(
                "ACM does not import {other} keys (RSA 1024-4096 or ECDSA P-256/P-384/P-521 only)"
            )));
        }
    }
    if facts.not_before > now {
        return Err(SyncError::Refused(format!(
            "the certificate is not valid before {}; ACM refuses it until then",
            facts.not_before
        )));
    }
    if facts.not_after <= now {
        return Err(SyncError::Refused("the certificate has expired".into()));
    }
    Ok(())
}

impl Destination for AwsAcm {
    fn kind(&self) -> &'static str {
        "aws_acm"
    }

    fn push<'a>(
        &'a self,
        version: &'a CertificateVersion,
        remote_id: Option<&'a str>,
        now: time::OffsetDateTime,
    ) -> BoxFuture<'a, Result<Pushed, SyncError>> {
        Box::pin(import(&self.client, &self.tags, version, remote_id, now))
    }

    fn delete<'a>(&'a self, remote_id: &'a str) -> BoxFuture<'a, Result<(), SyncError>> {
        Box::pin(delete(&self.client, remote_id))
    }

    fn check(&self) -> BoxFuture<'_, Result<Vec<String>, SyncError>> {
        Box::pin(async move { Ok(vec![check(&self.client).await?]) })
    }
}
