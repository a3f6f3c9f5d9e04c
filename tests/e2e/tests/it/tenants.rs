//! The Tenants page's API end to end (issue 16 item 3), in both modes: the
//! connector registry, a CSV inventory upload, and "Import history" from the
//! fake ServiceDesk Plus through REST, its progress polled until completed
//! and the history counted in the database.

use crate::tickets::{history_rows, sdp, start};
use csp_e2e::Mode;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn tenants_page_api(mode: Mode) {
    let t = start(mode, &[]).await;
    let sdp = sdp(250, &[]).await;
    t.tenant("acme", &sdp.base_url()).await;

    // The form's tools and fields, from the connector registry.
    let (status, body) = t.call(Method::GET, "/api/v1/tool-types", None).await;
    assert_eq!(status, 200, "{body}");
    let tools: Vec<&str> = body["tool_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tool_type"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["servicedesk_plus", "jira", "zendesk"]);
    assert_eq!(body["tool_types"][0]["fields"][0]["kind"], "url", "{body}");

    // An inventory file as CSV; a bad row is named.
    let upload = |file: &'static str| {
        t.csp
            .http()
            .post(format!("{}/api/v1/tenants/acme/inventory", t.csp.base))
            .bearer_auth(&t.admin)
            .header("content-type", "text/csv")
            .body(file)
            .send()
    };
    let resp = upload("ip,hostname,role\n10.0.0.1,vpn-gw-01,\"VPN, gateway\"\n10.0.0.2,db1,\n")
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"upserted": 2}));
    let resp = upload("ip,hostname\n10.0.0.3,a\nnot-an-ip,b\n")
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["message"], "row 3: ip must be an IPv4 or IPv6 address",
        "{body}"
    );

    // Import history: started in the background, polled until it ends.
    let path = "/api/v1/tenants/acme/import";
    let (status, body) = t.call(Method::POST, path, Some(json!({"days": 90}))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (&body["started"], &body["state"]),
        (&json!(true), &json!("running"))
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (status, body) = t.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "{body}");
        if body["state"] != "running" {
            break body;
        }
        assert!(Instant::now() < deadline, "still running: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        (&done["imported"], &done["total"]),
        (&json!(250), &json!(250)),
        "{done}"
    );
    assert!(done["finished_at"].is_string(), "{done}");
    assert_eq!(history_rows(&t.csp, "acme").await, 250);

    sdp.shutdown().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_page_api_dev() {
    tenants_page_api(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_page_api_distributed() {
    tenants_page_api(Mode::Distributed).await;
}
