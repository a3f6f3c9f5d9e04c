//! `POST /v1/chat/completions` and `/api/v1/chat/completions`: the OpenAI wire format, the
//! shared scripting and log, and the enhancement note on both wires.

use csp_mock_llm::{Behaviour, Source};
use serde_json::{Value, json};

use crate::helpers::{client, start, start_with_key};

const ENHANCEMENT_SYSTEM: &str = "\nYou are an AI assistant helping MSP technicians resolve IT incidents faster.\n\nYour role:\n- Analyze gathered context\n";

const ENHANCEMENT_USER: &str = "\nTicket ID: 77\nDescription: VPN down\nPriority: High\n\nContext Gathered:\n\n### Similar Tickets Found:\n- Ticket 41: VPN down after update... (Resolved: 2026-02-01)\n  Resolution: Re-issued the certificate.\n\n### Knowledge Base Articles:\n- VPN certificates: How to renew....\n  URL: https://kb.example/vpn\n\n### System Information:\nSystem: vpn-gw-1 (10.1.0.1)\nRole: VPN gateway\nClient: Acme\n\n### Monitoring Data:\nNo monitoring data available.\n\nBased on this context, provide your analysis and recommendations.\n";

fn chat_body(system: &str, user: &str) -> Value {
    json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "max_tokens": 1000,
        "temperature": 0.3,
    })
}

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{base}{path}"))
        .header("authorization", "Bearer test-key")
        .json(body)
        .send()
        .await
        .expect("the mock answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn both_paths_answer_in_the_openai_shape_and_share_the_queue_and_log() {
    let mock = start().await;
    mock.push(Behaviour::text("queued answer"));
    let (status, body) = post(
        &mock.base_url(),
        "/v1/chat/completions",
        &chat_body("be brief", "hi"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "queued answer");
    assert_eq!(body["usage"]["prompt_tokens"], 100);
    assert_eq!(body["usage"]["completion_tokens"], 50);
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));

    let (status, body) = post(
        &mock.base_url(),
        "/api/v1/chat/completions",
        &chat_body("be brief", "hello"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("offline demo model")
    );

    let log = mock.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].path, "/v1/chat/completions");
    assert_eq!(log[0].source, Some(Source::Queue));
    assert_eq!(log[0].headers["authorization"], "[redacted]");
    assert_eq!(log[1].path, "/api/v1/chat/completions");
    assert_eq!(log[1].source, Some(Source::Demo));
    assert_eq!(log[1].body["messages"][1]["content"], "hello");
}

#[tokio::test]
async fn scripted_errors_use_the_openai_error_shape() {
    let mock = start().await;
    mock.push(Behaviour::http_error(429));
    let (status, body) = post(
        &mock.base_url(),
        "/v1/chat/completions",
        &chat_body("s", "u"),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], 429);
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn streaming_is_refused_and_a_bad_body_is_a_400() {
    let mock = start().await;
    let mut body = chat_body("s", "u");
    body["stream"] = json!(true);
    let (status, answer) = post(&mock.base_url(), "/v1/chat/completions", &body).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("do not stream")
    );
    let (status, answer) = post(&mock.base_url(), "/v1/chat/completions", &json!([1, 2])).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], 400);
    assert_eq!(mock.log()[0].status, Some(400));
}

#[tokio::test]
async fn the_api_key_is_checked_on_both_paths() {
    let mock = start_with_key("right-key").await;
    for path in ["/v1/chat/completions", "/api/v1/chat/completions"] {
        let (status, _) = post(&mock.base_url(), path, &chat_body("s", "u")).await;
        assert_eq!(status, 401, "{path}");
        let resp = client()
            .post(format!("{}{path}", mock.base_url()))
            .bearer_auth("right-key")
            .json(&chat_body("s", "u"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn an_enhancement_request_gets_the_same_note_on_both_wires() {
    let mock = start().await;
    let (status, chat) = post(
        &mock.base_url(),
        "/api/v1/chat/completions",
        &chat_body(ENHANCEMENT_SYSTEM, ENHANCEMENT_USER),
    )
    .await;
    assert_eq!(status, 200);
    let chat_text = chat["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, messages) = post(
        &mock.base_url(),
        "/v1/messages",
        &json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1000,
            "temperature": 0.3,
            "system": ENHANCEMENT_SYSTEM,
            "messages": [{"role": "user", "content": ENHANCEMENT_USER}],
        }),
    )
    .await;
    assert_eq!(status, 200);
    let messages_text = messages["content"][0]["text"].as_str().unwrap();
    assert_eq!(chat_text, messages_text, "deterministic across wires");
    for needle in [
        "## Similar Tickets\n- Similar ticket 41 (resolved 2026-02-01) was resolved by: Re-issued the certificate.",
        "## Relevant Documentation\n- \"VPN certificates\" (https://kb.example/vpn)",
        "## System Information\n- vpn-gw-1 (10.1.0.1): role VPN gateway, client Acme",
        "## Recommended Next Steps\n1. Try the resolution of ticket 41 on ticket 77.",
    ] {
        assert!(chat_text.contains(needle), "{needle}\n---\n{chat_text}");
    }
    assert!(messages["usage"]["output_tokens"].as_u64().unwrap() > 50);
    let sources: Vec<_> = mock.log().iter().map(|e| e.source).collect();
    assert_eq!(sources, [Some(Source::Enhancement); 2]);

    // The queue still comes first: a scripted outage reaches an enhancement request.
    mock.push(Behaviour::http_error(503));
    let (status, _) = post(
        &mock.base_url(),
        "/v1/chat/completions",
        &chat_body(ENHANCEMENT_SYSTEM, ENHANCEMENT_USER),
    )
    .await;
    assert_eq!(status, 503);
}
