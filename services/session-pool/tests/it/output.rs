//! Issue 12: a tool that prints megabytes leaves the session usable and its
//! history readable; the platform's secrets never reach the bus or the store.

use super::*;

/// The events of the turn `text` starts.
async fn turn(p: &mut Pool, u: UserId, id: SessionId, text: &str) -> Vec<Event> {
    super::turn(p, u, id, text)
        .await
        .into_iter()
        .map(|e| e.event)
        .collect()
}

fn bash(command: &str) -> String {
    let behaviour = serde_json::json!({
        "type": "tool_use",
        "name": "Bash",
        "input": {"command": command, "description": "print"},
    });
    format!("MOCK{behaviour}MOCK")
}

fn tool_output(events: &[Event]) -> &str {
    events
        .iter()
        .find_map(|e| match e {
            Event::ToolResult { content, .. } => Some(content.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no tool_result in {events:?}"))
}

async fn history(p: &mut Pool, u: UserId, id: SessionId) -> pb::ListMessagesResponse {
    p.client
        .list_messages(req(
            u,
            pb::ListMessagesRequest {
                session_id: id.to_string(),
                user_id: u.to_string(),
            },
        ))
        .await
        .expect("the history loads")
        .into_inner()
}

/// A file of 2.4 MB in short lines: what the CLI's `Read` returns whole
/// with `allow_large` (a Bash output that large the CLI itself keeps in a
/// file and replaces by a preview).
fn big_file(dir: &std::path::Path) -> std::path::PathBuf {
    let lines: String = (0..24_000)
        .map(|i| format!("{i:06} {}\n", "d".repeat(92)))
        .collect();
    let path = dir.join("big.txt");
    std::fs::write(&path, lines).unwrap();
    path
}

fn read_all(path: &std::path::Path) -> String {
    let behaviour = serde_json::json!({
        "type": "tool_use",
        "name": "Read",
        "input": {"file_path": path, "allow_large": true, "limit": 24000},
    });
    format!("MOCK{behaviour}MOCK")
}

/// The full size a truncation marker names.
fn marked_total(out: &str) -> usize {
    let marker = out
        .rsplit_once("\n… [output truncated: ")
        .unwrap_or_else(|| {
            panic!(
                "no marker at the end of …{}",
                &out[out.len().saturating_sub(200)..]
            )
        })
        .1;
    let (_, rest) = marker.split_once(" (").unwrap();
    rest.split_once(" bytes), showing the first ")
        .unwrap()
        .0
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_megabyte_tool_output_is_cut_and_the_session_goes_on() {
    let mut p = start_with(0, 2, csp_mock_llm::Rules::default(), &["Read"], None).await;
    let ada = user(&p.store, "ada").await;
    let id: SessionId = acquire(&mut p.client, ada)
        .await
        .unwrap()
        .session_id
        .parse()
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    let events = turn(&mut p, ada, id, &read_all(&big_file(files.path()))).await;
    let out = tool_output(&events);
    assert!(out.starts_with("1\t000000 ddd"), "{}", &out[..100]);
    assert!(
        out.len() <= csp_session_pool::DEFAULT_TOOL_OUTPUT_MAX_BYTES + 200,
        "{} bytes sent",
        out.len()
    );
    assert!(marked_total(out) > 2_400_000, "{}", marked_total(out));
    assert!(out.ends_with(" KiB]"), "{}", &out[out.len() - 100..]);
    let frame = serde_json::to_string(
        &events
            .iter()
            .find(|e| matches!(e, Event::ToolResult { .. }))
            .unwrap(),
    )
    .unwrap();
    assert!(
        frame.len() < 257 * 1024 + 200,
        "frame of {} bytes",
        frame.len()
    );

    // The history loads and carries the same bounded output.
    let h = history(&mut p, ada, id).await;
    let stored = h
        .messages
        .iter()
        .find(|m| m.kind == "tool_result")
        .expect("the tool result is stored");
    let frame: serde_json::Value = serde_json::from_str(&stored.json).unwrap();
    assert_eq!(frame["content"].as_str().unwrap(), out);

    // And the next turn is answered.
    let next = turn(
        &mut p,
        ada,
        id,
        "MOCK{\"type\":\"text\",\"text\":\"still here\"}MOCK",
    )
    .await;
    let text: String = next
        .iter()
        .filter_map(|e| match e {
            Event::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "still here");
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_row_stored_earlier_loads_bounded() {
    use csp_store::SessionStore;
    let mut p = start(0, 2).await;
    let ada = user(&p.store, "ada").await;
    let id: SessionId = acquire(&mut p.client, ada)
        .await
        .unwrap()
        .session_id
        .parse()
        .unwrap();
    // What a session-pool without the bound stored: 4.7 MB in one row, and
    // twenty more megabytes after it.
    let big = |seq: u64, n: usize| csp_store::NewMessage {
        session_id: id,
        seq,
        kind: "tool_result".into(),
        body: serde_json::json!({"type": "tool_result", "tool_use_id": format!("t{seq}"),
            "status": "complete", "duration_ms": 3, "content": "a".repeat(n), "seq": seq}),
    };
    p.store.append_message(big(1000, 4_700_000)).await.unwrap();
    for seq in 1001..1021 {
        p.store.append_message(big(seq, 1_000_000)).await.unwrap();
    }
    let h = history(&mut p, ada, id).await;
    let first = h.messages.iter().find(|m| m.seq == 1000).expect("row 1000");
    assert!(
        first
            .json
            .contains("[output truncated: 4.5 MiB (4700000 bytes), showing the first"),
        "{}",
        &first.json[first.json.len() - 200..]
    );
    let size: usize = h.messages.iter().map(|m| m.json.len()).sum();
    assert!(size < 4 << 20, "the answer fits gRPC's 4 MiB: {size}");
    assert_eq!(h.messages.iter().filter(|m| m.seq >= 1000).count(), 21);
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jwt_secret_in_tool_output_is_stored_and_sent_redacted() {
    let mut p = start(0, 2).await;
    let ada = user(&p.store, "ada").await;
    let id: SessionId = acquire(&mut p.client, ada)
        .await
        .unwrap()
        .session_id
        .parse()
        .unwrap();
    let events = turn(&mut p, ada, id, &bash(&format!("echo token={JWT_SECRET}"))).await;
    let sent = serde_json::to_string(&events).unwrap();
    assert!(!sent.contains(JWT_SECRET), "{sent}");
    assert_eq!(tool_output(&events).trim(), "token=[REDACTED]");
    let input = events
        .iter()
        .find_map(|e| match e {
            Event::ToolUse { input, .. } => Some(input),
            _ => None,
        })
        .unwrap();
    assert_eq!(input["command"], "echo token=[REDACTED]");
    // The scripted model quotes the output back: its text is redacted too.
    assert!(sent.contains("token=[REDACTED]"), "{sent}");

    let h = history(&mut p, ada, id).await;
    let stored: String = h.messages.iter().map(|m| m.json.as_str()).collect();
    assert!(!stored.contains(JWT_SECRET), "{stored}");
    assert!(stored.contains("token=[REDACTED]"), "{stored}");
    p.stop.cancel();
}
