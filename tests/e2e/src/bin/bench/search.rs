//! `csp-bench search`: similar-ticket search at 10k and 100k resolved
//! tickets per tenant, 10 tenants, through `csp_store` on Postgres (the
//! store's `similar_tickets`: row-level security scope, the word-frequency
//! lookup that plans the query from the text's rare words, and the SECURITY
//! DEFINER function) and SQLite (FTS5), against two bench-local queries on
//! the same Postgres data, each running the query the store planned: as
//! the platform owner (no RLS, explicit tenant filter), the floor (the
//! owner with no tenant filter either, issue 17's peer) and as a plain
//! `WHERE search @@ q` under `SET ROLE csp_tenant`, the case where RLS keeps
//! `@@` off the GIN index.
//! The store is used as a library; nothing of it is changed.

use super::text::{Rng, Vocabulary};
use crate::{Samples, Table, ms, progress};
use anyhow::{Context, Result};
use clap::Args;
use csp_domain::{HistorySource, TenantId};
use csp_store::{ContextStore, HistoryTicket, NewTenant, PgStore, SqliteStore, TenantStore};
use sqlx::Row;
use std::time::Instant;

#[derive(Args, Clone)]
pub(crate) struct SearchArgs {
    /// Tenants, each with the same number of tickets.
    #[arg(long, default_value_t = 10)]
    tenants: usize,
    /// Tickets per tenant at each measuring point, ascending.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Timed searches per variant and size (after 20 unmeasured).
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Timed searches of the slow variant (plain `@@` under RLS).
    #[arg(long, default_value_t = 60)]
    slow_queries: usize,
    /// Which databases: postgres, sqlite.
    #[arg(long, value_delimiter = ',', default_value = "postgres,sqlite")]
    backends: Vec<String>,
}

/// Top 5, as the worker asks.
const LIMIT: u32 = 5;
const LIMIT_I64: i64 = 5;

fn header() -> Vec<&'static str> {
    vec![
        "backend / query",
        "tickets/tenant",
        "searches",
        "p50",
        "p90",
        "p99",
        "max",
        "mean rows matched",
        "GIN index used",
    ]
}

pub(crate) async fn bench_search(args: &SearchArgs) -> Table {
    let mut table = Table::new(
        format!(
            "search: similar tickets (top {LIMIT}), {} tenants, ms per search",
            args.tenants
        ),
        header(),
    );
    for backend in &args.backends {
        let result = match backend.as_str() {
            "postgres" => postgres(args, &mut table).await,
            "sqlite" => sqlite(args, &mut table).await,
            other => Err(anyhow::anyhow!("unknown backend {other}")),
        };
        if let Err(e) = result {
            progress(format!("search/{backend} failed: {e:#}"));
            let mut row = vec![backend.clone(), format!("FAILED: {e:#}")];
            row.resize(table.header.len(), String::new());
            table.rows.push(row);
            table.failures += 1;
        }
    }
    table
}

fn tenant_ids(n: usize) -> Vec<TenantId> {
    (0..n)
        .map(|i| TenantId::parse(&format!("bench-t{i:02}")).expect("slug"))
        .collect()
}

fn new_tenant(id: &TenantId) -> NewTenant {
    NewTenant {
        tenant_id: id.clone(),
        name: format!("Bench {id}"),
        tool_type: "servicedesk_plus".into(),
        settings: serde_json::json!({"servicedesk_url": "https://sdp.bench.example"}),
        preferences: serde_json::json!({}),
        monthly_budget_micros: None,
        dedicated_queue: false,
        secrets: Vec::new(),
    }
}

/// Query texts and the tenant each one is for.
fn queries(
    vocab: &Vocabulary,
    tenants: &[TenantId],
    n: usize,
    seed: u64,
    rare: bool,
) -> Vec<(TenantId, String)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let t = tenants[rng.below(tenants.len())].clone();
            let q = if rare {
                vocab.rare_query(&mut rng)
            } else {
                vocab.query(&mut rng)
            };
            (t, q)
        })
        .collect()
}

/// The two kinds of search text: a new ticket's whole text (what the
/// worker sends; its common words match most of the history) and a few
/// rare words (selective).
const KINDS: [(&str, bool); 2] = [("ticket text", false), ("2-3 rare words", true)];

fn row(name: &str, size: usize, s: &Samples, matched: Option<f64>, gin: &str) -> Vec<String> {
    progress(format!(
        "search: {name} at {size}: p50 {} p99 {} ms ({} searches)",
        ms(s.pct(50.0)),
        ms(s.pct(99.0)),
        s.0.len()
    ));
    vec![
        name.to_owned(),
        size.to_string(),
        s.0.len().to_string(),
        ms(s.pct(50.0)),
        ms(s.pct(90.0)),
        ms(s.pct(99.0)),
        ms(s.max()),
        matched.map_or("-".into(), |m| format!("{m:.0}")),
        gin.to_owned(),
    ]
}

// -------------------------------------------------------------- postgres

async fn postgres(args: &SearchArgs, table: &mut Table) -> Result<()> {
    let db = csp_e2e::ScratchDatabase::create("csp_bench_search").await?;
    let result = postgres_run(args, table, db.url()).await;
    db.drop_now().await;
    result
}

async fn postgres_run(args: &SearchArgs, table: &mut Table, url: &str) -> Result<()> {
    let store = PgStore::connect(url).await.context("PgStore::connect")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await?;
    let who: (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&pool)
    .await?;
    progress(format!(
        "search/postgres: connected as {} (bypasses RLS: {})",
        who.0, who.1
    ));
    let tenants = tenant_ids(args.tenants);
    for t in &tenants {
        store.create_tenant(new_tenant(t)).await?;
    }
    let vocab = Vocabulary::new();
    let mut rng = Rng::new(14);
    let mut have = 0;
    for &size in &args.sizes {
        let began = Instant::now();
        for t in &tenants {
            let mut n = have;
            while n < size {
                let batch = (size - n).min(2000);
                let (mut ids, mut ds, mut rs, mut ages) = (vec![], vec![], vec![], vec![]);
                for i in n..n + batch {
                    let (d, r) = vocab.ticket(&mut rng);
                    ids.push(format!("{}", 100_000 + i));
                    ds.push(d);
                    rs.push(r);
                    ages.push(rng.below(90 * 86_400) as i64);
                }
                // Bench-local bulk insert (the store writes a row per
                // statement, which at a million rows only measures round
                // trips); the same columns, generated tsvector and index.
                sqlx::query(
                    "INSERT INTO ticket_history (tenant_id, ticket_id, description, resolution, \
                     resolved_date, tags, source, ingested_at) \
                     SELECT $1, t.id, t.d, t.r, now() - t.age * interval '1 second', '[]'::jsonb, \
                     'bulk_import', now() \
                     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[]) AS t(id, d, r, age)",
                )
                .bind(t.as_str())
                .bind(&ids)
                .bind(&ds)
                .bind(&rs)
                .bind(&ages)
                .execute(&pool)
                .await?;
                n += batch;
            }
            progress(format!("search/postgres: {t} has {size} tickets"));
        }
        have = size;
        // A steady state, as autovacuum would leave it: the GIN pending
        // list merged and the planner's statistics current.
        sqlx::raw_sql("VACUUM ANALYZE ticket_history")
            .execute(&pool)
            .await?;
        progress(format!(
            "search/postgres: {} tickets per tenant loaded in {:.0} s",
            size,
            began.elapsed().as_secs_f64()
        ));

        for (kind, rare) in KINDS {
            let qs = queries(&vocab, &tenants, args.queries + 20, size as u64, rare);
            let label = |what: &str| format!("{what} [{kind}]");
            // The query the store plans for each text (its rare words), run
            // as is by the two bench-local variants below.
            let mut planned = Vec::with_capacity(qs.len());
            for (t, q) in &qs {
                planned.push(
                    store
                        .similar_tickets_query(t, q)
                        .await?
                        .context("a query text without words")?,
                );
            }
            progress(format!(
                "search/postgres: e.g. {:?} -> {}",
                qs[0].1, planned[0]
            ));

            // 1. The store: tenant scope (SET LOCAL ROLE csp_tenant) and the
            //    SECURITY DEFINER function, one transaction per search.
            let mut lat = Vec::new();
            for (i, (t, q)) in qs.iter().enumerate() {
                let start = Instant::now();
                let found = store.similar_tickets(t, q, LIMIT).await?;
                if i >= 20 {
                    lat.push(start.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::ensure!(!found.is_empty(), "no similar ticket found for {q:?}");
            }
            table.rows.push(row(
                &label("postgres: store (RLS scope + SECURITY DEFINER function)"),
                size,
                &Samples::new(lat),
                None,
                "yes (function runs as owner)",
            ));

            // 2. The same query as the platform owner: no RLS, explicit filter.
            let owner_sql = "SELECT h.ticket_id, h.description, h.resolution, h.resolved_date, h.tags \
             FROM ticket_history h, to_tsquery('english', $2) q \
             WHERE h.tenant_id = $1 AND h.search @@ q \
             ORDER BY ts_rank(h.search, q) DESC, h.ticket_id LIMIT $3";
            let count_sql = "SELECT count(*) FROM ticket_history h, to_tsquery('english', $2) q \
             WHERE h.tenant_id = $1 AND h.search @@ q";
            let lat = owner_searches(&pool, owner_sql, &qs, &planned).await?;
            let mut matched = 0.0;
            for ((t, _), tsq) in qs.iter().zip(&planned).take(20) {
                let n: i64 = sqlx::query(count_sql)
                    .bind(t.as_str())
                    .bind(tsq)
                    .fetch_one(&pool)
                    .await?
                    .get(0);
                matched += n as f64 / 20.0;
            }
            let (t0, _) = &qs[0];
            let gin = uses_gin(&pool, t0, &planned[0], false).await?;
            table.rows.push(row(
                &label("postgres: owner, no RLS (same query, explicit tenant filter)"),
                size,
                &Samples::new(lat),
                Some(matched),
                if gin { "yes" } else { "no" },
            ));

            // 2b. The floor: the same query with no RLS and no tenant
            //     filter at all, over every tenant's rows (the tenant is
            //     bound and unused, so the statement keeps its shape).
            let floor_sql = "SELECT h.ticket_id, h.description, h.resolution, h.resolved_date, h.tags \
             FROM ticket_history h, to_tsquery('english', $2) q \
             WHERE $1::text IS NOT NULL AND h.search @@ q \
             ORDER BY ts_rank(h.search, q) DESC, h.ticket_id LIMIT $3";
            let lat = owner_searches(&pool, floor_sql, &qs, &planned).await?;
            table.rows.push(row(
                &label("postgres: floor, owner, no RLS and no tenant filter (same query)"),
                size,
                &Samples::new(lat),
                None,
                "-",
            ));

            // 3. Plain `WHERE search @@ q` under RLS: SET ROLE csp_tenant.
            let mut lat = Vec::new();
            for (i, ((t, _), tsq)) in qs
                .iter()
                .zip(&planned)
                .take(args.slow_queries + 5)
                .enumerate()
            {
                let start = Instant::now();
                let mut tx = pool.begin().await?;
                sqlx::query(
                "SELECT set_config('role', 'csp_tenant', true), set_config('csp.tenant_id', $1, true)",
            )
            .bind(t.as_str())
            .execute(&mut *tx)
            .await?;
                let rows = sqlx::query(owner_sql)
                    .bind(t.as_str())
                    .bind(tsq)
                    .bind(LIMIT_I64)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                if i >= 5 {
                    lat.push(start.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::ensure!(!rows.is_empty(), "RLS query found nothing");
            }
            let gin = uses_gin(&pool, t0, &planned[0], true).await?;
            table.rows.push(row(
                &label("postgres: plain SELECT … WHERE search @@ q under SET ROLE csp_tenant"),
                size,
                &Samples::new(lat),
                None,
                if gin { "yes" } else { "no" },
            ));
        }
    }
    Ok(())
}

/// Runs `sql` (`$1` tenant, `$2` tsquery, `$3` limit) for every planned
/// query as the platform's login; the latencies after 20 unmeasured, ms.
async fn owner_searches(
    pool: &sqlx::PgPool,
    sql: &'static str,
    qs: &[(TenantId, String)],
    planned: &[String],
) -> Result<Vec<f64>> {
    let mut lat = Vec::new();
    for (i, ((t, _), tsq)) in qs.iter().zip(planned).enumerate() {
        let start = Instant::now();
        let rows = sqlx::query(sql)
            .bind(t.as_str())
            .bind(tsq)
            .bind(LIMIT_I64)
            .fetch_all(pool)
            .await?;
        if i >= 20 {
            lat.push(start.elapsed().as_secs_f64() * 1e3);
        }
        anyhow::ensure!(!rows.is_empty(), "owner query found nothing");
    }
    Ok(lat)
}

/// Whether the plan of the search reads the GIN index (as the owner, or
/// under the tenant role).
async fn uses_gin(
    pool: &sqlx::PgPool,
    tenant: &TenantId,
    tsq: &str,
    as_tenant: bool,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    if as_tenant {
        sqlx::query(
            "SELECT set_config('role', 'csp_tenant', true), set_config('csp.tenant_id', $1, true)",
        )
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
    }
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT h.ticket_id FROM ticket_history h, to_tsquery('english', $2) q \
         WHERE h.tenant_id = $1 AND h.search @@ q ORDER BY ts_rank(h.search, q) DESC, h.ticket_id LIMIT 5",
    )
    .bind(tenant.as_str())
    .bind(tsq)
    .fetch_all(&mut *tx)
    .await?;
    tx.rollback().await?;
    let plan = plan.join("\n");
    progress(format!(
        "search/postgres: plan ({}):\n{plan}",
        if as_tenant { "csp_tenant" } else { "owner" }
    ));
    Ok(plan.contains("ticket_history_tenant_search"))
}

// ---------------------------------------------------------------- sqlite

async fn sqlite(args: &SearchArgs, table: &mut Table) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("csp.db")).await?;
    let tenants = tenant_ids(args.tenants);
    for t in &tenants {
        store.create_tenant(new_tenant(t)).await?;
    }
    let vocab = Vocabulary::new();
    let mut rng = Rng::new(14);
    let mut have = 0;
    let now = time::OffsetDateTime::now_utc();
    for &size in &args.sizes {
        let began = Instant::now();
        for t in &tenants {
            let mut n = have;
            while n < size {
                let batch = (size - n).min(5000);
                let tickets: Vec<HistoryTicket> = (n..n + batch)
                    .map(|i| {
                        let (description, resolution) = vocab.ticket(&mut rng);
                        HistoryTicket {
                            ticket_id: format!("{}", 100_000 + i),
                            description,
                            resolution,
                            resolved_date: now
                                - time::Duration::seconds(rng.below(90 * 86_400) as i64),
                            tags: Vec::new(),
                        }
                    })
                    .collect();
                store
                    .upsert_ticket_history(t, &tickets, HistorySource::BulkImport, now)
                    .await?;
                n += batch;
            }
        }
        have = size;
        progress(format!(
            "search/sqlite: {} tickets per tenant loaded in {:.0} s",
            size,
            began.elapsed().as_secs_f64()
        ));
        for (kind, rare) in KINDS {
            let qs = queries(&vocab, &tenants, args.queries + 20, size as u64, rare);
            let mut lat = Vec::new();
            for (i, (t, q)) in qs.iter().enumerate() {
                let start = Instant::now();
                let found = store.similar_tickets(t, q, LIMIT).await?;
                if i >= 20 {
                    lat.push(start.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::ensure!(!found.is_empty(), "no similar ticket found for {q:?}");
            }
            table.rows.push(row(
                &format!("sqlite: store (FTS5, explicit tenant filter) [{kind}]"),
                size,
                &Samples::new(lat),
                None,
                "FTS5",
            ));
        }
    }
    Ok(())
}
