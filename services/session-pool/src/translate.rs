//! Agent messages → session events. Pure: no I/O, so every mapping rule is
//! unit-tested on captured CLI output.

use csp_agent::{Message, System};
use csp_domain::{ErrorCode, Event, ToolStatus};
use std::collections::HashMap;
use std::time::Instant;

/// How a failed model API request counts: bounded labels of
/// `csp_query_error_total`, and whether it says the API is down (the
/// circuit breaker counts those; a rate limit or a bad key does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    RateLimited,
    Overloaded,
    ServerError,
    /// Cut connection or timeout: no HTTP status.
    Connection,
    Authentication,
    ClientError,
}

impl Failure {
    fn classify(status: Option<u16>, error: Option<&str>) -> Self {
        match (status, error) {
            (Some(429), _) | (_, Some("rate_limit")) => Failure::RateLimited,
            (Some(529), _) | (_, Some("overloaded")) => Failure::Overloaded,
            (Some(401 | 403), _) | (_, Some("authentication_failed")) => Failure::Authentication,
            (Some(s), _) if s >= 500 => Failure::ServerError,
            (Some(_), _) => Failure::ClientError,
            (None, _) => Failure::Connection,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::RateLimited => "rate_limited",
            Failure::Overloaded => "overloaded",
            Failure::ServerError => "server_error",
            Failure::Connection => "connection",
            Failure::Authentication => "authentication",
            Failure::ClientError => "client_error",
        }
    }

    /// The API is unavailable (not merely refusing this caller).
    pub(crate) fn is_outage(self) -> bool {
        matches!(
            self,
            Failure::Overloaded | Failure::ServerError | Failure::Connection
        )
    }

    /// The failed request this message reports, if any: each `api_retry`
    /// is one, and so is the last attempt of a turn that failed with
    /// `api_error` (it has no `api_retry` of its own).
    pub(crate) fn of(msg: &Message) -> Option<Self> {
        match msg {
            Message::System(System::ApiRetry(r)) => {
                Some(Self::classify(r.error_status, r.error.as_deref()))
            }
            Message::Result(r) if r.terminal_reason.as_deref() == Some("api_error") => {
                Some(Self::classify(r.api_error_status, None))
            }
            _ => None,
        }
    }
}

/// Per-session translation state: tool start times and the running cost.
#[derive(Debug, Default)]
pub(crate) struct Translator {
    tool_started: HashMap<String, Instant>,
    /// `total_cost_usd` of the previous turn's result: the CLI reports a
    /// cumulative figure, the user sees per-turn cost.
    last_total_cost: f64,
    /// Cost of the session before the current CLI session began (a fresh
    /// CLI session after a failed resume counts from zero again).
    base_cost: f64,
    interrupt_requested: bool,
    /// The interrupt was ours (stall, open circuit): the result carries
    /// this error instead of a silent "interrupted".
    stopped_with: Option<ErrorCode>,
    retry_notice_sent: bool,
    text_this_turn: bool,
    /// The last result's per-turn cost, until taken for the budget.
    last_turn_cost: f64,
}

impl Translator {
    /// A resumed CLI session: its cumulative cost continues from `total`.
    pub(crate) fn resumed(total: f64) -> Self {
        Self {
            last_total_cost: total,
            ..Self::default()
        }
    }

    /// A fresh CLI session under the same csp session: it counts from zero.
    pub(crate) fn fresh_process(&mut self) {
        self.base_cost += self.last_total_cost;
        self.last_total_cost = 0.0;
    }

    /// The per-turn cost of the last `result`, once (0 after).
    pub(crate) fn last_turn_cost(&mut self) -> f64 {
        std::mem::take(&mut self.last_turn_cost)
    }

    /// The user asked to stop the turn in flight.
    pub(crate) fn interrupt_requested(&mut self) {
        self.interrupt_requested = true;
    }

    /// csp stopped the turn; its result reports `code`.
    pub(crate) fn stopped(&mut self, code: ErrorCode) {
        self.stopped_with = Some(code);
    }

    /// A tool is running: the model is not expected to say anything.
    pub(crate) fn tool_running(&self) -> bool {
        !self.tool_started.is_empty()
    }

    /// Events for one agent message, in order. `now` is when it was read.
    pub(crate) fn translate(&mut self, msg: &Message, now: Instant) -> Vec<Event> {
        match msg {
            // Subagent streams are summarised by their tool card; only the
            // main thread's text streams to the user.
            Message::StreamEvent(se) if se.parent_tool_use_id.is_none() => {
                if let Some(t) = se.text_delta().filter(|t| !t.is_empty()) {
                    self.text_this_turn = true;
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
                let rate_limited = matches!(
                    Failure::classify(r.error_status, r.error.as_deref()),
                    Failure::RateLimited | Failure::Overloaded
                );
                if rate_limited && !self.retry_notice_sent {
                    self.retry_notice_sent = true;
                    vec![Event::notice(ErrorCode::RateLimited)]
                } else {
                    vec![]
                }
            }
            Message::Result(r) => {
                let stopped_with = self.stopped_with.take();
                let interrupted = self.interrupt_requested
                    || stopped_with.is_some()
                    || r.terminal_reason
                        .as_deref()
                        .is_some_and(|t| t.starts_with("aborted"));
                // The CLI's figure is cumulative across turns and resumes;
                // a decrease would mean a new process without history.
                let total = r.total_cost_usd.max(0.0);
                let cost = (total - self.last_total_cost).max(0.0);
                self.last_total_cost = total;
                self.last_turn_cost = cost;
                self.interrupt_requested = false;
                self.retry_notice_sent = false;
                self.tool_started.clear();
                let streamed = std::mem::take(&mut self.text_this_turn);
                let mut out = Vec::with_capacity(2);
                if let Some(code) = stopped_with {
                    out.push(Event::error(code));
                } else if r.is_error && !interrupted {
                    // Text already on screen was cut short; otherwise the
                    // API failed outright, after the CLI's retries.
                    out.push(Event::error(if streamed {
                        ErrorCode::ResponseInterrupted
                    } else {
                        ErrorCode::ModelApiFailed
                    }));
                }
                out.push(Event::Result {
                    cost_usd: round_usd(cost),
                    total_cost_usd: round_usd(self.base_cost + total),
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

    #[test]
    fn every_failure_class_is_a_query_error_type() {
        // A match without a wildcard: a new class fails to compile here.
        let all = |f: Failure| match f {
            Failure::RateLimited
            | Failure::Overloaded
            | Failure::ServerError
            | Failure::Connection
            | Failure::Authentication
            | Failure::ClientError => f.as_str(),
        };
        for f in [
            Failure::RateLimited,
            Failure::Overloaded,
            Failure::ServerError,
            Failure::Connection,
            Failure::Authentication,
            Failure::ClientError,
        ] {
            assert!(crate::metrics::QUERY_ERROR_TYPES.contains(&all(f)), "{f:?}");
        }
    }
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
        let delta = msg(
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}},"parent_tool_use_id":null}"#,
        );
        t.translate(&delta, Instant::now());
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
    fn api_error_without_text_is_a_model_api_failure_and_counts_as_outage() {
        let mut t = Translator::default();
        let r = msg(
            r#"{"type":"result","subtype":"success","is_error":true,"terminal_reason":"api_error","api_error_status":500,"total_cost_usd":0,"result":"API Error: 500"}"#,
        );
        assert_eq!(Failure::of(&r), Some(Failure::ServerError));
        assert!(Failure::ServerError.is_outage());
        let ev = t.translate(&r, Instant::now());
        assert_eq!(ev[0], Event::error(ErrorCode::ModelApiFailed));
    }

    #[test]
    fn failures_are_classified_from_retries() {
        let retry = |status: &str, error: &str| {
            msg(&format!(
                r#"{{"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,"retry_delay_ms":600,"error_status":{status},"error":"{error}"}}"#
            ))
        };
        let cases = [
            (retry("429", "rate_limit"), Failure::RateLimited, false),
            (retry("529", "overloaded"), Failure::Overloaded, true),
            (retry("500", "server_error"), Failure::ServerError, true),
            (retry("null", "unknown"), Failure::Connection, true),
            (
                retry("401", "authentication_failed"),
                Failure::Authentication,
                false,
            ),
        ];
        for (m, want, outage) in cases {
            assert_eq!(Failure::of(&m), Some(want));
            assert_eq!(want.is_outage(), outage);
        }
        let ok =
            msg(r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0}"#);
        assert_eq!(Failure::of(&ok), None);
    }

    #[test]
    fn a_turn_csp_stopped_reports_its_reason_once() {
        let mut t = Translator::default();
        t.stopped(ErrorCode::ModelStalled);
        let r = msg(
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"terminal_reason":"aborted_streaming","total_cost_usd":0.0001}"#,
        );
        let ev = t.translate(&r, Instant::now());
        assert_eq!(ev[0], Event::error(ErrorCode::ModelStalled));
        assert!(matches!(
            ev[1],
            Event::Result {
                interrupted: true,
                ..
            }
        ));
        let again = t.translate(&r, Instant::now());
        assert_eq!(again.len(), 1, "{again:?}");
    }

    #[test]
    fn a_fresh_cli_session_keeps_the_session_total_growing() {
        let mut t = Translator::resumed(0.5);
        t.fresh_process();
        let r =
            msg(r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.1}"#);
        let ev = t.translate(&r, Instant::now());
        assert!(
            matches!(ev[0], Event::Result { cost_usd, total_cost_usd, .. } if cost_usd == 0.1 && total_cost_usd == 0.6),
            "{ev:?}"
        );
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
