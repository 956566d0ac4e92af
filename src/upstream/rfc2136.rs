//! dns-01 through RFC 2136 dynamic updates signed with TSIG (RFC 8945), as BIND, Knot,
//! PowerDNS and Windows DNS accept them.

use std::net::SocketAddr;
use std::str::FromStr;

use hickory_net::client::ClientHandle;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RData, Record, TSigner};
use serde::{Deserialize, Serialize};

use crate::services::issuers::port::{BoxFuture, DnsProvider, UpstreamFailure};
use crate::upstream::propagation::{client, dns_failure};

/// Time to live of the challenge records, in seconds.
const TXT_TTL: u32 = 60;
/// Allowed clock difference for TSIG, in seconds.
const TSIG_FUDGE: u16 = 300;

/// The settings of an RFC 2136 provider (the TSIG secret is kept sealed apart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// The primary server that takes updates (`192.0.2.53:53`).
    pub server: SocketAddr,
    /// The zone the challenge names are in (`example.com`).
    pub zone: String,
    /// The TSIG key's name, as the server knows it.
    pub key_name: String,
    /// The TSIG algorithm: `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Further authoritative servers to wait for (secondaries); the primary always counts.
    #[serde(default)]
    pub nameservers: Vec<SocketAddr>,
}

fn default_algorithm() -> String {
    "hmac-sha256".into()
}

impl Rfc2136Config {
    /// Check the settings and the secret (raw bytes) before anything is stored.
    pub fn validate(&self, secret: &[u8]) -> Result<(), String> {
        Name::from_str(&self.zone).map_err(|e| format!("zone {:?}: {e}", self.zone))?;
        Name::from_str(&self.key_name).map_err(|e| format!("key_name {:?}: {e}", self.key_name))?;
        algorithm(&self.algorithm)?;
        if secret.len() < 16 || secret.len() > 512 {
            return Err("the TSIG secret must be 16 to 512 bytes".into());
        }
        if self.nameservers.len() > 10 {
            return Err("at most 10 nameservers".into());
        }
        Ok(())
    }
}

fn algorithm(name: &str) -> Result<TsigAlgorithm, String> {
    match name {
        "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
        other => Err(format!(
            "TSIG algorithm {other:?} is not one of hmac-sha256, hmac-sha384, hmac-sha512"
        )),
    }
}

/// An RFC 2136 provider with its TSIG secret.
pub struct Rfc2136 {
    config: Rfc2136Config,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Rfc2136 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc2136")
            .field("server", &self.config.server)
            .field("zone", &self.config.zone)
            .finish_non_exhaustive()
    }
}

impl Rfc2136 {
    /// The provider `config` with its TSIG `secret` (raw bytes).
    pub fn new(config: Rfc2136Config, secret: Vec<u8>) -> Rfc2136 {
        Rfc2136 { config, secret }
    }

    async fn update(&self, name: &str, value: &str, add: bool) -> Result<(), UpstreamFailure> {
        let alg = algorithm(&self.config.algorithm).map_err(UpstreamFailure::plain)?;
        let key = Name::from_str(&self.config.key_name).map_err(|e| dns_failure("key name", e))?;
        let signer = TSigner::new(self.secret.clone(), alg, key, TSIG_FUDGE)
            .map_err(|e| dns_failure("TSIG key", e))?;
        let zone = Name::from_str(&self.config.zone).map_err(|e| dns_failure("zone", e))?;
        let name = Name::from_str(name).map_err(|e| dns_failure("name", e))?;
        let record = Record::from_rdata(name, TXT_TTL, RData::TXT(TXT::new(vec![value.into()])));
        let mut c = client(self.config.server, Some(signer)).await?;
        let answer = if add {
            c.append(record, zone, false).await
        } else {
            c.delete_by_rdata(record, zone).await
        }
        .map_err(|e| dns_failure("update", e))?;
        let code = answer.metadata.response_code;
        if code != hickory_proto::op::ResponseCode::NoError {
            return Err(UpstreamFailure::plain(format!(
                "DNS update refused by {}: {code}",
                self.config.server
            )));
        }
        Ok(())
    }
}

impl DnsProvider for Rfc2136 {
    fn set_txt<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>> {
        Box::pin(self.update(name, value, true))
    }

    fn remove_txt<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), UpstreamFailure>> {
        Box::pin(self.update(name, value, false))
    }

    fn authoritative<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SocketAddr>, UpstreamFailure>> {
        let mut all = vec![self.config.server];
        all.extend(self.config.nameservers.iter().copied());
        Box::pin(async { Ok(all) })
    }
}
