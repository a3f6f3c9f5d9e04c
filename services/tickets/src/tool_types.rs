//! The ticketing tools csp has a connector for and each one's tenant
//! fields, as the Tenants page builds its form from them: read from the
//! connector registry (`csp-ticketing`), never copied.

use csp_proto::v1 as pb;
use csp_ticketing::connector::{FieldKind, ToolType};
use csp_ticketing::registry::connector;

/// Every tool, in the order they are listed to users, with its fields in
/// the order of its form.
pub(crate) fn tool_types() -> pb::ToolTypes {
    pb::ToolTypes {
        tool_types: ToolType::ALL
            .into_iter()
            .map(|tool| pb::ToolType {
                tool_type: tool.as_str().to_owned(),
                display_name: tool.display_name().to_owned(),
                fields: connector(tool)
                    .fields()
                    .iter()
                    .map(|f| {
                        let (kind, choices) = match f.kind {
                            FieldKind::Url => ("url", &[][..]),
                            FieldKind::Email => ("email", &[][..]),
                            FieldKind::Text => ("text", &[][..]),
                            FieldKind::Credential => ("credential", &[][..]),
                            FieldKind::Choice(choices) => ("choice", choices),
                        };
                        pb::ToolField {
                            name: f.name.to_owned(),
                            label: f.label.to_owned(),
                            required: f.required,
                            secret: f.secret,
                            kind: kind.to_owned(),
                            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_listed_with_its_connectors_fields() {
        let list = tool_types();
        let names: Vec<&str> = list
            .tool_types
            .iter()
            .map(|t| t.tool_type.as_str())
            .collect();
        assert_eq!(names, ["servicedesk_plus", "jira", "zendesk"]);
        for (t, tool) in list.tool_types.iter().zip(ToolType::ALL) {
            let fields = connector(tool).fields();
            assert_eq!(t.fields.len(), fields.len());
            for (got, want) in t.fields.iter().zip(fields) {
                assert_eq!(
                    (got.name.as_str(), got.required, got.secret),
                    (want.name, want.required, want.secret)
                );
            }
        }
        let sdp = &list.tool_types[0];
        let url = sdp
            .fields
            .iter()
            .find(|f| f.name == "servicedesk_url")
            .unwrap();
        assert_eq!(
            (url.kind.as_str(), url.required, url.secret),
            ("url", true, false)
        );
        let auth = sdp
            .fields
            .iter()
            .find(|f| f.name == "servicedesk_auth")
            .unwrap();
        assert_eq!(auth.kind, "choice");
        assert_eq!(auth.choices, ["authtoken", "zoho_oauth"]);
        let key = sdp.fields.iter().find(|f| f.name == "api_key").unwrap();
        assert!(key.secret && key.required);
    }
}
