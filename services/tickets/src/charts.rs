//! The operations charts (`GetCharts`): queue depth, success rate and the
//! p50/p95/p99 processing time over the last hour, 6 hours, day or week.
//!
//! Each range has a fixed plan ([`Plan`]): a step that keeps a series under
//! about 1,000 points and a trailing window over which each point's success
//! rate and percentiles are taken (5 minutes, or the step when longer), on
//! a grid aligned to the step so that two refreshes share their points.
//!
//! Two sources, one shape. With `CSP_PROMETHEUS_URL`, Prometheus'
//! `/api/v1/query_range` answers five PromQL queries ([`QUERIES`]) over the
//! metrics every replica exports. Without it (`csp dev`), the enhancement
//! history does ([`csp_store::StatsStore::enhancement_steps`]: per step,
//! the jobs created and ended and a histogram of their processing times,
//! which this module sums over each point's window; the percentiles are
//! estimated from the histogram as Prometheus' `histogram_quantile` does).
//! When Prometheus does not answer, the last answer it gave for the range
//! is shown again (or, before any, the history), with a warning that says
//! since when and from when the data is; the answer never pretends to be
//! fresh.

use crate::Clock;
use csp_domain::{ChartRange, ChartSource, ErrorCode};
use csp_http::{HttpClient, HttpError, Limits};
use csp_proto::v1 as pb;
use csp_rpc::status_with_message;
use csp_store::{LatencyHistogram, StepFigures, Store};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Status;

/// A Prometheus query that takes longer counts as unreachable.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);
/// A history read that takes longer fails the call.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest window of a point's rate and percentiles.
const MIN_WINDOW: u64 = 300;

/// How a range is charted: points `step` seconds apart, each point's rate
/// and percentiles over the `window` seconds up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) step: u64,
    pub(crate) window: u64,
}

impl Plan {
    pub(crate) fn of(range: ChartRange) -> Plan {
        // Under 1,000 points each, and a window a whole number of steps.
        let step = match range {
            ChartRange::Hour => 5,
            ChartRange::SixHours => 30,
            ChartRange::Day => 100,
            ChartRange::Week => 900,
        };
        Plan {
            step,
            window: step.max(MIN_WINDOW),
        }
    }

    fn points(self, range: ChartRange) -> u64 {
        range.duration().as_secs() / self.step
    }

    /// The points' times (unix seconds), oldest first, the last one at or
    /// just before `now`.
    pub(crate) fn timestamps(self, range: ChartRange, now: OffsetDateTime) -> Vec<i64> {
        let step = self.step as i64;
        let end = now.unix_timestamp().div_euclid(step) * step;
        let n = self.points(range) as i64;
        (0..n).map(|i| end - (n - 1 - i) * step).collect()
    }
}

/// The figures of one answer, one value per timestamp (NaN: none).
#[derive(Debug, Clone, PartialEq)]
struct Series {
    queue_depth: Vec<f64>,
    success_rate: Vec<f64>,
    p50: Vec<f64>,
    p95: Vec<f64>,
    p99: Vec<f64>,
}

/// The PromQL of each series; `{w}` is the window (`300s`).
pub(crate) const QUERIES: [(&str, &str); 5] = [
    ("queue_depth", "max(queue_depth)"),
    (
        "success_rate",
        "(sum(rate(enhancement_requests_total{status=\"completed\"}[{w}])) or vector(0)) \
         / sum(rate(enhancement_requests_total{status=~\"completed|failed\"}[{w}]))",
    ),
    (
        "latency_p50",
        "histogram_quantile(0.5, sum by (le) (rate(enhancement_duration_seconds_bucket{status=~\"completed|failed\"}[{w}])))",
    ),
    (
        "latency_p95",
        "histogram_quantile(0.95, sum by (le) (rate(enhancement_duration_seconds_bucket{status=~\"completed|failed\"}[{w}])))",
    ),
    (
        "latency_p99",
        "histogram_quantile(0.99, sum by (le) (rate(enhancement_duration_seconds_bucket{status=~\"completed|failed\"}[{w}])))",
    ),
];

/// Prometheus' HTTP API at a base URL (`CSP_PROMETHEUS_URL`).
pub(crate) struct Prometheus {
    http: HttpClient,
    /// `<base>/api/v1/query_range`.
    query_range: url::Url,
}

/// Why Prometheus gave no series (logged; the user sees the warning).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PromError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("Prometheus answered status {status}: {error}")]
    Refused { status: String, error: String },
    #[error("Prometheus answered a {0} where a matrix was expected")]
    NotAMatrix(String),
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<AnswerData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct AnswerData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Matrix>,
}

/// One series of a matrix: `[unix seconds, "value"]` pairs.
#[derive(Deserialize)]
struct Matrix {
    values: Vec<(f64, String)>,
}

impl Prometheus {
    /// `base` is Prometheus' address, with a path prefix if it has one
    /// (`http://prometheus:9090`, `https://mon.example/prometheus`).
    pub(crate) fn new(http: HttpClient, base: &str) -> Result<Prometheus, String> {
        // The value is not echoed: a URL may carry credentials.
        let bad = || {
            "CSP_PROMETHEUS_URL must be an http or https URL such as http://prometheus:9090"
                .to_owned()
        };
        let mut url = url::Url::parse(base.trim()).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad());
        }
        url.set_query(None);
        url.set_fragment(None);
        let path = format!("{}/api/v1/query_range", url.path().trim_end_matches('/'));
        url.set_path(&path);
        Ok(Prometheus {
            http,
            query_range: url,
        })
    }

    /// Every series on the plan's grid.
    async fn series(&self, plan: Plan, timestamps: &[i64]) -> Result<Series, PromError> {
        let window = format!("{}s", plan.window);
        let asks = QUERIES.map(|(_, q)| self.query(q.replace("{w}", &window), plan, timestamps));
        let [depth, success, p50, p95, p99] = asks;
        let (depth, success, p50, p95, p99) = tokio::try_join!(depth, success, p50, p95, p99)?;
        Ok(Series {
            queue_depth: depth,
            success_rate: success,
            p50,
            p95,
            p99,
        })
    }

    async fn query(
        &self,
        promql: String,
        plan: Plan,
        timestamps: &[i64],
    ) -> Result<Vec<f64>, PromError> {
        let (Some(&start), Some(&end)) = (timestamps.first(), timestamps.last()) else {
            return Ok(Vec::new());
        };
        let mut url = self.query_range.clone();
        url.query_pairs_mut()
            .append_pair("query", &promql)
            .append_pair("start", &start.to_string())
            .append_pair("end", &end.to_string())
            .append_pair("step", &format!("{}s", plan.step));
        let req = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(bytes::Bytes::new())
            .map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
        let limits = Limits {
            timeout: PROMETHEUS_TIMEOUT,
            max_body_bytes: 4 * 1024 * 1024,
        };
        let (_, answer): (_, Answer) = self.http.json(req, limits).await?;
        on_grid(answer, start, plan.step, timestamps.len())
    }
}

/// A query_range answer's first series on the grid `start + i · step`
/// (`n` points): a sample lands on its nearest point; NaN where none did,
/// and for Prometheus' own NaN and infinities.
fn on_grid(answer: Answer, start: i64, step: u64, n: usize) -> Result<Vec<f64>, PromError> {
    if answer.status != "success" {
        return Err(PromError::Refused {
            status: answer.status,
            error: answer.error.unwrap_or_default(),
        });
    }
    let data = answer
        .data
        .ok_or_else(|| PromError::NotAMatrix("nothing".into()))?;
    if data.result_type != "matrix" {
        return Err(PromError::NotAMatrix(data.result_type));
    }
    let mut values = vec![f64::NAN; n];
    // Aggregations answer one series (or none, when nothing was recorded).
    if let Some(series) = data.result.into_iter().next() {
        for (at, text) in series.values {
            let i = ((at - start as f64) / step as f64).round();
            let Ok(value) = text.parse::<f64>() else {
                continue;
            };
            if i >= 0.0 && (i as usize) < n && value.is_finite() {
                values[i as usize] = value;
            }
        }
    }
    Ok(values)
}

/// The series of the history's steps: `figures` holds `window / step - 1`
/// steps before the first point, then one step per point (each point is
/// its step's end).
fn from_history(figures: &[StepFigures], plan: Plan, points: usize) -> Series {
    let per_window = (plan.window / plan.step).max(1) as usize;
    let lead = figures.len().saturating_sub(points);
    let mut series = Series {
        queue_depth: Vec::with_capacity(points),
        success_rate: Vec::with_capacity(points),
        p50: Vec::with_capacity(points),
        p95: Vec::with_capacity(points),
        p99: Vec::with_capacity(points),
    };
    let (mut completed, mut failed) = (0u64, 0u64);
    let mut latency = LatencyHistogram::default();
    for (k, f) in figures.iter().enumerate() {
        completed += f.completed;
        failed += f.failed;
        latency.add(&f.latency);
        if k >= per_window {
            let gone = &figures[k - per_window];
            completed -= gone.completed;
            failed -= gone.failed;
            latency.subtract(&gone.latency);
        }
        if k < lead {
            continue;
        }
        series.queue_depth.push(f.queue_depth as f64);
        let ended = completed + failed;
        series.success_rate.push(if ended == 0 {
            f64::NAN
        } else {
            completed as f64 / ended as f64
        });
        let seconds = |q: f64| latency.quantile_ms(q).map_or(f64::NAN, |ms| ms / 1000.0);
        series.p50.push(seconds(0.5));
        series.p95.push(seconds(0.95));
        series.p99.push(seconds(0.99));
    }
    series
}

/// What was last answered, for when Prometheus stops answering.
#[derive(Default)]
struct Memory {
    /// Prometheus' last answer per range, with when it was read.
    answers: HashMap<ChartRange, pb::Charts>,
    /// The first failure since Prometheus last answered.
    unreachable_since: Option<OffsetDateTime>,
}

pub(crate) struct Charts {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) prometheus: Option<Prometheus>,
    memory: Mutex<Memory>,
}

impl Charts {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        prometheus: Option<Prometheus>,
    ) -> Charts {
        Charts {
            store,
            clock,
            prometheus,
            memory: Mutex::new(Memory::default()),
        }
    }

    pub(crate) async fn charts(&self, range: ChartRange) -> Result<pb::Charts, Status> {
        let now = self.clock.now();
        let plan = Plan::of(range);
        let timestamps = plan.timestamps(range, now);
        let Some(prometheus) = &self.prometheus else {
            return self.history(range, plan, timestamps, now).await;
        };
        match prometheus.series(plan, &timestamps).await {
            Ok(series) => {
                let answer = answer(
                    range,
                    ChartSource::Prometheus,
                    plan,
                    timestamps,
                    series,
                    now,
                );
                let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                memory.unreachable_since = None;
                memory.answers.insert(range, answer.clone());
                Ok(answer)
            }
            Err(e) => {
                tracing::warn!(error = %e, range = %range, "Prometheus did not answer the charts' query");
                let (since, last) = {
                    let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                    let since = *memory.unreachable_since.get_or_insert(now);
                    (since, memory.answers.get(&range).cloned())
                };
                if let Some(mut last) = last {
                    last.warning = format!(
                        "Prometheus unreachable since {}: showing data from {}.",
                        shown(since),
                        OffsetDateTime::parse(&last.generated_at, &Rfc3339)
                            .map_or_else(|_| last.generated_at.clone(), shown)
                    );
                    return Ok(last);
                }
                let mut history = self.history(range, plan, timestamps, now).await?;
                history.warning = format!(
                    "Prometheus unreachable since {}: showing the platform's own history instead.",
                    shown(since)
                );
                Ok(history)
            }
        }
    }

    async fn history(
        &self,
        range: ChartRange,
        plan: Plan,
        timestamps: Vec<i64>,
        now: OffsetDateTime,
    ) -> Result<pb::Charts, Status> {
        let (Some(&first), n) = (timestamps.first(), timestamps.len()) else {
            return Ok(answer(
                range,
                ChartSource::History,
                plan,
                timestamps,
                from_history(&[], plan, 0),
                now,
            ));
        };
        let per_window = (plan.window / plan.step).max(1);
        let lead = per_window - 1;
        // Each point is the end of its step.
        let from = OffsetDateTime::from_unix_timestamp(first - ((lead + 1) * plan.step) as i64)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let steps = u32::try_from(n as u64 + lead).unwrap_or(u32::MAX);
        let read = self
            .store
            .enhancement_steps(from, Duration::from_secs(plan.step), steps);
        let figures = match tokio::time::timeout(HISTORY_TIMEOUT, read).await {
            Ok(Ok(figures)) => figures,
            Ok(Err(e)) => {
                tracing::error!(error = %e, range = %range, "cannot read the charts from the history");
                return Err(unavailable());
            }
            Err(_) => {
                tracing::error!(range = %range, "the charts' history read took too long");
                return Err(unavailable());
            }
        };
        let series = from_history(&figures, plan, n);
        Ok(answer(
            range,
            ChartSource::History,
            plan,
            timestamps,
            series,
            now,
        ))
    }
}

fn unavailable() -> Status {
    status_with_message(
        ErrorCode::Unavailable,
        "The charts cannot be read: the database does not answer in time.",
    )
}

fn answer(
    range: ChartRange,
    source: ChartSource,
    plan: Plan,
    timestamps: Vec<i64>,
    series: Series,
    at: OffsetDateTime,
) -> pb::Charts {
    pb::Charts {
        range: pb::ChartRange::from(range) as i32,
        source: source.as_str().to_owned(),
        warning: String::new(),
        generated_at: at.format(&Rfc3339).unwrap_or_default(),
        step_seconds: u32::try_from(plan.step).unwrap_or(u32::MAX),
        window_seconds: u32::try_from(plan.window).unwrap_or(u32::MAX),
        timestamps,
        queue_depth: series.queue_depth,
        success_rate: series.success_rate,
        latency_p50_seconds: series.p50,
        latency_p95_seconds: series.p95,
        latency_p99_seconds: series.p99,
    }
}

/// "2026-01-02 03:04:05 UTC", for the warning.
fn shown(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_range_stays_under_a_thousand_points_on_a_grid_of_its_step() {
        let now = datetime!(2026-01-02 03:04:07 UTC);
        for range in ChartRange::ALL {
            let plan = Plan::of(*range);
            let ts = plan.timestamps(*range, now);
            assert!(ts.len() <= 1000 && ts.len() >= 500, "{range}: {}", ts.len());
            assert_eq!(plan.window % plan.step, 0, "{range}");
            assert!(plan.window >= MIN_WINDOW);
            let last = *ts.last().unwrap();
            assert!(last <= now.unix_timestamp() && last % plan.step as i64 == 0);
            assert!(ts.windows(2).all(|w| w[1] - w[0] == plan.step as i64));
            // The whole range, to the step.
            let span = (ts.len() as u64) * plan.step;
            assert_eq!(span, range.duration().as_secs(), "{range}");
        }
        assert_eq!(
            Plan::of(ChartRange::Day)
                .timestamps(ChartRange::Day, now)
                .len(),
            864
        );
    }

    fn matrix(json: serde_json::Value) -> Answer {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_matrix_lands_on_the_grid_with_gaps_for_missing_and_nan_samples() {
        let answer = matrix(serde_json::json!({
            "status": "success",
            "data": {"resultType": "matrix", "result": [
                {"metric": {}, "values": [[1000, "1"], [1010.001, "2.5"], [1020, "NaN"], [1040, "+Inf"], [5000, "9"]]}
            ]}
        }));
        let got = on_grid(answer, 1000, 10, 5).unwrap();
        assert_eq!(got[0], 1.0);
        assert_eq!(got[1], 2.5);
        assert!(got[2].is_nan() && got[3].is_nan() && got[4].is_nan());
        // No series at all: nothing recorded yet.
        let empty = matrix(serde_json::json!({
            "status": "success", "data": {"resultType": "matrix", "result": []}
        }));
        assert!(on_grid(empty, 0, 10, 3).unwrap().iter().all(|v| v.is_nan()));
        let refused = matrix(serde_json::json!({
            "status": "error", "errorType": "bad_data", "error": "parse error"
        }));
        assert!(matches!(
            on_grid(refused, 0, 10, 3),
            Err(PromError::Refused { .. })
        ));
        let vector = matrix(serde_json::json!({
            "status": "success", "data": {"resultType": "vector", "result": []}
        }));
        assert!(matches!(
            on_grid(vector, 0, 10, 3),
            Err(PromError::NotAMatrix(_))
        ));
    }

    fn step(depth: u64, completed: u64, failed: u64, ms: &[u64]) -> StepFigures {
        let mut latency = LatencyHistogram::default();
        for m in ms {
            latency.record(*m);
        }
        StepFigures {
            queue_depth: depth,
            created: 0,
            completed,
            failed,
            latency,
        }
    }

    #[test]
    fn history_points_take_their_window_and_the_depth_of_their_step() {
        // Windows of two steps; one lead step before three points.
        let plan = Plan {
            step: 60,
            window: 120,
        };
        let figures = [
            step(1, 3, 1, &[1_800, 1_800, 1_800]),
            step(2, 1, 0, &[50]),
            step(3, 0, 0, &[]),
            step(0, 0, 1, &[]),
        ];
        let s = from_history(&figures, plan, 3);
        assert_eq!(s.queue_depth, [2.0, 3.0, 0.0]);
        // Lead + first: 4 of 5; first + second: 1 of 1; second + third: 0 of 1.
        assert_eq!(s.success_rate[0], 0.8);
        assert_eq!(s.success_rate[1], 1.0);
        assert_eq!(s.success_rate[2], 0.0);
        // Four timed jobs, then one, then none.
        // 50 ms and three of 1.8 s: rank 2 is the first of the three in
        // (1.5 s, 2 s], a third of the way.
        assert!((s.p50[0] - (1.5 + 0.5 / 3.0)).abs() < 1e-9, "{}", s.p50[0]);
        assert!((s.p99[1] - 0.099).abs() < 1e-9, "{}", s.p99[1]);
        assert!(s.p50[2].is_nan());
    }

    #[test]
    fn prometheus_urls_keep_their_path_prefix_and_refuse_other_schemes() {
        let http = HttpClient::new().unwrap();
        let p = Prometheus::new(http.clone(), "http://prom:9090").unwrap();
        assert_eq!(
            p.query_range.as_str(),
            "http://prom:9090/api/v1/query_range"
        );
        let p = Prometheus::new(http.clone(), "https://mon.example/prometheus/").unwrap();
        assert_eq!(
            p.query_range.as_str(),
            "https://mon.example/prometheus/api/v1/query_range"
        );
        let e = Prometheus::new(http, "ftp://prom").err().unwrap();
        assert!(e.starts_with("CSP_PROMETHEUS_URL must be"), "{e}");
    }

    #[test]
    fn warnings_name_times_in_utc() {
        assert_eq!(
            shown(datetime!(2026-01-02 04:04:05.5 +01:00)),
            "2026-01-02 03:04:05 UTC"
        );
    }
}
