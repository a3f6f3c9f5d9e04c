//! The gRPC `csp.v1.Plugins` implementation.

use crate::catalog::{Catalog, store_error};
use csp_auth::{Access, Caller};
use csp_domain::{ErrorCode, Role, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::plugins_server::Plugins;
use csp_rpc::{status, status_with_message};
use csp_store::Store;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};

/// What each method requires (see `proto/csp/v1/plugins.proto`). A method
/// missing here is refused by the guard.
pub fn access(path: &str) -> Option<Access> {
    let method = path.strip_prefix("/csp.v1.Plugins/")?;
    Some(match method {
        "ListPlugins" | "GetPlugin" | "ActivatePlugin" | "DeactivatePlugin" | "ConfigurePlugin"
        | "Rescan" => Access::Role(Role::Operator),
        "ActiveServers" | "WatchActiveSet" => Access::Service,
        _ => return None,
    })
}

pub struct Service {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) store: Arc<dyn Store>,
    /// Ends the watch streams, which would otherwise hold a graceful
    /// shutdown open forever.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

impl Service {
    /// The acting operator, from the store (current state, not the token):
    /// a demotion or deactivation counts from the next call.
    async fn operator(&self, caller: &Caller) -> Result<UserId, Status> {
        let id = caller
            .user_id()
            .ok_or_else(|| status(ErrorCode::PermissionDenied, "plugin actions need a user"))?;
        let user = self
            .store
            .user_by_id(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| status(ErrorCode::Unauthenticated, "no such user"))?;
        if !user.is_active {
            return Err(status(ErrorCode::AccountDeactivated, "deactivated"));
        }
        if !user.role.includes(Role::Operator) {
            return Err(status_with_message(
                ErrorCode::PermissionDenied,
                csp_auth::Denied::Role {
                    required: Role::Operator,
                }
                .message(),
            ));
        }
        Ok(id)
    }

    async fn acting<T>(&self, req: &Request<T>) -> Result<UserId, Status> {
        let caller = csp_rpc::caller(req)?;
        self.operator(&caller).await
    }
}

/// The service name (in its service token) of the only caller of
/// `ActiveServers`.
pub(crate) const SECRETS_READER: &str = "session-pool";

type ActiveSetStream = Pin<Box<dyn futures::Stream<Item = Result<pb::ActiveSet, Status>> + Send>>;

#[tonic::async_trait]
impl Plugins for Service {
    async fn list_plugins(
        &self,
        req: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        self.acting(&req).await?;
        Ok(Response::new(pb::ListPluginsResponse {
            plugins: self.catalog.list().await?,
        }))
    }

    async fn get_plugin(
        &self,
        req: Request<pb::GetPluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        self.acting(&req).await?;
        Ok(Response::new(self.catalog.get(&req.get_ref().name).await?))
    }

    async fn activate_plugin(
        &self,
        req: Request<pb::PluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        let actor = self.acting(&req).await?;
        let plugin = self.catalog.activate(&req.get_ref().name, actor).await?;
        tracing::info!(plugin = %plugin.name, user.id = %actor, "plugin activated");
        Ok(Response::new(plugin))
    }

    async fn deactivate_plugin(
        &self,
        req: Request<pb::PluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        let actor = self.acting(&req).await?;
        let plugin = self.catalog.deactivate(&req.get_ref().name, actor).await?;
        tracing::info!(plugin = %plugin.name, user.id = %actor, "plugin deactivated");
        Ok(Response::new(plugin))
    }

    async fn configure_plugin(
        &self,
        req: Request<pb::ConfigurePluginRequest>,
    ) -> Result<Response<pb::Plugin>, Status> {
        let actor = self.acting(&req).await?;
        let r = req.into_inner();
        let config = match serde_json::from_str::<serde_json::Value>(&r.config_json) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(status_with_message(
                    ErrorCode::InvalidPluginConfig,
                    "The configuration must be a JSON object of setting names to values.",
                ));
            }
        };
        let plugin = self.catalog.configure(&r.name, config, actor).await?;
        tracing::info!(plugin = %plugin.name, user.id = %actor, "plugin configured");
        Ok(Response::new(plugin))
    }

    async fn rescan(
        &self,
        req: Request<pb::RescanRequest>,
    ) -> Result<Response<pb::RescanResponse>, Status> {
        let actor = self.acting(&req).await?;
        let changes = self.catalog.rescan().await?;
        self.catalog.audit(
            actor,
            "plugin.rescan",
            serde_json::json!({
                "added": changes.added,
                "changed": changes.changed,
                "removed": changes.removed,
            }),
        );
        Ok(Response::new(pb::RescanResponse {
            plugins: self.catalog.list().await?,
            added: changes.added,
            changed: changes.changed,
            removed: changes.removed,
        }))
    }

    async fn active_servers(
        &self,
        req: Request<pb::ActiveServersRequest>,
    ) -> Result<Response<pb::ActiveServersResponse>, Status> {
        // The one answer with secret values: only for the service that
        // starts MCP servers, not for any holder of a service token.
        match csp_rpc::caller(&req)? {
            Caller::Service { name } if name == SECRETS_READER => {}
            _ => {
                return Err(status(
                    ErrorCode::PermissionDenied,
                    "only the session-pool may read plugin secrets",
                ));
            }
        }
        Ok(Response::new(self.catalog.active_servers().await?))
    }

    type WatchActiveSetStream = ActiveSetStream;

    async fn watch_active_set(
        &self,
        _req: Request<pb::WatchActiveSetRequest>,
    ) -> Result<Response<Self::WatchActiveSetStream>, Status> {
        use futures::StreamExt;
        // The current set first, then every change.
        let stream = WatchStream::new(self.catalog.subscribe())
            .map(|set| Ok((*set).clone()))
            .take_until(self.shutdown.clone().cancelled_owned());
        Ok(Response::new(Box::pin(stream)))
    }
}
