//! The plugins service: what teams add to the agent without touching csp.
//!
//! Owns: the registry of `PLUGINS_DIR/<name>/plugin.json` (validated by
//! `csp-manifest`, rescanned when the directory changes), each plugin's
//! activation and configuration (through `csp-store`), the encryption of
//! secret settings (`csp-secrets`, Fernet under `CSP_SECRET_KEY`), and the
//! active set: the MCP servers new sessions start with, and the role each
//! plugin tool requires.
//! Must never return a secret value to anyone but the session-pool (and then
//! only to put it into an MCP server's environment), log one, or put one in
//! an audit row.

mod catalog;
mod metrics;
mod registry;
mod service;
mod status;
mod watcher;

pub use catalog::REDACTED;
pub use service::{Service, access};
pub use status::PluginStatus;

use catalog::Catalog;
use csp_auth::Tokens;
use csp_bus::Queue;
use csp_proto::v1::plugins_server::PluginsServer;
use csp_secrets::Keyring;
use csp_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rpc(#[from] csp_rpc::Error),
    #[error("plugins directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("first scan of the plugins directory failed: {0}")]
    Scan(String),
    /// The directory watcher panicked: not a configuration problem.
    #[error("{what} task failed")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// How the service runs.
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub tokens: Tokens,
    /// `PLUGINS_DIR`: one directory per plugin. Created if missing.
    pub plugins_dir: PathBuf,
    /// `CSP_SECRET_KEY` (+ `CSP_SECRET_KEY_PREVIOUS`). Without it, secret
    /// settings cannot be saved and plugins with stored secrets cannot start.
    pub keyring: Option<Keyring>,
    /// Quiet time after a file event before rescanning.
    pub debounce: Duration,
    /// Rescan this often even without file events.
    pub rescan_every: Duration,
}

impl Config {
    pub fn new(grpc_addr: SocketAddr, tokens: Tokens, plugins_dir: PathBuf) -> Self {
        Self {
            grpc_addr,
            tokens,
            plugins_dir,
            keyring: None,
            debounce: Duration::from_millis(300),
            rescan_every: Duration::from_secs(5),
        }
    }
}

/// A bound plugins server, ready to run.
pub struct Server {
    listener: csp_rpc::Listener,
    catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    /// Readiness: the plugin store answers and the service is not stopping.
    probes: Arc<csp_telemetry::StoreProbes>,
    tokens: Tokens,
    watch: watcher::Settings,
}

impl Server {
    /// Scans `PLUGINS_DIR` once, then binds the gRPC port (0 picks one; see
    /// `local_addr`), so the first active set a session-pool sees is the
    /// real one. Operator actions are audit-logged through `audit`.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        audit: Arc<dyn Queue>,
    ) -> Result<Self, Error> {
        let built = std::time::Instant::now();
        metrics::describe();
        std::fs::create_dir_all(&config.plugins_dir).map_err(|source| Error::Dir {
            dir: config.plugins_dir.clone(),
            source,
        })?;
        let dir = std::path::absolute(&config.plugins_dir).map_err(|source| Error::Dir {
            dir: config.plugins_dir.clone(),
            source,
        })?;
        let catalog = Catalog::new(
            registry::Registry::new(dir.clone()),
            store.clone(),
            config.keyring,
            audit,
        );
        let changes = catalog
            .rescan()
            .await
            .map_err(|e| Error::Scan(e.message().to_owned()))?;
        tracing::info!(dir = %dir.display(), plugins = changes.added.len(), "plugins directory scanned");
        let listener = csp_rpc::Listener::bind(config.grpc_addr).await?;
        let states = store.clone();
        let probes = Arc::new(csp_telemetry::StoreProbes::new(built, move || {
            let states = states.clone();
            async move { states.plugin_states().await.is_ok() }
        }));
        Ok(Self {
            listener,
            catalog,
            store,
            probes,
            tokens: config.tokens,
            watch: watcher::Settings {
                dir,
                debounce: config.debounce,
                every: config.rescan_every,
            },
        })
    }

    pub fn probes(&self) -> Arc<dyn csp_telemetry::Probes> {
        self.probes.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Serves (and watches `PLUGINS_DIR`) until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let (health, routes) = csp_rpc::Health::follow(
            <PluginsServer<Service> as tonic::server::NamedService>::NAME,
            self.probes.readiness(),
        )
        .await;
        let service = Service {
            catalog: self.catalog.clone(),
            store: self.store.clone(),
            shutdown: shutdown.clone(),
        };
        let routes = routes.add_service(PluginsServer::new(service));
        self.probes.shut_down_on(shutdown.clone());
        let watching = tokio::spawn(watcher::run(
            self.catalog.clone(),
            self.watch,
            shutdown.clone(),
        ));
        let guard = csp_rpc::Guard::new(self.tokens.clone(), access);
        let served = self.listener.serve(routes, guard, shutdown).await;
        drop(health);
        let watched = watching.await;
        served?;
        watched.map_err(|source| Error::Task {
            what: "plugins directory watcher",
            source,
        })?;
        Ok(())
    }
}
