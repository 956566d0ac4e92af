//! Discovery end to end: TLS servers on loopback addresses serving a certificate issued
//! through the API, one from an unrelated CA, and a self-signed one; scans through the API
//! (with the allowlist), the inventory after a first scan and after a second one with
//! changes; `certkeeper scan` locally and with `--server`. On SQLite and PostgreSQL.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::{Db, TestServer, bin};
use rcgen::{CertificateParams, DnType, KeyPair};
use reqwest::Method;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

fn block(db: Db) -> [u8; 2] {
    let pid = std::process::id();
    let second = (pid / 7 % 250) as u8;
    match db {
        Db::Sqlite => [(40 + pid % 30) as u8, second],
        Db::Postgres => [(70 + pid % 30) as u8, second],
    }
}

fn ip(b: [u8; 2], last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, b[0], b[1], last))
}

fn self_signed(name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A chain from an unrelated CA: leaf and CA certificate.
fn foreign(name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "Unrelated CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    (
        vec![cert.der().clone(), ca_cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// Serve TLS with `chain` on `addr` until the handle is aborted.
fn serve(
    addr: SocketAddr,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> JoinHandle<()> {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_reuseaddr(true).unwrap();
    sock.bind(addr).unwrap();
    let listener = sock.listen(128).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(s).await;
            });
        }
    })
}

fn fingerprint(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

async fn scan_and_wait(s: &TestServer, body: Value) -> Value {
    let (status, job) = s.api(Method::POST, "/discovery/scans", Some(body)).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    for _ in 0..600 {
        let (status, job) = s
            .api(Method::GET, &format!("/discovery/scans/{id}"), None)
            .await;
        assert_eq!(status, 200);
        match job["status"].as_str().unwrap() {
            "running" | "queued" => tokio::time::sleep(Duration::from_millis(100)).await,
            "succeeded" => return job,
            other => panic!("scan {other}: {job}"),
        }
    }
    panic!("scan {id} did not finish");
}

async fn scenario(db: Db) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let b = block(db);
    let net = format!("127.{}.{}.0/29", b[0], b[1]);
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_DISCOVERY__ALLOW", &format!("{net}, ::1/128")),
            ("CERTKEEPER_DISCOVERY__TIMEOUT", "1500ms"),
        ],
    )
    .await;
    let port = common::free_port();

    // A certificate issued through the API, served with its chain.
    let (status, issued) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": ["ours.test"]})),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let mut ours: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(issued["certificate"].as_str().unwrap().as_bytes())
            .map(|c| c.unwrap())
            .collect();
    ours.extend(
        CertificateDer::pem_slice_iter(issued["chain"].as_str().unwrap().as_bytes())
            .map(|c| c.unwrap()),
    );
    let ours_fp = fingerprint(&ours[0]);
    let ours_key =
        PrivateKeyDer::from_pem_slice(issued["private_key"].as_str().unwrap().as_bytes()).unwrap();
    let (foreign_chain, foreign_key) = foreign("foreign.test");
    let foreign_fp = fingerprint(&foreign_chain[0]);
    let (self_chain, self_key) = self_signed("self.test");
    let self_fp = fingerprint(&self_chain[0]);

    let at = |last| SocketAddr::new(ip(b, last), port);
    let _s1 = serve(at(1), ours, ours_key);
    let s2 = serve(at(2), foreign_chain, foreign_key);
    let s3 = serve(at(3), self_chain, self_key);

    // Outside the allowlist: refused, nothing recorded.
    let (status, problem) = s
        .api(
            Method::POST,
            "/discovery/scans",
            Some(json!({"targets": ["127.0.0.0/16"], "ports": port.to_string()})),
        )
        .await;
    assert_eq!(status, 403, "{problem}");
    let (status, problem) = s
        .api(
            Method::POST,
            "/discovery/scans",
            Some(json!({"targets": ["not a target"], "ports": "443"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let (_, scans) = s.api(Method::GET, "/discovery/scans", None).await;
    assert_eq!(scans["items"].as_array().unwrap().len(), 0);

    // First scan: three certificates, all new.
    let spec = json!({"targets": [net], "ports": port.to_string()});
    let job = scan_and_wait(&s, spec.clone()).await;
    assert_eq!(job["total"], 8);
    assert_eq!(job["handshakes"], 3, "{job}");
    let changes = &job["changes"];
    let mut new: Vec<&str> = changes["new_certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fingerprint"].as_str().unwrap())
        .collect();
    new.sort();
    let mut expected = vec![ours_fp.as_str(), foreign_fp.as_str(), self_fp.as_str()];
    expected.sort();
    assert_eq!(new, expected);
    assert_eq!(changes["gone"], json!([]));
    assert_eq!(changes["changed"], json!([]));

    let (_, results) = s
        .api(
            Method::GET,
            &format!("/discovery/scans/{}/results", job["id"].as_str().unwrap()),
            None,
        )
        .await;
    let results = results["items"].as_array().unwrap();
    assert_eq!(results.len(), 3, "refused endpoints are not kept");
    let by_addr = |last: u8| {
        results
            .iter()
            .find(|r| r["address"] == ip(b, last).to_string())
            .unwrap()
            .clone()
    };
    let r1 = by_addr(1);
    assert_eq!(r1["chain"]["issued_by_certkeeper"], true);
    assert_eq!(r1["chain"]["findings"], json!([]));
    assert_eq!(r1["chain"]["certificates"].as_array().unwrap().len(), 2);
    let r2 = by_addr(2);
    assert_eq!(r2["chain"]["issued_by_certkeeper"], false);
    assert_eq!(r2["chain"]["findings"], json!(["untrusted_chain"]));
    let r3 = by_addr(3);
    assert_eq!(
        r3["chain"]["findings"],
        json!(["self_signed", "untrusted_chain"])
    );

    let (_, certs) = s.api(Method::GET, "/discovery/certificates", None).await;
    let certs = certs["items"].as_array().unwrap();
    assert_eq!(certs.len(), 3);
    let ours_row = certs.iter().find(|c| c["fingerprint"] == ours_fp).unwrap();
    assert_eq!(ours_row["issued_by_certkeeper"], true);
    assert_eq!(ours_row["certificate_id"], issued["id"]);
    assert_eq!(ours_row["dns_names"], json!(["ours.test"]));
    let foreign_row = certs
        .iter()
        .find(|c| c["fingerprint"] == foreign_fp)
        .unwrap();
    assert_eq!(foreign_row["certificate_id"], Value::Null);
    assert_eq!(foreign_row["issuer"], "CN=Unrelated CA");
    let (_, eps) = s.api(Method::GET, "/discovery/endpoints", None).await;
    let eps = eps["items"].as_array().unwrap();
    assert_eq!(eps.len(), 3);
    assert!(eps.iter().all(|e| e["gone_at"].is_null()));
    let first_seen_3 = eps
        .iter()
        .find(|e| e["address"] == ip(b, 3).to_string())
        .unwrap()["first_seen"]
        .clone();

    // Changes: .2 stops, .3 serves a new certificate, .4 starts serving the foreign one.
    s2.abort();
    s3.abort();
    let _ = s2.await;
    let _ = s3.await;
    let (self2_chain, self2_key) = self_signed("self.test");
    let self2_fp = fingerprint(&self2_chain[0]);
    let _s3b = serve(at(3), self2_chain, self2_key);
    let (f4_chain, f4_key) = foreign("four.test");
    let f4_fp = fingerprint(&f4_chain[0]);
    let _s4 = serve(at(4), f4_chain, f4_key);

    let job2 = scan_and_wait(&s, spec.clone()).await;
    let c = &job2["changes"];
    let new: Vec<&str> = c["new_certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fingerprint"].as_str().unwrap())
        .collect();
    let mut expected = vec![self2_fp.as_str(), f4_fp.as_str()];
    expected.sort();
    let mut new_sorted = new.clone();
    new_sorted.sort();
    assert_eq!(new_sorted, expected, "{c}");
    assert_eq!(c["new_endpoints"], json!([format!("{}", at(4))]));
    assert_eq!(
        c["changed"],
        json!([{"endpoint": at(3).to_string(), "previous": self_fp, "current": self2_fp}])
    );
    assert_eq!(
        c["gone"],
        json!([{"endpoint": at(2).to_string(), "fingerprint": foreign_fp}])
    );
    assert_eq!(c["expired"], json!([]));

    let (_, certs) = s.api(Method::GET, "/discovery/certificates", None).await;
    assert_eq!(
        certs["items"].as_array().unwrap().len(),
        5,
        "deduplicated by fingerprint"
    );
    let (_, eps) = s.api(Method::GET, "/discovery/endpoints", None).await;
    let eps = eps["items"].as_array().unwrap();
    assert_eq!(eps.len(), 4);
    let ep = |last: u8| {
        eps.iter()
            .find(|e| e["address"] == ip(b, last).to_string())
            .unwrap()
    };
    assert!(ep(2)["gone_at"].is_i64());
    assert_eq!(ep(2)["fingerprint"], foreign_fp);
    assert_eq!(ep(3)["fingerprint"], self2_fp);
    assert_eq!(ep(3)["first_seen"], first_seen_3);
    assert!(ep(1)["gone_at"].is_null());

    // A scan of one address does not mark the others gone.
    let job3 = scan_and_wait(&s, json!({"targets": [at(1).to_string()], "ports": "1"})).await;
    assert_eq!(job3["changes"]["gone"], json!([]));
    assert_eq!(job3["total"], 1);

    // The audit log has the scans.
    let (_, audit) = s
        .api(Method::GET, "/audit?action=discovery_scan.finish", None)
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);

    // The CLI: locally (no server involved), and through the server.
    let out = std::process::Command::new(bin())
        .args(["--data-dir"])
        .arg(&s.data_dir)
        .args([
            "--json",
            "scan",
            &at(1).to_string(),
            &at(3).to_string(),
            "--timeout",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let l1 = lines
        .iter()
        .find(|l| l["address"] == ip(b, 1).to_string())
        .unwrap();
    assert_eq!(
        l1["chain"]["issued_by_certkeeper"], true,
        "root.pem from the data dir"
    );
    assert_eq!(
        l1["chain"]["certificates"][0]["fingerprint_sha256"],
        ours_fp
    );

    let out = std::process::Command::new(bin())
        .args(["--data-dir"])
        .arg(&s.data_dir)
        .args([
            "--server",
            &s.url(""),
            "scan",
            &net,
            "--ports",
            &port.to_string(),
            "--csv",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("endpoint,sni,status"), "{csv}");
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(csv.contains(&ours_fp) && csv.contains(&f4_fp) && csv.contains(&self2_fp));
    let (_, scans) = s.api(Method::GET, "/discovery/scans", None).await;
    assert_eq!(scans["items"].as_array().unwrap().len(), 4);

    // Outside the allowlist through the CLI: a clear refusal.
    let out = std::process::Command::new(bin())
        .args(["--data-dir"])
        .arg(&s.data_dir)
        .args([
            "--server",
            &s.url(""),
            "scan",
            "127.0.0.1",
            "--ports",
            "443",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("discovery.allow"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_postgres() {
    scenario(Db::Postgres).await;
}
