#!/usr/bin/env bash
# Checks deploy/monitoring: the Prometheus config, the alert rules and their
# unit tests, the Alertmanager routing and channels, the runbook links and
# the Grafana dashboards against the metrics the code records. Installs
# promtool, amtool and PyYAML from Debian (packages prometheus,
# prometheus-alertmanager, python3-yaml) when missing. Exits non-zero on any
# failure.
#
#   scripts/check-monitoring.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mon=deploy/monitoring

say() { printf 'check-monitoring: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    fail "need root to run: $*"; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v promtool >/dev/null || { say "installing promtool (Debian prometheus)"; apt_install prometheus; }
command -v amtool >/dev/null || { say "installing amtool (Debian prometheus-alertmanager)"; apt_install prometheus-alertmanager; }
command -v python3 >/dev/null || { say "installing python3 (Debian)"; apt_install python3; }
python3 -c 'import yaml' 2>/dev/null || { say "installing PyYAML (Debian python3-yaml)"; apt_install python3-yaml; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The scrape config reads the gateway's token from /etc/prometheus, and
# promtool insists that the file exists: check a copy that points at a
# throwaway token instead.
token=/etc/prometheus/csp-metrics-token
cp "$mon/prometheus.yml" "$mon/alerts.yml" "$tmp/"
grep -q "credentials_file: $token\$" "$tmp/prometheus.yml" || fail "prometheus.yml no longer reads $token"
printf 'check-token' >"$tmp/csp-metrics-token"
sed -i "s#credentials_file: $token\$#credentials_file: $tmp/csp-metrics-token#" "$tmp/prometheus.yml"
say "promtool check config"
promtool check config "$tmp/prometheus.yml"

say "promtool check rules"
promtool check rules "$mon/alerts.yml"

say "promtool test rules"
(cd "$mon" && promtool test rules alerts.test.yml)

# Every alert: a severity Alertmanager routes, a runbook that exists, and at
# least one unit test where it fires and one where it must stay quiet.
say "alert labels, runbooks and test coverage"
python3 - "$mon/alerts.yml" "$mon/alerts.test.yml" <<'EOF'
import pathlib, re, sys
rules = pathlib.Path(sys.argv[1]).read_text()
tests = pathlib.Path(sys.argv[2]).read_text()
errors = []
blocks = re.split(r"\n\s*- alert: ", rules)[1:]
if not blocks:
    errors.append("no alert rules found")
names = []
for b in blocks:
    name = b.split("\n", 1)[0].strip()
    names.append(name)
    sev = re.search(r"\n\s*severity:\s*(\S+)", b)
    if not sev or sev.group(1) not in ("critical", "warning"):
        errors.append(f"{name}: severity must be critical or warning")
    rb = re.search(r"\n\s*runbook_url:\s*(\S+)", b)
    if not rb:
        errors.append(f"{name}: no runbook_url")
    elif not rb.group(1).startswith("docs/runbooks/") or not pathlib.Path(rb.group(1)).is_file():
        errors.append(f"{name}: runbook {rb.group(1)} is not a file under docs/runbooks/")
firing, quiet = set(), set()
current = None
for line in tests.splitlines():
    m = re.match(r"\s*alertname:\s*(\S+)", line)
    if m:
        current = m.group(1)
        continue
    m = re.match(r"\s*exp_alerts:\s*(.*)$", line)
    if m and current:
        (quiet if m.group(1).strip() == "[]" else firing).add(current)
        current = None
for n in names:
    if n not in firing:
        errors.append(f"{n}: no unit test where it fires")
    if n not in quiet:
        errors.append(f"{n}: no unit test where it stays quiet")
for e in errors:
    print("error:", e)
print(f"{len(names)} alerts: {', '.join(names)}")
sys.exit(1 if errors else 0)
EOF

say "amtool check-config"
amtool check-config "$mon/alertmanager.yml"
for case in critical warning; do
  amtool config routes test --config.file="$mon/alertmanager.yml" --verify.receivers="$case" \
    severity="$case" alertname=Check job=gateway 2>/dev/null >/dev/null \
    || fail "severity=$case is not routed to the $case receiver"
done

# The channels of each severity (critical: Slack and PagerDuty, warning:
# Slack, both with e-mail as the secondary copy), resolution notices on
# every channel, grouping by tenant, and no secret written into the file.
say "alertmanager channels"
python3 - "$mon/alertmanager.yml" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
errors = []
receivers = {r["name"]: r for r in cfg.get("receivers", [])}
want = {"critical": ("slack_configs", "pagerduty_configs", "email_configs"),
        "warning": ("slack_configs", "email_configs")}
for name, kinds in want.items():
    r = receivers.get(name)
    if r is None:
        errors.append(f"no receiver {name}")
        continue
    for kind in kinds:
        if not r.get(kind):
            errors.append(f"receiver {name} has no {kind}")
    if name == "warning" and r.get("pagerduty_configs"):
        errors.append("receiver warning pages (pagerduty_configs): warnings go to Slack only")
secret_keys = {"api_url", "routing_key", "service_key", "auth_password", "auth_secret", "api_key", "bot_token"}
for r in cfg.get("receivers", []):
    for kind, configs in r.items():
        if not kind.endswith("_configs"):
            continue
        for c in configs:
            if c.get("send_resolved") is not True:
                errors.append(f"receiver {r['name']}: a {kind} entry lacks send_resolved: true")
            for k in secret_keys & c.keys():
                errors.append(f"receiver {r['name']}: {kind} has an inline {k}; use {k}_file")
for k in ("slack_api_url", "smtp_auth_password", "pagerduty_url_secret"):
    if k in cfg.get("global", {}):
        errors.append(f"global {k} is inline; use {k}_file")
route = cfg.get("route", {})
if "tenant_id" not in route.get("group_by", []):
    errors.append("the root route does not group by tenant_id")
if route.get("group_interval") != "5m":
    errors.append("the root route's group_interval is not 5m")
for e in errors:
    print("error:", e)
sys.exit(1 if errors else 0)
EOF

say "dashboard"
python3 scripts/check_dashboard.py --emit-rules "$tmp/dashboard-rules.yml"
say "dashboard queries parse (promtool check rules)"
promtool check rules "$tmp/dashboard-rules.yml"

say "ok"
