//! Metric names recorded by the breaker. No labels: there is one breaker.

/// The model-API circuit as this replica last saw it (gauge; 0 closed,
/// 1 half-open, 2 open). Replicas share the state but each reports its
/// own reading, so dashboards take the max over replicas.
pub const STATE_GAUGE: &str = "csp_circuit_breaker_state";

pub(crate) fn describe() {
    metrics::describe_gauge!(
        STATE_GAUGE,
        "Model API circuit breaker state: 0 closed, 1 half-open, 2 open"
    );
}

pub(crate) fn record(state: crate::State) {
    metrics::gauge!(STATE_GAUGE).set(state.gauge_value());
}
