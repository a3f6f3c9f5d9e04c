//! The tickets worker: takes enhancement jobs off the queue and turns each
//! into one internal note on the tenant's ticket (issue 14, "What happens to
//! a ticket", steps 2–6). Run as `csp serve tickets-worker`, and in-process
//! by `csp dev`.
//!
//! Owns: consuming one enhancement queue ([`csp_domain::EnhanceQueue`]: the
//! shared [`csp_domain::ENHANCE_TOPIC`], or one dedicated tenant's with
//! `CSP_WORKER_TENANT`) through the shared loop
//! (`csp_bus::run_worker`: bounded concurrency, retries with backoff, dead
//! letters); which jobs of that queue it takes (`route.rs`: a dedicated
//! tenant's job reaching the shared queue is handed on to its tenant's, a
//! job of another tenant reaching a tenant's queue is refused untouched);
//! the pause flag's effect (a paused worker stops its consumer, so
//! it starts no job and spends no delivery attempt: `pause.rs`); the
//! per-tenant in-flight cap (`fairness.rs`: a job whose tenant is at its
//! cap is deferred, uncounted, to the back of the queue); the dead letters'
//! consumer (`dead.rs`: a job the queue gave up on without an outcome, such
//! as one whose worker died during its last delivery, is `failed`); the
//! message and the trace it continues (`message.rs`); one attempt of a job
//! (`job.rs`): the tenant's settings and credential, context gathering from
//! the tenant's enabled sources (`sources.rs`: the store's history,
//! knowledge base and inventory, and the tenant's external knowledge-base
//! API with its cache), the budget and circuit-breaker checks, the model
//! call, the note posted at most once per job (ending with its signed "Was
//! this helpful?" links, `csp_enhance::FeedbackLinks`, when a public URL and
//! the keyring are configured), and the job's final record;
//! the seed's worker metrics (`metrics.rs`); the heartbeat the dashboard
//! and the Workers page read, with the process's last log lines and the
//! admin's restart command, which drains the worker ([`Exit::Restart`])
//! (`heartbeat.rs`: every 5 s into the shared
//! cache, deleted on a graceful stop).
//!
//! Must never: post a second note for a job (an attempt holds its job by
//! an exclusive lease from the store, so two deliveries of a job never run
//! attempts at once — the second is deferred until the lease ends; every
//! post goes through `post_note_once` with the job's marker; and a final job
//! is never worked on again); call the model for a tenant over its monthly budget or while
//! the breaker is open; let a failing context source fail a job; leave a job
//! that the queue gives up on anything but `failed` in the store; log or
//! store a tenant's credential or the model key; take a job while
//! processing is paused.

mod dead;
mod error;
mod fairness;
mod heartbeat;
mod job;
mod message;
mod metrics;
mod observed;
mod pause;
mod route;
mod sources;
mod tenant;

pub use csp_tenant_tool::{ToolSettingsError, tool_settings};
pub use error::Error;
pub use metrics::{
    ACTIVE_COUNT, DURATION_SECONDS, REQUESTS_TOTAL, SUCCESS_RATE, SUCCESS_WINDOW, describe,
};
pub use tenant::{Preferences, Settings};

use std::sync::Arc;
use std::time::Duration;

use csp_breaker::Breaker;
use csp_bus::Queue;
use csp_bus::worker::{Backoff, WorkerConfig};
use csp_cache::Cache;
use csp_enhance::{CallOptions, GatherTimeouts, ProviderConfig, Synthesizer};
use csp_http::HttpClient;
use csp_secrets::Keyring;
use csp_store::{ContextStore, EnhancementStore, SecretStore, Store, TenantStore};
use csp_ticketing::connector::RetryPolicy;
use tokio_util::sync::CancellationToken;

/// How the worker runs. [`Config::default`] is the contract.
#[derive(Clone)]
pub struct Config {
    /// Jobs worked on at once (`CSP_TICKETS_WORKER_CONCURRENCY`, 4).
    pub concurrency: usize,
    /// Jobs of one tenant worked on at once (`CSP_TICKETS_TENANT_INFLIGHT`, 2).
    pub tenant_inflight: usize,
    /// How long a job whose tenant is at its cap is handed back for before
    /// it is delivered again: 500 ms the first time, doubling with each
    /// deferral of the job up to `tenant_defer_max` (8 s); it spends no
    /// attempt. See `fairness.rs`.
    pub tenant_defer: Duration,
    pub tenant_defer_max: Duration,
    /// Deliveries of a job before it is `failed` and dead-lettered (3).
    pub max_attempts: u32,
    /// Pause between deliveries of a failed job (2 s, 4 s, … up to 60 s).
    pub backoff: Backoff,
    /// The budget of one attempt, everything included (120 s).
    pub attempt_timeout: Duration,
    /// Added to `attempt_timeout` for the lease an attempt holds its job by
    /// ([`Config::lease`], 30 s): time to end the attempt after its budget
    /// (a note post already on the wire, the job's final write) and for the
    /// clocks of workers on other hosts. While the lease runs no other
    /// delivery of the job starts an attempt.
    pub lease_margin: Duration,
    /// Per source: history 5 s, knowledge base 10 s, inventory 5 s.
    pub source_timeouts: GatherTimeouts,
    /// A tenant's external knowledge-base API: its call's timeout (10 s),
    /// how long an answer is used (1 h) and how long it is kept to stand in
    /// when the API fails (24 h).
    pub kb_api_timeout: Duration,
    pub kb_cache_ttl: Duration,
    pub kb_stale_ttl: Duration,
    /// How often the pause flag is read (2 s).
    pub pause_poll: Duration,
    /// How often the heartbeat is written into the shared cache
    /// ([`csp_domain::HEARTBEAT_EVERY`], 5 s).
    pub heartbeat_every: Duration,
    /// The process's last log lines, published beside the heartbeat for
    /// the Workers page (`csp_telemetry::log_ring`); `None`: none are.
    pub log_lines: Option<csp_telemetry::LogRing>,
    /// The model (`CSP_ENHANCE_PROVIDER` …); `None`: every note is the
    /// fallback note, with `no model configured`.
    pub provider: Option<ProviderConfig>,
    /// Per model call: 30 s, one retry, the price table.
    pub model_call: CallOptions,
    /// Calls to a tenant's ticketing tool: 3 attempts (0.5 s, 1 s) on 5xx
    /// and timeouts.
    pub tool_retry: RetryPolicy,
    /// Opens the sealed secret settings of tenants' tools, such as
    /// ServiceDesk Plus' `api_key` (`CSP_SECRET_KEY`); also signs the
    /// feedback links at the end of every note.
    pub keyring: Option<Keyring>,
    /// `CSP_PUBLIC_URL`: the gateway as technicians reach it, where the
    /// "Was this helpful?" links of notes lead. Without it (or without the
    /// keyring) notes carry no links.
    pub public_url: Option<String>,
    /// The queue it consumes: the shared one ([`csp_domain::ENHANCE_TOPIC`])
    /// or one dedicated tenant's (`CSP_WORKER_TENANT`), as group
    /// [`csp_domain::ENHANCE_GROUP`]. A consumer is a (topic, group) pair,
    /// so a tenant's workers share no consumer with the shared ones.
    pub queue: csp_domain::EnhanceQueue,
    pub group: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            concurrency: 4,
            tenant_inflight: 2,
            tenant_defer: Duration::from_millis(500),
            tenant_defer_max: Duration::from_secs(8),
            max_attempts: 3,
            backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(60),
                factor: 2.0,
            },
            attempt_timeout: Duration::from_secs(120),
            lease_margin: Duration::from_secs(30),
            source_timeouts: GatherTimeouts {
                similar: Duration::from_secs(5),
                kb: Duration::from_secs(10),
                inventory: Duration::from_secs(5),
            },
            kb_api_timeout: Duration::from_secs(10),
            kb_cache_ttl: Duration::from_secs(3600),
            kb_stale_ttl: Duration::from_secs(24 * 3600),
            pause_poll: Duration::from_secs(2),
            heartbeat_every: csp_domain::HEARTBEAT_EVERY,
            log_lines: None,
            provider: None,
            model_call: CallOptions::default(),
            tool_retry: RetryPolicy::default(),
            keyring: None,
            public_url: None,
            queue: csp_domain::EnhanceQueue::Shared,
            group: csp_domain::ENHANCE_GROUP.to_owned(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The provider's Debug hides its key; the keyring is not shown at all.
        f.debug_struct("Config")
            .field("concurrency", &self.concurrency)
            .field("tenant_inflight", &self.tenant_inflight)
            .field("tenant_defer", &self.tenant_defer)
            .field("tenant_defer_max", &self.tenant_defer_max)
            .field("max_attempts", &self.max_attempts)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("lease_margin", &self.lease_margin)
            .field("provider", &self.provider)
            .field("keyring", &self.keyring.as_ref().map(|_| "[set]"))
            .field("public_url", &self.public_url)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        let positive = [
            (
                "concurrency (CSP_TICKETS_WORKER_CONCURRENCY)",
                self.concurrency,
            ),
            (
                "tenant_inflight (CSP_TICKETS_TENANT_INFLIGHT)",
                self.tenant_inflight,
            ),
            ("max_attempts", self.max_attempts as usize),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(Error::Config(format!("{key} must be at least 1")));
            }
        }
        for (key, value) in [
            ("attempt_timeout", self.attempt_timeout),
            ("lease_margin", self.lease_margin),
            ("tenant_defer", self.tenant_defer),
            ("kb_api_timeout", self.kb_api_timeout),
            ("kb_cache_ttl", self.kb_cache_ttl),
            ("pause_poll", self.pause_poll),
            ("heartbeat_every", self.heartbeat_every),
        ] {
            if value.is_zero() {
                return Err(Error::Config(format!("{key} must be greater than zero")));
            }
        }
        if self.tenant_defer_max < self.tenant_defer {
            return Err(Error::Config(format!(
                "tenant_defer_max ({:?}) must be at least tenant_defer ({:?})",
                self.tenant_defer_max, self.tenant_defer
            )));
        }
        if let Some(url) = &self.public_url {
            csp_enhance::FeedbackLinks::check_public_url(url)
                .map_err(|e| Error::Config(format!("public_url (CSP_PUBLIC_URL): {e}")))?;
        }
        if self.kb_stale_ttl < self.kb_cache_ttl {
            return Err(Error::Config(format!(
                "kb_stale_ttl ({:?}) must be at least kb_cache_ttl ({:?})",
                self.kb_stale_ttl, self.kb_cache_ttl
            )));
        }
        Ok(())
    }

    /// How long an attempt holds its job (`attempt_timeout` +
    /// `lease_margin`, 150 s): another delivery of the job meanwhile is
    /// deferred, and once it has run out (the attempt's worker died) the job
    /// is taken again ([`csp_store::EnhancementStore::start_attempt`]).
    pub fn lease(&self) -> Duration {
        self.attempt_timeout.saturating_add(self.lease_margin)
    }

    /// The links that end every note, or `None` (said once, at start)
    /// without a public URL or a keyring.
    fn feedback_links(&self) -> Option<csp_enhance::FeedbackLinks> {
        let missing = match (&self.public_url, &self.keyring) {
            (Some(url), Some(keyring)) => {
                let key = csp_enhance::FeedbackKey::from_keyring(keyring);
                // Checked by `validate`.
                return csp_enhance::FeedbackLinks::new(url, key).ok();
            }
            (None, Some(_)) => "CSP_PUBLIC_URL is not set",
            (_, None) => "CSP_SECRET_KEY is not set",
        };
        tracing::info!("notes carry no \"Was this helpful?\" links: {missing}");
        None
    }

    fn worker_config(&self) -> WorkerConfig {
        let mut config = WorkerConfig::new(self.queue.topic(), self.group.clone());
        config.concurrency = self.concurrency;
        config.max_deliveries = self.max_attempts;
        config.backoff = self.backoff.clone();
        config
    }

    /// The dead letters' consumer: its own group on `<topic>.dead`, one at a
    /// time, retrying a store outage for as long as the queue keeps the
    /// letter.
    fn dead_letter_config(&self) -> WorkerConfig {
        let jobs = self.worker_config();
        let mut config = WorkerConfig::new(
            jobs.dead_letter_topic.clone(),
            format!("{}-dead", self.group),
        );
        config.max_deliveries = u32::MAX;
        config.backoff = self.backoff.clone();
        config
    }
}

/// The store concerns the worker uses. Each is the same store in practice
/// ([`Stores::of`]); they are apart so a test can watch one concern.
#[derive(Clone)]
pub struct Stores {
    pub jobs: Arc<dyn EnhancementStore>,
    pub tenants: Arc<dyn TenantStore>,
    pub context: Arc<dyn ContextStore>,
    pub secrets: Arc<dyn SecretStore>,
}

impl Stores {
    /// Every concern from one store (an `Arc<PgStore>` or `Arc<SqliteStore>`
    /// coerces at the call).
    pub fn of(store: Arc<dyn Store>) -> Self {
        Self {
            jobs: store.clone(),
            tenants: store.clone(),
            context: store.clone(),
            secrets: store,
        }
    }
}

/// A built worker, ready to run.
pub struct Worker {
    config: Config,
    jobs: Arc<route::Routed>,
    dead: Arc<dead::DeadLetters>,
    queue: Arc<observed::ObservedQueue>,
    probes: Arc<csp_telemetry::StoreProbes>,
    heartbeat: heartbeat::Heartbeat,
}

impl Worker {
    /// Checks `config` and prepares the model client; nothing is consumed
    /// until [`Worker::run`].
    pub fn build(
        config: Config,
        stores: Stores,
        queue: Arc<dyn Queue>,
        cache: Arc<dyn Cache>,
        breaker: Arc<Breaker>,
    ) -> Result<Self, Error> {
        let built = std::time::Instant::now();
        config.validate()?;
        metrics::describe();
        let http = HttpClient::new().map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let model: Option<Arc<dyn Synthesizer>> = match &config.provider {
            Some(provider) => Some(Arc::from(
                csp_enhance::synthesizer(provider.clone(), http.clone(), config.model_call.clone())
                    .map_err(|e| Error::Config(format!("enhancement model: {e}")))?,
            )),
            None => {
                tracing::warn!(
                    "no enhancement model configured: notes carry the gathered context without analysis"
                );
                None
            }
        };
        let queue = Arc::new(observed::ObservedQueue::new(queue));
        let dead = Arc::new(dead::DeadLetters::new(
            stores.jobs.clone(),
            config.max_attempts,
            config.queue.clone(),
        ));
        let heartbeat =
            heartbeat::Heartbeat::new(cache.clone(), Arc::default(), config.heartbeat_every)
                .with_logs(config.log_lines.clone());
        let router =
            route::Router::new(config.queue.clone(), stores.tenants.clone(), queue.clone());
        let jobs = Arc::new(job::Jobs::new(
            &config,
            stores,
            cache,
            breaker,
            model,
            http,
            heartbeat.tally(),
        ));
        let jobs = Arc::new(route::Routed::new(router, jobs));
        let check_jobs = jobs.clone();
        let check_queue = queue.clone();
        let probes = Arc::new(csp_telemetry::StoreProbes::new(built, move || {
            let jobs = check_jobs.clone();
            let queue = check_queue.clone();
            async move { queue.reachable() && jobs.store_answers().await }
        }));
        Ok(Self {
            config,
            jobs,
            dead,
            queue,
            probes,
            heartbeat,
        })
    }

    /// Ready: the store answers within 2 s, the queue's last pull worked, and
    /// the worker is not stopping.
    pub fn probes(&self) -> Arc<dyn csp_telemetry::Probes> {
        self.probes.clone()
    }

    /// Consumes jobs until `shutdown` is cancelled or an admin's restart
    /// command for this worker is read (its heartbeat then says
    /// `draining`), then lets the jobs in flight finish and settle — each
    /// attempt is bounded by `attempt_timeout`; a process killed meanwhile
    /// leaves its messages to be delivered again after the queue's ack
    /// deadline. While processing is paused the consumer is stopped. The
    /// dead letters' consumer runs throughout, paused or not: recording a
    /// job's failure is not taking a job. [`Exit::Restart`] asks the
    /// supervisor to start the worker again.
    pub async fn run(self, shutdown: CancellationToken) -> Result<Exit, Error> {
        // A restart command stops everything a shutdown stops.
        let drain = self.heartbeat.drain_token();
        let stop = shutdown.child_token();
        tokio::spawn({
            let (stop, drain) = (stop.clone(), drain.clone());
            async move {
                tokio::select! {
                    () = drain.cancelled() => stop.cancel(),
                    () = stop.cancelled() => {}
                }
            }
        });
        self.probes.shut_down_on(stop.clone());
        // Its own token: the last heartbeat is deleted only once the jobs
        // in flight have settled, after `stop`.
        let beat_stop = CancellationToken::new();
        let beating = tokio::spawn(self.heartbeat.run(beat_stop.clone()));
        let stop_dead = stop.child_token();
        let dead_letters = tokio::spawn(csp_bus::run_worker::<csp_bus::DeadLetter, _>(
            self.queue.clone(),
            self.config.dead_letter_config(),
            self.dead,
            stop_dead.clone(),
        ));
        let jobs = pause::supervise(
            self.jobs,
            self.queue,
            self.config.worker_config(),
            self.config.pause_poll,
            stop.clone(),
        )
        .await;
        // Shut down, or the jobs' consumer failed: either way the other one
        // stops too.
        stop_dead.cancel();
        let dead = dead_letters.await;
        beat_stop.cancel();
        if let Err(e) = beating.await {
            tracing::warn!(error = %e, "the heartbeat task failed");
        }
        let dead = dead.map_err(Error::Task)?;
        jobs?;
        dead?;
        if drain.is_cancelled() && !shutdown.is_cancelled() {
            tracing::warn!(
                operation = "restart",
                status = "drained",
                "drained for a restart: the jobs in flight have settled"
            );
            return Ok(Exit::Restart);
        }
        Ok(Exit::Stopped)
    }
}

/// Why [`Worker::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Its shutdown was cancelled.
    Stopped,
    /// An admin asked for a restart (`POST /api/v1/tickets/workers/{id}/restart`):
    /// it drained, and its supervisor should start it again (`csp serve
    /// tickets-worker` exits with [`Exit::RESTART_CODE`]; `csp dev` builds and
    /// runs a new worker in the process).
    Restart,
}

impl Exit {
    /// The exit status of `csp serve tickets-worker` after a restart was
    /// asked for: 75 (`EX_TEMPFAIL`, "try again"). Docker's `restart:
    /// unless-stopped` and Kubernetes' `restartPolicy: Always` start the
    /// process again after any exit; being non-zero, so do supervisors
    /// that restart on failure only (systemd's `Restart=on-failure`).
    pub const RESTART_CODE: u8 = 75;
}
