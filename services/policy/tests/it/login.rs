//! Logins and new users: normalised names, refused look-alikes, and one
//! answer for every refusal.

use super::{Running, start};
use csp_domain::{ErrorCode, Role};
use csp_proto::v1 as pb;
use csp_store::NewUser;
use csp_store::test_support::Backend;

async fn admin_token(r: &Running) -> String {
    let admin = r
        .store
        .create_user(NewUser {
            username: "admin".into(),
            password_hash: csp_auth::hash_password("admin-password").unwrap(),
            role: Role::Admin,
            monthly_cost_cap_micros: None,
        })
        .await
        .unwrap();
    super::tokens()
        .issue(admin.user_id, "admin", Role::Admin)
        .unwrap()
        .0
}

async fn create(r: &Running, token: &str, name: &str) -> Result<pb::User, tonic::Status> {
    let mut c = pb::policy_client::PolicyClient::new(r.channel.clone());
    c.create_user(csp_rpc::bearer(
        pb::CreateUserRequest {
            username: name.into(),
            password: "long-enough-pw".into(),
            role: "user".into(),
            monthly_cost_cap_usd: None,
        },
        token,
    ))
    .await
    .map(|r| r.into_inner())
}

async fn login(
    r: &mut Running,
    name: &str,
    password: &str,
) -> Result<pb::LoginResponse, tonic::Status> {
    r.client
        .login(pb::LoginRequest {
            username: name.into(),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn names_are_stored_in_nfkc_and_log_in_however_typed(backend: Backend) {
    let mut r = start(backend).await;
    let admin = admin_token(&r).await;
    let user = create(&r, &admin, "ｂｏｂ").await.unwrap();
    assert_eq!(user.username, "bob");
    for typed in ["bob", "ｂｏｂ", "BOB"] {
        let reply = login(&mut r, typed, "long-enough-pw").await.unwrap();
        assert_eq!(reply.user.unwrap().username, "bob", "{typed}");
    }
    let reply = login(&mut r, "ａｄｍｉｎ", "admin-password").await.unwrap();
    assert_eq!(reply.user.unwrap().username, "admin");
    r.stop.cancel();
}

async fn look_alike_names_are_refused_with_the_name_they_resemble(backend: Backend) {
    let r = start(backend).await;
    let admin = admin_token(&r).await;
    for alike in ["\u{430}dmin", "\u{410}DMIN", "adrnin", "adm\u{456}n"] {
        let err = create(&r, &admin, alike).await.unwrap_err();
        assert_eq!(
            csp_rpc::error_code(&err),
            ErrorCode::UsernameTaken,
            "{alike}"
        );
        assert_eq!(err.code(), tonic::Code::AlreadyExists);
        let message = csp_rpc::user_message(&err).unwrap_or_default();
        assert!(
            message.contains("looks like the existing username 'admin'"),
            "{alike}: {message}"
        );
    }
    // The same name in other case or compatibility letters (NFKC).
    for same in ["Admin", "ADMIN", "\u{1d41a}dmin"] {
        let err = create(&r, &admin, same).await.unwrap_err();
        assert_eq!(
            csp_rpc::error_code(&err),
            ErrorCode::UsernameTaken,
            "{same}"
        );
    }
    // Names that only share letters are fine.
    create(&r, &admin, "admins").await.unwrap();
    create(&r, &admin, "madi").await.unwrap();
    r.stop.cancel();
}

async fn unknown_wrong_and_deactivated_are_one_refusal(backend: Backend) {
    let mut r = start(backend).await;
    let admin = admin_token(&r).await;
    let gone = create(&r, &admin, "gone").await.unwrap();
    r.store
        .update_user(
            gone.user_id.parse().unwrap(),
            csp_store::UserUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut refusals = Vec::new();
    for name in ["admin", "nobody", "gone"] {
        let err = login(&mut r, name, "not-the-password").await.unwrap_err();
        refusals.push((
            err.code(),
            err.message().to_owned(),
            csp_rpc::error_code(&err),
            csp_rpc::user_message(&err),
        ));
    }
    assert_eq!(refusals[0].2, ErrorCode::BadCredentials);
    assert!(refusals.iter().all(|x| x == &refusals[0]), "{refusals:?}");
    // The right password of a deactivated account: only its owner learns it.
    let err = login(&mut r, "gone", "long-enough-pw").await.unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::AccountDeactivated);
    r.stop.cancel();
}

csp_store::backend_tests!(
    #[tokio::test]
    names_are_stored_in_nfkc_and_log_in_however_typed,
    look_alike_names_are_refused_with_the_name_they_resemble,
    unknown_wrong_and_deactivated_are_one_refusal,
);
