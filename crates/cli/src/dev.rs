//! `csp dev`: every service in one process on embedded backends. The
//! services still talk gRPC to each other over loopback, so this mode runs
//! the same code paths as a deployment, minus Postgres, Redis and NATS.

use crate::opts::{
    GatewayOpts, ModelOpts, PolicyOpts, PoolOpts, PoolWiring, SecretKeyOpts, TokenOpts, Upstreams,
};
use anyhow::Context;
use clap::Args;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The label the UI shows when the scripted model answers.
pub(crate) const OFFLINE_MODEL_LABEL: &str = "offline demo model";
/// The scripted model checks its key like the real API does, so the key
/// check and its failure path run in `csp dev` too.
const OFFLINE_API_KEY: &str = "offline-demo";

#[derive(Args)]
pub(crate) struct Options {
    /// Where the chat is served.
    #[arg(long, env = "CSP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// SQLite database, agent working directories and the dev JWT secret.
    #[arg(long, env = "CSP_DATA_DIR", default_value = ".csp/dev")]
    data_dir: PathBuf,
    /// Password of the `admin` account created at first start (generated and
    /// printed once when unset).
    #[arg(long, env = "CSP_ADMIN_PASSWORD", hide_env_values = true, value_parser = crate::opts::secret)]
    admin_password: Option<SecretString>,
    /// Rules file for the offline demo model.
    #[arg(long, env = "CSP_MOCK_RULES")]
    mock_rules: Option<PathBuf>,
    /// One directory per plugin, each with a plugin.json (default:
    /// `plugins` in the data directory). Try `examples/plugins`.
    #[arg(long, env = "CSP_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    #[command(flatten)]
    keys: SecretKeyOpts,
    #[command(flatten)]
    tokens: TokenOpts,
    #[command(flatten)]
    model: ModelOpts,
    #[command(flatten)]
    pool: PoolOpts,
    #[command(flatten)]
    gateway: GatewayOpts,
    #[command(flatten)]
    policy: PolicyOpts,
}

/// Keys, the database and agents' directories are csp's alone.
fn owner_only(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("restricting {} to its owner", path.display()))
}

/// The dev JWT secret: from the environment, else kept in the data
/// directory (mode 0600) so logins survive a restart.
fn dev_secret(opts: &TokenOpts, data_dir: &Path) -> anyhow::Result<SecretString> {
    if let Some(s) = &opts.jwt_secret {
        return Ok(s.clone());
    }
    kept_secret(
        &data_dir.join("jwt-secret"),
        |s| s.len() >= csp_auth::MIN_SECRET_BYTES,
        csp_auth::generate_secret,
    )
}

/// The dev key of plugin secrets: `CSP_SECRET_KEY`, else kept in the data
/// directory (mode 0600) so stored secrets stay readable after a restart.
fn dev_keyring(keys: &SecretKeyOpts, data_dir: &Path) -> anyhow::Result<csp_secrets::Keyring> {
    if let Some(k) = keys.keyring()? {
        return Ok(k);
    }
    let path = data_dir.join("secret-key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        // Never replace a key that secrets may be stored under.
        csp_secrets::SecretKey::parse(text.trim()).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}; restore it, or delete it to start with a new key (secrets stored under the old one become unreadable)",
                path.display()
            )
        })?;
    }
    let text = kept_secret(
        &path,
        |s| csp_secrets::SecretKey::parse(s).is_ok(),
        || csp_secrets::SecretKey::generate().1,
    )?;
    use secrecy::ExposeSecret;
    let key = csp_secrets::SecretKey::parse(text.expose_secret())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(csp_secrets::Keyring::new(key, Vec::new()))
}

/// A secret read from `path`, or made by `generate` and written there
/// (created 0600) when the file is missing or not `valid`.
fn kept_secret(
    path: &Path,
    valid: impl Fn(&str) -> bool,
    generate: impl Fn() -> SecretString,
) -> anyhow::Result<SecretString> {
    use secrecy::ExposeSecret;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(s) = std::fs::read_to_string(path)
        && valid(s.trim())
    {
        return Ok(SecretString::from(s.trim().to_owned()));
    }
    let path = path.to_owned();
    let secret = generate();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, secret.expose_secret().as_bytes())?;
    Ok(secret)
}

pub(crate) async fn run(o: Options, shutdown: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.data_dir)
        .with_context(|| format!("creating the data directory {}", o.data_dir.display()))?;
    owner_only(&o.data_dir, 0o700)?;
    let secret = dev_secret(&o.tokens, &o.data_dir)?;

    // SQLite gives its -wal and -shm files the database file's mode.
    let db = o.data_dir.join("csp.db");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&db)
        .with_context(|| format!("creating {}", db.display()))?;
    owner_only(&db, 0o600)?;
    let store = Arc::new(
        csp_store::SqliteStore::open(&db)
            .await
            .context("opening the SQLite database")?,
    );
    let bus: Arc<dyn csp_bus::EventBus> = Arc::new(csp_bus::InProcessBus::new(
        csp_bus::inprocess::Config::default(),
    )?);
    let cache: Arc<dyn csp_cache::Cache> = Arc::new(csp_cache::MemoryCache::new());
    // Audit events go from the session-pool to the policy service in memory.
    let queue: Arc<dyn csp_bus::Queue> = Arc::new(csp_bus::InProcessQueue::new());

    let generated = csp_policy::bootstrap_admin(store.as_ref(), o.admin_password.as_ref()).await?;

    // The scripted model only when no real one is configured: production
    // must never use it silently, so `csp serve` never starts it.
    let (mock, model_env, model_label) = if o.model.configured() {
        (None, o.model.env(), o.model.label())
    } else {
        let rules = match &o.mock_rules {
            Some(p) => csp_mock_llm::Rules::from_path(p)?,
            None => csp_mock_llm::Rules::default(),
        };
        let mock = csp_mock_llm::MockLlm::start(csp_mock_llm::Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rules,
            api_key: Some(OFFLINE_API_KEY.to_owned()),
        })
        .await
        .context("starting the offline demo model")?;
        let env = vec![
            ("ANTHROPIC_BASE_URL".to_owned(), mock.base_url()),
            // The CLI refuses to start without a credential; the scripted
            // server ignores it.
            ("ANTHROPIC_API_KEY".to_owned(), OFFLINE_API_KEY.to_owned()),
        ];
        (Some(mock), env, OFFLINE_MODEL_LABEL.to_owned())
    };

    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let tokens = o.tokens.tokens(secret.clone())?;
    let plugins_dir = o
        .plugins_dir
        .clone()
        .unwrap_or_else(|| o.data_dir.join("plugins"));
    let plugins = csp_plugins::Server::build(
        csp_plugins::Config {
            keyring: Some(dev_keyring(&o.keys, &o.data_dir)?),
            ..csp_plugins::Config::new(loopback, tokens.clone(), plugins_dir.clone())
        },
        store.clone(),
        queue.clone(),
    )
    .await?;
    let plugins_addr = format!("http://{}", plugins.local_addr());
    let policy = csp_policy::Server::build(
        o.policy
            .config(loopback, tokens.clone(), plugins_addr.clone())?,
        store.clone(),
        queue.clone(),
    )
    .await?;
    let policy_addr = format!("http://{}", policy.local_addr());
    let kept_key = std::fs::read_to_string(o.data_dir.join("secret-key"))
        .ok()
        .map(SecretString::from);
    let pool = csp_session_pool::Server::build(
        o.pool.config(
            loopback,
            None,
            o.data_dir.join("agents"),
            &o.model,
            PoolWiring {
                model_env,
                model_label: model_label.clone(),
                governor: o.pool.governor(&policy_addr, &tokens)?,
                audit: queue,
                tokens: tokens.clone(),
                plugins_addr: plugins_addr.clone(),
                // Issue 12: every secret this process holds, redacted from
                // agent output (the plugin-secret key kept in the data
                // directory included).
                known_secrets: crate::opts::known_secrets(
                    [
                        Some(&secret),
                        o.admin_password.as_ref(),
                        generated.as_ref(),
                        o.keys.secret_key.as_ref(),
                        o.keys.secret_key_previous.as_ref(),
                        o.gateway.metrics_token.as_ref(),
                        kept_key.as_ref(),
                    ]
                    .into_iter()
                    .flatten()
                    .chain(o.model.secrets()),
                    [],
                ),
            },
        ),
        bus.clone(),
        store.clone(),
        cache.clone(),
    )
    .await?;
    let gateway = csp_gateway::Server::build(
        o.gateway.config(
            o.listen,
            Upstreams {
                session_pool: format!("http://{}", pool.local_addr()),
                policy: policy_addr,
                plugins: plugins_addr,
            },
            tokens,
            model_label.clone(),
            o.pool.shutdown_grace_seconds,
        ),
        bus,
        cache,
    )
    .await?;

    let url = format!("http://{}/", gateway.local_addr());
    println!("csp dev: gateway listening on {url}");
    println!("csp dev: model: {model_label}");
    println!("csp dev: plugins from {}", plugins_dir.display());
    match generated {
        Some(p) => {
            use secrecy::ExposeSecret;
            println!(
                "csp dev: sign in as 'admin' with password {} (shown once; set CSP_ADMIN_PASSWORD to choose it)",
                p.expose_secret()
            );
        }
        None => println!("csp dev: sign in as 'admin'"),
    }

    // On shutdown the session-pool drains first (turns in flight finish);
    // the gateway keeps relaying them and policy keeps answering until then.
    let drained = pool.drained();
    let gateway = gateway.hold_until(drained.clone());
    let mut tasks = tokio::task::JoinSet::new();
    let d = drained.clone();
    tasks.spawn(async move { policy.run(d).await.map_err(anyhow::Error::from) });
    tasks.spawn(async move { plugins.run(drained).await.map_err(anyhow::Error::from) });
    let s = shutdown.clone();
    tasks.spawn(async move { pool.run(s).await.map_err(anyhow::Error::from) });
    let s = shutdown.clone();
    tasks.spawn(async move { gateway.run(s).await.map_err(anyhow::Error::from) });

    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        // One service failing takes the others down with it.
        shutdown.cancel();
        if let Ok(Err(e)) = done {
            first_error.get_or_insert(e);
        }
    }
    if let Some(m) = mock {
        m.shutdown().await;
    }
    first_error.map_or(Ok(()), Err)
}
