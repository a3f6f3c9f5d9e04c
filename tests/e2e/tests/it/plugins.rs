//! Plugins end to end: a real MCP server from the npm registry
//! (`@modelcontextprotocol/server-everything`, installed by
//! `scripts/setup.sh plugins`) dropped into `PLUGINS_DIR` while csp runs,
//! configured with an encrypted secret, activated by an operator, and called
//! by the real Claude Code CLI on the scripted model's request — in `csp dev`
//! and in multi-service mode.

use crate::governance::{audit_row, call, frame, new_user, ready};
use csp_e2e::{Csp, Mode, Options, Ws, scripted};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SECRET: &str = "demo-token-e2e-7f3a9c";

/// The example plugin of this repository, with its installed server.
fn example() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins/everything");
    assert!(
        dir.join("node_modules/.bin/mcp-server-everything").exists(),
        "the example plugin's MCP server is not installed: run scripts/setup.sh plugins"
    );
    dir.canonicalize().unwrap()
}

/// Installs the example plugin into `plugins_dir` the way an operator
/// would: a directory with its plugin.json (the server itself is linked,
/// not copied).
fn install(plugins_dir: &Path) -> PathBuf {
    let src = example();
    let dst = plugins_dir.join("everything");
    std::fs::create_dir_all(&dst).unwrap();
    std::os::unix::fs::symlink(src.join("node_modules"), dst.join("node_modules")).unwrap();
    // Written last: the registry sees a complete plugin.
    std::fs::copy(src.join("plugin.json"), dst.join("plugin.json")).unwrap();
    dst
}

async fn plugin(csp: &Csp, token: &str) -> Value {
    let (status, body) = call(
        csp,
        Method::GET,
        "/api/v1/plugins/everything",
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the plugin until `wanted` holds (file events and rescans are
/// asynchronous).
async fn plugin_until(csp: &Csp, token: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = call(csp, Method::GET, "/api/v1/plugins", Some(token), None).await;
        assert_eq!(status, 200, "{body}");
        if let Some(p) = body["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "everything" && wanted(p))
        {
            return p.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the plugin never got there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the session-pool rebuilt its warm process for a new plugin
/// set, so the next session starts with the plugin.
pub(crate) async fn warm_rebuilt(csp: &Csp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = csp.scrape_all().await.unwrap();
        let rebuilt = text
            .lines()
            .filter(|l| l.starts_with("csp_prewarm_rebuilds_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        let depth = text
            .lines()
            .filter(|l| l.starts_with("csp_prewarm_pool_depth"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        if rebuilt >= 1.0 && depth >= 1.0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the warm pool was not rebuilt for the new plugin set"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One turn in which the scripted model calls `name` with `input`.
pub(crate) async fn tool_turn(ws: &mut Ws, name: &str, input: Value) -> Vec<Value> {
    let text = scripted(json!({"type": "tool_use", "name": name, "input": input}));
    ws.send(json!({"type": "send", "text": text}))
        .await
        .unwrap();
    ws.turn().await.expect("the turn ends with a result")
}

/// Every stored secret value, straight from the database.
async fn stored_secrets(csp: &Csp) -> Vec<(String, String, String)> {
    use sqlx::Connection;
    let sql = "SELECT secret_key, encrypted_value, encryption_key_version FROM sealed_secrets \
               WHERE owner_kind = 'plugin'";
    let url = csp.database_url();
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    }
}

async fn plugin_flow(mode: Mode) {
    let csp = Csp::start(mode, Options::default())
        .await
        .expect("csp starts");
    let admin = csp.login().await.unwrap();
    let (user_id, _, user) = new_user(&csp, &admin, "user", None).await;
    let (operator_id, _, operator) = new_user(&csp, &admin, "operator", None).await;

    // US-009: plugins are for operators.
    let (status, body) = call(&csp, Method::GET, "/api/v1/plugins", Some(&user), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"], "Insufficient permissions. Required role: operator.",
        "{body}"
    );

    // US-008: dropped in while csp runs, found without a restart.
    let dir = install(&csp.plugins_dir);
    let p = plugin_until(&csp, &operator, |p| p["status"] == "needs_config").await;
    assert_eq!(p["plugin_type"], "mcp", "{p}");
    assert_eq!(p["active"], false, "{p}");

    let (status, body) = call(
        &csp,
        Method::POST,
        "/api/v1/plugins/everything/activate",
        Some(&operator),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "plugin_not_activatable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("demo_token"),
        "the missing setting is named: {body}"
    );

    // US-016: the secret is encrypted at rest and never shown again.
    let (status, body) = call(
        &csp,
        Method::PUT,
        "/api/v1/plugins/everything/config",
        Some(&operator),
        Some(json!({"config": {"demo_token": SECRET, "greeting": "hi from csp"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "configured", "{body}");
    assert_eq!(body["config"]["demo_token"], "[REDACTED]", "{body}");
    assert_eq!(body["config"]["greeting"], "hi from csp", "{body}");
    assert_eq!(body["secrets"]["demo_token"], true, "{body}");
    let stored = stored_secrets(&csp).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (key, token, version) = &stored[0];
    assert_eq!(key, "demo_token");
    assert!(token.starts_with("gAAAAA"), "a Fernet token: {token}");
    assert!(!token.contains(SECRET) && !version.is_empty());
    assert!(!plugin(&csp, &admin).await.to_string().contains(SECRET));

    // US-009 scenario 2: activated by the operator, audit-logged with them.
    let (status, body) = call(
        &csp,
        Method::POST,
        "/api/v1/plugins/everything/activate",
        Some(&operator),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "activated", "{body}");
    let row = audit_row(&csp, &admin, &operator_id, |r| {
        r["tool_name"] == "plugin.activate"
    })
    .await;
    assert!(
        row["sanitized_input"]
            .as_str()
            .unwrap()
            .contains("everything"),
        "{row}"
    );
    warm_rebuilt(&csp).await;

    // The agent calls the plugin's tool; the real server answers.
    let mut ws = csp.ws(&user, "").await.unwrap();
    let session = ready(&mut ws).await;
    let turn = tool_turn(
        &mut ws,
        "mcp__everything__echo",
        json!({"message": "ping from e2e"}),
    )
    .await;
    let tool_use = frame(&turn, "tool_use");
    assert_eq!(tool_use["name"], "mcp__everything__echo", "{tool_use}");
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "complete", "{result}");
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains("Echo: ping from e2e"),
        "{result}"
    );
    let row = audit_row(&csp, &admin, &user_id, |r| {
        r["tool_name"] == "mcp__everything__echo"
    })
    .await;
    assert_eq!(row["result_status"], "success", "{row}");
    assert_eq!(row["session_id"], session.as_str(), "{row}");

    // The manifest's roles hold: a user may not use an operator tool.
    let turn = tool_turn(&mut ws, "mcp__everything__get-tiny-image", json!({})).await;
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "denied", "{result}");
    assert_eq!(
        result["content"],
        "Tool 'mcp__everything__get-tiny-image' was denied. This action requires operator access. Contact your administrator.",
        "{result}"
    );
    let row = audit_row(&csp, &admin, &user_id, |r| {
        r["tool_name"] == "mcp__everything__get-tiny-image"
    })
    .await;
    assert_eq!(row["result_status"], "denied", "{row}");
    ws.close().await;

    // An admin may read the server's environment: the secret reached it
    // there, and the model credentials did not.
    let mut ws = csp.ws(&admin, "").await.unwrap();
    ready(&mut ws).await;
    let turn = tool_turn(&mut ws, "mcp__everything__get-env", json!({})).await;
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "complete", "{result}");
    let env = result["content"].as_str().unwrap();
    assert!(env.contains(SECRET) && env.contains("hi from csp"), "{env}");
    assert!(!env.contains("ANTHROPIC_API_KEY"), "{env}");
    ws.close().await;

    // A broken edit keeps the running version and reports where it broke.
    let text = std::fs::read_to_string(dir.join("plugin.json")).unwrap();
    let broken = text.replacen(
        "\"version\": \"2026.8.31\",",
        "\"version\": \"2026.8.31\"",
        1,
    );
    assert_ne!(text, broken);
    std::fs::write(dir.join("plugin.json"), broken).unwrap();
    let p = plugin_until(&csp, &operator, |p| {
        !p["errors"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(p["status"], "activated", "{p}");
    let e = &p["errors"][0];
    assert_eq!(
        e["line"], 5,
        "the line of the key after the missing comma: {e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Expected comma after 'version' field"),
        "{e}"
    );

    // The secret never reached a log or the audit trail.
    assert!(!csp.all_logs().contains(SECRET), "a log holds the secret");
    let (_, audit) = csp.get(&admin, "/api/v1/admin/audit-log").await.unwrap();
    assert!(!audit.to_string().contains(SECRET), "{audit}");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_plugin_from_npm_is_found_configured_activated_and_used() {
    plugin_flow(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_plugin_from_npm_works_in_distributed_mode() {
    plugin_flow(Mode::Distributed).await;
}

/// `csp secrets rotate` against the `csp dev` database: reports the count,
/// is safe to re-run, and afterwards the old key alone no longer reads.
#[tokio::test(flavor = "multi_thread")]
async fn rotation_re_encrypts_every_secret_once() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let admin = csp.login().await.unwrap();
    install(&csp.plugins_dir);
    plugin_until(&csp, &admin, |p| p["status"] == "needs_config").await;
    let (status, body) = call(
        &csp,
        Method::PUT,
        "/api/v1/plugins/everything/config",
        Some(&admin),
        Some(json!({"config": {"demo_token": SECRET}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let before = stored_secrets(&csp).await;
    let data = csp
        .database_url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("/csp.db")
        .to_owned();
    let new_key = csp_cmd(&["secrets", "generate-key"], &[])
        .1
        .trim()
        .to_owned();
    let run = |prev: &str| {
        csp_cmd(
            &["secrets", "rotate", "--data-dir", &data],
            &[
                ("CSP_SECRET_KEY", new_key.as_str()),
                ("CSP_SECRET_KEY_PREVIOUS", prev),
            ],
        )
    };
    let (ok, out) = run(csp_e2e::SECRET_KEY);
    assert!(ok, "{out}");
    assert!(out.starts_with("re-encrypted 1 secret(s)"), "{out}");
    let (ok, out) = run(csp_e2e::SECRET_KEY);
    assert!(ok && out.starts_with("re-encrypted 0 secret(s)"), "{out}");
    let after = stored_secrets(&csp).await;
    assert_ne!(before[0].1, after[0].1);
    assert_ne!(before[0].2, after[0].2, "the key version changed");

    // The running instance holds only the old key now: it reports the
    // plugin's secret as unreadable instead of starting it with garbage.
    let (_, p) = call(
        &csp,
        Method::GET,
        "/api/v1/plugins/everything",
        Some(&admin),
        None,
    )
    .await;
    let (status, body) = call(
        &csp,
        Method::POST,
        "/api/v1/plugins/everything/activate",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body} {p}");
    let p = plugin_until(&csp, &admin, |p| {
        p["errors"].to_string().contains("cannot be decrypted")
    })
    .await;
    assert_eq!(p["status"], "activated", "{p}");
    csp.stop().await;
}

/// Runs `csp <args>` to completion: success and stdout (+ stderr).
fn csp_cmd(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = std::process::Command::new(csp_e2e::csp_bin())
        .args(args)
        .env_remove("CSP_SECRET_KEY")
        .env_remove("CSP_SECRET_KEY_PREVIOUS")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
