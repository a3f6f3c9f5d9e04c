//! Scripted failures: HTTP errors, SSE errors, cuts, hangs, stalls and malformed streams.

use std::time::Duration;

use csp_mock_llm::Behaviour;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::helpers::*;

fn behaviour(v: Value) -> Behaviour {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn http_error_has_the_api_body_and_scripted_headers() {
    let mock = start().await;
    mock.push(behaviour(json!({"type": "http_error", "status": 529,
        "headers": {"retry-after": "1", "x-should-retry": "false"}})));
    let response = post_messages(&mock, &prompt_body("hi", true)).await;
    assert_eq!(response.status(), 529);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-should-retry"], "false");
    assert_eq!(response.headers()["content-type"], "application/json");
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
               "request_id": request_id})
    );
}

#[tokio::test]
async fn http_error_type_follows_the_status_unless_given() {
    let mock = start().await;
    for status in [400, 401, 429, 500, 529] {
        mock.push(Behaviour::http_error(status));
    }
    mock.push(behaviour(json!({"type": "http_error", "status": 500,
        "error_type": "overloaded_error", "message": "custom"})));
    let mut got = Vec::new();
    for _ in 0..6 {
        let response = post_messages(&mock, &prompt_body("hi", false)).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let error = &body["error"];
        got.push((status, error["type"].clone(), error["message"].clone()));
    }
    let expected = [
        (400, "invalid_request_error", "Invalid request"),
        (401, "authentication_error", "invalid x-api-key"),
        (429, "rate_limit_error", "Rate limited"),
        (500, "api_error", "Internal server error"),
        (529, "overloaded_error", "Overloaded"),
        (500, "overloaded_error", "custom"),
    ];
    assert_eq!(got, expected.map(|(s, t, m)| (s, json!(t), json!(m))));
}

#[tokio::test]
async fn sse_error_arrives_after_n_deltas_and_non_streaming_gets_529() {
    let mock = start().await;
    let script = json!({"type": "sse_error", "after_deltas": 2, "text": "abcdef", "chunks": 3});
    mock.push(behaviour(script.clone()));
    mock.push(behaviour(script));
    let events = sse(&mock, &prompt_body("hi", true)).await;
    let names = event_names(&events);
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        events[5].data,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(streamed_text(&events), "abcd");
    let fallback = post_messages(&mock, &prompt_body("hi", false)).await;
    assert_eq!(fallback.status(), 529);
}

#[tokio::test]
async fn nonstream_replaces_a_fault_for_the_fallback_request() {
    let mock = start().await;
    mock.push(behaviour(json!({"type": "sse_error",
        "nonstream": {"type": "text", "text": "rescued"}})));
    let message: Value = post_messages(&mock, &prompt_body("hi", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(message["content"][0]["text"], "rescued");
}

#[tokio::test]
async fn cut_closes_the_connection_mid_stream() {
    let mock = start().await;
    mock.push(behaviour(
        json!({"type": "cut", "after_deltas": 2, "text": "abcdef", "chunks": 3}),
    ));
    let mut response = post_messages(&mock, &prompt_body("hi", true)).await;
    assert_eq!(response.status(), 200);
    let mut received = Vec::new();
    let error = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => received.extend_from_slice(&bytes),
            Ok(None) => panic!(
                "the stream ended cleanly: {}",
                String::from_utf8_lossy(&received)
            ),
            Err(e) => break e,
        }
    };
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    let events = parse_sse(&String::from_utf8(received).unwrap());
    assert_eq!(streamed_text(&events), "abcd");
    assert!(events.iter().all(|e| e.data["type"] != "message_stop"));
    assert!(
        !message_calls(&mock)[0].client_disconnected,
        "the server cut, not the client"
    );
}

#[tokio::test]
async fn cut_of_a_non_streaming_request_sends_half_a_json_body() {
    let mock = start().await;
    mock.push(behaviour(json!({"type": "cut"})));
    let response = post_messages(&mock, &prompt_body("hi", false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err());
}

#[tokio::test(start_paused = true)]
async fn hang_holds_the_headers_then_answers() {
    let mock = start().await;
    mock.push(behaviour(
        json!({"type": "hang", "first_byte_delay_ms": 40000, "text": "late"}),
    ));
    let started = Instant::now();
    let response = post_messages(&mock, &prompt_body("hi", true)).await;
    assert!(started.elapsed() >= Duration::from_secs(40));
    assert_eq!(
        streamed_text(&parse_sse(&response.text().await.unwrap())),
        "late"
    );
}

#[tokio::test(start_paused = true)]
async fn stall_goes_silent_after_n_deltas_then_finishes() {
    let mock = start().await;
    mock.push(behaviour(
        json!({"type": "stall", "after_deltas": 1, "stall_ms": 400000,
        "text": "abcd", "chunks": 2}),
    ));
    let started = Instant::now();
    let mut response = post_messages(&mock, &prompt_body("hi", true)).await;
    assert!(
        started.elapsed() < Duration::from_secs(400),
        "headers come at once"
    );
    let mut body = Vec::new();
    while let Some(bytes) = response.chunk().await.unwrap() {
        body.extend_from_slice(&bytes);
    }
    assert!(started.elapsed() >= Duration::from_secs(400));
    let events = parse_sse(&String::from_utf8(body).unwrap());
    assert_eq!(streamed_text(&events), "abcd");
    assert_eq!(event_names(&events).last().unwrap(), "message_stop");
}

#[tokio::test]
async fn body_delay_sends_headers_first_and_logs_a_client_that_gives_up() {
    let mock = start().await;
    mock.push(behaviour(
        json!({"type": "body_delay", "delay_ms": 3_600_000}),
    ));
    let response = post_messages(&mock, &prompt_body("hi", true)).await;
    assert_eq!(response.status(), 200);
    drop(response);
    // The server notices the closed connection on its own; wait for the log to say so.
    let mut tries = 0;
    while !message_calls(&mock)[0].client_disconnected {
        tries += 1;
        assert!(tries < 500, "the disconnect was never logged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn omit_no_event_lines_and_content_type_break_the_stream_as_scripted() {
    let mock = start().await;
    mock.push(behaviour(
        json!({"type": "omit", "events": ["ping", "message_stop", "content_block_stop"]}),
    ));
    mock.push(behaviour(json!({"type": "no_event_lines", "text": "bare"})));
    mock.push(behaviour(
        json!({"type": "content_type", "value": "application/json"}),
    ));

    let names = event_names(&sse(&mock, &prompt_body("hi", true)).await);
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "message_delta"
        ]
    );

    let bare = post_messages(&mock, &prompt_body("hi", true))
        .await
        .text()
        .await
        .unwrap();
    let events = parse_sse(&bare);
    assert!(events.iter().all(|e| e.name.is_none()), "{bare}");
    assert_eq!(events.len(), 7);
    assert_eq!(streamed_text(&events), "bare");

    let wrong = post_messages(&mock, &prompt_body("hi", true)).await;
    assert_eq!(wrong.headers()["content-type"], "application/json");
    let events = parse_sse(&wrong.text().await.unwrap());
    assert_eq!(event_names(&events).last().unwrap(), "message_stop");
}

#[tokio::test]
async fn shutdown_ends_answers_in_flight() {
    let mock = start().await;
    mock.push(behaviour(
        json!({"type": "hang", "first_byte_delay_ms": 3_600_000}),
    ));
    let body = prompt_body("hi", true);
    let url = format!("{}/v1/messages", mock.base_url());
    let pending = tokio::spawn(async move { client().post(url).json(&body).send().await });
    while message_calls(&mock).is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A bound on a wedged shutdown, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(30), mock.shutdown())
        .await
        .expect("shutdown does not wait for the hour-long hang");
    let answer = pending
        .await
        .unwrap()
        .expect("the held request is answered");
    assert_eq!(answer.status(), 503);
}
