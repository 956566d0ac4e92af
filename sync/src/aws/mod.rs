//! The AWS destinations, all through the official SDKs: Certificate Manager ([`AwsAcm`]),
//! Secrets Manager ([`AwsSecretsManager`]) and Elastic Load Balancing listeners
//! ([`AwsElb`]). They share how the SDK is configured (region, endpoint, credentials: the
//! static ones sealed with the destination, or the standard AWS chain) and how SDK errors
//! are sorted, naming the IAM action that was refused.

mod acm;
mod elb;
mod secrets_manager;

use aws_sdk_acm::config::http::HttpResponse;
use aws_sdk_acm::error::{ProvideErrorMetadata, SdkError};
use serde::{Deserialize, Serialize};

use crate::SyncError;

pub use acm::{AwsAcm, AwsAcmConfig};
pub use elb::{AwsElb, AwsElbConfig, ListenerSlot};
pub use secrets_manager::{AwsSecretsManager, AwsSecretsManagerConfig, SecretFormat};

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

/// Whether `region` looks like an AWS region name.
fn check_region(region: &str) -> Result<(), SyncError> {
    if region.is_empty()
        || region.len() > 32
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(SyncError::Config(format!("region {region:?} is not valid")));
    }
    Ok(())
}

/// The SDK configuration for a destination (or any other AWS client of certkeeper's, such
/// as the Route 53 DNS provider and the AWS Private CA issuer): the region and endpoint it
/// names, and its static
/// credentials, or else the named profile of the shared AWS config (static keys,
/// `credential_process`, SSO, assumed roles), or else the standard chain. Bad settings are
/// [`SyncError::Config`].
pub async fn sdk_config(
    region: Option<&str>,
    endpoint_url: Option<&str>,
    profile: Option<&str>,
    credentials: Option<AwsCredentials>,
) -> Result<aws_config::SdkConfig, SyncError> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(profile) = profile {
        if profile.is_empty()
            || profile.len() > 64
            || !profile
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@+".contains(&b))
        {
            return Err(SyncError::Config(format!(
                "profile {profile:?} must be 1 to 64 letters, digits or -_.@+"
            )));
        }
        if credentials.is_some() {
            return Err(SyncError::Config(
                "give either a profile or credentials, not both".into(),
            ));
        }
        // The profile's credentials only (not the environment's first, as the default
        // chain would have it); its region too, unless the destination names one.
        loader = loader.profile_name(profile).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build(),
        );
    }
    if let Some(region) = region {
        check_region(region)?;
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(ep) = endpoint_url {
        let u = url::Url::parse(ep)
            .map_err(|e| SyncError::Config(format!("endpoint_url {ep:?}: {e}")))?;
        if !matches!(u.scheme(), "https" | "http") {
            return Err(SyncError::Config(format!(
                "endpoint_url {ep:?} must be an http(s) URL"
            )));
        }
        loader = loader.endpoint_url(ep);
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
    Ok(conf)
}

/// ACM and Secrets Manager tags: at most 50, keys 1-128 characters not starting with
/// `aws:`, values at most 256 characters.
fn check_tags(tags: &std::collections::BTreeMap<String, String>) -> Result<(), SyncError> {
    if tags.len() > 50 {
        return Err(SyncError::Config("AWS allows at most 50 tags".into()));
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

/// Sort an SDK error of any AWS service; `action` is the IAM action of the call
/// (`acm:ImportCertificate`), named when the call was refused for want of permission.
pub fn sdk_error<E>(action: &str, e: SdkError<E, HttpResponse>) -> SyncError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut code = e.code().unwrap_or("").to_string();
    let mut message = e.message().unwrap_or("").to_string();
    let status = e.raw_response().map(|r| r.status().as_u16());
    // An XML error where JSON was expected (a proxy, or an IAM layer in front of a JSON
    // service): read its code and message.
    if code.is_empty()
        && let Some(body) = e.raw_response().and_then(|r| r.body().bytes())
    {
        let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
        let tag = |t: &str| {
            let open = format!("<{t}>");
            let start = text.find(&open)? + open.len();
            let len = text[start..].find(&format!("</{t}>"))?;
            Some(text[start..start + len].to_string())
        };
        if let Some(c) = tag("Code") {
            code = c;
            message = tag("Message").unwrap_or_default();
        }
    }
    let throttled = matches!(
        code.as_str(),
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded"
    ) || matches!(status, Some(429 | 503));
    match &e {
        SdkError::ServiceError(_) if throttled => SyncError::Throttled {
            message: format!("{action}: {code}: {message}"),
            retry_after: None,
        },
        SdkError::ServiceError(_) => {
            let credentials = matches!(
                code.as_str(),
                "UnrecognizedClientException"
                    | "InvalidClientTokenId"
                    | "InvalidSignatureException"
                    | "SignatureDoesNotMatch"
                    | "ExpiredTokenException"
                    | "ExpiredToken"
            );
            let denied = matches!(
                code.as_str(),
                "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation"
            ) || (status == Some(403) && !credentials);
            if credentials {
                SyncError::Auth(format!(
                    "the credentials were not accepted ({code}: {message})"
                ))
            } else if denied {
                let said = if message.is_empty() {
                    String::new()
                } else {
                    format!(" ({message})")
                };
                SyncError::Auth(format!("missing permission {action}{said}"))
            } else {
                SyncError::Remote {
                    code: if code.is_empty() {
                        format!("HTTP {}", status.unwrap_or(0))
                    } else {
                        code
                    },
                    message: format!("{action}: {message}"),
                    retryable: status.is_some_and(|s| s >= 500),
                }
            }
        }
        SdkError::ConstructionFailure(_) => {
            SyncError::Config(format!("{action}: {e}: {}", source_chain(&e)))
        }
        _ => SyncError::Transport(format!("{action}: {e}: {}", source_chain(&e))),
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
        let mut meta = ErrorMetadata::builder().message("said so");
        if !code.is_empty() {
            meta = meta.code(code);
        }
        SdkError::service_error(ImportCertificateError::generic(meta.build()), raw)
    }

    #[test]
    fn aws_errors_are_sorted() {
        let action = "acm:ImportCertificate";
        let e = sdk_error(action, service_error(400, "ThrottlingException"));
        assert!(
            matches!(e, SyncError::Throttled { .. }) && e.retryable(),
            "{e}"
        );
        assert!(matches!(
            sdk_error(action, service_error(503, "ServiceUnavailable")),
            SyncError::Throttled { .. }
        ));
        let e = sdk_error(action, service_error(400, "AccessDeniedException"));
        assert!(
            matches!(&e, SyncError::Auth(m) if m.contains("missing permission acm:ImportCertificate")),
            "{e}"
        );
        let e = sdk_error(action, service_error(403, ""));
        assert!(
            matches!(&e, SyncError::Auth(m) if m.contains("acm:ImportCertificate")),
            "{e}"
        );
        let e = sdk_error(action, service_error(403, "InvalidClientTokenId"));
        assert!(
            matches!(&e, SyncError::Auth(m) if m.contains("credentials were not accepted")),
            "{e}"
        );
        let e = sdk_error(action, service_error(400, "ValidationException"));
        assert!(
            matches!(e, SyncError::Remote { .. }) && !e.retryable(),
            "{e}"
        );
        assert!(sdk_error(action, service_error(500, "InternalFailure")).retryable());
    }
}
