//! Persistence for SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! Queries are written once, with `$n` placeholders (both engines accept them); the schema
//! lives in `migrations/sqlite` and `migrations/postgres`. Constraint violations become
//! [`StoreError::Conflict`], never a 500.

mod acme;
mod acme_prune;
mod alerts;
mod audit;
mod batch;
mod cas;
mod certs;
mod deployments;
mod discovery;
mod est;
pub mod gauges;
mod issuers;
mod jobs;
mod managed;
pub(crate) mod nonces;
mod profiles;
pub mod reseal;
mod script;
pub mod snapshot;
mod sqlite_writer;
mod state;
mod tokens;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use time::OffsetDateTime;

pub use acme::{
    AcmeAccount, AcmeAccountSummary, AcmeAuthz, AcmeChallenge, AcmeDb, AcmeEabKey, AcmeOrder,
    NewAcmeAuthz, eab_seal_context,
};
pub use acme_prune::AcmePruned;
pub use alerts::{
    ChannelRecord, Claimed, FiredRow, NewEvent, OutboxRecord, RuleRecord, Selector, SweepFrom,
    Window, WindowSource,
};
pub use audit::{AuditEvent, AuditFilter, AuditRecord};
pub use cas::{CaRecord, CrossCertRecord, NewCaRecord, Successor};
pub use certs::{
    CertCounts, CertFilter, CertRecord, CertStatusFilter, NewCertificate, RevocationRecord,
};
pub use deployments::{AgentReport, ServedVersion, StaleRecord};
pub use discovery::{
    EndpointFilter, InventoryCertificate, InventoryEndpoint, ScanChanges, ScanRecord,
    ScheduleRecord,
};
pub use est::{EstCredential, EstLabel};
pub use issuers::IssuerRecord;
pub use managed::{
    BindingRecord, DestinationRecord, FailedPush, ManagedEvent, ManagedRecord, ManagedRequest,
    RenewalInfoDue, UpstreamWindow, VersionRecord,
};
pub use profiles::ProfileRecord;
pub use tokens::{Role, TokenRecord};
pub use writer::WriterCounts;

use crate::config::{Settings, redact_url};

/// The migrations of `engine`. Migrations are additive (new tables, new columns with
/// defaults, new indexes), so a database a newer release has migrated still serves this
/// one: migrations applied there that this binary does not know are ignored, and a
/// replica of the previous release keeps (re)starting while a newer one rolls out. A
/// migration this binary knows with a different checksum still stops it.
fn migrator(engine: Engine) -> sqlx::migrate::Migrator {
    let mut m = match engine {
        Engine::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Engine::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    m.set_ignore_missing(true);
    m
}

/// Storage failures, already sorted into what callers must tell apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness or integrity rule was broken; the text says which.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                let what = db
                    .constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| db.message().to_string());
                return StoreError::Conflict(describe_constraint(&what));
            }
            if db.is_foreign_key_violation() {
                return StoreError::Conflict(
                    "a referenced object does not exist or is still in use".into(),
                );
            }
        }
        if let sqlx::Error::RowNotFound = e {
            return StoreError::NotFound("row".into());
        }
        StoreError::Db(e)
    }
}

fn describe_constraint(raw: &str) -> String {
    let table_col = raw.trim_start_matches("UNIQUE constraint failed: ");
    match table_col {
        s if s.contains("cas.name") || s.contains("cas_name_key") => {
            "a CA with this name already exists".into()
        }
        s if s.contains("profiles.name") || s.contains("profiles_name_key") => {
            "a profile with this name already exists".into()
        }
        s if s.contains("serial") => "serial number already used by this issuer".into(),
        s if s.contains("fingerprint") => "this certificate is already recorded".into(),
        s if s.contains("token_hash") => "token collision".into(),
        s if s.contains("managed_certificates.name")
            || s.contains("managed_certificates_name_key") =>
        {
            "a managed certificate with this name already exists".into()
        }
        s if s.contains("sync_destinations.name") || s.contains("sync_destinations_name_key") => {
            "a destination with this name already exists".into()
        }
        s if s.contains("sync_bindings") => {
            "the certificate is already bound to this destination".into()
        }
        other => format!("unique constraint {other}"),
    }
}

/// Which engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite (WAL), the embedded default.
    Sqlite,
    /// PostgreSQL, for several replicas.
    Postgres,
}

/// The database handle shared by every part of the server.
#[derive(Clone, Debug)]
pub struct Store {
    /// Reads (and, on PostgreSQL, everything).
    pool: AnyPool,
    /// Writes. On SQLite one connection: writers queue here, in order and without polling,
    /// instead of contending for SQLite's lock, whose busy handler sleeps in steps of up
    /// to 100 ms. On PostgreSQL the same pool as `pool`.
    writes: AnyPool,
    /// Set while the SQLite writer connection may have `synchronous = NORMAL`; its release
    /// hook then sets `FULL` again (and only then, saving a round trip per durable write).
    relaxed: Arc<AtomicBool>,
    engine: Engine,
    writer: writer::CertWriter,
    nonces: batch::Batcher<nonces::NonceBatch>,
    /// ACME accounts by id, on SQLite only (see [`acme::AccountCache`]).
    accounts: Option<Arc<acme::AccountCache>>,
    /// The ACME nonce key and, on SQLite, the used nonces (see [`nonces`]).
    nonce_keys: Arc<nonces::NonceKeys>,
}

/// Unix seconds of a time.
pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// A time from Unix seconds.
pub(crate) fn from_ts(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Store {
    /// Connect, configure and migrate.
    pub async fn connect(settings: &Settings) -> Result<Store, StoreError> {
        install_default_drivers();
        let engine = if settings.is_postgres() {
            Engine::Postgres
        } else {
            Engine::Sqlite
        };
        let pool = pool_options(engine, settings.database.max_connections)
            .connect(&settings.database.url)
            .await
            .map_err(|e| {
                tracing::error!(url = %redact_url(&settings.database.url), error = %e, "database connection failed");
                StoreError::Db(e)
            })?;
        let relaxed_flag = Arc::new(AtomicBool::new(false));
        let writes = match engine {
            Engine::Sqlite => {
                pool.execute("PRAGMA journal_mode = WAL").await?;
                migrator(engine)
                    .run(&pool)
                    .await
                    .map_err(|e| StoreError::Db(e.into()))?;
                let relaxed = relaxed_flag.clone();
                pool_options(engine, 1)
                    .after_release(move |conn, _| {
                        let relaxed = relaxed.clone();
                        Box::pin(async move {
                            // Only a connection that was relaxed needs the round trip.
                            if relaxed.load(Ordering::Acquire) {
                                conn.execute("PRAGMA synchronous = FULL").await?;
                                relaxed.store(false, Ordering::Release);
                            }
                            Ok(true)
                        })
                    })
                    .connect(&settings.database.url)
                    .await?
            }
            Engine::Postgres => {
                migrator(engine)
                    .run(&pool)
                    .await
                    .map_err(|e| StoreError::Db(e.into()))?;
                pool.clone()
            }
        };
        let writer = writer::CertWriter::start(
            writes.clone(),
            engine,
            sqlite_file(&settings.database.url),
            settings.server.batch_scheduling,
        )?;
        let nonces = nonces::NonceBatch::start(writes.clone(), engine, relaxed_flag.clone());
        Ok(Store {
            pool,
            writes,
            relaxed: relaxed_flag,
            engine,
            writer,
            nonces,
            accounts: (engine == Engine::Sqlite).then(|| Arc::new(acme::AccountCache::default())),
            nonce_keys: Arc::new(nonces::NonceKeys::new(engine)),
        })
    }

    /// The engine in use.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The pool (for health checks and tests).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write, committed durably. On SQLite it takes the write lock
    /// at `BEGIN` (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
    /// cannot wait for a concurrent writer (the busy timeout does not apply to upgrading a
    /// read snapshot) and fails at once with `database is locked`.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        begin_write(&self.writes, self.engine).await
    }

    /// A write transaction for protocol bookkeeping that a client simply repeats if a power
    /// failure loses it (ACME orders, challenge states). On SQLite its commit is not flushed
    /// to disk on its own (`synchronous = NORMAL` in WAL mode: still atomic and consistent);
    /// the next durable commit flushes it with everything before it. On PostgreSQL it is an
    /// ordinary transaction.
    pub(crate) async fn begin_write_relaxed(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.engine {
            Engine::Postgres => self.writes.begin().await,
            Engine::Sqlite => {
                let conn = self.writes.acquire().await?;
                // Marked before the pragma runs, so a caller cancelled halfway still leaves
                // the connection to be reset on release.
                self.relaxed.store(true, Ordering::Release);
                // One round trip for both statements.
                sqlx::Transaction::begin(
                    conn,
                    Some("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE".into()),
                )
                .await
            }
        }
    }

    /// The writer connection for one relaxed statement outside a transaction (see
    /// [`Store::begin_write_relaxed`]); on SQLite its release sets `synchronous = FULL`
    /// again.
    pub(crate) async fn relaxed_writer(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        relaxed(&self.writes, self.engine, &self.relaxed).await
    }

    /// Run a short write (see [`script`]): on an SQLite file in the writer thread's next
    /// transaction; elsewhere as a transaction of its own on the writer pool.
    pub(crate) async fn run_script(
        &self,
        script: script::Script,
    ) -> Result<script::Outcome, StoreError> {
        if let writer::CertWriter::Sqlite(w) = &self.writer {
            return w.run_script(script).await;
        }
        let mut tx = if script.relaxed {
            self.begin_write_relaxed().await?
        } else {
            self.begin_write().await?
        };
        let outcome = script.run_sqlx(&mut tx).await?;
        if outcome.done() {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// Close every connection (at shutdown).
    pub async fn close(&self) {
        self.writer.close().await;
        self.writes.close().await;
        self.pool.close().await;
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// A parser of one of the store's record types.
type Parse<T> = fn(&sqlx::any::AnyRow) -> Result<T, StoreError>;

impl Store {
    /// The row `sql` finds with `key` bound (to `$1`, wherever it stands), parsed;
    /// `NotFound` naming `what` and the key when there is none.
    async fn one_by_key<T>(
        &self,
        sql: &str,
        key: &str,
        parse: Parse<T>,
        what: &str,
    ) -> Result<T, StoreError> {
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{what} {key:?}")))?;
        parse(&row)
    }

    /// Every row `sql` (without parameters) finds, parsed.
    async fn all_rows<T>(&self, sql: &str, parse: Parse<T>) -> Result<Vec<T>, StoreError> {
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(parse).collect()
    }
}

/// The database file of an SQLite URL; `None` for PostgreSQL and for a database in
/// memory (which another connection could not open).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(opts.get_filename().to_path_buf())
}

/// Pool settings; on SQLite every connection gets the same pragmas.
fn pool_options(engine: Engine, max_connections: u32) -> AnyPoolOptions {
    let opts = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30));
    if engine == Engine::Postgres {
        return opts;
    }
    // A connection to a local file cannot go stale: no ping before each use.
    opts.test_before_acquire(false)
        .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)))
}

/// What every SQLite connection is set up with.
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    // WAL with FULL sync: a commit is on disk before the call returns.
    conn.execute("PRAGMA synchronous = FULL").await?;
    // Keep hot index pages in memory (32 MiB per connection).
    conn.execute("PRAGMA cache_size = -32768").await?;
    Ok(())
}

/// The SQLite writer connection with `synchronous = NORMAL` for its next commits; `flag`
/// is the store's relaxed mark, which makes the release hook set `FULL` again, so a
/// cancelled caller cannot leave it relaxed for the durable writes that follow.
pub(crate) async fn relaxed(
    pool: &AnyPool,
    engine: Engine,
    flag: &AtomicBool,
) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    if engine == Engine::Sqlite {
        flag.store(true, Ordering::Release);
        conn.execute("PRAGMA synchronous = NORMAL").await?;
    }
    Ok(conn)
}

/// [`Store::begin_write`] on a bare pool.
pub(crate) async fn begin_write(
    pool: &AnyPool,
    engine: Engine,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    match engine {
        Engine::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Engine::Postgres => pool.begin().await,
    }
}

/// A LIKE pattern (escape character `\`) matching text that contains `s` literally.
pub(crate) fn contains_pattern(s: &str) -> String {
    format!(
        "%{}%",
        s.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// A new identifier: a UUID v7 (time-ordered, 74 random bits), so that inserts land at the
/// end of the primary-key index instead of on a random page.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod durability_tests {
    use super::*;
    use sqlx::Row;

    async fn synchronous(store: &Store) -> i64 {
        let mut conn = store.writes.acquire().await.unwrap();
        sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get::<i64, _>(0)
    }

    /// A relaxed writer goes back to the pool flushing commits again (FULL = 2), also when
    /// its user is cancelled halfway; the durable path commits with FULL.
    #[tokio::test]
    async fn relaxed_writes_never_leak_into_durable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(dir.path(), None).unwrap();
        let store = Store::connect(&settings).await.unwrap();
        assert_eq!(synchronous(&store).await, 2);

        let mut tx = store.begin_write_relaxed().await.unwrap();
        let level: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get(0);
        assert_eq!(level, 1, "NORMAL inside a relaxed transaction");
        tx.commit().await.unwrap();
        assert_eq!(synchronous(&store).await, 2);

        // Cancelled between the pragma and the commit: dropped, not committed.
        let tx = store.begin_write_relaxed().await.unwrap();
        drop(tx);
        assert_eq!(synchronous(&store).await, 2);

        let mut tx = store.begin_write().await.unwrap();
        let level: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get(0);
        assert_eq!(level, 2);
        tx.rollback().await.unwrap();
        store.close().await;
    }
}
