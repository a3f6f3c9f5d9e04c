//! Importing a tenant's resolved and closed tickets into its ticket history
//! (seed story 2.5A): read page by page through the tool's connector
//! ([`TicketingClient::list_resolved`] and its cursor) and upserted by
//! (tenant, ticket id), so importing again stores nothing twice. Driven a
//! page at a time ([`Import::next_page`]) so that each caller reports
//! progress its own way: `csp tickets import` prints it, the tickets service
//! keeps it in the shared cache for the Tenants page.
//!
//! Must never: put a credential in an error (the tool's errors are
//! redacted by `csp-http`, URLs by `csp-redact`); read the same page
//! forever (a cursor that does not move stops the import).

use crate::{ToolSettingsError, tool_settings};
use csp_domain::{HistorySource, TenantId};
use csp_http::{HttpClient, HttpError};
use csp_secrets::Keyring;
use csp_store::{HistoryTicket, Store};
use csp_ticketing::connector::{
    ApiError, ClientOptions, FieldKind, Settings, Skipped, TicketingClient, ToolType,
};
use csp_ticketing::registry::connector;
use time::{Date, Duration, OffsetDateTime, Time};

/// The resolution dates an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

impl Range {
    /// What an import reads when nobody says: the last 90 days.
    pub const DEFAULT_DAYS: u32 = 90;
    /// The most days an import may reach back (100 years).
    pub const MAX_DAYS: u32 = 36_500;

    /// The last `days` days up to `now`.
    pub fn last_days(now: OffsetDateTime, days: u32) -> Self {
        Self {
            from: now - Duration::days(i64::from(days)),
            to: now,
        }
    }

    /// From the start of `start` to the end of `end` (UTC, both included);
    /// `None` when `end` is before `start`.
    pub fn dates(start: Date, end: Date, now: OffsetDateTime) -> Option<Self> {
        if end < start {
            return None;
        }
        let to = end
            .next_day()
            .map_or(now, |d| d.with_time(Time::MIDNIGHT).assume_utc())
            - Duration::milliseconds(1);
        Some(Self {
            from: start.with_time(Time::MIDNIGHT).assume_utc(),
            to,
        })
    }
}

/// How far an import got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Pages read from the tool.
    pub pages: u64,
    /// Tickets stored in the history.
    pub imported: u64,
    /// Tickets the tool listed that could not be taken (no resolution, say).
    pub skipped: u64,
    /// Every ticket of the range, when the tool says (never below what was
    /// seen).
    pub total: Option<u64>,
}

impl Progress {
    /// Tickets imported or skipped.
    pub fn seen(&self) -> u64 {
        self.imported + self.skipped
    }
}

/// Whole percent of `done` out of `total`, at most 100 (100 of nothing).
pub fn percent(done: u64, total: u64) -> u64 {
    (done.min(total) * 100).checked_div(total).unwrap_or(100)
}

/// One page imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageDone {
    /// The tickets of the page that were not taken, and why (each logged).
    pub skipped: Vec<Skipped>,
    /// After this page.
    pub progress: Progress,
    /// No page follows.
    pub last: bool,
}

/// Why an import could not start or stopped; the message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("unknown tenant '{0}': create it first (POST /api/v1/tenants)")]
    UnknownTenant(TenantId),
    #[error("tenant '{0}' is inactive (deleted): reactivate it before importing its tickets")]
    Inactive(TenantId),
    /// The store failed while doing `what`; it may answer later.
    #[error("{what}")]
    Store {
        what: &'static str,
        #[source]
        source: csp_store::Error,
    },
    /// The tenant's settings cannot make a client (missing, invalid, sealed
    /// without a key).
    #[error("{0}")]
    Settings(String),
    /// The tool refused a call, failed or could not be reached.
    #[error("{0}")]
    Tool(String),
    /// The tool answered the same cursor again.
    #[error("{tool} at {place} gave the same page twice; the import stopped after {seen} tickets")]
    Stuck {
        tool: &'static str,
        place: String,
        seen: u64,
    },
}

/// An import under way: the tenant's tool client and how far it got.
#[derive(Debug)]
pub struct Import {
    tenant: TenantId,
    tool: ToolType,
    place: Place,
    client: Box<dyn TicketingClient>,
    range: Range,
    cursor: Option<String>,
    finished: bool,
    progress: Progress,
}

impl Import {
    /// Reads the tenant (it must exist and be active), opens its tool's
    /// secret fields with `keyring` and makes its tool's client. Nothing is
    /// called yet.
    pub async fn open(
        store: &dyn Store,
        tenant: &TenantId,
        keyring: Option<&Keyring>,
        http: HttpClient,
        options: ClientOptions,
        range: Range,
    ) -> Result<Self, ImportError> {
        let record = store
            .tenant(tenant)
            .await
            .map_err(|source| ImportError::Store {
                what: "reading the tenant",
                source,
            })?
            .ok_or_else(|| ImportError::UnknownTenant(tenant.clone()))?;
        if !record.is_active {
            return Err(ImportError::Inactive(tenant.clone()));
        }
        let tool = ToolType::parse(&record.tool_type)
            .map_err(|e| ImportError::Settings(format!("tenant '{tenant}': {e}")))?;
        let settings = tool_settings(&record, tool, store, keyring)
            .await
            .map_err(|e| settings_failure(e, tenant, tool))?;
        let client = connector(tool)
            .client(http, &settings, options)
            .map_err(|e| {
                ImportError::Settings(format!(
                    "tenant '{tenant}' has invalid {} settings: {e}",
                    tool.display_name()
                ))
            })?;
        Ok(Self {
            tenant: tenant.clone(),
            tool,
            place: Place::of(tool, &settings),
            client,
            range,
            cursor: None,
            finished: false,
            progress: Progress::default(),
        })
    }

    pub fn tool(&self) -> ToolType {
        self.tool
    }

    /// Where the tool is: its URL (redacted) or the setting that names it.
    pub fn place(&self) -> &str {
        &self.place.shown
    }

    pub fn range(&self) -> Range {
        self.range
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// Reads the next page from the tool and stores its tickets; `None`
    /// once the last page was imported.
    pub async fn next_page(&mut self, store: &dyn Store) -> Result<Option<PageDone>, ImportError> {
        if self.finished {
            return Ok(None);
        }
        let page = self
            .client
            .list_resolved(self.range.from, self.range.to, self.cursor.as_deref())
            .await
            .map_err(|e| ImportError::Tool(api_failure(&e, &self.place)))?;
        for skipped in &page.skipped {
            tracing::warn!(tenant_id = %self.tenant, ticket_id = %skipped.ticket_id,
                reason = %skipped.reason, "ticket skipped");
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
                    &self.tenant,
                    &tickets,
                    HistorySource::BulkImport,
                    OffsetDateTime::now_utc(),
                )
                .await
                .map_err(|source| ImportError::Store {
                    what: "storing the tickets",
                    source,
                })?;
        }
        let p = &mut self.progress;
        p.pages += 1;
        p.imported += tickets.len() as u64;
        p.skipped += page.skipped.len() as u64;
        if p.total.is_none() {
            p.total = page.total_count;
        }
        let seen = p.seen();
        p.total = p.total.map(|t| t.max(seen));
        match page.next {
            None => self.finished = true,
            // A cursor that does not move would read the same page forever.
            Some(next) if self.cursor.as_deref() == Some(next.as_str()) => {
                self.finished = true;
                return Err(ImportError::Stuck {
                    tool: self.tool.display_name(),
                    place: self.place.shown.clone(),
                    seen,
                });
            }
            Some(next) => self.cursor = Some(next),
        }
        Ok(Some(PageDone {
            skipped: page.skipped,
            progress: self.progress,
            last: self.finished,
        }))
    }
}

/// A tenant's settings that could not be read, in words an admin can act on.
fn settings_failure(e: ToolSettingsError, tenant: &TenantId, tool: ToolType) -> ImportError {
    ImportError::Settings(match e {
        ToolSettingsError::Store(source) => {
            return ImportError::Store {
                what: "reading the tenant's credentials",
                source,
            };
        }
        ToolSettingsError::NotAnObject => format!(
            "tenant '{tenant}' has invalid {} settings: not a JSON object",
            tool.display_name()
        ),
        ToolSettingsError::NoKeyring { field } => format!(
            "CSP_SECRET_KEY is required to open tenant '{tenant}''s {field} (the key the tickets service uses)"
        ),
        ToolSettingsError::Unseal { field, source } => format!(
            "tenant '{tenant}''s {field} cannot be opened with this CSP_SECRET_KEY: {source}"
        ),
    })
}

/// Where a tenant's tool is, as errors name it.
#[derive(Debug)]
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
        let fields = connector(tool).fields();
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
fn api_failure(e: &ApiError, at: &Place) -> String {
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
        } => format!(
            "{name} at {url} could not be reached ({why}): check the tenant's {} and the network",
            at.location
        ),
        ApiError::Http {
            source: HttpError::Tls(_),
            ..
        } => format!(
            "the TLS connection to {name} at {url} failed ({why}): check the URL's scheme and the server's certificate"
        ),
        _ => match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => format!(
                "{name} at {url} rejected the tenant's {} ({why}): update it with PATCH /api/v1/tenants/<tenant_id>",
                at.credentials
            ),
            Some(404) => match at.tool {
                ToolType::ServicedeskPlus => format!(
                    "no ServiceDesk Plus API v3 at {url} ({why}): cloud URLs end in /app/<portal>"
                ),
                _ => format!(
                    "no {name} API at {url} ({why}): check the tenant's {}",
                    at.location
                ),
            },
            _ => format!("importing from {name} at {url} failed: {why}"),
        },
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
    fn ranges_are_whole_days_or_the_last_days() {
        let now = time::macros::datetime!(2026-03-10 12:00 UTC);
        let r = Range::last_days(now, 90);
        assert_eq!(r.to, now);
        assert_eq!(r.from, now - Duration::days(90));
        let d = |s| Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"));
        let r = Range::dates(d("2026-01-01").unwrap(), d("2026-01-31").unwrap(), now).unwrap();
        assert_eq!(r.from, time::macros::datetime!(2026-01-01 0:00 UTC));
        assert_eq!(
            r.to,
            time::macros::datetime!(2026-02-01 0:00 UTC) - Duration::milliseconds(1)
        );
        assert!(Range::dates(d("2026-02-01").unwrap(), d("2026-01-31").unwrap(), now).is_none());
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
        let text = api_failure(&refused, &place);
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
        let text = api_failure(&unreachable, &place);
        assert!(
            text.ends_with("check the tenant's servicedesk_url and the network"),
            "{text}"
        );
    }
}
