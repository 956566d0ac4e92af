//! What the TLS layer tells EST: the client's certificate chain (mutual TLS, requested but
//! not required) and the channel-binding value of the connection.
//!
//! The handshake only proves that the client holds the key of the certificate it sent;
//! whether that certificate is trusted is decided per request by [`super::auth`], against a
//! trust set (our CAs and imported bootstrap CAs) that can change while the server runs.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The RFC 9266 exporter label for `tls-exporter` channel binding.
pub const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// Per-connection TLS facts, put into every request's extensions by the HTTPS listener.
#[derive(Debug, Clone, Default)]
pub struct TlsPeer {
    /// The client's certificate chain (leaf first), DER; empty when it sent none.
    pub chain: Arc<Vec<Vec<u8>>>,
    /// The connection's `tls-exporter` channel-binding value (RFC 9266), 32 bytes.
    pub channel_binding: Option<[u8; 32]>,
}

impl TlsPeer {
    /// Read the facts from an established server connection.
    pub fn of(conn: &rustls::ServerConnection) -> TlsPeer {
        let chain = conn
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
            .unwrap_or_default();
        let channel_binding = conn
            .export_keying_material([0u8; 32], CHANNEL_BINDING_LABEL, None)
            .ok();
        TlsPeer {
            chain: Arc::new(chain),
            channel_binding,
        }
    }
}

/// Asks every client for a certificate, accepts connections without one, and accepts any
/// certificate whose key signed the handshake; trust is checked later, per request.
#[derive(Debug)]
pub struct RequestClientCert {
    provider: Arc<CryptoProvider>,
}

impl RequestClientCert {
    /// A verifier using the aws-lc-rs provider's signature algorithms.
    pub fn new() -> RequestClientCert {
        RequestClientCert {
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        }
    }
}

impl Default for RequestClientCert {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
