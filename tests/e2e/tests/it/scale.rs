//! Scale-out (issue 17): two processes of every service against one
//! Postgres, Redis and NATS, each addressed pair behind a round-robin TCP
//! proxy (the harness's stand-in for a Kubernetes Service). Losing one
//! replica of anything costs a user nothing but a retried turn: a session
//! moves to the other session-pool, webhooks keep being accepted and each
//! is enhanced once, and login, plugins and tickets keep answering.
//!
//! The shortened form of `csp-bench scale`, which kills every service's
//! replica in turn under more load and prints what each loss cost.

use crate::tickets::{self, Tickets};
use csp_e2e::{Csp, Mode, Options, Ws, scripted, slow_answer, text_of};
use futures::future::join_all;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long a failover may take before a test gives up on it: generous,
/// the machine is shared; the benchmark reports the real figure.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(60);

fn seq_max(frames: &[Value]) -> u64 {
    frames
        .iter()
        .filter_map(|f| f["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

async fn until_ready(ws: &mut Ws) -> Vec<Value> {
    ws.until(|f| f["type"] == "session" && f["status"] == "ready")
        .await
        .expect("session becomes ready")
}

/// One scripted turn that answers `text`; its frames.
async fn say(ws: &mut Ws, text: &str) -> Vec<Value> {
    ws.send(json!({"type": "send", "text": scripted(json!({"type": "text", "text": text}))}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    assert_eq!(text_of(&turn), text, "{turn:?}");
    assert_eq!(turn.last().unwrap()["is_error"], false, "{turn:?}");
    turn
}

/// Two of every service: gateway, session-pool, policy, plugins, tickets
/// and tickets-worker. One job at a time per worker, so that a burst is
/// shared between both rather than taken by whichever fetched first.
async fn start() -> Tickets {
    let csp = Csp::start(
        Mode::Distributed,
        Options {
            replicas: 2,
            tickets: true,
            env: vec![("CSP_TICKETS_WORKER_CONCURRENCY".into(), "1".into())],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    tickets::adopt(csp).await
}

/// The whole scale-out story on one instance (starting thirteen processes
/// is the expensive part): a session outlives its session-pool replica,
/// intake outlives a gateway, and policy, plugins and tickets each outlive
/// one of their replicas.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_of_every_service_survive_the_loss_of_one() {
    let mut t = start().await;
    for service in ["gateway", "session-pool", "policy", "plugins", "tickets"] {
        assert!(t.csp.proxy(service).is_some(), "{service} has a proxy");
        assert_eq!(t.csp.replicas(service).len(), 2, "{service}");
    }
    assert_eq!(t.csp.replicas("tickets-worker").len(), 2);

    let session = a_session_resumes_on_the_other_session_pool(&mut t).await;
    intake_survives_a_gateway_and_each_job_is_enhanced_once(&mut t).await;
    policy_plugins_and_tickets_survive_one_replica_each(&mut t, &session).await;
    t.stop().await;
}

/// A session's replica is SIGKILLed mid-turn: the browser is told, reconnects
/// through the gateway proxy and the same session continues on the other
/// replica, its history intact. Returns the session's id.
async fn a_session_resumes_on_the_other_session_pool(t: &mut Tickets) -> String {
    let admin = t.admin.clone();
    let mut ws = t.csp.ws(&admin, "").await.unwrap();
    let mut seen = until_ready(&mut ws).await;
    let session = seen.last().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    seen.extend(say(&mut ws, "before the loss").await);
    let homes = t.csp.session_pools_with(&session);
    assert_eq!(homes.len(), 1, "one replica runs it: {homes:?}");
    let home = homes[0];

    let slow = slow_answer();
    ws.send(json!({"type": "send", "text": slow}))
        .await
        .unwrap();
    seen.extend(ws.until(|f| f["type"] == "delta").await.unwrap());
    t.csp.kill9(home).await;
    let cut = ws.until(|f| f["type"] == "error").await.unwrap();
    assert_eq!(cut.last().unwrap()["code"], "agent_crashed", "{cut:?}");
    seen.extend(cut);
    ws.close().await;

    // The browser reattaches the way the web app does, through the proxy
    // (to either gateway): the survivor resumes the session.
    let mut ws = t
        .csp
        .ws(
            &admin,
            &format!("session={session}&after_seq={}", seq_max(&seen)),
        )
        .await
        .unwrap();
    let back = until_ready(&mut ws).await;
    assert_eq!(back.last().unwrap()["session_id"], session.as_str());
    say(&mut ws, "after the loss").await;
    ws.close().await;
    let survivor = t.csp.replicas("session-pool");
    assert_eq!(survivor.len(), 1);
    assert!(
        t.csp.session_pools_with(&session).contains(&survivor[0]),
        "{session} now runs on {}",
        survivor[0]
    );

    let (status, history) = t
        .csp
        .get(&admin, &format!("/api/v1/sessions/{session}/messages"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{history}");
    let text = text_of(history["messages"].as_array().unwrap());
    assert!(text.contains("before the loss"), "history kept: {history}");
    assert!(text.contains("after the loss"), "{history}");
    let (_, sessions) = t.csp.get(&admin, "/api/v1/sessions").await.unwrap();
    let listed = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == session.as_str())
        .cloned()
        .unwrap_or_default();
    assert!(
        listed["resume_count"].as_u64().unwrap_or(0) >= 1,
        "resumed, same session: {listed}"
    );
    session
}

/// Signed webhooks in two bursts, one gateway SIGKILLed between them: every
/// one is accepted through the proxy, and each accepted webhook becomes one
/// completed job and one note, the jobs shared by both workers.
async fn intake_survives_a_gateway_and_each_job_is_enhanced_once(t: &mut Tickets) {
    let ids: Vec<u64> = (930_001..=930_016).collect();
    let sdp = tickets::sdp(0, &ids).await;
    let secret = t.tenant("acme", &sdp.base_url()).await;
    let (before, after) = ids.split_at(ids.len() / 2);
    let mut jobs = burst(t, &secret, before).await;
    t.csp.kill9("gateway").await;
    jobs.extend(burst(t, &secret, after).await);
    jobs.sort();
    jobs.dedup();
    assert_eq!(jobs.len(), ids.len(), "one job per webhook");

    // None lost: every job completes.
    let deadline = Instant::now() + FAILOVER_DEADLINE;
    loop {
        let (listed, total) = t.jobs_of("acme").await;
        let done = listed.iter().filter(|j| j["status"] == "completed").count();
        assert!(listed.iter().all(|j| j["status"] != "failed"), "{listed:?}");
        if total == ids.len() as u64 && done == ids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {} jobs completed: {listed:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // None done twice: one note per ticket, no more in total.
    for id in &ids {
        assert_eq!(sdp.mock().notes_for(*id).len(), 1, "ticket {id}");
    }
    assert_eq!(sdp.mock().notes().len(), ids.len());

    // Both workers took a share; together they completed each job once
    // (their counts come with their heartbeats, hence the polling).
    let deadline = Instant::now() + FAILOVER_DEADLINE;
    loop {
        let (status, body) = t
            .csp
            .get(&t.admin, "/api/v1/tickets/workers")
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let counts: Vec<u64> = body["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["completed_jobs"].as_u64().unwrap())
            .collect();
        let sum: u64 = counts.iter().sum();
        assert!(sum <= ids.len() as u64, "a job completed twice: {body}");
        if counts.len() == 2 && counts.iter().all(|c| *c > 0) && sum == ids.len() as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "workers: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sdp.shutdown().await;
}

/// New-ticket webhooks for `ids`, sent at once; their job ids (each
/// asserted `202`).
async fn burst(t: &Tickets, secret: &str, ids: &[u64]) -> Vec<String> {
    join_all(ids.iter().map(|id| t.new_ticket("acme", secret, *id))).await
}

/// One replica each of policy, plugins and tickets SIGKILLed: login, the
/// plugin list, the tickets API and a chat turn (admitted by the policy
/// service) keep working through the proxies.
async fn policy_plugins_and_tickets_survive_one_replica_each(t: &mut Tickets, session: &str) {
    for service in ["policy", "plugins", "tickets"] {
        t.csp.kill9(service).await;
    }
    // Each client's connection may still lead to a dead replica until it
    // is re-established: wait for the first full success, then require
    // that it holds.
    let deadline = Instant::now() + FAILOVER_DEADLINE;
    let mut streak = 0;
    while streak < 3 {
        let failure = served(t).await.err();
        streak = if failure.is_none() { streak + 1 } else { 0 };
        if let Some(why) = failure {
            assert!(Instant::now() < deadline, "never recovered: {why}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let (_, history) = t
        .csp
        .get(&t.admin, &format!("/api/v1/sessions/{session}/messages"))
        .await
        .unwrap();
    let last = history["last_seq"].as_u64().unwrap();
    let mut ws = t
        .csp
        .ws(&t.admin, &format!("session={session}&after_seq={last}"))
        .await
        .unwrap();
    // The session still runs on the survivor: the socket attaches to it.
    say(&mut ws, "after policy, plugins and tickets lost one each").await;
    ws.close().await;
}

/// Login, the plugin list and the tenant list, each through the proxies.
async fn served(t: &Tickets) -> Result<(), String> {
    let token = t.csp.login().await.map_err(|e| format!("login: {e}"))?;
    for path in ["/api/v1/plugins", "/api/v1/tenants"] {
        let (status, body) = t.csp.get(&token, path).await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("{path}: {status} {body}"));
        }
    }
    Ok(())
}
