//! A worker consumes one queue (story 3.6): a tenant's worker takes only its
//! tenant's jobs from the tenant's own topic and refuses another tenant's
//! untouched; a shared worker hands a dedicated tenant's job on to its
//! tenant's topic, untouched.

use std::time::Duration;

use bytes::Bytes;
use csp_bus::{DeadLetter, Queue};
use csp_domain::{EnhanceJob, EnhanceQueue, EnhancementStatus, TenantId};
use csp_store::TenantUpdate;
use csp_store::test_support::Backend;
use futures::StreamExt;

use crate::helpers::Harness;

async fn push_to(h: &Harness, queue: &EnhanceQueue, job: &EnhanceJob) {
    h.queue
        .push(
            &queue.topic(),
            &job.job_id.to_string(),
            Bytes::from(serde_json::to_vec(job).unwrap()),
        )
        .await
        .unwrap();
}

async fn dedicate(h: &Harness, tenant: &TenantId) {
    h.store
        .update_tenant(
            tenant,
            TenantUpdate {
                dedicated_queue: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

pub(crate) async fn a_tenants_worker_takes_only_its_tenants_jobs(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let acme = h.tenant("acme", None).await;
    let globex = h.tenant("globex", None).await;
    dedicate(&h, &acme).await;
    let own = EnhanceQueue::Tenant(acme.clone());
    // Read before the worker starts, so nothing it dead-letters is missed.
    let mut dead = h
        .queue
        .pull(&format!("{}.dead", own.topic()), "test")
        .await
        .unwrap();
    h.start(csp_tickets_worker::Config {
        queue: own.clone(),
        ..h.config()
    });

    let mine = h.recorded_job(&acme).await;
    push_to(&h, &own, &mine).await;
    let record = h.finished(&mine).await;
    assert_eq!(record.status, EnhancementStatus::Completed, "{record:?}");

    // Another tenant's job on this tenant's queue: dead-lettered with the
    // reason, its record untouched (left for its own queue).
    let foreign = h.recorded_job(&globex).await;
    push_to(&h, &own, &foreign).await;
    let delivery = tokio::time::timeout(Duration::from_secs(10), dead.next())
        .await
        .expect("a dead letter")
        .unwrap()
        .unwrap();
    let letter = DeadLetter::decode(&delivery.payload).unwrap();
    assert_eq!(letter.id, foreign.job_id.to_string());
    assert!(
        letter.last_error.contains("refused")
            && letter
                .last_error
                .contains("tenant globex on the queue of tenant acme"),
        "{}",
        letter.last_error
    );
    // The shared queue is not this worker's: a job there stays pending.
    let shared = h.job(&globex).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for job in [&foreign, &shared] {
        let record = h.record(job).await;
        assert_eq!(
            (record.status, record.attempts),
            (EnhancementStatus::Pending, 0),
            "{record:?}"
        );
        assert_eq!(h.watched.starts(job.job_id), 0);
    }
    // Its dead-letter consumer left the refused job alone too.
    assert_eq!(h.record(&foreign).await.status, EnhancementStatus::Pending);
    h.stop().await;
}

pub(crate) async fn a_shared_worker_hands_a_dedicated_tenants_job_on(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let acme = h.tenant("acme", None).await;
    let globex = h.tenant("globex", None).await;
    let own = EnhanceQueue::Tenant(acme.clone());
    let mut acmes = h.queue.pull(&own.topic(), "test").await.unwrap();
    h.start(h.config());
    // Queued on the shared queue, then the tenant got its own.
    let early = h.recorded_job(&acme).await;
    dedicate(&h, &acme).await;
    h.push(&early, &early.job_id.to_string()).await;
    let theirs = h.job(&globex).await;
    assert_eq!(
        h.finished(&theirs).await.status,
        EnhancementStatus::Completed
    );

    let delivery = tokio::time::timeout(Duration::from_secs(10), acmes.next())
        .await
        .expect("handed on to the tenant's queue")
        .unwrap()
        .unwrap();
    assert_eq!(delivery.id, early.job_id.to_string());
    let moved: EnhanceJob = serde_json::from_slice(&delivery.payload).unwrap();
    assert_eq!(moved, early);
    let record = h.record(&early).await;
    assert_eq!(
        (record.status, record.attempts),
        (EnhancementStatus::Pending, 0),
        "not taken by the shared worker: {record:?}"
    );
    assert_eq!(h.watched.starts(early.job_id), 0);
    h.stop().await;
}
