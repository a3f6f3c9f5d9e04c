use crate::{ErrorCode, SessionId};
use serde::{Deserialize, Serialize};

/// Lifecycle of a session as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// A cold start is under way ("Preparing your session (up to 30 seconds)...").
    Preparing,
    /// The agent answered `initialize` and takes messages.
    Ready,
    /// The agent could not be started or died; the conversation is kept.
    Failed,
    /// The agent process was stopped but the conversation is kept and
    /// resumable: reopening the session or sending a message continues it
    /// in a new process (`--resume`).
    Idle,
    /// Over for good (duration limit): a new session is needed.
    Ended,
}

impl SessionStatus {
    /// Every variant, for exhaustive mapping tests.
    pub const ALL: [SessionStatus; 5] = [
        SessionStatus::Preparing,
        SessionStatus::Ready,
        SessionStatus::Failed,
        SessionStatus::Idle,
        SessionStatus::Ended,
    ];

    /// The name in JSON (WebSocket frames, the REST API); the same as serde's.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Preparing => "preparing",
            SessionStatus::Ready => "ready",
            SessionStatus::Failed => "failed",
            SessionStatus::Idle => "idle",
            SessionStatus::Ended => "ended",
        }
    }

    /// The text in the store's `sessions.status` column. It differs from the
    /// JSON name for `Ready`, which rows have always called `active`.
    pub const fn store_text(self) -> &'static str {
        match self {
            SessionStatus::Ready => "active",
            other => other.as_str(),
        }
    }

    /// The inverse of [`SessionStatus::store_text`].
    pub fn from_store_text(text: &str) -> Result<Self, ParseStatusError> {
        Self::ALL
            .into_iter()
            .find(|s| s.store_text() == text)
            .ok_or_else(|| ParseStatusError::new("session status", text))
    }
}

/// Why a session changed state, when that is worth telling the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// Preparing: an earlier conversation is being restored (`--resume`).
    Resume,
    /// Preparing: the process is replaced after a resource limit.
    Restart,
    /// Idle: nobody was attached for `SESSION_IDLE_TIMEOUT_SECONDS`.
    IdleTimeout,
    /// Idle: the server is shutting down.
    Shutdown,
    /// Failed: the agent process ended unexpectedly.
    Crashed,
    /// Failed: the agent could not be started.
    StartFailed,
    /// Ended: `SESSION_MAX_DURATION_SECONDS` reached.
    DurationLimit,
}

impl StatusReason {
    /// Every variant, for exhaustive mapping tests.
    pub const ALL: [StatusReason; 7] = [
        StatusReason::Resume,
        StatusReason::Restart,
        StatusReason::IdleTimeout,
        StatusReason::Shutdown,
        StatusReason::Crashed,
        StatusReason::StartFailed,
        StatusReason::DurationLimit,
    ];

    /// The one name everywhere: JSON (serde's), the store's `ended_reason`
    /// and the proto's `SessionInfo.ended_reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StatusReason::Resume => "resume",
            StatusReason::Restart => "restart",
            StatusReason::IdleTimeout => "idle_timeout",
            StatusReason::Shutdown => "shutdown",
            StatusReason::Crashed => "crashed",
            StatusReason::StartFailed => "start_failed",
            StatusReason::DurationLimit => "duration_limit",
        }
    }
}

impl std::str::FromStr for StatusReason {
    type Err = ParseStatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseStatusError::new("status reason", s))
    }
}

impl std::fmt::Display for StatusReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no variant of a status vocabulary (a corrupt row, a
/// newer peer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct ParseStatusError {
    kind: &'static str,
    value: String,
}

impl ParseStatusError {
    pub fn new(kind: &'static str, value: &str) -> Self {
        Self {
            kind,
            value: value.chars().take(64).collect(),
        }
    }
}

/// A link offered with a notice or error, e.g. "Continue in new session".
/// `href` is always a same-origin path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "FrameAction"))]
pub struct Action {
    pub label: String,
    pub href: String,
}

/// Outcome of one tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    Complete,
    Error,
    /// The permission gate refused the call; `content` says why.
    Denied,
}

impl ToolStatus {
    /// The name in JSON (serde's) and in metrics labels and spans.
    pub const fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Complete => "complete",
            ToolStatus::Error => "error",
            ToolStatus::Denied => "denied",
        }
    }
}

/// What happened in a session. Serialised with a `type` tag: this is exactly
/// the WebSocket frame (see `docs/websocket-protocol.md`) minus its `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The session changed state.
    Session {
        status: SessionStatus,
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        session_id: SessionId,
        /// Label of the model in use, e.g. "offline demo model".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        reason: Option<StatusReason>,
    },
    /// A user message was handed to the agent (it starts a turn).
    UserMessage {
        text: String,
        /// Echo of the client's `client_id`, so a tab can match its local copy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        client_id: Option<String>,
    },
    /// A piece of the assistant's text, in order.
    Delta { text: String },
    /// A piece of the assistant's visible thinking.
    Thinking { text: String },
    /// The agent started a tool; `input` is the complete JSON input.
    ToolUse {
        tool_use_id: String,
        name: String,
        #[cfg_attr(feature = "ts", ts(type = "unknown"))]
        input: serde_json::Value,
    },
    /// A tool finished.
    ToolResult {
        tool_use_id: String,
        status: ToolStatus,
        duration_ms: u64,
        content: String,
    },
    /// The turn ended. `cost_usd` is this turn's cost as the CLI reported it;
    /// `total_cost_usd` the session's running total.
    Result {
        cost_usd: f64,
        total_cost_usd: f64,
        is_error: bool,
        /// Absent from events stored before it existed (history).
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        interrupted: bool,
        /// Absent from events stored before it existed (history).
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        duration_ms: u64,
    },
    /// Something went wrong; `message` is the catalogue's user-facing text.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        action: Option<Action>,
    },
    /// Informational: not an error, e.g. an automatic retry.
    Notice {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        action: Option<Action>,
        /// `session_expiring` only: whole minutes left, rounded up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        minutes_left: Option<u64>,
    },
}

impl Event {
    /// Builds the catalogued error event for `code`.
    pub fn error(code: ErrorCode) -> Self {
        Event::Error {
            code,
            message: code.user_message().to_owned(),
            action: None,
        }
    }

    /// Builds the catalogued notice for `code`.
    pub fn notice(code: ErrorCode) -> Self {
        Event::Notice {
            code,
            message: code.user_message().to_owned(),
            action: None,
            minutes_left: None,
        }
    }

    /// "Session will end in N minutes. Save your work."
    pub fn session_expiring(minutes_left: u64) -> Self {
        let unit = if minutes_left == 1 {
            "minute"
        } else {
            "minutes"
        };
        Event::Notice {
            code: ErrorCode::SessionExpiring,
            message: format!("Session will end in {minutes_left} {unit}. Save your work."),
            action: None,
            minutes_left: Some(minutes_left),
        }
    }

    /// The memory-restart notice with its working "Continue in new session" link.
    pub fn session_restarted(session: SessionId) -> Self {
        Event::Notice {
            code: ErrorCode::SessionRestarted,
            message: ErrorCode::SessionRestarted.user_message().to_owned(),
            action: Some(Action {
                label: "Continue in new session".into(),
                href: format!("/?session={session}"),
            }),
            minutes_left: None,
        }
    }

    /// A `session` state change.
    pub fn status(
        status: SessionStatus,
        session_id: SessionId,
        model: Option<String>,
        reason: Option<StatusReason>,
    ) -> Self {
        Event::Session {
            status,
            session_id,
            model,
            reason,
        }
    }

    /// The `type` tag, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Session { .. } => "session",
            Event::UserMessage { .. } => "user_message",
            Event::Delta { .. } => "delta",
            Event::Thinking { .. } => "thinking",
            Event::ToolUse { .. } => "tool_use",
            Event::ToolResult { .. } => "tool_result",
            Event::Result { .. } => "result",
            Event::Error { .. } => "error",
            Event::Notice { .. } => "notice",
        }
    }
}

/// One event of one session, with its per-session sequence number. Sequence
/// numbers start at 1 and have no gaps: a consumer that saw `seq = n` and
/// then sees `n + 2` knows it lost a frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub session_id: SessionId,
    pub seq: u64,
    pub event: Event,
    /// W3C `traceparent` of the turn that produced the event: carried in the
    /// bus message's headers, not its body, so the gateway's spans for
    /// relaying it join the turn's trace.
    #[serde(skip)]
    pub trace: Option<String>,
}

impl SessionEvent {
    /// The WebSocket frame for this event: the event's own fields plus `seq`.
    pub fn to_frame(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.event).expect("events always serialise");
        if let serde_json::Value::Object(map) = &mut v {
            map.insert("seq".into(), self.seq.into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_status_round_trips_through_store_text_and_json() {
        // A new variant fails to compile here: add it to `ALL` as well.
        let listed = |s: SessionStatus| match s {
            SessionStatus::Preparing
            | SessionStatus::Ready
            | SessionStatus::Failed
            | SessionStatus::Idle
            | SessionStatus::Ended => SessionStatus::ALL.contains(&s),
        };
        assert!(SessionStatus::ALL.into_iter().all(listed));
        for s in SessionStatus::ALL {
            assert_eq!(SessionStatus::from_store_text(s.store_text()), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
            assert_eq!(
                serde_json::from_value::<SessionStatus>(json!(s.as_str())).unwrap(),
                s
            );
        }
        // The texts the store has always held.
        let stored = SessionStatus::ALL.map(SessionStatus::store_text);
        assert_eq!(stored, ["preparing", "active", "failed", "idle", "ended"]);
        assert!(SessionStatus::from_store_text("ready").is_err());
    }

    #[test]
    fn status_reason_round_trips_through_text_and_json() {
        // A new variant fails to compile here: add it to `ALL` as well.
        let listed = |r: StatusReason| match r {
            StatusReason::Resume
            | StatusReason::Restart
            | StatusReason::IdleTimeout
            | StatusReason::Shutdown
            | StatusReason::Crashed
            | StatusReason::StartFailed
            | StatusReason::DurationLimit => StatusReason::ALL.contains(&r),
        };
        assert!(StatusReason::ALL.into_iter().all(listed));
        for r in StatusReason::ALL {
            assert_eq!(r.as_str().parse::<StatusReason>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
            assert_eq!(
                serde_json::from_value::<StatusReason>(json!(r.as_str())).unwrap(),
                r
            );
        }
        assert_eq!(StatusReason::DurationLimit.as_str(), "duration_limit");
        assert_eq!(StatusReason::IdleTimeout.as_str(), "idle_timeout");
        assert!("".parse::<StatusReason>().is_err());
    }

    #[test]
    fn frame_shapes_match_the_protocol_doc() {
        let sid: SessionId = "6f1c2d4e-0000-4000-8000-000000000001".parse().unwrap();
        let cases = [
            (
                Event::status(SessionStatus::Ready, sid, None, None),
                json!({"type":"session","status":"ready","session_id":sid.to_string(),"seq":1}),
            ),
            (
                Event::Delta { text: "Hi".into() },
                json!({"type":"delta","text":"Hi","seq":1}),
            ),
            (
                Event::ToolUse {
                    tool_use_id: "toolu_1".into(),
                    name: "Bash".into(),
                    input: json!({"command":"ls"}),
                },
                json!({"type":"tool_use","tool_use_id":"toolu_1","name":"Bash","input":{"command":"ls"},"seq":1}),
            ),
            (
                Event::ToolResult {
                    tool_use_id: "toolu_1".into(),
                    status: ToolStatus::Complete,
                    duration_ms: 12,
                    content: "a\nb".into(),
                },
                json!({"type":"tool_result","tool_use_id":"toolu_1","status":"complete","duration_ms":12,"content":"a\nb","seq":1}),
            ),
            (
                Event::Result {
                    cost_usd: 0.5,
                    total_cost_usd: 1.0,
                    is_error: false,
                    interrupted: false,
                    duration_ms: 3,
                },
                json!({"type":"result","cost_usd":0.5,"total_cost_usd":1.0,"is_error":false,"interrupted":false,"duration_ms":3,"seq":1}),
            ),
            (
                Event::status(
                    SessionStatus::Idle,
                    sid,
                    None,
                    Some(StatusReason::IdleTimeout),
                ),
                json!({"type":"session","status":"idle","session_id":sid.to_string(),"reason":"idle_timeout","seq":1}),
            ),
            (
                Event::session_expiring(24),
                json!({"type":"notice","code":"session_expiring","message":"Session will end in 24 minutes. Save your work.","minutes_left":24,"seq":1}),
            ),
            (
                Event::session_restarted(sid),
                json!({"type":"notice","code":"session_restarted","message":"Your session has been restarted to maintain performance. Your conversation history is preserved. [Continue in new session]","action":{"label":"Continue in new session","href":format!("/?session={sid}")},"seq":1}),
            ),
            (
                Event::error(ErrorCode::BadFrame),
                json!({"type":"error","code":"bad_frame","message":ErrorCode::BadFrame.user_message(),"seq":1}),
            ),
        ];
        for (event, want) in cases {
            let ev = SessionEvent {
                session_id: sid,
                seq: 1,
                event,
                trace: None,
            };
            assert_eq!(ev.to_frame(), want);
            let back: SessionEvent =
                serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
            assert_eq!(back, ev);
        }
    }
}
