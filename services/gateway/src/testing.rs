//! In-process test fixtures: the gateway's own router (every layer) with a
//! fake policy service that reports each test user's role, and the other
//! backends on a port where nothing listens, or a fake of the tickets
//! service or of the session-pool where a test needs one.

use crate::state::{AppState, Limits, Parts};
use axum::Router;
use csp_domain::{Role, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::policy_server::{Policy, PolicyServer};
use csp_proto::v1::session_pool_server::{SessionPool, SessionPoolServer};
use csp_proto::v1::tickets_server::{Tickets, TicketsServer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Answers `GetUser` and `ListUsers` for the known users (each named after
/// its role); nothing else.
pub(crate) struct FakePolicy {
    users: HashMap<String, Role>,
}

fn none<T>() -> Result<tonic::Response<T>, tonic::Status> {
    Err(tonic::Status::unimplemented("fake policy"))
}

#[tonic::async_trait]
impl Policy for FakePolicy {
    async fn login(
        &self,
        _: tonic::Request<pb::LoginRequest>,
    ) -> Result<tonic::Response<pb::LoginResponse>, tonic::Status> {
        none()
    }
    async fn get_user(
        &self,
        req: tonic::Request<pb::GetUserRequest>,
    ) -> Result<tonic::Response<pb::User>, tonic::Status> {
        let id = req.into_inner().user_id;
        let role = self
            .users
            .get(&id)
            .ok_or_else(|| tonic::Status::not_found("no such user"))?;
        Ok(tonic::Response::new(pb::User {
            user_id: id,
            username: role.as_str().to_owned(),
            role: role.as_str().to_owned(),
            is_active: true,
            ..Default::default()
        }))
    }
    async fn list_users(
        &self,
        _: tonic::Request<pb::ListUsersRequest>,
    ) -> Result<tonic::Response<pb::ListUsersResponse>, tonic::Status> {
        let mut users: Vec<pb::User> = self
            .users
            .iter()
            .map(|(id, role)| pb::User {
                user_id: id.clone(),
                username: role.as_str().to_owned(),
                role: role.as_str().to_owned(),
                is_active: true,
                ..Default::default()
            })
            .collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(tonic::Response::new(pb::ListUsersResponse { users }))
    }
    async fn create_user(
        &self,
        _: tonic::Request<pb::CreateUserRequest>,
    ) -> Result<tonic::Response<pb::User>, tonic::Status> {
        none()
    }
    async fn update_user(
        &self,
        _: tonic::Request<pb::UpdateUserRequest>,
    ) -> Result<tonic::Response<pb::User>, tonic::Status> {
        none()
    }
    async fn check_tool(
        &self,
        _: tonic::Request<pb::CheckToolRequest>,
    ) -> Result<tonic::Response<pb::CheckToolResponse>, tonic::Status> {
        none()
    }
    async fn admit_turn(
        &self,
        _: tonic::Request<pb::AdmitTurnRequest>,
    ) -> Result<tonic::Response<pb::AdmitTurnResponse>, tonic::Status> {
        none()
    }
    async fn settle_turn(
        &self,
        _: tonic::Request<pb::SettleTurnRequest>,
    ) -> Result<tonic::Response<pb::SettleTurnResponse>, tonic::Status> {
        none()
    }
    async fn get_budget(
        &self,
        _: tonic::Request<pb::GetBudgetRequest>,
    ) -> Result<tonic::Response<pb::Budget>, tonic::Status> {
        none()
    }
    async fn list_audit(
        &self,
        _: tonic::Request<pb::ListAuditRequest>,
    ) -> Result<tonic::Response<pb::ListAuditResponse>, tonic::Status> {
        none()
    }
}

pub(crate) const METRICS_TOKEN: &str = "scrape-token-for-tests";

pub(crate) struct Gateway {
    pub(crate) app: Router,
    /// A bearer token per role.
    pub(crate) tokens: Vec<(Role, String)>,
    /// Each role's user id.
    pub(crate) users: Vec<(Role, UserId)>,
}

impl Gateway {
    pub(crate) fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    pub(crate) fn user(&self, role: Role) -> UserId {
        self.users.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

/// The test gateway's token keys (the fakes verify callers with them).
pub(crate) fn test_tokens() -> csp_auth::Tokens {
    let secret = secrecy::SecretString::from("a test secret of at least thirty-two bytes");
    csp_auth::Tokens::new(&secret, std::time::Duration::from_secs(600)).unwrap()
}

/// The gateway with every backend but the policy service unreachable.
pub(crate) async fn gateway() -> Gateway {
    gateway_with(None, None).await
}

/// The gateway calling the tickets service at `tickets` (else nowhere),
/// with `CSP_PUBLIC_URL` set to `public_url`.
pub(crate) async fn gateway_with(tickets: Option<String>, public_url: Option<&str>) -> Gateway {
    gateway_on(Backends {
        tickets,
        public_url,
        ..Backends::default()
    })
    .await
}

/// Where the gateway's backends are (other than the fake policy service);
/// `None`: a port where nothing listens.
#[derive(Default)]
pub(crate) struct Backends<'a> {
    pub(crate) tickets: Option<String>,
    pub(crate) pool: Option<String>,
    /// `CSP_PUBLIC_URL`.
    pub(crate) public_url: Option<&'a str>,
}

pub(crate) async fn gateway_on(backends: Backends<'_>) -> Gateway {
    let Backends {
        tickets,
        pool,
        public_url,
    } = backends;
    let tokens = test_tokens();
    let mut users = HashMap::new();
    let mut bearer = Vec::new();
    let mut ids = Vec::new();
    for role in [Role::User, Role::Operator, Role::Admin] {
        let id = UserId::new();
        users.insert(id.to_string(), role);
        bearer.push((role, tokens.issue(id, role.as_str(), role).unwrap().0));
        ids.push((role, id));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let policy_addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PolicyServer::new(FakePolicy { users }))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let nowhere = nowhere();
    let channel = |addr: &str| csp_rpc::channel(addr).unwrap();
    let cache: Arc<dyn csp_cache::Cache> = Arc::new(csp_cache::MemoryCache::new());
    let state = AppState::new(Parts {
        tokens,
        metrics_token: Some(METRICS_TOKEN.into()),
        policy: pb::policy_client::PolicyClient::new(channel(&policy_addr)),
        plugins: pb::plugins_client::PluginsClient::new(channel(&nowhere)),
        tickets: pb::tickets_client::TicketsClient::new(channel(
            tickets.as_deref().unwrap_or(&nowhere),
        )),
        public_url: public_url.map(str::to_owned),
        default_pool: pb::session_pool_client::SessionPoolClient::new(channel(
            pool.as_deref().unwrap_or(&nowhere),
        )),
        bus: Arc::new(csp_bus::InProcessBus::new(Default::default()).unwrap()),
        cache: cache.clone(),
        allowed_origins: Vec::new(),
        throttle: crate::throttle::Throttle::new(
            cache,
            crate::LoginLimits::default(),
            Arc::new(crate::throttle::system_now_ms),
        ),
        trust_forwarded_for: false,
        model_label: "test".into(),
        cookie_secure: false,
        limits: Limits {
            max_frame_bytes: 1 << 16,
            send_queue: 16,
            send_queue_bytes: 1 << 20,
        },
        shutdown_grace_seconds: 1,
    });
    Gateway {
        app: crate::router(state, None),
        tokens: bearer,
        users: ids,
    }
}

/// Serves `app` on a loopback port (for what needs a real connection: a
/// WebSocket upgrade); returns its address.
pub(crate) async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An address where nothing listens (bound and dropped).
pub(crate) fn nowhere() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// A webhook delivery as the fake tickets service received it.
pub(crate) struct Delivery {
    pub(crate) delivery: pb::WebhookDelivery,
    pub(crate) metadata: tonic::metadata::MetadataMap,
}

/// How the fake answers a webhook.
pub(crate) type WebhookScript = fn() -> Result<pb::WebhookAccepted, tonic::Status>;

/// A tickets service that records what it is asked and answers from a
/// script: webhooks with `webhook_answer` (accepted as job `job-1` when
/// unset), tenants from the one it holds.
#[derive(Default)]
pub(crate) struct FakeTickets {
    pub(crate) deliveries: Mutex<Vec<Delivery>>,
    pub(crate) webhook_answer: Mutex<Option<WebhookScript>>,
    pub(crate) creates: Mutex<Vec<pb::CreateTenantRequest>>,
    pub(crate) updates: Mutex<Vec<pb::UpdateTenantRequest>>,
    pub(crate) lists: Mutex<Vec<pb::ListEnhancementsRequest>>,
    /// What `GetTenant` answers (`UpdateTenant` too).
    pub(crate) tenant: Mutex<pb::Tenant>,
    pub(crate) connection_tests: Mutex<Vec<pb::TestConnectionRequest>>,
    /// What `TestConnection` answers (for a tenant other than `tenant`:
    /// `tenant_not_found`).
    pub(crate) connection_answer: Mutex<pb::TestConnectionResult>,
    /// The grants of `tenant` (another tenant: `tenant_not_found`), as
    /// `(user_id, granted_by)`; granting and revoking change them.
    pub(crate) grants: Mutex<Vec<(String, String)>>,
    /// What `ListChatTenants` answers, by the calling user's id.
    pub(crate) chat_tenants: Mutex<HashMap<String, Vec<pb::ChatTenant>>>,
    /// Who asked `ListChatTenants` (the user ids of their tokens).
    pub(crate) chat_tenant_lists: Mutex<Vec<String>>,
    /// The operations asked for, in order: `clear_queue`,
    /// `reload_configs`, `retry:<job_id>`.
    pub(crate) operations: Mutex<Vec<String>>,
    /// What `ExportEnhancements` was asked, and the pages it streams (then
    /// an `unavailable` error when `export_fails` is set).
    pub(crate) exports: Mutex<Vec<pb::ListEnhancementsRequest>>,
    pub(crate) export_pages: Mutex<Vec<pb::EnhancementPage>>,
    pub(crate) export_fails: Mutex<bool>,
    /// The feedback links followed, with the caller's `authorization`. The
    /// answer goes by the signature: `good` records, `gone` names no job,
    /// `down` is unavailable, anything else is invalid.
    pub(crate) feedback_clicks: Mutex<Vec<(pb::FeedbackRequest, String)>>,
    /// The summaries asked for; each answers acme 3/1 and beta 0/2.
    pub(crate) feedback_summaries: Mutex<Vec<pb::FeedbackSummaryRequest>>,
    /// The inventory uploads received. A system whose ip is `bad` is
    /// refused as the tickets service refuses it (`systems[i].ip …`).
    pub(crate) inventory: Mutex<Vec<pb::UpsertInventoryRequest>>,
    /// The imports asked for; the first starts, later ones answer it
    /// running (`started: false`).
    pub(crate) imports: Mutex<Vec<pb::StartImportRequest>>,
    /// The chart ranges asked for.
    pub(crate) chart_ranges: Mutex<Vec<pb::ChartRange>>,
}

impl FakeTickets {
    fn grants_of(&self, tenant_id: &str) -> Answer<pb::TenantGrants> {
        if tenant_id != self.tenant.lock().unwrap().tenant_id {
            return Err(csp_rpc::status(
                csp_domain::ErrorCode::TenantNotFound,
                "no such tenant",
            ));
        }
        let grants = self
            .grants
            .lock()
            .unwrap()
            .iter()
            .map(|(user_id, by)| pb::TenantGrant {
                user_id: user_id.clone(),
                granted_by: by.clone(),
                granted_at: "2026-01-02T03:04:05Z".into(),
            })
            .collect();
        Ok(tonic::Response::new(pb::TenantGrants {
            tenant_id: tenant_id.to_owned(),
            grants,
        }))
    }
}

/// The user id of the token a request carries, verified with the test
/// gateway's key ("" without a valid one).
fn caller<T>(req: &tonic::Request<T>) -> String {
    req.metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| test_tokens().verify(token).ok())
        .map(|claims| claims.sub.to_string())
        .unwrap_or_default()
}

impl FakeTickets {
    /// Serves a fake on a loopback port; returns it and its address.
    pub(crate) async fn serve() -> (Arc<FakeTickets>, String) {
        let fake = Arc::new(FakeTickets::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TicketsServer::from_arc(fake.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (fake, addr)
    }
}

fn unimplemented<T>() -> Result<tonic::Response<T>, tonic::Status> {
    Err(tonic::Status::unimplemented("fake tickets"))
}

type Answer<T> = Result<tonic::Response<T>, tonic::Status>;

#[tonic::async_trait]
impl Tickets for FakeTickets {
    async fn create_tenant(
        &self,
        req: tonic::Request<pb::CreateTenantRequest>,
    ) -> Answer<pb::CreatedTenant> {
        let r = req.into_inner();
        // The tickets service's split: secret fields by name, the others
        // by value.
        let secret = |k: &str| k == "api_key" || k.ends_with("_token");
        let tenant = pb::Tenant {
            tool_settings: r
                .tool_fields
                .iter()
                .filter(|(k, v)| !secret(k) && !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            secrets_set: r
                .tool_fields
                .iter()
                .filter(|(k, v)| secret(k) && !v.is_empty())
                .map(|(k, _)| k.clone())
                .collect(),
            tenant_id: r.tenant_id.clone(),
            name: r.name.clone(),
            tool_type: r.tool_type.clone(),
            servicedesk_url: r.servicedesk_url.clone(),
            servicedesk_auth: "authtoken".into(),
            api_key_set: !r.api_key.is_empty(),
            enhancement_preferences: Some(pb::EnhancementPreferences {
                sources: vec!["ticket_history".into(), "kb".into(), "ip_inventory".into()],
                note_format: "html".into(),
                max_words: 500,
                mask_pii: false,
            }),
            is_active: true,
            monthly_budget_micros: r.monthly_budget_micros,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            webhook_path: format!("/webhook/{}/{}", r.tool_type, r.tenant_id),
            ..Default::default()
        };
        self.creates.lock().unwrap().push(r);
        Ok(tonic::Response::new(pb::CreatedTenant {
            tenant: Some(tenant),
            webhook_secret: "whsec-shown-once".into(),
        }))
    }
    async fn list_tenants(
        &self,
        _: tonic::Request<pb::ListTenantsRequest>,
    ) -> Answer<pb::ListTenantsResponse> {
        unimplemented()
    }
    async fn get_tenant(&self, _: tonic::Request<pb::TenantRequest>) -> Answer<pb::Tenant> {
        Ok(tonic::Response::new(self.tenant.lock().unwrap().clone()))
    }
    async fn update_tenant(
        &self,
        req: tonic::Request<pb::UpdateTenantRequest>,
    ) -> Answer<pb::Tenant> {
        self.updates.lock().unwrap().push(req.into_inner());
        Ok(tonic::Response::new(self.tenant.lock().unwrap().clone()))
    }
    async fn delete_tenant(&self, _: tonic::Request<pb::TenantRequest>) -> Answer<pb::Tenant> {
        unimplemented()
    }
    async fn rotate_webhook_secret(
        &self,
        _: tonic::Request<pb::RotateWebhookSecretRequest>,
    ) -> Answer<pb::RotatedWebhookSecret> {
        unimplemented()
    }
    async fn upsert_kb_articles(
        &self,
        _: tonic::Request<pb::UpsertKbArticlesRequest>,
    ) -> Answer<pb::UpsertResponse> {
        unimplemented()
    }
    async fn upsert_inventory(
        &self,
        req: tonic::Request<pb::UpsertInventoryRequest>,
    ) -> Answer<pb::UpsertResponse> {
        let r = req.into_inner();
        let bad = r.systems.iter().position(|s| s.ip == "bad");
        let upserted = r.systems.len() as u32;
        self.inventory.lock().unwrap().push(r);
        if let Some(i) = bad {
            return Err(csp_rpc::status_with_message(
                csp_domain::ErrorCode::InvalidRequest,
                format!("systems[{i}].ip must be an IPv4 or IPv6 address"),
            ));
        }
        Ok(tonic::Response::new(pb::UpsertResponse { upserted }))
    }
    async fn accept_webhook(
        &self,
        req: tonic::Request<pb::WebhookDelivery>,
    ) -> Answer<pb::WebhookAccepted> {
        let (metadata, _, delivery) = req.into_parts();
        self.deliveries
            .lock()
            .unwrap()
            .push(Delivery { delivery, metadata });
        match *self.webhook_answer.lock().unwrap() {
            Some(answer) => answer().map(tonic::Response::new),
            None => Ok(tonic::Response::new(pb::WebhookAccepted {
                job_id: "job-1".into(),
                status: "queued".into(),
                duplicate: false,
            })),
        }
    }
    async fn list_enhancements(
        &self,
        req: tonic::Request<pb::ListEnhancementsRequest>,
    ) -> Answer<pb::ListEnhancementsResponse> {
        let r = req.into_inner();
        let page = r.page;
        self.lists.lock().unwrap().push(r);
        Ok(tonic::Response::new(pb::ListEnhancementsResponse {
            enhancements: vec![pb::Enhancement {
                job_id: "j".into(),
                status: "completed".into(),
                context_gathered_json: r#"{"kb":[]}"#.into(),
                ..Default::default()
            }],
            total: 1,
            page,
            per_page: 50,
        }))
    }
    async fn get_enhancement(
        &self,
        _: tonic::Request<pb::GetEnhancementRequest>,
    ) -> Answer<pb::Enhancement> {
        Err(csp_rpc::status(
            csp_domain::ErrorCode::EnhancementNotFound,
            "no such job",
        ))
    }
    async fn set_processing(
        &self,
        _: tonic::Request<pb::SetProcessingRequest>,
    ) -> Answer<pb::ProcessingState> {
        unimplemented()
    }
    async fn get_processing(
        &self,
        _: tonic::Request<pb::GetProcessingRequest>,
    ) -> Answer<pb::ProcessingState> {
        unimplemented()
    }
    async fn test_connection(
        &self,
        req: tonic::Request<pb::TestConnectionRequest>,
    ) -> Answer<pb::TestConnectionResult> {
        let r = req.into_inner();
        let known = self.tenant.lock().unwrap().tenant_id.clone();
        let unknown = matches!(
            &r.target,
            Some(pb::test_connection_request::Target::TenantId(id)) if *id != known
        );
        self.connection_tests.lock().unwrap().push(r);
        if unknown {
            return Err(csp_rpc::status(
                csp_domain::ErrorCode::TenantNotFound,
                "no such tenant",
            ));
        }
        Ok(tonic::Response::new(
            self.connection_answer.lock().unwrap().clone(),
        ))
    }
    async fn list_tool_types(
        &self,
        _: tonic::Request<pb::ListToolTypesRequest>,
    ) -> Answer<pb::ToolTypes> {
        Ok(tonic::Response::new(pb::ToolTypes {
            tool_types: vec![pb::ToolType {
                tool_type: "servicedesk_plus".into(),
                display_name: "ServiceDesk Plus".into(),
                fields: vec![
                    pb::ToolField {
                        name: "servicedesk_url".into(),
                        label: "ServiceDesk Plus URL".into(),
                        required: true,
                        kind: "url".into(),
                        ..Default::default()
                    },
                    pb::ToolField {
                        name: "servicedesk_auth".into(),
                        label: "Authentication".into(),
                        kind: "choice".into(),
                        choices: vec!["authtoken".into(), "zoho_oauth".into()],
                        ..Default::default()
                    },
                    pb::ToolField {
                        name: "api_key".into(),
                        label: "API key".into(),
                        required: true,
                        secret: true,
                        kind: "credential".into(),
                        ..Default::default()
                    },
                ],
            }],
        }))
    }
    async fn start_import(
        &self,
        req: tonic::Request<pb::StartImportRequest>,
    ) -> Answer<pb::ImportStarted> {
        let r = req.into_inner();
        let mut imports = self.imports.lock().unwrap();
        imports.push(r.clone());
        Ok(tonic::Response::new(pb::ImportStarted {
            started: imports.len() == 1,
            progress: Some(pb::ImportProgress {
                tenant_id: r.tenant_id,
                state: "running".into(),
                started_at: "2026-01-02T03:04:05Z".into(),
                ..Default::default()
            }),
        }))
    }
    async fn get_import(
        &self,
        req: tonic::Request<pb::TenantRequest>,
    ) -> Answer<pb::ImportProgress> {
        let tenant_id = req.into_inner().tenant_id;
        if self.imports.lock().unwrap().is_empty() {
            return Err(csp_rpc::status(
                csp_domain::ErrorCode::NotFound,
                "no import",
            ));
        }
        Ok(tonic::Response::new(pb::ImportProgress {
            tenant_id,
            state: "completed".into(),
            pages: 2,
            imported: 150,
            skipped: 1,
            total: Some(151),
            started_at: "2026-01-02T03:04:05Z".into(),
            finished_at: "2026-01-02T03:05:00Z".into(),
            ..Default::default()
        }))
    }
    async fn list_tenant_grants(
        &self,
        req: tonic::Request<pb::TenantRequest>,
    ) -> Answer<pb::TenantGrants> {
        self.grants_of(&req.get_ref().tenant_id)
    }
    async fn grant_tenant(
        &self,
        req: tonic::Request<pb::TenantGrantRequest>,
    ) -> Answer<pb::TenantGrants> {
        let by = caller(&req);
        let r = req.into_inner();
        self.grants_of(&r.tenant_id)?;
        let mut grants = self.grants.lock().unwrap();
        if !grants.iter().any(|(u, _)| *u == r.user_id) {
            grants.push((r.user_id, by));
        }
        drop(grants);
        self.grants_of(&r.tenant_id)
    }
    async fn revoke_tenant(
        &self,
        req: tonic::Request<pb::TenantGrantRequest>,
    ) -> Answer<pb::TenantGrants> {
        let r = req.into_inner();
        self.grants_of(&r.tenant_id)?;
        self.grants.lock().unwrap().retain(|(u, _)| *u != r.user_id);
        self.grants_of(&r.tenant_id)
    }
    async fn list_chat_tenants(
        &self,
        req: tonic::Request<pb::ListChatTenantsRequest>,
    ) -> Answer<pb::ChatTenants> {
        let user = caller(&req);
        self.chat_tenant_lists.lock().unwrap().push(user.clone());
        let tenants = self
            .chat_tenants
            .lock()
            .unwrap()
            .get(&user)
            .cloned()
            .unwrap_or_default();
        Ok(tonic::Response::new(pb::ChatTenants { tenants }))
    }
    async fn run_chat_tool(
        &self,
        _: tonic::Request<pb::ChatToolRequest>,
    ) -> Answer<pb::ChatToolResult> {
        unimplemented()
    }

    async fn record_feedback(
        &self,
        req: tonic::Request<pb::FeedbackRequest>,
    ) -> Answer<pb::FeedbackRecorded> {
        use csp_domain::ErrorCode;
        let auth = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let r = req.into_inner();
        self.feedback_clicks.lock().unwrap().push((r.clone(), auth));
        match r.signature.as_str() {
            "good" => Ok(tonic::Response::new(pb::FeedbackRecorded {
                job_id: r.job_id,
                vote: r.vote,
            })),
            "gone" => Err(csp_rpc::status(ErrorCode::EnhancementNotFound, "no job")),
            "down" => Err(csp_rpc::status(ErrorCode::Unavailable, "store down")),
            _ => Err(csp_rpc::status(
                ErrorCode::WebhookSignatureInvalid,
                "bad signature",
            )),
        }
    }

    async fn feedback_summary(
        &self,
        req: tonic::Request<pb::FeedbackSummaryRequest>,
    ) -> Answer<pb::FeedbackSummaryResponse> {
        self.feedback_summaries
            .lock()
            .unwrap()
            .push(req.into_inner());
        let tenant = |id: &str, helpful, not_helpful| pb::TenantFeedback {
            tenant_id: id.into(),
            helpful,
            not_helpful,
        };
        Ok(tonic::Response::new(pb::FeedbackSummaryResponse {
            tenants: vec![tenant("acme", 3, 1), tenant("beta", 0, 2)],
        }))
    }

    /// A degraded pipeline: one failure, Redis down, nothing ended yet.
    async fn get_dashboard(
        &self,
        _: tonic::Request<pb::GetDashboardRequest>,
    ) -> Answer<pb::Dashboard> {
        let dependency = |name: &str, ok: bool, detail: &str| pb::Dependency {
            name: name.into(),
            ok,
            detail: detail.into(),
        };
        Ok(tonic::Response::new(pb::Dashboard {
            status: "degraded".into(),
            reason: "The cache (redis) is unreachable.".into(),
            queue_depth: 4,
            failed_24h: 1,
            success_rate_24h: None,
            p95_latency_ms_24h: None,
            active_workers: 2,
            recent_failures: vec![pb::Enhancement {
                job_id: "j-failed".into(),
                status: "failed".into(),
                error_message: "<b>tenant inactive</b>".into(),
                ..Default::default()
            }],
            dependencies: vec![
                dependency("postgres", true, "2 ms"),
                dependency("redis", false, "unreachable"),
                dependency("nats", true, "1 ms"),
            ],
            ..Default::default()
        }))
    }

    /// Three points of a stale Prometheus answer; NaN where there is no
    /// value.
    async fn get_charts(&self, req: tonic::Request<pb::GetChartsRequest>) -> Answer<pb::Charts> {
        let range = req.get_ref().range();
        self.chart_ranges.lock().unwrap().push(range);
        Ok(tonic::Response::new(pb::Charts {
            range: range as i32,
            source: "prometheus".into(),
            warning: "Prometheus unreachable since 2026-01-02 03:04:05 UTC: showing data from 2026-01-02 03:00:00 UTC.".into(),
            generated_at: "2026-01-02T03:00:00Z".into(),
            step_seconds: 900,
            window_seconds: 900,
            timestamps: vec![1_767_322_800, 1_767_323_700, 1_767_324_600],
            queue_depth: vec![f64::NAN, 2.0, 3.0],
            success_rate: vec![f64::NAN, 1.0, 0.5],
            latency_p50_seconds: vec![f64::NAN, 1.5, f64::INFINITY],
            latency_p95_seconds: vec![f64::NAN, 4.0, 5.0],
            latency_p99_seconds: vec![f64::NAN, 6.0, 7.0],
        }))
    }

    /// One busy worker.
    async fn list_workers(&self, _: tonic::Request<pb::ListWorkersRequest>) -> Answer<pb::Workers> {
        Ok(tonic::Response::new(pb::Workers {
            workers: vec![pb::Worker {
                worker_id: "w-1".into(),
                hostname: "worker-a".into(),
                started_at: "2026-01-02T03:04:05Z".into(),
                last_seen_at: "2026-01-02T04:04:05Z".into(),
                status: "active".into(),
                active_jobs: 2,
                completed_jobs: 40,
                failed_jobs: 1,
                cpu_percent: 81.5,
                memory_percent: 12.25,
                jobs_per_minute: 3.0,
            }],
        }))
    }

    /// Worker [`FAKE_WORKER`] has three lines; any other is not found.
    async fn get_worker_logs(
        &self,
        req: tonic::Request<pb::WorkerLogsRequest>,
    ) -> Answer<pb::WorkerLogLines> {
        let r = req.into_inner();
        if r.worker_id != FAKE_WORKER {
            return Err(no_worker());
        }
        let level = if r.level.is_empty() {
            "debug".to_owned()
        } else {
            r.level
        };
        let min: csp_domain::LogLevel = level.parse().unwrap();
        let line = |level: &str, text: &str| pb::WorkerLogLine {
            level: level.into(),
            text: text.into(),
        };
        Ok(tonic::Response::new(pb::WorkerLogLines {
            worker_id: r.worker_id,
            level,
            lines: [
                line("info", "INFO job started"),
                line("warn", "WARN <b>kb</b> timed out"),
                line("error", "ERROR note failed"),
            ]
            .into_iter()
            .filter(|l| {
                l.level
                    .parse::<csp_domain::LogLevel>()
                    .unwrap()
                    .at_least(min)
            })
            .collect(),
        }))
    }

    /// Worker [`FAKE_WORKER`] ended two jobs in the last hour.
    async fn get_worker_throughput(
        &self,
        req: tonic::Request<pb::WorkerRequest>,
    ) -> Answer<pb::WorkerThroughput> {
        let r = req.into_inner();
        if r.worker_id != FAKE_WORKER {
            return Err(no_worker());
        }
        Ok(tonic::Response::new(pb::WorkerThroughput {
            worker_id: r.worker_id,
            hours: vec![
                pb::ThroughputHour {
                    start: "2026-01-02T02:00:00Z".into(),
                    completed: 0,
                    failed: 0,
                },
                pb::ThroughputHour {
                    start: "2026-01-02T03:00:00Z".into(),
                    completed: 1,
                    failed: 1,
                },
            ],
        }))
    }

    async fn restart_worker(
        &self,
        req: tonic::Request<pb::WorkerRequest>,
    ) -> Answer<pb::WorkerRestart> {
        let r = req.into_inner();
        self.operations
            .lock()
            .unwrap()
            .push(format!("restart_worker:{}", r.worker_id));
        if r.worker_id != FAKE_WORKER {
            return Err(no_worker());
        }
        Ok(tonic::Response::new(pb::WorkerRestart {
            worker_id: r.worker_id,
            status: "active".into(),
        }))
    }

    async fn clear_queue(
        &self,
        _: tonic::Request<pb::ClearQueueRequest>,
    ) -> Answer<pb::ClearQueueResult> {
        self.operations.lock().unwrap().push("clear_queue".into());
        Ok(tonic::Response::new(pb::ClearQueueResult { cleared: 7 }))
    }

    async fn reload_configs(
        &self,
        _: tonic::Request<pb::ReloadConfigsRequest>,
    ) -> Answer<pb::ReloadConfigsResult> {
        self.operations
            .lock()
            .unwrap()
            .push("reload_configs".into());
        Ok(tonic::Response::new(pb::ReloadConfigsResult {}))
    }

    /// A failed job is `00000000-0000-4000-8000-000000000001`; any other
    /// is not failed (`invalid_request`).
    async fn retry_enhancement(
        &self,
        req: tonic::Request<pb::RetryEnhancementRequest>,
    ) -> Answer<pb::Enhancement> {
        let job_id = req.into_inner().job_id;
        self.operations
            .lock()
            .unwrap()
            .push(format!("retry:{job_id}"));
        if job_id != "00000000-0000-4000-8000-000000000001" {
            return Err(csp_rpc::status_with_message(
                csp_domain::ErrorCode::InvalidRequest,
                "Only a failed job can be retried; this one is completed.",
            ));
        }
        Ok(tonic::Response::new(pb::Enhancement {
            job_id,
            tenant_id: "acme".into(),
            status: "pending".into(),
            attempts: 3,
            ..Default::default()
        }))
    }

    type ExportEnhancementsStream =
        futures::stream::BoxStream<'static, Result<pb::EnhancementPage, tonic::Status>>;

    async fn export_enhancements(
        &self,
        req: tonic::Request<pb::ListEnhancementsRequest>,
    ) -> Answer<Self::ExportEnhancementsStream> {
        use futures::StreamExt as _;
        self.exports.lock().unwrap().push(req.into_inner());
        let mut pages: Vec<Result<pb::EnhancementPage, tonic::Status>> = self
            .export_pages
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .map(Ok)
            .collect();
        if *self.export_fails.lock().unwrap() {
            pages.push(Err(csp_rpc::status(
                csp_domain::ErrorCode::Unavailable,
                "tickets store unavailable",
            )));
        }
        Ok(tonic::Response::new(futures::stream::iter(pages).boxed()))
    }
}

/// The one worker [`FakeTickets`] knows.
pub(crate) const FAKE_WORKER: &str = "00000000-0000-4000-8000-00000000000a";

fn no_worker() -> tonic::Status {
    csp_rpc::status_with_message(
        csp_domain::ErrorCode::WorkerNotFound,
        "There is no running worker with this id: it has sent no heartbeat in the last hour.",
    )
}

/// A session-pool that hands out sessions and lists them: it records every
/// `Acquire` and answers it with a new session id, and lists `sessions`
/// whoever asks.
#[derive(Default)]
pub(crate) struct FakePool {
    pub(crate) acquires: Mutex<Vec<pb::AcquireRequest>>,
    pub(crate) sessions: Mutex<Vec<pb::SessionInfo>>,
}

impl FakePool {
    /// Serves a fake on a loopback port; returns it and its address.
    pub(crate) async fn serve() -> (Arc<FakePool>, String) {
        let fake = Arc::new(FakePool::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(SessionPoolServer::from_arc(fake.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (fake, addr)
    }
}

fn no_pool<T>() -> Answer<T> {
    Err(tonic::Status::unimplemented("fake session-pool"))
}

#[tonic::async_trait]
impl SessionPool for FakePool {
    async fn acquire(
        &self,
        req: tonic::Request<pb::AcquireRequest>,
    ) -> Answer<pb::AcquireResponse> {
        self.acquires.lock().unwrap().push(req.into_inner());
        Ok(tonic::Response::new(pb::AcquireResponse {
            session_id: csp_domain::SessionId::new().to_string(),
            status: pb::SessionStatus::Preparing.into(),
            warm: false,
        }))
    }
    async fn send(&self, _: tonic::Request<pb::SendRequest>) -> Answer<pb::SendResponse> {
        no_pool()
    }
    async fn interrupt(
        &self,
        _: tonic::Request<pb::InterruptRequest>,
    ) -> Answer<pb::InterruptResponse> {
        no_pool()
    }
    async fn get_session(
        &self,
        _: tonic::Request<pb::GetSessionRequest>,
    ) -> Answer<pb::SessionInfo> {
        Err(csp_rpc::status(
            csp_domain::ErrorCode::SessionNotFound,
            "no such session",
        ))
    }
    async fn list_sessions(
        &self,
        _: tonic::Request<pb::ListSessionsRequest>,
    ) -> Answer<pb::ListSessionsResponse> {
        Ok(tonic::Response::new(pb::ListSessionsResponse {
            sessions: self.sessions.lock().unwrap().clone(),
        }))
    }
    async fn list_messages(
        &self,
        _: tonic::Request<pb::ListMessagesRequest>,
    ) -> Answer<pb::ListMessagesResponse> {
        no_pool()
    }
    async fn status(&self, _: tonic::Request<pb::StatusRequest>) -> Answer<pb::StatusResponse> {
        no_pool()
    }
    async fn resume(&self, _: tonic::Request<pb::ResumeRequest>) -> Answer<pb::ResumeResponse> {
        no_pool()
    }
    async fn list_all_sessions(
        &self,
        _: tonic::Request<pb::ListAllSessionsRequest>,
    ) -> Answer<pb::ListSessionsResponse> {
        Ok(tonic::Response::new(pb::ListSessionsResponse {
            sessions: self.sessions.lock().unwrap().clone(),
        }))
    }
}

/// Sends `req` through the router: its status, headers and JSON body
/// (null when the body is not JSON).
pub(crate) async fn call(
    app: &Router,
    req: http::Request<axum::body::Body>,
) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    use tower::ServiceExt;
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json)
}

/// A request as an admin program sends it (bearer token, JSON body).
pub(crate) fn json_request(
    method: http::Method,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> http::Request<axum::body::Body> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::HOST, "csp.example:8080")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}

/// Opens a WebSocket on `path` of the gateway served at `addr`, with
/// `token` as a bearer (a program's socket: no Origin): the answer's
/// status, its JSON body (null for none) and the connection, left open
/// (after a 101, the socket's).
pub(crate) async fn ws_handshake(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
) -> (http::StatusCode, serde_json::Value, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = |buf: &[u8]| buf.windows(4).position(|w| w == b"\r\n\r\n");
    let head_end = loop {
        if let Some(i) = read(&buf) {
            break i + 4;
        }
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before an answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head}"));
    let status = http::StatusCode::from_u16(status).unwrap();
    if status == http::StatusCode::SWITCHING_PROTOCOLS {
        return (status, serde_json::Value::Null, tcp);
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed in the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body =
        serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(serde_json::Value::Null);
    (status, body, tcp)
}
