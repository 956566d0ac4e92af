//! TLS listeners for the discovery benchmark: one listener per loopback address, each with
//! its own self-signed certificate, so that two scanners' findings can be compared address
//! by address. Binds only the addresses it is given (loopback only).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use ipnetwork::IpNetwork;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Debug, Parser)]
#[command(about = "Serve TLS on many loopback addresses, one certificate each")]
struct Args {
    /// Loopback network to take addresses from (for example 127.20.0.0/16).
    #[arg(long)]
    net: IpNetwork,
    /// Bind every n-th address of the network, starting at its second address.
    #[arg(long, default_value_t = 1)]
    every: u32,
    /// How many listeners at most.
    #[arg(long)]
    count: u32,
    /// Port.
    #[arg(long)]
    port: u16,
    /// Write the bound addresses here, one per line, once all are listening.
    #[arg(long)]
    ready_file: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let IpNetwork::V4(net) = args.net else {
        bail!("an IPv4 loopback network is expected");
    };
    if !net.network().is_loopback() {
        bail!("only loopback addresses (127.0.0.0/8) are served");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut addrs = Vec::new();
    let first = u32::from(net.network());
    let size = 1u64 << (32 - u32::from(net.prefix()));
    let mut i = 1u64;
    while i < size && addrs.len() < args.count as usize {
        addrs.push(IpAddr::V4((first + i as u32).into()));
        i += u64::from(args.every.max(1));
    }
    for ip in &addrs {
        let name = format!("h-{}.bench.test", ip.to_string().replace('.', "-"));
        let mut p = rcgen::CertificateParams::new(vec![name])?;
        p.distinguished_name
            .push(rcgen::DnType::CommonName, ip.to_string());
        let key = rcgen::KeyPair::generate()?;
        let cert = p.self_signed(&key)?;
        let cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let addr = SocketAddr::new(*ip, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(s).await {
                        // Read until the client goes away (nmap reads after the handshake).
                        let mut buf = [0u8; 1024];
                        use tokio::io::AsyncReadExt;
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            tls.read(&mut buf),
                        )
                        .await;
                    }
                });
            }
        });
    }
    let list: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&args.ready_file, list)?;
    eprintln!(
        "tls-listeners: {} listeners on port {}",
        addrs.len(),
        args.port
    );
    std::future::pending::<()>().await;
    Ok(())
}
