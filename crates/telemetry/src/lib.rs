//! Process-wide telemetry: the tracing subscriber and the Prometheus recorder.
//!
//! Owns: log format (human or JSON), the filter, and the one metrics recorder
//! of the process, whose text rendering every service serves at `/metrics`;
//! the probes every service shares (`Probes`, and `StoreProbes`: the HTTP
//! answers, the readiness gRPC health reports, failing at shutdown) and the
//! `/metrics` and probes listener of the gRPC services (`MetricsServer`).
//! Metric *names* live with the crates that record them (`metrics.rs`), not
//! here. Must never log secrets; it only formats what callers pass.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "CSP_LOG_FORMAT must be 'text' or 'json', not '{other}'"
            )),
        }
    }
}

mod escape;
mod ring;
mod trace;

pub use escape::escape_control;
pub use ring::{LineWriter, LogRing, RingLine};

pub use trace::{
    ENDPOINT_VAR, TRACE_HEADERS, TraceExport, context_of, current_context, set_parent,
};

/// Installs the global tracing subscriber. The filter comes from `RUST_LOG`
/// (default `info`). With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also
/// exported over OTLP as `service` (`service.name`); keep the returned guard
/// until exit, it flushes the last spans. Safe to call twice: the second
/// call does nothing, so tests can all call it.
pub fn init_tracing(format: LogFormat, service: &str) -> TraceExport {
    init_tracing_with(format, service, None)
}

static RING: OnceLock<LogRing> = OnceLock::new();

/// [`init_tracing`], also keeping the process's last log lines in `ring`
/// (in the text format whatever `format` is; see [`LogRing`]), which
/// [`log_ring`] then hands out: to the tickets worker, which publishes
/// them.
pub fn init_tracing_with(format: LogFormat, service: &str, ring: Option<LogRing>) -> TraceExport {
    use tracing_subscriber::{EnvFilter, fmt, prelude::*};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (provider, failed) = match trace::provider(service) {
        Ok(p) => (p, None),
        Err(e) => (None, Some(e)),
    };
    let otel = provider.as_ref().map(trace::layer);
    let kept = ring
        .as_ref()
        .map(|r| text_layer(r.clone()).with_ansi(false));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(kept);
    let installed = match format {
        LogFormat::Text => registry.with(text_layer(std::io::stderr)).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if let (Ok(()), Some(ring)) = (installed, ring) {
        let _ = RING.set(ring);
    }
    if let Some(e) = failed {
        tracing::error!(error = %e, "span export is off");
    }
    trace::export(provider)
}

/// The ring installed by [`init_tracing_with`]; `None` when none was.
pub fn log_ring() -> Option<LogRing> {
    RING.get().cloned()
}

/// The human-readable log format: one line per event, whatever the
/// fields hold (control characters are escaped, see `escape`).
fn text_layer<S, W>(
    writer: W,
) -> tracing_subscriber::fmt::Layer<
    S,
    escape::EscapedFields,
    tracing_subscriber::fmt::format::Format,
    W,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(escape::EscapedFields::default())
        .with_writer(writer)
}

/// Bucket boundaries (seconds) for latency histograms: from 5 ms to 2 min,
/// so both a warm acquire (~ms) and a cold start (~1 s) land in a useful bucket.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. Every
/// histogram whose name ends in `_seconds` gets [`LATENCY_BUCKETS`].
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("bucket list is non-empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if something else installed a recorder first (a test
            // harness); metrics then go there and this handle renders none.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

type Collector = Box<dyn Fn(&mut String) + Send + Sync>;

static COLLECTORS: std::sync::Mutex<Vec<Collector>> = std::sync::Mutex::new(Vec::new());

/// Adds series rendered at scrape time: for per-entity gauges (one per
/// live session) whose series must vanish with the entity, which the
/// recorder cannot forget.
pub fn add_collector(f: impl Fn(&mut String) + Send + Sync + 'static) {
    COLLECTORS
        .lock()
        .expect("collectors lock")
        .push(Box::new(f));
}

/// Renders the Prometheus text exposition of every metric in the process.
pub fn render_metrics() -> String {
    let mut out = metrics_handle().render();
    for c in COLLECTORS.lock().expect("collectors lock").iter() {
        c(&mut out);
    }
    out
}

/// One probe answer: 200 or 503 with a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub ok: bool,
    pub body: serde_json::Value,
}

impl Probe {
    pub fn ok(body: serde_json::Value) -> Self {
        Self { ok: true, body }
    }

    pub fn unavailable(body: serde_json::Value) -> Self {
        Self { ok: false, body }
    }
}

/// Readiness and startup of a service, for `/api/v1/health/{ready,startup}`.
#[async_trait::async_trait]
pub trait Probes: Send + Sync {
    async fn ready(&self) -> Probe;
    async fn startup(&self) -> Probe;
}

/// The probes of a service whose readiness is "its store answers and it is
/// not shutting down" (policy, plugins): one piece, so the bodies, the
/// 2-second store timeout, the reasons, the gRPC health answer
/// ([`StoreProbes::readiness`]) and failing at shutdown
/// ([`StoreProbes::shut_down_on`]) cannot drift between services.
pub struct StoreProbes {
    check: StoreCheck,
    startup_ms: u64,
    shutting_down: tokio_util::sync::CancellationToken,
}

type StoreCheck = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync,
>;

impl StoreProbes {
    /// `check` answers whether the store responds (a cheap query);
    /// `started` is when the service began building.
    pub fn new<F, Fut>(started: std::time::Instant, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = bool> + Send + 'static,
    {
        Self {
            check: Box::new(move || Box::pin(check())),
            startup_ms: started.elapsed().as_millis() as u64,
            shutting_down: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Readiness fails from now on (`shutting_down`).
    pub fn shut_down(&self) {
        self.shutting_down.cancel();
    }

    /// Readiness fails from the moment `shutdown` is cancelled: what every
    /// service running these probes does when it begins to stop.
    pub fn shut_down_on(
        self: &std::sync::Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let probes = self.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            probes.shut_down();
        });
    }

    /// The readiness check as the gRPC health service asks it
    /// (`csp_rpc::Health::follow`): ready when [`StoreProbes::not_ready`]
    /// has no reason, so the HTTP probes and gRPC health always agree.
    pub fn readiness(
        self: &std::sync::Arc<Self>,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
    + Send
    + Sync
    + 'static {
        let probes = self.clone();
        move || {
            let probes = probes.clone();
            Box::pin(async move { probes.not_ready().await.is_none() })
        }
    }

    /// Why the service is not ready, or `None` when it is.
    pub async fn not_ready(&self) -> Option<&'static str> {
        if self.shutting_down.is_cancelled() {
            return Some("shutting_down");
        }
        let check = (self.check)();
        match tokio::time::timeout(std::time::Duration::from_secs(2), check).await {
            Ok(true) => None,
            _ => Some("database_unavailable"),
        }
    }
}

#[async_trait::async_trait]
impl Probes for StoreProbes {
    async fn ready(&self) -> Probe {
        match self.not_ready().await {
            None => Probe::ok(serde_json::json!({"status": "ready"})),
            Some(reason) => {
                Probe::unavailable(serde_json::json!({"status": "not_ready", "reason": reason}))
            }
        }
    }

    async fn startup(&self) -> Probe {
        Probe::ok(serde_json::json!({
            "status": "started",
            "startup_duration_ms": self.startup_ms,
        }))
    }
}

fn probe_response(p: Probe) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = if p.ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(p.body)).into_response()
}

/// An HTTP listener for `/metrics` and the probes (live, ready, startup),
/// for the services whose API is gRPC (the gateway serves them on its own port).
pub struct MetricsServer {
    listener: tokio::net::TcpListener,
}

impl MetricsServer {
    pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: tokio::net::TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run(
        self,
        shutdown: tokio_util::sync::CancellationToken,
        probes: std::sync::Arc<dyn Probes>,
    ) -> std::io::Result<()> {
        use axum::routing::get;
        let ready = probes.clone();
        let app = axum::Router::new()
            .route(
                "/api/v1/health/ready",
                get(move || async move { probe_response(ready.ready().await) }),
            )
            .route(
                "/api/v1/health/startup",
                get(move || async move { probe_response(probes.startup().await) }),
            )
            .route(
                "/metrics",
                get(|| async {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        render_metrics(),
                    )
                }),
            )
            .route(
                "/api/v1/health/live",
                get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
            );
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_metrics_with_buckets() {
        let h = metrics_handle();
        metrics::gauge!("csp_test_gauge").set(3.0);
        metrics::histogram!("csp_test_duration_seconds").record(0.02);
        let text = h.render();
        assert!(text.contains("csp_test_gauge 3"), "{text}");
        assert!(
            text.contains("csp_test_duration_seconds_bucket{le=\"0.025\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn log_format_parses() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("xml".parse::<LogFormat>().is_err());
    }

    #[tokio::test]
    async fn store_probes_say_why_a_service_is_not_ready() {
        let store_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let up = store_up.clone();
        let probes = StoreProbes::new(std::time::Instant::now(), move || {
            let up = up.load(std::sync::atomic::Ordering::SeqCst);
            async move { up }
        });
        let ready = probes.ready().await;
        assert_eq!(ready, Probe::ok(serde_json::json!({"status": "ready"})));
        let startup = probes.startup().await;
        assert!(startup.ok);
        assert_eq!(startup.body["status"], "started");
        assert!(startup.body["startup_duration_ms"].is_u64(), "{startup:?}");

        store_up.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            probes.ready().await,
            Probe::unavailable(
                serde_json::json!({"status": "not_ready", "reason": "database_unavailable"})
            )
        );

        store_up.store(true, std::sync::atomic::Ordering::SeqCst);
        probes.shut_down();
        assert_eq!(
            probes.ready().await,
            Probe::unavailable(
                serde_json::json!({"status": "not_ready", "reason": "shutting_down"})
            )
        );
    }
}
