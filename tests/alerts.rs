//! Expiry alerts and lifecycle events, in process with an injected clock (no sleeping),
//! against real HTTP receivers on local sockets, on SQLite and PostgreSQL.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use certkeeper::bootstrap::{Booted, boot};
use certkeeper::config::Settings;
use certkeeper::services::alerts::Alerts;
use certkeeper::services::alerts::channels::{NewChannel, prepare};
use certkeeper::services::alerts::deliver::signature;
use certkeeper::services::pki::{Actor, Issued, Pki};
use certkeeper::store::{RuleRecord, Selector, new_id};
use certkeeper_ca::{IssuanceRequest, KeyAlgorithm, ManualClock, PublicKeyData};
use common::Db;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// Scripted answers: status and an optional Retry-After.
type Answers = VecDeque<(u16, Option<&'static str>)>;

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Value,
    raw: Vec<u8>,
}

/// A local HTTP receiver: records every request; answers each path from a script of
/// (status, Retry-After) answers, then 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    script: Arc<Mutex<HashMap<String, Answers>>>,
    always: Arc<Mutex<HashMap<String, u16>>>,
}

async fn receive(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let path = uri.path().to_string();
    r.got.lock().unwrap().push(Got {
        path: path.clone(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
    });
    if let Some(code) = r.always.lock().unwrap().get(&path) {
        return (StatusCode::from_u16(*code).unwrap(), HeaderMap::new()).into_response();
    }
    let next = r
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let (code, retry) = next.unwrap_or(match path.as_str() {
        "/teams" => (202, None),
        "/discord" => (204, None),
        _ => (200, None),
    });
    let mut h = HeaderMap::new();
    if let Some(r) = retry {
        h.insert("retry-after", r.parse().unwrap());
    }
    (StatusCode::from_u16(code).unwrap(), h, "ok").into_response()
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new().fallback(receive).with_state(r.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (r, base)
    }

    fn at(&self, path: &str) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path == path)
            .cloned()
            .collect()
    }
}

/// A data directory (and, for PostgreSQL, a fresh database) for in-process servers.
struct Env {
    dir: tempfile::TempDir,
    pg: Option<String>,
}

impl Env {
    fn new(db: Db, extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut toml = extra.to_string();
        let mut pg = None;
        if db == Db::Postgres {
            let name = format!("ck_alerts_{}", new_id().replace('-', "_"));
            psql(&format!("CREATE DATABASE {name}"));
            let base = common::pg_admin_url();
            toml.push_str(&format!(
                "\n[database]\nurl = \"{}/{name}\"\n",
                base.rsplit_once('/').unwrap().0
            ));
            pg = Some(name);
        }
        std::fs::write(dir.path().join("certkeeper.toml"), toml).unwrap();
        Env { dir, pg }
    }

    async fn boot(&self, clock: &Arc<ManualClock>) -> Booted {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut settings = Settings::load(self.dir.path(), None).unwrap();
        common::any_name_under_default(&mut settings);
        let settings = Arc::new(settings);
        boot(settings, clock.clone()).await.unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(db) = &self.pg {
            common::drop_database(db);
        }
    }
}

fn psql(sql: &str) {
    let out = std::process::Command::new("psql")
        .args([
            &common::pg_admin_url(),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn issue(pki: &Pki, name: &str, days: i64) -> Issued {
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let mut req = IssuanceRequest::for_key(&key.subject_public_key_info());
    req.dns_names = vec![name.to_string()];
    req.validity = Some(Duration::days(days));
    let profile = pki.profile("default").await.unwrap();
    pki.issue(&profile, req, None, &Actor::system())
        .await
        .unwrap()
}

async fn channel(pki: &Pki, name: &str, body: Value) -> String {
    let mut body = body;
    body["name"] = json!(name);
    let c: NewChannel = serde_json::from_value(body).unwrap();
    let id = new_id();
    let rec = prepare(pki, &id, c, pki.now().unix_timestamp()).unwrap();
    let ev = Actor::system()
        .event("alert_channel.create", "alert_channel")
        .object(&id);
    pki.store_for_tests()
        .insert_channel(&rec, &ev, pki.now().unix_timestamp())
        .await
        .unwrap();
    id
}

async fn rule(
    pki: &Pki,
    name: &str,
    channels: Vec<String>,
    f: impl FnOnce(&mut RuleRecord),
) -> RuleRecord {
    let mut r = RuleRecord {
        id: new_id(),
        name: name.into(),
        selector: Selector {
            profile: Some("default".into()),
            ..Default::default()
        },
        thresholds: vec![30, 14, 7, 1],
        channels,
        events: vec![],
        daily_reminder: false,
        digest: false,
        enabled: true,
        created_at: pki.now().unix_timestamp(),
    };
    f(&mut r);
    let ev = Actor::system()
        .event("alert_rule.create", "alert_rule")
        .object(&r.id);
    pki.store_for_tests()
        .insert_rule(&r, &ev, pki.now().unix_timestamp())
        .await
        .unwrap();
    pki.invalidate_alert_rules();
    r
}

fn verify_hmac(g: &Got, key: &str) {
    let sig = g
        .headers
        .get("x-certkeeper-signature")
        .expect("signed")
        .to_str()
        .unwrap();
    let t: i64 = sig
        .strip_prefix("t=")
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        sig,
        signature(key.as_bytes(), t, &g.raw),
        "HMAC over t.body"
    );
}

/// (threshold, fingerprint) of every expiry event a receiver got.
fn crossings(got: &[Got]) -> Vec<(Value, String)> {
    got.iter()
        .filter(|g| {
            g.body["type"] == "io.certkeeper.certificate.expiring"
                || g.body["type"] == "io.certkeeper.certificate.expired"
        })
        .map(|g| {
            (
                g.body["data"]["threshold_days"].clone(),
                g.body["data"]["certificates"][0]["fingerprint"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

async fn thresholds_fire_once_renewal_resets_restart_keeps_outbox(db: Db) {
    let env = Env::new(db, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let mut b = env.boot(&clock).await;
    let (recv, base) = Receiver::start().await;
    let ch = channel(&b.pki, "hook", json!({"kind": "webhook", "url": format!("{base}/hook"), "hmac_key": "k3y", "headers": {"X-Team": "pki"}})).await;
    rule(&b.pki, "expiry", vec![ch], |_| {}).await;
    let alerts = Alerts::new(b.pki.clone());
    let first = issue(&b.pki, "svc.example.com", 40).await;
    let fp1 = first.cert.info.fingerprint_sha256.clone();

    assert_eq!(
        alerts.sweep().await.unwrap().fired,
        0,
        "40 days left: nothing yet"
    );
    clock.advance(Duration::days(11));
    assert_eq!(alerts.sweep().await.unwrap().fired, 1, "crossed 30");
    assert_eq!(alerts.sweep().await.unwrap().fired, 0, "fires once");
    assert_eq!(alerts.deliver_due().await.unwrap().delivered, 1);
    let got = recv.at("/hook");
    assert_eq!(got.len(), 1);
    let ev = &got[0].body;
    assert_eq!(ev["specversion"], "1.0");
    assert_eq!(ev["type"], "io.certkeeper.certificate.expiring");
    assert_eq!(ev["subject"], json!(first.id));
    assert_eq!(ev["data"]["threshold_days"], 30);
    assert_eq!(ev["data"]["certificates"][0]["fingerprint"], json!(fp1));
    assert_eq!(ev["data"]["certificates"][0]["days_left"], 29);
    assert_eq!(ev["data"]["rule"]["name"], "expiry");
    for k in ["id", "source", "time"] {
        assert!(ev[k].is_string(), "{k}");
    }
    assert_eq!(
        got[0].headers["content-type"],
        "application/cloudevents+json; charset=utf-8"
    );
    assert_eq!(got[0].headers["x-team"], "pki");
    verify_hmac(&got[0], "k3y");

    // 13 days left: 14 fires; a second replica sweeping at the same moment adds nothing.
    clock.advance(Duration::days(16));
    let replica = env.boot(&clock).await;
    let other = Alerts::new(replica.pki.clone());
    let (a, c) = tokio::join!(alerts.sweep(), other.sweep());
    assert_eq!(a.unwrap().fired + c.unwrap().fired, 1, "one replica wins");
    let (a, c) = tokio::join!(alerts.deliver_due(), other.deliver_due());
    assert_eq!(a.unwrap().delivered + c.unwrap().delivered, 1, "sent once");

    // 6 days left: 7 fires, then the process "crashes" before delivering.
    clock.advance(Duration::days(7));
    assert_eq!(alerts.sweep().await.unwrap().fired, 1);
    drop(alerts);
    drop(other);
    drop(replica);
    drop(b);
    b = env.boot(&clock).await;
    let alerts = Alerts::new(b.pki.clone());
    assert_eq!(
        alerts.sweep().await.unwrap().fired,
        0,
        "the restart does not fire again"
    );
    assert_eq!(
        alerts.deliver_due().await.unwrap().delivered,
        1,
        "nor lose the pending one"
    );
    assert_eq!(
        alerts.deliver_due().await.unwrap().delivered,
        0,
        "nor resend the delivered ones"
    );

    // Renewed (new fingerprint, same names): the old certificate falls silent, the new
    // one starts from the first threshold.
    let renewed = issue(&b.pki, "svc.example.com", 40).await;
    let fp2 = renewed.cert.info.fingerprint_sha256.clone();
    assert_ne!(fp1, fp2);
    clock.advance(Duration::days(8));
    assert_eq!(
        alerts.sweep().await.unwrap().fired,
        0,
        "old one expired, but was renewed"
    );
    clock.advance(Duration::days(3));
    assert_eq!(alerts.sweep().await.unwrap().fired, 1, "new one crossed 30");
    alerts.deliver_due().await.unwrap();
    let seen = crossings(&recv.at("/hook"));
    assert_eq!(
        seen,
        vec![
            (json!(30), fp1.clone()),
            (json!(14), fp1.clone()),
            (json!(7), fp1.clone()),
            (json!(30), fp2.clone()),
        ]
    );
    let delivered = b
        .pki
        .store_for_tests()
        .list_outbox(Some("delivered"), 100)
        .await
        .unwrap();
    assert_eq!(delivered.len(), 4);
    assert!(delivered.iter().all(|o| o.attempts == 1));
}

#[tokio::test]
async fn thresholds_fire_once_sqlite() {
    thresholds_fire_once_renewal_resets_restart_keeps_outbox(Db::Sqlite).await;
}

#[tokio::test]
async fn thresholds_fire_once_postgres() {
    thresholds_fire_once_renewal_resets_restart_keeps_outbox(Db::Postgres).await;
}

async fn retries_backoff_and_dead_letters(db: Db) {
    let env = Env::new(db, "[alerts]\nmax_attempts = 3\nretry_base = \"30s\"\n");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let (recv, base) = Receiver::start().await;
    recv.script.lock().unwrap().insert(
        "/flaky".into(),
        VecDeque::from([(500, None), (429, Some("120"))]),
    );
    recv.always.lock().unwrap().insert("/down".into(), 503);
    let flaky = channel(
        &b.pki,
        "flaky",
        json!({"kind": "webhook", "url": format!("{base}/flaky")}),
    )
    .await;
    let down = channel(
        &b.pki,
        "down",
        json!({"kind": "webhook", "url": format!("{base}/down")}),
    )
    .await;
    rule(&b.pki, "r", vec![flaky.clone(), down.clone()], |_| {}).await;
    let alerts = Alerts::new(b.pki.clone());
    issue(&b.pki, "flaky.example.com", 20).await;
    assert_eq!(alerts.sweep().await.unwrap().fired, 1);

    let r = alerts.deliver_due().await.unwrap();
    assert_eq!((r.delivered, r.retried, r.dead), (0, 2, 0));
    assert_eq!(
        alerts.deliver_due().await.unwrap().retried,
        0,
        "not due before the backoff"
    );
    clock.advance(Duration::seconds(31));
    let r = alerts.deliver_due().await.unwrap();
    assert_eq!(
        (r.delivered, r.retried, r.dead),
        (0, 2, 0),
        "flaky: 429; down: 503 again"
    );
    let rows = b.pki.store_for_tests().list_outbox(None, 10).await.unwrap();
    let by = |rows: &[certkeeper::store::OutboxRecord], ch: &str| {
        rows.iter().find(|o| o.channel_id == ch).unwrap().clone()
    };
    let now = b.pki.now().unix_timestamp();
    assert_eq!(
        by(&rows, &flaky).next_attempt_at,
        now + 120,
        "Retry-After beats the 60 s backoff"
    );
    assert_eq!(by(&rows, &flaky).last_status, Some(429));
    assert_eq!(
        by(&rows, &down).next_attempt_at,
        now + 60,
        "backoff doubles"
    );

    clock.advance(Duration::seconds(61));
    let r = alerts.deliver_due().await.unwrap();
    assert_eq!(
        (r.delivered, r.retried, r.dead),
        (0, 0, 1),
        "down: third failure is the last; flaky waits"
    );
    let rows = b
        .pki
        .store_for_tests()
        .list_outbox(Some("dead"), 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].channel_id, down);
    assert_eq!(rows[0].attempts, 3);
    assert!(rows[0].last_error.as_deref().unwrap().contains("503"));

    clock.advance(Duration::seconds(60));
    assert_eq!(
        alerts.deliver_due().await.unwrap().delivered,
        1,
        "after Retry-After"
    );
    clock.advance(Duration::days(1));
    let r = alerts.deliver_due().await.unwrap();
    assert_eq!(
        (r.delivered, r.retried, r.dead),
        (0, 0, 0),
        "delivered once, dead stays dead"
    );
    assert_eq!(recv.at("/flaky").len(), 3, "failed twice, then delivered");
    assert_eq!(recv.at("/down").len(), 3, "dead after the limit");
    let ids: Vec<Value> = recv
        .at("/flaky")
        .iter()
        .map(|g| g.body["id"].clone())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "retries carry the same event id"
    );
    let rows = b
        .pki
        .store_for_tests()
        .list_outbox(Some("delivered"), 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 3);
}

#[tokio::test]
async fn retries_and_dead_letters_sqlite() {
    retries_backoff_and_dead_letters(Db::Sqlite).await;
}

#[tokio::test]
async fn retries_and_dead_letters_postgres() {
    retries_backoff_and_dead_letters(Db::Postgres).await;
}

async fn chat_flavours_digest_and_lifecycle(db: Db) {
    let env = Env::new(db, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let (recv, base) = Receiver::start().await;
    let slack = channel(
        &b.pki,
        "slack",
        json!({"kind": "slack", "url": format!("{base}/slack")}),
    )
    .await;
    let teams = channel(
        &b.pki,
        "teams",
        json!({"kind": "teams", "url": format!("{base}/teams")}),
    )
    .await;
    let discord = channel(
        &b.pki,
        "discord",
        json!({"kind": "discord", "url": format!("{base}/discord")}),
    )
    .await;
    let hook = channel(
        &b.pki,
        "events",
        json!({"kind": "webhook", "url": format!("{base}/events")}),
    )
    .await;
    rule(&b.pki, "chat", vec![slack, teams, discord], |r| {
        r.selector = Selector {
            san: Some("*.chat.example".into()),
            ..Default::default()
        };
    })
    .await;
    rule(&b.pki, "digest", vec![hook.clone()], |r| {
        r.digest = true;
        r.selector = Selector {
            san: Some("*.digest.example".into()),
            ..Default::default()
        };
    })
    .await;
    rule(&b.pki, "lifecycle", vec![hook], |r| {
        r.thresholds = vec![];
        r.events = vec![
            "certificate.issued".into(),
            "certificate.renewed".into(),
            "certificate.revoked".into(),
        ];
        r.selector = Selector {
            san: Some("*.life.example".into()),
            ..Default::default()
        };
    })
    .await;
    let alerts = Alerts::new(b.pki.clone());
    let chat = issue(&b.pki, "a.chat.example", 10).await;
    for n in ["a", "b", "c"] {
        issue(&b.pki, &format!("{n}.digest.example"), 5).await;
    }
    issue(&b.pki, "x.other.example", 5).await;
    assert_eq!(alerts.sweep().await.unwrap().fired, 4);
    let life = issue(&b.pki, "a.life.example", 60).await;
    issue(&b.pki, "a.life.example", 60).await;
    b.pki.revoke(&life.id, 4, &Actor::system()).await.unwrap();
    alerts.deliver_due().await.unwrap();

    let subject = chat.cert.info.subject.clone();
    let s = recv.at("/slack");
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].body["text"],
        format!("Certificate {subject} expires in 10 days")
    );
    assert_eq!(s[0].body["blocks"][0]["type"], "header");
    assert_eq!(s[0].body["blocks"][1]["type"], "section");
    assert_eq!(s[0].body["blocks"][1]["text"]["type"], "mrkdwn");
    assert!(
        s[0].body["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains(&chat.cert.info.fingerprint_sha256)
    );
    let t = recv.at("/teams");
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].body["type"], "message");
    let att = &t[0].body["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["version"], "1.4");
    assert_eq!(
        att["content"]["body"][1]["facts"][0]["value"],
        json!(subject)
    );
    let d = recv.at("/discord");
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].body["content"],
        format!("Certificate {subject} expires in 10 days")
    );
    assert_eq!(d[0].body["embeds"][0]["title"], json!(subject));
    let rows = b
        .pki
        .store_for_tests()
        .list_outbox(Some("delivered"), 10)
        .await
        .unwrap();
    assert!(
        rows.iter().any(|o| o.last_status == Some(202)),
        "Teams' 202 is success"
    );

    let e = recv.at("/events");
    let types: Vec<&str> = e.iter().map(|g| g.body["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec![
            "io.certkeeper.certificate.expiring.digest",
            "io.certkeeper.certificate.issued",
            "io.certkeeper.certificate.renewed",
            "io.certkeeper.certificate.revoked",
        ]
    );
    let digest = &e[0].body["data"]["certificates"];
    assert_eq!(
        digest.as_array().unwrap().len(),
        3,
        "one message for the three"
    );
    assert!(
        digest
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["threshold_days"] == 7)
    );
    assert_eq!(e[3].body["subject"], json!(life.id));
    assert_eq!(e[3].body["data"]["certificates"][0]["revocation_reason"], 4);
}

#[tokio::test]
async fn chat_flavours_digest_and_lifecycle_sqlite() {
    chat_flavours_digest_and_lifecycle(Db::Sqlite).await;
}

#[tokio::test]
async fn chat_flavours_digest_and_lifecycle_postgres() {
    chat_flavours_digest_and_lifecycle(Db::Postgres).await;
}

/// The Python with aiosmtpd that `.ci/run` installs (`.venv` in the repository), or
/// `CERTKEEPER_TEST_PYTHON`.
fn smtp_python() -> String {
    std::env::var("CERTKEEPER_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

struct Smtp {
    child: std::process::Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_smtp(dir: &std::path::Path, mode: &str, cert: &str, key: &str) -> Smtp {
    use std::io::BufRead;
    let out = dir.join(format!("mail-{mode}"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(dir.join("smtp-cert.pem"), cert).unwrap();
    std::fs::write(dir.join("smtp-key.pem"), key).unwrap();
    let port = common::free_port();
    let python = smtp_python();
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run .ci/run (it creates .venv with aiosmtpd)"
    );
    let mut child = std::process::Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py"))
        .arg(port.to_string())
        .arg(&out)
        .arg(mode)
        .arg(dir.join("smtp-cert.pem"))
        .arg(dir.join("smtp-key.pem"))
        .args(["alice", "s3cret"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        std::io::BufReader::new(stdout).read_line(&mut l).unwrap();
        l
    })
    .await
    .unwrap();
    assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
    Smtp { child, port, out }
}

async fn email_arrives(mode: &str) {
    let env = Env::new(Db::Sqlite, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    // The SMTP server's certificate comes from our own CA; the channel trusts our root. It
    // is for 127.0.0.1: no profile issues `localhost`, one of the server's own names.
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let mut req = IssuanceRequest::for_key(&key.subject_public_key_info());
    req.ip_addresses = vec!["127.0.0.1".parse().unwrap()];
    let profile = b.pki.profile("default").await.unwrap();
    let tls = b
        .pki
        .issue(&profile, req, None, &Actor::system())
        .await
        .unwrap();
    let chain = certkeeper_ca::pem_encode_certs(
        std::iter::once(tls.cert.der.as_slice()).chain(tls.chain.iter().take(1).map(Vec::as_slice)),
    );
    let smtp = start_smtp(env.dir.path(), mode, &chain, &key.serialize_pem()).await;
    let root = std::fs::read_to_string(env.dir.path().join("root.pem")).unwrap();
    let ch = channel(
        &b.pki,
        "mail",
        json!({"kind": "email", "password": "s3cret", "smtp": {
            "host": "127.0.0.1", "port": smtp.port, "tls": mode, "username": "alice",
            "from": "certkeeper@example.com", "to": ["ops@example.com", "pki@example.com"],
            "ca_pem": root,
        }}),
    )
    .await;
    rule(&b.pki, "mail", vec![ch.clone()], |r| {
        r.selector = Selector {
            san: Some("expiring.mail.example".into()),
            ..Default::default()
        };
    })
    .await;
    let cert = issue(&b.pki, "expiring.mail.example", 5).await;
    let alerts = Alerts::new(b.pki.clone());
    assert_eq!(alerts.sweep().await.unwrap().fired, 1);
    let r = alerts.deliver_due().await.unwrap();
    let rows = b.pki.store_for_tests().list_outbox(None, 10).await.unwrap();
    assert_eq!(r.delivered, 1, "{rows:?}");
    assert_eq!(rows[0].last_status, Some(250));

    let files: Vec<_> = std::fs::read_dir(&smtp.out).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let m: Value = serde_json::from_slice(&std::fs::read(files[0].path()).unwrap()).unwrap();
    assert_eq!(m["mail_from"], "certkeeper@example.com");
    assert_eq!(m["rcpt_tos"], json!(["ops@example.com", "pki@example.com"]));
    assert_eq!(m["tls"], true);
    assert_eq!(m["authenticated"], true);
    // RFC 5322 §3.6: a Date, and a Message-ID (some providers refuse mail without one),
    // made from the event id, so a repeated delivery of one event keeps its id.
    let date = m["date"].as_str().expect("a Date header");
    time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|e| panic!("Date {date:?}: {e}"));
    let message_id = m["message_id"].as_str().expect("a Message-ID header");
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@example.com>"),
        "{message_id}"
    );
    let subject = &cert.cert.info.subject;
    assert_eq!(
        m["subject"],
        format!("Certificate {subject} expires in 5 days")
    );
    let text = m["text"].as_str().unwrap();
    assert!(text.contains(&cert.cert.info.fingerprint_sha256), "{text}");
    assert!(text.contains("(5 days left)"), "{text}");
    let html = m["html"].as_str().unwrap();
    assert!(html.contains(&format!("<td>{subject}</td>")), "{html}");

    // The channel's "send test" reaches the same server; a server that is not there fails.
    let test = alerts
        .send_test(&b.pki.store_for_tests().get_channel(&ch).await.unwrap())
        .await
        .unwrap();
    assert!(
        matches!(
            test,
            certkeeper::services::alerts::Outcome::Delivered { status: Some(250) }
        ),
        "{test:?}"
    );
    let bad = channel(
        &b.pki,
        "bad",
        json!({"kind": "email", "password": "s3cret", "smtp": {
            "host": "localhost", "port": common::free_port(), "tls": mode, "username": "alice",
            "from": "certkeeper@example.com", "to": ["ops@example.com"],
            "ca_pem": std::fs::read_to_string(env.dir.path().join("root.pem")).unwrap(),
        }}),
    )
    .await;
    let test = alerts
        .send_test(&b.pki.store_for_tests().get_channel(&bad).await.unwrap())
        .await
        .unwrap();
    assert!(
        matches!(test, certkeeper::services::alerts::Outcome::Failed { .. }),
        "{test:?}"
    );
}

#[tokio::test]
async fn email_over_starttls() {
    email_arrives("starttls").await;
}

#[tokio::test]
async fn email_over_implicit_tls() {
    email_arrives("tls").await;
}

async fn reminders_and_ca_expiry(db: Db) {
    let env = Env::new(db, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let (recv, base) = Receiver::start().await;
    let hook = channel(
        &b.pki,
        "hook",
        json!({"kind": "webhook", "url": format!("{base}/hook")}),
    )
    .await;
    rule(&b.pki, "remind", vec![hook.clone()], |r| {
        r.thresholds = vec![7, 3];
        r.daily_reminder = true;
    })
    .await;
    // The default intermediate CA lives 1825 days: inside a 2000-day CA threshold.
    rule(&b.pki, "cas", vec![hook], |r| {
        r.thresholds = vec![2000];
        r.events = vec!["ca.expiring".into()];
        r.selector = Selector {
            san: Some("nothing.example".into()),
            ..Default::default()
        };
    })
    .await;
    let alerts = Alerts::new(b.pki.clone());
    let cert = issue(&b.pki, "remind.example.com", 10).await;
    assert_eq!(
        alerts.sweep().await.unwrap().fired,
        1,
        "only the intermediate CA"
    );
    let mut fired = Vec::new();
    for _ in 0..12 {
        clock.advance(Duration::hours(12));
        let r = alerts.sweep().await.unwrap();
        fired.push(r.fired);
        assert_eq!(alerts.sweep().await.unwrap().fired, 0, "never twice");
    }
    // 9.5 .. 4 days left: only 7 fired.
    assert_eq!(fired.iter().sum::<usize>(), 1);
    // Down to expiry in six-hour steps: 3 fires, then one reminder at 2 and at 1 day
    // left, then expired.
    for _ in 0..17 {
        clock.advance(Duration::hours(6));
        alerts.sweep().await.unwrap();
    }
    alerts.deliver_due().await.unwrap();
    let got = recv.at("/hook");
    let facts: Vec<(String, Value, Value)> = got
        .iter()
        .map(|g| {
            (
                g.body["type"].as_str().unwrap().to_string(),
                g.body["data"]["threshold_days"].clone(),
                g.body["data"]["reminder"].clone(),
            )
        })
        .collect();
    let e = |t: &str, d: Value, r: bool| (format!("io.certkeeper.{t}"), d, json!(r));
    assert_eq!(
        facts,
        vec![
            e("ca.expiring", json!(2000), false),
            e("certificate.expiring", json!(7), false),
            e("certificate.expiring", json!(3), false),
            e("certificate.expiring", json!(2), true),
            e("certificate.expiring", json!(1), true),
            e("certificate.expired", Value::Null, false),
        ]
    );
    assert_eq!(
        got[0].body["data"]["certificates"][0]["subject"],
        "CN=certkeeper Intermediate CA"
    );
    assert_eq!(got[5].body["subject"], json!(cert.id));
}

#[tokio::test]
async fn reminders_and_ca_expiry_sqlite() {
    reminders_and_ca_expiry(Db::Sqlite).await;
}

#[tokio::test]
async fn reminders_and_ca_expiry_postgres() {
    reminders_and_ca_expiry(Db::Postgres).await;
}

/// Managed-certificate failures and discovery findings reach the channels subscribed to them.
async fn managed_and_discovery_events(db: Db) {
    let env = Env::new(db, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let (recv, base) = Receiver::start().await;
    let hook = channel(
        &b.pki,
        "ops",
        json!({"kind": "webhook", "url": format!("{base}/ops")}),
    )
    .await;
    rule(&b.pki, "ops", vec![hook], |r| {
        r.thresholds = vec![];
        r.selector = Selector::default();
        r.events = vec![
            "sync.failed".into(),
            "certificate.renewal_failed".into(),
            "discovery.new".into(),
            "discovery.changed".into(),
            "discovery.expired".into(),
        ];
    })
    .await;
    let managed = certkeeper::services::managed::Managed::new(b.pki.clone());
    managed
        .event(
            "m-1",
            "sync_failed",
            json!({"destination": "acm", "error": "throttled"}),
        )
        .await;
    managed
        .event("m-1", "renewal_failed", json!({"error": "profile gone"}))
        .await;
    // Events nobody subscribed to as failures are not sent.
    managed.event("m-1", "synced", json!({})).await;
    let changes = certkeeper::store::ScanChanges {
        new_certificates: vec![
            json!({"fingerprint": "aa11", "subject": "CN=new.example", "endpoint": "127.0.0.9:443"}),
        ],
        new_endpoints: vec!["127.0.0.9:443".into()],
        changed: vec![json!({"endpoint": "127.0.0.8:443", "previous": "bb22", "current": "cc33"})],
        gone: vec![],
        expired: vec![json!({"fingerprint": "dd44", "subject": "CN=old.example", "not_after": 0})],
    };
    certkeeper::services::alerts::events::on_scan_finished(&b.pki, "scan-1", &changes).await;
    Alerts::new(b.pki.clone()).deliver_due().await.unwrap();
    let got = recv.at("/ops");
    let types: Vec<&str> = got
        .iter()
        .map(|g| g.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "io.certkeeper.sync.failed",
            "io.certkeeper.certificate.renewal_failed",
            "io.certkeeper.discovery.new",
            "io.certkeeper.discovery.changed",
            "io.certkeeper.discovery.expired",
        ]
    );
    assert_eq!(got[0].body["data"]["managed_certificate"], "m-1");
    assert_eq!(got[0].body["data"]["detail"]["destination"], "acm");
    assert_eq!(got[2].body["data"]["finding"]["fingerprint"], "aa11");
    assert_eq!(got[2].body["data"]["scan"], "scan-1");
    assert_eq!(got[3].body["data"]["finding"]["current"], "cc33");
    assert_eq!(got[4].body["subject"], "CN=old.example");
}

#[tokio::test]
async fn managed_and_discovery_events_sqlite() {
    managed_and_discovery_events(Db::Sqlite).await;
}

#[tokio::test]
async fn managed_and_discovery_events_postgres() {
    managed_and_discovery_events(Db::Postgres).await;
}

/// A certificate found by discovery (not one of ours) and still served counts for expiry
/// alerts like our own; once its endpoint is gone it no longer does.
async fn discovered_certificates_expire_too(db: Db) {
    let env = Env::new(db, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let (recv, base) = Receiver::start().await;
    let hook = channel(
        &b.pki,
        "net",
        json!({"kind": "webhook", "url": format!("{base}/net")}),
    )
    .await;
    rule(&b.pki, "net", vec![hook], |r| {
        r.selector = Selector {
            discovered_only: true,
            ..Default::default()
        };
    })
    .await;
    let now = b.pki.now().unix_timestamp();
    let pool = b.pki.store_for_tests().pool();
    for (fp, subject, days, gone, address) in [
        ("f00d01", "CN=legacy.example", 10, None, "127.0.0.7"),
        ("f00d02", "CN=retired.example", 10, Some(now), "127.0.0.8"),
    ] {
        sqlx::query(
            "INSERT INTO discovery_certificates (fingerprint, subject, issuer, serial, not_before, not_after, dns_names, key_type, key_bits, signature_algorithm, issued_by_certkeeper, certificate_id, der, first_seen, last_seen)
             VALUES ($1, $2, 'CN=Other CA', '01', $3, $4, '[]', 'ecdsa-p256', 256, 'ecdsa-with-SHA256', 0, NULL, $5, $3, $3)",
        )
        .bind(fp)
        .bind(subject)
        .bind(now - 86_400)
        .bind(now + days * 86_400)
        .bind(vec![0u8])
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO discovery_endpoints (id, address, port, sni, fingerprint, findings, tls_version, cipher_suite, first_seen, last_seen, gone_at, last_scan_id)
             VALUES ($1, $5, 443, '', $2, '[]', 'TLSv1.3', 'TLS13_AES_128_GCM_SHA256', $3, $3, $4, 'scan-x')",
        )
        .bind(format!("ep-{fp}"))
        .bind(fp)
        .bind(now)
        .bind(gone)
        .bind(address)
        .execute(pool)
        .await
        .unwrap();
    }
    // One of ours expiring too: the discovered-only rule ignores it.
    issue(&b.pki, "a.ours.example", 10).await;
    let alerts = Alerts::new(b.pki.clone());
    assert_eq!(alerts.sweep().await.unwrap().fired, 1);
    assert_eq!(alerts.sweep().await.unwrap().fired, 0, "once per threshold");
    alerts.deliver_due().await.unwrap();
    let got = recv.at("/net");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["type"], "io.certkeeper.certificate.expiring");
    let body = got[0].body.to_string();
    assert!(
        body.contains("f00d01") && body.contains("CN=legacy.example"),
        "{body}"
    );
    assert!(
        !body.contains("f00d02"),
        "a certificate no longer served is not alerted: {body}"
    );
}

#[tokio::test]
async fn discovered_certificates_expire_too_sqlite() {
    discovered_certificates_expire_too(Db::Sqlite).await;
}

#[tokio::test]
async fn discovered_certificates_expire_too_postgres() {
    discovered_certificates_expire_too(Db::Postgres).await;
}

/// Tags set on a certificate select it for rules with a `tags` selector.
async fn tags_select_certificates(db: Db) {
    let env = Env::new(db, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let (recv, base) = Receiver::start().await;
    let hook = channel(
        &b.pki,
        "payments",
        json!({"kind": "webhook", "url": format!("{base}/payments")}),
    )
    .await;
    rule(&b.pki, "payments", vec![hook], |r| {
        r.selector = Selector {
            tags: vec!["team:payments".into()],
            ..Default::default()
        };
    })
    .await;
    let tagged = issue(&b.pki, "a.pay.example", 10).await;
    let other = issue(&b.pki, "a.other.example", 10).await;
    let fp = tagged.cert.info.fingerprint_sha256.clone();
    let ev = Actor::system()
        .event("certificate.tag", "certificate")
        .object(&fp);
    let store = b.pki.store_for_tests();
    store
        .set_tags(&fp, &["team:payments".into(), "tier:1".into()], &ev, 0)
        .await
        .unwrap();
    assert_eq!(
        store.tags_of(&fp).await.unwrap(),
        vec!["team:payments", "tier:1"]
    );
    let alerts = Alerts::new(b.pki.clone());
    assert_eq!(alerts.sweep().await.unwrap().fired, 1);
    alerts.deliver_due().await.unwrap();
    let body = recv.at("/payments")[0].body.to_string();
    assert!(body.contains(&fp), "{body}");
    assert!(
        !body.contains(&other.cert.info.fingerprint_sha256),
        "{body}"
    );
    // Replacing the tags drops the old ones.
    store
        .set_tags(&fp, &["tier:2".into()], &ev, 0)
        .await
        .unwrap();
    assert_eq!(store.tags_of(&fp).await.unwrap(), vec!["tier:2"]);
}

#[tokio::test]
async fn tags_select_certificates_sqlite() {
    tags_select_certificates(Db::Sqlite).await;
}

#[tokio::test]
async fn tags_select_certificates_postgres() {
    tags_select_certificates(Db::Postgres).await;
}

/// A receiver that accepts connections, reads nothing and never answers; counts them.
async fn hanging_receiver() -> (Arc<std::sync::atomic::AtomicUsize>, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hang", l.local_addr().unwrap());
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(sock);
        }
    });
    (count, url)
}

/// One receiver that accepts and never answers must not delay another channel: the
/// healthy webhook gets all of its alerts while the delivery pass still waits on the
/// hanging one (each of whose sends takes the 15 s HTTP timeout).
#[tokio::test]
async fn a_hanging_receiver_does_not_hold_up_other_channels() {
    const N: usize = 6;
    let env = Env::new(Db::Sqlite, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let (recv, base) = Receiver::start().await;
    let (hung, hang_url) = hanging_receiver().await;
    let hang = channel(&b.pki, "hang", json!({"kind": "webhook", "url": hang_url})).await;
    let ok = channel(
        &b.pki,
        "ok",
        json!({"kind": "webhook", "url": format!("{base}/ok")}),
    )
    .await;
    rule(&b.pki, "both", vec![hang, ok], |r| {
        r.selector = Selector {
            san: Some("*.hang.example".into()),
            ..Default::default()
        };
    })
    .await;
    for i in 0..N {
        issue(&b.pki, &format!("h{i}.hang.example"), 20).await;
    }
    let alerts = Arc::new(Alerts::new(b.pki.clone()));
    assert_eq!(alerts.sweep().await.unwrap().fired, N);
    let pass = tokio::spawn({
        let alerts = alerts.clone();
        async move { alerts.deliver_due().await }
    });
    // Hang guard: 30 s, while the hanging channel alone needs N × 15 s.
    for _ in 0..300 {
        if recv.at("/ok").len() >= N {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        recv.at("/ok").len(),
        N,
        "the healthy channel waited behind the hanging one"
    );
    assert!(
        !pass.is_finished(),
        "the pass should still be waiting on the hanging receiver"
    );
    assert!(hung.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    pass.abort();
}

/// A receiver's answer is read only up to a small cap: one that answers 500 with a
/// 256 MiB body is cut off (the connection closed) long before the end, and the start of
/// the body is kept as the error.
#[tokio::test]
async fn a_huge_answer_is_not_read() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: u64 = 256 << 20;
    let env = Env::new(Db::Sqlite, "[alerts]\nmax_attempts = 1\n");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/huge", l.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicBool::new(false));
    let (w, e) = (written.clone(), ended.clone());
    tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.unwrap();
        // Read the request (it is small), then answer.
        let mut req = Vec::new();
        let mut buf = [0u8; 8192];
        while !req.windows(4).any(|x| x == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let head = format!("HTTP/1.1 500 Internal Server Error\r\ncontent-length: {BODY}\r\n\r\n");
        sock.write_all(head.as_bytes()).await.unwrap();
        let mut chunk = vec![b'x'; 64 * 1024];
        chunk[..13].copy_from_slice(b"start-of-body");
        let mut sent = 0u64;
        while sent < BODY {
            if sock.write_all(&chunk).await.is_err() {
                break;
            }
            chunk[..13].copy_from_slice(b"xxxxxxxxxxxxx");
            sent += chunk.len() as u64;
            w.store(sent, Ordering::SeqCst);
        }
        e.store(true, Ordering::SeqCst);
    });
    let ch = channel(&b.pki, "huge", json!({"kind": "webhook", "url": url})).await;
    rule(&b.pki, "huge", vec![ch], |r| {
        r.selector = Selector {
            san: Some("huge.example".into()),
            ..Default::default()
        };
    })
    .await;
    issue(&b.pki, "huge.example", 20).await;
    let alerts = Alerts::new(b.pki.clone());
    assert_eq!(alerts.sweep().await.unwrap().fired, 1);
    let r = tokio::time::timeout(std::time::Duration::from_secs(60), alerts.deliver_due())
        .await
        .expect("delivery hung")
        .unwrap();
    assert_eq!(r.dead, 1);
    // The receiver notices the closed connection (hang guard: 30 s).
    for _ in 0..300 {
        if ended.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        ended.load(Ordering::SeqCst),
        "the receiver is still writing"
    );
    let sent = written.load(Ordering::SeqCst);
    assert!(
        sent < BODY,
        "the whole {BODY}-byte answer was read ({sent} bytes written)"
    );
    let rows = b
        .pki
        .store_for_tests()
        .list_outbox(Some("dead"), 10)
        .await
        .unwrap();
    let error = rows[0].last_error.as_deref().unwrap();
    assert!(
        error.starts_with("HTTP 500") && error.contains("start-of-body"),
        "{error}"
    );
    assert!(error.len() < 1024, "{} bytes of error", error.len());
}

/// `(fingerprint, slot)` of every threshold a rule fired, sorted.
async fn fired_of(pki: &Pki, rule_id: &str) -> Vec<(String, String)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT fingerprint, slot FROM alert_fired WHERE rule_id = $1 ORDER BY fingerprint, slot",
    )
    .bind(rule_id)
    .fetch_all(pki.store_for_tests().pool())
    .await
    .unwrap();
    rows
}

/// Events waiting in the outbox.
async fn queued(pki: &Pki) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alert_outbox")
        .fetch_one(pki.store_for_tests().pool())
        .await
        .unwrap();
    n
}

/// A sweep reads only what moved since the previous one; a rule created or changed later
/// still sees every certificate already inside its windows, once.
async fn new_and_changed_rules_see_certificates_already_inside(db: Db) {
    let env = Env::new(db, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let ch = channel(
        &b.pki,
        "hook",
        json!({"kind": "webhook", "url": "http://127.0.0.1:9/none"}),
    )
    .await;
    let alerts = Alerts::new(b.pki.clone());
    let fp = |i: &Issued| i.cert.info.fingerprint_sha256.clone();
    let c20 = fp(&issue(&b.pki, "c20.example.com", 20).await);
    let c10 = fp(&issue(&b.pki, "c10.example.com", 10).await);
    let c3 = fp(&issue(&b.pki, "c3.example.com", 3).await);
    let c45 = fp(&issue(&b.pki, "c45.example.com", 45).await);

    let first = rule(&b.pki, "first", vec![ch.clone()], |_| {}).await;
    assert_eq!(alerts.sweep().await.unwrap().fired, 3);
    let mut want = vec![
        (c10.clone(), "d14".to_string()),
        (c20.clone(), "d30".to_string()),
        (c3.clone(), "d7".to_string()),
    ];
    want.sort();
    assert_eq!(fired_of(&b.pki, &first.id).await, want);
    clock.advance(Duration::hours(1));
    assert_eq!(alerts.sweep().await.unwrap().fired, 0, "nothing moved");

    // A rule created now: the three certificates are long past its thresholds' boundaries.
    let second = rule(&b.pki, "second", vec![ch.clone()], |_| {}).await;
    assert_eq!(
        alerts.sweep().await.unwrap().fired,
        3,
        "the new rule sees all three"
    );
    assert_eq!(fired_of(&b.pki, &second.id).await, want);
    assert_eq!(alerts.sweep().await.unwrap().fired, 0);

    // The first rule gains a 60-day threshold: the 45-day certificate is inside it.
    sqlx::query("UPDATE alert_rules SET thresholds = $1 WHERE id = $2")
        .bind("[60,30,14,7,1]")
        .bind(&first.id)
        .execute(b.pki.store_for_tests().pool())
        .await
        .unwrap();
    assert_eq!(
        alerts.sweep().await.unwrap().fired,
        1,
        "the changed rule sees it"
    );
    assert!(
        fired_of(&b.pki, &first.id)
            .await
            .contains(&(c45.clone(), "d60".to_string()))
    );
    assert_eq!(alerts.sweep().await.unwrap().fired, 0);
    assert_eq!(queued(&b.pki).await, 7, "one event per crossing");
}

#[tokio::test]
async fn new_and_changed_rules_see_certificates_already_inside_sqlite() {
    new_and_changed_rules_see_certificates_already_inside(Db::Sqlite).await;
}

#[tokio::test]
async fn new_and_changed_rules_see_certificates_already_inside_postgres() {
    new_and_changed_rules_see_certificates_already_inside(Db::Postgres).await;
}

/// Sweeps every six hours (and once after the clock went back a day): each threshold of
/// each certificate is announced exactly once, including a certificate that crossed
/// between two sweeps and one issued already inside a window.
async fn each_crossing_announced_once_across_sweeps(db: Db) {
    let env = Env::new(db, "");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let b = env.boot(&clock).await;
    let ch = channel(
        &b.pki,
        "hook",
        json!({"kind": "webhook", "url": "http://127.0.0.1:9/none"}),
    )
    .await;
    let r = rule(&b.pki, "expiry", vec![ch], |_| {}).await;
    let alerts = Alerts::new(b.pki.clone());
    let fp = |i: &Issued| i.cert.info.fingerprint_sha256.clone();
    let a = fp(&issue(&b.pki, "a.example.com", 33).await);
    let c = fp(&issue(&b.pki, "c.example.com", 31).await);
    assert_eq!(alerts.sweep().await.unwrap().fired, 0);

    let mut total = 0;
    let mut late = None;
    for step in 0..160 {
        clock.advance(Duration::hours(6));
        if step == 20 {
            // Issued between two sweeps with five days left: inside the 7-day window.
            late = Some(fp(&issue(&b.pki, "late.example.com", 5).await));
        }
        if step == 60 {
            clock.advance(Duration::days(-1));
        }
        total += alerts.sweep().await.unwrap().fired;
    }
    let late = late.unwrap();
    let mut want: Vec<(String, String)> = Vec::new();
    for f in [&a, &c] {
        for slot in ["d30", "d14", "d7", "d1", "expired"] {
            want.push((f.clone(), slot.to_string()));
        }
    }
    for slot in ["d7", "d1", "expired"] {
        want.push((late.clone(), slot.to_string()));
    }
    want.sort();
    assert_eq!(fired_of(&b.pki, &r.id).await, want);
    assert_eq!(total, want.len(), "each crossing counted by one sweep");
    assert_eq!(queued(&b.pki).await, want.len() as i64, "and queued once");
}

#[tokio::test]
async fn each_crossing_announced_once_across_sweeps_sqlite() {
    each_crossing_announced_once_across_sweeps(Db::Sqlite).await;
}

#[tokio::test]
async fn each_crossing_announced_once_across_sweeps_postgres() {
    each_crossing_announced_once_across_sweeps(Db::Postgres).await;
}
