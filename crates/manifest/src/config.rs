//! A plugin's configuration, checked against the manifest's `config_schema`.
//!
//! The schema is compiled on every check rather than kept in the
//! [`Manifest`]: manifests are compared and cloned, a compiled validator is
//! neither, and a config is checked only when an operator saves it or a
//! session starts the server.

use std::collections::BTreeSet;

use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value};

use crate::Manifest;
use crate::schema::{compile, dotted, join};
use crate::suggest::closest;

/// One config field that is wrong. Never quotes a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The config key (`a.b` inside an object value).
    pub field: String,
    pub message: String,
}

impl Manifest {
    fn properties(&self) -> Option<&Map<String, Value>> {
        self.config_schema.as_ref()?.get("properties")?.as_object()
    }

    /// Config fields marked `"secret": true`: stored encrypted, shown as
    /// `[REDACTED]`, passed to a server only through its environment.
    pub fn secret_fields(&self) -> BTreeSet<String> {
        self.properties()
            .into_iter()
            .flatten()
            .filter(|(_, p)| p.get("secret") == Some(&Value::Bool(true)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every field `config_schema` declares.
    pub fn config_fields(&self) -> BTreeSet<String> {
        self.properties()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// True when the plugin has config fields, so it must be configured
    /// before it can be activated.
    pub fn needs_config(&self) -> bool {
        self.properties().is_some_and(|p| !p.is_empty())
    }

    /// The declared fields of `config`, with the schema's `default` for each
    /// one it lacks.
    pub(crate) fn with_defaults(&self, config: &Map<String, Value>) -> Map<String, Value> {
        self.properties()
            .into_iter()
            .flatten()
            .filter_map(|(k, p)| {
                let v = config.get(k).or_else(|| p.get("default"))?;
                Some((k.clone(), v.clone()))
            })
            .collect()
    }

    /// Validates a complete config (defaults from the schema applied first)
    /// against config_schema; unknown keys are errors.
    pub fn validate_config(&self, config: &Map<String, Value>) -> Result<(), Vec<ConfigError>> {
        let fields = self.config_fields();
        let mut errors: Vec<ConfigError> = config
            .keys()
            .filter(|k| !fields.contains(*k))
            .map(|k| ConfigError {
                field: k.clone(),
                message: match closest(k, fields.iter().map(String::as_str)) {
                    Some(c) => format!("unknown config field (did you mean '{c}'?)"),
                    None => "unknown config field".into(),
                },
            })
            .collect();
        if let Some(schema) = &self.config_schema {
            match compile(schema) {
                Ok(validator) => {
                    let secrets = self.secret_fields();
                    let instance = Value::Object(self.with_defaults(config));
                    errors.extend(
                        validator
                            .iter_errors(&instance)
                            .map(|e| describe(&e, &secrets)),
                    );
                }
                Err(e) => errors.push(ConfigError {
                    field: String::new(),
                    message: format!("config_schema is not a usable JSON Schema: {e}"),
                }),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn describe(err: &jsonschema::ValidationError<'_>, secrets: &BTreeSet<String>) -> ConfigError {
    let path = dotted(err.instance_path());
    let field = path.strip_prefix('.').unwrap_or(&path).to_owned();
    if let ValidationErrorKind::Required { property } = err.kind() {
        let name = property
            .as_str()
            .map_or_else(|| property.to_string(), str::to_owned);
        return ConfigError {
            field: join(&field, &name),
            message: "missing required field".into(),
        };
    }
    let top = field.split(['.', '[']).next().unwrap_or_default();
    // The message quotes the offending value; that must not be a secret, nor
    // the whole config (which holds the secrets).
    let message = if field.is_empty() {
        err.masked_with("the config").to_string()
    } else if secrets.contains(top) {
        err.masked_with("the value").to_string()
    } else {
        err.to_string()
    };
    ConfigError { field, message }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::parse_manifest;

    fn manifest(config_schema: Value) -> Manifest {
        let doc = json!({
            "manifest_version": 1, "name": "p", "version": "1.0.0", "plugin_type": "tool",
            "description": "d", "capabilities": {"tools": []}, "config_schema": config_schema,
        });
        parse_manifest("p/plugin.json".as_ref(), doc.to_string().as_bytes(), "p").unwrap()
    }

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn errors(m: &Manifest, v: Value) -> Vec<(String, String)> {
        m.validate_config(&config(v))
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn sample() -> Manifest {
        manifest(json!({
            "type": "object",
            "properties": {
                "greeting": {"type": "string", "default": "hi"},
                "level": {"enum": ["low", "high"]},
                "retries": {"type": "integer", "minimum": 0, "maximum": 5, "default": 2},
                "api_token": {"type": "string", "secret": true, "minLength": 8},
                "opts": {"type": "object", "properties": {"depth": {"type": "integer"}}, "required": ["depth"]}
            },
            "required": ["api_token", "greeting"]
        }))
    }

    #[test]
    fn field_sets() {
        let m = sample();
        assert_eq!(m.secret_fields(), BTreeSet::from(["api_token".to_owned()]));
        assert_eq!(m.config_fields().len(), 5);
        assert!(m.needs_config());
        assert!(!manifest(json!({"type": "object"})).needs_config());
        assert!(!manifest(json!({"type": "object", "properties": {}})).needs_config());
    }

    #[test]
    fn accepts_a_valid_config_with_defaults_applied() {
        let m = sample();
        // greeting is required but has a default.
        assert_eq!(
            m.validate_config(&config(json!({"api_token": "12345678"}))),
            Ok(())
        );
        assert_eq!(
            m.validate_config(&config(
                json!({"api_token": "12345678", "level": "low", "retries": 0, "opts": {"depth": 1}})
            )),
            Ok(())
        );
    }

    #[test]
    fn reports_missing_required_fields() {
        assert_eq!(
            errors(&sample(), json!({})),
            [("api_token".into(), "missing required field".into())]
        );
        assert_eq!(
            errors(&sample(), json!({"api_token": "12345678", "opts": {}})),
            [("opts.depth".into(), "missing required field".into())]
        );
    }

    #[test]
    fn reports_type_enum_and_range_errors() {
        let got = errors(
            &sample(),
            json!({"api_token": "12345678", "greeting": 5, "level": "mid", "retries": 9}),
        );
        let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["greeting", "level", "retries"]);
        assert!(got[0].1.contains("not of type \"string\""), "{got:?}");
        assert!(got[1].1.contains("\"mid\""), "{got:?}");
        assert!(got[2].1.contains("maximum of 5"), "{got:?}");
    }

    #[test]
    fn defaults_are_validated_too() {
        let m = manifest(
            json!({"type": "object", "properties": {"n": {"type": "integer", "default": "x"}}}),
        );
        assert_eq!(errors(&m, json!({})).len(), 1);
        assert_eq!(m.validate_config(&config(json!({"n": 3}))), Ok(()));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let got = errors(
            &sample(),
            json!({"api_token": "12345678", "greting": "yo", "zzz": 1}),
        );
        assert_eq!(
            got,
            [
                (
                    "greting".into(),
                    "unknown config field (did you mean 'greeting'?)".into()
                ),
                ("zzz".into(), "unknown config field".into()),
            ]
        );
        let none = manifest(json!({"type": "object"}));
        assert_eq!(
            errors(&none, json!({"a": 1})),
            [("a".into(), "unknown config field".into())]
        );
    }

    #[test]
    fn secret_values_never_appear_in_errors() {
        let got = sample()
            .validate_config(&config(json!({"api_token": "short-1"})))
            .unwrap_err();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field, "api_token");
        assert!(!got[0].to_string().contains("short-1"), "{got:?}");

        let m = manifest(json!({
            "type": "object",
            "properties": {"t": {"type": "string", "secret": true}},
            "minProperties": 2
        }));
        let got = m
            .validate_config(&config(json!({"t": "hunter2-secret"})))
            .unwrap_err();
        assert!(!format!("{got:?}").contains("hunter2"), "{got:?}");
    }

    #[test]
    fn formats_are_checked() {
        let m = manifest(
            json!({"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}}),
        );
        assert_eq!(errors(&m, json!({"mail": "nope"})).len(), 1);
        assert_eq!(
            m.validate_config(&config(json!({"mail": "a@b.example"}))),
            Ok(())
        );
    }
}
