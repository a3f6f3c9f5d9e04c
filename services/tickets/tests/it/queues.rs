//! Per-tenant queues (story 3.6): a tenant with `dedicated_queue` has its
//! jobs pushed to its own topic by every producer (the intake and a retry
//! here; the sweeper shares their push), every other tenant's go to the
//! shared one, and a change of the flag applies to the next push.

use std::time::Duration;

use csp_domain::{ENHANCE_TOPIC, EnhanceJob, EnhanceQueue, EnhancementStatus, TenantId};
use csp_proto::v1 as pb;
use csp_store::Outcome;
use csp_store::test_support::Backend;

use crate::helpers::*;

const SHORT: Duration = Duration::from_millis(300);

fn tenants_topic(id: &str) -> String {
    EnhanceQueue::Tenant(TenantId::parse(id).unwrap()).topic()
}

/// The tenants and job ids of the messages on `topic`.
async fn jobs_on(r: &Running, topic: &str) -> Vec<(String, uuid::Uuid)> {
    r.drain(topic, SHORT)
        .await
        .iter()
        .map(|d| {
            let job: EnhanceJob = serde_json::from_slice(&d.payload).unwrap();
            (job.tenant_id.to_string(), job.job_id)
        })
        .collect()
}

pub(crate) async fn a_dedicated_tenants_jobs_go_to_its_own_queue(backend: Backend) {
    let r = start(backend).await;
    let acme = r
        .try_create(pb::CreateTenantRequest {
            dedicated_queue: true,
            ..new_tenant("acme")
        })
        .await
        .unwrap();
    assert!(acme.tenant.as_ref().unwrap().dedicated_queue);
    let globex = r.create("globex").await;
    assert!(!globex.tenant.as_ref().unwrap().dedicated_queue);

    let a1 = r
        .new_ticket("acme", &acme.webhook_secret, "a-1")
        .await
        .unwrap();
    let g1 = r
        .new_ticket("globex", &globex.webhook_secret, "g-1")
        .await
        .unwrap();
    let a1: uuid::Uuid = a1.job_id.parse().unwrap();
    let g1: uuid::Uuid = g1.job_id.parse().unwrap();
    assert_eq!(
        jobs_on(&r, &tenants_topic("acme")).await,
        [("acme".to_owned(), a1)]
    );
    assert_eq!(
        jobs_on(&r, ENHANCE_TOPIC).await,
        [("globex".to_owned(), g1)],
        "the shared queue carries no job of a dedicated tenant"
    );
    assert!(jobs_on(&r, &tenants_topic("globex")).await.is_empty());

    // Back to the shared queue: the next job, and a retry of the first, go
    // there (every replica's cached configuration was invalidated).
    let updated = r
        .client()
        .update_tenant(as_(
            &r.admin,
            pb::UpdateTenantRequest {
                tenant_id: "acme".into(),
                dedicated_queue: Some(false),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.dedicated_queue);
    let a2 = r
        .new_ticket("acme", &acme.webhook_secret, "a-2")
        .await
        .unwrap();
    let a2: uuid::Uuid = a2.job_id.parse().unwrap();
    r.shared
        .store
        .start_attempt(a1, r.now(), LEASE)
        .await
        .unwrap();
    let failed = Outcome {
        status: Some(EnhancementStatus::Failed),
        error_message: Some("ServiceDesk Plus answered 500".into()),
        ..Outcome::default()
    };
    assert!(
        r.shared
            .store
            .finish_enhancement(a1, failed, r.now())
            .await
            .unwrap()
    );
    r.client()
        .retry_enhancement(as_(
            &r.operator,
            pb::RetryEnhancementRequest {
                job_id: a1.to_string(),
            },
        ))
        .await
        .unwrap();
    let mut shared = jobs_on(&r, ENHANCE_TOPIC).await;
    shared.sort();
    let mut expected = vec![
        ("globex".to_owned(), g1),
        ("acme".to_owned(), a2),
        ("acme".to_owned(), a1),
    ];
    expected.sort();
    assert_eq!(shared, expected);
    assert_eq!(
        jobs_on(&r, &tenants_topic("acme")).await,
        [("acme".to_owned(), a1)],
        "nothing new on the tenant's own queue"
    );
}
