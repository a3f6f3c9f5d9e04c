//! Roles on every RPC, cost caps, and the audit log, over real gRPC.

use super::{Running, start, start_with, tokens};
use csp_domain::{AUDIT_TOPIC, AuditEvent, AuditStatus, ErrorCode, Role, SessionId, UserId};
use csp_proto::v1 as pb;
use csp_store::test_support::{Backend, TestDb};
use csp_store::{NewUser, PgStore, SqliteStore, Store};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use time::macros::datetime;

/// A clock the test moves.
struct TestClock(Mutex<OffsetDateTime>);

impl csp_policy::Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

async fn user(r: &Running, name: &str, role: Role, active: bool) -> (UserId, String) {
    let u = csp_store::test_support::user(&*r.store, name, role, active).await;
    let (token, _) = tokens().issue(u.user_id, name, role).unwrap();
    (u.user_id, token)
}

fn with<T>(token: Option<&str>, msg: T) -> tonic::Request<T> {
    match token {
        Some(t) => csp_rpc::bearer(msg, t),
        None => tonic::Request::new(msg),
    }
}

/// Calls `method` as `token` (None: anonymous) on a client without the
/// service interceptor; the status code only (Ok = admitted by the rules).
async fn call(r: &Running, method: &str, token: Option<&str>, me: UserId) -> Result<(), ErrorCode> {
    let mut c = pb::policy_client::PolicyClient::new(r.channel.clone());
    let uid = me.to_string();
    let res = match method {
        "Login" => c
            .login(with(
                token,
                pb::LoginRequest {
                    username: "nobody".into(),
                    password: "x".into(),
                },
            ))
            .await
            .map(drop),
        "GetUser" => c
            .get_user(with(token, pb::GetUserRequest { user_id: uid }))
            .await
            .map(drop),
        "ListUsers" => c
            .list_users(with(token, pb::ListUsersRequest {}))
            .await
            .map(drop),
        "CreateUser" => c
            .create_user(with(
                token,
                pb::CreateUserRequest {
                    username: format!("new-{}", uuid::Uuid::new_v4().simple()),
                    password: "long-enough-pw".into(),
                    role: "user".into(),
                    monthly_cost_cap_usd: None,
                },
            ))
            .await
            .map(drop),
        "UpdateUser" => c
            .update_user(with(
                token,
                pb::UpdateUserRequest {
                    user_id: uid,
                    monthly_cost_cap_usd: Some(50.0),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        "CheckTool" => c
            .check_tool(with(
                token,
                pb::CheckToolRequest {
                    user_id: uid,
                    tool_name: "Read".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        "AdmitTurn" => c
            .admit_turn(with(
                token,
                pb::AdmitTurnRequest {
                    user_id: uid,
                    session_id: String::new(),
                },
            ))
            .await
            .map(drop),
        "SettleTurn" => c
            .settle_turn(with(
                token,
                pb::SettleTurnRequest {
                    reservation_id: uuid::Uuid::new_v4().to_string(),
                    user_id: uid,
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        "GetBudget" => c
            .get_budget(with(token, pb::GetBudgetRequest { user_id: uid }))
            .await
            .map(drop),
        "ListAudit" => c
            .list_audit(with(token, pb::ListAuditRequest::default()))
            .await
            .map(drop),
        other => panic!("no call for {other}"),
    };
    res.map_err(|s| csp_rpc::error_code(&s))
}

fn denied(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unauthenticated | ErrorCode::PermissionDenied | ErrorCode::AccountDeactivated
    )
}

async fn every_rpc_admits_exactly_the_roles_it_names(backend: Backend) {
    let r = start(backend).await;
    let (admin_id, admin) = user(&r, "root", Role::Admin, true).await;
    let (op_id, op) = user(&r, "opal", Role::Operator, true).await;
    let (user_id, usr) = user(&r, "ursula", Role::User, true).await;
    let (gone_id, gone) = user(&r, "gone", Role::Admin, false).await;
    let svc = csp_rpc::ServiceToken::new(tokens(), "session-pool").token();
    // Every method of the service, from its descriptor: a new RPC without
    // a row here fails the test.
    let methods = [
        "Login",
        "GetUser",
        "ListUsers",
        "CreateUser",
        "UpdateUser",
        "CheckTool",
        "AdmitTurn",
        "SettleTurn",
        "GetBudget",
        "ListAudit",
    ];
    for m in methods {
        assert!(
            csp_policy::access(&format!("/csp.v1.Policy/{m}")).is_some(),
            "{m} has no rule"
        );
    }
    assert!(csp_policy::access("/csp.v1.Policy/Nope").is_none());
    // (method, anonymous, user, operator, admin, deactivated admin, service)
    let table: [(&str, [bool; 6]); 10] = [
        ("Login", [true, true, true, true, true, true]),
        ("GetUser", [false, false, false, false, false, true]),
        ("ListUsers", [false, false, false, true, false, false]),
        ("CreateUser", [false, false, false, true, false, false]),
        ("UpdateUser", [false, false, false, true, false, false]),
        ("CheckTool", [false, false, false, false, false, true]),
        ("AdmitTurn", [false, false, false, false, false, true]),
        ("SettleTurn", [false, false, false, false, false, true]),
        ("GetBudget", [false, true, true, true, true, true]),
        ("ListAudit", [false, false, false, true, false, false]),
    ];
    let callers: [(&str, Option<&str>, UserId); 6] = [
        ("anonymous", None, user_id),
        ("user", Some(&usr), user_id),
        ("operator", Some(&op), op_id),
        ("admin", Some(&admin), admin_id),
        ("deactivated", Some(&gone), gone_id),
        ("service", Some(&svc), user_id),
    ];
    for (method, allowed) in table {
        for (i, (who, token, me)) in callers.iter().enumerate() {
            let got = call(&r, method, *token, *me).await;
            let admitted = !matches!(got, Err(code) if denied(code));
            assert_eq!(admitted, allowed[i], "{method} as {who}: {got:?}");
        }
    }
    // A denial names the role that was missing.
    let mut c = pb::policy_client::PolicyClient::new(r.channel.clone());
    let err = c
        .list_users(with(Some(&op), pb::ListUsersRequest {}))
        .await
        .unwrap_err();
    assert_eq!(
        csp_rpc::user_message(&err).as_deref(),
        Some("Insufficient permissions. Required role: admin.")
    );
    // Current state wins over the token: an admin demoted by another admin
    // is refused on the next call with the token still valid.
    let (_, admin2) = user(&r, "second", Role::Admin, true).await;
    let mut as_admin2 = pb::policy_client::PolicyClient::new(r.channel.clone());
    as_admin2
        .update_user(with(
            Some(&admin2),
            pb::UpdateUserRequest {
                user_id: admin_id.to_string(),
                role: Some("user".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        call(&r, "ListUsers", Some(&admin), admin_id).await,
        Err(ErrorCode::PermissionDenied)
    );
    r.stop.cancel();
}

async fn the_gate_follows_the_current_role_and_names_a_downgrade(backend: Backend) {
    let mut r = start(backend).await;
    let (id, _) = user(&r, "opal", Role::Operator, true).await;
    let check = |tool: &str, session_role: &str| pb::CheckToolRequest {
        user_id: id.to_string(),
        session_id: SessionId::new().to_string(),
        tool_name: tool.into(),
        input_json: "{}".into(),
        tool_use_id: "toolu_1".into(),
        session_role: session_role.into(),
    };
    let ok = r
        .client
        .check_tool(check("Bash", "operator"))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.allowed, "{ok:?}");
    r.store
        .update_user(
            id,
            csp_store::UserUpdate {
                role: Some(Role::User),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let after = r
        .client
        .check_tool(check("Bash", "operator"))
        .await
        .unwrap()
        .into_inner();
    assert!(!after.allowed);
    assert_eq!(after.reason, "permissions_changed");
    assert_eq!(
        after.message,
        "Your permissions have changed. Some tools are no longer available."
    );
    // A user who never had it hears which role the tool needs.
    let never = r
        .client
        .check_tool(check("Bash", "user"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        never.message,
        "Tool 'Bash' was denied. This action requires operator access. Contact your administrator."
    );
    // Reading stays allowed for a user.
    assert!(
        r.client
            .check_tool(check("Read", "user"))
            .await
            .unwrap()
            .into_inner()
            .allowed
    );
    r.stop.cancel();
}

const MICRO: i64 = 1_000_000;

async fn admit(r: &mut Running, u: UserId) -> Result<pb::AdmitTurnResponse, tonic::Status> {
    r.client
        .admit_turn(pb::AdmitTurnRequest {
            user_id: u.to_string(),
            session_id: SessionId::new().to_string(),
        })
        .await
        .map(|x| x.into_inner())
}

async fn settle(r: &mut Running, u: UserId, a: &pb::AdmitTurnResponse, cost: f64) -> String {
    r.client
        .settle_turn(pb::SettleTurnRequest {
            reservation_id: a.reservation_id.clone(),
            user_id: u.to_string(),
            session_id: String::new(),
            cost_usd: cost,
            month: a.month.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .notice
}

async fn caps_warn_once_refuse_at_the_cap_and_reset_with_the_month(backend: Backend) {
    let clock = Arc::new(TestClock(Mutex::new(datetime!(2026-11-20 12:00 UTC))));
    let mut r = start_with(backend.store().await, clock.clone()).await;
    let (id, _) = user(&r, "capped", Role::User, true).await;
    r.store
        .update_user(
            id,
            csp_store::UserUpdate {
                monthly_cost_cap_micros: Some(Some(100 * MICRO)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // $79.50 spent, then a $1.50 turn: 81 %, told once.
    let a = admit(&mut r, id).await.unwrap();
    assert_eq!(settle(&mut r, id, &a, 79.5).await, "");
    let a = admit(&mut r, id).await.unwrap();
    assert_eq!(
        settle(&mut r, id, &a, 1.5).await,
        "You have used 81% of your $100 monthly budget."
    );
    let a = admit(&mut r, id).await.unwrap();
    assert_eq!(
        settle(&mut r, id, &a, 9.0).await,
        "",
        "the warning comes once a month"
    );
    // Settling twice counts once.
    assert_eq!(settle(&mut r, id, &a, 9.0).await, "");
    let a = admit(&mut r, id).await.unwrap();
    settle(&mut r, id, &a, 10.0).await;
    let err = admit(&mut r, id).await.unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::BudgetExceeded);
    assert_eq!(
        csp_rpc::user_message(&err).as_deref(),
        Some(
            "Monthly budget exceeded ($100.00/$100.00). Contact your administrator to increase your limit."
        )
    );
    let b = r
        .client
        .get_budget(pb::GetBudgetRequest {
            user_id: id.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (b.spent_usd, b.cap_usd, b.percent, b.month.as_str()),
        (100.0, Some(100.0), Some(100), "2026-11")
    );
    // Raising the cap lets the next message through.
    r.store
        .update_user(
            id,
            csp_store::UserUpdate {
                monthly_cost_cap_micros: Some(Some(200 * MICRO)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let a = admit(&mut r, id).await.unwrap();
    settle(&mut r, id, &a, 100.0).await;
    assert!(admit(&mut r, id).await.is_err(), "at $200/$200");
    // The first of the month: $0.00, allowed again.
    *clock.0.lock().unwrap() = datetime!(2026-12-01 00:00:01 UTC);
    let b = r
        .client
        .get_budget(pb::GetBudgetRequest {
            user_id: id.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((b.spent_usd, b.month.as_str()), (0.0, "2026-12"));
    let a = admit(&mut r, id).await.unwrap();
    assert_eq!(a.month, "2026-12");
    r.stop.cancel();
}

async fn concurrent_turns_overspend_at_most_what_was_admitted(backend: Backend) {
    let r = start(backend).await;
    let (id, _) = user(&r, "burst", Role::User, true).await;
    // $10 cap, $8 already spent, reserve $0.25 per turn (the default).
    r.store
        .update_user(
            id,
            csp_store::UserUpdate {
                monthly_cost_cap_micros: Some(Some(10 * MICRO)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut c = r.client.clone();
    let first = c
        .admit_turn(pb::AdmitTurnRequest {
            user_id: id.to_string(),
            session_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    c.settle_turn(pb::SettleTurnRequest {
        reservation_id: first.reservation_id,
        user_id: id.to_string(),
        session_id: String::new(),
        cost_usd: 8.0,
        month: first.month,
    })
    .await
    .unwrap();
    // Round 1: $2 headroom, turns cost what they reserve. Round 2: the cap
    // is raised to $12 ($2 headroom again), turns cost 1.6x their reserve.
    for (cap, turn_cost, label) in [
        (10.0, 0.25, "turns costing their reservation"),
        (12.0, 0.40, "turns costing 1.6x their reservation"),
    ] {
        r.store
            .update_user(
                id,
                csp_store::UserUpdate {
                    monthly_cost_cap_micros: Some(Some((cap * 1e6) as i64)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let before = c
            .get_budget(pb::GetBudgetRequest {
                user_id: id.to_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .spent_usd;
        // 64 turns arrive at once; each admitted one then costs `turn_cost`.
        let admitted: Vec<pb::AdmitTurnResponse> = futures::future::join_all((0..64).map(|_| {
            let mut c = r.client.clone();
            async move {
                c.admit_turn(pb::AdmitTurnRequest {
                    user_id: id.to_string(),
                    session_id: String::new(),
                })
                .await
                .ok()
                .map(|x| x.into_inner())
            }
        }))
        .await
        .into_iter()
        .flatten()
        .collect();
        for a in &admitted {
            c.settle_turn(pb::SettleTurnRequest {
                reservation_id: a.reservation_id.clone(),
                user_id: id.to_string(),
                session_id: String::new(),
                cost_usd: turn_cost,
                month: a.month.clone(),
            })
            .await
            .unwrap();
        }
        let spent = c
            .get_budget(pb::GetBudgetRequest {
                user_id: id.to_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .spent_usd;
        let overspend = (spent - cap).max(0.0);
        let headroom = cap - before;
        // Admission stops once spent + reserved reaches the cap, so the
        // admitted reservations exceed the headroom by less than one; what
        // turns cost beyond their reservation adds to that.
        let bound = 0.25 + admitted.len() as f64 * (turn_cost - 0.25f64).max(0.0);
        println!(
            "cap ${cap:.2}, {label}: 64 in flight, {} admitted with ${headroom:.2} headroom, spent ${spent:.2}, overspend ${overspend:.2} (bound ${bound:.2})",
            admitted.len()
        );
        assert_eq!(admitted.len(), 8, "$2 of headroom, $0.25 reserved each");
        assert!(
            overspend <= bound + 1e-9,
            "overspend {overspend} > bound {bound}"
        );
    }
    r.stop.cancel();
}

fn audit_event(user: UserId, tool: &str, input: &str, status: AuditStatus) -> AuditEvent {
    AuditEvent {
        audit_id: uuid::Uuid::new_v4(),
        timestamp_ms: (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        user_id: Some(user),
        session_id: Some(SessionId::new()),
        tool_name: tool.into(),
        sanitized_input: input.into(),
        result_status: status,
        execution_duration_ms: Some(12),
        cost_usd: Some(0.0),
    }
}

async fn audit_page(
    r: &Running,
    token: &str,
    user: Option<UserId>,
    before: i64,
) -> pb::ListAuditResponse {
    let mut c = pb::policy_client::PolicyClient::new(r.channel.clone());
    c.list_audit(with(
        Some(token),
        pb::ListAuditRequest {
            user_id: user.map(|u| u.to_string()).unwrap_or_default(),
            before_seq: before,
            ..Default::default()
        },
    ))
    .await
    .unwrap()
    .into_inner()
}

async fn wait_for_audit(r: &Running, token: &str, user: UserId, n: usize) -> Vec<pb::AuditEntry> {
    for _ in 0..100 {
        let mut all = Vec::new();
        let mut before = 0;
        loop {
            let page = audit_page(r, token, Some(user), before).await;
            all.extend(page.entries);
            if page.next_before_seq == 0 {
                break;
            }
            before = page.next_before_seq;
        }
        if all.len() >= n {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("audit entries never arrived");
}

async fn queued_audit_events_are_stored_once_redacted_and_paged(backend: Backend) {
    use csp_bus::Queue;
    let r = start(backend).await;
    let (admin_id, admin) = user(&r, "root", Role::Admin, true).await;
    let (u, _) = user(&r, "worker", Role::User, true).await;
    let secret = "curl -H 'Authorization: Bearer sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789' https://x";
    let first = audit_event(u, "Bash", secret, AuditStatus::Denied);
    let payload = bytes::Bytes::from(serde_json::to_vec(&first).unwrap());
    // Delivered twice (a producer retry): stored once.
    r.queue
        .push(AUDIT_TOPIC, &first.audit_id.to_string(), payload.clone())
        .await
        .unwrap();
    r.queue
        .push(AUDIT_TOPIC, &format!("{}-retry", first.audit_id), payload)
        .await
        .unwrap();
    for i in 0..249 {
        let status = [AuditStatus::Success, AuditStatus::Error][i % 2];
        let e = audit_event(
            u,
            "mcp__postgres-query__execute_sql",
            &format!("SELECT {i}"),
            status,
        );
        r.queue
            .push(
                AUDIT_TOPIC,
                &e.audit_id.to_string(),
                bytes::Bytes::from(serde_json::to_vec(&e).unwrap()),
            )
            .await
            .unwrap();
    }
    let all = wait_for_audit(&r, &admin, u, 250).await;
    assert_eq!(
        all.len(),
        250,
        "one row per event, the duplicate stored once"
    );
    let mut seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    seqs.dedup();
    assert_eq!(seqs.len(), 250);
    let denied = all
        .iter()
        .find(|e| e.audit_id == first.audit_id.to_string())
        .unwrap();
    assert_eq!(denied.result_status, "denied");
    assert!(
        !denied.sanitized_input.contains("sk-ant"),
        "{}",
        denied.sanitized_input
    );
    assert!(denied.sanitized_input.contains("[REDACTED]"));
    // Pages of 100: 100, 100, 50.
    let p1 = audit_page(&r, &admin, Some(u), 0).await;
    let p2 = audit_page(&r, &admin, Some(u), p1.next_before_seq).await;
    let p3 = audit_page(&r, &admin, Some(u), p2.next_before_seq).await;
    assert_eq!(
        (p1.entries.len(), p2.entries.len(), p3.entries.len()),
        (100, 100, 50)
    );
    assert_eq!(p3.next_before_seq, 0);

    // Admin actions are logged with the acting admin, without the password.
    let mut c = pb::policy_client::PolicyClient::new(r.channel.clone());
    c.create_user(with(
        Some(&admin),
        pb::CreateUserRequest {
            username: "newbie".into(),
            password: "a-long-password".into(),
            role: "operator".into(),
            monthly_cost_cap_usd: Some(25.0),
        },
    ))
    .await
    .unwrap();
    let mine = audit_page(&r, &admin, Some(admin_id), 0).await.entries;
    let created = mine
        .iter()
        .find(|e| e.tool_name == "admin.user.create")
        .expect("admin action logged");
    assert!(
        created.sanitized_input.contains("newbie") && created.sanitized_input.contains("operator")
    );
    assert!(!created.sanitized_input.contains("a-long-password"));
    let verified = csp_store::verify_audit_chain(&*r.store).await.unwrap();
    assert_eq!((verified.checked, verified.first_broken), (251, None));
    r.stop.cancel();
}

/// The Operations page's listing: only the actions asked for, newest
/// first, however many other rows lie between them; too many names or an
/// over-long one is refused.
async fn the_audit_log_lists_only_the_actions_asked_for(backend: Backend) {
    use csp_bus::Queue;
    let r = start(backend).await;
    let (_, admin) = user(&r, "root", Role::Admin, true).await;
    let (u, _) = user(&r, "worker", Role::User, true).await;
    let actions = [
        "tickets.pause",
        "Bash",
        "tickets.clear_queue",
        "tickets.processing",
        "Bash",
        "tickets.resume",
        "tickets.retry_x",
    ];
    for (i, tool) in actions.iter().enumerate() {
        let e = audit_event(u, tool, &format!("{{\"n\": {i}}}"), AuditStatus::Success);
        r.queue
            .push(
                AUDIT_TOPIC,
                &e.audit_id.to_string(),
                bytes::Bytes::from(serde_json::to_vec(&e).unwrap()),
            )
            .await
            .unwrap();
        // One at a time, so that seq follows the order pushed.
        wait_for_audit(&r, &admin, u, i + 1).await;
    }
    let c = pb::policy_client::PolicyClient::new(r.channel.clone());
    let list = |names: Vec<&str>, limit: u32| {
        let mut c = c.clone();
        let admin = admin.clone();
        let tool_names: Vec<String> = names.into_iter().map(String::from).collect();
        async move {
            c.list_audit(with(
                Some(&admin),
                pb::ListAuditRequest {
                    tool_names,
                    limit,
                    ..Default::default()
                },
            ))
            .await
        }
    };
    let ops = vec![
        "tickets.pause",
        "tickets.resume",
        "tickets.clear_queue",
        " tickets.reload_configs ",
        "tickets.retry",
        "",
    ];
    let page = list(ops.clone(), 20).await.unwrap().into_inner();
    let got: Vec<&str> = page.entries.iter().map(|e| e.tool_name.as_str()).collect();
    assert_eq!(
        got,
        ["tickets.resume", "tickets.clear_queue", "tickets.pause"],
        "exact names, newest first"
    );
    assert_eq!(page.next_before_seq, 0);
    // Paged like any listing.
    let first = list(ops.clone(), 2).await.unwrap().into_inner();
    assert_eq!(first.entries.len(), 2);
    assert_ne!(first.next_before_seq, 0);
    let next = c
        .clone()
        .list_audit(with(
            Some(&admin),
            pb::ListAuditRequest {
                tool_names: ops.iter().map(|s| s.to_string()).collect(),
                before_seq: first.next_before_seq,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.entries.len(), 1);
    assert_eq!(next.entries[0].tool_name, "tickets.pause");
    // No names: every row.
    assert_eq!(
        list(vec![], 100).await.unwrap().into_inner().entries.len(),
        7
    );
    // Bounded.
    let many: Vec<String> = (0..21).map(|i| format!("a{i}")).collect();
    let err = list(many.iter().map(String::as_str).collect(), 20)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let long = "x".repeat(201);
    let err = list(vec![long.as_str()], 20).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    r.stop.cancel();
}

/// An event no retry can fix is not stored and not dropped: it is kept on
/// `audit.dead` with its decode error, and the events after it go on.
async fn an_unreadable_audit_event_is_dead_lettered_with_its_error(backend: Backend) {
    use csp_bus::Queue;
    use futures::StreamExt;
    let r = start(backend).await;
    let (_, admin) = user(&r, "root", Role::Admin, true).await;
    let (u, _) = user(&r, "worker", Role::User, true).await;
    let garbled = bytes::Bytes::from_static(b"{\"audit_id\": 7}");
    r.queue
        .push(AUDIT_TOPIC, "garbled", garbled.clone())
        .await
        .unwrap();
    let fine = audit_event(u, "Bash", "ls", AuditStatus::Success);
    r.queue
        .push(
            AUDIT_TOPIC,
            &fine.audit_id.to_string(),
            bytes::Bytes::from(serde_json::to_vec(&fine).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(wait_for_audit(&r, &admin, u, 1).await.len(), 1);

    let mut dead = r
        .queue
        .pull(&format!("{AUDIT_TOPIC}.dead"), "inspect")
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(10), dead.next())
        .await
        .expect("no dead letter")
        .unwrap()
        .unwrap();
    let letter = csp_bus::DeadLetter::decode(&delivery.payload).unwrap();
    assert_eq!(
        (letter.id.as_str(), letter.topic.as_str(), letter.attempts),
        ("garbled", AUDIT_TOPIC, 1)
    );
    assert_eq!(letter.payload, garbled);
    assert!(
        letter.last_error.contains("cannot decode"),
        "{}",
        letter.last_error
    );
    let verified = csp_store::verify_audit_chain(&*r.store).await.unwrap();
    assert_eq!(verified.checked, 1, "only the readable event is stored");
    r.stop.cancel();
}

/// Events queued on JetStream while the policy service is down are stored
/// when it comes back.
async fn audit_events_queued_while_policy_is_down_arrive_after_restart(backend: Backend) {
    use csp_bus::Queue;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("policy.db");
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let nats = || csp_bus::queue::nats::Config {
        url: std::env::var("CSP_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        prefix: prefix.clone(),
        ..Default::default()
    };
    // A restarted policy reconnects to the same database.
    let pg = match backend {
        Backend::Postgres => Some(TestDb::create().await),
        Backend::Sqlite => None,
    };
    let pg_url = pg.as_ref().map(|pg| pg.url().to_owned());
    let start_policy = |queue: Arc<csp_bus::NatsQueue>| {
        let db = db.clone();
        let pg_url = pg_url.clone();
        async move {
            let store: Arc<dyn Store> = match pg_url {
                Some(url) => Arc::new(PgStore::connect(&url).await.unwrap()),
                None => Arc::new(SqliteStore::open(&db).await.unwrap()),
            };
            let server = csp_policy::Server::build(
                csp_policy::Config {
                    grpc_addr: "127.0.0.1:0".parse().unwrap(),
                    tokens: tokens(),
                    tools: Default::default(),
                    budget: Default::default(),
                    clock: Arc::new(csp_policy::SystemClock),
                    plugins_addr: None,
                    hash_concurrency: 2,
                },
                store.clone(),
                queue,
            )
            .await
            .unwrap();
            let stop = tokio_util::sync::CancellationToken::new();
            let task = tokio::spawn(server.run(stop.clone()));
            (store, stop, task)
        }
    };
    let producer = csp_bus::NatsQueue::connect(nats()).await.unwrap();
    let (store, stop, task) =
        start_policy(Arc::new(csp_bus::NatsQueue::connect(nats()).await.unwrap())).await;
    let u = store
        .create_user(NewUser {
            username: "w".into(),
            password_hash: "x".into(),
            role: Role::User,
            monthly_cost_cap_micros: None,
        })
        .await
        .unwrap()
        .user_id;
    stop.cancel();
    task.await.unwrap().unwrap();
    drop(store);
    // Policy is down: the session-pool keeps producing.
    let events: Vec<AuditEvent> = (0..5)
        .map(|i| audit_event(u, "Bash", &format!("echo {i}"), AuditStatus::Success))
        .collect();
    for e in &events {
        producer
            .push(
                AUDIT_TOPIC,
                &e.audit_id.to_string(),
                bytes::Bytes::from(serde_json::to_vec(e).unwrap()),
            )
            .await
            .unwrap();
    }
    let (store, stop, task) =
        start_policy(Arc::new(csp_bus::NatsQueue::connect(nats()).await.unwrap())).await;
    let mut stored = 0;
    for _ in 0..100 {
        stored = csp_store::verify_audit_chain(store.as_ref())
            .await
            .unwrap()
            .checked;
        if stored >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored, 5,
        "every event queued while policy was down is stored"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    // Leave no stream behind on the shared server.
    let client = async_nats::connect(nats().url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let _ = js.delete_stream(producer.stream_name()).await;
}

csp_store::backend_tests!(
    #[tokio::test(flavor = "multi_thread")]
    every_rpc_admits_exactly_the_roles_it_names,
    the_gate_follows_the_current_role_and_names_a_downgrade,
    caps_warn_once_refuse_at_the_cap_and_reset_with_the_month,
    concurrent_turns_overspend_at_most_what_was_admitted,
    queued_audit_events_are_stored_once_redacted_and_paged,
    the_audit_log_lists_only_the_actions_asked_for,
    an_unreadable_audit_event_is_dead_lettered_with_its_error,
    audit_events_queued_while_policy_is_down_arrive_after_restart,
);
