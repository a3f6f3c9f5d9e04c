#!/usr/bin/env bash
# Checks that the web app's generated wire types (web/src/generated/) are
# what the gateway's Rust wire types generate (services/gateway/src/dto.rs:
# REST request and response bodies, WebSocket frames, and the csp-domain
# types they carry; ts-rs behind the gateway's `ts` feature): regenerates
# every file into a temporary directory and diffs the whole directory, so a
# stale, missing or extra file fails. With --update, rewrites
# web/src/generated/.
#
#   scripts/check-generated.sh [--update]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

generate() {
  CSP_GENERATED_OUT="$1" cargo test --locked -q -p csp-gateway --features ts --lib \
    dto::generated:: >/dev/null
}

if [[ "${1:-}" == "--update" ]]; then
  generate "$root/web/src/generated"
  echo "web/src/generated/ updated"
  exit 0
fi

# The feature's code obeys the same lints as the rest.
cargo clippy --locked -q -p csp-gateway --all-targets --features ts -- -D warnings
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
generate "$tmp"
if ! diff -ru web/src/generated "$tmp"; then
  echo "web/src/generated/ is stale: run scripts/check-generated.sh --update" >&2
  exit 1
fi
