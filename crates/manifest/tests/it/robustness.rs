//! Hostile and broken input: parse_manifest returns with problems that
//! point inside the file, and never accepts what the schema rejects. (How
//! fast it returns is a benchmark's question, not a test's: a debug build on
//! a loaded machine says nothing about it.)

use std::path::Path;

use csp_manifest::{MAX_MANIFEST_BYTES, MAX_PROBLEMS, Problem, parse_manifest};
use proptest::prelude::*;

use crate::helpers::bytes;

/// Parses `input` and checks what must hold for any input.
fn parse_checked(input: &[u8]) -> Result<(), Vec<Problem>> {
    let file = Path::new("fuzz/plugin.json");
    let result = parse_manifest(file, input, "everything");
    match result {
        Ok(_) => {
            // Whatever the code accepts is valid JSON that the schema accepts.
            let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
            let doc: serde_json::Value =
                serde_json::from_slice(input).expect("accepted input is JSON");
            let errors: Vec<String> = crate::schema::validator()
                .iter_errors(&doc)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "accepted but the schema says {errors:?}");
            Ok(())
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            let lines = input.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            for p in &problems {
                assert_eq!(p.file, file);
                assert!(
                    p.line >= 1 && p.line <= lines,
                    "line {} of {lines}: {p:?}",
                    p.line
                );
                assert!(p.column >= 1, "{p:?}");
                assert!(!p.message.is_empty());
                let _ = p.to_string();
            }
            Err(problems)
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![
        b'{', b'}', b'[', b']', b'"', b',', b':', b'\\', b'\n', b' ', b'$', b'x', b'1', b'-',
        b'\'', 0xFF, 0xC3, 0x00,
    ]);
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), prop::collection::vec(interesting, 1..6))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize| i % (bytes.len() + 1);
    match m {
        Mutation::Flip(i, bits) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] ^= bits;
        }
        Mutation::Flip(..) => {}
        Mutation::Delete(i, n) => {
            let i = at(*i);
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Insert(i, b) => {
            let i = at(*i);
            bytes.splice(i..i, b.iter().copied());
        }
        Mutation::Truncate(i) => {
            let i = at(*i);
            bytes.truncate(i);
        }
    }
}

proptest! {
    // A fixed seed, nothing written to disk: every run checks the same
    // cases (PROPTEST_RNG_SEED explores others).
    #![proptest_config(csp_testkit::proptest_config(512))]

    #[test]
    fn arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_checked(&input);
    }

    #[test]
    fn arbitrary_json_like_text(input in "[\\[\\]{}\",:0-9a-z \n'\\\\$.-]{0,512}") {
        let _ = parse_checked(input.as_bytes());
    }

    #[test]
    fn mutations_of_a_valid_manifest(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut input = bytes("everything");
        for m in &mutations {
            apply(&mut input, m);
        }
        let _ = parse_checked(&input);
    }
}

#[test]
fn the_unmutated_fixture_passes_the_same_checks() {
    assert!(parse_checked(&bytes("everything")).is_ok());
}

#[test]
fn deep_nesting_is_refused_with_one_problem() {
    for input in [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("{{\"x-deep\": {}", "[{\"a\":".repeat(50_000)),
    ] {
        let problems = parse_checked(input.as_bytes()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].message,
            "Nesting too deep: more than 128 levels of '[' and '{'"
        );
    }
}

#[test]
fn nesting_within_the_limit_is_fine() {
    let text = String::from_utf8(bytes("everything")).unwrap();
    let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
    let text = text.replacen(
        "\"manifest_version\": 1,",
        &format!("\"manifest_version\": 1, \"x-deep\": {deep},"),
        1,
    );
    assert!(parse_checked(text.as_bytes()).is_ok());
}

#[test]
fn files_over_one_mebibyte_are_refused_unread() {
    let mut text = String::from_utf8(bytes("everything")).unwrap();
    let pad = MAX_MANIFEST_BYTES - text.len();
    text.push_str(&" ".repeat(pad));
    assert_eq!(text.len(), MAX_MANIFEST_BYTES);
    assert!(
        parse_checked(text.as_bytes()).is_ok(),
        "exactly 1 MiB is allowed"
    );

    text.push(' ');
    let problems = parse_checked(text.as_bytes()).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].line, problems[0].message.as_str()),
        (1, "File is too large: 1048577 bytes (the limit is 1 MiB)")
    );
}

#[test]
fn a_mebibyte_of_problems_is_still_bounded() {
    // Tens of thousands of unknown fields: the first hundred are listed with
    // their lines and suggestions, the rest counted.
    let mut text = String::from("{");
    let mut i = 0;
    while text.len() < MAX_MANIFEST_BYTES - 64 {
        text.push_str(&format!("\"descriptio{i}\": [1, {{\"a\": \"b\"}}],\n"));
        i += 1;
    }
    text.push_str("\"end\": 0}");
    let problems = parse_checked(text.as_bytes()).unwrap_err();
    assert_eq!(problems.len(), MAX_PROBLEMS + 1);
    // Six missing required fields on line 1 come first, then unknown fields by line.
    assert_eq!(problems[6].message, "Unknown field 'descriptio0'");
    assert_eq!(
        problems[6].suggestion.as_deref(),
        Some("Did you mean 'description'?")
    );
    assert!(
        problems[..MAX_PROBLEMS]
            .windows(2)
            .all(|w| w[0].line <= w[1].line)
    );
    // i unknown fields + "end" + 6 missing fields, minus the hundred shown.
    let more = i + 1 + 6 - MAX_PROBLEMS;
    assert_eq!(
        problems[MAX_PROBLEMS].message,
        format!("{more} more problems not shown")
    );
}
