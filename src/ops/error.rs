//! The error type of use cases. It names what went wrong in domain terms; the HTTP edge maps
//! each kind to a status and the error envelope (`crate::error`), the CLI prints it.

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is well-formed but breaks a rule (422). `details` lists problems when useful.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        details: Option<serde_json::Value>,
    },
    /// The request itself is malformed (400): a bad cursor, an unknown parameter value.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Credentials are wrong, expired or revoked (401).
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// The actor may not do this to this record (403).
    #[error("{0}")]
    Forbidden(String),
    /// The record does not exist, or the actor may not know that it does (404).
    #[error("{0}")]
    NotFound(String),
    /// The current state forbids it (409): already drawn, stale sync cursor, duplicate.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A size or count limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// Too many attempts; retry after the given seconds (429).
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after_secs: u64,
    },
    /// A dependency is down (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an infrastructure failure (500): logged with its cause, shown without it.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            code,
            message: message.into(),
            details: None,
        }
    }
    pub fn invalid_with(
        code: &'static str,
        message: impl Into<String>,
        details: impl Serialize,
    ) -> Error {
        Error::Invalid {
            code,
            message: message.into(),
            details: serde_json::to_value(details).ok(),
        }
    }
    /// 422 `validation_failed` listing every field problem in `details`.
    pub fn validation_failed(errors: Vec<crate::establishment::FieldError>) -> Error {
        let message = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Error::invalid_with("validation_failed", message, errors)
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Error {
        Error::Unauthenticated {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::Forbidden(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::NotFound(message.into())
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }
}

/// A grouped write without an answer of its own (nothing of it applied): the batch's database
/// failure as any database failure, a panic as a bug, a runner gone as "retry".
impl From<crate::store::group::GroupError> for Error {
    fn from(e: crate::store::group::GroupError) -> Error {
        use crate::store::group::GroupError;
        match e {
            GroupError::Database(db) if matches!(*db, sqlx::Error::PoolTimedOut) => {
                Error::Unavailable("the server is busy; retry shortly".into())
            }
            GroupError::Database(db) => {
                Error::Internal(anyhow::anyhow!("grouped write failed: {db}"))
            }
            GroupError::Panicked => Error::Internal(anyhow::anyhow!("the write panicked")),
            GroupError::Closed => {
                Error::Unavailable("the server is shutting down; retry shortly".into())
            }
        }
    }
}

/// Database errors are mapped once, here: a unique violation that a use case did not
/// anticipate is still a conflict, not a 500.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            // Overload, not a bug: the client should come back.
            return Error::Unavailable("the server is busy; retry shortly".into());
        }
        if crate::store::is_retryable(&e) {
            // PostgreSQL aborted the transaction to break a deadlock (or a serialization
            // failure): nothing was written, and the same request may simply be sent again.
            return Error::Unavailable("a concurrent change got in the way; retry".into());
        }
        if crate::store::is_unique_violation(&e) {
            return Error::conflict(
                "duplicate",
                "a record with the same identity already exists",
            );
        }
        Error::Internal(e.into())
    }
}
