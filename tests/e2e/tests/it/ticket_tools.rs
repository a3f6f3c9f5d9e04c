//! Ticket context for chat agents end to end (issue 15): the built-in
//! `tickets` plugin activated like any other, an operator granted tenant A
//! chatting in a session bound to A, and the real Claude Code CLI calling
//! the built-in MCP server (`csp mcp tickets`, inside the agent's sandbox)
//! on the scripted model's request — in `csp dev` and in multi-service mode.
//!
//! What must hold: the tools answer from A's data only; a crafted input
//! naming tenant B gets nothing of B's; every call is in the audit log; a
//! user may read but not write a note; a tenant nobody granted cannot be
//! bound; a revoked grant silences the tools of a session bound before.

use crate::governance::{audit_row, call, frame, new_user, ready};
use crate::plugins::tool_turn;
use crate::tickets::{HOST, KB_TITLE, Tickets, sdp, start};
use csp_e2e::{Mode, Ws};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const VPN: &str = "The VPN client disconnects every few minutes; the VPN gateway at 10.0.0.1 logs certificate errors.";
const OPEN_TICKET: u64 = 930001;

fn content(frames: &[Value]) -> String {
    let result = frame(frames, "tool_result");
    result["content"].as_str().unwrap_or_default().to_owned()
}

/// A session of `token` bound to `tenant` whose agent has the built-in
/// tools. The plugins service tells the session-pool and the policy
/// service about an activation asynchronously; until both know, a new
/// session's CLI lacks the tool or the gate does not know its role, so
/// this retries with a fresh session for a while.
async fn bound_session(t: &Tickets, token: &str, tenant: &str) -> (Ws, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut ws = t.csp.ws(token, &format!("tenant={tenant}")).await.unwrap();
        let session = ready(&mut ws).await;
        let turn = tool_turn(
            &mut ws,
            "mcp__tickets__lookup_ip",
            json!({"ip": "10.0.0.1"}),
        )
        .await;
        let result = frame(&turn, "tool_result");
        if result["status"] == "complete" {
            return (ws, session);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the built-in tools never reached a new session: {result}"
        );
        ws.close().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn grant(t: &Tickets, tenant: &str, user_id: &str, method: Method) -> Value {
    let (status, body) = t
        .call(
            method,
            &format!("/api/v1/tenants/{tenant}/grants/{user_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn ticket_tools(mode: Mode) {
    let t = start(mode, &[]).await;
    let sdp = sdp(0, &[OPEN_TICKET]).await;
    let a = t.tenant("tenant-a", &sdp.base_url()).await;
    let b = t.tenant("tenant-b", &sdp.base_url()).await;
    t.resolved("tenant-a", &a, "A-1001", VPN).await;
    for id in ["B-2001", "B-2002"] {
        t.resolved("tenant-b", &b, id, VPN).await;
    }
    t.context("tenant-a").await;

    // The built-in plugin is listed like any other and activated by an admin.
    let (status, body) = t.call(Method::GET, "/api/v1/plugins/tickets", None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = t
        .call(Method::POST, "/api/v1/plugins/tickets/activate", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "activated", "{body}");

    let (op_id, _, op) = new_user(&t.csp, &t.admin, "operator", None).await;
    // Nobody granted the operator a tenant yet: no tenant to chat about.
    let (status, body) = call(&t.csp, Method::GET, "/api/v1/chat/tenants", Some(&op), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenants"], json!([]), "{body}");
    let refused = t.csp.ws(&op, "tenant=tenant-a").await;
    assert!(refused.is_err(), "an ungranted tenant was bound");

    let grants = grant(&t, "tenant-a", &op_id, Method::PUT).await;
    assert_eq!(grants["grants"][0]["user_id"], op_id.as_str(), "{grants}");
    let (_, me) = call(&t.csp, Method::GET, "/api/v1/me", Some(&t.admin), None).await;
    let admin_id = me["user_id"].as_str().expect("the admin's id").to_owned();
    let row = audit_row(&t.csp, &t.admin, &admin_id, |r| {
        r["tool_name"] == "tenant.grant" && r["sanitized_input"].as_str().unwrap().contains(&op_id)
    })
    .await;
    assert_eq!(row["result_status"], "success", "{row}");
    let (_, body) = call(&t.csp, Method::GET, "/api/v1/chat/tenants", Some(&op), None).await;
    assert_eq!(body["tenants"][0]["tenant_id"], "tenant-a", "{body}");
    assert!(
        t.csp.ws(&op, "tenant=tenant-b").await.is_err(),
        "tenant B was bound without a grant"
    );

    let (mut ws, session) = bound_session(&t, &op, "tenant-a").await;

    // Similar tickets come from A's history, and the call is audited.
    let turn = tool_turn(
        &mut ws,
        "mcp__tickets__search_similar_tickets",
        json!({"query": VPN}),
    )
    .await;
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "complete", "{result}");
    let found = content(&turn);
    assert!(found.contains("A-1001"), "{found}");
    assert!(found.contains("\"tenant_id\": \"tenant-a\""), "{found}");
    assert!(
        !found.contains("B-200"),
        "B's tickets reached A's session: {found}"
    );
    let row = audit_row(&t.csp, &t.admin, &op_id, |r| {
        r["tool_name"] == "mcp__tickets__search_similar_tickets"
    })
    .await;
    assert_eq!(row["result_status"], "success", "{row}");
    assert_eq!(row["session_id"], session.as_str(), "{row}");

    // A crafted input naming tenant B gets nothing of B's.
    let turn = tool_turn(
        &mut ws,
        "mcp__tickets__search_similar_tickets",
        json!({"query": VPN, "tenant_id": "tenant-b"}),
    )
    .await;
    let refused = content(&turn);
    assert!(refused.contains("`tenant_id` is not an input"), "{refused}");
    assert!(!refused.contains("B-200"), "{refused}");

    // The knowledge base and the inventory are A's.
    let turn = tool_turn(
        &mut ws,
        "mcp__tickets__search_kb",
        json!({"query": "VPN certificate"}),
    )
    .await;
    assert!(content(&turn).contains(KB_TITLE), "{turn:?}");
    let turn = tool_turn(
        &mut ws,
        "mcp__tickets__lookup_ip",
        json!({"ip": "10.0.0.1"}),
    )
    .await;
    assert!(content(&turn).contains(HOST), "{turn:?}");

    // The ticket itself, and an internal note on it (operator+).
    let turn = tool_turn(
        &mut ws,
        "mcp__tickets__get_ticket",
        json!({"ticket_id": OPEN_TICKET.to_string()}),
    )
    .await;
    assert!(
        content(&turn).contains("VPN keeps disconnecting"),
        "{turn:?}"
    );
    let turn = tool_turn(
        &mut ws,
        "mcp__tickets__add_internal_note",
        json!({"ticket_id": OPEN_TICKET.to_string(), "text": "Checked with **csp**: renew the VPN client certificate."}),
    )
    .await;
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "complete", "{result}");
    let notes = sdp.mock().notes_for(OPEN_TICKET);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].description.contains("<strong>csp</strong>"),
        "{notes:?}"
    );

    // A revoked grant silences the tools of the session bound before.
    grant(&t, "tenant-a", &op_id, Method::DELETE).await;
    let turn = tool_turn(
        &mut ws,
        "mcp__tickets__search_similar_tickets",
        json!({"query": VPN}),
    )
    .await;
    let silenced = content(&turn);
    assert!(silenced.contains("may not see tenant"), "{silenced}");
    assert!(!silenced.contains("A-1001"), "{silenced}");
    ws.close().await;

    // A user granted A may read, not write.
    let (user_id, _, user) = new_user(&t.csp, &t.admin, "user", None).await;
    grant(&t, "tenant-a", &user_id, Method::PUT).await;
    let (mut ws, _) = bound_session(&t, &user, "tenant-a").await;
    let turn = tool_turn(
        &mut ws,
        "mcp__tickets__add_internal_note",
        json!({"ticket_id": OPEN_TICKET.to_string(), "text": "not allowed"}),
    )
    .await;
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "denied", "{result}");
    assert_eq!(sdp.mock().notes_for(OPEN_TICKET).len(), 1);
    ws.close().await;

    sdp.shutdown().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_tools_for_chat_agents_dev() {
    ticket_tools(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_tools_for_chat_agents_distributed() {
    ticket_tools(Mode::Distributed).await;
}
