//! The embedded store of `csp dev`: one SQLite file (or memory), one process.

use crate::audit::{audit_hash, check_result_status};
use crate::budget::{admits, check_micros, check_month};
use crate::error::violation;
use crate::migrations::{self, migrator};
use crate::plugins;
use crate::secrets::{self, Owner, OwnerKind, Reseal, SecretStore, StoredSecret};
use crate::timestamp::{self, from_unix_ms, to_unix_ms};
use crate::{
    AUDIT_GENESIS_HASH, Admission, AuditQuery, AuditRecord, AuditStore, BudgetStore, Config, Error,
    MessageRecord, NewAuditEntry, NewMessage, NewSession, NewUser, RESUMING_STATUS, Reservation,
    SessionRecord, SessionStore, Settled, Spend, UserRecord, UserStore, UserUpdate, count_from_db,
    new_session_record, role_from_db, seq_to_db, username_key,
};
use crate::{PluginState, PluginStore, SecretChange};
use async_trait::async_trait;
use csp_domain::{SessionId, UserId};
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, SqliteConnection};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

// Macros rather than consts so that `concat!` builds each statement as a
// `&'static str`, which sqlx accepts as SQL-safe and caches as prepared.
macro_rules! user_columns {
    () => {
        "user_id, username, password_hash, role, is_active, created_at, last_login_at, \
         monthly_cost_cap_micros"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, audit_id, timestamp, user_id, session_id, tool_name, sanitized_input, \
         result_status, execution_duration_ms, cost_micros, prev_hash, hash"
    };
}
macro_rules! session_columns {
    () => {
        "session_id, user_id, status, created_at, last_active_at, \
         message_count, total_cost_usd, title, last_seq, \
         agent_session_id, resume_count, is_resumable, ended_reason"
    };
}

/// A writer waits this long for another connection's write lock before the
/// statement fails; writes are short, so only a stuck process reaches it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite adapter. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The file path, or `:memory:`, for errors.
    target: String,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file with
    /// [`Config::default`] and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with(path, &Config::default()).await
    }

    /// Opens the file in WAL mode (readers do not block the writer) with
    /// foreign keys enforced, and applies pending migrations. The parent
    /// directory must exist.
    #[instrument(name = "store.open", skip_all, fields(db.path = %path.display()), err)]
    pub async fn open_with(path: &Path, config: &Config) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode; only
            // an OS crash can lose the last transactions, fine for `csp dev`.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout);
        Self::start(pool, options, path.display().to_string()).await
    }

    /// A private database that lives as long as the store (and its clones).
    pub async fn in_memory() -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // Every connection to `:memory:` is a database of its own, so the pool
        // holds exactly one connection and never retires it.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        Self::start(pool, options, ":memory:".to_owned()).await
    }

    async fn start(
        pool: SqlitePoolOptions,
        options: SqliteConnectOptions,
        target: String,
    ) -> Result<Self, Error> {
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| Error::from_sqlx(&target, e))?;
        migrator(migrations::SQLITE)
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

    /// Runs `sql` as is, for tests that simulate what csp itself never does
    /// (tampering with the audit log). Not part of any store trait.
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<(), Error> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// A transaction that holds the database's write lock from its first
    /// statement: one that read first and wrote later could not upgrade while
    /// another connection writes (SQLITE_BUSY, which the busy timeout does not
    /// wait out), and the check-then-write of budgets and the audit chain
    /// needs its reads to stay true until it commits.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, Error> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.error(e))
    }

    async fn execute_on_session(
        &self,
        id: SessionId,
        query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<(), Error> {
        let done = query.execute(&self.pool).await.map_err(|e| self.error(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("session {id}")));
        }
        Ok(())
    }

    fn user_from_row(&self, row: &SqliteRow) -> Result<UserRecord, Error> {
        let get = |e| self.error(e);
        let role: String = row.try_get("role").map_err(get)?;
        let last_login_at: Option<i64> = row.try_get("last_login_at").map_err(get)?;
        Ok(UserRecord {
            user_id: parse_id(row.try_get("user_id").map_err(get)?)?,
            username: row.try_get("username").map_err(get)?,
            password_hash: row.try_get("password_hash").map_err(get)?,
            role: role_from_db(&role)?,
            is_active: row.try_get("is_active").map_err(get)?,
            created_at: from_unix_ms(row.try_get("created_at").map_err(get)?)?,
            last_login_at: last_login_at.map(from_unix_ms).transpose()?,
            monthly_cost_cap_micros: row.try_get("monthly_cost_cap_micros").map_err(get)?,
        })
    }

    fn audit_from_row(&self, row: &SqliteRow) -> Result<AuditRecord, Error> {
        let get = |e| self.error(e);
        let audit_id: String = row.try_get("audit_id").map_err(get)?;
        let user_id: Option<String> = row.try_get("user_id").map_err(get)?;
        let session_id: Option<String> = row.try_get("session_id").map_err(get)?;
        Ok(AuditRecord {
            seq: row.try_get("seq").map_err(get)?,
            entry: NewAuditEntry {
                audit_id: Uuid::parse_str(&audit_id).map_err(|e| {
                    Error::Corrupt(format!("audit_id {audit_id:?} is not a UUID: {e}"))
                })?,
                timestamp: from_unix_ms(row.try_get("timestamp").map_err(get)?)?,
                user_id: user_id.map(parse_id).transpose()?,
                session_id: session_id.map(parse_id).transpose()?,
                tool_name: row.try_get("tool_name").map_err(get)?,
                sanitized_input: row.try_get("sanitized_input").map_err(get)?,
                result_status: row.try_get("result_status").map_err(get)?,
                execution_duration_ms: row.try_get("execution_duration_ms").map_err(get)?,
                cost_micros: row.try_get("cost_micros").map_err(get)?,
            },
            prev_hash: row.try_get("prev_hash").map_err(get)?,
            hash: row.try_get("hash").map_err(get)?,
        })
    }

    fn session_from_row(&self, row: &SqliteRow) -> Result<SessionRecord, Error> {
        let get = |e| self.error(e);
        let agent_session_id: Option<String> = row.try_get("agent_session_id").map_err(get)?;
        Ok(SessionRecord {
            session_id: parse_id(row.try_get("session_id").map_err(get)?)?,
            user_id: parse_id(row.try_get("user_id").map_err(get)?)?,
            status: row.try_get("status").map_err(get)?,
            created_at: from_unix_ms(row.try_get("created_at").map_err(get)?)?,
            last_active_at: from_unix_ms(row.try_get("last_active_at").map_err(get)?)?,
            message_count: count_from_db(
                "message_count",
                row.try_get("message_count").map_err(get)?,
            )?,
            total_cost_usd: row.try_get("total_cost_usd").map_err(get)?,
            title: row.try_get("title").map_err(get)?,
            last_seq: count_from_db("last_seq", row.try_get("last_seq").map_err(get)?)?,
            agent_session_id: agent_session_id
                .map(|text| {
                    Uuid::parse_str(&text).map_err(|e| {
                        Error::Corrupt(format!("agent_session_id {text:?} is not a UUID: {e}"))
                    })
                })
                .transpose()?,
            resume_count: count_from_db("resume_count", row.try_get("resume_count").map_err(get)?)?,
            is_resumable: row.try_get("is_resumable").map_err(get)?,
            ended_reason: row.try_get("ended_reason").map_err(get)?,
        })
    }
}

fn parse_id<T: FromStr<Err = csp_domain::ParseIdError>>(text: String) -> Result<T, Error> {
    text.parse().map_err(|e| Error::Corrupt(format!("{e}")))
}

#[async_trait]
impl UserStore for SqliteStore {
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
            monthly_cost_cap_micros: new.monthly_cost_cap_micros,
        };
        if let Some(cap) = user.monthly_cost_cap_micros {
            check_micros("monthly cost cap", cap)?;
        }
        sqlx::query(
            "INSERT INTO users (user_id, username, username_key, password_hash, role, is_active, \
             created_at, monthly_cost_cap_micros) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.user_id.to_string())
        .bind(&user.username)
        .bind(username_key(&user.username))
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(user.is_active)
        .bind(to_unix_ms(user.created_at))
        .bind(user.monthly_cost_cap_micros)
        .execute(&self.pool)
        .await
        .map_err(|e| match violation(&e) {
            Some(ErrorKind::UniqueViolation) => {
                Error::Conflict(format!("user '{}'", user.username))
            }
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
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        row.map(|row| self.user_from_row(&row)).transpose()
    }

    #[instrument(name = "store.record_login", skip_all, fields(user.id = %id))]
    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> Result<(), Error> {
        let done = sqlx::query("UPDATE users SET last_login_at = $2 WHERE user_id = $1")
            .bind(id.to_string())
            .bind(to_unix_ms(at))
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

    async fn list_users(&self) -> Result<Vec<UserRecord>, Error> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, username_key"
        );
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(|row| self.user_from_row(row)).collect()
    }

    #[instrument(name = "store.update_user", skip_all, fields(user.id = %id))]
    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<UserRecord, Error> {
        if let Some(Some(cap)) = update.monthly_cost_cap_micros {
            check_micros("monthly cost cap", cap)?;
        }
        let sql = concat!(
            "UPDATE users SET role = COALESCE($2, role), is_active = COALESCE($3, is_active), \
             monthly_cost_cap_micros = CASE WHEN $4 THEN $5 ELSE monthly_cost_cap_micros END \
             WHERE user_id = $1 RETURNING ",
            user_columns!()
        );
        let row = sqlx::query(sql)
            .bind(id.to_string())
            .bind(update.role.map(|role| role.as_str()))
            .bind(update.is_active)
            .bind(update.monthly_cost_cap_micros.is_some())
            .bind(update.monthly_cost_cap_micros.flatten())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        match row {
            Some(row) => self.user_from_row(&row),
            None => Err(Error::NotFound(format!("user {id}"))),
        }
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    #[instrument(name = "store.create_session", skip_all, fields(session.id = %new.session_id))]
    async fn create_session(&self, new: NewSession) -> Result<SessionRecord, Error> {
        let now = timestamp::now();
        let session = new_session_record(new, now);
        sqlx::query(
            "INSERT INTO sessions (session_id, user_id, status, created_at, last_active_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(session.session_id.to_string())
        .bind(session.user_id.to_string())
        .bind(&session.status)
        .bind(to_unix_ms(now))
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
            .bind(id.to_string())
            .bind(status.to_owned());
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
        .bind(id.to_string())
        .bind(status.to_owned())
        .bind(is_resumable)
        .bind(ended_reason.map(str::to_owned));
        self.execute_on_session(id, query).await
    }

    #[instrument(name = "store.record_resume", skip_all, fields(session.id = %id))]
    async fn record_resume(&self, id: SessionId) -> Result<(), Error> {
        let query = sqlx::query(
            "UPDATE sessions SET resume_count = resume_count + 1, \
             last_active_at = MAX(last_active_at, $2), status = $3, ended_reason = NULL \
             WHERE session_id = $1",
        )
        .bind(id.to_string())
        .bind(to_unix_ms(timestamp::now()))
        .bind(RESUMING_STATUS);
        self.execute_on_session(id, query).await
    }

    #[instrument(name = "store.set_agent_session", skip_all, fields(session.id = %id, agent_session.id = %agent_session_id))]
    async fn set_agent_session(&self, id: SessionId, agent_session_id: Uuid) -> Result<(), Error> {
        let query = sqlx::query("UPDATE sessions SET agent_session_id = $2 WHERE session_id = $1")
            .bind(id.to_string())
            .bind(agent_session_id.hyphenated().to_string());
        self.execute_on_session(id, query).await
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, Error> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE session_id = $1"
        );
        let row = sqlx::query(sql)
            .bind(id.to_string())
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
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(|row| self.session_from_row(row)).collect()
    }

    async fn all_sessions(&self, limit: u32) -> Result<Vec<SessionRecord>, Error> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions ORDER BY last_active_at DESC, created_at DESC, session_id LIMIT $1"
        );
        let rows = sqlx::query(sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(|row| self.session_from_row(row)).collect()
    }

    #[instrument(name = "store.append_message", skip_all, fields(session.id = %msg.session_id, seq = msg.seq))]
    async fn append_message(&self, msg: NewMessage) -> Result<(), Error> {
        let seq = seq_to_db(msg.seq)?;
        let now = to_unix_ms(timestamp::now());
        let body = serde_json::to_string(&msg.body)
            .map_err(|e| Error::InvalidInput(format!("message body: {e}")))?;
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        // The transaction writes first, so it takes the write lock at once
        // (waiting up to the busy timeout) instead of failing on upgrade.
        let inserted = sqlx::query(
            "INSERT INTO messages (session_id, seq, kind, body, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, seq) DO NOTHING",
        )
        .bind(msg.session_id.to_string())
        .bind(seq)
        .bind(&msg.kind)
        .bind(body)
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
        sqlx::query(
            "UPDATE sessions SET last_seq = MAX(last_seq, $2), \
             message_count = message_count + 1, last_active_at = MAX(last_active_at, $3) \
             WHERE session_id = $1",
        )
        .bind(msg.session_id.to_string())
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
            .bind(id.to_string())
            .bind(total_cost_usd);
        self.execute_on_session(id, query).await
    }

    #[instrument(name = "store.set_title", skip_all, fields(session.id = %id))]
    async fn set_title(&self, id: SessionId, title: &str) -> Result<(), Error> {
        let query = sqlx::query("UPDATE sessions SET title = $2 WHERE session_id = $1")
            .bind(id.to_string())
            .bind(title.to_owned());
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
        .bind(id.to_string())
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
            let body: String = row.try_get("body").map_err(|e| self.error(e))?;
            let body = serde_json::from_str(&body)
                .map_err(|e| Error::Corrupt(format!("message {seq} body: {e}")))?;
            messages.push(MessageRecord {
                session_id: id,
                seq: count_from_db("seq", seq)?,
                kind: row.try_get("kind").map_err(|e| self.error(e))?,
                body,
                created_at: from_unix_ms(row.try_get("created_at").map_err(|e| self.error(e))?)?,
            });
        }
        Ok((messages, count_from_db("last_seq", last_seq)?))
    }
}

/// The user's spent and warned of `month`, if the row exists. Callers hold
/// the write lock, so nothing changes it before they commit.
async fn spend_row(
    conn: &mut SqliteConnection,
    user: UserId,
    month: &str,
) -> Result<Option<(i64, bool)>, sqlx::Error> {
    sqlx::query_as("SELECT spent_micros, warned FROM user_spend WHERE user_id = $1 AND month = $2")
        .bind(user.to_string())
        .bind(month.to_owned())
        .fetch_optional(conn)
        .await
}

/// What unexpired reservations of the user's `month` set aside.
async fn reserved_micros(
    conn: &mut SqliteConnection,
    user: UserId,
    month: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount_micros), 0) FROM budget_reservations \
         WHERE user_id = $1 AND month = $2 AND expires_at > $3",
    )
    .bind(user.to_string())
    .bind(month.to_owned())
    .bind(now)
    .fetch_one(conn)
    .await
}

#[async_trait]
impl BudgetStore for SqliteStore {
    #[instrument(name = "store.reserve", skip_all, fields(user.id = %r.user_id, month = %r.month, reservation.id = %r.id))]
    async fn reserve(&self, r: Reservation) -> Result<Admission, Error> {
        check_month(&r.month)?;
        check_micros("reservation amount", r.amount_micros)?;
        let now = to_unix_ms(timestamp::now());
        let expires_at = to_unix_ms(r.expires_at);
        let user = r.user_id.to_string();
        let mut tx = self.begin_write().await?;
        // Reservations refer to the month's row.
        sqlx::query(
            "INSERT INTO user_spend (user_id, month, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, month) DO NOTHING",
        )
        .bind(&user)
        .bind(&r.month)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(ErrorKind::ForeignKeyViolation) => Error::NotFound(format!("user {}", r.user_id)),
            _ => self.error(e),
        })?;
        let (spent_micros, warned) = spend_row(&mut tx, r.user_id, &r.month)
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(|| Error::Corrupt(format!("user_spend row of {} vanished", r.month)))?;
        sqlx::query(
            "DELETE FROM budget_reservations WHERE user_id = $1 AND month = $2 AND expires_at <= $3",
        )
        .bind(&user)
        .bind(&r.month)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let existing: Option<(String, String)> =
            sqlx::query_as("SELECT user_id, month FROM budget_reservations WHERE id = $1")
                .bind(r.id.hyphenated().to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
        let mut spend = Spend {
            spent_micros,
            reserved_micros: reserved_micros(&mut tx, r.user_id, &r.month, now)
                .await
                .map_err(|e| self.error(e))?,
            warned,
        };
        let admission = match existing {
            Some((owner, month)) if owner == user && month == r.month => Admission::Admitted(spend),
            Some(_) => {
                return Err(Error::InvalidInput(format!(
                    "reservation {} belongs to another user or month",
                    r.id
                )));
            }
            None if admits(&spend, r.cap_micros) => {
                sqlx::query(
                    "INSERT INTO budget_reservations (id, user_id, month, amount_micros, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(r.id.hyphenated().to_string())
                .bind(&user)
                .bind(&r.month)
                .bind(r.amount_micros)
                .bind(expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
                if expires_at > now {
                    spend.reserved_micros += r.amount_micros;
                }
                Admission::Admitted(spend)
            }
            None => Admission::Exceeded(spend),
        };
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(admission)
    }

    #[instrument(name = "store.settle", skip_all, fields(user.id = %user, month, reservation.id = %id))]
    async fn settle(
        &self,
        id: Uuid,
        user: UserId,
        month: &str,
        cost_micros: i64,
    ) -> Result<Settled, Error> {
        check_month(month)?;
        check_micros("cost", cost_micros)?;
        let now = to_unix_ms(timestamp::now());
        let mut tx = self.begin_write().await?;
        let before = match spend_row(&mut tx, user, month)
            .await
            .map_err(|e| self.error(e))?
        {
            Some((spent_micros, warned)) => Spend {
                spent_micros,
                reserved_micros: reserved_micros(&mut tx, user, month, now)
                    .await
                    .map_err(|e| self.error(e))?,
                warned,
            },
            None => Spend::default(),
        };
        let removed: Option<(String, String, i64, i64)> = sqlx::query_as(
            "DELETE FROM budget_reservations WHERE id = $1 \
             RETURNING user_id, month, amount_micros, expires_at",
        )
        .bind(id.hyphenated().to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let Some((owner, reserved_month, amount_micros, expires_at)) = removed else {
            tx.rollback().await.map_err(|e| self.error(e))?;
            return Ok(Settled {
                before,
                after: before,
                applied: false,
            });
        };
        if owner != user.to_string() || reserved_month != month {
            // Dropping the transaction rolls the delete back.
            return Err(Error::InvalidInput(format!(
                "reservation {id} belongs to another user or month"
            )));
        }
        sqlx::query(
            "UPDATE user_spend SET spent_micros = spent_micros + $3, updated_at = $4 \
             WHERE user_id = $1 AND month = $2",
        )
        .bind(user.to_string())
        .bind(month.to_owned())
        .bind(cost_micros)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        let after = Spend {
            spent_micros: before.spent_micros + cost_micros,
            reserved_micros: if expires_at > now {
                before.reserved_micros - amount_micros
            } else {
                before.reserved_micros
            },
            warned: before.warned,
        };
        Ok(Settled {
            before,
            after,
            applied: true,
        })
    }

    #[instrument(name = "store.mark_warned", skip_all, fields(user.id = %user, month))]
    async fn mark_warned(&self, user: UserId, month: &str) -> Result<bool, Error> {
        check_month(month)?;
        // One statement, and SQLite runs one writer at a time: only the call
        // that flipped the flag sees a row changed.
        let done = sqlx::query(
            "INSERT INTO user_spend (user_id, month, warned, updated_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (user_id, month) DO UPDATE SET warned = 1 WHERE NOT user_spend.warned",
        )
        .bind(user.to_string())
        .bind(month.to_owned())
        .bind(to_unix_ms(timestamp::now()))
        .execute(&self.pool)
        .await
        .map_err(|e| match violation(&e) {
            Some(ErrorKind::ForeignKeyViolation) => Error::NotFound(format!("user {user}")),
            _ => self.error(e),
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn spend(&self, user: UserId, month: &str) -> Result<Spend, Error> {
        check_month(month)?;
        // One statement, so spent and reserved come from one snapshot.
        let row: Option<(i64, bool, i64)> = sqlx::query_as(
            "SELECT s.spent_micros, s.warned, \
             COALESCE((SELECT SUM(r.amount_micros) FROM budget_reservations r \
                       WHERE r.user_id = s.user_id AND r.month = s.month AND r.expires_at > $3), 0) \
             FROM user_spend s WHERE s.user_id = $1 AND s.month = $2",
        )
        .bind(user.to_string())
        .bind(month.to_owned())
        .bind(to_unix_ms(timestamp::now()))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        Ok(row
            .map(|(spent_micros, warned, reserved_micros)| Spend {
                spent_micros,
                reserved_micros,
                warned,
            })
            .unwrap_or_default())
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    #[instrument(name = "store.append_audit", skip_all, fields(audit.id = %entry.audit_id, tool = %entry.tool_name))]
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<bool, Error> {
        check_result_status(&entry.result_status)?;
        let entry = NewAuditEntry {
            timestamp: timestamp::truncate(entry.timestamp),
            ..entry
        };
        let audit_id = entry.audit_id.hyphenated().to_string();
        // The write lock makes the existence check, the last hash and the
        // insert one step: appends take turns and the chain stays linear.
        let mut tx = self.begin_write().await?;
        let stored: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM audit_log WHERE audit_id = $1)")
                .bind(&audit_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
        if stored {
            tx.rollback().await.map_err(|e| self.error(e))?;
            return Ok(false);
        }
        let last: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
        let prev_hash = last.unwrap_or_else(|| AUDIT_GENESIS_HASH.to_owned());
        let hash = audit_hash(&prev_hash, &entry);
        sqlx::query(
            "INSERT INTO audit_log (audit_id, timestamp, user_id, session_id, tool_name, \
             sanitized_input, result_status, execution_duration_ms, cost_micros, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&audit_id)
        .bind(to_unix_ms(entry.timestamp))
        .bind(entry.user_id.map(|id| id.to_string()))
        .bind(entry.session_id.map(|id| id.to_string()))
        .bind(&entry.tool_name)
        .bind(&entry.sanitized_input)
        .bind(&entry.result_status)
        .bind(entry.execution_duration_ms)
        .bind(entry.cost_micros)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(true)
    }

    async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, Error> {
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE 1"
        ));
        if let Some(user) = q.user_id {
            query.push(" AND user_id = ").push_bind(user.to_string());
        }
        if let Some(start) = q.start {
            query
                .push(" AND timestamp >= ")
                .push_bind(to_unix_ms(start));
        }
        if let Some(end) = q.end {
            query.push(" AND timestamp < ").push_bind(to_unix_ms(end));
        }
        if let Some(before) = q.before_seq {
            query.push(" AND seq < ").push_bind(before);
        }
        query
            .push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(q.limit));
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(|row| self.audit_from_row(row)).collect()
    }

    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error> {
        let sql = concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        let rows = sqlx::query(sql)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(|row| self.audit_from_row(row)).collect()
    }
}

/// A plugin's state joined with its secrets (`'plugin'` is
/// `OwnerKind::Plugin`'s column value), in byte order (SQLite's
/// BINARY collation, as Postgres is asked for).
macro_rules! plugin_select {
    () => {
        "SELECT p.plugin_name, p.active, p.config, p.updated_by, p.updated_at, \
         s.secret_key, s.encrypted_value, s.encryption_key_version \
         FROM plugin_state p LEFT JOIN sealed_secrets s \
         ON s.owner_kind = 'plugin' AND s.owner_id = p.plugin_name"
    };
}
macro_rules! plugin_order {
    () => {
        " ORDER BY p.plugin_name, s.secret_key"
    };
}

impl SqliteStore {
    /// States of every plugin, or of `name` only, from one statement (one
    /// snapshot).
    async fn load_plugins<'c>(
        &self,
        executor: impl sqlx::SqliteExecutor<'c>,
        name: Option<&str>,
    ) -> Result<Vec<PluginState>, Error> {
        let rows = match name {
            Some(name) => {
                let sql = concat!(
                    plugin_select!(),
                    " WHERE p.plugin_name = $1",
                    plugin_order!()
                );
                sqlx::query(sql).bind(name).fetch_all(executor).await
            }
            None => {
                let sql = concat!(plugin_select!(), plugin_order!());
                sqlx::query(sql).fetch_all(executor).await
            }
        }
        .map_err(|e| self.error(e))?;
        let rows = rows
            .iter()
            .map(|row| self.joined_plugin_row(row))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(plugins::group(rows))
    }

    fn joined_plugin_row(&self, row: &SqliteRow) -> Result<plugins::JoinedRow, Error> {
        let get = |e| self.error(e);
        let plugin_name: String = row.try_get("plugin_name").map_err(get)?;
        let config: String = row.try_get("config").map_err(get)?;
        let config = serde_json::from_str(&config).map_err(|e| {
            Error::Corrupt(format!(
                "config of plugin '{plugin_name}' is not a JSON object: {e}"
            ))
        })?;
        let updated_by: Option<String> = row.try_get("updated_by").map_err(get)?;
        let key: Option<String> = row.try_get("secret_key").map_err(get)?;
        let secret = match key {
            Some(key) => Some(StoredSecret {
                key,
                encrypted_value: row.try_get("encrypted_value").map_err(get)?,
                encryption_key_version: row.try_get("encryption_key_version").map_err(get)?,
            }),
            None => None,
        };
        Ok(plugins::JoinedRow {
            plugin_name,
            active: row.try_get("active").map_err(get)?,
            config,
            updated_by: updated_by.map(parse_id).transpose()?,
            updated_at: from_unix_ms(row.try_get("updated_at").map_err(get)?)?,
            secret,
        })
    }

    /// The one state of `name`, read inside the transaction that wrote it.
    async fn written_plugin(
        &self,
        conn: &mut SqliteConnection,
        name: &str,
    ) -> Result<PluginState, Error> {
        self.load_plugins(conn, Some(name))
            .await?
            .pop()
            .ok_or_else(|| Error::Corrupt(format!("plugin_state row of '{name}' vanished")))
    }

    /// Stores one secret of `owner` inside the caller's transaction (the
    /// one statement every write of a secret goes through).
    async fn upsert_secret(
        &self,
        conn: &mut SqliteConnection,
        owner: &Owner,
        secret: &StoredSecret,
        now_ms: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO sealed_secrets (owner_kind, owner_id, secret_key, encrypted_value, \
             encryption_key_version, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (owner_kind, owner_id, secret_key) DO UPDATE SET \
             encrypted_value = excluded.encrypted_value, \
             encryption_key_version = excluded.encryption_key_version, \
             updated_at = excluded.updated_at",
        )
        .bind(owner.kind.as_str())
        .bind(&owner.id)
        .bind(&secret.key)
        .bind(&secret.encrypted_value)
        .bind(&secret.encryption_key_version)
        .bind(now_ms)
        .execute(conn)
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Removes one secret of `owner`; whether there was one.
    async fn remove_secret<'c>(
        &self,
        executor: impl sqlx::SqliteExecutor<'c>,
        owner: &Owner,
        key: &str,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "DELETE FROM sealed_secrets \
             WHERE owner_kind = $1 AND owner_id = $2 AND secret_key = $3",
        )
        .bind(owner.kind.as_str())
        .bind(&owner.id)
        .bind(key)
        .execute(executor)
        .await
        .map_err(|e| self.error(e))?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl PluginStore for SqliteStore {
    async fn plugin_states(&self) -> Result<Vec<PluginState>, Error> {
        self.load_plugins(&self.pool, None).await
    }

    async fn plugin_state(&self, name: &str) -> Result<Option<PluginState>, Error> {
        Ok(self.load_plugins(&self.pool, Some(name)).await?.pop())
    }

    #[instrument(name = "store.set_plugin_active", skip_all, fields(plugin = name, active))]
    async fn set_plugin_active(
        &self,
        name: &str,
        active: bool,
        by: Option<UserId>,
    ) -> Result<PluginState, Error> {
        plugins::check_key("plugin name", name)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO plugin_state (plugin_name, active, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (plugin_name) DO UPDATE SET \
             active = excluded.active, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(active)
        .bind(by.map(|id| id.to_string()))
        .bind(to_unix_ms(timestamp::now()))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let state = self.written_plugin(&mut tx, name).await?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(state)
    }

    #[instrument(name = "store.save_plugin_config", skip_all, fields(plugin = name, secret_changes = secrets.len()))]
    async fn save_plugin_config(
        &self,
        name: &str,
        config: serde_json::Map<String, serde_json::Value>,
        secrets: Vec<SecretChange>,
        by: Option<UserId>,
    ) -> Result<PluginState, Error> {
        let changes = plugins::prepare_changes(name, secrets)?;
        let config = serde_json::to_string(&config)
            .map_err(|e| Error::InvalidInput(format!("config of plugin '{name}': {e}")))?;
        let now = to_unix_ms(timestamp::now());
        // The write lock makes concurrent saves take turns.
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO plugin_state (plugin_name, config, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (plugin_name) DO UPDATE SET \
             config = excluded.config, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(config)
        .bind(by.map(|id| id.to_string()))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let owner = Owner::plugin(name);
        for change in &changes {
            match change {
                SecretChange::Set(secret) => {
                    self.upsert_secret(&mut tx, &owner, secret, now).await?;
                }
                SecretChange::Remove(key) => {
                    self.remove_secret(&mut *tx, &owner, key).await?;
                }
            }
        }
        let state = self.written_plugin(&mut tx, name).await?;
        // Dropping the transaction on error rolls every write back.
        plugins::check_no_secret_in_config(&state)?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(state)
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn secrets(&self, owner: &Owner) -> Result<Vec<StoredSecret>, Error> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT secret_key, encrypted_value, encryption_key_version FROM sealed_secrets \
             WHERE owner_kind = $1 AND owner_id = $2 ORDER BY secret_key",
        )
        .bind(owner.kind.as_str())
        .bind(&owner.id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error(e))?;
        Ok(rows
            .into_iter()
            .map(
                |(key, encrypted_value, encryption_key_version)| StoredSecret {
                    key,
                    encrypted_value,
                    encryption_key_version,
                },
            )
            .collect())
    }

    #[instrument(name = "store.put_secrets", skip_all, fields(owner.kind = %owner.kind, count = secrets.len()))]
    async fn put_secrets(&self, owner: &Owner, secrets: Vec<StoredSecret>) -> Result<(), Error> {
        let secrets = secrets::prepare(owner, secrets)?;
        let now = to_unix_ms(timestamp::now());
        let mut tx = self.begin_write().await?;
        for secret in &secrets {
            self.upsert_secret(&mut tx, owner, secret, now).await?;
        }
        tx.commit().await.map_err(|e| self.error(e))
    }

    #[instrument(name = "store.delete_secret", skip_all, fields(owner.kind = %owner.kind))]
    async fn delete_secret(&self, owner: &Owner, key: &str) -> Result<bool, Error> {
        self.remove_secret(&self.pool, owner, key).await
    }

    #[instrument(name = "store.reencrypt_secrets", skip_all, err)]
    async fn reencrypt_secrets(&self, f: &Reseal<'_>) -> Result<u64, Error> {
        // The write lock from the first statement: no write changes a secret
        // between reading it and rewriting it.
        let mut tx = self.begin_write().await?;
        let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT owner_kind, owner_id, secret_key, encrypted_value, encryption_key_version \
             FROM sealed_secrets ORDER BY owner_kind, owner_id, secret_key",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.error(e))?;
        let now = to_unix_ms(timestamp::now());
        let mut rewritten = 0;
        for (kind, id, key, encrypted_value, encryption_key_version) in rows {
            let owner = Owner::new(OwnerKind::from_db(&kind)?, id);
            let old = StoredSecret {
                key,
                encrypted_value,
                encryption_key_version,
            };
            let Some(new) = secrets::rewrite(&owner, &old, f)? else {
                continue;
            };
            self.upsert_secret(&mut tx, &owner, &new, now).await?;
            rewritten += 1;
        }
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(rewritten)
    }
}
