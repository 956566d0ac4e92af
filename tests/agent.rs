//! The host agent and the deployments view against the real binary and real peers, on
//! SQLite and PostgreSQL:
//! - an `agent` token reaches only the managed certificates it was given, and only its own
//!   endpoints (RFC 7807 refusals everywhere else);
//! - `certkeeper agent` deploys a managed certificate to a real nginx (Debian
//!   `nginx-light`, started by the test as an unprivileged-safe configuration in a temp
//!   dir), which `openssl s_client` then sees; files get the modes asked, and the PKCS#12
//!   opens with the password file;
//! - a renewal while nginx still serves the old version: a discovery scan shows the
//!   endpoint stale (version, since when) and `deployment.stale` reaches a webhook once;
//!   the next agent pass deploys the new version, s_client sees it, a new scan clears it;
//! - a failing reload command is reported (with its output) and raises
//!   `deployment.failed` through the alert outbox.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Db, TestServer, WebhookLog, openssl, p, webhook_receiver};
use reqwest::Method;
use serde_json::{Value, json};

/// The events of `kind` received so far.
fn received(log: &WebhookLog, kind: &str) -> Vec<Value> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|(_, body)| serde_json::from_slice::<Value>(body).ok())
        .filter(|e| e["type"] == format!("io.certkeeper.{kind}"))
        .collect()
}

/// Wait until `n` events of `kind` arrived (hang guard: 60 s).
async fn wait_events(log: &WebhookLog, kind: &str, n: usize) -> Vec<Value> {
    for _ in 0..600 {
        let got = received(log, kind);
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} {kind} events never arrived");
}

/// A loopback address of its own per process and engine (the discovery allowlist is this
/// one address).
fn address(db: Db) -> IpAddr {
    let pid = std::process::id();
    let a = match db {
        Db::Sqlite => 100 + pid % 20,
        Db::Postgres => 120 + pid % 20,
    } as u8;
    IpAddr::V4(Ipv4Addr::new(127, a, (pid / 20 % 250) as u8, 9))
}

fn nginx_bin() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// nginx in the foreground over a configuration in `dir`, serving `cert`/`key` on
/// `addr:port`; killed on drop.
struct Nginx {
    child: Child,
    conf: PathBuf,
    prefix: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, addr: IpAddr, port: u16, cert: &Path, key: &Path) -> Nginx {
        let prefix = dir.join("nginx");
        for d in ["logs", "tmp"] {
            std::fs::create_dir_all(prefix.join(d)).unwrap();
        }
        let conf = prefix.join("nginx.conf");
        let t = prefix.join("tmp");
        std::fs::write(
            &conf,
            format!(
                "worker_processes 1;\npid {pid};\nerror_log {err} warn;\nevents {{ worker_connections 64; }}\n\
                 http {{\n access_log off;\n client_body_temp_path {t}/body;\n proxy_temp_path {t}/proxy;\n\
                 fastcgi_temp_path {t}/fastcgi;\n uwsgi_temp_path {t}/uwsgi;\n scgi_temp_path {t}/scgi;\n\
                 server {{\n  listen {addr}:{port} ssl;\n  server_name web.test;\n\
                 ssl_certificate {cert};\n  ssl_certificate_key {key};\n  location / {{ return 200 \"ok\\n\"; }}\n }}\n}}\n",
                pid = p(&prefix.join("nginx.pid")),
                err = p(&prefix.join("logs/error.log")),
                t = p(&t),
                cert = p(cert),
                key = p(key),
            ),
        )
        .unwrap();
        let child = Command::new(nginx_bin())
            .args(["-p", p(&prefix), "-c", p(&conf), "-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        Nginx {
            child,
            conf,
            prefix,
        }
    }

    /// How many processes the master runs now: its one worker, and after a reload the
    /// old worker too until it has finished (`/proc/<pid>/stat`'s fourth field is the
    /// parent's pid).
    fn workers(&self) -> usize {
        let master = self.child.id().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                stat.rfind(')').is_some_and(|i| {
                    stat[i + 1..].split_whitespace().nth(1) == Some(master.as_str())
                })
            })
            .count()
    }

    /// The reload command the agent runs.
    fn reload_command(&self) -> Vec<String> {
        [
            nginx_bin(),
            "-p",
            p(&self.prefix),
            "-c",
            p(&self.conf),
            "-s",
            "reload",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SHA-256 fingerprint (lowercase hex, no colons) of the certificate `openssl
/// s_client` receives from `addr:port`, or None while nothing answers.
fn served_fingerprint(dir: &Path, addr: IpAddr, port: u16) -> Option<String> {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{addr}:{port}"),
            "-servername",
            "web.test",
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    let end = text.find("-----END CERTIFICATE-----")? + "-----END CERTIFICATE-----".len();
    let pem_path = dir.join("served.pem");
    std::fs::write(&pem_path, &text[start..end]).unwrap();
    let (ok, fp) = openssl(&[
        "x509",
        "-in",
        p(&pem_path),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    assert!(ok, "{fp}");
    Some(
        fp.trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase(),
    )
}

/// Wait until s_client sees `fingerprint` and the workers of the configuration before
/// have exited (nginx reloads asynchronously: until an old worker has exited, a new
/// connection may still reach it and get the old certificate; hang guard 60 s).
async fn wait_served(nginx: &Nginx, dir: &Path, addr: IpAddr, port: u16, fingerprint: &str) {
    let mut last = None;
    for _ in 0..300 {
        last = served_fingerprint(dir, addr, port);
        if last.as_deref() == Some(fingerprint) && nginx.workers() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "nginx never served {fingerprint} from its only worker (last seen: {last:?}, {} workers)",
        nginx.workers()
    );
}

/// Run `certkeeper agent --once --config <config>`; returns (success, stderr).
fn agent_once(config: &Path) -> (bool, String) {
    let out = Command::new(common::bin())
        .args(["agent", "--once", "--config", p(config)])
        .env_remove("CERTKEEPER_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Write an agent configuration for the managed certificate `web`.
fn agent_config(
    s: &TestServer,
    name: &str,
    host: &str,
    files: &Path,
    reload: &[String],
) -> PathBuf {
    std::fs::create_dir_all(files).unwrap();
    s.write(&format!("{name}.token"), "");
    let f = |n: &str| p(&files.join(n)).to_string();
    let text = format!(
        "server = \"https://localhost:{port}\"\ntoken_file = \"{token}\"\nca_bundle = \"{ca}\"\nhost = \"{host}\"\ntimeout_seconds = 20\n\n\
         [[certificate]]\nname = \"web\"\ncertificate = \"{cert}\"\nchain = \"{chain}\"\nfull_chain = \"{full}\"\nkey = \"{key}\"\n\
         pkcs12 = \"{p12}\"\npkcs12_password_file = \"{pw}\"\nmode = \"0640\"\nkey_mode = \"0600\"\nreload = {reload}\nreload_timeout_seconds = 20\n",
        port = s.https_port,
        token = p(&s.path(&format!("{name}.token"))),
        ca = p(&s.data_dir.join("server-ca.pem")),
        cert = f("cert.pem"),
        chain = f("chain.pem"),
        full = f("fullchain.pem"),
        key = f("key.pem"),
        p12 = f("web.p12"),
        pw = p(&s.path("p12.pass")),
        reload = serde_json::to_string(reload).unwrap(),
    );
    s.write(&format!("{name}.toml"), text)
}

/// Wait for the wall clock's next second: the server keeps times in whole seconds, and a
/// sighting counts as after a renewal only in a later second.
async fn next_second() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let start = now();
    while now() == start {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of cookie `name` set by `resp`, if any.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// Sign in to the dashboard with `token` and fetch `path`: (status, page); the sign-in
/// answer when signing in fails.
async fn dashboard(s: &TestServer, token: &str, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(s.server_ca_pem.as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(s.url("/sign-in")).send().await.unwrap();
    let csrf = set_cookie(&form, "__Host-certkeeper_signin").unwrap();
    let signed = client
        .post(s.url("/sign-in"))
        .header(
            reqwest::header::COOKIE,
            format!("__Host-certkeeper_signin={csrf}"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf", &csrf)
                .append_pair("token", token)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    let Some(session) = set_cookie(&signed, "__Host-certkeeper_session") else {
        let status = signed.status().as_u16();
        return (status, signed.text().await.unwrap());
    };
    let page = client
        .get(s.url(path))
        .header(
            reqwest::header::COOKIE,
            format!("__Host-certkeeper_session={session}"),
        )
        .send()
        .await
        .unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

async fn deployments(s: &TestServer) -> Value {
    let (st, d) = s.api(Method::GET, "/managed/web/deployments", None).await;
    assert_eq!(st, 200, "{d}");
    d
}

/// The places of `kind` named `name` in a deployments view.
fn places<'a>(d: &'a Value, kind: &str, name: &str) -> Vec<&'a Value> {
    d["versions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["places"].as_array().unwrap())
        .filter(|p| p["kind"] == kind && p["name"] == name)
        .collect()
}

async fn scan(s: &TestServer, addr: IpAddr, port: u16) {
    let (st, job) = s
        .api(
            Method::POST,
            "/discovery/scans",
            Some(json!({"targets": [addr.to_string()], "ports": port.to_string()})),
        )
        .await;
    assert_eq!(st, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    for _ in 0..600 {
        let (_, job) = s
            .api(Method::GET, &format!("/discovery/scans/{id}"), None)
            .await;
        match job["status"].as_str().unwrap() {
            "running" | "queued" => tokio::time::sleep(Duration::from_millis(100)).await,
            "succeeded" => {
                assert!(job["handshakes"].as_i64().unwrap() >= 1, "{job}");
                return;
            }
            other => panic!("scan {other}: {job}"),
        }
    }
    panic!("scan {id} did not finish");
}

/// The agent token's refusals: everything but its own certificates' agent endpoints.
async fn scoping(s: &TestServer, agent: &str) {
    for (method, path, body) in [
        (Method::GET, "/agent/certificates/other", None),
        (
            Method::POST,
            "/agent/certificates/other/deployments",
            Some(json!({"host": "h", "version": 1, "reload_ok": true})),
        ),
        (Method::GET, "/agent/certificates/no-such-thing", None),
        (Method::GET, "/managed", None),
        (Method::GET, "/managed/web", None),
        (Method::GET, "/managed/web/deployments", None),
        (Method::GET, "/certificates", None),
        (Method::GET, "/cas", None),
        (Method::GET, "/tokens", None),
        (Method::POST, "/managed/web/renew", None),
        (
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "default", "dns_names": ["x.test"]})),
        ),
    ] {
        let (st, problem) = s.api_as(agent, method.clone(), path, body).await;
        assert_eq!(st, 403, "{method} {path}: {problem}");
        assert!(problem["detail"].as_str().is_some(), "{problem}");
    }
    // Other tokens may not use the agent endpoints (an admin does not get keys here).
    let (st, problem) = s.api(Method::GET, "/agent/certificates/web", None).await;
    assert_eq!(st, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("agent"));
    // Bad reports are refused clearly.
    for (body, why) in [
        (
            json!({"host": "a b", "version": 1, "reload_ok": true}),
            "host",
        ),
        (
            json!({"host": "h", "version": 99, "reload_ok": true}),
            "version 99",
        ),
        (json!({"host": "h", "version": 1}), "reload_ok"),
    ] {
        let (st, problem) = s
            .api_as(
                agent,
                Method::POST,
                "/agent/certificates/web/deployments",
                Some(body),
            )
            .await;
        assert_eq!(st, 400, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
    // Its own certificate, with the key.
    let (st, got) = s
        .api_as(agent, Method::GET, "/agent/certificates/web", None)
        .await;
    assert_eq!(st, 200, "{got}");
    assert_eq!(got["version"], 1);
    assert!(
        got["private_key"]
            .as_str()
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    assert!(
        got["full_chain"]
            .as_str()
            .unwrap()
            .starts_with(got["certificate"].as_str().unwrap())
    );
    // Agent tokens are made with their certificates, and only agent tokens have them.
    for (body, why) in [
        (json!({"name": "a", "role": "agent"}), "managed"),
        (
            json!({"name": "a", "role": "agent", "managed": ["nope"]}),
            "nope",
        ),
        (
            json!({"name": "a", "role": "viewer", "managed": ["web"]}),
            "agent tokens only",
        ),
    ] {
        let (st, problem) = s.api(Method::POST, "/tokens", Some(body)).await;
        assert_eq!(st, 400, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
}

async fn scenario(db: Db) {
    let addr = address(db);
    let s = TestServer::start_with(
        db,
        &[
            ("CERTKEEPER_DISCOVERY__ALLOW", &format!("{addr}/32")),
            ("CERTKEEPER_DISCOVERY__TIMEOUT", "3s"),
            ("CERTKEEPER_JOBS__ALERT_DELIVERY", "1s"),
            ("CERTKEEPER_JOBS__ALERT_SWEEP", "1d"),
        ],
    )
    .await;
    let (log, url) = webhook_receiver().await;
    let (st, ch) = s
        .api(
            Method::POST,
            "/alerts/channels",
            Some(json!({"name": "ops", "kind": "webhook", "url": url})),
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    let (st, rule) = s
        .api(
            Method::POST,
            "/alerts/rules",
            Some(json!({"name": "deployments", "channels": ["ops"], "events": ["deployment.failed", "deployment.stale"]})),
        )
        .await;
    assert_eq!(st, 201, "{rule}");

    for name in ["web", "other"] {
        let (st, m) = s
            .api(
                Method::POST,
                "/managed",
                Some(json!({"name": name, "profile": "default", "dns_names": [format!("{name}.test")], "validity_days": 30})),
            )
            .await;
        assert_eq!(st, 201, "{m}");
    }
    let (st, tok) = s
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "web-agent", "role": "agent", "managed": ["web"]})),
        )
        .await;
    assert_eq!(st, 201, "{tok}");
    assert_eq!(tok["managed"].as_array().unwrap().len(), 1);
    let agent = tok["token"].as_str().unwrap().to_string();
    scoping(&s, &agent).await;

    // nginx, already running with a placeholder certificate.
    let dir = s.dir.path().to_path_buf();
    let files = dir.join("tls");
    std::fs::create_dir_all(&files).unwrap();
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=placeholder",
        "-days",
        "1",
        "-keyout",
        p(&files.join("key.pem")),
        "-out",
        p(&files.join("fullchain.pem")),
    ]);
    assert!(ok, "{out}");
    let port = common::free_port();
    let nginx = Nginx::start(
        &dir,
        addr,
        port,
        &files.join("fullchain.pem"),
        &files.join("key.pem"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while served_fingerprint(&dir, addr, port).is_none() {
        assert!(Instant::now() < deadline, "nginx did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The agent deploys version 1 and reloads nginx.
    s.write("p12.pass", "p12-secret\n");
    let config = agent_config(&s, "web-1", "web-1", &files, &nginx.reload_command());
    std::fs::write(s.path("web-1.token"), format!("{agent}\n")).unwrap();
    let (ok, err) = agent_once(&config);
    assert!(ok, "{err}");
    let v1 = deployments(&s).await;
    let (_, got) = s
        .api_as(&agent, Method::GET, "/agent/certificates/web", None)
        .await;
    let fp1 = got["fingerprint"].as_str().unwrap().to_string();
    wait_served(&nginx, &dir, addr, port, &fp1).await;
    let mode = |n: &str| {
        std::fs::metadata(files.join(n))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("key.pem"), 0o600);
    assert_eq!(mode("web.p12"), 0o600);
    assert_eq!(mode("cert.pem"), 0o640);
    assert_eq!(
        std::fs::read_to_string(files.join("cert.pem")).unwrap(),
        got["certificate"].as_str().unwrap()
    );
    let (ok, out) = openssl(&[
        "pkcs12",
        "-in",
        p(&files.join("web.p12")),
        "-passin",
        &format!("file:{}", p(&s.path("p12.pass"))),
        "-nokeys",
        "-clcerts",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("web.test"), "{out}");
    let host = places(&v1, "host", "web-1");
    assert_eq!(host.len(), 1, "{v1}");
    assert_eq!(
        (host[0]["version"].as_i64(), host[0]["ok"].as_bool()),
        (Some(1), Some(true))
    );
    // Nothing written twice: a second pass finds the files current.
    let before = std::fs::metadata(files.join("cert.pem"))
        .unwrap()
        .modified()
        .unwrap();
    let (ok, err) = agent_once(&config);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::metadata(files.join("cert.pem"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );

    // Discovery sees version 1 at nginx: deployed, not stale.
    scan(&s, addr, port).await;
    let d = deployments(&s).await;
    let ep: Vec<&Value> = d["versions"][0]["places"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "endpoint")
        .collect();
    assert_eq!(ep.len(), 1, "{d}");
    assert_eq!(ep[0]["version"], 1);
    let endpoint = ep[0]["name"].as_str().unwrap().to_string();
    assert!(
        endpoint.starts_with(&format!("{addr}:{port}")),
        "{endpoint}"
    );
    assert_eq!(d["stale"], json!([]), "{d}");

    // Renewed while nginx still serves version 1: the next scan shows it stale.
    let (st, renewed) = s.api(Method::POST, "/managed/web/renew", None).await;
    assert_eq!(st, 200, "{renewed}");
    assert_eq!(renewed["current_version"], 2);
    next_second().await;
    scan(&s, addr, port).await;
    let d = deployments(&s).await;
    let stale = d["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{d}");
    assert_eq!(stale[0]["kind"], "endpoint");
    assert_eq!(stale[0]["name"], endpoint.as_str());
    assert_eq!(stale[0]["version"], 1);
    let v2_issued = d["versions"][0]["issued_at"].as_str().unwrap();
    assert_eq!(d["versions"][0]["version"], 2);
    assert_eq!(stale[0]["stale_since"].as_str().unwrap(), v2_issued, "{d}");
    let alerts = wait_events(&log, "deployment.stale", 1).await;
    assert_eq!(alerts[0]["data"]["place"], endpoint.as_str());
    assert_eq!(alerts[0]["data"]["version"], 1);
    assert_eq!(alerts[0]["data"]["managed_certificate_name"], "web");
    // The dashboard's managed-certificate page names it too; an agent token cannot sign in.
    let (st, page) = dashboard(&s, &s.token, "/managed/web").await;
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("stale-deployments"), "{page}");
    assert!(page.contains(&endpoint), "{page}");
    assert!(page.contains("serves version 1 since"), "{page}");
    let (st, page) = dashboard(&s, &agent, "/managed/web").await;
    assert_eq!(st, 403, "{page}");
    assert!(page.contains("agent token"), "{page}");
    // And the CLI.
    let out = Command::new(common::bin())
        .args([
            "--data-dir",
            p(&s.data_dir),
            "--server",
            &format!("https://localhost:{}", s.https_port),
        ])
        .args(["managed", "deployments", "web"])
        .env_remove("CERTKEEPER_TOKEN")
        .env_remove("CERTKEEPER_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&endpoint) && text.contains("1 place(s) still serve an old version"),
        "{text}"
    );
    // Scanned again, still stale: no second alert for the same place.
    scan(&s, addr, port).await;
    assert_eq!(deployments(&s).await["stale"].as_array().unwrap().len(), 1);

    // The next agent pass deploys version 2; nginx serves it; a new scan clears it.
    let (ok, err) = agent_once(&config);
    assert!(ok, "{err}");
    let (_, got) = s
        .api_as(&agent, Method::GET, "/agent/certificates/web", None)
        .await;
    assert_eq!(got["version"], 2);
    let fp2 = got["fingerprint"].as_str().unwrap().to_string();
    assert_ne!(fp1, fp2);
    wait_served(&nginx, &dir, addr, port, &fp2).await;
    scan(&s, addr, port).await;
    let d = deployments(&s).await;
    assert_eq!(d["stale"], json!([]), "{d}");
    assert_eq!(places(&d, "endpoint", &endpoint)[0]["version"], 2);
    assert_eq!(places(&d, "host", "web-1")[0]["version"], 2);
    assert_eq!(received(&log, "deployment.stale").len(), 1);

    // A host reporting the old version is stale as well.
    next_second().await;
    let (st, r) = s
        .api_as(
            &agent,
            Method::POST,
            "/agent/certificates/web/deployments",
            Some(json!({"host": "lagging-1", "version": 1, "reload_ok": true})),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    let d = deployments(&s).await;
    let stale = d["stale"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{d}");
    assert_eq!(
        (stale[0]["kind"].as_str(), stale[0]["name"].as_str()),
        (Some("host"), Some("lagging-1"))
    );
    let alerts = wait_events(&log, "deployment.stale", 2).await;
    assert_eq!(alerts[1]["data"]["place"], "lagging-1");

    // A failing reload command: reported with its output and alerted.
    let broken = agent_config(
        &s,
        "broken-1",
        "broken-1",
        &dir.join("broken"),
        &[
            "sh".into(),
            "-c".into(),
            "echo configuration test failed >&2; exit 1".into(),
        ],
    );
    std::fs::write(s.path("broken-1.token"), format!("{agent}\n")).unwrap();
    let (ok, err) = agent_once(&broken);
    assert!(!ok, "a failed reload fails the pass");
    assert!(err.contains("configuration test failed"), "{err}");
    let d = deployments(&s).await;
    let host = places(&d, "host", "broken-1");
    assert_eq!(host[0]["ok"], false, "{d}");
    assert!(
        host[0]["detail"]
            .as_str()
            .unwrap()
            .contains("configuration test failed")
    );
    let failed = wait_events(&log, "deployment.failed", 1).await;
    assert_eq!(failed[0]["data"]["host"], "broken-1");
    assert_eq!(failed[0]["data"]["version"], 2);
    assert!(
        failed[0]["data"]["output"]
            .as_str()
            .unwrap()
            .contains("configuration test failed")
    );
    // Still failing on the next pass: reported again, but alerted and audited once.
    let (st, got) = s
        .api_as(
            &agent,
            Method::GET,
            "/agent/certificates/web?host=broken-1",
            None,
        )
        .await;
    assert_eq!(st, 200, "{got}");
    assert_eq!(got["reported"]["reload_ok"], false, "{got}");
    let (ok, err) = agent_once(&broken);
    assert!(!ok, "{err}");
    let (st, outbox) = s.api(Method::GET, "/alerts/outbox?limit=100", None).await;
    assert_eq!(st, 200, "{outbox}");
    let failed_rows = outbox
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event_type"] == "io.certkeeper.deployment.failed")
        .count();
    assert_eq!(failed_rows, 1, "{outbox}");
    let (st, audit) = s
        .api(Method::GET, "/audit?action=managed.deploy&limit=100", None)
        .await;
    assert_eq!(st, 200, "{audit}");
    let hosts: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"]["host"].as_str())
        .collect();
    assert_eq!(
        hosts.iter().filter(|h| **h == "broken-1").count(),
        1,
        "{audit}"
    );
    // web-1: version 1, then version 2.
    assert_eq!(
        hosts.iter().filter(|h| **h == "web-1").count(),
        2,
        "{audit}"
    );
    drop(nginx);
}

#[tokio::test]
async fn agent_and_deployments_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test]
async fn agent_and_deployments_postgres() {
    scenario(Db::Postgres).await;
}
