//! The session-pool service: owns Claude Code agent processes.
//!
//! Owns: the pre-warmed pool, binding sessions to users, turns (send,
//! queue, interrupt), translating agent output into numbered session events,
//! publishing them to the event bus and persisting the conversation. Must
//! never talk to a browser (that is the gateway's job) and never let an agent
//! process outlive its session: each runs in its own process group and is
//! ended with it. Every agent process starts with the MCP servers of the
//! active plugins (see `plugins`), and never with the model API key in their
//! reach.
//!
//! Who owns what, and who may import whom (every arrow points one way; no
//! two modules import each other):
//!
//! - `service` (gRPC) → `pool` → `session` → `context`, `process`.
//! - `pool` owns the warm slots and the table of live sessions: it starts
//!   each session's actor, makes room, drains, and hears how each actor
//!   ended. It builds the [`context::Context`] every actor shares and the
//!   production spawner (`spawner`).
//! - `session` is one actor per session: its seq, queue, turn and process.
//!   It knows the pool not at all, only its `Context` (store, bus, cache,
//!   breaker, governor, gates, audit queue, usage, limits) and a
//!   `process::Spawner`, which is why its state machine is unit-tested
//!   with a fake spawner and no CLI.
//! - `process` is the seam to agent processes (traits only, importing no
//!   module of the crate); `spawner` implements it with `csp-agent`, the
//!   sandbox, `egress` and the permission `gate`.
//! - `tool_door` answers the built-in ticket tools' MCP server (inside the
//!   sandbox) for the session its token names, through the `gate`'s
//!   bindings, the `governor` and the tickets service.
//! - Pure pieces under them: `lifecycle`, `translate`, `output`; leaves:
//!   `governor`, `gate`, `metrics`, `model_check`, `plugins`, `error`.

mod context;
mod egress;
mod error;
mod gate;
pub mod governor;
mod lifecycle;
mod metrics;
mod model_check;
mod output;
mod plugins;
mod pool;
mod process;
mod service;
mod session;
mod spawner;
mod tool_door;
mod translate;

pub use error::Error;
pub use governor::{Governor, PolicyGovernor, Unlimited};
pub use lifecycle::Limits;
pub use output::{
    DEFAULT_TOOL_OUTPUT_MAX_BYTES, MAX_TOOL_OUTPUT_MAX_BYTES, MIN_TOOL_OUTPUT_MAX_BYTES,
};
pub use service::access;

use csp_bus::{EventBus, Queue};
use csp_cache::Cache;
use csp_proto::v1::session_pool_server::SessionPoolServer;
use csp_store::SessionStore;
use pool::{Pool, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the service runs.
pub struct Config {
    pub grpc_addr: SocketAddr,
    /// How gateways reach this replica (`http://host:port`), recorded as the
    /// route of every session it owns. Defaults to the bound address.
    pub advertise_addr: Option<String>,
    /// `PREWARM_POOL_SIZE`: ready processes kept waiting.
    pub prewarm_pool_size: usize,
    /// `MAX_SESSIONS`: sessions (plus warm processes) this replica runs at most.
    pub max_sessions: usize,
    /// `MAX_SESSIONS_PER_USER`: live sessions one user holds here at most;
    /// past it their least recently detached idle one yields.
    pub max_sessions_per_user: usize,
    /// Working and config directories of every session live below this.
    pub data_dir: PathBuf,
    pub agent: csp_agent::Config,
    /// Decides every tool call and admits every turn (the policy service).
    pub governor: Arc<dyn Governor>,
    /// Where audit events of tool invocations go (the policy service reads them).
    pub audit: Arc<dyn Queue>,
    /// Verifies the callers of the gRPC API.
    pub tokens: csp_auth::Tokens,
    /// Shown to users, e.g. "offline demo model".
    pub model_label: String,
    /// `SHUTDOWN_GRACE_SECONDS`: how long shutdown lets turns in flight finish.
    pub shutdown_grace: Duration,
    /// Per-session duration, memory, idle and stall limits.
    pub limits: Limits,
    /// The model API circuit breaker, shared through the cache.
    pub breaker: csp_breaker::Config,
    /// How often zombie processes are looked for (US-004: 60 s).
    pub reaper_interval: Duration,
    /// The plugins service (`http://host:port`) whose active MCP servers
    /// every new agent process runs. `None`: no plugins, no waiting for them.
    pub plugins_addr: Option<String>,
    /// The tickets service (`http://host:port`) that answers the built-in
    /// ticket tools of chat agents. `None`: those tools say there is none.
    pub tickets_addr: Option<String>,
    /// Issue 12 (bounded, redacted output): the platform's own secrets
    /// (JWT secret, model key, database password…), replaced by
    /// `[REDACTED]` in every event before it is stored or published.
    pub known_secrets: csp_redact::KnownSecrets,
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        if self.max_sessions == 0 {
            return Err(Error::Config("MAX_SESSIONS must be at least 1".into()));
        }
        if self.max_sessions_per_user == 0 {
            return Err(Error::Config(
                "MAX_SESSIONS_PER_USER must be at least 1".into(),
            ));
        }
        let output = self.limits.tool_output_max_bytes;
        if !(MIN_TOOL_OUTPUT_MAX_BYTES..=MAX_TOOL_OUTPUT_MAX_BYTES).contains(&output) {
            return Err(Error::Config(format!(
                "CSP_TOOL_OUTPUT_MAX_BYTES must be between {MIN_TOOL_OUTPUT_MAX_BYTES} and {MAX_TOOL_OUTPUT_MAX_BYTES} (one event must fit a NATS message), got {output}"
            )));
        }
        if self.prewarm_pool_size > self.max_sessions {
            return Err(Error::Config(format!(
                "PREWARM_POOL_SIZE ({}) cannot exceed MAX_SESSIONS ({})",
                self.prewarm_pool_size, self.max_sessions
            )));
        }
        Ok(())
    }
}

/// What the pool looks like now, for probes and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub active_sessions: usize,
    pub pool_depth: usize,
    pub max_sessions: usize,
    /// Milliseconds until the first warm slot was filled; `None` while starting.
    pub started_after_ms: Option<u64>,
    /// Why a new user cannot be served now; `None` when ready.
    pub not_ready: Option<&'static str>,
    pub circuit_breaker: csp_breaker::State,
    /// Whether agents run sandboxed (`CSP_AGENT_SANDBOX` is not `off`).
    pub agent_sandbox: bool,
}

const SERVICE_NAME: &str =
    <SessionPoolServer<service::Service> as tonic::server::NamedService>::NAME;

/// How long the dependency checks of the readiness probe may take. They run
/// together and stay well under the gateway's 2 s deadline for the whole
/// status call, so that a hanging database is reported as
/// `database_unavailable` rather than as an unreachable session-pool.
const PING_TIMEOUT: Duration = Duration::from_millis(1200);

async fn reachable<E>(f: impl std::future::Future<Output = Result<(), E>>) -> bool {
    matches!(tokio::time::timeout(PING_TIMEOUT, f).await, Ok(Ok(())))
}

impl pool::Pool {
    /// The readiness verdict: the first thing that stops a new user from
    /// being served, in the order an operator should fix them.
    pub(crate) async fn status(&self) -> PoolStatus {
        let active_sessions = self.active().await;
        let pool_depth = self.depth().await;
        let max_sessions = self.max_sessions();
        let (store_ok, bus_ok, cache_ok) = tokio::join!(
            reachable(self.store.ping()),
            reachable(self.bus.ping()),
            reachable(self.cache.ping()),
        );
        let not_ready = if self.draining() {
            Some("shutting_down")
        } else if !store_ok {
            Some("database_unavailable")
        } else if !bus_ok {
            Some("bus_unavailable")
        } else if !cache_ok {
            Some("cache_unavailable")
        } else if self.key_rejected() {
            Some("model_api_key_rejected")
        } else if pool_depth == 0
            && active_sessions >= max_sessions
            && !self.could_make_room().await
        {
            Some("pool_empty")
        } else {
            None
        };
        PoolStatus {
            active_sessions,
            pool_depth,
            max_sessions,
            started_after_ms: self.started_after_ms(),
            not_ready,
            circuit_breaker: self.breaker.state().await,
            agent_sandbox: self.egress().sandboxed(),
        }
    }
}

/// A bound session-pool, ready to run.
pub struct Server {
    listener: csp_rpc::Listener,
    pool: Arc<Pool>,
    tokens: csp_auth::Tokens,
    grace: Duration,
    reaper_interval: Duration,
    /// The plugins service to follow, when there is one.
    plugins: Option<tonic::transport::Channel>,
    /// Where the built-in ticket tools' calls go.
    tool_door: tool_door::ToolDoor,
    /// Cancelled by `run` once every agent process is gone.
    drained: CancellationToken,
}

/// A cheap handle to observe a running pool.
#[derive(Clone)]
pub struct Monitor {
    pool: Arc<Pool>,
}

impl Monitor {
    pub async fn status(&self) -> PoolStatus {
        self.pool.status().await
    }
}

/// The HTTP probes of `csp serve session-pool` (same bodies as the gateway's).
#[async_trait::async_trait]
impl csp_telemetry::Probes for Monitor {
    async fn ready(&self) -> csp_telemetry::Probe {
        let s = self.status().await;
        match s.not_ready {
            None => csp_telemetry::Probe::ok(serde_json::json!({
                "status": "ready",
                "active_sessions": s.active_sessions,
                "max_sessions": s.max_sessions,
                "pool_depth": s.pool_depth,
                "circuit_breaker_state": s.circuit_breaker.as_str(),
                "agent_sandbox": sandbox_label(s.agent_sandbox),
            })),
            Some(reason) => csp_telemetry::Probe::unavailable(serde_json::json!({
                "status": "not_ready",
                "reason": reason,
                "active_sessions": s.active_sessions,
                "max_sessions": s.max_sessions,
                "agent_sandbox": sandbox_label(s.agent_sandbox),
            })),
        }
    }

    async fn startup(&self) -> csp_telemetry::Probe {
        match self.pool.started_after_ms() {
            Some(ms) => csp_telemetry::Probe::ok(serde_json::json!({
                "status": "started",
                "startup_duration_ms": ms,
            })),
            None => csp_telemetry::Probe::unavailable(serde_json::json!({
                "status": "starting",
                "reason": "pool_filling",
            })),
        }
    }
}

/// How readiness bodies name the agent sandbox.
pub fn sandbox_label(sandboxed: bool) -> &'static str {
    if sandboxed { "bubblewrap" } else { "off" }
}

impl Server {
    /// Validates the config, prepares the data directory and binds the port.
    pub async fn build(
        mut config: Config,
        bus: Arc<dyn EventBus>,
        store: Arc<dyn SessionStore>,
        cache: Arc<dyn Cache>,
    ) -> Result<Self, Error> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        // Agent processes are spawned with relative paths resolved from here.
        let data_dir =
            std::fs::canonicalize(&config.data_dir).map_err(|source| Error::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
        if !config.agent.cli_path.is_file() {
            return Err(Error::MissingDependency(
                csp_agent::Error::CliNotFound {
                    path: config.agent.cli_path.clone(),
                }
                .to_string(),
            ));
        }
        // Sessions' transcripts and the proxies' sockets: csp's alone.
        egress::restrict(&data_dir)?;
        egress::check_sandbox(&config.agent.sandbox).await?;
        let (egress, model_env) = egress::Egress::bind(&mut config.agent, &data_dir).await?;
        let plugins = config
            .plugins_addr
            .as_deref()
            .map(csp_rpc::channel)
            .transpose()?;
        // Without a plugins service the set is known at once: empty.
        let plugin_sets = tokio::sync::watch::Sender::new(
            plugins
                .is_none()
                .then(|| Arc::new(plugins::PluginSet::empty())),
        );
        metrics::describe();
        let listener = csp_rpc::Listener::bind(config.grpc_addr).await?;
        let advertise_addr = config
            .advertise_addr
            .clone()
            .unwrap_or_else(|| format!("http://{}", listener.local_addr()));
        let settings = Settings {
            prewarm_pool_size: config.prewarm_pool_size,
            max_sessions: config.max_sessions,
            max_sessions_per_user: config.max_sessions_per_user,
            data_dir,
            agent: config.agent,
            egress: Arc::new(egress),
            model_env,
            governor: config.governor,
            audit: config.audit,
            model_label: config.model_label,
            advertise_addr,
            limits: config.limits,
            plugins: plugin_sets,
            known_secrets: config.known_secrets,
        };
        let breaker = Arc::new(csp_breaker::Breaker::new(config.breaker, cache.clone()));
        let pool = Pool::new(
            settings,
            bus,
            store,
            cache,
            breaker,
            CancellationToken::new(),
        );
        let tickets = config
            .tickets_addr
            .as_deref()
            .map(csp_rpc::channel)
            .transpose()?
            .map(|channel| {
                (
                    channel,
                    csp_rpc::ServiceToken::new(config.tokens.clone(), "session-pool"),
                )
            });
        let tool_door = tool_door::ToolDoor::new(
            pool.egress().tool_leases(),
            pool.bindings(),
            pool.governor().clone(),
            tickets,
        );
        let weak = Arc::downgrade(&pool);
        csp_telemetry::add_collector(move |out| {
            if let Some(pool) = weak.upgrade() {
                pool.usage().render_rss(out);
                pool.usage().render_cost(out);
            }
        });
        Ok(Self {
            listener,
            pool,
            tokens: config.tokens,
            grace: config.shutdown_grace,
            reaper_interval: config.reaper_interval,
            plugins,
            tool_door,
            drained: CancellationToken::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Cancelled by [`Server::run`] once shutdown has drained every
    /// session (each agent process is gone) and the gRPC API has stopped.
    /// What must outlive the sessions waits for it: the gateway's
    /// WebSockets (`csp dev`: the gateway's `hold_until`), the
    /// in-process policy and plugins services, the metrics and probes
    /// listener. Take it before `run`.
    pub fn drained(&self) -> CancellationToken {
        self.drained.clone()
    }

    /// The HTTP probes (`csp serve session-pool` serves them beside
    /// `/metrics`), like every gRPC service's `probes()`.
    pub fn probes(&self) -> Arc<dyn csp_telemetry::Probes> {
        Arc::new(self.monitor())
    }

    pub fn monitor(&self) -> Monitor {
        Monitor {
            pool: self.pool.clone(),
        }
    }

    /// Fills the pool and serves until `shutdown`. Then: readiness fails at
    /// once, no new session is taken, idle sessions stop, turns in flight
    /// get the shutdown grace, and the gRPC API keeps answering meanwhile
    /// (the gateway still relays those turns). When every agent process is
    /// gone it stops serving and cancels [`Server::drained`].
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let drained = self.drained.clone();
        // Orphans of agent trees (tools the CLI started in their own
        // sessions) are re-parented to csp instead of PID 1, which may not
        // reap them; the reaper loop collects them.
        if let Err(e) = csp_agent::become_subreaper() {
            tracing::warn!(error = %e, "cannot become a child subreaper; orphaned tool processes go to PID 1");
        }
        let stop_following = CancellationToken::new();
        let follower = self.plugins.clone().map(|channel| {
            tokio::spawn(plugins::follow(
                channel,
                csp_rpc::ServiceToken::new(self.tokens.clone(), "session-pool"),
                self.pool.plugin_sets(),
                stop_following.clone(),
            ))
        });
        let stop_proxies = CancellationToken::new();
        self.pool
            .egress()
            .serve(&stop_proxies, self.tool_door.clone());
        let refill = tokio::spawn(self.pool.clone().refill_loop());
        let reaper = tokio::spawn(self.pool.clone().reaper_loop(self.reaper_interval));
        let pool = self.pool.clone();
        let (health, routes) = csp_rpc::Health::follow(SERVICE_NAME, move || {
            let pool = pool.clone();
            async move { pool.status().await.not_ready.is_none() }
        })
        .await;
        let routes = routes.add_service(SessionPoolServer::new(service::Service {
            pool: self.pool.clone(),
        }));
        let stop_serving = CancellationToken::new();
        let guard = csp_rpc::Guard::new(self.tokens.clone(), service::access);
        let mut serving = tokio::spawn(self.listener.serve(routes, guard, stop_serving.clone()));
        let failed = tokio::select! {
            _ = shutdown.cancelled() => None,
            // The server failed on its own: still end every session.
            r = &mut serving => Some(r),
        };
        health.stop().await;
        self.pool.drain(self.grace).await;
        stop_serving.cancel();
        let served = match failed {
            Some(r) => r,
            None => serving.await,
        };
        let served = match served {
            Ok(r) => r.map_err(Error::from),
            Err(source) => Err(Error::Task {
                what: "gRPC server",
                source,
            }),
        };
        drained.cancel();
        refill.abort();
        stop_following.cancel();
        if let Some(follower) = follower {
            let _ = follower.await;
        }
        self.pool.stopped();
        // Every agent is gone: nothing needs the proxies any more.
        stop_proxies.cancel();
        let _ = reaper.await;
        // A last sweep: anything the agents left behind is reaped now.
        let reaped = csp_agent::reap_zombies();
        if reaped > 0 {
            ::metrics::counter!(metrics::ZOMBIES_REAPED).increment(reaped as u64);
        }
        served
    }
}
