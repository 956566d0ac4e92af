//! CAA (RFC 8659): whether the Relevant RRset of a name lets this CA issue for it. Pure
//! decision logic, records in and a decision out; the lookup that climbs the DNS tree to find
//! the Relevant RRset is [`crate::check_caa`].

use std::fmt;

/// One CAA property (RFC 8659 §4.1) as found in DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    /// The flags octet; bit 128 is the Issuer Critical Flag, the others are ignored.
    pub flags: u8,
    /// The property tag (matched case-insensitively).
    pub tag: String,
    /// The property value as sent (invalid UTF-8 replaced).
    pub value: String,
}

impl CaaRecord {
    /// A record from its three fields.
    pub fn new(flags: u8, tag: impl Into<String>, value: impl Into<String>) -> CaaRecord {
        CaaRecord {
            flags,
            tag: tag.into(),
            value: value.into(),
        }
    }

    /// Whether the Issuer Critical Flag is set.
    pub fn is_critical(&self) -> bool {
        self.flags & 0x80 != 0
    }

    fn tag_is(&self, tag: &str) -> bool {
        self.tag.eq_ignore_ascii_case(tag)
    }

    /// The issuer-domain-name of an `issue` or `issuewild` value: the part before any `;`
    /// parameters, trimmed; empty when the property authorizes no one.
    fn issuer_domain(&self) -> &str {
        self.value.split(';').next().unwrap_or("").trim()
    }
}

impl fmt::Display for CaaRecord {
    /// The presentation format, `0 issue "ca.example"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {:?}", self.flags, self.tag, self.value)
    }
}

/// The outcome of a CAA check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaaDecision {
    /// This CA may issue.
    Allowed,
    /// This CA must not issue; the text names the deciding records.
    Forbidden(String),
}

/// Property tags this CA understands, so a critical one does not forbid issuance: `issue`,
/// `issuewild` and `iodef` (RFC 8659), and `issuemail` (RFC 9495), which concerns S/MIME
/// certificates only and so never restricts this CA's (TLS) issuance.
const UNDERSTOOD_TAGS: &[&str] = &["issue", "issuewild", "iodef", "issuemail"];

/// Decide from the Relevant RRset of a name (RFC 8659 §3, §4): the first non-empty CAA RRset
/// found climbing from the name towards the root, or none (empty) when there is none.
///
/// - No records: allowed.
/// - A critical property with a tag not understood here: forbidden.
/// - For a wildcard name the `issuewild` properties decide when there are any, else the
///   `issue` properties (§4.3); for other names the `issue` properties (§4.2). When there are
///   none of those, the RRset does not restrict issuance.
/// - Otherwise issuance is allowed only when some deciding property's issuer-domain-name (the
///   value before any `;` parameters, trimmed, compared case-insensitively) is one of
///   `identities`. An empty issuer-domain-name (`issue ";"`) authorizes no one; parameters
///   such as `accounturi` are not evaluated. `iodef` is ignored.
///
/// ```
/// use certkeeper_acme::{CaaDecision, CaaRecord, caa_decision};
/// let us = vec!["ca.example".to_string()];
/// let rrset = [CaaRecord::new(0, "issue", "ca.example"), CaaRecord::new(0, "issuewild", ";")];
/// assert_eq!(caa_decision(&rrset, false, &us), CaaDecision::Allowed);
/// assert!(matches!(caa_decision(&rrset, true, &us), CaaDecision::Forbidden(_)));
/// assert_eq!(caa_decision(&[], true, &us), CaaDecision::Allowed);
/// ```
pub fn caa_decision(records: &[CaaRecord], wildcard: bool, identities: &[String]) -> CaaDecision {
    if let Some(r) = records
        .iter()
        .find(|r| r.is_critical() && !UNDERSTOOD_TAGS.iter().any(|t| r.tag_is(t)))
    {
        return CaaDecision::Forbidden(format!(
            "the critical property {r} is not understood by this CA"
        ));
    }
    let by_tag =
        |tag: &str| -> Vec<&CaaRecord> { records.iter().filter(|r| r.tag_is(tag)).collect() };
    let deciding = match by_tag("issuewild") {
        wild if wildcard && !wild.is_empty() => wild,
        _ => by_tag("issue"),
    };
    if deciding.is_empty() {
        return CaaDecision::Allowed;
    }
    let ours = |r: &&CaaRecord| {
        let domain = r.issuer_domain();
        !domain.is_empty() && identities.iter().any(|i| i.eq_ignore_ascii_case(domain))
    };
    if deciding.iter().any(ours) {
        return CaaDecision::Allowed;
    }
    let listed: Vec<String> = deciding.iter().map(|r| r.to_string()).collect();
    CaaDecision::Forbidden(format!(
        "{} does not authorize {}",
        listed.join(", "),
        identities.join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Vec<String> {
        vec!["certkeeper.test".into(), "ca.example".into()]
    }

    fn allowed(records: &[CaaRecord], wildcard: bool) -> bool {
        caa_decision(records, wildcard, &us()) == CaaDecision::Allowed
    }

    #[test]
    fn no_records_allow() {
        assert!(allowed(&[], false));
        assert!(allowed(&[], true));
    }

    #[test]
    fn issue_must_name_us() {
        assert!(allowed(
            &[CaaRecord::new(0, "issue", "certkeeper.test")],
            false
        ));
        assert!(allowed(
            &[
                CaaRecord::new(0, "issue", "other.example"),
                CaaRecord::new(0, "issue", "ca.example")
            ],
            false
        ));
        let d = caa_decision(&[CaaRecord::new(0, "issue", "other.example")], false, &us());
        match d {
            CaaDecision::Forbidden(why) => {
                assert!(why.contains(r#"0 issue "other.example""#), "{why}")
            }
            CaaDecision::Allowed => panic!("another CA's record allowed issuance"),
        }
        // A name that merely contains ours is not ours.
        assert!(!allowed(
            &[CaaRecord::new(0, "issue", "sub.certkeeper.test")],
            false
        ));
        assert!(!allowed(
            &[CaaRecord::new(0, "issue", "certkeeper.test.evil")],
            false
        ));
    }

    #[test]
    fn values_are_compared_without_case_parameters_or_padding() {
        assert!(allowed(
            &[CaaRecord::new(0, "ISSUE", " CertKeeper.TEST ")],
            false
        ));
        assert!(allowed(
            &[CaaRecord::new(
                0,
                "issue",
                "certkeeper.test; accounturi=https://ca.example/acct/1"
            )],
            false
        ));
        assert!(allowed(&[CaaRecord::new(0, "issue", "ca.example;")], false));
    }

    #[test]
    fn empty_issuer_forbids_everyone() {
        assert!(!allowed(&[CaaRecord::new(0, "issue", ";")], false));
        assert!(!allowed(&[CaaRecord::new(0, "issue", "")], false));
        assert!(!allowed(&[CaaRecord::new(0, "issue", " ; foo=bar")], false));
        // ... but another property in the set may still name us.
        assert!(allowed(
            &[
                CaaRecord::new(0, "issue", ";"),
                CaaRecord::new(0, "issue", "certkeeper.test")
            ],
            false
        ));
    }

    #[test]
    fn wildcards_prefer_issuewild() {
        let set = [
            CaaRecord::new(0, "issue", "certkeeper.test"),
            CaaRecord::new(0, "issuewild", "other.example"),
        ];
        assert!(
            allowed(&set, false),
            "issuewild does not apply to plain names"
        );
        assert!(!allowed(&set, true));
        let set = [
            CaaRecord::new(0, "issue", "other.example"),
            CaaRecord::new(0, "issuewild", "certkeeper.test"),
        ];
        assert!(!allowed(&set, false));
        assert!(allowed(&set, true));
        // Without issuewild, issue decides for wildcards too.
        assert!(!allowed(
            &[CaaRecord::new(0, "issue", "other.example")],
            true
        ));
        assert!(allowed(
            &[CaaRecord::new(0, "issue", "certkeeper.test")],
            true
        ));
        assert!(!allowed(&[CaaRecord::new(0, "issuewild", ";")], true));
    }

    #[test]
    fn sets_without_deciding_properties_do_not_restrict() {
        assert!(allowed(
            &[CaaRecord::new(0, "iodef", "mailto:sec@example.com")],
            false
        ));
        assert!(allowed(
            &[CaaRecord::new(0, "issuewild", "other.example")],
            false
        ));
        assert!(allowed(&[CaaRecord::new(0, "futuretag", "x")], false));
    }

    #[test]
    fn unknown_critical_properties_forbid() {
        let set = [
            CaaRecord::new(0, "issue", "certkeeper.test"),
            CaaRecord::new(128, "futuretag", "x"),
        ];
        match caa_decision(&set, false, &us()) {
            CaaDecision::Forbidden(why) => {
                assert!(why.contains(r#"128 futuretag "x""#), "{why}")
            }
            CaaDecision::Allowed => panic!("an unknown critical property was ignored"),
        }
        // Critical properties this CA understands, and reserved flag bits, are fine.
        assert!(allowed(
            &[
                CaaRecord::new(128, "issue", "certkeeper.test"),
                CaaRecord::new(128, "iodef", "mailto:sec@example.com"),
                CaaRecord::new(1, "futuretag", "x"),
            ],
            false
        ));
    }
}
