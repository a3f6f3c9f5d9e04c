//! Technicians' feedback on posted notes. The public `GET
//! /feedback/{job_id}/{vote}?sig=<hex>` is where the "Was this helpful?"
//! links at the end of every note lead: no login (a technician clicks it in
//! their ticketing tool), no cookie read; the gateway checks nothing but
//! sizes and hands the link to the tickets service, which verifies the
//! signature before it records anything, and answers with a small page of
//! its own (no script, no outside resource, its own strict
//! Content-Security-Policy, never cached). And the operators' `GET
//! /api/v1/enhancements/feedback`: the votes per tenant.

use crate::auth::AuthUser;
use crate::dto;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use csp_domain::{ErrorCode, FeedbackVote};
use csp_proto::v1 as pb;
use http::{HeaderValue, StatusCode, header};
use std::collections::HashMap;
use std::time::Duration;

/// How long a click may wait for the tickets service.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The page's own policy: nothing may load, inline style only.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// Longer parts than any link csp writes are refused without a call: a job
/// id is 36 characters, a vote 11, a signature 64.
const MAX_JOB_ID: usize = 64;
const MAX_VOTE: usize = 32;
const MAX_SIGNATURE: usize = 128;

/// `GET /feedback/{job_id}/{vote}?sig=<hex>` (public): the vote of a link
/// at the end of a note, recorded by the tickets service; a page either way.
pub(crate) async fn record(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    // A link csp wrote always parses: anything else is not one (a page, not
    // axum's plain-text 400).
    let (Ok(Path((job_id, vote))), Ok(Query(q))) = (path, query) else {
        return page(Outcome::Invalid);
    };
    let signature = q.get("sig").map(String::as_str).unwrap_or_default();
    if job_id.len() > MAX_JOB_ID
        || vote.len() > MAX_VOTE
        || signature.is_empty()
        || signature.len() > MAX_SIGNATURE
    {
        return page(Outcome::Invalid);
    }
    let req = state.svc.request(pb::FeedbackRequest {
        job_id,
        vote,
        signature: signature.to_owned(),
    });
    let answer = tokio::time::timeout(CALL_TIMEOUT, state.tickets.clone().record_feedback(req))
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("tickets service")));
    match answer {
        Ok(recorded) => match recorded.into_inner().vote.parse::<FeedbackVote>() {
            Ok(vote) => page(Outcome::Recorded(vote)),
            Err(_) => page(Outcome::Unavailable),
        },
        Err(s) => match csp_rpc::error_code(&s) {
            ErrorCode::WebhookSignatureInvalid => page(Outcome::Invalid),
            ErrorCode::EnhancementNotFound => page(Outcome::NotFound),
            code => {
                tracing::warn!(%code, grpc.code = ?s.code(), "feedback could not be recorded");
                page(Outcome::Unavailable)
            }
        },
    }
}

/// What a click came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Recorded(FeedbackVote),
    Invalid,
    NotFound,
    Unavailable,
}

/// The page for an outcome, with its status and headers.
fn page(outcome: Outcome) -> Response {
    let (status, title, text) = match outcome {
        Outcome::Recorded(vote) => (
            StatusCode::OK,
            "Thanks — your vote was recorded",
            match vote {
                FeedbackVote::Helpful => {
                    "Thanks — your vote was recorded (👍 helpful). Changed your mind? Use the other link at the end of the note; the latest vote counts."
                }
                FeedbackVote::NotHelpful => {
                    "Thanks — your vote was recorded (👎 not helpful). Changed your mind? Use the other link at the end of the note; the latest vote counts."
                }
            },
        ),
        Outcome::Invalid => (
            StatusCode::FORBIDDEN,
            "Invalid link",
            "This feedback link is not valid.",
        ),
        Outcome::NotFound => (
            StatusCode::NOT_FOUND,
            "Unknown note",
            "This note's enhancement no longer exists, so the vote was not recorded.",
        ),
        Outcome::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again later",
            "Your vote could not be recorded right now. Please try the link again in a few minutes.",
        ),
    };
    // Every text is a constant of this function: nothing from the request
    // reaches the page.
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title} · csp</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;color:#1f2328;background:#f6f8fa;margin:0}}\
         main{{max-width:32rem;margin:15vh auto;padding:1.5rem 2rem;background:#fff;\
         border:1px solid #d0d7de;border-radius:8px}}</style></head>\
         <body><main><p>{text}</p></main></body></html>\n"
    );
    let mut resp = (status, html).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /api/v1/enhancements/feedback?from=&to=` (operator): the votes per
/// tenant cast in the period; no `from`: the last 30 days. Each bound is a
/// date (`to`: the whole day) or an RFC 3339 time.
pub(crate) async fn summary(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<dto::FeedbackSummary>, ApiError> {
    let get = |k: &str| q.get(k).map(|v| v.trim()).unwrap_or_default();
    let req = pb::FeedbackSummaryRequest {
        from: crate::admin::bound("from", get("from"), false)?,
        to: crate::admin::bound("to", get("to"), true)?,
    };
    let r = state
        .tickets
        .clone()
        .feedback_summary(state.as_user(&user, req))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(dto::FeedbackSummary {
        tenants: r.tenants.into_iter().map(Into::into).collect(),
    }))
}

#[cfg(test)]
mod tests {
    //! The gateway against a fake tickets service (`testing.rs`), whose
    //! answer goes by the signature.

    use crate::testing::{FakeTickets, call, gateway, gateway_with};
    use axum::body::Body;
    use csp_domain::Role;
    use http::{Request, StatusCode};
    use serde_json::json;
    use tower::ServiceExt;

    const JOB: &str = "6f0e6b1c-2d3a-4b5c-8d9e-0f1a2b3c4d5e";

    /// Status, headers and the page's text.
    async fn get(
        app: &axum::Router,
        uri: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut req = Request::builder().uri(uri);
        if let Some(c) = cookie {
            req = req.header(http::header::COOKIE, c);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn assert_strict_page(headers: &http::HeaderMap, page: &str) {
        assert_eq!(
            headers[http::header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(headers[http::header::CACHE_CONTROL], "no-store");
        let policy = headers[http::header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            policy.starts_with("default-src 'none'; style-src 'unsafe-inline'"),
            "{policy}"
        );
        assert_eq!(headers[http::header::REFERRER_POLICY], "no-referrer");
        assert!(page.starts_with("<!doctype html>"), "{page}");
        for loads in ["<script", "<link", "<img", "src=", "http://", "https://"] {
            assert!(!page.contains(loads), "{loads} in {page}");
        }
    }

    #[tokio::test]
    async fn a_signed_link_records_the_vote_and_thanks_without_a_login() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        for (vote, shown) in [
            ("helpful", "(👍 helpful)"),
            ("not_helpful", "(👎 not helpful)"),
        ] {
            let uri = format!("/feedback/{JOB}/{vote}?sig=good");
            // A browser's cookie changes nothing: the route reads none.
            let (status, headers, page) = get(&gw.app, &uri, Some("csp_token=nonsense")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(
                page.contains(&format!("Thanks — your vote was recorded {shown}.")),
                "{page}"
            );
            assert!(page.contains("Changed your mind?"), "{page}");
            assert_strict_page(&headers, &page);
        }
        let clicks = fake.feedback_clicks.lock().unwrap();
        let got: Vec<(&str, &str, &str)> = clicks
            .iter()
            .map(|(r, _)| (r.job_id.as_str(), r.vote.as_str(), r.signature.as_str()))
            .collect();
        assert_eq!(
            got,
            [(JOB, "helpful", "good"), (JOB, "not_helpful", "good")]
        );
        // As the gateway itself: a service token, not anyone's cookie.
        for (_, auth) in clicks.iter() {
            assert!(auth.starts_with("Bearer "), "{auth}");
            assert!(!auth.contains("nonsense"));
        }
    }

    #[tokio::test]
    async fn an_invalid_link_is_403_and_an_unknown_job_404() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        for (uri, want, text) in [
            (
                format!("/feedback/{JOB}/helpful?sig=tampered"),
                StatusCode::FORBIDDEN,
                "This feedback link is not valid.",
            ),
            (
                format!("/feedback/{JOB}/helpful?sig=gone"),
                StatusCode::NOT_FOUND,
                "no longer exists",
            ),
            (
                format!("/feedback/{JOB}/helpful?sig=down"),
                StatusCode::SERVICE_UNAVAILABLE,
                "try the link again",
            ),
        ] {
            let (status, headers, page) = get(&gw.app, &uri, None).await;
            assert_eq!(status, want, "{uri}: {page}");
            assert!(page.contains(text), "{uri}: {page}");
            assert_strict_page(&headers, &page);
        }
        assert_eq!(fake.feedback_clicks.lock().unwrap().len(), 3);
        // Without a signature, or with parts longer than any link has: no
        // call at all.
        let long = "a".repeat(65);
        for uri in [
            format!("/feedback/{JOB}/helpful"),
            format!("/feedback/{JOB}/helpful?sig="),
            format!("/feedback/{long}/helpful?sig=good"),
            format!("/feedback/{JOB}/helpful?sig={}", "0".repeat(129)),
            format!("/feedback/{JOB}/%FF%FE?sig=good"),
        ] {
            let (status, headers, page) = get(&gw.app, &uri, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
            assert_strict_page(&headers, &page);
        }
        assert_eq!(fake.feedback_clicks.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn the_tickets_service_down_is_a_503_page() {
        let gw = gateway().await;
        let (status, headers, page) =
            get(&gw.app, &format!("/feedback/{JOB}/helpful?sig=good"), None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
        assert_strict_page(&headers, &page);
    }

    #[tokio::test]
    async fn operators_read_the_votes_per_tenant_with_their_rate() {
        let (fake, addr) = FakeTickets::serve().await;
        let gw = gateway_with(Some(addr), None).await;
        let req = |uri: &str| {
            Request::builder()
                .uri(uri)
                .header(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", gw.token(Role::Operator)),
                )
                .body(Body::empty())
                .unwrap()
        };
        let (status, _, body) = call(&gw.app, req("/api/v1/enhancements/feedback")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"tenants": [
                {"tenant_id": "acme", "helpful": 3, "not_helpful": 1, "helpful_rate": 0.75},
                {"tenant_id": "beta", "helpful": 0, "not_helpful": 2, "helpful_rate": 0.0},
            ]})
        );
        let (status, _, _) = call(
            &gw.app,
            req("/api/v1/enhancements/feedback?from=2026-01-01&to=2026-01-31T12:00:00Z"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, body) = call(
            &gw.app,
            req("/api/v1/enhancements/feedback?from=last%20week"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "invalid_request");
        let asked = fake.feedback_summaries.lock().unwrap();
        let bounds: Vec<(&str, &str)> = asked
            .iter()
            .map(|r| (r.from.as_str(), r.to.as_str()))
            .collect();
        // A date `to` covers its whole day.
        assert_eq!(
            bounds,
            [("", ""), ("2026-01-01T00:00:00Z", "2026-01-31T12:00:00Z")]
        );
    }

    #[test]
    fn an_enhancement_carries_its_vote_or_nulls() {
        let shown = |feedback: &str, at: &str| {
            let e = crate::dto::Enhancement::from(csp_proto::v1::Enhancement {
                feedback: feedback.into(),
                feedback_at: at.into(),
                ..Default::default()
            });
            let v = serde_json::to_value(e).unwrap();
            (v["feedback"].clone(), v["feedback_at"].clone())
        };
        assert_eq!(
            shown("not_helpful", "2026-03-01T09:05:00Z"),
            (json!("not_helpful"), json!("2026-03-01T09:05:00Z"))
        );
        assert_eq!(shown("", ""), (json!(null), json!(null)));
    }

    #[test]
    fn the_summary_rate_is_of_the_votes_cast() {
        let t = |helpful, not_helpful| {
            crate::dto::TenantFeedback::from(csp_proto::v1::TenantFeedback {
                tenant_id: "acme".into(),
                helpful,
                not_helpful,
            })
            .helpful_rate
        };
        assert_eq!(t(0, 0), None);
        assert_eq!(t(1, 3), Some(0.25));
    }
}
