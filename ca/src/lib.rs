//! # certkeeper-ca
//!
//! The certificate-authority core of certkeeper, with no HTTP and no SQL:
//!
//! - [`KeyAlgorithm`]: the key types a CA or a subscriber may use, key generation and loading;
//! - [`MasterKey`]: AES-256-GCM sealing of CA private keys at rest;
//! - [`CaKey`] and [`RemoteKey`]: the key a CA signs with, in memory or held by a device
//!   (a PKCS#11 token) that signs on request;
//! - [`CaSpec`], [`create_root`], [`create_intermediate`], [`import_ca`], [`PendingCa`]: the hierarchy;
//! - [`Profile`]: policy (key usages, validity, key types, names) that every request passes through;
//! - [`SigningCa::issue`]: the one function that signs end-entity certificates, and only an
//!   [`Approved`] request, which nothing but [`Profile::approve`] can make;
//! - [`build_crl`] and the [`ocsp`] module: revocation status;
//! - [`successor_spec`] and [`cross_sign`]: CA rollover.
//!
//! ```
//! use certkeeper_ca::*;
//! let now = time::OffsetDateTime::now_utc();
//! let root = create_root(&CaSpec::new("Example Root", KeyAlgorithm::EcdsaP256), now).unwrap();
//! let signer = SigningCa::load(root.cert_der.clone(), &root.key_pkcs8).unwrap();
//! let mut profile = Profile::tls_server("web");
//! profile.allowed_dns_names = vec![".example.com".parse().unwrap()];
//! let leaf_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
//! use rcgen::PublicKeyData;
//! let req = IssuanceRequest::for_key(&leaf_key.subject_public_key_info()).with_dns("www.example.com");
//! let approved = profile.approve(req, &signer, now).unwrap();
//! let cert = signer.issue(&approved, &Links::none()).unwrap();
//! assert_eq!(cert.info.dns_names, vec!["www.example.com".to_string()]);
//! ```

mod clock;
mod crl;
mod csr;
mod der;
mod error;
pub mod est_wire;
mod extensions;
mod hierarchy;
mod inspect;
mod issue;
mod keys;
mod names;
pub mod ocsp;
mod pkcs12;
mod profile;
mod rollover;
#[cfg(feature = "openapi")]
pub mod schema;
mod seal;
mod signer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use crl::{RevokedEntry, build_crl, reason_from_code};
pub use csr::{ParsedCsr, parse_csr};
pub use error::CaError;
pub use extensions::Links;
pub use hierarchy::{
    CaSpec, NameConstraintSpec, NewCa, PendingCa, create_intermediate, create_intermediate_for_key,
    create_root, create_root_for_key, import_ca, install_signed,
};
pub use inspect::{
    CertInfo, inspect_certificate, is_self_issued, parse_pem_or_der_certs, pem_encode_certs,
};
pub use issue::{Approved, IssuanceRequest, IssuedCertificate, SigningCa, random_serial};
pub use keys::{KeyAlgorithm, generate_key, load_key};
pub use names::{DnsRule, normalize_dns_name};
pub use pkcs12::export_pkcs12;
pub use profile::{ExtKeyUsage, KeyUsage, PolicyViolation, Profile, UpstreamApproved};
pub use rollover::{SuccessorOptions, cross_sign, next_generation_name, successor_spec};
pub use seal::MasterKey;
pub use signer::{CaKey, RemoteKey, ecdsa_signature_der};

/// RFC 5280 CRL reason codes.
pub use rcgen::RevocationReason;

/// Re-exported so callers can hold the key type the CA signs with.
pub use rcgen::{KeyPair, PublicKeyData, SigningKey};
