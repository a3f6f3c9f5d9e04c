//! Every route of the gateway, declared once with its access rule. The
//! router is built from this table and [`crate::auth::authorize`] answers
//! from it, so a route without a rule cannot be served. Routes under
//! [`WEBHOOKS`] are machine-to-machine: public, never authenticated by a
//! cookie nor subject to the Origin check, with their own body limit
//! (`lib.rs` layers the two routers differently).

use crate::state::AppState;
use crate::{admin, api, feedback, plugins, tickets, webhooks, ws};
use axum::Router;
use axum::routing::{MethodFilter, on};
use csp_auth::Access;
use csp_domain::Role;
use http::Method;

/// One route: its method, its full path template (as `MatchedPath` reports
/// it) and what it requires.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// Every route of the gateway with its rule, as data: the end-to-end
/// security suite (`tests/e2e/tests/it/attack.rs`) attacks each one, so a
/// route added here is attacked without anyone remembering to.
pub fn table() -> &'static [Route] {
    ROUTES
}

/// The REST API's prefix; its routes share one fallback (`not_found`).
pub(crate) const API: &str = "/api/v1";
/// The prefix of the ticketing tools' webhooks (public, machine-to-machine).
pub(crate) const WEBHOOKS: &str = "/webhook/";

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

        /// The routes under [`API`] (paths relative to it), the webhooks
        /// and the others.
        fn routers() -> (Router<AppState>, Router<AppState>, Router<AppState>) {
            let (mut api, mut hooks, mut top) = (Router::new(), Router::new(), Router::new());
            $(
                let route = on(MethodFilter::$method, $handler);
                match $path.strip_prefix(API) {
                    Some(rest) => api = api.route(rest, route),
                    None if $path.starts_with(WEBHOOKS) => hooks = hooks.route($path, route),
                    None => top = top.route($path, route),
                }
            )+
            (api, hooks, top)
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
    GET "/api/v1/tenants" => ADMIN, tickets::list_tenants;
    POST "/api/v1/tenants" => ADMIN, tickets::create_tenant;
    GET "/api/v1/tenants/{tenant_id}" => ADMIN, tickets::get_tenant;
    PATCH "/api/v1/tenants/{tenant_id}" => ADMIN, tickets::update_tenant;
    DELETE "/api/v1/tenants/{tenant_id}" => ADMIN, tickets::delete_tenant;
    POST "/api/v1/tenants/{tenant_id}/webhook-secret" => ADMIN, tickets::rotate_webhook_secret;
    POST "/api/v1/tenants/{tenant_id}/kb-articles" => ADMIN, tickets::upsert_kb_articles;
    POST "/api/v1/tenants/{tenant_id}/inventory" => ADMIN, tickets::upsert_inventory;
    POST "/api/v1/tenants/test-connection" => ADMIN, tickets::test_unsaved_connection;
    POST "/api/v1/tenants/{tenant_id}/test-connection" => ADMIN, tickets::test_tenant_connection;
    POST "/api/v1/tenants/{tenant_id}/import" => ADMIN, tickets::start_import;
    GET "/api/v1/tenants/{tenant_id}/import" => ADMIN, tickets::import_progress;
    GET "/api/v1/tool-types" => ADMIN, tickets::tool_types;
    GET "/api/v1/tenants/{tenant_id}/grants" => ADMIN, tickets::list_grants;
    PUT "/api/v1/tenants/{tenant_id}/grants/{user_id}" => ADMIN, tickets::grant_tenant;
    DELETE "/api/v1/tenants/{tenant_id}/grants/{user_id}" => ADMIN, tickets::revoke_tenant;
    GET "/api/v1/chat/tenants" => USER, tickets::chat_tenants;
    GET "/api/v1/enhancements" => OPERATOR, tickets::list_enhancements;
    GET "/api/v1/enhancements/export.csv" => OPERATOR, tickets::export_enhancements;
    GET "/api/v1/enhancements/feedback" => OPERATOR, feedback::summary;
    GET "/api/v1/enhancements/{job_id}" => OPERATOR, tickets::get_enhancement;
    POST "/api/v1/enhancements/{job_id}/retry" => OPERATOR, tickets::retry_enhancement;
    GET "/api/v1/tickets/processing" => OPERATOR, tickets::get_processing;
    PUT "/api/v1/tickets/processing" => ADMIN, tickets::set_processing;
    GET "/api/v1/tickets/dashboard" => OPERATOR, tickets::dashboard;
    GET "/api/v1/tickets/charts" => OPERATOR, tickets::charts;
    GET "/api/v1/tickets/workers" => OPERATOR, tickets::workers;
    GET "/api/v1/tickets/workers/{worker_id}/logs" => OPERATOR, tickets::worker_logs;
    GET "/api/v1/tickets/workers/{worker_id}/throughput" => OPERATOR, tickets::worker_throughput;
    POST "/api/v1/tickets/workers/{worker_id}/restart" => ADMIN, tickets::restart_worker;
    POST "/api/v1/tickets/queue/clear" => ADMIN, tickets::clear_queue;
    POST "/api/v1/tickets/configs/reload" => ADMIN, tickets::reload_configs;
    POST "/webhook/servicedesk" => PUBLIC, webhooks::seed_new_ticket;
    POST "/webhook/servicedesk/resolved" => PUBLIC, webhooks::seed_resolved;
    POST "/webhook/{tool_type}/{tenant_id}" => PUBLIC, webhooks::new_ticket;
    POST "/webhook/{tool_type}/{tenant_id}/resolved" => PUBLIC, webhooks::resolved;
    GET "/feedback/{job_id}/{vote}" => PUBLIC, feedback::record;
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

/// The routed part of the gateway, without layers or state: the browsers'
/// routes (the API, with its own 404 fallback, and the top-level ones), and
/// the webhooks.
pub(crate) fn router() -> (Router<AppState>, Router<AppState>) {
    let (api, hooks, top) = routers();
    let browsers = Router::new()
        .nest(API, api.fallback(api::not_found))
        .merge(top);
    (browsers, hooks)
}

#[cfg(test)]
mod tests {
    //! The access table, in process: the gateway's own router (every layer)
    //! with a fake policy service that reports each test user's role, and
    //! the other backends on a port where nothing listens. The access check
    //! answers before any handler runs, so only allowed requests reach one.

    use super::*;
    use crate::testing::{METRICS_TOKEN, gateway};
    use axum::body::Body;
    use csp_domain::UserId;
    use http::{Request, StatusCode};
    use std::collections::HashSet;
    use tower::ServiceExt;

    /// A concrete path for a route template.
    fn concrete(path: &str) -> String {
        path.replace("{id}", &UserId::new().to_string())
            .replace("{user_id}", &UserId::new().to_string())
            .replace("{name}", "demo")
            .replace("{tenant_id}", "acme")
            .replace("{job_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{worker_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{tool_type}", "servicedesk_plus")
            // A feedback link carries its signature (without one the page
            // itself answers 403, which is not the access check's).
            .replace("{vote}", "helpful?sig=00")
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

    /// The rules of chat tenants, spelled out: the walk below checks each
    /// route against the table, this checks the table.
    #[test]
    fn grants_are_for_admins_and_chat_tenants_for_everyone() {
        for (method, path, want) in [
            (Method::GET, "/api/v1/tenants/{tenant_id}/grants", ADMIN),
            (
                Method::PUT,
                "/api/v1/tenants/{tenant_id}/grants/{user_id}",
                ADMIN,
            ),
            (
                Method::DELETE,
                "/api/v1/tenants/{tenant_id}/grants/{user_id}",
                ADMIN,
            ),
            (Method::GET, "/api/v1/chat/tenants", USER),
            (Method::GET, "/ws", USER),
        ] {
            assert_eq!(access(&method, path), Some(want), "{method} {path}");
        }
    }

    /// The History page's retry and export are for operators; the
    /// Operations page's actions (pause, clear, reload) for admins.
    #[test]
    fn operations_are_for_admins_and_retry_and_export_for_operators() {
        for (method, path, want) in [
            (Method::GET, "/api/v1/enhancements/export.csv", OPERATOR),
            (
                Method::POST,
                "/api/v1/enhancements/{job_id}/retry",
                OPERATOR,
            ),
            (Method::PUT, "/api/v1/tickets/processing", ADMIN),
            (Method::POST, "/api/v1/tickets/queue/clear", ADMIN),
            (Method::POST, "/api/v1/tickets/configs/reload", ADMIN),
            (Method::GET, "/api/v1/admin/audit-log", ADMIN),
        ] {
            assert_eq!(access(&method, path), Some(want), "{method} {path}");
        }
    }

    /// Feedback links are clicked by technicians in their ticketing tool,
    /// without a login; the votes per tenant are for operators.
    #[test]
    fn feedback_links_are_public_and_their_summary_for_operators() {
        assert_eq!(
            access(&Method::GET, "/feedback/{job_id}/{vote}"),
            Some(PUBLIC)
        );
        assert_eq!(access(&Method::POST, "/feedback/{job_id}/{vote}"), None);
        assert_eq!(
            access(&Method::GET, "/api/v1/enhancements/feedback"),
            Some(OPERATOR)
        );
    }

    /// The Tenants page's registry, imports and uploads are for admins.
    #[test]
    fn tool_types_imports_and_uploads_are_for_admins() {
        for (method, path) in [
            (Method::GET, "/api/v1/tool-types"),
            (Method::POST, "/api/v1/tenants/{tenant_id}/import"),
            (Method::GET, "/api/v1/tenants/{tenant_id}/import"),
            (Method::POST, "/api/v1/tenants/{tenant_id}/inventory"),
            (Method::POST, "/api/v1/tenants/{tenant_id}/kb-articles"),
        ] {
            assert_eq!(access(&method, path), Some(ADMIN), "{method} {path}");
        }
    }

    /// The Dashboard, Charts and Workers pages read for operators and admins.
    #[test]
    fn the_dashboard_and_the_workers_are_for_operators() {
        for path in [
            "/api/v1/tickets/dashboard",
            "/api/v1/tickets/charts",
            "/api/v1/tickets/workers",
        ] {
            assert_eq!(access(&Method::GET, path), Some(OPERATOR), "{path}");
        }
    }

    /// A worker's log lines and throughput are read by operators; its
    /// restart is for admins.
    #[test]
    fn a_workers_logs_and_throughput_are_for_operators_and_its_restart_for_admins() {
        for path in [
            "/api/v1/tickets/workers/{worker_id}/logs",
            "/api/v1/tickets/workers/{worker_id}/throughput",
        ] {
            assert_eq!(access(&Method::GET, path), Some(OPERATOR), "{path}");
        }
        assert_eq!(
            access(&Method::POST, "/api/v1/tickets/workers/{worker_id}/restart"),
            Some(ADMIN)
        );
        assert_eq!(
            access(&Method::GET, "/api/v1/tickets/workers/{worker_id}/restart"),
            None
        );
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
            let unlisted = [Method::DELETE, Method::PUT, Method::PATCH, Method::POST]
                .into_iter()
                .find(|m| access(m, r.path).is_none())
                .unwrap();
            let path = concrete(r.path);
            let got = status(&gw.app, unlisted.clone(), &path, Some(admin)).await;
            assert_eq!(got, StatusCode::FORBIDDEN, "{unlisted} {}", r.path);
        }
        // An unknown API path is the API's 404, whoever asks.
        for token in [None, Some(admin.as_str())] {
            let got = status(&gw.app, Method::GET, "/api/v1/nothing", token).await;
            assert_eq!(got, StatusCode::NOT_FOUND);
        }
    }

    /// Regression (security suite): login, the user routes and a plugin's
    /// configuration answered a body over the limit with axum's plain-text
    /// 413 (or a 400), not the catalogued JSON error the others give.
    #[tokio::test]
    async fn an_oversized_body_is_the_catalogued_413_on_every_route_that_reads_one() {
        let gw = gateway().await;
        let admin = &gw.tokens.iter().find(|(r, _)| *r == Role::Admin).unwrap().1;
        let mut body = b"{\"pad\":\"".to_vec();
        body.resize(2 * 1024 * 1024 + 16, b'x');
        body.extend_from_slice(b"\"}");
        for r in ROUTES.iter().filter(|r| {
            matches!(r.method, Method::POST | Method::PUT | Method::PATCH)
                && r.path.starts_with(API)
        }) {
            let req = Request::builder()
                .method(r.method.clone())
                .uri(concrete(r.path))
                .header(http::header::AUTHORIZATION, format!("Bearer {admin}"))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let resp = gw.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            // Routes that read no body answer as if it were empty.
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                let json: serde_json::Value = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| panic!("{} {}: a plain-text 413", r.method, r.path));
                assert_eq!(
                    json["error"]["code"], "payload_too_large",
                    "{} {}",
                    r.method, r.path
                );
            }
        }
        for (method, path) in [
            (Method::POST, "/api/v1/auth/login"),
            (Method::POST, "/api/v1/users"),
            (Method::PATCH, "/api/v1/users/{id}"),
            (Method::PUT, "/api/v1/plugins/{name}/config"),
        ] {
            let req = Request::builder()
                .method(method.clone())
                .uri(concrete(path))
                .header(http::header::AUTHORIZATION, format!("Bearer {admin}"))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let resp = gw.app.clone().oneshot(req).await.unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "{method} {path}"
            );
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
