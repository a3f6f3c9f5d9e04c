//! Capacity follows people: a session nobody is attached to gives its slot
//! up (suspended as by the idle timeout, resumable) before anyone is
//! refused, and one user cannot hold every slot. Presence and detaches are
//! recorded in the cache the way the gateway's WebSockets do.

use super::{Pool, Setup, acquire, req, send, start_full, status, turn, user, wait_for};
use csp_bus::EventBus;
use csp_cache::Cache;
use csp_domain::{ErrorCode, Event, SessionEvent, SessionId, SessionStatus, StatusReason, UserId};
use csp_proto::v1 as pb;
use csp_store::{SessionRecord, SessionStore};
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

async fn pool(max_sessions: usize, max_sessions_per_user: usize, prewarm: usize) -> Pool {
    start_full(Setup {
        prewarm,
        max_sessions,
        max_sessions_per_user,
        rules: csp_mock_llm::Rules::default(),
        tools: &["Bash"],
        plugins_addr: None,
    })
    .await
}

fn scripted(behaviour: serde_json::Value) -> String {
    format!("MOCK{behaviour}MOCK")
}

/// A socket opens on the session (what the gateway records).
async fn attach(p: &Pool, id: SessionId, conn: &str) {
    p.cache
        .add_presence(id, conn, Duration::from_secs(90))
        .await
        .unwrap();
}

/// That socket closes: presence gone, the detach time recorded.
async fn detach(p: &Pool, id: SessionId, conn: &str) {
    p.cache.remove_presence(id, conn).await.unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    p.cache
        .put(
            &csp_cache::detached_key(id),
            &now.to_string(),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
}

/// The session's events after `after` up to the first `session` event
/// with `want`.
async fn until_status(
    p: &Pool,
    id: SessionId,
    after: u64,
    want: SessionStatus,
) -> Vec<SessionEvent> {
    let mut events = p.bus.subscribe(id, after).await.unwrap();
    let mut seen = Vec::new();
    let wait = async {
        while let Some(ev) = events.next().await {
            let ev = ev.unwrap();
            let done = matches!(&ev.event, Event::Session { status, .. } if *status == want);
            seen.push(ev);
            if done {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), wait)
        .await
        .unwrap_or_else(|_| panic!("session {id} never reached {want:?}"));
    seen
}

/// Opens a session for `u` and waits until it is ready.
async fn open(p: &mut Pool, u: UserId) -> Result<SessionId, tonic::Status> {
    let got = acquire(&mut p.client, u).await?;
    let id: SessionId = got.session_id.parse().unwrap();
    until_status(p, id, 0, SessionStatus::Ready).await;
    Ok(id)
}

async fn resume(p: &mut Pool, u: UserId, id: SessionId) -> Result<bool, tonic::Status> {
    p.client
        .resume(req(
            u,
            pb::ResumeRequest {
                session_id: id.to_string(),
                user_id: u.to_string(),
                seen_seq: 0,
            },
        ))
        .await
        .map(|r| r.into_inner().resumed)
}

async fn record(p: &Pool, id: SessionId) -> SessionRecord {
    p.store.session(id).await.unwrap().unwrap()
}

/// Exactly what the idle timeout leaves behind.
fn assert_suspended(r: &SessionRecord) {
    assert_eq!(
        (r.status.as_str(), r.is_resumable, r.ended_reason.as_deref()),
        ("idle", true, Some("idle_timeout")),
        "{r:?}"
    );
}

fn text_of(events: &[SessionEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Twelve people open and close a chat on a replica of three slots: all
/// twelve are served, the pool stays ready, and the first conversation
/// resumes with its history.
#[tokio::test(flavor = "multi_thread")]
async fn twelve_open_close_cycles_fit_three_slots_and_the_first_resumes() {
    let mut p = pool(3, 3, 1).await;
    wait_for(&mut p.client, |s| s.started && s.pool_depth == 1).await;
    let first_user = user(&p.store, "u0").await;
    let first = open(&mut p, first_user).await.unwrap();
    attach(&p, first, "c0").await;
    let before = turn(
        &mut p,
        first_user,
        first,
        &scripted(json!({"type":"text","text":"first-answer"})),
    )
    .await;
    assert_eq!(text_of(&before), "first-answer");
    let last = before.last().unwrap().seq;
    detach(&p, first, "c0").await;

    for i in 1..12 {
        let u = user(&p.store, &format!("u{i}")).await;
        let id = open(&mut p, u)
            .await
            .unwrap_or_else(|e| panic!("open #{i} refused: {e:?}"));
        attach(&p, id, "c").await;
        detach(&p, id, "c").await;
    }
    assert_suspended(&record(&p, first).await);
    // Full of sessions nobody uses: a new user would still be served.
    let s = status(&mut p.client).await;
    assert_eq!(s.active_sessions, 3, "{s:?}");
    assert!(s.ready, "{s:?}");

    assert!(resume(&mut p, first_user, first).await.unwrap());
    let resumed = until_status(&p, first, last, SessionStatus::Ready).await;
    assert_eq!(resumed[0].seq, last + 1, "numbering continues: {resumed:?}");
    assert!(
        resumed.iter().any(|e| matches!(
            e.event,
            Event::Session {
                status: SessionStatus::Preparing,
                reason: Some(StatusReason::Resume),
                ..
            }
        )),
        "{resumed:?}"
    );
    assert!(
        !resumed.iter().any(|e| matches!(
            e.event,
            Event::Notice {
                code: ErrorCode::ResumeFailed,
                ..
            }
        )),
        "the transcript was restored: {resumed:?}"
    );
    attach(&p, first, "c0b").await;
    let after = turn(
        &mut p,
        first_user,
        first,
        &scripted(json!({"type":"text","text":"second-answer"})),
    )
    .await;
    assert_eq!(text_of(&after), "second-answer");
    let history = p
        ._mock
        .log()
        .into_iter()
        .filter(|e| e.path == "/v1/messages")
        .map(|e| e.body["messages"].to_string())
        .find(|m| m.contains("second-answer"))
        .expect("the second turn reached the model");
    assert!(
        history.contains("first-answer"),
        "the resumed agent sent the earlier turn: {history}"
    );
    assert_eq!(record(&p, first).await.resume_count, 1);
    p.stop.cancel();
}

/// A user at MAX_SESSIONS_PER_USER who opens another: their least recently
/// detached session yields; with every one of them open, a clear refusal.
#[tokio::test(flavor = "multi_thread")]
async fn the_per_user_limit_suspends_the_least_recently_detached_then_refuses() {
    let mut p = pool(6, 2, 0).await;
    let ada = user(&p.store, "ada").await;
    let eve = user(&p.store, "eve").await;
    let older = open(&mut p, ada).await.unwrap();
    attach(&p, older, "a1").await;
    let newer = open(&mut p, ada).await.unwrap();
    attach(&p, newer, "a2").await;
    // The newer session is left first: it is the least recently detached.
    detach(&p, newer, "a2").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    detach(&p, older, "a1").await;

    let third = open(&mut p, ada).await.unwrap();
    assert_suspended(&record(&p, newer).await);
    assert_eq!(record(&p, older).await.status, "active");
    let s = status(&mut p.client).await;
    assert_eq!(s.active_sessions, 2, "{s:?}");

    // Both live sessions open in a browser: nothing can yield.
    attach(&p, older, "a1b").await;
    attach(&p, third, "a3").await;
    let err = acquire(&mut p.client, ada).await.unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::TooManySessions);
    assert_eq!(
        csp_rpc::user_message(&err).as_deref(),
        Some("You already have 2 active sessions. Close one to start another.")
    );
    // Reopening the suspended one needs a process too: same answer.
    let err = resume(&mut p, ada, newer).await.unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::TooManySessions);
    assert_eq!(record(&p, older).await.status, "active");
    assert_eq!(record(&p, third).await.status, "active");
    // The limit is ada's, not the replica's.
    open(&mut p, eve).await.unwrap();

    // Once she leaves one, reopening the suspended session takes its slot.
    detach(&p, third, "a3").await;
    assert!(resume(&mut p, ada, newer).await.unwrap());
    until_status(&p, newer, 0, SessionStatus::Ready).await;
    assert_suspended(&record(&p, third).await);
    assert_eq!(record(&p, older).await.status, "active");
    p.stop.cancel();
}

/// A session whose turn is in flight keeps its process even with nobody
/// attached; it yields once the turn is over.
#[tokio::test(flavor = "multi_thread")]
async fn a_turn_in_flight_is_never_suspended() {
    let mut p = pool(2, 2, 0).await;
    let ada = user(&p.store, "ada").await;
    let eve = user(&p.store, "eve").await;
    let bob = user(&p.store, "bob").await;
    let busy = open(&mut p, ada).await.unwrap();
    attach(&p, busy, "a").await;
    let after = p.bus.last_seq(busy).await.unwrap();
    let mut events = p.bus.subscribe(busy, after).await.unwrap();
    let slow = json!({"type":"text","text":"a slow answer in many parts","chunks":12,"chunk_delay_ms":500});
    send(&mut p, ada, busy, &scripted(slow)).await;
    // The turn is under way (its first words arrived) when she leaves.
    let mut turn = Vec::new();
    loop {
        let ev = events.next().await.unwrap().unwrap();
        let started = matches!(ev.event, Event::Delta { .. });
        turn.push(ev);
        if started {
            break;
        }
    }
    detach(&p, busy, "a").await;
    let watched = open(&mut p, eve).await.unwrap();
    attach(&p, watched, "e").await;

    let err = acquire(&mut p.client, bob).await.unwrap_err();
    assert_eq!(csp_rpc::error_code(&err), ErrorCode::AtCapacity);
    let s = status(&mut p.client).await;
    assert!(!s.ready && s.reason == "pool_empty", "{s:?}");

    while let Some(ev) = events.next().await {
        let ev = ev.unwrap();
        let end = matches!(ev.event, Event::Result { .. });
        turn.push(ev);
        if end {
            break;
        }
    }
    assert_eq!(text_of(&turn), "a slow answer in many parts", "{turn:?}");
    assert!(
        matches!(
            turn.last().unwrap().event,
            Event::Result {
                is_error: false,
                interrupted: false,
                ..
            }
        ),
        "{turn:?}"
    );
    // Over: now it is an idle session nobody watches.
    open(&mut p, bob).await.unwrap();
    assert_suspended(&record(&p, busy).await);
    assert_eq!(record(&p, watched).await.status, "active");
    p.stop.cancel();
}

/// Redis restarted without persistence forgets the routes of running
/// sessions; the gateway then asks a replica to resume the session, and
/// the replica that runs it records its route again. Before, it answered
/// "already running" and left the route missing, so every message to the
/// session was refused `session_unavailable` until it idled out (found by
/// `csp-bench faults`, docs/reliability.md).
#[tokio::test(flavor = "multi_thread")]
async fn resuming_a_running_session_records_its_lost_route_again() {
    let mut p = pool(2, 2, 0).await;
    let u = user(&p.store, "ada").await;
    let id = open(&mut p, u).await.unwrap();
    let route = p.cache.route(id).await.unwrap();
    assert!(route.is_some(), "a running session has a route");
    p.cache.remove_route(id).await.unwrap();

    assert!(
        !resume(&mut p, u, id).await.unwrap(),
        "it was running: nothing to resume"
    );
    assert_eq!(p.cache.route(id).await.unwrap(), route);
}
