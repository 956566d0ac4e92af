//! Narrow views of the store, split by need (read, write, admin), so that each service
//! reaches only the tables it owns. [`Store`] implements every one of them, for SQLite and
//! PostgreSQL alike; a service names the view it needs and the compiler keeps it there.

use std::future::Future;

use time::OffsetDateTime;

use crate::store::{
    AcmeAccount, AcmeAccountSummary, AcmeEabKey, AcmeOrder, AcmePruned, AuditEvent, AuditFilter,
    AuditRecord, CaRecord, CertCounts, CertFilter, CertRecord, EstCredential, EstLabel,
    ProfileRecord, Store, StoreError, TokenRecord,
};

/// API tokens.
pub trait TokenStore: Send + Sync {
    /// Insert a token with its audit event.
    fn insert_token(
        &self,
        t: &TokenRecord,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The token with this hash, if any.
    fn find_token(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;
    /// All tokens.
    fn list_tokens(&self) -> impl Future<Output = Result<Vec<TokenRecord>, StoreError>> + Send;
    /// Revoke an active token.
    fn revoke_token(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl TokenStore for Store {
    fn insert_token(
        &self,
        t: &TokenRecord,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::insert_token(self, t, audit)
    }
    fn find_token(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send {
        Store::find_token(self, token_hash)
    }
    fn list_tokens(&self) -> impl Future<Output = Result<Vec<TokenRecord>, StoreError>> + Send {
        Store::list_tokens(self)
    }
    fn revoke_token(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::revoke_token(self, id, audit, now)
    }
}

/// Issuance profiles.
pub trait ProfileStore: Send + Sync {
    /// Insert a profile with its audit event.
    fn insert_profile(
        &self,
        p: &ProfileRecord,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replace a profile's policy and CA.
    fn update_profile(
        &self,
        p: &ProfileRecord,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Delete a profile by name.
    fn delete_profile(
        &self,
        name: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A profile by name or id.
    fn get_profile(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ProfileRecord, StoreError>> + Send;
    /// All profiles.
    fn list_profiles(&self) -> impl Future<Output = Result<Vec<ProfileRecord>, StoreError>> + Send;
}

impl ProfileStore for Store {
    fn insert_profile(
        &self,
        p: &ProfileRecord,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::insert_profile(self, p, audit)
    }
    fn update_profile(
        &self,
        p: &ProfileRecord,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::update_profile(self, p, audit)
    }
    fn delete_profile(
        &self,
        name: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::delete_profile(self, name, audit, now)
    }
    fn get_profile(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ProfileRecord, StoreError>> + Send {
        Store::get_profile(self, name)
    }
    fn list_profiles(&self) -> impl Future<Output = Result<Vec<ProfileRecord>, StoreError>> + Send {
        Store::list_profiles(self)
    }
}

/// The audit log.
pub trait AuditStore: Send + Sync {
    /// Append one event on its own.
    fn audit(
        &self,
        ev: &AuditEvent,
        at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A page of events, newest first.
    fn list_audit(
        &self,
        f: &AuditFilter,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;
}

impl AuditStore for Store {
    fn audit(
        &self,
        ev: &AuditEvent,
        at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::audit(self, ev, at)
    }
    fn list_audit(
        &self,
        f: &AuditFilter,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send {
        Store::list_audit(self, f)
    }
}

/// EST labels and credentials.
pub trait EstStore: AuditStore {
    /// Insert a label with its audit event.
    fn insert_est_label(
        &self,
        l: &EstLabel,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A label.
    fn get_est_label(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<EstLabel, StoreError>> + Send;
    /// All labels.
    fn list_est_labels(&self) -> impl Future<Output = Result<Vec<EstLabel>, StoreError>> + Send;
    /// Delete a label.
    fn delete_est_label(
        &self,
        label: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Insert a credential with its audit event.
    fn insert_est_credential(
        &self,
        c: &EstCredential,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The credential of a user name, if any.
    fn find_est_credential(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<EstCredential>, StoreError>> + Send;
    /// All credentials.
    fn list_est_credentials(
        &self,
    ) -> impl Future<Output = Result<Vec<EstCredential>, StoreError>> + Send;
    /// A page of credentials, newest first, after the keyset position `after`.
    fn est_credential_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<EstCredential>, StoreError>> + Send;
    /// Revoke an active credential.
    fn revoke_est_credential(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Take one use of a credential, atomically.
    fn take_est_credential_use(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Give back a use taken for an enrollment that failed.
    fn return_est_credential_use(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl EstStore for Store {
    fn insert_est_label(
        &self,
        l: &EstLabel,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::insert_est_label(self, l, audit)
    }
    fn get_est_label(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<EstLabel, StoreError>> + Send {
        Store::get_est_label(self, label)
    }
    fn list_est_labels(&self) -> impl Future<Output = Result<Vec<EstLabel>, StoreError>> + Send {
        Store::list_est_labels(self)
    }
    fn delete_est_label(
        &self,
        label: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::delete_est_label(self, label, audit, now)
    }
    fn insert_est_credential(
        &self,
        c: &EstCredential,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::insert_est_credential(self, c, audit)
    }
    fn find_est_credential(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<EstCredential>, StoreError>> + Send {
        Store::find_est_credential(self, username)
    }
    fn list_est_credentials(
        &self,
    ) -> impl Future<Output = Result<Vec<EstCredential>, StoreError>> + Send {
        Store::list_est_credentials(self)
    }
    fn est_credential_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<EstCredential>, StoreError>> + Send {
        Store::est_credential_page(self, after, limit)
    }
    fn revoke_est_credential(
        &self,
        id: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::revoke_est_credential(self, id, audit, now)
    }
    fn take_est_credential_use(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        Store::take_est_credential_use(self, id, now)
    }
    fn return_est_credential_use(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::return_est_credential_use(self, id)
    }
}

/// Certificate authorities, read (every change to a CA goes through the registration
/// authority, which signs).
pub trait CaStore: Send + Sync {
    /// A CA by id or name.
    fn get_ca(&self, id_or_name: &str)
    -> impl Future<Output = Result<CaRecord, StoreError>> + Send;
    /// Every CA, oldest first.
    fn list_cas(&self) -> impl Future<Output = Result<Vec<CaRecord>, StoreError>> + Send;
    /// The current CRL of every CA that has one: (CA id, number, thisUpdate, nextUpdate).
    fn crl_summaries(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, i64, i64, i64)>, StoreError>> + Send;
}

impl CaStore for Store {
    fn get_ca(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<CaRecord, StoreError>> + Send {
        Store::get_ca(self, id_or_name)
    }
    fn list_cas(&self) -> impl Future<Output = Result<Vec<CaRecord>, StoreError>> + Send {
        Store::list_cas(self)
    }
    fn crl_summaries(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, i64, i64, i64)>, StoreError>> + Send {
        Store::crl_summaries(self)
    }
}

/// Issued certificates, read (issuing and revoking go through the registration authority).
pub trait CertificateStore: CaStore {
    /// A certificate by id.
    fn get_certificate(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<CertRecord, StoreError>> + Send;
    /// Certificates matching a filter, as their status is at `now`.
    fn search_certificates(
        &self,
        filter: &CertFilter,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<CertRecord>, StoreError>> + Send;
    /// Certificates by state at `now`.
    fn certificate_counts(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<CertCounts, StoreError>> + Send;
    /// How many certificates each CA has issued, by CA id.
    fn issued_counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
}

impl CertificateStore for Store {
    fn get_certificate(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<CertRecord, StoreError>> + Send {
        Store::get_certificate(self, id)
    }
    fn search_certificates(
        &self,
        filter: &CertFilter,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<CertRecord>, StoreError>> + Send {
        Store::search_certificates(self, filter, now)
    }
    fn certificate_counts(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<CertCounts, StoreError>> + Send {
        Store::certificate_counts(self, now)
    }
    fn issued_counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send {
        Store::issued_counts(self)
    }
}

/// Administration of the ACME server: external account binding keys and renewal windows.
pub trait AcmeAdminStore: CertificateStore {
    /// Insert an EAB key (its HMAC key sealed) with its audit event.
    fn acme_eab_insert(
        &self,
        key: &AcmeEabKey,
        sealed: &[u8],
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every EAB key, newest first.
    fn acme_eab_list(&self) -> impl Future<Output = Result<Vec<AcmeEabKey>, StoreError>> + Send;
    /// A page of accounts, newest first, with their order counts, after the keyset
    /// position `after`.
    fn acme_account_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AcmeAccountSummary>, StoreError>> + Send;
    /// An account by id.
    fn acme_account(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<AcmeAccount>, StoreError>> + Send;
    /// A page of an account's orders, newest first, after the keyset position `after`.
    fn acme_account_orders(
        &self,
        account_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AcmeOrder>, StoreError>> + Send;
    /// Move the suggested renewal window of a CA's or a certificate's certificates.
    #[allow(clippy::too_many_arguments)]
    fn acme_renewal_override_insert(
        &self,
        id: &str,
        ca_id: Option<&str>,
        certificate_id: Option<&str>,
        start: i64,
        end: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Delete orders and authorizations (with their challenges) that expired before
    /// `cutoff`, ended rate-limit windows and used nonces expired at `now`.
    fn acme_prune(
        &self,
        cutoff: i64,
        now: i64,
    ) -> impl Future<Output = Result<AcmePruned, StoreError>> + Send;
}

impl AcmeAdminStore for Store {
    fn acme_eab_insert(
        &self,
        key: &AcmeEabKey,
        sealed: &[u8],
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::acme_eab_insert(self, key, sealed, audit)
    }
    fn acme_eab_list(&self) -> impl Future<Output = Result<Vec<AcmeEabKey>, StoreError>> + Send {
        Store::acme_eab_list(self)
    }
    fn acme_account_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AcmeAccountSummary>, StoreError>> + Send {
        Store::acme_account_page(self, after, limit)
    }
    fn acme_account(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<AcmeAccount>, StoreError>> + Send {
        Store::acme_account(self, id)
    }
    fn acme_account_orders(
        &self,
        account_id: &str,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AcmeOrder>, StoreError>> + Send {
        Store::acme_account_orders(self, account_id, after, limit)
    }
    fn acme_renewal_override_insert(
        &self,
        id: &str,
        ca_id: Option<&str>,
        certificate_id: Option<&str>,
        start: i64,
        end: i64,
        audit: &AuditEvent,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::acme_renewal_override_insert(self, id, ca_id, certificate_id, start, end, audit, now)
    }
    fn acme_prune(
        &self,
        cutoff: i64,
        now: i64,
    ) -> impl Future<Output = Result<AcmePruned, StoreError>> + Send {
        Store::acme_prune(self, cutoff, now)
    }
}
