//! Certificate signing requests: parsing and proof of possession.

use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::inspect::ip_from_bytes;
use crate::{CaError, KeyAlgorithm};

/// What certkeeper takes from a CSR. Nothing else in it (requested key usages, basic
/// constraints, other extensions) is ever copied into a certificate: profiles decide those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCsr {
    /// The DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// The key's type.
    pub key_algorithm: KeyAlgorithm,
    /// Subject attributes as (short name, value), in order: `CN`, `O`, `OU`, `C`, `ST`, `L`, ...
    pub subject: Vec<(String, String)>,
    /// DNS names requested in the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses requested in the subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
    /// The challengePassword attribute, if present.
    pub challenge_password: Option<String>,
}

impl ParsedCsr {
    /// The subject common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.subject
            .iter()
            .find(|(k, _)| k == "CN")
            .map(|(_, v)| v.as_str())
    }
}

/// Parse a PEM or DER PKCS#10 request and verify its self-signature (proof of possession).
pub fn parse_csr(input: &[u8]) -> Result<ParsedCsr, CaError> {
    let trimmed = input.trim_ascii_start();
    let der = if trimmed.starts_with(b"-----BEGIN") {
        let p =
            ::pem::parse(trimmed).map_err(|e| CaError::BadCsr(format!("malformed PEM: {e}")))?;
        if p.tag() != "CERTIFICATE REQUEST" && p.tag() != "NEW CERTIFICATE REQUEST" {
            return Err(CaError::BadCsr(format!(
                "PEM block is {:?}, expected \"CERTIFICATE REQUEST\"",
                p.tag()
            )));
        }
        p.into_contents()
    } else {
        input.to_vec()
    };
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| CaError::BadCsr(format!("not a PKCS#10 certification request: {e}")))?;
    if !rest.is_empty() {
        return Err(CaError::BadCsr("trailing data after the request".into()));
    }
    let proof = csr.verify_signature().map_err(|_| {
        CaError::BadCsr("the request's signature does not verify with its public key".into())
    });
    // Fuzzing builds (`cargo fuzz` sets `--cfg fuzzing`) check the signature but go on when
    // it fails, so that the fuzzer reaches the names and profile policy behind it: it cannot
    // sign its own mutations. Every other build refuses here.
    if cfg!(not(fuzzing)) {
        proof?;
    }
    let info = &csr.certification_request_info;
    let key_algorithm = KeyAlgorithm::of_parsed_spki(&info.subject_pki)
        .map_err(|e| CaError::BadCsr(e.to_string()))?;
    let mut subject = Vec::new();
    for rdn in info.subject.iter() {
        for attr in rdn.iter() {
            let oid = attr.attr_type();
            let key = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string());
            let value = attr
                .as_str()
                .map_err(|_| CaError::BadCsr(format!("subject attribute {key} is not a string")))?;
            subject.push((key, value.to_string()));
        }
    }
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for gn in &san.general_names {
                    match gn {
                        GeneralName::DNSName(n) => dns_names.push(n.to_string()),
                        GeneralName::IPAddress(b) => {
                            ip_addresses.push(ip_from_bytes(b).ok_or_else(|| {
                                CaError::BadCsr("malformed IP address in subjectAltName".into())
                            })?)
                        }
                        other => {
                            return Err(CaError::BadCsr(format!(
                                "unsupported subjectAltName entry {other}; only DNS names and IP addresses are accepted"
                            )));
                        }
                    }
                }
            }
        }
    }
    let mut challenge_password = None;
    for attr in csr.certification_request_info.iter_attributes() {
        if let x509_parser::cri_attributes::ParsedCriAttribute::ChallengePassword(p) =
            attr.parsed_attribute()
        {
            challenge_password = Some(p.0.clone());
        }
    }
    Ok(ParsedCsr {
        public_key_der: info.subject_pki.raw.to_vec(),
        key_algorithm,
        subject,
        dns_names,
        ip_addresses,
        challenge_password,
    })
}
