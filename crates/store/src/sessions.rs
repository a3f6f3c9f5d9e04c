//! Chat sessions and each session's message log.

use crate::dialect::Dialect;
use crate::error::Error;
use crate::sql::{Columns, Sql, SqlStore};
use crate::timestamp;
use async_trait::async_trait;
use csp_domain::{SessionId, TenantId, UserId};
use sqlx::error::ErrorKind;
use sqlx::types::Json;
use time::OffsetDateTime;
use tracing::instrument;

/// A session to create; its counters start at zero, it is resumable, and
/// its CLI session id is its own.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: SessionId,
    pub user_id: UserId,
    /// A [`csp_domain::SessionStatus::store_text`].
    pub status: String,
    /// The tenant the session works for; `None`: no tenant. The caller
    /// checks that the user may use it (an admin, or a grant); the store
    /// only checks that it exists.
    pub tenant_id: Option<TenantId>,
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
    /// The tenant the session is bound to; `None`: no tenant.
    pub tenant_id: Option<TenantId>,
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
pub trait SessionStore: Send + Sync {
    /// [`Error::Conflict`] if the id exists, [`Error::NotFound`] if the user
    /// or the tenant does not.
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

/// The status [`SessionStore::record_resume`] sets: the session's process is
/// being started again.
const RESUMING_STATUS: &str = csp_domain::SessionStatus::Preparing.store_text();

fn seq_to_db(seq: u64) -> Result<i64, Error> {
    i64::try_from(seq).map_err(|_| Error::InvalidInput(format!("seq {seq} exceeds i64::MAX")))
}

impl SessionRecord {
    /// A new session's record as [`SessionStore::create_session`] stores
    /// it: nothing appended, never resumed, resumable. Public for fakes of
    /// the store, so that they agree with it.
    pub fn new(new: NewSession, now: OffsetDateTime) -> Self {
        Self {
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
            tenant_id: new.tenant_id,
        }
    }
}

macro_rules! session_columns {
    () => {
        "session_id, user_id, status, created_at, last_active_at, \
         message_count, total_cost_usd, title, last_seq, \
         agent_session_id, resume_count, is_resumable, ended_reason, tenant_id"
    };
}

/// Most recently active first; ties (same millisecond) in a stable order.
macro_rules! session_order {
    () => {
        " ORDER BY last_active_at DESC, created_at DESC, session_id"
    };
}

fn session_from_row<DB: Dialect>(row: Columns<'_, DB>) -> Result<SessionRecord, Error> {
    let tenant_id: Option<String> = row.get("tenant_id")?;
    Ok(SessionRecord {
        session_id: SessionId(row.uuid("session_id")?),
        user_id: UserId(row.uuid("user_id")?),
        status: row.get("status")?,
        created_at: row.time("created_at")?,
        last_active_at: row.time("last_active_at")?,
        message_count: row.count("message_count")?,
        total_cost_usd: row.get("total_cost_usd")?,
        title: row.get("title")?,
        last_seq: row.count("last_seq")?,
        agent_session_id: row.opt_uuid("agent_session_id")?,
        resume_count: row.count("resume_count")?,
        is_resumable: row.get("is_resumable")?,
        ended_reason: row.get("ended_reason")?,
        tenant_id: tenant_id
            .map(|id| TenantId::parse(&id).map_err(|e| Error::Corrupt(e.to_string())))
            .transpose()?,
    })
}

/// Which key a session insert's foreign-key violation is about, the user
/// or the tenant: SQLite's error does not say, so both databases ask.
async fn missing_owner<DB: Dialect>(store: &SqlStore<DB>, session: &SessionRecord) -> Error {
    let user = Error::NotFound(format!("user {}", session.user_id));
    let Some(tenant) = &session.tenant_id else {
        return user;
    };
    let db = &store.db;
    match db
        .sql("SELECT 1 AS one FROM users WHERE user_id = $1")
        .bind_id(session.user_id.0)
        .fetch_optional(db.pool())
        .await
    {
        Ok(Some(_)) => Error::NotFound(format!("tenant '{tenant}'")),
        Ok(None) => user,
        Err(e) => e,
    }
}

/// Runs `update`, a statement that changes session `id`;
/// [`Error::NotFound`] if it changed no row.
async fn update_session<DB: Dialect>(
    store: &SqlStore<DB>,
    id: SessionId,
    update: Sql<'_, DB>,
) -> Result<(), Error> {
    if update.execute(store.db.pool()).await? == 0 {
        return Err(Error::NotFound(format!("session {id}")));
    }
    Ok(())
}

#[async_trait]
impl<DB: Dialect> SessionStore for SqlStore<DB> {
    #[instrument(name = "store.create_session", skip_all, fields(session.id = %new.session_id))]
    async fn create_session(&self, new: NewSession) -> Result<SessionRecord, Error> {
        let now = timestamp::now();
        let session = SessionRecord::new(new, now);
        let db = &self.db;
        let inserted = db
            .sql(
                "INSERT INTO sessions (session_id, user_id, status, created_at, last_active_at, \
                 tenant_id) VALUES ($1, $2, $3, $4, $4, $5)",
            )
            .bind_id(session.session_id.0)
            .bind_id(session.user_id.0)
            .bind(session.status.as_str())
            .bind_time(now)
            .bind(session.tenant_id.as_ref().map(|t| t.as_str().to_owned()))
            .execute(db.pool())
            .await;
        match inserted {
            Ok(_) => Ok(session),
            Err(e) => match e.violation() {
                Some(ErrorKind::UniqueViolation) => {
                    Err(Error::Conflict(format!("session {}", session.session_id)))
                }
                Some(ErrorKind::ForeignKeyViolation) => Err(missing_owner(self, &session).await),
                _ => Err(e),
            },
        }
    }

    async fn ping(&self) -> Result<(), Error> {
        let db = &self.db;
        db.sql("SELECT 1").execute(db.pool()).await?;
        Ok(())
    }

    #[instrument(name = "store.set_session_status", skip_all, fields(session.id = %id, status))]
    async fn set_session_status(&self, id: SessionId, status: &str) -> Result<(), Error> {
        let update = self
            .db
            .sql("UPDATE sessions SET status = $2 WHERE session_id = $1")
            .bind_id(id.0)
            .bind(status);
        update_session(self, id, update).await
    }

    #[instrument(name = "store.set_session_state", skip_all, fields(session.id = %id, status, is_resumable))]
    async fn set_session_state(
        &self,
        id: SessionId,
        status: &str,
        is_resumable: bool,
        ended_reason: Option<&str>,
    ) -> Result<(), Error> {
        let update = self
            .db
            .sql(
                "UPDATE sessions SET status = $2, is_resumable = $3, ended_reason = $4 \
                 WHERE session_id = $1",
            )
            .bind_id(id.0)
            .bind(status)
            .bind(is_resumable)
            .bind(ended_reason.map(str::to_owned));
        update_session(self, id, update).await
    }

    #[instrument(name = "store.record_resume", skip_all, fields(session.id = %id))]
    async fn record_resume(&self, id: SessionId) -> Result<(), Error> {
        // The maximum as in append_message: activity never moves backwards.
        let update = self
            .db
            .dialect_sql(format!(
                "UPDATE sessions SET resume_count = resume_count + 1, \
                 last_active_at = {greatest}(last_active_at, $2), status = $3, \
                 ended_reason = NULL WHERE session_id = $1",
                greatest = DB::GREATEST
            ))
            .bind_id(id.0)
            .bind_time(timestamp::now())
            .bind(RESUMING_STATUS);
        update_session(self, id, update).await
    }

    #[instrument(name = "store.set_agent_session", skip_all, fields(session.id = %id, agent_session.id = %agent_session_id))]
    async fn set_agent_session(
        &self,
        id: SessionId,
        agent_session_id: uuid::Uuid,
    ) -> Result<(), Error> {
        let update = self
            .db
            .sql("UPDATE sessions SET agent_session_id = $2 WHERE session_id = $1")
            .bind_id(id.0)
            .bind_id(agent_session_id);
        update_session(self, id, update).await
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE session_id = $1"
        );
        let row = db.sql(sql).bind_id(id.0).fetch_optional(db.pool()).await?;
        row.map(|row| session_from_row(db.columns(&row)))
            .transpose()
    }

    async fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = $1",
            session_order!()
        );
        let rows = db.sql(sql).bind_id(user.0).fetch_all(db.pool()).await?;
        rows.iter()
            .map(|row| session_from_row(db.columns(row)))
            .collect()
    }

    async fn all_sessions(&self, limit: u32) -> Result<Vec<SessionRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions",
            session_order!(),
            " LIMIT $1"
        );
        let rows = db
            .sql(sql)
            .bind(i64::from(limit))
            .fetch_all(db.pool())
            .await?;
        rows.iter()
            .map(|row| session_from_row(db.columns(row)))
            .collect()
    }

    #[instrument(name = "store.append_message", skip_all, fields(session.id = %msg.session_id, seq = msg.seq))]
    async fn append_message(&self, msg: NewMessage) -> Result<(), Error> {
        let seq = seq_to_db(msg.seq)?;
        let now = timestamp::now();
        let db = &self.db;
        // The transaction writes first, so it takes what it needs at once:
        // Postgres serialises concurrent appends of one (session_id, seq) on
        // the key (the second waits for the first to commit, then does
        // nothing); SQLite takes the write lock (waiting up to the busy
        // timeout) instead of failing on upgrade.
        let mut tx = db.begin().await?;
        let inserted = db
            .sql(
                "INSERT INTO messages (session_id, seq, kind, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, seq) DO NOTHING",
            )
            .bind_id(msg.session_id.0)
            .bind(seq)
            .bind(msg.kind.as_str())
            .bind(Json(&msg.body))
            .bind_time(now)
            .execute(crate::sql::on(&mut tx))
            .await
            .map_err(|e| match e.violation() {
                Some(ErrorKind::ForeignKeyViolation) => {
                    Error::NotFound(format!("session {}", msg.session_id))
                }
                _ => e,
            })?;
        if inserted == 0 {
            return Ok(());
        }
        // The maximum on last_active_at too: replicas' clocks differ
        // slightly, and activity must not move backwards.
        db.dialect_sql(format!(
            "UPDATE sessions SET last_seq = {greatest}(last_seq, $2), \
             message_count = message_count + 1, \
             last_active_at = {greatest}(last_active_at, $3) WHERE session_id = $1",
            greatest = DB::GREATEST
        ))
        .bind_id(msg.session_id.0)
        .bind(seq)
        .bind_time(now)
        .execute(crate::sql::on(&mut tx))
        .await?;
        db.commit(tx).await
    }

    #[instrument(name = "store.set_total_cost", skip_all, fields(session.id = %id))]
    async fn set_total_cost(&self, id: SessionId, total_cost_usd: f64) -> Result<(), Error> {
        let update = self
            .db
            .sql("UPDATE sessions SET total_cost_usd = $2 WHERE session_id = $1")
            .bind_id(id.0)
            .bind(total_cost_usd);
        update_session(self, id, update).await
    }

    #[instrument(name = "store.set_title", skip_all, fields(session.id = %id))]
    async fn set_title(&self, id: SessionId, title: &str) -> Result<(), Error> {
        let update = self
            .db
            .sql("UPDATE sessions SET title = $2 WHERE session_id = $1")
            .bind_id(id.0)
            .bind(title);
        update_session(self, id, update).await
    }

    async fn messages(&self, id: SessionId) -> Result<(Vec<MessageRecord>, u64), Error> {
        let db = &self.db;
        // One statement, so the watermark and the messages come from one
        // snapshot even while appends commit.
        let rows = db
            .sql(
                "SELECT s.last_seq, m.seq, m.kind, m.body, m.created_at \
                 FROM sessions s LEFT JOIN messages m ON m.session_id = s.session_id \
                 WHERE s.session_id = $1 ORDER BY m.seq",
            )
            .bind_id(id.0)
            .fetch_all(db.pool())
            .await?;
        let Some(first) = rows.first() else {
            return Err(Error::NotFound(format!("session {id}")));
        };
        let last_seq = db.columns(first).count("last_seq")?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let row = db.columns(row);
            // The LEFT JOIN's single all-NULL row of a session without messages.
            if row.get::<Option<i64>>("seq")?.is_none() {
                continue;
            }
            let body: Json<serde_json::Value> = row.get("body")?;
            messages.push(MessageRecord {
                session_id: id,
                seq: row.count("seq")?,
                kind: row.get("kind")?,
                body: body.0,
                created_at: row.time("created_at")?,
            });
        }
        Ok((messages, last_seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_beyond_i64_is_rejected() {
        assert_eq!(seq_to_db(7).unwrap(), 7);
        assert!(matches!(seq_to_db(u64::MAX), Err(Error::InvalidInput(_))));
    }
}
