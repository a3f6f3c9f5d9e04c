//! Issue 12 end to end: a tool that returns megabytes leaves the chat usable
//! (the socket stays open, a reattach replays it, the history loads, the
//! next message is answered), and csp's own secrets never reach a browser.

use crate::governance::{new_user, ready};
use csp_e2e::{Csp, JWT_SECRET, Mode, Options, Ws, scripted, text_of};
use serde_json::{Value, json};

async fn bash(ws: &mut Ws, command: &str) -> Vec<Value> {
    let behaviour = json!({"type": "tool_use", "name": "Bash",
        "input": {"command": command, "description": "test"}});
    ws.send(json!({"type": "send", "text": scripted(behaviour)}))
        .await
        .unwrap();
    ws.turn().await.expect("the turn ends")
}

fn tool_result(frames: &[Value]) -> &Value {
    frames
        .iter()
        .find(|f| f["type"] == "tool_result")
        .unwrap_or_else(|| panic!("no tool_result in {frames:?}"))
}

async fn big_output(mode: Mode) {
    // A model with a large context: the CLI lets one `Read` return up to
    // about 2.7 MB then (with the default test model, about 470 KB).
    let opts = Options {
        env: vec![("CSP_MODEL".into(), "claude-opus-5-5".into())],
        ..Options::default()
    };
    let csp = Csp::start(mode, opts).await.expect("csp starts");
    let admin = csp.login().await.unwrap();
    // Bash needs the operator role.
    let (_, _, token) = new_user(&csp, &admin, "operator", None).await;
    let mut ws = csp.ws(&token, "").await.unwrap();
    let session = ready(&mut ws).await;

    // 2.4 MB in the session's working directory. The CLI keeps a Bash output
    // that large in a file and shows a preview, but `Read` with
    // `allow_large` returns all of it: the 4.7 MB of the bug report.
    let made = bash(
        &mut ws,
        "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij | head -n 24000 > big.txt && pwd",
    )
    .await;
    let dir = tool_result(&made)["content"]
        .as_str()
        .unwrap()
        .trim()
        .to_owned();
    let read = json!({"type": "tool_use", "name": "Read",
        "input": {"file_path": format!("{dir}/big.txt"), "allow_large": true, "limit": 24000}});
    ws.send(json!({"type": "send", "text": scripted(read)}))
        .await
        .unwrap();
    let frames = ws.turn().await.expect("the socket stays open");
    let result = tool_result(&frames);
    assert_eq!(result["status"], "complete", "{result}");
    let content = result["content"].as_str().unwrap();
    assert!(
        content.starts_with("     1\t0123456789") || content.starts_with("1\t0123456789"),
        "{}",
        &content[..80]
    );
    let (_, marker) = content
        .rsplit_once("\n… [output truncated: ")
        .unwrap_or_else(|| panic!("no marker: …{}", &content[content.len() - 200..]));
    let total: usize = marker
        .split_once(" (")
        .and_then(|(_, r)| r.split_once(" bytes), showing the first "))
        .map(|(n, _)| n.parse().unwrap())
        .unwrap_or_else(|| panic!("{marker}"));
    assert!(total > 2_000_000, "the full size is named: {marker}");
    assert!(marker.ends_with(" KiB]"), "{marker}");
    let frame_len = result.to_string().len();
    assert!(frame_len < 257 * 1024 + 300, "frame of {frame_len} bytes");
    let result_seq = result["seq"].as_u64().unwrap();

    // The next message is answered on the same socket.
    ws.send(
        json!({"type": "send", "text": scripted(json!({"type": "text", "text": "still here"}))}),
    )
    .await
    .unwrap();
    let next = ws.turn().await.unwrap();
    assert_eq!(text_of(&next), "still here");
    ws.close().await;

    // A reload: the history loads with the same bounded output...
    let (status, history) = csp
        .get(&token, &format!("/api/v1/sessions/{session}/messages"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{history}");
    let stored = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"].as_u64() == Some(result_seq))
        .expect("the tool result is in the history");
    assert_eq!(stored["content"], result["content"]);
    // ...and a reattach from the start replays past it.
    let mut again = csp
        .ws(&token, &format!("session={session}&after_seq=0"))
        .await
        .unwrap();
    let replayed = again
        .until(|f| f["seq"].as_u64() == Some(result_seq))
        .await
        .expect("the replay passes the big frame");
    assert_eq!(replayed.last().unwrap()["content"], result["content"]);
    again.close().await;
    csp.stop().await;
}

#[tokio::test]
async fn big_tool_output_dev() {
    big_output(Mode::Dev).await;
}

#[tokio::test]
async fn big_tool_output_distributed() {
    big_output(Mode::Distributed).await;
}

async fn secrets(mode: Mode) {
    let csp = Csp::start(mode, Options::default())
        .await
        .expect("csp starts");
    let admin = csp.login().await.unwrap();
    let (_, _, token) = new_user(&csp, &admin, "operator", None).await;
    let mut ws = csp.ws(&token, "").await.unwrap();
    let session = ready(&mut ws).await;
    let frames = bash(&mut ws, &format!("echo jwt={JWT_SECRET}")).await;
    let sent = serde_json::to_string(&frames).unwrap();
    assert!(!sent.contains(JWT_SECRET), "{sent}");
    assert_eq!(
        tool_result(&frames)["content"].as_str().unwrap().trim(),
        "jwt=[REDACTED]"
    );
    let input = &frames.iter().find(|f| f["type"] == "tool_use").unwrap()["input"];
    assert_eq!(input["command"], "echo jwt=[REDACTED]");
    // The scripted model quotes the output back in its answer.
    assert!(text_of(&frames).contains("jwt=[REDACTED]"), "{sent}");
    ws.close().await;

    let (status, history) = csp
        .get(&token, &format!("/api/v1/sessions/{session}/messages"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let stored = history.to_string();
    assert!(!stored.contains(JWT_SECRET), "{stored}");
    assert!(stored.contains("jwt=[REDACTED]"), "{stored}");
    csp.stop().await;
}

#[tokio::test]
async fn platform_secrets_are_redacted_dev() {
    secrets(Mode::Dev).await;
}

#[tokio::test]
async fn platform_secrets_are_redacted_distributed() {
    secrets(Mode::Distributed).await;
}

/// A login name is text a stranger chooses: in the text log it stays on its
/// event's line, escaped, and cannot colour the terminal.
#[tokio::test]
async fn a_forged_login_name_stays_on_one_log_line() {
    let csp = Csp::start(Mode::Dev, Options::default())
        .await
        .expect("csp starts");
    for name in ["x\nINFO forged", "\u{1b}[31mred"] {
        assert!(csp.login_as(name, "wrong-password").await.is_err());
    }
    let logs = csp.all_logs();
    assert!(
        logs.contains(r"x\nINFO forged"),
        "the name is logged escaped"
    );
    assert!(
        logs.contains(r"\u{1b}[31mred"),
        "the name is logged escaped"
    );
    assert!(
        !logs.lines().any(|l| l.starts_with("INFO forged")),
        "no forged line"
    );
    assert!(!logs.contains("\u{1b}[31mred"), "no raw escape");
    csp.stop().await;
}
