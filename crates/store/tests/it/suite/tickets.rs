//! Ticket enhancement's concerns in the shared suite: tenants, enhancement
//! jobs, and the per-tenant context, including that no tenant ever reads
//! another's rows.

use crate::helpers::{Dialect, Fixture, LEASE, next_millisecond};
use csp_domain::{EnhancementStatus, HistorySource, TenantId};
use csp_store::{
    Claim, EnhancementQuery, EnhancementRecord, Error, HistoryTicket, KbArticleRecord,
    NewEnhancement, NewTenant, Outcome, Owner, SecretChange, Store, StoredSecret, SystemRecord,
    TenantUpdate,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::IpAddr;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn tid(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn sealed(key: &str, value: &str) -> StoredSecret {
    StoredSecret {
        key: key.to_owned(),
        encrypted_value: value.to_owned(),
        encryption_key_version: "v1".to_owned(),
    }
}

fn new_tenant(id: &str) -> NewTenant {
    NewTenant {
        tenant_id: tid(id),
        name: format!("{id} MSP"),
        tool_type: "servicedesk_plus".to_owned(),
        settings: json!({ "servicedesk_url": format!("https://sdp.{id}.example") }),
        preferences: json!({ "note_format": "html", "max_words": 300 }),
        monthly_budget_micros: Some(5_000_000),
        dedicated_queue: false,
        secrets: vec![
            sealed("webhook_secret", &format!("{id}-hook")),
            sealed("api_key", &format!("{id}-api")),
        ],
    }
}

pub(crate) async fn tenant(store: &dyn Store, id: &str) -> TenantId {
    store.create_tenant(new_tenant(id)).await.unwrap().tenant_id
}

fn job(tenant: &TenantId, ticket: &str, delivery: &str) -> NewEnhancement {
    NewEnhancement {
        job_id: Uuid::new_v4(),
        tenant_id: tenant.clone(),
        ticket_id: ticket.to_owned(),
        delivery_key: delivery.to_owned(),
        subject: format!("Subject of {ticket}"),
        description: format!("Description of ticket {ticket}"),
        priority: "High".to_owned(),
        correlation_id: format!("corr-{delivery}"),
    }
}

async fn record(store: &dyn Store, new: NewEnhancement) -> EnhancementRecord {
    let recorded = store.record_enhancement(new).await.unwrap();
    assert!(recorded.created);
    recorded.job
}

fn history(id: &str, description: &str, resolution: &str) -> HistoryTicket {
    HistoryTicket {
        ticket_id: id.to_owned(),
        description: description.to_owned(),
        resolution: resolution.to_owned(),
        resolved_date: datetime!(2026-11-03 10:20:30.456 UTC),
        tags: vec!["disk".to_owned(), "server".to_owned()],
    }
}

fn article(url: &str, title: &str, summary: &str, body: &str) -> KbArticleRecord {
    KbArticleRecord {
        title: title.to_owned(),
        summary: summary.to_owned(),
        url: url.to_owned(),
        body: body.to_owned(),
    }
}

fn system(ip: &str, hostname: &str) -> SystemRecord {
    SystemRecord {
        ip: ip.parse().unwrap(),
        hostname: hostname.to_owned(),
        role: "file server".to_owned(),
        client: "Acme".to_owned(),
        location: "Berlin".to_owned(),
    }
}

fn ids(tickets: &[HistoryTicket]) -> Vec<&str> {
    tickets.iter().map(|t| t.ticket_id.as_str()).collect()
}

// --- Tenants ---------------------------------------------------------------

pub(crate) async fn create_tenant_with_its_secrets_and_conflict_on_a_taken_id(store: &dyn Store) {
    let created = store.create_tenant(new_tenant("acme")).await.unwrap();
    assert_eq!(created.tenant_id.as_str(), "acme");
    assert!(created.is_active);
    assert!(!created.dedicated_queue);
    assert_eq!(created.webhook_secret_rotated_at, None);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        created.settings["servicedesk_url"],
        "https://sdp.acme.example"
    );
    assert_eq!(
        store.tenant(&tid("acme")).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.tenant(&tid("nobody")).await.unwrap(), None);
    assert_eq!(
        store.secrets(&Owner::tenant("acme")).await.unwrap(),
        vec![
            sealed("api_key", "acme-api"),
            sealed("webhook_secret", "acme-hook")
        ]
    );

    // A taken id (even of an inactive tenant) conflicts, and the failed
    // create writes none of its secrets.
    store
        .update_tenant(
            &tid("acme"),
            TenantUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut again = new_tenant("acme");
    again.secrets = vec![sealed("api_key", "other-api")];
    let err = store.create_tenant(again).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("acme")),
        "{err:?}"
    );
    assert_eq!(
        store.secrets(&Owner::tenant("acme")).await.unwrap(),
        vec![
            sealed("api_key", "acme-api"),
            sealed("webhook_secret", "acme-hook")
        ]
    );

    let mut bad = new_tenant("bad-settings");
    bad.settings = json!(["not", "an", "object"]);
    assert!(matches!(
        store.create_tenant(bad).await,
        Err(Error::InvalidInput(_))
    ));
    let mut bad = new_tenant("bad-cap");
    bad.monthly_budget_micros = Some(-1);
    assert!(matches!(
        store.create_tenant(bad).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(store.tenant(&tid("bad-cap")).await.unwrap(), None);

    let mut own = new_tenant("zeta");
    own.dedicated_queue = true;
    let own = store.create_tenant(own).await.unwrap();
    assert!(own.dedicated_queue);
    assert_eq!(store.tenant(&tid("zeta")).await.unwrap(), Some(own));
    tenant(store, "beta-2").await;
    let listed: Vec<String> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.tenant_id.to_string())
        .collect();
    assert_eq!(listed, ["acme", "beta-2", "zeta"]);
}

pub(crate) async fn update_tenant_changes_fields_and_secrets_together(store: &dyn Store) {
    let created = store.create_tenant(new_tenant("acme")).await.unwrap();
    next_millisecond().await;
    let rotated_at = datetime!(2026-12-01 08:00:00.123 UTC);
    let updated = store
        .update_tenant(
            &tid("acme"),
            TenantUpdate {
                name: Some("Acme Managed Services".to_owned()),
                settings: Some(json!({ "servicedesk_url": "https://new.acme.example" })),
                preferences: None,
                monthly_budget_micros: Some(None),
                is_active: None,
                dedicated_queue: Some(true),
                webhook_secret_rotated_at: Some(rotated_at),
                secrets: vec![
                    SecretChange::Set(sealed("webhook_secret", "acme-hook-2")),
                    SecretChange::Set(sealed("webhook_secret_previous", "acme-hook")),
                    SecretChange::Remove("api_key".to_owned()),
                ],
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Acme Managed Services");
    assert_eq!(
        updated.settings["servicedesk_url"],
        "https://new.acme.example"
    );
    assert_eq!(updated.preferences, created.preferences);
    assert_eq!(updated.monthly_budget_micros, None);
    assert!(updated.is_active);
    assert!(
        !created.dedicated_queue && updated.dedicated_queue,
        "created on the shared queue, then given its own"
    );
    assert_eq!(updated.webhook_secret_rotated_at, Some(rotated_at));
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at > created.updated_at);
    assert_eq!(
        store.tenant(&tid("acme")).await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(
        store.secrets(&Owner::tenant("acme")).await.unwrap(),
        vec![
            sealed("webhook_secret", "acme-hook-2"),
            sealed("webhook_secret_previous", "acme-hook")
        ]
    );

    // An invalid update changes nothing, fields or secrets.
    for bad in [
        TenantUpdate {
            monthly_budget_micros: Some(Some(-5)),
            secrets: vec![SecretChange::Remove("webhook_secret".to_owned())],
            ..Default::default()
        },
        TenantUpdate {
            preferences: Some(json!("html")),
            ..Default::default()
        },
        TenantUpdate {
            name: Some("x".to_owned()),
            secrets: vec![SecretChange::Set(sealed("", "v"))],
            ..Default::default()
        },
    ] {
        let err = store.update_tenant(&tid("acme"), bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    }
    assert_eq!(store.tenant(&tid("acme")).await.unwrap(), Some(updated));
    assert_eq!(
        store.secrets(&Owner::tenant("acme")).await.unwrap().len(),
        2
    );

    let err = store
        .update_tenant(
            &tid("nobody"),
            TenantUpdate {
                secrets: vec![SecretChange::Set(sealed("api_key", "x"))],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound(m) if m.contains("nobody")),
        "{err:?}"
    );
    assert_eq!(
        store.secrets(&Owner::tenant("nobody")).await.unwrap(),
        vec![]
    );

    let deactivated = store
        .update_tenant(
            &tid("acme"),
            TenantUpdate {
                is_active: Some(false),
                monthly_budget_micros: Some(Some(7)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!deactivated.is_active);
    assert_eq!(deactivated.monthly_budget_micros, Some(7));
    assert_eq!(deactivated.name, "Acme Managed Services");
}

pub(crate) async fn tenant_spend_adds_up_per_month(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    assert_eq!(store.tenant_spend(&acme, "2026-12").await.unwrap(), 0);
    assert_eq!(
        store
            .add_tenant_spend(&acme, "2026-12", 1_500)
            .await
            .unwrap(),
        1_500
    );
    assert_eq!(
        store.add_tenant_spend(&acme, "2026-12", 250).await.unwrap(),
        1_750
    );
    assert_eq!(
        store.add_tenant_spend(&acme, "2027-01", 0).await.unwrap(),
        0
    );
    assert_eq!(store.tenant_spend(&acme, "2026-12").await.unwrap(), 1_750);
    assert_eq!(store.tenant_spend(&acme, "2027-01").await.unwrap(), 0);
    assert!(matches!(
        store.add_tenant_spend(&acme, "2026-12", -1).await,
        Err(Error::InvalidInput(_))
    ));
    for month in ["2026-13", "26-12", "2026-1"] {
        assert!(matches!(
            store.add_tenant_spend(&acme, month, 1).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            store.tenant_spend(&acme, month).await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(matches!(
        store.add_tenant_spend(&tid("nobody"), "2026-12", 1).await,
        Err(Error::NotFound(_))
    ));
    // Concurrent charges all count.
    let charges = (0..10).map(|_| store.add_tenant_spend(&acme, "2027-02", 3));
    futures::future::try_join_all(charges).await.unwrap();
    assert_eq!(store.tenant_spend(&acme, "2027-02").await.unwrap(), 30);
}

pub(crate) async fn tenant_secrets_are_reencrypted_with_every_owner(store: &dyn Store) {
    tenant(store, "acme").await;
    let to_v2 = |s: &StoredSecret| -> Result<Option<StoredSecret>, String> {
        Ok((s.encryption_key_version == "v1").then(|| StoredSecret {
            key: s.key.clone(),
            encrypted_value: format!("{}@v2", s.encrypted_value),
            encryption_key_version: "v2".to_owned(),
        }))
    };
    assert_eq!(store.reencrypt_secrets(&to_v2).await.unwrap(), 2);
    let rotated = store.secrets(&Owner::tenant("acme")).await.unwrap();
    assert_eq!(
        rotated
            .iter()
            .map(|s| s.encrypted_value.as_str())
            .collect::<Vec<_>>(),
        ["acme-api@v2", "acme-hook@v2"]
    );
    assert!(rotated.iter().all(|s| s.encryption_key_version == "v2"));
}

// --- Enhancement jobs ------------------------------------------------------

pub(crate) async fn record_enhancement_is_idempotent_per_tenant_and_delivery(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let first = store
        .record_enhancement(job(&acme, "1234", "sig-1"))
        .await
        .unwrap();
    assert!(first.created);
    let job1 = &first.job;
    assert_eq!(job1.status, EnhancementStatus::Pending);
    assert_eq!(job1.attempts, 0);
    assert_eq!(
        (job1.queued_at, job1.started_at, job1.completed_at),
        (None, None, None)
    );
    assert_eq!(job1.correlation_id, "corr-sig-1");
    assert_eq!(
        store.enhancement(job1.job_id).await.unwrap().as_ref(),
        Some(job1)
    );

    // The same delivery again: the first job, nothing new.
    let again = store
        .record_enhancement(job(&acme, "1234", "sig-1"))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(&again.job, job1);
    // The same key under another tenant is another delivery.
    let other = store
        .record_enhancement(job(&globex, "1234", "sig-1"))
        .await
        .unwrap();
    assert!(other.created);
    assert_ne!(other.job.job_id, job1.job_id);

    // Concurrent repeats of one delivery record one job.
    let repeats = (0..8).map(|_| store.record_enhancement(job(&acme, "77", "sig-77")));
    let recorded = futures::future::try_join_all(repeats).await.unwrap();
    assert_eq!(recorded.iter().filter(|r| r.created).count(), 1);
    assert_eq!(
        recorded
            .iter()
            .map(|r| r.job.job_id)
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );

    let mut taken = job(&acme, "9", "sig-9");
    taken.job_id = job1.job_id;
    assert!(matches!(
        store.record_enhancement(taken).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .record_enhancement(job(&tid("nobody"), "1", "sig"))
            .await,
        Err(Error::NotFound(_))
    ));
    let (_, total) = store
        .enhancements_page(&EnhancementQuery::default())
        .await
        .unwrap();
    assert_eq!(total, 3);
}

pub(crate) async fn attempts_start_and_finish_once_and_final_jobs_stay_final(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let job1 = record(store, job(&acme, "1", "d1")).await;
    let t1 = datetime!(2026-12-01 10:00:00.001 UTC);
    let started = store
        .start_attempt(job1.job_id, t1, LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();
    assert_eq!(
        (started.status, started.attempts, started.started_at),
        (EnhancementStatus::Processing, 1, Some(t1))
    );
    // A delivery once the first attempt's lease has ended is another
    // attempt (its worker died): `Held` before, see
    // `a_processing_job_is_held_until_its_lease_ends`.
    let t2 = t1 + LEASE;
    let again = store
        .start_attempt(job1.job_id, t2, LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();
    assert_eq!((again.attempts, again.started_at), (2, Some(t2)));

    let context = json!({ "similar_tickets": [{ "ticket_id": "42" }], "timings_ms": { "kb": 12 } });
    let done_at = t2 + Duration::seconds(3);
    let outcome = Outcome {
        status: Some(EnhancementStatus::Completed),
        context_gathered: Some(context.clone()),
        llm_output: Some("<p>note</p>".to_owned()),
        error_message: None,
        processing_time_ms: Some(3_000),
        cost_micros: 1_234,
        input_tokens: 900,
        output_tokens: 300,
        note_id: Some("note-1".to_owned()),
        worker_id: None,
        queued_no_later_than: None,
        attempt: None,
    };
    assert!(
        store
            .finish_enhancement(job1.job_id, outcome.clone(), done_at)
            .await
            .unwrap()
    );
    let finished = store.enhancement(job1.job_id).await.unwrap().unwrap();
    assert_eq!(finished.status, EnhancementStatus::Completed);
    assert_eq!(finished.context_gathered, Some(context));
    assert_eq!(finished.llm_output.as_deref(), Some("<p>note</p>"));
    assert_eq!(finished.processing_time_ms, Some(3_000));
    assert_eq!(
        (
            finished.cost_micros,
            finished.input_tokens,
            finished.output_tokens
        ),
        (1_234, 900, 300)
    );
    assert_eq!(finished.note_id.as_deref(), Some("note-1"));
    assert_eq!(finished.completed_at, Some(done_at));
    assert_eq!(finished.attempts, 2);

    // A duplicate delivery finishing late changes nothing; a final job is
    // never started again.
    let late = Outcome {
        status: Some(EnhancementStatus::Failed),
        error_message: Some("late".to_owned()),
        ..Outcome::default()
    };
    assert!(
        !store
            .finish_enhancement(job1.job_id, late, done_at)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .start_attempt(job1.job_id, done_at, LEASE)
            .await
            .unwrap(),
        Claim::Final
    );
    assert_eq!(
        store.enhancement(job1.job_id).await.unwrap(),
        Some(finished)
    );

    // Failed is final too.
    let job2 = record(store, job(&acme, "2", "d2")).await;
    let failed = Outcome {
        status: Some(EnhancementStatus::Failed),
        error_message: Some("ServiceDesk Plus answered 500".to_owned()),
        ..Outcome::default()
    };
    assert!(
        store
            .finish_enhancement(job2.job_id, failed, done_at)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .start_attempt(job2.job_id, done_at, LEASE)
            .await
            .unwrap(),
        Claim::Final
    );
    let job2 = store.enhancement(job2.job_id).await.unwrap().unwrap();
    assert_eq!(job2.status, EnhancementStatus::Failed);
    assert_eq!(
        job2.error_message.as_deref(),
        Some("ServiceDesk Plus answered 500")
    );

    let unknown = Uuid::new_v4();
    assert_eq!(
        store.start_attempt(unknown, t1, LEASE).await.unwrap(),
        Claim::Final
    );
    assert_eq!(store.enhancement(unknown).await.unwrap(), None);
    assert!(matches!(
        store.finish_enhancement(unknown, outcome, t1).await,
        Err(Error::NotFound(_))
    ));
    let job3 = record(store, job(&acme, "3", "d3")).await;
    for bad in [
        Outcome::default(),
        Outcome {
            status: Some(EnhancementStatus::Processing),
            ..Outcome::default()
        },
        Outcome {
            status: Some(EnhancementStatus::Completed),
            cost_micros: -1,
            ..Outcome::default()
        },
    ] {
        assert!(matches!(
            store.finish_enhancement(job3.job_id, bad, t1).await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert_eq!(store.enhancement(job3.job_id).await.unwrap(), Some(job3));
}

pub(crate) async fn a_processing_job_is_held_until_its_lease_ends(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let job1 = record(store, job(&acme, "1", "d1")).await;
    let t1 = datetime!(2026-12-01 10:00:00.001 UTC);
    let first = store.start_attempt(job1.job_id, t1, LEASE).await.unwrap();
    let Claim::Started(first) = first else {
        panic!("a pending job is started: {first:?}");
    };
    assert_eq!((first.attempts, first.started_at), (1, Some(t1)));

    // A second delivery while the first attempt's lease runs takes nothing,
    // to the lease's last millisecond.
    for at in [
        t1,
        t1 + Duration::seconds(1),
        t1 + LEASE - Duration::milliseconds(1),
    ] {
        assert_eq!(
            store.start_attempt(job1.job_id, at, LEASE).await.unwrap(),
            Claim::Held { since: t1 },
            "{at}"
        );
    }
    assert_eq!(store.enhancement(job1.job_id).await.unwrap(), Some(*first));

    // Once it has ended (the holder died), the job is claimed again.
    let t2 = t1 + LEASE;
    let second = store
        .start_attempt(job1.job_id, t2, LEASE)
        .await
        .unwrap()
        .started()
        .expect("claimed after the lease");
    assert_eq!(
        (second.status, second.attempts, second.started_at),
        (EnhancementStatus::Processing, 2, Some(t2))
    );
    assert_eq!(
        store
            .start_attempt(job1.job_id, t2 + Duration::seconds(1), LEASE)
            .await
            .unwrap(),
        Claim::Held { since: t2 }
    );

    // The first attempt, outliving its lease, cannot end the second's job;
    // the second can.
    let end = |attempt| Outcome {
        status: Some(EnhancementStatus::Completed),
        attempt: Some(attempt),
        ..Outcome::default()
    };
    let done_at = t2 + Duration::seconds(5);
    assert!(
        !store
            .finish_enhancement(job1.job_id, end(1), done_at)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .enhancement(job1.job_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        EnhancementStatus::Processing
    );
    assert!(
        store
            .finish_enhancement(job1.job_id, end(2), done_at)
            .await
            .unwrap()
    );

    // An attempt that failed and is retried gives the job back, and the
    // retry claims it at once; only the attempt holding it can.
    let job4 = record(store, job(&acme, "4", "d4")).await;
    let failing = store
        .start_attempt(job4.job_id, t1, LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();
    assert!(!store.release_attempt(job4.job_id, 2).await.unwrap());
    assert!(
        store
            .release_attempt(job4.job_id, failing.attempts)
            .await
            .unwrap()
    );
    let released = store.enhancement(job4.job_id).await.unwrap().unwrap();
    assert_eq!(
        (released.status, released.attempts),
        (EnhancementStatus::Pending, 1)
    );
    assert!(
        !store.release_attempt(job4.job_id, 1).await.unwrap(),
        "not held"
    );
    let retry_at = t1 + Duration::seconds(2);
    let retry = store
        .start_attempt(job4.job_id, retry_at, LEASE)
        .await
        .unwrap()
        .started()
        .expect("claimed within the released lease");
    assert_eq!((retry.attempts, retry.started_at), (2, Some(retry_at)));
    assert!(!store.release_attempt(Uuid::new_v4(), 1).await.unwrap());

    // Completed, failed and unknown jobs are final, however late.
    let job2 = record(store, job(&acme, "2", "d2")).await;
    store
        .start_attempt(job2.job_id, t1, LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();
    let failed = Outcome {
        status: Some(EnhancementStatus::Failed),
        error_message: Some("boom".to_owned()),
        ..Outcome::default()
    };
    assert!(
        store
            .finish_enhancement(job2.job_id, failed, t1)
            .await
            .unwrap()
    );
    let late = t2 + LEASE * 10;
    for id in [job1.job_id, job2.job_id, Uuid::new_v4()] {
        for at in [done_at, late] {
            assert_eq!(
                store.start_attempt(id, at, LEASE).await.unwrap(),
                Claim::Final
            );
        }
    }

    // Claims at once: exactly one starts, every other finds it held.
    let job3 = record(store, job(&acme, "3", "d3")).await;
    let claims = (0..8).map(|_| store.start_attempt(job3.job_id, t1, LEASE));
    let claims = futures::future::try_join_all(claims).await.unwrap();
    let started = claims
        .iter()
        .filter(|c| matches!(c, Claim::Started(_)))
        .count();
    assert_eq!(started, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|c| matches!(c, Claim::Started(_)) || *c == Claim::Held { since: t1 }),
        "{claims:?}"
    );
    let job3 = store.enhancement(job3.job_id).await.unwrap().unwrap();
    assert_eq!(job3.attempts, 1);
}

pub(crate) async fn the_sweeper_finds_unpublished_and_lost_jobs_oldest_first(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let never = record(store, job(&acme, "1", "d1")).await;
    next_millisecond().await;
    let lost = record(store, job(&acme, "2", "d2")).await;
    next_millisecond().await;
    let fresh = record(store, job(&acme, "3", "d3")).await;
    next_millisecond().await;
    let working = record(store, job(&acme, "4", "d4")).await;
    let now = OffsetDateTime::now_utc() + Duration::seconds(1);
    let long_ago = now - Duration::minutes(10);
    let marked = store
        .mark_queued_many(&[lost.job_id, working.job_id], long_ago)
        .await
        .unwrap();
    assert_eq!(marked, 2);
    store.mark_queued_many(&[fresh.job_id], now).await.unwrap();
    store
        .start_attempt(working.job_id, now, LEASE)
        .await
        .unwrap();

    let queued_before = now - Duration::minutes(5);
    let found = store
        .unqueued_enhancements(now, queued_before, 10)
        .await
        .unwrap();
    let found: Vec<Uuid> = found.iter().map(|j| j.job_id).collect();
    assert_eq!(found, [never.job_id, lost.job_id]);
    let first = store
        .unqueued_enhancements(now, queued_before, 1)
        .await
        .unwrap();
    assert_eq!(first[0].job_id, never.job_id);
    // Jobs recorded after `created_before` are left to the intake.
    let before_all = never.created_at;
    assert_eq!(
        store
            .unqueued_enhancements(before_all, queued_before, 10)
            .await
            .unwrap(),
        vec![]
    );
    let queued = store.enhancement(lost.job_id).await.unwrap().unwrap();
    assert_eq!(queued.queued_at, Some(time_ms(long_ago)));

    // A job that started long ago and was not queued since lost its worker
    // (or the in-process queue that held its message): found again; one
    // that started recently (`working`) is left to its worker.
    let stranded = record(store, job(&acme, "5", "d5")).await;
    store
        .mark_queued_many(&[stranded.job_id], long_ago)
        .await
        .unwrap();
    store
        .start_attempt(stranded.job_id, long_ago, LEASE)
        .await
        .unwrap();
    let found = store
        .unqueued_enhancements(now, queued_before, 10)
        .await
        .unwrap();
    let found: Vec<Uuid> = found.iter().map(|j| j.job_id).collect();
    assert_eq!(found, [never.job_id, lost.job_id, stranded.job_id]);
    // Queued again now: not found again until that is long ago too.
    store
        .mark_queued_many(&[stranded.job_id], now)
        .await
        .unwrap();
    let found = store
        .unqueued_enhancements(now, queued_before, 10)
        .await
        .unwrap();
    assert!(found.iter().all(|j| j.job_id != stranded.job_id));
}

pub(crate) async fn mark_queued_many_marks_known_jobs_and_ignores_unknown_ones(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    // A millisecond apart: the sweeper's order (oldest first) is theirs.
    let a = record(store, job(&acme, "1", "d1")).await;
    next_millisecond().await;
    let b = record(store, job(&acme, "2", "d2")).await;
    next_millisecond().await;
    let c = record(store, job(&acme, "3", "d3")).await;
    let now = OffsetDateTime::now_utc() + Duration::seconds(1);
    let unqueued = || async {
        let found = store
            .unqueued_enhancements(now, now - Duration::minutes(5), 10)
            .await
            .unwrap();
        found.iter().map(|j| j.job_id).collect::<Vec<_>>()
    };
    assert_eq!(unqueued().await, [a.job_id, b.job_id, c.job_id]);

    // Nothing to mark: nothing changes (and no statement runs).
    assert_eq!(store.mark_queued_many(&[], now).await.unwrap(), 0);
    assert_eq!(unqueued().await, [a.job_id, b.job_id, c.job_id]);

    // Several at once, an unknown id among them ignored.
    let unknown = Uuid::new_v4();
    let marked = store
        .mark_queued_many(&[a.job_id, unknown, c.job_id], now)
        .await
        .unwrap();
    assert_eq!(marked, 2);
    for (job, at) in [(&a, Some(now)), (&b, None), (&c, Some(now))] {
        let stored = store.enhancement(job.job_id).await.unwrap().unwrap();
        let expected = at.map(time_ms);
        assert_eq!(stored.queued_at, expected, "{}", job.ticket_id);
        // Only `queued_at` moves.
        let unchanged = EnhancementRecord {
            queued_at: None,
            ..stored
        };
        assert_eq!(unchanged, *job);
    }
    assert_eq!(store.enhancement(unknown).await.unwrap(), None);
    // Marked jobs are no longer the sweeper's.
    assert_eq!(unqueued().await, [b.job_id]);

    // More ids than one statement binds (500): every known one marked.
    let mut many: Vec<Uuid> = (0..600).map(|_| Uuid::new_v4()).collect();
    many[3] = a.job_id;
    many[550] = b.job_id;
    let later = now + Duration::seconds(1);
    assert_eq!(store.mark_queued_many(&many, later).await.unwrap(), 2);
    for (job, at) in [(&a, later), (&b, later), (&c, now)] {
        let stored = store.enhancement(job.job_id).await.unwrap().unwrap();
        let expected = Some(time_ms(at));
        assert_eq!(stored.queued_at, expected, "{}", job.ticket_id);
    }
    assert_eq!(unqueued().await, Vec::<Uuid>::new());
}

fn time_ms(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap()
}

/// Every job recorded in the same millisecond (a burst): pages must still
/// be stable and complete, ordered by job id within the tie.
pub(crate) async fn enhancements_page_is_stable_and_complete_over_ties(fixture: &impl Fixture) {
    let store = fixture.store();
    let acme = tenant(store, "acme").await;
    let mut all = BTreeSet::new();
    for i in 0..23 {
        all.insert(
            record(store, job(&acme, &i.to_string(), &format!("d{i}")))
                .await
                .job_id,
        );
    }
    fixture
        .execute_raw("UPDATE enhancement_history SET created_at = (SELECT min(created_at) FROM enhancement_history)")
        .await
        .unwrap();
    let mut seen = Vec::new();
    for page in 1..=5 {
        let q = EnhancementQuery {
            page,
            per_page: 5,
            ..EnhancementQuery::default()
        };
        let (jobs, total) = store.enhancements_page(&q).await.unwrap();
        assert_eq!(total, 23);
        assert_eq!(jobs.len(), if page == 5 { 3 } else { 5 });
        // Reading a page twice gives the same page.
        assert_eq!(store.enhancements_page(&q).await.unwrap().0, jobs);
        seen.extend(jobs.into_iter().map(|j| j.job_id));
    }
    let expected: Vec<Uuid> = all.iter().rev().copied().collect();
    assert_eq!(seen, expected, "newest first, then job id descending");
    let q = EnhancementQuery {
        page: 6,
        per_page: 5,
        ..EnhancementQuery::default()
    };
    assert_eq!(store.enhancements_page(&q).await.unwrap(), (vec![], 23));
    // 50 a page by default; page 0 reads as page 1.
    let (jobs, _) = store
        .enhancements_page(&EnhancementQuery::default())
        .await
        .unwrap();
    assert_eq!(jobs.len(), 23);
}

pub(crate) async fn enhancements_page_filters_by_tenant_status_time_and_text(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let mut a1 = job(&acme, "1001", "a1");
    a1.description = "Printer JAM on floor 3".to_owned();
    let a1 = record(store, a1).await;
    next_millisecond().await;
    let mut a2 = job(&acme, "1002", "a2");
    a2.description = "Disk 100% full".to_owned();
    let a2 = record(store, a2).await;
    next_millisecond().await;
    let mut a3 = job(&acme, "1003", "a3");
    a3.description = "Disk 1000 full_name".to_owned();
    let a3 = record(store, a3).await;
    next_millisecond().await;
    let mut g1 = job(&globex, "1001", "g1");
    g1.description = "printer jam in the lobby".to_owned();
    let g1 = record(store, g1).await;
    store
        .start_attempt(a2.job_id, OffsetDateTime::now_utc(), LEASE)
        .await
        .unwrap();

    let page = |q: EnhancementQuery| async move {
        let (jobs, total) = store.enhancements_page(&q).await.unwrap();
        assert_eq!(total as usize, jobs.len());
        jobs.into_iter().map(|j| j.job_id).collect::<Vec<_>>()
    };
    let q = EnhancementQuery::default;
    assert_eq!(
        page(q()).await,
        [g1.job_id, a3.job_id, a2.job_id, a1.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            tenant_id: Some(acme.clone()),
            ..q()
        })
        .await,
        [a3.job_id, a2.job_id, a1.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            tenant_id: Some(globex.clone()),
            ..q()
        })
        .await,
        [g1.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            tenant_id: Some(tid("nobody")),
            ..q()
        })
        .await,
        Vec::<Uuid>::new()
    );
    assert_eq!(
        page(EnhancementQuery {
            status: Some(EnhancementStatus::Processing),
            ..q()
        })
        .await,
        [a2.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            status: Some(EnhancementStatus::Pending),
            tenant_id: Some(acme.clone()),
            ..q()
        })
        .await,
        [a3.job_id, a1.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            from: Some(a2.created_at),
            to: Some(g1.created_at),
            ..q()
        })
        .await,
        [a3.job_id, a2.job_id]
    );
    // q: the ticket id exactly, or the description case-insensitively.
    assert_eq!(
        page(EnhancementQuery {
            q: Some("1001".to_owned()),
            ..q()
        })
        .await,
        [g1.job_id, a1.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            q: Some("100".to_owned()),
            ..q()
        })
        .await,
        [a3.job_id, a2.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            q: Some("printer jam".to_owned()),
            ..q()
        })
        .await,
        [g1.job_id, a1.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            q: Some("PRINTER".to_owned()),
            tenant_id: Some(acme.clone()),
            ..q()
        })
        .await,
        [a1.job_id]
    );
    // `%` and `_` are themselves, not wildcards.
    assert_eq!(
        page(EnhancementQuery {
            q: Some("100%".to_owned()),
            ..q()
        })
        .await,
        [a2.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            q: Some("jam_on".to_owned()),
            ..q()
        })
        .await,
        Vec::<Uuid>::new()
    );
    assert_eq!(
        page(EnhancementQuery {
            q: Some("full_".to_owned()),
            ..q()
        })
        .await,
        [a3.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            q: Some("%".to_owned()),
            ..q()
        })
        .await,
        [a2.job_id]
    );
    assert_eq!(
        page(EnhancementQuery {
            q: Some("\\".to_owned()),
            ..q()
        })
        .await,
        Vec::<Uuid>::new()
    );
}

pub(crate) async fn enhancement_counts_and_the_pause_flag(store: &dyn Store) {
    let all_zero: Vec<(EnhancementStatus, u64)> =
        EnhancementStatus::ALL.iter().map(|s| (*s, 0)).collect();
    assert_eq!(store.enhancement_counts().await.unwrap(), all_zero);
    let acme = tenant(store, "acme").await;
    let a = record(store, job(&acme, "1", "d1")).await;
    record(store, job(&acme, "2", "d2")).await;
    let c = record(store, job(&acme, "3", "d3")).await;
    store
        .start_attempt(a.job_id, OffsetDateTime::now_utc(), LEASE)
        .await
        .unwrap();
    let failed = Outcome {
        status: Some(EnhancementStatus::Failed),
        ..Outcome::default()
    };
    store
        .finish_enhancement(c.job_id, failed, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        store.enhancement_counts().await.unwrap(),
        [
            (EnhancementStatus::Pending, 1),
            (EnhancementStatus::Processing, 1),
            (EnhancementStatus::Completed, 0),
            (EnhancementStatus::Failed, 1),
        ]
    );

    assert!(!store.processing_paused().await.unwrap());
    store.set_processing_paused(true).await.unwrap();
    assert!(store.processing_paused().await.unwrap());
    store.set_processing_paused(true).await.unwrap();
    assert!(store.processing_paused().await.unwrap());
    store.set_processing_paused(false).await.unwrap();
    assert!(!store.processing_paused().await.unwrap());
}

// --- Context ---------------------------------------------------------------

pub(crate) async fn ticket_history_upserts_by_tenant_and_ticket(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let at = datetime!(2026-12-02 00:00:00.5 UTC);
    let tickets = [
        history("1", "Disk full on FS01", "Cleared old logs"),
        history("2", "VPN drops", "Updated client"),
    ];
    assert_eq!(
        store
            .upsert_ticket_history(&acme, &tickets, HistorySource::BulkImport, at)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.count_ticket_history(&acme).await.unwrap(), 2);
    let stored = store.ticket_history(&acme, "1").await.unwrap().unwrap();
    assert_eq!(stored.ticket, tickets[0]);
    assert_eq!(
        (stored.source, stored.ingested_at),
        (HistorySource::BulkImport, at)
    );
    assert_eq!(store.ticket_history(&acme, "3").await.unwrap(), None);

    // The same ticket again (a resolved webhook, or the import run twice)
    // replaces it.
    let later = at + Duration::hours(1);
    let mut changed = history("1", "Disk full on FS02", "Extended the volume");
    changed.tags = vec![];
    assert_eq!(
        store
            .upsert_ticket_history(
                &acme,
                &[changed.clone()],
                HistorySource::WebhookResolved,
                later
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.count_ticket_history(&acme).await.unwrap(), 2);
    let stored = store.ticket_history(&acme, "1").await.unwrap().unwrap();
    assert_eq!(
        (stored.ticket, stored.source, stored.ingested_at),
        (changed, HistorySource::WebhookResolved, later)
    );
    assert_eq!(
        store
            .upsert_ticket_history(&acme, &tickets, HistorySource::BulkImport, at)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.count_ticket_history(&acme).await.unwrap(), 2);

    // All or nothing.
    let with_empty = [history("5", "a", "b"), history("", "c", "d")];
    assert!(matches!(
        store
            .upsert_ticket_history(&acme, &with_empty, HistorySource::BulkImport, at)
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(store.count_ticket_history(&acme).await.unwrap(), 2);
    assert_eq!(
        store
            .upsert_ticket_history(&acme, &[], HistorySource::BulkImport, at)
            .await
            .unwrap(),
        0
    );
    assert!(matches!(
        store
            .upsert_ticket_history(&tid("nobody"), &tickets, HistorySource::BulkImport, at)
            .await,
        Err(Error::NotFound(_))
    ));
}

pub(crate) async fn similar_tickets_rank_any_word_and_read_no_syntax(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let at = OffsetDateTime::now_utc();
    let tickets = [
        history(
            "10",
            "Outlook cannot connect to the mail server",
            "Reset the profile",
        ),
        history(
            "11",
            "Disk full on file server FS01",
            "Cleared old logs on the disk",
        ),
        history("12", "Printer jam on floor 3", "Removed the paper"),
        history("13", "Disk errors reported by SMART", "Replaced the disk"),
    ];
    store
        .upsert_ticket_history(&acme, &tickets, HistorySource::BulkImport, at)
        .await
        .unwrap();

    // Any word matches; more matching words rank higher.
    let found = store
        .similar_tickets(&acme, "The disk on FS01 is full!", 5)
        .await
        .unwrap();
    assert_eq!(ids(&found)[..2], ["11", "13"]);
    assert_eq!(found[0], tickets[1]);
    assert!(!ids(&found).contains(&"12"));
    // Stemming: "printers" finds "printer".
    assert_eq!(
        ids(&store
            .similar_tickets(&acme, "printers jammed", 5)
            .await
            .unwrap()),
        ["12"]
    );
    assert_eq!(
        store.similar_tickets(&acme, "disk", 1).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.similar_tickets(&acme, "disk", 0).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store.similar_tickets(&acme, "kubernetes", 5).await.unwrap(),
        vec![]
    );

    // Nothing a user writes is query syntax, and nothing is an error.
    for text in [
        "",
        "   ",
        "!!! ??? ...",
        "the of and is",
        "\"disk",
        "disk\" OR \"printer",
        "'; DROP TABLE ticket_history; --",
        "disk & !printer | (jam) <-> a:* NEAR(x y) AND OR NOT",
        "100% _done_ \\ \u{0} 💥",
    ] {
        store
            .similar_tickets(&acme, text, 5)
            .await
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    }
    for nothing in ["", "!!! ??? ...", "the of and is", "💥 — …"] {
        assert_eq!(
            store.similar_tickets(&acme, nothing, 5).await.unwrap(),
            vec![],
            "{nothing:?}"
        );
    }
    assert_eq!(
        ids(&store
            .similar_tickets(&acme, "disk\" OR \"printer", 5)
            .await
            .unwrap())
        .len(),
        3,
        "quotes and OR are words here: disk, printer"
    );

    // Re-indexed on update: the old words no longer find it.
    let replaced = history("12", "Scanner offline", "Power cycled");
    store
        .upsert_ticket_history(&acme, &[replaced], HistorySource::WebhookResolved, at)
        .await
        .unwrap();
    assert_eq!(
        store.similar_tickets(&acme, "printer", 5).await.unwrap(),
        vec![]
    );
    assert_eq!(
        ids(&store.similar_tickets(&acme, "scanner", 5).await.unwrap()),
        ["12"]
    );
}

/// Past `SMALL_TABLE_ROWS` the search plans its query from how common each
/// word is: a ticket's common words are left out, its rare ones find the
/// similar tickets; with only common words, they are searched together.
pub(crate) async fn similar_tickets_of_a_large_history_search_the_rare_words(
    fixture: &impl Fixture,
) {
    let store = fixture.store();
    let acme = tenant(store, "acme").await;
    let _other = tenant(store, "other").await;
    // 12,000 tickets about the same few words, written in bulk past the
    // store (a statement per row through it would only measure round trips).
    let (bulk, analyse) = match fixture.dialect() {
        Dialect::Postgres => (
            "INSERT INTO ticket_history (tenant_id, ticket_id, description, resolution, \
             resolved_date, tags, source, ingested_at) \
             SELECT CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'other' END, 'bulk-' || g, \
             'User reports printer error, printer offline', 'Restarted the spooler', now(), \
             '[]', 'bulk_import', now() FROM generate_series(1, 12000) AS g",
            "ANALYZE ticket_history",
        ),
        Dialect::Sqlite => (
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 12000) \
             INSERT INTO ticket_history (tenant_id, ticket_id, description, resolution, \
             resolved_date, tags, source, ingested_at) \
             SELECT CASE WHEN n % 2 = 0 THEN 'acme' ELSE 'other' END, 'bulk-' || n, \
             'User reports printer error, printer offline', 'Restarted the spooler', 0, \
             '[]', 'bulk_import', 0 FROM g",
            "ANALYZE",
        ),
    };
    fixture.execute_raw(bulk).await.unwrap();
    let at = OffsetDateTime::now_utc();
    let rare = [
        history(
            "77",
            "Printer KX500 shows error 0x51 after a firmware update",
            "Rolled the firmware back",
        ),
        history("78", "KX500 toner light stays on", "Reseated the toner"),
    ];
    store
        .upsert_ticket_history(&acme, &rare, HistorySource::BulkImport, at)
        .await
        .unwrap();
    fixture.execute_raw(analyse).await.unwrap();

    let text = "User says the printer shows an error on the KX500 after the firmware update";
    let query = store
        .similar_tickets_query(&acme, text)
        .await
        .unwrap()
        .expect("words to search");
    assert!(query.contains("kx500"), "{query}");
    for common in ["user", "printer", "error"] {
        assert!(!query.contains(common), "{common} in {query}");
    }
    let found = store.similar_tickets(&acme, text, 5).await.unwrap();
    assert_eq!(ids(&found), ["77", "78"], "{query}");

    // Only common words: searched together (all of them in one ticket),
    // still answered, still only the tenant's own rows.
    let query = store
        .similar_tickets_query(&acme, "printer error user")
        .await
        .unwrap()
        .expect("words to search");
    assert!(query.contains('&') || query.contains(" AND "), "{query}");
    let found = store
        .similar_tickets(&acme, "printer error user", 5)
        .await
        .unwrap();
    assert_eq!(found.len(), 5);
    for ticket in &found {
        let n: u32 = ticket
            .ticket_id
            .trim_start_matches("bulk-")
            .parse()
            .unwrap();
        assert_eq!(n % 2, 0, "{} is the other tenant's", ticket.ticket_id);
    }
}

pub(crate) async fn kb_articles_upsert_by_url_and_rank_the_title_first(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let articles = [
        article(
            "https://kb.acme.example/1",
            "Resetting VPN clients",
            "When the tunnel drops",
            "Reinstall the client.",
        ),
        article(
            "https://kb.acme.example/2",
            "Mail setup",
            "Outlook profiles",
            "A VPN is not needed for mail.",
        ),
        article(
            "https://kb.acme.example/3",
            "Printers",
            "Jams and toner",
            "Open tray 2.",
        ),
    ];
    assert_eq!(store.upsert_kb_articles(&acme, &articles).await.unwrap(), 3);
    let found = store.search_kb(&acme, "vpn", 3).await.unwrap();
    assert_eq!(found, [articles[0].clone(), articles[1].clone()]);
    assert_eq!(
        store.search_kb(&acme, "toner?", 3).await.unwrap(),
        [articles[2].clone()]
    );
    assert_eq!(store.search_kb(&acme, "... the", 3).await.unwrap(), vec![]);
    assert_eq!(
        store
            .search_kb(&acme, "\"vpn\" NEAR(", 1)
            .await
            .unwrap()
            .len(),
        1
    );

    let mut changed = articles[2].clone();
    changed.title = "Scanners".to_owned();
    changed.summary = "Scanning to e-mail".to_owned();
    changed.body = "Check SMTP.".to_owned();
    assert_eq!(
        store
            .upsert_kb_articles(&acme, &[changed.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.search_kb(&acme, "toner", 3).await.unwrap(), vec![]);
    assert_eq!(
        store.search_kb(&acme, "scanners", 3).await.unwrap(),
        [changed]
    );
    assert!(matches!(
        store
            .upsert_kb_articles(&acme, &[article("", "t", "s", "b")])
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.upsert_kb_articles(&tid("nobody"), &articles).await,
        Err(Error::NotFound(_))
    ));
}

pub(crate) async fn inventory_upserts_by_ip_and_answers_in_the_order_asked(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let systems = [
        system("10.0.0.5", "fs01"),
        system("2001:DB8:0:0::1", "gw-v6"),
        system("192.168.1.20", "printer-3"),
    ];
    assert_eq!(store.upsert_inventory(&acme, &systems).await.unwrap(), 3);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let found = store
        .systems_by_ip(
            &acme,
            &[
                ip("192.168.1.20"),
                ip("10.9.9.9"),
                ip("2001:db8::1"),
                ip("192.168.1.20"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(found, [systems[2].clone(), systems[1].clone()]);
    assert_eq!(store.systems_by_ip(&acme, &[]).await.unwrap(), vec![]);

    let mut moved = system("10.0.0.5", "fs01-new");
    moved.location = "Hamburg".to_owned();
    assert_eq!(
        store
            .upsert_inventory(&acme, &[moved.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.systems_by_ip(&acme, &[ip("10.0.0.5")]).await.unwrap(),
        [moved]
    );
    assert!(matches!(
        store.upsert_inventory(&tid("nobody"), &systems).await,
        Err(Error::NotFound(_))
    ));
}

/// Two tenants with the same tickets, articles, addresses and deliveries:
/// every read of one returns its own rows only.
pub(crate) async fn tenant_a_never_reads_tenant_b(store: &dyn Store) {
    let a = tenant(store, "tenant-a").await;
    let b = tenant(store, "tenant-b").await;
    let at = OffsetDateTime::now_utc();
    for (t, marker) in [(&a, "alpha"), (&b, "bravo")] {
        let tickets = [
            history(
                "1",
                &format!("Disk full {marker}"),
                &format!("Cleaned {marker}"),
            ),
            history("2", &format!("VPN drops {marker}"), "Updated"),
        ];
        store
            .upsert_ticket_history(t, &tickets, HistorySource::BulkImport, at)
            .await
            .unwrap();
        let articles = [article(
            "https://kb.example/disk",
            &format!("Disk {marker}"),
            "Full disks",
            "Clean up.",
        )];
        store.upsert_kb_articles(t, &articles).await.unwrap();
        store
            .upsert_inventory(t, &[system("10.0.0.5", &format!("fs-{marker}"))])
            .await
            .unwrap();
        let mut new = job(t, "1", "same-delivery");
        new.description = format!("Disk full {marker}");
        record(store, new).await;
    }
    store
        .upsert_ticket_history(
            &b,
            &[history("3", "Only in b", "b")],
            HistorySource::BulkImport,
            at,
        )
        .await
        .unwrap();

    assert_eq!(store.count_ticket_history(&a).await.unwrap(), 2);
    assert_eq!(store.count_ticket_history(&b).await.unwrap(), 3);
    assert!(
        store
            .ticket_history(&a, "1")
            .await
            .unwrap()
            .unwrap()
            .ticket
            .description
            .ends_with("alpha")
    );
    assert_eq!(store.ticket_history(&a, "3").await.unwrap(), None);
    let similar = store
        .similar_tickets(&a, "disk full vpn bravo only", 10)
        .await
        .unwrap();
    assert_eq!(ids(&similar).len(), 2);
    assert!(
        similar.iter().all(|t| t.description.ends_with("alpha")),
        "{similar:?}"
    );
    assert_eq!(
        store.similar_tickets(&a, "bravo", 10).await.unwrap(),
        vec![]
    );
    let kb = store.search_kb(&a, "disk bravo", 10).await.unwrap();
    assert_eq!(kb.len(), 1);
    assert_eq!(kb[0].title, "Disk alpha");
    let systems = store
        .systems_by_ip(&a, &["10.0.0.5".parse().unwrap()])
        .await
        .unwrap();
    assert_eq!(systems.len(), 1);
    assert_eq!(systems[0].hostname, "fs-alpha");

    let (jobs, total) = store
        .enhancements_page(&EnhancementQuery {
            tenant_id: Some(a.clone()),
            q: Some("disk".to_owned()),
            ..EnhancementQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(jobs[0].tenant_id, a);
    assert!(jobs[0].description.ends_with("alpha"));
    let (_, total) = store
        .enhancements_page(&EnhancementQuery::default())
        .await
        .unwrap();
    assert_eq!(total, 2);
}
