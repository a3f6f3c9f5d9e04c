//! What a request body may be declared as. Every browser route that reads
//! a body reads JSON (the context uploads also CSV); a body declared as
//! anything else is refused with 415 before its handler runs, so no route
//! reads `text/plain` or a form as JSON — what another site's page can post
//! without a CORS preflight. (The Origin check refuses such a post when it
//! carries the cookie; this holds even for one that does not.)

use crate::error::ApiError;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use csp_domain::ErrorCode;
use http::{HeaderMap, Method};

/// The routes that also take `text/csv` (`crate::csv`).
const CSV_ROUTES: [&str; 2] = [
    "/api/v1/tenants/{tenant_id}/kb-articles",
    "/api/v1/tenants/{tenant_id}/inventory",
];

/// The declared media type, without parameters, lower-cased.
fn declared(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(http::header::CONTENT_TYPE)?;
    let v = v.to_str().unwrap_or("invalid");
    Some(
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether the body may be read as JSON: declared `application/json` (any
/// parameters). A form, `text/plain` or an untyped body (a `Blob`) is what
/// another site's page can post without asking, so none of them is taken
/// from a browser (a request with an Origin). A program that sends no
/// Content-Type and no Origin is read as JSON.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    match declared(headers) {
        Some(t) => t == "application/json",
        None => !headers.contains_key(http::header::ORIGIN),
    }
}

/// Whether a request has a body at all (an action such as `…/retry` has
/// none, whatever its Content-Type says).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|n| n.trim() != "0")
}

/// Whether `method` on the route template `route` may carry a body
/// declared as `headers` say.
fn acceptable(method: &Method, route: &str, headers: &HeaderMap) -> bool {
    let writes = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if !writes || !has_body(headers) || is_json(headers) {
        return true;
    }
    CSV_ROUTES.contains(&route) && declared(headers).as_deref() == Some("text/csv")
}

/// Refuses (415) a body declared as something its route does not read.
pub(crate) async fn require_json(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if acceptable(req.method(), &route, req.headers()) {
        return next.run(req).await;
    }
    ApiError {
        code: ErrorCode::UnsupportedMediaType,
        message: Some("Send the body as JSON (Content-Type: application/json).".into()),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_json_bodies_count_as_json() {
        let with = |ct: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
            }
            let program = is_json(&h);
            h.insert(http::header::ORIGIN, "https://csp.example".parse().unwrap());
            let browser = is_json(&h);
            // A declared type means the same from a program or a browser.
            if ct.is_some() {
                assert_eq!(program, browser, "{ct:?}");
            }
            browser
        };
        assert!(with(Some("application/json")));
        assert!(with(Some("application/json; charset=utf-8")));
        assert!(with(Some("Application/JSON")));
        for other in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
        ] {
            assert!(!with(Some(other)), "{other}");
        }
        // Untyped: a browser's Blob is refused, a program's body is read.
        assert!(!with(None));
        assert!(is_json(&HeaderMap::new()));
    }

    /// Regression (security suite): `POST /api/v1/users`, `PATCH
    /// /api/v1/tenants/{tenant_id}` and every other JSON route read a
    /// JSON body declared `text/plain`; only login refused it.
    #[test]
    fn bodies_of_other_types_are_refused_except_csv_uploads() {
        let body = [("content-length", "2")];
        let typed = |ct: &str| headers(&[body[0], ("content-type", ct)]);
        for route in ["/api/v1/users", "/api/v1/tenants/{tenant_id}"] {
            for m in [Method::POST, Method::PUT, Method::PATCH] {
                assert!(acceptable(&m, route, &typed("application/json")));
                assert!(!acceptable(&m, route, &typed("text/plain")), "{m} {route}");
                assert!(!acceptable(&m, route, &typed("text/csv")), "{m} {route}");
                assert!(!acceptable(
                    &m,
                    route,
                    &typed("application/x-www-form-urlencoded")
                ));
            }
        }
        for route in CSV_ROUTES {
            assert!(acceptable(
                &Method::POST,
                route,
                &typed("text/csv; charset=utf-8")
            ));
            assert!(!acceptable(&Method::POST, route, &typed("text/plain")));
        }
        // No body: nothing to read (actions such as retry), whatever is declared.
        let empty = headers(&[("content-length", "0"), ("content-type", "text/plain")]);
        assert!(acceptable(
            &Method::POST,
            "/api/v1/enhancements/{job_id}/retry",
            &empty
        ));
        assert!(acceptable(
            &Method::POST,
            "/api/v1/tickets/queue/clear",
            &HeaderMap::new()
        ));
        // A chunked body counts as one.
        let chunked = headers(&[
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
        ]);
        assert!(!acceptable(&Method::POST, "/api/v1/users", &chunked));
        // Reads are not bodies.
        assert!(acceptable(
            &Method::GET,
            "/api/v1/users",
            &typed("text/plain")
        ));
        // Untyped: a program's (no Origin) is read as JSON, a browser's is not.
        assert!(acceptable(&Method::POST, "/api/v1/users", &headers(&body)));
        let blob = headers(&[body[0], ("origin", "https://csp.example")]);
        assert!(!acceptable(&Method::POST, "/api/v1/users", &blob));
    }
}
