//! The gRPC `csp.v1.Tickets` implementation and its access table.

use crate::admin::{Admin, store_error, tenant_id};
use crate::charts::Charts;
use crate::chat::Chat;
use crate::dashboard::Dashboard;
use crate::feedback::Feedback;
use crate::import::Imports;
use crate::intake::Intake;
use crate::operations::Operations;
use crate::outbox::Outbox;
use crate::workers::Workers;
use csp_auth::{Access, Caller};
use csp_domain::{AuditStatus, EnhancementStatus, ErrorCode, Role, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::tickets_server::Tickets;
use csp_rpc::{status, status_with_message};
use csp_store::{EnhancementQuery, EnhancementRecord, Store};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::{Request, Response, Status};

/// History pages hold this many jobs.
pub const PER_PAGE: u32 = 50;
const MAX_Q_CHARS: usize = 200;

/// What each method requires (see `proto/csp/v1/tickets.proto`). A method
/// missing here is refused by the guard.
pub fn access(path: &str) -> Option<Access> {
    let method = path.strip_prefix("/csp.v1.Tickets/")?;
    Some(match method {
        "CreateTenant"
        | "ListTenants"
        | "GetTenant"
        | "UpdateTenant"
        | "DeleteTenant"
        | "RotateWebhookSecret"
        | "UpsertKbArticles"
        | "UpsertInventory"
        | "SetProcessing"
        | "TestConnection"
        | "ListToolTypes"
        | "StartImport"
        | "GetImport"
        | "ListTenantGrants"
        | "GrantTenant"
        | "RevokeTenant"
        | "ClearQueue"
        | "ReloadConfigs"
        | "RestartWorker" => Access::Role(Role::Admin),
        "ListEnhancements" | "GetEnhancement" | "GetProcessing" | "FeedbackSummary"
        | "GetDashboard" | "GetCharts" | "ListWorkers" | "RetryEnhancement"
        | "ExportEnhancements" => Access::Role(Role::Operator),
        "GetWorkerLogs" | "GetWorkerThroughput" => Access::Role(Role::Operator),
        "ListChatTenants" => Access::Role(Role::User),
        "AcceptWebhook" | "RunChatTool" | "RecordFeedback" => Access::Service,
        _ => return None,
    })
}

pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) admin: Arc<Admin>,
    pub(crate) imports: Arc<Imports>,
    pub(crate) chat: Chat,
    pub(crate) intake: Arc<Intake>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) feedback: Feedback,
    pub(crate) operations: Operations,
    pub(crate) dashboard: Arc<Dashboard>,
    pub(crate) charts: Charts,
    pub(crate) workers: Arc<Workers>,
}

impl Service {
    /// The acting user from the store (current state, not the token): a
    /// demotion or deactivation counts from the next call. A service acting
    /// on its own (no user) is let through by the guard's rule and audited
    /// without a user.
    async fn acting<T>(&self, req: &Request<T>, required: Role) -> Result<Option<UserId>, Status> {
        Ok(self.acting_as(req, required).await?.map(|(id, _)| id))
    }

    /// [`Service::acting`] with the user's current role.
    async fn acting_as<T>(
        &self,
        req: &Request<T>,
        required: Role,
    ) -> Result<Option<(UserId, Role)>, Status> {
        let caller = csp_rpc::caller(req)?;
        let Caller::User { id, .. } = caller else {
            return Ok(None);
        };
        let user = self
            .store
            .user_by_id(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| status(ErrorCode::Unauthenticated, "no such user"))?;
        if !user.is_active {
            return Err(status(ErrorCode::AccountDeactivated, "deactivated"));
        }
        if !user.role.includes(required) {
            return Err(status_with_message(
                ErrorCode::PermissionDenied,
                csp_auth::Denied::Role { required }.message(),
            ));
        }
        Ok(Some((id, user.role)))
    }

    async fn processing_state(&self) -> Result<pb::ProcessingState, Status> {
        let paused = self.store.processing_paused().await.map_err(store_error)?;
        let (depth, processing) = self.outbox.depth().await.map_err(store_error)?;
        crate::metrics::queue_depth(depth);
        Ok(pb::ProcessingState {
            paused,
            queue_depth: depth,
            active_workers: u32::try_from(processing).unwrap_or(u32::MAX),
        })
    }
}

fn bad_request(message: impl Into<String>) -> Status {
    status_with_message(ErrorCode::InvalidRequest, message)
}

fn time_filter(field: &str, text: &str) -> Result<Option<OffsetDateTime>, Status> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(Some)
        .map_err(|_| {
            bad_request(format!(
                "{field} must be an RFC 3339 timestamp such as 2025-01-31T09:30:00Z"
            ))
        })
}

/// The history's filters of a list or export request, checked.
fn history_query(r: &pb::ListEnhancementsRequest) -> Result<EnhancementQuery, Status> {
    let tenant = match r.tenant_id.trim() {
        "" => None,
        t => Some(tenant_id(t)?),
    };
    let status_filter =
        match r.status.trim() {
            "" => None,
            s => Some(s.parse::<EnhancementStatus>().map_err(|_| {
                bad_request("status must be pending, processing, completed or failed")
            })?),
        };
    let q = r.q.trim();
    if q.chars().count() > MAX_Q_CHARS {
        return Err(bad_request(format!("q exceeds {MAX_Q_CHARS} characters")));
    }
    Ok(EnhancementQuery {
        tenant_id: tenant,
        status: status_filter,
        from: time_filter("from", &r.from)?,
        to: time_filter("to", &r.to)?,
        q: (!q.is_empty()).then(|| q.to_owned()),
        page: r.page.max(1),
        per_page: PER_PAGE,
    })
}

fn rfc3339(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

pub(crate) fn enhancement(r: EnhancementRecord) -> pb::Enhancement {
    pb::Enhancement {
        job_id: r.job_id.to_string(),
        tenant_id: r.tenant_id.to_string(),
        ticket_id: r.ticket_id,
        status: r.status.as_str().to_owned(),
        attempts: r.attempts,
        context_gathered_json: r
            .context_gathered
            .map(|v| v.to_string())
            .unwrap_or_default(),
        llm_output: r.llm_output.unwrap_or_default(),
        error_message: r.error_message.unwrap_or_default(),
        processing_time_ms: r.processing_time_ms.and_then(|ms| u64::try_from(ms).ok()),
        cost_usd: r.cost_micros as f64 / 1_000_000.0,
        created_at: rfc3339(Some(r.created_at)),
        completed_at: rfc3339(r.completed_at),
        correlation_id: r.correlation_id,
        subject: r.subject,
        description: r.description,
        priority: r.priority,
        note_id: r.note_id.unwrap_or_default(),
        feedback: r
            .feedback
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default(),
        feedback_at: rfc3339(r.feedback_at),
    }
}

#[tonic::async_trait]
impl Tickets for Service {
    async fn create_tenant(
        &self,
        req: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::CreatedTenant>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.admin.create(req.into_inner(), actor).await?,
        ))
    }

    async fn list_tenants(
        &self,
        req: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        self.acting(&req, Role::Admin).await?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: self.admin.list().await?,
        }))
    }

    async fn get_tenant(
        &self,
        req: Request<pb::TenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.admin.get(&req.get_ref().tenant_id).await?,
        ))
    }

    async fn update_tenant(
        &self,
        req: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.admin.update(req.into_inner(), actor).await?,
        ))
    }

    async fn delete_tenant(
        &self,
        req: Request<pb::TenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.admin.delete(&req.get_ref().tenant_id, actor).await?,
        ))
    }

    async fn rotate_webhook_secret(
        &self,
        req: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotatedWebhookSecret>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        let r = req.get_ref();
        Ok(Response::new(
            self.admin
                .rotate(&r.tenant_id, r.webhook_secret.as_deref(), actor)
                .await?,
        ))
    }

    async fn upsert_kb_articles(
        &self,
        req: Request<pb::UpsertKbArticlesRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        let upserted = self.admin.upsert_kb(req.into_inner(), actor).await?;
        Ok(Response::new(pb::UpsertResponse { upserted }))
    }

    async fn upsert_inventory(
        &self,
        req: Request<pb::UpsertInventoryRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        let upserted = self.admin.upsert_inventory(req.into_inner(), actor).await?;
        Ok(Response::new(pb::UpsertResponse { upserted }))
    }

    async fn accept_webhook(
        &self,
        req: Request<pb::WebhookDelivery>,
    ) -> Result<Response<pb::WebhookAccepted>, Status> {
        Ok(Response::new(self.intake.accept(req.into_inner()).await?))
    }

    async fn list_enhancements(
        &self,
        req: Request<pb::ListEnhancementsRequest>,
    ) -> Result<Response<pb::ListEnhancementsResponse>, Status> {
        self.acting(&req, Role::Operator).await?;
        let query = history_query(req.get_ref())?;
        let page = query.page;
        let (rows, total) = self
            .store
            .enhancements_page(&query)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListEnhancementsResponse {
            enhancements: rows.into_iter().map(enhancement).collect(),
            total,
            page,
            per_page: PER_PAGE,
        }))
    }

    async fn get_enhancement(
        &self,
        req: Request<pb::GetEnhancementRequest>,
    ) -> Result<Response<pb::Enhancement>, Status> {
        self.acting(&req, Role::Operator).await?;
        let not_found = || {
            status_with_message(
                ErrorCode::EnhancementNotFound,
                "There is no enhancement job with this id.",
            )
        };
        let id = uuid::Uuid::parse_str(req.get_ref().job_id.trim()).map_err(|_| not_found())?;
        let job = self
            .store
            .enhancement(id)
            .await
            .map_err(store_error)?
            .ok_or_else(not_found)?;
        Ok(Response::new(enhancement(job)))
    }

    async fn set_processing(
        &self,
        req: Request<pb::SetProcessingRequest>,
    ) -> Result<Response<pb::ProcessingState>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        let paused = req.get_ref().paused;
        self.store
            .set_processing_paused(paused)
            .await
            .map_err(store_error)?;
        // One action per direction, so the Operations page lists them by
        // name: `tickets.pause` and `tickets.resume`.
        self.admin.audit.record(
            actor,
            if paused {
                "tickets.pause"
            } else {
                "tickets.resume"
            },
            serde_json::json!({"paused": paused}),
            AuditStatus::Success,
        );
        tracing::info!(
            paused,
            operation = "set_processing",
            status = if paused { "paused" } else { "resumed" },
            "enhancement processing {}",
            if paused { "paused" } else { "resumed" }
        );
        Ok(Response::new(self.processing_state().await?))
    }

    async fn get_processing(
        &self,
        req: Request<pb::GetProcessingRequest>,
    ) -> Result<Response<pb::ProcessingState>, Status> {
        self.acting(&req, Role::Operator).await?;
        Ok(Response::new(self.processing_state().await?))
    }

    async fn test_connection(
        &self,
        req: Request<pb::TestConnectionRequest>,
    ) -> Result<Response<pb::TestConnectionResult>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.admin.test_connection(req.into_inner(), actor).await?,
        ))
    }

    async fn list_tool_types(
        &self,
        req: Request<pb::ListToolTypesRequest>,
    ) -> Result<Response<pb::ToolTypes>, Status> {
        self.acting(&req, Role::Admin).await?;
        Ok(Response::new(crate::tool_types::tool_types()))
    }

    async fn start_import(
        &self,
        req: Request<pb::StartImportRequest>,
    ) -> Result<Response<pb::ImportStarted>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.imports.start(req.into_inner(), actor).await?,
        ))
    }

    async fn get_import(
        &self,
        req: Request<pb::TenantRequest>,
    ) -> Result<Response<pb::ImportProgress>, Status> {
        self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.imports.get(&req.get_ref().tenant_id).await?,
        ))
    }

    async fn list_tenant_grants(
        &self,
        req: Request<pb::TenantRequest>,
    ) -> Result<Response<pb::TenantGrants>, Status> {
        self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.chat.grants(&req.get_ref().tenant_id).await?,
        ))
    }

    async fn grant_tenant(
        &self,
        req: Request<pb::TenantGrantRequest>,
    ) -> Result<Response<pb::TenantGrants>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.chat.set_grant(req.get_ref(), true, actor).await?,
        ))
    }

    async fn revoke_tenant(
        &self,
        req: Request<pb::TenantGrantRequest>,
    ) -> Result<Response<pb::TenantGrants>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.chat.set_grant(req.get_ref(), false, actor).await?,
        ))
    }

    async fn list_chat_tenants(
        &self,
        req: Request<pb::ListChatTenantsRequest>,
    ) -> Result<Response<pb::ChatTenants>, Status> {
        // Only a user's own list: a service caller has none.
        let Some((user, role)) = self.acting_as(&req, Role::User).await? else {
            return Err(status_with_message(
                ErrorCode::InvalidRequest,
                "ListChatTenants answers for the calling user.",
            ));
        };
        Ok(Response::new(self.chat.chat_tenants(user, role).await?))
    }

    async fn run_chat_tool(
        &self,
        req: Request<pb::ChatToolRequest>,
    ) -> Result<Response<pb::ChatToolResult>, Status> {
        Ok(Response::new(self.chat.run(req.into_inner()).await?))
    }

    // ---- feedback (issue 16 item 7)

    async fn record_feedback(
        &self,
        req: Request<pb::FeedbackRequest>,
    ) -> Result<Response<pb::FeedbackRecorded>, Status> {
        Ok(Response::new(self.feedback.record(req.into_inner()).await?))
    }

    async fn feedback_summary(
        &self,
        req: Request<pb::FeedbackSummaryRequest>,
    ) -> Result<Response<pb::FeedbackSummaryResponse>, Status> {
        self.acting(&req, Role::Operator).await?;
        let r = req.get_ref();
        let (from, to) = (time_filter("from", &r.from)?, time_filter("to", &r.to)?);
        Ok(Response::new(self.feedback.summary(from, to).await?))
    }

    // ---- dashboard and workers (issue 16 items 1 and 6)

    async fn get_dashboard(
        &self,
        req: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::Dashboard>, Status> {
        self.acting(&req, Role::Operator).await?;
        let overview = self.dashboard.overview().await;
        let mut dashboard = overview.dashboard;
        dashboard.recent_failures = overview
            .recent_failures
            .into_iter()
            .map(enhancement)
            .collect();
        Ok(Response::new(dashboard))
    }

    async fn get_charts(
        &self,
        req: Request<pb::GetChartsRequest>,
    ) -> Result<Response<pb::Charts>, Status> {
        self.acting(&req, Role::Operator).await?;
        let range = csp_domain::ChartRange::from(req.get_ref().range());
        Ok(Response::new(self.charts.charts(range).await?))
    }

    async fn list_workers(
        &self,
        req: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::Workers>, Status> {
        self.acting(&req, Role::Operator).await?;
        let workers = self.workers.list().await.map_err(|e| {
            tracing::error!(error = %e, "cannot read the workers' heartbeats");
            status_with_message(
                ErrorCode::Unavailable,
                "The workers cannot be listed: the cache does not answer.",
            )
        })?;
        Ok(Response::new(pb::Workers { workers }))
    }

    async fn get_worker_logs(
        &self,
        req: Request<pb::WorkerLogsRequest>,
    ) -> Result<Response<pb::WorkerLogLines>, Status> {
        self.acting(&req, Role::Operator).await?;
        Ok(Response::new(self.workers.logs(req.get_ref()).await?))
    }

    async fn get_worker_throughput(
        &self,
        req: Request<pb::WorkerRequest>,
    ) -> Result<Response<pb::WorkerThroughput>, Status> {
        self.acting(&req, Role::Operator).await?;
        Ok(Response::new(
            self.workers.throughput(&req.get_ref().worker_id).await?,
        ))
    }

    async fn restart_worker(
        &self,
        req: Request<pb::WorkerRequest>,
    ) -> Result<Response<pb::WorkerRestart>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        Ok(Response::new(
            self.workers
                .restart(&req.get_ref().worker_id, actor)
                .await?,
        ))
    }

    // ---- operations and history (issue 16 items 4 and 5)

    async fn clear_queue(
        &self,
        req: Request<pb::ClearQueueRequest>,
    ) -> Result<Response<pb::ClearQueueResult>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        let cleared = self.operations.clear_queue(actor).await?;
        Ok(Response::new(pb::ClearQueueResult { cleared }))
    }

    async fn reload_configs(
        &self,
        req: Request<pb::ReloadConfigsRequest>,
    ) -> Result<Response<pb::ReloadConfigsResult>, Status> {
        let actor = self.acting(&req, Role::Admin).await?;
        self.operations.reload_configs(actor).await?;
        Ok(Response::new(pb::ReloadConfigsResult {}))
    }

    async fn retry_enhancement(
        &self,
        req: Request<pb::RetryEnhancementRequest>,
    ) -> Result<Response<pb::Enhancement>, Status> {
        let actor = self.acting(&req, Role::Operator).await?;
        let job = self.operations.retry(&req.get_ref().job_id, actor).await?;
        Ok(Response::new(enhancement(job)))
    }

    type ExportEnhancementsStream =
        futures::stream::BoxStream<'static, Result<pb::EnhancementPage, Status>>;

    async fn export_enhancements(
        &self,
        req: Request<pb::ListEnhancementsRequest>,
    ) -> Result<Response<Self::ExportEnhancementsStream>, Status> {
        use futures::{StreamExt as _, TryStreamExt as _};
        self.acting(&req, Role::Operator).await?;
        let query = history_query(req.get_ref())?;
        // Store pages of 500 as they are read, each as one message or a few
        // (`export_messages` keeps each under gRPC's limit).
        let pages = self
            .operations
            .export(query)
            .map_ok(|rows| {
                let jobs = rows.into_iter().map(enhancement).collect();
                futures::stream::iter(crate::operations::export_messages(jobs).into_iter().map(Ok))
            })
            .try_flatten();
        Ok(Response::new(pages.boxed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The methods of `csp.v1.Tickets`, from the descriptor set the
    /// server registers: a new RPC without a rule fails the test below.
    fn methods() -> Vec<String> {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(csp_proto::FILE_DESCRIPTOR_SET).unwrap();
        set.file
            .iter()
            .filter(|f| f.package() == "csp.v1")
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == "Tickets")
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_owned())
            .collect()
    }

    #[test]
    fn every_rpc_has_a_rule_and_nothing_else_does() {
        let methods = methods();
        assert_eq!(methods.len(), 34, "{methods:?}");
        for m in &methods {
            assert!(
                access(&format!("/csp.v1.Tickets/{m}")).is_some(),
                "{m} has no rule"
            );
        }
        assert!(access("/csp.v1.Tickets/DropTables").is_none());
        assert!(access("/csp.v1.Plugins/ListPlugins").is_none());
        for m in ["AcceptWebhook", "RunChatTool", "RecordFeedback"] {
            assert_eq!(
                access(&format!("/csp.v1.Tickets/{m}")),
                Some(Access::Service),
                "{m}"
            );
        }
        assert_eq!(
            access("/csp.v1.Tickets/ListChatTenants"),
            Some(Access::Role(Role::User))
        );
        for m in [
            "ListEnhancements",
            "GetEnhancement",
            "GetProcessing",
            "FeedbackSummary",
            "GetDashboard",
            "GetCharts",
            "ListWorkers",
            "GetWorkerLogs",
            "GetWorkerThroughput",
            "RetryEnhancement",
            "ExportEnhancements",
        ] {
            assert_eq!(
                access(&format!("/csp.v1.Tickets/{m}")),
                Some(Access::Role(Role::Operator)),
                "{m}"
            );
        }
        for m in methods.iter().filter(|m| {
            ![
                "ListEnhancements",
                "GetEnhancement",
                "GetProcessing",
                "AcceptWebhook",
                "RunChatTool",
                "ListChatTenants",
                "RecordFeedback",
                "FeedbackSummary",
                "GetDashboard",
                "GetCharts",
                "ListWorkers",
                "GetWorkerLogs",
                "GetWorkerThroughput",
                "RetryEnhancement",
                "ExportEnhancements",
            ]
            .contains(&m.as_str())
        }) {
            assert_eq!(
                access(&format!("/csp.v1.Tickets/{m}")),
                Some(Access::Role(Role::Admin)),
                "{m}"
            );
        }
    }
}
