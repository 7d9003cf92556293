//! What the server shares between handlers, use cases and background tasks. Cheap to clone.
//! Lives outside `http` so use cases and background work can take it without reaching up.

use std::sync::Arc;

use crate::auth::token::SigningKey;
use crate::config::Config;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub keys: Arc<SigningKey>,
    /// Photo files (local directory or S3-compatible storage).
    pub storage: crate::storage::Storage,
    /// Signs the audit log's checkpoints (Ed25519).
    pub audit_key: Arc<crate::audit::checkpoint::NoteSigner>,
    /// Downloads (exports) that may stream at once: each holds one or two database connections
    /// while it runs, so without a cap a handful of slow ones could starve every other request.
    pub downloads: Arc<tokio::sync::Semaphore>,
    /// Rendered public list pages, under the database's public version.
    pub public_pages: Arc<crate::public::cache::PageCache>,
}
