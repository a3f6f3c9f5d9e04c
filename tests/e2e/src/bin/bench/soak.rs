//! `csp-bench soak`: one distributed instance under the issue-17 load for
//! `--minutes`: idle WebSockets reattached to one session, sessions whose
//! stand-in agent streams turn after turn, and signed new-ticket webhooks on
//! a fixed schedule that the tickets worker enhances against the instance's
//! `csp mock-llm` and a fake ServiceDesk Plus in this process.
//!
//! It measures the p99 of `ready`, `relay` and the webhook's `202` before the
//! load and all through it, the RSS of every process at points along the
//! run, and every error by kind; it prints them and judges nothing.

use super::text::{Rng, Vocabulary};
use super::tickets::{self, Stack};
use crate::{
    Common, ModeArg, Samples, Table, agent_env, count_alive, csp_path, ms, open_idle, open_ready,
    progress, rss_kib, turn_latencies, until_ready, wait_pool_full,
};
use anyhow::{Context, Result};
use clap::Args;
use csp_e2e::{Csp, Mode, Options, Ws};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub(crate) struct SoakArgs {
    /// The csp binary (default: `CSP_BIN`, else `csp` next to this program).
    #[arg(long)]
    csp: Option<PathBuf>,
    /// The stand-in agent (default: `csp-bench-agent` next to this program).
    #[arg(long)]
    agent: Option<PathBuf>,
    /// Length of the load, after the ramp.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Idle WebSockets reattached to one session.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) idle: usize,
    /// Sessions streaming turns back to back.
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// Text deltas of each turn.
    #[arg(long, default_value_t = 50)]
    deltas: usize,
    /// A session's pause between the end of one turn and its next message,
    /// ms: a person reading the answer (0: turns back to back).
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// The agent's pause between two deltas, microseconds (20 ms: a model's
    /// ~50 tokens/s).
    #[arg(long, default_value_t = 20_000)]
    gap_us: u64,
    /// New-ticket webhooks per second, on a fixed schedule (default: the
    /// issue-14 intake goal).
    #[arg(long, default_value_t = 5000.0)]
    webhooks_per_sec: f64,
    /// Webhooks in flight at most; one due beyond it is not sent (counted).
    #[arg(long, default_value_t = 512)]
    webhooks_in_flight: usize,
    /// Tenants the webhooks are spread over, each with context to search.
    #[arg(long, default_value_t = 10)]
    tenants: usize,
    /// Seconds between two memory readings during the load.
    #[arg(long, default_value_t = 300)]
    sample_secs: u64,
    /// Least time between two `ready` samples during the load, ms.
    #[arg(long, default_value_t = 1000)]
    ready_every_ms: u64,
    /// Unloaded samples of `ready` and of the webhook's `202`, one at a time.
    #[arg(long, default_value_t = 100)]
    baseline: usize,
    /// Unloaded turns of one streaming session (after one unmeasured).
    #[arg(long, default_value_t = 10)]
    baseline_turns: usize,
    /// How long to wait after the load for the workers to finish the backlog.
    #[arg(long, default_value_t = 60)]
    drain_secs: u64,
    /// `PREWARM_POOL_SIZE`.
    #[arg(long, default_value_t = 8)]
    prewarm: usize,
    /// `MAX_SESSIONS` (and `MAX_SESSIONS_PER_USER`): the streaming sessions,
    /// the idle sockets' session, the warm pool and room for `ready` samples;
    /// beyond it the pool suspends the detached ones.
    #[arg(long, default_value_t = 260)]
    max_sessions: usize,
}

/// The processes whose memory is read, by the harness's names, and the
/// groups found by process name (read, never signalled), whose figure is
/// the sum of their proportional set sizes: each `postgres` backend's RSS
/// counts the shared buffers it touched, so a sum of RSS would count them
/// once per backend.
const CSP_PROCESSES: [&str; 7] = [
    "gateway",
    "session-pool",
    "policy",
    "plugins",
    "tickets",
    "tickets-worker",
    "mock-llm",
];
const SHARED_PROCESSES: [(&str, &str); 4] = [
    ("agents (PSS sum)", "csp-bench-agent"),
    ("nats-server (PSS)", "nats-server"),
    ("redis-server (PSS)", "redis-server"),
    ("postgres (PSS sum)", "postgres"),
];

/// `Pss` of a process, in KiB.
fn pss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `SESSION_IDLE_TIMEOUT_SECONDS` of the instance.
const IDLE_TIMEOUT_SECS: u64 = 30;

/// Everything measured during the load, appended as it happens.
#[derive(Default)]
struct Tally {
    ready: Vec<f64>,
    /// `ready` samples whose first frame was not `ready` (a cold start).
    cold: usize,
    relay: Vec<f64>,
    ack: Vec<f64>,
    errors: BTreeMap<String, usize>,
}

impl Tally {
    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    fn lens(&self) -> [usize; 3] {
        [self.ready.len(), self.relay.len(), self.ack.len()]
    }
}

type Shared = Arc<Mutex<Tally>>;

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().expect("tally")
}

/// The first line of an error, for counting errors by kind.
fn kind(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One memory reading of every process, KiB (`None`: not running).
struct Point {
    label: String,
    at: Instant,
    rss: Vec<Option<u64>>,
    /// The tally's lengths at this point: the window since the previous
    /// point is its samples between two points.
    lens: [usize; 3],
    accepted: u64,
}

fn read_rss(stack: &Stack) -> Vec<Option<u64>> {
    let own = CSP_PROCESSES
        .iter()
        .map(|name| stack.pid(name).and_then(|p| rss_kib(p).ok()));
    let shared = SHARED_PROCESSES.iter().map(|(_, comm)| {
        let pids = tickets::pids_named(comm);
        (!pids.is_empty()).then(|| pids.iter().filter_map(|p| pss_kib(*p)).sum())
    });
    own.chain(shared).collect()
}

/// The webhook side: tenants, the fake ServiceDesk Plus that holds every
/// ticket sent (a worker reads the ticket's notes before posting one) and
/// the counters of the schedule.
struct Intake {
    sdp: csp_mock_ticketing::RunningMock,
    secrets: Vec<(String, String)>,
    vocab: Vocabulary,
    next_id: AtomicU64,
    sent: AtomicU64,
    accepted: AtomicU64,
    not_sent: AtomicU64,
    notes: AtomicU64,
    /// Tickets the fake had no room for (a backlog of 200,000 unenhanced
    /// ones): their jobs fail for want of the ticket, not because of csp.
    fake_full: AtomicU64,
}

impl Intake {
    /// Notes posted so far. The fake holds at most 10,000 notes and
    /// 200,000 tickets, so the notes are taken out of it (with their
    /// tickets) as they come and counted here.
    fn notes(&self) -> u64 {
        let taken = self.sdp.mock().take_notes().len() as u64;
        self.notes.fetch_add(taken, Ordering::Relaxed) + taken
    }

    /// Sends one new ticket (added to the fake first); the answer's status
    /// and body, and the time to it in ms.
    async fn send(&self, stack: &Stack, rng: &mut Rng) -> Result<(u16, Value, f64)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tenant, secret) = &self.secrets[rng.below(self.secrets.len())];
        let subject = self.vocab.text(rng, 3, 6);
        let description = self.vocab.text(rng, 10, 30);
        let added = self
            .sdp
            .mock()
            .insert(csp_mock_ticketing::MockRequest::open(
                id,
                &subject,
                &description,
                "High",
            ));
        if !added {
            self.fake_full.fetch_add(1, Ordering::Relaxed);
        }
        let body = tickets::new_ticket_body(id, &subject, &description);
        self.sent.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let (status, answer) =
            tickets::send_webhook(&stack.http, &stack.csp.base, tenant, secret, body, false)
                .await?;
        if status == 202 {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
        Ok((status, answer, start.elapsed().as_secs_f64() * 1e3))
    }
}

pub(crate) async fn bench_soak(args: &SoakArgs) -> Vec<Table> {
    let common = Common {
        mode: ModeArg::Distributed,
        csp: args.csp.clone(),
        agent: args.agent.clone(),
    };
    progress("soak: starting csp (distributed, with ticket enhancement)");
    let run = async {
        let mut env = agent_env(&common, false)?;
        env.push((
            "MAX_SESSIONS_PER_USER".into(),
            args.max_sessions.to_string(),
        ));
        env.push(tickets::rate_limit_env());
        // The `ready` samples open a session each and leave it detached; at
        // MAX_SESSIONS the warm pool stops refilling (by design) and a
        // sample would time a cold start. Detached sessions are suspended
        // after this long instead of 30 min, so the samples' sessions make
        // room again: about `ready_every_ms` × this many live at a time.
        env.push((
            "SESSION_IDLE_TIMEOUT_SECONDS".into(),
            IDLE_TIMEOUT_SECS.to_string(),
        ));
        let csp = Csp::start(
            Mode::Distributed,
            Options {
                prewarm: args.prewarm,
                max_sessions: args.max_sessions,
                env,
                bin: Some(csp_path(&common)),
                tickets: true,
                ..Options::default()
            },
        )
        .await?;
        let sdp =
            csp_mock_ticketing::RunningMock::start(csp_mock_ticketing::MockSdp::builder().build())
                .await?;
        let stack = Arc::new(Stack::adopt(csp).await?);
        let result = soak_run(&stack, sdp, args).await;
        if let Ok(stack) = Arc::try_unwrap(stack) {
            stack.stop().await;
        }
        result
    };
    match run.await {
        Ok(tables) => tables,
        Err(e) => {
            let mut t = Table::new("soak", vec!["mode", "result"]);
            t.failed(Mode::Distributed, &e);
            vec![t]
        }
    }
}

async fn soak_run(
    stack: &Arc<Stack>,
    sdp: csp_mock_ticketing::RunningMock,
    args: &SoakArgs,
) -> Result<Vec<Table>> {
    let vocab = Vocabulary::new();
    let mut secrets = Vec::new();
    for i in 0..args.tenants {
        let id = format!("soak-t{i:02}");
        let secret = stack.tenant(&id, &sdp.base_url()).await?;
        tickets::seed_context(stack, &id, &secret, &vocab).await?;
        secrets.push((id, secret));
    }
    let intake = Arc::new(Intake {
        sdp,
        secrets,
        vocab,
        next_id: AtomicU64::new(1_000_000),
        sent: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        not_sent: AtomicU64::new(0),
        notes: AtomicU64::new(0),
        fake_full: AtomicU64::new(0),
    });
    let csp = &stack.csp;
    let token = stack.token.clone();
    let client = csp.http();
    let script = format!("bench deltas={} gap_us={}", args.deltas, args.gap_us);

    // ---- unloaded figures, one thing at a time.
    progress("soak: unloaded ready, relay and webhook 202");
    wait_pool_full(csp, &client, args.prewarm, Duration::from_secs(60)).await?;
    let mut base_ready = Vec::new();
    for _ in 0..args.baseline {
        wait_pool_full(csp, &client, args.prewarm, Duration::from_secs(60)).await?;
        base_ready.push(open_ready(csp, &token).await?.total_ms);
    }
    let mut first = csp.ws(&token, "").await?;
    until_ready(&mut first).await?;
    turn_latencies(&mut first, &script).await?;
    let mut base_relay = Vec::new();
    for _ in 0..args.baseline_turns {
        base_relay.extend(turn_latencies(&mut first, &script).await?);
    }
    let mut rng = Rng::new(17);
    let mut base_ack = Vec::new();
    for _ in 0..args.baseline {
        let (status, body, took) = intake.send(stack, &mut rng).await?;
        anyhow::ensure!(status == 202, "unloaded webhook: {status} {body}");
        base_ack.push(took);
    }

    let mut points = vec![Point {
        label: "before the load".into(),
        at: Instant::now(),
        rss: read_rss(stack),
        lens: [0; 3],
        accepted: intake.accepted.load(Ordering::Relaxed),
    }];

    // ---- the ramp: idle sockets, then the streaming sessions.
    let mut owner = csp.ws(&token, "").await?;
    let (session, seq) = until_ready(&mut owner).await?;
    let url = format!(
        "{}/ws?session={session}&after_seq={seq}",
        csp.base.replacen("http://", "ws://", 1)
    );
    let tally: Shared = Arc::default();
    let ramp = Instant::now();
    let (mut idle, failed_opens) = open_idle(
        &url,
        &token,
        args.idle,
        64,
        ramp + Duration::from_secs(300),
        "soak idle",
    )
    .await;
    for (reason, n) in failed_opens {
        *lock(&tally)
            .errors
            .entry(format!("idle: failed WebSocket open ({reason})"))
            .or_default() += n;
    }
    progress(format!(
        "soak: {} idle sockets open in {:.0} s; opening {} streaming sessions",
        idle.len(),
        ramp.elapsed().as_secs_f64(),
        args.sessions
    ));
    let mut streams = vec![first];
    while streams.len() < args.sessions {
        let mut ws = csp.ws(&token, "").await?;
        until_ready(&mut ws).await?;
        streams.push(ws);
    }

    // ---- the load.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for ws in streams {
        tasks.push(tokio::spawn(stream(
            stack.clone(),
            ws,
            script.clone(),
            Duration::from_millis(args.think_ms),
            stop.clone(),
            tally.clone(),
        )));
    }
    tasks.push(tokio::spawn(sample_ready(
        stack.clone(),
        args.prewarm,
        Duration::from_millis(args.ready_every_ms),
        stop.clone(),
        tally.clone(),
    )));
    let schedule = tokio::spawn(send_webhooks(
        stack.clone(),
        intake.clone(),
        args.webhooks_per_sec,
        args.webhooks_in_flight,
        stop.clone(),
        tally.clone(),
    ));
    // Housekeeping of the fakes, so their own bookkeeping neither fills up
    // nor shows as growth: the notes are taken out of the fake ServiceDesk
    // Plus, and the scripted model's request log (every request and its
    // body, kept for the tests' `/_mock/log`) is emptied.
    let mock_reset = format!(
        "{}/_mock/reset",
        csp.mock_url().context("mock-llm")?.trim_end_matches('/')
    );
    tasks.push(tokio::spawn({
        let (intake, stop, client) = (intake.clone(), stop.clone(), client.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                intake.notes();
                let _ = client.post(&mock_reset).send().await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }));
    let began = Instant::now();
    points.push(Point {
        label: "load on (ramp done)".into(),
        at: began,
        rss: read_rss(stack),
        lens: lock(&tally).lens(),
        accepted: intake.accepted.load(Ordering::Relaxed),
    });
    let end = began + Duration::from_secs(args.minutes * 60);
    let every = Duration::from_secs(args.sample_secs.max(1));
    let mut next = began + every;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        points.push(Point {
            label: format!("+{:.0} s", began.elapsed().as_secs_f64()),
            at: Instant::now(),
            rss: read_rss(stack),
            lens: lock(&tally).lens(),
            accepted: intake.accepted.load(Ordering::Relaxed),
        });
        progress(format!(
            "soak: +{:.0} s, {} webhooks accepted, {} relay samples",
            began.elapsed().as_secs_f64(),
            intake.accepted.load(Ordering::Relaxed),
            lock(&tally).relay.len()
        ));
        next += every;
    }
    tokio::time::sleep_until(end.into()).await;
    stop.store(true, Ordering::Relaxed);
    points.push(Point {
        label: format!("end of the load (+{:.0} s)", began.elapsed().as_secs_f64()),
        at: Instant::now(),
        rss: read_rss(stack),
        lens: lock(&tally).lens(),
        accepted: intake.accepted.load(Ordering::Relaxed),
    });
    let load_secs = began.elapsed().as_secs_f64();
    progress("soak: load stopped; finishing turns and webhooks in flight");
    for t in tasks {
        let _ = t.await;
    }
    let _ = schedule.await;
    let notes_at_end = intake.notes();

    progress(format!("soak: pinging {} idle sockets", idle.len()));
    let open = idle.len();
    let alive = count_alive(&mut idle).await;
    if alive < open {
        *lock(&tally)
            .errors
            .entry("idle: dropped (no pong at the end)".into())
            .or_default() += open - alive;
    }
    for mut s in idle {
        let _ = s.close(None).await;
    }
    owner.close().await;

    // The workers' backlog: the history's counts by status.
    let drain_until = Instant::now() + Duration::from_secs(args.drain_secs);
    let mut counts = enhancement_counts(stack).await?;
    while counts["pending"] + counts["processing"] > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_secs(2)).await;
        counts = enhancement_counts(stack).await?;
    }
    let drained = Instant::now() >= drain_until;
    if counts["failed"] > 0 {
        *lock(&tally)
            .errors
            .entry("enhancement: failed (history API)".into())
            .or_default() += counts["failed"] as usize;
    }
    let notes_after = intake.notes();

    let tally = Arc::try_unwrap(tally)
        .ok()
        .context("a load task outlived the load")?
        .into_inner()
        .expect("tally");
    let mut tables = vec![latency_table(
        args,
        &tally,
        [base_ready, base_relay, base_ack],
    )];
    tables.push(window_table(&tally, &points));
    tables.push(memory_table(&points));
    tables.push(errors_table(&tally));
    let accepted = intake.accepted.load(Ordering::Relaxed);
    let mut w = Table::new(
        format!(
            "soak: webhooks ({} /s scheduled, at most {} in flight) and their enhancements",
            args.webhooks_per_sec, args.webhooks_in_flight
        ),
        vec!["figure", "count"],
    );
    let sent = intake.sent.load(Ordering::Relaxed);
    for (k, v) in [
        ("sent (unloaded + load)".to_owned(), sent.to_string()),
        (
            "due but not sent (in-flight cap reached)".into(),
            intake.not_sent.load(Ordering::Relaxed).to_string(),
        ),
        ("accepted (202)".into(), accepted.to_string()),
        (
            "accepted/s during the load".into(),
            format!(
                "{:.0}",
                (points.last().map_or(0, |p| p.accepted) - points[1].accepted) as f64 / load_secs
            ),
        ),
        (
            "history: completed / failed / pending / processing".into(),
            format!(
                "{} / {} / {} / {}{}",
                counts["completed"],
                counts["failed"],
                counts["pending"],
                counts["processing"],
                if drained {
                    format!(" (backlog left after {} s)", args.drain_secs)
                } else {
                    String::new()
                }
            ),
        ),
        (
            "notes posted at the end of the load".into(),
            notes_at_end.to_string(),
        ),
        (
            "notes posted after the drain".into(),
            notes_after.to_string(),
        ),
        (
            "tickets the fake ServiceDesk Plus had no room for".into(),
            intake.fake_full.load(Ordering::Relaxed).to_string(),
        ),
    ] {
        w.rows.push(vec![k, v]);
    }
    tables.push(w);
    Ok(tables)
}

/// The enhancement history's totals by status (`GET /api/v1/enhancements`).
async fn enhancement_counts(stack: &Stack) -> Result<BTreeMap<&'static str, u64>> {
    let mut out = BTreeMap::new();
    for status in ["pending", "processing", "completed", "failed"] {
        let (code, body) = stack
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/enhancements?status={status}"),
                None,
            )
            .await?;
        anyhow::ensure!(code == 200, "GET /api/v1/enhancements: {code} {body}");
        out.insert(status, body["total"].as_u64().context("total")?);
    }
    Ok(out)
}

/// One session streaming turn after turn until `stop`; every delta's
/// latency goes to the tally. A failed turn is counted and the session
/// replaced by a new one (the failure, not the replacement, is the figure).
async fn stream(
    stack: Arc<Stack>,
    mut ws: Ws,
    script: String,
    think: Duration,
    stop: Arc<AtomicBool>,
    tally: Shared,
) {
    while !stop.load(Ordering::Relaxed) {
        match turn_latencies(&mut ws, &script).await {
            Ok(l) => {
                lock(&tally).relay.extend(l);
                tokio::time::sleep(think).await;
            }
            Err(e) => {
                let what = kind(&e);
                lock(&tally).error(if what.starts_with("error frame") {
                    format!("stream: {what}")
                } else {
                    format!("stream: turn broken ({what})")
                });
                let fresh = async {
                    let mut ws = stack.csp.ws(&stack.token, "").await?;
                    until_ready(&mut ws).await?;
                    Ok::<_, anyhow::Error>(ws)
                };
                match fresh.await {
                    Ok(w) => ws = w,
                    Err(e) => {
                        lock(&tally).error(format!("stream: no new session ({})", kind(&e)));
                        return;
                    }
                }
            }
        }
    }
    ws.close().await;
}

/// `ready` during the load, as unloaded: a new session once the pool is
/// full again, at most one every `every`.
async fn sample_ready(
    stack: Arc<Stack>,
    prewarm: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
    tally: Shared,
) {
    let client = stack.csp.http();
    while !stop.load(Ordering::Relaxed) {
        let next = tokio::time::Instant::now() + every;
        if let Err(e) = wait_pool_full(&stack.csp, &client, prewarm, Duration::from_secs(60)).await
        {
            lock(&tally).error(format!("ready: {}", kind(&e)));
        }
        match open_ready(&stack.csp, &stack.token).await {
            Ok(o) => {
                let mut t = lock(&tally);
                t.ready.push(o.total_ms);
                t.cold += usize::from(!o.warm);
            }
            Err(e) => lock(&tally).error(format!("ready: failed open ({})", kind(&e))),
        }
        tokio::time::sleep_until(next).await;
    }
}

/// Webhooks on a fixed schedule: the n-th is due at n / `rate` seconds,
/// issued from a 10 ms tick; one due while `in_flight` are unanswered is
/// counted and skipped (the schedule never slows down to the server).
async fn send_webhooks(
    stack: Arc<Stack>,
    intake: Arc<Intake>,
    rate: f64,
    in_flight: usize,
    stop: Arc<AtomicBool>,
    tally: Shared,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let began = Instant::now();
    let mut due_sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut rng = Rng::new(1717);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let due = (rate * began.elapsed().as_secs_f64()) as u64;
        while due_sent < due {
            due_sent += 1;
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                intake.not_sent.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let mut own = Rng::new(rng.next_u64());
            let (stack, intake, tally) = (stack.clone(), intake.clone(), tally.clone());
            tokio::spawn(async move {
                match intake.send(&stack, &mut own).await {
                    Ok((202, _, took)) => lock(&tally).ack.push(took),
                    Ok((s, b, _)) => lock(&tally)
                        .error(format!("webhook: non-202 ({})", tickets::refusal(s, &b))),
                    Err(e) => lock(&tally).error(format!("webhook: {}", kind(&e))),
                }
                drop(permit);
            });
        }
    }
    // Every webhook sent is answered before the figures are read.
    let _ = tokio::time::timeout(
        Duration::from_secs(120),
        permits.acquire_many(in_flight as u32),
    )
    .await;
}

fn latency_table(args: &SoakArgs, tally: &Tally, unloaded: [Vec<f64>; 3]) -> Table {
    let mut t = Table::new(
        format!(
            "soak: p99 unloaded vs under load ({} min: {} idle sockets, {} sessions streaming \
             {} deltas {} µs apart per turn, {} ms between turns, {} webhooks/s scheduled), ms; \
             goal: loaded ≤ 2× unloaded",
            args.minutes,
            args.idle,
            args.sessions,
            args.deltas,
            args.gap_us,
            args.think_ms,
            args.webhooks_per_sec
        ),
        vec![
            "figure",
            "unloaded n",
            "unloaded p50",
            "unloaded p99",
            "loaded n",
            "loaded p50",
            "loaded p99",
            "loaded max",
            "p99 loaded / unloaded",
        ],
    );
    let ready = format!(
        "ready (WebSocket open → ready frame; {} loaded opens cold)",
        tally.cold
    );
    let names = [
        ready.as_str(),
        "relay (agent line → delta frame)",
        "webhook ack (POST → 202)",
    ];
    let loaded = [&tally.ready, &tally.relay, &tally.ack];
    for ((name, base), load) in names.into_iter().zip(unloaded).zip(loaded) {
        let (b, l) = (Samples::new(base), Samples::new(load.clone()));
        t.rows.push(vec![
            name.to_owned(),
            b.0.len().to_string(),
            ms(b.pct(50.0)),
            ms(b.pct(99.0)),
            l.0.len().to_string(),
            ms(l.pct(50.0)),
            ms(l.pct(99.0)),
            ms(l.max()),
            format!("{:.2}×", l.pct(99.0) / b.pct(99.0)),
        ]);
    }
    t
}

/// The three p99s over each window between two memory readings.
fn window_table(tally: &Tally, points: &[Point]) -> Table {
    let mut t = Table::new(
        "soak: p99 per window of the load, ms",
        vec![
            "window",
            "ready n",
            "ready p99",
            "relay n",
            "relay p99",
            "202 n",
            "webhook ack p99",
            "202/s",
        ],
    );
    let all = [&tally.ready, &tally.relay, &tally.ack];
    for pair in points[1..].windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let mut row = vec![format!("{} → {}", a.label, b.label)];
        for (i, v) in all.iter().enumerate() {
            let s = Samples::new(v[a.lens[i]..b.lens[i]].to_vec());
            row.push(s.0.len().to_string());
            row.push(ms(s.pct(99.0)));
        }
        let secs = b.at.duration_since(a.at).as_secs_f64();
        row.push(format!("{:.0}", (b.accepted - a.accepted) as f64 / secs));
        t.rows.push(row);
    }
    t
}

fn memory_table(points: &[Point]) -> Table {
    let mut header = vec!["reading"];
    header.extend(CSP_PROCESSES);
    header.extend(SHARED_PROCESSES.iter().map(|(name, _)| *name));
    let mut t = Table::new("soak: RSS of every process, MiB", header);
    let mib = |v: &Option<u64>| v.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    for p in points {
        let mut row = vec![p.label.clone()];
        row.extend(p.rss.iter().map(mib));
        t.rows.push(row);
    }
    // Growth over the load: from the ramp's end to the load's end.
    if let (Some(on), Some(end)) = (points.get(1), points.last()) {
        let mut row = vec!["end − load on".to_owned()];
        row.extend(on.rss.iter().zip(&end.rss).map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => format!("{:+.1}", (*b as f64 - *a as f64) / 1024.0),
            _ => "-".into(),
        }));
        t.rows.push(row);
    }
    t
}

fn errors_table(tally: &Tally) -> Table {
    let mut t = Table::new("soak: errors by kind", vec!["kind", "count"]);
    for (k, v) in &tally.errors {
        t.rows.push(vec![k.clone(), v.to_string()]);
    }
    if tally.errors.is_empty() {
        t.rows.push(vec!["(none)".into(), "0".into()]);
    }
    t
}
