//! A tickets server over real gRPC on a fresh store, an in-process queue
//! and a memory cache, with a clock the test can move.

use csp_auth::Tokens;
use csp_bus::{Delivery, Queue};
use csp_domain::{ErrorCode, Role, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::tickets_client::TicketsClient;
use csp_store::test_support::{Backend, TestStore};
use csp_store::{NewEnhancement, NewUser, Outcome};
use futures::StreamExt;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

pub(crate) fn tokens() -> Tokens {
    Tokens::new(
        &SecretString::from("tickets-test-secret-0123456789-abcdef"),
        Duration::from_secs(60),
    )
    .unwrap()
}

pub(crate) fn keyring() -> csp_secrets::Keyring {
    csp_secrets::Keyring::new(csp_secrets::SecretKey::generate().0, Vec::new())
}

/// The wall clock plus an offset the test moves.
#[derive(Default)]
pub(crate) struct TestClock {
    offset_secs: AtomicI64,
}

impl TestClock {
    pub(crate) fn advance(&self, by: Duration) {
        self.offset_secs
            .fetch_add(by.as_secs() as i64, Ordering::SeqCst);
    }
}

impl csp_tickets::Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_secs.load(Ordering::SeqCst))
    }
}

/// What the servers of one test share.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: TestStore,
    pub(crate) queue: Arc<csp_bus::InProcessQueue>,
    pub(crate) cache: Arc<csp_cache::MemoryCache>,
    pub(crate) clock: Arc<TestClock>,
    pub(crate) keyring: Option<csp_secrets::Keyring>,
}

impl Shared {
    pub(crate) async fn new(backend: Backend) -> Self {
        Self {
            store: backend.store().await,
            queue: Arc::new(csp_bus::InProcessQueue::new()),
            cache: Arc::new(csp_cache::MemoryCache::new()),
            clock: Arc::new(TestClock::default()),
            keyring: Some(keyring()),
        }
    }
}

pub(crate) struct Running {
    pub(crate) shared: Shared,
    channel: tonic::transport::Channel,
    stop: CancellationToken,
    pub(crate) admin: String,
    pub(crate) admin_id: UserId,
    pub(crate) operator: String,
    pub(crate) user: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub(crate) struct Options {
    pub(crate) sweep_every: Duration,
    pub(crate) rate_limit: u64,
    /// `CSP_PROMETHEUS_URL` of the charts.
    pub(crate) prometheus_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // Long: only the sweeper test wants it to act.
            sweep_every: Duration::from_secs(3600),
            rate_limit: 100,
            prometheus_url: None,
        }
    }
}

pub(crate) async fn start(backend: Backend) -> Running {
    start_on(Shared::new(backend).await, Options::default()).await
}

pub(crate) async fn start_on(shared: Shared, options: Options) -> Running {
    let server = csp_tickets::Server::build(
        csp_tickets::Config {
            keyring: shared.keyring.clone(),
            clock: shared.clock.clone(),
            sweep_every: options.sweep_every,
            webhook_rate_limit: options.rate_limit,
            prometheus_url: options.prometheus_url,
            ..csp_tickets::Config::new("127.0.0.1:0".parse().unwrap(), tokens())
        },
        shared.store.shared(),
        shared.queue.clone(),
        shared.cache.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(server.run(stop.clone()));
    let (admin_id, admin) = user(&shared.store, Role::Admin).await;
    let (_, operator) = user(&shared.store, Role::Operator).await;
    let (_, plain) = user(&shared.store, Role::User).await;
    Running {
        shared,
        channel: csp_rpc::channel(&format!("http://{addr}")).unwrap(),
        stop,
        admin,
        admin_id,
        operator,
        user: plain,
    }
}

pub(crate) async fn user(store: &TestStore, role: Role) -> (UserId, String) {
    let name = format!(
        "{}-{}",
        role.as_str(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let u = store
        .create_user(NewUser {
            username: name.clone(),
            password_hash: "x".into(),
            role,
            monthly_cost_cap_micros: None,
        })
        .await
        .unwrap();
    let (token, _) = tokens().issue(u.user_id, &name, role).unwrap();
    (u.user_id, token)
}

pub(crate) fn service_token() -> String {
    tokens()
        .issue_service("gateway", Duration::from_secs(60))
        .unwrap()
}

pub(crate) fn as_<T>(token: &str, msg: T) -> tonic::Request<T> {
    csp_rpc::bearer(msg, token)
}

pub(crate) fn code(s: &tonic::Status) -> ErrorCode {
    csp_rpc::error_code(s)
}

pub(crate) fn message(s: &tonic::Status) -> String {
    csp_rpc::user_message(s).unwrap_or_else(|| s.message().to_owned())
}

impl Running {
    pub(crate) fn client(&self) -> TicketsClient<tonic::transport::Channel> {
        TicketsClient::new(self.channel.clone())
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        csp_tickets::Clock::now(&*self.shared.clock)
    }

    pub(crate) async fn create(&self, id: &str) -> pb::CreatedTenant {
        self.try_create(new_tenant(id)).await.unwrap()
    }

    pub(crate) async fn try_create(
        &self,
        r: pb::CreateTenantRequest,
    ) -> Result<pb::CreatedTenant, tonic::Status> {
        self.client()
            .create_tenant(as_(&self.admin, r))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Sends a delivery as the gateway would.
    pub(crate) async fn deliver(
        &self,
        tenant: &str,
        kind: pb::WebhookKind,
        body: &[u8],
        headers: HashMap<String, String>,
    ) -> Result<pb::WebhookAccepted, tonic::Status> {
        self.client()
            .accept_webhook(as_(
                &service_token(),
                pb::WebhookDelivery {
                    tool_type: "servicedesk_plus".into(),
                    tenant_id: tenant.into(),
                    kind: kind as i32,
                    headers,
                    body: body.to_vec(),
                    source_addr: "203.0.113.9:5555".into(),
                    correlation_id: "req-1".into(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// A new-ticket delivery signed with `secret` at the clock's now.
    pub(crate) async fn new_ticket(
        &self,
        tenant: &str,
        secret: &str,
        ticket_id: &str,
    ) -> Result<pb::WebhookAccepted, tonic::Status> {
        let body = ticket_body(ticket_id, "Outlook crashes on 10.0.0.5");
        let headers = self.signed(secret, self.now().unix_timestamp(), &body);
        self.deliver(tenant, pb::WebhookKind::New, &body, headers)
            .await
    }

    pub(crate) fn signed(
        &self,
        secret: &str,
        timestamp: i64,
        body: &[u8],
    ) -> HashMap<String, String> {
        HashMap::from([
            ("x-servicedesk-timestamp".to_owned(), timestamp.to_string()),
            (
                "x-servicedesk-signature".to_owned(),
                csp_ticketing::webhook::sign(secret.as_bytes(), timestamp, body),
            ),
        ])
    }

    /// Messages on `topic` for a fresh group, waiting up to `wait` for more.
    pub(crate) async fn drain(&self, topic: &str, wait: Duration) -> Vec<Delivery> {
        let group = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut stream = self.shared.queue.pull(topic, &group).await.unwrap();
        let mut out = Vec::new();
        while let Ok(Some(Ok(d))) = tokio::time::timeout(wait, stream.next()).await {
            out.push(d);
        }
        out
    }
}

pub(crate) fn new_tenant(id: &str) -> pb::CreateTenantRequest {
    pb::CreateTenantRequest {
        tenant_id: id.into(),
        name: format!("{id} MSP"),
        tool_type: "servicedesk_plus".into(),
        servicedesk_url: format!("https://sdp.{id}.example"),
        servicedesk_auth: String::new(),
        api_key: format!("api-key-of-{id}-0123456789"),
        kb_api_url: String::new(),
        enhancement_preferences: None,
        monthly_budget_micros: None,
        tool_fields: HashMap::new(),
        dedicated_queue: false,
    }
}

pub(crate) fn ticket_body(ticket_id: &str, description: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ticket_id": ticket_id,
        "subject": "Outlook crashes",
        "description": description,
        "priority": "High",
    }))
    .unwrap()
}

/// The lease a test's attempts claim their jobs for, as a worker's (120 s
/// attempt, 30 s margin).
pub(crate) const LEASE: std::time::Duration = std::time::Duration::from_secs(150);

/// Records `job` and, given an outcome, claims it and ends it at `at`: the
/// figures' tests need jobs that ended when and how they say.
pub(crate) async fn ended_job(
    store: &TestStore,
    job: NewEnhancement,
    end: Option<Outcome>,
    at: OffsetDateTime,
) {
    let job_id = job.job_id;
    store.record_enhancement(job).await.unwrap();
    let Some(outcome) = end else { return };
    store
        .start_attempt(job_id, at, LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();
    assert!(store.finish_enhancement(job_id, outcome, at).await.unwrap());
}
