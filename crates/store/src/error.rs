use sqlx::error::ErrorKind;

/// Failures of a store operation. Every variant that names a database names
/// it without credentials (see `csp_redact::url`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A unique key is taken (a username, a session id).
    #[error("{0} already exists")]
    Conflict(String),
    /// The row, or a row it refers to, does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A value the schema cannot hold.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The database cannot be reached (refused, timed out, connection lost).
    #[error("database at {target} is unreachable: {source}")]
    Unavailable {
        /// Redacted URL or file path.
        target: String,
        #[source]
        source: sqlx::Error,
    },
    /// The connection URL does not parse.
    #[error("invalid database URL {url}: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// Applying `migrations/` failed (for instance a migration that was
    /// already applied has been edited since).
    #[error("migrating database at {target} failed: {source}")]
    Migrate {
        target: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The caller's function refused one row of a multi-row operation
    /// (re-encrypting secrets); nothing was written.
    #[error("aborted, nothing was written: {0}")]
    Aborted(String),
    /// A row that the schema should have prevented, such as an unknown role.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error at {target}: {source}")]
    Database {
        target: String,
        #[source]
        source: sqlx::Error,
    },
}

impl Error {
    /// Classifies a driver error: lost or refused connections become
    /// [`Error::Unavailable`] so callers can answer "try again later".
    pub(crate) fn from_sqlx(target: &str, source: sqlx::Error) -> Self {
        let target = target.to_owned();
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Error::Unavailable { target, source },
            source => Error::Database { target, source },
        }
    }
}

impl Error {
    /// Whether the same statement may succeed if tried again shortly: the
    /// database was unreachable, or refused because it is starting, stopping
    /// or lost the connection (SQLSTATE classes 08 and 57).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable { .. } => true,
            Error::Database { source, .. } => source
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
            _ => false,
        }
    }

    /// The constraint a statement violated, if that is why it failed.
    pub(crate) fn violation(&self) -> Option<ErrorKind> {
        match self {
            Error::Database { source, .. } => source.as_database_error().map(|e| e.kind()),
            _ => None,
        }
    }
}
