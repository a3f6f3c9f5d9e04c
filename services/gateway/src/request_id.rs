//! Every request's id: the trace id of the request's span when traces are
//! recorded, else a random one of the same shape (32 lower-case hex
//! digits). It answers as `x-request-id`, names the request in the logs
//! and, for a webhook, becomes the job's correlation id, so one id finds
//! the delivery, the job and its trace. A caller cannot choose it.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

/// The response header carrying the id.
pub(crate) const HEADER: &str = "x-request-id";

/// The id of the request being handled (an extension set by [`assign`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(pub(crate) String);

impl RequestId {
    /// The W3C `traceparent` that continues this request's trace, for a
    /// call whose span has no recorded context (no exporter): the trace id
    /// is the request id, so the callee's correlation is still the trace.
    pub(crate) fn traceparent(&self) -> String {
        let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        format!("00-{}-{span_id}-01", self.0)
    }
}

/// Opens the request's span, assigns its id and returns it as a header.
pub(crate) async fn assign(mut req: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "http.request",
        http.method = %req.method(),
        request.id = tracing::field::Empty,
    );
    let id = trace_id(&span).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    span.record("request.id", id.as_str());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}

/// The trace id `span` records under, if traces are recorded.
fn trace_id(span: &tracing::Span) -> Option<String> {
    csp_telemetry::context_of(span)
        .into_iter()
        .find(|(k, _)| *k == "traceparent")
        .and_then(|(_, v)| trace_id_of(&v))
}

/// The trace id of a `traceparent` value (`00-<trace id>-<span id>-<flags>`),
/// unless it is the invalid all-zero one.
pub(crate) fn trace_id_of(traceparent: &str) -> Option<String> {
    let id = traceparent.split('-').nth(1)?;
    let valid = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && id.bytes().any(|b| b != b'0');
    valid.then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_made_from_an_id_carries_it() {
        let id = RequestId(uuid::Uuid::new_v4().simple().to_string());
        let tp = id.traceparent();
        assert_eq!(trace_id_of(&tp).as_deref(), Some(id.0.as_str()));
        assert_eq!(tp.len(), 55, "{tp}");
        assert_eq!(
            trace_id_of("00-00000000000000000000000000000000-0000000000000001-01"),
            None
        );
        assert_eq!(trace_id_of("00-XYZ-1-01"), None);
        assert_eq!(trace_id_of("junk"), None);
    }
}
