//! The shape of one row of the composition table (`services.rs`), and what
//! `csp dev` hands every row.
//!
//! Every service has the same shape, `Config → Server::build() →
//! local_addr() → run(shutdown)`; a row says only what differs between
//! services: its name, which services' addresses its config needs (so
//! `csp dev` starts those first), and how its config is made in each mode.
//! A built service becomes a [`Built`], which the composition (`compose.rs`)
//! runs the same way whatever the service.

use crate::error::Error;
use crate::opts::{GatewayOpts, ModelOpts, PolicyOpts, PoolOpts, TicketsOpts, TicketsWorkerOpts};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where `csp dev` binds the services a browser never calls.
pub(crate) const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// One service of the composition table.
pub(crate) struct Row {
    /// `csp serve <name>`; log lines say `csp <name>: …`.
    pub(crate) name: &'static str,
    /// `service.name` of the spans a `csp serve <name>` process exports.
    pub(crate) span: &'static str,
    /// What browsers or other services call it with.
    pub(crate) api: Api,
    /// The services whose addresses its config holds: `csp dev` starts them
    /// before it and hands it their addresses ([`Addrs`]).
    pub(crate) needs: &'static [&'static str],
    /// Builds it in `csp dev`: on the embedded backends, bound to
    /// loopback (the gateway: `CSP_LISTEN`). `csp serve` builds it from its
    /// own options instead (`Service::build`).
    pub(crate) dev: for<'a> fn(&'a Dev, Addrs<'a>) -> BoxFuture<'a, Result<Built, Error>>,
}

/// What a service serves on its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// HTTP with its own `/metrics` and probes (the gateway).
    Http,
    /// gRPC: `csp serve` adds the shared `/metrics` and probes listener
    /// (`CSP_METRICS_ADDR`).
    Grpc,
    /// Nothing: it consumes the work queue (the tickets worker). `csp serve`
    /// still adds the shared `/metrics` and probes listener.
    Queue,
}

impl Api {
    /// How `csp serve` announces what it serves: the bound address, or
    /// for a queue consumer (which binds nothing), the queue.
    pub(crate) fn shown(self, addr: Option<SocketAddr>) -> String {
        match (self, addr) {
            (Api::Http, Some(addr)) => format!("listening on http://{addr}"),
            (Api::Grpc, Some(addr)) => format!("listening on {addr}"),
            _ => "consuming the work queue".to_owned(),
        }
    }
}

/// The addresses (`http://host:port`) of the services a row needs, as
/// `csp dev` started them.
pub(crate) struct Addrs<'a> {
    row: &'a Row,
    started: &'a BTreeMap<&'static str, SocketAddr>,
}

impl<'a> Addrs<'a> {
    pub(crate) fn new(row: &'a Row, started: &'a BTreeMap<&'static str, SocketAddr>) -> Self {
        Self { row, started }
    }

    /// The address of `service`, which the row must list in its `needs`.
    pub(crate) fn of(&self, service: &'static str) -> Result<String, Error> {
        let missing = Error::MissingDependency {
            service: self.row.name,
            needs: service,
        };
        if !self.row.needs.contains(&service) {
            return Err(missing);
        }
        let addr = self.started.get(service).ok_or(missing)?;
        Ok(format!("http://{addr}"))
    }
}

/// When a running service stops.
#[derive(Clone)]
pub(crate) struct Stops {
    /// SIGINT or SIGTERM, or another service of the process failed.
    pub(crate) shutdown: CancellationToken,
    /// `csp dev`: cancelled once the in-process session-pool has drained
    /// (its turns in flight finished). The services it calls keep
    /// answering until then, and the gateway keeps relaying. `None` in
    /// `csp serve`, where each process stops on its own signal.
    pub(crate) drained: Option<CancellationToken>,
}

impl Stops {
    /// When a service the session-pool calls (policy, plugins) stops.
    fn after_drain(&self) -> CancellationToken {
        self.drained
            .clone()
            .unwrap_or_else(|| self.shutdown.clone())
    }
}

type Run = Box<dyn FnOnce(Stops) -> BoxFuture<'static, Result<(), Error>> + Send>;

/// A service built and bound, ready to run.
pub(crate) struct Built {
    /// Where it listens; `None` for a queue consumer.
    pub(crate) addr: Option<SocketAddr>,
    /// The HTTP probes of a gRPC service, served beside `/metrics`.
    pub(crate) probes: Option<Arc<dyn csp_telemetry::Probes>>,
    /// Cancelled once the service has drained (the session-pool's
    /// `drained()`): [`Stops::drained`] for the others in `csp dev`, and
    /// when its own `/metrics` listener stops.
    pub(crate) drained: Option<CancellationToken>,
    /// `csp serve`: where the shared `/metrics` and probes listener binds.
    pub(crate) metrics_addr: Option<SocketAddr>,
    run: Run,
}

impl Built {
    /// A service bound to `addr` that `run` serves until its [`Stops`].
    pub(crate) fn new<F, Fut, E>(addr: SocketAddr, run: F) -> Self
    where
        F: FnOnce(Stops) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Error>,
    {
        Self::serving(Some(addr), run)
    }

    /// A queue consumer (the tickets worker): it binds no port of its own,
    /// and `run` works until its [`Stops`].
    pub(crate) fn consumer<F, Fut, E>(run: F) -> Self
    where
        F: FnOnce(Stops) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Error>,
    {
        Self::serving(None, run)
    }

    fn serving<F, Fut, E>(addr: Option<SocketAddr>, run: F) -> Self
    where
        F: FnOnce(Stops) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Error>,
    {
        Self {
            addr,
            probes: None,
            drained: None,
            metrics_addr: None,
            run: Box::new(move |stops| {
                Box::pin(async move { run(stops).await.map_err(Into::into) })
            }),
        }
    }

    /// A gRPC service the session-pool or the gateway calls (policy,
    /// plugins, tickets): it has probes, and in `csp dev` it answers until
    /// the session-pool drained (the gateway relays until then too).
    pub(crate) fn serving_the_pool<F, Fut, E>(
        addr: SocketAddr,
        probes: Arc<dyn csp_telemetry::Probes>,
        run: F,
    ) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Error>,
    {
        Self::new(addr, move |stops: Stops| run(stops.after_drain())).with_probes(probes)
    }

    pub(crate) fn with_probes(mut self, probes: Arc<dyn csp_telemetry::Probes>) -> Self {
        self.probes = Some(probes);
        self
    }

    pub(crate) fn with_drained(mut self, drained: CancellationToken) -> Self {
        self.drained = Some(drained);
        self
    }

    pub(crate) fn with_metrics_on(mut self, addr: SocketAddr) -> Self {
        self.metrics_addr = Some(addr);
        self
    }

    /// Serves until `stops` say so.
    pub(crate) async fn run(self, stops: Stops) -> Result<(), Error> {
        (self.run)(stops).await
    }
}

/// What `csp dev` gives every row: one process's embedded backends, its
/// token secret, its model, and the option groups shared with `csp serve`.
pub(crate) struct Dev {
    /// Where the gateway serves the chat (`CSP_LISTEN`).
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) plugins_dir: PathBuf,
    pub(crate) tokens: csp_auth::Tokens,
    pub(crate) keyring: Option<csp_secrets::Keyring>,
    pub(crate) store: Arc<csp_store::SqliteStore>,
    pub(crate) bus: Arc<dyn csp_bus::EventBus>,
    pub(crate) cache: Arc<dyn csp_cache::Cache>,
    /// Audit events, from the session-pool to the policy service in memory.
    pub(crate) queue: Arc<dyn csp_bus::Queue>,
    pub(crate) model: ModelOpts,
    /// The model ticket enhancement uses: `csp dev`'s model (the real API or
    /// the scripted one, which writes the offline demo's notes) unless
    /// `CSP_ENHANCE_*` name another.
    pub(crate) enhance_model: Option<csp_enhance::ProviderConfig>,
    /// What agents are given to reach their model (the real API, or the
    /// scripted one).
    pub(crate) model_env: Vec<(String, String)>,
    pub(crate) model_label: String,
    /// Every secret this process holds, for the session-pool to redact
    /// from agent output.
    pub(crate) secrets: Vec<SecretString>,
    pub(crate) policy: PolicyOpts,
    pub(crate) pool: PoolOpts,
    pub(crate) gateway: GatewayOpts,
    pub(crate) tickets: TicketsOpts,
    pub(crate) tickets_worker: TicketsWorkerOpts,
}
