//! Who is calling and whether they may: the JWT from the `csp_token`
//! cookie or a bearer header is verified locally, then the user's current
//! state (role, active) is looked up in the policy service on every request,
//! so a role change or deactivation takes effect on the next request, not
//! when the token expires. Every route has an explicit rule in [`access`].

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use csp_auth::{Access, Caller};
use csp_domain::{ErrorCode, Role, UserId};
use csp_proto::v1 as pb;
use http::Method;
use http::request::Parts;

/// What each route requires. `None`: not a route of the gateway (refused).
/// A test checks that every route of the router is listed.
pub(crate) fn access(method: &Method, path: &str) -> Option<Access> {
    use Access::{Public, Role as R};
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let patch = *method == Method::PATCH;
    let put = *method == Method::PUT;
    Some(match path {
        "/api/v1/auth/login" | "/api/v1/auth/logout" if post => Public,
        "/api/v1/health/live" | "/api/v1/health/ready" | "/api/v1/health/startup" if get => Public,
        "/api/v1/me" | "/api/v1/me/budget" | "/api/v1/config" | "/api/v1/sessions" if get => {
            R(Role::User)
        }
        "/api/v1/sessions/{id}/messages" if get => R(Role::User),
        "/ws" if get => R(Role::User),
        "/metrics" if get => R(Role::Operator),
        "/api/v1/admin/sessions" if get => R(Role::Operator),
        "/api/v1/plugins" | "/api/v1/plugins/{name}" if get => R(Role::Operator),
        "/api/v1/plugins/rescan"
        | "/api/v1/plugins/{name}/activate"
        | "/api/v1/plugins/{name}/deactivate"
            if post =>
        {
            R(Role::Operator)
        }
        "/api/v1/plugins/{name}/config" if put => R(Role::Operator),
        "/api/v1/users" if get || post => R(Role::Admin),
        "/api/v1/users/{id}" if patch => R(Role::Admin),
        "/api/v1/admin/audit-log" if get => R(Role::Admin),
        _ => return None,
    })
}

pub(crate) const COOKIE: &str = "csp_token";

/// How the token arrived. Cookies ride along on cross-site requests, so a
/// cookie-authenticated WebSocket must also pass the Origin check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Cookie,
    Bearer,
}

/// The authenticated user of a request, with their current role.
#[derive(Debug, Clone)]
pub(crate) struct AuthUser {
    pub(crate) id: UserId,
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) via: Via,
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
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
    let (token, via) = match bearer(parts) {
        Some(t) => (t, Via::Bearer),
        None => match cookie(parts, COOKIE) {
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
pub(crate) async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
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
    if path == "/metrics" && state.metrics_token_matches(bearer(&parts)) {
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
