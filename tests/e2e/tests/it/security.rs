//! Bad input gets a clear error and the connection or process survives.

use base64::Engine;
use csp_e2e::{ADMIN_PASSWORD, Csp, Mode, Options};
use serde_json::json;
use tokio_tungstenite::tungstenite;

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn http_status(e: &tungstenite::Error) -> Option<u16> {
    match e {
        tungstenite::Error::Http(resp) => Some(resp.status().as_u16()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_frames_get_errors_and_the_connection_survives() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    assert_eq!(ws.next().await.unwrap()["status"], "ready");

    ws.send_raw("{not json".into()).await.unwrap();
    let f = ws.next().await.unwrap();
    assert_eq!(f["code"], "bad_frame", "{f}");
    assert!(
        f.get("seq").is_none(),
        "connection errors are not part of the stream: {f}"
    );

    ws.send(json!({"type":"shout","text":"hi"})).await.unwrap();
    assert_eq!(ws.next().await.unwrap()["code"], "unknown_type");

    ws.send(json!({"type":"send"})).await.unwrap();
    assert_eq!(ws.next().await.unwrap()["code"], "bad_frame");

    ws.send(json!({"type":"send","text":"   \n "}))
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap()["code"], "empty_message");

    let big = "x".repeat(70 * 1024);
    ws.send(json!({"type":"send","text": big})).await.unwrap();
    let f = ws.next().await.unwrap();
    assert_eq!(f["code"], "frame_too_large", "{f}");
    assert!(f["message"].as_str().unwrap().contains("64 KB"), "{f}");

    // Still alive and usable.
    ws.send(json!({"type":"ping"})).await.unwrap();
    assert_eq!(ws.next().await.unwrap()["type"], "pong");
    ws.send(json!({"type":"send","text":"MOCK{\"type\":\"text\",\"text\":\"still here\"}MOCK"}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    assert_eq!(csp_e2e::text_of(&turn), "still here");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_refuses_missing_forged_expired_and_none_tokens_and_foreign_origins() {
    let csp = Csp::start(
        Mode::Dev,
        Options {
            prewarm: 0,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let token = csp.login().await.unwrap();

    // Missing.
    let e = csp.ws_with("", &[]).await.err().expect("refused");
    assert_eq!(http_status(&e), Some(401), "{e}");

    // Forged: a valid token's payload with a raised role, same signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["role"] = json!("admin");
    payload["name"] = json!("mallory");
    let forged = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    // alg: none.
    let none = format!("{}.{}.", b64(&json!({"alg":"none","typ":"JWT"})), parts[1]);
    // Expired but correctly signed with the deployment's own secret.
    let mut claims = payload.clone();
    claims["role"] = json!("admin");
    claims["name"] = json!("admin");
    claims["iat"] = json!(1_000_000_000);
    claims["exp"] = json!(1_000_003_600);
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(csp_e2e::JWT_SECRET.as_bytes()),
    )
    .unwrap();
    // Well-formed and unexpired, but signed with another secret.
    let mut fresh = claims.clone();
    fresh["iat"] = json!(4_000_000_000u64);
    fresh["exp"] = json!(4_000_003_600u64);
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &fresh,
        &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-of-enough-length-000"),
    )
    .unwrap();
    for bad in [forged, none, expired, foreign, "garbage".to_owned()] {
        let e = csp
            .ws_with("", &[("authorization", format!("Bearer {bad}"))])
            .await
            .err()
            .expect("refused");
        assert_eq!(http_status(&e), Some(401), "token {bad}: {e}");
        let (status, body) = csp.get(&bad, "/api/v1/me").await.unwrap();
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "unauthenticated");
    }

    // A cookie-authenticated socket from a foreign page is refused...
    let cookie = format!("csp_token={token}");
    let e = csp
        .ws_with(
            "",
            &[
                ("cookie", cookie.clone()),
                ("origin", "https://evil.example".into()),
            ],
        )
        .await
        .err()
        .expect("refused");
    assert_eq!(http_status(&e), Some(403), "{e}");
    // ...and so is one with a cookie but no Origin at all.
    let e = csp
        .ws_with("", &[("cookie", cookie.clone())])
        .await
        .err()
        .expect("refused");
    assert_eq!(http_status(&e), Some(403), "{e}");
    // The gateway's own origin is fine.
    let own = csp.base.clone();
    let mut ws = csp
        .ws_with("", &[("cookie", cookie), ("origin", own)])
        .await
        .expect("same-origin socket");
    assert_eq!(ws.next().await.unwrap()["type"], "session");

    // Someone else's or a made-up session id is a 404, not a reattach.
    let e = csp
        .ws_with(
            &format!("session={}", uuid::Uuid::new_v4()),
            &[("authorization", format!("Bearer {token}"))],
        )
        .await
        .err()
        .expect("refused");
    assert_eq!(http_status(&e), Some(404), "{e}");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_errors_are_clear_and_cookies_are_httponly() {
    let csp = Csp::start(
        Mode::Dev,
        Options {
            prewarm: 0,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let http = csp.http();
    let url = format!("{}/api/v1/auth/login", csp.base);
    let resp = http
        .post(&url)
        .json(&json!({"username":"admin","password":"wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Wrong username or password.");

    let resp = http.post(&url).body("{oops").send().await.unwrap();
    assert_eq!(resp.status(), 400);

    let resp = http
        .post(&url)
        .json(&json!({"username":"admin","password":ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    csp.stop().await;
}
