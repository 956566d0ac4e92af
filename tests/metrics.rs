//! `/metrics` on SQLite and PostgreSQL: OpenMetrics text that the library writes, with the
//! counters this process keeps, latency per front end, and gauges read from the database
//! (certificate and CA expiry per CA and profile, counts per expiry window, the alert
//! outbox), checked against what the test created.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The value of the series named exactly `series` (name and labels as written).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn scrape(s: &TestServer) -> String {
    let resp = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        resp.headers()
    );
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    text
}

async fn scenario(db: Db) {
    let s = TestServer::start(db).await;
    // The server's own HTTPS certificate may already be counted.
    let before = scrape(&s).await;
    let issued_before = value(&before, "certkeeper_certificates_issued_total");
    let batches_before = value(&before, "certkeeper_store_write_batches_total");
    let writes_before = value(&before, "certkeeper_store_batched_writes_total");
    let (_, default) = s.api(Method::GET, "/profiles/default", None).await;
    let ca_id = default["ca"].as_str().unwrap().to_string();
    let (_, ca) = s.api(Method::GET, &format!("/cas/{ca_id}"), None).await;
    let ca_name = ca["name"].as_str().unwrap().to_string();
    let (st, body) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "metered", "ca": ca_id, "allowed_dns_names": [".metrics.test"]})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let mut not_afters = Vec::new();
    for (name, days) in [("a", 5), ("b", 20), ("c", 60)] {
        let (st, c) = s
            .api(
                Method::POST,
                "/certificates/generate",
                Some(json!({"profile": "metered", "dns_names": [format!("{name}.metrics.test")], "validity_days": days})),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        not_afters.push(
            OffsetDateTime::parse(c["not_after"].as_str().unwrap(), &Rfc3339)
                .unwrap()
                .unix_timestamp(),
        );
    }
    // A revoked certificate is not counted.
    let (_, gone) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(
                json!({"profile": "metered", "dns_names": ["d.metrics.test"], "validity_days": 3}),
            ),
        )
        .await;
    let (st, _) = s
        .api(
            Method::POST,
            &format!("/certificates/{}/revoke", gone["id"].as_str().unwrap()),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200);

    let text = scrape(&s).await;
    let at = format!("ca=\"{ca_name}\",profile=\"metered\"");
    assert_eq!(
        value(
            &text,
            &format!("certkeeper_certificate_expiration_timestamp_seconds{{{at}}}")
        ),
        not_afters[0] as f64,
        "the earliest expiry of the profile's valid certificates"
    );
    for (within, n) in [("7d", 1.0), ("30d", 2.0), ("90d", 3.0), ("all", 3.0)] {
        assert_eq!(
            value(
                &text,
                &format!("certkeeper_certificates_valid{{{at},within=\"{within}\"}}")
            ),
            n,
            "valid certificates within {within}"
        );
    }
    assert!(
        value(
            &text,
            &format!("certkeeper_ca_expiration_timestamp_seconds{{ca=\"{ca_name}\"}}")
        ) > 0.0
    );
    assert_eq!(
        value(&text, "certkeeper_certificates_issued_total") - issued_before,
        4.0
    );
    assert_eq!(value(&text, "certkeeper_certificates_revoked_total"), 1.0);
    // The four certificates went through the group-commit writer, one request after the
    // other: four writes, in one to four transactions.
    assert_eq!(
        value(&text, "certkeeper_store_batched_writes_total") - writes_before,
        4.0
    );
    let batches = value(&text, "certkeeper_store_write_batches_total") - batches_before;
    assert!((1.0..=4.0).contains(&batches), "{batches} batches");
    assert_eq!(
        value(
            &text,
            "certkeeper_http_responses_total{class=\"server_error\"}"
        ),
        0.0
    );
    assert!(
        value(
            &text,
            "certkeeper_http_request_duration_seconds_count{front_end=\"api\"}"
        ) >= 6.0
    );
    assert_eq!(
        value(
            &text,
            &format!(
                "certkeeper_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );

    // A threshold crossed puts a notification in the outbox; the gauge shows it.
    let (st, ch) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({"name": "nowhere", "kind": "webhook", "url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    let (st, rule) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(json!({"name": "soon", "channels": ["nowhere"], "thresholds": [10], "selector": {"profile": "metered"}})),
        )
        .await;
    assert_eq!(st, 201, "{rule}");
    let (st, _) = s.api(Method::POST, "/alerts/sweep", None).await;
    assert!(st == 200 || st == 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = scrape(&s).await;
        let queued: f64 = text
            .lines()
            .filter(|l| l.starts_with("certkeeper_alert_outbox{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        if queued >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no outbox row in:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_postgres() {
    scenario(Db::Postgres).await;
}
