use std::time::Duration;

/// Failures of a cache operation. Every variant that names a server names it
/// without credentials (see [`redact_url`]).
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

/// `url` with its password (in the user info or a `pass`/`password` query
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
                let secret = matches!(key.to_ascii_lowercase().as_str(), "pass" | "password");
                let value = if secret {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_only_user_info() {
        assert_eq!(
            redact_url("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url("rediss://csp:hunter2@cache:6380"),
            "rediss://csp:***@cache:6380"
        );
    }

    #[test]
    fn redacts_unix_socket_pass_parameter() {
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=hunter2"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
    }

    #[test]
    fn keeps_urls_without_secrets_and_hides_unparseable_ones() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a URL :hunter2"), "<unparseable URL>");
    }
}
