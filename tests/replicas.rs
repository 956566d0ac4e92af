//! Several replicas on one PostgreSQL database: three servers behind haproxy (TCP mode)
//! restarted one after another with SIGTERM while ACME clients (instant-acme) keep ordering
//! certificates through haproxy; and each leased periodic job running once per cluster.

mod acme_support;
mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acme_support::{ChallSrv, Http01, csr};
use common::{Db, TestServer, free_port};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use reqwest::Method;

/// A free port below the kernel's ephemeral range, for a replica that must come back on
/// the same port: no outgoing connection, and no other test's `free_port` (port 0), can
/// take it while the replica restarts.
fn lasting_port() -> u16 {
    // Ports handed out already, so that replicas not yet started do not share one.
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(32768);
    let (from, to) = (10_000u16, low.max(10_001));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut next = u64::from(std::process::id()) << 32 | u64::from(nanos);
    let mut taken = TAKEN.lock().unwrap();
    for _ in 0..1000 {
        next = next
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = from + u16::try_from((next >> 33) % u64::from(to - from)).unwrap();
        if !taken.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.push(port);
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

/// One replica: a `certkeeper serve` process on the first server's database and master
/// key, on fixed ports so that it comes back where the load balancer expects it.
struct Replica {
    child: Option<Child>,
    https_port: u16,
    http_port: u16,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    starts: usize,
}

impl Replica {
    fn new(first: &TestServer, env: &[(&str, &str)]) -> Replica {
        let master = std::fs::read_to_string(first.data_dir.join("master.key")).unwrap();
        let mut all: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push((
            "CERTKEEPER_DATABASE__URL".into(),
            first.database_url.clone().expect("PostgreSQL"),
        ));
        all.push(("CERTKEEPER_CA__MASTER_KEY".into(), master.trim().into()));
        Replica {
            child: None,
            https_port: lasting_port(),
            http_port: lasting_port(),
            dir: tempfile::tempdir().unwrap(),
            env: all,
            starts: 0,
        }
    }

    /// Start the process and wait until it answers `/readyz`.
    async fn start(&mut self, client: &reqwest::Client) {
        self.starts += 1;
        let log =
            std::fs::File::create(self.dir.path().join(format!("log-{}", self.starts))).unwrap();
        let mut cmd = Command::new(common::bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .env(
                "CERTKEEPER_SERVER__HTTPS_LISTEN",
                format!("127.0.0.1:{}", self.https_port),
            )
            .env(
                "CERTKEEPER_SERVER__HTTP_LISTEN",
                format!("127.0.0.1:{}", self.http_port),
            )
            .env(
                "CERTKEEPER_SERVER__LOG_LEVEL",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("replica starts"));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("replica exited early with {status}: {}", self.logs());
            }
            if let Ok(r) = client
                .get(format!("https://localhost:{}/readyz", self.https_port))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica not ready: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, and wait for the process to exit on its own with status 0.
    async fn terminate(&mut self) {
        self.sigterm();
        self.exited().await;
    }

    /// Send SIGTERM.
    fn sigterm(&self) {
        let child = self.child.as_ref().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
    }

    /// Wait (hang guard: two minutes) for the process to exit; it must exit with status 0.
    async fn exited(&mut self) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("replica did not exit after SIGTERM: {}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            status.success(),
            "a drained replica exits 0, got {status}: {}",
            self.logs()
        );
    }

    fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("log-{n}")))
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// haproxy in TCP mode on a free port in front of `backends` (HTTPS ports): a connection
/// refused by a stopped replica is tried again on another one.
struct Haproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(backends: &[u16]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!("    server r{i} 127.0.0.1:{p} check inter 200ms fall 1 rise 2\n")
            })
            .collect();
        let config = format!(
            "global\n    maxconn 2000\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 5m\n    \
             timeout server 5m\n    retries 10\n    option redispatch 1\n\
             listen acme\n    bind 127.0.0.1:{port}\n    balance roundrobin\n{servers}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let check = Command::new("haproxy")
            .args(["-c", "-f", common::p(&path)])
            .output()
            .expect("haproxy (Debian package haproxy) runs");
        assert!(
            check.status.success(),
            "haproxy config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .args(["-db", "-f", common::p(&path)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Haproxy {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the ACME clients did.
#[derive(Default)]
struct Outcome {
    /// (name, leaf DER) of every certificate received.
    issued: Vec<(String, Vec<u8>)>,
    /// Why each failed flow failed.
    failed: Vec<String>,
}

/// One whole ACME flow for `name` over `account`: order, http-01, finalize, download.
/// Returns the leaf certificate (DER).
async fn flow(account: &Account, http01: &Http01, name: &str) -> Result<Vec<u8>, String> {
    // Generous polling: a validation may be taken over by another replica.
    let patience = RetryPolicy::new().timeout(Duration::from_secs(180));
    let ids = [Identifier::Dns(name.into())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let mut ch = authz
            .challenge(ChallengeType::Http01)
            .ok_or("no http-01 challenge")?;
        http01.put(&ch.token, ch.key_authorization().as_str());
        ch.set_ready()
            .await
            .map_err(|e| format!("challenge: {e}"))?;
    }
    let status = order
        .poll_ready(&patience)
        .await
        .map_err(|e| format!("poll ready: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("order {status:?}: {:?}", order.state()));
    }
    order
        .finalize_csr(&csr(&[name]))
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    let pem = order
        .poll_certificate(&patience)
        .await
        .map_err(|e| format!("certificate: {e}"))?;
    let chain =
        certkeeper_ca::parse_pem_or_der_certs(pem.as_bytes()).map_err(|e| format!("chain: {e}"))?;
    chain.into_iter().next().ok_or_else(|| "empty chain".into())
}

/// Three replicas behind haproxy, each restarted with SIGTERM in turn while four ACME
/// clients keep ordering through haproxy: no flow fails, every replica exits 0, and every
/// certificate a client received is known to the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_sigterm_restart_under_acme_load_fails_no_flow() {
    let chall = ChallSrv::start();
    // Each validation takes a second, so that a replica is stopped with some under way.
    let http01 = Http01::start_slow(Duration::from_secs(1)).await;
    let (h, r) = (http01.port.to_string(), chall.resolvers_setting());
    let env = [
        ("CERTKEEPER_ACME__HTTP01_PORT", h.as_str()),
        ("CERTKEEPER_ACME__DNS_RESOLVERS", r.as_str()),
        ("CERTKEEPER_SERVER__SHUTDOWN_GRACE", "30s"),
        // Four clients from one address, through one proxy address.
        ("CERTKEEPER_SERVER__MAX_CONNECTIONS_PER_IP", "0"),
    ];
    // The first server creates the database, the CAs and the master key, then stops:
    // the three replicas below are all there is while the load runs.
    let mut first = TestServer::start_with(Db::Postgres, &env).await;
    first.stop();
    let mut replicas: Vec<Replica> = (0..3).map(|_| Replica::new(&first, &env)).collect();
    for r in &mut replicas {
        r.start(&first.client).await;
    }
    let proxy = Haproxy::start(&replicas.iter().map(|r| r.https_port).collect::<Vec<_>>());
    // The ACME clients trust the server CA for the replicas' HTTPS.
    let root = first.write("server-ca.pem", &first.server_ca_pem);
    let directory = format!("https://localhost:{}/acme/directory", proxy.port);

    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (account, _) = Account::builder_with_root(&root)
            .unwrap()
            .create(
                &NewAccount {
                    contact: &[],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                directory.clone(),
                None,
            )
            .await
            .expect("account through haproxy");
        let (outcome, done, stop, http01) =
            (outcome.clone(), done.clone(), stop.clone(), http01.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let name = format!("c{c}-{n}.replicas.test");
                let r = flow(&account, &http01, &name).await;
                let mut o = outcome.lock().unwrap();
                match r {
                    Ok(leaf) => o.issued.push((name, leaf)),
                    Err(e) => o.failed.push(format!("{name}: {e}")),
                }
                drop(o);
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    // Waits (hang guard: five minutes) until `more` further flows have ended.
    let progress = |more: usize| {
        let done = done.clone();
        async move {
            let target = done.load(Ordering::SeqCst) + more;
            let deadline = Instant::now() + Duration::from_secs(300);
            while done.load(Ordering::SeqCst) < target {
                assert!(Instant::now() < deadline, "ACME load made no progress");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    progress(4).await;
    for r in &mut replicas {
        r.terminate().await;
        progress(2).await;
        r.start(&first.client).await;
        progress(4).await;
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        tokio::time::timeout(Duration::from_secs(300), c)
            .await
            .expect("clients finish their last flow")
            .unwrap();
    }

    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    eprintln!(
        "rolling restart: {} flows succeeded, {} failed",
        outcome.issued.len(),
        outcome.failed.len()
    );
    assert!(
        outcome.failed.is_empty(),
        "{} of {} ACME flows failed during the rolling restart: {:#?}\n{}",
        outcome.failed.len(),
        outcome.failed.len() + outcome.issued.len(),
        outcome.failed,
        replicas.iter().map(Replica::logs).collect::<String>()
    );
    assert!(outcome.issued.len() >= 16, "{} flows", outcome.issued.len());
    // Nothing a stopped replica had under way was left for another to take over.
    for r in &replicas {
        let logs = r.logs();
        for abandoned in [
            "left unfinished",
            "finalization was interrupted",
            "stopped by shutdown",
            "run interrupted by shutdown",
            "still open after",
            "still running after",
        ] {
            assert!(!logs.contains(abandoned), "{abandoned}: {logs}");
        }
    }
    // Every certificate a client received is in the store, found by its name.
    let api = format!("https://localhost:{}", replicas[0].https_port);
    for (name, leaf) in &outcome.issued {
        let resp = first
            .client
            .request(Method::GET, format!("{api}/api/v1/certificates"))
            .query(&[("san", name.as_str())])
            .bearer_auth(&first.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let page: serde_json::Value = resp.json().await.unwrap();
        let fingerprint = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf));
        let known: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["fingerprint_sha256"].as_str())
            .collect();
        assert_eq!(known, [fingerprint.as_str()], "{name}: {page}");
    }
}

/// A local webhook receiver: keeps the JSON body of every request.
async fn webhook_receiver() -> (Arc<Mutex<Vec<serde_json::Value>>>, String) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let g = g.clone();
        async move {
            g.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or_default());
            "ok"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (got, base)
}

/// The expiry of job `name`'s lease in the first server's database, if one was taken.
fn lease_expiry(first: &TestServer, name: &str) -> Option<i64> {
    lease_row(first, name).map(|(_, expires)| expires)
}

/// Who holds the job lease `name`, and until when (Unix seconds).
fn lease_row(first: &TestServer, name: &str) -> Option<(String, i64)> {
    let out = Command::new("psql")
        .args([
            first.database_url.as_deref().unwrap(),
            "-tAc",
            &format!("SELECT owner, expires_at FROM job_leases WHERE name = '{name}'"),
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (owner, expires) = row.split_once('|')?;
    Some((owner.to_string(), expires.parse().ok()?))
}

/// Three replicas each running the alert sweep (every 10 s) and delivery (every second):
/// a certificate crossing expiry thresholds gives one webhook message per threshold, not
/// one per replica, however many sweeps run after it. Meanwhile a discovery schedule due
/// every 5 s runs one scan per occurrence, not one per replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_send_one_alert_per_threshold() {
    let (got, base) = webhook_receiver().await;
    let env = [
        ("CERTKEEPER_JOBS__ALERT_SWEEP", "10s"),
        ("CERTKEEPER_JOBS__ALERT_DELIVERY", "1s"),
        ("CERTKEEPER_JOBS__DISCOVERY_SCHEDULES", "1s"),
        ("CERTKEEPER_DISCOVERY__ALLOW", "127.0.0.1/32"),
        ("CERTKEEPER_DISCOVERY__TIMEOUT", "1s"),
    ];
    let first = TestServer::start_with(Db::Postgres, &env).await;
    let mut replicas: Vec<Replica> = (0..2).map(|_| Replica::new(&first, &env)).collect();
    for r in &mut replicas {
        r.start(&first.client).await;
    }
    let (st, ch) = first
        .api(
            Method::POST,
            "/alerts/channels",
            Some(serde_json::json!({"name": "hook", "kind": "webhook", "url": format!("{base}/hook")})),
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    let (st, rule) = first
        .api(
            Method::POST,
            "/alerts/rules",
            Some(serde_json::json!({
                "name": "soon", "channels": ["hook"], "thresholds": [30, 7],
                "selector": {"san": "*.replicas.test"},
            })),
        )
        .await;
    assert_eq!(st, 201, "{rule}");
    // A scan every 5 s of a port nothing listens on (each scan finishes at once).
    let schedule_created = time::OffsetDateTime::now_utc().unix_timestamp();
    let (st, sched) = first
        .api(
            Method::POST,
            "/discovery/schedules",
            Some(serde_json::json!({
                "name": "every-5s", "cron": "*/5 * * * * *",
                "scan": {"targets": ["127.0.0.1"], "ports": free_port().to_string()},
            })),
        )
        .await;
    assert_eq!(st, 201, "{sched}");
    // Five days left: past both thresholds.
    let (st, cert) = first
        .api(
            Method::POST,
            "/certificates/generate",
            Some(serde_json::json!({
                "profile": "default", "dns_names": ["soon.replicas.test"], "validity_days": 5,
            })),
        )
        .await;
    assert_eq!(st, 201, "{cert}");

    // (threshold, certificate fingerprint) of each expiry message received.
    let crossings = || -> Vec<(serde_json::Value, serde_json::Value)> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "io.certkeeper.certificate.expiring")
            .map(|b| {
                (
                    b["data"]["threshold_days"].clone(),
                    b["data"]["certificates"][0]["fingerprint"].clone(),
                )
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while crossings().is_empty() {
        assert!(Instant::now() < deadline, "no alert arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let four more sweeps run (the lease is renewed before each), with deliveries
    // running on every replica in between.
    let mut seen = vec![lease_expiry(&first, "alert-sweep").expect("the sweep is leased")];
    let deadline = Instant::now() + Duration::from_secs(180);
    while seen.len() < 5 {
        assert!(Instant::now() < deadline, "the sweep stopped running");
        let e = lease_expiry(&first, "alert-sweep").unwrap();
        if Some(&e) != seen.last() {
            seen.push(e);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut all = crossings();
    let n = all.len();
    all.sort_by_key(|(t, f)| (t.to_string(), f.to_string()));
    all.dedup();
    assert_eq!(
        all.len(),
        n,
        "a threshold was announced twice: {:?}",
        got.lock().unwrap()
    );
    eprintln!("expiry messages: {all:?}");
    let fingerprint = cert["certificate"]["fingerprint_sha256"]
        .as_str()
        .or(cert["fingerprint_sha256"].as_str())
        .expect("the certificate's fingerprint");
    assert!(
        all.iter().all(|(_, f)| f.as_str() == Some(fingerprint)),
        "{all:?} {cert}"
    );
    let ids: Vec<_> = got
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    let mut unique = ids.clone();
    unique.sort_by_key(|v| v.to_string());
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an event was delivered twice: {ids:?}"
    );

    // One scan per occurrence of the schedule: never more scans than occurrences since it
    // was made (three replicas each running it would make about three times as many).
    let (st, scans) = first
        .api(Method::GET, "/discovery/scans?limit=1000", None)
        .await;
    let checked = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(st, 200, "{scans}");
    let scheduled = scans["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["schedule_id"] == sched["id"])
        .count();
    let occurrences = (checked / 5 - schedule_created / 5) as usize;
    eprintln!("{scheduled} scheduled scans for {occurrences} occurrences");
    assert!(
        scheduled <= occurrences && scheduled * 2 >= occurrences,
        "{scheduled} scans for {occurrences} occurrences: {scans}"
    );
}

/// A rolling upgrade: the database already carries a migration of a newer release (a new
/// table and a new column, recorded in `_sqlx_migrations`) while this release's replicas
/// keep running and restarting on it: they start, serve and issue.
#[tokio::test]
async fn a_replica_restarts_on_a_database_a_newer_release_migrated() {
    let mut first = TestServer::start(Db::Postgres).await;
    let newer = "CREATE TABLE future_feature (id TEXT PRIMARY KEY);
        ALTER TABLE certificates ADD COLUMN future_note TEXT;
        INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
        VALUES (9999, 'a newer release', true, '\\x00'::bytea, 0);";
    let out = Command::new("psql")
        .args([
            first.database_url.as_deref().unwrap(),
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            newer,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second replica starts on it, and the first restarts on it.
    let mut replica = Replica::new(&first, &[]);
    replica.start(&first.client).await;
    first.stop();
    first.spawn(&[]).await;
    for port in [first.https_port, replica.https_port] {
        let resp = first
            .client
            .post(format!("https://localhost:{port}/api/v1/certificates/generate"))
            .bearer_auth(&first.token)
            .json(&serde_json::json!({"profile": "default", "dns_names": [format!("p{port}.upgrade.test")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
}

/// Reads from `sock` until the end of a response head; returns it, lower-cased.
async fn response_head(sock: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(60), sock.read(&mut chunk))
            .await
            .expect("a response (hang guard)")
            .unwrap();
        assert!(
            n > 0,
            "closed before a response: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).to_lowercase()
}

/// What SIGTERM does to a replica: new connections are refused at once, an idle
/// keep-alive connection is closed, a request in flight (its body still arriving) is
/// answered with `Connection: close`, the job leases are handed back, and the process
/// exits 0.
#[tokio::test]
async fn sigterm_refuses_new_connections_and_closes_keep_alive_ones_after_their_response() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut first = TestServer::start(Db::Postgres).await;
    // The replica is the only server: it holds every job lease once the first server's
    // have gone (handed back at its exit, or lapsed if it had to be killed).
    let first_owner = lease_row(&first, "crl-refresh").map(|(owner, _)| owner);
    first.stop();
    let mut replica = Replica::new(&first, &[("CERTKEEPER_SERVER__SHUTDOWN_GRACE", "1m")]);
    replica.start(&first.client).await;
    let addr = ("127.0.0.1", replica.http_port);
    // Hang guard: a lapsing lease (90 s) and the replica's next tick (60 s).
    let deadline = Instant::now() + Duration::from_secs(180);
    let replica_owner = loop {
        match lease_row(&first, "crl-refresh") {
            Some((owner, _)) if Some(&owner) != first_owner.as_ref() => break owner,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the replica took no job lease: {}",
            replica.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // An idle keep-alive connection: one request answered, kept open.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = response_head(&mut idle).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    // A request in flight: its head sent, its body not yet.
    let body = b"not an OCSP request";
    let mut busy = tokio::net::TcpStream::connect(addr).await.unwrap();
    busy.write_all(
        format!(
            "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    replica.sigterm();
    // New connections are refused once the listener is gone (hang guard: one minute).
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The idle connection is closed.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(60), idle.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed (hang guard)")
        .unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&rest));
    // The request in flight is answered, told to close, and the connection ends.
    busy.write_all(body).await.unwrap();
    let head = response_head(&mut busy).await;
    assert!(head.starts_with("http/1.1 "), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), busy.read_to_end(&mut rest))
        .await
        .expect("the connection ends after its response (hang guard)")
        .unwrap();
    replica.exited().await;
    // Its job leases were handed back: another replica takes the jobs at its next tick.
    for job in ["crl-refresh", "alert-sweep"] {
        let held = lease_row(&first, job).map(|(owner, _)| owner);
        assert_ne!(
            held.as_ref(),
            Some(&replica_owner),
            "{job} still leased: {}",
            replica.logs()
        );
    }
}
