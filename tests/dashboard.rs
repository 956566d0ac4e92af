//! The web dashboard at `/`.
//!
//! Without JavaScript, as a plain HTTP client (every read-only view, sign-in, the session
//! cookie's attributes, CSRF refusals, roles, sign-out, EST labels refused and made, CA key
//! storage without a token, ACME accounts and orders page by page), on SQLite and
//! PostgreSQL; and in real headless Chromium driven over WebDriver by `chromedriver`
//! (Debian `chromium-driver`, installed by `.ci/test`), on SQLite and PostgreSQL: sign in,
//! create an intermediate, issue a certificate through the form, find it, revoke it and see
//! it revoked on its page and in OCSP (`openssl ocsp`), a forged POST without the CSRF token
//! refused; an account and order of a real ACME client (`instant-acme`, http-01) with the
//! certificate it got; an EST label made through the form and an enrollment under it; a
//! push to a destination that refuses shown among the overview's failures, and its alert,
//! dead at a receiver that refuses, retried and delivered once the receiver accepts; a
//! viewer without the admin actions; sign out. Chromium's screenshots of each page are left
//! in `target/dashboard-screenshots/<database>/`.

mod acme_support;
mod common;
use acme_support::{Http01, csr};
use common::plain::{Plain, SESSION};
use common::*;
use instant_acme::{
    Account, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

/// The overview's count of valid certificates.
fn count_valid(html: &str) -> u64 {
    let at =
        html.find("id=\"count-valid\">").expect("the valid count") + "id=\"count-valid\">".len();
    html[at..at + html[at..].find('<').unwrap()]
        .parse()
        .unwrap()
}

/// Issue a certificate for `name` through the API; returns its JSON.
async fn issue(s: &TestServer, name: &str) -> Value {
    let (status, body) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": [name], "common_name": name})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn read_only_views_without_javascript(db: Db) {
    let s = TestServer::start(db).await;
    let mut b = Plain::new(&s);

    // No session: every page sends the browser to the sign-in form.
    for path in ["/", "/hierarchy", "/certificates", "/profiles", "/audit"] {
        let p = b.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        assert_eq!(p.location.as_deref(), Some("/sign-in"), "{path}");
    }
    // A wrong token is refused on the form, with the API's reason.
    let p = b.sign_in("ck_not-a-token").await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("unknown token"), "{}", p.body);
    assert!(b.session().is_none());
    // The sign-in form itself needs its double-submit token.
    let p = b.post("/sign-in", &[("token", &s.token)]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(b.session().is_none());

    let p = b.sign_in(&s.token).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location.as_deref(), Some("/"));
    let cookie = p
        .set_cookies
        .iter()
        .find(|c| c.starts_with(SESSION))
        .expect("a session cookie");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    // The cookie is sealed: the token is nowhere in it.
    assert!(!cookie.contains(&s.token));

    let valid_before = count_valid(&b.get("/").await.body);
    let web = issue(&s, "web.dash.test").await;
    let other = issue(&s, "api.dash.test").await;
    let id = web["id"].as_str().unwrap();
    let serial = web["serial"].as_str().unwrap();

    // Every read-only view renders on the server, with what it must show.
    let overview = b.get("/").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert_eq!(
        count_valid(&overview.body),
        valid_before + 2,
        "{}",
        overview.body
    );
    assert!(overview.body.contains("<svg"), "the expiry chart");
    assert!(overview.body.contains("intermediate"));
    let csp = overview.headers["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(overview.headers["cache-control"], "no-store");
    assert!(!overview.body.contains("//cdn") && !overview.body.contains("http://"));

    let h = b.get("/hierarchy").await;
    assert_eq!(h.status, 200);
    assert!(h.body.contains("root") && h.body.contains("intermediate"));
    assert!(h.body.contains("id=\"create-ca\""), "admins may create CAs");

    let list = b.get("/certificates").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("web.dash.test") && list.body.contains("api.dash.test"));
    // Search by name, by serial (with colons, upper case) and by fingerprint.
    let found = b.get("/certificates?by=name&q=web.dash.test").await;
    assert!(found.body.contains("web.dash.test") && !found.body.contains("api.dash.test"));
    let colons: Vec<String> = serial
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let found = b
        .get(&format!("/certificates?by=serial&q={}", colons.join(":")))
        .await;
    assert!(found.body.contains("web.dash.test") && !found.body.contains("api.dash.test"));
    let detail = b.get(&format!("/certificates/{id}")).await;
    assert_eq!(detail.status, 200);
    let fp_at = detail.body.find("id=\"fingerprint\">").unwrap() + "id=\"fingerprint\">".len();
    let fingerprint = &detail.body[fp_at..fp_at + 64];
    let found = b
        .get(&format!("/certificates?by=fingerprint&q={fingerprint}"))
        .await;
    assert!(found.body.contains("web.dash.test") && !found.body.contains("api.dash.test"));
    let found = b.get("/certificates?status=revoked").await;
    assert!(found.body.contains("No certificate matches."));
    assert!(detail.body.contains("BEGIN CERTIFICATE"));
    assert!(detail.body.contains("id=\"revoke-submit\""));
    let pem = b.get(&format!("/certificates/{id}/download/pem")).await;
    assert_eq!(pem.status, 200);
    assert_eq!(
        pem.body.matches("BEGIN CERTIFICATE").count(),
        3,
        "leaf and chain"
    );
    // Paging: one page at a time, with a link to the next.
    let missing = b.get("/certificates/no-such-id").await;
    assert_eq!(missing.status, 404);

    let profiles = b.get("/profiles").await;
    assert_eq!(profiles.status, 200);
    assert!(profiles.body.contains("default"));
    let profile = b.get("/profiles/default").await;
    assert_eq!(profile.status, 200);
    assert!(profile.body.contains("<textarea"), "admins may edit");

    let tokens = b.get("/tokens").await;
    assert_eq!(tokens.status, 200);
    assert!(tokens.body.contains("admin"));
    assert!(
        !tokens.body.contains(&s.token),
        "no secret is ever rendered"
    );

    let audit = b.get("/audit?action=certificate.issue").await;
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains(id) && !audit.body.contains("ca.create"));
    let audit = b.get("/audit?object=certificate&actor=admin").await;
    assert!(audit.body.contains(other["id"].as_str().unwrap()));
    let audit = b
        .get("/audit?since=2000-01-01T00:00&until=2000-01-02T00:00")
        .await;
    assert!(audit.body.contains("No entry matches."), "{}", audit.body);

    // A POST without the session's CSRF token is refused and changes nothing.
    let forged = b
        .post(&format!("/certificates/{id}/revoke"), &[("reason", "1")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let forged = b
        .post(
            &format!("/certificates/{id}/revoke"),
            &[("reason", "1"), ("csrf", "00")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let (_, still) = s
        .api(Method::GET, &format!("/certificates/{id}"), None)
        .await;
    assert_eq!(still["status"], "valid");

    // A profile edit the service refuses shows its message next to the text.
    let csrf = profile.csrf();
    let bad = b
        .post(
            "/profiles/default",
            &[
                ("csrf", &csrf),
                ("document", "{\"max_validity_days\": \"x\"}"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("invalid profile"), "{}", bad.body);

    // Tags: set through the form, shown on the page, the same as the API reads them.
    let csrf = detail.csrf();
    let tagged = b
        .post(
            &format!("/certificates/{id}/tags"),
            &[("csrf", &csrf), ("tags", "team:web, env:prod")],
        )
        .await;
    assert_eq!(tagged.status, 303, "{}", tagged.body);
    let page = b.get(&format!("/certificates/{id}")).await;
    assert!(
        page.body.contains("id=\"tags\">env:prod, team:web<"),
        "{}",
        page.body
    );
    let fp = web["fingerprint"]
        .as_str()
        .unwrap_or(fingerprint)
        .to_string();
    let (_, tags) = s
        .api(Method::GET, &format!("/alerts/tags/{fp}"), None)
        .await;
    assert_eq!(tags["tags"], json!(["env:prod", "team:web"]), "{tags}");
    let bad = b
        .post(
            &format!("/certificates/{id}/tags"),
            &[("csrf", &csrf), ("tags", "no spaces? <b>")],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(!bad.body.contains("<b>"), "rendered text is escaped");

    // A viewer sees the pages it may read and no button it cannot use.
    let (_, viewer) = s
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "watcher", "role": "viewer"})),
        )
        .await;
    let mut v = Plain::new(&s);
    assert_eq!(
        v.sign_in(viewer["token"].as_str().unwrap()).await.status,
        303
    );
    let vd = v.get(&format!("/certificates/{id}")).await;
    assert_eq!(vd.status, 200);
    assert!(!vd.body.contains("revoke-submit") && !vd.body.contains("/revoke"));
    assert!(!vd.body.contains("edit-tags") && vd.body.contains("team:web"));
    let vl = v.get("/certificates").await;
    assert!(
        !vl.body.contains("id=\"issue\""),
        "no issue form for a viewer"
    );
    let vh = v.get("/hierarchy").await;
    assert!(!vh.body.contains("create-ca"));
    let vo = v.get("/").await;
    assert!(!vo.body.contains("href=\"/tokens\"") && !vo.body.contains("href=\"/audit\""));
    assert_eq!(v.get("/tokens").await.status, 403);
    assert_eq!(v.get("/audit").await.status, 403);
    // Even with its own valid CSRF token, the service refuses what the role may not do.
    let csrf = vd.csrf();
    let refused = v
        .post(
            &format!("/certificates/{id}/revoke"),
            &[("reason", "1"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, 403);
    // Revoking the token ends its sessions at once.
    let (st, _) = s
        .api(
            Method::DELETE,
            &format!("/tokens/{}", viewer["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(st == 204 || st == 200, "{st}");
    let ended = v.get("/").await;
    assert_eq!(ended.status, 303);

    // A tampered cookie is no session.
    let mut t = Plain::new(&s);
    let mut value = b.session().unwrap().to_string();
    let last = value.pop().unwrap();
    value.push(if last == 'A' { 'B' } else { 'A' });
    t.cookies.push((SESSION.into(), value));
    assert_eq!(t.get("/").await.status, 303);

    // Sign-out clears the cookie.
    let csrf = overview.csrf();
    let out = b.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(
        out.set_cookies
            .iter()
            .any(|c| c.starts_with(SESSION) && c.contains("Max-Age=0"))
    );
    assert!(b.session().is_none());
    assert_eq!(b.get("/").await.status, 303);

    // The script and the style sheet come from the binary.
    for asset in ["/assets/dashboard.js", "/assets/dashboard.css"] {
        let a = b.get(asset).await;
        assert_eq!(a.status, 200, "{asset}");
        assert!(!a.body.is_empty());
    }
}

#[tokio::test]
async fn read_only_views_without_javascript_sqlite() {
    read_only_views_without_javascript(Db::Sqlite).await;
}

#[tokio::test]
async fn read_only_views_without_javascript_postgres() {
    read_only_views_without_javascript(Db::Postgres).await;
}

/// A webhook receiver on 127.0.0.1 that accepts everything; returns its URL.
async fn accepting_receiver() -> String {
    receiver(Arc::new(AtomicBool::new(true)), Arc::default()).await
}

/// A webhook receiver on 127.0.0.1 that answers 500 while `accept` is false and 200 once
/// it is true, counting the notifications it accepted in `accepted`; returns its URL.
async fn receiver(accept: Arc<AtomicBool>, accepted: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (accept, accepted) = (accept.clone(), accepted.clone());
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 65536];
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await;
                let answer: &[u8] = if accept.load(Ordering::SeqCst) {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                let _ = conn.write_all(answer).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn alerts_and_managed_pages_without_javascript() {
    let s = TestServer::start(Db::Sqlite).await;
    let url = accepting_receiver().await;
    let (st, ch) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({"name": "ops-hook", "kind": "webhook", "url": url, "hmac_key": "sekrit-key"})),
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "web", "profile": "default", "dns_names": ["web.managed.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let mid = m["id"].as_str().unwrap();

    let mut b = Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);

    // Alerts: the channel (never its secret), and "send test" reaches the receiver.
    let alerts = b.get("/alerts").await;
    assert_eq!(alerts.status, 200, "{}", alerts.body);
    assert!(alerts.body.contains("ops-hook") && !alerts.body.contains("sekrit-key"));
    let csrf = alerts.csrf();
    let test = b
        .post(
            &format!("/alerts/channels/{}/test", ch["id"].as_str().unwrap()),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(test.status, 200, "{}", test.body);
    assert!(
        test.body.contains("Test notification delivered"),
        "{}",
        test.body
    );
    let outbox = b.get("/alerts?status=dead").await;
    assert_eq!(outbox.status, 200);
    assert!(!outbox.body.contains("retry-all"), "nothing dead to retry");
    // Retrying: a forged POST is refused; nothing dead is nothing retried; an unknown
    // row is 404, on the page and on the API.
    let forged = b.post("/alerts/outbox/retry", &[]).await;
    assert_eq!(forged.status, 403);
    let none = b.post("/alerts/outbox/retry", &[("csrf", &csrf)]).await;
    assert_eq!(none.status, 200, "{}", none.body);
    assert!(
        none.body.contains("No notification was dead."),
        "{}",
        none.body
    );
    let missing = b
        .post("/alerts/outbox/no-such-row/retry", &[("csrf", &csrf)])
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let (st, r) = s.api(Method::POST, "/alerts/outbox/retry", None).await;
    assert_eq!((st, r), (202, json!({"retried": 0})));
    let (st, p) = s
        .api(Method::POST, "/alerts/outbox/no-such-row/retry", None)
        .await;
    assert_eq!(st, 404, "{p}");

    // Managed: listed, its versions, and "renew now" makes version 2.
    let list = b.get("/managed").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("web") && list.body.contains(mid));
    let detail = b.get(&format!("/managed/{mid}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(detail.body.contains("id=\"renew-now\""));
    let csrf = detail.csrf();
    let forged = b.post(&format!("/managed/{mid}/renew"), &[]).await;
    assert_eq!(forged.status, 403);
    let renewed = b
        .post(&format!("/managed/{mid}/renew"), &[("csrf", &csrf)])
        .await;
    assert_eq!(renewed.status, 303, "{}", renewed.body);
    let (_, after) = s.api(Method::GET, &format!("/managed/{mid}"), None).await;
    assert_eq!(after["current_version"], 2, "{after}");
    let detail = b.get(&format!("/managed/{mid}")).await;
    assert_eq!(
        detail.body.matches("/certificates/").count(),
        2,
        "two versions listed"
    );

    // A renewal the profile now refuses is among the overview's recent failures.
    let (st, p) = s
        .api(
            Method::POST,
            "/profiles",
            Some(
                json!({"name": "narrow", "ca": "intermediate", "allowed_dns_names": [".ok.test"]}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "shrinking", "profile": "narrow", "dns_names": ["x.ok.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let (st, p) = s
        .api(
            Method::PUT,
            "/profiles/narrow",
            Some(json!({"name": "narrow", "allowed_dns_names": [".other.test"]})),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    let (st, r) = s.api(Method::POST, "/managed/shrinking/renew", None).await;
    assert!(st >= 400, "{r}");
    let overview = b.get("/").await;
    let failures = &overview.body[overview.body.find("Recent failures").unwrap()..];
    let renewal = &failures[failures
        .find("class=\"renewal-failure\"")
        .unwrap_or_else(|| panic!("a renewal failure in {failures}"))..];
    assert!(renewal[..renewal.find("</li>").unwrap()].contains("shrinking"));

    // A viewer reads both lists' pages it may, without the actions.
    let (_, viewer) = s
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "watcher", "role": "viewer"})),
        )
        .await;
    let mut v = Plain::new(&s);
    assert_eq!(
        v.sign_in(viewer["token"].as_str().unwrap()).await.status,
        303
    );
    assert_eq!(v.get("/alerts").await.status, 403);
    let vcsrf = v.get("/").await.csrf();
    assert_eq!(
        v.post("/alerts/outbox/retry", &[("csrf", &vcsrf)])
            .await
            .status,
        403
    );
    let (st, _) = s
        .api_as(
            viewer["token"].as_str().unwrap(),
            Method::POST,
            "/alerts/outbox/retry",
            None,
        )
        .await;
    assert_eq!(st, 403);
    let vd = v.get(&format!("/managed/{mid}")).await;
    assert_eq!(vd.status, 200);
    assert!(!vd.body.contains("renew-now") && !vd.body.contains("sync-now"));
}

#[tokio::test]
async fn ca_key_storage_without_a_token() {
    let s = TestServer::start(Db::Sqlite).await;
    let mut b = Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);
    let h = b.get("/hierarchy").await;
    assert!(h.body.contains("name=\"key_storage\""), "{}", h.body);
    assert!(
        !h.body.contains("value=\"pkcs11\""),
        "no token is offered without [hsm]"
    );
    assert!(h.body.contains("software (sealed)"), "{}", h.body);
    let csrf = h.csrf();
    let form = |storage: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "hsm-int".to_string()),
            ("kind", "intermediate".to_string()),
            ("parent", "root".to_string()),
            ("common_name", "HSM Intermediate".to_string()),
            ("key_storage", storage.to_string()),
        ]
    };
    for (storage, why) in [
        ("pkcs11", "no PKCS#11 token is configured"),
        ("floppy", "neither"),
    ] {
        let f = form(storage);
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let p = b.post("/hierarchy", &pairs).await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains(why), "{}", p.body);
    }
    let (_, cas) = s.api(Method::GET, "/cas", None).await;
    assert!(!cas.to_string().contains("hsm-int"), "nothing half-made");
    let f = form("sealed");
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(b.post("/hierarchy", &pairs).await.status, 303);
    let (_, ca) = s.api(Method::GET, "/cas/hsm-int", None).await;
    assert_eq!(ca["key_storage"], "sealed", "{ca}");
}

#[tokio::test]
async fn acme_and_est_pages_without_javascript() {
    let s = TestServer::start(Db::Sqlite).await;
    let cert = issue(&s, "ari.dash.test").await;
    let mut b = Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);

    // ACME: an EAB key made through the form; its MAC key is shown once.
    let acme = b.get("/enrollment/acme").await;
    assert_eq!(acme.status, 200, "{}", acme.body);
    assert!(
        acme.body.contains("/acme/default/directory"),
        "{}",
        acme.body
    );
    let csrf = acme.csrf();
    let made = b
        .post(
            "/enrollment/acme/eab",
            &[
                ("csrf", &csrf),
                ("name", "ci-runner"),
                ("profile", "default"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let at = made.body.find("id=\"eab-hmac\">").unwrap() + "id=\"eab-hmac\">".len();
    let hmac = &made.body[at..at + made.body[at..].find('<').unwrap()];
    assert!(hmac.len() >= 40, "{hmac}");
    let list = b.get("/enrollment/acme").await;
    assert!(list.body.contains("ci-runner") && !list.body.contains(hmac));
    // Move a certificate's renewal window earlier.
    let moved = b
        .post(
            "/enrollment/acme/renewal-window",
            &[
                ("csrf", &csrf),
                ("certificate", cert["id"].as_str().unwrap()),
                ("start", "2026-01-01T00:00"),
                ("end", "2026-01-02T00:00"),
            ],
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(
        moved.body.contains("2026-01-01 00:00 UTC"),
        "{}",
        moved.body
    );
    let bad = b
        .post(
            "/enrollment/acme/renewal-window",
            &[
                ("csrf", &csrf),
                ("start", "2026-01-02T00:00"),
                ("end", "2026-01-01T00:00"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // No account yet.
    assert!(list.body.contains("No ACME account yet."), "{}", list.body);

    // EST: a label through the form; the service's refusals shown next to the form, with
    // the status the API would answer, and nothing stored.
    let est = b.get("/enrollment/est").await;
    assert_eq!(est.status, 200);
    let csrf = est.csrf();
    let forged = b
        .post(
            "/enrollment/est/labels",
            &[("label", "forged"), ("profile", "default")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    for (label, profile, status, why) in [
        ("bad label!", "default", 400, "label must be"),
        ("cacerts", "default", 400, "EST operation"),
        ("plant-a", "no-such-profile", 400, "no-such-profile"),
    ] {
        let p = b
            .post(
                "/enrollment/est/labels",
                &[("csrf", &csrf), ("label", label), ("profile", profile)],
            )
            .await;
        assert_eq!(p.status, status, "{label}: {}", p.body);
        assert!(
            p.body.contains("id=\"label-error\"") && p.body.contains(why),
            "{label}: {}",
            p.body
        );
    }
    let made = b
        .post(
            "/enrollment/est/labels",
            &[
                ("csrf", &csrf),
                ("label", "plant-b"),
                ("profile", "default"),
                ("require_channel_binding", "true"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let again = b
        .post(
            "/enrollment/est/labels",
            &[
                ("csrf", &csrf),
                ("label", "plant-b"),
                ("profile", "default"),
            ],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let (_, labels) = s.api(Method::GET, "/est/labels", None).await;
    let labels = labels.as_array().unwrap();
    assert_eq!(
        labels.len(),
        1,
        "only the accepted label is stored: {labels:?}"
    );
    assert_eq!(labels[0]["label"], "plant-b");
    assert_eq!(labels[0]["profile"], "default");
    assert_eq!(labels[0]["require_channel_binding"], true);
    let (_, audit) = s
        .api(Method::GET, "/audit?action=est_label.create", None)
        .await;
    assert!(audit.to_string().contains("plant-b"), "{audit}");

    // EST: a one-time credential, its password shown once; disabling it.
    let made = b
        .post(
            "/enrollment/est",
            &[("csrf", &csrf), ("username", "device-1"), ("max_uses", "1")],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let at = made.body.find("id=\"est-password\">").unwrap() + "id=\"est-password\">".len();
    let password = &made.body[at..at + made.body[at..].find('<').unwrap()];
    assert!(password.len() >= 12);
    let list = b.get("/enrollment/est").await;
    assert!(list.body.contains("device-1") && !list.body.contains(password));
    let (_, creds) = s.api(Method::GET, "/est/credentials", None).await;
    let id = creds["items"]
        .as_array()
        .or(creds.as_array())
        .unwrap()
        .iter()
        .find(|c| c["username"] == "device-1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = b
        .post(&format!("/enrollment/est/credentials/{id}/revoke"), &[])
        .await;
    assert_eq!(forged.status, 403);
    let off = b
        .post(
            &format!("/enrollment/est/credentials/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
    assert!(b.get("/enrollment/est").await.body.contains("disabled "));
}

/// The account ids of an ACME page's account rows, in order.
fn account_ids(html: &str) -> Vec<String> {
    html.split("<a href=\"/enrollment/acme/accounts/")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

async fn enrollment_lists_page_by_page(db: Db) {
    let s = TestServer::start_with(
        db,
        &[("CERTKEEPER_ACME__NEW_ACCOUNTS_PER_IP_PER_HOUR", "100")],
    )
    .await;
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(s.server_ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let mut made = Vec::new();
    for _ in 0..53 {
        let mut a = acme_support::Acme::new(http.clone(), &s.url("/acme/directory")).await;
        a.register().await;
        made.push(a);
    }
    // The newest account places two orders.
    let newest = made.last().unwrap();
    for name in ["a.orders.dash.test", "b.orders.dash.test"] {
        let r = newest.new_order(&[("dns", name)]).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let newest_id = newest.kid.as_deref().unwrap().rsplit('/').next().unwrap();

    let mut b = Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);
    let first = b.get("/enrollment/acme").await;
    let ids = account_ids(&first.body);
    assert_eq!(ids.len(), 50, "{ids:?}");
    assert_eq!(ids[0], newest_id, "newest first");
    let row = &first.body[first.body.find("<td class=\"orders\">").unwrap()..];
    assert!(row.starts_with("<td class=\"orders\">2<"), "{row:.40}");
    let second = b.get(&next_page(&first.body)).await;
    let rest = account_ids(&second.body);
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert!(!second.body.contains("next-page"));
    let mut all: Vec<&String> = ids.iter().chain(&rest).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 53, "every account once");
    assert_eq!(
        b.get("/enrollment/acme?cursor=not-a-cursor").await.status,
        400
    );

    // The account's page lists its orders, newest first.
    let acc = b
        .get(&format!("/enrollment/acme/accounts/{newest_id}"))
        .await;
    assert_eq!(acc.status, 200, "{}", acc.body);
    let a = acc.body.find("dns:b.orders.dash.test").expect("order b");
    let bb = acc.body.find("dns:a.orders.dash.test").expect("order a");
    assert!(a < bb, "newest order first");
    assert_eq!(acc.body.matches("<td class=\"status\">pending<").count(), 2);
    assert_eq!(
        b.get("/enrollment/acme/accounts/no-such-account")
            .await
            .status,
        404
    );

    // EST credentials: 50 a page, newest first.
    for i in 0..52 {
        let (st, c) = s
            .api(
                Method::POST,
                "/est/credentials",
                Some(json!({"username": format!("dev-{i:02}")})),
            )
            .await;
        assert_eq!(st, 201, "{c}");
    }
    let users = |html: &str| -> Vec<String> {
        let table = &html[html.find("id=\"est-credentials\"").unwrap()..];
        let table = &table[..table.find("</table>").unwrap()];
        table
            .split("<tr><td>")
            .skip(1)
            .map(|r| r[..r.find('<').unwrap()].to_string())
            .collect()
    };
    let first = b.get("/enrollment/est").await;
    let names = users(&first.body);
    assert_eq!(names.len(), 50, "{names:?}");
    assert_eq!(names[0], "dev-51");
    let rest = users(&b.get(&next_page(&first.body)).await.body);
    assert_eq!(rest, ["dev-01", "dev-00"]);
}

#[tokio::test]
async fn enrollment_lists_page_by_page_sqlite() {
    enrollment_lists_page_by_page(Db::Sqlite).await;
}

#[tokio::test]
async fn enrollment_lists_page_by_page_postgres() {
    enrollment_lists_page_by_page(Db::Postgres).await;
}

/// The common names of the certificate rows of a certificates page, in order.
fn row_names(html: &str) -> Vec<String> {
    html.split("<a href=\"/certificates/")
        .skip(1)
        .filter_map(|rest| {
            let text = &rest[rest.find('>')? + 1..];
            Some(text[..text.find('<')?].to_string())
        })
        .collect()
}

/// The link of a page's "Next page".
fn next_page(html: &str) -> String {
    let at = html.find("id=\"next-page\"").expect("a next page");
    let tag = &html[html[..at].rfind('<').unwrap()..];
    let tag = &tag[..tag.find('>').unwrap()];
    let href = &tag[tag.find("href=\"").unwrap() + 6..];
    href[..href.find('"').unwrap()].replace("&amp;", "&")
}

async fn certificates_page_by_page_and_sorted(db: Db) {
    let s = TestServer::start(db).await;
    // 55 certificates; each later one ends sooner.
    for i in 0..55 {
        let name = format!("p{i}.dash.test");
        let (st, body) = s
            .api(
                Method::POST,
                "/certificates/generate",
                Some(
                    json!({"profile": "default", "dns_names": [name], "common_name": name,
                    "validity_days": 80 - i}),
                ),
            )
            .await;
        assert_eq!(st, 201, "{body}");
    }
    let mut b = Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);

    // Newest first, 50 a page, and a link to the rest.
    let first = b.get("/certificates?profile=default").await;
    let names = row_names(&first.body);
    assert_eq!(names.len(), 50, "{names:?}");
    assert_eq!(names[0], "p54.dash.test");
    let next = next_page(&first.body);
    let second = b.get(&next).await;
    let rest = row_names(&second.body);
    assert_eq!(rest.len(), 5, "{rest:?}");
    assert_eq!(rest[4], "p0.dash.test");
    assert!(!second.body.contains("next-page"));

    // Soonest end first, paged the same way.
    let first = b.get("/certificates?profile=default&sort=expiry").await;
    let names = row_names(&first.body);
    assert_eq!(names[0], "p54.dash.test");
    assert_eq!(names[49], "p5.dash.test");
    let next = next_page(&first.body);
    assert!(next.contains("sort=expiry"), "{next}");
    let rest = row_names(&b.get(&next).await.body);
    assert_eq!(
        rest,
        [
            "p4.dash.test",
            "p3.dash.test",
            "p2.dash.test",
            "p1.dash.test",
            "p0.dash.test"
        ]
    );
    assert_eq!(b.get("/certificates?sort=sideways").await.status, 400);

    // The expiring ones (ending within 30 days) come soonest first unless asked otherwise.
    let (st, body) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(
                json!({"profile": "default", "dns_names": ["late.dash.test"],
                "common_name": "late.dash.test", "validity_days": 29}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let expiring = b.get("/certificates?status=expiring").await;
    let names = row_names(&expiring.body);
    assert_eq!(
        names[..3],
        ["p54.dash.test", "p53.dash.test", "p52.dash.test"]
    );
    assert!(names.contains(&"late.dash.test".to_string()), "{names:?}");
    assert!(
        expiring.body.contains(r#"<option value="expiry" selected"#),
        "the form shows the order"
    );
    let newest = b.get("/certificates?status=expiring&sort=newest").await;
    assert_eq!(row_names(&newest.body)[0], "late.dash.test");
}

#[tokio::test]
async fn certificates_page_by_page_and_sorted_sqlite() {
    certificates_page_by_page_and_sorted(Db::Sqlite).await;
}

#[tokio::test]
async fn certificates_page_by_page_and_sorted_postgres() {
    certificates_page_by_page_and_sorted(Db::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// In Chromium, over WebDriver
// ---------------------------------------------------------------------------------------

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a free port, stopped when dropped.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary(env: &str, names: &[&str]) -> String {
    if let Ok(path) = std::env::var(env) {
        return path;
    }
    for name in names {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return name.to_string();
        }
    }
    panic!(
        "{} is not installed: the dashboard tests drive Chromium over WebDriver. Install \
         Debian's chromium and chromium-driver (as .ci/test does) or set {env}.",
        names[0]
    );
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        let child = Command::new(find_binary(
            "CERTKEEPER_TEST_CHROMEDRIVER",
            &["chromedriver"],
        ))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await
                && r.status().is_success()
            {
                return d;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn session(&self, profile: &std::path::Path) -> Browser<'_> {
        let chromium = find_binary(
            "CERTKEEPER_TEST_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let chromium = String::from_utf8(
            Command::new("sh")
                .args(["-c", &format!("command -v {chromium}")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let r: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a WebDriver session: {r}"))
            .to_string();
        Browser {
            driver: self,
            url: format!("{}/session/{id}", self.base),
            shots: screenshots(),
        }
    }
}

/// One Chromium window.
struct Browser<'a> {
    driver: &'a Driver,
    url: String,
    /// Where its screenshots go.
    shots: PathBuf,
}

impl Browser<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .driver
            .http
            .request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn current_url(&self) -> String {
        self.call(Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e[ELEMENT].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting up to 20 s for it to appear.
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {css:?} on {}:\n{}",
                self.current_url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.call(Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn source(&self) -> String {
        self.call(Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until the element `css` shows `text`.
    async fn wait_text(&self, css: &str, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.text(css).await.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css:?} never showed {text:?}:\n{}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(&self.shots).unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn close(self) {
        let _ = self.driver.http.delete(&self.url).send().await;
    }
}

/// `target/dashboard-screenshots/`.
fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("dashboard-screenshots")
}

/// PEM blocks of a PEM text, each with its armour.
fn pem_blocks(text: &str) -> Vec<String> {
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| b.trim().to_string() + "\n")
        .collect()
}

/// An ACME account made by a real client (`instant-acme`) with an order for 127.0.0.1,
/// validated over http-01 and finalized; returns the account's URL and the certificate
/// (PEM chain).
async fn acme_client_order(s: &TestServer, http01: &Http01) -> (String, String) {
    let root = s.write("dash-acme-ca.pem", &s.server_ca_pem);
    let (account, _creds) = Account::builder_with_root(&root)
        .unwrap()
        .create(
            &NewAccount {
                contact: &["mailto:dash-acme@example.com"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.url("/acme/directory"),
            None,
        )
        .await
        .expect("an ACME account");
    let ids = [Identifier::Ip("127.0.0.1".parse().unwrap())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.unwrap();
        let mut ch = authz.challenge(ChallengeType::Http01).expect("http-01");
        http01.put(&ch.token, ch.key_authorization().as_str());
        ch.set_ready().await.unwrap();
    }
    let status = order.poll_ready(&RetryPolicy::default()).await.unwrap();
    assert_eq!(status, OrderStatus::Ready);
    order.finalize_csr(&csr(&["127.0.0.1"])).await.unwrap();
    let pem = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    (account.id().to_string(), pem)
}

/// The Chromium walk on `db`; its screenshots go to `target/dashboard-screenshots/<db>/`.
async fn dashboard_in_chromium(db: Db) {
    let http01 = Http01::start().await;
    let h = http01.port.to_string();
    // One delivery attempt, so a refused notification is dead at once.
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_ACME__HTTP01_PORT", h.as_str()),
            ("CERTKEEPER_ALERTS__MAX_ATTEMPTS", "1"),
        ],
    )
    .await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let mut b = driver.session(profile.path()).await;
    b.shots = screenshots().join(format!("{db:?}").to_lowercase());

    // Signed out, the dashboard sends the browser to the sign-in form.
    b.go(&s.url("/")).await;
    b.find("#token").await;
    assert!(b.current_url().await.ends_with("/sign-in"));
    b.screenshot("sign-in").await;
    b.type_into("#token", &s.token).await;
    b.click("#sign-in").await;
    b.find("#count-valid").await;
    // The session cookie is HttpOnly, Secure and SameSite=Strict.
    let cookies = b.call(Method::GET, "/cookie", None).await;
    let c = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == SESSION)
        .unwrap_or_else(|| panic!("the session cookie: {cookies}"));
    assert_eq!(c["httpOnly"], true, "{c}");
    assert_eq!(c["secure"], true, "{c}");
    assert_eq!(c["sameSite"], "Strict", "{c}");
    assert!(c["expiry"].as_u64().is_some(), "{c}");
    // Scripts cannot read it.
    let seen = b
        .call(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": "return document.cookie", "args": []})),
        )
        .await;
    assert!(!seen.as_str().unwrap_or_default().contains(SESSION));
    b.screenshot("overview").await;

    // Create an intermediate under the root.
    b.go(&s.url("/hierarchy")).await;
    b.type_into("#create-ca input[name=name]", "dash-int").await;
    b.click("#create-ca select[name=kind] option[value=intermediate]")
        .await;
    b.click("#create-ca select[name=parent] option[value=root]")
        .await;
    b.type_into(
        "#create-ca input[name=common_name]",
        "Dashboard Intermediate",
    )
    .await;
    b.click("#create-ca-submit").await;
    b.wait_text("#hierarchy", "dash-int").await;
    let (_, cas) = s.api(Method::GET, "/cas", None).await;
    let int = cas
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "dash-int")
        .unwrap_or_else(|| panic!("the new CA through the API: {cas}"));
    let root = cas
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "root")
        .unwrap();
    assert_eq!(int["parent_id"], root["id"], "{int}");
    b.screenshot("hierarchy").await;

    // Issue a certificate through the form; its key is shown once.
    b.go(&s.url("/certificates")).await;
    b.click("#issue select[name=profile] option[value=default]")
        .await;
    b.type_into("#issue textarea[name=dns_names]", "shop.dash.test")
        .await;
    b.type_into("#issue input[name=common_name]", "shop.dash.test")
        .await;
    b.click("#issue-submit").await;
    b.wait_text("#private-key", "PRIVATE KEY").await;
    b.screenshot("issued").await;
    b.click("#issued-link").await;
    let serial = b.text("#serial").await;
    let url = b.current_url().await;
    let id = url.rsplit('/').next().unwrap().to_string();
    b.wait_text("#state", "valid").await;

    // Find it by search.
    b.go(&s.url("/certificates")).await;
    b.type_into("#search input[name=q]", "shop.dash.test").await;
    b.click("#search-submit").await;
    b.wait_text("#certificates", "shop.dash.test").await;
    b.screenshot("certificates").await;
    b.go(&s.url("/certificates")).await;
    b.click("#search select[name=by] option[value=serial]")
        .await;
    b.type_into("#search input[name=q]", &serial).await;
    b.click("#search-submit").await;
    b.wait_text("#certificates", &serial).await;

    // A POST forged without the session's CSRF token is refused, even from the
    // signed-in browser itself.
    b.go(&s.url(&format!("/certificates/{id}"))).await;
    // (The page's policy forbids scripts to connect anywhere, so the forgery is a form.)
    b.call(
        Method::POST,
        "/execute/sync",
        Some(json!({
            "script": "const f = document.createElement('form'); f.method = 'post'; \
                f.action = arguments[0]; const i = document.createElement('input'); \
                i.name = 'reason'; i.value = '1'; f.appendChild(i); \
                document.body.appendChild(f); f.submit();",
            "args": [format!("/certificates/{id}/revoke")],
        })),
    )
    .await;
    b.wait_text("h1", "403").await;
    assert!(b.text("p.error").await.contains("CSRF"));
    b.screenshot("forged-post-refused").await;
    let (_, still) = s
        .api(Method::GET, &format!("/certificates/{id}"), None)
        .await;
    assert_eq!(still["status"], "valid");

    // Revoke it with a reason; the script asks first.
    b.go(&s.url(&format!("/certificates/{id}"))).await;
    b.click("#revoke select[name=reason] option[value='1']")
        .await;
    b.screenshot("certificate").await;
    b.click("#revoke-submit").await;
    b.call(Method::POST, "/alert/accept", Some(json!({}))).await;
    b.wait_text("#state", "revoked").await;
    assert!(b.text("#revoked").await.contains("keyCompromise"));
    b.screenshot("certificate-revoked").await;

    // OCSP says so too.
    let get = |path: String| {
        let c = s.client.clone();
        let url = s.url(&path);
        let token = s.token.clone();
        async move {
            c.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let leaf = get(format!("/api/v1/certificates/{id}/pem")).await;
    let intermediate = get("/ca/intermediate.pem".into()).await;
    assert!(pem_blocks(&leaf).len() == 1 && pem_blocks(&intermediate).len() == 1);
    let leaf = s.write("leaf.pem", &leaf);
    let issuer = s.write("issuer.pem", &intermediate);
    let bundle = s.write("bundle.pem", format!("{}{intermediate}", s.root_pem));
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&issuer),
        "-cert",
        p(&leaf),
        "-url",
        &format!("http://127.0.0.1:{}/ocsp", s.http_port),
        "-CAfile",
        p(&bundle),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("leaf.pem: revoked")
            && out.contains("Reason: keyCompromise")
            && out.contains("Response verify OK"),
        "{out}"
    );

    // Profiles: readable, and the service's validation message on a bad edit.
    b.go(&s.url("/profiles")).await;
    b.wait_text("#profiles", "default").await;
    b.screenshot("profiles").await;
    b.go(&s.url("/profiles/default")).await;
    b.type_into("textarea[name=document]", "{\"max_validity_days\": \"x\"}")
        .await;
    b.click("#profile-save").await;
    b.wait_text("#profile-error", "invalid profile").await;
    b.screenshot("profile-refused").await;

    // Tokens: a viewer token made through the form, its secret shown once.
    b.go(&s.url("/tokens")).await;
    b.type_into("#create-token input[name=name]", "dash-viewer")
        .await;
    b.click("#create-token select[name=role] option[value=viewer]")
        .await;
    b.click("#create-token-submit").await;
    let viewer = b.text("#token-secret").await;
    assert!(viewer.starts_with("ck_"), "{viewer}");
    b.screenshot("token-created").await;
    b.go(&s.url("/tokens")).await;
    b.wait_text("#tokens", "dash-viewer").await;
    assert!(!b.source().await.contains(&viewer));
    b.screenshot("tokens").await;

    // The audit log shows what was done here, filtered.
    b.go(&s.url("/audit?action=certificate.revoke")).await;
    b.wait_text("#audit", &id).await;
    b.screenshot("audit").await;

    // ACME: an account made by a real client, listed with its contact and order count;
    // its page lists the order, valid, with a link to the certificate.
    let (account_url, chain) = acme_client_order(&s, &http01).await;
    let account_id = account_url.rsplit('/').next().unwrap().to_string();
    b.go(&s.url("/enrollment/acme")).await;
    b.wait_text("#acme-accounts", &account_id).await;
    let row = b.text("#acme-accounts tbody tr").await;
    assert!(
        row.contains("mailto:dash-acme@example.com") && row.contains("valid"),
        "{row}"
    );
    assert_eq!(b.text("#acme-accounts td.orders").await, "1");
    b.screenshot("acme-accounts").await;
    b.click(&format!("#acme-accounts a[href$='{account_id}']"))
        .await;
    b.wait_text("#acme-orders", "ip:127.0.0.1").await;
    assert_eq!(b.text("#acme-orders td.status").await, "valid");
    b.screenshot("acme-account").await;
    b.click("#acme-orders a.certificate").await;
    b.wait_text("#state", "valid").await;
    let url = b.current_url().await;
    let cert_id = url.rsplit('/').next().unwrap();
    let shown = s
        .client
        .get(s.url(&format!("/api/v1/certificates/{cert_id}/pem")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        pem_blocks(&shown).first(),
        pem_blocks(&chain).first(),
        "the order's certificate is the one the client got"
    );

    // EST: a label made through the form (a bad one refused with the service's message),
    // a credential for it, and an enrollment under it.
    b.go(&s.url("/enrollment/est")).await;
    b.type_into("#create-label input[name=label]", "simpleenroll")
        .await;
    b.click("#create-label-submit").await;
    b.wait_text("#label-error", "EST operation").await;
    b.screenshot("est-label-refused").await;
    b.type_into("#create-label input[name=label]", "dash-devices")
        .await;
    b.click("#create-label select[name=profile] option[value=default]")
        .await;
    b.click("#create-label-submit").await;
    b.wait_text("#est-labels", "dash-devices").await;
    let (_, labels) = s.api(Method::GET, "/est/labels", None).await;
    assert!(
        labels
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["label"] == "dash-devices" && l["profile"] == "default"),
        "{labels}"
    );
    b.type_into("#create-credential input[name=username]", "dash-device")
        .await;
    b.click("#create-credential select[name=label] option[value=dash-devices]")
        .await;
    b.click("#create-credential-submit").await;
    let password = b.text("#est-password").await;
    let est = certkeeper_cli::est::EstClient::new(
        &format!("https://localhost:{}", s.est_port),
        Some("dash-devices"),
        Some(s.server_ca_pem.as_bytes()),
        None,
    )
    .unwrap();
    let enrolled = est
        .simpleenroll(
            &csr(&["device.dash.test"]),
            Some(certkeeper_cli::est::Basic {
                username: "dash-device",
                password: password.trim(),
            }),
        )
        .await
        .expect("an EST enrollment under the new label");
    let (_, parsed) = x509_parser::parse_x509_certificate(&enrolled).unwrap();
    assert!(format!("{:?}", parsed.subject_alternative_name()).contains("device.dash.test"));

    // A push to a destination that refuses the connection fails: the overview shows it,
    // and its alert to a receiver that refuses is dead; retried once the receiver
    // accepts, it is delivered.
    let accept = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let hook = receiver(accept.clone(), accepted.clone()).await;
    let (st, ch) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({"name": "flaky-hook", "kind": "webhook", "url": hook})),
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    let (st, rule) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(json!({"name": "sync-watch", "channels": ["flaky-hook"], "events": ["sync.failed"]})),
        )
        .await;
    assert_eq!(st, 201, "{rule}");
    let closed = free_port();
    let (st, d) = s
        .api(
            Method::POST,
            "/destinations",
            Some(json!({"name": "cf-down", "kind": "cloudflare",
                "config": {"zone_id": "023e105f4ecef8ad9ca31a8372d0c353",
                           "api_url": format!("https://127.0.0.1:{closed}/client/v4")},
                "credentials": {"api_token": "dash-token"}})),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    let (st, m) = s
        .api(
            Method::POST,
            "/managed",
            Some(json!({"name": "pushed", "profile": "default",
                "dns_names": ["pushed.dash.test"], "destinations": ["cf-down"]})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let (_, m) = s.api(Method::POST, "/managed/pushed/sync", None).await;
    assert!(
        m["bindings"][0]["failures"].as_i64().unwrap_or(0) >= 1,
        "{m}"
    );
    b.go(&s.url("/")).await;
    b.wait_text("li.sync-failure", "cf-down").await;
    assert!(b.text("li.sync-failure").await.contains("pushed"));
    b.screenshot("overview-sync-failure").await;
    let dead = outbox_until(&s, "dead", 1).await;
    let dead_id = dead[0]["id"].as_str().unwrap().to_string();
    assert_eq!(dead[0]["event_type"], "io.certkeeper.sync.failed", "{dead}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    b.go(&s.url("/alerts?status=dead")).await;
    b.find(&format!("#outbox-{dead_id} button.retry")).await;
    b.screenshot("alerts-dead").await;
    accept.store(true, Ordering::SeqCst);
    b.click(&format!("#outbox-{dead_id} button.retry")).await;
    b.wait_text("#retry-outcome", "1 notification is queued again")
        .await;
    let delivered = outbox_until(&s, "delivered", 1).await;
    assert!(
        delivered
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == dead_id.as_str()),
        "{delivered}"
    );
    assert!(accepted.load(Ordering::SeqCst) >= 1);
    let (st, p) = s
        .api(
            Method::POST,
            &format!("/alerts/outbox/{dead_id}/retry"),
            None,
        )
        .await;
    assert_eq!(st, 409, "a delivered notification is not retried: {p}");
    b.go(&s.url("/alerts?status=dead")).await;
    b.find("#outbox").await;
    assert!(b.find_all("button.retry").await.is_empty());
    b.go(&s.url("/audit?action=alert_outbox.retry")).await;
    b.wait_text("#audit", &dead_id).await;

    // The other admin pages render in the browser too.
    for (path, shown, name) in [
        ("/discovery", "#scans", "discovery"),
        ("/managed", "#managed", "managed"),
        ("/alerts", "#channels", "alerts"),
        ("/enrollment/acme", "#eab-keys", "acme"),
        ("/enrollment/est", "#est-credentials", "est"),
    ] {
        b.go(&s.url(path)).await;
        b.find(shown).await;
        b.screenshot(name).await;
    }

    // Sign out.
    b.click("#sign-out").await;
    b.find("#token").await;
    b.go(&s.url("/")).await;
    b.find("#token").await;

    // A viewer: no revoke button, no issue or create forms, no admin pages.
    b.type_into("#token", &viewer).await;
    b.click("#sign-in").await;
    b.find("#count-valid").await;
    b.screenshot("overview-viewer").await;
    let other = issue(&s, "viewer.dash.test").await;
    b.go(&s.url(&format!("/certificates/{}", other["id"].as_str().unwrap())))
        .await;
    b.wait_text("#state", "valid").await;
    assert!(b.find_all("#revoke-submit").await.is_empty());
    assert!(b.find_all("form[action$='/revoke']").await.is_empty());
    b.screenshot("certificate-viewer").await;
    b.go(&s.url("/certificates")).await;
    b.find("#certificates").await;
    assert!(b.find_all("#issue").await.is_empty());
    assert!(b.find_all("a[href='/tokens']").await.is_empty());
    b.go(&s.url("/hierarchy")).await;
    b.find("#hierarchy").await;
    assert!(b.find_all("#create-ca").await.is_empty());
    assert!(b.find_all("select[name=key_storage]").await.is_empty());
    // None of the admin actions: the pages that hold them are refused.
    for path in [
        "/alerts?status=dead",
        "/enrollment/est",
        "/enrollment/acme",
        &format!("/enrollment/acme/accounts/{account_id}"),
    ] {
        b.go(&s.url(path)).await;
        b.wait_text("h1", "403").await;
        for button in [
            "button.retry",
            "#retry-all",
            "#create-label",
            "#acme-accounts",
        ] {
            assert!(b.find_all(button).await.is_empty(), "{button} on {path}");
        }
    }
    b.screenshot("alerts-viewer").await;
    b.go(&s.url("/")).await;
    b.click("#sign-out").await;
    b.find("#token").await;

    let shots_dir = b.shots.clone();
    b.close().await;
    let shots: Vec<_> = std::fs::read_dir(shots_dir).unwrap().collect();
    assert!(shots.len() >= 12, "screenshots were saved");
}

#[tokio::test]
async fn dashboard_in_chromium_sqlite() {
    dashboard_in_chromium(Db::Sqlite).await;
}

#[tokio::test]
async fn dashboard_in_chromium_postgres() {
    dashboard_in_chromium(Db::Postgres).await;
}

/// A self-signed certificate for `name` and its key, for a local TLS listener.
fn self_signed(
    name: &str,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

/// Serve TLS with the certificate for `name` on `port` of 127.0.0.1 until aborted.
fn serve_tls(port: u16, name: &str) -> tokio::task::JoinHandle<()> {
    let (chain, key) = self_signed(name);
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_reuseaddr(true).unwrap();
    sock.bind(([127, 0, 0, 1], port).into()).unwrap();
    let listener = sock.listen(128).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(s).await;
            });
        }
    })
}

#[tokio::test]
async fn discovery_in_chromium() {
    let s = TestServer::start_with(
        Db::Sqlite,
        &[
            ("CERTKEEPER_DISCOVERY__ALLOW", "127.0.0.1/32"),
            ("CERTKEEPER_DISCOVERY__TIMEOUT", "1500ms"),
        ],
    )
    .await;
    let (one, two) = (free_port(), free_port());
    let _first = serve_tls(one, "one.dash.test");
    let second = serve_tls(two, "two.dash.test");

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let b = driver.session(profile.path()).await;
    b.go(&s.url("/sign-in")).await;
    b.type_into("#token", &s.token).await;
    b.click("#sign-in").await;
    b.find("#count-valid").await;

    // Scan both listeners from the form; the scan page follows its progress.
    let scan = |targets: String| {
        let b = &b;
        let s = &s;
        async move {
            b.go(&s.url("/discovery")).await;
            b.type_into("#scan-now textarea[name=targets]", &targets)
                .await;
            b.click("#scan-submit").await;
            b.wait_text("#scan-status", "succeeded").await;
        }
    };
    let targets = format!("127.0.0.1:{one}\n127.0.0.1:{two}");
    scan(targets.clone()).await;
    b.wait_text("#scan-results", "one.dash.test").await;
    b.wait_text("#scan-results", "two.dash.test").await;
    b.screenshot("discovery-scan").await;

    // The second listener now serves another certificate: the next scan says so.
    second.abort();
    let _ = second.await;
    let _second = serve_tls(two, "two-renewed.dash.test");
    scan(targets).await;
    b.wait_text("#changes-new_certificates", "two-renewed.dash.test")
        .await;
    let changed = b.text("#changes-changed").await;
    assert!(changed.contains(&format!("127.0.0.1:{two}")), "{changed}");
    assert!(!changed.contains(&format!("127.0.0.1:{one}")), "{changed}");
    b.screenshot("discovery-changes").await;

    // The inventory, filtered: both self-signed, neither issued here.
    b.go(&s.url("/discovery/endpoints?finding=self_signed"))
        .await;
    b.wait_text("#endpoints", "two-renewed.dash.test").await;
    assert!(b.text("#endpoints").await.contains("one.dash.test"));
    b.screenshot("discovery-endpoints").await;
    b.go(&s.url("/discovery/endpoints?finding=weak_key")).await;
    let weak = b.text("#endpoints").await;
    assert!(!weak.contains("dash.test"), "{weak}");
    // Not issued here, and a search by certificate name (any case) or by port.
    b.go(&s.url("/discovery/endpoints?finding=not_issued_by_us"))
        .await;
    assert!(b.text("#endpoints").await.contains("one.dash.test"));
    b.go(&s.url("/discovery/endpoints?q=TWO-Renewed")).await;
    let found = b.text("#endpoints").await;
    assert!(
        found.contains("two-renewed.dash.test") && !found.contains("one.dash.test"),
        "{found}"
    );
    // LIKE's wildcards are matched literally.
    b.go(&s.url("/discovery/endpoints?q=%25")).await;
    let none = b.text("#endpoints").await;
    assert!(!none.contains("dash.test"), "{none}");
    b.close().await;
}

#[tokio::test]
async fn ca_rollover_from_the_hierarchy_page() {
    let s = TestServer::start(Db::Sqlite).await;
    let (st, _) = s
        .api(
            Method::POST,
            "/cas",
            Some(json!({"name": "edge", "type": "intermediate", "parent": "root", "common_name": "Edge CA"})),
        )
        .await;
    assert_eq!(st, 201);
    let mut b = Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);
    let page = b.get("/hierarchy").await;
    assert!(
        page.body.contains("id=\"rollover-submit\""),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let forged = b
        .post(
            "/hierarchy/rollover",
            &[("ca", "edge"), ("name", "edge-g2")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let bad = b
        .post(
            "/hierarchy/rollover",
            &[
                ("csrf", &csrf),
                ("ca", "edge"),
                ("name", "edge-g2"),
                ("from", "tomorrow"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("is not a date and time"), "{}", bad.body);
    let done = b
        .post(
            "/hierarchy/rollover",
            &[
                ("csrf", &csrf),
                ("ca", "edge"),
                ("name", "edge-g2"),
                ("from", ""),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (_, edge) = s.api(Method::GET, "/cas/edge", None).await;
    let (_, g2) = s.api(Method::GET, "/cas/edge-g2", None).await;
    assert_eq!(edge["successor_id"], g2["id"]);
    assert_eq!(g2["subject"], "CN=Edge CA G2");
    let page = b.get("/hierarchy").await;
    assert!(page.body.contains("superseded by"), "{}", page.body);
    // A viewer sees the hierarchy without the form, and cannot post it.
    let (_, viewer) = s
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "v", "role": "viewer"})),
        )
        .await;
    let mut v = Plain::new(&s);
    assert_eq!(
        v.sign_in(viewer["token"].as_str().unwrap()).await.status,
        303
    );
    let vp = v.get("/hierarchy").await;
    assert_eq!(vp.status, 200);
    assert!(!vp.body.contains("rollover-submit"));
    let vcsrf = vp.csrf();
    let refused = v
        .post(
            "/hierarchy/rollover",
            &[("csrf", &vcsrf), ("ca", "edge-g2"), ("name", "edge-g3")],
        )
        .await;
    assert_eq!(refused.status, 403);
}

#[tokio::test]
async fn certificates_found_by_tag_on_the_page_and_the_api() {
    let s = TestServer::start(Db::Sqlite).await;
    let paid = issue(&s, "pay.tags.test").await;
    let other = issue(&s, "other.tags.test").await;
    let id = paid["certificate"]["id"]
        .as_str()
        .or(paid["id"].as_str())
        .unwrap()
        .to_string();
    let mut b = Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);
    let detail = b.get(&format!("/certificates/{id}")).await;
    let csrf = detail.csrf();
    let saved = b
        .post(
            &format!("/certificates/{id}/tags"),
            &[("csrf", &csrf), ("tags", "team:payments, env:prod")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = b.get("/certificates?by=tag&q=team%3Apayments").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("pay.tags.test"), "{}", page.body);
    assert!(!page.body.contains("other.tags.test"), "{}", page.body);
    let none = b.get("/certificates?by=tag&q=team").await;
    assert!(!none.body.contains("pay.tags.test"), "tags match exactly");

    let (st, found) = s.api(Method::GET, "/certificates?tag=env:prod", None).await;
    assert_eq!(st, 200, "{found}");
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["id"], id.as_str());
    let fp = other["certificate"]["fingerprint_sha256"]
        .as_str()
        .or(other["fingerprint_sha256"].as_str())
        .unwrap()
        .to_uppercase();
    let (st, found) = s
        .api(
            Method::GET,
            &format!("/certificates?fingerprint={fp}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{found}");
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    assert!(found.to_string().contains("other.tags.test"), "{found}");
}

#[tokio::test]
async fn ca_import_and_crl_state_on_the_hierarchy_page() {
    let s = TestServer::start(Db::Sqlite).await;
    // A CA made elsewhere, with openssl.
    let (key, cert) = (s.path("ext.key"), s.path("ext.pem"));
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-subj",
        "/CN=Imported Lab CA",
        "-days",
        "365",
        "-keyout",
        p(&key),
        "-out",
        p(&cert),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    assert!(ok, "{out}");
    let mut b = Plain::new(&s);
    assert_eq!(b.sign_in(&s.token).await.status, 303);
    let page = b.get("/hierarchy").await;
    let csrf = page.csrf();
    let cert_pem = std::fs::read_to_string(&cert).unwrap();
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let forged = b
        .post(
            "/hierarchy/import",
            &[
                ("name", "lab"),
                ("certificate", &cert_pem),
                ("private_key", &key_pem),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    let wrong = b
        .post(
            "/hierarchy/import",
            &[
                ("csrf", &csrf),
                ("name", "lab"),
                ("certificate", &s.root_pem),
                ("private_key", &key_pem),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body.contains("does not match"), "{}", wrong.body);
    let done = b
        .post(
            "/hierarchy/import",
            &[
                ("csrf", &csrf),
                ("name", "lab"),
                ("certificate", &cert_pem),
                ("private_key", &key_pem),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (_, lab) = s.api(Method::GET, "/cas/lab", None).await;
    assert_eq!(lab["kind"], "imported");
    assert_eq!(lab["subject"], "CN=Imported Lab CA");
    // Its CRL, once fetched, shows with its number on the page; the key never does.
    let crl = reqwest::get(s.http_url(&format!("/crl/{}.crl", lab["id"].as_str().unwrap())))
        .await
        .unwrap();
    assert_eq!(crl.status(), 200);
    let page = b.get("/hierarchy").await;
    assert!(page.body.contains("Imported Lab CA"), "{}", page.body);
    let row = &page.body[page
        .body
        .find(&format!("id=\"ca-{}\"", lab["id"].as_str().unwrap()))
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("#1") && row.contains("signed"), "{row}");
    assert!(
        !page.body.contains(key_pem.lines().nth(1).unwrap()),
        "the key is never shown"
    );
}
