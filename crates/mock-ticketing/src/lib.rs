//! Fakes of the ticketing tools csp connects to — ServiceDesk Plus (this
//! module and `api.rs`), Jira Service Management (`jira.rs`: [`MockJira`])
//! and Zendesk (`zendesk.rs`: [`MockZendesk`]) — for tests, benchmarks and
//! the offline demo (`csp mock-ticketing` serves all three on one port,
//! [`all_tools_router`]: their API paths do not overlap).
//!
//! Owns: an HTTP server that speaks the ServiceDesk Plus API v3 wire format
//! for what csp uses — the request list with `list_info` paging
//! (`row_count`, `start_index`, `sort_field`/`sort_order`, `get_total_count`,
//! `has_more_rows`) and `search_criteria` (fields `id`, `subject`,
//! `status`/`status.name`, `priority.name`, `created_time`,
//! `resolved_time`, `completed_time`; conditions `is`, `is not`,
//! `contains`, `starts with`, comparisons, `between`; `children` and
//! `logical_operator`), request detail, `/resolutions`, the notes list, one
//! note, and note creation from the form field `input_data` — under
//! `/api/v3/...` and the cloud's `/app/<portal>/api/v3/...`; the `authtoken`
//! and `Authorization: Zoho-oauthtoken` checks with the API's `401` error
//! shape; and test controls under `/_mock/` (see [`MockSdp`] and
//! `docs` of each route below): seed deterministic resolved requests, add
//! requests, make the next note posts fail or hang, read the posted notes,
//! count note posts.
//!
//! Must never: be mistaken for a real instance (it only listens where it is
//! told, keeps everything in memory, bounded, and forgets it on exit); log
//! a credential header.
//!
//! Control routes:
//! - `POST /_mock/seed {"resolved": N}` adds N resolved/closed requests with
//!   deterministic content ([`seed_request`]); answers `{"first_id", "last_id", "count"}`.
//! - `POST /_mock/requests [ {MockRequest}, ... ]` adds or replaces requests.
//! - `POST /_mock/notes/fail {"count": K, "mode": "status"|"hang"|"create_then_status"|"create_then_hang", "status": 500}`
//!   makes the next K note posts fail ([`NoteFault`]).
//! - `GET /_mock/notes[?request_id=ID]` lists posted notes; `GET /_mock/stats`
//!   counts note posts, notes and requests; `POST /_mock/reset` forgets notes,
//!   faults and counters (requests stay).

mod api;
mod criteria;
mod jira;
mod request;
mod seed;
mod state;
mod zendesk;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use jira::{
    JIRA_MAX_COMMENTS, JIRA_MAX_ISSUES, JIRA_PROJECT, JiraStats, MockJira, MockJiraBuilder,
    MockJiraComment, MockJiraIssue, jira_router, text_to_adf,
};
pub use seed::{FIRST_SEED_ID, TOPICS, Topic, seed_request};
pub use state::{
    Builder, MAX_NOTES, MAX_REQUESTS, MockNote, MockRequest, MockSdp, NoteFault, Stats,
};
pub use zendesk::{
    MockZendesk, MockZendeskBuilder, MockZendeskComment, MockZendeskTicket, ZENDESK_API_USER_ID,
    ZENDESK_FIRST_SEED_ID, ZENDESK_MAX_POSTED_COMMENTS, ZENDESK_MAX_TICKETS, ZENDESK_REQUESTER_ID,
    ZENDESK_SEED_AGENT_ID, ZendeskStats, zendesk_router,
};

/// A fake tool: its state, and the router that serves it.
pub trait Fake: Clone + Send + Sync + 'static {
    /// For log lines: "ServiceDesk Plus", "Jira", "Zendesk".
    const NAME: &'static str;
    /// The router; hung answers end when `shutdown` is cancelled.
    fn router(self, shutdown: CancellationToken) -> axum::Router;
}

impl Fake for MockSdp {
    const NAME: &'static str = "ServiceDesk Plus";
    fn router(self, shutdown: CancellationToken) -> axum::Router {
        api::router(self, shutdown)
    }
}

impl Fake for MockJira {
    const NAME: &'static str = "Jira";
    fn router(self, shutdown: CancellationToken) -> axum::Router {
        jira_router(self, shutdown)
    }
}

impl Fake for MockZendesk {
    const NAME: &'static str = "Zendesk";
    fn router(self, shutdown: CancellationToken) -> axum::Router {
        zendesk_router(self, shutdown)
    }
}

/// The ServiceDesk Plus router, for serving elsewhere or calling
/// in-process. Hung note posts end when `shutdown` is cancelled.
pub fn router(mock: MockSdp, shutdown: CancellationToken) -> axum::Router {
    mock.router(shutdown)
}

/// Serves `app` on `listener` until `shutdown` is cancelled.
async fn serve_router(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Serves the fake `mock` on `listener` until `shutdown` is cancelled.
pub async fn serve<M: Fake>(
    listener: TcpListener,
    mock: M,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_router(listener, mock.router(shutdown.clone()), shutdown).await
}

/// The three fakes on one router: ServiceDesk Plus under `/api/v3` (and
/// `/app/<portal>/api/v3`), Jira under `/rest`, Zendesk under `/api/v2`,
/// each with its `/_mock/...` controls.
pub fn all_tools_router(
    sdp: MockSdp,
    jira: MockJira,
    zendesk: MockZendesk,
    shutdown: CancellationToken,
) -> axum::Router {
    sdp.router(shutdown.clone())
        .merge(jira.router(shutdown.clone()))
        .merge(zendesk.router(shutdown))
}

/// Serves the three fakes ([`all_tools_router`]) on `listener` until
/// `shutdown` is cancelled.
pub async fn serve_all_tools(
    listener: TcpListener,
    sdp: MockSdp,
    jira: MockJira,
    zendesk: MockZendesk,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = all_tools_router(sdp, jira, zendesk, shutdown.clone());
    serve_router(listener, app, shutdown).await
}

/// A fake running in a background task, for tests and `csp dev`.
/// Dropping it stops the server.
pub struct Running<M: Fake> {
    addr: SocketAddr,
    mock: M,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// A fake ServiceDesk Plus, running.
pub type RunningMock = Running<MockSdp>;
/// A fake Jira, running.
pub type RunningJira = Running<MockJira>;
/// A fake Zendesk, running.
pub type RunningZendesk = Running<MockZendesk>;

impl<M: Fake> Running<M> {
    /// Binds `127.0.0.1:0` and serves `mock`.
    pub async fn start(mock: M) -> std::io::Result<Self> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, mock.clone(), shutdown.clone()));
        Ok(Self {
            addr,
            mock,
            shutdown,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the tenant's `servicedesk_url`, `jira_url`
    /// or `zendesk_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn mock(&self) -> &M {
        &self.mock
    }

    /// Stops the server (hung answers end) and waits for it.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, tool = M::NAME, "mock failed"),
                Err(e) => tracing::warn!(error = %e, tool = M::NAME, "mock task failed"),
            }
        }
    }
}

impl<M: Fake> Drop for Running<M> {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
