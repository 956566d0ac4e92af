//! DNS name syntax and the DNS name rules a profile can carry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CaError;

/// One rule of a profile's DNS allowlist.
///
/// Written as a string:
/// - `*` allows any name;
/// - `example.com` allows exactly that name;
/// - `*.example.com` allows any single label below `example.com` (and the wildcard name itself);
/// - `.example.com` allows every name below `example.com`, at any depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DnsRule {
    /// Any DNS name.
    Any,
    /// Exactly this name.
    Exact(String),
    /// One label below this base name.
    Wildcard(String),
    /// Any depth below this base name.
    Suffix(String),
}

impl DnsRule {
    /// Whether `name` (already normalised with [`normalize_dns_name`]) is allowed by this rule.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            DnsRule::Any => true,
            DnsRule::Exact(n) => n == name,
            DnsRule::Wildcard(base) => match name.strip_suffix(base.as_str()) {
                Some(prefix) => {
                    prefix.ends_with('.')
                        && !prefix[..prefix.len() - 1].contains('.')
                        && prefix.len() > 1
                }
                None => false,
            },
            DnsRule::Suffix(base) => name
                .strip_suffix(base.as_str())
                .is_some_and(|p| p.len() > 1 && p.ends_with('.')),
        }
    }
}

impl fmt::Display for DnsRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsRule::Any => f.write_str("*"),
            DnsRule::Exact(n) => f.write_str(n),
            DnsRule::Wildcard(b) => write!(f, "*.{b}"),
            DnsRule::Suffix(b) => write!(f, ".{b}"),
        }
    }
}

impl FromStr for DnsRule {
    type Err = CaError;
    fn from_str(s: &str) -> Result<Self, CaError> {
        let s = s.trim();
        if s == "*" {
            return Ok(DnsRule::Any);
        }
        let bad = |why: &str| CaError::InvalidCa(format!("invalid DNS rule {s:?}: {why}"));
        if let Some(base) = s.strip_prefix("*.") {
            let base = normalize_dns_name(base).map_err(|e| bad(&e))?;
            return Ok(DnsRule::Wildcard(base));
        }
        if let Some(base) = s.strip_prefix('.') {
            let base = normalize_dns_name(base).map_err(|e| bad(&e))?;
            return Ok(DnsRule::Suffix(base));
        }
        normalize_dns_name(s)
            .map(DnsRule::Exact)
            .map_err(|e| bad(&e))
    }
}

impl TryFrom<String> for DnsRule {
    type Error = CaError;
    fn try_from(s: String) -> Result<Self, CaError> {
        s.parse()
    }
}

impl From<DnsRule> for String {
    fn from(r: DnsRule) -> String {
        r.to_string()
    }
}

/// Lower-case a DNS name, drop one trailing dot, and check its syntax (RFC 1035 / 5890 LDH
/// labels; a `*` only as the whole leftmost label). Returns a message saying what is wrong.
pub fn normalize_dns_name(name: &str) -> Result<String, String> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if n.is_empty() {
        return Err("empty DNS name".into());
    }
    if n.len() > 253 {
        return Err(format!("DNS name {n:?} is longer than 253 characters"));
    }
    let labels: Vec<&str> = n.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" && i == 0 && labels.len() > 1 {
            continue;
        }
        if label.is_empty() {
            return Err(format!("DNS name {n:?} has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "DNS name {n:?} has a label longer than 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "DNS name {n:?} has a character outside letters, digits and '-' (wildcards only as the whole leftmost label)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "DNS name {n:?} has a label that starts or ends with '-'"
            ));
        }
    }
    if n.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("{n:?} is an IP address, not a DNS name"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> DnsRule {
        s.parse().unwrap()
    }

    #[test]
    fn rules_match_as_documented() {
        assert!(r("*").allows("anything.example"));
        assert!(r("example.com").allows("example.com"));
        assert!(!r("example.com").allows("www.example.com"));
        assert!(r("*.example.com").allows("www.example.com"));
        assert!(r("*.example.com").allows("*.example.com"));
        assert!(!r("*.example.com").allows("a.b.example.com"));
        assert!(!r("*.example.com").allows("example.com"));
        assert!(!r("*.example.com").allows("badexample.com"));
        assert!(r(".example.com").allows("a.b.example.com"));
        assert!(!r(".example.com").allows("example.com"));
        assert!(!r(".example.com").allows("evilexample.com"));
    }

    #[test]
    fn name_syntax() {
        assert_eq!(
            normalize_dns_name("WWW.Example.COM.").unwrap(),
            "www.example.com"
        );
        assert!(normalize_dns_name("*.example.com").is_ok());
        assert!(normalize_dns_name("a.*.example.com").is_err());
        assert!(normalize_dns_name("foo_bar.com").is_err());
        assert!(normalize_dns_name("-a.com").is_err());
        assert!(normalize_dns_name("a..com").is_err());
        assert!(normalize_dns_name("10.0.0.1").is_err());
        assert!(normalize_dns_name(&"a".repeat(64)).is_err());
        assert!("bad rule!".parse::<DnsRule>().is_err());
    }
}
