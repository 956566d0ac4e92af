//! Profiles: the policy every issuance request passes before anything is signed.

use std::net::IpAddr;

use ::time::{Duration, OffsetDateTime};
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::KeyAlgorithm;
use crate::issue::{Approved, IssuanceRequest, SigningCa, check_subject_value};
use crate::names::{DnsRule, normalize_dns_name};

/// A rule of a profile that a request broke. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile {profile:?}: rule {rule}: {detail}")]
pub struct PolicyViolation {
    /// The profile's name.
    pub profile: String,
    /// The rule, as named in the profile's JSON (`allowed_dns_names`, `max_validity_days`, ...).
    pub rule: &'static str,
    /// What was wrong.
    pub detail: String,
}

/// Key usage bits a profile may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum KeyUsage {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
}

impl KeyUsage {
    pub(crate) fn to_rcgen(self) -> rcgen::KeyUsagePurpose {
        use rcgen::KeyUsagePurpose as K;
        match self {
            KeyUsage::DigitalSignature => K::DigitalSignature,
            KeyUsage::ContentCommitment => K::ContentCommitment,
            KeyUsage::KeyEncipherment => K::KeyEncipherment,
            KeyUsage::DataEncipherment => K::DataEncipherment,
            KeyUsage::KeyAgreement => K::KeyAgreement,
        }
    }
}

/// Extended key usages a profile may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ExtKeyUsage {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
    OcspSigning,
}

impl ExtKeyUsage {
    pub(crate) fn to_rcgen(self) -> rcgen::ExtendedKeyUsagePurpose {
        use rcgen::ExtendedKeyUsagePurpose as E;
        match self {
            ExtKeyUsage::ServerAuth => E::ServerAuth,
            ExtKeyUsage::ClientAuth => E::ClientAuth,
            ExtKeyUsage::CodeSigning => E::CodeSigning,
            ExtKeyUsage::EmailProtection => E::EmailProtection,
            ExtKeyUsage::TimeStamping => E::TimeStamping,
            ExtKeyUsage::OcspSigning => E::OcspSigning,
        }
    }
}

fn default_key_usages() -> Vec<KeyUsage> {
    vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment]
}
fn default_ekus() -> Vec<ExtKeyUsage> {
    vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth]
}
/// RFC 5280's upper bound on a commonName, in characters.
const UB_COMMON_NAME: usize = 64;

fn default_max_validity() -> u32 {
    90
}
fn default_key_types() -> Vec<KeyAlgorithm> {
    KeyAlgorithm::GENERATABLE.to_vec()
}
fn default_max_names() -> u32 {
    100
}
fn default_true() -> bool {
    true
}

/// A certificate template with policy. Every field has a default, so `{}` is a valid
/// profile body apart from its name: TLS server and client usages, 90 days, any generatable
/// key type, and no names allowed until `allowed_dns_names` / `allowed_ip_ranges` say so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(description = "A profile's policy. Every field but `name` has a default.")
)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Unique name: letters, digits, `-`, `_` and `.`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]+$"))]
    pub name: String,
    /// Key usages set in issued certificates.
    #[serde(default = "default_key_usages")]
    #[cfg_attr(feature = "openapi", schema(default = default_key_usages))]
    pub key_usages: Vec<KeyUsage>,
    /// Extended key usages set in issued certificates.
    #[serde(default = "default_ekus")]
    #[cfg_attr(feature = "openapi", schema(default = default_ekus))]
    pub ext_key_usages: Vec<ExtKeyUsage>,
    /// Longest validity a request may ask for, in days.
    #[serde(default = "default_max_validity")]
    #[cfg_attr(
        feature = "openapi",
        schema(default = default_max_validity, minimum = 1, maximum = 3650)
    )]
    pub max_validity_days: u32,
    /// Validity when the request names none, in days; at most `max_validity_days`. Null:
    /// `max_validity_days`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
    pub default_validity_days: Option<u32>,
    /// Subscriber key types accepted (`ecdsa-p256`, `rsa-2048`, ...).
    #[serde(default = "default_key_types")]
    #[cfg_attr(feature = "openapi", schema(default = default_key_types, min_items = 1))]
    pub allowed_key_types: Vec<KeyAlgorithm>,
    /// DNS name rules; no DNS names are allowed while this is empty. `*` (any name),
    /// `host.example.com` (exactly), `*.example.com` (one label below), `.example.com` (any
    /// depth below).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>, default = json!([])))]
    pub allowed_dns_names: Vec<DnsRule>,
    /// Whether wildcard names (`*.example.com`) may be requested at all.
    #[serde(default = "default_true")]
    #[cfg_attr(feature = "openapi", schema(default = true))]
    pub allow_wildcards: bool,
    /// IP ranges (CIDR, e.g. `10.0.0.0/8`; a bare address is one host) whose addresses may
    /// appear in subjectAltName.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>, default = json!([])))]
    pub allowed_ip_ranges: Vec<IpNetwork>,
    /// Copy O, OU, C, ST and L from the CSR's subject (the CN is always a requested name).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub copy_subject: bool,
    /// Most names (DNS and IP) in one certificate.
    #[serde(default = "default_max_names")]
    #[cfg_attr(feature = "openapi", schema(default = default_max_names, minimum = 1))]
    pub max_names: u32,
}

impl Profile {
    /// A profile for TLS servers with the defaults and no names allowed yet.
    pub fn tls_server(name: &str) -> Profile {
        Profile {
            name: name.to_string(),
            key_usages: default_key_usages(),
            ext_key_usages: default_ekus(),
            max_validity_days: default_max_validity(),
            default_validity_days: None,
            allowed_key_types: default_key_types(),
            allowed_dns_names: Vec::new(),
            allow_wildcards: true,
            allowed_ip_ranges: Vec::new(),
            copy_subject: false,
            max_names: default_max_names(),
        }
    }

    fn violation(&self, rule: &'static str, detail: String) -> PolicyViolation {
        PolicyViolation {
            profile: self.name.clone(),
            rule,
            detail,
        }
    }

    /// Whether keys of type `alg` may be certified under this profile: the rule
    /// [`Profile::approve`] applies, for callers that want to refuse before making a key.
    pub fn check_key_type(&self, alg: KeyAlgorithm) -> Result<(), PolicyViolation> {
        if self.allowed_key_types.contains(&alg) {
            return Ok(());
        }
        let allowed: Vec<String> = self
            .allowed_key_types
            .iter()
            .map(|k| k.to_string())
            .collect();
        Err(self.violation(
            "allowed_key_types",
            format!(
                "key type {alg} is not allowed (allowed: {})",
                allowed.join(", ")
            ),
        ))
    }

    /// Check the profile itself for contradictions (empty name, zero validity, ...).
    pub fn validate(&self) -> Result<(), PolicyViolation> {
        if self.name.trim().is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(self.violation(
                "name",
                "must be non-empty and use only letters, digits, '-', '_' and '.'".into(),
            ));
        }
        if self.max_validity_days == 0 || self.max_validity_days > 3650 {
            return Err(self.violation("max_validity_days", "must be between 1 and 3650".into()));
        }
        if let Some(d) = self.default_validity_days
            && (d == 0 || d > self.max_validity_days)
        {
            return Err(self.violation(
                "default_validity_days",
                format!(
                    "{d} must be between 1 and max_validity_days ({})",
                    self.max_validity_days
                ),
            ));
        }
        if self.allowed_key_types.is_empty() {
            return Err(self.violation(
                "allowed_key_types",
                "must name at least one key type".into(),
            ));
        }
        if self.max_names == 0 {
            return Err(self.violation("max_names", "must be at least 1".into()));
        }
        Ok(())
    }

    /// Check a request against this profile and the issuing CA, and turn it into the only
    /// thing [`SigningCa::issue`] accepts.
    pub fn approve(
        &self,
        req: IssuanceRequest,
        ca: &SigningCa,
        now: OffsetDateTime,
    ) -> Result<Approved, PolicyViolation> {
        self.vet(req, Some(ca), now)
    }

    /// Check a request against this profile alone, for an upstream CA that signs
    /// elsewhere: the same rules as [`Profile::approve`] except the ones about our own
    /// issuing CA (its name constraints and its end). The answer cannot be signed here; it
    /// says what may be asked of the upstream.
    pub fn approve_for_upstream(
        &self,
        req: IssuanceRequest,
        now: OffsetDateTime,
    ) -> Result<UpstreamApproved, PolicyViolation> {
        let a = self.vet(req, None, now)?;
        Ok(UpstreamApproved {
            dns_names: a.dns_names().to_vec(),
            ip_addresses: a.ip_addresses().to_vec(),
            common_name: a
                .subject()
                .iter()
                .find(|(k, _)| k == "CN")
                .map(|(_, v)| v.clone()),
            not_after: a.not_after(),
        })
    }

    fn vet(
        &self,
        req: IssuanceRequest,
        ca: Option<&SigningCa>,
        now: OffsetDateTime,
    ) -> Result<Approved, PolicyViolation> {
        // Key type.
        let key_alg = KeyAlgorithm::of_spki(&req.public_key_der)
            .map_err(|e| self.violation("allowed_key_types", e.to_string()))?;
        self.check_key_type(key_alg)?;

        // Names.
        let mut dns = Vec::new();
        for raw in &req.dns_names {
            let n = normalize_dns_name(raw).map_err(|e| self.violation("allowed_dns_names", e))?;
            if n.starts_with("*.") && !self.allow_wildcards {
                return Err(self.violation(
                    "allow_wildcards",
                    format!("wildcard name {n} is not allowed"),
                ));
            }
            if !self.allowed_dns_names.iter().any(|r| r.allows(&n)) {
                return Err(self.violation(
                    "allowed_dns_names",
                    format!(
                        "DNS name {n} is not allowed by any rule{}",
                        rules_hint(&self.allowed_dns_names)
                    ),
                ));
            }
            if let Some(Err(e)) = ca.map(|ca| ca.name_constraints_allow_dns(&n)) {
                return Err(self.violation("ca_name_constraints", e));
            }
            if !dns.contains(&n) {
                dns.push(n);
            }
        }
        let mut ips: Vec<IpAddr> = Vec::new();
        for ip in &req.ip_addresses {
            if !self.allowed_ip_ranges.iter().any(|r| r.contains(*ip)) {
                return Err(self.violation(
                    "allowed_ip_ranges",
                    format!("IP address {ip} is not inside any allowed range"),
                ));
            }
            if let Some(Err(e)) = ca.map(|ca| ca.name_constraints_allow_ip(*ip)) {
                return Err(self.violation("ca_name_constraints", e));
            }
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        if dns.is_empty() && ips.is_empty() {
            return Err(self.violation(
                "allowed_dns_names",
                "the request names no DNS name or IP address".into(),
            ));
        }
        if dns.len() + ips.len() > self.max_names as usize {
            return Err(self.violation(
                "max_names",
                format!(
                    "{} names requested, at most {} allowed",
                    dns.len() + ips.len(),
                    self.max_names
                ),
            ));
        }

        // Validity.
        let not_before = now - Duration::minutes(1);
        let max = Duration::days(self.max_validity_days.into());
        let wanted = match (req.validity, req.not_after) {
            (Some(v), _) => v,
            (None, Some(na)) => na - now,
            (None, None) => Duration::days(
                self.default_validity_days
                    .unwrap_or(self.max_validity_days)
                    .into(),
            ),
        };
        if wanted <= Duration::ZERO {
            return Err(self.violation(
                "max_validity_days",
                "the requested validity is not positive".into(),
            ));
        }
        if wanted > max {
            return Err(self.violation(
                "max_validity_days",
                format!(
                    "requested validity of {} days exceeds the maximum of {} days",
                    (wanted.whole_hours() as f64 / 24.0).ceil(),
                    self.max_validity_days
                ),
            ));
        }
        let mut not_after = now + wanted;
        if let Some(ca) = ca {
            let ca_not_after = ca.info().not_after;
            if ca_not_after <= now {
                return Err(self.violation("issuer", "the issuing CA has expired".into()));
            }
            not_after = not_after.min(ca_not_after);
        }

        // Subject: CN is a requested name that fits in a CN (RFC 5280's ub-common-name, 64);
        // with none that fits, there is no CN and the names are in subjectAltName alone
        // (marked critical when the subject is empty). Other fields are copied only if the
        // profile says so.
        let mut subject: Vec<(String, String)> = Vec::new();
        let fits = |n: &String| n.len() <= UB_COMMON_NAME;
        let cn = req
            .subject
            .iter()
            .find(|(k, _)| k == "CN")
            .map(|(_, v)| v.to_ascii_lowercase().trim_end_matches('.').to_string())
            .filter(|cn| dns.contains(cn) || ips.iter().any(|ip| ip.to_string() == *cn))
            .filter(fits)
            .or_else(|| dns.iter().find(|n| fits(n)).cloned())
            .or_else(|| ips.first().map(ToString::to_string));
        if let Some(cn) = cn {
            subject.push(("CN".into(), cn));
        }
        if self.copy_subject {
            for (k, v) in &req.subject {
                if matches!(k.as_str(), "O" | "OU" | "C" | "ST" | "L") {
                    check_subject_value(k, v).map_err(|e| self.violation("copy_subject", e))?;
                    subject.push((k.clone(), v.clone()));
                }
            }
        }

        Ok(Approved::new(
            self.name.clone(),
            req.public_key_der,
            subject,
            dns,
            ips,
            self.key_usages.clone(),
            self.ext_key_usages.clone(),
            not_before,
            not_after,
        ))
    }
}

/// A request that passed a profile's policy for an upstream CA (see
/// [`Profile::approve_for_upstream`]): the names and end to ask the upstream for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamApproved {
    /// DNS names, normalized, without repeats.
    pub dns_names: Vec<String>,
    /// IP addresses, without repeats.
    pub ip_addresses: Vec<IpAddr>,
    /// The common name the profile would write (one of the names).
    pub common_name: Option<String>,
    /// The latest end of validity the profile allows.
    pub not_after: OffsetDateTime,
}

fn rules_hint(rules: &[DnsRule]) -> String {
    if rules.is_empty() {
        " (the profile allows no DNS names)".into()
    } else {
        let r: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        format!(" (allowed: {})", r.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use rcgen::PublicKeyData;

    use super::*;
    use crate::{CaSpec, Links};

    /// Found by the csr_policy fuzz target: with `copy_subject`, a CSR whose O (or OU, C,
    /// ST, L) was empty or longer than 64 characters was approved, and then refused by the
    /// signer with a message about the CA. Policy now refuses it, naming the rule.
    #[test]
    fn copied_subject_attributes_must_fit_a_certificate() {
        let now = OffsetDateTime::now_utc();
        let root = crate::create_root(&CaSpec::new("T", KeyAlgorithm::EcdsaP256), now).unwrap();
        let ca = SigningCa::load(root.cert_der, &root.key_pkcs8).unwrap();
        let mut profile = Profile::tls_server("t");
        profile.allowed_dns_names = vec!["*".parse().unwrap()];
        profile.copy_subject = true;
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let with_o = |o: String| {
            let mut req = IssuanceRequest::for_key(&key.subject_public_key_info())
                .with_dns("www.example.com");
            req.subject = vec![("O".into(), o)];
            profile.approve(req, &ca, now)
        };
        let fits = with_o("o".repeat(64)).unwrap();
        ca.issue(&fits, &Links::none()).unwrap();
        for bad in [String::new(), "o".repeat(65)] {
            assert_eq!(with_o(bad).unwrap_err().rule, "copy_subject");
        }
    }
}
