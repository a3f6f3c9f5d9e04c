//! The Messages API, passed through. An agent's CLI is configured with this
//! proxy as `ANTHROPIC_BASE_URL` and its lease token as `ANTHROPIC_API_KEY`;
//! the proxy checks the token, swaps in the deployment's credential and
//! streams the upstream answer back frame by frame (SSE is never buffered,
//! so first-token latency is the upstream's plus one loopback hop).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::metrics as m;
use crate::{Error, Leases, Listener};

/// The Messages API caps a request at 32 MB; nothing larger is forwarded.
const MAX_REQUEST_BYTES: usize = 32 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const ANTHROPIC_API: &str = "https://api.anthropic.com";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type OutBody = BoxBody<Bytes, BoxError>;
type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, OutBody>;

/// How the deployment authenticates to the model API.
#[derive(Clone)]
pub enum Credential {
    /// `x-api-key` (`ANTHROPIC_API_KEY`).
    ApiKey(SecretString),
    /// `Authorization: Bearer` (`ANTHROPIC_AUTH_TOKEN`).
    Bearer(SecretString),
    /// An upstream that needs none (a local scripted model).
    None,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ApiKey(_) => "ApiKey([REDACTED])",
            Self::Bearer(_) => "Bearer([REDACTED])",
            Self::None => "None",
        })
    }
}

/// The real model API.
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// Path prefix of a gateway-style base URL, without a trailing `/`.
    prefix: String,
    credential: Credential,
}

impl Upstream {
    /// `base_url`: `ANTHROPIC_BASE_URL`, Anthropic's API when `None`.
    pub fn new(base_url: Option<&str>, credential: Credential) -> Result<Self, Error> {
        let url = base_url.unwrap_or(ANTHROPIC_API);
        let invalid = |reason: &str| Error::Upstream {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| invalid("no scheme"))?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(invalid("only http and https are supported"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| invalid("no host"))?;
        if uri.query().is_some() {
            return Err(invalid("a base URL takes no query"));
        }
        Ok(Self {
            scheme,
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            credential,
        })
    }

    /// The upstream URI of an agent's request: only its path and query
    /// are kept, under the base URL's prefix. `None` for a path the
    /// upstream would resolve out of that prefix (a `.` or `..` segment,
    /// also percent-encoded), or one that does not build.
    fn uri(&self, request: &Uri) -> Option<Uri> {
        if has_dot_segment(request.path()) {
            return None;
        }
        let tail = request.path_and_query().map_or("/", |p| p.as_str());
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{tail}", self.prefix))
            .build()
            .ok()
    }
}

/// The proxy; cheap to clone.
#[derive(Clone)]
pub struct ModelProxy {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Upstream,
    leases: Leases,
    client: HttpsClient,
}

impl std::fmt::Debug for ModelProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelProxy")
            .field("upstream", &self.inner.upstream.authority)
            .finish_non_exhaustive()
    }
}

impl ModelProxy {
    pub fn new(upstream: Upstream, leases: Leases) -> Result<Self, Error> {
        crate::metrics::describe();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| Error::Upstream {
                url: upstream.authority.to_string(),
                reason: format!("no TLS root certificates: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self {
            inner: Arc::new(Inner {
                upstream,
                leases,
                client,
            }),
        })
    }

    /// Serves `listener` until `stop`; connections in flight finish on their own.
    pub async fn serve(self, listener: Listener, stop: CancellationToken) {
        listener
            .serve_http("model proxy", stop, move |request| {
                let proxy = self.clone();
                async move { proxy.handle(request).await }
            })
            .await;
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<OutBody> {
        let Some(token) = presented_token(request.headers()) else {
            return self.refuse();
        };
        let Some(grant) = self.inner.leases.check(token) else {
            return self.refuse();
        };
        let (mut parts, body) = request.into_parts();
        let Some(uri) = self.inner.upstream.uri(&parts.uri) else {
            return error(StatusCode::BAD_REQUEST, "invalid_request_error", "bad path");
        };
        strip_hop_by_hop(&mut parts.headers);
        for name in [header::HOST, header::AUTHORIZATION, X_API_KEY] {
            parts.headers.remove(name);
        }
        match &self.inner.upstream.credential {
            Credential::ApiKey(key) => match HeaderValue::from_str(key.expose_secret()) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    parts.headers.insert(X_API_KEY, v);
                }
                Err(_) => {
                    return self
                        .upstream_error("the configured API key is not a valid header value");
                }
            },
            Credential::Bearer(token) => {
                match HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())) {
                    Ok(mut v) => {
                        v.set_sensitive(true);
                        parts.headers.insert(header::AUTHORIZATION, v);
                    }
                    Err(_) => {
                        return self.upstream_error(
                            "the configured auth token is not a valid header value",
                        );
                    }
                }
            }
            Credential::None => {}
        }
        parts.uri = uri;
        let body = Limited::new(body, MAX_REQUEST_BYTES).boxed();
        let upstream = Request::from_parts(parts, body);
        match self.inner.client.request(upstream).await {
            Ok(response) => {
                metrics::counter!(m::MODEL_PROXY_REQUESTS, "outcome" => "forwarded").increment(1);
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.map_err(BoxError::from).boxed())
            }
            Err(e) => {
                tracing::warn!(session.id = %grant.session, error = %e, "model proxy: the model API cannot be reached");
                self.upstream_error("the model API cannot be reached")
            }
        }
    }

    fn refuse(&self) -> Response<OutBody> {
        metrics::counter!(m::MODEL_PROXY_REQUESTS, "outcome" => "unauthorized").increment(1);
        error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid or expired session credential",
        )
    }

    fn upstream_error(&self, message: &str) -> Response<OutBody> {
        metrics::counter!(m::MODEL_PROXY_REQUESTS, "outcome" => "upstream_error").increment(1);
        // 502 is retried by the CLI and counted by the breaker like any
        // other outage of the model API.
        error(StatusCode::BAD_GATEWAY, "api_error", message)
    }
}

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Whether `path` has a `.` or `..` segment, plain or percent-encoded
/// (RFC 3986 §5.2.4 removes them, and upstreams decode `%2e` first).
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

/// The lease token, as `x-api-key` or `Authorization: Bearer`.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get(X_API_KEY) {
        return key.to_str().ok();
    }
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// An answer in the Messages API's error shape, which the CLI understands.
fn error(status: StatusCode, kind: &str, message: &str) -> Response<OutBody> {
    let body = format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"{message}"}}}}"#);
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(BoxError::from).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_keep_a_gateway_prefix() {
        let up = Upstream::new(Some("https://gw.example/anthropic/"), Credential::None).unwrap();
        let uri = up.uri(&"/v1/messages?beta=true".parse().unwrap()).unwrap();
        assert_eq!(
            uri.to_string(),
            "https://gw.example/anthropic/v1/messages?beta=true"
        );
        let up = Upstream::new(None, Credential::None).unwrap();
        assert_eq!(
            up.uri(&"/v1/models".parse().unwrap()).unwrap().to_string(),
            "https://api.anthropic.com/v1/models"
        );
        assert!(Upstream::new(Some("ftp://x"), Credential::None).is_err());
        assert!(Upstream::new(Some("not a url"), Credential::None).is_err());
    }

    #[test]
    fn dot_segments_cannot_leave_the_base_urls_prefix() {
        let up = Upstream::new(Some("https://gw.example/anthropic/"), Credential::None).unwrap();
        for path in [
            "/../openai/v1/chat",
            "/v1/../../admin",
            "/%2e%2e/admin",
            "/.%2E/admin",
            "/./v1/messages",
            "/v1/..",
        ] {
            assert_eq!(up.uri(&path.parse().unwrap()), None, "{path}");
        }
        // Dots inside a segment are just characters.
        let uri = up.uri(&"/v1/a..b/.well".parse().unwrap()).unwrap();
        assert_eq!(
            uri.to_string(),
            "https://gw.example/anthropic/v1/a..b/.well"
        );
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let c = Credential::ApiKey(SecretString::from("sk-ant-secret"));
        assert!(!format!("{c:?}").contains("sk-ant"));
    }

    #[test]
    fn hop_by_hop_headers_go_including_those_connection_names() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("x-private, close"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic x"),
        );
        h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("anthropic-version"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // A fixed seed, nothing written to disk: every run checks the
            // same cases (PROPTEST_RNG_SEED explores others).
            #![proptest_config(csp_testkit::proptest_config(256))]

            /// Whatever request target the agent sends (origin or absolute
            /// form), the request goes to the upstream's host, under its prefix.
            #[test]
            fn any_request_target_stays_on_the_upstream_under_its_prefix(
                target in prop_oneof![
                    "/[a-zA-Z0-9./%?=&_-]{0,40}",
                    "(https?://[a-z.]{1,12}(:[0-9]{1,5})?)?/[a-zA-Z0-9./%?=&_-]{0,30}",
                    "\\PC{0,40}",
                ],
            ) {
                let up = Upstream::new(Some("https://gw.example/anthropic"), Credential::None).unwrap();
                let Ok(request) = target.parse::<Uri>() else { return Ok(()) };
                if let Some(uri) = up.uri(&request) {
                    prop_assert_eq!(uri.scheme_str(), Some("https"));
                    prop_assert_eq!(uri.authority().map(|a| a.as_str()), Some("gw.example"));
                    prop_assert!(uri.path() == "/anthropic" || uri.path().starts_with("/anthropic/"), "{}", uri);
                    prop_assert!(!has_dot_segment(uri.path()), "{}", uri);
                }
            }

            #[test]
            fn only_the_presented_key_or_bearer_token_is_read(value in "[ -~]{0,40}", bearer in any::<bool>()) {
                let mut headers = HeaderMap::new();
                let Ok(header_value) = HeaderValue::from_str(&value) else { return Ok(()) };
                if bearer {
                    headers.insert(header::AUTHORIZATION, header_value);
                    prop_assert_eq!(presented_token(&headers), value.strip_prefix("Bearer "));
                } else {
                    headers.insert(X_API_KEY, header_value);
                    prop_assert_eq!(presented_token(&headers), Some(value.as_str()));
                }
            }
        }
    }
}
