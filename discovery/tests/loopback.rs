//! Scans of real TLS servers on loopback addresses: chains from a CA (treated once as ours,
//! once as unrelated), expired, self-signed, SNI-only, STARTTLS SMTP, IMAP, POP3 and LDAP, an incomplete chain,
//! refused ports, a silent listener and a garbage-spewing one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use certkeeper_discovery::{
    AnalysisContext, Finding, PortSet, ProbeConfig, ProbeError, ProbeReport, ScanOptions, ScanPlan,
    SniMode, StartTls, Target, analyze_chain, scan,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const DAY: i64 = 86_400;

struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str, parent: Option<&Ca>) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = match parent {
        Some(parent) => p.signed_by(&key, &parent.issuer).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    Ca {
        der: cert.der().to_vec(),
        issuer: Issuer::new(p, key),
    }
}

/// A leaf for `name`, valid until `now + days` (negative: already expired), signed by
/// `by` (or self-signed).
fn leaf(name: &str, days: i64, by: Option<&Ca>) -> (Vec<u8>, PrivateKeyDer<'static>) {
    let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(400);
    p.not_after = now + time::Duration::days(days);
    let key = KeyPair::generate().unwrap();
    let cert = match by {
        Some(ca) => p.signed_by(&key, &ca.issuer).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    (
        cert.der().to_vec(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Answers only clients that ask for `name`.
#[derive(Debug)]
struct SniOnly {
    name: String,
    key: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniOnly {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        (hello.server_name() == Some(self.name.as_str())).then(|| self.key.clone())
    }
}

fn server_config(
    chain: Vec<Vec<u8>>,
    key: PrivateKeyDer<'static>,
    sni_only: Option<&str>,
) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(Into::into).collect();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth();
    Arc::new(match sni_only {
        None => builder.with_single_cert(chain, key).unwrap(),
        Some(name) => {
            let key = CertifiedKey::from_der(chain, key, &provider()).unwrap();
            builder.with_cert_resolver(Arc::new(SniOnly {
                name: name.into(),
                key: Arc::new(key),
            }))
        }
    })
}

enum Behaviour {
    Tls(Arc<rustls::ServerConfig>),
    SmtpStartTls(Arc<rustls::ServerConfig>),
    /// A line protocol (IMAP, POP3): `greeting`, then `reply` to the line `command`, then TLS.
    LineStartTls {
        greeting: &'static [u8],
        command: &'static str,
        reply: &'static [u8],
        cfg: Arc<rustls::ServerConfig>,
    },
    /// LDAP: an ExtendedRequest for StartTLS, answered with success, then TLS.
    LdapStartTls(Arc<rustls::ServerConfig>),
    Silent,
    Garbage,
    /// An SMTP greeting that never ends (`lines`) or a line that never ends.
    SmtpFlood {
        lines: bool,
    },
}

async fn listen(addr: SocketAddr, behaviour: Behaviour) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let behaviour = Arc::new(behaviour);
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let behaviour = behaviour.clone();
            tokio::spawn(async move { serve(sock, &behaviour).await });
        }
    });
}

async fn serve(mut sock: TcpStream, behaviour: &Behaviour) {
    match behaviour {
        Behaviour::Tls(cfg) => {
            let _ = tokio_rustls::TlsAcceptor::from(cfg.clone())
                .accept(sock)
                .await;
        }
        Behaviour::SmtpStartTls(cfg) => {
            let mut r = BufReader::new(sock);
            let _ = r.get_mut().write_all(b"220 mail.test ESMTP\r\n").await;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let cmd = line.trim().to_ascii_uppercase();
                let reply: &[u8] = if cmd.starts_with("EHLO") {
                    b"250-mail.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
                } else if cmd == "STARTTLS" {
                    b"220 go ahead\r\n"
                } else {
                    b"502 no\r\n"
                };
                let _ = r.get_mut().write_all(reply).await;
                if cmd == "STARTTLS" {
                    break;
                }
            }
            let _ = tokio_rustls::TlsAcceptor::from(cfg.clone())
                .accept(r.into_inner())
                .await;
        }
        Behaviour::LineStartTls {
            greeting,
            command,
            reply,
            cfg,
        } => {
            let mut r = BufReader::new(sock);
            let _ = r.get_mut().write_all(greeting).await;
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 || line.trim() != *command {
                return;
            }
            let _ = r.get_mut().write_all(reply).await;
            let _ = tokio_rustls::TlsAcceptor::from(cfg.clone())
                .accept(r.into_inner())
                .await;
        }
        Behaviour::LdapStartTls(cfg) => {
            let mut head = [0u8; 2];
            if sock.read_exact(&mut head).await.is_err() || head[0] != 0x30 {
                return;
            }
            let mut body = vec![0u8; usize::from(head[1])];
            if sock.read_exact(&mut body).await.is_err()
                || !body.ends_with(b"1.3.6.1.4.1.1466.20037")
            {
                return;
            }
            // messageID 1, ExtendedResponse { resultCode success, matchedDN "", diagnostic "" }
            let ok = [
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            ];
            if sock.write_all(&ok).await.is_err() {
                return;
            }
            let _ = tokio_rustls::TlsAcceptor::from(cfg.clone())
                .accept(sock)
                .await;
        }
        Behaviour::Silent => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(sock);
        }
        Behaviour::SmtpFlood { lines } => {
            let chunk: &[u8] = if *lines {
                b"220-hello hello\r\n"
            } else {
                b"220 hello "
            };
            for _ in 0..100_000 {
                if sock.write_all(chunk).await.is_err() {
                    return;
                }
            }
        }
        Behaviour::Garbage => {
            let junk = vec![b'A'; 64 * 1024];
            for _ in 0..64 {
                if sock.write_all(&junk).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A 127.a.b.0/24 block unlikely to be used by another test process at the same time.
fn block() -> [u8; 2] {
    let pid = std::process::id();
    [(100 + pid % 150) as u8, (pid / 150 % 250) as u8]
}

fn ip(block: [u8; 2], last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, block[0], block[1], last))
}

fn free_port(at: IpAddr) -> u16 {
    std::net::TcpListener::bind((at, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn collect(plan: ScanPlan) -> HashMap<(SocketAddr, Option<String>), ProbeReport> {
    let options = ScanOptions {
        concurrency: 8,
        per_host: 2,
        packets_per_second: Some(200),
        probe: ProbeConfig {
            connect_timeout: Duration::from_secs(2),
            starttls_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_millis(1500),
            ..ProbeConfig::default()
        },
    };
    let total = plan.len();
    let (mut rx, progress) = scan(Arc::new(plan), options).unwrap();
    let mut out = HashMap::new();
    while let Some(r) = rx.recv().await {
        out.insert((r.endpoint.addr, r.endpoint.sni.clone()), r);
    }
    assert_eq!(out.len() as u64, total);
    assert_eq!(progress.done(), total);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_loopback_servers() {
    let b = block();
    let port = free_port(ip(b, 1));
    let smtp_port = free_port(ip(b, 5));
    let root = ca("Scan Test Root", None);
    let inter = ca("Scan Test Intermediate", Some(&root));

    let (good, good_key) = leaf("good.test", 365, Some(&inter));
    let (expired, expired_key) = leaf("expired.test", -1, Some(&inter));
    let (selfs, selfs_key) = leaf("self.test", 365, None);
    let (sni, sni_key) = leaf("sni.test", 365, Some(&inter));
    let (mail, mail_key) = leaf("mail.test", 365, Some(&inter));
    let (soon, soon_key) = leaf("soon.test", 5, Some(&inter));

    let at = |last| SocketAddr::new(ip(b, last), port);
    let full = |l: &Vec<u8>| vec![l.clone(), inter.der.clone()];
    listen(
        at(1),
        Behaviour::Tls(server_config(full(&good), good_key, None)),
    )
    .await;
    listen(
        at(2),
        Behaviour::Tls(server_config(full(&expired), expired_key, None)),
    )
    .await;
    listen(
        at(3),
        Behaviour::Tls(server_config(vec![selfs.clone()], selfs_key, None)),
    )
    .await;
    let sni_cfg = server_config(full(&sni), sni_key, Some("sni.test"));
    listen(at(4), Behaviour::Tls(sni_cfg)).await;
    let smtp_addr = SocketAddr::new(ip(b, 5), smtp_port);
    let mail_cfg = server_config(full(&mail), mail_key, None);
    listen(smtp_addr, Behaviour::SmtpStartTls(mail_cfg)).await;
    // 127.x.y.6: nothing listens.
    listen(at(7), Behaviour::Silent).await;
    listen(at(8), Behaviour::Garbage).await;
    // The leaf alone, without its intermediate.
    listen(
        at(9),
        Behaviour::Tls(server_config(vec![soon.clone()], soon_key, None)),
    )
    .await;

    let targets: Vec<Target> = vec![
        format!("{}-{}", ip(b, 1), ip(b, 9)).parse().unwrap(),
        smtp_addr.to_string().parse().unwrap(),
    ];
    let plan = ScanPlan::resolve(&targets, PortSet::list(&[port]), SniMode::Auto)
        .await
        .unwrap()
        .with_starttls(smtp_port, Some(StartTls::Smtp));
    let allowed = [format!("127.{}.{}.0/24", b[0], b[1]).parse().unwrap()];
    plan.check_allowed(&allowed).unwrap();
    assert!(
        plan.check_allowed(&["127.0.0.0/30".parse().unwrap()])
            .is_err()
    );
    let results = collect(plan).await;
    assert_eq!(results.len(), 10);

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let foreign = AnalysisContext {
        now,
        alert_window: 30 * DAY,
        our_cas: vec![],
        trust_anchors: vec![],
    };
    let ours = AnalysisContext {
        our_cas: vec![root.der.clone()],
        ..foreign.clone()
    };
    let get = |addr: SocketAddr| {
        let r = &results[&(addr, None)];
        let hs = r.outcome.as_ref().unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert!(hs.tls_version.starts_with("TLSv1_"), "{}", hs.tls_version);
        assert!(!hs.cipher_suite.is_empty());
        hs
    };

    // A chain from an unrelated CA: recorded, untrusted; the same chain as ours: trusted.
    let hs = get(at(1));
    assert_eq!(hs.chain, full(&good));
    let r = analyze_chain(&hs.chain, None, hs.chain_truncated, &foreign);
    assert_eq!(r.findings, vec![Finding::UntrustedChain]);
    assert!(!r.issued_by_certkeeper);
    let leaf_info = r.leaf().unwrap();
    assert_eq!(leaf_info.dns_names, vec!["good.test"]);
    assert_eq!(leaf_info.key_type, "EC");
    assert_eq!(leaf_info.key_bits, 256);
    assert_eq!(leaf_info.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(r.certificates[1].subject, "CN=Scan Test Intermediate");
    let r = analyze_chain(&hs.chain, Some("good.test"), false, &ours);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(r.issued_by_certkeeper && r.trusted);
    let r = analyze_chain(&hs.chain, Some("other.test"), false, &ours);
    assert_eq!(r.findings, vec![Finding::HostnameMismatch]);
    let anchored = AnalysisContext {
        trust_anchors: vec![root.der.clone()],
        ..foreign.clone()
    };
    let r = analyze_chain(&hs.chain, None, false, &anchored);
    assert!(r.trusted && !r.issued_by_certkeeper && r.findings.is_empty());

    // Expired.
    let hs = get(at(2));
    let r = analyze_chain(&hs.chain, None, false, &ours);
    assert_eq!(r.findings, vec![Finding::Expired]);

    // Self-signed.
    let hs = get(at(3));
    let r = analyze_chain(&hs.chain, None, false, &ours);
    assert_eq!(
        r.findings,
        vec![Finding::SelfSigned, Finding::UntrustedChain]
    );
    assert!(r.leaf().unwrap().self_signed);

    // The SNI-only server refuses a handshake without a name.
    assert!(matches!(
        results[&(at(4), None)].outcome,
        Err(ProbeError::Tls(_))
    ));

    // STARTTLS SMTP.
    let hs = get(smtp_addr);
    let r = analyze_chain(&hs.chain, None, false, &ours);
    assert_eq!(r.leaf().unwrap().dns_names, vec!["mail.test"]);
    assert!(r.issued_by_certkeeper);

    // Nothing listening: refused. Silent: times out in the handshake. Garbage: a TLS error.
    assert!(matches!(
        results[&(at(6), None)].outcome,
        Err(ProbeError::Refused)
    ));
    assert!(matches!(
        results[&(at(7), None)].outcome,
        Err(ProbeError::Timeout("handshake"))
    ));
    assert!(matches!(
        results[&(at(8), None)].outcome,
        Err(ProbeError::Tls(_) | ProbeError::Io(_))
    ));

    // The leaf without its intermediate: incomplete even though we know the root; it also
    // expires within the alert window.
    let hs = get(at(9));
    let r = analyze_chain(&hs.chain, None, false, &ours);
    assert_eq!(
        r.findings,
        vec![
            Finding::Expiring,
            Finding::IncompleteChain,
            Finding::UntrustedChain
        ]
    );
    // Knowing the intermediate completes it.
    let with_inter = AnalysisContext {
        our_cas: vec![root.der.clone(), inter.der.clone()],
        ..ours.clone()
    };
    let r = analyze_chain(&hs.chain, None, false, &with_inter);
    assert_eq!(r.findings, vec![Finding::Expiring]);
    assert!(r.issued_by_certkeeper);

    // With a list of names, the SNI-only server answers to its own.
    let plan = ScanPlan::resolve(
        &[ip(b, 4).to_string().parse().unwrap()],
        PortSet::list(&[port]),
        SniMode::Names(vec!["sni.test".into(), "nope.test".into()]),
    )
    .await
    .unwrap();
    let results = collect(plan).await;
    let ok = results[&(at(4), Some("sni.test".into()))]
        .outcome
        .as_ref()
        .unwrap();
    let r = analyze_chain(&ok.chain, Some("sni.test"), false, &ours);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(results[&(at(4), Some("nope.test".into()))].outcome.is_err());

    // A chain longer than the bound is cut and reported.
    let ep = certkeeper_discovery::Endpoint {
        addr: at(1),
        sni: None,
        starttls: None,
    };
    let cfg = ProbeConfig {
        max_chain: 1,
        ..ProbeConfig::default()
    };
    let hs = certkeeper_discovery::probe(&ep, &cfg, certkeeper_discovery::client_config())
        .await
        .unwrap();
    assert_eq!(hs.chain.len(), 1);
    let r = analyze_chain(&hs.chain, None, hs.chain_truncated, &with_inter);
    assert_eq!(r.findings, vec![Finding::ChainTruncated]);
}

/// Host names are resolved and sent as SNI; IPv6 loopback is scanned like IPv4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_names_and_ipv6() {
    let (cert, key) = leaf("localhost", 30, None);
    let cfg = server_config(vec![cert.clone()], key, Some("localhost"));
    let v4 = SocketAddr::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        free_port(Ipv4Addr::LOCALHOST.into()),
    );
    listen(v4, Behaviour::Tls(cfg.clone())).await;
    let v6_ip: IpAddr = "::1".parse().unwrap();
    let v6 = SocketAddr::new(v6_ip, free_port(v6_ip));
    let (cert6, key6) = leaf("six.test", 30, None);
    listen(
        v6,
        Behaviour::Tls(server_config(vec![cert6.clone()], key6, None)),
    )
    .await;

    let targets = vec![
        format!("localhost:{}", v4.port()).parse().unwrap(),
        format!("[::1]:{}", v6.port()).parse().unwrap(),
    ];
    let plan = ScanPlan::resolve(&targets, PortSet::default(), SniMode::Auto)
        .await
        .unwrap();
    assert!(
        plan.check_allowed(&["127.0.0.0/8".parse().unwrap()])
            .is_err()
    );
    plan.check_allowed(&["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()])
        .unwrap();
    let results = collect(plan).await;
    let named = results
        .iter()
        .find(|((a, _), _)| a.port() == v4.port())
        .map(|(_, r)| r)
        .unwrap();
    assert_eq!(named.endpoint.sni.as_deref(), Some("localhost"));
    let hs = named.outcome.as_ref().unwrap();
    let ctx = AnalysisContext {
        now: OffsetDateTime::now_utc().unix_timestamp(),
        alert_window: 7 * DAY,
        ..Default::default()
    };
    let r = analyze_chain(&hs.chain, Some("localhost"), false, &ctx);
    assert_eq!(
        r.findings,
        vec![Finding::SelfSigned, Finding::UntrustedChain]
    );
    let hs6 = results[&(v6, None)].outcome.as_ref().unwrap();
    assert_eq!(hs6.chain, vec![cert6]);
    // The name check catches a certificate for another name.
    let r = analyze_chain(&hs6.chain, Some("localhost"), false, &ctx);
    assert!(r.findings.contains(&Finding::HostnameMismatch));
}

/// A STARTTLS server that talks without end is cut off by the read bounds, not a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_starttls_dialogue_is_bounded() {
    let b = block();
    for (last, lines) in [(20, true), (21, false)] {
        let addr = SocketAddr::new(ip([b[0], b[1].wrapping_add(1)], last), 0);
        let addr = SocketAddr::new(addr.ip(), free_port(addr.ip()));
        listen(addr, Behaviour::SmtpFlood { lines }).await;
        let ep = certkeeper_discovery::Endpoint {
            addr,
            sni: None,
            starttls: Some(StartTls::Smtp),
        };
        let cfg = ProbeConfig {
            starttls_timeout: Duration::from_secs(60),
            ..ProbeConfig::default()
        };
        let err = certkeeper_discovery::probe(&ep, &cfg, certkeeper_discovery::client_config())
            .await
            .unwrap_err();
        let want = if lines {
            "too many lines"
        } else {
            "line too long"
        };
        assert!(
            matches!(&err, ProbeError::StartTls(m) if m == want),
            "{err}"
        );
    }
}

/// STARTTLS for IMAP, POP3 and LDAP against small servers speaking each dialogue, chosen
/// both by the well-known port mapping and by an explicit override.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_imap_pop3_ldap() {
    let b = block();
    let root = ca("StartTLS Root", None);
    let mut servers = Vec::new();
    for (last, name, proto) in [
        (21u8, "imap.test", StartTls::Imap),
        (22, "pop3.test", StartTls::Pop3),
        (23, "ldap.test", StartTls::Ldap),
    ] {
        let (cert, key) = leaf(name, 365, Some(&root));
        let cfg = server_config(vec![cert], key, None);
        let behaviour = match proto {
            StartTls::Imap => Behaviour::LineStartTls {
                greeting: b"* OK IMAP4rev1 ready\r\n",
                command: "ck1 STARTTLS",
                reply: b"ck1 OK Begin TLS negotiation now\r\n",
                cfg,
            },
            StartTls::Pop3 => Behaviour::LineStartTls {
                greeting: b"+OK POP3 ready\r\n",
                command: "STLS",
                reply: b"+OK Begin TLS\r\n",
                cfg,
            },
            _ => Behaviour::LdapStartTls(cfg),
        };
        let addr = SocketAddr::new(ip(b, last), free_port(ip(b, last)));
        listen(addr, behaviour).await;
        servers.push((addr, name, proto));
    }
    for (addr, name, proto) in servers {
        let targets: Vec<Target> = vec![addr.to_string().parse().unwrap()];
        let plan = ScanPlan::resolve(&targets, PortSet::list(&[addr.port()]), SniMode::Auto)
            .await
            .unwrap()
            .with_starttls(addr.port(), Some(proto));
        let results = collect(plan).await;
        let hs = results[&(addr, None)]
            .outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let leaf = x509_parser::parse_x509_certificate(&hs.chain[0]).unwrap().1;
        assert_eq!(leaf.subject().to_string(), format!("CN={name}"), "{name}");
    }
}
