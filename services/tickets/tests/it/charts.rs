//! The operations charts (issue 16 item 2): from the enhancement history
//! without `CSP_PROMETHEUS_URL`, from a fake Prometheus speaking the real
//! `query_range` wire format with it, and the last answer (or the history)
//! with a warning once Prometheus stops answering.

use crate::helpers::*;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use csp_domain::{EnhancementStatus, ErrorCode, TenantId};
use csp_proto::v1 as pb;
use csp_store::test_support::Backend;
use csp_store::{NewEnhancement, Outcome};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

async fn charts(r: &Running, range: pb::ChartRange) -> pb::Charts {
    r.client()
        .get_charts(as_(
            &r.operator,
            pb::GetChartsRequest {
                range: range as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// A job of `acme` created now; with a status, ended at `at` after `ms`.
async fn job(r: &Running, status: Option<EnhancementStatus>, ms: i64, at: OffsetDateTime) {
    let store = &r.shared.store;
    let job_id = Uuid::new_v4();
    let job = NewEnhancement {
        job_id,
        tenant_id: TenantId::parse("acme").unwrap(),
        ticket_id: job_id.to_string(),
        delivery_key: job_id.to_string(),
        subject: "VPN drops".into(),
        description: "d".into(),
        priority: "High".into(),
        correlation_id: "corr".into(),
    };
    let end = status.map(|status| Outcome {
        status: Some(status),
        processing_time_ms: Some(ms),
        ..Outcome::default()
    });
    ended_job(store, job, end, at).await;
}

pub(crate) async fn without_prometheus_the_charts_come_from_the_history(backend: Backend) {
    let r = start(backend).await;
    r.create("acme").await;
    // Empty: every point there, no depth, no rate, no percentile.
    let empty = charts(&r, pb::ChartRange::Unspecified).await;
    assert_eq!(
        empty.range,
        pb::ChartRange::ChartRange24h as i32,
        "the default"
    );
    assert_eq!(
        (empty.source.as_str(), empty.warning.as_str()),
        ("history", "")
    );
    assert_eq!((empty.step_seconds, empty.timestamps.len()), (100, 864));
    assert!(empty.queue_depth.iter().all(|d| *d == 0.0));
    assert!(empty.success_rate.iter().all(|v| v.is_nan()));
    // Five jobs now; three complete in 1.8 s and one fails 17 minutes on;
    // one waits. The charts are read 20 minutes on.
    let created = r.now();
    let ended = created + time::Duration::minutes(17);
    for _ in 0..3 {
        job(&r, Some(EnhancementStatus::Completed), 1_800, ended).await;
    }
    job(&r, Some(EnhancementStatus::Failed), 1_800, ended).await;
    job(&r, None, 0, created).await;
    r.shared.clock.advance(Duration::from_secs(20 * 60));

    let c = charts(&r, pb::ChartRange::ChartRange1h).await;
    assert_eq!((c.source.as_str(), c.warning.as_str()), ("history", ""));
    assert_eq!((c.step_seconds, c.window_seconds), (5, 300));
    let n = c.timestamps.len();
    assert_eq!(n, 720);
    for series in [
        &c.queue_depth,
        &c.success_rate,
        &c.latency_p50_seconds,
        &c.latency_p95_seconds,
        &c.latency_p99_seconds,
    ] {
        assert_eq!(series.len(), n);
    }
    let last = r.now().unix_timestamp();
    assert!(c.timestamps[n - 1] <= last && c.timestamps[n - 1] > last - 5);
    // The queue: nothing 40 minutes ago, five while they waited, the one
    // that still waits at the end.
    assert_eq!(c.queue_depth[0], 0.0);
    assert_eq!(c.queue_depth.iter().cloned().fold(0.0, f64::max), 5.0);
    assert_eq!(c.queue_depth[n - 1], 1.0);
    // The last point's window (5 minutes) holds the four that ended.
    assert_eq!(c.success_rate[n - 1], 0.75);
    let p50 = c.latency_p50_seconds[n - 1];
    assert!((p50 - 1.75).abs() < 1e-9, "{p50}");
    // Before they ended: no rate.
    assert!(c.success_rate[0].is_nan());

    // Operators and admins only.
    let e = r
        .client()
        .get_charts(as_(&r.user, pb::GetChartsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
}

/// A Prometheus that answers `query_range` as the real one does (a
/// matrix of `[unix seconds, "value"]` pairs), one value per query, every
/// step but the first; or 503 while `down`.
#[derive(Default)]
struct FakePrometheus {
    down: AtomicBool,
    asked: Mutex<Vec<HashMap<String, String>>>,
}

async fn query_range(
    State(fake): State<Arc<FakePrometheus>>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    fake.asked.lock().unwrap().push(q.clone());
    if fake.down.load(Ordering::SeqCst) {
        let body = json!({"status": "error", "errorType": "unavailable", "error": "not ready"});
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let promql = q.get("query").cloned().unwrap_or_default();
    let value = if promql == "max(queue_depth)" {
        "3"
    } else if promql.starts_with("(sum(rate(enhancement_requests_total") {
        "0.75"
    } else if promql.starts_with("histogram_quantile(0.5,") {
        "1.5"
    } else if promql.starts_with("histogram_quantile(0.95,") {
        "4"
    } else if promql.starts_with("histogram_quantile(0.99,") {
        "NaN"
    } else {
        let body = json!({"status": "error", "errorType": "bad_data", "error": "unknown query"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    let number = |k: &str| q.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap();
    let (start, end) = (number("start"), number("end"));
    let step: f64 = q["step"].trim_end_matches('s').parse().unwrap();
    let mut values = Vec::new();
    let mut t = start + step;
    while t <= end {
        values.push(json!([t, value]));
        t += step;
    }
    axum::Json(json!({
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}
    }))
    .into_response()
}

async fn fake_prometheus() -> (Arc<FakePrometheus>, String) {
    let fake = Arc::new(FakePrometheus::default());
    let app = axum::Router::new()
        .route("/prom/api/v1/query_range", get(query_range))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, format!("http://{addr}/prom/"))
}

pub(crate) async fn with_prometheus_the_charts_are_its_series_and_stale_ones_say_so(
    backend: Backend,
) {
    let (fake, url) = fake_prometheus().await;
    let r = start_on(
        Shared::new(backend).await,
        Options {
            prometheus_url: Some(url),
            ..Options::default()
        },
    )
    .await;
    let fresh = charts(&r, pb::ChartRange::ChartRange1h).await;
    assert_eq!(
        (fresh.source.as_str(), fresh.warning.as_str()),
        ("prometheus", "")
    );
    let n = fresh.timestamps.len();
    assert_eq!(n, 720);
    // The first step has no sample: a gap, not a zero.
    assert!(fresh.queue_depth[0].is_nan());
    assert_eq!(&fresh.queue_depth[1..3], [3.0, 3.0]);
    assert_eq!(fresh.success_rate[n - 1], 0.75);
    assert_eq!(fresh.latency_p50_seconds[n - 1], 1.5);
    assert_eq!(fresh.latency_p95_seconds[n - 1], 4.0);
    assert!(
        fresh.latency_p99_seconds.iter().all(|v| v.is_nan()),
        "Prometheus' NaN"
    );
    // Five queries over the chart's grid, the rates over 5 minutes.
    let asked = std::mem::take(&mut *fake.asked.lock().unwrap());
    assert_eq!(asked.len(), 5);
    let mut queries: Vec<&str> = asked.iter().map(|q| q["query"].as_str()).collect();
    queries.sort();
    assert_eq!(
        queries,
        [
            "(sum(rate(enhancement_requests_total{status=\"completed\"}[300s])) or vector(0)) / sum(rate(enhancement_requests_total{status=~\"completed|failed\"}[300s]))",
            "histogram_quantile(0.5, sum by (le) (rate(enhancement_duration_seconds_bucket{status=~\"completed|failed\"}[300s])))",
            "histogram_quantile(0.95, sum by (le) (rate(enhancement_duration_seconds_bucket{status=~\"completed|failed\"}[300s])))",
            "histogram_quantile(0.99, sum by (le) (rate(enhancement_duration_seconds_bucket{status=~\"completed|failed\"}[300s])))",
            "max(queue_depth)",
        ]
    );
    for q in &asked {
        assert_eq!(q["start"], fresh.timestamps[0].to_string());
        assert_eq!(q["end"], fresh.timestamps[n - 1].to_string());
        assert_eq!(q["step"], "5s");
    }

    // Prometheus stops answering: the last answer of the range, saying so.
    fake.down.store(true, Ordering::SeqCst);
    r.shared.clock.advance(Duration::from_secs(120));
    let stale = charts(&r, pb::ChartRange::ChartRange1h).await;
    assert_eq!(stale.source, "prometheus");
    assert_eq!(stale.timestamps, fresh.timestamps);
    assert_eq!(stale.generated_at, fresh.generated_at);
    assert!(
        stale.warning.starts_with("Prometheus unreachable since ")
            && stale.warning.contains(": showing data from ")
            && stale.warning.ends_with(" UTC."),
        "{}",
        stale.warning
    );
    // A range it never answered: the history, saying so.
    let day = charts(&r, pb::ChartRange::ChartRange24h).await;
    assert_eq!(day.source, "history");
    assert_eq!(day.timestamps.len(), 864);
    assert!(
        day.warning
            .ends_with(": showing the platform's own history instead."),
        "{}",
        day.warning
    );
    // Both name the same first failure.
    let since = |w: &str| w.split(": showing").next().unwrap().to_owned();
    assert_eq!(since(&stale.warning), since(&day.warning));

    // Back: fresh again, no warning.
    fake.down.store(false, Ordering::SeqCst);
    let back = charts(&r, pb::ChartRange::ChartRange1h).await;
    assert_eq!(
        (back.source.as_str(), back.warning.as_str()),
        ("prometheus", "")
    );
    assert_ne!(back.generated_at, fresh.generated_at);
}

pub(crate) async fn a_prometheus_url_that_is_not_http_is_refused_at_start(backend: Backend) {
    let shared = Shared::new(backend).await;
    let built = csp_tickets::Server::build(
        csp_tickets::Config {
            prometheus_url: Some("ftp://prometheus:9090".into()),
            ..csp_tickets::Config::new("127.0.0.1:0".parse().unwrap(), tokens())
        },
        shared.store.shared(),
        shared.queue.clone(),
        shared.cache.clone(),
    )
    .await;
    let Err(e) = built else {
        panic!("an ftp URL was accepted")
    };
    assert!(
        e.to_string()
            .contains("CSP_PROMETHEUS_URL must be an http or https URL"),
        "{e}"
    );
}
