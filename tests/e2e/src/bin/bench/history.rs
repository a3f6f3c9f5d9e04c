//! `csp-bench history`: the History page's query (`ListEnhancements`, the
//! store's `enhancements_page`: a count and one page of 50) and its CSV
//! export (`enhancements_after`, keyset pages of 500) at 10k and 100k jobs,
//! through `csp_store` on Postgres, the distributed mode's database.
//!
//! The jobs are written straight into `enhancement_history` with one
//! `INSERT … SELECT FROM UNNEST(…)` per 5,000 rows (recording 100k through
//! the store would be the webhook bench, not this one): 10 tenants, created
//! over 90 days, 85 % completed, 10 % failed, 5 % pending, each with a
//! description from the search bench's vocabulary, a gathered context of
//! about 1 KB and a note of about 1.5 KB, as a worker leaves them. The store
//! is used as a library; nothing of it is changed.

use super::text::{Rng, Vocabulary};
use crate::{Samples, Table, ms, progress};
use anyhow::{Context, Result};
use clap::Args;
use csp_domain::{EnhancementStatus, TenantId};
use csp_store::{
    EnhancementCursor, EnhancementQuery, EnhancementStore, NewTenant, PgStore, TenantStore,
};
use std::time::Instant;

#[derive(Args, Clone)]
pub(crate) struct HistoryArgs {
    /// Tenants the jobs are spread over.
    #[arg(long, default_value_t = 10)]
    tenants: usize,
    /// Jobs in all at each measuring point, ascending.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Timed queries per variant and size (after 10 unmeasured).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Timed full exports per size.
    #[arg(long, default_value_t = 3)]
    exports: usize,
    /// Leave the database behind (its name is printed) to look at plans.
    #[arg(long)]
    keep_database: bool,
}

fn tenant_ids(n: usize) -> Vec<TenantId> {
    (0..n)
        .map(|i| TenantId::parse(&format!("bench-h{i:02}")).expect("slug"))
        .collect()
}

const CONTEXT: &str = r#"{"similar_tickets":[{"ticket_id":"100231","description":"VPN client disconnects every few minutes after the certificate update","resolution":"Renewed the client certificate and restarted the VPN service","resolved_date":"2026-01-05"},{"ticket_id":"100877","description":"Users cannot reach the file server over VPN","resolution":"Fixed the split tunnel route","resolved_date":"2026-01-09"}],"kb_articles":[{"title":"Renewing VPN client certificates","summary":"Steps to renew an expired client certificate","url":"https://kb.bench.example/vpn-certificates"}],"systems":[{"ip":"10.0.0.1","hostname":"vpn-gw-01","role":"VPN gateway","client":"Bench","location":"DC1"}],"ips":["10.0.0.1"],"sources":{"ticket_history":{"elapsed_ms":14,"error":null},"kb":{"elapsed_ms":9,"error":null},"ip_inventory":{"elapsed_ms":3,"error":null}}}"#;

/// One measured variant: its name and the query (the page varies per run).
fn variants(
    tenants: &[TenantId],
    now: time::OffsetDateTime,
) -> Vec<(&'static str, EnhancementQuery)> {
    let q = EnhancementQuery::default;
    vec![
        ("no filter, page 1", q()),
        ("no filter, random page", q()),
        (
            "tenant",
            EnhancementQuery {
                tenant_id: Some(tenants[0].clone()),
                ..q()
            },
        ),
        (
            "status = failed",
            EnhancementQuery {
                status: Some(EnhancementStatus::Failed),
                ..q()
            },
        ),
        (
            "last 7 days",
            EnhancementQuery {
                from: Some(now - time::Duration::days(7)),
                to: Some(now),
                ..q()
            },
        ),
        (
            "search: a ticket id",
            EnhancementQuery {
                q: Some("T-4242".into()),
                ..q()
            },
        ),
        (
            "search: a word of the description",
            EnhancementQuery {
                q: Some("printer".into()),
                ..q()
            },
        ),
        (
            "tenant + failed + 30 days + word",
            EnhancementQuery {
                tenant_id: Some(tenants[1].clone()),
                status: Some(EnhancementStatus::Failed),
                from: Some(now - time::Duration::days(30)),
                to: Some(now),
                q: Some("vpn".into()),
                ..q()
            },
        ),
    ]
}

fn header() -> Vec<&'static str> {
    vec![
        "query",
        "jobs",
        "queries",
        "p50",
        "p90",
        "p99",
        "max",
        "mean total",
    ]
}

pub(crate) async fn bench_history(args: &HistoryArgs) -> Table {
    let mut table = Table::new(
        format!(
            "history: ListEnhancements (count + page of 50) and the CSV export, Postgres, {} tenants, ms",
            args.tenants
        ),
        header(),
    );
    if let Err(e) = postgres(args, &mut table).await {
        progress(format!("history failed: {e:#}"));
        let mut row = vec!["postgres".to_owned(), format!("FAILED: {e:#}")];
        row.resize(table.header.len(), String::new());
        table.rows.push(row);
        table.failures += 1;
    }
    table
}

async fn postgres(args: &HistoryArgs, table: &mut Table) -> Result<()> {
    let db = csp_e2e::ScratchDatabase::create("csp_bench_history").await?;
    let result = run(args, table, db.url()).await;
    if args.keep_database {
        progress(format!("history: the database is kept: {}", db.name()));
    } else {
        db.drop_now().await;
    }
    result
}

/// Writes jobs `from..to`, each created at a random time of the last 90 days.
async fn seed(
    pool: &sqlx::PgPool,
    tenants: &[TenantId],
    vocab: &Vocabulary,
    rng: &mut Rng,
    from: usize,
    to: usize,
    now: time::OffsetDateTime,
) -> Result<()> {
    let span_ms = 90 * 86_400_000i64;
    let mut i = from;
    while i < to {
        let end = (i + 5000).min(to);
        let mut ids = Vec::new();
        let mut tenant = Vec::new();
        let mut ticket = Vec::new();
        let mut description = Vec::new();
        let mut status = Vec::new();
        let mut error = Vec::new();
        let mut created = Vec::new();
        let mut took = Vec::new();
        for n in i..end {
            ids.push(uuid::Uuid::new_v4());
            tenant.push(tenants[rng.below(tenants.len())].to_string());
            ticket.push(format!("T-{n}"));
            let (text, _) = vocab.ticket(rng);
            description.push(if rng.below(20) == 0 {
                format!("The printer is offline. {text}")
            } else {
                text
            });
            let roll = rng.below(100);
            let s = if roll < 85 {
                "completed"
            } else if roll < 95 {
                "failed"
            } else {
                "pending"
            };
            status.push(s.to_owned());
            error.push((s == "failed").then(|| "ServiceDesk Plus answered 500".to_owned()));
            // Spread over the last 90 days, whatever the size.
            let offset = (rng.unit() * span_ms as f64) as i64;
            created.push(now - time::Duration::milliseconds(offset));
            took.push((s != "pending").then(|| 1500 + rng.below(20_000) as i64));
        }
        let note = vocab.text(rng, 200, 260);
        sqlx::query(
            "INSERT INTO enhancement_history (job_id, tenant_id, ticket_id, delivery_key, subject, \
             description, priority, status, attempts, context_gathered, llm_output, error_message, \
             processing_time_ms, cost_micros, correlation_id, created_at, completed_at) \
             SELECT id, t, tk, 'bench-' || id::text, 'Bench ticket', d, 'High', s, \
             CASE WHEN s = 'pending' THEN 0 ELSE 1 END, \
             CASE WHEN s = 'pending' THEN NULL ELSE $9::jsonb END, \
             CASE WHEN s = 'completed' THEN $10 ELSE NULL END, e, ms, \
             CASE WHEN s = 'completed' THEN 4200 ELSE 0 END, replace(id::text, '-', ''), c, \
             CASE WHEN s = 'pending' THEN NULL ELSE c + interval '20 seconds' END \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::timestamptz[], $8::bigint[]) AS u(id, t, tk, d, s, e, c, ms)",
        )
        .bind(&ids)
        .bind(&tenant)
        .bind(&ticket)
        .bind(&description)
        .bind(&status)
        .bind(&error)
        .bind(&created)
        .bind(&took)
        .bind(CONTEXT)
        .bind(&note)
        .execute(pool)
        .await
        .context("seeding enhancement_history")?;
        i = end;
    }
    Ok(())
}

async fn run(args: &HistoryArgs, table: &mut Table, url: &str) -> Result<()> {
    let store = PgStore::connect(url).await.context("PgStore::connect")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await?;
    let tenants = tenant_ids(args.tenants);
    for t in &tenants {
        store
            .create_tenant(NewTenant {
                tenant_id: t.clone(),
                name: format!("Bench {t}"),
                tool_type: "servicedesk_plus".into(),
                settings: serde_json::json!({"servicedesk_url": "https://sdp.bench.example"}),
                preferences: serde_json::json!({}),
                monthly_budget_micros: None,
                dedicated_queue: false,
                secrets: Vec::new(),
            })
            .await?;
    }
    let vocab = Vocabulary::new();
    let mut rng = Rng::new(16);
    let now = time::OffsetDateTime::now_utc();
    let mut have = 0;
    for &size in &args.sizes {
        let began = Instant::now();
        seed(&pool, &tenants, &vocab, &mut rng, have, size, now).await?;
        sqlx::query("ANALYZE enhancement_history")
            .execute(&pool)
            .await?;
        have = size;
        progress(format!(
            "history: {size} jobs loaded in {:.0} s",
            began.elapsed().as_secs_f64()
        ));
        for (name, query) in variants(&tenants, now) {
            let mut lat = Vec::new();
            let mut totals = 0u64;
            for i in 0..args.queries + 10 {
                let page = if name.contains("random page") {
                    1 + rng.below((size / 50).max(1)) as u32
                } else {
                    1
                };
                let q = EnhancementQuery {
                    page,
                    per_page: 50,
                    ..query.clone()
                };
                let start = Instant::now();
                let (_, total) = store.enhancements_page(&q).await?;
                if i >= 10 {
                    lat.push(start.elapsed().as_secs_f64() * 1e3);
                    totals += total;
                }
            }
            let s = Samples::new(lat);
            progress(format!(
                "history: {name} at {size}: p50 {} p99 {} ms",
                ms(s.pct(50.0)),
                ms(s.pct(99.0))
            ));
            table.rows.push(vec![
                name.to_owned(),
                size.to_string(),
                s.0.len().to_string(),
                ms(s.pct(50.0)),
                ms(s.pct(90.0)),
                ms(s.pct(99.0)),
                ms(s.max()),
                format!("{:.0}", totals as f64 / args.queries.max(1) as f64),
            ]);
        }
        // The export: every job, by keyset pages of 500.
        let mut lat = Vec::new();
        let mut rows = 0;
        for _ in 0..args.exports {
            let start = Instant::now();
            let (mut after, mut n) = (None, 0);
            loop {
                let page = store
                    .enhancements_after(&EnhancementQuery::default(), after, 500)
                    .await?;
                n += page.len();
                match page.last() {
                    Some(last) if page.len() == 500 => after = Some(EnhancementCursor::of(last)),
                    _ => break,
                }
            }
            lat.push(start.elapsed().as_secs_f64() * 1e3);
            rows = n;
        }
        anyhow::ensure!(rows == size, "the export read {rows} of {size} jobs");
        let s = Samples::new(lat);
        progress(format!(
            "history: export of {size} jobs: p50 {} ms",
            ms(s.pct(50.0))
        ));
        table.rows.push(vec![
            "export: every job, keyset pages of 500".to_owned(),
            size.to_string(),
            s.0.len().to_string(),
            ms(s.pct(50.0)),
            ms(s.pct(90.0)),
            ms(s.pct(99.0)),
            ms(s.max()),
            rows.to_string(),
        ]);
    }
    Ok(())
}
