//! The MCP servers of active plugins, as every new agent process gets them.
//!
//! The plugins service streams a fingerprint of its active set; whenever it
//! differs from the one known here, the set itself (with decrypted secrets)
//! is fetched and published on a `watch` channel. The pool builds warm
//! processes for the set of the moment and rebuilds them when it changes.
//!
//! Each process learns its servers from a `--mcp-config` file that lives
//! only while the CLI starts (it has started the servers by the time it
//! answers `initialize`): created owner-only, deleted as soon as the spawn
//! returns. Secret values go into the servers' environment through that
//! file and never into an argv, where any local user could read them. Each
//! server runs under `/usr/bin/env -u` so that it never sees the model API
//! credentials the CLI itself runs with.

use csp_proto::v1 as pb;
use csp_proto::v1::plugins_client::PluginsClient;
use csp_rpc::ServiceToken;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The file name of the MCP config in a session's root directory (never
/// its workdir: the agent has no business reading it).
pub(crate) const MCP_CONFIG_FILE: &str = "mcp-config.json";

/// What every MCP server is started through.
const ENV: &str = "/usr/bin/env";

/// The variables through which the CLI reaches the model: a third-party
/// server must not be able to spend on the deployment's account.
const MODEL_CREDENTIALS: &[&str] = &["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"];

/// How long one `ActiveServers` call may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The active MCP servers, and which set they are.
#[derive(Debug, Clone)]
pub(crate) struct PluginSet {
    pub(crate) fingerprint: String,
    pub(crate) servers: Vec<McpServer>,
}

/// One server. `Debug` shows env values as `[REDACTED]` (`SecretString`).
#[derive(Debug, Clone)]
pub(crate) struct McpServer {
    pub(crate) plugin_name: String,
    /// The `<server>` in `mcp__<server>__<tool>`.
    pub(crate) server_name: String,
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    /// Every value is treated as secret: which ones are is the plugin's business.
    pub(crate) env: BTreeMap<String, SecretString>,
    pub(crate) cwd: Option<String>,
    /// Mounted read-only into sandboxed agents.
    pub(crate) plugin_dir: Option<PathBuf>,
    /// `permissions.network` of its plugin: where its egress may go.
    pub(crate) network: Vec<String>,
    /// csp's own server (`csp mcp <name>`): run with [`Builtin`].
    pub(crate) builtin: bool,
}

/// What a built-in server of one agent process runs with: csp's own
/// executable (its manifest's `command` is only a name) and the
/// environment that leads it to the tool door (`tool_door.rs`).
#[derive(Debug)]
pub(crate) struct Builtin {
    pub(crate) command: PathBuf,
    pub(crate) env: BTreeMap<&'static str, SecretString>,
}

impl PluginSet {
    /// No servers: what a deployment without a plugins service runs.
    pub(crate) fn empty() -> Self {
        Self {
            fingerprint: String::new(),
            servers: Vec::new(),
        }
    }

    pub(crate) fn from_proto(set: pb::ActiveServersResponse) -> Self {
        let servers = set
            .servers
            .into_iter()
            .map(|s| McpServer {
                plugin_name: s.plugin_name,
                server_name: s.server_name,
                command: s.command,
                args: s.args,
                env: s
                    .env
                    .into_iter()
                    .map(|(k, v)| (k, SecretString::from(v)))
                    .collect(),
                cwd: (!s.cwd.is_empty()).then_some(s.cwd),
                plugin_dir: (!s.plugin_dir.is_empty()).then(|| PathBuf::from(s.plugin_dir)),
                network: s.network,
                builtin: s.builtin,
            })
            .collect();
        Self {
            fingerprint: set.fingerprint,
            servers,
        }
    }
}

/// The `--mcp-config` file of one spawn; deleted when dropped, so every way
/// out of a spawn (success, error, cancellation) removes it.
#[derive(Debug)]
pub(crate) struct McpConfigFile {
    path: PathBuf,
}

impl McpConfigFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for McpConfigFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(path = %self.path.display(), error = %e, "could not delete an MCP config file");
        }
    }
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    #[serde(rename = "mcpServers")]
    mcp_servers: BTreeMap<&'a str, StdioServer<'a>>,
}

#[derive(Serialize)]
struct StdioServer<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    command: &'static str,
    args: Vec<&'a str>,
    env: BTreeMap<&'a str, &'a str>,
}

/// `env [-C cwd] -u <credential>... -- command args...`
fn wrapped_args<'a>(server: &'a McpServer, command: &'a str) -> Vec<&'a str> {
    let mut args = Vec::with_capacity(server.args.len() + 8);
    if let Some(cwd) = &server.cwd {
        args.extend(["-C", cwd.as_str()]);
    }
    for key in MODEL_CREDENTIALS {
        args.extend(["-u", key]);
    }
    args.extend(["--", command]);
    args.extend(server.args.iter().map(String::as_str));
    args
}

/// Why a server cannot be started through `env`, if it cannot.
fn unusable(server: &McpServer) -> Option<&'static str> {
    if server.command.is_empty() {
        Some("it has no command")
    } else if server.command.contains('=') {
        // env would take `NAME=VALUE` as an assignment, not the command.
        Some("its command contains '='")
    } else {
        None
    }
}

/// Writes the MCP config of `set` into `dir` (a session's root directory),
/// readable by the owner only from the moment it exists; built-in servers
/// run as `builtin` says (left out without it). `None` when the set has no
/// servers: the CLI then runs none.
pub(crate) fn write_mcp_config(
    dir: &Path,
    set: &PluginSet,
    builtin: Option<&Builtin>,
) -> std::io::Result<Option<McpConfigFile>> {
    let mut mcp_servers = BTreeMap::new();
    for server in &set.servers {
        if let Some(why) = unusable(server) {
            tracing::error!(plugin = %server.plugin_name, why, "skipping an MCP server that cannot be started");
            continue;
        }
        let (command, mut env): (&str, BTreeMap<&str, &str>) = (
            &server.command,
            server
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.expose_secret()))
                .collect(),
        );
        let command = match (server.builtin, builtin) {
            (false, _) => command,
            (true, Some(b)) => {
                env.extend(b.env.iter().map(|(k, v)| (*k, v.expose_secret())));
                let Some(exe) = b.command.to_str() else {
                    tracing::error!(plugin = %server.plugin_name, "skipping a built-in MCP server: csp's path is not UTF-8");
                    continue;
                };
                exe
            }
            (true, None) => continue,
        };
        let entry = StdioServer {
            kind: "stdio",
            command: ENV,
            args: wrapped_args(server, command),
            env,
        };
        if mcp_servers
            .insert(server.server_name.as_str(), entry)
            .is_some()
        {
            tracing::error!(server = %server.server_name, "two active plugins name the same MCP server; using the last");
        }
    }
    if mcp_servers.is_empty() {
        return Ok(None);
    }
    let json = secrecy::zeroize::Zeroizing::new(
        serde_json::to_vec(&ConfigJson { mcp_servers }).map_err(std::io::Error::other)?,
    );
    let path = dir.join(MCP_CONFIG_FILE);
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
    };
    let mut file = match open() {
        Ok(file) => file,
        // Left by a process that died mid-spawn: its mode is unknown, so
        // it is replaced rather than reused.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&path)?;
            open()?
        }
        Err(e) => return Err(e),
    };
    let guard = McpConfigFile { path };
    file.write_all(&json)?;
    file.sync_data()?;
    Ok(Some(guard))
}

type Client = PluginsClient<tonic::service::interceptor::InterceptedService<Channel, ServiceToken>>;

/// Follows the plugins service until `stop`, publishing each new set on
/// `sets`. An outage keeps the last set: sessions go on starting with it.
pub(crate) async fn follow(
    channel: Channel,
    token: ServiceToken,
    sets: watch::Sender<Option<Arc<PluginSet>>>,
    stop: CancellationToken,
) {
    let client: Client = PluginsClient::with_interceptor(channel, token);
    let opener = client.clone();
    csp_rpc::follow_stream(
        "plugin registry",
        move || {
            let mut client = opener.clone();
            async move {
                client
                    .watch_active_set(pb::WatchActiveSetRequest {})
                    .await
                    .map(tonic::Response::into_inner)
            }
        },
        move |active: pb::ActiveSet| {
            let mut client = client.clone();
            let sets = sets.clone();
            async move {
                let known = sets.borrow().as_ref().map(|s| s.fingerprint.clone());
                if known.as_deref() == Some(active.fingerprint.as_str()) {
                    return Ok(());
                }
                let mut req = tonic::Request::new(pb::ActiveServersRequest {});
                req.set_timeout(FETCH_TIMEOUT);
                let set = PluginSet::from_proto(client.active_servers(req).await?.into_inner());
                tracing::info!(
                    fingerprint = %set.fingerprint,
                    servers = set.servers.len(),
                    "plugin set changed"
                );
                sets.send_replace(Some(Arc::new(set)));
                Ok(())
            }
        },
        stop,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const SECRET: &str = "s3cret-value-never-in-argv";

    fn set() -> PluginSet {
        PluginSet::from_proto(pb::ActiveServersResponse {
            fingerprint: "f1".into(),
            servers: vec![
                pb::McpServer {
                    plugin_name: "everything".into(),
                    server_name: "everything".into(),
                    command: "/opt/p/bin/server".into(),
                    args: vec!["stdio".into(), "--greeting=hi".into()],
                    env: [("TOKEN".to_owned(), SECRET.to_owned())].into(),
                    cwd: "/opt/p".into(),
                    ..Default::default()
                },
                pb::McpServer {
                    plugin_name: "broken".into(),
                    server_name: "broken".into(),
                    command: "A=B".into(),
                    ..Default::default()
                },
            ],
        })
    }

    #[test]
    fn the_config_file_is_owner_only_json_and_gone_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        // A leftover of a crashed spawn, world-readable: replaced, not reused.
        std::fs::write(dir.path().join(MCP_CONFIG_FILE), "stale").unwrap();
        std::fs::set_permissions(
            dir.path().join(MCP_CONFIG_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();

        let file = write_mcp_config(dir.path(), &set(), None).unwrap().unwrap();
        assert_eq!(file.path(), dir.path().join(MCP_CONFIG_FILE));
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"mcpServers": {"everything": {
                "type": "stdio",
                "command": "/usr/bin/env",
                "args": ["-C", "/opt/p", "-u", "ANTHROPIC_API_KEY", "-u", "ANTHROPIC_AUTH_TOKEN",
                         "--", "/opt/p/bin/server", "stdio", "--greeting=hi"],
                "env": {"TOKEN": SECRET},
            }}}),
            "the server env would take for an assignment is left out"
        );
        let path = file.path().to_owned();
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn no_servers_no_file_and_secrets_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            write_mcp_config(dir.path(), &PluginSet::empty(), None)
                .unwrap()
                .is_none()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let shown = format!("{:?}", set());
        assert!(shown.contains("TOKEN"), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");
    }

    #[test]
    fn a_builtin_server_runs_csp_itself_with_the_door_and_is_left_out_without_it() {
        let set = PluginSet::from_proto(pb::ActiveServersResponse {
            fingerprint: "f2".into(),
            servers: vec![pb::McpServer {
                plugin_name: "tickets".into(),
                server_name: "tickets".into(),
                command: "csp".into(),
                args: vec!["mcp".into(), "tickets".into()],
                builtin: true,
                ..Default::default()
            }],
        });
        let dir = tempfile::tempdir().unwrap();
        assert!(write_mcp_config(dir.path(), &set, None).unwrap().is_none());
        let builtin = Builtin {
            command: PathBuf::from("/usr/local/bin/csp"),
            env: BTreeMap::from([
                (
                    "CSP_TICKET_TOOLS_URL",
                    SecretString::from("http://127.0.0.1:4182"),
                ),
                ("CSP_TICKET_TOOLS_TOKEN", SecretString::from(SECRET)),
            ]),
        };
        let file = write_mcp_config(dir.path(), &set, Some(&builtin))
            .unwrap()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"mcpServers": {"tickets": {
                "type": "stdio",
                "command": "/usr/bin/env",
                "args": ["-u", "ANTHROPIC_API_KEY", "-u", "ANTHROPIC_AUTH_TOKEN",
                         "--", "/usr/local/bin/csp", "mcp", "tickets"],
                "env": {"CSP_TICKET_TOOLS_URL": "http://127.0.0.1:4182", "CSP_TICKET_TOOLS_TOKEN": SECRET},
            }}})
        );
        assert!(!format!("{builtin:?}").contains(SECRET));
    }
}
