//! A tenant as the worker needs it: its tool and that tool's settings, its
//! own settings and its enhancement preferences, read from the stored
//! record. The intake validates what admins write; this side reads
//! leniently (a field it does not know is ignored, a missing one takes its
//! default) but never guesses a credential or a URL: the tool's connector
//! checks the settings it is given.

use csp_domain::{ContextSource, NoteFormat};
use csp_secrets::{Keyring, Sealed};
use csp_store::{Owner, SecretStore, TenantRecord};
use csp_ticketing::connector::{self, ToolType};
use serde::Deserialize;

/// `TenantRecord::settings` as the worker itself reads it, beside the
/// tool's fields ([`tool_settings`]).
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

/// Why a tenant's tool settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ToolSettingsError {
    /// The store did not answer; it may later.
    #[error("cannot read the tenant's secrets: {0}")]
    Store(#[source] csp_store::Error),
    #[error("the tenant's settings are invalid: not a JSON object")]
    NotAnObject,
    /// A secret field is stored sealed and there is no key to open it.
    #[error("the tenant's {field} is sealed but CSP_SECRET_KEY is not set")]
    NoKeyring { field: &'static str },
    #[error("the tenant's {field} cannot be opened: {source}")]
    Unseal {
        field: &'static str,
        #[source]
        source: csp_secrets::Error,
    },
}

impl ToolSettingsError {
    /// Only the store failing may pass; a setting or a key stays wrong.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ToolSettingsError::Store(_))
    }
}

/// The settings of the tenant's `tool` for its connector: the string values
/// of the tool's non-secret fields in `TenantRecord::settings`, and each of
/// its secret fields stored sealed under `Owner::tenant(id)` and the field's
/// name, opened with `keyring`. Nothing else of the tenant's is opened (its
/// webhook secrets stay sealed); a field that is missing is left out, for
/// the connector to refuse.
pub async fn tool_settings(
    tenant: &TenantRecord,
    tool: ToolType,
    secrets: &dyn SecretStore,
    keyring: Option<&Keyring>,
) -> Result<connector::Settings, ToolSettingsError> {
    let fields = csp_ticketing::registry::connector(tool).fields();
    let mut settings = connector::Settings {
        values: plain_values(fields, &tenant.settings)?,
        ..connector::Settings::default()
    };
    if !fields.iter().any(|f| f.secret) {
        return Ok(settings);
    }
    let stored = secrets
        .secrets(&Owner::tenant(tenant.tenant_id.as_str()))
        .await
        .map_err(ToolSettingsError::Store)?;
    for field in fields.iter().filter(|f| f.secret) {
        let Some(secret) = stored.iter().find(|s| s.key == field.name) else {
            continue;
        };
        let keyring = keyring.ok_or(ToolSettingsError::NoKeyring { field: field.name })?;
        let value = keyring
            .open(&Sealed {
                token: secret.encrypted_value.clone(),
                key_version: secret.encryption_key_version.clone(),
            })
            .map_err(|source| ToolSettingsError::Unseal {
                field: field.name,
                source,
            })?;
        settings.secrets.insert(field.name.to_owned(), value);
    }
    Ok(settings)
}

/// The string values of `fields`' non-secret fields in the stored settings
/// (`null`: none).
fn plain_values(
    fields: &[connector::Field],
    stored: &serde_json::Value,
) -> Result<std::collections::BTreeMap<String, String>, ToolSettingsError> {
    let object = match stored {
        serde_json::Value::Null => return Ok(Default::default()),
        serde_json::Value::Object(o) => o,
        _ => return Err(ToolSettingsError::NotAnObject),
    };
    Ok(fields
        .iter()
        .filter(|f| !f.secret)
        .filter_map(|f| {
            let value = object.get(f.name)?.as_str()?;
            Some((f.name.to_owned(), value.to_owned()))
        })
        .collect())
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

    #[test]
    fn a_tools_settings_are_its_plain_fields_as_strings() {
        let fields = csp_ticketing::registry::connector(ToolType::ServicedeskPlus).fields();
        let values = plain_values(
            fields,
            &json!({
                "servicedesk_url": "https://sdp.example",
                "servicedesk_auth": 7,
                "kb_api_url": "https://kb.example/search",
                "api_key": "never a plain value",
                "jira_url": "https://acme.atlassian.net",
            }),
        )
        .unwrap();
        assert_eq!(
            values.into_iter().collect::<Vec<_>>(),
            [(
                "servicedesk_url".to_owned(),
                "https://sdp.example".to_owned()
            )]
        );
        assert!(
            plain_values(fields, &serde_json::Value::Null)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            plain_values(fields, &json!(["servicedesk_url"])),
            Err(ToolSettingsError::NotAnObject)
        ));
    }
}
