//! Durable records of csp: users, chat sessions and each session's message log,
//! each user's monthly spend, the audit log, plugins' state and config, and
//! the sealed secrets of plugins and tenants.
//!
//! Owns: the [`UserStore`], [`SessionStore`], [`BudgetStore`], [`AuditStore`],
//! [`PluginStore`] and [`SecretStore`] (sealed secrets by [`Owner`] and key,
//! all-or-nothing re-encryption of every owner's) traits, their Postgres adapter ([`PgStore`],
//! distributed mode) and SQLite adapter ([`SqliteStore`], `csp dev`), the
//! audit hash chain ([`audit_hash`], [`verify_audit_chain`]), and the schema
//! in `migrations/` (applied when a store connects).
//!
//! Must never: hash or check passwords (it stores the hash it is given), decide
//! who may see a session (callers authorise, the store only filters by owner),
//! decide what a turn may cost (callers pass the cap; the store only makes the
//! check-and-reserve atomic), redact audit input (callers do), see a
//! secret in the clear (callers seal and open them), or print a database URL
//! with its password.

mod audit;
mod budget;
mod error;
mod migrations;
mod plugins;
mod postgres;
mod secrets;
mod sqlite;
mod timestamp;

use async_trait::async_trait;
use csp_domain::{Role, SessionId, UserId};
use std::time::Duration;
use time::OffsetDateTime;

pub use audit::{audit_hash, verify_audit_chain};
pub use error::Error;
pub use postgres::PgStore;
pub use secrets::{Owner, OwnerKind, Reseal, SecretStore, StoredSecret};
pub use sqlite::SqliteStore;

/// A user to create. `password_hash` is already hashed (PHC string).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    /// Micro-dollars the user may spend per budget month; `None` is no cap.
    pub monthly_cost_cap_micros: Option<i64>,
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
    /// Micro-dollars the user may spend per budget month; `None` is no cap.
    pub monthly_cost_cap_micros: Option<i64>,
}

/// What an admin may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    /// `Some(None)` removes the cap.
    pub monthly_cost_cap_micros: Option<Option<i64>>,
    pub is_active: Option<bool>,
}

/// A session to create; its counters start at zero, it is resumable, and
/// its CLI session id is its own.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: SessionId,
    pub user_id: UserId,
    /// A [`csp_domain::SessionStatus::store_text`].
    pub status: String,
}

/// A stored session. Timestamps are UTC, truncated to the millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub session_id: SessionId,
    pub user_id: UserId,
    /// A [`csp_domain::SessionStatus::store_text`].
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
    /// Why the session last ended (a [`csp_domain::StatusReason`]'s text);
    /// `None` while it runs.
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
    /// Every user, oldest first.
    async fn list_users(&self) -> Result<Vec<UserRecord>, Error>;
    /// Applies the update in one write and returns the new record.
    /// [`Error::NotFound`] if no such user, [`Error::InvalidInput`] for a
    /// negative cap.
    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<UserRecord, Error>;
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
    /// Every user's sessions, most recently active first, at most `limit`
    /// (operators' overview).
    async fn all_sessions(&self, limit: u32) -> Result<Vec<SessionRecord>, Error>;
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

/// One user's spend in one budget month ("2026-11").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spend {
    /// Cost of the settled turns.
    pub spent_micros: i64,
    /// Set aside for turns in flight (unexpired reservations).
    pub reserved_micros: i64,
    /// The month's warning went out.
    pub warned: bool,
}

/// Money set aside for one turn before it runs.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// The caller's id, which [`BudgetStore::settle`] names later.
    pub id: uuid::Uuid,
    pub user_id: UserId,
    /// The budget month, "2026-11".
    pub month: String,
    pub amount_micros: i64,
    /// The user's cap now; not stored, only checked against.
    pub cap_micros: i64,
    /// When the reservation stops counting if it was never settled (the
    /// turn's process died). Compared with the clock of the process that
    /// calls the store, as `expires_at` was presumably computed with it.
    pub expires_at: OffsetDateTime,
}

/// Whether [`BudgetStore::reserve`] set the money aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Recorded; the spend includes the new reservation.
    Admitted(Spend),
    /// The cap is reached; nothing was recorded.
    Exceeded(Spend),
}

/// What [`BudgetStore::settle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub before: Spend,
    pub after: Spend,
    /// False when the reservation was gone already; then nothing changed.
    pub applied: bool,
}

#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Admits the reservation iff spent + (unexpired reservations of that
    /// user and month) < `cap_micros`, and then records it, atomically:
    /// concurrent calls for one user never admit more than that rule allows.
    /// Expired reservations (`expires_at <= now`) do not count and are
    /// deleted here. Reserving an id that is stored already admits it again
    /// without a second row (a retried call). [`Error::InvalidInput`] for a
    /// negative amount or a month that is not "YYYY-MM", [`Error::NotFound`]
    /// if the user does not exist.
    async fn reserve(&self, r: Reservation) -> Result<Admission, Error>;
    /// Removes reservation `id` and adds `cost_micros` to `month`'s spend of
    /// `user`, in one transaction. Idempotent on `id`: when the reservation
    /// is gone already (settled before, or expired and cleaned), `applied` is
    /// false and nothing changes. `before`/`after` are the month's spend
    /// around the call (equal when not applied). [`Error::InvalidInput`] for
    /// a negative cost, a malformed month, or a reservation `id` of another
    /// user or month (then nothing changes either).
    async fn settle(
        &self,
        id: uuid::Uuid,
        user: UserId,
        month: &str,
        cost_micros: i64,
    ) -> Result<Settled, Error>;
    /// Sets the month's `warned` flag; true only for the call that set it
    /// (once per user and month, even under concurrency).
    /// [`Error::NotFound`] if the user does not exist.
    async fn mark_warned(&self, user: UserId, month: &str) -> Result<bool, Error>;
    /// The month's spend; zeros when nothing was recorded (a new month
    /// starts at $0.00).
    async fn spend(&self, user: UserId, month: &str) -> Result<Spend, Error>;
}

/// One audit entry to append (tool invocation or admin action).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// The producer's id: appending it twice stores it once.
    pub audit_id: uuid::Uuid,
    /// Stored (and hashed) to the millisecond.
    pub timestamp: OffsetDateTime,
    /// The acting user.
    pub user_id: Option<UserId>,
    /// `None` for admin actions.
    pub session_id: Option<SessionId>,
    /// For instance "Bash", "mcp__postgres-query__execute_sql",
    /// "admin.user.create".
    pub tool_name: String,
    /// Already redacted by the caller.
    pub sanitized_input: String,
    /// One of [`AUDIT_RESULT_STATUSES`].
    pub result_status: String,
    pub execution_duration_ms: Option<i64>,
    pub cost_micros: Option<i64>,
}

/// The values of [`NewAuditEntry::result_status`] the schema accepts:
/// [`csp_domain::AuditStatus`]'s texts: the store holds them, it does not
/// name them.
pub const AUDIT_RESULT_STATUSES: [&str; csp_domain::AuditStatus::ALL.len()] = {
    let all = csp_domain::AuditStatus::ALL;
    let mut texts = [""; csp_domain::AuditStatus::ALL.len()];
    let mut i = 0;
    while i < texts.len() {
        texts[i] = all[i].as_str();
        i += 1;
    }
    texts
};

/// A stored entry with its place in the hash chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Position in the chain; increases with every append (not necessarily
    /// by one).
    pub seq: i64,
    /// As appended, with the timestamp in UTC to the millisecond.
    pub entry: NewAuditEntry,
    /// The previous row's hash, [`AUDIT_GENESIS_HASH`] for the first row.
    pub prev_hash: String,
    /// `audit_hash(prev_hash, entry)`.
    pub hash: String,
}

/// The `prev_hash` of the first row of the chain.
pub const AUDIT_GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Which audit rows [`AuditStore::audit_page`] returns; `None` filters are off.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user_id: Option<UserId>,
    /// Inclusive, on `timestamp`.
    pub start: Option<OffsetDateTime>,
    /// Exclusive, on `timestamp`.
    pub end: Option<OffsetDateTime>,
    /// Keyset paging: only rows with `seq < before_seq` (pass the last seq
    /// of the previous page).
    pub before_seq: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// The first link of the chain that does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenLink {
    pub seq: i64,
    pub audit_id: uuid::Uuid,
    pub reason: String,
}

/// The outcome of [`verify_audit_chain`].
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Rows examined: the whole chain when it holds, otherwise the rows up
    /// to and including the first broken one.
    pub checked: u64,
    pub first_broken: Option<BrokenLink>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends at the end of the chain; false (and nothing written) when
    /// `audit_id` is stored already. `prev_hash` is the hash of the previous
    /// row ([`AUDIT_GENESIS_HASH`] for the first), `hash` is
    /// `audit_hash(prev_hash, &entry)`. Appends from every replica are
    /// serialised, so the chain stays linear. [`Error::InvalidInput`] for a
    /// `result_status` outside [`AUDIT_RESULT_STATUSES`].
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<bool, Error>;
    /// Matching rows, newest (highest seq) first, at most `limit`.
    async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, Error>;
    /// Rows with `seq > after_seq` in seq order, at most `limit` (for
    /// verification and export).
    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error>;
}

/// A plugin as operators left it. Timestamps are UTC, truncated to the
/// millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginState {
    pub plugin_name: String,
    pub active: bool,
    /// Non-secret config values only; never names a key of `secrets`.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The secret values that are set, by `key`: the [`SecretStore`]'s
    /// secrets of [`Owner::plugin`] of this name.
    pub secrets: Vec<StoredSecret>,
    /// Who last changed the state or config; `None` when csp itself did.
    pub updated_by: Option<UserId>,
    pub updated_at: OffsetDateTime,
}

/// A change to one secret of a plugin, applied by
/// [`PluginStore::save_plugin_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    /// Stores the value, replacing the one under the same `key`.
    Set(StoredSecret),
    /// Removes the value under this `key`; nothing if there is none.
    Remove(String),
}

#[async_trait]
pub trait PluginStore: Send + Sync {
    /// Every plugin with a stored state, by name (byte order).
    async fn plugin_states(&self) -> Result<Vec<PluginState>, Error>;
    async fn plugin_state(&self, name: &str) -> Result<Option<PluginState>, Error>;
    /// Sets `active`, creating the state (empty config, no secrets) if there
    /// is none. [`Error::InvalidInput`] for an empty name.
    async fn set_plugin_active(
        &self,
        name: &str,
        active: bool,
        by: Option<UserId>,
    ) -> Result<PluginState, Error>;
    /// Replaces the non-secret config and applies the secret changes in
    /// order, in one transaction, creating the state (inactive) if there is
    /// none; `active` stays. Concurrent saves of one plugin take turns, so
    /// the result is entirely one of them. The secrets are the
    /// [`SecretStore`]'s, written in the same transaction as the config.
    /// [`Error::InvalidInput`], with
    /// nothing written, for an empty name or config key, or when `config`
    /// names a key that has a secret stored after the changes (a secret
    /// must never also sit in the clear).
    async fn save_plugin_config(
        &self,
        name: &str,
        config: serde_json::Map<String, serde_json::Value>,
        secrets: Vec<SecretChange>,
        by: Option<UserId>,
    ) -> Result<PluginState, Error>;
}

/// Everything csp keeps durably; implemented by every adapter.
pub trait Store:
    UserStore + SessionStore + BudgetStore + AuditStore + PluginStore + SecretStore
{
}

impl<T: UserStore + SessionStore + BudgetStore + AuditStore + PluginStore + SecretStore + ?Sized>
    Store for T
{
}

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
const RESUMING_STATUS: &str = csp_domain::SessionStatus::Preparing.store_text();

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
