//! Each user's monthly spend: turns reserve money before they run and
//! settle it after, atomically per user and month, in micro-dollars.

use crate::dialect::Dialect;
use crate::error::Error;
use crate::sql::{SqlStore, on};
use crate::timestamp;
use async_trait::async_trait;
use csp_domain::UserId;
use sqlx::Transaction;
use sqlx::error::ErrorKind;
use time::OffsetDateTime;
use tracing::instrument;

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

/// A budget month is "YYYY-MM"; the schema checks the same, but a typo is
/// reported here as the caller's mistake rather than as a constraint failure.
pub(crate) fn check_month(month: &str) -> Result<(), Error> {
    let bytes = month.as_bytes();
    let well_formed = bytes.len() == 7
        && bytes[4] == b'-'
        && bytes[..4].iter().chain(&bytes[5..]).all(u8::is_ascii_digit)
        && matches!(month[5..].parse::<u8>(), Ok(1..=12));
    if well_formed {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "budget month {month:?} is not YYYY-MM"
        )))
    }
}

pub(crate) fn check_micros(what: &str, micros: i64) -> Result<(), Error> {
    if micros < 0 {
        return Err(Error::InvalidInput(format!(
            "{what} is negative: {micros} micro-dollars"
        )));
    }
    Ok(())
}

/// The admission rule: a turn may start while the month's spend plus what
/// turns in flight set aside is below the cap. Saturating, so that absurd
/// values refuse instead of overflowing.
pub(crate) fn admits(spend: &Spend, cap_micros: i64) -> bool {
    spend.spent_micros.saturating_add(spend.reserved_micros) < cap_micros
}

/// The user's spent and warned of `month`, if the row exists, and what its
/// unexpired reservations set aside, read inside `tx` (begun with
/// `begin_write`). On Postgres the row is locked until the transaction ends
/// (`FOR UPDATE`), in a statement of its own: under READ COMMITTED a
/// statement that waited for the lock still reads other tables as of its
/// start, so whatever is read under the lock must be read by the statements
/// after this one. On SQLite, `begin_write`'s lock keeps everything as read.
async fn locked_spend<DB: Dialect>(
    store: &SqlStore<DB>,
    tx: &mut Transaction<'static, DB>,
    user: UserId,
    month: &str,
    now: OffsetDateTime,
) -> Result<Option<Spend>, Error> {
    let db = &store.db;
    let row = db
        .dialect_sql(format!(
            "SELECT spent_micros, warned FROM user_spend WHERE user_id = $1 AND month = $2{}",
            DB::FOR_UPDATE
        ))
        .bind_id(user.0)
        .bind(month)
        .fetch_optional(on(tx))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let row = db.columns(&row);
    let (spent_micros, warned) = (row.get("spent_micros")?, row.get("warned")?);
    let reserved = db
        .sql(
            "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) AS reserved \
             FROM budget_reservations WHERE user_id = $1 AND month = $2 AND expires_at > $3",
        )
        .bind_id(user.0)
        .bind(month)
        .bind_time(now)
        .fetch_one(on(tx))
        .await?;
    Ok(Some(Spend {
        spent_micros,
        reserved_micros: db.columns(&reserved).get("reserved")?,
        warned,
    }))
}

fn other_owner(id: uuid::Uuid) -> Error {
    Error::InvalidInput(format!("reservation {id} belongs to another user or month"))
}

#[async_trait]
impl<DB: Dialect> BudgetStore for SqlStore<DB> {
    #[instrument(name = "store.reserve", skip_all, fields(user.id = %r.user_id, month = %r.month, reservation.id = %r.id))]
    async fn reserve(&self, r: Reservation) -> Result<Admission, Error> {
        check_month(&r.month)?;
        check_micros("reservation amount", r.amount_micros)?;
        let now = timestamp::now();
        let expires_at = timestamp::truncate(r.expires_at);
        let db = &self.db;
        let mut tx = db.begin_write().await?;
        // The month's row exists from now on: reservations refer to it, and
        // there is a row to lock even for the first reservation of the month.
        db.sql(
            "INSERT INTO user_spend (user_id, month, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, month) DO NOTHING",
        )
        .bind_id(r.user_id.0)
        .bind(r.month.as_str())
        .bind_time(now)
        .execute(on(&mut tx))
        .await
        .map_err(|e| match e.violation() {
            Some(ErrorKind::ForeignKeyViolation) => Error::NotFound(format!("user {}", r.user_id)),
            _ => e,
        })?;
        let mut spend = locked_spend(self, &mut tx, r.user_id, &r.month, now)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("user_spend row of {} vanished", r.month)))?;
        // Expired reservations do not count (the sum above leaves them out)
        // and go now.
        db.sql(
            "DELETE FROM budget_reservations WHERE user_id = $1 AND month = $2 AND expires_at <= $3",
        )
        .bind_id(r.user_id.0)
        .bind(r.month.as_str())
        .bind_time(now)
        .execute(on(&mut tx))
        .await?;
        let existing = db
            .sql("SELECT user_id, month FROM budget_reservations WHERE id = $1")
            .bind_id(r.id)
            .fetch_optional(on(&mut tx))
            .await?;
        let existing = match &existing {
            Some(row) => {
                let row = db.columns(row);
                Some((row.uuid("user_id")?, row.get::<String>("month")?))
            }
            None => None,
        };
        let admission = match existing {
            Some((user, month)) if user == r.user_id.0 && month == r.month => {
                Admission::Admitted(spend)
            }
            Some(_) => return Err(other_owner(r.id)),
            None if admits(&spend, r.cap_micros) => {
                db.sql(
                    "INSERT INTO budget_reservations (id, user_id, month, amount_micros, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind_id(r.id)
                .bind_id(r.user_id.0)
                .bind(r.month.as_str())
                .bind(r.amount_micros)
                .bind_time(expires_at)
                .execute(on(&mut tx))
                .await?;
                if expires_at > now {
                    spend.reserved_micros += r.amount_micros;
                }
                Admission::Admitted(spend)
            }
            None => Admission::Exceeded(spend),
        };
        db.commit(tx).await?;
        Ok(admission)
    }

    #[instrument(name = "store.settle", skip_all, fields(user.id = %user, month, reservation.id = %id))]
    async fn settle(
        &self,
        id: uuid::Uuid,
        user: UserId,
        month: &str,
        cost_micros: i64,
    ) -> Result<Settled, Error> {
        check_month(month)?;
        check_micros("cost", cost_micros)?;
        let now = timestamp::now();
        let db = &self.db;
        let mut tx = db.begin_write().await?;
        let before = locked_spend(self, &mut tx, user, month, now)
            .await?
            .unwrap_or_default();
        let removed = db
            .sql(
                "DELETE FROM budget_reservations WHERE id = $1 \
                 RETURNING user_id, month, amount_micros, expires_at",
            )
            .bind_id(id)
            .fetch_optional(on(&mut tx))
            .await?;
        let Some(removed) = removed else {
            db.rollback(tx).await?;
            return Ok(Settled {
                before,
                after: before,
                applied: false,
            });
        };
        let removed = db.columns(&removed);
        if removed.uuid("user_id")? != user.0 || removed.get::<String>("month")? != month {
            // Dropping the transaction rolls the delete back.
            return Err(other_owner(id));
        }
        let amount_micros: i64 = removed.get("amount_micros")?;
        let expires_at = removed.time("expires_at")?;
        db.sql(
            "UPDATE user_spend SET spent_micros = spent_micros + $3, updated_at = $4 \
             WHERE user_id = $1 AND month = $2",
        )
        .bind_id(user.0)
        .bind(month)
        .bind(cost_micros)
        .bind_time(now)
        .execute(on(&mut tx))
        .await?;
        db.commit(tx).await?;
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
        let db = &self.db;
        // One statement: of concurrent callers, only the one whose insert or
        // update flipped the flag sees a row affected (Postgres locks the
        // row; SQLite runs one writer at a time).
        let rows = db
            .sql(
                "INSERT INTO user_spend (user_id, month, warned, updated_at) \
                 VALUES ($1, $2, TRUE, $3) ON CONFLICT (user_id, month) \
                 DO UPDATE SET warned = TRUE WHERE NOT user_spend.warned",
            )
            .bind_id(user.0)
            .bind(month)
            .bind_time(timestamp::now())
            .execute(db.pool())
            .await
            .map_err(|e| match e.violation() {
                Some(ErrorKind::ForeignKeyViolation) => Error::NotFound(format!("user {user}")),
                _ => e,
            })?;
        Ok(rows == 1)
    }

    async fn spend(&self, user: UserId, month: &str) -> Result<Spend, Error> {
        check_month(month)?;
        let db = &self.db;
        // One statement, so spent and reserved come from one snapshot.
        let row = db
            .sql(
                "SELECT s.spent_micros, s.warned, \
                 CAST(COALESCE((SELECT SUM(r.amount_micros) FROM budget_reservations r \
                       WHERE r.user_id = s.user_id AND r.month = s.month AND r.expires_at > $3), \
                      0) AS BIGINT) AS reserved_micros \
                 FROM user_spend s WHERE s.user_id = $1 AND s.month = $2",
            )
            .bind_id(user.0)
            .bind(month)
            .bind_time(timestamp::now())
            .fetch_optional(db.pool())
            .await?;
        let Some(row) = row else {
            return Ok(Spend::default());
        };
        let row = db.columns(&row);
        Ok(Spend {
            spent_micros: row.get("spent_micros")?,
            reserved_micros: row.get("reserved_micros")?,
            warned: row.get("warned")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_yyyy_mm() {
        for ok in ["2026-11", "1999-01", "2026-12"] {
            assert!(check_month(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-11-01",
            "",
            "２０２６-11",
            "2026-+1",
        ] {
            assert!(
                matches!(check_month(bad), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn admission_is_strictly_below_the_cap() {
        let spend = |spent, reserved| Spend {
            spent_micros: spent,
            reserved_micros: reserved,
            warned: false,
        };
        assert!(admits(&spend(4, 5), 10));
        assert!(!admits(&spend(5, 5), 10));
        assert!(!admits(&spend(0, 0), 0));
        assert!(!admits(&spend(i64::MAX, i64::MAX), i64::MAX));
    }

    #[test]
    fn negative_money_is_invalid() {
        assert!(check_micros("cost", 0).is_ok());
        assert!(matches!(
            check_micros("cost", -1),
            Err(Error::InvalidInput(_))
        ));
    }
}
