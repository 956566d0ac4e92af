//! Managed certificates with an injected clock (no sleeping): a certificate renews at its
//! renewal point, every new version reaches both an Azure Key Vault (a local server
//! following Microsoft's REST contract) and AWS Certificate Manager (moto), and a
//! destination that fails twice catches up after its backoff.

mod cloud;
mod common;

use std::sync::Arc;

use certkeeper::bootstrap::boot;
use certkeeper::config::Settings;
use certkeeper::managed::{Managed, NewDestination, NewManaged};
use certkeeper::pki::Actor;
use certkeeper::store::{BindingRecord, ManagedRequest};
use certkeeper_ca::{KeyAlgorithm, ManualClock};
use certkeeper_sync::{AwsAcm, AwsAcmConfig, AwsCredentials};
use cloud::azure::{CLIENT_ID, CLIENT_SECRET, FakeAzure};
use cloud::moto::Moto;
use serde_json::json;
use time::{Duration, OffsetDateTime};

async fn booted(
    dir: &std::path::Path,
    start: OffsetDateTime,
) -> (certkeeper::bootstrap::Booted, Arc<ManualClock>) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = Arc::new(Settings::load(dir, None).unwrap());
    let clock = Arc::new(ManualClock::new(start));
    (boot(settings, clock.clone()).await.unwrap(), clock)
}

async fn binding(managed: &Managed, m: &str, dest: &str) -> BindingRecord {
    let d = managed.pki().store().get_destination(dest).await.unwrap();
    managed.pki().store().get_binding(m, &d.id).await.unwrap()
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
async fn renews_at_the_renewal_point_and_every_version_reaches_both_destinations() {
    let dir = tempfile::tempdir().unwrap();
    // Start in the past, so that every version is valid by the wall clock too (moto reads
    // the certificates' validity against real time).
    let (b, clock) = booted(
        dir.path(),
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::days(70),
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
    let store = b.pki.store();
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
}

fn pem_of(der: &[u8]) -> String {
    certkeeper_ca::pem_encode_certs([der])
}

fn clock_now(c: &ManualClock) -> OffsetDateTime {
    use certkeeper_ca::Clock;
    c.now()
}
