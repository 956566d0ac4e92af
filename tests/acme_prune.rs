//! Pruning of expired ACME bookkeeping (the `acme-prune` job's service call), in process
//! with an injected clock, on SQLite and PostgreSQL: what is past `acme.retention` goes,
//! what is live or still needed stays.

mod common;

use std::sync::Arc;

use certkeeper::bootstrap::boot;
use certkeeper::config::Settings;
use certkeeper::server::AppState;
use certkeeper::store::AcmePruned;
use certkeeper_ca::{Clock, ManualClock};
use common::{Db, pg_admin_url};
use sqlx::{AnyPool, Row};
use time::OffsetDateTime;

const DAY: i64 = 86_400;
const RETENTION: i64 = 30 * DAY;

struct PgDb(Option<String>);

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Some(db) = &self.0 {
            common::drop_database(db);
        }
    }
}

async fn exec(pool: &AnyPool, sql: &str, binds: &[&dyn Bind]) {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = b.bind(q);
    }
    q.execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A value a test statement binds.
trait Bind: Sync {
    fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;
}

impl Bind for i64 {
    fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        q.bind(*self)
    }
}

impl Bind for &str {
    fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        q.bind(*self)
    }
}

async fn ids(pool: &AnyPool, table: &str) -> Vec<String> {
    let mut v: Vec<String> = sqlx::query(&format!("SELECT id FROM {table}"))
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("id"))
        .collect();
    v.sort();
    v
}

async fn count(pool: &AnyPool, sql: &str) -> i64 {
    sqlx::query(sql).fetch_one(pool).await.unwrap().get(0)
}

async fn scenario(db: Db) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let pg = PgDb(match db {
        Db::Sqlite => None,
        Db::Postgres => {
            let name = format!("ck_prune_{}", std::process::id());
            let out = std::process::Command::new("psql")
                .args([
                    &pg_admin_url(),
                    "-q",
                    "-c",
                    &format!("CREATE DATABASE {name}"),
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let base = pg_admin_url();
            let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
            std::fs::write(
                dir.path().join("certkeeper.toml"),
                format!("[database]\nurl = {url:?}\n"),
            )
            .unwrap();
            Some(name)
        }
    });
    let settings = Arc::new(Settings::load(dir.path(), None).unwrap());
    assert_eq!(settings.acme.retention.as_secs() as i64, RETENTION);
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let booted = boot(settings, clock.clone()).await.unwrap();
    let state = AppState::new(booted.pki.clone(), booted.metrics);
    let pool = booted.pki.store_for_tests().pool().clone();
    let now = clock.now().unix_timestamp();
    let gone = now - RETENTION - 10;

    exec(
        &pool,
        "INSERT INTO acme_accounts (id, profile, thumbprint, jwk, status, contact, created_at) VALUES ('acct', 'default', 'tp', '{}', 'valid', '[]', $1)",
        &[&gone],
    )
    .await;
    let ca: String = sqlx::query("SELECT id FROM cas LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    for (id, not_after) in [("cert-live", now + DAY), ("cert-expired", gone)] {
        sqlx::query(
            "INSERT INTO certificates (id, ca_id, serial, subject, sans, issuer, not_before, not_after, fingerprint, status, der, created_at, created_by)
             VALUES ($1, $2, $1, 'CN=x', '[]', 'CN=ca', $3, $4, $1, 'valid', $5, $3, 'test')",
        )
        .bind(id)
        .bind(&ca)
        .bind(gone - DAY)
        .bind(not_after)
        .bind(vec![0u8; 4])
        .execute(&pool)
        .await
        .unwrap();
    }
    // Orders: (id, status, expires_at, certificate).
    let orders: [(&str, &str, i64, Option<&str>); 5] = [
        ("o-old", "invalid", gone, None),
        ("o-old-cert-expired", "valid", gone, Some("cert-expired")),
        ("o-old-cert-live", "valid", gone, Some("cert-live")),
        ("o-recent", "invalid", now - 10, None),
        ("o-open", "pending", now + 3600, None),
    ];
    for (id, status, expires, cert) in orders {
        sqlx::query(
            "INSERT INTO acme_orders (id, account_id, status, identifiers, expires_at, certificate_id, created_at) VALUES ($1, 'acct', $2, '[]', $3, $4, $5)",
        )
        .bind(id)
        .bind(status)
        .bind(expires)
        .bind(cert)
        .bind(expires - DAY)
        .execute(&pool)
        .await
        .unwrap();
    }
    // Authorizations: (id, expires_at, the orders linking to it).
    let authzs: [(&str, i64, &[&str]); 6] = [
        ("a-old", gone, &["o-old"]),
        ("a-old-cert-expired", gone, &["o-old-cert-expired"]),
        ("a-old-cert-live", gone, &["o-old-cert-live"]),
        // Expired long ago, but also reused by an order that is kept.
        ("a-shared", gone, &["o-old", "o-recent"]),
        ("a-recent", now - 10, &["o-recent"]),
        ("a-open", now + DAY, &["o-open"]),
    ];
    for (id, expires, linked) in authzs {
        exec(
            &pool,
            "INSERT INTO acme_authorizations (id, account_id, id_type, id_value, status, expires_at, created_at) VALUES ($1, 'acct', 'dns', 'x.example.com', 'pending', $2, $3)",
            &[&id, &expires, &(expires - DAY)],
        )
        .await;
        let chall = format!("c-{id}");
        exec(
            &pool,
            "INSERT INTO acme_challenges (id, authz_id, type, token, status) VALUES ($1, $2, 'http-01', 't', 'pending')",
            &[&chall.as_str(), &id],
        )
        .await;
        for o in linked {
            exec(
                &pool,
                "INSERT INTO acme_order_authorizations (order_id, authz_id) VALUES ($1, $2)",
                &[o, &id],
            )
            .await;
        }
    }
    let window = now - now.rem_euclid(3600);
    for (bucket, start) in [("old", window - 7200), ("current", window)] {
        exec(
            &pool,
            "INSERT INTO acme_rate_limits (bucket, window_start, count) VALUES ($1, $2, 1)",
            &[&bucket, &start],
        )
        .await;
    }
    for (nonce, expires) in [("n-old", now - 10), ("n-live", now + 100)] {
        exec(
            &pool,
            "INSERT INTO acme_used_nonces (nonce, expires_at) VALUES ($1, $2)",
            &[&nonce, &expires],
        )
        .await;
    }

    let pruned = state.services.acme.prune_expired().await.unwrap();
    assert_eq!(
        pruned,
        AcmePruned {
            orders: 2,
            authorizations: 2,
            challenges: 2,
            rate_limits: 1,
            nonces: 1,
        }
    );
    assert_eq!(
        ids(&pool, "acme_orders").await,
        ["o-old-cert-live", "o-open", "o-recent"]
    );
    assert_eq!(
        ids(&pool, "acme_authorizations").await,
        ["a-old-cert-live", "a-open", "a-recent", "a-shared"]
    );
    assert_eq!(
        ids(&pool, "acme_challenges").await,
        ["c-a-old-cert-live", "c-a-open", "c-a-recent", "c-a-shared"]
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM acme_order_authorizations WHERE order_id IN ('o-old', 'o-old-cert-expired')"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM acme_rate_limits WHERE bucket = 'current'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM acme_used_nonces WHERE nonce = 'n-live'"
        )
        .await,
        1
    );
    // Nothing more to do until time passes. Two hours past the retention of now, the
    // recent and the open order have gone with the authorizations only they held; the
    // order of the certificate valid for a day more stays, as does an authorization that
    // expires later.
    assert!(
        state
            .services
            .acme
            .prune_expired()
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(time::Duration::seconds(RETENTION + 7200));
    let later = state.services.acme.prune_expired().await.unwrap();
    assert_eq!((later.orders, later.authorizations), (2, 2), "{later:?}");
    assert_eq!(ids(&pool, "acme_orders").await, ["o-old-cert-live"]);
    assert_eq!(
        ids(&pool, "acme_authorizations").await,
        ["a-old-cert-live", "a-open"]
    );
    booted.pki.close().await;
    drop(pg);
}

#[tokio::test]
async fn pruning_removes_old_rows_and_keeps_live_ones_sqlite() {
    scenario(Db::Sqlite).await;
}

#[tokio::test]
async fn pruning_removes_old_rows_and_keeps_live_ones_postgres() {
    scenario(Db::Postgres).await;
}
