use std::path::{Path, PathBuf};

use csp_manifest::{Manifest, Problem, parse_manifest};

pub(crate) fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture case, sorted.
pub(crate) fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cases.sort();
    cases
}

pub(crate) fn file(case: &str) -> PathBuf {
    fixtures_dir().join(case).join("plugin.json")
}

pub(crate) fn bytes(case: &str) -> Vec<u8> {
    std::fs::read(file(case)).unwrap_or_else(|e| panic!("fixture {case}: {e}"))
}

pub(crate) fn parse(case: &str) -> Result<Manifest, Vec<Problem>> {
    parse_manifest(&file(case), &bytes(case), case)
}

pub(crate) fn valid(case: &str) -> Manifest {
    parse(case).unwrap_or_else(|problems| panic!("{case} should be valid: {problems:#?}"))
}

pub(crate) fn problems(case: &str) -> Vec<Problem> {
    match parse(case) {
        Ok(m) => panic!("{case} should be invalid, parsed as {m:#?}"),
        Err(problems) => {
            assert!(!problems.is_empty(), "{case}: Err without problems");
            for p in &problems {
                assert_eq!(p.file, file(case));
            }
            problems
        }
    }
}

/// The single problem of `case`, checked for its line and message.
pub(crate) fn only(case: &str, line: u32, message: &str) -> Problem {
    let mut all = problems(case);
    assert_eq!(all.len(), 1, "{case}: expected one problem, got {all:#?}");
    let p = all.remove(0);
    assert_eq!(
        (p.line, p.message.as_str()),
        (line, message),
        "{case}: {p:#?}"
    );
    p
}

/// (line, message) of every problem of `case`, in order.
pub(crate) fn lines_and_messages(case: &str) -> Vec<(u32, String)> {
    problems(case)
        .into_iter()
        .map(|p| (p.line, p.message))
        .collect()
}
