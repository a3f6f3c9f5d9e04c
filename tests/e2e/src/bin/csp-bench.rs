//! `csp-bench`: measures csp from the outside and prints the figures.
//!
//! Owns: starting the real `csp` binary through the e2e harness, driving it
//! over loopback HTTP and WebSockets like a browser, and reading its
//! processes' `/proc` entries. It asserts nothing (benchmarks measure, tests
//! assert) and never tunes or reaches into csp. What each subcommand
//! measures, how, and the figures of one machine are in
//! `docs/benchmarks.md`.
//!
//! Sessions run `csp-bench-agent`, a stand-in for the Claude Code CLI (see
//! its source), unless `--real-cli` is given: the real CLI costs ~180 MB
//! and ~0.4 s per session and would hide csp's own overhead.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use csp_e2e::{Csp, Mode, Options, Ws};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[path = "bench/charts.rs"]
mod charts;
#[path = "bench/dashboard.rs"]
mod dashboard;
#[path = "bench/faults.rs"]
mod faults;
#[path = "bench/history.rs"]
mod history;
#[path = "bench/peers.rs"]
mod peers;
#[path = "bench/scale.rs"]
mod scale;
#[path = "bench/search.rs"]
mod search;
#[path = "bench/soak.rs"]
mod soak;
#[path = "bench/text.rs"]
mod text;
#[path = "bench/tickets.rs"]
mod tickets;

#[derive(Parser)]
#[command(
    name = "csp-bench",
    about = "Latency and memory figures of csp (prints figures, asserts nothing)"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// WebSocket open → `{"type":"session","status":"ready"}` from the warm pool.
    Ready(ReadyArgs),
    /// Agent stdout line → WebSocket frame, per text delta.
    Relay(RelayArgs),
    /// Gateway memory per idle WebSocket reattached to one session.
    IdleWs(IdleArgs),
    /// Real CLI: agent start (spawn → initialize) and message → first
    /// token through the model proxy, with the agent sandbox on and off.
    FirstToken(FirstTokenArgs),
    /// Ticket enhancement: signed new-ticket webhooks → 202 (recorded and
    /// queued), throughput and latency at concurrency 64, workers paused.
    Webhook(tickets::WebhookArgs),
    /// Ticket enhancement: similar-ticket search on Postgres (with and
    /// without row-level security) and SQLite, through the store.
    Search(search::SearchArgs),
    /// Ticket enhancement: platform overhead of one enhancement, webhook
    /// 202 → note posted, minus the model's and ServiceDesk Plus's time.
    Enhance(tickets::EnhanceArgs),
    /// Ticket enhancement: `csp tickets import` throughput.
    Import(tickets::ImportArgs),
    /// Ticket enhancement: tenant A's burst against tenant B's one ticket.
    Fairness(tickets::FairnessArgs),
    /// Operations: the dashboard's answer at 100k history rows, with and
    /// without its index.
    Dashboard(dashboard::DashboardArgs),
    /// Operations: the charts' answer from the history at 100k rows, each
    /// range.
    Charts(charts::ChartsArgs),
    /// Operations: the History page's query (with and without filters and
    /// search) and its CSV export at 10k and 100k jobs, Postgres.
    History(history::HistoryArgs),
    /// Scale-out: two processes of every service behind round-robin
    /// proxies; one replica of each SIGKILLed in turn under chat and
    /// webhook load.
    Scale(scale::ScaleArgs),
    /// Reliability: each component killed (SIGKILL) and restarted under a
    /// mixed load, and a network stall; what was lost (docs/reliability.md).
    Faults(faults::FaultsArgs),
    /// Load and soak: idle WebSockets, streaming sessions and webhooks with
    /// enhancement at once, for `--minutes`; p99 of ready, relay and
    /// webhook ack unloaded vs loaded, every process's RSS, errors by kind.
    Soak(soak::SoakArgs),
    /// Peers: csp's webhook intake beside a plain axum handler that only
    /// verifies the signature (the floor), same load and concurrency.
    Peers(tickets::WebhookArgs),
    /// Every benchmark with the settings of docs/benchmarks.md, one summary.
    All(Common),
}

#[derive(Args, Clone)]
struct Common {
    /// Which deployment to measure; `both` runs dev, then distributed.
    #[arg(long, value_enum, default_value = "both")]
    mode: ModeArg,
    /// The csp binary (default: `CSP_BIN`, else `csp` next to this program).
    #[arg(long)]
    csp: Option<PathBuf>,
    /// The stand-in agent (default: `csp-bench-agent` next to this program).
    #[arg(long)]
    agent: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Dev,
    Distributed,
    Both,
}

impl ModeArg {
    fn modes(self) -> Vec<Mode> {
        match self {
            ModeArg::Dev => vec![Mode::Dev],
            ModeArg::Distributed => vec![Mode::Distributed],
            ModeArg::Both => vec![Mode::Dev, Mode::Distributed],
        }
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Dev => "dev",
        Mode::Distributed => "distributed",
    }
}

/// The process that serves WebSockets in each mode.
fn gateway_process(mode: Mode) -> &'static str {
    match mode {
        Mode::Dev => "dev",
        Mode::Distributed => "gateway",
    }
}

#[derive(Args, Clone)]
struct ReadyArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions to open, one at a time.
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// `PREWARM_POOL_SIZE` of the instance.
    #[arg(long, default_value_t = 8)]
    prewarm: usize,
    /// `MAX_SESSIONS` of the instance; must exceed sessions + prewarm.
    #[arg(long, default_value_t = 400)]
    max_sessions: usize,
    /// `refill`: before each open, wait until the pool is full again (polling
    /// `/api/v1/health/ready`); a number: open every that many milliseconds.
    #[arg(long, default_value = "refill", value_parser = parse_pace)]
    pace: Pace,
    /// Run the real Claude Code CLI instead of the stand-in agent.
    #[arg(long)]
    real_cli: bool,
    /// Stop opening sessions after this long.
    #[arg(long, default_value_t = 150)]
    time_limit_secs: u64,
}

#[derive(Clone, Copy)]
enum Pace {
    Refill,
    Every(Duration),
}

fn parse_pace(s: &str) -> Result<Pace, String> {
    if s == "refill" {
        return Ok(Pace::Refill);
    }
    s.parse::<u64>()
        .map(|ms| Pace::Every(Duration::from_millis(ms)))
        .map_err(|_| format!("expected `refill` or milliseconds, got {s:?}"))
}

impl Pace {
    fn describe(self) -> String {
        match self {
            Pace::Refill => "refill".to_owned(),
            Pace::Every(d) => format!("every {} ms", d.as_millis()),
        }
    }
}

#[derive(Args, Clone)]
struct RelayArgs {
    #[command(flatten)]
    common: Common,
    /// Measured turns per session (after one unmeasured warm-up turn).
    #[arg(long, default_value_t = 20)]
    turns: usize,
    /// Text deltas per turn.
    #[arg(long, default_value_t = 250)]
    deltas: usize,
    /// Pause of the agent between two deltas, microseconds.
    #[arg(long, default_value_t = 2000)]
    gap_us: u64,
    /// Sessions streaming at the same time.
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Also write every sample as `mode,session,turn,delta,latency_ms` lines.
    #[arg(long)]
    samples_out: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Idle WebSockets to hold open.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Upgrades in flight at once while connecting.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Wait between the last upgrade and the memory reading.
    #[arg(long, default_value_t = 3)]
    settle_secs: u64,
    /// Stop connecting after this long and measure what is open.
    #[arg(long, default_value_t = 120)]
    time_limit_secs: u64,
}

#[derive(Args, Clone)]
struct FirstTokenArgs {
    #[command(flatten)]
    common: Common,
    /// Measured turns (after one unmeasured warm-up turn).
    #[arg(long, default_value_t = 20)]
    turns: usize,
    /// Sessions opened and closed one after another first, so the warm
    /// pool spawns that many more agents for the start-time figure.
    #[arg(long, default_value_t = 6)]
    spawns: usize,
}

// ---------------------------------------------------------------- output

/// One benchmark's results: a row per mode (or per failure).
struct Table {
    title: String,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    failures: usize,
}

impl Table {
    fn new(title: impl Into<String>, header: Vec<&'static str>) -> Self {
        Self {
            title: title.into(),
            header,
            rows: Vec::new(),
            failures: 0,
        }
    }

    /// A run that could not produce figures keeps its row, with the reason.
    fn failed(&mut self, mode: Mode, error: &anyhow::Error) {
        // The full error (it may carry log tails) goes to stderr; the table
        // keeps its first line.
        progress(format!("{} failed: {error:#}", mode_name(mode)));
        let first = format!("{error:#}");
        let first = first.lines().next().unwrap_or_default();
        let mut row = vec![mode_name(mode).to_owned(), format!("FAILED: {first}")];
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
        self.failures += 1;
    }

    fn print(&self) {
        println!("\n{}", self.title);
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = String>| {
            let padded: Vec<String> = cells
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("| {} |", padded.join(" | "));
        };
        line(&mut self.header.iter().map(|h| h.to_string()));
        line(&mut widths.iter().map(|w| "-".repeat(*w)));
        for row in &self.rows {
            line(&mut row.iter().cloned());
        }
    }
}

/// Sorted samples; percentiles by nearest rank.
struct Samples(Vec<f64>);

impl Samples {
    fn new(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        Self(v)
    }

    fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(f64::NAN)
    }

    fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len() as f64
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn progress(msg: impl std::fmt::Display) {
    eprintln!("csp-bench: {msg}");
}

// ------------------------------------------------------------- plumbing

fn sibling(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join(name);
    path.is_file().then_some(path)
}

fn csp_path(common: &Common) -> PathBuf {
    common
        .csp
        .clone()
        .or_else(|| std::env::var_os("CSP_BIN").map(PathBuf::from))
        .or_else(|| sibling("csp"))
        .unwrap_or_else(csp_e2e::csp_bin)
}

/// `CLAUDE_CLI` pointing at the stand-in agent, or nothing for the real CLI.
fn agent_env(common: &Common, real_cli: bool) -> Result<Vec<(String, String)>> {
    if real_cli {
        return Ok(Vec::new());
    }
    let agent = common
        .agent
        .clone()
        .or_else(|| sibling("csp-bench-agent"))
        .context("csp-bench-agent not found next to csp-bench: build it with `cargo build --release -p csp-e2e` or pass --agent")?;
    let agent =
        std::fs::canonicalize(&agent).with_context(|| format!("resolving {}", agent.display()))?;
    Ok(vec![(
        "CLAUDE_CLI".to_owned(),
        agent.to_string_lossy().into_owned(),
    )])
}

async fn start(
    common: &Common,
    mode: Mode,
    prewarm: usize,
    max_sessions: usize,
    real_cli: bool,
) -> Result<Csp> {
    // Every bench session is the one user's: the per-user limit would
    // suspend (or refuse) them, which is not what these numbers measure.
    let mut env = agent_env(common, real_cli)?;
    env.push(("MAX_SESSIONS_PER_USER".to_owned(), max_sessions.to_string()));
    Csp::start(
        mode,
        Options {
            prewarm,
            max_sessions,
            env,
            bin: Some(csp_path(common)),
            ..Options::default()
        },
    )
    .await
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

/// Reads until the session's `ready` frame; returns its session id and seq.
async fn until_ready(ws: &mut Ws) -> Result<(String, u64)> {
    let frames = ws
        .until(|f| f["type"] == "session" && (f["status"] == "ready" || f["status"] == "failed"))
        .await?;
    let last = frames.last().context("no frame")?;
    if last["status"] != "ready" {
        bail!("the session failed to start: {last}");
    }
    Ok((
        last["session_id"]
            .as_str()
            .context("session_id")?
            .to_owned(),
        last["seq"].as_u64().context("seq")?,
    ))
}

/// Ready warm slots, from the readiness probe.
async fn pool_depth(csp: &Csp, client: &reqwest::Client) -> Result<usize> {
    let body: Value = client
        .get(format!("{}/api/v1/health/ready", csp.base))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["pool_depth"].as_u64().unwrap_or(0) as usize)
}

async fn wait_pool_full(
    csp: &Csp,
    client: &reqwest::Client,
    want: usize,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while pool_depth(csp, client).await? < want {
        if Instant::now() > deadline {
            bail!("the pool did not refill to {want} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))
}

/// Clock ticks per second of `/proc/<pid>/stat` times; fixed at 100 in
/// Linux's user-space ABI on every common architecture.
const USER_HZ: f64 = 100.0;

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)`, which may hold spaces: state is the 1st,
    // utime the 12th and stime the 13th.
    let rest = &stat[stat.rfind(')').context("stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The local NATS server, found by name to read (never signal) its memory.
fn nats_server_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "nats-server").then_some(pid)
    })
}

/// Raises this process's soft open-file limit to the hard limit: 10,000
/// WebSockets need 10,000 descriptors here as well as in the gateway.
fn raise_nofile_limit() -> Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

// ----------------------------------------------------------------- ready

async fn bench_ready(args: &ReadyArgs) -> Table {
    let agent = if args.real_cli {
        "real CLI"
    } else {
        "stand-in"
    };
    let mut table = Table::new(
        format!(
            "ready: WebSocket open → session ready frame (ms), {agent} agent, PREWARM_POOL_SIZE={} MAX_SESSIONS={}",
            args.prewarm, args.max_sessions
        ),
        vec![
            "mode",
            "opens",
            "warm",
            "pacing",
            "mean gap ms",
            "p50",
            "p99",
            "max",
            "101→ready p50",
            "101→ready p99",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("ready/{}: starting csp", mode_name(mode)));
        let run = async {
            let csp = start(
                &args.common,
                mode,
                args.prewarm,
                args.max_sessions,
                args.real_cli,
            )
            .await?;
            let result = ready_run(&csp, mode, args).await;
            csp.stop().await;
            result
        };
        match run.await {
            Ok(row) => table.rows.push(row),
            Err(e) => table.failed(mode, &e),
        }
    }
    table
}

async fn ready_run(csp: &Csp, mode: Mode, args: &ReadyArgs) -> Result<Vec<String>> {
    let token = csp.login().await?;
    let client = csp.http();
    let refill_limit = Duration::from_secs(if args.real_cli { 60 } else { 30 });
    wait_pool_full(csp, &client, args.prewarm, refill_limit).await?;
    let deadline = Instant::now() + Duration::from_secs(args.time_limit_secs);
    let (mut total, mut upgraded) = (Vec::new(), Vec::new());
    let mut warm = 0;
    let began = Instant::now();
    let mut next_open = tokio::time::Instant::now();
    for i in 0..args.sessions {
        if Instant::now() > deadline {
            progress(format!(
                "ready/{}: time limit reached after {i} opens",
                mode_name(mode)
            ));
            break;
        }
        match args.pace {
            Pace::Refill => wait_pool_full(csp, &client, args.prewarm, refill_limit).await?,
            Pace::Every(every) => {
                tokio::time::sleep_until(next_open).await;
                next_open += every;
            }
        }
        let open = open_ready(csp, &token).await?;
        warm += usize::from(open.warm);
        total.push(open.total_ms);
        upgraded.push(open.upgraded_ms);
        if (i + 1).is_multiple_of(50) {
            progress(format!("ready/{}: {} opens", mode_name(mode), i + 1));
        }
    }
    let n = total.len();
    let gap = began.elapsed().as_secs_f64() * 1e3 / n.max(1) as f64;
    let (total, upgraded) = (Samples::new(total), Samples::new(upgraded));
    Ok(vec![
        mode_name(mode).to_owned(),
        n.to_string(),
        format!("{warm}/{n}"),
        args.pace.describe(),
        format!("{gap:.0}"),
        ms(total.pct(50.0)),
        ms(total.pct(99.0)),
        ms(total.max()),
        ms(upgraded.pct(50.0)),
        ms(upgraded.pct(99.0)),
    ])
}

/// One new session taken from the warm pool, timed as `ready` reports it.
struct Open {
    /// Before the TCP connect → the `ready` frame.
    total_ms: f64,
    /// The upgrade's `101` → the `ready` frame.
    upgraded_ms: f64,
    /// The first frame was `ready` (a cold start sends `preparing` first).
    warm: bool,
}

/// Opens a new session's WebSocket, waits for its `ready` frame and closes
/// the socket (the session stays, detached).
async fn open_ready(csp: &Csp, token: &str) -> Result<Open> {
    let t0 = Instant::now();
    let mut ws = csp.ws(token, "").await?;
    let t_up = Instant::now();
    let first = ws.next().await?;
    let warm = first["type"] == "session" && first["status"] == "ready";
    if !warm {
        until_ready(&mut ws).await?;
    }
    let t_ready = Instant::now();
    ws.close().await;
    Ok(Open {
        total_ms: t_ready.duration_since(t0).as_secs_f64() * 1e3,
        upgraded_ms: t_ready.duration_since(t_up).as_secs_f64() * 1e3,
        warm,
    })
}

// ----------------------------------------------------------- first-token

async fn bench_first_token(args: &FirstTokenArgs) -> Table {
    let mut table = Table::new(
        format!(
            "first-token: real CLI, scripted model; agent start = spawn → initialize (mean of the pool's spawns), first token = send → first delta frame (ms), {} turns",
            args.turns
        ),
        vec![
            "mode",
            "sandbox",
            "spawns",
            "start mean",
            "turns",
            "model requests",
            "p50",
            "p90",
            "p99",
            "max",
        ],
    );
    for mode in args.common.mode.modes() {
        for sandbox in ["bubblewrap", "off"] {
            progress(format!(
                "first-token/{}/{sandbox}: starting csp",
                mode_name(mode)
            ));
            let run = async {
                let mut env = agent_env(&args.common, true)?;
                env.push(("CSP_AGENT_SANDBOX".into(), sandbox.into()));
                let csp = Csp::start(
                    mode,
                    Options {
                        prewarm: 2,
                        max_sessions: 8,
                        env,
                        bin: Some(csp_path(&args.common)),
                        ..Options::default()
                    },
                )
                .await?;
                let result = first_token_run(&csp, mode, sandbox, args).await;
                csp.stop().await;
                result
            };
            match run.await {
                Ok(row) => table.rows.push(row),
                Err(e) => table.failed(mode, &e),
            }
        }
    }
    table
}

async fn first_token_run(
    csp: &Csp,
    mode: Mode,
    sandbox: &str,
    args: &FirstTokenArgs,
) -> Result<Vec<String>> {
    let token = csp.login().await?;
    let client = csp.http();
    for _ in 0..args.spawns {
        wait_pool_full(csp, &client, 2, Duration::from_secs(60)).await?;
        let mut ws = csp.ws(&token, "").await?;
        until_ready(&mut ws).await?;
        ws.close().await;
    }
    wait_pool_full(csp, &client, 2, Duration::from_secs(60)).await?;
    let mut ws = csp.ws(&token, "").await?;
    until_ready(&mut ws).await?;
    let script = csp_e2e::scripted(json!({"type": "text", "text": "first token", "chunks": 1}));
    let mut samples = Vec::new();
    for i in 0..=args.turns {
        let t0 = Instant::now();
        ws.send(json!({"type": "send", "text": script})).await?;
        let mut first = None;
        loop {
            let frame = ws.next().await?;
            if frame["type"] == "delta" && first.is_none() {
                first = Some(t0.elapsed().as_secs_f64() * 1e3);
            }
            if frame["type"] == "error" {
                bail!("turn failed: {frame}");
            }
            if frame["type"] == "result" {
                break;
            }
        }
        let first = first.context("a turn without a delta")?;
        if i > 0 {
            samples.push(first);
        }
    }
    ws.close().await;
    let metrics = csp.scrape_all().await?;
    let sum_of = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let count = sum_of("csp_session_init_duration_seconds_count");
    let mean = sum_of("csp_session_init_duration_seconds_sum") / count.max(1.0) * 1e3;
    // Through the model proxy (absent from builds without one).
    let requests = sum_of("csp_model_proxy_requests_total");
    let s = Samples::new(samples);
    Ok(vec![
        mode_name(mode).to_owned(),
        sandbox.to_owned(),
        format!("{count:.0}"),
        ms(mean),
        s.0.len().to_string(),
        format!("{requests:.0}"),
        ms(s.pct(50.0)),
        ms(s.pct(90.0)),
        ms(s.pct(99.0)),
        ms(s.max()),
    ])
}

// ----------------------------------------------------------------- relay

async fn bench_relay(args: &RelayArgs) -> Table {
    let mut table = Table::new(
        format!(
            "relay: agent stdout line → WebSocket frame (ms), {} session(s) × {} turns × {} deltas, {} µs apart",
            args.sessions, args.turns, args.deltas, args.gap_us
        ),
        vec![
            "mode", "deltas", "p50", "p90", "p99", "p99.9", "max", "mean",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("relay/{}: starting csp", mode_name(mode)));
        let run = async {
            let prewarm = args.sessions.min(8);
            let csp = start(
                &args.common,
                mode,
                prewarm,
                args.sessions + prewarm + 1,
                false,
            )
            .await?;
            let result = relay_run(&csp, mode, args).await;
            csp.stop().await;
            result
        };
        match run.await {
            Ok(row) => table.rows.push(row),
            Err(e) => table.failed(mode, &e),
        }
    }
    table
}

async fn relay_run(csp: &Csp, mode: Mode, args: &RelayArgs) -> Result<Vec<String>> {
    let token = csp.login().await?;
    let mut sockets = Vec::new();
    for _ in 0..args.sessions {
        let mut ws = csp.ws(&token, "").await?;
        until_ready(&mut ws).await?;
        sockets.push(ws);
    }
    progress(format!(
        "relay/{}: {} session(s) ready, streaming",
        mode_name(mode),
        sockets.len()
    ));
    let script = format!("bench deltas={} gap_us={}", args.deltas, args.gap_us);
    let warmup = format!("bench deltas=50 gap_us={}", args.gap_us);
    let turns = args.turns;
    let streams = sockets.into_iter().map(|mut ws| {
        let (script, warmup) = (script.clone(), warmup.clone());
        tokio::spawn(async move {
            turn_latencies(&mut ws, &warmup).await?;
            let mut all = Vec::new();
            for _ in 0..turns {
                all.push(turn_latencies(&mut ws, &script).await?);
            }
            ws.close().await;
            Ok::<_, anyhow::Error>(all)
        })
    });
    let mut latencies = Vec::new();
    let mut csv = String::new();
    for (session, done) in futures::future::join_all(streams)
        .await
        .into_iter()
        .enumerate()
    {
        for (turn, deltas) in done??.into_iter().enumerate() {
            for (i, l) in deltas.iter().enumerate() {
                csv.push_str(&format!(
                    "{},{session},{turn},{i},{l:.3}\n",
                    mode_name(mode)
                ));
            }
            latencies.extend(deltas);
        }
    }
    if let Some(path) = &args.samples_out {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(csv.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let expected = args.sessions * args.turns * args.deltas;
    let s = Samples::new(latencies);
    Ok(vec![
        mode_name(mode).to_owned(),
        format!("{}/{expected}", s.0.len()),
        ms(s.pct(50.0)),
        ms(s.pct(90.0)),
        ms(s.pct(99.0)),
        ms(s.pct(99.9)),
        ms(s.max()),
        ms(s.mean()),
    ])
}

/// One turn; the latency of every delta in milliseconds, from the agent's
/// write (its `t=<µs>;` stamp) to this client's receipt.
async fn turn_latencies(ws: &mut Ws, script: &str) -> Result<Vec<f64>> {
    ws.send(json!({"type": "send", "text": script})).await?;
    let mut out = Vec::new();
    loop {
        let frame = ws.next().await?;
        let now = unix_micros();
        match frame["type"].as_str() {
            Some("delta") => {
                let text = frame["text"].as_str().unwrap_or_default();
                for stamp in text.split(';').filter_map(|p| p.strip_prefix("t=")) {
                    let sent: u128 = stamp
                        .parse()
                        .with_context(|| format!("bad stamp in {text:?}"))?;
                    out.push(now.saturating_sub(sent) as f64 / 1e3);
                }
            }
            Some("result") => return Ok(out),
            Some("error") => bail!("error frame during the turn: {frame}"),
            _ => {}
        }
    }
}

// --------------------------------------------------------------- idle-ws

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const IDLE_WINDOW: Duration = Duration::from_secs(10);

async fn bench_idle(args: &IdleArgs) -> Table {
    let mut table = Table::new(
        format!(
            "idle-ws: gateway memory per idle WebSocket, {} reattached to one session",
            args.connections
        ),
        vec![
            "mode",
            "open",
            "connect s",
            "RSS before MiB",
            "RSS after MiB",
            "KiB/conn",
            "+10 s idle KiB/conn",
            "idle CPU %",
            "fds",
            "alive",
            "notes",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("idle-ws/{}: starting csp", mode_name(mode)));
        let run = async {
            let csp = start(&args.common, mode, 1, 4, false).await?;
            let result = idle_run(&csp, mode, args).await;
            csp.stop().await;
            result
        };
        match run.await {
            Ok(row) => table.rows.push(row),
            Err(e) => table.failed(mode, &e),
        }
    }
    table
}

/// A WebSocket client with small buffers: 10,000 of them must fit in this
/// process too (tungstenite's default read buffer is 128 KiB).
async fn connect_idle(url: &str, token: &str) -> Result<Socket> {
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    Ok(socket)
}

/// Sends `ping` and waits for `pong`: the connection is alive end to end.
async fn ping(socket: &mut Socket) -> Result<()> {
    socket
        .send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await?;
    let wait = async {
        while let Some(msg) = socket.next().await {
            match msg? {
                Message::Text(t) if t.contains("pong") => return Ok(()),
                Message::Close(f) => bail!("closed: {f:?}"),
                _ => {}
            }
        }
        bail!("socket ended")
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| anyhow!("no pong within 10 s"))?
}

/// Opens `n` idle sockets to `url`, `concurrency` upgrades in flight at a
/// time, until `deadline`: the open ones, and the failed opens by reason.
async fn open_idle(
    url: &str,
    token: &str,
    n: usize,
    concurrency: usize,
    deadline: Instant,
    label: &str,
) -> (Vec<Socket>, std::collections::BTreeMap<String, usize>) {
    let mut failures: std::collections::BTreeMap<String, usize> = Default::default();
    let mut sockets: Vec<Socket> = Vec::with_capacity(n);
    let mut attempts = futures::stream::iter(0..n)
        .map(|_| async move {
            if Instant::now() > deadline {
                return Err(anyhow!("time limit"));
            }
            connect_idle(url, token).await
        })
        .buffer_unordered(concurrency);
    while let Some(attempt) = attempts.next().await {
        match attempt {
            Ok(s) => {
                sockets.push(s);
                if sockets.len().is_multiple_of(2000) {
                    progress(format!("{label}: {} open", sockets.len()));
                }
            }
            Err(e) => {
                let key = match e.downcast_ref::<tungstenite::Error>() {
                    Some(tungstenite::Error::Http(r)) => format!("HTTP {}", r.status()),
                    _ => format!("{e:#}"),
                };
                *failures.entry(key).or_default() += 1;
            }
        }
    }
    (sockets, failures)
}

/// How many of `sockets` answer a `ping` with a `pong`.
async fn count_alive(sockets: &mut [Socket]) -> usize {
    futures::stream::iter(sockets.iter_mut())
        .map(|s| async move { ping(s).await.is_ok() })
        .buffer_unordered(256)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await
}

async fn idle_run(csp: &Csp, mode: Mode, args: &IdleArgs) -> Result<Vec<String>> {
    let token = csp.login().await?;
    let mut owner = csp.ws(&token, "").await?;
    let (session, seq) = until_ready(&mut owner).await?;
    let pid = csp
        .pid_of(gateway_process(mode))
        .context("gateway process id")?;
    let url = format!(
        "{}/ws?session={session}&after_seq={seq}",
        csp.base.replacen("http://", "ws://", 1)
    );

    // Warm-up: one-off allocations (connection pools, first-use tables)
    // belong to the baseline, not to the per-connection figure.
    let mut warm = Vec::new();
    for _ in 0..64 {
        let mut s = connect_idle(&url, &token).await?;
        ping(&mut s).await?;
        warm.push(s);
    }
    for mut s in warm {
        let _ = s.close(None).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(pid)?;
    let nats_pid = (mode == Mode::Distributed).then(nats_server_pid).flatten();
    let nats_before = nats_pid.and_then(|p| rss_kib(p).ok());

    let began = Instant::now();
    let deadline = began + Duration::from_secs(args.time_limit_secs);
    let (mut sockets, failures) = open_idle(
        &url,
        &token,
        args.connections,
        args.concurrency,
        deadline,
        &format!("idle-ws/{}", mode_name(mode)),
    )
    .await;
    let connect_secs = began.elapsed().as_secs_f64();
    let open = sockets.len();
    progress(format!(
        "idle-ws/{}: {open} open after {connect_secs:.1} s; settling",
        mode_name(mode)
    ));

    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let after = rss_kib(pid)?;
    let fds = open_fds(pid);
    // Idle cost over time: CPU and any growth over two NATS heartbeat
    // periods (5 s each) of doing nothing.
    let ticks = cpu_ticks(pid)?;
    let nats_ticks = nats_pid.and_then(|p| cpu_ticks(p).ok());
    let idle = Instant::now();
    tokio::time::sleep(IDLE_WINDOW).await;
    let percent = |ticks: u64| ticks as f64 / USER_HZ / idle.elapsed().as_secs_f64() * 100.0;
    let cpu = percent(cpu_ticks(pid)? - ticks);
    let nats_cpu = nats_pid
        .zip(nats_ticks)
        .and_then(|(p, t)| Some(percent(cpu_ticks(p).ok()? - t)));
    let after_idle = rss_kib(pid)?;
    let nats_after = nats_pid.and_then(|p| rss_kib(p).ok());

    let mut notes = Vec::new();
    if mode == Mode::Distributed {
        if let Some(stream) = csp.nats_stream() {
            match consumer_count(&stream).await {
                Ok(n) => notes.push(format!("{n} JetStream consumers")),
                Err(e) => notes.push(format!("consumer count unavailable: {e:#}")),
            }
        }
        if let (Some(b), Some(a)) = (nats_before, nats_after) {
            notes.push(format!(
                "nats-server RSS +{:.0} MiB ({:.1} KiB/conn)",
                (a as f64 - b as f64) / 1024.0,
                (a as f64 - b as f64) / open.max(1) as f64
            ));
        }
        if let Some(cpu) = nats_cpu {
            notes.push(format!("nats-server idle CPU {cpu:.1}%"));
        }
    }
    for (reason, n) in &failures {
        notes.push(format!("{n} failed: {reason}"));
    }

    progress(format!(
        "idle-ws/{}: checking every connection with ping",
        mode_name(mode)
    ));
    let alive = count_alive(&mut sockets).await;
    for mut s in sockets {
        let _ = s.close(None).await;
    }
    if let (Mode::Distributed, Some(stream)) = (mode, csp.nats_stream()) {
        notes.push(consumers_after_close(&stream).await);
    }
    owner.close().await;

    let per = |rss: u64| (rss as f64 - before as f64) / open.max(1) as f64;
    Ok(vec![
        mode_name(mode).to_owned(),
        format!("{open}/{}", args.connections),
        format!("{connect_secs:.1}"),
        format!("{:.1}", before as f64 / 1024.0),
        format!("{:.1}", after as f64 / 1024.0),
        format!("{:.1}", per(after)),
        format!("{:.1}", per(after_idle)),
        format!("{cpu:.1}"),
        fds.to_string(),
        format!("{alive}/{open}"),
        notes.join("; "),
    ])
}

/// How long the closed connections' consumers outlive them on the server.
async fn consumers_after_close(stream: &str) -> String {
    let closed = Instant::now();
    let limit = Duration::from_secs(45);
    loop {
        match consumer_count(stream).await {
            // The owner's own connection keeps one.
            Ok(n) if n <= 1 => {
                return format!(
                    "consumers gone {:.0} s after the sockets closed",
                    closed.elapsed().as_secs_f64()
                );
            }
            Ok(n) if closed.elapsed() > limit => {
                return format!(
                    "{n} consumers still there {} s after the sockets closed",
                    limit.as_secs()
                );
            }
            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(e) => return format!("consumer count unavailable: {e:#}"),
        }
    }
}

async fn consumer_count(stream: &str) -> Result<usize> {
    let url = std::env::var("CSP_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = async_nats::jetstream::new(async_nats::connect(url).await?);
    let mut stream = js.get_stream(stream).await?;
    Ok(stream.info().await?.state.consumer_count)
}

// ------------------------------------------------------------------ main

/// Exits non-zero only when a run could not produce figures; the figures
/// themselves are never judged here.
fn main() -> Result<()> {
    let cli = Cli::parse();
    let nofile = raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tables = runtime.block_on(async {
        match cli.bench {
            Bench::Ready(a) => vec![bench_ready(&a).await],
            Bench::Relay(a) => vec![bench_relay(&a).await],
            Bench::IdleWs(a) => {
                if (nofile as usize) < a.connections + 1024 {
                    progress(format!(
                        "warning: RLIMIT_NOFILE hard limit is {nofile}; {} connections may not fit",
                        a.connections
                    ));
                }
                vec![bench_idle(&a).await]
            }
            Bench::FirstToken(a) => vec![bench_first_token(&a).await],
            Bench::Webhook(a) => vec![tickets::bench_webhook(&a).await],
            Bench::Search(a) => vec![search::bench_search(&a).await],
            Bench::Enhance(a) => vec![tickets::bench_enhance(&a).await],
            Bench::Import(a) => vec![tickets::bench_import(&a).await],
            Bench::Fairness(a) => vec![tickets::bench_fairness(&a).await],
            Bench::Dashboard(a) => vec![dashboard::bench_dashboard(&a).await],
            Bench::Charts(a) => vec![charts::bench_charts(&a).await],
            Bench::History(a) => vec![history::bench_history(&a).await],
            Bench::Scale(a) => vec![scale::bench_scale(&a).await],
            Bench::Faults(a) => faults::bench_faults(&a).await,
            Bench::Soak(a) => {
                if (nofile as usize) < a.idle * 2 + 1024 {
                    progress(format!(
                        "warning: RLIMIT_NOFILE hard limit is {nofile}; {} idle sockets (here and in the gateway) may not fit",
                        a.idle
                    ));
                }
                soak::bench_soak(&a).await
            }
            Bench::Peers(a) => vec![peers::bench_peers(&a).await],
            Bench::All(common) => bench_all(common).await,
        }
    });
    println!(
        "\n== csp-bench summary ({} cores) ==",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for t in &tables {
        t.print();
    }
    let failed: usize = tables.iter().map(|t| t.failures).sum();
    if failed > 0 {
        bail!("{failed} run(s) failed; see the tables and the messages above");
    }
    Ok(())
}

/// The runs `docs/benchmarks.md` reports, in order.
async fn bench_all(common: Common) -> Vec<Table> {
    let ready = ReadyArgs {
        common: common.clone(),
        sessions: 200,
        prewarm: 8,
        max_sessions: 400,
        pace: Pace::Refill,
        real_cli: false,
        time_limit_secs: 150,
    };
    let real = ReadyArgs {
        sessions: 20,
        prewarm: 2,
        max_sessions: 24,
        real_cli: true,
        ..ready.clone()
    };
    let relay = RelayArgs {
        common: common.clone(),
        turns: 20,
        deltas: 250,
        gap_us: 2000,
        sessions: 1,
        samples_out: None,
    };
    let idle = IdleArgs {
        common,
        connections: 10_000,
        concurrency: 64,
        settle_secs: 3,
        time_limit_secs: 120,
    };
    let mut tables = Vec::new();
    tables.push(bench_ready(&ready).await);
    tables.push(bench_ready(&real).await);
    tables.push(bench_relay(&relay).await);
    tables.push(bench_idle(&idle).await);
    tables
}
