//! Cloudflare custom certificates of a zone, over Cloudflare's v4 REST API with an API
//! token (`Authorization: Bearer`): the first push uploads
//! (`POST /zones/{zone_id}/custom_certificates`), every later one replaces the certificate
//! and key in place (`PATCH .../custom_certificates/{id}`), keeping the custom certificate
//! id; Cloudflare answers a PATCH of an `sni_custom` certificate with a new id, which is
//! then recorded. Every answer is the envelope `{success, errors, messages, result}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{retry_after, without_url};
use crate::{BoxFuture, CertificateVersion, Destination, PublicKeyKind, Pushed, SyncError};

/// Cloudflare's API.
pub const DEFAULT_API_URL: &str = "https://api.cloudflare.com/client/v4";
/// The most of an answer that is read.
const MAX_ANSWER: usize = 1 << 20;
/// The permission a token needs to read custom certificates.
const READ_PERMISSION: &str = "Zone / SSL and Certificates / Read";
/// The permission a token needs to upload, replace and delete them.
const WRITE_PERMISSION: &str = "Zone / SSL and Certificates / Edit";

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}

/// How Cloudflare builds the chain it serves.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum BundleMethod {
    /// The chain most likely to verify everywhere.
    #[default]
    Ubiquitous,
    /// The shortest chain with the newest intermediates.
    Optimal,
    /// The chain as uploaded.
    Force,
}

/// Where Cloudflare may hold the private key (Geo Key Manager).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GeoRestriction {
    /// Data centers in the United States.
    Us,
    /// Data centers in the European Union.
    Eu,
    /// The data centers with the highest security.
    HighestSecurity,
}

/// Which kind of custom certificate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CertificateType {
    /// Also served to clients without SNI (Cloudflare's default).
    #[default]
    LegacyCustom,
    /// Served to SNI clients only.
    SniCustom,
}

/// Which zone, and how (everything but the API token).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CloudflareConfig {
    /// The zone id (32 hexadecimal digits).
    pub zone_id: String,
    /// `ubiquitous` (default), `optimal` or `force`.
    #[serde(default)]
    pub bundle_method: BundleMethod,
    /// `us`, `eu` or `highest_security`: where the key may be held; anywhere when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_restrictions: Option<GeoRestriction>,
    /// `legacy_custom` (default) or `sni_custom`.
    #[serde(default, rename = "type")]
    pub certificate_type: CertificateType,
    /// The API base URL.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// An extra trust anchor (PEM) for the API, for a proxy with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

/// A Cloudflare zone's custom certificate.
pub struct Cloudflare {
    cfg: CloudflareConfig,
    api: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudflare")
            .field("api", &self.api)
            .field("zone_id", &self.cfg.zone_id)
            .finish_non_exhaustive()
    }
}

/// Custom certificate ids and zone ids: 1 to 64 ASCII letters and digits.
fn check_id(what: &str, id: &str) -> Result<(), SyncError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SyncError::Config(format!(
            "{what} {id:?} must be 1 to 64 letters or digits"
        )));
    }
    Ok(())
}

/// One call's answer: HTTP status, retry hint, and the envelope.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: Value,
}

impl Answer {
    fn success(&self) -> bool {
        (200..300).contains(&self.status) && self.body["success"].as_bool() == Some(true)
    }

    fn codes(&self) -> Vec<i64> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["code"].as_i64()).collect())
            .unwrap_or_default()
    }

    fn messages(&self) -> String {
        let said: Vec<String> = self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .take(5)
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["code"].as_i64().unwrap_or(0),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if said.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            said.join("; ")
        }
    }

    /// The id in `result`.
    fn result_id(&self) -> Result<String, SyncError> {
        let id = self.body["result"]["id"]
            .as_str()
            .ok_or_else(|| SyncError::Transport("the answer has no result.id".into()))?;
        check_id("custom certificate id", id)
            .map_err(|_| SyncError::Transport(format!("the answer's id {id:?} is not an id")))?;
        Ok(id.to_string())
    }
}

impl Cloudflare {
    /// A destination, after checking the configuration.
    pub fn new(cfg: CloudflareConfig, api_token: String) -> Result<Self, SyncError> {
        check_id("zone_id", &cfg.zone_id)?;
        if api_token.is_empty()
            || api_token.len() > 256
            || !api_token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(SyncError::Config(
                "api_token must be 1 to 256 printable characters".into(),
            ));
        }
        let u = url::Url::parse(&cfg.api_url)
            .map_err(|e| SyncError::Config(format!("api_url {:?}: {e}", cfg.api_url)))?;
        if u.scheme() != "https"
            || u.host_str().is_none()
            || u.query().is_some()
            || u.fragment().is_some()
        {
            return Err(SyncError::Config(format!(
                "api_url {:?} must be an https URL without query or fragment",
                cfg.api_url
            )));
        }
        let http = crate::http::client(cfg.ca_certificate.as_deref())?;
        Ok(Cloudflare {
            api: cfg.api_url.trim_end_matches('/').to_string(),
            cfg,
            token: api_token,
            http,
        })
    }

    fn certificates_url(&self) -> String {
        format!(
            "{}/zones/{}/custom_certificates",
            self.api, self.cfg.zone_id
        )
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, SyncError> {
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let mut resp = req.send().await.map_err(|e| {
            SyncError::Transport(format!(
                "{method} {}: {}",
                self.path_of(url),
                without_url(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(&resp);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| SyncError::Transport(format!("reading the answer: {}", without_url(&e))))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(SyncError::Transport(format!(
                    "the answer is longer than {MAX_ANSWER} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            retry_after,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    fn path_of<'u>(&self, url: &'u str) -> &'u str {
        url.strip_prefix(&self.api).unwrap_or(url)
    }

    /// The error an unsuccessful answer stands for; `permission` is what the call needs.
    fn error(&self, a: &Answer, permission: &str) -> SyncError {
        let codes = a.codes();
        let said = a.messages();
        if a.status == 429 || codes.contains(&971) {
            return SyncError::Throttled {
                message: said,
                retry_after: a.retry_after,
            };
        }
        if codes.iter().any(|c| matches!(c, 7003 | 1001)) {
            return SyncError::Config(format!(
                "zone {} not found: wrong zone_id ({said})",
                self.cfg.zone_id
            ));
        }
        if a.status == 401 || codes.contains(&6003) || codes.contains(&1000) {
            return SyncError::Auth(format!("the API token was not accepted ({said})"));
        }
        if a.status == 403 || codes.iter().any(|c| matches!(c, 9109 | 10000)) {
            return SyncError::Auth(format!(
                "missing permission {permission} on zone {} ({said})",
                self.cfg.zone_id
            ));
        }
        SyncError::Remote {
            code: format!("HTTP {}", a.status),
            message: said,
            retryable: a.status >= 500,
        }
    }

    async fn upload(
        &self,
        v: &CertificateVersion,
        remote_id: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<Pushed, SyncError> {
        let facts = v.facts()?;
        if facts.not_after <= now {
            return Err(SyncError::Refused("the certificate has expired".into()));
        }
        if matches!(facts.key, PublicKeyKind::Ed25519 | PublicKeyKind::Other(_)) {
            return Err(SyncError::Refused(format!(
                "Cloudflare does not take {} keys (RSA or ECDSA only)",
                facts.key
            )));
        }
        let mut body = json!({
            "certificate": format!("{}{}", v.certificate_pem(), v.chain_pem()),
            "private_key": v.key_pem(),
            "bundle_method": self.cfg.bundle_method,
        });
        if let Some(g) = self.cfg.geo_restrictions {
            body["geo_restrictions"] = json!({ "label": g });
        }
        if let Some(id) = remote_id {
            check_id("custom certificate id", id)?;
            let url = format!("{}/{id}", self.certificates_url());
            let a = self.call(reqwest::Method::PATCH, &url, Some(&body)).await?;
            if a.success() {
                return Ok(Pushed {
                    remote_id: a.result_id()?,
                    remote_version: Some(facts.serial_hex),
                });
            }
            // Gone (removed by hand): upload anew below.
            if a.status != 404 {
                return Err(self.error(&a, WRITE_PERMISSION));
            }
        }
        body["type"] = json!(self.cfg.certificate_type);
        let a = self
            .call(reqwest::Method::POST, &self.certificates_url(), Some(&body))
            .await?;
        if !a.success() {
            return Err(self.error(&a, WRITE_PERMISSION));
        }
        Ok(Pushed {
            remote_id: a.result_id()?,
            remote_version: Some(facts.serial_hex),
        })
    }

    async fn remove(&self, remote_id: &str) -> Result<(), SyncError> {
        check_id("custom certificate id", remote_id)?;
        let url = format!("{}/{remote_id}", self.certificates_url());
        let a = self.call(reqwest::Method::DELETE, &url, None).await?;
        if a.success() || a.status == 404 {
            return Ok(());
        }
        Err(self.error(&a, WRITE_PERMISSION))
    }

    async fn probe(&self) -> Result<Vec<String>, SyncError> {
        let a = self
            .call(
                reqwest::Method::GET,
                &format!("{}/user/tokens/verify", self.api),
                None,
            )
            .await?;
        if !a.success() {
            return Err(match self.error(&a, "none") {
                SyncError::Auth(_) => {
                    SyncError::Auth(format!("the API token was not accepted ({})", a.messages()))
                }
                other => other,
            });
        }
        let status = a.body["result"]["status"].as_str().unwrap_or("unknown");
        if status != "active" {
            return Err(SyncError::Auth(format!("the API token is {status}")));
        }
        let a = self
            .call(
                reqwest::Method::GET,
                &format!("{}?per_page=5", self.certificates_url()),
                None,
            )
            .await?;
        if !a.success() {
            return Err(self.error(&a, READ_PERMISSION));
        }
        let count = a.body["result_info"]["total_count"]
            .as_i64()
            .or_else(|| a.body["result"].as_array().map(|r| r.len() as i64))
            .unwrap_or(0);
        Ok(vec![
            "the API token is active".to_string(),
            format!(
                "{READ_PERMISSION} on zone {}: {count} custom certificate(s)",
                self.cfg.zone_id
            ),
        ])
    }
}

impl Destination for Cloudflare {
    fn kind(&self) -> &'static str {
        "cloudflare"
    }

    fn push<'a>(
        &'a self,
        version: &'a CertificateVersion,
        remote_id: Option<&'a str>,
        now: time::OffsetDateTime,
    ) -> BoxFuture<'a, Result<Pushed, SyncError>> {
        Box::pin(self.upload(version, remote_id, now))
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

    fn dest() -> Cloudflare {
        Cloudflare::new(
            serde_json::from_value(json!({"zone_id": "023e105f4ecef8ad9ca31a8372d0c353"})).unwrap(),
            "token".into(),
        )
        .unwrap()
    }

    fn answer(status: u16, code: i64) -> Answer {
        Answer {
            status,
            retry_after: Some(Duration::from_secs(3)),
            body: json!({"success": false, "errors": [{"code": code, "message": "said so"}],
                         "messages": [], "result": null}),
        }
    }

    #[test]
    fn cloudflare_errors_are_sorted() {
        let d = dest();
        let e = d.error(&answer(429, 971), WRITE_PERMISSION);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = d.error(&answer(403, 9109), WRITE_PERMISSION);
        assert!(
            matches!(&e, SyncError::Auth(m) if m.contains("SSL and Certificates / Edit")),
            "{e}"
        );
        let e = d.error(&answer(400, 7003), WRITE_PERMISSION);
        assert!(
            matches!(&e, SyncError::Config(m) if m.contains("wrong zone_id")),
            "{e}"
        );
        let e = d.error(&answer(400, 1210), WRITE_PERMISSION);
        assert!(!e.retryable(), "{e}");
        assert!(d.error(&answer(502, 0), WRITE_PERMISSION).retryable());
    }

    #[test]
    fn configuration_is_checked() {
        let bad = |v: Value| {
            serde_json::from_value::<CloudflareConfig>(v)
                .map_err(|e| SyncError::Config(e.to_string()))
                .and_then(|c| Cloudflare::new(c, "t".into()))
                .is_err()
        };
        assert!(bad(json!({"zone_id": "../x"})));
        assert!(bad(json!({"zone_id": "abc", "api_url": "http://api"})));
        assert!(bad(json!({"zone_id": "abc", "bundle_method": "best"})));
        assert!(bad(json!({"zone_id": "abc", "geo_restrictions": "mars"})));
        assert!(!bad(
            json!({"zone_id": "abc", "geo_restrictions": "eu", "type": "sni_custom"})
        ));
    }
}
