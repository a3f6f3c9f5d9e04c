//! What the workers search for context, per tenant: resolved tickets
//! (`ticket_history`), knowledge-base articles (`kb_articles`) and the
//! systems behind IP addresses (`system_inventory`). Every call takes the
//! tenant: on Postgres it runs in that tenant's row-level-security scope,
//! on SQLite with an explicit filter.

use crate::dialect::Dialect;
use crate::error::Error;
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

/// Words that say nothing about a ticket: Postgres' `english` stop words
/// (`tsearch_data/english.stop`). Postgres drops them itself; FTS5 has no
/// such list, so the store drops them for both.
const STOP_WORDS: &[&str] = &[
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "s",
    "t",
    "can",
    "will",
    "just",
    "don",
    "should",
    "now",
];

/// At most this many distinct words of a text are searched for: a ticket's
/// first words say what it is about, and every word is one more index scan.
const MAX_SEARCH_WORDS: usize = 64;
/// Longer "words" are encoded blobs or hashes, not language.
const MAX_WORD_CHARS: usize = 64;

/// The words of `text` a full-text search looks for: runs of letters and
/// digits, lower-cased, without stop words, each once, in order. Nothing
/// else survives, so no character of the user's text is query syntax on
/// either database; an empty list means nothing to search for.
fn search_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || word.chars().count() > MAX_WORD_CHARS {
            continue;
        }
        let word = word.to_lowercase();
        if STOP_WORDS.contains(&word.as_str()) || words.contains(&word) {
            continue;
        }
        words.push(word);
        if words.len() == MAX_SEARCH_WORDS {
            break;
        }
    }
    words
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
    let db = &store.db;
    let mut tx = db.begin().await?;
    DB::enter_tenant_scope(&mut *tx, tenant.as_str())
        .await
        .map_err(|e| db.error(e))?;
    Ok(tx)
}

/// One full-text search in the tenant's scope: `sql` (the dialect's
/// statement, binding tenant, query and limit) over the words of `text`.
/// Text without a searchable word finds nothing rather than erring.
async fn search<DB: Dialect, T>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    sql: &'static str,
    text: &str,
    limit: u32,
    read: impl Fn(&Columns<'_, DB>) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let words = search_words(text);
    if words.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let db = &store.db;
    let mut tx = scoped(store, tenant).await?;
    let rows = db
        .sql(sql)
        .bind(tenant.as_str())
        .bind(DB::full_text_query(&words))
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
        let mut tx = scoped(self, tenant).await?;
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
        search(self, tenant, DB::SIMILAR_TICKETS, text, limit, |row| {
            ticket_from_row(row)
        })
        .await
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
        let mut tx = scoped(self, tenant).await?;
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
        search(self, tenant, DB::SEARCH_KB, text, limit, |row| {
            article_from_row(row)
        })
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
        let mut tx = scoped(self, tenant).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_letters_and_digits_without_stop_words() {
        assert_eq!(
            search_words("The DISK is full: disk /dev/sda1 \"quoted\" OR NOT (x) naïve 10.0.0.1"),
            vec![
                "disk", "full", "dev", "sda1", "quoted", "x", "naïve", "10", "0", "1"
            ]
        );
        for nothing in ["", "  ", "!!! ??? ---", "the and of", "\"*:&|!()'\\"] {
            assert_eq!(search_words(nothing), Vec::<String>::new(), "{nothing:?}");
        }
    }

    #[test]
    fn search_words_are_bounded() {
        let many: String = (0..200).map(|i| format!("w{i} ")).collect();
        assert_eq!(search_words(&many).len(), MAX_SEARCH_WORDS);
        let long = "a".repeat(MAX_WORD_CHARS + 1);
        assert_eq!(search_words(&format!("{long} disk")), vec!["disk"]);
    }

    #[test]
    fn stop_words_are_lower_case_and_unique() {
        for (i, word) in STOP_WORDS.iter().enumerate() {
            assert_eq!(word.to_lowercase(), *word);
            assert!(!STOP_WORDS[..i].contains(word), "{word}");
        }
        assert_eq!(STOP_WORDS.len(), 127);
    }
}
