//! The audit log's writer. Tool invocations arrive as events on the durable
//! queue (JetStream in multi-service mode) and are written idempotently by
//! their `audit_id`, acknowledged only once stored: a policy restart loses
//! none, a redelivery stores nothing twice. Admin actions are written
//! directly. Every input is redacted again before it is stored.

use csp_bus::{Backoff, Handler, HandlerError, JobContext, Queue, WorkerConfig, run_worker};
use csp_domain::{AUDIT_TOPIC, AuditEvent, AuditStatus, SessionId, UserId};
use csp_store::{AuditStore, NewAuditEntry};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// The consumer group of policy replicas (they share the work).
const GROUP: &str = "policy-audit";

pub(crate) fn entry(event: AuditEvent) -> NewAuditEntry {
    let timestamp =
        OffsetDateTime::from_unix_timestamp_nanos(event.timestamp_ms as i128 * 1_000_000)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
    NewAuditEntry {
        audit_id: event.audit_id,
        timestamp,
        user_id: event.user_id,
        session_id: event.session_id,
        tool_name: event.tool_name,
        sanitized_input: csp_redact::redact_text(&event.sanitized_input).into_owned(),
        result_status: event.result_status.as_str().to_owned(),
        execution_duration_ms: event.execution_duration_ms,
        cost_micros: event.cost_usd.map(crate::budget::micros),
    }
}

/// An admin action by `actor` (`tool_name` like `admin.user.create`).
pub(crate) fn admin_action(
    actor: UserId,
    action: &str,
    details: serde_json::Value,
) -> NewAuditEntry {
    let input = csp_redact::redact_json(&details).to_string();
    NewAuditEntry {
        audit_id: uuid::Uuid::new_v4(),
        timestamp: OffsetDateTime::now_utc(),
        user_id: Some(actor),
        session_id: None::<SessionId>,
        tool_name: action.to_owned(),
        sanitized_input: input,
        result_status: AuditStatus::Success.as_str().to_owned(),
        execution_duration_ms: None,
        cost_micros: None,
    }
}

/// Writes queued audit events until `shutdown`, one at a time, through the
/// queue's worker loop. A store failure leaves the event unacknowledged
/// (redelivered after a pause, for as long as the queue keeps it); an
/// unreadable one goes to the dead-letter topic (`audit.dead`) with its
/// decode error, since no retry can fix it.
pub(crate) async fn consume(
    queue: Arc<dyn Queue>,
    store: Arc<dyn AuditStore>,
    shutdown: CancellationToken,
) {
    let config = WorkerConfig {
        // Never given up on: a store outage must not lose audit events.
        max_deliveries: u32::MAX,
        backoff: Backoff {
            initial: RETRY_PAUSE,
            max: RETRY_PAUSE,
            factor: 1.0,
        },
        ..WorkerConfig::new(AUDIT_TOPIC, GROUP)
    };
    if let Err(e) = run_worker(queue, config, Arc::new(Writer { store }), shutdown).await {
        tracing::error!(error = %e, "the audit queue consumer cannot start");
    }
}

/// How long a store failure pauses an event before it is tried again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Stores one audit event, idempotently by its `audit_id`.
struct Writer {
    store: Arc<dyn AuditStore>,
}

#[async_trait::async_trait]
impl Handler<AuditEvent> for Writer {
    async fn handle(&self, event: AuditEvent, _: &JobContext) -> Result<(), HandlerError> {
        self.store
            .append_audit(entry(event))
            .await
            .map(drop)
            .map_err(|e| HandlerError::retryable(format!("could not store an audit event: {e}")))
    }
}
