//! The `instant-acme` client library against the ACME server: external account binding,
//! http-01, dns-01 and tls-alpn-01, a wildcard and an IP address, renewal information with
//! `replaces`, key rollover and deactivation, on SQLite and PostgreSQL.

mod acme_support;
mod common;

use acme_support::{ChallSrv, Http01, TlsAlpn01, csr};
use common::{Db, TestServer};
use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use reqwest::Method;
use rustls::pki_types::CertificateDer;
use serde_json::json;

async fn scenario(db: Db) {
    let chall = ChallSrv::start();
    let http01 = Http01::start().await;
    let alpn = TlsAlpn01::start().await;
    let (h, a, r) = (
        http01.port.to_string(),
        alpn.port.to_string(),
        chall.resolvers_setting(),
    );
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_ACME__HTTP01_PORT", h.as_str()),
            ("CERTKEEPER_ACME__TLS_ALPN01_PORT", a.as_str()),
            ("CERTKEEPER_ACME__DNS_RESOLVERS", r.as_str()),
            ("CERTKEEPER_ACME__EAB_REQUIRED", "[\"default\"]"),
        ],
    )
    .await;
    // The ACME client trusts the server CA for the server's HTTPS.
    let root = s.write("instant-server-ca.pem", &s.server_ca_pem);
    let directory = s.url("/acme/directory");

    // EAB key from the REST API.
    let (st, key) = s
        .api(
            Method::POST,
            "/acme/eab-keys",
            Some(json!({"profile": "default"})),
        )
        .await;
    assert_eq!(st, 201, "{key}");
    let hmac = certkeeper_acme::b64_decode(key["hmac_key"].as_str().unwrap(), "k").unwrap();
    let eab = ExternalAccountKey::new(key["id"].as_str().unwrap().to_string(), &hmac);
    let (mut account, _creds) = Account::builder_with_root(&root)
        .unwrap()
        .create(
            &NewAccount {
                contact: &["mailto:ops@example.com"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            Some(&eab),
        )
        .await
        .expect("account with EAB");

    // One order: a name by http-01, a wildcard by dns-01, an IP address by tls-alpn-01.
    let ids = [
        Identifier::Dns("web.instant.test".into()),
        Identifier::Dns("*.instant.test".into()),
        Identifier::Ip("127.0.0.1".parse().unwrap()),
    ];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    assert_eq!(order.state().status, OrderStatus::Pending);
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.unwrap();
        assert_eq!(authz.status, AuthorizationStatus::Pending);
        let ident = authz.identifier().to_string();
        let kind = if ident.starts_with("*.") {
            ChallengeType::Dns01
        } else if ident.parse::<std::net::IpAddr>().is_ok() {
            ChallengeType::TlsAlpn01
        } else {
            ChallengeType::Http01
        };
        let mut ch = authz.challenge(kind.clone()).expect("challenge offered");
        let ka = ch.key_authorization();
        match kind {
            ChallengeType::Http01 => http01.put(&ch.token, ka.as_str()),
            ChallengeType::Dns01 => {
                chall
                    .manage(
                        "set-txt",
                        json!({"host": "_acme-challenge.instant.test.", "value": ka.dns_value()}),
                    )
                    .await
            }
            _ => alpn.put("127.0.0.1", ka.as_str()),
        }
        ch.set_ready().await.unwrap();
    }
    let status = order.poll_ready(&RetryPolicy::default()).await.unwrap();
    assert_eq!(status, OrderStatus::Ready);
    order
        .finalize_csr(&csr(&["web.instant.test", "*.instant.test", "127.0.0.1"]))
        .await
        .unwrap();
    let pem = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    let chain = certkeeper_ca::parse_pem_or_der_certs(pem.as_bytes()).unwrap();
    assert_eq!(chain.len(), 2, "leaf and intermediate");

    // Renewal information and an order that replaces the certificate.
    let leaf = CertificateDer::from(chain[0].clone());
    let cert_id = CertificateIdentifier::try_from(&leaf).unwrap();
    let (info, _) = account.renewal_info(&cert_id).await.unwrap();
    assert!(info.suggested_window.start < info.suggested_window.end);
    let mut renewal = account
        .new_order(&NewOrder::new(&ids[..1]).replaces(cert_id))
        .await
        .unwrap();
    assert_eq!(
        renewal.state().status,
        OrderStatus::Ready,
        "authorization reused"
    );

    // Key rollover, then deactivation.
    let _new_credentials = account.update_key().await.expect("key change");
    let mut again = account
        .new_order(&NewOrder::new(&ids[..1]))
        .await
        .expect("the new key works");
    assert_eq!(again.state().status, OrderStatus::Ready);
    account.deactivate().await.expect("deactivate");
}

#[tokio::test]
async fn instant_acme_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test]
async fn instant_acme_postgres() {
    scenario(Db::Postgres).await;
}
