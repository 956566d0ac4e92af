//! CA rows.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{AuditEvent, Store, StoreError, from_ts, ts};

/// A CA as stored. Never serialised with its key.
#[derive(Debug, Clone)]
pub struct CaRecord {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Issuer CA when it is ours.
    pub parent_id: Option<String>,
    /// `root`, `intermediate`, `imported` or `external`.
    pub kind: String,
    /// `active`, `pending` or `disabled`.
    pub status: String,
    /// Subject DN.
    pub subject: String,
    /// Key type.
    pub key_algorithm: String,
    /// Certificate, once there is one.
    pub cert_der: Option<Vec<u8>>,
    /// Certificates above it that came with an import or installation (PEM).
    pub chain_pem: Option<String>,
    /// CSR of a pending CA.
    pub csr_der: Option<Vec<u8>>,
    /// Sealed private key; empty when the key is in a PKCS#11 token.
    pub key_sealed: Vec<u8>,
    /// The RFC 7512 URI of the key when it is in a PKCS#11 token.
    pub key_ref: Option<String>,
    /// Serial (hex).
    pub serial: Option<String>,
    /// SHA-256 fingerprint.
    pub fingerprint: Option<String>,
    /// Validity start.
    pub not_before: Option<OffsetDateTime>,
    /// Validity end.
    pub not_after: Option<OffsetDateTime>,
    /// pathLenConstraint.
    pub path_len: Option<i64>,
    /// Delegated OCSP responder certificate.
    pub ocsp_cert_der: Option<Vec<u8>>,
    /// Its sealed key.
    pub ocsp_key_sealed: Option<Vec<u8>>,
    /// When created.
    pub created_at: OffsetDateTime,
    /// The CA that issues in this one's place from [`CaRecord::successor_from`] (rollover).
    pub successor_id: Option<String>,
    /// When the successor takes over.
    pub successor_from: Option<OffsetDateTime>,
}

impl CaRecord {
    /// The successor that issues in this CA's place at `now`, if the rollover has begun.
    pub fn successor_at(&self, now: OffsetDateTime) -> Option<&str> {
        match (&self.successor_id, self.successor_from) {
            (Some(s), Some(from)) if from <= now => Some(s),
            _ => None,
        }
    }
}

/// A cross certificate: one CA's name and key signed by another CA of ours.
#[derive(Debug, Clone)]
pub struct CrossCertRecord {
    /// Id.
    pub id: String,
    /// The CA whose name and key the certificate carries.
    pub subject_ca_id: String,
    /// The CA that signed it.
    pub issuer_ca_id: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Serial (hex).
    pub serial: String,
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
}

/// Fields of a new CA row.
#[derive(Debug, Clone)]
pub struct NewCaRecord {
    /// Id (chosen by the caller: it is bound into the sealed key).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Issuer CA when it is ours.
    pub parent_id: Option<String>,
    /// Kind.
    pub kind: &'static str,
    /// Status.
    pub status: &'static str,
    /// Subject DN.
    pub subject: String,
    /// Key type.
    pub key_algorithm: String,
    /// Certificate.
    pub cert_der: Option<Vec<u8>>,
    /// Chain above (PEM).
    pub chain_pem: Option<String>,
    /// CSR for pending CAs.
    pub csr_der: Option<Vec<u8>>,
    /// Sealed key; empty when the key is in a PKCS#11 token.
    pub key_sealed: Vec<u8>,
    /// The RFC 7512 URI of the key when it is in a PKCS#11 token.
    pub key_ref: Option<String>,
    /// Inventory fields when the certificate exists.
    pub info: Option<certkeeper_ca::CertInfo>,
}

const COLS: &str = "id, name, parent_id, kind, status, subject, key_algorithm, cert_der, chain_pem, csr_der, key_sealed, serial, fingerprint, not_before, not_after, path_len, ocsp_cert_der, ocsp_key_sealed, created_at, successor_id, successor_from, key_ref";

fn row_to_ca(r: &AnyRow) -> Result<CaRecord, sqlx::Error> {
    Ok(CaRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        parent_id: r.try_get("parent_id")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        subject: r.try_get("subject")?,
        key_algorithm: r.try_get("key_algorithm")?,
        cert_der: r.try_get("cert_der")?,
        chain_pem: r.try_get("chain_pem")?,
        csr_der: r.try_get("csr_der")?,
        key_sealed: r.try_get("key_sealed")?,
        key_ref: r.try_get("key_ref")?,
        serial: r.try_get("serial")?,
        fingerprint: r.try_get("fingerprint")?,
        not_before: r.try_get::<Option<i64>, _>("not_before")?.map(from_ts),
        not_after: r.try_get::<Option<i64>, _>("not_after")?.map(from_ts),
        path_len: r.try_get("path_len")?,
        ocsp_cert_der: r.try_get("ocsp_cert_der")?,
        ocsp_key_sealed: r.try_get("ocsp_key_sealed")?,
        created_at: from_ts(r.try_get("created_at")?),
        successor_id: r.try_get("successor_id")?,
        successor_from: r.try_get::<Option<i64>, _>("successor_from")?.map(from_ts),
    })
}

fn row_to_cross(r: &AnyRow) -> Result<CrossCertRecord, sqlx::Error> {
    Ok(CrossCertRecord {
        id: r.try_get("id")?,
        subject_ca_id: r.try_get("subject_ca_id")?,
        issuer_ca_id: r.try_get("issuer_ca_id")?,
        cert_der: r.try_get("cert_der")?,
        serial: r.try_get("serial")?,
        fingerprint: r.try_get("fingerprint")?,
        not_before: from_ts(r.try_get("not_before")?),
        not_after: from_ts(r.try_get("not_after")?),
    })
}

/// Insert a CA row inside `tx`.
pub(super) async fn insert_ca_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ca: &NewCaRecord,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let info = ca.info.as_ref();
    sqlx::query(
        "INSERT INTO cas (id, name, parent_id, kind, status, subject, key_algorithm, cert_der, chain_pem, csr_der, key_sealed, serial, fingerprint, not_before, not_after, path_len, created_at, key_ref)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&ca.id)
    .bind(&ca.name)
    .bind(&ca.parent_id)
    .bind(ca.kind)
    .bind(ca.status)
    .bind(&ca.subject)
    .bind(&ca.key_algorithm)
    .bind(&ca.cert_der)
    .bind(&ca.chain_pem)
    .bind(&ca.csr_der)
    .bind(&ca.key_sealed)
    .bind(info.map(|i| i.serial.clone()))
    .bind(info.map(|i| i.fingerprint_sha256.clone()))
    .bind(info.map(|i| ts(i.not_before)))
    .bind(info.map(|i| ts(i.not_after)))
    .bind(info.and_then(|i| i.path_len).map(i64::from))
    .bind(ts(now))
    .bind(&ca.key_ref)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The successor of a rollover: a new CA row, or one that already exists.
#[derive(Debug)]
pub enum Successor<'a> {
    /// A CA made for the rollover, inserted with it.
    New(&'a NewCaRecord),
    /// An active CA of ours (by id).
    Existing(&'a str),
}

impl Store {
    /// Insert a CA and its audit event.
    pub async fn insert_ca(
        &self,
        ca: &NewCaRecord,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_ca_row(&mut tx, ca, now).await?;
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Roll `predecessor` over to `successor` from `from`: the successor (inserted when
    /// new), the link, the cross certificates and the audit event in one transaction.
    /// Refused when the predecessor already has a successor.
    pub async fn roll_over_ca(
        &self,
        predecessor: &str,
        successor: Successor<'_>,
        from: OffsetDateTime,
        cross: &[CrossCertRecord],
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let successor_id = match successor {
            Successor::New(ca) => {
                insert_ca_row(&mut tx, ca, now).await?;
                ca.id.as_str()
            }
            Successor::Existing(id) => id,
        };
        let done = sqlx::query(
            "UPDATE cas SET successor_id = $1, successor_from = $2
             WHERE id = $3 AND successor_id IS NULL AND status = 'active'",
        )
        .bind(successor_id)
        .bind(ts(from))
        .bind(predecessor)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(
                "the CA already has a successor (or is not active)".into(),
            ));
        }
        for c in cross {
            sqlx::query(
                "INSERT INTO ca_cross_certificates (id, subject_ca_id, issuer_ca_id, cert_der, serial, fingerprint, not_before, not_after, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&c.id)
            .bind(&c.subject_ca_id)
            .bind(&c.issuer_ca_id)
            .bind(&c.cert_der)
            .bind(&c.serial)
            .bind(&c.fingerprint)
            .bind(ts(c.not_before))
            .bind(ts(c.not_after))
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The cross certificates a CA is the subject or the issuer of, oldest first.
    pub async fn cross_certificates(
        &self,
        ca_id: &str,
    ) -> Result<Vec<CrossCertRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subject_ca_id, issuer_ca_id, cert_der, serial, fingerprint, not_before, not_after
             FROM ca_cross_certificates WHERE subject_ca_id = $1 OR issuer_ca_id = $1
             ORDER BY created_at, id",
        )
        .bind(ca_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_to_cross).collect::<Result<_, _>>()?)
    }

    /// A CA by id or by name.
    pub async fn get_ca(&self, id_or_name: &str) -> Result<CaRecord, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM cas WHERE id = $1 OR name = $1"
        ))
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("CA {id_or_name:?}")))?;
        Ok(row_to_ca(&row)?)
    }

    /// All CAs, oldest first.
    pub async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM cas ORDER BY created_at, name"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(row_to_ca).collect::<Result<_, _>>()?)
    }

    /// Install the signed certificate of a pending CA (only while it is still pending).
    pub async fn install_ca_certificate(
        &self,
        id: &str,
        cert_der: &[u8],
        chain_pem: Option<&str>,
        info: &certkeeper_ca::CertInfo,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE cas SET cert_der = $1, chain_pem = $2, status = 'active', subject = $3, serial = $4, fingerprint = $5,
             not_before = $6, not_after = $7, path_len = $8, csr_der = NULL WHERE id = $9 AND status = 'pending'",
        )
        .bind(cert_der)
        .bind(chain_pem)
        .bind(&info.subject)
        .bind(&info.serial)
        .bind(&info.fingerprint_sha256)
        .bind(ts(info.not_before))
        .bind(ts(info.not_after))
        .bind(info.path_len.map(i64::from))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(
                "the CA is not pending a certificate".into(),
            ));
        }
        audit.write(&mut *tx, ts(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Store a delegated OCSP responder for a CA.
    pub async fn set_ocsp_responder(
        &self,
        id: &str,
        cert_der: &[u8],
        key_sealed: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE cas SET ocsp_cert_der = $1, ocsp_key_sealed = $2 WHERE id = $3")
            .bind(cert_der)
            .bind(key_sealed)
            .bind(id)
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    /// Take the next CRL number for a CA and read its revocations, in one transaction. The
    /// number's row stays locked until the read is done, so a higher number always comes
    /// with a snapshot that holds every revocation a lower number's did, and every
    /// revocation committed before the number was taken: the CRL kept (the highest number,
    /// see [`Store::put_crl`]) never loses a revocation to a regeneration that read earlier.
    pub async fn crl_snapshot(
        &self,
        ca_id: &str,
    ) -> Result<(i64, Vec<super::RevocationRecord>), StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE cas SET crl_number = crl_number + 1 WHERE id = $1 RETURNING crl_number",
        )
        .bind(ca_id)
        .fetch_one(&mut *tx)
        .await?;
        let number: i64 = row.try_get(0)?;
        let revoked = super::certs::revocations_for_ca(&mut tx, ca_id).await?;
        tx.commit().await?;
        Ok((number, revoked))
    }

    /// Store a CRL unless a newer one is already stored.
    pub async fn put_crl(
        &self,
        ca_id: &str,
        number: i64,
        this_update: i64,
        next_update: i64,
        der: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO crls (ca_id, crl_number, this_update, next_update, der) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (ca_id) DO UPDATE SET crl_number = excluded.crl_number, this_update = excluded.this_update,
             next_update = excluded.next_update, der = excluded.der WHERE crls.crl_number < excluded.crl_number",
        )
        .bind(ca_id)
        .bind(number)
        .bind(this_update)
        .bind(next_update)
        .bind(der)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// The current CRL of a CA: (DER, next_update).
    pub async fn get_crl(&self, ca_id: &str) -> Result<Option<(Vec<u8>, i64, i64)>, StoreError> {
        let row = sqlx::query("SELECT der, this_update, next_update FROM crls WHERE ca_id = $1")
            .bind(ca_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((
                r.try_get("der")?,
                r.try_get("this_update")?,
                r.try_get("next_update")?,
            )),
            None => None,
        })
    }

    /// The current CRL of every CA that has one: (CA id, CRL number, thisUpdate, nextUpdate).
    pub async fn crl_summaries(&self) -> Result<Vec<(String, i64, i64, i64)>, StoreError> {
        let rows = sqlx::query("SELECT ca_id, crl_number, this_update, next_update FROM crls")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }

    /// Active CAs whose CRL is missing or due for refresh before `due_before`.
    pub async fn cas_needing_crl(&self, due_before: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id FROM cas c LEFT JOIN crls l ON l.ca_id = c.id
             WHERE c.status = 'active' AND (l.ca_id IS NULL OR l.next_update < $1)",
        )
        .bind(due_before)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }
}
