//! docs/plugin.schema.json and parse_manifest agree: whatever the code
//! accepts, the schema accepts, and the schema rejects what it can express.

use csp_manifest::MANIFEST_SCHEMA;
use serde_json::Value;

use crate::helpers::{bytes, cases, parse};

/// Valid manifests.
const VALID: &[&str] = &[
    "everything",
    "full_featured",
    "minimal_tool",
    "short_tools",
    "with_bom",
];

/// Not JSON (or not UTF-8): neither the code nor a schema validator reads them.
const NOT_JSON: &[&str] = &[
    "comment",
    "control_character",
    "empty",
    "invalid_escape",
    "invalid_literal",
    "mismatched_bracket",
    "missing_colon",
    "missing_comma",
    "missing_comma_in_list",
    "missing_value",
    "not_utf8",
    "python_literal",
    "single_quoted_key",
    "single_quotes",
    "trailing_characters",
    "trailing_comma",
    "unclosed_brace",
    "unclosed_bracket",
    "unquoted_key",
    "whitespace_only",
];

/// Invalid by rules the schema states too.
const SCHEMA_REJECTS: &[&str] = &[
    "bad_env_name",
    "bad_name",
    "bad_network",
    "bad_plugin_type",
    "bad_role",
    "bad_server_name",
    "bad_tool_name",
    "bad_version",
    "config_schema_invalid",
    "config_schema_not_object",
    "empty_description",
    "manifest_version_2",
    "manifest_version_string",
    "mcp_forbidden",
    "mcp_missing",
    "missing_fields",
    "missing_tools",
    "secret_not_string",
    "short_tool_prefix",
    "tool_prefix",
    "top_level_array",
    "unknown_field",
    "unknown_nested_field",
    "wrong_types",
    "wrong_types_nested",
];

/// Invalid only by rules a JSON Schema cannot state (cross-field rules, the
/// directory name, placeholders, what a `$ref` may point at).
const CODE_ONLY: &[&str] = &[
    "config_required_undeclared",
    "config_schema_bad_regex",
    "config_schema_remote_ref",
    "duplicate_key",
    "duplicate_short_tool",
    "duplicate_tool",
    "name_mismatch",
    "secret_in_args",
    "tool_prefix_server_name",
    "unknown_config_placeholder",
    "unknown_placeholder",
];

pub(crate) fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(MANIFEST_SCHEMA).expect("MANIFEST_SCHEMA is JSON");
    jsonschema::draft202012::new(&schema).expect("MANIFEST_SCHEMA compiles")
}

fn json(case: &str) -> Option<Value> {
    let bytes = bytes(case);
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    serde_json::from_slice(bytes).ok()
}

#[test]
fn published_schema_is_the_compiled_one() {
    let on_disk = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/plugin.schema.json"
    ))
    .unwrap();
    assert_eq!(on_disk, MANIFEST_SCHEMA);
    let schema: Value = serde_json::from_str(MANIFEST_SCHEMA).unwrap();
    assert!(jsonschema::draft202012::meta::is_valid(&schema));
}

#[test]
fn every_fixture_is_classified() {
    let mut listed: Vec<&str> = [VALID, NOT_JSON, SCHEMA_REJECTS, CODE_ONLY].concat();
    listed.sort();
    assert_eq!(
        listed,
        cases(),
        "add the new fixture to one list in tests/it/schema.rs"
    );
}

#[test]
fn code_and_schema_agree_on_every_fixture() {
    let v = validator();
    for case in cases() {
        let accepted = parse(&case).is_ok();
        assert_eq!(accepted, VALID.contains(&case.as_str()), "{case}");
        let Some(doc) = json(&case) else {
            assert!(NOT_JSON.contains(&case.as_str()), "{case} is not JSON");
            continue;
        };
        assert!(!NOT_JSON.contains(&case.as_str()), "{case} is JSON");
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        let schema_ok = errors.is_empty();
        if accepted {
            assert!(
                schema_ok,
                "{case}: parse_manifest accepts it but the schema says {errors:#?}"
            );
        }
        if SCHEMA_REJECTS.contains(&case.as_str()) {
            assert!(!schema_ok, "{case}: the schema should reject it");
        }
        if CODE_ONLY.contains(&case.as_str()) {
            assert!(
                schema_ok,
                "{case}: meant to break only code-only rules, but the schema says {errors:#?}"
            );
        }
    }
}
