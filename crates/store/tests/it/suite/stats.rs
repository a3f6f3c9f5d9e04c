//! The dashboard's figures over the enhancement history (`StatsStore`).

use crate::helpers::{LEASE, ended_job};
use crate::suite::tenant;
use csp_domain::{EnhancementStatus, TenantId};
use csp_store::{
    EnhancementStats, Error, LatencyHistogram, NewEnhancement, Outcome, StepFigures, Store,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A job of `tenant` that, with a status, ended at `at` after `ms` of
/// processing.
async fn ended(
    store: &dyn Store,
    tenant: &TenantId,
    status: Option<EnhancementStatus>,
    ms: Option<i64>,
    at: OffsetDateTime,
) {
    let end = status.map(|status| Outcome {
        status: Some(status),
        processing_time_ms: ms,
        ..Outcome::default()
    });
    ended_job(store, tenant, end, at).await;
}

pub(crate) async fn enhancement_stats_count_the_period_and_take_its_95th_percentile(
    store: &dyn Store,
) {
    let since = OffsetDateTime::now_utc() - Duration::hours(24);
    assert_eq!(
        store.enhancement_stats(since).await.unwrap(),
        EnhancementStats::default(),
        "nothing ended: no rate, no percentile"
    );
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let recent = since + Duration::hours(23);
    // In the period: 38 completed in 100 ms .. 3.8 s (two tenants), one
    // failed after 10 s and one failed without a time.
    for i in 1..=38 {
        let t = if i % 2 == 0 { &acme } else { &globex };
        let status = Some(EnhancementStatus::Completed);
        ended(store, t, status, Some(i * 100), recent).await;
    }
    let failed = Some(EnhancementStatus::Failed);
    ended(store, &acme, failed, Some(10_000), recent).await;
    ended(store, &acme, failed, None, recent).await;
    // Exactly at the start of the period: counted.
    ended(store, &globex, failed, Some(50), since).await;
    // Before it, and jobs that have not ended: not counted.
    let old = since - Duration::minutes(1);
    ended(
        store,
        &acme,
        Some(EnhancementStatus::Completed),
        Some(999_999),
        old,
    )
    .await;
    ended(store, &acme, failed, Some(999_999), old).await;
    ended(store, &acme, None, None, recent).await;
    let job_id = Uuid::new_v4();
    let processing = NewEnhancement {
        job_id,
        tenant_id: acme.clone(),
        ticket_id: "p".into(),
        delivery_key: "p".into(),
        subject: "s".into(),
        description: "d".into(),
        priority: "Low".into(),
        correlation_id: "c".into(),
    };
    store.record_enhancement(processing).await.unwrap();
    store
        .start_attempt(job_id, recent, LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();

    let stats = store.enhancement_stats(since).await.unwrap();
    // 40 timed values: 50, 100 .. 3800, 10000. Rank ceil(0.95 · 40) = 38
    // from the smallest: 3700.
    assert_eq!(
        stats,
        EnhancementStats {
            completed: 38,
            failed: 3,
            p95_processing_ms: Some(3700),
        }
    );
    let rate = stats.success_rate().unwrap();
    assert!((rate - 38.0 / 41.0).abs() < 1e-9, "{rate}");

    // A period with only the failure without a time: counted, no percentile.
    let later = OffsetDateTime::now_utc() + Duration::hours(1);
    ended(store, &acme, failed, None, later + Duration::minutes(1)).await;
    assert_eq!(
        store.enhancement_stats(later).await.unwrap(),
        EnhancementStats {
            completed: 0,
            failed: 1,
            p95_processing_ms: None,
        }
    );
}

pub(crate) async fn enhancement_steps_count_each_step_and_the_queue_at_its_end(store: &dyn Store) {
    let minutes = |m: i64| Duration::minutes(m);
    let ten = std::time::Duration::from_secs(600);
    let acme = tenant(store, "acme").await;
    // Jobs are created now (the store's clock); they end when the test says.
    let now = OffsetDateTime::now_utc();
    let from = now - minutes(60);
    assert_eq!(
        store.enhancement_steps(from, ten, 3).await.unwrap(),
        vec![StepFigures::default(); 3],
        "an empty history: nothing anywhere"
    );
    let completed = Some(EnhancementStatus::Completed);
    let failed = Some(EnhancementStatus::Failed);
    // Five jobs now (step 6 of 12 from an hour ago): two complete 15
    // minutes on (step 7), one fails 25 minutes on (step 8) without a
    // time, one completes two hours on (after the last step), one waits.
    ended(store, &acme, completed, Some(1_800), now + minutes(15)).await;
    ended(store, &acme, completed, Some(50), now + minutes(15)).await;
    ended(store, &acme, failed, None, now + minutes(25)).await;
    ended(store, &acme, completed, Some(999), now + minutes(120)).await;
    ended(store, &acme, None, None, now).await;

    let steps = store.enhancement_steps(from, ten, 12).await.unwrap();
    let depths: Vec<u64> = steps.iter().map(|s| s.queue_depth).collect();
    // Empty before the jobs came, five at the end of their step, three
    // once two completed, two (the waiting one and the one that ends
    // later) from then on.
    assert_eq!(depths, [0, 0, 0, 0, 0, 0, 5, 3, 2, 2, 2, 2]);
    assert_eq!(steps[6].created, 5);
    assert_eq!((steps[7].completed, steps[7].failed), (2, 0));
    let mut latency = LatencyHistogram::default();
    latency.record(1_800);
    latency.record(50);
    assert_eq!(steps[7].latency, latency);
    assert_eq!((steps[8].completed, steps[8].failed), (0, 1));
    assert_eq!(steps[8].latency.total(), 0, "a failure without a time");
    let ended_in_steps: u64 = steps.iter().map(|s| s.completed + s.failed).sum();
    assert_eq!(ended_in_steps, 3);

    // From after the jobs came: only what happened since is in the steps,
    // and the depth still counts the jobs created before.
    let later = store
        .enhancement_steps(now + minutes(20), ten, 3)
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|s| s.queue_depth).collect::<Vec<_>>(),
        [2, 2, 2]
    );
    assert_eq!(later.iter().map(|s| s.created).sum::<u64>(), 0);
    assert_eq!((later[0].failed, later[0].completed), (1, 0));

    for (step, n) in [(std::time::Duration::ZERO, 3), (ten, 10_001)] {
        let e = store.enhancement_steps(from, step, n).await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    }
}
