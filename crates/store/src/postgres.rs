//! The distributed-mode store: one Postgres database shared by every replica.

use crate::error::violation;
use crate::migrations::{self, migrator};
use crate::{
    Config, Error, MessageRecord, NewMessage, NewSession, NewUser, RESUMING_STATUS, SessionRecord,
    SessionStore, UserRecord, UserStore, count_from_db, new_session_record, role_from_db,
    seq_to_db, timestamp, username_key,
};
use async_trait::async_trait;
use csp_domain::{SessionId, UserId};
use csp_redact::url as redact_url;
use sqlx::error::ErrorKind;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, Row};
use std::time::Duration;
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

// Macros rather than consts so that `concat!` builds each statement as a
// `&'static str`, which sqlx accepts as SQL-safe and caches as prepared.
macro_rules! user_columns {
    () => {
        "user_id, username, password_hash, role, is_active, created_at, last_login_at"
    };
}
macro_rules! session_columns {
    () => {
        "session_id, user_id, status, created_at, last_active_at, \
         message_count, total_cost_usd, title, last_seq, \
         agent_session_id, resume_count, is_resumable, ended_reason"
    };
}

/// Postgres adapter. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The URL without its password, for errors.
    target: String,
}

impl PgStore {
    /// Connects with [`Config::default`] and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, &Config::default()).await
    }

    /// Connects, waiting up to `config.acquire_timeout` for the server to
    /// accept (so replicas may start before the database), then applies
    /// pending migrations. Concurrent replicas migrate one at a time: sqlx
    /// holds an advisory lock while migrating.
    #[instrument(name = "store.connect", skip_all, fields(db.url = %redact_url(url)), err)]
    pub async fn connect_with(url: &str, config: &Config) -> Result<Self, Error> {
        let target = redact_url(url);
        let options: PgConnectOptions = url.parse().map_err(|source| Error::InvalidUrl {
            url: target.clone(),
            source,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options.clone())
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            Err(error) => {
                let error = root_cause(&options, config.acquire_timeout, error).await;
                return Err(Error::from_sqlx(&target, error));
            }
        };
        migrator(migrations::POSTGRES)
            .run(&pool)
            .await
            .map_err(|source| Error::Migrate {
                target: target.clone(),
                source,
            })?;
        Ok(Self { pool, target })
    }

    /// Closes the pool, waiting for checked-out connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn error(&self, error: sqlx::Error) -> Error {
        Error::from_sqlx(&self.target, error)
    }

    async fn execute_on_session(
        &self,
        id: SessionId,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(), Error> {
        let done = query.execute(&self.pool).await.map_err(|e| self.error(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("session {id}")));
        }
        Ok(())
    }
}

/// When the server refuses connections the pool retries until its deadline
/// and then reports only "timed out"; one direct attempt recovers the reason
/// (refused, unknown host, authentication failed) for the error message.
async fn root_cause(
    options: &PgConnectOptions,
    timeout: Duration,
    error: sqlx::Error,
) -> sqlx::Error {
    if !matches!(error, sqlx::Error::PoolTimedOut) {
        return error;
    }
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Err(cause)) => cause,
        Ok(Ok(_)) | Err(_) => error,
    }
}

#[async_trait]
impl UserStore for PgStore {
    #[instrument(name = "store.create_user", skip_all)]
    async fn create_user(&self, new: NewUser) -> Result<UserRecord, Error> {
        let user = UserRecord {
            user_id: UserId::new(),
            username: new.username,
            password_hash: new.password_hash,
            role: new.role,
            is_active: true,
            created_at: timestamp::now(),
            last_login_at: None,
        };
        sqlx::query(
            "INSERT INTO users (user_id, username, username_key, password_hash, role, is_active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.user_id.0)
        .bind(&user.username)
        .bind(username_key(&user.username))
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(user.is_active)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match violation(&e) {
            Some(ErrorKind::UniqueViolation) => Error::Conflict(format!("user '{}'", user.username)),
            _ => self.error(e),
        })?;
        Ok(user)
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username_key = $1"
        );
        let row = sqlx::query(sql)
            .bind(username_key(username))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        row.map(|row| self.user_from_row(&row)).transpose()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, Error> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE user_id = $1");
        let row = sqlx::query(sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        row.map(|row| self.user_from_row(&row)).transpose()
    }

    #[instrument(name = "store.record_login", skip_all, fields(user.id = %id))]
    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> Result<(), Error> {
        let done = sqlx::query("UPDATE users SET last_login_at = $2 WHERE user_id = $1")
            .bind(id.0)
            .bind(timestamp::truncate(at))
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    async fn count_users(&self) -> Result<u64, Error> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        count_from_db("count(*)", count)
    }
}

#[async_trait]
impl SessionStore for PgStore {
    #[instrument(name = "store.create_session", skip_all, fields(session.id = %new.session_id))]
    async fn create_session(&self, new: NewSession) -> Result<SessionRecord, Error> {
        let now = timestamp::now();
        let session = new_session_record(new, now);
        sqlx::query(
            "INSERT INTO sessions (session_id, user_id, status, created_at, last_active_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(session.session_id.0)
        .bind(session.user_id.0)
        .bind(&session.status)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| match violation(&e) {
            Some(ErrorKind::UniqueViolation) => {
                Error::Conflict(format!("session {}", session.session_id))
            }
            Some(ErrorKind::ForeignKeyViolation) => {
                Error::NotFound(format!("user {}", session.user_id))
            }
            _ => self.error(e),
        })?;
        Ok(session)
    }

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    #[instrument(name = "store.set_session_status", skip_all, fields(session.id = %id, status))]
    async fn set_session_status(&self, id: SessionId, status: &str) -> Result<(), Error> {
        let query = sqlx::query("UPDATE sessions SET status = $2 WHERE session_id = $1")
            .bind(id.0)
            .bind(status);
        self.execute_on_session(id, query).await
    }

    #[instrument(name = "store.set_session_state", skip_all, fields(session.id = %id, status, is_resumable))]
    async fn set_session_state(
        &self,
        id: SessionId,
        status: &str,
        is_resumable: bool,
        ended_reason: Option<&str>,
    ) -> Result<(), Error> {
        let query = sqlx::query(
            "UPDATE sessions SET status = $2, is_resumable = $3, ended_reason = $4 \
             WHERE session_id = $1",
        )
        .bind(id.0)
        .bind(status)
        .bind(is_resumable)
        .bind(ended_reason);
        self.execute_on_session(id, query).await
    }

    #[instrument(name = "store.record_resume", skip_all, fields(session.id = %id))]
    async fn record_resume(&self, id: SessionId) -> Result<(), Error> {
        // GREATEST as in append_message: activity never moves backwards.
        let query = sqlx::query(
            "UPDATE sessions SET resume_count = resume_count + 1, \
             last_active_at = GREATEST(last_active_at, $2), status = $3, ended_reason = NULL \
             WHERE session_id = $1",
        )
        .bind(id.0)
        .bind(timestamp::now())
        .bind(RESUMING_STATUS);
        self.execute_on_session(id, query).await
    }

    #[instrument(name = "store.set_agent_session", skip_all, fields(session.id = %id, agent_session.id = %agent_session_id))]
    async fn set_agent_session(&self, id: SessionId, agent_session_id: Uuid) -> Result<(), Error> {
        let query = sqlx::query("UPDATE sessions SET agent_session_id = $2 WHERE session_id = $1")
            .bind(id.0)
            .bind(agent_session_id);
        self.execute_on_session(id, query).await
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, Error> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE session_id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        row.map(|row| self.session_from_row(&row)).transpose()
    }

    async fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, Error> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = $1 \
             ORDER BY last_active_at DESC, created_at DESC, session_id"
        );
        let rows = sqlx::query(sql)
            .bind(user.0)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(|row| self.session_from_row(row)).collect()
    }

    #[instrument(name = "store.append_message", skip_all, fields(session.id = %msg.session_id, seq = msg.seq))]
    async fn append_message(&self, msg: NewMessage) -> Result<(), Error> {
        let seq = seq_to_db(msg.seq)?;
        let now = timestamp::now();
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        // Concurrent appends of one (session_id, seq) serialise on the key:
        // the second waits for the first to commit, then does nothing.
        let inserted = sqlx::query(
            "INSERT INTO messages (session_id, seq, kind, body, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, seq) DO NOTHING",
        )
        .bind(msg.session_id.0)
        .bind(seq)
        .bind(&msg.kind)
        .bind(Json(&msg.body))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(ErrorKind::ForeignKeyViolation) => {
                Error::NotFound(format!("session {}", msg.session_id))
            }
            _ => self.error(e),
        })?;
        if inserted.rows_affected() == 0 {
            return Ok(());
        }
        // GREATEST on last_active_at too: replicas' clocks differ slightly,
        // and activity must not move backwards.
        sqlx::query(
            "UPDATE sessions SET last_seq = GREATEST(last_seq, $2), \
             message_count = message_count + 1, last_active_at = GREATEST(last_active_at, $3) \
             WHERE session_id = $1",
        )
        .bind(msg.session_id.0)
        .bind(seq)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))
    }

    #[instrument(name = "store.set_total_cost", skip_all, fields(session.id = %id))]
    async fn set_total_cost(&self, id: SessionId, total_cost_usd: f64) -> Result<(), Error> {
        let query = sqlx::query("UPDATE sessions SET total_cost_usd = $2 WHERE session_id = $1")
            .bind(id.0)
            .bind(total_cost_usd);
        self.execute_on_session(id, query).await
    }

    #[instrument(name = "store.set_title", skip_all, fields(session.id = %id))]
    async fn set_title(&self, id: SessionId, title: &str) -> Result<(), Error> {
        let query = sqlx::query("UPDATE sessions SET title = $2 WHERE session_id = $1")
            .bind(id.0)
            .bind(title);
        self.execute_on_session(id, query).await
    }

    async fn messages(&self, id: SessionId) -> Result<(Vec<MessageRecord>, u64), Error> {
        // One statement, so the watermark and the messages come from one
        // snapshot even while appends commit.
        let rows = sqlx::query(
            "SELECT s.last_seq, m.seq, m.kind, m.body, m.created_at \
             FROM sessions s LEFT JOIN messages m ON m.session_id = s.session_id \
             WHERE s.session_id = $1 ORDER BY m.seq",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        let Some(first) = rows.first() else {
            return Err(Error::NotFound(format!("session {id}")));
        };
        let last_seq: i64 = first.try_get("last_seq").map_err(|e| self.error(e))?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: Option<i64> = row.try_get("seq").map_err(|e| self.error(e))?;
            // The LEFT JOIN's single all-NULL row of a session without messages.
            let Some(seq) = seq else { continue };
            let body: Json<serde_json::Value> = row.try_get("body").map_err(|e| self.error(e))?;
            messages.push(MessageRecord {
                session_id: id,
                seq: count_from_db("seq", seq)?,
                kind: row.try_get("kind").map_err(|e| self.error(e))?,
                body: body.0,
                created_at: row.try_get("created_at").map_err(|e| self.error(e))?,
            });
        }
        Ok((messages, count_from_db("last_seq", last_seq)?))
    }
}

impl PgStore {
    fn user_from_row(&self, row: &PgRow) -> Result<UserRecord, Error> {
        let get = |e| self.error(e);
        let role: String = row.try_get("role").map_err(get)?;
        Ok(UserRecord {
            user_id: UserId(row.try_get::<Uuid, _>("user_id").map_err(get)?),
            username: row.try_get("username").map_err(get)?,
            password_hash: row.try_get("password_hash").map_err(get)?,
            role: role_from_db(&role)?,
            is_active: row.try_get("is_active").map_err(get)?,
            created_at: row.try_get("created_at").map_err(get)?,
            last_login_at: row.try_get("last_login_at").map_err(get)?,
        })
    }

    fn session_from_row(&self, row: &PgRow) -> Result<SessionRecord, Error> {
        let get = |e| self.error(e);
        Ok(SessionRecord {
            session_id: SessionId(row.try_get::<Uuid, _>("session_id").map_err(get)?),
            user_id: UserId(row.try_get::<Uuid, _>("user_id").map_err(get)?),
            status: row.try_get("status").map_err(get)?,
            created_at: row.try_get("created_at").map_err(get)?,
            last_active_at: row.try_get("last_active_at").map_err(get)?,
            message_count: count_from_db(
                "message_count",
                row.try_get("message_count").map_err(get)?,
            )?,
            total_cost_usd: row.try_get("total_cost_usd").map_err(get)?,
            title: row.try_get("title").map_err(get)?,
            last_seq: count_from_db("last_seq", row.try_get("last_seq").map_err(get)?)?,
            agent_session_id: row.try_get("agent_session_id").map_err(get)?,
            resume_count: count_from_db("resume_count", row.try_get("resume_count").map_err(get)?)?,
            is_resumable: row.try_get("is_resumable").map_err(get)?,
            ended_reason: row.try_get("ended_reason").map_err(get)?,
        })
    }
}
