//! From a manifest's `mcp` section and a config to the exact process to start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::placeholder::{self, Piece};
use crate::{Manifest, PluginType};

/// An MCP server's launch spec with every placeholder expanded. Every
/// environment value is wrapped as a secret: any of them may carry one, and
/// this type's `Debug` shows none of them.
#[derive(Debug, Clone)]
pub struct ResolvedServer {
    pub server_name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, SecretString>,
    /// `mcp.cwd`, relative to the plugin directory unless absolute.
    pub cwd: Option<PathBuf>,
}

impl Manifest {
    /// Expands ${plugin_dir} and ${config.key} (defaults applied; non-string
    /// values rendered as JSON text; an unset optional key expands to "").
    /// Errors (String message) if plugin_type is not mcp or config invalid.
    ///
    /// `plugin_dir` should be absolute: it is substituted as given.
    pub fn resolve_mcp(
        &self,
        plugin_dir: &Path,
        config: &Map<String, Value>,
    ) -> Result<ResolvedServer, String> {
        let mcp = match (&self.mcp, self.plugin_type) {
            (Some(mcp), PluginType::Mcp) => mcp,
            _ => {
                return Err(format!(
                    "plugin '{}' is a {} plugin; only mcp plugins run an MCP server",
                    self.name, self.plugin_type
                ));
            }
        };
        if let Err(errors) = self.validate_config(config) {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(format!(
                "config of plugin '{}' is invalid: {}",
                self.name,
                list.join("; ")
            ));
        }
        let dir = plugin_dir.to_str().ok_or_else(|| {
            format!(
                "plugin directory {} is not valid UTF-8",
                plugin_dir.display()
            )
        })?;
        let x = Expander {
            dir,
            values: self.with_defaults(config),
            fields: self.config_fields(),
            secrets: self.secret_fields(),
        };
        let command = x.expand(&mcp.command, "mcp.command", false)?;
        let args = mcp
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| x.expand(a, &format!("mcp.args[{i}]"), false))
            .collect::<Result<_, _>>()?;
        let env = mcp
            .env
            .iter()
            .map(|(k, v)| {
                let value = x.expand(v, &format!("mcp.env.{k}"), true)?;
                Ok((k.clone(), SecretString::from(value)))
            })
            .collect::<Result<_, String>>()?;
        let cwd = mcp
            .cwd
            .as_deref()
            .map(|c| x.expand(c, "mcp.cwd", false).map(|c| plugin_dir.join(c)))
            .transpose()?;
        Ok(ResolvedServer {
            server_name: mcp.server_name.clone(),
            command,
            args,
            env,
            cwd,
        })
    }
}

struct Expander<'a> {
    dir: &'a str,
    values: Map<String, Value>,
    fields: BTreeSet<String>,
    secrets: BTreeSet<String>,
}

impl Expander<'_> {
    /// `s` with placeholders replaced. The checks repeat what
    /// [`crate::parse_manifest`] enforces, for manifests built by hand.
    fn expand(&self, s: &str, field: &str, secrets_allowed: bool) -> Result<String, String> {
        let pieces = placeholder::parse(s).map_err(|e| format!("{field} has {e}"))?;
        let mut out = String::with_capacity(s.len());
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::PluginDir => out.push_str(self.dir),
                Piece::Config(key) => {
                    if !self.fields.contains(key) {
                        return Err(format!("{field} refers to unknown config field '{key}'"));
                    }
                    if !secrets_allowed && self.secrets.contains(key) {
                        return Err(format!(
                            "{field} refers to secret config field '{key}'; secrets may appear only in mcp.env"
                        ));
                    }
                    match self.values.get(key) {
                        None => {}
                        Some(Value::String(v)) => out.push_str(v),
                        Some(other) => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;
    use crate::parse_manifest;

    fn everything(mcp: Value) -> Manifest {
        let doc = json!({
            "manifest_version": 1, "name": "everything", "version": "1.0.0", "plugin_type": "mcp",
            "description": "d",
            "capabilities": {"tools": [{"name": "mcp__everything__echo"}]},
            "config_schema": {
                "type": "object",
                "properties": {
                    "greeting": {"type": "string", "default": "hi"},
                    "port": {"type": "integer", "default": 8080},
                    "verbose": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "api_token": {"type": "string", "secret": true}
                },
                "required": ["api_token"]
            },
            "mcp": mcp,
        });
        parse_manifest(
            "everything/plugin.json".as_ref(),
            doc.to_string().as_bytes(),
            "everything",
        )
        .unwrap_or_else(|p| panic!("{p:#?}"))
    }

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn env(s: &ResolvedServer) -> BTreeMap<&str, &str> {
        s.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_secret()))
            .collect()
    }

    #[test]
    fn expands_placeholders_with_defaults_and_json_rendering() {
        let m = everything(json!({
            "command": "${plugin_dir}/bin/server",
            "args": ["--greeting=${config.greeting}", "--port", "${config.port}", "${config.verbose}", "${config.tags}"],
            "env": {"TOKEN": "${config.api_token}", "HOME_DIR": "${plugin_dir}"},
            "cwd": "work"
        }));
        let s = m
            .resolve_mcp(
                Path::new("/srv/plugins/everything"),
                &config(json!({"api_token": "s3cret", "tags": ["a", "b"]})),
            )
            .unwrap();
        assert_eq!(s.server_name, "everything");
        assert_eq!(s.command, "/srv/plugins/everything/bin/server");
        // verbose is unset and has no default: it expands to "".
        assert_eq!(
            s.args,
            ["--greeting=hi", "--port", "8080", "", r#"["a","b"]"#]
        );
        assert_eq!(
            env(&s),
            BTreeMap::from([("HOME_DIR", "/srv/plugins/everything"), ("TOKEN", "s3cret")])
        );
        assert_eq!(s.cwd, Some(PathBuf::from("/srv/plugins/everything/work")));
    }

    #[test]
    fn given_values_override_defaults() {
        let m =
            everything(json!({"command": "srv", "args": ["${config.greeting}", "${config.port}"]}));
        let s = m
            .resolve_mcp(
                Path::new("/p"),
                &config(json!({"api_token": "t", "greeting": "yo", "port": 1})),
            )
            .unwrap();
        assert_eq!(s.args, ["yo", "1"]);
        assert_eq!(s.cwd, None);
        assert!(s.env.is_empty());
    }

    #[test]
    fn escape_yields_a_literal_placeholder() {
        let m = everything(
            json!({"command": "sh", "args": ["-c", "echo $${HOME} $$${plugin_dir} $5"]}),
        );
        let s = m
            .resolve_mcp(Path::new("/p"), &config(json!({"api_token": "t"})))
            .unwrap();
        assert_eq!(s.args[1], "echo ${HOME} $${plugin_dir} $5");
    }

    #[test]
    fn absolute_cwd_is_kept() {
        let m = everything(json!({"command": "srv", "cwd": "/tmp/${config.greeting}"}));
        let s = m
            .resolve_mcp(Path::new("/p"), &config(json!({"api_token": "t"})))
            .unwrap();
        assert_eq!(s.cwd, Some(PathBuf::from("/tmp/hi")));
    }

    #[test]
    fn secrets_reach_only_the_environment() {
        let m = everything(
            json!({"command": "srv", "args": ["${config.greeting}"], "env": {"T": "Bearer ${config.api_token}"}}),
        );
        let s = m
            .resolve_mcp(
                Path::new("/p"),
                &config(json!({"api_token": "s3cret-value"})),
            )
            .unwrap();
        assert_eq!(env(&s)["T"], "Bearer s3cret-value");
        assert!(!s.args.iter().any(|a| a.contains("s3cret")));
        assert!(!format!("{s:?}").contains("s3cret"), "Debug leaks a secret");

        // A hand-built manifest that puts a secret on argv is refused, and the
        // refusal does not quote the value.
        let mut bad = m.clone();
        bad.mcp.as_mut().unwrap().args = vec!["${config.api_token}".into()];
        let err = bad
            .resolve_mcp(
                Path::new("/p"),
                &config(json!({"api_token": "s3cret-value"})),
            )
            .unwrap_err();
        assert!(err.contains("secret config field 'api_token'"), "{err}");
        assert!(!err.contains("s3cret"));
    }

    #[test]
    fn refuses_invalid_config_and_non_mcp_plugins() {
        let m = everything(json!({"command": "srv"}));
        let err = m
            .resolve_mcp(Path::new("/p"), &config(json!({"port": "x"})))
            .unwrap_err();
        assert!(err.contains("api_token: missing required field"), "{err}");
        assert!(err.contains("port:"), "{err}");

        let mut tool = m.clone();
        tool.plugin_type = PluginType::Tool;
        tool.mcp = None;
        let err = tool
            .resolve_mcp(Path::new("/p"), &config(json!({"api_token": "t"})))
            .unwrap_err();
        assert_eq!(
            err,
            "plugin 'everything' is a tool plugin; only mcp plugins run an MCP server"
        );
    }

    #[test]
    fn unknown_keys_in_hand_built_manifests_are_refused() {
        let mut m = everything(json!({"command": "srv"}));
        m.mcp
            .as_mut()
            .unwrap()
            .env
            .insert("X".into(), "${config.nope}".into());
        let err = m
            .resolve_mcp(Path::new("/p"), &config(json!({"api_token": "t"})))
            .unwrap_err();
        assert_eq!(err, "mcp.env.X refers to unknown config field 'nope'");
    }
}
