//! The ticket-enhancement benches that drive a running csp: `webhook`
//! (intake), `enhance` (platform overhead of one enhancement), `import`
//! (`csp tickets import` throughput) and `fairness` (one tenant's burst
//! against another's single ticket).
//!
//! Dev mode is the harness's `csp dev`. Distributed mode is the harness's
//! gateway, policy, plugins and session-pool on Postgres, Redis and NATS,
//! plus `csp serve tickets` and `csp serve tickets-worker`, which this
//! module starts itself against the same database, prefixes and secrets
//! (the harness does not start them). The fake ServiceDesk Plus and the
//! scripted model run in this process, each behind a small timing proxy so
//! that the time spent in them can be subtracted from the platform's.

use super::text::{Rng, Vocabulary};
use crate::{Common, Samples, Table, USER_HZ, cpu_ticks, csp_path, mode_name, ms, progress};
use anyhow::{Context, Result, bail};
use clap::Args;
use csp_e2e::{Csp, Mode, Options};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

// ------------------------------------------------------------ the stack

/// A csp instance with its ticket services and an admin token.
pub(crate) struct Stack {
    pub(crate) csp: Csp,
    /// `csp serve tickets` and `csp serve tickets-worker` (distributed).
    extra: Vec<(&'static str, Child)>,
    prefix: Option<String>,
    logs: tempfile::TempDir,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
}

impl Stack {
    pub(crate) async fn start(
        common: &Common,
        mode: Mode,
        extra_env: Vec<(String, String)>,
    ) -> Result<Stack> {
        let mut env = crate::agent_env(common, false)?;
        env.extend(extra_env.iter().cloned());
        let tickets_port = csp_e2e::backends::free_port()?;
        if mode == Mode::Distributed {
            env.push((
                "CSP_TICKETS_ADDR".into(),
                format!("http://127.0.0.1:{tickets_port}"),
            ));
        }
        let bin = csp_path(common);
        let csp = Csp::start(
            mode,
            Options {
                prewarm: 1,
                max_sessions: 4,
                env: env.clone(),
                bin: Some(bin.clone()),
                await_startup: false,
                ..Options::default()
            },
        )
        .await?;
        let mut stack = Stack {
            csp,
            extra: Vec::new(),
            prefix: None,
            logs: tempfile::tempdir()?,
            token: String::new(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
        };
        if mode == Mode::Distributed {
            let prefix = stack
                .csp
                .nats_stream()
                .and_then(|s| {
                    s.strip_suffix("_SESSION_EVENTS")
                        .map(str::to_ascii_lowercase)
                })
                .context("no NATS prefix")?;
            stack.prefix = Some(prefix.clone());
            let mut penv: Vec<(String, String)> = vec![
                ("CSP_JWT_SECRET".into(), csp_e2e::JWT_SECRET.into()),
                ("CSP_SECRET_KEY".into(), csp_e2e::SECRET_KEY.into()),
                ("CSP_METRICS_TOKEN".into(), csp_e2e::METRICS_TOKEN.into()),
                ("CSP_MODEL".into(), csp_e2e::MODEL.into()),
                ("DATABASE_URL".into(), stack.csp.database_url()),
                ("CSP_REDIS_PREFIX".into(), format!("{prefix}:")),
                ("CSP_NATS_PREFIX".into(), prefix),
                ("RUST_LOG".into(), "info".into()),
            ];
            if let Ok(u) = std::env::var("CSP_TEST_REDIS_URL") {
                penv.push(("CSP_REDIS_URL".into(), u));
            }
            if let Ok(u) = std::env::var("CSP_TEST_NATS_URL") {
                penv.push(("CSP_NATS_URL".into(), u));
            }
            penv.extend(extra_env);
            stack
                .spawn(
                    &bin,
                    "tickets",
                    &[
                        "serve",
                        "tickets",
                        "--grpc-addr",
                        &format!("127.0.0.1:{tickets_port}"),
                        "--metrics-addr",
                        "127.0.0.1:0",
                    ],
                    &penv,
                )
                .await?;
            stack
                .spawn(
                    &bin,
                    "tickets-worker",
                    &["serve", "tickets-worker", "--metrics-addr", "127.0.0.1:0"],
                    &penv,
                )
                .await?;
        }
        stack.wait_started().await?;
        stack.token = stack.csp.login().await?;
        Ok(stack)
    }

    /// A harness instance that runs ticket enhancement itself (`csp dev`,
    /// or distributed with [`Options::tickets`]), with an admin token; its
    /// NATS streams are removed by [`Stack::stop`] like the others'.
    pub(crate) async fn adopt(csp: Csp) -> Result<Stack> {
        let prefix = csp.nats_prefix();
        let token = csp.login().await?;
        Ok(Stack {
            csp,
            extra: Vec::new(),
            prefix,
            logs: tempfile::tempdir()?,
            token,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
        })
    }

    async fn spawn(
        &mut self,
        bin: &PathBuf,
        name: &'static str,
        args: &[&str],
        env: &[(String, String)],
    ) -> Result<()> {
        let log = std::fs::File::create(self.logs.path().join(format!("{name}.log")))?;
        let mut cmd = Command::new(bin);
        for var in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "ANTHROPIC_BASE_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting csp {name}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(status) = child.try_wait()? {
            bail!(
                "csp {name} exited at once ({status}): {}",
                std::fs::read_to_string(self.logs.path().join(format!("{name}.log")))
                    .unwrap_or_default()
            );
        }
        self.extra.push((name, child));
        Ok(())
    }

    async fn wait_started(&self) -> Result<()> {
        let url = format!("{}/api/v1/health/startup", self.csp.base);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("csp never reported started:\n{}", self.csp.log_tail("dev"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Process ids whose CPU the webhook bench splits its time over.
    pub(crate) fn pid(&self, name: &str) -> Option<u32> {
        self.extra
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, c)| c.id())
            .or_else(|| self.csp.pid_of(name))
    }

    pub(crate) fn log_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.csp.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Creates a tenant whose ServiceDesk Plus is `sdp_url`; its secret.
    pub(crate) async fn tenant(&self, id: &str, sdp_url: &str) -> Result<String> {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "/api/v1/tenants",
                Some(json!({
                    "tenant_id": id, "name": format!("Bench {id}"), "tool_type": "servicedesk_plus",
                    "servicedesk_url": sdp_url, "api_key": "bench-technician-key",
                    "enhancement_preferences": {"sources": ["ticket_history", "kb", "ip_inventory"],
                        "note_format": "html", "max_words": 500, "mask_pii": false}
                })),
            )
            .await?;
        if status != 201 {
            bail!("creating tenant {id}: {status} {body}");
        }
        Ok(body["webhook_secret"]
            .as_str()
            .context("webhook_secret")?
            .to_owned())
    }

    pub(crate) async fn pause(&self, paused: bool) -> Result<()> {
        let (status, body) = self
            .api(
                reqwest::Method::PUT,
                "/api/v1/tickets/processing",
                Some(json!({"paused": paused})),
            )
            .await?;
        if status != 200 {
            bail!("PUT /api/v1/tickets/processing: {status} {body}");
        }
        Ok(())
    }

    pub(crate) async fn stop(mut self) {
        for (_, c) in &mut self.extra {
            if let Some(pid) = c.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for (_, c) in &mut self.extra {
            if tokio::time::timeout(Duration::from_secs(15), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
        let prefix = self.prefix.take();
        self.csp.stop().await;
        // The harness removes its session-events stream; the work queue's
        // stream (and any other of this prefix) is removed here.
        if let Some(prefix) = prefix {
            let nats = std::env::var("CSP_TEST_NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
            if let Ok(client) = async_nats::connect(nats).await {
                let js = async_nats::jetstream::new(client);
                let upper = format!("{}_", prefix.to_ascii_uppercase());
                let names: Vec<String> = js
                    .stream_names()
                    .filter_map(|n| async move { n.ok() })
                    .collect()
                    .await;
                for n in names.into_iter().filter(|n| n.starts_with(&upper)) {
                    let _ = js.delete_stream(&n).await;
                }
            }
        }
    }
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

/// A signed new-ticket webhook; the status and body of the answer.
pub(crate) async fn send_webhook(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    secret: &str,
    body: Vec<u8>,
    resolved: bool,
) -> Result<(u16, Value)> {
    let ts = unix_secs();
    let sig = csp_ticketing::webhook::sign(secret.as_bytes(), ts, &body);
    let url = if resolved {
        format!("{base}/webhook/servicedesk_plus/{tenant}/resolved")
    } else {
        format!("{base}/webhook/servicedesk_plus/{tenant}")
    };
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-servicedesk-timestamp", ts.to_string())
        .header("x-servicedesk-signature", sig)
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

pub(crate) fn new_ticket_body(id: u64, subject: &str, description: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ticket_id": id.to_string(), "subject": subject, "description": description, "priority": "High"
    }))
    .expect("json")
}

/// A setting raised for a bench, said so in its table title.
pub(crate) fn rate_limit_env() -> (String, String) {
    ("CSP_TICKETS_WEBHOOK_RATE_LIMIT".into(), "100000000".into())
}

// ------------------------------------------------------- timing proxy

/// One call through a [`TimingProxy`].
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
}

/// An HTTP reverse proxy that records how long each call took upstream
/// (request received → upstream answer read), so a bench can subtract the
/// model's and ServiceDesk Plus's time from an end-to-end figure.
pub(crate) struct TimingProxy {
    pub(crate) url: String,
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
    pub(crate) notify: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl TimingProxy {
    pub(crate) async fn start(upstream: String) -> Result<Self> {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let notify = Arc::new(tokio::sync::Notify::new());
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let state = (upstream, client, calls.clone(), notify.clone());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            calls,
            notify,
            task,
        })
    }

    pub(crate) fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().expect("calls"))
    }

    pub(crate) fn snapshot(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

impl Drop for TimingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ProxyState = Arc<(
    String,
    reqwest::Client,
    Arc<Mutex<Vec<Call>>>,
    Arc<tokio::sync::Notify>,
)>;

async fn forward(
    axum::extract::State(state): axum::extract::State<ProxyState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (upstream, client, calls, notify) = &*state;
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.to_string());
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return (http_status(400), "body").into_response();
    };
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).expect("method");
    let mut out = client.request(method, format!("{upstream}{path}"));
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let result = async {
        let resp = out.body(body).send().await?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, Vec<u8>)> = resp
            .headers()
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "content-length" | "connection" | "transfer-encoding"
                )
            })
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let bytes = resp.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, bytes))
    }
    .await;
    let end = Instant::now();
    let (status, response) = match result {
        Ok((status, headers, bytes)) => {
            let mut r = axum::response::Response::builder().status(status);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            (
                status,
                r.body(axum::body::Body::from(bytes)).expect("response"),
            )
        }
        Err(e) => (502, (http_status(502), e.to_string()).into_response()),
    };
    calls.lock().expect("calls").push(Call {
        method: parts.method.to_string(),
        path,
        status,
        start,
        end,
    });
    notify.notify_waiters();
    response
}

fn http_status(code: u16) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(code).expect("status")
}

/// The fake ServiceDesk Plus and the scripted model, in this process,
/// each behind a timing proxy.
pub(crate) struct Fakes {
    pub(crate) sdp: csp_mock_ticketing::RunningMock,
    llm: csp_mock_llm::MockLlm,
    pub(crate) sdp_proxy: TimingProxy,
    pub(crate) llm_proxy: TimingProxy,
}

impl Fakes {
    pub(crate) async fn start() -> Result<Fakes> {
        let sdp =
            csp_mock_ticketing::RunningMock::start(csp_mock_ticketing::MockSdp::builder().build())
                .await?;
        let llm = csp_mock_llm::MockLlm::start(csp_mock_llm::Options::default()).await?;
        let sdp_proxy = TimingProxy::start(sdp.base_url()).await?;
        let llm_proxy = TimingProxy::start(llm.base_url()).await?;
        Ok(Fakes {
            sdp,
            llm,
            sdp_proxy,
            llm_proxy,
        })
    }

    /// The enhancement model of the instance: the scripted model through
    /// its proxy (`csp dev`'s own embedded model is not timed).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CSP_ENHANCE_BASE_URL".into(), self.llm_proxy.url.clone()),
            ("CSP_ENHANCE_API_KEY".into(), "bench-model-key".into()),
        ]
    }

    pub(crate) async fn stop(self) {
        drop(self.sdp_proxy);
        drop(self.llm_proxy);
        self.sdp.shutdown().await;
        self.llm.shutdown().await;
    }
}

/// Context for the tenant's enhancements: resolved tickets (through the
/// resolved-ticket webhook), a knowledge-base article and inventory hosts.
pub(crate) async fn seed_context(
    stack: &Stack,
    tenant: &str,
    secret: &str,
    vocab: &Vocabulary,
) -> Result<()> {
    let mut rng = Rng::new(7);
    for i in 0..100u64 {
        let (d, r) = vocab.ticket(&mut rng);
        let body = serde_json::to_vec(&json!({
            "ticket_id": (10_000 + i).to_string(), "description": d, "resolution": r,
            "resolved_date": "2026-11-01T10:00:00Z", "tags": ["bench"]
        }))?;
        let (status, b) =
            send_webhook(&stack.http, &stack.csp.base, tenant, secret, body, true).await?;
        if !(200..300).contains(&status) {
            bail!("resolved webhook: {status} {b}");
        }
    }
    let (s, b) = stack
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/tenants/{tenant}/kb-articles"),
            Some(json!([{"title": "Printer queue stuck", "summary": "Restart the spooler service and clear the queue.",
                "url": "https://kb.bench.example/printer-queue", "body": "printer spooler queue restart"}])),
        )
        .await?;
    anyhow::ensure!(s == 200, "kb-articles: {s} {b}");
    let (s, b) = stack
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/tenants/{tenant}/inventory"),
            Some(
                json!([{"ip": "10.0.0.1", "hostname": "vpn-gw-01", "role": "VPN gateway",
                "client": "Bench", "location": "HQ"}]),
            ),
        )
        .await?;
    anyhow::ensure!(s == 200, "inventory: {s} {b}");
    Ok(())
}

// -------------------------------------------------------------- webhook

#[derive(Args, Clone)]
pub(crate) struct WebhookArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Measured seconds (after 2 unmeasured).
    #[arg(long, default_value_t = 10)]
    pub(crate) secs: u64,
    /// Tenants the deliveries are spread over.
    #[arg(long, default_value_t = 20)]
    pub(crate) tenants: usize,
}

pub(crate) async fn bench_webhook(args: &WebhookArgs) -> Table {
    let mut table = Table::new(
        format!(
            "webhook: signed new-ticket webhooks → 202 (recorded and queued), concurrency {}, {} s, {} tenants, \
             workers paused, CSP_TICKETS_WEBHOOK_RATE_LIMIT raised to 10^8/min (the check still runs); ms",
            args.concurrency, args.secs, args.tenants
        ),
        vec![
            "mode",
            "requests",
            "req/s",
            "p50",
            "p90",
            "p99",
            "max",
            "non-202",
            "CPU % of a core (ms CPU/request)",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("webhook/{}: starting csp", mode_name(mode)));
        let run = async {
            let stack = Stack::start(&args.common, mode, vec![rate_limit_env()]).await?;
            let result = webhook_run(&stack, mode, args).await;
            if result.is_err() {
                progress(format!("tickets log:\n{}", tail(&stack.log_of("tickets"))));
            }
            stack.stop().await;
            result
        };
        match run.await {
            Ok(row) => table.rows.push(row),
            Err(e) => table.failed(mode, &e),
        }
    }
    table
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Every process of a name (`postgres` has one per connection).
pub(crate) fn pids_named(name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == name).then_some(pid)
        })
        .collect()
}

fn ticks_of(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| cpu_ticks(*p).ok()).sum()
}

/// A non-`202` answer, by status and error code, for counting.
pub(crate) fn refusal(status: u16, body: &Value) -> String {
    format!(
        "{status} {}",
        body["error"]["code"]
            .as_str()
            .or(body["code"].as_str())
            .unwrap_or("")
    )
}

/// The intake load of `webhook`: `concurrency` tasks, each sending signed
/// new-ticket webhooks one after another (unique ids, generated text) to a
/// random tenant of `secrets` (`(tenant, secret)`) at `base`.
pub(crate) struct WebhookLoad {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) secrets: Arc<Vec<(String, String)>>,
    pub(crate) vocab: Arc<Vocabulary>,
    pub(crate) concurrency: usize,
}

impl WebhookLoad {
    /// Sends for `secs`; the latency of every `202` in ms and the other
    /// answers by [`refusal`] (or error). `seed` keeps runs' ids apart.
    pub(crate) async fn drive(
        &self,
        secs: u64,
        seed: u64,
    ) -> Result<(Vec<f64>, BTreeMap<String, usize>)> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let tasks: Vec<_> = (0..self.concurrency)
            .map(|task| {
                let (secrets, vocab, http, base) = (
                    self.secrets.clone(),
                    self.vocab.clone(),
                    self.http.clone(),
                    self.base.clone(),
                );
                tokio::spawn(async move {
                    let mut rng = Rng::new(seed * 1000 + task as u64);
                    let mut lat = Vec::new();
                    let mut bad: BTreeMap<String, usize> = BTreeMap::new();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let (tenant, secret) = &secrets[rng.below(secrets.len())];
                        let id = seed * 100_000_000 + task as u64 * 1_000_000 + n;
                        n += 1;
                        let subject = vocab.text(&mut rng, 3, 6);
                        let description = vocab.text(&mut rng, 20, 60);
                        let body = new_ticket_body(id, &subject, &description);
                        let start = Instant::now();
                        match send_webhook(&http, &base, tenant, secret, body, false).await {
                            Ok((202, _)) => lat.push(start.elapsed().as_secs_f64() * 1e3),
                            Ok((s, b)) => *bad.entry(refusal(s, &b)).or_default() += 1,
                            Err(e) => *bad.entry(format!("{e}")).or_default() += 1,
                        }
                    }
                    (lat, bad)
                })
            })
            .collect();
        let mut lat = Vec::new();
        let mut bad: BTreeMap<String, usize> = BTreeMap::new();
        for t in tasks {
            let (l, b) = t.await?;
            lat.extend(l);
            for (k, v) in b {
                *bad.entry(k).or_default() += v;
            }
        }
        Ok((lat, bad))
    }
}

async fn webhook_run(stack: &Stack, mode: Mode, args: &WebhookArgs) -> Result<Vec<String>> {
    stack.pause(true).await?;
    let mut secrets = Vec::new();
    for i in 0..args.tenants {
        let id = format!("bench-w{i:03}");
        // The workers are paused: no note is ever posted, any URL will do.
        secrets.push((id.clone(), stack.tenant(&id, "http://127.0.0.1:9").await?));
    }
    let secrets = Arc::new(secrets);
    let vocab = Arc::new(Vocabulary::new());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .tcp_nodelay(true)
        .build()?;

    let load = WebhookLoad {
        http,
        base: stack.csp.base.clone(),
        secrets,
        vocab,
        concurrency: args.concurrency,
    };
    let drive = |secs: u64, seed: u64| load.drive(secs, seed);

    progress(format!("webhook/{}: warming up", mode_name(mode)));
    let (_, bad) = drive(2, 1).await?;
    if !bad.is_empty() {
        progress(format!("warm-up refusals: {bad:?}"));
    }
    let procs: Vec<(&str, Vec<u32>)> = match mode {
        Mode::Dev => vec![("csp dev", stack.pid("dev").into_iter().collect())],
        Mode::Distributed => vec![
            ("gateway", stack.pid("gateway").into_iter().collect()),
            ("tickets", stack.pid("tickets").into_iter().collect()),
            ("postgres", pids_named("postgres")),
            ("nats", pids_named("nats-server")),
            ("redis", pids_named("redis-server")),
        ],
    };
    let me = vec![std::process::id()];
    let before: Vec<u64> = procs.iter().map(|(_, p)| ticks_of(p)).collect();
    let me_before = ticks_of(&me);
    progress(format!(
        "webhook/{}: measuring {} s",
        mode_name(mode),
        args.secs
    ));
    let began = Instant::now();
    let (lat, bad) = drive(args.secs, 2).await?;
    let elapsed = began.elapsed().as_secs_f64();
    let after: Vec<u64> = procs.iter().map(|(_, p)| ticks_of(p)).collect();
    let me_after = ticks_of(&me);
    let n = lat.len().max(1) as f64;
    let mut cpu: Vec<String> = procs
        .iter()
        .zip(before.iter().zip(&after))
        .map(|((name, _), (b, a))| {
            let secs = (a - b) as f64 / USER_HZ;
            format!(
                "{name} {:.0}% ({:.2})",
                secs / elapsed * 100.0,
                secs * 1e3 / n
            )
        })
        .collect();
    let me_secs = (me_after - me_before) as f64 / USER_HZ;
    cpu.push(format!(
        "bench client {:.0}% ({:.2})",
        me_secs / elapsed * 100.0,
        me_secs * 1e3 / n
    ));
    let bad_total: usize = bad.values().sum();
    let s = Samples::new(lat);
    // The recorded jobs: every 202 is a row.
    Ok(vec![
        mode_name(mode).to_owned(),
        s.0.len().to_string(),
        format!("{:.0}", s.0.len() as f64 / elapsed),
        ms(s.pct(50.0)),
        ms(s.pct(90.0)),
        ms(s.pct(99.0)),
        ms(s.max()),
        if bad.is_empty() {
            "0".into()
        } else {
            format!("{bad_total} {bad:?}")
        },
        cpu.join(", "),
    ])
}

// -------------------------------------------------------------- enhance

#[derive(Args, Clone)]
pub(crate) struct EnhanceArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Measured enhancements, one at a time (after 5 unmeasured).
    #[arg(long, default_value_t = 200)]
    pub(crate) jobs: usize,
}

pub(crate) async fn bench_enhance(args: &EnhanceArgs) -> Table {
    let mut table = Table::new(
        format!(
            "enhance: one enhancement at a time ({} jobs), scripted model and fake ServiceDesk Plus in the bench \
             behind timing proxies; overhead = (202 → note posted) − model − ServiceDesk Plus calls; ms",
            args.jobs
        ),
        vec![
            "mode",
            "jobs",
            "202→note p50",
            "p99",
            "model p50",
            "SDP calls p50 (n)",
            "overhead p50",
            "p90",
            "p99",
            "max",
            "send→note overhead p50 / p99",
            "processing_time_ms p50",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("enhance/{}: starting", mode_name(mode)));
        let run = async {
            let fakes = Fakes::start().await?;
            let mut env = fakes.env();
            env.push(rate_limit_env());
            let stack = Stack::start(&args.common, mode, env).await?;
            let result = enhance_run(&stack, &fakes, mode, args).await;
            if result.is_err() {
                progress(format!(
                    "worker log:\n{}\n{}",
                    tail(&stack.log_of("tickets-worker")),
                    stack.csp.log_tail("dev")
                ));
            }
            stack.stop().await;
            fakes.stop().await;
            result
        };
        match run.await {
            Ok(row) => table.rows.push(row),
            Err(e) => table.failed(mode, &e),
        }
    }
    table
}

async fn wait_completed(stack: &Stack, job: &str, limit: Duration) -> Result<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let (s, body) = stack
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/enhancements/{job}"),
                None,
            )
            .await?;
        if s == 200 && (body["status"] == "completed" || body["status"] == "failed") {
            if body["status"] == "failed" {
                bail!("job {job} failed: {}", body["error_message"]);
            }
            return Ok(body);
        }
        if Instant::now() > deadline {
            bail!("job {job} not completed within {limit:?}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn enhance_run(
    stack: &Stack,
    fakes: &Fakes,
    mode: Mode,
    args: &EnhanceArgs,
) -> Result<Vec<String>> {
    let vocab = Vocabulary::new();
    let tenant = "bench-enhance";
    let secret = stack.tenant(tenant, &fakes.sdp_proxy.url).await?;
    seed_context(stack, tenant, &secret, &vocab).await?;
    let mut rng = Rng::new(99);
    let total = args.jobs + 5;
    let mut tickets = Vec::new();
    for i in 0..total as u64 {
        let id = 700_000 + i;
        let subject = vocab.text(&mut rng, 3, 6);
        let description = format!(
            "{} The VPN gateway at 10.0.0.1 logs errors.",
            vocab.text(&mut rng, 20, 50)
        );
        fakes
            .sdp
            .mock()
            .insert(csp_mock_ticketing::MockRequest::open(
                id,
                &subject,
                &description,
                "High",
            ));
        tickets.push((id, subject, description));
    }
    let (mut total_ms, mut model_ms, mut sdp_ms, mut over, mut over_send, mut ptime) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut sdp_calls = 0usize;
    for (i, (id, subject, description)) in tickets.iter().enumerate() {
        fakes.sdp_proxy.take();
        fakes.llm_proxy.take();
        let body = new_ticket_body(*id, subject, description);
        let sent = Instant::now();
        let (s, b) =
            send_webhook(&stack.http, &stack.csp.base, tenant, &secret, body, false).await?;
        let accepted = Instant::now();
        anyhow::ensure!(s == 202, "webhook: {s} {b}");
        let job = b["job_id"].as_str().context("job_id")?.to_owned();
        // The note post, seen by the ServiceDesk Plus proxy.
        let deadline = Instant::now() + Duration::from_secs(30);
        let note = loop {
            let notified = fakes.sdp_proxy.notify.notified();
            if let Some(c) = fakes
                .sdp_proxy
                .snapshot()
                .into_iter()
                .find(|c| c.method == "POST" && c.path.contains("/notes") && c.status < 300)
            {
                break c;
            }
            if Instant::now() > deadline {
                bail!("no note for ticket {id} within 30 s");
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        };
        let record = wait_completed(stack, &job, Duration::from_secs(30)).await?;
        if i + 1 == tickets.len() {
            let mut ctx = record["context_gathered"].clone();
            for key in [
                "similar_tickets",
                "kb_articles",
                "systems",
                "tickets",
                "articles",
            ] {
                if let Some(o) = ctx.as_object_mut() {
                    o.remove(key);
                }
            }
            progress(format!(
                "enhance/{}: the last job's context timings: {ctx}",
                mode_name(mode)
            ));
        }
        if i < 5 {
            continue;
        }
        let sdp: Vec<Call> = fakes
            .sdp_proxy
            .snapshot()
            .into_iter()
            .filter(|c| c.end <= note.end)
            .collect();
        let llm: Vec<Call> = fakes
            .llm_proxy
            .snapshot()
            .into_iter()
            .filter(|c| c.end <= note.end)
            .collect();
        anyhow::ensure!(
            !llm.is_empty(),
            "job {job}: the model was not called: {record}"
        );
        let d = |c: &Call| (c.end - c.start).as_secs_f64() * 1e3;
        let m: f64 = llm.iter().map(d).sum();
        let sd: f64 = sdp.iter().map(d).sum();
        sdp_calls += sdp.len();
        let e2e = note.end.saturating_duration_since(accepted).as_secs_f64() * 1e3;
        let e2e_send = (note.end - sent).as_secs_f64() * 1e3;
        total_ms.push(e2e);
        model_ms.push(m);
        sdp_ms.push(sd);
        over.push(e2e - m - sd);
        over_send.push(e2e_send - m - sd);
        if let Some(p) = record["processing_time_ms"].as_f64() {
            ptime.push(p);
        }
    }
    let n = total_ms.len();
    let (t, m, sd, o, os, p) = (
        Samples::new(total_ms),
        Samples::new(model_ms),
        Samples::new(sdp_ms),
        Samples::new(over),
        Samples::new(over_send),
        Samples::new(ptime),
    );
    Ok(vec![
        mode_name(mode).to_owned(),
        n.to_string(),
        ms(t.pct(50.0)),
        ms(t.pct(99.0)),
        ms(m.pct(50.0)),
        format!(
            "{} ({:.1}/job)",
            ms(sd.pct(50.0)),
            sdp_calls as f64 / n.max(1) as f64
        ),
        ms(o.pct(50.0)),
        ms(o.pct(90.0)),
        ms(o.pct(99.0)),
        ms(o.max()),
        format!("{} / {}", ms(os.pct(50.0)), ms(os.pct(99.0))),
        ms(p.pct(50.0)),
    ])
}

// --------------------------------------------------------------- import

#[derive(Args, Clone)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Resolved tickets seeded in `csp mock-ticketing`.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) tickets: usize,
}

pub(crate) async fn bench_import(args: &ImportArgs) -> Table {
    let mut table = Table::new(
        format!(
            "import: `csp tickets import --days 90` from `csp mock-ticketing --seed-resolved {}` (100 a page)",
            args.tickets
        ),
        vec![
            "mode",
            "imported",
            "wall s",
            "tickets/min",
            "re-run s (idempotent)",
            "rows after re-run",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("import/{}: starting", mode_name(mode)));
        let run = async {
            let stack = Stack::start(&args.common, mode, vec![]).await?;
            let result = import_run(&stack, mode, args).await;
            stack.stop().await;
            result
        };
        match run.await {
            Ok(row) => table.rows.push(row),
            Err(e) => table.failed(mode, &e),
        }
    }
    table
}

async fn import_run(stack: &Stack, mode: Mode, args: &ImportArgs) -> Result<Vec<String>> {
    let bin = csp_path(&args.common);
    let mut mock = Command::new(&bin)
        .args([
            "mock-ticketing",
            "--addr",
            "127.0.0.1:0",
            "--seed-resolved",
            &args.tickets.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(mock.stdout.take().expect("piped")).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await?
            .context("csp mock-ticketing ended")?;
        if let Some((_, rest)) = line.split_once("listening on ") {
            break rest.trim().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let tenant = "bench-import";
    stack.tenant(tenant, &url).await?;
    let db = stack.csp.database_url();
    let run_import = || {
        let mut cmd = Command::new(&bin);
        cmd.args(["tickets", "import", "--tenant-id", tenant, "--days", "90"])
            .env_remove("DATABASE_URL")
            .env("CSP_SECRET_KEY", csp_e2e::SECRET_KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        match mode {
            Mode::Dev => {
                let dir = db
                    .trim_start_matches("sqlite://")
                    .trim_end_matches("/csp.db")
                    .to_owned();
                cmd.args(["--data-dir", &dir]);
            }
            Mode::Distributed => {
                cmd.env("DATABASE_URL", &db);
            }
        }
        async move {
            let start = Instant::now();
            let out = cmd.output().await?;
            let secs = start.elapsed().as_secs_f64();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.status.success() {
                bail!(
                    "csp tickets import failed ({}): {stdout}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok::<_, anyhow::Error>((secs, stdout))
        }
    };
    let (secs, out) = run_import().await?;
    let done = out
        .lines()
        .find(|l| l.starts_with("Done:"))
        .unwrap_or_default()
        .to_owned();
    progress(format!("import/{}: {done}", mode_name(mode)));
    let imported: u64 = done
        .strip_prefix("Done: ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no Done: line")?;
    let (rerun, out2) = run_import().await?;
    let rows = out2
        .lines()
        .find(|l| l.starts_with("Done:"))
        .and_then(|l| l.split(" now has ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();
    let _ = mock.kill().await;
    Ok(vec![
        mode_name(mode).to_owned(),
        imported.to_string(),
        format!("{secs:.2}"),
        format!("{:.0}", imported as f64 / secs * 60.0),
        format!("{rerun:.2}"),
        rows,
    ])
}

// ------------------------------------------------------------- fairness

#[derive(Args, Clone)]
pub(crate) struct FairnessArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Tenant A's burst.
    #[arg(long, default_value_t = 2000)]
    pub(crate) burst: usize,
}

pub(crate) async fn bench_fairness(args: &FairnessArgs) -> Table {
    let mut table = Table::new(
        format!(
            "fairness: tenant A sends {} new tickets at once, then tenant B one; workers at the defaults \
             (concurrency 4, tenant in-flight 2); scripted model, fake ServiceDesk Plus",
            args.burst
        ),
        vec![
            "mode",
            "A accepted in s",
            "A done when B sent",
            "A done before B's note",
            "B send→note s",
            "A done/s meanwhile",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("fairness/{}: starting", mode_name(mode)));
        let run = async {
            let fakes = Fakes::start().await?;
            let mut env = fakes.env();
            env.push(rate_limit_env());
            let stack = Stack::start(&args.common, mode, env).await?;
            let result = fairness_run(&stack, &fakes, mode, args).await;
            stack.stop().await;
            fakes.stop().await;
            result
        };
        match run.await {
            Ok(row) => table.rows.push(row),
            Err(e) => table.failed(mode, &e),
        }
    }
    table
}

async fn fairness_run(
    stack: &Stack,
    fakes: &Fakes,
    mode: Mode,
    args: &FairnessArgs,
) -> Result<Vec<String>> {
    let vocab = Vocabulary::new();
    let sa = stack.tenant("bench-a", &fakes.sdp_proxy.url).await?;
    let sb = stack.tenant("bench-b", &fakes.sdp_proxy.url).await?;
    seed_context(stack, "bench-a", &sa, &vocab).await?;
    seed_context(stack, "bench-b", &sb, &vocab).await?;
    let mut rng = Rng::new(5);
    let a_first = 800_000u64;
    let b_id = 900_000u64;
    let mut bodies = Vec::new();
    for i in 0..args.burst as u64 {
        let (s, d) = (vocab.text(&mut rng, 3, 6), vocab.text(&mut rng, 20, 50));
        fakes
            .sdp
            .mock()
            .insert(csp_mock_ticketing::MockRequest::open(
                a_first + i,
                &s,
                &d,
                "High",
            ));
        bodies.push(new_ticket_body(a_first + i, &s, &d));
    }
    let (s, d) = (vocab.text(&mut rng, 3, 6), vocab.text(&mut rng, 20, 50));
    fakes
        .sdp
        .mock()
        .insert(csp_mock_ticketing::MockRequest::open(b_id, &s, &d, "High"));
    let b_body = new_ticket_body(b_id, &s, &d);

    let started = Instant::now();
    let (http, base) = (stack.http.clone(), stack.csp.base.clone());
    let results: Vec<Result<(u16, Value)>> = futures::stream::iter(bodies)
        .map(|body| {
            let (http, base, sa) = (http.clone(), base.clone(), sa.clone());
            async move { send_webhook(&http, &base, "bench-a", &sa, body, false).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let accepted = results.iter().filter(|r| matches!(r, Ok((202, _)))).count();
    anyhow::ensure!(
        accepted == args.burst,
        "only {accepted}/{} of A's webhooks accepted",
        args.burst
    );
    let a_secs = started.elapsed().as_secs_f64();
    let a_done = |notes: &[csp_mock_ticketing::MockNote]| {
        notes.iter().filter(|n| n.request_id != b_id).count()
    };
    let done_at_b = a_done(&fakes.sdp.mock().notes());
    let b_sent = Instant::now();
    let (s, b) = send_webhook(&stack.http, &stack.csp.base, "bench-b", &sb, b_body, false).await?;
    anyhow::ensure!(s == 202, "B's webhook: {s} {b}");
    let deadline = Instant::now() + Duration::from_secs(600);
    let b_note = loop {
        if let Some(n) = fakes.sdp.mock().notes_for(b_id).into_iter().next() {
            break n;
        }
        if Instant::now() > deadline {
            bail!("B's note did not arrive within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let b_secs = b_sent.elapsed().as_secs_f64();
    let notes = fakes.sdp.mock().notes();
    let before_b = notes
        .iter()
        .filter(|n| n.request_id != b_id && n.id < b_note.id)
        .count();
    progress(format!(
        "fairness/{}: B's note after {before_b} of A's ({} when B was sent), {b_secs:.2} s",
        mode_name(mode),
        done_at_b
    ));
    Ok(vec![
        mode_name(mode).to_owned(),
        format!("{a_secs:.1}"),
        done_at_b.to_string(),
        before_b.to_string(),
        format!("{b_secs:.2}"),
        format!("{:.1}", (before_b - done_at_b) as f64 / b_secs.max(1e-3)),
    ])
}
