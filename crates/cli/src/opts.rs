//! Option groups shared by `csp dev` and `csp serve`: defaults, then flags,
//! then environment (clap reads both; a flag wins over its variable).

use crate::error::Error;
use clap::Args;
use clap::builder::TypedValueParser;
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Secrets are wrapped as soon as they are parsed, so no `Debug` or log line
/// can print them by accident.
pub(crate) fn secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s.to_owned()))
}

#[derive(Args, Clone)]
pub(crate) struct TokenOpts {
    /// HS256 secret shared by gateway and policy, at least 32 bytes.
    #[arg(long, env = "CSP_JWT_SECRET", hide_env_values = true, value_parser = secret)]
    pub(crate) jwt_secret: Option<SecretString>,
    /// Lifetime of a login, seconds.
    #[arg(long, env = "CSP_TOKEN_TTL_SECONDS", default_value_t = 43_200)]
    pub(crate) token_ttl_seconds: u64,
}

impl TokenOpts {
    pub(crate) fn tokens(&self, secret: SecretString) -> Result<csp_auth::Tokens, Error> {
        csp_auth::Tokens::new(&secret, Duration::from_secs(self.token_ttl_seconds))
            .map_err(Error::config)
    }

    /// `csp serve`'s tokens: the secret must be given, to be shared.
    pub(crate) fn required(&self) -> Result<csp_auth::Tokens, Error> {
        let secret = self.jwt_secret.clone().ok_or_else(|| {
            Error::config("CSP_JWT_SECRET is required (at least 32 random bytes, shared by gateway and policy)")
        })?;
        self.tokens(secret)
    }
}

#[derive(Args, Clone)]
pub(crate) struct ModelOpts {
    /// Anthropic API key given to the agents.
    #[arg(long, env = "ANTHROPIC_API_KEY", hide_env_values = true, value_parser = secret)]
    pub(crate) anthropic_api_key: Option<SecretString>,
    /// Bearer token alternative to the API key.
    #[arg(long, env = "ANTHROPIC_AUTH_TOKEN", hide_env_values = true, value_parser = secret)]
    pub(crate) anthropic_auth_token: Option<SecretString>,
    /// Model API endpoint (default: Anthropic's).
    #[arg(long, env = "ANTHROPIC_BASE_URL")]
    pub(crate) anthropic_base_url: Option<String>,
    /// Model for every session (default: the CLI's default).
    #[arg(long, env = "CSP_MODEL")]
    pub(crate) model: Option<String>,
}

impl ModelOpts {
    pub(crate) fn configured(&self) -> bool {
        self.anthropic_api_key.is_some()
            || self.anthropic_auth_token.is_some()
            || self.anthropic_base_url.is_some()
    }

    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(v) = &self.anthropic_base_url {
            env.push(("ANTHROPIC_BASE_URL".into(), v.clone()));
        }
        // Exposed only here, into the agent's environment, which the CLI needs.
        if let Some(v) = &self.anthropic_api_key {
            env.push(("ANTHROPIC_API_KEY".into(), v.expose_secret().to_owned()));
        }
        if let Some(v) = &self.anthropic_auth_token {
            env.push(("ANTHROPIC_AUTH_TOKEN".into(), v.expose_secret().to_owned()));
        }
        env
    }

    /// The model credentials, for [`known_secrets`].
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        [&self.anthropic_api_key, &self.anthropic_auth_token]
            .into_iter()
            .flatten()
    }

    pub(crate) fn label(&self) -> String {
        self.model
            .clone()
            .unwrap_or_else(|| "Claude (default model)".into())
    }
}

#[derive(Args, Clone)]
pub(crate) struct PoolOpts {
    /// Ready agent processes kept waiting.
    #[arg(long, env = "PREWARM_POOL_SIZE", default_value_t = 2)]
    pub(crate) prewarm_pool_size: usize,
    /// Sessions this replica runs at most (warm processes included).
    #[arg(long, env = "MAX_SESSIONS", default_value_t = 10)]
    pub(crate) max_sessions: usize,
    /// Live sessions one user holds on this replica at most; opening another
    /// suspends their least recently detached idle one (at least 1).
    #[arg(long, env = "MAX_SESSIONS_PER_USER", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub(crate) max_sessions_per_user: usize,
    /// Path of the Claude Code CLI (default: the one scripts/setup.sh installs).
    #[arg(long, env = "CLAUDE_CLI")]
    pub(crate) claude_cli: Option<PathBuf>,
    /// System prompt of every session.
    #[arg(long, env = "CSP_SYSTEM_PROMPT", default_value = "")]
    pub(crate) system_prompt: String,
    /// Deadline of each call to the policy service (tool permission, turn
    /// admission); past it a tool call is denied, a message refused (ms).
    #[arg(long, env = "CSP_POLICY_TIMEOUT_MS", default_value_t = 5_000)]
    pub(crate) policy_timeout_ms: u64,
    /// Per model API request, including waiting for headers (ms).
    #[arg(long, env = "CSP_API_TIMEOUT_MS", default_value_t = 120_000)]
    pub(crate) api_timeout_ms: u64,
    /// Abort a model stream silent for this long (ms; the CLI clamps to >= 10 s).
    #[arg(long, env = "CSP_STREAM_IDLE_TIMEOUT_MS", default_value_t = 30_000)]
    pub(crate) stream_idle_timeout_ms: u64,
    /// Model API retries before a turn fails.
    #[arg(long, env = "CSP_MAX_RETRIES", default_value_t = 3)]
    pub(crate) max_retries: u32,
    /// A permission decision not made by then denies the tool call (ms).
    #[arg(long, env = "CSP_PERMISSION_TIMEOUT_MS", default_value_t = 30_000)]
    pub(crate) permission_timeout_ms: u64,
    /// On SIGTERM, how long turns in flight may run on before their
    /// processes are stopped (s).
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub(crate) shutdown_grace_seconds: u64,
    /// A session's process ends after this long (s); a warning comes at 90 %.
    #[arg(long, env = "SESSION_MAX_DURATION_SECONDS", default_value_t = 4 * 3600)]
    pub(crate) session_max_duration_seconds: u64,
    /// Memory of a session's whole process tree before it is restarted (bytes).
    #[arg(long, env = "SESSION_MAX_RSS_BYTES", default_value_t = 4 << 30)]
    pub(crate) session_max_rss_bytes: u64,
    /// With no browser attached this long, a session's process stops; the
    /// session resumes when reopened (s).
    #[arg(long, env = "SESSION_IDLE_TIMEOUT_SECONDS", default_value_t = 30 * 60)]
    pub(crate) session_idle_timeout_seconds: u64,
    /// A turn with no model output (and no tool running) this long is stopped (s).
    #[arg(long, env = "CSP_TURN_STALL_SECONDS", default_value_t = 180)]
    pub(crate) turn_stall_seconds: u64,
    /// How often each session's limits are checked (ms).
    #[arg(long, env = "CSP_LIMIT_CHECK_MS", default_value_t = 5_000)]
    pub(crate) limit_check_ms: u64,
    /// A tool's output is stored and sent cut to this many bytes, with a
    /// marker naming its full size (1024 to 524288).
    #[arg(long, env = "CSP_TOOL_OUTPUT_MAX_BYTES", default_value_t = csp_session_pool::DEFAULT_TOOL_OUTPUT_MAX_BYTES)]
    pub(crate) tool_output_max_bytes: usize,
    /// How often zombie processes are looked for (s).
    #[arg(long, env = "CSP_REAPER_INTERVAL_SECONDS", default_value_t = 60)]
    pub(crate) reaper_interval_seconds: u64,
    /// Model API failures within the window that open the circuit.
    #[arg(long, env = "CSP_BREAKER_FAILURES", default_value_t = 5)]
    pub(crate) breaker_failures: u32,
    /// The failure-counting window (s).
    #[arg(long, env = "CSP_BREAKER_WINDOW_SECONDS", default_value_t = 60)]
    pub(crate) breaker_window_seconds: u64,
    /// How long the circuit stays open before one probe is let through (s).
    #[arg(long, env = "CSP_BREAKER_OPEN_SECONDS", default_value_t = 60)]
    pub(crate) breaker_open_seconds: u64,
    /// How agents are confined: `bubblewrap` (each in its own sandbox that
    /// sees only its session) or `off` (unconfined: only on a machine that
    /// holds nothing else).
    #[arg(long, env = "CSP_AGENT_SANDBOX", value_enum, default_value_t = SandboxMode::Bubblewrap)]
    pub(crate) agent_sandbox: SandboxMode,
    /// The bubblewrap program.
    #[arg(long, env = "CSP_AGENT_SANDBOX_BWRAP", default_value = "bwrap")]
    pub(crate) agent_sandbox_bwrap: PathBuf,
    /// The socat program (forwards the proxies into the sandbox).
    #[arg(long, env = "CSP_AGENT_SANDBOX_SOCAT", default_value = "socat")]
    pub(crate) agent_sandbox_socat: PathBuf,
    /// More paths agents may read (colon-separated), e.g. a Node.js
    /// installed outside /usr.
    #[arg(long, env = "CSP_AGENT_SANDBOX_READ_ONLY", value_delimiter = ':')]
    pub(crate) agent_sandbox_read_only: Vec<PathBuf>,
}

/// `CSP_AGENT_SANDBOX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SandboxMode {
    Bubblewrap,
    Off,
}

impl PoolOpts {
    /// The session-pool's config; `model_env` is what the agent is given to
    /// reach its model (the real API, or `csp dev`'s scripted one).
    pub(crate) fn config(
        &self,
        grpc_addr: std::net::SocketAddr,
        advertise_addr: Option<String>,
        data_dir: PathBuf,
        model: &ModelOpts,
        wiring: PoolWiring,
    ) -> csp_session_pool::Config {
        let PoolWiring {
            governor,
            audit,
            tokens,
            model_env,
            model_label,
            plugins_addr,
            tickets_addr,
            known_secrets,
        } = wiring;
        let mut agent = csp_agent::Config {
            model: model.model.clone(),
            system_prompt: self.system_prompt.clone(),
            api_timeout: Duration::from_millis(self.api_timeout_ms),
            byte_stream_idle_timeout: Duration::from_millis(self.stream_idle_timeout_ms),
            max_retries: self.max_retries,
            permission_timeout: Duration::from_millis(self.permission_timeout_ms),
            env: model_env,
            ..csp_agent::Config::default()
        };
        agent.sandbox = match self.agent_sandbox {
            SandboxMode::Off => csp_agent::Sandbox::Off,
            SandboxMode::Bubblewrap => csp_agent::Sandbox::Bubblewrap(csp_agent::Bubblewrap {
                bwrap: self.agent_sandbox_bwrap.clone(),
                socat: self.agent_sandbox_socat.clone(),
                read_only: self
                    .agent_sandbox_read_only
                    .iter()
                    .filter(|p| !p.as_os_str().is_empty())
                    .cloned()
                    .collect(),
            }),
        };
        if let Some(p) = &self.claude_cli {
            agent.cli_path = p.clone();
        }
        csp_session_pool::Config {
            grpc_addr,
            advertise_addr,
            prewarm_pool_size: self.prewarm_pool_size,
            max_sessions: self.max_sessions,
            max_sessions_per_user: self.max_sessions_per_user,
            data_dir,
            agent,
            governor,
            audit,
            tokens,
            model_label,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            limits: csp_session_pool::Limits {
                max_duration: Duration::from_secs(self.session_max_duration_seconds),
                max_rss_bytes: self.session_max_rss_bytes,
                idle_timeout: Duration::from_secs(self.session_idle_timeout_seconds),
                stall_timeout: Duration::from_secs(self.turn_stall_seconds),
                check_every: Duration::from_millis(self.limit_check_ms.max(10)),
                tool_output_max_bytes: self.tool_output_max_bytes,
                ..csp_session_pool::Limits::default()
            },
            breaker: csp_breaker::Config {
                failure_threshold: self.breaker_failures.max(1),
                window: Duration::from_secs(self.breaker_window_seconds.max(1)),
                open_for: Duration::from_secs(self.breaker_open_seconds.max(1)),
                ..csp_breaker::Config::default()
            },
            reaper_interval: Duration::from_secs(self.reaper_interval_seconds.max(1)),
            plugins_addr: Some(plugins_addr),
            tickets_addr: Some(tickets_addr),
            known_secrets,
        }
    }

    /// The permission gate and cost caps of the pool: the policy service at
    /// `policy_addr`, called as the service `session-pool`.
    pub(crate) fn governor(
        &self,
        policy_addr: &str,
        tokens: &csp_auth::Tokens,
    ) -> Result<Arc<dyn csp_session_pool::Governor>, Error> {
        Ok(Arc::new(csp_session_pool::PolicyGovernor::new(
            csp_rpc::channel(policy_addr).map_err(Error::config)?,
            csp_rpc::ServiceToken::new(tokens.clone(), "session-pool"),
            Duration::from_millis(self.policy_timeout_ms.max(100)),
        )))
    }
}

/// What a session-pool is connected to besides its backends.
pub(crate) struct PoolWiring {
    pub(crate) governor: Arc<dyn csp_session_pool::Governor>,
    pub(crate) audit: Arc<dyn csp_bus::Queue>,
    pub(crate) tokens: csp_auth::Tokens,
    /// Environment of the agents that points them at the model.
    pub(crate) model_env: Vec<(String, String)>,
    pub(crate) model_label: String,
    /// The plugins service: the MCP servers sessions start with.
    pub(crate) plugins_addr: String,
    /// The tickets service: what the built-in ticket tools read.
    pub(crate) tickets_addr: String,
    /// The secrets this process holds, redacted from agent output
    /// ([`known_secrets`]).
    pub(crate) known_secrets: csp_redact::KnownSecrets,
}

/// Variables that hold csp's own secrets. A process knows them when they
/// are in its environment even if it does not use them itself (a
/// deployment often gives every service the same secret set).
const SECRET_VARS: &[&str] = &[
    "CSP_JWT_SECRET",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CSP_SECRET_KEY",
    "CSP_SECRET_KEY_PREVIOUS",
    "CSP_ADMIN_PASSWORD",
    "CSP_METRICS_TOKEN",
    "CSP_ENHANCE_API_KEY",
    "OPENROUTER_API_KEY",
];

/// Variables holding URLs whose passwords are secret.
const SECRET_URL_VARS: &[&str] = &["DATABASE_URL", "CSP_REDIS_URL", "CSP_NATS_URL"];

/// The platform secrets agents' output must never carry: `held` (what this
/// process was given or generated: the JWT secret, the model key, an admin
/// password…), the passwords in `urls`, and whatever of [`SECRET_VARS`] and
/// [`SECRET_URL_VARS`] the environment holds.
pub(crate) fn known_secrets<'a>(
    held: impl IntoIterator<Item = &'a SecretString>,
    urls: impl IntoIterator<Item = &'a str>,
) -> csp_redact::KnownSecrets {
    let mut values: Vec<String> = held
        .into_iter()
        .map(|s| s.expose_secret().to_owned())
        .collect();
    values.extend(SECRET_VARS.iter().filter_map(|v| std::env::var(v).ok()));
    let env_urls: Vec<String> = SECRET_URL_VARS
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .collect();
    for url in urls {
        values.extend(csp_redact::url_secrets(url));
    }
    for url in &env_urls {
        values.extend(csp_redact::url_secrets(url));
    }
    csp_redact::KnownSecrets::new(values)
}

#[derive(Args, Clone)]
pub(crate) struct PolicyOpts {
    /// `Tool=role` overrides of the permission gate's defaults, comma
    /// separated; role is admin, operator, user or disabled; `*` and
    /// `mcp__*` set the default of unlisted built-in and MCP tools.
    #[arg(long, env = "CSP_TOOL_ROLES", default_value = "")]
    pub(crate) tool_roles: String,
    /// Budget set aside per turn until its cost is known (USD); bounds how
    /// far concurrent turns can overshoot a cap.
    #[arg(long, env = "CSP_TURN_RESERVE_USD", default_value_t = 0.25)]
    pub(crate) turn_reserve_usd: f64,
    /// Budget months start at midnight at this UTC offset (`+00:00`, `-05:00`).
    #[arg(long, env = "CSP_BUDGET_UTC_OFFSET", default_value = "+00:00")]
    pub(crate) budget_utc_offset: String,
    /// Password hashes computed at once (each holds about 19 MiB while it
    /// runs); more logins wait. Default: one per core.
    #[arg(long, env = "CSP_PASSWORD_HASH_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) password_hash_concurrency: Option<u16>,
}

impl PolicyOpts {
    pub(crate) fn config(
        &self,
        grpc_addr: std::net::SocketAddr,
        tokens: csp_auth::Tokens,
        plugins_addr: String,
    ) -> Result<csp_policy::Config, Error> {
        let tools = csp_policy::ToolRoles::parse(&self.tool_roles).map_err(Error::Config)?;
        if !(self.turn_reserve_usd.is_finite() && self.turn_reserve_usd > 0.0) {
            return Err(Error::Config(format!(
                "CSP_TURN_RESERVE_USD must be a positive number of dollars, got {}",
                self.turn_reserve_usd
            )));
        }
        let format =
            time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
        let month_offset =
            time::UtcOffset::parse(&self.budget_utc_offset, &format).map_err(|_| {
                Error::Config(format!(
                    "CSP_BUDGET_UTC_OFFSET must look like +00:00 or -05:30, got '{}'",
                    self.budget_utc_offset
                ))
            })?;
        Ok(csp_policy::Config {
            grpc_addr,
            tokens,
            tools,
            budget: csp_policy::BudgetConfig {
                turn_reserve_usd: self.turn_reserve_usd,
                month_offset,
                ..Default::default()
            },
            clock: Arc::new(csp_policy::SystemClock),
            plugins_addr: Some(plugins_addr),
            hash_concurrency: self
                .password_hash_concurrency
                .map_or_else(csp_policy::default_hash_concurrency, usize::from),
        })
    }
}

#[derive(Args, Clone)]
pub(crate) struct GatewayOpts {
    /// Comma-separated origins allowed to open WebSockets (default: own origin).
    #[arg(long, env = "CSP_ALLOWED_ORIGINS", default_value = "")]
    pub(crate) allowed_origins: String,
    /// The built web app (default: web/dist of this checkout).
    #[arg(long, env = "CSP_WEB_DIR")]
    pub(crate) web_dir: Option<PathBuf>,
    /// Mark the session cookie Secure (behind HTTPS).
    #[arg(long, env = "CSP_COOKIE_SECURE", default_value_t = false)]
    pub(crate) cookie_secure: bool,
    /// Largest client WebSocket frame accepted (bytes).
    #[arg(long, env = "CSP_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub(crate) max_frame_bytes: usize,
    /// Frames queued per browser before it is disconnected as too slow.
    #[arg(long, env = "CSP_WS_SEND_QUEUE", default_value_t = 1024)]
    pub(crate) ws_send_queue: usize,
    /// Bytes queued per browser before it is disconnected as too slow (a
    /// tool result can be a few hundred KiB; one larger frame still goes
    /// when nothing else waits).
    #[arg(long, env = "CSP_WS_SEND_QUEUE_BYTES", default_value_t = 8 << 20)]
    pub(crate) ws_send_queue_bytes: usize,
    /// Bearer token a Prometheus scraper may use on `/metrics` (otherwise
    /// an operator's login is needed).
    #[arg(long, env = "CSP_METRICS_TOKEN", hide_env_values = true, value_parser = secret)]
    pub(crate) metrics_token: Option<SecretString>,
    /// Failed logins on one account within 15 minutes before each further
    /// attempt waits (429 with Retry-After).
    #[arg(long, env = "CSP_LOGIN_MAX_FAILURES_PER_ACCOUNT", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) login_max_failures_per_account: u32,
    /// Failed logins from one client address within 15 minutes before each
    /// further attempt from it waits.
    #[arg(long, env = "CSP_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) login_max_failures_per_address: u32,
    /// The first wait after too many failures (seconds); it doubles with
    /// each further failure.
    #[arg(long, env = "CSP_LOGIN_LOCKOUT_BASE_SECONDS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) login_lockout_base_seconds: u64,
    /// The longest wait (seconds).
    #[arg(long, env = "CSP_LOGIN_LOCKOUT_MAX_SECONDS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) login_lockout_max_seconds: u64,
    /// Take a login's client address from the last X-Forwarded-For entry
    /// (only behind a proxy that appends it).
    #[arg(long, env = "CSP_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub(crate) trust_forwarded_for: bool,
    /// The gateway's public base URL (`https://csp.example`), the start of
    /// every tenant's webhook_url (default: each request's own scheme and host).
    #[arg(long, env = "CSP_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
}

impl GatewayOpts {
    pub(crate) fn origins(&self) -> Vec<String> {
        self.allowed_origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect()
    }

    /// `--web-dir`, else `web/dist` under the working directory, else the
    /// checkout this binary was built from.
    pub(crate) fn web_dir(&self) -> Option<PathBuf> {
        if let Some(d) = &self.web_dir {
            return Some(d.clone());
        }
        let candidates = [
            PathBuf::from("web/dist"),
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/dist"),
        ];
        let found = candidates
            .into_iter()
            .find(|d| d.join("index.html").is_file());
        if found.is_none() {
            tracing::warn!(
                "the web app is not built (no web/dist/index.html): run scripts/setup.sh; serving the API only"
            );
        }
        found
    }

    pub(crate) fn config(
        &self,
        http_addr: std::net::SocketAddr,
        upstreams: Upstreams,
        tokens: csp_auth::Tokens,
        model_label: String,
        shutdown_grace_seconds: u64,
    ) -> csp_gateway::Config {
        csp_gateway::Config {
            http_addr,
            session_pool_addr: upstreams.session_pool,
            policy_addr: upstreams.policy,
            plugins_addr: upstreams.plugins,
            tickets_addr: upstreams.tickets,
            public_url: self.public_url.clone().filter(|u| !u.trim().is_empty()),
            tokens,
            metrics_token: self.metrics_token.clone(),
            allowed_origins: self.origins(),
            login_limits: csp_gateway::LoginLimits {
                account_failures: self.login_max_failures_per_account,
                address_failures: self.login_max_failures_per_address,
                lockout_base: std::time::Duration::from_secs(self.login_lockout_base_seconds),
                lockout_max: std::time::Duration::from_secs(
                    self.login_lockout_max_seconds
                        .max(self.login_lockout_base_seconds),
                ),
                ..Default::default()
            },
            trust_forwarded_for: self.trust_forwarded_for,
            web_dir: self.web_dir(),
            model_label,
            cookie_secure: self.cookie_secure,
            max_frame_bytes: self.max_frame_bytes,
            send_queue: self.ws_send_queue,
            send_queue_bytes: self.ws_send_queue_bytes,
            shutdown_grace_seconds,
        }
    }
}

/// Declares the option group of one upstream service's address, so every
/// service that calls it takes the same flag, variable and default.
macro_rules! upstream {
    ($(#[$meta:meta])* $group:ident { $field:ident, $env:literal, $default:literal }) => {
        #[derive(Args, Clone)]
        pub(crate) struct $group {
            $(#[$meta])*
            #[arg(long, env = $env, default_value = $default)]
            pub(crate) $field: String,
        }
    };
}

upstream! {
    /// The session-pool (any replica): takes new sessions, answers reads.
    SessionPoolAddr { session_pool_addr, "CSP_SESSION_POOL_ADDR", "http://127.0.0.1:50051" }
}
upstream! {
    /// The policy service: tool permissions and cost caps.
    PolicyAddr { policy_addr, "CSP_POLICY_ADDR", "http://127.0.0.1:50052" }
}
upstream! {
    /// The plugins service: plugin registry and MCP servers.
    PluginsAddr { plugins_addr, "CSP_PLUGINS_ADDR", "http://127.0.0.1:50053" }
}
upstream! {
    /// The tickets service (any replica): tenants, webhook intake,
    /// enhancement history.
    TicketsAddr { tickets_addr, "CSP_TICKETS_ADDR", "http://127.0.0.1:50054" }
}

/// The services a gateway talks to (`http://host:port` each).
pub(crate) struct Upstreams {
    pub(crate) session_pool: String,
    pub(crate) policy: String,
    pub(crate) plugins: String,
    pub(crate) tickets: String,
}

#[derive(Args, Clone)]
pub(crate) struct SecretKeyOpts {
    /// Fernet key that encrypts plugin secrets (url-safe base64 of 32
    /// bytes; `csp secrets generate-key` makes one).
    #[arg(long, env = "CSP_SECRET_KEY", hide_env_values = true, value_parser = secret)]
    pub(crate) secret_key: Option<SecretString>,
    /// The key before a rotation: still accepted for reading until
    /// `csp secrets rotate` has re-encrypted everything.
    #[arg(long, env = "CSP_SECRET_KEY_PREVIOUS", hide_env_values = true, value_parser = secret)]
    pub(crate) secret_key_previous: Option<SecretString>,
}

impl SecretKeyOpts {
    /// The keyring, or `None` without `CSP_SECRET_KEY`.
    pub(crate) fn keyring(&self) -> Result<Option<csp_secrets::Keyring>, Error> {
        let Some(current) = &self.secret_key else {
            if self.secret_key_previous.is_some() {
                return Err(Error::config(
                    "CSP_SECRET_KEY_PREVIOUS is set without CSP_SECRET_KEY",
                ));
            }
            return Ok(None);
        };
        let current = csp_secrets::SecretKey::parse(current.expose_secret())
            .map_err(|e| Error::Config(format!("CSP_SECRET_KEY: {e}")))?;
        let previous = match &self.secret_key_previous {
            Some(p) => vec![
                csp_secrets::SecretKey::parse(p.expose_secret())
                    .map_err(|e| Error::Config(format!("CSP_SECRET_KEY_PREVIOUS: {e}")))?,
            ],
            None => Vec::new(),
        };
        Ok(Some(csp_secrets::Keyring::new(current, previous)))
    }
}

/// Where an offline tool (`csp audit verify`, `csp secrets rotate`) finds
/// the database: a deployment's Postgres, else the `csp dev` SQLite file.
#[derive(Args)]
pub(crate) struct StoreLocation {
    /// Postgres URL of a deployment; without it, the `csp dev` database in
    /// CSP_DATA_DIR.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = secret)]
    database_url: Option<SecretString>,
    /// The `csp dev` data directory.
    #[arg(long, env = "CSP_DATA_DIR", default_value = ".csp/dev")]
    data_dir: PathBuf,
}

impl StoreLocation {
    /// The `csp dev` data directory, when the store is its SQLite file (no
    /// `DATABASE_URL`): it also keeps that `csp dev`'s secret key.
    pub(crate) fn dev_data_dir(&self) -> Option<&std::path::Path> {
        self.database_url
            .is_none()
            .then_some(self.data_dir.as_path())
    }

    pub(crate) async fn open(&self) -> anyhow::Result<Box<dyn csp_store::Store>> {
        use anyhow::Context;
        Ok(match &self.database_url {
            Some(url) => Box::new(csp_store::PgStore::connect(url.expose_secret()).await?),
            None => {
                let path = self.data_dir.join("csp.db");
                anyhow::ensure!(
                    path.is_file(),
                    "no database at {} (set DATABASE_URL or CSP_DATA_DIR)",
                    path.display()
                );
                Box::new(
                    csp_store::SqliteStore::open(&path)
                        .await
                        .with_context(|| format!("opening {}", path.display()))?,
                )
            }
        })
    }
}

#[derive(Args, Clone)]
pub(crate) struct TicketsOpts {
    /// New-ticket webhooks one tenant may send per minute; more get 429.
    #[arg(long, env = "CSP_TICKETS_WEBHOOK_RATE_LIMIT", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) tickets_webhook_rate_limit: u64,
    /// How long a replica reuses a tenant's decrypted configuration (s);
    /// a change reaches every replica at once anyway.
    #[arg(long, env = "CSP_TICKETS_CONFIG_TTL_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) tickets_config_ttl_seconds: u64,
    /// How often jobs recorded but never queued are queued again, and
    /// `queue_depth` is counted (s).
    #[arg(long, env = "CSP_TICKETS_SWEEP_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) tickets_sweep_seconds: u64,
}

impl TicketsOpts {
    pub(crate) fn config(
        &self,
        grpc_addr: std::net::SocketAddr,
        tokens: csp_auth::Tokens,
        keyring: Option<csp_secrets::Keyring>,
    ) -> csp_tickets::Config {
        csp_tickets::Config {
            keyring,
            webhook_rate_limit: self.tickets_webhook_rate_limit,
            config_ttl: Duration::from_secs(self.tickets_config_ttl_seconds),
            sweep_every: Duration::from_secs(self.tickets_sweep_seconds),
            ..csp_tickets::Config::new(grpc_addr, tokens)
        }
    }
}

#[derive(Args, Clone)]
pub(crate) struct TicketsWorkerOpts {
    /// Enhancement jobs one worker runs at once.
    #[arg(long, env = "CSP_TICKETS_WORKER_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024).map(|n| n as usize))]
    pub(crate) tickets_worker_concurrency: usize,
    /// Jobs of one tenant one worker runs at once, so a burst from one
    /// tenant cannot take every slot.
    #[arg(long, env = "CSP_TICKETS_TENANT_INFLIGHT", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024).map(|n| n as usize))]
    pub(crate) tickets_tenant_inflight: usize,
    /// The budget of one attempt of a job, everything included. An attempt
    /// holds its job for this and 30 s more: another delivery of the job
    /// meanwhile waits, and a job whose worker died is taken again once
    /// that lease has run out.
    #[arg(long, env = "CSP_TICKETS_ATTEMPT_TIMEOUT_SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) tickets_attempt_timeout_seconds: u64,
    #[command(flatten)]
    pub(crate) enhance: EnhanceOpts,
}

/// `CSP_ENHANCE_PROVIDER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EnhanceProvider {
    /// The Anthropic Messages API (the chat's `ANTHROPIC_BASE_URL` and key).
    Anthropic,
    /// An OpenAI-compatible chat-completions API, such as OpenRouter.
    Openai,
}

/// The model that writes enhancement notes.
#[derive(Args, Clone)]
pub(crate) struct EnhanceOpts {
    #[arg(long, env = "CSP_ENHANCE_PROVIDER", value_enum, default_value_t = EnhanceProvider::Anthropic)]
    pub(crate) enhance_provider: EnhanceProvider,
    /// The provider's base URL (anthropic: default `ANTHROPIC_BASE_URL`, else
    /// https://api.anthropic.com; openai: with its version path, default
    /// https://openrouter.ai/api/v1).
    #[arg(long, env = "CSP_ENHANCE_BASE_URL")]
    pub(crate) enhance_base_url: Option<String>,
    /// The provider's key (anthropic: default `ANTHROPIC_API_KEY`; openai:
    /// default `OPENROUTER_API_KEY`).
    #[arg(long, env = "CSP_ENHANCE_API_KEY", hide_env_values = true, value_parser = secret)]
    pub(crate) enhance_api_key: Option<SecretString>,
    #[arg(long, env = "OPENROUTER_API_KEY", hide_env_values = true, value_parser = secret)]
    pub(crate) openrouter_api_key: Option<SecretString>,
    /// The model (default: claude-sonnet-4-5, or anthropic/claude-sonnet-4.5
    /// on an OpenAI-compatible provider).
    #[arg(long, env = "CSP_ENHANCE_MODEL")]
    pub(crate) enhance_model: Option<String>,
    /// OpenRouter's `HTTP-Referer` header (your site).
    #[arg(long, env = "CSP_ENHANCE_REFERER")]
    pub(crate) enhance_referer: Option<String>,
    /// OpenRouter's `X-Title` header (your app's name).
    #[arg(long, env = "CSP_ENHANCE_TITLE")]
    pub(crate) enhance_title: Option<String>,
}

impl EnhanceOpts {
    /// The provider, given the chat's Anthropic endpoint and key (the
    /// default of the Anthropic provider); `None` when nothing is configured:
    /// every note is then the gathered context without analysis.
    pub(crate) fn provider(
        &self,
        anthropic_base_url: Option<&str>,
        anthropic_api_key: Option<&SecretString>,
    ) -> Result<Option<csp_enhance::ProviderConfig>, Error> {
        let non_empty = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        let base_url = non_empty(&self.enhance_base_url);
        let model = non_empty(&self.enhance_model);
        Ok(match self.enhance_provider {
            EnhanceProvider::Anthropic => {
                let base_url = base_url.or_else(|| anthropic_base_url.map(str::to_owned));
                let api_key = self
                    .enhance_api_key
                    .clone()
                    .or_else(|| anthropic_api_key.cloned());
                if base_url.is_none() && api_key.is_none() {
                    return Ok(None);
                }
                Some(csp_enhance::ProviderConfig::Anthropic {
                    base_url: base_url.unwrap_or_else(|| "https://api.anthropic.com".into()),
                    // A gateway named by its URL alone may take no key.
                    api_key: api_key.unwrap_or_else(|| SecretString::from(String::new())),
                    model: model.unwrap_or_else(|| "claude-sonnet-4-5".into()),
                })
            }
            EnhanceProvider::Openai => {
                let api_key = self
                    .enhance_api_key
                    .clone()
                    .or_else(|| self.openrouter_api_key.clone())
                    .ok_or_else(|| {
                        Error::config(
                            "CSP_ENHANCE_PROVIDER=openai needs CSP_ENHANCE_API_KEY (or OPENROUTER_API_KEY)",
                        )
                    })?;
                Some(csp_enhance::ProviderConfig::OpenAiCompatible {
                    base_url: base_url.unwrap_or_else(|| "https://openrouter.ai/api/v1".into()),
                    api_key,
                    model: model.unwrap_or_else(|| "anthropic/claude-sonnet-4.5".into()),
                    referer: non_empty(&self.enhance_referer),
                    title: non_empty(&self.enhance_title),
                })
            }
        })
    }
}

impl TicketsWorkerOpts {
    pub(crate) fn config(
        &self,
        provider: Option<csp_enhance::ProviderConfig>,
        keyring: Option<csp_secrets::Keyring>,
    ) -> csp_tickets_worker::Config {
        csp_tickets_worker::Config {
            concurrency: self.tickets_worker_concurrency,
            tenant_inflight: self.tickets_tenant_inflight,
            attempt_timeout: Duration::from_secs(self.tickets_attempt_timeout_seconds),
            provider,
            keyring,
            ..csp_tickets_worker::Config::default()
        }
    }
}
