use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`] from one table: each row gives a variant (with its
/// doc), its wire code, HTTP status, gRPC code, user text and suggested
/// action. The enum, every accessor and [`ErrorCode::ALL`] come from the
/// rows, so a code cannot be added to one mapping and forgotten in another.
macro_rules! catalogue {
    ($(
        $(#[$doc:meta])*
        $variant:ident => $code:literal, $http:literal, $grpc:ident,
            $text:literal,
            $action:literal;
    )+) => {
        /// Every failure a user can see, with its code, text and suggested
        /// action. The technical detail behind a failure is logged, never
        /// shown: users get `user_message()` only. One table maps each code
        /// to HTTP and gRPC status so that a failure reads the same wherever
        /// it surfaces.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        pub enum ErrorCode {
            $(
                $(#[$doc])*
                #[serde(rename = $code)]
                $variant,
            )+
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The wire code (`snake_case`), as in JSON and gRPC details.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }

            /// What happened, in words a user understands.
            pub fn user_message(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)+
                }
            }

            /// What the user can do about it.
            pub fn suggested_action(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $action,)+
                }
            }

            /// The HTTP status this failure maps to.
            pub fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $http,)+
                }
            }

            /// The gRPC status code (numeric, as in `tonic::Code`) this failure maps to.
            pub fn grpc_code(self) -> i32 {
                match self {
                    $(ErrorCode::$variant => grpc::$grpc,)+
                }
            }
        }
    };
}

/// The gRPC status codes the catalogue uses (numbers as in `tonic::Code`;
/// this crate does no I/O and does not depend on tonic).
mod grpc {
    /// Notices: nothing failed.
    pub(super) const OK: i32 = 0;
    pub(super) const INVALID_ARGUMENT: i32 = 3;
    pub(super) const NOT_FOUND: i32 = 5;
    pub(super) const ALREADY_EXISTS: i32 = 6;
    pub(super) const PERMISSION_DENIED: i32 = 7;
    pub(super) const RESOURCE_EXHAUSTED: i32 = 8;
    pub(super) const FAILED_PRECONDITION: i32 = 9;
    pub(super) const INTERNAL: i32 = 13;
    pub(super) const UNAVAILABLE: i32 = 14;
    pub(super) const UNAUTHENTICATED: i32 = 16;
}

catalogue! {
    /// A WebSocket frame that is not valid JSON or lacks a field.
    BadFrame => "bad_frame", 400, INVALID_ARGUMENT,
        "That message could not be read. Please try again.",
        "Reload the page.";
    /// A WebSocket frame with an unknown `type`.
    UnknownType => "unknown_type", 400, INVALID_ARGUMENT,
        "That request is not supported by this server.",
        "Reload the page.";
    /// A WebSocket frame over the size limit.
    FrameTooLarge => "frame_too_large", 400, INVALID_ARGUMENT,
        "That message is too long. Please shorten it and try again.",
        "Send a shorter message.";
    /// An empty message was sent.
    EmptyMessage => "empty_message", 400, INVALID_ARGUMENT,
        "Type a message before sending.",
        "Type a message.";
    /// No valid credentials.
    Unauthenticated => "unauthenticated", 401, UNAUTHENTICATED,
        "Please sign in to continue.",
        "Sign in again.";
    /// Wrong username or password.
    BadCredentials => "bad_credentials", 401, UNAUTHENTICATED,
        "Wrong username or password.",
        "Sign in again.";
    /// The user has no access to this resource.
    Forbidden => "forbidden", 403, PERMISSION_DENIED,
        "You do not have access to this.",
        "Contact your administrator.";
    /// The session does not exist or is not the user's.
    SessionNotFound => "session_not_found", 404, NOT_FOUND,
        "That session does not exist or is not yours.",
        "Start a new session.";
    /// No such API route or resource.
    NotFound => "not_found", 404, NOT_FOUND,
        "There is nothing at this address.",
        "Check the address.";
    /// Every session slot is taken.
    AtCapacity => "at_capacity", 503, RESOURCE_EXHAUSTED,
        "All agent sessions are in use right now. Please try again in a minute.",
        "Try again in a minute.";
    /// The user already holds `MAX_SESSIONS_PER_USER` sessions, none of
    /// which can yield (each is open or busy); the text names the number.
    TooManySessions => "too_many_sessions", 429, RESOURCE_EXHAUSTED,
        "You already have the most active sessions allowed. Close one to start another.",
        "Close a chat you no longer need, or wait for its reply to finish.";
    /// The session is not ready for messages (failed or ended).
    SessionUnavailable => "session_unavailable", 409, FAILED_PRECONDITION,
        "This session has ended. You can start a new session.",
        "Start a new session.";
    /// Too many messages wait behind the turn in flight.
    QueueFull => "queue_full", 429, RESOURCE_EXHAUSTED,
        "Too many messages are waiting. Wait for the current reply to finish.",
        "Wait, then send again.";
    /// The agent process exited or broke its protocol mid-turn.
    AgentCrashed => "agent_crashed", 500, INTERNAL,
        "The agent stopped unexpectedly. Your conversation is saved; send a message to continue it.",
        "Send a message to continue.";
    /// The agent could not be started.
    AgentStartFailed => "agent_start_failed", 500, INTERNAL,
        "The agent could not be started. Please try again in a minute.",
        "Try again in a minute.";
    /// The model API failed mid-response; the partial answer is kept.
    ResponseInterrupted => "response_interrupted", 500, INTERNAL,
        "Response interrupted. You can retry.",
        "Send your message again.";
    /// The model API is rate limiting; the CLI retries by itself.
    RateLimited => "rate_limited", 429, RESOURCE_EXHAUSTED,
        "The AI service is temporarily busy. Your message will be retried automatically in a few seconds.",
        "Wait; no action needed.";
    /// A backend (database, bus, another service) is unreachable.
    Unavailable => "unavailable", 503, UNAVAILABLE,
        "The service is temporarily unavailable. Please try again shortly.",
        "Try again in a minute.";
    /// Notice: the session nears `SESSION_MAX_DURATION_SECONDS`.
    SessionExpiring => "session_expiring", 200, OK,
        "Session will end soon. Save your work.",
        "Save your work.";
    /// The session reached its duration limit and ended.
    DurationLimit => "duration_limit", 409, FAILED_PRECONDITION,
        "Session ended (duration limit). You can start a new session.",
        "Start a new session.";
    /// Notice: the agent is being replaced after exceeding its memory limit.
    SessionRestarting => "session_restarting", 503, UNAVAILABLE,
        "Session restarting due to resource limits",
        "Wait; no action needed.";
    /// Notice: the replacement agent continues the conversation.
    SessionRestarted => "session_restarted", 200, OK,
        "Your session has been restarted to maintain performance. Your conversation history is preserved. [Continue in new session]",
        "Continue in the new session.";
    /// Notice: the earlier conversation could not be restored; a fresh agent starts.
    ResumeFailed => "resume_failed", 200, OK,
        "Previous session could not be restored. Starting a new session.",
        "Repeat what the agent needs to know.";
    /// The model API circuit breaker is open: nothing was sent.
    ModelUnavailable => "model_unavailable", 503, UNAVAILABLE,
        "The AI service is temporarily unavailable. We are monitoring the situation.",
        "Try again in a few minutes.";
    /// The model API kept failing after the CLI's retries.
    ModelApiFailed => "model_api_failed", 502, INTERNAL,
        "The AI service could not answer, even after several retries. Please try again in a minute.",
        "Try again in a few minutes.";
    /// The model API stopped responding mid-turn; the turn was stopped.
    ModelStalled => "model_stalled", 502, INTERNAL,
        "The AI service stopped responding, so this reply was stopped. You can retry.",
        "Send your message again.";
    /// The server is shutting down (sent to every connection).
    ServerShuttingDown => "server_shutting_down", 503, UNAVAILABLE,
        "The server is restarting. Your current reply will finish and your conversation is saved; this page reconnects by itself.",
        "Wait; no action needed.";
    /// The user's monthly budget is used up (policy; the text carries the figures).
    BudgetExceeded => "budget_exceeded", 402, RESOURCE_EXHAUSTED,
        "Monthly budget exceeded. Contact your administrator to increase your limit.",
        "Contact your administrator.";
    /// The user's role does not allow this action (policy; the text names the role).
    PermissionDenied => "permission_denied", 403, PERMISSION_DENIED,
        "Insufficient permissions.",
        "Contact your administrator.";
    AccountDeactivated => "account_deactivated", 401, UNAUTHENTICATED,
        "This account has been deactivated. Contact your administrator.",
        "Contact your administrator.";
    BudgetWarning => "budget_warning", 200, OK,
        "You have used most of your monthly budget.",
        "Contact your administrator if you need more.";
    PermissionsChanged => "permissions_changed", 200, OK,
        "Your permissions have changed. Some tools are no longer available.",
        "Contact your administrator.";
    InvalidRequest => "invalid_request", 400, INVALID_ARGUMENT,
        "The request is not valid.",
        "Correct the request and try again.";
    UsernameTaken => "username_taken", 409, ALREADY_EXISTS,
        "That username is already taken.",
        "Choose another username.";
    /// No plugin of that name in `PLUGINS_DIR`.
    PluginNotFound => "plugin_not_found", 404, NOT_FOUND,
        "There is no plugin of that name.",
        "Rescan the plugins directory or check the name.";
    /// The plugin cannot be activated now (the text says why).
    PluginNotActivatable => "plugin_not_activatable", 409, FAILED_PRECONDITION,
        "This plugin cannot be activated yet.",
        "Fix what the message names, then try again.";
    /// A plugin configuration does not fit its `config_schema` (the text names the fields).
    InvalidPluginConfig => "invalid_plugin_config", 400, INVALID_ARGUMENT,
        "The plugin configuration is not valid.",
        "Correct the named fields and save again.";
    /// Too many failed logins for this account or from this address; the
    /// answer carries `Retry-After`.
    TooManyLoginAttempts => "too_many_login_attempts", 429, RESOURCE_EXHAUSTED,
        "Too many failed sign-in attempts. Please wait before trying again.",
        "Wait, then sign in again.";
    /// A request body in a media type the route does not take (login: JSON only).
    UnsupportedMediaType => "unsupported_media_type", 415, INVALID_ARGUMENT,
        "This request must be sent as JSON.",
        "Send the body with Content-Type: application/json.";
    /// No tenant with this id, or an inactive one (one answer for both, so
    /// webhook callers cannot probe which tenants exist).
    TenantNotFound => "tenant_not_found", 404, NOT_FOUND,
        "Unknown or inactive tenant.",
        "Check the tenant id in the webhook URL or payload.";
    /// A tenant with this id exists already (active or not).
    TenantExists => "tenant_exists", 409, ALREADY_EXISTS,
        "A tenant with this tenant_id already exists.",
        "Choose another tenant_id, or edit the existing tenant.";
    /// A tenant's settings are not valid (the text names the field).
    InvalidTenant => "invalid_tenant", 400, INVALID_ARGUMENT,
        "The tenant settings are not valid.",
        "Correct the named field and save again.";
    /// A webhook without a valid signature, or signed too long ago.
    WebhookSignatureInvalid => "webhook_signature_invalid", 401, UNAUTHENTICATED,
        "The webhook signature is missing, invalid or expired.",
        "Sign the request with the tenant's webhook secret and a current timestamp.";
    /// Too many webhooks for one tenant; the answer carries `Retry-After`.
    WebhookRateLimited => "webhook_rate_limited", 429, RESOURCE_EXHAUSTED,
        "Too many webhooks for this tenant. Please retry later.",
        "Retry after the number of seconds in Retry-After.";
    /// A webhook payload that is not valid (the text names the field).
    InvalidWebhook => "invalid_webhook", 400, INVALID_ARGUMENT,
        "The webhook payload is not valid.",
        "Correct the named field and send it again.";
    /// A request body over its size limit.
    PayloadTooLarge => "payload_too_large", 413, INVALID_ARGUMENT,
        "The request body is too large.",
        "Send a smaller body.";
    /// No enhancement job with this id.
    EnhancementNotFound => "enhancement_not_found", 404, NOT_FOUND,
        "That enhancement job does not exist.",
        "Check the job id.";
    /// No tickets worker with this id has a heartbeat (it stopped, or its
    /// last heartbeat expired).
    WorkerNotFound => "worker_not_found", 404, NOT_FOUND,
        "That worker is not running: it has sent no heartbeat in the last hour.",
        "Refresh the Workers page.";
    /// Anything else.
    Internal => "internal", 500, INTERNAL,
        "Something went wrong on our side. Please try again.",
        "Try again in a minute.";
}

impl ErrorCode {
    /// Parses `as_str()` back; unknown codes become `Internal`.
    pub fn from_str_lossy(s: &str) -> Self {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .unwrap_or(ErrorCode::Internal)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_strings_and_serde() {
        for &c in ErrorCode::ALL {
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
    fn all_lists_every_code_once_with_unique_wire_strings() {
        let variants: std::collections::HashSet<_> = ErrorCode::ALL.iter().collect();
        assert_eq!(variants.len(), ErrorCode::ALL.len(), "a code listed twice");
        let codes: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            codes.len(),
            ErrorCode::ALL.len(),
            "two codes share a wire string"
        );
        // Every variant serde knows is in `ALL`: each wire string names one.
        for c in ErrorCode::ALL {
            let back: ErrorCode = serde_json::from_value(c.as_str().into()).unwrap();
            assert_eq!(back, *c);
        }
        // Anchors: the table's length and both ends, against silent loss.
        assert_eq!(ErrorCode::ALL.len(), 49);
        assert_eq!(ErrorCode::ALL.first(), Some(&ErrorCode::BadFrame));
        assert_eq!(ErrorCode::ALL.last(), Some(&ErrorCode::Internal));
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
