//! Technicians' votes on posted notes: each note ends with signed "Was this
//! helpful?" links (the tickets service checks the signature), and a click
//! records its vote on the job, replacing any earlier one. The votes are
//! read back on the job ([`EnhancementRecord`](crate::EnhancementRecord)'s
//! `feedback` and `feedback_at`) and counted per tenant for a period.
//!
//! Like the rest of `enhancement_history`'s writes (`enhancements.rs`), both
//! statements run as the platform (the owner, whose row-level security
//! policy lets it see every tenant): a vote names a job, not a tenant, and
//! the summary is across tenants. Neither reads any tenant's context.

use crate::dialect::Dialect;
use crate::error::Error;
use crate::sql::SqlStore;
use async_trait::async_trait;
use csp_domain::{FeedbackVote, TenantId};
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

/// One tenant's votes over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantFeedback {
    pub tenant_id: TenantId,
    pub helpful: u64,
    pub not_helpful: u64,
}

impl TenantFeedback {
    /// helpful / (helpful + not helpful); `None` without votes.
    pub fn helpful_rate(&self) -> Option<f64> {
        let votes = self.helpful + self.not_helpful;
        (votes > 0).then(|| self.helpful as f64 / votes as f64)
    }
}

#[async_trait]
pub trait FeedbackStore: Send + Sync {
    /// Records `vote` on the job as of `at`, replacing the job's earlier
    /// vote (the latest click stands; clicking the same link twice changes
    /// only the time). Returns the job's tenant, or `None` when there is no
    /// such job (nothing is written).
    async fn record_feedback(
        &self,
        job_id: Uuid,
        vote: FeedbackVote,
        at: OffsetDateTime,
    ) -> Result<Option<TenantId>, Error>;
    /// The votes standing on jobs, by the time they were cast: `from`
    /// included, `to` excluded, each bound optional; per tenant with at
    /// least one vote, by tenant id.
    async fn feedback_summary(
        &self,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> Result<Vec<TenantFeedback>, Error>;
}

/// A stored vote (`enhancement_history.feedback`), checked.
pub(crate) fn vote_from_db(text: Option<String>) -> Result<Option<FeedbackVote>, Error> {
    text.map(|t| {
        t.parse()
            .map_err(|e| Error::Corrupt(format!("feedback: {e}")))
    })
    .transpose()
}

#[async_trait]
impl<DB: Dialect> FeedbackStore for SqlStore<DB> {
    #[instrument(name = "store.record_feedback", skip_all, fields(job.id = %job_id, vote = vote.as_str()))]
    async fn record_feedback(
        &self,
        job_id: Uuid,
        vote: FeedbackVote,
        at: OffsetDateTime,
    ) -> Result<Option<TenantId>, Error> {
        let db = &self.db;
        let row = db
            .sql(
                "UPDATE enhancement_history SET feedback = $2, feedback_at = $3 \
                 WHERE job_id = $1 RETURNING tenant_id",
            )
            .bind_id(job_id)
            .bind(vote.as_str())
            .bind_time(at)
            .fetch_optional(db.pool())
            .await?;
        row.map(|row| {
            let tenant: String = db.columns(&row).get("tenant_id")?;
            TenantId::parse(&tenant).map_err(|e| Error::Corrupt(e.to_string()))
        })
        .transpose()
    }

    async fn feedback_summary(
        &self,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> Result<Vec<TenantFeedback>, Error> {
        let db = &self.db;
        // No start: every vote (the index on feedback_at serves the period
        // either way).
        let from = from.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let rows = db
            .sql(
                "SELECT tenant_id, feedback, count(*) AS n FROM enhancement_history \
                 WHERE feedback_at IS NOT NULL AND feedback_at >= $1 \
                 AND ($2 IS NULL OR feedback_at < $2) \
                 GROUP BY tenant_id, feedback ORDER BY tenant_id, feedback",
            )
            .bind_time(from)
            .bind(to.map(DB::time))
            .fetch_all(db.pool())
            .await?;
        let mut tenants: Vec<TenantFeedback> = Vec::new();
        for row in &rows {
            let row = db.columns(row);
            let tenant: String = row.get("tenant_id")?;
            let tenant = TenantId::parse(&tenant).map_err(|e| Error::Corrupt(e.to_string()))?;
            let Some(vote) = vote_from_db(row.get("feedback")?)? else {
                continue;
            };
            let n = row.count("n")?;
            // Rows come by tenant: a new tenant starts a new entry.
            if tenants.last().is_none_or(|t| t.tenant_id != tenant) {
                tenants.push(TenantFeedback {
                    tenant_id: tenant,
                    helpful: 0,
                    not_helpful: 0,
                });
            }
            let entry = tenants.last_mut().expect("pushed above");
            match vote {
                FeedbackVote::Helpful => entry.helpful = n,
                FeedbackVote::NotHelpful => entry.not_helpful = n,
            }
        }
        Ok(tenants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helpful_rate_is_of_the_votes_cast() {
        let t = |helpful, not_helpful| TenantFeedback {
            tenant_id: TenantId::parse("acme").unwrap(),
            helpful,
            not_helpful,
        };
        assert_eq!(t(0, 0).helpful_rate(), None);
        assert_eq!(t(3, 1).helpful_rate(), Some(0.75));
        assert_eq!(t(0, 2).helpful_rate(), Some(0.0));
    }

    #[test]
    fn stored_votes_are_checked() {
        assert_eq!(vote_from_db(None).unwrap(), None);
        assert_eq!(
            vote_from_db(Some("not_helpful".into())).unwrap(),
            Some(FeedbackVote::NotHelpful)
        );
        assert!(matches!(
            vote_from_db(Some("meh".into())),
            Err(Error::Corrupt(_))
        ));
    }
}
