//! Azure Key Vault through the official Azure SDK for Rust: certificate import, read and
//! delete with `azure_security_keyvault_certificates`, authenticated by an `azure_identity`
//! credential chosen in the configuration (client secret, managed identity, or workload
//! identity federation). The SDK's HTTP pipeline runs over this crate's own HTTP client (a
//! custom transport), so timeouts, redirects and an extra trust anchor stay as configured.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::error::ErrorKind;
use azure_core::http::headers::RETRY_AFTER;
use azure_core::http::{ClientOptions, RequestContent, RetryOptions, Transport};
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use azure_security_keyvault_certificates::models::{
    CertificateAttributes, CertificatePolicy, ImportCertificateParameters, SecretProperties,
};
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use serde::{Deserialize, Serialize};

use crate::{BoxFuture, CertificateVersion, Destination, Pushed, SyncError};

/// The Key Vault REST API version used.
pub const API_VERSION: &str = "7.4";
/// The OAuth scope of Key Vault.
pub const SCOPE: &str = "https://vault.azure.net/.default";
/// Microsoft Entra ID's public-cloud authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// How the destination authenticates to Microsoft Entra ID.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AzureCredentialKind {
    /// An application's client secret (sealed with the destination's credentials).
    #[default]
    ClientSecret,
    /// The managed identity of the Azure VM, App Service or pod certkeeper runs in
    /// (system-assigned, or user-assigned when `client_id` is set).
    ManagedIdentity,
    /// Workload identity federation (AKS): a Kubernetes service account token exchanged
    /// for an Entra ID token.
    WorkloadIdentity,
}

/// Where and as whom to import (everything but the client secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AzureKeyVaultConfig {
    /// The vault, e.g. `https://example.vault.azure.net`.
    pub vault_url: String,
    /// The certificate name in the vault; each push is a new version of it.
    pub certificate_name: String,
    /// How to authenticate; `client_secret` when absent (configurations stored before the
    /// choice existed).
    #[serde(default)]
    pub credential: AzureCredentialKind,
    /// The Entra ID tenant (directory) id: required for `client_secret`; for
    /// `workload_identity` `AZURE_TENANT_ID` when absent; unused by `managed_identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The application (client) id: required for `client_secret`; for `workload_identity`
    /// `AZURE_CLIENT_ID` when absent; for `managed_identity` a user-assigned identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The Entra ID authority (sovereign clouds, or a private endpoint); when absent
    /// `AZURE_AUTHORITY_HOST`, else the public cloud. Unused by `managed_identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// `workload_identity`: the projected service account token file;
    /// `AZURE_FEDERATED_TOKEN_FILE` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_token_file: Option<String>,
    /// Require the vault's authentication challenge to name a resource whose domain the
    /// vault URL is under (the SDK's protection against a vault URL pointing elsewhere).
    /// Turn off only for private endpoints with another host name.
    #[serde(default = "yes")]
    pub verify_challenge_resource: bool,
    /// Tags set on every version.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// An extra trust anchor (PEM) for the vault and authority, for private endpoints that
    /// present a certificate from a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

fn yes() -> bool {
    true
}

/// Key Vault certificate names: 1 to 127 ASCII letters, digits and hyphens.
pub fn validate_certificate_name(name: &str) -> Result<(), SyncError> {
    if name.is_empty()
        || name.len() > 127
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(SyncError::Config(format!(
            "Key Vault certificate name {name:?} must be 1 to 127 letters, digits or '-'"
        )));
    }
    Ok(())
}

fn https_base(what: &str, raw: &str) -> Result<String, SyncError> {
    let u = url::Url::parse(raw).map_err(|e| SyncError::Config(format!("{what} {raw:?}: {e}")))?;
    if u.scheme() != "https" || u.host_str().is_none() {
        return Err(SyncError::Config(format!(
            "{what} {raw:?} must be an https URL"
        )));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(SyncError::Config(format!(
            "{what} {raw:?} must not have a query or fragment"
        )));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

fn validate_guidish(what: &str, v: &str) -> Result<(), SyncError> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(SyncError::Config(format!(
            "{what} must be an id or domain (letters, digits, '-', '.')"
        )));
    }
    Ok(())
}

fn optional_guidish(what: &str, v: Option<&String>) -> Result<(), SyncError> {
    v.map_or(Ok(()), |v| validate_guidish(what, v))
}

fn required<'a>(what: &str, v: Option<&'a String>) -> Result<&'a str, SyncError> {
    let v =
        v.ok_or_else(|| SyncError::Config(format!("a client_secret credential needs {what}")))?;
    validate_guidish(what, v)?;
    Ok(v)
}

fn sdk_config(what: &str, e: azure_core::Error) -> SyncError {
    SyncError::Config(format!("{what}: {e}"))
}

/// The SDK's client options: this crate's HTTP client as transport, and no SDK retries
/// (the jobs runner retries, honouring `Retry-After`).
fn client_options(http: &reqwest::Client, authority: Option<&str>) -> ClientOptions {
    let cloud = authority.map(|a| {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = a.to_string();
        Arc::new(CloudConfiguration::from(custom))
    });
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        retry: RetryOptions::none(),
        cloud,
        ..Default::default()
    }
}

/// The credential the configuration names.
fn credential(
    cfg: &AzureKeyVaultConfig,
    authority: Option<&str>,
    client_secret: Option<String>,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, SyncError> {
    let options = || client_options(http, authority);
    Ok(match cfg.credential {
        AzureCredentialKind::ClientSecret => {
            let tenant = required("tenant_id", cfg.tenant_id.as_ref())?;
            let client = required("client_id", cfg.client_id.as_ref())?;
            let secret = client_secret
                .filter(|s| !s.is_empty())
                .ok_or_else(|| SyncError::Config("the client secret is empty".into()))?;
            ClientSecretCredential::new(
                tenant,
                client.to_string(),
                Secret::new(secret),
                Some(ClientSecretCredentialOptions {
                    client_options: options(),
                }),
            )
            .map_err(|e| sdk_config("client secret credential", e))?
        }
        AzureCredentialKind::ManagedIdentity => {
            optional_guidish("client_id", cfg.client_id.as_ref())?;
            let opts = ManagedIdentityCredentialOptions {
                user_assigned_id: cfg.client_id.clone().map(UserAssignedId::ClientId),
                client_options: options(),
            };
            ManagedIdentityCredential::new(Some(opts))
                .map_err(|e| sdk_config("managed identity credential", e))?
        }
        AzureCredentialKind::WorkloadIdentity => {
            optional_guidish("tenant_id", cfg.tenant_id.as_ref())?;
            optional_guidish("client_id", cfg.client_id.as_ref())?;
            let opts = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: options(),
                },
                client_id: cfg.client_id.clone(),
                tenant_id: cfg.tenant_id.clone(),
                token_file_path: cfg.federated_token_file.as_ref().map(PathBuf::from),
            };
            WorkloadIdentityCredential::new(Some(opts))
                .map_err(|e| sdk_config("workload identity credential", e))?
        }
    })
}

/// A certificate client for the vault with a new credential.
fn certificate_client(
    cfg: &AzureKeyVaultConfig,
    vault: &str,
    authority: Option<&str>,
    client_secret: &Option<String>,
    http: &reqwest::Client,
) -> Result<CertificateClient, SyncError> {
    let cred = credential(cfg, authority, client_secret.clone(), http)?;
    CertificateClient::new(
        vault,
        cred,
        Some(CertificateClientOptions {
            api_version: API_VERSION.to_string(),
            client_options: client_options(http, None),
            verify_challenge_resource: Some(cfg.verify_challenge_resource),
        }),
    )
    .map_err(|e| sdk_config("vault_url", e))
}

/// An Azure Key Vault destination.
pub struct AzureKeyVault {
    cfg: AzureKeyVaultConfig,
    vault: String,
    authority: Option<String>,
    client_secret: Option<String>,
    http: reqwest::Client,
    /// Replaced (with its credential and token cache) when the vault refuses a token.
    client: std::sync::Mutex<Arc<CertificateClient>>,
}

impl std::fmt::Debug for AzureKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyVault")
            .field("vault", &self.vault)
            .field("certificate_name", &self.cfg.certificate_name)
            .field("credential", &self.cfg.credential)
            .finish_non_exhaustive()
    }
}

impl AzureKeyVault {
    /// A destination, after checking the configuration; `client_secret` is needed by (and
    /// only by) the `client_secret` credential kind.
    pub fn new(cfg: AzureKeyVaultConfig, client_secret: Option<String>) -> Result<Self, SyncError> {
        validate_certificate_name(&cfg.certificate_name)?;
        let vault = https_base("vault_url", &cfg.vault_url)?;
        let authority = cfg
            .authority
            .as_deref()
            .map(|a| https_base("authority", a))
            .transpose()?;
        if cfg.credential != AzureCredentialKind::ClientSecret && client_secret.is_some() {
            return Err(SyncError::Config(
                "only the client_secret credential takes a client secret".into(),
            ));
        }
        if cfg.credential != AzureCredentialKind::WorkloadIdentity
            && cfg.federated_token_file.is_some()
        {
            return Err(SyncError::Config(
                "federated_token_file is only for the workload_identity credential".into(),
            ));
        }
        let http = crate::http::client(cfg.ca_certificate.as_deref())?;
        let client = certificate_client(&cfg, &vault, authority.as_deref(), &client_secret, &http)?;
        Ok(AzureKeyVault {
            cfg,
            vault,
            authority,
            client_secret,
            http,
            client: std::sync::Mutex::new(Arc::new(client)),
        })
    }

    /// A certificate client with a fresh credential (and so an empty token cache).
    fn new_client(&self) -> Result<CertificateClient, SyncError> {
        certificate_client(
            &self.cfg,
            &self.vault,
            self.authority.as_deref(),
            &self.client_secret,
            &self.http,
        )
    }

    fn client(&self) -> Arc<CertificateClient> {
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Import; when the vault refuses the token (401; the SDK reuses a token its
    /// credential cached until it nears expiry), once more with a fresh credential.
    async fn import(&self, v: &CertificateVersion) -> Result<Pushed, SyncError> {
        match self.import_once(v).await {
            Err(SyncError::Auth(m)) if m.starts_with("import: 401") => {
                let fresh = Arc::new(self.new_client()?);
                *self
                    .client
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
                self.import_once(v).await
            }
            other => other,
        }
    }

    /// The certificate's URL without a version.
    fn certificate_url(&self) -> String {
        format!("{}/certificates/{}", self.vault, self.cfg.certificate_name)
    }

    async fn import_once(&self, v: &CertificateVersion) -> Result<Pushed, SyncError> {
        let bundle = format!("{}{}{}", v.key_pem(), v.certificate_pem(), v.chain_pem());
        let params = ImportCertificateParameters {
            base64_encoded_certificate: Some(bundle),
            certificate_policy: Some(CertificatePolicy {
                secret_properties: Some(SecretProperties {
                    content_type: Some("application/x-pem-file".into()),
                }),
                ..Default::default()
            }),
            certificate_attributes: Some(CertificateAttributes {
                enabled: Some(true),
                ..Default::default()
            }),
            tags: Some(
                self.cfg
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            ),
            ..Default::default()
        };
        let body: RequestContent<ImportCertificateParameters> = params
            .try_into()
            .map_err(|e| SyncError::Transport(format!("import body: {e}")))?;
        let cert = self
            .client()
            .import_certificate(&self.cfg.certificate_name, body, None)
            .await
            .map_err(|e| vault_error("import", e))?
            .into_model()
            .map_err(|e| SyncError::Transport(format!("the import answer: {e}")))?;
        let id = cert
            .id
            .ok_or_else(|| SyncError::Transport("the import answer has no id".into()))?;
        let prefix = format!("{}/", self.certificate_url());
        let version = id
            .strip_prefix(&prefix)
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| {
                SyncError::Transport(format!("the import answer names another object: {id}"))
            })?;
        Ok(Pushed {
            remote_id: self.certificate_url(),
            remote_version: Some(version.to_string()),
        })
    }

    /// Who authenticates, in words.
    fn identity(&self) -> String {
        let client = self.cfg.client_id.as_deref();
        let tenant = self.cfg.tenant_id.as_deref();
        match self.cfg.credential {
            AzureCredentialKind::ClientSecret => format!(
                "a token for client {} from tenant {} (client secret)",
                client.unwrap_or("?"),
                tenant.unwrap_or("?")
            ),
            AzureCredentialKind::ManagedIdentity => match client {
                Some(c) => format!("a token for the user-assigned managed identity {c}"),
                None => "a token for the system-assigned managed identity".to_string(),
            },
            AzureCredentialKind::WorkloadIdentity => format!(
                "a token for client {} from tenant {} (workload identity federation)",
                client.unwrap_or("$AZURE_CLIENT_ID"),
                tenant.unwrap_or("$AZURE_TENANT_ID")
            ),
        }
    }

    /// Read-only check: a token, then `GET` of the certificate (absent is fine: the first
    /// push creates it).
    async fn probe(&self) -> Result<Vec<String>, SyncError> {
        let name = &self.cfg.certificate_name;
        let found = match self.client().get_certificate(name, None).await {
            Ok(_) => format!("certificate {name:?} exists"),
            Err(e) => match http_status(&e) {
                Some(404) if vault_code(&e).as_deref() == Some("CertificateNotFound") => format!(
                    "certificate {name:?} does not exist yet and is created by the first push"
                ),
                Some(403) => {
                    return Err(SyncError::Auth(format!(
                        "missing permission certificates/get on {} (access policy, or the Key \
                         Vault Certificates Officer role; pushes need certificates/import too): {}",
                        self.vault,
                        message_of(&e)
                    )));
                }
                _ => return Err(vault_error("get", e)),
            },
        };
        Ok(vec![
            self.identity(),
            format!("certificates/get on {}: {found}", self.vault),
        ])
    }

    async fn remove(&self, remote_id: &str) -> Result<(), SyncError> {
        if remote_id != self.certificate_url() {
            return Err(SyncError::Config(format!(
                "{remote_id} is not this destination's certificate"
            )));
        }
        match self
            .client()
            .delete_certificate(&self.cfg.certificate_name, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if http_status(&e) == Some(404) => Ok(()),
            Err(e) => Err(vault_error("delete", e)),
        }
    }
}

/// The HTTP status of an SDK error that carries a response.
fn http_status(e: &azure_core::Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::HttpResponse { status, .. } => Some(u16::from(*status)),
        _ => None,
    }
}

/// Key Vault's error code (`{"error": {"code", "message"}}`), if the answer has one.
fn vault_code(e: &azure_core::Error) -> Option<String> {
    let ErrorKind::HttpResponse {
        raw_response: Some(raw),
        ..
    } = e.kind()
    else {
        return None;
    };
    let json = serde_json::from_slice::<serde_json::Value>(raw.body().as_ref()).ok()?;
    json["error"]["code"].as_str().map(str::to_string)
}

/// Key Vault's error message (`{"error": {"code", "message"}}`), or the SDK's.
fn message_of(e: &azure_core::Error) -> String {
    if let ErrorKind::HttpResponse {
        raw_response: Some(raw),
        ..
    } = e.kind()
        && let Ok(json) = serde_json::from_slice::<serde_json::Value>(raw.body().as_ref())
        && let Some(m) = json["error"]["message"].as_str()
    {
        return m.to_string();
    }
    e.to_string()
}

/// An SDK error as a destination error: throttling with its `Retry-After`, refused
/// credentials, and the vault's own code and message.
fn vault_error(what: &str, e: azure_core::Error) -> SyncError {
    match e.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let status = u16::from(*status);
            let code = error_code.clone().unwrap_or_default();
            let message = message_of(&e);
            let retry_after = raw_response
                .as_ref()
                .and_then(|r| r.headers().get_optional_str(&RETRY_AFTER))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            match status {
                429 | 503 => SyncError::Throttled {
                    message: format!("{what}: {status} {code}: {message}"),
                    retry_after,
                },
                401 | 403 => SyncError::Auth(format!("{what}: {status} {code}: {message}")),
                s => SyncError::Remote {
                    code: format!("{s} {code}"),
                    message: format!("{what}: {message}"),
                    retryable: s >= 500,
                },
            }
        }
        ErrorKind::Credential => SyncError::Auth(format!("{what}: {e}")),
        ErrorKind::Io | ErrorKind::Connection => SyncError::Transport(format!("{what}: {e}")),
        _ => SyncError::Transport(format!("{what}: {e}")),
    }
}

impl Destination for AzureKeyVault {
    fn kind(&self) -> &'static str {
        "azure_key_vault"
    }

    fn push<'a>(
        &'a self,
        version: &'a CertificateVersion,
        _remote_id: Option<&'a str>,
        now: time::OffsetDateTime,
    ) -> BoxFuture<'a, Result<Pushed, SyncError>> {
        Box::pin(async move {
            let facts = version.facts()?;
            if facts.not_after <= now {
                return Err(SyncError::Refused("the certificate has expired".into()));
            }
            if matches!(
                facts.key,
                crate::PublicKeyKind::Ed25519 | crate::PublicKeyKind::Other(_)
            ) {
                return Err(SyncError::Refused(format!(
                    "Key Vault does not import {} keys (RSA or ECDSA only)",
                    facts.key
                )));
            }
            self.import(version).await
        })
    }

    fn delete<'a>(&'a self, remote_id: &'a str) -> BoxFuture<'a, Result<(), SyncError>> {
        Box::pin(self.remove(remote_id))
    }

    fn check(&self) -> BoxFuture<'_, Result<Vec<String>, SyncError>> {
        Box::pin(self.probe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_configurations_without_a_credential_kind_use_the_client_secret() {
        let cfg: AzureKeyVaultConfig = serde_json::from_value(serde_json::json!({
            "vault_url": "https://example.vault.azure.net",
            "certificate_name": "web",
            "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
            "authority": "https://login.microsoftonline.com",
        }))
        .unwrap();
        assert_eq!(cfg.credential, AzureCredentialKind::ClientSecret);
        assert!(cfg.verify_challenge_resource);
        assert!(AzureKeyVault::new(cfg.clone(), Some("s".into())).is_ok());
        let e = AzureKeyVault::new(cfg, None).unwrap_err();
        assert!(e.to_string().contains("client secret"), "{e}");
    }

    #[test]
    fn a_secret_for_a_managed_identity_is_refused() {
        let cfg: AzureKeyVaultConfig = serde_json::from_value(serde_json::json!({
            "vault_url": "https://example.vault.azure.net",
            "certificate_name": "web",
            "credential": "managed_identity",
        }))
        .unwrap();
        let e = AzureKeyVault::new(cfg, Some("s".into())).unwrap_err();
        assert!(matches!(e, SyncError::Config(_)), "{e}");
    }
}
