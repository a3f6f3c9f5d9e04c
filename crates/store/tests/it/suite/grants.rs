//! Chat sessions bound to a tenant, and tenants granted to users, in the
//! shared suite.

use super::tickets::tenant;
use crate::helpers::{next_millisecond, session, user};
use csp_domain::{SessionId, TenantId, UserId};
use csp_store::{Error, NewSession, SessionRecord, Store, TenantGrant, TenantUpdate};
use time::OffsetDateTime;
use time::macros::datetime;

async fn tenant_session(store: &dyn Store, user: UserId, tenant: &TenantId) -> SessionRecord {
    store
        .create_session(NewSession {
            session_id: SessionId::new(),
            user_id: user,
            status: "ready".to_owned(),
            tenant_id: Some(tenant.clone()),
        })
        .await
        .expect("create a tenant's session")
}

async fn set_active(store: &dyn Store, tenant: &TenantId, active: bool) {
    store
        .update_tenant(
            tenant,
            TenantUpdate {
                is_active: Some(active),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

fn not_found(err: Error, what: &str) {
    match err {
        Error::NotFound(message) => assert!(message.contains(what), "{message} names {what}"),
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

// --- Sessions bound to a tenant ---------------------------------------------

pub(crate) async fn sessions_with_and_without_a_tenant_read_back_alike(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let bound = tenant_session(store, alice.user_id, &acme).await;
    assert_eq!(bound.tenant_id, Some(acme.clone()));
    next_millisecond().await;
    let unbound = session(store, alice.user_id).await;
    assert_eq!(unbound.tenant_id, None);
    next_millisecond().await;
    let bobs = tenant_session(store, bob.user_id, &acme).await;

    // Every read returns what was created, tenant included.
    for s in [&bound, &unbound, &bobs] {
        assert_eq!(store.session(s.session_id).await.unwrap().as_ref(), Some(s));
    }
    assert_eq!(
        store.sessions_of(alice.user_id).await.unwrap(),
        [unbound.clone(), bound.clone()]
    );
    assert_eq!(
        store.all_sessions(10).await.unwrap(),
        [bobs.clone(), unbound.clone(), bound.clone()]
    );

    // The binding survives what else happens to a session.
    store
        .set_session_state(bound.session_id, "ended", true, Some("idle_timeout"))
        .await
        .unwrap();
    store.record_resume(bound.session_id).await.unwrap();
    let resumed = store.session(bound.session_id).await.unwrap().unwrap();
    assert_eq!(resumed.tenant_id, Some(acme));
}

pub(crate) async fn session_with_an_unknown_tenant_is_not_found(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let nobody = TenantId::parse("nobody").unwrap();
    let err = store
        .create_session(NewSession {
            session_id: SessionId::new(),
            user_id: alice.user_id,
            status: "ready".to_owned(),
            tenant_id: Some(nobody.clone()),
        })
        .await
        .unwrap_err();
    not_found(err, "tenant 'nobody'");
    assert_eq!(store.sessions_of(alice.user_id).await.unwrap(), vec![]);

    // With a tenant that exists, an unknown user is still the user.
    let acme = tenant(store, "acme").await;
    let stranger = UserId::new();
    let err = store
        .create_session(NewSession {
            session_id: SessionId::new(),
            user_id: stranger,
            status: "ready".to_owned(),
            tenant_id: Some(acme),
        })
        .await
        .unwrap_err();
    not_found(err, &format!("user {stranger}"));
}

// --- Grants ------------------------------------------------------------------

pub(crate) async fn grant_tenant_is_new_once_and_listed(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let zeta = tenant(store, "zeta").await;
    let admin = user(store, "admin").await;
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let (early, late) = (
        datetime!(2026-12-01 09:00:00.123456 UTC),
        datetime!(2026-12-01 10:00:00.5 UTC),
    );
    let by = Some(admin.user_id);

    assert!(store.tenant_grants(&acme).await.unwrap().is_empty());
    assert!(!store.is_granted(&acme, alice.user_id).await.unwrap());
    assert!(
        store
            .grant_tenant(&acme, alice.user_id, by, late)
            .await
            .unwrap()
    );
    // Again, by someone else at another time: not new, and nothing changes.
    assert!(
        !store
            .grant_tenant(&acme, alice.user_id, None, early)
            .await
            .unwrap()
    );
    assert!(
        store
            .grant_tenant(&acme, bob.user_id, None, early)
            .await
            .unwrap()
    );
    assert!(
        store
            .grant_tenant(&acme, carol.user_id, by, late)
            .await
            .unwrap()
    );
    assert!(
        store
            .grant_tenant(&zeta, alice.user_id, by, early)
            .await
            .unwrap()
    );

    // Oldest first (stored to the millisecond), then by user.
    let mut same_time = [alice.user_id, carol.user_id];
    same_time.sort();
    let grant = |user: UserId, granted_by: Option<UserId>, at: OffsetDateTime| TenantGrant {
        tenant_id: acme.clone(),
        user_id: user,
        granted_by,
        granted_at: at,
    };
    assert_eq!(
        store.tenant_grants(&acme).await.unwrap(),
        [
            grant(bob.user_id, None, datetime!(2026-12-01 09:00:00.123 UTC)),
            grant(same_time[0], by, late),
            grant(same_time[1], by, late),
        ]
    );
    assert_eq!(
        store.tenant_grants(&zeta).await.unwrap(),
        [TenantGrant {
            tenant_id: zeta.clone(),
            user_id: alice.user_id,
            granted_by: by,
            granted_at: datetime!(2026-12-01 09:00:00.123 UTC),
        }]
    );

    // By tenant id, whatever order they were granted in.
    assert_eq!(
        store.granted_tenants(alice.user_id).await.unwrap(),
        [acme.clone(), zeta.clone()]
    );
    assert_eq!(
        store.granted_tenants(bob.user_id).await.unwrap(),
        std::slice::from_ref(&acme)
    );
    assert_eq!(store.granted_tenants(admin.user_id).await.unwrap(), []);
    assert_eq!(store.granted_tenants(UserId::new()).await.unwrap(), []);

    assert!(store.is_granted(&acme, alice.user_id).await.unwrap());
    assert!(store.is_granted(&zeta, alice.user_id).await.unwrap());
    assert!(!store.is_granted(&zeta, bob.user_id).await.unwrap());
    assert!(!store.is_granted(&acme, admin.user_id).await.unwrap());
    let nobody = TenantId::parse("nobody").unwrap();
    assert!(!store.is_granted(&nobody, alice.user_id).await.unwrap());
    assert!(store.tenant_grants(&nobody).await.unwrap().is_empty());
}

pub(crate) async fn revoke_tenant_is_true_once(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let zeta = tenant(store, "zeta").await;
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let at = OffsetDateTime::now_utc();
    for (t, u) in [
        (&acme, alice.user_id),
        (&acme, bob.user_id),
        (&zeta, alice.user_id),
    ] {
        assert!(store.grant_tenant(t, u, None, at).await.unwrap());
    }

    assert!(store.revoke_tenant(&acme, alice.user_id).await.unwrap());
    assert!(!store.revoke_tenant(&acme, alice.user_id).await.unwrap());
    assert!(!store.is_granted(&acme, alice.user_id).await.unwrap());
    // Only that grant went.
    assert_eq!(
        store.granted_tenants(alice.user_id).await.unwrap(),
        std::slice::from_ref(&zeta)
    );
    assert!(store.is_granted(&acme, bob.user_id).await.unwrap());
    let users: Vec<UserId> = store
        .tenant_grants(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.user_id)
        .collect();
    assert_eq!(users, [bob.user_id]);

    // Nothing to revoke: false, not an error.
    let nobody = TenantId::parse("nobody").unwrap();
    assert!(!store.revoke_tenant(&nobody, alice.user_id).await.unwrap());
    assert!(!store.revoke_tenant(&zeta, UserId::new()).await.unwrap());

    // A revoked grant may be granted again, as new.
    assert!(
        store
            .grant_tenant(&acme, alice.user_id, None, at)
            .await
            .unwrap()
    );
    assert!(store.is_granted(&acme, alice.user_id).await.unwrap());
}

pub(crate) async fn grants_of_unknown_tenants_and_users_are_not_found(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let alice = user(store, "alice").await;
    let at = OffsetDateTime::now_utc();

    let nobody = TenantId::parse("nobody").unwrap();
    let err = store
        .grant_tenant(&nobody, alice.user_id, None, at)
        .await
        .unwrap_err();
    not_found(err, "tenant 'nobody'");

    let stranger = UserId::new();
    let err = store
        .grant_tenant(&acme, stranger, None, at)
        .await
        .unwrap_err();
    not_found(err, &format!("user {stranger}"));

    // Nothing was written, and the store still writes after the failures.
    assert!(store.tenant_grants(&acme).await.unwrap().is_empty());
    assert_eq!(store.granted_tenants(stranger).await.unwrap(), []);
    assert!(
        store
            .grant_tenant(&acme, alice.user_id, None, at)
            .await
            .unwrap()
    );
}

pub(crate) async fn a_soft_deleted_tenant_is_no_longer_granted(store: &dyn Store) {
    let acme = tenant(store, "acme").await;
    let zeta = tenant(store, "zeta").await;
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let at = OffsetDateTime::now_utc();
    for t in [&acme, &zeta] {
        assert!(
            store
                .grant_tenant(t, alice.user_id, None, at)
                .await
                .unwrap()
        );
    }

    set_active(store, &acme, false).await;
    assert_eq!(
        store.granted_tenants(alice.user_id).await.unwrap(),
        std::slice::from_ref(&zeta)
    );
    assert!(!store.is_granted(&acme, alice.user_id).await.unwrap());
    assert!(store.is_granted(&zeta, alice.user_id).await.unwrap());
    // It cannot be granted while deleted, not even again.
    for u in [alice.user_id, bob.user_id] {
        let err = store.grant_tenant(&acme, u, None, at).await.unwrap_err();
        not_found(err, "tenant 'acme'");
    }
    // The stored grant stays (the admin's view of the tenant) ...
    let kept: Vec<UserId> = store
        .tenant_grants(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.user_id)
        .collect();
    assert_eq!(kept, [alice.user_id]);

    // ... and counts again once the tenant is reactivated.
    set_active(store, &acme, true).await;
    assert_eq!(
        store.granted_tenants(alice.user_id).await.unwrap(),
        [acme.clone(), zeta]
    );
    assert!(store.is_granted(&acme, alice.user_id).await.unwrap());
    assert!(!store.is_granted(&acme, bob.user_id).await.unwrap());
}
