//! The plugins service over real gRPC, with a real plugins directory and
//! file watcher, each case on both databases (`csp_store::backend_tests!`).

use csp_auth::Tokens;
use csp_bus::Queue;
use csp_domain::{AUDIT_TOPIC, AuditEvent, ErrorCode, Role, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::plugins_client::PluginsClient;
use csp_store::test_support::{Backend, TestStore};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn tokens() -> Tokens {
    Tokens::new(
        &SecretString::from("plugins-test-secret-0123456789-abcdef"),
        Duration::from_secs(60),
    )
    .unwrap()
}

/// A fresh random key.
fn key() -> csp_secrets::SecretKey {
    csp_secrets::SecretKey::generate().0
}

struct Running {
    channel: tonic::transport::Channel,
    store: TestStore,
    queue: Arc<csp_bus::InProcessQueue>,
    dir: PathBuf,
    stop: CancellationToken,
    _tmp: Option<tempfile::TempDir>,
}

impl Running {
    fn client(&self) -> PluginsClient<tonic::transport::Channel> {
        PluginsClient::new(self.channel.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(backend: Backend, keys: Option<csp_secrets::Keyring>) -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    let store = backend.store().await;
    let mut r = start_on(store, dir, keys).await;
    r._tmp = Some(tmp);
    r
}

async fn start_on(
    store: TestStore,
    dir: PathBuf,
    keyring: Option<csp_secrets::Keyring>,
) -> Running {
    let queue = Arc::new(csp_bus::InProcessQueue::new());
    let server = csp_plugins::Server::build(
        csp_plugins::Config {
            keyring,
            debounce: Duration::from_millis(100),
            // Long: the watcher, not the backstop, must find new plugins.
            rescan_every: Duration::from_secs(3600),
            ..csp_plugins::Config::new("127.0.0.1:0".parse().unwrap(), tokens(), dir.clone())
        },
        store.shared(),
        queue.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(server.run(stop.clone()));
    Running {
        channel: csp_rpc::channel(&format!("http://{addr}")).unwrap(),
        store,
        queue,
        dir,
        stop,
        _tmp: None,
    }
}

async fn user(r: &Running, role: Role, active: bool) -> (UserId, String) {
    let name = format!(
        "{}-{}",
        role.as_str(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let u = csp_store::test_support::user(&*r.store, &name, role, active).await;
    let (token, _) = tokens().issue(u.user_id, &name, role).unwrap();
    (u.user_id, token)
}

fn service_token() -> String {
    tokens()
        .issue_service("session-pool", Duration::from_secs(60))
        .unwrap()
}

fn as_<T>(token: &str, msg: T) -> tonic::Request<T> {
    csp_rpc::bearer(msg, token)
}

fn write(dir: &Path, name: &str, manifest: &Value) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("plugin.json"),
        serde_json::to_string_pretty(manifest).unwrap(),
    )
    .unwrap();
}

/// An MCP plugin with a required secret and an optional setting.
fn configurable(name: &str) -> Value {
    json!({
        "manifest_version": 1,
        "name": name,
        "version": "1.2.3",
        "plugin_type": "mcp",
        "description": "needs a token",
        "required_role": "operator",
        "capabilities": {"tools": [
            {"name": format!("mcp__{name}__ping"), "required_role": "user"},
            {"name": format!("mcp__{name}__admin_only"), "required_role": "admin"},
            {"name": format!("mcp__{name}__default_role")}
        ]},
        "config_schema": {
            "type": "object",
            "properties": {
                "token": {"type": "string", "secret": true},
                "greeting": {"type": "string", "default": "hello"},
                "retries": {"type": "integer", "minimum": 0},
                "signing_key": {"type": "string", "secret": true}
            },
            "required": ["token"]
        },
        "mcp": {
            "command": "${plugin_dir}/bin/server",
            "args": ["--greeting", "${config.greeting}"],
            "env": {"TOKEN": "${config.token}"}
        }
    })
}

/// An MCP plugin with nothing to configure.
fn plain(name: &str) -> Value {
    json!({
        "manifest_version": 1,
        "name": name,
        "version": "0.1.0",
        "plugin_type": "mcp",
        "description": "nothing to configure",
        "capabilities": {"tools": [{"name": format!("mcp__{name}__go")}]},
        "mcp": {"command": "/bin/cat"}
    })
}

async fn list(r: &Running, token: &str) -> Vec<pb::Plugin> {
    r.client()
        .list_plugins(as_(token, pb::ListPluginsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .plugins
}

async fn plugin(r: &Running, token: &str, name: &str) -> pb::Plugin {
    r.client()
        .get_plugin(as_(token, pb::GetPluginRequest { name: name.into() }))
        .await
        .unwrap()
        .into_inner()
}

async fn configure(
    r: &Running,
    token: &str,
    name: &str,
    config: Value,
) -> Result<pb::Plugin, tonic::Status> {
    r.client()
        .configure_plugin(as_(
            token,
            pb::ConfigurePluginRequest {
                name: name.into(),
                config_json: config.to_string(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn activate(r: &Running, token: &str, name: &str) -> Result<pb::Plugin, tonic::Status> {
    r.client()
        .activate_plugin(as_(token, pb::PluginRequest { name: name.into() }))
        .await
        .map(|r| r.into_inner())
}

async fn rescan(r: &Running, token: &str) -> pb::RescanResponse {
    r.client()
        .rescan(as_(token, pb::RescanRequest::default()))
        .await
        .unwrap()
        .into_inner()
}

async fn active_servers(r: &Running) -> pb::ActiveServersResponse {
    r.client()
        .active_servers(as_(&service_token(), pb::ActiveServersRequest {}))
        .await
        .unwrap()
        .into_inner()
}

fn code(s: &tonic::Status) -> ErrorCode {
    csp_rpc::error_code(s)
}

fn message(s: &tonic::Status) -> String {
    csp_rpc::user_message(s).unwrap_or_default()
}

async fn every_rpc_admits_exactly_the_roles_it_names(backend: Backend) {
    let r = start(backend, None).await;
    write(&r.dir, "p", &plain("p"));
    let (_, plain_user) = user(&r, Role::User, true).await;
    let (_, operator) = user(&r, Role::Operator, true).await;
    let (_, admin) = user(&r, Role::Admin, true).await;
    let (_, gone) = user(&r, Role::Operator, false).await;
    let service = service_token();
    rescan(&r, &operator).await;

    async fn call(r: &Running, method: &str, token: Option<&str>) -> Result<(), ErrorCode> {
        let mut c = r.client();
        fn req<T>(token: Option<&str>, m: T) -> tonic::Request<T> {
            match token {
                Some(t) => as_(t, m),
                None => tonic::Request::new(m),
            }
        }
        let named = || pb::PluginRequest { name: "p".into() };
        let res = match method {
            "ListPlugins" => c
                .list_plugins(req(token, pb::ListPluginsRequest {}))
                .await
                .map(drop),
            "GetPlugin" => c
                .get_plugin(req(token, pb::GetPluginRequest { name: "p".into() }))
                .await
                .map(drop),
            "ActivatePlugin" => c.activate_plugin(req(token, named())).await.map(drop),
            "DeactivatePlugin" => c.deactivate_plugin(req(token, named())).await.map(drop),
            "ConfigurePlugin" => c
                .configure_plugin(req(
                    token,
                    pb::ConfigurePluginRequest {
                        name: "p".into(),
                        config_json: "{}".into(),
                    },
                ))
                .await
                .map(drop),
            "Rescan" => c
                .rescan(req(token, pb::RescanRequest::default()))
                .await
                .map(drop),
            "ActiveServers" => c
                .active_servers(req(token, pb::ActiveServersRequest {}))
                .await
                .map(drop),
            "WatchActiveSet" => c
                .watch_active_set(req(token, pb::WatchActiveSetRequest {}))
                .await
                .map(drop),
            other => panic!("no case for {other}"),
        };
        res.map_err(|s| code(&s))
    }

    let operator_methods = [
        "ListPlugins",
        "GetPlugin",
        "ActivatePlugin",
        "DeactivatePlugin",
        "ConfigurePlugin",
        "Rescan",
    ];
    for m in operator_methods {
        assert_eq!(
            call(&r, m, None).await,
            Err(ErrorCode::Unauthenticated),
            "{m}"
        );
        let e = r
            .client()
            .list_plugins(as_(&plain_user, pb::ListPluginsRequest {}))
            .await
            .unwrap_err();
        assert_eq!(
            message(&e),
            "Insufficient permissions. Required role: operator.",
            "{m}"
        );
        assert_eq!(
            call(&r, m, Some(&plain_user)).await,
            Err(ErrorCode::PermissionDenied),
            "{m}"
        );
        assert_eq!(call(&r, m, Some(&operator)).await, Ok(()), "{m}");
        assert_eq!(call(&r, m, Some(&admin)).await, Ok(()), "{m}");
        assert_eq!(
            call(&r, m, Some(&gone)).await,
            Err(ErrorCode::AccountDeactivated),
            "{m}"
        );
        // Services act for no one: operator actions need a person.
        assert!(call(&r, m, Some(&service)).await.is_err(), "{m}");
    }
    for m in ["ActiveServers", "WatchActiveSet"] {
        assert_eq!(
            call(&r, m, None).await,
            Err(ErrorCode::Unauthenticated),
            "{m}"
        );
        for t in [&plain_user, &operator, &admin] {
            assert!(
                call(&r, m, Some(t)).await.is_err(),
                "{m}: users never see secrets"
            );
        }
        assert_eq!(call(&r, m, Some(&service)).await, Ok(()), "{m}");
    }
    // Secret values go to the session-pool alone, not to any service.
    let gateway = tokens()
        .issue_service("gateway", Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        call(&r, "ActiveServers", Some(&gateway)).await,
        Err(ErrorCode::PermissionDenied)
    );
    assert_eq!(call(&r, "WatchActiveSet", Some(&gateway)).await, Ok(()));
}

async fn a_directory_created_while_running_is_found_by_the_watcher(backend: Backend) {
    let r = start(backend, None).await;
    let (_, op) = user(&r, Role::Operator, true).await;
    let names = |found: &[pb::Plugin]| found.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    // Only the built-in plugin, before anything is installed.
    assert_eq!(names(&list(&r, &op).await), ["tickets"]);

    write(&r.dir, "needs-token", &configurable("needs-token"));
    write(&r.dir, "just-works", &plain("just-works"));
    std::fs::create_dir_all(r.dir.join("broken")).unwrap();
    std::fs::write(
        r.dir.join("broken/plugin.json"),
        "{\n  \"name\": \"broken\"\n  \"version\": \"1.0.0\"\n}",
    )
    .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let found = loop {
        let found = list(&r, &op).await;
        if found.len() == 4 {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher did not pick the plugins up: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by = |n: &str| found.iter().find(|p| p.name == n).unwrap().clone();
    assert_eq!(by("needs-token").status, "needs_config");
    assert_eq!(by("just-works").status, "ready");
    let broken = by("broken");
    assert_eq!(broken.status, "errored");
    let e = &broken.errors[0];
    assert_eq!(e.line, 3, "{e:?}");
    assert!(
        e.message.contains("Expected comma after 'name' field"),
        "{e:?}"
    );
    assert!(e.file.ends_with("broken/plugin.json"), "{e:?}");
    assert!(!e.suggestion.is_empty(), "{e:?}");

    // Removing a directory removes the plugin.
    std::fs::remove_dir_all(r.dir.join("just-works")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while list(&r, &op).await.iter().any(|p| p.name == "just-works") {
        assert!(tokio::time::Instant::now() < deadline, "removal not seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn secrets_are_encrypted_at_rest_and_redacted_everywhere(backend: Backend) {
    let ring = csp_secrets::Keyring::new(key(), Vec::new());
    let r = start(backend, Some(ring.clone())).await;
    write(&r.dir, "vault", &configurable("vault"));
    rescan(&r, &user(&r, Role::Operator, true).await.1).await;
    let (op_id, op) = user(&r, Role::Operator, true).await;
    const SECRET: &str = "xoxb-very-secret-value-42";

    // Invalid values name their fields; nothing is stored.
    let e = configure(
        &r,
        &op,
        "vault",
        json!({"token": SECRET, "retries": -1, "colour": "red"}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidPluginConfig);
    let m = message(&e);
    assert!(m.contains("retries") && m.contains("colour"), "{m}");
    assert!(!m.contains(SECRET), "{m}");
    assert!(r.store.plugin_state("vault").await.unwrap().is_none());
    let e = configure(&r, &op, "vault", json!({"greeting": "hi"}))
        .await
        .unwrap_err();
    assert!(
        message(&e).contains("token"),
        "a required secret is named: {}",
        message(&e)
    );

    let p = configure(&r, &op, "vault", json!({"token": SECRET, "greeting": "hi"}))
        .await
        .unwrap();
    assert_eq!(p.status, "configured");
    let shown: Value = serde_json::from_str(&p.config_json).unwrap();
    assert_eq!(shown, json!({"token": "[REDACTED]", "greeting": "hi"}));
    assert_eq!(p.secrets_set, ["token"]);
    let debug = format!("{p:?}");
    assert!(!debug.contains(SECRET), "the API never returns it: {debug}");

    // At rest: encrypted under the key's version, plaintext nowhere.
    let state = r.store.plugin_state("vault").await.unwrap().unwrap();
    assert!(
        !Value::Object(state.config.clone())
            .to_string()
            .contains(SECRET)
    );
    let stored = &state.secrets[0];
    assert_eq!(stored.encryption_key_version, ring.current_version());
    assert!(!stored.encrypted_value.contains(SECRET));
    let opened = ring
        .open(&csp_secrets::Sealed {
            token: stored.encrypted_value.clone(),
            key_version: stored.encryption_key_version.clone(),
        })
        .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), SECRET);

    // "[REDACTED]" (or leaving it out) keeps the stored value.
    let before = stored.encrypted_value.clone();
    configure(
        &r,
        &op,
        "vault",
        json!({"token": "[REDACTED]", "greeting": "hey"}),
    )
    .await
    .unwrap();
    configure(&r, &op, "vault", json!({"greeting": "hey"}))
        .await
        .unwrap();
    let state = r.store.plugin_state("vault").await.unwrap().unwrap();
    assert_eq!(state.secrets[0].encrypted_value, before);

    // The audit trail names the operator and the keys, never the value.
    let mut deliveries = r.queue.pull(AUDIT_TOPIC, "test").await.unwrap();
    let mut events = Vec::new();
    while let Ok(Some(d)) =
        tokio::time::timeout(Duration::from_millis(500), deliveries.next()).await
    {
        let d = d.unwrap();
        let e: AuditEvent = serde_json::from_slice(&d.payload).unwrap();
        d.ack().await.unwrap();
        if e.tool_name != "plugin.rescan" {
            events.push(e);
        }
    }
    assert_eq!(events.len(), 3, "{events:?}");
    for e in &events {
        assert_eq!(e.tool_name, "plugin.configure");
        assert_eq!(e.user_id, Some(op_id));
        assert!(!e.sanitized_input.contains(SECRET), "{e:?}");
        assert!(e.sanitized_input.contains("vault"), "{e:?}");
    }

    // null removes an optional secret; a required one cannot be removed.
    let p = configure(&r, &op, "vault", json!({"signing_key": "k-1"}))
        .await
        .unwrap();
    assert_eq!(p.secrets_set, ["signing_key", "token"]);
    let p = configure(&r, &op, "vault", json!({"signing_key": null}))
        .await
        .unwrap();
    assert_eq!(p.secrets_set, ["token"]);
    assert_eq!(p.status, "configured");
    let e = configure(&r, &op, "vault", json!({"token": null}))
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "Invalid configuration for plugin 'vault': token: missing required field."
    );
}

async fn activation_publishes_the_active_set_with_roles_and_decrypted_servers(backend: Backend) {
    let r = start(backend, Some(csp_secrets::Keyring::new(key(), Vec::new()))).await;
    write(&r.dir, "vault", &configurable("vault"));
    write(
        &r.dir,
        "skills",
        &json!({
            "manifest_version": 1, "name": "skills", "version": "1.0.0", "plugin_type": "skill",
            "description": "not runnable in sessions", "capabilities": {"tools": []}
        }),
    );
    let (op_id, op) = user(&r, Role::Operator, true).await;
    rescan(&r, &op).await;

    let mut watch = r
        .client()
        .watch_active_set(as_(&service_token(), pb::WatchActiveSetRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    let vault_tools: Vec<_> = first
        .tools
        .iter()
        .filter(|t| t.plugin_name == "vault")
        .collect();
    assert_eq!(vault_tools.len(), 3);
    assert!(vault_tools.iter().all(|t| !t.active));
    let role_of = |set: &pb::ActiveSet, tool: &str| {
        set.tools
            .iter()
            .find(|t| t.tool_name == tool)
            .map(|t| t.required_role.clone())
            .unwrap()
    };
    assert_eq!(role_of(&first, "mcp__vault__ping"), "user");
    assert_eq!(role_of(&first, "mcp__vault__admin_only"), "admin");
    assert_eq!(role_of(&first, "mcp__vault__default_role"), "operator");

    // Not yet: needs configuration; a skill plugin never runs in sessions.
    let e = activate(&r, &op, "vault").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::PluginNotActivatable);
    assert!(
        message(&e).contains("needs configuration"),
        "{}",
        message(&e)
    );
    let e = activate(&r, &op, "skills").await.unwrap_err();
    assert_eq!(
        message(&e),
        "Plugin 'skills' is a skill plugin; only mcp plugins run in sessions."
    );
    assert_eq!(plugin(&r, &op, "skills").await.status, "registered");
    let e = activate(&r, &op, "nope").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::PluginNotFound);

    configure(&r, &op, "vault", json!({"token": "tok-123"}))
        .await
        .unwrap();
    let p = activate(&r, &op, "vault").await.unwrap();
    assert_eq!(p.status, "activated");
    assert!(p.active);

    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a change is streamed")
        .unwrap()
        .unwrap();
    assert_ne!(next.fingerprint, first.fingerprint);
    assert!(
        next.tools
            .iter()
            .filter(|t| t.plugin_name == "vault")
            .all(|t| t.active)
    );

    let servers = active_servers(&r).await;
    assert_eq!(servers.fingerprint, next.fingerprint);
    assert_eq!(servers.servers.len(), 1);
    let s = &servers.servers[0];
    assert_eq!(s.server_name, "vault");
    assert!(s.command.ends_with("/vault/bin/server"), "{s:?}");
    assert!(Path::new(&s.command).is_absolute(), "{s:?}");
    assert_eq!(s.args, ["--greeting", "hello"], "defaults apply");
    assert_eq!(s.env.get("TOKEN").map(String::as_str), Some("tok-123"));

    // Deactivation streams again and empties the set.
    r.client()
        .deactivate_plugin(as_(
            &op,
            pb::PluginRequest {
                name: "vault".into(),
            },
        ))
        .await
        .unwrap();
    let after = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(after.tools.iter().all(|t| !t.active));
    assert!(active_servers(&r).await.servers.is_empty());

    // Both actions were audited with the operator.
    let mut deliveries = r.queue.pull(AUDIT_TOPIC, "test").await.unwrap();
    let mut actions = Vec::new();
    while let Ok(Some(d)) =
        tokio::time::timeout(Duration::from_millis(500), deliveries.next()).await
    {
        let d = d.unwrap();
        let e: AuditEvent = serde_json::from_slice(&d.payload).unwrap();
        assert_eq!(e.user_id, Some(op_id));
        actions.push(e.tool_name);
        d.ack().await.unwrap();
    }
    assert_eq!(
        actions,
        [
            "plugin.rescan",
            "plugin.configure",
            "plugin.activate",
            "plugin.deactivate"
        ]
    );
}

async fn a_broken_edit_keeps_the_running_version_and_reports_the_error(backend: Backend) {
    let r = start(backend, Some(csp_secrets::Keyring::new(key(), Vec::new()))).await;
    write(&r.dir, "live", &plain("live"));
    let (_, op) = user(&r, Role::Operator, true).await;
    rescan(&r, &op).await;
    activate(&r, &op, "live").await.unwrap();
    let good = active_servers(&r).await;

    let good_text = serde_json::to_string_pretty(&plain("live")).unwrap();
    let broken = good_text.replacen("\"name\": \"live\",", "\"name\": \"live\"", 1);
    assert_ne!(broken, good_text);
    std::fs::write(r.dir.join("live/plugin.json"), &broken).unwrap();
    // (The watcher may get there first; either way the outcome is this.)
    rescan(&r, &op).await;
    let p = plugin(&r, &op, "live").await;
    assert_eq!(p.status, "activated", "the last valid version stays active");
    assert_eq!(p.version, "0.1.0");
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert!(
        p.errors[0]
            .message
            .contains("Expected comma after 'name' field"),
        "{:?}",
        p.errors
    );
    assert_eq!(active_servers(&r).await.servers, good.servers);

    // A valid new version replaces it; the error is gone.
    let mut v2 = plain("live");
    v2["version"] = json!("0.2.0");
    write(&r.dir, "live", &v2);
    rescan(&r, &op).await;
    let p = plugin(&r, &op, "live").await;
    assert_eq!((p.version.as_str(), p.errors.len()), ("0.2.0", 0));
}

async fn a_tool_name_taken_by_another_plugin_errors_with_the_seed_message(backend: Backend) {
    let r = start(backend, None).await;
    let (_, op) = user(&r, Role::Operator, true).await;
    let mut first = plain("slack-v1");
    first["capabilities"]["tools"] = json!([{"name": "mcp__slack__send_message"}]);
    first["mcp"]["server_name"] = json!("slack");
    write(&r.dir, "slack-v1", &first);
    rescan(&r, &op).await;
    // An MCP tool name carries its server's name, so the copy declares the
    // same server (that conflict is reported too, after the tool's).
    let mut second = plain("slack-v2");
    second["capabilities"]["tools"] = json!([{"name": "mcp__slack__send_message"}]);
    second["mcp"]["server_name"] = json!("slack");
    write(&r.dir, "slack-v2", &second);
    rescan(&r, &op).await;
    let p = plugin(&r, &op, "slack-v2").await;
    assert_eq!(p.status, "errored");
    assert_eq!(
        p.errors[0].message,
        "Tool name 'mcp__slack__send_message' already registered by plugin 'slack-v1'. Use a unique tool name."
    );
    assert_eq!(plugin(&r, &op, "slack-v1").await.status, "ready");
}

async fn secrets_under_a_key_no_longer_held_keep_the_plugin_out_and_say_why(backend: Backend) {
    let store = backend.store().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    let old = key();
    let r = start_on(
        store.clone(),
        dir.clone(),
        Some(csp_secrets::Keyring::new(old.clone(), Vec::new())),
    )
    .await;
    write(&dir, "vault", &configurable("vault"));
    let (_, op) = user(&r, Role::Operator, true).await;
    rescan(&r, &op).await;
    configure(&r, &op, "vault", json!({"token": "t"}))
        .await
        .unwrap();
    activate(&r, &op, "vault").await.unwrap();
    assert_eq!(active_servers(&r).await.servers.len(), 1);
    r.stop.cancel();
    drop(r);

    // Restarted with another key and without the old one.
    let r = start_on(
        store.clone(),
        dir.clone(),
        Some(csp_secrets::Keyring::new(key(), Vec::new())),
    )
    .await;
    assert!(active_servers(&r).await.servers.is_empty());
    let p = plugin(&r, &op, "vault").await;
    assert!(
        p.errors
            .iter()
            .any(|e| e.message.contains("cannot be decrypted")),
        "{:?}",
        p.errors
    );

    r.stop.cancel();
    drop(r);

    // With the old key as the previous one (a rotation pending), it runs.
    let r = start_on(
        store,
        dir,
        Some(csp_secrets::Keyring::new(key(), vec![old])),
    )
    .await;
    assert_eq!(active_servers(&r).await.servers.len(), 1);
}

async fn a_removed_active_plugin_can_be_switched_off_before_it_returns(backend: Backend) {
    let r = start(backend, None).await;
    let (_, op) = user(&r, Role::Operator, true).await;
    write(&r.dir, "gone", &plain("gone"));
    rescan(&r, &op).await;
    activate(&r, &op, "gone").await.unwrap();
    std::fs::remove_dir_all(r.dir.join("gone")).unwrap();
    assert_eq!(rescan(&r, &op).await.removed, ["gone"]);
    assert!(active_servers(&r).await.servers.is_empty());

    let p = r
        .client()
        .deactivate_plugin(as_(
            &op,
            pb::PluginRequest {
                name: "gone".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.status, "removed");
    write(&r.dir, "gone", &plain("gone"));
    rescan(&r, &op).await;
    assert_eq!(
        plugin(&r, &op, "gone").await.status,
        "ready",
        "it came back inactive"
    );
    let e = r
        .client()
        .deactivate_plugin(as_(
            &op,
            pb::PluginRequest {
                name: "never".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PluginNotFound);
    // Regression (security suite): a NUL in the name reached Postgres
    // (503), and an 8 KiB name quoted in the answer broke the call (h2
    // protocol error). Both are plugins that do not exist.
    for name in ["gone\0.json".to_owned(), "a".repeat(8 * 1024)] {
        let e = r
            .client()
            .deactivate_plugin(as_(&op, pb::PluginRequest { name: name.clone() }))
            .await
            .unwrap_err();
        assert_eq!(
            code(&e),
            ErrorCode::PluginNotFound,
            "{} bytes: {e:?}",
            name.len()
        );
    }
}

async fn optional_settings_leave_a_plugin_ready_and_invalid_saved_ones_need_config(
    backend: Backend,
) {
    let r = start(backend, None).await;
    let (_, op) = user(&r, Role::Operator, true).await;
    let mut m = plain("easy");
    m["config_schema"] = json!({
        "type": "object",
        "properties": {"level": {"type": "integer", "default": 1}, "label": {"type": "string"}}
    });
    write(&r.dir, "easy", &m);
    rescan(&r, &op).await;
    assert_eq!(plugin(&r, &op, "easy").await.status, "ready");
    let p = configure(&r, &op, "easy", json!({"level": 3}))
        .await
        .unwrap();
    assert_eq!(p.status, "configured");
    assert_eq!(activate(&r, &op, "easy").await.unwrap().status, "activated");

    // The manifest changes under a saved value: the plugin needs config and
    // says why, and leaves the active set.
    m["config_schema"]["properties"]["level"]["maximum"] = json!(2);
    write(&r.dir, "easy", &m);
    rescan(&r, &op).await;
    let p = plugin(&r, &op, "easy").await;
    assert_eq!(p.status, "needs_config");
    assert!(
        p.errors
            .iter()
            .any(|e| e.field == "config" && e.message.contains("level")),
        "{:?}",
        p.errors
    );
    assert!(active_servers(&r).await.servers.is_empty());
}

csp_store::backend_tests!(
    #[tokio::test(flavor = "multi_thread")]
    every_rpc_admits_exactly_the_roles_it_names,
    a_directory_created_while_running_is_found_by_the_watcher,
    secrets_are_encrypted_at_rest_and_redacted_everywhere,
    activation_publishes_the_active_set_with_roles_and_decrypted_servers,
    a_broken_edit_keeps_the_running_version_and_reports_the_error,
    a_tool_name_taken_by_another_plugin_errors_with_the_seed_message,
    secrets_under_a_key_no_longer_held_keep_the_plugin_out_and_say_why,
    a_removed_active_plugin_can_be_switched_off_before_it_returns,
    optional_settings_leave_a_plugin_ready_and_invalid_saved_ones_need_config,
);
