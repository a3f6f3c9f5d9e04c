//! Drives the Claude Code CLI (`claude`) as a subprocess over its
//! `stream-json` protocol, the way the official Agent SDKs do.
//!
//! Owns: launching one CLI process per session in its own process group with
//! a scrubbed environment, the `initialize` handshake, the stdin/stdout
//! NDJSON framing, the control channel (interrupts, permission requests) and
//! the typed view of what the CLI prints ([`Message`]); measuring and
//! killing the CLI's whole process tree ([`tree_rss_bytes`], [`tree_pids`]);
//! and reaping the zombies such trees leave behind ([`reap_zombies`]).
//!
//! Confinement: [`Sandbox`] puts every process in a bubblewrap sandbox that
//! sees only its own session directory, its own processes and loopback
//! ports forwarded to csp's proxies (see `sandbox.rs`).
//!
//! Must never: let the agent inherit the platform's environment (it runs
//! arbitrary shell commands), write a line to the CLI that `serde_json` did
//! not produce (one bad line kills it), let a tool call run without asking
//! the [`PermissionHook`] (it fails closed on timeout), leave processes behind
//! when an [`Agent`] is dropped, reap a child that a tokio `Child` waits for,
//! or log message bodies above debug level.
//! Session bookkeeping, pooling and persistence belong to the session-pool.

mod agent;
mod config;
mod error;
mod lines;
mod message;
mod permission;
mod process;
mod reaper;
mod sandbox;

pub use agent::{Agent, AgentEvent, AgentEvents, PERMISSION_TIMEOUT_MESSAGE};
pub use config::{Config, SpawnSpec};
pub use error::Error;
pub use message::{
    ApiRetry, AssistantBody, AssistantMessage, Content, ContentBlock, Init, Message,
    PermissionDenied, ResultMessage, SessionStateChanged, StreamEvent, System, ToolResult, ToolUse,
    UserBody, UserMessage,
};
pub use permission::{AllowList, Decision, PermissionHook, PermissionRequest};
pub use process::{tree_pids, tree_rss_bytes};
pub use reaper::{become_subreaper, reap_zombies};
pub use sandbox::{Bubblewrap, Forward, Reach, Sandbox};

#[cfg(test)]
mod testing {
    use std::sync::{Mutex, MutexGuard};
    use std::time::{Duration, Instant};

    /// Unit tests that start child processes take turns: the reaper's
    /// tests count this process's zombies, and `cargo test` runs every test
    /// as a thread of one process.
    pub(crate) fn children_lock() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Polls until `done`; the bound only stops a hung test.
    pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "gave up waiting until {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
