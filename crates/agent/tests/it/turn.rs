//! Whole turns against the scripted Messages API server.

use std::sync::Arc;
use std::time::Duration;

use csp_agent::{
    AgentEvent, AllowList, Config, Message, PERMISSION_TIMEOUT_MESSAGE, PermissionHook, System,
};
use csp_mock_llm::{Behaviour, MockLlm, Options};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::helpers::{
    MODEL, Recording, Sandbox, Silent, Stuck, config, group_alive, next_event, next_message,
    process_dead, process_group, spawn, turn,
};

async fn mock() -> MockLlm {
    MockLlm::start(Options::default())
        .await
        .expect("mock model server")
}

fn behaviour(spec: Value) -> Behaviour {
    serde_json::from_value(spec).expect("valid behaviour")
}

fn text_deltas(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .filter_map(|message| match message {
            Message::StreamEvent(event) => event.text_delta(),
            _ => None,
        })
        .collect()
}

fn tool_results(messages: &[Message]) -> Vec<(String, String, bool)> {
    messages
        .iter()
        .filter_map(|message| match message {
            Message::User(user) => Some(user.tool_results()),
            _ => None,
        })
        .flatten()
        .map(|result| {
            (
                result.tool_use_id.to_owned(),
                result.content.to_owned(),
                result.is_error,
            )
        })
        .collect()
}

fn tool_use_ids(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|message| match message {
            Message::Assistant(assistant) => Some(assistant.tool_uses()),
            _ => None,
        })
        .flatten()
        .map(|tool_use| tool_use.id.to_owned())
        .collect()
}

/// What the model was sent on the last call, as JSON text.
fn last_api_request(mock: &MockLlm) -> String {
    mock.log()
        .iter()
        .rev()
        .find(|entry| entry.path == "/v1/messages")
        .expect("the model was called")
        .body
        .to_string()
}

/// Waits until the model has started streaming this turn's answer.
async fn first_text_delta(events: &mut csp_agent::AgentEvents) {
    loop {
        if let Message::StreamEvent(event) = next_message(events).await
            && event.text_delta().is_some()
        {
            return;
        }
    }
}

#[tokio::test]
async fn a_text_turn_streams_its_deltas_in_order_and_costs_exactly_the_usage() {
    let mock = mock().await;
    mock.push(behaviour(json!({
        "type": "text", "text": "alpha beta gamma delta epsilon", "chunks": 5, "chunk_delay_ms": 50
    })));
    let sandbox = Sandbox::new();
    let (agent, mut events) = spawn(
        &config(&mock.base_url()),
        &sandbox,
        Arc::new(AllowList::default()),
    )
    .await;

    agent.send_user("hello").await.expect("written");
    let (messages, result) = turn(&mut events).await;

    let deltas = text_deltas(&messages);
    assert_eq!(deltas.len(), 5, "{deltas:?}");
    assert_eq!(deltas.concat(), "alpha beta gamma delta epsilon");
    let init = messages
        .iter()
        .find_map(|message| match message {
            Message::System(System::Init(init)) => Some(init),
            _ => None,
        })
        .expect("system/init starts the turn");
    assert_eq!(init.session_id, sandbox.session_id.to_string());
    assert_eq!(init.model, MODEL);
    let answer: String = messages
        .iter()
        .filter_map(|message| match message {
            Message::Assistant(assistant) => Some(assistant.text()),
            _ => None,
        })
        .collect();
    assert_eq!(answer, "alpha beta gamma delta epsilon");

    assert_eq!(result.subtype, "success");
    assert!(!result.is_error);
    assert_eq!(
        result.result.as_deref(),
        Some("alpha beta gamma delta epsilon")
    );
    assert_eq!(result.session_id, sandbox.session_id.to_string());
    // 100 input tokens at $3/Mtok plus 50 output tokens at $15/Mtok.
    let expected = (100.0 * 3.0 + 50.0 * 15.0) / 1_000_000.0;
    assert!(
        (result.total_cost_usd - expected).abs() < 1e-12,
        "cost {} != {expected}",
        result.total_cost_usd
    );
    agent.shutdown(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn an_allowed_bash_call_runs_in_the_workdir_and_returns_its_result() {
    let mock = mock().await;
    let command = "echo made > made.txt && echo done";
    mock.push(behaviour(
        json!({"type": "tool_use", "name": "Bash", "input": {"command": command}}),
    ));
    let sandbox = Sandbox::new();
    let hook = Recording::new(AllowList::new(["Bash"]));
    let (agent, mut events) = spawn(&config(&mock.base_url()), &sandbox, hook.clone()).await;

    agent.send_user("make a file").await.expect("written");
    let (messages, result) = turn(&mut events).await;

    let ids = tool_use_ids(&messages);
    assert_eq!(ids.len(), 1);
    let seen = hook.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].tool_name, "Bash");
    assert_eq!(seen[0].input["command"], command);
    assert_eq!(seen[0].tool_use_id.as_deref(), Some(ids[0].as_str()));

    let results = tool_results(&messages);
    assert_eq!(results.len(), 1);
    let (tool_use_id, content, is_error) = &results[0];
    assert_eq!(tool_use_id, &ids[0]);
    assert!(!is_error, "{content}");
    assert!(content.contains("done"), "{content}");
    assert_eq!(
        std::fs::read_to_string(sandbox.workdir().join("made.txt")).unwrap(),
        "made\n"
    );
    assert!(!result.is_error, "{result:?}");
    agent.shutdown(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn denied_calls_never_run_and_the_model_sees_why_even_for_echo() {
    let mock = mock().await;
    // `echo hi` is one the CLI would run without asking anybody.
    mock.push(behaviour(
        json!({"type": "tool_use", "name": "Bash", "input": {"command": "echo hi"}}),
    ));
    mock.push(behaviour(
        json!({"type": "tool_use", "name": "Bash", "input": {"command": "touch denied.txt"}}),
    ));
    let sandbox = Sandbox::new();
    let hook = Recording::new(AllowList::new(["Read"]));
    let (agent, mut events) = spawn(&config(&mock.base_url()), &sandbox, hook.clone()).await;

    agent.send_user("try some commands").await.expect("written");
    let (messages, result) = turn(&mut events).await;

    let commands: Vec<_> = hook
        .seen()
        .iter()
        .map(|request| request.input["command"].clone())
        .collect();
    assert_eq!(commands, [json!("echo hi"), json!("touch denied.txt")]);
    let denial = "Tool 'Bash' is not allowed in this deployment. Ask an administrator to allow it.";
    let results = tool_results(&messages);
    assert_eq!(results.len(), 2, "{results:?}");
    for (_, content, is_error) in &results {
        assert!(is_error);
        assert!(content.contains(denial), "{content}");
    }
    assert!(last_api_request(&mock).contains(denial));
    assert!(!sandbox.workdir().join("denied.txt").exists());
    assert!(
        !result.is_error,
        "the turn goes on after a denial: {result:?}"
    );
    agent.shutdown(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_hook_that_never_answers_is_a_denial_at_the_deadline() {
    let mock = mock().await;
    mock.push(behaviour(
        json!({"type": "tool_use", "name": "Bash", "input": {"command": "touch late.txt"}}),
    ));
    let sandbox = Sandbox::new();
    let cfg = Config {
        permission_timeout: Duration::from_millis(300),
        ..config(&mock.base_url())
    };
    let hook: Arc<dyn PermissionHook> = Arc::new(Silent);
    let (agent, mut events) = spawn(&cfg, &sandbox, hook).await;

    agent.send_user("make a file").await.expect("written");
    let (messages, _) = turn(&mut events).await;

    let results = tool_results(&messages);
    assert_eq!(results.len(), 1);
    assert!(results[0].2);
    assert!(
        results[0].1.contains(PERMISSION_TIMEOUT_MESSAGE),
        "{results:?}"
    );
    assert!(last_api_request(&mock).contains(PERMISSION_TIMEOUT_MESSAGE));
    assert!(!sandbox.workdir().join("late.txt").exists());
    agent.shutdown(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn an_interrupt_ends_the_turn_and_the_next_message_works() {
    let mock = mock().await;
    mock.push(behaviour(json!({
        "type": "text", "text": "w ".repeat(60), "chunks": 60, "chunk_delay_ms": 100
    })));
    mock.push(Behaviour::text("after the interrupt"));
    let sandbox = Sandbox::new();
    let (agent, mut events) = spawn(
        &config(&mock.base_url()),
        &sandbox,
        Arc::new(AllowList::default()),
    )
    .await;

    agent.send_user("talk slowly").await.expect("written");
    first_text_delta(&mut events).await;
    agent.interrupt().await.expect("interrupt acknowledged");
    let (_, interrupted) = turn(&mut events).await;
    assert_eq!(interrupted.subtype, "error_during_execution");
    assert!(interrupted.is_error);

    agent.send_user("and now?").await.expect("written");
    let (_, next) = turn(&mut events).await;
    assert!(!next.is_error, "{next:?}");
    assert_eq!(next.result.as_deref(), Some("after the interrupt"));
    agent.shutdown(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn an_interrupt_while_the_hook_decides_cancels_the_decision_and_the_call() {
    let mock = mock().await;
    mock.push(behaviour(
        json!({"type": "tool_use", "name": "Bash", "input": {"command": "touch never.txt"}}),
    ));
    mock.push(Behaviour::text("still here"));
    let sandbox = Sandbox::new();
    let cfg = Config {
        // Far beyond the test's safety net: only a cancellation can end it.
        permission_timeout: Duration::from_secs(3600),
        ..config(&mock.base_url())
    };
    let hook = Arc::new(Stuck::default());
    let (agent, mut events) = spawn(&cfg, &sandbox, hook.clone()).await;

    agent.send_user("make a file").await.expect("written");
    hook.asked.notified().await;
    agent.interrupt().await.expect("interrupt acknowledged");
    let (_, interrupted) = turn(&mut events).await;
    assert!(interrupted.is_error, "{interrupted:?}");
    tokio::time::timeout(Duration::from_secs(120), hook.cancelled.notified())
        .await
        .expect("the pending decision was not cancelled");
    assert!(!sandbox.workdir().join("never.txt").exists());

    agent.send_user("and now?").await.expect("written");
    let (_, next) = turn(&mut events).await;
    assert_eq!(next.result.as_deref(), Some("still here"));
    agent.shutdown(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn an_api_error_ends_the_turn_as_an_error_result() {
    let mock = mock().await;
    mock.push(behaviour(
        json!({"type": "http_error", "status": 529, "headers": {"x-should-retry": "false"}}),
    ));
    let sandbox = Sandbox::new();
    let (agent, mut events) = spawn(
        &config(&mock.base_url()),
        &sandbox,
        Arc::new(AllowList::default()),
    )
    .await;

    agent.send_user("hello").await.expect("written");
    let (messages, result) = turn(&mut events).await;
    assert!(result.is_error);
    assert_eq!(result.api_error_status, Some(529));
    assert_eq!(result.terminal_reason.as_deref(), Some("api_error"));
    assert!(
        messages
            .iter()
            .any(|message| matches!(message, Message::Assistant(a) if a.is_api_error_message))
    );
    // The CLI exits 1 on EOF when the last turn failed.
    assert_eq!(agent.shutdown(Duration::from_secs(20)).await, Some(1));
}

#[tokio::test]
async fn a_cli_killed_mid_turn_is_reported_as_exited() {
    let mock = mock().await;
    mock.push(behaviour(json!({
        "type": "text", "text": "w ".repeat(60), "chunks": 60, "chunk_delay_ms": 100
    })));
    let sandbox = Sandbox::new();
    let (agent, mut events) = spawn(
        &config(&mock.base_url()),
        &sandbox,
        Arc::new(AllowList::default()),
    )
    .await;

    agent.send_user("talk slowly").await.expect("written");
    first_text_delta(&mut events).await;
    let pid = agent.pid();
    killpg(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("signalled");

    let code = loop {
        match next_event(&mut events).await {
            AgentEvent::Exited { code, .. } => break code,
            AgentEvent::Message(Message::Result(result)) => {
                panic!("the turn cannot end: {result:?}")
            }
            AgentEvent::Message(_) => {}
        }
    };
    assert_eq!(code, None);
    assert!(events.recv().await.is_none());
    assert!(!group_alive(pid));
    assert!(matches!(
        agent.send_user("anyone?").await,
        Err(csp_agent::Error::Closed | csp_agent::Error::Write(_))
    ));
}

#[tokio::test]
async fn shutdown_mid_turn_escalates_to_sigterm_after_the_grace() {
    let mock = mock().await;
    // No response headers for a minute: stdin EOF alone would wait for it.
    mock.push(behaviour(
        json!({"type": "hang", "first_byte_delay_ms": 60_000}),
    ));
    let sandbox = Sandbox::new();
    let (agent, mut events) = spawn(
        &config(&mock.base_url()),
        &sandbox,
        Arc::new(AllowList::default()),
    )
    .await;

    agent.send_user("hello").await.expect("written");
    while !matches!(
        next_message(&mut events).await,
        Message::System(System::Init(_))
    ) {}
    let pid = agent.pid();
    // Long enough for SIGTERM to be handled on a loaded machine, far shorter
    // than the hang, so stdin EOF alone cannot end the process.
    assert_eq!(agent.shutdown(Duration::from_secs(5)).await, Some(143));
    assert!(!group_alive(pid));
}

/// A Bash command that leaves a background process, and records both pids.
/// (The CLI refuses commands that start with `sleep`.)
const TOOL_TREE: &str = "echo $$ > tool.pid; sleep 300 & echo $! > bg.pid; exec sleep 301";

async fn running_tool_tree(sandbox: &Sandbox) -> [u32; 2] {
    let read = |name: &str| {
        std::fs::read_to_string(sandbox.workdir().join(name))
            .ok()
            .and_then(|pid| pid.trim().parse().ok())
    };
    let pids = async {
        loop {
            if let (Some(bg), Some(tool)) = (read("bg.pid"), read("tool.pid")) {
                return [bg, tool];
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), pids)
        .await
        .expect("the tool never started")
}

async fn wait_until_dead(pids: [u32; 2]) {
    let dead = async {
        while !pids.iter().all(|&pid| process_dead(pid)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), dead)
        .await
        .expect("tool processes survived the agent");
}

#[tokio::test]
async fn dropping_the_handle_mid_tool_kills_the_tool_processes_too() {
    let mock = mock().await;
    mock.push(behaviour(
        json!({"type": "tool_use", "name": "Bash", "input": {"command": TOOL_TREE}}),
    ));
    let sandbox = Sandbox::new();
    let (agent, mut events) = spawn(
        &config(&mock.base_url()),
        &sandbox,
        Arc::new(AllowList::new(["Bash"])),
    )
    .await;
    agent.send_user("run it").await.expect("written");
    let tools = running_tool_tree(&sandbox).await;
    let pid = agent.pid();
    // The CLI runs Bash in a session of its own, out of reach of killpg(pid).
    assert!(tools.iter().all(|&tool| process_group(tool) != Some(pid)));

    drop(agent);
    while !matches!(next_event(&mut events).await, AgentEvent::Exited { .. }) {}
    assert!(!group_alive(pid));
    wait_until_dead(tools).await;
}

#[tokio::test]
async fn shutdown_mid_tool_leaves_no_process_behind() {
    let mock = mock().await;
    mock.push(behaviour(
        json!({"type": "tool_use", "name": "Bash", "input": {"command": TOOL_TREE}}),
    ));
    let sandbox = Sandbox::new();
    let (agent, _events) = spawn(
        &config(&mock.base_url()),
        &sandbox,
        Arc::new(AllowList::new(["Bash"])),
    )
    .await;
    agent.send_user("run it").await.expect("written");
    let tools = running_tool_tree(&sandbox).await;
    let pid = agent.pid();

    agent.shutdown(Duration::from_millis(300)).await;
    assert!(!group_alive(pid));
    wait_until_dead(tools).await;
}

/// The reference MCP server that `examples/plugins/everything` installs
/// (`npm install` there, as `scripts/setup.sh` does).
fn everything_server() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/plugins/everything/node_modules/.bin/mcp-server-everything");
    assert!(
        path.is_file(),
        "{} is missing: run `npm install` in examples/plugins/everything",
        path.display()
    );
    path
}

fn mcp_servers(name: &str) -> String {
    json!({"mcpServers": {name: {"type": "stdio", "command": everything_server(), "args": ["stdio"]}}})
        .to_string()
}

#[tokio::test]
async fn only_the_mcp_config_file_counts_and_its_servers_outlive_the_file() {
    let mock = mock().await;
    mock.push(behaviour(
        json!({"type": "tool_use", "name": "mcp__everything__echo", "input": {"message": "over mcp"}}),
    ));
    let sandbox = Sandbox::new();
    // Both would be loaded without --strict-mcp-config: a project config the
    // agent could write into its workdir, and a user-scope one in its HOME.
    std::fs::write(sandbox.workdir().join(".mcp.json"), mcp_servers("project")).unwrap();
    let spec = sandbox.spec();
    std::fs::create_dir_all(&spec.config_dir).unwrap();
    std::fs::write(
        spec.config_dir.join(".claude.json"),
        mcp_servers("userscope"),
    )
    .unwrap();
    let config_file = sandbox.path("mcp-config.json");
    std::fs::write(&config_file, mcp_servers("everything")).unwrap();
    let spec = csp_agent::SpawnSpec {
        mcp_config: Some(config_file.clone()),
        ..spec
    };
    let hook = Recording::new(AllowList::new(["mcp__everything"]));
    let (agent, mut events) =
        csp_agent::Agent::spawn(&config(&mock.base_url()), spec, hook.clone())
            .await
            .expect("agent becomes ready");
    // The servers are running by now: the file is no longer needed.
    std::fs::remove_file(&config_file).unwrap();

    agent.send_user("echo something").await.expect("written");
    let (messages, result) = turn(&mut events).await;
    let init = messages
        .iter()
        .find_map(|m| match m {
            Message::System(System::Init(init)) => Some(init),
            _ => None,
        })
        .expect("an init message");
    let servers: Vec<(&str, &str)> = init
        .mcp_servers
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default(),
                s["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(servers, [("everything", "connected")]);
    let seen: Vec<String> = hook.seen().into_iter().map(|r| r.tool_name).collect();
    assert_eq!(seen, ["mcp__everything__echo"]);
    let results = tool_results(&messages);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(!results[0].2, "{results:?}");
    assert!(results[0].1.contains("Echo: over mcp"), "{results:?}");
    assert!(!result.is_error, "{result:?}");
    agent.shutdown(Duration::from_secs(20)).await;
}
