//! Governance end to end: which role reaches which route, the permission
//! gate on the agent's tool calls, monthly cost caps, and the audit log with
//! its tamper check (`csp audit verify`).

use csp_e2e::{Csp, METRICS_TOKEN, Mode, Options, Ws, csp_bin, scripted};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite;

pub(crate) const PASSWORD: &str = "governance-password";
const PERMISSIONS_CHANGED: &str =
    "Your permissions have changed. Some tools are no longer available.";
const BASH_NEEDS_OPERATOR: &str =
    "Tool 'Bash' was denied. This action requires operator access. Contact your administrator.";

/// One request with an optional bearer token and JSON body; the status and
/// the JSON answer (`Null` when the body is not JSON).
pub(crate) async fn call(
    csp: &Csp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = csp.http().request(method, format!("{}{path}", csp.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request reaches csp");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A user created by the admin: `(user_id, username, token)`.
pub(crate) async fn new_user(
    csp: &Csp,
    admin: &str,
    role: &str,
    cap: Option<f64>,
) -> (String, String, String) {
    let name = unique(role);
    let (status, body) = call(
        csp,
        Method::POST,
        "/api/v1/users",
        Some(admin),
        Some(json!({"username": name, "password": PASSWORD, "role": role, "monthly_cost_cap_usd": cap})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], name.as_str(), "{body}");
    assert_eq!(body["role"], role, "{body}");
    assert_eq!(body["is_active"], true, "{body}");
    let id = body["user_id"].as_str().expect("user_id").to_owned();
    let token = csp
        .login_as(&name, PASSWORD)
        .await
        .expect("new user logs in");
    (id, name, token)
}

async fn patch_user(csp: &Csp, admin: &str, id: &str, changes: Value) -> Value {
    let (status, body) = call(
        csp,
        Method::PATCH,
        &format!("/api/v1/users/{id}"),
        Some(admin),
        Some(changes),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Frames up to the session's `ready`; its id.
pub(crate) async fn ready(ws: &mut Ws) -> String {
    let frames = ws
        .until(|f| f["type"] == "session" && f["status"] == "ready")
        .await
        .expect("session becomes ready");
    frames.last().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn upgrade_status(e: &tungstenite::Error) -> Option<u16> {
    match e {
        tungstenite::Error::Http(resp) => Some(resp.status().as_u16()),
        _ => None,
    }
}

/// Audit rows of one user, polled until one satisfies `wanted`: rows arrive
/// through a queue, after the tool call has already been answered.
pub(crate) async fn audit_row(
    csp: &Csp,
    admin: &str,
    user_id: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = csp
            .get(admin, &format!("/api/v1/admin/audit-log?user_id={user_id}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        if let Some(row) = body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| wanted(r))
        {
            return row.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no matching audit row for {user_id} within 10 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The frames of one turn that runs `command` through the Bash tool.
async fn bash_turn(ws: &mut Ws, command: &str) -> Vec<Value> {
    ws.send(json!({"type":"send","text": format!("run {command}")}))
        .await
        .unwrap();
    ws.turn().await.expect("the turn ends with a result")
}

pub(crate) fn frame<'a>(frames: &'a [Value], kind: &str) -> &'a Value {
    frames
        .iter()
        .find(|f| f["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} frame in {frames:?}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    User,
    Operator,
    Admin,
    Deactivated,
}

/// The rank of a role name in admin > operator > user.
fn rank(role: &str) -> u8 {
    match role {
        "user" => 0,
        "operator" => 1,
        "admin" => 2,
        other => panic!("unknown role {other}"),
    }
}

struct Route {
    method: Method,
    path: String,
    /// `None`: public.
    role: Option<&'static str>,
    /// The status an admitted caller gets; `None` where it is not the
    /// point (a `/ws` GET without upgrade headers).
    ok: Option<u16>,
}

fn route(
    method: Method,
    path: impl Into<String>,
    role: Option<&'static str>,
    ok: Option<u16>,
) -> Route {
    Route {
        method,
        path: path.into(),
        role,
        ok,
    }
}

async fn route_rules(mode: Mode) {
    let csp = Csp::start(mode, Options::default())
        .await
        .expect("csp starts");
    let admin = csp.login().await.unwrap();
    let (user_id, _, user) = new_user(&csp, &admin, "user", None).await;
    let (operator_id, _, operator) = new_user(&csp, &admin, "operator", None).await;
    let (_, _, admin2) = new_user(&csp, &admin, "admin", None).await;
    let (gone_id, gone_name, gone) = new_user(&csp, &admin, "user", None).await;
    let (target_id, _, _) = new_user(&csp, &admin, "user", Some(5.0)).await;

    // The user's own session: every admitted caller may read it (its owner,
    // or an operator and admin who oversee every session).
    let mut ws = csp.ws(&user, "").await.unwrap();
    let session = ready(&mut ws).await;
    ws.close().await;

    patch_user(&csp, &admin, &gone_id, json!({"is_active": false})).await;
    let err = csp.login_as(&gone_name, PASSWORD).await.unwrap_err();
    assert!(err.to_string().contains("account_deactivated"), "{err}");

    let routes = [
        route(Method::POST, "/api/v1/auth/login", None, Some(200)),
        route(Method::POST, "/api/v1/auth/logout", None, Some(204)),
        route(Method::GET, "/api/v1/health/live", None, Some(200)),
        route(Method::GET, "/api/v1/health/ready", None, Some(200)),
        route(Method::GET, "/api/v1/health/startup", None, Some(200)),
        route(Method::GET, "/api/v1/me", Some("user"), Some(200)),
        route(Method::GET, "/api/v1/me/budget", Some("user"), Some(200)),
        route(Method::GET, "/api/v1/config", Some("user"), Some(200)),
        route(Method::GET, "/api/v1/sessions", Some("user"), Some(200)),
        route(
            Method::GET,
            format!("/api/v1/sessions/{session}/messages"),
            Some("user"),
            Some(200),
        ),
        route(Method::GET, "/ws", Some("user"), None),
        route(Method::GET, "/metrics", Some("operator"), Some(200)),
        route(
            Method::GET,
            "/api/v1/admin/sessions",
            Some("operator"),
            Some(200),
        ),
        route(Method::GET, "/api/v1/users", Some("admin"), Some(200)),
        route(Method::POST, "/api/v1/users", Some("admin"), Some(201)),
        route(
            Method::PATCH,
            format!("/api/v1/users/{target_id}"),
            Some("admin"),
            Some(200),
        ),
        route(
            Method::GET,
            "/api/v1/admin/audit-log",
            Some("admin"),
            Some(200),
        ),
        route(Method::GET, "/api/v1/plugins", Some("operator"), Some(200)),
        route(
            Method::POST,
            "/api/v1/plugins/rescan",
            Some("operator"),
            Some(200),
        ),
        // No plugin of that name: admitted, then not found.
        route(
            Method::GET,
            "/api/v1/plugins/absent",
            Some("operator"),
            Some(404),
        ),
        route(
            Method::POST,
            "/api/v1/plugins/absent/activate",
            Some("operator"),
            Some(404),
        ),
        route(
            Method::POST,
            "/api/v1/plugins/absent/deactivate",
            Some("operator"),
            Some(404),
        ),
        route(
            Method::PUT,
            "/api/v1/plugins/absent/config",
            Some("operator"),
            Some(404),
        ),
    ];
    let callers = [
        (Caller::Anonymous, None),
        (Caller::User, Some(user.as_str())),
        (Caller::Operator, Some(operator.as_str())),
        (Caller::Admin, Some(admin2.as_str())),
        (Caller::Deactivated, Some(gone.as_str())),
    ];
    for r in &routes {
        for (caller, token) in &callers {
            let body = match (r.method.as_str(), r.path.as_str()) {
                ("POST", "/api/v1/auth/login") => {
                    Some(json!({"username": "admin", "password": csp_e2e::ADMIN_PASSWORD}))
                }
                ("POST", "/api/v1/users") => Some(
                    json!({"username": unique("made"), "password": PASSWORD, "role": "user", "monthly_cost_cap_usd": null}),
                ),
                ("PATCH", _) => Some(json!({"monthly_cost_cap_usd": 7.5})),
                ("PUT", _) => Some(json!({"config": {}})),
                _ => None,
            };
            let (status, answer) = call(&csp, r.method.clone(), &r.path, *token, body).await;
            let what = format!("{} {} as {caller:?}: {status} {answer}", r.method, r.path);
            let Some(required) = r.role else {
                if let Some(ok) = r.ok {
                    assert_eq!(status, ok, "public route: {what}");
                }
                continue;
            };
            match caller {
                Caller::Anonymous => {
                    assert_eq!(status, 401, "{what}");
                    assert_eq!(answer["error"]["code"], "unauthenticated", "{what}");
                }
                Caller::Deactivated => {
                    assert_eq!(status, 401, "{what}");
                    assert_eq!(answer["error"]["code"], "account_deactivated", "{what}");
                }
                Caller::User | Caller::Operator | Caller::Admin => {
                    let role = match caller {
                        Caller::User => "user",
                        Caller::Operator => "operator",
                        _ => "admin",
                    };
                    if rank(role) >= rank(required) {
                        assert!(status != 401 && status != 403, "admitted: {what}");
                        if let Some(ok) = r.ok {
                            assert_eq!(status, ok, "{what}");
                        }
                    } else {
                        assert_eq!(status, 403, "{what}");
                        assert_eq!(answer["error"]["code"], "permission_denied", "{what}");
                        assert_eq!(
                            answer["error"]["message"],
                            format!("Insufficient permissions. Required role: {required}."),
                            "{what}"
                        );
                    }
                }
            }
        }
    }
    // The PATCH by the admin went through, and only the cap changed.
    let (_, users) = csp.get(&admin, "/api/v1/users").await.unwrap();
    let target = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == target_id.as_str())
        .expect("target listed")
        .clone();
    assert_eq!(target["monthly_cost_cap_usd"], 7.5, "{target}");
    assert_eq!(target["role"], "user", "{target}");

    // The scrape token opens /metrics and nothing else.
    let (status, _) = call(&csp, Method::GET, "/metrics", Some(METRICS_TOKEN), None).await;
    assert_eq!(status, 200);
    let (status, body) = csp.get(METRICS_TOKEN, "/api/v1/me").await.unwrap();
    assert_eq!(status, 401, "{body}");

    // The WebSocket upgrade itself: no token, or a deactivated account's.
    let e = csp.ws_with("", &[]).await.err().expect("anonymous refused");
    assert_eq!(upgrade_status(&e), Some(401), "{e}");
    let e = csp
        .ws_with("", &[("authorization", format!("Bearer {gone}"))])
        .await
        .err()
        .expect("deactivated refused");
    assert_eq!(upgrade_status(&e), Some(401), "{e}");

    // A demotion holds on the very next request with the old token.
    let (status, _) = csp.get(&operator, "/api/v1/admin/sessions").await.unwrap();
    assert_eq!(status, 200);
    patch_user(&csp, &admin, &operator_id, json!({"role": "user"})).await;
    let (status, body) = csp.get(&operator, "/api/v1/admin/sessions").await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"], "Insufficient permissions. Required role: operator.",
        "{body}"
    );
    let (status, me) = csp.get(&operator, "/api/v1/me").await.unwrap();
    assert_eq!((status, me["role"].as_str()), (200, Some("user")), "{me}");

    // So does a deactivation, including for a user who never was admin.
    patch_user(&csp, &admin, &user_id, json!({"is_active": false})).await;
    let (status, body) = csp.get(&user, "/api/v1/me").await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "account_deactivated", "{body}");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_admits_exactly_the_roles_it_names() {
    route_rules(Mode::Dev).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_admits_exactly_the_roles_it_names_in_distributed_mode() {
    route_rules(Mode::Distributed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_role_agent_is_denied_bash_an_operator_is_allowed() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let admin = csp.login().await.unwrap();

    let (user_id, user_name, user) = new_user(&csp, &admin, "user", None).await;
    let mut ws = csp.ws(&user, "").await.unwrap();
    let session = ready(&mut ws).await;
    let turn = bash_turn(&mut ws, "echo should-not-run-$((6*7))").await;
    let tool_use = frame(&turn, "tool_use");
    assert_eq!(tool_use["name"], "Bash", "{tool_use}");
    let result = frame(&turn, "tool_result");
    assert_eq!(result["tool_use_id"], tool_use["tool_use_id"], "{result}");
    assert_eq!(result["status"], "denied", "{result}");
    assert_eq!(result["content"], BASH_NEEDS_OPERATOR, "{result}");
    assert!(
        !turn
            .iter()
            .any(|f| f.to_string().contains("should-not-run-42")),
        "the command never ran: {turn:?}"
    );
    assert_eq!(turn.last().unwrap()["type"], "result");
    ws.close().await;
    let row = audit_row(&csp, &admin, &user_id, |r| r["tool_name"] == "Bash").await;
    assert_eq!(row["result_status"], "denied", "{row}");
    assert_eq!(row["username"], user_name.as_str(), "{row}");
    assert_eq!(row["session_id"], session.as_str(), "{row}");
    assert!(
        row["sanitized_input"]
            .as_str()
            .unwrap()
            .contains("echo should-not-run"),
        "{row}"
    );

    let (op_id, _, operator) = new_user(&csp, &admin, "operator", None).await;
    let mut ws = csp.ws(&operator, "").await.unwrap();
    ready(&mut ws).await;
    let turn = bash_turn(&mut ws, "echo operator-ran-$((6*7))").await;
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "complete", "{result}");
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains("operator-ran-42"),
        "{result}"
    );
    ws.close().await;
    let row = audit_row(&csp, &admin, &op_id, |r| r["tool_name"] == "Bash").await;
    assert_eq!(row["result_status"], "success", "{row}");
    assert!(row["execution_duration_ms"].is_i64(), "{row}");
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_downgrade_mid_session_denies_the_next_tool_call_with_the_seed_text() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let admin = csp.login().await.unwrap();
    let (id, _, operator) = new_user(&csp, &admin, "operator", None).await;
    let mut ws = csp.ws(&operator, "").await.unwrap();
    ready(&mut ws).await;

    let turn = bash_turn(&mut ws, "echo before-$((1+1))").await;
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "complete", "{result}");
    assert!(
        result["content"].as_str().unwrap().contains("before-2"),
        "{result}"
    );
    assert!(!turn.iter().any(|f| f["type"] == "notice"), "{turn:?}");

    patch_user(&csp, &admin, &id, json!({"role": "user"})).await;
    let turn = bash_turn(&mut ws, "echo after-$((1+1))").await;
    let result = frame(&turn, "tool_result");
    assert_eq!(result["status"], "denied", "{result}");
    assert_eq!(result["content"], PERMISSIONS_CHANGED, "{result}");
    let notice = frame(&turn, "notice");
    assert_eq!(notice["code"], "permissions_changed", "{notice}");
    assert_eq!(notice["message"], PERMISSIONS_CHANGED, "{notice}");
    assert!(
        !turn.iter().any(|f| f.to_string().contains("after-2")),
        "the command never ran: {turn:?}"
    );
    ws.close().await;

    audit_row(&csp, &admin, &id, |r| {
        r["tool_name"] == "Bash" && r["result_status"] == "success"
    })
    .await;
    let denied = audit_row(&csp, &admin, &id, |r| {
        r["tool_name"] == "Bash" && r["result_status"] == "denied"
    })
    .await;
    assert!(
        denied["sanitized_input"]
            .as_str()
            .unwrap()
            .contains("echo after"),
        "{denied}"
    );
    csp.stop().await;
}

const MICROS: f64 = 1_000_000.0;

fn micros(usd: f64) -> i64 {
    (usd * MICROS).round() as i64
}

/// The cap as the warning names it: "$C" for whole dollars, else "$C.CC".
fn dollars(micros: i64) -> String {
    if micros % 1_000_000 == 0 {
        format!("${}", micros / 1_000_000)
    } else {
        format!("${:.2}", micros as f64 / MICROS)
    }
}

async fn budget(csp: &Csp, token: &str) -> Value {
    let (status, b) = csp.get(token, "/api/v1/me/budget").await.unwrap();
    assert_eq!(status, 200, "{b}");
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn costs_warn_at_80_percent_refuse_at_100_and_resume_when_raised() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let admin = csp.login().await.unwrap();
    let (id, _, token) = new_user(&csp, &admin, "user", None).await;
    let mut ws = csp.ws(&token, "").await.unwrap();
    ready(&mut ws).await;

    // Each turn reports 50k input and 20k output tokens: $0.45 at the test
    // model's price, so caps and spend print as real cents.
    let turn_text = scripted(json!({
        "type": "text",
        "text": "a costly answer",
        "usage": {"input_tokens": 50_000, "output_tokens": 20_000},
    }));
    let send = json!({"type": "send", "text": turn_text});

    ws.send(send.clone()).await.unwrap();
    let turn = ws.turn().await.unwrap();
    let cost = turn.last().unwrap()["cost_usd"].as_f64().unwrap();
    assert!(cost > 0.01, "a turn costs something: {cost}");
    assert!(
        !turn.iter().any(|f| f["code"] == "budget_warning"),
        "no cap, no warning: {turn:?}"
    );
    let b = budget(&csp, &token).await;
    assert!(b["cap_usd"].is_null() && b["percent"].is_null(), "{b}");
    assert!(b["month"].as_str().unwrap().len() == 7, "{b}");
    let before = micros(b["spent_usd"].as_f64().unwrap());

    // Under a generous cap a turn's cost is what the month's spend grows by.
    patch_user(&csp, &admin, &id, json!({"monthly_cost_cap_usd": 100})).await;
    ws.send(send.clone()).await.unwrap();
    let turn = ws.turn().await.unwrap();
    let cost = turn.last().unwrap()["cost_usd"].as_f64().unwrap();
    let b = budget(&csp, &token).await;
    let spent = micros(b["spent_usd"].as_f64().unwrap());
    assert_eq!(spent - before, micros(cost), "{b}");
    assert_eq!(b["percent"], spent * 100 / micros(100.0), "{b}");

    // A cap the next turn takes to about 90 %: past the warning, under the
    // cap. Rounded up to cents; with $0.45 turns it is a whole $1, the
    // warning's other way of printing a cap.
    let next = spent + micros(cost);
    let cap = (next * 10 + 9 * 10_000 - 1) / (9 * 10_000) * 10_000;
    assert!(next * 100 >= cap * 80 && next < cap, "{next} of {cap}");
    patch_user(
        &csp,
        &admin,
        &id,
        json!({"monthly_cost_cap_usd": cap as f64 / MICROS}),
    )
    .await;

    ws.send(send.clone()).await.unwrap();
    let mut frames = ws.turn().await.unwrap();
    assert_eq!(frames.last().unwrap()["is_error"], false);
    // The turn is settled after its result, so the warning follows it.
    if !frames.iter().any(|f| f["code"] == "budget_warning") {
        frames.extend(ws.until(|f| f["type"] == "notice").await.unwrap());
    }
    let warning = frames
        .iter()
        .find(|f| f["type"] == "notice")
        .expect("a notice");
    assert_eq!(warning["code"], "budget_warning", "{warning}");
    let b = budget(&csp, &token).await;
    let spent = micros(b["spent_usd"].as_f64().unwrap());
    assert_eq!(micros(b["cap_usd"].as_f64().unwrap()), cap, "{b}");
    let percent = spent * 100 / cap;
    assert!((80..100).contains(&percent), "{b}");
    assert_eq!(b["percent"], percent, "{b}");
    assert_eq!(
        warning["message"],
        format!(
            "You have used {percent}% of your {} monthly budget.",
            dollars(cap)
        ),
        "{warning}"
    );

    // Turns still start below the cap; the one that crosses it is the last,
    // and the warning is not repeated within the month.
    let mut refused = None;
    for _ in 0..4 {
        ws.send(send.clone()).await.unwrap();
        let first = ws.next().await.unwrap();
        if first["type"] == "error" {
            refused = Some(first);
            break;
        }
        let mut turn = vec![first.clone()];
        if first["type"] != "result" {
            turn.extend(ws.turn().await.unwrap());
        }
        assert!(
            !turn.iter().any(|f| f["code"] == "budget_warning"),
            "warned once per month: {turn:?}"
        );
    }
    let refused = refused.expect("a send past the cap is refused");
    assert_eq!(refused["code"], "budget_exceeded", "{refused}");
    let b = budget(&csp, &token).await;
    let spent = b["spent_usd"].as_f64().unwrap();
    assert!(micros(spent) >= cap, "{b}");
    assert_eq!(
        refused["message"],
        format!(
            "Monthly budget exceeded (${spent:.2}/${:.2}). Contact your administrator to increase your limit.",
            cap as f64 / MICROS
        ),
        "{refused}"
    );
    // And it stays refused until someone raises the cap.
    ws.send(send.clone()).await.unwrap();
    assert_eq!(ws.next().await.unwrap()["code"], "budget_exceeded");

    let raised = patch_user(
        &csp,
        &admin,
        &id,
        json!({"monthly_cost_cap_usd": (micros(spent) + 10 * cap) as f64 / MICROS}),
    )
    .await;
    assert!(
        (raised["current_month_spend_usd"].as_f64().unwrap() - spent).abs() < 1e-9,
        "{raised}"
    );
    ws.send(send).await.unwrap();
    let turn = ws.turn().await.unwrap();
    assert_eq!(turn[0]["type"], "user_message", "{turn:?}");
    assert_eq!(turn.last().unwrap()["is_error"], false, "{turn:?}");
    ws.close().await;
    csp.stop().await;
}

/// `csp audit verify` on the dev database: (exit code, stdout).
async fn audit_verify(data_dir: &std::path::Path) -> (i32, String) {
    let out = tokio::process::Command::new(csp_bin())
        .args(["audit", "verify"])
        .env("CSP_DATA_DIR", data_dir)
        // The developer's own deployment must not be what gets checked.
        .env_remove("DATABASE_URL")
        .output()
        .await
        .expect("csp audit verify runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_detects_an_edited_row() {
    let csp = Csp::start(Mode::Dev, Options::default()).await.unwrap();
    let admin = csp.login().await.unwrap();
    // Admin actions and a tool call: rows from both writers.
    let (id, _, operator) = new_user(&csp, &admin, "operator", None).await;
    patch_user(&csp, &admin, &id, json!({"monthly_cost_cap_usd": 3})).await;
    let mut ws = csp.ws(&operator, "").await.unwrap();
    ready(&mut ws).await;
    bash_turn(&mut ws, "echo audited").await;
    ws.close().await;
    audit_row(&csp, &admin, &id, |r| r["tool_name"] == "Bash").await;

    let (status, log) = csp.get(&admin, "/api/v1/admin/audit-log").await.unwrap();
    assert_eq!(status, 200, "{log}");
    let entries = log["entries"].as_array().unwrap();
    assert!(entries.len() >= 3, "{log}");
    let oldest = entries
        .iter()
        .filter_map(|e| e["seq"].as_i64())
        .min()
        .unwrap();

    let data_dir = csp.agents_dir().parent().unwrap().to_owned();
    let (code, out) = audit_verify(&data_dir).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "audit log intact: {} entries verified",
            entries.len()
        )),
        "{out}"
    );

    // What someone with write access to the file could do: switch off the
    // append-only trigger and edit the oldest row.
    let db = data_dir.join("csp.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&opts)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    let edited = sqlx::query(
        "UPDATE audit_log SET sanitized_input = 'x' WHERE seq = (SELECT MIN(seq) FROM audit_log)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(edited.rows_affected(), 1);
    <sqlx::SqliteConnection as sqlx::Connection>::close(conn)
        .await
        .unwrap();

    let (code, out) = audit_verify(&data_dir).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("audit log BROKEN at seq {oldest} ")),
        "{out}"
    );
    csp.stop().await;
}
