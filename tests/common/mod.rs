//! Test harness: start the real `certkeeper` binary on free ports against a fresh SQLite
//! data directory or a fresh PostgreSQL database, and talk to it like a client would.

#![allow(dead_code, unreachable_pub)]

pub mod plain;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What a webhook receiver was sent: each request's headers and body.
pub type WebhookLog = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

async fn record_webhook(
    axum::extract::State(log): axum::extract::State<WebhookLog>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    log.lock().unwrap().push((headers, body.to_vec()));
    axum::http::StatusCode::OK
}

/// A webhook receiver on a free loopback port that accepts and keeps every request; returns
/// its log and the URL to send to (`http://127.0.0.1:<port>/hook`).
pub async fn webhook_receiver() -> (WebhookLog, String) {
    let log: WebhookLog = Default::default();
    let app = axum::Router::new()
        .fallback(record_webhook)
        .with_state(log.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (log, url)
}

/// Wait until the alert outbox has `n` rows in `status` (hang guard: 60 s); returns them.
pub async fn outbox_until(s: &TestServer, status: &str, n: usize) -> Value {
    for _ in 0..600 {
        let (st, rows) = s
            .api(
                reqwest::Method::GET,
                &format!("/alerts/outbox?status={status}"),
                None,
            )
            .await;
        assert_eq!(st, 200, "{rows}");
        if rows.as_array().unwrap().len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox never had {n} {status} rows");
}

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// PostgreSQL admin URL (the machine's local server, trust auth).
pub fn pg_admin_url() -> String {
    std::env::var("CERTKEEPER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        Instant::now().elapsed().as_nanos() % 1000
    )
}

/// A new, empty PostgreSQL database: its URL and name (for [`drop_database`]).
pub fn new_pg_database() -> (String, String) {
    let name = unique("ck_test");
    psql(&format!("CREATE DATABASE {name}"));
    let base = pg_admin_url();
    (format!("{}/{name}", base.rsplit_once('/').unwrap().0), name)
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([&pg_admin_url(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drop a test database, whoever is still connected (best effort: used from `Drop`).
pub fn drop_database(name: &str) {
    let _ = Command::new("psql")
        .args([
            &pg_admin_url(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .output();
}

/// A running server.
pub struct TestServer {
    pub db: Db,
    pub dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub https_port: u16,
    pub http_port: u16,
    /// The EST listener that asks for TLS client certificates (`est.mtls_listen`).
    pub est_port: u16,
    pub database_url: Option<String>,
    pg_db: Option<String>,
    pub token: String,
    pub root_pem: String,
    /// The server CA (`server-ca.pem`): the only certificate the client trusts for HTTPS.
    pub server_ca_pem: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    pub first_stdout: String,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_certkeeper")
}

impl TestServer {
    pub async fn start(db: Db) -> TestServer {
        Self::start_with(db, &[]).await
    }

    pub async fn start_with(db: Db, env: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let (database_url, pg_db) = match db {
            Db::Sqlite => (None, None),
            Db::Postgres => {
                let (url, name) = new_pg_database();
                (Some(url), Some(name))
            }
        };
        let mut s = TestServer {
            db,
            dir,
            data_dir,
            https_port: free_port(),
            http_port: free_port(),
            est_port: free_port(),
            database_url,
            pg_db,
            token: String::new(),
            root_pem: String::new(),
            server_ca_pem: String::new(),
            client: reqwest::Client::new(),
            child: None,
            first_stdout: String::new(),
        };
        // A port picked by `free_port` can be taken by another test before the server
        // binds it; on a first start, pick new ones and try again.
        // What an attempt printed (a first start prints the admin token once) is kept.
        let mut printed = String::new();
        for attempt in 1.. {
            match s.try_spawn(env).await {
                Ok(()) => break,
                Err(e) if attempt < 4 && e.contains("in use") => {
                    printed.push_str(
                        &std::fs::read_to_string(s.dir.path().join("stdout.txt"))
                            .unwrap_or_default(),
                    );
                    s.https_port = free_port();
                    s.http_port = free_port();
                    s.est_port = free_port();
                }
                Err(e) => panic!("{e}"),
            }
        }
        s.first_stdout.insert_str(0, &printed);
        s
    }

    /// Start (or restart) the process and wait until it is ready.
    pub async fn spawn(&mut self, env: &[(&str, &str)]) {
        if let Err(e) = self.try_spawn(env).await {
            panic!("{e}");
        }
    }

    /// [`TestServer::spawn`], telling why the process exited before it was ready.
    async fn try_spawn(&mut self, env: &[(&str, &str)]) -> Result<(), String> {
        let log = std::fs::File::create(
            self.dir
                .path()
                .join(format!("server-{}.log", unique("run"))),
        )
        .unwrap();
        let stdout_path = self.dir.path().join("stdout.txt");
        let stdout = std::fs::File::create(&stdout_path).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env(
                "CERTKEEPER_SERVER__HTTPS_LISTEN",
                format!("127.0.0.1:{}", self.https_port),
            )
            .env(
                "CERTKEEPER_SERVER__HTTP_LISTEN",
                format!("127.0.0.1:{}", self.http_port),
            )
            .env(
                "CERTKEEPER_EST__MTLS_LISTEN",
                format!("127.0.0.1:{}", self.est_port),
            )
            .env(
                "CERTKEEPER_SERVER__LOG_LEVEL",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(log));
        if let Some(url) = &self.database_url {
            cmd.env("CERTKEEPER_DATABASE__URL", url);
        }
        // The generated `default` profile allows no names unless first start names some;
        // the suites issue for any name under it (the server's own names stay refused).
        cmd.env(
            "CERTKEEPER_CA__DEFAULT_PROFILE_NAMES",
            r#"["*", "0.0.0.0/0", "::/0"]"#,
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("server starts"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!(
                    "server exited early with {status}: {}",
                    self.logs()
                ));
            }
            if self.data_dir.join("root.pem").exists()
                && self.data_dir.join("server-ca.pem").exists()
                && self.data_dir.join("admin.token").exists()
            {
                let root = std::fs::read_to_string(self.data_dir.join("root.pem")).unwrap();
                let server_ca =
                    std::fs::read_to_string(self.data_dir.join("server-ca.pem")).unwrap();
                if let Ok(cert) = reqwest::Certificate::from_pem(server_ca.as_bytes()) {
                    // Idle connections are dropped before the server's own idle close
                    // (`server.header_read_timeout`, 10 s), so a request after a pause
                    // never goes out on a connection the server is closing.
                    let client = reqwest::Client::builder()
                        .tls_certs_only([cert])
                        .pool_idle_timeout(Duration::from_secs(5))
                        .build()
                        .unwrap();
                    if let Ok(r) = client.get(self.url("/readyz")).send().await
                        && r.status().is_success()
                    {
                        self.client = client;
                        self.root_pem = root;
                        self.server_ca_pem = server_ca;
                        self.token = std::fs::read_to_string(self.data_dir.join("admin.token"))
                            .unwrap()
                            .trim()
                            .to_string();
                        break;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "server did not become ready: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.first_stdout = std::fs::read_to_string(stdout_path).unwrap_or_default();
        Ok(())
    }

    /// Stop the process with SIGTERM and wait for it (killed if it is still running after
    /// the longest graceful exit: the default 20 s grace, the jobs' 3 s to hand back
    /// their leases and 5 s to close the database, with room to spare).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The server process's resident set size in KiB (`VmRSS` in `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid().expect("the server runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("server-") {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    /// A URL on the EST listener that asks for client certificates.
    pub fn est_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.est_port)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// An API call with the admin token; returns (status, JSON body or Null).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api_as(&self.token.clone(), method, path, body).await
    }

    pub async fn api_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(&format!("/api/v1{path}")))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap();
        if status >= 400 {
            assert_eq!(
                ct, "application/problem+json",
                "error bodies are problem documents: {status} {text}"
            );
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Write a file in the test's temp dir.
    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(db) = &self.pg_db {
            drop_database(db);
        }
    }
}

/// Run openssl; returns (success, stdout+stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// openssl `-newkey` arguments for a P-256 key.
pub const EC_P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
/// openssl `-newkey` arguments for an RSA-2048 key.
pub const RSA_2048: &[&str] = &["-newkey", "rsa:2048"];

/// Make a key and CSR with openssl in `dir`; returns (key path, csr PEM). `sans` is an
/// openssl subjectAltName value such as `DNS:a.example.com,IP:10.0.0.1` (or empty).
pub fn openssl_csr(
    dir: &Path,
    name: &str,
    subj: &str,
    sans: &str,
    key: &[&str],
) -> (PathBuf, String) {
    let key_path = dir.join(format!("{name}.key"));
    let csr_path = dir.join(format!("{name}.csr"));
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend_from_slice(key);
    args.extend(["-subj", subj, "-keyout", p(&key_path), "-out", p(&csr_path)]);
    let ext = format!("subjectAltName={sans}");
    if !sans.is_empty() {
        args.extend(["-addext", &ext]);
    }
    let (ok, out) = openssl(&args);
    assert!(ok, "{out}");
    (key_path, std::fs::read_to_string(csr_path).unwrap())
}

/// Let the `default` profile that first start makes allow any name (the server's own names
/// stay refused), as the harness does for spawned servers: the suites issue under it.
pub fn any_name_under_default(settings: &mut certkeeper::config::Settings) {
    settings.ca.default_profile_dns = vec![certkeeper_ca::DnsRule::Any];
    settings.ca.default_profile_ips = vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
}

/// Run the client as a user would against `s` (its admin token and server CA from the data
/// directory, no settings from this process's environment).
pub fn cli(s: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(&s.data_dir)
        .arg("--server")
        .arg(format!("https://localhost:{}", s.https_port))
        .args(args)
        .env_remove("CERTKEEPER_SERVER")
        .env_remove("CERTKEEPER_TOKEN")
        .env_remove("CERTKEEPER_CA_FILE")
        .env_remove("CERTKEEPER_DATA_DIR")
        .env_remove("CERTKEEPER_CONFIG")
        .output()
        .expect("the client runs")
}

/// Run the client with `args` (which include `--json`), expect success, and answer what
/// it printed as JSON; on failure, shows its stderr and the server's log.
pub fn cli_json(s: &TestServer, args: &[&str]) -> serde_json::Value {
    let out = cli(s, args);
    assert!(
        out.status.success(),
        "certkeeper {args:?}: {} {}",
        String::from_utf8_lossy(&out.stderr),
        s.logs()
    );
    serde_json::from_slice(&out.stdout).expect("the client prints JSON")
}

/// Run `certkeeper serve` on `data_dir` (free ports, plus `env`) expecting it to refuse to
/// start; returns what it printed. Fails if it is still running after a minute.
pub fn refused_start(data_dir: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .env(
            "CERTKEEPER_SERVER__HTTPS_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env(
            "CERTKEEPER_SERVER__HTTP_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the server runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started, but it should have refused to");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the server exited with success");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
