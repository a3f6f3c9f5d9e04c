//! One delivery of an enhancement job, from taking it to its record:
//! start the attempt, read the tenant, gather context, synthesise (or say
//! why not), post the note once, finish the job.
//!
//! Failures are of two kinds: [`Failure::Retry`] (a backend did not answer:
//! the store, the ticketing tool after its client's own retries, the
//! attempt's 120 s) and [`Failure::Fatal`] (nothing later can fix it: an
//! inactive tenant, a tool csp has no connector for, a 4xx from the tool,
//! bad settings). A fatal failure, or a retryable one on the job's last
//! attempt, is written to the store as `failed` *before* the handler answers
//! the loop, and the message is dead-lettered.
//! The model failing is neither: the note carries the context without
//! analysis and the job completes, with the reason kept.
//!
//! An attempt holds its job by a lease ([`crate::Config::lease`]): the
//! store starts it only on a pending job or one whose last attempt's lease
//! ran out, in one statement, so two deliveries of one job (a duplicate
//! message, the sweeper's push, a redelivery after a crash) never run
//! attempts at once and never both find the ticket without the note. A
//! delivery that finds the job held is deferred, spending no attempt, and
//! tries again until the holder ends the job (then it finds it final and is
//! dropped) or its lease runs out (its worker died: this delivery takes the
//! job). It is never dropped while the job is held: the holder may be dead,
//! and its own message comes back only once. The job's final write names
//! the attempt, so an attempt that outlived its lease cannot end the
//! attempt that took the job over.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use csp_breaker::{Breaker, Permit};
use csp_bus::worker::{Handler, HandlerError, JobContext};
use csp_cache::Cache;
use csp_domain::{ContextSource, EnhanceJob, EnhancementStatus};
use csp_enhance::{
    FeedbackLinks, GatherTimeouts, GatheredContext, NoteOptions, PromptOptions, SkipReason,
    Sources, Synthesis, Synthesizer, TicketInput,
};
use csp_http::HttpClient;
use csp_secrets::Keyring;
use csp_store::{Claim, EnhancementRecord, Outcome, TenantRecord};
use csp_ticketing::JobMarker;
use csp_ticketing::connector::{ClientOptions, PostedNote, RetryPolicy, ToolType};
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::{Instrument, field};

use crate::fairness::{Fairness, OnePerJob, defer_delay};
use crate::heartbeat::Tally;
use crate::message::Queued;
use crate::metrics::{self, Active, SuccessRate};
use crate::sources::{KbApi, StoreHistory, StoreInventory, TenantKb};
use crate::tenant::{self, Preferences, Settings};
use crate::{Config, Stores};

/// Tries of the final write of a job, a second apart and then two: a store
/// blip must not leave a job the queue gives up on `processing`.
const FINISH_TRIES: u32 = 3;

/// The state every delivery shares.
pub(crate) struct Jobs {
    stores: Stores,
    cache: Arc<dyn Cache>,
    breaker: Arc<Breaker>,
    model: Option<Arc<dyn Synthesizer>>,
    http: HttpClient,
    keyring: Option<Keyring>,
    /// The signed "Was this helpful?" links that end every note; `None`
    /// without `CSP_PUBLIC_URL` or `CSP_SECRET_KEY`.
    feedback: Option<FeedbackLinks>,
    fairness: Fairness,
    tenant_defer: Duration,
    tenant_defer_max: Duration,
    one_per_job: OnePerJob,
    success: SuccessRate,
    /// What the heartbeat reports: jobs running, completed, failed.
    tally: Arc<Tally>,
    max_attempts: u32,
    attempt_timeout: Duration,
    /// How long an attempt holds its job ([`crate::Config::lease`]).
    lease: Duration,
    source_timeouts: GatherTimeouts,
    kb_api_timeout: Duration,
    kb_cache_ttl: Duration,
    kb_stale_ttl: Duration,
    tool_retry: RetryPolicy,
}

/// Why an attempt did not complete.
#[derive(Debug)]
pub(crate) enum Failure {
    Retry(String),
    Fatal(String),
}

/// What an attempt has produced so far; kept on the job however it ends.
#[derive(Default)]
struct Progress {
    context: Option<GatheredContext>,
    synthesis: Option<Synthesis>,
    note_markdown: Option<String>,
    skipped: Option<String>,
    note_id: Option<String>,
}

impl Jobs {
    pub(crate) fn new(
        config: &Config,
        stores: Stores,
        cache: Arc<dyn Cache>,
        breaker: Arc<Breaker>,
        model: Option<Arc<dyn Synthesizer>>,
        http: HttpClient,
        tally: Arc<Tally>,
    ) -> Self {
        Self {
            stores,
            cache,
            breaker,
            model,
            http,
            keyring: config.keyring.clone(),
            feedback: config.feedback_links(),
            fairness: Fairness::new(config.tenant_inflight),
            tenant_defer: config.tenant_defer,
            tenant_defer_max: config.tenant_defer_max,
            one_per_job: OnePerJob::default(),
            success: SuccessRate::default(),
            tally,
            max_attempts: config.max_attempts,
            attempt_timeout: config.attempt_timeout,
            lease: config.lease(),
            source_timeouts: config.source_timeouts,
            kb_api_timeout: config.kb_api_timeout,
            kb_cache_ttl: config.kb_cache_ttl,
            kb_stale_ttl: config.kb_stale_ttl,
            tool_retry: config.tool_retry,
        }
    }

    pub(crate) async fn store_answers(&self) -> bool {
        self.stores.jobs.processing_paused().await.is_ok()
    }

    pub(crate) async fn paused(&self) -> Result<bool, csp_store::Error> {
        self.stores.jobs.processing_paused().await
    }
}

#[async_trait]
impl Handler<Queued> for Jobs {
    async fn handle(&self, queued: Queued, context: &JobContext) -> Result<(), HandlerError> {
        let job = &queued.job;
        let span = tracing::info_span!(
            "enhancement",
            correlation_id = %job.correlation_id,
            job_id = %job.job_id,
            tenant_id = %job.tenant_id,
            ticket_id = field::Empty,
            attempt = context.attempt,
        );
        queued.continue_trace(&span);
        self.handle_job(queued.job, context).instrument(span).await
    }
}

impl Jobs {
    async fn handle_job(&self, job: EnhanceJob, context: &JobContext) -> Result<(), HandlerError> {
        let last_delivery = context.attempt >= u64::from(self.max_attempts);
        let _one = self.one_per_job.enter(job.job_id).await;
        // Over its tenant's cap: handed back for later, its attempt unspent,
        // and the slot goes to whatever is behind it on the queue.
        let Some(slot) = self.fairness.try_acquire(job.tenant_id.as_str()) else {
            let delay = defer_delay(
                self.tenant_defer,
                self.tenant_defer_max,
                job.job_id,
                context.deferrals,
            );
            tracing::debug!(tenant_id = %job.tenant_id, correlation_id = %job.correlation_id,
                operation = "take_job", status = "deferred", deferrals = context.deferrals,
                delay_ms = delay.as_millis() as u64, "tenant at its in-flight cap; job deferred");
            return Err(HandlerError::Defer(delay));
        };
        let _active = Active::start();
        let _busy = self.tally.busy();
        let started = Instant::now();
        let at = now();
        let claim = self.stores.jobs.start_attempt(job.job_id, at, self.lease);
        let record = match claim.await {
            Ok(Claim::Started(record)) => *record,
            Ok(Claim::Held { since }) => {
                let delay = self.held_delay(since, at);
                tracing::info!(
                    tenant_id = %job.tenant_id,
                    correlation_id = %job.correlation_id,
                    operation = "start_attempt",
                    status = "deferred",
                    since = %since,
                    delay_ms = delay.as_millis() as u64,
                    "another attempt holds the job; deferred until it ends or its lease runs out"
                );
                return Err(HandlerError::Defer(delay));
            }
            Ok(Claim::Final) => {
                tracing::info!(
                    tenant_id = %job.tenant_id,
                    correlation_id = %job.correlation_id,
                    operation = "start_attempt",
                    status = "skipped",
                    "job already completed or failed (or unknown); nothing to do"
                );
                return Ok(());
            }
            Err(e) => {
                let reason = format!("cannot start the attempt: {e}");
                tracing::warn!(tenant_id = %job.tenant_id, correlation_id = %job.correlation_id, operation = "start_attempt", status = "error", error = %e, "cannot start the attempt");
                // The store is the record: without it nothing can be kept,
                // and the dead letter keeps the error.
                return Err(HandlerError::retryable(reason));
            }
        };
        tracing::Span::current().record("ticket_id", record.ticket_id.as_str());
        let tenant = record.tenant_id.clone();
        let last = last_delivery || record.attempts >= self.max_attempts;
        let mut progress = Progress::default();
        let result = if record.tenant_id != job.tenant_id {
            Err(Failure::Fatal(format!(
                "the message names tenant {} but the job belongs to {}",
                job.tenant_id, record.tenant_id
            )))
        } else {
            match tokio::time::timeout(self.attempt_timeout, self.attempt(&record, &mut progress))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(Failure::Retry(format!(
                    "attempt timed out after {} s",
                    self.attempt_timeout.as_secs()
                ))),
            }
        };
        drop(slot);
        let elapsed = started.elapsed();
        let log = |status: &str, message: &str, error: Option<&str>| {
            tracing::info!(
                tenant_id = %tenant,
                ticket_id = %record.ticket_id,
                correlation_id = %record.correlation_id,
                operation = "finish",
                status,
                error,
                attempts = record.attempts,
                duration_ms = elapsed.as_millis() as u64,
                "{message}"
            );
        };
        match result {
            Ok(()) => {
                let outcome = progress.outcome(EnhancementStatus::Completed, None, elapsed);
                self.finish(&record, outcome).await?;
                metrics::ended(tenant.as_str(), "completed", elapsed.as_secs_f64());
                self.success.record(true);
                self.tally.completed();
                log("completed", "job completed", progress.skipped.as_deref());
                Ok(())
            }
            Err(Failure::Retry(reason)) if !last => {
                self.release(&record).await;
                metrics::ended(tenant.as_str(), "retrying", elapsed.as_secs_f64());
                log(
                    "retrying",
                    "attempt failed; the job will be retried",
                    Some(&reason),
                );
                Err(HandlerError::Retryable(reason))
            }
            Err(Failure::Retry(reason) | Failure::Fatal(reason)) => {
                let outcome =
                    progress.outcome(EnhancementStatus::Failed, Some(reason.clone()), elapsed);
                self.finish(&record, outcome).await?;
                metrics::ended(tenant.as_str(), "failed", elapsed.as_secs_f64());
                self.success.record(false);
                self.tally.failed();
                log("failed", "job failed", Some(&reason));
                // Failed in the store, then dead-lettered with the same error.
                Err(HandlerError::Permanent(reason))
            }
        }
    }

    /// Gives the job back for its retried delivery to claim at once. If
    /// the store cannot say so, the retry waits out this attempt's lease
    /// (deferred meanwhile): slower, never two attempts at once.
    async fn release(&self, record: &EnhancementRecord) {
        if let Err(e) = self
            .stores
            .jobs
            .release_attempt(record.job_id, record.attempts)
            .await
        {
            tracing::warn!(operation = "release_attempt", status = "error", error = %e,
                "cannot give the job back; its retry waits for this attempt's lease to run out");
        }
    }

    /// How long a delivery whose job another attempt holds (since `since`)
    /// waits before it tries again: until the holder's lease runs out, but
    /// at most `tenant_defer_max` at a time — the loop waits out a deferral
    /// before it stops, so a stopping or pausing worker is held up no longer
    /// than by the fairness cap, and a duplicate of a job that ends early is
    /// dropped soon after — and at least `tenant_defer` (the holder's clock
    /// may be ahead of this worker's).
    fn held_delay(&self, since: OffsetDateTime, at: OffsetDateTime) -> Duration {
        let ends = since + self.lease;
        let left = Duration::try_from(ends - at).unwrap_or(Duration::ZERO);
        left.min(self.tenant_defer_max).max(self.tenant_defer)
    }

    /// Writes the job's end, retrying a store blip; a store that stays
    /// down leaves the message to be delivered again.
    async fn finish(
        &self,
        record: &EnhancementRecord,
        mut outcome: Outcome,
    ) -> Result<(), HandlerError> {
        // Its worker, for the Workers page's throughput.
        outcome.worker_id = Some(self.tally.worker_id());
        // Only while this attempt holds the job: one that outlived its
        // lease leaves the job to the attempt that took it over.
        outcome.attempt = Some(record.attempts);
        let mut try_ = 1;
        loop {
            match self
                .stores
                .jobs
                .finish_enhancement(record.job_id, outcome.clone(), now())
                .await
            {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    tracing::info!(
                        operation = "finish",
                        status = "skipped",
                        "another delivery finished the job first, or took it over after this attempt's lease"
                    );
                    return Ok(());
                }
                Err(e) if try_ < FINISH_TRIES => {
                    tracing::warn!(operation = "finish", status = "error", error = %e, try_, "cannot record the job's end; retrying");
                    tokio::time::sleep(Duration::from_secs(u64::from(try_))).await;
                    try_ += 1;
                }
                Err(e) => {
                    tracing::error!(operation = "finish", status = "error", error = %e, "cannot record the job's end");
                    return Err(HandlerError::retryable(format!(
                        "cannot record the job's end: {e}"
                    )));
                }
            }
        }
    }

    async fn attempt(
        &self,
        record: &EnhancementRecord,
        progress: &mut Progress,
    ) -> Result<(), Failure> {
        let tenant = match self.stores.tenants.tenant(&record.tenant_id).await {
            Ok(Some(t)) if t.is_active => t,
            Ok(Some(_)) => return Err(Failure::Fatal("tenant inactive".into())),
            Ok(None) => return Err(Failure::Fatal("tenant not found".into())),
            Err(e) => return Err(Failure::Retry(format!("cannot read the tenant: {e}"))),
        };
        let tool = ToolType::parse(&tenant.tool_type).map_err(|e| Failure::Fatal(e.to_string()))?;
        let settings: Settings =
            tenant::read(&tenant.settings, "settings").map_err(Failure::Fatal)?;
        let prefs: Preferences =
            tenant::read(&tenant.preferences, "preferences").map_err(Failure::Fatal)?;
        let ticket = TicketInput {
            ticket_id: record.ticket_id.clone(),
            subject: record.subject.clone(),
            description: record.description.clone(),
            priority: record.priority.clone(),
        };
        let steps = Steps { record };

        let ctx = self
            .gather(&tenant, &settings, &prefs, &ticket)
            .instrument(tracing::info_span!("context_gathering"))
            .await;
        steps.log("context_gathering", "ok", context_summary(&ctx));
        progress.context = Some(ctx.clone());

        let max_words = csp_enhance::effective_max_words(prefs.max_words);
        let outcome = self
            .synthesize(&tenant, &prefs, &ticket, &ctx, max_words)
            .instrument(tracing::info_span!("llm_call"))
            .await?;
        match &outcome {
            Ok(s) => steps.log(
                "llm_call",
                "ok",
                format!(
                    "model {} answered: {} input, {} output tokens, ${:.6}",
                    s.model, s.input_tokens, s.output_tokens, s.cost_usd
                ),
            ),
            Err(reason) => steps.log(
                "llm_call",
                "skipped",
                format!("no synthesis ({reason}); the note carries the context without analysis"),
            ),
        }
        let format = prefs.note_format;
        let note = csp_enhance::compose_note(outcome, &ctx, NoteOptions { max_words, format });
        progress.synthesis = note.synthesis.clone();
        progress.skipped = note
            .skipped
            .as_ref()
            .map(|r| format!("synthesis skipped: {r}"));
        progress.note_markdown = Some(note.markdown.clone());
        // After the word cap, and not the model's words (`llm_output` is the
        // note without them); the connector's job marker follows them.
        let body = match &self.feedback {
            Some(links) => links.append(&note.body, record.job_id, format),
            None => note.body,
        };

        let posted = self
            .post(&tenant, tool, record, &body, prefs.note_format)
            .instrument(tracing::info_span!("ticket_update"))
            .await;
        match posted {
            Ok(posted) => {
                steps.log(
                    "ticket_update",
                    "ok",
                    format!(
                        "note {} {}",
                        posted.note_id,
                        if posted.created {
                            "posted"
                        } else {
                            "was already on the ticket"
                        }
                    ),
                );
                progress.note_id = Some(posted.note_id.0);
                Ok(())
            }
            Err(failure) => {
                let (status, reason) = match &failure {
                    Failure::Retry(r) => ("retryable_error", r),
                    Failure::Fatal(r) => ("error", r),
                };
                steps.log("ticket_update", status, reason.clone());
                Err(failure)
            }
        }
    }

    async fn gather(
        &self,
        tenant: &TenantRecord,
        settings: &Settings,
        prefs: &Preferences,
        ticket: &TicketInput,
    ) -> GatheredContext {
        let id = &tenant.tenant_id;
        let history = StoreHistory {
            store: self.stores.context.clone(),
            tenant: id.clone(),
        };
        let inventory = StoreInventory {
            store: self.stores.context.clone(),
            tenant: id.clone(),
        };
        let kb = TenantKb {
            store: self.stores.context.clone(),
            tenant: id.clone(),
            api: settings
                .kb_api_url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .map(|url| KbApi {
                    url: url.to_owned(),
                    http: self.http.clone(),
                    cache: self.cache.clone(),
                    timeout: self.kb_api_timeout,
                    fresh_for: self.kb_cache_ttl,
                    keep_for: self.kb_stale_ttl,
                }),
            mask_pii: prefs.mask_pii,
        };
        let sources = Sources {
            similar: prefs
                .wants(ContextSource::TicketHistory)
                .then_some(&history as _),
            kb: prefs.wants(ContextSource::Kb).then_some(&kb as _),
            inventory: prefs
                .wants(ContextSource::IpInventory)
                .then_some(&inventory as _),
        };
        csp_enhance::gather(sources, ticket, self.source_timeouts).await
    }

    /// The model's note, or why there is none; `Err` only when the budget
    /// cannot be read.
    async fn synthesize(
        &self,
        tenant: &TenantRecord,
        prefs: &Preferences,
        ticket: &TicketInput,
        ctx: &GatheredContext,
        max_words: usize,
    ) -> Result<Result<Synthesis, SkipReason>, Failure> {
        let Some(model) = &self.model else {
            return Ok(Err(SkipReason::NoModel));
        };
        let month = month_of(now());
        if let Some(cap) = tenant.monthly_budget_micros {
            let spent = self
                .stores
                .tenants
                .tenant_spend(&tenant.tenant_id, &month)
                .await
                .map_err(|e| Failure::Retry(format!("cannot read the tenant's spend: {e}")))?;
            if spent >= cap {
                return Ok(Err(SkipReason::OverBudget));
            }
        }
        let permit = self.breaker.permit().await;
        if permit == Permit::Rejected {
            return Ok(Err(SkipReason::BreakerOpen));
        }
        let prompt = csp_enhance::build_prompt(
            ticket,
            ctx,
            PromptOptions {
                max_words,
                mask_pii: prefs.mask_pii,
            },
        );
        match model.synthesize(&prompt).await {
            Ok(synthesis) => {
                self.breaker.on_success(permit).await;
                let micros = i64::try_from(synthesis.cost_micros()).unwrap_or(i64::MAX);
                if micros > 0
                    && let Err(e) = self
                        .stores
                        .tenants
                        .add_tenant_spend(&tenant.tenant_id, &month, micros)
                        .await
                {
                    // The cost stays on the job; the month's total misses it.
                    tracing::error!(tenant_id = %tenant.tenant_id, micros, error = %e, "cannot charge the model call to the tenant's budget");
                }
                Ok(Ok(synthesis))
            }
            Err(e) => {
                if e.is_outage() {
                    self.breaker.on_failure().await;
                } else {
                    // The API answered: it is up, whatever it said.
                    self.breaker.on_success(permit).await;
                }
                tracing::warn!(tenant_id = %tenant.tenant_id, error = %e, "model call failed; falling back to the context");
                Ok(Err(SkipReason::Failed(e)))
            }
        }
    }

    /// Posts the note once through the tenant's tool's connector.
    async fn post(
        &self,
        tenant: &TenantRecord,
        tool: ToolType,
        record: &EnhancementRecord,
        body: &str,
        format: csp_domain::NoteFormat,
    ) -> Result<PostedNote, Failure> {
        let settings = csp_tenant_tool::tool_settings(
            tenant,
            tool,
            self.stores.secrets.as_ref(),
            self.keyring.as_ref(),
        )
        .await
        .map_err(|e| {
            if e.is_retryable() {
                Failure::Retry(e.to_string())
            } else {
                Failure::Fatal(e.to_string())
            }
        })?;
        let options = ClientOptions {
            retry: self.tool_retry,
            ..ClientOptions::default()
        };
        let client = csp_ticketing::registry::connector(tool)
            .client(self.http.clone(), &settings, options)
            .map_err(|e| {
                Failure::Fatal(format!("invalid {} settings: {e}", tool.display_name()))
            })?;
        let marker = JobMarker::new(&record.job_id.to_string())
            .map_err(|e| Failure::Fatal(e.to_string()))?;
        client
            .post_note_once(&record.ticket_id, &marker, body, format)
            .await
            .map_err(|e| {
                let reason = format!("posting the note to {} failed: {e}", tool.display_name());
                if e.is_retryable() {
                    Failure::Retry(reason)
                } else {
                    Failure::Fatal(reason)
                }
            })
    }
}

impl Progress {
    fn outcome(
        &self,
        status: EnhancementStatus,
        failure: Option<String>,
        elapsed: Duration,
    ) -> Outcome {
        let error_message = match (failure, &self.skipped) {
            (Some(f), Some(s)) => Some(format!("{f}; {s}")),
            (Some(f), None) => Some(f),
            (None, s) => s.clone(),
        };
        let (cost_micros, input_tokens, output_tokens) =
            self.synthesis.as_ref().map_or((0, 0, 0), |s| {
                (
                    i64::try_from(s.cost_micros()).unwrap_or(i64::MAX),
                    i64::try_from(s.input_tokens).unwrap_or(i64::MAX),
                    i64::try_from(s.output_tokens).unwrap_or(i64::MAX),
                )
            });
        Outcome {
            status: Some(status),
            context_gathered: self
                .context
                .as_ref()
                .map(|c| serde_json::to_value(c).expect("the context serializes")),
            llm_output: self.note_markdown.clone(),
            error_message,
            processing_time_ms: Some(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)),
            cost_micros,
            input_tokens,
            output_tokens,
            note_id: self.note_id.clone(),
            // Set by `Jobs::finish`, which knows the worker.
            worker_id: None,
            // The worker's own round: it holds the job (`processing`).
            queued_no_later_than: None,
            // Set by `Jobs::finish`, which knows the attempt.
            attempt: None,
        }
    }
}

/// One structured line per step.
struct Steps<'a> {
    record: &'a EnhancementRecord,
}

impl Steps<'_> {
    fn log(&self, operation: &str, status: &str, detail: String) {
        tracing::info!(
            tenant_id = %self.record.tenant_id,
            ticket_id = %self.record.ticket_id,
            correlation_id = %self.record.correlation_id,
            operation,
            status,
            "{detail}"
        );
    }
}

fn context_summary(ctx: &GatheredContext) -> String {
    let errors: Vec<String> = ctx.errors().map(|(k, e)| format!("{k}: {e}")).collect();
    let mut text = format!(
        "{} similar tickets, {} articles, {} systems ({} addresses)",
        ctx.similar_tickets.len(),
        ctx.kb_articles.len(),
        ctx.systems.len(),
        ctx.ips.len()
    );
    if !errors.is_empty() {
        text.push_str(&format!("; sources failed: {}", errors.join("; ")));
    }
    text
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The budget month of `at`, "YYYY-MM" (UTC).
pub(crate) fn month_of(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_year_and_month() {
        let at = time::macros::datetime!(2026-12-31 23:30 -02:00);
        assert_eq!(month_of(at), "2027-01");
        assert_eq!(
            month_of(time::macros::datetime!(2026-03-01 00:00 UTC)),
            "2026-03"
        );
    }

    #[test]
    fn the_outcome_keeps_failure_and_skip_reason() {
        let progress = Progress {
            skipped: Some("synthesis skipped: the model API circuit breaker is open".into()),
            ..Progress::default()
        };
        let o = progress.outcome(
            EnhancementStatus::Failed,
            Some("posting failed".into()),
            Duration::from_millis(12),
        );
        assert_eq!(
            o.error_message.as_deref(),
            Some("posting failed; synthesis skipped: the model API circuit breaker is open")
        );
        assert_eq!(o.processing_time_ms, Some(12));
        assert_eq!(o.status, Some(EnhancementStatus::Failed));
    }
}
