//! A tenant's ticketing tool as stored, made ready for its connector: the
//! [`connector::Settings`] of a [`TenantRecord`] — the plain values of its
//! tool's fields from the `settings` JSON, and its tool's secret fields,
//! sealed under `Owner::tenant(id)` and the field's name, opened with the
//! keyring. Read by the tickets service (connection tests), the workers
//! (posting notes) and `csp tickets import`, so all three read a tenant the
//! same way. And the import of a tenant's resolved tickets into its history
//! through that tool ([`import`]), shared by `csp tickets import` and the
//! tickets service's `StartImport`.
//!
//! Must never: open a secret that is not one of the tool's fields (the
//! webhook secrets stay sealed); guess a value that is missing (the
//! connector refuses it, naming the field).

pub mod import;

use csp_secrets::{Keyring, Sealed};
use csp_store::{Owner, SecretStore, TenantRecord};
use csp_ticketing::connector::{self, ToolType};
use csp_ticketing::registry::connector;

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
    let fields = connector(tool).fields();
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
pub fn plain_values(
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
    fn a_tools_settings_are_its_plain_fields_as_strings() {
        let fields = connector(ToolType::ServicedeskPlus).fields();
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
