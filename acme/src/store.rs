//! The ports of the engine: [`AcmeStore`], the storage it needs (accounts, orders,
//! authorizations, challenges, nonce uses, rate-limit counters and the certificates it
//! issued), and [`Issuer`], what it needs from the registration authority. The records are
//! the rows as stored: statuses are their wire names, identifiers JSON text.

use std::future::Future;

use certkeeper_ca::IssuanceRequest;
use serde_json::Value;

use crate::NonceKey;

/// An ACME account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccount {
    /// Id (the last segment of the account URL).
    pub id: String,
    /// The profile (directory) the account belongs to.
    pub profile: String,
    /// RFC 7638 thumbprint of the account key.
    pub thumbprint: String,
    /// The account key as a JWK (JSON text).
    pub jwk: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// Contact URLs.
    pub contact: Vec<String>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
}

/// An ACME order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeOrder {
    /// Id.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Stored status (`pending`, `processing`, `valid`, `invalid`); `ready` is derived.
    pub status: String,
    /// The identifiers (JSON array text).
    pub identifiers: String,
    /// Requested notBefore.
    pub not_before: Option<i64>,
    /// Requested notAfter.
    pub not_after: Option<i64>,
    /// Expiry.
    pub expires_at: i64,
    /// Problem document (JSON text) when invalid.
    pub error: Option<String>,
    /// The issued certificate.
    pub certificate_id: Option<String>,
    /// The RFC 9773 CertID of the certificate this order replaces, as the client sent it.
    pub replaces: Option<String>,
    /// The id of that certificate.
    pub replaced_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

/// An ACME authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAuthz {
    /// Id.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// `dns` or `ip`.
    pub id_type: String,
    /// The identifier value (a wildcard keeps its `*.`).
    pub id_value: String,
    /// Stored status.
    pub status: String,
    /// Expiry.
    pub expires_at: i64,
}

/// An ACME challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeChallenge {
    /// Id.
    pub id: String,
    /// Its authorization.
    pub authz_id: String,
    /// `http-01`, `dns-01` or `tls-alpn-01`.
    pub kind: String,
    /// The token.
    pub token: String,
    /// Status.
    pub status: String,
    /// When validated.
    pub validated_at: Option<i64>,
    /// Problem document (JSON text) when invalid.
    pub error: Option<String>,
    /// When its validation started (Unix seconds), while it is `processing`.
    pub processing_since: Option<i64>,
}

/// A new authorization with its challenges, created with an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAcmeAuthz {
    /// The authorization.
    pub authz: AcmeAuthz,
    /// Its challenges.
    pub challenges: Vec<AcmeChallenge>,
}

/// An external account binding key, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct EabKey {
    /// The key id clients send as the EAB `kid`.
    pub id: String,
    /// The profile (directory) it may register accounts for.
    pub profile: String,
    /// The account it was used for, once used.
    pub account_id: Option<String>,
    /// The HMAC key.
    pub mac_key: Vec<u8>,
}

impl std::fmt::Debug for EabKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabKey")
            .field("id", &self.id)
            .field("profile", &self.profile)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// A recorded certificate, as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    /// Id.
    pub id: String,
    /// The issuing CA's id.
    pub ca_id: String,
    /// DER.
    pub der: Vec<u8>,
    /// `valid`, `revoked`, ...
    pub status: String,
    /// notBefore (Unix seconds).
    pub not_before: i64,
    /// notAfter (Unix seconds).
    pub not_after: i64,
}

/// Who acts, for audit events: `acme:<account id>` or `acme`, and the client's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The actor's name.
    pub name: String,
    /// The client's address.
    pub source: Option<String>,
}

impl Actor {
    /// An account (or, without one, the ACME server itself) acting from `source`.
    pub fn acme(account_id: Option<&str>, source: Option<&str>) -> Actor {
        Actor {
            name: match account_id {
                Some(id) => format!("acme:{id}"),
                None => "acme".into(),
            },
            source: source.map(str::to_owned),
        }
    }

    /// An audit event by this actor about an object.
    pub fn event(&self, action: &str, object_type: &str, object_id: &str) -> Audit {
        Audit {
            actor: self.name.clone(),
            source: self.source.clone(),
            action: action.into(),
            object_type: object_type.into(),
            object_id: Some(object_id.into()),
            detail: Value::Null,
        }
    }
}

/// An audit event the store writes in the same transaction as the change it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// Who.
    pub actor: String,
    /// From where.
    pub source: Option<String>,
    /// What (`acme.order.create`, ...).
    pub action: String,
    /// The kind of object.
    pub object_type: String,
    /// The object's id.
    pub object_id: Option<String>,
    /// Extra facts (never secrets).
    pub detail: Value,
}

impl Audit {
    /// With extra facts.
    pub fn detail(mut self, detail: Value) -> Audit {
        self.detail = detail;
        self
    }
}

/// What a store can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint refused the write (a key already registered, a certificate
    /// already replaced).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else; logged, never shown.
    #[error("{0}")]
    Internal(String),
}

/// The storage the ACME engine needs. Every compare-and-set is one statement (or one
/// transaction) so that replicas sharing the database agree; the implementation for a
/// deployment decides how nonce uses are remembered and where the nonce key comes from.
pub trait AcmeStore: Send + Sync {
    /// A fresh, unique, time-ordered id for a new row.
    fn new_id(&self) -> String;

    /// The key that authenticates this deployment's nonces.
    fn nonce_key(&self) -> impl Future<Output = Result<&NonceKey, StoreError>> + Send;
    /// Record a use of a nonce (already checked against [`AcmeStore::nonce_key`]) that
    /// expires at `expires_at`: true if this is its first use anywhere.
    fn nonce_use(
        &self,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Count one event in the fixed window starting at `window_start`; returns the count
    /// including this one.
    fn rate_count(
        &self,
        bucket: &str,
        window_start: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// An account by id.
    fn account(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<AcmeAccount>, StoreError>> + Send;
    /// An account by its key thumbprint within a profile.
    fn account_by_key(
        &self,
        profile: &str,
        thumbprint: &str,
    ) -> impl Future<Output = Result<Option<AcmeAccount>, StoreError>> + Send;
    /// Insert an account, binding an external account key to it when given (false: the
    /// key is used already, and nothing is stored). [`StoreError::Conflict`] when the key
    /// is registered already.
    fn account_insert(
        &self,
        a: &AcmeAccount,
        eab_key: Option<&str>,
        audit: &Audit,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Change an account's contacts, status or key ([`StoreError::Conflict`] when the new
    /// key belongs to another account).
    fn account_update(
        &self,
        a: &AcmeAccount,
        audit: &Audit,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// An external account binding key, its MAC key opened.
    fn eab_key(&self, id: &str) -> impl Future<Output = Result<Option<EabKey>, StoreError>> + Send;

    /// A valid authorization of this account for an identifier that is still valid at
    /// `valid_until`, to reuse.
    fn reusable_authz(
        &self,
        account_id: &str,
        id_type: &str,
        id_value: &str,
        valid_until: i64,
    ) -> impl Future<Output = Result<Option<AcmeAuthz>, StoreError>> + Send;
    /// How many of an account's authorizations are pending and unexpired at `now`.
    fn pending_authz_count(
        &self,
        account_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Insert an order with its new authorizations and challenges and its links to reused
    /// ones, in one transaction ([`StoreError::Conflict`] when the certificate it replaces
    /// is replaced already).
    fn order_insert(
        &self,
        o: &AcmeOrder,
        new: &[NewAcmeAuthz],
        reused: &[String],
        audit: &Audit,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// An order by id.
    fn order(&self, id: &str)
    -> impl Future<Output = Result<Option<AcmeOrder>, StoreError>> + Send;
    /// An order with its authorizations (ordered by id), in one round trip.
    fn order_with_authzs(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(AcmeOrder, Vec<AcmeAuthz>)>, StoreError>> + Send;
    /// The ids of an account's orders, oldest first.
    fn order_ids(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Move an order from `from` to `to` (with an optional error or certificate); false if
    /// it was no longer in `from`.
    fn order_transition(
        &self,
        id: &str,
        from: &str,
        to: &str,
        error: Option<&str>,
        certificate_id: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Start finalizing a pending (ready) order at `now`; false if it was not pending.
    fn order_start_processing(
        &self,
        id: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// End as invalid, with `error`, every order processing since before `before`, writing
    /// an `acme.order.interrupted` event for each; returns their ids.
    fn fail_stuck_orders(
        &self,
        before: i64,
        error: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// The order that produced a certificate.
    fn order_by_certificate(
        &self,
        certificate_id: &str,
    ) -> impl Future<Output = Result<Option<AcmeOrder>, StoreError>> + Send;
    /// Whether an order already replaces this certificate.
    fn is_replaced(
        &self,
        certificate_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// An authorization by id.
    fn authz(&self, id: &str)
    -> impl Future<Output = Result<Option<AcmeAuthz>, StoreError>> + Send;
    /// An authorization with its challenges, in one round trip.
    fn authz_with_challenges(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(AcmeAuthz, Vec<AcmeChallenge>)>, StoreError>> + Send;
    /// Deactivate a pending or valid authorization; false if it was neither.
    fn authz_deactivate(
        &self,
        id: &str,
        audit: &Audit,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The challenges of an authorization.
    fn challenges(
        &self,
        authz_id: &str,
    ) -> impl Future<Output = Result<Vec<AcmeChallenge>, StoreError>> + Send;
    /// A challenge by id.
    fn challenge(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<AcmeChallenge>, StoreError>> + Send;
    /// A challenge with its authorization, in one round trip.
    fn challenge_with_authz(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(AcmeChallenge, AcmeAuthz)>, StoreError>> + Send;
    /// Claim a pending challenge of a pending authorization for validation at `now`; false
    /// if either is not pending any more.
    fn challenge_start(
        &self,
        id: &str,
        authz_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Record a validation outcome (`error` is the problem's JSON text when it failed) on
    /// a `processing` challenge and its pending authorization; false if another outcome was
    /// recorded first.
    fn challenge_finish(
        &self,
        c: &AcmeChallenge,
        error: Option<&str>,
        audit: &Audit,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Challenges `processing` since before `started_before`, oldest first, with their
    /// start times; at most `limit`.
    fn stuck_challenges(
        &self,
        started_before: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
    /// Take over a stuck challenge: a compare-and-set of its start time from `since` to
    /// `now`; true for exactly one of several trying at once.
    fn challenge_reclaim(
        &self,
        id: &str,
        since: i64,
        audit: &Audit,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A recorded certificate.
    fn certificate(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredCertificate>, StoreError>> + Send;
    /// A certificate that `account_id` ordered: its CA's id and its DER.
    fn account_certificate(
        &self,
        certificate_id: &str,
        account_id: &str,
    ) -> impl Future<Output = Result<Option<(String, Vec<u8>)>, StoreError>> + Send;
    /// The id of a recorded certificate by its SHA-256 fingerprint (hex).
    fn certificate_id_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The ids of recorded certificates with this serial (hex).
    fn certificate_ids_by_serial(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// An administrator's renewal window (start, end) for a certificate or its CA.
    fn renewal_override(
        &self,
        certificate_id: &str,
        ca_id: &str,
    ) -> impl Future<Output = Result<Option<(i64, i64)>, StoreError>> + Send;
}

/// What the registration authority answered, in the engine's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The request was refused: profile policy, an unusable CSR, a bad argument.
    #[error("{0}")]
    Refused(String),
    /// The object is not in a state that allows this (a certificate revoked already).
    #[error("{0}")]
    Conflict(String),
    /// No such object.
    #[error("{0}")]
    NotFound(String),
    /// Something broke inside; logged, never shown.
    #[error("{0}")]
    Internal(String),
}

/// A certificate issued for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedForOrder {
    /// The certificate's id.
    pub certificate_id: String,
    /// True when the order became valid in the same commit; false when it had stopped
    /// being `processing` (given up on as interrupted) by then.
    pub order_completed: bool,
}

/// What the engine needs from the registration authority.
pub trait Issuer: Send + Sync {
    /// Issue for the `processing` order `order_id` under `profile`, applying the profile's
    /// policy, and record the certificate and the order's move to `valid` in one durable
    /// commit.
    fn issue_for_order(
        &self,
        profile: &str,
        request: IssuanceRequest,
        actor: &Actor,
        order_id: &str,
    ) -> impl Future<Output = Result<IssuedForOrder, IssuerError>> + Send;
    /// Revoke a certificate with an RFC 5280 reason code.
    fn revoke(
        &self,
        certificate_id: &str,
        reason: u8,
        actor: &Actor,
    ) -> impl Future<Output = Result<(), IssuerError>> + Send;
    /// The issuer chain of a CA, nearest first (intermediates, then the root).
    fn chain(&self, ca_id: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, IssuerError>> + Send;
}

impl<T: Issuer> Issuer for std::sync::Arc<T> {
    fn issue_for_order(
        &self,
        profile: &str,
        request: IssuanceRequest,
        actor: &Actor,
        order_id: &str,
    ) -> impl Future<Output = Result<IssuedForOrder, IssuerError>> + Send {
        T::issue_for_order(self, profile, request, actor, order_id)
    }

    fn revoke(
        &self,
        certificate_id: &str,
        reason: u8,
        actor: &Actor,
    ) -> impl Future<Output = Result<(), IssuerError>> + Send {
        T::revoke(self, certificate_id, reason, actor)
    }

    fn chain(&self, ca_id: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, IssuerError>> + Send {
        T::chain(self, ca_id)
    }
}
