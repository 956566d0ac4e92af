//! One probe: TCP connect, optional STARTTLS, TLS handshake; record the chain, version and
//! cipher suite. Every step has its own timeout, reads are capped, the chain is bounded.
//!
//! rustls speaks TLS 1.2 and 1.3 only: servers that offer nothing newer than TLS 1.0 or 1.1
//! are reported as handshake failures, not inventoried.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::error::ProbeError;
use crate::targets::Endpoint;

/// Timeouts and bounds for one probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Time allowed for the TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed for the STARTTLS dialogue.
    pub starttls_timeout: Duration,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Certificates kept from a presented chain; more are dropped and reported.
    pub max_chain: usize,
    /// Bytes read from a server before the probe gives up on it.
    pub max_read_bytes: usize,
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig {
            connect_timeout: Duration::from_secs(3),
            starttls_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            max_chain: 10,
            max_read_bytes: 256 * 1024,
        }
    }
}

/// What a completed handshake showed.
#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    /// Negotiated protocol version (`TLSv1_3`, `TLSv1_2`).
    pub tls_version: String,
    /// Negotiated cipher suite.
    pub cipher_suite: String,
    /// The presented chain, DER, leaf first, at most `max_chain` certificates.
    #[serde(skip)]
    pub chain: Vec<Vec<u8>>,
    /// Whether the server presented more than `max_chain` certificates.
    pub chain_truncated: bool,
}

/// A verifier that accepts whatever the server presents: the scanner records certificates,
/// it does not judge them during the handshake (analysis does that afterwards).
#[derive(Debug)]
struct RecordingVerifier {
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// The client configuration probes share: TLS 1.2 and 1.3, the aws-lc-rs provider, the
/// recording verifier.
///
/// Probes offer the classical key-exchange groups only (X25519, P-256, P-384), not the
/// post-quantum hybrid X25519MLKEM768 the provider would put first: the group does not
/// change which certificate a server presents, servers that do ECDHE support at least one
/// of these in practice, and the hybrid's ML-KEM work (key generation here, encapsulation on the scanned
/// server) was a sixth of a dense scan's CPU.
pub fn client_config() -> Arc<ClientConfig> {
    use rustls::crypto::aws_lc_rs::kx_group;
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        ..rustls::crypto::aws_lc_rs::default_provider()
    });
    let mut schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    // Also offer the legacy schemes so servers with SHA-1 keys still complete.
    for s in [
        SignatureScheme::RSA_PKCS1_SHA1,
        SignatureScheme::ECDSA_SHA1_Legacy,
    ] {
        if !schemes.contains(&s) {
            schemes.push(s);
        }
    }
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(RecordingVerifier { schemes }))
                .with_no_client_auth()
        });
    match config {
        Ok(c) => Arc::new(c),
        // The aws-lc-rs provider always supports TLS 1.2 and 1.3.
        Err(e) => panic!("the default provider supports TLS 1.2 and 1.3: {e}"),
    }
}

/// A stream that fails once more than a set number of bytes has been read from it.
struct Capped {
    inner: TcpStream,
    left: usize,
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(io::Error::other("server sent too much data")));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.left = self.left.saturating_sub(n);
        res
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Probe one endpoint.
pub async fn probe(
    endpoint: &Endpoint,
    config: &ProbeConfig,
    tls: Arc<ClientConfig>,
) -> Result<Handshake, ProbeError> {
    let server_name = match &endpoint.sni {
        Some(name) => ServerName::try_from(name.clone())
            .map_err(|_| ProbeError::Tls(format!("{name:?} is not a valid server name")))?,
        // An IP address as the server name: rustls then sends no SNI extension.
        None => ServerName::IpAddress(endpoint.addr.ip().into()),
    };
    let tcp = timeout(config.connect_timeout, TcpStream::connect(endpoint.addr))
        .await
        .map_err(|_| ProbeError::Timeout("connect"))??;
    let _ = tcp.set_nodelay(true);
    let mut stream = Capped {
        inner: tcp,
        left: config.max_read_bytes,
    };
    if let Some(proto) = endpoint.starttls {
        timeout(config.starttls_timeout, proto.upgrade(&mut stream))
            .await
            .map_err(|_| ProbeError::Timeout("starttls"))??;
    }
    let connector = tokio_rustls::TlsConnector::from(tls);
    let tls_stream = timeout(
        config.handshake_timeout,
        connector.connect(server_name, stream),
    )
    .await
    .map_err(|_| ProbeError::Timeout("handshake"))?
    .map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => ProbeError::Tls(e.to_string()),
        _ => ProbeError::from(e),
    })?;
    let conn = tls_stream.get_ref().1;
    let presented = conn.peer_certificates().unwrap_or_default();
    let chain: Vec<Vec<u8>> = presented
        .iter()
        .take(config.max_chain)
        .map(|c| c.as_ref().to_vec())
        .collect();
    Ok(Handshake {
        tls_version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        chain_truncated: presented.len() > config.max_chain,
        chain,
    })
}
