//! Metric names of the tickets service. Labels are bounded: tenant ids by
//! the tenant table (a delivery for an unknown tenant is counted under
//! `unknown`), statuses and reasons by the closed sets below.

pub(crate) const ENHANCEMENT_REQUESTS: &str = "enhancement_requests_total";
pub(crate) const QUEUE_DEPTH: &str = "queue_depth";
pub(crate) const TICKET_HISTORY_STORED: &str = "ticket_history_stored_total";
/// Shared with the plugins service: the same event, the same counter.
pub(crate) const AUDIT_LOST: &str = "csp_audit_events_lost_total";

/// The tenant label of a delivery whose tenant is not (or no longer) known.
pub(crate) const UNKNOWN_TENANT: &str = "unknown";

/// Why a delivery was refused: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    TenantNotFound,
    Signature,
    RateLimited,
    Invalid,
    TooLarge,
    Unavailable,
}

impl Reject {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reject::TenantNotFound => "tenant_not_found",
            Reject::Signature => "signature",
            Reject::RateLimited => "rate_limited",
            Reject::Invalid => "invalid",
            Reject::TooLarge => "too_large",
            Reject::Unavailable => "unavailable",
        }
    }
}

pub(crate) fn describe() {
    metrics::describe_counter!(
        ENHANCEMENT_REQUESTS,
        "New-ticket webhooks by tenant and outcome: accepted, duplicate (a repeated delivery), or rejected with a reason"
    );
    metrics::describe_gauge!(
        QUEUE_DEPTH,
        "Enhancement jobs pending or processing, as the tickets service's sweeper last counted them"
    );
    metrics::describe_counter!(
        TICKET_HISTORY_STORED,
        "Resolved tickets written to ticket_history, by tenant, source (webhook_resolved, bulk_import) and status (stored, rejected)"
    );
    metrics::describe_counter!(
        AUDIT_LOST,
        "Audit events dropped because the queue stayed unavailable"
    );
}

pub(crate) fn accepted(tenant: &str, duplicate: bool) {
    let status = if duplicate { "duplicate" } else { "accepted" };
    metrics::counter!(ENHANCEMENT_REQUESTS, "tenant_id" => tenant.to_owned(), "status" => status, "reason" => "none")
        .increment(1);
}

pub(crate) fn rejected(tenant: &str, reason: Reject) {
    metrics::counter!(ENHANCEMENT_REQUESTS, "tenant_id" => tenant.to_owned(), "status" => "rejected", "reason" => reason.as_str())
        .increment(1);
}

pub(crate) fn history(tenant: &str, status: &'static str) {
    metrics::counter!(TICKET_HISTORY_STORED, "tenant_id" => tenant.to_owned(), "source" => csp_domain::HistorySource::WebhookResolved.as_str(), "status" => status)
        .increment(1);
}

pub(crate) fn queue_depth(depth: u64) {
    metrics::gauge!(QUEUE_DEPTH).set(depth as f64);
}
