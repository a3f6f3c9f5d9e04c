//! Users: who may log in, with which role and monthly cap.

use crate::budgets::check_micros;
use crate::dialect::Dialect;
use crate::error::Error;
use crate::sql::{Columns, SqlStore, count_from_db};
use crate::timestamp;
use async_trait::async_trait;
use csp_domain::{Role, UserId};
use sqlx::error::ErrorKind;
use time::OffsetDateTime;
use tracing::instrument;

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

/// Usernames are unique and looked up ignoring case; both databases compare
/// this key so that "ignoring case" means the same on both.
fn username_key(username: &str) -> String {
    username.to_lowercase()
}

// Macros rather than consts so that `concat!` builds each statement as a
// `&'static str`, which sqlx accepts as SQL-safe and caches as prepared.
macro_rules! user_columns {
    () => {
        "user_id, username, password_hash, role, is_active, created_at, last_login_at, \
         monthly_cost_cap_micros"
    };
}

fn user_from_row<DB: Dialect>(row: Columns<'_, DB>) -> Result<UserRecord, Error> {
    let role: String = row.get("role")?;
    Ok(UserRecord {
        user_id: UserId(row.uuid("user_id")?),
        username: row.get("username")?,
        password_hash: row.get("password_hash")?,
        role: role.parse().map_err(Error::Corrupt)?,
        is_active: row.get("is_active")?,
        created_at: row.time("created_at")?,
        last_login_at: row.opt_time("last_login_at")?,
        monthly_cost_cap_micros: row.get("monthly_cost_cap_micros")?,
    })
}

#[async_trait]
impl<DB: Dialect> UserStore for SqlStore<DB> {
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
        let db = &self.db;
        db.sql(
            "INSERT INTO users (user_id, username, username_key, password_hash, role, is_active, \
             created_at, monthly_cost_cap_micros) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind_id(user.user_id.0)
        .bind(user.username.as_str())
        .bind(username_key(&user.username))
        .bind(user.password_hash.as_str())
        .bind(user.role.as_str())
        .bind(user.is_active)
        .bind_time(user.created_at)
        .bind(user.monthly_cost_cap_micros)
        .execute(db.pool())
        .await
        .map_err(|e| match e.violation() {
            Some(ErrorKind::UniqueViolation) => {
                Error::Conflict(format!("user '{}'", user.username))
            }
            _ => e,
        })?;
        Ok(user)
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username_key = $1"
        );
        let row = db
            .sql(sql)
            .bind(username_key(username))
            .fetch_optional(db.pool())
            .await?;
        row.map(|row| user_from_row(db.columns(&row))).transpose()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, Error> {
        let db = &self.db;
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE user_id = $1");
        let row = db.sql(sql).bind_id(id.0).fetch_optional(db.pool()).await?;
        row.map(|row| user_from_row(db.columns(&row))).transpose()
    }

    #[instrument(name = "store.record_login", skip_all, fields(user.id = %id))]
    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> Result<(), Error> {
        let db = &self.db;
        let updated = db
            .sql("UPDATE users SET last_login_at = $2 WHERE user_id = $1")
            .bind_id(id.0)
            .bind_time(at)
            .execute(db.pool())
            .await?;
        if updated == 0 {
            return Err(Error::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    async fn count_users(&self) -> Result<u64, Error> {
        let db = &self.db;
        let row = db
            .sql("SELECT count(*) AS n FROM users")
            .fetch_one(db.pool())
            .await?;
        count_from_db("count(*)", db.columns(&row).get("n")?)
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, username_key"
        );
        let rows = db.sql(sql).fetch_all(db.pool()).await?;
        rows.iter()
            .map(|row| user_from_row(db.columns(row)))
            .collect()
    }

    #[instrument(name = "store.update_user", skip_all, fields(user.id = %id))]
    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<UserRecord, Error> {
        if let Some(Some(cap)) = update.monthly_cost_cap_micros {
            check_micros("monthly cost cap", cap)?;
        }
        let db = &self.db;
        let sql = concat!(
            "UPDATE users SET role = COALESCE($2, role), is_active = COALESCE($3, is_active), \
             monthly_cost_cap_micros = CASE WHEN $4 THEN $5 ELSE monthly_cost_cap_micros END \
             WHERE user_id = $1 RETURNING ",
            user_columns!()
        );
        let row = db
            .sql(sql)
            .bind_id(id.0)
            .bind(update.role.map(|role| role.as_str()))
            .bind(update.is_active)
            .bind(update.monthly_cost_cap_micros.is_some())
            .bind(update.monthly_cost_cap_micros.flatten())
            .fetch_optional(db.pool())
            .await?;
        match row {
            Some(row) => user_from_row(db.columns(&row)),
            None => Err(Error::NotFound(format!("user {id}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_key_folds_unicode_case() {
        assert_eq!(username_key("ÄLICE"), username_key("älice"));
        assert_eq!(username_key("Bob"), "bob");
    }
}
