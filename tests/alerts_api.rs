//! The alerts REST API against the real binary, on SQLite and PostgreSQL: channels keep
//! their secrets, rules are validated, an on-demand sweep delivers to a real receiver, the
//! outbox shows delivered and dead rows, and "send test" reaches the channel. The
//! on-demand sweep only queues (202): the delivery job sends, so a receiver that never
//! answers holds up neither the request nor other channels.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use certkeeper::services::alerts::deliver::signature;
use common::{Db, TestServer, outbox_until, webhook_receiver as receiver};
use reqwest::Method;
use serde_json::{Value, json};

/// `POST /alerts/sweep`: answered 202 without waiting on any receiver (hang guard).
async fn sweep(s: &TestServer) -> Value {
    let (st, r) = tokio::time::timeout(
        Duration::from_secs(10),
        s.api(Method::POST, "/alerts/sweep", None),
    )
    .await
    .expect("the sweep waited on a receiver");
    assert_eq!(st, 202, "{r}");
    r
}

async fn scenario(db: Db) {
    // One attempt, so a failing channel is dead at once; sweeps only on demand, and the
    // delivery job runs when a sweep wakes it (its interval is a day).
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_ALERTS__MAX_ATTEMPTS", "1"),
            ("CERTKEEPER_JOBS__ALERT_SWEEP", "1d"),
            ("CERTKEEPER_JOBS__ALERT_DELIVERY", "1h"),
        ],
    )
    .await;
    let (log, url) = receiver().await;

    let (st, ch) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({
                "name": "ops-hook", "kind": "webhook", "url": url, "hmac_key": "sekrit",
                "headers": {"Authorization": "Bearer hidden-value"},
            })),
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    let text = ch.to_string();
    for secret in ["sekrit", "hidden-value", "/hook"] {
        assert!(!text.contains(secret), "secret {secret} returned: {text}");
    }
    assert_eq!(ch["config"]["signed"], true);
    assert_eq!(ch["config"]["header_names"], json!(["Authorization"]));
    let (st, all) = s.api(Method::GET, "/alerts/channels", None).await;
    assert_eq!(st, 200);
    assert!(!all.to_string().contains("sekrit") && !all.to_string().contains("hidden-value"));

    // Bad input is refused clearly.
    for (body, why) in [
        (json!({"name": "x", "kind": "pager"}), "kind"),
        (json!({"name": "x", "kind": "slack"}), "url"),
        (
            json!({"name": "x", "kind": "slack", "url": "ftp://h/x"}),
            "http",
        ),
        (
            json!({"name": "x", "kind": "slack", "url": "https://h/x", "hmac_key": "k"}),
            "generic",
        ),
        (
            json!({"name": "x", "kind": "email", "smtp": {"host": "h", "port": 25, "tls": "tls", "from": "nobody", "to": ["a@b"]}}),
            "email address",
        ),
    ] {
        let (st, p) = s.api(Method::POST, "/alerts/channels", Some(body)).await;
        assert_eq!(st, 400, "{p}");
        assert!(p["detail"].as_str().unwrap().contains(why), "{p}");
    }
    let (st, _) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({"name": "ops-hook", "kind": "slack", "url": "https://h/x"})),
        )
        .await;
    assert_eq!(st, 409);
    let (st, p) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(json!({"name": "r", "channels": ["nope"]})),
        )
        .await;
    assert_eq!(
        (st, p["detail"].as_str().unwrap().contains("nope")),
        (400, true),
        "{p}"
    );
    let (st, p) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(
                json!({"name": "r", "channels": ["ops-hook"], "events": ["certificate.exploded"]}),
            ),
        )
        .await;
    assert_eq!(st, 400, "{p}");
    let (st, p) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(json!({"name": "r", "channels": ["ops-hook"], "thresholds": [0]})),
        )
        .await;
    assert_eq!(st, 400, "{p}");

    let (st, rule) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(json!({
                "name": "short-lived", "channels": ["ops-hook"],
                "selector": {"san": "*.alerts.example"},
                "events": ["certificate.revoked"],
            })),
        )
        .await;
    assert_eq!(st, 201, "{rule}");
    assert_eq!(rule["thresholds"], json!([30, 14, 7, 1]));
    assert_eq!(rule["channels"], json!([ch["id"]]));
    let (st, _) = s
        .api(
            Method::DELETE,
            &format!("/alerts/channels/{}", ch["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, 409, "in use by a rule");

    let (st, cert) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({
                "profile": "default", "dns_names": ["web.alerts.example"], "validity_days": 5,
            })),
        )
        .await;
    assert_eq!(st, 201, "{cert}");
    let r = sweep(&s).await;
    assert_eq!(r["sweep"]["fired"], 1, "{r}");
    outbox_until(&s, "delivered", 1).await;
    let r = sweep(&s).await;
    assert_eq!(r["sweep"]["fired"], 0, "fires once");
    {
        let got = log.lock().unwrap();
        assert_eq!(got.len(), 1);
        let (headers, body) = &got[0];
        assert_eq!(headers["authorization"], "Bearer hidden-value");
        let sig = headers["x-certkeeper-signature"].to_str().unwrap();
        let t: i64 = sig[2..sig.find(',').unwrap()].parse().unwrap();
        assert_eq!(sig, signature(b"sekrit", t, body));
        let ev: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(ev["type"], "io.certkeeper.certificate.expiring");
        assert_eq!(ev["data"]["threshold_days"], 7);
        assert_eq!(ev["subject"], cert["id"]);
    }

    // Revocation is a lifecycle event the rule subscribes to.
    let (st, _) = s
        .api(
            Method::POST,
            &format!("/certificates/{}/revoke", cert["id"].as_str().unwrap()),
            Some(json!({"reason": 1})),
        )
        .await;
    assert_eq!(st, 200);
    sweep(&s).await;
    outbox_until(&s, "delivered", 2).await;
    let ev: Value = serde_json::from_slice(&log.lock().unwrap()[1].1).unwrap();
    assert_eq!(ev["type"], "io.certkeeper.certificate.revoked");

    // Send test: delivered to the receiver, reported.
    let (st, out) = s
        .api(Method::POST, "/alerts/channels/ops-hook/test", None)
        .await;
    assert_eq!(
        (st, &out["result"], &out["status"]),
        (200, &json!("delivered"), &json!(200)),
        "{out}"
    );
    assert_eq!(log.lock().unwrap().len(), 3);

    // A channel nobody answers: dead after the limit (1 here), visible in the outbox.
    let dead_url = format!("http://127.0.0.1:{}/gone", common::free_port());
    let (st, _) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({"name": "gone", "kind": "discord", "url": dead_url})),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = s.api(Method::POST, "/alerts/rules", Some(json!({"name": "to-gone", "channels": ["gone"], "selector": {"san": "db.gone.example"}}))).await;
    assert_eq!(st, 201);
    let (st, _) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(
                json!({"profile": "default", "dns_names": ["db.gone.example"], "validity_days": 3}),
            ),
        )
        .await;
    assert_eq!(st, 201);
    let r = sweep(&s).await;
    assert_eq!(r["sweep"]["fired"], 1, "{r}");
    let dead = outbox_until(&s, "dead", 1).await;
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(dead[0]["attempts"], 1);
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("request failed"),
        "{dead}"
    );
    assert!(
        !dead.to_string().contains("/gone"),
        "the URL is a secret: {dead}"
    );
    let (_, delivered) = s
        .api(Method::GET, "/alerts/outbox?status=delivered", None)
        .await;
    assert_eq!(delivered.as_array().unwrap().len(), 2);
    let (st, _) = s.api(Method::GET, "/alerts/outbox?status=lost", None).await;
    assert_eq!(st, 400);

    // Rules and channels go away cleanly, and the audit log saw it all.
    let (st, _) = s
        .api(Method::DELETE, "/alerts/rules/short-lived", None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .api(Method::DELETE, "/alerts/channels/ops-hook", None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = s.api(Method::GET, "/alerts/channels/ops-hook", None).await;
    assert_eq!(st, 404);
    // Tags over the API: validated, replaced, readable.
    let fp = "ab".repeat(32);
    let (st, body) = s
        .api(
            Method::PUT,
            &format!("/alerts/tags/{fp}"),
            Some(json!({"tags": ["team:web", "tier:1", "team:web"]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["tags"], json!(["team:web", "tier:1"]));
    let (st, body) = s
        .api(Method::GET, &format!("/alerts/tags/{fp}"), None)
        .await;
    assert_eq!(
        (st, body["tags"].clone()),
        (200, json!(["team:web", "tier:1"]))
    );
    let (st, _) = s
        .api(
            Method::PUT,
            "/alerts/tags/not-a-fingerprint",
            Some(json!({"tags": ["x"]})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .api(
            Method::PUT,
            &format!("/alerts/tags/{fp}"),
            Some(json!({"tags": ["bad tag!"]})),
        )
        .await;
    assert_eq!(st, 400);
    let (_, audit) = s.api(Method::GET, "/audit?limit=100", None).await;
    let text = audit.to_string();
    for action in [
        "certificate.tag",
        "alert_channel.create",
        "alert_rule.create",
        "alert_channel.test",
        "alert_rule.delete",
        "alert_channel.delete",
    ] {
        assert!(text.contains(action), "audit {action}");
    }
    assert!(!text.contains("sekrit"));
}

#[tokio::test]
async fn alerts_api_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test]
async fn alerts_api_postgres() {
    scenario(Db::Postgres).await;
}

/// A receiver that accepts connections, reads nothing and never answers; counts them.
async fn hanging_receiver() -> (Arc<AtomicUsize>, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hang", l.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (count, url)
}

/// A client that gives up on the sweep after a few seconds (as `curl --max-time 5`
/// would) used to leave the rows the request had leased stuck for the lease's 300 s, so
/// no channel got anything. Now the sweep answers 202 at once and the delivery job
/// sends: the healthy channel gets its alert while the other receiver still hangs.
#[tokio::test]
async fn sweep_queues_and_a_hanging_receiver_holds_nothing_up() {
    let s = TestServer::start_with(
        Db::Sqlite,
        &[
            ("CERTKEEPER_JOBS__ALERT_SWEEP", "1d"),
            ("CERTKEEPER_JOBS__ALERT_DELIVERY", "1h"),
        ],
    )
    .await;
    let (hung, hang_url) = hanging_receiver().await;
    let (log, url) = receiver().await;
    // The hanging channel first: sent first, were they sent one after another.
    for (name, url) in [("a-hang", &hang_url), ("b-ok", &url)] {
        let (st, ch) = s
            .api(
                Method::POST,
                "/alerts/channels",
                Some(json!({"name": name, "kind": "webhook", "url": url})),
            )
            .await;
        assert_eq!(st, 201, "{ch}");
    }
    let (st, rule) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(json!({"name": "both", "channels": ["a-hang", "b-ok"],
                        "selector": {"san": "*.hang.example"}})),
        )
        .await;
    assert_eq!(st, 201, "{rule}");
    let (st, cert) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": ["web.hang.example"], "validity_days": 5})),
        )
        .await;
    assert_eq!(st, 201, "{cert}");

    // A client that gives up after 5 s gets its answer well before.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(s.server_ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let resp = client
        .post(s.url("/api/v1/alerts/sweep"))
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("the sweep waited on a receiver past the client's 5 s");
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["sweep"]["fired"], 1, "{body}");

    // The healthy channel is served while the other still hangs (hang guard: 30 s, well
    // under the 300 s lease a given-up request used to leave behind).
    for _ in 0..300 {
        if !log.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "the healthy channel got nothing"
    );
    assert!(
        hung.load(Ordering::SeqCst) >= 1,
        "the hanging receiver was never tried"
    );
    // Recorded once the receiver's answer is in.
    let delivered = outbox_until(&s, "delivered", 1).await;
    assert_eq!(delivered.as_array().unwrap().len(), 1, "{delivered}");
}
