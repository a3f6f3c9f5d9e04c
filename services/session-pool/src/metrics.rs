//! Metric names recorded by the session-pool. Labels are bounded.

/// Sessions bound to a user and not ended (gauge).
pub(crate) const ACTIVE_SESSIONS: &str = "csp_active_sessions";
/// Ready, unassigned agent processes in the pre-warm pool (gauge).
pub(crate) const PREWARM_POOL_DEPTH: &str = "csp_prewarm_pool_depth";
/// Spawn → `initialize` reply of an agent process, seconds (histogram;
/// label `start` = `prewarm` | `cold`).
pub(crate) const SESSION_INIT_DURATION: &str = "csp_session_init_duration_seconds";
/// Agent processes that failed to start (counter; label `start`).
pub(crate) const AGENT_START_FAILURES: &str = "csp_agent_start_failures_total";

pub(crate) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        ACTIVE_SESSIONS,
        Unit::Count,
        "Sessions bound to a user and not ended"
    );
    describe_gauge!(
        PREWARM_POOL_DEPTH,
        Unit::Count,
        "Ready, unassigned agent processes"
    );
    describe_histogram!(
        SESSION_INIT_DURATION,
        Unit::Seconds,
        "Agent process spawn until its initialize reply"
    );
    describe_counter!(
        AGENT_START_FAILURES,
        Unit::Count,
        "Agent processes that failed to start"
    );
}
