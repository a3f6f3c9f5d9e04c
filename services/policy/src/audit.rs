//! The audit log's writer. Tool invocations arrive as events on the durable
//! queue (JetStream in multi-service mode) and are written idempotently by
//! their `audit_id`, acknowledged only once stored: a policy restart loses
//! none, a redelivery stores nothing twice. Admin actions are written
//! directly. Every input is redacted again before it is stored.

use csp_bus::Queue;
use csp_domain::{AUDIT_TOPIC, AuditEvent, AuditStatus, SessionId, UserId};
use csp_store::{AuditStore, NewAuditEntry};
use futures::StreamExt;
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

/// Writes queued audit events until `shutdown`. A store failure leaves the
/// event unacknowledged (redelivered after a pause); an unreadable one is
/// logged and dropped, since no retry can fix it.
pub(crate) async fn consume(
    queue: Arc<dyn Queue>,
    store: Arc<dyn AuditStore>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut deliveries = tokio::select! {
            r = queue.pull(AUDIT_TOPIC, GROUP) => match r {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "audit queue unavailable; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        backoff = Duration::from_millis(200);
        loop {
            let next = tokio::select! {
                n = deliveries.next() => n,
                _ = shutdown.cancelled() => return,
            };
            let delivery = match next {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "audit delivery failed; reconnecting");
                    break;
                }
                None => break,
            };
            let event: AuditEvent = match serde_json::from_slice(&delivery.payload) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, id = %delivery.id, "dropping an unreadable audit event");
                    let _ = delivery.ack().await;
                    continue;
                }
            };
            match store.append_audit(entry(event)).await {
                Ok(_) => {
                    if let Err(e) = delivery.ack().await {
                        // Redelivered and then skipped as a duplicate.
                        tracing::debug!(error = %e, "audit ack failed");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not store an audit event; will retry");
                    let _ = delivery.nack(Duration::from_secs(1)).await;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
