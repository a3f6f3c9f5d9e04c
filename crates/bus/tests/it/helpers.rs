use std::ops::RangeInclusive;
use std::time::Duration;

use csp_bus::{Error, EventBus, EventStream};
use csp_domain::{ErrorCode, Event, SessionEvent, SessionId, SessionStatus, ToolStatus};
use futures::StreamExt;

/// Only guards against a hang: a test waiting this long for an event has
/// already failed.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// Event `seq` of `session`, of a kind that varies with `seq` so that every
/// shape crosses the bus.
pub(crate) fn event(session: SessionId, seq: u64) -> SessionEvent {
    let event = match seq % 6 {
        0 => Event::Session {
            status: SessionStatus::Ready,
            session_id: session,
            model: Some("offline demo model".into()),
            reason: None,
        },
        1 => Event::Delta {
            text: format!("token {seq} — ünïcode \"quoted\"\n"),
        },
        2 => Event::ToolUse {
            tool_use_id: format!("toolu_{seq}"),
            name: "Bash".into(),
            input: serde_json::json!({ "command": "ls -la", "n": seq }),
        },
        3 => Event::ToolResult {
            tool_use_id: format!("toolu_{seq}"),
            status: ToolStatus::Complete,
            duration_ms: seq,
            content: "a\nb".into(),
        },
        4 => Event::Result {
            cost_usd: 0.25,
            total_cost_usd: seq as f64,
            is_error: false,
            interrupted: false,
            duration_ms: 3,
        },
        _ => Event::error(ErrorCode::ResponseInterrupted),
    };
    SessionEvent {
        session_id: session,
        seq,
        event,
        trace: None,
    }
}

pub(crate) async fn publish_range(
    bus: &dyn EventBus,
    session: SessionId,
    seqs: RangeInclusive<u64>,
) {
    for seq in seqs {
        bus.publish(&event(session, seq))
            .await
            .unwrap_or_else(|err| panic!("publish {seq}: {err}"));
    }
}

/// The stream's next item; panics if the stream ended.
pub(crate) async fn next(stream: &mut EventStream) -> Result<SessionEvent, Error> {
    tokio::time::timeout(HANG_GUARD, stream.next())
        .await
        .expect("the bus delivered nothing")
        .expect("the stream ended")
}

/// Asserts that the next events are exactly `seqs` of `session`, complete.
pub(crate) async fn expect_events(
    stream: &mut EventStream,
    session: SessionId,
    seqs: RangeInclusive<u64>,
) {
    for seq in seqs {
        let got = next(stream)
            .await
            .unwrap_or_else(|err| panic!("waiting for seq {seq}: {err}"));
        assert_eq!(got, event(session, seq));
    }
}

/// Asserts that the stream ended.
pub(crate) async fn expect_end(stream: &mut EventStream) {
    let item = tokio::time::timeout(HANG_GUARD, stream.next())
        .await
        .expect("the stream neither ended nor yielded");
    assert!(item.is_none(), "expected the end, got {item:?}");
}
