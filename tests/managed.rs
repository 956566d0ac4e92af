//! Managed certificates with an injected clock (no sleeping): a certificate renews at its
//! renewal point, every new version reaches both an Azure Key Vault (a local server
//! following Microsoft's REST contract) and AWS Certificate Manager (moto), and a
//! destination that fails twice catches up after its backoff.

mod cloud;
mod common;

use std::sync::Arc;

use certkeeper::bootstrap::boot;
use certkeeper::config::Settings;
use certkeeper::services::managed::{Managed, NewDestination, NewManaged};
use certkeeper::services::pki::Actor;
use certkeeper::store::{BindingRecord, ManagedRequest};
use certkeeper_ca::{KeyAlgorithm, ManualClock};
use certkeeper_sync::{AwsAcm, AwsAcmConfig, AwsCredentials};
use cloud::azure::{CLIENT_ID, CLIENT_SECRET, FakeAzure};
use cloud::moto::Moto;
use common::Db;
use serde_json::json;
use time::{Duration, OffsetDateTime};

/// A fresh PostgreSQL database on the machine's server; its URL.
fn fresh_pg_database() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "ck_managed_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let admin = common::pg_admin_url();
    let out = std::process::Command::new("psql")
        .args([&admin, "-q", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

async fn booted(
    db: Db,
    dir: &std::path::Path,
    start: OffsetDateTime,
) -> (certkeeper::bootstrap::Booted, Arc<ManualClock>) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut settings = Settings::load(dir, None).unwrap();
    common::any_name_under_default(&mut settings);
    if db == Db::Postgres {
        settings.database.url = fresh_pg_database();
    }
    // Whole seconds, as stored.
    let clock = Arc::new(ManualClock::new(start.replace_nanosecond(0).unwrap()));
    (
        boot(Arc::new(settings), clock.clone()).await.unwrap(),
        clock,
    )
}

async fn binding(managed: &Managed, m: &str, dest: &str) -> BindingRecord {
    let d = managed
        .pki()
        .store_for_tests()
        .get_destination(dest)
        .await
        .unwrap();
    managed
        .pki()
        .store_for_tests()
        .get_binding(m, &d.id)
        .await
        .unwrap()
}

async fn acm_pem(acm: &AwsAcm, arn: &str) -> String {
    acm.client()
        .get_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .unwrap()
        .certificate()
        .unwrap()
        .to_string()
}

fn same_pem(a: &str, b: &str) -> bool {
    pem::parse(a.trim()).unwrap().contents() == pem::parse(b.trim()).unwrap().contents()
}

#[tokio::test]
async fn renewal_and_sync_sqlite() {
    renewal_and_sync(Db::Sqlite).await;
}

#[tokio::test]
async fn renewal_and_sync_postgres() {
    renewal_and_sync(Db::Postgres).await;
}

async fn renewal_and_sync(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    // Start in the past, so that every version is valid by the wall clock too (moto reads
    // the certificates' validity against real time).
    let (b, clock) = booted(
        db,
        dir.path(),
        OffsetDateTime::now_utc() - Duration::days(70),
    )
    .await;
    let managed = Managed::new(b.pki.clone());
    let azure = FakeAzure::start().await;
    let moto = Moto::start();
    let system = Actor::system();
    managed
        .create_destination(
            NewDestination {
                name: "vault".into(),
                kind: "azure_key_vault".into(),
                config: azure.config("web-example"),
                credentials: Some(json!({ "client_secret": CLIENT_SECRET })),
                remove_on_unbind: false,
            },
            &system,
        )
        .await
        .unwrap();
    managed
        .create_destination(
            NewDestination {
                name: "acm".into(),
                kind: "aws_acm".into(),
                config: moto.config(),
                credentials: Some(Moto::credentials()),
                remove_on_unbind: false,
            },
            &system,
        )
        .await
        .unwrap();
    let m = managed
        .create(
            NewManaged {
                name: "web".into(),
                profile: "default".into(),
                request: ManagedRequest {
                    dns_names: vec!["web.example.com".into()],
                    ip_addresses: vec![],
                    common_name: None,
                    key_algorithm: KeyAlgorithm::EcdsaP256,
                    validity_days: Some(90),
                },
                renew_at_percent: None,
            },
            &system,
        )
        .await
        .unwrap();
    assert_eq!(m.current_version, 1);
    let store = b.pki.store_for_tests();
    let v1 = store.managed_versions(&m.id).await.unwrap();
    let c1 = store.get_certificate(&v1[0].certificate_id).await.unwrap();
    assert_eq!(
        m.next_renewal_at,
        Some(c1.not_before + (c1.not_after - c1.not_before) * (2.0 / 3.0)),
        "renewal point defaults to two thirds of the life"
    );
    assert!(c1.managed, "the key is kept (sealed) with the certificate");
    managed.bind(&m.id, "vault", &system).await.unwrap();
    managed.bind(&m.id, "acm", &system).await.unwrap();

    // First push: both destinations get version 1.
    assert_eq!(managed.run_due().await.unwrap(), (0, 2));
    let az1 = binding(&managed, &m.id, "vault").await;
    let acm1 = binding(&managed, &m.id, "acm").await;
    assert_eq!(
        (az1.pushed_version, acm1.pushed_version),
        (Some(1), Some(1))
    );
    let arn = acm1.remote_id.clone().unwrap();
    assert!(arn.starts_with("arn:aws:acm:us-east-1:"), "{arn}");
    {
        let seen = azure.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        assert_eq!(seen.token_requests.len(), 1);
        let form = &seen.token_requests[0];
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], CLIENT_ID);
        assert_eq!(form["client_secret"], CLIENT_SECRET);
        assert_eq!(form["scope"], "https://vault.azure.net/.default");
        assert_eq!(seen.imports.len(), 1);
        let imp = &seen.imports[0];
        assert_eq!(imp.name, "web-example");
        assert_eq!(
            imp.query.get("api-version").map(String::as_str),
            Some("7.4")
        );
        assert_eq!(imp.authorization, format!("Bearer {}", seen.tokens[0]));
        assert!(imp.content_type.starts_with("application/json"));
        assert_eq!(
            imp.body["policy"]["secret_props"]["contentType"],
            "application/x-pem-file"
        );
        assert_eq!(imp.body["tags"]["owner"], "certkeeper-tests");
        let value = imp.body["value"].as_str().unwrap();
        assert!(
            value.starts_with("-----BEGIN PRIVATE KEY-----"),
            "PKCS#8 key first"
        );
        assert_eq!(imp.certificate_der, c1.der, "the leaf is our version 1");
        assert_eq!(
            az1.remote_id.as_deref(),
            Some(format!("{}/certificates/web-example", azure.url).as_str())
        );
        assert_eq!(az1.remote_version, imp.version);
    }
    let acm = AwsAcm::new(
        serde_json::from_value::<AwsAcmConfig>(moto.config()).unwrap(),
        Some(serde_json::from_value::<AwsCredentials>(Moto::credentials()).unwrap()),
    )
    .await
    .unwrap();
    assert!(same_pem(&acm_pem(&acm, &arn).await, &pem_of(&c1.der)));
    let tags = acm
        .client()
        .list_tags_for_certificate()
        .certificate_arn(&arn)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, Option<String>)> = tags
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().map(str::to_string)))
        .collect();
    assert!(
        tags.contains(&("env".into(), Some("test".into()))),
        "{tags:?}"
    );
    assert!(tags.contains(&("owner".into(), Some("certkeeper-tests".into()))));

    // Not due before two thirds of 90 days.
    clock.advance(Duration::days(59));
    assert_eq!(managed.run_due().await.unwrap(), (0, 0));
    // Due: version 2 is issued and pushed to both.
    clock.advance(Duration::days(1) + Duration::minutes(1));
    assert_eq!(managed.run_due().await.unwrap(), (1, 2));
    let m2 = store.get_managed(&m.id).await.unwrap();
    assert_eq!(m2.current_version, 2);
    let versions = store.managed_versions(&m.id).await.unwrap();
    let c2 = store
        .get_certificate(&versions[0].certificate_id)
        .await
        .unwrap();
    assert_ne!(c2.der, c1.der);
    assert!(m2.next_renewal_at.unwrap() > clock_now(&clock) + Duration::days(59));
    let az2 = binding(&managed, &m.id, "vault").await;
    let acm2 = binding(&managed, &m.id, "acm").await;
    assert_eq!(
        (az2.pushed_version, acm2.pushed_version),
        (Some(2), Some(2))
    );
    assert_eq!(acm2.remote_id.as_deref(), Some(arn.as_str()), "same ARN");
    assert!(same_pem(&acm_pem(&acm, &arn).await, &pem_of(&c2.der)));
    assert_eq!(az2.remote_id, az1.remote_id, "same Key Vault certificate");
    assert_ne!(
        az2.remote_version, az1.remote_version,
        "a new Key Vault version"
    );
    {
        let seen = azure.seen();
        assert_eq!(seen.imports.len(), 2);
        assert_eq!(seen.imports[1].certificate_der, c2.der);
        assert_eq!(seen.token_requests.len(), 1, "the token is cached");
    }

    // Key Vault fails twice (503 with Retry-After); ACM takes version 3 at once, Key Vault
    // after its backoff.
    azure.seen().fail_imports = 2;
    managed.renew_now(&m.id, &system).await.unwrap();
    assert_eq!(managed.run_due().await.unwrap(), (0, 1));
    let az = binding(&managed, &m.id, "vault").await;
    assert_eq!((az.pushed_version, az.failures), (Some(2), 1));
    assert!(az.last_error.unwrap().contains("throttled"));
    assert_eq!(az.next_attempt_at, clock_now(&clock) + Duration::minutes(1));
    assert_eq!(
        binding(&managed, &m.id, "acm").await.pushed_version,
        Some(3)
    );
    // Where each version lives, from sync state: ACM holds 3, Key Vault still 2 with its
    // error (destinations lag through sync, not stale deployments).
    let rec = managed.get(&m.id).await.unwrap();
    let d = managed.deployments(rec).await.unwrap();
    let mut held: Vec<(String, i64, bool)> = d
        .places
        .iter()
        .map(|p| {
            assert_eq!(
                p.kind,
                certkeeper::services::managed::PlaceKind::Destination
            );
            assert!(p.stale_since.is_none());
            (p.name.clone(), p.version, p.ok)
        })
        .collect();
    held.sort();
    assert_eq!(
        held,
        vec![("acm".into(), 3, true), ("vault".into(), 2, false)]
    );
    assert_eq!(managed.run_due().await.unwrap(), (0, 0), "backing off");
    clock.advance(Duration::minutes(1));
    assert_eq!(managed.run_due().await.unwrap(), (0, 0), "second failure");
    let az = binding(&managed, &m.id, "vault").await;
    assert_eq!((az.pushed_version, az.failures), (Some(2), 2));
    assert_eq!(az.next_attempt_at, clock_now(&clock) + Duration::minutes(2));
    clock.advance(Duration::minutes(2));
    assert_eq!(managed.run_due().await.unwrap(), (0, 1), "caught up");
    let az = binding(&managed, &m.id, "vault").await;
    assert_eq!((az.pushed_version, az.failures), (Some(3), 0));
    assert!(az.last_error.is_none());
    assert_eq!(azure.seen().imports.len(), 5);
    let kinds: Vec<String> = store
        .managed_events(&m.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "renewed").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "sync_failed").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "synced").count(), 6);

    // A push of an older version is never recorded over a newer one.
    let vault_id = store.get_destination("vault").await.unwrap().id;
    let now = clock_now(&clock);
    assert!(
        store
            .lease_binding(&m.id, &vault_id, "other", now, now + Duration::minutes(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_push(&m.id, &vault_id, "other", 2, "stale", None, now)
            .await
            .unwrap()
    );
    let az = binding(&managed, &m.id, "vault").await;
    assert_eq!(az.pushed_version, Some(3));
    assert_eq!(az.remote_id, az2.remote_id);
}

#[tokio::test]
async fn one_replica_renews_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = booted(Db::Sqlite, dir.path(), OffsetDateTime::now_utc()).await;
    // Two replicas over one database.
    let a = Managed::new(b.pki.clone());
    let other = Managed::new(b.pki.clone());
    let m = a
        .create(
            NewManaged {
                name: "api".into(),
                profile: "default".into(),
                request: ManagedRequest {
                    dns_names: vec!["api.example.com".into()],
                    ip_addresses: vec![],
                    common_name: None,
                    key_algorithm: KeyAlgorithm::EcdsaP256,
                    validity_days: Some(30),
                },
                renew_at_percent: Some(50),
            },
            &Actor::system(),
        )
        .await
        .unwrap();
    clock.advance(Duration::days(15) + Duration::minutes(1));
    // A third replica holds the lease (it is renewing, or died doing so).
    let store = b.pki.store_for_tests();
    let now = clock_now(&clock);
    assert!(
        store
            .lease_managed(
                &m.id,
                "replica:third",
                now,
                now + Duration::minutes(10),
                true
            )
            .await
            .unwrap()
    );
    assert_eq!(a.renew_due().await.unwrap(), 0);
    assert_eq!(other.renew_due().await.unwrap(), 0);
    assert!(a.renew_now(&m.id, &Actor::system()).await.is_err());
    // The lease expires; exactly one of the others renews.
    clock.advance(Duration::minutes(11));
    let (x, y) = tokio::join!(a.renew_due(), other.renew_due());
    assert_eq!(x.unwrap() + y.unwrap(), 1);
    assert_eq!(store.get_managed(&m.id).await.unwrap().current_version, 2);
    assert_eq!(store.managed_versions(&m.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_renewal_is_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = booted(Db::Sqlite, dir.path(), OffsetDateTime::now_utc()).await;
    let managed = Managed::new(b.pki.clone());
    let system = Actor::system();
    let m = managed
        .create(
            NewManaged {
                name: "db".into(),
                profile: "default".into(),
                request: ManagedRequest {
                    dns_names: vec!["db.example.com".into()],
                    ip_addresses: vec![],
                    common_name: None,
                    key_algorithm: KeyAlgorithm::EcdsaP256,
                    validity_days: Some(90),
                },
                renew_at_percent: None,
            },
            &system,
        )
        .await
        .unwrap();
    // The profile is tightened so the stored request no longer passes policy.
    let store = b.pki.store_for_tests();
    let mut profile = store.get_profile("default").await.unwrap();
    profile.policy.max_validity_days = 30;
    let ev = system
        .event("profile.update", "profile")
        .object(&profile.id);
    store.update_profile(&profile, &ev).await.unwrap();
    b.pki.invalidate_profiles();
    clock.advance(Duration::days(61));
    assert_eq!(managed.renew_due().await.unwrap(), 0);
    let rec = store.get_managed(&m.id).await.unwrap();
    assert_eq!(rec.renewal_failures, 1);
    let err = rec.last_error.unwrap();
    assert!(err.contains("validity"), "{err}");
    assert_eq!(
        rec.next_renewal_at,
        Some(clock_now(&clock) + Duration::minutes(1))
    );
    clock.advance(Duration::minutes(1));
    assert_eq!(managed.renew_due().await.unwrap(), 0);
    let rec = store.get_managed(&m.id).await.unwrap();
    assert_eq!(rec.renewal_failures, 2);
    assert_eq!(
        rec.next_renewal_at,
        Some(clock_now(&clock) + Duration::minutes(2))
    );
    // Fixed: the next retry renews and the failure count resets.
    profile.policy.max_validity_days = 90;
    store.update_profile(&profile, &ev).await.unwrap();
    b.pki.invalidate_profiles();
    clock.advance(Duration::minutes(2));
    assert_eq!(managed.renew_due().await.unwrap(), 1);
    let rec = store.get_managed(&m.id).await.unwrap();
    assert_eq!((rec.current_version, rec.renewal_failures), (2, 0));
    let kinds: Vec<String> = store
        .managed_events(&m.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["renewed", "renewal_failed", "renewal_failed", "issued"]
    );
}

fn pem_of(der: &[u8]) -> String {
    certkeeper_ca::pem_encode_certs([der])
}

fn clock_now(c: &ManualClock) -> OffsetDateTime {
    use certkeeper_ca::Clock;
    c.now()
}

/// An administrator moving the renewal window of every certificate from a CA earlier (ACME
/// renewal information) brings managed renewals forward too, once: the renewed version,
/// issued after the window was set, keeps its own renewal point.
async fn moved_renewal_window_renews_early(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (b, clock) = booted(db, dir.path(), OffsetDateTime::now_utc()).await;
    let managed = Managed::new(b.pki.clone());
    let system = Actor::system();
    let m = managed
        .create(
            NewManaged {
                name: "early".into(),
                profile: "default".into(),
                request: ManagedRequest {
                    dns_names: vec!["early.example.com".into()],
                    ip_addresses: vec![],
                    common_name: None,
                    key_algorithm: KeyAlgorithm::EcdsaP256,
                    validity_days: Some(90),
                },
                renew_at_percent: None,
            },
            &system,
        )
        .await
        .unwrap();
    let store = b.pki.store_for_tests();
    clock.advance(Duration::days(5));
    assert_eq!(managed.renew_due().await.unwrap(), 0, "not due yet");
    let ca = store.get_ca("intermediate").await.unwrap();
    let now = clock_now(&clock).unix_timestamp();
    let ev = system.event("acme.renewal_window", "ca").object(&ca.id);
    store
        .acme_renewal_override_insert("w-1", Some(&ca.id), None, now, now + 86_400, &ev, now)
        .await
        .unwrap();
    assert_eq!(
        managed.renew_due().await.unwrap(),
        1,
        "window moved: renewed now"
    );
    let rec = store.get_managed(&m.id).await.unwrap();
    assert_eq!(rec.current_version, 2);
    assert!(rec.next_renewal_at.unwrap() > clock_now(&clock) + Duration::days(50));
    clock.advance(Duration::hours(1));
    assert_eq!(
        managed.renew_due().await.unwrap(),
        0,
        "the new version is not renewed again"
    );
}

#[tokio::test]
async fn moved_renewal_window_renews_early_sqlite() {
    moved_renewal_window_renews_early(Db::Sqlite).await;
}

#[tokio::test]
async fn moved_renewal_window_renews_early_postgres() {
    moved_renewal_window_renews_early(Db::Postgres).await;
}
