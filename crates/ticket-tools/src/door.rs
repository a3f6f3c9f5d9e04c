//! The tool door's wire shape, shared by its two sides: the session-pool's
//! door (which decides) and [`DoorClient`], which the MCP server inside the
//! sandbox uses to forward a call.
//!
//! ## Request
//!
//! `POST {url}/v1/tools/{tool_name}` (see [`tool_path`]) with
//! `Authorization: Bearer <token>` and `Content-Type: application/json`; the
//! body is the tool's input exactly as the model gave it, at most
//! [`MAX_BODY`] bytes. The URL and token reach the MCP server in
//! [`URL_ENV`] and [`TOKEN_ENV`]; the token is per agent process and is the
//! only thing that says whose call this is: which session, so which tenant
//! and which user's role. Nothing in the path or body names a tenant.
//!
//! ## Reply
//!
//! Whatever the status, a JSON [`DoorReply`] of at most [`MAX_REPLY`] bytes,
//! whose `text` is shown to the model as it is:
//!
//! | Status | Meaning |
//! |---|---|
//! | 200 | the tool ran (`is_error: false`), or the input or the caller's role was refused (`is_error: true`, the text says why) |
//! | 401 | the token is unknown (the agent process it was issued to is gone) |
//! | 404 | no such tool |
//! | 413 | the body is larger than [`MAX_BODY`] |
//! | 503 | the platform cannot answer now (a backend is down, the session is ending) |
//!
//! A reply that is not 200 is an error for the model whatever its
//! `is_error` says.

use std::time::Duration;

use bytes::Bytes;
use csp_http::{HttpClient, Limits};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The door's base URL, e.g. `http://127.0.0.1:41234`.
pub const URL_ENV: &str = "CSP_TICKET_TOOLS_URL";
/// The bearer token of this agent process.
pub const TOKEN_ENV: &str = "CSP_TICKET_TOOLS_TOKEN";
/// The largest request body the door reads; larger ones get 413.
pub const MAX_BODY: usize = 64 * 1024;
/// The largest reply body [`DoorClient`] reads: a bound on what one tool
/// call can put into the model's context.
pub const MAX_REPLY: usize = 256 * 1024;
/// How long [`DoorClient`] waits for a whole reply.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Every tool's path starts with this; the tool's name follows.
pub const PATH_PREFIX: &str = "/v1/tools/";
/// What the model is told when the door cannot be reached or answers
/// something that is not a [`DoorReply`].
pub const UNREACHABLE: &str =
    "The platform's ticket tools cannot be reached right now; try again later.";

/// The path of a tool on the door: `/v1/tools/{tool}`.
pub fn tool_path(tool: &str) -> String {
    format!("{PATH_PREFIX}{tool}")
}

/// The door's answer to a tool call, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorReply {
    /// Shown to the model as the tool's result.
    pub text: String,
    /// Whether the call failed or was refused (MCP's `isError`).
    pub is_error: bool,
}

impl DoorReply {
    /// A tool's result.
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: false,
        }
    }

    /// A refusal or failure, explained to the model.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
        }
    }

    /// The door could not be reached or did not answer in its shape.
    pub fn unreachable() -> Self {
        Self::error(UNREACHABLE)
    }
}

/// Why a [`DoorClient`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} is not set; the session-pool sets it for the ticket tools' MCP server")]
    Missing(&'static str),
    #[error("{URL_ENV} must be an http:// or https:// base URL, such as http://127.0.0.1:41234")]
    InvalidUrl,
    #[error("{TOKEN_ENV} must be non-empty printable ASCII")]
    InvalidToken,
    #[error("the HTTP client could not be built: {0}")]
    Client(#[from] csp_http::HttpError),
}

/// Forwards tool calls to the door. Holds the token; `Debug` never shows it.
#[derive(Clone)]
pub struct DoorClient {
    url: String,
    token: SecretString,
    http: HttpClient,
    timeout: Duration,
}

impl std::fmt::Debug for DoorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorClient")
            .field("url", &self.url)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl DoorClient {
    /// A client of the door at `url` (its base: scheme, host, port).
    pub fn new(url: &str, token: SecretString) -> Result<Self, Error> {
        let url = url.trim().trim_end_matches('/').to_owned();
        let probe: http::Uri = format!("{url}{}", tool_path("probe"))
            .parse()
            .map_err(|_| Error::InvalidUrl)?;
        if !matches!(probe.scheme_str(), Some("http" | "https"))
            || probe.host().is_none_or(str::is_empty)
        {
            return Err(Error::InvalidUrl);
        }
        if token.expose_secret().is_empty() || http::HeaderValue::from_str(&bearer(&token)).is_err()
        {
            return Err(Error::InvalidToken);
        }
        Ok(Self {
            url,
            token,
            http: HttpClient::new()?,
            timeout: TIMEOUT,
        })
    }

    /// The client the session-pool configured for this process, from
    /// [`URL_ENV`] and [`TOKEN_ENV`].
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`DoorClient::from_env`] with the variables read by `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let url = lookup(URL_ENV).ok_or(Error::Missing(URL_ENV))?;
        let token = lookup(TOKEN_ENV).ok_or(Error::Missing(TOKEN_ENV))?;
        Self::new(&url, SecretString::from(token))
    }

    /// Waits at most `timeout` for a reply instead of [`TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Calls `tool` with the model's `input`. Never fails: whatever goes
    /// wrong becomes a reply with `is_error` set, for the model to read.
    pub async fn call(&self, tool: &str, input: &Value) -> DoorReply {
        // The name becomes a path segment; the caller checked it against the
        // catalogue, and anything else must not be able to walk the door's paths.
        if tool.is_empty() || !tool.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return DoorReply::error(format!("There is no ticket tool named {tool:?}."));
        }
        let body = match serde_json::to_vec(input) {
            Ok(body) => body,
            Err(_) => return DoorReply::error("The tool's input is not valid JSON."),
        };
        // The door would answer 413; saying so here spares the round trip.
        if body.len() > MAX_BODY {
            return DoorReply::error(format!(
                "The input is {} bytes; the ticket tools take at most {MAX_BODY}.",
                body.len()
            ));
        }
        let Ok(mut auth) = http::HeaderValue::from_str(&bearer(&self.token)) else {
            // Checked in `new`.
            return DoorReply::unreachable();
        };
        auth.set_sensitive(true);
        let request = http::Request::post(format!("{}{}", self.url, tool_path(tool)))
            .header(http::header::AUTHORIZATION, auth)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(body));
        let Ok(request) = request else {
            return DoorReply::unreachable();
        };
        let limits = Limits {
            timeout: self.timeout,
            max_body_bytes: MAX_REPLY,
        };
        let response = match self.http.send(request, limits).await {
            Ok(response) => response,
            Err(e) => {
                // stderr: the CLI keeps an MCP server's stderr in its debug log.
                tracing::warn!(tool, error = %e, "the ticket tools' door did not answer");
                return DoorReply::unreachable();
            }
        };
        let status = response.status();
        match serde_json::from_slice::<DoorReply>(response.body()) {
            Ok(reply) if status == http::StatusCode::OK => reply,
            Ok(reply) => {
                tracing::warn!(
                    tool,
                    status = status.as_u16(),
                    "the ticket tools' door refused a call"
                );
                DoorReply::error(reply.text)
            }
            Err(_) => {
                tracing::warn!(
                    tool,
                    status = status.as_u16(),
                    "the ticket tools' door answered something that is not a reply"
                );
                DoorReply::unreachable()
            }
        }
    }
}

fn bearer(token: &SecretString) -> String {
    format!("Bearer {}", token.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use serde_json::json;
    use std::net::SocketAddr;

    const TOKEN: &str = "door-token-0123456789";

    /// A door that checks the token and echoes what it received; the tool
    /// name picks a misbehaviour.
    async fn door() -> SocketAddr {
        async fn tool(
            Path(tool): Path<String>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> axum::response::Response {
            use axum::response::IntoResponse;
            let reply = |status: StatusCode, r: DoorReply| (status, axum::Json(r)).into_response();
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                != Some(&format!("Bearer {TOKEN}"))
            {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    DoorReply::error("This chat's ticket tools have expired."),
                );
            }
            match tool.as_str() {
                "echo" => {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let input: Value = serde_json::from_slice(&body).unwrap();
                    reply(
                        StatusCode::OK,
                        DoorReply::ok(json!({"input": input, "type": content_type}).to_string()),
                    )
                }
                "refused" => reply(StatusCode::OK, DoorReply::error("`query` is required.")),
                "busy" => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    // A door that forgot `is_error` on a non-200 is still an error.
                    DoorReply::ok("The ticket store is not answering."),
                ),
                "html" => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
                "huge" => reply(StatusCode::OK, DoorReply::ok("x".repeat(MAX_REPLY + 1))),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    reply(StatusCode::OK, DoorReply::ok("late"))
                }
                _ => reply(StatusCode::NOT_FOUND, DoorReply::error("No such tool.")),
            }
        }
        let app = Router::new().route("/v1/tools/{tool}", post(tool));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn client(addr: SocketAddr, token: &str) -> DoorClient {
        DoorClient::new(&format!("http://{addr}/"), SecretString::from(token)).unwrap()
    }

    #[test]
    fn the_reply_shape_is_text_and_is_error() {
        assert_eq!(
            serde_json::to_value(DoorReply::error("no")).unwrap(),
            json!({"text": "no", "is_error": true})
        );
        let reply: DoorReply =
            serde_json::from_value(json!({"text": "ok", "is_error": false})).unwrap();
        assert_eq!(reply, DoorReply::ok("ok"));
        assert_eq!(tool_path("search_kb"), "/v1/tools/search_kb");
    }

    #[tokio::test]
    async fn a_call_carries_the_token_and_the_input_as_given() {
        let addr = door().await;
        let input = json!({"query": " VPN ", "tenant_id": "other", "n": [1, 2]});
        let reply = client(addr, TOKEN).call("echo", &input).await;
        assert!(!reply.is_error, "{reply:?}");
        let seen: Value = serde_json::from_str(&reply.text).unwrap();
        assert_eq!(seen["input"], input);
        assert_eq!(seen["type"], "application/json");
    }

    #[tokio::test]
    async fn the_doors_refusals_reach_the_model_as_errors() {
        let addr = door().await;
        let c = client(addr, TOKEN);
        assert_eq!(
            c.call("refused", &json!({})).await,
            DoorReply::error("`query` is required.")
        );
        assert_eq!(
            c.call("busy", &json!({})).await,
            DoorReply::error("The ticket store is not answering.")
        );
        assert_eq!(
            c.call("nope", &json!({})).await,
            DoorReply::error("No such tool.")
        );
        assert_eq!(
            client(addr, "stale-token").call("echo", &json!({})).await,
            DoorReply::error("This chat's ticket tools have expired.")
        );
    }

    #[tokio::test]
    async fn what_is_not_a_reply_reads_as_unreachable() {
        let addr = door().await;
        let c = client(addr, TOKEN);
        assert_eq!(c.call("html", &json!({})).await, DoorReply::unreachable());
        assert_eq!(c.call("huge", &json!({})).await, DoorReply::unreachable());
        let slow = c.clone().with_timeout(Duration::from_millis(200));
        let started = std::time::Instant::now();
        assert_eq!(
            slow.call("slow", &json!({})).await,
            DoorReply::unreachable()
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            DoorReply::unreachable().text,
            "The platform's ticket tools cannot be reached right now; try again later."
        );
    }

    #[tokio::test]
    async fn a_closed_port_reads_as_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let reply = client(addr, TOKEN).call("echo", &json!({})).await;
        assert_eq!(reply, DoorReply::unreachable());
        assert!(reply.is_error);
    }

    #[tokio::test]
    async fn an_oversized_input_or_a_strange_name_never_leaves() {
        // No door listens here: these replies are made without a call.
        let c = DoorClient::new("http://127.0.0.1:9", SecretString::from(TOKEN)).unwrap();
        let reply = c
            .call("search_kb", &json!({"query": "x".repeat(MAX_BODY)}))
            .await;
        assert!(
            reply.is_error && reply.text.contains("at most 65536"),
            "{reply:?}"
        );
        for name in ["", "../admin", "search_kb/../x", "Search_KB", "a b"] {
            let reply = c.call(name, &json!({})).await;
            assert!(
                reply.is_error && reply.text.starts_with("There is no ticket tool"),
                "{name:?}: {reply:?}"
            );
        }
    }

    #[test]
    fn the_environment_is_checked_with_clear_errors() {
        let vars = |url: Option<&str>, token: Option<&str>| {
            let (url, token) = (url.map(str::to_owned), token.map(str::to_owned));
            move |name: &str| match name {
                URL_ENV => url.clone(),
                TOKEN_ENV => token.clone(),
                _ => None,
            }
        };
        let err = DoorClient::from_lookup(vars(None, Some(TOKEN))).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("CSP_TICKET_TOOLS_URL is not set"),
            "{err}"
        );
        let err = DoorClient::from_lookup(vars(Some("http://127.0.0.1:1"), None)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("CSP_TICKET_TOOLS_TOKEN is not set"),
            "{err}"
        );
        for url in ["127.0.0.1:8080", "ftp://127.0.0.1", "http://", "not a url"] {
            let err = DoorClient::from_lookup(vars(Some(url), Some(TOKEN))).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl), "{url}: {err}");
        }
        for token in ["", "line\nbreak"] {
            let err =
                DoorClient::from_lookup(vars(Some("http://127.0.0.1:1"), Some(token))).unwrap_err();
            assert!(matches!(err, Error::InvalidToken), "{token:?}: {err}");
            // The message names the variable, never the value.
            assert!(!err.to_string().contains("line"), "{err}");
        }
        let ok =
            DoorClient::from_lookup(vars(Some(" http://127.0.0.1:41234/ "), Some(TOKEN))).unwrap();
        assert_eq!(ok.url, "http://127.0.0.1:41234");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = DoorClient::new("http://127.0.0.1:1", SecretString::from(TOKEN)).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(
            shown.contains("[redacted]") && shown.contains("127.0.0.1:1"),
            "{shown}"
        );
    }
}
