//! The platform's outbound HTTP(S) client for calls to other systems: model
//! APIs, ticketing tools, knowledge-base APIs.
//!
//! Owns: one pooled hyper client over rustls (ring provider, the system's
//! root certificates, as `csp-egress` uses) that speaks `http` and `https`;
//! a whole-call deadline and a cap on the answer's size ([`Limits`]); one
//! error type that says whether a failure is worth retrying
//! ([`HttpError::is_transient`]).
//!
//! Must never: put a credential into an error or a log line. Headers are never
//! echoed; URLs and answer bodies that an error carries go through
//! `csp-redact` first. It never retries on its own either: whether a call may
//! be repeated is the caller's business (a note posted twice is a defect).
//!
//! The workspace's `reqwest` is built without TLS on purpose (a TLS feature
//! would be unified into every test client), which is why this crate sits on
//! hyper directly.
//!
//! ```no_run
//! # async fn demo() -> Result<(), csp_http::HttpError> {
//! use csp_http::{HttpClient, Limits};
//! let client = HttpClient::new()?;
//! let req = http::Request::get("https://example.com/api").body(bytes::Bytes::new()).unwrap();
//! let (status, body): (_, serde_json::Value) = client.json(req, Limits::default()).await?;
//! # let _ = (status, body); Ok(()) }
//! ```

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How much of an error answer's body [`HttpError::Status`] keeps.
pub const STATUS_BODY_PREFIX: usize = 512;

/// How long opening a TCP connection may take, within the call's own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Inner = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A pooled HTTP(S) client. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Inner,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// Bounds of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From sending the request to the last byte of the answer.
    pub timeout: Duration,
    /// The answer's body may not be larger (counted as received, not as announced).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    /// 30 s and 4 MiB.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Why a call failed. Every text here is safe to log: no header, and URLs and
/// bodies redacted.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("no complete answer within the timeout")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// A non-2xx answer; `body` is its first [`STATUS_BODY_PREFIX`] bytes, redacted.
    #[error("HTTP {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("the answer could not be decoded: {0}")]
    Decode(String),
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
}

impl HttpError {
    /// Whether the same call may succeed later: timeouts, connection
    /// failures, 5xx and 429. A TLS failure, a 4xx or an undecodable answer
    /// will fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Timeout | HttpError::Connect(_) => true,
            HttpError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            HttpError::Tls(_)
            | HttpError::TooLarge { .. }
            | HttpError::Decode(_)
            | HttpError::InvalidUrl(_) => false,
        }
    }

    /// The answer's status, for [`HttpError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A non-2xx answer as an error, keeping a redacted prefix of its body.
    pub fn from_status(status: StatusCode, body: &[u8]) -> Self {
        let prefix = &body[..body.len().min(STATUS_BODY_PREFIX)];
        let text = String::from_utf8_lossy(prefix);
        HttpError::Status {
            status,
            body: csp_redact::redact_text(&text).into_owned(),
        }
    }
}

impl HttpClient {
    /// A client for `http` and `https` URLs, trusting the system's root
    /// certificates. Fails only when the system has none.
    pub fn new() -> Result<Self, HttpError> {
        let mut http = HttpConnector::new();
        // The TLS layer above decides the scheme; this one only opens TCP.
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| HttpError::Tls(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(Self { inner })
    }

    /// Sends `req` and reads the whole answer, whatever its status, within `limits`.
    pub async fn send(
        &self,
        req: http::Request<Bytes>,
        limits: Limits,
    ) -> Result<http::Response<Bytes>, HttpError> {
        check_uri(req.uri())?;
        let method = req.method().clone();
        let host = req.uri().host().unwrap_or_default().to_owned();
        let path = req.uri().path().to_owned();
        let req = req.map(Full::new);
        let call = async {
            let resp = self.inner.request(req).await.map_err(classify)?;
            let (parts, body) = resp.into_parts();
            if let Some(len) = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                && len > limits.max_body_bytes as u64
            {
                return Err(HttpError::TooLarge {
                    limit: limits.max_body_bytes,
                });
            }
            let body = Limited::new(body, limits.max_body_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<LengthLimitError>().is_some() {
                        HttpError::TooLarge {
                            limit: limits.max_body_bytes,
                        }
                    } else {
                        // The connection broke while the answer was arriving.
                        HttpError::Connect(chain_text(e.as_ref()))
                    }
                })?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body))
        };
        let result = match tokio::time::timeout(limits.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout),
        };
        match &result {
            Ok(resp) => {
                tracing::debug!(%method, %host, %path, status = resp.status().as_u16(), "outbound call")
            }
            Err(e) => tracing::debug!(%method, %host, %path, error = %e, "outbound call failed"),
        }
        result
    }

    /// Sends `req` and decodes a 2xx answer's JSON body; any other status is
    /// [`HttpError::Status`].
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: http::Request<Bytes>,
        limits: Limits,
    ) -> Result<(StatusCode, T), HttpError> {
        let resp = self.send(req, limits).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(HttpError::from_status(status, resp.body()));
        }
        let value = serde_json::from_slice(resp.body())
            // serde_json quotes offending strings in its messages.
            .map_err(|e| HttpError::Decode(csp_redact::redact_text(&e.to_string()).into_owned()))?;
        Ok((status, value))
    }
}

fn check_uri(uri: &Uri) -> Result<(), HttpError> {
    let invalid =
        |why: &str| HttpError::InvalidUrl(format!("{why}: {}", csp_redact::url(&uri.to_string())));
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("only http and https are supported")),
        None => return Err(invalid("not an absolute URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(())
}

/// Tells a TLS failure from a plain connection failure. tokio-rustls reports
/// protocol and certificate problems as `io::ErrorKind::InvalidData`, and
/// hyper-rustls wraps that in another `io::Error`, whose `source()` skips the
/// inner one, so each `io::Error` is also opened with `get_ref`.
fn classify(e: hyper_util::client::legacy::Error) -> HttpError {
    let text = chain_text(&e);
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(s) = source {
        let mut inner = Some(s);
        while let Some(err) = inner {
            let Some(io) = err.downcast_ref::<std::io::Error>() else {
                break;
            };
            if io.kind() == std::io::ErrorKind::InvalidData {
                return HttpError::Tls(text);
            }
            inner = io.get_ref().map(|e| e as &(dyn StdError + 'static));
        }
        source = s.source();
    }
    HttpError::Connect(text)
}

/// An error and its causes, one line, redacted (a resolver error can quote a host with user info).
fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        source = s.source();
    }
    csp_redact::redact_text(&parts.join(": ")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use std::net::SocketAddr;

    async fn server() -> SocketAddr {
        let app = Router::new()
            .route(
                "/ok",
                get(|| async { axum::Json(serde_json::json!({"n": 7})) }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/big", get(|| async { "x".repeat(10_000) }))
            .route(
                "/big-chunked",
                get(|| async {
                    let chunks =
                        (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from("y".repeat(1000))));
                    axum::body::Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route(
                "/fail",
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "down; key sk-ant-api03-{} {}",
                            "a".repeat(40),
                            "z".repeat(600)
                        ),
                    )
                }),
            )
            .route("/busy", get(|| async { StatusCode::TOO_MANY_REQUESTS }))
            .route(
                "/missing",
                get(|| async { (StatusCode::NOT_FOUND, "no such thing") }),
            )
            .route("/text", get(|| async { "not json" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn get_req(addr: SocketAddr, path: &str) -> http::Request<Bytes> {
        http::Request::get(format!("http://{addr}{path}"))
            .body(Bytes::new())
            .unwrap()
    }

    fn limits(timeout_ms: u64, max: usize) -> Limits {
        Limits {
            timeout: Duration::from_millis(timeout_ms),
            max_body_bytes: max,
        }
    }

    #[test]
    fn default_limits_are_30_s_and_4_mib() {
        assert_eq!(Limits::default(), limits(30_000, 4 * 1024 * 1024));
    }

    #[tokio::test]
    async fn a_json_answer_is_decoded_and_garbage_is_not() {
        let addr = server().await;
        let client = HttpClient::new().unwrap();
        let (status, v): (_, serde_json::Value) = client
            .json(get_req(addr, "/ok"), Limits::default())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["n"], 7);
        let err = client
            .json::<serde_json::Value>(get_req(addr, "/text"), Limits::default())
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Decode(_)), "{err:?}");
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn a_slow_answer_times_out_and_is_transient() {
        let addr = server().await;
        let client = HttpClient::new().unwrap();
        let started = std::time::Instant::now();
        let err = client
            .send(get_req(addr, "/slow"), limits(200, 1024))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Timeout), "{err:?}");
        assert!(err.is_transient());
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_announced_or_streamed() {
        let addr = server().await;
        let client = HttpClient::new().unwrap();
        for path in ["/big", "/big-chunked"] {
            let err = client
                .send(get_req(addr, path), limits(5_000, 4_096))
                .await
                .unwrap_err();
            assert!(
                matches!(err, HttpError::TooLarge { limit: 4_096 }),
                "{path}: {err:?}"
            );
            assert!(!err.is_transient());
        }
        let ok = client
            .send(get_req(addr, "/big-chunked"), limits(5_000, 10_000))
            .await
            .unwrap();
        assert_eq!(ok.body().len(), 10_000);
    }

    #[tokio::test]
    async fn a_5xx_is_a_transient_status_with_a_short_redacted_body() {
        let addr = server().await;
        let client = HttpClient::new().unwrap();
        // `send` returns any status; `json` turns a non-2xx into an error.
        let resp = client
            .send(get_req(addr, "/fail"), Limits::default())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let err = client
            .json::<serde_json::Value>(get_req(addr, "/fail"), Limits::default())
            .await
            .unwrap_err();
        let HttpError::Status { status, body } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("down; key "), "{body}");
        assert!(!body.contains("aaaaaaaaaa"), "the key is redacted: {body}");
        assert!(body.len() <= STATUS_BODY_PREFIX + 16, "{}", body.len());
        assert!(err.is_transient());
        assert!(!err.to_string().contains("aaaaaaaaaa"));
        let busy = client
            .json::<serde_json::Value>(get_req(addr, "/busy"), Limits::default())
            .await
            .unwrap_err();
        assert_eq!(busy.status(), Some(StatusCode::TOO_MANY_REQUESTS));
        assert!(busy.is_transient());
    }

    #[tokio::test]
    async fn a_4xx_is_not_transient() {
        let addr = server().await;
        let client = HttpClient::new().unwrap();
        let err = client
            .json::<serde_json::Value>(get_req(addr, "/missing"), Limits::default())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
        assert!(matches!(&err, HttpError::Status { body, .. } if body == "no such thing"));
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn https_to_a_plain_port_fails_as_tls_and_a_closed_port_as_connect() {
        let addr = server().await;
        let client = HttpClient::new().unwrap();
        let req = http::Request::get(format!("https://{addr}/ok"))
            .body(Bytes::new())
            .unwrap();
        let err = client.send(req, limits(5_000, 1024)).await.unwrap_err();
        assert!(matches!(err, HttpError::Tls(_)), "{err:?}");
        assert!(!err.is_transient());

        // A port nobody listens on: bind one, then free it.
        let free = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let err = client
            .send(get_req(free, "/ok"), limits(5_000, 1024))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Connect(_)), "{err:?}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn urls_that_are_not_http_are_refused_without_echoing_a_password() {
        let client = HttpClient::new().unwrap();
        for url in ["ftp://user:hunter2hunter2@example.com/x", "/relative"] {
            let req = http::Request::get(url).body(Bytes::new()).unwrap();
            let err = client.send(req, Limits::default()).await.unwrap_err();
            assert!(matches!(err, HttpError::InvalidUrl(_)), "{err:?}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
