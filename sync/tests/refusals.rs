//! What destinations refuse before sending anything: key types the store does not import,
//! certificates outside their validity, and configurations that cannot work.

use certkeeper_sync::{
    AwsAcm, AwsAcmConfig, AwsCredentials, AwsElb, AwsSecretsManager, AzureCredentialKind,
    AzureKeyVault, AzureKeyVaultConfig, CertificateVersion, Cloudflare, Destination, SyncError,
    validate_certificate_name,
};
use rcgen::{CertificateParams, KeyPair};
use time::{Duration, OffsetDateTime};

fn version(
    alg: &'static rcgen::SignatureAlgorithm,
    not_before: OffsetDateTime,
) -> CertificateVersion {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(vec!["web.example.com".to_string()]).unwrap();
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(30);
    let cert = params.self_signed(&key).unwrap();
    CertificateVersion {
        version: 1,
        certificate_der: cert.der().to_vec(),
        chain_der: vec![],
        key_pkcs8_der: key.serialize_der(),
    }
}

/// An ACM destination whose endpoint nothing listens on: any request fails with a
/// transport error, so a `Refused` answer shows nothing was sent.
async fn acm() -> AwsAcm {
    AwsAcm::new(
        AwsAcmConfig {
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            profile: None,
            tags: Default::default(),
        },
        Some(AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        }),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn acm_refuses_ed25519_and_certificates_outside_their_validity_up_front() {
    let acm = acm().await;
    let now = OffsetDateTime::now_utc();
    let ed = version(&rcgen::PKCS_ED25519, now - Duration::days(1));
    match acm.push(&ed, None, now).await {
        Err(SyncError::Refused(m)) => assert!(m.contains("Ed25519"), "{m}"),
        other => panic!("{other:?}"),
    }
    let future = version(&rcgen::PKCS_ECDSA_P256_SHA256, now + Duration::days(1));
    match acm.push(&future, None, now).await {
        Err(e @ SyncError::Refused(_)) => {
            assert!(e.to_string().contains("not valid before"), "{e}");
            assert!(!e.retryable());
        }
        other => panic!("{other:?}"),
    }
    let expired = version(&rcgen::PKCS_ECDSA_P384_SHA384, now - Duration::days(40));
    assert!(matches!(
        acm.push(&expired, None, now).await,
        Err(SyncError::Refused(_))
    ));
    // A certificate ACM takes gets as far as the (absent) endpoint.
    let fine = version(&rcgen::PKCS_ECDSA_P256_SHA256, now - Duration::days(1));
    let e = acm.push(&fine, None, now).await.unwrap_err();
    assert!(matches!(e, SyncError::Transport(_)), "{e:?}");
    assert!(e.retryable());
}

#[tokio::test]
async fn key_vault_refuses_ed25519_and_bad_configurations() {
    let cfg = AzureKeyVaultConfig {
        vault_url: "https://127.0.0.1:9".into(),
        certificate_name: "web".into(),
        credential: AzureCredentialKind::ClientSecret,
        tenant_id: Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
        client_id: Some("6731de76-14a6-49ae-97bc-6eba6914391e".into()),
        authority: Some("https://127.0.0.1:9".into()),
        federated_token_file: None,
        verify_challenge_resource: true,
        tags: Default::default(),
        ca_certificate: None,
    };
    let kv = AzureKeyVault::new(cfg.clone(), Some("secret".into())).unwrap();
    let now = OffsetDateTime::now_utc();
    let ed = version(&rcgen::PKCS_ED25519, now - Duration::days(1));
    assert!(matches!(
        kv.push(&ed, None, now).await,
        Err(SyncError::Refused(_))
    ));
    let bad = |f: fn(&mut AzureKeyVaultConfig)| {
        let mut c = cfg.clone();
        f(&mut c);
        AzureKeyVault::new(c, Some("secret".into())).unwrap_err()
    };
    assert!(matches!(
        bad(|c| c.vault_url = "http://vault".into()),
        SyncError::Config(_)
    ));
    assert!(matches!(
        bad(|c| c.authority = Some("ftp://x".into())),
        SyncError::Config(_)
    ));
    assert!(matches!(
        bad(|c| c.tenant_id = Some("a/b".into())),
        SyncError::Config(_)
    ));
    assert!(matches!(
        bad(|c| c.certificate_name = "web_1".into()),
        SyncError::Config(_)
    ));
    assert!(matches!(
        AzureKeyVault::new(cfg.clone(), Some(String::new())),
        Err(SyncError::Config(_))
    ));
    assert!(matches!(
        bad(|c| c.federated_token_file = Some("/var/run/token".into())),
        SyncError::Config(_)
    ));
}

#[tokio::test]
async fn cloudflare_and_secrets_manager_refuse_ed25519_and_expired_certificates() {
    let cf = Cloudflare::new(
        serde_json::from_value(serde_json::json!({
            "zone_id": "023e105f4ecef8ad9ca31a8372d0c353", "api_url": "https://127.0.0.1:9",
        }))
        .unwrap(),
        "token".into(),
    )
    .unwrap();
    let sm = AwsSecretsManager::new(
        serde_json::from_value(serde_json::json!({
            "secret_name": "web", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9",
        }))
        .unwrap(),
        Some(AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        }),
    )
    .await
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let ed = version(&rcgen::PKCS_ED25519, now - Duration::days(1));
    match cf.push(&ed, None, now).await {
        Err(SyncError::Refused(m)) => assert!(m.contains("Ed25519"), "{m}"),
        other => panic!("{other:?}"),
    }
    let expired = version(&rcgen::PKCS_ECDSA_P256_SHA256, now - Duration::days(40));
    for d in [&cf as &dyn Destination, &sm] {
        match d.push(&expired, None, now).await {
            Err(SyncError::Refused(m)) => assert!(m.contains("expired"), "{}: {m}", d.kind()),
            other => panic!("{}: {other:?}", d.kind()),
        }
    }
    // A certificate both take gets as far as the (absent) endpoint.
    let fine = version(&rcgen::PKCS_ECDSA_P256_SHA256, now - Duration::days(1));
    for d in [&cf as &dyn Destination, &sm] {
        let e = d.push(&fine, None, now).await.unwrap_err();
        assert!(matches!(e, SyncError::Transport(_)), "{}: {e:?}", d.kind());
    }
    // A Cloudflare id from elsewhere is never put into a URL.
    assert!(matches!(
        cf.delete("../../zones").await,
        Err(SyncError::Config(_))
    ));
}

#[tokio::test]
async fn load_balancer_configurations_are_checked() {
    let listener = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
    let make = |v: serde_json::Value| async move {
        AwsElb::new(serde_json::from_value(v).unwrap(), None).await
    };
    let ok = make(serde_json::json!({"listener_arn": listener, "slot": "sni"})).await;
    assert!(ok.is_ok(), "the region comes from the ARN: {ok:?}");
    match make(serde_json::json!({"listener_arn": listener, "region": "us-east-1"})).await {
        Err(SyncError::Config(m)) => assert!(m.contains("wrong region"), "{m}"),
        other => panic!("{other:?}"),
    }
    let lb = listener.replace(":listener/", ":loadbalancer/");
    assert!(matches!(
        make(serde_json::json!({"listener_arn": lb})).await,
        Err(SyncError::Config(_))
    ));
    assert!(
        serde_json::from_value::<certkeeper_sync::AwsElbConfig>(
            serde_json::json!({"listener_arn": listener, "slot": "both"})
        )
        .is_err()
    );
}

#[test]
fn key_vault_certificate_names() {
    for ok in ["web", "web-1", "A1", &"a".repeat(127)] {
        assert!(validate_certificate_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "web_1", "web.example", "wéb", &"a".repeat(128)] {
        assert!(validate_certificate_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn debug_output_hides_secrets() {
    let creds = AwsCredentials {
        access_key_id: "AKID".into(),
        secret_access_key: "very-secret".into(),
        session_token: Some("token-secret".into()),
    };
    let shown = format!("{creds:?}");
    assert!(!shown.contains("very-secret") && !shown.contains("token-secret"));
    let v = version(&rcgen::PKCS_ECDSA_P256_SHA256, OffsetDateTime::now_utc());
    assert!(!format!("{v:?}").contains("key_pkcs8_der"));
}
