//! The plugin manifest: reading and checking a plugin's `plugin.json`, and
//! turning its `mcp` section into the command line of an MCP server.
//!
//! Owns: the rules of a manifest (docs/plugins.md, mirrored by the JSON
//! Schema in docs/plugin.schema.json), the wording and line numbers of every
//! validation error an author sees, the check of a plugin's configuration
//! against its `config_schema`, and placeholder expansion. Must never read
//! files, watch directories, keep a registry of plugins or start processes:
//! callers hand it bytes and get values back. Secrets that expansion puts
//! into a server's environment leave it wrapped in [`secrecy::SecretString`],
//! and no error it returns quotes a secret value.

mod config;
mod placeholder;
mod resolve;
mod scan;
mod schema;
mod suggest;
mod syntax;
mod validate;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use csp_domain::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use config::ConfigError;
pub use resolve::ResolvedServer;

/// The manifest's file name inside a plugin directory.
pub const MANIFEST_FILE: &str = "plugin.json";

/// JSON Schema (draft 2020-12) of `plugin.json`, for editors and CI. The
/// rules it cannot express (name equals the directory, tool names carry the
/// server name, unique tool names, placeholders name declared config fields,
/// no secret on argv) are checked by [`parse_manifest`] only.
pub const MANIFEST_SCHEMA: &str = include_str!("../../../docs/plugin.schema.json");

/// A manifest larger than this is refused unread: it holds metadata only,
/// and the limit bounds the work a hostile file can cause.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// At most this many problems are listed for one file, then one more that
/// says how many were left out: past a hundred, the file is not a manifest
/// with typos, and listing (and suggesting fixes for) every problem of a
/// megabyte of junk would only cost time.
pub const MAX_PROBLEMS: usize = 100;

/// What kind of plugin a manifest describes. Only [`PluginType::Mcp`]
/// plugins can be activated today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginType {
    Tool,
    Mcp,
    Skill,
    Endpoint,
}

impl PluginType {
    pub const ALL: [PluginType; 4] = [
        PluginType::Tool,
        PluginType::Mcp,
        PluginType::Skill,
        PluginType::Endpoint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PluginType::Tool => "tool",
            PluginType::Mcp => "mcp",
            PluginType::Skill => "skill",
            PluginType::Endpoint => "endpoint",
        }
    }
}

impl fmt::Display for PluginType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PluginType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PluginType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown plugin type '{s}': expected tool, mcp, skill or endpoint")
            })
    }
}

/// A valid `plugin.json`, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub manifest_version: u32,
    pub name: String,
    pub version: String,
    pub plugin_type: PluginType,
    pub description: String,
    /// The role a user needs for the plugin's tools unless a tool says otherwise.
    pub required_role: Role,
    /// `capabilities.tools`.
    pub tools: Vec<ToolSpec>,
    /// `permissions.network`: hosts the plugin talks to, shown to operators.
    pub network: Vec<String>,
    pub config_schema: Option<Value>,
    /// Present exactly when `plugin_type` is `mcp`.
    pub mcp: Option<McpSpec>,
}

/// One tool a plugin provides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    /// The tool's own `required_role`, or else the plugin's.
    pub required_role: Role,
}

/// The `mcp` section as written: placeholders are not expanded (see
/// [`Manifest::resolve_mcp`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpSpec {
    /// `mcp.server_name`, or else the plugin name.
    pub server_name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
}

/// One thing wrong with a manifest file, where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    /// The field concerned, e.g. `capabilities.tools[1].name`.
    pub field: Option<String>,
    pub message: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: Line {}: {}",
            self.file.display(),
            self.line,
            self.message
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl Manifest {
    pub fn tool_names(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(|t| t.name.as_str())
    }
}

/// Parses and checks the manifest `bytes` read from `file` in a plugin
/// directory named `dir_name`. On failure returns every problem found,
/// ordered by position; a file that is not JSON yields just its syntax error.
pub fn parse_manifest(file: &Path, bytes: &[u8], dir_name: &str) -> Result<Manifest, Vec<Problem>> {
    let at_start = |message: String, suggestion: &str| Problem {
        file: file.to_path_buf(),
        line: 1,
        column: 1,
        field: None,
        message,
        suggestion: Some(suggestion.to_owned()),
    };
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(vec![at_start(
            format!(
                "File is too large: {} bytes (the limit is 1 MiB)",
                bytes.len()
            ),
            "A plugin.json holds only metadata; keep data files elsewhere in the plugin directory.",
        )]);
    }
    // Editors on Windows like to start UTF-8 files with a byte order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| vec![syntax::not_utf8(file, bytes, e.valid_up_to())])?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| vec![syntax::problem(file, text, &e)])?;
    let Value::Object(root) = &value else {
        let start = text.len() - text.trim_start().len();
        let (line, column) = scan::LineIndex::new(text).position(start);
        return Err(vec![Problem {
            line,
            column,
            ..at_start(
                format!(
                    "The manifest must be a JSON object (found {})",
                    validate::found(&value)
                ),
                "Write the fields inside '{ }': {\"manifest_version\": 1, \"name\": ..., ...}.",
            )
        }]);
    };
    let checked = validate::check(root, dir_name);
    let (findings, omitted) = match &checked {
        Ok(_) => (&[][..], 0),
        Err(f) => (f.kept.as_slice(), f.omitted),
    };
    let problems = locate(file, text, findings, omitted);
    match checked {
        Ok(manifest) if problems.is_empty() => Ok(manifest),
        _ => Err(problems),
    }
}

/// Problems with lines for `findings`, plus one per duplicated key (which
/// serde_json accepts silently, keeping the last), at most [`MAX_PROBLEMS`]
/// and a summary of the rest.
fn locate(file: &Path, text: &str, findings: &[validate::Finding], omitted: usize) -> Vec<Problem> {
    let mut wanted = HashSet::new();
    for f in findings {
        let mut path = Some(f.anchor.as_str());
        while let Some(p) = path {
            wanted.insert(p.to_owned());
            path = parent(p);
        }
    }
    let (spans, duplicates) = scan::index(text, &wanted);
    let lines = scan::LineIndex::new(text);

    let mut problems: Vec<Problem> = findings
        .iter()
        .map(|f| {
            let mut path = Some(f.anchor.as_str());
            let mut offset = 0;
            while let Some(p) = path {
                if let Some(span) = spans.get(p) {
                    offset = match f.at {
                        validate::At::Key if p == f.anchor => span.key.unwrap_or(span.value),
                        _ => span.value,
                    };
                    break;
                }
                path = parent(p);
            }
            let (line, column) = lines.position(offset);
            Problem {
                file: file.to_path_buf(),
                line,
                column,
                field: Some(f.field.clone()).filter(|p| !p.is_empty()),
                message: f.message.clone(),
                suggestion: f.suggestion.clone(),
            }
        })
        .collect();
    for d in duplicates {
        let (line, column) = lines.position(d.second);
        problems.push(Problem {
            file: file.to_path_buf(),
            line,
            column,
            message: format!(
                "Duplicate field '{}' (first on line {})",
                d.path,
                lines.position(d.first).0
            ),
            field: Some(d.path),
            suggestion: Some(
                "Remove one of them: of a field written twice only the last counts.".into(),
            ),
        });
    }
    problems.sort_by_key(|p| (p.line, p.column));
    let omitted = omitted + problems.len().saturating_sub(MAX_PROBLEMS);
    problems.truncate(MAX_PROBLEMS);
    if omitted > 0 {
        problems.push(Problem {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            field: None,
            message: format!("{omitted} more problems not shown"),
            suggestion: Some("Fix the problems above and check again.".into()),
        });
    }
    problems
}

/// `a.b[1].c` → `a.b[1]` → `a.b` → `a` → `` → none.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind(['.', '[']).map_or("", |i| &path[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent("a.b[1].c"), Some("a.b[1]"));
        assert_eq!(parent("a.b[1]"), Some("a.b"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
    }

    #[test]
    fn plugin_type_round_trips() {
        for t in PluginType::ALL {
            assert_eq!(t.as_str().parse::<PluginType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), Value::from(t.to_string()));
        }
        assert!("MCP".parse::<PluginType>().is_err());
    }

    #[test]
    fn problem_display() {
        let p = Problem {
            file: "plugins/x/plugin.json".into(),
            line: 12,
            column: 3,
            field: Some("version".into()),
            message: "Expected comma after 'version' field".into(),
            suggestion: Some("Add a ',' at the end of line 11.".into()),
        };
        assert_eq!(
            p.to_string(),
            "plugins/x/plugin.json: Line 12: Expected comma after 'version' field (Add a ',' at the end of line 11.)"
        );
        let bare = Problem {
            suggestion: None,
            ..p
        };
        assert_eq!(
            bare.to_string(),
            "plugins/x/plugin.json: Line 12: Expected comma after 'version' field"
        );
    }
}
