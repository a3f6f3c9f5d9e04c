//! What a session's actor is given: where its events and records go, whom
//! it asks, and the settings it runs under. The pool builds one
//! [`Context`] at start and every actor shares it; the actor never sees the
//! pool (its slots, its table), so it can be driven by a unit test with a
//! fake spawner and in-memory backends.

use crate::gate::Bindings;
use crate::governor::Governor;
use crate::lifecycle::Limits;
use crate::metrics::{self as m, Usage};
use crate::model_check::ModelKey;
use crate::process::Spawner;
use csp_breaker::Breaker;
use csp_bus::{EventBus, Queue};
use csp_cache::Cache;
use csp_domain::{AUDIT_TOPIC, AuditEvent};
use csp_store::SessionStore;
use std::sync::Arc;

/// The sinks and dependencies of every session actor.
pub(crate) struct Context {
    /// Starts the session's agent processes (cold, `--resume`, fresh).
    pub(crate) spawner: Arc<dyn Spawner>,
    /// The conversation, the session's status, title and cost.
    pub(crate) store: Arc<dyn SessionStore>,
    /// Where numbered session events are published.
    pub(crate) bus: Arc<dyn EventBus>,
    /// Presence: whether a browser is attached (the idle timeout).
    pub(crate) cache: Arc<dyn Cache>,
    /// The model API circuit breaker: a permit per turn, its outcome.
    pub(crate) breaker: Arc<Breaker>,
    /// Settles each turn's budget reservation.
    pub(crate) governor: Arc<dyn Governor>,
    /// The permission gates' view: the turn in flight, denials to show.
    pub(crate) bindings: Bindings,
    /// Where audit events of tool invocations go (the policy service).
    pub(crate) audit: Arc<dyn Queue>,
    /// Memory and spend, rendered at scrape time.
    pub(crate) usage: Arc<Usage>,
    /// Told when an agent sees its key refused.
    pub(crate) model_key: Arc<ModelKey>,
    /// Per-session duration, memory, idle and stall limits, output bounds.
    pub(crate) limits: Limits,
    /// Issue 12: secrets redacted from every event (see `output`).
    pub(crate) known_secrets: csp_redact::KnownSecrets,
    /// Shown to users, e.g. "offline demo model".
    pub(crate) model_label: String,
}

impl Context {
    /// Queues an audit event for the policy service, retrying briefly; the
    /// caller does not wait (a tool card must not stall on the queue).
    pub(crate) fn audit(&self, event: AuditEvent) {
        let queue = self.audit.clone();
        tokio::spawn(async move {
            let Ok(payload) = serde_json::to_vec(&event) else {
                return;
            };
            let id = event.audit_id.to_string();
            let pushed =
                csp_bus::push_retrying(queue.as_ref(), AUDIT_TOPIC, &id, payload.into(), 5).await;
            if let Err(e) = pushed {
                tracing::error!(audit_id = %id, tool = %event.tool_name, error = %e, "audit event lost: the queue is unavailable");
                metrics::counter!(m::AUDIT_LOST).increment(1);
            }
        });
    }
}

#[cfg(test)]
pub(crate) mod fake;
