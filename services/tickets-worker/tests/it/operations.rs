//! What the operators' actions mean to a worker: a job cleared from the
//! queue is dropped when its message arrives (it is final, so no attempt
//! starts), and a failed job retried completes on its next delivery, its
//! attempts counted on.

use std::time::Duration;

use csp_domain::EnhancementStatus;
use csp_mock_ticketing::NoteFault;
use csp_store::CLEARED;
use csp_store::test_support::Backend;

use crate::helpers::{Harness, wait_until};

pub(crate) async fn a_cleared_jobs_message_is_dropped_without_work(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let acme = h.tenant("acme", None).await;
    // Recorded and queued, then the queue is cleared before any worker runs.
    let cleared = h.job(&acme).await;
    let at = time::OffsetDateTime::now_utc();
    assert_eq!(h.store.clear_pending_enhancements(at).await.unwrap(), 1);
    let before = h.record(&cleared).await;
    assert_eq!(
        (before.status, before.error_message.as_deref()),
        (EnhancementStatus::Failed, Some(CLEARED))
    );
    h.start(h.config());
    // Its message is taken and answered without an attempt.
    wait_until(Duration::from_secs(10), || {
        h.watched.starts(cleared.job_id) == 1
    })
    .await;
    // A job queued after it is worked as usual: the worker was not stuck.
    let next = h.job(&acme).await;
    let done = h.finished(&next).await;
    assert_eq!(done.status, EnhancementStatus::Completed);
    assert_eq!(
        h.record(&cleared).await,
        before,
        "the cleared job is unchanged"
    );
    assert_eq!(
        h.watched.starts(cleared.job_id),
        1,
        "taken once, not retried"
    );
    assert!(h.notes_for(&before).is_empty(), "no note for it");
    assert_eq!(h.model_calls(), 1, "only the next job's");
    assert_eq!(h.sdp.mock().note_posts(), 1, "only the next job's");
    h.stop().await;
}

pub(crate) async fn a_retried_job_completes_on_its_next_delivery(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.sdp
        .mock()
        .fail_next_note_posts(1000, NoteFault::Status { status: 500 });
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    let failed = h.finished(&job).await;
    assert_eq!(
        (failed.status, failed.attempts),
        (EnhancementStatus::Failed, 3)
    );
    assert!(h.dead_letter().await.last_error.contains("500"));
    // ServiceDesk Plus is back; an operator retries the job: pending again,
    // queued under a message id of its own (as the tickets service does).
    h.sdp.mock().reset();
    let at = time::OffsetDateTime::now_utc();
    let retried = h
        .store
        .retry_enhancement(job.job_id, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.attempts, 3);
    h.push(&job, &format!("{}:retry:1", job.job_id)).await;
    let done = h.finished(&job).await;
    assert_eq!(done.status, EnhancementStatus::Completed, "{done:?}");
    assert_eq!(done.attempts, 4, "its attempts counted on");
    assert_eq!(done.error_message, None);
    assert_eq!(h.notes_for(&done).len(), 1, "one note");
    h.stop().await;
}
