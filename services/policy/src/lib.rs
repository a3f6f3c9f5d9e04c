//! The policy service: users and authentication.
//!
//! Owns: the user table (through `csp-store`), password checks and token
//! issue, and the bootstrap admin. RBAC, per-tool permission checks, cost
//! caps and the audit log belong here too and arrive in later versions.
//! Must never return or log a password, a hash or a token it did not issue
//! to the caller.

use csp_auth::Tokens;
use csp_domain::{ErrorCode, Role, UserId};
use csp_proto::v1::policy_server::{Policy, PolicyServer};
use csp_proto::v1::{GetUserRequest, LoginRequest, LoginResponse, User};
use csp_rpc::status;
use csp_store::{NewUser, UserRecord, UserStore};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The username of the account created at first start.
pub const ADMIN_USERNAME: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rpc(#[from] csp_rpc::Error),
    #[error("user store: {0}")]
    Store(#[from] csp_store::Error),
    #[error(transparent)]
    Auth(#[from] csp_auth::Error),
}

/// How the service runs.
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub tokens: Tokens,
}

/// Creates the `admin` account if there is none. Returns the password when it
/// had to generate one (the caller shows it once; it is stored only hashed).
pub async fn bootstrap_admin(
    store: &dyn UserStore,
    password: Option<&SecretString>,
) -> Result<Option<SecretString>, Error> {
    if store.user_by_name(ADMIN_USERNAME).await?.is_some() {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p.expose_secret().to_owned(), false),
        None => (csp_auth::generate_password(), true),
    };
    let hash = hash_blocking(password.clone()).await?;
    match store
        .create_user(NewUser {
            username: ADMIN_USERNAME.into(),
            password_hash: hash,
            role: Role::Admin,
        })
        .await
    {
        Ok(_) => {
            tracing::info!(username = ADMIN_USERNAME, "created the bootstrap admin");
            Ok(generated.then(|| SecretString::from(password)))
        }
        // Another replica won the race: its admin stands.
        Err(csp_store::Error::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn hash_blocking(password: String) -> Result<String, csp_auth::Error> {
    tokio::task::spawn_blocking(move || csp_auth::hash_password(&password))
        .await
        .expect("hashing does not panic")
}

/// The gRPC `csp.v1.Policy` implementation.
pub struct Service {
    store: Arc<dyn UserStore>,
    tokens: Tokens,
    /// Verified against when the username is unknown, so that a login for a
    /// missing user costs as much time as one with a wrong password.
    dummy_hash: String,
}

impl Service {
    pub fn new(store: Arc<dyn UserStore>, tokens: Tokens) -> Result<Self, Error> {
        let dummy_hash = csp_auth::hash_password(&csp_auth::generate_password())?;
        Ok(Self {
            store,
            tokens,
            dummy_hash,
        })
    }
}

fn to_proto(u: &UserRecord) -> User {
    User {
        user_id: u.user_id.to_string(),
        username: u.username.clone(),
        role: u.role.as_str().into(),
        is_active: u.is_active,
        created_at: rfc3339(u.created_at),
        last_login_at: u.last_login_at.map(rfc3339).unwrap_or_default(),
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn store_error(e: csp_store::Error) -> Status {
    tracing::error!(error = %e, "user store failed");
    status(ErrorCode::Unavailable, "user store unavailable")
}

#[tonic::async_trait]
impl Policy for Service {
    #[tracing::instrument(name = "policy.Login", skip_all, fields(username = %req.get_ref().username))]
    async fn login(&self, req: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        let LoginRequest { username, password } = req.into_inner();
        if username.is_empty()
            || password.is_empty()
            || username.len() > 256
            || password.len() > 1024
        {
            return Err(status(
                ErrorCode::BadCredentials,
                "missing or oversize credentials",
            ));
        }
        let user = self
            .store
            .user_by_name(&username)
            .await
            .map_err(store_error)?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let ok = tokio::task::spawn_blocking(move || csp_auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        let user = match user {
            Some(u) if ok && u.is_active => u,
            Some(u) if ok => {
                tracing::info!(user.id = %u.user_id, "login refused: user is deactivated");
                return Err(status(ErrorCode::BadCredentials, "user deactivated"));
            }
            _ => {
                tracing::info!("login refused: wrong username or password");
                return Err(status(
                    ErrorCode::BadCredentials,
                    "wrong username or password",
                ));
            }
        };
        let now = time::OffsetDateTime::now_utc();
        self.store
            .record_login(user.user_id, now)
            .await
            .map_err(store_error)?;
        let (token, _) = self
            .tokens
            .issue(user.user_id, &user.username, user.role)
            .map_err(|e| status(ErrorCode::Internal, e.to_string()))?;
        let mut proto = to_proto(&user);
        proto.last_login_at = rfc3339(now);
        tracing::info!(user.id = %user.user_id, "login");
        Ok(Response::new(LoginResponse {
            token,
            user: Some(proto),
            expires_in: self.tokens.ttl().as_secs(),
        }))
    }

    #[tracing::instrument(name = "policy.GetUser", skip_all)]
    async fn get_user(&self, req: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        let id: UserId = req
            .get_ref()
            .user_id
            .parse()
            .map_err(|e: csp_domain::ParseIdError| status(ErrorCode::BadFrame, e.to_string()))?;
        match self.store.user_by_id(id).await.map_err(store_error)? {
            Some(u) => Ok(Response::new(to_proto(&u))),
            None => Err(status(ErrorCode::Unauthenticated, "no such user")),
        }
    }
}

/// A bound policy server, ready to run.
pub struct Server {
    listener: csp_rpc::Listener,
    service: Service,
    probes: Arc<Probes>,
}

/// Readiness of the policy service: its user store answers a query, and
/// it is not shutting down.
pub struct Probes {
    store: Arc<dyn UserStore>,
    startup_ms: u64,
    shutting_down: CancellationToken,
}

impl Probes {
    async fn store_ok(&self) -> bool {
        let probe = self.store.count_users();
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), probe).await,
            Ok(Ok(_))
        )
    }

    fn reason(&self, store_ok: bool) -> Option<&'static str> {
        if self.shutting_down.is_cancelled() {
            Some("shutting_down")
        } else if !store_ok {
            Some("database_unavailable")
        } else {
            None
        }
    }
}

#[async_trait::async_trait]
impl csp_telemetry::Probes for Probes {
    async fn ready(&self) -> csp_telemetry::Probe {
        match self.reason(self.store_ok().await) {
            None => csp_telemetry::Probe::ok(serde_json::json!({"status": "ready"})),
            Some(reason) => csp_telemetry::Probe::unavailable(
                serde_json::json!({"status": "not_ready", "reason": reason}),
            ),
        }
    }

    async fn startup(&self) -> csp_telemetry::Probe {
        csp_telemetry::Probe::ok(serde_json::json!({
            "status": "started",
            "startup_duration_ms": self.startup_ms,
        }))
    }
}

impl Server {
    /// Binds the gRPC port (0 picks one; see `local_addr`).
    pub async fn build(config: Config, store: Arc<dyn UserStore>) -> Result<Self, Error> {
        let built = std::time::Instant::now();
        let listener = csp_rpc::Listener::bind(config.grpc_addr).await?;
        let service = Service::new(store.clone(), config.tokens)?;
        let probes = Arc::new(Probes {
            store,
            startup_ms: built.elapsed().as_millis() as u64,
            shutting_down: CancellationToken::new(),
        });
        Ok(Self {
            listener,
            service,
            probes,
        })
    }

    /// The HTTP probes (`csp serve policy` serves them beside `/metrics`).
    pub fn probes(&self) -> Arc<dyn csp_telemetry::Probes> {
        self.probes.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let (health, health_service) = tonic_health::server::health_reporter();
        // gRPC health follows the readiness probe; known before serving.
        let probes = self.probes.clone();
        let reporter = csp_rpc::follow_readiness(
            health,
            <PolicyServer<Service> as tonic::server::NamedService>::NAME,
            move || {
                let probes = probes.clone();
                async move { probes.reason(probes.store_ok().await).is_none() }
            },
        )
        .await;
        let routes = tonic::service::Routes::new(health_service)
            .add_service(PolicyServer::new(self.service));
        let probes = self.probes.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            probes.shutting_down.cancel();
        });
        let served = self.listener.serve(routes, shutdown).await;
        reporter.abort();
        served?;
        Ok(())
    }
}
