//! Every route of the gateway, declared once with its access rule. The
//! router is built from this table and [`crate::auth::authorize`] answers
//! from it, so a route without a rule cannot be served.

use crate::state::AppState;
use crate::{admin, api, plugins, ws};
use axum::Router;
use axum::routing::{MethodFilter, on};
use csp_auth::Access;
use csp_domain::Role;
use http::Method;

/// One route: its method, its full path template (as `MatchedPath` reports
/// it) and what it requires.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) access: Access,
}

/// The REST API's prefix; its routes share one fallback (`not_found`).
pub(crate) const API: &str = "/api/v1";

const PUBLIC: Access = Access::Public;
const USER: Access = Access::Role(Role::User);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);

/// Declares [`ROUTES`] and [`routers`] from the same rows, so a handler
/// cannot be routed without its rule.
macro_rules! routes {
    ($($method:ident $path:literal => $access:ident, $handler:path;)+) => {
        /// Every route with its rule, in the router's order.
        pub(crate) static ROUTES: &[Route] = &[
            $(Route { method: Method::$method, path: $path, access: $access },)+
        ];

        /// The routes under [`API`] (paths relative to it) and the others.
        fn routers() -> (Router<AppState>, Router<AppState>) {
            let (mut api, mut top) = (Router::new(), Router::new());
            $(
                let route = on(MethodFilter::$method, $handler);
                match $path.strip_prefix(API) {
                    Some(rest) => api = api.route(rest, route),
                    None => top = top.route($path, route),
                }
            )+
            (api, top)
        }
    };
}

routes! {
    POST "/api/v1/auth/login" => PUBLIC, api::login;
    POST "/api/v1/auth/logout" => PUBLIC, api::logout;
    GET "/api/v1/me" => USER, api::me;
    GET "/api/v1/me/budget" => USER, admin::budget;
    GET "/api/v1/config" => USER, api::config;
    GET "/api/v1/sessions" => USER, api::sessions;
    GET "/api/v1/sessions/{id}/messages" => USER, api::messages;
    GET "/api/v1/users" => ADMIN, admin::list_users;
    POST "/api/v1/users" => ADMIN, admin::create_user;
    PATCH "/api/v1/users/{id}" => ADMIN, admin::update_user;
    GET "/api/v1/admin/audit-log" => ADMIN, admin::audit_log;
    GET "/api/v1/admin/sessions" => OPERATOR, admin::all_sessions;
    GET "/api/v1/plugins" => OPERATOR, plugins::list;
    POST "/api/v1/plugins/rescan" => OPERATOR, plugins::rescan;
    GET "/api/v1/plugins/{name}" => OPERATOR, plugins::get;
    POST "/api/v1/plugins/{name}/activate" => OPERATOR, plugins::activate;
    POST "/api/v1/plugins/{name}/deactivate" => OPERATOR, plugins::deactivate;
    PUT "/api/v1/plugins/{name}/config" => OPERATOR, plugins::configure;
    GET "/api/v1/health/live" => PUBLIC, api::live;
    GET "/api/v1/health/ready" => PUBLIC, api::ready;
    GET "/api/v1/health/startup" => PUBLIC, api::startup;
    GET "/ws" => USER, ws::upgrade;
    GET "/metrics" => OPERATOR, api::metrics;
}

/// What `method` on the route template `path` requires; `None`: not a
/// route of the gateway (refused).
pub(crate) fn access(method: &Method, path: &str) -> Option<Access> {
    ROUTES
        .iter()
        .find(|r| r.method == *method && r.path == path)
        .map(|r| r.access)
}

/// The routed part of the gateway: the API (with its own 404 fallback)
/// and the top-level routes, without layers or state.
pub(crate) fn router() -> Router<AppState> {
    let (api, top) = routers();
    Router::new()
        .nest(API, api.fallback(api::not_found))
        .merge(top)
}

#[cfg(test)]
mod tests {
    //! The access table, in process: the gateway's own router (every layer)
    //! with a fake policy service that reports each test user's role, and
    //! the other backends on a port where nothing listens. The access check
    //! answers before any handler runs, so only allowed requests reach one.

    use super::*;
    use crate::state::{Limits, Parts};
    use axum::body::Body;
    use csp_domain::UserId;
    use csp_proto::v1 as pb;
    use csp_proto::v1::policy_server::{Policy, PolicyServer};
    use http::{Request, StatusCode};
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;
    use tower::ServiceExt;

    /// Answers `GetUser` for the known users; nothing else.
    struct FakePolicy {
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
            none()
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

    const METRICS_TOKEN: &str = "scrape-token-for-tests";

    struct Gateway {
        app: Router,
        /// A bearer token per role.
        tokens: Vec<(Role, String)>,
    }

    async fn gateway() -> Gateway {
        let secret = secrecy::SecretString::from("a test secret of at least thirty-two bytes");
        let tokens = csp_auth::Tokens::new(&secret, std::time::Duration::from_secs(600)).unwrap();
        let mut users = HashMap::new();
        let mut bearer = Vec::new();
        for role in [Role::User, Role::Operator, Role::Admin] {
            let id = UserId::new();
            users.insert(id.to_string(), role);
            bearer.push((role, tokens.issue(id, role.as_str(), role).unwrap().0));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let policy_addr = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(PolicyServer::new(FakePolicy { users }))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        // Bound and dropped: nothing listens there.
        let nowhere = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let channel = |addr: &str| csp_rpc::channel(addr).unwrap();
        let cache: Arc<dyn csp_cache::Cache> = Arc::new(csp_cache::MemoryCache::new());
        let state = AppState::new(Parts {
            tokens,
            metrics_token: Some(METRICS_TOKEN.into()),
            policy: pb::policy_client::PolicyClient::new(channel(&policy_addr)),
            plugins: pb::plugins_client::PluginsClient::new(channel(&nowhere)),
            default_pool: pb::session_pool_client::SessionPoolClient::new(channel(&nowhere)),
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
        }
    }

    /// A concrete path for a route template.
    fn concrete(path: &str) -> String {
        path.replace("{id}", &UserId::new().to_string())
            .replace("{name}", "demo")
    }

    async fn status(app: &Router, method: Method, path: &str, token: Option<&str>) -> StatusCode {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        resp.status()
    }

    fn refused(s: StatusCode) -> bool {
        s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN
    }

    #[test]
    fn each_route_is_declared_once() {
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method.clone(), r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
            assert_eq!(access(&r.method, r.path), Some(r.access));
        }
        assert_eq!(access(&Method::DELETE, "/api/v1/me"), None);
        assert_eq!(access(&Method::GET, "/api/v1/nothing"), None);
    }

    #[tokio::test]
    async fn every_route_answers_by_its_rule_for_every_role() {
        let gw = gateway().await;
        for r in ROUTES {
            let path = concrete(r.path);
            let anonymous = status(&gw.app, r.method.clone(), &path, None).await;
            match r.access {
                Access::Public => {
                    assert!(!refused(anonymous), "{} {}: {anonymous}", r.method, r.path)
                }
                Access::Role(_) => assert_eq!(
                    anonymous,
                    StatusCode::UNAUTHORIZED,
                    "{} {} anonymous",
                    r.method,
                    r.path
                ),
                Access::Service => {
                    panic!("{} {}: no browser route is for services", r.method, r.path)
                }
            }
            for (role, token) in &gw.tokens {
                let got = status(&gw.app, r.method.clone(), &path, Some(token)).await;
                let allowed = match r.access {
                    Access::Public => true,
                    Access::Role(required) => role.includes(required),
                    Access::Service => false,
                };
                if allowed {
                    assert!(!refused(got), "{} {} as {role}: {got}", r.method, r.path);
                } else {
                    assert_eq!(
                        got,
                        StatusCode::FORBIDDEN,
                        "{} {} as {role}",
                        r.method,
                        r.path
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn unlisted_methods_and_paths_are_refused_or_unknown() {
        let gw = gateway().await;
        let admin = &gw.tokens.iter().find(|(r, _)| *r == Role::Admin).unwrap().1;
        // A routed path with a method the table does not list: no rule, refused.
        for r in ROUTES {
            let path = concrete(r.path);
            let got = status(&gw.app, Method::DELETE, &path, Some(admin)).await;
            assert_eq!(got, StatusCode::FORBIDDEN, "DELETE {}", r.path);
        }
        // An unknown API path is the API's 404, whoever asks.
        for token in [None, Some(admin.as_str())] {
            let got = status(&gw.app, Method::GET, "/api/v1/nothing", token).await;
            assert_eq!(got, StatusCode::NOT_FOUND);
        }
    }

    #[tokio::test]
    async fn metrics_take_the_scrape_token_instead_of_a_login() {
        let gw = gateway().await;
        let got = status(&gw.app, Method::GET, "/metrics", Some(METRICS_TOKEN)).await;
        assert!(!refused(got), "{got}");
        let got = status(&gw.app, Method::GET, "/metrics", Some("wrong")).await;
        assert_eq!(got, StatusCode::UNAUTHORIZED);
    }
}
