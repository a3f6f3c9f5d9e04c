//! Shared vocabulary of csp: identifiers, the session event stream, the
//! typed statuses and the user-facing error catalogue.
//!
//! Owns: the types that cross crate and service boundaries (a session event
//! is produced by the session-pool, carried by the bus, relayed by the
//! gateway and rendered by the web app, so its JSON shape is defined once,
//! here), and `ErrorCode`, whose code, text, action, HTTP and gRPC status
//! are declared once per code in one table (`error.rs`). Each status
//! vocabulary — [`SessionStatus`], [`StatusReason`] (also the stored
//! `ended_reason`), [`AuditStatus`], [`ToolStatus`], and ticket enhancement's
//! [`EnhancementStatus`], [`FeedbackVote`], [`HistorySource`], [`ContextSource`],
//! [`NoteFormat`], and the operations pages' [`Health`], [`WorkerStatus`] and [`LogLevel`]
//! (with the charts' [`ChartRange`] and [`ChartSource`])
//! — is one enum whose JSON
//! name (serde, `as_str`) and store text (`store_text` or `as_str`, parsed
//! back with `from_store_text` or `FromStr`) are mapped here once; its proto
//! value is mapped once in `csp-proto`. Must never do I/O, depend on another
//! csp crate, or leave a caller comparing a status as a string.

mod audit;
mod charts;
mod error;
mod event;
mod ids;
mod imports;
mod operations;
mod tickets;

pub use audit::{AUDIT_TOPIC, AuditEvent, AuditStatus};
pub use charts::{ChartRange, ChartSource};
pub use error::ErrorCode;
pub use event::{
    Action, Event, ParseStatusError, SessionEvent, SessionStatus, StatusReason, ToolStatus,
};
pub use ids::{ParseIdError, SessionId, UserId};
pub use imports::ImportState;
pub use operations::{
    HEARTBEAT_EVERY, HEARTBEAT_TTL, HEARTBEATS_MISSED, Health, LogLevel, WORKER_DRAIN_PREFIX,
    WORKER_DRAIN_TTL, WORKER_HEARTBEAT_PREFIX, WORKER_LOG_LINE_BYTES, WORKER_LOG_LINES,
    WORKER_LOGS_PREFIX, WorkerHeartbeat, WorkerLogLine, WorkerLogs, WorkerStatus, heartbeat_key,
    worker_drain_key, worker_logs_key,
};
pub use tickets::{
    ContextSource, ENHANCE_GROUP, ENHANCE_TOPIC, EnhanceJob, EnhanceQueue, EnhancementStatus,
    FeedbackVote, HistorySource, NoteFormat, ParseTenantIdError, TenantId,
};

/// Roles, from most to least privileged: admin ⊃ operator ⊃ user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    User,
}

impl Role {
    fn rank(self) -> u8 {
        match self {
            Role::Admin => 2,
            Role::Operator => 1,
            Role::User => 0,
        }
    }

    /// True when this role has every right of `other` (admin includes operator includes user).
    pub fn includes(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::User => "user",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "user" => Ok(Role::User),
            other => Err(format!(
                "unknown role '{other}': expected admin, operator or user"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
