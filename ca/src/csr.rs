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

#[cfg(test)]
mod tests {
    use rcgen::{KeyPair, SigningKey};
    use yasna::models::ObjectIdentifier;

    use super::*;
    use crate::{IssuanceRequest, Links, Profile, SigningCa};

    const EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
    const P256: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
    const ED25519: &[u64] = &[1, 3, 101, 112];
    const RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
    const ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
    const RSA_SHA256: &[u64] = &[1, 2, 840, 113549, 1, 1, 11];

    fn oid(arcs: &[u64]) -> ObjectIdentifier {
        ObjectIdentifier::from_slice(arcs)
    }

    /// A SubjectPublicKeyInfo with the given algorithm parameters (raw DER; `None`: absent).
    fn spki(alg: &[u64], params: Option<&[u8]>, key: &[u8]) -> Vec<u8> {
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(alg));
                    if let Some(p) = params {
                        w.next().write_der(p);
                    }
                });
                w.next().write_bitvec_bytes(key, key.len() * 8);
            })
        })
    }

    /// A CSR for www.example.com carrying `spki`, really signed by `key` (so that its proof
    /// of possession verifies whatever the SPKI's parameters say).
    fn signed_csr(key: &KeyPair, spki: &[u8], sig_alg: &[u64], null_params: bool) -> Vec<u8> {
        let cri = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_u8(0);
                w.next().write_sequence(|w| {
                    w.next().write_set(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(&[2, 5, 4, 3]));
                            w.next().write_utf8_string("www.example.com");
                        })
                    })
                });
                w.next().write_der(spki);
                w.next()
                    .write_tagged_implicit(yasna::Tag::context(0), |w| w.write_set(|_| {}));
            })
        });
        let sig = key.sign(&cri).unwrap();
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_der(&cri);
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(sig_alg));
                    if null_params {
                        w.next().write_null();
                    }
                });
                w.next().write_bitvec_bytes(&sig, sig.len() * 8);
            })
        })
    }

    /// Found by the csr_policy fuzz target: a CSR whose key's AlgorithmIdentifier has the
    /// right OID but the wrong parameters (a curve named by an OCTET STRING, NULL parameters
    /// on Ed25519, none on RSA) verified, passed profile policy as the key type the OID
    /// named, and then could not be signed. Such a request is refused when parsed.
    #[test]
    fn key_parameters_must_be_what_the_algorithm_requires() {
        let now = time::OffsetDateTime::now_utc();
        let root =
            crate::create_root(&crate::CaSpec::new("T", KeyAlgorithm::EcdsaP256), now).unwrap();
        let ca = SigningCa::load(root.cert_der, &root.key_pkcs8).unwrap();
        let mut profile = Profile::tls_server("t");
        profile.allowed_dns_names = vec!["*".parse().unwrap()];
        let issues = |der: &[u8]| {
            let csr = parse_csr(der).unwrap();
            let approved = profile
                .approve(
                    IssuanceRequest::from_csr(&csr).with_dns("www.example.com"),
                    &ca,
                    now,
                )
                .unwrap();
            ca.issue(&approved, &Links::none()).unwrap();
        };

        let p256 = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let curve = yasna::construct_der(|w| w.write_oid(&oid(P256)));
        let good = spki(EC_PUBLIC_KEY, Some(&curve), p256.public_key_raw());
        issues(&signed_csr(&p256, &good, ECDSA_SHA256, false));
        let mut octet_curve = curve.clone();
        octet_curve[0] = 0x04;
        let bad = spki(EC_PUBLIC_KEY, Some(&octet_curve), p256.public_key_raw());
        assert!(parse_csr(&signed_csr(&p256, &bad, ECDSA_SHA256, false)).is_err());

        let ed = KeyAlgorithm::Ed25519.generate().unwrap();
        let good = spki(ED25519, None, ed.public_key_raw());
        issues(&signed_csr(&ed, &good, ED25519, false));
        let bad = spki(ED25519, Some(&[5, 0]), ed.public_key_raw());
        assert!(parse_csr(&signed_csr(&ed, &bad, ED25519, false)).is_err());

        let rsa = KeyAlgorithm::Rsa(2048).generate().unwrap();
        let good = spki(RSA, Some(&[5, 0]), rsa.public_key_raw());
        issues(&signed_csr(&rsa, &good, RSA_SHA256, true));
        let bad = spki(RSA, None, rsa.public_key_raw());
        assert!(parse_csr(&signed_csr(&rsa, &bad, RSA_SHA256, true)).is_err());
    }
}
