//! The OpenAI chat-completions wire format (`POST /v1/chat/completions`, and
//! `/api/v1/chat/completions` for OpenRouter-style base URLs), non-streaming only.
//!
//! The same behaviours script it as `/v1/messages`, through their non-streaming form: a text
//! answer is `choices[0].message.content`, a tool call is `tool_calls` with
//! `finish_reason: "tool_calls"`, an HTTP error has the body `{"error": {"message", "type",
//! "code"}}`, and the faults (hang, stall, body delay, cut) misbehave as they do for a
//! non-streaming Messages call.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::behaviour::{Behaviour, HttpError, Reply};
use crate::request::Request;
use crate::response::{Ids, Plan, PlanBody, Step, error_type_for_status};

const JSON_CONTENT_TYPE: &str = "application/json";

/// How the server answers one chat-completions call.
pub(crate) fn plan(behaviour: &Behaviour, request: &Request, ids: &Ids) -> Plan {
    let behaviour = behaviour.for_nonstream();
    let text = |reply: &Reply| completion(reply, request, ids, None);
    match behaviour {
        Behaviour::HttpError(e) => http_error(e),
        Behaviour::Text(reply) | Behaviour::NoEventLines(reply) => full(text(reply)),
        Behaviour::Omit(b) => full(text(&b.reply)),
        Behaviour::ContentType(b) => full(text(&b.reply)),
        Behaviour::ToolUse(t) => {
            let id = t.id.clone().unwrap_or_else(|| {
                format!(
                    "call_mock_{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..20]
                )
            });
            let call = json!({
                "id": id,
                "type": "function",
                "function": {"name": t.name, "arguments": t.input.to_string()},
            });
            full(completion(&t.reply, request, ids, Some(call)))
        }
        Behaviour::SseError(b) => http_error(&HttpError {
            status: 529,
            error_type: b.error_type.clone(),
            message: b.message.clone(),
            ..HttpError::default()
        }),
        Behaviour::Cut(b) => {
            let body = to_bytes(&text(&b.reply));
            let half = body.slice(..body.len() / 2);
            steps(vec![Step::Bytes(half), Step::Cut])
        }
        Behaviour::Stall(b) => Plan {
            first_byte_delay: Duration::from_millis(b.stall_ms),
            ..full(text(&b.reply))
        },
        Behaviour::Hang(b) => Plan {
            first_byte_delay: Duration::from_millis(b.first_byte_delay_ms),
            ..full(text(&b.reply))
        },
        Behaviour::BodyDelay(b) => steps(vec![
            Step::Pause(Duration::from_millis(b.delay_ms)),
            Step::Bytes(to_bytes(&text(&b.reply))),
        ]),
    }
}

/// The answer to a request this endpoint cannot serve, in the OpenAI error shape.
pub(crate) fn error_body(status: u16, message: &str) -> Value {
    json!({"error": {
        "message": message,
        "type": error_type_for_status(status),
        "code": status,
    }})
}

fn completion(reply: &Reply, request: &Request, ids: &Ids, tool_call: Option<Value>) -> Value {
    let text = match (&reply.text, &tool_call) {
        (Some(t), _) => Some(t.as_str()),
        (None, None) => Some(Reply::DEFAULT_TEXT),
        (None, Some(_)) => None,
    };
    let mut message = json!({"role": "assistant", "content": text, "refusal": null});
    let finish_reason = match tool_call {
        Some(call) => {
            message["tool_calls"] = json!([call]);
            "tool_calls"
        }
        None => "stop",
    };
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "id": ids.message_id,
        "object": "chat.completion",
        "created": created,
        "model": reply.model.clone().unwrap_or_else(|| request.model.clone()),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": reply.usage.input_tokens,
            "completion_tokens": reply.usage.output_tokens,
            "total_tokens": reply.usage.input_tokens + reply.usage.output_tokens,
        },
    })
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("a JSON value serializes"))
}

fn full(value: Value) -> Plan {
    ok(PlanBody::Full(to_bytes(&value)))
}

fn steps(steps: Vec<Step>) -> Plan {
    ok(PlanBody::Steps {
        steps,
        event_lines: true,
    })
}

fn ok(body: PlanBody) -> Plan {
    Plan {
        status: StatusCode::OK,
        headers: vec![("content-type".to_owned(), JSON_CONTENT_TYPE.to_owned())],
        first_byte_delay: Duration::ZERO,
        body,
    }
}

fn http_error(e: &HttpError) -> Plan {
    let body = e.body.clone().unwrap_or_else(|| {
        let mut body = error_body(e.status, e.message.as_deref().unwrap_or("scripted error"));
        if let Some(kind) = &e.error_type {
            body["error"]["type"] = json!(kind);
        }
        body
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request::from_chat_body(&json!({"model": "openai/gpt-4o-mini", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"}
        ]}))
    }

    fn ids() -> Ids {
        Ids {
            request_id: "req_mock_1".into(),
            message_id: "chatcmpl-mock-1".into(),
        }
    }

    fn body(plan: &Plan) -> Value {
        let PlanBody::Full(bytes) = &plan.body else {
            panic!("expected a full body");
        };
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn a_text_answer_in_the_openai_shape() {
        let plan = plan(&Behaviour::text("hi there"), &request(), &ids());
        assert_eq!(plan.status, StatusCode::OK);
        let v = body(&plan);
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["id"], "chatcmpl-mock-1");
        assert_eq!(v["model"], "openai/gpt-4o-mini");
        assert_eq!(v["choices"][0]["message"]["content"], "hi there");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150})
        );
    }

    #[test]
    fn tool_calls_and_errors() {
        let v = body(&plan(
            &Behaviour::tool_use("lookup", json!({"q": 1})),
            &request(),
            &ids(),
        ));
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"q\":1}"
        );
        let e = plan(&Behaviour::http_error(503), &request(), &ids());
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(&e)["error"]["type"], "api_error");
        assert_eq!(body(&e)["error"]["code"], 503);
    }

    #[test]
    fn faults_misbehave_like_non_streaming_messages() {
        let hang: Behaviour =
            serde_json::from_value(json!({"type": "hang", "first_byte_delay_ms": 5})).unwrap();
        assert_eq!(
            plan(&hang, &request(), &ids()).first_byte_delay,
            Duration::from_millis(5)
        );
        let cut: Behaviour = serde_json::from_value(json!({"type": "cut"})).unwrap();
        let PlanBody::Steps { steps, .. } = plan(&cut, &request(), &ids()).body else {
            panic!("a cut is a stream of steps");
        };
        assert!(matches!(steps.as_slice(), [Step::Bytes(_), Step::Cut]));
        let sse: Behaviour = serde_json::from_value(json!({"type": "sse_error"})).unwrap();
        assert_eq!(plan(&sse, &request(), &ids()).status.as_u16(), 529);
    }
}
