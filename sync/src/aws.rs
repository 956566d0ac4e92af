//! AWS Certificate Manager through the official SDK: `ImportCertificate` with the PEM
//! certificate, key and chain; every later version is re-imported to the same ARN so
//! listeners keep working; tags go with the first import and through
//! `AddTagsToCertificate` afterwards (ACM refuses tags on re-import).

use std::collections::BTreeMap;

use aws_sdk_acm::config::http::HttpResponse;
use aws_sdk_acm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::Tag;
use serde::{Deserialize, Serialize};

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
    /// Tags on the ACM certificate.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Static credentials kept (sealed) with the destination; without them the standard AWS
/// chain (environment, profile, instance role) is used.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// An ACM destination.
#[derive(Debug, Clone)]
pub struct AwsAcm {
    client: aws_sdk_acm::Client,
    tags: BTreeMap<String, String>,
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), SyncError> {
    if tags.len() > 50 {
        return Err(SyncError::Config("ACM allows at most 50 tags".into()));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || k.starts_with("aws:") {
            return Err(SyncError::Config(format!(
                "tag key {k:?} must be 1 to 128 characters and not start with aws:"
            )));
        }
        if v.chars().count() > 256 {
            return Err(SyncError::Config(format!(
                "the value of tag {k:?} is longer than 256 characters"
            )));
        }
    }
    Ok(())
}

impl AwsAcm {
    /// A destination; region and credentials fall back to the standard AWS chain.
    pub async fn new(
        cfg: AwsAcmConfig,
        credentials: Option<AwsCredentials>,
    ) -> Result<Self, SyncError> {
        check_tags(&cfg.tags)?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &cfg.region {
            if region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(SyncError::Config(format!("region {region:?} is not valid")));
            }
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(ep) = &cfg.endpoint_url {
            let u = url::Url::parse(ep)
                .map_err(|e| SyncError::Config(format!("endpoint_url {ep:?}: {e}")))?;
            if !matches!(u.scheme(), "https" | "http") {
                return Err(SyncError::Config(format!(
                    "endpoint_url {ep:?} must be an http(s) URL"
                )));
            }
            loader = loader.endpoint_url(ep.clone());
        }
        if let Some(c) = credentials {
            if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
                return Err(SyncError::Config(
                    "access_key_id and secret_access_key must not be empty".into(),
                ));
            }
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                c.session_token,
                None,
                "certkeeper",
            ));
        }
        let conf = loader.load().await;
        if conf.region().is_none() {
            return Err(SyncError::Config(
                "no region: set one on the destination or in the AWS environment".into(),
            ));
        }
        Ok(AwsAcm {
            client: aws_sdk_acm::Client::new(&conf),
            tags: cfg.tags,
        })
    }

    /// The SDK client, for callers that want to read back what was imported.
    pub fn client(&self) -> &aws_sdk_acm::Client {
        &self.client
    }

    fn tag_list(&self) -> Result<Vec<Tag>, SyncError> {
        self.tags
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| SyncError::Config(format!("tag {k:?}: {e}")))
            })
            .collect()
    }

    async fn import(
        &self,
        v: &CertificateVersion,
        arn: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<Pushed, SyncError> {
        let facts = v.facts()?;
        refuse_unimportable(&facts, now)?;
        let mut req = self
            .client
            .import_certificate()
            .certificate(Blob::new(v.certificate_pem()))
            .private_key(Blob::new(v.key_pem()));
        if !v.chain_der.is_empty() {
            req = req.certificate_chain(Blob::new(v.chain_pem()));
        }
        let tags = self.tag_list()?;
        match arn {
            Some(arn) => req = req.certificate_arn(arn),
            None => {
                for t in &tags {
                    req = req.tags(t.clone());
                }
            }
        }
        let out = req.send().await.map_err(sdk_error)?;
        let new_arn = out
            .certificate_arn()
            .ok_or_else(|| SyncError::Transport("ImportCertificate returned no ARN".into()))?
            .to_string();
        if arn.is_some() && !tags.is_empty() {
            self.client
                .add_tags_to_certificate()
                .certificate_arn(&new_arn)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(sdk_error)?;
        }
        Ok(Pushed {
            remote_id: new_arn,
            remote_version: Some(facts.serial_hex),
        })
    }

    async fn remove(&self, arn: &str) -> Result<(), SyncError> {
        match self
            .client
            .delete_certificate()
            .certificate_arn(arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(sdk_error(e)),
        }
    }
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

fn sdk_error<E>(e: SdkError<E, HttpResponse>) -> SyncError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().unwrap_or("").to_string();
    let message = e.message().unwrap_or("").to_string();
    let status = e.raw_response().map(|r| r.status().as_u16());
    let throttled = matches!(
        code.as_str(),
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded"
    ) || matches!(status, Some(429 | 503));
    match &e {
        SdkError::ServiceError(_) if throttled => SyncError::Throttled {
            message: format!("{code}: {message}"),
            retry_after: None,
        },
        SdkError::ServiceError(_) => {
            let auth = matches!(
                code.as_str(),
                "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException"
            );
            if auth {
                SyncError::Auth(format!("{code}: {message}"))
            } else {
                SyncError::Remote {
                    code,
                    message,
                    retryable: status.is_some_and(|s| s >= 500),
                }
            }
        }
        SdkError::ConstructionFailure(_) => SyncError::Config(format!("{e}: {}", source_chain(&e))),
        _ => SyncError::Transport(format!("{e}: {}", source_chain(&e))),
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        out.push(s.to_string());
        src = s.source();
    }
    out.join(": ")
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
        Box::pin(self.import(version, remote_id, now))
    }

    fn delete<'a>(&'a self, remote_id: &'a str) -> BoxFuture<'a, Result<(), SyncError>> {
        Box::pin(self.remove(remote_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_acm::error::ErrorMetadata;
    use aws_sdk_acm::operation::import_certificate::ImportCertificateError;

    fn service_error(status: u16, code: &str) -> SdkError<ImportCertificateError, HttpResponse> {
        let raw = HttpResponse::new(
            status.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        let err = ImportCertificateError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("said so")
                .build(),
        );
        SdkError::service_error(err, raw)
    }

    #[test]
    fn acm_errors_are_sorted() {
        let e = sdk_error(service_error(400, "ThrottlingException"));
        assert!(
            matches!(e, SyncError::Throttled { .. }) && e.retryable(),
            "{e}"
        );
        assert!(matches!(
            sdk_error(service_error(503, "ServiceUnavailable")),
            SyncError::Throttled { .. }
        ));
        assert!(matches!(
            sdk_error(service_error(400, "AccessDeniedException")),
            SyncError::Auth(_)
        ));
        let e = sdk_error(service_error(400, "ValidationException"));
        assert!(
            matches!(e, SyncError::Remote { .. }) && !e.retryable(),
            "{e}"
        );
        assert!(sdk_error(service_error(500, "InternalFailure")).retryable());
    }
}
