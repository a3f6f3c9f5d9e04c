//! "Import history" over gRPC: `ListToolTypes`, `StartImport` and
//! `GetImport` against the fake ServiceDesk Plus, one import per tenant at a
//! time, its progress read from another replica sharing the cache.

use crate::helpers::*;
use csp_domain::{AUDIT_TOPIC, AuditEvent, ErrorCode, TenantId};
use csp_mock_ticketing::{MockSdp, RunningMock};
use csp_proto::v1 as pb;
use csp_store::test_support::Backend;
use std::time::Duration;

const SDP_KEY: &str = "sdp-import-key-0123456789";

/// A tenant `id` of the ServiceDesk Plus at `url`.
async fn sdp_tenant(r: &Running, id: &str, url: &str) {
    r.try_create(pb::CreateTenantRequest {
        servicedesk_url: url.to_owned(),
        api_key: SDP_KEY.to_owned(),
        ..new_tenant(id)
    })
    .await
    .unwrap();
}

fn start_req(id: &str) -> pb::StartImportRequest {
    pb::StartImportRequest {
        tenant_id: id.into(),
        ..Default::default()
    }
}

async fn progress(r: &Running, id: &str) -> pb::ImportProgress {
    r.client()
        .get_import(as_(
            &r.admin,
            pb::TenantRequest {
                tenant_id: id.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Polls until the import is no longer running.
async fn ended(r: &Running, id: &str) -> pb::ImportProgress {
    for _ in 0..300 {
        let p = progress(r, id).await;
        if p.state != "running" {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import of {id} did not end");
}

/// A port that accepts connections and never answers: a tool that hangs,
/// so an import stays running.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

pub(crate) async fn tool_types_come_from_the_connector_registry(backend: Backend) {
    let r = start(backend).await;
    let list = r
        .client()
        .list_tool_types(as_(&r.admin, pb::ListToolTypesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = list
        .tool_types
        .iter()
        .map(|t| t.tool_type.as_str())
        .collect();
    assert_eq!(names, ["servicedesk_plus", "jira", "zendesk"]);
    let jira = &list.tool_types[1];
    assert_eq!(jira.display_name, "Jira Service Management");
    let token = jira
        .fields
        .iter()
        .find(|f| f.name == "jira_api_token")
        .unwrap();
    assert!(token.secret && token.required);
    let url = jira.fields.iter().find(|f| f.name == "jira_url").unwrap();
    assert_eq!((url.kind.as_str(), url.secret), ("url", false));
    let e = r
        .client()
        .list_tool_types(as_(&r.operator, pb::ListToolTypesRequest {}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
}

pub(crate) async fn an_import_runs_in_the_background_and_reports_its_progress(backend: Backend) {
    let r = start(backend).await;
    let sdp = RunningMock::start(MockSdp::builder().authtoken(SDP_KEY).resolved(250).build())
        .await
        .unwrap();
    sdp_tenant(&r, "acme", &sdp.base_url()).await;
    let mut c = r.client();
    // Nothing imported yet.
    let e = c
        .get_import(as_(
            &r.admin,
            pb::TenantRequest {
                tenant_id: "acme".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::NotFound);

    let started = c
        .start_import(as_(&r.admin, start_req("acme")))
        .await
        .unwrap()
        .into_inner();
    assert!(started.started);
    let first = started.progress.unwrap();
    assert_eq!(first.tenant_id, "acme");
    assert_eq!(first.state, "running");
    assert!(first.finished_at.is_empty());

    let done = ended(&r, "acme").await;
    assert_eq!(done.state, "completed", "{}", done.error);
    assert_eq!((done.imported, done.skipped), (250, 0));
    assert_eq!(done.total, Some(250));
    assert_eq!(done.pages, 3, "pages of 100");
    assert_eq!(done.started_at, first.started_at);
    assert!(!done.finished_at.is_empty());
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(
        r.shared.store.count_ticket_history(&acme).await.unwrap(),
        250
    );

    // Again: nothing stored twice, and a new run (started anew).
    let again = c
        .start_import(as_(&r.admin, start_req("acme")))
        .await
        .unwrap()
        .into_inner();
    assert!(again.started);
    assert_eq!(ended(&r, "acme").await.state, "completed");
    assert_eq!(
        r.shared.store.count_ticket_history(&acme).await.unwrap(),
        250
    );

    // Audited with the user and the period.
    let events: Vec<AuditEvent> = r
        .drain(AUDIT_TOPIC, Duration::from_millis(300))
        .await
        .iter()
        .map(|d| serde_json::from_slice(&d.payload).unwrap())
        .filter(|e: &AuditEvent| e.tool_name == "tenant.import")
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].user_id, Some(r.admin_id));
    assert!(events[0].sanitized_input.contains("\"tenant_id\":\"acme\""));
    assert!(!events[0].sanitized_input.contains(SDP_KEY));
    sdp.shutdown().await;
}

pub(crate) async fn a_failed_import_says_why(backend: Backend) {
    let r = start(backend).await;
    let sdp = RunningMock::start(MockSdp::builder().authtoken("another-key").build())
        .await
        .unwrap();
    sdp_tenant(&r, "acme", &sdp.base_url()).await;
    let mut c = r.client();
    c.start_import(as_(&r.admin, start_req("acme")))
        .await
        .unwrap();
    let p = ended(&r, "acme").await;
    assert_eq!(p.state, "failed");
    assert!(
        p.error.contains("rejected the tenant's api_key"),
        "{}",
        p.error
    );
    assert!(!p.error.contains(SDP_KEY));
    assert!(!p.finished_at.is_empty());

    // Refused before anything runs: no tenant, a deleted one, a bad period,
    // another role.
    for (req, want) in [
        (start_req("nobody"), ErrorCode::TenantNotFound),
        (
            pb::StartImportRequest {
                start_date: "2026-02-01".into(),
                end_date: "2026-01-01".into(),
                ..start_req("acme")
            },
            ErrorCode::InvalidRequest,
        ),
    ] {
        let e = c.start_import(as_(&r.admin, req)).await.unwrap_err();
        assert_eq!(code(&e), want, "{}", message(&e));
    }
    c.delete_tenant(as_(
        &r.admin,
        pb::TenantRequest {
            tenant_id: "acme".into(),
        },
    ))
    .await
    .unwrap();
    let e = c
        .start_import(as_(&r.admin, start_req("acme")))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    assert!(message(&e).contains("inactive"), "{}", message(&e));
    let e = c
        .start_import(as_(&r.operator, start_req("acme")))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
    sdp.shutdown().await;
}

pub(crate) async fn one_import_per_tenant_at_a_time_seen_from_every_replica(backend: Backend) {
    let a = start(backend).await;
    let b = start_on(a.shared.clone(), Options::default()).await;
    let (hanging, hole) = black_hole().await;
    sdp_tenant(&a, "acme", &hanging).await;

    let first = a
        .client()
        .start_import(as_(&a.admin, start_req("acme")))
        .await
        .unwrap()
        .into_inner();
    assert!(first.started);
    // A second start, on the other replica, answers the running one.
    let second = b
        .client()
        .start_import(as_(&b.admin, start_req("acme")))
        .await
        .unwrap()
        .into_inner();
    assert!(!second.started);
    let (p1, p2) = (first.progress.unwrap(), second.progress.unwrap());
    assert_eq!(p2.state, "running");
    assert_eq!(p2.started_at, p1.started_at);
    assert_eq!(progress(&b, "acme").await.state, "running");

    // The replica running it stops: the import says so, everywhere, and
    // may start again at once.
    drop(a);
    let p = ended(&b, "acme").await;
    assert_eq!(p.state, "failed");
    assert!(p.error.contains("stopped"), "{}", p.error);
    let again = b
        .client()
        .start_import(as_(&b.admin, start_req("acme")))
        .await
        .unwrap()
        .into_inner();
    assert!(again.started);
    hole.abort();
}

pub(crate) async fn an_edit_is_tested_with_the_stored_secrets(backend: Backend) {
    let r = start(backend).await;
    let sdp = RunningMock::start(MockSdp::builder().authtoken(SDP_KEY).build())
        .await
        .unwrap();
    sdp_tenant(&r, "acme", &sdp.base_url()).await;
    let test = |s: pb::ConnectionSettings| {
        let mut c = r.client();
        let token = r.admin.clone();
        async move {
            c.test_connection(as_(
                &token,
                pb::TestConnectionRequest {
                    target: Some(pb::test_connection_request::Target::Settings(s)),
                },
            ))
            .await
        }
    };
    let edit = |tenant: &str, url: &str, key: &str| pb::ConnectionSettings {
        tool_type: "servicedesk_plus".into(),
        servicedesk_url: url.into(),
        api_key: key.into(),
        tenant_id: tenant.into(),
        ..Default::default()
    };
    // The key left empty (or as shown) is the stored one.
    for key in ["", "[REDACTED]"] {
        let ok = test(edit("acme", &sdp.base_url(), key))
            .await
            .unwrap()
            .into_inner();
        assert!(ok.ok, "{key:?}: {}", ok.reason);
    }
    // Without the tenant, an empty key is missing.
    let missing = test(edit("", &sdp.base_url(), ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!missing.ok);
    assert_eq!(missing.reason, "api_key is required");
    // A key typed in is tried as typed, and never echoed.
    let wrong = test(edit("acme", &sdp.base_url(), "typed-wrong-key-123"))
        .await
        .unwrap()
        .into_inner();
    assert!(!wrong.ok);
    assert!(
        !wrong.reason.contains("typed-wrong-key-123"),
        "{}",
        wrong.reason
    );
    // The edited URL is the one tried, with the stored key.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let moved = test(edit("acme", &nowhere, "")).await.unwrap().into_inner();
    assert!(!moved.ok);
    assert!(!moved.reason.contains(SDP_KEY), "{}", moved.reason);
    // Another tool, or no such tenant.
    let e = test(pb::ConnectionSettings {
        tool_type: "jira".into(),
        ..edit("acme", &sdp.base_url(), "")
    })
    .await
    .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidTenant);
    let e = test(edit("nobody", &sdp.base_url(), "")).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::TenantNotFound);
    sdp.shutdown().await;
}
