//! Plugins in sessions: a scripted plugins service serves a set holding the
//! real MCP reference server; agents run it with its secrets, without the
//! model key, and the warm pool follows the set.

use super::{Pool, TOKENS, acquire, start_with, status, user, wait_for};
use csp_domain::{Event, SessionId, UserId};
use csp_mock_llm::{Behaviour, Rule, Rules};
use csp_proto::v1 as pb;
use csp_proto::v1::plugins_server::{Plugins, PluginsServer};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The example plugin's directory; `npm install` there installs the server.
fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/plugins/everything")
        .canonicalize()
        .unwrap()
}

fn everything_server() -> PathBuf {
    let path = plugin_dir().join("node_modules/.bin/mcp-server-everything");
    assert!(
        path.is_file(),
        "{} is missing: run `npm install` in examples/plugins/everything",
        path.display()
    );
    path
}

/// The active set `fingerprint` with the one server `everything`.
fn active(
    fingerprint: &str,
    env: &[(&str, &str)],
    cwd: Option<&Path>,
) -> pb::ActiveServersResponse {
    pb::ActiveServersResponse {
        fingerprint: fingerprint.into(),
        servers: vec![pb::McpServer {
            plugin_name: "everything".into(),
            server_name: "everything".into(),
            command: everything_server().display().to_string(),
            args: vec!["stdio".into()],
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            cwd: cwd.map(|p| p.display().to_string()).unwrap_or_default(),
            ..Default::default()
        }],
    }
}

/// A plugins service serving whatever set the test puts in `set`; `None`
/// is an outage (every call fails, open streams end).
#[derive(Clone)]
struct Registry {
    set: watch::Sender<Option<pb::ActiveServersResponse>>,
}

type SetStream = Pin<Box<dyn futures::Stream<Item = Result<pb::ActiveSet, Status>> + Send>>;

fn down() -> Status {
    Status::unavailable("the test registry is down")
}

#[tonic::async_trait]
impl Plugins for Registry {
    async fn list_plugins(
        &self,
        _: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        Err(Status::unimplemented("not used by the session-pool"))
    }
    async fn get_plugin(
        &self,
        _: Request<pb::GetPluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        Err(Status::unimplemented("not used by the session-pool"))
    }
    async fn activate_plugin(
        &self,
        _: Request<pb::PluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        Err(Status::unimplemented("not used by the session-pool"))
    }
    async fn deactivate_plugin(
        &self,
        _: Request<pb::PluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        Err(Status::unimplemented("not used by the session-pool"))
    }
    async fn configure_plugin(
        &self,
        _: Request<pb::ConfigurePluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        Err(Status::unimplemented("not used by the session-pool"))
    }
    async fn rescan(
        &self,
        _: Request<pb::RescanRequest>,
    ) -> Result<Response<pb::RescanResponse>, Status> {
        Err(Status::unimplemented("not used by the session-pool"))
    }

    async fn active_servers(
        &self,
        _: Request<pb::ActiveServersRequest>,
    ) -> Result<Response<pb::ActiveServersResponse>, Status> {
        self.set
            .borrow()
            .clone()
            .map(Response::new)
            .ok_or_else(down)
    }

    type WatchActiveSetStream = SetStream;

    async fn watch_active_set(
        &self,
        _: Request<pb::WatchActiveSetRequest>,
    ) -> Result<Response<SetStream>, Status> {
        if self.set.borrow().is_none() {
            return Err(down());
        }
        let sets = tokio_stream::wrappers::WatchStream::new(self.set.subscribe()).map(|set| {
            let set = set.ok_or_else(down)?;
            Ok(pb::ActiveSet {
                fingerprint: set.fingerprint,
                tools: Vec::new(),
                servers: set
                    .servers
                    .into_iter()
                    .map(|s| pb::PluginServer {
                        server_name: s.server_name,
                        plugin_name: s.plugin_name,
                        active: true,
                    })
                    .collect(),
            })
        });
        Ok(Response::new(Box::pin(sets)))
    }
}

/// Only csp services may ask (the session-pool calls with its service token).
fn access(path: &str) -> Option<csp_auth::Access> {
    path.starts_with("/csp.v1.Plugins/")
        .then_some(csp_auth::Access::Service)
}

/// Serves `registry` on a free port until the test ends; returns its address.
async fn serve(registry: Registry) -> String {
    let listener = csp_rpc::Listener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = format!("http://{}", listener.local_addr());
    let routes = tonic::service::Routes::new(PluginsServer::new(registry));
    let guard = csp_rpc::Guard::new(TOKENS.clone(), access);
    tokio::spawn(listener.serve(routes, guard, CancellationToken::new()));
    addr
}

fn rules() -> Rules {
    let rule = |contains: &str, tool: &str, input: serde_json::Value| Rule {
        contains: Some(contains.into()),
        starts_with: None,
        behaviour: Behaviour::tool_use(tool, input),
    };
    Rules::new(
        vec![
            rule(
                "use echo",
                "mcp__everything__echo",
                serde_json::json!({"message": "plugin says hi"}),
            ),
            rule(
                "use get-env",
                "mcp__everything__get-env",
                serde_json::json!({}),
            ),
        ],
        None,
    )
}

async fn start(prewarm: usize, max_sessions: usize, plugins_addr: String) -> Pool {
    start_with(
        prewarm,
        max_sessions,
        rules(),
        &["mcp__everything"],
        Some(plugins_addr),
    )
    .await
}

/// Sends `text` and returns the `(status, content)` of each tool result of
/// the turn it starts.
async fn tool_results(p: &mut Pool, u: UserId, id: SessionId, text: &str) -> Vec<(String, String)> {
    let mut results = Vec::new();
    for ev in super::turn(p, u, id, text).await {
        match ev.event {
            Event::ToolResult {
                status, content, ..
            } => results.push((format!("{status:?}"), content)),
            Event::Error { .. } => panic!("the turn failed"),
            _ => {}
        }
    }
    results
}

/// One process as `/proc` shows it.
#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    ppid: u32,
    cmdline: String,
    cwd: Option<PathBuf>,
}

fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let (Ok(cmdline), Ok(stat)) = (
            std::fs::read(format!("/proc/{pid}/cmdline")),
            std::fs::read_to_string(format!("/proc/{pid}/stat")),
        ) else {
            continue;
        };
        let Some(ppid) = stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        out.push(Proc {
            pid,
            ppid,
            cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
            cwd: std::fs::read_link(format!("/proc/{pid}/cwd")).ok(),
        });
    }
    out
}

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The agent CLIs of the pool in `data_dir`, by session id.
fn agents(data_dir: &Path) -> HashMap<SessionId, Proc> {
    let sessions = data_dir.canonicalize().unwrap().join("sessions");
    processes()
        .into_iter()
        .filter(|p| p.cmdline.contains("--strict-mcp-config"))
        .filter_map(|p| {
            let id = p
                .cwd
                .as_deref()?
                .strip_prefix(&sessions)
                .ok()?
                .components()
                .next()?
                .as_os_str()
                .to_str()?
                .parse()
                .ok()?;
            Some((id, p))
        })
        .collect()
}

/// The MCP reference servers the process `agent` runs.
fn mcp_servers_of(agent: u32) -> Vec<Proc> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == agent && p.cmdline.contains("mcp-server-everything"))
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Polls `f` for up to a minute.
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

fn config_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if entry.file_name() == "mcp-config.json" {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_run_plugin_servers_with_their_secrets_but_never_the_model_key() {
    let secret = format!("plugin-secret-{}", uuid::Uuid::new_v4().simple());
    let (set, _) = watch::channel(Some(active(
        "v1",
        &[("EVERYTHING_TOKEN", &secret)],
        Some(&plugin_dir()),
    )));
    let addr = serve(Registry { set }).await;
    let mut p = start(1, 2, addr).await;
    let ada = user(&p.store, "ada").await;
    wait_for(&mut p.client, |s| s.started && s.pool_depth == 1).await;
    let got = acquire(&mut p.client, ada).await.unwrap();
    assert!(got.warm);
    let id: SessionId = got.session_id.parse().unwrap();
    // The config file lives only while a CLI starts: once the refill is
    // done, none is left (it held the secret).
    wait_for(&mut p.client, |s| {
        s.pool_depth == 1 && s.active_sessions == 1
    })
    .await;
    assert_eq!(config_files(p.dir.path()), Vec::<PathBuf>::new());

    let echo = tool_results(&mut p, ada, id, "please use echo").await;
    assert_eq!(
        echo,
        [("Complete".to_owned(), "Echo: plugin says hi".to_owned())]
    );

    let env = tool_results(&mut p, ada, id, "now use get-env").await;
    assert_eq!(env.len(), 1, "{env:?}");
    let (status, content) = &env[0];
    assert_eq!(status, "Complete", "{content}");
    assert!(
        content.contains(&format!("\"EVERYTHING_TOKEN\": \"{secret}\"")),
        "{content}"
    );
    // The CLI itself runs with the key (the test sets it); its servers do not.
    assert!(!content.contains("ANTHROPIC_API_KEY"), "{content}");
    assert!(!content.contains("ANTHROPIC_AUTH_TOKEN"), "{content}");

    // The server runs (in its configured directory, with the secret in its
    // environment) and no process anywhere shows the secret in its argv.
    let agent = agents(p.dir.path()).remove(&id).expect("the session's CLI");
    let servers = mcp_servers_of(agent.pid);
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0].cwd.as_deref(), Some(plugin_dir().as_path()));
    assert!(environ(servers[0].pid).contains(&format!("EVERYTHING_TOKEN={secret}")));
    let leaks: Vec<Proc> = processes()
        .into_iter()
        .filter(|p| p.cmdline.contains(&secret))
        .collect();
    assert!(leaks.is_empty(), "the secret is in an argv: {leaks:?}");
    assert!(agent.cmdline.contains("--mcp-config"), "{}", agent.cmdline);
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_waits_for_the_first_set_and_rebuilds_warm_processes_when_it_changes() {
    let (set, _) = watch::channel(None);
    let addr = serve(Registry { set: set.clone() }).await;
    let mut p = start(1, 3, addr).await;
    let ada = user(&p.store, "ada").await;

    // The registry is down: nothing is pre-warmed without the plugins.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = status(&mut p.client).await;
    assert_eq!((s.started, s.pool_depth), (false, 0), "{s:?}");
    assert!(agents(p.dir.path()).is_empty());

    // It comes up: the follower reconnects and the pool fills.
    set.send_replace(Some(active("v1", &[("GREETING", "one")], None)));
    wait_for(&mut p.client, |s| s.started && s.pool_depth == 1).await;
    let first = acquire(&mut p.client, ada).await.unwrap();
    assert!(first.warm);
    let active_id: SessionId = first.session_id.parse().unwrap();
    assert_eq!(
        tool_results(&mut p, ada, active_id, "use echo").await,
        [("Complete".to_owned(), "Echo: plugin says hi".to_owned())]
    );
    let active_pid = agents(p.dir.path())[&active_id].pid;
    let active_server = mcp_servers_of(active_pid)[0].pid;
    wait_for(&mut p.client, |s| {
        s.pool_depth == 1 && s.active_sessions == 1
    })
    .await;
    let (old_id, old) = eventually("the refilled warm process is seen", || {
        agents(p.dir.path())
            .into_iter()
            .find(|(id, _)| *id != active_id)
    })
    .await;

    // A new set: the warm process is replaced by one that runs the new set.
    set.send_replace(Some(active("v2", &[("GREETING", "two")], None)));
    let (new_id, new) = eventually("the warm process is replaced", || {
        agents(p.dir.path())
            .into_iter()
            .find(|(id, _)| *id != active_id && *id != old_id)
    })
    .await;
    eventually("the old warm process ends", || {
        (!alive(old.pid)).then_some(())
    })
    .await;
    let server = eventually("the new warm process runs its server", || {
        mcp_servers_of(new.pid).pop()
    })
    .await;
    assert!(environ(server.pid).contains(&"GREETING=two".to_owned()));
    eventually("the old warm process's directory goes", || {
        (!p.dir
            .path()
            .join("sessions")
            .join(old_id.to_string())
            .exists())
        .then_some(())
    })
    .await;

    // The active session kept its process and its server, and still works.
    assert!(alive(active_pid) && alive(active_server));
    assert_eq!(agents(p.dir.path())[&active_id].pid, active_pid);
    assert_eq!(
        tool_results(&mut p, ada, active_id, "use echo again").await,
        [("Complete".to_owned(), "Echo: plugin says hi".to_owned())]
    );
    assert!(environ(active_server).contains(&"GREETING=one".to_owned()));

    // The next user gets the new warm process.
    wait_for(&mut p.client, |s| s.pool_depth == 1).await;
    let second = acquire(&mut p.client, ada).await.unwrap();
    assert!(second.warm);
    assert_eq!(second.session_id, new_id.to_string());
    p.stop.cancel();
}
