//! Metric names of the policy service.

pub(crate) const PERMISSION_DECISIONS: &str = "csp_permission_decisions_total";
pub(crate) const BUDGET_REJECTIONS: &str = "csp_budget_rejections_total";

pub(crate) fn describe() {
    metrics::describe_counter!(
        PERMISSION_DECISIONS,
        "Tool permission decisions by outcome (allowed|denied) and reason"
    );
    metrics::describe_counter!(
        BUDGET_REJECTIONS,
        "Messages refused because the user's monthly cost cap was reached"
    );
}
