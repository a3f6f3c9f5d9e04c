//! Observability end to end: every service's `/metrics` during a chat turn
//! with a tool call, in multi-service mode — the ten metrics of US-012 with
//! their exact names and types and plausible values, and the request
//! metrics of HTTP and gRPC with bounded labels.

use crate::governance::{frame, ready};
use csp_e2e::{Csp, Mode, Options};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// One scrape: `# TYPE` per metric, and every sample line.
#[derive(Default)]
struct Scrape {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn parse(text: &str, into: &mut Scrape) {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            into.types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or(f64::NAN);
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|kv| !kv.is_empty())
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.trim_matches('"').to_owned()))
            })
            .collect();
        into.samples.push((name.to_owned(), labels, value));
    }
}

impl Scrape {
    fn values(&self, name: &str) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| *v)
            .collect()
    }

    fn label_keys(&self, name: &str) -> Vec<Vec<String>> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, _)| l.keys().cloned().collect())
            .collect()
    }
}

async fn scrape_each(csp: &Csp) -> BTreeMap<&'static str, Scrape> {
    let mut out = BTreeMap::new();
    for (service, url) in csp.metrics_urls() {
        let text = csp
            .http()
            .get(&url)
            .bearer_auth(csp_e2e::METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap();
        parse(&text, out.entry(service).or_default());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_service_exposes_the_seed_metrics_during_a_turn() {
    let csp = Csp::start(
        Mode::Distributed,
        Options {
            env: vec![("CSP_LIMIT_CHECK_MS".into(), "200".into())],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let admin = csp.login().await.unwrap();
    let mut ws = csp.ws(&admin, "").await.unwrap();
    ready(&mut ws).await;
    ws.send(json!({"type": "send", "text": "run echo observed"}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    assert_eq!(
        frame(&turn, "tool_result")["status"],
        "complete",
        "{turn:?}"
    );

    // The session's memory is sampled on the limit check's period.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let scrapes = loop {
        let s = scrape_each(&csp).await;
        if !s["session-pool"]
            .values("csp_subprocess_rss_bytes")
            .is_empty()
        {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "no RSS sample");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        scrapes.keys().copied().collect::<Vec<_>>(),
        ["gateway", "plugins", "policy", "session-pool"],
        "every service serves /metrics"
    );

    // (name, type, the service that records it, plausible)
    type Check = fn(&[f64]) -> bool;
    let seed: [(&str, &str, &str, Check); 10] = [
        ("csp_active_sessions", "gauge", "session-pool", |v| {
            v.iter().sum::<f64>() >= 1.0
        }),
        ("csp_prewarm_pool_depth", "gauge", "session-pool", |v| {
            v.iter().all(|x| *x >= 0.0)
        }),
        (
            "csp_session_init_duration_seconds",
            "histogram",
            "session-pool",
            |_| true,
        ),
        ("csp_subprocess_rss_bytes", "gauge", "session-pool", |v| {
            v.iter().all(|x| *x > 10e6 && *x < 8e9)
        }),
        ("csp_api_cost_usd_total", "counter", "session-pool", |v| {
            v.iter().sum::<f64>() > 0.0
        }),
        ("csp_query_error_total", "counter", "session-pool", |v| {
            v.len() >= 9 && v.iter().all(|x| *x >= 0.0)
        }),
        ("csp_circuit_breaker_state", "gauge", "session-pool", |v| {
            v == [0.0]
        }),
        ("csp_websocket_connections", "gauge", "gateway", |v| {
            v.iter().sum::<f64>() >= 1.0
        }),
        (
            "csp_tool_execution_duration_seconds",
            "histogram",
            "session-pool",
            |_| true,
        ),
        ("csp_tool_execution_total", "counter", "session-pool", |v| {
            v.iter().sum::<f64>() >= 1.0
        }),
    ];
    for (name, kind, service, plausible) in seed {
        let s = &scrapes[service];
        assert_eq!(
            s.types.get(name).map(String::as_str),
            Some(kind),
            "{name} on {service}"
        );
        let values = if kind == "histogram" {
            s.values(&format!("{name}_count"))
        } else {
            s.values(name)
        };
        assert!(!values.is_empty(), "{name} has samples");
        if kind == "histogram" {
            assert!(
                values.iter().sum::<f64>() >= 1.0,
                "{name} observed: {values:?}"
            );
            assert!(
                !s.values(&format!("{name}_bucket")).is_empty(),
                "{name} has buckets"
            );
        }
        assert!(plausible(&values), "{name}: {values:?}");
    }
    assert_eq!(
        scrapes["session-pool"]
            .samples
            .iter()
            .find(|(n, l, _)| n == "csp_tool_execution_total"
                && l.get("tool").map(String::as_str) == Some("Bash"))
            .map(|(_, l, _)| l.get("status").cloned()),
        Some(Some("complete".into()))
    );

    // Request metrics: route/method and status only.
    let gw = &scrapes["gateway"];
    assert_eq!(
        gw.types.get("csp_http_requests_total").map(String::as_str),
        Some("counter")
    );
    for keys in gw.label_keys("csp_http_requests_total") {
        assert_eq!(keys, ["route", "status"]);
    }
    assert!(
        gw.samples
            .iter()
            .any(|(n, l, v)| n == "csp_http_requests_total"
                && l["route"] == "/api/v1/auth/login"
                && l["status"] == "200"
                && *v >= 1.0),
        "the login was counted"
    );
    for service in ["session-pool", "policy", "plugins"] {
        let s = &scrapes[service];
        assert_eq!(
            s.types.get("csp_grpc_requests_total").map(String::as_str),
            Some("counter"),
            "{service}"
        );
        assert_eq!(
            s.types
                .get("csp_grpc_request_duration_seconds")
                .map(String::as_str),
            Some("histogram"),
            "{service}"
        );
        for keys in s.label_keys("csp_grpc_requests_total") {
            assert_eq!(keys, ["code", "method"], "{service}");
        }
    }
    let policy = &scrapes["policy"];
    assert!(
        policy
            .samples
            .iter()
            .any(|(n, l, v)| n == "csp_grpc_requests_total"
                && l["method"] == "/csp.v1.Policy/CheckTool"
                && l["code"] == "OK"
                && *v >= 1.0),
        "the tool's permission check was counted"
    );
    let pool = &scrapes["session-pool"];
    assert!(
        pool.samples
            .iter()
            .any(|(n, l, _)| n == "csp_grpc_requests_total"
                && l["method"] == "/csp.v1.SessionPool/Send"),
        "the turn's Send was counted"
    );
    ws.close().await;
    csp.stop().await;
}
