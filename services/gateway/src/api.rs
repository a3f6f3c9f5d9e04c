//! REST handlers under `/api/v1` (see `docs/websocket-protocol.md`).

use crate::auth::{AuthUser, clear_cookie, set_cookie};
use crate::dto;
use crate::error::{ApiError, body_bytes};
use crate::media::is_json;
use crate::state::AppState;
use crate::throttle::{Attempt, retry_after_secs};
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use csp_domain::{ErrorCode, SessionId};
use csp_proto::v1 as pb;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

/// The address a login or a webhook comes from: the TCP peer, or behind a
/// trusted proxy the last `X-Forwarded-For` entry (the one that proxy
/// appended).
pub(crate) fn client_address(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> String {
    if state.trust_forwarded_for
        && let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
        && let Ok(ip) = last.parse::<IpAddr>()
    {
        return ip.to_string();
    }
    peer.map(|Extension(ConnectInfo(addr))| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    if !is_json(&headers) {
        return Err(ApiError {
            code: ErrorCode::UnsupportedMediaType,
            message: Some("Send the login as JSON (Content-Type: application/json).".into()),
        });
    }
    let dto::LoginRequest { username, password } =
        serde_json::from_slice(&body).map_err(|_| ApiError {
            code: ErrorCode::BadFrame,
            message: Some("Send a JSON body with \"username\" and \"password\".".into()),
        })?;
    let attempt = Attempt::new(&username, &client_address(&state, &headers, peer));
    if let Err(wait) = state.throttle.begin(&attempt).await {
        let secs = retry_after_secs(wait);
        tracing::info!(retry_after_s = secs, "login refused: too many failures");
        let mut resp = ApiError {
            code: ErrorCode::TooManyLoginAttempts,
            message: Some(format!(
                "Too many failed sign-in attempts. Try again in {secs} second{}.",
                if secs == 1 { "" } else { "s" }
            )),
        }
        .into_response();
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(resp);
    }
    let reply = match state
        .policy
        .clone()
        .login(tonic::Request::new(pb::LoginRequest { username, password }))
        .await
    {
        Ok(reply) => reply.into_inner(),
        Err(s) => {
            let err = ApiError::from_status(&s);
            if matches!(
                err.code,
                ErrorCode::BadCredentials | ErrorCode::AccountDeactivated
            ) {
                state.throttle.failed(&attempt).await;
            }
            return Err(err);
        }
    };
    state.throttle.succeeded(&attempt).await;
    let user = reply.user.unwrap_or_default();
    let cookie = set_cookie(&reply.token, reply.expires_in, state.cookie_secure);
    let body = dto::Login {
        token: reply.token,
        expires_in: reply.expires_in,
        user: dto::LoginUser {
            user_id: user.user_id,
            username: user.username,
            role: user.role,
        },
    };
    Ok(([(http::header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Revokes the presented token (cookie or bearer) and clears the cookie.
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let clear = [(http::header::SET_COOKIE, clear_cookie(state.cookie_secure))];
    match crate::auth::revoke(&state, &headers).await {
        Ok(()) => (http::StatusCode::NO_CONTENT, clear).into_response(),
        Err(e) => (clear, e).into_response(),
    }
}

pub(crate) async fn me(user: AuthUser) -> Json<dto::Me> {
    Json(dto::Me {
        user_id: user.id.to_string(),
        username: user.name,
        role: user.role,
    })
}

pub(crate) async fn config(State(state): State<AppState>, _user: AuthUser) -> Response {
    // `off` is a warning the admin pages show; null when the session-pool
    // cannot say right now.
    let agent_sandbox = pool_status(&state)
        .await
        .ok()
        .map(|s| dto::Sandbox::new(s.agent_sandbox_off));
    Json(dto::Config {
        model_label: &state.model_label,
        max_frame_bytes: state.limits.max_frame_bytes,
        agent_sandbox,
    })
    .into_response()
}

pub(crate) async fn sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Sessions>, ApiError> {
    let list = state
        .default_pool
        .clone()
        .list_sessions(state.as_user(
            &user,
            pb::ListSessionsRequest {
                user_id: user.id.to_string(),
            },
        ))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(list.sessions.into()))
}

pub(crate) async fn messages(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<dto::Messages>, ApiError> {
    let session: SessionId = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::SessionNotFound))?;
    let reply = state
        .default_pool
        .clone()
        .list_messages(state.as_user(
            &user,
            pb::ListMessagesRequest {
                session_id: session.to_string(),
                user_id: user.id.to_string(),
            },
        ))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    let messages: Vec<Value> = reply
        .messages
        .into_iter()
        .filter_map(|m| serde_json::from_str(&m.json).ok())
        .collect();
    Ok(Json(dto::Messages {
        messages,
        last_seq: reply.last_seq,
    }))
}

pub(crate) async fn live() -> Json<dto::Status> {
    Json(dto::Status { status: "ok" })
}

async fn pool_status(state: &AppState) -> Result<pb::StatusResponse, tonic::Status> {
    let mut pool = state.default_pool.clone();
    let req = state.svc.request(pb::StatusRequest {});
    tokio::time::timeout(std::time::Duration::from_secs(2), pool.status(req))
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("session-pool status"))?
        .map(|r| r.into_inner())
}

fn unavailable(body: impl Serialize) -> Response {
    (http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// 200 once the session-pool has filled its first warm slot.
pub(crate) async fn startup(State(state): State<AppState>) -> Response {
    match pool_status(&state).await {
        Ok(s) if s.started => Json(dto::Started {
            status: "started",
            startup_duration_ms: s.startup_duration_ms,
        })
        .into_response(),
        Ok(_) => unavailable(dto::NotStarted {
            status: "starting",
            reason: "pool_filling",
        }),
        Err(e) => {
            tracing::warn!(error = %e, "startup probe: session-pool unreachable");
            unavailable(dto::NotStarted {
                status: "starting",
                reason: "session_pool_unreachable",
            })
        }
    }
}

/// 200 while a new user can get a session (a warm slot or room for a cold
/// start, database, bus and cache reachable, model key not rejected, not
/// shutting down); 503 with the first reason otherwise.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = |reason: &str, active: u32, max: u32| {
        unavailable(dto::NotReady {
            status: "not_ready",
            reason,
            active_sessions: active,
            max_sessions: max,
        })
    };
    if state.shutting_down.is_cancelled() {
        return not_ready("shutting_down", 0, 0);
    }
    let s = match pool_status(&state).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe: session-pool unreachable");
            return not_ready("session_pool_unreachable", 0, 0);
        }
    };
    // The session-pool already checked the database, its bus and cache;
    // these are the gateway's own connections.
    let timeout = std::time::Duration::from_secs(1);
    let (bus, cache) = tokio::join!(
        tokio::time::timeout(timeout, state.bus.ping()),
        tokio::time::timeout(timeout, state.cache.ping()),
    );
    let (bus_ok, cache_ok) = (matches!(bus, Ok(Ok(()))), matches!(cache, Ok(Ok(()))));
    let reason = if !s.ready {
        Some(s.reason.as_str())
    } else if !bus_ok {
        Some("bus_unavailable")
    } else if !cache_ok {
        Some("cache_unavailable")
    } else {
        None
    };
    match reason {
        Some(reason) => not_ready(reason, s.active_sessions, s.max_sessions),
        None => Json(dto::Ready {
            status: "ready",
            active_sessions: s.active_sessions,
            max_sessions: s.max_sessions,
            pool_depth: s.pool_depth,
            circuit_breaker_state: match s.circuit_breaker_state {
                2 => "open",
                1 => "half_open",
                _ => "closed",
            },
            agent_sandbox: dto::Sandbox::new(s.agent_sandbox_off),
        })
        .into_response(),
    }
}

pub(crate) async fn metrics() -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        csp_telemetry::render_metrics(),
    )
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn session_lists_say_which_tenant_a_session_is_bound_to() {
        use crate::testing::{Backends, FakePool, call, gateway_on};
        use csp_domain::Role;
        let (pool, addr) = FakePool::serve().await;
        let gw = gateway_on(Backends {
            pool: Some(addr),
            ..Backends::default()
        })
        .await;
        *pool.sessions.lock().unwrap() = vec![
            pb::SessionInfo {
                session_id: "bound".into(),
                tenant_id: "acme".into(),
                ..Default::default()
            },
            pb::SessionInfo {
                session_id: "free".into(),
                ..Default::default()
            },
        ];
        for (path, role) in [
            ("/api/v1/sessions", Role::User),
            ("/api/v1/admin/sessions", Role::Operator),
        ] {
            let req = http::Request::builder()
                .uri(path)
                .header(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", gw.token(role)),
                )
                .body(axum::body::Body::empty())
                .unwrap();
            let (status, _, answer) = call(&gw.app, req).await;
            assert_eq!(status, http::StatusCode::OK, "{path}: {answer}");
            let tenants: Vec<&Value> = answer["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| &s["tenant_id"])
                .collect();
            assert_eq!(tenants, [&Value::from("acme"), &Value::Null], "{path}");
        }
    }
}
