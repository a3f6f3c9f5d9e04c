//! The session-pool over real gRPC with the real Claude Code CLI, the
//! scripted model server and the embedded backends.

use csp_bus::{EventBus, InProcessBus};
use csp_cache::MemoryCache;
use csp_domain::{ErrorCode, Event, SessionId, SessionStatus, UserId};
use csp_mock_llm::MockLlm;
use csp_proto::v1 as pb;
use csp_proto::v1::session_pool_client::SessionPoolClient;
use csp_session_pool::{Config, Server};
use csp_store::{NewUser, SqliteStore, UserStore};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

mod capacity;
mod output;
mod plugins;

/// The JWT secret of the test servers; requests carry user tokens signed
/// with it. The pools know it as a secret to redact (see `output`).
const JWT_SECRET: &str = "session-pool-test-secret-0123456789abcdef";
static TOKENS: std::sync::LazyLock<csp_auth::Tokens> = std::sync::LazyLock::new(|| {
    csp_auth::Tokens::new(
        &secrecy::SecretString::from(JWT_SECRET.to_owned()),
        Duration::from_secs(600),
    )
    .unwrap()
});
static SERVICE: std::sync::LazyLock<csp_rpc::ServiceToken> =
    std::sync::LazyLock::new(|| csp_rpc::ServiceToken::new(TOKENS.clone(), "gateway"));

/// `msg` as a call by user `u` (role user).
fn req<T>(u: UserId, msg: T) -> tonic::Request<T> {
    let (token, _) = TOKENS.issue(u, "u", csp_domain::Role::User).unwrap();
    csp_rpc::bearer(msg, &token)
}

struct Pool {
    client: SessionPoolClient<Channel>,
    bus: Arc<InProcessBus>,
    store: Arc<SqliteStore>,
    /// Where the gateway would record presence and detaches.
    cache: Arc<MemoryCache>,
    stop: CancellationToken,
    _mock: MockLlm,
    /// The data directory.
    dir: tempfile::TempDir,
}

async fn start(prewarm: usize, max_sessions: usize) -> Pool {
    start_with(
        prewarm,
        max_sessions,
        csp_mock_llm::Rules::default(),
        &["Bash"],
        None,
    )
    .await
}

/// A pool whose model answers by `rules`, whose gate allows `tools`, and
/// whose agents run the plugins of the plugins service at `plugins_addr`.
async fn start_with(
    prewarm: usize,
    max_sessions: usize,
    rules: csp_mock_llm::Rules,
    tools: &[&str],
    plugins_addr: Option<String>,
) -> Pool {
    start_full(Setup {
        prewarm,
        max_sessions,
        // No per-user limit unless a test is about it (`capacity.rs`).
        max_sessions_per_user: usize::MAX,
        rules,
        tools,
        plugins_addr,
    })
    .await
}

/// Everything a test pool can be started with.
struct Setup<'a> {
    prewarm: usize,
    max_sessions: usize,
    max_sessions_per_user: usize,
    rules: csp_mock_llm::Rules,
    tools: &'a [&'a str],
    plugins_addr: Option<String>,
}

async fn start_full(setup: Setup<'_>) -> Pool {
    let Setup {
        prewarm,
        max_sessions,
        max_sessions_per_user,
        rules,
        tools,
        plugins_addr,
    } = setup;
    let mock = MockLlm::start(csp_mock_llm::Options {
        rules,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(InProcessBus::new(Default::default()).unwrap());
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let cache = Arc::new(MemoryCache::new());
    let agent = csp_agent::Config {
        env: vec![
            ("ANTHROPIC_BASE_URL".into(), mock.base_url()),
            ("ANTHROPIC_API_KEY".into(), "test".into()),
        ],
        max_retries: 0,
        ..Default::default()
    };
    let server = Server::build(
        Config {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            advertise_addr: None,
            prewarm_pool_size: prewarm,
            max_sessions,
            max_sessions_per_user,
            data_dir: dir.path().to_owned(),
            agent,
            governor: Arc::new(csp_session_pool::Unlimited(csp_agent::AllowList::new(
                tools.iter().copied(),
            ))),
            audit: Arc::new(csp_bus::InProcessQueue::new()),
            tokens: TOKENS.clone(),
            model_label: "test model".into(),
            shutdown_grace: Duration::from_secs(5),
            limits: Default::default(),
            breaker: Default::default(),
            reaper_interval: Duration::from_secs(60),
            plugins_addr,
            tickets_addr: None,
            known_secrets: csp_redact::KnownSecrets::new([JWT_SECRET]),
        },
        bus.clone(),
        store.clone(),
        cache.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(server.run(stop.clone()));
    let client = SessionPoolClient::new(csp_rpc::channel(&format!("http://{addr}")).unwrap());
    Pool {
        client,
        bus,
        store,
        cache,
        stop,
        _mock: mock,
        dir,
    }
}

async fn user(store: &SqliteStore, name: &str) -> UserId {
    store
        .create_user(NewUser {
            username: name.into(),
            password_hash: "x".into(),
            role: csp_domain::Role::User,
            monthly_cost_cap_micros: None,
        })
        .await
        .unwrap()
        .user_id
}

/// Sends `text` into session `id` as `u`.
async fn send(p: &mut Pool, u: UserId, id: SessionId, text: &str) {
    p.client
        .send(req(
            u,
            pb::SendRequest {
                session_id: id.to_string(),
                user_id: u.to_string(),
                text: text.into(),
                client_id: String::new(),
            },
        ))
        .await
        .unwrap();
}

/// Sends `text` as `u` and returns every event of the turn it starts, up to
/// and including its `result` (or the `error` that ends it instead).
async fn turn(p: &mut Pool, u: UserId, id: SessionId, text: &str) -> Vec<csp_domain::SessionEvent> {
    let after = p.bus.last_seq(id).await.unwrap();
    let mut events = p.bus.subscribe(id, after).await.unwrap();
    send(p, u, id, text).await;
    let mut seen = Vec::new();
    let collect = async {
        while let Some(ev) = events.next().await {
            let ev = ev.unwrap();
            let done = matches!(ev.event, Event::Result { .. } | Event::Error { .. });
            seen.push(ev);
            if done {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), collect)
        .await
        .expect("the turn ends");
    seen
}

async fn status(client: &mut SessionPoolClient<Channel>) -> pb::StatusResponse {
    client
        .status(SERVICE.request(pb::StatusRequest {}))
        .await
        .unwrap()
        .into_inner()
}

/// Polls until `f` holds for the pool status (bounded; the refill is one
/// CLI spawn of about half a second).
async fn wait_for(
    client: &mut SessionPoolClient<Channel>,
    f: impl Fn(&pb::StatusResponse) -> bool,
) {
    for _ in 0..600 {
        if f(&status(client).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "pool never reached the state; last: {:?}",
        status(client).await
    );
}

async fn acquire(
    client: &mut SessionPoolClient<Channel>,
    u: UserId,
) -> Result<pb::AcquireResponse, tonic::Status> {
    client
        .acquire(req(
            u,
            pb::AcquireRequest {
                user_id: u.to_string(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_slot_is_refilled_after_acquire_and_capacity_is_enforced() {
    let mut p = start(1, 2).await;
    let ada = user(&p.store, "ada").await;
    wait_for(&mut p.client, |s| s.started && s.pool_depth == 1).await;

    let first = acquire(&mut p.client, ada).await.unwrap();
    assert!(first.warm);
    assert_eq!(first.status, pb::SessionStatus::Ready as i32);
    // The slot refills in the background; the active session is untouched.
    wait_for(&mut p.client, |s| {
        s.pool_depth == 1 && s.active_sessions == 1
    })
    .await;

    // Warm + active never exceed MAX_SESSIONS: the second session takes the
    // warm slot and nothing refills it.
    let second = acquire(&mut p.client, ada).await.unwrap();
    assert!(second.warm);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = status(&mut p.client).await;
    assert_eq!((s.active_sessions, s.pool_depth, s.max_sessions), (2, 0, 2));

    let err = acquire(&mut p.client, ada).await.unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::AtCapacity);
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn cold_start_publishes_preparing_then_ready_and_sessions_are_private() {
    let mut p = start(0, 2).await;
    let ada = user(&p.store, "ada").await;
    let eve = user(&p.store, "eve").await;
    let got = acquire(&mut p.client, ada).await.unwrap();
    assert!(!got.warm);
    let id: SessionId = got.session_id.parse().unwrap();
    let mut events = p.bus.subscribe(id, 0).await.unwrap();
    let statuses: Vec<SessionStatus> = (&mut events)
        .take(2)
        .map(|e| match e.unwrap().event {
            Event::Session { status, .. } => status,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
        .await;
    assert_eq!(
        statuses,
        vec![SessionStatus::Preparing, SessionStatus::Ready]
    );

    // Another user can neither send to it nor read it, and learns nothing.
    let err = p
        .client
        .send(req(
            eve,
            pb::SendRequest {
                session_id: id.to_string(),
                user_id: eve.to_string(),
                text: "hi".into(),
                client_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::SessionNotFound);
    // Naming the owner's id with her own token gets her nowhere either.
    let as_ada = pb::ListMessagesRequest {
        session_id: id.to_string(),
        user_id: ada.to_string(),
    };
    let err = p
        .client
        .list_messages(req(eve, as_ada.clone()))
        .await
        .unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::SessionNotFound);
    // And without a token nobody gets anything.
    let err = p.client.list_messages(as_ada).await.unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::Unauthenticated);
    let err = p
        .client
        .list_messages(req(
            eve,
            pb::ListMessagesRequest {
                session_id: id.to_string(),
                user_id: eve.to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::SessionNotFound);

    // The owner's empty message is refused; a real one is answered.
    let err = p
        .client
        .send(req(
            ada,
            pb::SendRequest {
                session_id: id.to_string(),
                user_id: ada.to_string(),
                text: "  ".into(),
                client_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::EmptyMessage);
    p.client
        .send(req(
            ada,
            pb::SendRequest {
                session_id: id.to_string(),
                user_id: ada.to_string(),
                text: "MOCK{\"type\":\"text\",\"text\":\"pong\"}MOCK".into(),
                client_id: "k".into(),
            },
        ))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(ev) = events.next().await {
        match ev.unwrap().event {
            Event::Delta { text: t } => text.push_str(&t),
            Event::Result { is_error, .. } => {
                assert!(!is_error);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(text, "pong");
    let list = p
        .client
        .list_sessions(req(
            ada,
            pb::ListSessionsRequest {
                user_id: ada.to_string(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.sessions.len(), 1);
    assert_eq!(
        list.sessions[0].title,
        "MOCK{\"type\":\"text\",\"text\":\"pong\"}MOCK"
    );
    p.stop.cancel();
}

#[tokio::test]
async fn invalid_sizes_are_refused_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |prewarm, max| Config {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        advertise_addr: None,
        prewarm_pool_size: prewarm,
        max_sessions: max,
        max_sessions_per_user: 3,
        data_dir: dir.path().to_owned(),
        agent: csp_agent::Config::default(),
        governor: Arc::new(csp_session_pool::Unlimited(csp_agent::AllowList::new([
            "Bash",
        ]))),
        audit: Arc::new(csp_bus::InProcessQueue::new()),
        tokens: TOKENS.clone(),
        model_label: String::new(),
        shutdown_grace: Duration::from_secs(1),
        limits: Default::default(),
        breaker: Default::default(),
        reaper_interval: Duration::from_secs(60),
        plugins_addr: None,
        tickets_addr: None,
        known_secrets: Default::default(),
    };
    let backends = || {
        (
            Arc::new(InProcessBus::new(Default::default()).unwrap()) as Arc<dyn EventBus>,
            Arc::new(MemoryCache::new()) as Arc<dyn csp_cache::Cache>,
        )
    };
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let (bus, cache) = backends();
    let err = Server::build(cfg(3, 2), bus, store.clone(), cache)
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("PREWARM_POOL_SIZE (3) cannot exceed MAX_SESSIONS (2)"),
        "{err}"
    );
    let (bus, cache) = backends();
    let err = Server::build(cfg(0, 0), bus, store, cache)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("MAX_SESSIONS"), "{err}");
}
