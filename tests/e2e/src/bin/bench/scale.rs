//! `csp-bench scale`: two processes of every service (the harness's
//! [`Options::replicas`], each addressed pair behind a round-robin TCP
//! proxy), chat sessions and a steady stream of webhooks; one replica of
//! each service is SIGKILLed in turn (and started again before the next),
//! and each loss is measured: requests that failed through the proxies,
//! the time until the service answered again, sessions that took a turn
//! afterwards, and what became of the webhooks sent meanwhile.
//!
//! The full form of `tests/e2e/tests/it/scale.rs`; it prints figures and
//! judges none.

use super::tickets::{Stack, new_ticket_body, rate_limit_env, refusal, send_webhook};
use crate::{Common, Table, agent_env, csp_path, ms, progress};
use anyhow::{Context, Result, bail};
use clap::Args;
use csp_e2e::{Csp, Mode, Options, Ws};
use csp_mock_ticketing::{MockRequest, MockSdp, RunningMock};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub(crate) struct ScaleArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Chat sessions, each asked to take a turn after every loss.
    #[arg(long, default_value_t = 12)]
    pub(crate) sessions: usize,
    /// Webhooks sent per second during each loss.
    #[arg(long, default_value_t = 10)]
    pub(crate) webhook_rate: u64,
    /// Seconds of each loss's load: 2 before the kill, the rest after.
    #[arg(long, default_value_t = 12)]
    pub(crate) phase_secs: u64,
}

/// The services killed, in order, and the request each one's loss is
/// probed with (through the gateway proxy, as a browser would).
const SERVICES: [(&str, Probe); 6] = [
    ("gateway", Probe::Plugins),
    ("session-pool", Probe::NewSession),
    ("policy", Probe::Login),
    ("plugins", Probe::Plugins),
    ("tickets", Probe::Tenants),
    ("tickets-worker", Probe::None),
];

#[derive(Clone, Copy)]
enum Probe {
    /// `GET /api/v1/plugins` (gateway → plugins).
    Plugins,
    /// A new session's WebSocket until `ready` (gateway → session-pool).
    NewSession,
    /// `POST /api/v1/auth/login` (gateway → policy).
    Login,
    /// `GET /api/v1/tenants` (gateway → tickets).
    Tenants,
    /// Nothing addresses a worker: its loss shows in the webhooks' fate.
    None,
}

impl Probe {
    fn name(self) -> &'static str {
        match self {
            Probe::Plugins => "GET /api/v1/plugins",
            Probe::NewSession => "new session → ready",
            Probe::Login => "login",
            Probe::Tenants => "GET /api/v1/tenants",
            Probe::None => "—",
        }
    }

    /// One request; `Err` says why it failed.
    async fn once(self, csp: &Csp, token: &str) -> Result<()> {
        let path = match self {
            Probe::Plugins => "/api/v1/plugins",
            Probe::Tenants => "/api/v1/tenants",
            Probe::Login => return csp.login().await.map(drop),
            Probe::NewSession => {
                let mut ws = csp.ws(token, "").await?;
                let ready = tokio::time::timeout(
                    Duration::from_secs(10),
                    ws.until(|f| f["type"] == "session" && f["status"] == "ready"),
                )
                .await;
                ws.close().await;
                return ready.context("no ready within 10 s")?.map(drop);
            }
            Probe::None => return Ok(()),
        };
        match csp.get(token, path).await? {
            (200, _) => Ok(()),
            (status, body) => bail!("{}", refusal(status, &body)),
        }
    }
}

/// A session of the bench and the last event it saw.
struct Session {
    id: String,
    last_seq: u64,
}

/// One loss's figures.
#[derive(Default)]
struct Loss {
    probes: usize,
    failed: BTreeMap<String, usize>,
    /// Kill → the first probe success after the last failure.
    recovered_ms: Option<f64>,
    sessions_resumed: usize,
    session_retries: usize,
    /// Kill → the last session's turn answered (each browser reattaches at
    /// the kill, retrying every 500 ms).
    sessions_ms: f64,
    /// Ticket ids whose webhook was accepted (`202`).
    accepted: Vec<u64>,
    refused: BTreeMap<String, usize>,
}

const TENANT: &str = "scale";
const SUBJECT: &str = "VPN keeps disconnecting";
const DESCRIPTION: &str = "The VPN client of user jdoe disconnects every few minutes; the gateway at 10.0.0.1 logs certificate errors.";

pub(crate) async fn bench_scale(args: &ScaleArgs) -> Table {
    let mut table = Table::new(
        format!(
            "scale: two processes of every service behind round-robin TCP proxies, {} sessions (stand-in agent), \
             {} webhooks/s; one replica of each SIGKILLed in turn ({} s of load each, kill at 2 s) and restarted after",
            args.sessions, args.webhook_rate, args.phase_secs
        ),
        vec![
            "killed",
            "probe",
            "probes",
            "failed (why)",
            "answered again after",
            "sessions resumed",
            "session retries",
            "all answered after",
            "webhooks accepted",
            "refused (why)",
            "enhanced",
            "duplicate notes",
        ],
    );
    if let Err(e) = scale_run(args, &mut table).await {
        table.failed(Mode::Distributed, &e);
    }
    table
}

async fn scale_run(args: &ScaleArgs, table: &mut Table) -> Result<()> {
    progress("scale: starting two of every service");
    let mut env = agent_env(&args.common, false)?;
    let max_sessions = 4 * args.sessions + 64;
    env.extend([
        rate_limit_env(),
        ("MAX_SESSIONS_PER_USER".into(), max_sessions.to_string()),
        ("CSP_TICKETS_WORKER_CONCURRENCY".into(), "2".into()),
    ]);
    let csp = Csp::start(
        Mode::Distributed,
        Options {
            prewarm: 2,
            max_sessions,
            env,
            bin: Some(csp_path(&args.common)),
            tickets: true,
            replicas: 2,
            ..Options::default()
        },
    )
    .await?;
    let mut stack = Stack::adopt(csp).await?;
    let sdp = RunningMock::start(MockSdp::builder().build()).await?;
    let secret = stack.tenant(TENANT, &sdp.base_url()).await?;

    let mut sessions = Vec::new();
    for _ in 0..args.sessions {
        let mut ws = stack.csp.ws(&stack.token, "").await?;
        let ready = ws
            .until(|f| f["type"] == "session" && f["status"] == "ready")
            .await?;
        let id = ready.last().unwrap()["session_id"]
            .as_str()
            .context("session_id")?
            .to_owned();
        let mut s = Session { id, last_seq: 0 };
        turn(&mut ws, &mut s).await?;
        ws.close().await;
        sessions.push(s);
    }

    let mut next_ticket = 950_000u64;
    let mut losses = Vec::new();
    let load = Load {
        logged: Default::default(),
        sdp: &sdp,
        secret: &secret,
        args,
    };
    // What was logged before the first loss is not any loss's doing.
    load.logged
        .borrow_mut()
        .extend(stack.csp.all_logs().lines().map(str::to_owned));
    for (service, probe) in SERVICES {
        progress(format!("scale: losing one {service}"));
        let loss = lose_one(
            &mut stack,
            &load,
            service,
            probe,
            &mut sessions,
            &mut next_ticket,
        )
        .await
        .with_context(|| format!("losing one {service}"))?;
        losses.push((service, probe, loss));
    }

    // Every accepted webhook should end in one note: wait for the stragglers.
    let accepted: usize = losses.iter().map(|(_, _, l)| l.accepted.len()).sum();
    progress(format!("scale: waiting for {accepted} enhancements"));
    let deadline = Instant::now() + Duration::from_secs(300);
    let notes = loop {
        let mut notes: BTreeMap<u64, usize> = BTreeMap::new();
        for n in sdp.mock().notes() {
            *notes.entry(n.request_id).or_default() += 1;
        }
        let done = losses
            .iter()
            .flat_map(|(_, _, l)| &l.accepted)
            .all(|id| notes.contains_key(id));
        if done || Instant::now() > deadline {
            break notes;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    for (service, probe, loss) in losses {
        let enhanced = loss
            .accepted
            .iter()
            .filter(|id| notes.contains_key(id))
            .count();
        let duplicates: usize = loss
            .accepted
            .iter()
            .map(|id| notes.get(id).copied().unwrap_or(0).saturating_sub(1))
            .sum();
        let failed: usize = loss.failed.values().sum();
        let refused: usize = loss.refused.values().sum();
        table.rows.push(vec![
            service.to_owned(),
            probe.name().to_owned(),
            loss.probes.to_string(),
            format!("{failed}{}", reasons(&loss.failed)),
            match (probe, loss.recovered_ms) {
                (Probe::None, _) => "—".to_owned(),
                (_, Some(v)) => format!("{} ms", ms(v)),
                (_, None) => "never".to_owned(),
            },
            format!("{}/{}", loss.sessions_resumed, sessions.len()),
            loss.session_retries.to_string(),
            format!("{} ms", ms(loss.sessions_ms)),
            loss.accepted.len().to_string(),
            format!("{refused}{}", reasons(&loss.refused)),
            enhanced.to_string(),
            duplicates.to_string(),
        ]);
    }
    sdp.shutdown().await;
    stack.stop().await;
    Ok(())
}

fn reasons(by: &BTreeMap<String, usize>) -> String {
    if by.is_empty() {
        return String::new();
    }
    let list: Vec<String> = by.iter().map(|(k, v)| format!("{v}× {k}")).collect();
    format!(" ({})", list.join("; "))
}

/// One scripted-free turn (the stand-in answers anything) on an attached
/// socket; the session's `last_seq` follows.
async fn turn(ws: &mut Ws, s: &mut Session) -> Result<()> {
    ws.send(json!({"type": "send", "text": "are you there?"}))
        .await?;
    let frames = tokio::time::timeout(
        Duration::from_secs(20),
        ws.until(|f| f["type"] == "result" || f["type"] == "error"),
    )
    .await
    .context("no answer within 20 s")??;
    if let Some(seq) = frames.iter().filter_map(|f| f["seq"].as_u64()).max() {
        s.last_seq = s.last_seq.max(seq);
    }
    let last = frames.last().unwrap();
    if last["type"] == "error" || last["is_error"] == true {
        bail!("{}", last["code"].as_str().unwrap_or("error"));
    }
    Ok(())
}

/// A browser coming back: reattach through the gateway proxy after its last
/// event and take a turn, retrying (as the web app does) until it works.
async fn come_back(csp: &Csp, token: &str, s: &mut Session, deadline: Instant) -> (bool, usize) {
    let mut retries = 0;
    loop {
        let attempt = async {
            let query = format!("session={}&after_seq={}", s.id, s.last_seq);
            let mut ws = csp.ws(token, &query).await?;
            let r = turn(&mut ws, s).await;
            ws.close().await;
            r
        };
        if attempt.await.is_ok() {
            return (true, retries);
        }
        if Instant::now() > deadline {
            return (false, retries);
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What every loss is measured against: the fake ServiceDesk Plus, the
/// tenant's webhook secret and the settings.
struct Load<'a> {
    /// Log lines already shown, so each loss shows only its own.
    logged: std::cell::RefCell<std::collections::HashSet<String>>,
    sdp: &'a RunningMock,
    secret: &'a str,
    args: &'a ScaleArgs,
}

async fn lose_one(
    stack: &mut Stack,
    load: &Load<'_>,
    service: &'static str,
    probe: Probe,
    sessions: &mut [Session],
    next_ticket: &mut u64,
) -> Result<Loss> {
    let (sdp, secret, args) = (load.sdp, load.secret, load.args);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.phase_secs);
    let kill_at = start + Duration::from_secs(2);
    let first_ticket = *next_ticket;
    let count = args.webhook_rate * args.phase_secs;
    *next_ticket += count;
    for id in first_ticket..first_ticket + count {
        sdp.mock()
            .insert(MockRequest::open(id, SUBJECT, DESCRIPTION, "High"));
    }

    let csp = &stack.csp;
    let token = stack.token.clone();
    // The steady webhook stream, paced, through the gateway proxy.
    let webhooks = async {
        let mut accepted = Vec::new();
        let mut refused: BTreeMap<String, usize> = BTreeMap::new();
        let every = Duration::from_secs_f64(1.0 / args.webhook_rate as f64);
        for (i, id) in (first_ticket..first_ticket + count).enumerate() {
            tokio::time::sleep_until((start + every * i as u32).into()).await;
            let body = new_ticket_body(id, SUBJECT, DESCRIPTION);
            // A client per delivery: a ticketing tool's retry opens a new
            // connection, which the proxy sends to a live gateway.
            let http = reqwest::Client::new();
            match send_webhook(&http, &csp.base, TENANT, secret, body, false).await {
                Ok((202, _)) => accepted.push(id),
                Ok((s, b)) => *refused.entry(refusal(s, &b)).or_default() += 1,
                Err(e) => *refused.entry(short(&e)).or_default() += 1,
            }
        }
        (accepted, refused)
    };
    // The probe, back to back, recording (time since the kill, ok).
    let probing = async {
        let mut timeline: Vec<(f64, Result<(), String>)> = Vec::new();
        while Instant::now() < end {
            let r = probe.once(csp, &token).await.map_err(|e| short(&e));
            let at = Instant::now().saturating_duration_since(kill_at);
            if Instant::now() >= kill_at {
                timeline.push((at.as_secs_f64() * 1e3, r));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        timeline
    };
    // The harness's kill9 needs `&mut` while the load borrows the instance:
    // the signal goes by process id, and kill9 reaps it afterwards.
    let victim = service;
    let pid = csp
        .pid_of(victim)
        .with_context(|| format!("{victim} is not running"))?;
    let killing = async {
        tokio::time::sleep_until(kill_at.into()).await;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    // Every browser comes back as soon as its replica is gone (or at once,
    // when the loss was not its own): reattach and take a turn.
    let returning = async {
        tokio::time::sleep_until(kill_at.into()).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let back = sessions.iter_mut().map(|s| async {
            let (ok, retries) = come_back(csp, &token, s, deadline).await;
            (ok, retries, kill_at.elapsed())
        });
        futures::future::join_all(back).await
    };
    let ((accepted, refused), timeline, (), returned) =
        tokio::join!(webhooks, probing, killing, returning);
    stack.csp.kill9(victim).await;

    let mut loss = Loss {
        accepted,
        refused,
        probes: timeline.len(),
        ..Loss::default()
    };
    for (_, r) in &timeline {
        if let Err(why) = r {
            *loss.failed.entry(why.clone()).or_default() += 1;
        }
    }
    // What the processes logged meanwhile, for the reader of the figures.
    for line in stack.csp.all_logs().lines() {
        if (line.contains("ERROR") || line.contains("WARN"))
            && load.logged.borrow_mut().insert(line.to_owned())
        {
            progress(format!("{service} lost: {line}"));
        }
    }
    let last_failure = timeline.iter().rposition(|(_, r)| r.is_err());
    loss.recovered_ms = match last_failure {
        Some(i) => timeline.get(i + 1).map(|(t, _)| *t),
        None => timeline.first().map(|(t, _)| *t),
    };

    loss.sessions_resumed = returned.iter().filter(|(ok, _, _)| *ok).count();
    loss.session_retries = returned.iter().map(|(_, r, _)| r).sum();
    loss.sessions_ms = returned
        .iter()
        .map(|(_, _, t)| t.as_secs_f64() * 1e3)
        .fold(0.0, f64::max);

    // Back to two before the next loss: a session-pool on its address (the
    // routes of its sessions name it), the others anywhere, their proxy's
    // upstreams updated as a Service's endpoints would be.
    match service {
        "session-pool" | "policy" | "plugins" | "tickets" => {
            stack.csp.restart_same_addr(victim).await?
        }
        _ => stack.csp.restart(victim).await?,
    }
    stack.csp.refresh_proxy(service);
    Ok(loss)
}

/// An error's innermost cause (`connection reset`, `500 internal`…), for
/// counting failures by kind.
fn short(e: &anyhow::Error) -> String {
    let s = e.root_cause().to_string();
    let s = s.lines().next().unwrap_or_default();
    s.chars().take(60).collect()
}
