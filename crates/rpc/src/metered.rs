//! gRPC request metrics of every csp server: `csp_grpc_requests_total`
//! (`method`, `code`) and `csp_grpc_request_duration_seconds` (`method`);
//! and the server span of every call (`grpc.server`), which continues the
//! caller's trace from the `traceparent` metadata.
//!
//! The status of a gRPC call is in its trailers, which arrive after the last
//! message (a stream may run for hours), so a call is recorded when its
//! response body ends: at the `grpc-status` trailer, or at the headers of a
//! trailers-only answer (a refused or failed call), or as `CANCELLED` when
//! the client went away first. `method` is the full path for methods the
//! service's access table knows and `unknown` otherwise, so a caller cannot
//! mint label values.

use crate::auth::AccessTable;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

pub const GRPC_REQUESTS: &str = "csp_grpc_requests_total";
pub const GRPC_DURATION: &str = "csp_grpc_request_duration_seconds";

pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        GRPC_REQUESTS,
        Unit::Count,
        "gRPC calls served, by method and status code"
    );
    describe_histogram!(
        GRPC_DURATION,
        Unit::Seconds,
        "gRPC call duration until its status, by method"
    );
}

/// The canonical name of a `grpc-status` value.
fn code_name(code: &str) -> &'static str {
    match code {
        "0" => "OK",
        "1" => "CANCELLED",
        "2" => "UNKNOWN",
        "3" => "INVALID_ARGUMENT",
        "4" => "DEADLINE_EXCEEDED",
        "5" => "NOT_FOUND",
        "6" => "ALREADY_EXISTS",
        "7" => "PERMISSION_DENIED",
        "8" => "RESOURCE_EXHAUSTED",
        "9" => "FAILED_PRECONDITION",
        "10" => "ABORTED",
        "11" => "OUT_OF_RANGE",
        "12" => "UNIMPLEMENTED",
        "13" => "INTERNAL",
        "14" => "UNAVAILABLE",
        "15" => "DATA_LOSS",
        "16" => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

fn method_label(table: AccessTable, path: &str) -> String {
    if crate::auth::infrastructure(path) || table(path).is_some() {
        path.to_owned()
    } else {
        "unknown".to_owned()
    }
}

/// Records one call.
struct Call {
    method: String,
    started: Instant,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: &'static str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        metrics::counter!(GRPC_REQUESTS, "method" => self.method.clone(), "code" => code)
            .increment(1);
        metrics::histogram!(GRPC_DURATION, "method" => self.method.clone())
            .record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish("CANCELLED");
    }
}

/// The metrics layer; put it outside the [`crate::Guard`] so refused calls
/// count too.
#[derive(Clone, Copy)]
pub struct Metered {
    table: AccessTable,
}

impl Metered {
    pub fn new(table: AccessTable) -> Self {
        Self { table }
    }
}

impl<S> tower::Layer<S> for Metered {
    type Service = MeteredService<S>;
    fn layer(&self, inner: S) -> MeteredService<S> {
        MeteredService {
            inner,
            table: self.table,
        }
    }
}

#[derive(Clone)]
pub struct MeteredService<S> {
    inner: S,
    table: AccessTable,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for MeteredService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let mut call = Call {
            method: method_label(self.table, req.uri().path()),
            started: Instant::now(),
            done: false,
        };
        let span = tracing::info_span!(
            "grpc.server",
            otel.kind = "server",
            rpc.method = %call.method,
            otel.status_code = tracing::field::Empty,
        );
        csp_telemetry::set_parent(&span, |k| {
            req.headers().get(k)?.to_str().ok().map(str::to_owned)
        });
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        Box::pin(tracing::Instrument::instrument(
            async move {
                let response = match future.await {
                    Ok(r) => r,
                    Err(e) => {
                        call.finish("INTERNAL");
                        return Err(e);
                    }
                };
                // Trailers-only: the status is in the headers already.
                if let Some(code) = response.headers().get("grpc-status") {
                    call.finish(code_name(code.to_str().unwrap_or("")));
                    return Ok(response);
                }
                Ok(response.map(|body| tonic::body::Body::new(MeteredBody { body, call })))
            },
            span,
        ))
    }
}

/// A response body that records its call when the status trailer passes.
struct MeteredBody {
    body: tonic::body::Body,
    call: Call,
}

impl Body for MeteredBody {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    this.call.finish(code_name(code.to_str().unwrap_or("")));
                }
            }
            Poll::Ready(Some(Err(_))) => this.call.finish("INTERNAL"),
            // Ended without a status trailer: tonic always sends one, so
            // this is a transport ending the stream.
            Poll::Ready(None) => this.call.finish("UNKNOWN"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
