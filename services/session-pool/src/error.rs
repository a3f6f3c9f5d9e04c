//! The crate's one error type. Its own module, so that the modules that
//! return it (`egress`) need not import the crate root, which imports them.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rpc(#[from] csp_rpc::Error),
    #[error("cannot use the data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A setting is invalid (a limit out of range, the model API URL).
    #[error("{0}")]
    Config(String),
    /// Something the session-pool needs on this machine is missing or does
    /// not work: the agent CLI, or the sandbox it runs in. The text says
    /// what to install or set.
    #[error("{0}")]
    MissingDependency(String),
    /// The model or egress proxy could not listen.
    #[error(transparent)]
    Egress(csp_egress::Error),
    /// A task of the running server failed (panicked or was cancelled):
    /// not a configuration problem.
    #[error("{what} task failed: {source}")]
    Task {
        what: &'static str,
        source: tokio::task::JoinError,
    },
}
