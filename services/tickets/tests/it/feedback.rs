//! Technicians' feedback (issue 16 item 7): the links at the end of a
//! posted note record a vote on the job, once per click, the latest
//! standing; a link csp did not sign is refused before anything is read;
//! operators see the votes per tenant.

use crate::helpers::*;
use csp_domain::{ErrorCode, FeedbackVote};
use csp_enhance::FeedbackKey;
use csp_proto::v1 as pb;
use csp_store::test_support::Backend;
use std::time::Duration;
use uuid::Uuid;

/// The key the workers sign with: the service's `CSP_SECRET_KEY`'s.
fn key(r: &Running) -> FeedbackKey {
    FeedbackKey::from_keyring(r.shared.keyring.as_ref().unwrap())
}

fn click(job_id: &str, vote: &str, signature: &str) -> tonic::Request<pb::FeedbackRequest> {
    as_(
        &service_token(),
        pb::FeedbackRequest {
            job_id: job_id.into(),
            vote: vote.into(),
            signature: signature.into(),
        },
    )
}

async fn follow(
    r: &Running,
    job_id: &str,
    vote: &str,
    signature: &str,
) -> Result<pb::FeedbackRecorded, tonic::Status> {
    r.client()
        .record_feedback(click(job_id, vote, signature))
        .await
        .map(tonic::Response::into_inner)
}

/// A job of `tenant`, through a signed webhook.
async fn job(r: &Running, tenant: &str, secret: &str, ticket: &str) -> Uuid {
    r.new_ticket(tenant, secret, ticket)
        .await
        .unwrap()
        .job_id
        .parse()
        .unwrap()
}

async fn shown(r: &Running, job_id: Uuid) -> pb::Enhancement {
    r.client()
        .get_enhancement(as_(
            &r.operator,
            pb::GetEnhancementRequest {
                job_id: job_id.to_string(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

pub(crate) async fn feedback_links_record_a_vote_per_click_and_refuse_what_csp_did_not_sign(
    backend: Backend,
) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let job_id = job(&r, "acme", &secret, "100").await;
    let other_job = job(&r, "acme", &secret, "101").await;
    let key = key(&r);
    let (helpful, not_helpful) = (FeedbackVote::Helpful, FeedbackVote::NotHelpful);
    let sig = |job: Uuid, vote| key.sign(job, vote);
    let id = job_id.to_string();
    let none = shown(&r, job_id).await;
    assert_eq!(
        (none.feedback.as_str(), none.feedback_at.as_str()),
        ("", "")
    );

    // 👍: recorded, and shown on the job.
    let recorded = follow(&r, &id, "helpful", &sig(job_id, helpful))
        .await
        .unwrap();
    assert_eq!(
        (recorded.job_id.as_str(), recorded.vote.as_str()),
        (id.as_str(), "helpful")
    );
    let job = shown(&r, job_id).await;
    assert_eq!(job.feedback, "helpful");
    let at = time::OffsetDateTime::parse(
        &job.feedback_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((r.now() - at).abs() < time::Duration::seconds(5), "{at}");

    // Changed their mind: the other link replaces the vote.
    r.shared.clock.advance(Duration::from_secs(60));
    follow(&r, &id, "not_helpful", &sig(job_id, not_helpful))
        .await
        .unwrap();
    let job = shown(&r, job_id).await;
    assert_eq!(job.feedback, "not_helpful");
    // The same link clicked again records the same vote.
    follow(&r, &id, "not_helpful", &sig(job_id, not_helpful))
        .await
        .unwrap();
    // Upper-case hex and an upper-case job id are the same link.
    follow(
        &r,
        &id.to_ascii_uppercase(),
        "not_helpful",
        &sig(job_id, not_helpful).to_ascii_uppercase(),
    )
    .await
    .unwrap();

    // Refused, each as an invalid signature, and nothing changes.
    let mut tampered = sig(job_id, helpful);
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(63.., last);
    let refusals: [(String, &str, String); 9] = [
        (id.clone(), "helpful", tampered),
        // Another job's link.
        (id.clone(), "helpful", sig(other_job, helpful)),
        // The other vote's signature.
        (id.clone(), "helpful", sig(job_id, not_helpful)),
        // A vote no link carries.
        (id.clone(), "meh", sig(job_id, helpful)),
        (id.clone(), "Helpful", sig(job_id, helpful)),
        (id.clone(), "", sig(job_id, helpful)),
        (id.clone(), "helpful", String::new()),
        // A job id in a form csp never writes.
        (job_id.simple().to_string(), "helpful", sig(job_id, helpful)),
        ("../../etc".into(), "helpful", sig(job_id, helpful)),
    ];
    for (job, vote, signature) in &refusals {
        let e = follow(&r, job, vote, signature).await.unwrap_err();
        assert_eq!(
            code(&e),
            ErrorCode::WebhookSignatureInvalid,
            "{job} {vote} {signature}"
        );
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert_eq!(message(&e), "This feedback link is not valid.");
    }
    assert_eq!(shown(&r, job_id).await.feedback, "not_helpful");
    assert_eq!(shown(&r, other_job).await.feedback, "");

    // A link csp signed for a job that does not exist.
    let gone = Uuid::new_v4();
    let e = follow(&r, &gone.to_string(), "helpful", &sig(gone, helpful))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::EnhancementNotFound);

    // Only the gateway (a service) calls it: not a user, not an admin.
    let e = r
        .client()
        .record_feedback(as_(
            &r.admin,
            pb::FeedbackRequest {
                job_id: id.clone(),
                vote: "helpful".into(),
                signature: sig(job_id, helpful),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);

    // Signed under another CSP_SECRET_KEY: refused.
    let foreign = FeedbackKey::from_keyring(&keyring());
    let e = follow(&r, &id, "helpful", &foreign.sign(job_id, helpful))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::WebhookSignatureInvalid);
}

pub(crate) async fn the_feedback_summary_counts_each_tenants_votes_of_the_last_thirty_days(
    backend: Backend,
) {
    let r = start(backend).await;
    let acme = r.create("acme").await.webhook_secret;
    let beta = r.create("beta").await.webhook_secret;
    let key = key(&r);
    let vote = |job: Uuid, vote: FeedbackVote| {
        let signature = key.sign(job, vote);
        let r = &r;
        async move {
            follow(r, &job.to_string(), vote.as_str(), &signature)
                .await
                .unwrap();
        }
    };
    let summary = |from: &str, to: &str, token: &str| {
        let req = as_(
            token,
            pb::FeedbackSummaryRequest {
                from: from.into(),
                to: to.into(),
            },
        );
        let mut c = r.client();
        async move {
            c.feedback_summary(req)
                .await
                .map(|a| a.into_inner().tenants)
        }
    };
    let counts = |tenants: Vec<pb::TenantFeedback>| -> Vec<(String, u64, u64)> {
        tenants
            .into_iter()
            .map(|t| (t.tenant_id, t.helpful, t.not_helpful))
            .collect()
    };

    // An old vote, then 31 days pass.
    let old = job(&r, "acme", &acme, "old").await;
    vote(old, FeedbackVote::NotHelpful).await;
    r.shared.clock.advance(Duration::from_secs(31 * 24 * 3600));
    for (tenant, secret, ticket, v) in [
        ("acme", &acme, "a1", FeedbackVote::Helpful),
        ("acme", &acme, "a2", FeedbackVote::Helpful),
        ("acme", &acme, "a3", FeedbackVote::NotHelpful),
        ("beta", &beta, "b1", FeedbackVote::NotHelpful),
    ] {
        let j = job(&r, tenant, secret, ticket).await;
        vote(j, v).await;
    }
    // A job without a vote counts for nothing.
    job(&r, "beta", &beta, "b2").await;

    // The last 30 days by default: the old vote is out.
    let got = summary("", "", &r.operator).await.unwrap();
    assert_eq!(counts(got), [("acme".into(), 2, 1), ("beta".into(), 0, 1)]);
    // From a given moment, the old vote is in.
    let got = summary("2000-01-01T00:00:00Z", "", &r.operator)
        .await
        .unwrap();
    assert_eq!(counts(got), [("acme".into(), 2, 2), ("beta".into(), 0, 1)]);
    // A period that ends before the recent votes.
    let before = (r.now() - time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let got = summary("2000-01-01T00:00:00Z", &before, &r.operator)
        .await
        .unwrap();
    assert_eq!(counts(got), [("acme".into(), 0, 1)]);

    // Bad bounds name the field; a plain user is refused.
    let e = summary("yesterday", "", &r.operator).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    assert!(message(&e).starts_with("from must be"), "{}", message(&e));
    let e = summary("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", &r.operator)
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    let e = summary("", "", &r.user).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
}

pub(crate) async fn without_a_secret_key_feedback_links_are_unavailable(backend: Backend) {
    let shared = Shared {
        keyring: None,
        ..Shared::new(backend).await
    };
    let r = start_on(shared, Options::default()).await;
    let signer = FeedbackKey::from_keyring(&keyring());
    let job = Uuid::new_v4();
    let e = follow(
        &r,
        &job.to_string(),
        "helpful",
        &signer.sign(job, FeedbackVote::Helpful),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), ErrorCode::Unavailable);
}
