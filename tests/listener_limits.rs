//! The listeners against clients that hold connections open: half-open connections are
//! closed by the header-read timeout while `/healthz` keeps answering on both listeners,
//! and the connection caps (over both listeners, per client address) refuse at accept.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Db, TestServer};
use futures::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Generous guard against hangs; no assertion depends on how fast anything is.
const HANG_GUARD: Duration = Duration::from_secs(90);

/// The first bytes of a TLS 1.2/1.3 ClientHello record: the header announces 512 bytes,
/// of which only the start follows.
const HALF_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x11, 0x22, 0x33, 0x44,
];

/// A connection to `port` on 127.0.0.1 from the local address `from`.
async fn connect_from(from: IpAddr, port: u16) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from, 0)).unwrap();
    sock.connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Read until the peer closes; true if it did (EOF or reset) before the hang guard.
async fn closed_by_peer(conn: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// `GET /healthz` over plain HTTP from `from`; the status line (empty when the server
/// closed the connection without answering).
async fn healthz_from(from: IpAddr, port: u16) -> String {
    let mut c = connect_from(from, port).await;
    // A refused connection may be closed before the request is written.
    let _ = c
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(HANG_GUARD, c.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// 3,000 connections that never send a full request head (1,500 on each listener: nothing
/// at all, half a request line, half a TLS ClientHello) are all held at once; `/healthz`
/// still answers on both listeners, and every one of them is then closed by the server's
/// header-read timeout.
#[tokio::test]
async fn half_open_connections_are_closed_by_the_header_timeout() {
    // This process holds 3,000 connections too.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let s = TestServer::start_with(
        Db::Sqlite,
        &[
            ("CERTKEEPER_SERVER__HEADER_READ_TIMEOUT", "15s"),
            ("CERTKEEPER_SERVER__MAX_CONNECTIONS", "0"),
            ("CERTKEEPER_SERVER__MAX_CONNECTIONS_PER_IP", "0"),
        ],
    )
    .await;
    let mut held = Vec::with_capacity(3000);
    for i in 0..3000usize {
        let (port, first): (u16, &[u8]) = match i % 4 {
            0 => (s.http_port, b""),
            1 => (s.http_port, b"GET /healthz HT"),
            2 => (s.https_port, b""),
            _ => (s.https_port, HALF_CLIENT_HELLO),
        };
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        if !first.is_empty() {
            c.write_all(first).await.unwrap();
        }
        held.push(c);
    }
    // Both listeners still serve new clients.
    let plain = reqwest::Client::new()
        .get(s.http_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let tls = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(tls.status(), 200);
    // And the held connections are closed by the server.
    let deadline = Instant::now() + HANG_GUARD;
    let closed = join_all(held.iter_mut().map(|c| closed_by_peer(c, deadline))).await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "{open} of 3000 held connections were never closed");
}

/// With at most 20 connections per address and 30 in all: the 21st from one address is
/// closed at once; once 30 are open, a new address is refused too, until one of them goes
/// and another address is served. Connections admitted are served normally.
#[tokio::test]
async fn connection_caps_refuse_at_accept() {
    let s = TestServer::start_with(
        Db::Sqlite,
        &[
            // Long enough that no connection here is closed for being slow.
            ("CERTKEEPER_SERVER__HEADER_READ_TIMEOUT", "5m"),
            ("CERTKEEPER_SERVER__MAX_CONNECTIONS", "30"),
            ("CERTKEEPER_SERVER__MAX_CONNECTIONS_PER_IP", "20"),
        ],
    )
    .await;
    let port = s.http_port;
    let mut first: Vec<TcpStream> = Vec::new();
    for _ in 0..20 {
        first.push(connect_from(ip(1), port).await);
    }
    let deadline = Instant::now() + HANG_GUARD;
    let mut over = connect_from(ip(1), port).await;
    assert!(
        closed_by_peer(&mut over, deadline).await,
        "the 21st connection from one address is refused (20 open in all)"
    );
    // The server accepts in order, so these ten are admitted before the next one is seen.
    let mut second: Vec<TcpStream> = Vec::new();
    for _ in 0..10 {
        second.push(connect_from(ip(3), port).await);
    }
    assert_eq!(
        healthz_from(ip(4), port).await,
        "",
        "a connection past the overall cap is refused"
    );
    // One goes: there is room again, for another address while the first is at its cap.
    drop(second.pop());
    let mut served = false;
    while !served && Instant::now() < deadline {
        served = healthz_from(ip(2), port).await.contains("200");
    }
    assert!(served, "room again once a connection closed");
    // The connections admitted at first are served.
    let c = &mut first[0];
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(HANG_GUARD, c.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}
