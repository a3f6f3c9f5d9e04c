//! What an enhancement works from: the new ticket, and the context gathered for it. Both are
//! stored as JSON on the job (`enhancement_history.context_gathered`), so field names are the
//! seed's and new fields come with a serde default.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The ticket a webhook announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketInput {
    pub ticket_id: String,
    #[serde(default)]
    pub subject: String,
    pub description: String,
    #[serde(default)]
    pub priority: String,
}

/// A resolved ticket of the same tenant that looks like the new one (seed story 2.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimilarTicket {
    pub ticket_id: String,
    pub description: String,
    #[serde(default)]
    pub resolution: String,
    /// As the store or the webhook gave it (RFC 3339 or a date); shown, never computed with.
    #[serde(default)]
    pub resolved_date: String,
}

/// A knowledge-base article (seed story 2.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbArticle {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub url: String,
}

/// A system of the tenant's inventory that an address in the ticket points at (seed story 2.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub ip: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub client: String,
    #[serde(default)]
    pub location: String,
}

/// The three context sources, named as a tenant's `enhancement_preferences.sources` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    TicketHistory,
    Kb,
    IpInventory,
}

impl SourceKind {
    pub const ALL: [SourceKind; 3] = [
        SourceKind::TicketHistory,
        SourceKind::Kb,
        SourceKind::IpInventory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::TicketHistory => "ticket_history",
            SourceKind::Kb => "kb",
            SourceKind::IpInventory => "ip_inventory",
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SourceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown context source {s:?} (ticket_history, kb, ip_inventory)")
            })
    }
}

/// How one source did: how long it took and, when it gave nothing usable, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceReport {
    pub elapsed_ms: u64,
    /// Redacted; `None` when the source answered (an empty answer is not an error).
    #[serde(default)]
    pub error: Option<String>,
}

/// Everything gathered for one ticket. A failed source leaves its list empty and its error in
/// [`GatheredContext::sources`]; a source that was not asked for has no entry there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatheredContext {
    #[serde(default)]
    pub similar_tickets: Vec<SimilarTicket>,
    #[serde(default)]
    pub kb_articles: Vec<KbArticle>,
    #[serde(default)]
    pub systems: Vec<SystemInfo>,
    /// The addresses found in the ticket (what the inventory was asked about).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    #[serde(default)]
    pub sources: BTreeMap<SourceKind, SourceReport>,
}

impl GatheredContext {
    /// The sources that failed or timed out, with their errors.
    pub fn errors(&self) -> impl Iterator<Item = (SourceKind, &str)> {
        self.sources
            .iter()
            .filter_map(|(k, r)| r.error.as_deref().map(|e| (*k, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stored_json_uses_the_seed_names() {
        let mut ctx = GatheredContext {
            similar_tickets: vec![SimilarTicket {
                ticket_id: "T-1".into(),
                description: "d".into(),
                resolution: "r".into(),
                resolved_date: "2026-01-02".into(),
            }],
            ips: vec!["10.0.0.1".parse().unwrap()],
            ..GatheredContext::default()
        };
        ctx.sources.insert(
            SourceKind::Kb,
            SourceReport {
                elapsed_ms: 12,
                error: Some("timed out after 10000 ms".into()),
            },
        );
        let value = serde_json::to_value(&ctx).unwrap();
        assert_eq!(
            value,
            json!({
                "similar_tickets": [{"ticket_id": "T-1", "description": "d", "resolution": "r", "resolved_date": "2026-01-02"}],
                "kb_articles": [],
                "systems": [],
                "ips": ["10.0.0.1"],
                "sources": {"kb": {"elapsed_ms": 12, "error": "timed out after 10000 ms"}},
            })
        );
        let back: GatheredContext = serde_json::from_value(value).unwrap();
        assert_eq!(back, ctx);
        assert_eq!(
            back.errors().collect::<Vec<_>>(),
            [(SourceKind::Kb, "timed out after 10000 ms")]
        );
        // An older or partial record still reads.
        let empty: GatheredContext = serde_json::from_value(json!({})).unwrap();
        assert_eq!(empty, GatheredContext::default());
    }

    #[test]
    fn source_names_round_trip() {
        for kind in SourceKind::ALL {
            assert_eq!(kind.as_str().parse::<SourceKind>(), Ok(kind));
        }
        assert!("monitoring".parse::<SourceKind>().is_err());
    }
}
