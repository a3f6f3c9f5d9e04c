#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs every csp service in
# one process (`csp dev`). Open the printed URL and sign in as 'admin'.
# Extra arguments go to `csp dev` (see `csp dev --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh cli sandbox web plugins
cargo build --release -p csp-cli
# The example plugin (an MCP server from npm) shows on the Plugins page.
export CSP_PLUGINS_DIR="${CSP_PLUGINS_DIR:-examples/plugins}"
exec target/release/csp dev "$@"
