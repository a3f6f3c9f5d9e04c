//! Shared state of the gateway's handlers. It knows who a request is from
//! (`identity.rs`) but not how that was established (`auth.rs`, which
//! depends on this module).

use crate::identity::AuthUser;
use csp_auth::Tokens;
use csp_bus::EventBus;
use csp_cache::Cache;
use csp_domain::{ErrorCode, SessionId};
use csp_proto::v1::plugins_client::PluginsClient;
use csp_proto::v1::policy_client::PolicyClient;
use csp_proto::v1::session_pool_client::SessionPoolClient;
use csp_proto::v1::tickets_client::TicketsClient;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

pub(crate) struct Limits {
    /// Largest client frame accepted; larger ones get an error frame.
    pub(crate) max_frame_bytes: usize,
    /// Frames queued for one browser before it counts as too slow.
    pub(crate) send_queue: usize,
    /// Bytes of those frames before it counts as too slow.
    pub(crate) send_queue_bytes: usize,
}

pub(crate) struct Inner {
    pub(crate) tokens: Tokens,
    /// The gateway's own identity towards other services (user lookups, probes).
    pub(crate) svc: csp_rpc::ServiceToken,
    /// `CSP_METRICS_TOKEN`: a bearer token a Prometheus scraper may use on
    /// `/metrics` instead of an operator's login.
    pub(crate) metrics_token: Option<secrecy::SecretString>,
    pub(crate) policy: PolicyClient<Channel>,
    pub(crate) plugins: PluginsClient<Channel>,
    /// Any tickets service replica (tenants, webhooks, enhancement history).
    /// Connected lazily: the gateway starts, and chat works, while it is down.
    pub(crate) tickets: TicketsClient<Channel>,
    /// `CSP_PUBLIC_URL`: the gateway's public base URL (no trailing `/`),
    /// which tenants' `webhook_url`s start with; `None`: the request's own.
    pub(crate) public_url: Option<String>,
    /// Any session-pool replica: takes new sessions and answers reads.
    pub(crate) default_pool: SessionPoolClient<Channel>,
    replicas: Mutex<HashMap<String, SessionPoolClient<Channel>>>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) cache: Arc<dyn Cache>,
    /// Origins whose pages may open a cookie-authenticated WebSocket or send
    /// a state-changing request; empty means the gateway's own origin (taken
    /// from the Host header).
    pub(crate) allowed_origins: Vec<String>,
    /// Failed-login counters and locks (in the shared cache).
    pub(crate) throttle: crate::throttle::Throttle,
    /// Client address from the last `X-Forwarded-For` entry.
    pub(crate) trust_forwarded_for: bool,
    pub(crate) model_label: String,
    pub(crate) cookie_secure: bool,
    pub(crate) limits: Limits,
    /// Names this gateway in presence records.
    pub(crate) instance: String,
    /// Cancelled on SIGTERM: readiness fails, every socket is told
    /// `server_shutting_down`, relaying goes on.
    pub(crate) shutting_down: CancellationToken,
    /// Cancelled when the sockets must close (1012): after the in-process
    /// session-pool drained (`csp dev`), or shortly after shutdown began.
    pub(crate) closing: CancellationToken,
    /// Told to browsers with `server_shutting_down`.
    pub(crate) shutdown_grace_seconds: u64,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

pub(crate) struct Parts {
    pub(crate) tokens: Tokens,
    pub(crate) metrics_token: Option<secrecy::SecretString>,
    pub(crate) policy: PolicyClient<Channel>,
    pub(crate) plugins: PluginsClient<Channel>,
    pub(crate) tickets: TicketsClient<Channel>,
    pub(crate) public_url: Option<String>,
    pub(crate) default_pool: SessionPoolClient<Channel>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) throttle: crate::throttle::Throttle,
    pub(crate) trust_forwarded_for: bool,
    pub(crate) model_label: String,
    pub(crate) cookie_secure: bool,
    pub(crate) limits: Limits,
    pub(crate) shutdown_grace_seconds: u64,
}

impl AppState {
    pub(crate) fn new(p: Parts) -> Self {
        Self(Arc::new(Inner {
            svc: csp_rpc::ServiceToken::new(p.tokens.clone(), "gateway"),
            metrics_token: p.metrics_token,
            tokens: p.tokens,
            policy: p.policy,
            plugins: p.plugins,
            tickets: p.tickets,
            public_url: p
                .public_url
                .map(|u| u.trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
            default_pool: p.default_pool,
            replicas: Mutex::new(HashMap::new()),
            bus: p.bus,
            cache: p.cache,
            allowed_origins: p.allowed_origins,
            throttle: p.throttle,
            trust_forwarded_for: p.trust_forwarded_for,
            model_label: p.model_label,
            cookie_secure: p.cookie_secure,
            limits: p.limits,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            shutting_down: CancellationToken::new(),
            closing: CancellationToken::new(),
            shutdown_grace_seconds: p.shutdown_grace_seconds,
        }))
    }

    /// `msg` as a request on behalf of `user`: a token of a minute's life
    /// carrying the role the policy service reported for this request.
    pub(crate) fn as_user<T>(&self, user: &AuthUser, msg: T) -> tonic::Request<T> {
        match self.tokens.issue_for(
            user.id,
            &user.name,
            user.role,
            std::time::Duration::from_secs(60),
        ) {
            Ok((token, _)) => csp_rpc::bearer(msg, &token),
            // Signing fixed claims with a valid key does not fail; if it
            // did, the call goes without a token and is refused.
            Err(e) => {
                tracing::error!(error = %e, "could not sign a user token");
                tonic::Request::new(msg)
            }
        }
    }

    /// Whether `presented` is the configured metrics scrape token (compared
    /// in constant time).
    pub(crate) fn metrics_token_matches(&self, presented: Option<&str>) -> bool {
        use secrecy::ExposeSecret;
        let (Some(want), Some(got)) = (&self.metrics_token, presented) else {
            return false;
        };
        csp_auth::constant_time_eq(want.expose_secret().as_bytes(), got.as_bytes())
    }

    fn client(&self, addr: String) -> Result<SessionPoolClient<Channel>, ErrorCode> {
        let mut replicas = self.replicas.lock().expect("replica map lock");
        if let Some(c) = replicas.get(&addr) {
            return Ok(c.clone());
        }
        let channel = csp_rpc::channel(&addr).map_err(|e| {
            tracing::error!(error = %e, "bad route address");
            ErrorCode::Internal
        })?;
        let client = SessionPoolClient::new(channel);
        replicas.insert(addr, client.clone());
        Ok(client)
    }

    /// Makes sure the session runs somewhere and returns that replica: the
    /// routed one if it has it, else any replica resumes it (`--resume`).
    /// Errors are the user-facing reason it cannot run (ended for good,
    /// shutting down, at capacity).
    pub(crate) async fn ensure_running(
        &self,
        session: SessionId,
        user: &AuthUser,
        seen_seq: u64,
    ) -> Result<SessionPoolClient<Channel>, ErrorCode> {
        let req = csp_proto::v1::ResumeRequest {
            session_id: session.to_string(),
            user_id: user.id.to_string(),
            seen_seq,
        };
        if let Ok(mut routed) = self.pool_for(session).await {
            match routed.resume(self.as_user(user, req.clone())).await {
                Ok(_) => return Ok(routed),
                Err(s) => {
                    let code = csp_rpc::error_code(&s);
                    // A replica that is gone or going: resume elsewhere.
                    if !matches!(code, ErrorCode::Unavailable | ErrorCode::ServerShuttingDown) {
                        return Err(code);
                    }
                    tracing::info!(session.id = %session, %code, "routed replica cannot run the session; resuming elsewhere");
                }
            }
        }
        let mut any = self.default_pool.clone();
        any.resume(self.as_user(user, req))
            .await
            .map_err(|s| crate::error::ApiError::from_status(&s).code)?;
        self.pool_for(session).await
    }

    /// The client for the replica that runs `session`, found through the
    /// routing table (sessions live in one replica's memory).
    pub(crate) async fn pool_for(
        &self,
        session: SessionId,
    ) -> Result<SessionPoolClient<Channel>, ErrorCode> {
        let addr = match self.cache.route(session).await {
            Ok(Some(addr)) => addr,
            Ok(None) => return Err(ErrorCode::SessionUnavailable),
            Err(e) => {
                tracing::error!(error = %e, "routing lookup failed");
                return Err(ErrorCode::Unavailable);
            }
        };
        self.client(addr)
    }
}
