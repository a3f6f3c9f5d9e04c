//! The seam between a session's actor and the agent processes it runs.
//!
//! The actor only needs to say things to a process (a user message, an
//! interrupt), read what it says, ask its memory and end it; and to get a
//! new one (cold, `--resume`, or a fresh CLI session after a failed
//! resume). [`Process`], [`Output`] and [`Spawner`] are exactly that. The
//! production spawner (`spawner`) starts the Claude Code CLI through
//! `csp-agent` in its sandbox; the actor's unit tests use `fake`, which
//! plays scripted stream-json messages and needs no CLI.
//!
//! Owns no state and imports no other module of the crate: the actor, the
//! pool and the spawner all depend on it, never the other way round.

use async_trait::async_trait;
use csp_agent::{Agent, AgentEvent, AgentEvents};
use csp_domain::SessionId;
use std::time::Duration;
use uuid::Uuid;

/// A running agent process, as its session's actor drives it.
#[async_trait]
pub(crate) trait Process: Send + Sync {
    /// Writes one user message (a turn starts, or waits behind the current one).
    async fn send_user(&self, text: &str) -> Result<(), csp_agent::Error>;
    /// Stops the current turn; returns once the process acknowledged.
    async fn interrupt(&self) -> Result<(), csp_agent::Error>;
    /// Resident memory of the process and everything it runs, bytes.
    fn rss_bytes(&self) -> u64;
    /// Ends the process (stdin closed, then signals, `grace` before each
    /// step); its exit code, `None` when a signal ended it.
    async fn shutdown(self: Box<Self>, grace: Duration) -> Option<i32>;
}

/// Everything a process says, in order; `Exited` is the last event.
#[async_trait]
pub(crate) trait Output: Send {
    /// `None` after the process's `Exited` has been delivered.
    async fn recv(&mut self) -> Option<AgentEvent>;
}

/// A process that answered `initialize`: ready and idle.
pub(crate) struct Started {
    pub(crate) process: Box<dyn Process>,
    pub(crate) output: Box<dyn Output>,
}

/// Why a process is started; the label of its start metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A warm slot of the pool, before any user.
    Prewarm,
    /// A new conversation (or a fresh CLI session after a failed resume).
    Cold,
    /// Continuing the stored conversation (`--resume`).
    Resume,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Prewarm => "prewarm",
            Reason::Cold => "cold",
            Reason::Resume => "resume",
        }
    }
}

/// One process to start for a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    /// The csp session: its directories, its permission gate.
    pub(crate) session: SessionId,
    /// The CLI's own session id (`--session-id`, or `--resume` of it).
    pub(crate) agent_session: Uuid,
    pub(crate) reason: Reason,
}

impl Request {
    /// Whether the CLI continues `agent_session`'s transcript.
    pub(crate) fn resume(&self) -> bool {
        self.reason == Reason::Resume
    }
}

/// Starts agent processes for sessions.
#[async_trait]
pub(crate) trait Spawner: Send + Sync {
    /// Returns once the process is ready (answered `initialize`).
    async fn spawn(&self, request: Request) -> Result<Started, csp_agent::Error>;
}

#[async_trait]
impl Process for Agent {
    async fn send_user(&self, text: &str) -> Result<(), csp_agent::Error> {
        Agent::send_user(self, text).await
    }

    async fn interrupt(&self) -> Result<(), csp_agent::Error> {
        Agent::interrupt(self).await
    }

    fn rss_bytes(&self) -> u64 {
        Agent::rss_bytes(self)
    }

    async fn shutdown(self: Box<Self>, grace: Duration) -> Option<i32> {
        Agent::shutdown(*self, grace).await
    }
}

#[async_trait]
impl Output for AgentEvents {
    async fn recv(&mut self) -> Option<AgentEvent> {
        AgentEvents::recv(self).await
    }
}

impl Started {
    pub(crate) fn agent((agent, events): (Agent, AgentEvents)) -> Self {
        Self {
            process: Box::new(agent),
            output: Box::new(events),
        }
    }
}

#[cfg(test)]
pub(crate) mod fake;
