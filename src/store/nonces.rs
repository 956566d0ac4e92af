//! ACME nonces: the deployment's nonce key and the record of used nonces.
//!
//! Nonces authenticate themselves ([`NonceKey`]), so handing one out touches no database.
//! Where uses are remembered depends on the engine:
//!
//! - **PostgreSQL (replicas):** using a nonce records it in the shared table, so each is
//!   accepted once across every replica. Every request uses one nonce, so every request
//!   writes: uses are recorded in batches (one statement for all requests that arrive while
//!   the previous batch commits) so that this write does not cap the request rate. The key
//!   is made once per deployment and kept sealed under the master key in `server_state`,
//!   where every replica finds the same one.
//! - **SQLite (one process):** uses are remembered in memory ([`UsedNonces`]) and the key
//!   is made at start and never stored. Nonces handed out before a restart (or by another
//!   process opening the same file) do not verify and are answered with `badNonce`, so the
//!   memory lost at a restart can never let a nonce through twice. This spares every ACME
//!   request a database write.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use certkeeper_acme::{NonceKey, UsedNonces};
use certkeeper_ca::MasterKey;
use sqlx::{AnyPool, Row};
use tokio::sync::OnceCell;

use super::batch::{BatchWrite, Batcher};
use super::writer::placeholders;
use super::{Engine, Store, StoreError};

/// How often (seconds) expired uses are purged.
const PURGE_EVERY: i64 = 60;

/// How many uses one SQLite process remembers: at 40 bytes of nonce each, some tens of MiB
/// at most. Far more than the nonces clients hold unused at any time.
const LOCAL_CAPACITY: usize = 500_000;

/// Where the sealed key is kept (PostgreSQL).
pub(crate) const STATE_KEY: &str = "acme.nonce_key";
/// Binds the sealed key to its purpose.
pub(crate) const SEAL_CONTEXT: &[u8] = b"acme-nonce-key";

/// The deployment's nonce key, loaded (or made) on first use, and on SQLite the uses
/// remembered in memory.
#[derive(Debug)]
pub(crate) struct NonceKeys {
    key: OnceCell<NonceKey>,
    /// `None`: uses are recorded in the shared table.
    local: Option<Mutex<UsedNonces>>,
}

impl NonceKeys {
    pub(crate) fn new(engine: Engine) -> NonceKeys {
        NonceKeys {
            key: OnceCell::new(),
            local: (engine == Engine::Sqlite).then(|| Mutex::new(UsedNonces::new(LOCAL_CAPACITY))),
        }
    }
}

fn random_secret() -> Result<[u8; 32], StoreError> {
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret)
        .map_err(|_| StoreError::Corrupt("no randomness for the nonce key".into()))?;
    Ok(secret)
}

/// One use of a nonce.
pub(crate) struct Use {
    nonce: String,
    expires_at: i64,
    now: i64,
}

/// Records nonce uses; answers for each whether it was the first.
pub(crate) struct NonceBatch {
    pool: AnyPool,
    engine: Engine,
    relaxed: Arc<AtomicBool>,
    last_purge: AtomicI64,
}

impl NonceBatch {
    pub(crate) fn start(
        pool: AnyPool,
        engine: Engine,
        relaxed: Arc<AtomicBool>,
    ) -> Batcher<NonceBatch> {
        Batcher::start(NonceBatch {
            pool,
            engine,
            relaxed,
            last_purge: AtomicI64::new(0),
        })
    }
}

impl BatchWrite for NonceBatch {
    type Job = Use;
    type Out = bool;
    const MAX_BATCH: usize = 512;

    async fn write(&self, uses: &[Use]) -> Result<Vec<bool>, StoreError> {
        // The same nonce twice in one batch: only the first use can be fresh.
        let mut distinct: Vec<&Use> = Vec::with_capacity(uses.len());
        for u in uses {
            if !distinct.iter().any(|d| d.nonce == u.nonce) {
                distinct.push(u);
            }
        }
        let sql = format!(
            "INSERT INTO acme_used_nonces (nonce, expires_at) VALUES {} ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
            placeholders(self.engine, distinct.len(), 2, None)
        );
        let mut q = sqlx::query(&sql);
        for u in &distinct {
            q = q.bind(&u.nonce).bind(u.expires_at);
        }
        // Relaxed commit: a power failure can lose the latest uses. The request a nonce
        // carried writes after its use is recorded, and SQLite's log is sequential: if that
        // write was durable, so is the use before it; if it was lost, replaying the request
        // does it once.
        let mut conn = super::relaxed(&self.pool, self.engine, &self.relaxed).await?;
        let rows = q.fetch_all(&mut *conn).await?;
        let mut fresh = std::collections::HashSet::with_capacity(rows.len());
        for r in &rows {
            fresh.insert(r.try_get::<String, _>("nonce")?);
        }
        let now = uses.iter().map(|u| u.now).max().unwrap_or(0);
        if now - self.last_purge.load(Ordering::Relaxed) >= PURGE_EVERY {
            self.last_purge.store(now, Ordering::Relaxed);
            sqlx::query("DELETE FROM acme_used_nonces WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        // `fresh.remove` answers true once per nonce: the first use in the batch.
        Ok(uses.iter().map(|u| fresh.remove(&u.nonce)).collect())
    }
}

impl Store {
    /// The deployment's nonce key: made at start on SQLite; on PostgreSQL the one sealed
    /// (under `master`) in the shared state, made by whichever replica needed it first.
    pub(crate) async fn acme_nonce_key(
        &self,
        master: &MasterKey,
        now: i64,
    ) -> Result<&NonceKey, StoreError> {
        self.nonce_keys
            .key
            .get_or_try_init(|| async {
                if self.nonce_keys.local.is_some() {
                    return Ok(NonceKey::new(&random_secret()?));
                }
                if self.get_state(STATE_KEY).await?.is_none() {
                    let sealed = master
                        .seal(&random_secret()?, SEAL_CONTEXT)
                        .map_err(|e| StoreError::Corrupt(format!("sealing the nonce key: {e}")))?;
                    // Another replica may get there first; then its key is the one.
                    self.put_state_if_absent(STATE_KEY, &sealed, now).await?;
                }
                let sealed = self
                    .get_state(STATE_KEY)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("the nonce key vanished".into()))?;
                let secret: [u8; 32] = master
                    .open(&sealed, SEAL_CONTEXT)
                    .map_err(|e| StoreError::Corrupt(format!("opening the nonce key: {e}")))?
                    .try_into()
                    .map_err(|_| {
                        StoreError::Corrupt("the stored nonce key has the wrong length".into())
                    })?;
                Ok(NonceKey::new(&secret))
            })
            .await
    }

    /// Record a use of a nonce that expires at `expires_at`: true if this is its first use.
    /// In memory on SQLite, in the shared table (in batches) on PostgreSQL.
    pub(crate) async fn acme_nonce_redeem(
        &self,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        match &self.nonce_keys.local {
            Some(used) => Ok(used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .use_once(nonce, expires_at, now)),
            None => self.acme_nonce_use(nonce, expires_at, now).await,
        }
    }

    /// Record a use of a nonce that expires at `expires_at`: true if this is its first use
    /// (on any replica), false if it was used before.
    pub async fn acme_nonce_use(
        &self,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.nonces
            .submit(Use {
                nonce: nonce.to_owned(),
                expires_at,
                now,
            })
            .await
    }
}
