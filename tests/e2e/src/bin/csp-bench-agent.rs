//! `csp-bench-agent`: a stand-in for the Claude Code CLI, for `csp-bench`
//! only. It is not a product component and never runs in a deployment.
//!
//! Why it exists: every csp session holds one agent process, and the real
//! CLI costs about 180 MB RSS and 0.4 s of CPU to start, so the 200+
//! sessions of `csp-bench ready` do not fit on a small machine, and the
//! CLI's own (Node.js) latency would hide csp's. This program speaks just
//! enough of the CLI's stream-json protocol (see
//! `/work/shared/agent-protocol.md` §2, §3) for csp to drive it, in a few
//! megabytes and a millisecond of start-up, so what the benchmarks measure
//! is csp's own overhead.
//!
//! Protocol subset: NDJSON on stdin/stdout. `initialize` and `interrupt`
//! control requests get a `control_response` success, any other control
//! request an error. A `user` message runs one turn: `stream_event` text
//! deltas, one `assistant` line with the whole text, the closing stream
//! events and a `result`. Stdin EOF ends the process once the turn in
//! flight (and any queued message) is done, like the CLI.
//!
//! Turn script: a user message containing `bench` reads `deltas=N`
//! (default 1), `gap_us=G` (default 0) and `cost_usd=C` (default 0: the
//! turn's cost, added to the process's cumulative `total_cost_usd` as the
//! CLI reports it) from its words; anything else is
//! answered with one delta. Every delta's text is `t=<unix µs>;`, the wall
//! clock taken right before its line is written and flushed, so the
//! benchmark client can compute stdout → WebSocket latency on the same
//! clock.

use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Shared by the stdin reader (control replies) and the turn runner.
struct Out {
    stdout: Mutex<std::io::Stdout>,
    session_id: String,
    uuids: AtomicU64,
}

impl Out {
    /// Writes and flushes one line; `stamp` builds it from the wall clock
    /// read after the lock is held, so the time is the moment of writing.
    fn line_stamped(&self, stamp: impl FnOnce(u128) -> Value) {
        let mut stdout = self.stdout.lock().unwrap_or_else(|p| p.into_inner());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let mut bytes = stamp(now).to_string().into_bytes();
        bytes.push(b'\n');
        // csp closed the pipe: nothing left to say to anyone.
        if stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            std::process::exit(0);
        }
    }

    fn line(&self, value: Value) {
        self.line_stamped(|_| value);
    }

    /// Distinct per line, like the CLI's `uuid` fields, without the cost of
    /// randomness in the timed path.
    fn uuid(&self) -> String {
        let n = self.uuids.fetch_add(1, Ordering::Relaxed);
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    fn stream_event(&self, event: Value) {
        self.line(json!({
            "type": "stream_event",
            "event": event,
            "session_id": self.session_id,
            "parent_tool_use_id": null,
            "uuid": self.uuid(),
        }));
    }

    fn control_response(&self, request_id: &str, response: Value) {
        self.line(json!({
            "type": "control_response",
            "response": {"subtype": "success", "request_id": request_id, "response": response},
        }));
    }

    fn control_error(&self, request_id: &str, error: &str) {
        self.line(json!({
            "type": "control_response",
            "response": {
                "subtype": "error",
                "request_id": request_id,
                "error": error,
                "error_code": "unsupported_request",
            },
        }));
    }
}

struct Script {
    deltas: usize,
    gap: Duration,
    cost_usd: f64,
}

impl Script {
    fn parse(text: &str) -> Script {
        let mut script = Script {
            deltas: 1,
            gap: Duration::ZERO,
            cost_usd: 0.0,
        };
        if !text.split_whitespace().any(|w| w == "bench") {
            return script;
        }
        for word in text.split_whitespace() {
            match word.split_once('=') {
                Some(("deltas", n)) => script.deltas = n.parse().unwrap_or(1),
                Some(("gap_us", g)) => script.gap = Duration::from_micros(g.parse().unwrap_or(0)),
                Some(("cost_usd", c)) => script.cost_usd = c.parse().unwrap_or(0.0),
                _ => {}
            }
        }
        script
    }
}

fn user_text(line: &Value) -> String {
    match &line["message"]["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// One turn, shaped like the CLI's (§3 of the protocol notes).
fn run_turn(out: &Out, script: &Script, interrupted: &AtomicBool, total_cost_usd: &mut f64) {
    let started = Instant::now();
    interrupted.store(false, Ordering::SeqCst);
    out.line(json!({"type": "system", "subtype": "init", "session_id": out.session_id, "model": "csp-bench-agent", "tools": [], "mcp_servers": [], "uuid": out.uuid()}));
    out.stream_event(json!({"type": "message_start", "message": {"id": "msg_bench", "type": "message", "role": "assistant", "model": "csp-bench-agent", "content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}}));
    out.stream_event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
    let mut text = String::new();
    for i in 0..script.deltas {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        if i > 0 && !script.gap.is_zero() {
            std::thread::sleep(script.gap);
        }
        let uuid = out.uuid();
        out.line_stamped(|now| {
            let piece = format!("t={now};");
            text.push_str(&piece);
            json!({
                "type": "stream_event",
                "event": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                "session_id": out.session_id,
                "parent_tool_use_id": null,
                "uuid": uuid,
            })
        });
    }
    let aborted = interrupted.load(Ordering::SeqCst);
    let mut assistant = json!({
        "type": "assistant",
        "message": {"id": "msg_bench", "type": "message", "role": "assistant", "model": "csp-bench-agent", "content": [{"type": "text", "text": text}], "stop_reason": null},
        "parent_tool_use_id": null,
        "session_id": out.session_id,
        "uuid": out.uuid(),
    });
    if aborted {
        assistant["aborted"] = json!(true);
    }
    out.line(assistant);
    out.stream_event(json!({"type": "content_block_stop", "index": 0}));
    out.stream_event(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": script.deltas}}));
    out.stream_event(json!({"type": "message_stop"}));
    let duration_ms = started.elapsed().as_millis() as u64;
    *total_cost_usd += script.cost_usd;
    let (subtype, terminal_reason) = if aborted {
        ("error_during_execution", "aborted_streaming")
    } else {
        ("success", "completed")
    };
    out.line(json!({
        "type": "result",
        "subtype": subtype,
        "is_error": aborted,
        "terminal_reason": terminal_reason,
        "duration_ms": duration_ms,
        "duration_api_ms": duration_ms,
        "num_turns": 1,
        "result": if aborted { Value::Null } else { json!(text) },
        "session_id": out.session_id,
        "total_cost_usd": *total_cost_usd,
        "usage": {"input_tokens": 1, "output_tokens": script.deltas},
        "uuid": out.uuid(),
    }));
}

fn main() {
    let session_id = std::env::args()
        .find_map(|a| a.strip_prefix("--session-id=").map(str::to_owned))
        .unwrap_or_else(|| "00000000-0000-4000-8000-000000000000".to_owned());
    let out = Arc::new(Out {
        stdout: Mutex::new(std::io::stdout()),
        session_id,
        uuids: AtomicU64::new(1),
    });
    let interrupted = Arc::new(AtomicBool::new(false));
    let (turns_tx, turns_rx) = mpsc::channel::<String>();

    // The reader answers control requests at once, even mid-turn: csp
    // waits for the interrupt ack while the turn is still streaming.
    let reader = {
        let out = out.clone();
        let interrupted = interrupted.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    // The real CLI exits on a malformed stdin line.
                    eprintln!("csp-bench-agent: malformed stdin line");
                    std::process::exit(1);
                };
                match value["type"].as_str() {
                    Some("control_request") => {
                        let id = value["request_id"].as_str().unwrap_or_default();
                        match value["request"]["subtype"].as_str() {
                            Some("initialize") => out.control_response(
                                id,
                                json!({"commands": [], "agents": [], "models": [], "pid": std::process::id(), "claude_code_version": "csp-bench-agent"}),
                            ),
                            Some("interrupt") => {
                                interrupted.store(true, Ordering::SeqCst);
                                out.control_response(id, json!({"still_queued": []}));
                            }
                            other => out.control_error(
                                id,
                                &format!(
                                    "Unsupported control request subtype: {}",
                                    other.unwrap_or("")
                                ),
                            ),
                        }
                    }
                    Some("user") => {
                        let text = user_text(&value);
                        // The turn runner is gone only if it panicked.
                        if turns_tx.send(text).is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        })
    };

    let mut total_cost_usd = 0.0;
    for text in turns_rx {
        run_turn(
            &out,
            &Script::parse(&text),
            &interrupted,
            &mut total_cost_usd,
        );
    }
    let _ = reader.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_need_the_bench_word() {
        let s = Script::parse("bench deltas=250 gap_us=2000");
        assert_eq!((s.deltas, s.gap), (250, Duration::from_micros(2000)));
        let s = Script::parse("deltas=250 gap_us=2000");
        assert_eq!((s.deltas, s.gap), (1, Duration::ZERO));
        let s = Script::parse("bench deltas=10 cost_usd=0.05");
        assert_eq!((s.deltas, s.cost_usd), (10, 0.05));
    }
}
