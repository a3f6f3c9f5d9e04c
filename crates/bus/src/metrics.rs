//! Metric names recorded by the queue's worker loop. Labels are closed
//! sets: `topic` is one of the topics the code consumes (constants, such as
//! `audit`), `outcome` is listed with each metric.

/// Deliveries the worker loop settled, by `topic` and `outcome`: `handled`
/// (acked after its handler succeeded), `retried` (nacked to be delivered
/// again after the backoff), `dead_lettered` (kept on the dead-letter topic
/// with its last error, then acked), `deferred` (handed back uncounted: a
/// copy pushed, the original acked).
pub const QUEUE_MESSAGES: &str = "csp_queue_messages_total";

/// Deliveries being worked on (decoded, handled, settled) right now, by
/// `topic`; at most the worker's concurrency per worker.
pub const QUEUE_HANDLERS_RUNNING: &str = "csp_queue_handlers_running";

pub(crate) fn describe() {
    metrics::describe_counter!(
        QUEUE_MESSAGES,
        "Work-queue deliveries settled by the worker loop, by topic and outcome"
    );
    metrics::describe_gauge!(
        QUEUE_HANDLERS_RUNNING,
        "Work-queue deliveries being handled right now, by topic"
    );
}

/// One settled delivery.
pub(crate) fn settled(topic: &str, outcome: &'static str) {
    metrics::counter!(QUEUE_MESSAGES, "topic" => topic.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Counts a delivery as running while it lives, also when its task is
/// aborted.
pub(crate) struct Running(metrics::Gauge);

impl Running {
    pub(crate) fn start(topic: &str) -> Self {
        let gauge = metrics::gauge!(QUEUE_HANDLERS_RUNNING, "topic" => topic.to_owned());
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
