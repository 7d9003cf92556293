//! Assembling and running the server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::token::SigningKey;
use crate::config::Config;
use crate::http;
use crate::state::AppState;
use crate::store::Db;

/// Opens the database (creating the SQLite file and data directory on first start), applies
/// migrations, installs the default checklist template, and loads or generates the signing key.
pub async fn state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let db = Db::connect(&config.database_url(), config.db_max_connections).await?;
    db.migrate().await?;
    let legacy = crate::ops::uploads::remove_local_leftovers(&config.data_dir).await;
    if legacy > 0 {
        tracing::info!(
            removed = legacy,
            "partial upload files of earlier versions removed (those uploads start again)"
        );
    }
    crate::ops::checklists::ensure_default(&db)
        .await
        .context("installing the default checklist template")?;
    let keys = match &config.jwt_secret {
        Some(secret) => SigningKey::from_secret(secret.expose().as_bytes()),
        None => SigningKey::load_or_generate(&config.data_dir)?,
    };
    let storage =
        crate::storage::Storage::from_config(&config.data_dir, config.storage_url.as_deref())?;
    let audit_key = crate::audit::checkpoint::NoteSigner::load_or_generate(
        &config.audit_origin,
        &config.data_dir,
        config.audit_signing_key_file.as_deref(),
    )
    .context("loading the audit checkpoint signing key")?;
    let public_pages = crate::public::cache::PageCache::new(
        config.public_page_cache_mb.saturating_mul(1024 * 1024),
    );
    Ok(AppState {
        db,
        config: Arc::new(config),
        keys: Arc::new(keys),
        storage,
        audit_key: Arc::new(audit_key),
        downloads: Arc::new(tokio::sync::Semaphore::new(DOWNLOADS)),
        public_pages: Arc::new(public_pages),
    })
}

/// Downloads that may stream at once per instance (a quarter of the default pool of 16).
const DOWNLOADS: usize = 4;

/// A bound, not yet running server; `addr` is known before serving (port 0 in tests).
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    pub async fn bind(state: AppState) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(&state.config.listen)
            .await
            .with_context(|| format!("binding {}", state.config.listen))?;
        Ok(Server { listener, state })
    }

    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and closes the pool.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let db = self.state.db.clone();
        let sweeper = tokio::spawn(sweep(self.state.clone()));
        let recheck_every = self.state.config.recheck_sweep_interval_secs;
        let rechecks = (recheck_every > 0).then(|| {
            tokio::spawn(recheck_sweep(
                self.state.clone(),
                std::time::Duration::from_secs(recheck_every),
            ))
        });
        let (stop_worker, stopped) = tokio::sync::watch::channel(false);
        let worker = self
            .state
            .config
            .run_workers
            .then(|| tokio::spawn(crate::ops::photos::worker(self.state.clone(), stopped)));
        // The audit integrator: sequences what writes recorded, signs checkpoints.
        let (stop_audit, audit_stopped) = tokio::sync::watch::channel(false);
        let audit_every = self.state.config.audit_integrate_interval_ms;
        let auditor = (audit_every > 0).then(|| {
            tokio::spawn(crate::ops::audit::background(
                self.state.db.clone(),
                self.state.audit_key.clone(),
                std::time::Duration::from_millis(audit_every),
                std::time::Duration::from_secs(self.state.config.audit_checkpoint_interval_secs),
                audit_stopped,
            ))
        });
        let header_timeout =
            std::time::Duration::from_secs(self.state.config.header_read_timeout_secs);
        let router = http::router(self.state);
        serve(self.listener, router, header_timeout, shutdown).await;
        sweeper.abort();
        // Each recheck is its own transaction: an abort between two loses nothing.
        if let Some(r) = rechecks {
            r.abort();
        }
        // The worker finishes the job in hand (a job whose lease ends is claimed again).
        let _ = stop_worker.send(true);
        if let Some(worker) = worker {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), worker).await;
        }
        // Entries of the last requests are integrated and signed before the pool closes.
        let _ = stop_audit.send(true);
        if let Some(auditor) = auditor {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), auditor).await;
        }
        db.close().await;
        Ok(())
    }
}

/// The accept loop: like `axum::serve` (HTTP/1 and HTTP/2, the peer address for
/// `ConnectInfo`, graceful shutdown) plus a header-read timeout, which `axum::serve` does not
/// set: a client trickling its headers is disconnected. Body deadlines are a layer of the router
/// (`http::body_deadline`).
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::ServiceExt;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let conn = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Hourly: drops sync tombstones past retention and expired partial uploads (several instances may do it at once; the
/// statements are idempotent).
async fn sweep(state: AppState) {
    let db = state.db.clone();
    let retention_days = state.config.tombstone_retention_days;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before = crate::store::now_ms() - (retention_days as i64) * 86_400_000;
        let result =
            crate::ops::sync::purge_tombstones(&db, &crate::audit::Ctx::system(), before).await;
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "sync tombstones past retention removed"),
            Err(e) => tracing::warn!(error = %e, "tombstone sweep failed"),
        }
        let ctx = crate::audit::Ctx::system();
        // The first tick is at start-up: uploads a crash left complete-but-unattached.
        match crate::ops::uploads::repair_stuck(&state, &ctx).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(repaired = n, "complete uploads attached after a restart"),
            Err(e) => tracing::warn!(error = %e, "upload repair failed"),
        }
        match crate::ops::uploads::sweep_expired(&state, &ctx).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired partial uploads removed"),
            Err(e) => tracing::warn!(error = %e, "upload sweep failed"),
        }
    }
}

/// Every `every`: follow-ups whose deadline has come get their recheck task (复查). Several
/// instances may run it at once: each follow-up is claimed by a conditional update.
async fn recheck_sweep(state: AppState, every: std::time::Duration) {
    let settings = crate::followup::Settings::from_config(&state.config);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tick.tick().await;
        let ctx = crate::audit::Ctx::system();
        let today = settings.today();
        if !warned {
            let soon = today + chrono::Duration::days(60);
            if let Ok(Some(year)) =
                crate::ops::followup::missing_calendar_year(&state.db, today, soon).await
            {
                tracing::warn!(
                    year,
                    "the working-day calendar has no data for {year}: deadlines counted into it \
                     are refused until an admin adds it (PUT /api/v1/calendar/years/{year})"
                );
                warned = true;
            }
        }
        match crate::ops::followup::create_due_rechecks(&state.db, &ctx, &settings, today).await {
            Ok(r) => {
                if !r.created.is_empty() {
                    tracing::info!(created = r.created.len(), "recheck tasks created");
                }
                for (id, why) in &r.skipped {
                    tracing::warn!(followup = %id, reason = %why, "recheck task not created");
                }
            }
            Err(e) => tracing::warn!(error = %e, "recheck sweep failed"),
        }
    }
}
