//! The actor's state machine, driven through its [`Handle`] with a fake
//! spawner (no CLI, no network, no database): an in-memory store, bus,
//! cache and queue, and tokio's paused clock for the limits.

use super::*;
use crate::context::fake::MemoryStore;
use crate::gate::Bindings;
use crate::governor::Unlimited;
use crate::lifecycle::Limits;
use crate::metrics::Usage;
use crate::model_check::ModelKey;
use crate::process::Reason;
use crate::process::fake::{Call, FakeAgent, FakeSpawner};
use csp_agent::AllowList;
use csp_bus::{EventBus, EventStream, InProcessBus, InProcessQueue};
use csp_cache::{Cache, MemoryCache};
use csp_store::{NewSession, SessionRecord, SessionStore};
use futures::StreamExt;

const MIB: u64 = 1 << 20;

fn limits() -> Limits {
    Limits {
        max_duration: Duration::from_secs(3600),
        max_rss_bytes: 100 * MIB,
        idle_timeout: Duration::from_secs(600),
        turn_grace: Duration::from_secs(30),
        stall_timeout: Duration::from_secs(1800),
        check_every: Duration::from_secs(1),
        ..Limits::default()
    }
}

fn text(t: &str) -> String {
    format!(
        r#"{{"type":"stream_event","event":{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{t}"}}}},"parent_tool_use_id":null}}"#
    )
}

const DONE: &str = r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.01,"duration_ms":5}"#;
const ABORTED: &str =
    r#"{"type":"result","subtype":"error_during_execution","is_error":true,"total_cost_usd":0.01}"#;

/// How a session ends at the duration limit: for good, and says why.
const ENDED_FOR_DURATION: [&str; 2] = ["error duration_limit", "session ended duration_limit"];
const DURATION_LIMIT: Outcome = Outcome::Ended(StatusReason::DurationLimit);

/// One session's actor and everything around it.
struct Session {
    id: SessionId,
    handle: Handle,
    actor: tokio::task::JoinHandle<Outcome>,
    spawner: Arc<FakeSpawner>,
    agents: mpsc::UnboundedReceiver<FakeAgent>,
    events: EventStream,
    store: Arc<MemoryStore>,
    drain: CancellationToken,
}

/// How a test session starts.
enum Begin {
    /// A pre-warmed process; a browser attached (no idle timeout).
    Attended,
    /// A pre-warmed process; nobody attached.
    Unattended,
    /// No process yet: the actor spawns one.
    Cold,
}

impl Session {
    async fn start(begin: Begin) -> Self {
        let store = Arc::new(MemoryStore::default());
        let user = UserId::new();
        let id = SessionId::new();
        store
            .create_session(NewSession {
                session_id: id,
                user_id: user,
                status: SessionStatus::Preparing.store_text().into(),
                tenant_id: None,
            })
            .await
            .unwrap();
        let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        if !matches!(begin, Begin::Unattended) {
            let day = Duration::from_secs(24 * 3600);
            cache.add_presence(id, "browser", day).await.unwrap();
        }
        let bus = Arc::new(InProcessBus::new(Default::default()).unwrap());
        let events = bus.subscribe(id, 0).await.unwrap();
        let (spawner, agents) = FakeSpawner::new();
        let ctx = Arc::new(Context {
            spawner: spawner.clone(),
            store: store.clone(),
            bus,
            cache: cache.clone(),
            breaker: Arc::new(csp_breaker::Breaker::new(Default::default(), cache)),
            governor: Arc::new(Unlimited(AllowList::new(["Bash"]))),
            bindings: Bindings::default(),
            audit: Arc::new(InProcessQueue::new()),
            usage: Arc::new(Usage::default()),
            model_key: Arc::new(ModelKey::new(None)),
            limits: limits(),
            known_secrets: Default::default(),
            model_label: "test model".into(),
        });
        let drain = CancellationToken::new();
        let stop = Stop {
            drain: drain.clone(),
            kill: CancellationToken::new(),
        };
        let (actor, handle, rx) = Actor::new(ctx, id, user, stop, None);
        let start = match begin {
            Begin::Attended | Begin::Unattended => Start::Warm(spawner.started(process::Request {
                session: id,
                agent_session: id.0,
                reason: Reason::Prewarm,
            })),
            Begin::Cold => Start::Cold,
        };
        let actor = tokio::spawn(actor.run(start, rx));
        Self {
            id,
            handle,
            actor,
            spawner,
            agents,
            events,
            store,
            drain,
        }
    }

    /// A session whose warm process is ready, and that process.
    async fn ready(begin: Begin) -> (Self, FakeAgent) {
        let mut s = Self::start(begin).await;
        let agent = s.agent().await;
        assert_eq!(s.events(1).await, ["session ready"]);
        (s, agent)
    }

    /// An attended session with a turn in flight (`text` went to the agent).
    async fn in_turn(text: &str) -> (Self, FakeAgent) {
        let (s, mut agent) = Self::ready(Begin::Attended).await;
        assert_eq!(s.send(text).await, Ok(false), "starts at once");
        assert_eq!(agent.call().await, Call::SendUser(text.into()));
        (s, agent)
    }

    /// The next process the actor got.
    async fn agent(&mut self) -> FakeAgent {
        self.agents.recv().await.expect("a spawned process")
    }

    /// The next event published, checked to be numbered in order.
    async fn event(&mut self) -> Event {
        let next = tokio::time::timeout(Duration::from_secs(5), self.events.next());
        let ev = next
            .await
            .expect("an event")
            .expect("open")
            .expect("no gap");
        assert_eq!(ev.session_id, self.id);
        ev.event
    }

    /// The next `n` events, each named by [`name`].
    async fn events(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(name(&self.event().await));
        }
        out
    }

    /// Fails if an event is published before the clock moves on by `d`.
    async fn quiet_for(&mut self, d: Duration) {
        if let Ok(Some(ev)) = tokio::time::timeout(d, self.events.next()).await {
            panic!("unexpected event {ev:?}");
        }
    }

    async fn send(&self, text: &str) -> Result<bool, ErrorCode> {
        self.handle.send(text.into(), None, None).await
    }

    async fn record(&self) -> SessionRecord {
        self.store.session(self.id).await.unwrap().unwrap()
    }

    /// The last events are `last`, the process is shut down, and the
    /// session ends with `outcome`.
    async fn ends_with(mut self, agent: &mut FakeAgent, last: &[&str], outcome: Outcome) {
        assert_eq!(self.events(last.len()).await, last);
        assert_eq!(agent.call().await, Call::Shutdown);
        self.ended(outcome).await;
    }

    /// Waits for the actor to end with `outcome`, and checks that the store
    /// says so: status, whether it is resumable, and the typed reason.
    async fn ended(self, outcome: Outcome) {
        let ended = tokio::time::timeout(Duration::from_secs(60), self.actor)
            .await
            .expect("the actor ends")
            .unwrap();
        assert_eq!(ended, outcome);
        let record = self.store.session(self.id).await.unwrap().unwrap();
        let (status, resumable) = outcome.status();
        assert_eq!(record.status, status.store_text());
        assert_eq!(record.is_resumable, resumable);
        let reason = record.ended_reason.as_deref().map(str::parse);
        assert_eq!(reason, Some(Ok(outcome.reason())));
    }
}

/// An event in a line: its kind and what tells it apart.
fn name(ev: &Event) -> String {
    match ev {
        Event::Session { status, reason, .. } => match reason {
            Some(r) => format!("session {} {}", status.as_str(), r.as_str()),
            None => format!("session {}", status.as_str()),
        },
        Event::UserMessage { text, .. } => format!("user {text}"),
        Event::Delta { text } => format!("delta {text}"),
        Event::Result {
            is_error,
            interrupted,
            ..
        } => format!("result error={is_error} interrupted={interrupted}"),
        Event::Error { code, .. } => format!("error {}", code.as_str()),
        Event::Notice { code, .. } => format!("notice {}", code.as_str()),
        other => format!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_message_sent_during_a_turn_is_queued_and_runs_after_it() {
    let (mut s, mut agent) = Session::in_turn("first").await;
    assert_eq!(s.send("second").await, Ok(true), "queued");
    assert_eq!(s.events(1).await, ["user first"]);
    assert_eq!(agent.calls_so_far(), [], "nothing said to the agent yet");

    agent.say(&text("one"));
    agent.say(DONE);
    assert_eq!(
        s.events(3).await,
        [
            "delta one",
            "result error=false interrupted=false",
            "user second"
        ]
    );
    assert_eq!(agent.call().await, Call::SendUser("second".into()));
    agent.say(DONE);
    assert_eq!(s.events(1).await, ["result error=false interrupted=false"]);
    assert_eq!(s.record().await.title.as_deref(), Some("first"));
}

#[tokio::test(start_paused = true)]
async fn interrupt_stops_the_turn_in_flight_only() {
    let (mut s, mut agent) = Session::ready(Begin::Attended).await;
    assert_eq!(s.handle.interrupt().await, Ok(false), "no turn to stop");

    assert_eq!(s.send("long task").await, Ok(false));
    assert_eq!(agent.call().await, Call::SendUser("long task".into()));
    assert_eq!(s.handle.interrupt().await, Ok(true));
    assert_eq!(agent.call().await, Call::Interrupt);
    // The CLI ends an interrupted turn with this result.
    agent.say(ABORTED);
    assert_eq!(
        s.events(2).await,
        ["user long task", "result error=true interrupted=true"],
        "an interrupt is not reported as an error"
    );
    assert_eq!(s.handle.interrupt().await, Ok(false), "the turn is over");
    assert_eq!(agent.calls_so_far(), []);
}

#[tokio::test(start_paused = true)]
async fn over_the_memory_limit_the_process_is_replaced_after_the_turn() {
    let (mut s, mut agent) = Session::in_turn("hello").await;
    agent.set_rss(200 * MIB);
    // Checks during the turn leave it alone.
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(s.events(1).await, ["user hello"]);
    s.quiet_for(Duration::from_millis(10)).await;
    assert_eq!(agent.calls_so_far(), []);

    agent.say(DONE);
    assert_eq!(
        s.events(5).await,
        [
            "result error=false interrupted=false",
            "notice session_restarting",
            "session preparing restart",
            "session ready",
            "notice session_restarted",
        ]
    );
    assert_eq!(agent.call().await, Call::Shutdown);
    let next = s.agent().await;
    assert_eq!(
        next.request.reason,
        Reason::Resume,
        "the conversation goes on"
    );
    assert_eq!(next.request.agent_session, agent.request.agent_session);
    assert_eq!(s.record().await.status, SessionStatus::Ready.store_text());
}

#[tokio::test(start_paused = true)]
async fn nobody_attached_for_the_idle_timeout_suspends_the_session() {
    let (mut s, mut agent) = Session::ready(Begin::Unattended).await;
    tokio::time::advance(Duration::from_secs(598)).await;
    s.quiet_for(Duration::from_millis(10)).await;
    assert_eq!(agent.calls_so_far(), [], "not before the timeout");

    tokio::time::advance(Duration::from_secs(3)).await;
    let idle = Outcome::Idle(StatusReason::IdleTimeout);
    s.ends_with(&mut agent, &["session idle idle_timeout"], idle)
        .await;
}

#[tokio::test(start_paused = true)]
async fn the_duration_limit_ends_the_session_for_good() {
    let (mut s, mut agent) = Session::ready(Begin::Attended).await;
    // 90 % of the hour: the warning, with the minutes left.
    tokio::time::advance(Duration::from_secs(3240)).await;
    match s.event().await {
        Event::Notice {
            code: ErrorCode::SessionExpiring,
            minutes_left,
            ..
        } => assert_eq!(minutes_left, Some(6)),
        other => panic!("expected the expiry warning, got {other:?}"),
    }
    tokio::time::advance(Duration::from_secs(360)).await;
    s.ends_with(&mut agent, &ENDED_FOR_DURATION, DURATION_LIMIT)
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_turn_at_the_duration_limit_gets_its_grace_then_is_stopped() {
    let (mut s, mut agent) = Session::ready(Begin::Attended).await;
    tokio::time::advance(Duration::from_secs(3500)).await;
    assert_eq!(s.events(1).await, ["notice session_expiring"]);
    s.send("one more").await.unwrap();
    assert_eq!(agent.call().await, Call::SendUser("one more".into()));
    assert_eq!(s.events(1).await, ["user one more"]);

    tokio::time::advance(Duration::from_secs(110)).await;
    s.quiet_for(Duration::from_millis(10)).await;
    assert_eq!(agent.calls_so_far(), [], "within the grace");
    assert_eq!(
        s.send("too late").await,
        Err(ErrorCode::DurationLimit),
        "no new message after the limit"
    );

    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(agent.call().await, Call::Interrupt, "the turn is stopped");
    s.ends_with(&mut agent, &ENDED_FOR_DURATION, DURATION_LIMIT)
        .await;
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_dies_fails_the_session_resumably() {
    let (mut s, mut agent) = Session::in_turn("hello").await;
    agent.say(&text("Hel"));
    agent.exit(Some(1));
    assert_eq!(
        s.events(4).await,
        [
            "user hello",
            "delta Hel",
            "error agent_crashed",
            "session failed crashed"
        ]
    );
    assert_eq!(agent.call().await, Call::Shutdown);
    let (messages, _) = s.store.messages(s.id).await.unwrap();
    let kinds: Vec<_> = messages.iter().map(|m| (m.seq, m.kind.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (2, "user_message"),
            (3, "assistant"),
            (4, "error"),
            (5, "session")
        ],
        "the text streamed before the crash is kept"
    );
    s.ended(Outcome::Failed(StatusReason::Crashed)).await;
}

#[tokio::test(start_paused = true)]
async fn messages_sent_while_the_process_starts_wait_for_it() {
    let mut s = Session::start(Begin::Cold).await;
    let release = s.spawner.hold_next();
    assert_eq!(s.events(1).await, ["session preparing"]);
    assert_eq!(s.send("hi").await, Ok(true), "queued");
    assert_eq!(s.send("  ").await, Err(ErrorCode::EmptyMessage));
    assert_eq!(s.handle.interrupt().await, Ok(false));
    release.send(()).unwrap();
    let mut agent = s.agent().await;
    assert_eq!(agent.request.reason, Reason::Cold);
    assert_eq!(agent.call().await, Call::SendUser("hi".into()));
    assert_eq!(s.events(2).await, ["session ready", "user hi"]);
}

#[tokio::test(start_paused = true)]
async fn a_process_that_cannot_start_fails_the_session() {
    let mut s = Session::start(Begin::Cold).await;
    s.spawner.fail_next("no cli");
    assert_eq!(s.events(1).await, ["session preparing"]);
    assert_eq!(
        s.events(2).await,
        ["error agent_start_failed", "session failed start_failed"]
    );
    s.ended(Outcome::Failed(StatusReason::StartFailed)).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_the_turn_in_flight_finish_then_suspends() {
    let (s, mut agent) = Session::in_turn("hello").await;
    s.drain.cancel();
    // Let the actor see the signal before the next command reaches it.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(s.send("more").await, Err(ErrorCode::ServerShuttingDown));
    assert_eq!(agent.calls_so_far(), [], "the turn goes on");

    agent.say(DONE);
    let last = [
        "user hello",
        "result error=false interrupted=false",
        "session idle shutdown",
    ];
    let idle = Outcome::Idle(StatusReason::Shutdown);
    s.ends_with(&mut agent, &last, idle).await;
}
