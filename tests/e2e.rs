//! End to end: the real server on SQLite and on PostgreSQL, certificates checked with
//! `openssl verify`, CRLs with `openssl crl`, OCSP with `openssl ocsp`, and a rustls
//! client that must accept a TLS server presenting a certificate we issued.

mod common;

use std::sync::Arc;

use base64::Engine;
use certkeeper::sched::Scheduling;
use common::*;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn issue_csr(s: &TestServer, name: &str, sans: &str) -> serde_json::Value {
    let (_, csr) = openssl_csr(s.dir.path(), name, &format!("/CN={name}"), sans, EC_P256);
    let (status, body) = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "default", "csr": csr})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Every thread of `certkeeper serve` (tokio's workers, sqlx's connection threads, the
/// SQLite writer) runs under `SCHED_BATCH`, as `/proc/<pid>/task/<tid>/stat` shows:
/// the main thread takes it before starting the others, which inherit it.
fn every_thread_runs_as_batch_work(s: &TestServer) {
    let pid = s.pid().expect("the server runs");
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let policy = Scheduling::from_stat(&stat).unwrap().policy;
        threads.push((stat[..stat.rfind(')').unwrap() + 1].to_string(), policy));
    }
    assert!(threads.len() > 2, "{threads:?}");
    // A server started under another policy or nice value keeps it (as this test's own
    // process passes them on); from the default, every thread takes SCHED_BATCH.
    let expected = Scheduling::current().unwrap().under_batch_work().policy;
    assert!(
        threads.iter().all(|(_, policy)| *policy == expected),
        "threads not under policy {expected}: {threads:?}"
    );
}

async fn issue_verify_revoke_crl_ocsp(db: Db) {
    let s = TestServer::start(db).await;
    let good = issue_csr(&s, "good", "DNS:app.example.com,IP:10.1.2.3").await;
    let bad = issue_csr(&s, "bad", "DNS:old.example.com").await;
    let root = s.write("root.pem", &s.root_pem);
    let chain = s.write("chain.pem", good["chain"].as_str().unwrap());
    let bundle = s.write(
        "bundle.pem",
        format!("{}{}", s.root_pem, good["chain"].as_str().unwrap()),
    );
    let good_p = s.write("good.pem", good["certificate"].as_str().unwrap());
    let bad_p = s.write("bad.pem", bad["certificate"].as_str().unwrap());
    assert_eq!(good["root"].as_str().unwrap(), s.root_pem);
    every_thread_runs_as_batch_work(&s);

    // The chain verifies to the root, for the names asked for.
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&chain),
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "app.example.com",
        p(&good_p),
    ]);
    assert!(ok && out.contains("good.pem: OK"), "{out}");
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&chain),
        "-verify_ip",
        "10.1.2.3",
        p(&good_p),
    ]);
    assert!(ok, "{out}");

    // AIA and CRL distribution point point at the plain-HTTP listener, and they work.
    let (_, text) = openssl(&["x509", "-in", p(&good_p), "-noout", "-text"]);
    let base = format!("http://127.0.0.1:{}", s.http_port);
    let ca_id = good["ca_id"].as_str().unwrap();
    assert!(
        text.contains(&format!("CA Issuers - URI:{base}/ca/{ca_id}.crt")),
        "{text}"
    );
    assert!(text.contains(&format!("OCSP - URI:{base}/ocsp")), "{text}");
    assert!(
        text.contains(&format!("URI:{base}/crl/{ca_id}.crl")),
        "{text}"
    );
    let plain = reqwest::Client::new();
    let aia = plain
        .get(format!("{base}/ca/{ca_id}.crt"))
        .send()
        .await
        .unwrap();
    assert_eq!(aia.headers()["content-type"], "application/pkix-cert");
    let int_der = aia.bytes().await.unwrap();
    let int_pem = ::pem::parse(good["chain"].as_str().unwrap()).unwrap();
    assert_eq!(int_der.as_ref(), int_pem.contents());

    // Revoke one with a reason; the CRL lists it and is signed by the intermediate.
    let (status, body) = s
        .api(
            Method::POST,
            &format!("/certificates/{}/revoke", bad["id"].as_str().unwrap()),
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["revocation_reason"], 1);
    let crl = plain
        .get(format!("{base}/crl/{ca_id}.crl"))
        .send()
        .await
        .unwrap();
    assert_eq!(crl.headers()["content-type"], "application/pkix-crl");
    let crl_p = s.write("int.crl", crl.bytes().await.unwrap());
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_p),
        "-CAfile",
        p(&bundle),
        "-noout",
        "-text",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    let bad_serial = bad["serial"].as_str().unwrap().to_uppercase();
    let good_serial = good["serial"].as_str().unwrap().to_uppercase();
    assert!(out.contains(&bad_serial), "{out}");
    assert!(!out.contains(&good_serial), "{out}");
    assert!(out.contains("Key Compromise"), "{out}");

    // OCSP over POST, as openssl does it.
    let url = format!("{base}/ocsp");
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&chain),
        "-cert",
        p(&bad_p),
        "-url",
        &url,
        "-CAfile",
        p(&bundle),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("bad.pem: revoked")
            && out.contains("Reason: keyCompromise")
            && out.contains("Response verify OK"),
        "{out}"
    );
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&chain),
        "-cert",
        p(&good_p),
        "-url",
        &url,
        "-CAfile",
        p(&bundle),
    ]);
    assert!(
        ok && out.contains("good.pem: good") && out.contains("Response verify OK"),
        "{out}"
    );

    // OCSP over GET (RFC 6960 appendix A.1).
    let req_p = s.path("req.der");
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&chain),
        "-cert",
        p(&good_p),
        "-reqout",
        p(&req_p),
    ]);
    assert!(ok, "{out}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req_p).unwrap());
    let encoded: String = url::form_urlencoded::byte_serialize(b64.as_bytes()).collect();
    let resp = plain
        .get(format!("{base}/ocsp/{encoded}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/ocsp-response");
    let resp_p = s.write("resp.der", resp.bytes().await.unwrap());
    let (ok, out) = openssl(&[
        "ocsp",
        "-respin",
        p(&resp_p),
        "-issuer",
        p(&chain),
        "-cert",
        p(&good_p),
        "-CAfile",
        p(&bundle),
        "-no_nonce",
    ]);
    assert!(
        ok && out.contains("good.pem: good") && out.contains("Response verify OK"),
        "{out}"
    );
    // The request's nonce is echoed.
    let (ok, out) = openssl(&[
        "ocsp",
        "-respin",
        p(&resp_p),
        "-reqin",
        p(&req_p),
        "-issuer",
        p(&chain),
        "-CAfile",
        p(&bundle),
    ]);
    assert!(
        ok && out.contains("Response verify OK") && !out.contains("Nonce Verify error"),
        "{out}"
    );

    // Garbage is answered with an OCSP malformedRequest, not an HTTP error.
    let resp = plain.post(&url).body("not ocsp").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        &[0x30, 0x03, 0x0a, 0x01, 0x01]
    );

    // Health, readiness and metrics.
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        plain
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = plain
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let issued_line = metrics
        .lines()
        .find(|l| l.starts_with("certkeeper_certificates_issued_total "))
        .unwrap();
    // Two for the test, one for the server's own HTTPS certificate.
    assert!(issued_line.ends_with(" 3"), "{metrics}");
    assert!(
        metrics.contains("certkeeper_certificates_revoked_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("certkeeper_http_responses_total{class=\"server_error\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn issue_verify_revoke_crl_ocsp_sqlite() {
    issue_verify_revoke_crl_ocsp(Db::Sqlite).await;
}

#[tokio::test]
async fn issue_verify_revoke_crl_ocsp_postgres() {
    issue_verify_revoke_crl_ocsp(Db::Postgres).await;
}

async fn delegated_ocsp_responder(db: Db) {
    let s = TestServer::start_with(db, &[("CERTKEEPER_CA__OCSP_SIGNER", "delegated")]).await;
    let cert = issue_csr(&s, "leaf", "DNS:leaf.example.com").await;
    let chain = s.write("chain.pem", cert["chain"].as_str().unwrap());
    let bundle = s.write(
        "bundle.pem",
        format!("{}{}", s.root_pem, cert["chain"].as_str().unwrap()),
    );
    let leaf = s.write("leaf.pem", cert["certificate"].as_str().unwrap());
    let url = format!("http://127.0.0.1:{}/ocsp", s.http_port);
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&chain),
        "-cert",
        p(&leaf),
        "-url",
        &url,
        "-CAfile",
        p(&bundle),
        "-resp_text",
    ]);
    assert!(
        ok && out.contains("leaf.pem: good") && out.contains("Response verify OK"),
        "{out}"
    );
    assert!(
        out.contains("OCSP Responder") && out.contains("OCSP Signing"),
        "the delegated responder certificate is included: {out}"
    );
    // The responder certificate went through its own approved path: recorded, without a
    // profile, issued by the server, and audited.
    let (st, page) = s.api(Method::GET, "/certificates", None).await;
    assert_eq!(st, 200, "{page}");
    let responders: Vec<&serde_json::Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["subject"]
                .as_str()
                .unwrap_or("")
                .contains("OCSP Responder")
        })
        .collect();
    assert_eq!(responders.len(), 1, "{page}");
    assert!(responders[0]["profile"].is_null(), "{page}");
    assert_eq!(responders[0]["created_by"], "system", "{page}");
    let (st, audit) = s
        .api(
            Method::GET,
            "/audit?action=certificate.issue_ocsp_responder",
            None,
        )
        .await;
    assert_eq!(st, 200, "{audit}");
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["object_id"], responders[0]["id"], "{audit}");
}

#[tokio::test]
async fn delegated_ocsp_responder_sqlite() {
    delegated_ocsp_responder(Db::Sqlite).await;
}

#[tokio::test]
async fn delegated_ocsp_responder_postgres() {
    delegated_ocsp_responder(Db::Postgres).await;
}

async fn rustls_client_accepts_issued_server_certificate(db: Db) {
    let s = TestServer::start(db).await;
    let (status, body) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": ["app.e2e.test"], "ip_addresses": ["127.0.0.1"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(body["certificate"].as_str().unwrap().as_bytes())
            .map(|c| c.unwrap())
            .collect();
    chain.extend(
        CertificateDer::pem_slice_iter(body["chain"].as_str().unwrap().as_bytes())
            .map(|c| c.unwrap()),
    );
    let key =
        PrivateKeyDer::from_pem_slice(body["private_key"].as_str().unwrap().as_bytes()).unwrap();
    let server_cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.unwrap();
            tls.write_all(b"pong").await.unwrap();
            tls.shutdown().await.unwrap();
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(s.root_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let client_cfg = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    for name in ["app.e2e.test", "127.0.0.1"] {
        let connector = tokio_rustls::TlsConnector::from(client_cfg.clone());
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
            .await
            .unwrap();
        tls.write_all(b"ping").await.unwrap();
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"pong", "{name}");
    }
    server.await.unwrap();
    // A name the certificate does not carry is refused by the same client.
    let roots2 = {
        let mut r = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(s.root_pem.as_bytes()) {
            r.add(c.unwrap()).unwrap();
        }
        r
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg2 = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots2)
            .with_no_client_auth(),
    );
    let acceptor2 = {
        let pems = format!(
            "{}{}",
            body["certificate"].as_str().unwrap(),
            body["chain"].as_str().unwrap()
        );
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pems.as_bytes())
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_slice(body["private_key"].as_str().unwrap().as_bytes())
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        ))
    };
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = acceptor2.accept(tcp).await;
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let err = tokio_rustls::TlsConnector::from(cfg2)
        .connect(
            ServerName::try_from("other.example.com".to_string()).unwrap(),
            tcp,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("NotValidForName")
            || err.to_string().contains("not valid for name"),
        "{err}"
    );
    let _ = srv.await;
}

#[tokio::test]
async fn rustls_client_accepts_issued_server_certificate_sqlite() {
    rustls_client_accepts_issued_server_certificate(Db::Sqlite).await;
}

#[tokio::test]
async fn rustls_client_accepts_issued_server_certificate_postgres() {
    rustls_client_accepts_issued_server_certificate(Db::Postgres).await;
}

async fn restart_keeps_keys_and_tokens(db: Db) {
    let mut s = TestServer::start(db).await;
    assert!(
        s.first_stdout.contains("admin token"),
        "first start prints the token: {}",
        s.first_stdout
    );
    assert!(s.first_stdout.contains(&s.token));
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(s.data_dir.join("admin.token"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
    let cert = issue_csr(&s, "before", "DNS:before.example.com").await;
    let (_, cas_before) = s.api(Method::GET, "/cas", None).await;
    let root_before = s.root_pem.clone();
    let token_before = s.token.clone();
    let key_before = std::fs::read(s.data_dir.join("master.key")).unwrap();

    s.stop();
    s.spawn(&[]).await;
    assert_eq!(s.root_pem, root_before, "root.pem unchanged");
    assert_eq!(s.token, token_before, "admin.token unchanged");
    assert_eq!(
        std::fs::read(s.data_dir.join("master.key")).unwrap(),
        key_before
    );
    assert!(
        !s.first_stdout.contains("admin token"),
        "no new token on restart: {}",
        s.first_stdout
    );
    let (status, cas_after) = s.api(Method::GET, "/cas", None).await;
    assert_eq!(status, 200);
    assert_eq!(cas_before, cas_after, "no CA was replaced");
    // The intermediate still signs with the same key: a new certificate verifies with the old chain.
    let after = issue_csr(&s, "after", "DNS:after.example.com").await;
    let root = s.write("root.pem", &s.root_pem);
    let chain = s.write("chain-old.pem", cert["chain"].as_str().unwrap());
    let leaf = s.write("after.pem", after["certificate"].as_str().unwrap());
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&chain),
        p(&leaf),
    ]);
    assert!(ok, "{out}");
    let (status, _) = s
        .api(
            Method::GET,
            &format!("/certificates/{}", cert["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "certificates survive restarts");
}

#[tokio::test]
async fn restart_keeps_keys_and_tokens_sqlite() {
    restart_keeps_keys_and_tokens(Db::Sqlite).await;
}

#[tokio::test]
async fn restart_keeps_keys_and_tokens_postgres() {
    restart_keeps_keys_and_tokens(Db::Postgres).await;
}

#[tokio::test]
async fn ca_keys_are_sealed_at_rest() {
    let mut s = TestServer::start(Db::Sqlite).await;
    s.stop();
    // No PKCS#8 key structure in clear anywhere in the database files.
    let mut db = Vec::new();
    for f in ["certkeeper.db", "certkeeper.db-wal"] {
        if let Ok(b) = std::fs::read(s.data_dir.join(f)) {
            db.extend(b);
        }
    }
    assert!(!db.is_empty());
    // The PKCS#8 header of an EC P-256 private key: version 0, AlgorithmIdentifier ecPublicKey.
    let pkcs8_ec = [
        0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    ];
    assert!(
        !db.windows(pkcs8_ec.len()).any(|w| w == pkcs8_ec),
        "a clear private key is in the database"
    );
    // And a wrong master key cannot start the server.
    std::fs::write(
        s.data_dir.join("master.key"),
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        ),
    )
    .unwrap();
    let err = refused_start(&s.data_dir, &[]);
    assert!(
        err.contains("master key") || err.contains("sealed"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--data-dir", p(dir.path())])
        .env("CERTKEEPER_SERVER__HTTPS_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https_listen"), "{err}");
    std::fs::write(dir.path().join("certkeeper.toml"), "no_such_setting = 1\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--data-dir", p(dir.path())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no_such_setting"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A misspelled key in a section, and a name from before the sections in the environment.
    std::fs::write(
        dir.path().join("certkeeper.toml"),
        "[server]\nhtps_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--data-dir", p(dir.path())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.htps_listen") && err.contains("server.https_listen"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("certkeeper.toml")).unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--data-dir", p(dir.path())])
        .env("CERTKEEPER_EST_DEFAULT_PROFILE", "default")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("est_default_profile")
            && err.contains("CERTKEEPER_EST_DEFAULT_PROFILE")
            && err.contains("CERTKEEPER_EST__DEFAULT_PROFILE"),
        "{err}"
    );
}
