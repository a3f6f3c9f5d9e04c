//! Ticket enhancement end to end (issue 14): the real binary in both modes,
//! a fake ServiceDesk Plus (`csp-mock-ticketing`) and the scripted model.
//! Signed webhooks in, one internal note per job out; every rejection's
//! exact answer; the model down; ServiceDesk Plus failing; a worker killed
//! mid-job; NATS restarted; tenant isolation; an import run twice.

use crate::throwaway_nats::{free_port, nats_server, port_open};
use csp_e2e::{Csp, Mode, Options};
use csp_mock_llm::MockLlm;
use csp_mock_ticketing::{MockRequest, MockSdp, NoteFault, RunningMock};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The ServiceDesk Plus technician key every tenant here is given; the fake
/// server checks it.
const SDP_KEY: &str = "e2e-technician-key";
/// The open ticket the happy paths enhance.
const SUBJECT: &str = "VPN keeps disconnecting";
const DESCRIPTION: &str = "Since this morning the VPN client of user jdoe disconnects every few minutes. The VPN gateway at 10.0.0.1 logs certificate errors.";
pub(crate) const KB_TITLE: &str = "Renewing VPN client certificates";
const KB_URL: &str = "https://kb.acme.example/vpn-client-certificates";
pub(crate) const HOST: &str = "vpn-gw-01";
/// How long any job may take to reach a final state here.
const JOB_DEADLINE: Duration = Duration::from_secs(90);
/// `CSP_PUBLIC_URL` of the happy path: where the feedback links of notes
/// lead. Not this instance's address (its port is picked at start): a test
/// follows a link at the same path on the instance.
const PUBLIC_URL: &str = "https://csp-public.example";

/// A running instance with ticket enhancement, the model it uses and an
/// admin token.
pub(crate) struct Tickets {
    pub(crate) csp: Csp,
    pub(crate) admin: String,
    /// The scripted model's base URL (`/_mock/log`, `/_mock/default`).
    model: String,
    /// `csp dev`'s model, started here (distributed mode has `csp mock-llm`).
    _llm: Option<MockLlm>,
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) async fn start(mode: Mode, extra: &[(&str, &str)]) -> Tickets {
    // Dev: a model of this test's own, so its log can be read; distributed:
    // the instance's `csp mock-llm`, which the worker process is given.
    let llm = match mode {
        Mode::Dev => Some(
            MockLlm::start(csp_mock_llm::Options::default())
                .await
                .unwrap(),
        ),
        Mode::Distributed => None,
    };
    let mut vars = env(extra);
    if let Some(m) = &llm {
        vars.push(("ANTHROPIC_BASE_URL".into(), m.base_url()));
        vars.push(("ANTHROPIC_API_KEY".into(), "e2e-test-key".into()));
    }
    let csp = Csp::start(
        mode,
        Options {
            prewarm: 0,
            env: vars,
            tickets: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let admin = csp.login().await.unwrap();
    let model = match &llm {
        Some(m) => m.base_url(),
        None => csp.mock_url().expect("distributed mode runs csp mock-llm"),
    };
    Tickets {
        csp,
        admin,
        model,
        _llm: llm,
    }
}

/// An instance the caller started in distributed mode with
/// [`Options::tickets`] (e.g. with replicas); its model is the instance's
/// `csp mock-llm`.
pub(crate) async fn adopt(csp: Csp) -> Tickets {
    let admin = csp.login().await.unwrap();
    let model = csp.mock_url().expect("distributed mode runs csp mock-llm");
    Tickets {
        csp,
        admin,
        model,
        _llm: None,
    }
}

/// A fake ServiceDesk Plus with `resolved` seeded tickets and `open` ones.
pub(crate) async fn sdp(resolved: usize, open: &[u64]) -> RunningMock {
    // Seeded first, so the seeded ids start at FIRST_SEED_ID.
    let mock = MockSdp::builder()
        .authtoken(SDP_KEY)
        .resolved(resolved)
        .hang_for(Duration::from_secs(120))
        .build();
    for id in open {
        assert!(mock.insert(MockRequest::open(*id, SUBJECT, DESCRIPTION, "High")));
    }
    RunningMock::start(mock).await.unwrap()
}

pub(crate) fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A webhook's answer: status, `Retry-After`, body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: Value,
}

impl Tickets {
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .csp
            .http()
            .request(method, format!("{}{path}", self.csp.base))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates an active tenant on `sdp_url`; returns its webhook secret.
    pub(crate) async fn tenant(&self, id: &str, sdp_url: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/tenants",
                Some(json!({
                    "tenant_id": id, "name": format!("{id} MSP"), "tool_type": "servicedesk_plus",
                    "servicedesk_url": sdp_url, "api_key": SDP_KEY,
                    "enhancement_preferences": {"sources": ["ticket_history", "kb", "ip_inventory"],
                        "note_format": "html", "max_words": 500, "mask_pii": false}
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["api_key"], "[REDACTED]", "{body}");
        assert!(
            body["webhook_url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/webhook/servicedesk_plus/{id}")),
            "{body}"
        );
        body["webhook_secret"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn context(&self, tenant: &str) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/tenants/{tenant}/kb-articles"),
                Some(json!([{"title": KB_TITLE,
                    "summary": "An expired VPN client certificate makes the tunnel drop every few minutes; renew it.",
                    "url": KB_URL,
                    "body": "Check the certificate expiry in the VPN client and request a new certificate."}])),
            )
            .await;
        assert_eq!(status, 200, "{body}\n{}", self.logs());
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/tenants/{tenant}/inventory"),
                Some(
                    json!([{"ip": "10.0.0.1", "hostname": HOST, "role": "VPN gateway",
                    "client": "Acme", "location": "HQ, rack 2"}]),
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Posts raw bytes to a webhook path with the given signature headers.
    pub(crate) async fn deliver(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Answer {
        let mut req = self
            .csp
            .http()
            .post(format!("{}{path}", self.csp.base))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        Answer {
            status,
            retry_after,
            body: resp.json().await.unwrap_or(Value::Null),
        }
    }

    /// A delivery signed with `secret` at `ts`, as ServiceDesk Plus signs it.
    pub(crate) async fn signed_at(&self, path: &str, secret: &str, ts: i64, body: &[u8]) -> Answer {
        let sig = csp_ticketing::webhook::sign(secret.as_bytes(), ts, body);
        self.deliver(
            path,
            body.to_vec(),
            &[
                ("x-servicedesk-timestamp", ts.to_string()),
                ("x-servicedesk-signature", sig),
            ],
        )
        .await
    }

    pub(crate) async fn signed(&self, path: &str, secret: &str, body: &Value) -> Answer {
        self.signed_at(path, secret, now_s(), body.to_string().as_bytes())
            .await
    }

    /// The tails of the logs of the processes that answer webhooks, for
    /// failure messages.
    fn logs(&self) -> String {
        ["dev", "gateway", "tickets"]
            .map(|name| format!("--- {name}:\n{}", self.csp.log_tail(name)))
            .join("\n")
    }

    /// A new ticket's webhook; returns its job id (asserting the 202).
    pub(crate) async fn new_ticket(&self, tenant: &str, secret: &str, ticket: u64) -> String {
        let a = self
            .signed(
                &format!("/webhook/servicedesk_plus/{tenant}"),
                secret,
                &new_ticket_body(ticket),
            )
            .await;
        assert_eq!(a.status, 202, "{}\n{}", a.body, self.logs());
        assert_eq!(a.body["status"], "queued", "{}", a.body);
        a.body["job_id"].as_str().unwrap().to_owned()
    }

    /// A resolved ticket for the history, through the signed webhook.
    pub(crate) async fn resolved(
        &self,
        tenant: &str,
        secret: &str,
        ticket: &str,
        description: &str,
    ) {
        let a = self
            .signed(
                &format!("/webhook/servicedesk_plus/{tenant}/resolved"),
                secret,
                &json!({"ticket_id": ticket, "description": description,
                    "resolution": "Renewed the expired VPN client certificate; the tunnel stays up.",
                    "resolved_date": "2026-01-05T10:00:00Z", "tags": ["vpn"]}),
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.body);
        assert_eq!(a.body["status"], "stored", "{}", a.body);
    }

    async fn job(&self, job_id: &str) -> Value {
        let (status, job) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/enhancements/{job_id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{job}");
        job
    }

    /// Polls the job until it is completed or failed.
    async fn finished(&self, job_id: &str) -> Value {
        let deadline = Instant::now() + JOB_DEADLINE;
        loop {
            let job = self.job(job_id).await;
            if job["status"] == "completed" || job["status"] == "failed" {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} never finished: {job}\n{}",
                self.csp
                    .all_logs()
                    .lines()
                    .rev()
                    .take(60)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The jobs of one tenant (first page) and their total.
    pub(crate) async fn jobs_of(&self, tenant: &str) -> (Vec<Value>, u64) {
        let (status, page) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/enhancements?tenant_id={tenant}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        (
            page["enhancements"].as_array().unwrap().clone(),
            page["total"].as_u64().unwrap(),
        )
    }

    /// The model calls that carried the enhancement prompt.
    async fn model_calls(&self) -> Vec<Value> {
        let log: Value = reqwest::get(format!("{}/_mock/log", self.model))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["method"] == "POST"
                    && e["path"] == "/v1/messages"
                    && system_text(&e["body"]).contains(csp_enhance::SYSTEM_PROMPT_FIRST_LINE)
            })
            .cloned()
            .collect()
    }

    /// `csp tickets import` for `tenant` (last 90 days); its stdout.
    async fn import(&self, tenant: &str) -> String {
        let out = self
            .csp
            .run_cli(&["tickets", "import", "--tenant-id", tenant, "--days", "90"])
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "import failed ({:?}): {stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub(crate) async fn stop(self) {
        self.csp.stop().await;
    }
}

pub(crate) fn new_ticket_body(ticket: u64) -> Value {
    json!({"ticket_id": ticket.to_string(), "subject": SUBJECT, "description": DESCRIPTION,
        "priority": "High", "created_at": "2026-03-01T09:00:00Z", "unknown_extra": true})
}

/// The system prompt of a Messages API body: a string or text blocks.
fn system_text(body: &Value) -> String {
    match &body["system"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// The user text of a Messages API body.
fn user_text(body: &Value) -> String {
    let mut out = String::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        match &m["content"] {
            Value::String(s) => out.push_str(s),
            Value::Array(blocks) => {
                for b in blocks {
                    out.push_str(b["text"].as_str().unwrap_or_default());
                }
            }
            _ => {}
        }
    }
    out
}

/// The four seed sections, as Markdown headings or rendered `<h2>`s, in order.
fn assert_four_sections(note: &str) {
    let mut at = 0;
    for heading in csp_enhance::SECTIONS {
        let title = heading.trim_start_matches("## ");
        let found = [heading.to_owned(), format!("<h2>{title}</h2>")]
            .iter()
            .filter_map(|h| note[at..].find(h.as_str()).map(|i| at + i + h.len()))
            .min();
        at = found.unwrap_or_else(|| panic!("section {heading:?} missing or out of order: {note}"));
    }
}

/// Ids of the seeded resolved tickets about the VPN (topic 1 of 8).
fn seeded_vpn_ids(count: u64) -> Vec<u64> {
    (0..count)
        .filter(|n| n % 8 == 1)
        .map(|n| csp_mock_ticketing::FIRST_SEED_ID + n)
        .collect()
}

/// Rows of `tenant`'s ticket history, read from the database itself.
pub(crate) async fn history_rows(csp: &Csp, tenant: &str) -> i64 {
    use sqlx::Connection;
    let url = csp.database_url();
    let sql = "SELECT COUNT(*) FROM ticket_history WHERE tenant_id = $1";
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM ticket_history WHERE tenant_id = ?1")
            .bind(tenant)
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(tenant)
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

// ------------------------------------------------------------ 1. happy path

/// Tenant, context, imported history, a signed webhook → 202 → one note on
/// the fake ServiceDesk Plus in the four seed sections citing the similar
/// ticket, the article and the host; the model saw the seed prompt and that
/// context.
async fn happy_path(mode: Mode) {
    let t = start(mode, &[("CSP_PUBLIC_URL", PUBLIC_URL)]).await;
    let sdp = sdp(16, &[900001]).await;
    let secret = t.tenant("acme", &sdp.base_url()).await;
    t.context("acme").await;
    let out = t.import("acme").await;
    assert!(out.contains("16 tickets imported"), "{out}");

    let job_id = t.new_ticket("acme", &secret, 900001).await;
    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(job["ticket_id"], "900001", "{job}");
    assert_eq!(job["tenant_id"], "acme", "{job}");
    assert!(job["error_message"].is_null(), "{job}");
    assert!(job["cost_usd"].as_f64().unwrap() > 0.0, "{job}");
    assert_eq!(job["correlation_id"].as_str().unwrap().len(), 32, "{job}");

    let notes = sdp.mock().notes_for(900001);
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert!(!note.show_to_requester, "{note:?}");
    assert_eq!(job["note_id"], note.id.to_string(), "{job}");
    assert_four_sections(&note.description);
    let vpn = seeded_vpn_ids(16);
    let cited = vpn
        .iter()
        .find(|id| note.description.contains(&id.to_string()))
        .unwrap_or_else(|| {
            panic!(
                "the note cites none of the similar tickets {vpn:?}: {}",
                note.description
            )
        });
    assert!(note.description.contains(KB_TITLE), "{}", note.description);
    assert!(note.description.contains(HOST), "{}", note.description);
    assert!(
        note.description.contains("10.0.0.1"),
        "{}",
        note.description
    );
    assert_feedback_links_work(&t, &job_id, &note.description).await;
    // The context is stored on the job.
    let ctx = job["context_gathered"].to_string();
    assert!(
        ctx.contains(&cited.to_string()) && ctx.contains(HOST) && ctx.contains(KB_URL),
        "{ctx}"
    );

    // Exactly one model call, with the seed's system prompt verbatim and
    // the gathered context in the seed's template.
    let calls = t.model_calls().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let body = &calls[0]["body"];
    assert_eq!(
        system_text(body).trim(),
        csp_enhance::ENHANCEMENT_SYSTEM_PROMPT.trim()
    );
    assert_eq!(body["max_tokens"], 1000, "{body}");
    assert_eq!(body["temperature"], 0.3, "{body}");
    let user = user_text(body);
    for part in [
        "Ticket ID: 900001".to_owned(),
        "### Similar Tickets Found:".to_owned(),
        format!("- Ticket {cited}"),
        KB_TITLE.to_owned(),
        HOST.to_owned(),
        "No monitoring data available.".to_owned(),
    ] {
        assert!(user.contains(&part), "{part:?} not in the prompt: {user}");
    }

    // The dashboard and the workers (issue 16): the worker that did the job
    // heartbeats into the shared cache; a user is refused both.
    operations_pages(&t).await;
    // The History's export and the Operations page (issue 16 items 4, 5).
    history_export_and_operations(&t, &job_id).await;
    sdp.shutdown().await;
    t.stop().await;
}

/// The Operations page's list: the audit log's operations, newest first.
async fn operations_list(t: &Tickets) -> Vec<Value> {
    let (status, page) = t
        .call(
            reqwest::Method::GET,
            "/api/v1/admin/audit-log?tool_name=tickets.pause,tickets.resume,tickets.clear_queue,tickets.reload_configs,tickets.retry",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().unwrap().clone()
}

/// Polls the operations list until its newest entry is `action` (audit
/// events reach the log through the queue).
async fn newest_operation(t: &Tickets, action: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = operations_list(t).await;
        if let Some(first) = list.first()
            && first["tool_name"] == action
        {
            return first.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{action} is not the newest operation: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The completed job is in the CSV export; pause, resume, reload and clear
/// through REST are each listed with the admin who did them.
async fn history_export_and_operations(t: &Tickets, job_id: &str) {
    let resp = t
        .csp
        .http()
        .get(format!(
            "{}/api/v1/enhancements/export.csv?tenant_id=acme&status=completed",
            t.csp.base
        ))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/csv; charset=utf-8",
        "{:?}",
        resp.headers()
    );
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
    );
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "job_id,tenant_id,ticket_id,status,attempts,processing_time_ms,cost_usd,created_at,completed_at,error_message"
        )
    );
    let row = lines
        .find(|l| l.starts_with(job_id))
        .unwrap_or_else(|| panic!("job {job_id} not in the export: {csv}"));
    assert!(row.contains(",acme,900001,completed,1,"), "{row}");
    // Filtered: no failed job in a `completed` export.
    assert!(!csv.contains(",failed,"), "{csv}");

    for (paused, action) in [(true, "tickets.pause"), (false, "tickets.resume")] {
        let (status, state) = t
            .call(
                reqwest::Method::PUT,
                "/api/v1/tickets/processing",
                Some(json!({"paused": paused})),
            )
            .await;
        assert_eq!(status, 200, "{state}");
        assert_eq!(state["paused"], paused, "{state}");
        let op = newest_operation(t, action).await;
        assert_eq!(op["username"], "admin", "{op}");
        assert_eq!(op["result_status"], "success", "{op}");
    }
    let (status, reloaded) = t
        .call(
            reqwest::Method::POST,
            "/api/v1/tickets/configs/reload",
            None,
        )
        .await;
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded, json!({"reloaded": true}));
    newest_operation(t, "tickets.reload_configs").await;
    let (status, cleared) = t
        .call(reqwest::Method::POST, "/api/v1/tickets/queue/clear", None)
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared, json!({"cleared": 0}), "nothing was pending");
    let op = newest_operation(t, "tickets.clear_queue").await;
    assert_eq!(
        serde_json::from_str::<Value>(op["sanitized_input"].as_str().unwrap()).unwrap()["cleared"],
        0,
        "{op}"
    );
    // Only the operations: the job's own audit rows are not in the list.
    let list = operations_list(t).await;
    assert!(
        list.iter()
            .all(|e| e["tool_name"].as_str().unwrap().starts_with("tickets.")),
        "{list:?}"
    );
    let newest: Vec<&str> = list
        .iter()
        .take(4)
        .map(|e| e["tool_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        newest,
        [
            "tickets.clear_queue",
            "tickets.reload_configs",
            "tickets.resume",
            "tickets.pause"
        ],
        "newest first"
    );
}

/// `GET /api/v1/tickets/dashboard` and `/workers` after a completed job.
async fn operations_pages(t: &Tickets) {
    let (status, d) = t
        .call(reqwest::Method::GET, "/api/v1/tickets/dashboard", None)
        .await;
    assert_eq!(status, 200, "{d}");
    let health = d["status"].as_str().unwrap_or_default();
    assert!(["healthy", "degraded", "down"].contains(&health), "{d}");
    assert!(d["active_workers"].as_u64().unwrap_or(0) >= 1, "{d}");
    assert!(d["completed_24h"].as_u64().unwrap_or(0) >= 1, "{d}");
    let deps = d["dependencies"].as_array().expect("dependencies");
    assert_eq!(deps.len(), 3, "{d}");
    assert!(deps.iter().all(|x| x["ok"] == true), "{d}");
    let (status, w) = t
        .call(reqwest::Method::GET, "/api/v1/tickets/workers", None)
        .await;
    assert_eq!(status, 200, "{w}");
    let workers = w["workers"].as_array().expect("workers");
    assert!(!workers.is_empty(), "{w}");
    assert!(workers.iter().any(|x| x["status"] != "unresponsive"), "{w}");
    let (_, _, user) = crate::governance::new_user(&t.csp, &t.admin, "user", None).await;
    for path in ["/api/v1/tickets/dashboard", "/api/v1/tickets/workers"] {
        let (status, body) = t.csp.get(&user, path).await.unwrap();
        assert_eq!(status, 403, "{path}: {body}");
    }
}

/// The note ends with "Was this helpful?" and its two signed links; the 👍
/// one, followed without a login, records `helpful` on the job and answers
/// a page; a tampered one is refused; the operators' summary counts it.
async fn assert_feedback_links_work(t: &Tickets, job_id: &str, note: &str) {
    let at = note
        .find("Was this helpful?")
        .unwrap_or_else(|| panic!("no feedback links in the note: {note}"));
    let links: Vec<&str> = note[at..]
        .split("href=\"")
        .skip(1)
        .take(2)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    let [helpful, not_helpful] = links[..] else {
        panic!("{links:?}")
    };
    for (link, vote) in [(helpful, "helpful"), (not_helpful, "not_helpful")] {
        assert!(
            link.starts_with(&format!("{PUBLIC_URL}/feedback/{job_id}/{vote}?sig=")),
            "{link}"
        );
    }
    assert!(
        note.find(&format!("csp-job:{job_id}")).unwrap() > at,
        "{note}"
    );
    let follow = |link: &str| {
        let url = format!("{}{}", t.csp.base, link.strip_prefix(PUBLIC_URL).unwrap());
        let http = t.csp.http();
        async move {
            let resp = http.get(url).send().await.unwrap();
            let status = resp.status().as_u16();
            let csp = resp
                .headers()
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (status, csp, resp.text().await.unwrap())
        }
    };
    assert!(t.job(job_id).await["feedback"].is_null());
    let (status, csp, page) = follow(helpful).await;
    assert_eq!(status, 200, "{page}\n{}", t.logs());
    assert!(
        page.contains("your vote was recorded (👍 helpful)"),
        "{page}"
    );
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let job = t.job(job_id).await;
    assert_eq!(job["feedback"], "helpful", "{job}");
    assert!(job["feedback_at"].is_string(), "{job}");
    // One changed character of the signature: refused, nothing recorded.
    let mut tampered = helpful.to_owned();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(tampered.len() - 1.., last);
    let (status, _, page) = follow(&tampered).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("This feedback link is not valid."), "{page}");
    assert_eq!(t.job(job_id).await["feedback"], "helpful");
    let (status, summary) = t
        .call(reqwest::Method::GET, "/api/v1/enhancements/feedback", None)
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary,
        json!({"tenants": [{"tenant_id": "acme", "helpful": 1, "not_helpful": 0, "helpful_rate": 1.0}]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_happy_path_dev() {
    happy_path(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_happy_path_distributed() {
    happy_path(Mode::Distributed).await;
}

// ------------------------------------------------------------ 2. rejections

/// Every refusal of the issue with its exact answer, and nothing recorded
/// by any of them.
async fn rejections(mode: Mode) {
    let t = start(mode, &[]).await;
    let sdp = sdp(0, &[]).await;
    let a = t.tenant("tenant-a", &sdp.base_url()).await;
    let b = t.tenant("tenant-b", &sdp.base_url()).await;
    let gone = t.tenant("tenant-gone", &sdp.base_url()).await;
    let flood = t.tenant("tenant-flood", &sdp.base_url()).await;
    let path_a = "/webhook/servicedesk_plus/tenant-a";
    let body = new_ticket_body(4242).to_string().into_bytes();
    let code = |a: &Answer| {
        a.body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // Bad signature, missing signature, a stale timestamp (301 s), B's secret.
    let bad = t.signed_at(path_a, "not-the-secret", now_s(), &body).await;
    assert_eq!(
        (bad.status, code(&bad)),
        (401, "webhook_signature_invalid".into()),
        "{}",
        bad.body
    );
    let missing = t.deliver(path_a, body.clone(), &[]).await;
    assert_eq!(
        (missing.status, code(&missing)),
        (401, "webhook_signature_invalid".into()),
        "{}",
        missing.body
    );
    let stale = t.signed_at(path_a, &a, now_s() - 301, &body).await;
    assert_eq!(
        (stale.status, code(&stale)),
        (401, "webhook_signature_invalid".into()),
        "{}",
        stale.body
    );
    let crossed = t.signed_at(path_a, &b, now_s(), &body).await;
    assert_eq!(
        (crossed.status, code(&crossed)),
        (401, "webhook_signature_invalid".into()),
        "{}",
        crossed.body
    );

    // Each refused signature is a security event in the audit log (tenant,
    // source address, reason), never with the secret.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, log) = t
            .call(reqwest::Method::GET, "/api/v1/admin/audit-log", None)
            .await;
        assert_eq!(status, 200, "{log}");
        let denied: Vec<&Value> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["tool_name"] == "tickets.webhook_signature_invalid")
            .collect();
        assert!(
            !log.to_string().contains(&a) && !log.to_string().contains(&b),
            "a secret in the audit log"
        );
        if denied.len() >= 4 {
            for e in denied {
                assert_eq!(e["result_status"], "denied", "{e}");
                let input = e["sanitized_input"].to_string();
                assert!(
                    input.contains("tenant-a") && input.contains("127.0.0.1"),
                    "{e}"
                );
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no security events in the audit log: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A repeated delivery: the first job, nothing new.
    let ts = now_s();
    let first = t.signed_at(path_a, &a, ts, &body).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.body["status"], "queued");
    let again = t.signed_at(path_a, &a, ts, &body).await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["job_id"], first.body["job_id"], "{}", again.body);

    // 10,001 characters of description.
    let long = json!({"ticket_id": "4243", "subject": "long", "description": "x".repeat(10_001),
        "priority": "High"});
    let too_long = t.signed(path_a, &a, &long).await;
    assert_eq!(
        (too_long.status, code(&too_long)),
        (400, "invalid_webhook".into()),
        "{}",
        too_long.body
    );
    assert!(
        too_long.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("description"),
        "{}",
        too_long.body
    );
    let exactly = json!({"ticket_id": "4244", "subject": "long", "description": "x".repeat(10_000),
        "priority": "High"});
    assert_eq!(t.signed(path_a, &a, &exactly).await.status, 202);

    // A body over 256 KiB.
    let huge = json!({"ticket_id": "4245", "subject": "big", "description": "y",
        "priority": "High", "padding": "z".repeat(256 * 1024)});
    let big = t.signed(path_a, &a, &huge).await;
    assert_eq!(
        (big.status, code(&big)),
        (413, "payload_too_large".into()),
        "{}",
        big.body
    );

    // Unknown and inactive tenants: the same 404.
    let unknown = t
        .signed(
            "/webhook/servicedesk_plus/no-such-tenant",
            &a,
            &new_ticket_body(1),
        )
        .await;
    assert_eq!(
        (unknown.status, code(&unknown)),
        (404, "tenant_not_found".into()),
        "{}",
        unknown.body
    );
    let (status, deleted) = t
        .call(reqwest::Method::DELETE, "/api/v1/tenants/tenant-gone", None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["is_active"], false, "{deleted}");
    let inactive = t
        .signed(
            "/webhook/servicedesk_plus/tenant-gone",
            &gone,
            &new_ticket_body(1),
        )
        .await;
    assert_eq!(inactive.status, 404, "{}", inactive.body);
    assert_eq!(
        inactive.body, unknown.body,
        "unknown and inactive answer alike"
    );
    // The seed's path, with the tenant in the payload, refuses alike.
    let mut seeded = new_ticket_body(1);
    seeded["tenant_id"] = json!("tenant-gone");
    let seed_path = t.signed("/webhook/servicedesk", &gone, &seeded).await;
    assert_eq!(seed_path.status, 404, "{}", seed_path.body);
    assert_eq!(seed_path.body, unknown.body);

    // Only the one job for A: nothing refused was recorded.
    let (jobs, total) = t.jobs_of("tenant-a").await;
    assert_eq!(
        total, 2,
        "the first delivery and the 10,000-character one: {jobs:?}"
    );

    // 101st webhook in a minute. Processing is paused so that the flood's
    // jobs stay queued (their tickets do not exist on the fake server).
    let (status, state) = t
        .call(
            reqwest::Method::PUT,
            "/api/v1/tickets/processing",
            Some(json!({"paused": true})),
        )
        .await;
    assert_eq!((status, &state["paused"]), (200, &json!(true)), "{state}");
    let path_flood = "/webhook/servicedesk_plus/tenant-flood";
    for i in 0..100 {
        let ok = t
            .signed(path_flood, &flood, &new_ticket_body(10_000 + i))
            .await;
        assert_eq!(ok.status, 202, "delivery {}: {}", i + 1, ok.body);
    }
    let limited = t.signed(path_flood, &flood, &new_ticket_body(10_100)).await;
    assert_eq!(
        (limited.status, code(&limited)),
        (429, "webhook_rate_limited".into()),
        "{}",
        limited.body
    );
    let retry: u64 = limited
        .retry_after
        .as_deref()
        .expect("Retry-After on a 429")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    let (_, flooded) = t.jobs_of("tenant-flood").await;
    assert_eq!(flooded, 100);
    // Another tenant is not limited by the flood.
    assert_eq!(
        t.signed(path_a, &a, &new_ticket_body(4246)).await.status,
        202
    );

    // Clearing the queue (issue 16 item 5): every pending job fails as
    // `cleared`, none vanishes, and the workers, resumed, take none of them.
    // The workers see the pause within `pause_poll` (2 s; the flood's first
    // jobs may have been taken before): from then on a new job stays pending.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let fresh = t.signed(path_a, &a, &new_ticket_body(4247)).await;
    assert_eq!(fresh.status, 202, "{}", fresh.body);
    let fresh = fresh.body["job_id"].as_str().unwrap().to_owned();
    let pending = |tenant: &'static str| {
        let t = &t;
        async move {
            let (status, page) = t
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/enhancements?status=pending{tenant}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            page["total"].as_u64().unwrap()
        }
    };
    let before = pending("").await;
    assert!(before >= 1, "the fresh job at least");
    let (status, cleared) = t
        .call(reqwest::Method::POST, "/api/v1/tickets/queue/clear", None)
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["cleared"], before, "every pending job: {cleared}");
    assert_eq!(pending("").await, 0);
    let job = t.job(&fresh).await;
    assert_eq!(
        (&job["status"], &job["error_message"], &job["attempts"]),
        (&json!("failed"), &json!("cleared"), &json!(0)),
        "{job}"
    );
    let (_, total) = t.jobs_of("tenant-flood").await;
    assert_eq!(total, 100, "nothing vanished");
    let (status, state) = t
        .call(
            reqwest::Method::PUT,
            "/api/v1/tickets/processing",
            Some(json!({"paused": false})),
        )
        .await;
    assert_eq!((status, &state["paused"]), (200, &json!(false)), "{state}");
    // Resumed, a worker receives the cleared jobs' messages and drops them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(t.job(&fresh).await, job, "the cleared job is untouched");
    sdp.shutdown().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_rejections_dev() {
    rejections(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_rejections_distributed() {
    rejections(Mode::Distributed).await;
}

// ------------------------------------------------------------ 3. model down

/// The model answers 500 to everything: the note is the gathered context
/// without analysis, the job completes and says why.
async fn model_down(mode: Mode) {
    let t = start(mode, &[]).await;
    let resp = t
        .csp
        .http()
        .post(format!("{}/_mock/default", t.model))
        .json(&json!({"type": "http_error", "status": 500, "headers": {"x-should-retry": "false"}}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{resp:?}");
    let sdp = sdp(0, &[900002]).await;
    let secret = t.tenant("acme", &sdp.base_url()).await;
    t.context("acme").await;
    t.resolved(
        "acme",
        &secret,
        "TKT-77",
        "The VPN client disconnects every few minutes; certificate errors on the VPN gateway.",
    )
    .await;

    let job_id = t.new_ticket("acme", &secret, 900002).await;
    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    let why = job["error_message"].as_str().unwrap_or_default();
    assert!(
        why.contains("synthesis skipped"),
        "the reason is recorded: {job}"
    );
    assert_eq!(job["cost_usd"].as_f64().unwrap_or(0.0), 0.0, "{job}");
    let notes = sdp.mock().notes_for(900002);
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0].description;
    assert_four_sections(note);
    for part in ["TKT-77", KB_TITLE, HOST] {
        assert!(
            note.contains(part),
            "{part} not in the fallback note: {note}"
        );
    }
    let calls = t.model_calls().await;
    assert!(!calls.is_empty(), "the model was tried");
    assert!(calls.iter().all(|c| c["status"] == 500), "{calls:?}");
    sdp.shutdown().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_model_down_dev() {
    model_down(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_model_down_distributed() {
    model_down(Mode::Distributed).await;
}

// ------------------------------------------------- 4. ServiceDesk Plus 500

/// Every note post answers 500: three attempts, then `failed` with the
/// error kept, no note, and (distributed) a dead letter for the job.
async fn sdp_down(mode: Mode) {
    let t = start(mode, &[]).await;
    let sdp = sdp(0, &[900003]).await;
    sdp.mock()
        .fail_next_note_posts(1000, NoteFault::Status { status: 500 });
    let secret = t.tenant("acme", &sdp.base_url()).await;
    let job_id = t.new_ticket("acme", &secret, 900003).await;
    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 3, "{job}");
    let error = job["error_message"].as_str().unwrap_or_default();
    assert!(
        error.contains("ServiceDesk Plus") && error.contains("500"),
        "the error is kept: {job}"
    );
    assert!(sdp.mock().notes_for(900003).is_empty());
    // Each attempt tried the post (and the client retried within it).
    assert!(sdp.mock().note_posts() >= 3, "{:?}", sdp.mock().stats());

    if let Some(prefix) = t.csp.nats_prefix() {
        let letter = dead_letter(&prefix).await;
        assert!(
            letter["id"].as_str().unwrap_or_default().contains(&job_id),
            "{letter}"
        );
        assert_eq!(letter["attempts"], 3, "{letter}");
        assert!(
            letter["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("500"),
            "{letter}"
        );
    }

    // ServiceDesk Plus is back; an operator retries the failed job through
    // REST (issue 16 item 4): queued again, it completes with one note.
    sdp.mock().reset();
    let path = format!("/api/v1/enhancements/{job_id}/retry");
    let (status, retried) = t.call(reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(
        (&retried["status"], &retried["attempts"]),
        (&json!("pending"), &json!(3)),
        "{retried}"
    );
    assert!(retried["error_message"].is_null(), "{retried}");
    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["attempts"], 4, "{job}");
    assert_eq!(sdp.mock().notes_for(900003).len(), 1);
    // Completed: not retried again.
    let (status, refused) = t.call(reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_request", "{refused}");
    let op = newest_operation(&t, "tickets.retry").await;
    let input: Value = serde_json::from_str(op["sanitized_input"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&input["job_id"], &input["tenant_id"]),
        (&json!(job_id), &json!("acme")),
        "{op}"
    );
    sdp.shutdown().await;
    t.stop().await;
}

/// The last message on the enhancement topic's dead-letter subject.
async fn dead_letter(prefix: &str) -> Value {
    let nats =
        std::env::var("CSP_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = async_nats::jetstream::new(async_nats::connect(nats).await.unwrap());
    let stream = js
        .get_stream(format!("{}_QUEUE", prefix.to_ascii_uppercase()))
        .await
        .unwrap();
    let subject = format!("{prefix}.queue.{}.dead", "tickets.enhance");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => return serde_json::from_slice(&m.payload).unwrap(),
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no dead letter on {subject}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_servicedesk_down_dev() {
    sdp_down(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_servicedesk_down_distributed() {
    sdp_down(Mode::Distributed).await;
}

// ------------------------------------------------------ 5. worker kill -9

/// The note is written on ServiceDesk Plus but its answer never comes; the
/// worker is killed (-9) and a new one started: the job completes once,
/// with the one note already there.
#[tokio::test(flavor = "multi_thread")]
async fn tickets_worker_killed_mid_job_distributed() {
    // The new worker takes the job once the dead one's lease (its attempt's
    // budget + 30 s) has run out: a short budget keeps the test short.
    let mut t = start(
        Mode::Distributed,
        &[("CSP_TICKETS_ATTEMPT_TIMEOUT_SECONDS", "10")],
    )
    .await;
    let sdp = sdp(0, &[900004]).await;
    sdp.mock()
        .fail_next_note_posts(1, NoteFault::CreateThenHang);
    let secret = t.tenant("acme", &sdp.base_url()).await;
    let job_id = t.new_ticket("acme", &secret, 900004).await;
    wait_for(
        || sdp.mock().notes_for(900004).len() == 1,
        "the note reaches the fake ServiceDesk Plus",
    )
    .await;
    assert_eq!(t.job(&job_id).await["status"], "processing");

    t.csp.kill9("tickets-worker").await;
    t.csp.restart("tickets-worker").await.unwrap();
    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    let notes = sdp.mock().notes_for(900004);
    assert_eq!(
        notes.len(),
        1,
        "one note, however many deliveries: {notes:?}"
    );
    assert_eq!(job["note_id"], notes[0].id.to_string(), "{job}");
    assert_eq!(
        sdp.mock().note_posts(),
        1,
        "the new worker found the note and posted none"
    );
    sdp.shutdown().await;
    t.stop().await;
}

/// `csp dev` runs its worker in-process: `kill -9` of the whole process mid-
/// job and a restart on the same data directory finish the job with one note.
#[tokio::test(flavor = "multi_thread")]
async fn tickets_worker_killed_mid_job_dev() {
    // The new worker takes the job once the dead one's lease (its attempt's
    // budget + 30 s) has run out: a short budget keeps the test short.
    let mut t = start(Mode::Dev, &[("CSP_TICKETS_ATTEMPT_TIMEOUT_SECONDS", "10")]).await;
    let sdp = sdp(0, &[900005]).await;
    sdp.mock()
        .fail_next_note_posts(1, NoteFault::CreateThenHang);
    let secret = t.tenant("acme", &sdp.base_url()).await;
    let job_id = t.new_ticket("acme", &secret, 900005).await;
    wait_for(
        || sdp.mock().notes_for(900005).len() == 1,
        "the note reaches the fake ServiceDesk Plus",
    )
    .await;

    t.csp.kill9("dev").await;
    t.csp.restart_dev().await.unwrap();
    t.admin = t.csp.login().await.unwrap();
    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    let notes = sdp.mock().notes_for(900005);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(job["note_id"], notes[0].id.to_string(), "{job}");
    sdp.shutdown().await;
    t.stop().await;
}

// ------------------------------------------- 5b. an admin restarts a worker

/// The running worker (not unresponsive) from `GET /api/v1/tickets/workers`,
/// other than `not`, waiting for one.
async fn running_worker(t: &Tickets, not: Option<&str>) -> Value {
    let deadline = Instant::now() + JOB_DEADLINE;
    loop {
        let (status, w) = t
            .call(reqwest::Method::GET, "/api/v1/tickets/workers", None)
            .await;
        assert_eq!(status, 200, "{w}");
        let found = w["workers"].as_array().and_then(|ws| {
            ws.iter()
                .find(|x| {
                    x["status"] != "unresponsive" && Some(x["worker_id"].as_str().unwrap()) != not
                })
                .cloned()
        });
        if let Some(worker) = found {
            return worker;
        }
        assert!(Instant::now() < deadline, "no running worker: {w}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A worker's log lines (at least `level`) once it has published some.
async fn worker_logs(t: &Tickets, worker_id: &str, level: &str) -> Vec<Value> {
    let deadline = Instant::now() + JOB_DEADLINE;
    loop {
        let (status, l) = t
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/tickets/workers/{worker_id}/logs?level={level}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{l}");
        let lines = l["lines"].as_array().cloned().unwrap_or_default();
        if !lines.is_empty() {
            return lines;
        }
        assert!(Instant::now() < deadline, "no log line: {l}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Logs, throughput and an admin's restart of the running worker; `then`
/// stands for its supervisor. A new worker (new id, uptime from the
/// restart) heartbeats, and a job still completes, counted in its
/// throughput.
async fn restart_a_worker(t: &mut Tickets, mode: Mode) {
    let sdp = sdp(0, &[900008]).await;
    let secret = t.tenant("acme", &sdp.base_url()).await;
    let old = running_worker(t, None).await;
    let old_id = old["worker_id"].as_str().unwrap().to_owned();
    // Its last lines, at least info; warn and above only when asked.
    let lines = worker_logs(t, &old_id, "info").await;
    assert!(lines.len() <= 100, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| ["info", "warn", "error"].contains(&l["level"].as_str().unwrap())),
        "{lines:?}"
    );
    let (status, warn) = t
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/tickets/workers/{old_id}/logs?level=warn"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{warn}");
    for l in warn["lines"].as_array().unwrap() {
        assert!(l["level"] == "warn" || l["level"] == "error", "{l}");
    }
    let (status, missing) = t
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/tickets/workers/{}/logs", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "worker_not_found", "{missing}");

    let (status, answer) = t
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/workers/{old_id}/restart"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["worker_id"], old_id.as_str(), "{answer}");
    if mode == Mode::Distributed {
        // `csp serve tickets-worker` drains and exits 75; compose or
        // Kubernetes would start it again, the test does.
        let exited = t
            .csp
            .exited("tickets-worker", JOB_DEADLINE)
            .await
            .expect("the worker exits after draining");
        assert_eq!(exited.code(), Some(75), "{exited:?}");
        t.csp.restart("tickets-worker").await.unwrap();
    }
    // `csp dev` is the supervisor: it starts a new worker in the process.
    let new = running_worker(t, Some(&old_id)).await;
    let new_id = new["worker_id"].as_str().unwrap().to_owned();
    assert!(
        new["started_at"].as_str().unwrap() > old["started_at"].as_str().unwrap(),
        "a new start: {old} then {new}"
    );
    let (_, w) = t
        .call(reqwest::Method::GET, "/api/v1/tickets/workers", None)
        .await;
    assert!(
        w["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["worker_id"] != old_id.as_str()),
        "the drained worker left the list: {w}"
    );
    // The new one takes jobs; the job counts in its throughput.
    let job_id = t.new_ticket("acme", &secret, 900008).await;
    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    let (status, tp) = t
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/tickets/workers/{new_id}/throughput"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{tp}");
    let hours = tp["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 168, "{tp}");
    assert_eq!(hours.last().unwrap()["completed"], 1, "{tp}");
    sdp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_worker_restart_dev() {
    let mut t = start(Mode::Dev, &[]).await;
    restart_a_worker(&mut t, Mode::Dev).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_worker_restart_distributed() {
    let mut t = start(Mode::Distributed, &[]).await;
    restart_a_worker(&mut t, Mode::Distributed).await;
    t.stop().await;
}

async fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + JOB_DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------- 6. NATS restart

/// NATS restarts while jobs are queued and in flight, and webhooks keep
/// coming while it is down: every job completes with exactly one note.
#[tokio::test(flavor = "multi_thread")]
async fn tickets_nats_restart_loses_no_job_distributed() {
    let store = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut nats = nats_server(port, store.path());
    while !port_open(port).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("nats://127.0.0.1:{port}");
    let t = start(
        Mode::Distributed,
        &[("CSP_NATS_URL", &url), ("CSP_TICKETS_SWEEP_SECONDS", "1")],
    )
    .await;
    let tickets: Vec<u64> = (910_001..=910_009).collect();
    let sdp = sdp(0, &tickets).await;
    let secret = t.tenant("acme", &sdp.base_url()).await;
    let mut jobs = Vec::new();
    for id in &tickets[..3] {
        jobs.push(t.new_ticket("acme", &secret, *id).await);
    }
    nats.kill().unwrap();
    nats.wait().unwrap();
    // While NATS is down: still 202 (recorded; the sweeper queues it later).
    for id in &tickets[3..6] {
        jobs.push(t.new_ticket("acme", &secret, *id).await);
    }
    let mut nats = nats_server(port, store.path());
    while !port_open(port).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &tickets[6..] {
        jobs.push(t.new_ticket("acme", &secret, *id).await);
    }
    for (job_id, ticket) in jobs.iter().zip(&tickets) {
        let job = t.finished(job_id).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(sdp.mock().notes_for(*ticket).len(), 1, "ticket {ticket}");
    }
    assert_eq!(sdp.mock().notes().len(), tickets.len());
    sdp.shutdown().await;
    t.stop().await;
    let _ = nats.kill();
    let _ = nats.wait();
}

// ------------------------------------------------------ 7. tenant isolation

/// Two tenants with near-identical histories: A's search returns only A's
/// tickets, B's only B's.
async fn isolation(mode: Mode) {
    let t = start(mode, &[]).await;
    let sdp = sdp(0, &[920001, 920002]).await;
    let a = t.tenant("tenant-a", &sdp.base_url()).await;
    let b = t.tenant("tenant-b", &sdp.base_url()).await;
    let vpn = "The VPN client disconnects every few minutes; the VPN gateway at 10.0.0.1 logs certificate errors.";
    t.resolved("tenant-a", &a, "A-1001", vpn).await;
    t.resolved(
        "tenant-a",
        &a,
        "A-1002",
        "Printer offline on the second floor.",
    )
    .await;
    for id in ["B-2001", "B-2002", "B-2003"] {
        t.resolved("tenant-b", &b, id, vpn).await;
    }
    let job_a = t.new_ticket("tenant-a", &a, 920001).await;
    let job_b = t.new_ticket("tenant-b", &b, 920002).await;
    let (job_a, job_b) = (t.finished(&job_a).await, t.finished(&job_b).await);
    assert_eq!(job_a["status"], "completed", "{job_a}");
    assert_eq!(job_b["status"], "completed", "{job_b}");

    let similar = |job: &Value| -> Vec<String> {
        job["context_gathered"]["similar_tickets"]
            .as_array()
            .unwrap_or_else(|| panic!("similar_tickets in {job}"))
            .iter()
            .map(|s| s["ticket_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (found_a, found_b) = (similar(&job_a), similar(&job_b));
    assert!(found_a.contains(&"A-1001".to_owned()), "{found_a:?}");
    assert!(found_a.iter().all(|id| id.starts_with("A-")), "{found_a:?}");
    assert_eq!(found_b.len(), 3, "{found_b:?}");
    assert!(found_b.iter().all(|id| id.starts_with("B-")), "{found_b:?}");

    let note_a = &sdp.mock().notes_for(920001)[0].description;
    assert!(note_a.contains("A-1001"), "{note_a}");
    assert!(
        !note_a.contains("B-200"),
        "A's note cites B's tickets: {note_a}"
    );
    let note_b = &sdp.mock().notes_for(920002)[0].description;
    assert!(
        !note_b.contains("A-100"),
        "B's note cites A's tickets: {note_b}"
    );
    // And the model never saw the other tenant's tickets either.
    for call in t.model_calls().await {
        let user = user_text(&call["body"]);
        assert!(
            !(user.contains("A-100") && user.contains("B-200")),
            "one prompt holds both tenants' tickets: {user}"
        );
    }
    sdp.shutdown().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_tenant_isolation_dev() {
    isolation(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_tenant_isolation_distributed() {
    isolation(Mode::Distributed).await;
}

// ------------------------------------------------------ 8. import, twice

/// 1,000 resolved tickets imported twice: 1,000 rows.
async fn import_twice(mode: Mode) {
    let t = start(mode, &[]).await;
    let sdp = sdp(1000, &[]).await;
    t.tenant("acme", &sdp.base_url()).await;
    for run in 1..=2 {
        let out = t.import("acme").await;
        assert!(
            out.contains("Imported 1000/1000 tickets (100%)"),
            "run {run}: {out}"
        );
        assert!(
            out.contains("1000 tickets imported, 0 skipped"),
            "run {run}: {out}"
        );
        assert!(
            out.contains("'acme' now has 1000 tickets in its history"),
            "run {run}: {out}"
        );
        assert_eq!(history_rows(&t.csp, "acme").await, 1000, "run {run}");
    }
    sdp.shutdown().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_import_twice_dev() {
    import_twice(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_import_twice_distributed() {
    import_twice(Mode::Distributed).await;
}

// ------------------------------------------- 7. Jira and Zendesk (issue 15)

const JIRA_EMAIL: &str = "csp@acme.example";
const JIRA_TOKEN: &str = "e2e-jira-api-token";
const ZENDESK_EMAIL: &str = "agent@acme.example";
const ZENDESK_TOKEN: &str = "e2e-zendesk-api-token";
/// The signing secret Zendesk generated (csp stores it; it cannot choose one).
pub(crate) const ZENDESK_SECRET: &str = "zendesk-generated-signing-secret-0123";

impl Tickets {
    /// Creates a tenant of another tool from `fields`; returns its webhook
    /// secret and webhook URL.
    pub(crate) async fn tool_tenant(
        &self,
        id: &str,
        tool: &str,
        fields: Value,
    ) -> (String, String) {
        let mut body = json!({
            "tenant_id": id, "name": format!("{id} MSP"), "tool_type": tool,
            "enhancement_preferences": {"sources": ["ticket_history", "kb", "ip_inventory"],
                "note_format": "html", "max_words": 500, "mask_pii": false}
        });
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, created) = self
            .call(reqwest::Method::POST, "/api/v1/tenants", Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        let text = created.to_string();
        assert!(
            !text.contains(JIRA_TOKEN) && !text.contains(ZENDESK_TOKEN),
            "{text}"
        );
        (
            created["webhook_secret"].as_str().unwrap().to_owned(),
            created["webhook_url"].as_str().unwrap().to_owned(),
        )
    }

    async fn test_connection(&self, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(reqwest::Method::POST, path, body).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

async fn jira_and_zendesk(mode: Mode) {
    use csp_mock_ticketing::{
        MockJira, MockJiraIssue, MockZendesk, MockZendeskTicket, RunningJira, RunningZendesk,
        text_to_adf,
    };
    let t = start(mode, &[]).await;

    // ---- Jira Service Management: a signed `jira:issue_created`.
    let jira = MockJira::builder()
        .account(JIRA_EMAIL, JIRA_TOKEN)
        .hang_for(Duration::from_secs(120))
        .build();
    let key = format!("{}-7", csp_mock_ticketing::JIRA_PROJECT);
    assert!(jira.insert(MockJiraIssue::open(
        &key,
        SUBJECT,
        text_to_adf(DESCRIPTION),
        "High"
    )));
    let jira = RunningJira::start(jira).await.unwrap();
    let fields = json!({"jira_url": jira.base_url(), "jira_email": JIRA_EMAIL,
        "jira_api_token": JIRA_TOKEN, "jira_project_key": csp_mock_ticketing::JIRA_PROJECT});
    // Test connection before saving: fine; with a wrong token: refused, and
    // the answer never echoes the token.
    let mut unsaved = fields.clone();
    unsaved["tool_type"] = json!("jira");
    let ok = t
        .test_connection("/api/v1/tenants/test-connection", Some(unsaved.clone()))
        .await;
    assert_eq!(ok, json!({"ok": true}));
    unsaved["jira_api_token"] = json!("wrong-token-0123");
    let refused = t
        .test_connection("/api/v1/tenants/test-connection", Some(unsaved.clone()))
        .await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["reason"].as_str().unwrap().contains("rejected"),
        "{refused}"
    );
    assert!(!refused.to_string().contains("wrong-token-0123"));
    unsaved["jira_api_token"] = json!(JIRA_TOKEN);
    unsaved["jira_project_key"] = json!("NOPE");
    let missing = t
        .test_connection("/api/v1/tenants/test-connection", Some(unsaved.clone()))
        .await;
    assert_eq!(missing["ok"], false, "{missing}");
    assert!(
        missing["reason"].as_str().unwrap().contains("NOPE"),
        "{missing}"
    );
    unsaved["jira_project_key"] = json!(csp_mock_ticketing::JIRA_PROJECT);
    unsaved["jira_url"] = json!(format!("http://127.0.0.1:{}", free_port()));
    let down = t
        .test_connection("/api/v1/tenants/test-connection", Some(unsaved))
        .await;
    assert_eq!(down["ok"], false, "{down}");
    assert!(
        down["reason"].as_str().unwrap().contains("reached"),
        "{down}"
    );

    let (secret, url) = t.tool_tenant("jira-acme", "jira", fields).await;
    assert!(url.ends_with("/webhook/jira/jira-acme"), "{url}");
    t.context("jira-acme").await;
    let saved = t
        .test_connection("/api/v1/tenants/jira-acme/test-connection", None)
        .await;
    assert_eq!(saved, json!({"ok": true}));
    let body = jira
        .mock()
        .webhook_body("jira:issue_created", &key)
        .unwrap()
        .to_string()
        .into_bytes();
    let signature = csp_ticketing::jira::sign(secret.as_bytes(), &body);
    let headers = [
        ("x-hub-signature", signature.clone()),
        (
            "x-atlassian-webhook-identifier",
            "e2e-delivery-1".to_owned(),
        ),
    ];
    let a = t
        .deliver("/webhook/jira/jira-acme", body.clone(), &headers)
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let job_id = a.body["job_id"].as_str().unwrap().to_owned();
    // Jira delivers again (same identifier): the first job stands.
    let again = t
        .deliver("/webhook/jira/jira-acme", body.clone(), &headers)
        .await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["job_id"], job_id.as_str());
    // Forged: refused.
    let forged = t
        .deliver(
            "/webhook/jira/jira-acme",
            body.clone(),
            &[("x-hub-signature", format!("sha256={}", "0".repeat(64)))],
        )
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    // A Jira tenant's webhook on another tool's path: unknown there.
    let elsewhere = t
        .deliver("/webhook/zendesk/jira-acme", body, &headers)
        .await;
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.body);

    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["ticket_id"], key.as_str(), "{job}");
    let comments = jira.mock().posted_comments();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(!comments[0].public, "an internal comment: {comments:?}");
    assert!(comments[0].body.contains(HOST), "{}", comments[0].body);
    assert!(
        comments[0].body.contains(&format!("csp-job:{job_id}")),
        "{}",
        comments[0].body
    );

    // ---- Zendesk: the signing secret is Zendesk's, brought to csp.
    let zendesk = MockZendesk::builder()
        .credential(ZENDESK_EMAIL, ZENDESK_TOKEN)
        .hang_for(Duration::from_secs(120))
        .build();
    assert!(zendesk.insert(MockZendeskTicket::open(
        5158,
        SUBJECT,
        DESCRIPTION,
        Some("high")
    )));
    let zendesk = RunningZendesk::start(zendesk).await.unwrap();
    let (_, url) = t
        .tool_tenant(
            "zd-acme",
            "zendesk",
            json!({"zendesk_subdomain": "acme", "zendesk_email": ZENDESK_EMAIL,
                "zendesk_api_token": ZENDESK_TOKEN, "zendesk_url": zendesk.base_url()}),
        )
        .await;
    assert!(url.ends_with("/webhook/zendesk/zd-acme"), "{url}");
    t.context("zd-acme").await;
    let (status, set) = t
        .call(
            reqwest::Method::POST,
            "/api/v1/tenants/zd-acme/webhook-secret",
            Some(json!({"webhook_secret": ZENDESK_SECRET})),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["webhook_secret"], "[REDACTED]", "{set}");
    let body = json!({
        "type": "zen:event-type:ticket.created",
        "account_id": 22129848,
        "id": "e2e-event-1",
        "time": "2026-12-06T10:12:07Z",
        "zendesk_event_version": "2022-11-06",
        "subject": "zen:ticket:5158",
        "detail": {"id": "5158", "subject": SUBJECT, "description": DESCRIPTION,
            "priority": "HIGH", "status": "OPEN", "created_at": "2026-12-06T10:12:07Z",
            "tags": ["vpn"]},
        "event": {}
    })
    .to_string()
    .into_bytes();
    let timestamp = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let signature = csp_ticketing::zendesk::sign(ZENDESK_SECRET.as_bytes(), &timestamp, &body);
    let a = t
        .deliver(
            "/webhook/zendesk/zd-acme",
            body,
            &[
                ("x-zendesk-webhook-signature", signature),
                ("x-zendesk-webhook-signature-timestamp", timestamp),
                (
                    "x-zendesk-webhook-invocation-id",
                    "e2e-invocation-1".to_owned(),
                ),
            ],
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let job_id = a.body["job_id"].as_str().unwrap().to_owned();
    let job = t.finished(&job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["ticket_id"], "5158", "{job}");
    let comments = zendesk.mock().posted_comments_for(5158);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(!comments[0].public, "a private comment: {comments:?}");
    assert!(
        comments[0].html_body.contains(HOST),
        "{}",
        comments[0].html_body
    );

    jira.shutdown().await;
    zendesk.shutdown().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_jira_and_zendesk_dev() {
    jira_and_zendesk(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tickets_jira_and_zendesk_distributed() {
    jira_and_zendesk(Mode::Distributed).await;
}
