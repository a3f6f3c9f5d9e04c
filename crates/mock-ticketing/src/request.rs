//! A request as the mock keeps it: its own module, so that the seeding
//! (`seed.rs`) and the state (`state.rs`) both use it without using each
//! other.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A request as the mock stores it. Descriptions and resolutions are HTML,
/// as ServiceDesk Plus keeps them; times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockRequest {
    pub id: u64,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub created_ms: i64,
    #[serde(default)]
    pub resolved_ms: Option<i64>,
    #[serde(default)]
    pub completed_ms: Option<i64>,
    #[serde(default)]
    pub resolution: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub subcategory: Option<String>,
    #[serde(default)]
    pub item: Option<String>,
}

impl MockRequest {
    /// An open request, as a new ticket that a webhook announces.
    pub fn open(id: u64, subject: &str, description: &str, priority: &str) -> Self {
        Self {
            id,
            subject: subject.to_owned(),
            description: description.to_owned(),
            status: "Open".to_owned(),
            priority: priority.to_owned(),
            created_ms: now_ms(),
            resolved_ms: None,
            completed_ms: None,
            resolution: None,
            category: None,
            subcategory: None,
            item: None,
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
