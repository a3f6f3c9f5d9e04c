//! Turning a [`Behaviour`] into bytes on the wire.
//!
//! A streamed answer is first built as the list of SSE events a healthy server would send;
//! faults are then edits of that list (truncate and cut, insert an `error` event or a pause,
//! drop events), so every fault sends exactly the healthy prefix before it misbehaves.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::behaviour::{Behaviour, HttpError, Reply, SseEvent, ToolUse, Usage};
use crate::request::Request;

/// How the server answers one call.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(String, String)>,
    /// Nothing at all, not even headers, is sent before this has passed.
    pub(crate) first_byte_delay: Duration,
    pub(crate) body: PlanBody,
}

#[derive(Debug)]
pub(crate) enum PlanBody {
    Full(Bytes),
    Steps { steps: Vec<Step>, event_lines: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Event(SseEvent, Value),
    Bytes(Bytes),
    Pause(Duration),
    /// Close the connection without finishing the body.
    Cut,
}

/// Ids that appear in one answer; passed in so the caller can log them.
pub(crate) struct Ids {
    pub(crate) request_id: String,
    pub(crate) message_id: String,
}

pub(crate) const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";
const JSON_CONTENT_TYPE: &str = "application/json";

impl Plan {
    pub(crate) fn new(behaviour: &Behaviour, request: &Request, ids: &Ids) -> Plan {
        if request.stream {
            Plan::streaming(behaviour, request, ids)
        } else {
            Plan::non_streaming(behaviour.for_nonstream(), request, ids)
        }
    }

    fn streaming(behaviour: &Behaviour, request: &Request, ids: &Ids) -> Plan {
        let sse = |steps: Vec<Step>| Plan::ok(SSE_CONTENT_TYPE, PlanBody::sse(steps));
        match behaviour {
            Behaviour::HttpError(e) => Plan::http_error(e, &ids.request_id),
            Behaviour::Text(reply) => sse(Message::text(reply, request, ids, 1).events()),
            Behaviour::ToolUse(t) => sse(Message::tool_use(t, request, ids).events()),
            Behaviour::SseError(b) => {
                let mut steps = Message::text(&b.reply, request, ids, b.after_deltas + 1).events();
                let at = fault_point(&steps, b.after_deltas);
                steps.truncate(at);
                let error_type = b.error_type.as_deref().unwrap_or("overloaded_error");
                let message = b
                    .message
                    .clone()
                    .unwrap_or_else(|| default_message(error_type).to_owned());
                steps.push(Step::Event(
                    SseEvent::Error,
                    json!({"type": "error", "error": {"type": error_type, "message": message}}),
                ));
                sse(steps)
            }
            Behaviour::Cut(b) => {
                let mut steps = Message::text(&b.reply, request, ids, b.after_deltas + 1).events();
                let at = fault_point(&steps, b.after_deltas);
                steps.truncate(at);
                steps.push(Step::Cut);
                sse(steps)
            }
            Behaviour::Stall(b) => {
                let mut steps = Message::text(&b.reply, request, ids, b.after_deltas + 1).events();
                let at = fault_point(&steps, b.after_deltas);
                steps.insert(at, Step::Pause(Duration::from_millis(b.stall_ms)));
                sse(steps)
            }
            Behaviour::Hang(b) => Plan {
                first_byte_delay: Duration::from_millis(b.first_byte_delay_ms),
                ..sse(Message::text(&b.reply, request, ids, 1).events())
            },
            Behaviour::BodyDelay(b) => {
                let mut steps = Message::text(&b.reply, request, ids, 1).events();
                steps.insert(0, Step::Pause(Duration::from_millis(b.delay_ms)));
                sse(steps)
            }
            Behaviour::Omit(b) => {
                let mut steps = Message::text(&b.reply, request, ids, 1).events();
                steps.retain(|s| !matches!(s, Step::Event(e, _) if b.events.contains(e)));
                sse(steps)
            }
            Behaviour::NoEventLines(reply) => Plan::ok(
                SSE_CONTENT_TYPE,
                PlanBody::Steps {
                    steps: Message::text(reply, request, ids, 1).events(),
                    event_lines: false,
                },
            ),
            Behaviour::ContentType(b) => Plan::ok(
                &b.value,
                PlanBody::sse(Message::text(&b.reply, request, ids, 1).events()),
            ),
        }
    }

    fn non_streaming(behaviour: &Behaviour, request: &Request, ids: &Ids) -> Plan {
        let json_body = |message: Message| {
            Bytes::from(serde_json::to_vec(&message.json()).expect("a JSON value serializes"))
        };
        let json =
            |message: Message| Plan::ok(JSON_CONTENT_TYPE, PlanBody::Full(json_body(message)));
        let text = |reply: &Reply| Message::text(reply, request, ids, 1);
        match behaviour {
            Behaviour::HttpError(e) => Plan::http_error(e, &ids.request_id),
            Behaviour::ToolUse(t) => json(Message::tool_use(t, request, ids)),
            Behaviour::Text(reply) | Behaviour::NoEventLines(reply) => json(text(reply)),
            Behaviour::Omit(b) => json(text(&b.reply)),
            Behaviour::ContentType(b) => json(text(&b.reply)),
            Behaviour::SseError(b) => Plan::http_error(
                &HttpError {
                    status: 529,
                    error_type: b.error_type.clone(),
                    message: b.message.clone(),
                    ..HttpError::default()
                },
                &ids.request_id,
            ),
            Behaviour::Cut(b) => {
                let body = json_body(text(&b.reply));
                let half = body.slice(..body.len() / 2);
                Plan::ok(
                    JSON_CONTENT_TYPE,
                    PlanBody::Steps {
                        steps: vec![Step::Bytes(half), Step::Cut],
                        event_lines: true,
                    },
                )
            }
            Behaviour::Stall(b) => Plan {
                first_byte_delay: Duration::from_millis(b.stall_ms),
                ..json(text(&b.reply))
            },
            Behaviour::Hang(b) => Plan {
                first_byte_delay: Duration::from_millis(b.first_byte_delay_ms),
                ..json(text(&b.reply))
            },
            Behaviour::BodyDelay(b) => Plan::ok(
                JSON_CONTENT_TYPE,
                PlanBody::Steps {
                    steps: vec![
                        Step::Pause(Duration::from_millis(b.delay_ms)),
                        Step::Bytes(json_body(text(&b.reply))),
                    ],
                    event_lines: true,
                },
            ),
        }
    }

    fn ok(content_type: &str, body: PlanBody) -> Plan {
        Plan {
            status: StatusCode::OK,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            first_byte_delay: Duration::ZERO,
            body,
        }
    }

    fn http_error(e: &HttpError, request_id: &str) -> Plan {
        let error_type = e
            .error_type
            .clone()
            .unwrap_or_else(|| error_type_for_status(e.status).to_owned());
        let body = e.body.clone().unwrap_or_else(|| {
            let message = e
                .message
                .clone()
                .unwrap_or_else(|| default_message(&error_type).to_owned());
            error_body(&error_type, &message, request_id)
        });
        let mut headers = vec![("content-type".to_owned(), JSON_CONTENT_TYPE.to_owned())];
        headers.extend(e.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        Plan {
            status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers,
            first_byte_delay: Duration::ZERO,
            body: PlanBody::Full(Bytes::from(body.to_string())),
        }
    }
}

impl PlanBody {
    fn sse(steps: Vec<Step>) -> PlanBody {
        PlanBody::Steps {
            steps,
            event_lines: true,
        }
    }
}

/// The Anthropic error body.
pub(crate) fn error_body(error_type: &str, message: &str, request_id: &str) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    })
}

pub(crate) fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn default_message(error_type: &str) -> &'static str {
    match error_type {
        "invalid_request_error" => "Invalid request",
        "authentication_error" => "invalid x-api-key",
        "billing_error" => "Billing error",
        "permission_error" => "Permission denied",
        "not_found_error" => "Not found",
        "request_too_large" => "Request too large",
        "rate_limit_error" => "Rate limited",
        "timeout_error" => "Request timed out",
        "overloaded_error" => "Overloaded",
        _ => "Internal server error",
    }
}

/// Renders one event as SSE text.
pub(crate) fn render_event(event: SseEvent, data: &Value, event_lines: bool) -> Bytes {
    let data = data.to_string();
    let text = if event_lines {
        format!("event: {}\ndata: {data}\n\n", event.as_str())
    } else {
        format!("data: {data}\n\n")
    };
    Bytes::from(text)
}

/// Where a fault that fires "after N deltas" goes: right after the Nth `content_block_delta`
/// (before the first one for N = 0, after the last one when there are fewer).
fn fault_point(steps: &[Step], after_deltas: usize) -> usize {
    let deltas: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Step::Event(SseEvent::ContentBlockDelta, _)))
        .map(|(i, _)| i)
        .collect();
    let Some(&last) = deltas.last() else {
        return steps
            .iter()
            .position(|s| matches!(s, Step::Event(SseEvent::ContentBlockStop, _)))
            .unwrap_or(steps.len());
    };
    match after_deltas {
        0 => deltas[0],
        n => deltas.get(n - 1).map_or(last + 1, |&i| i + 1),
    }
}

/// Splits `text` into at most `n` pieces of about the same number of characters, never inside
/// a UTF-8 character. Empty text gives no pieces.
pub(crate) fn split_chunks(text: &str, n: usize) -> Vec<String> {
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let chars = boundaries.len() - 1;
    let n = n.clamp(1, chars.max(1));
    (0..n)
        .map(|k| &text[boundaries[k * chars / n]..boundaries[(k + 1) * chars / n]])
        .filter(|piece| !piece.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The signature the mock attaches to thinking blocks (base64 of "signature").
const THINKING_SIGNATURE: &str = "c2lnbmF0dXJl";

struct Message {
    id: String,
    model: String,
    blocks: Vec<Block>,
    stop_reason: &'static str,
    usage: Usage,
    chunk_delay: Duration,
}

enum Block {
    Thinking(String),
    Text(Vec<String>),
    ToolUse {
        id: String,
        name: String,
        input: Value,
        json_chunks: Vec<String>,
    },
}

impl Message {
    fn base(reply: &Reply, request: &Request, ids: &Ids, stop_reason: &'static str) -> Message {
        Message {
            id: ids.message_id.clone(),
            model: reply.model.clone().unwrap_or_else(|| request.model.clone()),
            blocks: reply
                .thinking
                .iter()
                .map(|t| Block::Thinking(t.clone()))
                .collect(),
            stop_reason,
            usage: reply.usage,
            chunk_delay: Duration::from_millis(reply.chunk_delay_ms),
        }
    }

    fn text(reply: &Reply, request: &Request, ids: &Ids, default_chunks: usize) -> Message {
        let mut message = Message::base(reply, request, ids, "end_turn");
        let text = reply.text.as_deref().unwrap_or(Reply::DEFAULT_TEXT);
        message.blocks.push(Block::Text(split_chunks(
            text,
            reply.chunks.unwrap_or(default_chunks),
        )));
        message
    }

    fn tool_use(tool: &ToolUse, request: &Request, ids: &Ids) -> Message {
        let mut message = Message::base(&tool.reply, request, ids, "tool_use");
        let chunks = tool.reply.chunks.unwrap_or(3);
        if let Some(preface) = &tool.reply.text {
            message
                .blocks
                .push(Block::Text(split_chunks(preface, chunks)));
        }
        let id = tool.id.clone().unwrap_or_else(|| {
            format!(
                "toolu_mock_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..20]
            )
        });
        message.blocks.push(Block::ToolUse {
            id,
            name: tool.name.clone(),
            json_chunks: split_chunks(&tool.input.to_string(), chunks),
            input: tool.input.clone(),
        });
        message
    }

    fn usage_json(&self) -> Value {
        json!({
            "input_tokens": self.usage.input_tokens,
            "cache_creation_input_tokens": self.usage.cache_creation_input_tokens,
            "cache_read_input_tokens": self.usage.cache_read_input_tokens,
            "output_tokens": self.usage.output_tokens,
            "service_tier": "standard",
        })
    }

    /// The non-streaming message.
    fn json(&self) -> Value {
        let content: Vec<Value> = self
            .blocks
            .iter()
            .map(|block| match block {
                Block::Thinking(t) => {
                    json!({"type": "thinking", "thinking": t, "signature": THINKING_SIGNATURE})
                }
                Block::Text(chunks) => json!({"type": "text", "text": chunks.concat()}),
                Block::ToolUse {
                    id, name, input, ..
                } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": input})
                }
            })
            .collect();
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason,
            "stop_sequence": null,
            "usage": self.usage_json(),
        })
    }

    /// The SSE events of a healthy stream, with pauses between deltas.
    fn events(&self) -> Vec<Step> {
        let mut start_usage = self.usage_json();
        // Like the real API: input is known up front, output is reported by message_delta.
        start_usage["output_tokens"] = json!(1);
        let mut steps = vec![
            Step::Event(
                SseEvent::MessageStart,
                json!({"type": "message_start", "message": {
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage,
                }}),
            ),
            Step::Event(SseEvent::Ping, json!({"type": "ping"})),
        ];
        let mut deltas_sent = 0usize;
        let mut push_delta = |steps: &mut Vec<Step>, index: usize, delta: Value| {
            if deltas_sent > 0 && !self.chunk_delay.is_zero() {
                steps.push(Step::Pause(self.chunk_delay));
            }
            deltas_sent += 1;
            steps.push(Step::Event(
                SseEvent::ContentBlockDelta,
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        };
        for (index, block) in self.blocks.iter().enumerate() {
            let start = match block {
                Block::Thinking(_) => json!({"type": "thinking", "thinking": "", "signature": ""}),
                Block::Text(_) => json!({"type": "text", "text": ""}),
                Block::ToolUse { id, name, .. } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}})
                }
            };
            steps.push(Step::Event(
                SseEvent::ContentBlockStart,
                json!({"type": "content_block_start", "index": index, "content_block": start}),
            ));
            match block {
                Block::Thinking(t) => {
                    push_delta(
                        &mut steps,
                        index,
                        json!({"type": "thinking_delta", "thinking": t}),
                    );
                    push_delta(
                        &mut steps,
                        index,
                        json!({"type": "signature_delta", "signature": THINKING_SIGNATURE}),
                    );
                }
                Block::Text(chunks) => {
                    for chunk in chunks {
                        push_delta(
                            &mut steps,
                            index,
                            json!({"type": "text_delta", "text": chunk}),
                        );
                    }
                }
                Block::ToolUse { json_chunks, .. } => {
                    for chunk in json_chunks {
                        push_delta(
                            &mut steps,
                            index,
                            json!({"type": "input_json_delta", "partial_json": chunk}),
                        );
                    }
                }
            }
            steps.push(Step::Event(
                SseEvent::ContentBlockStop,
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
        steps.push(Step::Event(
            SseEvent::MessageDelta,
            json!({"type": "message_delta",
                   "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                   "usage": {"output_tokens": self.usage.output_tokens}}),
        ));
        steps.push(Step::Event(
            SseEvent::MessageStop,
            json!({"type": "message_stop"}),
        ));
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stream: bool) -> Request {
        Request {
            model: "claude-sonnet-4-5".into(),
            stream,
            is_title: false,
            last_user_text: None,
            tool_result: None,
            is_enhancement: false,
        }
    }

    fn ids() -> Ids {
        Ids {
            request_id: "req_mock_1".into(),
            message_id: "msg_mock_1".into(),
        }
    }

    fn event_names(plan: &Plan) -> Vec<&'static str> {
        let PlanBody::Steps { steps, .. } = &plan.body else {
            panic!("expected a stream");
        };
        steps
            .iter()
            .map(|s| match s {
                Step::Event(e, _) => e.as_str(),
                Step::Bytes(_) => "bytes",
                Step::Pause(_) => "pause",
                Step::Cut => "cut",
            })
            .collect()
    }

    #[test]
    fn split_chunks_keeps_characters_whole_and_text_intact() {
        let text = "héllo wörld ✓ ok";
        for n in 1..30 {
            let chunks = split_chunks(text, n);
            assert_eq!(chunks.concat(), text);
            assert_eq!(chunks.len(), n.min(text.chars().count()));
        }
        assert_eq!(split_chunks("abcdef", 3), ["ab", "cd", "ef"]);
        assert!(split_chunks("", 3).is_empty());
    }

    #[test]
    fn healthy_stream_has_the_api_event_order() {
        let b = Behaviour::Text(Reply {
            text: Some("abcd".into()),
            chunks: Some(2),
            chunk_delay_ms: 10,
            thinking: Some("hmm".into()),
            ..Reply::default()
        });
        let plan = Plan::new(&b, &request(true), &ids());
        assert_eq!(
            event_names(&plan),
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "pause",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "pause",
                "content_block_delta",
                "pause",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
    }

    #[test]
    fn faults_edit_the_healthy_stream_after_n_deltas() {
        let cut: Behaviour =
            serde_json::from_value(json!({"type":"cut","after_deltas":2})).unwrap();
        assert_eq!(
            event_names(&Plan::new(&cut, &request(true), &ids())),
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "cut"
            ]
        );
        let sse: Behaviour =
            serde_json::from_value(json!({"type":"sse_error","after_deltas":0})).unwrap();
        assert_eq!(
            event_names(&Plan::new(&sse, &request(true), &ids())),
            ["message_start", "ping", "content_block_start", "error"]
        );
        let stall: Behaviour = serde_json::from_value(
            json!({"type":"stall","after_deltas":5,"chunks":2,"stall_ms":7}),
        )
        .unwrap();
        let names = event_names(&Plan::new(&stall, &request(true), &ids()));
        assert_eq!(
            names[3..7],
            [
                "content_block_delta",
                "content_block_delta",
                "pause",
                "content_block_stop"
            ]
        );
    }

    #[test]
    fn non_streaming_faults_fail_in_the_matching_way() {
        let sse: Behaviour = serde_json::from_value(json!({"type":"sse_error"})).unwrap();
        let plan = Plan::new(&sse, &request(false), &ids());
        assert_eq!(plan.status, StatusCode::from_u16(529).unwrap());
        let cut: Behaviour = serde_json::from_value(json!({"type":"cut"})).unwrap();
        assert_eq!(
            event_names(&Plan::new(&cut, &request(false), &ids())),
            ["bytes", "cut"]
        );
        let rescued: Behaviour =
            serde_json::from_value(json!({"type":"cut","nonstream":{"type":"text","text":"ok"}}))
                .unwrap();
        let PlanBody::Full(body) = Plan::new(&rescued, &request(false), &ids()).body else {
            panic!("expected a full body");
        };
        let message: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(message["content"][0]["text"], "ok");
        assert_eq!(message["model"], "claude-sonnet-4-5");
        assert_eq!(message["usage"]["output_tokens"], 50);
    }
}
