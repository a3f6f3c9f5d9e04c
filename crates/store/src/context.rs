//! What the workers search for context, per tenant: resolved tickets
//! (`ticket_history`), knowledge-base articles (`kb_articles`) and the
//! systems behind IP addresses (`system_inventory`). Every call takes the
//! tenant: on Postgres it runs in that tenant's row-level-security scope,
//! on SQLite with an explicit filter.

use crate::dialect::{Dialect, FullTextIndex};
use crate::error::Error;
use crate::search;
use crate::sql::{Columns, SqlStore, on};
use crate::tenants::unknown_tenant;
use crate::timestamp;
use async_trait::async_trait;
use csp_domain::{HistorySource, TenantId};
use sqlx::Transaction;
use sqlx::types::Json;
use std::net::IpAddr;
use time::OffsetDateTime;
use tracing::instrument;

/// A resolved ticket for the history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTicket {
    pub ticket_id: String,
    pub description: String,
    pub resolution: String,
    pub resolved_date: OffsetDateTime,
    pub tags: Vec<String>,
}

/// A stored resolved ticket with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRecord {
    pub ticket: HistoryTicket,
    pub source: HistorySource,
    pub ingested_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KbArticleRecord {
    pub title: String,
    pub summary: String,
    pub url: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemRecord {
    pub ip: IpAddr,
    pub hostname: String,
    pub role: String,
    pub client: String,
    pub location: String,
}

#[async_trait]
pub trait ContextStore: Send + Sync {
    /// Inserts or updates by (tenant, ticket_id): description, resolution,
    /// resolved date, tags, source and `ingested_at = at` are replaced.
    /// Returns how many rows were written. All or nothing;
    /// [`Error::NotFound`] for an unknown tenant, [`Error::InvalidInput`]
    /// for an empty ticket id.
    async fn upsert_ticket_history(
        &self,
        tenant: &TenantId,
        tickets: &[HistoryTicket],
        source: HistorySource,
        at: OffsetDateTime,
    ) -> Result<u64, Error>;
    /// Rows of the tenant's history (for tests and the import's count).
    async fn count_ticket_history(&self, tenant: &TenantId) -> Result<u64, Error>;
    async fn ticket_history(
        &self,
        tenant: &TenantId,
        ticket_id: &str,
    ) -> Result<Option<HistoryRecord>, Error>;
    /// The tenant's resolved tickets most like `text` by full-text rank
    /// (any of its words), best first, at most `limit`. Any text is a
    /// valid query: punctuation and operators are words, never syntax.
    async fn similar_tickets(
        &self,
        tenant: &TenantId,
        text: &str,
        limit: u32,
    ) -> Result<Vec<HistoryTicket>, Error>;
    /// The full-text query [`ContextStore::similar_tickets`] runs for
    /// `text`, in the database's syntax (`to_tsquery` or FTS5 `MATCH`):
    /// which words a ticket is matched by. `None` when the text has no
    /// searchable word. For benchmarks and diagnostics.
    async fn similar_tickets_query(
        &self,
        tenant: &TenantId,
        text: &str,
    ) -> Result<Option<String>, Error>;
    /// Inserts or updates by (tenant, url); all or nothing.
    /// [`Error::InvalidInput`] for an empty url.
    async fn upsert_kb_articles(
        &self,
        tenant: &TenantId,
        articles: &[KbArticleRecord],
    ) -> Result<u64, Error>;
    /// The tenant's articles most like `text` (any of its words; a word in
    /// the title counts most, then the summary, then the body), best first,
    /// at most `limit`; any text is a valid query.
    async fn search_kb(
        &self,
        tenant: &TenantId,
        text: &str,
        limit: u32,
    ) -> Result<Vec<KbArticleRecord>, Error>;
    /// Inserts or updates by (tenant, ip); all or nothing.
    async fn upsert_inventory(
        &self,
        tenant: &TenantId,
        systems: &[SystemRecord],
    ) -> Result<u64, Error>;
    /// The tenant's systems with any of these addresses, in the order asked
    /// (each once; unknown addresses are left out).
    async fn systems_by_ip(
        &self,
        tenant: &TenantId,
        ips: &[IpAddr],
    ) -> Result<Vec<SystemRecord>, Error>;
}

fn tags_from_json(tags: serde_json::Value) -> Result<Vec<String>, Error> {
    serde_json::from_value(tags)
        .map_err(|e| Error::Corrupt(format!("ticket_history.tags is not a list of strings: {e}")))
}

fn ticket_from_row<DB: Dialect>(row: &Columns<'_, DB>) -> Result<HistoryTicket, Error> {
    let tags: Json<serde_json::Value> = row.get("tags")?;
    Ok(HistoryTicket {
        ticket_id: row.get("ticket_id")?,
        description: row.get("description")?,
        resolution: row.get("resolution")?,
        resolved_date: row.time("resolved_date")?,
        tags: tags_from_json(tags.0)?,
    })
}

fn article_from_row<DB: Dialect>(row: &Columns<'_, DB>) -> Result<KbArticleRecord, Error> {
    Ok(KbArticleRecord {
        title: row.get("title")?,
        summary: row.get("summary")?,
        url: row.get("url")?,
        body: row.get("body")?,
    })
}

fn system_from_row<DB: Dialect>(row: &Columns<'_, DB>) -> Result<SystemRecord, Error> {
    let ip: String = row.get("ip")?;
    Ok(SystemRecord {
        ip: ip
            .parse()
            .map_err(|e| Error::Corrupt(format!("system_inventory.ip {ip:?}: {e}")))?,
        hostname: row.get("hostname")?,
        role: row.get("role")?,
        client: row.get("client")?,
        location: row.get("location")?,
    })
}

/// A transaction in `tenant`'s scope (see [`Dialect::enter_tenant_scope`]):
/// every call of [`ContextStore`] runs in one.
async fn scoped<DB: Dialect>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
) -> Result<Transaction<'static, DB>, Error> {
    let tx = store.db.begin().await?;
    in_scope(store, tenant, tx).await
}

/// [`scoped`] for the upserts: a write transaction from its start
/// ([`Dialect::begin_write`]). A deferred SQLite transaction that starts
/// reading and then writes fails at once with "database is locked" when
/// another connection committed in between (its snapshot is stale, and the
/// busy timeout does not apply); an immediate one waits its turn.
async fn scoped_write<DB: Dialect>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
) -> Result<Transaction<'static, DB>, Error> {
    let tx = store.db.begin_write().await?;
    in_scope(store, tenant, tx).await
}

async fn in_scope<DB: Dialect>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    mut tx: Transaction<'static, DB>,
) -> Result<Transaction<'static, DB>, Error> {
    DB::enter_tenant_scope(&mut *tx, tenant.as_str())
        .await
        .map_err(|e| store.db.error(e))?;
    Ok(tx)
}

/// The query a search for `text` in `index` runs ([`search::plan`]), in
/// the dialect's syntax; `None` when the text has no searchable word.
async fn planned_query<DB: Dialect>(
    tx: &mut Transaction<'static, DB>,
    index: FullTextIndex,
    text: &str,
) -> Result<Option<String>, sqlx::Error> {
    let words = search::search_words(text);
    if words.is_empty() {
        return Ok(None);
    }
    let frequencies = DB::word_frequencies(&mut **tx, index, &words).await?;
    Ok(Some(DB::full_text_query(&search::plan(
        words,
        &frequencies,
    ))))
}

/// One full-text search in the tenant's scope: `sql` (the dialect's
/// statement, binding tenant, query and limit) with the query planned for
/// `text`. Text without a searchable word finds nothing rather than erring.
async fn search<DB: Dialect, T>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    (index, sql): (FullTextIndex, &'static str),
    text: &str,
    limit: u32,
    read: impl Fn(&Columns<'_, DB>) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let db = &store.db;
    let mut tx = scoped(store, tenant).await?;
    let Some(query) = planned_query(&mut tx, index, text)
        .await
        .map_err(|e| db.error(e))?
    else {
        return Ok(Vec::new());
    };
    let rows = db
        .sql(sql)
        .bind(tenant.as_str())
        .bind(query)
        .bind(i64::from(limit))
        .fetch_all(on(&mut tx))
        .await?;
    db.commit(tx).await?;
    rows.iter().map(|row| read(&db.columns(row))).collect()
}

#[async_trait]
impl<DB: Dialect> ContextStore for SqlStore<DB> {
    #[instrument(name = "store.upsert_ticket_history", skip_all, fields(tenant.id = %tenant, count = tickets.len(), source = %source))]
    async fn upsert_ticket_history(
        &self,
        tenant: &TenantId,
        tickets: &[HistoryTicket],
        source: HistorySource,
        at: OffsetDateTime,
    ) -> Result<u64, Error> {
        if tickets.iter().any(|t| t.ticket_id.is_empty()) {
            return Err(Error::InvalidInput("a ticket id is empty".to_owned()));
        }
        if tickets.is_empty() {
            return Ok(0);
        }
        let db = &self.db;
        let mut tx = scoped_write(self, tenant).await?;
        let mut written = 0;
        for ticket in tickets {
            let tags = serde_json::Value::from(ticket.tags.clone());
            written += db
                .sql(
                    "INSERT INTO ticket_history (tenant_id, ticket_id, description, resolution, \
                     resolved_date, tags, source, ingested_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET \
                     description = EXCLUDED.description, resolution = EXCLUDED.resolution, \
                     resolved_date = EXCLUDED.resolved_date, tags = EXCLUDED.tags, \
                     source = EXCLUDED.source, ingested_at = EXCLUDED.ingested_at",
                )
                .bind(tenant.as_str())
                .bind(ticket.ticket_id.as_str())
                .bind(ticket.description.as_str())
                .bind(ticket.resolution.as_str())
                .bind_time(ticket.resolved_date)
                .bind(Json(&tags))
                .bind(source.as_str())
                .bind_time(at)
                .execute(on(&mut tx))
                .await
                .map_err(unknown_tenant(tenant))?;
        }
        db.commit(tx).await?;
        Ok(written)
    }

    async fn count_ticket_history(&self, tenant: &TenantId) -> Result<u64, Error> {
        let db = &self.db;
        let mut tx = scoped(self, tenant).await?;
        let row = db
            .sql("SELECT count(*) AS n FROM ticket_history WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_one(on(&mut tx))
            .await?;
        db.commit(tx).await?;
        db.columns(&row).count("n")
    }

    async fn ticket_history(
        &self,
        tenant: &TenantId,
        ticket_id: &str,
    ) -> Result<Option<HistoryRecord>, Error> {
        let db = &self.db;
        let mut tx = scoped(self, tenant).await?;
        let row = db
            .sql(
                "SELECT ticket_id, description, resolution, resolved_date, tags, source, \
                 ingested_at FROM ticket_history WHERE tenant_id = $1 AND ticket_id = $2",
            )
            .bind(tenant.as_str())
            .bind(ticket_id)
            .fetch_optional(on(&mut tx))
            .await?;
        db.commit(tx).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let row = db.columns(&row);
        let source: String = row.get("source")?;
        Ok(Some(HistoryRecord {
            ticket: ticket_from_row(&row)?,
            source: source.parse().map_err(|e| Error::Corrupt(format!("{e}")))?,
            ingested_at: row.time("ingested_at")?,
        }))
    }

    #[instrument(name = "store.similar_tickets", skip_all, fields(tenant.id = %tenant, limit))]
    async fn similar_tickets(
        &self,
        tenant: &TenantId,
        text: &str,
        limit: u32,
    ) -> Result<Vec<HistoryTicket>, Error> {
        search(
            self,
            tenant,
            (FullTextIndex::Tickets, DB::SIMILAR_TICKETS),
            text,
            limit,
            |row| ticket_from_row(row),
        )
        .await
    }

    async fn similar_tickets_query(
        &self,
        tenant: &TenantId,
        text: &str,
    ) -> Result<Option<String>, Error> {
        let db = &self.db;
        let mut tx = scoped(self, tenant).await?;
        let query = planned_query(&mut tx, FullTextIndex::Tickets, text)
            .await
            .map_err(|e| db.error(e))?;
        db.commit(tx).await?;
        Ok(query)
    }

    #[instrument(name = "store.upsert_kb_articles", skip_all, fields(tenant.id = %tenant, count = articles.len()))]
    async fn upsert_kb_articles(
        &self,
        tenant: &TenantId,
        articles: &[KbArticleRecord],
    ) -> Result<u64, Error> {
        if articles.iter().any(|a| a.url.is_empty()) {
            return Err(Error::InvalidInput("an article's url is empty".to_owned()));
        }
        if articles.is_empty() {
            return Ok(0);
        }
        let db = &self.db;
        let now = timestamp::now();
        let mut tx = scoped_write(self, tenant).await?;
        let mut written = 0;
        for article in articles {
            written += db
                .sql(
                    "INSERT INTO kb_articles (tenant_id, url, title, summary, body, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, url) DO UPDATE SET \
                     title = EXCLUDED.title, summary = EXCLUDED.summary, body = EXCLUDED.body, \
                     updated_at = EXCLUDED.updated_at",
                )
                .bind(tenant.as_str())
                .bind(article.url.as_str())
                .bind(article.title.as_str())
                .bind(article.summary.as_str())
                .bind(article.body.as_str())
                .bind_time(now)
                .execute(on(&mut tx))
                .await
                .map_err(unknown_tenant(tenant))?;
        }
        db.commit(tx).await?;
        Ok(written)
    }

    #[instrument(name = "store.search_kb", skip_all, fields(tenant.id = %tenant, limit))]
    async fn search_kb(
        &self,
        tenant: &TenantId,
        text: &str,
        limit: u32,
    ) -> Result<Vec<KbArticleRecord>, Error> {
        search(
            self,
            tenant,
            (FullTextIndex::Kb, DB::SEARCH_KB),
            text,
            limit,
            |row| article_from_row(row),
        )
        .await
    }

    #[instrument(name = "store.upsert_inventory", skip_all, fields(tenant.id = %tenant, count = systems.len()))]
    async fn upsert_inventory(
        &self,
        tenant: &TenantId,
        systems: &[SystemRecord],
    ) -> Result<u64, Error> {
        if systems.is_empty() {
            return Ok(0);
        }
        let db = &self.db;
        let now = timestamp::now();
        let mut tx = scoped_write(self, tenant).await?;
        let mut written = 0;
        for system in systems {
            written += db
                .sql(
                    "INSERT INTO system_inventory (tenant_id, ip, hostname, role, client, \
                     location, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (tenant_id, ip) DO UPDATE SET hostname = EXCLUDED.hostname, \
                     role = EXCLUDED.role, client = EXCLUDED.client, \
                     location = EXCLUDED.location, updated_at = EXCLUDED.updated_at",
                )
                .bind(tenant.as_str())
                .bind(system.ip.to_string())
                .bind(system.hostname.as_str())
                .bind(system.role.as_str())
                .bind(system.client.as_str())
                .bind(system.location.as_str())
                .bind_time(now)
                .execute(on(&mut tx))
                .await
                .map_err(unknown_tenant(tenant))?;
        }
        db.commit(tx).await?;
        Ok(written)
    }

    async fn systems_by_ip(
        &self,
        tenant: &TenantId,
        ips: &[IpAddr],
    ) -> Result<Vec<SystemRecord>, Error> {
        let mut asked: Vec<IpAddr> = Vec::new();
        for ip in ips {
            if !asked.contains(ip) {
                asked.push(*ip);
            }
        }
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let db = &self.db;
        let mut tx = scoped(self, tenant).await?;
        // One lookup per address (a ticket names a few) keeps the order
        // asked and the statement the same whatever their number.
        let mut systems = Vec::new();
        for ip in asked {
            let row = db
                .sql(
                    "SELECT ip, hostname, role, client, location FROM system_inventory \
                     WHERE tenant_id = $1 AND ip = $2",
                )
                .bind(tenant.as_str())
                .bind(ip.to_string())
                .fetch_optional(on(&mut tx))
                .await?;
            if let Some(row) = row {
                systems.push(system_from_row(&db.columns(&row))?);
            }
        }
        db.commit(tx).await?;
        Ok(systems)
    }
}
