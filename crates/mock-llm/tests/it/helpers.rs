use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use csp_mock_llm::{LogEntry, MockLlm, Options, Rules};
use serde_json::{Value, json};

pub(crate) async fn start() -> MockLlm {
    start_with(Rules::default()).await
}

/// A mock that demands `key` on every `/v1/` request.
pub(crate) async fn start_with_key(key: &str) -> MockLlm {
    MockLlm::start(Options {
        api_key: Some(key.to_owned()),
        ..Options::default()
    })
    .await
    .expect("the mock starts on a free port")
}

pub(crate) async fn start_with(rules: Rules) -> MockLlm {
    MockLlm::start(Options {
        rules,
        ..Options::default()
    })
    .await
    .expect("the mock starts on a free port")
}

/// A client that opens a new connection per request, so no test depends on keep-alive.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a reqwest client")
}

/// A request body like the CLI's: reminders first, then the prompt.
pub(crate) fn prompt_body(prompt: &str, stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 128000,
        "stream": stream,
        "system": [{"type": "text", "text": "You are a Claude agent."}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nToday's date is 2026-11-22.\n</system-reminder>"},
            {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}
        ]}]
    })
}

pub(crate) async fn post_messages(mock: &MockLlm, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages?beta=true", mock.base_url()))
        .header("x-api-key", "test-key")
        .json(body)
        .send()
        .await
        .expect("the mock answers")
}

/// One SSE event: the `event:` name (if any) and the parsed `data:`.
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    pub(crate) name: Option<String>,
    pub(crate) data: Value,
}

/// Parses an SSE body, insisting on the framing the CLI needs: `event:` then `data:`, then a
/// blank line.
pub(crate) fn parse_sse(body: &str) -> Vec<SseEvent> {
    assert!(
        body.is_empty() || body.ends_with("\n\n"),
        "SSE body must end with a blank line: {body:?}"
    );
    body.split_terminator("\n\n")
        .map(|frame| {
            let mut name = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).expect("data is JSON"));
                } else {
                    panic!("unexpected SSE line {line:?} in {frame:?}");
                }
            }
            SseEvent {
                name,
                data: data.expect("every event has a data line"),
            }
        })
        .collect()
}

/// The event names of a well-formed stream, checking that each `event:` names its data.
pub(crate) fn event_names(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let name = e.name.clone().expect("every event has an event line");
            assert_eq!(
                e.data["type"],
                name.as_str(),
                "event line matches data.type"
            );
            name
        })
        .collect()
}

pub(crate) async fn sse(mock: &MockLlm, body: &Value) -> Vec<SseEvent> {
    let response = post_messages(mock, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    parse_sse(&response.text().await.expect("a complete body"))
}

/// The text of all `text_delta`s, in order.
pub(crate) fn streamed_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.data["delta"]["type"] == "text_delta")
        .map(|e| e.data["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Log entries of `/v1/messages` calls only.
pub(crate) fn message_calls(mock: &MockLlm) -> Vec<LogEntry> {
    mock.log()
        .into_iter()
        .filter(|e| e.path == "/v1/messages")
        .collect()
}

/// The Claude Code CLI: `$CLAUDE_CLI`, or the copy installed under `tools/claude-cli`.
pub(crate) fn claude_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("CLAUDE_CLI") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/claude-cli/node_modules/.bin/claude");
    assert!(
        path.exists(),
        "the Claude Code CLI is not at {} (install it with `npm ci` in tools/claude-cli, or set CLAUDE_CLI)",
        path.display()
    );
    path
}

/// What one `claude -p` run printed.
pub(crate) struct CliRun {
    pub(crate) lines: Vec<Value>,
    pub(crate) stderr: String,
}

impl CliRun {
    pub(crate) fn result(&self) -> &Value {
        self.lines
            .iter()
            .rev()
            .find(|l| l["type"] == "result")
            .unwrap_or_else(|| panic!("no result line; stderr: {}", self.stderr))
    }
}

/// Runs `claude -p <prompt>` one-shot against the mock, in a private home and working
/// directory, with nothing inherited but `PATH`.
pub(crate) async fn run_cli(
    mock: &MockLlm,
    prompt: &str,
    extra_args: &[&str],
    extra_env: &[(&str, &str)],
) -> CliRun {
    let dir = tempfile::tempdir().expect("a temp dir");
    let home = dir.path().join("home");
    let cwd = dir.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let mut command = tokio::process::Command::new(claude_cli());
    command
        .args(["-p", prompt, "--output-format", "stream-json", "--verbose"])
        .args(["--model", "claude-sonnet-4-5"])
        .args(extra_args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ANTHROPIC_BASE_URL", mock.base_url())
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("CLAUDE_CONFIG_DIR", &home)
        .env("HOME", &home)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .envs(extra_env.iter().copied())
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // A bound on a wedged CLI, not an assertion on how fast it is.
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the CLI finishes within two minutes")
        .expect("the CLI starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect();
    CliRun { lines, stderr }
}

/// `--model claude-sonnet-4-5` list prices: $3 / $15 per million input / output tokens.
pub(crate) fn sonnet_4_5_cost(input_tokens: u64, output_tokens: u64) -> f64 {
    (input_tokens as f64 * 3.0 + output_tokens as f64 * 15.0) / 1_000_000.0
}

/// Costs are sums of floats in the CLI; equal to a millionth of a cent is exact for money.
pub(crate) fn assert_cost(result: &Value, expected: f64) {
    let cost = result["total_cost_usd"]
        .as_f64()
        .unwrap_or_else(|| panic!("no total_cost_usd in {result}"));
    assert!(
        (cost - expected).abs() < 1e-12,
        "total_cost_usd {cost} != {expected}"
    );
}
