//! Runs the `csp` binary built with these tests.

use std::path::Path;
use std::process::Output;

/// Where `csp` finds the store: a `csp dev` data directory, or Postgres.
pub(crate) enum Location<'a> {
    DataDir(&'a Path),
    DatabaseUrl(&'a str),
}

/// Runs `csp args…` against `location` with a clean environment (no
/// inherited `DATABASE_URL`, `CSP_SECRET_KEY`, …) plus `env`.
pub(crate) async fn csp(location: Location<'_>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_csp"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    match location {
        Location::DataDir(dir) => cmd.arg("--data-dir").arg(dir),
        Location::DatabaseUrl(url) => cmd.env("DATABASE_URL", url),
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.kill_on_drop(true)
        .output()
        .await
        .expect("run the csp binary")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
