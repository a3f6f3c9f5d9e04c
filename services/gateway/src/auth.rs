//! Who is calling: the JWT from the `csp_token` cookie or a bearer header,
//! verified locally (no network call per request).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use csp_domain::{ErrorCode, Role, UserId};
use http::request::Parts;

pub(crate) const COOKIE: &str = "csp_token";

/// How the token arrived. Cookies ride along on cross-site requests, so a
/// cookie-authenticated WebSocket must also pass the Origin check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Cookie,
    Bearer,
}

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

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
        Ok(AuthUser {
            id: claims.sub,
            name: claims.name,
            role: claims.role,
            via,
        })
    }
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
