//! Metric names recorded by the proxies. Labels are closed sets.

/// Requests an agent made to the model proxy, by outcome: `forwarded`
/// (an upstream answer of any status was passed on), `unauthorized` (no or
/// a dead lease token), `upstream_error` (the model API could not be reached).
pub const MODEL_PROXY_REQUESTS: &str = "csp_model_proxy_requests_total";

/// `CONNECT` tunnels asked for by agents, by outcome: `opened`, `denied`
/// (host not declared, or no valid token), `failed` (could not connect).
pub const EGRESS_TUNNELS: &str = "csp_egress_tunnels_total";

pub(crate) fn describe() {
    metrics::describe_counter!(
        MODEL_PROXY_REQUESTS,
        "Model API requests of agents through the session-pool's proxy, by outcome"
    );
    metrics::describe_counter!(
        EGRESS_TUNNELS,
        "Network tunnels agents asked for (plugins' declared hosts), by outcome"
    );
}
