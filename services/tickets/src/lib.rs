//! The tickets service: ticket enhancement's front office, behind gRPC
//! (`csp.v1.Tickets`; the gateway is its only public door).
//!
//! Owns: tenants (an MSP's ticketing tool — ServiceDesk Plus, Jira or
//! Zendesk — and that tool's fields, checked by its `csp-ticketing`
//! connector; preferences, monthly cap, soft delete) with their credentials
//! sealed by `csp-secrets` under `CSP_SECRET_KEY` (`tenants.rs` checks,
//! `admin.rs` acts), and the connection test of a tenant's tool; the webhook
//! secret (generated on create, shown once; a rotation keeps the previous
//! one valid for [`WEBHOOK_SECRET_GRACE`], 24 hours); each tenant's decrypted
//! configuration, cached 5 minutes per replica and invalidated on every
//! replica through a version in the shared cache (`configs.rs`); the intake
//! of signed webhooks (`intake.rs`: size, tenant, signature over the raw
//! bytes, rate limit — counted only after the signature is verified, so
//! forged traffic cannot use up a tenant's 100 a minute — validation, record,
//! then queue); the outbox sweeper that queues what was recorded but never
//! queued (`outbox.rs`) and the batcher that marks pushed jobs queued off the
//! request path (`marks.rs`); the enhancement history, the workers' pause flag
//! and the context uploads (knowledge base, inventory; `context.rs`); the
//! tenants granted to users for chat and the ticket tools of chat agents,
//! answered for the tenant their session is bound to (`chat.rs`);
//! technicians' votes from the signed links that end posted notes, and the
//! votes per tenant (`feedback.rs`); history imports started from the web,
//! one per tenant across replicas, their progress in the shared cache
//! (`import.rs`); the connector registry as the Tenants form reads it
//! (`tool_types.rs`); the operations dashboard (`dashboard.rs`: status, figures, backends) and the
//! workers as their heartbeats in the shared cache tell them (`workers.rs`);
//! the operations of admins and operators (`operations.rs`: clearing the
//! queue, reloading every replica's tenant configurations, retrying a
//! failed job, the history's keyset export), each audited.
//!
//! Must never: return, log or audit a secret (audit rows name the fields that
//! changed); answer an unknown tenant faster or differently than an inactive
//! one; parse a webhook (beyond the seed path's `tenant_id`) before its
//! signature is verified; queue a job before its row has committed; answer
//! "queued" for a job that is not durably recorded; delete a job (clearing
//! the queue fails the pending ones with the error `cleared`).
//!
//! Stored shapes the workers share: a tenant's `settings` JSON holds its
//! tool's non-secret field values by field name and its `kb_api_url` (a
//! ServiceDesk Plus tenant's reads as [`Settings`]), its `preferences` JSON
//! is [`Preferences`]; its secrets are `Owner::tenant(id)` keys: each secret
//! field of its tool under the field's name ([`API_KEY`], `jira_api_token`,
//! `zendesk_api_token`), [`WEBHOOK_SECRET`], [`WEBHOOK_SECRET_PREVIOUS`].

mod admin;
mod audit;
mod charts;
mod chat;
mod configs;
mod context;
mod dashboard;
mod feedback;
mod import;
mod intake;
mod marks;
mod metrics;
mod operations;
mod outbox;
mod service;
mod tenants;
mod tool_types;
mod workers;

pub use dashboard::Backends;
pub use service::{PER_PAGE, Service, access};
pub use tenants::{
    API_KEY, MAX_API_KEY_BYTES, Preferences, ServiceDeskAuth, Settings, TOOL_TYPE, WEBHOOK_SECRET,
    WEBHOOK_SECRET_GRACE, WEBHOOK_SECRET_PREVIOUS,
};

use csp_auth::Tokens;
use csp_bus::Queue;
use csp_cache::Cache;
use csp_proto::v1::tickets_server::TicketsServer;
use csp_secrets::Keyring;
use csp_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rpc(#[from] csp_rpc::Error),
    #[error("invalid tickets configuration: {0}")]
    Config(String),
    /// A background task (the sweeper, the queued-marks batcher) panicked:
    /// not a configuration problem.
    #[error("{what} task failed")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// The service's notion of now; tests inject one to cross a grace period.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// How the service runs.
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub tokens: Tokens,
    /// `CSP_SECRET_KEY` (+ `CSP_SECRET_KEY_PREVIOUS`). Without it tenants
    /// cannot be created (their credentials cannot be sealed) and stored
    /// ones cannot be opened.
    pub keyring: Option<Keyring>,
    pub clock: Arc<dyn Clock>,
    /// Webhooks a tenant may send per minute (seed: 100); more get 429.
    pub webhook_rate_limit: u64,
    /// How long a replica reuses a tenant's decrypted configuration without
    /// a change announced (5 minutes).
    pub config_ttl: Duration,
    /// How often the sweeper looks for recorded but unqueued jobs and
    /// refreshes `queue_depth`.
    pub sweep_every: Duration,
    /// At most this many jobs queued per sweep.
    pub sweep_batch: u32,
    /// The queue forgets its messages when this process stops (`csp dev`'s
    /// in-process queue): on start, every job not final is queued again at
    /// once, since no message for it survived and no other process can be
    /// working on it.
    pub volatile_queue: bool,
    /// How the dashboard names the store, cache and queue
    /// ([`Backends::DISTRIBUTED`]; `csp dev`: [`Backends::EMBEDDED`]).
    pub backends: Backends,
    /// `CSP_PROMETHEUS_URL`: where the charts read their series (an http or
    /// https base URL, checked at build); `None`: from the enhancement
    /// history.
    pub prometheus_url: Option<String>,
}

impl Config {
    pub fn new(grpc_addr: SocketAddr, tokens: Tokens) -> Self {
        Self {
            grpc_addr,
            tokens,
            keyring: None,
            clock: Arc::new(SystemClock),
            webhook_rate_limit: 100,
            config_ttl: Duration::from_secs(5 * 60),
            sweep_every: Duration::from_secs(5),
            sweep_batch: 100,
            volatile_queue: false,
            backends: Backends::DISTRIBUTED,
            prometheus_url: None,
        }
    }
}

/// A bound tickets server, ready to run.
pub struct Server {
    listener: csp_rpc::Listener,
    service: Service,
    outbox: Arc<outbox::Outbox>,
    marks: marks::Batcher,
    /// History imports running in the background on this replica.
    imports: Arc<import::Imports>,
    probes: Arc<csp_telemetry::StoreProbes>,
    tokens: Tokens,
    sweep_every: Duration,
    sweep_batch: u32,
    volatile_queue: bool,
}

impl Server {
    /// Binds the gRPC port (0 picks one; see `local_addr`). Jobs and audit
    /// events go to `queue` (topics `tickets.enhance` and `audit`); rate
    /// limits and the tenant-config versions live in `cache`, shared by
    /// every replica.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        cache: Arc<dyn Cache>,
    ) -> Result<Self, Error> {
        let built = std::time::Instant::now();
        metrics::describe();
        if config.webhook_rate_limit == 0 {
            return Err(Error::Config(
                "the webhook rate limit must be at least 1 a minute".into(),
            ));
        }
        if config.sweep_every.is_zero() || config.sweep_batch == 0 {
            return Err(Error::Config(
                "the sweeper needs a period above 0 and a batch of at least 1".into(),
            ));
        }
        if config.config_ttl < Duration::from_millis(1) {
            return Err(Error::Config(
                "the tenant config TTL must be at least 1 ms".into(),
            ));
        }
        let audit = audit::Auditor::new(queue.clone());
        let configs = Arc::new(configs::Configs::new(
            store.clone(),
            cache.clone(),
            config.keyring.clone(),
            config.clock.clone(),
            config.config_ttl,
        ));
        let (marks, batcher) = marks::channel(store.clone(), config.clock.clone());
        let outbox = Arc::new(outbox::Outbox {
            store: store.clone(),
            queue,
            clock: config.clock.clone(),
            marks,
        });
        let feedback =
            feedback::Feedback::new(store.clone(), config.keyring.as_ref(), config.clock.clone());
        let http =
            csp_http::HttpClient::new().map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let prometheus = config
            .prometheus_url
            .as_deref()
            .map(|url| charts::Prometheus::new(http.clone(), url))
            .transpose()
            .map_err(Error::Config)?;
        let imports = Arc::new(import::Imports {
            store: store.clone(),
            cache: cache.clone(),
            keyring: config.keyring.clone(),
            http: http.clone(),
            audit: audit.clone(),
            clock: config.clock.clone(),
            stop: CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
            options: csp_ticketing::connector::ClientOptions::default(),
        });
        let admin = Arc::new(admin::Admin {
            store: store.clone(),
            configs: configs.clone(),
            keyring: config.keyring,
            audit: audit.clone(),
            clock: config.clock.clone(),
            http,
        });
        let workers = Arc::new(workers::Workers {
            cache: cache.clone(),
            clock: config.clock.clone(),
            store: store.clone(),
            audit: audit.clone(),
        });
        let charts = charts::Charts::new(store.clone(), config.clock.clone(), prometheus);
        let dashboard = Arc::new(dashboard::Dashboard {
            store: store.clone(),
            cache: cache.clone(),
            queue: outbox.queue.clone(),
            outbox: outbox.clone(),
            workers: workers.clone(),
            clock: config.clock.clone(),
            backends: config.backends,
        });
        let operations = operations::Operations {
            store: store.clone(),
            configs: configs.clone(),
            outbox: outbox.clone(),
            audit: audit.clone(),
            clock: config.clock.clone(),
        };
        let intake = Arc::new(intake::Intake {
            configs,
            store: store.clone(),
            cache,
            outbox: outbox.clone(),
            audit,
            clock: config.clock,
            rate_limit: config.webhook_rate_limit,
        });
        let listener = csp_rpc::Listener::bind(config.grpc_addr).await?;
        let checked = store.clone();
        let probes = Arc::new(csp_telemetry::StoreProbes::new(built, move || {
            let store = checked.clone();
            async move { store.processing_paused().await.is_ok() }
        }));
        Ok(Self {
            listener,
            service: Service {
                store,
                chat: chat::Chat {
                    admin: admin.clone(),
                },
                admin,
                imports: imports.clone(),
                intake,
                outbox: outbox.clone(),
                feedback,
                operations,
                dashboard,
                charts,
                workers,
            },
            outbox,
            marks: batcher,
            imports,
            probes,
            tokens: config.tokens,
            sweep_every: config.sweep_every,
            sweep_batch: config.sweep_batch,
            volatile_queue: config.volatile_queue,
        })
    }

    pub fn probes(&self) -> Arc<dyn csp_telemetry::Probes> {
        self.probes.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Serves (and sweeps, and marks pushed jobs queued) until `shutdown` is
    /// cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let (health, routes) = csp_rpc::Health::follow(
            <TicketsServer<Service> as tonic::server::NamedService>::NAME,
            self.probes.readiness(),
        )
        .await;
        let routes = routes.add_service(TicketsServer::new(self.service));
        self.probes.shut_down_on(shutdown.clone());
        // Its own token: a server that fails stops its sweeper, not the
        // caller's other services.
        let sweeper_stop = shutdown.child_token();
        let sweeping = tokio::spawn(outbox::run_sweeper(
            self.outbox,
            self.sweep_every,
            self.sweep_batch,
            self.volatile_queue,
            sweeper_stop.clone(),
        ));
        // Its own token too, but not a child of `shutdown`: it stops only
        // once serving has ended, so the marks of the requests answered
        // while draining are written (its last flush) rather than dropped.
        let marks_stop = CancellationToken::new();
        let marking = tokio::spawn(self.marks.run(marks_stop.clone()));
        let guard = csp_rpc::Guard::new(self.tokens.clone(), access);
        let served = self.listener.serve(routes, guard, shutdown).await;
        drop(health);
        // Imports still running record that they stopped and release their
        // locks, so another replica may start them again at once.
        self.imports.stop.cancel();
        self.imports.tasks.close();
        self.imports.tasks.wait().await;
        sweeper_stop.cancel();
        let swept = sweeping.await;
        marks_stop.cancel();
        let marked = marking.await;
        served?;
        swept.map_err(|source| Error::Task {
            what: "outbox sweeper",
            source,
        })?;
        marked.map_err(|source| Error::Task {
            what: "queued-marks batcher",
            source,
        })
    }
}
