//! REST handlers for the plugin registry (operators). Authorisation happened
//! in `auth::authorize` (route rule) and happens again in the plugins service
//! (current state of the acting operator, who is also the audit log's actor);
//! these handlers translate between JSON and the `csp.v1.Plugins` API.

use crate::auth::AuthUser;
use crate::dto;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use csp_domain::ErrorCode;
use csp_proto::v1 as pb;

pub(crate) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Plugins>, ApiError> {
    let list = state
        .plugins
        .clone()
        .list_plugins(state.as_user(&user, pb::ListPluginsRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(dto::Plugins {
        plugins: list.plugins.into_iter().map(dto::Plugin::from).collect(),
    }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<dto::Plugin>, ApiError> {
    let p = state
        .plugins
        .clone()
        .get_plugin(state.as_user(&user, pb::GetPluginRequest { name }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(p.into()))
}

pub(crate) async fn activate(
    state: State<AppState>,
    user: AuthUser,
    name: Path<String>,
) -> Result<Json<dto::Plugin>, ApiError> {
    switch(state, user, name, true).await
}

pub(crate) async fn deactivate(
    state: State<AppState>,
    user: AuthUser,
    name: Path<String>,
) -> Result<Json<dto::Plugin>, ApiError> {
    switch(state, user, name, false).await
}

async fn switch(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    on: bool,
) -> Result<Json<dto::Plugin>, ApiError> {
    let req = state.as_user(&user, pb::PluginRequest { name });
    let mut client = state.plugins.clone();
    let answer = if on {
        client.activate_plugin(req).await
    } else {
        client.deactivate_plugin(req).await
    };
    let p = answer.map_err(|s| ApiError::from_status(&s))?.into_inner();
    Ok(Json(p.into()))
}

/// `PUT /api/v1/plugins/{name}/config` with `{"config": {...}}`. The body
/// is never logged: it may hold secrets.
pub(crate) async fn configure(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    body: Result<Json<dto::PluginConfig>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<dto::Plugin>, ApiError> {
    let config = match body {
        Ok(Json(dto::PluginConfig { config })) => config,
        // Over the body limit: the catalogued 413, like every other route.
        Err(e) if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge));
        }
        Err(_) => return Err(bad_config()),
    };
    let req = pb::ConfigurePluginRequest {
        name,
        config_json: serde_json::Value::Object(config).to_string(),
    };
    let p = state
        .plugins
        .clone()
        .configure_plugin(state.as_user(&user, req))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(p.into()))
}

fn bad_config() -> ApiError {
    ApiError {
        code: ErrorCode::InvalidPluginConfig,
        message: Some(r#"Send a JSON body {"config": {"setting": value, ...}}."#.into()),
    }
}

pub(crate) async fn rescan(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<dto::Rescan>, ApiError> {
    let r = state
        .plugins
        .clone()
        .rescan(state.as_user(&user, pb::RescanRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(dto::Rescan {
        plugins: r.plugins.into_iter().map(dto::Plugin::from).collect(),
        added: r.added,
        changed: r.changed,
        removed: r.removed,
    }))
}
