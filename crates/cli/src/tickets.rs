//! `csp tickets import`: seeds a tenant's ticket history (seed story 2.5A)
//! with the resolved and closed tickets of its ticketing tool, read page by
//! page through the tool's connector (`TicketingClient::list_resolved` and
//! its cursor) and upserted by (tenant, ticket id), so running it again
//! imports nothing twice. It works on the store directly, like
//! `csp audit verify`: a deployment's Postgres, or a `csp dev` data
//! directory (whose kept secret key opens the tenant's credential).

use crate::opts::{SecretKeyOpts, StoreLocation};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use csp_domain::{HistorySource, TenantId};
use csp_http::HttpError;
use csp_store::HistoryTicket;
use csp_ticketing::connector::{ApiError, ClientOptions, FieldKind, Settings, ToolType};
use csp_tickets_worker::ToolSettingsError;
use std::io::{IsTerminal, Write};
use time::{Date, Duration, OffsetDateTime, Time};

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
    let tool = ToolType::parse(&record.tool_type).map_err(|e| anyhow!("tenant '{tenant}': {e}"))?;
    let keyring = match o.keys.keyring()? {
        Some(k) => Some(k),
        None => match o.store.dev_data_dir() {
            Some(dir) => crate::dev::kept_keyring(dir)?,
            None => None,
        },
    };
    let settings = csp_tickets_worker::tool_settings(&record, tool, &*store, keyring.as_ref())
        .await
        .map_err(|e| settings_failure(e, &tenant, tool))?;
    let http = csp_http::HttpClient::new().context("building the HTTP client")?;
    let client = csp_ticketing::registry::connector(tool)
        .client(http, &settings, ClientOptions::default())
        .map_err(|e| {
            anyhow!(
                "tenant '{tenant}' has invalid {} settings: {e}",
                tool.display_name()
            )
        })?;
    let place = Place::of(tool, &settings);

    println!(
        "Importing resolved and closed tickets of '{tenant}' from {} at {}, resolved {} to {}",
        tool.display_name(),
        place.shown,
        from.date(),
        to.date()
    );
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut counts = Counts::default();
    let mut total: Option<u64> = None;
    let mut cursor: Option<String> = None;
    loop {
        let page = client
            .list_resolved(from, to, cursor.as_deref())
            .await
            .map_err(|e| api_failure(&e, &place))?;
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
        match page.next {
            None => break,
            // A cursor that does not move would read the same page forever.
            Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                progress.finish();
                bail!(
                    "{} at {} gave the same page twice; the import stopped after {seen} tickets",
                    tool.display_name(),
                    place.shown
                );
            }
            Some(next) => cursor = Some(next),
        }
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

/// A tenant's settings that could not be read, in words an admin can act on.
fn settings_failure(e: ToolSettingsError, tenant: &TenantId, tool: ToolType) -> anyhow::Error {
    match e {
        ToolSettingsError::Store(e) => {
            anyhow::Error::new(e).context("reading the tenant's credentials")
        }
        ToolSettingsError::NotAnObject => anyhow!(
            "tenant '{tenant}' has invalid {} settings: not a JSON object",
            tool.display_name()
        ),
        ToolSettingsError::NoKeyring { field } => anyhow!(
            "CSP_SECRET_KEY is required to open tenant '{tenant}''s {field} (the key the tickets service uses)"
        ),
        ToolSettingsError::Unseal { field, source } => anyhow!(
            "tenant '{tenant}''s {field} cannot be opened with this CSP_SECRET_KEY: {source}"
        ),
    }
}

/// Where a tenant's tool is, as errors name it.
struct Place {
    tool: ToolType,
    /// Its URL (redacted), or the setting that locates it.
    shown: String,
    /// The setting that says where the tool is.
    location: &'static str,
    /// The settings a tool checks when it refuses a call.
    credentials: String,
}

impl Place {
    fn of(tool: ToolType, settings: &Settings) -> Self {
        let fields = csp_ticketing::registry::connector(tool).fields();
        let plain = |kind: fn(&FieldKind) -> bool| {
            fields.iter().filter(move |f| !f.secret && kind(&f.kind))
        };
        // A URL when there is one, else the text that names the place (a
        // Zendesk subdomain, say).
        let (location, shown) = plain(|k| matches!(k, FieldKind::Url))
            .find_map(|f| settings.value(f.name).map(|v| (f.name, csp_redact::url(v))))
            .or_else(|| {
                plain(|k| matches!(k, FieldKind::Text)).find_map(|f| {
                    settings
                        .value(f.name)
                        .map(|v| (f.name, format!("{} '{v}'", f.name)))
                })
            })
            .unwrap_or(("settings", "its configured address".to_owned()));
        let credentials = fields
            .iter()
            .filter(|f| f.secret || matches!(f.kind, FieldKind::Email))
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(" and ");
        Self {
            tool,
            shown,
            location,
            credentials,
        }
    }
}

/// A failed call to the tenant's tool, in words an admin can act on.
fn api_failure(e: &ApiError, at: &Place) -> anyhow::Error {
    let name = at.tool.display_name();
    let url = &at.shown;
    // The tool is named already; its HTTP error says what happened.
    let why = match e {
        ApiError::Http { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    match e {
        ApiError::Http {
            source: HttpError::Timeout | HttpError::Connect(_),
            ..
        } => anyhow!(
            "{name} at {url} could not be reached ({why}): check the tenant's {} and the network",
            at.location
        ),
        ApiError::Http {
            source: HttpError::Tls(_),
            ..
        } => anyhow!(
            "the TLS connection to {name} at {url} failed ({why}): check the URL's scheme and the server's certificate"
        ),
        _ => match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => anyhow!(
                "{name} at {url} rejected the tenant's {} ({why}): update it with PATCH /api/v1/tenants/<tenant_id>",
                at.credentials
            ),
            Some(404) => match at.tool {
                ToolType::ServicedeskPlus => anyhow!(
                    "no ServiceDesk Plus API v3 at {url} ({why}): cloud URLs end in /app/<portal>"
                ),
                _ => anyhow!(
                    "no {name} API at {url} ({why}): check the tenant's {}",
                    at.location
                ),
            },
            _ => anyhow!("importing from {name} at {url} failed: {why}"),
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
    fn errors_name_the_tools_own_settings() {
        let mut settings = Settings::default();
        settings.values.insert(
            "servicedesk_url".into(),
            "https://sdp.example/app/itdesk".into(),
        );
        let place = Place::of(ToolType::ServicedeskPlus, &settings);
        assert_eq!(place.shown, "https://sdp.example/app/itdesk");
        assert_eq!(place.location, "servicedesk_url");
        assert_eq!(place.credentials, "api_key");
        let refused = ApiError::Http {
            tool: ToolType::ServicedeskPlus,
            source: HttpError::Status {
                status: 401u16.try_into().unwrap(),
                body: String::new(),
            },
        };
        let text = api_failure(&refused, &place).to_string();
        assert!(
            text.starts_with(
                "ServiceDesk Plus at https://sdp.example/app/itdesk rejected the tenant's api_key (HTTP 401"
            ),
            "{text}"
        );
        let unreachable = ApiError::Http {
            tool: ToolType::ServicedeskPlus,
            source: HttpError::Timeout,
        };
        let text = api_failure(&unreachable, &place).to_string();
        assert!(
            text.ends_with("check the tenant's servicedesk_url and the network"),
            "{text}"
        );
    }

    #[test]
    fn dates_are_days() {
        assert_eq!(date("2026-01-31").unwrap().to_string(), "2026-01-31");
        assert!(date("31/01/2026").unwrap_err().contains("YYYY-MM-DD"));
    }
}
