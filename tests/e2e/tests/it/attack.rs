//! The security suite (issue 17 item 1): a running csp (multi-service with
//! ticket enhancement, then `csp dev`) attacked through its public surface only, every
//! route of the gateway's table (`csp_gateway::table`) walked by every
//! attack class that applies to it, so a route added later is attacked
//! without anyone remembering to, and a route this suite has no inputs for
//! fails it. Each answer is checked against the secure outcome and written
//! to one report (`target/security-report.md`, or `CSP_SECURITY_REPORT`),
//! a table per attack class; the suite fails after writing it when any row
//! did not hold. The rules asserted are in `docs/security-testing.md`.
//!
//! One test function with sections sharing one instance per mode: the
//! sections' fixtures (tenants, users, sessions, jobs) are what the later
//! ones attack, and one report file needs one writer.

use crate::governance::{PASSWORD, call, new_user, ready, unique};
use crate::tickets::{Answer, Tickets, ZENDESK_SECRET, new_ticket_body, now_s, sdp, start};
use base64::Engine;
use csp_auth::Access;
use csp_e2e::{Csp, JWT_SECRET, Mode, Ws};
use csp_gateway::Route;
use reqwest::Method;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, Message, protocol::frame};

// ------------------------------------------------------------ the report

/// One attempt: what was sent where, what had to happen, what did.
struct Row {
    route: String,
    payload: String,
    expected: String,
    observed: String,
    held: bool,
}

/// One attack class: its rule and its attempts.
struct Section {
    title: String,
    rule: String,
    rows: Vec<Row>,
}

#[derive(Default)]
struct Report {
    sections: Vec<Section>,
    /// Which stored field holds which XSS payload (for the browser check).
    seeded: Vec<(String, String)>,
    /// The instance attacked now, named in each section's title.
    mode: &'static str,
}

impl Report {
    fn section(&mut self, title: &str, rule: impl Into<String>) {
        self.sections.push(Section {
            title: format!("{title} ({})", self.mode),
            rule: rule.into(),
            rows: Vec::new(),
        });
    }

    /// Records one attempt in the current section.
    fn row(
        &mut self,
        route: impl Into<String>,
        payload: impl Into<String>,
        expected: impl Into<String>,
        observed: impl Into<String>,
        held: bool,
    ) {
        self.sections
            .last_mut()
            .expect("a section first")
            .rows
            .push(Row {
                route: route.into(),
                payload: payload.into(),
                expected: expected.into(),
                observed: observed.into(),
                held,
            });
    }

    fn failures(&self) -> Vec<String> {
        self.sections
            .iter()
            .flat_map(|s| {
                s.rows.iter().filter(|r| !r.held).map(move |r| {
                    format!(
                        "[{}] {} / {}: expected {}, observed {}",
                        s.title, r.route, r.payload, r.expected, r.observed
                    )
                })
            })
            .collect()
    }

    fn markdown(&self) -> String {
        let cell = |s: &str| {
            let s: String = s.chars().take(120).collect();
            s.replace('|', "\\|").replace(['\n', '\r'], " ")
        };
        let mut md = String::from(
            "# csp security report\n\nWritten by `cargo nextest run -p csp-e2e -E 'test(attack)'` \
             (`tests/e2e/tests/it/attack.rs`); what it asserts is in `docs/security-testing.md`.\n\n",
        );
        let total: usize = self.sections.iter().map(|s| s.rows.len()).sum();
        let failed = self.failures().len();
        let _ = writeln!(md, "{total} attempts, {failed} did not hold.\n");
        for s in &self.sections {
            let held = s.rows.iter().filter(|r| r.held).count();
            let _ = writeln!(
                md,
                "## {}\n\n{}\n\n{held} of {} held.\n",
                s.title,
                s.rule,
                s.rows.len()
            );
            md.push_str(
                "| route | payload | expected | observed | held |\n|---|---|---|---|---|\n",
            );
            for r in &s.rows {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    cell(&r.route),
                    cell(&r.payload),
                    cell(&r.expected),
                    cell(&r.observed),
                    if r.held { "yes" } else { "**NO**" }
                );
            }
            md.push('\n');
        }
        md.push_str("## Stored XSS payloads (left in place for the browser check)\n\n| field | payload |\n|---|---|\n");
        for (field, payload) in &self.seeded {
            let _ = writeln!(md, "| {} | `{}` |", cell(field), cell(payload));
        }
        md
    }

    fn path() -> PathBuf {
        std::env::var_os("CSP_SECURITY_REPORT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/security-report.md")
            })
    }

    fn write(&self) -> PathBuf {
        let path = Self::path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("report directory");
        }
        std::fs::write(&path, self.markdown()).expect("report written");
        path
    }
}

// ------------------------------------------------------------ payloads

const SQLI: &[&str] = &[
    "'; DROP TABLE users;--",
    "' OR '1'='1",
    "1; SELECT pg_sleep(0)--",
    "\" OR \"\"=\"",
    "admin'--",
    "') UNION SELECT NULL,NULL--",
];

const XSS: &[&str] = &[
    "<img src=x onerror=alert(1)>",
    "<script>alert(document.cookie)</script>",
    "javascript:alert(1)",
    "\"><svg onload=alert(1)>",
];

fn injections() -> impl Iterator<Item = &'static str> {
    SQLI.iter().chain(XSS).copied()
}

/// Path parameters an attacker tries (already percent-encoded for the URL).
fn traversals() -> Vec<(&'static str, String)> {
    vec![
        ("encoded ../", "..%2F..%2F..%2Fetc%2Fpasswd".into()),
        ("%2e%2e", "%2e%2e%2f%2e%2e%2fCargo.toml".into()),
        ("backslashes", "..%5C..%5CCargo.toml".into()),
        ("NUL", "acme%00.json".into()),
        ("8 KiB id", "a".repeat(8 * 1024)),
        ("unicode", "%E2%80%AEt%C3%A9st%F0%9F%98%80".into()),
        ("invalid UTF-8", "%FF%FE%00".into()),
    ]
}

/// Whether a body shows a file of the machine or the checkout.
fn leaks_a_file(body: &str) -> bool {
    body.contains("root:x:0:0") || body.contains("[workspace]") || body.contains("[package]")
}

// ------------------------------------------------------------ HTTP

#[derive(Clone, Copy)]
enum Auth<'a> {
    Anonymous,
    Bearer(&'a str),
    Cookie(&'a str),
}

enum Payload {
    Empty,
    Json(Value),
    Raw {
        content_type: Option<&'static str>,
        bytes: Vec<u8>,
    },
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn server_error(&self) -> bool {
        self.status >= 500
    }

    fn client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }

    fn observed(&self) -> String {
        match self.code().as_str() {
            "" => self.status.to_string(),
            code => format!("{} {code}", self.status),
        }
    }
}

/// A fresh client address for each login the suite makes on purpose
/// (`CSP_TRUST_FORWARDED_FOR`), so only the brute-force section meets the
/// per-address throttle.
fn next_address() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "10.{}.{}.{}",
        100 + (n >> 16) % 100,
        (n >> 8) & 255,
        n & 255
    )
}

async fn send(
    csp: &Csp,
    method: &Method,
    path: &str,
    auth: Auth<'_>,
    payload: Payload,
    headers: &[(&str, String)],
) -> Reply {
    let mut req = csp
        .http()
        .request(method.clone(), format!("{}{path}", csp.base));
    match auth {
        Auth::Anonymous => {}
        Auth::Bearer(t) => req = req.bearer_auth(t),
        Auth::Cookie(t) => req = req.header("cookie", format!("csp_token={t}")),
    }
    if path.starts_with("/api/v1/auth/login")
        && !headers.iter().any(|(k, _)| *k == "x-forwarded-for")
    {
        req = req.header("x-forwarded-for", next_address());
    }
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req = match payload {
        Payload::Empty => req,
        Payload::Json(v) => req.json(&v),
        Payload::Raw {
            content_type,
            bytes,
        } => {
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            req.body(bytes)
        }
    };
    let resp = req.send().await.expect("csp answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        text,
    }
}

/// One request written byte for byte on a fresh connection (what reqwest
/// would normalise or refuse: dot segments, CR/LF in headers); the
/// response's head and body as text.
async fn raw(csp: &Csp, request: &[u8]) -> (u16, String, String) {
    let addr = csp.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn get_request(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n")
        .into_bytes()
}

fn upgrade_status(e: &tungstenite::Error) -> Option<u16> {
    match e {
        tungstenite::Error::Http(resp) => Some(resp.status().as_u16()),
        _ => None,
    }
}

// ------------------------------------------------------------ fixture

/// The objects the routes are called on.
struct Ids {
    tenant: String,
    user: String,
    job: String,
    worker: String,
    session: String,
    plugin: &'static str,
    feedback_sig: String,
}

/// What one route is called with: its path with every parameter filled,
/// its valid body (`None`: takes none), the query parameters it reads.
struct Inputs {
    params: Vec<(&'static str, String)>,
    body: Option<Value>,
    query: &'static [&'static str],
}

impl Inputs {
    fn path(&self, template: &str) -> String {
        self.params
            .iter()
            .fold(template.to_owned(), |p, (name, value)| {
                p.replace(&format!("{{{name}}}"), value)
            })
    }

    /// The path with parameter `name` replaced by `value`.
    fn path_with(&self, template: &str, name: &str, value: &str) -> String {
        self.params.iter().fold(template.to_owned(), |p, (n, v)| {
            p.replace(&format!("{{{n}}}"), if *n == name { value } else { v })
        })
    }
}

/// The inputs of each route of the table. `None`: a route the suite does
/// not know, which fails it: a new route needs its row here.
fn inputs(route: &Route, ids: &Ids, sdp_url: &str) -> Option<Inputs> {
    let tenant = || ("tenant_id", ids.tenant.clone());
    let p = |params: Vec<(&'static str, String)>, body: Option<Value>, query| {
        Some(Inputs {
            params,
            body,
            query,
        })
    };
    let history = &["tenant_id", "status", "q", "from", "to", "page"][..];
    match (route.method.as_str(), route.path) {
        ("POST", "/api/v1/auth/login") => p(
            vec![],
            Some(json!({"username": "nobody", "password": "wrong-password"})),
            &[],
        ),
        ("POST", "/api/v1/auth/logout") => p(vec![], None, &[]),
        ("GET", "/api/v1/me" | "/api/v1/me/budget" | "/api/v1/config" | "/api/v1/sessions") => {
            p(vec![], None, &[])
        }
        ("GET", "/api/v1/sessions/{id}/messages") => {
            p(vec![("id", ids.session.clone())], None, &["after_seq"])
        }
        ("GET", "/api/v1/users") => p(vec![], None, &[]),
        ("POST", "/api/v1/users") => p(
            vec![],
            Some(json!({"username": unique("walk"), "password": PASSWORD, "role": "user"})),
            &[],
        ),
        ("PATCH", "/api/v1/users/{id}") => p(
            vec![("id", ids.user.clone())],
            Some(json!({"role": "user"})),
            &[],
        ),
        ("GET", "/api/v1/admin/audit-log") => p(
            vec![],
            None,
            &["user_id", "start", "end", "before", "format", "actions"],
        ),
        ("GET", "/api/v1/admin/sessions") => p(vec![], None, &["user_id", "status"]),
        ("GET", "/api/v1/plugins") | ("POST", "/api/v1/plugins/rescan") => p(vec![], None, &[]),
        ("GET", "/api/v1/plugins/{name}")
        | ("POST", "/api/v1/plugins/{name}/activate" | "/api/v1/plugins/{name}/deactivate") => {
            p(vec![("name", ids.plugin.into())], None, &[])
        }
        ("PUT", "/api/v1/plugins/{name}/config") => p(
            vec![("name", ids.plugin.into())],
            Some(json!({"config": {"greeting": "hello"}})),
            &[],
        ),
        ("GET", "/api/v1/tenants" | "/api/v1/tool-types" | "/api/v1/chat/tenants") => {
            p(vec![], None, &[])
        }
        ("POST", "/api/v1/tenants") => p(
            vec![],
            Some(json!({"tenant_id": unique("walk"), "name": "Walk MSP",
                "tool_type": "servicedesk_plus", "servicedesk_url": sdp_url, "api_key": "k"})),
            &[],
        ),
        ("GET" | "DELETE", "/api/v1/tenants/{tenant_id}")
        | ("POST", "/api/v1/tenants/{tenant_id}/test-connection")
        | ("GET", "/api/v1/tenants/{tenant_id}/import" | "/api/v1/tenants/{tenant_id}/grants") => {
            p(vec![tenant()], None, &[])
        }
        ("PATCH", "/api/v1/tenants/{tenant_id}") => {
            p(vec![tenant()], Some(json!({"name": "Walk MSP"})), &[])
        }
        ("POST", "/api/v1/tenants/{tenant_id}/webhook-secret") => p(
            vec![tenant()],
            Some(json!({"webhook_secret": "a-secret-brought-from-the-tool"})),
            &[],
        ),
        ("POST", "/api/v1/tenants/{tenant_id}/kb-articles") => p(
            vec![tenant()],
            Some(json!([{"title": "Title", "summary": "Summary",
                "url": "https://kb.example/a", "body": "Body"}])),
            &[],
        ),
        ("POST", "/api/v1/tenants/{tenant_id}/inventory") => p(
            vec![tenant()],
            Some(
                json!([{"ip": "10.0.0.9", "hostname": "host", "role": "role",
                "client": "client", "location": "location"}]),
            ),
            &[],
        ),
        ("POST", "/api/v1/tenants/test-connection") => p(
            vec![],
            Some(
                json!({"tool_type": "servicedesk_plus", "servicedesk_url": sdp_url,
                "api_key": "k"}),
            ),
            &[],
        ),
        ("POST", "/api/v1/tenants/{tenant_id}/import") => {
            p(vec![tenant()], Some(json!({"days": 1})), &[])
        }
        ("PUT" | "DELETE", "/api/v1/tenants/{tenant_id}/grants/{user_id}") => {
            p(vec![tenant(), ("user_id", ids.user.clone())], None, &[])
        }
        ("GET", "/api/v1/enhancements" | "/api/v1/enhancements/export.csv") => {
            p(vec![], None, history)
        }
        ("GET", "/api/v1/enhancements/feedback") => p(vec![], None, &["tenant_id", "from", "to"]),
        ("GET", "/api/v1/enhancements/{job_id}")
        | ("POST", "/api/v1/enhancements/{job_id}/retry") => {
            p(vec![("job_id", ids.job.clone())], None, &[])
        }
        ("GET", "/api/v1/tickets/processing") => p(vec![], None, &[]),
        ("PUT", "/api/v1/tickets/processing") => p(vec![], Some(json!({"paused": true})), &[]),
        ("GET", "/api/v1/tickets/dashboard" | "/api/v1/tickets/charts") => {
            p(vec![], None, &["range", "tenant_id"])
        }
        ("GET", "/api/v1/tickets/workers") => p(vec![], None, &[]),
        ("GET", "/api/v1/tickets/workers/{worker_id}/logs") => {
            p(vec![("worker_id", ids.worker.clone())], None, &["level"])
        }
        ("GET", "/api/v1/tickets/workers/{worker_id}/throughput") => p(
            vec![("worker_id", ids.worker.clone())],
            None,
            &["hours", "range"],
        ),
        ("POST", "/api/v1/tickets/workers/{worker_id}/restart") => {
            p(vec![("worker_id", ids.worker.clone())], None, &[])
        }
        ("POST", "/api/v1/tickets/queue/clear" | "/api/v1/tickets/configs/reload") => {
            p(vec![], None, &[])
        }
        // Webhooks: their bodies are signed, so the walks send them
        // unsigned (refused) and the webhook section signs its own.
        ("POST", "/webhook/servicedesk" | "/webhook/servicedesk/resolved") => {
            p(vec![], Some(new_ticket_body(1)), &[])
        }
        (
            "POST",
            "/webhook/{tool_type}/{tenant_id}" | "/webhook/{tool_type}/{tenant_id}/resolved",
        ) => p(
            vec![("tool_type", "servicedesk_plus".into()), tenant()],
            Some(new_ticket_body(1)),
            &[],
        ),
        ("GET", "/feedback/{job_id}/{vote}") => p(
            vec![("job_id", ids.job.clone()), ("vote", "helpful".into())],
            None,
            &["sig"],
        ),
        ("GET", "/api/v1/health/live" | "/api/v1/health/ready" | "/api/v1/health/startup") => {
            p(vec![], None, &[])
        }
        ("GET", "/ws") => p(vec![], None, &["session", "after_seq", "tenant"]),
        ("GET", "/metrics") => p(vec![], None, &[]),
        _ => None,
    }
}

fn label(route: &Route) -> String {
    format!("{} {}", route.method, route.path)
}

fn changes_state(route: &Route) -> bool {
    matches!(route.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
}

fn is_webhook(route: &Route) -> bool {
    route.path.starts_with("/webhook/")
}

/// Every string member of a JSON body, by its path (`[0].title`).
fn string_fields(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(_) => out.push(at),
        Value::Object(m) => {
            for (k, v) in m {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                string_fields(v, path, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                string_fields(v, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn with_field(v: &Value, path: &str, value: &str) -> Value {
    let mut v = v.clone();
    let mut at = &mut v;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !key.is_empty() {
            at = &mut at[key];
        }
        if let Some(i) = index {
            at = &mut at[i];
        }
    }
    *at = Value::String(value.to_owned());
    v
}

/// A token signed with `key` over `claims`, under any header (what an
/// attacker crafts): `alg` is taken as given, the signature is always
/// HMAC-SHA256.
fn crafted(header: Value, claims: &Value, key: &[u8]) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", b64(&header), b64(claims));
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(csp_auth::hmac_sha256(key, input.as_bytes()));
    format!("{input}.{sig}")
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The instance, its users and objects.
struct Fixture {
    t: Tickets,
    sdp_url: String,
    /// A plain user with a session and a grant on `acme`.
    alice: (String, String),
    /// Another plain user, without either.
    bob: (String, String),
    /// An operator.
    olga: (String, String),
    olga_name: String,
    alice_session: String,
    ids: Ids,
    /// Webhook secrets by tenant.
    secrets: Vec<(&'static str, String)>,
}

impl Fixture {
    fn csp(&self) -> &Csp {
        &self.t.csp
    }

    fn admin(&self) -> &str {
        &self.t.admin
    }

    fn secret(&self, tenant: &str) -> &str {
        &self.secrets.iter().find(|(t, _)| *t == tenant).unwrap().1
    }
}

const LOGIN_ACCOUNT_LIMIT: u32 = 3;
const LOGIN_ADDRESS_LIMIT: u32 = 4;
const LOCKOUT_SECONDS: u64 = 30;

async fn fixture(mode: Mode) -> (Fixture, csp_mock_ticketing::RunningMock) {
    let t = start(
        mode,
        &[
            (
                "CSP_LOGIN_MAX_FAILURES_PER_ACCOUNT",
                &LOGIN_ACCOUNT_LIMIT.to_string(),
            ),
            (
                "CSP_LOGIN_MAX_FAILURES_PER_ADDRESS",
                &LOGIN_ADDRESS_LIMIT.to_string(),
            ),
            (
                "CSP_LOGIN_LOCKOUT_BASE_SECONDS",
                &LOCKOUT_SECONDS.to_string(),
            ),
            ("CSP_TRUST_FORWARDED_FOR", "true"),
        ],
    )
    .await;
    let sdp = sdp(0, &[]).await;
    let sdp_url = sdp.base_url();
    let mut secrets = Vec::new();
    for tenant in ["acme", "globex", "spare"] {
        secrets.push((tenant, t.tenant(tenant, &sdp_url).await));
    }
    let jira = |site: &str| {
        json!({"jira_url": format!("https://{site}.atlassian.example"), "jira_email": "csp@acme.example",
            "jira_api_token": "jira-token", "jira_project_key": csp_mock_ticketing::JIRA_PROJECT})
    };
    secrets.push((
        "jira-acme",
        t.tool_tenant("jira-acme", "jira", jira("acme")).await.0,
    ));
    secrets.push((
        "jira-globex",
        t.tool_tenant("jira-globex", "jira", jira("globex")).await.0,
    ));
    for (tenant, secret) in [
        ("zd-acme", ZENDESK_SECRET),
        ("zd-globex", "another-zendesk-signing-secret-456"),
    ] {
        t.tool_tenant(
            tenant,
            "zendesk",
            json!({"zendesk_subdomain": tenant, "zendesk_email": "agent@acme.example",
                "zendesk_api_token": "zendesk-token", "zendesk_url": "https://zendesk.example"}),
        )
        .await;
        let (status, body) = t
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{tenant}/webhook-secret"),
                Some(json!({"webhook_secret": secret})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        secrets.push((tenant, secret.to_owned()));
    }
    // Jobs stay pending: the suite reads and retries them, no worker posts.
    let (status, body) = t
        .call(
            Method::PUT,
            "/api/v1/tickets/processing",
            Some(json!({"paused": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let job = t.new_ticket("acme", &secrets[0].1, 7001).await;
    // An import to read the progress of (the fake holds no resolved ticket).
    let (status, body) = t
        .call(
            Method::POST,
            "/api/v1/tenants/spare/import",
            Some(json!({"days": 1})),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    let alice = new_user(&t.csp, &t.admin, "user", None).await;
    let bob = new_user(&t.csp, &t.admin, "user", None).await;
    let olga = new_user(&t.csp, &t.admin, "operator", None).await;
    let (status, body) = t
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/acme/grants/{}", alice.0),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut ws = t.csp.ws(&alice.2, "").await.unwrap();
    let alice_session = ready(&mut ws).await;
    ws.close().await;

    let (status, workers) = t.call(Method::GET, "/api/v1/tickets/workers", None).await;
    assert_eq!(status, 200, "{workers}");
    let worker = workers["workers"][0]["worker_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let feedback_sig = feedback_signature(&job);
    let ids = Ids {
        tenant: "spare".into(),
        user: bob.0.clone(),
        job,
        worker,
        session: alice_session.clone(),
        plugin: "tickets",
        feedback_sig,
    };
    let fixture = Fixture {
        t,
        sdp_url,
        alice: (alice.0, alice.2),
        bob: (bob.0, bob.2),
        olga_name: olga.1,
        olga: (olga.0, olga.2),
        alice_session,
        ids,
        secrets,
    };
    (fixture, sdp)
}

/// The signature csp writes on a note's "helpful" link for `job`.
fn feedback_signature(job: &str) -> String {
    let key = csp_secrets::SecretKey::parse(csp_e2e::SECRET_KEY).unwrap();
    let ring = csp_secrets::Keyring::new(key, Vec::new());
    csp_enhance::FeedbackKey::from_keyring(&ring)
        .sign(job.parse().unwrap(), csp_domain::FeedbackVote::Helpful)
}

// ------------------------------------------------------------ the suite

/// Both modes, one after the other, into one report: `csp dev` (SQLite,
/// in-process bus, memory cache) has stores and caches of its own to get
/// wrong.
#[tokio::test(flavor = "multi_thread")]
async fn attack_suite() {
    let mut report = Report::default();
    let mut logs = String::new();
    for (mode, name) in [(Mode::Distributed, "multi-service"), (Mode::Dev, "csp dev")] {
        report.mode = name;
        logs.push_str(&attack(mode, &mut report).await);
    }
    let path = report.write();
    let failures = report.failures();
    assert!(
        !logs.contains("panicked at"),
        "a process panicked during the attacks"
    );
    assert!(
        failures.is_empty(),
        "{} attempts did not hold (report: {}):\n{}\n--- errors and warnings logged:\n{}",
        failures.len(),
        path.display(),
        failures.join("\n"),
        logs.lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .take(60)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every section against one instance of `mode`; what its processes logged.
async fn attack(mode: Mode, report: &mut Report) -> String {
    let (f, sdp) = fixture(mode).await;
    let table = csp_gateway::table();
    coverage(&f, table, report);
    webhooks(&f, report).await;
    let seeded = report.seeded.len();
    injection(&f, table, report).await;
    for (field, _) in &mut report.seeded[seeded..] {
        *field = format!("{} — {field}", report.mode);
    }
    traversal(&f, table, report).await;
    bodies(&f, table, report).await;
    websocket_frames(&f, report).await;
    jwt(&f, table, report).await;
    csrf(&f, table, report).await;
    idor(&f, report).await;
    headers(&f, report).await;
    // Last: it locks logins from its addresses.
    brute_force(&f, report).await;
    let logs = f.t.csp.all_logs();
    sdp.shutdown().await;
    f.t.stop().await;
    logs
}

/// Every route of the table has inputs here.
fn coverage(f: &Fixture, table: &[Route], r: &mut Report) {
    r.section(
        "0. Coverage of the route table",
        "Every route of `csp_gateway::table()` has test inputs in this suite; a route without is a failure.",
    );
    for route in table {
        let known = inputs(route, &f.ids, &f.sdp_url).is_some();
        r.row(
            label(route),
            "-",
            "inputs known",
            if known { "known" } else { "no inputs" },
            known,
        );
    }
}

// ------------------------------------------------------------ 7. webhooks

/// Spoofing and replay across tenants, for each connector.
/// A valid delivery sent twice: both answered `202` with the same job, and
/// one job recorded (`jobs`: the tenant's count before and after).
fn replayed(
    r: &mut Report,
    path: &str,
    what: &str,
    (first, again): (&Answer, &Answer),
    (before, after): (u64, u64),
) {
    r.row(
        format!("POST {path}"),
        what,
        "202 twice, same job_id, one job recorded",
        format!(
            "{} {} / {}, jobs {before} → {after}",
            first.status, first.body, again.status
        ),
        first.status == 202
            && again.status == 202
            && first.body["job_id"] == again.body["job_id"]
            && after == before + 1,
    );
}

async fn webhooks(f: &Fixture, r: &mut Report) {
    r.section(
        "7. Webhook spoofing and replay",
        "A delivery verifies against its own tenant's secret only (another tenant's secret, a missing or \
         garbled signature: 401 `webhook_signature_invalid`); ServiceDesk Plus and Zendesk sign a timestamp \
         that must be within 300 s; a repeat (same signature, or same Jira delivery id / Zendesk invocation \
         id) answers the first job and records no second; a tenant on another tool's path is unknown (404). \
         Signatures are compared with `csp_auth::constant_time_eq` (`crates/auth/src/hmac.rs`, used by \
         `verify_hmac_sha256_hex` for ServiceDesk Plus and Jira and by `zendesk::verify_signature`).",
    );
    let t = &f.t;
    let refused = |a: &Answer| {
        (
            format!(
                "{} {}",
                a.status,
                a.body["error"]["code"].as_str().unwrap_or("")
            ),
            a.status == 401 && a.body["error"]["code"] == "webhook_signature_invalid",
        )
    };
    let (acme, globex) = (f.secret("acme"), f.secret("globex"));
    let sdp_path = "/webhook/servicedesk_plus/globex";
    let body = new_ticket_body(8101).to_string().into_bytes();
    for (what, answer) in [
        (
            "signed with acme's secret, posted to globex",
            t.signed_at(sdp_path, acme, now_s(), &body).await,
        ),
        (
            "no signature headers",
            t.deliver(sdp_path, body.clone(), &[]).await,
        ),
        (
            "garbled signature",
            t.deliver(
                sdp_path,
                body.clone(),
                &[
                    ("x-servicedesk-timestamp", now_s().to_string()),
                    ("x-servicedesk-signature", "sha256=zz-not-hex".into()),
                ],
            )
            .await,
        ),
        (
            "8 KiB signature",
            t.deliver(
                sdp_path,
                body.clone(),
                &[
                    ("x-servicedesk-timestamp", now_s().to_string()),
                    (
                        "x-servicedesk-signature",
                        format!("sha256={}", "a".repeat(8192)),
                    ),
                ],
            )
            .await,
        ),
        (
            "garbled timestamp",
            t.deliver(
                sdp_path,
                body.clone(),
                &[
                    ("x-servicedesk-timestamp", "yesterday".into()),
                    (
                        "x-servicedesk-signature",
                        csp_ticketing::webhook::sign(globex.as_bytes(), now_s(), &body),
                    ),
                ],
            )
            .await,
        ),
        (
            "timestamp 301 s old",
            t.signed_at(sdp_path, globex, now_s() - 301, &body).await,
        ),
        (
            "timestamp 301 s ahead",
            t.signed_at(sdp_path, globex, now_s() + 301, &body).await,
        ),
    ] {
        let (observed, held) = refused(&answer);
        r.row(
            format!("POST {sdp_path}"),
            what,
            "401 webhook_signature_invalid",
            observed,
            held,
        );
    }
    let (_, before) = t.jobs_of("globex").await;
    let ts = now_s();
    let first = t.signed_at(sdp_path, globex, ts, &body).await;
    let again = t.signed_at(sdp_path, globex, ts, &body).await;
    let (_, after) = t.jobs_of("globex").await;
    replayed(
        r,
        sdp_path,
        "valid delivery, then the same bytes and signature again",
        (&first, &again),
        (before, after),
    );
    let elsewhere = t
        .signed_at("/webhook/jira/globex", globex, now_s(), &body)
        .await;
    r.row(
        "POST /webhook/jira/globex",
        "a ServiceDesk Plus tenant on the Jira path",
        "404",
        elsewhere.status.to_string(),
        elsewhere.status == 404,
    );
    let unknown_tool = t
        .signed_at("/webhook/nonsense/globex", globex, now_s(), &body)
        .await;
    r.row(
        "POST /webhook/nonsense/globex",
        "unknown tool_type",
        "400/404",
        unknown_tool.status.to_string(),
        matches!(unknown_tool.status, 400 | 404),
    );

    // Jira: no signed timestamp; the delivery id decides a repeat.
    let jira = csp_mock_ticketing::MockJira::builder().build();
    let key = format!("{}-77", csp_mock_ticketing::JIRA_PROJECT);
    assert!(jira.insert(csp_mock_ticketing::MockJiraIssue::open(
        &key,
        "VPN down",
        csp_mock_ticketing::text_to_adf("It drops."),
        "High"
    )));
    let jira_body = jira
        .webhook_body("jira:issue_created", &key)
        .unwrap()
        .to_string()
        .into_bytes();
    let jira_path = "/webhook/jira/jira-globex";
    let sign_jira = |secret: &str| csp_ticketing::jira::sign(secret.as_bytes(), &jira_body);
    let crossed = t
        .deliver(
            jira_path,
            jira_body.clone(),
            &[("x-hub-signature", sign_jira(f.secret("jira-acme")))],
        )
        .await;
    let (observed, held) = refused(&crossed);
    r.row(
        format!("POST {jira_path}"),
        "signed with jira-acme's secret",
        "401 webhook_signature_invalid",
        observed,
        held,
    );
    let missing = t.deliver(jira_path, jira_body.clone(), &[]).await;
    let (observed, held) = refused(&missing);
    r.row(
        format!("POST {jira_path}"),
        "no X-Hub-Signature",
        "401 webhook_signature_invalid",
        observed,
        held,
    );
    let own = [
        ("x-hub-signature", sign_jira(f.secret("jira-globex"))),
        (
            "x-atlassian-webhook-identifier",
            "attack-delivery-1".to_owned(),
        ),
    ];
    let (_, before) = t.jobs_of("jira-globex").await;
    let first = t.deliver(jira_path, jira_body.clone(), &own).await;
    let again = t.deliver(jira_path, jira_body.clone(), &own).await;
    let (_, after) = t.jobs_of("jira-globex").await;
    replayed(
        r,
        jira_path,
        "valid delivery replayed with the same X-Atlassian-Webhook-Identifier",
        (&first, &again),
        (before, after),
    );

    // Zendesk: a signed ISO 8601 timestamp and an invocation id.
    let zd_body = json!({"type": "zen:event-type:ticket.created", "account_id": 1, "id": "attack-event-1",
        "time": "2026-12-06T10:12:07Z", "zendesk_event_version": "2022-11-06", "subject": "zen:ticket:51",
        "detail": {"id": "51", "subject": "VPN down", "description": "It drops.", "priority": "HIGH",
            "status": "OPEN", "created_at": "2026-12-06T10:12:07Z", "tags": []}, "event": {}})
    .to_string()
    .into_bytes();
    let zd_path = "/webhook/zendesk/zd-globex";
    let stamp = |offset: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::seconds(offset))
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let zd = |secret: &str, ts: &str, invocation: &str| {
        vec![
            (
                "x-zendesk-webhook-signature",
                csp_ticketing::zendesk::sign(secret.as_bytes(), ts, &zd_body),
            ),
            ("x-zendesk-webhook-signature-timestamp", ts.to_owned()),
            ("x-zendesk-webhook-invocation-id", invocation.to_owned()),
        ]
    };
    let zd_globex = f.secret("zd-globex");
    for (what, headers) in [
        (
            "signed with zd-acme's secret",
            zd(f.secret("zd-acme"), &stamp(0), "inv-x"),
        ),
        ("timestamp 301 s old", zd(zd_globex, &stamp(-301), "inv-y")),
        ("no signature headers", vec![]),
    ] {
        let a = t.deliver(zd_path, zd_body.clone(), &headers).await;
        let (observed, held) = refused(&a);
        r.row(
            format!("POST {zd_path}"),
            what,
            "401 webhook_signature_invalid",
            observed,
            held,
        );
    }
    let (_, before) = t.jobs_of("zd-globex").await;
    let headers = zd(zd_globex, &stamp(0), "attack-invocation-1");
    let first = t.deliver(zd_path, zd_body.clone(), &headers).await;
    let again = t.deliver(zd_path, zd_body.clone(), &headers).await;
    let (_, after) = t.jobs_of("zd-globex").await;
    replayed(
        r,
        zd_path,
        "valid delivery replayed (same signature and invocation id)",
        (&first, &again),
        (before, after),
    );
}

// ------------------------------------------------------------ 1. injection

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// SQL injection and XSS in every string field of every JSON body and
/// query parameter, stored values read back, XSS seeded for the browser.
async fn injection(f: &Fixture, table: &[Route], r: &mut Report) {
    r.section(
        "1. SQL injection and XSS",
        "Every string member of every JSON body and every query parameter, set to each SQL injection and XSS \
         payload: a clear 4xx or accepted; never a 5xx; what is stored reads back byte for byte (no SQL \
         effect: users and tenants still list; `' OR '1'='1` in a search finds nothing).",
    );
    let csp = f.csp();
    let admin = Auth::Bearer(f.admin());
    for route in table.iter().filter(|r| !is_webhook(r)) {
        let Some(inp) = inputs(route, &f.ids, &f.sdp_url) else {
            continue;
        };
        let path = inp.path(route.path);
        if let Some(body) = &inp.body {
            let mut fields = Vec::new();
            string_fields(body, String::new(), &mut fields);
            for field in &fields {
                for payload in injections() {
                    // Fresh inputs: a create's unique id per attempt.
                    let body = inputs(route, &f.ids, &f.sdp_url).unwrap().body.unwrap();
                    let sent = with_field(&body, field, payload);
                    let reply = send(
                        csp,
                        &route.method,
                        &path,
                        admin,
                        Payload::Json(sent.clone()),
                        &[],
                    )
                    .await;
                    let (held, note) =
                        stored_verbatim(f, route, field, &sent, payload, &reply).await;
                    r.row(
                        label(route),
                        format!("{field} = {payload}"),
                        "4xx, or 2xx and read back verbatim",
                        format!("{}{note}", reply.observed()),
                        held,
                    );
                }
            }
        }
        for param in inp.query {
            if route.path == "/ws" {
                continue;
            }
            for payload in injections() {
                let url = format!("{path}?{param}={}", encode(payload));
                let reply = send(csp, &route.method, &url, admin, Payload::Empty, &[]).await;
                r.row(
                    label(route),
                    format!("?{param}={payload}"),
                    "not 5xx",
                    reply.observed(),
                    !reply.server_error(),
                );
            }
        }
    }
    // No SQL effect.
    let (status, users) = call(csp, Method::GET, "/api/v1/users", Some(f.admin()), None).await;
    let listed = users.to_string().contains(&f.alice.0);
    r.row(
        "GET /api/v1/users",
        "after every `DROP TABLE users`",
        "200, alice still listed",
        status.to_string(),
        status == 200 && listed,
    );
    let (status, tenants) = call(csp, Method::GET, "/api/v1/tenants", Some(f.admin()), None).await;
    r.row(
        "GET /api/v1/tenants",
        "after every injection",
        "200, acme still listed",
        status.to_string(),
        status == 200 && tenants.to_string().contains("\"acme\""),
    );
    for q in ["' OR '1'='1", "%' OR '1'='1' --", "\\' OR 1=1 --"] {
        let (status, page) = call(
            csp,
            Method::GET,
            &format!("/api/v1/enhancements?q={}", encode(q)),
            Some(f.admin()),
            None,
        )
        .await;
        r.row(
            "GET /api/v1/enhancements",
            format!("?q={q}"),
            "200, total 0",
            format!("{status}, total {}", page["total"]),
            status == 200 && page["total"] == 0,
        );
    }
    seed_stored_xss(f, r).await;
}

/// Whether an accepted injection was stored verbatim, where the suite can
/// read it back (a user's name, a tenant's name, a plugin's config), and
/// what was read.
async fn stored_verbatim(
    f: &Fixture,
    route: &Route,
    field: &str,
    sent: &Value,
    payload: &str,
    reply: &Reply,
) -> (bool, String) {
    if reply.server_error() {
        return (false, String::new());
    }
    if !(200..300).contains(&reply.status) {
        return (reply.client_error(), String::new());
    }
    let csp = f.csp();
    let read = match (route.method.as_str(), route.path, field) {
        ("POST", "/api/v1/users", "username") => {
            let (_, users) = call(csp, Method::GET, "/api/v1/users", Some(f.admin()), None).await;
            users["users"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|u| u["username"] == payload)
                .map(|u| u["username"].clone())
        }
        ("POST", "/api/v1/tenants", "name") => {
            let id = sent["tenant_id"].as_str().unwrap();
            let (_, t) = call(
                csp,
                Method::GET,
                &format!("/api/v1/tenants/{id}"),
                Some(f.admin()),
                None,
            )
            .await;
            Some(t["name"].clone())
        }
        ("PATCH", "/api/v1/tenants/{tenant_id}", "name") => {
            let (_, t) = call(
                csp,
                Method::GET,
                &format!("/api/v1/tenants/{}", f.ids.tenant),
                Some(f.admin()),
                None,
            )
            .await;
            Some(t["name"].clone())
        }
        ("PUT", "/api/v1/plugins/{name}/config", _) => {
            let (_, p) = call(
                csp,
                Method::GET,
                &format!("/api/v1/plugins/{}", f.ids.plugin),
                Some(f.admin()),
                None,
            )
            .await;
            Some(p["config"]["greeting"].clone())
        }
        _ => return (true, String::new()),
    };
    match read {
        Some(Value::String(s)) if s == payload => (true, ", read back verbatim".into()),
        other => (false, format!(", read back {other:?}")),
    }
}

/// XSS payloads stored in fields the web app renders, left in place; the
/// report lists them.
async fn seed_stored_xss(f: &Fixture, r: &mut Report) {
    let csp = f.csp();
    let t = &f.t;
    let [img, script, js_url, svg] = [XSS[0], XSS[1], XSS[2], XSS[3]];
    let (status, body) = t
        .call(
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"tenant_id": "xss-seed", "name": img,
            "tool_type": "servicedesk_plus", "servicedesk_url": f.sdp_url, "api_key": "k"})),
        )
        .await;
    r.row(
        "POST /api/v1/tenants",
        format!("name = {img}"),
        "201, stored verbatim",
        format!("{status} {}", body["name"]),
        status == 201 && body["name"] == img,
    );
    r.seeded
        .push(("tenant `xss-seed`: name".into(), img.into()));
    let (status, _) = t
        .call(
            Method::POST,
            "/api/v1/tenants/xss-seed/kb-articles",
            Some(json!([{"title": script,
            "summary": svg, "url": "https://kb.example/x", "body": img}])),
        )
        .await;
    r.row(
        "POST /api/v1/tenants/{tenant_id}/kb-articles",
        "title/summary/body = XSS",
        "200",
        status.to_string(),
        status == 200,
    );
    r.seeded.push((
        "tenant `xss-seed`: KB article title / summary / body".into(),
        format!("{script} / {svg} / {img}"),
    ));
    let (status, body) = t
        .call(
            Method::POST,
            "/api/v1/tenants/xss-seed/kb-articles",
            Some(json!([{"title": "js url",
            "summary": "s", "url": js_url, "body": "b"}])),
        )
        .await;
    r.row(
        "POST /api/v1/tenants/{tenant_id}/kb-articles",
        format!("url = {js_url}"),
        "400 (only http(s) URLs)",
        format!("{status} {}", body["error"]["code"]),
        status == 400,
    );
    let (status, _) = t
        .call(
            Method::POST,
            "/api/v1/tenants/xss-seed/inventory",
            Some(json!([{"ip": "10.0.0.66",
            "hostname": svg, "role": script, "client": img, "location": "x"}])),
        )
        .await;
    r.row(
        "POST /api/v1/tenants/{tenant_id}/inventory",
        "hostname/role/client = XSS",
        "200",
        status.to_string(),
        status == 200,
    );
    r.seeded.push((
        "tenant `xss-seed`: inventory 10.0.0.66 hostname / role / client".into(),
        format!("{svg} / {script} / {img}"),
    ));
    // A ticket's text is HTML to every tool: the intake keeps its text and
    // drops its markup (`csp_ticketing::html_to_text`), so what is stored
    // is the payload's text, never a tag; SQL is plain text and kept.
    let mut ticket = new_ticket_body(7666);
    ticket["subject"] = json!(format!("VPN {img} down {svg}"));
    ticket["description"] = json!(format!(
        "{script}\n{js_url}\n'; DROP TABLE enhancement_jobs;--"
    ));
    let a = t
        .signed("/webhook/servicedesk_plus/acme", f.secret("acme"), &ticket)
        .await;
    let job = a.body["job_id"].as_str().unwrap_or_default().to_owned();
    let (status, stored) = call(
        csp,
        Method::GET,
        &format!("/api/v1/enhancements/{job}"),
        Some(f.admin()),
        None,
    )
    .await;
    let (subject, description) = (
        stored["subject"].as_str().unwrap_or_default(),
        stored["description"].as_str().unwrap_or_default(),
    );
    r.row(
        "POST /webhook/{tool_type}/{tenant_id}",
        "subject/description = XSS + SQL",
        "202; stored as text: no tag, the SQL verbatim",
        format!("{} / {status}: {subject:?}", a.status),
        a.status == 202
            && status == 200
            && subject.starts_with("VPN")
            && !subject.contains('<')
            && !description.contains("<script")
            && description.contains("'; DROP TABLE enhancement_jobs;--"),
    );
    r.seeded.push((
        format!(
            "enhancement job {job} (tenant acme, ticket 7666): subject / description as stored"
        ),
        format!("{subject} / {description}"),
    ));
    let text = injections().collect::<Vec<_>>().join("\n");
    let mut ws = csp
        .ws(&f.alice.1, &format!("session={}", f.alice_session))
        .await
        .unwrap();
    ready(&mut ws).await;
    ws.send(json!({"type": "send", "text": text}))
        .await
        .unwrap();
    let turn = ws.turn().await;
    ws.close().await;
    let (status, history) = csp
        .get(
            &f.alice.1,
            &format!("/api/v1/sessions/{}/messages", f.alice_session),
        )
        .await
        .unwrap();
    let kept = history["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["type"] == "user_message" && m["text"] == text.as_str());
    r.row(
        "GET /ws → send; GET /api/v1/sessions/{id}/messages",
        "chat message = every SQL and XSS payload",
        "turn ends, read back verbatim",
        format!(
            "turn {}, {status}",
            if turn.is_ok() { "ended" } else { "failed" }
        ),
        turn.is_ok() && status == 200 && kept,
    );
    r.seeded.push((
        format!(
            "chat session {} of user alice: a user message",
            f.alice_session
        ),
        text.replace('\n', " ⏎ "),
    ));
}

// ------------------------------------------------------------ 2. traversal

async fn traversal(f: &Fixture, table: &[Route], r: &mut Report) {
    r.section(
        "2. Path traversal",
        "Every path parameter of every route set to traversal, NUL, overlong and non-UTF-8 values (as an admin, \
         with the route's valid body): a 4xx, never a 5xx, never a file's content. The web app's static paths \
         (sent byte for byte, dot segments unnormalised) never serve a file outside `web/dist`. Baseline: \
         each GET route with valid inputs answers 2xx, so the refusals above are the parameters' doing.",
    );
    let csp = f.csp();
    let admin = Auth::Bearer(f.admin());
    for route in table {
        let Some(inp) = inputs(route, &f.ids, &f.sdp_url) else {
            continue;
        };
        if route.method == Method::GET && route.path != "/ws" {
            let mut path = inp.path(route.path);
            if route.path == "/feedback/{job_id}/{vote}" {
                path.push_str(&format!("?sig={}", f.ids.feedback_sig));
            }
            let reply = send(csp, &route.method, &path, admin, Payload::Empty, &[]).await;
            r.row(
                label(route),
                "baseline: valid inputs",
                "2xx",
                reply.observed(),
                (200..300).contains(&reply.status),
            );
        }
        for (name, _) in &inp.params {
            for (what, value) in traversals() {
                let path = inp.path_with(route.path, name, &value);
                let body = inp.body.clone().map_or(Payload::Empty, Payload::Json);
                let reply = send(csp, &route.method, &path, admin, body, &[]).await;
                r.row(
                    label(route),
                    format!("{{{name}}} = {what}"),
                    "4xx, no file content",
                    reply.observed(),
                    reply.client_error() && !leaks_a_file(&reply.text),
                );
            }
        }
    }
    for path in [
        "/assets/../../Cargo.toml",
        "/../../Cargo.toml",
        "/..%2f..%2fCargo.toml",
        "/%2e%2e/%2e%2e/Cargo.toml",
        "/app.js/..%2f..%2f..%2fCargo.toml",
        "/..\\..\\Cargo.toml",
        "/..%5c..%5cCargo.toml",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/index.html%00.js",
    ] {
        let (status, _, body) = raw(csp, &get_request(path, "")).await;
        r.row(
            format!("GET {path} (static)"),
            "dot segments / encoded traversal",
            "no file outside web/dist, not 5xx",
            status.to_string(),
            status != 0 && status < 500 && !leaks_a_file(&body),
        );
    }
}

// ------------------------------------------------------------ 3. bodies

/// The API's body limit (axum's default, kept by the gateway): 2 MiB.
const API_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The webhooks' (`webhooks::MAX_BODY_BYTES`): 256 KiB.
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

async fn bodies(f: &Fixture, table: &[Route], r: &mut Report) {
    r.section(
        "3. Oversized and malformed bodies",
        format!(
            "Every route that takes a body: over the limit ({API_BODY_LIMIT} bytes on the API, \
             {WEBHOOK_BODY_LIMIT} on webhooks) → 413 `payload_too_large`; invalid JSON → 400/422 with a JSON \
             error body; a JSON body declared `text/plain` → 415/400; 100,000 levels of nesting → 4xx; a 1 MiB \
             string in a field → 4xx or accepted, never 5xx. Webhooks are unsigned here, so a 401 is the \
             refusal there."
        ),
    );
    let csp = f.csp();
    let admin = Auth::Bearer(f.admin());
    for route in table {
        let Some(inp) = inputs(route, &f.ids, &f.sdp_url) else {
            continue;
        };
        let Some(valid) = inp.body.clone() else {
            continue;
        };
        let path = inp.path(route.path);
        let limit = if is_webhook(route) {
            WEBHOOK_BODY_LIMIT
        } else {
            API_BODY_LIMIT
        };
        let raw_json = |bytes: Vec<u8>| Payload::Raw {
            content_type: Some("application/json"),
            bytes,
        };
        let mut oversize = b"{\"pad\":\"".to_vec();
        oversize.resize(limit + 16, b'x');
        oversize.extend_from_slice(b"\"}");
        let reply = send(csp, &route.method, &path, admin, raw_json(oversize), &[]).await;
        r.row(
            label(route),
            format!("body of {} bytes", limit + 18),
            "413 payload_too_large",
            reply.observed(),
            reply.status == 413 && reply.code() == "payload_too_large",
        );

        let reply = send(
            csp,
            &route.method,
            &path,
            admin,
            raw_json(b"{\"a\": ".to_vec()),
            &[],
        )
        .await;
        let json_error = reply.json()["error"]["code"].is_string();
        r.row(
            label(route),
            "invalid JSON",
            "400/422 with a JSON error (401 on webhooks)",
            reply.observed(),
            (matches!(reply.status, 400 | 422) && json_error)
                || (is_webhook(route) && reply.status == 401),
        );

        let reply = send(
            csp,
            &route.method,
            &path,
            admin,
            Payload::Raw {
                content_type: Some("text/plain"),
                bytes: valid.to_string().into_bytes(),
            },
            &[],
        )
        .await;
        r.row(
            label(route),
            "JSON body as text/plain",
            "415/400 (401 on webhooks)",
            reply.observed(),
            matches!(reply.status, 400 | 415) || (is_webhook(route) && reply.status == 401),
        );

        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
        let reply = send(csp, &route.method, &path, admin, raw_json(nested), &[]).await;
        r.row(
            label(route),
            "100,000 levels of nesting",
            "4xx",
            reply.observed(),
            reply.client_error(),
        );

        let mut fields = Vec::new();
        string_fields(&valid, String::new(), &mut fields);
        if let Some(field) = fields.iter().find(|f| !f.ends_with("tenant_id")) {
            let fresh = inputs(route, &f.ids, &f.sdp_url).unwrap().body.unwrap();
            let huge = with_field(&fresh, field, &"x".repeat(1024 * 1024));
            let reply = send(csp, &route.method, &path, admin, Payload::Json(huge), &[]).await;
            r.row(
                label(route),
                format!("{field} = 1 MiB string"),
                "4xx or 2xx, not 5xx",
                reply.observed(),
                !reply.server_error(),
            );
        }
    }
}

/// Malformed WebSocket frames.
async fn websocket_frames(f: &Fixture, r: &mut Report) {
    r.section(
        "3b. Malformed WebSocket frames",
        "On an open socket: a text frame over 64 KiB gets a `frame_too_large` error frame and the socket lives; \
         a binary frame gets an error frame or a close, never a crash; a text frame of invalid UTF-8 closes \
         the socket; a frame over the codec's 1 MiB closes it; a new socket still works.",
    );
    let csp = f.csp();
    // One session of bob's, reattached by each socket: every socket
    // without `session` would take a slot of `MAX_SESSIONS`.
    let mut first = csp.ws(&f.bob.1, "").await.unwrap();
    let session = ready(&mut first).await;
    first.close().await;
    let open = || async {
        let mut ws = csp
            .ws(&f.bob.1, &format!("session={session}"))
            .await
            .unwrap();
        ws.until(|f| f["type"] == "session").await.unwrap();
        ws
    };
    let mut ws = open().await;
    ws.send(json!({"type": "send", "text": "x".repeat(70 * 1024)}))
        .await
        .unwrap();
    let answer = ws.until(|f| f["type"] == "error").await;
    let code = answer
        .as_ref()
        .ok()
        .and_then(|fr| fr.last())
        .map(|fr| fr["code"].clone())
        .unwrap_or(Value::Null);
    let lives = pong(&mut ws).await;
    r.row(
        "GET /ws",
        "70 KiB text frame",
        "error frame_too_large, socket lives",
        format!("{code}, alive {lives}"),
        code == "frame_too_large" && lives,
    );

    ws.send_message(Message::Binary(vec![0u8, 159, 146, 150].into()))
        .await
        .unwrap();
    let after = ws.next().await;
    let observed = match &after {
        Ok(fr) => format!("frame {fr}"),
        Err(e) => e.to_string(),
    };
    let handled = after.as_ref().is_ok_and(|fr| fr["type"] == "error") || after.is_err();
    r.row(
        "GET /ws",
        "binary frame",
        "error frame or close",
        observed,
        handled,
    );

    let mut ws = open().await;
    let bad_utf8 = frame::Frame::message(
        vec![0xC3u8, 0x28, 0xFF],
        frame::coding::OpCode::Data(frame::coding::Data::Text),
        true,
    );
    ws.send_message(Message::Frame(bad_utf8)).await.unwrap();
    let closed = closes(&mut ws).await;
    r.row(
        "GET /ws",
        "text frame of invalid UTF-8",
        "closed",
        format!("{closed:?}"),
        closed.is_ok(),
    );

    let mut ws = open().await;
    let closed = match ws.send_raw("y".repeat(2 * 1024 * 1024)).await {
        Ok(()) => closes(&mut ws).await,
        Err(e) => Ok(format!("refused while sending: {e}")),
    };
    r.row(
        "GET /ws",
        "2 MiB text frame",
        "closed",
        format!("{closed:?}"),
        closed.is_ok(),
    );

    let mut ws = open().await;
    let lives = pong(&mut ws).await;
    ws.close().await;
    r.row(
        "GET /ws",
        "a new socket afterwards",
        "ping answered",
        format!("alive {lives}"),
        lives,
    );
}

/// How the server ended the socket, reading past the frames it had
/// queued before; `Err` with what happened instead (a frame timeout: it
/// never closed).
async fn closes(ws: &mut Ws) -> Result<String, String> {
    for _ in 0..100 {
        if let Err(e) = ws.next().await {
            let e = e.to_string();
            return if e.starts_with("closed") || e.starts_with("socket") {
                Ok(e)
            } else {
                Err(e)
            };
        }
    }
    Err("still open after 100 frames".into())
}

/// Whether the socket answers a ping.
async fn pong(ws: &mut Ws) -> bool {
    ws.send(json!({"type": "ping"})).await.is_ok()
        && ws.until(|f| f["type"] == "pong").await.is_ok()
}
// ------------------------------------------------------------ 4. JWT

async fn jwt(f: &Fixture, table: &[Route], r: &mut Report) {
    r.section(
        "4. JWT attacks",
        "Every authenticated route (REST and the WebSocket upgrade) refuses with 401: no token, garbage, \
         `alg: none`, another key, expired, not yet valid (`nbf`/`iat` in the future), RS256/ES256 headers \
         signed with the HS256 secret (key confusion), a payload tampered to `role: admin`, a service \
         token, a token without `jti`, a logged-out token, and the token of a user deactivated since \
         (`account_deactivated`). Only HS256 is accepted; the user's current role and state are looked up \
         on every request.",
    );
    let csp = f.csp();
    let now = now_s();
    let secret = JWT_SECRET.as_bytes();
    let hs = json!({"alg": "HS256", "typ": "JWT"});
    let admin = claims_of(f.admin());
    let with = |changes: Value| {
        let mut c = admin.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let bob_claims = claims_of(&f.bob.1);
    let mut escalated = bob_claims.clone();
    escalated["role"] = json!("admin");
    let bob_sig = f.bob.1.rsplit('.').next().unwrap();
    let mut no_jti = admin.clone();
    no_jti.as_object_mut().unwrap().remove("jti");

    // A user deactivated after signing in; a token logged out.
    let (dave_id, _, dave) = new_user(csp, f.admin(), "user", None).await;
    let (status, body) = call(
        csp,
        Method::PATCH,
        &format!("/api/v1/users/{dave_id}"),
        Some(f.admin()),
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let logged_out = csp.login().await.unwrap();
    let resp = csp
        .http()
        .post(format!("{}/api/v1/auth/logout", csp.base))
        .header("cookie", format!("csp_token={logged_out}"))
        .header("origin", csp.base.clone())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "logout: {}", resp.status());

    let tokens: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage", Some("not.a.token".into())),
        (
            "alg none",
            Some(format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&admin)
            )),
        ),
        (
            "another key",
            Some(crafted(
                hs.clone(),
                &admin,
                b"some-other-secret-of-enough-length-000",
            )),
        ),
        (
            "expired",
            Some(crafted(
                hs.clone(),
                &with(json!({"iat": now - 7200, "exp": now - 3600})),
                secret,
            )),
        ),
        (
            "not yet valid (nbf, iat in 1 h)",
            Some(crafted(
                hs.clone(),
                &with(json!({"iat": now + 3600, "nbf": now + 3600, "exp": now + 7200})),
                secret,
            )),
        ),
        (
            "RS256 header, HS256 secret as key",
            Some(crafted(
                json!({"alg": "RS256", "typ": "JWT"}),
                &admin,
                secret,
            )),
        ),
        (
            "ES256 header, HS256 secret as key",
            Some(crafted(
                json!({"alg": "ES256", "typ": "JWT"}),
                &admin,
                secret,
            )),
        ),
        (
            "user token, role tampered to admin",
            Some(format!(
                "{}.{}.{bob_sig}",
                f.bob.1.split('.').next().unwrap(),
                b64(&escalated)
            )),
        ),
        (
            "service token",
            Some(crafted(
                hs.clone(),
                &with(json!({"sub": uuid::Uuid::nil().to_string(),
            "svc": "gateway", "name": "gateway"})),
                secret,
            )),
        ),
        ("no jti", Some(crafted(hs.clone(), &no_jti, secret))),
        ("logged out", Some(logged_out)),
        ("deactivated user", Some(dave)),
    ];
    for route in table.iter().filter(|r| matches!(r.access, Access::Role(_))) {
        let Some(inp) = inputs(route, &f.ids, &f.sdp_url) else {
            continue;
        };
        let path = inp.path(route.path);
        for (what, token) in &tokens {
            let auth = token.as_deref().map_or(Auth::Anonymous, Auth::Bearer);
            let body = inp.body.clone().map_or(Payload::Empty, Payload::Json);
            let reply = send(csp, &route.method, &path, auth, body, &[]).await;
            let want = if *what == "deactivated user" {
                "account_deactivated"
            } else {
                "unauthenticated"
            };
            r.row(
                label(route),
                *what,
                format!("401 {want}"),
                reply.observed(),
                reply.status == 401 && reply.code() == want,
            );
        }
    }
    for (what, token) in &tokens {
        let headers: Vec<(&str, String)> = token
            .iter()
            .map(|t| ("authorization", format!("Bearer {t}")))
            .collect();
        let e = csp.ws_with("", &headers).await.err();
        let status = e.as_ref().and_then(upgrade_status);
        r.row(
            "GET /ws (upgrade)",
            *what,
            "401",
            format!("{status:?}"),
            status == Some(401),
        );
    }
}

// ------------------------------------------------------------ 5. CSRF

async fn csrf(f: &Fixture, table: &[Route], r: &mut Report) {
    r.section(
        "5. CSRF and cross-site WebSocket",
        "A POST, PUT, PATCH or DELETE carrying the session cookie must come from an allowed origin \
         (`CSP_ALLOWED_ORIGINS`, by default the gateway's own): a foreign `Origin`, `Origin: null`, no \
         `Origin` at all, or `Sec-Fetch-Site: cross-site` without an allowed Origin → 403 `forbidden`, \
         before the cookie is read. A bearer token needs no Origin (another site's page cannot attach one). \
         The WebSocket upgrade with the cookie needs an allowed Origin alike. Webhooks take no cookie and \
         are exempt. Control: the same cookie from the own origin acts.",
    );
    let csp = f.csp();
    let cookie = Auth::Cookie(f.admin());
    let variants: [(&str, Vec<(&str, String)>); 4] = [
        (
            "cookie, Origin https://evil.example",
            vec![("origin", "https://evil.example".into())],
        ),
        ("cookie, Origin null", vec![("origin", "null".into())]),
        ("cookie, no Origin", vec![]),
        (
            "cookie, Sec-Fetch-Site cross-site",
            vec![("sec-fetch-site", "cross-site".into())],
        ),
    ];
    for route in table.iter().filter(|r| changes_state(r) && !is_webhook(r)) {
        let Some(inp) = inputs(route, &f.ids, &f.sdp_url) else {
            continue;
        };
        let path = inp.path(route.path);
        for (what, headers) in &variants {
            let body = inp.body.clone().map_or(Payload::Empty, Payload::Json);
            let reply = send(csp, &route.method, &path, cookie, body, headers).await;
            r.row(
                label(route),
                *what,
                "403 forbidden",
                reply.observed(),
                reply.status == 403 && reply.code() == "forbidden",
            );
        }
    }
    let reply = send(
        csp,
        &Method::PATCH,
        "/api/v1/tenants/spare",
        cookie,
        Payload::Json(json!({"name": "Spare MSP"})),
        &[("origin", csp.base.clone())],
    )
    .await;
    r.row(
        "PATCH /api/v1/tenants/{tenant_id}",
        "control: cookie from the own origin",
        "200",
        reply.observed(),
        reply.status == 200,
    );
    let cookie_header = ("cookie", format!("csp_token={}", f.alice.1));
    for (what, extra) in [
        (
            "cookie, Origin https://evil.example",
            Some(("origin", "https://evil.example".to_owned())),
        ),
        ("cookie, no Origin", None),
    ] {
        let mut headers = vec![cookie_header.clone()];
        headers.extend(extra);
        let e = csp.ws_with("", &headers).await.err();
        let status = e.as_ref().and_then(upgrade_status);
        r.row(
            "GET /ws (upgrade)",
            what,
            "403",
            format!("{status:?}"),
            status == Some(403),
        );
    }
}

// ------------------------------------------------------------ 6. IDOR

async fn idor(f: &Fixture, r: &mut Report) {
    r.section(
        "6. IDOR across users and tenants",
        "A user reaches only their own sessions: another user's session id answers exactly like an id that \
         does not exist (404, same body), over REST and as a WebSocket reattach; user and grant routes are \
         for admins (403 for users and operators); a user binds a chat only to a tenant granted to them; \
         enhancement jobs are for operators and admins (who see every tenant: the operator role is \
         cross-tenant by design), never for users, granted or not; a feedback link's signature is for its \
         own job and vote only.",
    );
    let csp = f.csp();
    let (alice, bob, olga) = (&f.alice, &f.bob, &f.olga);
    let random = uuid::Uuid::new_v4().to_string();
    let theirs = send(
        csp,
        &Method::GET,
        &format!("/api/v1/sessions/{}/messages", f.alice_session),
        Auth::Bearer(&bob.1),
        Payload::Empty,
        &[],
    )
    .await;
    let nobodys = send(
        csp,
        &Method::GET,
        &format!("/api/v1/sessions/{random}/messages"),
        Auth::Bearer(&bob.1),
        Payload::Empty,
        &[],
    )
    .await;
    r.row(
        "GET /api/v1/sessions/{id}/messages",
        "bob reads alice's session",
        "404, same answer as an unknown id",
        format!("{} vs {}", theirs.observed(), nobodys.observed()),
        theirs.status == 404 && theirs.text == nobodys.text,
    );
    let own = send(
        csp,
        &Method::GET,
        &format!("/api/v1/sessions/{}/messages", f.alice_session),
        Auth::Bearer(&alice.1),
        Payload::Empty,
        &[],
    )
    .await;
    r.row(
        "GET /api/v1/sessions/{id}/messages",
        "control: alice reads her own",
        "200",
        own.observed(),
        own.status == 200,
    );
    let (_, list) = call(csp, Method::GET, "/api/v1/sessions", Some(&bob.1), None).await;
    r.row(
        "GET /api/v1/sessions",
        "bob lists sessions",
        "alice's not listed",
        "-",
        !list.to_string().contains(&f.alice_session),
    );
    for (what, session) in [
        (
            "bob reattaches to alice's session",
            f.alice_session.as_str(),
        ),
        ("bob attaches to an unknown id", random.as_str()),
    ] {
        let e = csp.ws(&bob.1, &format!("session={session}")).await.err();
        let status = e
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "opened".into());
        r.row(
            "GET /ws?session=",
            what,
            "404",
            status.clone(),
            status.contains("404"),
        );
    }
    for (who, token) in [("bob (user)", &bob.1), ("olga (operator)", &olga.1)] {
        for (method, path, body) in [
            (
                Method::PATCH,
                format!("/api/v1/users/{}", alice.0),
                Some(json!({"role": "admin"})),
            ),
            (Method::GET, "/api/v1/users".to_owned(), None),
            (Method::GET, "/api/v1/tenants/acme/grants".to_owned(), None),
            (
                Method::PUT,
                format!("/api/v1/tenants/globex/grants/{}", bob.0),
                None,
            ),
            (
                Method::DELETE,
                format!("/api/v1/tenants/acme/grants/{}", alice.0),
                None,
            ),
            (Method::GET, "/api/v1/tenants/acme".to_owned(), None),
        ] {
            let reply = send(
                csp,
                &method,
                &path,
                Auth::Bearer(token),
                body.map_or(Payload::Empty, Payload::Json),
                &[],
            )
            .await;
            r.row(
                format!("{method} {path}"),
                who,
                "403",
                reply.observed(),
                reply.status == 403,
            );
        }
    }
    let job = &f.ids.job;
    for (who, token) in [
        ("alice (user, granted acme)", &alice.1),
        ("bob (user)", &bob.1),
    ] {
        for (method, path) in [
            (Method::GET, format!("/api/v1/enhancements/{job}")),
            (Method::POST, format!("/api/v1/enhancements/{job}/retry")),
            (
                Method::GET,
                "/api/v1/enhancements?tenant_id=acme".to_owned(),
            ),
            (Method::GET, "/api/v1/admin/sessions".to_owned()),
        ] {
            let reply = send(
                csp,
                &method,
                &path,
                Auth::Bearer(token),
                Payload::Empty,
                &[],
            )
            .await;
            r.row(
                format!("{method} /api/v1/enhancements…"),
                format!("{who}: {path}"),
                "403",
                reply.observed(),
                reply.status == 403,
            );
        }
    }
    let reply = send(
        csp,
        &Method::GET,
        &format!("/api/v1/enhancements/{job}"),
        Auth::Bearer(&olga.1),
        Payload::Empty,
        &[],
    )
    .await;
    r.row(
        "GET /api/v1/enhancements/{job_id}",
        "control: olga (operator) reads acme's job",
        "200",
        reply.observed(),
        reply.status == 200,
    );
    let (_, tenants) = call(csp, Method::GET, "/api/v1/chat/tenants", Some(&bob.1), None).await;
    r.row(
        "GET /api/v1/chat/tenants",
        "bob (no grant)",
        "[]",
        tenants["tenants"].to_string(),
        tenants["tenants"] == json!([]),
    );
    for (who, token, tenant, allowed) in [
        ("alice, granted acme", &alice.1, "acme", true),
        ("alice, not granted globex", &alice.1, "globex", false),
        ("bob, not granted acme", &bob.1, "acme", false),
    ] {
        let opened = csp.ws(token, &format!("tenant={tenant}")).await;
        let observed = match &opened {
            Ok(_) => "opened".to_owned(),
            Err(e) => e.to_string(),
        };
        r.row(
            "GET /ws?tenant=",
            who,
            if allowed { "opens" } else { "refused" },
            observed,
            opened.is_ok() == allowed,
        );
        if let Ok(ws) = opened {
            ws.close().await;
        }
    }
    // Feedback links: job X's signature on job Y, or on the other vote.
    let other_job = f.t.new_ticket("globex", f.secret("globex"), 7002).await;
    for (what, path) in [
        (
            "acme job's signature on a globex job",
            format!("/feedback/{other_job}/helpful?sig={}", f.ids.feedback_sig),
        ),
        (
            "the helpful signature on not_helpful",
            format!("/feedback/{job}/not_helpful?sig={}", f.ids.feedback_sig),
        ),
        (
            "a signature for an unknown job",
            format!(
                "/feedback/{random}/helpful?sig={}",
                feedback_signature(&random)
            ),
        ),
    ] {
        let reply = send(
            csp,
            &Method::GET,
            &path,
            Auth::Anonymous,
            Payload::Empty,
            &[],
        )
        .await;
        let want = if what.contains("unknown") { 404 } else { 403 };
        r.row(
            "GET /feedback/{job_id}/{vote}",
            what,
            want.to_string(),
            reply.observed(),
            reply.status == want,
        );
    }
}

// ------------------------------------------------------------ 9. headers

async fn headers(f: &Fixture, r: &mut Report) {
    r.section(
        "9. Header injection and security headers",
        "CR/LF in anything a response header could be built from (the request id / `traceparent`, a path or \
         query value, a login name) never adds a response header: the request id is always 32 hex digits of \
         the server's own. Every response — HTML, API, errors, static files, webhooks, feedback pages, \
         metrics — carries `Content-Security-Policy` with `frame-ancestors 'none'`, `X-Content-Type-Options: \
         nosniff` and `Referrer-Policy: no-referrer`; file downloads carry a fixed `Content-Disposition`.",
    );
    let csp = f.csp();
    let injected = |head: &str| {
        head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("x-injected") || (l.starts_with("set-cookie") && l.contains("evil"))
        })
    };
    let request_id_ok = |head: &str| {
        head.lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-request-id:")
                    .map(|v| v.trim().to_owned())
            })
            .is_some_and(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "X-Request-Id with encoded CR/LF",
            get_request(
                "/api/v1/health/live",
                "X-Request-Id: a%0d%0aX-Injected: 1\r\n",
            ),
        ),
        (
            "traceparent followed by an injected line",
            get_request(
                "/api/v1/health/live",
                "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Injected: 1\r\n",
            ),
        ),
        (
            "traceparent with a bare CR",
            get_request(
                "/api/v1/health/live",
                "traceparent: 00-4bf92f3577b34da6\rX-Injected: 1\r\n",
            ),
        ),
        (
            "traceparent with encoded CR/LF",
            get_request(
                "/api/v1/health/live",
                "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736%0d%0aSet-Cookie:evil=1-00f067aa0ba902b7-01\r\n",
            ),
        ),
        (
            "encoded CR/LF in a path",
            get_request("/api/v1/tenants/a%0d%0aSet-Cookie:%20evil=1", ""),
        ),
        (
            "encoded CR/LF in the CSV export's query",
            get_request(
                "/api/v1/enhancements/export.csv?tenant_id=a%0d%0aSet-Cookie:%20evil=1",
                "",
            ),
        ),
        (
            "encoded CR/LF in a feedback link",
            get_request(
                "/feedback/x%0d%0aSet-Cookie:%20evil=1/helpful?sig=a%0d%0aX-Injected:1",
                "",
            ),
        ),
    ];
    for (what, request) in cases {
        let (status, head, _) = raw(csp, &request).await;
        let clean = !injected(&head) && (status == 400 || request_id_ok(&head));
        r.row(
            "raw HTTP",
            what,
            "no injected header; own request id",
            format!("{status}"),
            status != 0 && status < 500 && clean,
        );
    }
    let reply = send(
        csp,
        &Method::POST,
        "/api/v1/auth/login",
        Auth::Anonymous,
        Payload::Json(
            json!({"username": "x\r\nSet-Cookie: evil=1", "password": "x\r\nX-Injected: 1"}),
        ),
        &[],
    )
    .await;
    let leaked = reply.headers.keys().any(|k| k.as_str() == "x-injected")
        || reply
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap_or("").contains("evil"));
    r.row(
        "POST /api/v1/auth/login",
        "CR/LF in username and password",
        "401, no injected header",
        reply.observed(),
        reply.status == 401 && !leaked,
    );
    let export = send(
        csp,
        &Method::GET,
        "/api/v1/enhancements/export.csv",
        Auth::Bearer(f.admin()),
        Payload::Empty,
        &[],
    )
    .await;
    let disposition = export
        .headers
        .get("content-disposition")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    r.row(
        "GET /api/v1/enhancements/export.csv",
        "Content-Disposition",
        "attachment; filename=\"csp-enhancements.csv\"",
        format!("{disposition:?}"),
        disposition.as_deref() == Some("attachment; filename=\"csp-enhancements.csv\""),
    );

    let admin = Auth::Bearer(f.admin());
    let pages: Vec<(&str, Method, String, Auth)> = vec![
        (
            "the web app (HTML)",
            Method::GET,
            "/".into(),
            Auth::Anonymous,
        ),
        (
            "a web app route (HTML fallback)",
            Method::GET,
            "/tenants".into(),
            Auth::Anonymous,
        ),
        (
            "a static file",
            Method::GET,
            "/app.js".into(),
            Auth::Anonymous,
        ),
        ("API JSON", Method::GET, "/api/v1/me".into(), admin),
        ("API 401", Method::GET, "/api/v1/me".into(), Auth::Anonymous),
        ("API 404", Method::GET, "/api/v1/nothing".into(), admin),
        (
            "CSV export",
            Method::GET,
            "/api/v1/enhancements/export.csv".into(),
            admin,
        ),
        (
            "webhook 401",
            Method::POST,
            "/webhook/servicedesk_plus/acme".into(),
            Auth::Anonymous,
        ),
        (
            "feedback page",
            Method::GET,
            format!("/feedback/{}/helpful?sig=00", f.ids.job),
            Auth::Anonymous,
        ),
        ("metrics", Method::GET, "/metrics".into(), admin),
        (
            "probe",
            Method::GET,
            "/api/v1/health/live".into(),
            Auth::Anonymous,
        ),
    ];
    for (what, method, path, auth) in pages {
        let reply = send(csp, &method, &path, auth, Payload::Empty, &[]).await;
        let h = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (policy, nosniff, referrer) = (
            h("content-security-policy"),
            h("x-content-type-options"),
            h("referrer-policy"),
        );
        let framing = policy.contains("frame-ancestors 'none'")
            || h("x-frame-options").eq_ignore_ascii_case("deny");
        r.row(
            format!("{method} {path}"),
            what,
            "CSP frame-ancestors 'none', nosniff, no-referrer",
            format!(
                "{}; csp {}; nosniff {}; referrer {referrer}",
                reply.status,
                if framing { "ok" } else { "missing" },
                nosniff
            ),
            framing && nosniff == "nosniff" && referrer == "no-referrer",
        );
    }
}

// ------------------------------------------------------------ 8. brute force

async fn brute_force(f: &Fixture, r: &mut Report) {
    r.section(
        "8. Login brute force",
        format!(
            "Run with `CSP_LOGIN_MAX_FAILURES_PER_ACCOUNT={LOGIN_ACCOUNT_LIMIT}`, \
             `CSP_LOGIN_MAX_FAILURES_PER_ADDRESS={LOGIN_ADDRESS_LIMIT}`, `CSP_LOGIN_LOCKOUT_BASE_SECONDS={LOCKOUT_SECONDS}` \
             (defaults 5, 20, 1; the rule is `docs/policy.md`'s): from the N-th counted attempt on one account \
             (or the N-th failure from one address) within 15 minutes, every further attempt waits \
             base × 2^(n − N): it is answered 429 `too_many_login_attempts` with `Retry-After` (whole seconds), \
             checks no password, and the right password is refused alike until the wait is over. Other \
             accounts and addresses are not affected."
        ),
    );
    let csp = f.csp();
    let (_, victim, _) = new_user(csp, f.admin(), "user", None).await;
    let login = |user: String, password: &'static str, address: &'static str| async move {
        send(
            csp,
            &Method::POST,
            "/api/v1/auth/login",
            Auth::Anonymous,
            Payload::Json(json!({"username": user, "password": password})),
            &[("x-forwarded-for", address.to_owned())],
        )
        .await
    };
    let retry_after = |reply: &Reply| {
        reply
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    };
    let locked = |reply: &Reply| {
        reply.status == 429
            && reply.code() == "too_many_login_attempts"
            && retry_after(reply).is_some_and(|s| (1..=LOCKOUT_SECONDS).contains(&s))
    };
    // Each guess from its own address: only the account counts.
    let addresses = [
        "10.250.0.1",
        "10.250.0.2",
        "10.250.0.3",
        "10.250.0.4",
        "10.250.0.5",
    ];
    for (i, address) in addresses
        .iter()
        .take(LOGIN_ACCOUNT_LIMIT as usize)
        .enumerate()
    {
        let reply = login(victim.clone(), "wrong-password", address).await;
        r.row(
            "POST /api/v1/auth/login",
            format!("account: wrong password #{}", i + 1),
            "401 bad_credentials",
            reply.observed(),
            reply.status == 401 && reply.code() == "bad_credentials",
        );
    }
    let reply = login(victim.clone(), "wrong-password", addresses[3]).await;
    r.row(
        "POST /api/v1/auth/login",
        format!("account: attempt #{} (wrong)", LOGIN_ACCOUNT_LIMIT + 1),
        "429 + Retry-After",
        format!("{} retry-after {:?}", reply.observed(), retry_after(&reply)),
        locked(&reply),
    );
    let reply = login(victim.clone(), PASSWORD, addresses[4]).await;
    r.row(
        "POST /api/v1/auth/login",
        "account: the right password during the wait",
        "429 + Retry-After",
        format!("{} retry-after {:?}", reply.observed(), retry_after(&reply)),
        locked(&reply),
    );
    let reply = login(f.olga_name.clone(), PASSWORD, "10.250.1.1").await;
    r.row(
        "POST /api/v1/auth/login",
        "another account meanwhile",
        "200",
        reply.observed(),
        reply.status == 200,
    );

    // One address, a new name each time: only the address counts.
    for i in 0..LOGIN_ADDRESS_LIMIT {
        let reply = login(unique("nobody"), "wrong-password", "10.251.0.1").await;
        r.row(
            "POST /api/v1/auth/login",
            format!("address: failure #{} (unknown names)", i + 1),
            "401 bad_credentials",
            reply.observed(),
            reply.status == 401,
        );
    }
    let reply = login("admin".into(), csp_e2e::ADMIN_PASSWORD, "10.251.0.1").await;
    r.row(
        "POST /api/v1/auth/login",
        "address: the right admin password from it",
        "429 + Retry-After",
        format!("{} retry-after {:?}", reply.observed(), retry_after(&reply)),
        locked(&reply),
    );
    let reply = login("admin".into(), csp_e2e::ADMIN_PASSWORD, "10.251.0.2").await;
    r.row(
        "POST /api/v1/auth/login",
        "another address meanwhile",
        "200",
        reply.observed(),
        reply.status == 200,
    );
}
