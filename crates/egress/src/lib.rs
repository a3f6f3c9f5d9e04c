//! What leaves an agent's sandbox, and on whose credentials.
//!
//! Owns: the per-process [`Lease`] (a random token that is worth something
//! only here and only while its agent process lives), the [`ModelProxy`]
//! (the Messages API passed through unbuffered, with the deployment's real
//! credential put in place of the lease token) and the [`ConnectProxy`]
//! (HTTP `CONNECT` tunnels to the hosts the process's plugins declare in
//! `permissions.network`, and nowhere else).
//!
//! Must never: hand the real model credential to anyone (it is added to the
//! upstream request only, and never logged); forward a request whose token
//! is unknown or revoked; open a tunnel to a host no lease names.
//!
//! The same [`Listener`] serves the session-pool's tool door
//! ([`Listener::serve_http`]), with a [`Leases`] table of its own.
//!
//! Sandboxed agents reach both proxies through Unix sockets bound into their
//! otherwise empty network namespace; unsandboxed ones (`CSP_AGENT_SANDBOX=off`)
//! through loopback TCP.

mod connect;
mod lease;
mod listener;
pub mod metrics;
mod model;

pub use connect::{ConnectProxy, HostRule};
pub use lease::{Grant, Lease, Leases};
pub use listener::{Listener, ListenerAddr};
pub use model::{Credential, ModelProxy, Upstream};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
    #[error("invalid model API URL {url:?}: {reason}")]
    Upstream { url: String, reason: String },
}
