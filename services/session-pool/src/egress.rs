//! How agents reach the model and the network: never with the platform's
//! credentials, only through this replica's proxies (crate `csp-egress`).
//!
//! At start the model credential is taken out of the agents' environment
//! and given to the model proxy; every spawn gets a lease (a token that
//! dies with its process) as its `ANTHROPIC_API_KEY`, the proxy as its
//! `ANTHROPIC_BASE_URL`, and the egress proxy (the plugins' declared hosts)
//! as `HTTPS_PROXY`. Its built-in MCP servers get a second lease, for the
//! tool door (`tool_door.rs`) only, and csp's own executable to run.
//! Sandboxed agents reach the proxies and the door through Unix sockets
//! forwarded to fixed loopback ports inside their network namespace;
//! unsandboxed ones through loopback TCP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use csp_agent::{Forward, Reach, Sandbox, SpawnSpec};
use csp_egress::{ConnectProxy, Credential, Leases, Listener, ListenerAddr, ModelProxy, Upstream};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::plugins::{Builtin, PluginSet};
use crate::tool_door::ToolDoor;

/// The model credentials and endpoint csp holds; agents get none of them.
pub(crate) const MODEL_ENV: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
];

/// Inside a sandbox's network namespace: where the proxies appear.
const MODEL_PORT: u16 = 4180;
const EGRESS_PORT: u16 = 4181;
const TOOL_DOOR_PORT: u16 = 4182;

/// The proxies of one replica and what each spawn needs from them.
pub(crate) struct Egress {
    leases: Leases,
    /// The tool door's own tokens: a built-in MCP server never holds the
    /// model lease.
    tool_leases: Leases,
    sandboxed: bool,
    model_addr: ListenerAddr,
    connect_addr: ListenerAddr,
    door_addr: ListenerAddr,
    /// What built-in MCP servers run: this very executable (`csp mcp …`).
    /// `None` when it cannot be found; they are left out then.
    own_exe: Option<PathBuf>,
    /// Taken by `serve`.
    parts: std::sync::Mutex<Option<Parts>>,
}

struct Parts {
    model: ModelProxy,
    model_listener: Listener,
    connect: ConnectProxy,
    connect_listener: Listener,
    door_listener: Listener,
}

impl Egress {
    /// Takes the model settings out of `agent.env` (the model check reads
    /// the copy returned with it) and binds the proxies: Unix sockets in
    /// `<data_dir>/run` for sandboxed agents, else loopback TCP.
    pub(crate) async fn bind(
        agent: &mut csp_agent::Config,
        data_dir: &Path,
    ) -> Result<(Self, Vec<(String, String)>), Error> {
        let model_env: Vec<(String, String)> = agent
            .env
            .iter()
            .filter(|(k, _)| MODEL_ENV.contains(&k.as_str()))
            .cloned()
            .collect();
        agent.env.retain(|(k, _)| !MODEL_ENV.contains(&k.as_str()));
        let get = |name: &str| {
            model_env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let credential = match (get("ANTHROPIC_API_KEY"), get("ANTHROPIC_AUTH_TOKEN")) {
            (Some(key), _) => Credential::ApiKey(SecretString::from(key)),
            (None, Some(token)) => Credential::Bearer(SecretString::from(token)),
            (None, None) => Credential::None,
        };
        // A bad ANTHROPIC_BASE_URL is the operator's setting; a proxy that
        // cannot listen is not.
        let config_error = |e: csp_egress::Error| Error::Config(e.to_string());
        let upstream = Upstream::new(get("ANTHROPIC_BASE_URL").as_deref(), credential)
            .map_err(config_error)?;
        let leases = Leases::new();
        let model = ModelProxy::new(upstream, leases.clone()).map_err(config_error)?;
        let connect = ConnectProxy::new(leases.clone());
        let sandboxed = agent.sandbox.is_on();
        let (model_listener, connect_listener, door_listener) = if sandboxed {
            let run = data_dir.join("run");
            std::fs::create_dir_all(&run).map_err(|source| Error::DataDir {
                path: run.clone(),
                source,
            })?;
            restrict(&run)?;
            (
                Listener::unix(&run.join("model.sock")).map_err(Error::Egress)?,
                Listener::unix(&run.join("egress.sock")).map_err(Error::Egress)?,
                Listener::unix(&run.join("tools.sock")).map_err(Error::Egress)?,
            )
        } else {
            (
                Listener::loopback().await.map_err(Error::Egress)?,
                Listener::loopback().await.map_err(Error::Egress)?,
                Listener::loopback().await.map_err(Error::Egress)?,
            )
        };
        let own_exe = std::env::current_exe()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot find csp's own executable; built-in MCP servers are left out"))
            .ok();
        let egress = Self {
            leases,
            tool_leases: Leases::new(),
            sandboxed,
            model_addr: model_listener.local_addr(),
            connect_addr: connect_listener.local_addr(),
            door_addr: door_listener.local_addr(),
            own_exe,
            parts: std::sync::Mutex::new(Some(Parts {
                model,
                model_listener,
                connect,
                connect_listener,
                door_listener,
            })),
        };
        Ok((egress, model_env))
    }

    /// The tool door's tokens, for the door to check.
    pub(crate) fn tool_leases(&self) -> Leases {
        self.tool_leases.clone()
    }

    /// Serves both proxies and the tool door until `stop`.
    pub(crate) fn serve(&self, stop: &CancellationToken, door: ToolDoor) {
        let parts = self.parts.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = parts {
            tokio::spawn(p.model.serve(p.model_listener, stop.clone()));
            tokio::spawn(p.connect.serve(p.connect_listener, stop.clone()));
            tokio::spawn(door.serve(p.door_listener, stop.clone()));
        }
    }

    /// Gives one spawn of csp session `session` its credential, proxies
    /// and (when sandboxed) what it may see: its session directory, its
    /// plugins' directories and, when a built-in server runs, csp's
    /// executable. Returns what its built-in MCP servers run with.
    pub(crate) fn prepare(
        &self,
        spec: &mut SpawnSpec,
        session: csp_domain::SessionId,
        session_root: &Path,
        set: &PluginSet,
    ) -> Option<Builtin> {
        let hosts: Vec<String> = set
            .servers
            .iter()
            .flat_map(|s| s.network.iter().cloned())
            .collect();
        let lease = self.leases.issue(spec.session_id, &hosts);
        let (model_url, proxy_host, door_url) = if self.sandboxed {
            (
                format!("http://127.0.0.1:{MODEL_PORT}"),
                format!("127.0.0.1:{EGRESS_PORT}"),
                format!("http://127.0.0.1:{TOOL_DOOR_PORT}"),
            )
        } else {
            (
                format!("http://{}", self.model_addr),
                self.connect_addr.to_string(),
                format!("http://{}", self.door_addr),
            )
        };
        // Only processes that run a built-in server get a door token.
        let door = match &self.own_exe {
            Some(exe) if set.servers.iter().any(|s| s.builtin) => {
                let lease = self.tool_leases.issue(session.0, &[]);
                let env = BTreeMap::from([
                    (
                        csp_ticket_tools::door::URL_ENV,
                        SecretString::from(door_url),
                    ),
                    (
                        csp_ticket_tools::door::TOKEN_ENV,
                        SecretString::from(lease.token().to_owned()),
                    ),
                ]);
                Some((
                    Builtin {
                        command: exe.clone(),
                        env,
                    },
                    lease,
                ))
            }
            _ => None,
        };
        let proxy = format!("http://csp:{}@{proxy_host}", lease.token());
        spec.env = vec![
            ("ANTHROPIC_BASE_URL".into(), model_url),
            ("ANTHROPIC_API_KEY".into(), lease.token().to_owned()),
            ("HTTPS_PROXY".into(), proxy.clone()),
            ("https_proxy".into(), proxy.clone()),
            ("HTTP_PROXY".into(), proxy.clone()),
            ("http_proxy".into(), proxy),
            ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
            ("no_proxy".into(), "127.0.0.1,localhost".into()),
        ];
        if self.sandboxed {
            let (ListenerAddr::Unix(model), ListenerAddr::Unix(connect)) =
                (&self.model_addr, &self.connect_addr)
            else {
                unreachable!("sandboxed proxies listen on Unix sockets");
            };
            let ListenerAddr::Unix(tools) = &self.door_addr else {
                unreachable!("a sandboxed tool door listens on a Unix socket");
            };
            let mut read_only: Vec<PathBuf> = set
                .servers
                .iter()
                .filter_map(|s| s.plugin_dir.clone())
                .collect();
            let mut forwards = vec![
                Forward {
                    port: MODEL_PORT,
                    socket: model.clone(),
                },
                Forward {
                    port: EGRESS_PORT,
                    socket: connect.clone(),
                },
            ];
            if let Some((builtin, _)) = &door {
                read_only.push(builtin.command.clone());
                forwards.push(Forward {
                    port: TOOL_DOOR_PORT,
                    socket: tools.clone(),
                });
            }
            spec.reach = Reach {
                writable: vec![session_root.to_owned()],
                read_only,
                forwards,
            };
        }
        // Both tokens die with the process.
        let (builtin, door_lease) = door.unzip();
        spec.exit_guard = Some(Arc::new((lease, door_lease)));
        builtin
    }

    pub(crate) fn sandboxed(&self) -> bool {
        self.sandboxed
    }
}

/// Checks the sandbox at start; says what to do when it does not work.
pub(crate) async fn check_sandbox(sandbox: &Sandbox) -> Result<(), Error> {
    match sandbox {
        Sandbox::Off => {
            tracing::warn!(
                "CSP_AGENT_SANDBOX=off: agents run unconfined and can read everything this process can (its data directory, other sessions); use only on a machine that holds nothing else"
            );
            Ok(())
        }
        Sandbox::Bubblewrap(bwrap) => bwrap.check().await.map_err(|why| {
            Error::MissingDependency(format!(
                "the agent sandbox does not work on this machine ({why}); csp will not start agents without it. Install bubblewrap and socat and allow user namespaces (docs/operations.md), or set CSP_AGENT_SANDBOX=off to run agents unconfined"
            ))
        }),
    }
}

pub(crate) fn restrict(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        Error::DataDir {
            path: dir.to_owned(),
            source,
        }
    })
}
