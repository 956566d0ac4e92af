//! The one door to signing end-entity certificates.
//!
//! [`SigningCa::issue`] accepts only an [`Approved`] request, and only
//! [`Profile::approve`](crate::Profile::approve) can make one, so nothing is signed that did
//! not pass profile policy.

use std::net::IpAddr;

use ::time::{Duration, OffsetDateTime};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

use crate::inspect::info_of;
use crate::profile::{ExtKeyUsage, KeyUsage};
use crate::{CaError, CaKey, CertInfo, KeyAlgorithm, Links};

/// What a front end asks for. Only the public key and the names are taken from a CSR; the
/// profile decides everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuanceRequest {
    /// DER SubjectPublicKeyInfo of the subscriber key.
    pub public_key_der: Vec<u8>,
    /// Subject attributes (short name, value) as the subscriber asked for them.
    pub subject: Vec<(String, String)>,
    /// Requested DNS names.
    pub dns_names: Vec<String>,
    /// Requested IP addresses.
    pub ip_addresses: Vec<IpAddr>,
    /// Requested lifetime (overrides `not_after`).
    pub validity: Option<Duration>,
    /// Requested end of validity.
    pub not_after: Option<OffsetDateTime>,
}

impl IssuanceRequest {
    /// A request for the given public key (DER SubjectPublicKeyInfo) with no names yet.
    pub fn for_key(public_key_der: &[u8]) -> IssuanceRequest {
        IssuanceRequest {
            public_key_der: public_key_der.to_vec(),
            ..Default::default()
        }
    }

    /// A request from a parsed CSR.
    pub fn from_csr(csr: &crate::ParsedCsr) -> IssuanceRequest {
        IssuanceRequest {
            public_key_der: csr.public_key_der.clone(),
            subject: csr.subject.clone(),
            dns_names: csr.dns_names.clone(),
            ip_addresses: csr.ip_addresses.clone(),
            validity: None,
            not_after: None,
        }
    }

    /// Add a DNS name.
    pub fn with_dns(mut self, name: &str) -> Self {
        self.dns_names.push(name.to_string());
        self
    }
}

/// A request that passed profile policy. Its constructor is private to this crate.
#[derive(Debug, Clone)]
pub struct Approved {
    profile: String,
    public_key_der: Vec<u8>,
    subject: Vec<(String, String)>,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    key_usages: Vec<KeyUsage>,
    ext_key_usages: Vec<ExtKeyUsage>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Approved {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        profile: String,
        public_key_der: Vec<u8>,
        subject: Vec<(String, String)>,
        dns_names: Vec<String>,
        ip_addresses: Vec<IpAddr>,
        key_usages: Vec<KeyUsage>,
        ext_key_usages: Vec<ExtKeyUsage>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Approved {
        Approved {
            profile,
            public_key_der,
            subject,
            dns_names,
            ip_addresses,
            key_usages,
            ext_key_usages,
            not_before,
            not_after,
        }
    }

    /// The subject the certificate will carry.
    pub(crate) fn subject(&self) -> &[(String, String)] {
        &self.subject
    }

    /// The end of validity.
    pub(crate) fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The profile that approved the request.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The DNS names that will be in the certificate.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The IP addresses that will be in the certificate.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.ip_addresses
    }
}

/// A certificate just signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// DER encoding.
    pub der: Vec<u8>,
    /// Inventory fields.
    pub info: CertInfo,
}

impl IssuedCertificate {
    /// PEM encoding.
    pub fn pem(&self) -> String {
        crate::pem_encode_certs([self.der.as_slice()])
    }
}

/// A serial number for a new certificate: 16 bytes, the top bit cleared and the next set,
/// so the DER integer is positive and always 16 bytes long. The first 6 bytes count the
/// milliseconds since the Unix epoch, so a CA's serials sort roughly in issuance order and
/// the `(ca_id, serial)` index grows at its end rather than at a random place for each
/// certificate; the other 10 bytes come from the system's CSPRNG: 80 bits, more than the
/// 64 the CA/Browser Forum's Baseline Requirements (7.1) ask for, so serials are neither
/// sequential nor predictable.
pub fn random_serial() -> Result<[u8; 16], CaError> {
    use aws_lc_rs::rand::SecureRandom;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| CaError::Crypto("the system clock is before 1970".into()))?
        .as_millis();
    let mut b = [0u8; 16];
    // 46 bits of milliseconds last until the year 4199.
    b[..6].copy_from_slice(&(millis as u64 & ((1 << 46) - 1)).to_be_bytes()[2..]);
    b[0] |= 0x40;
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b[6..])
        .map_err(|_| CaError::Crypto("random generator failed".into()))?;
    Ok(b)
}

#[derive(Debug, Default, Clone)]
struct Constraints {
    permitted_dns: Vec<String>,
    excluded_dns: Vec<String>,
    permitted_ip: Vec<(Vec<u8>, Vec<u8>)>,
    excluded_ip: Vec<(Vec<u8>, Vec<u8>)>,
}

fn dns_within(name: &str, base: &str) -> bool {
    let base = base.trim_start_matches('.').to_ascii_lowercase();
    name == base || name.ends_with(&format!(".{base}"))
}

fn ip_within(ip: IpAddr, (addr, mask): &(Vec<u8>, Vec<u8>)) -> bool {
    let bytes = match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    bytes.len() == addr.len()
        && bytes
            .iter()
            .zip(addr)
            .zip(mask)
            .all(|((b, a), m)| b & m == a & m)
}

/// A CA whose key is loaded and ready to sign.
pub struct SigningCa {
    cert_der: Vec<u8>,
    info: CertInfo,
    key_algorithm: KeyAlgorithm,
    issuer: Issuer<'static, CaKey>,
    constraints: Constraints,
}

impl std::fmt::Debug for SigningCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCa")
            .field("subject", &self.info.subject)
            .finish_non_exhaustive()
    }
}

impl SigningCa {
    /// Load a CA from its DER certificate and its private key (DER or PEM). Fails if the
    /// certificate is not a CA or the key does not belong to it.
    pub fn load(cert_der: Vec<u8>, key: &[u8]) -> Result<SigningCa, CaError> {
        Self::load_with_key(cert_der, CaKey::local(crate::load_key(key)?))
    }

    /// Load a CA from its DER certificate and the key it signs with, wherever that key is
    /// held. Fails if the certificate is not a CA or the key does not belong to it.
    pub fn load_with_key(cert_der: Vec<u8>, key: CaKey) -> Result<SigningCa, CaError> {
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| CaError::BadCertificate(format!("not a DER X.509 certificate: {e}")))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(CaError::BadKey(
                "the private key does not match the certificate".into(),
            ));
        }
        let info = info_of(&cert, &cert_der);
        if !info.is_ca {
            return Err(CaError::BadCertificate(
                "the certificate is not a CA (basicConstraints cA is not set)".into(),
            ));
        }
        if let Ok(Some(ku)) = cert.key_usage()
            && !ku.value.key_cert_sign()
        {
            return Err(CaError::BadCertificate(
                "the CA certificate's key usage does not allow keyCertSign".into(),
            ));
        }
        let key_algorithm = KeyAlgorithm::of_parsed_spki(cert.public_key())?;
        let mut constraints = Constraints::default();
        if let Ok(Some(nc)) = cert.name_constraints() {
            let collect = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>,
                           dns: &mut Vec<String>,
                           ips: &mut Vec<(Vec<u8>, Vec<u8>)>| {
                for st in subtrees.iter().flatten() {
                    match &st.base {
                        GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                        GeneralName::IPAddress(b) if b.len() == 8 || b.len() == 32 => {
                            let half = b.len() / 2;
                            ips.push((b[..half].to_vec(), b[half..].to_vec()));
                        }
                        _ => {}
                    }
                }
            };
            collect(
                &nc.value.permitted_subtrees,
                &mut constraints.permitted_dns,
                &mut constraints.permitted_ip,
            );
            collect(
                &nc.value.excluded_subtrees,
                &mut constraints.excluded_dns,
                &mut constraints.excluded_ip,
            );
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key)?;
        Ok(SigningCa {
            cert_der,
            info,
            key_algorithm,
            issuer,
            constraints,
        })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate's inventory fields.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// The CA key's type.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key_algorithm
    }

    /// The CA's key, for signing OCSP responses inside this crate's callers.
    pub fn key(&self) -> &CaKey {
        self.issuer.key()
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, CaKey> {
        &self.issuer
    }

    /// Whether the CA's own name constraints allow a DNS name; the error says which.
    pub fn name_constraints_allow_dns(&self, name: &str) -> Result<(), String> {
        let c = &self.constraints;
        if let Some(base) = c.excluded_dns.iter().find(|b| dns_within(name, b)) {
            return Err(format!(
                "DNS name {name} is excluded by the CA's name constraint {base}"
            ));
        }
        if !c.permitted_dns.is_empty() && !c.permitted_dns.iter().any(|b| dns_within(name, b)) {
            return Err(format!(
                "DNS name {name} is outside the CA's permitted names ({})",
                c.permitted_dns.join(", ")
            ));
        }
        Ok(())
    }

    /// Whether the CA's own name constraints allow an IP address; the error says which.
    pub fn name_constraints_allow_ip(&self, ip: IpAddr) -> Result<(), String> {
        let c = &self.constraints;
        if c.excluded_ip.iter().any(|r| ip_within(ip, r)) {
            return Err(format!(
                "IP address {ip} is excluded by the CA's name constraints"
            ));
        }
        let same_family: Vec<_> = c
            .permitted_ip
            .iter()
            .filter(|(a, _)| a.len() == if ip.is_ipv4() { 4 } else { 16 })
            .collect();
        if !c.permitted_ip.is_empty() && !same_family.iter().any(|r| ip_within(ip, r)) {
            return Err(format!(
                "IP address {ip} is outside the CA's permitted IP ranges"
            ));
        }
        Ok(())
    }

    /// Sign an approved end-entity request. This is the only function that signs end-entity
    /// certificates.
    pub fn issue(&self, approved: &Approved, links: &Links) -> Result<IssuedCertificate, CaError> {
        let mut params = CertificateParams::default();
        params.not_before = approved.not_before;
        params.not_after = approved.not_after;
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        params.distinguished_name = distinguished_name(&approved.subject)?;
        params.subject_alt_names = approved
            .dns_names
            .iter()
            .map(|n| Ok(SanType::DnsName(n.as_str().try_into()?)))
            .chain(
                approved
                    .ip_addresses
                    .iter()
                    .map(|ip| Ok(SanType::IpAddress(*ip))),
            )
            .collect::<Result<_, rcgen::Error>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = approved.key_usages.iter().map(|k| k.to_rcgen()).collect();
        params.extended_key_usages = approved
            .ext_key_usages
            .iter()
            .map(|e| e.to_rcgen())
            .collect();
        params.use_authority_key_identifier_extension = true;
        links.apply(&mut params);
        let spki = SubjectPublicKeyInfo::from_der(&approved.public_key_der)
            .map_err(|e| CaError::BadKey(format!("unsupported public key: {e}")))?;
        self.sign(&params, &spki)
    }

    /// Sign a delegated OCSP responder certificate for this CA (EKU id-kp-OCSPSigning,
    /// id-pkix-ocsp-nocheck), valid for `validity`.
    pub fn issue_ocsp_responder(
        &self,
        responder_key: &KeyPair,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<IssuedCertificate, CaError> {
        let mut params = CertificateParams::default();
        params.not_before = now - Duration::minutes(1);
        params.not_after = (now + validity).min(self.info.not_after);
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!(
                "{} OCSP Responder",
                self.info.common_name.as_deref().unwrap_or("CA")
            ),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        params.use_authority_key_identifier_extension = true;
        // id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): NULL
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
                vec![0x05, 0x00],
            ));
        self.sign(&params, responder_key)
    }

    pub(crate) fn sign(
        &self,
        params: &CertificateParams,
        public_key: &impl PublicKeyData,
    ) -> Result<IssuedCertificate, CaError> {
        let cert = params.signed_by(public_key, &self.issuer)?;
        let der = cert.der().to_vec();
        let info = crate::inspect_certificate(&der)?;
        Ok(IssuedCertificate { der, info })
    }
}

/// Build a distinguished name from (short name, value) pairs.
pub(crate) fn distinguished_name(attrs: &[(String, String)]) -> Result<DistinguishedName, CaError> {
    let mut dn = DistinguishedName::new();
    for (k, v) in attrs {
        let ty = match k.as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            other => {
                return Err(CaError::InvalidCa(format!(
                    "unsupported subject attribute {other}"
                )));
            }
        };
        check_subject_value(k, v).map_err(CaError::InvalidCa)?;
        dn.push(ty, v.as_str());
    }
    Ok(dn)
}

/// Whether a subject attribute's value fits a certificate: 1 to 64 characters (RFC 5280's
/// upper bound for names). Profile policy applies the same rule to what it copies from a CSR.
pub(crate) fn check_subject_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 64 {
        return Err(format!(
            "subject attribute {key} must be 1 to 64 characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod serial_tests {
    use super::random_serial;

    #[test]
    fn serials_are_positive_ordered_by_time_and_random_after_it() {
        let a = random_serial().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = random_serial().unwrap();
        for s in [a, b] {
            assert_eq!(s[0] & 0xc0, 0x40, "positive, always 16 bytes: {s:02x?}");
        }
        assert!(a[..6] < b[..6], "time prefix grows: {a:02x?} {b:02x?}");
        assert!(a < b);
        // The random part: 1,000 serials share no 10-byte tail.
        let tails: std::collections::HashSet<[u8; 10]> = (0..1000)
            .map(|_| random_serial().unwrap()[6..].try_into().unwrap())
            .collect();
        assert_eq!(tails.len(), 1000);
    }
}
