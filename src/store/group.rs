//! Group commit on SQLite: write jobs that arrive while a commit is in flight run together in
//! one `BEGIN IMMEDIATE` transaction, **each in its own savepoint**, and share one `COMMIT`
//! (one fsync under `synchronous=FULL`).
//!
//! - A job that fails (its own error, e.g. a 409, or a panic) is rolled back to its savepoint
//!   and answered at once with its own error; the jobs before and after it are untouched.
//! - A job that succeeds is answered only after the shared `COMMIT` returned: an answered
//!   success is on disk (a crash before the commit loses only unanswered jobs, whose clients
//!   retry).
//! - If the batch cannot commit (or a savepoint cannot be undone), every successful job of the
//!   batch gets that error, and nothing of the batch is applied.
//!
//! One runner task per [`Db`](super::Db) takes the SQLite writer lock (the one
//! [`begin_write`](super::Db::begin_write) takes, so other writes interleave between batches),
//! runs the queued jobs one after another and commits. Arrivals during a commit queue and form
//! the next batch. A batch takes at most [`MAX_JOBS`] jobs and stops taking more after
//! [`MAX_BATCH_TIME`], which bounds the wait of its first job.
//!
//! Jobs run one at a time in their batch, in arrival order, so each sees the jobs before it as
//! committed: the outcome is that of running them one by one, only the fsyncs are shared.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot, Mutex};

/// At most this many jobs share a commit (by default).
pub const MAX_JOBS: usize = 64;
/// A batch takes no new job once it has run this long (by default): its first job waits at
/// most about this plus one job and the commit.
pub const MAX_BATCH_TIME: Duration = Duration::from_millis(50);
/// Jobs waiting for a batch; a full queue makes submitters wait (back-pressure).
const QUEUE: usize = 1024;

/// The savepoint of one job (jobs may nest savepoints of their own, by other names).
const SAVEPOINT: &str = "SAVEPOINT group_commit_job";
const RELEASE: &str = "RELEASE SAVEPOINT group_commit_job";
const UNDO: &str = "ROLLBACK TO SAVEPOINT group_commit_job";

/// Why a grouped job has no answer of its own. Nothing of the job is applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// The batch's transaction could not begin, one of its savepoints could not be undone, or
    /// its `COMMIT` failed.
    #[error("the grouped write failed: {0}")]
    Database(Arc<sqlx::Error>),
    /// The job panicked (its savepoint was rolled back).
    #[error("the write panicked")]
    Panicked,
    /// The runner is gone (the runtime is shutting down).
    #[error("the database writer is shut down")]
    Closed,
}

impl GroupError {
    /// The database error behind it, if any.
    pub fn sqlx(&self) -> Option<&sqlx::Error> {
        match self {
            GroupError::Database(e) => Some(e),
            _ => None,
        }
    }
}

/// Counters of the batches run so far (SQLite only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Jobs handed to the runner.
    pub submitted: u64,
    /// Batches begun, and jobs run in them.
    pub batches: u64,
    pub jobs: u64,
    /// The most jobs one batch ran.
    pub largest: u64,
    /// Batches that failed as a whole (begin, undo or commit failed).
    pub failed_batches: u64,
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    batches: AtomicU64,
    jobs: AtomicU64,
    largest: AtomicU64,
    failed_batches: AtomicU64,
}

/// Answers a job that succeeded once its batch committed (`None`) or failed as a whole.
type Answer = Box<dyn FnOnce(Option<&GroupError>) + Send>;

/// What a job left after running: whether to keep its savepoint, and how to answer once the
/// batch's fate is known (`None`: answered already, it failed on its own).
struct Ran {
    keep: bool,
    on_commit: Option<Answer>,
}

trait Job: Send {
    fn run<'c>(self: Box<Self>, conn: &'c mut AnyConnection) -> BoxFuture<'c, Ran>;
    /// Answers without running (the batch could not begin).
    fn fail(self: Box<Self>, e: &GroupError);
}

struct Typed<F, T, E> {
    f: F,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for Typed<F, T, E>
where
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<GroupError> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, conn: &'c mut AnyConnection) -> BoxFuture<'c, Ran> {
        let Typed { f, reply } = *self;
        Box::pin(async move {
            // The call itself is inside the guarded future too: a panic before its first
            // await is caught as well.
            let out = AssertUnwindSafe(async move { f(conn).await })
                .catch_unwind()
                .await;
            match out {
                Ok(Ok(v)) => Ran {
                    keep: true,
                    on_commit: Some(Box::new(move |failed: Option<&GroupError>| {
                        let _ = reply.send(match failed {
                            None => Ok(v),
                            Some(e) => Err(E::from(e.clone())),
                        });
                    })),
                },
                Ok(Err(e)) => {
                    // Nothing of it is kept, whatever the batch does: answer now.
                    let _ = reply.send(Err(e));
                    Ran {
                        keep: false,
                        on_commit: None,
                    }
                }
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(panic = %what, "a grouped write panicked; its savepoint is rolled back");
                    let _ = reply.send(Err(E::from(GroupError::Panicked)));
                    Ran {
                        keep: false,
                        on_commit: None,
                    }
                }
            }
        })
    }

    fn fail(self: Box<Self>, e: &GroupError) {
        let _ = self.reply.send(Err(E::from(e.clone())));
    }
}

/// The group-commit runner of one SQLite database (see the module documentation).
pub struct GroupCommit {
    pool: AnyPool,
    write_lock: Arc<Mutex<()>>,
    sender: std::sync::Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    counters: Arc<Counters>,
    bounds: Arc<std::sync::Mutex<Bounds>>,
}

/// How much one batch may take.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    jobs: usize,
    time: Duration,
}

impl GroupCommit {
    pub(super) fn new(pool: AnyPool, write_lock: Arc<Mutex<()>>) -> GroupCommit {
        GroupCommit {
            pool,
            write_lock,
            sender: std::sync::Mutex::new(None),
            counters: Arc::default(),
            bounds: Arc::new(std::sync::Mutex::new(Bounds {
                jobs: MAX_JOBS,
                time: MAX_BATCH_TIME,
            })),
        }
    }

    /// Sets how many jobs one batch may run, and for how long it takes new ones (tests use a
    /// long time so a batch they form is never cut by a slow machine).
    pub fn set_bounds(&self, jobs: usize, time: Duration) {
        *self.bounds.lock().unwrap_or_else(|p| p.into_inner()) = Bounds {
            jobs: jobs.max(1),
            time,
        };
    }

    pub fn stats(&self) -> GroupStats {
        let c = &self.counters;
        GroupStats {
            submitted: c.submitted.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            jobs: c.jobs.load(Ordering::Relaxed),
            largest: c.largest.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
        }
    }

    /// The runner's queue, starting the runner (on the current runtime) when there is none or
    /// when the one there was has stopped (its runtime ended).
    fn sender(&self) -> mpsc::Sender<Box<dyn Job>> {
        let mut slot = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return s.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(runner(
            self.pool.clone(),
            self.write_lock.clone(),
            rx,
            self.counters.clone(),
            self.bounds.clone(),
        ));
        *slot = Some(tx.clone());
        tx
    }

    /// Runs `job` in the next batch and answers once its outcome is final.
    pub async fn run<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<GroupError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let mut job: Box<dyn Job> = Box::new(Typed { f: job, reply });
        // A second try only if the runner stopped between looking and sending.
        for _ in 0..2 {
            match self.sender().send(job).await {
                Ok(()) => {
                    self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                    return answer.await.unwrap_or(Err(E::from(GroupError::Closed)));
                }
                Err(mpsc::error::SendError(back)) => job = back,
            }
        }
        job.fail(&GroupError::Closed);
        answer.await.unwrap_or(Err(E::from(GroupError::Closed)))
    }
}

async fn exec(conn: &mut AnyConnection, sql: &str) -> Result<(), GroupError> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| GroupError::Database(Arc::new(e)))
}

async fn runner(
    pool: AnyPool,
    write_lock: Arc<Mutex<()>>,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    counters: Arc<Counters>,
    bounds: Arc<std::sync::Mutex<Bounds>>,
) {
    while let Some(first) = queue.recv().await {
        let guard = write_lock.clone().lock_owned().await;
        let bounds = *bounds.lock().unwrap_or_else(|p| p.into_inner());
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                first.fail(&GroupError::Database(Arc::new(e)));
                continue;
            }
        };
        let (ran, outcome) = batch(&mut conn, first, &mut queue, bounds).await;
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.jobs.fetch_add(ran as u64, Ordering::Relaxed);
        counters.largest.fetch_max(ran as u64, Ordering::Relaxed);
        let (answers, failure) = match outcome {
            Ok(answers) => (answers, None),
            Err((answers, e)) => {
                counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, jobs = ran, "a group commit failed; none of its writes is applied");
                // Closing the connection rolls back whatever is left open, before the writer
                // lock goes (the next batch must not find this one's write lock).
                let _ = conn.close().await;
                (answers, Some(e))
            }
        };
        drop(guard);
        // One line per batch when asked for (`foodcheck::store::group=debug`): the benchmark
        // counts them.
        tracing::debug!(jobs = ran, failed = failure.is_some(), "group commit batch");
        for answer in answers {
            answer(failure.as_ref());
        }
    }
}

/// Runs one batch on `conn`: the first job, then queued ones while the bounds allow, each in
/// its savepoint, then the commit. Returns the number of jobs run, and the answers of the jobs
/// that succeeded (with the batch's error if it failed as a whole).
async fn batch(
    conn: &mut AnyConnection,
    first: Box<dyn Job>,
    queue: &mut mpsc::Receiver<Box<dyn Job>>,
    bounds: Bounds,
) -> (usize, Result<Vec<Answer>, (Vec<Answer>, GroupError)>) {
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let e = GroupError::Database(Arc::new(e));
            first.fail(&e);
            return (0, Err((Vec::new(), e)));
        }
    };
    let started = Instant::now();
    let mut answers: Vec<Answer> = Vec::new();
    let mut ran = 0usize;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        ran += 1;
        if let Err(e) = exec(&mut tx, SAVEPOINT).await {
            job.fail(&e);
            return (ran, Err((answers, e)));
        }
        let out = job.run(&mut tx).await;
        answers.extend(out.on_commit);
        let end = if out.keep {
            exec(&mut tx, RELEASE).await
        } else {
            // Undone, then released (ROLLBACK TO keeps the savepoint open).
            match exec(&mut tx, UNDO).await {
                Ok(()) => exec(&mut tx, RELEASE).await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = end {
            // The transaction's state is unknown (e.g. SQLite rolled it all back on an I/O
            // error): nothing of this batch may be acknowledged.
            return (ran, Err((answers, e)));
        }
        if ran < bounds.jobs && started.elapsed() < bounds.time {
            next = queue.try_recv().ok();
        }
    }
    match tx.commit().await {
        Ok(()) => (ran, Ok(answers)),
        Err(e) => (ran, Err((answers, GroupError::Database(Arc::new(e))))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    #[derive(Debug)]
    enum TestError {
        Refused,
        Group(GroupError),
        Db(#[allow(dead_code)] String),
    }
    impl From<GroupError> for TestError {
        fn from(e: GroupError) -> Self {
            TestError::Group(e)
        }
    }
    impl From<sqlx::Error> for TestError {
        fn from(e: sqlx::Error) -> Self {
            TestError::Db(e.to_string())
        }
    }

    async fn db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let db = Db::connect(&url, 4).await.unwrap();
        db.group
            .as_ref()
            .unwrap()
            .set_bounds(MAX_JOBS, Duration::from_secs(60));
        for sql in [
            "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE t (k TEXT PRIMARY KEY, parent INTEGER REFERENCES parent (id))",
            "INSERT INTO parent (id) VALUES (1)",
        ] {
            sqlx::query(sql).execute(db.pool()).await.unwrap();
        }
        (db, dir)
    }

    async fn keys(db: &Db) -> Vec<String> {
        sqlx::query_as::<_, (String,)>("SELECT k FROM t ORDER BY k")
            .fetch_all(db.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|(k,)| k)
            .collect()
    }

    /// What a job does, by its key's first letter: `ok…` inserts, `refuse…` inserts then
    /// refuses, `panic…` inserts then panics, `orphan…` inserts a row whose parent is missing
    /// with the foreign key check deferred to the commit (which then fails).
    fn job(
        key: String,
    ) -> impl for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<String, TestError>>
           + Send
           + 'static {
        move |conn: &mut AnyConnection| {
            Box::pin(async move {
                if key.starts_with("orphan") {
                    sqlx::query("PRAGMA defer_foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                }
                let parent = if key.starts_with("orphan") { 99 } else { 1 };
                sqlx::query("INSERT INTO t (k, parent) VALUES ($1, $2)")
                    .bind(&key)
                    .bind(parent)
                    .execute(&mut *conn)
                    .await?;
                if key.starts_with("refuse") {
                    return Err(TestError::Refused);
                }
                if key.starts_with("panic") {
                    panic!("injected panic in {key}");
                }
                Ok(key)
            })
        }
    }

    /// Holds the writer lock while `keys` are submitted, so they all form one batch.
    async fn one_batch(db: &Db, keys: &[&str]) -> Vec<Result<String, TestError>> {
        let group = db.group.as_ref().unwrap().clone();
        let before = group.stats().submitted;
        let held = db.write_lock.as_ref().unwrap().clone().lock_owned().await;
        let handles: Vec<_> = keys
            .iter()
            .map(|k| {
                let group = group.clone();
                let k = k.to_string();
                tokio::spawn(async move { group.run(job(k)).await })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while group.stats().submitted < before + keys.len() as u64 {
            assert!(Instant::now() < deadline, "the jobs were never queued");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(held);
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_job_keeps_its_own_outcome_in_a_shared_batch() {
        let (db, _dir) = db().await;
        let out = one_batch(&db, &["ok1", "refuse1", "ok2", "panic1", "ok3"]).await;
        let stats = db.group_commit_stats().unwrap();
        assert_eq!((stats.batches, stats.largest), (1, 5), "{stats:?}");
        assert!(matches!(&out[0], Ok(k) if k == "ok1"));
        assert!(matches!(&out[1], Err(TestError::Refused)));
        assert!(matches!(&out[2], Ok(k) if k == "ok2"));
        assert!(matches!(
            &out[3],
            Err(TestError::Group(GroupError::Panicked))
        ));
        assert!(matches!(&out[4], Ok(k) if k == "ok3"));
        assert_eq!(keys(&db).await, ["ok1", "ok2", "ok3"]);
        // The runner goes on after a panic.
        assert!(matches!(
            db.group.as_ref().unwrap().run(job("ok4".into())).await,
            Ok(k) if k == "ok4"
        ));
        assert_eq!(keys(&db).await.len(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_every_job_of_the_batch_and_applies_nothing() {
        let (db, _dir) = db().await;
        let out = one_batch(&db, &["ok1", "orphan1", "refuse1", "ok2"]).await;
        for (i, r) in out.iter().enumerate() {
            match (i, r) {
                (2, Err(TestError::Refused)) => {}
                (_, Err(TestError::Group(GroupError::Database(_)))) if i != 2 => {}
                _ => panic!("job {i}: {r:?}"),
            }
        }
        assert!(keys(&db).await.is_empty());
        assert_eq!(db.group_commit_stats().unwrap().failed_batches, 1);
        // The next batch starts clean (the failed one was rolled back and its lock released).
        let out = one_batch(&db, &["ok3", "ok4"]).await;
        assert!(out.iter().all(Result::is_ok), "{out:?}");
        assert_eq!(keys(&db).await, ["ok3", "ok4"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_jobs_share_commits_and_all_apply() {
        let (db, _dir) = db().await;
        let group = db.group.as_ref().unwrap().clone();
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let group = group.clone();
                tokio::spawn(async move { group.run(job(format!("ok{i:03}"))).await })
            })
            .collect();
        for h in handles {
            assert!(h.await.unwrap().is_ok());
        }
        assert_eq!(keys(&db).await.len(), 200);
        let stats = group.stats();
        assert_eq!(stats.jobs, 200);
        assert!(stats.largest <= MAX_JOBS as u64, "{stats:?}");
    }
}
