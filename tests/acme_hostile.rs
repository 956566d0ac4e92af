//! ACME against hostile clients, with the real server binary: an http-01 host that streams
//! an endless body, redirects towards other ports, and a JWS with a `crit` header.

mod acme_support;
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acme_support::{Acme, ChallSrv};
use common::{Db, TestServer, free_port};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the challenge host answers.
enum Reply {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// `200 OK` and a body that never ends (until the peer goes away).
    Endless,
}

type Route = Arc<dyn Fn(&str, &str) -> Reply + Send + Sync>;

/// A raw HTTP/1.1 challenge host: `route(host, path)` decides each answer. Returns its
/// port and how many body bytes endless answers wrote.
async fn challenge_host(route: Route) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let (route, sent) = (route.clone(), counter.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let host = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("host: ")
                            .or_else(|| l.strip_prefix("Host: "))
                    })
                    .unwrap_or("")
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .to_string();
                match route(&host, &path) {
                    Reply::Bytes(b) => {
                        let _ = sock.write_all(&b).await;
                    }
                    Reply::Endless => {
                        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
                        if sock.write_all(head).await.is_err() {
                            return;
                        }
                        let block = vec![b'a'; 64 * 1024];
                        while sock.write_all(&block).await.is_ok() {
                            sent.fetch_add(block.len() as u64, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    (port, sent)
}

/// A listener that counts the connections it gets and answers each with `reply`.
async fn counting_listener(reply: &'static [u8]) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let _ = sock.write_all(reply).await;
        }
    });
    (port, hits)
}

fn redirect(location: String) -> Reply {
    Reply::Bytes(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
}

async fn server(chall: &ChallSrv, http01_port: u16, tls_alpn01_port: u16) -> TestServer {
    let port = http01_port.to_string();
    let alpn_port = tls_alpn01_port.to_string();
    let resolvers = chall.resolvers_setting();
    TestServer::start_with(
        Db::Sqlite,
        &[
            ("CERTKEEPER_ACME__HTTP01_PORT", port.as_str()),
            ("CERTKEEPER_ACME__TLS_ALPN01_PORT", alpn_port.as_str()),
            ("CERTKEEPER_ACME__DNS_RESOLVERS", resolvers.as_str()),
            ("CERTKEEPER_ACME__VALIDATION_TIMEOUT", "5s"),
        ],
    )
    .await
}

/// The http-01 challenge of an authorization.
fn http01_of(authz: &Value) -> Value {
    authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .expect("http-01 offered")
        .clone()
}

/// Poll an authorization until it leaves pending/processing, calling `each` on every
/// round; a generous deadline guards against hangs only.
async fn settle(c: &Acme, authz_url: &str, mut each: impl FnMut()) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        each();
        let body = c.post(authz_url, None).await.body;
        let st = body["status"].as_str().unwrap_or("").to_string();
        if st != "pending" && st != "processing" {
            return body;
        }
        assert!(Instant::now() < deadline, "{authz_url} stayed {st}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A challenge host streaming an endless body: the server reads a few KiB and stops, so
/// its memory stays where it was, and the challenge is invalid (`incorrectResponse`).
#[tokio::test]
async fn an_endless_http01_body_is_cut_short() {
    let chall = ChallSrv::start();
    let (port, sent) = challenge_host(Arc::new(|_, _| Reply::Endless)).await;
    let s = server(&chall, port, free_port()).await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    c.register().await;
    let order = c.new_order(&[("dns", "endless.hostile.test")]).await;
    assert_eq!(order.status, 201, "{}", order.text);
    let authz_url = order.body["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let ch = http01_of(&c.post(&authz_url, None).await.body);
    let before = s.rss_kib();
    let r = c.post(ch["url"].as_str().unwrap(), Some(json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut peak = before;
    let done = settle(&c, &authz_url, || peak = peak.max(s.rss_kib())).await;
    peak = peak.max(s.rss_kib());
    assert!(sent.load(Ordering::Relaxed) > 0, "the host streamed");
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 64,
        "RSS grew by {grew_mib} MiB (from {before} KiB to {peak} KiB) for one challenge"
    );
    assert_eq!(done["status"], "invalid", "{done}");
    let failed = http01_of(&done);
    assert_eq!(
        failed["error"]["type"], "urn:ietf:params:acme:error:incorrectResponse",
        "{done}"
    );
}

/// Redirects are followed only to http on the http-01 port or https on the tls-alpn-01
/// port: one to another port of 127.0.0.1 never reaches it, and the challenge's error reads
/// the same whether that port is closed, speaks something else, or is an HTTP server. A
/// redirect to https on the tls-alpn-01 port is followed, and a failed handshake there is
/// a `tls` error.
#[tokio::test]
async fn http01_redirects_to_other_ports_are_not_followed() {
    let chall = ChallSrv::start();
    let closed = free_port();
    let (not_http, not_http_hits) = counting_listener(b"SSH-2.0-OpenSSH_9.2\r\n").await;
    let (http, http_hits) =
        counting_listener(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await;
    // Plain HTTP where TLS is expected.
    let (alpn, alpn_hits) =
        counting_listener(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await;
    let keyauths: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let host_port = Arc::new(AtomicU64::new(0));
    let (k, hp) = (keyauths.clone(), host_port.clone());
    let route: Route = Arc::new(move |host, path| {
        let token = path.rsplit('/').next().unwrap_or("").to_string();
        let elsewhere = |port: u16| {
            redirect(format!(
                "http://127.0.0.1:{port}/.well-known/acme-challenge/{token}"
            ))
        };
        match host {
            "closed.hostile.test" => elsewhere(closed),
            "nothttp.hostile.test" => elsewhere(not_http),
            "http.hostile.test" => elsewhere(http),
            "tls.hostile.test" => redirect(format!(
                "https://127.0.0.1:{alpn}/.well-known/acme-challenge/{token}"
            )),
            // An allowed redirect (same scheme and port, another path) is followed.
            "followed.hostile.test" if path.starts_with("/.well-known/") => redirect(format!(
                "http://followed.hostile.test:{}/moved/{token}",
                hp.load(Ordering::SeqCst)
            )),
            _ => match k.lock().unwrap().get(&token) {
                Some(ka) => Reply::Bytes(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ka}",
                        ka.len()
                    )
                    .into_bytes(),
                ),
                None => Reply::Bytes(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec(),
                ),
            },
        }
    });
    let (port, _) = challenge_host(route).await;
    host_port.store(u64::from(port), Ordering::SeqCst);
    let s = server(&chall, port, alpn).await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    c.register().await;
    let names = [
        "tls.hostile.test",
        "closed.hostile.test",
        "nothttp.hostile.test",
        "http.hostile.test",
        "followed.hostile.test",
    ];
    let ids: Vec<(&str, &str)> = names.iter().map(|n| ("dns", *n)).collect();
    let order = c.new_order(&ids).await;
    assert_eq!(order.status, 201, "{}", order.text);
    let mut started = Vec::new();
    for a in order.body["authorizations"].as_array().unwrap() {
        let a = a.as_str().unwrap().to_string();
        let authz = c.post(&a, None).await.body;
        let name = authz["identifier"]["value"].as_str().unwrap().to_string();
        let ch = http01_of(&authz);
        let token = ch["token"].as_str().unwrap().to_string();
        keyauths
            .lock()
            .unwrap()
            .insert(token.clone(), format!("{token}.{}", c.key.thumbprint()));
        let r = c.post(ch["url"].as_str().unwrap(), Some(json!({}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        started.push((a, name, token));
    }
    let mut details = Vec::new();
    for (a, name, token) in &started {
        let done = settle(&c, a, || {}).await;
        if name == "followed.hostile.test" {
            assert_eq!(done["status"], "valid", "{done}");
            continue;
        }
        if name == "tls.hostile.test" {
            assert_eq!(done["status"], "invalid", "{done}");
            let error = &http01_of(&done)["error"];
            assert_eq!(error["type"], "urn:ietf:params:acme:error:tls", "{done}");
            continue;
        }
        assert_eq!(done["status"], "invalid", "{done}");
        let error = &http01_of(&done)["error"];
        assert_eq!(
            error["type"], "urn:ietf:params:acme:error:connection",
            "{done}"
        );
        let detail = error["detail"].as_str().unwrap().to_string();
        for p in [closed, not_http, http] {
            assert!(!detail.contains(&p.to_string()), "{detail}");
        }
        details.push(
            detail
                .replace(name.as_str(), "NAME")
                .replace(token.as_str(), "TOKEN"),
        );
    }
    assert_eq!(details.len(), 3);
    assert!(
        details.iter().all(|d| d == &details[0]),
        "the details tell the targets apart: {details:?}"
    );
    assert_eq!(
        not_http_hits.load(Ordering::SeqCst),
        0,
        "reached the non-HTTP port"
    );
    assert_eq!(http_hits.load(Ordering::SeqCst), 0, "reached the HTTP port");
    assert_eq!(
        alpn_hits.load(Ordering::SeqCst),
        1,
        "https on the tls-alpn-01 port"
    );
}

/// A JWS whose protected header carries `crit` is refused as malformed, and nothing is
/// created.
#[tokio::test]
async fn a_jws_with_a_crit_header_is_refused() {
    let chall = ChallSrv::start();
    let s = server(&chall, free_port(), free_port()).await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    c.register().await;
    let url = c.url("newOrder");
    let mut header = c.header(&url).await;
    header["crit"] = json!(["exp"]);
    header["exp"] = json!(4_102_444_800u64);
    let payload = json!({"identifiers": [{"type": "dns", "value": "crit.hostile.test"}]});
    let body = c.key.sign(&header, Some(&payload));
    let r = c.post_body(&url, &body).await;
    r.assert_problem("malformed");
    assert!(
        r.body["detail"].as_str().unwrap().contains("crit"),
        "{}",
        r.text
    );
    let orders = c
        .post(&format!("{}/orders", c.kid.clone().unwrap()), None)
        .await;
    assert_eq!(orders.body["orders"], json!([]), "{}", orders.text);
}
