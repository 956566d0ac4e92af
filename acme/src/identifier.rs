//! Identifiers (RFC 8555 §9.7.7 `dns`, RFC 8738 `ip`) and the challenge types each allows.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{Problem, ProblemType};

/// The identifier types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierKind {
    /// A DNS name (possibly a wildcard).
    Dns,
    /// An IP address (RFC 8738).
    Ip,
}

/// An order identifier, normalised (lower-case DNS names, canonical IP text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// The type.
    #[serde(rename = "type")]
    pub kind: IdentifierKind,
    /// The name or address.
    pub value: String,
}

/// The challenge types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeType {
    /// RFC 8555 §8.3.
    Http01,
    /// RFC 8555 §8.4.
    Dns01,
    /// RFC 8737.
    TlsAlpn01,
}

impl ChallengeType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeType::Http01 => "http-01",
            ChallengeType::Dns01 => "dns-01",
            ChallengeType::TlsAlpn01 => "tls-alpn-01",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<ChallengeType> {
        match s {
            "http-01" => Some(ChallengeType::Http01),
            "dns-01" => Some(ChallengeType::Dns01),
            "tls-alpn-01" => Some(ChallengeType::TlsAlpn01),
            _ => None,
        }
    }
}

impl Identifier {
    /// A DNS identifier, checked and normalised.
    pub fn dns(value: &str) -> Result<Identifier, Problem> {
        let n = certkeeper_ca::normalize_dns_name(value)
            .map_err(|e| Problem::new(ProblemType::RejectedIdentifier, e))?;
        if !n.contains('.') && !n.starts_with("*.") && n != "localhost" {
            return Err(Problem::new(
                ProblemType::RejectedIdentifier,
                format!("{n:?} is not a fully qualified domain name"),
            ));
        }
        Ok(Identifier {
            kind: IdentifierKind::Dns,
            value: n,
        })
    }

    /// Check and normalise an identifier as a client sent it.
    pub fn checked(&self) -> Result<Identifier, Problem> {
        match self.kind {
            IdentifierKind::Dns => Identifier::dns(&self.value),
            IdentifierKind::Ip => {
                let ip: IpAddr = self.value.parse().map_err(|_| {
                    Problem::new(
                        ProblemType::RejectedIdentifier,
                        format!("{:?} is not an IP address", self.value),
                    )
                })?;
                Ok(Identifier {
                    kind: IdentifierKind::Ip,
                    value: ip.to_string(),
                })
            }
        }
    }

    /// Whether this is a wildcard DNS name.
    pub fn is_wildcard(&self) -> bool {
        self.kind == IdentifierKind::Dns && self.value.starts_with("*.")
    }

    /// The name validation is performed for (the wildcard's base domain).
    pub fn base(&self) -> &str {
        self.value.strip_prefix("*.").unwrap_or(&self.value)
    }

    /// The challenges offered for this identifier: wildcards only dns-01; IP addresses no
    /// dns-01 (RFC 8738 §7).
    pub fn challenge_types(&self) -> Vec<ChallengeType> {
        match self.kind {
            IdentifierKind::Dns if self.is_wildcard() => vec![ChallengeType::Dns01],
            IdentifierKind::Dns => vec![
                ChallengeType::Http01,
                ChallengeType::Dns01,
                ChallengeType::TlsAlpn01,
            ],
            IdentifierKind::Ip => vec![ChallengeType::Http01, ChallengeType::TlsAlpn01],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses() {
        assert_eq!(
            Identifier::dns("WWW.Example.COM.").unwrap().value,
            "www.example.com"
        );
        assert!(Identifier::dns("bad_name.example").is_err());
        assert!(Identifier::dns("com").is_err());
        let ip = Identifier {
            kind: IdentifierKind::Ip,
            value: "::0001".into(),
        }
        .checked()
        .unwrap();
        assert_eq!(ip.value, "::1");
        assert!(
            Identifier {
                kind: IdentifierKind::Ip,
                value: "1.2.3".into()
            }
            .checked()
            .is_err()
        );
    }
}
