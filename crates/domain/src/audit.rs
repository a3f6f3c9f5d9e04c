//! The audit event: what the session-pool (and later other services) send
//! the policy service about each tool invocation, over the durable queue.

use crate::{ParseStatusError, SessionId, ToolStatus, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The queue topic audit events travel on.
pub const AUDIT_TOPIC: &str = "audit";

/// How a tool invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum AuditStatus {
    Success,
    Error,
    Denied,
}

impl AuditStatus {
    /// Every variant, for exhaustive mapping tests and the store's check.
    pub const ALL: [AuditStatus; 3] = [
        AuditStatus::Success,
        AuditStatus::Error,
        AuditStatus::Denied,
    ];

    /// The one name everywhere: JSON (serde's), the store's `result_status`
    /// and the proto's `AuditEntry.result_status`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Success => "success",
            AuditStatus::Error => "error",
            AuditStatus::Denied => "denied",
        }
    }
}

impl std::str::FromStr for AuditStatus {
    type Err = ParseStatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseStatusError::new("audit result", s))
    }
}

impl std::fmt::Display for AuditStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the audit log records a tool call that ended so.
impl From<ToolStatus> for AuditStatus {
    fn from(s: ToolStatus) -> Self {
        match s {
            ToolStatus::Complete => AuditStatus::Success,
            ToolStatus::Error => AuditStatus::Error,
            ToolStatus::Denied => AuditStatus::Denied,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audit_status_round_trips_through_text_and_json() {
        // A new variant fails to compile here: add it to `ALL` as well.
        let listed = |s: AuditStatus| match s {
            AuditStatus::Success | AuditStatus::Error | AuditStatus::Denied => {
                AuditStatus::ALL.contains(&s)
            }
        };
        assert!(AuditStatus::ALL.into_iter().all(listed));
        for s in AuditStatus::ALL {
            assert_eq!(s.as_str().parse::<AuditStatus>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
            assert_eq!(
                serde_json::from_value::<AuditStatus>(json!(s.as_str())).unwrap(),
                s
            );
        }
        let texts = AuditStatus::ALL.map(AuditStatus::as_str);
        assert_eq!(texts, ["success", "error", "denied"]);
        assert!("ok".parse::<AuditStatus>().is_err());
        for (tool, audit) in [
            (ToolStatus::Complete, "success"),
            (ToolStatus::Error, "error"),
            (ToolStatus::Denied, "denied"),
        ] {
            assert_eq!(AuditStatus::from(tool).as_str(), audit);
            assert_eq!(serde_json::to_value(tool).unwrap(), json!(tool.as_str()));
        }
    }
}
