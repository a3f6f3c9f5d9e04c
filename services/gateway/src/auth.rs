//! Who is calling and whether they may: the JWT from the `csp_token`
//! cookie or a bearer header is verified locally, then the user's current
//! state (role, active) is looked up in the policy service on every request,
//! so a role change or deactivation takes effect on the next request, not
//! when the token expires. Every route has an explicit rule in the access
//! table, declared with the route itself (`routes.rs`) and handed to
//! [`authorize`] in its [`Rules`]; who a request is from is `identity.rs`.
//! A token revoked by logout is refused until it would have expired, and a
//! state-changing request that a browser could have sent from another site
//! (cookie, foreign or missing Origin) is refused before any of this.

use crate::error::ApiError;
pub(crate) use crate::identity::{AuthUser, Via};
use crate::state::AppState;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use csp_auth::{Access, Caller};
use csp_domain::{ErrorCode, Role};
use csp_proto::v1 as pb;
use http::Method;
use http::request::Parts;

pub(crate) const COOKIE: &str = "csp_token";

/// The rules [`authorize`] applies: the handlers' state and the access
/// table. The table is handed in by whoever builds the router from it
/// (`lib.rs`, from `routes.rs`), because the routes' handlers depend on this
/// module: it must not depend on them.
#[derive(Clone)]
pub(crate) struct Rules {
    pub(crate) state: AppState,
    /// What a method on a route template requires; `None`: not a route.
    pub(crate) access: fn(&Method, &str) -> Option<Access>,
}

impl Rules {
    pub(crate) fn new(state: AppState, access: fn(&Method, &str) -> Option<Access>) -> Self {
        Self { state, access }
    }
}

pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub(crate) fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    /// Set by [`authorize`]; a handler of a public route never has one.
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<AuthUser>()
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))
    }
}

/// The token's user, as the policy service knows them now.
async fn authenticate(state: &AppState, parts: &Parts) -> Result<AuthUser, ApiError> {
    let (token, via) = match bearer(&parts.headers) {
        Some(t) => (t, Via::Bearer),
        None => match cookie(&parts.headers, COOKIE) {
            Some(t) => (t, Via::Cookie),
            None => return Err(ApiError::new(ErrorCode::Unauthenticated)),
        },
    };
    let claims = state.tokens.verify(token).map_err(|e| {
        tracing::debug!(error = %e, "token rejected");
        ApiError::new(ErrorCode::Unauthenticated)
    })?;
    let Caller::User { id, .. } = claims.caller() else {
        // Service tokens are for service-to-service calls only.
        return Err(ApiError::new(ErrorCode::Unauthenticated));
    };
    if revoked(state, &claims).await? {
        tracing::debug!(user.id = %id, "revoked token refused");
        return Err(ApiError::new(ErrorCode::Unauthenticated));
    }
    let user = state
        .policy
        .clone()
        .get_user(state.svc.request(pb::GetUserRequest {
            user_id: id.to_string(),
        }))
        .await
        .map_err(|s| match csp_rpc::error_code(&s) {
            // Deleted since the token was issued.
            ErrorCode::Unauthenticated | ErrorCode::NotFound => {
                ApiError::new(ErrorCode::Unauthenticated)
            }
            _ => ApiError::from_status(&s),
        })?
        .into_inner();
    if !user.is_active {
        return Err(ApiError::new(ErrorCode::AccountDeactivated));
    }
    let role: Role = user.role.parse().map_err(|e: String| {
        tracing::error!(error = %e, "policy returned an unknown role");
        ApiError::new(ErrorCode::Internal)
    })?;
    Ok(AuthUser {
        id,
        name: user.username,
        role,
        via,
    })
}

/// The route's rule, applied before its handler (a route layer, so the
/// matched path is known). Routes without a rule are refused.
pub(crate) async fn authorize(State(rules): State<Rules>, req: Request, next: Next) -> Response {
    let Rules { state, access } = rules;
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(rule) = access(req.method(), &path) else {
        tracing::error!(method = %req.method(), path, "route without an access rule refused");
        return ApiError::new(ErrorCode::PermissionDenied).into_response();
    };
    let Access::Role(required) = rule else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    if path == "/metrics" && state.metrics_token_matches(bearer(&parts.headers)) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let user = match authenticate(&state, &parts).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    if !user.role.includes(required) {
        tracing::info!(user.id = %user.id, role = %user.role, %required, path, "forbidden");
        return ApiError {
            code: ErrorCode::PermissionDenied,
            message: Some(csp_auth::Denied::Role { required }.message()),
        }
        .into_response();
    }
    parts.extensions.insert(user);
    next.run(Request::from_parts(parts, body)).await
}

/// The cache key that marks a login token as logged out.
fn revoked_key(jti: &str) -> String {
    format!("token:revoked:{jti}")
}

/// Whether the token was logged out. A login token without an id (issued
/// before tokens had one) cannot be revoked, so it is refused. When the
/// cache cannot say, the request fails (503) rather than trust the token.
async fn revoked(state: &AppState, claims: &csp_auth::Claims) -> Result<bool, ApiError> {
    if claims.jti.is_empty() {
        return Ok(true);
    }
    match state.cache.get(&revoked_key(&claims.jti)).await {
        Ok(found) => Ok(found.is_some()),
        Err(e) => {
            tracing::error!(error = %e, "revocation check failed");
            Err(ApiError::new(ErrorCode::Unavailable))
        }
    }
}

/// Logout: remembers the session cookie's token as revoked for as long as
/// it would have been accepted. A missing or invalid token has nothing to
/// revoke. A bearer token is a program's credential, not the browser's
/// session: logout leaves it alone (it ends at its expiry).
pub(crate) async fn revoke(state: &AppState, headers: &http::HeaderMap) -> Result<(), ApiError> {
    let Some(token) = cookie(headers, COOKIE) else {
        return Ok(());
    };
    let Ok(claims) = state.tokens.verify(token) else {
        return Ok(());
    };
    if claims.svc.is_some() || claims.jti.is_empty() {
        return Ok(());
    }
    let left = claims.remaining(time::OffsetDateTime::now_utc().unix_timestamp());
    if left.is_zero() {
        return Ok(());
    }
    state
        .cache
        .put(&revoked_key(&claims.jti), "1", left)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not revoke a token at logout");
            ApiError::new(ErrorCode::Unavailable)
        })?;
    tracing::info!(user.id = %claims.sub, "logged out; token revoked");
    Ok(())
}

/// Whether `headers` carry an Origin allowed to act with the user's cookie:
/// one of `allowed`, or with an empty list the gateway's own (the Host
/// header). A request without Origin passes only with a bearer token, which
/// a page of another site cannot attach.
pub(crate) fn origin_matches(allowed: &[String], headers: &http::HeaderMap, via: Via) -> bool {
    let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return via == Via::Bearer;
    };
    if !allowed.is_empty() {
        return allowed.iter().any(|o| o == origin);
    }
    let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// Whether a state-changing request may proceed as far as the Origin goes:
/// with a bearer token always (another site's page cannot attach one);
/// otherwise (a cookie, or login, which sets one) its Origin must be
/// allowed, and without an Origin it must not carry the session cookie
/// (browsers send Origin on every POST, PUT, PATCH and DELETE; a client
/// without one is a program, which the login route still serves). A browser
/// that withholds the Origin (`null`, as the spec asks under our
/// `Referrer-Policy: no-referrer`) still marks its own page's requests
/// `Sec-Fetch-Site: same-origin`, a header no script can set.
pub(crate) fn cross_site_ok(
    allowed: &[String],
    method: &Method,
    headers: &http::HeaderMap,
) -> bool {
    let changes_state = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !changes_state || bearer(headers).is_some() {
        return true;
    }
    let origin = headers.get(http::header::ORIGIN);
    let same_origin = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"same-origin");
    match origin {
        Some(o) if o.as_bytes() != b"null" => origin_matches(allowed, headers, Via::Cookie),
        _ if same_origin => true,
        Some(_) => false,
        None => cookie(headers, COOKIE).is_none(),
    }
}

/// Refuses (403) a state-changing request another site's page could have
/// sent with the user's cookie; see [`cross_site_ok`].
pub(crate) async fn check_origin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if cross_site_ok(&state.allowed_origins, req.method(), req.headers()) {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), path = req.uri().path(), origin = ?req.headers().get(http::header::ORIGIN), "cross-site request refused");
    ApiError {
        code: ErrorCode::Forbidden,
        message: Some("Requests from this page's origin are not accepted.".into()),
    }
    .into_response()
}

/// The Set-Cookie value that stores `token` for `max_age_s` seconds.
pub(crate) fn set_cookie(token: &str, max_age_s: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    )
}

pub(crate) fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, "csp.example:8080".parse().unwrap());
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn state_changes_need_an_allowed_origin_unless_bearer() {
        let ok =
            |method: Method, pairs: &[(&str, &str)]| cross_site_ok(&[], &method, &headers(pairs));
        let cookie = ("cookie", "csp_token=abc");
        let evil = ("origin", "https://evil.example");
        let own = ("origin", "https://csp.example:8080");
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(
                !ok(m.clone(), &[cookie, evil]),
                "{m} cookie from a foreign page"
            );
            assert!(!ok(m.clone(), &[cookie]), "{m} cookie without Origin");
            assert!(
                ok(m.clone(), &[cookie, own]),
                "{m} cookie from the own page"
            );
            assert!(
                ok(m.clone(), &[("authorization", "Bearer t"), evil]),
                "{m} bearer needs no Origin check"
            );
        }
        // Login: no cookie yet, still no foreign pages; programs without Origin may.
        assert!(!ok(Method::POST, &[evil]));
        assert!(ok(Method::POST, &[own]));
        assert!(ok(Method::POST, &[]));
        // Reads are not state changes.
        assert!(ok(Method::GET, &[cookie, evil]));
        // An opaque origin is foreign, unless the browser says it is the own page.
        let null = ("origin", "null");
        let same = ("sec-fetch-site", "same-origin");
        assert!(!ok(Method::POST, &[cookie, null]));
        assert!(!ok(Method::POST, &[null]));
        assert!(ok(Method::POST, &[cookie, null, same]));
        assert!(ok(Method::POST, &[cookie, same]));
        assert!(!ok(
            Method::POST,
            &[cookie, ("sec-fetch-site", "cross-site")]
        ));
        // A real Origin decides, whatever else is claimed.
        assert!(!ok(Method::POST, &[cookie, evil, same]));
        // The configured list replaces the own origin.
        let listed = vec!["https://app.example".to_owned()];
        assert!(cross_site_ok(
            &listed,
            &Method::POST,
            &headers(&[cookie, ("origin", "https://app.example")])
        ));
        assert!(!cross_site_ok(
            &listed,
            &Method::POST,
            &headers(&[cookie, own])
        ));
    }
}
