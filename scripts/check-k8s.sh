#!/usr/bin/env bash
# Validates the Kubernetes manifests in k8s/ offline, without a cluster.
#
#   scripts/check-k8s.sh
#
# 1. yamllint (PyPI, relaxed rules) over every file in k8s/;
# 2. renders k8s/ with scripts/k8s_manifests.py (resources, namespace,
#    labels, images: the kustomize features k8s/ uses) and, when kubectl >= 1.24 or
#    kustomize >= 4.5 is installed, with the real kustomize too, and fails if
#    the two renderings differ;
# 3. kubernetes-validate (PyPI) --strict against the Kubernetes 1.30 schemas,
#    over the rendering and over k8s/secret.example.yaml (not rendered);
# 4. csp's own checks (scripts/k8s_manifests.py check): shutdown arithmetic,
#    session-pool memory sizing, probe paths and ports, Secret keys;
# 5. the tenant overlays k8s/tenants/*/ (written by `csp tenants k8s`; a test
#    of crates/cli keeps the committed examples what it writes): each rendered
#    (and compared with the real kustomize) and validated like k8s/, then
#    checked together with the platform's rendering (k8s_manifests.py
#    check-tenants): no tenant reaches or is reached from another's
#    namespace, each reaches the shared backends and they admit it, its
#    worker takes only its tenant's jobs, quota, limits and RBAC.
#
# The Python tools go into a virtualenv under ~/.cache (or $XDG_CACHE_HOME),
# installed once from PyPI with pinned versions.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'check-k8s: %s\n' "$*"; }

k8s_version=1.30.0
pins=(kubernetes-validate==1.37.0 yamllint==1.38.0 PyYAML==6.0.3)

venv="${XDG_CACHE_HOME:-$HOME/.cache}/csp/k8s-venv"
stamp="$venv/.csp-pins"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  command -v python3 >/dev/null || { say "missing python3 (apt-get install python3 python3-venv)"; exit 1; }
  say "installing ${pins[*]} into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || { say "cannot create a virtualenv (apt-get install python3-venv)"; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  printf '%s' "${pins[*]}" >"$stamp"
fi
py="$venv/bin/python"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

say "yamllint k8s/"
"$venv/bin/yamllint" --format parsable \
  -d '{extends: relaxed, rules: {line-length: {max: 120}}}' k8s/

say "rendering k8s/ (scripts/k8s_manifests.py)"
"$py" scripts/k8s_manifests.py render k8s >"$out/python.yaml"
rendered="$out/python.yaml"

# The kustomize embedded in kubectl, or a standalone one; k8s/ uses `labels`,
# which needs kustomize 4.5 (kubectl 1.24).
kustomize_version() {
  "$py" -c 'import json,re,sys
v = json.load(sys.stdin).get("kustomizeVersion", "")
m = re.match(r"v(\d+)\.(\d+)", v)
print(v if m and (int(m[1]), int(m[2])) >= (4, 5) else "")'
}
real=""
if command -v kubectl >/dev/null 2>&1; then
  v="$(kubectl version --client -o json 2>/dev/null | kustomize_version || true)"
  [ -n "$v" ] && real="kubectl kustomize ($v)" && kubectl kustomize k8s >"$out/kustomize.yaml"
fi
if [ -z "$real" ] && command -v kustomize >/dev/null 2>&1; then
  real="kustomize build ($(kustomize version 2>/dev/null | head -1))"
  kustomize build k8s >"$out/kustomize.yaml"
fi
if [ -n "$real" ]; then
  say "rendering k8s/ with $real and comparing"
  "$py" scripts/k8s_manifests.py same "$out/python.yaml" "$out/kustomize.yaml"
  rendered="$out/kustomize.yaml"
else
  say "no kubectl >= 1.24 or kustomize >= 4.5: checked the Python rendering only"
fi

say "kubernetes-validate --strict -k $k8s_version"
"$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$rendered" k8s/secret.example.yaml

say "csp checks"
"$py" scripts/k8s_manifests.py check "$rendered" "$root"

tenants=()
for dir in k8s/tenants/*/; do
  [ -f "$dir/kustomization.yaml" ] || continue
  name="$(basename "$dir")"
  say "tenant overlay $dir"
  "$py" scripts/k8s_manifests.py render "$dir" >"$out/tenant-$name.yaml"
  if [ -n "$real" ]; then
    case "$real" in
      kubectl*) kubectl kustomize "$dir" >"$out/tenant-$name.kustomize.yaml" ;;
      *) kustomize build "$dir" >"$out/tenant-$name.kustomize.yaml" ;;
    esac
    "$py" scripts/k8s_manifests.py same "$out/tenant-$name.yaml" "$out/tenant-$name.kustomize.yaml"
    mv "$out/tenant-$name.kustomize.yaml" "$out/tenant-$name.yaml"
  fi
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$out/tenant-$name.yaml"
  tenants+=("$out/tenant-$name.yaml")
done
[ "${#tenants[@]}" -ge 2 ] || { say "expected two tenant overlays or more in k8s/tenants/"; exit 1; }
say "tenant isolation (${#tenants[@]} overlays)"
"$py" scripts/k8s_manifests.py check-tenants "$rendered" "${tenants[@]}"
say "ok"
