//! The queue's message as the worker reads it: the job
//! ([`csp_domain::EnhanceJob`]) and, beside its fields, the W3C
//! `traceparent` of the intake that queued it, so the worker's
//! `enhancement` span continues the webhook's trace (the queue carries no
//! headers). A message without one, or with one that does not parse, starts
//! a trace of its own.

use csp_domain::EnhanceJob;
use serde::{Deserialize, Serialize};

/// Serialized as it was read when a job is handed on to its tenant's queue
/// (`route.rs`), its trace kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Queued {
    #[serde(flatten)]
    pub(crate) job: EnhanceJob,
    #[serde(default)]
    pub(crate) traceparent: Option<String>,
}

impl Queued {
    /// Makes `span` continue the queued trace, if the message carries one.
    pub(crate) fn continue_trace(&self, span: &tracing::Span) {
        if let Some(traceparent) = self.traceparent.as_deref() {
            csp_telemetry::set_parent(span, |key| {
                (key == "traceparent").then(|| traceparent.to_owned())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_with_and_without_a_trace() {
        let job = serde_json::json!({
            "job_id": "0190f3a1-7c4e-7d2a-9b1e-3f2a1c0d9e8b",
            "tenant_id": "acme",
            "correlation_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        });
        let plain: Queued = serde_json::from_value(job.clone()).unwrap();
        assert_eq!(plain.traceparent, None);
        assert_eq!(plain.job.tenant_id.as_str(), "acme");

        let mut traced = job;
        traced["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into();
        let traced: Queued = serde_json::from_value(traced).unwrap();
        assert_eq!(traced.job, plain.job);
        assert_eq!(
            traced.traceparent.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        // Setting a parent without a tracing layer is harmless.
        traced.continue_trace(&tracing::info_span!("enhancement"));

        let bad = serde_json::json!({"job_id": "nope", "tenant_id": "acme", "correlation_id": "c"});
        assert!(serde_json::from_value::<Queued>(bad).is_err());
    }
}
