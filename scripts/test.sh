#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests against
# real PostgreSQL/Redis/NATS, end-to-end tests with the real Claude Code CLI,
# the web app's unit tests and the browser test in real Chromium.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh cli sandbox web browser services python plugins deny

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# No two modules of a crate import each other (ARCHITECTURE.md).
python3 scripts/check_module_cycles.py
# The dependency graph: licences, bans, sources (deny.toml); advisories
# when the RustSec database is reachable.
scripts/check-deps.sh
# The web app's wire types, generated from the gateway's Rust types.
scripts/check-generated.sh
# Deployment artifacts, checked offline: Prometheus/Alertmanager configs,
# alert unit tests and the dashboard; docker-compose; the Kubernetes manifests.
scripts/check-monitoring.sh
scripts/check-compose.sh
scripts/check-k8s.sh
# The end-to-end tests drive this binary.
cargo build --locked -p csp-cli
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
(cd web && npm test --silent)
(cd tests/browser && npm test --silent)
