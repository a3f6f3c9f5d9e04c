//! Technicians' votes on posted notes: recorded on the job, the latest
//! standing, and counted per tenant over a period.

use super::tickets::tenant;
use csp_domain::FeedbackVote::{Helpful, NotHelpful};
use csp_domain::{EnhancementStatus, FeedbackVote, TenantId};
use csp_store::{
    EnhancementQuery, EnhancementRecord, NewEnhancement, Outcome, Store, TenantFeedback,
};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

async fn job(store: &dyn Store, tenant: &TenantId, ticket: &str) -> EnhancementRecord {
    store
        .record_enhancement(NewEnhancement {
            job_id: Uuid::new_v4(),
            tenant_id: tenant.clone(),
            ticket_id: ticket.to_owned(),
            delivery_key: format!("delivery-{ticket}"),
            subject: format!("Subject of {ticket}"),
            description: format!("Description of {ticket}"),
            priority: "High".to_owned(),
            correlation_id: format!("corr-{ticket}"),
        })
        .await
        .unwrap()
        .job
}

async fn vote(store: &dyn Store, job: &EnhancementRecord, vote: FeedbackVote, at: OffsetDateTime) {
    let tenant = store.record_feedback(job.job_id, vote, at).await.unwrap();
    assert_eq!(tenant.as_ref(), Some(&job.tenant_id));
}

fn counts(tenant: &TenantId, helpful: u64, not_helpful: u64) -> TenantFeedback {
    TenantFeedback {
        tenant_id: tenant.clone(),
        helpful,
        not_helpful,
    }
}

pub(crate) async fn a_vote_is_recorded_on_its_job_and_the_latest_one_stands(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let job = job(store, &acme, "100").await;
    let other = job_of_another_ticket(store, &acme).await;
    assert_eq!((job.feedback, job.feedback_at), (None, None));

    // A completed job, as the links are only on posted notes.
    let done = Outcome {
        status: Some(EnhancementStatus::Completed),
        note_id: Some("n-1".to_owned()),
        ..Outcome::default()
    };
    let t0 = datetime!(2026-03-01 09:00 UTC);
    assert!(
        store
            .finish_enhancement(job.job_id, done, t0)
            .await
            .unwrap()
    );
    let before = store.enhancement(job.job_id).await.unwrap().unwrap();

    vote(
        store,
        &job,
        Helpful,
        datetime!(2026-03-01 09:05:00.123456 UTC),
    )
    .await;
    let read = store.enhancement(job.job_id).await.unwrap().unwrap();
    assert_eq!(read.feedback, Some(Helpful));
    // Kept to the millisecond, like every time of the store.
    assert_eq!(
        read.feedback_at,
        Some(datetime!(2026-03-01 09:05:00.123 UTC))
    );
    // Nothing else of the job moved.
    let unvoted = EnhancementRecord {
        feedback: None,
        feedback_at: None,
        ..read
    };
    assert_eq!(unvoted, before);
    assert_eq!(unvoted.status, EnhancementStatus::Completed);

    // The other link, later: it replaces the vote.
    let t2 = datetime!(2026-03-01 09:06 UTC);
    vote(store, &job, NotHelpful, t2).await;
    let read = store.enhancement(job.job_id).await.unwrap().unwrap();
    assert_eq!(
        (read.feedback, read.feedback_at),
        (Some(NotHelpful), Some(t2))
    );
    // The same link again: the vote stays, its time moves.
    let t3 = datetime!(2026-03-01 09:07 UTC);
    vote(store, &job, NotHelpful, t3).await;
    let read = store.enhancement(job.job_id).await.unwrap().unwrap();
    assert_eq!(
        (read.feedback, read.feedback_at),
        (Some(NotHelpful), Some(t3))
    );

    // The history page carries the vote; the other job has none.
    let (page, _) = store
        .enhancements_page(&EnhancementQuery {
            tenant_id: Some(acme.clone()),
            ..EnhancementQuery::default()
        })
        .await
        .unwrap();
    let votes: Vec<(Uuid, Option<FeedbackVote>)> =
        page.iter().map(|j| (j.job_id, j.feedback)).collect();
    assert_eq!(
        votes,
        [(other.job_id, None), (job.job_id, Some(NotHelpful))]
    );

    // No such job: nothing is written anywhere.
    assert_eq!(
        store
            .record_feedback(Uuid::new_v4(), Helpful, t3)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.feedback_summary(None, None).await.unwrap(),
        [counts(&acme, 0, 1)]
    );
}

/// A second job of the tenant, recorded after the first (the page is newest
/// first).
async fn job_of_another_ticket(store: &dyn Store, tenant: &TenantId) -> EnhancementRecord {
    crate::helpers::next_millisecond().await;
    job(store, tenant, "101").await
}

pub(crate) async fn the_summary_counts_standing_votes_per_tenant_in_the_period(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let beta = tenant(store, "beta").await;
    let quiet = tenant(store, "quiet").await;
    assert_eq!(store.feedback_summary(None, None).await.unwrap(), []);

    let day = |d: u8| {
        datetime!(2026-03-01 12:00 UTC)
            .replace_day(d)
            .expect("a day of March")
    };
    let mut acme_jobs = Vec::new();
    for n in 0..4 {
        acme_jobs.push(job(store, &acme, &format!("a{n}")).await);
    }
    let beta_jobs = [job(store, &beta, "b0").await, job(store, &beta, "b1").await];
    let _unvoted = job(store, &quiet, "q0").await;

    vote(store, &acme_jobs[0], Helpful, day(2)).await;
    vote(store, &acme_jobs[1], Helpful, day(3)).await;
    vote(store, &acme_jobs[2], NotHelpful, day(4)).await;
    // Changed its mind: counted once, as not helpful, at its latest time.
    vote(store, &acme_jobs[3], Helpful, day(1)).await;
    vote(store, &acme_jobs[3], NotHelpful, day(10)).await;
    vote(store, &beta_jobs[0], Helpful, day(5)).await;
    vote(store, &beta_jobs[1], Helpful, day(20)).await;

    // Every vote, by tenant id; a tenant without votes is not listed.
    assert_eq!(
        store.feedback_summary(None, None).await.unwrap(),
        [counts(&acme, 2, 2), counts(&beta, 2, 0)]
    );
    // From included, to excluded.
    assert_eq!(
        store
            .feedback_summary(Some(day(3)), Some(day(10)))
            .await
            .unwrap(),
        [counts(&acme, 1, 1), counts(&beta, 1, 0)]
    );
    assert_eq!(
        store.feedback_summary(Some(day(10)), None).await.unwrap(),
        [counts(&acme, 0, 1), counts(&beta, 1, 0)]
    );
    assert_eq!(
        store.feedback_summary(None, Some(day(3))).await.unwrap(),
        [counts(&acme, 1, 0)]
    );
    // The vote of day 1 was replaced: nothing stands before day 2.
    assert_eq!(
        store.feedback_summary(None, Some(day(2))).await.unwrap(),
        []
    );
    let rates: Vec<Option<f64>> = store
        .feedback_summary(None, None)
        .await
        .unwrap()
        .iter()
        .map(TenantFeedback::helpful_rate)
        .collect();
    assert_eq!(rates, [Some(0.5), Some(1.0)]);
}
