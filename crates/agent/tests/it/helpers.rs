use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use csp_agent::{
    Agent, AgentEvent, AgentEvents, Config, Decision, Message, PermissionHook, PermissionRequest,
    ResultMessage, SpawnSpec,
};
use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::unistd::Pid;
use tempfile::TempDir;
use uuid::Uuid;

/// Nothing listens here; for tests in which the CLI makes no API call.
pub(crate) const NO_MODEL: &str = "http://127.0.0.1:9";

/// Only a safety net against a hung test, never an assertion about speed.
const EVENT_WAIT: Duration = Duration::from_secs(120);

/// Prices in agent-protocol.md §9 are for this model: $3 / $15 per Mtok.
pub(crate) const MODEL: &str = "claude-sonnet-4-5";

pub(crate) fn config(base_url: &str) -> Config {
    Config {
        model: Some(MODEL.into()),
        env: vec![
            ("ANTHROPIC_BASE_URL".into(), base_url.into()),
            ("ANTHROPIC_API_KEY".into(), "sk-test-not-a-real-key".into()),
        ],
        max_retries: 0,
        // Generous: several CLIs start at once on two shared cores.
        init_timeout: Duration::from_secs(90),
        ..Config::default()
    }
}

/// A private workdir, HOME and config dir per test.
pub(crate) struct Sandbox {
    dir: TempDir,
    pub(crate) session_id: Uuid,
}

impl Sandbox {
    pub(crate) fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("work")).expect("workdir");
        Sandbox {
            dir,
            session_id: Uuid::new_v4(),
        }
    }

    pub(crate) fn workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn spec(&self) -> SpawnSpec {
        SpawnSpec {
            session_id: self.session_id,
            workdir: self.workdir(),
            home: self.path("home"),
            config_dir: self.path("claude"),
            resume: false,
            mcp_config: None,
            reach: csp_agent::Reach::default(),
            env: Vec::new(),
            exit_guard: None,
        }
    }
}

pub(crate) async fn spawn(
    cfg: &Config,
    sandbox: &Sandbox,
    hook: Arc<dyn PermissionHook>,
) -> (Agent, AgentEvents) {
    Agent::spawn(cfg, sandbox.spec(), hook)
        .await
        .expect("agent becomes ready")
}

pub(crate) async fn next_event(events: &mut AgentEvents) -> AgentEvent {
    tokio::time::timeout(EVENT_WAIT, events.recv())
        .await
        .expect("the agent went silent")
        .expect("the event stream ended")
}

pub(crate) async fn next_message(events: &mut AgentEvents) -> Message {
    match next_event(events).await {
        AgentEvent::Message(message) => message,
        AgentEvent::Exited { code, stderr_tail } => {
            panic!("the agent exited ({code:?}) mid-turn: {stderr_tail}")
        }
    }
}

/// Every message of a turn, up to and including its result.
pub(crate) async fn turn(events: &mut AgentEvents) -> (Vec<Message>, ResultMessage) {
    let mut seen = Vec::new();
    loop {
        match next_message(events).await {
            Message::Result(result) => return (seen, result),
            other => seen.push(other),
        }
    }
}

pub(crate) fn group_alive(pgid: u32) -> bool {
    let pgid = i32::try_from(pgid).expect("pid fits i32");
    killpg(Pid::from_raw(pgid), None) != Err(Errno::ESRCH)
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_ascii_whitespace().map(str::to_owned).collect())
}

/// Gone, or a zombie: this machine's init does not reap adopted orphans.
pub(crate) fn process_dead(pid: u32) -> bool {
    stat_fields(pid).is_none_or(|fields| fields[0] == "Z")
}

pub(crate) fn process_group(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// Delegates to a policy and remembers what it was asked.
pub(crate) struct Recording {
    policy: Box<dyn PermissionHook>,
    seen: Mutex<Vec<PermissionRequest>>,
}

impl Recording {
    pub(crate) fn new(policy: impl PermissionHook + 'static) -> Arc<Recording> {
        Arc::new(Recording {
            policy: Box::new(policy),
            seen: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn seen(&self) -> Vec<PermissionRequest> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl PermissionHook for Recording {
    async fn decide(&self, request: &PermissionRequest) -> Decision {
        self.seen.lock().unwrap().push(request.clone());
        self.policy.decide(request).await
    }
}

/// A policy service that never answers.
pub(crate) struct Silent;

#[async_trait]
impl PermissionHook for Silent {
    async fn decide(&self, _: &PermissionRequest) -> Decision {
        futures::future::pending().await
    }
}

/// Never answers; reports when it is asked and when its future is dropped
/// (which is how the driver cancels a decision).
#[derive(Default)]
pub(crate) struct Stuck {
    pub(crate) asked: tokio::sync::Notify,
    pub(crate) cancelled: tokio::sync::Notify,
}

struct NotifyOnDrop<'a>(&'a tokio::sync::Notify);

impl Drop for NotifyOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

#[async_trait]
impl PermissionHook for Stuck {
    async fn decide(&self, _: &PermissionRequest) -> Decision {
        let _guard = NotifyOnDrop(&self.cancelled);
        self.asked.notify_one();
        futures::future::pending().await
    }
}
