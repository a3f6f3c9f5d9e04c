//! The audit event: what the session-pool (and later other services) send
//! the policy service about each tool invocation, over the durable queue.

use crate::{SessionId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The queue topic audit events travel on.
pub const AUDIT_TOPIC: &str = "audit";

/// How a tool invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStatus {
    Success,
    Error,
    Denied,
}

impl AuditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Success => "success",
            AuditStatus::Error => "error",
            AuditStatus::Denied => "denied",
        }
    }
}

/// One audit entry as produced. `sanitized_input` is already redacted by
/// the producer (the policy service redacts again before storing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Chosen by the producer: a redelivered event is stored once.
    pub audit_id: Uuid,
    /// Unix milliseconds when the invocation was requested.
    pub timestamp_ms: i64,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub tool_name: String,
    pub sanitized_input: String,
    pub result_status: AuditStatus,
    pub execution_duration_ms: Option<i64>,
    pub cost_usd: Option<f64>,
}
