//! A fake ServiceDesk Plus for tests, benchmarks and the offline demo
//! (`csp mock-ticketing`).
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
mod request;
mod seed;
mod state;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use seed::{FIRST_SEED_ID, TOPICS, Topic, seed_request};
pub use state::{
    Builder, MAX_NOTES, MAX_REQUESTS, MockNote, MockRequest, MockSdp, NoteFault, Stats,
};

/// The router, for serving elsewhere or calling in-process. Hung note posts
/// end when `shutdown` is cancelled.
pub fn router(mock: MockSdp, shutdown: CancellationToken) -> axum::Router {
    api::router(mock, shutdown)
}

/// Serves `mock` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    mock: MockSdp,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = api::router(mock, shutdown.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// A mock running in a background task, for tests and `csp dev`.
/// Dropping it stops the server.
pub struct RunningMock {
    addr: SocketAddr,
    mock: MockSdp,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningMock {
    /// Binds `127.0.0.1:0` and serves `mock`.
    pub async fn start(mock: MockSdp) -> std::io::Result<Self> {
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

    /// `http://127.0.0.1:PORT`, the tenant's `servicedesk_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn mock(&self) -> &MockSdp {
        &self.mock
    }

    /// Stops the server (hung answers end) and waits for it.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "mock ServiceDesk Plus failed"),
                Err(e) => tracing::warn!(error = %e, "mock ServiceDesk Plus task failed"),
            }
        }
    }
}

impl Drop for RunningMock {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
