//! `csp tickets import`: seeds a tenant's ticket history (seed story 2.5A)
//! with the resolved and closed requests of its ServiceDesk Plus, read page
//! by page (100 a page) and upserted by (tenant, ticket id), so running it
//! again imports nothing twice. It works on the store directly, like
//! `csp audit verify`: a deployment's Postgres, or a `csp dev` data
//! directory (whose kept secret key opens the tenant's credential).

use crate::opts::{SecretKeyOpts, StoreLocation};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use csp_domain::{HistorySource, TenantId};
use csp_http::HttpError;
use csp_store::{HistoryTicket, Owner, Store};
use csp_ticketing::servicedesk::{SdpAuth, SdpClient, SdpError};
use std::io::{IsTerminal, Write};
use time::{Date, Duration, OffsetDateTime, Time};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Import a tenant's resolved and closed tickets from its ServiceDesk
    /// Plus into the ticket history the workers search (idempotent).
    Import(ImportOptions),
}

#[derive(Args)]
pub(crate) struct ImportOptions {
    /// The tenant whose tickets are imported.
    #[arg(long)]
    tenant_id: String,
    /// Tickets resolved in the last this many days.
    #[arg(long, default_value_t = 90, conflicts_with_all = ["start_date", "end_date"],
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// First day (YYYY-MM-DD, UTC) of the resolution dates imported, with
    /// --end-date instead of --days.
    #[arg(long, requires = "end_date", value_parser = date)]
    start_date: Option<Date>,
    /// Last day (YYYY-MM-DD, UTC, included).
    #[arg(long, requires = "start_date", value_parser = date)]
    end_date: Option<Date>,
    #[command(flatten)]
    store: StoreLocation,
    /// Opens the tenant's sealed API key (default with a `csp dev` data
    /// directory: the key it keeps there).
    #[command(flatten)]
    keys: SecretKeyOpts,
}

fn date(text: &str) -> Result<Date, String> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| format!("expected a date as YYYY-MM-DD, got '{text}'"))
}

pub(crate) async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Import(o) => import(o).await,
    }
}

/// What one import did.
#[derive(Debug, Default)]
struct Counts {
    imported: u64,
    skipped: u64,
}

async fn import(o: ImportOptions) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&o.tenant_id)
        .map_err(|e| anyhow!("--tenant-id '{}' is not a tenant id: {e}", o.tenant_id))?;
    let now = OffsetDateTime::now_utc();
    let (from, to) = match (o.start_date, o.end_date) {
        (Some(start), Some(end)) => {
            if end < start {
                bail!("--end-date {end} is before --start-date {start}");
            }
            let to = end
                .next_day()
                .map_or(now, |d| d.with_time(Time::MIDNIGHT).assume_utc())
                - Duration::milliseconds(1);
            (start.with_time(Time::MIDNIGHT).assume_utc(), to)
        }
        _ => (now - Duration::days(i64::from(o.days)), now),
    };

    let store = o.store.open().await?;
    let record = store
        .tenant(&tenant)
        .await
        .context("reading the tenant")?
        .ok_or_else(|| {
            anyhow!("unknown tenant '{tenant}': create it first (POST /api/v1/tenants)")
        })?;
    if !record.is_active {
        bail!(
            "tenant '{tenant}' is inactive (deleted): reactivate it before importing its tickets"
        );
    }
    let settings: csp_tickets::Settings = serde_json::from_value(record.settings.clone())
        .map_err(|e| anyhow!("tenant '{tenant}' has invalid ServiceDesk Plus settings: {e}"))?;
    let auth = credential(&*store, &tenant, &settings, &o).await?;
    let http = csp_http::HttpClient::new().context("building the HTTP client")?;
    let client = SdpClient::new(http, &settings.servicedesk_url, auth)
        .map_err(|e| anyhow!("tenant '{tenant}': {e}"))?;
    let shown_url = csp_redact::url(&settings.servicedesk_url);

    println!(
        "Importing resolved and closed tickets of '{tenant}' from {shown_url}, resolved {} to {}",
        from.date(),
        to.date()
    );
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut counts = Counts::default();
    let mut total: Option<u64> = None;
    let mut start_index = 1;
    loop {
        let page = client
            .list_resolved(from, to, start_index)
            .await
            .map_err(|e| sdp_failure(e, &shown_url))?;
        let total = *total.get_or_insert_with(|| {
            page.total_count
                .unwrap_or((page.tickets.len() + page.skipped.len()) as u64)
        });
        for skipped in &page.skipped {
            tracing::warn!(tenant_id = %tenant, ticket_id = %skipped.ticket_id, reason = %skipped.reason, "ticket skipped");
            progress.line(&format!(
                "Skipped ticket {}: {}",
                skipped.ticket_id, skipped.reason
            ));
        }
        let tickets: Vec<HistoryTicket> = page
            .tickets
            .into_iter()
            .map(|t| HistoryTicket {
                ticket_id: t.ticket_id,
                description: t.description,
                resolution: t.resolution,
                resolved_date: t.resolved_date,
                tags: t.tags,
            })
            .collect();
        if !tickets.is_empty() {
            store
                .upsert_ticket_history(
                    &tenant,
                    &tickets,
                    HistorySource::BulkImport,
                    OffsetDateTime::now_utc(),
                )
                .await
                .context("storing the tickets")?;
        }
        counts.imported += tickets.len() as u64;
        counts.skipped += page.skipped.len() as u64;
        let seen = counts.imported + counts.skipped;
        let total = total.max(seen);
        progress.line(&format!(
            "Imported {}/{} tickets ({}%)",
            counts.imported,
            total,
            percent(seen, total)
        ));
        progress.bar(seen, total);
        if !page.has_more_rows || page.next_start_index <= start_index {
            break;
        }
        start_index = page.next_start_index;
    }
    progress.finish();
    let stored = store
        .count_ticket_history(&tenant)
        .await
        .context("counting the tenant's ticket history")?;
    println!(
        "Done: {} tickets imported, {} skipped (ticket_history_stored_total{{tenant_id=\"{tenant}\",source=\"bulk_import\"}}: stored {}, rejected {}); '{tenant}' now has {stored} tickets in its history",
        counts.imported, counts.skipped, counts.imported, counts.skipped
    );
    Ok(())
}

fn percent(done: u64, total: u64) -> u64 {
    (done.min(total) * 100).checked_div(total).unwrap_or(100)
}

/// The tenant's ServiceDesk Plus credential, opened with the keyring.
async fn credential(
    store: &dyn Store,
    tenant: &TenantId,
    settings: &csp_tickets::Settings,
    o: &ImportOptions,
) -> anyhow::Result<SdpAuth> {
    let keyring = match o.keys.keyring()? {
        Some(k) => Some(k),
        None => match o.store.dev_data_dir() {
            Some(dir) => crate::dev::kept_keyring(dir)?,
            None => None,
        },
    };
    let keyring = keyring.ok_or_else(|| {
        anyhow!("CSP_SECRET_KEY is required to open tenant '{tenant}''s api_key (the key the tickets service uses)")
    })?;
    let sealed = store
        .secrets(&Owner::tenant(tenant.as_str()))
        .await
        .context("reading the tenant's credentials")?
        .into_iter()
        .find(|s| s.key == csp_tickets::API_KEY)
        .ok_or_else(|| anyhow!("tenant '{tenant}' has no api_key"))?;
    let key = keyring
        .open(&csp_secrets::Sealed {
            token: sealed.encrypted_value,
            key_version: sealed.encryption_key_version,
        })
        .map_err(|e| {
            anyhow!("tenant '{tenant}''s api_key cannot be opened with this CSP_SECRET_KEY: {e}")
        })?;
    Ok(match settings.servicedesk_auth {
        csp_tickets::ServiceDeskAuth::Authtoken => SdpAuth::AuthToken(key),
        csp_tickets::ServiceDeskAuth::ZohoOauth => SdpAuth::ZohoOAuth(key),
    })
}

/// A failed ServiceDesk Plus call, in words an admin can act on.
fn sdp_failure(e: SdpError, url: &str) -> anyhow::Error {
    match &e {
        SdpError::Http(HttpError::Timeout | HttpError::Connect(_)) => {
            anyhow!(
                "ServiceDesk Plus at {url} could not be reached ({e}): check the tenant's servicedesk_url and the network"
            )
        }
        SdpError::Http(HttpError::Tls(_)) => anyhow!(
            "the TLS connection to ServiceDesk Plus at {url} failed ({e}): check the URL's scheme and the server's certificate"
        ),
        _ => match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => anyhow!(
                "ServiceDesk Plus at {url} rejected the tenant's api_key ({e}): update it with PATCH /api/v1/tenants/<tenant_id>"
            ),
            Some(404) => anyhow!(
                "no ServiceDesk Plus API v3 at {url} ({e}): cloud URLs end in /app/<portal>"
            ),
            _ => anyhow!("importing from ServiceDesk Plus at {url} failed: {e}"),
        },
    }
}

/// Progress: a log line per page on stdout, and on a terminal a bar on
/// stderr, redrawn in place.
struct Progress {
    terminal: bool,
    drawn: bool,
}

impl Progress {
    const WIDTH: u64 = 30;

    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            drawn: false,
        }
    }

    fn line(&mut self, text: &str) {
        self.clear();
        println!("{text}");
    }

    fn bar(&mut self, done: u64, total: u64) {
        if !self.terminal {
            return;
        }
        let filled = (done.min(total) * Self::WIDTH)
            .checked_div(total)
            .unwrap_or(Self::WIDTH);
        let bar: String = (0..Self::WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r[{bar}] {done}/{total} ({}%)", percent(done, total));
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }

    fn finish(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_whole_and_bounded() {
        assert_eq!(percent(1000, 5000), 20);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(percent(7, 5), 100);
        assert_eq!(percent(99, 100), 99);
    }

    #[test]
    fn dates_are_days() {
        assert_eq!(date("2026-01-31").unwrap().to_string(), "2026-01-31");
        assert!(date("31/01/2026").unwrap_err().contains("YYYY-MM-DD"));
    }
}
