//! Drives the Claude Code CLI (`claude`) as a subprocess over its
//! `stream-json` protocol, the way the official Agent SDKs do.
//!
//! Owns: launching one CLI process per session in its own process group with
//! a scrubbed environment, the `initialize` handshake, the stdin/stdout
//! NDJSON framing, the control channel (interrupts, permission requests) and
//! the typed view of what the CLI prints ([`Message`]).
//!
//! Must never: let the agent inherit the platform's environment (it runs
//! arbitrary shell commands), write a line to the CLI that `serde_json` did
//! not produce (one bad line kills it), let a tool call run without asking
//! the [`PermissionHook`] (it fails closed on timeout), leave processes behind
//! when an [`Agent`] is dropped, or log message bodies above debug level.
//! Session bookkeeping, pooling and persistence belong to the session-pool.

mod agent;
mod config;
mod error;
mod lines;
mod message;
mod permission;
mod process;

pub use agent::{Agent, AgentEvent, AgentEvents, PERMISSION_TIMEOUT_MESSAGE};
pub use config::{Config, SpawnSpec};
pub use error::Error;
pub use message::{
    ApiRetry, AssistantBody, AssistantMessage, Content, ContentBlock, Init, Message,
    PermissionDenied, ResultMessage, SessionStateChanged, StreamEvent, System, ToolResult, ToolUse,
    UserBody, UserMessage,
};
pub use permission::{AllowList, Decision, PermissionHook, PermissionRequest};
