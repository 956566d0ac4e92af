//! The per-host limit holds: however many ports one address has, only about the limit of
//! probes are connected to it at once. Counted by the listeners themselves (connections
//! open at the same moment), not timed. A listener notices a probe's hang-up a moment after
//! the probe has released its slot, so the count may briefly exceed the limit: the bound
//! asserted is twice the limit, far below the twelve a scan without the limit opens.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use certkeeper_discovery::{PortSet, ProbeConfig, ScanOptions, ScanPlan, SniMode, Target, scan};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_limit_bounds_open_connections() {
    let pid = std::process::id();
    let ip = IpAddr::V4(Ipv4Addr::new(
        127,
        200 + (pid % 50) as u8,
        (pid / 50 % 250) as u8,
        9,
    ));
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut ports = Vec::new();
    for _ in 0..12 {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
        ports.push(listener.local_addr().unwrap().port());
        let (open, peak, accepted) = (open.clone(), peak.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let open = open.clone();
                tokio::spawn(async move {
                    // Say nothing: the probe's handshake times out and it hangs up.
                    let mut buf = [0u8; 1024];
                    let mut sock = sock;
                    use tokio::io::AsyncReadExt;
                    while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    }
    let targets: Vec<Target> = vec![ip.to_string().parse().unwrap()];
    let plan = ScanPlan::resolve(&targets, PortSet::list(&ports), SniMode::Auto)
        .await
        .unwrap();
    let per_host = 2;
    let options = ScanOptions {
        concurrency: 64,
        per_host,
        packets_per_second: None,
        probe: ProbeConfig {
            handshake_timeout: Duration::from_millis(300),
            ..ProbeConfig::default()
        },
    };
    let (mut rx, _) = scan(Arc::new(plan), options).unwrap();
    let mut reports = 0;
    while let Some(r) = rx.recv().await {
        assert!(r.outcome.is_err(), "the listeners never speak TLS");
        reports += 1;
    }
    assert_eq!(reports, 12);
    assert_eq!(accepted.load(Ordering::SeqCst), 12, "every port was probed");
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= 2 * per_host,
        "{peak} connections were open to one host at once; the limit is {per_host}, the bound twice that"
    );
}
