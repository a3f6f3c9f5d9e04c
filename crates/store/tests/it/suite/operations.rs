//! The operations of ticket enhancement in the shared suite: clearing the
//! queue, retrying a failed job, the history's keyset export, and the audit
//! log by action (the Operations page's list).

use super::tickets::tenant;
use crate::helpers::{Fixture, LEASE};
use csp_domain::{AuditStatus, EnhancementStatus, TenantId, UserId};
use csp_store::{
    AuditQuery, CLEARED, Claim, EnhancementCursor, EnhancementQuery, EnhancementRecord, Error,
    NewAuditEntry, NewEnhancement, Outcome, Store,
};
use std::collections::BTreeSet;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn new_job(tenant: &TenantId, ticket: &str, description: &str) -> NewEnhancement {
    NewEnhancement {
        job_id: Uuid::new_v4(),
        tenant_id: tenant.clone(),
        ticket_id: ticket.to_owned(),
        delivery_key: format!("delivery-{}", Uuid::new_v4()),
        subject: format!("Subject of {ticket}"),
        description: description.to_owned(),
        priority: "High".to_owned(),
        correlation_id: format!("corr-{ticket}"),
    }
}

async fn recorded(store: &dyn Store, tenant: &TenantId, ticket: &str) -> EnhancementRecord {
    let r = store
        .record_enhancement(new_job(tenant, ticket, &format!("Ticket {ticket}")))
        .await
        .unwrap();
    assert!(r.created);
    r.job
}

async fn fail(store: &dyn Store, job: Uuid, error: &str, at: OffsetDateTime) {
    let outcome = Outcome {
        status: Some(EnhancementStatus::Failed),
        context_gathered: Some(serde_json::json!({"kb_articles": []})),
        error_message: Some(error.to_owned()),
        processing_time_ms: Some(1_500),
        cost_micros: 700,
        ..Outcome::default()
    };
    assert!(store.finish_enhancement(job, outcome, at).await.unwrap());
}

async fn job(store: &dyn Store, id: Uuid) -> EnhancementRecord {
    store.enhancement(id).await.unwrap().unwrap()
}

pub(crate) async fn clearing_the_queue_fails_every_pending_job_and_only_those(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let queued = recorded(store, &acme, "1").await;
    store
        .mark_queued_many(&[queued.job_id], OffsetDateTime::now_utc())
        .await
        .unwrap();
    let never_queued = recorded(store, &globex, "2").await;
    let taken = recorded(store, &acme, "3").await;
    let t0 = datetime!(2026-12-01 10:00:00.000 UTC);
    store.start_attempt(taken.job_id, t0, LEASE).await.unwrap();
    let done = recorded(store, &acme, "4").await;
    store.start_attempt(done.job_id, t0, LEASE).await.unwrap();
    let completed = Outcome {
        status: Some(EnhancementStatus::Completed),
        llm_output: Some("note".into()),
        ..Outcome::default()
    };
    store
        .finish_enhancement(done.job_id, completed, t0)
        .await
        .unwrap();
    let failed = recorded(store, &acme, "5").await;
    fail(store, failed.job_id, "ServiceDesk Plus answered 500", t0).await;
    let (done_before, failed_before) = (
        job(store, done.job_id).await,
        job(store, failed.job_id).await,
    );

    let at = datetime!(2026-12-01 11:00:00.123 UTC);
    assert_eq!(store.clear_pending_enhancements(at).await.unwrap(), 2);
    for id in [queued.job_id, never_queued.job_id] {
        let j = job(store, id).await;
        assert_eq!(j.status, EnhancementStatus::Failed, "{}", j.ticket_id);
        assert_eq!(j.error_message.as_deref(), Some(CLEARED));
        assert_eq!(j.completed_at, Some(at));
        assert_eq!(j.attempts, 0, "never taken");
    }
    // Taken by a worker, or final: untouched.
    let taken_after = job(store, taken.job_id).await;
    assert_eq!(taken_after.status, EnhancementStatus::Processing);
    assert_eq!(taken_after.error_message, None);
    assert_eq!(job(store, done.job_id).await, done_before);
    assert_eq!(job(store, failed.job_id).await, failed_before);
    // A worker receiving a cleared job's message later finds it final.
    assert_eq!(
        store.start_attempt(queued.job_id, at, LEASE).await.unwrap(),
        Claim::Final
    );
    assert_eq!(
        job(store, queued.job_id).await.status,
        EnhancementStatus::Failed
    );
    // Nothing vanished; nothing left to clear.
    let (_, total) = store
        .enhancements_page(&EnhancementQuery::default())
        .await
        .unwrap();
    assert_eq!(total, 5);
    assert_eq!(store.clear_pending_enhancements(at).await.unwrap(), 0);
    let counts = store.enhancement_counts().await.unwrap();
    assert_eq!(
        counts,
        [
            (EnhancementStatus::Pending, 0),
            (EnhancementStatus::Processing, 1),
            (EnhancementStatus::Completed, 1),
            (EnhancementStatus::Failed, 3),
        ]
    );
}

/// A dead letter ends a job only in the round it belongs to: with
/// `queued_no_later_than`, a job queued again after it (a retry) is left.
pub(crate) async fn a_guarded_end_leaves_a_job_queued_again_since(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let job_id = recorded(store, &acme, "7").await.job_id;
    let t0 = datetime!(2026-12-01 10:00:00.000 UTC);
    fail(store, job_id, "ServiceDesk Plus answered 500", t0).await;
    let retried_at = datetime!(2026-12-01 10:05:00.000 UTC);
    let retried = store
        .retry_enhancement(job_id, retried_at)
        .await
        .unwrap()
        .unwrap();
    let letter = |dead_at: OffsetDateTime, error: &str| Outcome {
        status: Some(EnhancementStatus::Failed),
        error_message: Some(error.into()),
        queued_no_later_than: Some(dead_at),
        ..Outcome::default()
    };
    let late = datetime!(2026-12-01 10:05:00.050 UTC);
    // The first round's letter, written before the retry: nothing changes.
    assert!(
        !store
            .finish_enhancement(job_id, letter(t0, "first round"), late)
            .await
            .unwrap()
    );
    assert_eq!(job(store, job_id).await, retried);
    // The retried round's own letter ends it.
    assert!(
        store
            .finish_enhancement(job_id, letter(retried_at, "second round"), late)
            .await
            .unwrap()
    );
    let ended = job(store, job_id).await;
    assert_eq!(ended.status, EnhancementStatus::Failed);
    assert_eq!(ended.error_message.as_deref(), Some("second round"));
}

pub(crate) async fn only_a_failed_job_is_retried_and_it_keeps_its_attempts(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let t0 = datetime!(2026-12-01 10:00:00.000 UTC);
    let j = recorded(store, &acme, "1").await;
    // Three attempts, each after the last one's lease.
    for i in 0..3 {
        let at = t0 + LEASE * i;
        store
            .start_attempt(j.job_id, at, LEASE)
            .await
            .unwrap()
            .started()
            .unwrap();
    }
    fail(store, j.job_id, "ServiceDesk Plus answered 500", t0).await;

    let at = datetime!(2026-12-01 10:05:00.042 UTC);
    let retried = store
        .retry_enhancement(j.job_id, at)
        .await
        .unwrap()
        .expect("a failed job is retried");
    assert_eq!(retried.status, EnhancementStatus::Pending);
    assert_eq!(retried.attempts, 3, "attempts kept");
    assert_eq!(retried.error_message, None, "error cleared");
    assert_eq!(retried.completed_at, None);
    assert_eq!(retried.processing_time_ms, None);
    assert_eq!(retried.queued_at, Some(at));
    assert_eq!(
        (retried.ticket_id.as_str(), retried.tenant_id.as_str()),
        ("1", "acme")
    );
    assert_eq!(retried, job(store, j.job_id).await);
    // The next attempt is the fourth; the sweeper leaves it alone until its
    // queued_at is old.
    let started = store
        .start_attempt(j.job_id, at, LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();
    assert_eq!(started.attempts, 4);
    let fresh = store
        .unqueued_enhancements(at + Duration::minutes(1), at - Duration::minutes(1), 10)
        .await
        .unwrap();
    assert!(fresh.is_empty(), "{fresh:?}");

    // Anything but failed: nothing changes.
    let pending = recorded(store, &acme, "2").await;
    let processing = started;
    let completed = recorded(store, &acme, "3").await;
    store
        .start_attempt(completed.job_id, t0, LEASE)
        .await
        .unwrap();
    let done = Outcome {
        status: Some(EnhancementStatus::Completed),
        ..Outcome::default()
    };
    store
        .finish_enhancement(completed.job_id, done, t0)
        .await
        .unwrap();
    for id in [pending.job_id, processing.job_id, completed.job_id] {
        let before = job(store, id).await;
        assert_eq!(store.retry_enhancement(id, at).await.unwrap(), None);
        assert_eq!(job(store, id).await, before);
    }
    // A cleared job is failed, so it can be retried.
    store.clear_pending_enhancements(at).await.unwrap();
    let cleared = store
        .retry_enhancement(pending.job_id, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (cleared.status, cleared.error_message),
        (EnhancementStatus::Pending, None)
    );
    assert!(matches!(
        store.retry_enhancement(Uuid::new_v4(), at).await,
        Err(Error::NotFound(_))
    ));
}

/// Every page of the export through a cursor, as the tickets service
/// walks it.
async fn export(store: &dyn Store, q: &EnhancementQuery, limit: u32) -> (Vec<Uuid>, Vec<usize>) {
    let (mut ids, mut sizes, mut after) = (Vec::new(), Vec::new(), None);
    loop {
        let page = store.enhancements_after(q, after, limit).await.unwrap();
        sizes.push(page.len());
        let Some(last) = page.last() else { break };
        after = Some(EnhancementCursor::of(last));
        assert!(
            page.iter()
                .all(|j| j.context_gathered.is_none() && j.llm_output.is_none()),
            "the export's rows come without the large columns"
        );
        ids.extend(page.iter().map(|j| j.job_id));
        if page.len() < limit as usize {
            break;
        }
    }
    (ids, sizes)
}

/// The same rows through the history's own (OFFSET) pages of 500.
async fn paged(store: &dyn Store, q: &EnhancementQuery) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for page in 1.. {
        let q = EnhancementQuery {
            page,
            per_page: 500,
            ..q.clone()
        };
        let (jobs, _) = store.enhancements_page(&q).await.unwrap();
        if jobs.is_empty() {
            return ids;
        }
        ids.extend(jobs.iter().map(|j| j.job_id));
    }
    unreachable!()
}

/// 1,230 jobs of one tenant and 40 of another, 111 of them recorded in the
/// same millisecond (a tie across the page boundary at 1,000): pages of 500
/// by keyset are the history's pages, every matching job once, with every
/// filter.
pub(crate) async fn the_export_pages_by_keyset_through_every_matching_job(fixture: &impl Fixture) {
    let store = fixture.store();
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let mut acme_ids = BTreeSet::new();
    for i in 0..1_230 {
        let description = if i % 10 == 0 {
            format!("Printer jam number {i}")
        } else {
            format!("Disk full on server {i}")
        };
        let r = store
            .record_enhancement(new_job(&acme, &i.to_string(), &description))
            .await
            .unwrap();
        acme_ids.insert(r.job.job_id);
    }
    for i in 0..40 {
        recorded(store, &globex, &format!("g{i}")).await;
    }
    // Tickets 4, 40–49 and 400–499 share the oldest instant.
    fixture
        .execute_raw(
            "UPDATE enhancement_history SET created_at = \
             (SELECT min(created_at) FROM enhancement_history) WHERE ticket_id LIKE '4%'",
        )
        .await
        .unwrap();
    // Some failed, with the full columns written (the export leaves them out).
    let failed_at = datetime!(2026-12-02 10:00:00.000 UTC);
    let some: Vec<Uuid> = acme_ids.iter().copied().step_by(7).collect();
    for id in &some {
        fail(store, *id, "=cmd|' /C calc'!A0", failed_at).await;
    }

    let all_acme = EnhancementQuery {
        tenant_id: Some(acme.clone()),
        ..EnhancementQuery::default()
    };
    let (ids, sizes) = export(store, &all_acme, 500).await;
    assert_eq!(sizes, [500, 500, 230]);
    assert_eq!(ids.len(), 1_230);
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        acme_ids,
        "every job once"
    );
    assert_eq!(ids, paged(store, &all_acme).await, "in the history's order");

    // Across tenants, and an exact multiple of the page: one empty page ends it.
    let everyone = EnhancementQuery::default();
    let (ids, sizes) = export(store, &everyone, 254).await;
    assert_eq!(sizes, [254, 254, 254, 254, 254, 0]);
    assert_eq!(ids, paged(store, &everyone).await);

    // Each filter, and all together.
    let failed = EnhancementQuery {
        status: Some(EnhancementStatus::Failed),
        ..all_acme.clone()
    };
    let (ids, _) = export(store, &failed, 500).await;
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        some.iter().copied().collect::<BTreeSet<_>>()
    );
    let printers = EnhancementQuery {
        q: Some("PRINTER JAM".into()),
        ..EnhancementQuery::default()
    };
    let (ids, sizes) = export(store, &printers, 50).await;
    assert_eq!(ids.len(), 123);
    assert_eq!(sizes, [50, 50, 23]);
    assert_eq!(ids, paged(store, &printers).await);
    let one_ticket = EnhancementQuery {
        q: Some("1229".into()),
        ..EnhancementQuery::default()
    };
    assert_eq!(export(store, &one_ticket, 500).await.0.len(), 1);
    let newest = store
        .enhancements_page(&all_acme)
        .await
        .unwrap()
        .0
        .first()
        .unwrap()
        .created_at;
    let window = EnhancementQuery {
        tenant_id: Some(acme.clone()),
        status: Some(EnhancementStatus::Pending),
        from: Some(newest - Duration::days(1)),
        to: Some(newest + Duration::days(1)),
        q: Some("disk".into()),
        ..EnhancementQuery::default()
    };
    let (ids, _) = export(store, &window, 500).await;
    assert_eq!(ids, paged(store, &window).await);
    assert!(!ids.is_empty());
    let nothing = EnhancementQuery {
        to: Some(datetime!(2000-01-01 00:00 UTC)),
        ..EnhancementQuery::default()
    };
    assert_eq!(export(store, &nothing, 500).await, (vec![], vec![0]));
    // The limit is clamped to 1..=500.
    assert_eq!(
        store
            .enhancements_after(&all_acme, None, 10_000)
            .await
            .unwrap()
            .len(),
        500
    );
    assert_eq!(
        store
            .enhancements_after(&all_acme, None, 0)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub(crate) async fn audit_page_filters_by_action(store: &dyn Store) {
    let user = UserId::new();
    let base = datetime!(2026-11-01 00:00 UTC);
    let tools = [
        "tickets.pause",
        "Bash",
        "tickets.retry",
        "tickets.resume",
        "tickets.retry.extra",
        "Bash",
        "tickets.clear_queue",
    ];
    for (i, tool) in tools.iter().enumerate() {
        let entry = NewAuditEntry {
            audit_id: Uuid::new_v4(),
            timestamp: base + Duration::seconds(i as i64),
            user_id: Some(user),
            session_id: None,
            tool_name: (*tool).to_owned(),
            sanitized_input: format!("{{\"n\":{i}}}"),
            result_status: AuditStatus::Success.as_str().to_owned(),
            execution_duration_ms: None,
            cost_micros: None,
        };
        assert!(store.append_audit(entry).await.unwrap());
    }
    let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let page = |q: AuditQuery| async move {
        store
            .audit_page(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.entry.tool_name)
            .collect::<Vec<_>>()
    };
    let ops = names(&[
        "tickets.pause",
        "tickets.resume",
        "tickets.clear_queue",
        "tickets.reload_configs",
        "tickets.retry",
    ]);
    assert_eq!(
        page(AuditQuery {
            tool_names: ops.clone(),
            limit: 20,
            ..AuditQuery::default()
        })
        .await,
        [
            "tickets.clear_queue",
            "tickets.resume",
            "tickets.retry",
            "tickets.pause"
        ],
        "exact names (not prefixes), newest first"
    );
    // With keyset paging and the other filters.
    let first = store
        .audit_page(&AuditQuery {
            tool_names: ops.clone(),
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page(AuditQuery {
            tool_names: ops.clone(),
            before_seq: Some(first[1].seq),
            limit: 20,
            ..AuditQuery::default()
        })
        .await,
        ["tickets.retry", "tickets.pause"]
    );
    assert_eq!(
        page(AuditQuery {
            tool_names: ops.clone(),
            user_id: Some(user),
            start: Some(base + Duration::seconds(1)),
            end: Some(base + Duration::seconds(6)),
            limit: 20,
            ..AuditQuery::default()
        })
        .await,
        ["tickets.resume", "tickets.retry"]
    );
    assert_eq!(
        page(AuditQuery {
            tool_names: names(&["Bash"]),
            limit: 20,
            ..AuditQuery::default()
        })
        .await,
        ["Bash", "Bash"]
    );
    assert!(
        page(AuditQuery {
            tool_names: names(&["tickets.%"]),
            limit: 20,
            ..AuditQuery::default()
        })
        .await
        .is_empty(),
        "a name is never a pattern"
    );
    assert_eq!(
        page(AuditQuery {
            limit: 20,
            ..AuditQuery::default()
        })
        .await
        .len(),
        7,
        "no names: every action"
    );
}
