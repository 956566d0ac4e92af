//! ACME protocol tests with a small client of our own: the full flow with an IP identifier,
//! authorization reuse, key rollover and deactivation; every kind of bad input answered with
//! the right problem type and nothing stored; and two replicas sharing PostgreSQL.

mod acme_support;
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acme_support::{AccountKey, Acme, ChallSrv, Http01, TlsAlpn01, csr};
use certkeeper_acme::b64;
use common::{Db, TestServer, bin, free_port, openssl, p};
use reqwest::Method;
use serde_json::{Value, json};

async fn start(db: Db, chall: &ChallSrv, http01: &Http01, extra: &[(&str, &str)]) -> TestServer {
    let port = http01.port.to_string();
    let resolvers = chall.resolvers_setting();
    let mut env = vec![
        ("CERTKEEPER_ACME__HTTP01_PORT", port.as_str()),
        ("CERTKEEPER_ACME__DNS_RESOLVERS", resolvers.as_str()),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(db, &env).await
}

async fn flow(db: Db) {
    let chall = ChallSrv::start();
    let http01 = Http01::start().await;
    let alpn = TlsAlpn01::start().await;
    let alpn_port = alpn.port.to_string();
    let s = start(
        db,
        &chall,
        &http01,
        &[("CERTKEEPER_ACME__TLS_ALPN01_PORT", &alpn_port)],
    )
    .await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    assert!(
        c.dir["meta"]["profiles"]["default"].is_string(),
        "{}",
        c.dir
    );

    // Registration; the same key again finds the same account.
    let r = c.register().await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "valid");
    let kid = c.kid.clone().unwrap();
    c.kid = None;
    let again = c
        .post(
            &c.url("newAccount"),
            Some(json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.location(), kid);
    c.kid = Some(kid.clone());

    // An order for a DNS name and an IP address (RFC 8738), validated with http-01.
    let r = c
        .new_order(&[("dns", "Flow.Proto.Test"), ("ip", "127.0.0.1")])
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let order_url = r.location();
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["identifiers"][0]["value"], "flow.proto.test");
    c.solve_http01(&r.body, &http01).await;
    let order = c.post(&order_url, None).await;
    assert_eq!(order.body["status"], "ready", "{}", order.text);

    let der = csr(&["flow.proto.test", "127.0.0.1"]);
    let fin = c
        .post(
            order.body["finalize"].as_str().unwrap(),
            Some(json!({"csr": b64(&der)})),
        )
        .await;
    assert_eq!(fin.status, 200, "{}", fin.text);
    assert_eq!(fin.body["status"], "valid");
    let cert = c
        .post(fin.body["certificate"].as_str().unwrap(), None)
        .await;
    assert_eq!(cert.status, 200);
    assert_eq!(
        cert.headers["content-type"],
        "application/pem-certificate-chain"
    );
    let chain = s.write("chain.pem", &cert.text);
    let root = s.write("root.pem", &s.root_pem);
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&chain),
        p(&chain),
    ]);
    assert!(ok, "{out}");
    let (_, text) = openssl(&["x509", "-in", p(&chain), "-noout", "-ext", "subjectAltName"]);
    assert!(
        text.contains("DNS:flow.proto.test") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );

    // ACME Renewal Information (RFC 9773): a window inside the validity, then moved earlier
    // by an administrator for everything the issuing CA signed.
    let cert_id = ari_cert_id(&chain);
    let ri_url = format!("{}/{cert_id}", c.url("renewalInfo"));
    let ri = s.client.get(&ri_url).send().await.unwrap();
    assert_eq!(ri.status(), 200);
    assert!(ri.headers().contains_key("retry-after"));
    let ri: Value = ri.json().await.unwrap();
    let start = ri["suggestedWindow"]["start"].as_str().unwrap().to_string();
    let (_, certs) = s
        .api(Method::GET, "/certificates?san=flow.proto.test", None)
        .await;
    let ca = certs["items"][0]["ca_id"].as_str().unwrap().to_string();
    let (st, w) = s
        .api(
            Method::POST,
            "/acme/renewal-windows",
            Some(json!({"ca": ca, "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    let ri: Value = s
        .client
        .get(&ri_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ri["suggestedWindow"]["start"], "2026-01-01T00:00:00Z",
        "was {start}: {ri}"
    );
    let unknown = s
        .client
        .get(format!("{}/AAAA.AAAA", c.url("renewalInfo")))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // A second order for the same names reuses the valid authorizations: ready at once.
    let ids =
        json!([{"type": "ip", "value": "127.0.0.1"}, {"type": "dns", "value": "flow.proto.test"}]);
    let r2 = c
        .post(
            &c.url("newOrder"),
            Some(json!({"identifiers": ids, "replaces": cert_id})),
        )
        .await;
    assert_eq!(r2.status, 201);
    assert_eq!(r2.body["status"], "ready", "{}", r2.text);
    let mut a1: Vec<Value> = order.body["authorizations"].as_array().unwrap().clone();
    let mut a2: Vec<Value> = r2.body["authorizations"].as_array().unwrap().clone();
    a1.sort_by_key(|v| v.to_string());
    a2.sort_by_key(|v| v.to_string());
    assert_eq!(a1, a2);

    // A certificate is replaced only once.
    let r3 = c
        .post(
            &c.url("newOrder"),
            Some(json!({"identifiers": ids, "replaces": cert_id})),
        )
        .await;
    r3.assert_problem("alreadyReplaced");

    // The account's orders.
    let orders = c.post(&format!("{kid}/orders"), None).await;
    assert_eq!(
        orders.body["orders"].as_array().unwrap().len(),
        2,
        "{}",
        orders.text
    );

    // Key rollover (RFC 8555 §7.3.5): the old key stops working, the new one works.
    let new_key = AccountKey::generate();
    let kc_url = c.url("keyChange");
    let inner = new_key.sign(
        &json!({"alg": "ES256", "jwk": new_key.jwk, "url": kc_url}),
        Some(&json!({"account": kid, "oldKey": c.key.jwk})),
    );
    let r = c.post(&kc_url, Some(inner)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let old = c.post(&kid, None).await;
    assert_eq!(old.status, 400, "{}", old.text);
    old.assert_problem("malformed");
    c.key = new_key;
    let acct = c.post(&kid, None).await;
    assert_eq!(acct.status, 200, "{}", acct.text);

    // Deactivating an authorization, then the account.
    let authz = a1[0].as_str().unwrap();
    let r = c.post(authz, Some(json!({"status": "deactivated"}))).await;
    assert_eq!(r.body["status"], "deactivated", "{}", r.text);
    let r = c.post(&kid, Some(json!({"status": "deactivated"}))).await;
    assert_eq!(r.body["status"], "deactivated", "{}", r.text);
    let r = c.new_order(&[("dns", "after.proto.test")]).await;
    assert_eq!(r.status, 403, "{}", r.text);
    r.assert_problem("unauthorized");

    // tls-alpn-01 for a name and for an IP address; dns-01 through a CNAME, for a wildcard.
    let mut c2 = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    c2.register().await;
    let r = c2
        .new_order(&[
            ("dns", "alpn.proto.test"),
            ("ip", "127.0.0.1"),
            ("dns", "*.wild.proto.test"),
        ])
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for a in r.body["authorizations"].as_array().unwrap() {
        let a = a.as_str().unwrap();
        let authz = c2.post(a, None).await.body;
        let value = authz["identifier"]["value"].as_str().unwrap().to_string();
        let done = if authz["wildcard"] == true {
            let types: Vec<&str> = authz["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["type"].as_str().unwrap())
                .collect();
            assert_eq!(
                types,
                ["dns-01"],
                "wildcards are validated with dns-01 only"
            );
            let txt = certkeeper_acme::dns01_txt_value(&format!(
                "{}.{}",
                authz["challenges"][0]["token"].as_str().unwrap(),
                c2.key.thumbprint()
            ));
            chall
                .manage("set-cname", json!({"host": format!("_acme-challenge.{value}."), "target": "_acme-challenge.delegated.proto.test."}))
                .await;
            chall
                .manage(
                    "set-txt",
                    json!({"host": "_acme-challenge.delegated.proto.test.", "value": txt}),
                )
                .await;
            c2.solve(a, "dns-01", |_, _| {}).await
        } else {
            c2.solve(a, "tls-alpn-01", |_, ka| alpn.put(&value, ka))
                .await
        };
        assert_eq!(done["status"], "valid", "{done}");
    }
    let fin = c2
        .post(
            r.body["finalize"].as_str().unwrap(),
            Some(json!({"csr": b64(&csr(&["alpn.proto.test", "127.0.0.1", "*.wild.proto.test"]))})),
        )
        .await;
    assert_eq!(fin.body["status"], "valid", "{}", fin.text);

    // A tls-alpn-01 certificate for the wrong key authorization is refused.
    let r = c2.new_order(&[("dns", "alpn-bad.proto.test")]).await;
    let a = r.body["authorizations"][0].as_str().unwrap().to_string();
    let done = c2
        .solve(&a, "tls-alpn-01", |_, _| {
            alpn.put("alpn-bad.proto.test", "wrong")
        })
        .await;
    assert_eq!(done["status"], "invalid", "{done}");
    let ch = done["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "tls-alpn-01")
        .unwrap();
    assert_eq!(
        ch["error"]["type"], "urn:ietf:params:acme:error:incorrectResponse",
        "{done}"
    );

    // Each step is in the audit log.
    let (_, audit) = s
        .api(Method::GET, "/audit?action=acme.account.key_change", None)
        .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
}

/// The RFC 9773 CertID of the first certificate in a PEM file.
fn ari_cert_id(pem: &std::path::Path) -> String {
    let (_, aki) = openssl(&[
        "x509",
        "-in",
        p(pem),
        "-noout",
        "-ext",
        "authorityKeyIdentifier",
    ]);
    let aki_hex: String = aki
        .lines()
        .last()
        .unwrap()
        .trim()
        .trim_start_matches("keyid:")
        .replace(':', "");
    let (_, serial) = openssl(&["x509", "-in", p(pem), "-noout", "-serial"]);
    let serial_hex = serial.trim().trim_start_matches("serial=").to_string();
    let unhex = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    format!("{}.{}", b64(&unhex(&aki_hex)), b64(&unhex(&serial_hex)))
}

#[tokio::test]
async fn flow_sqlite() {
    flow(Db::Sqlite).await;
}

#[tokio::test]
async fn flow_postgres() {
    flow(Db::Postgres).await;
}

async fn bad_inputs(db: Db) {
    let chall = ChallSrv::start();
    let http01 = Http01::start().await;
    let s = start(
        db,
        &chall,
        &http01,
        &[("CERTKEEPER_ACME__PROFILES", "[\"restricted\"]")],
    )
    .await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    let new_account = c.url("newAccount");

    // A forged JWS (payload changed after signing) creates nothing.
    let mut forged = c.key.sign(
        &c.header(&new_account).await,
        Some(&json!({"termsOfServiceAgreed": true})),
    );
    forged["payload"] = json!(b64(
        br#"{"termsOfServiceAgreed":true,"contact":["mailto:x@example.com"]}"#
    ));
    let r = c.post_body(&new_account, &forged).await;
    assert_eq!(r.status, 400);
    r.assert_problem("malformed");
    let none = c
        .post(&new_account, Some(json!({"onlyReturnExisting": true})))
        .await;
    none.assert_problem("accountDoesNotExist");

    // Wrong url: signed for another endpoint.
    let body = c
        .key
        .sign(&c.header(&c.url("newOrder")).await, Some(&json!({})));
    let r = c.post_body(&new_account, &body).await;
    r.assert_problem("unauthorized");

    // Unsupported algorithms: HS256 for an account key, and a curve that does not match.
    for alg in ["HS256", "ES384", "none"] {
        let mut h = c.header(&new_account).await;
        h["alg"] = json!(alg);
        let r = c
            .post_body(&new_account, &c.key.sign(&h, Some(&json!({}))))
            .await;
        r.assert_problem("badSignatureAlgorithm");
    }
    // A symmetric key is not an account key.
    let mut h = c.header(&new_account).await;
    h["jwk"] = json!({"kty": "oct", "k": b64(b"secret")});
    let r = c
        .post_body(&new_account, &c.key.sign(&h, Some(&json!({}))))
        .await;
    r.assert_problem("badPublicKey");

    // Unknown kid.
    let mut h = c.header(&c.url("newOrder")).await;
    h.as_object_mut().unwrap().remove("jwk");
    h["kid"] = json!(s.url("/acme/default/acct/00000000-0000-0000-0000-000000000000"));
    let r = c
        .post_body(&c.url("newOrder"), &c.key.sign(&h, Some(&json!({}))))
        .await;
    r.assert_problem("accountDoesNotExist");

    // Replay: the same signed request twice; the second is refused with a fresh nonce.
    let body = c.key.sign(
        &c.header(&new_account).await,
        Some(&json!({"termsOfServiceAgreed": true})),
    );
    let first = c.post_body(&new_account, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let replay = c.post_body(&new_account, &body).await;
    assert_eq!(replay.status, 400);
    replay.assert_problem("badNonce");
    c.kid = Some(first.location());

    // The same nonce in many requests at once (they reach the server together and their
    // uses are recorded in one batch): exactly one is accepted.
    let account_url = first.location();
    let h = c.header(&account_url).await;
    let body = c.key.sign(&h, None);
    let racers = (0..8).map(|_| c.post_body(&account_url, &body));
    let answers = futures::future::join_all(racers).await;
    let accepted = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        accepted,
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in answers.iter().filter(|r| r.status != 200) {
        r.assert_problem("badNonce");
    }

    // An unknown nonce.
    let mut h = c.header(&c.url("newOrder")).await;
    h["nonce"] = json!("bm90LWEtbm9uY2U");
    let r = c
        .post_body(
            &c.url("newOrder"),
            &c.key.sign(
                &h,
                Some(&json!({"identifiers": [{"type": "dns", "value": "x.proto.test"}]})),
            ),
        )
        .await;
    r.assert_problem("badNonce");

    // Malformed identifiers.
    let r = c.new_order(&[("dns", "bad_name.proto.test")]).await;
    r.assert_problem("rejectedIdentifier");
    assert_eq!(
        r.body["subproblems"][0]["identifier"]["value"], "bad_name.proto.test",
        "{}",
        r.text
    );

    // A name the profile forbids, on a directory whose profile allows one domain only.
    let (st, prof) = s
        .api(Method::POST, "/profiles", Some(json!({"name": "restricted", "ca": "intermediate", "allowed_dns_names": [".allowed.test"]})))
        .await;
    assert_eq!(st, 201, "{prof}");
    let mut rc = Acme::new(s.client.clone(), &s.url("/acme/restricted/directory")).await;
    rc.register().await;
    let r = rc
        .new_order(&[("dns", "ok.allowed.test"), ("dns", "www.forbidden.test")])
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    r.assert_problem("rejectedIdentifier");
    let subs = r.body["subproblems"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{}", r.text);
    assert_eq!(subs[0]["identifier"]["value"], "www.forbidden.test");
    let orders = rc
        .post(&format!("{}/orders", rc.kid.clone().unwrap()), None)
        .await;
    assert_eq!(
        orders.body["orders"],
        json!([]),
        "nothing stored: {}",
        orders.text
    );

    // Finalize before the order is ready.
    let r = c.new_order(&[("dns", "csr.proto.test")]).await;
    let order_url = r.location();
    let finalize = r.body["finalize"].as_str().unwrap().to_string();
    let early = c
        .post(
            &finalize,
            Some(json!({"csr": b64(&csr(&["csr.proto.test"]))})),
        )
        .await;
    early.assert_problem("orderNotReady");

    // A CSR with an extra name: badCSR naming it; the order stays ready, nothing issued.
    c.solve_http01(&r.body, &http01).await;
    let bad = c
        .post(
            &finalize,
            Some(json!({"csr": b64(&csr(&["csr.proto.test", "extra.proto.test"]))})),
        )
        .await;
    bad.assert_problem("badCSR");
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap()
            .contains("extra.proto.test"),
        "{}",
        bad.text
    );
    let garbage = c
        .post(&finalize, Some(json!({"csr": b64(b"not a csr")})))
        .await;
    garbage.assert_problem("badCSR");
    let o = c.post(&order_url, None).await;
    assert_eq!(o.body["status"], "ready", "{}", o.text);
    let (_, certs) = s
        .api(Method::GET, "/certificates?san=extra.proto.test", None)
        .await;
    assert_eq!(certs["items"], json!([]), "{certs}");
    let ok = c
        .post(
            &finalize,
            Some(json!({"csr": b64(&csr(&["csr.proto.test"]))})),
        )
        .await;
    assert_eq!(ok.body["status"], "valid", "{}", ok.text);

    // Another account cannot read this order or download its certificate.
    let mut other = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    other.register().await;
    other
        .post(&order_url, None)
        .await
        .assert_problem("unauthorized");
    other
        .post(ok.body["certificate"].as_str().unwrap(), None)
        .await
        .assert_problem("unauthorized");

    // A failed validation: the responder serves the wrong key authorization.
    let r = c.new_order(&[("dns", "wrong.proto.test")]).await;
    let authz_url = r.body["authorizations"][0].as_str().unwrap().to_string();
    let authz = c.post(&authz_url, None).await.body;
    let ch = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap()
        .clone();
    http01.put(ch["token"].as_str().unwrap(), "not-the-key-authorization");
    c.post(ch["url"].as_str().unwrap(), Some(json!({}))).await;
    let done = c.wait(&authz_url).await;
    assert_eq!(done["status"], "invalid", "{done}");
    let failed = done["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap();
    assert_eq!(
        failed["error"]["type"], "urn:ietf:params:acme:error:incorrectResponse",
        "{done}"
    );
    let o = c.post(&r.location(), None).await;
    assert_eq!(o.body["status"], "invalid", "{}", o.text);

    // dns-01 without a TXT record: unauthorized, reported in the challenge.
    let r = c.new_order(&[("dns", "nobody.proto.test")]).await;
    let authz_url = r.body["authorizations"][0].as_str().unwrap().to_string();
    let authz = c.post(&authz_url, None).await.body;
    let ch = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "dns-01")
        .unwrap()
        .clone();
    c.post(ch["url"].as_str().unwrap(), Some(json!({}))).await;
    let done = c.wait(&authz_url).await;
    let failed = done["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "dns-01")
        .unwrap();
    assert_eq!(
        failed["error"]["type"], "urn:ietf:params:acme:error:unauthorized",
        "{done}"
    );

    // Wrong content type and POST-as-GET misuse.
    let r = s
        .client
        .post(c.url("newOrder"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(
            &format!("{}/orders", c.kid.clone().unwrap()),
            Some(json!({})),
        )
        .await;
    r.assert_problem("malformed");

    // A directory for a profile that has no ACME.
    let r = s
        .client
        .get(s.url("/acme/certkeeper-server/directory"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn bad_inputs_sqlite() {
    bad_inputs(Db::Sqlite).await;
}

#[tokio::test]
async fn bad_inputs_postgres() {
    bad_inputs(Db::Postgres).await;
}

/// A second server process on the same PostgreSQL database.
struct Replica {
    child: std::process::Child,
    https_port: u16,
    _dir: tempfile::TempDir,
}

impl Replica {
    async fn start(first: &TestServer, env: &[(&str, &str)]) -> Replica {
        let replica = Replica::launch(first, env);
        replica.ready(first).await;
        replica
    }

    /// Start the process without waiting for it.
    fn launch(first: &TestServer, env: &[(&str, &str)]) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let https_port = free_port();
        let master = std::fs::read_to_string(first.data_dir.join("master.key")).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env(
                "CERTKEEPER_SERVER__HTTPS_LISTEN",
                format!("127.0.0.1:{https_port}"),
            )
            .env(
                "CERTKEEPER_SERVER__HTTP_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env(
                "CERTKEEPER_DATABASE__URL",
                first.database_url.clone().unwrap(),
            )
            .env("CERTKEEPER_CA__MASTER_KEY", master.trim())
            .env("CERTKEEPER_SERVER__LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Replica {
            child,
            https_port,
            _dir: dir,
        }
    }

    /// Wait until the process answers `/readyz`.
    async fn ready(&self, first: &TestServer) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = first
                .client
                .get(format!("https://localhost:{}/readyz", self.https_port))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "replica did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two servers sharing one PostgreSQL database: a nonce from one is accepted by the other
/// (once), and an order placed on one is validated, finalized and downloaded on the other.
#[tokio::test]
async fn two_replicas_share_nonces_and_orders() {
    let chall = ChallSrv::start();
    let http01 = Http01::start().await;
    let a = start(Db::Postgres, &chall, &http01, &[]).await;
    let port = http01.port.to_string();
    let resolvers = chall.resolvers_setting();
    let b = Replica::start(
        &a,
        &[
            ("CERTKEEPER_ACME__HTTP01_PORT", port.as_str()),
            ("CERTKEEPER_ACME__DNS_RESOLVERS", resolvers.as_str()),
        ],
    )
    .await;
    let on_b = |url: &str| {
        url.replace(
            &format!(":{}/", a.https_port),
            &format!(":{}/", b.https_port),
        )
    };

    let mut c = Acme::new(a.client.clone(), &a.url("/acme/directory")).await;
    c.register().await;
    // A nonce from A, used at B.
    let url_b = on_b(&c.url("newOrder"));
    let mut h = c.header(&url_b).await;
    h["url"] = json!(url_b);
    let body = c.key.sign(
        &h,
        Some(&json!({"identifiers": [{"type": "dns", "value": "replica.proto.test"}]})),
    );
    let r = c.post_body(&url_b, &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The same nonce again, now at A: used already.
    let mut h2 = h.clone();
    h2["url"] = json!(c.url("newOrder"));
    let again = c
        .post_body(
            &c.url("newOrder"),
            &c.key.sign(
                &h2,
                Some(&json!({"identifiers": [{"type": "dns", "value": "replica.proto.test"}]})),
            ),
        )
        .await;
    again.assert_problem("badNonce");

    // The order made on B is solved through A and finalized and downloaded through B.
    let order_b = r.location();
    assert!(order_b.contains(&format!(":{}/", b.https_port)));
    let order_a = order_b.replace(
        &format!(":{}/", b.https_port),
        &format!(":{}/", a.https_port),
    );
    let order = c.post(&order_a, None).await;
    let mut body = order.body.clone();
    body["authorizations"] = json!(
        body["authorizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| json!(u.as_str().unwrap().replace(
                &format!(":{}/", b.https_port),
                &format!(":{}/", a.https_port)
            )))
            .collect::<Vec<_>>()
    );
    c.solve_http01(&body, &http01).await;
    let fin = c
        .post(
            &on_b(order.body["finalize"].as_str().unwrap()),
            Some(json!({"csr": b64(&csr(&["replica.proto.test"]))})),
        )
        .await;
    assert_eq!(fin.body["status"], "valid", "{}", fin.text);
    let cert = c
        .post(&on_b(fin.body["certificate"].as_str().unwrap()), None)
        .await;
    assert_eq!(cert.status, 200, "{}", cert.text);
    assert!(cert.text.starts_with("-----BEGIN CERTIFICATE-----"));
}

/// The external account binding JWS for `jwk` (RFC 8555 §7.3.4).
fn eab_jws(kid: &str, hmac_key: &str, url: &str, jwk: &Value) -> Value {
    let protected = b64(json!({"alg": "HS256", "kid": kid, "url": url})
        .to_string()
        .as_bytes());
    let payload = b64(jwk.to_string().as_bytes());
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        &certkeeper_acme::b64_decode(hmac_key, "key").unwrap(),
    );
    let mac = aws_lc_rs::hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64(mac.as_ref())})
}

async fn eab(db: Db) {
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_ACME__EAB_REQUIRED", "[\"default\"]"),
            ("CERTKEEPER_ACME__NEW_ORDERS_PER_ACCOUNT_PER_HOUR", "1"),
        ],
    )
    .await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    assert_eq!(c.dir["meta"]["externalAccountRequired"], true, "{}", c.dir);
    let new_account = c.url("newAccount");

    // Without a binding: externalAccountRequired, and no account.
    let r = c
        .post(&new_account, Some(json!({"termsOfServiceAgreed": true})))
        .await;
    r.assert_problem("externalAccountRequired");

    // A key from the REST API; its secret is shown once.
    let (st, key) = s
        .api(
            Method::POST,
            "/acme/eab-keys",
            Some(json!({"profile": "default", "name": "team-a"})),
        )
        .await;
    assert_eq!(st, 201, "{key}");
    let kid = key["id"].as_str().unwrap().to_string();
    let hmac = key["hmac_key"].as_str().unwrap().to_string();
    let (st, bad) = s
        .api(
            Method::POST,
            "/acme/eab-keys",
            Some(json!({"profile": "certkeeper-server"})),
        )
        .await;
    assert_eq!(st, 400, "{bad}");

    // A wrong MAC key, and a binding over another account key, are refused.
    let wrong = eab_jws(&kid, &b64(&[7u8; 32]), &new_account, &c.key.jwk);
    let r = c
        .post(
            &new_account,
            Some(json!({"termsOfServiceAgreed": true, "externalAccountBinding": wrong})),
        )
        .await;
    r.assert_problem("unauthorized");
    let other = AccountKey::generate();
    let mismatched = eab_jws(&kid, &hmac, &new_account, &other.jwk);
    let r = c
        .post(
            &new_account,
            Some(json!({"termsOfServiceAgreed": true, "externalAccountBinding": mismatched})),
        )
        .await;
    r.assert_problem("unauthorized");

    // The right binding registers the account.
    let good = eab_jws(&kid, &hmac, &new_account, &c.key.jwk);
    let r = c
        .post(
            &new_account,
            Some(json!({"termsOfServiceAgreed": true, "externalAccountBinding": good})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    c.kid = Some(r.location());
    let order = c.new_order(&[("dns", "eab.proto.test")]).await;
    assert_eq!(order.status, 201, "{}", order.text);

    // The per-account order rate limit (shared through the database): rateLimited with
    // Retry-After, and the order is not stored.
    let limited = c.new_order(&[("dns", "eab2.proto.test")]).await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    limited.assert_problem("rateLimited");
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    let orders = c
        .post(&format!("{}/orders", c.kid.clone().unwrap()), None)
        .await;
    assert_eq!(
        orders.body["orders"].as_array().unwrap().len(),
        1,
        "{}",
        orders.text
    );

    // The key binds one account only.
    let mut c2 = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    let again = eab_jws(&kid, &hmac, &new_account, &c2.key.jwk);
    let r = c2
        .post(
            &new_account,
            Some(json!({"termsOfServiceAgreed": true, "externalAccountBinding": again})),
        )
        .await;
    r.assert_problem("unauthorized");
    c2.kid = None;

    // The list shows the binding and never the secret.
    let (_, list) = s.api(Method::GET, "/acme/eab-keys", None).await;
    assert_eq!(
        list["items"][0]["account_id"].as_str(),
        c.kid.as_deref().and_then(|k| k.rsplit('/').next())
    );
    assert!(!list.to_string().contains(&hmac));
}

#[tokio::test]
async fn eab_sqlite() {
    eab(Db::Sqlite).await;
}

#[tokio::test]
async fn eab_postgres() {
    eab(Db::Postgres).await;
}

/// The challenge of a type in an authorization document.
fn challenge_of<'a>(authz: &'a Value, kind: &str) -> &'a Value {
    authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} challenge: {authz}"))
}

/// Order one name and validate it with http-01 (dns-01 for a wildcard); returns the final
/// authorization and the order URL.
async fn validate_one(c: &Acme, chall: &ChallSrv, http01: &Http01, name: &str) -> (Value, String) {
    let r = c.new_order(&[("dns", name)]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let a = r.body["authorizations"][0].as_str().unwrap().to_string();
    let done = match name.strip_prefix("*.") {
        Some(base) => {
            let authz = c.post(&a, None).await.body;
            let token = challenge_of(&authz, "dns-01")["token"].as_str().unwrap();
            let ka = format!("{token}.{}", c.key.thumbprint());
            chall
                .manage(
                    "set-txt",
                    json!({"host": format!("_acme-challenge.{base}."),
                           "value": certkeeper_acme::dns01_txt_value(&ka)}),
                )
                .await;
            c.solve(&a, "dns-01", |_, _| {}).await
        }
        None => c.solve(&a, "http-01", |t, ka| http01.put(t, ka)).await,
    };
    (done, r.location())
}

/// Finalize a ready order for `name` with a fresh CSR.
async fn finalize_ready(c: &Acme, order: &str, name: &str) -> acme_support::Resp {
    let o = c.post(order, None).await;
    assert_eq!(o.body["status"], "ready", "{}", o.text);
    c.post(
        o.body["finalize"].as_str().unwrap(),
        Some(json!({"csr": b64(&csr(&[name]))})),
    )
    .await
}

/// CAA (RFC 8659) with `acme.caa_identities` set, against CAA records served by
/// pebble-challtestsrv: no records, our own name, another CA's, a parent's records applying to
/// a subdomain (and a closer set overriding them), `issuewild` for wildcards, and a failing
/// lookup.
async fn caa(db: Db) {
    let chall = ChallSrv::start();
    let http01 = Http01::start().await;
    let s = start(
        db,
        &chall,
        &http01,
        &[("CERTKEEPER_ACME__CAA_IDENTITIES", "[\"certkeeper.test\"]")],
    )
    .await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    assert_eq!(
        c.dir["meta"]["caaIdentities"],
        json!(["certkeeper.test"]),
        "{}",
        c.dir
    );
    c.register().await;
    let caa = |host: &str, policies: Value| {
        chall.manage(
            "add-caa",
            json!({"host": format!("{host}."), "policies": policies}),
        )
    };
    caa(
        "ours.proto.test",
        json!([{"tag": "issue", "value": "CertKeeper.Test; accounturi=https://x.example/acct/1"},
               {"tag": "iodef", "value": "mailto:security@proto.test"}]),
    )
    .await;
    caa(
        "theirs.proto.test",
        json!([{"tag": "issue", "value": "other-ca.example"}]),
    )
    .await;
    caa(
        "parent.proto.test",
        json!([{"tag": "issue", "value": "other-ca.example"}]),
    )
    .await;
    caa(
        "closer.parent.proto.test",
        json!([{"tag": "issue", "value": "certkeeper.test"}]),
    )
    .await;
    caa(
        "wild.proto.test",
        json!([{"tag": "issue", "value": "certkeeper.test"}, {"tag": "issuewild", "value": ";"}]),
    )
    .await;
    chall
        .manage("set-servfail", json!({"host": "broken.proto.test."}))
        .await;

    let validate = |name: &'static str| validate_one(&c, &chall, &http01, name);

    // (a) No CAA anywhere: valid.
    let (done, _) = validate("none.proto.test").await;
    assert_eq!(done["status"], "valid", "{done}");
    // (b) CAA naming this CA (case and parameters aside): valid.
    let (done, _) = validate("ours.proto.test").await;
    assert_eq!(done["status"], "valid", "{done}");

    // (c) CAA naming another CA: the challenge, authorization and order are invalid with
    // the caa error type, naming the record.
    let (done, order) = validate("theirs.proto.test").await;
    assert_eq!(done["status"], "invalid", "{done}");
    let err = &challenge_of(&done, "http-01")["error"];
    assert_eq!(err["type"], "urn:ietf:params:acme:error:caa", "{done}");
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.contains("theirs.proto.test") && detail.contains("other-ca.example"),
        "{detail}"
    );
    let o = c.post(&order, None).await;
    assert_eq!(o.body["status"], "invalid", "{}", o.text);

    // (d) The parent's CAA applies to a subdomain without its own ...
    let (done, _) = validate("www.parent.proto.test").await;
    assert_eq!(done["status"], "invalid", "{done}");
    let err = &challenge_of(&done, "http-01")["error"];
    assert_eq!(err["type"], "urn:ietf:params:acme:error:caa", "{done}");
    assert!(
        err["detail"]
            .as_str()
            .unwrap()
            .contains("CAA record for parent.proto.test"),
        "{done}"
    );
    // ... and the closest set decides: a subdomain's own CAA overrides its parent's.
    let (done, _) = validate("www.closer.parent.proto.test").await;
    assert_eq!(done["status"], "valid", "{done}");

    // issuewild decides for wildcards, issue for the plain name.
    let (done, _) = validate("wild.proto.test").await;
    assert_eq!(done["status"], "valid", "{done}");
    let (done, _) = validate("*.wild.proto.test").await;
    assert_eq!(done["status"], "invalid", "{done}");
    let err = &challenge_of(&done, "dns-01")["error"];
    assert_eq!(err["type"], "urn:ietf:params:acme:error:caa", "{done}");
    assert!(
        err["detail"].as_str().unwrap().contains("issuewild"),
        "{done}"
    );

    // A CAA lookup that fails (SERVFAIL at the parent) forbids issuance too.
    let (done, _) = validate("www.broken.proto.test").await;
    assert_eq!(done["status"], "invalid", "{done}");
    let err = &challenge_of(&done, "http-01")["error"];
    assert_eq!(err["type"], "urn:ietf:params:acme:error:dns", "{done}");
    assert!(err["detail"].as_str().unwrap().contains("CAA"), "{done}");

    // CAA published after validation: within eight hours of the check the order is
    // finalized; a reused authorization validated longer ago is checked again at finalize.
    let (done, first) = validate("later.proto.test").await;
    assert_eq!(done["status"], "valid", "{done}");
    caa(
        "later.proto.test",
        json!([{"tag": "issue", "value": "other-ca.example"}]),
    )
    .await;
    let fin = finalize_ready(&c, &first, "later.proto.test").await;
    assert_eq!(fin.body["status"], "valid", "{}", fin.text);

    let again = c.new_order(&[("dns", "later.proto.test")]).await;
    assert_eq!(again.status, 201, "{}", again.text);
    let second = again.location();
    let challenge_id = challenge_of(&done, "http-01")["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let nine_hours_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 9 * 3600;
    db_execute(
        &s,
        "UPDATE acme_challenges SET validated_at = $1 WHERE id = $2",
        &[(nine_hours_ago, challenge_id.as_str())],
    )
    .await;
    let fin = finalize_ready(&c, &second, "later.proto.test").await;
    assert_eq!(fin.status, 403, "{}", fin.text);
    fin.assert_problem("caa");
    assert!(fin.text.contains("other-ca.example"), "{}", fin.text);
    // Nothing was issued and the order is still ready: once the record is gone, it goes
    // through.
    chall
        .manage("clear-caa", json!({"host": "later.proto.test."}))
        .await;
    let fin = finalize_ready(&c, &second, "later.proto.test").await;
    assert_eq!(fin.body["status"], "valid", "{}", fin.text);
}

#[tokio::test]
async fn caa_sqlite() {
    caa(Db::Sqlite).await;
}

#[tokio::test]
async fn caa_postgres() {
    caa(Db::Postgres).await;
}

/// Run one statement on the server's database (SQLite file or PostgreSQL), as a process
/// that died would have left it.
async fn db_execute(s: &TestServer, sql: &str, binds: &[(i64, &str)]) {
    sqlx::any::install_default_drivers();
    let url = match &s.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}", s.data_dir.join("certkeeper.db").display()),
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for (n, id) in binds {
        let done = sqlx::query(sql)
            .bind(*n)
            .bind(*id)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql} {id}");
    }
    pool.close().await;
}

/// Poll an authorization until it leaves pending/processing, with a generous deadline.
async fn settled(c: &Acme, authz_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body = c.post(authz_url, None).await.body;
        let st = body["status"].as_str().unwrap_or("").to_string();
        if st != "pending" && st != "processing" {
            return body;
        }
        assert!(Instant::now() < deadline, "{authz_url} stayed {st}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Challenges whose validation was left unfinished by a process that died: simulated by
/// setting them `processing` with a start time an hour ago directly in the database while no
/// server runs. The next server to start (on PostgreSQL: two replicas starting together)
/// takes each over exactly once and validates it, so its authorization ends valid; a
/// challenge that only just started processing is left to its own validation.
async fn stuck_validations(db: Db) {
    const STUCK: usize = 6;
    let chall = ChallSrv::start();
    let http01 = Http01::start().await;
    let port = http01.port.to_string();
    let resolvers = chall.resolvers_setting();
    let env = [
        ("CERTKEEPER_ACME__HTTP01_PORT", port.as_str()),
        ("CERTKEEPER_ACME__DNS_RESOLVERS", resolvers.as_str()),
    ];
    let mut s = TestServer::start_with(db, &env).await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    c.register().await;
    let mut names: Vec<String> = (0..STUCK).map(|i| format!("stuck{i}.proto.test")).collect();
    names.push("fresh.proto.test".into());
    let ids: Vec<(&str, &str)> = names.iter().map(|n| ("dns", n.as_str())).collect();
    let order = c.new_order(&ids).await;
    assert_eq!(order.status, 201, "{}", order.text);

    // The responder is ready for the stuck ones, so validating them again succeeds.
    let mut stuck = Vec::new();
    let mut fresh = None;
    for a in order.body["authorizations"].as_array().unwrap() {
        let a = a.as_str().unwrap().to_string();
        let authz = c.post(&a, None).await.body;
        let ch = challenge_of(&authz, "http-01");
        let token = ch["token"].as_str().unwrap();
        let id = ch["url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        if authz["identifier"]["value"] == "fresh.proto.test" {
            fresh = Some((a, id));
        } else {
            http01.put(token, &format!("{token}.{}", c.key.thumbprint()));
            stuck.push((a, id));
        }
    }
    let (fresh_authz, fresh_id) = fresh.unwrap();

    s.stop();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let update =
        "UPDATE acme_challenges SET status = 'processing', processing_since = $1 WHERE id = $2";
    let old: Vec<(i64, &str)> = stuck
        .iter()
        .map(|(_, id)| (now - 3600, id.as_str()))
        .collect();
    db_execute(&s, update, &old).await;
    db_execute(&s, update, &[(now, fresh_id.as_str())]).await;

    let replica = (db == Db::Postgres).then(|| Replica::launch(&s, &env));
    s.spawn(&env).await;
    if let Some(r) = &replica {
        r.ready(&s).await;
    }
    for (a, _) in &stuck {
        let done = settled(&c, a).await;
        assert_eq!(done["status"], "valid", "{done}");
        assert_eq!(challenge_of(&done, "http-01")["status"], "valid", "{done}");
    }
    let f = c.post(&fresh_authz, None).await.body;
    assert_eq!(f["status"], "pending", "{f}");
    assert_eq!(challenge_of(&f, "http-01")["status"], "processing", "{f}");

    // Each stuck challenge was taken over exactly once, by one server.
    let (st, audit) = s
        .api(Method::GET, "/audit?action=acme.challenge.reclaim", None)
        .await;
    assert_eq!(st, 200, "{audit}");
    let mut reclaimed: Vec<String> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object_id"].as_str().unwrap().to_string())
        .collect();
    reclaimed.sort();
    let mut expected: Vec<String> = stuck.iter().map(|(_, id)| id.clone()).collect();
    expected.sort();
    assert_eq!(reclaimed, expected, "{audit}");
}

#[tokio::test]
async fn stuck_validations_sqlite() {
    stuck_validations(Db::Sqlite).await;
}

#[tokio::test]
async fn stuck_validations_postgres() {
    stuck_validations(Db::Postgres).await;
}

/// An order whose finalization was cut off by a stopped process (left `processing`) is
/// ended as invalid with a serverInternal error when a server starts, so its client stops
/// polling; an order that has only just started processing is left alone.
async fn interrupted_finalize(db: Db) {
    let mut s = TestServer::start(db).await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    c.register().await;
    let mut urls = Vec::new();
    for name in ["cut.proto.test", "busy.proto.test"] {
        let o = c.new_order(&[("dns", name)]).await;
        assert_eq!(o.status, 201, "{}", o.text);
        urls.push(o.location());
    }
    let id = |u: &str| u.rsplit('/').next().unwrap().to_string();
    let (cut, busy) = (id(&urls[0]), id(&urls[1]));

    s.stop();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let update =
        "UPDATE acme_orders SET status = 'processing', processing_since = $1 WHERE id = $2";
    db_execute(
        &s,
        update,
        &[(now - 3600, cut.as_str()), (now, busy.as_str())],
    )
    .await;
    s.spawn(&[]).await;

    let deadline = Instant::now() + Duration::from_secs(120);
    let ended = loop {
        let o = c.post(&urls[0], None).await;
        if o.body["status"] != "processing" {
            break o;
        }
        assert!(
            Instant::now() < deadline,
            "order still processing: {}",
            o.text
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(ended.body["status"], "invalid", "{}", ended.text);
    assert_eq!(
        ended.body["error"]["type"], "urn:ietf:params:acme:error:serverInternal",
        "{}",
        ended.text
    );
    let other = c.post(&urls[1], None).await;
    assert_eq!(other.body["status"], "processing", "{}", other.text);

    let (st, audit) = s
        .api(Method::GET, "/audit?action=acme.order.interrupted", None)
        .await;
    assert_eq!(st, 200, "{audit}");
    let ids: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![cut.as_str()], "{audit}");
}

#[tokio::test]
async fn interrupted_finalize_sqlite() {
    interrupted_finalize(Db::Sqlite).await;
}

#[tokio::test]
async fn interrupted_finalize_postgres() {
    interrupted_finalize(Db::Postgres).await;
}

/// Nonces across a restart. On SQLite (one process) uses are remembered in memory under a
/// key made at start, so every nonce from before the restart is refused after it, used or
/// not; on PostgreSQL (a shared key and table) an unused one is still accepted and a used
/// one still refused. Either way no nonce is accepted twice.
async fn nonces_across_a_restart(db: Db) {
    let mut s = TestServer::start(db).await;
    let mut c = Acme::new(s.client.clone(), &s.url("/acme/directory")).await;
    c.register().await;
    let new_order = c.url("newOrder");
    let order_for = |name: &str| json!({"identifiers": [{"type": "dns", "value": name}]});

    let used = c.header(&new_order).await;
    let first = c
        .post_body(
            &new_order,
            &c.key.sign(&used, Some(&order_for("a.restart.test"))),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let unused = c.header(&new_order).await;

    s.stop();
    s.spawn(&[]).await;

    let replay = c
        .post_body(
            &new_order,
            &c.key.sign(&used, Some(&order_for("b.restart.test"))),
        )
        .await;
    replay.assert_problem("badNonce");
    let earlier = c
        .post_body(
            &new_order,
            &c.key.sign(&unused, Some(&order_for("c.restart.test"))),
        )
        .await;
    match db {
        Db::Sqlite => earlier.assert_problem("badNonce"),
        Db::Postgres => assert_eq!(earlier.status, 201, "{}", earlier.text),
    }
    // Refused requests stored nothing; a fresh nonce works as before.
    let fresh = c.new_order(&[("dns", "d.restart.test")]).await;
    assert_eq!(fresh.status, 201, "{}", fresh.text);
    let orders = c
        .post(&format!("{}/orders", c.kid.clone().unwrap()), None)
        .await;
    let expected = if db == Db::Sqlite { 2 } else { 3 };
    assert_eq!(
        orders.body["orders"].as_array().map(Vec::len),
        Some(expected),
        "{}",
        orders.text
    );
}

#[tokio::test]
async fn nonces_across_a_restart_sqlite() {
    nonces_across_a_restart(Db::Sqlite).await;
}

#[tokio::test]
async fn nonces_across_a_restart_postgres() {
    nonces_across_a_restart(Db::Postgres).await;
}
