//! Alternate certificate chains of an ACME order (RFC 8555 §7.4.2): a CA may offer the
//! same certificate under several chains (`Link: <url>;rel="alternate"` on the
//! certificate's answer), for example one that ends under an older, more widely trusted
//! root. The issuer's `preferred_chain` names the chain to keep by the common name of the
//! CA that issued its topmost certificate, as certbot's `--preferred-chain` does.
//!
//! instant-acme downloads the default chain only, so the alternates are fetched here with
//! POST-as-GET requests signed with the account's key (ES256, as instant-acme makes it).

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::services::issuers::port::UpstreamFailure;

/// Longest wait for one request.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The problem type of a refused nonce (RFC 8555 §6.5).
pub(super) const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";
/// Most alternates looked at.
const MAX_ALTERNATES: usize = 8;
/// Largest chain accepted, in bytes.
const MAX_CHAIN: usize = 256 * 1024;

/// The common name of the issuer of the topmost certificate of `pem` (a chain, leaf
/// first).
pub fn top_issuer_cn(pem: &str) -> Option<String> {
    let certs = certkeeper_ca::parse_pem_or_der_certs(pem.as_bytes()).ok()?;
    let top = certs.last()?;
    let (_, cert) = x509_parser::parse_x509_certificate(top).ok()?;
    cert.issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

/// Whether `pem` is the chain `preferred` names.
pub fn is_preferred(pem: &str, preferred: &str) -> bool {
    top_issuer_cn(pem).is_some_and(|cn| cn == preferred)
}

/// A signer of POST-as-GET requests for one ACME account.
pub struct ChainFetcher {
    http: reqwest::Client,
    key: EcdsaKeyPair,
    account_url: String,
    new_nonce_url: String,
}

fn plain(what: &str, e: impl std::fmt::Display) -> UpstreamFailure {
    UpstreamFailure::plain(format!("alternate chains: {what}: {e}"))
}

impl ChainFetcher {
    /// A fetcher for the account at `account_url` with its key (`pkcs8`, P-256), against
    /// the server at `directory_url`, trusting `trust_bundle` (PEM) besides the system's
    /// roots.
    pub async fn new(
        directory_url: &str,
        trust_bundle: Option<&str>,
        account_url: &str,
        pkcs8: &[u8],
    ) -> Result<ChainFetcher, UpstreamFailure> {
        let mut b = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = trust_bundle {
            for der in certkeeper_ca::parse_pem_or_der_certs(pem.as_bytes())
                .map_err(|e| plain("trust bundle", e))?
            {
                b = b.add_root_certificate(
                    reqwest::Certificate::from_der(&der).map_err(|e| plain("trust bundle", e))?,
                );
            }
        }
        let http = b.build().map_err(|e| plain("HTTP client", e))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| plain("account key", e))?;
        let dir: Value = http
            .get(directory_url)
            .send()
            .await
            .map_err(|e| plain("directory", e))?
            .json()
            .await
            .map_err(|e| plain("directory", e))?;
        let new_nonce_url = dir["newNonce"]
            .as_str()
            .ok_or_else(|| plain("directory", "no newNonce"))?
            .to_string();
        Ok(ChainFetcher {
            http,
            key,
            account_url: account_url.to_string(),
            new_nonce_url,
        })
    }

    async fn nonce(&self) -> Result<String, UpstreamFailure> {
        let r = self
            .http
            .head(&self.new_nonce_url)
            .send()
            .await
            .map_err(|e| plain("new nonce", e))?;
        r.headers()
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| plain("new nonce", "no Replay-Nonce"))
    }

    /// POST-as-GET `url`: the body (bounded) and the alternate links of the answer. A
    /// `badNonce` refusal is retried with the nonce it carries, a few times.
    async fn post_as_get(&self, url: &str) -> Result<(String, Vec<String>), UpstreamFailure> {
        let mut nonce = self.nonce().await?;
        for _ in 0..5 {
            let protected = json!({
                "alg": "ES256", "kid": self.account_url, "nonce": nonce, "url": url,
            });
            let signing_input = format!("{}.", B64.encode(protected.to_string()));
            let sig = self
                .key
                .sign(&SystemRandom::new(), signing_input.as_bytes())
                .map_err(|e| plain("signing", e))?;
            let body = json!({
                "protected": B64.encode(protected.to_string()),
                "payload": "",
                "signature": B64.encode(sig.as_ref()),
            });
            let resp = self
                .http
                .post(url)
                .header("content-type", "application/jose+json")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| plain("download", e))?;
            let next_nonce = resp
                .headers()
                .get("replay-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let links = alternate_links(resp.headers());
            let status = resp.status();
            if resp.content_length().unwrap_or(0) > MAX_CHAIN as u64 {
                return Err(plain("download", "answer too large"));
            }
            let text = resp.text().await.map_err(|e| plain("download", e))?;
            if text.len() > MAX_CHAIN {
                return Err(plain("download", "answer too large"));
            }
            if status.is_success() {
                return Ok((text, links));
            }
            let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match (problem["type"].as_str(), next_nonce) {
                (Some(t), Some(n)) if t == BAD_NONCE => nonce = n,
                _ => {
                    return Err(UpstreamFailure {
                        message: format!("alternate chains: the upstream answered {status}"),
                        problem: (!problem.is_null()).then_some(problem),
                        retry_after: None,
                    });
                }
            }
        }
        Err(plain("download", "the upstream kept refusing our nonces"))
    }

    /// The chain at `cert_url` whose topmost issuer is `preferred`, among the default one
    /// and its alternates; `None` when none is.
    pub async fn preferred(
        &self,
        cert_url: &str,
        preferred: &str,
    ) -> Result<Option<String>, UpstreamFailure> {
        let (default, links) = self.post_as_get(cert_url).await?;
        if is_preferred(&default, preferred) {
            return Ok(Some(default));
        }
        for link in links.iter().take(MAX_ALTERNATES) {
            let (pem, _) = self.post_as_get(link).await?;
            if is_preferred(&pem, preferred) {
                return Ok(Some(pem));
            }
        }
        Ok(None)
    }
}

/// The targets of `Link: <...>;rel="alternate"` headers.
fn alternate_links(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|one| {
            let (target, params) = one.trim().split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let alternate = params.split(';').any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "rel=\"alternate\"" || p == "rel=alternate"
            });
            alternate.then(|| target.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternate_links_are_read_from_every_link_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append(
            "link",
            "<https://ca/dir>;rel=\"index\", <https://ca/cert/1/1>;rel=\"alternate\""
                .parse()
                .unwrap(),
        );
        h.append(
            "link",
            "<https://ca/cert/1/2>; rel=alternate".parse().unwrap(),
        );
        assert_eq!(
            alternate_links(&h),
            vec!["https://ca/cert/1/1", "https://ca/cert/1/2"]
        );
    }
}
