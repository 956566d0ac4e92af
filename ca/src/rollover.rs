//! CA rollover: the spec of a successor CA (a new key, the same policy) and cross
//! certificates between two roots, so that clients trusting either root verify chains of
//! both.

use std::net::IpAddr;

use ::time::{Duration, OffsetDateTime};
use ipnetwork::IpNetwork;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, KeyIdMethod,
    KeyUsagePurpose, SerialNumber, SubjectPublicKeyInfo,
};
use x509_parser::prelude::*;

use crate::issue::random_serial;
use crate::{
    CaError, CaSpec, IssuedCertificate, KeyAlgorithm, Links, NameConstraintSpec, SigningCa,
};

/// What may differ between a CA and its successor; everything else is kept.
#[derive(Debug, Clone, Default)]
pub struct SuccessorOptions {
    /// Subject common name; the current one with its generation counted up (`X` → `X G2`,
    /// `X G2` → `X G3`) when absent, so that the two CAs never share a name.
    pub common_name: Option<String>,
    /// Key type; the current one when absent.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// Lifetime in days; the current CA's lifetime when absent.
    pub validity_days: Option<u32>,
}

/// The next generation of a CA's common name: `X` → `X G2`, `X G7` → `X G8`.
pub fn next_generation_name(common_name: &str) -> String {
    if let Some((base, n)) = common_name.rsplit_once(" G")
        && let Ok(n) = n.parse::<u32>()
        && n >= 2
    {
        return format!("{base} G{}", n + 1);
    }
    format!("{common_name} G2")
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CaError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| CaError::BadCertificate(format!("not a DER X.509 certificate: {e}")))
}

fn attribute(cert: &X509Certificate<'_>, oid: &x509_parser::der_parser::Oid<'_>) -> Option<String> {
    cert.subject()
        .iter_attributes()
        .find(|a| a.attr_type() == oid)
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned)
}

/// The name constraints of a CA certificate, as a spec for its successor.
fn name_constraints(cert: &X509Certificate<'_>) -> Option<NameConstraintSpec> {
    let nc = cert.name_constraints().ok().flatten()?;
    let mut spec = NameConstraintSpec::default();
    let collect = |subtrees: &Option<Vec<GeneralSubtree<'_>>>,
                   dns: &mut Vec<String>,
                   ips: &mut Vec<IpNetwork>| {
        for st in subtrees.iter().flatten() {
            match &st.base {
                GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) if b.len() == 8 || b.len() == 32 => {
                    let half = b.len() / 2;
                    let (addr, mask) = b.split_at(half);
                    let prefix: u32 = mask.iter().map(|m| m.count_ones()).sum();
                    let addr = match half {
                        4 => IpAddr::from(<[u8; 4]>::try_from(addr).unwrap_or_default()),
                        _ => IpAddr::from(<[u8; 16]>::try_from(addr).unwrap_or_default()),
                    };
                    if let Ok(n) = IpNetwork::new(addr, prefix as u8) {
                        ips.push(n);
                    }
                }
                _ => {}
            }
        }
    };
    collect(
        &nc.value.permitted_subtrees,
        &mut spec.permitted_dns,
        &mut spec.permitted_ips,
    );
    collect(
        &nc.value.excluded_subtrees,
        &mut spec.excluded_dns,
        &mut spec.excluded_ips,
    );
    Some(spec)
}

/// The spec of a successor to `current`: its organisation, country, path length, name
/// constraints, key type and lifetime, with a new common name unless one is given.
pub fn successor_spec(current: &SigningCa, options: &SuccessorOptions) -> Result<CaSpec, CaError> {
    let cert = parse(current.cert_der())?;
    let info = current.info();
    let old_cn = info
        .common_name
        .clone()
        .unwrap_or_else(|| info.subject.clone());
    let common_name = match &options.common_name {
        Some(cn) if cn.trim().is_empty() => {
            return Err(CaError::InvalidCa("common_name must not be empty".into()));
        }
        Some(cn) => cn.trim().to_string(),
        None => next_generation_name(&old_cn),
    };
    let lifetime = (info.not_after - info.not_before)
        .whole_days()
        .clamp(1, 36500) as u32;
    Ok(CaSpec {
        common_name,
        organization: attribute(
            &cert,
            &x509_parser::oid_registry::OID_X509_ORGANIZATION_NAME,
        ),
        country: attribute(&cert, &x509_parser::oid_registry::OID_X509_COUNTRY_NAME),
        key_algorithm: options.key_algorithm.unwrap_or(current.key_algorithm()),
        validity_days: options.validity_days.unwrap_or(lifetime),
        path_len: info.path_len.map(|n| n.min(255) as u8),
        name_constraints: name_constraints(&cert),
    })
}

/// The subject of `cert` as rcgen writes it, attribute by attribute and string type by
/// string type, so that a cross certificate names exactly the same subject.
fn subject_of(cert: &X509Certificate<'_>) -> Result<DistinguishedName, CaError> {
    let mut dn = DistinguishedName::new();
    for attr in cert.subject().iter_attributes() {
        let arcs: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| CaError::BadCertificate("a subject attribute type is too long".into()))?
            .collect();
        let value = attr.attr_value();
        let text = attr
            .as_str()
            .map_err(|_| CaError::BadCertificate("a subject attribute is not a string".into()))?
            .to_string();
        let value = match value.header.tag() {
            x509_parser::der_parser::asn1_rs::Tag::PrintableString => DnValue::PrintableString(
                text.try_into()
                    .map_err(|_| CaError::BadCertificate("bad PrintableString".into()))?,
            ),
            x509_parser::der_parser::asn1_rs::Tag::Ia5String => DnValue::Ia5String(
                text.try_into()
                    .map_err(|_| CaError::BadCertificate("bad IA5String".into()))?,
            ),
            _ => DnValue::Utf8String(text),
        };
        dn.push(DnType::from_oid(&arcs), value);
    }
    Ok(dn)
}

/// A cross certificate: `subject`'s name and key, signed by `signer`, valid from now until
/// the earlier of the two CAs' ends. With it, a client that trusts only `signer` (or the
/// root above it) verifies chains that end at `subject`.
pub fn cross_sign(
    subject: &SigningCa,
    signer: &SigningCa,
    signer_links: &Links,
    now: OffsetDateTime,
) -> Result<IssuedCertificate, CaError> {
    let cert = parse(subject.cert_der())?;
    let not_after = subject.info().not_after.min(signer.info().not_after);
    if not_after <= now {
        return Err(CaError::InvalidCa(
            "one of the two CAs has expired; there is nothing to cross-sign".into(),
        ));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = subject_of(&cert)?;
    params.not_before = now - Duration::minutes(1);
    params.not_after = not_after;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    params.is_ca = IsCa::Ca(match subject.info().path_len {
        Some(n) => BasicConstraints::Constrained(n.min(255) as u8),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if let Some(nc) = name_constraints(&cert) {
        let spec = CaSpec {
            name_constraints: Some(nc),
            ..CaSpec::new("x", subject.key_algorithm())
        };
        params.name_constraints = spec.params(now)?.name_constraints;
    }
    // The same subject key identifier as the subject's own certificate: chain builders
    // match it against the authority key identifier of what the subject signs.
    if let Some(ski) = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
    {
        params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
    }
    params.use_authority_key_identifier_extension = true;
    signer_links.apply(&mut params);
    let spki = SubjectPublicKeyInfo::from_der(cert.public_key().raw)
        .map_err(|e| CaError::BadCertificate(format!("subject public key: {e}")))?;
    signer.sign(&params, &spki)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{create_intermediate, create_root};

    #[test]
    fn generations_count_up() {
        assert_eq!(next_generation_name("Example Root"), "Example Root G2");
        assert_eq!(next_generation_name("Example Root G2"), "Example Root G3");
        assert_eq!(next_generation_name("Example G1"), "Example G1 G2");
        assert_eq!(next_generation_name("Gx G"), "Gx G G2");
    }

    #[test]
    fn successor_keeps_policy_and_cross_certificates_chain_both_ways() {
        let now = OffsetDateTime::now_utc();
        let mut spec = CaSpec::new("Old Root", KeyAlgorithm::EcdsaP256);
        spec.organization = Some("Example".into());
        spec.country = Some("GB".into());
        spec.path_len = Some(2);
        spec.validity_days = 1000;
        spec.name_constraints = Some(NameConstraintSpec {
            permitted_dns: vec!["example.com".into()],
            permitted_ips: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        });
        let old = create_root(&spec, now).unwrap();
        let old = SigningCa::load(old.cert_der, &old.key_pkcs8).unwrap();
        let next = successor_spec(&old, &SuccessorOptions::default()).unwrap();
        assert_eq!(next.common_name, "Old Root G2");
        assert_eq!(next.organization.as_deref(), Some("Example"));
        assert_eq!(next.country.as_deref(), Some("GB"));
        assert_eq!(next.path_len, Some(2));
        assert_eq!(next.validity_days, 1000);
        assert_eq!(next.name_constraints, spec.name_constraints);

        let new = create_root(&next, now).unwrap();
        let new = SigningCa::load(new.cert_der, &new.key_pkcs8).unwrap();
        let cross = cross_sign(&new, &old, &Links::none(), now).unwrap();
        assert_eq!(cross.info.subject, new.info().subject);
        assert_eq!(cross.info.issuer, old.info().subject);
        assert_eq!(
            cross.info.not_after,
            new.info().not_after.min(old.info().not_after)
        );
        let (_, c) = X509Certificate::from_der(&cross.der).unwrap();
        assert_eq!(
            c.public_key().raw,
            parse(new.cert_der()).unwrap().public_key().raw
        );
        // Verified with the old root's key.
        let old_cert = parse(old.cert_der()).unwrap();
        c.verify_signature(Some(old_cert.public_key())).unwrap();

        // An intermediate under the new root is signed by the key the cross certificate
        // carries.
        let inter = create_intermediate(
            &CaSpec::new("Issuing", KeyAlgorithm::EcdsaP256),
            &new,
            &Links::none(),
            now,
        )
        .unwrap();
        let (_, i) = X509Certificate::from_der(&inter.cert_der).unwrap();
        i.verify_signature(Some(c.public_key())).unwrap();
    }

    #[test]
    fn an_expired_pair_is_not_cross_signed() {
        let now = OffsetDateTime::now_utc();
        let a = create_root(&CaSpec::new("A", KeyAlgorithm::EcdsaP256), now).unwrap();
        let a = SigningCa::load(a.cert_der, &a.key_pkcs8).unwrap();
        let b = create_root(&CaSpec::new("B", KeyAlgorithm::EcdsaP256), now).unwrap();
        let b = SigningCa::load(b.cert_der, &b.key_pkcs8).unwrap();
        let later = now + Duration::days(4000);
        assert!(matches!(
            cross_sign(&a, &b, &Links::none(), later),
            Err(CaError::InvalidCa(_))
        ));
    }
}
