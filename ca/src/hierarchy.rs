//! CA hierarchy: roots, intermediates at any depth, externally signed and imported CAs.

use ::time::{Duration, OffsetDateTime};
use ipnetwork::IpNetwork;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, GeneralSubtree, IsCa, KeyPair,
    KeyUsagePurpose, NameConstraints, PublicKeyData, SerialNumber, SigningKey,
};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

use crate::issue::{distinguished_name, random_serial};
use crate::{
    CaError, CertInfo, IssuedCertificate, KeyAlgorithm, Links, SigningCa, inspect_certificate,
    parse_pem_or_der_certs,
};

/// RFC 5280 name constraints written into the CA certificate (§4.2.1.10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = NameConstraints))]
#[serde(deny_unknown_fields)]
pub struct NameConstraintSpec {
    /// DNS subtrees the CA may issue for (`example.com` covers it and every name below).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = json!([])))]
    pub permitted_dns: Vec<String>,
    /// DNS subtrees the CA must not issue for.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = json!([])))]
    pub excluded_dns: Vec<String>,
    /// IP ranges the CA may issue for, as CIDR (`10.0.0.0/8`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>, default = json!([])))]
    pub permitted_ips: Vec<IpNetwork>,
    /// IP ranges the CA must not issue for, as CIDR.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>, default = json!([])))]
    pub excluded_ips: Vec<IpNetwork>,
}

fn default_ca_validity() -> u32 {
    3650
}

/// What a new CA should look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSpec {
    /// Subject common name.
    pub common_name: String,
    /// Subject organisation.
    #[serde(default)]
    pub organization: Option<String>,
    /// Subject country (two letters).
    #[serde(default)]
    pub country: Option<String>,
    /// Key type of the CA key.
    #[serde(default = "default_key")]
    pub key_algorithm: KeyAlgorithm,
    /// Lifetime in days (clamped to the parent's end of validity for intermediates).
    #[serde(default = "default_ca_validity")]
    pub validity_days: u32,
    /// pathLenConstraint: how many CA levels may follow below this one (none = unlimited,
    /// or one less than the parent's limit).
    #[serde(default)]
    pub path_len: Option<u8>,
    /// Name constraints.
    #[serde(default)]
    pub name_constraints: Option<NameConstraintSpec>,
}

fn default_key() -> KeyAlgorithm {
    KeyAlgorithm::EcdsaP256
}

impl CaSpec {
    /// A spec with the defaults: ten years, no path length or name constraints.
    pub fn new(common_name: &str, key_algorithm: KeyAlgorithm) -> CaSpec {
        CaSpec {
            common_name: common_name.to_string(),
            organization: None,
            country: None,
            key_algorithm,
            validity_days: default_ca_validity(),
            path_len: None,
            name_constraints: None,
        }
    }

    pub(crate) fn params(&self, now: OffsetDateTime) -> Result<CertificateParams, CaError> {
        if self.validity_days == 0 || self.validity_days > 36500 {
            return Err(CaError::InvalidCa(
                "validity_days must be between 1 and 36500".into(),
            ));
        }
        if let Some(c) = &self.country
            && (c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(CaError::InvalidCa(
                "country must be two upper-case letters".into(),
            ));
        }
        let mut attrs = vec![("CN".to_string(), self.common_name.trim().to_string())];
        if let Some(o) = &self.organization {
            attrs.push(("O".into(), o.clone()));
        }
        if let Some(c) = &self.country {
            attrs.push(("C".into(), c.clone()));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&attrs)?;
        params.not_before = now - Duration::minutes(1);
        params.not_after = now + Duration::days(self.validity_days.into());
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        params.is_ca = IsCa::Ca(match self.path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        if let Some(nc) = &self.name_constraints {
            let dns = |v: &Vec<String>| -> Result<Vec<GeneralSubtree>, CaError> {
                v.iter()
                    .map(|d| {
                        let n = crate::names::normalize_dns_name(d.trim_start_matches('.'))
                            .map_err(|e| CaError::InvalidCa(format!("name constraint: {e}")))?;
                        Ok(GeneralSubtree::DnsName(n))
                    })
                    .collect()
            };
            let ips = |v: &Vec<IpNetwork>| -> Vec<GeneralSubtree> {
                v.iter()
                    .map(|n| {
                        GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                            n.network(),
                            n.prefix(),
                        ))
                    })
                    .collect()
            };
            let mut permitted = dns(&nc.permitted_dns)?;
            permitted.extend(ips(&nc.permitted_ips));
            let mut excluded = dns(&nc.excluded_dns)?;
            excluded.extend(ips(&nc.excluded_ips));
            params.name_constraints = Some(NameConstraints {
                permitted_subtrees: permitted,
                excluded_subtrees: excluded,
            });
        }
        Ok(params)
    }
}

/// A freshly made or imported CA: its certificate and its key (PKCS#8 DER, to be sealed).
pub struct NewCa {
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
    /// Certificates above it, nearest first, when they came with an import.
    pub chain_der: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER. Seal it before it leaves memory.
    pub key_pkcs8: Vec<u8>,
    /// Inventory fields of the certificate.
    pub info: CertInfo,
}

impl std::fmt::Debug for NewCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCa")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Create a self-signed root CA.
pub fn create_root(spec: &CaSpec, now: OffsetDateTime) -> Result<NewCa, CaError> {
    let key = spec.key_algorithm.generate()?;
    let cert = create_root_for_key(spec, &key, now)?;
    Ok(NewCa {
        info: cert.info,
        cert_der: cert.der,
        chain_der: vec![],
        key_pkcs8: key.serialize_der(),
    })
}

/// The self-signed certificate of a root CA whose key is held elsewhere (a token): the key
/// signs its own certificate and stays where it is. The key must be of `spec`'s type.
pub fn create_root_for_key(
    spec: &CaSpec,
    key: &impl SigningKey,
    now: OffsetDateTime,
) -> Result<IssuedCertificate, CaError> {
    check_key_type(spec, key)?;
    let params = spec.params(now)?;
    let cert = params.self_signed(key)?;
    let der = cert.der().to_vec();
    Ok(IssuedCertificate {
        info: inspect_certificate(&der)?,
        der,
    })
}

/// Refuse a key that is not of the type the spec names.
fn check_key_type(spec: &CaSpec, key: &impl PublicKeyData) -> Result<(), CaError> {
    let actual = KeyAlgorithm::of_spki(&key.subject_public_key_info())?;
    if actual != spec.key_algorithm {
        return Err(CaError::InvalidCa(format!(
            "the CA key is {actual}, not the {} the CA asks for",
            spec.key_algorithm
        )));
    }
    Ok(())
}

/// Create an intermediate CA signed by `parent`. The parent's path length limit is enforced,
/// and the validity is clamped to the parent's.
pub fn create_intermediate(
    spec: &CaSpec,
    parent: &SigningCa,
    links: &Links,
    now: OffsetDateTime,
) -> Result<NewCa, CaError> {
    let key = spec.key_algorithm.generate()?;
    let issued = create_intermediate_for_key(spec, parent, &key, links, now)?;
    Ok(NewCa {
        cert_der: issued.der,
        chain_der: vec![],
        key_pkcs8: key.serialize_der(),
        info: issued.info,
    })
}

/// The certificate of an intermediate CA signed by `parent` for a key held elsewhere (a
/// token), with the same rules as [`create_intermediate`]. The key must be of `spec`'s type.
pub fn create_intermediate_for_key(
    spec: &CaSpec,
    parent: &SigningCa,
    public_key: &impl PublicKeyData,
    links: &Links,
    now: OffsetDateTime,
) -> Result<IssuedCertificate, CaError> {
    check_key_type(spec, public_key)?;
    let mut spec = spec.clone();
    match parent.info().path_len {
        Some(0) => {
            return Err(CaError::InvalidCa(format!(
                "the parent CA {:?} has path length 0 and cannot sign intermediate CAs",
                parent.info().subject
            )));
        }
        Some(n) => match spec.path_len {
            Some(p) if u32::from(p) >= n => {
                return Err(CaError::InvalidCa(format!(
                    "path_len {p} is not allowed below a parent whose path length is {n} (at most {})",
                    n - 1
                )));
            }
            Some(_) => {}
            None => spec.path_len = Some((n - 1).min(255) as u8),
        },
        None => {}
    }
    if parent.info().not_after <= now {
        return Err(CaError::InvalidCa("the parent CA has expired".into()));
    }
    let mut params = spec.params(now)?;
    params.not_after = params.not_after.min(parent.info().not_after);
    params.use_authority_key_identifier_extension = true;
    links.apply(&mut params);
    parent.sign(&params, public_key)
}

/// An intermediate CA whose certificate will be signed elsewhere: a key and a CSR.
pub struct PendingCa {
    /// The PKCS#10 request, DER.
    pub csr_der: Vec<u8>,
    /// The private key, PKCS#8 DER. Seal it before it leaves memory.
    pub key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for PendingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCa").finish_non_exhaustive()
    }
}

impl PendingCa {
    /// Generate the key and the CSR for an externally signed CA.
    pub fn new(spec: &CaSpec, now: OffsetDateTime) -> Result<PendingCa, CaError> {
        let key = spec.key_algorithm.generate()?;
        // A CSR carries the subject, basicConstraints and key usage; the external signer
        // decides serial, validity and name constraints.
        let mut params = spec.params(now)?;
        params.serial_number = None;
        params.name_constraints = None;
        let csr = params.serialize_request(&key)?;
        Ok(PendingCa {
            csr_der: csr.der().to_vec(),
            key_pkcs8: key.serialize_der(),
        })
    }

    /// The CSR as PEM.
    pub fn csr_pem(&self) -> String {
        ::pem::encode(&::pem::Pem::new(
            "CERTIFICATE REQUEST",
            self.csr_der.clone(),
        ))
        .replace("\r\n", "\n")
    }
}

/// Check the certificate (PEM chain or DER) signed for a pending CA: it must be a CA
/// certificate for the pending key. Returns the CA certificate and the rest of the chain.
pub fn install_signed(key_pkcs8: &[u8], cert_input: &[u8]) -> Result<NewCa, CaError> {
    import_ca(cert_input, key_pkcs8)
}

/// Import an existing CA: its certificate (PEM, optionally followed by its chain, or DER) and
/// its private key (PEM or DER; PKCS#8, PKCS#1 or SEC1).
pub fn import_ca(cert_input: &[u8], key_input: &[u8]) -> Result<NewCa, CaError> {
    let mut certs = parse_pem_or_der_certs(cert_input)?;
    let key: KeyPair = crate::load_key(key_input)?;
    let cert_der = certs.remove(0);
    let (_, cert) = X509Certificate::from_der(&cert_der)
        .map_err(|e| CaError::BadCertificate(format!("not a DER X.509 certificate: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(CaError::BadKey(
            "the private key does not match the certificate".into(),
        ));
    }
    // Check it is a usable CA by loading it for signing.
    SigningCa::load(cert_der.clone(), &key.serialize_der())?;
    let info = inspect_certificate(&cert_der)?;
    Ok(NewCa {
        cert_der,
        chain_der: certs,
        key_pkcs8: key.serialize_der(),
        info,
    })
}
