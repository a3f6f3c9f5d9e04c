//! Agent messages → session events. Pure: no I/O, so every mapping rule is
//! unit-tested on captured CLI output.

use csp_agent::{Message, System};
use csp_domain::{ErrorCode, Event, ToolStatus};
use std::collections::HashMap;
use std::time::Instant;

/// Per-session translation state: tool start times and the running cost.
#[derive(Debug, Default)]
pub(crate) struct Translator {
    tool_started: HashMap<String, Instant>,
    /// `total_cost_usd` of the previous turn's result: the CLI reports a
    /// cumulative figure, the user sees per-turn cost.
    last_total_cost: f64,
    interrupt_requested: bool,
    retry_notice_sent: bool,
}

impl Translator {
    /// The user asked to stop the turn in flight.
    pub(crate) fn interrupt_requested(&mut self) {
        self.interrupt_requested = true;
    }

    /// Events for one agent message, in order. `now` is when it was read.
    pub(crate) fn translate(&mut self, msg: &Message, now: Instant) -> Vec<Event> {
        match msg {
            // Subagent streams are summarised by their tool card; only the
            // main thread's text streams to the user.
            Message::StreamEvent(se) if se.parent_tool_use_id.is_none() => {
                if let Some(t) = se.text_delta().filter(|t| !t.is_empty()) {
                    vec![Event::Delta { text: t.to_owned() }]
                } else if let Some(t) = se.thinking_delta().filter(|t| !t.is_empty()) {
                    vec![Event::Thinking { text: t.to_owned() }]
                } else {
                    vec![]
                }
            }
            Message::Assistant(a) => a
                .tool_uses()
                .map(|t| {
                    self.tool_started.insert(t.id.to_owned(), now);
                    Event::ToolUse {
                        tool_use_id: t.id.to_owned(),
                        name: t.name.to_owned(),
                        input: t.input.clone(),
                    }
                })
                .collect(),
            Message::User(u) => u
                .tool_results()
                .map(|r| {
                    let duration_ms = self
                        .tool_started
                        .remove(r.tool_use_id)
                        .map(|s| now.saturating_duration_since(s).as_millis() as u64)
                        .unwrap_or(0);
                    Event::ToolResult {
                        tool_use_id: r.tool_use_id.to_owned(),
                        status: if r.is_error {
                            ToolStatus::Error
                        } else {
                            ToolStatus::Complete
                        },
                        duration_ms,
                        content: r.content.to_owned(),
                    }
                })
                .collect(),
            Message::System(System::ApiRetry(r)) => {
                let rate_limited = r.error_status == Some(429)
                    || r.error_status == Some(529)
                    || matches!(r.error.as_deref(), Some("rate_limit" | "overloaded"));
                if rate_limited && !self.retry_notice_sent {
                    self.retry_notice_sent = true;
                    vec![Event::Notice {
                        code: ErrorCode::RateLimited,
                        message: ErrorCode::RateLimited.user_message().to_owned(),
                    }]
                } else {
                    vec![]
                }
            }
            Message::Result(r) => {
                let interrupted = self.interrupt_requested
                    || r.terminal_reason
                        .as_deref()
                        .is_some_and(|t| t.starts_with("aborted"));
                // The CLI's figure is cumulative across turns and resumes;
                // a decrease would mean a new process without history.
                let total = r.total_cost_usd.max(0.0);
                let cost = (total - self.last_total_cost).max(0.0);
                self.last_total_cost = total;
                self.interrupt_requested = false;
                self.retry_notice_sent = false;
                self.tool_started.clear();
                let mut out = Vec::with_capacity(2);
                if r.is_error && !interrupted {
                    out.push(Event::error(ErrorCode::ResponseInterrupted));
                }
                out.push(Event::Result {
                    cost_usd: round_usd(cost),
                    total_cost_usd: round_usd(total),
                    is_error: r.is_error,
                    interrupted,
                    duration_ms: r.duration_ms,
                });
                out
            }
            _ => vec![],
        }
    }
}

/// Dollar figures to a micro-dollar: subtracting two cumulative floats
/// leaves noise in the 17th digit that users should never see.
fn round_usd(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(line: &str) -> Message {
        Message::parse(line).expect("a JSON object")
    }

    #[test]
    fn text_deltas_become_deltas_in_order() {
        let mut t = Translator::default();
        let now = Instant::now();
        let a = msg(
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}},"parent_tool_use_id":null}"#,
        );
        let b = msg(
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}},"parent_tool_use_id":null}"#,
        );
        assert_eq!(
            t.translate(&a, now),
            vec![Event::Delta { text: "Hel".into() }]
        );
        assert_eq!(
            t.translate(&b, now),
            vec![Event::Delta { text: "lo".into() }]
        );
        let start = msg(
            r#"{"type":"stream_event","event":{"type":"message_start","message":{}},"parent_tool_use_id":null}"#,
        );
        assert!(t.translate(&start, now).is_empty());
        let sub = msg(
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}},"parent_tool_use_id":"toolu_1"}"#,
        );
        assert!(t.translate(&sub, now).is_empty());
    }

    #[test]
    fn tool_use_then_result_carries_duration_and_status() {
        let mut t = Translator::default();
        let t0 = Instant::now();
        let use_line = msg(
            r#"{"type":"assistant","message":{"id":"m","content":[{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}}]},"parent_tool_use_id":null}"#,
        );
        assert_eq!(
            t.translate(&use_line, t0),
            vec![Event::ToolUse {
                tool_use_id: "toolu_1".into(),
                name: "Bash".into(),
                input: serde_json::json!({"command":"ls"}),
            }]
        );
        let result_line = msg(
            r#"{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_1","type":"tool_result","content":"Error: boom","is_error":true}]}}"#,
        );
        assert_eq!(
            t.translate(&result_line, t0 + Duration::from_millis(1500)),
            vec![Event::ToolResult {
                tool_use_id: "toolu_1".into(),
                status: ToolStatus::Error,
                duration_ms: 1500,
                content: "Error: boom".into(),
            }]
        );
    }

    #[test]
    fn result_reports_per_turn_cost_from_cumulative_totals() {
        let mut t = Translator::default();
        let now = Instant::now();
        let r1 = msg(
            r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.000276,"duration_ms":5}"#,
        );
        let r2 = msg(
            r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.000444,"duration_ms":6}"#,
        );
        let ev1 = t.translate(&r1, now);
        let ev2 = t.translate(&r2, now);
        assert!(matches!(ev1[0], Event::Result { cost_usd, .. } if cost_usd == 0.000276));
        assert!(
            matches!(ev2[0], Event::Result { cost_usd, total_cost_usd, .. } if cost_usd == 0.000168 && total_cost_usd == 0.000444)
        );
    }

    #[test]
    fn api_error_result_adds_the_interrupted_response_error() {
        let mut t = Translator::default();
        let r = msg(
            r#"{"type":"result","subtype":"success","is_error":true,"terminal_reason":"api_error","total_cost_usd":0,"result":"API Error: 529 Overloaded."}"#,
        );
        let ev = t.translate(&r, Instant::now());
        assert_eq!(ev[0], Event::error(ErrorCode::ResponseInterrupted));
        assert!(matches!(
            ev[1],
            Event::Result {
                is_error: true,
                interrupted: false,
                ..
            }
        ));
    }

    #[test]
    fn interrupted_turn_is_marked_without_an_error() {
        let mut t = Translator::default();
        t.interrupt_requested();
        let r = msg(
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"terminal_reason":"aborted_streaming","total_cost_usd":0.0001}"#,
        );
        let ev = t.translate(&r, Instant::now());
        assert_eq!(ev.len(), 1);
        assert!(matches!(
            ev[0],
            Event::Result {
                interrupted: true,
                ..
            }
        ));
    }

    #[test]
    fn rate_limit_retry_gives_one_notice_per_turn() {
        let mut t = Translator::default();
        let retry = msg(
            r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,"retry_delay_ms":600,"error_status":429,"error":"rate_limit"}"#,
        );
        let now = Instant::now();
        assert_eq!(t.translate(&retry, now).len(), 1);
        assert!(t.translate(&retry, now).is_empty());
        let server = msg(
            r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,"retry_delay_ms":600,"error_status":500,"error":"server_error"}"#,
        );
        let mut fresh = Translator::default();
        assert!(fresh.translate(&server, now).is_empty());
    }
}
