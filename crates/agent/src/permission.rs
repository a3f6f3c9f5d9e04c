use std::collections::HashSet;

use async_trait::async_trait;
use serde_json::Value;

/// One tool call the agent wants to make.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionRequest {
    pub tool_name: String,
    pub input: Value,
    pub tool_use_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The message is shown to the model as the tool's (error) result.
    Deny {
        message: String,
    },
}

impl Decision {
    pub fn deny(message: impl Into<String>) -> Decision {
        Decision::Deny {
            message: message.into(),
        }
    }
}

/// Decides every tool call of an agent, including the ones the CLI would
/// accept on its own. The driver bounds each call with
/// `Config::permission_timeout` and denies when it is exceeded, so an
/// implementation may take its time but need not.
#[async_trait]
pub trait PermissionHook: Send + Sync {
    async fn decide(&self, request: &PermissionRequest) -> Decision;
}

/// Allows the named tools and nothing else. An entry `mcp__<server>` allows
/// every tool of that MCP server.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    tools: HashSet<String>,
}

impl AllowList {
    pub fn new<I, S>(tools: I) -> AllowList
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AllowList {
            tools: tools.into_iter().map(Into::into).collect(),
        }
    }

    pub fn allows(&self, tool_name: &str) -> bool {
        if self.tools.contains(tool_name) {
            return true;
        }
        // `mcp__calc__add` belongs to server `mcp__calc`; server names may
        // themselves contain `__`, so every prefix ending before a `__` counts.
        tool_name.starts_with("mcp__")
            && tool_name
                .match_indices("__")
                .skip(1)
                .any(|(at, _)| self.tools.contains(&tool_name[..at]))
    }
}

#[async_trait]
impl PermissionHook for AllowList {
    async fn decide(&self, request: &PermissionRequest) -> Decision {
        if self.allows(&request.tool_name) {
            Decision::Allow
        } else {
            Decision::deny(format!(
                "Tool '{}' is not allowed in this deployment. Ask an administrator to allow it.",
                request.tool_name
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tool_name: &str) -> PermissionRequest {
        PermissionRequest {
            tool_name: tool_name.into(),
            input: Value::Null,
            tool_use_id: None,
        }
    }

    #[test]
    fn exact_names_and_mcp_server_prefixes() {
        let list = AllowList::new(["Bash", "mcp__calc", "mcp__my__srv"]);
        assert!(list.allows("Bash"));
        assert!(list.allows("mcp__calc__add"));
        assert!(list.allows("mcp__my__srv__tool"));
        assert!(list.allows("mcp__calc"));
        assert!(!list.allows("Bashful"));
        assert!(!list.allows("bash"));
        assert!(!list.allows("mcp__calculator__add"));
        assert!(!list.allows("mcp__my__other"));
        assert!(!list.allows("Write"));
        assert!(!AllowList::new(["mcp"]).allows("mcp__calc__add"));
    }

    #[tokio::test]
    async fn denies_with_an_actionable_message() {
        let list = AllowList::new(["Bash"]);
        assert_eq!(list.decide(&request("Bash")).await, Decision::Allow);
        assert_eq!(
            list.decide(&request("WebFetch")).await,
            Decision::deny(
                "Tool 'WebFetch' is not allowed in this deployment. Ask an administrator to allow it."
            )
        );
    }
}
