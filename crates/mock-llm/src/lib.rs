//! A scripted stand-in for the Anthropic Messages API (and an OpenAI-compatible
//! chat-completions API), for tests and the offline demo.
//!
//! Owns: an HTTP server that speaks enough of the Messages API wire format (SSE streaming,
//! non-streaming fallback, error bodies, `count_tokens`, the `/api/hello` preconnect) that the
//! real Claude Code CLI, pointed at it with `ANTHROPIC_BASE_URL`, streams answers, runs tools
//! and reports exact `total_cost_usd`; and the scripting of those answers (a queue, a default,
//! `MOCK{...}MOCK` directives in the prompt, a rules file, built-in demo answers, the
//! deterministic ticket-enhancement note) plus the faults a real API shows (HTTP errors, SSE
//! errors, cut connections, hangs, stalls).
//!
//! Must never: be used silently by production. It is wired only into `csp dev` when no API key
//! is configured (where the UI says "offline demo model") and into `csp mock-llm`. It never
//! calls a real model, and never logs credential header values.
//!
//! `GET /v1/models` lists a fixed catalogue, so that a client can check a key without spending
//! tokens; with [`Options::api_key`] set, `/v1/*` answers a missing or wrong key with the API's
//! `401 authentication_error`.
//!
//! `POST /v1/chat/completions` (and `/api/v1/chat/completions`, for OpenRouter-style base URLs
//! ending in `/api/v1`) speaks the OpenAI chat-completions wire format, non-streaming, with
//! `usage`; it shares the queue, the default, directives, rules and the log with
//! `/v1/messages` (`chat.rs`).
//!
//! Each `POST /v1/messages` or chat-completions call gets the first of: the fixed answer to a
//! session-title request; the next queued behaviour; the default behaviour; a `MOCK{...}MOCK`
//! directive in the last text block of the last user message; for a request whose system
//! prompt is csp's ticket-enhancement prompt, a deterministic note in its four sections built
//! from the context in the prompt (`enhancement.rs`); the first matching rule of the rules file;
//! the built-in answers (quote a tool result, turn `run <cmd>` into a Bash call, or the rules
//! file's `default`, or a demo answer). `docs/mock-llm.md` documents the JSON of behaviours,
//! rules files and the control endpoints under `/_mock/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), csp_mock_llm::Error> {
//! use csp_mock_llm::{Behaviour, MockLlm, Options};
//! let mock = MockLlm::start(Options::default()).await?;
//! mock.push(Behaviour::text("Hello from the script."));
//! // run the CLI with ANTHROPIC_BASE_URL=mock.base_url() ...
//! mock.shutdown().await;
//! # Ok(()) }
//! ```

mod behaviour;
mod chat;
mod enhancement;
mod request;
mod response;
mod rules;
mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub use behaviour::{
    Behaviour, BodyDelay, ContentType, Cut, Hang, HttpError, Omit, Reply, SseError, SseEvent,
    Stall, ToolUse, Usage,
};
pub use rules::{Rule, Rules};
pub use server::{LogEntry, MockLlm, Source, serve};

/// How to run the server.
#[derive(Clone)]
pub struct Options {
    /// Port 0 picks a free port; [`MockLlm::addr`] reports it.
    pub addr: SocketAddr,
    pub rules: Rules,
    /// When set, every `/v1/*` and `/api/v1/*` request must carry `x-api-key: <key>` or
    /// `authorization: Bearer <key>`, else it gets the API's `401`. `None`
    /// accepts any credential, or none.
    pub api_key: Option<String>,
}

impl Default for Options {
    /// A free port on 127.0.0.1, the built-in rules only, any key accepted.
    fn default() -> Self {
        Options {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            rules: Rules::default(),
            api_key: None,
        }
    }
}

// By hand: the key must not end up in a log line that prints the options.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("addr", &self.addr)
            .field("rules", &self.rules)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the mock model server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot read the mock rules file {path}: {source}")]
    ReadRules {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid mock rules file {path}: {reason}")]
    InvalidRules { path: PathBuf, reason: String },
}
