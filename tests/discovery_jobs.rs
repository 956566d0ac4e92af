//! Scheduled discovery scans with an injected clock: two replicas on one database run each
//! due occurrence exactly once (a row lease), a lease left by a dead replica expires, and a
//! certificate that expires between two runs is reported as such; a periodic job's lease is
//! held by one replica at a time. On SQLite and PostgreSQL.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use certkeeper::bootstrap::boot;
use certkeeper::config::Settings;
use certkeeper::jobs::{Leases, StoreLeases};
use certkeeper::services::discovery::{
    ScanSpec, create_scan, fail_abandoned_scans, next_run, parse_cron, run_due_schedules,
};
use certkeeper::services::pki::Actor;
use certkeeper::store::ScheduleRecord;
use certkeeper_ca::{Clock, ManualClock};
use common::Db;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use time::{Duration, OffsetDateTime};

fn addr_block(db: Db) -> [u8; 2] {
    let pid = std::process::id();
    let second = (pid / 11 % 250) as u8;
    match db {
        Db::Sqlite => [(100 + pid % 30) as u8, second],
        Db::Postgres => [(130 + pid % 30) as u8, second],
    }
}

fn serve_cert(addr: SocketAddr, not_after: OffsetDateTime) -> String {
    let mut p = CertificateParams::new(vec!["sched.test".to_string()]).unwrap();
    p.not_before = not_after - Duration::days(90);
    p.not_after = not_after;
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let fp = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        cert.der(),
    ));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = std::net::TcpListener::bind(addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(s).await;
            });
        }
    });
    fp
}

async fn scenario(db: Db) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let b = addr_block(db);
    let net = format!("127.{}.{}.0/24", b[0], b[1]);
    let mut toml = format!("[discovery]\nallow = \"{net}\"\ntimeout = \"2s\"\n");
    let name = format!("ck_jobs_{}_{}", std::process::id(), b[1]);
    if db == Db::Postgres {
        let out = std::process::Command::new("psql")
            .args([
                &common::pg_admin_url(),
                "-q",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base = common::pg_admin_url();
        toml.push_str(&format!(
            "[database]\nurl = \"{}/{name}\"\n",
            base.rsplit_once('/').unwrap().0
        ));
    }
    std::fs::write(dir.path().join("certkeeper.toml"), toml).unwrap();
    let start = OffsetDateTime::from_unix_timestamp(
        OffsetDateTime::now_utc().unix_timestamp() / 3600 * 3600 + 60,
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let settings = Arc::new(Settings::load(dir.path(), None).unwrap());
    let a = boot(settings.clone(), clock.clone()).await.unwrap().pki;
    let r2 = boot(settings, clock.clone()).await.unwrap().pki;

    let ip = IpAddr::V4(Ipv4Addr::new(127, b[0], b[1], 1));
    let port = common::free_port();
    let fp = serve_cert(SocketAddr::new(ip, port), start + Duration::days(2));

    let cron = parse_cron("0 * * * *").unwrap();
    let now = clock.now().unix_timestamp();
    let sched = ScheduleRecord {
        id: certkeeper::store::new_id(),
        name: "hourly".into(),
        spec: json!({"targets": [ip.to_string()], "ports": port.to_string(), "sni": [], "no_sni": false, "starttls": []}),
        cron: "0 * * * *".into(),
        enabled: true,
        next_run: next_run(&cron, now).unwrap(),
        last_scan_id: None,
        created_at: now,
        created_by: "test".into(),
    };
    let ev = Actor::system().event("discovery_schedule.create", "discovery_schedule");
    a.store_for_tests()
        .insert_schedule(&sched, &ev)
        .await
        .unwrap();
    assert_eq!(sched.next_run, now - 60 + 3600);

    // Not due yet.
    assert!(run_due_schedules(&a, "a").await.unwrap().is_empty());

    // Due: both replicas try at once; one scan runs.
    clock.advance(Duration::hours(1));
    let (ra, rb) = tokio::join!(run_due_schedules(&a, "a"), run_due_schedules(&r2, "b"));
    let mut started = ra.unwrap();
    started.extend(rb.unwrap());
    assert_eq!(started.len(), 1, "{started:?}");
    let scan = a.store_for_tests().scan(&started[0]).await.unwrap();
    assert_eq!(scan.status, "succeeded", "{scan:?}");
    assert_eq!(scan.schedule_id.as_deref(), Some(sched.id.as_str()));
    let changes = scan.changes.unwrap();
    assert_eq!(changes["new_certificates"][0]["fingerprint"], fp);
    assert_eq!(changes["expired"], json!([]));
    let s = &a.store_for_tests().list_schedules().await.unwrap()[0];
    assert_eq!(s.next_run, sched.next_run + 3600);
    assert_eq!(s.last_scan_id.as_deref(), Some(started[0].as_str()));
    // The same occurrence does not run again.
    assert!(run_due_schedules(&r2, "b").await.unwrap().is_empty());

    // A replica takes the lease and dies: nobody else runs it until the lease expires.
    clock.advance(Duration::hours(1));
    let now = clock.now().unix_timestamp();
    let claimed = a
        .store_for_tests()
        .claim_due_schedule("dead", now, now + 1800)
        .await
        .unwrap();
    assert!(claimed.is_some());
    assert!(run_due_schedules(&r2, "b").await.unwrap().is_empty());
    clock.advance(Duration::minutes(31));
    assert_eq!(run_due_schedules(&r2, "b").await.unwrap().len(), 1);

    // Three days later the certificate has expired since it was last seen.
    clock.advance(Duration::days(3));
    let (ra, rb) = tokio::join!(run_due_schedules(&a, "a"), run_due_schedules(&r2, "b"));
    let mut started = ra.unwrap();
    started.extend(rb.unwrap());
    assert_eq!(started.len(), 1, "{started:?}");
    let scan = a.store_for_tests().scan(&started[0]).await.unwrap();
    let changes = scan.changes.unwrap();
    assert_eq!(changes["expired"][0]["fingerprint"], fp, "{changes}");
    assert_eq!(changes["new_certificates"], json!([]));
    let eps = a.store_for_tests().inventory_endpoints().await.unwrap();
    assert_eq!(eps.len(), 1);
    assert!(eps[0].findings.contains(&"expired".to_string()), "{eps:?}");
    assert_eq!(a.store_for_tests().list_scans(10).await.unwrap().len(), 3);

    // A scan whose replica stopped mid-run is marked failed once it is too old to be alive.
    let spec = ScanSpec {
        targets: vec![ip.to_string()],
        ports: Some(port.to_string()),
        ..ScanSpec::default()
    };
    let plan = certkeeper::services::discovery::plan_for(&a, &spec)
        .await
        .unwrap();
    let orphan = create_scan(&a, &spec, &plan, &Actor::system(), None)
        .await
        .unwrap();
    clock.advance(Duration::hours(5));
    assert_eq!(fail_abandoned_scans(&r2).await.unwrap(), 0);
    clock.advance(Duration::hours(2));
    assert_eq!(fail_abandoned_scans(&r2).await.unwrap(), 1);
    let orphan = a.store_for_tests().scan(&orphan.id).await.unwrap();
    assert_eq!(orphan.status, "failed");
    assert!(orphan.error.unwrap().starts_with("abandoned"));
    assert_eq!(fail_abandoned_scans(&r2).await.unwrap(), 0);

    // A periodic job's lease: both replicas try at once, one holds it; its holder renews
    // it; the other takes it over once it has lapsed.
    let hold = std::time::Duration::from_secs(90);
    let (la, lb) = (StoreLeases::new(a.clone()), StoreLeases::new(r2.clone()));
    let (ta, tb) = tokio::join!(la.take("job", "a", hold), lb.take("job", "b", hold));
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert!(ta != tb, "exactly one replica holds the lease: {ta} {tb}");
    let (holder, holder_name, other, other_name) = if ta {
        (&la, "a", &lb, "b")
    } else {
        (&lb, "b", &la, "a")
    };
    clock.advance(Duration::seconds(60));
    assert!(!other.take("job", other_name, hold).await.unwrap());
    assert!(holder.take("job", holder_name, hold).await.unwrap());
    clock.advance(Duration::seconds(89));
    assert!(!other.take("job", other_name, hold).await.unwrap());
    clock.advance(Duration::seconds(1));
    assert!(other.take("job", other_name, hold).await.unwrap());
    assert!(!holder.take("job", holder_name, hold).await.unwrap());

    a.store_for_tests().close().await;
    r2.store_for_tests().close().await;
    if db == Db::Postgres {
        let out = std::process::Command::new("psql")
            .args([
                &common::pg_admin_url(),
                "-q",
                "-c",
                &format!("DROP DATABASE {name} WITH (FORCE)"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_scans_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_scans_postgres() {
    scenario(Db::Postgres).await;
}
