//! `csp-bench faults`: a mixed load (chat sessions streaming, webhooks at a
//! steady rate, workers enhancing, audited admin actions, budget-charging
//! turns) while one component at a time is killed with SIGKILL and started
//! again — or the network to Postgres stalls — and, after each, what was
//! lost: chat messages, stream events (per-session `seq` gaps and
//! duplicates), webhooks acknowledged but never enhanced, duplicate notes,
//! audit entries, spend over the cap, and how long the load took to
//! succeed again. It prints the table; `docs/reliability.md` explains it.
//!
//! Distributed mode runs against Postgres, Redis and NATS servers of its
//! own ([`csp_e2e::backends`]), never the machine's, since it kills them.
//! Clients reach the gateway through a [`TcpProxy`] (the load balancer's
//! stable address across a gateway restart), the services reach Postgres
//! through another (the stall).

use super::tickets::{Stack, new_ticket_body, rate_limit_env, send_webhook};
use crate::{Common, Table, agent_env, csp_path, mode_name, progress};
use anyhow::{Context, Result, bail};
use clap::Args;
use csp_e2e::backends::{Backend, Backends, RedisPersistence};
use csp_e2e::{BackendUrls, Csp, Mode, Options, TcpProxy, Ws};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub(crate) struct FaultsArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Load time per fault: a third before the kill, two thirds after the
    /// component is back.
    #[arg(long, default_value_t = 20)]
    pub(crate) seconds_per_fault: u64,
    /// How long a killed component stays down.
    #[arg(long, default_value_t = 3)]
    pub(crate) down_secs: u64,
    /// How long the network to Postgres stalls.
    #[arg(long, default_value_t = 10)]
    pub(crate) stall_secs: u64,
    /// Chat sessions streaming at once (plus one budget-charging session).
    #[arg(long, default_value_t = 3)]
    pub(crate) sessions: usize,
    /// Signed new-ticket webhooks per second.
    #[arg(long, default_value_t = 10)]
    pub(crate) webhooks_per_sec: u64,
}

/// A chat turn of the stand-in agent: 20 deltas 50 ms apart.
const TURN: &str = "bench deltas=20 gap_us=50000";
const TURN_DELTAS: usize = 20;
/// The budget user's turns: each reports $0.05 against a $0.50 cap, so
/// the tenth reaches it; a reserve ($0.25) covers every turn, so the
/// documented bound on overspend is $0.00 here.
const BUDGET_TURN: &str = "bench deltas=10 gap_us=200000 cost_usd=0.05";
const BUDGET_CAP_USD: f64 = 0.5;
/// Admin actions (audit-logged) per second.
const AUDITED_PER_SEC: u64 = 2;
const TENANT: &str = "faults";

#[derive(Clone, Copy)]
enum Fault {
    /// A `csp serve` process of the harness (gRPC ones keep their address).
    Service(&'static str),
    /// One backend server, started again on its port and data.
    Backend(Backend, &'static str),
    /// The network between every service and Postgres stops forwarding.
    StallPostgres,
    /// `csp dev`, started again on its data directory.
    Dev,
}

impl Fault {
    fn label(self, stall_secs: u64) -> String {
        match self {
            Fault::Service(name) => name.to_owned(),
            Fault::Backend(_, label) => label.to_owned(),
            Fault::StallPostgres => format!("network stall to Postgres ({stall_secs} s)"),
            Fault::Dev => "csp dev".to_owned(),
        }
    }
}

fn faults(mode: Mode) -> Vec<Fault> {
    match mode {
        Mode::Dev => vec![Fault::Dev],
        Mode::Distributed => vec![
            Fault::Service("gateway"),
            Fault::Service("session-pool"),
            Fault::Service("policy"),
            Fault::Service("plugins"),
            Fault::Service("tickets"),
            Fault::Service("tickets-worker"),
            Fault::Backend(Backend::Postgres, "Postgres"),
            Fault::Backend(Backend::Redis, "Redis (no persistence)"),
            Fault::Backend(Backend::Redis, "Redis (appendonly, fsync 1 s)"),
            Fault::Backend(Backend::Nats, "NATS JetStream (file store)"),
            Fault::StallPostgres,
        ],
    }
}

pub(crate) async fn bench_faults(args: &FaultsArgs) -> Vec<Table> {
    let header = vec![
        "mode",
        "component",
        "chat messages lost",
        "deltas lost",
        "deltas duplicated",
        "webhooks acked not enhanced",
        "duplicate notes",
        "audit events lost",
        "budget overspend $",
        "recovery s",
    ];
    let mut losses = Table::new(
        format!(
            "faults: losses per component killed with SIGKILL (down {} s) under load; {} s of load per fault, \
             {} chat sessions + 1 budget session, {} webhooks/s, {} audited admin actions/s",
            args.down_secs,
            args.seconds_per_fault,
            args.sessions,
            args.webhooks_per_sec,
            AUDITED_PER_SEC
        ),
        header,
    );
    let mut load = Table::new(
        "faults: the load each row counted over (the denominators)",
        vec![
            "mode",
            "component",
            "turns sent/acked/answered/given up",
            "events seen",
            "short answers",
            "webhooks sent/202",
            "jobs completed/failed/pending",
            "notes",
            "admin actions 200",
            "budget spent/cap $",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("faults/{}: starting", mode_name(mode)));
        match run_mode(mode, args).await {
            Ok(rows) => {
                for (l, d) in rows {
                    losses.rows.push(l);
                    load.rows.push(d);
                }
            }
            Err(e) => losses.failed(mode, &e),
        }
    }
    vec![losses, load]
}

/// What the run of one mode holds for its whole length.
struct Rig {
    stack: Stack,
    backends: Option<Backends>,
    front: TcpProxy,
    pg_proxy: Option<TcpProxy>,
    sdp: csp_mock_ticketing::RunningMock,
    secret: String,
    /// The user every audited admin action updates.
    audit_target: String,
}

async fn run_mode(mode: Mode, args: &FaultsArgs) -> Result<Vec<(Vec<String>, Vec<String>)>> {
    let mut rig = start_rig(mode, args).await?;
    let result = run_faults(&mut rig, mode, args).await;
    if let Err(e) = &result {
        progress(format!("faults/{} failed: {e:#}", mode_name(mode)));
    }
    // `CSP_FAULTS_LOGS=<dir>`: every process's log of the run, kept.
    if let Some(dir) = std::env::var_os("CSP_FAULTS_LOGS") {
        let path = std::path::Path::new(&dir).join(format!("{}.log", mode_name(mode)));
        if let Err(e) = std::fs::write(&path, rig.stack.csp.all_logs()) {
            progress(format!("writing {}: {e}", path.display()));
        }
    }
    rig.stack.stop().await;
    rig.sdp.shutdown().await;
    drop(rig.pg_proxy);
    drop(rig.backends);
    result
}

async fn start_rig(mode: Mode, args: &FaultsArgs) -> Result<Rig> {
    let sdp =
        csp_mock_ticketing::RunningMock::start(csp_mock_ticketing::MockSdp::builder().build())
            .await?;
    let mut env = agent_env(&args.common, false)?;
    env.push(("MAX_SESSIONS_PER_USER".into(), "200".into()));
    env.push(rate_limit_env());
    let (backends, pg_proxy, urls) = match mode {
        Mode::Dev => (None, None, None),
        Mode::Distributed => {
            let backends = Backends::start(RedisPersistence::None).await?;
            let pg_proxy = TcpProxy::start(vec![backends.addr(Backend::Postgres)]).await?;
            let urls = BackendUrls {
                database: format!("postgres://postgres@{}/postgres", pg_proxy.addr()),
                ..backends.urls()
            };
            (Some(backends), Some(pg_proxy), Some(urls))
        }
    };
    let csp = Csp::start(
        mode,
        Options {
            prewarm: 2,
            max_sessions: 200,
            env,
            bin: Some(csp_path(&args.common)),
            tickets: true,
            backends: urls,
            ..Options::default()
        },
    )
    .await?;
    let front = TcpProxy::start(vec![http_addr(&csp.base)]).await?;
    let mut stack = Stack::adopt(csp).await?;
    stack.csp.base = front.url();
    let secret = stack.tenant(TENANT, &sdp.base_url()).await?;
    let (status, body) = stack
        .api(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": "audit-target", "password": "audit-target-pw", "role": "user"}),
            ),
        )
        .await?;
    if status != 201 {
        bail!("creating the audit target: {status} {body}");
    }
    let audit_target = body["user_id"].as_str().context("user_id")?.to_owned();
    Ok(Rig {
        stack,
        backends,
        front,
        pg_proxy,
        sdp,
        secret,
        audit_target,
    })
}

/// `http://127.0.0.1:PORT/` → `127.0.0.1:PORT`
fn http_addr(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

// ------------------------------------------------------------ the load

/// When each kind of load last succeeded, to time the recovery.
#[derive(Default)]
struct Successes {
    chat: Vec<Instant>,
    webhook: Vec<Instant>,
    audit: Vec<Instant>,
    note: Vec<Instant>,
}

type Shared = Arc<Mutex<Successes>>;

/// One chat client's record of its session, like a browser's.
#[derive(Default)]
struct ChatLog {
    session: Option<String>,
    /// Texts of the messages sent, and whether `user_message` echoed them.
    sent: Vec<(String, bool)>,
    /// Every frame seen with a `seq`, first copy.
    seen: BTreeMap<u64, Value>,
    duplicates: usize,
    refused_budget: bool,
    /// The last send was refused (an error frame without `seq`).
    refused: bool,
    /// Turns given up on: nothing came for [`GIVE_UP`] (the user would
    /// type again).
    stalled: usize,
}

/// How long a client waits for any frame of its turn in flight.
const GIVE_UP: Duration = Duration::from_secs(10);

impl ChatLog {
    fn last_seq(&self) -> u64 {
        self.seen.keys().next_back().copied().unwrap_or(0)
    }

    /// Handles one frame; `true` when it ends the turn in flight.
    fn take(&mut self, frame: Value, successes: &Shared) -> bool {
        let kind = frame["type"].as_str().unwrap_or_default().to_owned();
        if let Some(seq) = frame["seq"].as_u64() {
            if self.session.is_none() {
                self.session = frame["session_id"].as_str().map(str::to_owned);
            }
            if kind == "user_message"
                && let Some(s) = self
                    .sent
                    .iter_mut()
                    .find(|(t, _)| frame["text"].as_str() == Some(t))
            {
                s.1 = true;
            }
            match self.seen.entry(seq) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(frame.clone());
                }
                std::collections::btree_map::Entry::Occupied(_) => self.duplicates += 1,
            }
        }
        match kind.as_str() {
            "result" => {
                successes.lock().unwrap().chat.push(Instant::now());
                true
            }
            "error" => {
                if frame["code"] == "budget_exceeded" {
                    self.refused_budget = true;
                }
                self.refused = frame["seq"].is_null();
                true
            }
            "session" => frame["status"] == "failed" || frame["status"] == "ended",
            _ => false,
        }
    }
}

/// One browser-like client: sends a turn, reads it to its end, sends the
/// next; on a drop reconnects with `?session=<id>&after_seq=<last seq>`.
async fn chat_client(
    csp_base: String,
    token: String,
    script: &'static str,
    stop: Arc<AtomicBool>,
    successes: Shared,
) -> ChatLog {
    let mut log = ChatLog::default();
    let mut ws: Option<Ws> = None;
    // When the turn in flight last showed progress.
    let mut pending: Option<Instant> = None;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && pending.is_none() {
            break;
        }
        if ws.is_none() {
            match connect(&csp_base, &token, &log).await {
                Ok(w) => {
                    debug(format!(
                        "connected {:?} after {}",
                        log.session,
                        log.last_seq()
                    ));
                    ws = Some(w)
                }
                Err(e) => {
                    debug(format!("connect: {e:#}"));
                    if stopping && pending.is_some_and(|p| p.elapsed() > GIVE_UP) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            }
        }
        let socket = ws.as_mut().expect("connected");
        if pending.is_none() && !stopping {
            if log.refused_budget || log.refused {
                // Refused (at the cap, or a service is down): try again
                // now and then, as a user would.
                tokio::time::sleep(Duration::from_secs(1)).await;
                log.refused = false;
            }
            let text = format!("{script} n={}", uuid::Uuid::new_v4().simple());
            if socket
                .send(json!({"type": "send", "text": text}))
                .await
                .is_err()
            {
                ws = None;
                continue;
            }
            log.sent.push((text, false));
            pending = Some(Instant::now());
        }
        match tokio::time::timeout(Duration::from_secs(1), socket.next()).await {
            Ok(Ok(frame)) => {
                if frame["type"] != "delta" {
                    debug(format!("frame: {frame}"));
                }
                if log.take(frame, &successes) {
                    pending = None;
                } else if pending.is_some() {
                    pending = Some(Instant::now());
                }
            }
            Ok(Err(e)) => {
                debug(format!("socket: {e:#}"));
                ws = None
            }
            Err(_) => {
                // A turn that shows nothing for a while is given up on, as
                // a user would; the load table counts them.
                if pending.is_some_and(|p| p.elapsed() > GIVE_UP) {
                    debug(format!("gave up a turn of {:?}", log.session));
                    log.stalled += 1;
                    pending = None;
                }
            }
        }
    }
    if let Some(w) = ws {
        w.close().await;
    }
    log
}

/// `CSP_FAULTS_DEBUG=1`: every client's non-delta frame and error.
fn debug(msg: String) {
    if std::env::var_os("CSP_FAULTS_DEBUG").is_some() {
        eprintln!("faults: {msg}");
    }
}

/// A new session, or the client's own again from its last seq.
async fn connect(base: &str, token: &str, log: &ChatLog) -> Result<Ws> {
    let query = match &log.session {
        Some(id) => format!("session={id}&after_seq={}", log.last_seq()),
        None => String::new(),
    };
    tokio::time::timeout(Duration::from_secs(5), Ws::connect(base, &query, token))
        .await
        .context("upgrade timed out")?
}

/// After the load stopped: reattach once more with the last seq and read
/// until quiet, as a browser coming back would, so that what the store
/// holds and the client never saw shows up as lost, not as pending.
async fn catch_up(base: &str, token: &str, log: &mut ChatLog, successes: &Shared) {
    if log.session.is_none() {
        return;
    }
    let Ok(mut ws) = connect(base, token, log).await else {
        return;
    };
    while let Ok(Ok(frame)) = tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
        log.take(frame, successes);
    }
    ws.close().await;
}

/// What one session lost, comparing the client's record with the store.
#[derive(Default)]
struct ChatCount {
    messages_lost: usize,
    deltas_lost: usize,
    duplicates: usize,
    sent: usize,
    acked: usize,
    stalled: usize,
    answered: usize,
    events: usize,
    short: usize,
}

async fn count_session(stack: &Stack, log: &ChatLog, deltas: usize) -> Result<ChatCount> {
    let mut c = ChatCount {
        duplicates: log.duplicates,
        sent: log.sent.len(),
        acked: log.sent.iter().filter(|(_, a)| *a).count(),
        stalled: log.stalled,
        events: log.seen.len(),
        ..ChatCount::default()
    };
    let Some(id) = &log.session else {
        return Ok(c);
    };
    let (status, history) = stack
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/sessions/{id}/messages"),
            None,
        )
        .await?;
    if status != 200 {
        bail!("history of {id}: {status} {history}");
    }
    let last = history["last_seq"].as_u64().unwrap_or(0);
    let stored: Vec<Value> = history["messages"].as_array().cloned().unwrap_or_default();
    // Stream events: every seq up to the store's last reached the
    // client (the store keeps only some kinds, but the stream had them all).
    c.deltas_lost = (1..=last).filter(|s| !log.seen.contains_key(s)).count();
    // A stored event the client saw a different event under (a seq used
    // twice) was never seen either.
    c.deltas_lost += stored
        .iter()
        .filter(|f| f["type"] != "delta")
        .filter(|f| {
            f["seq"]
                .as_u64()
                .and_then(|s| log.seen.get(&s))
                .is_some_and(|seen| seen["type"] != f["type"] || seen.get("text") != f.get("text"))
        })
        .count();
    // A message, a turn's end or an error the client saw that the store
    // does not hold (past its last seq): lost from the history. (Seen text
    // past it shows in the turn comparison below; `preparing`/`ready` are
    // never stored.)
    c.messages_lost += log
        .seen
        .range(last + 1..)
        .filter(|(_, f)| {
            matches!(
                f["type"].as_str(),
                Some("user_message" | "result" | "error")
            )
        })
        .count();
    // User messages acknowledged (echoed) but not stored.
    let stored_users: BTreeSet<&str> = stored
        .iter()
        .filter(|f| f["type"] == "user_message")
        .filter_map(|f| f["text"].as_str())
        .collect();
    c.messages_lost += log
        .sent
        .iter()
        .filter(|(t, acked)| *acked && !stored_users.contains(t.as_str()))
        .count();
    // Assistant answers: per turn (from its user_message to the next), the
    // text the client assembled against the text the store holds.
    let starts: Vec<u64> = log
        .seen
        .iter()
        .filter(|(_, f)| f["type"] == "user_message")
        .map(|(s, _)| *s)
        .collect();
    for (i, start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(u64::MAX);
        let in_turn = |f: &&Value| f["seq"].as_u64().is_some_and(|s| s > *start && s < end);
        let seen_text: String = log
            .seen
            .values()
            .filter(in_turn)
            .filter(|f| f["type"] == "delta")
            .filter_map(|f| f["text"].as_str())
            .collect();
        let stored_text: String = stored
            .iter()
            .filter(in_turn)
            .filter(|f| f["type"] == "delta")
            .filter_map(|f| f["text"].as_str())
            .collect();
        let result = log
            .seen
            .values()
            .filter(in_turn)
            .find(|f| f["type"] == "result");
        if let Some(r) = result {
            c.answered += 1;
            if seen_text != stored_text {
                c.messages_lost += 1;
            }
            // The stand-in's answer is `deltas` pieces `t=<µs>;`: fewer in a
            // turn that completed is text lost without a seq gap.
            if r["is_error"] == false && r["interrupted"] != true {
                let pieces = seen_text.matches("t=").count();
                if pieces < deltas {
                    c.short += 1;
                }
            }
        }
    }
    Ok(c)
}

/// One webhook sent: ticket id, status, job id.
type Sent = (u64, u16, Option<String>);

/// Where webhooks go: the load balancer, the tenant's secret, and the
/// fake ServiceDesk Plus their tickets are seeded in.
struct Intake {
    http: reqwest::Client,
    base: String,
    secret: String,
    sdp: csp_mock_ticketing::MockSdp,
}

async fn webhook_load(
    intake: Intake,
    first_id: u64,
    per_sec: u64,
    stop: Arc<AtomicBool>,
    successes: Shared,
) -> Vec<Sent> {
    let Intake {
        http: stack_http,
        base,
        secret,
        sdp,
    } = intake;
    let mut tasks = tokio::task::JoinSet::new();
    let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / per_sec.max(1)));
    let mut id = first_id;
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        let description = format!(
            "Ticket {id}: the VPN at 10.0.0.{} drops every hour.",
            id % 250
        );
        sdp.insert(csp_mock_ticketing::MockRequest::open(
            id,
            "VPN drops",
            &description,
            "High",
        ));
        let (http, base, secret, successes) = (
            stack_http.clone(),
            base.clone(),
            secret.clone(),
            successes.clone(),
        );
        tasks.spawn(async move {
            let body = new_ticket_body(id, "VPN drops", &description);
            let sent = tokio::time::timeout(
                Duration::from_secs(10),
                send_webhook(&http, &base, TENANT, &secret, body, false),
            )
            .await;
            match sent {
                Ok(Ok((status, body))) => {
                    if status == 202 {
                        successes.lock().unwrap().webhook.push(Instant::now());
                    }
                    (id, status, body["job_id"].as_str().map(str::to_owned))
                }
                _ => (id, 0, None),
            }
        });
        id += 1;
    }
    tasks.join_all().await
}

/// Audited admin actions: each sets the target's cap to a value of its
/// own, so its audit entry can be found. The values acknowledged (200).
async fn audit_load(
    http: reqwest::Client,
    base: String,
    token: String,
    target: String,
    first: u64,
    stop: Arc<AtomicBool>,
    successes: Shared,
) -> Vec<u64> {
    let mut acked = Vec::new();
    let mut every = tokio::time::interval(Duration::from_millis(1000 / AUDITED_PER_SEC));
    let mut value = first;
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        let done = tokio::time::timeout(
            Duration::from_secs(10),
            http.patch(format!("{base}/api/v1/users/{target}"))
                .bearer_auth(&token)
                .json(&json!({"monthly_cost_cap_usd": value as f64}))
                .send(),
        )
        .await;
        if let Ok(Ok(r)) = done
            && r.status() == 200
        {
            acked.push(value);
            successes.lock().unwrap().audit.push(Instant::now());
        }
        value += 1;
    }
    acked
}

async fn note_watch(sdp: csp_mock_ticketing::MockSdp, stop: Arc<AtomicBool>, successes: Shared) {
    let mut last = sdp.note_posts();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sdp.note_posts();
        if now > last {
            successes.lock().unwrap().note.push(Instant::now());
            last = now;
        }
    }
}

// ------------------------------------------------------------ the faults

/// What one fault left, before the end-of-run checks.
struct Phase {
    label: String,
    chat: ChatCount,
    webhooks: Vec<Sent>,
    audited: Vec<u64>,
    budget_user: String,
    recovery: String,
}

async fn run_faults(
    rig: &mut Rig,
    mode: Mode,
    args: &FaultsArgs,
) -> Result<Vec<(Vec<String>, Vec<String>)>> {
    let mut phases = Vec::new();
    for (i, fault) in faults(mode).into_iter().enumerate() {
        let label = fault.label(args.stall_secs);
        progress(format!("faults/{}: {label}", mode_name(mode)));
        phases.push(run_phase(rig, fault, i as u64, label, args).await?);
    }
    progress(format!(
        "faults/{}: waiting for every acknowledged webhook's job to end",
        mode_name(mode)
    ));
    let jobs = final_jobs(&rig.stack, &phases).await?;
    let audit = audited_values(&rig.stack).await?;
    let spend = spend_by_user(&rig.stack).await?;
    let mut rows = Vec::new();
    for p in &phases {
        let acked: Vec<&Sent> = p.webhooks.iter().filter(|w| w.1 == 202).collect();
        let (mut completed, mut failed, mut pending) = (0, 0, 0);
        for (_, _, job) in &acked {
            match job.as_deref().and_then(|j| jobs.get(j)).map(String::as_str) {
                Some("completed") => completed += 1,
                Some("failed") => failed += 1,
                _ => pending += 1,
            }
        }
        let notes: Vec<usize> = p
            .webhooks
            .iter()
            .map(|(id, _, _)| rig.sdp.mock().notes_for(*id).len())
            .collect();
        let duplicate_notes: usize = notes.iter().map(|n| n.saturating_sub(1)).sum();
        let audit_lost = p.audited.iter().filter(|v| !audit.contains(v)).count();
        let spent = spend.get(&p.budget_user).copied().unwrap_or(0.0);
        rows.push((
            vec![
                mode_name(mode).to_owned(),
                p.label.clone(),
                p.chat.messages_lost.to_string(),
                p.chat.deltas_lost.to_string(),
                p.chat.duplicates.to_string(),
                (acked.len() - completed).to_string(),
                duplicate_notes.to_string(),
                audit_lost.to_string(),
                format!("{:.2}", (spent - BUDGET_CAP_USD).max(0.0)),
                p.recovery.clone(),
            ],
            vec![
                mode_name(mode).to_owned(),
                p.label.clone(),
                format!(
                    "{}/{}/{}/{}",
                    p.chat.sent, p.chat.acked, p.chat.answered, p.chat.stalled
                ),
                p.chat.events.to_string(),
                p.chat.short.to_string(),
                format!("{}/{}", p.webhooks.len(), acked.len()),
                format!("{completed}/{failed}/{pending}"),
                notes.iter().sum::<usize>().to_string(),
                p.audited.len().to_string(),
                format!("{spent:.2}/{BUDGET_CAP_USD:.2}"),
            ],
        ));
    }
    Ok(rows)
}

async fn run_phase(
    rig: &mut Rig,
    fault: Fault,
    index: u64,
    label: String,
    args: &FaultsArgs,
) -> Result<Phase> {
    let base = rig.stack.csp.base.clone();
    // A budget user of this phase alone: its spend is this phase's.
    let budget_user = format!("budget-{index}");
    let (status, body) = rig
        .stack
        .api(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": budget_user, "password": "budget-user-pw",
                "role": "user", "monthly_cost_cap_usd": BUDGET_CAP_USD}),
            ),
        )
        .await?;
    if status != 201 {
        bail!("creating {budget_user}: {status} {body}");
    }
    let budget_token = rig
        .stack
        .csp
        .login_as(&budget_user, "budget-user-pw")
        .await?;

    let stop = Arc::new(AtomicBool::new(false));
    let successes: Shared = Arc::default();
    let mut chats = Vec::new();
    for _ in 0..args.sessions {
        chats.push(tokio::spawn(chat_client(
            base.clone(),
            rig.stack.token.clone(),
            TURN,
            stop.clone(),
            successes.clone(),
        )));
    }
    let budget = tokio::spawn(chat_client(
        base.clone(),
        budget_token.clone(),
        BUDGET_TURN,
        stop.clone(),
        successes.clone(),
    ));
    let webhooks = tokio::spawn(webhook_load(
        Intake {
            http: rig.stack.http.clone(),
            base: base.clone(),
            secret: rig.secret.clone(),
            sdp: rig.sdp.mock().clone(),
        },
        (index + 1) * 1_000_000,
        args.webhooks_per_sec,
        stop.clone(),
        successes.clone(),
    ));
    let notes = tokio::spawn(note_watch(
        rig.sdp.mock().clone(),
        stop.clone(),
        successes.clone(),
    ));
    let audit = tokio::spawn(audit_load(
        rig.stack.http.clone(),
        base.clone(),
        rig.stack.token.clone(),
        rig.audit_target.clone(),
        10_000 * (index + 1),
        stop.clone(),
        successes.clone(),
    ));

    let total = Duration::from_secs(args.seconds_per_fault);
    tokio::time::sleep(total / 3).await;
    let injected = Instant::now();
    let back = inject(rig, fault, args).await;
    progress(format!(
        "  back after {:.1} s; load goes on for {} s",
        injected.elapsed().as_secs_f64(),
        (total * 2 / 3).as_secs()
    ));
    tokio::time::sleep(total * 2 / 3).await;
    stop.store(true, Ordering::Relaxed);
    let back = back?;
    let audited = audit.await?;
    let mut logs = Vec::new();
    for c in chats {
        logs.push(c.await?);
    }
    let mut budget_log = budget.await?;
    let sent = webhooks.await?;
    notes.await?;
    let mut chat = ChatCount::default();
    let base = rig.stack.csp.base.clone();
    for (log, token, deltas) in logs
        .iter_mut()
        .map(|l| (l, &rig.stack.token, TURN_DELTAS))
        .chain(std::iter::once((&mut budget_log, &budget_token, 10)))
    {
        catch_up(&base, token, log, &successes).await;
        let c = count_session(&rig.stack, log, deltas).await?;
        chat.messages_lost += c.messages_lost;
        chat.deltas_lost += c.deltas_lost;
        chat.duplicates += c.duplicates;
        chat.sent += c.sent;
        chat.acked += c.acked;
        chat.stalled += c.stalled;
        chat.answered += c.answered;
        chat.events += c.events;
        chat.short += c.short;
    }
    let recovery = recovery_after(&successes.lock().unwrap(), back);
    Ok(Phase {
        label,
        chat,
        webhooks: sent,
        audited,
        budget_user,
        recovery,
    })
}

/// Kills (or stalls) one component, waits, brings it back; the moment it
/// was back.
async fn inject(rig: &mut Rig, fault: Fault, args: &FaultsArgs) -> Result<Instant> {
    let down = Duration::from_secs(args.down_secs);
    let csp = &mut rig.stack.csp;
    match fault {
        Fault::Service(name) => {
            csp.kill9(name).await;
            tokio::time::sleep(down).await;
            match name {
                // Nothing addresses the worker; the gateway is reached
                // through the front proxy, told its new address below.
                "tickets-worker" | "gateway" => csp.restart(name).await?,
                _ => csp.restart_same_addr(name).await?,
            }
            if name == "gateway" {
                let addr = csp.addr_of("gateway").context("the gateway's address")?;
                rig.front.set_upstreams(vec![http_addr(&addr)]);
            }
        }
        Fault::Backend(which, _) => {
            let backends = rig.backends.as_mut().context("no backends of our own")?;
            backends.kill9(which);
            tokio::time::sleep(down).await;
            // Redis comes back with an append-only file from the first
            // kill on, so its second row measures a persistent Redis.
            if which == Backend::Redis {
                backends.set_redis_persistence(RedisPersistence::AppendOnly);
            }
            backends.restart(which).await?;
        }
        Fault::StallPostgres => {
            let proxy = rig.pg_proxy.as_ref().context("no Postgres proxy")?;
            proxy.stall(true);
            tokio::time::sleep(Duration::from_secs(args.stall_secs)).await;
            proxy.stall(false);
        }
        Fault::Dev => {
            csp.kill9("dev").await;
            tokio::time::sleep(down).await;
            csp.restart_dev().await?;
            rig.front.set_upstreams(vec![http_addr(&csp.base)]);
            csp.base = rig.front.url();
        }
    }
    Ok(Instant::now())
}

/// From the moment the component was back until every kind of load had
/// succeeded again (a chat turn answered, a webhook accepted, an audited
/// action answered, a note posted).
fn recovery_after(s: &Successes, back: Instant) -> String {
    let mut worst = Duration::ZERO;
    for (kind, times) in [
        ("chat", &s.chat),
        ("webhook", &s.webhook),
        ("audit", &s.audit),
        ("note", &s.note),
    ] {
        match times.iter().find(|t| **t >= back) {
            Some(t) => worst = worst.max(*t - back),
            None => return format!("no {kind} success after the restart"),
        }
    }
    format!("{:.1}", worst.as_secs_f64())
}

/// Each acknowledged job's status once none is pending or processing any
/// more (or after 3 minutes).
async fn final_jobs(stack: &Stack, phases: &[Phase]) -> Result<BTreeMap<String, String>> {
    let mut open: Vec<String> = phases
        .iter()
        .flat_map(|p| p.webhooks.iter())
        .filter_map(|(_, s, j)| (*s == 202).then(|| j.clone()).flatten())
        .collect();
    let mut done = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !open.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for job in open {
            let (s, body) = stack
                .api(
                    reqwest::Method::GET,
                    &format!("/api/v1/enhancements/{job}"),
                    None,
                )
                .await?;
            let status = body["status"].as_str().unwrap_or_default().to_owned();
            if s == 200 && (status == "completed" || status == "failed") {
                done.insert(job, status);
            } else {
                if s == 200 {
                    done.insert(job.clone(), status);
                }
                still.push(job);
            }
        }
        open = still;
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    Ok(done)
}

/// The cap values of every `admin.user.update` in the audit log.
async fn audited_values(stack: &Stack) -> Result<BTreeSet<u64>> {
    let mut values = BTreeSet::new();
    let mut before: Option<u64> = None;
    loop {
        let mut path = "/api/v1/admin/audit-log?tool_name=admin.user.update".to_owned();
        if let Some(b) = before {
            path.push_str(&format!("&before={b}"));
        }
        let (s, body) = stack.api(reqwest::Method::GET, &path, None).await?;
        if s != 200 {
            bail!("audit log: {s} {body}");
        }
        for e in body["entries"].as_array().into_iter().flatten() {
            let input: Value = serde_json::from_str(e["sanitized_input"].as_str().unwrap_or("{}"))
                .unwrap_or(Value::Null);
            if let Some(v) = input["monthly_cost_cap_usd"].as_f64() {
                values.insert(v as u64);
            }
        }
        match body["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => return Ok(values),
        }
    }
}

/// This month's spend of every user, by username.
async fn spend_by_user(stack: &Stack) -> Result<BTreeMap<String, f64>> {
    let (s, body) = stack
        .api(reqwest::Method::GET, "/api/v1/users", None)
        .await?;
    if s != 200 {
        bail!("users: {s} {body}");
    }
    Ok(body["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| {
            Some((
                u["username"].as_str()?.to_owned(),
                u["current_month_spend_usd"].as_f64()?,
            ))
        })
        .collect())
}
