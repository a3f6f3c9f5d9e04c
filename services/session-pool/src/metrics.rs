//! Metric names recorded by the session-pool. Labels are bounded.
//!
//! Also [`Usage`]: the two series rendered at scrape time (each live
//! session's memory, the model spend), written by the session actors and
//! read by the collector the server registers.

use csp_domain::SessionId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Sessions bound to a user and not ended (gauge).
pub(crate) const ACTIVE_SESSIONS: &str = "csp_active_sessions";
/// Ready, unassigned agent processes in the pre-warm pool (gauge).
pub(crate) const PREWARM_POOL_DEPTH: &str = "csp_prewarm_pool_depth";
/// Spawn → `initialize` reply of an agent process, seconds (histogram;
/// label `start` = `prewarm` | `cold`).
pub(crate) const SESSION_INIT_DURATION: &str = "csp_session_init_duration_seconds";
/// Agent processes that failed to start (counter; label `start`).
pub(crate) const AGENT_START_FAILURES: &str = "csp_agent_start_failures_total";
/// Warm processes replaced because the plugin set changed (counter).
pub(crate) const PREWARM_REBUILDS: &str = "csp_prewarm_rebuilds_total";

/// Resident memory of a session's agent process tree, bytes (gauge; label
/// `session_id`, rendered at scrape time for live sessions only, so the
/// series count is bounded by MAX_SESSIONS).
pub(crate) const SUBPROCESS_RSS: &str = "csp_subprocess_rss_bytes";
/// Failed model API requests and stopped turns (counter; label `type` =
/// rate_limited | overloaded | server_error | connection | authentication |
/// client_error | stalled | circuit_open | agent_crashed).
pub(crate) const QUERY_ERRORS: &str = "csp_query_error_total";
/// Every `type` of [`QUERY_ERRORS`]: the model API failure classes and the
/// turns csp stops itself. Each series starts at 0, so a dashboard or an
/// alert sees the first error as a change, not as a new series.
pub(crate) const QUERY_ERROR_TYPES: [&str; 9] = [
    "rate_limited",
    "overloaded",
    "server_error",
    "connection",
    "authentication",
    "client_error",
    "stalled",
    "circuit_open",
    "agent_crashed",
];
/// Sessions whose process stopped (counter; label `reason` = idle_timeout |
/// shutdown | crashed | start_failed | duration_limit | rss_restart |
/// resume_failed).
pub(crate) const SESSION_TERMINATIONS: &str = "csp_session_terminations_total";
/// Zombie processes reaped by the periodic scan (counter; alert on > 0).
pub(crate) const ZOMBIES_REAPED: &str = "csp_zombies_reaped_total";
/// Idle sessions nobody was attached to, suspended to make room for
/// another start (counter; label `reason` = capacity | user_cap).
pub(crate) const SESSIONS_EVICTED: &str = "csp_sessions_evicted_total";
/// Every `reason` of [`SESSIONS_EVICTED`] (series start at 0).
pub(crate) const EVICTION_REASONS: [&str; 2] = ["capacity", "user_cap"];
/// Sessions resumed in a new process (counter).
pub(crate) const SESSION_RESUMES: &str = "csp_session_resumes_total";

/// Tool permission decisions of the gate (counter; label `outcome` =
/// allowed | denied).
pub(crate) const PERMISSION_CHECKS: &str = "csp_permission_checks_total";
/// Tool invocations (counter; labels `tool`, `status` = complete | error | denied).
pub(crate) const TOOL_EXECUTIONS: &str = "csp_tool_execution_total";
/// Tool run time, seconds (histogram; label `tool`).
pub(crate) const TOOL_DURATION: &str = "csp_tool_execution_duration_seconds";
/// Model API spend reported by the CLI, USD (counter, rendered at scrape
/// time from exact micro-dollars).
pub(crate) const API_COST: &str = "csp_api_cost_usd_total";
/// Audit events that could not be queued after retries (counter; alert on > 0).
pub(crate) const AUDIT_LOST: &str = "csp_audit_events_lost_total";

/// What the actors measure and the scrape renders.
#[derive(Default)]
pub(crate) struct Usage {
    /// Resident memory of each live session's process tree, for
    /// [`SUBPROCESS_RSS`] (bounded by MAX_SESSIONS).
    rss: Mutex<HashMap<SessionId, u64>>,
    /// Model API spend reported by the CLI, micro-dollars ([`API_COST`]).
    cost_micros: AtomicU64,
}

impl Usage {
    pub(crate) fn record_rss(&self, id: SessionId, bytes: u64) {
        self.rss.lock().expect("rss lock").insert(id, bytes);
    }

    pub(crate) fn forget_rss(&self, id: SessionId) {
        self.rss.lock().expect("rss lock").remove(&id);
    }

    pub(crate) fn add_cost(&self, cost_usd: f64) {
        if cost_usd.is_finite() && cost_usd > 0.0 {
            self.cost_micros
                .fetch_add((cost_usd * 1e6).round() as u64, Ordering::Relaxed);
        }
    }

    /// `csp_subprocess_rss_bytes{session_id}` lines, rendered at scrape
    /// time so an ended session's series disappears with it.
    pub(crate) fn render_rss(&self, out: &mut String) {
        use std::fmt::Write;
        let rss = self.rss.lock().expect("rss lock");
        if rss.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP {} Resident memory of a session's agent process tree\n# TYPE {} gauge",
            SUBPROCESS_RSS, SUBPROCESS_RSS
        );
        for (id, bytes) in rss.iter() {
            let _ = writeln!(out, "{}{{session_id=\"{id}\"}} {bytes}", SUBPROCESS_RSS);
        }
    }

    pub(crate) fn render_cost(&self, out: &mut String) {
        use std::fmt::Write;
        let micros = self.cost_micros.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {0} Model API spend reported by the agent CLI, USD\n# TYPE {0} counter\n{0} {1}",
            API_COST,
            micros as f64 / 1e6
        );
    }
}

pub(crate) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        PERMISSION_CHECKS,
        Unit::Count,
        "Tool permission decisions of the gate, by outcome"
    );
    describe_counter!(
        TOOL_EXECUTIONS,
        Unit::Count,
        "Tool invocations by tool and status"
    );
    describe_histogram!(TOOL_DURATION, Unit::Seconds, "Tool run time by tool");
    describe_counter!(
        AUDIT_LOST,
        Unit::Count,
        "Audit events that could not be queued"
    );
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
    describe_counter!(
        PREWARM_REBUILDS,
        Unit::Count,
        "Warm agent processes replaced because the plugin set changed"
    );
    describe_counter!(
        QUERY_ERRORS,
        Unit::Count,
        "Failed model API requests and stopped turns, by type"
    );
    describe_counter!(
        SESSION_TERMINATIONS,
        Unit::Count,
        "Agent processes of sessions stopped, by reason"
    );
    describe_counter!(
        ZOMBIES_REAPED,
        Unit::Count,
        "Zombie processes reaped by the periodic scan"
    );
    describe_counter!(
        SESSION_RESUMES,
        Unit::Count,
        "Sessions continued in a new agent process"
    );
    describe_counter!(
        SESSIONS_EVICTED,
        Unit::Count,
        "Idle detached sessions suspended to make room, by reason"
    );
    csp_breaker::Breaker::describe_metrics();
    for t in QUERY_ERROR_TYPES {
        metrics::counter!(QUERY_ERRORS, "type" => t).increment(0);
    }
    for r in EVICTION_REASONS {
        metrics::counter!(SESSIONS_EVICTED, "reason" => r).increment(0);
    }
}
