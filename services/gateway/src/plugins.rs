//! REST handlers for the plugin registry (operators). Authorisation happened
//! in `auth::authorize` (route rule) and happens again in the plugins service
//! (current state of the acting operator, who is also the audit log's actor);
//! these handlers translate between JSON and the `csp.v1.Plugins` API.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use csp_domain::ErrorCode;
use csp_proto::v1 as pb;
use serde_json::{Value, json};

/// A JSON column of the proto (schema, config) as JSON again; empty is null.
fn embedded(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn plugin_json(p: &pb::Plugin) -> Value {
    let secrets: serde_json::Map<String, Value> = p
        .secrets_set
        .iter()
        .map(|k| (k.clone(), Value::Bool(true)))
        .collect();
    json!({
        "name": p.name,
        "version": p.version,
        "plugin_type": p.plugin_type,
        "description": p.description,
        "status": p.status,
        "active": p.active,
        "required_role": p.required_role,
        "dir": p.dir,
        "tools": p.tools.iter().map(|t| json!({
            "name": t.name,
            "description": t.description,
            "required_role": t.required_role,
        })).collect::<Vec<_>>(),
        "network": p.network,
        "config_schema": embedded(&p.config_schema_json),
        "config": embedded(&p.config_json),
        "secrets": secrets,
        "errors": p.errors.iter().map(|e| json!({
            "file": e.file,
            "line": e.line,
            "column": e.column,
            "field": e.field,
            "message": e.message,
            "suggestion": e.suggestion,
        })).collect::<Vec<_>>(),
        "updated_at": p.updated_at,
    })
}

fn plugins_json(list: &[pb::Plugin]) -> Vec<Value> {
    list.iter().map(plugin_json).collect()
}

pub(crate) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let list = state
        .plugins
        .clone()
        .list_plugins(state.as_user(&user, pb::ListPluginsRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(json!({ "plugins": plugins_json(&list.plugins) })))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = state
        .plugins
        .clone()
        .get_plugin(state.as_user(&user, pb::GetPluginRequest { name }))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(plugin_json(&p)))
}

pub(crate) async fn activate(
    state: State<AppState>,
    user: AuthUser,
    name: Path<String>,
) -> Result<Json<Value>, ApiError> {
    switch(state, user, name, true).await
}

pub(crate) async fn deactivate(
    state: State<AppState>,
    user: AuthUser,
    name: Path<String>,
) -> Result<Json<Value>, ApiError> {
    switch(state, user, name, false).await
}

async fn switch(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    on: bool,
) -> Result<Json<Value>, ApiError> {
    let req = state.as_user(&user, pb::PluginRequest { name });
    let mut client = state.plugins.clone();
    let answer = if on {
        client.activate_plugin(req).await
    } else {
        client.deactivate_plugin(req).await
    };
    let p = answer.map_err(|s| ApiError::from_status(&s))?.into_inner();
    Ok(Json(plugin_json(&p)))
}

/// `PUT /api/v1/plugins/{name}/config` with `{"config": {...}}`. The body
/// is never logged: it may hold secrets.
pub(crate) async fn configure(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let config = match body {
        Ok(Json(Value::Object(mut o))) => match o.remove("config") {
            Some(c @ Value::Object(_)) => c,
            _ => return Err(bad_config()),
        },
        _ => return Err(bad_config()),
    };
    let req = pb::ConfigurePluginRequest {
        name,
        config_json: config.to_string(),
    };
    let p = state
        .plugins
        .clone()
        .configure_plugin(state.as_user(&user, req))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(plugin_json(&p)))
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
) -> Result<Json<Value>, ApiError> {
    let r = state
        .plugins
        .clone()
        .rescan(state.as_user(&user, pb::RescanRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    Ok(Json(json!({
        "plugins": plugins_json(&r.plugins),
        "added": r.added,
        "changed": r.changed,
        "removed": r.removed,
    })))
}
