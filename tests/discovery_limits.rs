//! Discovery scans against hostile sizes and hosts, on SQLite (the single writer): a plan
//! larger than `discovery.max_endpoints` is refused with a problem naming the limit; a
//! running scan records what answered in batches while it runs, so an unrelated write
//! (creating a token) completes meanwhile; endpoints that time out are not kept; and a
//! cancelled scan stops probing and says it was cancelled.
//!
//! The listeners bind the wildcard address, so every address of a private loopback block
//! (127.x.y.0, chosen from the process id) reaches them on their port.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Db, TestServer};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A loopback /16 prefix of this test process (distinct from tests/discovery.rs' blocks).
fn block() -> [u8; 2] {
    let pid = std::process::id();
    [(100 + pid % 50) as u8, (pid / 50 % 250) as u8]
}

/// What a listener does with each connection.
#[derive(Clone, Copy)]
enum Peer {
    /// Answers with something that is not TLS and closes: an endpoint that answered.
    NotTls,
    /// Accepts and never sends anything: every probe times out.
    Silent,
}

/// A listener on every address at a free port; counts the connections it accepted.
async fn listen(peer: Peer) -> (u16, Arc<AtomicU64>) {
    let l = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                match peer {
                    Peer::NotTls => {
                        let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
                        let _ = s.shutdown().await;
                    }
                    Peer::Silent => {
                        tokio::time::sleep(Duration::from_secs(120)).await;
                        drop(s);
                    }
                }
            });
        }
    });
    (port, accepted)
}

async fn start_scan(s: &TestServer, body: Value) -> String {
    let (status, job) = s.api(Method::POST, "/discovery/scans", Some(body)).await;
    assert_eq!(status, 202, "{job}");
    job["id"].as_str().unwrap().to_string()
}

async fn scan(s: &TestServer, id: &str) -> Value {
    let (status, job) = s
        .api(Method::GET, &format!("/discovery/scans/{id}"), None)
        .await;
    assert_eq!(status, 200, "{job}");
    job
}

async fn results(s: &TestServer, id: &str) -> Vec<Value> {
    let (status, r) = s
        .api(Method::GET, &format!("/discovery/scans/{id}/results"), None)
        .await;
    assert_eq!(status, 200, "{r}");
    r["items"].as_array().unwrap().clone()
}

/// Poll until the scan is no longer running (hang guard: two minutes).
async fn wait_done(s: &TestServer, id: &str) -> Value {
    for _ in 0..1200 {
        let job = scan(s, id).await;
        if job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("scan {id} still running");
}

#[tokio::test]
async fn hostile_scans_on_sqlite() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let b = block();
    let net = |suffix: &str| format!("127.{}.{}.{suffix}", b[0], b[1]);
    let s = TestServer::start_with(
        Db::Sqlite,
        &[
            (
                "CERTKEEPER_DISCOVERY__ALLOW",
                &format!("127.{}.0.0/16", b[0]),
            ),
            ("CERTKEEPER_DISCOVERY__MAX_ENDPOINTS", "4096"),
            ("CERTKEEPER_DISCOVERY__TIMEOUT", "1s"),
            ("CERTKEEPER_DISCOVERY__CONCURRENCY", "64"),
            // Slow enough that the scan below runs for several seconds.
            ("CERTKEEPER_DISCOVERY__PACKETS_PER_SECOND", "500"),
        ],
    )
    .await;

    // Too many endpoints: refused before anything is recorded, with the limit named.
    let (status, p) = s
        .api(
            Method::POST,
            "/discovery/scans",
            Some(json!({"targets": [format!("127.{}.0.0/16", b[0])], "ports": "443"})),
        )
        .await;
    assert_eq!(status, 400, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("4096") && detail.contains("discovery.max_endpoints"),
        "{p}"
    );
    let (status, p) = s
        .api(
            Method::POST,
            "/discovery/scans",
            Some(json!({"targets": [net("0/24")], "ports": "1-17"})),
        )
        .await;
    assert_eq!(status, 400, "256 × 17 endpoints: {p}");
    let (_, scans) = s.api(Method::GET, "/discovery/scans", None).await;
    assert_eq!(scans["items"], json!([]), "nothing recorded");

    // Endpoints that never answer: timeouts are not kept.
    let (silent, _) = listen(Peer::Silent).await;
    let id = start_scan(
        &s,
        json!({"targets": [net("0/30")], "ports": silent.to_string()}),
    )
    .await;
    let job = wait_done(&s, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["done"], 4);
    assert_eq!(results(&s, &id).await, Vec::<Value>::new(), "timeouts kept");

    // 4096 endpoints that answer: results are recorded while the scan runs, and a write
    // that has nothing to do with the scan completes meanwhile.
    let (answering, _) = listen(Peer::NotTls).await;
    let id = start_scan(
        &s,
        json!({"targets": [net("0/20")], "ports": answering.to_string()}),
    )
    .await;
    let mut seen_while_running = false;
    for _ in 0..600 {
        let got = results(&s, &id).await.len();
        let job = scan(&s, &id).await;
        if job["status"] != "running" {
            break;
        }
        if got > 0 {
            seen_while_running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen_while_running,
        "no result was recorded while the scan ran"
    );
    let (status, token) = tokio::time::timeout(
        Duration::from_secs(30),
        s.api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "during-scan", "role": "viewer"})),
        ),
    )
    .await
    .expect("creating a token hung while a scan ran");
    assert_eq!(status, 201, "{token}");
    let job = wait_done(&s, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["total"], 4096);
    let all = results(&s, &id).await;
    assert_eq!(all.len(), 4096, "every endpoint answered");
    assert!(all.iter().all(|o| o["status"] == "tls"), "{:?}", all[0]);

    // A scan of silent endpoints that would run for minutes, cancelled: it says so, and
    // stops opening connections.
    let (silent, accepted) = listen(Peer::Silent).await;
    let id = start_scan(
        &s,
        json!({"targets": [net("0/20")], "ports": silent.to_string()}),
    )
    .await;
    for _ in 0..600 {
        if accepted.load(Ordering::SeqCst) >= 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        accepted.load(Ordering::SeqCst) >= 16,
        "the scan never started"
    );
    let (status, job) = s
        .api(Method::POST, &format!("/discovery/scans/{id}/cancel"), None)
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(job["finished_at"].is_i64(), "{job}");
    // The runner notices within about a second; probes under way end within the 1 s
    // timeout. After that, no new connection arrives.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after_cancel = accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        after_cancel,
        "the cancelled scan still probes"
    );
    assert!(after_cancel < 4096, "it ran to the end: {after_cancel}");
    let job = scan(&s, &id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(job["done"].as_i64().unwrap() < 4096, "{job}");
    // Cancelling again, or a scan that does not exist.
    let (status, p) = s
        .api(Method::POST, &format!("/discovery/scans/{id}/cancel"), None)
        .await;
    assert_eq!(status, 409, "{p}");
    let (status, _) = s
        .api(Method::POST, "/discovery/scans/nope/cancel", None)
        .await;
    assert_eq!(status, 404);
    // Only an admin may cancel.
    let viewer = token["token"].as_str().unwrap();
    let (status, _) = s
        .api_as(
            viewer,
            Method::POST,
            &format!("/discovery/scans/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 403);
}
