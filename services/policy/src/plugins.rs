//! The tool roles plugins declare, as the plugins service streams them.
//!
//! A registered plugin claims its tool names and its MCP server name. A
//! claimed tool runs at the role its manifest gives it while the plugin is
//! active, and not at all while it is not; a tool of a claimed server that
//! the manifest does not declare never runs (the manifest is what operators
//! reviewed). Until the first catalog arrives, MCP tools are refused: a
//! plugin's tool must not fall back to the generic MCP default just because
//! the registry is slow to answer. After an outage the last catalog stays.

use crate::tools::Requirement;
use csp_domain::Role;
use csp_proto::v1 as pb;
use csp_proto::v1::plugins_client::PluginsClient;
use csp_rpc::ServiceToken;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) const UNREACHABLE_MESSAGE: &str =
    "Tool call blocked: the plugin registry is unreachable. Try again in a moment.";

/// What the catalog says about one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rule {
    Require(Requirement),
    Deny {
        /// A bounded metric label: plugin_inactive, plugin_undeclared,
        /// plugin_unregistered, plugins_unreachable.
        reason: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone)]
struct DeclaredTool {
    plugin: String,
    required: Requirement,
    active: bool,
}

/// Every registered plugin's tools and servers, active or not.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    fingerprint: String,
    tools: HashMap<String, DeclaredTool>,
    /// MCP server name → plugin name.
    servers: HashMap<String, String>,
}

/// A manifest's role; an unknown one fails closed to admin.
fn requirement(role: &str, tool: &str) -> Requirement {
    match role {
        // The manifest default; the plugins service normally fills it in.
        "" => Requirement::Role(Role::Operator),
        role => Requirement::Role(role.parse().unwrap_or_else(|_| {
            tracing::warn!(
                tool,
                role,
                "a plugin tool names an unknown role; requiring admin"
            );
            Role::Admin
        })),
    }
}

impl Catalog {
    pub(crate) fn from_proto(set: pb::ActiveSet) -> Self {
        let tools = set
            .tools
            .into_iter()
            .map(|t| {
                let required = requirement(&t.required_role, &t.tool_name);
                let tool = DeclaredTool {
                    plugin: t.plugin_name,
                    required,
                    active: t.active,
                };
                (t.tool_name, tool)
            })
            .collect();
        let servers = set
            .servers
            .into_iter()
            .map(|s| (s.server_name, s.plugin_name))
            .collect();
        Self {
            fingerprint: set.fingerprint,
            tools,
            servers,
        }
    }

    /// `None`: not an MCP tool; the defaults decide. Every MCP server a
    /// session runs comes from a plugin (`--strict-mcp-config`), so an MCP
    /// tool no registered plugin accounts for is one of a plugin that was
    /// removed, or whose broken file was deactivated: refused.
    fn rule(&self, tool: &str) -> Option<Rule> {
        if let Some(t) = self.tools.get(tool) {
            return Some(if t.active {
                Rule::Require(t.required)
            } else {
                Rule::Deny {
                    reason: "plugin_inactive",
                    message: format!(
                        "The plugin '{}' that provides this tool is not active.",
                        t.plugin
                    ),
                }
            });
        }
        let rest = tool.strip_prefix("mcp__")?;
        // Plugin server names never contain `__`: the first one ends it.
        let server = rest.split_once("__").map_or(rest, |(server, _)| server);
        Some(match self.servers.get(server) {
            Some(plugin) => Rule::Deny {
                reason: "plugin_undeclared",
                message: format!(
                    "Tool '{tool}' is not declared in the manifest of plugin '{plugin}'."
                ),
            },
            None => Rule::Deny {
                reason: "plugin_unregistered",
                message: format!("Tool '{tool}' does not belong to a registered plugin."),
            },
        })
    }
}

/// The plugin side of the gate.
#[derive(Debug, Clone)]
pub(crate) enum PluginRoles {
    /// The deployment has no plugins service.
    Off,
    /// `None` until the first catalog has arrived.
    Following(watch::Receiver<Option<Arc<Catalog>>>),
}

impl PluginRoles {
    /// What the plugins say about the MCP tool `tool`; `None` leaves it to
    /// the defaults.
    pub(crate) fn rule(&self, tool: &str) -> Option<Rule> {
        match self {
            PluginRoles::Off => None,
            PluginRoles::Following(catalog) => match catalog.borrow().as_deref() {
                Some(catalog) => catalog.rule(tool),
                None => Some(Rule::Deny {
                    reason: "plugins_unreachable",
                    message: UNREACHABLE_MESSAGE.to_owned(),
                }),
            },
        }
    }
}

/// Follows the plugins service until `stop`, publishing each catalog.
pub(crate) async fn follow(
    channel: Channel,
    token: ServiceToken,
    catalogs: watch::Sender<Option<Arc<Catalog>>>,
    stop: CancellationToken,
) {
    let client = PluginsClient::with_interceptor(channel, token);
    csp_rpc::follow_stream(
        "plugin registry",
        move || {
            let mut client = client.clone();
            async move {
                client
                    .watch_active_set(pb::WatchActiveSetRequest {})
                    .await
                    .map(tonic::Response::into_inner)
            }
        },
        move |set: pb::ActiveSet| {
            let catalog = Catalog::from_proto(set);
            let changed = catalogs
                .borrow()
                .as_ref()
                .is_none_or(|known| known.fingerprint != catalog.fingerprint);
            if changed {
                tracing::info!(
                    fingerprint = %catalog.fingerprint,
                    tools = catalog.tools.len(),
                    "plugin tool roles updated"
                );
            }
            // Sent even when the fingerprint is the same: it is cheap, and
            // the set is the truth.
            catalogs.send_replace(Some(Arc::new(catalog)));
            std::future::ready(Ok(()))
        },
        stop,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_proto(pb::ActiveSet {
            fingerprint: "f".into(),
            tools: vec![
                pb::PluginToolRole {
                    tool_name: "mcp__slack__send".into(),
                    plugin_name: "slack".into(),
                    required_role: "user".into(),
                    active: true,
                },
                pb::PluginToolRole {
                    tool_name: "mcp__slack__admin".into(),
                    plugin_name: "slack".into(),
                    required_role: "root".into(),
                    active: true,
                },
                pb::PluginToolRole {
                    tool_name: "mcp__jira__open".into(),
                    plugin_name: "jira".into(),
                    required_role: String::new(),
                    active: false,
                },
            ],
            servers: vec![
                pb::PluginServer {
                    server_name: "slack".into(),
                    plugin_name: "slack".into(),
                    active: true,
                },
                pb::PluginServer {
                    server_name: "jira".into(),
                    plugin_name: "jira".into(),
                    active: false,
                },
            ],
        })
    }

    #[test]
    fn declared_inactive_undeclared_and_unknown_tools() {
        let c = catalog();
        assert_eq!(
            c.rule("mcp__slack__send"),
            Some(Rule::Require(Requirement::Role(Role::User)))
        );
        assert_eq!(
            c.rule("mcp__slack__admin"),
            Some(Rule::Require(Requirement::Role(Role::Admin))),
            "an unknown role fails closed"
        );
        assert_eq!(
            c.rule("mcp__jira__open"),
            Some(Rule::Deny {
                reason: "plugin_inactive",
                message: "The plugin 'jira' that provides this tool is not active.".into()
            })
        );
        assert_eq!(
            c.rule("mcp__slack__delete_all"),
            Some(Rule::Deny {
                reason: "plugin_undeclared",
                message: "Tool 'mcp__slack__delete_all' is not declared in the manifest of plugin 'slack'.".into()
            })
        );
        for unknown in ["mcp__other__x", "mcp__gone"] {
            assert_eq!(
                c.rule(unknown),
                Some(Rule::Deny {
                    reason: "plugin_unregistered",
                    message: format!("Tool '{unknown}' does not belong to a registered plugin."),
                })
            );
        }
        assert_eq!(
            c.rule("mcp__slack"),
            Some(Rule::Deny {
                reason: "plugin_undeclared",
                message: "Tool 'mcp__slack' is not declared in the manifest of plugin 'slack'."
                    .into()
            })
        );
        assert_eq!(c.rule("Bash"), None, "built-ins are not the catalog's");
    }

    #[test]
    fn unknown_until_the_first_catalog_then_kept() {
        let (tx, rx) = watch::channel(None);
        let roles = PluginRoles::Following(rx);
        assert!(matches!(
            roles.rule("mcp__slack__send"),
            Some(Rule::Deny {
                reason: "plugins_unreachable",
                ..
            })
        ));
        tx.send_replace(Some(Arc::new(catalog())));
        assert_eq!(
            roles.rule("mcp__slack__send"),
            Some(Rule::Require(Requirement::Role(Role::User)))
        );
        assert_eq!(PluginRoles::Off.rule("mcp__slack__send"), None);
    }
}
