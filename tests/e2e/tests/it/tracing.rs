//! Distributed tracing end to end: an OTLP receiver in the test (the real
//! OTLP/gRPC `TraceService`), csp in multi-service mode exporting to it, and
//! one chat turn with a tool call whose spans from the gateway, the
//! session-pool and the policy service share one trace id.

use crate::governance::{frame, ready};
use csp_e2e::{Csp, Mode, Options};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Received {
    service: String,
    trace_id: Vec<u8>,
    name: String,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                got.push(Received {
                    service: service.clone(),
                    trace_id: span.trace_id,
                    name: span.name,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn receiver() -> (Receiver, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let r = Receiver::default();
    let service = TraceServiceServer::new(r.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (r, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_follows_a_turn_across_gateway_session_pool_and_policy() {
    let (received, endpoint) = receiver().await;
    let csp = Csp::start(
        Mode::Distributed,
        Options {
            env: vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint),
                // Export within a moment, not the default 5 s.
                ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
            ],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let admin = csp.login().await.unwrap();
    let mut ws = csp.ws(&admin, "").await.unwrap();
    ready(&mut ws).await;
    ws.send(json!({"type": "send", "text": "run echo traced"}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    assert_eq!(
        frame(&turn, "tool_result")["status"],
        "complete",
        "{turn:?}"
    );

    // The trace of the turn: the one with the session-pool's `turn` span.
    let wanted = [
        "ws.send",
        "grpc.server",
        "turn",
        "tool",
        "policy.check_tool",
        "ws.relay",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (names, services) = loop {
        let spans = received.0.lock().unwrap().clone();
        let by_trace = spans
            .iter()
            .fold(BTreeMap::<&[u8], Vec<&Received>>::new(), |mut m, s| {
                m.entry(&s.trace_id).or_default().push(s);
                m
            });
        let found = by_trace
            .values()
            .find(|spans| spans.iter().any(|s| s.name == "turn"))
            .map(|spans| {
                let names: BTreeSet<String> = spans.iter().map(|s| s.name.clone()).collect();
                let services: BTreeSet<String> = spans.iter().map(|s| s.service.clone()).collect();
                (names, services)
            });
        if let Some((names, services)) = &found
            && wanted.iter().all(|w| names.contains(*w))
            && services.len() >= 3
        {
            break found.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no complete trace of the turn; spans received: {:?}",
            spans
                .iter()
                .map(|s| (&s.service, &s.name))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for service in ["csp-gateway", "csp-session-pool", "csp-policy"] {
        assert!(
            services.contains(service),
            "{service} in the trace: {services:?} {names:?}"
        );
    }
    ws.close().await;
    csp.stop().await;
}
