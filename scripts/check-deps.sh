#!/usr/bin/env bash
# The dependency graph against deny.toml: licences, banned crates and
# sources, always (offline: it reads Cargo.lock and the local registry
# cache); known vulnerabilities (RustSec advisories) when the advisory
# database can be fetched.
#
#   scripts/check-deps.sh                 licences, bans, sources; advisories if reachable
#   CSP_ADVISORIES=required scripts/check-deps.sh   fail when the database is unreachable
#   CSP_ADVISORIES=skip scripts/check-deps.sh       never try
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command -v cargo-deny >/dev/null 2>&1 || { echo "check-deps: cargo-deny is missing: scripts/setup.sh deny"; exit 1; }

cargo deny --log-level warn check licenses bans sources

db=https://github.com/rustsec/advisory-db
mode=${CSP_ADVISORIES:-auto}
case "$mode" in
  skip) echo "check-deps: advisories skipped (CSP_ADVISORIES=skip)"; exit 0 ;;
  auto|required) ;;
  *) echo "check-deps: CSP_ADVISORIES must be auto, required or skip, not '$mode'"; exit 2 ;;
esac
# A closed network (as on some CI machines) cannot fetch the database;
# that is reported, not failed, unless the caller requires it.
if timeout 15 git ls-remote --exit-code "$db" HEAD >/dev/null 2>&1; then
  cargo deny --log-level warn check advisories
elif [ "$mode" = required ]; then
  echo "check-deps: the advisory database ($db) is unreachable and CSP_ADVISORIES=required"; exit 1
else
  echo "check-deps: advisories NOT checked: the advisory database ($db) is unreachable from here"
fi
