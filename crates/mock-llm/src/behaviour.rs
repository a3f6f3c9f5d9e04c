//! What the mock answers to one `POST /v1/messages` call.
//!
//! The JSON form is flat (`{"type":"cut","after_deltas":2,"text":"..."}`) because it is typed by
//! hand into queues, directives and rules files; the Rust form is one struct per behaviour. The
//! two meet in `Spec`, which also rejects fields that do not apply to the chosen `type`, so a
//! typo such as `chunk_delay` fails loudly instead of silently using a default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One scripted answer. Serialized as a JSON object tagged by `type`; every other field is
/// optional. See `docs/mock-llm.md` for the JSON form of each variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Spec", into = "Spec")]
pub enum Behaviour {
    /// A normal text answer (`stop_reason: end_turn`).
    Text(Reply),
    /// A tool call (`stop_reason: tool_use`), optionally after a text preface.
    ToolUse(ToolUse),
    /// An HTTP error status with an Anthropic error body.
    HttpError(HttpError),
    /// `event: error` in the middle of an otherwise normal stream.
    SseError(SseError),
    /// The TCP connection is closed mid-stream, without `message_stop`.
    Cut(Cut),
    /// No response headers for a while, then a normal answer.
    Hang(Hang),
    /// Headers at once, the body held back for a while, then a normal answer.
    BodyDelay(BodyDelay),
    /// Silence after some deltas, then the rest of a normal answer.
    Stall(Stall),
    /// A normal answer with some SSE events left out.
    Omit(Omit),
    /// A normal answer whose SSE events have only `data:` lines.
    NoEventLines(Reply),
    /// A normal SSE answer sent with another `content-type`.
    ContentType(ContentType),
}

/// Token counts reported for one call. The CLI prices a call from these numbers and the model
/// it requested, so fixed defaults make `total_cost_usd` exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl Default for Usage {
    fn default() -> Self {
        Usage {
            input_tokens: 100,
            output_tokens: 50,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
        }
    }
}

/// The options of a successful message, shared by every behaviour that ends in one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// The answer text; [`Reply::DEFAULT_TEXT`] when unset. For a tool call, the preface.
    pub text: Option<String>,
    /// How many `content_block_delta` events the text is split into (default 1, or one more
    /// than `after_deltas` for the faults that count deltas).
    pub chunks: Option<usize>,
    /// Pause between two deltas.
    pub chunk_delay_ms: u64,
    /// A thinking block sent before the text.
    pub thinking: Option<String>,
    pub usage: Usage,
    /// The `model` reported back; the requested model when unset.
    pub model: Option<String>,
    /// Used instead of this behaviour when the request has `stream: false`.
    pub nonstream: Option<Box<Behaviour>>,
}

impl Reply {
    pub const DEFAULT_TEXT: &'static str = "This is a scripted reply from the mock model.";

    pub fn with_text(text: impl Into<String>) -> Reply {
        Reply {
            text: Some(text.into()),
            ..Reply::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    /// Any tool name, including MCP names such as `mcp__calc__add`.
    pub name: String,
    pub input: Value,
    /// The `toolu_...` id; generated when unset.
    pub id: Option<String>,
    /// `text` is an optional preface block; `chunks` splits the input JSON (default 3).
    pub reply: Reply,
}

impl Default for ToolUse {
    fn default() -> Self {
        ToolUse {
            name: "Bash".to_owned(),
            input: Value::Object(Default::default()),
            id: None,
            reply: Reply::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpError {
    pub status: u16,
    /// Follows the status when unset (529 `overloaded_error`, 500 `api_error`, ...).
    pub error_type: Option<String>,
    pub message: Option<String>,
    /// Extra response headers, e.g. `retry-after` or `x-should-retry`.
    pub headers: BTreeMap<String, String>,
    /// Replaces the whole error body.
    pub body: Option<Value>,
    pub nonstream: Option<Box<Behaviour>>,
}

impl Default for HttpError {
    fn default() -> Self {
        HttpError {
            status: 529,
            error_type: None,
            message: None,
            headers: BTreeMap::new(),
            body: None,
            nonstream: None,
        }
    }
}

/// Non-streaming requests get HTTP 529 instead, unless `reply.nonstream` says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct SseError {
    pub after_deltas: usize,
    /// Default `overloaded_error`.
    pub error_type: Option<String>,
    pub message: Option<String>,
    pub reply: Reply,
}

impl Default for SseError {
    fn default() -> Self {
        SseError {
            after_deltas: 1,
            error_type: None,
            message: None,
            reply: Reply::default(),
        }
    }
}

/// Non-streaming requests get half a JSON body, then the cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    pub after_deltas: usize,
    pub reply: Reply,
}

impl Default for Cut {
    fn default() -> Self {
        Cut {
            after_deltas: 1,
            reply: Reply::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hang {
    pub first_byte_delay_ms: u64,
    pub reply: Reply,
}

impl Default for Hang {
    fn default() -> Self {
        Hang {
            first_byte_delay_ms: 30_000,
            reply: Reply::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BodyDelay {
    pub delay_ms: u64,
    pub reply: Reply,
}

impl Default for BodyDelay {
    fn default() -> Self {
        BodyDelay {
            delay_ms: 30_000,
            reply: Reply::default(),
        }
    }
}

/// Non-streaming requests wait `stall_ms` before their answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    pub after_deltas: usize,
    pub stall_ms: u64,
    pub reply: Reply,
}

impl Default for Stall {
    fn default() -> Self {
        Stall {
            after_deltas: 1,
            stall_ms: 30_000,
            reply: Reply::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Omit {
    pub events: Vec<SseEvent>,
    pub reply: Reply,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContentType {
    pub value: String,
    pub reply: Reply,
}

impl Default for ContentType {
    fn default() -> Self {
        ContentType {
            value: "application/json".to_owned(),
            reply: Reply::default(),
        }
    }
}

/// The SSE event names of a Messages API stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SseEvent {
    MessageStart,
    Ping,
    ContentBlockStart,
    ContentBlockDelta,
    ContentBlockStop,
    MessageDelta,
    MessageStop,
    Error,
}

impl SseEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SseEvent::MessageStart => "message_start",
            SseEvent::Ping => "ping",
            SseEvent::ContentBlockStart => "content_block_start",
            SseEvent::ContentBlockDelta => "content_block_delta",
            SseEvent::ContentBlockStop => "content_block_stop",
            SseEvent::MessageDelta => "message_delta",
            SseEvent::MessageStop => "message_stop",
            SseEvent::Error => "error",
        }
    }
}

impl Behaviour {
    /// A one-chunk text answer.
    pub fn text(text: impl Into<String>) -> Behaviour {
        Behaviour::Text(Reply::with_text(text))
    }

    /// A tool call with the given input and no preface.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Behaviour {
        Behaviour::ToolUse(ToolUse {
            name: name.into(),
            input,
            ..ToolUse::default()
        })
    }

    /// An HTTP error with the status's default error type and message.
    pub fn http_error(status: u16) -> Behaviour {
        Behaviour::HttpError(HttpError {
            status,
            ..HttpError::default()
        })
    }

    /// The behaviour to use for a `stream: false` request.
    pub(crate) fn for_nonstream(&self) -> &Behaviour {
        let nonstream = match self {
            Behaviour::HttpError(e) => e.nonstream.as_deref(),
            other => other.reply().and_then(|r| r.nonstream.as_deref()),
        };
        nonstream.unwrap_or(self)
    }

    /// The message options, for every behaviour that ends in a message.
    pub(crate) fn reply(&self) -> Option<&Reply> {
        match self {
            Behaviour::Text(r) | Behaviour::NoEventLines(r) => Some(r),
            Behaviour::ToolUse(t) => Some(&t.reply),
            Behaviour::HttpError(_) => None,
            Behaviour::SseError(b) => Some(&b.reply),
            Behaviour::Cut(b) => Some(&b.reply),
            Behaviour::Hang(b) => Some(&b.reply),
            Behaviour::BodyDelay(b) => Some(&b.reply),
            Behaviour::Stall(b) => Some(&b.reply),
            Behaviour::Omit(b) => Some(&b.reply),
            Behaviour::ContentType(b) => Some(&b.reply),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Text,
    ToolUse,
    HttpError,
    SseError,
    Cut,
    Hang,
    BodyDelay,
    Stall,
    Omit,
    NoEventLines,
    ContentType,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::ToolUse => "tool_use",
            Kind::HttpError => "http_error",
            Kind::SseError => "sse_error",
            Kind::Cut => "cut",
            Kind::Hang => "hang",
            Kind::BodyDelay => "body_delay",
            Kind::Stall => "stall",
            Kind::Omit => "omit",
            Kind::NoEventLines => "no_event_lines",
            Kind::ContentType => "content_type",
        }
    }

    /// The fields a behaviour of this kind accepts besides the message options.
    fn own_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Text | Kind::NoEventLines => &[],
            Kind::ToolUse => &["name", "input", "id"],
            Kind::HttpError => &[],
            Kind::SseError => &["after_deltas", "error_type", "message"],
            Kind::Cut => &["after_deltas"],
            Kind::Hang => &["first_byte_delay_ms"],
            Kind::BodyDelay => &["delay_ms"],
            Kind::Stall => &["after_deltas", "stall_ms"],
            Kind::Omit => &["events"],
            Kind::ContentType => &["value"],
        }
    }

    fn allows(self, field: &str) -> bool {
        const REPLY: &[&str] = &[
            "text",
            "chunks",
            "chunk_delay_ms",
            "thinking",
            "usage",
            "model",
            "nonstream",
        ];
        const HTTP_ERROR: &[&str] = &[
            "status",
            "error_type",
            "message",
            "headers",
            "body",
            "nonstream",
        ];
        let common = if self == Kind::HttpError {
            HTTP_ERROR
        } else {
            REPLY
        };
        common.contains(&field) || self.own_fields().contains(&field)
    }
}

/// The flat JSON form of a [`Behaviour`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunks: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunk_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonstream: Option<Box<Behaviour>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_deltas: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_byte_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stall_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    events: Option<Vec<SseEvent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

impl Spec {
    fn empty(kind: Kind) -> Spec {
        Spec {
            kind,
            text: None,
            chunks: None,
            chunk_delay_ms: None,
            thinking: None,
            usage: None,
            model: None,
            nonstream: None,
            name: None,
            input: None,
            id: None,
            status: None,
            error_type: None,
            message: None,
            headers: None,
            body: None,
            after_deltas: None,
            first_byte_delay_ms: None,
            delay_ms: None,
            stall_ms: None,
            events: None,
            value: None,
        }
    }

    fn present_fields(&self) -> Vec<&'static str> {
        let set = [
            ("text", self.text.is_some()),
            ("chunks", self.chunks.is_some()),
            ("chunk_delay_ms", self.chunk_delay_ms.is_some()),
            ("thinking", self.thinking.is_some()),
            ("usage", self.usage.is_some()),
            ("model", self.model.is_some()),
            ("nonstream", self.nonstream.is_some()),
            ("name", self.name.is_some()),
            ("input", self.input.is_some()),
            ("id", self.id.is_some()),
            ("status", self.status.is_some()),
            ("error_type", self.error_type.is_some()),
            ("message", self.message.is_some()),
            ("headers", self.headers.is_some()),
            ("body", self.body.is_some()),
            ("after_deltas", self.after_deltas.is_some()),
            ("first_byte_delay_ms", self.first_byte_delay_ms.is_some()),
            ("delay_ms", self.delay_ms.is_some()),
            ("stall_ms", self.stall_ms.is_some()),
            ("events", self.events.is_some()),
            ("value", self.value.is_some()),
        ];
        set.into_iter()
            .filter_map(|(name, present)| present.then_some(name))
            .collect()
    }

    fn take_reply(&mut self) -> Reply {
        Reply {
            text: self.text.take(),
            chunks: self.chunks.take(),
            chunk_delay_ms: self.chunk_delay_ms.take().unwrap_or(0),
            thinking: self.thinking.take(),
            usage: self.usage.take().unwrap_or_default(),
            model: self.model.take(),
            nonstream: self.nonstream.take(),
        }
    }

    fn with_reply(kind: Kind, reply: Reply) -> Spec {
        Spec {
            text: reply.text,
            chunks: reply.chunks,
            chunk_delay_ms: (reply.chunk_delay_ms != 0).then_some(reply.chunk_delay_ms),
            thinking: reply.thinking,
            usage: (reply.usage != Usage::default()).then_some(reply.usage),
            model: reply.model,
            nonstream: reply.nonstream,
            ..Spec::empty(kind)
        }
    }
}

impl TryFrom<Spec> for Behaviour {
    type Error = String;

    fn try_from(mut spec: Spec) -> Result<Self, Self::Error> {
        let kind = spec.kind;
        let misplaced: Vec<&str> = spec
            .present_fields()
            .into_iter()
            .filter(|f| !kind.allows(f))
            .collect();
        if !misplaced.is_empty() {
            return Err(format!(
                "field(s) {} do not apply to a `{}` behaviour",
                misplaced
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                kind.name()
            ));
        }
        if spec.chunks == Some(0) {
            return Err("`chunks` must be at least 1".to_owned());
        }
        if let Some(nonstream) = &spec.nonstream
            && nonstream.nested_nonstream()
        {
            return Err("a `nonstream` behaviour cannot have its own `nonstream`".to_owned());
        }
        let behaviour = match kind {
            Kind::Text => Behaviour::Text(spec.take_reply()),
            Kind::NoEventLines => Behaviour::NoEventLines(spec.take_reply()),
            Kind::ToolUse => Behaviour::ToolUse(ToolUse {
                name: spec.name.take().unwrap_or_else(|| "Bash".to_owned()),
                input: spec
                    .input
                    .take()
                    .unwrap_or_else(|| Value::Object(Default::default())),
                id: spec.id.take(),
                reply: spec.take_reply(),
            }),
            Kind::HttpError => {
                let status = spec.status.unwrap_or(529);
                if !(400..=599).contains(&status) {
                    return Err(format!("`status` must be 400..=599, got {status}"));
                }
                for (name, value) in spec.headers.iter().flatten() {
                    check_header(name, value)?;
                }
                Behaviour::HttpError(HttpError {
                    status,
                    error_type: spec.error_type.take(),
                    message: spec.message.take(),
                    headers: spec.headers.take().unwrap_or_default(),
                    body: spec.body.take(),
                    nonstream: spec.nonstream.take(),
                })
            }
            Kind::SseError => Behaviour::SseError(SseError {
                after_deltas: spec.after_deltas.unwrap_or(1),
                error_type: spec.error_type.take(),
                message: spec.message.take(),
                reply: spec.take_reply(),
            }),
            Kind::Cut => Behaviour::Cut(Cut {
                after_deltas: spec.after_deltas.unwrap_or(1),
                reply: spec.take_reply(),
            }),
            Kind::Hang => Behaviour::Hang(Hang {
                first_byte_delay_ms: spec
                    .first_byte_delay_ms
                    .unwrap_or(Hang::default().first_byte_delay_ms),
                reply: spec.take_reply(),
            }),
            Kind::BodyDelay => Behaviour::BodyDelay(BodyDelay {
                delay_ms: spec.delay_ms.unwrap_or(BodyDelay::default().delay_ms),
                reply: spec.take_reply(),
            }),
            Kind::Stall => Behaviour::Stall(Stall {
                after_deltas: spec.after_deltas.unwrap_or(1),
                stall_ms: spec.stall_ms.unwrap_or(Stall::default().stall_ms),
                reply: spec.take_reply(),
            }),
            Kind::Omit => Behaviour::Omit(Omit {
                events: spec.events.take().unwrap_or_default(),
                reply: spec.take_reply(),
            }),
            Kind::ContentType => {
                let value = spec
                    .value
                    .take()
                    .unwrap_or_else(|| ContentType::default().value);
                check_header("content-type", &value)?;
                Behaviour::ContentType(ContentType {
                    value,
                    reply: spec.take_reply(),
                })
            }
        };
        Ok(behaviour)
    }
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    let name_ok = axum::http::HeaderName::try_from(name).is_ok();
    let value_ok = axum::http::HeaderValue::try_from(value).is_ok();
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(format!("`{name}: {value}` is not a valid HTTP header"))
    }
}

impl Behaviour {
    fn nested_nonstream(&self) -> bool {
        match self {
            Behaviour::HttpError(e) => e.nonstream.is_some(),
            other => other.reply().is_some_and(|r| r.nonstream.is_some()),
        }
    }
}

impl From<Behaviour> for Spec {
    fn from(behaviour: Behaviour) -> Spec {
        match behaviour {
            Behaviour::Text(reply) => Spec::with_reply(Kind::Text, reply),
            Behaviour::NoEventLines(reply) => Spec::with_reply(Kind::NoEventLines, reply),
            Behaviour::ToolUse(t) => Spec {
                name: Some(t.name),
                input: Some(t.input),
                id: t.id,
                ..Spec::with_reply(Kind::ToolUse, t.reply)
            },
            Behaviour::HttpError(e) => Spec {
                status: Some(e.status),
                error_type: e.error_type,
                message: e.message,
                headers: (!e.headers.is_empty()).then_some(e.headers),
                body: e.body,
                nonstream: e.nonstream,
                ..Spec::empty(Kind::HttpError)
            },
            Behaviour::SseError(b) => Spec {
                after_deltas: Some(b.after_deltas),
                error_type: b.error_type,
                message: b.message,
                ..Spec::with_reply(Kind::SseError, b.reply)
            },
            Behaviour::Cut(b) => Spec {
                after_deltas: Some(b.after_deltas),
                ..Spec::with_reply(Kind::Cut, b.reply)
            },
            Behaviour::Hang(b) => Spec {
                first_byte_delay_ms: Some(b.first_byte_delay_ms),
                ..Spec::with_reply(Kind::Hang, b.reply)
            },
            Behaviour::BodyDelay(b) => Spec {
                delay_ms: Some(b.delay_ms),
                ..Spec::with_reply(Kind::BodyDelay, b.reply)
            },
            Behaviour::Stall(b) => Spec {
                after_deltas: Some(b.after_deltas),
                stall_ms: Some(b.stall_ms),
                ..Spec::with_reply(Kind::Stall, b.reply)
            },
            Behaviour::Omit(b) => Spec {
                events: Some(b.events),
                ..Spec::with_reply(Kind::Omit, b.reply)
            },
            Behaviour::ContentType(b) => Spec {
                value: Some(b.value),
                ..Spec::with_reply(Kind::ContentType, b.reply)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Behaviour, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn text_with_every_option_parses() {
        let b = parse(
            json!({"type":"text","text":"hi","chunks":3,"chunk_delay_ms":5,
            "thinking":"hmm","usage":{"input_tokens":7,"output_tokens":9},"model":"m"}),
        )
        .unwrap();
        assert_eq!(
            b,
            Behaviour::Text(Reply {
                text: Some("hi".into()),
                chunks: Some(3),
                chunk_delay_ms: 5,
                thinking: Some("hmm".into()),
                usage: Usage {
                    input_tokens: 7,
                    output_tokens: 9,
                    ..Usage::default()
                },
                model: Some("m".into()),
                nonstream: None,
            })
        );
    }

    #[test]
    fn partial_usage_keeps_the_other_defaults() {
        let b = parse(json!({"type":"text","usage":{"output_tokens":7}})).unwrap();
        let usage = b.reply().unwrap().usage;
        assert_eq!((usage.input_tokens, usage.output_tokens), (100, 7));
    }

    #[test]
    fn unknown_fields_and_misplaced_fields_are_rejected() {
        let typo = parse(json!({"type":"text","chunk_delay":5})).unwrap_err();
        assert!(typo.contains("unknown field `chunk_delay`"), "{typo}");
        let misplaced = parse(json!({"type":"text","after_deltas":2,"status":500})).unwrap_err();
        assert!(
            misplaced.contains("`status`, `after_deltas` do not apply to a `text` behaviour"),
            "{misplaced}"
        );
        let unknown = parse(json!({"type":"explode"})).unwrap_err();
        assert!(unknown.contains("unknown variant `explode`"), "{unknown}");
        let missing = parse(json!({"text":"hi"})).unwrap_err();
        assert!(missing.contains("missing field `type`"), "{missing}");
        let bad_event = parse(json!({"type":"omit","events":["message_end"]})).unwrap_err();
        assert!(
            bad_event.contains("unknown variant `message_end`"),
            "{bad_event}"
        );
    }

    #[test]
    fn http_error_defaults_and_status_range() {
        assert_eq!(
            parse(json!({"type":"http_error"})).unwrap(),
            Behaviour::http_error(529)
        );
        let err = parse(json!({"type":"http_error","status":200})).unwrap_err();
        assert!(err.contains("400..=599"), "{err}");
        let header = parse(json!({"type":"http_error","headers":{"retry after":"1"}})).unwrap_err();
        assert!(header.contains("not a valid HTTP header"), "{header}");
        let content_type = parse(json!({"type":"content_type","value":"a\nb"})).unwrap_err();
        assert!(
            content_type.contains("not a valid HTTP header"),
            "{content_type}"
        );
    }

    #[test]
    fn nested_nonstream_is_rejected() {
        let err =
            parse(json!({"type":"cut","nonstream":{"type":"text","nonstream":{"type":"text"}}}))
                .unwrap_err();
        assert!(err.contains("cannot have its own `nonstream`"), "{err}");
    }

    #[test]
    fn every_variant_round_trips_through_json() {
        let all = vec![
            json!({"type":"text","text":"a","chunks":2,"chunk_delay_ms":3,"thinking":"t","model":"m",
                   "usage":{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":3,"cache_read_input_tokens":4}}),
            json!({"type":"tool_use","name":"mcp__calc__add","input":{"a":2},"id":"toolu_1","text":"pre"}),
            json!({"type":"http_error","status":429,"error_type":"rate_limit_error","message":"slow down",
                   "headers":{"retry-after":"1"},"body":{"x":1},"nonstream":{"type":"text"}}),
            json!({"type":"sse_error","after_deltas":2,"error_type":"api_error","message":"m"}),
            json!({"type":"cut","after_deltas":3,"nonstream":{"type":"http_error","status":500}}),
            json!({"type":"hang","first_byte_delay_ms":10}),
            json!({"type":"body_delay","delay_ms":10}),
            json!({"type":"stall","after_deltas":1,"stall_ms":10}),
            json!({"type":"omit","events":["message_stop","ping"]}),
            json!({"type":"no_event_lines"}),
            json!({"type":"content_type","value":"text/plain"}),
        ];
        for v in all {
            let b = parse(v.clone()).unwrap();
            let back = serde_json::to_value(&b).unwrap();
            assert_eq!(parse(back.clone()).unwrap(), b, "{v} -> {back}");
        }
    }
}
