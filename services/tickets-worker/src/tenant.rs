//! A tenant as the worker needs it: its tool's settings, its enhancement
//! preferences and its credential, read from the stored record. The
//! intake validates what admins write; this side reads leniently (a field
//! it does not know is ignored, a missing one takes its default) but never
//! guesses a credential or a URL.

use csp_domain::{ContextSource, NoteFormat};
use csp_secrets::{Keyring, Sealed};
use csp_store::{Owner, SecretStore, TenantRecord};
use csp_ticketing::servicedesk::SdpAuth;
use secrecy::SecretString;
use serde::Deserialize;

/// The secret key under `Owner::tenant(id)` that holds the tool's API key
/// (on premises) or OAuth token (cloud).
pub const API_KEY: &str = "api_key";

/// `TenantRecord::settings`: the tool's non-secret settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub servicedesk_url: Option<String>,
    /// `authtoken` (on premises, the default) or `zoho_oauth` (cloud).
    #[serde(default)]
    pub servicedesk_auth: Option<String>,
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

/// The tenant's credential for its tool, opened.
pub(crate) async fn sdp_auth(
    tenant: &TenantRecord,
    settings: &Settings,
    secrets: &dyn SecretStore,
    keyring: Option<&Keyring>,
) -> Result<SdpAuth, Credential> {
    let stored = secrets
        .secrets(&Owner::tenant(tenant.tenant_id.as_str()))
        .await
        .map_err(|e| Credential::Store(e.to_string()))?;
    let secret = stored
        .into_iter()
        .find(|s| s.key == API_KEY)
        .ok_or_else(|| Credential::Invalid("the tenant has no api_key".into()))?;
    let keyring = keyring.ok_or_else(|| {
        Credential::Invalid(
            "the tenant's api_key is sealed but CSP_SECRET_KEY is not set for the tickets worker"
                .into(),
        )
    })?;
    let key: SecretString = keyring
        .open(&Sealed {
            token: secret.encrypted_value,
            key_version: secret.encryption_key_version,
        })
        .map_err(|e| Credential::Invalid(format!("the tenant's api_key cannot be opened: {e}")))?;
    match settings.servicedesk_auth.as_deref().unwrap_or("authtoken") {
        "authtoken" => Ok(SdpAuth::AuthToken(key)),
        "zoho_oauth" => Ok(SdpAuth::ZohoOAuth(key)),
        other => Err(Credential::Invalid(format!(
            "servicedesk_auth must be authtoken or zoho_oauth, not {:?}",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

/// Why the credential is missing: the store may answer later, a bad
/// setting will not.
pub(crate) enum Credential {
    Store(String),
    Invalid(String),
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
        assert_eq!(s.servicedesk_url.as_deref(), Some("https://sdp.example"));
        assert_eq!(s.servicedesk_auth, None);
    }
}
