//! The Messages API wire format: SSE framing, block order, JSON messages, side endpoints.

use csp_mock_llm::{Behaviour, MockLlm, Reply, ToolUse, Usage};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn text_stream_has_the_api_shape() {
    let mock = start().await;
    mock.push(Behaviour::Text(Reply {
        text: Some("Hello, wörld ✓".into()),
        chunks: Some(4),
        ..Reply::default()
    }));
    let response = post_messages(&mock, &prompt_body("hi", true)).await;
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(request_id.starts_with("req_mock_"), "{request_id}");
    assert!(
        request_id["req_mock_".len()..]
            .chars()
            .all(|c| c.is_ascii_hexdigit())
    );
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let events = parse_sse(&response.text().await.unwrap());
    assert_eq!(
        event_names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let message = &events[0].data["message"];
    assert_eq!(
        message["model"], "claude-sonnet-4-5",
        "echoes the requested model"
    );
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["usage"]["input_tokens"], 100);
    assert_eq!(message["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(
        events[2].data["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(streamed_text(&events), "Hello, wörld ✓");
    assert_eq!(events[8].data["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[8].data["usage"]["output_tokens"], 50);
    assert_eq!(
        message_calls(&mock)[0].request_id.as_deref(),
        Some(request_id.as_str())
    );
}

#[tokio::test]
async fn thinking_comes_first_with_its_signature() {
    let mock = start().await;
    mock.push(Behaviour::Text(Reply {
        text: Some("answer".into()),
        thinking: Some("Let me think.".into()),
        model: Some("claude-haiku-4-5".into()),
        ..Reply::default()
    }));
    let events = sse(&mock, &prompt_body("hi", true)).await;
    let blocks: Vec<(Value, Value)> = events
        .iter()
        .filter(|e| e.data["type"] == "content_block_start")
        .map(|e| {
            (
                e.data["index"].clone(),
                e.data["content_block"]["type"].clone(),
            )
        })
        .collect();
    assert_eq!(
        blocks,
        [(json!(0), json!("thinking")), (json!(1), json!("text"))]
    );
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e.data["index"] == 0 && e.data["type"] == "content_block_delta")
        .map(|e| &e.data["delta"])
        .collect();
    assert_eq!(deltas[0]["thinking"], "Let me think.");
    assert_eq!(deltas[1]["type"], "signature_delta");
    assert_eq!(events[0].data["message"]["model"], "claude-haiku-4-5");
}

#[tokio::test]
async fn tool_use_partial_json_concatenates_to_the_input() {
    let mock = start().await;
    let input = json!({"a": 2, "b": 40, "note": "ünïcode ✓ and \"quotes\""});
    mock.push(Behaviour::ToolUse(ToolUse {
        name: "mcp__calc__add".into(),
        input: input.clone(),
        id: Some("toolu_fixed".into()),
        reply: Reply {
            text: Some("Adding.".into()),
            chunks: Some(7),
            ..Reply::default()
        },
    }));
    let events = sse(&mock, &prompt_body("add", true)).await;
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e.data["type"] == "content_block_start")
        .map(|e| &e.data["content_block"])
        .collect();
    assert_eq!(starts[0]["type"], "text");
    assert_eq!(
        *starts[1],
        json!({"type": "tool_use", "id": "toolu_fixed", "name": "mcp__calc__add", "input": {}})
    );
    let partial: Vec<&str> = events
        .iter()
        .filter(|e| e.data["delta"]["type"] == "input_json_delta")
        .map(|e| {
            assert_eq!(e.data["index"], 1);
            e.data["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(partial.len(), 7);
    let joined: Value = serde_json::from_str(&partial.concat()).unwrap();
    assert_eq!(joined, input);
    assert_eq!(streamed_text(&events), "Adding.");
    let delta = events
        .iter()
        .find(|e| e.data["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta.data["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn generated_tool_ids_are_unique() {
    let mock = start().await;
    mock.push(Behaviour::tool_use("Bash", json!({"command": "ls"})));
    mock.push(Behaviour::tool_use("Bash", json!({"command": "ls"})));
    let id = |events: Vec<SseEvent>| {
        events
            .iter()
            .find(|e| e.data["content_block"]["type"] == "tool_use")
            .map(|e| e.data["content_block"]["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let first = id(sse(&mock, &prompt_body("x", true)).await);
    let second = id(sse(&mock, &prompt_body("x", true)).await);
    assert!(first.starts_with("toolu_"), "{first}");
    assert_ne!(first, second);
}

#[tokio::test]
async fn non_streaming_requests_get_one_json_message() {
    let mock = start().await;
    mock.push(Behaviour::Text(Reply {
        text: Some("plain".into()),
        thinking: Some("t".into()),
        usage: Usage {
            input_tokens: 7,
            output_tokens: 9,
            cache_creation_input_tokens: 1,
            cache_read_input_tokens: 2,
        },
        ..Reply::default()
    }));
    mock.push(Behaviour::tool_use("Bash", json!({"command": "ls"})));
    let response = post_messages(&mock, &prompt_body("hi", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["content"][0]["type"], "thinking");
    assert_eq!(
        message["content"][1],
        json!({"type": "text", "text": "plain"})
    );
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 7, "output_tokens": 9, "cache_creation_input_tokens": 1,
               "cache_read_input_tokens": 2, "service_tier": "standard"})
    );
    let tool: Value = post_messages(&mock, &prompt_body("hi", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tool["stop_reason"], "tool_use");
    assert_eq!(tool["content"][0]["input"], json!({"command": "ls"}));
}

#[tokio::test]
async fn count_tokens_and_hello() {
    let mock = start().await;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "foo"}], "tools": []});
    let counted: Value = client()
        .post(format!(
            "{}/v1/messages/count_tokens?beta=true",
            mock.base_url()
        ))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = body["messages"].to_string().len() / 4;
    assert_eq!(counted, json!({"input_tokens": expected}));
    let head = client()
        .head(format!("{}/api/hello", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let get = client()
        .get(format!("{}/api/hello", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let missing = client()
        .get(format!("{}/v1/files", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let paths: Vec<(String, String)> = mock.log().into_iter().map(|e| (e.method, e.path)).collect();
    assert_eq!(
        paths,
        [
            ("POST".into(), "/v1/messages/count_tokens".into()),
            ("HEAD".into(), "/api/hello".into()),
            ("GET".into(), "/api/hello".into()),
            ("GET".into(), "/v1/files".into()),
        ]
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_invalid_request() {
    let mock = start().await;
    let response = client()
        .post(format!("{}/v1/messages", mock.base_url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(mock.log()[0].body, json!("not json"));
}

#[tokio::test]
async fn the_log_records_requests_without_credentials() {
    let mock = start().await;
    client()
        .post(format!("{}/v1/messages?beta=true", mock.base_url()))
        .header("x-api-key", "sk-secret-1")
        .header("authorization", "Bearer sk-secret-2")
        .header("anthropic-version", "2023-06-01")
        .json(&prompt_body("hello there", true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let entry = &mock.log()[0];
    assert_eq!(entry.index, 0);
    assert_eq!(entry.method, "POST");
    assert_eq!(entry.query.as_deref(), Some("beta=true"));
    assert_eq!(entry.headers["x-api-key"], "[redacted]");
    assert_eq!(entry.headers["authorization"], "[redacted]");
    assert_eq!(entry.headers["anthropic-version"], "2023-06-01");
    assert_eq!(entry.body, prompt_body("hello there", true));
    assert_eq!(entry.status, Some(200));
    assert!(!entry.client_disconnected);
    let text = serde_json::to_string(&mock.log()).unwrap();
    assert!(!text.contains("sk-secret"), "{text}");

    // The HTTP view of the same log, with `since`.
    post_messages(&mock, &prompt_body("again", true))
        .await
        .text()
        .await
        .unwrap();
    let since_one: Vec<Value> = client()
        .get(format!("{}/_mock/log?since=1", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(since_one.len(), 1);
    assert_eq!(since_one[0]["index"], 1);
    assert_eq!(since_one[0]["source"], "demo");
    assert_eq!(since_one[0]["behaviour"]["type"], "text");
}

async fn list_models(mock: &MockLlm, query: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{}/v1/models{query}", mock.base_url()))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let logged = mock.log().pop().expect("logged");
    assert_eq!(logged.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(logged.status, Some(status));
    (status, body)
}

fn ids(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn models_are_listed_in_pages_like_the_api() {
    let mock = start().await;
    let (status, all) = list_models(&mock, "").await;
    assert_eq!(status, 200);
    assert_eq!(all["has_more"], false);
    let all_ids = ids(&all);
    assert!(all_ids.contains(&"claude-sonnet-4-5"), "{all}");
    assert!(all_ids.contains(&"claude-opus-5-5"), "the CLI's default");
    let first = &all["data"][0];
    assert_eq!(first["type"], "model");
    assert!(
        first["display_name"]
            .as_str()
            .unwrap()
            .starts_with("Claude ")
    );
    assert!(
        time::OffsetDateTime::parse(
            first["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok(),
        "{first}"
    );
    assert_eq!(all["first_id"], all_ids[0]);
    assert_eq!(all["last_id"], *all_ids.last().unwrap());

    let (_, one) = list_models(&mock, "?limit=1").await;
    assert_eq!(ids(&one), all_ids[..1]);
    assert_eq!(one["has_more"], true);
    assert_eq!(one["first_id"], all_ids[0]);
    assert_eq!(one["last_id"], all_ids[0]);

    let (_, next) = list_models(&mock, &format!("?limit=2&after_id={}", all_ids[0])).await;
    assert_eq!(ids(&next), all_ids[1..3]);
    let last = all_ids.len() - 1;
    let (_, tail) = list_models(&mock, &format!("?after_id={}", all_ids[last - 1])).await;
    assert_eq!(ids(&tail), all_ids[last..]);
    assert_eq!(tail["has_more"], false);
    let (_, before) = list_models(&mock, &format!("?limit=2&before_id={}", all_ids[3])).await;
    assert_eq!(ids(&before), all_ids[1..3]);
    assert_eq!(before["has_more"], true);
    let (_, empty) = list_models(&mock, &format!("?before_id={}", all_ids[0])).await;
    assert_eq!(
        empty,
        json!({"data": [], "has_more": false, "first_id": null, "last_id": null})
    );

    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?after_id=gpt-4"] {
        let (status, error) = list_models(&mock, bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{bad}");
    }
    let log = mock.log();
    assert!(
        log.iter()
            .all(|e| e.method == "GET" && e.path == "/v1/models")
    );
    assert_eq!(log[1].query.as_deref(), Some("limit=1"));
}
