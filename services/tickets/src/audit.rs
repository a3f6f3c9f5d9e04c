//! Admin actions and refused webhooks, queued for the audit log (the policy
//! service writes it), as the plugins service does. A row names the action,
//! the tenant and the fields that changed: never a value of a secret.

use csp_bus::Queue;
use csp_domain::{AUDIT_TOPIC, AuditEvent, AuditStatus, UserId};
use serde_json::Value;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) struct Auditor {
    queue: Arc<dyn Queue>,
}

impl Auditor {
    pub(crate) fn new(queue: Arc<dyn Queue>) -> Self {
        Self { queue }
    }

    /// Queues the event in the background: an admin action never waits on
    /// (or fails with) a broker blip; a push that keeps failing is logged
    /// and counted.
    pub(crate) fn record(
        &self,
        actor: Option<UserId>,
        action: &str,
        details: Value,
        result: AuditStatus,
    ) {
        let event = AuditEvent {
            audit_id: uuid::Uuid::new_v4(),
            timestamp_ms: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
                as i64,
            user_id: actor,
            session_id: None,
            tool_name: action.to_owned(),
            sanitized_input: details.to_string(),
            result_status: result,
            execution_duration_ms: None,
            cost_usd: None,
        };
        let queue = self.queue.clone();
        tokio::spawn(async move {
            let Ok(payload) = serde_json::to_vec(&event) else {
                return;
            };
            let id = event.audit_id.to_string();
            let pushed =
                csp_bus::push_retrying(queue.as_ref(), AUDIT_TOPIC, &id, payload.into(), 5).await;
            if let Err(e) = pushed {
                tracing::error!(audit_id = %id, action = %event.tool_name, error = %e, "audit event lost: the queue is unavailable");
                metrics::counter!(crate::metrics::AUDIT_LOST).increment(1);
            }
        });
    }
}
