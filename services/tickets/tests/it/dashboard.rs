//! The operations dashboard and the workers list (issue 16 items 1 and 6):
//! figures and status rules on a seeded history, workers from heartbeats in
//! the shared cache.

use crate::helpers::*;
use csp_cache::Cache;
use csp_domain::{
    EnhancementStatus, ErrorCode, HEARTBEAT_TTL, TenantId, WORKER_HEARTBEAT_PREFIX, WorkerHeartbeat,
};
use csp_proto::v1 as pb;
use csp_store::test_support::Backend;
use csp_store::{NewEnhancement, Outcome};
use time::OffsetDateTime;
use uuid::Uuid;

/// Records a job of `acme`; with a status, starts it and ends it at `at`
/// after `ms`. Returns its id.
async fn job(
    r: &Running,
    status: Option<EnhancementStatus>,
    ms: Option<i64>,
    error: Option<&str>,
    at: OffsetDateTime,
) -> Uuid {
    let store = &r.shared.store;
    // Apart in time: the failures are listed by creation, newest first.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let job_id = Uuid::new_v4();
    let job = NewEnhancement {
        job_id,
        tenant_id: TenantId::parse("acme").unwrap(),
        ticket_id: format!("t-{}", &job_id.simple().to_string()[..8]),
        delivery_key: job_id.to_string(),
        subject: "VPN drops".into(),
        description: "The VPN drops every few minutes".into(),
        priority: "High".into(),
        correlation_id: "corr".into(),
    };
    let end = status.map(|status| Outcome {
        status: Some(status),
        processing_time_ms: ms,
        error_message: error.map(str::to_owned),
        ..Outcome::default()
    });
    ended_job(store, job, end, at).await;
    job_id
}

fn heartbeat(host: &str, active_jobs: u32, age_secs: i64, started_min_ago: i64) -> WorkerHeartbeat {
    let now = OffsetDateTime::now_utc();
    WorkerHeartbeat {
        worker_id: Uuid::new_v4(),
        hostname: host.into(),
        started_at: now - time::Duration::minutes(started_min_ago),
        sent_at: now - time::Duration::seconds(age_secs),
        interval_ms: 5000,
        active_jobs,
        completed_jobs: 40,
        failed_jobs: 2,
        cpu_percent: 42.5,
        memory_percent: 3.25,
        jobs_per_minute: 6.0,
        draining: false,
    }
}

async fn beat(r: &Running, b: &WorkerHeartbeat) {
    r.shared
        .cache
        .put(&b.key(), &serde_json::to_string(b).unwrap(), HEARTBEAT_TTL)
        .await
        .unwrap();
}

async fn dashboard(r: &Running) -> pb::Dashboard {
    r.client()
        .get_dashboard(as_(&r.operator, pb::GetDashboardRequest {}))
        .await
        .unwrap()
        .into_inner()
}

pub(crate) async fn the_dashboard_counts_the_last_day_and_states_the_first_reason(
    backend: Backend,
) {
    let r = start(backend).await;
    r.create("acme").await;
    let recent = r.now() - time::Duration::hours(1);
    let failed = Some(EnhancementStatus::Failed);
    // Ended 25 h ago: not counted (but listed among the failures).
    let old = r.now() - time::Duration::hours(25);
    job(
        &r,
        Some(EnhancementStatus::Completed),
        Some(999_999),
        None,
        old,
    )
    .await;
    job(&r, failed, Some(999_999), Some("old"), old).await;
    // The last 24 h: 38 completed in 100 ms .. 3.8 s, 2 failed after 50
    // and 60 ms; and 2 pending.
    for i in 1..=38 {
        job(
            &r,
            Some(EnhancementStatus::Completed),
            Some(i * 100),
            None,
            recent,
        )
        .await;
    }
    let first = job(&r, failed, Some(50), Some("tenant inactive"), recent).await;
    let second = job(
        &r,
        failed,
        Some(60),
        Some("ServiceDesk Plus answered 404"),
        recent,
    )
    .await;
    job(&r, None, None, None, recent).await;
    job(&r, None, None, None, recent).await;

    // No worker has sent a heartbeat, and jobs wait.
    let d = dashboard(&r).await;
    assert_eq!(d.status, "down", "{d:?}");
    assert_eq!(d.reason, "No worker is alive and 2 jobs are waiting.");
    assert_eq!(d.active_workers, 0);

    beat(&r, &heartbeat("worker-a", 1, 1, 10)).await;
    let d = dashboard(&r).await;
    assert_eq!(
        (d.status.as_str(), d.reason.as_str()),
        ("healthy", ""),
        "{d:?}"
    );
    assert_eq!((d.completed_24h, d.failed_24h), (38, 2));
    assert_eq!(d.success_rate_24h, Some(0.95));
    // 40 times: 50, 60, 100 .. 3800; rank 38 from the smallest.
    assert_eq!(d.p95_latency_ms_24h, Some(3600));
    assert_eq!((d.queue_depth, d.paused, d.active_workers), (2, false, 1));
    assert!(d.feedback.is_empty());
    let deps: Vec<(&str, bool)> = d
        .dependencies
        .iter()
        .map(|x| (x.name.as_str(), x.ok))
        .collect();
    assert_eq!(
        deps,
        [("postgres", true), ("redis", true), ("nats", true)],
        "named as configured"
    );
    for x in &d.dependencies {
        assert!(x.detail.ends_with(" ms"), "{x:?}");
    }
    // The 3 failures, newest first, with their errors.
    let failures: Vec<(&str, &str)> = d
        .recent_failures
        .iter()
        .map(|e| (e.status.as_str(), e.error_message.as_str()))
        .collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(failures.iter().all(|(s, _)| *s == "failed"));
    let ids: Vec<String> = d.recent_failures.iter().map(|e| e.job_id.clone()).collect();
    assert_eq!(ids[..2], [second.to_string(), first.to_string()]);
    assert_eq!(failures[0].1, "ServiceDesk Plus answered 404");
    assert_eq!(failures[2].1, "old", "the oldest last");

    // Paused: degraded, with the reason.
    r.shared.store.set_processing_paused(true).await.unwrap();
    let d = dashboard(&r).await;
    assert_eq!((d.status.as_str(), d.paused), ("degraded", true));
    assert_eq!(
        d.reason,
        "Processing is paused: no job is taken until an admin resumes it."
    );
    r.shared.store.set_processing_paused(false).await.unwrap();

    // One more failure: 38 of 41 is below 95 %.
    job(&r, failed, Some(70), Some("boom"), recent).await;
    let d = dashboard(&r).await;
    assert_eq!(d.status, "degraded");
    assert_eq!(
        d.reason,
        "The success rate of the last 24 h is 92.7 %, below 95 %."
    );
    assert_eq!(d.recent_failures[0].error_message, "boom", "newest first");

    // Only the last 10 failures are listed.
    for i in 0..10 {
        job(&r, failed, Some(10), Some(&format!("late-{i}")), recent).await;
    }
    let d = dashboard(&r).await;
    assert_eq!(d.recent_failures.len(), 10);
    assert!(
        d.recent_failures
            .iter()
            .all(|e| e.error_message.starts_with("late-"))
    );

    // Operators and admins only.
    let e = r
        .client()
        .get_dashboard(as_(&r.user, pb::GetDashboardRequest {}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
    r.client()
        .get_dashboard(as_(&r.admin, pb::GetDashboardRequest {}))
        .await
        .unwrap();
}

pub(crate) async fn a_worker_that_stopped_heartbeating_is_unresponsive_and_not_counted(
    backend: Backend,
) {
    let r = start(backend).await;
    r.create("acme").await;
    job(&r, None, None, None, r.now()).await;
    // 20 s without a heartbeat, at 5 s intervals: three missed.
    let stale = heartbeat("worker-gone", 2, 20, 30);
    beat(&r, &stale).await;
    let d = dashboard(&r).await;
    assert_eq!((d.status.as_str(), d.active_workers), ("down", 0), "{d:?}");
    assert_eq!(d.reason, "No worker is alive and 1 job is waiting.");
    let fresh = heartbeat("worker-new", 0, 0, 1);
    beat(&r, &fresh).await;
    let d = dashboard(&r).await;
    assert_eq!(
        (d.status.as_str(), d.active_workers),
        ("healthy", 1),
        "{d:?}"
    );
}

pub(crate) async fn workers_are_listed_from_their_heartbeats(backend: Backend) {
    let r = start(backend).await;
    let mut c = r.client();
    let list = |token: &str| as_(token, pb::ListWorkersRequest {});
    assert!(
        c.list_workers(list(&r.operator))
            .await
            .unwrap()
            .into_inner()
            .workers
            .is_empty()
    );
    let busy = heartbeat("worker-busy", 3, 2, 5);
    let idle = heartbeat("worker-idle", 0, 4, 50);
    let gone = heartbeat("worker-gone", 1, 16, 120);
    for b in [&gone, &busy, &idle] {
        beat(&r, b).await;
    }
    // Not a heartbeat: left out, the others still listed.
    r.shared
        .cache
        .put(
            &format!("{WORKER_HEARTBEAT_PREFIX}garbage"),
            "{not json",
            HEARTBEAT_TTL,
        )
        .await
        .unwrap();
    let workers = c
        .list_workers(list(&r.operator))
        .await
        .unwrap()
        .into_inner()
        .workers;
    let seen: Vec<(&str, &str, u32)> = workers
        .iter()
        .map(|w| (w.hostname.as_str(), w.status.as_str(), w.active_jobs))
        .collect();
    // Newest worker first.
    assert_eq!(
        seen,
        [
            ("worker-busy", "active", 3),
            ("worker-idle", "idle", 0),
            ("worker-gone", "unresponsive", 1),
        ]
    );
    let w = &workers[0];
    assert_eq!(w.worker_id, busy.worker_id.to_string());
    assert_eq!((w.completed_jobs, w.failed_jobs), (40, 2));
    assert_eq!(
        (w.cpu_percent, w.memory_percent, w.jobs_per_minute),
        (42.5, 3.25, 6.0)
    );
    let started = OffsetDateTime::parse(
        &w.started_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(started.unix_timestamp(), busy.started_at.unix_timestamp());
    let seen_at = OffsetDateTime::parse(
        &w.last_seen_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(seen_at.unix_timestamp(), busy.sent_at.unix_timestamp());

    // A worker that stopped deleted its key: it is gone from the list.
    r.shared.cache.delete(&busy.key()).await.unwrap();
    let workers = c
        .list_workers(list(&r.admin))
        .await
        .unwrap()
        .into_inner()
        .workers;
    assert_eq!(workers.len(), 2);

    let e = c.list_workers(list(&r.user)).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
}
