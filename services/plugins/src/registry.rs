//! The plugin registry: what `PLUGINS_DIR` holds and which manifest of each
//! plugin is in force.
//!
//! A scan reads every `<dir>/plugin.json`, parses it and then *registers*
//! the plugins in a fixed order, each claiming its tool names (and MCP server
//! name) in a global namespace: plugins registered before the scan first, so a
//! newcomer can never take a name from a plugin that already had it, then the
//! rest by name. A plugin whose new file fails (syntax, schema, or a name
//! conflict) keeps its previous manifest in force while it is active — an
//! operator's typo must not pull tools out from under running sessions — and
//! reports the errors beside it; an inactive one is simply errored.
//!
//! Pure apart from reading the directory: activation comes in as a predicate,
//! so the same code runs after a scan and after an activation change.
//!
//! Built-in plugins ([`BUILTIN`]: csp's own MCP servers, run as `csp mcp
//! <name>`) are registered like the directory's, before any of them: their
//! names are always theirs, and a directory of the same name is ignored.

use csp_manifest::{MANIFEST_FILE, Manifest, Problem};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bigger files are refused before parsing (the manifest parser refuses
/// them too; reading stops here so a huge file is never held in memory).
const MAX_READ: u64 = 1024 * 1024 + 1;

/// The plugins csp ships, by name: the ticket context of a chat session's
/// tenant (`csp mcp tickets`, crate `csp-ticket-tools`).
pub(crate) const BUILTIN: &[(&str, &str)] =
    &[("tickets", include_str!("../builtin/tickets/plugin.json"))];

/// Where built-in manifests appear to be (in errors and the plugin list).
const BUILTIN_DIR: &str = "(built in)";

/// One plugin directory.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) dir: PathBuf,
    /// SHA-256 of the file as last read, to tell what changed.
    hash: [u8; 32],
    /// The latest parse of the file.
    latest: Result<Arc<Manifest>, Vec<Problem>>,
    /// The manifest in force: registered, its names claimed. `None` when
    /// the plugin is errored.
    pub(crate) manifest: Option<Arc<Manifest>>,
    /// Problems of the latest file (parse or registration); empty when the
    /// latest file is the one in force.
    pub(crate) errors: Vec<Problem>,
    /// One of [`BUILTIN`]: its server is csp itself.
    pub(crate) builtin: bool,
}

impl Entry {
    pub(crate) fn file(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }
}

/// Plugin names added, changed and removed by a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) added: Vec<String>,
    pub(crate) changed: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Every plugin directory, keyed by directory name (which a valid manifest's
/// `name` equals).
#[derive(Debug)]
pub(crate) struct Registry {
    root: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            entries: BTreeMap::new(),
        }
    }

    pub(crate) fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// Reads the directory again and registers what it finds. A missing
    /// `PLUGINS_DIR` is an empty registry (and logged by the caller).
    pub(crate) fn scan(&mut self, active: &dyn Fn(&str) -> bool) -> Changes {
        let mut found = read_dir(&self.root);
        for (name, manifest) in BUILTIN {
            if found.contains_key(*name) {
                tracing::warn!(plugin = name, dir = %self.root.display(), "a plugin directory has the name of a built-in plugin; it is ignored");
            }
            found.insert(
                (*name).to_owned(),
                (
                    Path::new(BUILTIN_DIR).join(name),
                    manifest.as_bytes().to_vec(),
                ),
            );
        }
        let mut changes = Changes::default();
        let before: BTreeSet<String> = self.entries.keys().cloned().collect();
        for name in before.iter().filter(|n| !found.contains_key(*n)) {
            self.entries.remove(name);
            changes.removed.push(name.clone());
        }
        for (name, (dir, bytes)) in found {
            let hash: [u8; 32] = Sha256::digest(&bytes).into();
            match self.entries.get_mut(&name) {
                Some(e) if e.hash == hash => continue,
                Some(e) => {
                    e.hash = hash;
                    e.latest = parse(&dir, &name, &bytes);
                    changes.changed.push(name);
                }
                None => {
                    let latest = parse(&dir, &name, &bytes);
                    self.entries.insert(
                        name.clone(),
                        Entry {
                            dir,
                            hash,
                            latest,
                            manifest: None,
                            errors: Vec::new(),
                            builtin: BUILTIN.iter().any(|(n, _)| *n == name),
                        },
                    );
                    changes.added.push(name);
                }
            }
        }
        self.reconcile(active);
        changes
    }

    /// Decides the manifest in force of every plugin from the latest parses,
    /// the previous decisions and activation. Deterministic, and idempotent
    /// for unchanged inputs.
    pub(crate) fn reconcile(&mut self, active: &dyn Fn(&str) -> bool) {
        // Incumbents first: plugins that had a manifest in force keep their
        // claims against newcomers.
        // Built-ins before everyone: their names are never contested.
        let mut order: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.manifest.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        order.extend(
            self.entries
                .iter()
                .filter(|(_, e)| e.manifest.is_none())
                .map(|(n, _)| n.clone()),
        );
        order.sort_by_key(|n| !self.entries[n].builtin);
        let mut claims = Claims::default();
        for name in order {
            let entry = self.entries.get_mut(&name).expect("listed above");
            let previous = entry.manifest.take();
            let file = entry.file();
            let (in_force, errors) = match &entry.latest {
                Ok(m) => match claims.conflicts(&file, m) {
                    problems if problems.is_empty() => (Some(m.clone()), Vec::new()),
                    problems => (None, problems),
                },
                Err(problems) => (None, problems.clone()),
            };
            let in_force = match in_force {
                Some(m) => Some(m),
                // Keep the running version of an active plugin, if its
                // names are still its own.
                None if active(&name) => {
                    previous.filter(|old| claims.conflicts(&file, old).is_empty())
                }
                None => None,
            };
            if let Some(m) = &in_force {
                claims.claim(m);
            }
            entry.manifest = in_force;
            entry.errors = errors;
        }
    }
}

/// Tool and MCP server names taken so far in one registration pass.
#[derive(Default)]
struct Claims {
    tools: HashMap<String, String>,
    servers: HashMap<String, String>,
}

impl Claims {
    fn conflicts(&self, file: &Path, m: &Manifest) -> Vec<Problem> {
        // (the name as written, its field, the message)
        let mut found: Vec<(&str, &str, String)> = Vec::new();
        for tool in m.tool_names() {
            if let Some(owner) = self.tools.get(tool).filter(|o| **o != m.name) {
                found.push((
                    tool,
                    "capabilities.tools",
                    format!(
                        "Tool name '{tool}' already registered by plugin '{owner}'. Use a unique tool name."
                    ),
                ));
            }
        }
        if let Some(server) = m.mcp.as_ref().map(|s| s.server_name.as_str())
            && let Some(owner) = self.servers.get(server).filter(|o| **o != m.name)
        {
            found.push((
                server,
                "mcp.server_name",
                format!(
                    "MCP server name '{server}' already used by plugin '{owner}'. Use a unique server_name."
                ),
            ));
        }
        if found.is_empty() {
            return Vec::new();
        }
        // Only a conflict needs the text again, to place it.
        let text = std::fs::read_to_string(file).unwrap_or_default();
        found
            .into_iter()
            .map(|(name, field, message)| problem_at(file, &text, name, field, message))
            .collect()
    }

    fn claim(&mut self, m: &Manifest) {
        for tool in m.tool_names() {
            self.tools.insert(tool.to_owned(), m.name.clone());
        }
        if let Some(s) = &m.mcp {
            self.servers.insert(s.server_name.clone(), m.name.clone());
        }
    }
}

/// A registration problem, placed at the first occurrence of the quoted
/// name in the file (the parser's spans are gone by now; the name is
/// unique enough to find).
fn problem_at(file: &Path, text: &str, name: &str, field: &str, message: String) -> Problem {
    let needle = format!("\"{name}\"");
    let (line, column) = text
        .find(&needle)
        .map(|at| {
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            (line as u32, column as u32)
        })
        .unwrap_or((1, 1));
    Problem {
        file: file.to_owned(),
        line,
        column,
        field: Some(field.to_owned()),
        message,
        suggestion: Some(
            "Rename the tool (or the server) in this plugin, or remove the other plugin.".into(),
        ),
    }
}

fn parse(dir: &Path, name: &str, bytes: &[u8]) -> Result<Arc<Manifest>, Vec<Problem>> {
    csp_manifest::parse_manifest(&dir.join(MANIFEST_FILE), bytes, name).map(Arc::new)
}

/// `<root>/<name>/plugin.json` of every plugin directory, read. Hidden
/// directories and directories without a manifest are not plugins; an
/// unreadable manifest is read as empty (and reported by the parser).
fn read_dir(root: &Path) -> BTreeMap<String, (PathBuf, Vec<u8>)> {
    let mut found = BTreeMap::new();
    let Ok(listing) = std::fs::read_dir(root) else {
        return found;
    };
    for item in listing.flatten() {
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        let dir = item.path();
        if name.starts_with('.') || !dir.is_dir() {
            continue;
        }
        let file = dir.join(MANIFEST_FILE);
        let Ok(f) = std::fs::File::open(&file) else {
            continue;
        };
        let mut bytes = Vec::new();
        if let Err(e) = f.take(MAX_READ).read_to_end(&mut bytes) {
            tracing::warn!(file = %file.display(), error = %e, "cannot read a plugin manifest");
            bytes.clear();
        }
        found.insert(name, (dir, bytes));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(root: &Path, name: &str, manifest: &serde_json::Value) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(MANIFEST_FILE),
            serde_json::to_string_pretty(manifest).unwrap(),
        )
        .unwrap();
    }

    fn mcp(name: &str, server: &str, tools: &[&str]) -> serde_json::Value {
        json!({
            "manifest_version": 1,
            "name": name,
            "version": "1.0.0",
            "plugin_type": "mcp",
            "description": "test plugin",
            "capabilities": {"tools": tools.iter().map(|t| json!({"name": t})).collect::<Vec<_>>()},
            "mcp": {"server_name": server, "command": "/bin/true"}
        })
    }

    #[test]
    fn scan_reports_added_changed_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut reg = Registry::new(tmp.path().to_owned());
        write(tmp.path(), "a", &mcp("a", "a", &["mcp__a__x"]));
        write(tmp.path(), "b", &mcp("b", "b", &[]));
        std::fs::create_dir_all(tmp.path().join("not-a-plugin")).unwrap();
        std::fs::create_dir_all(tmp.path().join(".hidden")).unwrap();
        let c = reg.scan(&|_| false);
        assert_eq!(c.added, ["a", "b", "tickets"]);
        assert!(reg.get("a").unwrap().manifest.is_some());

        assert!(
            reg.scan(&|_| false).is_empty(),
            "unchanged files are no change"
        );

        write(tmp.path(), "a", &mcp("a", "a", &["mcp__a__y"]));
        std::fs::remove_dir_all(tmp.path().join("b")).unwrap();
        let c = reg.scan(&|_| false);
        assert_eq!(c.changed, ["a"]);
        assert_eq!(c.removed, ["b"]);
        let tools: Vec<_> = reg
            .get("a")
            .unwrap()
            .manifest
            .as_ref()
            .unwrap()
            .tool_names()
            .map(str::to_owned)
            .collect();
        assert_eq!(tools, ["mcp__a__y"]);
    }

    #[test]
    fn a_taken_tool_name_fails_with_the_seed_message_and_the_incumbent_keeps_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut reg = Registry::new(tmp.path().to_owned());
        // "slack-v1" registers first; "a-slack-copy" sorts before it but
        // arrives later, so it must not take the name.
        write(
            tmp.path(),
            "slack-v1",
            &mcp("slack-v1", "slack", &["mcp__slack__send_message"]),
        );
        reg.scan(&|_| false);
        write(
            tmp.path(),
            "a-slack-copy",
            &mcp("a-slack-copy", "slack", &["mcp__slack__send_message"]),
        );
        reg.scan(&|_| false);
        let copy = reg.get("a-slack-copy").unwrap();
        assert!(copy.manifest.is_none());
        assert_eq!(
            copy.errors[0].message,
            "Tool name 'mcp__slack__send_message' already registered by plugin 'slack-v1'. Use a unique tool name."
        );
        assert!(
            copy.errors[0].line > 1,
            "placed at the name: {:?}",
            copy.errors[0]
        );
        assert!(reg.get("slack-v1").unwrap().manifest.is_some());

        // The incumbent goes away: the other one registers on the next scan.
        std::fs::remove_dir_all(tmp.path().join("slack-v1")).unwrap();
        reg.scan(&|_| false);
        assert!(reg.get("a-slack-copy").unwrap().manifest.is_some());
        assert!(reg.get("a-slack-copy").unwrap().errors.is_empty());
    }

    #[test]
    fn a_server_name_is_one_plugins() {
        let tmp = tempfile::tempdir().unwrap();
        let mut reg = Registry::new(tmp.path().to_owned());
        write(tmp.path(), "one", &mcp("one", "shared", &[]));
        write(tmp.path(), "two", &mcp("two", "shared", &[]));
        reg.scan(&|_| false);
        assert!(reg.get("one").unwrap().manifest.is_some());
        let two = reg.get("two").unwrap();
        assert!(two.manifest.is_none());
        assert!(
            two.errors[0]
                .message
                .contains("already used by plugin 'one'")
        );
    }

    #[test]
    fn a_broken_edit_keeps_the_active_version_and_errors_an_inactive_one() {
        let tmp = tempfile::tempdir().unwrap();
        let mut reg = Registry::new(tmp.path().to_owned());
        write(tmp.path(), "live", &mcp("live", "live", &["mcp__live__t"]));
        write(tmp.path(), "idle", &mcp("idle", "idle", &[]));
        let active = |n: &str| n == "live";
        reg.scan(&active);
        for name in ["live", "idle"] {
            std::fs::write(tmp.path().join(name).join(MANIFEST_FILE), "{\"name\": ").unwrap();
        }
        let c = reg.scan(&active);
        assert_eq!(c.changed, ["idle", "live"]);
        let live = reg.get("live").unwrap();
        assert!(live.manifest.is_some(), "the running version stays");
        assert!(!live.errors.is_empty(), "and the error is reported");
        let idle = reg.get("idle").unwrap();
        assert!(idle.manifest.is_none());
        assert!(!idle.errors.is_empty());

        // Deactivated: the broken file is all there is.
        reg.reconcile(&|_| false);
        assert!(reg.get("live").unwrap().manifest.is_none());
    }

    #[test]
    fn a_missing_directory_holds_the_builtins_only() {
        let mut reg = Registry::new("/nonexistent/csp-plugins".into());
        assert_eq!(reg.scan(&|_| true).added, ["tickets"]);
        assert!(reg.scan(&|_| true).is_empty());
        let names: Vec<_> = reg.entries().keys().collect();
        assert_eq!(names, ["tickets"]);
        let tickets = reg.get("tickets").unwrap();
        assert!(tickets.builtin && tickets.errors.is_empty(), "{tickets:?}");
        let m = tickets
            .manifest
            .as_ref()
            .expect("the built-in manifest is valid");
        let declared: Vec<_> = m
            .tools
            .iter()
            .map(|t| (t.name.clone(), t.required_role))
            .collect();
        let served: Vec<_> = csp_ticket_tools::TicketTool::ALL
            .iter()
            .map(|t| (t.mcp_name(), t.required_role()))
            .collect();
        assert_eq!(
            declared, served,
            "the manifest declares exactly the tools csp mcp tickets serves, at their roles"
        );
    }

    #[test]
    fn a_builtins_names_are_never_taken_by_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut reg = Registry::new(tmp.path().to_owned());
        // Sorted before "tickets", so registered first without the rule.
        write(
            tmp.path(),
            "aaa",
            &mcp("aaa", "aaa", &["mcp__tickets__get_ticket"]),
        );
        write(
            tmp.path(),
            "tickets",
            &mcp("tickets", "tickets", &["mcp__tickets__x"]),
        );
        reg.scan(&|_| false);
        let tickets = reg.get("tickets").unwrap();
        assert!(tickets.builtin, "the directory of that name is ignored");
        assert!(tickets.manifest.is_some(), "{tickets:?}");
        let aaa = reg.get("aaa").unwrap();
        assert!(aaa.manifest.is_none() && !aaa.errors.is_empty(), "{aaa:?}");
    }
}
