use std::time::Duration;

/// Failures of a cache operation. Every variant that names a server names it
/// without credentials (see `csp_redact::url`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TTL is shorter than a millisecond.
    #[error("invalid TTL {0:?}: must be at least 1 ms")]
    InvalidTtl(Duration),
    /// The connection URL does not parse.
    #[error("invalid Redis URL {url}: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// Redis cannot be reached (refused, timed out, connection lost).
    #[error("Redis at {target} is unreachable: {source}")]
    Unavailable {
        /// Redacted URL.
        target: String,
        #[source]
        source: redis::RedisError,
    },
    /// Redis answered with an error.
    #[error("Redis at {target} failed: {source}")]
    Redis {
        target: String,
        #[source]
        source: redis::RedisError,
    },
}

impl Error {
    pub(crate) fn from_redis(target: &str, source: redis::RedisError) -> Self {
        let target = target.to_owned();
        if source.is_io_error()
            || source.is_connection_refusal()
            || source.is_connection_dropped()
            || source.is_timeout()
        {
            Error::Unavailable { target, source }
        } else {
            Error::Redis { target, source }
        }
    }
}
