//! `Options::api_key`: the API's answer to a missing or wrong key.

use serde_json::{Value, json};

use crate::helpers::*;

const KEY: &str = "sk-ant-mock-right";

/// Status, `request-id` header and body of one request to `path`.
async fn call(
    mock: &csp_mock_llm::MockLlm,
    method: reqwest::Method,
    path: &str,
    credential: Option<(&str, &str)>,
) -> (u16, Option<String>, Value) {
    let mut request = client().request(method, format!("{}{path}", mock.base_url()));
    if let Some((name, value)) = credential {
        request = request.header(name, value);
    }
    if path.starts_with("/v1/messages") {
        request = request.json(&prompt_body("hi", false));
    }
    let response = request.send().await.expect("the mock answers");
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, request_id, body)
}

#[tokio::test]
async fn without_a_configured_key_anything_goes() {
    let mock = start().await;
    let (status, _, _) = call(&mock, reqwest::Method::POST, "/v1/messages", None).await;
    assert_eq!(status, 200);
    let wrong = Some(("x-api-key", "whatever"));
    let (status, _, _) = call(&mock, reqwest::Method::GET, "/v1/models", wrong).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_the_api_s_401() {
    let mock = start_with_key(KEY).await;
    let wrong_bearer = format!("Bearer {KEY}x");
    let credentials = [
        None,
        Some(("x-api-key", "sk-ant-mock-wrong")),
        Some(("x-api-key", "")),
        Some(("authorization", wrong_bearer.as_str())),
        // The key, but not as a bearer token.
        Some(("authorization", KEY)),
    ];
    for credential in credentials {
        for (method, path) in [
            (reqwest::Method::POST, "/v1/messages?beta=true"),
            (reqwest::Method::POST, "/v1/messages/count_tokens"),
            (reqwest::Method::GET, "/v1/models?limit=1"),
            (reqwest::Method::GET, "/v1/no-such-endpoint"),
        ] {
            let (status, request_id, body) = call(&mock, method, path, credential).await;
            assert_eq!(status, 401, "{path} with {credential:?}");
            let request_id = request_id.expect("a request-id header");
            assert!(request_id.starts_with("req_mock_"), "{request_id}");
            assert_eq!(
                body,
                json!({
                    "type": "error",
                    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                    "request_id": request_id,
                }),
                "{path}"
            );
        }
    }
    let log = mock.log();
    assert_eq!(
        log.len(),
        credentials.len() * 4,
        "rejected calls are logged"
    );
    assert!(log.iter().all(|e| e.status == Some(401)));
    assert!(
        log.iter().all(|e| e.source.is_none()),
        "no behaviour was used"
    );
    assert_eq!(log[4].headers["x-api-key"], "[redacted]");
    assert_eq!(log[4 * 3].headers["authorization"], "[redacted]");
}

#[tokio::test]
async fn the_key_is_accepted_as_x_api_key_or_bearer_token() {
    let mock = start_with_key(KEY).await;
    let bearer = format!("Bearer {KEY}");
    for credential in [("x-api-key", KEY), ("authorization", bearer.as_str())] {
        let (status, _, body) = call(
            &mock,
            reqwest::Method::POST,
            "/v1/messages?beta=true",
            Some(credential),
        )
        .await;
        assert_eq!(status, 200, "{credential:?}: {body}");
        assert_eq!(body["type"], "message");
        let (status, _, body) = call(
            &mock,
            reqwest::Method::GET,
            "/v1/models?limit=1",
            Some(credential),
        )
        .await;
        assert_eq!(status, 200, "{credential:?}: {body}");
        assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test]
async fn control_endpoints_and_the_preconnect_stay_open() {
    let mock = start_with_key(KEY).await;
    let (status, _, _) = call(&mock, reqwest::Method::GET, "/api/hello", None).await;
    assert_eq!(status, 200);
    let queued = client()
        .post(format!("{}/_mock/queue", mock.base_url()))
        .json(&json!({"type": "text", "text": "queued"}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 200);
    let log: Value = client()
        .get(format!("{}/_mock/log", mock.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log[0]["path"], "/api/hello");
    let reset = client()
        .post(format!("{}/_mock/reset", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
}
