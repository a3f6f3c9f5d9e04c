//! What can stop the worker as a whole (a job's failure never does: it is
//! recorded on the job).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is invalid; the message names it.
    #[error("tickets worker configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Queue(#[from] csp_bus::Error),
    /// The consumer task panicked.
    #[error("tickets worker consumer task failed")]
    Task(#[source] tokio::task::JoinError),
}
