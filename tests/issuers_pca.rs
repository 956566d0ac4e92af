//! AWS Private CA as an external issuer, end to end against moto in server mode (its
//! `acm-pca` service), on SQLite and PostgreSQL. The private CA is made the way AWS's own
//! guide makes a root: `CreateCertificateAuthority`, its CSR signed by the CA itself under
//! the `RootCACertificate/V1` template, and that certificate imported, which makes it
//! ACTIVE.
//!
//! Then: bad issuers (a missing, pending or malformed CA, a wrong region, an unreachable
//! endpoint, keys AWS refuses, a signing algorithm the CA's key cannot do) are refused and
//! leave nothing behind; the issuer is created, shown
//! without secrets, tested, and made and removed through the CLI; a profile names it; a
//! certificate for a client's CSR and a managed certificate are issued by PCA (they chain
//! to the PCA root under `openssl verify`, and PCA's `GetCertificate` answers the very same
//! certificate); renewal makes a new version with a new serial; revocation goes to PCA's
//! `RevokeCertificate` first (moto's record of it is read from its `/moto-api/data.json`),
//! and while PCA refuses (the CA disabled) nothing changes here.

mod cloud;
mod common;

use aws_sdk_acmpca::primitives::Blob;
use aws_sdk_acmpca::types::{
    Asn1Subject, CertificateAuthorityConfiguration, CertificateAuthorityStatus,
    CertificateAuthorityType, KeyAlgorithm, SigningAlgorithm, Validity, ValidityPeriodType,
};
use cloud::moto::Moto;
use common::{Db, TestServer, cli, cli_json, free_port, openssl, openssl_csr, p};
use reqwest::Method;
use serde_json::{Value, json};

const ROOT_TEMPLATE: &str = "arn:aws:acm-pca:::template/RootCACertificate/V1";
const EC_P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// A private CA at moto.
struct Pca {
    client: aws_sdk_acmpca::Client,
    arn: String,
    /// The CA's own (self-signed) certificate, PEM.
    root_pem: String,
}

async fn client(moto: &Moto) -> aws_sdk_acmpca::Client {
    let creds: certkeeper_sync::AwsCredentials =
        serde_json::from_value(Moto::credentials()).unwrap();
    let conf =
        certkeeper_sync::aws_sdk_config(Some("us-east-1"), Some(&moto.url), None, Some(creds))
            .await
            .unwrap();
    aws_sdk_acmpca::Client::new(&conf)
}

/// A root CA with an RSA key, left `PENDING_CERTIFICATE` unless `activate`.
async fn make_ca(client: &aws_sdk_acmpca::Client, cn: &str, activate: bool) -> Pca {
    let conf = CertificateAuthorityConfiguration::builder()
        .key_algorithm(KeyAlgorithm::Rsa2048)
        .signing_algorithm(SigningAlgorithm::Sha256Withrsa)
        .subject(Asn1Subject::builder().common_name(cn).build())
        .build()
        .unwrap();
    let arn = client
        .create_certificate_authority()
        .certificate_authority_configuration(conf)
        .certificate_authority_type(CertificateAuthorityType::Root)
        .send()
        .await
        .unwrap()
        .certificate_authority_arn()
        .unwrap()
        .to_string();
    let mut root_pem = String::new();
    if activate {
        let csr = client
            .get_certificate_authority_csr()
            .certificate_authority_arn(&arn)
            .send()
            .await
            .unwrap()
            .csr()
            .unwrap()
            .to_string();
        let cert_arn = client
            .issue_certificate()
            .certificate_authority_arn(&arn)
            .csr(Blob::new(csr.into_bytes()))
            .signing_algorithm(SigningAlgorithm::Sha256Withrsa)
            .template_arn(ROOT_TEMPLATE)
            .validity(
                Validity::builder()
                    .r#type(ValidityPeriodType::Days)
                    .value(3650)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_string();
        root_pem = client
            .get_certificate()
            .certificate_authority_arn(&arn)
            .certificate_arn(cert_arn)
            .send()
            .await
            .unwrap()
            .certificate()
            .unwrap()
            .to_string();
        client
            .import_certificate_authority_certificate()
            .certificate_authority_arn(&arn)
            .certificate(Blob::new(root_pem.clone().into_bytes()))
            .send()
            .await
            .unwrap();
    }
    Pca {
        client: client.clone(),
        arn,
        root_pem,
    }
}

impl Pca {
    async fn set_status(&self, status: CertificateAuthorityStatus) {
        self.client
            .update_certificate_authority()
            .certificate_authority_arn(&self.arn)
            .status(status)
            .send()
            .await
            .unwrap();
    }

    /// What PCA's `GetCertificate` answers for `cert_arn`, DER.
    async fn issued(&self, cert_arn: &str) -> Vec<u8> {
        let out = self
            .client
            .get_certificate()
            .certificate_authority_arn(&self.arn)
            .certificate_arn(cert_arn)
            .send()
            .await
            .unwrap();
        pem::parse(out.certificate().unwrap())
            .unwrap()
            .into_contents()
    }
}

/// The revocations moto recorded for the CA `arn`: serial (as sent) to reason.
async fn moto_revocations(moto: &Moto, arn: &str) -> serde_json::Map<String, Value> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cas = data["acmpca"]["CertificateAuthority"].as_array().unwrap();
    let ca = cas
        .iter()
        .find(|c| c["arn"] == arn)
        .expect("moto knows the CA");
    ca["revoked_certificates"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["revocation_reason"].clone()))
        .collect()
}

/// A serial (any hex form, with or without colons) as lowercase hex without leading zeros.
fn canonical(serial: &str) -> String {
    let hex: String = serial
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_ascii_lowercase();
    hex.trim_start_matches('0').to_string()
}

/// The certificate ARN PCA gave the certificate `id` (from its issuance audit event).
async fn upstream_ref(s: &TestServer, id: &str) -> String {
    let (st, audit) = s
        .api(
            Method::GET,
            "/audit?action=certificate.issue&limit=200",
            None,
        )
        .await;
    assert_eq!(st, 200, "{audit}");
    let ev = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["object_id"] == id)
        .unwrap_or_else(|| panic!("an issuance event for {id}: {audit}"));
    ev["detail"]["upstream_ref"].as_str().unwrap().to_string()
}

/// The certificate `id` as certkeeper holds it, DER.
async fn held(s: &TestServer, id: &str) -> (Value, Vec<u8>) {
    let (st, c) = s
        .api(Method::GET, &format!("/certificates/{id}"), None)
        .await;
    assert_eq!(st, 200, "{c}");
    let der = pem::parse(c["certificate"].as_str().unwrap())
        .unwrap()
        .into_contents();
    (c, der)
}

/// `openssl verify` of the certificate `id` against the PCA root alone.
async fn verify(s: &TestServer, pca: &Pca, id: &str) {
    let root = s.write("pca-root.pem", &pca.root_pem);
    let (_, der) = held(s, id).await;
    let leaf = s.write(
        &format!("{id}.pem"),
        pem::encode(&pem::Pem::new("CERTIFICATE", der)),
    );
    let (ok, out) = openssl(&["verify", "-CAfile", p(&root), p(&leaf)]);
    assert!(ok, "chains to the PCA root: {out}");
}

/// Issued by PCA: its `GetCertificate` answers what certkeeper recorded.
async fn issued_by_pca(s: &TestServer, pca: &Pca, id: &str) {
    let arn = upstream_ref(s, id).await;
    assert!(
        arn.starts_with(&format!("{}/certificate/", pca.arn)),
        "{arn}"
    );
    let (_, der) = held(s, id).await;
    assert_eq!(
        pca.issued(&arn).await,
        der,
        "PCA holds the same certificate"
    );
}

async fn scenario(db: Db) {
    let moto = Moto::start();
    let aws = client(&moto).await;
    let pca = make_ca(&aws, "certkeeper test PCA", true).await;
    let pending = make_ca(&aws, "pending PCA", false).await;
    let s = TestServer::start(db).await;

    let good = json!({
        "name": "pca", "kind": "aws_pca", "ca_arn": pca.arn, "signing_algorithm": "SHA256WITHRSA",
        "endpoint_url": moto.url, "credentials": Moto::credentials(),
    });
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let missing = pca.arn.replace(
        pca.arn.rsplit('/').next().unwrap(),
        "00000000-0000-0000-0000-000000000000",
    );
    // Bad issuers are refused and leave nothing behind.
    for (body, status, why) in [
        (
            with("ca_arn", json!(missing)),
            502,
            "ResourceNotFoundException",
        ),
        (
            with(
                "ca_arn",
                json!("arn:aws:acm:us-east-1:123456789012:certificate/abc"),
            ),
            400,
            "not an AWS Private CA ARN",
        ),
        (
            with("ca_arn", json!("pca")),
            400,
            "not an AWS Private CA ARN",
        ),
        (
            with("region", json!("eu-west-1")),
            400,
            "not the CA ARN's region",
        ),
        (
            with(
                "endpoint_url",
                json!(format!("http://127.0.0.1:{}", free_port())),
            ),
            502,
            "DescribeCertificateAuthority",
        ),
        (
            with("endpoint_url", json!("ftp://example.test")),
            400,
            "http(s)",
        ),
        (
            with("signing_algorithm", json!("SHA1WITHRSA")),
            400,
            "SHA256WITHECDSA",
        ),
        (
            with("signing_algorithm", json!("SHA256WITHECDSA")),
            502,
            "cannot sign with",
        ),
        (with("ca_arn", json!(pending.arn)), 502, "not ACTIVE"),
        (
            with("directory_url", json!("https://acme.test/dir")),
            400,
            "does not take directory_url",
        ),
        (
            with("template_arn", json!("arn:aws:s3:::bucket")),
            400,
            "template",
        ),
        (
            with(
                "credentials",
                json!({"access_key_id": "", "secret_access_key": ""}),
            ),
            400,
            "must not be empty",
        ),
    ] {
        let (st, p) = s.api(Method::POST, "/issuers", Some(body.clone())).await;
        assert_eq!(st, status, "{body}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(why), "{body}: {p}");
        assert!(!p.to_string().contains("test-secret"), "{p}");
    }
    // Keys AWS does not know: a moto that checks signatures once the CA is made (its five
    // calls are free).
    let strict = Moto::start_enforcing_iam(5);
    let strict_ca = make_ca(&client(&strict).await, "strict PCA", true).await;
    let body = json!({
        "name": "pca", "kind": "aws_pca", "ca_arn": strict_ca.arn,
        "signing_algorithm": "SHA256WITHRSA", "endpoint_url": strict.url,
        "credentials": Moto::credentials(),
    });
    let (st, refused) = s.api(Method::POST, "/issuers", Some(body)).await;
    assert_eq!(st, 502, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("credentials were not accepted"),
        "{refused}"
    );
    drop(strict);
    let (_, list) = s.api(Method::GET, "/issuers", None).await;
    assert!(
        list.as_array().unwrap().iter().all(|i| i["kind"] == "ca"),
        "{list}"
    );

    // The issuer, shown without its secret, and tested.
    let (st, issuer) = s.api(Method::POST, "/issuers", Some(good.clone())).await;
    assert_eq!(st, 201, "{issuer}");
    assert_eq!(issuer["kind"], "aws_pca");
    assert_eq!(issuer["ca_arn"], pca.arn);
    assert_eq!(issuer["region"], "us-east-1");
    assert_eq!(
        issuer["template_arn"],
        "arn:aws:acm-pca:::template/EndEntityCertificate/V1"
    );
    assert_eq!(issuer["has_credentials"], true);
    let (_, shown) = s.api(Method::GET, "/issuers/pca", None).await;
    assert_eq!(shown["ca_arn"], pca.arn, "{shown}");
    for v in [&issuer, &shown] {
        assert!(!v.to_string().contains("test-secret"), "{v}");
    }
    let (st, tested) = s.api(Method::POST, "/issuers/pca/test", None).await;
    assert_eq!(st, 200, "{tested}");
    assert_eq!(tested["status"], "ACTIVE", "{tested}");
    let (st, again) = s.api(Method::POST, "/issuers", Some(good.clone())).await;
    assert_eq!(st, 409, "{again}");

    // The same through the CLI: create (keys from a file), list, test, remove.
    let creds = s.write("aws.json", Moto::credentials().to_string());
    let created = cli_json(
        &s,
        &[
            "--json",
            "issuer",
            "create-aws-pca",
            "pca-cli",
            "--ca-arn",
            &pca.arn,
            "--signing-algorithm",
            "SHA256WITHRSA",
            "--endpoint-url",
            &moto.url,
            "--credentials",
            p(&creds),
        ],
    );
    assert_eq!(created["ca_arn"], pca.arn, "{created}");
    let out = cli(&s, &["issuer", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("pca-cli") && table.contains("aws_pca"),
        "{table}"
    );
    let out = cli(&s, &["issuer", "test", "pca-cli"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ACTIVE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&s, &["issuer", "remove", "pca-cli"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A profile names it. Moto's PCA issues for a year whatever it is asked, so the
    // profile allows that.
    let (st, prof) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "internal", "ca": "pca", "allowed_dns_names": [".example.test"], "max_validity_days": 397})),
        )
        .await;
    assert_eq!(st, 201, "{prof}");
    let (st, refused) = s
        .api(
            Method::POST,
            "/managed",
            Some(
                json!({"name": "outside", "profile": "internal", "dns_names": ["www.other.test"]}),
            ),
        )
        .await;
    assert_eq!(
        (st, refused["rule"].as_str()),
        (403, Some("allowed_dns_names")),
        "{refused}"
    );

    // A client's CSR, signed by PCA.
    let (_, csr) = openssl_csr(
        s.dir.path(),
        "api",
        "/CN=api.example.test",
        "DNS:api.example.test",
        EC_P256,
    );
    let (st, c) = s
        .api(
            Method::POST,
            "/certificates",
            Some(json!({"profile": "internal", "csr": csr})),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let api_id = c["id"].as_str().unwrap().to_string();
    verify(&s, &pca, &api_id).await;
    issued_by_pca(&s, &pca, &api_id).await;

    // A managed certificate: issued by PCA, renewed into a new version with a new serial.
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "web", "profile": "internal", "dns_names": ["a.example.test", "b.example.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["current_version"], 1, "{m}");
    let (_, m) = s.api(Method::GET, "/managed/web", None).await;
    let first = m["versions"][0]["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    let first_serial = m["versions"][0]["serial"].as_str().unwrap().to_string();
    verify(&s, &pca, &first).await;
    issued_by_pca(&s, &pca, &first).await;
    let (c, _) = held(&s, &first).await;
    let sans = c["sans"].to_string();
    assert!(
        sans.contains("a.example.test") && sans.contains("b.example.test"),
        "{c}"
    );

    let (st, r) = s.api(Method::POST, "/managed/web/renew", None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["current_version"], 2, "{r}");
    let (_, m) = s.api(Method::GET, "/managed/web", None).await;
    let second = m["versions"][0]["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, first);
    assert_ne!(
        canonical(m["versions"][0]["serial"].as_str().unwrap()),
        canonical(&first_serial)
    );
    verify(&s, &pca, &second).await;
    issued_by_pca(&s, &pca, &second).await;

    // While PCA refuses to revoke (the CA disabled), nothing changes here and the caller
    // reads PCA's answer.
    pca.set_status(CertificateAuthorityStatus::Disabled).await;
    let (st, p) = s
        .api(
            Method::POST,
            &format!("/certificates/{api_id}/revoke"),
            Some(json!({"reason": 1})),
        )
        .await;
    assert_eq!(st, 502, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("refused the revocation") && detail.contains("InvalidStateException"),
        "{p}"
    );
    let (c, _) = held(&s, &api_id).await;
    assert_eq!(c["status"], "valid", "{c}");
    let (st, p) = s
        .api(
            Method::POST,
            "/managed/web/revoke",
            Some(json!({"reason": 4})),
        )
        .await;
    assert_eq!(st, 502, "{p}");
    let (_, m) = s.api(Method::GET, "/managed/web", None).await;
    assert_ne!(m["status"], "revoked", "{m}");
    assert!(moto_revocations(&moto, &pca.arn).await.is_empty());

    // Revocation goes to PCA first, then is recorded here.
    pca.set_status(CertificateAuthorityStatus::Active).await;
    let (st, c) = s
        .api(
            Method::POST,
            &format!("/certificates/{api_id}/revoke"),
            Some(json!({"reason": 1})),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["status"], "revoked", "{c}");
    let revoked = moto_revocations(&moto, &pca.arn).await;
    let (api_cert, _) = held(&s, &api_id).await;
    let want = canonical(api_cert["serial"].as_str().unwrap());
    let (sent, reason) = revoked
        .iter()
        .find(|(k, _)| canonical(k) == want)
        .unwrap_or_else(|| panic!("PCA recorded the revocation of {want}: {revoked:?}"));
    assert_eq!(reason, "KEY_COMPROMISE");
    assert!(
        sent.split(':').all(|b| b.len() == 2),
        "hex bytes separated by colons: {sent}"
    );
    let (st, p) = s
        .api(
            Method::POST,
            &format!("/certificates/{api_id}/revoke"),
            Some(json!({"reason": 1})),
        )
        .await;
    assert_eq!(st, 409, "already revoked: {p}");

    // Managed revocation revokes every valid version at PCA.
    let (st, m) = s
        .api(
            Method::POST,
            "/managed/web/revoke",
            Some(json!({"reason": 4})),
        )
        .await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["status"], "revoked", "{m}");
    let revoked = moto_revocations(&moto, &pca.arn).await;
    for id in [&first, &second] {
        let (c, _) = held(&s, id).await;
        assert_eq!(c["status"], "revoked", "{c}");
        let want = canonical(c["serial"].as_str().unwrap());
        assert_eq!(
            revoked
                .iter()
                .find(|(k, _)| canonical(k) == want)
                .map(|(_, r)| r.clone()),
            Some(json!("SUPERSEDED")),
            "{want}: {revoked:?}"
        );
    }
    let (_, audit) = s
        .api(Method::GET, "/audit?action=certificate.revoke", None)
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["detail"]["upstream"] == "pca"),
        "{audit}"
    );

    // Removal: refused while the profile names it; the certificates stay.
    let (st, p) = s.api(Method::DELETE, "/issuers/pca", None).await;
    assert_eq!(st, 409, "{p}");
    let (st, _) = s.api(Method::DELETE, "/managed/web", None).await;
    assert_eq!(st, 204);
    let (st, _) = s.api(Method::DELETE, "/profiles/internal", None).await;
    assert_eq!(st, 204);
    let (st, p) = s.api(Method::DELETE, "/issuers/pca", None).await;
    assert_eq!(st, 204, "{p}");
    let (_, found) = s.api(Method::GET, "/certificates?ca=pca", None).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 3, "{found}");
}

#[tokio::test]
async fn pca_issuer_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test]
async fn pca_issuer_postgres() {
    scenario(Db::Postgres).await;
}
