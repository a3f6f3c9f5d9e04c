//! A worker's jobs ended per step (`ThroughputStore`).

use crate::helpers::ended_job;
use crate::suite::tenant;
use csp_domain::{EnhancementStatus, TenantId};
use csp_store::{Error, Outcome, Store, ThroughputStep};
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A job of `tenant` that `worker` ended at `at` as `status`.
async fn ended_by(
    store: &dyn Store,
    tenant: &TenantId,
    worker: Option<Uuid>,
    status: EnhancementStatus,
    at: OffsetDateTime,
) {
    let outcome = Outcome {
        status: Some(status),
        worker_id: worker,
        ..Outcome::default()
    };
    ended_job(store, tenant, Some(outcome), at).await;
}

pub(crate) async fn a_workers_throughput_counts_the_jobs_it_ended_per_step(store: &dyn Store) {
    use EnhancementStatus::{Completed, Failed};
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let (worker, other) = (Uuid::new_v4(), Uuid::new_v4());
    let hour = StdDuration::from_secs(3600);
    // Three hours from a whole hour; the last step ends just before `end`.
    let from = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    let at = |h: i64, m: i64| from + Duration::hours(h) + Duration::minutes(m);
    // Nothing yet: three empty steps, oldest first.
    let empty = store
        .worker_throughput(worker, from, hour, 3)
        .await
        .unwrap();
    assert_eq!(
        empty,
        (0..3)
            .map(|h| ThroughputStep {
                start: at(h, 0),
                completed: 0,
                failed: 0
            })
            .collect::<Vec<_>>()
    );
    ended_by(store, &acme, Some(worker), Completed, at(0, 0)).await; // a step's start is in it
    ended_by(store, &globex, Some(worker), Completed, at(0, 59)).await;
    ended_by(store, &acme, Some(worker), Failed, at(0, 30)).await;
    ended_by(store, &acme, Some(worker), Completed, at(2, 10)).await;
    ended_by(store, &acme, Some(worker), Completed, at(3, 0)).await; // after the last step
    ended_by(store, &acme, Some(worker), Completed, at(-1, 59)).await; // before the first
    ended_by(store, &acme, Some(other), Completed, at(1, 0)).await; // another worker's
    ended_by(store, &acme, None, Failed, at(1, 0)).await; // no worker's (a dead letter)
    let steps = store
        .worker_throughput(worker, from, hour, 3)
        .await
        .unwrap();
    let counts: Vec<(u64, u64)> = steps.iter().map(|s| (s.completed, s.failed)).collect();
    assert_eq!(counts, [(2, 1), (0, 0), (1, 0)]);
    assert_eq!(steps[1].start, at(1, 0));
    let theirs = store.worker_throughput(other, from, hour, 3).await.unwrap();
    let counts: Vec<(u64, u64)> = theirs.iter().map(|s| (s.completed, s.failed)).collect();
    assert_eq!(counts, [(0, 0), (1, 0), (0, 0)]);
    // A week of hours is one answer of 168 steps.
    let week = store
        .worker_throughput(worker, at(3, 0) - Duration::days(7), hour, 168)
        .await
        .unwrap();
    assert_eq!(week.len(), 168);
    assert_eq!(week.iter().map(|s| s.completed + s.failed).sum::<u64>(), 5);
    // Out of bounds: refused, not truncated.
    for (step, steps) in [(StdDuration::from_millis(10), 3), (hour, 1_001)] {
        let err = store
            .worker_throughput(worker, from, step, steps)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    }
}
