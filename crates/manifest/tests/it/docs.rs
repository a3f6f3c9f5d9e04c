//! docs/plugins.md shows valid manifests and real error messages.

use std::collections::BTreeSet;
use std::path::Path;

use csp_manifest::{MAX_PROBLEMS, parse_manifest};
use regex::Regex;

use crate::helpers::{cases, parse};

fn doc() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/plugins.md"
    ))
    .unwrap()
}

#[test]
fn example_manifests_are_valid() {
    let doc = doc();
    let blocks: Vec<&str> = doc
        .split("```json\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .filter(|b| b.contains("\"manifest_version\""))
        .collect();
    assert_eq!(blocks.len(), 2, "the design example and the minimal one");
    for block in blocks {
        let doc: serde_json::Value = serde_json::from_str(block).unwrap();
        let name = doc["name"].as_str().unwrap();
        let file = Path::new("plugins").join(name).join("plugin.json");
        if let Err(problems) = parse_manifest(&file, block.as_bytes(), name) {
            panic!("docs/plugins.md example {name}: {problems:#?}");
        }
    }
}

#[test]
fn example_matches_the_fixture() {
    let doc = doc();
    let fixture = String::from_utf8(crate::helpers::bytes("everything")).unwrap();
    assert!(
        doc.contains(&format!("```json\n{fixture}```")),
        "docs/plugins.md and tests/fixtures/everything drifted apart"
    );
}

/// A documented message as a pattern: quoted parts ('x', "x") and `(...)`
/// stand for any value, a trailing `...` for any rest.
fn pattern(message: &str) -> Regex {
    let quoted = Regex::new(r#"'[^']*'|"[^"]*"|\(\.\.\.\)|\.\.\.$"#).unwrap();
    let mut re = String::from("^");
    let mut last = 0;
    for m in quoted.find_iter(message) {
        re.push_str(&regex::escape(&message[last..m.start()]));
        re.push_str(match m.as_str() {
            "(...)" => r"\(.*\)",
            "..." => ".*",
            q if q.starts_with('\'') => "'[^']*'",
            _ => "\"[^\"]*\"",
        });
        last = m.end();
    }
    re.push_str(&regex::escape(&message[last..]));
    re.push('$');
    Regex::new(&re).unwrap()
}

#[test]
fn common_errors_are_real_messages() {
    let produced: BTreeSet<String> = cases()
        .iter()
        .filter_map(|c| parse(c).err())
        .flatten()
        .map(|p| p.message)
        .collect();
    let doc = doc();
    let table = doc
        .split("### Common errors")
        .nth(1)
        .expect("a Common errors section")
        // The section ends at the next heading.
        .split("\n#")
        .next()
        .unwrap();
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let message = line.split('`').nth(1).unwrap();
        let re = pattern(message);
        assert!(
            produced.iter().any(|p| re.is_match(p)),
            "docs/plugins.md lists `{message}`, which no fixture produces"
        );
        rows += 1;
    }
    assert!(rows >= 20, "{rows} rows");
}

#[test]
fn documented_limit() {
    assert!(doc().contains(&format!("at once (up to {MAX_PROBLEMS})")));
}
