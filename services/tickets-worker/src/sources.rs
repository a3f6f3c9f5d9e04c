//! The context sources of one tenant: the store's resolved tickets,
//! knowledge base and inventory, and the tenant's external knowledge-base
//! API (cached). Each is bound to its tenant when built; `csp_enhance::gather`
//! runs them side by side under their own deadlines.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use csp_cache::Cache;
use csp_domain::TenantId;
use csp_enhance::{
    Inventory, KbArticle, KnowledgeBase, MAX_KB_ARTICLES, SimilarTicket, SimilarTickets,
    SourceError, SystemInfo, TicketInput,
};
use csp_http::{HttpClient, Limits};
use csp_store::ContextStore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Similar resolved tickets asked of the store (the seed's top 5).
const SIMILAR_LIMIT: u32 = 5;
/// Keywords sent to an external knowledge-base API.
const MAX_KEYWORDS: usize = 8;
/// An external knowledge-base answer larger than this is refused.
const MAX_KB_ANSWER_BYTES: usize = 1024 * 1024;

pub(crate) struct StoreHistory {
    pub(crate) store: Arc<dyn ContextStore>,
    pub(crate) tenant: TenantId,
}

#[async_trait::async_trait]
impl SimilarTickets for StoreHistory {
    async fn similar(&self, ticket: &TicketInput) -> Result<Vec<SimilarTicket>, SourceError> {
        let text = format!("{}\n{}", ticket.subject, ticket.description);
        let found = self
            .store
            .similar_tickets(&self.tenant, &text, SIMILAR_LIMIT)
            .await?;
        Ok(found
            .into_iter()
            // The new ticket may already be in the history (a resolved
            // webhook for it arrived first); it is not its own precedent.
            .filter(|t| t.ticket_id != ticket.ticket_id)
            .map(|t| SimilarTicket {
                ticket_id: t.ticket_id,
                description: t.description,
                resolution: t.resolution,
                resolved_date: t
                    .resolved_date
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            })
            .collect())
    }
}

pub(crate) struct StoreInventory {
    pub(crate) store: Arc<dyn ContextStore>,
    pub(crate) tenant: TenantId,
}

#[async_trait::async_trait]
impl Inventory for StoreInventory {
    async fn systems(&self, ips: &[IpAddr]) -> Result<Vec<SystemInfo>, SourceError> {
        let found = self.store.systems_by_ip(&self.tenant, ips).await?;
        Ok(found
            .into_iter()
            .map(|s| SystemInfo {
                ip: s.ip.to_string(),
                hostname: s.hostname,
                role: s.role,
                client: s.client,
                location: s.location,
            })
            .collect())
    }
}

/// The tenant's external knowledge-base API and how it is called.
pub(crate) struct KbApi {
    pub(crate) url: String,
    pub(crate) http: HttpClient,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) timeout: Duration,
    /// An answer younger than this is used without calling.
    pub(crate) fresh_for: Duration,
    /// An answer is kept this long, to stand in when the API fails.
    pub(crate) keep_for: Duration,
}

/// The knowledge base of a tenant: its stored articles, and its API's when
/// it has one, merged (stored first, one per URL), top 3.
pub(crate) struct TenantKb {
    pub(crate) store: Arc<dyn ContextStore>,
    pub(crate) tenant: TenantId,
    pub(crate) api: Option<KbApi>,
    pub(crate) mask_pii: bool,
}

#[async_trait::async_trait]
impl KnowledgeBase for TenantKb {
    async fn articles(&self, ticket: &TicketInput) -> Result<Vec<KbArticle>, SourceError> {
        let text = format!("{}\n{}", ticket.subject, ticket.description);
        let stored = async {
            self.store
                .search_kb(&self.tenant, &text, MAX_KB_ARTICLES as u32)
                .await
                .map(|found| {
                    found
                        .into_iter()
                        .map(|a| KbArticle {
                            title: a.title,
                            summary: a.summary,
                            url: a.url,
                        })
                        .collect::<Vec<_>>()
                })
                .map_err(|e| format!("stored articles: {e}"))
        };
        let external = async {
            match &self.api {
                None => Ok(Vec::new()),
                Some(api) => {
                    // Ticket text leaves for another system: what the
                    // model would not get, this API does not get either.
                    let keywords = keywords(&csp_enhance::prepare_text(&text, self.mask_pii));
                    api.search(&self.tenant, &keywords).await
                }
            }
        };
        let (stored, external) = tokio::join!(stored, external);
        let merged = match (stored, external) {
            (Err(a), Err(b)) => return Err(format!("{a}; knowledge-base API: {b}").into()),
            (Ok(list), Err(e)) => {
                tracing::warn!(tenant_id = %self.tenant, error = %e, "knowledge-base API failed; stored articles only");
                list
            }
            (Err(e), Ok(list)) => {
                tracing::warn!(tenant_id = %self.tenant, error = %e, "stored articles unavailable; knowledge-base API only");
                list
            }
            (Ok(mut list), Ok(more)) => {
                list.extend(more);
                list
            }
        };
        let mut seen = HashSet::new();
        Ok(merged
            .into_iter()
            .filter(|a| a.url.is_empty() || seen.insert(a.url.clone()))
            .take(MAX_KB_ARTICLES)
            .collect())
    }
}

/// What the cache keeps of one API answer.
#[derive(Serialize, Deserialize)]
struct Cached {
    at_ms: u64,
    articles: Vec<KbArticle>,
}

impl KbApi {
    /// A fresh cached answer, else the API's (cached), else — the API
    /// failing — the last answer kept, else the API's error.
    async fn search(&self, tenant: &TenantId, keywords: &str) -> Result<Vec<KbArticle>, String> {
        let key = cache_key(tenant, &self.url, keywords);
        let cached = match self.cache.get(&key).await {
            Ok(value) => value.and_then(|v| serde_json::from_str::<Cached>(&v).ok()),
            Err(e) => {
                tracing::warn!(tenant_id = %tenant, error = %e, "cache unavailable for the knowledge-base API");
                None
            }
        };
        let now = now_ms();
        if let Some(c) = &cached
            && now.saturating_sub(c.at_ms) < self.fresh_for.as_millis() as u64
        {
            return Ok(c.articles.clone());
        }
        match self.call(keywords).await {
            Ok(articles) => {
                let value = Cached {
                    at_ms: now,
                    articles: articles.clone(),
                };
                let json = serde_json::to_string(&value).expect("articles serialize");
                if let Err(e) = self.cache.put(&key, &json, self.keep_for).await {
                    tracing::warn!(tenant_id = %tenant, error = %e, "cannot cache the knowledge-base API's answer");
                }
                Ok(articles)
            }
            Err(e) => match cached {
                Some(c) => {
                    tracing::warn!(tenant_id = %tenant, error = %e, age_s = now.saturating_sub(c.at_ms) / 1000, "knowledge-base API failed; using its last answer");
                    Ok(c.articles)
                }
                None => Err(e),
            },
        }
    }

    async fn call(&self, keywords: &str) -> Result<Vec<KbArticle>, String> {
        let mut url = url::Url::parse(self.url.trim())
            .map_err(|e| format!("kb_api_url {}: {e}", csp_redact::url(&self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "kb_api_url must be http(s): {}",
                csp_redact::url(&self.url)
            ));
        }
        url.query_pairs_mut().append_pair("q", keywords);
        let req = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let limits = Limits {
            timeout: self.timeout,
            max_body_bytes: MAX_KB_ANSWER_BYTES,
        };
        let (_, answer): (_, KbAnswer) = self
            .http
            .json(req, limits)
            .await
            .map_err(|e| e.to_string())?;
        Ok(answer.into_articles())
    }
}

/// A list, or an object holding one under `results`, `articles` or `items`.
#[derive(Deserialize)]
#[serde(untagged)]
enum KbAnswer {
    List(Vec<ApiArticle>),
    Wrapped {
        #[serde(alias = "articles", alias = "items")]
        results: Vec<ApiArticle>,
    },
}

#[derive(Deserialize)]
struct ApiArticle {
    #[serde(default)]
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    url: String,
}

impl KbAnswer {
    fn into_articles(self) -> Vec<KbArticle> {
        let (KbAnswer::List(list) | KbAnswer::Wrapped { results: list }) = self;
        list.into_iter()
            .filter(|a| !a.title.trim().is_empty())
            .map(|a| KbArticle {
                title: a.title,
                summary: a.summary,
                url: a.url,
            })
            .collect()
    }
}

fn cache_key(tenant: &TenantId, url: &str, keywords: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(url.as_bytes());
    hash.update([0]);
    hash.update(keywords.as_bytes());
    let digest = hash.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("tickets:kb_api:{tenant}:{hex}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Up to [`MAX_KEYWORDS`] distinct words of three letters or more, in
/// order, lower-cased, common words left out: what a search box gets.
pub(crate) fn keywords(text: &str) -> String {
    const STOP: &[&str] = &[
        "the", "and", "for", "with", "that", "this", "from", "not", "are", "was", "has", "have",
        "but", "can", "cannot", "our", "you", "your", "its", "all", "any", "been", "when", "since",
        "after", "please", "help", "into", "again",
    ];
    let mut seen = HashSet::new();
    text.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '.')
        .map(|w| {
            w.trim_matches(|c: char| c == '-' || c == '.')
                .to_lowercase()
        })
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
        .filter(|w| seen.insert(w.clone()))
        .take(MAX_KEYWORDS)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_distinct_words_without_filler() {
        assert_eq!(
            keywords(
                "The printer on floor 2 is offline. Printer spooler keeps crashing, please help!"
            ),
            "printer floor offline spooler keeps crashing"
        );
        assert_eq!(
            keywords("VPN to 10.0.0.5 fails after the update"),
            "vpn 10.0.0.5 fails update"
        );
        let many = (0..20)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(keywords(&many).split(' ').count(), MAX_KEYWORDS);
    }

    #[test]
    fn api_answers_read_as_a_list_or_wrapped() {
        let list: KbAnswer = serde_json::from_str(
            r#"[{"title":"Reset VPN","summary":"s","url":"https://kb/1"},{"title":""}]"#,
        )
        .unwrap();
        assert_eq!(list.into_articles().len(), 1);
        let wrapped: KbAnswer =
            serde_json::from_str(r#"{"results":[{"title":"A","url":"u"}]}"#).unwrap();
        assert_eq!(wrapped.into_articles()[0].title, "A");
    }

    #[test]
    fn cache_keys_are_per_tenant_url_and_query() {
        let a = TenantId::parse("acme").unwrap();
        let b = TenantId::parse("beta").unwrap();
        let k = cache_key(&a, "https://kb", "vpn");
        assert!(k.starts_with("tickets:kb_api:acme:"), "{k}");
        assert_ne!(k, cache_key(&b, "https://kb", "vpn"));
        assert_ne!(k, cache_key(&a, "https://kb", "printer"));
        assert_eq!(k, cache_key(&a, "https://kb", "vpn"));
    }
}
