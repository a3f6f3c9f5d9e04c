//! The rules of a `plugin.json` (docs/plugins.md), checked on a parsed value.
//!
//! Every rule that fails adds a [`Finding`] and checking goes on, so an
//! author sees all problems of a file at once. A finding names the field path
//! it is about; [`crate::parse_manifest`] turns paths into lines.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use csp_domain::Role;
use serde_json::{Map, Value};

use crate::schema::{compile, dotted, join};
use crate::suggest::closest;
use crate::{Manifest, McpSpec, PluginType, ToolSpec, placeholder};

const TOP_LEVEL: &[&str] = &[
    "$schema",
    "manifest_version",
    "name",
    "version",
    "plugin_type",
    "description",
    "required_role",
    "capabilities",
    "permissions",
    "config_schema",
    "mcp",
];
const CAPABILITIES: &[&str] = &["tools"];
const TOOL: &[&str] = &["name", "description", "required_role"];
const PERMISSIONS: &[&str] = &["network"];
const MCP: &[&str] = &["server_name", "command", "args", "env", "cwd"];

const ROLES: [&str; 3] = ["admin", "operator", "user"];
const JSON_TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "object", "array", "null",
];
const MAX_TOOL_NAME: usize = 128;

/// Which position of a field a finding points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// The field's key (its value if it has none, as in a list element).
    Key,
    /// The field's value; for a missing field, the object that lacks it.
    Value,
}

/// A problem whose line is not known yet.
#[derive(Debug)]
pub(crate) struct Finding {
    /// The field the problem is about, e.g. `capabilities.tools[1].name`.
    pub(crate) field: String,
    /// The path whose position is reported (the parent, for a missing field).
    pub(crate) anchor: String,
    pub(crate) at: At,
    pub(crate) message: String,
    pub(crate) suggestion: Option<String>,
}

/// What `${config.<key>}` placeholders may name.
enum ConfigKeys {
    Known {
        all: BTreeSet<String>,
        secret: BTreeSet<String>,
    },
    /// config_schema is broken: placeholder keys cannot be checked.
    Unknown,
}

pub(crate) fn check(root: &Map<String, Value>, dir_name: &str) -> Result<Manifest, Findings> {
    let mut c = Checker::default();
    let manifest_version = c.manifest_version(root);
    let name = c.name(root, dir_name);
    let version = c.version(root);
    let plugin_type = c.plugin_type(root);
    let description = c.description(root);
    let required_role = c
        .role(root, "", "required_role")
        .map(|r| r.unwrap_or(Role::Operator));
    let (config_schema, keys) = c.config_schema(root);
    let (mcp, server) = c.mcp(root, plugin_type, name.as_deref(), &keys);
    let tools = c.tools(root, plugin_type, server.as_deref(), required_role);
    let network = c.network(root);
    // Editors pick a JSON Schema by this field; csp has no use for it.
    let _ = c.opt_string(root, "", "$schema");
    // Last, so that a file of many stray fields still lists the rules it breaks.
    c.unknown_fields(root, "", TOP_LEVEL);

    match (
        manifest_version,
        name,
        version,
        plugin_type,
        description,
        required_role,
        tools,
        network,
    ) {
        (
            Some(manifest_version),
            Some(name),
            Some(version),
            Some(plugin_type),
            Some(description),
            Some(required_role),
            Some(tools),
            Some(network),
        ) if c.findings.is_empty() => Ok(Manifest {
            manifest_version,
            name,
            version,
            plugin_type,
            description,
            required_role,
            tools,
            network,
            config_schema,
            mcp,
        }),
        _ => {
            debug_assert!(!c.findings.is_empty(), "a rule failed without a finding");
            Err(Findings {
                kept: c.findings,
                omitted: c.omitted,
            })
        }
    }
}

#[derive(Default)]
struct Checker {
    findings: Vec<Finding>,
    /// Findings beyond [`crate::MAX_PROBLEMS`], counted but not kept.
    omitted: usize,
}

/// The findings of a manifest that failed, and how many more there were.
#[derive(Debug)]
pub(crate) struct Findings {
    pub(crate) kept: Vec<Finding>,
    pub(crate) omitted: usize,
}

/// How a value is shown after "found": strings quoted (and shortened),
/// containers by kind.
pub(crate) fn found(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 60 => {
            let short: String = s.chars().take(57).collect();
            format!(
                "{}...\"",
                serde_json::to_string(&short)
                    .unwrap_or_default()
                    .trim_end_matches('"')
            )
        }
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    }
}

fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(word, candidates).map(|c| format!("Did you mean \"{c}\"?"))
}

impl Checker {
    fn full(&self) -> bool {
        self.findings.len() >= crate::MAX_PROBLEMS
    }

    fn push(
        &mut self,
        field: &str,
        anchor: &str,
        at: At,
        message: String,
        suggestion: Option<String>,
    ) {
        if self.full() {
            self.omitted += 1;
            return;
        }
        self.findings.push(Finding {
            field: field.to_owned(),
            anchor: anchor.to_owned(),
            at,
            message,
            suggestion,
        });
    }

    fn at_key(&mut self, path: &str, message: String, suggestion: Option<String>) {
        self.push(path, path, At::Key, message, suggestion);
    }

    fn at_value(&mut self, path: &str, message: String, suggestion: Option<String>) {
        self.push(path, path, At::Value, message, suggestion);
    }

    fn missing(&mut self, parent: &str, key: &str, why: &str, suggestion: Option<String>) {
        let field = join(parent, key);
        self.push(
            &field,
            parent,
            At::Value,
            format!("Missing required field '{field}'{why}"),
            suggestion,
        );
    }

    fn wrong_type(&mut self, path: &str, expected: &str, v: &Value) {
        self.at_value(
            path,
            format!("Field '{path}' must be {expected} (found {})", found(v)),
            None,
        );
    }

    fn unknown_fields(&mut self, obj: &Map<String, Value>, parent: &str, allowed: &[&str]) {
        for key in obj.keys() {
            if allowed.contains(&key.as_str()) || key.starts_with("x-") {
                continue;
            }
            if self.full() {
                // A file of thousands of stray fields: count, skip the suggestions.
                self.omitted += 1;
                continue;
            }
            let suggestion = match closest(key, allowed.iter().copied()) {
                Some(c) => format!("Did you mean '{c}'?"),
                None => "Remove it; custom fields must start with 'x-'.".into(),
            };
            let path = join(parent, key);
            self.at_key(&path, format!("Unknown field '{path}'"), Some(suggestion));
        }
    }

    /// A string field; `None` (with a finding) when it has another type.
    fn opt_string<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<Option<&'v str>> {
        match obj.get(key) {
            None => Some(None),
            Some(Value::String(s)) => Some(Some(s)),
            Some(other) => {
                self.wrong_type(&join(parent, key), "a string", other);
                None
            }
        }
    }

    fn string<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<&'v str> {
        let value = self.opt_string(obj, parent, key)?;
        if value.is_none() {
            self.missing(parent, key, "", None);
        }
        value
    }

    /// A string that must not be empty or only whitespace.
    fn non_empty(&mut self, path: &str, s: &str) -> Option<()> {
        if s.trim().is_empty() {
            self.at_value(path, format!("Field '{path}' must not be empty"), None);
            return None;
        }
        Some(())
    }

    fn manifest_version(&mut self, root: &Map<String, Value>) -> Option<u32> {
        let Some(v) = root.get("manifest_version") else {
            self.missing(
                "",
                "manifest_version",
                "",
                Some("Add \"manifest_version\": 1.".into()),
            );
            return None;
        };
        match v.as_f64() {
            // JSON Schema counts 1.0 as the integer 1; so does this check.
            Some(1.0) => Some(1),
            Some(_) => {
                self.at_value(
                    "manifest_version",
                    format!("Unsupported manifest_version {v}: this csp reads manifest_version 1"),
                    Some("Set \"manifest_version\": 1.".into()),
                );
                None
            }
            None => {
                let hint = v.is_string().then(|| {
                    "Write the number without quotes: \"manifest_version\": 1.".to_owned()
                });
                self.at_value(
                    "manifest_version",
                    format!(
                        "Field 'manifest_version' must be the integer 1 (found {})",
                        found(v)
                    ),
                    hint,
                );
                None
            }
        }
    }

    fn name(&mut self, root: &Map<String, Value>, dir_name: &str) -> Option<String> {
        let name = self.string(root, "", "name")?;
        if !valid_name(name) {
            let slug = slug(name);
            let suggestion = if valid_name(&slug) {
                format!("Did you mean \"{slug}\"?")
            } else {
                "For example \"my-plugin\".".into()
            };
            self.at_value(
                "name",
                format!(
                    "Field 'name' must be 1 to 63 lowercase letters, digits, '_' or '-', starting with a letter or digit (found {})",
                    found(&Value::from(name))
                ),
                Some(suggestion),
            );
            return None;
        }
        if name != dir_name {
            self.at_value(
                "name",
                format!("Field 'name' is \"{name}\" but the plugin directory is named \"{dir_name}\""),
                Some(format!(
                    "The name must equal the directory name: rename the directory to \"{name}\" or set \"name\": \"{dir_name}\"."
                )),
            );
            return None;
        }
        Some(name.to_owned())
    }

    fn version(&mut self, root: &Map<String, Value>) -> Option<String> {
        let version = self.string(root, "", "version")?;
        if is_semver(version) {
            return Some(version.to_owned());
        }
        let parts: Vec<&str> = version.split('.').collect();
        let suggestion = if parts.len() < 3 && parts.iter().all(|p| is_numeric_id(p)) {
            let padded: Vec<&str> = parts.iter().copied().chain(["0"; 2]).take(3).collect();
            format!("Did you mean \"{}\"?", padded.join("."))
        } else {
            "For example \"1.0.0\", \"2.1.0-beta.1\" or \"2025.11.25\".".into()
        };
        self.at_value(
            "version",
            format!(
                "Field 'version' must be a semantic version MAJOR.MINOR.PATCH (found {})",
                found(&Value::from(version))
            ),
            Some(suggestion),
        );
        None
    }

    fn plugin_type(&mut self, root: &Map<String, Value>) -> Option<PluginType> {
        let Some(v) = root.get("plugin_type") else {
            self.missing("", "plugin_type", "", None);
            return None;
        };
        if let Some(t) = v.as_str().and_then(|s| s.parse().ok()) {
            return Some(t);
        }
        let all = PluginType::ALL.map(PluginType::as_str);
        self.at_value(
            "plugin_type",
            format!(
                "Field 'plugin_type' must be one of {} (found {})",
                all.join(", "),
                found(v)
            ),
            v.as_str().and_then(|s| did_you_mean(s, all)),
        );
        None
    }

    fn description(&mut self, root: &Map<String, Value>) -> Option<String> {
        let d = self.string(root, "", "description")?;
        self.non_empty("description", d)?;
        Some(d.to_owned())
    }

    /// `Some(None)` when absent, `None` (with a finding) when invalid.
    fn role(&mut self, obj: &Map<String, Value>, parent: &str, key: &str) -> Option<Option<Role>> {
        let Some(v) = obj.get(key) else {
            return Some(None);
        };
        if let Some(role) = v.as_str().and_then(|s| s.parse::<Role>().ok()) {
            return Some(Some(role));
        }
        let path = join(parent, key);
        self.at_value(
            &path,
            format!(
                "Field '{path}' must be one of {} (found {})",
                ROLES.join(", "),
                found(v)
            ),
            v.as_str().and_then(|s| did_you_mean(s, ROLES)),
        );
        None
    }

    fn object<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        let obj = v.as_object();
        if obj.is_none() {
            self.wrong_type(path, "an object", v);
        }
        obj
    }

    fn list<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Vec<Value>> {
        let list = v.as_array();
        if list.is_none() {
            self.wrong_type(path, "a list", v);
        }
        list
    }

    fn tools(
        &mut self,
        root: &Map<String, Value>,
        plugin_type: Option<PluginType>,
        server: Option<&str>,
        default_role: Option<Role>,
    ) -> Option<Vec<ToolSpec>> {
        let Some(caps) = root.get("capabilities") else {
            self.missing(
                "",
                "capabilities",
                "",
                Some("Add \"capabilities\": {\"tools\": []}.".into()),
            );
            return None;
        };
        let caps = self.object(caps, "capabilities")?;
        self.unknown_fields(caps, "capabilities", CAPABILITIES);
        let Some(list) = caps.get("tools") else {
            self.missing(
                "capabilities",
                "tools",
                "",
                Some("Add \"tools\": [] (the list may be empty).".into()),
            );
            return None;
        };
        let list = self.list(list, "capabilities.tools")?;

        let mut tools = Some(Vec::with_capacity(list.len()));
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, item) in list.iter().enumerate() {
            let path = format!("capabilities.tools[{i}]");
            let tool = self.tool(item, &path, plugin_type, server, default_role);
            if let Some(t) = &tool {
                let (name, name_path) = match item.as_str() {
                    Some(name) => (name, path.clone()),
                    None => (
                        item["name"].as_str().unwrap_or_default(),
                        format!("{path}.name"),
                    ),
                };
                if let Some(first) = seen.insert(name, i) {
                    self.at_value(
                        &name_path,
                        format!(
                            "Duplicate tool name '{}': capabilities.tools[{first}] declares it too",
                            t.name
                        ),
                        Some("Tool names must be unique; rename or remove one of them.".into()),
                    );
                }
            }
            tools = tools.zip(tool).map(|(mut all, t)| {
                all.push(t);
                all
            });
        }
        tools
    }

    fn tool(
        &mut self,
        item: &Value,
        path: &str,
        plugin_type: Option<PluginType>,
        server: Option<&str>,
        default_role: Option<Role>,
    ) -> Option<ToolSpec> {
        // The short form, a plain name (the seed's shape): no description,
        // the plugin's `required_role`.
        if let Some(name) = item.as_str() {
            let name = self.tool_name(name, path, plugin_type, server);
            return Some(ToolSpec {
                name: name?,
                description: None,
                required_role: default_role?,
            });
        }
        let Some(t) = item.as_object() else {
            self.wrong_type(path, "a tool name or an object", item);
            return None;
        };
        self.unknown_fields(t, path, TOOL);
        let name = self.string(t, path, "name");
        let description = self.opt_string(t, path, "description");
        let role = self.role(t, path, "required_role");
        let name = name.and_then(|n| self.tool_name(n, &join(path, "name"), plugin_type, server));
        Some(ToolSpec {
            name: name?,
            description: description?.map(str::to_owned),
            required_role: role?.or(default_role)?,
        })
    }

    fn tool_name(
        &mut self,
        name: &str,
        path: &str,
        plugin_type: Option<PluginType>,
        server: Option<&str>,
    ) -> Option<String> {
        let valid_chars = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if plugin_type == Some(PluginType::Mcp)
            && let Some(server) = server
        {
            let prefix = format!("mcp__{server}__");
            match name.strip_prefix(&prefix) {
                Some(tool) if valid_chars(tool) && name.len() <= MAX_TOOL_NAME => {}
                _ => {
                    let tool = name
                        .strip_prefix("mcp__")
                        .and_then(|rest| rest.split_once("__"))
                        .map_or(name, |(_, tool)| tool);
                    let tool: String = tool
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '-' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    let tool = if tool.is_empty() {
                        "<tool>".into()
                    } else {
                        tool
                    };
                    self.at_value(
                        path,
                        format!(
                            "Tool name '{name}' must be 'mcp__{server}__<tool>' for MCP server '{server}' (<tool>: letters, digits, '_' or '-')"
                        ),
                        Some(format!("Rename it to '{prefix}{tool}'.")),
                    );
                    return None;
                }
            }
        } else if !valid_chars(name) || name.len() > MAX_TOOL_NAME {
            self.at_value(
                path,
                format!(
                    "Tool name '{name}' must be 1 to {MAX_TOOL_NAME} letters, digits, '_' or '-'"
                ),
                None,
            );
            return None;
        }
        Some(name.to_owned())
    }

    fn network(&mut self, root: &Map<String, Value>) -> Option<Vec<String>> {
        let Some(perms) = root.get("permissions") else {
            return Some(Vec::new());
        };
        let perms = self.object(perms, "permissions")?;
        self.unknown_fields(perms, "permissions", PERMISSIONS);
        let Some(list) = perms.get("network") else {
            return Some(Vec::new());
        };
        let list = self.list(list, "permissions.network")?;
        let mut hosts = Some(Vec::with_capacity(list.len()));
        for (i, v) in list.iter().enumerate() {
            let path = format!("permissions.network[{i}]");
            let host = match v.as_str() {
                Some(s) if is_host(s) => Some(s.to_owned()),
                Some(s) => {
                    let bare = s.split_once("://").map_or(s, |(_, rest)| rest);
                    let bare = bare.split('/').next().unwrap_or_default();
                    let suggestion = if bare != s && is_host(bare) {
                        format!("Write just the host: \"{bare}\".")
                    } else {
                        "For example \"api.example.com\" or \"api.example.com:443\".".into()
                    };
                    self.at_value(
                        &path,
                        format!(
                            "Entry {} in 'permissions.network' must be a host name or host:port",
                            found(v)
                        ),
                        Some(suggestion),
                    );
                    None
                }
                None => {
                    self.wrong_type(&path, "a string", v);
                    None
                }
            };
            hosts = hosts.zip(host).map(|(mut all, h)| {
                all.push(h);
                all
            });
        }
        hosts
    }

    fn config_schema(&mut self, root: &Map<String, Value>) -> (Option<Value>, ConfigKeys) {
        let Some(v) = root.get("config_schema") else {
            return (
                None,
                ConfigKeys::Known {
                    all: BTreeSet::new(),
                    secret: BTreeSet::new(),
                },
            );
        };
        let before = self.findings.len();
        let keys = self.config_schema_shape(v);
        if self.findings.len() == before {
            self.config_schema_meta(v);
        }
        match keys {
            Some((all, secret)) if self.findings.len() == before => {
                (Some(v.clone()), ConfigKeys::Known { all, secret })
            }
            _ => (None, ConfigKeys::Unknown),
        }
    }

    /// The csp rules on top of JSON Schema: an object schema whose
    /// properties are schema objects, secrets typed string. Returns the
    /// property names and the secret ones.
    fn config_schema_shape(&mut self, v: &Value) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
        const P: &str = "config_schema";
        let Some(schema) = v.as_object() else {
            self.wrong_type(P, "a JSON Schema object", v);
            return None;
        };
        if let Some(s) = schema.get("$schema")
            && !s.as_str().is_some_and(|s| {
                s.trim_end_matches('#') == "https://json-schema.org/draft/2020-12/schema"
            })
        {
            self.at_value(
                "config_schema.$schema",
                format!("config_schema must use JSON Schema draft 2020-12 (found $schema {})", found(s)),
                Some("Remove \"$schema\" or set it to \"https://json-schema.org/draft/2020-12/schema\".".into()),
            );
        }
        match schema.get("type") {
            None => self.missing(P, "type", "", Some("Add \"type\": \"object\".".into())),
            Some(Value::String(t)) if t == "object" => {}
            Some(other) => self.at_value(
                "config_schema.type",
                format!("Field 'config_schema.type' must be \"object\" (found {})", found(other)),
                Some("The config is a JSON object: set \"type\": \"object\" and list its fields under \"properties\".".into()),
            ),
        }
        let mut all = BTreeSet::new();
        let mut secret = BTreeSet::new();
        if let Some(props) = schema.get("properties") {
            let props = self.object(props, "config_schema.properties")?;
            for (key, prop) in props {
                let path = format!("config_schema.properties.{key}");
                all.insert(key.clone());
                let Some(prop) = prop.as_object() else {
                    self.wrong_type(&path, "a JSON Schema object", prop);
                    continue;
                };
                match prop.get("secret") {
                    None | Some(Value::Bool(false)) => {}
                    Some(Value::Bool(true)) => {
                        secret.insert(key.clone());
                        if prop.get("type") != Some(&Value::from("string")) {
                            let hint =
                                Some("Secrets are strings: add \"type\": \"string\".".to_owned());
                            match prop.get("type") {
                                None => self.missing(&path, "type", " (a secret must be of type \"string\")", hint),
                                Some(t) => self.at_value(
                                    &join(&path, "type"),
                                    format!("Secret config field '{key}' must have type \"string\" (found {})", found(t)),
                                    hint,
                                ),
                            }
                        }
                    }
                    Some(other) => self.wrong_type(&join(&path, "secret"), "true or false", other),
                }
            }
        }
        if let Some(required) = schema.get("required") {
            let required = self.list(required, "config_schema.required")?;
            for (i, r) in required.iter().enumerate() {
                let path = format!("config_schema.required[{i}]");
                match r.as_str() {
                    Some(k) if all.contains(k) => {}
                    Some(k) => self.at_value(
                        &path,
                        format!("Required config field '{k}' is not declared in config_schema.properties"),
                        did_you_mean(k, all.iter().map(String::as_str)),
                    ),
                    None => self.wrong_type(&path, "a string", r),
                }
            }
        }
        Some((all, secret))
    }

    /// Everything else JSON Schema itself requires, by its meta-schema, and
    /// that the schema compiles (patterns are valid regexes, `$ref`s resolve).
    fn config_schema_meta(&mut self, v: &Value) {
        let meta = jsonschema::draft202012::meta::validator();
        let errors: Vec<_> = meta.iter_errors(v).collect();
        if errors.is_empty()
            && let Err(err) = compile(v)
        {
            self.schema_error(v, &err);
        }
        for err in &errors {
            self.schema_error(v, err);
        }
    }

    fn schema_error(&mut self, schema: &Value, err: &jsonschema::ValidationError<'_>) {
        use jsonschema::error::ValidationErrorKind;
        let path = format!("config_schema{}", dotted(err.instance_path()));
        let (message, suggestion) = match err.kind() {
            ValidationErrorKind::Referencing(jsonschema::ReferencingError::Unretrievable { uri, .. }) => (
                format!("Field '{path}' refers to '{uri}', which csp does not download"),
                Some("config_schema must be self-contained: a \"$ref\" may only point inside it, e.g. \"#/$defs/level\".".to_owned()),
            ),
            ValidationErrorKind::Referencing(e) => (format!("Field '{path}' has a \"$ref\" that does not resolve: {e}"), None),
            _ => {
                let value = err.instance_path().as_str();
                let value = schema.pointer(value).and_then(Value::as_str);
                let suggestion = match (path.rsplit('.').next(), value) {
                    (Some("type"), Some(t)) => Some(
                        did_you_mean(t, JSON_TYPES)
                            .unwrap_or_else(|| format!("JSON Schema types are {}.", JSON_TYPES.join(", "))),
                    ),
                    (Some("pattern"), Some(_)) => Some(
                        "A pattern is a regular expression: check its brackets and escapes (a backslash is written \\\\ in JSON).".to_owned(),
                    ),
                    _ => None,
                };
                (format!("Field '{path}' is not valid JSON Schema: {err}"), suggestion)
            }
        };
        self.at_value(&path, message, suggestion);
    }

    fn mcp(
        &mut self,
        root: &Map<String, Value>,
        plugin_type: Option<PluginType>,
        name: Option<&str>,
        keys: &ConfigKeys,
    ) -> (Option<McpSpec>, Option<String>) {
        let default_server = || name.filter(|n| valid_server_name(n)).map(str::to_owned);
        let v = match (plugin_type, root.get("mcp")) {
            (Some(PluginType::Mcp), None) => {
                self.missing(
                    "",
                    "mcp",
                    " (plugin_type is \"mcp\")",
                    Some("Say how to start the server: \"mcp\": {\"command\": \"...\", \"args\": [...]}.".into()),
                );
                return (None, default_server());
            }
            (Some(other), Some(_)) if other != PluginType::Mcp => {
                self.at_key(
                    "mcp",
                    format!("Field 'mcp' is only allowed when plugin_type is \"mcp\" (plugin_type is \"{other}\")"),
                    Some("Remove the 'mcp' section, or set \"plugin_type\": \"mcp\".".into()),
                );
                return (None, None);
            }
            (_, None) => return (None, None),
            (_, Some(v)) => v,
        };
        let Some(m) = self.object(v, "mcp") else {
            return (None, None);
        };
        self.unknown_fields(m, "mcp", MCP);

        let server_name = match m.get("server_name") {
            None => {
                let server = default_server();
                if server.is_none()
                    && let Some(n) = name
                    && valid_name(n)
                {
                    self.at_value(
                        "name",
                        format!(
                            "Plugin name '{n}' cannot be the MCP server name: it contains '__'"
                        ),
                        Some("Set mcp.server_name to a name without '__'.".into()),
                    );
                }
                server
            }
            Some(Value::String(s)) if valid_server_name(s) => Some(s.clone()),
            Some(other) => {
                self.at_value(
                    "mcp.server_name",
                    format!(
                        "Field 'mcp.server_name' must be 1 to 64 letters, digits, '_' or '-', without '__' (found {})",
                        found(other)
                    ),
                    None,
                );
                None
            }
        };

        let command = self.string(m, "mcp", "command");
        if let Some(cmd) = command
            && self.non_empty("mcp.command", cmd).is_some()
        {
            self.placeholders("mcp.command", cmd, keys, false);
        }

        let mut args = Some(Vec::new());
        if let Some(v) = m.get("args") {
            args = self.list(v, "mcp.args").and_then(|list| {
                let mut out = Some(Vec::with_capacity(list.len()));
                for (i, a) in list.iter().enumerate() {
                    let path = format!("mcp.args[{i}]");
                    let arg = match a.as_str() {
                        Some(s) => self
                            .placeholders(&path, s, keys, false)
                            .map(|()| s.to_owned()),
                        None => {
                            self.wrong_type(&path, "a string", a);
                            None
                        }
                    };
                    out = out.zip(arg).map(|(mut all, a)| {
                        all.push(a);
                        all
                    });
                }
                out
            });
        }

        let mut env = Some(BTreeMap::new());
        if let Some(v) = m.get("env") {
            env = self.object(v, "mcp.env").and_then(|vars| {
                let mut out = Some(BTreeMap::new());
                for (k, val) in vars {
                    let path = format!("mcp.env.{k}");
                    let mut ok = true;
                    if !valid_env_name(k) {
                        ok = false;
                        self.at_key(
                            &path,
                            format!("Environment variable name '{k}' must be letters, digits and '_', not starting with a digit"),
                            None,
                        );
                    }
                    match val.as_str() {
                        Some(s) => ok &= self.placeholders(&path, s, keys, true).is_some(),
                        None => {
                            ok = false;
                            self.wrong_type(&path, "a string", val);
                        }
                    }
                    if ok && let (Some(map), Some(s)) = (out.as_mut(), val.as_str()) {
                        map.insert(k.clone(), s.to_owned());
                    } else {
                        out = None;
                    }
                }
                out
            });
        }

        let cwd = self.opt_string(m, "mcp", "cwd").and_then(|cwd| match cwd {
            None => Some(None),
            Some(s) => {
                self.non_empty("mcp.cwd", s)?;
                self.placeholders("mcp.cwd", s, keys, false)?;
                Some(Some(s.to_owned()))
            }
        });

        let for_tools = server_name.clone();
        let spec = match (server_name, command, args, env, cwd) {
            (Some(server_name), Some(command), Some(args), Some(env), Some(cwd)) => Some(McpSpec {
                server_name,
                command: command.to_owned(),
                args,
                env,
                cwd,
            }),
            _ => None,
        };
        (spec, for_tools)
    }

    /// Checks the placeholders of one `mcp` string. Secrets are allowed only
    /// where `secrets` is true (env values): argv, the command and the working
    /// directory are visible to every local user in the process list.
    fn placeholders(
        &mut self,
        path: &str,
        s: &str,
        keys: &ConfigKeys,
        secrets: bool,
    ) -> Option<()> {
        let used = match placeholder::config_keys(s) {
            Ok(used) => used,
            Err(e) => {
                self.at_value(
                    path,
                    format!("Field '{path}' has {e}"),
                    Some("Placeholders are ${plugin_dir} and ${config.<key>}; write $${ for a literal ${.".into()),
                );
                return None;
            }
        };
        let ConfigKeys::Known { all, secret } = keys else {
            return Some(());
        };
        let mut ok = true;
        for key in used {
            if !all.contains(key) {
                ok = false;
                let suggestion = match closest(key, all.iter().map(String::as_str)) {
                    Some(c) => format!("Did you mean '${{config.{c}}}'?"),
                    None => format!("Declare '{key}' in config_schema.properties."),
                };
                self.at_value(
                    path,
                    format!("Placeholder '${{config.{key}}}' in '{path}' refers to unknown config field '{key}'"),
                    Some(suggestion),
                );
            } else if !secrets && secret.contains(key) {
                ok = false;
                let var: String = key
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                self.at_value(
                    path,
                    format!(
                        "Secret config field '{key}' must not be used in '{path}': secrets reach the server only through mcp.env"
                    ),
                    Some(format!(
                        "Pass it as an environment variable: \"env\": {{\"{var}\": \"${{config.{key}}}\"}}."
                    )),
                );
            }
        }
        ok.then_some(())
    }
}

/// `^[a-z0-9][a-z0-9_-]{0,62}$`
pub(crate) fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A guess at the name the author meant: lowercase, other characters as '-'.
fn slug(s: &str) -> String {
    let lower: String = s
        .trim()
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '-',
        })
        .take(63)
        .collect();
    lower.trim_start_matches(['-', '_']).to_owned()
}

/// `^[A-Za-z0-9_-]{1,64}$` without `__`: Claude Code splits `mcp__<server>__<tool>` at `__`.
fn valid_server_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !s.contains("__")
}

fn valid_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_numeric_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Semantic Versioning 2.0.0: `MAJOR.MINOR.PATCH[-pre][+build]`.
pub(crate) fn is_semver(s: &str) -> bool {
    let ids = |s: &str, pre: bool| {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!pre || !id.bytes().all(|b| b.is_ascii_digit()) || is_numeric_id(id))
        })
    };
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| is_numeric_id(p))
        && pre.is_none_or(|p| ids(p, true))
        && build.is_none_or(|b| ids(b, false))
}

/// A host name, IPv4 address or `[IPv6]`, with an optional `:port`.
pub(crate) fn is_host(s: &str) -> bool {
    let port_ok = |p: &str| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    };
    if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty()
            && addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        return addr_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.len() <= 253 && host.split('.').all(label_ok) && port.is_none_or(port_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        for ok in [
            "1.0.0",
            "0.0.0",
            "2025.11.25",
            "1.2.3-beta.1",
            "1.2.3-0.a-b",
            "1.2.3+build.7",
            "1.2.3-rc.1+x",
        ] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "1.0",
            "1",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0-a..b",
            "v1.0.0",
            "1.0.0.0",
            "1.x.0",
            "",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        for ok in [
            "api.example.com",
            "localhost",
            "10.0.0.1:8080",
            "a-b.c:443",
            "[::1]",
            "[2001:db8::1]:443",
        ] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in [
            "https://x.com",
            "x.com/path",
            "-a.com",
            "a..com",
            "a.com:0",
            "a.com:70000",
            "a.com:",
            "[::1",
            "*.x.com",
            "",
        ] {
            assert!(!is_host(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(valid_name("everything") && valid_name("0x") && valid_name("a_b-c"));
        assert!(
            !valid_name("Everything")
                && !valid_name("-a")
                && !valid_name("")
                && !valid_name(&"a".repeat(64))
        );
        assert!(valid_name(&"a".repeat(63)));
        assert_eq!(slug("My Plugin"), "my-plugin");
        assert!(
            valid_server_name("every-thing_1")
                && !valid_server_name("a__b")
                && !valid_server_name("")
        );
        assert!(valid_env_name("_A1") && !valid_env_name("1A") && !valid_env_name("A-B"));
    }

    #[test]
    fn found_shortens_long_strings() {
        let long = Value::from("x".repeat(100));
        assert_eq!(found(&long), format!("\"{}...\"", "x".repeat(57)));
        assert_eq!(found(&Value::from(5)), "5");
        assert_eq!(found(&serde_json::json!([1])), "a list");
    }
}
