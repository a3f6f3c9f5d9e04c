//! `csp-bench dashboard`: `GET /api/v1/tickets/dashboard` (the gateway, its
//! per-request user check, and the tickets service's `GetDashboard`: three
//! backend pings, the queue depth, the 24 h figures, the last failures, the
//! workers' heartbeats) at 100k enhancement-history rows, in both modes.
//!
//! The rows are written by a bench-local bulk insert into the instance's
//! own database (the store writes one job at a time): a week of jobs, one
//! every 6 seconds, newest first — 1 % pending (already marked queued, so
//! the sweeper leaves them alone), 2 % failed, the rest completed after 2 to
//! 30 s — each with a description and a note of realistic length. Measured
//! with the index of migration 0010, then without it (dropped
//! by the bench), to show what it is for.

use super::tickets::Stack;
use crate::{Common, Samples, Table, mode_name, ms, progress};
use anyhow::{Context, Result, bail};
use clap::Args;
use csp_e2e::Mode;
use std::time::Instant;

#[derive(Args, Clone)]
pub(crate) struct DashboardArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// History rows seeded.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) rows: u64,
    /// Timed requests per variant (after 20 unmeasured).
    #[arg(long, default_value_t = 200)]
    pub(crate) requests: usize,
}

const TENANT: &str = "bench-dashboard";

pub(crate) async fn bench_dashboard(args: &DashboardArgs) -> Table {
    let mut table = Table::new(
        format!(
            "dashboard: GET /api/v1/tickets/dashboard at {} history rows, ms per request",
            args.rows
        ),
        vec![
            "mode",
            "request",
            "ended in 24 h",
            "requests",
            "p50",
            "p90",
            "p99",
            "max",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("dashboard/{}: starting", mode_name(mode)));
        let run = async {
            let stack = Stack::start(&args.common, mode, vec![]).await?;
            let result = dashboard_run(&stack, mode, args).await;
            stack.stop().await;
            result
        };
        match run.await {
            Ok(rows) => table.rows.extend(rows),
            Err(e) => table.failed(mode, &e),
        }
    }
    table
}

async fn dashboard_run(
    stack: &Stack,
    mode: Mode,
    args: &DashboardArgs,
) -> Result<Vec<Vec<String>>> {
    stack.tenant(TENANT, "https://sdp.bench.example").await?;
    let url = stack.csp.database_url();
    let seeded = Instant::now();
    match mode {
        Mode::Distributed => seed_postgres(&url, args.rows).await?,
        Mode::Dev => seed_sqlite(&url, args.rows).await?,
    }
    progress(format!(
        "dashboard/{}: {} rows seeded in {:.1} s",
        mode_name(mode),
        args.rows,
        seeded.elapsed().as_secs_f64()
    ));
    let row = |what: &str, ended: String, s: &Samples| {
        vec![
            mode_name(mode).to_owned(),
            what.to_owned(),
            ended,
            args.requests.to_string(),
            ms(s.pct(50.0)),
            ms(s.pct(90.0)),
            ms(s.pct(99.0)),
            ms(s.max()),
        ]
    };
    let mut rows = Vec::new();
    // What any operator request costs (the gateway's user check, the
    // tickets service's; the queue depth), for comparison.
    let (s, _) = measure(stack, "/api/v1/tickets/processing", args.requests).await?;
    rows.push(row("GET …/processing (baseline)", String::new(), &s));
    let (s, ended) = measure(stack, "/api/v1/tickets/dashboard", args.requests).await?;
    rows.push(row("dashboard", ended.to_string(), &s));
    execute(&url, "DROP INDEX enhancement_history_completed").await?;
    execute(&url, "ANALYZE").await?;
    let (s, ended) = measure(stack, "/api/v1/tickets/dashboard", args.requests).await?;
    rows.push(row("dashboard, index 0010 dropped", ended.to_string(), &s));
    Ok(rows)
}

/// Sequential GETs of `path`: the latency one operator's page sees; with
/// the dashboard's jobs ended in 24 h.
async fn measure(stack: &Stack, path: &str, n: usize) -> Result<(Samples, u64)> {
    let mut times = Vec::with_capacity(n);
    let mut ended = 0;
    for i in 0..n + 20 {
        let start = Instant::now();
        let (status, body) = stack.api(reqwest::Method::GET, path, None).await?;
        let took = start.elapsed().as_secs_f64() * 1000.0;
        if status != 200 {
            bail!("GET {path}: {status} {body}");
        }
        ended =
            body["completed_24h"].as_u64().unwrap_or(0) + body["failed_24h"].as_u64().unwrap_or(0);
        if i >= 20 {
            times.push(took);
        }
    }
    Ok((Samples::new(times), ended))
}

async fn execute(url: &str, sql: &str) -> Result<()> {
    if url.starts_with("sqlite://") {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(url).await?;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await?;
    } else {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// What every seeded row holds besides its times.
const DESCRIPTION: &str = "Since this morning the VPN client of user jdoe disconnects every few minutes. The VPN gateway at 10.0.0.1 logs certificate errors. ";
const NOTE: &str = "<h3>Summary</h3><p>The client certificate expired; renew it from the portal and reconnect.</p> ";

pub(crate) async fn seed_postgres(url: &str, rows: u64) -> Result<()> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .context("connecting to the instance's database")?;
    let sql = format!(
        "INSERT INTO enhancement_history (job_id, tenant_id, ticket_id, delivery_key, subject, \
         description, priority, status, attempts, context_gathered, llm_output, error_message, \
         processing_time_ms, cost_micros, correlation_id, queued_at, created_at, started_at, \
         completed_at) \
         SELECT gen_random_uuid(), '{TENANT}', 'b' || i, 'bench-' || i, 'Ticket ' || i, \
           repeat('{DESCRIPTION}', 5), 'High', s.status, 1, \
           CASE WHEN s.status = 'pending' THEN NULL ELSE '{{\"kb\": [], \"similar\": []}}'::jsonb END, \
           CASE WHEN s.status = 'completed' THEN repeat('{NOTE}', 12) END, \
           CASE WHEN s.status = 'failed' THEN 'ServiceDesk Plus answered 503 after 3 attempts' END, \
           CASE WHEN s.status = 'pending' THEN NULL ELSE s.ms END, 4200, md5(i::text), \
           now(), t.at, t.at, \
           CASE WHEN s.status = 'pending' THEN NULL ELSE t.at + s.ms * interval '1 millisecond' END \
         FROM generate_series(1, {rows}) AS i, \
           LATERAL (SELECT now() - i * interval '6 seconds' AS at) t, \
           LATERAL (SELECT CASE WHEN i % 100 = 0 THEN 'pending' WHEN i % 50 = 1 THEN 'failed' \
             ELSE 'completed' END AS status, 2000 + (i * 7919) % 28000 AS ms) s"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .context("seeding the history")?;
    // What autovacuum does within a minute of such an insert: without the
    // visibility map, index-only scans would read the table after all.
    sqlx::query("VACUUM ANALYZE enhancement_history")
        .execute(&mut conn)
        .await?;
    Ok(())
}

pub(crate) async fn seed_sqlite(url: &str, rows: u64) -> Result<()> {
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(url)
        .await
        .context("opening the instance's database")?;
    sqlx::query("PRAGMA busy_timeout = 10000")
        .execute(&mut conn)
        .await?;
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let description = DESCRIPTION.repeat(5);
    let note = NOTE.repeat(12);
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
         INSERT INTO enhancement_history (job_id, tenant_id, ticket_id, delivery_key, subject, \
         description, priority, status, attempts, context_gathered, llm_output, error_message, \
         processing_time_ms, cost_micros, correlation_id, queued_at, created_at, started_at, \
         completed_at) \
         SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || \
           substr(h, 17, 4) || '-' || substr(h, 21), \
           '{TENANT}', 'b' || i, 'bench-' || i, 'Ticket ' || i, '{description}', 'High', status, 1, \
           CASE WHEN status = 'pending' THEN NULL ELSE '{{\"kb\": [], \"similar\": []}}' END, \
           CASE WHEN status = 'completed' THEN '{note}' END, \
           CASE WHEN status = 'failed' THEN 'ServiceDesk Plus answered 503 after 3 attempts' END, \
           CASE WHEN status = 'pending' THEN NULL ELSE ms END, 4200, 'corr-' || i, \
           {now_ms}, at, at, CASE WHEN status = 'pending' THEN NULL ELSE at + ms END \
         FROM (SELECT i, lower(hex(randomblob(16))) AS h, {now_ms} - i * 6000 AS at, \
           CASE WHEN i % 100 = 0 THEN 'pending' WHEN i % 50 = 1 THEN 'failed' \
             ELSE 'completed' END AS status, 2000 + (i * 7919) % 28000 AS ms FROM n)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .context("seeding the history")?;
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    Ok(())
}
