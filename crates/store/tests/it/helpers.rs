use csp_domain::{EnhancementStatus, Role, SessionId, TenantId, UserId};
use csp_store::test_support::TestStore;
use csp_store::{
    Error, NewEnhancement, NewMessage, NewSession, NewUser, Outcome, SessionRecord, Store,
    UserRecord,
};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Which SQL a raw statement must be written in.
pub(crate) use csp_store::test_support::Backend as Dialect;

/// A store under test and whatever keeps it alive (a database, a directory)
/// until the test ends.
pub(crate) trait Fixture {
    fn store(&self) -> &dyn Store;
    fn dialect(&self) -> Dialect;
    /// SQL straight to the database, past the store's API, for simulating
    /// what csp never does.
    async fn execute_raw(&self, sql: &str) -> Result<(), Error>;
}

impl Fixture for TestStore {
    fn store(&self) -> &dyn Store {
        &**self
    }

    fn dialect(&self) -> Dialect {
        self.backend()
    }

    async fn execute_raw(&self, sql: &str) -> Result<(), Error> {
        TestStore::execute_raw(self, sql).await
    }
}

pub(crate) async fn user(store: &dyn Store, username: &str) -> UserRecord {
    store
        .create_user(NewUser {
            username: username.to_owned(),
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$hash-of-{username}"),
            role: Role::User,
            monthly_cost_cap_micros: None,
        })
        .await
        .expect("create user")
}

pub(crate) async fn session(store: &dyn Store, user: UserId) -> SessionRecord {
    store
        .create_session(NewSession {
            session_id: SessionId::new(),
            user_id: user,
            status: "ready".to_owned(),
            tenant_id: None,
        })
        .await
        .expect("create session")
}

pub(crate) fn message(session: SessionId, seq: u64, text: &str) -> NewMessage {
    NewMessage {
        session_id: session,
        seq,
        kind: "user_message".to_owned(),
        body: serde_json::json!({ "text": text }),
    }
}

/// Stores keep milliseconds; waiting a little more than one guarantees the
/// next timestamp differs from the last, so "most recent" is well defined.
pub(crate) async fn next_millisecond() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

/// The lease the suite's attempts claim their jobs for: a worker's 120 s
/// attempt and its margin.
pub(crate) const LEASE: Duration = Duration::from_secs(150);

/// Records a job of `tenant` (its id is its ticket and delivery key) and,
/// given an outcome, claims it and ends it at `at`: the figures' suites
/// need jobs that ended when and how they say, nothing else about them. A
/// failed outcome without an error message gets one.
pub(crate) async fn ended_job(
    store: &dyn Store,
    tenant: &TenantId,
    end: Option<Outcome>,
    at: OffsetDateTime,
) {
    let job_id = Uuid::new_v4();
    store
        .record_enhancement(NewEnhancement {
            job_id,
            tenant_id: tenant.clone(),
            ticket_id: job_id.to_string(),
            delivery_key: job_id.to_string(),
            subject: "s".into(),
            description: "d".into(),
            priority: "Low".into(),
            correlation_id: "c".into(),
        })
        .await
        .unwrap();
    let Some(mut outcome) = end else { return };
    if outcome.status == Some(EnhancementStatus::Failed) && outcome.error_message.is_none() {
        outcome.error_message = Some("boom".into());
    }
    store
        .start_attempt(job_id, at, LEASE)
        .await
        .unwrap()
        .started()
        .unwrap();
    assert!(store.finish_enhancement(job_id, outcome, at).await.unwrap());
}
