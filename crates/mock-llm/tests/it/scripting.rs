//! How a behaviour is chosen for each call: title, queue, default, directive, rules, built-ins.

use std::io::Write;

use csp_mock_llm::{Behaviour, Error, Rule, Rules, Source};
use serde_json::{Value, json};

use crate::helpers::*;

async fn text_of(mock: &csp_mock_llm::MockLlm, body: &Value) -> String {
    streamed_text(&sse(mock, body).await)
}

fn sources(mock: &csp_mock_llm::MockLlm) -> Vec<Option<Source>> {
    message_calls(mock).into_iter().map(|e| e.source).collect()
}

#[tokio::test]
async fn queue_is_consumed_in_order_then_default_then_the_rest() {
    let mock = start().await;
    mock.push(Behaviour::text("one"));
    let queued: Value = client()
        .post(format!("{}/_mock/queue", mock.base_url()))
        .json(&json!([{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queued, json!({"queued": 2, "queue_len": 3}));
    client()
        .post(format!("{}/_mock/queue", mock.base_url()))
        .json(&json!({"type": "text", "text": "four"}))
        .send()
        .await
        .unwrap();
    client()
        .post(format!("{}/_mock/default", mock.base_url()))
        .json(&json!({"type": "text", "text": "fallback"}))
        .send()
        .await
        .unwrap();
    let directive = prompt_body(r#"MOCK{"type":"text","text":"directed"}MOCK"#, true);
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(text_of(&mock, &directive).await);
    }
    assert_eq!(got, ["one", "two", "three", "four", "fallback", "fallback"]);

    // `null` removes the default, so the directive is reached again.
    client()
        .post(format!("{}/_mock/default", mock.base_url()))
        .json(&Value::Null)
        .send()
        .await
        .unwrap();
    assert_eq!(text_of(&mock, &directive).await, "directed");
    assert_eq!(
        sources(&mock),
        [
            Some(Source::Queue),
            Some(Source::Queue),
            Some(Source::Queue),
            Some(Source::Queue),
            Some(Source::Default),
            Some(Source::Default),
            Some(Source::Directive)
        ]
    );
}

#[tokio::test]
async fn reset_clears_queue_default_and_log() {
    let mock = start().await;
    mock.push(Behaviour::text("queued"));
    mock.set_default(Some(Behaviour::text("default")));
    post_messages(&mock, &prompt_body("x", true))
        .await
        .text()
        .await
        .unwrap();
    mock.push(Behaviour::text("left over"));
    client()
        .post(format!("{}/_mock/reset", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert!(mock.log().is_empty());
    let text = text_of(&mock, &prompt_body("hello", true)).await;
    assert!(text.contains("the offline demo model"), "{text}");
    assert_eq!(mock.log()[0].index, 0);
    mock.reset();
    assert!(mock.log().is_empty());
}

#[tokio::test]
async fn directive_is_read_from_the_last_text_block_of_the_last_user_message() {
    let mock = start().await;
    let body = json!({
        "model": "claude-sonnet-4-5",
        "stream": true,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nMOCK{\"type\":\"text\",\"text\":\"from a reminder\"}MOCK\n</system-reminder>"},
                {"type": "text", "text": "MOCK{\"type\":\"text\",\"text\":\"from an old prompt\"}MOCK"}
            ]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "system", "content": "The following deferred tools are now available via ToolSearch. MOCK{\"type\":\"cut\"}MOCK"},
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nToday's date is 2026-11-22.\n</system-reminder>"},
                {"type": "text", "text": "Please MOCK{\"type\":\"text\",\"text\":\"from the prompt\"}MOCK thanks"},
                {"type": "text", "text": "<system-reminder>\n<total_tokens>1</total_tokens>\n</system-reminder>"}
            ]},
            {"role": "system", "content": "environment info"}
        ]
    });
    assert_eq!(text_of(&mock, &body).await, "from the prompt");
    let entry = &message_calls(&mock)[0];
    assert_eq!(entry.source, Some(Source::Directive));
    assert_eq!(entry.behaviour, Some(Behaviour::text("from the prompt")));
}

#[tokio::test]
async fn an_invalid_directive_is_an_invalid_request() {
    let mock = start().await;
    let response = post_messages(
        &mock,
        &prompt_body(r#"MOCK{"type":"text","chunk_delay":3}MOCK"#, true),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("unknown field `chunk_delay`"), "{message}");
}

#[tokio::test]
async fn title_requests_do_not_consume_the_queue() {
    let mock = start().await;
    mock.push(Behaviour::text("for the real turn"));
    let title = json!({
        "model": "claude-haiku-4-5",
        "stream": true,
        "system": [{"type": "text", "text": "You are naming a coding session. Return JSON with a single \"title\" field."}],
        "messages": [{"role": "user", "content": "MOCK{\"type\":\"cut\"}MOCK"}],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object",
            "properties": {"title": {"type": "string"}}, "required": ["title"], "additionalProperties": false}}}
    });
    assert_eq!(text_of(&mock, &title).await, r#"{"title":"Mock session"}"#);
    let mut by_schema_only = title.clone();
    by_schema_only["system"] = json!("You are Claude.");
    by_schema_only["stream"] = json!(false);
    let message: Value = post_messages(&mock, &by_schema_only)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(message["content"][0]["text"], r#"{"title":"Mock session"}"#);
    assert_eq!(
        text_of(&mock, &prompt_body("hi", true)).await,
        "for the real turn"
    );
    assert_eq!(
        sources(&mock),
        [
            Some(Source::Title),
            Some(Source::Title),
            Some(Source::Queue)
        ]
    );
}

#[tokio::test]
async fn built_ins_run_commands_quote_tool_results_and_explain_the_demo() {
    let mock = start().await;
    let events = sse(&mock, &prompt_body("run ls -la /tmp", true)).await;
    let tool = events
        .iter()
        .find(|e| e.data["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(tool.data["content_block"]["name"], "Bash");
    let input: String = events
        .iter()
        .filter_map(|e| e.data["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&input).unwrap(),
        json!({"command": "ls -la /tmp", "description": "Run ls -la /tmp"})
    );

    let after_tool = json!({
        "model": "claude-sonnet-4-5",
        "stream": true,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "run ls"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                "content": "a.txt\nb.txt\n\n<system-reminder>\n<total_tokens>1 tokens left</total_tokens>\n</system-reminder>",
                "is_error": false}]}
        ]
    });
    assert_eq!(
        text_of(&mock, &after_tool).await,
        "The command finished. Output:\n```\na.txt\nb.txt\n```"
    );
    let long = "x".repeat(600);
    let mut long_output = after_tool.clone();
    long_output["messages"][2]["content"][0]["content"] = json!(long);
    assert_eq!(
        text_of(&mock, &long_output).await,
        format!("The command finished. Output:\n```\n{}\n```", &long[..500])
    );

    let demo = sse(&mock, &prompt_body("hello", true)).await;
    let deltas = demo
        .iter()
        .filter(|e| e.data["type"] == "content_block_delta")
        .count();
    assert!(deltas > 3, "the demo answer streams in several chunks");
    let text = streamed_text(&demo);
    assert!(text.contains("the offline demo model"), "{text}");
    assert!(text.contains("`run ls`"), "{text}");
    assert!(text.contains("> hello"), "{text}");
    assert_eq!(
        sources(&mock),
        [
            Some(Source::RunCommand),
            Some(Source::ToolResult),
            Some(Source::ToolResult),
            Some(Source::Demo)
        ]
    );
}

#[tokio::test]
async fn rules_file_rules_come_before_built_ins_and_default_replaces_the_demo() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        r#"{{"rules": [
            {{"contains": "DEPLOY", "behaviour": {{"type": "text", "text": "deploying"}}}},
            {{"starts_with": "run slow", "behaviour": {{"type": "text", "text": "too slow"}}}}
        ],
        "default": {{"type": "text", "text": "rules default"}}}}"#
    )
    .unwrap();
    let rules = Rules::from_path(file.path()).unwrap();
    let mock = start_with(rules).await;
    assert_eq!(
        text_of(&mock, &prompt_body("please deploy it", true)).await,
        "deploying"
    );
    assert_eq!(
        text_of(&mock, &prompt_body("run slow thing", true)).await,
        "too slow"
    );
    assert_eq!(
        text_of(&mock, &prompt_body("anything else", true)).await,
        "rules default"
    );
    let events = sse(&mock, &prompt_body("run ls", true)).await;
    assert!(
        events
            .iter()
            .any(|e| e.data["content_block"]["type"] == "tool_use")
    );
    assert_eq!(
        sources(&mock),
        [
            Some(Source::Rule(0)),
            Some(Source::Rule(1)),
            Some(Source::RulesDefault),
            Some(Source::RunCommand)
        ]
    );
}

#[tokio::test]
async fn rules_built_in_code_work_the_same() {
    let rules = Rules::new(
        vec![Rule {
            contains: Some("weather".into()),
            starts_with: None,
            behaviour: Behaviour::text("sunny"),
        }],
        None,
    );
    let mock = start_with(rules).await;
    assert_eq!(
        text_of(&mock, &prompt_body("What's the Weather?", true)).await,
        "sunny"
    );
}

#[tokio::test]
async fn rules_file_errors_name_the_file_and_the_place() {
    let missing = Rules::from_path(std::path::Path::new("/nonexistent/rules.json")).unwrap_err();
    assert!(matches!(missing, Error::ReadRules { .. }));
    assert!(
        missing.to_string().contains("/nonexistent/rules.json"),
        "{missing}"
    );

    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        "{{\"rules\": [\n  {{\"contains\": \"x\",\n   \"behaviour\": {{\"type\": \"text\", \"chunks\": \"three\"}}}}\n]}}"
    )
    .unwrap();
    let invalid = Rules::from_path(file.path()).unwrap_err();
    let message = invalid.to_string();
    assert!(matches!(invalid, Error::InvalidRules { .. }));
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("line 3"), "{message}");
    assert!(
        message.contains("invalid type: string \"three\""),
        "{message}"
    );
}

#[tokio::test]
async fn control_endpoints_reject_bad_behaviours_with_the_reason() {
    let mock = start().await;
    for (path, body) in [
        ("/_mock/queue", json!([{"type": "text"}, {"type": "nope"}])),
        ("/_mock/queue", json!({"type": "text", "after_deltas": 1})),
        ("/_mock/default", json!({"text": "no type"})),
    ] {
        let response = client()
            .post(format!("{}{path}", mock.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path} {body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid behaviour: "),
            "{error}"
        );
    }
    // Nothing half-queued from the rejected list.
    let text = text_of(&mock, &prompt_body("hello", true)).await;
    assert!(text.contains("offline demo model"), "{text}");
}
