//! A [`Spawner`] with no CLI behind it, for unit tests of the actor.
//!
//! Every spawn hands the test a [`FakeAgent`]: what the actor did to the
//! process (user messages, interrupts, shutdown) arrives as [`Call`]s, and
//! the test plays the CLI's side by sending stream-json lines, exactly as
//! the driver would have parsed them from a real CLI's stdout.

use super::{Output, Process, Request, Spawner, Started};
use async_trait::async_trait;
use csp_agent::{AgentEvent, Message};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the actor did to a fake process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    SendUser(String),
    Interrupt,
    Shutdown,
}

/// The test's side of one spawned process.
pub(crate) struct FakeAgent {
    pub(crate) request: Request,
    calls: mpsc::UnboundedReceiver<Call>,
    says: mpsc::UnboundedSender<AgentEvent>,
    rss: Arc<AtomicU64>,
}

impl FakeAgent {
    /// The next thing the actor did to this process.
    pub(crate) async fn call(&mut self) -> Call {
        self.calls.recv().await.expect("the fake process is gone")
    }

    /// Whatever the actor did so far and nothing more.
    pub(crate) fn calls_so_far(&mut self) -> Vec<Call> {
        std::iter::from_fn(|| self.calls.try_recv().ok()).collect()
    }

    /// One stream-json line on the process's stdout.
    pub(crate) fn say(&self, line: &str) {
        let msg = Message::parse(line).expect("a stream-json line");
        let _ = self.says.send(AgentEvent::Message(msg));
    }

    /// The process ends on its own.
    pub(crate) fn exit(&self, code: Option<i32>) {
        let _ = self.says.send(AgentEvent::Exited {
            code,
            stderr_tail: String::new(),
        });
    }

    /// What its process tree's memory reads from now on.
    pub(crate) fn set_rss(&self, bytes: u64) {
        self.rss.store(bytes, Ordering::Relaxed);
    }
}

/// Hands out fake processes; a queued failure fails the next spawn.
pub(crate) struct FakeSpawner {
    agents: mpsc::UnboundedSender<FakeAgent>,
    failures: Mutex<VecDeque<String>>,
    held: Mutex<Option<oneshot::Receiver<()>>>,
}

impl FakeSpawner {
    /// The spawner, and where each spawned process's [`FakeAgent`] arrives.
    pub(crate) fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<FakeAgent>) {
        let (agents, rx) = mpsc::unbounded_channel();
        let spawner = Self {
            agents,
            failures: Mutex::new(VecDeque::new()),
            held: Mutex::new(None),
        };
        (Arc::new(spawner), rx)
    }

    /// The next spawn fails as a CLI that exits before `initialize` would.
    pub(crate) fn fail_next(&self, why: &str) {
        self.failures
            .lock()
            .expect("lock")
            .push_back(why.to_owned());
    }

    /// The next spawn takes until the returned sender is used.
    pub(crate) fn hold_next(&self) -> oneshot::Sender<()> {
        let (release, held) = oneshot::channel();
        *self.held.lock().expect("lock") = Some(held);
        release
    }

    /// A process for a warm start, as if the pool had pre-warmed it.
    pub(crate) fn started(&self, request: Request) -> Started {
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let (says, output) = mpsc::unbounded_channel();
        let rss = Arc::new(AtomicU64::new(0));
        let _ = self.agents.send(FakeAgent {
            request,
            calls,
            says,
            rss: rss.clone(),
        });
        Started {
            process: Box::new(FakeProcess {
                calls: calls_tx,
                rss,
            }),
            output: Box::new(FakeOutput(output)),
        }
    }
}

#[async_trait]
impl Spawner for FakeSpawner {
    async fn spawn(&self, request: Request) -> Result<Started, csp_agent::Error> {
        let held = self.held.lock().expect("lock").take();
        if let Some(held) = held {
            let _ = held.await;
        }
        let failure = self.failures.lock().expect("lock").pop_front();
        if let Some(why) = failure {
            return Err(csp_agent::Error::Prepare {
                path: why.into(),
                source: std::io::Error::other("scripted spawn failure"),
            });
        }
        Ok(self.started(request))
    }
}

struct FakeProcess {
    calls: mpsc::UnboundedSender<Call>,
    rss: Arc<AtomicU64>,
}

#[async_trait]
impl Process for FakeProcess {
    async fn send_user(&self, text: &str) -> Result<(), csp_agent::Error> {
        self.calls
            .send(Call::SendUser(text.to_owned()))
            .map_err(|_| csp_agent::Error::Closed)
    }

    async fn interrupt(&self) -> Result<(), csp_agent::Error> {
        self.calls
            .send(Call::Interrupt)
            .map_err(|_| csp_agent::Error::Closed)
    }

    fn rss_bytes(&self) -> u64 {
        self.rss.load(Ordering::Relaxed)
    }

    async fn shutdown(self: Box<Self>, _grace: Duration) -> Option<i32> {
        let _ = self.calls.send(Call::Shutdown);
        Some(0)
    }
}

struct FakeOutput(mpsc::UnboundedReceiver<AgentEvent>);

#[async_trait]
impl Output for FakeOutput {
    async fn recv(&mut self) -> Option<AgentEvent> {
        self.0.recv().await
    }
}
