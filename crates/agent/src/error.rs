use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while driving the CLI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Claude Code CLI not found at {}. Run `scripts/setup.sh` (installs @anthropic-ai/claude-code) or set CLAUDE_CLI=/path/to/claude.",
        path.display()
    )]
    CliNotFound { path: PathBuf },

    #[error("the session working directory {} is not a directory", path.display())]
    Workdir { path: PathBuf },

    #[error("could not prepare {}: {source}", path.display())]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not start the Claude Code CLI at {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the Claude Code CLI did not become ready within {timeout:?}")]
    InitTimeout { timeout: Duration },

    #[error("the Claude Code CLI exited before it was ready (exit code {code:?}): {stderr_tail}")]
    ExitedBeforeReady {
        code: Option<i32>,
        stderr_tail: String,
    },

    /// The CLI ended the session before answering `initialize`; this is how a
    /// `--resume` of an unknown or unreadable session fails.
    #[error("the Claude Code CLI refused to start the session ({subtype}): {}", errors.join("; "))]
    StartRejected {
        subtype: String,
        errors: Vec<String>,
    },

    #[error("control request `{subtype}` got no answer within {timeout:?}")]
    ControlTimeout { subtype: String, timeout: Duration },

    #[error("control request `{subtype}` failed: {message}")]
    ControlRejected {
        subtype: String,
        message: String,
        code: Option<String>,
    },

    #[error("a control request must be a JSON object with a string `subtype`")]
    InvalidRequest,

    #[error("could not write to the Claude Code CLI: {0}")]
    Write(#[source] std::io::Error),

    #[error("the Claude Code CLI is no longer running")]
    Closed,
}
