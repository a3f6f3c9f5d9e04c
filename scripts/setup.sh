#!/usr/bin/env bash
# Installs what csp needs to run and to be tested, idempotently.
#
#   scripts/setup.sh [cli] [sandbox] [web] [browser] [services] [python] [plugins] [deny]   (no argument: all)
#
#   cli       the pinned Claude Code CLI (npm, tools/claude-cli)
#   sandbox   bubblewrap and socat (Debian), which confine every agent
#   web       the web app's packages, and its build in web/dist
#   browser   Debian's Chromium and playwright-core, for the browser test
#   services  PostgreSQL, Redis and NATS JetStream on their standard ports
#   python    Python's cryptography package (PyPI), for the Fernet interop test
#   plugins   the example plugin's MCP server (npm, examples/plugins/everything)
#   deny      cargo-deny (crates.io), which checks the dependency graph (deny.toml)
#
# Everything comes from the package registries (npm, Debian, PyPI, crates.io); nothing is
# downloaded from elsewhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'setup: %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || { say "missing '$1': $2"; exit 1; }
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; exit 1; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# npm ci only when package-lock.json changed since the last install.
npm_install() {
  local dir=$1 stamp="$1/node_modules/.csp-lock-stamp"
  if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then return; fi
  say "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
}

setup_cli() {
  need node "install Node.js 20+ (apt-get install nodejs npm)"
  need npm "install npm (apt-get install npm)"
  npm_install tools/claude-cli
  local cli=tools/claude-cli/node_modules/.bin/claude
  "$cli" --version >/dev/null || { say "the Claude Code CLI at $cli does not run"; exit 1; }
  say "Claude Code CLI $("$cli" --version | cut -d' ' -f1) ready"
}

# Every agent runs in a bubblewrap sandbox; socat forwards csp's model and
# egress proxies into its network namespace (docs/operations.md).
setup_sandbox() {
  local missing=()
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v socat >/dev/null 2>&1 || missing+=(socat)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (Debian packages)"
    apt_install "${missing[@]}"
  fi
  say "agent sandbox: $(bwrap --version), $(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/socat \1/p' | head -n1)"
}

setup_web() {
  need npm "install npm (apt-get install npm)"
  npm_install web
  # Rebuild when any source is newer than the bundle.
  if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/build.mjs web/package-lock.json -newer web/dist/index.html -print -quit)" ]; then
    say "building the web app"
    (cd web && npm run --silent build)
  fi
}

setup_browser() {
  if ! command -v chromium >/dev/null 2>&1; then
    say "installing Chromium (Debian package)"
    apt_install chromium
  fi
  npm_install tests/browser
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done
  say "nothing listens on 127.0.0.1:$1"; return 1
}

setup_services() {
  if ! port_open 5432; then
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    say "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -n1)" main start || true
    wait_port 5432
  fi
  if ! port_open 6379; then
    command -v redis-server >/dev/null || apt_install redis-server
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_port 6379
  fi
  if ! port_open 4222; then
    command -v nats-server >/dev/null || apt_install nats-server
    say "starting NATS with JetStream"
    mkdir -p /tmp/csp-nats
    nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/csp-nats >/tmp/csp-nats/server.log 2>&1 &
    wait_port 4222
  fi
  say "PostgreSQL, Redis and NATS are up"
}

# csp-secrets' tokens must open with Python's cryptography.fernet and the
# other way round; its interop test runs python3 and fails without this.
setup_plugins() {
  need npm "install npm (apt-get install npm)"
  npm_install examples/plugins/everything
  say "example plugin 'everything' ready (CSP_PLUGINS_DIR=examples/plugins)"
}

# The pinned cargo-deny, built from crates.io (about 2 minutes on 2 cores,
# once per machine: it lands in ~/.cargo/bin).
CARGO_DENY_VERSION=0.20.2
setup_deny() {
  need cargo "install Rust (rustup)"
  if [ "$(cargo-deny --version 2>/dev/null | cut -d' ' -f2)" != "$CARGO_DENY_VERSION" ]; then
    say "installing cargo-deny $CARGO_DENY_VERSION (crates.io)"
    cargo install --quiet --locked cargo-deny --version "$CARGO_DENY_VERSION"
  fi
  say "$(cargo-deny --version) ready"
}

setup_python() {
  need python3 "install Python 3 (apt-get install python3 python3-pip)"
  if ! python3 -c 'import cryptography' >/dev/null 2>&1; then
    say "installing Python's cryptography package"
    python3 -m pip install --quiet 'cryptography==48.0.0'
  fi
  say "Python cryptography $(python3 -c 'import cryptography; print(cryptography.__version__)') ready"
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(cli sandbox web browser services python plugins deny)
for p in "${parts[@]}"; do
  case "$p" in
    cli) setup_cli ;;
    sandbox) setup_sandbox ;;
    web) setup_web ;;
    browser) setup_browser ;;
    services) setup_services ;;
    python) setup_python ;;
    plugins) setup_plugins ;;
    deny) setup_deny ;;
    *) say "unknown part '$p' (cli, sandbox, web, browser, services, python, plugins, deny)"; exit 2 ;;
  esac
done
