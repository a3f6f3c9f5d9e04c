//! Rules both adapters apply to plugin state, and how they assemble a
//! [`PluginState`] from the rows of one join.

pub(crate) use crate::secrets::check_key;
use crate::{Error, PluginState, SecretChange, StoredSecret};
use csp_domain::UserId;
use time::OffsetDateTime;

/// Checks every key and orders the changes by config key, keeping the order
/// of changes to one key. Rows are then locked in key order, the order in
/// which a re-encryption locks them, so the two cannot deadlock.
pub(crate) fn prepare_changes(
    name: &str,
    mut changes: Vec<SecretChange>,
) -> Result<Vec<SecretChange>, Error> {
    check_key("plugin name", name)?;
    for change in &changes {
        check_key("secret key", change_key(change))?;
    }
    changes.sort_by(|a, b| change_key(a).cmp(change_key(b)));
    Ok(changes)
}

pub(crate) fn change_key(change: &SecretChange) -> &str {
    match change {
        SecretChange::Set(secret) => &secret.key,
        SecretChange::Remove(key) => key,
    }
}

/// Checked on the state as saved, inside the transaction, so that it holds
/// whatever the changes did. Names the key, never its value.
pub(crate) fn check_no_secret_in_config(state: &PluginState) -> Result<(), Error> {
    match state
        .secrets
        .iter()
        .find(|secret| state.config.contains_key(&secret.key))
    {
        Some(secret) => Err(Error::InvalidInput(format!(
            "config of plugin '{}' holds '{}', which is stored as a secret; a secret \
             value never goes into the plain config",
            state.plugin_name, secret.key
        ))),
        None => Ok(()),
    }
}

/// One row of the plugin_state LEFT JOIN sealed_secrets query: a state with
/// one of its secrets, or with none.
pub(crate) struct JoinedRow {
    pub(crate) plugin_name: String,
    pub(crate) active: bool,
    pub(crate) config: serde_json::Map<String, serde_json::Value>,
    pub(crate) updated_by: Option<UserId>,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) secret: Option<StoredSecret>,
}

/// Folds rows ordered by plugin name into one state per plugin.
pub(crate) fn group(rows: impl IntoIterator<Item = JoinedRow>) -> Vec<PluginState> {
    let mut states: Vec<PluginState> = Vec::new();
    for row in rows {
        let same = states
            .last()
            .is_some_and(|last| last.plugin_name == row.plugin_name);
        if !same {
            states.push(PluginState {
                plugin_name: row.plugin_name,
                active: row.active,
                config: row.config,
                secrets: Vec::new(),
                updated_by: row.updated_by,
                updated_at: row.updated_at,
            });
        }
        if let Some(secret) = row.secret {
            states
                .last_mut()
                .expect("a state was pushed for this row")
                .secrets
                .push(secret);
        }
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(key: &str) -> StoredSecret {
        StoredSecret {
            key: key.to_owned(),
            encrypted_value: format!("token-of-{key}"),
            encryption_key_version: "v1".to_owned(),
        }
    }

    #[test]
    fn changes_are_ordered_by_key_keeping_each_keys_order() {
        let changes = vec![
            SecretChange::Set(secret("b")),
            SecretChange::Remove("a".to_owned()),
            SecretChange::Remove("b".to_owned()),
            SecretChange::Set(secret("a")),
        ];
        let ordered = prepare_changes("p", changes).unwrap();
        assert_eq!(
            ordered,
            vec![
                SecretChange::Remove("a".to_owned()),
                SecretChange::Set(secret("a")),
                SecretChange::Set(secret("b")),
                SecretChange::Remove("b".to_owned()),
            ]
        );
    }

    #[test]
    fn empty_names_and_keys_are_invalid() {
        assert!(matches!(
            prepare_changes("", vec![]),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            prepare_changes("p", vec![SecretChange::Remove(String::new())]),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn a_config_key_with_a_stored_secret_is_refused_by_name_only() {
        let serde_json::Value::Object(config) =
            json!({ "greeting": "hi", "api_token": "plain-value" })
        else {
            unreachable!()
        };
        let mut state = PluginState {
            plugin_name: "p".to_owned(),
            active: false,
            config,
            secrets: vec![secret("other")],
            updated_by: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        check_no_secret_in_config(&state).unwrap();
        state.secrets.push(secret("api_token"));
        let message = check_no_secret_in_config(&state).unwrap_err().to_string();
        assert!(message.contains("'api_token'"), "{message}");
        assert!(!message.contains("plain-value"), "{message}");
    }

    #[test]
    fn rows_group_into_states_with_their_secrets() {
        let row = |name: &str, secret: Option<StoredSecret>| JoinedRow {
            plugin_name: name.to_owned(),
            active: name == "a",
            config: serde_json::Map::new(),
            updated_by: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            secret,
        };
        let states = group([
            row("a", Some(secret("k1"))),
            row("a", Some(secret("k2"))),
            row("b", None),
            row("c", Some(secret("k1"))),
        ]);
        let summary: Vec<(&str, bool, Vec<&str>)> = states
            .iter()
            .map(|s| {
                let keys = s.secrets.iter().map(|x| x.key.as_str()).collect();
                (s.plugin_name.as_str(), s.active, keys)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", true, vec!["k1", "k2"]),
                ("b", false, vec![]),
                ("c", false, vec!["k1"]),
            ]
        );
    }
}
