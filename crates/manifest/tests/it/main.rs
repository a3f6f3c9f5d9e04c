//! Integration tests of csp-manifest against the fixtures in
//! `tests/fixtures/<case>/plugin.json` (each case's directory name is the
//! plugin directory name the manifest is checked against).

mod docs;
mod fixtures;
mod helpers;
mod robustness;
mod schema;
mod syntax;
