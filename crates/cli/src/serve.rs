//! `csp serve <service>`: one service against Postgres, Redis and NATS, as
//! a deployment runs it; and `csp mock-llm`.

use crate::opts::{
    GatewayOpts, ModelOpts, PolicyOpts, PoolOpts, PoolWiring, SecretKeyOpts, TokenOpts, Upstreams,
};
use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Args, Clone)]
pub(crate) struct Backends {
    /// Postgres URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = crate::opts::secret)]
    database_url: Option<SecretString>,
    /// Redis URL.
    #[arg(
        long,
        env = "CSP_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    redis_url: String,
    /// Prefix of every Redis key (several deployments can share a server).
    #[arg(long, env = "CSP_REDIS_PREFIX", default_value = "csp:")]
    redis_prefix: String,
    /// NATS URL.
    #[arg(
        long,
        env = "CSP_NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true
    )]
    nats_url: String,
    /// Prefix of the JetStream stream and subjects.
    #[arg(long, env = "CSP_NATS_PREFIX", default_value = "csp")]
    nats_prefix: String,
}

impl Backends {
    /// The backend URLs, whose passwords agent output must not carry.
    pub(crate) fn urls(&self) -> Vec<&str> {
        use secrecy::ExposeSecret;
        let mut urls = vec![self.redis_url.as_str(), self.nats_url.as_str()];
        urls.extend(self.database_url.as_ref().map(|u| u.expose_secret()));
        urls
    }

    pub(crate) async fn store(&self) -> anyhow::Result<Arc<csp_store::PgStore>> {
        use secrecy::ExposeSecret;
        let url = self
            .database_url
            .as_ref()
            .map(|u| u.expose_secret())
            .context("DATABASE_URL is required (postgres://user:password@host:5432/db)")?;
        Ok(Arc::new(csp_store::PgStore::connect(url).await?))
    }

    async fn bus(&self) -> anyhow::Result<Arc<dyn csp_bus::EventBus>> {
        Ok(Arc::new(
            csp_bus::NatsBus::connect(csp_bus::nats::Config {
                url: self.nats_url.clone(),
                prefix: self.nats_prefix.clone(),
                ..Default::default()
            })
            .await?,
        ))
    }

    async fn queue(&self) -> anyhow::Result<Arc<dyn csp_bus::Queue>> {
        Ok(Arc::new(
            csp_bus::NatsQueue::connect(csp_bus::queue::nats::Config {
                url: self.nats_url.clone(),
                prefix: self.nats_prefix.clone(),
                ..Default::default()
            })
            .await?,
        ))
    }

    async fn cache(&self) -> anyhow::Result<Arc<dyn csp_cache::Cache>> {
        Ok(Arc::new(
            csp_cache::RedisCache::connect(&self.redis_url, &self.redis_prefix).await?,
        ))
    }
}

#[derive(Subcommand)]
// Parsed once at startup: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Service {
    /// Web app, REST, WebSockets, /metrics.
    Gateway {
        #[arg(long, env = "CSP_HTTP_ADDR", default_value = "0.0.0.0:8080")]
        http_addr: SocketAddr,
        #[arg(
            long,
            env = "CSP_SESSION_POOL_ADDR",
            default_value = "http://127.0.0.1:50051"
        )]
        session_pool_addr: String,
        #[arg(
            long,
            env = "CSP_POLICY_ADDR",
            default_value = "http://127.0.0.1:50052"
        )]
        policy_addr: String,
        /// The plugins service: plugin registry and MCP servers.
        #[arg(
            long,
            env = "CSP_PLUGINS_ADDR",
            default_value = "http://127.0.0.1:50053"
        )]
        plugins_addr: String,
        /// The session-pool's shutdown grace (s), told to browsers when a
        /// shutdown begins; set it to the session-pool's
        /// `SHUTDOWN_GRACE_SECONDS`.
        #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = DEFAULT_SHUTDOWN_NOTICE_SECONDS)]
        shutdown_grace_seconds: u64,
        #[command(flatten)]
        tokens: TokenOpts,
        #[command(flatten)]
        gateway: GatewayOpts,
        #[command(flatten)]
        model: ModelOpts,
        #[command(flatten)]
        backends: Backends,
    },
    /// Agent processes: pre-warm pool, turns, session events.
    SessionPool {
        #[arg(long, env = "CSP_GRPC_ADDR", default_value = "0.0.0.0:50051")]
        grpc_addr: SocketAddr,
        /// How gateways reach this replica (default: http://<bound address>).
        #[arg(long, env = "CSP_ADVERTISE_ADDR")]
        advertise_addr: Option<String>,
        #[arg(long, env = "CSP_DATA_DIR", default_value = "/var/lib/csp")]
        data_dir: PathBuf,
        /// HTTP address of /metrics and the liveness probe.
        #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:9091")]
        metrics_addr: SocketAddr,
        /// The policy service: tool permissions and cost caps.
        #[arg(
            long,
            env = "CSP_POLICY_ADDR",
            default_value = "http://127.0.0.1:50052"
        )]
        policy_addr: String,
        /// The plugins service: plugin registry and MCP servers.
        #[arg(
            long,
            env = "CSP_PLUGINS_ADDR",
            default_value = "http://127.0.0.1:50053"
        )]
        plugins_addr: String,
        #[command(flatten)]
        tokens: TokenOpts,
        #[command(flatten)]
        pool: PoolOpts,
        #[command(flatten)]
        model: ModelOpts,
        #[command(flatten)]
        backends: Backends,
    },
    /// Users, login, roles, tool permissions, cost caps, audit log.
    Policy {
        #[arg(long, env = "CSP_GRPC_ADDR", default_value = "0.0.0.0:50052")]
        grpc_addr: SocketAddr,
        /// Password of the `admin` account created when there is none.
        #[arg(long, env = "CSP_ADMIN_PASSWORD", hide_env_values = true, value_parser = crate::opts::secret)]
        admin_password: Option<SecretString>,
        /// HTTP address of /metrics and the liveness probe.
        #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:9092")]
        metrics_addr: SocketAddr,
        /// The plugins service: plugin registry and MCP servers.
        #[arg(
            long,
            env = "CSP_PLUGINS_ADDR",
            default_value = "http://127.0.0.1:50053"
        )]
        plugins_addr: String,
        #[command(flatten)]
        tokens: TokenOpts,
        #[command(flatten)]
        policy: PolicyOpts,
        #[command(flatten)]
        backends: Backends,
    },
    /// Plugin registry (PLUGINS_DIR, hot rescan), activation, configuration
    /// and encrypted plugin secrets.
    Plugins {
        #[arg(long, env = "CSP_GRPC_ADDR", default_value = "0.0.0.0:50053")]
        grpc_addr: SocketAddr,
        /// HTTP address of /metrics and the liveness probe.
        #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:9093")]
        metrics_addr: SocketAddr,
        /// One directory per plugin, each with a plugin.json.
        #[arg(long, env = "CSP_PLUGINS_DIR", default_value = "/var/lib/csp/plugins")]
        plugins_dir: PathBuf,
        #[command(flatten)]
        keys: SecretKeyOpts,
        #[command(flatten)]
        tokens: TokenOpts,
        #[command(flatten)]
        backends: Backends,
    },
}

impl Service {
    /// `service.name` of its spans.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Service::Gateway { .. } => "csp-gateway",
            Service::SessionPool { .. } => "csp-session-pool",
            Service::Policy { .. } => "csp-policy",
            Service::Plugins { .. } => "csp-plugins",
        }
    }
}

pub(crate) async fn run(service: Service, shutdown: CancellationToken) -> anyhow::Result<()> {
    match service {
        Service::Gateway {
            http_addr,
            session_pool_addr,
            policy_addr,
            plugins_addr,
            shutdown_grace_seconds,
            tokens,
            gateway,
            model,
            backends,
        } => {
            let t = tokens.tokens(tokens.required_secret()?)?;
            // Every browser socket subscribes to its session's events: fan
            // them out in-process so the gateway holds one JetStream
            // consumer per session, not one per socket.
            let bus = csp_bus::FanoutBus::new(backends.bus().await?, Default::default())?;
            let server = csp_gateway::Server::build(
                gateway.config(
                    http_addr,
                    Upstreams {
                        session_pool: session_pool_addr,
                        policy: policy_addr,
                        plugins: plugins_addr,
                    },
                    t,
                    model.label(),
                    shutdown_grace_seconds,
                ),
                Arc::new(bus),
                backends.cache().await?,
            )
            .await?;
            println!("csp gateway: listening on http://{}", server.local_addr());
            server.run(shutdown).await?;
        }
        Service::SessionPool {
            grpc_addr,
            advertise_addr,
            data_dir,
            metrics_addr,
            policy_addr,
            plugins_addr,
            tokens,
            pool,
            model,
            backends,
        } => {
            let t = tokens.tokens(tokens.required_secret()?)?;
            if !model.configured() {
                anyhow::bail!(
                    "no model API configured: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN), and ANTHROPIC_BASE_URL for a gateway or the scripted test server"
                );
            }
            let server = csp_session_pool::Server::build(
                pool.config(
                    grpc_addr,
                    advertise_addr,
                    data_dir,
                    &model,
                    PoolWiring {
                        model_env: model.env(),
                        model_label: model.label(),
                        governor: pool.governor(&policy_addr, &t)?,
                        audit: backends.queue().await?,
                        tokens: t.clone(),
                        plugins_addr,
                        // Issue 12: secrets redacted from agent output.
                        known_secrets: crate::opts::known_secrets(
                            tokens.jwt_secret.iter().chain(model.secrets()),
                            backends.urls(),
                        ),
                    },
                ),
                backends.bus().await?,
                backends.store().await?,
                backends.cache().await?,
            )
            .await?;
            // Probes and metrics stay up while sessions drain.
            let drained = server.drained();
            serve_metrics("session-pool", metrics_addr, &drained, server.probes()).await?;
            println!("csp session-pool: listening on {}", server.local_addr());
            server.run(shutdown).await?;
        }
        Service::Policy {
            grpc_addr,
            admin_password,
            metrics_addr,
            plugins_addr,
            tokens,
            policy,
            backends,
        } => {
            let t = tokens.tokens(tokens.required_secret()?)?;
            let store = backends.store().await?;
            if let Some(p) =
                csp_policy::bootstrap_admin(store.as_ref(), admin_password.as_ref()).await?
            {
                use secrecy::ExposeSecret;
                println!(
                    "csp policy: created 'admin' with password {} (shown once; set CSP_ADMIN_PASSWORD to choose it)",
                    p.expose_secret()
                );
            }
            let server = csp_policy::Server::build(
                policy.config(grpc_addr, t, plugins_addr)?,
                store,
                backends.queue().await?,
            )
            .await?;
            serve_metrics("policy", metrics_addr, &shutdown, server.probes()).await?;
            println!("csp policy: listening on {}", server.local_addr());
            server.run(shutdown).await?;
        }
        Service::Plugins {
            grpc_addr,
            metrics_addr,
            plugins_dir,
            keys,
            tokens,
            backends,
        } => {
            let t = tokens.tokens(tokens.required_secret()?)?;
            let keyring = keys.keyring()?;
            if keyring.is_none() {
                tracing::warn!(
                    "CSP_SECRET_KEY is not set: plugin settings marked secret cannot be saved"
                );
            }
            let server = csp_plugins::Server::build(
                csp_plugins::Config {
                    keyring,
                    ..csp_plugins::Config::new(grpc_addr, t, plugins_dir)
                },
                backends.store().await?,
                backends.queue().await?,
            )
            .await?;
            serve_metrics("plugins", metrics_addr, &shutdown, server.probes()).await?;
            println!("csp plugins: listening on {}", server.local_addr());
            server.run(shutdown).await?;
        }
    }
    Ok(())
}

/// What a standalone gateway tells browsers to expect; the session-pool's
/// own `SHUTDOWN_GRACE_SECONDS` default.
const DEFAULT_SHUTDOWN_NOTICE_SECONDS: u64 = 30;

/// Starts the `/metrics` listener of a gRPC service in the background.
async fn serve_metrics(
    service: &str,
    addr: SocketAddr,
    shutdown: &CancellationToken,
    probes: Arc<dyn csp_telemetry::Probes>,
) -> anyhow::Result<()> {
    let server = csp_telemetry::MetricsServer::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for /metrics (CSP_METRICS_ADDR)"))?;
    println!(
        "csp {service}: metrics on http://{}/metrics",
        server.local_addr()?
    );
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = server.run(shutdown, probes).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

#[derive(Args)]
pub(crate) struct MockLlmOptions {
    #[arg(long, env = "CSP_MOCK_LISTEN", default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    /// Rules file (JSON, see docs/mock-llm.md).
    #[arg(long, env = "CSP_MOCK_RULES")]
    rules: Option<PathBuf>,
    /// Answer 401 to requests without this key, like the real API.
    #[arg(long, env = "CSP_MOCK_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

pub(crate) async fn mock_llm(o: MockLlmOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let rules = match &o.rules {
        Some(p) => csp_mock_llm::Rules::from_path(p)?,
        None => csp_mock_llm::Rules::default(),
    };
    let mock = csp_mock_llm::MockLlm::start(csp_mock_llm::Options {
        addr: o.listen,
        rules,
        api_key: o.api_key,
    })
    .await?;
    println!("csp mock-llm: listening on {}", mock.base_url());
    shutdown.cancelled().await;
    mock.shutdown().await;
    Ok(())
}
