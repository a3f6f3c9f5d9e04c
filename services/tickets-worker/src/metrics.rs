//! Metric names of the tickets worker: the seed's names (issue 14), without
//! csp's `csp_` prefix because the seed's dashboards query them so. Labels
//! are bounded: `tenant_id` (one per configured tenant) and `status`.

use std::collections::VecDeque;
use std::sync::Mutex;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// One attempt of a job, seconds (histogram; labels `tenant_id`, `status`:
/// `completed`, `failed`, or `retrying` for an attempt the queue repeats).
pub const DURATION_SECONDS: &str = "enhancement_duration_seconds";
/// Jobs that ended, by `tenant_id` and `status` (`completed`, `failed`);
/// the intake counts `accepted` under the same name.
pub const REQUESTS_TOTAL: &str = "enhancement_requests_total";
/// completed / (completed + failed) over the last [`SUCCESS_WINDOW`] jobs
/// this worker ended (gauge, 0..1, no labels; absent until one ended).
pub const SUCCESS_RATE: &str = "enhancement_success_rate";
/// Jobs being worked on now in this worker (gauge): not those deferred
/// for their tenant's cap.
pub const ACTIVE_COUNT: &str = "worker_active_count";
/// Jobs the success rate looks back over.
pub const SUCCESS_WINDOW: usize = 100;

pub fn describe() {
    describe_histogram!(
        DURATION_SECONDS,
        Unit::Seconds,
        "Time of one enhancement attempt, from taking the job to its outcome, by tenant_id and status (completed, failed, retrying)"
    );
    describe_counter!(
        REQUESTS_TOTAL,
        "Enhancement requests by tenant_id and status: accepted (intake), completed and failed (workers)"
    );
    describe_gauge!(
        SUCCESS_RATE,
        "Share of the last 100 enhancement jobs ended by this worker that completed (completed / (completed + failed))"
    );
    describe_gauge!(
        ACTIVE_COUNT,
        "Enhancement jobs being worked on now by this worker"
    );
}

/// The rolling window behind [`SUCCESS_RATE`].
#[derive(Default)]
pub(crate) struct SuccessRate {
    last: Mutex<VecDeque<bool>>,
}

impl SuccessRate {
    /// Adds one ended job and returns the new rate.
    pub(crate) fn record(&self, completed: bool) -> f64 {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.len() == SUCCESS_WINDOW {
            last.pop_front();
        }
        last.push_back(completed);
        let ok = last.iter().filter(|c| **c).count();
        let rate = ok as f64 / last.len() as f64;
        metrics::gauge!(SUCCESS_RATE).set(rate);
        rate
    }
}

pub(crate) fn ended(tenant: &str, status: &'static str, seconds: f64) {
    metrics::histogram!(DURATION_SECONDS, "tenant_id" => tenant.to_owned(), "status" => status)
        .record(seconds);
    if status != "retrying" {
        metrics::counter!(REQUESTS_TOTAL, "tenant_id" => tenant.to_owned(), "status" => status)
            .increment(1);
    }
}

/// Counts a job in [`ACTIVE_COUNT`] for as long as it lives.
pub(crate) struct Active;

impl Active {
    pub(crate) fn start() -> Self {
        metrics::gauge!(ACTIVE_COUNT).increment(1.0);
        Self
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        metrics::gauge!(ACTIVE_COUNT).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_success_rate_looks_back_over_the_window() {
        let rate = SuccessRate::default();
        assert_eq!(rate.record(true), 1.0);
        assert_eq!(rate.record(false), 0.5);
        for _ in 0..SUCCESS_WINDOW {
            rate.record(true);
        }
        // The failure has left the window.
        assert_eq!(rate.record(true), 1.0);
        for _ in 0..SUCCESS_WINDOW / 4 {
            rate.record(false);
        }
        assert_eq!(rate.record(true), 0.75);
    }
}
