//! The policy service over real gRPC, its store-backed cases on both
//! databases (`csp_store::backend_tests!`).

use csp_auth::Tokens;
use csp_domain::{ErrorCode, Role};
use csp_policy::{ADMIN_USERNAME, Config, Server, bootstrap_admin};
use csp_proto::v1::policy_client::PolicyClient;
use csp_proto::v1::{GetUserRequest, LoginRequest};
use csp_store::NewUser;
use csp_store::test_support::{Backend, TestStore};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn tokens() -> Tokens {
    Tokens::new(
        &SecretString::from("policy-test-secret-0123456789-abcdef"),
        Duration::from_secs(60),
    )
    .unwrap()
}

mod governance;
mod login;
mod plugins;

type SvcClient = PolicyClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        csp_rpc::ServiceToken,
    >,
>;

struct Running {
    /// Calls as the service `gateway` unless a request carries its own token.
    client: SvcClient,
    channel: tonic::transport::Channel,
    store: TestStore,
    stop: CancellationToken,
    queue: Arc<csp_bus::InProcessQueue>,
}

async fn start(backend: Backend) -> Running {
    start_with(backend.store().await, Arc::new(csp_policy::SystemClock)).await
}

async fn start_with(store: TestStore, clock: Arc<dyn csp_policy::Clock>) -> Running {
    start_config(store, clock, Default::default(), None).await
}

/// A policy service with `tools` (`CSP_TOOL_ROLES`) following the plugins
/// service at `plugins_addr`.
async fn start_config(
    store: TestStore,
    clock: Arc<dyn csp_policy::Clock>,
    tools: csp_policy::ToolRoles,
    plugins_addr: Option<String>,
) -> Running {
    let queue = Arc::new(csp_bus::InProcessQueue::new());
    let server = Server::build(
        Config {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            tokens: tokens(),
            tools,
            budget: Default::default(),
            clock,
            plugins_addr,
            hash_concurrency: 2,
        },
        store.shared(),
        queue.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(server.run(stop.clone()));
    let channel = csp_rpc::channel(&format!("http://{addr}")).unwrap();
    let client = PolicyClient::with_interceptor(
        channel.clone(),
        csp_rpc::ServiceToken::new(tokens(), "gateway"),
    );
    Running {
        client,
        channel,
        store,
        stop,
        queue,
    }
}

async fn bootstrap_generates_once_and_keeps_a_chosen_password(backend: Backend) {
    let store = backend.store().await;
    let generated = bootstrap_admin(&*store, None)
        .await
        .unwrap()
        .expect("generated");
    assert_eq!(generated.expose_secret().len(), 24);
    // Second start: the admin exists, nothing is generated or changed.
    assert!(bootstrap_admin(&*store, None).await.unwrap().is_none());
    let admin = store.user_by_name(ADMIN_USERNAME).await.unwrap().unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert!(csp_auth::verify_password(
        generated.expose_secret(),
        &admin.password_hash
    ));
    assert!(!admin.password_hash.contains(generated.expose_secret()));

    let store = backend.store().await;
    let chosen = SecretString::from("chosen-password");
    assert!(
        bootstrap_admin(&*store, Some(&chosen))
            .await
            .unwrap()
            .is_none()
    );
    let admin = store.user_by_name(ADMIN_USERNAME).await.unwrap().unwrap();
    assert!(csp_auth::verify_password(
        "chosen-password",
        &admin.password_hash
    ));
}

async fn login_issues_a_verifiable_token_and_records_the_time(backend: Backend) {
    let mut r = start(backend).await;
    bootstrap_admin(&*r.store, Some(&SecretString::from("pw-123456")))
        .await
        .unwrap();
    // Usernames are case-insensitive.
    let reply = r
        .client
        .login(LoginRequest {
            username: "Admin".into(),
            password: "pw-123456".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let claims = tokens().verify(&reply.token).unwrap();
    let user = reply.user.unwrap();
    assert_eq!(claims.sub.to_string(), user.user_id);
    assert_eq!(claims.role, Role::Admin);
    assert_eq!(reply.expires_in, 60);
    assert!(!user.last_login_at.is_empty());

    let fetched = r
        .client
        .get_user(GetUserRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.username, "admin");
    assert!(fetched.is_active);
    r.stop.cancel();
}

async fn wrong_password_unknown_user_and_empty_fields_are_the_same_refusal(backend: Backend) {
    let mut r = start(backend).await;
    r.store
        .create_user(NewUser {
            username: "ada".into(),
            password_hash: csp_auth::hash_password("right").unwrap(),
            role: Role::User,
            monthly_cost_cap_micros: None,
        })
        .await
        .unwrap();
    for (u, p) in [("ada", "wrong"), ("nobody", "right"), ("", ""), ("ada", "")] {
        let err = r
            .client
            .login(LoginRequest {
                username: u.into(),
                password: p.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            csp_rpc::error_code(&err),
            ErrorCode::BadCredentials,
            "{u}/{p}"
        );
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }
    let err = r
        .client
        .get_user(GetUserRequest {
            user_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    r.stop.cancel();
}

#[tokio::test]
async fn serves_grpc_health_and_reflection() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let r = start(Backend::Sqlite).await;
    let channel = r.channel.clone();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "csp.v1.Policy".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"csp.v1.Policy".to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    r.stop.cancel();
}

csp_store::backend_tests!(
    #[tokio::test]
    bootstrap_generates_once_and_keeps_a_chosen_password,
    login_issues_a_verifiable_token_and_records_the_time,
    wrong_password_unknown_user_and_empty_fields_are_the_same_refusal,
);
