//! Narrow views of the store, split by need (read, write, admin), so that each service
//! reaches only the tables it owns. [`Store`] implements every one of them, for SQLite and
//! PostgreSQL alike; a service names the view it needs and the compiler keeps it there.

use std::future::Future;

use time::OffsetDateTime;

use crate::store::{
    AuditEvent, AuditFilter, AuditRecord, EstCredential, EstLabel, ProfileRecord, Store,
    StoreError, TokenRecord,
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
