//! The ticketing tools' webhooks: public, machine-to-machine routes. The
//! gateway verifies nothing here: it hands the delivery exactly as received
//! (raw body bytes, the signature headers, the client address, the request
//! id as correlation id) to the tickets service, which verifies the
//! signature on those bytes, validates, rate-limits and records the job,
//! and maps its answer to HTTP. No cookie is read and no Origin checked
//! (routes under `/webhook/` are public and layered apart, `lib.rs`); the
//! body limit holds before anything is forwarded.

use crate::api::client_address;
use crate::dto;
use crate::error::ApiError;
use crate::error::body_bytes;
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use csp_domain::{ErrorCode, TenantId};
use csp_proto::v1 as pb;
use http::{HeaderMap, HeaderValue, StatusCode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tracing::Instrument;

/// The largest webhook body (the contract's 256 KiB); a larger one is
/// refused with 413 `payload_too_large` before it is read to the end.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;
/// The longest header value passed on; longer ones are cut.
pub(crate) const MAX_HEADER_BYTES: usize = 1024;
/// The headers that verification may need, by their lower-case names:
/// ServiceDesk Plus' (csp's own scheme), Jira's (`X-Hub-Signature`, and the
/// delivery id that recognises a repeated delivery) and Zendesk's. No other
/// header is passed on. Which tool a path names is the tickets service's to
/// decide: the gateway keeps no list of tools.
pub(crate) const FORWARDED_HEADERS: [&str; 7] = [
    "x-servicedesk-timestamp",
    "x-servicedesk-signature",
    "x-hub-signature",
    "x-atlassian-webhook-identifier",
    "x-zendesk-webhook-signature",
    "x-zendesk-webhook-signature-timestamp",
    "x-zendesk-webhook-invocation-id",
];
/// The tool of the seed's paths (`/webhook/servicedesk`).
const SEED_TOOL: &str = "servicedesk_plus";
/// How long a delivery may wait for the tickets service.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Told to a rate-limited sender when the service did not say.
const DEFAULT_RETRY_AFTER_S: u64 = 60;

/// What arrived, with where it is going.
struct Arrival {
    state: AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
}

type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;
type Id = Option<Extension<RequestId>>;
type Body = Result<Bytes, BytesRejection>;

/// `POST /webhook/{tool_type}/{tenant_id}`: a new ticket to enhance.
pub(crate) async fn new_ticket(
    State(state): State<AppState>,
    Path((tool_type, tenant_id)): Path<(String, String)>,
    peer: Peer,
    id: Id,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let arrival = Arrival {
        state,
        peer,
        id,
        headers,
        body,
    };
    forward(arrival, tool_type, tenant_id, pb::WebhookKind::New).await
}

/// `POST /webhook/{tool_type}/{tenant_id}/resolved`: a resolved or closed
/// ticket for the history.
pub(crate) async fn resolved(
    State(state): State<AppState>,
    Path((tool_type, tenant_id)): Path<(String, String)>,
    peer: Peer,
    id: Id,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let arrival = Arrival {
        state,
        peer,
        id,
        headers,
        body,
    };
    forward(arrival, tool_type, tenant_id, pb::WebhookKind::Resolved).await
}

/// The seed's `POST /webhook/servicedesk`: the tenant is the payload's.
pub(crate) async fn seed_new_ticket(
    State(state): State<AppState>,
    peer: Peer,
    id: Id,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let arrival = Arrival {
        state,
        peer,
        id,
        headers,
        body,
    };
    forward(
        arrival,
        SEED_TOOL.into(),
        String::new(),
        pb::WebhookKind::New,
    )
    .await
}

/// The seed's `POST /webhook/servicedesk/resolved`.
pub(crate) async fn seed_resolved(
    State(state): State<AppState>,
    peer: Peer,
    id: Id,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let arrival = Arrival {
        state,
        peer,
        id,
        headers,
        body,
    };
    forward(
        arrival,
        SEED_TOOL.into(),
        String::new(),
        pb::WebhookKind::Resolved,
    )
    .await
}

/// The headers of [`FORWARDED_HEADERS`] present in `headers` (the first of
/// each), values cut to [`MAX_HEADER_BYTES`].
pub(crate) fn verification_headers(headers: &HeaderMap) -> HashMap<String, String> {
    FORWARDED_HEADERS
        .iter()
        .filter_map(|name| {
            let v = headers.get(*name)?.as_bytes();
            let v = &v[..v.len().min(MAX_HEADER_BYTES)];
            Some(((*name).to_owned(), String::from_utf8_lossy(v).into_owned()))
        })
        .collect()
}

/// Whether a declared `Content-Length` is already over the limit.
fn declared_too_large(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
}

async fn forward(
    arrival: Arrival,
    tool_type: String,
    tenant_id: String,
    kind: pb::WebhookKind,
) -> Response {
    let Arrival {
        state,
        peer,
        id,
        headers,
        body,
    } = arrival;
    let id = id.map_or_else(
        || RequestId(uuid::Uuid::new_v4().simple().to_string()),
        |Extension(id)| id,
    );
    // Only a well-formed id reaches the log; anything else is the service's
    // to refuse (in the same time as a bad signature).
    let shown_tenant = match tenant_id.as_str() {
        "" => "(payload)",
        t if TenantId::parse(t).is_ok() => t,
        _ => "(invalid)",
    };
    let span = tracing::info_span!(
        "webhook_received",
        tenant_id = shown_tenant,
        kind = kind.as_str_name(),
        correlation_id = %id.0,
    );
    async move {
        if declared_too_large(&headers) {
            return ApiError::new(ErrorCode::PayloadTooLarge).into_response();
        }
        let body = match body_bytes(body) {
            Ok(b) => b,
            Err(e) => return e.into_response(),
        };
        let delivery = pb::WebhookDelivery {
            tool_type,
            tenant_id,
            kind: kind as i32,
            headers: verification_headers(&headers),
            body: body.to_vec(),
            source_addr: client_address(&state, &headers, peer),
            correlation_id: id.0.clone(),
        };
        let mut req = state.svc.request(delivery);
        // Without a recorded trace the request id still travels as the
        // trace id, so the job's correlation id is its trace downstream.
        if !req.metadata().contains_key("traceparent")
            && let Ok(v) = id.traceparent().parse()
        {
            req.metadata_mut().insert("traceparent", v);
        }
        let answer = tokio::time::timeout(CALL_TIMEOUT, state.tickets.clone().accept_webhook(req))
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("tickets service")));
        match answer {
            Ok(a) => accepted(a.into_inner(), kind),
            Err(s) => refused(&s),
        }
    }
    .instrument(span)
    .await
}

fn accepted(a: pb::WebhookAccepted, kind: pb::WebhookKind) -> Response {
    tracing::info!(
        job.id = a.job_id,
        duplicate = a.duplicate,
        "webhook accepted"
    );
    let status = |default: &str| {
        if a.status.is_empty() {
            default.to_owned()
        } else {
            a.status.clone()
        }
    };
    match kind {
        pb::WebhookKind::Resolved => (
            StatusCode::ACCEPTED,
            Json(dto::WebhookStored {
                status: status("stored"),
            }),
        )
            .into_response(),
        _ => (
            StatusCode::ACCEPTED,
            Json(dto::WebhookQueued {
                status: status("queued"),
                job_id: a.job_id,
            }),
        )
            .into_response(),
    }
}

/// The service's refusal as its catalogued HTTP answer; a rate limit with
/// the `Retry-After` the service gave.
fn refused(s: &tonic::Status) -> Response {
    let err = ApiError::from_status(s);
    tracing::info!(code = %err.code, "webhook refused");
    let limited = err.code == ErrorCode::WebhookRateLimited;
    let mut resp = err.into_response();
    if limited {
        let secs = s
            .metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_RETRY_AFTER_S);
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verification_headers_pass_cut_to_a_kibibyte() {
        let mut h = HeaderMap::new();
        h.insert("X-ServiceDesk-Signature", "sha256=ab".parse().unwrap());
        h.insert("x-servicedesk-timestamp", "1700000000".parse().unwrap());
        h.insert("x-hub-signature", "a".repeat(5000).parse().unwrap());
        h.insert("cookie", "csp_token=x".parse().unwrap());
        h.insert("authorization", "Bearer x".parse().unwrap());
        let got = verification_headers(&h);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got["x-servicedesk-signature"], "sha256=ab");
        assert_eq!(got["x-servicedesk-timestamp"], "1700000000");
        assert_eq!(got["x-hub-signature"].len(), MAX_HEADER_BYTES);
    }
}

#[cfg(test)]
mod forwarding {
    //! The gateway against a fake tickets service: what it forwards, and how
    //! it answers for the service.

    use super::*;
    use crate::testing::{FakeTickets, WebhookScript, call, gateway, gateway_with};
    use axum::body::Body;
    use serde_json::{Value, json};

    fn post(path: &str) -> http::request::Builder {
        http::Request::builder().method("POST").uri(path)
    }

    fn webhook(path: &str, body: Vec<u8>) -> http::Request<Body> {
        post(path)
            .header("X-ServiceDesk-Timestamp", "1700000000")
            .header("X-ServiceDesk-Signature", "sha256=00ff")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    }

    fn code(body: &Value) -> &str {
        body["error"]["code"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn a_delivery_is_forwarded_exactly_as_received() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        // Bytes a re-serialisation would change: spacing, key order, escapes.
        let body =
            b"{ \"ticket_id\":\"1234\" ,\"subject\":\"Caf\\u00e9 \xc3\xa9\",  \"z\":1}\n".to_vec();
        let req = post("/webhook/servicedesk_plus/acme")
            .header("X-ServiceDesk-Timestamp", "1700000000")
            .header("X-ServiceDesk-Signature", "sha256=00ff")
            .header("x-hub-signature", "h".repeat(4000))
            .header("X-Zendesk-Webhook-Signature", "zd")
            .header("x-unrelated", "not forwarded")
            // A browser's cookie and foreign Origin change nothing here.
            .header("cookie", "csp_token=not-a-token")
            .header("origin", "https://evil.example")
            .header("x-forwarded-for", "203.0.113.9")
            .body(Body::from(body.clone()))
            .unwrap();
        let (status, headers, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer, json!({"job_id": "job-1", "status": "queued"}));
        let seen = fake.deliveries.lock().unwrap();
        let [d] = &seen[..] else {
            panic!("{} deliveries", seen.len())
        };
        let got = &d.delivery;
        assert_eq!(got.body, body, "byte for byte");
        assert_eq!(got.tool_type, "servicedesk_plus");
        assert_eq!(got.tenant_id, "acme");
        assert_eq!(got.kind, pb::WebhookKind::New as i32);
        let mut names: Vec<&str> = got.headers.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "x-hub-signature",
                "x-servicedesk-signature",
                "x-servicedesk-timestamp",
                "x-zendesk-webhook-signature"
            ]
        );
        assert_eq!(got.headers["x-servicedesk-signature"], "sha256=00ff");
        assert_eq!(got.headers["x-hub-signature"], "h".repeat(MAX_HEADER_BYTES));
        // Not behind a trusted proxy: X-Forwarded-For is not believed.
        assert_ne!(got.source_addr, "203.0.113.9");
        // The request id is the correlation id and the trace id.
        let id = headers[crate::request_id::HEADER].to_str().unwrap();
        assert_eq!(got.correlation_id, id);
        assert_eq!(id.len(), 32);
        let tp = d.metadata.get("traceparent").unwrap().to_str().unwrap();
        assert_eq!(crate::request_id::trace_id_of(tp).as_deref(), Some(id));
        // As the gateway itself, not as anyone's cookie.
        let auth = d.metadata.get("authorization").unwrap().to_str().unwrap();
        assert!(auth.starts_with("Bearer "), "{auth}");
        assert!(!auth.contains("not-a-token"));
    }

    #[tokio::test]
    async fn jira_and_zendesk_deliveries_reach_the_service_with_their_headers() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let jira = || {
            post("/webhook/jira/acme")
                .header("X-Hub-Signature", "sha256=0a1b")
                .header(
                    "X-Atlassian-Webhook-Identifier",
                    "5f1c2d3e-0000-4000-8000-000000000001",
                )
                .header("X-ServiceDesk-Signature", "not jira's, passed on anyway")
                .header("x-unrelated", "not forwarded")
        };
        let zendesk = || {
            post("/webhook/zendesk/acme")
                .header("X-Zendesk-Webhook-Signature", "c2lnbmF0dXJl")
                .header(
                    "X-Zendesk-Webhook-Signature-Timestamp",
                    "2026-01-31T12:00:00Z",
                )
                .header("authorization", "Basic bm90LWZvcndhcmRlZA==")
        };
        let resolved = |b: http::request::Builder| {
            let uri = format!("{}/resolved", b.uri_ref().unwrap());
            b.uri(uri)
        };
        for req in [jira(), resolved(jira()), zendesk(), resolved(zendesk())] {
            let req = req.body(Body::from(b"{}".to_vec())).unwrap();
            let (status, _, answer) = call(&gw.app, req).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        }
        let seen = fake.deliveries.lock().unwrap();
        type Forwarded<'a> = (&'a str, &'a str, i32, Vec<(&'a str, &'a str)>);
        let got: Vec<Forwarded<'_>> = seen
            .iter()
            .map(|d| {
                let d = &d.delivery;
                let mut headers: Vec<(&str, &str)> = d
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                headers.sort_unstable();
                (d.tool_type.as_str(), d.tenant_id.as_str(), d.kind, headers)
            })
            .collect();
        let (new, resolved) = (
            pb::WebhookKind::New as i32,
            pb::WebhookKind::Resolved as i32,
        );
        let jira_headers = vec![
            (
                "x-atlassian-webhook-identifier",
                "5f1c2d3e-0000-4000-8000-000000000001",
            ),
            ("x-hub-signature", "sha256=0a1b"),
            ("x-servicedesk-signature", "not jira's, passed on anyway"),
        ];
        let zendesk_headers = vec![
            ("x-zendesk-webhook-signature", "c2lnbmF0dXJl"),
            (
                "x-zendesk-webhook-signature-timestamp",
                "2026-01-31T12:00:00Z",
            ),
        ];
        assert_eq!(
            got,
            [
                ("jira", "acme", new, jira_headers.clone()),
                ("jira", "acme", resolved, jira_headers),
                ("zendesk", "acme", new, zendesk_headers.clone()),
                ("zendesk", "acme", resolved, zendesk_headers),
            ]
        );
    }

    #[tokio::test]
    async fn the_seed_paths_leave_the_tenant_to_the_payload() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let (status, _, answer) =
            call(&gw.app, webhook("/webhook/servicedesk", b"{}".to_vec())).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        *fake.webhook_answer.lock().unwrap() = Some(|| {
            Ok(pb::WebhookAccepted {
                job_id: String::new(),
                status: "stored".into(),
                duplicate: false,
            })
        });
        let (status, _, answer) = call(
            &gw.app,
            webhook("/webhook/servicedesk/resolved", b"{}".to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(answer, json!({"status": "stored"}));
        let (status, _, _) = call(
            &gw.app,
            webhook("/webhook/servicedesk_plus/acme/resolved", b"{}".to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let seen = fake.deliveries.lock().unwrap();
        let got: Vec<(&str, &str, i32)> = seen
            .iter()
            .map(|d| {
                let d = &d.delivery;
                (d.tool_type.as_str(), d.tenant_id.as_str(), d.kind)
            })
            .collect();
        let (new, resolved) = (
            pb::WebhookKind::New as i32,
            pb::WebhookKind::Resolved as i32,
        );
        assert_eq!(
            got,
            [
                ("servicedesk_plus", "", new),
                ("servicedesk_plus", "", resolved),
                ("servicedesk_plus", "acme", resolved),
            ]
        );
    }

    #[tokio::test]
    async fn a_repeated_delivery_answers_with_the_first_job() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        *fake.webhook_answer.lock().unwrap() = Some(|| {
            Ok(pb::WebhookAccepted {
                job_id: "first-job".into(),
                status: "queued".into(),
                duplicate: true,
            })
        });
        let (status, _, answer) = call(
            &gw.app,
            webhook("/webhook/servicedesk_plus/acme", b"{}".to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(answer, json!({"job_id": "first-job", "status": "queued"}));
    }

    #[tokio::test]
    async fn refusals_are_the_catalogued_answers() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let cases: [(WebhookScript, u16, &str, Option<&str>); 4] = [
            (
                || {
                    Err(csp_rpc::status(
                        ErrorCode::WebhookSignatureInvalid,
                        "bad mac",
                    ))
                },
                401,
                "webhook_signature_invalid",
                None,
            ),
            (
                || Err(csp_rpc::status(ErrorCode::TenantNotFound, "no tenant")),
                404,
                "tenant_not_found",
                None,
            ),
            (
                || {
                    let mut s = csp_rpc::status(ErrorCode::WebhookRateLimited, "101st");
                    s.metadata_mut()
                        .insert("retry-after", "17".parse().unwrap());
                    Err(s)
                },
                429,
                "webhook_rate_limited",
                Some("17"),
            ),
            (
                || {
                    Err(csp_rpc::status_with_message(
                        ErrorCode::InvalidWebhook,
                        "description exceeds 10000 characters",
                    ))
                },
                400,
                "invalid_webhook",
                None,
            ),
        ];
        for (script, want, want_code, retry_after) in cases {
            *fake.webhook_answer.lock().unwrap() = Some(script);
            let (status, headers, answer) = call(
                &gw.app,
                webhook("/webhook/servicedesk_plus/acme", b"{}".to_vec()),
            )
            .await;
            assert_eq!(status.as_u16(), want, "{answer}");
            assert_eq!(code(&answer), want_code, "{answer}");
            assert!(
                answer["error"]["message"].is_string() && answer["error"]["action"].is_string()
            );
            assert_eq!(
                headers
                    .get(http::header::RETRY_AFTER)
                    .map(|v| v.to_str().unwrap()),
                retry_after,
                "{want_code}"
            );
        }
        // The service's text naming the field reaches the sender.
        let (_, _, answer) = call(
            &gw.app,
            webhook("/webhook/servicedesk_plus/acme", b"{}".to_vec()),
        )
        .await;
        assert_eq!(
            answer["error"]["message"],
            "description exceeds 10000 characters"
        );
    }

    #[tokio::test]
    async fn a_body_over_256_kib_is_refused_without_forwarding() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let (status, _, answer) = call(
            &gw.app,
            webhook(
                "/webhook/servicedesk_plus/acme",
                vec![b' '; MAX_BODY_BYTES + 1],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(code(&answer), "payload_too_large");
        // Declared too large: refused on the header, and on the seed's path.
        let req = post("/webhook/servicedesk")
            .header(
                http::header::CONTENT_LENGTH,
                (MAX_BODY_BYTES + 1).to_string(),
            )
            .body(Body::from(vec![b' '; MAX_BODY_BYTES + 1]))
            .unwrap();
        let (status, _, answer) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(code(&answer), "payload_too_large");
        // A body that never ends is cut at the limit, not read to its end.
        let endless = futures::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from_static(&[b' '; 4096]))
        });
        let req = post("/webhook/servicedesk_plus/acme")
            .body(Body::from_stream(endless))
            .unwrap();
        let (status, _, _) = call(&gw.app, req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(fake.deliveries.lock().unwrap().is_empty());
        // Exactly the limit passes.
        let (status, _, _) = call(
            &gw.app,
            webhook("/webhook/servicedesk_plus/acme", vec![b' '; MAX_BODY_BYTES]),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            fake.deliveries.lock().unwrap()[0].delivery.body.len(),
            MAX_BODY_BYTES
        );
    }

    #[tokio::test]
    async fn the_tickets_service_down_is_503() {
        let gw = gateway().await;
        let (status, _, answer) = call(
            &gw.app,
            webhook("/webhook/servicedesk_plus/acme", b"{}".to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(code(&answer), "unavailable");
    }
}
