//! Handing out and using ACME nonces.
//!
//! Nonces authenticate themselves ([`NonceKey`]), so handing one out touches no database.
//! Where they are checked depends on the deployment:
//!
//! - **PostgreSQL (replicas):** using a nonce records it in the shared table, so each is
//!   accepted once across every replica. The key is made once per deployment and kept
//!   sealed under the master key in `server_state`, where every replica finds the same one.
//! - **SQLite (one process):** uses are remembered in memory ([`UsedNonces`]) and the key
//!   is made at start and never stored. Nonces handed out before a restart (or by another
//!   process opening the same file) do not verify and are answered with `badNonce`, so the
//!   memory lost at a restart can never let a nonce through twice. This spares every ACME
//!   request a database write.

use std::sync::Mutex;

use certkeeper_acme::{NonceKey, NonceRejection, Problem, ProblemType, UsedNonces};
use tokio::sync::OnceCell;

use super::internal;
use crate::services::pki::Pki;
use crate::store::Engine;

/// How many uses one process remembers: at 40 bytes of nonce each, some tens of MiB at
/// most. Far more than the nonces clients hold unused at any time.
const LOCAL_CAPACITY: usize = 500_000;

/// Where the sealed key is kept.
const STATE_KEY: &str = "acme.nonce_key";
/// Binds the sealed key to its purpose.
const SEAL_CONTEXT: &[u8] = b"acme-nonce-key";

/// The deployment's nonce key, loaded (or made) on first use.
#[derive(Debug, Default)]
pub struct Nonces {
    key: OnceCell<Keyed>,
}

/// The key, and where uses are remembered.
#[derive(Debug)]
struct Keyed {
    key: NonceKey,
    /// `None`: in the shared table.
    local: Option<Mutex<UsedNonces>>,
}

impl Nonces {
    /// Nothing loaded yet.
    pub fn new() -> Nonces {
        Nonces::default()
    }

    async fn keyed(&self, pki: &Pki) -> Result<&Keyed, Problem> {
        self.key
            .get_or_try_init(|| async {
                Ok(match pki.store().engine() {
                    Engine::Sqlite => Keyed {
                        key: NonceKey::new(&random_secret()?),
                        local: Some(Mutex::new(UsedNonces::new(LOCAL_CAPACITY))),
                    },
                    Engine::Postgres => Keyed {
                        key: load_or_make(pki).await?,
                        local: None,
                    },
                })
            })
            .await
    }

    /// A fresh nonce.
    pub(crate) async fn issue(&self, pki: &Pki) -> Result<String, Problem> {
        self.keyed(pki).await?.key.issue(pki.now().unix_timestamp())
    }

    /// Accept `nonce` once: it must be ours, unexpired and unused.
    pub(crate) async fn redeem(&self, pki: &Pki, nonce: &str) -> Result<(), Problem> {
        let now = pki.now().unix_timestamp();
        let lifetime = pki.settings().acme.nonce_lifetime.as_secs() as i64;
        let keyed = self.keyed(pki).await?;
        let expires_at = match keyed.key.check(nonce, now, lifetime) {
            Ok(at) => at,
            Err(NonceRejection::Unknown) => {
                return Err(Problem::new(
                    ProblemType::BadNonce,
                    "the nonce was not issued by this server",
                ));
            }
            Err(NonceRejection::Expired) => {
                return Err(Problem::new(ProblemType::BadNonce, "the nonce has expired"));
            }
        };
        let first = match &keyed.local {
            Some(used) => used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .use_once(nonce, expires_at, now),
            None => pki
                .store()
                .acme_nonce_use(nonce, expires_at, now)
                .await
                .map_err(internal)?,
        };
        if !first {
            return Err(Problem::new(
                ProblemType::BadNonce,
                "the nonce was used already",
            ));
        }
        Ok(())
    }
}

async fn load_or_make(pki: &Pki) -> Result<NonceKey, Problem> {
    let store = pki.store();
    if store
        .get_state(STATE_KEY)
        .await
        .map_err(internal)?
        .is_none()
    {
        let secret = random_secret()?;
        let sealed = pki.master().seal(&secret, SEAL_CONTEXT).map_err(internal)?;
        // Another replica may get there first; then its key is the one.
        store
            .put_state_if_absent(STATE_KEY, &sealed, pki.now().unix_timestamp())
            .await
            .map_err(internal)?;
    }
    let sealed = store
        .get_state(STATE_KEY)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal("the nonce key vanished"))?;
    let secret: [u8; 32] = pki
        .master()
        .open(&sealed, SEAL_CONTEXT)
        .map_err(internal)?
        .try_into()
        .map_err(|_| internal("the stored nonce key has the wrong length"))?;
    Ok(NonceKey::new(&secret))
}

fn random_secret() -> Result<[u8; 32], Problem> {
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret).map_err(|_| internal("no randomness"))?;
    Ok(secret)
}
