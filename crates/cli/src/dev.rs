//! `csp dev`: every service in one process on embedded backends. The
//! services still talk gRPC to each other over loopback, so this mode runs
//! the same code paths as a deployment, minus Postgres, Redis and NATS.
//! This module prepares the process's data directory, backends, secrets and
//! model; the services themselves are the rows of the composition table
//! (`services.rs`), started and run by `compose.rs` as `csp serve` runs
//! them one at a time.

use crate::error::Error;
use crate::opts::{
    GatewayOpts, ModelOpts, PolicyOpts, PoolOpts, SecretKeyOpts, TicketsOpts, TicketsWorkerOpts,
    TokenOpts,
};
use crate::row::Dev;
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
    #[command(flatten)]
    tickets: TicketsOpts,
    #[command(flatten)]
    tickets_worker: TicketsWorkerOpts,
}

/// Keys, the database and agents' directories are csp's alone.
fn owner_only(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        Error::DataDir {
            what: format!("restricting {} to its owner", path.display()),
            source,
        }
    })
}

/// The dev JWT secret: from the environment, else kept in the data
/// directory (mode 0600) so logins survive a restart.
fn dev_secret(opts: &TokenOpts, data_dir: &Path) -> Result<SecretString, Error> {
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
fn dev_keyring(keys: &SecretKeyOpts, data_dir: &Path) -> Result<csp_secrets::Keyring, Error> {
    if let Some(k) = keys.keyring()? {
        return Ok(k);
    }
    let path = data_dir.join("secret-key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        // Never replace a key that secrets may be stored under.
        csp_secrets::SecretKey::parse(text.trim()).map_err(|e| {
            Error::Config(format!(
                "{}: {e}; restore it, or delete it to start with a new key (secrets stored under the old one become unreadable)",
                path.display()
            ))
        })?;
    }
    let text = kept_secret(
        &path,
        |s| csp_secrets::SecretKey::parse(s).is_ok(),
        || csp_secrets::SecretKey::generate().1,
    )?;
    use secrecy::ExposeSecret;
    let key = csp_secrets::SecretKey::parse(text.expose_secret())
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(csp_secrets::Keyring::new(key, Vec::new()))
}

/// The key a `csp dev` keeps in `data_dir` (see [`dev_keyring`]), for the
/// offline tools that open its secrets; never created here.
pub(crate) fn kept_keyring(data_dir: &Path) -> Result<Option<csp_secrets::Keyring>, Error> {
    let path = data_dir.join("secret-key");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let key = csp_secrets::SecretKey::parse(text.trim())
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(Some(csp_secrets::Keyring::new(key, Vec::new())))
}

/// A secret read from `path`, or made by `generate` and written there
/// (created 0600) when the file is missing or not `valid`.
fn kept_secret(
    path: &Path,
    valid: impl Fn(&str) -> bool,
    generate: impl Fn() -> SecretString,
) -> Result<SecretString, Error> {
    use secrecy::ExposeSecret;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(s) = std::fs::read_to_string(path)
        && valid(s.trim())
    {
        return Ok(SecretString::from(s.trim().to_owned()));
    }
    let secret = generate();
    let writing = |source| Error::DataDir {
        what: format!("writing {}", path.display()),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(writing)?;
    std::io::Write::write_all(&mut f, secret.expose_secret().as_bytes()).map_err(writing)?;
    Ok(secret)
}

/// The model agents use: the configured one, else the scripted offline
/// model, started here (production must never use it silently, so
/// `csp serve` never starts it). Returns the agents' environment and label.
async fn model(
    o: &Options,
) -> Result<(Option<csp_mock_llm::MockLlm>, Vec<(String, String)>, String), Error> {
    if o.model.configured() {
        return Ok((None, o.model.env(), o.model.label()));
    }
    let rules = match &o.mock_rules {
        Some(p) => csp_mock_llm::Rules::from_path(p).map_err(Error::config)?,
        None => csp_mock_llm::Rules::default(),
    };
    let mock = csp_mock_llm::MockLlm::start(csp_mock_llm::Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        rules,
        api_key: Some(OFFLINE_API_KEY.to_owned()),
    })
    .await
    .map_err(Error::OfflineModel)?;
    let env = vec![
        ("ANTHROPIC_BASE_URL".to_owned(), mock.base_url()),
        // The CLI refuses to start without a credential; the scripted
        // server ignores it.
        ("ANTHROPIC_API_KEY".to_owned(), OFFLINE_API_KEY.to_owned()),
    ];
    Ok((Some(mock), env, OFFLINE_MODEL_LABEL.to_owned()))
}

pub(crate) async fn run(o: Options, shutdown: CancellationToken) -> Result<(), Error> {
    std::fs::create_dir_all(&o.data_dir).map_err(|source| Error::DataDir {
        what: format!("creating the data directory {}", o.data_dir.display()),
        source,
    })?;
    owner_only(&o.data_dir, 0o700)?;
    let secret = dev_secret(&o.tokens, &o.data_dir)?;

    // SQLite gives its -wal and -shm files the database file's mode.
    let db = o.data_dir.join("csp.db");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&db)
        .map_err(|source| Error::DataDir {
            what: format!("creating {}", db.display()),
            source,
        })?;
    owner_only(&db, 0o600)?;
    let store =
        Arc::new(
            csp_store::SqliteStore::open(&db)
                .await
                .map_err(|source| Error::Store {
                    what: "opening the SQLite database",
                    source,
                })?,
        );
    let generated = csp_policy::bootstrap_admin(store.as_ref(), o.admin_password.as_ref()).await?;
    let (mock, model_env, model_label) = model(&o).await?;
    let tokens = o.tokens.tokens(secret.clone())?;
    let keyring = dev_keyring(&o.keys, &o.data_dir)?;
    let kept_key = std::fs::read_to_string(o.data_dir.join("secret-key"))
        .ok()
        .map(SecretString::from);
    // Issue 12: every secret this process holds, redacted from agent
    // output (the plugin-secret key kept in the data directory included).
    let secrets = [
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
    .chain(o.model.secrets())
    .cloned()
    .collect();
    // Ticket enhancement uses the chat's model (the scripted one offline,
    // whose demo model writes deterministic notes) unless CSP_ENHANCE_*
    // name another.
    let chat_endpoint = |name: &str| {
        model_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let enhance_model = o.tickets_worker.enhance.provider(
        chat_endpoint("ANTHROPIC_BASE_URL").as_deref(),
        chat_endpoint("ANTHROPIC_API_KEY")
            .map(SecretString::from)
            .as_ref(),
    )?;
    let enhance_label = match &enhance_model {
        Some(csp_enhance::ProviderConfig::Anthropic { model, .. })
        | Some(csp_enhance::ProviderConfig::OpenAiCompatible { model, .. })
            if mock.is_some() && o.tickets_worker.enhance.enhance_base_url.is_none() =>
        {
            format!("{OFFLINE_MODEL_LABEL} (as {model})")
        }
        Some(csp_enhance::ProviderConfig::Anthropic { model, .. })
        | Some(csp_enhance::ProviderConfig::OpenAiCompatible { model, .. }) => model.clone(),
        None => "none (notes carry the gathered context only)".to_owned(),
    };
    let plugins_dir = o
        .plugins_dir
        .clone()
        .unwrap_or_else(|| o.data_dir.join("plugins"));
    let dev = Dev {
        listen: o.listen,
        data_dir: o.data_dir.clone(),
        plugins_dir: plugins_dir.clone(),
        tokens,
        keyring: Some(keyring),
        store,
        bus: Arc::new(csp_bus::InProcessBus::new(
            csp_bus::inprocess::Config::default(),
        )?),
        cache: Arc::new(csp_cache::MemoryCache::new()),
        queue: Arc::new(csp_bus::InProcessQueue::new()),
        model: o.model,
        enhance_model,
        model_env,
        model_label: model_label.clone(),
        secrets,
        policy: o.policy,
        pool: o.pool,
        gateway: o.gateway,
        tickets: o.tickets,
        tickets_worker: o.tickets_worker,
    };
    let built = crate::compose::start_all(crate::services::TABLE, &dev).await?;

    let addr_of = |name: &str| {
        built
            .iter()
            .find(|(row, _)| row.name == name)
            .and_then(|(_, b)| b.addr)
    };
    if let Some(addr) = addr_of("gateway") {
        println!("csp dev: gateway listening on http://{addr}/");
    }
    println!("csp dev: model: {model_label}");
    if let Some(addr) = addr_of("tickets") {
        println!(
            "csp dev: tickets service on {addr}; webhooks at /webhook/servicedesk_plus/<tenant_id>"
        );
    }
    if built.iter().any(|(row, _)| row.name == "tickets-worker") {
        println!("csp dev: tickets worker running, enhancement model: {enhance_label}");
    }
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
    let result = crate::compose::run_all(built, shutdown).await;
    if let Some(m) = mock {
        m.shutdown().await;
    }
    result
}
