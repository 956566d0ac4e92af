//! Short writes described as data, so that one description runs on both engines.
//!
//! The protocol's bookkeeping writes (an ACME order with its authorizations, a challenge
//! claimed or decided, an order starting to finalize, a rate-limit count) are a few
//! statements each, made on every request. Through sqlx on SQLite every statement of them
//! is a hand-off to the connection's worker thread and back, and the transaction around
//! them is two more. Described as a [`Script`], the same write runs:
//!
//! - on an SQLite file, in the certificate writer's thread ([`super::sqlite_writer`]),
//!   inside its next batch's transaction under a savepoint of its own: one hand-off for the
//!   whole write, and its commit shared with whatever else was waiting;
//! - elsewhere (PostgreSQL, SQLite in memory), as one transaction on the writer pool.
//!
//! Either way the statements run in order and atomically, and a [`Stmt::guard`] statement
//! that changes no row undoes the script and answers [`Outcome::Refused`]: the
//! compare-and-set that keeps replicas from both claiming the same challenge or order.

use sqlx::{Any, Row};

use super::StoreError;

/// One value bound to a statement. Nulls carry their type (PostgreSQL needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    /// An integer, or a null integer.
    Int(Option<i64>),
    /// Text, or null text.
    Text(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(Some(v))
    }
}

impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::Int(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(Some(v.to_owned()))
    }
}

impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(Some(v.clone()))
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(Some(v))
    }
}

impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Val {
        Val::Text(v.map(str::to_owned))
    }
}

impl From<&Option<String>> for Val {
    fn from(v: &Option<String>) -> Val {
        Val::Text(v.clone())
    }
}

impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        Val::Text(v)
    }
}

/// What a statement's result means to its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Run it; what it changed does not matter.
    Plain,
    /// If it changes no row, the script is undone and refused.
    Guard,
    /// It returns one row whose first column (an integer) is the script's value.
    Returning,
}

/// One statement and its values, bound by position: `$n` (or `?n`) gets the n-th value
/// wherever it stands in the text, anonymous `?` the values in order.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    sql: String,
    args: Vec<Val>,
    role: Role,
}

impl Stmt {
    /// A statement with no values bound yet.
    pub(crate) fn new(sql: impl Into<String>) -> Stmt {
        Stmt {
            sql: sql.into(),
            args: Vec::new(),
            role: Role::Plain,
        }
    }

    /// Bind the next value.
    pub(crate) fn bind(mut self, v: impl Into<Val>) -> Stmt {
        self.args.push(v.into());
        self
    }

    /// This statement as a sqlx query, its values bound.
    pub(crate) fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
        bind_sqlx(sqlx::query::<Any>(&self.sql), &self.args)
    }

    /// The script stops here, undone, if this statement changes no row.
    pub(crate) fn guard(mut self) -> Stmt {
        self.role = Role::Guard;
        self
    }

    /// This statement returns one row; its first column (an integer) is the script's value.
    pub(crate) fn returning(mut self) -> Stmt {
        self.role = Role::Returning;
        self
    }
}

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every statement ran and was committed; the value of its [`Stmt::returning`]
    /// statement, if it has one.
    Done(Option<i64>),
    /// A [`Stmt::guard`] statement changed no row: nothing was written.
    Refused,
}

impl Outcome {
    /// Whether the script was committed.
    pub(crate) fn done(self) -> bool {
        matches!(self, Outcome::Done(_))
    }
}

/// A short write: statements that run in order, in one transaction.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    stmts: Vec<Stmt>,
    /// Whether the caller may be answered before the commit is flushed to disk (protocol
    /// bookkeeping a client repeats if a power failure loses it; see
    /// [`super::Store::begin_write_relaxed`]).
    pub(crate) relaxed: bool,
}

impl Script {
    /// A script whose commit is durable before the caller is answered.
    pub(crate) fn durable() -> Script {
        Script {
            stmts: Vec::new(),
            relaxed: false,
        }
    }

    /// A script the caller may be answered for before its commit is flushed.
    pub(crate) fn relaxed() -> Script {
        Script {
            stmts: Vec::new(),
            relaxed: true,
        }
    }

    /// Append a statement.
    pub(crate) fn then(mut self, stmt: Stmt) -> Script {
        self.stmts.push(stmt);
        self
    }

    /// Run every statement on `conn`, inside a transaction the caller owns: on
    /// [`Outcome::Refused`] or an error, the caller rolls back.
    pub(crate) async fn run_sqlx(
        &self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<Outcome, StoreError> {
        let mut value = None;
        for s in &self.stmts {
            let q = s.query();
            match s.role {
                Role::Returning => {
                    let row = q.fetch_one(&mut *conn).await?;
                    value = Some(row.try_get::<i64, _>(0)?);
                }
                Role::Guard => {
                    if q.execute(&mut *conn).await?.rows_affected() == 0 {
                        return Ok(Outcome::Refused);
                    }
                }
                Role::Plain => {
                    q.execute(&mut *conn).await?;
                }
            }
        }
        Ok(Outcome::Done(value))
    }

    /// Run every statement on `conn` (the SQLite writer thread's connection, inside a
    /// savepoint the caller owns: on [`Outcome::Refused`] or an error, it rolls back).
    pub(crate) fn run_rusqlite(&self, conn: &rusqlite::Connection) -> rusqlite::Result<Outcome> {
        let mut value = None;
        for s in &self.stmts {
            let mut stmt = conn.prepare_cached(&s.sql)?;
            bind_rusqlite(&mut stmt, &s.args)?;
            match s.role {
                Role::Returning => {
                    let mut rows = stmt.raw_query();
                    let row = rows.next()?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                    value = Some(row.get::<_, i64>(0)?);
                }
                Role::Guard => {
                    if stmt.raw_execute()? == 0 {
                        return Ok(Outcome::Refused);
                    }
                }
                Role::Plain => {
                    stmt.raw_execute()?;
                }
            }
        }
        Ok(Outcome::Done(value))
    }
}

/// Bind `args` to a sqlx query, in order.
fn bind_sqlx<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Val],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for v in args {
        q = match v {
            Val::Int(i) => q.bind(*i),
            Val::Text(t) => q.bind(t.as_deref()),
        };
    }
    q
}

/// Bind `args` to a prepared rusqlite statement: the n-th value to `$n` (or `?n`) wherever
/// it stands, or to the n-th anonymous `?`.
fn bind_rusqlite(stmt: &mut rusqlite::Statement<'_>, args: &[Val]) -> rusqlite::Result<()> {
    for (i, v) in args.iter().enumerate() {
        let n = i + 1;
        let at = stmt.parameter_index(&format!("${n}"))?.unwrap_or(n);
        match v {
            Val::Int(x) => stmt.raw_bind_parameter(at, x)?,
            Val::Text(x) => stmt.raw_bind_parameter(at, x)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, status TEXT NOT NULL, n BIGINT, note TEXT);
             INSERT INTO t VALUES ('a', 'pending', 0, NULL);",
        )
        .unwrap();
        c
    }

    fn row(c: &rusqlite::Connection, id: &str) -> (String, Option<i64>, Option<String>) {
        c.query_row("SELECT status, n, note FROM t WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
    }

    #[test]
    fn numbered_values_bind_wherever_they_stand() {
        let c = conn();
        // $3 and $1 appear before $2: each must still get its own value.
        let s = Script::durable().then(
            Stmt::new("INSERT INTO t (note, id, status, n) VALUES ($3, $1, $2, $4)")
                .bind("b")
                .bind("valid")
                .bind("third")
                .bind(None::<i64>),
        );
        assert_eq!(s.run_rusqlite(&c).unwrap(), Outcome::Done(None));
        assert_eq!(row(&c, "b"), ("valid".into(), None, Some("third".into())));
    }

    #[test]
    fn a_guard_that_changes_nothing_refuses_and_stops() {
        let c = conn();
        let s = Script::relaxed()
            .then(
                Stmt::new("UPDATE t SET status = 'valid' WHERE id = $1 AND status = 'pending'")
                    .bind("a")
                    .guard(),
            )
            .then(Stmt::new("UPDATE t SET n = n + 1 WHERE id = $1").bind("a"));
        assert_eq!(s.run_rusqlite(&c).unwrap(), Outcome::Done(None));
        assert_eq!(row(&c, "a").0, "valid");
        assert_eq!(row(&c, "a").1, Some(1));
        // The second time the guard finds nothing to change: the next statement never runs.
        assert_eq!(s.run_rusqlite(&c).unwrap(), Outcome::Refused);
        assert_eq!(row(&c, "a").1, Some(1));
    }

    #[test]
    fn a_returning_statement_gives_the_value() {
        let c = conn();
        let s = Script::durable().then(
            Stmt::new("UPDATE t SET n = n + $1 WHERE id = $2 RETURNING n")
                .bind(5)
                .bind("a")
                .returning(),
        );
        assert_eq!(s.run_rusqlite(&c).unwrap(), Outcome::Done(Some(5)));
        assert_eq!(s.run_rusqlite(&c).unwrap(), Outcome::Done(Some(10)));
    }
}
