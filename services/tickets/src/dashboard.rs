//! The operations dashboard (`GetDashboard`): the pipeline's health with the
//! first reason in words, the figures behind it and the state of the three
//! backends. Everything is read at once and each read is bounded
//! ([`PING_TIMEOUT`], [`READ_TIMEOUT`]), so a dead backend makes the answer
//! say so instead of making it slow; the answer itself never fails.
//!
//! The status rules (docs/ticket-enhancement.md, "Dashboard"), first match
//! wins:
//!
//! - **down**: the store is unreachable; the queue is unreachable; no worker
//!   is alive while jobs wait.
//! - **degraded**: the 24 h success rate is below 95 %; more than 100 jobs
//!   wait; the 24 h p95 processing time is above 120 s; processing is
//!   paused; the cache is unreachable; no worker is alive; a figure could
//!   not be read in time.
//! - **healthy** otherwise.

use crate::Clock;
use crate::outbox::Outbox;
use crate::workers::{self, Workers};
use csp_bus::Queue;
use csp_cache::Cache;
use csp_domain::{EnhancementStatus, Health};
use csp_proto::v1 as pb;
use csp_store::{EnhancementQuery, EnhancementRecord, EnhancementStats, Store};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A backend's ping that takes longer counts as unreachable.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// A figure that takes longer is left out (and the status says so).
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// The period of the success rate and the percentile.
const PERIOD: time::Duration = time::Duration::hours(24);
/// The failures listed.
const RECENT_FAILURES: u32 = 10;
/// The technicians' votes the dashboard shows per tenant (as `FeedbackSummary`'s default).
const FEEDBACK_PERIOD: time::Duration = time::Duration::days(30);

/// Degraded below this success rate.
const MIN_SUCCESS_RATE: f64 = 0.95;
/// Degraded above this many waiting jobs.
const MAX_QUEUE_DEPTH: u64 = 100;
/// Degraded above this p95.
const MAX_P95_MS: u64 = 120_000;

/// What the backends are called on the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backends {
    pub store: &'static str,
    pub cache: &'static str,
    pub queue: &'static str,
}

impl Backends {
    /// `csp serve`: Postgres, Redis and NATS.
    pub const DISTRIBUTED: Backends = Backends {
        store: "postgres",
        cache: "redis",
        queue: "nats",
    };
    /// `csp dev`'s embedded ones.
    pub const EMBEDDED: Backends = Backends {
        store: "sqlite",
        cache: "memory",
        queue: "in-process",
    };
}

pub(crate) struct Dashboard {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) workers: Arc<Workers>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) backends: Backends,
}

/// The dashboard without its failures, which the caller renders (they are
/// history rows like any other).
pub(crate) struct Overview {
    pub(crate) dashboard: pb::Dashboard,
    pub(crate) recent_failures: Vec<EnhancementRecord>,
}

/// What the status is decided on; `None`: could not be read in time.
#[derive(Debug, Clone, Default)]
struct Facts {
    store_ok: bool,
    queue_ok: bool,
    cache_ok: bool,
    paused: Option<bool>,
    queue_depth: Option<u64>,
    stats: Option<EnhancementStats>,
    /// Workers not unresponsive; `None` when the cache could not be read.
    alive_workers: Option<u32>,
}

impl Dashboard {
    pub(crate) async fn overview(&self) -> Overview {
        let since = self.clock.now() - PERIOD;
        let failed = EnhancementQuery {
            status: Some(EnhancementStatus::Failed),
            page: 1,
            per_page: RECENT_FAILURES,
            ..EnhancementQuery::default()
        };
        let votes_since = self.clock.now() - FEEDBACK_PERIOD;
        let (store, cache, queue, paused, depth, stats, failures, workers, votes) = tokio::join!(
            ping(self.backends.store, self.store.ping()),
            ping(self.backends.cache, self.cache.ping()),
            ping(self.backends.queue, self.queue.ping()),
            read("pause flag", self.store.processing_paused()),
            read("queue depth", self.outbox.depth()),
            read("24 h figures", self.store.enhancement_stats(since)),
            read("recent failures", self.store.enhancements_page(&failed)),
            read("workers", self.workers.list()),
            read(
                "feedback",
                self.store.feedback_summary(Some(votes_since), None)
            ),
        );
        let queue_depth = depth.map(|(depth, _)| depth);
        if let Some(depth) = queue_depth {
            crate::metrics::queue_depth(depth);
        }
        let facts = Facts {
            store_ok: store.ok,
            queue_ok: queue.ok,
            cache_ok: cache.ok,
            paused,
            queue_depth,
            stats,
            alive_workers: workers.as_deref().map(workers::alive),
        };
        let (status, reason) = assess(&facts, self.backends);
        let dashboard = pb::Dashboard {
            status: status.as_str().to_owned(),
            reason,
            paused: paused.unwrap_or(false),
            queue_depth: queue_depth.unwrap_or(0),
            completed_24h: stats.map_or(0, |s| s.completed),
            failed_24h: stats.map_or(0, |s| s.failed),
            success_rate_24h: stats.and_then(|s| s.success_rate()),
            p95_latency_ms_24h: stats.and_then(|s| s.p95_processing_ms),
            active_workers: facts.alive_workers.unwrap_or(0),
            recent_failures: Vec::new(),
            dependencies: vec![store, cache, queue],
            feedback: votes
                .unwrap_or_default()
                .into_iter()
                .map(|t| pb::TenantFeedback {
                    tenant_id: t.tenant_id.to_string(),
                    helpful: t.helpful,
                    not_helpful: t.not_helpful,
                })
                .collect(),
        };
        Overview {
            dashboard,
            recent_failures: failures.map(|(rows, _)| rows).unwrap_or_default(),
        }
    }
}

/// A backend's state: its round trip, or why not (the error itself is
/// logged, not shown).
async fn ping<E: std::fmt::Display>(
    name: &'static str,
    answer: impl Future<Output = Result<(), E>>,
) -> pb::Dependency {
    let started = Instant::now();
    let (ok, detail) = match tokio::time::timeout(PING_TIMEOUT, answer).await {
        Ok(Ok(())) => (true, format!("{} ms", started.elapsed().as_millis())),
        Ok(Err(e)) => {
            tracing::warn!(backend = name, error = %e, operation = "dashboard", "backend unreachable");
            (false, "unreachable".to_owned())
        }
        Err(_) => {
            tracing::warn!(
                backend = name,
                operation = "dashboard",
                "backend did not answer in time"
            );
            (
                false,
                format!("no answer within {} s", PING_TIMEOUT.as_secs()),
            )
        }
    };
    pb::Dependency {
        name: name.to_owned(),
        ok,
        detail,
    }
}

/// A figure, or `None` (logged) when it could not be read in time.
async fn read<T, E: std::fmt::Display>(
    what: &'static str,
    answer: impl Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(READ_TIMEOUT, answer).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(figure = what, error = %e, operation = "dashboard", "cannot read a dashboard figure");
            None
        }
        Err(_) => {
            tracing::warn!(
                figure = what,
                operation = "dashboard",
                "a dashboard figure took too long"
            );
            None
        }
    }
}

/// The status and its first reason (empty when healthy).
fn assess(f: &Facts, names: Backends) -> (Health, String) {
    let down = |reason: String| (Health::Down, reason);
    let degraded = |reason: String| (Health::Degraded, reason);
    if !f.store_ok {
        return down(format!(
            "The database ({}) is unreachable: webhooks cannot be recorded and jobs cannot be worked on.",
            names.store
        ));
    }
    if !f.queue_ok {
        return down(format!(
            "The job queue ({}) is unreachable: jobs cannot be queued or taken.",
            names.queue
        ));
    }
    let waiting = f.queue_depth.unwrap_or(0);
    if f.alive_workers == Some(0) && waiting > 0 {
        return down(format!(
            "No worker is alive and {waiting} {} waiting.",
            if waiting == 1 { "job is" } else { "jobs are" }
        ));
    }
    if let Some(rate) = f.stats.and_then(|s| s.success_rate())
        && rate < MIN_SUCCESS_RATE
    {
        return degraded(format!(
            "The success rate of the last 24 h is {:.1} %, below {:.0} %.",
            rate * 100.0,
            MIN_SUCCESS_RATE * 100.0
        ));
    }
    if waiting > MAX_QUEUE_DEPTH {
        return degraded(format!(
            "{waiting} jobs are waiting, more than {MAX_QUEUE_DEPTH}."
        ));
    }
    if let Some(p95) = f.stats.and_then(|s| s.p95_processing_ms)
        && p95 > MAX_P95_MS
    {
        return degraded(format!(
            "The p95 processing time of the last 24 h is {:.0} s, above {} s.",
            p95 as f64 / 1000.0,
            MAX_P95_MS / 1000
        ));
    }
    if f.paused == Some(true) {
        return degraded(
            "Processing is paused: no job is taken until an admin resumes it.".to_owned(),
        );
    }
    if !f.cache_ok {
        return degraded(format!(
            "The cache ({}) is unreachable: workers cannot be seen, and rate limits and tenant changes are not shared.",
            names.cache
        ));
    }
    if f.alive_workers == Some(0) {
        return degraded("No worker is alive: new jobs will wait until one starts.".to_owned());
    }
    if f.paused.is_none() || f.queue_depth.is_none() || f.stats.is_none() {
        return degraded("Some figures could not be read from the database in time.".to_owned());
    }
    (Health::Healthy, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Facts {
        Facts {
            store_ok: true,
            queue_ok: true,
            cache_ok: true,
            paused: Some(false),
            queue_depth: Some(3),
            stats: Some(EnhancementStats {
                completed: 99,
                failed: 1,
                p95_processing_ms: Some(20_000),
            }),
            alive_workers: Some(2),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_that_does_not_answer_is_down_after_a_second() {
        let started = tokio::time::Instant::now();
        let hung = ping(
            "redis",
            std::future::pending::<Result<(), std::convert::Infallible>>(),
        )
        .await;
        assert_eq!(started.elapsed(), PING_TIMEOUT);
        assert_eq!(
            (hung.name.as_str(), hung.ok, hung.detail.as_str()),
            ("redis", false, "no answer within 1 s")
        );
        let refused = ping("nats", async { Err::<(), _>("connection refused") }).await;
        assert_eq!(
            (refused.ok, refused.detail.as_str()),
            (false, "unreachable")
        );
        let ok = ping("postgres", async { Ok::<(), String>(()) }).await;
        assert_eq!((ok.ok, ok.detail.as_str()), (true, "0 ms"));
        let slow = read(
            "24 h figures",
            std::future::pending::<Result<u64, String>>(),
        )
        .await;
        assert_eq!(slow, None);
        assert_eq!(started.elapsed(), PING_TIMEOUT + READ_TIMEOUT);
    }

    fn status(f: &Facts) -> (Health, String) {
        assess(f, Backends::DISTRIBUTED)
    }

    fn stats(completed: u64, failed: u64, p95: Option<u64>) -> Option<EnhancementStats> {
        Some(EnhancementStats {
            completed,
            failed,
            p95_processing_ms: p95,
        })
    }

    #[test]
    fn healthy_has_no_reason() {
        assert_eq!(status(&healthy()), (Health::Healthy, String::new()));
        // Nothing ended yet: no rate, no percentile, still healthy.
        let quiet = Facts {
            stats: stats(0, 0, None),
            queue_depth: Some(0),
            ..healthy()
        };
        assert_eq!(status(&quiet).0, Health::Healthy);
    }

    #[test]
    fn each_rule_gives_its_status_and_reason() {
        let cases: Vec<(Facts, Health, &str)> = vec![
            (
                Facts {
                    store_ok: false,
                    ..healthy()
                },
                Health::Down,
                "The database (postgres) is unreachable: webhooks cannot be recorded and jobs cannot be worked on.",
            ),
            (
                Facts {
                    queue_ok: false,
                    ..healthy()
                },
                Health::Down,
                "The job queue (nats) is unreachable: jobs cannot be queued or taken.",
            ),
            (
                Facts {
                    alive_workers: Some(0),
                    queue_depth: Some(1),
                    ..healthy()
                },
                Health::Down,
                "No worker is alive and 1 job is waiting.",
            ),
            (
                Facts {
                    stats: stats(94, 6, None),
                    ..healthy()
                },
                Health::Degraded,
                "The success rate of the last 24 h is 94.0 %, below 95 %.",
            ),
            (
                Facts {
                    queue_depth: Some(101),
                    ..healthy()
                },
                Health::Degraded,
                "101 jobs are waiting, more than 100.",
            ),
            (
                Facts {
                    stats: stats(10, 0, Some(125_000)),
                    ..healthy()
                },
                Health::Degraded,
                "The p95 processing time of the last 24 h is 125 s, above 120 s.",
            ),
            (
                Facts {
                    paused: Some(true),
                    ..healthy()
                },
                Health::Degraded,
                "Processing is paused: no job is taken until an admin resumes it.",
            ),
            (
                Facts {
                    cache_ok: false,
                    alive_workers: None,
                    ..healthy()
                },
                Health::Degraded,
                "The cache (redis) is unreachable: workers cannot be seen, and rate limits and tenant changes are not shared.",
            ),
            (
                Facts {
                    alive_workers: Some(0),
                    queue_depth: Some(0),
                    ..healthy()
                },
                Health::Degraded,
                "No worker is alive: new jobs will wait until one starts.",
            ),
            (
                Facts {
                    stats: None,
                    ..healthy()
                },
                Health::Degraded,
                "Some figures could not be read from the database in time.",
            ),
        ];
        for (facts, health, reason) in cases {
            assert_eq!(status(&facts), (health, reason.to_owned()), "{facts:?}");
        }
    }

    #[test]
    fn the_first_rule_that_holds_is_the_reason() {
        // Everything wrong at once: the store comes first.
        let all = Facts {
            store_ok: false,
            queue_ok: false,
            cache_ok: false,
            paused: Some(true),
            queue_depth: Some(500),
            stats: stats(1, 9, Some(200_000)),
            alive_workers: Some(0),
        };
        assert!(status(&all).1.starts_with("The database (postgres)"));
        // Down beats degraded: no worker while jobs wait, though paused.
        let stuck = Facts {
            paused: Some(true),
            alive_workers: Some(0),
            queue_depth: Some(500),
            ..healthy()
        };
        assert_eq!(status(&stuck).0, Health::Down);
        // 95 % exactly is enough; 120 s exactly too; 100 waiting too.
        let edge = Facts {
            stats: stats(95, 5, Some(120_000)),
            queue_depth: Some(100),
            ..healthy()
        };
        assert_eq!(status(&edge).0, Health::Healthy);
        // An unreadable cache does not claim the workers are gone.
        let blind = Facts {
            cache_ok: false,
            alive_workers: None,
            queue_depth: Some(50),
            ..healthy()
        };
        assert_eq!(status(&blind).0, Health::Degraded);
        // The embedded backends are named as such.
        let dev = assess(
            &Facts {
                queue_ok: false,
                ..healthy()
            },
            Backends::EMBEDDED,
        );
        assert!(dev.1.contains("(in-process)"), "{}", dev.1);
    }
}
