//! Which role each tool requires: the rule the permission gate applies to
//! every tool call.
//!
//! Built-in tools have defaults (reading is for everyone; running commands,
//! writing files and fetching URLs need an operator) that `CSP_TOOL_ROLES`
//! overrides per tool. A tool nobody decided on needs an admin, so a tool a
//! new CLI version adds is closed until someone opens it. MCP tools of
//! plugins take the role their manifest declares (see `plugins`), unless
//! `CSP_TOOL_ROLES` names them: the operator's word is last.

use csp_domain::Role;
use std::collections::HashMap;

/// What a tool requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Role(Role),
    /// Nobody may use it.
    Disabled,
}

const USER_TOOLS: &[&str] = &[
    "Read",
    "Glob",
    "Grep",
    "LS",
    "NotebookRead",
    "TodoWrite",
    "TodoRead",
    "AskUserQuestion",
    "ExitPlanMode",
    "WebSearch",
];

const OPERATOR_TOOLS: &[&str] = &[
    "Bash",
    "BashOutput",
    "KillShell",
    "KillBash",
    "Write",
    "Edit",
    "MultiEdit",
    "NotebookEdit",
    "WebFetch",
    "Task",
    "Agent",
    "Skill",
    "SlashCommand",
];

/// The tool → requirement table.
#[derive(Debug, Clone)]
pub struct ToolRoles {
    /// The built-in tools' defaults.
    defaults: HashMap<String, Requirement>,
    /// `CSP_TOOL_ROLES` entries naming a tool or an MCP server.
    explicit: HashMap<String, Requirement>,
    /// For `mcp__*` tools without an entry of their own (plugins declare
    /// theirs in their manifest).
    mcp_default: Requirement,
    other_default: Requirement,
}

impl Default for ToolRoles {
    fn default() -> Self {
        let mut defaults = HashMap::new();
        for t in USER_TOOLS {
            defaults.insert((*t).to_owned(), Requirement::Role(Role::User));
        }
        for t in OPERATOR_TOOLS {
            defaults.insert((*t).to_owned(), Requirement::Role(Role::Operator));
        }
        Self {
            defaults,
            explicit: HashMap::new(),
            mcp_default: Requirement::Role(Role::Operator),
            other_default: Requirement::Role(Role::Admin),
        }
    }
}

impl ToolRoles {
    /// The defaults with `spec` applied: `Tool=role` pairs separated by
    /// commas, role one of admin, operator, user or `disabled`; `*` names
    /// every unlisted built-in tool and `mcp__*` every unlisted MCP tool.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut roles = Self::default();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (tool, role) = pair
                .split_once('=')
                .ok_or_else(|| format!("CSP_TOOL_ROLES: '{pair}' is not Tool=role"))?;
            let (tool, role) = (tool.trim(), role.trim());
            let req = match role {
                "disabled" | "none" => Requirement::Disabled,
                role => Requirement::Role(
                    role.parse()
                        .map_err(|e: String| format!("CSP_TOOL_ROLES: {tool}: {e} or disabled"))?,
                ),
            };
            match tool {
                "" => return Err(format!("CSP_TOOL_ROLES: '{pair}' names no tool")),
                "*" => roles.other_default = req,
                "mcp__*" => roles.mcp_default = req,
                tool => {
                    roles.explicit.insert(tool.to_owned(), req);
                }
            }
        }
        Ok(roles)
    }

    /// What `CSP_TOOL_ROLES` says of `tool` itself: its own entry or, for an
    /// MCP tool, its server's (`mcp__server__tool` wins over `mcp__server`).
    /// The `*` and `mcp__*` defaults are not explicit.
    pub fn explicit(&self, tool: &str) -> Option<Requirement> {
        if let Some(req) = self.explicit.get(tool) {
            return Some(*req);
        }
        if !tool.starts_with("mcp__") {
            return None;
        }
        // Server names may contain `__`: try the longest prefix first.
        let mut cut: Vec<usize> = tool.match_indices("__").skip(1).map(|(i, _)| i).collect();
        cut.reverse();
        cut.into_iter()
            .find_map(|at| self.explicit.get(&tool[..at]).copied())
    }

    /// What `tool` requires when no plugin declares it: an explicit entry,
    /// else the built-in default, else the MCP or the general default.
    pub fn required(&self, tool: &str) -> Requirement {
        if let Some(req) = self.explicit(tool) {
            return req;
        }
        if let Some(req) = self.defaults.get(tool) {
            return *req;
        }
        if tool.starts_with("mcp__") {
            self.mcp_default
        } else {
            self.other_default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_mcp_prefixes() {
        let d = ToolRoles::default();
        assert_eq!(d.required("Read"), Requirement::Role(Role::User));
        assert_eq!(d.required("Bash"), Requirement::Role(Role::Operator));
        assert_eq!(d.required("BrandNewTool"), Requirement::Role(Role::Admin));
        assert_eq!(
            d.required("mcp__calc__add"),
            Requirement::Role(Role::Operator)
        );

        let r = ToolRoles::parse(
            "Bash=user, WebFetch=disabled, mcp__calc=user, mcp__*=admin, *=operator",
        )
        .unwrap();
        assert_eq!(r.required("Bash"), Requirement::Role(Role::User));
        assert_eq!(r.required("WebFetch"), Requirement::Disabled);
        assert_eq!(r.required("mcp__calc__add"), Requirement::Role(Role::User));
        assert_eq!(r.required("mcp__other__x"), Requirement::Role(Role::Admin));
        assert_eq!(
            r.required("BrandNewTool"),
            Requirement::Role(Role::Operator)
        );
        assert_eq!(r.required("Read"), Requirement::Role(Role::User));

        assert_eq!(
            r.explicit("mcp__calc__add"),
            Some(Requirement::Role(Role::User))
        );
        assert_eq!(r.explicit("Bash"), Some(Requirement::Role(Role::User)));
        assert_eq!(r.explicit("mcp__other__x"), None, "mcp__* is a default");
        assert_eq!(
            r.explicit("Read"),
            None,
            "a built-in default is not explicit"
        );
        assert_eq!(d.explicit("mcp__calc__add"), None);

        assert!(ToolRoles::parse("Bash").unwrap_err().contains("Tool=role"));
        assert!(
            ToolRoles::parse("Bash=root")
                .unwrap_err()
                .contains("unknown role")
        );
    }
}
