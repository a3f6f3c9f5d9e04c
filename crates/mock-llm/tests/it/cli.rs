//! The real Claude Code CLI against the mock: what it accepts is the contract.

use csp_mock_llm::{Behaviour, Reply, Source, Usage};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn cli_streams_a_scripted_answer_and_prices_it_exactly() {
    let mock = start().await;
    mock.push(Behaviour::Text(Reply {
        text: Some("Scripted hello, wörld.".into()),
        chunks: Some(5),
        ..Reply::default()
    }));
    let run = run_cli(&mock, "hello", &[], &[]).await;
    let result = run.result();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["result"], "Scripted hello, wörld.");
    assert_eq!(result["usage"]["input_tokens"], 100);
    assert_eq!(result["usage"]["output_tokens"], 50);
    assert_cost(result, sonnet_4_5_cost(100, 50));
    assert_cost(result, 0.00105);
    let calls = message_calls(&mock);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].query.as_deref(), Some("beta=true"));
    assert_eq!(calls[0].headers["x-api-key"], "[redacted]");
    // The CLI copies our request-id header into its assistant lines.
    let assistant = run
        .lines
        .iter()
        .find(|l| l["type"] == "assistant")
        .expect("an assistant line");
    assert_eq!(
        assistant["request_id"].as_str(),
        calls[0].request_id.as_deref()
    );
}

#[tokio::test]
async fn cli_prices_custom_usage_including_cache_tokens() {
    let mock = start().await;
    mock.push(Behaviour::Text(Reply {
        text: Some("cached".into()),
        thinking: Some("Considering.".into()),
        usage: Usage {
            input_tokens: 1000,
            output_tokens: 2000,
            cache_creation_input_tokens: 100,
            cache_read_input_tokens: 10_000,
        },
        ..Reply::default()
    }));
    let run = run_cli(&mock, "hello", &[], &[]).await;
    let result = run.result();
    assert_eq!(result["result"], "cached");
    // Cache writes cost 1.25x input, cache reads 0.1x.
    let expected = (1000.0 * 3.0 + 2000.0 * 15.0 + 100.0 * 3.75 + 10_000.0 * 0.3) / 1e6;
    assert_cost(result, expected);
}

#[tokio::test]
async fn cli_runs_a_scripted_bash_call_and_the_follow_up_quotes_its_output() {
    let mock = start().await;
    mock.push(Behaviour::tool_use(
        "Bash",
        json!({"command": "echo hi", "description": "Say hi"}),
    ));
    let run = run_cli(&mock, "say hi", &["--allowedTools", "Bash"], &[]).await;
    let result = run.result();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(
        result["result"],
        "The command finished. Output:\n```\nhi\n```"
    );
    assert_eq!(result["num_turns"], 2);
    assert_cost(result, sonnet_4_5_cost(200, 100));
    let tool_result = run
        .lines
        .iter()
        .find(|l| l["type"] == "user")
        .expect("a tool result line");
    assert_eq!(tool_result["tool_use_result"]["stdout"], "hi");
    let sources: Vec<_> = message_calls(&mock).into_iter().map(|e| e.source).collect();
    assert_eq!(sources, [Some(Source::Queue), Some(Source::ToolResult)]);
}

#[tokio::test]
async fn cli_run_prompt_uses_the_built_in_bash_rule() {
    let mock = start().await;
    let run = run_cli(&mock, "run echo built-in", &["--allowedTools", "Bash"], &[]).await;
    let result = run.result();
    assert_eq!(
        result["result"],
        "The command finished. Output:\n```\nbuilt-in\n```"
    );
    let sources: Vec<_> = message_calls(&mock).into_iter().map(|e| e.source).collect();
    assert_eq!(
        sources,
        [Some(Source::RunCommand), Some(Source::ToolResult)]
    );
}

#[tokio::test]
async fn cli_reports_a_final_529_as_an_error() {
    let mock = start().await;
    mock.set_default(Some(
        serde_json::from_value(json!({"type": "http_error", "status": 529,
            "headers": {"x-should-retry": "false"}}))
        .unwrap(),
    ));
    let run = run_cli(&mock, "hello", &[], &[("CLAUDE_CODE_MAX_RETRIES", "0")]).await;
    let result = run.result();
    assert_eq!(result["is_error"], true, "{result}");
    assert_eq!(result["api_error_status"], 529);
    assert!(
        result["result"]
            .as_str()
            .unwrap()
            .starts_with("API Error: 529 Overloaded."),
        "{result}"
    );
    assert_eq!(
        message_calls(&mock).len(),
        1,
        "x-should-retry: false is honoured"
    );
}

#[tokio::test]
async fn cli_falls_back_to_a_non_streaming_request_after_an_sse_error() {
    let mock = start().await;
    let prompt = r#"MOCK{"type":"sse_error","after_deltas":1,"chunks":3,"text":"abcdef","nonstream":{"type":"text","text":"rescued by the fallback"}}MOCK"#;
    let run = run_cli(&mock, prompt, &[], &[("CLAUDE_CODE_MAX_RETRIES", "0")]).await;
    let result = run.result();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["result"], "rescued by the fallback");
    let streams: Vec<_> = message_calls(&mock)
        .into_iter()
        .map(|e| (e.source, e.body["stream"].clone()))
        .collect();
    assert_eq!(
        streams,
        [
            (Some(Source::Directive), json!(true)),
            (Some(Source::Directive), json!(false))
        ]
    );
}

#[tokio::test]
async fn cli_retries_a_cut_stream_and_takes_the_next_answer() {
    let mock = start().await;
    mock.push(
        serde_json::from_value(
            json!({"type": "cut", "after_deltas": 2, "text": "abcdef", "chunks": 3}),
        )
        .unwrap(),
    );
    mock.push(Behaviour::text("recovered"));
    let run = run_cli(&mock, "hello", &[], &[("CLAUDE_CODE_MAX_RETRIES", "1")]).await;
    let result = run.result();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["result"], "recovered");
    let retry = run
        .lines
        .iter()
        .find(|l| l["subtype"] == "api_retry")
        .expect("the cut is retried visibly");
    assert_eq!(retry["error_status"], serde_json::Value::Null);
    let streams: Vec<_> = message_calls(&mock)
        .into_iter()
        .map(|e| e.body["stream"].clone())
        .collect();
    assert_eq!(streams, [json!(true), json!(true)]);
}

#[tokio::test]
async fn cli_is_served_with_the_right_key_and_turned_away_with_a_wrong_one() {
    // run_cli gives the CLI ANTHROPIC_API_KEY=test-key.
    let mock = start_with_key("test-key").await;
    let run = run_cli(&mock, "hello", &[], &[]).await;
    assert_eq!(run.result()["is_error"], false, "{}", run.result());

    let mock = start_with_key("another-key").await;
    let run = run_cli(&mock, "hello", &[], &[("CLAUDE_CODE_MAX_RETRIES", "0")]).await;
    let result = run.result();
    assert_eq!(result["is_error"], true, "{result}");
    assert_eq!(result["api_error_status"], 401, "{result}");
    assert!(
        message_calls(&mock)
            .iter()
            .all(|call| call.status == Some(401)),
        "no call got past the key check"
    );
}
