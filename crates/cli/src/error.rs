//! Why `csp dev` or `csp serve` could not start, or stopped: one variant per
//! kind of cause, so a bad setting, a port already taken, an unreachable
//! database and a crashed task are told apart (and each message names what
//! to fix). The offline tools (`csp audit`, `csp secrets`) keep `anyhow`.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A flag, variable or settings-file value is missing or wrong; the
    /// message names it. Only bad configuration is reported this way.
    #[error("{0}")]
    Config(String),
    /// A listener of this process could not bind (the service's own ports
    /// are its own errors: [`Error::Gateway`], …).
    #[error("cannot listen on {addr} for {what}")]
    Bind {
        /// What would have listened, with the variable that sets the address.
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or reached.
    #[error("{what}")]
    Store {
        what: &'static str,
        #[source]
        source: csp_store::Error,
    },
    /// NATS could not be reached or set up.
    #[error(transparent)]
    Bus(#[from] csp_bus::Error),
    /// Redis could not be reached.
    #[error(transparent)]
    Cache(#[from] csp_cache::Error),
    /// A service's row needs another service that no row starts before it
    /// (see `services.rs`): a mistake in the composition table.
    #[error("{service} needs {needs}, which is not started before it")]
    MissingDependency {
        service: &'static str,
        needs: &'static str,
    },
    /// A service's task panicked or was cancelled.
    #[error("the {service} task failed")]
    Task {
        service: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// `csp dev`'s data directory or a file in it could not be made or
    /// written.
    #[error("{what}")]
    DataDir {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// `csp dev`'s offline demo model could not start.
    #[error("starting the offline demo model")]
    OfflineModel(#[source] csp_mock_llm::Error),
    #[error(transparent)]
    Gateway(#[from] csp_gateway::Error),
    #[error(transparent)]
    SessionPool(#[from] csp_session_pool::Error),
    #[error(transparent)]
    Policy(#[from] csp_policy::Error),
    #[error(transparent)]
    Plugins(#[from] csp_plugins::Error),
    #[error(transparent)]
    Tickets(#[from] csp_tickets::Error),
    #[error(transparent)]
    TicketsWorker(#[from] csp_tickets_worker::Error),
    /// `csp serve tickets-worker` drained for a restart an admin asked for:
    /// not a failure, the process exits with
    /// `csp_tickets_worker::Exit::RESTART_CODE` (75) so its supervisor
    /// starts it again.
    #[error("the tickets worker drained for a restart")]
    Restart,
}

impl Error {
    pub(crate) fn config(message: impl std::fmt::Display) -> Self {
        Error::Config(message.to_string())
    }
}
