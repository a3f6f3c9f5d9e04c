#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs every csp service in
# one process (`csp dev`). Open the printed URL and sign in as 'admin'.
# Extra arguments go to `csp dev` (see `csp dev --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh cli sandbox web plugins
# The `quickstart` profile (Cargo.toml) is the release build with less
# optimisation work where it buys nothing measurable: the same speed for a
# chat, a shorter first build (figures: docs/benchmarks.md#build-profiles).
bin="${CARGO_TARGET_DIR:-target}/quickstart/csp"
if [ ! -x "$bin" ]; then
  cat <<'EOF'
dev.sh: building csp for the first time: cargo compiles about 500 crates,
dev.sh: which takes about 6 minutes on 2 CPU cores (less with more cores).
dev.sh: Later starts rebuild only what changed and take seconds.
EOF
fi
start=$SECONDS
cargo build --profile quickstart -p csp-cli
if [ $((SECONDS - start)) -ge 60 ]; then
  echo "dev.sh: built in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
fi
# The example plugin (an MCP server from npm) shows on the Plugins page.
export CSP_PLUGINS_DIR="${CSP_PLUGINS_DIR:-examples/plugins}"
exec "$bin" dev "$@"
