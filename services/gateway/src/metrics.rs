//! Metric names recorded by the gateway. Labels are bounded: a route
//! template, never a raw path.

/// Open browser WebSockets (gauge).
pub(crate) const WEBSOCKET_CONNECTIONS: &str = "csp_websocket_connections";
/// HTTP requests (counter; labels `route`, `status`).
pub(crate) const HTTP_REQUESTS: &str = "csp_http_requests_total";
/// HTTP request latency, seconds (histogram; label `route`).
pub(crate) const HTTP_DURATION: &str = "csp_http_request_duration_seconds";
/// WebSockets closed because the browser read too slowly (counter).
pub(crate) const SLOW_CONSUMER_CLOSES: &str = "csp_websocket_slow_consumer_total";

pub(crate) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        WEBSOCKET_CONNECTIONS,
        Unit::Count,
        "Open browser WebSockets"
    );
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests by route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route"
    );
    describe_counter!(
        SLOW_CONSUMER_CLOSES,
        Unit::Count,
        "WebSockets closed because the browser read too slowly"
    );
}
