//! Durable records of csp: users, chat sessions and each session's message log.
//!
//! Owns: the [`UserStore`] and [`SessionStore`] traits, their Postgres adapter
//! ([`PgStore`], distributed mode) and SQLite adapter ([`SqliteStore`], `csp dev`),
//! and the schema in `migrations/` (applied when a store connects).
//!
//! Must never: hash or check passwords (it stores the hash it is given), decide
//! who may see a session (callers authorise, the store only filters by owner),
//! or print a database URL with its password.

mod error;
mod migrations;
mod postgres;
mod sqlite;
mod timestamp;

use async_trait::async_trait;
use csp_domain::{Role, SessionId, UserId};
use std::time::Duration;
use time::OffsetDateTime;

pub use error::Error;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A user to create. `password_hash` is already hashed (PHC string).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

/// A stored user. Timestamps are UTC, truncated to the millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub user_id: UserId,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub is_active: bool,
    pub created_at: OffsetDateTime,
    pub last_login_at: Option<OffsetDateTime>,
}

/// A session to create; its counters start at zero, it is resumable, and
/// its CLI session id is its own.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub status: String,
}

/// A stored session. Timestamps are UTC, truncated to the millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub status: String,
    pub created_at: OffsetDateTime,
    pub last_active_at: OffsetDateTime,
    pub message_count: u64,
    pub total_cost_usd: f64,
    pub title: Option<String>,
    /// Highest `seq` appended so far; 0 before the first message.
    pub last_seq: u64,
    /// The Claude Code CLI's own session id when it differs from
    /// `session_id` (a failed resume started a fresh CLI session under this
    /// one); `None` means it is `session_id`.
    pub agent_session_id: Option<uuid::Uuid>,
    /// Resumes started so far; 0 for a new session.
    pub resume_count: u64,
    /// Whether a later resume is allowed; true for a new session.
    pub is_resumable: bool,
    /// Why the session last ended; `None` while it runs.
    pub ended_reason: Option<String>,
}

/// A message to append to a session's log. `seq` is chosen by the writer and
/// must fit in an `i64` (the databases' integer).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub session_id: SessionId,
    pub seq: u64,
    pub kind: String,
    pub body: serde_json::Value,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    pub session_id: SessionId,
    pub seq: u64,
    pub kind: String,
    pub body: serde_json::Value,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// [`Error::Conflict`] if the username is taken, ignoring case.
    async fn create_user(&self, new: NewUser) -> Result<UserRecord, Error>;
    /// Looks the name up ignoring case.
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, Error>;
    /// [`Error::NotFound`] if the user does not exist.
    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> Result<(), Error>;
    async fn count_users(&self) -> Result<u64, Error>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// [`Error::Conflict`] if the id exists, [`Error::NotFound`] if the user does not.
    async fn create_session(&self, new: NewSession) -> Result<SessionRecord, Error>;
    /// Succeeds when the database answers (readiness probes).
    async fn ping(&self) -> Result<(), Error>;
    /// [`Error::NotFound`] if the session does not exist.
    async fn set_session_status(&self, id: SessionId, status: &str) -> Result<(), Error>;
    /// Sets status, whether a later resume is allowed, and why it ended
    /// (`None` clears it), in one write, so a reader never sees a session
    /// that ended without its reason. Not activity: `last_active_at` stays.
    /// [`Error::NotFound`] if the session does not exist.
    async fn set_session_state(
        &self,
        id: SessionId,
        status: &str,
        is_resumable: bool,
        ended_reason: Option<&str>,
    ) -> Result<(), Error>;
    /// A resume started: `resume_count += 1`, `last_active_at = now`,
    /// `status = "preparing"`, `ended_reason = NULL`; `is_resumable` stays.
    /// [`Error::NotFound`] if the session does not exist.
    async fn record_resume(&self, id: SessionId) -> Result<(), Error>;
    /// The CLI session id to resume from now on (after a fresh restart).
    /// [`Error::NotFound`] if the session does not exist.
    async fn set_agent_session(
        &self,
        id: SessionId,
        agent_session_id: uuid::Uuid,
    ) -> Result<(), Error>;
    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, Error>;
    /// The user's sessions, most recently active first.
    async fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, Error>;
    /// Appends one message and, in the same transaction, advances the session's
    /// watermark: `last_seq = max(last_seq, seq)`, `message_count += 1`,
    /// `last_active_at = now`. Idempotent: a second append of the same
    /// `(session_id, seq)` changes nothing, whatever its body, so a retried
    /// write cannot duplicate a message. [`Error::NotFound`] if the session
    /// does not exist.
    async fn append_message(&self, msg: NewMessage) -> Result<(), Error>;
    /// [`Error::NotFound`] if the session does not exist.
    async fn set_total_cost(&self, id: SessionId, total_cost_usd: f64) -> Result<(), Error>;
    /// [`Error::NotFound`] if the session does not exist.
    async fn set_title(&self, id: SessionId, title: &str) -> Result<(), Error>;
    /// All messages in seq order and the watermark, read from one snapshot.
    /// [`Error::NotFound`] if the session does not exist.
    async fn messages(&self, id: SessionId) -> Result<(Vec<MessageRecord>, u64), Error>;
}

/// Everything csp keeps durably; implemented by every adapter.
pub trait Store: UserStore + SessionStore {}

impl<T: UserStore + SessionStore + ?Sized> Store for T {}

/// Connection-pool settings shared by the adapters.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upper bound on open connections. Ignored by [`SqliteStore::in_memory`],
    /// whose database lives in its one connection.
    pub max_connections: u32,
    /// How long an operation (and connecting at start) waits for a connection
    /// before failing with [`Error::Unavailable`].
    pub acquire_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Usernames are unique and looked up ignoring case; both adapters compare
/// this key so that "ignoring case" means the same on both.
fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// The status [`SessionStore::record_resume`] sets: the session's process is
/// being started again.
const RESUMING_STATUS: &str = "preparing";

fn seq_to_db(seq: u64) -> Result<i64, Error> {
    i64::try_from(seq).map_err(|_| Error::InvalidInput(format!("seq {seq} exceeds i64::MAX")))
}

fn count_from_db(column: &str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("{column} is negative: {value}")))
}

/// A new session's record: nothing appended, never resumed, resumable.
fn new_session_record(new: NewSession, now: OffsetDateTime) -> SessionRecord {
    SessionRecord {
        session_id: new.session_id,
        user_id: new.user_id,
        status: new.status,
        created_at: now,
        last_active_at: now,
        message_count: 0,
        total_cost_usd: 0.0,
        title: None,
        last_seq: 0,
        agent_session_id: None,
        resume_count: 0,
        is_resumable: true,
        ended_reason: None,
    }
}

fn role_from_db(value: &str) -> Result<Role, Error> {
    value.parse().map_err(Error::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_key_folds_unicode_case() {
        assert_eq!(username_key("ÄLICE"), username_key("älice"));
        assert_eq!(username_key("Bob"), "bob");
    }

    #[test]
    fn seq_beyond_i64_is_rejected() {
        assert_eq!(seq_to_db(7).unwrap(), 7);
        assert!(matches!(seq_to_db(u64::MAX), Err(Error::InvalidInput(_))));
    }
}
