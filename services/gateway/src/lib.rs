//! The gateway: the only service a browser talks to.
//!
//! Owns: the web app's static files, REST under `/api/v1`, browser
//! WebSockets, `/metrics` and probes, the ticketing tools' public webhooks
//! (`/webhook/...`: passed on byte for byte to the tickets service, which
//! verifies them); every request's id (`x-request-id`, also its trace id);
//! authentication of every request
//! (JWT, verified locally, refused once logged out), the Origin check on
//! WebSockets and on every state-changing request made with the cookie, and
//! login throttling (per account and client address, in the shared cache).
//! Each route is declared once with its access rule (`routes.rs`); the
//! router and the access check are built from that one table. It relays
//! session events from the bus to browsers and turns browser frames into
//! gRPC calls. Must never run an agent, touch the database directly, or
//! show a user a raw error.

mod admin;
mod api;
mod auth;
mod csv;
mod dto;
mod error;
mod feedback;
mod identity;
mod media;
mod metrics;
mod plugins;
mod request_id;
mod routes;
mod state;
#[cfg(test)]
mod testing;
mod throttle;
mod tickets;
mod webhooks;
mod ws;

pub use routes::{Route, table};
pub use throttle::LoginLimits;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use csp_auth::Tokens;
use csp_bus::EventBus;
use csp_cache::Cache;
use csp_proto::v1::plugins_client::PluginsClient;
use csp_proto::v1::policy_client::PolicyClient;
use csp_proto::v1::session_pool_client::SessionPoolClient;
use csp_proto::v1::tickets_client::TicketsClient;
use http::{HeaderValue, header};
use state::{AppState, Limits, Parts};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Rpc(#[from] csp_rpc::Error),
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// How the gateway runs.
pub struct Config {
    pub http_addr: SocketAddr,
    /// Any session-pool replica (`http://host:port`).
    pub session_pool_addr: String,
    /// The policy service (`http://host:port`).
    pub policy_addr: String,
    /// The plugins service (`http://host:port`).
    pub plugins_addr: String,
    /// Any tickets service replica (`http://host:port`). Connected lazily:
    /// the gateway starts and serves chat while it is down; its routes
    /// answer 503 `unavailable` until it is reachable.
    pub tickets_addr: String,
    /// `CSP_PUBLIC_URL`: the gateway's public base URL (`https://csp.example`),
    /// the start of every tenant's `webhook_url`. `None`: derived from each
    /// request's Host and scheme (`X-Forwarded-Host`/`-Proto` when
    /// `trust_forwarded_for`).
    pub public_url: Option<String>,
    /// Verifies tokens; must share its secret with the policy service.
    pub tokens: Tokens,
    /// `CSP_METRICS_TOKEN`: lets a scraper read `/metrics` without a login.
    pub metrics_token: Option<secrecy::SecretString>,
    /// `CSP_ALLOWED_ORIGINS`: the origins whose pages may make
    /// cookie-authenticated requests (WebSockets, and every POST, PUT, PATCH
    /// and DELETE, login included); empty allows only the gateway's own origin.
    pub allowed_origins: Vec<String>,
    /// `CSP_LOGIN_*`: throttling of failed logins.
    pub login_limits: LoginLimits,
    /// `CSP_TRUST_FORWARDED_FOR`: take the client address from the last
    /// `X-Forwarded-For` entry (set it only behind a proxy that appends it).
    pub trust_forwarded_for: bool,
    /// The built web app (`web/dist`); `None` serves the API only.
    pub web_dir: Option<PathBuf>,
    /// Shown in the UI, e.g. "offline demo model".
    pub model_label: String,
    /// Adds `Secure` to the session cookie (set it behind HTTPS).
    pub cookie_secure: bool,
    pub max_frame_bytes: usize,
    pub send_queue: usize,
    /// `CSP_WS_SEND_QUEUE_BYTES`: the same queue's bound in bytes.
    pub send_queue_bytes: usize,
    /// Told to browsers in `server_shutting_down` (the session-pool's grace).
    pub shutdown_grace_seconds: u64,
}

/// A bound gateway, ready to run.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    state: AppState,
    /// See [`Server::hold_until`].
    hold: Option<CancellationToken>,
}

impl Server {
    pub async fn build(
        config: Config,
        bus: Arc<dyn EventBus>,
        cache: Arc<dyn Cache>,
    ) -> Result<Self, Error> {
        metrics::describe();
        let state = AppState::new(Parts {
            tokens: config.tokens,
            metrics_token: config.metrics_token,
            policy: PolicyClient::new(csp_rpc::channel(&config.policy_addr)?),
            plugins: PluginsClient::new(csp_rpc::channel(&config.plugins_addr)?),
            tickets: TicketsClient::new(csp_rpc::channel(&config.tickets_addr)?),
            public_url: config.public_url,
            default_pool: SessionPoolClient::new(csp_rpc::channel(&config.session_pool_addr)?),
            bus,
            cache: cache.clone(),
            allowed_origins: config.allowed_origins,
            throttle: throttle::Throttle::new(
                cache.clone(),
                config.login_limits,
                Arc::new(throttle::system_now_ms),
            ),
            trust_forwarded_for: config.trust_forwarded_for,
            model_label: config.model_label,
            cookie_secure: config.cookie_secure,
            limits: Limits {
                max_frame_bytes: config.max_frame_bytes,
                send_queue: config.send_queue,
                send_queue_bytes: config.send_queue_bytes,
            },
            shutdown_grace_seconds: config.shutdown_grace_seconds,
        });
        let router = router(state.clone(), config.web_dir);
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| Error::Bind {
                addr: config.http_addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.http_addr,
            source,
        })?;
        Ok(Self {
            listener,
            addr,
            router,
            state,
            hold: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// On shutdown, keep the WebSockets relaying until `hold` is cancelled
    /// (`csp dev`: the in-process session-pool's `drained`, so turns in
    /// flight reach their browsers). Without it: one second.
    pub fn hold_until(mut self, hold: CancellationToken) -> Self {
        self.hold = Some(hold);
        self
    }

    /// Serves until `shutdown`. Then readiness fails at once, every open
    /// WebSocket is told `server_shutting_down` and keeps relaying until the
    /// hold ends ([`Server::hold_until`]; without one: one second, for the
    /// frames to reach the browsers); then the sockets close with 1012 and
    /// the server stops.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let state = self.state.clone();
        let hold = self.hold.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: telling every WebSocket");
            state.shutting_down.cancel();
            match hold {
                Some(hold) => hold.cancelled().await,
                None => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            }
            state.closing.cancel();
        });
        let closing = self.state.closing.clone();
        tracing::info!(addr = %self.addr, "gateway listening");
        use axum::serve::ListenerExt;
        // Without TCP_NODELAY, Nagle's algorithm holds each small frame until
        // the browser's delayed ACK arrives: ~40 ms on the first deltas of
        // every turn (measured by `csp-bench relay`).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        // The peer address keys the login throttle.
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(closing.cancelled_owned())
            .await
            .map_err(Error::Serve)
    }
}

fn router(state: AppState, web_dir: Option<PathBuf>) -> Router {
    let (browsers, hooks) = routes::router();
    let rules = || {
        middleware::from_fn_with_state(
            auth::Rules::new(state.clone(), routes::access),
            auth::authorize,
        )
    };
    let browsers = browsers
        // After authorisation: a body of a type its route does not read is
        // refused before the handler (an anonymous one still gets 401).
        .route_layer(middleware::from_fn(media::require_json))
        // After routing, so the rule is looked up by the matched route.
        .route_layer(rules())
        // Before authorisation: a cross-site request is refused before
        // anything looks at its cookie.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::check_origin,
        ));
    // Ticketing tools, not browsers: no Origin to check, and every webhook
    // route is public, so no cookie is ever read there. Their body limit is
    // the contract's; the handlers answer it with the catalogued 413.
    let hooks = hooks
        .route_layer(rules())
        .route_layer(DefaultBodyLimit::max(webhooks::MAX_BODY_BYTES));
    let mut app = browsers.merge(hooks);
    if let Some(dir) = web_dir {
        let index = dir.join("index.html");
        app = app.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)));
    }
    app.layer(middleware::from_fn(track))
        // Around routing and metrics: every answer carries its request id,
        // and whatever runs for the request is in its trace.
        .layer(middleware::from_fn(request_id::assign))
        // A response with a policy of its own keeps it (the feedback
        // pages': stricter, with inline style).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}

/// Request count and latency by route template and status.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "static".to_owned());
    let t0 = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    ::metrics::counter!(metrics::HTTP_REQUESTS, "route" => route.clone(), "status" => status)
        .increment(1);
    ::metrics::histogram!(metrics::HTTP_DURATION, "route" => route)
        .record(t0.elapsed().as_secs_f64());
    resp
}
