//! `csp-bench charts`: `GET /api/v1/tickets/charts?range=…` (the gateway,
//! its per-request user check, and the tickets service's `GetCharts` from
//! the enhancement history — no `CSP_PROMETHEUS_URL` — which is the store's
//! `enhancement_steps`: three grouped statements over the history's
//! indexes) at 100k history rows (a week of jobs, one every 6 seconds, as
//! `csp-bench dashboard` seeds them), each range, in both modes.

use super::dashboard::{seed_postgres, seed_sqlite};
use super::tickets::Stack;
use crate::{Common, Samples, Table, mode_name, ms, progress};
use anyhow::{Result, bail};
use clap::Args;
use csp_e2e::Mode;
use std::time::Instant;

#[derive(Args, Clone)]
pub(crate) struct ChartsArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// History rows seeded.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) rows: u64,
    /// Timed requests per range (after 5 unmeasured).
    #[arg(long, default_value_t = 50)]
    pub(crate) requests: usize,
}

const TENANT: &str = "bench-dashboard";
const RANGES: [&str; 4] = ["1h", "6h", "24h", "7d"];

pub(crate) async fn bench_charts(args: &ChartsArgs) -> Table {
    let mut table = Table::new(
        format!(
            "charts: GET /api/v1/tickets/charts from the history at {} rows, ms per request",
            args.rows
        ),
        vec![
            "mode", "range", "points", "requests", "p50", "p90", "p99", "max",
        ],
    );
    for mode in args.common.mode.modes() {
        progress(format!("charts/{}: starting", mode_name(mode)));
        let run = async {
            let stack = Stack::start(&args.common, mode, vec![]).await?;
            let result = charts_run(&stack, mode, args).await;
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

async fn charts_run(stack: &Stack, mode: Mode, args: &ChartsArgs) -> Result<Vec<Vec<String>>> {
    stack.tenant(TENANT, "https://sdp.bench.example").await?;
    let url = stack.csp.database_url();
    let seeded = Instant::now();
    match mode {
        Mode::Distributed => seed_postgres(&url, args.rows).await?,
        Mode::Dev => seed_sqlite(&url, args.rows).await?,
    }
    progress(format!(
        "charts/{}: {} rows seeded in {:.1} s",
        mode_name(mode),
        args.rows,
        seeded.elapsed().as_secs_f64()
    ));
    let mut rows = Vec::new();
    for range in RANGES {
        let path = format!("/api/v1/tickets/charts?range={range}");
        let mut times = Vec::with_capacity(args.requests);
        let mut points = 0;
        for i in 0..args.requests + 5 {
            let start = Instant::now();
            let (status, body) = stack.api(reqwest::Method::GET, &path, None).await?;
            let took = start.elapsed().as_secs_f64() * 1000.0;
            if status != 200 {
                bail!("GET {path}: {status} {body}");
            }
            if body["source"] != "history" {
                bail!("GET {path}: not from the history: {}", body["source"]);
            }
            points = body["timestamps"].as_array().map_or(0, Vec::len);
            if i >= 5 {
                times.push(took);
            }
        }
        let s = Samples::new(times);
        rows.push(vec![
            mode_name(mode).to_owned(),
            range.to_owned(),
            points.to_string(),
            args.requests.to_string(),
            ms(s.pct(50.0)),
            ms(s.pct(90.0)),
            ms(s.pct(99.0)),
            ms(s.max()),
        ]);
    }
    Ok(rows)
}
