//! `csp-bench peers`: csp's webhook intake beside its floor, a plain axum
//! handler in this process that only verifies the delivery's signature
//! (ServiceDesk Plus's scheme, `csp_ticketing::webhook::verify_signature`:
//! timestamp tolerance, constant-time compare) and answers `202`, driven by
//! the same load as `csp-bench webhook` at the same concurrency. The other
//! peers are `scripts/bench-peer-sdk.sh` (session start and first token
//! through the Python Claude Agent SDK) and `csp-bench search`'s floor row.

use super::text::Vocabulary;
use super::tickets::{self, WebhookArgs, WebhookLoad};
use crate::{Samples, Table, USER_HZ, cpu_ticks, ms, progress};
use anyhow::Result;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use csp_ticketing::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub(crate) async fn bench_peers(args: &WebhookArgs) -> Table {
    // csp's own rows first, in the `webhook` table's shape; the floor's row
    // goes on top of them.
    let mut table = tickets::bench_webhook(args).await;
    table.title = format!(
        "peers: {}; first row: the floor, an axum handler in csp-bench that only verifies the signature and answers 202",
        table.title
    );
    progress("peers: the webhook floor");
    match floor(args).await {
        Ok(row) => table.rows.insert(0, row),
        Err(e) => {
            progress(format!("peers: the floor failed: {e:#}"));
            table.failures += 1;
        }
    }
    table
}

type Secrets = Arc<HashMap<String, String>>;

/// The floor: the signature check and nothing else (no parsing, no
/// record, no queue), so what is left is HTTP on loopback and one HMAC.
async fn accept(
    State(secrets): State<Secrets>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let Some(secret) = secrets.get(&tenant) else {
        return StatusCode::NOT_FOUND;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match verify_signature(
        &[secret.as_bytes()],
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        SystemTime::now(),
    ) {
        Ok(()) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

async fn floor(args: &WebhookArgs) -> Result<Vec<String>> {
    let secrets: Vec<(String, String)> = (0..args.tenants)
        .map(|i| {
            (
                format!("bench-w{i:03}"),
                uuid::Uuid::new_v4().simple().to_string(),
            )
        })
        .collect();
    let table: Secrets = Arc::new(secrets.iter().cloned().collect());
    let app = axum::Router::new()
        .route(
            "/webhook/servicedesk_plus/{tenant}",
            axum::routing::post(accept),
        )
        .with_state(table);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let load = WebhookLoad {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency * 2)
            .tcp_nodelay(true)
            .build()?,
        base,
        secrets: Arc::new(secrets),
        vocab: Arc::new(Vocabulary::new()),
        concurrency: args.concurrency,
    };
    load.drive(2, 1).await?;
    // Server and client share this process: its CPU is both.
    let me = std::process::id();
    let ticks = cpu_ticks(me)?;
    let began = Instant::now();
    let (lat, bad) = load.drive(args.secs, 2).await?;
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(me)? - ticks) as f64 / USER_HZ;
    server.abort();
    let s = Samples::new(lat);
    let n = s.0.len();
    Ok(vec![
        "floor (axum, verify only)".to_owned(),
        n.to_string(),
        format!("{:.0}", n as f64 / elapsed),
        ms(s.pct(50.0)),
        ms(s.pct(90.0)),
        ms(s.pct(99.0)),
        ms(s.max()),
        if bad.is_empty() {
            "0".into()
        } else {
            format!("{} {bad:?}", bad.values().sum::<usize>())
        },
        format!(
            "csp-bench (server and client) {:.0}% ({:.2})",
            cpu / elapsed * 100.0,
            cpu * 1e3 / n.max(1) as f64
        ),
    ])
}
