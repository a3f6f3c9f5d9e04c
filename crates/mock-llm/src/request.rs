//! Reading what the mock needs out of a Messages API request body.
//!
//! The CLI puts `role:"system"` entries in the middle of `messages`, starts the first user
//! message with `<system-reminder>` blocks and merges a failed prompt with the next one into a
//! single user turn, so only the last text block of the last user message says what the user
//! just asked.

use serde_json::Value;

use crate::Behaviour;

/// The parts of one `/v1/messages` request that decide the answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub(crate) model: String,
    pub(crate) stream: bool,
    pub(crate) is_title: bool,
    /// The last text block of the last `role:"user"` message.
    pub(crate) last_user_text: Option<String>,
    /// Set when the last block of the last user message is a `tool_result`.
    pub(crate) tool_result: Option<ToolResult>,
    /// The system prompt is the ticket-enhancement prompt (see [`crate::enhancement`]).
    pub(crate) is_enhancement: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolResult {
    pub(crate) output: String,
    pub(crate) is_error: bool,
}

impl Request {
    pub(crate) fn from_body(body: &Value) -> Request {
        let last_user = body
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|messages| {
                messages
                    .iter()
                    .rev()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            })
            .and_then(|m| m.get("content"));
        Request {
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("claude-mock")
                .to_owned(),
            // The API streams only when asked to.
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            is_title: is_title_request(body),
            last_user_text: last_user.and_then(last_text_block),
            tool_result: last_user.and_then(trailing_tool_result),
            is_enhancement: body
                .get("system")
                .is_some_and(|s| crate::enhancement::is_enhancement_system(&content_text(s))),
        }
    }

    /// A chat-completions (OpenAI wire format) request: the system prompt is the
    /// `role:"system"` (or `"developer"`) messages, the prompt the last `role:"user"` one.
    pub(crate) fn from_chat_body(body: &Value) -> Request {
        let messages: &[Value] = body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let role_is = |m: &Value, roles: &[&str]| {
            m.get("role")
                .and_then(Value::as_str)
                .is_some_and(|r| roles.contains(&r))
        };
        let system: Vec<String> = messages
            .iter()
            .filter(|m| role_is(m, &["system", "developer"]))
            .filter_map(|m| m.get("content"))
            .map(content_text)
            .collect();
        let last_user = messages
            .iter()
            .rev()
            .find(|m| role_is(m, &["user"]))
            .and_then(|m| m.get("content"));
        Request {
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("mock-chat")
                .to_owned(),
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            is_title: false,
            last_user_text: last_user.and_then(last_text_block),
            tool_result: None,
            is_enhancement: system
                .iter()
                .any(|s| crate::enhancement::is_enhancement_system(s)),
        }
    }

    /// The `MOCK{...}MOCK` directive in the last user text, if there is one.
    pub(crate) fn directive(&self) -> Option<Result<Behaviour, String>> {
        parse_directive(self.last_user_text.as_deref()?)
    }
}

/// A `system` or message `content`: a string, or the text of its text blocks.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn last_text_block(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(strip_system_reminders(s)),
        Value::Array(blocks) => blocks
            .iter()
            .rev()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(strip_system_reminders)
            // Blocks that were only reminders say nothing about what the user asked.
            .find(|t| !t.is_empty()),
        _ => None,
    }
}

/// Removes the `<system-reminder>...</system-reminder>` sections the CLI adds to user text and
/// tool output, and the whitespace around what is left.
pub(crate) fn strip_system_reminders(text: &str) -> String {
    const OPEN: &str = "<system-reminder>";
    const CLOSE: &str = "</system-reminder>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        match rest[start..].find(CLOSE) {
            Some(end) => rest = &rest[start + end + CLOSE.len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

fn trailing_tool_result(content: &Value) -> Option<ToolResult> {
    let last = content.as_array()?.last()?;
    if last.get("type").and_then(Value::as_str) != Some("tool_result") {
        return None;
    }
    let output = match last.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    Some(ToolResult {
        output: strip_system_reminders(&output),
        is_error: last
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The CLI's session-title side request (sent with the `sdk-py`/`sdk-ts` entrypoints).
fn is_title_request(body: &Value) -> bool {
    let system_says_so = match body.get("system") {
        Some(Value::String(s)) => s.contains("You are naming a coding session"),
        Some(Value::Array(blocks)) => blocks.iter().any(|b| {
            b.get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("You are naming a coding session"))
        }),
        _ => false,
    };
    let schema_says_so = body
        .pointer("/output_config/format")
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .and_then(|f| f.pointer("/schema/properties/title"))
        .is_some();
    system_says_so || schema_says_so
}

fn parse_directive(text: &str) -> Option<Result<Behaviour, String>> {
    const OPEN: &str = "MOCK{";
    const CLOSE: &str = "}MOCK";
    let start = text.find(OPEN)?;
    // The JSON may itself contain "}MOCK" inside a string only in contrived cases; the last
    // closing marker is the one that ends the directive.
    let Some(end) = text[start..].rfind(CLOSE).map(|i| start + i) else {
        return Some(Err(
            "the MOCK{...}MOCK directive has no closing `}MOCK`".to_owned()
        ));
    };
    let json = &text[start + OPEN.len() - 1..=end];
    Some(
        serde_json::from_str(json)
            .map_err(|e| format!("the MOCK{{...}}MOCK directive is not a valid behaviour: {e}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_text_block_of_last_user_message_wins() {
        let body = json!({
            "model": "claude-sonnet-4-5",
            "stream": true,
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>MOCK{\"type\":\"cut\"}MOCK</system-reminder>"},
                    {"type": "text", "text": "first prompt"}
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                    {"type": "text", "text": "second prompt\n<system-reminder>MOCK{\"type\":\"cut\"}MOCK</system-reminder>"},
                    {"type": "image", "source": {}},
                    {"type": "text", "text": " <system-reminder>\ntrailing\n</system-reminder>\n"}
                ]},
                {"role": "system", "content": "deferred tools are now available"}
            ]
        });
        let req = Request::from_body(&body);
        assert_eq!(req.last_user_text.as_deref(), Some("second prompt"));
        assert_eq!(req.model, "claude-sonnet-4-5");
        assert!(req.stream);
        assert!(!req.is_title);
        assert_eq!(req.tool_result, None);
        assert!(req.directive().is_none());
    }

    #[test]
    fn string_content_and_tool_results() {
        let body = json!({"messages": [
            {"role": "user", "content": "run ls"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b\n\n<system-reminder>\n<total_tokens>1</total_tokens>\n</system-reminder>"}],
                "is_error": true}]}
        ]});
        let req = Request::from_body(&body);
        assert!(!req.stream);
        assert_eq!(req.last_user_text, None);
        assert_eq!(
            req.tool_result,
            Some(ToolResult {
                output: "a\nb".into(),
                is_error: true
            })
        );
        let first =
            Request::from_body(&json!({"messages": [{"role": "user", "content": "run ls"}]}));
        assert_eq!(first.last_user_text.as_deref(), Some("run ls"));
    }

    #[test]
    fn title_requests_are_recognised_by_system_text_or_schema() {
        let by_system = json!({"system": [{"type": "text", "text": "You are naming a coding session. Return JSON"}]});
        let by_schema = json!({"output_config": {"format": {"type": "json_schema",
            "schema": {"type": "object", "properties": {"title": {"type": "string"}}}}}});
        let neither = json!({"output_config": {"effort": "medium"}, "system": "You are Claude"});
        assert!(Request::from_body(&by_system).is_title);
        assert!(Request::from_body(&by_schema).is_title);
        assert!(!Request::from_body(&neither).is_title);
    }

    #[test]
    fn system_reminders_are_stripped() {
        assert_eq!(
            strip_system_reminders("a<system-reminder>x</system-reminder>b <system-reminder>open"),
            "ab"
        );
        assert_eq!(strip_system_reminders("  plain  "), "plain");
    }

    #[test]
    fn directives() {
        let ok = parse_directive(r#"please MOCK{"type":"text","text":"a}b"}MOCK thanks"#).unwrap();
        assert_eq!(ok.unwrap(), Behaviour::text("a}b"));
        let unclosed = parse_directive(r#"MOCK{"type":"text""#)
            .unwrap()
            .unwrap_err();
        assert!(unclosed.contains("no closing"), "{unclosed}");
        let invalid = parse_directive(r#"MOCK{"type":"nope"}MOCK"#)
            .unwrap()
            .unwrap_err();
        assert!(invalid.contains("unknown variant `nope`"), "{invalid}");
        assert!(parse_directive("no directive here").is_none());
    }
}
