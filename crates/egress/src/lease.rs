//! Per-process tokens. The token is the only credential an agent holds: the
//! proxies look up its SHA-256 (so the table never holds a usable token and
//! a lookup leaks nothing through timing), and dropping the [`Lease`] —
//! when the agent process has exited — revokes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::connect::HostRule;

/// Distinguishes lease tokens from real API keys in logs and bug reports.
const TOKEN_PREFIX: &str = "csp-agent-";

type Key = [u8; 32];

/// What a valid token grants.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The agent process's session (the CLI's session id).
    pub session: Uuid,
    /// Where `CONNECT` may go.
    pub hosts: Arc<[HostRule]>,
}

/// Every live lease of this replica.
#[derive(Debug, Clone, Default)]
pub struct Leases {
    table: Arc<Mutex<HashMap<Key, Grant>>>,
}

impl Leases {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new token for one agent process of `session`, allowed to tunnel
    /// to `hosts` (entries of `permissions.network`; unparsable ones are
    /// left out and logged).
    pub fn issue(&self, session: Uuid, hosts: &[String]) -> Lease {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let key = digest(&token);
        let hosts: Arc<[HostRule]> = hosts
            .iter()
            .filter_map(|h| match HostRule::parse(h) {
                Some(rule) => Some(rule),
                None => {
                    tracing::warn!(host = %h.escape_debug(), "ignoring a network permission that is not host or host:port");
                    None
                }
            })
            .collect();
        self.lock().insert(key, Grant { session, hosts });
        Lease {
            token: SecretString::from(token),
            key,
            leases: self.clone(),
        }
    }

    /// The grant of a live token.
    pub fn check(&self, token: &str) -> Option<Grant> {
        if !token.starts_with(TOKEN_PREFIX) {
            return None;
        }
        self.lock().get(&digest(token)).cloned()
    }

    /// Live leases (one per agent process).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Grant>> {
        // A panic elsewhere while holding the lock leaves the map intact.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn digest(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

/// One agent process's token; revoked when dropped.
#[derive(Debug)]
pub struct Lease {
    token: SecretString,
    key: Key,
    leases: Leases,
}

impl Lease {
    /// The token the agent is given (as its `ANTHROPIC_API_KEY`, and as the
    /// password of its proxy URL).
    pub fn token(&self) -> &str {
        self.token.expose_secret()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.leases.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_valid_until_its_lease_is_dropped() {
        let leases = Leases::new();
        let session = Uuid::new_v4();
        let lease = leases.issue(session, &["api.example.com".into(), "bad host!".into()]);
        let token = lease.token().to_owned();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() > 40);
        let grant = leases.check(&token).expect("live");
        assert_eq!(grant.session, session);
        assert_eq!(grant.hosts.len(), 1, "the unparsable entry is left out");
        assert!(leases.check("csp-agent-guess").is_none());
        assert!(leases.check(&token[TOKEN_PREFIX.len()..]).is_none());
        drop(lease);
        assert!(leases.check(&token).is_none());
        assert!(leases.is_empty());
    }

    #[test]
    fn tokens_differ_and_debug_hides_them() {
        let leases = Leases::new();
        let a = leases.issue(Uuid::nil(), &[]);
        let b = leases.issue(Uuid::nil(), &[]);
        assert_ne!(a.token(), b.token());
        assert!(!format!("{a:?}").contains(a.token()));
        assert_eq!(leases.len(), 2);
    }
}
