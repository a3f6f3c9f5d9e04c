//! Plugin tool roles at the permission gate, learned from a scripted
//! plugins service over real gRPC.

use super::{Running, start_config, tokens};
use csp_domain::{Role, SessionId, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::plugins_server::{Plugins, PluginsServer};
use csp_store::NewUser;
use csp_store::test_support::Backend;
use futures::StreamExt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// A plugins service streaming whatever catalog the test puts in `set`;
/// `None` is an outage (opening fails, open streams end).
#[derive(Clone)]
struct Registry {
    set: watch::Sender<Option<pb::ActiveSet>>,
}

type SetStream = Pin<Box<dyn futures::Stream<Item = Result<pb::ActiveSet, Status>> + Send>>;

fn down() -> Status {
    Status::unavailable("the test registry is down")
}

fn unused() -> Status {
    Status::unimplemented("not used by the policy service")
}

#[tonic::async_trait]
impl Plugins for Registry {
    async fn list_plugins(
        &self,
        _: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        Err(unused())
    }
    async fn get_plugin(
        &self,
        _: Request<pb::GetPluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        Err(unused())
    }
    async fn activate_plugin(
        &self,
        _: Request<pb::PluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        Err(unused())
    }
    async fn deactivate_plugin(
        &self,
        _: Request<pb::PluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        Err(unused())
    }
    async fn configure_plugin(
        &self,
        _: Request<pb::ConfigurePluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        Err(unused())
    }
    async fn rescan(
        &self,
        _: Request<pb::RescanRequest>,
    ) -> Result<Response<pb::RescanResponse>, Status> {
        Err(unused())
    }
    async fn active_servers(
        &self,
        _: Request<pb::ActiveServersRequest>,
    ) -> Result<Response<pb::ActiveServersResponse>, Status> {
        // Secrets are the session-pool's alone.
        Err(unused())
    }

    type WatchActiveSetStream = SetStream;

    async fn watch_active_set(
        &self,
        _: Request<pb::WatchActiveSetRequest>,
    ) -> Result<Response<SetStream>, Status> {
        if self.set.borrow().is_none() {
            return Err(down());
        }
        let sets = tokio_stream::wrappers::WatchStream::new(self.set.subscribe())
            .map(|set| set.ok_or_else(down));
        Ok(Response::new(Box::pin(sets)))
    }
}

fn access(path: &str) -> Option<csp_auth::Access> {
    path.starts_with("/csp.v1.Plugins/")
        .then_some(csp_auth::Access::Service)
}

/// A registry serving `set` on a free port, and a policy service following
/// it with `tool_roles` as `CSP_TOOL_ROLES`.
async fn start(
    backend: Backend,
    set: Option<pb::ActiveSet>,
    tool_roles: &str,
) -> (Running, watch::Sender<Option<pb::ActiveSet>>) {
    let (tx, _) = watch::channel(set);
    let listener = csp_rpc::Listener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = format!("http://{}", listener.local_addr());
    let routes = tonic::service::Routes::new(PluginsServer::new(Registry { set: tx.clone() }));
    let guard = csp_rpc::Guard::new(tokens(), access);
    tokio::spawn(listener.serve(routes, guard, CancellationToken::new()));
    let running = start_config(
        backend.store().await,
        Arc::new(csp_policy::SystemClock),
        csp_policy::ToolRoles::parse(tool_roles).unwrap(),
        Some(addr),
    )
    .await;
    (running, tx)
}

fn tool(name: &str, plugin: &str, role: &str, active: bool) -> pb::PluginToolRole {
    pb::PluginToolRole {
        tool_name: name.into(),
        plugin_name: plugin.into(),
        required_role: role.into(),
        active,
    }
}

fn server(name: &str, active: bool) -> pb::PluginServer {
    pb::PluginServer {
        server_name: name.into(),
        plugin_name: name.into(),
        active,
    }
}

/// `everything` is active (echo for users, add for operators); `slack` is
/// registered but not active.
fn catalog(fingerprint: &str, slack_active: bool) -> pb::ActiveSet {
    pb::ActiveSet {
        fingerprint: fingerprint.into(),
        tools: vec![
            tool("mcp__everything__echo", "everything", "user", true),
            tool("mcp__everything__add", "everything", "operator", true),
            tool("mcp__slack__send", "slack", "user", slack_active),
        ],
        servers: vec![server("everything", true), server("slack", slack_active)],
    }
}

async fn user(r: &Running, name: &str, role: Role) -> UserId {
    r.store
        .create_user(NewUser {
            username: name.into(),
            password_hash: "x".into(),
            role,
            monthly_cost_cap_micros: None,
        })
        .await
        .unwrap()
        .user_id
}

async fn check(r: &mut Running, u: UserId, tool: &str) -> pb::CheckToolResponse {
    r.client
        .check_tool(pb::CheckToolRequest {
            user_id: u.to_string(),
            session_id: SessionId::new().to_string(),
            tool_name: tool.into(),
            input_json: "{}".into(),
            tool_use_id: "toolu_1".into(),
            session_role: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Asks until the answer for `tool` satisfies `f` (the catalog arrives
/// asynchronously); bounded.
async fn until(
    r: &mut Running,
    u: UserId,
    tool: &str,
    f: impl Fn(&pb::CheckToolResponse) -> bool,
) -> pb::CheckToolResponse {
    for _ in 0..200 {
        let got = check(r, u, tool).await;
        if f(&got) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{tool}: last answer {:?}", check(r, u, tool).await);
}

fn denied(reason: &str, message: &str) -> pb::CheckToolResponse {
    pb::CheckToolResponse {
        allowed: false,
        message: message.into(),
        reason: reason.into(),
        role: "user".into(),
    }
}

async fn plugin_tools_take_their_manifest_roles_and_inactive_or_undeclared_ones_never_run(
    backend: Backend,
) {
    let (mut r, registry) = start(backend, Some(catalog("v1", false)), "").await;
    let ursula = user(&r, "ursula", Role::User).await;
    let opal = user(&r, "opal", Role::Operator).await;

    let echo = until(&mut r, ursula, "mcp__everything__echo", |c| c.allowed).await;
    assert_eq!(echo.reason, "");
    // The operator-role tool: the normal role denial.
    assert_eq!(
        check(&mut r, ursula, "mcp__everything__add").await,
        denied(
            "tool_role",
            "Tool 'mcp__everything__add' was denied. This action requires operator access. Contact your administrator."
        )
    );
    assert!(check(&mut r, opal, "mcp__everything__add").await.allowed);
    // A registered plugin that is not active: nobody, whatever the role.
    assert_eq!(
        check(&mut r, ursula, "mcp__slack__send").await,
        denied(
            "plugin_inactive",
            "The plugin 'slack' that provides this tool is not active."
        )
    );
    assert!(!check(&mut r, opal, "mcp__slack__send").await.allowed);
    // A tool of a plugin's server that its manifest does not declare.
    assert_eq!(
        check(&mut r, ursula, "mcp__everything__get-env").await,
        denied(
            "plugin_undeclared",
            "Tool 'mcp__everything__get-env' is not declared in the manifest of plugin 'everything'."
        )
    );
    // An MCP tool no registered plugin accounts for (its plugin was
    // removed): nobody; built-ins are untouched.
    assert_eq!(
        check(&mut r, ursula, "mcp__other__x").await,
        denied(
            "plugin_unregistered",
            "Tool 'mcp__other__x' does not belong to a registered plugin."
        )
    );
    assert!(!check(&mut r, opal, "mcp__other__x").await.allowed);
    assert!(check(&mut r, ursula, "Read").await.allowed);

    // Activating the plugin reaches the gate without a restart.
    registry.send_replace(Some(catalog("v2", true)));
    until(&mut r, ursula, "mcp__slack__send", |c| c.allowed).await;
    r.stop.cancel();
}

async fn an_unreachable_registry_blocks_mcp_tools_and_explicit_roles_win(backend: Backend) {
    let (mut r, registry) = start(
        backend,
        None,
        "mcp__everything__add=user, mcp__slack=disabled",
    )
    .await;
    let ursula = user(&r, "ursula", Role::User).await;
    let opal = user(&r, "opal", Role::Operator).await;

    // No catalog yet: MCP tools are blocked even for roles that would pass
    // the MCP default, except those CSP_TOOL_ROLES names; built-ins run.
    let unreachable = denied(
        "plugins_unreachable",
        "Tool call blocked: the plugin registry is unreachable. Try again in a moment.",
    );
    assert_eq!(
        check(&mut r, ursula, "mcp__everything__echo").await,
        unreachable
    );
    let op = check(&mut r, opal, "mcp__other__x").await;
    assert_eq!(
        (op.allowed, op.reason.as_str()),
        (false, "plugins_unreachable")
    );
    assert!(check(&mut r, ursula, "mcp__everything__add").await.allowed);
    assert!(check(&mut r, ursula, "Read").await.allowed);

    // The registry answers: the catalog applies, but CSP_TOOL_ROLES still
    // wins over the manifest (add is operator there, slack's send user).
    registry.send_replace(Some(catalog("v1", true)));
    until(&mut r, ursula, "mcp__everything__echo", |c| c.allowed).await;
    assert!(check(&mut r, ursula, "mcp__everything__add").await.allowed);
    assert_eq!(
        check(&mut r, ursula, "mcp__slack__send").await,
        denied(
            "disabled",
            "Tool 'mcp__slack__send' is disabled in this deployment."
        )
    );

    // It goes away again: the last catalog stays in force.
    registry.send_replace(None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(check(&mut r, ursula, "mcp__everything__echo").await.allowed);
    assert_eq!(
        check(&mut r, ursula, "mcp__everything__get-env")
            .await
            .reason,
        "plugin_undeclared"
    );
    r.stop.cancel();
}

csp_store::backend_tests!(
    #[tokio::test(flavor = "multi_thread")]
    plugin_tools_take_their_manifest_roles_and_inactive_or_undeclared_ones_never_run,
    an_unreachable_registry_blocks_mcp_tools_and_explicit_roles_win,
);
