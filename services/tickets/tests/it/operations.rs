//! The operations of admins and operators: clearing the queue, reloading
//! every replica's tenant configurations, retrying a failed job, pausing and
//! resuming (each audited with its user), and the history's export.

use crate::SHORT;
use crate::helpers::*;
use csp_domain::{AUDIT_TOPIC, AuditEvent, ENHANCE_TOPIC, EnhanceJob, EnhancementStatus};
use csp_domain::{ErrorCode, TenantId};
use csp_proto::v1 as pb;
use csp_store::test_support::Backend;
use csp_store::{CLEARED, Claim, NewEnhancement, Outcome, TenantUpdate};
use futures::StreamExt;
use std::collections::BTreeSet;
use uuid::Uuid;

/// The audit events of `action` queued so far.
async fn audited(r: &Running, action: &str) -> Vec<AuditEvent> {
    r.drain(AUDIT_TOPIC, SHORT)
        .await
        .iter()
        .map(|d| serde_json::from_slice::<AuditEvent>(&d.payload).unwrap())
        .filter(|e| e.tool_name == action)
        .collect()
}

fn details(e: &AuditEvent) -> serde_json::Value {
    serde_json::from_str(&e.sanitized_input).unwrap()
}

async fn job_of(r: &Running, accepted: &pb::WebhookAccepted) -> csp_store::EnhancementRecord {
    let id: Uuid = accepted.job_id.parse().unwrap();
    r.shared.store.enhancement(id).await.unwrap().unwrap()
}

async fn fail(r: &Running, id: Uuid, error: &str) {
    let failed = Outcome {
        status: Some(EnhancementStatus::Failed),
        error_message: Some(error.into()),
        processing_time_ms: Some(900),
        ..Outcome::default()
    };
    assert!(
        r.shared
            .store
            .finish_enhancement(id, failed, r.now())
            .await
            .unwrap()
    );
}

pub(crate) async fn clearing_the_queue_fails_every_pending_job_and_is_audited(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let mut jobs = Vec::new();
    for t in ["1", "2", "3"] {
        jobs.push(r.new_ticket("acme", &secret, t).await.unwrap());
    }
    // A worker has taken the third.
    let taken = job_of(&r, &jobs[2]).await.job_id;
    r.shared
        .store
        .start_attempt(taken, r.now(), LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();
    let mut c = r.client();
    for token in [&r.operator, &r.user] {
        let e = c
            .clear_queue(as_(token, pb::ClearQueueRequest {}))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::PermissionDenied);
    }
    assert_eq!(
        job_of(&r, &jobs[0]).await.status,
        EnhancementStatus::Pending
    );

    let cleared = c
        .clear_queue(as_(&r.admin, pb::ClearQueueRequest {}))
        .await
        .unwrap()
        .into_inner()
        .cleared;
    assert_eq!(cleared, 2);
    for accepted in &jobs[..2] {
        let job = job_of(&r, accepted).await;
        assert_eq!(job.status, EnhancementStatus::Failed);
        assert_eq!(job.error_message.as_deref(), Some(CLEARED));
        assert!(job.completed_at.is_some());
    }
    assert_eq!(
        job_of(&r, &jobs[2]).await.status,
        EnhancementStatus::Processing,
        "a job a worker took is not the queue's any more"
    );
    // The history shows them, failed with the reason; nothing vanished.
    let page = c
        .list_enhancements(as_(
            &r.operator,
            pb::ListEnhancementsRequest {
                status: "failed".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total, 2);
    assert!(page.enhancements.iter().all(|e| e.error_message == CLEARED));
    let state = c
        .get_processing(as_(&r.operator, pb::GetProcessingRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.queue_depth, 1, "only the job being processed");
    // Their messages are still on the queue: the worker drops them (its
    // `start_attempt` answers `Claim::Final` for a final job).
    assert_eq!(r.drain(ENHANCE_TOPIC, SHORT).await.len(), 3);
    assert_eq!(
        r.shared
            .store
            .start_attempt(job_of(&r, &jobs[0]).await.job_id, r.now(), LEASE)
            .await
            .unwrap(),
        Claim::Final
    );
    // Audited with the admin and the count; a second clear finds nothing.
    let events = audited(&r, "tickets.clear_queue").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].user_id, Some(r.admin_id));
    assert_eq!(details(&events[0])["cleared"], 2);
    let again = c
        .clear_queue(as_(&r.admin, pb::ClearQueueRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.cleared, 0);
}

pub(crate) async fn reloading_configs_reaches_every_replica_and_is_audited(backend: Backend) {
    let shared = Shared::new(backend).await;
    let a = start_on(shared.clone(), Options::default()).await;
    let b = start_on(shared.clone(), Options::default()).await;
    let secret = a.create("acme").await.webhook_secret;
    a.create("globex").await;
    // B caches acme; a change behind the service's back (a restored
    // database, an edit by hand) is not seen there.
    b.new_ticket("acme", &secret, "1").await.unwrap();
    shared
        .store
        .update_tenant(
            &TenantId::parse("acme").unwrap(),
            TenantUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.new_ticket("acme", &secret, "2").await.unwrap();
    for token in [&a.operator, &a.user] {
        let e = a
            .client()
            .reload_configs(as_(token, pb::ReloadConfigsRequest {}))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::PermissionDenied);
    }
    b.new_ticket("acme", &secret, "3").await.unwrap();
    // A reload on A: B reads acme again at its next delivery.
    a.client()
        .reload_configs(as_(&a.admin, pb::ReloadConfigsRequest {}))
        .await
        .unwrap();
    let e = b.new_ticket("acme", &secret, "4").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::TenantNotFound, "{e:?}");
    let events = audited(&a, "tickets.reload_configs").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].user_id, Some(a.admin_id));
    assert_eq!(details(&events[0])["tenants"], 2);
    assert_eq!(events[0].result_status, csp_domain::AuditStatus::Success);
}

pub(crate) async fn only_a_failed_job_is_retried_queued_again_and_audited(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let accepted = r.new_ticket("acme", &secret, "1234").await.unwrap();
    let id = job_of(&r, &accepted).await.job_id;
    let mut c = r.client();
    let retry = |token: &str, job_id: String| as_(token, pb::RetryEnhancementRequest { job_id });
    // Pending: nothing to retry.
    let e = c
        .retry_enhancement(retry(&r.operator, id.to_string()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    assert!(message(&e).contains("pending"), "{}", message(&e));
    // Three attempts, each after the last one's lease, then failed.
    for i in 0..3 {
        let at = r.now() + LEASE * i;
        let claim = r.shared.store.start_attempt(id, at, LEASE).await.unwrap();
        claim
            .started()
            .expect("the last attempt's lease has run out");
    }
    fail(&r, id, "ServiceDesk Plus answered 500").await;
    let e = c
        .retry_enhancement(retry(&r.user, id.to_string()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);

    let job = c
        .retry_enhancement(retry(&r.operator, id.to_string()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            job.status.as_str(),
            job.attempts,
            job.error_message.as_str()
        ),
        ("pending", 3, "")
    );
    assert_eq!(job.completed_at, "");
    let stored = r.shared.store.enhancement(id).await.unwrap().unwrap();
    assert_eq!(stored.status, EnhancementStatus::Pending);
    // Queued again under a message id of its own (the broker would drop
    // the job id as a duplicate of the first message for two minutes).
    let messages = r.drain(ENHANCE_TOPIC, SHORT).await;
    assert_eq!(messages.len(), 2, "the intake's and the retry's");
    let again = &messages[1];
    assert_ne!(again.id, accepted.job_id);
    assert!(
        again.id.starts_with(&format!("{id}:retry:")),
        "{}",
        again.id
    );
    let m: EnhanceJob = serde_json::from_slice(&again.payload).unwrap();
    assert_eq!((m.job_id, m.tenant_id.as_str()), (id, "acme"));
    assert_eq!(m.correlation_id, "req-1");
    // Audited with the operator, the job and its tenant.
    let events = audited(&r, "tickets.retry").await;
    assert_eq!(events.len(), 1);
    assert_ne!(events[0].user_id, None);
    assert_ne!(events[0].user_id, Some(r.admin_id));
    let d = details(&events[0]);
    assert_eq!(d["job_id"], id.to_string());
    assert_eq!(d["tenant_id"], "acme");
    assert_eq!(d["ticket_id"], "1234");
    // Pending again: a second retry is refused until it fails again.
    let e = c
        .retry_enhancement(retry(&r.operator, id.to_string()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    // A completed job is not retried either.
    r.shared
        .store
        .start_attempt(id, r.now(), LEASE)
        .await
        .unwrap();
    let done = Outcome {
        status: Some(EnhancementStatus::Completed),
        ..Outcome::default()
    };
    r.shared
        .store
        .finish_enhancement(id, done, r.now())
        .await
        .unwrap();
    let e = c
        .retry_enhancement(retry(&r.admin, id.to_string()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    assert!(message(&e).contains("completed"), "{}", message(&e));
    for unknown in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let e = c
            .retry_enhancement(retry(&r.operator, unknown))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::EnhancementNotFound);
    }
    // Only the one retry reached the queue.
    assert_eq!(r.drain(ENHANCE_TOPIC, SHORT).await.len(), 2);
}

pub(crate) async fn pausing_and_resuming_are_audited_by_name(backend: Backend) {
    let r = start(backend).await;
    let mut c = r.client();
    for paused in [true, false] {
        c.set_processing(as_(&r.admin, pb::SetProcessingRequest { paused }))
            .await
            .unwrap();
    }
    for (action, paused) in [("tickets.pause", true), ("tickets.resume", false)] {
        let events = audited(&r, action).await;
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0].user_id, Some(r.admin_id));
        assert_eq!(details(&events[0])["paused"], paused);
    }
    assert!(audited(&r, "tickets.processing").await.is_empty());
}

/// Every page of an export, as the gateway reads it.
async fn export(
    r: &Running,
    token: &str,
    req: pb::ListEnhancementsRequest,
) -> Result<Vec<pb::EnhancementPage>, tonic::Status> {
    let mut stream = r
        .client()
        .export_enhancements(as_(token, req))
        .await?
        .into_inner();
    let mut pages = Vec::new();
    while let Some(page) = stream.next().await {
        pages.push(page?);
    }
    Ok(pages)
}

pub(crate) async fn the_export_streams_every_matching_job_in_pages(backend: Backend) {
    let r = start(backend).await;
    r.create("acme").await;
    r.create("globex").await;
    let (acme, globex) = (
        TenantId::parse("acme").unwrap(),
        TenantId::parse("globex").unwrap(),
    );
    // Recorded directly: the webhook path is rate-limited to 100 a minute.
    let mut acme_ids = Vec::new();
    for i in 0..1_100 {
        for (tenant, n) in [(&acme, i), (&globex, i)] {
            if tenant == &globex && n >= 30 {
                continue;
            }
            let recorded = r
                .shared
                .store
                .record_enhancement(NewEnhancement {
                    job_id: Uuid::new_v4(),
                    tenant_id: tenant.clone(),
                    ticket_id: format!("T-{n}"),
                    delivery_key: format!("{tenant}-{n}"),
                    subject: "Printer".into(),
                    description: if n % 4 == 0 {
                        "Printer jam".into()
                    } else {
                        "VPN down".into()
                    },
                    priority: "Low".into(),
                    correlation_id: format!("c-{n}"),
                })
                .await
                .unwrap();
            if tenant == &acme {
                acme_ids.push(recorded.job.job_id);
            }
        }
    }
    for id in acme_ids.iter().take(40) {
        fail(&r, *id, "=HYPERLINK(\"http://x\")").await;
    }
    let all = |tenant: &str| pb::ListEnhancementsRequest {
        tenant_id: tenant.into(),
        ..Default::default()
    };
    let pages = export(&r, &r.operator, all("acme")).await.unwrap();
    let sizes: Vec<usize> = pages.iter().map(|p| p.enhancements.len()).collect();
    assert_eq!(sizes, [500, 500, 100]);
    let jobs: Vec<&pb::Enhancement> = pages.iter().flat_map(|p| &p.enhancements).collect();
    let ids: BTreeSet<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids.len(), 1_100, "every job once");
    assert!(jobs.iter().all(|j| j.tenant_id == "acme"));
    let at = |j: &pb::Enhancement| {
        time::OffsetDateTime::parse(
            &j.created_at,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert!(
        jobs.windows(2)
            .all(|w| (at(w[0]), w[0].job_id.as_str()) >= (at(w[1]), w[1].job_id.as_str())),
        "newest first"
    );
    // The same order as the history's pages.
    let first = r
        .client()
        .list_enhancements(as_(&r.operator, all("acme")))
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<&str> = first
        .enhancements
        .iter()
        .map(|e| e.job_id.as_str())
        .collect();
    let exported: Vec<&str> = jobs.iter().take(50).map(|j| j.job_id.as_str()).collect();
    assert_eq!(listed, exported);
    // Filters as the history's; `page` ignored.
    let failed = export(
        &r,
        &r.operator,
        pb::ListEnhancementsRequest {
            tenant_id: "acme".into(),
            status: "failed".into(),
            page: 7,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let failed: Vec<&pb::Enhancement> = failed.iter().flat_map(|p| &p.enhancements).collect();
    assert_eq!(failed.len(), 40);
    assert!(failed.iter().all(|j| j.error_message.starts_with("=HYPER")));
    let jams: usize = export(
        &r,
        &r.operator,
        pb::ListEnhancementsRequest {
            q: "printer JAM".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .iter()
    .map(|p| p.enhancements.len())
    .sum();
    assert_eq!(jams, 275 + 8);
    let everyone: usize = export(&r, &r.admin, all(""))
        .await
        .unwrap()
        .iter()
        .map(|p| p.enhancements.len())
        .sum();
    assert_eq!(everyone, 1_130);
    let none = export(
        &r,
        &r.operator,
        pb::ListEnhancementsRequest {
            to: "2000-01-01T00:00:00Z".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(none.is_empty(), "{none:?}");
    // Checked like the history, and for operators.
    let e = export(
        &r,
        &r.operator,
        pb::ListEnhancementsRequest {
            status: "done".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    let e = export(&r, &r.user, all("acme")).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
}
