//! The audit log: append-only, hash-chained entries of tool invocations and
//! admin actions; how a row's hash is computed, and walking the chain to
//! find the first row that does not hold.

use crate::dialect::Dialect;
use crate::error::Error;
use crate::sql::{Columns, SqlStore, on};
use crate::timestamp;
use async_trait::async_trait;
use csp_domain::{SessionId, UserId};
use sha2::{Digest, Sha256};
use sqlx::QueryBuilder;
use std::fmt::Write as _;
use time::OffsetDateTime;
use tracing::instrument;

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
    /// Only rows whose `tool_name` (the action) is one of these, exactly;
    /// empty: every action.
    pub tool_names: Vec<String>,
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

/// Rows read per [`AuditStore::audit_chain`] call while verifying.
const VERIFY_PAGE: u32 = 1000;

/// Names the encoding inside the hashed text, so that a later change of the
/// field list cannot produce the same text for different rows.
const HASH_VERSION: &str = "csp-audit-v1";

/// sha256 (lowercase hex) over `prev_hash` and every field of `entry`,
/// encoded as one JSON array in a fixed order: strings as JSON strings (so no
/// separator inside a field can shift the boundaries), ids hyphenated,
/// the timestamp as unix milliseconds (what the stores keep), absent values
/// as `null`, integers as integers.
pub fn audit_hash(prev_hash: &str, entry: &NewAuditEntry) -> String {
    let canonical = serde_json::json!([
        HASH_VERSION,
        prev_hash,
        entry.audit_id.hyphenated().to_string(),
        timestamp::to_unix_ms(entry.timestamp),
        entry.user_id.map(|id| id.0.hyphenated().to_string()),
        entry.session_id.map(|id| id.0.hyphenated().to_string()),
        entry.tool_name,
        entry.sanitized_input,
        entry.result_status,
        entry.execution_duration_ms,
        entry.cost_micros,
    ]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
    }
    hex
}

/// Walks the whole chain in pages of 1000 and reports the first row whose
/// `prev_hash` is not the previous row's hash or whose hash does not match
/// its contents (the reason says which).
pub async fn verify_audit_chain(store: &dyn AuditStore) -> Result<Verification, Error> {
    let mut expected_prev = AUDIT_GENESIS_HASH.to_owned();
    let mut after_seq = 0;
    let mut checked = 0;
    loop {
        let page = store.audit_chain(after_seq, VERIFY_PAGE).await?;
        for record in &page {
            checked += 1;
            let reason = if record.prev_hash != expected_prev {
                Some(format!(
                    "prev_hash {} is not the previous row's hash {expected_prev}",
                    record.prev_hash
                ))
            } else if audit_hash(&record.prev_hash, &record.entry) != record.hash {
                Some("hash does not match the row's contents".to_owned())
            } else {
                None
            };
            if let Some(reason) = reason {
                return Ok(Verification {
                    checked,
                    first_broken: Some(BrokenLink {
                        seq: record.seq,
                        audit_id: record.entry.audit_id,
                        reason,
                    }),
                });
            }
            // The stored hash, not a recomputed one: the next row must link
            // to what is written here.
            expected_prev.clone_from(&record.hash);
            after_seq = record.seq;
        }
        if page.len() < VERIFY_PAGE as usize {
            return Ok(Verification {
                checked,
                first_broken: None,
            });
        }
    }
}

/// The schema would refuse any other status; saying so here names the value.
pub(crate) fn check_result_status(status: &str) -> Result<(), Error> {
    if AUDIT_RESULT_STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "audit result_status {status:?} is not one of {AUDIT_RESULT_STATUSES:?}"
        )))
    }
}

macro_rules! audit_columns {
    () => {
        "seq, audit_id, timestamp, user_id, session_id, tool_name, sanitized_input, \
         result_status, execution_duration_ms, cost_micros, prev_hash, hash"
    };
}

fn audit_from_row<DB: Dialect>(row: Columns<'_, DB>) -> Result<AuditRecord, Error> {
    Ok(AuditRecord {
        seq: row.get("seq")?,
        entry: NewAuditEntry {
            audit_id: row.uuid("audit_id")?,
            timestamp: row.time("timestamp")?,
            user_id: row.opt_uuid("user_id")?.map(UserId),
            session_id: row.opt_uuid("session_id")?.map(SessionId),
            tool_name: row.get("tool_name")?,
            sanitized_input: row.get("sanitized_input")?,
            result_status: row.get("result_status")?,
            execution_duration_ms: row.get("execution_duration_ms")?,
            cost_micros: row.get("cost_micros")?,
        },
        prev_hash: row.get("prev_hash")?,
        hash: row.get("hash")?,
    })
}

#[async_trait]
impl<DB: Dialect> AuditStore for SqlStore<DB> {
    #[instrument(name = "store.append_audit", skip_all, fields(audit.id = %entry.audit_id, tool = %entry.tool_name))]
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<bool, Error> {
        check_result_status(&entry.result_status)?;
        let entry = NewAuditEntry {
            timestamp: timestamp::truncate(entry.timestamp),
            ..entry
        };
        let db = &self.db;
        let mut tx = db.begin_write().await?;
        // Held until commit: appends of every replica take turns, so each
        // reads the true last hash and seq follows commit order.
        DB::lock_audit_chain(&mut tx)
            .await
            .map_err(|e| db.error(e))?;
        // Checked rather than ON CONFLICT DO NOTHING, which would use up a
        // seq for the duplicate.
        let stored = db
            .sql("SELECT EXISTS (SELECT 1 FROM audit_log WHERE audit_id = $1) AS stored")
            .bind_id(entry.audit_id)
            .fetch_one(on(&mut tx))
            .await?;
        if db.columns(&stored).get::<bool>("stored")? {
            db.rollback(tx).await?;
            return Ok(false);
        }
        let last = db
            .sql("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(on(&mut tx))
            .await?;
        let prev_hash = match &last {
            Some(row) => db.columns(row).get("hash")?,
            None => AUDIT_GENESIS_HASH.to_owned(),
        };
        let hash = audit_hash(&prev_hash, &entry);
        db.sql(
            "INSERT INTO audit_log (audit_id, timestamp, user_id, session_id, tool_name, \
             sanitized_input, result_status, execution_duration_ms, cost_micros, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind_id(entry.audit_id)
        .bind_time(entry.timestamp)
        .bind_opt_id(entry.user_id.map(|id| id.0))
        .bind_opt_id(entry.session_id.map(|id| id.0))
        .bind(entry.tool_name.as_str())
        .bind(entry.sanitized_input.as_str())
        .bind(entry.result_status.as_str())
        .bind(entry.execution_duration_ms)
        .bind(entry.cost_micros)
        .bind(prev_hash.as_str())
        .bind(hash.as_str())
        .execute(on(&mut tx))
        .await?;
        db.commit(tx).await?;
        Ok(true)
    }

    async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, Error> {
        let db = &self.db;
        let mut query = QueryBuilder::<DB>::new(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE TRUE"
        ));
        if let Some(user) = q.user_id {
            query.push(" AND user_id = ");
            DB::push_bind(&mut query, DB::id(user.0));
        }
        if let Some(start) = q.start {
            query.push(" AND timestamp >= ");
            DB::push_bind(&mut query, DB::time(start));
        }
        if let Some(end) = q.end {
            query.push(" AND timestamp < ");
            DB::push_bind(&mut query, DB::time(end));
        }
        if let Some(before) = q.before_seq {
            query.push(" AND seq < ");
            DB::push_bind(&mut query, before);
        }
        if !q.tool_names.is_empty() {
            // One placeholder per name (both databases read it alike); the
            // index on (tool_name, seq) of migration 0011 keeps a rare
            // action's rows cheap to find in a long log.
            query.push(" AND tool_name IN (");
            for (i, name) in q.tool_names.iter().enumerate() {
                if i > 0 {
                    query.push(", ");
                }
                DB::push_bind(&mut query, name.clone());
            }
            query.push(")");
        }
        query.push(" ORDER BY seq DESC LIMIT ");
        DB::push_bind(&mut query, i64::from(q.limit));
        let rows = db.fetch_built(query).await?;
        rows.iter()
            .map(|row| audit_from_row(db.columns(row)))
            .collect()
    }

    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error> {
        let db = &self.db;
        let sql = concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        let rows = db
            .sql(sql)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(db.pool())
            .await?;
        rows.iter()
            .map(|row| audit_from_row(db.columns(row)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry() -> NewAuditEntry {
        NewAuditEntry {
            audit_id: uuid::Uuid::from_u128(1),
            timestamp: datetime!(2026-11-05 10:11:12.345 UTC),
            user_id: Some(UserId(uuid::Uuid::from_u128(2))),
            session_id: Some(SessionId(uuid::Uuid::from_u128(3))),
            tool_name: "Bash".to_owned(),
            sanitized_input: r#"{"command":"ls"}"#.to_owned(),
            result_status: "success".to_owned(),
            execution_duration_ms: Some(12),
            cost_micros: Some(3400),
        }
    }

    #[test]
    fn hash_is_sha256_of_the_documented_encoding() {
        // Computed outside Rust (printf '%s' '<this text>' | sha256sum):
        // stored chains stay verifiable only while this encoding holds.
        let text = concat!(
            r#"["csp-audit-v1","0000000000000000000000000000000000000000000000000000000000000000","#,
            r#""00000000-0000-0000-0000-000000000001",1793873472345,"#,
            r#""00000000-0000-0000-0000-000000000002","00000000-0000-0000-0000-000000000003","#,
            r#""Bash","{\"command\":\"ls\"}","success",12,3400]"#
        );
        let expected = "f50fc4faa329a1916eaab297c3f842ab36e1fa8bdde51185904b86f1e4d31903";
        let digest = Sha256::digest(text.as_bytes());
        let text_hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text_hash, expected, "the text above is what sha256sum saw");
        assert_eq!(audit_hash(AUDIT_GENESIS_HASH, &entry()), expected);
    }

    #[test]
    fn every_field_and_the_previous_hash_count() {
        let base = audit_hash(AUDIT_GENESIS_HASH, &entry());
        let changed: Vec<(&str, NewAuditEntry)> = vec![
            (
                "audit_id",
                NewAuditEntry {
                    audit_id: uuid::Uuid::from_u128(9),
                    ..entry()
                },
            ),
            (
                "timestamp",
                NewAuditEntry {
                    timestamp: datetime!(2026-11-05 10:11:12.346 UTC),
                    ..entry()
                },
            ),
            (
                "user_id",
                NewAuditEntry {
                    user_id: None,
                    ..entry()
                },
            ),
            (
                "session_id",
                NewAuditEntry {
                    session_id: None,
                    ..entry()
                },
            ),
            (
                "tool_name",
                NewAuditEntry {
                    tool_name: "Read".to_owned(),
                    ..entry()
                },
            ),
            (
                "sanitized_input",
                NewAuditEntry {
                    sanitized_input: "{}".to_owned(),
                    ..entry()
                },
            ),
            (
                "result_status",
                NewAuditEntry {
                    result_status: "denied".to_owned(),
                    ..entry()
                },
            ),
            (
                "execution_duration_ms",
                NewAuditEntry {
                    execution_duration_ms: None,
                    ..entry()
                },
            ),
            (
                "cost_micros",
                NewAuditEntry {
                    cost_micros: Some(3401),
                    ..entry()
                },
            ),
        ];
        for (field, changed) in changed {
            assert_ne!(audit_hash(AUDIT_GENESIS_HASH, &changed), base, "{field}");
        }
        assert_ne!(audit_hash(&"1".repeat(64), &entry()), base);
    }

    #[test]
    fn field_boundaries_cannot_shift() {
        // The same characters split differently between two fields.
        let a = NewAuditEntry {
            tool_name: "Bash".to_owned(),
            sanitized_input: "x".to_owned(),
            ..entry()
        };
        let b = NewAuditEntry {
            tool_name: "Bas".to_owned(),
            sanitized_input: "hx".to_owned(),
            ..entry()
        };
        let c = NewAuditEntry {
            tool_name: r#"Bash",""#.to_owned(),
            sanitized_input: String::new(),
            ..entry()
        };
        let hashes = [a, b, c].map(|e| audit_hash(AUDIT_GENESIS_HASH, &e));
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[0], hashes[2]);
    }

    #[test]
    fn sub_millisecond_time_does_not_change_the_hash() {
        // Stores keep milliseconds; a row read back must hash as appended.
        let precise = NewAuditEntry {
            timestamp: datetime!(2026-11-05 12:11:12.345_678 +02:00),
            ..entry()
        };
        assert_eq!(
            audit_hash(AUDIT_GENESIS_HASH, &precise),
            audit_hash(AUDIT_GENESIS_HASH, &entry())
        );
    }

    /// A chain in memory whose seqs leave gaps, as a database's may.
    struct Chain(std::sync::Mutex<Vec<AuditRecord>>);

    impl Chain {
        fn of(rows: u64) -> Self {
            let chain = Chain(std::sync::Mutex::new(Vec::new()));
            let mut prev_hash = AUDIT_GENESIS_HASH.to_owned();
            for i in 0..rows {
                let entry = NewAuditEntry {
                    audit_id: uuid::Uuid::from_u128(u128::from(i)),
                    sanitized_input: format!("row {i}"),
                    ..entry()
                };
                let hash = audit_hash(&prev_hash, &entry);
                chain.0.lock().unwrap().push(AuditRecord {
                    seq: 3 * i as i64 + 1,
                    entry,
                    prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                    hash,
                });
            }
            chain
        }

        fn edit(&self, index: usize, edit: impl FnOnce(&mut AuditRecord)) -> AuditRecord {
            let mut rows = self.0.lock().unwrap();
            edit(&mut rows[index]);
            rows[index].clone()
        }
    }

    #[async_trait::async_trait]
    impl AuditStore for Chain {
        async fn append_audit(&self, _: NewAuditEntry) -> Result<bool, Error> {
            unreachable!("verification only reads")
        }

        async fn audit_page(&self, _: &AuditQuery) -> Result<Vec<AuditRecord>, Error> {
            unreachable!("verification only reads the chain in order")
        }

        async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error> {
            let rows = self.0.lock().unwrap();
            Ok(rows
                .iter()
                .filter(|r| r.seq > after_seq)
                .take(limit as usize)
                .cloned()
                .collect())
        }
    }

    #[tokio::test]
    async fn verification_walks_every_page() {
        let chain = Chain::of(2500);
        assert_eq!(
            verify_audit_chain(&chain).await.unwrap(),
            Verification {
                checked: 2500,
                first_broken: None
            }
        );
        // On the third page.
        let edited = chain.edit(2100, |r| r.entry.cost_micros = Some(0));
        let verification = verify_audit_chain(&chain).await.unwrap();
        assert_eq!(verification.checked, 2101);
        let broken = verification.first_broken.unwrap();
        assert_eq!(
            (broken.seq, broken.audit_id),
            (edited.seq, edited.entry.audit_id)
        );
        assert!(broken.reason.contains("contents"), "{}", broken.reason);
    }

    #[tokio::test]
    async fn links_are_checked_across_pages() {
        // The first row of the second page links to a row that is not the
        // last of the first page (one removed, say).
        let chain = Chain::of(1500);
        let edited = chain.edit(1000, |r| r.prev_hash = "f".repeat(64));
        let verification = verify_audit_chain(&chain).await.unwrap();
        assert_eq!(verification.checked, 1001);
        let broken = verification.first_broken.unwrap();
        assert_eq!(broken.seq, edited.seq);
        assert!(broken.reason.contains("prev_hash"), "{}", broken.reason);
    }

    #[tokio::test]
    async fn the_first_row_must_start_from_the_genesis_hash() {
        let chain = Chain::of(3);
        chain.0.lock().unwrap().remove(0);
        let verification = verify_audit_chain(&chain).await.unwrap();
        assert_eq!(verification.checked, 1);
        assert_eq!(verification.first_broken.unwrap().seq, 4);
    }

    #[test]
    fn result_status_is_one_of_three() {
        for ok in AUDIT_RESULT_STATUSES {
            assert!(check_result_status(ok).is_ok());
        }
        assert!(matches!(
            check_result_status("ok"),
            Err(Error::InvalidInput(_))
        ));
    }
}
