//! Distributed tracing: spans of the `tracing` crate exported over OTLP
//! (gRPC) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace context
//! (`traceparent`, `tracestate`) carried across process boundaries.
//!
//! Transports differ (gRPC metadata, NATS message headers), so context is
//! handed over as plain key/value pairs: [`current_context`] to send, and
//! [`set_parent`] to continue a trace that arrived.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The variable that turns export on (the standard OTLP one).
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The header names of W3C trace context.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// Flushes and stops span export when dropped (keep it until exit).
pub struct TraceExport(Option<SdkTracerProvider>);

impl Drop for TraceExport {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("csp: could not flush the last spans: {e}");
        }
    }
}

/// An OTLP exporter for `service` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
/// (the exporter reads it and the other `OTEL_EXPORTER_OTLP_*` variables).
pub(crate) fn provider(service: &str) -> Result<Option<SdkTracerProvider>, String> {
    if std::env::var_os(ENDPOINT_VAR).is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("{ENDPOINT_VAR}: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

pub(crate) fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("csp"))
}

pub(crate) fn export(provider: Option<SdkTracerProvider>) -> TraceExport {
    TraceExport(provider)
}

/// The trace context of the current span, as header pairs to send along
/// (empty when no trace is being recorded).
pub fn current_context() -> Vec<(&'static str, String)> {
    context_of(&tracing::Span::current())
}

/// The trace context of `span`, as header pairs.
pub fn context_of(span: &tracing::Span) -> Vec<(&'static str, String)> {
    struct Pairs(Vec<(&'static str, String)>);
    impl Injector for Pairs {
        fn set(&mut self, key: &str, value: String) {
            if let Some(k) = TRACE_HEADERS.iter().find(|k| **k == key) {
                self.0.push((k, value));
            }
        }
    }
    let mut pairs = Pairs(Vec::new());
    TraceContextPropagator::new().inject_context(&span.context(), &mut pairs);
    pairs.0
}

/// Makes `span` continue the trace whose context `get` finds (by header
/// name); does nothing without one.
pub fn set_parent(span: &tracing::Span, get: impl Fn(&str) -> Option<String>) {
    struct Lookup<F>(F, Vec<String>);
    impl<F: Fn(&str) -> Option<String>> Extractor for Lookup<F> {
        fn get(&self, key: &str) -> Option<&str> {
            let i = TRACE_HEADERS.iter().position(|k| *k == key)?;
            self.1.get(i).map(String::as_str).filter(|v| !v.is_empty())
        }
        fn keys(&self) -> Vec<&str> {
            TRACE_HEADERS.to_vec()
        }
    }
    let values: Vec<String> = TRACE_HEADERS
        .iter()
        .map(|k| get(k).unwrap_or_default())
        .collect();
    if values[0].is_empty() {
        return;
    }
    let lookup = Lookup(&get, values);
    let cx = TraceContextPropagator::new().extract(&lookup);
    let _ = span.set_parent(cx);
}
