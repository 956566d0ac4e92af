//! Cloud peers for the sync tests: local HTTPS servers that follow Microsoft's documented
//! REST contract for the Entra ID token endpoint and Key Vault certificates, and
//! Cloudflare's documented API for custom certificates; `moto` in server mode for AWS
//! (Certificate Manager, Secrets Manager, Elastic Load Balancing).

#![allow(dead_code, unreachable_pub)]

pub mod azure;
pub mod cloudflare;
pub mod moto;

use std::sync::Arc;

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

/// A local HTTPS server (see [`serve_tls`]); its accept loop stops on drop.
pub struct Served {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA that signed the server's certificate, PEM.
    pub ca_pem: String,
    /// The accept loop.
    pub task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve the router `app(url)` builds over HTTPS (HTTP/1.1 and h2) on a free port, with a
/// certificate from a private CA.
pub async fn serve_tls(app: impl FnOnce(&str) -> axum::Router) -> Served {
    let (ca_pem, chain, key) = tls_identity();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let app = app(&url);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certs = chain
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            });
        }
    });
    Served { url, ca_pem, task }
}
