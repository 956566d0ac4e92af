//! Channel settings: what may be shown, and the secrets sealed under the master key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Error;
use crate::services::pki::Pki;
use crate::store::ChannelRecord;

/// The kinds of channel.
pub const KINDS: &[&str] = &["webhook", "slack", "teams", "discord", "email"];

/// The schema of a channel's kind: one of [`KINDS`] (the field is a plain string).
pub struct KindName;

impl utoipa::PartialSchema for KindName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(KINDS.iter().copied()))
            .into()
    }
}

// Referenced by name rather than inlined: inlined with the field's description, utoipa
// emits `allOf: [<the enum>, {"type": "object", ...}]`, which no value satisfies.
impl utoipa::ToSchema for KindName {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("AlertChannelKind")
    }
}

/// Secrets of a channel; sealed at rest, never returned by the API.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ChannelSecrets {
    /// Webhook URL (Slack, Teams and Discord URLs carry their credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HMAC-SHA256 key for the generic webhook's signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_key: Option<String>,
    /// Extra request headers for the generic webhook (values may be credentials).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for ChannelSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelSecrets(<redacted>)")
    }
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No TLS (local relays and tests only).
    None,
}

/// Settings of an email channel (shown by the API; the password is a secret).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmailConfig {
    /// SMTP server host.
    pub host: String,
    /// SMTP server port.
    #[schema(minimum = 1)]
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Login name, if the server needs authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// An extra trusted root certificate (PEM) for the SMTP server's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

/// The body of `POST /alerts/channels`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = CreateAlertChannelRequest)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// Unique name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The channel's kind (`KINDS`).
    #[schema(value_type = KindName)]
    pub kind: String,
    /// Webhook URL (webhook, slack, teams, discord; secret).
    #[serde(default)]
    pub url: Option<String>,
    /// HMAC-SHA256 key for the generic webhook's signature (secret).
    #[serde(default)]
    pub hmac_key: Option<String>,
    /// Extra headers for the generic webhook (values are secret).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Email settings.
    #[serde(default)]
    pub smtp: Option<EmailConfig>,
    /// SMTP password.
    #[serde(default)]
    pub password: Option<String>,
}

/// The seal context of a channel's secrets.
pub(crate) fn seal_context(id: &str) -> Vec<u8> {
    format!("alert-channel:{id}").into_bytes()
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// Check a new channel and split it into shown settings and sealed secrets.
pub fn prepare(pki: &Pki, id: &str, c: NewChannel, now: i64) -> Result<ChannelRecord, Error> {
    let name = c.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(bad("name must be 1 to 100 characters"));
    }
    if !KINDS.contains(&c.kind.as_str()) {
        return Err(bad(format!("kind must be one of {}", KINDS.join(", "))));
    }
    let mut secrets = ChannelSecrets::default();
    let config = if c.kind == "email" {
        let smtp = c
            .smtp
            .ok_or_else(|| bad("an email channel needs \"smtp\" settings"))?;
        if smtp.host.trim().is_empty() || smtp.port == 0 {
            return Err(bad("smtp.host and smtp.port are required"));
        }
        for a in std::iter::once(&smtp.from).chain(&smtp.to) {
            if !a.contains('@') || a.len() > 254 {
                return Err(bad(format!("{a:?} is not an email address")));
            }
        }
        if smtp.to.is_empty() {
            return Err(bad("smtp.to needs at least one recipient"));
        }
        if smtp.username.is_some() != c.password.is_some() {
            return Err(bad("smtp.username and password go together"));
        }
        if c.url.is_some() || c.hmac_key.is_some() || !c.headers.is_empty() {
            return Err(bad("url, hmac_key and headers are for webhook channels"));
        }
        secrets.password = c.password;
        json!({ "smtp": smtp })
    } else {
        let url = c
            .url
            .ok_or_else(|| bad(format!("a {} channel needs \"url\"", c.kind)))?;
        let parsed = url::Url::parse(&url).map_err(|e| bad(format!("url: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(bad("url must be an http or https URL"));
        }
        if c.smtp.is_some() || c.password.is_some() {
            return Err(bad("smtp and password are for email channels"));
        }
        if c.kind != "webhook" && (c.hmac_key.is_some() || !c.headers.is_empty()) {
            return Err(bad("hmac_key and headers are for generic webhook channels"));
        }
        for (k, v) in &c.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(format!("header name {k:?} is not valid")))?;
            reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| bad(format!("the value of header {k:?} is not valid")))?;
            if matches!(
                name.as_str(),
                "content-type" | "content-length" | "host" | "x-certkeeper-signature"
            ) {
                return Err(bad(format!("header {k:?} is set by certkeeper")));
            }
        }
        let header_names: Vec<&String> = c.headers.keys().collect();
        let config = json!({
            "url_host": parsed.host_str(),
            "signed": c.hmac_key.is_some(),
            "header_names": header_names,
        });
        secrets.url = Some(url);
        secrets.hmac_key = c.hmac_key;
        secrets.headers = c.headers;
        config
    };
    let plain = serde_json::to_vec(&secrets).map_err(|e| Error::Internal(e.to_string()))?;
    let sealed = pki.master().seal(&plain, &seal_context(id))?;
    Ok(ChannelRecord {
        id: id.to_string(),
        name: name.to_string(),
        kind: c.kind,
        config,
        secret_sealed: sealed,
        created_at: now,
    })
}

/// Open a channel's secrets.
pub fn secrets(pki: &Pki, ch: &ChannelRecord) -> Result<ChannelSecrets, Error> {
    let plain = pki
        .master()
        .open(&ch.secret_sealed, &seal_context(&ch.id))?;
    serde_json::from_slice(&plain).map_err(|e| Error::Internal(format!("channel secrets: {e}")))
}

/// The email settings of an email channel.
pub fn email_config(ch: &ChannelRecord) -> Result<EmailConfig, Error> {
    serde_json::from_value(ch.config.get("smtp").cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::Internal(format!("channel {}: {e}", ch.id)))
}
