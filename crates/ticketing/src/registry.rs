//! The connectors by tool: what `tool_type` a tenant, a webhook path or a
//! job names is looked up here. Apart from [`crate::connector`] (the
//! interface) so that the interface depends on no connector.

use crate::connector::{Connector, ToolType, UnknownToolType};

/// The connector for `tool`.
pub fn connector(tool: ToolType) -> &'static dyn Connector {
    match tool {
        ToolType::ServicedeskPlus => &crate::servicedesk::ServiceDeskPlus,
        ToolType::Jira => &crate::jira::Jira,
        ToolType::Zendesk => &crate::zendesk::Zendesk,
    }
}

/// The connector for a `tool_type` as text.
pub fn connector_for(tool_type: &str) -> Result<&'static dyn Connector, UnknownToolType> {
    ToolType::parse(tool_type).map(connector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_its_connector() {
        for tool in ToolType::ALL {
            assert_eq!(connector(tool).tool_type(), tool);
            assert_eq!(connector_for(tool.as_str()).unwrap().tool_type(), tool);
        }
        assert!(connector_for("freshservice").is_err());
    }
}
