//! Keeping secrets out of what csp prints and stores: connection URLs in
//! errors and logs, the error texts of libraries that echo them, and the
//! secrets users and agents write into a conversation (for the audit log).
//!
//! Owns: the one definition of "the secret part of a URL" used by every
//! backend adapter, and of what counts as a secret in free text and JSON
//! ([`redact_text`], [`redact_json`]), and of the platform's own secrets
//! wherever they appear ([`KnownSecrets`]). Must never return a URL unchanged when
//! it cannot tell where a secret is: it says `<unparseable URL>` instead.

mod known;
mod secrets;

pub use known::{KnownSecrets, MIN_SECRET_LEN, url_secrets};
pub use secrets::{REDACTED, redact_json, redact_text};

/// Query parameters that carry passwords (libpq's `password`, redis' `pass`).
fn is_secret_param(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "password" | "pass" | "sslpassword" | "token"
    )
}

/// Schemes whose user info may be a bare token (`nats://<token>@host`).
fn token_scheme(scheme: &str) -> bool {
    matches!(scheme, "nats" | "tls" | "ws" | "wss")
}

/// `url` with every password and token replaced by `***`, so it can be
/// logged and shown. Handles comma-separated server lists (NATS).
pub fn url(url: &str) -> String {
    url.split(',').map(one).collect::<Vec<_>>().join(",")
}

fn one(server: &str) -> String {
    // `u:p@host` parses as scheme `u` with an opaque path: not a server URL.
    let parsed = url::Url::parse(server)
        .ok()
        .filter(|u| !u.cannot_be_a_base());
    let Some(mut parsed) = parsed else {
        // Not a URL we can take apart; keep only what follows credentials.
        return match authority_at(server) {
            Some(at) => format!("***{}", &server[at..]),
            None if server.contains(['=', ':', ' ']) => "<unparseable URL>".to_owned(),
            None => server.to_owned(),
        };
    };
    if parsed.password().is_some() {
        // Fails only for URLs that cannot have credentials, which then have none.
        let _ = parsed.set_password(Some("***"));
    } else if !parsed.username().is_empty() && token_scheme(parsed.scheme()) {
        let _ = parsed.set_username("***");
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Index of the `@` that ends the user info of `server`, if any.
fn authority_at(server: &str) -> Option<usize> {
    let start = server.find("://").map_or(0, |i| i + 3);
    let rest = &server[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..end].rfind('@').map(|at| start + at)
}

/// `text` with the credentials of `url` removed, for error texts of
/// libraries that might echo the address they were given.
pub fn scrub(text: &str, url: &str) -> String {
    let mut out = text.to_owned();
    for server in url.split(',') {
        let Some(at) = authority_at(server) else {
            continue;
        };
        let start = server.find("://").map_or(0, |i| i + 3);
        let userinfo = &server[start..at];
        // `user:password` or a bare token; the user name alone is no secret.
        let secret = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
        for s in [userinfo, secret] {
            if !s.is_empty() {
                out = out.replace(s, "***");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_user_info() {
        assert_eq!(
            url("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            url("rediss://csp:hunter2@cache:6380"),
            "rediss://csp:***@cache:6380"
        );
        assert_eq!(
            url("postgres://csp:s3cr%40t@db.internal:5432/csp"),
            "postgres://csp:***@db.internal:5432/csp"
        );
        assert_eq!(
            url("nats://alice:s3cret@nats.example:4222"),
            "nats://alice:***@nats.example:4222"
        );
    }

    #[test]
    fn tokens_and_server_lists() {
        assert_eq!(
            url("tls://tok3n@a:4222,nats://b:4222"),
            "tls://***@a:4222,nats://b:4222"
        );
        assert_eq!(url("u:p@host:4222"), "***@host:4222");
    }

    #[test]
    fn secret_query_parameters() {
        let r = url("postgres://db/csp?user=csp&password=hunter2&sslmode=require");
        assert!(
            !r.contains("hunter2") && r.contains("sslmode=require"),
            "{r}"
        );
        let r = url("redis+unix:///run/redis.sock?db=1&pass=hunter2");
        assert!(!r.contains("hunter2") && r.contains("db=1"), "{r}");
    }

    #[test]
    fn harmless_urls_are_kept_and_unknown_shapes_hidden() {
        for u in [
            "redis://127.0.0.1:6379",
            "nats://127.0.0.1:4222",
            "postgres://postgres@127.0.0.1:5432/postgres",
            "ws://host/path@x",
        ] {
            assert_eq!(url(u), u);
        }
        assert_eq!(url("host=db password=hunter2"), "<unparseable URL>");
        assert_eq!(url("not a URL :hunter2"), "<unparseable URL>");
    }

    #[test]
    fn scrub_removes_the_credentials_of_the_url() {
        let t = scrub(
            "failed to connect to nats://alice:s3cret@h:4222 (auth s3cret)",
            "nats://alice:s3cret@h:4222",
        );
        assert!(!t.contains("s3cret"), "{t}");
        let t = scrub("bad token tok3n", "tls://tok3n@a:4222");
        assert_eq!(t, "bad token ***");
    }
}
