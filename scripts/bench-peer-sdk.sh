#!/usr/bin/env bash
# The peer figure of session start and first token: the official Python
# Claude Agent SDK (PyPI `claude-agent-sdk`) driving the Claude Code CLI csp
# pins (tools/claude-cli) against the scripted model csp's own first-token
# bench uses (`csp mock-llm`). Makes its own venv under target/, starts the
# model, runs tests/e2e/peers/sdk_first_token.py and prints its table. csp's
# side of the comparison is `csp-bench first-token` and `csp-bench ready`
# (docs/benchmarks.md, "Peers (issue 17)").
#
#   scripts/bench-peer-sdk.sh [--runs N]          (default 20)
#
# CSP_BIN picks the csp binary (default: target/release/csp, else
# target/debug/csp); CLAUDE_AGENT_SDK_VERSION pins the SDK (default: the
# newest on PyPI).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { echo "bench-peer-sdk: $*" >&2; }

cli="$root/tools/claude-cli/node_modules/.bin/claude"
[[ -x "$cli" ]] || { say "no Claude Code CLI at $cli: run scripts/setup.sh cli"; exit 1; }
csp="${CSP_BIN:-}"
if [[ -z "$csp" ]]; then
  for c in target/release/csp target/debug/csp; do
    [[ -x "$c" ]] && { csp="$root/$c"; break; }
  done
fi
[[ -n "$csp" && -x "$csp" ]] || { say "no csp binary: cargo build -p csp-cli (or set CSP_BIN)"; exit 1; }

venv="$root/target/peer-sdk-venv"
if [[ ! -x "$venv/bin/python" ]]; then
  say "making $venv"
  python3 -m venv "$venv"
fi
spec="claude-agent-sdk${CLAUDE_AGENT_SDK_VERSION:+==$CLAUDE_AGENT_SDK_VERSION}"
"$venv/bin/pip" install -q --disable-pip-version-check "$spec"

# The scripted model on a port of its own; its URL from its banner.
log="$(mktemp)"
"$csp" mock-llm --listen 127.0.0.1:0 >"$log" 2>&1 &
mock=$!
trap 'kill "$mock" 2>/dev/null; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$log" | head -1)"
  [[ -n "$url" ]] && break
  sleep 0.1
done
[[ -n "$url" ]] || { say "csp mock-llm did not start:"; cat "$log" >&2; exit 1; }
say "scripted model at $url, CLI $("$cli" --version | cut -d' ' -f1)"

"$venv/bin/python" tests/e2e/peers/sdk_first_token.py --cli "$cli" --base-url "$url" "$@"
