//! Enhancement jobs: one row per accepted new-ticket webhook, from
//! `pending` to `completed` or `failed`, with what the worker gathered,
//! what the model wrote and what it cost. The row is the source of truth;
//! the queue only carries its id.

use crate::budgets::check_micros;
use crate::dialect::{Dialect, On};
use crate::error::Error;
use crate::sql::{Columns, SqlStore, count_from_db, on};
use crate::tenants::unknown_tenant;
use crate::timestamp;
use async_trait::async_trait;
use csp_domain::{EnhancementStatus, FeedbackVote, TenantId};
use sqlx::QueryBuilder;
use sqlx::error::ErrorKind;
use sqlx::types::Json;
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

/// Rows per history page when the query asks for none, and the most it may
/// ask for.
const DEFAULT_PER_PAGE: u32 = 50;
const MAX_PER_PAGE: u32 = 500;

/// Ids per statement of [`EnhancementStore::mark_queued_many`]: each is a
/// placeholder of its own, and this stays far below what either database
/// takes in one statement (SQLite 32,766, Postgres 65,535). The tickets
/// service's batches are smaller (256), so one batch is one statement.
const MARK_QUEUED_CHUNK: usize = 500;

/// A job to record for an accepted webhook.
#[derive(Debug, Clone)]
pub struct NewEnhancement {
    pub job_id: Uuid,
    pub tenant_id: TenantId,
    pub ticket_id: String,
    /// Identifies the delivery (the signature's hex): a repeated delivery
    /// finds the first job instead of recording a second.
    pub delivery_key: String,
    pub subject: String,
    pub description: String,
    pub priority: String,
    pub correlation_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnhancementRecord {
    pub job_id: Uuid,
    pub tenant_id: TenantId,
    pub ticket_id: String,
    pub subject: String,
    pub description: String,
    pub priority: String,
    pub status: EnhancementStatus,
    /// Attempts started (a worker took the job).
    pub attempts: u32,
    /// JSON: gathered context, per-source timings and errors.
    pub context_gathered: Option<serde_json::Value>,
    pub llm_output: Option<String>,
    pub error_message: Option<String>,
    pub processing_time_ms: Option<i64>,
    pub cost_micros: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub note_id: Option<String>,
    pub correlation_id: String,
    /// When the job was last put on the queue; `None` until it was.
    pub queued_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
    /// A technician's latest vote on the posted note, and when it was cast
    /// (`feedback.rs`); `None` until someone votes.
    pub feedback: Option<FeedbackVote>,
    pub feedback_at: Option<OffsetDateTime>,
}

/// What [`EnhancementStore::record_enhancement`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub job: EnhancementRecord,
    /// False for a repeated delivery: `job` is the first delivery's.
    pub created: bool,
}

/// What [`EnhancementStore::start_attempt`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The caller holds the job: its attempt started (the record as it now
    /// is: `processing`, attempts counted, `started_at` the claim's `at`).
    /// (Boxed: a record is large, the other answers are small.)
    Started(Box<EnhancementRecord>),
    /// Another attempt holds the job, since `since` (its `started_at`); its
    /// lease ends at `since + lease`, and only then may another claim it.
    Held { since: OffsetDateTime },
    /// Completed, failed or unknown: nothing is left to do.
    Final,
}

impl Claim {
    /// The started attempt's record; `None` when the job was held or final.
    pub fn started(self) -> Option<EnhancementRecord> {
        match self {
            Self::Started(record) => Some(*record),
            Self::Held { .. } | Self::Final => None,
        }
    }
}

/// Tries of [`EnhancementStore::start_attempt`]'s claim when its job changed
/// between the claim and the look that explains a refusal (an operator's
/// retry made a failed job pending in between): the claim is decided again.
const CLAIM_TRIES: u32 = 3;

/// How an attempt ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// `Completed` or `Failed`; anything else is [`Error::InvalidInput`].
    pub status: Option<EnhancementStatus>,
    pub context_gathered: Option<serde_json::Value>,
    pub llm_output: Option<String>,
    pub error_message: Option<String>,
    pub processing_time_ms: Option<i64>,
    pub cost_micros: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub note_id: Option<String>,
    /// The tickets worker that ended the job (its heartbeat's id), for its
    /// throughput; `None` when no worker did (a dead letter's record).
    pub worker_id: Option<Uuid>,
    /// Ends the job only if it was queued no later than this: a dead
    /// letter's guard, since a job retried after its letter was written is
    /// in a later round that the letter must not end. Checked in the same
    /// statement, so a retry cannot slip in between. `None`: no such check.
    pub queued_no_later_than: Option<OffsetDateTime>,
    /// Ends the job only while this attempt (the `attempts` its claim
    /// returned) still holds it: an attempt that outlived its lease, whose
    /// job another attempt has claimed since, must not end that attempt's
    /// job. Checked in the same statement. `None`: no such check (a dead
    /// letter's record, which ends whatever round it belongs to).
    pub attempt: Option<u32>,
}

/// A page of history: newest first (created_at, then job id), 50 a page.
#[derive(Debug, Clone, Default)]
pub struct EnhancementQuery {
    pub tenant_id: Option<TenantId>,
    pub status: Option<EnhancementStatus>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Matches the ticket id exactly or a substring of the description
    /// (case-insensitive), never as a pattern.
    pub q: Option<String>,
    /// From 1 (0 reads as 1).
    pub page: u32,
    /// 0: 50; at most 500.
    pub per_page: u32,
}

#[async_trait]
pub trait EnhancementStore: Send + Sync {
    /// Records the job as `pending`, idempotent on (tenant, delivery_key):
    /// a repeated delivery returns the first job with `created: false`.
    /// [`Error::NotFound`] for an unknown tenant, [`Error::Conflict`] for a
    /// job id taken by another delivery.
    async fn record_enhancement(&self, new: NewEnhancement) -> Result<Recorded, Error>;
    /// Notes that these jobs are on the queue as of `at`: sets `queued_at`
    /// on those that exist, in one statement (per 500 ids), and ignores
    /// unknown ids. Returns how many jobs it changed; an empty slice is
    /// `Ok(0)` without a statement.
    async fn mark_queued_many(&self, job_ids: &[Uuid], at: OffsetDateTime) -> Result<u64, Error>;
    /// Jobs created before `created_before` whose message may be lost: pending
    /// and never queued, or queued before `queued_before` and still pending,
    /// or processing since before `queued_before` (its worker, or the
    /// in-process queue holding its message, died) and not queued since. The
    /// sweeper queues them (again); the job row decides what a delivery does,
    /// so a message pushed twice is harmless. Oldest first.
    async fn unqueued_enhancements(
        &self,
        created_before: OffsetDateTime,
        queued_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<EnhancementRecord>, Error>;
    /// Claims the job for an attempt, exclusively: a `pending` job, or a
    /// `processing` one whose attempt's lease has run out (it started at or
    /// before `at - lease`: its worker died or overran), becomes
    /// `processing` with attempts + 1 and `started_at = at`
    /// ([`Claim::Started`]); a `processing` job whose lease still runs is
    /// left to its holder ([`Claim::Held`]); a final or unknown job is
    /// [`Claim::Final`]. The decision is one `UPDATE`, so of two claims at
    /// once exactly one starts. `lease` is the holder's whole budget: its
    /// attempt's time limit and a margin for ending it and for the clocks of
    /// the workers that pass `at`.
    async fn start_attempt(
        &self,
        job_id: Uuid,
        at: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<Claim, Error>;
    /// Gives the job back after attempt `attempt` (the `attempts` its claim
    /// returned) failed and its delivery will be retried: `pending` again,
    /// its attempts kept, so the retry claims it at once instead of waiting
    /// out the lease. Only while that attempt still holds it (`processing`
    /// with those attempts); false otherwise, or for an unknown job.
    async fn release_attempt(&self, job_id: Uuid, attempt: u32) -> Result<bool, Error>;
    /// Ends the job (completed or failed), only if it is not final yet (and,
    /// with [`Outcome::queued_no_later_than`], not queued since, and with
    /// [`Outcome::attempt`], not claimed by a later attempt); false when it
    /// was (a duplicate delivery finished it first, or took it over). The
    /// outcome's fields replace the job's. [`Error::NotFound`] for an
    /// unknown job, [`Error::InvalidInput`] for a status that is not final
    /// or a negative cost or token count.
    async fn finish_enhancement(
        &self,
        job_id: Uuid,
        outcome: Outcome,
        at: OffsetDateTime,
    ) -> Result<bool, Error>;
    async fn enhancement(&self, job_id: Uuid) -> Result<Option<EnhancementRecord>, Error>;
    /// A page and the total matching the filters. With a tenant, it runs in
    /// that tenant's scope (Postgres: row-level security).
    async fn enhancements_page(
        &self,
        q: &EnhancementQuery,
    ) -> Result<(Vec<EnhancementRecord>, u64), Error>;
    /// Jobs by status now (for queue depth and the dashboard): every status,
    /// in [`EnhancementStatus::ALL`] order, zeros included.
    async fn enhancement_counts(&self) -> Result<Vec<(EnhancementStatus, u64)>, Error>;
    /// The pause flag of all workers; durable across restarts.
    async fn processing_paused(&self) -> Result<bool, Error>;
    async fn set_processing_paused(&self, paused: bool) -> Result<(), Error>;

    // ---- Operations (clear the queue, retry a job) and the export.

    /// Clears the queue: every `pending` job (recorded or queued, not taken
    /// by a worker) becomes `failed` with the error [`CLEARED`] and
    /// `completed_at = at`, in one statement; a job a worker has taken
    /// (`processing`) or that is final is left alone. Nothing is deleted.
    /// Returns how many jobs it failed. A worker that later receives a
    /// cleared job's message finds it final ([`EnhancementStore::start_attempt`]
    /// answers [`Claim::Final`]) and drops it.
    async fn clear_pending_enhancements(&self, at: OffsetDateTime) -> Result<u64, Error>;
    /// Puts a `failed` job back to `pending` for another try: its attempts
    /// kept, its error, `completed_at` and `processing_time_ms` cleared, and
    /// `queued_at = at` (the caller pushes its message next; if that push
    /// is lost, the sweeper queues it again once `queued_at` is old). `None`
    /// when the job exists but is not failed (nothing changes);
    /// [`Error::NotFound`] for an unknown job.
    async fn retry_enhancement(
        &self,
        job_id: Uuid,
        at: OffsetDateTime,
    ) -> Result<Option<EnhancementRecord>, Error>;
    /// The export's page: jobs matching `q`'s filters (`page` and `per_page`
    /// ignored), newest first (created_at, then job id, as
    /// [`EnhancementStore::enhancements_page`]), strictly after `after`
    /// (keyset paging: pass [`EnhancementCursor::of`] the last row of the
    /// previous page), at most `limit` (1 to 500) rows. Rows come without
    /// `context_gathered` and `llm_output` (`None`): the export does not
    /// carry them, and reading them for 100k rows would dominate its cost.
    /// With a tenant, it runs in that tenant's scope.
    async fn enhancements_after(
        &self,
        q: &EnhancementQuery,
        after: Option<EnhancementCursor>,
        limit: u32,
    ) -> Result<Vec<EnhancementRecord>, Error>;
}

/// The error of a job the queue was cleared of
/// ([`EnhancementStore::clear_pending_enhancements`]).
pub const CLEARED: &str = "cleared";

/// Where an export page ends: the (created_at, job id) of its last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancementCursor {
    pub created_at: OffsetDateTime,
    pub job_id: Uuid,
}

impl EnhancementCursor {
    pub fn of(job: &EnhancementRecord) -> Self {
        Self {
            created_at: job.created_at,
            job_id: job.job_id,
        }
    }
}

macro_rules! job_columns {
    () => {
        "job_id, tenant_id, ticket_id, subject, description, priority, status, attempts, \
         context_gathered, llm_output, error_message, processing_time_ms, cost_micros, \
         input_tokens, output_tokens, note_id, correlation_id, queued_at, created_at, \
         started_at, completed_at, feedback, feedback_at"
    };
}

/// [`job_columns!`] without the two large ones (the export's rows).
macro_rules! job_summary_columns {
    () => {
        "job_id, tenant_id, ticket_id, subject, description, priority, status, attempts, \
         error_message, processing_time_ms, cost_micros, input_tokens, output_tokens, note_id, \
         correlation_id, queued_at, created_at, started_at, completed_at, feedback, \
         feedback_at"
    };
}

fn job_from_row<DB: Dialect>(row: Columns<'_, DB>) -> Result<EnhancementRecord, Error> {
    job_from_columns(row, true)
}

/// A job from [`job_columns!`] (`full`) or [`job_summary_columns!`].
fn job_from_columns<DB: Dialect>(
    row: Columns<'_, DB>,
    full: bool,
) -> Result<EnhancementRecord, Error> {
    let tenant: String = row.get("tenant_id")?;
    let status: String = row.get("status")?;
    let attempts: i64 = row.get("attempts")?;
    let (context, llm_output): (Option<Json<serde_json::Value>>, Option<String>) = if full {
        (row.get("context_gathered")?, row.get("llm_output")?)
    } else {
        (None, None)
    };
    Ok(EnhancementRecord {
        job_id: row.uuid("job_id")?,
        tenant_id: TenantId::parse(&tenant).map_err(|e| Error::Corrupt(e.to_string()))?,
        ticket_id: row.get("ticket_id")?,
        subject: row.get("subject")?,
        description: row.get("description")?,
        priority: row.get("priority")?,
        status: status.parse().map_err(|e| Error::Corrupt(format!("{e}")))?,
        attempts: u32::try_from(attempts)
            .map_err(|_| Error::Corrupt(format!("attempts is out of range: {attempts}")))?,
        context_gathered: context.map(|json| json.0),
        llm_output,
        error_message: row.get("error_message")?,
        processing_time_ms: row.get("processing_time_ms")?,
        cost_micros: row.get("cost_micros")?,
        input_tokens: row.get("input_tokens")?,
        output_tokens: row.get("output_tokens")?,
        note_id: row.get("note_id")?,
        correlation_id: row.get("correlation_id")?,
        queued_at: row.opt_time("queued_at")?,
        created_at: row.time("created_at")?,
        started_at: row.opt_time("started_at")?,
        completed_at: row.opt_time("completed_at")?,
        feedback: crate::feedback::vote_from_db(row.get("feedback")?)?,
        feedback_at: row.opt_time("feedback_at")?,
    })
}

/// `q` as a `LIKE` pattern for a substring, lower-cased, with `%`, `_` and
/// the escape character itself taken literally (`ESCAPE '\'`).
fn contains_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Page size and offset of a query: 50 a page unless it asks otherwise (at
/// most [`MAX_PER_PAGE`]), pages from 1 (0 reads as 1).
fn page_window(q: &EnhancementQuery) -> (i64, i64) {
    let per_page = match q.per_page {
        0 => DEFAULT_PER_PAGE,
        n => n.min(MAX_PER_PAGE),
    };
    let page = q.page.max(1);
    (
        i64::from(per_page),
        i64::from(page - 1) * i64::from(per_page),
    )
}

/// Appends the query's filters to a statement ending in `WHERE TRUE`.
fn push_filters<DB: Dialect>(query: &mut QueryBuilder<DB>, q: &EnhancementQuery) {
    if let Some(tenant) = &q.tenant_id {
        query.push(" AND tenant_id = ");
        DB::push_bind(query, tenant.as_str().to_owned());
    }
    if let Some(status) = q.status {
        query.push(" AND status = ");
        DB::push_bind(query, status.as_str().to_owned());
    }
    if let Some(from) = q.from {
        query.push(" AND created_at >= ");
        DB::push_bind(query, DB::time(from));
    }
    if let Some(to) = q.to {
        query.push(" AND created_at < ");
        DB::push_bind(query, DB::time(to));
    }
    if let Some(text) = q.q.as_deref().filter(|text| !text.is_empty()) {
        // description_lower is lower(description) (migration 0014: stored
        // with a trigram index on Postgres, so this OR is a bitmap OR of
        // that index and ticket_id's; computed when read on SQLite).
        // lower() folds ASCII only on SQLite, all of Unicode on Postgres.
        query.push(" AND (ticket_id = ");
        DB::push_bind(query, text.to_owned());
        query.push(" OR description_lower LIKE ");
        DB::push_bind(query, contains_pattern(text));
        query.push(" ESCAPE '\\')");
    }
}

/// The final status of an outcome, or why it is not one: a status it may not become.
fn check_outcome(outcome: &Outcome) -> Result<EnhancementStatus, Error> {
    let status = match outcome.status {
        Some(status) if status.is_final() => status,
        other => {
            return Err(Error::InvalidInput(format!(
                "an attempt ends completed or failed, not {}",
                other.map_or("unset", EnhancementStatus::as_str)
            )));
        }
    };
    check_micros("cost", outcome.cost_micros)?;
    for (what, tokens) in [
        ("input tokens", outcome.input_tokens),
        ("output tokens", outcome.output_tokens),
    ] {
        if tokens < 0 {
            return Err(Error::InvalidInput(format!("{what} is negative: {tokens}")));
        }
    }
    Ok(status)
}

async fn job_on<'c, DB: Dialect>(
    store: &'c SqlStore<DB>,
    target: On<'c, DB>,
    job_id: Uuid,
) -> Result<Option<EnhancementRecord>, Error> {
    let db = &store.db;
    let sql = concat!(
        "SELECT ",
        job_columns!(),
        " FROM enhancement_history WHERE job_id = $1"
    );
    let row = db.sql(sql).bind_id(job_id).fetch_optional(target).await?;
    row.map(|row| job_from_row(db.columns(&row))).transpose()
}

#[async_trait]
impl<DB: Dialect> EnhancementStore for SqlStore<DB> {
    #[instrument(name = "store.record_enhancement", skip_all, fields(tenant.id = %new.tenant_id, job.id = %new.job_id))]
    async fn record_enhancement(&self, new: NewEnhancement) -> Result<Recorded, Error> {
        let db = &self.db;
        let now = timestamp::now();
        // A repeated delivery inserts nothing (even while the first one's
        // insert is still uncommitted: Postgres waits for it) and reads the
        // first job instead.
        let inserted = db
            .sql(
                "INSERT INTO enhancement_history (job_id, tenant_id, ticket_id, delivery_key, \
                 subject, description, priority, status, correlation_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (tenant_id, delivery_key) DO NOTHING",
            )
            .bind_id(new.job_id)
            .bind(new.tenant_id.as_str())
            .bind(new.ticket_id.as_str())
            .bind(new.delivery_key.as_str())
            .bind(new.subject.as_str())
            .bind(new.description.as_str())
            .bind(new.priority.as_str())
            .bind(EnhancementStatus::Pending.as_str())
            .bind(new.correlation_id.as_str())
            .bind_time(now)
            .execute(db.pool())
            .await
            .map_err(|e| match e.violation() {
                Some(ErrorKind::UniqueViolation) => Error::Conflict(format!("job {}", new.job_id)),
                _ => unknown_tenant(&new.tenant_id)(e),
            })?;
        let created = inserted == 1;
        let sql = concat!(
            "SELECT ",
            job_columns!(),
            " FROM enhancement_history WHERE tenant_id = $1 AND delivery_key = $2"
        );
        let row = db
            .sql(sql)
            .bind(new.tenant_id.as_str())
            .bind(new.delivery_key.as_str())
            .fetch_optional(db.pool())
            .await?
            .ok_or_else(|| {
                Error::Corrupt(format!("job of delivery {} vanished", new.delivery_key))
            })?;
        Ok(Recorded {
            job: job_from_row(db.columns(&row))?,
            created,
        })
    }

    #[instrument(name = "store.mark_queued_many", skip_all, fields(jobs = job_ids.len()))]
    async fn mark_queued_many(&self, job_ids: &[Uuid], at: OffsetDateTime) -> Result<u64, Error> {
        let db = &self.db;
        let mut marked = 0;
        // An empty slice runs no statement. Chunks are not one transaction:
        // a chunk that fails leaves the earlier ones marked, and marking a
        // job again only moves its `queued_at`.
        for chunk in job_ids.chunks(MARK_QUEUED_CHUNK) {
            // One placeholder per id, which both databases read alike
            // (an array parameter would not be: `= ANY($1)` is Postgres').
            let mut update = QueryBuilder::<DB>::new("UPDATE enhancement_history SET queued_at = ");
            DB::push_bind(&mut update, DB::time(at));
            update.push(" WHERE job_id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    update.push(", ");
                }
                DB::push_bind(&mut update, DB::id(*id));
            }
            update.push(")");
            let done = DB::execute(db.pool(), update.build())
                .await
                .map_err(|e| db.error(e))?;
            marked += DB::rows_affected(&done);
        }
        Ok(marked)
    }

    async fn unqueued_enhancements(
        &self,
        created_before: OffsetDateTime,
        queued_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<EnhancementRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "SELECT ",
            job_columns!(),
            " FROM enhancement_history WHERE created_at < $1 \
             AND (queued_at IS NULL OR queued_at < $2) \
             AND (status = 'pending' OR (status = 'processing' AND started_at < $2)) \
             ORDER BY created_at, job_id LIMIT $3"
        );
        let rows = db
            .sql(sql)
            .bind_time(created_before)
            .bind_time(queued_before)
            .bind(i64::from(limit))
            .fetch_all(db.pool())
            .await?;
        rows.iter()
            .map(|row| job_from_row(db.columns(row)))
            .collect()
    }

    #[instrument(name = "store.start_attempt", skip_all, fields(job.id = %job_id))]
    async fn start_attempt(
        &self,
        job_id: Uuid,
        at: OffsetDateTime,
        lease: std::time::Duration,
    ) -> Result<Claim, Error> {
        let db = &self.db;
        // A lease too long to subtract has not ended for anyone.
        let expired_by = at.checked_sub(lease.try_into().unwrap_or(time::Duration::MAX));
        let Some(expired_by) = expired_by else {
            return Err(Error::InvalidInput(format!(
                "the lease of an attempt is too long: {lease:?}"
            )));
        };
        // The claim is decided by the UPDATE alone (a row lock on Postgres,
        // the write lock on SQLite): of two claims at once, the second sees
        // the first's `started_at` and takes nothing. The SELECT after it
        // only says why nothing was taken.
        let claim = concat!(
            "UPDATE enhancement_history SET status = 'processing', attempts = attempts + 1, \
             started_at = $2 WHERE job_id = $1 AND (status = 'pending' OR (status = 'processing' \
             AND (started_at IS NULL OR started_at <= $3))) RETURNING ",
            job_columns!()
        );
        for _ in 0..CLAIM_TRIES {
            let mut tx = db.begin_write().await?;
            let row = db
                .sql(claim)
                .bind_id(job_id)
                .bind_time(at)
                .bind_time(expired_by)
                .fetch_optional(on(&mut tx))
                .await?;
            if let Some(row) = row {
                let record = job_from_row(db.columns(&row))?;
                db.commit(tx).await?;
                return Ok(Claim::Started(Box::new(record)));
            }
            let row = db
                .sql("SELECT status, started_at FROM enhancement_history WHERE job_id = $1")
                .bind_id(job_id)
                .fetch_optional(on(&mut tx))
                .await?;
            let seen = match row {
                None => None,
                Some(row) => {
                    let row = db.columns(&row);
                    let status: String = row.get("status")?;
                    let status: EnhancementStatus =
                        status.parse().map_err(|e| Error::Corrupt(format!("{e}")))?;
                    Some((status, row.opt_time("started_at")?))
                }
            };
            db.commit(tx).await?;
            match seen {
                None => return Ok(Claim::Final),
                Some((status, _)) if status.is_final() => return Ok(Claim::Final),
                // Claimed by another attempt, even one whose `at` is behind
                // ours (the workers' clocks differ): its holder decides.
                Some((EnhancementStatus::Processing, Some(since))) => {
                    return Ok(Claim::Held { since });
                }
                // Changed between the two statements (Postgres reads each
                // with a snapshot of its own): decide again.
                Some(_) => {}
            }
        }
        Err(Error::Conflict(format!(
            "job {job_id} kept changing while an attempt claimed it"
        )))
    }

    #[instrument(name = "store.release_attempt", skip_all, fields(job.id = %job_id))]
    async fn release_attempt(&self, job_id: Uuid, attempt: u32) -> Result<bool, Error> {
        let db = &self.db;
        let released = db
            .sql(
                "UPDATE enhancement_history SET status = 'pending' \
                 WHERE job_id = $1 AND status = 'processing' AND attempts = $2",
            )
            .bind_id(job_id)
            .bind(i64::from(attempt))
            .execute(db.pool())
            .await?;
        Ok(released == 1)
    }

    #[instrument(name = "store.finish_enhancement", skip_all, fields(job.id = %job_id))]
    async fn finish_enhancement(
        &self,
        job_id: Uuid,
        outcome: Outcome,
        at: OffsetDateTime,
    ) -> Result<bool, Error> {
        let status = check_outcome(&outcome)?;
        let db = &self.db;
        let updated = db
            .sql(
                "UPDATE enhancement_history SET status = $2, context_gathered = $3, \
                 llm_output = $4, error_message = $5, processing_time_ms = $6, cost_micros = $7, \
                 input_tokens = $8, output_tokens = $9, note_id = $10, completed_at = $11, \
                 worker_id = $12 \
                 WHERE job_id = $1 AND status NOT IN ('completed', 'failed') \
                 AND ($13 IS NULL OR queued_at IS NULL OR queued_at <= $13) \
                 AND ($14 IS NULL OR attempts = $14)",
            )
            .bind_id(job_id)
            .bind(status.as_str())
            .bind(outcome.context_gathered.map(Json))
            .bind(outcome.llm_output)
            .bind(outcome.error_message)
            .bind(outcome.processing_time_ms)
            .bind(outcome.cost_micros)
            .bind(outcome.input_tokens)
            .bind(outcome.output_tokens)
            .bind(outcome.note_id)
            .bind_time(at)
            .bind_opt_id(outcome.worker_id)
            .bind_opt_time(outcome.queued_no_later_than)
            .bind(outcome.attempt.map(i64::from))
            .execute(db.pool())
            .await?;
        if updated == 1 {
            return Ok(true);
        }
        match job_on(self, db.pool(), job_id).await? {
            Some(_) => Ok(false),
            None => Err(Error::NotFound(format!("job {job_id}"))),
        }
    }

    async fn enhancement(&self, job_id: Uuid) -> Result<Option<EnhancementRecord>, Error> {
        job_on(self, self.db.pool(), job_id).await
    }

    async fn enhancements_page(
        &self,
        q: &EnhancementQuery,
    ) -> Result<(Vec<EnhancementRecord>, u64), Error> {
        let db = &self.db;
        let (limit, offset) = page_window(q);
        let mut count =
            QueryBuilder::<DB>::new("SELECT count(*) AS n FROM enhancement_history WHERE TRUE");
        push_filters(&mut count, q);
        // The page's ids first, then their rows: the rows skipped by OFFSET
        // are read (or sorted) as narrow (created_at, job_id) pairs rather
        // than whole rows with their gathered context and note (page 2,000
        // of 100k jobs: 324 → 119 ms by `EXPLAIN ANALYZE`; 30 ms vacuumed,
        // when the ids come from an index-only scan).
        let mut page = QueryBuilder::<DB>::new(concat!(
            "SELECT ",
            job_columns!(),
            " FROM enhancement_history WHERE job_id IN \
             (SELECT job_id FROM enhancement_history WHERE TRUE"
        ));
        push_filters(&mut page, q);
        // Newest first; job_id breaks ties, so every row is on exactly one page.
        page.push(" ORDER BY created_at DESC, job_id DESC LIMIT ");
        DB::push_bind(&mut page, limit);
        page.push(" OFFSET ");
        DB::push_bind(&mut page, offset);
        page.push(") ORDER BY created_at DESC, job_id DESC");

        // One tenant's page runs in that tenant's scope: on Postgres its
        // row-level security holds even if a filter above were wrong.
        let mut tx = db.begin().await?;
        if let Some(tenant) = &q.tenant_id {
            DB::enter_tenant_scope(&mut *tx, tenant.as_str())
                .await
                .map_err(|e| db.error(e))?;
        }
        let total = db.fetch_built_on(on(&mut tx), &mut count).await?;
        let total = match total.first() {
            Some(row) => count_from_db("count(*)", db.columns(row).get("n")?)?,
            None => 0,
        };
        let rows = db.fetch_built_on(on(&mut tx), &mut page).await?;
        db.commit(tx).await?;
        let jobs = rows
            .iter()
            .map(|row| job_from_row(db.columns(row)))
            .collect::<Result<_, _>>()?;
        Ok((jobs, total))
    }

    async fn enhancement_counts(&self) -> Result<Vec<(EnhancementStatus, u64)>, Error> {
        let db = &self.db;
        let rows = db
            .sql("SELECT status, count(*) AS n FROM enhancement_history GROUP BY status")
            .fetch_all(db.pool())
            .await?;
        let mut counts: Vec<(EnhancementStatus, u64)> =
            EnhancementStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in &rows {
            let row = db.columns(row);
            let status: String = row.get("status")?;
            let status: EnhancementStatus =
                status.parse().map_err(|e| Error::Corrupt(format!("{e}")))?;
            let n = row.count("n")?;
            if let Some(entry) = counts.iter_mut().find(|(s, _)| *s == status) {
                entry.1 = n;
            }
        }
        Ok(counts)
    }

    async fn processing_paused(&self) -> Result<bool, Error> {
        let db = &self.db;
        let row = db
            .sql("SELECT paused FROM ticket_processing WHERE id = 1")
            .fetch_optional(db.pool())
            .await?;
        match row {
            Some(row) => db.columns(&row).get("paused"),
            None => Ok(false),
        }
    }

    #[instrument(name = "store.set_processing_paused", skip_all, fields(paused))]
    async fn set_processing_paused(&self, paused: bool) -> Result<(), Error> {
        let db = &self.db;
        db.sql(
            "INSERT INTO ticket_processing (id, paused, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET paused = EXCLUDED.paused, \
             updated_at = EXCLUDED.updated_at",
        )
        .bind(paused)
        .bind_time(timestamp::now())
        .execute(db.pool())
        .await?;
        Ok(())
    }

    #[instrument(name = "store.clear_pending_enhancements", skip_all)]
    async fn clear_pending_enhancements(&self, at: OffsetDateTime) -> Result<u64, Error> {
        let db = &self.db;
        // One statement: a worker's `start_attempt` on the same row either
        // ran first (the job is processing and stays so) or finds it failed.
        db.sql(
            "UPDATE enhancement_history SET status = 'failed', error_message = $1, \
             completed_at = $2 WHERE status = 'pending'",
        )
        .bind(CLEARED)
        .bind_time(at)
        .execute(db.pool())
        .await
    }

    #[instrument(name = "store.retry_enhancement", skip_all, fields(job.id = %job_id))]
    async fn retry_enhancement(
        &self,
        job_id: Uuid,
        at: OffsetDateTime,
    ) -> Result<Option<EnhancementRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "UPDATE enhancement_history SET status = 'pending', error_message = NULL, \
             completed_at = NULL, processing_time_ms = NULL, queued_at = $2 \
             WHERE job_id = $1 AND status = 'failed' RETURNING ",
            job_columns!()
        );
        let row = db
            .sql(sql)
            .bind_id(job_id)
            .bind_time(at)
            .fetch_optional(db.pool())
            .await?;
        if let Some(row) = row {
            return job_from_row(db.columns(&row)).map(Some);
        }
        match job_on(self, db.pool(), job_id).await? {
            Some(_) => Ok(None),
            None => Err(Error::NotFound(format!("job {job_id}"))),
        }
    }

    async fn enhancements_after(
        &self,
        q: &EnhancementQuery,
        after: Option<EnhancementCursor>,
        limit: u32,
    ) -> Result<Vec<EnhancementRecord>, Error> {
        let db = &self.db;
        let limit = limit.clamp(1, MAX_PER_PAGE);
        let mut page = QueryBuilder::<DB>::new(concat!(
            "SELECT ",
            job_summary_columns!(),
            " FROM enhancement_history WHERE TRUE"
        ));
        push_filters(&mut page, q);
        if let Some(after) = after {
            // Strictly after the cursor in (created_at DESC, job_id DESC)
            // order: no OFFSET, so page 200 costs what page 1 does. The
            // first bound is implied by the second; it is there so that the
            // planner starts its index scan at the cursor instead of
            // filtering every newer row again.
            page.push(" AND created_at <= ");
            DB::push_bind(&mut page, DB::time(after.created_at));
            page.push(" AND (created_at < ");
            DB::push_bind(&mut page, DB::time(after.created_at));
            page.push(" OR (created_at = ");
            DB::push_bind(&mut page, DB::time(after.created_at));
            page.push(" AND job_id < ");
            DB::push_bind(&mut page, DB::id(after.job_id));
            page.push("))");
        }
        page.push(" ORDER BY created_at DESC, job_id DESC LIMIT ");
        DB::push_bind(&mut page, i64::from(limit));
        let mut tx = db.begin().await?;
        if let Some(tenant) = &q.tenant_id {
            DB::enter_tenant_scope(&mut *tx, tenant.as_str())
                .await
                .map_err(|e| db.error(e))?;
        }
        let rows = db.fetch_built_on(on(&mut tx), &mut page).await?;
        db.commit(tx).await?;
        rows.iter()
            .map(|row| job_from_columns(db.columns(row), false))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_is_a_literal_lower_case_substring() {
        assert_eq!(contains_pattern("Disk"), "%disk%");
        assert_eq!(contains_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }

    #[test]
    fn pages_default_to_fifty_from_page_one() {
        let q = |page, per_page| EnhancementQuery {
            page,
            per_page,
            ..EnhancementQuery::default()
        };
        assert_eq!(page_window(&q(0, 0)), (50, 0));
        assert_eq!(page_window(&q(1, 0)), (50, 0));
        assert_eq!(page_window(&q(3, 10)), (10, 20));
        assert_eq!(page_window(&q(2, 10_000)), (500, 500));
    }

    #[test]
    fn only_final_outcomes_with_non_negative_amounts_are_accepted() {
        let outcome = |status, cost| Outcome {
            status,
            cost_micros: cost,
            ..Outcome::default()
        };
        assert!(check_outcome(&outcome(Some(EnhancementStatus::Completed), 0)).is_ok());
        assert!(check_outcome(&outcome(Some(EnhancementStatus::Failed), 5)).is_ok());
        for bad in [
            outcome(None, 0),
            outcome(Some(EnhancementStatus::Processing), 0),
            outcome(Some(EnhancementStatus::Completed), -1),
        ] {
            assert!(matches!(check_outcome(&bad), Err(Error::InvalidInput(_))));
        }
    }
}
