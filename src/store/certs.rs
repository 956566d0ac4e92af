//! Certificate rows, names for search, and revocations.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use certkeeper_ca::CertInfo;

use super::{AuditEvent, Store, StoreError, from_ts, ts};

/// The start of a condition on a serial number that reaches it through the
/// `(ca_id, serial)` index when no CA is named: one lookup per CA instead of a scan of
/// every certificate.
pub(crate) const SERIAL_IN_ANY_CA: &str = "ca_id IN (SELECT id FROM cas) AND ";

/// A certificate to record. It is durably stored before anyone sees it.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// Id.
    pub id: String,
    /// Issuing CA.
    pub ca_id: String,
    /// Profile it was issued under.
    pub profile_name: Option<String>,
    /// Inventory fields.
    pub info: CertInfo,
    /// DER.
    pub der: Vec<u8>,
    /// Sealed private key, for managed certificates only.
    pub key_sealed: Option<Vec<u8>>,
    /// Who asked.
    pub created_by: String,
    /// When.
    pub created_at: OffsetDateTime,
}

impl NewCertificate {
    /// Every name (DNS and IP) in the certificate, for search.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.info.dns_names.clone();
        v.extend(self.info.ip_addresses.iter().map(|i| i.to_string()));
        v.sort();
        v.dedup();
        v
    }
}

/// Adds `$4` certificates of CA `$1` in state `$2` ending in hour `$3` to their tally
/// (`certificate_tallies`; a negative count takes them away).
pub(crate) const TALLY_ADD: &str = "INSERT INTO certificate_tallies (ca_id, status, expiry_hour, count) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (ca_id, status, expiry_hour) DO UPDATE SET count = certificate_tallies.count + excluded.count";

/// Seconds in the tallies' buckets.
const TALLY_SECONDS: i64 = 3600;

/// The hour a certificate ending at `not_after` (Unix seconds, after 1970) is tallied in:
/// the SQL's `not_after / 3600`.
pub(crate) fn expiry_hour(not_after: i64) -> i64 {
    not_after / TALLY_SECONDS
}

/// How many of `certs` (all valid) each tally gains: (CA, hour) → count, in key order, so
/// that writers on PostgreSQL lock tally rows in one order and cannot deadlock.
pub(crate) fn new_tallies<'a>(
    certs: impl Iterator<Item = &'a NewCertificate>,
) -> std::collections::BTreeMap<(&'a str, i64), i64> {
    let mut t = std::collections::BTreeMap::new();
    for c in certs {
        *t.entry((c.ca_id.as_str(), expiry_hour(ts(c.info.not_after))))
            .or_insert(0) += 1;
    }
    t
}

/// A stored certificate.
#[derive(Debug, Clone)]
pub struct CertRecord {
    /// Id.
    pub id: String,
    /// Issuing CA.
    pub ca_id: String,
    /// Profile.
    pub profile_name: Option<String>,
    /// Serial (hex).
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// Common name.
    pub common_name: Option<String>,
    /// DNS names and IP addresses.
    pub sans: Vec<String>,
    /// Issuer DN.
    pub issuer: String,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// Key type.
    pub key_algorithm: Option<String>,
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// `valid` or `revoked` (expiry is computed from `not_after`).
    pub status: String,
    /// DER.
    pub der: Vec<u8>,
    /// Whether a sealed key is kept (managed certificate).
    pub managed: bool,
    /// Revocation time.
    pub revoked_at: Option<OffsetDateTime>,
    /// Revocation reason code.
    pub revocation_reason: Option<i64>,
    /// When recorded.
    pub created_at: OffsetDateTime,
    /// Who asked.
    pub created_by: String,
}

const COLS: &str = "id, ca_id, profile_name, serial, subject, common_name, sans, issuer, not_before, not_after, key_algorithm, fingerprint, status, der, key_sealed IS NOT NULL AS managed, revoked_at, revocation_reason, created_at, created_by";

fn row_to_cert(r: &AnyRow) -> Result<CertRecord, StoreError> {
    let sans: String = r.try_get("sans")?;
    Ok(CertRecord {
        id: r.try_get("id")?,
        ca_id: r.try_get("ca_id")?,
        profile_name: r.try_get("profile_name")?,
        serial: r.try_get("serial")?,
        subject: r.try_get("subject")?,
        common_name: r.try_get("common_name")?,
        sans: serde_json::from_str(&sans).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        issuer: r.try_get("issuer")?,
        not_before: from_ts(r.try_get("not_before")?),
        not_after: from_ts(r.try_get("not_after")?),
        key_algorithm: r.try_get("key_algorithm")?,
        fingerprint: r.try_get("fingerprint")?,
        status: r.try_get("status")?,
        der: r.try_get("der")?,
        managed: r
            .try_get::<bool, _>("managed")
            .or_else(|_| r.try_get::<i64, _>("managed").map(|v| v != 0))?,
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_ts),
        revocation_reason: r.try_get("revocation_reason")?,
        created_at: from_ts(r.try_get("created_at")?),
        created_by: r.try_get("created_by")?,
    })
}

/// Certificate status as searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatusFilter {
    /// Not revoked and not expired.
    Valid,
    /// Not revoked but past `not_after`.
    Expired,
    /// Revoked.
    Revoked,
}

/// Search filters; all optional, combined with AND; newest first.
#[derive(Debug, Clone, Default)]
pub struct CertFilter {
    /// Issuing CA id.
    pub ca_id: Option<String>,
    /// Profile name.
    pub profile: Option<String>,
    /// Status.
    pub status: Option<CertStatusFilter>,
    /// A DNS name or IP address in the certificate; `*.example.com` or `.example.com`
    /// matches every name below `example.com`.
    pub san: Option<String>,
    /// Serial (hex).
    pub serial: Option<String>,
    /// SHA-256 fingerprint (hex, lower case).
    pub fingerprint: Option<String>,
    /// A tag the certificate carries (inventory tags, by fingerprint).
    pub tag: Option<String>,
    /// Only certificates whose `not_after` is before this.
    pub expiring_before: Option<OffsetDateTime>,
    /// Keyset cursor: the sort key (created_at, or not_after when sorting by expiry) and id
    /// of the previous page's last row.
    pub after: Option<(i64, String)>,
    /// Soonest end first instead of newest first.
    pub by_expiry: bool,
    /// Page size.
    pub limit: i64,
}

/// A value bound to a built query, by position.
pub(super) enum Arg {
    Text(String),
    Int(i64),
}

/// `name` as stored in `certificate_names.name_reversed`, the table's key: lower case, its
/// characters in reverse order, so the names below a domain share a prefix
/// (`*.example.com` is every name from `moc.elpmaxe.` up to, not including,
/// `moc.elpmaxe/`) and the key finds them.
pub(crate) fn reversed_name(name: &str) -> String {
    name.to_ascii_lowercase().chars().rev().collect()
}

/// A subquery of the ids of certificates with a name matching `san`: that name exactly,
/// or with `*.` or `.` before it, any name below it. Its values are bound through `bind`,
/// which returns each one's position.
pub(super) fn names_matching(san: &str, mut bind: impl FnMut(Arg) -> usize) -> String {
    let san = san.trim().trim_end_matches('.').to_ascii_lowercase();
    match san.strip_prefix("*.").or_else(|| san.strip_prefix('.')) {
        Some(base) => {
            let below = reversed_name(base);
            let from = bind(Arg::Text(format!("{below}.")));
            let to = bind(Arg::Text(format!("{below}/")));
            format!(
                "SELECT certificate_id FROM certificate_names WHERE name_reversed >= ${from} AND name_reversed < ${to}"
            )
        }
        None => {
            let n = bind(Arg::Text(reversed_name(&san)));
            format!("SELECT certificate_id FROM certificate_names WHERE name_reversed = ${n}")
        }
    }
}

/// Certificates by state, and valid ones by how soon they end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertCounts {
    /// Valid and not expired.
    pub valid: i64,
    /// Past their end, not revoked.
    pub expired: i64,
    /// Revoked.
    pub revoked: i64,
    /// Valid, ending within 7 days.
    pub expiring_7: i64,
    /// Valid, ending within 30 days.
    pub expiring_30: i64,
    /// Valid, ending within 90 days.
    pub expiring_90: i64,
}

/// Revocation facts for OCSP and CRLs.
#[derive(Debug, Clone)]
pub struct RevocationRecord {
    /// Serial (hex).
    pub serial: String,
    /// When.
    pub revoked_at: OffsetDateTime,
    /// Reason code.
    pub reason: i64,
}

impl Store {
    /// Record an issued certificate with its audit event. Returns once the record is
    /// committed (several concurrent issuances share one commit). With `acme_order`, the
    /// ACME order being finalized becomes valid with this certificate in the same commit
    /// (if it is still `processing`; the answer says whether it did).
    pub async fn insert_certificate(
        &self,
        cert: NewCertificate,
        audit: AuditEvent,
        acme_order: Option<String>,
    ) -> Result<bool, StoreError> {
        self.writer.submit(cert, audit, acme_order).await
    }

    /// A certificate by id.
    pub async fn get_certificate(&self, id: &str) -> Result<CertRecord, StoreError> {
        self.one_by_key(
            &format!("SELECT {COLS} FROM certificates WHERE id = $1"),
            id,
            row_to_cert,
            "certificate",
        )
        .await
    }

    /// The sealed key of a managed certificate.
    pub async fn get_certificate_key(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT key_sealed FROM certificates WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("certificate {id:?}")))?;
        Ok(row.try_get("key_sealed")?)
    }

    /// Search certificates.
    pub async fn search_certificates(
        &self,
        f: &CertFilter,
        now: OffsetDateTime,
    ) -> Result<Vec<CertRecord>, StoreError> {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        fn push(
            conds: &mut Vec<String>,
            args: &mut Vec<Arg>,
            cond: impl Fn(usize) -> String,
            arg: Arg,
        ) {
            args.push(arg);
            conds.push(cond(args.len()));
        }
        if let Some(ca) = &f.ca_id {
            push(
                &mut conds,
                &mut args,
                |n| format!("ca_id = ${n}"),
                Arg::Text(ca.clone()),
            );
        }
        if let Some(p) = &f.profile {
            push(
                &mut conds,
                &mut args,
                |n| format!("profile_name = ${n}"),
                Arg::Text(p.clone()),
            );
        }
        if let Some(s) = &f.serial {
            // Without a CA, every CA's range of the (ca_id, serial) key is looked up: a
            // serial alone is not a key of any index, and would scan the table.
            let by_ca = if f.ca_id.is_some() {
                ""
            } else {
                SERIAL_IN_ANY_CA
            };
            push(
                &mut conds,
                &mut args,
                |n| format!("{by_ca}serial = ${n}"),
                Arg::Text(s.to_ascii_lowercase()),
            );
        }
        if let Some(fp) = &f.fingerprint {
            push(
                &mut conds,
                &mut args,
                |n| format!("fingerprint = ${n}"),
                Arg::Text(fp.to_ascii_lowercase()),
            );
        }
        if let Some(tag) = &f.tag {
            push(
                &mut conds,
                &mut args,
                |n| {
                    format!(
                        "fingerprint IN (SELECT fingerprint FROM inventory_tags WHERE tag = ${n})"
                    )
                },
                Arg::Text(tag.clone()),
            );
        }
        match f.status {
            Some(CertStatusFilter::Valid) => push(
                &mut conds,
                &mut args,
                |n| format!("status = 'valid' AND not_after >= ${n}"),
                Arg::Int(ts(now)),
            ),
            Some(CertStatusFilter::Expired) => push(
                &mut conds,
                &mut args,
                |n| format!("status = 'valid' AND not_after < ${n}"),
                Arg::Int(ts(now)),
            ),
            Some(CertStatusFilter::Revoked) => conds.push("status = 'revoked'".into()),
            None => {}
        }
        if let Some(san) = &f.san {
            let ids = names_matching(san, |a| {
                args.push(a);
                args.len()
            });
            conds.push(format!("id IN ({ids})"));
        }
        if let Some(t) = f.expiring_before {
            push(
                &mut conds,
                &mut args,
                |n| format!("not_after < ${n}"),
                Arg::Int(ts(t)),
            );
        }
        if let Some((at, id)) = &f.after {
            args.push(Arg::Int(*at));
            args.push(Arg::Text(id.clone()));
            let (a, b) = (args.len() - 1, args.len());
            conds.push(if f.by_expiry {
                format!("(not_after > ${a} OR (not_after = ${a} AND id > ${b}))")
            } else {
                format!("(created_at < ${a} OR (created_at = ${a} AND id < ${b}))")
            });
        }
        args.push(Arg::Int(f.limit));
        let limit_n = args.len();
        let where_clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let order = if f.by_expiry {
            "not_after ASC, id ASC"
        } else {
            "created_at DESC, id DESC"
        };
        let sql = format!(
            "SELECT {COLS} FROM certificates {where_clause} ORDER BY {order} LIMIT ${limit_n}"
        );
        let mut q = sqlx::query(&sql);
        for a in args {
            q = match a {
                Arg::Text(s) => q.bind(s),
                Arg::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(row_to_cert).collect()
    }

    /// How many certificates are in each state at `now`, and how many valid ones end
    /// within 7, 30 and 90 days of it. Read from the tallies by hour of expiry, plus the
    /// certificates ending in the hours that `now` and the windows' ends fall in, in one
    /// statement (one snapshot).
    pub async fn certificate_counts(&self, now: OffsetDateTime) -> Result<CertCounts, StoreError> {
        let day = 86_400;
        let n = ts(now);
        let bounds = [n, n + 7 * day, n + 30 * day, n + 90 * day];
        // Valid certificates ending before bound `b` ($b: the bound, its hour's start,
        // its hour): those of the tallies' earlier hours, and those of its hour before it.
        let before = |b: usize| {
            let (at, start, hour) = (3 * b + 1, 3 * b + 2, 3 * b + 3);
            format!(
                "(SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM certificate_tallies WHERE status = 'valid' AND expiry_hour < ${hour}) + \
                 (SELECT COUNT(*) FROM certificates WHERE status = 'valid' AND not_after >= ${start} AND not_after < ${at})"
            )
        };
        let sql = format!(
            "SELECT \
               (SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM certificate_tallies WHERE status = 'valid'), \
               (SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM certificate_tallies WHERE status = 'revoked'), \
               {}, {}, {}, {}",
            before(0),
            before(1),
            before(2),
            before(3)
        );
        let mut q = sqlx::query(&sql);
        for b in bounds {
            let hour = expiry_hour(b);
            q = q.bind(b).bind(hour * TALLY_SECONDS).bind(hour);
        }
        let row = q.fetch_one(&self.pool).await?;
        let get = |i: usize| -> Result<i64, StoreError> { Ok(row.try_get::<i64, _>(i)?) };
        let (valid, revoked) = (get(0)?, get(1)?);
        let before = [get(2)?, get(3)?, get(4)?, get(5)?];
        Ok(CertCounts {
            valid: valid - before[0],
            expired: before[0],
            revoked,
            expiring_7: before[1] - before[0],
            expiring_30: before[2] - before[0],
            expiring_90: before[3] - before[0],
        })
    }

    /// How many certificates each CA has issued, by CA id.
    pub async fn issued_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT ca_id, CAST(SUM(count) AS BIGINT) FROM certificate_tallies GROUP BY ca_id HAVING SUM(count) > 0",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// Count every certificate into `certificate_tallies` again, for stores filled
    /// without the store's writes (benchmarks' set-based fills).
    pub async fn recount_certificate_tallies(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM certificate_tallies")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO certificate_tallies (ca_id, status, expiry_hour, count) \
             SELECT ca_id, status, not_after / 3600, COUNT(*) FROM certificates \
             GROUP BY ca_id, status, not_after / 3600",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revoke a valid certificate, in one transaction with its revocation row and audit event.
    pub async fn revoke_certificate(
        &self,
        id: &str,
        reason: i64,
        by: &str,
        audit: &AuditEvent,
        now: OffsetDateTime,
    ) -> Result<CertRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2 WHERE id = $3 AND status = 'valid'",
        )
        .bind(ts(now))
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            let exists = sqlx::query("SELECT status FROM certificates WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::Conflict("the certificate is already revoked".into()),
                None => StoreError::NotFound(format!("certificate {id:?}")),
            });
        }
        sqlx::query(
            "INSERT INTO revocations (certificate_id, ca_id, serial, reason, revoked_at, revoked_by)
             SELECT id, ca_id, serial, $1, $2, $3 FROM certificates WHERE id = $4",
        )
        .bind(reason)
        .bind(ts(now))
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit.write(&mut *tx, ts(now)).await?;
        let row = sqlx::query(&format!("SELECT {COLS} FROM certificates WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let cert = row_to_cert(&row)?;
        // From the valid tally to the revoked one ('revoked' first: the order every writer
        // takes tally rows in).
        let hour = expiry_hour(ts(cert.not_after));
        for (status, count) in [("revoked", 1i64), ("valid", -1)] {
            sqlx::query(TALLY_ADD)
                .bind(&cert.ca_id)
                .bind(status)
                .bind(hour)
                .bind(count)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(cert)
    }

    /// The status of a serial under a CA: `None` if the CA never issued it, else (status,
    /// revoked_at, reason).
    pub async fn certificate_status(
        &self,
        ca_id: &str,
        serial: &str,
    ) -> Result<Option<(String, Option<i64>, Option<i64>)>, StoreError> {
        let row = sqlx::query("SELECT status, revoked_at, revocation_reason FROM certificates WHERE ca_id = $1 AND serial = $2")
            .bind(ca_id)
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((
                r.try_get("status")?,
                r.try_get("revoked_at")?,
                r.try_get("revocation_reason")?,
            )),
            None => None,
        })
    }
}

/// The revocations of a CA's certificates, oldest first, read on `conn` (inside the
/// transaction that takes the CRL number: see [`Store::crl_snapshot`]).
pub(super) async fn revocations_for_ca(
    conn: &mut sqlx::AnyConnection,
    ca_id: &str,
) -> Result<Vec<RevocationRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT serial, revoked_at, reason FROM revocations WHERE ca_id = $1 ORDER BY revoked_at",
    )
    .bind(ca_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RevocationRecord {
                serial: r.try_get("serial")?,
                revoked_at: from_ts(r.try_get("revoked_at")?),
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Engine, migrator};

    /// The subquery `names_matching` builds for `san`, and the values it binds.
    fn matching(san: &str) -> (String, Vec<String>) {
        let mut bound = Vec::new();
        let sql = names_matching(san, |a| {
            bound.push(match a {
                Arg::Text(t) => t,
                Arg::Int(i) => i.to_string(),
            });
            bound.len()
        });
        (sql, bound)
    }

    #[test]
    fn a_domain_search_is_the_range_of_its_reversed_names() {
        assert_eq!(reversed_name("www.Example.COM"), "moc.elpmaxe.www");
        let (sql, bound) = matching(" *.Example.com. ");
        assert!(
            sql.contains("name_reversed >= $1 AND name_reversed < $2"),
            "{sql}"
        );
        assert_eq!(bound, ["moc.elpmaxe.", "moc.elpmaxe/"]);
        let (sql, exact) = matching("WWW.example.com.");
        assert!(sql.ends_with("WHERE name_reversed = $1"), "{sql}");
        assert_eq!(exact, ["moc.elpmaxe.www"]);
        // Inside the range: every name below the domain, and nothing else.
        let (from, to) = (&bound[0], &bound[1]);
        let within = |n: &str| {
            let r = reversed_name(n);
            &r >= from && &r < to
        };
        assert!(within("a.example.com") && within("x.y.example.com"));
        assert!(!within("example.com") && !within("badexample.com"));
        assert!(!within("example.com.evil") && !within("a.example.co"));
    }

    /// A serial without its CA is found through the `(ca_id, serial)` index, one lookup
    /// per CA: the serial alone would scan every certificate (the ACME renewal
    /// information of RFC 9773 names a certificate by serial and key identifier, and is
    /// asked for without authentication).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_serial_without_its_ca_is_looked_up_not_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings::load(dir.path(), None).unwrap();
        let store = Store::connect(&settings).await.unwrap();
        let plan = |sql: String| {
            let store = store.clone();
            async move {
                let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .bind("0a")
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
                rows.iter()
                    .map(|r| r.get::<String, _>("detail"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let scanned = plan("SELECT id FROM certificates WHERE serial = $1".into()).await;
        assert!(scanned.contains("SCAN certificates"), "{scanned}");
        let looked_up = plan(format!(
            "SELECT id FROM certificates WHERE {SERIAL_IN_ANY_CA}serial = $1"
        ))
        .await;
        assert!(
            looked_up.contains("SEARCH certificates USING INDEX")
                && looked_up.contains("ca_id=? AND serial=?")
                && !looked_up.contains("SCAN certificates"),
            "{looked_up}"
        );
    }

    /// The counts from the tallies equal the counts over every certificate, with
    /// certificates ending on each side of `now` and of each window's end, in the hour
    /// `now` falls in, and after revocations; `recount_certificate_tallies` gives the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_from_tallies_match_counting_every_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings::load(dir.path(), None).unwrap();
        let store = Store::connect(&settings).await.unwrap();
        for ca in ["ca1", "ca2"] {
            sqlx::query(&format!(
                "INSERT INTO cas (id, name, kind, status, subject, key_algorithm, key_sealed, created_at)
                 VALUES ('{ca}', '{ca}', 'root', 'active', 'CN={ca}', 'ECDSA P-256', x'00', 0)"
            ))
            .execute(store.pool())
            .await
            .unwrap();
        }
        // Half past an hour.
        let now = OffsetDateTime::from_unix_timestamp(1_800_001_800).unwrap();
        let day = 86_400;
        let mut offsets = vec![-400 * day, -7200, -1801, -1800, -1, 0, 1, 1799, 1800, 5000];
        for d in [7, 30, 90] {
            offsets.extend([d * day - 1, d * day, d * day + 1, d * day + 1800]);
        }
        offsets.push(400 * day);
        let mut ids = Vec::new();
        for (i, off) in offsets.iter().enumerate() {
            let mut c = crate::store::sqlite_writer::tests::cert(
                i,
                if i % 3 == 0 { "ca2" } else { "ca1" },
                &format!("{i:064x}"),
            );
            c.info.not_after = now + time::Duration::seconds(*off);
            ids.push(c.id.clone());
            let ev = AuditEvent::new("token:test", None, "certificate.issue", "certificate")
                .object(&c.id);
            store.insert_certificate(c, ev, None).await.unwrap();
        }
        let counted = |store: Store| async move {
            let n = ts(now);
            let row = sqlx::query(
                "SELECT \
                   SUM(CASE WHEN status = 'valid' AND not_after >= $1 THEN 1 ELSE 0 END), \
                   SUM(CASE WHEN status = 'valid' AND not_after < $1 THEN 1 ELSE 0 END), \
                   SUM(CASE WHEN status = 'revoked' THEN 1 ELSE 0 END), \
                   SUM(CASE WHEN status = 'valid' AND not_after >= $1 AND not_after < $2 THEN 1 ELSE 0 END), \
                   SUM(CASE WHEN status = 'valid' AND not_after >= $1 AND not_after < $3 THEN 1 ELSE 0 END), \
                   SUM(CASE WHEN status = 'valid' AND not_after >= $1 AND not_after < $4 THEN 1 ELSE 0 END) \
                 FROM certificates",
            )
            .bind(n)
            .bind(n + 7 * day)
            .bind(n + 30 * day)
            .bind(n + 90 * day)
            .fetch_one(store.pool())
            .await
            .unwrap();
            let g = |i: usize| row.get::<i64, _>(i);
            CertCounts {
                valid: g(0),
                expired: g(1),
                revoked: g(2),
                expiring_7: g(3),
                expiring_30: g(4),
                expiring_90: g(5),
            }
        };
        let counts = store.certificate_counts(now).await.unwrap();
        assert_eq!(counts, counted(store.clone()).await);
        assert_eq!(counts.expired, 5, "{counts:?}");
        // Revoked: one in the hour `now` falls in, one long past, one inside 7 days.
        for i in [3, 0, 10] {
            let ev = AuditEvent::new("token:test", None, "certificate.revoke", "certificate");
            store
                .revoke_certificate(&ids[i], 1, "test", &ev, now)
                .await
                .unwrap();
        }
        let counts = store.certificate_counts(now).await.unwrap();
        assert_eq!(counts, counted(store.clone()).await);
        assert_eq!(counts.revoked, 3);
        let issued = store.issued_counts().await.unwrap();
        let total: i64 = issued.iter().map(|(_, n)| n).sum();
        assert_eq!(total, offsets.len() as i64, "{issued:?}");
        // The same tallies again from the certificates themselves.
        store.recount_certificate_tallies().await.unwrap();
        assert_eq!(store.certificate_counts(now).await.unwrap(), counts);
        assert_eq!(store.issued_counts().await.unwrap(), issued);
    }

    /// Names recorded before `name_reversed` existed get it from the migration that adds
    /// it, so a domain search finds them too.
    #[tokio::test]
    async fn the_migration_reverses_names_already_stored() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, "PRAGMA foreign_keys = OFF").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .unwrap();
        let mut before = migrator(Engine::Sqlite);
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version < 26)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        before.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO certificate_names (name, certificate_id) VALUES ('www.Example.com', 'c1'), ('10.0.0.1', 'c2')",
        )
        .execute(&pool)
        .await
        .unwrap();
        migrator(Engine::Sqlite).run(&pool).await.unwrap();
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, name_reversed FROM certificate_names ORDER BY name")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            rows,
            [
                ("10.0.0.1".to_string(), "1.0.0.01".to_string()),
                ("www.Example.com".to_string(), "moc.elpmaxe.www".to_string()),
            ]
        );
    }
}
