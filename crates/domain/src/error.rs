use serde::{Deserialize, Serialize};

/// Every failure a user can see, with its code, text and suggested action.
/// The technical detail behind a failure is logged, never shown: users get
/// `user_message()` only. One table maps each code to HTTP and gRPC status so
/// that a failure reads the same wherever it surfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A WebSocket frame that is not valid JSON or lacks a field.
    BadFrame,
    /// A WebSocket frame with an unknown `type`.
    UnknownType,
    /// A WebSocket frame over the size limit.
    FrameTooLarge,
    /// An empty message was sent.
    EmptyMessage,
    /// No valid credentials.
    Unauthenticated,
    /// Wrong username or password.
    BadCredentials,
    /// The user has no access to this resource.
    Forbidden,
    /// The session does not exist or is not the user's.
    SessionNotFound,
    /// No such API route or resource.
    NotFound,
    /// Every session slot is taken.
    AtCapacity,
    /// The user already holds `MAX_SESSIONS_PER_USER` sessions, none of
    /// which can yield (each is open or busy); the text names the number.
    TooManySessions,
    /// The session is not ready for messages (failed or ended).
    SessionUnavailable,
    /// Too many messages wait behind the turn in flight.
    QueueFull,
    /// The agent process exited or broke its protocol mid-turn.
    AgentCrashed,
    /// The agent could not be started.
    AgentStartFailed,
    /// The model API failed mid-response; the partial answer is kept.
    ResponseInterrupted,
    /// The model API is rate limiting; the CLI retries by itself.
    RateLimited,
    /// A backend (database, bus, another service) is unreachable.
    Unavailable,
    /// Notice: the session nears `SESSION_MAX_DURATION_SECONDS`.
    SessionExpiring,
    /// The session reached its duration limit and ended.
    DurationLimit,
    /// Notice: the agent is being replaced after exceeding its memory limit.
    SessionRestarting,
    /// Notice: the replacement agent continues the conversation.
    SessionRestarted,
    /// Notice: the earlier conversation could not be restored; a fresh agent starts.
    ResumeFailed,
    /// The model API circuit breaker is open: nothing was sent.
    ModelUnavailable,
    /// The model API kept failing after the CLI's retries.
    ModelApiFailed,
    /// The model API stopped responding mid-turn; the turn was stopped.
    ModelStalled,
    /// The server is shutting down (sent to every connection).
    ServerShuttingDown,
    /// The user's monthly budget is used up (policy; the text carries the figures).
    BudgetExceeded,
    /// The user's role does not allow this action (policy; the text names the role).
    PermissionDenied,
    AccountDeactivated,
    BudgetWarning,
    PermissionsChanged,
    InvalidRequest,
    UsernameTaken,
    /// No plugin of that name in `PLUGINS_DIR`.
    PluginNotFound,
    /// The plugin cannot be activated now (the text says why).
    PluginNotActivatable,
    /// A plugin configuration does not fit its `config_schema` (the text names the fields).
    InvalidPluginConfig,
    /// Too many failed logins for this account or from this address; the
    /// answer carries `Retry-After`.
    TooManyLoginAttempts,
    /// A request body in a media type the route does not take (login: JSON only).
    UnsupportedMediaType,
    /// Anything else.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::EmptyMessage => "empty_message",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::SessionNotFound => "session_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AtCapacity => "at_capacity",
            ErrorCode::TooManySessions => "too_many_sessions",
            ErrorCode::SessionUnavailable => "session_unavailable",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::AgentCrashed => "agent_crashed",
            ErrorCode::AgentStartFailed => "agent_start_failed",
            ErrorCode::ResponseInterrupted => "response_interrupted",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::SessionExpiring => "session_expiring",
            ErrorCode::DurationLimit => "duration_limit",
            ErrorCode::SessionRestarting => "session_restarting",
            ErrorCode::SessionRestarted => "session_restarted",
            ErrorCode::ResumeFailed => "resume_failed",
            ErrorCode::ModelUnavailable => "model_unavailable",
            ErrorCode::ModelApiFailed => "model_api_failed",
            ErrorCode::ModelStalled => "model_stalled",
            ErrorCode::ServerShuttingDown => "server_shutting_down",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::AccountDeactivated => "account_deactivated",
            ErrorCode::BudgetWarning => "budget_warning",
            ErrorCode::PermissionsChanged => "permissions_changed",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::PluginNotFound => "plugin_not_found",
            ErrorCode::PluginNotActivatable => "plugin_not_activatable",
            ErrorCode::InvalidPluginConfig => "invalid_plugin_config",
            ErrorCode::TooManyLoginAttempts => "too_many_login_attempts",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Internal => "internal",
        }
    }

    /// Parses `as_str()` back; unknown codes become `Internal`.
    pub fn from_str_lossy(s: &str) -> Self {
        ALL.iter()
            .copied()
            .find(|c| c.as_str() == s)
            .unwrap_or(ErrorCode::Internal)
    }

    /// What happened, in words a user understands.
    pub fn user_message(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "That message could not be read. Please try again.",
            ErrorCode::UnknownType => "That request is not supported by this server.",
            ErrorCode::FrameTooLarge => {
                "That message is too long. Please shorten it and try again."
            }
            ErrorCode::EmptyMessage => "Type a message before sending.",
            ErrorCode::Unauthenticated => "Please sign in to continue.",
            ErrorCode::BadCredentials => "Wrong username or password.",
            ErrorCode::Forbidden => "You do not have access to this.",
            ErrorCode::SessionNotFound => "That session does not exist or is not yours.",
            ErrorCode::NotFound => "There is nothing at this address.",
            ErrorCode::AtCapacity => {
                "All agent sessions are in use right now. Please try again in a minute."
            }
            ErrorCode::TooManySessions => {
                "You already have the most active sessions allowed. Close one to start another."
            }
            ErrorCode::SessionUnavailable => "This session has ended. You can start a new session.",
            ErrorCode::QueueFull => {
                "Too many messages are waiting. Wait for the current reply to finish."
            }
            ErrorCode::AgentCrashed => {
                "The agent stopped unexpectedly. Your conversation is saved; send a message to continue it."
            }
            ErrorCode::AgentStartFailed => {
                "The agent could not be started. Please try again in a minute."
            }
            ErrorCode::ResponseInterrupted => "Response interrupted. You can retry.",
            ErrorCode::RateLimited => {
                "The AI service is temporarily busy. Your message will be retried automatically in a few seconds."
            }
            ErrorCode::Unavailable => {
                "The service is temporarily unavailable. Please try again shortly."
            }
            ErrorCode::SessionExpiring => "Session will end soon. Save your work.",
            ErrorCode::DurationLimit => {
                "Session ended (duration limit). You can start a new session."
            }
            ErrorCode::SessionRestarting => "Session restarting due to resource limits",
            ErrorCode::SessionRestarted => {
                "Your session has been restarted to maintain performance. Your conversation history is preserved. [Continue in new session]"
            }
            ErrorCode::ResumeFailed => {
                "Previous session could not be restored. Starting a new session."
            }
            ErrorCode::ModelUnavailable => {
                "The AI service is temporarily unavailable. We are monitoring the situation."
            }
            ErrorCode::ModelApiFailed => {
                "The AI service could not answer, even after several retries. Please try again in a minute."
            }
            ErrorCode::ModelStalled => {
                "The AI service stopped responding, so this reply was stopped. You can retry."
            }
            ErrorCode::ServerShuttingDown => {
                "The server is restarting. Your current reply will finish and your conversation is saved; this page reconnects by itself."
            }
            ErrorCode::BudgetExceeded => {
                "Monthly budget exceeded. Contact your administrator to increase your limit."
            }
            ErrorCode::PermissionDenied => "Insufficient permissions.",
            ErrorCode::AccountDeactivated => {
                "This account has been deactivated. Contact your administrator."
            }
            ErrorCode::BudgetWarning => "You have used most of your monthly budget.",
            ErrorCode::PermissionsChanged => {
                "Your permissions have changed. Some tools are no longer available."
            }
            ErrorCode::InvalidRequest => "The request is not valid.",
            ErrorCode::UsernameTaken => "That username is already taken.",
            ErrorCode::PluginNotFound => "There is no plugin of that name.",
            ErrorCode::PluginNotActivatable => "This plugin cannot be activated yet.",
            ErrorCode::InvalidPluginConfig => "The plugin configuration is not valid.",
            ErrorCode::TooManyLoginAttempts => {
                "Too many failed sign-in attempts. Please wait before trying again."
            }
            ErrorCode::UnsupportedMediaType => "This request must be sent as JSON.",
            ErrorCode::Internal => "Something went wrong on our side. Please try again.",
        }
    }

    /// What the user can do about it.
    pub fn suggested_action(self) -> &'static str {
        match self {
            ErrorCode::BadFrame | ErrorCode::UnknownType => "Reload the page.",
            ErrorCode::FrameTooLarge => "Send a shorter message.",
            ErrorCode::EmptyMessage => "Type a message.",
            ErrorCode::Unauthenticated | ErrorCode::BadCredentials => "Sign in again.",
            ErrorCode::Forbidden => "Contact your administrator.",
            ErrorCode::SessionNotFound | ErrorCode::SessionUnavailable => "Start a new session.",
            ErrorCode::NotFound => "Check the address.",
            ErrorCode::AgentCrashed => "Send a message to continue.",
            ErrorCode::DurationLimit => "Start a new session.",
            ErrorCode::SessionExpiring => "Save your work.",
            ErrorCode::SessionRestarting | ErrorCode::ServerShuttingDown => {
                "Wait; no action needed."
            }
            ErrorCode::SessionRestarted => "Continue in the new session.",
            ErrorCode::ResumeFailed => "Repeat what the agent needs to know.",
            ErrorCode::ModelUnavailable | ErrorCode::ModelApiFailed => {
                "Try again in a few minutes."
            }
            ErrorCode::ModelStalled => "Send your message again.",
            ErrorCode::BudgetExceeded | ErrorCode::PermissionDenied => {
                "Contact your administrator."
            }
            ErrorCode::AccountDeactivated => "Contact your administrator.",
            ErrorCode::BudgetWarning => "Contact your administrator if you need more.",
            ErrorCode::PermissionsChanged => "Contact your administrator.",
            ErrorCode::InvalidRequest => "Correct the request and try again.",
            ErrorCode::UsernameTaken => "Choose another username.",
            ErrorCode::PluginNotFound => "Rescan the plugins directory or check the name.",
            ErrorCode::PluginNotActivatable => "Fix what the message names, then try again.",
            ErrorCode::InvalidPluginConfig => "Correct the named fields and save again.",
            ErrorCode::TooManyLoginAttempts => "Wait, then sign in again.",
            ErrorCode::UnsupportedMediaType => "Send the body with Content-Type: application/json.",
            ErrorCode::QueueFull => "Wait, then send again.",
            ErrorCode::TooManySessions => {
                "Close a chat you no longer need, or wait for its reply to finish."
            }
            ErrorCode::AtCapacity
            | ErrorCode::AgentStartFailed
            | ErrorCode::Unavailable
            | ErrorCode::Internal => "Try again in a minute.",
            ErrorCode::ResponseInterrupted => "Send your message again.",
            ErrorCode::RateLimited => "Wait; no action needed.",
        }
    }

    /// The HTTP status this failure maps to.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadFrame
            | ErrorCode::UnknownType
            | ErrorCode::EmptyMessage
            | ErrorCode::FrameTooLarge => 400,
            ErrorCode::Unauthenticated | ErrorCode::BadCredentials => 401,
            ErrorCode::Forbidden | ErrorCode::PermissionDenied => 403,
            ErrorCode::BudgetExceeded => 402,
            ErrorCode::AccountDeactivated => 401,
            ErrorCode::BudgetWarning => 200,
            ErrorCode::PermissionsChanged => 200,
            ErrorCode::InvalidRequest => 400,
            ErrorCode::UsernameTaken => 409,
            ErrorCode::PluginNotFound => 404,
            ErrorCode::PluginNotActivatable => 409,
            ErrorCode::InvalidPluginConfig => 400,
            ErrorCode::TooManyLoginAttempts => 429,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::DurationLimit => 409,
            ErrorCode::ModelUnavailable
            | ErrorCode::ServerShuttingDown
            | ErrorCode::SessionRestarting => 503,
            ErrorCode::ModelApiFailed | ErrorCode::ModelStalled => 502,
            ErrorCode::SessionExpiring | ErrorCode::SessionRestarted | ErrorCode::ResumeFailed => {
                200
            }
            ErrorCode::SessionNotFound | ErrorCode::NotFound => 404,
            ErrorCode::SessionUnavailable => 409,
            ErrorCode::RateLimited | ErrorCode::QueueFull => 429,
            ErrorCode::AtCapacity | ErrorCode::Unavailable => 503,
            ErrorCode::TooManySessions => 429,
            ErrorCode::AgentCrashed
            | ErrorCode::AgentStartFailed
            | ErrorCode::ResponseInterrupted
            | ErrorCode::Internal => 500,
        }
    }

    /// The gRPC status code (numeric, as in `tonic::Code`) this failure maps to.
    pub fn grpc_code(self) -> i32 {
        match self {
            ErrorCode::BadFrame
            | ErrorCode::UnknownType
            | ErrorCode::EmptyMessage
            | ErrorCode::FrameTooLarge => 3, // InvalidArgument
            ErrorCode::Unauthenticated | ErrorCode::BadCredentials => 16, // Unauthenticated
            ErrorCode::Forbidden | ErrorCode::PermissionDenied => 7,      // PermissionDenied
            ErrorCode::BudgetExceeded => 8,                               // ResourceExhausted
            ErrorCode::AccountDeactivated => 16,                          // Unauthenticated
            ErrorCode::BudgetWarning => 0,                                // OK: notices
            ErrorCode::PermissionsChanged => 0,                           // OK: notices
            ErrorCode::InvalidRequest => 3,                               // InvalidArgument
            ErrorCode::UsernameTaken => 6,                                // AlreadyExists
            ErrorCode::PluginNotFound => 5,                               // NotFound
            ErrorCode::PluginNotActivatable => 9,                         // FailedPrecondition
            ErrorCode::InvalidPluginConfig => 3,                          // InvalidArgument
            ErrorCode::TooManyLoginAttempts => 8,                         // ResourceExhausted
            ErrorCode::UnsupportedMediaType => 3,                         // InvalidArgument
            ErrorCode::DurationLimit => 9,                                // FailedPrecondition
            ErrorCode::ModelUnavailable
            | ErrorCode::ServerShuttingDown
            | ErrorCode::SessionRestarting => 14, // Unavailable
            ErrorCode::ModelApiFailed | ErrorCode::ModelStalled => 13,    // Internal
            ErrorCode::SessionExpiring | ErrorCode::SessionRestarted | ErrorCode::ResumeFailed => 0, // OK: notices
            ErrorCode::SessionNotFound | ErrorCode::NotFound => 5, // NotFound
            ErrorCode::SessionUnavailable => 9,                    // FailedPrecondition
            ErrorCode::AtCapacity | ErrorCode::RateLimited | ErrorCode::QueueFull => 8, // ResourceExhausted
            ErrorCode::TooManySessions => 8, // ResourceExhausted
            ErrorCode::Unavailable => 14,    // Unavailable
            ErrorCode::AgentCrashed
            | ErrorCode::AgentStartFailed
            | ErrorCode::ResponseInterrupted
            | ErrorCode::Internal => 13, // Internal
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const ALL: [ErrorCode; 40] = [
    ErrorCode::BadFrame,
    ErrorCode::UnknownType,
    ErrorCode::FrameTooLarge,
    ErrorCode::EmptyMessage,
    ErrorCode::Unauthenticated,
    ErrorCode::BadCredentials,
    ErrorCode::Forbidden,
    ErrorCode::SessionNotFound,
    ErrorCode::NotFound,
    ErrorCode::AtCapacity,
    ErrorCode::TooManySessions,
    ErrorCode::SessionUnavailable,
    ErrorCode::QueueFull,
    ErrorCode::AgentCrashed,
    ErrorCode::AgentStartFailed,
    ErrorCode::ResponseInterrupted,
    ErrorCode::RateLimited,
    ErrorCode::Unavailable,
    ErrorCode::SessionExpiring,
    ErrorCode::DurationLimit,
    ErrorCode::SessionRestarting,
    ErrorCode::SessionRestarted,
    ErrorCode::ResumeFailed,
    ErrorCode::ModelUnavailable,
    ErrorCode::ModelApiFailed,
    ErrorCode::ModelStalled,
    ErrorCode::ServerShuttingDown,
    ErrorCode::BudgetExceeded,
    ErrorCode::PermissionDenied,
    ErrorCode::AccountDeactivated,
    ErrorCode::BudgetWarning,
    ErrorCode::PermissionsChanged,
    ErrorCode::InvalidRequest,
    ErrorCode::UsernameTaken,
    ErrorCode::PluginNotFound,
    ErrorCode::PluginNotActivatable,
    ErrorCode::InvalidPluginConfig,
    ErrorCode::TooManyLoginAttempts,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::Internal,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_strings_and_serde() {
        for c in ALL {
            assert_eq!(ErrorCode::from_str_lossy(c.as_str()), c);
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
            assert!(!c.user_message().is_empty() && !c.suggested_action().is_empty());
        }
        assert_eq!(ErrorCode::from_str_lossy("nope"), ErrorCode::Internal);
    }

    #[test]
    fn seed_texts_are_exact() {
        assert_eq!(
            ErrorCode::ResponseInterrupted.user_message(),
            "Response interrupted. You can retry."
        );
        for (code, text) in [
            (
                ErrorCode::DurationLimit,
                "Session ended (duration limit). You can start a new session.",
            ),
            (
                ErrorCode::SessionRestarting,
                "Session restarting due to resource limits",
            ),
            (
                ErrorCode::SessionRestarted,
                "Your session has been restarted to maintain performance. Your conversation history is preserved. [Continue in new session]",
            ),
            (
                ErrorCode::ResumeFailed,
                "Previous session could not be restored. Starting a new session.",
            ),
            (
                ErrorCode::ModelUnavailable,
                "The AI service is temporarily unavailable. We are monitoring the situation.",
            ),
        ] {
            assert_eq!(code.user_message(), text);
        }
        assert_eq!(
            ErrorCode::RateLimited.user_message(),
            "The AI service is temporarily busy. Your message will be retried automatically in a few seconds."
        );
    }
}
