//! One fixture per manifest rule: the exact line and message an author sees.

use csp_domain::Role;
use csp_manifest::{McpSpec, PluginType, ToolSpec};

use crate::helpers::{file, lines_and_messages, only, valid};

#[test]
fn design_example_is_valid() {
    let m = valid("everything");
    assert_eq!(m.manifest_version, 1);
    assert_eq!(m.name, "everything");
    assert_eq!(m.version, "2025.11.25");
    assert_eq!(m.plugin_type, PluginType::Mcp);
    assert_eq!(m.required_role, Role::Operator);
    assert_eq!(
        m.tools,
        [
            ToolSpec {
                name: "mcp__everything__echo".into(),
                description: Some("Echoes its input".into()),
                required_role: Role::User,
            },
            ToolSpec {
                name: "mcp__everything__add".into(),
                description: None,
                required_role: Role::Operator,
            },
        ]
    );
    assert_eq!(
        m.tool_names().collect::<Vec<_>>(),
        ["mcp__everything__echo", "mcp__everything__add"]
    );
    assert!(m.network.is_empty());
    assert!(m.needs_config());
    assert_eq!(
        m.secret_fields().into_iter().collect::<Vec<_>>(),
        ["api_token"]
    );
    assert_eq!(
        m.config_fields().into_iter().collect::<Vec<_>>(),
        ["api_token", "greeting"]
    );
    assert_eq!(
        m.mcp,
        Some(McpSpec {
            server_name: "everything".into(),
            command: "${plugin_dir}/node_modules/.bin/mcp-server-everything".into(),
            args: vec!["stdio".into()],
            env: [
                (
                    "EVERYTHING_TOKEN".to_owned(),
                    "${config.api_token}".to_owned()
                ),
                ("GREETING".to_owned(), "${config.greeting}".to_owned()),
            ]
            .into(),
            cwd: None,
        })
    );
}

#[test]
fn defaults_fill_optional_fields() {
    let m = valid("minimal_tool");
    assert_eq!(m.plugin_type, PluginType::Tool);
    assert_eq!(m.required_role, Role::Operator);
    assert!(
        m.tools.is_empty() && m.network.is_empty() && m.mcp.is_none() && m.config_schema.is_none()
    );
    assert!(!m.needs_config());
    assert!(m.secret_fields().is_empty());
}

#[test]
fn every_optional_field_and_x_extensions() {
    let m = valid("full_featured");
    assert_eq!(m.required_role, Role::Admin);
    assert_eq!(m.tools[0].required_role, Role::User);
    assert_eq!(m.tools[1].required_role, Role::Admin);
    assert_eq!(
        m.network,
        ["api.example.com", "10.0.0.7:8443", "[::1]:9000"]
    );
    let mcp = m.mcp.as_ref().unwrap();
    assert_eq!(mcp.server_name, "full-srv");
    assert_eq!(mcp.cwd.as_deref(), Some("${plugin_dir}/dist"));
}

#[test]
fn byte_order_mark_is_accepted() {
    assert_eq!(valid("with_bom").name, "with_bom");
}

#[test]
fn manifest_version_must_be_1() {
    let p = only(
        "manifest_version_2",
        2,
        "Unsupported manifest_version 2: this csp reads manifest_version 1",
    );
    assert_eq!(p.field.as_deref(), Some("manifest_version"));
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Set \"manifest_version\": 1.")
    );
    let p = only(
        "manifest_version_string",
        2,
        "Field 'manifest_version' must be the integer 1 (found \"1\")",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Write the number without quotes: \"manifest_version\": 1.")
    );
}

#[test]
fn bad_name() {
    let p = only(
        "bad_name",
        3,
        "Field 'name' must be 1 to 63 lowercase letters, digits, '_' or '-', starting with a letter or digit (found \"Bad Name\")",
    );
    assert_eq!(p.column, 11);
    assert_eq!(p.suggestion.as_deref(), Some("Did you mean \"bad-name\"?"));
}

#[test]
fn name_must_equal_directory() {
    let p = only(
        "name_mismatch",
        3,
        "Field 'name' is \"other\" but the plugin directory is named \"name_mismatch\"",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some(
            "The name must equal the directory name: rename the directory to \"other\" or set \"name\": \"name_mismatch\"."
        )
    );
}

#[test]
fn bad_version() {
    let p = only(
        "bad_version",
        4,
        "Field 'version' must be a semantic version MAJOR.MINOR.PATCH (found \"1.0\")",
    );
    assert_eq!(p.suggestion.as_deref(), Some("Did you mean \"1.0.0\"?"));
}

#[test]
fn bad_plugin_type() {
    let p = only(
        "bad_plugin_type",
        7,
        "Field 'plugin_type' must be one of tool, mcp, skill, endpoint (found \"mcpp\")",
    );
    assert_eq!(
        p.to_string(),
        format!(
            "{}: Line 7: Field 'plugin_type' must be one of tool, mcp, skill, endpoint (found \"mcpp\") (Did you mean \"mcp\"?)",
            file("bad_plugin_type").display()
        )
    );
}

#[test]
fn bad_roles_at_plugin_and_tool_level() {
    assert_eq!(
        lines_and_messages("bad_role"),
        [
            (7, "Field 'required_role' must be one of admin, operator, user (found \"root\")".into()),
            (
                10,
                "Field 'capabilities.tools[0].required_role' must be one of admin, operator, user (found \"users\")".into()
            ),
        ]
    );
}

#[test]
fn mcp_tool_names_need_the_server_prefix() {
    let p = only(
        "tool_prefix",
        10,
        "Tool name 'echo' must be 'mcp__tool_prefix__<tool>' for MCP server 'tool_prefix' (<tool>: letters, digits, '_' or '-')",
    );
    assert_eq!(p.field.as_deref(), Some("capabilities.tools[1].name"));
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Rename it to 'mcp__tool_prefix__echo'.")
    );
}

#[test]
fn the_prefix_uses_server_name_when_set() {
    let p = only(
        "tool_prefix_server_name",
        9,
        "Tool name 'mcp__tool_prefix_server_name__echo' must be 'mcp__srv__<tool>' for MCP server 'srv' (<tool>: letters, digits, '_' or '-')",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Rename it to 'mcp__srv__echo'.")
    );
}

#[test]
fn tool_names_of_other_plugins_are_plain_identifiers() {
    only(
        "bad_tool_name",
        7,
        "Tool name 'send message' must be 1 to 128 letters, digits, '_' or '-'",
    );
}

#[test]
fn duplicate_tool_names() {
    let p = only(
        "duplicate_tool",
        11,
        "Duplicate tool name 'mcp__duplicate_tool__echo': capabilities.tools[0] declares it too",
    );
    assert_eq!(p.field.as_deref(), Some("capabilities.tools[2].name"));
}

#[test]
fn tools_may_be_plain_names_with_the_plugin_role() {
    let m = valid("short_tools");
    assert_eq!(m.required_role, Role::User);
    assert_eq!(
        m.tools,
        [
            ToolSpec {
                name: "mcp__short_tools__echo".into(),
                description: None,
                required_role: Role::User,
            },
            ToolSpec {
                name: "mcp__short_tools__add".into(),
                description: None,
                required_role: Role::User,
            },
            ToolSpec {
                name: "mcp__short_tools__reset".into(),
                description: None,
                required_role: Role::Admin,
            },
        ]
    );
}

#[test]
fn plain_tool_names_follow_the_same_rules() {
    let p = only(
        "short_tool_prefix",
        10,
        "Tool name 'echo' must be 'mcp__short_tool_prefix__<tool>' for MCP server 'short_tool_prefix' (<tool>: letters, digits, '_' or '-')",
    );
    assert_eq!(p.field.as_deref(), Some("capabilities.tools[1]"));
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Rename it to 'mcp__short_tool_prefix__echo'.")
    );
    assert_eq!(
        lines_and_messages("duplicate_short_tool"),
        [
            (10, "Duplicate tool name 'mcp__duplicate_short_tool__echo': capabilities.tools[0] declares it too".into()),
            (11, "Duplicate tool name 'mcp__duplicate_short_tool__echo': capabilities.tools[1] declares it too".into()),
        ]
    );
    let fields: Vec<_> = crate::helpers::problems("duplicate_short_tool")
        .into_iter()
        .map(|p| p.field.unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        ["capabilities.tools[1].name", "capabilities.tools[2]"]
    );
}

#[test]
fn secrets_must_be_strings() {
    let p = only(
        "secret_not_string",
        11,
        "Secret config field 'pin' must have type \"string\" (found \"integer\")",
    );
    assert_eq!(
        p.field.as_deref(),
        Some("config_schema.properties.pin.type")
    );
}

#[test]
fn config_schema_must_describe_an_object() {
    only(
        "config_schema_not_object",
        9,
        "Field 'config_schema.type' must be \"object\" (found \"array\")",
    );
}

#[test]
fn config_schema_must_be_valid_json_schema() {
    let p = only(
        "config_schema_invalid",
        11,
        "Field 'config_schema.properties.level.type' is not valid JSON Schema: \"strng\" is not valid under any of the schemas listed in the 'anyOf' keyword",
    );
    assert_eq!(p.suggestion.as_deref(), Some("Did you mean \"string\"?"));

    let p = only(
        "config_schema_bad_regex",
        11,
        "Field 'config_schema.properties.id.pattern' is not valid JSON Schema: \"([a-z]\" is not a \"regex\"",
    );
    assert_eq!(p.column, 44);
}

#[test]
fn config_schema_may_not_fetch_remote_refs() {
    let p = only(
        "config_schema_remote_ref",
        8,
        "Field 'config_schema' refers to 'https://example.com/schemas/id.json', which csp does not download",
    );
    assert!(p.suggestion.unwrap().contains("self-contained"));
}

#[test]
fn required_config_fields_must_be_declared() {
    let p = only(
        "config_required_undeclared",
        11,
        "Required config field 'tokn' is not declared in config_schema.properties",
    );
    assert_eq!(p.suggestion.as_deref(), Some("Did you mean \"token\"?"));
}

#[test]
fn mcp_section_is_required_for_mcp_plugins() {
    let p = only(
        "mcp_missing",
        1,
        "Missing required field 'mcp' (plugin_type is \"mcp\")",
    );
    assert_eq!((p.column, p.field.as_deref()), (1, Some("mcp")));
}

#[test]
fn mcp_section_is_forbidden_for_other_plugins() {
    let p = only(
        "mcp_forbidden",
        8,
        "Field 'mcp' is only allowed when plugin_type is \"mcp\" (plugin_type is \"skill\")",
    );
    assert_eq!(p.column, 3, "points at the key");
}

#[test]
fn secrets_never_go_on_argv() {
    let p = only(
        "secret_in_args",
        14,
        "Secret config field 'api_token' must not be used in 'mcp.args[1]': secrets reach the server only through mcp.env",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some(
            "Pass it as an environment variable: \"env\": {\"API_TOKEN\": \"${config.api_token}\"}."
        )
    );
}

#[test]
fn config_placeholders_must_name_declared_fields() {
    let p = only(
        "unknown_config_placeholder",
        14,
        "Placeholder '${config.greting}' in 'mcp.env.GREETING' refers to unknown config field 'greting'",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Did you mean '${config.greeting}'?")
    );
}

#[test]
fn only_known_placeholders() {
    only(
        "unknown_placeholder",
        9,
        "Field 'mcp.command' has unknown placeholder '${HOME}'",
    );
}

#[test]
fn unknown_fields_get_a_did_you_mean() {
    let all = crate::helpers::problems("unknown_field");
    let got: Vec<_> = all
        .iter()
        .map(|p| (p.line, p.message.as_str(), p.suggestion.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "Missing required field 'description'", None),
            (
                6,
                "Unknown field 'descripton'",
                Some("Did you mean 'description'?")
            ),
            (
                8,
                "Unknown field 'homepage'",
                Some("Remove it; custom fields must start with 'x-'.")
            ),
        ]
    );
}

#[test]
fn unknown_nested_fields() {
    let p = only("unknown_nested_field", 10, "Unknown field 'mcp.evn'");
    assert_eq!(p.suggestion.as_deref(), Some("Did you mean 'env'?"));
}

#[test]
fn wrong_types_at_top_level() {
    assert_eq!(
        lines_and_messages("wrong_types"),
        [
            (3, "Field 'name' must be a string (found 7)".into()),
            (4, "Field 'version' must be a string (found 1.0)".into()),
            (
                5,
                "Field 'plugin_type' must be one of tool, mcp, skill, endpoint (found a list)"
                    .into()
            ),
            (
                6,
                "Field 'description' must be a string (found null)".into()
            ),
            (
                7,
                "Field 'required_role' must be one of admin, operator, user (found true)".into()
            ),
            (
                8,
                "Field 'capabilities.tools' must be a list (found an object)".into()
            ),
            (
                9,
                "Field 'permissions.network' must be a list (found \"api.example.com\")".into()
            ),
            (
                10,
                "Field 'config_schema' must be a JSON Schema object (found \"none\")".into()
            ),
        ]
    );
}

#[test]
fn wrong_types_in_sections() {
    assert_eq!(
        lines_and_messages("wrong_types_nested"),
        [
            (
                9,
                "Field 'capabilities.tools[0]' must be a tool name or an object (found 7)".into()
            ),
            (
                10,
                "Field 'capabilities.tools[1].description' must be a string (found 5)".into()
            ),
            (
                13,
                "Field 'permissions.network[0]' must be a string (found 443)".into()
            ),
            (
                15,
                "Field 'mcp.command' must be a string (found a list)".into()
            ),
            (
                16,
                "Field 'mcp.args' must be a list (found \"stdio\")".into()
            ),
            (
                17,
                "Field 'mcp.env.DEBUG' must be a string (found true)".into()
            ),
            (18, "Field 'mcp.cwd' must be a string (found 0)".into()),
        ]
    );
}

#[test]
fn missing_fields_point_at_the_enclosing_object() {
    assert_eq!(
        lines_and_messages("missing_fields"),
        [
            (1, "Missing required field 'manifest_version'".into()),
            (1, "Missing required field 'name'".into()),
            (1, "Missing required field 'version'".into()),
            (1, "Missing required field 'plugin_type'".into()),
            (1, "Missing required field 'description'".into()),
            (1, "Missing required field 'capabilities'".into()),
        ]
    );
    let p = only(
        "missing_tools",
        7,
        "Missing required field 'capabilities.tools'",
    );
    assert_eq!(p.column, 19, "the '{{' of capabilities");
}

#[test]
fn duplicate_keys_are_reported() {
    let p = only(
        "duplicate_key",
        8,
        "Duplicate field 'description' (first on line 6)",
    );
    assert_eq!(p.column, 3);
}

#[test]
fn network_entries_are_hosts() {
    let p = only(
        "bad_network",
        9,
        "Entry \"https://slack.com/api\" in 'permissions.network' must be a host name or host:port",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Write just the host: \"slack.com\".")
    );
    assert_eq!(p.field.as_deref(), Some("permissions.network[1]"));
}

#[test]
fn env_names_and_server_names() {
    only(
        "bad_env_name",
        10,
        "Environment variable name 'LOG-LEVEL' must be letters, digits and '_', not starting with a digit",
    );
    only(
        "bad_server_name",
        8,
        "Field 'mcp.server_name' must be 1 to 64 letters, digits, '_' or '-', without '__' (found \"my__server\")",
    );
}

#[test]
fn description_must_say_something() {
    only(
        "empty_description",
        6,
        "Field 'description' must not be empty",
    );
}

#[test]
fn problems_serialize_for_the_api() {
    let p = only(
        "bad_version",
        4,
        "Field 'version' must be a semantic version MAJOR.MINOR.PATCH (found \"1.0\")",
    );
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        serde_json::json!({
            "file": file("bad_version"),
            "line": 4,
            "column": 14,
            "field": "version",
            "message": "Field 'version' must be a semantic version MAJOR.MINOR.PATCH (found \"1.0\")",
            "suggestion": "Did you mean \"1.0.0\"?",
        })
    );
}
