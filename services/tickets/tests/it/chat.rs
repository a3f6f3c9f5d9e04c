//! Ticket context for chat agents: the grants of tenants to users, the
//! tenants a user may bind a chat session to, and the ticket tools a chat
//! agent calls through the session-pool (`RunChatTool`), against the store
//! and the fake ServiceDesk Plus of `csp-mock-ticketing`.

use crate::helpers::*;
use csp_domain::{
    AUDIT_TOPIC, AuditEvent, AuditStatus, ErrorCode, HistorySource, Role, TenantId, UserId,
};
use csp_mock_ticketing::{MockRequest, MockSdp, RunningMock};
use csp_proto::v1 as pb;
use csp_store::HistoryTicket;
use csp_store::test_support::Backend;
use pb::chat_tool_request::Tool;
use serde_json::Value;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const A: &str = "tenant-a";
const B: &str = "tenant-b";
const SDP_KEY: &str = "sdp-key-Cq5w8Ne2";

fn grant_request(tenant: &str, user: &str) -> pb::TenantGrantRequest {
    pb::TenantGrantRequest {
        tenant_id: tenant.into(),
        user_id: user.into(),
    }
}

fn similar(query: &str, limit: u32) -> Tool {
    Tool::SimilarTickets(pb::SimilarTicketsQuery {
        query: query.into(),
        limit,
    })
}

fn kb(query: &str) -> Tool {
    Tool::Kb(pb::KbSearch {
        query: query.into(),
        limit: 0,
    })
}

fn ip(ip: &str) -> Tool {
    Tool::Ip(pb::IpLookup { ip: ip.into() })
}

fn ticket(id: &str) -> Tool {
    Tool::Ticket(pb::TicketLookup {
        ticket_id: id.into(),
    })
}

fn note(id: &str, text: &str) -> Tool {
    Tool::Note(pb::InternalNote {
        ticket_id: id.into(),
        text: text.into(),
    })
}

fn history(id: &str, description: &str, resolution: &str) -> HistoryTicket {
    HistoryTicket {
        ticket_id: id.into(),
        description: description.into(),
        resolution: resolution.into(),
        resolved_date: OffsetDateTime::parse("2025-02-01T10:00:00Z", &Rfc3339).unwrap(),
        tags: vec!["vpn".into()],
    }
}

/// The text of a tool's answer as JSON.
#[track_caller]
fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The ids of the tickets a `similar_tickets` answer lists.
fn ticket_ids(answer: &Value) -> Vec<&str> {
    answer["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("no tickets: {answer}"))
        .iter()
        .map(|t| t["ticket_id"].as_str().unwrap())
        .collect()
}

/// An INVALID_ARGUMENT whose message names `field`.
#[track_caller]
fn invalid_naming(e: &tonic::Status, field: &str) {
    assert_eq!(code(e), ErrorCode::InvalidRequest, "{e:?}");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        message(e).contains(&format!("`{field}`")),
        "{} does not name {field}",
        message(e)
    );
}

impl Running {
    async fn grant(
        &self,
        token: &str,
        tenant: &str,
        user: &str,
    ) -> Result<pb::TenantGrants, tonic::Status> {
        self.client()
            .grant_tenant(as_(token, grant_request(tenant, user)))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn revoke(
        &self,
        token: &str,
        tenant: &str,
        user: &str,
    ) -> Result<pb::TenantGrants, tonic::Status> {
        self.client()
            .revoke_tenant(as_(token, grant_request(tenant, user)))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn grants(&self, token: &str, tenant: &str) -> Result<pb::TenantGrants, tonic::Status> {
        self.client()
            .list_tenant_grants(as_(
                token,
                pb::TenantRequest {
                    tenant_id: tenant.into(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn chat_tenants(&self, token: &str) -> Result<Vec<String>, tonic::Status> {
        self.client()
            .list_chat_tenants(as_(token, pb::ListChatTenantsRequest {}))
            .await
            .map(|r| {
                r.into_inner()
                    .tenants
                    .into_iter()
                    .map(|t| t.tenant_id)
                    .collect()
            })
    }

    async fn delete(&self, tenant: &str) {
        self.client()
            .delete_tenant(as_(
                &self.admin,
                pb::TenantRequest {
                    tenant_id: tenant.into(),
                },
            ))
            .await
            .unwrap();
    }

    /// One tool call as the session-pool makes it (a service token), for
    /// `user` with `role`; the answer's text.
    async fn tool_as(
        &self,
        token: &str,
        tenant: &str,
        user: &str,
        role: &str,
        tool: Tool,
    ) -> Result<String, tonic::Status> {
        self.client()
            .run_chat_tool(as_(
                token,
                pb::ChatToolRequest {
                    tenant_id: tenant.into(),
                    user_id: user.into(),
                    role: role.into(),
                    session_id: uuid::Uuid::new_v4().to_string(),
                    tool: Some(tool),
                },
            ))
            .await
            .map(|r| r.into_inner().text)
    }

    async fn tool(
        &self,
        tenant: &str,
        user: &str,
        role: &str,
        tool: Tool,
    ) -> Result<String, tonic::Status> {
        self.tool_as(&service_token(), tenant, user, role, tool)
            .await
    }

    async fn add_history(&self, tenant: &str, tickets: &[HistoryTicket]) {
        self.shared
            .store
            .upsert_ticket_history(
                &TenantId::parse(tenant).unwrap(),
                tickets,
                HistorySource::BulkImport,
                self.now(),
            )
            .await
            .unwrap();
    }

    /// A ServiceDesk Plus tenant on `sdp` with `prefs`.
    async fn sdp_tenant(
        &self,
        id: &str,
        sdp: &RunningMock,
        prefs: pb::EnhancementPreferences,
    ) -> pb::CreatedTenant {
        self.try_create(pb::CreateTenantRequest {
            servicedesk_url: sdp.base_url(),
            api_key: SDP_KEY.into(),
            enhancement_preferences: Some(prefs),
            ..new_tenant(id)
        })
        .await
        .unwrap()
    }

    async fn audited(&self, action_prefix: &str) -> Vec<AuditEvent> {
        self.drain(AUDIT_TOPIC, Duration::from_millis(300))
            .await
            .iter()
            .map(|d| serde_json::from_slice::<AuditEvent>(&d.payload).unwrap())
            .filter(|e| e.tool_name.starts_with(action_prefix))
            .collect()
    }
}

pub(crate) async fn admins_grant_list_and_revoke_tenants_and_every_change_is_audited(
    backend: Backend,
) {
    let r = start(backend).await;
    r.create(A).await;
    r.create(B).await;
    let (user, user_token) = user(&r.shared.store, Role::User).await;
    let user = user.to_string();
    let before = r.now() - time::Duration::seconds(5);

    // Nobody is granted a new tenant.
    let listed = r.grants(&r.admin, A).await.unwrap();
    assert_eq!(listed.tenant_id, A);
    assert!(listed.grants.is_empty());

    // Granted: answered and listed with who granted it and when.
    let granted = r.grant(&r.admin, A, &user).await.unwrap();
    assert_eq!(granted.tenant_id, A);
    assert_eq!(granted.grants.len(), 1, "{granted:?}");
    let g = &granted.grants[0];
    assert_eq!(g.user_id, user);
    assert_eq!(g.granted_by, r.admin_id.to_string());
    let at = OffsetDateTime::parse(&g.granted_at, &Rfc3339).unwrap();
    assert!(
        at >= before && at <= r.now() + time::Duration::seconds(5),
        "{at}"
    );
    assert_eq!(r.grants(&r.admin, A).await.unwrap(), granted);
    // Only that tenant.
    assert!(r.grants(&r.admin, B).await.unwrap().grants.is_empty());

    // Idempotent: the grant stays as it was, by and at included.
    let (other_admin, other_admin_token) = crate::helpers::user(&r.shared.store, Role::Admin).await;
    let again = r.grant(&other_admin_token, A, &user).await.unwrap();
    assert_eq!(again, granted);
    assert_ne!(again.grants[0].granted_by, other_admin.to_string());

    // Revoked: gone; revoking again changes nothing and is no error.
    let revoked = r.revoke(&r.admin, A, &user).await.unwrap();
    assert_eq!(revoked.tenant_id, A);
    assert!(revoked.grants.is_empty());
    assert!(r.grants(&r.admin, A).await.unwrap().grants.is_empty());
    assert!(
        r.revoke(&r.admin, A, &user)
            .await
            .unwrap()
            .grants
            .is_empty()
    );

    // Unknown tenants (and ids that are no tenant id) and users.
    for tenant in ["nobody", "Not A Slug"] {
        let e = r.grant(&r.admin, tenant, &user).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::TenantNotFound, "{tenant}");
        assert_eq!(e.code(), tonic::Code::NotFound);
        let e = r.grants(&r.admin, tenant).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::TenantNotFound, "{tenant}");
        let e = r.revoke(&r.admin, tenant, &user).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::TenantNotFound, "{tenant}");
    }
    let nobody = uuid::Uuid::new_v4().to_string();
    for unknown in [nobody.as_str(), "not-a-user-id", ""] {
        let e = r.grant(&r.admin, A, unknown).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::NotFound, "{unknown:?}: {e:?}");
        assert_eq!(e.code(), tonic::Code::NotFound);
    }
    assert!(r.grants(&r.admin, A).await.unwrap().grants.is_empty());

    // A soft-deleted tenant can be neither granted nor revoked, nor its
    // grants listed; the grants it had are kept (they count again if it is
    // reactivated).
    r.grant(&r.admin, B, &user).await.unwrap();
    r.delete(B).await;
    for e in [
        r.grant(&r.admin, B, &user).await.unwrap_err(),
        r.revoke(&r.admin, B, &user).await.unwrap_err(),
        r.grants(&r.admin, B).await.unwrap_err(),
    ] {
        assert_eq!(code(&e), ErrorCode::TenantNotFound);
    }
    let kept = r
        .shared
        .store
        .tenant_grants(&TenantId::parse(B).unwrap())
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");

    // Admins only.
    r.grant(&r.admin, A, &user).await.unwrap();
    for token in [&r.operator, &r.user, &user_token] {
        let e = r.grant(token, A, &user).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::PermissionDenied);
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        let e = r.revoke(token, A, &user).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::PermissionDenied);
        let e = r.grants(token, A).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::PermissionDenied);
    }
    assert_eq!(r.grants(&r.admin, A).await.unwrap().grants.len(), 1);

    // The audit trail: each grant and revoke answered, by its admin, with
    // whether it changed anything; nothing for unknown or deleted tenants,
    // unknown users or refused callers.
    let events = r.audited("tenant.").await;
    let mut got: Vec<(String, Option<UserId>, Value)> = events
        .iter()
        .filter(|e| e.tool_name == "tenant.grant" || e.tool_name == "tenant.revoke")
        .map(|e| {
            assert_eq!(e.result_status, AuditStatus::Success, "{e:?}");
            (
                e.tool_name.clone(),
                e.user_id,
                serde_json::from_str(&e.sanitized_input).unwrap(),
            )
        })
        .collect();
    let event = |action: &str, by: UserId, tenant: &str, changed: bool| {
        (
            action.to_owned(),
            Some(by),
            serde_json::json!({"tenant_id": tenant, "user_id": user, "changed": changed}),
        )
    };
    let admin = r.admin_id;
    let mut want = vec![
        event("tenant.grant", admin, A, true),
        event("tenant.grant", other_admin, A, false),
        event("tenant.revoke", admin, A, true),
        event("tenant.revoke", admin, A, false),
        event("tenant.grant", admin, B, true),
        event("tenant.grant", admin, A, true),
    ];
    // The queue does not keep the order of background pushes.
    let key = |e: &(String, Option<UserId>, Value)| format!("{e:?}");
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
}

pub(crate) async fn chat_tenants_are_every_active_one_for_admins_and_the_granted_ones_for_others(
    backend: Backend,
) {
    let r = start(backend).await;
    for t in [A, B, "tenant-c", "tenant-d"] {
        r.create(t).await;
    }
    let (user, user_token) = user(&r.shared.store, Role::User).await;
    let (operator, operator_token) = crate::helpers::user(&r.shared.store, Role::Operator).await;
    r.grant(&r.admin, A, &user.to_string()).await.unwrap();
    r.grant(&r.admin, "tenant-c", &user.to_string())
        .await
        .unwrap();
    r.grant(&r.admin, B, &operator.to_string()).await.unwrap();
    r.delete("tenant-d").await;

    assert_eq!(
        r.chat_tenants(&r.admin).await.unwrap(),
        [A, B, "tenant-c"],
        "every active tenant, without a grant"
    );
    assert_eq!(r.chat_tenants(&user_token).await.unwrap(), [A, "tenant-c"]);
    assert_eq!(r.chat_tenants(&operator_token).await.unwrap(), [B]);
    assert!(r.chat_tenants(&r.user).await.unwrap().is_empty());
    let full = r
        .client()
        .list_chat_tenants(as_(&user_token, pb::ListChatTenantsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        full.tenants[0],
        pb::ChatTenant {
            tenant_id: A.into(),
            name: format!("{A} MSP"),
            tool_type: "servicedesk_plus".into(),
        }
    );

    // A granted tenant that is deleted is no longer listed; revoked neither.
    r.delete("tenant-c").await;
    assert_eq!(r.chat_tenants(&user_token).await.unwrap(), [A]);
    assert_eq!(r.chat_tenants(&r.admin).await.unwrap(), [A, B]);
    r.revoke(&r.admin, A, &user.to_string()).await.unwrap();
    assert!(r.chat_tenants(&user_token).await.unwrap().is_empty());

    // A service has no list of its own.
    let e = r.chat_tenants(&service_token()).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    // No token at all.
    let e = r
        .client()
        .list_chat_tenants(pb::ListChatTenantsRequest {})
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::Unauthenticated);
}

pub(crate) async fn chat_tools_read_only_a_tenant_the_user_may_see_now(backend: Backend) {
    let r = start(backend).await;
    r.create(A).await;
    r.create(B).await;
    r.add_history(
        A,
        &[
            history(
                "A-1",
                "kx500 VPN drops every hour",
                "Renewed the certificate",
            ),
            history("A-2", "Printer on floor 2 jams", "Replaced the roller"),
        ],
    )
    .await;
    r.add_history(
        B,
        &[
            history("B-1", "kx500 VPN drops every hour", "Rebooted the kx500"),
            history(
                "B-2",
                "kx500 VPN slow for the warehouse",
                "Moved to the new tunnel",
            ),
        ],
    )
    .await;
    let (granted, _) = user(&r.shared.store, Role::User).await;
    let granted = granted.to_string();
    r.grant(&r.admin, A, &granted).await.unwrap();

    // A granted user: tenant A's tickets, and only them, the tenant named.
    let text = r
        .tool(A, &granted, "user", similar("kx500 VPN", 10))
        .await
        .unwrap();
    assert!(text.contains(&format!("\"tenant_id\": \"{A}\"")), "{text}");
    let answer = json(&text);
    assert_eq!(answer["tenant_id"], A);
    assert_eq!(ticket_ids(&answer), ["A-1"], "{text}");
    let t = &answer["tickets"][0];
    assert_eq!(t["resolution"], "Renewed the certificate");
    assert_eq!(t["description"], "kx500 VPN drops every hour");
    assert_eq!(t["resolved_date"], "2025-02-01T10:00:00Z");
    assert_eq!(t["tags"], serde_json::json!(["vpn"]));
    // The default limit (proto3's 0) is some, a limit of 1 is one.
    let one = json(
        &r.tool(B, &r.admin_id.to_string(), "admin", similar("kx500 VPN", 1))
            .await
            .unwrap(),
    );
    assert_eq!(one["tenant_id"], B);
    assert_eq!(ticket_ids(&one).len(), 1);
    let b = json(
        &r.tool(B, &r.admin_id.to_string(), "admin", similar("kx500 VPN", 0))
            .await
            .unwrap(),
    );
    let mut ids = ticket_ids(&b);
    ids.sort();
    assert_eq!(ids, ["B-1", "B-2"]);

    // Not granted: refused with a message for the model, whatever the role
    // short of admin (an unknown one counts as a user).
    for role in ["user", "operator", "", "superuser"] {
        let e = r
            .tool(B, &granted, role, similar("kx500 VPN", 0))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::Forbidden, "{role}");
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(
            message(&e).contains(&format!("may not see tenant '{B}'")),
            "{}",
            message(&e)
        );
    }
    let (stranger, _) = user(&r.shared.store, Role::Operator).await;
    let e = r
        .tool(A, &stranger.to_string(), "operator", similar("kx500", 0))
        .await
        .unwrap_err();
    assert!(
        message(&e).contains("may not see tenant"),
        "{}",
        message(&e)
    );
    // An admin needs no grant (the role as the policy service reported it).
    let admin = json(
        &r.tool(A, &stranger.to_string(), "admin", similar("kx500 VPN", 0))
            .await
            .unwrap(),
    );
    assert_eq!(ticket_ids(&admin), ["A-1"]);

    // Revoked: refused from the next call; granted again: answered again.
    r.revoke(&r.admin, A, &granted).await.unwrap();
    let e = r
        .tool(A, &granted, "user", similar("kx500 VPN", 0))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::Forbidden);
    assert!(
        message(&e).contains("may not see tenant"),
        "{}",
        message(&e)
    );
    r.grant(&r.admin, A, &granted).await.unwrap();
    r.tool(A, &granted, "user", similar("kx500 VPN", 0))
        .await
        .unwrap();

    // Deleted: gone for everyone, admins and granted users alike.
    r.delete(A).await;
    let admin = r.admin_id.to_string();
    for (user, role) in [(granted.as_str(), "user"), (admin.as_str(), "admin")] {
        let e = r
            .tool(A, user, role, similar("kx500 VPN", 0))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::TenantNotFound, "{role}");
        assert_eq!(e.code(), tonic::Code::NotFound);
    }
    // Unknown tenants too.
    for tenant in ["nobody", "Not/A/Tenant", ""] {
        let e = r
            .tool(tenant, &granted, "admin", similar("kx500", 0))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::TenantNotFound, "{tenant:?}");
    }

    // Services only: the session-pool's token, not a user's, however high.
    for token in [&r.admin, &r.operator, &r.user] {
        let e = r
            .tool_as(
                token,
                B,
                &r.admin_id.to_string(),
                "admin",
                similar("kx500", 0),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::PermissionDenied);
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
    }
    let e = r
        .client()
        .run_chat_tool(pb::ChatToolRequest::default())
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::Unauthenticated);
}

pub(crate) async fn chat_tool_input_is_checked_naming_the_field(backend: Backend) {
    let r = start(backend).await;
    r.create(A).await;
    let admin = r.admin_id.to_string();
    let cases: Vec<(Tool, &str)> = vec![
        (similar("", 0), "query"),
        (similar("   ", 0), "query"),
        (similar("vpn", 99), "limit"),
        (similar("vpn", 21), "limit"),
        (similar(&"q".repeat(2001), 0), "query"),
        (kb(""), "query"),
        (ip("not-an-ip"), "ip"),
        (ip("10.0.0.256"), "ip"),
        (ip(""), "ip"),
        (ticket(""), "ticket_id"),
        (ticket("a\nb"), "ticket_id"),
        (note("1", ""), "text"),
        (note("", "text"), "ticket_id"),
        (note("1", &"a".repeat(10_001)), "text"),
    ];
    for (tool, field) in cases {
        let e = r.tool(A, &admin, "admin", tool).await.unwrap_err();
        invalid_naming(&e, field);
    }
    // No tool at all.
    let e = r
        .client()
        .run_chat_tool(as_(
            &service_token(),
            pb::ChatToolRequest {
                tenant_id: A.into(),
                user_id: admin.clone(),
                role: "admin".into(),
                session_id: String::new(),
                tool: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    // A user id that is no user id names no user.
    let e = r
        .tool(A, "not-a-uuid", "admin", similar("vpn", 0))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::NotFound);
}

pub(crate) async fn kb_and_ip_lookups_answer_the_sessions_tenant_only(backend: Backend) {
    let r = start(backend).await;
    r.create(A).await;
    r.create(B).await;
    let mut c = r.client();
    let article = |title: &str, url: &str| pb::KbArticle {
        title: title.into(),
        summary: "kx500 certificate".into(),
        url: url.into(),
        body: "Open the kx500 console and renew.".into(),
    };
    c.upsert_kb_articles(as_(
        &r.admin,
        pb::UpsertKbArticlesRequest {
            tenant_id: A.into(),
            articles: vec![article("Reset the kx500 VPN", "https://kb.a.example/1")],
        },
    ))
    .await
    .unwrap();
    c.upsert_kb_articles(as_(
        &r.admin,
        pb::UpsertKbArticlesRequest {
            tenant_id: B.into(),
            articles: vec![
                article("Reset the kx500 VPN", "https://kb.b.example/1"),
                article("kx500 firmware", "https://kb.b.example/2"),
            ],
        },
    ))
    .await
    .unwrap();
    let system = |host: &str, client: &str| pb::SystemInfo {
        ip: "10.0.0.5".into(),
        hostname: host.into(),
        role: "vpn gateway".into(),
        client: client.into(),
        location: "DC1".into(),
    };
    for (tenant, host) in [(A, "vpn-a"), (B, "vpn-b")] {
        c.upsert_inventory(as_(
            &r.admin,
            pb::UpsertInventoryRequest {
                tenant_id: tenant.into(),
                systems: vec![system(host, tenant)],
            },
        ))
        .await
        .unwrap();
    }
    let (user, _) = user(&r.shared.store, Role::User).await;
    let user = user.to_string();
    r.grant(&r.admin, A, &user).await.unwrap();

    let found = json(&r.tool(A, &user, "user", kb("kx500 VPN")).await.unwrap());
    assert_eq!(found["tenant_id"], A);
    let articles = found["articles"].as_array().unwrap();
    assert_eq!(articles.len(), 1, "{found}");
    assert_eq!(
        articles[0],
        serde_json::json!({
            "title": "Reset the kx500 VPN",
            "summary": "kx500 certificate",
            "url": "https://kb.a.example/1",
            "excerpt": "Open the kx500 console and renew.",
        })
    );

    let found = json(&r.tool(A, &user, "user", ip("10.0.0.5")).await.unwrap());
    assert_eq!(
        found,
        serde_json::json!({
            "tenant_id": A,
            "ip": "10.0.0.5",
            "systems": [{
                "ip": "10.0.0.5", "hostname": "vpn-a", "role": "vpn gateway",
                "client": A, "location": "DC1",
            }],
        })
    );
    // An address the tenant has no system at: none, not another's.
    let found = json(&r.tool(A, &user, "user", ip(" 2001:db8::9 ")).await.unwrap());
    assert_eq!(found["ip"], "2001:db8::9");
    assert_eq!(found["systems"], serde_json::json!([]));
    // The user may not see B's.
    let e = r.tool(B, &user, "user", ip("10.0.0.5")).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::Forbidden);
    let e = r.tool(B, &user, "user", kb("kx500")).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::Forbidden);
}

pub(crate) async fn tickets_are_read_and_notes_posted_through_the_tenants_tool(backend: Backend) {
    let r = start(backend).await;
    let sdp = RunningMock::start(
        MockSdp::builder()
            .authtoken(SDP_KEY)
            .request(MockRequest::open(
                101,
                "VPN drops",
                "The kx500 VPN drops every hour.",
                "High",
            ))
            .build(),
    )
    .await
    .unwrap();
    let sdp_b = RunningMock::start(
        MockSdp::builder()
            .authtoken(SDP_KEY)
            .request(MockRequest::open(101, "B's ticket", "Not A's.", "Low"))
            .build(),
    )
    .await
    .unwrap();
    r.sdp_tenant(
        A,
        &sdp,
        pb::EnhancementPreferences {
            note_format: "html".into(),
            ..Default::default()
        },
    )
    .await;
    r.sdp_tenant(
        B,
        &sdp_b,
        pb::EnhancementPreferences {
            note_format: "markdown".into(),
            ..Default::default()
        },
    )
    .await;
    let (operator, _) = user(&r.shared.store, Role::Operator).await;
    let operator = operator.to_string();
    r.grant(&r.admin, A, &operator).await.unwrap();

    // get_ticket: A's ticket from A's tool.
    let got = json(
        &r.tool(A, &operator, "operator", ticket("101"))
            .await
            .unwrap(),
    );
    assert_eq!(got["tenant_id"], A);
    let t = &got["ticket"];
    assert_eq!(t["ticket_id"], "101");
    assert_eq!(t["subject"], "VPN drops");
    assert!(
        t["description"]
            .as_str()
            .unwrap()
            .contains("The kx500 VPN drops every hour."),
        "{got}"
    );
    assert_eq!(t["priority"], "High");
    // A ticket the tool does not have, and an id the tool cannot take.
    let e = r
        .tool(A, &operator, "operator", ticket("999"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::NotFound, "{e:?}");
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(message(&e).contains("'999'"), "{}", message(&e));
    let e = r
        .tool(A, &operator, "operator", ticket("a/b"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    assert!(message(&e).contains("ticket_id"), "{}", message(&e));

    // add_internal_note: posted once, internal, in A's format (HTML).
    let posted = json(
        &r.tool(
            A,
            &operator,
            "operator",
            note("101", "Reset the **bold** token.\n\nThen reconnect."),
        )
        .await
        .unwrap(),
    );
    assert_eq!(posted["tenant_id"], A);
    assert_eq!(posted["ticket_id"], "101");
    assert_eq!(posted["posted"], true);
    let notes = sdp.mock().notes_for(101);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(sdp.mock().note_posts(), 1);
    let n = &notes[0];
    assert_eq!(posted["note_id"], n.id.to_string());
    assert!(!n.show_to_requester);
    assert!(
        n.description.contains("<strong>bold</strong>"),
        "{}",
        n.description
    );
    assert!(!n.description.contains("**bold**"), "{}", n.description);
    assert!(sdp_b.mock().notes().is_empty(), "nothing on B's tool");
    // Markdown that would be script stays text.
    r.tool(
        A,
        &operator,
        "operator",
        note("101", "<script>alert(1)</script>"),
    )
    .await
    .unwrap();
    let notes = sdp.mock().notes_for(101);
    assert_eq!(notes.len(), 2, "one note per call");
    assert!(
        !notes[1].description.contains("<script>"),
        "{}",
        notes[1].description
    );
    // A ticket the tool does not have: nothing posted.
    let e = r
        .tool(A, &operator, "operator", note("999", "hello"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::NotFound, "{e:?}");
    assert!(sdp.mock().notes_for(999).is_empty());
    assert_eq!(sdp.mock().notes().len(), 2);

    // A markdown tenant gets the Markdown as written, on its own tool.
    r.tool(B, &r.admin_id.to_string(), "admin", note("101", "**bold**"))
        .await
        .unwrap();
    let notes = sdp_b.mock().notes_for(101);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].description.contains("**bold**"),
        "{}",
        notes[0].description
    );
    assert!(!notes[0].description.contains("<strong>"));
    assert_eq!(sdp.mock().notes().len(), 2, "nothing more on A's tool");

    // Not granted: nothing read, nothing posted.
    let e = r
        .tool(B, &operator, "operator", note("101", "x"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::Forbidden);
    assert_eq!(sdp_b.mock().notes().len(), 1);
}

pub(crate) async fn text_for_the_model_is_redacted_and_masked_when_the_tenant_asks(
    backend: Backend,
) {
    let r = start(backend).await;
    let sdp = RunningMock::start(
        MockSdp::builder()
            .authtoken(SDP_KEY)
            .request(MockRequest::open(
                7,
                "VPN password=hunter2",
                "Log in with password=hunter2 and key AKIAIOSFODNN7EXAMPLE",
                "High",
            ))
            .build(),
    )
    .await
    .unwrap();
    r.sdp_tenant(A, &sdp, pb::EnhancementPreferences::default())
        .await;
    r.sdp_tenant(
        B,
        &sdp,
        pb::EnhancementPreferences {
            mask_pii: true,
            ..Default::default()
        },
    )
    .await;
    let secret_history = [history(
        "S-1",
        "kx500 VPN: the config says password=hunter2, key AKIAIOSFODNN7EXAMPLE; mail jane.doe@example.com",
        "Rotated password=hunter2 and AKIAIOSFODNN7EXAMPLE",
    )];
    r.add_history(A, &secret_history).await;
    r.add_history(B, &secret_history).await;
    r.client()
        .upsert_kb_articles(as_(
            &r.admin,
            pb::UpsertKbArticlesRequest {
                tenant_id: A.into(),
                articles: vec![pb::KbArticle {
                    title: "kx500 VPN".into(),
                    summary: "token: AKIAIOSFODNN7EXAMPLE".into(),
                    url: "https://kb.a.example/1".into(),
                    body: "Set password=hunter2 on the kx500.".into(),
                }],
            },
        ))
        .await
        .unwrap();
    let admin = r.admin_id.to_string();
    let secrets = ["hunter2", "AKIAIOSFODNN7EXAMPLE"];
    let answers = [
        r.tool(A, &admin, "admin", similar("kx500 VPN", 0))
            .await
            .unwrap(),
        r.tool(A, &admin, "admin", kb("kx500")).await.unwrap(),
        r.tool(A, &admin, "admin", ticket("7")).await.unwrap(),
    ];
    for text in &answers {
        assert!(text.contains("[REDACTED]"), "{text}");
        for s in secrets {
            assert!(!text.contains(s), "{s} in {text}");
        }
    }
    let found = json(&answers[0]);
    assert_eq!(ticket_ids(&found), ["S-1"]);
    let description = found["tickets"][0]["description"].as_str().unwrap();
    assert!(description.contains("[REDACTED]"), "{description}");
    assert!(description.starts_with("kx500 VPN"), "{description}");
    // Without mask_pii the e-mail stays; with it, it is masked.
    assert!(
        description.contains("jane.doe@example.com"),
        "{description}"
    );
    let masked = r
        .tool(B, &admin, "admin", similar("kx500 VPN", 0))
        .await
        .unwrap();
    assert!(!masked.contains("jane.doe@example.com"), "{masked}");
    assert!(masked.contains("[EMAIL]"), "{masked}");
    for s in secrets {
        assert!(!masked.contains(s), "{s} in {masked}");
    }
}
