//! JSON syntax errors: where the parser stopped, what came before, and how
//! to fix it.

use std::path::Path;

use csp_manifest::{Problem, parse_manifest};

use crate::helpers::only;

/// The single problem of an inline manifest text.
fn text_problem(text: &str) -> Problem {
    let mut problems =
        parse_manifest(Path::new("p/plugin.json"), text.as_bytes(), "p").unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.remove(0)
}

fn check(p: &Problem, line: u32, column: u32, message: &str, suggestion: &str) {
    assert_eq!(
        (
            p.line,
            p.column,
            p.message.as_str(),
            p.suggestion.as_deref()
        ),
        (line, column, message, Some(suggestion)),
        "{p:#?}"
    );
}

#[test]
fn missing_comma_names_the_previous_field() {
    let p = only("missing_comma", 12, "Expected comma after 'version' field");
    assert_eq!(p.column, 3);
    assert_eq!(p.field.as_deref(), Some("version"));
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Add a ',' at the end of line 11.")
    );
    assert!(
        p.to_string()
            .contains("Line 12: Expected comma after 'version' field"),
        "{p}"
    );
}

#[test]
fn missing_comma_after_a_nested_object_names_its_field() {
    let p = text_problem("{\n  \"capabilities\": { \"tools\": [] }\n  \"name\": \"p\"\n}");
    check(
        &p,
        3,
        3,
        "Expected comma after 'capabilities' field",
        "Add a ',' at the end of line 2.",
    );
}

#[test]
fn missing_comma_in_a_list() {
    let p = only(
        "missing_comma_in_list",
        10,
        "Expected comma after element 1 of 'capabilities.tools'",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Add a ',' at the end of line 9.")
    );
}

#[test]
fn trailing_comma_points_at_the_comma() {
    let p = only(
        "trailing_comma",
        7,
        "Trailing comma after 'capabilities' field",
    );
    assert_eq!(p.column, 34);
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Remove the ',' at the end of line 7: JSON allows no comma before '}'.")
    );
    let p = text_problem("{\"network\": [\n  \"a\",\n  \"b\",\n]}");
    check(
        &p,
        3,
        6,
        "Trailing comma after the last element of 'network'",
        "Remove the ',' at the end of line 3: JSON allows no comma before ']'.",
    );
}

#[test]
fn unquoted_and_single_quoted_keys() {
    let p = only(
        "unquoted_key",
        3,
        "Field name 'name' must be in double quotes",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Write \"name\" instead of name.")
    );
    assert_eq!(p.field, None);
    let p = only(
        "single_quoted_key",
        3,
        "Field names must be in double quotes, not single quotes",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Write \"name\" instead of 'name'.")
    );
}

#[test]
fn single_quoted_strings() {
    let p = only(
        "single_quotes",
        4,
        "Strings must be in double quotes, not single quotes for field 'version'",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Write \"1.0.0\" instead of '1.0.0'.")
    );
}

#[test]
fn unclosed_object_and_list() {
    let p = only(
        "unclosed_brace",
        5,
        "Unexpected end of file: the object opened on line 1 is not closed",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Add '}' at the end of the file.")
    );
    let p = only(
        "unclosed_bracket",
        7,
        "Unexpected end of file: the list 'capabilities.tools' opened on line 5 is not closed",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Add ']}}' at the end of the file.")
    );
    let p = text_problem(&"[".repeat(20));
    assert_eq!(
        p.suggestion.as_deref(),
        Some("20 brackets are still open; every '{' needs a '}' and every '[' a ']'.")
    );
}

#[test]
fn unclosed_string() {
    let p = text_problem("{\n  \"name\": \"abc");
    assert_eq!(
        (p.line, p.message.as_str()),
        (
            2,
            "Unexpected end of file inside a string that starts on line 2"
        )
    );
}

#[test]
fn mismatched_bracket() {
    only(
        "mismatched_bracket",
        5,
        "Expected '}' to close the object opened on line 3, found ']'",
    );
    let p = text_problem("{\"tools\": [\n  1\n}");
    check(
        &p,
        3,
        1,
        "Expected ']' to close 'tools' opened on line 1, found '}'",
        "Add ']' before the '}' on line 3.",
    );
}

#[test]
fn invalid_literals() {
    let p = only(
        "invalid_literal",
        4,
        "Invalid value 'tru' for field 'x-enabled'",
    );
    assert_eq!(p.column, 16, "points at the start of the word");
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Did you mean true? Otherwise write \"tru\" in double quotes.")
    );
    let p = only(
        "python_literal",
        3,
        "Invalid value 'True' for field 'x-enabled'",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("JSON literals are lowercase: write true.")
    );
    let p = text_problem("{\"a\": undefined}");
    check(
        &p,
        1,
        7,
        "Invalid value 'undefined' for field 'a'",
        "Write null.",
    );
}

#[test]
fn comments() {
    let p = only("comment", 2, "Comments are not allowed in JSON");
    assert_eq!(p.column, 3);
    let p = text_problem("{\"a\": # note\n 1}");
    assert_eq!(p.message, "Comments are not allowed in JSON");
}

#[test]
fn missing_colon_and_value() {
    let p = only("missing_colon", 3, "Expected ':' after field name 'name'");
    assert_eq!(p.suggestion.as_deref(), Some("Write \"name\": <value>."));
    let p = only("missing_value", 3, "Missing value for field 'name'");
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Add a value after the ':' on line 3.")
    );
}

#[test]
fn content_after_the_object() {
    let p = only(
        "trailing_characters",
        5,
        "Unexpected content after the end of the manifest, found '}'",
    );
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Remove the extra '}': the manifest object already ends on line 4.")
    );
}

#[test]
fn strings_with_raw_line_breaks_and_bad_escapes() {
    let p = only(
        "control_character",
        3,
        "Unescaped control character (such as a line break or tab) in field 'description'",
    );
    assert!(p.suggestion.unwrap().contains("\\n for a line break"));
    let p = only(
        "invalid_escape",
        3,
        "Invalid escape sequence in field 'mcp.command'",
    );
    assert!(p.suggestion.unwrap().contains("Windows paths"));
    let p = text_problem("{\"a\": \"\\uD800x\"}");
    assert_eq!(p.message, "Invalid \\u escape in field 'a'");
}

#[test]
fn numbers() {
    let p = text_problem("{\"manifest_version\": 01}");
    assert_eq!(p.message, "Invalid number for field 'manifest_version'");
    let p = text_problem("{\"manifest_version\": 1e999}");
    assert_eq!(
        (p.line, p.message.as_str()),
        (1, "Invalid number for field 'manifest_version'")
    );
}

#[test]
fn empty_files() {
    let p = only("empty", 1, "File is empty");
    assert_eq!(p.column, 1);
    only("whitespace_only", 1, "File is empty");
}

#[test]
fn top_level_must_be_an_object() {
    let p = only(
        "top_level_array",
        2,
        "The manifest must be a JSON object (found a list)",
    );
    assert_eq!(p.column, 1);
    let p = text_problem("\"plugin\"");
    assert_eq!(
        p.message,
        "The manifest must be a JSON object (found \"plugin\")"
    );
}

#[test]
fn non_utf8_bytes() {
    let p = only("not_utf8", 3, "File is not valid UTF-8 (byte 0xE9)");
    assert_eq!(p.column, 22);
    assert_eq!(
        p.suggestion.as_deref(),
        Some("Save plugin.json with UTF-8 encoding.")
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // "é" is two bytes; the missing comma is reported at the column an editor shows.
    let p = text_problem("{\"description\": \"café\" \"name\": \"p\"}");
    assert_eq!((p.line, p.column), (1, 24));
    assert_eq!(p.message, "Expected comma after 'description' field");
}
