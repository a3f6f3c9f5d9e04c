//! The tickets worker against the fake ServiceDesk Plus and the mock model,
//! on the in-process queue, each case on Postgres and on SQLite.

mod feedback;
mod helpers;
mod operations;
mod queues;

use std::time::Duration;

use csp_bus::{DeadLetter, Queue};
use csp_domain::EnhancementStatus;
use csp_mock_llm::Behaviour;
use csp_mock_ticketing::NoteFault;
use csp_store::test_support::Backend;
use csp_ticketing::servicedesk::{SdpAuth, SdpClient};
use csp_ticketing::{JobMarker, NoteFormat};
use feedback::*;
use futures::StreamExt;
use helpers::{Claimed, Harness, SDP_KEY, wait_until};
use operations::*;
use queues::*;

csp_store::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_job_becomes_one_note_citing_its_context,
    a_cleared_jobs_message_is_dropped_without_work,
    a_tenants_worker_takes_only_its_tenants_jobs,
    a_shared_worker_hands_a_dedicated_tenants_job_on,
    a_retried_job_completes_on_its_next_delivery,
    the_model_down_gives_the_fallback_note_and_a_completed_job,
    over_budget_no_model_call_is_made,
    without_a_model_the_note_says_so,
    servicedesk_failing_every_post_fails_the_job_after_three_deliveries,
    a_4xx_from_servicedesk_fails_the_job_at_once,
    an_inactive_tenant_fails_its_job,
    a_redelivered_completed_job_posts_no_second_note,
    two_deliveries_of_one_job_at_once_post_one_note,
    a_job_whose_holder_died_is_taken_after_its_lease,
    a_note_posted_before_a_crash_is_not_posted_again,
    a_paused_worker_takes_no_job_until_resumed,
    one_tenants_burst_does_not_starve_another,
    a_job_whose_worker_died_on_its_last_delivery_ends_failed,
    a_dead_letter_fails_only_a_job_not_final_yet,
    a_dead_letter_of_an_earlier_round_leaves_a_retried_job,
    a_tool_without_a_connector_fails_the_job_at_once,
    settings_the_connector_refuses_fail_the_job_at_once,
    a_posted_note_ends_with_signed_feedback_links,
    without_a_public_url_notes_carry_no_feedback_links,
);

async fn a_job_becomes_one_note_citing_its_context(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(h.config());
    let acme = h.tenant("acme", Some(1_000_000)).await;
    let job = h.job(&acme).await;
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed, "{record:?}");
    assert_eq!(record.attempts, 1);
    assert_eq!(record.error_message, None);

    let notes = h.notes_for(&record);
    assert_eq!(notes.len(), 1, "one note");
    let note = &notes[0];
    for cited in ["TKT-4711", "Printer spooler recovery guide", "prn-floor2"] {
        assert!(note.contains(cited), "the note cites {cited}: {note}");
    }
    assert!(note.contains(&format!("csp-job:{}", job.job_id)), "{note}");
    assert!(record.note_id.as_deref().is_some_and(|id| !id.is_empty()));
    assert!(
        record
            .llm_output
            .as_deref()
            .is_some_and(|o| o.contains("## Similar Tickets"))
    );

    assert!(
        record.input_tokens > 0 && record.output_tokens > 0,
        "{record:?}"
    );
    assert!(record.cost_micros > 0, "{record:?}");
    let month = time::OffsetDateTime::now_utc();
    let month = format!("{:04}-{:02}", month.year(), u8::from(month.month()));
    assert_eq!(
        h.store.tenant_spend(&acme, &month).await.unwrap(),
        record.cost_micros,
        "the cost is charged to the tenant"
    );

    let context = record.context_gathered.expect("context stored");
    assert_eq!(context["similar_tickets"][0]["ticket_id"], "TKT-4711");
    assert_eq!(context["systems"][0]["hostname"], "prn-floor2.acme.local");
    for source in ["ticket_history", "kb", "ip_inventory"] {
        assert!(
            context["sources"][source]["elapsed_ms"].is_u64(),
            "{context}"
        );
    }
    // The model got the seed's prompt with the context.
    let call = h
        .llm
        .log()
        .into_iter()
        .find(|e| e.path == "/v1/messages")
        .unwrap();
    let system = call.body["system"].as_str().unwrap();
    assert!(system.contains(csp_enhance::SYSTEM_PROMPT_FIRST_LINE));
    assert!(call.body.to_string().contains("TKT-4711"));
    h.stop().await;
}

async fn the_model_down_gives_the_fallback_note_and_a_completed_job(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.llm.set_default(Some(Behaviour::http_error(500)));
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed, "{record:?}");
    let reason = record.error_message.clone().unwrap();
    assert!(reason.starts_with("synthesis skipped:"), "{reason}");
    assert!(reason.contains("500"), "{reason}");
    assert_eq!(record.cost_micros, 0);
    let notes = h.notes_for(&record);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("Automatic analysis unavailable"),
        "{}",
        notes[0]
    );
    assert!(notes[0].contains("TKT-4711"), "{}", notes[0]);
    h.stop().await;
}

async fn over_budget_no_model_call_is_made(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(h.config());
    let acme = h.tenant("acme", Some(0)).await;
    let job = h.job(&acme).await;
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed, "{record:?}");
    assert_eq!(
        record.error_message.as_deref(),
        Some("synthesis skipped: the tenant's model budget is spent")
    );
    assert_eq!(h.model_calls(), 0, "the mock model's log shows no call");
    let notes = h.notes_for(&record);
    assert!(notes[0].contains("model budget reached"), "{}", notes[0]);
    h.stop().await;
}

async fn without_a_model_the_note_says_so(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let config = csp_tickets_worker::Config {
        provider: None,
        ..h.config()
    };
    h.start(config);
    let acme = h.tenant("acme", None).await;
    let record = h.finished(&h.job(&acme).await).await;
    assert_eq!(record.status, EnhancementStatus::Completed);
    assert_eq!(
        record.error_message.as_deref(),
        Some("synthesis skipped: no model is configured")
    );
    h.stop().await;
}

async fn servicedesk_failing_every_post_fails_the_job_after_three_deliveries(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.sdp
        .mock()
        .fail_next_note_posts(1000, NoteFault::Status { status: 500 });
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Failed, "{record:?}");
    assert_eq!(record.attempts, 3);
    let error = record.error_message.clone().unwrap();
    assert!(
        error.contains("ServiceDesk Plus") && error.contains("500"),
        "{error}"
    );
    // 3 deliveries × 3 tries inside the client.
    assert_eq!(h.sdp.mock().note_posts(), 9);
    assert!(h.notes_for(&record).is_empty());
    // The context of the last attempt is kept.
    assert!(record.context_gathered.is_some());

    let letter = h.dead_letter().await;
    assert_eq!(letter.attempts, 3);
    assert!(letter.last_error.contains("500"), "{}", letter.last_error);
    assert_eq!(letter.id, job.job_id.to_string());
    h.stop().await;
}

async fn a_4xx_from_servicedesk_fails_the_job_at_once(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.sdp
        .mock()
        .fail_next_note_posts(1000, NoteFault::Status { status: 400 });
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    let record = h.finished(&h.job(&acme).await).await;
    assert_eq!(record.status, EnhancementStatus::Failed);
    assert_eq!(record.attempts, 1);
    assert_eq!(h.sdp.mock().note_posts(), 1, "a 4xx is not retried");
    assert!(h.dead_letter().await.last_error.contains("400"));
    h.stop().await;
}

async fn an_inactive_tenant_fails_its_job(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    h.store
        .update_tenant(
            &acme,
            csp_store::TenantUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let record = h.finished(&h.job(&acme).await).await;
    assert_eq!(record.status, EnhancementStatus::Failed);
    assert_eq!(record.error_message.as_deref(), Some("tenant inactive"));
    assert_eq!(h.sdp.mock().note_posts(), 0);
    h.stop().await;
}

async fn a_redelivered_completed_job_posts_no_second_note(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    let first = h.finished(&job).await;
    assert_eq!(first.status, EnhancementStatus::Completed);
    // The sweeper (or a lost ack) queues it again under another message id.
    h.push(&job, &format!("{}-again", job.job_id)).await;
    wait_until(Duration::from_secs(10), || {
        h.watched.starts(job.job_id) == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.notes_for(&first).len(), 1);
    assert_eq!(h.model_calls(), 1, "nothing is done again");
    assert_eq!(h.record(&job).await, first, "the record is unchanged");
    h.stop().await;
}

/// Two workers receive the same job at once (a duplicate message: the
/// sweeper's push after the broker's duplicate window, a lost ack): the
/// second finds the job held by the first's attempt, is deferred rather
/// than dropped, and once the first has ended the job finds it final.
async fn two_deliveries_of_one_job_at_once_post_one_note(backend: Backend) {
    let mut h = Harness::new(backend).await;
    // The model answers after 2 s: the first attempt still runs when the
    // second delivery arrives.
    h.llm
        .set_default(Some(csp_mock_llm::Behaviour::Hang(csp_mock_llm::Hang {
            first_byte_delay_ms: 2_000,
            ..csp_mock_llm::Hang::default()
        })));
    // One job at a time each: the worker busy with the first delivery
    // pulls nothing more, so the other one takes the second.
    let config = csp_tickets_worker::Config {
        concurrency: 1,
        attempt_timeout: Duration::from_secs(20),
        lease_margin: Duration::from_secs(1),
        ..h.config()
    };
    h.start(config.clone());
    h.start_another(config);
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    wait_until(Duration::from_secs(10), || {
        h.watched.claims(job.job_id) == [Claimed::Started]
    })
    .await;
    h.push(&job, &format!("{}-duplicate", job.job_id)).await;

    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed, "{record:?}");
    // Until the second delivery is settled: it came back after its
    // deferral and found the job final.
    wait_until(Duration::from_secs(20), || {
        let claims = h.watched.claims(job.job_id);
        claims.len() >= 2 && claims.last() != Some(&Claimed::Held)
    })
    .await;
    let claims = h.watched.claims(job.job_id);
    assert_eq!(claims.last(), Some(&Claimed::Final), "{claims:?}");
    let held = &claims[1..claims.len() - 1];
    assert_eq!(claims[0], Claimed::Started, "{claims:?}");
    assert!(
        !held.is_empty() && held.iter().all(|c| *c == Claimed::Held),
        "the second delivery is deferred while the first holds the job: {claims:?}"
    );
    assert_eq!(record.attempts, 1, "one attempt");
    assert_eq!(h.model_calls(), 1, "one attempt called the model");
    assert_eq!(h.sdp.mock().note_posts(), 1, "one note posted");
    assert_eq!(h.notes_for(&record).len(), 1);
    h.stop().await;
}

/// A worker claimed the job and died: the job's message comes back while
/// the dead worker's lease still runs, is deferred, and takes the job once
/// the lease has run out.
async fn a_job_whose_holder_died_is_taken_after_its_lease(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let config = csp_tickets_worker::Config {
        attempt_timeout: Duration::from_secs(2),
        lease_margin: Duration::from_millis(500),
        ..h.config()
    };
    let lease = config.lease();
    let acme = h.tenant("acme", None).await;
    let job = h.recorded_job(&acme).await;
    let died = h
        .store
        .start_attempt(job.job_id, time::OffsetDateTime::now_utc(), lease)
        .await
        .unwrap()
        .started()
        .expect("the dead worker's claim");
    h.start(config);
    h.push(&job, &job.job_id.to_string()).await;

    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed, "{record:?}");
    assert_eq!(record.attempts, 2, "the dead worker's and this one");
    let claims = h.watched.claims(job.job_id);
    assert_eq!(claims.last(), Some(&Claimed::Started), "{claims:?}");
    assert!(
        claims.len() >= 2
            && claims[..claims.len() - 1]
                .iter()
                .all(|c| *c == Claimed::Held),
        "deferred while the lease ran, not dropped: {claims:?}"
    );
    let holder_since = died.started_at.unwrap();
    assert!(
        record.started_at.unwrap() >= holder_since + lease,
        "taken only after the lease: {record:?}"
    );
    assert_eq!(h.notes_for(&record).len(), 1);
    h.stop().await;
}

async fn a_note_posted_before_a_crash_is_not_posted_again(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    // A worker posted the job's note, then died before finishing the job.
    let ticket = h.record(&job).await.ticket_id;
    let client = SdpClient::new(
        csp_http::HttpClient::new().unwrap(),
        &h.sdp.base_url(),
        SdpAuth::AuthToken(SDP_KEY.into()),
    )
    .unwrap();
    let posted = client
        .post_note_once(
            &ticket,
            &JobMarker::new(&job.job_id.to_string()).unwrap(),
            "<p>the first worker's note</p>",
            NoteFormat::Html,
        )
        .await
        .unwrap();
    h.start(h.config());
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed);
    let notes = h.notes_for(&record);
    assert_eq!(notes.len(), 1, "still one note: {notes:?}");
    assert_eq!(record.note_id.as_deref(), Some(posted.note_id.0.as_str()));
    h.stop().await;
}

async fn a_paused_worker_takes_no_job_until_resumed(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.store.set_processing_paused(true).await.unwrap();
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.record(&job).await.status, EnhancementStatus::Pending);
    assert!(!h.watched.any_started(), "no attempt started");

    h.store.set_processing_paused(false).await.unwrap();
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Completed);
    assert_eq!(record.attempts, 1, "the pause spent no attempt");

    // Paused again while running: the next job waits.
    h.store.set_processing_paused(true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = h.job(&acme).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.record(&second).await.status, EnhancementStatus::Pending);
    h.store.set_processing_paused(false).await.unwrap();
    assert_eq!(h.finished(&second).await.attempts, 1);
    h.stop().await;
}

async fn one_tenants_burst_does_not_starve_another(backend: Backend) {
    const FLOOD: usize = 200;
    // Tenant A's jobs that may end before B's: those running when B's job
    // is reached (A's cap, 2) and a few more while B's runs. With the cap
    // lifted (`tenant_inflight` 100) all four slots work through A's jobs in
    // queue order and B's ends after about 196 of them, failing this.
    const BOUND: usize = 12;
    let mut h = Harness::new(backend).await;
    let flood = h.tenant("flood", None).await;
    let other = h.tenant("other", None).await;
    let mut flood_jobs = Vec::new();
    for _ in 0..FLOOD {
        flood_jobs.push(h.job(&flood).await);
    }
    let single = h.job(&other).await;
    h.start(h.config());
    let record = h.finished(&single).await;
    assert_eq!(record.status, EnhancementStatus::Completed);
    for job in &flood_jobs {
        let record = h.finished(job).await;
        assert_eq!(record.status, EnhancementStatus::Completed);
        assert_eq!(record.attempts, 1, "a deferral spends no attempt");
    }
    let finished = h.watched.finished();
    assert_eq!(finished.len(), FLOOD + 1);
    let before = finished.iter().position(|id| *id == single.job_id).unwrap();
    println!(
        "fairness ({backend:?}): tenant B's job completed after {before} of tenant A's {FLOOD} queued before it"
    );
    assert!(
        before <= BOUND,
        "tenant B's job completed after {before} of the flood's {FLOOD} jobs (bound {BOUND})"
    );
    h.stop().await;
}

async fn a_job_whose_worker_died_on_its_last_delivery_ends_failed(backend: Backend) {
    let mut h = Harness::with_ack_wait(backend, Duration::from_millis(200)).await;
    let acme = h.tenant("acme", None).await;
    let job = h.job(&acme).await;
    // Three workers in turn took the job, started its attempt and died
    // before settling the delivery.
    let mut deliveries = h
        .queue
        .pull(csp_domain::ENHANCE_TOPIC, csp_domain::ENHANCE_GROUP)
        .await
        .unwrap();
    for attempt in 1..=3 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
            .await
            .expect("delivered again after the ack deadline")
            .unwrap()
            .unwrap();
        assert_eq!(delivery.attempt(), attempt);
        // Each after the last one's lease, as the store allows.
        let lease = h.config().lease();
        let at = time::OffsetDateTime::now_utc() - lease * (4 - attempt as u32);
        h.store
            .start_attempt(job.job_id, at, lease)
            .await
            .unwrap()
            .started()
            .expect("the lease before it has run out");
        drop(delivery);
    }
    drop(deliveries);
    assert_eq!(h.record(&job).await.status, EnhancementStatus::Processing);

    // The next worker gets its fourth delivery: over max_attempts (3), the
    // loop dead-letters it without a handler, and the dead letters'
    // consumer fails the job.
    h.start(h.config());
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Failed, "{record:?}");
    assert_eq!(record.attempts, 3, "no fourth attempt");
    let reason = record.error_message.unwrap();
    assert!(
        reason.starts_with("worker stopped during the last attempt"),
        "{reason}"
    );
    assert_eq!(
        h.watched.starts(job.job_id),
        0,
        "the worker never started it"
    );
    assert_eq!(h.sdp.mock().note_posts(), 0);
    let letter = h.dead_letter().await;
    assert_eq!((letter.id, letter.attempts), (job.job_id.to_string(), 4));
    h.stop().await;
}

async fn a_dead_letter_fails_only_a_job_not_final_yet(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    let done = h.job(&acme).await;
    let completed = h.finished(&done).await;
    assert_eq!(completed.status, EnhancementStatus::Completed);
    let pending = h.recorded_job(&acme).await;
    let letter = |job: &csp_domain::EnhanceJob, last_error: &str| DeadLetter {
        id: job.job_id.to_string(),
        topic: csp_domain::ENHANCE_TOPIC.into(),
        group: csp_domain::ENHANCE_GROUP.into(),
        payload: serde_json::to_vec(job).unwrap().into(),
        attempts: 3,
        last_error: last_error.into(),
        dead_at_ms: 1,
    };
    // One at a time, in order: once the second is recorded, the first was
    // read.
    h.push_dead_letter(&letter(&done, "late letter")).await;
    h.push_dead_letter(&letter(&pending, "the store was down"))
        .await;
    let failed = h.finished(&pending).await;
    assert_eq!(failed.status, EnhancementStatus::Failed);
    assert_eq!(failed.error_message.as_deref(), Some("the store was down"));
    assert_eq!(
        h.record(&done).await,
        completed,
        "a final job is kept as it is"
    );
    // Read twice (the queue redelivers): nothing changes.
    let again = DeadLetter {
        id: format!("{}-again", pending.job_id),
        ..letter(&pending, "another error")
    };
    h.push_dead_letter(&again).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.record(&pending).await, failed);
    h.stop().await;
}

/// An operator retried a failed job before the dead letter of its first
/// round was read: the letter must not fail the retried round (it did, now
/// and then, in `a_retried_job_completes_on_its_next_delivery`).
async fn a_dead_letter_of_an_earlier_round_leaves_a_retried_job(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(h.config());
    let acme = h.tenant("acme", None).await;
    let job = h.recorded_job(&acme).await;
    let failed = csp_store::Outcome {
        status: Some(EnhancementStatus::Failed),
        error_message: Some("first round".into()),
        ..csp_store::Outcome::default()
    };
    assert!(
        h.store
            .finish_enhancement(job.job_id, failed, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    let retried_at = time::OffsetDateTime::now_utc();
    let retried = h
        .store
        .retry_enhancement(job.job_id, retried_at)
        .await
        .unwrap()
        .expect("a failed job is retried");
    let ms = |t: time::OffsetDateTime| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap();
    let letter = |id: &str, dead_at_ms: u64, last_error: &str| DeadLetter {
        id: id.into(),
        topic: csp_domain::ENHANCE_TOPIC.into(),
        group: csp_domain::ENHANCE_GROUP.into(),
        payload: serde_json::to_vec(&job).unwrap().into(),
        attempts: 3,
        last_error: last_error.into(),
        dead_at_ms,
    };
    // The first round's letter, written a minute before the retry.
    h.push_dead_letter(&letter(
        &job.job_id.to_string(),
        ms(retried_at) - 60_000,
        "first round's letter",
    ))
    .await;
    // One at a time, in order: once a later job's letter is recorded, the
    // first letter was read.
    let sentinel = h.recorded_job(&acme).await;
    h.push_dead_letter(&DeadLetter {
        payload: serde_json::to_vec(&sentinel).unwrap().into(),
        ..letter(&sentinel.job_id.to_string(), ms(retried_at), "sentinel")
    })
    .await;
    assert_eq!(
        h.finished(&sentinel).await.status,
        EnhancementStatus::Failed
    );
    assert_eq!(
        h.record(&job).await,
        retried,
        "the retried round is left alone"
    );
    // The retried round's own letter fails it.
    h.push_dead_letter(&letter(
        &format!("{}:retry:1", job.job_id),
        ms(retried_at) + 1_000,
        "retried round's letter",
    ))
    .await;
    let ended = h.finished(&job).await;
    assert_eq!(ended.status, EnhancementStatus::Failed);
    assert_eq!(
        ended.error_message.as_deref(),
        Some("retried round's letter")
    );
    h.stop().await;
}

async fn a_tool_without_a_connector_fails_the_job_at_once(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(h.config());
    let tenant = h
        .tool_tenant(
            "legacy",
            "freshservice",
            serde_json::json!({ "servicedesk_url": h.sdp.base_url() }),
            &[("api_key", SDP_KEY)],
            None,
        )
        .await;
    let job = h.job(&tenant).await;
    let record = h.finished(&job).await;
    assert_eq!(record.status, EnhancementStatus::Failed, "{record:?}");
    assert_eq!(record.attempts, 1, "nothing later can fix it");
    assert_eq!(
        record.error_message.as_deref(),
        Some("Unknown tool_type 'freshservice'. Supported: servicedesk_plus, jira, zendesk.")
    );
    assert_eq!(h.model_calls(), 0);
    assert_eq!(h.sdp.mock().note_posts(), 0);
    assert!(h.dead_letter().await.last_error.contains("freshservice"));
    h.stop().await;
}

async fn settings_the_connector_refuses_fail_the_job_at_once(backend: Backend) {
    let mut h = Harness::new(backend).await;
    h.start(h.config());
    // The key is stored under another name than the tool's field.
    let misnamed = h
        .tool_tenant(
            "misnamed",
            "servicedesk_plus",
            serde_json::json!({ "servicedesk_url": h.sdp.base_url() }),
            &[("webhook_secret", SDP_KEY)],
            None,
        )
        .await;
    // Settings of another tool's fields only.
    let foreign = h
        .tool_tenant(
            "foreign",
            "servicedesk_plus",
            serde_json::json!({ "jira_url": h.sdp.base_url() }),
            &[("api_key", SDP_KEY)],
            None,
        )
        .await;
    for (tenant, field) in [(misnamed, "api_key"), (foreign, "servicedesk_url")] {
        let record = h.finished(&h.job(&tenant).await).await;
        assert_eq!(record.status, EnhancementStatus::Failed, "{record:?}");
        assert_eq!(record.attempts, 1, "{tenant}: not retried");
        let error = record.error_message.unwrap();
        assert!(
            error.starts_with("invalid ServiceDesk Plus settings:") && error.contains(field),
            "{tenant}: {error}"
        );
        assert!(!error.contains(SDP_KEY), "{error}");
    }
    assert_eq!(h.sdp.mock().note_posts(), 0);
    h.stop().await;
}

/// The running worker's heartbeat: in the shared cache from the start,
/// counting the job it completed, and gone once it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_heartbeats_and_leaves_when_stopped() {
    use csp_cache::Cache as _;
    let mut h = Harness::new(Backend::Sqlite).await;
    h.start(csp_tickets_worker::Config {
        heartbeat_every: Duration::from_millis(50),
        ..h.config()
    });
    let cache = h.cache.clone();
    let heartbeats = || async {
        cache
            .values_by_prefix(csp_domain::WORKER_HEARTBEAT_PREFIX)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, json)| serde_json::from_str::<csp_domain::WorkerHeartbeat>(&json).unwrap())
            .collect::<Vec<_>>()
    };
    let acme = h.tenant("acme", Some(1_000_000)).await;
    let job = h.job(&acme).await;
    assert_eq!(h.finished(&job).await.status, EnhancementStatus::Completed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let beat = loop {
        let beats = heartbeats().await;
        assert!(beats.len() <= 1, "{beats:?}");
        if let Some(beat) = beats.into_iter().find(|b| b.completed_jobs == 1) {
            break beat;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat counted the job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((beat.failed_jobs, beat.jobs_per_minute), (0, 1.0));
    assert_eq!(beat.interval_ms, 50);
    assert!(!beat.hostname.is_empty());
    h.stop().await;
    assert!(
        heartbeats().await.is_empty(),
        "a stopped worker leaves the list"
    );
}

/// An admin's restart: the worker reads its command at its next
/// heartbeat, says `draining`, takes no new job, lets what runs settle,
/// leaves the list and ends with `Exit::Restart` (its supervisor starts it
/// again). The jobs it ended carry its id, for its throughput.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_command_drains_the_worker_which_ends_for_a_restart() {
    use csp_cache::Cache as _;
    let mut h = Harness::new(Backend::Sqlite).await;
    h.start(csp_tickets_worker::Config {
        heartbeat_every: Duration::from_millis(50),
        ..h.config()
    });
    let acme = h.tenant("acme", Some(1_000_000)).await;
    let done = h.job(&acme).await;
    assert_eq!(h.finished(&done).await.status, EnhancementStatus::Completed);
    let cache = h.cache.clone();
    let beats = || async {
        cache
            .values_by_prefix(csp_domain::WORKER_HEARTBEAT_PREFIX)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, json)| serde_json::from_str::<csp_domain::WorkerHeartbeat>(&json).unwrap())
            .collect::<Vec<_>>()
    };
    let worker_id = beats().await[0].worker_id;
    cache
        .put(
            &csp_domain::worker_drain_key(worker_id),
            "{}",
            csp_domain::WORKER_DRAIN_TTL,
        )
        .await
        .unwrap();
    assert_eq!(h.ended().await, csp_tickets_worker::Exit::Restart);
    assert!(beats().await.is_empty(), "a drained worker leaves the list");
    // The job it ended counts in its throughput, and no other worker's.
    let hour = Duration::from_secs(3600);
    let from = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let throughput = |id| {
        let store = h.store.shared();
        async move { store.worker_throughput(id, from, hour, 2).await.unwrap() }
    };
    let ended: u64 = throughput(worker_id)
        .await
        .iter()
        .map(|s| s.completed)
        .sum();
    assert_eq!(ended, 1);
    let theirs: u64 = throughput(uuid::Uuid::new_v4())
        .await
        .iter()
        .map(|s| s.completed)
        .sum();
    assert_eq!(theirs, 0);
}
