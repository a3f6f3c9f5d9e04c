use csp_e2e::{COST_PER_CALL, Csp, Mode, Options, Ws, scripted, text_of};
use serde_json::{Value, json};

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter_map(|f| f["seq"].as_u64()).collect()
}

fn assert_contiguous(seqs: &[u64]) {
    for w in seqs.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "seq must have no gaps or duplicates: {seqs:?}"
        );
    }
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn ready(ws: &mut Ws) -> (String, Vec<Value>) {
    let frames = ws
        .until(|f| f["type"] == "session" && f["status"] == "ready")
        .await
        .expect("session becomes ready");
    let id = frames.last().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, frames)
}

/// Everything a user does in one session, in order.
async fn chat_flow(mode: Mode) {
    let csp = Csp::start(mode, Options::default())
        .await
        .expect("csp starts");
    let token = csp.login().await.unwrap();

    // Ready from the warm pool: the very first frame.
    let mut ws = csp.ws(&token, "").await.unwrap();
    let first = ws.next().await.unwrap();
    assert_eq!(first["type"], "session", "{first}");
    assert_eq!(
        first["status"], "ready",
        "warm pool gives ready at once: {first}"
    );
    assert_eq!(first["seq"], 1);
    let session = first["session_id"].as_str().unwrap().to_owned();

    // Streamed deltas arrive in order and concatenate to the scripted text.
    let text = "The quick brown fox jumps over the lazy dog, twice over.";
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":text,"chunks":7})),"client_id":"c1"}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    assert_eq!(turn[0]["type"], "user_message", "{turn:?}");
    assert_eq!(turn[0]["client_id"], "c1");
    assert!(
        turn.iter().filter(|f| f["type"] == "delta").count() >= 2,
        "streamed in pieces: {turn:?}"
    );
    assert_eq!(text_of(&turn), text);
    let result = turn.last().unwrap();
    assert_eq!(result["is_error"], false);
    assert!(
        close_to(result["cost_usd"].as_f64().unwrap(), COST_PER_CALL),
        "cost as the CLI reported it: {result}"
    );
    let mut all = vec![first.clone()];
    all.extend(turn);

    // A scripted Bash tool_use really runs and comes back as tool_use + tool_result.
    ws.send(json!({"type":"send","text":"run echo e2e-tool-$((40+2))"}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    let tool_use = turn
        .iter()
        .find(|f| f["type"] == "tool_use")
        .expect("tool_use frame");
    assert_eq!(tool_use["name"], "Bash");
    assert_eq!(tool_use["input"]["command"], "echo e2e-tool-$((40+2))");
    let tool_result = turn
        .iter()
        .find(|f| f["type"] == "tool_result")
        .expect("tool_result frame");
    assert_eq!(tool_result["tool_use_id"], tool_use["tool_use_id"]);
    assert_eq!(tool_result["status"], "complete", "{tool_result}");
    // The shell really evaluated the arithmetic: the scripted model could not.
    assert!(
        tool_result["content"]
            .as_str()
            .unwrap()
            .contains("e2e-tool-42"),
        "{tool_result}"
    );
    assert!(tool_result["duration_ms"].is_u64());
    let result = turn.last().unwrap();
    assert!(
        close_to(result["cost_usd"].as_f64().unwrap(), 2.0 * COST_PER_CALL),
        "two API calls: {result}"
    );
    all.extend(turn);

    // Interrupt mid-stream stops the stream; the next message works.
    let slow =
        scripted(json!({"type":"text","text":"word ".repeat(80),"chunks":80,"chunk_delay_ms":100}));
    ws.send(json!({"type":"send","text": slow})).await.unwrap();
    let before = ws.until(|f| f["type"] == "delta").await.unwrap();
    ws.send(json!({"type":"interrupt"})).await.unwrap();
    let rest = ws.turn().await.unwrap();
    let result = rest.last().unwrap();
    assert_eq!(result["interrupted"], true, "{result}");
    let deltas = rest.iter().filter(|f| f["type"] == "delta").count();
    assert!(
        deltas < 60,
        "the stream stopped early ({deltas} more deltas)"
    );
    all.extend(before);
    all.extend(rest);
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"after the interrupt"}))}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    assert_eq!(text_of(&turn), "after the interrupt");
    assert_eq!(turn.last().unwrap()["is_error"], false);
    all.extend(turn);
    assert_contiguous(&seqs(&all));

    // A message sent while a turn is in flight is queued and answered next.
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"first","chunks":4,"chunk_delay_ms":150}))}))
        .await
        .unwrap();
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"second"})),"client_id":"q2"}))
        .await
        .unwrap();
    let t1 = ws.turn().await.unwrap();
    assert_eq!(text_of(&t1), "first");
    let t2 = ws.turn().await.unwrap();
    assert_eq!(t2[0]["client_id"], "q2");
    assert_eq!(text_of(&t2), "second");
    all.extend(t1);
    all.extend(t2);

    // Dropped mid-stream, reattached with after_seq: every missed frame exactly once.
    let long = "abcdefghij".repeat(6);
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":long,"chunks":30,"chunk_delay_ms":60}))}))
        .await
        .unwrap();
    let seen = ws.until(|f| f["type"] == "delta").await.unwrap();
    let mut seen = seen;
    seen.push(ws.next().await.unwrap());
    let last_seen = seen.last().unwrap()["seq"].as_u64().unwrap();
    ws.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let mut ws = csp
        .ws(&token, &format!("session={session}&after_seq={last_seen}"))
        .await
        .unwrap();
    let missed = ws.turn().await.unwrap();
    assert_eq!(
        missed[0]["seq"].as_u64().unwrap(),
        last_seen + 1,
        "replay starts right after after_seq"
    );
    let mut joined = seen.clone();
    joined.extend(missed.clone());
    assert_contiguous(&seqs(&joined));
    assert_eq!(text_of(&joined), long);
    all.extend(joined);
    assert_contiguous(&seqs(&all));

    // Reloading the page: the persisted history plus its watermark.
    let (status, history) = csp
        .get(&token, &format!("/api/v1/sessions/{session}/messages"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{history}");
    let last_seq = history["last_seq"].as_u64().unwrap();
    assert_eq!(last_seq, all.last().unwrap()["seq"].as_u64().unwrap());
    let msgs = history["messages"].as_array().unwrap();
    let users: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["type"] == "user_message")
        .collect();
    assert_eq!(users.len(), 7, "every user message is kept: {history}");
    assert!(text_of(msgs).contains(text), "assistant text is kept");
    assert!(msgs.iter().any(|m| m["type"] == "tool_result"));
    let (_, list) = csp.get(&token, "/api/v1/sessions").await.unwrap();
    assert!(
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == session.as_str())
    );

    // This metrics, from whichever process records them.
    let metrics = csp.scrape_all().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(value("csp_active_sessions") >= 1.0, "{metrics}");
    assert!(
        metrics.contains("# TYPE csp_prewarm_pool_depth gauge"),
        "{metrics}"
    );
    assert!(
        value("csp_session_init_duration_seconds_count") >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("csp_session_init_duration_seconds_bucket{start=\"prewarm\""),
        "{metrics}"
    );
    assert_eq!(
        value("csp_websocket_connections"),
        1.0,
        "one socket open now: {metrics}"
    );

    ws.close().await;
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_flow_dev() {
    chat_flow(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_flow_distributed() {
    chat_flow(Mode::Distributed).await;
}

/// An empty pool shows "preparing", then "ready" (cold start).
async fn cold_start(mode: Mode) {
    let csp = Csp::start(
        mode,
        Options {
            prewarm: 0,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    let first = ws.next().await.unwrap();
    assert_eq!(first["status"], "preparing", "{first}");
    // Typing during preparation is allowed: the message waits for the agent.
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"cold hello"}))}))
        .await
        .unwrap();
    let (_, frames) = ready(&mut ws).await;
    assert_eq!(frames.last().unwrap()["seq"], 2);
    let turn = ws.turn().await.unwrap();
    assert_eq!(text_of(&turn), "cold hello");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cold_start_dev() {
    cold_start(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cold_start_distributed() {
    cold_start(Mode::Distributed).await;
}

/// The CLI dies mid-turn: the user sees an error, the session is failed,
/// the platform keeps serving.
async fn agent_crash(mode: Mode) {
    let csp = Csp::start(mode, Options::default()).await.unwrap();
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    let (session, _) = ready(&mut ws).await;
    // The Bash tool's parent is the CLI: killing it crashes the agent mid-turn.
    ws.send(json!({"type":"send","text":"run kill -9 $PPID"}))
        .await
        .unwrap();
    let frames = ws
        .until(|f| f["type"] == "session" && f["status"] == "failed")
        .await
        .unwrap();
    let err = frames
        .iter()
        .find(|f| f["type"] == "error")
        .expect("an error frame");
    assert_eq!(err["code"], "agent_crashed", "{frames:?}");
    assert!(
        !err["message"].as_str().unwrap().contains("exit"),
        "no technical detail: {err}"
    );
    // A reload shows the session as failed, not ready.
    let (_, history) = csp
        .get(&token, &format!("/api/v1/sessions/{session}/messages"))
        .await
        .unwrap();
    let last = history["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["type"].as_str(), last["status"].as_str()),
        (Some("session"), Some("failed")),
        "{history}"
    );
    // Sending to the failed session resumes it in a new process (the
    // conversation is on disk) and answers.
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"back"}))}))
        .await
        .unwrap();
    let frames = ws.turn().await.unwrap();
    assert!(
        frames.iter().any(|f| f["type"] == "session"
            && f["status"] == "preparing"
            && f["reason"] == "resume"),
        "{frames:?}"
    );
    assert_eq!(text_of(&frames), "back");
    // A new session works.
    let mut ws2 = csp.ws(&token, "").await.unwrap();
    let (other, _) = ready(&mut ws2).await;
    assert_ne!(other, session);
    ws2.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"fine"}))}))
        .await
        .unwrap();
    assert_eq!(text_of(&ws2.turn().await.unwrap()), "fine");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_crash_dev() {
    agent_crash(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_crash_distributed() {
    agent_crash(Mode::Distributed).await;
}

/// A missing CLI stops the start with instructions, before anything listens.
#[tokio::test(flavor = "multi_thread")]
async fn missing_cli_is_a_startup_error_with_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(csp_e2e::csp_bin())
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("CLAUDE_CLI", dir.path().join("no-such-claude"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Claude Code CLI not found"), "{stderr}");
    assert!(stderr.contains("scripts/setup.sh"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

/// A model API failure mid-stream keeps the partial answer and says so.
#[tokio::test(flavor = "multi_thread")]
async fn mid_stream_api_error_keeps_partial_text() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    ready(&mut ws).await;
    let behaviour = json!({"type":"cut","after_deltas":2,"text":"partial answer that never ends","chunks":6,"chunk_delay_ms":300,
                           "nonstream":{"type":"http_error","status":529,"headers":{"x-should-retry":"false"}}});
    ws.send(json!({"type":"send","text": scripted(behaviour)}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    let err = turn
        .iter()
        .find(|f| f["type"] == "error")
        .expect("error frame");
    assert_eq!(err["message"], "Response interrupted. You can retry.");
    assert_eq!(turn.last().unwrap()["is_error"], true);
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"recovered"}))}))
        .await
        .unwrap();
    assert_eq!(text_of(&ws.turn().await.unwrap()), "recovered");
    csp.stop().await;
}
