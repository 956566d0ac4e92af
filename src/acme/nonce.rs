//! Handing out and using ACME nonces.
//!
//! Nonces authenticate themselves ([`NonceKey`]), so handing one out touches no database;
//! using one records it, so that each is accepted once across every replica. The key is
//! made once per deployment and kept sealed under the master key in `server_state`, where
//! every replica finds the same one.

use certkeeper_acme::{NonceKey, NonceRejection, Problem, ProblemType};
use tokio::sync::OnceCell;

use super::internal;
use crate::pki::Pki;

/// Where the sealed key is kept.
const STATE_KEY: &str = "acme.nonce_key";
/// Binds the sealed key to its purpose.
const SEAL_CONTEXT: &[u8] = b"acme-nonce-key";

/// The deployment's nonce key, loaded (or made) on first use.
#[derive(Debug, Default)]
pub struct Nonces {
    key: OnceCell<NonceKey>,
}

impl Nonces {
    /// Nothing loaded yet.
    pub fn new() -> Nonces {
        Nonces::default()
    }

    async fn key(&self, pki: &Pki) -> Result<&NonceKey, Problem> {
        self.key.get_or_try_init(|| load_or_make(pki)).await
    }

    /// A fresh nonce.
    pub(crate) async fn issue(&self, pki: &Pki) -> Result<String, Problem> {
        self.key(pki).await?.issue(pki.now().unix_timestamp())
    }

    /// Accept `nonce` once: it must be ours, unexpired and unused.
    pub(crate) async fn redeem(&self, pki: &Pki, nonce: &str) -> Result<(), Problem> {
        let now = pki.now().unix_timestamp();
        let lifetime = pki.settings().acme.nonce_lifetime_secs;
        let expires_at = match self.key(pki).await?.check(nonce, now, lifetime) {
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
        let first = pki
            .store()
            .acme_nonce_use(nonce, expires_at, now)
            .await
            .map_err(internal)?;
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
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| internal("no randomness"))?;
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
