//! PKCS#12 export for server-generated keys.

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};

use crate::CaError;

/// A PKCS#12 file (PBES2 / AES-256, HMAC-SHA256) with the key, the certificate and its chain.
pub fn export_pkcs12(
    key_pkcs8: &[u8],
    cert_der: &[u8],
    chain_der: &[Vec<u8>],
    password: &str,
    alias: &str,
) -> Result<Vec<u8>, CaError> {
    let key = PrivateKey::from_der(key_pkcs8).map_err(|e| CaError::BadKey(e.to_string()))?;
    let mut certs =
        vec![Certificate::from_der(cert_der).map_err(|e| CaError::BadCertificate(e.to_string()))?];
    for c in chain_der {
        certs.push(Certificate::from_der(c).map_err(|e| CaError::BadCertificate(e.to_string()))?);
    }
    let local_key_id =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der)
            .as_ref()
            .to_vec();
    let chain = PrivateKeyChain::new(local_key_id, key, certs);
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .write()
        .map_err(|e| CaError::Crypto(format!("PKCS#12 encoding failed: {e}")))
}
