//! Lines captured from `claude` 2.1.330 (agent-protocol.md §3), with the
//! document's `…` elisions filled in so that they are valid JSON again.

use csp_testkit::proptest_config;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn parse(line: &str) -> Message {
    Message::parse(line).expect("captured line is JSON")
}

#[test]
fn system_init() {
    let line = r#"{"type":"system","subtype":"init","cwd":"/work/proj","session_id":"5281c074-aa1f-491b-89ef-42e01d6bc68b","tools":["Task","AskUserQuestion","Bash","Write"],"mcp_servers":[{"name":"calc","status":"connected","source":"dynamic"}],"model":"claude-opus-5-5","permissionMode":"default","slash_commands":["deep-research"],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.330","output_style":"default","agents":["claude","Explore"],"skills":[],"plugins":[{"name":"cc-plugin-agents-md","path":"builtin","source":"cc-plugin-agents-md@builtin"}],"capabilities":["interrupt_receipt_v1"],"analytics_disabled":false,"uuid":"6df8300b-0000-0000-0000-000000000000","memory_paths":{"auto":"/home/u/.claude/projects/-work-proj/memory/"},"fast_mode_state":"off","view_mode":"default"}"#;
    let Message::System(System::Init(init)) = parse(line) else {
        panic!("not an init line")
    };
    assert_eq!(init.session_id, "5281c074-aa1f-491b-89ef-42e01d6bc68b");
    assert_eq!(init.model, "claude-opus-5-5");
    assert_eq!(init.cwd, "/work/proj");
    assert_eq!(init.tools, ["Task", "AskUserQuestion", "Bash", "Write"]);
    assert_eq!(init.mcp_servers[0]["name"], "calc");
    assert_eq!(init.permission_mode, "default");
    assert_eq!(init.claude_code_version, "2.1.330");
}

#[test]
fn system_status_state_and_thinking_tokens() {
    let status = parse(
        r#"{"type":"system","subtype":"status","status":"requesting","session_id":"3c7489f5","uuid":"3ff822f1"}"#,
    );
    let Message::System(System::Other { subtype, raw }) = status else {
        panic!("status is not a known subtype")
    };
    assert_eq!(subtype, "status");
    assert_eq!(raw["status"], "requesting");

    let state = parse(
        r#"{"type":"system","subtype":"session_state_changed","state":"requires_action","sdk_host_only":true,"uuid":"ff0d7354","session_id":"3c7489f5"}"#,
    );
    assert_eq!(
        state,
        Message::System(System::SessionStateChanged(SessionStateChanged {
            state: "requires_action".into()
        }))
    );

    let tokens = parse(
        r#"{"type":"system","subtype":"thinking_tokens","estimated_tokens":7,"estimated_tokens_delta":7,"session_id":"3c7489f5","uuid":"72d13473"}"#,
    );
    assert!(
        matches!(tokens, Message::System(System::Other { subtype, .. }) if subtype == "thinking_tokens")
    );
}

#[test]
fn system_api_retry() {
    let line = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":601,"error_status":500,"error":"server_error","session_id":"c7f19c4a","uuid":"df7e4442"}"#;
    assert_eq!(
        parse(line),
        Message::System(System::ApiRetry(ApiRetry {
            attempt: 1,
            max_retries: 10,
            retry_delay_ms: 601,
            error_status: Some(500),
            error: Some("server_error".into()),
        }))
    );
    let cut = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,"retry_delay_ms":550,"error_status":null,"error":"unknown"}"#;
    let Message::System(System::ApiRetry(retry)) = parse(cut) else {
        panic!("not an api_retry line")
    };
    assert_eq!(retry.error_status, None);
    assert_eq!(retry.error.as_deref(), Some("unknown"));
}

#[test]
fn system_permission_denied() {
    let line = r#"{"type":"system","subtype":"permission_denied","tool_name":"Bash","tool_use_id":"toolu_46e03ffe7fcb4073a5f0","message":"touch in '/work/proj/cap2.txt' needs approval.","uuid":"f946e8a9","session_id":"61c05ffe"}"#;
    assert_eq!(
        parse(line),
        Message::System(System::PermissionDenied(PermissionDenied {
            tool_name: "Bash".into(),
            tool_use_id: Some("toolu_46e03ffe7fcb4073a5f0".into()),
            message: "touch in '/work/proj/cap2.txt' needs approval.".into(),
        }))
    );
}

fn stream(event: Value) -> StreamEvent {
    let line = json!({"type":"stream_event","event":event,"session_id":"3c7489f5","parent_tool_use_id":null,"uuid":"9ebc7546","api_message_id":"msg_f7a8"});
    let Message::StreamEvent(event) = Message::from_value(line) else {
        panic!("not a stream event")
    };
    event
}

#[test]
fn stream_event_deltas() {
    let start = stream(
        json!({"type":"message_start","message":{"id":"msg_f7a8","type":"message","role":"assistant","model":"claude-opus-5-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}),
    );
    assert_eq!(start.event_type(), Some("message_start"));
    assert_eq!(start.text_delta(), None);

    let text = stream(
        json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The "}}),
    );
    assert_eq!(text.text_delta(), Some("The "));
    assert_eq!(text.thinking_delta(), None);

    let thinking = stream(
        json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Considering the question."}}),
    );
    assert_eq!(thinking.thinking_delta(), Some("Considering the question."));
    assert_eq!(thinking.text_delta(), None);

    let json_delta = stream(
        json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"command\": \"touch"}}),
    );
    assert_eq!(json_delta.text_delta(), None);
    assert_eq!(json_delta.thinking_delta(), None);

    let stop = stream(
        json!({"type":"message_stop","abandoned_blocks":{"api_message_id":"msg_1","from_block_index":1}}),
    );
    assert_eq!(stop.event_type(), Some("message_stop"));
    assert_eq!(stop.parent_tool_use_id, None);
}

#[test]
fn assistant_tool_use_thinking_and_aborted_text() {
    let tool = parse(
        r#"{"type":"assistant","message":{"id":"msg_6e11","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_4808","name":"Bash","input":{"command":"touch /work/proj/cap.txt && echo made","description":"make file"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1,"service_tier":"standard"},"context_management":null},"parent_tool_use_id":null,"session_id":"3c7489f5","uuid":"aad6db86","timestamp":"2026-11-22T13:51:41.884Z","request_id":"req_mock_ce50ac9d727f"}"#,
    );
    let Message::Assistant(tool) = tool else {
        panic!("not an assistant line")
    };
    let uses: Vec<_> = tool.tool_uses().collect();
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].id, "toolu_4808");
    assert_eq!(uses[0].name, "Bash");
    assert_eq!(
        uses[0].input["command"],
        "touch /work/proj/cap.txt && echo made"
    );
    assert_eq!(tool.message.id, "msg_6e11");
    assert_eq!(tool.text(), "");

    let thinking = parse(
        r#"{"type":"assistant","message":{"id":"msg_1","content":[{"type":"thinking","thinking":"Considering the question.","signature":"c2lnbmF0dXJl"}]},"thinking_duration_ms":1,"thinking_display":"updates"}"#,
    );
    let Message::Assistant(thinking) = thinking else {
        panic!("not an assistant line")
    };
    assert_eq!(
        thinking.message.content.0,
        [ContentBlock::Thinking {
            thinking: "Considering the question.".into()
        }]
    );

    let aborted = parse(
        r#"{"type":"assistant","message":{"id":"msg_2","content":[{"type":"text","text":"w w w w w "}]},"aborted":true}"#,
    );
    let Message::Assistant(aborted) = aborted else {
        panic!("not an assistant line")
    };
    assert!(aborted.aborted);
    assert_eq!(aborted.text(), "w w w w w ");
}

#[test]
fn assistant_synthetic_api_error() {
    let line = r#"{"type":"assistant","message":{"id":"8b0067c7","model":"<synthetic>","role":"assistant","stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{"input_tokens":0,"output_tokens":0},"content":[{"type":"text","text":"API Error: 529 Overloaded."}]},"parent_tool_use_id":null,"session_id":"99ba6775","uuid":"8689e716","error":"server_error","request_id":"req_mock_24583eb40bf3","is_api_error_message":true,"api_error_status":529,"api_error_type":"overloaded_error"}"#;
    let Message::Assistant(message) = parse(line) else {
        panic!("not an assistant line")
    };
    assert!(message.is_api_error_message);
    assert_eq!(message.api_error_status, Some(529));
    assert_eq!(message.message.model, "<synthetic>");
    assert_eq!(message.text(), "API Error: 529 Overloaded.");
}

#[test]
fn user_tool_results_as_string_and_as_text_blocks() {
    let bash = parse(
        r#"{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_4808","type":"tool_result","content":"made","is_error":false}]},"parent_tool_use_id":null,"session_id":"3c7489f5","uuid":"96325cb1","timestamp":"2026-11-22T13:51:42.008Z","tool_use_result":{"stdout":"made","stderr":"","interrupted":false,"isImage":false,"noOutputExpected":false},"tool_result_meta":[{"id":"toolu_4808","permission_decision":{"decision":"accept","source":"user_temporary"}}]}"#,
    );
    let Message::User(bash) = bash else {
        panic!("not a user line")
    };
    assert_eq!(
        bash.tool_results().collect::<Vec<_>>(),
        [ToolResult {
            tool_use_id: "toolu_4808",
            content: "made",
            is_error: false
        }]
    );

    let mcp = parse(
        r#"{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_9","type":"tool_result","content":[{"type":"text","text":"42"},{"type":"image","source":{}},{"type":"text","text":"done"}],"is_error":true}]},"tool_use_result":[{"type":"text","text":"42"}]}"#,
    );
    let Message::User(mcp) = mcp else {
        panic!("not a user line")
    };
    let results: Vec<_> = mcp.tool_results().collect();
    assert_eq!(results[0].content, "42\ndone");
    assert!(results[0].is_error);
}

#[test]
fn user_interrupt_marker_has_no_tool_results() {
    let line = r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"[Request interrupted by user]"}]},"parent_tool_use_id":null}"#;
    let Message::User(user) = parse(line) else {
        panic!("not a user line")
    };
    assert_eq!(user.tool_results().count(), 0);
    assert_eq!(
        user.message.content.0,
        [ContentBlock::Text {
            text: "[Request interrupted by user]".into()
        }]
    );
    let plain = r#"{"type":"user","message":{"role":"user","content":"please run ls"}}"#;
    let Message::User(plain) = parse(plain) else {
        panic!("not a user line")
    };
    assert_eq!(
        plain.message.content.0,
        [ContentBlock::Text {
            text: "please run ls".into()
        }]
    );
}

#[test]
fn result_success() {
    let line = r#"{"duration_api_ms":235,"stop_reason":"end_turn","session_id":"5281c074","total_cost_usd":0.001044,"usage":{"input_tokens":24,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":25},"modelUsage":{"claude-opus-5-5":{"inputTokens":36,"outputTokens":45,"costUSD":0.001044}},"permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off","safety_stops":0,"is_error":false,"num_turns":2,"subtype":"success","api_error_status":null,"result":"The tool ran fine.","ttft_ms":162,"type":"result","duration_ms":428,"uuid":"ab5a9a38","result_index":0}"#;
    let Message::Result(result) = parse(line) else {
        panic!("not a result line")
    };
    assert_eq!(result.subtype, "success");
    assert!(!result.is_error);
    assert_eq!(result.total_cost_usd, 0.001044);
    assert_eq!(result.duration_ms, 428);
    assert_eq!(result.duration_api_ms, 235);
    assert_eq!(result.num_turns, 2);
    assert_eq!(result.terminal_reason.as_deref(), Some("completed"));
    assert_eq!(result.result.as_deref(), Some("The tool ran fine."));
    assert!(result.errors.is_empty());
    assert_eq!(result.api_error_status, None);
    assert_eq!(result.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(result.usage["output_tokens"], 25);
}

#[test]
fn result_error_variants() {
    let api = parse(
        r#"{"type":"result","subtype":"success","is_error":true,"terminal_reason":"api_error","result":"API Error: 529 Overloaded.","api_error_status":529,"api_error_type":"overloaded_error","total_cost_usd":0}"#,
    );
    let Message::Result(api) = api else {
        panic!("not a result line")
    };
    assert!(api.is_error);
    assert_eq!(api.api_error_status, Some(529));
    assert_eq!(api.terminal_reason.as_deref(), Some("api_error"));

    let interrupted = parse(
        r#"{"type":"result","subtype":"error_during_execution","is_error":true,"terminal_reason":"aborted_streaming","errors":["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"]}"#,
    );
    let Message::Result(interrupted) = interrupted else {
        panic!("not a result line")
    };
    assert_eq!(interrupted.subtype, "error_during_execution");
    assert_eq!(interrupted.errors.len(), 1);

    let budget = parse(
        r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"terminal_reason":"budget_exhausted","errors":["Reached maximum budget ($0.0005)"],"result":null}"#,
    );
    let Message::Result(budget) = budget else {
        panic!("not a result line")
    };
    assert_eq!(budget.result, None);
    assert_eq!(budget.errors, ["Reached maximum budget ($0.0005)"]);

    let resume = parse(
        r#"{"type":"result","subtype":"error_during_execution","duration_ms":0,"duration_api_ms":0,"is_error":true,"num_turns":0,"session_id":"d7c1","total_cost_usd":0,"errors":["No conversation found with session ID: d7c1"]}"#,
    );
    let Message::Result(resume) = resume else {
        panic!("not a result line")
    };
    assert_eq!(
        resume.errors,
        ["No conversation found with session ID: d7c1"]
    );
    assert_eq!(resume.session_id, "d7c1");
}

#[test]
fn odd_field_types_default_instead_of_failing() {
    let line = r#"{"type":"result","subtype":7,"is_error":"yes","total_cost_usd":"0.1","duration_ms":12.5,"errors":null,"num_turns":-1}"#;
    let Message::Result(result) = parse(line) else {
        panic!("a result line must stay a result")
    };
    assert_eq!(result, ResultMessage::default());
}

#[test]
fn unknown_types_and_non_objects_are_kept() {
    assert_eq!(
        parse(r#"{"type":"bogus","x":1}"#),
        Message::Other(json!({"type":"bogus","x":1}))
    );
    assert_eq!(parse("[1,2]"), Message::Other(json!([1, 2])));
    assert_eq!(
        parse(r#"{"no":"type"}"#),
        Message::Other(json!({"no":"type"}))
    );
    assert!(Message::parse("not json").is_none());
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("system".to_owned()),
            Just("result".to_owned()),
            Just("text".to_owned()),
            Just("tool_result".to_owned()),
            Just("content_block_delta".to_owned()),
            ".*"
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("type".to_owned()),
            Just("subtype".to_owned()),
            Just("message".to_owned()),
            Just("content".to_owned()),
            Just("event".to_owned()),
            Just("delta".to_owned()),
            "[a-z_]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn exercise(message: &Message) {
    match message {
        Message::StreamEvent(event) => {
            let _ = (
                event.text_delta(),
                event.thinking_delta(),
                event.event_type(),
            );
        }
        Message::Assistant(assistant) => {
            let _ = (assistant.tool_uses().count(), assistant.text());
        }
        Message::User(user) => {
            let _ = user.tool_results().count();
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(line) = std::str::from_utf8(&bytes)
            && let Some(message) = Message::parse(line)
        {
            exercise(&message);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json()) {
        exercise(&Message::from_value(value));
    }

    #[test]
    fn every_object_typed_result_is_a_result(mut value in arbitrary_json()) {
        if let Value::Object(map) = &mut value {
            map.insert("type".into(), "result".into());
            prop_assert!(matches!(Message::from_value(value), Message::Result(_)));
        }
    }

    #[test]
    fn known_shapes_never_fall_back_to_other(
        kind in prop::sample::select(vec!["system", "stream_event", "assistant", "user", "result"]),
        mut value in arbitrary_json(),
    ) {
        if let Value::Object(map) = &mut value {
            map.insert("type".into(), kind.into());
            let is_other = matches!(Message::from_value(value), Message::Other(_));
            prop_assert!(!is_other);
        }
    }
}
