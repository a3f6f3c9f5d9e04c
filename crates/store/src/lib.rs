//! Durable records of csp: users, chat sessions and each session's message log,
//! each user's monthly spend, the audit log, plugins' state and config, the
//! sealed secrets of plugins and tenants, and ticket enhancement's tenants,
//! jobs and per-tenant context.
//!
//! Owns: one module per concern, each holding its trait, its records and
//! its one implementation: `users.rs` ([`UserStore`]), `sessions.rs`
//! ([`SessionStore`]), `budgets.rs` ([`BudgetStore`]: atomic reserve/settle
//! per user and month, micro-dollars), `audit.rs` ([`AuditStore`]:
//! append-only, the hash chain, [`audit_hash`], [`verify_audit_chain`]),
//! `plugins.rs` ([`PluginStore`]: activation, config, and its secrets
//! written with the config in one transaction) and `secrets.rs`
//! ([`SecretStore`]: sealed secrets by [`Owner`] and key, all-or-nothing
//! re-encryption of every owner's), `tenants.rs` ([`TenantStore`]: tenant
//! configs written with their secrets in one transaction, monthly spend,
//! the grants of tenants to users),
//! `enhancements.rs` ([`EnhancementStore`]: jobs idempotent per delivery,
//! attempts, final outcomes written once, the sweeper's unqueued jobs, the
//! history page and its keyset export, clearing the queue, retrying a
//! failed job, the workers' pause flag), `feedback.rs` ([`FeedbackStore`]:
//! technicians' votes on posted notes, the latest per job, counted per
//! tenant) and `context.rs`
//! ([`ContextStore`]: resolved tickets, knowledge-base articles and systems
//! by IP, each call scoped to one tenant, full-text search), `stats.rs`
//! ([`StatsStore`]: the dashboard's figures over the history),
//! `throughput.rs` ([`ThroughputStore`]: the jobs a worker ended per hour). Each
//! implementation is written once for
//! [`SqlStore`], generic over the database; `dialect.rs` is the seam
//! ([`Dialect`](dialect::Dialect): how ids and timestamps are stored, write
//! locking, `GREATEST`/`MAX`, byte-order sorting, entering a tenant's scope,
//! full-text statements), `sql.rs` the shared
//! plumbing (statements, typed row reads, transactions). `postgres.rs`
//! ([`PgStore`], distributed mode) and `sqlite.rs` ([`SqliteStore`],
//! `csp dev`) connect and implement the seam; the schema is in
//! `migrations/<database>/` (applied when a store connects). A new concern
//! is a new module with its trait, its one implementation and its cases in
//! the shared suite (`tests/it/suite.rs`), which runs on both databases.
//! Behind the `test-support` feature, [`test_support`] gives other crates'
//! tests a fresh store on either database.
//!
//! Tenant isolation: on Postgres every tenant table (each table with a
//! `tenant_id` but `sessions`, whose rows are users' and only name the
//! tenant a session is bound to) has forced row-level security
//! (migrations 0006 and 0008); tenant-scoped work runs as role `csp_tenant` with
//! `csp.tenant_id` set for the transaction (`SET LOCAL`), full-text search
//! through security-definer functions that answer only for the scoped
//! tenant (migration 0006). On SQLite, and on Postgres as well, every
//! statement filters by tenant explicitly.
//!
//! Must never: hash or check passwords (it stores the hash it is given), decide
//! who may see a session (callers authorise, the store only filters by owner),
//! decide what a turn may cost (callers pass the cap; the store only makes the
//! check-and-reserve atomic), redact audit input (callers do), see a
//! secret in the clear (callers seal and open them), print a database URL
//! with its password, write a statement twice, once per database (what
//! differs goes through the dialect), run a [`ContextStore`] statement
//! outside its tenant's scope or without its tenant filter, read one
//! tenant's context for another, let user text become full-text query
//! syntax, or restart or rewrite a final (completed or failed) job — but
//! for an operator's retry, which puts a failed one back to pending
//! ([`EnhancementStore::retry_enhancement`]).

mod audit;
mod budgets;
mod context;
mod dialect;
mod enhancements;
mod error;
mod feedback;
mod migrations;
mod plugins;
mod postgres;
mod search;
mod secrets;
mod sessions;
mod sql;
mod sqlite;
mod stats;
mod store;
mod tenants;
#[cfg(feature = "test-support")]
pub mod test_support;
mod throughput;
mod timestamp;
mod users;

pub use audit::{
    AUDIT_GENESIS_HASH, AUDIT_RESULT_STATUSES, AuditQuery, AuditRecord, AuditStore, BrokenLink,
    NewAuditEntry, Verification, audit_hash, verify_audit_chain,
};
pub use budgets::{Admission, BudgetStore, Reservation, Settled, Spend};
pub use context::{ContextStore, HistoryRecord, HistoryTicket, KbArticleRecord, SystemRecord};
pub use enhancements::{
    CLEARED, Claim, EnhancementCursor, EnhancementQuery, EnhancementRecord, EnhancementStore,
    NewEnhancement, Outcome, Recorded,
};
pub use error::Error;
pub use feedback::{FeedbackStore, TenantFeedback};
pub use plugins::{PluginState, PluginStore, SecretChange};
pub use postgres::PgStore;
pub use secrets::{Owner, OwnerKind, Reseal, SecretStore, StoredSecret};
pub use sessions::{MessageRecord, NewMessage, NewSession, SessionRecord, SessionStore};
pub use sql::{Config, SqlStore};
pub use sqlite::SqliteStore;
pub use stats::{
    EnhancementStats, LATENCY_BOUNDS_MS, LatencyHistogram, MAX_STEPS, StatsStore, StepFigures,
};
pub use store::Store;
pub use tenants::{NewTenant, TenantGrant, TenantRecord, TenantStore, TenantUpdate};
pub use throughput::{MAX_THROUGHPUT_STEPS, ThroughputStep, ThroughputStore};
pub use users::{NewUser, UserRecord, UserStore, UserUpdate};
