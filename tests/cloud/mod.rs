//! Cloud peers for the sync tests: a local HTTPS server that follows Microsoft's documented
//! REST contract for the Entra ID token endpoint and Key Vault certificate import, and
//! `moto` in server mode for AWS Certificate Manager.

#![allow(dead_code, unreachable_pub)]

pub mod azure;
pub mod moto;

/// A private CA and an HTTPS server certificate for 127.0.0.1 signed by it:
/// (CA PEM, server chain DER, server PKCS#8 DER).
pub fn tls_identity() -> (String, Vec<Vec<u8>>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test cloud CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        vec![leaf.der().to_vec(), ca_cert.der().to_vec()],
        key.serialize_der(),
    )
}
