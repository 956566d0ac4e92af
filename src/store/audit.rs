//! The audit log: who did what to which object, when, and from where.

use serde::Serialize;
use sqlx::{Any, Executor, Row};

use super::script::Stmt;
use super::{Store, StoreError, from_ts};

/// An event to record alongside a mutation, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// The token (name and id) or `system`.
    pub actor: String,
    /// What happened, as `object.verb` (`certificate.issue`, `ca.create`, ...).
    pub action: String,
    /// The kind of object.
    pub object_type: String,
    /// The object's id, once known.
    pub object_id: Option<String>,
    /// Client address.
    pub source: Option<String>,
    /// Extra facts (never secrets).
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event by `actor` from `source`.
    pub fn new(actor: &str, source: Option<&str>, action: &str, object_type: &str) -> AuditEvent {
        AuditEvent {
            actor: actor.to_string(),
            action: action.to_string(),
            object_type: object_type.to_string(),
            object_id: None,
            source: source.map(str::to_string),
            detail: serde_json::Value::Null,
        }
    }

    /// Set the object id.
    pub fn object(mut self, id: &str) -> Self {
        self.object_id = Some(id.to_string());
        self
    }

    /// Set the detail.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// The detail as stored: JSON text, or nothing when there is none.
    pub(crate) fn stored_detail(&self) -> Option<String> {
        (!self.detail.is_null()).then(|| self.detail.to_string())
    }

    /// Several events in one statement: each with its time and its detail as stored
    /// ([`AuditEvent::stored_detail`], built by the caller).
    pub(crate) async fn write_many<'e, E: Executor<'e, Database = Any>>(
        exec: E,
        engine: super::Engine,
        events: &[(&AuditEvent, i64, Option<&str>)],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO audit_log (at, actor, action, object_type, object_id, source, detail) VALUES {}",
            super::writer::placeholders(engine, events.len(), 7, None)
        );
        let mut q = sqlx::query(&sql);
        for (ev, at, detail) in events {
            q = q
                .bind(*at)
                .bind(&ev.actor)
                .bind(&ev.action)
                .bind(&ev.object_type)
                .bind(&ev.object_id)
                .bind(&ev.source)
                .bind(*detail);
        }
        q.execute(exec).await?;
        Ok(())
    }

    /// This event's insert, recorded at `at`, as a statement of a [`super::script::Script`].
    pub(crate) fn stmt(&self, at: i64) -> Stmt {
        Stmt::new(super::writer::AUDIT_INSERT)
            .bind(at)
            .bind(&self.actor)
            .bind(&self.action)
            .bind(&self.object_type)
            .bind(&self.object_id)
            .bind(&self.source)
            .bind(self.stored_detail())
    }

    pub(crate) async fn write<'e, E: Executor<'e, Database = Any>>(
        &self,
        exec: E,
        at: i64,
    ) -> Result<(), StoreError> {
        self.stmt(at).query().execute(exec).await?;
        Ok(())
    }
}

/// One stored audit entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditRecord {
    /// Sequence number.
    pub id: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    /// `token:<name>:<id>` or `system`.
    pub actor: String,
    /// `object.verb`: `ca.create`, `certificate.issue`, ...
    pub action: String,
    /// Kind of object (`ca`, `profile`, `certificate`, `token`, ...).
    pub object_type: String,
    /// Which object.
    #[schema(required = true)]
    pub object_id: Option<String>,
    /// Client IP address.
    #[schema(required = true)]
    pub source: Option<String>,
    /// Extra facts (any JSON value, or null).
    #[schema(required = true)]
    pub detail: Option<serde_json::Value>,
}

/// Filters for reading the audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<String>,
    /// Only actors containing this text.
    pub actor: Option<String>,
    /// Only entries about this object (its id, or its kind: `certificate`, `ca`, ...).
    pub object: Option<String>,
    /// Only entries at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only entries before this time (Unix seconds).
    pub until: Option<i64>,
    /// Only entries older than this id (the previous page's last id).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: i64,
}

impl Store {
    /// Record an event on its own (for actions with no other write).
    pub async fn audit(&self, ev: &AuditEvent, at: i64) -> Result<(), StoreError> {
        ev.write(&self.writes, at).await
    }

    /// Read the audit log, newest first.
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, object_type, object_id, source, detail FROM audit_log
             WHERE ($1 IS NULL OR action = $1) AND ($2 IS NULL OR id < $2)
               AND ($4 IS NULL OR actor LIKE $4 ESCAPE '\\')
               AND ($5 IS NULL OR object_id = $5 OR object_type = $5)
               AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(&f.action)
        .bind(f.before_id)
        .bind(f.limit)
        .bind(f.actor.as_deref().map(super::contains_pattern))
        .bind(&f.object)
        .bind(f.since)
        .bind(f.until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: Option<String> = r.try_get("detail")?;
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: from_ts(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    object_type: r.try_get("object_type")?,
                    object_id: r.try_get("object_id")?,
                    source: r.try_get("source")?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
