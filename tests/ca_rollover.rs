//! CA rollover against the real server on SQLite and PostgreSQL: a root renewed with
//! cross-signing both ways, the default intermediate rolled over under the new root, REST,
//! ACME (instant-acme) and EST moving to the successor, the old CA still answering CRL and
//! OCSP for what it issued, ARI asking clients to renew early, a rollover scheduled for
//! later leaving issuance where it is, and chains checked with `openssl verify` from a
//! trust store holding only the old root and one holding only the new root.

mod acme_support;
mod common;

use acme_support::{ChallSrv, Http01, csr};
use base64::Engine;
use common::*;
use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, NewAccount, NewOrder,
    OrderStatus, RetryPolicy,
};
use reqwest::Method;
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

async fn issue(s: &TestServer, profile: &str, name: &str) -> Value {
    let (_, csr) = openssl_csr(
        s.dir.path(),
        name,
        &format!("/CN={name}"),
        &format!("DNS:{name}"),
        EC_P256,
    );
    let (st, body) = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": profile, "csr": csr})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    body
}

/// An ACME certificate for `name` by http-01; returns the PEM chain the server delivered.
async fn acme_issue(account: &Account, http01: &Http01, name: &str) -> String {
    let ids = [instant_acme::Identifier::Dns(name.into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.unwrap();
        if authz.status == AuthorizationStatus::Valid {
            continue;
        }
        let mut ch = authz.challenge(ChallengeType::Http01).unwrap();
        http01.put(&ch.token, ch.key_authorization().as_str());
        ch.set_ready().await.unwrap();
    }
    let status = order.poll_ready(&RetryPolicy::default()).await.unwrap();
    assert_eq!(status, OrderStatus::Ready);
    order.finalize_csr(&csr(&[name])).await.unwrap();
    order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap()
}

fn verify(
    ca_file: &std::path::Path,
    untrusted: &std::path::Path,
    leaf: &std::path::Path,
) -> String {
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(ca_file),
        "-untrusted",
        p(untrusted),
        p(leaf),
    ]);
    assert!(ok, "{out}");
    out
}

fn subject_of(pem: &str) -> String {
    let der = certkeeper_ca::parse_pem_or_der_certs(pem.as_bytes()).unwrap();
    certkeeper_ca::inspect_certificate(&der[0]).unwrap().subject
}

async fn scenario(db: Db) {
    // pebble-challtestsrv answers every name with 127.0.0.1, where the http-01 responder is.
    let chall = ChallSrv::start();
    let http01 = Http01::start().await;
    let (h, r) = (http01.port.to_string(), chall.resolvers_setting());
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_ACME__HTTP01_PORT", h.as_str()),
            ("CERTKEEPER_ACME__DNS_RESOLVERS", r.as_str()),
        ],
    )
    .await;
    let (st, profile) = s.api(Method::GET, "/profiles/default", None).await;
    assert_eq!(st, 200, "{profile}");
    let (st, inter) = s
        .api(
            Method::GET,
            &format!("/cas/{}", profile["ca"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, 200, "{inter}");
    let inter_id = inter["id"].as_str().unwrap().to_string();
    let root_id = inter["parent_id"].as_str().unwrap().to_string();
    let old_root = s.write("old-root.pem", &s.root_pem);
    let old_inter = s.write("old-inter.pem", inter["certificate"].as_str().unwrap());

    // Before: a certificate by REST and one by ACME, both from the old intermediate.
    let before = issue(&s, "default", "before.roll.test").await;
    assert_eq!(before["ca_id"], inter_id.as_str());
    let acme_root = s.write("server-ca.pem", &s.server_ca_pem);
    let (account, _) = Account::builder_with_root(&acme_root)
        .unwrap()
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.url("/acme/directory"),
            None,
        )
        .await
        .unwrap();
    let acme_before = acme_issue(&account, &http01, "acme-before.roll.test").await;
    let acme_before_chain = certkeeper_ca::parse_pem_or_der_certs(acme_before.as_bytes()).unwrap();
    assert_eq!(
        certkeeper_ca::inspect_certificate(&acme_before_chain[1])
            .unwrap()
            .subject,
        inter["subject"].as_str().unwrap()
    );

    // Renew the root: a new root and cross certificates both ways.
    let (st, e) = s
        .api(
            Method::POST,
            &format!("/cas/{root_id}/rollover"),
            Some(json!({"name": "root-g2", "parent": inter_id})),
        )
        .await;
    assert_eq!(st, 400, "a root's successor has no parent: {e}");
    let (st, e) = s
        .api(
            Method::POST,
            &format!("/cas/{root_id}/rollover"),
            Some(json!({"name": "root-g2", "common_name": subject_of(&s.root_pem).trim_start_matches("CN=")})),
        )
        .await;
    assert_eq!(st, 400, "the successor needs its own name: {e}");
    let (st, rolled) = s
        .api(
            Method::POST,
            &format!("/cas/{root_id}/rollover"),
            Some(json!({"name": "root-g2"})),
        )
        .await;
    assert_eq!(st, 201, "{rolled}");
    let new_root = &rolled["successor"];
    let new_root_id = new_root["id"].as_str().unwrap().to_string();
    assert_eq!(new_root["kind"], "root");
    assert_eq!(new_root["parent_id"], Value::Null);
    assert!(
        new_root["subject"].as_str().unwrap().ends_with(" G2"),
        "{new_root}"
    );
    let cross = rolled["cross_certificates"].as_array().unwrap();
    assert_eq!(cross.len(), 2, "{rolled}");
    assert_eq!(cross[0]["subject_ca_id"], new_root_id.as_str());
    assert_eq!(cross[0]["issuer_ca_id"], root_id.as_str());
    assert_eq!(cross[1]["subject_ca_id"], root_id.as_str());
    assert_eq!(cross[1]["issuer_ca_id"], new_root_id.as_str());
    let (st, listed) = s
        .api(
            Method::GET,
            &format!("/cas/{root_id}/cross-certificates"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let new_root_p = s.write("new-root.pem", new_root["certificate"].as_str().unwrap());
    let old_by_new = s.write("old-by-new.pem", cross[1]["certificate"].as_str().unwrap());
    let (st, again) = s
        .api(
            Method::POST,
            &format!("/cas/{root_id}/rollover"),
            Some(json!({"name": "root-g3"})),
        )
        .await;
    assert_eq!(st, 409, "one successor per CA: {again}");
    let (st, _) = s
        .api(
            Method::POST,
            "/cas/no-such-ca/rollover",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(st, 404);

    // A second intermediate under the old root, rolled over for tomorrow: issuance stays.
    let (st, later_ca) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "later", "type": "intermediate", "parent": root_id, "common_name": "Later CA"})),
        )
        .await;
    assert_eq!(st, 201, "{later_ca}");
    let (st, body) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "later", "ca": "later", "allowed_dns_names": [".roll.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let tomorrow = (OffsetDateTime::now_utc() + time::Duration::days(1))
        .replace_nanosecond(0)
        .unwrap();
    let (st, scheduled) = s
        .api(
            Method::POST,
            "/cas/later/rollover",
            Some(json!({"name": "later-g2", "from": tomorrow.format(&Rfc3339).unwrap()})),
        )
        .await;
    assert_eq!(st, 201, "{scheduled}");
    let (_, later_view) = s.api(Method::GET, "/cas/later", None).await;
    assert_eq!(later_view["successor_id"], scheduled["successor"]["id"]);
    assert_eq!(
        OffsetDateTime::parse(later_view["successor_from"].as_str().unwrap(), &Rfc3339).unwrap(),
        tomorrow
    );
    assert_eq!(
        scheduled["successor"]["parent_id"],
        new_root_id.as_str(),
        "the successor lands under the CA issuing in the old root's place"
    );
    let still = issue(&s, "later", "still.roll.test").await;
    assert_eq!(still["ca_id"], later_ca["id"], "the switch is tomorrow");

    // Roll the default intermediate over now: it lands under the new root.
    let (st, rolled) = s
        .api(
            Method::POST,
            &format!("/cas/{inter_id}/rollover"),
            Some(json!({"name": "intermediate-g2"})),
        )
        .await;
    assert_eq!(st, 201, "{rolled}");
    let new_inter = &rolled["successor"];
    let new_inter_id = new_inter["id"].as_str().unwrap().to_string();
    assert_eq!(new_inter["parent_id"], new_root_id.as_str());
    assert_eq!(new_inter["kind"], "intermediate");
    assert_eq!(new_inter["key_algorithm"], inter["key_algorithm"]);
    assert_eq!(rolled["cross_certificates"], json!([]));
    let new_inter_p = s.write("new-inter.pem", new_inter["certificate"].as_str().unwrap());

    // REST issues from the successor; its chain ends with the new root signed by the old.
    let after = issue(&s, "default", "after.roll.test").await;
    assert_eq!(after["ca_id"], new_inter_id.as_str());
    assert_eq!(
        after["root"], "",
        "the chain ends with a cross certificate, not a root"
    );
    let chain =
        certkeeper_ca::parse_pem_or_der_certs(after["chain"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(chain.len(), 2);
    let top = certkeeper_ca::inspect_certificate(&chain[1]).unwrap();
    assert_eq!(top.subject, new_root["subject"].as_str().unwrap());
    assert_eq!(top.issuer, subject_of(&s.root_pem));
    let after_p = s.write("after.pem", after["certificate"].as_str().unwrap());
    let after_chain = s.write("after-chain.pem", after["chain"].as_str().unwrap());
    // Trusting only the old root: through the cross certificate.
    verify(&old_root, &after_chain, &after_p);
    // Trusting only the new root: directly, with or without the cross certificate.
    verify(&new_root_p, &new_inter_p, &after_p);
    verify(&new_root_p, &after_chain, &after_p);
    // A certificate of the old hierarchy, for clients that trust only the new root: with
    // the old root signed by the new one.
    let before_p = s.write("before.pem", before["certificate"].as_str().unwrap());
    verify(&old_root, &old_inter, &before_p);
    let old_path = s.write(
        "old-path.pem",
        format!(
            "{}{}",
            inter["certificate"].as_str().unwrap(),
            std::fs::read_to_string(&old_by_new).unwrap()
        ),
    );
    verify(&new_root_p, &old_path, &before_p);
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&new_root_p),
        "-untrusted",
        p(&old_inter),
        p(&before_p),
    ]);
    assert!(
        !ok,
        "without the cross certificate the new root cannot reach it: {out}"
    );

    // ACME moves to the successor.
    let acme_after = acme_issue(&account, &http01, "acme-after.roll.test").await;
    let acme_chain = certkeeper_ca::parse_pem_or_der_certs(acme_after.as_bytes()).unwrap();
    assert_eq!(
        certkeeper_ca::inspect_certificate(&acme_chain[0])
            .unwrap()
            .issuer,
        new_inter["subject"].as_str().unwrap()
    );
    assert_eq!(
        acme_chain[1],
        certkeeper_ca::parse_pem_or_der_certs(
            new_inter["certificate"].as_str().unwrap().as_bytes()
        )
        .unwrap()[0]
    );

    // EST's cacerts moves to the successor.
    let resp = s
        .client
        .get(s.url("/.well-known/est/cacerts"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let b64: String = resp.text().await.unwrap().split_whitespace().collect();
    let p7 = s.write(
        "cacerts.p7",
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    );
    let (ok, certs) = openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        p(&p7),
        "-print_certs",
        "-noout",
    ]);
    assert!(ok, "{certs}");
    assert!(
        certs.contains(&format!(
            "subject={}",
            new_inter["subject"].as_str().unwrap()
        )) || certs.contains(
            new_inter["subject"]
                .as_str()
                .unwrap()
                .trim_start_matches("CN=")
        ),
        "{certs}"
    );

    // The old intermediate still answers for what it issued: CRL and OCSP.
    let (st, body) = s
        .api(
            Method::POST,
            &format!("/certificates/{}/revoke", before["id"].as_str().unwrap()),
            Some(json!({"reason": "superseded"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let crl = reqwest::get(s.http_url(&format!("/crl/{inter_id}.crl")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let crl_p = s.write("old.crl", crl);
    let old_bundle = s.write(
        "old-bundle.pem",
        format!("{}{}", s.root_pem, inter["certificate"].as_str().unwrap()),
    );
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        p(&crl_p),
        "-CAfile",
        p(&old_bundle),
        "-noout",
        "-text",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    assert!(
        out.contains(&before["serial"].as_str().unwrap().to_uppercase()),
        "{out}"
    );
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&old_inter),
        "-cert",
        p(&before_p),
        "-url",
        &s.http_url("/ocsp"),
        "-CAfile",
        p(&old_bundle),
    ]);
    assert!(
        ok && out.contains("before.pem: revoked") && out.contains("Response verify OK"),
        "{out}"
    );

    // ARI asks ACME clients to renew early onto the successor: move the old CA's window.
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let (st, body) = s
        .api(
            Method::POST,
            "/acme/renewal-windows",
            Some(json!({
                "ca": inter_id,
                "start": now.format(&Rfc3339).unwrap(),
                "end": (now + time::Duration::hours(1)).format(&Rfc3339).unwrap(),
            })),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let leaf = CertificateDer::from(acme_before_chain[0].clone());
    let cert_id = CertificateIdentifier::try_from(&leaf).unwrap();
    let (info, _) = account.renewal_info(&cert_id).await.unwrap();
    assert!(
        info.suggested_window.end <= now + time::Duration::hours(1),
        "{:?}",
        info.suggested_window
    );
    let mut renewed = account
        .new_order(
            &NewOrder::new(&[instant_acme::Identifier::Dns(
                "acme-before.roll.test".into(),
            )])
            .replaces(cert_id),
        )
        .await
        .unwrap();
    assert_eq!(
        renewed.state().status,
        OrderStatus::Ready,
        "authorization reused"
    );

    // The views say who hands over to whom.
    let (_, old_view) = s.api(Method::GET, &format!("/cas/{inter_id}"), None).await;
    assert_eq!(old_view["successor_id"], new_inter_id.as_str());
    assert_eq!(old_view["status"], "active", "it still signs CRLs and OCSP");
    let (st, page) = s.api(Method::GET, "/audit?action=ca.rollover", None).await;
    assert_eq!(st, 200, "{page}");
    assert!(
        page.to_string().matches("ca.rollover").count() >= 3,
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_postgres() {
    scenario(Db::Postgres).await;
}
