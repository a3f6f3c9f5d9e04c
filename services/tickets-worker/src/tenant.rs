//! A tenant as the worker needs it: its own settings and its enhancement
//! preferences, read from the stored record (its tool's settings:
//! [`csp_tenant_tool`]). The intake validates what admins write; this side reads
//! leniently (a field it does not know is ignored, a missing one takes its
//! default) but never guesses a credential or a URL: the tool's connector
//! checks the settings it is given.

use csp_domain::{ContextSource, NoteFormat};
use serde::Deserialize;

/// `TenantRecord::settings` as the worker itself reads it, beside the
/// tool's fields ([`csp_tenant_tool::tool_settings`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Settings {
    /// A knowledge-base API answering `GET ?q=` with `[{title, summary, url}]`.
    #[serde(default)]
    pub kb_api_url: Option<String>,
}

/// `TenantRecord::preferences` (`enhancement_preferences`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Preferences {
    /// Every source when absent.
    #[serde(default = "all_sources")]
    pub sources: Vec<ContextSource>,
    #[serde(default)]
    pub note_format: NoteFormat,
    #[serde(default)]
    pub max_words: Option<u32>,
    #[serde(default)]
    pub mask_pii: bool,
}

fn all_sources() -> Vec<ContextSource> {
    ContextSource::ALL.to_vec()
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            sources: all_sources(),
            note_format: NoteFormat::default(),
            max_words: None,
            mask_pii: false,
        }
    }
}

impl Preferences {
    pub fn wants(&self, source: ContextSource) -> bool {
        self.sources.contains(&source)
    }
}

/// Reads a stored JSON object; `null` is the defaults.
pub(crate) fn read<T: serde::de::DeserializeOwned + Default>(
    value: &serde_json::Value,
    what: &str,
) -> Result<T, String> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(value.clone())
        .map_err(|e| format!("the tenant's {what} are invalid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn preferences_default_and_parse() {
        let p: Preferences = read(&serde_json::Value::Null, "preferences").unwrap();
        assert_eq!(p, Preferences::default());
        assert!(p.wants(ContextSource::Kb));
        let p: Preferences = read(
            &json!({"sources": ["kb"], "note_format": "markdown", "max_words": 200, "mask_pii": true, "extra": 1}),
            "preferences",
        )
        .unwrap();
        assert!(p.wants(ContextSource::Kb) && !p.wants(ContextSource::TicketHistory));
        assert_eq!(p.note_format, NoteFormat::Markdown);
        assert_eq!(p.max_words, Some(200));
        let p: Preferences = read(&json!({}), "preferences").unwrap();
        assert_eq!(p.sources.len(), 3);
        let err =
            read::<Preferences>(&json!({"sources": ["monitoring"]}), "preferences").unwrap_err();
        assert!(err.contains("preferences"), "{err}");
    }

    #[test]
    fn settings_parse() {
        let s: Settings = read(
            &json!({"servicedesk_url": "https://sdp.example", "kb_api_url": "https://kb.example/search"}),
            "settings",
        )
        .unwrap();
        assert_eq!(s.kb_api_url.as_deref(), Some("https://kb.example/search"));
    }
}
