use sqlx::error::ErrorKind;

/// Failures of a store operation. Every variant that names a database names
/// it without credentials (see [`redact_url`]).
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

/// The constraint a statement violated, if that is why it failed.
pub(crate) fn violation(error: &sqlx::Error) -> Option<ErrorKind> {
    error.as_database_error().map(|e| e.kind())
}

/// `url` with its password (in the user info or a `password` query
/// parameter) replaced by `***`, for error messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Whatever it is, it might hold a secret.
        return "<unparseable URL>".to_owned();
    };
    if parsed.password().is_some() {
        // Fails only for URLs that cannot have credentials, which then have none.
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if is_secret_param(&key) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

fn is_secret_param(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "password" | "pass" | "sslpassword"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_user_info_password() {
        assert_eq!(
            redact_url("postgres://csp:s3cr%40t@db.internal:5432/csp"),
            "postgres://csp:***@db.internal:5432/csp"
        );
    }

    #[test]
    fn redacts_password_query_parameter() {
        let redacted = redact_url("postgres://db/csp?user=csp&password=hunter2&sslmode=require");
        assert_eq!(
            redacted,
            "postgres://db/csp?user=csp&password=***&sslmode=require"
        );
    }

    #[test]
    fn keeps_urls_without_secrets() {
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
    }

    #[test]
    fn never_echoes_what_it_cannot_parse() {
        assert_eq!(redact_url("host=db password=hunter2"), "<unparseable URL>");
    }
}
