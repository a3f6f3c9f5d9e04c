//! What the CLI writes on stdout, besides control traffic.
//!
//! Every field is read leniently: a missing, `null` or oddly typed field
//! becomes its default instead of failing the line, so a `result` line is a
//! [`Message::Result`] whatever else changes in the CLI's output. Only lines
//! whose `type` is unknown, or that are not objects, become
//! [`Message::Other`].

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    System(System),
    StreamEvent(StreamEvent),
    Assistant(AssistantMessage),
    User(UserMessage),
    Result(ResultMessage),
    Other(Value),
}

impl Message {
    /// Classifies one stdout object. Never fails: unknown shapes are kept
    /// as [`Message::Other`].
    pub fn from_value(value: Value) -> Message {
        match value.get("type").and_then(Value::as_str) {
            Some("system") => match System::from_value(&value) {
                Some(system) => Message::System(system),
                None => Message::Other(value),
            },
            Some("stream_event") => typed(value, Message::StreamEvent),
            Some("assistant") => typed(value, Message::Assistant),
            Some("user") => typed(value, Message::User),
            Some("result") => typed(value, Message::Result),
            _ => Message::Other(value),
        }
    }

    /// Parses one stdout line; `None` for anything that is not a JSON value.
    pub fn parse(line: &str) -> Option<Message> {
        serde_json::from_str(line).ok().map(Message::from_value)
    }
}

fn typed<T: DeserializeOwned>(value: Value, wrap: fn(T) -> Message) -> Message {
    match T::deserialize(&value) {
        Ok(parsed) => wrap(parsed),
        Err(_) => Message::Other(value),
    }
}

/// Any JSON becomes the field's default rather than an error.
fn lenient<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let value = Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).unwrap_or_default())
}

// ---------------------------------------------------------------- system

#[derive(Debug, Clone, PartialEq)]
pub enum System {
    /// Sent at the start of every turn, not once per process.
    Init(Init),
    ApiRetry(ApiRetry),
    PermissionDenied(PermissionDenied),
    SessionStateChanged(SessionStateChanged),
    /// `status`, `thinking_tokens` and subtypes this driver does not know.
    Other {
        subtype: String,
        raw: Value,
    },
}

impl System {
    fn from_value(value: &Value) -> Option<System> {
        let subtype = value.get("subtype").and_then(Value::as_str).unwrap_or("");
        let system = match subtype {
            "init" => System::Init(Init::deserialize(value).ok()?),
            "api_retry" => System::ApiRetry(ApiRetry::deserialize(value).ok()?),
            "permission_denied" => {
                System::PermissionDenied(PermissionDenied::deserialize(value).ok()?)
            }
            "session_state_changed" => {
                System::SessionStateChanged(SessionStateChanged::deserialize(value).ok()?)
            }
            _ => System::Other {
                subtype: subtype.to_owned(),
                raw: value.clone(),
            },
        };
        Some(system)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Init {
    #[serde(deserialize_with = "lenient")]
    pub session_id: String,
    #[serde(deserialize_with = "lenient")]
    pub model: String,
    #[serde(deserialize_with = "lenient")]
    pub cwd: String,
    #[serde(deserialize_with = "lenient")]
    pub tools: Vec<String>,
    #[serde(deserialize_with = "lenient")]
    pub mcp_servers: Vec<Value>,
    #[serde(rename = "permissionMode", deserialize_with = "lenient")]
    pub permission_mode: String,
    #[serde(deserialize_with = "lenient")]
    pub claude_code_version: String,
}

/// Announced before the CLI sleeps and retries an API call. Not every retry
/// is announced (idle-watchdog aborts and fallbacks are silent).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiRetry {
    #[serde(deserialize_with = "lenient")]
    pub attempt: u32,
    #[serde(deserialize_with = "lenient")]
    pub max_retries: u32,
    #[serde(deserialize_with = "lenient")]
    pub retry_delay_ms: u64,
    /// HTTP status; `None` for cut connections and timeouts.
    #[serde(deserialize_with = "lenient")]
    pub error_status: Option<u16>,
    /// `server_error`, `overloaded`, `rate_limit`, `authentication_failed`, `unknown`.
    #[serde(deserialize_with = "lenient")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PermissionDenied {
    #[serde(deserialize_with = "lenient")]
    pub tool_name: String,
    #[serde(deserialize_with = "lenient")]
    pub tool_use_id: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionStateChanged {
    /// `running`, `requires_action` or `idle`.
    #[serde(deserialize_with = "lenient")]
    pub state: String,
}

// ---------------------------------------------------------- stream events

/// A raw Messages API streaming event, relayed by `--include-partial-messages`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StreamEvent {
    #[serde(deserialize_with = "lenient")]
    pub event: Value,
    /// Set when a subagent produced the event.
    #[serde(deserialize_with = "lenient")]
    pub parent_tool_use_id: Option<String>,
}

impl StreamEvent {
    /// `message_start`, `content_block_delta`, `message_stop`, ...
    pub fn event_type(&self) -> Option<&str> {
        self.event.get("type").and_then(Value::as_str)
    }

    pub fn text_delta(&self) -> Option<&str> {
        self.delta_field("text_delta", "text")
    }

    pub fn thinking_delta(&self) -> Option<&str> {
        self.delta_field("thinking_delta", "thinking")
    }

    fn delta_field(&self, delta_type: &str, field: &str) -> Option<&str> {
        if self.event_type() != Some("content_block_delta") {
            return None;
        }
        let delta = self.event.get("delta")?;
        if delta.get("type").and_then(Value::as_str) != Some(delta_type) {
            return None;
        }
        delta.get(field).and_then(Value::as_str)
    }
}

// ------------------------------------------------------ content blocks

/// One block of a message's `content`. Unknown block types are kept whole.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentBlock {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        /// Text blocks of a list-shaped result are joined with newlines.
        content: String,
        is_error: bool,
    },
    Other(Value),
}

impl<'de> Deserialize<'de> for ContentBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(ContentBlock::from_value(Value::deserialize(deserializer)?))
    }
}

impl ContentBlock {
    fn from_value(value: Value) -> ContentBlock {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        match value.get("type").and_then(Value::as_str) {
            Some("text") => ContentBlock::Text { text: text("text") },
            Some("thinking") => ContentBlock::Thinking {
                thinking: text("thinking"),
            },
            Some("tool_use") => ContentBlock::ToolUse {
                id: text("id"),
                name: text("name"),
                input: value.get("input").cloned().unwrap_or(Value::Null),
            },
            Some("tool_result") => ContentBlock::ToolResult {
                tool_use_id: text("tool_use_id"),
                content: value.get("content").map(content_text).unwrap_or_default(),
                is_error: value
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            _ => ContentBlock::Other(value),
        }
    }
}

/// A string, or the text blocks of a list joined with newlines.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// `content` is either a plain string or a list of blocks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content(pub Vec<ContentBlock>);

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let blocks = match Value::deserialize(deserializer)? {
            Value::String(text) => vec![ContentBlock::Text { text }],
            Value::Array(items) => items.into_iter().map(ContentBlock::from_value).collect(),
            _ => Vec::new(),
        };
        Ok(Content(blocks))
    }
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub input: &'a Value,
}

/// What a tool call produced, as the model will see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult<'a> {
    pub tool_use_id: &'a str,
    pub content: &'a str,
    pub is_error: bool,
}

// ------------------------------------------------------------ assistant

/// One completed content block of the model's reply (the CLI writes one
/// `assistant` line per block, all with the same `message.id`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AssistantMessage {
    #[serde(deserialize_with = "lenient")]
    pub message: AssistantBody,
    #[serde(deserialize_with = "lenient")]
    pub parent_tool_use_id: Option<String>,
    /// The partial block of an interrupted stream.
    #[serde(deserialize_with = "lenient")]
    pub aborted: bool,
    /// A synthetic message the CLI writes after giving up on the API.
    #[serde(deserialize_with = "lenient")]
    pub is_api_error_message: bool,
    #[serde(deserialize_with = "lenient")]
    pub api_error_status: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AssistantBody {
    #[serde(deserialize_with = "lenient")]
    pub id: String,
    #[serde(deserialize_with = "lenient")]
    pub model: String,
    #[serde(deserialize_with = "lenient")]
    pub content: Content,
}

impl AssistantMessage {
    pub fn tool_uses(&self) -> impl Iterator<Item = ToolUse<'_>> {
        self.message
            .content
            .0
            .iter()
            .filter_map(|block| match block {
                ContentBlock::ToolUse { id, name, input } => Some(ToolUse { id, name, input }),
                _ => None,
            })
    }

    /// The text blocks, concatenated.
    pub fn text(&self) -> String {
        self.message
            .content
            .0
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

// ----------------------------------------------------------------- user

/// A user turn as the CLI records it: tool results, interrupt markers, and
/// (with `--replay-user-messages`) echoed prompts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UserMessage {
    #[serde(deserialize_with = "lenient")]
    pub message: UserBody,
    #[serde(deserialize_with = "lenient")]
    pub parent_tool_use_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UserBody {
    #[serde(deserialize_with = "lenient")]
    pub content: Content,
}

impl UserMessage {
    pub fn tool_results(&self) -> impl Iterator<Item = ToolResult<'_>> {
        self.message
            .content
            .0
            .iter()
            .filter_map(|block| match block {
                ContentBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => Some(ToolResult {
                    tool_use_id,
                    content,
                    is_error: *is_error,
                }),
                _ => None,
            })
    }
}

// --------------------------------------------------------------- result

/// The end of a turn. `is_error` can be true with `subtype == "success"`
/// (an API failure after retries).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ResultMessage {
    /// `success`, `error_during_execution`, `error_max_turns`, `error_max_budget_usd`.
    #[serde(deserialize_with = "lenient")]
    pub subtype: String,
    #[serde(deserialize_with = "lenient")]
    pub is_error: bool,
    /// Cumulative over the whole session, across turns and `--resume`.
    #[serde(deserialize_with = "lenient")]
    pub total_cost_usd: f64,
    #[serde(deserialize_with = "lenient")]
    pub duration_ms: u64,
    #[serde(deserialize_with = "lenient")]
    pub duration_api_ms: u64,
    /// API round trips within the turn.
    #[serde(deserialize_with = "lenient")]
    pub num_turns: u32,
    /// `completed`, `aborted_streaming`, `aborted_tools`, `api_error`, ...
    #[serde(deserialize_with = "lenient")]
    pub terminal_reason: Option<String>,
    /// The final text, or the API error text.
    #[serde(deserialize_with = "lenient")]
    pub result: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub errors: Vec<String>,
    #[serde(deserialize_with = "lenient")]
    pub api_error_status: Option<u16>,
    #[serde(deserialize_with = "lenient")]
    pub stop_reason: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub session_id: String,
    /// This turn's main-thread token usage, as the API reported it.
    #[serde(deserialize_with = "lenient")]
    pub usage: Value,
    #[serde(deserialize_with = "lenient")]
    pub permission_denials: Vec<Value>,
}

#[cfg(test)]
mod tests;
