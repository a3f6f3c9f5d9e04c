//! Every JSON example in `docs/mock-llm.md` is accepted by the code it documents.

use csp_mock_llm::{Behaviour, LogEntry, Rules};
use serde_json::Value;

#[test]
fn json_examples_in_the_docs_parse() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/mock-llm.md");
    let doc = std::fs::read_to_string(path).expect("docs/mock-llm.md exists");
    let blocks: Vec<&str> = doc
        .split("```json\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 10, "found only {} examples", blocks.len());
    for block in blocks {
        let value: Value = serde_json::from_str(block).unwrap_or_else(|e| panic!("{e}: {block}"));
        if value.get("rules").is_some() {
            Rules::from_json(block).unwrap_or_else(|e| panic!("{e}: {block}"));
        } else if value.get("index").is_some() {
            serde_json::from_value::<LogEntry>(value).unwrap_or_else(|e| panic!("{e}: {block}"));
        } else {
            serde_json::from_value::<Behaviour>(value).unwrap_or_else(|e| panic!("{e}: {block}"));
        }
    }
}
