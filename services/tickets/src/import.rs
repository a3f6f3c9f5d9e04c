//! "Import history" from the Tenants page: a tenant's resolved tickets read
//! from its tool into its history in the background, on the replica that
//! was asked (`csp_tenant_tool::import`, the same code as
//! `csp tickets import`), one import per tenant at a time, its progress
//! readable from every replica.
//!
//! Where the progress lives: in the shared cache, not the store. It is
//! transient (what an admin watches while it runs and shortly after), the
//! history it produces is in the store and importing again is idempotent, so
//! losing it to a Redis restart costs a progress display and nothing else;
//! the cache gives every replica the same view, expiry for free and an
//! atomic "only one" (`put_if_absent`) without a migration on both
//! databases. Two values per tenant:
//! - the lock [`lock_key`]: taken with `put_if_absent` for [`LOCK_TTL`] and
//!   renewed every [`LOCK_RENEW`] while the import runs, holding the run's
//!   first progress; a replica that dies lets it expire, so another import
//!   may start a minute later;
//! - the progress [`progress_key`], written after every page and once at the
//!   end, kept [`PROGRESS_TTL`]. A progress still `running` whose lock is
//!   gone (or another run's) was cut short with its replica: it is read as
//!   failed.

use crate::Clock;
use crate::admin::{store_error, tenant_id};
use crate::audit::Auditor;
use csp_cache::Cache;
use csp_domain::{AuditStatus, ErrorCode, ImportState, TenantId, UserId};
use csp_http::HttpClient;
use csp_proto::v1 as pb;
use csp_rpc::{status, status_with_message};
use csp_secrets::Keyring;
use csp_store::Store;
use csp_tenant_tool::import::{Import, ImportError, Progress, Range};
use csp_ticketing::connector::ClientOptions;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;

/// How long a lock lives without being renewed.
pub(crate) const LOCK_TTL: Duration = Duration::from_secs(60);
/// How often a running import renews its lock.
pub(crate) const LOCK_RENEW: Duration = Duration::from_secs(15);
/// How long an import's progress is kept after its last write.
pub(crate) const PROGRESS_TTL: Duration = Duration::from_secs(24 * 3600);

pub(crate) fn lock_key(tenant: &TenantId) -> String {
    format!("tickets-import-lock:{tenant}")
}

pub(crate) fn progress_key(tenant: &TenantId) -> String {
    format!("tickets-import:{tenant}")
}

/// An import's progress as the cache holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// Which run: a lock holding another run's id is not this one's.
    run_id: uuid::Uuid,
    tenant_id: TenantId,
    state: ImportState,
    pages: u64,
    imported: u64,
    skipped: u64,
    total: Option<u64>,
    error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    finished_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
}

impl Record {
    fn to_proto(&self) -> pb::ImportProgress {
        let rfc = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        pb::ImportProgress {
            tenant_id: self.tenant_id.to_string(),
            state: self.state.as_str().to_owned(),
            pages: self.pages,
            imported: self.imported,
            skipped: self.skipped,
            total: self.total,
            error: self.error.clone().unwrap_or_default(),
            started_at: rfc(self.started_at),
            finished_at: self.finished_at.map(rfc).unwrap_or_default(),
            from: rfc(self.from),
            to: rfc(self.to),
        }
    }

    fn advance(&mut self, p: Progress) {
        self.pages = p.pages;
        self.imported = p.imported;
        self.skipped = p.skipped;
        self.total = p.total;
    }
}

/// The message of a run whose replica stopped without saying so.
const CUT_SHORT: &str = "The import stopped with the tickets service replica running it; \
     start it again (tickets already imported are kept).";

pub(crate) struct Imports {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) keyring: Option<Keyring>,
    pub(crate) http: HttpClient,
    pub(crate) audit: Auditor,
    pub(crate) clock: Arc<dyn Clock>,
    /// Cancelled when the server stops: running imports record that they
    /// stopped and release their locks.
    pub(crate) stop: CancellationToken,
    pub(crate) tasks: TaskTracker,
    /// How the tool is called (tests shorten the retries).
    pub(crate) options: ClientOptions,
}

fn cache_error(e: csp_cache::Error) -> Status {
    tracing::error!(error = %e, "cache failed");
    status(ErrorCode::Unavailable, "cache unavailable")
}

fn bad_request(message: impl Into<String>) -> Status {
    status_with_message(ErrorCode::InvalidRequest, message)
}

fn day(field: &str, text: &str) -> Result<Date, Status> {
    Date::parse(
        text.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| bad_request(format!("{field} must be a date as YYYY-MM-DD")))
}

/// The period of a request, checked.
fn range(r: &pb::StartImportRequest, now: OffsetDateTime) -> Result<Range, Status> {
    let (start, end) = (r.start_date.trim(), r.end_date.trim());
    match (start.is_empty(), end.is_empty()) {
        (true, true) => {
            let days = match r.days {
                0 => Range::DEFAULT_DAYS,
                d if d > Range::MAX_DAYS => {
                    return Err(bad_request(format!(
                        "days must be between 1 and {}",
                        Range::MAX_DAYS
                    )));
                }
                d => d,
            };
            Ok(Range::last_days(now, days))
        }
        (false, false) => {
            let (start, end) = (day("start_date", start)?, day("end_date", end)?);
            Range::dates(start, end, now)
                .ok_or_else(|| bad_request(format!("end_date {end} is before start_date {start}")))
        }
        _ => Err(bad_request(
            "Send both start_date and end_date, or neither (then days).",
        )),
    }
}

impl Imports {
    /// Starts an import of the tenant, or answers the one running.
    pub(crate) async fn start(
        &self,
        r: pb::StartImportRequest,
        actor: Option<UserId>,
    ) -> Result<pb::ImportStarted, Status> {
        let tenant = tenant_id(&r.tenant_id)?;
        let now = self.clock.now();
        let range = range(&r, now)?;
        // Opening checks the tenant and its settings before anything runs:
        // what cannot work is refused now, not reported later.
        let import = Import::open(
            self.store.as_ref(),
            &tenant,
            self.keyring.as_ref(),
            self.http.clone(),
            self.options,
            range,
        )
        .await
        .map_err(|e| match e {
            ImportError::UnknownTenant(id) => crate::admin::not_found(id.as_str()),
            ImportError::Store { what, source } => {
                tracing::error!(tenant_id = %tenant, what, "import could not start");
                store_error(source)
            }
            e => bad_request(e.to_string()),
        })?;
        let record = Record {
            run_id: uuid::Uuid::new_v4(),
            tenant_id: tenant.clone(),
            state: ImportState::Running,
            pages: 0,
            imported: 0,
            skipped: 0,
            total: None,
            error: None,
            started_at: now,
            finished_at: None,
            from: range.from,
            to: range.to,
        };
        let json = serde_json::to_string(&record).expect("an import record is JSON");
        let taken = self
            .cache
            .put_if_absent(&lock_key(&tenant), &json, LOCK_TTL)
            .await
            .map_err(cache_error)?;
        if !taken {
            let running = match self.read(&tenant).await? {
                Some(p) if p.state == ImportState::Running => p,
                // Between the other run taking the lock and writing its
                // progress: the lock holds its first progress.
                _ => self.lock_holder(&tenant).await?.ok_or_else(|| {
                    status_with_message(
                        ErrorCode::Unavailable,
                        "Another import of this tenant is just ending; try again.",
                    )
                })?,
            };
            return Ok(pb::ImportStarted {
                started: false,
                progress: Some(running.to_proto()),
            });
        }
        if let Err(e) = self.write(&record).await {
            let _ = self.cache.delete(&lock_key(&tenant)).await;
            return Err(e);
        }
        self.audit.record(
            actor,
            "tenant.import",
            serde_json::json!({
                "tenant_id": tenant.as_str(),
                "from": record.from.format(&Rfc3339).unwrap_or_default(),
                "to": record.to.format(&Rfc3339).unwrap_or_default(),
            }),
            AuditStatus::Success,
        );
        tracing::info!(tenant_id = %tenant, operation = "tenant.import", status = "started",
            run_id = %record.run_id, "history import started");
        let run = Run {
            store: self.store.clone(),
            cache: self.cache.clone(),
            clock: self.clock.clone(),
            stop: self.stop.clone(),
        };
        let answer = record.to_proto();
        self.tasks.spawn(run.run(import, record));
        Ok(pb::ImportStarted {
            started: true,
            progress: Some(answer),
        })
    }

    /// The tenant's latest import.
    pub(crate) async fn get(&self, tenant: &str) -> Result<pb::ImportProgress, Status> {
        let tenant = tenant_id(tenant)?;
        let mut record = self.read(&tenant).await?.ok_or_else(|| {
            status_with_message(
                ErrorCode::NotFound,
                format!("Tenant '{tenant}' has no import in the last 24 hours."),
            )
        })?;
        if record.state == ImportState::Running {
            let holder = self.lock_holder(&tenant).await?;
            if holder.is_none_or(|h| h.run_id != record.run_id) {
                record.state = ImportState::Failed;
                record.error = Some(CUT_SHORT.to_owned());
            }
        }
        Ok(record.to_proto())
    }

    async fn read(&self, tenant: &TenantId) -> Result<Option<Record>, Status> {
        let json = self
            .cache
            .get(&progress_key(tenant))
            .await
            .map_err(cache_error)?;
        Ok(json.and_then(|j| parsed(&j)))
    }

    async fn lock_holder(&self, tenant: &TenantId) -> Result<Option<Record>, Status> {
        let json = self
            .cache
            .get(&lock_key(tenant))
            .await
            .map_err(cache_error)?;
        Ok(json.and_then(|j| parsed(&j)))
    }

    async fn write(&self, record: &Record) -> Result<(), Status> {
        write(self.cache.as_ref(), record)
            .await
            .map_err(cache_error)
    }
}

fn parsed(json: &str) -> Option<Record> {
    serde_json::from_str(json)
        .inspect_err(
            |e| tracing::warn!(error = %e, "an import progress in the cache is unreadable"),
        )
        .ok()
}

async fn write(cache: &dyn Cache, record: &Record) -> Result<(), csp_cache::Error> {
    let json = serde_json::to_string(record).expect("an import record is JSON");
    cache
        .put(&progress_key(&record.tenant_id), &json, PROGRESS_TTL)
        .await
}

/// One import running in the background.
struct Run {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
}

impl Run {
    async fn run(self, mut import: Import, mut record: Record) {
        let tenant = record.tenant_id.clone();
        let lock = lock_key(&tenant);
        let lock_value = serde_json::to_string(&record).expect("an import record is JSON");
        // Renewed beside the import, not between its pages: a page may take
        // longer than the lock lives (a slow tool, its retries).
        let renewing = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            self.cache.clone(),
            lock.clone(),
            lock_value,
            renewing.clone(),
        ));
        let outcome = loop {
            tokio::select! {
                () = self.stop.cancelled() => {
                    break Err("The tickets service stopped before the import ended; start it again \
                               (tickets already imported are kept).".to_owned());
                }
                page = import.next_page(self.store.as_ref()) => match page {
                    Ok(Some(page)) => {
                        record.advance(page.progress);
                        if let Err(e) = write(self.cache.as_ref(), &record).await {
                            tracing::warn!(tenant_id = %tenant, error = %e, "import progress not written");
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(ImportError::Store { what, source }) => {
                        tracing::error!(tenant_id = %tenant, what, error = %source, "import failed");
                        break Err(format!("The tickets store failed while {what}; start the import again."));
                    }
                    Err(e) => break Err(e.to_string()),
                },
            }
        };
        renewing.cancel();
        let _ = renewer.await;
        record.advance(import.progress());
        record.finished_at = Some(self.clock.now());
        match outcome {
            Ok(()) => {
                record.state = ImportState::Completed;
                tracing::info!(tenant_id = %tenant, operation = "tenant.import", status = "completed",
                    imported = record.imported, skipped = record.skipped, "history import completed");
            }
            Err(error) => {
                tracing::warn!(tenant_id = %tenant, operation = "tenant.import", status = "failed",
                    imported = record.imported, error = %error, "history import failed");
                record.state = ImportState::Failed;
                record.error = Some(error);
            }
        }
        // The final progress first, then the lock: a reader never sees a
        // running import without its lock unless its replica died.
        if let Err(e) = write(self.cache.as_ref(), &record).await {
            tracing::error!(tenant_id = %tenant, error = %e, "import outcome not written");
        }
        if let Err(e) = self.cache.delete(&lock).await {
            tracing::warn!(tenant_id = %tenant, error = %e, "import lock not released (it expires)");
        }
    }
}

/// Keeps the lock alive until `done`.
async fn renew(cache: Arc<dyn Cache>, lock: String, value: String, done: CancellationToken) {
    let mut every = tokio::time::interval(LOCK_RENEW);
    every.tick().await;
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            _ = every.tick() => {
                if let Err(e) = cache.put(&lock, &value, LOCK_TTL).await {
                    tracing::warn!(lock, error = %e, "import lock not renewed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_days_or_both_dates() {
        let now = time::macros::datetime!(2026-03-10 12:00 UTC);
        let req = |days, start: &str, end: &str| pb::StartImportRequest {
            tenant_id: "acme".into(),
            days,
            start_date: start.into(),
            end_date: end.into(),
        };
        assert_eq!(
            range(&req(0, "", ""), now).unwrap(),
            Range::last_days(now, 90)
        );
        assert_eq!(
            range(&req(7, "", ""), now).unwrap(),
            Range::last_days(now, 7)
        );
        assert!(range(&req(36_501, "", ""), now).is_err());
        let r = range(&req(0, "2026-01-01", "2026-01-31"), now).unwrap();
        assert_eq!(r.from, time::macros::datetime!(2026-01-01 0:00 UTC));
        for (start, end, why) in [
            ("2026-01-31", "2026-01-01", "is before"),
            ("2026-01-01", "", "both"),
            ("01/02/2026", "2026-01-31", "YYYY-MM-DD"),
        ] {
            let e = range(&req(0, start, end), now).unwrap_err();
            assert!(e.message().contains(why), "{start} {end}: {}", e.message());
        }
    }
}
