//! Which role each tool requires: the rule the permission gate applies to
//! every tool call.
//!
//! Built-in tools have defaults (reading is for everyone; running commands,
//! writing files and fetching URLs need an operator) that `CSP_TOOL_ROLES`
//! overrides per tool. A tool nobody decided on needs an admin, so a tool a
//! new CLI version adds is closed until someone opens it.

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
    tools: HashMap<String, Requirement>,
    /// For `mcp__*` tools without an entry of their own (plugins declare
    /// theirs in their manifest).
    mcp_default: Requirement,
    other_default: Requirement,
}

impl Default for ToolRoles {
    fn default() -> Self {
        let mut tools = HashMap::new();
        for t in USER_TOOLS {
            tools.insert((*t).to_owned(), Requirement::Role(Role::User));
        }
        for t in OPERATOR_TOOLS {
            tools.insert((*t).to_owned(), Requirement::Role(Role::Operator));
        }
        Self {
            tools,
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
                    roles.tools.insert(tool.to_owned(), req);
                }
            }
        }
        Ok(roles)
    }

    /// What `tool` requires. An `mcp__server__tool` entry wins over an
    /// `mcp__server` one, which wins over the MCP default.
    pub fn required(&self, tool: &str) -> Requirement {
        if let Some(req) = self.tools.get(tool) {
            return *req;
        }
        if tool.starts_with("mcp__") {
            // Server names may contain `__`: try the longest prefix first.
            let mut cut: Vec<usize> = tool.match_indices("__").skip(1).map(|(i, _)| i).collect();
            cut.reverse();
            for at in cut {
                if let Some(req) = self.tools.get(&tool[..at]) {
                    return *req;
                }
            }
            return self.mcp_default;
        }
        self.other_default
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

        assert!(ToolRoles::parse("Bash").unwrap_err().contains("Tool=role"));
        assert!(
            ToolRoles::parse("Bash=root")
                .unwrap_err()
                .contains("unknown role")
        );
    }
}
