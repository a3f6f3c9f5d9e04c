//! The session-pool service: owns Claude Code agent processes.
//!
//! Owns: the pre-warmed pool, binding sessions to users, turns (send,
//! queue, interrupt), translating agent output into numbered session events,
//! publishing them to the event bus and persisting the conversation. Must
//! never talk to a browser (that is the gateway's job) and never let an agent
//! process outlive its session: each runs in its own process group and is
//! ended with it.

mod metrics;
mod pool;
mod service;
mod session;
mod translate;

use csp_agent::PermissionHook;
use csp_bus::EventBus;
use csp_cache::Cache;
use csp_proto::v1::session_pool_server::SessionPoolServer;
use csp_store::SessionStore;
use pool::{Pool, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rpc(#[from] csp_rpc::Error),
    #[error("cannot use the data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

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
    /// Working and config directories of every session live below this.
    pub data_dir: PathBuf,
    pub agent: csp_agent::Config,
    /// Decides every tool call.
    pub permission_hook: Arc<dyn PermissionHook>,
    /// Shown to users, e.g. "offline demo model".
    pub model_label: String,
    /// How long shutdown waits for sessions to end.
    pub shutdown_grace: Duration,
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        if self.max_sessions == 0 {
            return Err(Error::Config("MAX_SESSIONS must be at least 1".into()));
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
}

/// A bound session-pool, ready to run.
pub struct Server {
    listener: csp_rpc::Listener,
    pool: Arc<Pool>,
    grace: Duration,
    max_sessions: usize,
}

/// A cheap handle to observe a running pool.
#[derive(Clone)]
pub struct Monitor {
    pool: Arc<Pool>,
    max_sessions: usize,
}

impl Monitor {
    pub async fn status(&self) -> PoolStatus {
        PoolStatus {
            active_sessions: self.pool.active().await,
            pool_depth: self.pool.depth().await,
            max_sessions: self.max_sessions,
            started_after_ms: self.pool.started_after_ms(),
        }
    }
}

impl Server {
    /// Validates the config, prepares the data directory and binds the port.
    pub async fn build(
        config: Config,
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
            return Err(Error::Config(
                csp_agent::Error::CliNotFound {
                    path: config.agent.cli_path.clone(),
                }
                .to_string(),
            ));
        }
        metrics::describe();
        let listener = csp_rpc::Listener::bind(config.grpc_addr).await?;
        let advertise_addr = config
            .advertise_addr
            .clone()
            .unwrap_or_else(|| format!("http://{}", listener.local_addr()));
        let settings = Settings {
            prewarm_pool_size: config.prewarm_pool_size,
            max_sessions: config.max_sessions,
            data_dir,
            agent: config.agent,
            hook: config.permission_hook,
            model_label: config.model_label,
            advertise_addr,
        };
        let pool = Pool::new(settings, bus, store, cache, CancellationToken::new());
        Ok(Self {
            listener,
            pool,
            grace: config.shutdown_grace,
            max_sessions: config.max_sessions,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    pub fn monitor(&self) -> Monitor {
        Monitor {
            pool: self.pool.clone(),
            max_sessions: self.max_sessions,
        }
    }

    /// Fills the pool and serves until `shutdown`; then ends every session.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let refill = tokio::spawn(self.pool.clone().refill_loop());
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<SessionPoolServer<service::Service>>()
            .await;
        let routes = tonic::service::Routes::new(health_service).add_service(
            SessionPoolServer::new(service::Service {
                pool: self.pool.clone(),
            }),
        );
        let served = self.listener.serve(routes, shutdown.clone()).await;
        health
            .set_not_serving::<SessionPoolServer<service::Service>>()
            .await;
        self.pool.drain(self.grace).await;
        refill.abort();
        served.map_err(Error::from)
    }
}
