//! SQL and nothing else. Two backends through sqlx's `Any` driver: SQL is written once in the
//! dialect SQLite and PostgreSQL share (`$n` parameters, `ON CONFLICT`, `RETURNING`, CTEs);
//! where the dialects really differ, a function branches on [`Backend`].
//!
//! Conventions that keep the one-dialect approach honest:
//! - ids are UUID strings (TEXT), times are Unix milliseconds (BIGINT), flags are 0/1 integers
//!   (the `Any` driver cannot decode SQLite integers as booleans), JSON is TEXT;
//! - every integer column is BIGINT on PostgreSQL so both backends decode to `i64`.

pub mod announcements;
pub mod audit;
pub mod batch;
pub mod calendar;
pub mod checklists;
pub mod establishments;
pub mod followup;
pub mod group;
pub mod inspection_detail;
pub mod inspection_flags;
pub mod jobs;
pub mod lists;
pub mod plans;
pub mod public;
pub mod queues;
pub mod review;
pub mod sample_attachments;
pub mod sample_facts;
pub mod sampling;
pub mod sampling_plans;
pub mod stats;
pub mod sync;
pub mod throttle;
pub mod tokens;
pub mod uploads;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("database URL must start with sqlite: or postgres:")
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The database handle shared by the HTTP edge, the CLI and background work.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time, and a deferred transaction that reads before it
    /// writes fails at once with SQLITE_BUSY when another writer got in first. Serialising
    /// write transactions in-process turns that into orderly queueing. PostgreSQL needs none.
    write_lock: Option<Arc<Mutex<()>>>,
    /// SQLite: the group-commit runner behind [`Db::grouped_write`].
    group: Option<Arc<group::GroupCommit>>,
    /// Published checklist contents, parsed once (they never change).
    published: Arc<checklists::PublishedContents>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

/// A write transaction; on SQLite it also holds the process-wide writer lock.
pub struct WriteTx {
    /// `None` once committed.
    tx: Option<Transaction<'static, Any>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub fn conn(&mut self) -> &mut AnyConnection {
        let tx = self
            .tx
            .as_mut()
            .expect("a write transaction is open until commit");
        tx
    }
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let tx = self.tx.take().expect("a write transaction commits once");
        tx.commit().await
    }
}

impl Drop for WriteTx {
    /// A use case that fails drops its transaction. The rollback is awaited *before* the
    /// SQLite writer lock is released: released first, the next writer could start while this
    /// connection still holds SQLite's write lock and fail with "database is locked".
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        let guard = self.guard.take();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = tx.rollback().await;
                    drop(guard);
                });
            }
            // No runtime (shutdown): sqlx rolls back when the connection is dropped.
            Err(_) => drop((tx, guard)),
        }
    }
}

impl Db {
    /// Connects (creating the SQLite file if needed) without migrating.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut options: AnyConnectOptions = url
            .parse()
            .with_context(|| format!("invalid {} database URL", backend.name()))?;
        // Statements are not logged: bulk statements are huge, and request spans already
        // carry latencies.
        options = sqlx::ConnectOptions::disable_statement_logging(options);
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            pool_options = pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; FULL makes a 2xx mean "on disk".
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to the {} database", backend.name()))?;
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let group = write_lock
            .as_ref()
            .map(|lock| Arc::new(group::GroupCommit::new(pool.clone(), lock.clone())));
        Ok(Db {
            pool,
            backend,
            write_lock,
            group,
            published: Arc::default(),
        })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        if self.backend == Backend::Postgres {
            migrator
                .run(&self.pool)
                .await
                .context("applying database migrations")?;
            // Sync positions above every stored one, also after a restore (0037).
            let mut conn = self.pool.acquire().await?;
            sync::ensure_xid_offset(&mut conn)
                .await
                .context("checking the sync position offset")?;
            return Ok(());
        }
        // SQLite changes a column's constraints only by rebuilding its table (0014 rebuilds
        // `tasks`), and dropping a parent table with foreign keys on would cascade-check its
        // children mid-rebuild. So, as SQLite's ALTER TABLE procedure says: keys off on one
        // connection for the migrations, every key checked after, keys on again.
        let mut conn = self.pool.acquire().await?;
        conn.execute("PRAGMA foreign_keys = OFF").await?;
        let ran = migrator.run(&mut *conn).await;
        // (table, rowid, parent table, key index) per broken reference.
        type Broken = (String, Option<i64>, String, i64);
        let broken: Result<Vec<Broken>, _> = sqlx::query_as("PRAGMA foreign_key_check")
            .fetch_all(&mut *conn)
            .await;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        ran.context("applying database migrations")?;
        let broken = broken.context("checking foreign keys after the migrations")?;
        if let Some((table, rowid, parent, _)) = broken.first() {
            anyhow::bail!(
                "after the migrations, {table} row {rowid:?} names a missing {parent} \
                 ({} broken references in all)",
                broken.len()
            );
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The process's copy of published checklist contents (see [`checklists::PublishedContents`]).
    pub fn published_contents(&self) -> Arc<checklists::PublishedContents> {
        self.published.clone()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A connection for reads that need no transaction.
    pub async fn acquire(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        self.pool.acquire().await
    }

    /// Begins a write transaction.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        // SQLite: IMMEDIATE takes the write lock now (waiting `busy_timeout` for another
        // process, e.g. the CLI), so a transaction that reads first never fails upgrading.
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx: Some(tx),
            guard,
        })
    }

    /// Runs `job` as one all-or-nothing write: on PostgreSQL in a transaction of its own; on
    /// SQLite in a savepoint of a batch that commits concurrent writes together (see
    /// [`group`]). Either way the answer comes after the commit: `Ok` means on disk, `Err` means
    /// nothing of the job is applied. `job` must not begin a transaction of its own.
    pub async fn grouped_write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> futures::future::BoxFuture<'c, Result<T, E>>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<group::GroupError> + From<sqlx::Error> + Send + 'static,
    {
        if let Some(group) = &self.group {
            return group.run(job).await;
        }
        let mut tx = self.begin_write().await?;
        let out = job(tx.conn()).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The group commit's counters so far (SQLite; `None` on PostgreSQL).
    pub fn group_commit_stats(&self) -> Option<group::GroupStats> {
        self.group.as_ref().map(|g| g.stats())
    }

    /// Sets the group commit's batch bounds (SQLite; nothing on PostgreSQL): at most `jobs`
    /// writes per commit, and no new one taken after `time`. Defaults: [`group::MAX_JOBS`],
    /// [`group::MAX_BATCH_TIME`].
    pub fn set_group_commit_bounds(&self, jobs: usize, time: std::time::Duration) {
        if let Some(g) = &self.group {
            g.set_bounds(jobs, time);
        }
    }

    /// Begins a read transaction that sees one consistent snapshot: REPEATABLE READ on
    /// PostgreSQL; on SQLite (WAL) a read transaction already reads one snapshot.
    pub async fn begin_snapshot(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
        }
        Ok(tx)
    }

    /// Refreshes the planner's statistics of `tables` after a bulk write (an import, a draw):
    /// on PostgreSQL autovacuum would only get to it minutes later, and with stale statistics
    /// a query can be planned as a scan of a whole table. Best effort, after the commit (the
    /// write stands whatever happens here). SQLite keeps the plans it makes without
    /// statistics: given them, it plans some joins differently (a Bloom filter over the whole
    /// joined table for every statement), which made batched reads slower, not faster.
    pub async fn refresh_statistics(&self, tables: &[&str]) {
        if self.backend != Backend::Postgres || tables.is_empty() {
            return;
        }
        let sql = format!("ANALYZE {}", tables.join(", "));
        if let Err(e) = sqlx::query(&sql).execute(&self.pool).await {
            tracing::warn!(error = %e, tables = ?tables, "refreshing statistics after a bulk write");
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// `($1,$2,..),(..)` for `rows` × `cols` parameters. On SQLite plain `?` is used instead:
/// SQLite resolves numbered/named parameters with a linear search per parameter, which makes
/// a 20,000-parameter statement quadratic; anonymous `?` are bound by position.
pub fn placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

/// A `WHERE` clause built from conditions that each bind one text parameter, numbered in the
/// order they are added; with [`Filter::page`] it reads one page of a list and its total.
#[derive(Debug, Default)]
pub struct Filter {
    clauses: Vec<String>,
    params: Vec<String>,
}

impl Filter {
    /// Adds `clause`, in which `{}` stands for the next parameter, bound to `value`.
    pub fn bind(&mut self, clause: &str, value: &str) {
        self.params.push(value.to_string());
        self.clauses
            .push(clause.replace("{}", &format!("${}", self.params.len())));
    }

    /// Adds a condition that binds nothing.
    pub fn raw(&mut self, clause: &str) {
        self.clauses.push(clause.to_string());
    }

    /// `WHERE a AND b`, or nothing when there is no condition.
    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// Page `page` (from 1) of `{select} WHERE .. ORDER BY {order}`, at most `page_size` rows
    /// (1 to 500), and how many rows `SELECT COUNT(*) FROM {from} WHERE ..` counts in all.
    pub async fn page<T>(
        &self,
        conn: &mut AnyConnection,
        select: &str,
        from: &str,
        order: &str,
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<T>, i64), sqlx::Error>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let where_sql = self.where_sql();
        let page_size = page_size.clamp(1, 500);
        let offset = i64::from(page.max(1) - 1) * i64::from(page_size);
        let sql =
            format!("{select} {where_sql} ORDER BY {order} LIMIT {page_size} OFFSET {offset}");
        let mut q = sqlx::query_as::<_, T>(&sql);
        for p in &self.params {
            q = q.bind(p.as_str());
        }
        let rows = q.fetch_all(&mut *conn).await?;
        let count_sql = format!("SELECT COUNT(*) FROM {from} {where_sql}");
        let mut q = sqlx::query_as::<_, (i64,)>(&count_sql);
        for p in &self.params {
            q = q.bind(p.as_str());
        }
        let (total,) = q.fetch_one(&mut *conn).await?;
        Ok((rows, total))
    }
}

/// Page `page` (from 1) of the rows of `table` (`columns` of each), newest first, only those in
/// `state` when it is given, and how many such rows there are: the console's lists of drafts
/// and published documents (list issues, sampling announcements) read so.
pub async fn newest_in_state<T>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &str,
    state: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<(Vec<T>, i64), sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut filter = Filter::default();
    if let Some(s) = state {
        filter.bind("state = {}", s);
    }
    filter
        .page(
            conn,
            &format!("SELECT {columns} FROM {table}"),
            table,
            "created_at DESC, id DESC",
            page,
            page_size,
        )
        .await
}

/// The backend behind a connection (for the few statements whose SQL differs).
pub fn backend_of(conn: &AnyConnection) -> Backend {
    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// Current time as Unix milliseconds, the storage format of every timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A deadlock or serialization failure (PostgreSQL 40P01, 40001): the transaction was rolled
/// back and may be retried as it is.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("40P01") | Some("40001")),
        _ => false,
    }
}

/// True when the error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// Booleans are stored as 0/1 integers on both backends.
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// An optional `f64` to bind. sqlx 0.8.6's `Any` driver declares a NULL `f64` to PostgreSQL as
/// `real` (float4; `Real` and `Double` are swapped in its NULL mapping), so a statement first
/// prepared with a NULL there keeps a float4 parameter, and the next execution on that pooled
/// connection that binds a number (8 bytes) fails with "incorrect binary data format" (a 500).
/// This declares the NULL as `double precision` instead. Bind every nullable float through it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptF64(pub Option<f64>);

impl sqlx::Type<sqlx::Any> for OptF64 {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Any> for OptF64 {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx_core::any::AnyArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(v) => {
                buf.0.push(sqlx_core::any::AnyValueKind::Double(v));
                Ok(sqlx::encode::IsNull::No)
            }
            None => {
                // `Real` is what 0.8.6 maps to a NULL float8 (see above).
                buf.0.push(sqlx_core::any::AnyValueKind::Null(
                    sqlx::any::AnyTypeInfoKind::Real,
                ));
                Ok(sqlx::encode::IsNull::Yes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    #[test]
    fn filter_numbers_parameters_in_order_and_skips_raw_conditions() {
        let mut f = Filter::default();
        assert_eq!(f.where_sql(), "");
        f.bind("a = {}", "x");
        f.raw("b IS NULL");
        f.bind("EXISTS (SELECT 1 WHERE c = {})", "y");
        assert_eq!(
            f.where_sql(),
            "WHERE a = $1 AND b IS NULL AND EXISTS (SELECT 1 WHERE c = $2)"
        );
    }

    #[tokio::test]
    async fn filter_page_clamps_the_page_and_counts_every_match() {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (id BIGINT, k TEXT)")
            .execute(&mut conn)
            .await
            .unwrap();
        for i in 1..=7i64 {
            sqlx::query("INSERT INTO t (id, k) VALUES ($1, $2)")
                .bind(i)
                .bind(if i % 2 == 0 { "even" } else { "odd" })
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let mut f = Filter::default();
        f.bind("k = {}", "odd");
        let (rows, total) = f
            .page::<(i64,)>(&mut conn, "SELECT id FROM t", "t", "id", 2, 3)
            .await
            .unwrap();
        assert_eq!((rows, total), (vec![(7,)], 4));
        // Page 0 is the first page; a page size of 0 is one row.
        let (rows, total) = f
            .page::<(i64,)>(&mut conn, "SELECT id FROM t", "t", "id", 0, 0)
            .await
            .unwrap();
        assert_eq!((rows, total), (vec![(1,)], 4));
    }
}
