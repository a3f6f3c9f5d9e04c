//! `csp tickets import`: seeds a tenant's ticket history (seed story 2.5A)
//! with the resolved and closed tickets of its ticketing tool, read page by
//! page through the tool's connector (`TicketingClient::list_resolved` and
//! its cursor) and upserted by (tenant, ticket id), so running it again
//! imports nothing twice. It works on the store directly, like
//! `csp audit verify`: a deployment's Postgres, or a `csp dev` data
//! directory (whose kept secret key opens the tenant's credential).

use crate::opts::{SecretKeyOpts, StoreLocation};
use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use csp_domain::TenantId;
use csp_tenant_tool::import::{Import, ImportError, Range, percent};
use csp_ticketing::connector::ClientOptions;
use std::io::{IsTerminal, Write};
use time::{Date, OffsetDateTime};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Import a tenant's resolved and closed tickets from its ticketing
    /// tool into the ticket history the workers search (idempotent).
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
    /// Opens the tenant's sealed credential (default with a `csp dev` data
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

async fn import(o: ImportOptions) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&o.tenant_id)
        .map_err(|e| anyhow!("--tenant-id '{}' is not a tenant id: {e}", o.tenant_id))?;
    let now = OffsetDateTime::now_utc();
    let range = match (o.start_date, o.end_date) {
        (Some(start), Some(end)) => Range::dates(start, end, now)
            .ok_or_else(|| anyhow!("--end-date {end} is before --start-date {start}"))?,
        _ => Range::last_days(now, o.days),
    };

    let store = o.store.open().await?;
    let keyring = match o.keys.keyring()? {
        Some(k) => Some(k),
        None => match o.store.dev_data_dir() {
            Some(dir) => crate::dev::kept_keyring(dir)?,
            None => None,
        },
    };
    let http = csp_http::HttpClient::new().context("building the HTTP client")?;
    let mut import = Import::open(
        &*store,
        &tenant,
        keyring.as_ref(),
        http,
        ClientOptions::default(),
        range,
    )
    .await
    .map_err(failure)?;

    println!(
        "Importing resolved and closed tickets of '{tenant}' from {} at {}, resolved {} to {}",
        import.tool().display_name(),
        import.place(),
        range.from.date(),
        range.to.date()
    );
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    loop {
        let page = match import.next_page(&*store).await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(e) => {
                progress.finish();
                return Err(failure(e));
            }
        };
        for skipped in &page.skipped {
            progress.line(&format!(
                "Skipped ticket {}: {}",
                skipped.ticket_id, skipped.reason
            ));
        }
        let seen = page.progress.seen();
        let total = page.progress.total.unwrap_or(seen);
        progress.line(&format!(
            "Imported {}/{} tickets ({}%)",
            page.progress.imported,
            total,
            percent(seen, total)
        ));
        progress.bar(seen, total);
    }
    progress.finish();
    let counts = import.progress();
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

/// An import's failure for the terminal: the store's with its cause.
fn failure(e: ImportError) -> anyhow::Error {
    match e {
        ImportError::Store { what, source } => anyhow::Error::new(source).context(what),
        e => anyhow!(e),
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
    fn dates_are_days() {
        assert_eq!(date("2026-01-31").unwrap().to_string(), "2026-01-31");
        assert!(date("31/01/2026").unwrap_err().contains("YYYY-MM-DD"));
    }
}
