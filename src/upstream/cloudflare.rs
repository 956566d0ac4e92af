//! dns-01 through Cloudflare's DNS records API (v4): `POST /zones/{zone_id}/dns_records`
//! to add the TXT record, `GET .../dns_records?type=TXT&name=...&content=...` and
//! `DELETE .../dns_records/{id}` to remove it, with an API token (`Zone.DNS:Edit`) as the
//! bearer. Answers are bounded in size and time.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::services::issuers::port::{BoxFuture, DnsProvider, UpstreamFailure};

/// Cloudflare's API base.
pub const DEFAULT_API_URL: &str = "https://api.cloudflare.com/client/v4";
/// Longest wait for one API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read.
const MAX_ANSWER: usize = 1 << 20;
/// Time to live of the challenge records (Cloudflare's minimum), in seconds.
const TXT_TTL: u32 = 60;

fn default_api_url() -> String {
    DEFAULT_API_URL.into()
}

/// The settings of a Cloudflare provider (the API token is kept sealed apart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CloudflareConfig {
    /// The zone's id (the dashboard's "Zone ID").
    pub zone_id: String,
    /// The API base; Cloudflare's unless told otherwise.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The zone's authoritative servers to wait for (Cloudflare's nameservers for the
    /// zone, by address).
    pub nameservers: Vec<SocketAddr>,
}

impl CloudflareConfig {
    /// Check the settings and the token before anything is stored.
    pub fn validate(&self, token: &str) -> Result<(), String> {
        if self.zone_id.is_empty()
            || self.zone_id.len() > 64
            || !self.zone_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err("zone_id must be 1 to 64 letters and digits".into());
        }
        let url = url::Url::parse(&self.api_url).map_err(|e| format!("api_url: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("api_url must be an http(s) URL".into());
        }
        if self.nameservers.is_empty() || self.nameservers.len() > 10 {
            return Err("nameservers must list 1 to 10 of the zone's servers".into());
        }
        if token.is_empty() || token.len() > 512 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the API token must be 1 to 512 printable characters".into());
        }
        Ok(())
    }
}

/// A Cloudflare provider with its API token.
pub struct Cloudflare {
    config: CloudflareConfig,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudflare")
            .field("zone_id", &self.config.zone_id)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> UpstreamFailure {
    UpstreamFailure::plain(format!("Cloudflare {what}: {e}"))
}

impl Cloudflare {
    /// The provider `config` with its API `token`.
    pub fn new(config: CloudflareConfig, token: String) -> Result<Cloudflare, UpstreamFailure> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| failed("client", e))?;
        Ok(Cloudflare {
            config,
            token,
            http,
        })
    }

    fn records_url(&self) -> String {
        format!(
            "{}/zones/{}/dns_records",
            self.config.api_url.trim_end_matches('/'),
            self.config.zone_id
        )
    }

    /// Send `req` and read Cloudflare's envelope: the `result` when `success` is true, the
    /// errors (as the problem) otherwise.
    async fn call(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Value, UpstreamFailure> {
        let mut resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| failed(what, e))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| failed(what, e))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(failed(what, "the answer is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| failed(what, format!("HTTP {status} with a body that is not JSON")))?;
        if status.is_success() && v["success"] == true {
            return Ok(v["result"].clone());
        }
        Err(UpstreamFailure {
            message: format!("Cloudflare {what}: HTTP {status}: {}", v["errors"]),
            problem: Some(json!({
                "type": "about:blank", "status": status.as_u16(),
                "detail": format!("Cloudflare {what} failed"), "errors": v["errors"],
            })),
            retry_after: None,
        })
    }
}

impl DnsProvider for Cloudflare {
    fn set_txt<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>> {
        Box::pin(async move {
            let body = json!({
                "type": "TXT", "name": name.trim_end_matches('.'), "content": value,
                "ttl": TXT_TTL, "comment": "ACME dns-01 challenge (certkeeper)",
            });
            self.call(
                "creating a record",
                self.http.post(self.records_url()).json(&body),
            )
            .await?;
            Ok(())
        })
    }

    fn remove_txt<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>> {
        Box::pin(async move {
            let found = self
                .call(
                    "listing records",
                    self.http.get(self.records_url()).query(&[
                        ("type", "TXT"),
                        ("name", name.trim_end_matches('.')),
                        ("content", value),
                    ]),
                )
                .await?;
            for id in found
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["id"].as_str())
            {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    continue;
                }
                self.call(
                    "deleting a record",
                    self.http.delete(format!("{}/{id}", self.records_url())),
                )
                .await?;
            }
            Ok(())
        })
    }

    fn authoritative<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SocketAddr>, UpstreamFailure>> {
        Box::pin(async { Ok(self.config.nameservers.clone()) })
    }
}
