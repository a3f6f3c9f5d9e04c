//! Both providers against the mock model: the wire format each sends, what comes back, and
//! the faults.

use csp_enhance::{
    ENHANCEMENT_SYSTEM_PROMPT, NoteFormat, NoteOptions, PromptOptions, SECTIONS, SkipReason,
    SynthesisError, build_prompt, compose_note,
};
use csp_mock_llm::{Behaviour, LogEntry, MockLlm, Reply, Usage};
use serde_json::json;

use crate::helpers::{KEY, anthropic, context, mock, openrouter, ticket};

fn calls(mock: &MockLlm) -> Vec<LogEntry> {
    mock.log()
        .into_iter()
        .filter(|e| e.path.ends_with("/messages") || e.path.ends_with("/chat/completions"))
        .collect()
}

fn prompt() -> csp_enhance::Prompt {
    build_prompt(&ticket(), &context(), PromptOptions::default())
}

#[tokio::test]
async fn anthropic_sends_the_seed_request_and_reads_the_answer() {
    let mock = mock().await;
    mock.push(Behaviour::Text(Reply {
        text: Some("## Similar Tickets\nTicket 3900 resolved by restarting the spooler.".into()),
        usage: Usage {
            input_tokens: 1000,
            output_tokens: 200,
            ..Usage::default()
        },
        ..Reply::default()
    }));
    let s = anthropic(&mock, KEY).synthesize(&prompt()).await.unwrap();
    assert_eq!(
        s.text,
        "## Similar Tickets\nTicket 3900 resolved by restarting the spooler."
    );
    assert_eq!((s.input_tokens, s.output_tokens), (1000, 200));
    assert_eq!(s.model, "claude-sonnet-4-5");
    // $3 / $15 per million tokens.
    assert!((s.cost_usd - 0.006).abs() < 1e-12, "{}", s.cost_usd);

    let log = calls(&mock);
    assert_eq!(log.len(), 1);
    let call = &log[0];
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.headers["anthropic-version"], "2023-06-01");
    assert_eq!(call.headers["x-api-key"], "[redacted]");
    assert_eq!(call.body["model"], "claude-sonnet-4-5");
    assert_eq!(call.body["max_tokens"], 1000);
    assert_eq!(call.body["temperature"], 0.3);
    assert_eq!(call.body["system"], ENHANCEMENT_SYSTEM_PROMPT);
    let user = call.body["messages"][0]["content"].as_str().unwrap();
    assert_eq!(call.body["messages"][0]["role"], "user");
    assert!(
        user.contains(
            "- Ticket 3900: Printer offline after the driver update... (Resolved: 2026-01-05)"
        ),
        "{user}"
    );
    assert!(user.contains("System: prn-01 (10.0.0.7)"), "{user}");
    assert!(!user.contains("Sup3rS3cret"), "secrets never leave: {user}");
}

#[tokio::test]
async fn openrouter_sends_chat_completions_with_its_headers() {
    let mock = mock().await;
    mock.push(Behaviour::text(
        "## Recommended Next Steps\n1. Restart the spooler.",
    ));
    let s = openrouter(&mock, KEY).synthesize(&prompt()).await.unwrap();
    assert_eq!(s.text, "## Recommended Next Steps\n1. Restart the spooler.");
    assert_eq!((s.input_tokens, s.output_tokens), (100, 50));
    assert_eq!(s.model, "openai/gpt-4o-mini");
    let expected = (100.0 * 0.15 + 50.0 * 0.6) / 1_000_000.0;
    assert!((s.cost_usd - expected).abs() < 1e-15, "{}", s.cost_usd);

    let log = calls(&mock);
    let call = &log[0];
    assert_eq!(call.path, "/api/v1/chat/completions");
    assert_eq!(call.headers["authorization"], "[redacted]");
    assert_eq!(call.headers["http-referer"], "https://msp.example");
    assert_eq!(call.headers["x-title"], "csp tickets");
    assert_eq!(call.body["max_tokens"], 1000);
    assert_eq!(call.body["temperature"], 0.3);
    assert_eq!(
        call.body["messages"][0],
        json!({"role": "system", "content": ENHANCEMENT_SYSTEM_PROMPT})
    );
    assert_eq!(call.body["messages"][1]["role"], "user");
}

#[tokio::test]
async fn the_demo_model_answers_an_enhancement_on_both_wires() {
    let mock = mock().await;
    for synth in [anthropic(&mock, KEY), openrouter(&mock, KEY)] {
        let s = synth.synthesize(&prompt()).await.unwrap();
        for section in SECTIONS {
            assert!(s.text.contains(section), "{section} in {}", s.text);
        }
        assert!(
            s.text.contains("3900")
                && s.text.contains("Printer troubleshooting")
                && s.text.contains("prn-01"),
            "{}",
            s.text
        );
        assert!(s.input_tokens > 100 && s.output_tokens > 50);
        let note = compose_note(
            Ok(s),
            &context(),
            NoteOptions {
                max_words: 500,
                format: NoteFormat::Html,
            },
        );
        assert!(
            note.body.starts_with("<h2>Similar Tickets</h2>"),
            "{}",
            note.body
        );
        assert!(!note.truncated);
    }
    let sources: Vec<_> = calls(&mock).iter().map(|e| e.source).collect();
    assert_eq!(sources, [Some(csp_mock_llm::Source::Enhancement); 2]);
}

#[tokio::test]
async fn one_retry_after_a_transient_failure() {
    let mock = mock().await;
    for synth in [anthropic(&mock, KEY), openrouter(&mock, KEY)] {
        mock.reset();
        mock.push(Behaviour::http_error(529));
        mock.push(Behaviour::text("## Similar Tickets\nok"));
        let s = synth.synthesize(&prompt()).await.unwrap();
        assert_eq!(s.text, "## Similar Tickets\nok");
        assert_eq!(calls(&mock).len(), 2);

        // Two failures: the second is the answer.
        mock.reset();
        mock.push(Behaviour::http_error(503));
        mock.push(Behaviour::http_error(500));
        mock.push(Behaviour::text("never asked"));
        let e = synth.synthesize(&prompt()).await.unwrap_err();
        assert!(
            matches!(e, SynthesisError::Http { status: 500, .. }),
            "{e:?}"
        );
        assert!(e.is_outage());
        assert_eq!(calls(&mock).len(), 2);
    }
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_never_shows_the_key() {
    let mock = mock().await;
    let wrong = "sk-wrong-key-abcdefghijklmnop";
    for synth in [anthropic(&mock, wrong), openrouter(&mock, wrong)] {
        mock.reset();
        let e = synth.synthesize(&prompt()).await.unwrap_err();
        assert!(
            matches!(e, SynthesisError::Http { status: 401, .. }),
            "{e:?}"
        );
        assert!(!e.is_outage());
        assert!(!e.to_string().contains(wrong) && !format!("{e:?}").contains(wrong));
        assert_eq!(mock.log().len(), 1, "no retry on 401");
    }
    // A 400 echoing the key back is scrubbed too.
    mock.reset();
    mock.push(Behaviour::HttpError(csp_mock_llm::HttpError {
        status: 400,
        message: Some(format!("bad request from key {KEY}")),
        ..Default::default()
    }));
    let e = anthropic(&mock, KEY)
        .synthesize(&prompt())
        .await
        .unwrap_err();
    assert!(!e.to_string().contains(KEY), "{e}");
}

#[tokio::test]
async fn a_hang_times_out_twice_then_the_fallback_note_says_so() {
    let mock = mock().await;
    for synth in [anthropic(&mock, KEY), openrouter(&mock, KEY)] {
        mock.reset();
        mock.set_default(Some(
            serde_json::from_value(json!({"type": "hang", "first_byte_delay_ms": 5000})).unwrap(),
        ));
        let started = std::time::Instant::now();
        let e = synth.synthesize(&prompt()).await.unwrap_err();
        assert!(matches!(e, SynthesisError::Timeout(_)), "{e:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        assert_eq!(calls(&mock).len(), 2, "one retry");
        let note = compose_note(
            Err(SkipReason::from(e)),
            &context(),
            NoteOptions {
                max_words: 500,
                format: NoteFormat::Markdown,
            },
        );
        assert!(
            note.body
                .contains("Automatic analysis unavailable (model timed out)"),
            "{}",
            note.body
        );
        assert!(note.body.contains("- Ticket 3900"), "{}", note.body);
    }
}

#[tokio::test]
async fn a_cut_answer_is_retried_and_an_empty_one_is_an_error() {
    let mock = mock().await;
    for synth in [anthropic(&mock, KEY), openrouter(&mock, KEY)] {
        mock.reset();
        mock.push(serde_json::from_value(json!({"type": "cut"})).unwrap());
        mock.push(Behaviour::text("## Similar Tickets\nafter the cut"));
        let s = synth.synthesize(&prompt()).await.unwrap();
        assert_eq!(s.text, "## Similar Tickets\nafter the cut");

        mock.reset();
        mock.push(Behaviour::text(""));
        let e = synth.synthesize(&prompt()).await.unwrap_err();
        assert_eq!(e, SynthesisError::Empty);
    }
}

#[tokio::test]
async fn openrouter_reported_cost_wins_over_the_price_table() {
    let mock = mock().await;
    mock.push(Behaviour::HttpError(csp_mock_llm::HttpError {
        status: 200,
        body: Some(json!({
            "id": "gen-1", "object": "chat.completion", "model": "openai/gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "## Similar Tickets\nx"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 194, "completion_tokens": 2, "total_tokens": 196, "cost": 0.95}
        })),
        ..Default::default()
    }));
    let s = openrouter(&mock, KEY).synthesize(&prompt()).await.unwrap();
    assert_eq!(s.cost_usd, 0.95);
    assert_eq!((s.input_tokens, s.output_tokens), (194, 2));

    mock.push(Behaviour::HttpError(csp_mock_llm::HttpError {
        status: 200,
        body: Some(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "content_filter"}],
        })),
        ..Default::default()
    }));
    let e = openrouter(&mock, KEY)
        .synthesize(&prompt())
        .await
        .unwrap_err();
    assert_eq!(e, SynthesisError::Refused);
}

#[tokio::test]
async fn an_anthropic_refusal_is_refused() {
    let mock = mock().await;
    mock.push(Behaviour::HttpError(csp_mock_llm::HttpError {
        status: 200,
        body: Some(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [], "stop_reason": "refusal", "usage": {"input_tokens": 10, "output_tokens": 0}
        })),
        ..Default::default()
    }));
    let e = anthropic(&mock, KEY)
        .synthesize(&prompt())
        .await
        .unwrap_err();
    assert_eq!(e, SynthesisError::Refused);
}
