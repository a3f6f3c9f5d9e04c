#!/usr/bin/env bash
# Ticket enhancement, offline, end to end, against a running `csp dev`:
#
#   scripts/dev.sh                                    # or: csp dev (prints the admin password)
#   CSP_ADMIN_PASSWORD=<that password> scripts/demo-tickets.sh
#
# 1. starts `csp mock-ticketing`, a fake ServiceDesk Plus with 200 seeded
#    resolved tickets, and adds one new (open) ticket to it;
# 2. signs in as admin and creates tenant `demo-msp` pointing at the mock (on
#    a re-run: points the existing tenant at the new mock and rotates its
#    webhook secret);
# 3. uploads a knowledge-base article and an inventory host;
# 4. imports the resolved tickets (`csp tickets import`, into `csp dev`'s
#    database);
# 5. sends the new ticket's webhook, signed like ServiceDesk Plus would sign it:
#    X-ServiceDesk-Signature: sha256=HMAC-SHA256(webhook_secret, "<timestamp>.<body>");
# 6. waits for the job to complete and prints the note that arrived on the mock.
#
# With no model configured, `csp dev`'s offline demo model writes the note from
# the context it is given (similar ticket, article, host); with ANTHROPIC_API_KEY
# Claude does. Needs curl, openssl and python3.
#
# Settings (environment): CSP_URL (http://127.0.0.1:8080), CSP_ADMIN_USER
# (admin), CSP_ADMIN_PASSWORD (required), CSP_DATA_DIR (.csp/dev: the running
# csp dev's), CSP_BIN (the csp binary; default the quickstart or debug build),
# MOCK_ADDR (127.0.0.1:8090), TENANT_ID (demo-msp).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'demo-tickets: %s\n' "$*"; }
fail() { say "FAIL: $*" >&2; exit 1; }

csp_url="${CSP_URL:-http://127.0.0.1:8080}"
admin_user="${CSP_ADMIN_USER:-admin}"
admin_password="${CSP_ADMIN_PASSWORD:-}"
[ -n "$admin_password" ] || fail "set CSP_ADMIN_PASSWORD to the admin password csp dev printed at its first start (or chose)"
data_dir="${CSP_DATA_DIR:-.csp/dev}"
mock_addr="${MOCK_ADDR:-127.0.0.1:8090}"
mock_url="http://$mock_addr"
tenant="${TENANT_ID:-demo-msp}"
sdp_key="demo-technician-key"

for tool in curl openssl python3; do
  command -v "$tool" >/dev/null || fail "$tool is required"
done
bin="${CSP_BIN:-}"
if [ -z "$bin" ]; then
  for candidate in "${CARGO_TARGET_DIR:-target}/quickstart/csp" "${CARGO_TARGET_DIR:-target}/debug/csp"; do
    if [ -x "$candidate" ]; then bin="$candidate"; break; fi
  done
  [ -n "$bin" ] || bin="$(command -v csp || true)"
fi
[ -n "$bin" ] && [ -x "$bin" ] || fail "no csp binary: build it (cargo build -p csp-cli) or set CSP_BIN"

# `json FIELD` prints a field of the JSON on stdin (dotted path, list indexes).
json() {
  python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[int(key)] if isinstance(value, list) else value[key]
print(value if isinstance(value, str) else json.dumps(value))' "$1"
}

tmp="$(mktemp -d)"
mock_pid=""
cleanup() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# `api METHOD PATH [BODY]`: the gateway's REST API as the admin; prints the
# body, and leaves the status in $tmp/status.
api() {
  local method="$1" path="$2" body="${3:-}"
  local args=(-sS -o "$tmp/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
  if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
  curl "${args[@]}" "$csp_url$path" >"$tmp/status" || fail "$method $path: the gateway at $csp_url does not answer"
  cat "$tmp/body"
}
status() { cat "$tmp/status"; }
expect() {
  local want="$1" what="$2"
  [ "$(status)" = "$want" ] || fail "$what answered $(status), expected $want: $(cat "$tmp/body")"
}

curl -fsS -o /dev/null "$csp_url/api/v1/health/live" \
  || fail "no csp at $csp_url: start it first (scripts/dev.sh or csp dev), or set CSP_URL"

# --- 1. The fake ServiceDesk Plus -------------------------------------------------------

say "starting csp mock-ticketing on $mock_url (200 resolved tickets)"
"$bin" mock-ticketing --addr "$mock_addr" --authtoken "$sdp_key" --seed-resolved 200 \
  >"$tmp/mock.log" 2>&1 &
mock_pid=$!
for _ in $(seq 1 50); do
  curl -fsS -o /dev/null "$mock_url/_mock/stats" 2>/dev/null && break
  kill -0 "$mock_pid" 2>/dev/null || fail "csp mock-ticketing stopped: $(cat "$tmp/mock.log")"
  sleep 0.1
done
curl -fsS -o /dev/null "$mock_url/_mock/stats" || fail "csp mock-ticketing does not answer on $mock_url"

# The new ticket the webhook announces: it must exist for the note to be posted.
ticket_id="$(( 900000 + $(date +%s) % 100000 ))"
subject="VPN keeps disconnecting"
description="Since this morning the VPN client of user jdoe disconnects every few minutes. The VPN gateway at 10.0.0.1 logs certificate errors."
now_ms="$(( $(date +%s) * 1000 ))"
python3 - "$ticket_id" "$subject" "$description" "$now_ms" >"$tmp/request.json" <<'EOF'
import json, sys
ticket_id, subject, description, now_ms = sys.argv[1:]
print(json.dumps([{"id": int(ticket_id), "subject": subject, "description": f"<div>{description}</div>",
                   "status": "Open", "priority": "High", "created_ms": int(now_ms)}]))
EOF
curl -fsS -o /dev/null -H 'Content-Type: application/json' --data-binary "@$tmp/request.json" \
  "$mock_url/_mock/requests" || fail "could not add the new ticket to the mock"
say "ticket $ticket_id is open on the mock: \"$subject\""

# --- 2. Admin login and the tenant -----------------------------------------------------

login="$(python3 -c 'import json, sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2]}))' \
  "$admin_user" "$admin_password")"
token="$(curl -sS -X POST -H 'Content-Type: application/json' --data-binary "$login" \
  "$csp_url/api/v1/auth/login" | json token 2>/dev/null)" \
  || fail "cannot sign in as $admin_user at $csp_url (wrong CSP_ADMIN_PASSWORD?)"
say "signed in as $admin_user"

tenant_body="$(python3 -c 'import json, sys
print(json.dumps({"tenant_id": sys.argv[1], "name": "Demo MSP", "tool_type": "servicedesk_plus",
    "servicedesk_url": sys.argv[2], "api_key": sys.argv[3],
    "enhancement_preferences": {"sources": ["ticket_history", "kb", "ip_inventory"],
                                "note_format": "html", "max_words": 500, "mask_pii": False}}))' \
  "$tenant" "$mock_url" "$sdp_key")"
api POST /api/v1/tenants "$tenant_body" >/dev/null
case "$(status)" in
  201)
    secret="$(json webhook_secret <"$tmp/body")"
    webhook_url="$(json webhook_url <"$tmp/body")"
    say "created tenant $tenant; its webhook: $webhook_url"
    ;;
  409)
    patch="$(python3 -c 'import json, sys; print(json.dumps({"servicedesk_url": sys.argv[1], "api_key": sys.argv[2]}))' \
      "$mock_url" "$sdp_key")"
    api PATCH "/api/v1/tenants/$tenant" "$patch" >/dev/null
    expect 200 "PATCH /api/v1/tenants/$tenant"
    [ "$(json is_active <"$tmp/body")" = "true" ] || fail "tenant $tenant was deleted (inactive): set TENANT_ID to another id"
    webhook_url="$(json webhook_url <"$tmp/body")"
    api POST "/api/v1/tenants/$tenant/webhook-secret" >/dev/null
    expect 200 "POST /api/v1/tenants/$tenant/webhook-secret"
    secret="$(json webhook_secret <"$tmp/body")"
    say "tenant $tenant exists: pointed it at this mock and rotated its webhook secret"
    ;;
  *) fail "POST /api/v1/tenants answered $(status): $(cat "$tmp/body")" ;;
esac

# --- 3. Context: a knowledge-base article and an inventory host ------------------------------

api POST "/api/v1/tenants/$tenant/kb-articles" '[{"title": "Renewing VPN client certificates",
  "summary": "An expired VPN client certificate makes the tunnel drop every few minutes; renew it and reinstall the VPN profile.",
  "url": "https://kb.demo-msp.example/vpn-client-certificates",
  "body": "Check the certificate expiry in the VPN client, request a new certificate from the CA, reinstall the profile."}]' >/dev/null
expect 200 "POST /api/v1/tenants/$tenant/kb-articles"
api POST "/api/v1/tenants/$tenant/inventory" '[{"ip": "10.0.0.1", "hostname": "vpn-gw-01",
  "role": "VPN gateway", "client": "Demo MSP", "location": "HQ, rack 2"}]' >/dev/null
expect 200 "POST /api/v1/tenants/$tenant/inventory"
say "uploaded a knowledge-base article and the host behind 10.0.0.1"

# --- 4. Import the resolved tickets -------------------------------------------------------

say "importing resolved tickets: $bin tickets import --tenant-id $tenant --days 90"
env -u DATABASE_URL "$bin" tickets import --tenant-id "$tenant" --days 90 --data-dir "$data_dir" \
  || fail "the import failed (is $data_dir the data directory of the running csp dev? set CSP_DATA_DIR)"

# --- 5. The signed webhook ----------------------------------------------------------------------

body="$(python3 -c 'import json, sys
print(json.dumps({"ticket_id": sys.argv[1], "subject": sys.argv[2], "description": sys.argv[3], "priority": "High"},
                 separators=(",", ":")))' "$ticket_id" "$subject" "$description")"
ts="$(date +%s)"
signature="$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //')"
curl -sS -o "$tmp/body" -w '%{http_code}' -X POST "$csp_url/webhook/servicedesk_plus/$tenant" \
  -H 'Content-Type: application/json' \
  -H "X-ServiceDesk-Timestamp: $ts" \
  -H "X-ServiceDesk-Signature: sha256=$signature" \
  --data-binary "$body" >"$tmp/status"
expect 202 "the webhook"
job_id="$(json job_id <"$tmp/body")"
say "webhook accepted (202): job $job_id"

# --- 6. Wait for the note -----------------------------------------------------------------------

state=""
for _ in $(seq 1 120); do
  api GET "/api/v1/enhancements/$job_id" >/dev/null
  expect 200 "GET /api/v1/enhancements/$job_id"
  state="$(json status <"$tmp/body")"
  case "$state" in completed|failed) break ;; esac
  sleep 0.5
done
case "$state" in
  completed) say "job $job_id completed in $(json processing_time_ms <"$tmp/body") ms" ;;
  failed) fail "job $job_id failed: $(json error_message <"$tmp/body")" ;;
  *) fail "job $job_id still $state after 60 s" ;;
esac

curl -fsS "$mock_url/_mock/notes?request_id=$ticket_id" >"$tmp/notes.json" \
  || fail "cannot read the mock's notes"
count="$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/notes.json")"
[ "$count" = 1 ] || fail "expected one note on ticket $ticket_id, found $count"
say "the internal note on ticket $ticket_id (show_to_requester: $(json 0.show_to_requester <"$tmp/notes.json")):"
echo
json 0.description <"$tmp/notes.json"
echo
say "done. The job: $csp_url/api/v1/enhancements/$job_id (operator login)"
