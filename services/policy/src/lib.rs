//! The policy service: who may do what, and what it costs.
//!
//! Owns: users (through `csp-store`; names in NFKC, look-alikes refused),
//! password checks (on a fixed set of hashing threads, so memory is
//! bounded) and token issue, the
//! bootstrap admin, roles (admin ⊃ operator ⊃ user), the permission gate's
//! per-tool rule (with the roles plugins declare, followed from the plugins
//! service), monthly cost caps (reserve before a turn, settle after),
//! and the audit log (tamper-evident hash chain, fed by a durable queue).
//! Must never return or log a password, a hash, a token it did not issue to
//! the caller, or an unredacted tool input.

mod audit;
pub mod budget;
mod hasher;
mod metrics;
mod plugins;
mod service;
pub mod tools;

pub use budget::{Clock, SystemClock};
pub use service::{BudgetConfig, Service, access};
pub use tools::ToolRoles;

use csp_auth::Tokens;
use csp_bus::Queue;
use csp_domain::Role;
use csp_proto::v1::policy_server::PolicyServer;
use csp_store::{NewUser, Store, UserStore};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The username of the account created at first start.
pub const ADMIN_USERNAME: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rpc(#[from] csp_rpc::Error),
    #[error("user store: {0}")]
    Store(#[from] csp_store::Error),
    #[error(transparent)]
    Auth(#[from] csp_auth::Error),
    /// A task of the running server (the audit writer, the plugin
    /// follower) panicked: not a configuration or store problem.
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
    /// `CSP_TOOL_ROLES` applied to the defaults.
    pub tools: ToolRoles,
    pub budget: BudgetConfig,
    pub clock: Arc<dyn Clock>,
    /// The plugins service (`http://host:port`) whose catalog gives plugin
    /// tools their roles. `None`: no plugins; MCP tools take the defaults.
    pub plugins_addr: Option<String>,
    /// `CSP_PASSWORD_HASH_CONCURRENCY`: at most this many password hashes
    /// (each about 19 MiB for its duration) are computed at once; the rest
    /// wait. At least 1.
    pub hash_concurrency: usize,
}

/// The default of [`Config::hash_concurrency`]: one per available core.
pub fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Creates the `admin` account if there is none. Returns the password when it
/// had to generate one (the caller shows it once; it is stored only hashed).
pub async fn bootstrap_admin(
    store: &dyn UserStore,
    password: Option<&SecretString>,
) -> Result<Option<SecretString>, Error> {
    if store.user_by_name(ADMIN_USERNAME).await?.is_some() {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p.expose_secret().to_owned(), false),
        None => (csp_auth::generate_password(), true),
    };
    let hash = hash_blocking(password.clone()).await?;
    match store
        .create_user(NewUser {
            username: ADMIN_USERNAME.into(),
            password_hash: hash,
            role: Role::Admin,
            monthly_cost_cap_micros: None,
        })
        .await
    {
        Ok(_) => {
            tracing::info!(username = ADMIN_USERNAME, "created the bootstrap admin");
            Ok(generated.then(|| SecretString::from(password)))
        }
        // Another replica won the race: its admin stands.
        Err(csp_store::Error::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn hash_blocking(password: String) -> Result<String, csp_auth::Error> {
    tokio::task::spawn_blocking(move || csp_auth::hash_password(&password))
        .await
        .expect("hashing does not panic")
}

/// A bound policy server, ready to run.
pub struct Server {
    listener: csp_rpc::Listener,
    service: Service,
    /// Readiness: the user store answers a query, and the service is not
    /// shutting down.
    probes: Arc<csp_telemetry::StoreProbes>,
    tokens: Tokens,
    queue: Arc<dyn Queue>,
    store: Arc<dyn Store>,
    /// The plugins service to follow and where its catalog goes.
    plugins: Option<(
        tonic::transport::Channel,
        tokio::sync::watch::Sender<Option<Arc<plugins::Catalog>>>,
    )>,
}

impl Server {
    /// Binds the gRPC port (0 picks one; see `local_addr`).
    /// Audit events are consumed from `queue` while the server runs.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
    ) -> Result<Self, Error> {
        let built = std::time::Instant::now();
        metrics::describe();
        let listener = csp_rpc::Listener::bind(config.grpc_addr).await?;
        let tokens = config.tokens.clone();
        let mut service = Service::new(
            store.clone(),
            config.tokens,
            config.tools,
            config.budget,
            config.clock,
            hasher::Hasher::new(config.hash_concurrency),
        )?;
        let plugins = match config.plugins_addr.as_deref() {
            Some(addr) => {
                let (catalogs, catalog) = tokio::sync::watch::channel(None);
                service.plugins = plugins::PluginRoles::Following(catalog);
                Some((csp_rpc::channel(addr)?, catalogs))
            }
            None => None,
        };
        let users = store.clone();
        let probes = Arc::new(csp_telemetry::StoreProbes::new(built, move || {
            let users = users.clone();
            async move { users.count_users().await.is_ok() }
        }));
        Ok(Self {
            listener,
            service,
            probes,
            tokens,
            queue,
            store,
            plugins,
        })
    }

    /// The HTTP probes (`csp serve policy` serves them beside `/metrics`).
    pub fn probes(&self) -> Arc<dyn csp_telemetry::Probes> {
        self.probes.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let (health, routes) = csp_rpc::Health::follow(
            <PolicyServer<Service> as tonic::server::NamedService>::NAME,
            self.probes.readiness(),
        )
        .await;
        let routes = routes.add_service(PolicyServer::new(self.service));
        self.probes.shut_down_on(shutdown.clone());
        let consumer = tokio::spawn(audit::consume(
            self.queue.clone(),
            self.store.clone(),
            shutdown.clone(),
        ));
        let follower = self.plugins.map(|(channel, catalogs)| {
            tokio::spawn(plugins::follow(
                channel,
                csp_rpc::ServiceToken::new(self.tokens.clone(), "policy"),
                catalogs,
                shutdown.clone(),
            ))
        });
        let guard = csp_rpc::Guard::new(self.tokens.clone(), access);
        let served = self.listener.serve(routes, guard, shutdown).await;
        drop(health);
        let consumed = consumer.await;
        let followed = match follower {
            Some(follower) => follower.await,
            None => Ok(()),
        };
        served?;
        consumed.map_err(|source| Error::Task {
            what: "audit writer",
            source,
        })?;
        followed.map_err(|source| Error::Task {
            what: "plugin follower",
            source,
        })?;
        Ok(())
    }
}
