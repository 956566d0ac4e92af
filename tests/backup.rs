//! Backup and restore. SQLite: `certkeeper backup` while certificates are being issued,
//! `certkeeper restore` into a new data directory, and a server on it that knows every
//! certificate issued before the backup began and answers OCSP for them. A wrong master key,
//! or a data directory that is not empty, is refused and leaves nothing behind.
//! PostgreSQL: the README's `pg_dump` / `pg_restore` recipe, then the same checks.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use reqwest::Method;
use serde_json::json;

/// A certificate as issued: id, certificate PEM, issuing chain PEM.
#[derive(Clone, Debug)]
struct Issued {
    id: String,
    certificate: String,
    chain: String,
    root: String,
}

/// A profile that may issue names under `backup.test`, on the default profile's CA.
async fn backup_profile(s: &TestServer) {
    let (status, default) = s.api(Method::GET, "/profiles/default", None).await;
    assert_eq!(status, 200, "{default}");
    let (status, body) = s
        .api(
            Method::POST,
            "/profiles",
            Some(json!({"name": "backup", "ca": default["ca"], "allowed_dns_names": [".backup.test"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn issue(s: &TestServer, n: usize) -> Issued {
    let (status, body) = s
        .api(
            Method::POST,
            "/certificates/generate",
            Some(json!({"profile": "backup", "dns_names": [format!("n{n}.backup.test")]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Issued {
        id: body["id"].as_str().unwrap().into(),
        certificate: body["certificate"].as_str().unwrap().into(),
        chain: body["chain"].as_str().unwrap().into(),
        root: body["root"].as_str().unwrap().into(),
    }
}

fn certkeeper(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("certkeeper runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The server knows `c` and its OCSP responder says it is good.
async fn known_and_good(s: &TestServer, c: &Issued) {
    let (status, body) = s
        .api(Method::GET, &format!("/certificates/{}", c.id), None)
        .await;
    assert_eq!(status, 200, "certificate {} after restore: {body}", c.id);
    let cert = s.write(&format!("{}.pem", c.id), &c.certificate);
    let chain = s.write(&format!("{}-chain.pem", c.id), &c.chain);
    let bundle = s.write(
        &format!("{}-bundle.pem", c.id),
        format!("{}{}", c.root, c.chain),
    );
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        p(&chain),
        "-cert",
        p(&cert),
        "-url",
        &s.http_url("/ocsp"),
        "-CAfile",
        p(&bundle),
    ]);
    assert!(
        ok && out.contains(": good") && out.contains("Response verify OK"),
        "OCSP for {}: {out}",
        c.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_under_load_restores_every_certificate() {
    let s = TestServer::start(Db::Sqlite).await;
    backup_profile(&s).await;
    let issued: Arc<Mutex<Vec<Issued>>> = Arc::new(Mutex::new(Vec::new()));
    for n in 0..5 {
        let c = issue(&s, n).await;
        issued.lock().unwrap().push(c);
    }

    // Keep issuing while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::new(tokio::sync::RwLock::new(s));
    let load = {
        let (s, issued, stop) = (s.clone(), issued.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 100;
            while !stop.load(Ordering::Relaxed) {
                let c = issue(&*s.read().await, n).await;
                issued.lock().unwrap().push(c);
                n += 1;
            }
        })
    };
    // Wait until the load is under way, then take the set known before the backup began.
    while issued.lock().unwrap().len() < 8 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: Vec<Issued> = issued.lock().unwrap().clone();
    let (data_dir, archive) = {
        let g = s.read().await;
        (g.data_dir.clone(), g.path("backup.tar"))
    };
    let (ok, out) = tokio::task::spawn_blocking({
        let (data_dir, archive) = (data_dir.clone(), archive.clone());
        move || certkeeper(&["--data-dir", p(&data_dir), "backup", "--out", p(&archive)])
    })
    .await
    .unwrap();
    assert!(ok, "backup: {out}");
    assert!(out.contains("master key not included"), "{out}");
    // Let a few more issuances land after the backup, then stop the load.
    let after_backup = issued.lock().unwrap().len();
    while issued.lock().unwrap().len() < after_backup + 3 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let mut s = Arc::try_unwrap(s).ok().expect("one owner").into_inner();
    s.stop();

    // The archive: a manifest, the database, the root certificate; no secrets.
    let listing = Command::new("tar")
        .arg("tf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for name in ["manifest.json", "certkeeper.db", "root.pem"] {
        assert!(listing.lines().any(|l| l == name), "{name} in {listing}");
    }
    for secret in ["master.key", "admin.token"] {
        assert!(!listing.contains(secret), "{secret} left out: {listing}");
    }

    // Refusals leave nothing behind: a wrong master key, no master key, a used directory.
    let elsewhere = s.path("elsewhere");
    let wrong_key = s.write(
        "wrong.key",
        "q7YQ8m3cC4LJ0K5xZ2Vb1nR9tW6sE8uA3dF5gH7jK0M=\n",
    );
    let (ok, out) = certkeeper(&[
        "--data-dir",
        p(&elsewhere),
        "restore",
        p(&archive),
        "--master-key",
        p(&wrong_key),
    ]);
    assert!(!ok && out.contains("does not open"), "{out}");
    assert!(!elsewhere.exists(), "a refused restore leaves no directory");
    let (ok, out) = certkeeper(&["--data-dir", p(&elsewhere), "restore", p(&archive)]);
    assert!(!ok && out.contains("no master key"), "{out}");
    assert!(!elsewhere.exists());
    let (ok, out) = certkeeper(&[
        "--data-dir",
        p(&data_dir),
        "restore",
        p(&archive),
        "--master-key",
        p(&data_dir.join("master.key")),
    ]);
    assert!(!ok && out.contains("not empty"), "{out}");

    // Restore into a new data directory and serve from it on the same ports.
    let original = s.path("original-data");
    std::fs::rename(&data_dir, &original).unwrap();
    let (ok, out) = certkeeper(&[
        "--data-dir",
        p(&data_dir),
        "restore",
        p(&archive),
        "--master-key",
        p(&original.join("master.key")),
    ]);
    assert!(ok, "restore: {out}");
    // The admin token is not in a backup (only its hash is, in the database).
    std::fs::copy(original.join("admin.token"), data_dir.join("admin.token")).unwrap();
    s.spawn(&[]).await;
    for c in &before {
        known_and_good(&s, c).await;
    }
    let (status, page) = s
        .api(Method::GET, "/certificates?profile=backup&limit=1000", None)
        .await;
    assert_eq!(status, 200, "{page}");
    let total = issued.lock().unwrap().len();
    let restored = page["items"].as_array().unwrap().len();
    assert!(
        restored >= before.len() && restored < total,
        "the snapshot holds what was issued before it and not what came after: \
         {restored} restored, {} before, {total} in all",
        before.len()
    );
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dump_and_restore_recipe_serves() {
    let mut s = TestServer::start(Db::Postgres).await;
    backup_profile(&s).await;
    let mut issued = Vec::new();
    for n in 0..3 {
        issued.push(issue(&s, n).await);
    }
    let source = s.database_url.clone().expect("a PostgreSQL URL");
    let dump = s.path("certkeeper.dump");
    // README: pg_dump --format=custom, then pg_restore --no-owner into a new database.
    run("pg_dump", &["--format=custom", "--file", p(&dump), &source]);
    s.stop();
    let name = format!("ck_restored_{}", std::process::id());
    let admin = pg_admin_url();
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let target = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    run(
        "pg_restore",
        &[
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            &target,
            p(&dump),
        ],
    );
    s.database_url = Some(target);
    s.spawn(&[]).await;
    for c in &issued {
        known_and_good(&s, c).await;
    }
    s.stop();
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

#[test]
fn backup_of_a_postgres_setting_points_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["--data-dir", p(dir.path()), "backup", "--out"])
        .arg(dir.path().join("b.tar"))
        .env(
            "CERTKEEPER_DATABASE__URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("pg_dump"), "{said}");
    assert!(!Path::new(&dir.path().join("b.tar")).exists());
}
