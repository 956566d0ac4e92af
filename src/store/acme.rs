//! ACME rows: nonces, accounts, orders, authorizations, challenges and rate-limit counters,
//! and [`AcmeDb`], the [`certkeeper_acme::AcmeStore`] the ACME engine runs on. Everything
//! ACME must share across replicas lives here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use certkeeper_acme::{
    AcmeStore, Audit, EabKey, NonceKey, StoreError as PortError, StoredCertificate,
};
use certkeeper_ca::{Clock, MasterKey};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::certs::SERIAL_IN_ANY_CA;
use super::script::{Outcome, Script, Stmt};
use super::writer::placeholders;
use super::{AuditEvent, Store, StoreError};
use crate::cache::TtlCache;

/// The seal context of an EAB key's HMAC key.
pub fn eab_seal_context(id: &str) -> Vec<u8> {
    format!("acme-eab:{id}").into_bytes()
}

pub use certkeeper_acme::{AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeOrder, NewAcmeAuthz};

fn row_account(r: &AnyRow) -> Result<AcmeAccount, StoreError> {
    let contact: String = r.try_get("contact")?;
    Ok(AcmeAccount {
        id: r.try_get("id")?,
        profile: r.try_get("profile")?,
        thumbprint: r.try_get("thumbprint")?,
        jwk: r.try_get("jwk")?,
        status: r.try_get("status")?,
        contact: serde_json::from_str(&contact)
            .map_err(|e| StoreError::Corrupt(format!("account contact: {e}")))?,
        created_at: r.try_get("created_at")?,
    })
}

fn row_order(r: &AnyRow) -> Result<AcmeOrder, StoreError> {
    row_order_at(r, "")
}

/// An order from columns named `<prefix><column>` (see [`aliased`]).
fn row_order_at(r: &AnyRow, prefix: &str) -> Result<AcmeOrder, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(AcmeOrder {
        id: r.try_get(col("id").as_str())?,
        account_id: r.try_get(col("account_id").as_str())?,
        status: r.try_get(col("status").as_str())?,
        identifiers: r.try_get(col("identifiers").as_str())?,
        not_before: r.try_get(col("not_before").as_str())?,
        not_after: r.try_get(col("not_after").as_str())?,
        expires_at: r.try_get(col("expires_at").as_str())?,
        error: r.try_get(col("error").as_str())?,
        certificate_id: r.try_get(col("certificate_id").as_str())?,
        replaces: r.try_get(col("replaces").as_str())?,
        replaced_id: r.try_get(col("replaced_id").as_str())?,
        created_at: r.try_get(col("created_at").as_str())?,
    })
}

fn row_authz(r: &AnyRow) -> Result<AcmeAuthz, StoreError> {
    row_authz_at(r, "")
}

/// An authorization from columns named `<prefix><column>` (see [`aliased`]).
fn row_authz_at(r: &AnyRow, prefix: &str) -> Result<AcmeAuthz, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(AcmeAuthz {
        id: r.try_get(col("id").as_str())?,
        account_id: r.try_get(col("account_id").as_str())?,
        id_type: r.try_get(col("id_type").as_str())?,
        id_value: r.try_get(col("id_value").as_str())?,
        status: r.try_get(col("status").as_str())?,
        expires_at: r.try_get(col("expires_at").as_str())?,
    })
}

/// `t.a AS pa, t.b AS pb, ...` for the comma-separated `cols` of table alias `table`: a
/// row of a join carries one table's columns under a prefix and the other's as they are.
fn aliased(table: &str, prefix: &str, cols: &str) -> String {
    cols.split(',')
        .map(str::trim)
        .map(|c| format!("{table}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `t.a, t.b, ...` for the comma-separated `cols` of table alias `table`.
fn qualified(table: &str, cols: &str) -> String {
    cols.split(',')
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn row_challenge(r: &AnyRow) -> Result<AcmeChallenge, StoreError> {
    Ok(AcmeChallenge {
        id: r.try_get("id")?,
        authz_id: r.try_get("authz_id")?,
        kind: r.try_get("type")?,
        token: r.try_get("token")?,
        status: r.try_get("status")?,
        validated_at: r.try_get("validated_at")?,
        error: r.try_get("error")?,
        processing_since: r.try_get("processing_since")?,
    })
}

/// An external account binding key (without its secret).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = EabKey)]
pub struct AcmeEabKey {
    /// The key id clients send as the EAB `kid`.
    pub id: String,
    /// The profile (directory) it may register accounts for.
    pub profile: String,
    /// A label.
    pub name: String,
    /// The account it was used for, once used.
    #[schema(required = true)]
    pub account_id: Option<String>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
}

fn row_eab(r: &AnyRow) -> Result<AcmeEabKey, StoreError> {
    Ok(AcmeEabKey {
        id: r.try_get("id")?,
        profile: r.try_get("profile")?,
        name: r.try_get("name")?,
        account_id: r.try_get("account_id")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// An ACME account as the dashboard lists it.
#[derive(Debug, Clone)]
pub struct AcmeAccountSummary {
    /// The account.
    pub account: AcmeAccount,
    /// How many orders it placed (still kept: expired ones are pruned).
    pub orders: i64,
}

const ACCOUNT_COLS: &str = "id, profile, thumbprint, jwk, status, contact, created_at";
const ORDER_COLS: &str = "id, account_id, status, identifiers, not_before, not_after, expires_at, error, certificate_id, replaces, replaced_id, created_at";
const AUTHZ_COLS: &str = "id, account_id, id_type, id_value, status, expires_at";
const CHALLENGE_COLS: &str =
    "id, authz_id, type, token, status, validated_at, error, processing_since";

/// ACME accounts by id, kept by a process that is the only one using its database
/// (SQLite), so that its own changes are the only ones: every request is signed by an account
/// and would otherwise read it. Changes go through [`Store::acme_account_update`], which
/// drops the entry; the generation keeps a read that raced with a change from caching the
/// old row.
#[derive(Debug)]
pub(crate) struct AccountCache {
    map: TtlCache<String, AcmeAccount>,
    generation: AtomicU64,
}

impl Default for AccountCache {
    fn default() -> Self {
        AccountCache {
            map: TtlCache::new(Duration::from_secs(3600)),
            generation: AtomicU64::new(0),
        }
    }
}

impl Store {
    /// Insert an account, binding an external account key to it when given (false: the
    /// key is used already, and nothing is stored).
    pub async fn acme_account_insert(
        &self,
        a: &AcmeAccount,
        eab_key: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO acme_accounts (id, profile, thumbprint, jwk, status, contact, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&a.id)
            .bind(&a.profile)
            .bind(&a.thumbprint)
            .bind(&a.jwk)
            .bind(&a.status)
            .bind(serde_json::to_string(&a.contact).unwrap_or_else(|_| "[]".into()))
            .bind(a.created_at)
            .execute(&mut *tx)
            .await?;
        if let Some(k) = eab_key {
            let done = sqlx::query(
                "UPDATE acme_eab_keys SET account_id = $1 WHERE id = $2 AND account_id IS NULL",
            )
            .bind(&a.id)
            .bind(k)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
        }
        audit.write(&mut *tx, a.created_at).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// An account by its key thumbprint within a profile.
    pub async fn acme_account_by_key(
        &self,
        profile: &str,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccount>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM acme_accounts WHERE profile = $1 AND thumbprint = $2"
        ))
        .bind(profile)
        .bind(thumbprint)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_account).transpose()
    }

    /// An account by id.
    pub async fn acme_account(&self, id: &str) -> Result<Option<AcmeAccount>, StoreError> {
        let cache = self.accounts.as_deref();
        if let Some(a) = cache.and_then(|c| c.map.get(&id.to_owned())) {
            return Ok(Some(a));
        }
        let generation = cache.map(|c| c.generation.load(Ordering::Acquire));
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM acme_accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let account = row.as_ref().map(row_account).transpose()?;
        if let (Some(c), Some(g), Some(a)) = (cache, generation, &account)
            && c.generation.load(Ordering::Acquire) == g
        {
            c.map.put(a.id.clone(), a.clone());
        }
        Ok(account)
    }

    /// Change an account's contacts, status or key.
    pub async fn acme_account_update(
        &self,
        a: &AcmeAccount,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE acme_accounts SET thumbprint = $1, jwk = $2, status = $3, contact = $4 WHERE id = $5")
            .bind(&a.thumbprint)
            .bind(&a.jwk)
            .bind(&a.status)
            .bind(serde_json::to_string(&a.contact).unwrap_or_else(|_| "[]".into()))
            .bind(&a.id)
            .execute(&mut *tx)
            .await?;
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        if let Some(c) = &self.accounts {
            // After the commit: a read that started earlier sees a new generation and
            // does not cache what it read.
            c.generation.fetch_add(1, Ordering::AcqRel);
            c.map.remove(&a.id);
        }
        Ok(())
    }

    /// How many of an account's authorizations are pending and unexpired at `now`.
    pub async fn acme_pending_authz_count(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM acme_authorizations WHERE account_id = $1 AND status = 'pending' AND expires_at > $2")
            .bind(account_id)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// A valid, unexpired authorization of this account for an identifier, to reuse.
    pub async fn acme_reusable_authz(
        &self,
        account_id: &str,
        id_type: &str,
        id_value: &str,
        valid_until: i64,
    ) -> Result<Option<AcmeAuthz>, StoreError> {
        let row = sqlx::query(&format!("SELECT {AUTHZ_COLS} FROM acme_authorizations WHERE account_id = $1 AND id_type = $2 AND id_value = $3 AND status = 'valid' AND expires_at > $4 ORDER BY expires_at DESC LIMIT 1"))
            .bind(account_id)
            .bind(id_type)
            .bind(id_value)
            .bind(valid_until)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_authz).transpose()
    }

    /// Insert an order with its new authorizations and challenges and its links to reused
    /// ones, in one transaction.
    pub async fn acme_order_insert(
        &self,
        o: &AcmeOrder,
        new: &[NewAcmeAuthz],
        reused: &[String],
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut script = Script::relaxed().then(
            Stmt::new("INSERT INTO acme_orders (id, account_id, status, identifiers, not_before, not_after, expires_at, error, certificate_id, replaces, replaced_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $9, $10, $8)")
                .bind(&o.id)
                .bind(&o.account_id)
                .bind(&o.status)
                .bind(&o.identifiers)
                .bind(o.not_before)
                .bind(o.not_after)
                .bind(o.expires_at)
                .bind(o.created_at)
                .bind(&o.replaces)
                .bind(&o.replaced_id),
        );
        for n in new {
            let a = &n.authz;
            script = script.then(
                Stmt::new("INSERT INTO acme_authorizations (id, account_id, id_type, id_value, status, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(&a.id)
                    .bind(&a.account_id)
                    .bind(&a.id_type)
                    .bind(&a.id_value)
                    .bind(&a.status)
                    .bind(a.expires_at)
                    .bind(o.created_at),
            );
            if !n.challenges.is_empty() {
                // One statement for all of the authorization's challenges.
                let mut stmt = Stmt::new(format!(
                    "INSERT INTO acme_challenges (id, authz_id, type, token, status) VALUES {}",
                    placeholders(self.engine, n.challenges.len(), 5, None)
                ));
                for c in &n.challenges {
                    stmt = stmt
                        .bind(&c.id)
                        .bind(&a.id)
                        .bind(&c.kind)
                        .bind(&c.token)
                        .bind(&c.status);
                }
                script = script.then(stmt);
            }
        }
        let links: Vec<&String> = new.iter().map(|n| &n.authz.id).chain(reused).collect();
        if !links.is_empty() {
            let mut stmt = Stmt::new(format!(
                "INSERT INTO acme_order_authorizations (order_id, authz_id) VALUES {}",
                placeholders(self.engine, links.len(), 2, None)
            ));
            for authz in links {
                stmt = stmt.bind(&o.id).bind(authz);
            }
            script = script.then(stmt);
        }
        self.run_script(script.then(audit.stmt(o.created_at)))
            .await?;
        Ok(())
    }

    /// An order by id.
    pub async fn acme_order(&self, id: &str) -> Result<Option<AcmeOrder>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLS} FROM acme_orders WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_order).transpose()
    }

    /// An order with its authorizations, in one round trip (every poll of an order needs
    /// both).
    pub async fn acme_order_with_authzs(
        &self,
        id: &str,
    ) -> Result<Option<(AcmeOrder, Vec<AcmeAuthz>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {}, {} FROM acme_orders o
             JOIN acme_order_authorizations oa ON oa.order_id = o.id
             JOIN acme_authorizations a ON a.id = oa.authz_id
             WHERE o.id = $1 ORDER BY a.id",
            aliased("o", "o_", ORDER_COLS),
            qualified("a", AUTHZ_COLS),
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let order = row_order_at(first, "o_")?;
        let authzs = rows.iter().map(row_authz).collect::<Result<_, _>>()?;
        Ok(Some((order, authzs)))
    }

    /// A page of ACME accounts, newest first, each with how many orders it placed:
    /// `limit` accounts after the keyset position `after` (the previous page's last
    /// `(created_at, id)`).
    pub async fn acme_account_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<AcmeAccountSummary>, StoreError> {
        let cols = qualified("a", ACCOUNT_COLS);
        let count = "(SELECT COUNT(*) FROM acme_orders o WHERE o.account_id = a.id) AS orders";
        let rows = match after {
            Some((at, id)) => {
                sqlx::query(&format!(
                    "SELECT {cols}, {count} FROM acme_accounts a
                     WHERE a.created_at < $1 OR (a.created_at = $1 AND a.id < $2)
                     ORDER BY a.created_at DESC, a.id DESC LIMIT $3"
                ))
                .bind(at)
                .bind(id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {cols}, {count} FROM acme_accounts a
                     ORDER BY a.created_at DESC, a.id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(AcmeAccountSummary {
                    account: row_account(r)?,
                    orders: r.try_get("orders")?,
                })
            })
            .collect()
    }

    /// A page of an account's orders, newest first: `limit` orders after the keyset
    /// position `after` (the previous page's last `(created_at, id)`).
    pub async fn acme_account_orders(
        &self,
        account_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<AcmeOrder>, StoreError> {
        let rows = match after {
            Some((at, id)) => {
                sqlx::query(&format!(
                    "SELECT {ORDER_COLS} FROM acme_orders
                     WHERE account_id = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3))
                     ORDER BY created_at DESC, id DESC LIMIT $4"
                ))
                .bind(account_id)
                .bind(at)
                .bind(id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {ORDER_COLS} FROM acme_orders WHERE account_id = $1
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(account_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(row_order).collect()
    }

    /// The ids of an account's orders, oldest first.
    pub async fn acme_order_ids(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM acme_orders WHERE account_id = $1 ORDER BY created_at, id")
                .bind(account_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(Into::into))
            .collect()
    }

    /// Move an order from `from` to `to` (with an optional error or certificate); false if it
    /// was no longer in `from` (another request or replica got there first).
    pub async fn acme_order_transition(
        &self,
        id: &str,
        from: &str,
        to: &str,
        error: Option<&str>,
        certificate_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE acme_orders SET status = $1, error = $2, certificate_id = $3 WHERE id = $4 AND status = $5")
            .bind(to)
            .bind(error)
            .bind(certificate_id)
            .bind(id)
            .bind(from)
            .execute(&self.writes)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Start finalizing a pending (ready) order at `now`; false if it was not pending any
    /// more (another request or replica got there first).
    pub async fn acme_order_start_processing(
        &self,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        // Relaxed: if a power failure loses it, the order is simply ready again; the
        // certificate's durable commit flushes it otherwise.
        let script = Script::relaxed().then(
            Stmt::new(
                "UPDATE acme_orders SET status = 'processing', processing_since = $1 WHERE id = $2 AND status = 'pending'",
            )
            .bind(now)
            .bind(id)
            .guard(),
        );
        Ok(self.run_script(script).await?.done())
    }

    /// End as invalid, with `error`, every order that started processing before `before`
    /// (its finalization was interrupted); returns their ids. One statement, so replicas
    /// running this at once end each order once.
    pub async fn acme_fail_stuck_orders(
        &self,
        before: i64,
        error: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE acme_orders SET status = 'invalid', error = $1 WHERE status = 'processing' AND processing_since < $2 RETURNING id",
        )
        .bind(error)
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        let ids = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        for id in &ids {
            AuditEvent::new("acme", None, "acme.order.interrupted", "acme_order")
                .object(id)
                .write(&mut *tx, now)
                .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// An authorization by id.
    pub async fn acme_authz(&self, id: &str) -> Result<Option<AcmeAuthz>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AUTHZ_COLS} FROM acme_authorizations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_authz).transpose()
    }

    /// The challenges of an authorization.
    pub async fn acme_challenges(&self, authz_id: &str) -> Result<Vec<AcmeChallenge>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLS} FROM acme_challenges WHERE authz_id = $1 ORDER BY type"
        ))
        .bind(authz_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_challenge).collect()
    }

    /// A challenge by id.
    pub async fn acme_challenge(&self, id: &str) -> Result<Option<AcmeChallenge>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLS} FROM acme_challenges WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_challenge).transpose()
    }

    /// A challenge with its authorization, in one round trip.
    pub async fn acme_challenge_with_authz(
        &self,
        id: &str,
    ) -> Result<Option<(AcmeChallenge, AcmeAuthz)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {}, {} FROM acme_challenges c JOIN acme_authorizations a ON a.id = c.authz_id WHERE c.id = $1",
            qualified("c", CHALLENGE_COLS),
            aliased("a", "a_", AUTHZ_COLS),
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| Ok((row_challenge(r)?, row_authz_at(r, "a_")?)))
            .transpose()
    }

    /// An authorization with its challenges, in one round trip.
    pub async fn acme_authz_with_challenges(
        &self,
        id: &str,
    ) -> Result<Option<(AcmeAuthz, Vec<AcmeChallenge>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {}, {} FROM acme_authorizations a JOIN acme_challenges c ON c.authz_id = a.id WHERE a.id = $1 ORDER BY c.type",
            aliased("a", "a_", AUTHZ_COLS),
            qualified("c", CHALLENGE_COLS),
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            // An authorization without challenges (none is made so) still reads alone.
            return Ok(self.acme_authz(id).await?.map(|a| (a, Vec::new())));
        };
        let authz = row_authz_at(first, "a_")?;
        let challenges = rows.iter().map(row_challenge).collect::<Result<_, _>>()?;
        Ok(Some((authz, challenges)))
    }

    /// Claim a pending challenge of a pending authorization for validation, recording when
    /// (`now`); false if it is not pending any more (already started here or on another
    /// replica).
    pub async fn acme_challenge_start(
        &self,
        id: &str,
        authz_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        // The authorization must still be pending too.
        let script = Script::relaxed().then(
            Stmt::new(
                "UPDATE acme_challenges SET status = 'processing', processing_since = $1 WHERE id = $2 AND status = 'pending'
             AND (SELECT status FROM acme_authorizations WHERE id = $3) = 'pending'",
            )
            .bind(now)
            .bind(id)
            .bind(authz_id)
            .guard(),
        );
        Ok(self.run_script(script).await?.done())
    }

    /// Record a validation outcome on the challenge and its authorization. Only the first
    /// outcome for a `processing` challenge counts (false: another validation of it, say one
    /// taken over from a replica thought dead, recorded first), so the challenge and the
    /// authorization always agree.
    pub async fn acme_challenge_finish(
        &self,
        c: &AcmeChallenge,
        error: Option<&str>,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (status, authz_status) = if error.is_none() {
            ("valid", "valid")
        } else {
            ("invalid", "invalid")
        };
        let script = Script::relaxed()
            .then(
                Stmt::new(
                    "UPDATE acme_challenges SET status = $1, error = $2, validated_at = $3, processing_since = NULL WHERE id = $4 AND status = 'processing'",
                )
                .bind(status)
                .bind(error)
                .bind(error.is_none().then_some(now))
                .bind(&c.id)
                .guard(),
            )
            .then(
                Stmt::new(
                    "UPDATE acme_authorizations SET status = $1 WHERE id = $2 AND status = 'pending'",
                )
                .bind(authz_status)
                .bind(&c.authz_id),
            )
            .then(audit.stmt(now));
        Ok(self.run_script(script).await?.done())
    }

    /// Challenges `processing` since before `started_before` (their validation should have
    /// ended long ago: the process running it died), oldest first, with their start times.
    pub async fn acme_stuck_challenges(
        &self,
        started_before: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, COALESCE(processing_since, 0) AS since FROM acme_challenges WHERE status = 'processing' AND COALESCE(processing_since, 0) < $1 ORDER BY since, id LIMIT $2",
        )
        .bind(started_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("since")?)))
            .collect()
    }

    /// Take over a stuck challenge's validation: a compare-and-set of its start time from
    /// `since` (as [`Store::acme_stuck_challenges`] saw it) to `now`. True for exactly one of
    /// several replicas trying at once; false if it finished or was taken in the meantime.
    pub async fn acme_challenge_reclaim(
        &self,
        id: &str,
        since: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write_relaxed().await?;
        let done = sqlx::query(
            "UPDATE acme_challenges SET processing_since = $1 WHERE id = $2 AND status = 'processing' AND COALESCE(processing_since, 0) = $3",
        )
        .bind(now)
        .bind(id)
        .bind(since)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deactivate an authorization.
    pub async fn acme_authz_deactivate(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE acme_authorizations SET status = 'deactivated' WHERE id = $1 AND status IN ('pending', 'valid')")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The order that produced a certificate, with its account.
    pub async fn acme_order_by_certificate(
        &self,
        certificate_id: &str,
    ) -> Result<Option<AcmeOrder>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLS} FROM acme_orders WHERE certificate_id = $1"
        ))
        .bind(certificate_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_order).transpose()
    }

    /// A certificate that `account_id` ordered: its CA's id and its DER, in one round trip.
    pub async fn acme_account_certificate(
        &self,
        certificate_id: &str,
        account_id: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT c.ca_id, c.der FROM certificates c JOIN acme_orders o ON o.certificate_id = c.id
             WHERE c.id = $1 AND o.account_id = $2 LIMIT 1",
        )
        .bind(certificate_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("ca_id")?, r.try_get("der")?)))
            .transpose()
    }

    /// Count one event in a fixed window; returns the count including this one. Shared by
    /// all replicas through the database.
    pub async fn acme_rate_count(
        &self,
        bucket: &str,
        window_start: i64,
    ) -> Result<i64, StoreError> {
        let script = Script::durable().then(
            Stmt::new("INSERT INTO acme_rate_limits (bucket, window_start, count) VALUES ($1, $2, 1) ON CONFLICT (bucket, window_start) DO UPDATE SET count = acme_rate_limits.count + 1 RETURNING count")
                .bind(bucket)
                .bind(window_start)
                .returning(),
        );
        match self.run_script(script).await? {
            Outcome::Done(Some(count)) => Ok(count),
            _ => Err(StoreError::Corrupt(
                "the rate-limit count returned nothing".into(),
            )),
        }
    }

    /// The id of a recorded certificate by its SHA-256 fingerprint.
    pub async fn acme_certificate_id_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT id FROM certificates WHERE fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("id").map_err(Into::into)).transpose()
    }

    /// The id of a recorded certificate by its serial (hex).
    pub async fn acme_certificate_id_by_serial(
        &self,
        serial: &str,
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!("SELECT id FROM certificates WHERE {SERIAL_IN_ANY_CA}serial = $1");
        let rows = sqlx::query(&sql).bind(serial).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(Into::into))
            .collect()
    }

    /// Whether an order already replaces this certificate.
    pub async fn acme_is_replaced(&self, certificate_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT id FROM acme_orders WHERE replaced_id = $1")
            .bind(certificate_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The newest administrator's renewal window for a certificate or its CA.
    pub async fn acme_renewal_override(
        &self,
        certificate_id: &str,
        ca_id: &str,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query("SELECT window_start, window_end FROM acme_renewal_overrides WHERE certificate_id = $1 OR ca_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1")
            .bind(certificate_id)
            .bind(ca_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("window_start")?, r.try_get("window_end")?)))
            .transpose()
    }

    /// Record a renewal window for a CA's certificates or for one certificate.
    #[allow(clippy::too_many_arguments)]
    pub async fn acme_renewal_override_insert(
        &self,
        id: &str,
        ca_id: Option<&str>,
        certificate_id: Option<&str>,
        start: i64,
        end: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO acme_renewal_overrides (id, ca_id, certificate_id, window_start, window_end, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(ca_id)
            .bind(certificate_id)
            .bind(start)
            .bind(end)
            .bind(now)
            .bind(&audit.actor)
            .execute(&mut *tx)
            .await?;
        audit.write(&mut *tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Store a new EAB key (its MAC key sealed).
    pub async fn acme_eab_insert(
        &self,
        k: &AcmeEabKey,
        sealed: &[u8],
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO acme_eab_keys (id, profile, name, hmac_sealed, account_id, created_at, created_by) VALUES ($1, $2, $3, $4, NULL, $5, $6)")
            .bind(&k.id)
            .bind(&k.profile)
            .bind(&k.name)
            .bind(sealed)
            .bind(k.created_at)
            .bind(&k.created_by)
            .execute(&mut *tx)
            .await?;
        audit.write(&mut *tx, k.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An EAB key with its sealed MAC key.
    pub async fn acme_eab_key(
        &self,
        id: &str,
    ) -> Result<Option<(AcmeEabKey, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT id, profile, name, account_id, created_at, created_by, hmac_sealed FROM acme_eab_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((row_eab(&r)?, r.try_get("hmac_sealed")?)))
            .transpose()
    }

    /// All EAB keys, newest first (without secrets).
    pub async fn acme_eab_list(&self) -> Result<Vec<AcmeEabKey>, StoreError> {
        self.all_rows("SELECT id, profile, name, account_id, created_at, created_by FROM acme_eab_keys ORDER BY created_at DESC, id DESC", row_eab).await
    }
}

/// The [`AcmeStore`] of the ACME engine: this database, with the master key that seals the
/// nonce key (PostgreSQL) and the external account binding keys, and the clock that dates
/// the nonce key. Cheap to make: the nonce state lives in the [`Store`] it wraps.
#[derive(Clone)]
pub struct AcmeDb {
    store: Store,
    master: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AcmeDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeDb").finish_non_exhaustive()
    }
}

impl AcmeDb {
    /// The ACME storage over `store`.
    pub fn new(store: Store, master: Arc<MasterKey>, clock: Arc<dyn Clock>) -> AcmeDb {
        AcmeDb {
            store,
            master,
            clock,
        }
    }
}

/// A store failure in the engine's terms: a constraint's refusal stays a conflict.
fn port_err(e: StoreError) -> PortError {
    match e {
        StoreError::Conflict(what) => PortError::Conflict(what),
        other => PortError::Internal(other.to_string()),
    }
}

fn event(a: &Audit) -> AuditEvent {
    AuditEvent {
        actor: a.actor.clone(),
        action: a.action.clone(),
        object_type: a.object_type.clone(),
        object_id: a.object_id.clone(),
        source: a.source.clone(),
        detail: a.detail.clone(),
    }
}

impl AcmeStore for AcmeDb {
    fn new_id(&self) -> String {
        super::new_id()
    }

    async fn nonce_key(&self) -> Result<&NonceKey, PortError> {
        self.store
            .acme_nonce_key(&self.master, self.clock.now().unix_timestamp())
            .await
            .map_err(port_err)
    }

    async fn nonce_use(&self, nonce: &str, expires_at: i64, now: i64) -> Result<bool, PortError> {
        self.store
            .acme_nonce_redeem(nonce, expires_at, now)
            .await
            .map_err(port_err)
    }

    async fn rate_count(&self, bucket: &str, window_start: i64) -> Result<i64, PortError> {
        self.store
            .acme_rate_count(bucket, window_start)
            .await
            .map_err(port_err)
    }

    async fn account(&self, id: &str) -> Result<Option<AcmeAccount>, PortError> {
        self.store.acme_account(id).await.map_err(port_err)
    }

    async fn account_by_key(
        &self,
        profile: &str,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccount>, PortError> {
        self.store
            .acme_account_by_key(profile, thumbprint)
            .await
            .map_err(port_err)
    }

    async fn account_insert(
        &self,
        a: &AcmeAccount,
        eab_key: Option<&str>,
        audit: &Audit,
    ) -> Result<bool, PortError> {
        self.store
            .acme_account_insert(a, eab_key, &event(audit))
            .await
            .map_err(port_err)
    }

    async fn account_update(
        &self,
        a: &AcmeAccount,
        audit: &Audit,
        now: i64,
    ) -> Result<(), PortError> {
        self.store
            .acme_account_update(a, &event(audit), now)
            .await
            .map_err(port_err)
    }

    async fn eab_key(&self, id: &str) -> Result<Option<EabKey>, PortError> {
        let Some((rec, sealed)) = self.store.acme_eab_key(id).await.map_err(port_err)? else {
            return Ok(None);
        };
        let mac_key = self
            .master
            .open(&sealed, &eab_seal_context(&rec.id))
            .map_err(|e| PortError::Internal(format!("opening an EAB key: {e}")))?;
        Ok(Some(EabKey {
            id: rec.id,
            profile: rec.profile,
            account_id: rec.account_id,
            mac_key,
        }))
    }

    async fn pending_authz_count(&self, account_id: &str, now: i64) -> Result<i64, PortError> {
        self.store
            .acme_pending_authz_count(account_id, now)
            .await
            .map_err(port_err)
    }

    async fn reusable_authz(
        &self,
        account_id: &str,
        id_type: &str,
        id_value: &str,
        valid_until: i64,
    ) -> Result<Option<AcmeAuthz>, PortError> {
        self.store
            .acme_reusable_authz(account_id, id_type, id_value, valid_until)
            .await
            .map_err(port_err)
    }

    async fn order_insert(
        &self,
        o: &AcmeOrder,
        new: &[NewAcmeAuthz],
        reused: &[String],
        audit: &Audit,
    ) -> Result<(), PortError> {
        self.store
            .acme_order_insert(o, new, reused, &event(audit))
            .await
            .map_err(port_err)
    }

    async fn order(&self, id: &str) -> Result<Option<AcmeOrder>, PortError> {
        self.store.acme_order(id).await.map_err(port_err)
    }

    async fn order_with_authzs(
        &self,
        id: &str,
    ) -> Result<Option<(AcmeOrder, Vec<AcmeAuthz>)>, PortError> {
        self.store
            .acme_order_with_authzs(id)
            .await
            .map_err(port_err)
    }

    async fn order_ids(&self, account_id: &str) -> Result<Vec<String>, PortError> {
        self.store
            .acme_order_ids(account_id)
            .await
            .map_err(port_err)
    }

    async fn order_transition(
        &self,
        id: &str,
        from: &str,
        to: &str,
        error: Option<&str>,
        certificate_id: Option<&str>,
    ) -> Result<bool, PortError> {
        self.store
            .acme_order_transition(id, from, to, error, certificate_id)
            .await
            .map_err(port_err)
    }

    async fn order_start_processing(&self, id: &str, now: i64) -> Result<bool, PortError> {
        self.store
            .acme_order_start_processing(id, now)
            .await
            .map_err(port_err)
    }

    async fn fail_stuck_orders(
        &self,
        before: i64,
        error: &str,
        now: i64,
    ) -> Result<Vec<String>, PortError> {
        self.store
            .acme_fail_stuck_orders(before, error, now)
            .await
            .map_err(port_err)
    }

    async fn order_by_certificate(
        &self,
        certificate_id: &str,
    ) -> Result<Option<AcmeOrder>, PortError> {
        self.store
            .acme_order_by_certificate(certificate_id)
            .await
            .map_err(port_err)
    }

    async fn is_replaced(&self, certificate_id: &str) -> Result<bool, PortError> {
        self.store
            .acme_is_replaced(certificate_id)
            .await
            .map_err(port_err)
    }

    async fn authz(&self, id: &str) -> Result<Option<AcmeAuthz>, PortError> {
        self.store.acme_authz(id).await.map_err(port_err)
    }

    async fn authz_with_challenges(
        &self,
        id: &str,
    ) -> Result<Option<(AcmeAuthz, Vec<AcmeChallenge>)>, PortError> {
        self.store
            .acme_authz_with_challenges(id)
            .await
            .map_err(port_err)
    }

    async fn authz_deactivate(&self, id: &str, audit: &Audit, now: i64) -> Result<bool, PortError> {
        self.store
            .acme_authz_deactivate(id, &event(audit), now)
            .await
            .map_err(port_err)
    }

    async fn challenges(&self, authz_id: &str) -> Result<Vec<AcmeChallenge>, PortError> {
        self.store.acme_challenges(authz_id).await.map_err(port_err)
    }

    async fn challenge(&self, id: &str) -> Result<Option<AcmeChallenge>, PortError> {
        self.store.acme_challenge(id).await.map_err(port_err)
    }

    async fn challenge_with_authz(
        &self,
        id: &str,
    ) -> Result<Option<(AcmeChallenge, AcmeAuthz)>, PortError> {
        self.store
            .acme_challenge_with_authz(id)
            .await
            .map_err(port_err)
    }

    async fn challenge_start(&self, id: &str, authz_id: &str, now: i64) -> Result<bool, PortError> {
        self.store
            .acme_challenge_start(id, authz_id, now)
            .await
            .map_err(port_err)
    }

    async fn challenge_finish(
        &self,
        c: &AcmeChallenge,
        error: Option<&str>,
        audit: &Audit,
        now: i64,
    ) -> Result<bool, PortError> {
        self.store
            .acme_challenge_finish(c, error, &event(audit), now)
            .await
            .map_err(port_err)
    }

    async fn stuck_challenges(
        &self,
        started_before: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, PortError> {
        self.store
            .acme_stuck_challenges(started_before, limit)
            .await
            .map_err(port_err)
    }

    async fn challenge_reclaim(
        &self,
        id: &str,
        since: i64,
        audit: &Audit,
        now: i64,
    ) -> Result<bool, PortError> {
        self.store
            .acme_challenge_reclaim(id, since, &event(audit), now)
            .await
            .map_err(port_err)
    }

    async fn certificate(&self, id: &str) -> Result<Option<StoredCertificate>, PortError> {
        match self.store.get_certificate(id).await {
            Ok(rec) => Ok(Some(StoredCertificate {
                id: rec.id,
                ca_id: rec.ca_id,
                der: rec.der,
                status: rec.status,
                not_before: rec.not_before.unix_timestamp(),
                not_after: rec.not_after.unix_timestamp(),
            })),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(port_err(e)),
        }
    }

    async fn account_certificate(
        &self,
        certificate_id: &str,
        account_id: &str,
    ) -> Result<Option<(String, Vec<u8>)>, PortError> {
        self.store
            .acme_account_certificate(certificate_id, account_id)
            .await
            .map_err(port_err)
    }

    async fn certificate_id_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<String>, PortError> {
        self.store
            .acme_certificate_id_by_fingerprint(fingerprint)
            .await
            .map_err(port_err)
    }

    async fn certificate_ids_by_serial(&self, serial: &str) -> Result<Vec<String>, PortError> {
        self.store
            .acme_certificate_id_by_serial(serial)
            .await
            .map_err(port_err)
    }

    async fn renewal_override(
        &self,
        certificate_id: &str,
        ca_id: &str,
    ) -> Result<Option<(i64, i64)>, PortError> {
        self.store
            .acme_renewal_override(certificate_id, ca_id)
            .await
            .map_err(port_err)
    }
}
