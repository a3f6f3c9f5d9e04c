//! Technicians' votes from the "Was this helpful?" links at the end of
//! posted notes (`csp_enhance::FeedbackLinks`), which the gateway's public
//! `/feedback/…` route forwards without a login: the link's signature is
//! checked (constant time, the current and the previous `CSP_SECRET_KEY`)
//! before anything is read or written, then the vote replaces the job's
//! earlier one. And the votes per tenant for operators.

use crate::Clock;
use crate::admin::store_error;
use csp_domain::{ErrorCode, FeedbackVote};
use csp_enhance::FeedbackKey;
use csp_proto::v1 as pb;
use csp_rpc::{status, status_with_message};
use csp_secrets::Keyring;
use csp_store::Store;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tonic::Status;
use uuid::Uuid;

/// The summary's period when the request names no start.
pub(crate) const DEFAULT_PERIOD: Duration = Duration::days(30);

pub(crate) struct Feedback {
    store: Arc<dyn Store>,
    /// `None` without `CSP_SECRET_KEY`: no link can be checked.
    key: Option<FeedbackKey>,
    clock: Arc<dyn Clock>,
}

impl Feedback {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        keyring: Option<&Keyring>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            key: keyring.map(FeedbackKey::from_keyring),
            clock,
        }
    }

    /// Records a link's vote. UNAUTHENTICATED (`webhook_signature_invalid`)
    /// for a link csp did not sign — a wrong signature, or a job id or vote
    /// that no link carries — before the job is looked up; NOT_FOUND
    /// (`enhancement_not_found`) for a signed link whose job is gone;
    /// UNAVAILABLE without `CSP_SECRET_KEY`.
    pub(crate) async fn record(
        &self,
        req: pb::FeedbackRequest,
    ) -> Result<pb::FeedbackRecorded, Status> {
        let key = self.key.as_ref().ok_or_else(|| {
            tracing::warn!("a feedback link was followed, but CSP_SECRET_KEY is not set");
            status(
                ErrorCode::Unavailable,
                "feedback links cannot be checked: CSP_SECRET_KEY is not set",
            )
        })?;
        let invalid = || {
            status_with_message(
                ErrorCode::WebhookSignatureInvalid,
                "This feedback link is not valid.",
            )
        };
        // Only the forms csp signs: the hyphenated job id and a known vote.
        let job_text = req.job_id.trim().to_ascii_lowercase();
        let job_id = Uuid::try_parse(&job_text)
            .ok()
            .filter(|id| id.hyphenated().to_string() == job_text);
        let vote = req.vote.trim().parse::<FeedbackVote>().ok();
        let (Some(job_id), Some(vote)) = (job_id, vote) else {
            tracing::info!(
                operation = "feedback",
                status = "refused",
                "feedback link refused: not a link csp makes"
            );
            return Err(invalid());
        };
        if !key.verify(job_id, vote, req.signature.trim()) {
            tracing::info!(
                job.id = %job_id,
                operation = "feedback",
                status = "refused",
                "feedback link refused: wrong signature"
            );
            return Err(invalid());
        }
        let tenant = self
            .store
            .record_feedback(job_id, vote, self.clock.now())
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                tracing::info!(
                    job.id = %job_id,
                    operation = "feedback",
                    status = "not_found",
                    "feedback for a job that does not exist"
                );
                status_with_message(
                    ErrorCode::EnhancementNotFound,
                    "There is no enhancement job with this id.",
                )
            })?;
        tracing::info!(
            tenant_id = %tenant,
            job.id = %job_id,
            vote = vote.as_str(),
            operation = "feedback",
            status = "recorded",
            "feedback recorded"
        );
        Ok(pb::FeedbackRecorded {
            job_id: job_id.to_string(),
            vote: vote.as_str().to_owned(),
        })
    }

    /// Votes per tenant cast in `[from, to)`; no `from`: the last 30 days.
    pub(crate) async fn summary(
        &self,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> Result<pb::FeedbackSummaryResponse, Status> {
        let from = from.unwrap_or_else(|| self.clock.now() - DEFAULT_PERIOD);
        if to.is_some_and(|to| to <= from) {
            return Err(status_with_message(
                ErrorCode::InvalidRequest,
                "to must be later than from",
            ));
        }
        let tenants = self
            .store
            .feedback_summary(Some(from), to)
            .await
            .map_err(store_error)?;
        Ok(pb::FeedbackSummaryResponse {
            tenants: tenants
                .into_iter()
                .map(|t| pb::TenantFeedback {
                    tenant_id: t.tenant_id.to_string(),
                    helpful: t.helpful,
                    not_helpful: t.not_helpful,
                })
                .collect(),
        })
    }
}
