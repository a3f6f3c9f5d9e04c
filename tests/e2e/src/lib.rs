//! Harness for end-to-end tests and benchmarks: starts the real `csp`
//! binary — as `csp dev`, or as separate gateway, session-pool, policy and
//! mock-llm processes against the machine's Postgres, Redis and NATS — and
//! drives it over HTTP and WebSockets like a browser would.
//!
//! Owns: process lifecycle and per-test isolation (a fresh database, Redis
//! key prefix and NATS stream per instance). Must never reach into a
//! service's internals: everything goes through the public surface.

mod tcp_proxy;
pub use tcp_proxy::TcpProxy;
pub mod backends;

use anyhow::{Context, Result, anyhow, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Password of the bootstrap admin in every test instance.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";
/// The model tests run with: priced at $3 / $15 per million input / output
/// tokens, so the scripted server's 100 in / 50 out cost exactly $0.00105.
pub const MODEL: &str = "claude-sonnet-4-5";
pub const COST_PER_CALL: f64 = 0.00105;
/// The HS256 secret of every test instance (tests sign their own tokens with it).
pub const JWT_SECRET: &str = "e2e-jwt-secret-that-is-long-enough-0123456789";
/// `CSP_SECRET_KEY` of every instance (a Fernet key; tests only).
pub const SECRET_KEY: &str = "9Ovzd5TFSI0cLzNvDKm1EiBDkbaoY9aQJk4ziRe0J4c=";

/// What the harness scrapes the gateway's `/metrics` with (`CSP_METRICS_TOKEN`).
pub const METRICS_TOKEN: &str = "e2e-metrics-scrape-token";

/// The `csp` binary under test: `CSP_BIN`, else this checkout's debug build.
pub fn csp_bin() -> PathBuf {
    std::env::var_os("CSP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/csp"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `csp dev`: one process, SQLite, in-process bus, in-memory cache.
    Dev,
    /// gateway, session-pool and policy as separate processes against real
    /// Postgres, Redis and NATS JetStream, with `csp mock-llm` as the model.
    Distributed,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub prewarm: usize,
    pub max_sessions: usize,
    /// Extra environment for every process, e.g. `CLAUDE_CLI` to run a
    /// different agent program. Later entries win.
    pub env: Vec<(String, String)>,
    /// The `csp` binary to run; `None` means [`csp_bin`].
    pub bin: Option<PathBuf>,
    /// Wait for the startup probe before [`Csp::start`] returns; `false`
    /// for tests of an instance that must never report started.
    pub await_startup: bool,
    /// Distributed mode: the `host:port` the session-pool reaches Postgres
    /// at instead of the real one (e.g. a proxy a test can cut).
    pub session_pool_db_addr: Option<String>,
    /// `CSP_PLUGINS_DIR`; `None`: an empty directory of the instance's own
    /// ([`Csp::plugins_dir`]).
    pub plugins_dir: Option<PathBuf>,
    /// Distributed mode: also run ticket enhancement, `csp serve tickets`
    /// (the gateway's `CSP_TICKETS_ADDR`) and `csp serve tickets-worker`
    /// (its model: the instance's `csp mock-llm`). `csp dev` always runs both.
    pub tickets: bool,
    /// Distributed mode: how many processes of every service (gateway,
    /// session-pool, policy, plugins, tickets, tickets-worker) to run. Above
    /// one, the first keeps the service's name and the others are
    /// `<name>-2`, `<name>-3`…; each addressed service gets a [`TcpProxy`]
    /// in front (its Kubernetes Service: [`Csp::proxy`]) that the others
    /// and [`Csp::base`] go through, while each session-pool advertises its
    /// own address for the routes of its sessions.
    pub replicas: usize,
    /// Distributed mode: the Postgres, Redis and NATS servers to use
    /// instead of `CSP_TEST_*`'s (e.g. [`backends::Backends`], which a
    /// bench kills and restarts).
    pub backends: Option<BackendUrls>,
}

/// Where a distributed instance finds its backends.
#[derive(Debug, Clone)]
pub struct BackendUrls {
    /// A database URL of a superuser that may `CREATE DATABASE`.
    pub database: String,
    pub redis: String,
    pub nats: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            prewarm: 1,
            max_sessions: 4,
            env: Vec::new(),
            bin: None,
            await_startup: true,
            session_pool_db_addr: None,
            plugins_dir: None,
            tickets: false,
            replicas: 1,
            backends: None,
        }
    }
}

struct Proc {
    name: &'static str,
    child: Child,
}

/// A running csp instance. Call [`Csp::stop`] at the end of a test to clean
/// up its database and stream; dropping it kills the processes.
pub struct Csp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub mode: Mode,
    bin: PathBuf,
    procs: Vec<Proc>,
    dir: tempfile::TempDir,
    db: Option<(String, String)>,
    nats_prefix: Option<String>,
    /// What each process printed before it was listening (e.g. its metrics URL).
    banners: Vec<(&'static str, String)>,
    /// How each process was started, to restart it.
    started: Vec<Launch>,
    mock: Option<String>,
    /// `CSP_PLUGINS_DIR` of every process.
    pub plugins_dir: PathBuf,
    /// The address each process said it listens on.
    addrs: Vec<(&'static str, String)>,
    /// The proxy in front of each replicated service, by service name.
    proxies: Vec<(&'static str, TcpProxy)>,
}

/// One process start: its name, arguments and environment.
type Launch = (&'static str, Vec<String>, Vec<(String, String)>);

/// A Postgres database of its own (on `CSP_TEST_DATABASE_URL`'s server),
/// for a benchmark that seeds and measures it: created by [`create`],
/// dropped by [`drop_now`] (or kept, for `EXPLAIN`, by not calling it).
///
/// [`create`]: ScratchDatabase::create
/// [`drop_now`]: ScratchDatabase::drop_now
pub struct ScratchDatabase {
    admin: sqlx::PgConnection,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// `<prefix>_<12 hex digits>`; `prefix` is the caller's constant.
    pub async fn create(prefix: &str) -> Result<Self> {
        let admin_url = test_db_url();
        let name = format!(
            "{prefix}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .context("connecting to Postgres")?;
        // `name` is the caller's constant and hex digits, never input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        let url = with_db(&admin_url, &name);
        Ok(Self { admin, name, url })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database, connections and all; a failure is only logged
    /// (a scratch database left behind is not worth failing a run for).
    pub async fn drop_now(mut self) {
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await
        {
            eprintln!("could not drop the scratch database {}: {e}", self.name);
        }
    }
}

fn test_db_url() -> String {
    std::env::var("CSP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_db(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, _)) => format!("{head}/{db}"),
        None => format!("{url}/{db}"),
    }
}

/// `host:port` of an address a process printed (`http://host:port/` or
/// `host:port`).
fn host_port(addr: &str) -> String {
    addr.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// `url` with its `host:port` replaced by `addr` (credentials kept).
fn with_host(url: &str, addr: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let userinfo = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{userinfo}{addr}/{path}")
}

impl Csp {
    pub async fn start(mode: Mode, opts: Options) -> Result<Csp> {
        let bin = opts.bin.clone().unwrap_or_else(csp_bin);
        if !bin.is_file() {
            bail!(
                "{} does not exist: build it first with `cargo build -p csp-cli` (or set CSP_BIN)",
                bin.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let plugins_dir = opts
            .plugins_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("plugins"));
        std::fs::create_dir_all(&plugins_dir)?;
        let mut csp = Csp {
            base: String::new(),
            mode,
            bin,
            procs: Vec::new(),
            dir,
            db: None,
            nats_prefix: None,
            banners: Vec::new(),
            started: Vec::new(),
            mock: None,
            plugins_dir: plugins_dir.clone(),
            addrs: Vec::new(),
            proxies: Vec::new(),
        };
        let mut env: Vec<(String, String)> = vec![
            ("CSP_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("CSP_JWT_SECRET".into(), JWT_SECRET.into()),
            ("CSP_METRICS_TOKEN".into(), METRICS_TOKEN.into()),
            ("CSP_SECRET_KEY".into(), SECRET_KEY.into()),
            ("CSP_PLUGINS_DIR".into(), plugins_dir.display().to_string()),
            ("CSP_MODEL".into(), MODEL.into()),
            ("PREWARM_POOL_SIZE".into(), opts.prewarm.to_string()),
            ("MAX_SESSIONS".into(), opts.max_sessions.to_string()),
            ("CSP_MAX_RETRIES".into(), "0".into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        env.extend(opts.env.iter().cloned());
        match mode {
            Mode::Dev => {
                let data = csp.dir.path().join("data");
                let url = csp
                    .spawn(
                        "dev",
                        &[
                            "dev",
                            "--listen",
                            "127.0.0.1:0",
                            "--data-dir",
                            data.to_str().unwrap(),
                        ],
                        &env,
                    )
                    .await?;
                csp.base = url.trim_end_matches('/').to_owned();
            }
            Mode::Distributed => {
                let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
                let db = format!("csp_e2e_{id}");
                let admin_url = match &opts.backends {
                    Some(b) => b.database.clone(),
                    None => test_db_url(),
                };
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
                    .await
                    .context("connecting to Postgres")?;
                // `db` is built from hex digits above, never from input.
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                    .execute(&mut conn)
                    .await?;
                csp.db = Some((admin_url.clone(), db.clone()));
                let prefix = format!("e2e{id}");
                csp.nats_prefix = Some(prefix.clone());
                env.push(("DATABASE_URL".into(), with_db(&admin_url, &db)));
                env.push(("CSP_REDIS_PREFIX".into(), format!("{prefix}:")));
                env.push(("CSP_NATS_PREFIX".into(), prefix));
                if let Ok(u) = std::env::var("CSP_TEST_REDIS_URL") {
                    env.push(("CSP_REDIS_URL".into(), u));
                }
                if let Ok(u) = std::env::var("CSP_TEST_NATS_URL") {
                    env.push(("CSP_NATS_URL".into(), u));
                }
                // Later entries win: a bench's own servers over CSP_TEST_*'s.
                if let Some(b) = &opts.backends {
                    env.push(("CSP_REDIS_URL".into(), b.redis.clone()));
                    env.push(("CSP_NATS_URL".into(), b.nats.clone()));
                }

                let mock = csp
                    .spawn("mock-llm", &["mock-llm", "--listen", "127.0.0.1:0"], &env)
                    .await?;
                csp.mock = Some(mock.clone());
                // Plugins first: it runs the migrations the others rely on,
                // and they follow its active set.
                let plugins = csp
                    .spawn_replicas(
                        "plugins",
                        &[
                            "serve",
                            "plugins",
                            "--grpc-addr",
                            "127.0.0.1:0",
                            "--metrics-addr",
                            "127.0.0.1:0",
                        ],
                        &env,
                        opts.replicas,
                    )
                    .await?;
                let plugins = format!("http://{plugins}");
                env.push(("CSP_PLUGINS_ADDR".into(), plugins));
                let policy = csp
                    .spawn_replicas(
                        "policy",
                        &[
                            "serve",
                            "policy",
                            "--grpc-addr",
                            "127.0.0.1:0",
                            "--metrics-addr",
                            "127.0.0.1:0",
                        ],
                        &env,
                        opts.replicas,
                    )
                    .await?;
                // Before the session-pool: its built-in ticket tools ask it.
                let tickets = match opts.tickets {
                    true => {
                        let addr = csp
                            .spawn_replicas(
                                "tickets",
                                &[
                                    "serve",
                                    "tickets",
                                    "--grpc-addr",
                                    "127.0.0.1:0",
                                    "--metrics-addr",
                                    "127.0.0.1:0",
                                ],
                                &env,
                                opts.replicas,
                            )
                            .await?;
                        Some(format!("http://{addr}"))
                    }
                    false => None,
                };
                let mut pool_env = env.clone();
                if let Some(tickets) = &tickets {
                    pool_env.push(("CSP_TICKETS_ADDR".into(), tickets.clone()));
                }
                pool_env.push(("ANTHROPIC_BASE_URL".into(), mock));
                pool_env.push(("ANTHROPIC_API_KEY".into(), "e2e-test-key".into()));
                if let Some(addr) = &opts.session_pool_db_addr {
                    pool_env.push((
                        "DATABASE_URL".into(),
                        with_host(&with_db(&admin_url, &db), addr),
                    ));
                }
                let data = csp.dir.path().join("agents");
                let pool = csp
                    .spawn_replicas(
                        "session-pool",
                        &[
                            "serve",
                            "session-pool",
                            "--grpc-addr",
                            "127.0.0.1:0",
                            "--data-dir",
                            data.to_str().unwrap(),
                            "--metrics-addr",
                            "127.0.0.1:0",
                            "--policy-addr",
                            &format!("http://{policy}"),
                        ],
                        &pool_env,
                        opts.replicas,
                    )
                    .await?;
                let mut gw_env = env.clone();
                gw_env.push(("CSP_MODEL".into(), MODEL.into()));
                if let Some(tickets) = &tickets {
                    gw_env.push(("CSP_TICKETS_ADDR".into(), tickets.clone()));
                    let mut worker_env = env.clone();
                    worker_env.push((
                        "ANTHROPIC_BASE_URL".into(),
                        csp.mock.clone().expect("mock-llm started"),
                    ));
                    worker_env.push(("ANTHROPIC_API_KEY".into(), "e2e-test-key".into()));
                    csp.spawn_replicas(
                        "tickets-worker",
                        &["serve", "tickets-worker", "--metrics-addr", "127.0.0.1:0"],
                        &worker_env,
                        opts.replicas,
                    )
                    .await?;
                }
                let gw = csp
                    .spawn_replicas(
                        "gateway",
                        &[
                            "serve",
                            "gateway",
                            "--http-addr",
                            "127.0.0.1:0",
                            "--session-pool-addr",
                            &format!("http://{pool}"),
                            "--policy-addr",
                            &format!("http://{policy}"),
                        ],
                        &gw_env,
                        opts.replicas,
                    )
                    .await?;
                csp.base = gw.trim_end_matches('/').to_owned();
            }
        }
        if opts.await_startup {
            csp.wait_started().await?;
        }
        Ok(csp)
    }

    /// Polls the startup probe until the pool has filled its first slot.
    async fn wait_started(&self) -> Result<()> {
        // Behind a proxy: every gateway replica, not whichever answers first.
        let mut urls = vec![format!("{}/api/v1/health/startup", self.base)];
        if self.proxy("gateway").is_some() {
            for name in self.replicas("gateway") {
                let addr = self.addr_of(name).unwrap_or_default();
                urls.push(format!(
                    "{}/api/v1/health/startup",
                    addr.trim_end_matches('/')
                ));
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut waiting = urls.as_slice();
        loop {
            while let Some(url) = waiting.first()
                && let Ok(r) = self.http().get(url).send().await
                && r.status().is_success()
            {
                waiting = &waiting[1..];
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "csp never reported started; logs:\n{}\n{}",
                    self.log_tail("dev"),
                    self.log_tail("session-pool")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts one process and returns what it prints after "listening on ".
    async fn spawn(
        &mut self,
        name: &'static str,
        args: &[&str],
        env: &[(String, String)],
    ) -> Result<String> {
        self.started.push((
            name,
            args.iter().map(|a| a.to_string()).collect(),
            env.to_vec(),
        ));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))?;
        let mut cmd = Command::new(&self.bin);
        // A developer's real credentials must never reach a test: without
        // them `csp dev` uses the scripted model, as the tests expect.
        for var in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "ANTHROPIC_BASE_URL",
            "CSP_MODEL",
        ] {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting csp {name}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some((_, rest)) = line.split_once("listening on ") {
                    return Ok::<_, anyhow::Error>(Some(
                        rest.split_whitespace().next().unwrap_or("").to_owned(),
                    ));
                }
                // A queue consumer (`csp serve tickets-worker`) listens on
                // no port: it is up once it says it consumes.
                if line.ends_with("consuming the work queue") {
                    banner.push(line);
                    return Ok(Some(String::new()));
                }
                banner.push(line);
            }
            Ok(None)
        })
        .await;
        self.banners.extend(banner.into_iter().map(|l| (name, l)));
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.procs.push(Proc { name, child });
        match found {
            Ok(Ok(Some(addr))) => {
                self.addrs.push((name, addr.clone()));
                Ok(addr)
            }
            other => Err(anyhow!(
                "csp {name} did not start ({other:?}); its log:\n{}",
                self.log_tail(name)
            )),
        }
    }

    /// Starts `replicas` processes of one service (see
    /// [`Options::replicas`]) and returns the address its clients use: the
    /// one process's, or that of a [`TcpProxy`] in front of them all, in
    /// the same form. A queue consumer has no address and gets no proxy.
    async fn spawn_replicas(
        &mut self,
        name: &'static str,
        args: &[&str],
        env: &[(String, String)],
        replicas: usize,
    ) -> Result<String> {
        let first = self.spawn(name, args, env).await?;
        let mut upstreams = vec![host_port(&first)];
        for i in 2..=replicas {
            // Leaked: names are `&'static` throughout the harness, and a
            // test starts a handful of replicas.
            let replica: &'static str = Box::leak(format!("{name}-{i}").into_boxed_str());
            let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            // Each session-pool replica has its own volume, as in Kubernetes.
            if let Some(d) = args.iter().position(|a| a == "--data-dir") {
                args[d + 1] = format!("{}-{i}", args[d + 1]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            upstreams.push(host_port(&self.spawn(replica, &args, env).await?));
        }
        if replicas <= 1 || first.is_empty() {
            return Ok(first);
        }
        let proxy = TcpProxy::start(upstreams).await?;
        let addr = first.replacen(&host_port(&first), proxy.addr(), 1);
        self.proxies.push((name, proxy));
        Ok(addr)
    }

    /// The proxy in front of a replicated service ([`Options::replicas`]
    /// above one): `gateway`, `session-pool`, `policy`, `plugins`, `tickets`.
    pub fn proxy(&self, service: &str) -> Option<&TcpProxy> {
        self.proxies
            .iter()
            .find(|(n, _)| *n == service)
            .map(|(_, p)| p)
    }

    /// Points a service's proxy at the addresses its replicas listen on now
    /// (after one was restarted on another port), as Kubernetes updates a
    /// Service's endpoints.
    pub fn refresh_proxy(&self, service: &str) {
        if let Some(proxy) = self.proxy(service) {
            let upstreams = self
                .replicas(service)
                .into_iter()
                .filter_map(|n| self.addr_of(n))
                .map(|a| host_port(&a))
                .collect();
            proxy.set_upstreams(upstreams);
        }
    }

    /// The running processes of one service: `gateway`, `gateway-2`…
    pub fn replicas(&self, service: &str) -> Vec<&'static str> {
        self.procs
            .iter()
            .map(|p| p.name)
            .filter(|n| {
                n.strip_prefix(service).is_some_and(|rest| {
                    rest.is_empty()
                        || rest
                            .strip_prefix('-')
                            .is_some_and(|i| i.parse::<usize>().is_ok())
                })
            })
            .collect()
    }

    /// The address one process said it listens on (its own, not a proxy's).
    pub fn addr_of(&self, name: &str) -> Option<String> {
        self.addrs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a.clone())
    }

    /// The session-pool replicas whose volume holds a session's directory:
    /// the one that started it, and any that resumed it since.
    pub fn session_pools_with(&self, session: &str) -> Vec<&'static str> {
        self.started
            .iter()
            .filter(|(_, args, _)| args.get(1).is_some_and(|a| a == "session-pool"))
            .filter_map(|(name, args, _)| {
                let d = args.iter().position(|a| a == "--data-dir")?;
                let dir = PathBuf::from(&args[d + 1]).join("sessions").join(session);
                dir.is_dir().then_some(*name)
            })
            .collect()
    }

    /// Everything every process has logged so far.
    pub fn all_logs(&self) -> String {
        let mut text = String::new();
        for p in &self.procs {
            let path = self.dir.path().join(format!("{}.log", p.name));
            text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        text
    }

    /// The database every service uses: a Postgres URL in distributed
    /// mode, the `csp dev` SQLite file otherwise.
    pub fn database_url(&self) -> String {
        match &self.db {
            Some((admin, db)) => with_db(admin, db),
            None => format!("sqlite://{}", self.dir.path().join("data/csp.db").display()),
        }
    }

    /// The last lines of one process's log, for failure messages.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The `/metrics` URLs of every process that serves one.
    pub fn metrics_urls(&self) -> Vec<(&'static str, String)> {
        let mut urls: Vec<(&'static str, String)> = self
            .banners
            .iter()
            .filter_map(|(name, line)| {
                let (_, rest) = line.split_once("metrics on ")?;
                Some((*name, rest.split_whitespace().next()?.to_owned()))
            })
            .collect();
        urls.push((
            if self.mode == Mode::Dev {
                "dev"
            } else {
                "gateway"
            },
            format!("{}/metrics", self.base),
        ));
        urls
    }

    /// Every metric sample of every process, as Prometheus text.
    pub async fn scrape_all(&self) -> Result<String> {
        let mut text = String::new();
        for (_, url) in self.metrics_urls() {
            text.push_str(
                &self
                    .http()
                    .get(&url)
                    .bearer_auth(METRICS_TOKEN)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?,
            );
        }
        Ok(text)
    }

    /// Where the session-pool keeps each session's directories
    /// (`sessions/<id>/home/.claude/projects/.../<agent session>.jsonl`).
    pub fn agents_dir(&self) -> PathBuf {
        match self.mode {
            Mode::Dev => self.dir.path().join("data").join("agents"),
            Mode::Distributed => self.dir.path().join("agents"),
        }
    }

    /// The CLI transcripts (`*.jsonl`) of one session.
    pub fn transcripts(&self, session: &str) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "jsonl") {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        let projects = self
            .agents_dir()
            .join("sessions")
            .join(session)
            .join("home")
            .join(".claude")
            .join("projects");
        walk(&projects, &mut out);
        out
    }

    /// Waits (up to `within`) for one process to exit on its own, as a
    /// tickets worker does after a restart was asked for; `None` if it did
    /// not.
    pub async fn exited(
        &mut self,
        name: &str,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let p = self.procs.iter_mut().find(|p| p.name == name)?;
        tokio::time::timeout(within, p.child.wait())
            .await
            .ok()?
            .ok()
    }

    /// Sends SIGTERM to one process and waits (up to `within`) for it to
    /// exit; `None` if it did not.
    pub async fn sigterm(
        &mut self,
        name: &str,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let p = self.procs.iter_mut().find(|p| p.name == name)?;
        let pid = p.child.id()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        tokio::time::timeout(within, p.child.wait())
            .await
            .ok()?
            .ok()
    }

    /// Kills one process with SIGKILL (no shutdown at all) and reaps it.
    pub async fn kill9(&mut self, name: &str) {
        if let Some(p) = self.procs.iter_mut().find(|p| p.name == name) {
            let _ = p.child.start_kill();
            let _ = p.child.wait().await;
        }
        self.procs.retain(|p| p.name != name);
    }

    /// Starts a process of a distributed instance again, as before but on
    /// the gRPC address it had (its peers and routes still name it).
    pub async fn restart_same_addr(&mut self, name: &'static str) -> Result<()> {
        let (_, args, env) = self
            .started
            .iter()
            .find(|(n, _, _)| *n == name)
            .cloned()
            .with_context(|| format!("{name} was never started"))?;
        let addr = self
            .addrs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a.clone())
            .with_context(|| format!("{name} never listened"))?;
        let mut args: Vec<String> = args;
        if let Some(i) = args.iter().position(|a| a == "--grpc-addr") {
            args[i + 1] = addr.trim_start_matches("http://").to_owned();
        }
        self.procs.retain(|p| p.name != name);
        self.started.retain(|(n, _, _)| *n != name);
        self.addrs.retain(|(n, _)| *n != name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn(name, &args, &env).await?;
        Ok(())
    }

    /// Starts a process of a distributed instance again with the same
    /// arguments and environment (after [`Csp::kill9`] or [`Csp::sigterm`]);
    /// for processes nothing else addresses, such as `tickets-worker`.
    pub async fn restart(&mut self, name: &'static str) -> Result<()> {
        let (_, args, env) = self
            .started
            .iter()
            .find(|(n, _, _)| *n == name)
            .cloned()
            .with_context(|| format!("{name} was never started"))?;
        self.procs.retain(|p| p.name != name);
        self.started.retain(|(n, _, _)| *n != name);
        self.addrs.retain(|(n, _)| *n != name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn(name, &args, &env).await?;
        Ok(())
    }

    /// Runs a one-off `csp` command (e.g. `tickets import`) against this
    /// instance's store: `DATABASE_URL` in distributed mode, `--data-dir`
    /// of the `csp dev` otherwise (appended), with the instance's secret key.
    pub async fn run_cli(&self, args: &[&str]) -> Result<std::process::Output> {
        let mut cmd = Command::new(&self.bin);
        for var in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "ANTHROPIC_BASE_URL",
            "CSP_MODEL",
            "DATABASE_URL",
            "CSP_DATA_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .env("CSP_SECRET_KEY", SECRET_KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match &self.db {
            Some((admin, db)) => {
                cmd.env("DATABASE_URL", with_db(admin, db));
            }
            None => {
                cmd.arg("--data-dir").arg(self.dir.path().join("data"));
            }
        }
        Ok(cmd.output().await?)
    }

    /// Starts `csp dev` again on the same data directory (after
    /// [`Csp::sigterm`]); `base` changes to the new address.
    pub async fn restart_dev(&mut self) -> Result<()> {
        let (_, args, env) = self
            .started
            .iter()
            .find(|(n, _, _)| *n == "dev")
            .cloned()
            .context("not a dev instance")?;
        self.procs.retain(|p| p.name != "dev");
        self.started.retain(|(n, _, _)| *n != "dev");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let url = self.spawn("dev", &args, &env).await?;
        self.base = url.trim_end_matches('/').to_owned();
        self.wait_started().await
    }

    /// The address the scripted model listens on (distributed mode), for
    /// `/_mock/log` and `/_mock/queue`.
    pub fn mock_url(&self) -> Option<String> {
        self.mock.clone()
    }

    /// The process id of one process (e.g. to read its memory use).
    pub fn pid_of(&self, name: &str) -> Option<u32> {
        self.procs
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.child.id())
    }

    /// The NATS prefix of this instance's streams and subjects
    /// (distributed mode only): the work queue is stream
    /// `<PREFIX>_QUEUE`, subjects `<prefix>.queue.<topic>`.
    pub fn nats_prefix(&self) -> Option<String> {
        self.nats_prefix.clone()
    }

    /// The JetStream stream holding this instance's session events
    /// (distributed mode only).
    pub fn nats_stream(&self) -> Option<String> {
        self.nats_prefix
            .as_ref()
            .map(|p| format!("{}_SESSION_EVENTS", p.to_ascii_uppercase()))
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn login(&self) -> Result<String> {
        self.login_as("admin", ADMIN_PASSWORD).await
    }

    pub async fn login_as(&self, user: &str, password: &str) -> Result<String> {
        let resp = self
            .http()
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("login failed: {status} {body}");
        }
        Ok(body["token"].as_str().context("token")?.to_owned())
    }

    /// Opens `/ws?{query}` with a bearer token.
    pub async fn ws(&self, token: &str, query: &str) -> Result<Ws> {
        self.ws_with(query, &[("authorization", format!("Bearer {token}"))])
            .await
            .map_err(|e| anyhow!("WebSocket upgrade failed: {e}"))
    }

    /// Opens `/ws?{query}` with arbitrary headers; errors carry the HTTP status.
    pub async fn ws_with(
        &self,
        query: &str,
        headers: &[(&str, String)],
    ) -> Result<Ws, tungstenite::Error> {
        let url = format!("{}/ws?{query}", self.base.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request()?;
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                v.parse().expect("header value"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Ws { stream })
    }

    pub async fn get(&self, token: &str, path: &str) -> Result<(u16, Value)> {
        let resp = self
            .http()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Stops the processes and removes the instance's database and stream.
    pub async fn stop(mut self) {
        for p in &mut self.procs {
            if let Some(pid) = p.child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for p in &mut self.procs {
            if tokio::time::timeout(Duration::from_secs(15), p.child.wait())
                .await
                .is_err()
            {
                let _ = p.child.kill().await;
            }
        }
        remove_backends(self.db.take(), self.nats_prefix.take()).await;
    }
}

impl Drop for Csp {
    /// A test that panicked never reached `stop`: its processes die with
    /// their handles (kill_on_drop), and its database and stream are removed
    /// here so that no run leaves anything behind.
    fn drop(&mut self) {
        let (db, prefix) = (self.db.take(), self.nats_prefix.take());
        if db.is_none() && prefix.is_none() {
            return;
        }
        for p in &mut self.procs {
            let _ = p.child.start_kill();
        }
        let cleanup = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(remove_backends(db, prefix));
            }
        });
        let _ = cleanup.join();
    }
}

/// Drops an instance's database, NATS stream and Redis keys (all named from
/// its unique prefix).
async fn remove_backends(db: Option<(String, String)>, prefix: Option<String>) {
    if let Some((url, db)) = db
        && let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
    let Some(prefix) = prefix else { return };
    let nats =
        std::env::var("CSP_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    if let Ok(client) = async_nats::connect(nats).await {
        let js = async_nats::jetstream::new(client);
        for stream in ["SESSION_EVENTS", "QUEUE"] {
            let _ = js
                .delete_stream(format!("{}_{stream}", prefix.to_ascii_uppercase()))
                .await;
        }
    }
    let redis =
        std::env::var("CSP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if let Ok(client) = redis::Client::open(redis)
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    }
}

/// A browser-like WebSocket client.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How long a test waits for any single frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(60);

impl Ws {
    /// Opens `{base}/ws?{query}` with a bearer token, without a [`Csp`]
    /// (a load task that outlives a borrow of the instance, e.g. while a
    /// bench restarts its processes).
    pub async fn connect(base: &str, query: &str, token: &str) -> Result<Ws> {
        let url = format!("{}/ws?{query}", base.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request()?;
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let (stream, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Ws { stream })
    }

    pub async fn send(&mut self, v: Value) -> Result<()> {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, text: String) -> Result<()> {
        self.stream.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// Sends any message, also one no browser would (binary, a raw frame
    /// with invalid UTF-8): the security suite's malformed frames.
    pub async fn send_message(&mut self, message: Message) -> Result<()> {
        self.stream.send(message).await?;
        Ok(())
    }

    /// The next JSON frame; `Err` on close (with its code) or timeout.
    pub async fn next(&mut self) -> Result<Value> {
        loop {
            let msg = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .map_err(|_| anyhow!("no frame within {FRAME_TIMEOUT:?}"))?;
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t)?),
                Some(Ok(Message::Close(f))) => bail!("closed: {f:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error: {e}"),
                None => bail!("socket ended"),
            }
        }
    }

    /// Frames up to and including the first one for which `stop` holds.
    pub async fn until(&mut self, stop: impl Fn(&Value) -> bool) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            let f = self.next().await?;
            let done = stop(&f);
            out.push(f);
            if done {
                return Ok(out);
            }
        }
    }

    /// Frames up to and including the turn's `result`.
    pub async fn turn(&mut self) -> Result<Vec<Value>> {
        self.until(|f| f["type"] == "result").await
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// A message that makes the scripted model answer with `behaviour`.
pub fn scripted(behaviour: Value) -> String {
    format!("MOCK{behaviour}MOCK")
}

/// A message the scripted model answers slowly: 60 words, 200 ms apart
/// (12 s), long enough to kill or cut something mid-answer.
pub fn slow_answer() -> String {
    scripted(json!({
        "type": "text",
        "text": "word ".repeat(60),
        "chunks": 60,
        "chunk_delay_ms": 200,
    }))
}

/// The concatenated `delta` texts of some frames.
pub fn text_of(frames: &[Value]) -> String {
    frames
        .iter()
        .filter(|f| f["type"] == "delta")
        .filter_map(|f| f["text"].as_str())
        .collect()
}
