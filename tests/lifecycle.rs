//! Time-driven behaviour with an injected clock (no sleeping): the server's own HTTPS
//! certificate is renewed when two thirds of its life have passed, and CRLs are signed
//! again before their nextUpdate. Also `certkeeper init`.

use std::sync::Arc;

use certkeeper::bootstrap::{boot, server_certificate};
use certkeeper::config::Settings;
use certkeeper_ca::{ManualClock, inspect_certificate};
use time::{Duration, OffsetDateTime};

async fn booted(dir: &std::path::Path) -> (certkeeper::bootstrap::Booted, Arc<ManualClock>) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = Arc::new(Settings::load(dir, None).unwrap());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    (boot(settings, clock.clone()).await.unwrap(), clock)
}

#[tokio::test]
async fn server_certificate_renews_at_two_thirds_of_its_life() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = booted(dir.path()).await;
    let (first, _) = server_certificate(&b.pki).await.unwrap();
    let first_info = inspect_certificate(&first[0]).unwrap();
    assert_eq!(first_info.dns_names, vec!["localhost".to_string()]);
    // The server CA signs it directly; clients pin that CA (server-ca.pem), so only the
    // leaf is served.
    assert_eq!(first.len(), 1, "the leaf, not the server CA");
    let server_ca = b
        .pki
        .store_for_tests()
        .get_ca("certkeeper-server-ca")
        .await
        .unwrap();
    assert_eq!(first_info.issuer, server_ca.subject);
    // Still fresh: the same certificate is served.
    clock.advance(Duration::days(19));
    let (again, _) = server_certificate(&b.pki).await.unwrap();
    assert_eq!(again[0], first[0]);
    // Less than a third of its 30 days left: a new one.
    clock.advance(Duration::days(2));
    let (renewed, key) = server_certificate(&b.pki).await.unwrap();
    assert_ne!(renewed[0], first[0]);
    let info = inspect_certificate(&renewed[0]).unwrap();
    assert!(info.not_after > first_info.not_after);
    assert!(info.not_before > first_info.not_before + Duration::days(20));
    // The key is usable by rustls.
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
    assert!(rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).is_ok());
    // A restart on the same data keeps serving the renewed one.
    let (again, _) = server_certificate(&b.pki).await.unwrap();
    assert_eq!(again[0], renewed[0]);
}

#[tokio::test]
async fn crls_are_signed_again_before_next_update() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = booted(dir.path()).await;
    let cas = b.pki.store_for_tests().list_cas().await.unwrap();
    assert_eq!(
        b.pki.refresh_due_crls().await.unwrap(),
        cas.len(),
        "every active CA gets a CRL"
    );
    assert_eq!(
        b.pki.refresh_due_crls().await.unwrap(),
        0,
        "fresh CRLs are left alone"
    );
    let (der1, this1, next1) = b
        .pki
        .store_for_tests()
        .get_crl(&cas[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next1 - this1, 24 * 3600 + 60);
    clock.advance(Duration::hours(11));
    assert_eq!(b.pki.refresh_due_crls().await.unwrap(), 0);
    clock.advance(Duration::hours(2));
    assert_eq!(
        b.pki.refresh_due_crls().await.unwrap(),
        cas.len(),
        "past half-life: re-signed"
    );
    let (der2, this2, next2) = b
        .pki
        .store_for_tests()
        .get_crl(&cas[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(der1, der2);
    assert_eq!(this2 - this1, 13 * 3600);
    assert!(next2 > next1);
    // The CRL handed out is never one past its nextUpdate.
    clock.advance(Duration::hours(30));
    let der3 = b.pki.crl(&cas[0].id).await.unwrap();
    let (_, _, next3) = b
        .pki
        .store_for_tests()
        .get_crl(&cas[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(der3, der2);
    assert!(next3 > clock_now(&clock) + 12 * 3600);
}

fn clock_now(c: &ManualClock) -> i64 {
    use certkeeper_ca::Clock;
    c.now().unix_timestamp()
}

#[test]
fn init_does_first_start_work_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_certkeeper"))
            .args(["init", "--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = String::from_utf8_lossy(&first.stdout);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    assert!(
        out.contains(token.trim()),
        "the token is printed once: {out}"
    );
    let root = std::fs::read_to_string(data.join("root.pem")).unwrap();
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----"));
    let server_ca = std::fs::read_to_string(data.join("server-ca.pem")).unwrap();
    assert!(server_ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(
        server_ca, root,
        "the server CA is not the root profiles issue under"
    );
    assert!(out.contains("server-ca.pem"), "{out}");
    let second = run();
    assert!(second.status.success());
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(!out.contains("admin token"), "{out}");
    assert_eq!(
        std::fs::read_to_string(data.join("root.pem")).unwrap(),
        root
    );
    assert_eq!(
        std::fs::read_to_string(data.join("admin.token")).unwrap(),
        token
    );
}
