//! Azure Key Vault over its REST API: certificate import (api-version 7.4) with a PEM
//! bundle, authenticated by a Microsoft Entra ID client-credentials token that is cached
//! until shortly before it expires.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{retry_after, without_url};
use crate::{BoxFuture, CertificateVersion, Destination, Pushed, SyncError};

/// The Key Vault REST API version used.
pub const API_VERSION: &str = "7.4";
/// The OAuth scope of Key Vault.
pub const SCOPE: &str = "https://vault.azure.net/.default";
/// Microsoft Entra ID's public-cloud authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// A cached token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

fn default_authority() -> String {
    DEFAULT_AUTHORITY.to_string()
}

/// Where and as whom to import (everything but the client secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AzureKeyVaultConfig {
    /// The vault, e.g. `https://example.vault.azure.net`.
    pub vault_url: String,
    /// The certificate name in the vault; each push is a new version of it.
    pub certificate_name: String,
    /// The Entra ID tenant (directory) id.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The Entra ID authority (sovereign clouds, or a private endpoint).
    #[serde(default = "default_authority")]
    pub authority: String,
    /// Tags set on every version.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// An extra trust anchor (PEM) for the vault and authority, for private endpoints that
    /// present a certificate from a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
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

/// An Azure Key Vault destination.
pub struct AzureKeyVault {
    cfg: AzureKeyVaultConfig,
    vault: String,
    authority: String,
    client_secret: String,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for AzureKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyVault")
            .field("vault", &self.vault)
            .field("certificate_name", &self.cfg.certificate_name)
            .finish_non_exhaustive()
    }
}

impl AzureKeyVault {
    /// A destination, after checking the configuration.
    pub fn new(cfg: AzureKeyVaultConfig, client_secret: String) -> Result<Self, SyncError> {
        validate_certificate_name(&cfg.certificate_name)?;
        let vault = https_base("vault_url", &cfg.vault_url)?;
        let authority = https_base("authority", &cfg.authority)?;
        validate_guidish("tenant_id", &cfg.tenant_id)?;
        validate_guidish("client_id", &cfg.client_id)?;
        if client_secret.is_empty() {
            return Err(SyncError::Config("the client secret is empty".into()));
        }
        let http = crate::http::client(cfg.ca_certificate.as_deref())?;
        Ok(AzureKeyVault {
            cfg,
            vault,
            authority,
            client_secret,
            http,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// A bearer token for Key Vault, from the cache or from Entra ID.
    async fn token(&self) -> Result<String, SyncError> {
        let mut cached = self.token.lock().await;
        if let Some((tok, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(tok.clone());
        }
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority, self.cfg.tenant_id
        );
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.cfg.client_id)
            .append_pair("scope", SCOPE)
            .append_pair("client_secret", &self.client_secret)
            .append_pair("grant_type", "client_credentials")
            .finish();
        let resp = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| SyncError::Transport(format!("token request: {}", without_url(&e))))?;
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let code = json["error"].as_str().unwrap_or("").to_string();
            let message = json["error_description"]
                .as_str()
                .unwrap_or("no description")
                .to_string();
            return Err(match status.as_u16() {
                429 | 503 => SyncError::Throttled {
                    message: format!("token endpoint: {code} {message}"),
                    retry_after,
                },
                s if s >= 500 => SyncError::Remote {
                    code: format!("{s} {code}"),
                    message,
                    retryable: true,
                },
                _ => SyncError::Auth(format!("{code}: {message}")),
            });
        }
        let tok = json["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SyncError::Auth("the token response has no access_token".into()))?
            .to_string();
        if !json["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(SyncError::Auth("the token is not a bearer token".into()));
        }
        let lifetime = json["expires_in"]
            .as_u64()
            .or_else(|| json["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        let until = Instant::now() + Duration::from_secs(lifetime).saturating_sub(TOKEN_MARGIN);
        *cached = Some((tok.clone(), until));
        Ok(tok)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// The certificate's URL without a version.
    fn certificate_url(&self) -> String {
        format!("{}/certificates/{}", self.vault, self.cfg.certificate_name)
    }

    /// Import; a token the vault no longer accepts (401) is replaced once.
    async fn import(&self, v: &CertificateVersion) -> Result<Pushed, SyncError> {
        match self.import_once(v).await {
            Err(SyncError::Auth(m)) if m.starts_with("401") => self.import_once(v).await,
            other => other,
        }
    }

    async fn import_once(&self, v: &CertificateVersion) -> Result<Pushed, SyncError> {
        let token = self.token().await?;
        let bundle = format!("{}{}{}", v.key_pem(), v.certificate_pem(), v.chain_pem());
        let body = json!({
            "value": bundle,
            "policy": {
                "secret_props": {"contentType": "application/x-pem-file"},
            },
            "attributes": {"enabled": true},
            "tags": self.cfg.tags,
        });
        let url = format!(
            "{}/import?api-version={API_VERSION}",
            self.certificate_url()
        );
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .map_err(|e| SyncError::Transport(format!("import: {}", without_url(&e))))?;
        let status = resp.status();
        if status.as_u16() == 401 {
            self.forget_token().await;
        }
        let ra = retry_after(&resp);
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(vault_error(status.as_u16(), &json, ra));
        }
        let id = json["id"]
            .as_str()
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

    /// Read-only check: a token, then `GET` of the certificate (absent is fine: the first
    /// push creates it).
    async fn probe(&self) -> Result<Vec<String>, SyncError> {
        let token = self.token().await?;
        let url = format!("{}?api-version={API_VERSION}", self.certificate_url());
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| SyncError::Transport(format!("get: {}", without_url(&e))))?;
        let status = resp.status().as_u16();
        let ra = retry_after(&resp);
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        let name = &self.cfg.certificate_name;
        let found = match status {
            200..=299 => format!("certificate {name:?} exists"),
            404 => {
                format!("certificate {name:?} does not exist yet and is created by the first push")
            }
            401 => {
                self.forget_token().await;
                return Err(vault_error(status, &json, ra));
            }
            403 => {
                return Err(SyncError::Auth(format!(
                    "missing permission certificates/get on {} (access policy, or the Key Vault \
                     Certificates Officer role; pushes need certificates/import too): {}",
                    self.vault,
                    json["error"]["message"].as_str().unwrap_or("forbidden")
                )));
            }
            _ => return Err(vault_error(status, &json, ra)),
        };
        Ok(vec![
            format!(
                "a token for client {} from tenant {}",
                self.cfg.client_id, self.cfg.tenant_id
            ),
            format!("certificates/get on {}: {found}", self.vault),
        ])
    }

    async fn remove(&self, remote_id: &str) -> Result<(), SyncError> {
        if remote_id != self.certificate_url() {
            return Err(SyncError::Config(format!(
                "{remote_id} is not this destination's certificate"
            )));
        }
        let token = self.token().await?;
        let url = format!("{remote_id}?api-version={API_VERSION}");
        let resp = self
            .http
            .delete(&url)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| SyncError::Transport(format!("delete: {}", without_url(&e))))?;
        let status = resp.status();
        if status.is_success() || status.as_u16() == 404 {
            return Ok(());
        }
        let ra = retry_after(&resp);
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        Err(vault_error(status.as_u16(), &json, ra))
    }
}

/// Key Vault errors look like `{"error": {"code": "...", "message": "..."}}`.
fn vault_error(status: u16, json: &Value, retry_after: Option<Duration>) -> SyncError {
    let code = json["error"]["code"].as_str().unwrap_or("").to_string();
    let message = json["error"]["message"]
        .as_str()
        .unwrap_or("no message")
        .to_string();
    match status {
        429 | 503 => SyncError::Throttled {
            message: format!("{status} {code}: {message}"),
            retry_after,
        },
        401 | 403 => SyncError::Auth(format!("{status} {code}: {message}")),
        s => SyncError::Remote {
            code: format!("{s} {code}"),
            message,
            retryable: s >= 500,
        },
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
    fn throttling_and_auth_errors_are_told_apart() {
        let body = json!({"error": {"code": "Throttled", "message": "slow down"}});
        let e = vault_error(429, &body, Some(Duration::from_secs(7)));
        assert!(matches!(e, SyncError::Throttled { .. }));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.retryable());
        assert!(matches!(
            vault_error(503, &Value::Null, None),
            SyncError::Throttled { .. }
        ));
        assert!(matches!(vault_error(403, &body, None), SyncError::Auth(_)));
        let e = vault_error(400, &body, None);
        assert!(!e.retryable(), "{e}");
        assert!(vault_error(500, &body, None).retryable());
    }
}
