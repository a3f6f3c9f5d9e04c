//! Context gathering (seed stories 2.5–2.8): the three sources run at the same time, each
//! under its own deadline, and whatever one of them does — fail, hang, panic — costs only its
//! own part of the context.
//!
//! The sources are traits so that the store (ticket history, inventory), a tenant's external
//! knowledge-base API and test fakes plug in alike. An implementation is bound to one tenant
//! when it is built (it holds the `TenantId`); nothing here sees tenants.

use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use crate::context::{
    GatheredContext, KbArticle, SimilarTicket, SourceKind, SourceReport, SystemInfo, TicketInput,
};
use crate::ip::extract_ips;

/// What a source may fail with; its text ends up (redacted) on the job.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// The seed's limits: top 5 similar tickets, top 3 articles.
pub const MAX_SIMILAR_TICKETS: usize = 5;
pub const MAX_KB_ARTICLES: usize = 3;
/// At most this many systems are reported (one per address found, and
/// [`crate::ip::MAX_IPS`] addresses at most).
pub const MAX_SYSTEMS: usize = crate::ip::MAX_IPS;

/// Resolved tickets of the tenant that resemble `ticket` (full-text search, best first).
#[async_trait::async_trait]
pub trait SimilarTickets: Send + Sync {
    async fn similar(&self, ticket: &TicketInput) -> Result<Vec<SimilarTicket>, SourceError>;
}

/// Knowledge-base articles relevant to `ticket`, best first.
#[async_trait::async_trait]
pub trait KnowledgeBase: Send + Sync {
    async fn articles(&self, ticket: &TicketInput) -> Result<Vec<KbArticle>, SourceError>;
}

/// The tenant's systems at these addresses; an address nobody knows is simply left out.
#[async_trait::async_trait]
pub trait Inventory: Send + Sync {
    async fn systems(&self, ips: &[IpAddr]) -> Result<Vec<SystemInfo>, SourceError>;
}

/// The sources a tenant enabled; `None` is a source that is not asked (and gets no report).
#[derive(Clone, Copy, Default)]
pub struct Sources<'a> {
    pub similar: Option<&'a dyn SimilarTickets>,
    pub kb: Option<&'a dyn KnowledgeBase>,
    pub inventory: Option<&'a dyn Inventory>,
}

/// Deadlines per source. The seed gives the knowledge-base API 10 s; the store's searches are
/// expected to take milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatherTimeouts {
    pub similar: Duration,
    pub kb: Duration,
    pub inventory: Duration,
}

impl GatherTimeouts {
    /// The same deadline for every source.
    pub fn all(timeout: Duration) -> Self {
        Self {
            similar: timeout,
            kb: timeout,
            inventory: timeout,
        }
    }
}

impl Default for GatherTimeouts {
    fn default() -> Self {
        Self::all(Duration::from_secs(10))
    }
}

/// Gathers the context of `ticket` from the enabled `sources`, concurrently. Never fails: a
/// source that errs, times out or panics yields an empty list and its error in
/// [`GatheredContext::sources`].
///
/// The addresses looked up are those in the ticket's subject and description
/// ([`extract_ips`]); with none, the inventory is not called (and reports no error).
pub async fn gather(
    sources: Sources<'_>,
    ticket: &TicketInput,
    timeouts: GatherTimeouts,
) -> GatheredContext {
    let ips = extract_ips(&format!("{}\n{}", ticket.subject, ticket.description));
    let similar = run(sources.similar, timeouts.similar, |s| s.similar(ticket));
    let kb = run(sources.kb, timeouts.kb, |s| s.articles(ticket));
    let inventory = run(sources.inventory, timeouts.inventory, |s| async {
        if ips.is_empty() {
            return Ok(Vec::new());
        }
        s.systems(&ips).await
    });
    let (similar, kb, inventory) = tokio::join!(similar, kb, inventory);

    let mut ctx = GatheredContext::default();
    if let Some((mut list, report)) = similar {
        list.truncate(MAX_SIMILAR_TICKETS);
        ctx.similar_tickets = list;
        ctx.sources.insert(SourceKind::TicketHistory, report);
    }
    if let Some((mut list, report)) = kb {
        list.truncate(MAX_KB_ARTICLES);
        ctx.kb_articles = list;
        ctx.sources.insert(SourceKind::Kb, report);
    }
    if let Some((mut list, report)) = inventory {
        list.truncate(MAX_SYSTEMS);
        ctx.systems = list;
        ctx.sources.insert(SourceKind::IpInventory, report);
    }
    ctx.ips = ips;
    for (kind, error) in ctx.errors() {
        tracing::warn!(source = %kind, %error, "context source failed; continuing without it");
    }
    ctx
}

/// Runs one source under its deadline, catching a panic so one broken source cannot take the
/// others (or the job) down with it.
async fn run<'s, S, T, F, Fut>(
    source: Option<&'s S>,
    timeout: Duration,
    call: F,
) -> Option<(Vec<T>, SourceReport)>
where
    S: ?Sized + 's,
    F: FnOnce(&'s S) -> Fut,
    Fut: Future<Output = Result<Vec<T>, SourceError>>,
{
    let source = source?;
    let started = Instant::now();
    let outcome =
        tokio::time::timeout(timeout, AssertUnwindSafe(call(source)).catch_unwind()).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (list, error) = match outcome {
        Ok(Ok(Ok(list))) => (list, None),
        Ok(Ok(Err(e))) => (Vec::new(), Some(error_text(&*e))),
        Ok(Err(_panic)) => (Vec::new(), Some("the source panicked".to_owned())),
        Err(_elapsed) => (
            Vec::new(),
            Some(format!("timed out after {} ms", timeout.as_millis())),
        ),
    };
    Some((list, SourceReport { elapsed_ms, error }))
}

/// One line, redacted (an API error can echo a URL with a key), at most 500 characters.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let text = text.replace(['\n', '\r'], " ");
    csp_redact::redact_text(&text).chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn ticket(description: &str) -> TicketInput {
        TicketInput {
            ticket_id: "4521".into(),
            subject: "Printer offline".into(),
            description: description.into(),
            priority: "High".into(),
        }
    }

    fn similar(id: &str) -> SimilarTicket {
        SimilarTicket {
            ticket_id: id.into(),
            description: format!("ticket {id}"),
            resolution: "restarted the spooler".into(),
            resolved_date: "2026-01-02".into(),
        }
    }

    struct FakeSimilar {
        delay: Duration,
        count: usize,
    }

    #[async_trait::async_trait]
    impl SimilarTickets for FakeSimilar {
        async fn similar(&self, _: &TicketInput) -> Result<Vec<SimilarTicket>, SourceError> {
            tokio::time::sleep(self.delay).await;
            Ok((0..self.count)
                .map(|i| similar(&format!("T-{i}")))
                .collect())
        }
    }

    struct FailingKb;

    #[async_trait::async_trait]
    impl KnowledgeBase for FailingKb {
        async fn articles(&self, _: &TicketInput) -> Result<Vec<KbArticle>, SourceError> {
            Err("KB API answered 503 for https://kb.example/search?api_key=sk-live-abcdefghijklmnop".into())
        }
    }

    struct SlowKb;

    #[async_trait::async_trait]
    impl KnowledgeBase for SlowKb {
        async fn articles(&self, _: &TicketInput) -> Result<Vec<KbArticle>, SourceError> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(vec![KbArticle {
                title: "never".into(),
                summary: String::new(),
                url: String::new(),
            }])
        }
    }

    struct PanickingKb;

    #[async_trait::async_trait]
    impl KnowledgeBase for PanickingKb {
        async fn articles(&self, _: &TicketInput) -> Result<Vec<KbArticle>, SourceError> {
            panic!("bug in the KB adapter")
        }
    }

    #[derive(Default)]
    struct FakeInventory {
        asked: Mutex<Vec<Vec<IpAddr>>>,
    }

    #[async_trait::async_trait]
    impl Inventory for FakeInventory {
        async fn systems(&self, ips: &[IpAddr]) -> Result<Vec<SystemInfo>, SourceError> {
            self.asked.lock().unwrap().push(ips.to_vec());
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(ips
                .iter()
                .filter(|ip| ip.to_string() != "10.9.9.9")
                .map(|ip| SystemInfo {
                    ip: ip.to_string(),
                    hostname: format!("host-{ip}"),
                    role: "web".into(),
                    client: "Acme".into(),
                    location: "DC1".into(),
                })
                .collect())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sources_run_concurrently_and_results_are_capped() {
        let tickets = FakeSimilar {
            delay: Duration::from_millis(300),
            count: 9,
        };
        let inventory = FakeInventory::default();
        let started = Instant::now();
        let ctx = gather(
            Sources {
                similar: Some(&tickets),
                kb: None,
                inventory: Some(&inventory),
            },
            &ticket("web at 10.0.0.5 and 10.9.9.9 (unknown) down; again 10.0.0.5."),
            GatherTimeouts::default(),
        )
        .await;
        // Two 300 ms sources side by side take 300 ms, not 600.
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert_eq!(ctx.similar_tickets.len(), MAX_SIMILAR_TICKETS);
        assert_eq!(ctx.similar_tickets[0].ticket_id, "T-0");
        assert_eq!(ctx.ips.len(), 2);
        assert_eq!(
            *inventory.asked.lock().unwrap(),
            [vec![
                "10.0.0.5".parse::<IpAddr>().unwrap(),
                "10.9.9.9".parse().unwrap()
            ]]
        );
        assert_eq!(ctx.systems.len(), 1);
        assert_eq!(ctx.systems[0].hostname, "host-10.0.0.5");
        assert!(
            !ctx.sources.contains_key(&SourceKind::Kb),
            "kb was not enabled"
        );
        assert_eq!(ctx.sources[&SourceKind::TicketHistory].elapsed_ms, 300);
        assert_eq!(ctx.errors().count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_source_times_out_alone() {
        let tickets = FakeSimilar {
            delay: Duration::from_millis(20),
            count: 2,
        };
        let started = Instant::now();
        let ctx = gather(
            Sources {
                similar: Some(&tickets),
                kb: Some(&SlowKb),
                inventory: None,
            },
            &ticket("no addresses here"),
            GatherTimeouts {
                kb: Duration::from_secs(10),
                ..GatherTimeouts::all(Duration::from_secs(2))
            },
        )
        .await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(ctx.similar_tickets.len(), 2);
        assert!(ctx.kb_articles.is_empty());
        let kb = &ctx.sources[&SourceKind::Kb];
        assert_eq!(kb.error.as_deref(), Some("timed out after 10000 ms"));
        assert_eq!(kb.elapsed_ms, 10_000);
        assert_eq!(ctx.sources[&SourceKind::TicketHistory].error, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_source_leaves_a_redacted_error_and_the_rest() {
        let tickets = FakeSimilar {
            delay: Duration::ZERO,
            count: 1,
        };
        let inventory = FakeInventory::default();
        let ctx = gather(
            Sources {
                similar: Some(&tickets),
                kb: Some(&FailingKb),
                inventory: Some(&inventory),
            },
            &ticket("printer 10.0.0.7"),
            GatherTimeouts::default(),
        )
        .await;
        assert_eq!(ctx.similar_tickets.len(), 1);
        assert_eq!(ctx.systems.len(), 1);
        let error = ctx.sources[&SourceKind::Kb].error.clone().unwrap();
        assert!(error.starts_with("KB API answered 503"), "{error}");
        assert!(!error.contains("sk-live-abcdefghijklmnop"), "{error}");
    }

    #[tokio::test]
    async fn a_panicking_source_is_an_error_not_a_crash() {
        let ctx = gather(
            Sources {
                kb: Some(&PanickingKb),
                ..Sources::default()
            },
            &ticket("x"),
            GatherTimeouts::default(),
        )
        .await;
        assert_eq!(
            ctx.sources[&SourceKind::Kb].error.as_deref(),
            Some("the source panicked")
        );
    }

    #[tokio::test]
    async fn without_addresses_the_inventory_is_not_asked() {
        let inventory = FakeInventory::default();
        let ctx = gather(
            Sources {
                inventory: Some(&inventory),
                ..Sources::default()
            },
            &ticket("Outlook keeps asking for the password"),
            GatherTimeouts::default(),
        )
        .await;
        assert!(inventory.asked.lock().unwrap().is_empty());
        assert!(ctx.systems.is_empty());
        assert_eq!(ctx.sources[&SourceKind::IpInventory].error, None);
    }

    #[tokio::test]
    async fn no_sources_gives_an_empty_context() {
        let ctx = gather(Sources::default(), &ticket("x"), GatherTimeouts::default()).await;
        assert_eq!(ctx, GatheredContext::default());
    }
}
