//! Session lifecycle against the real CLI: the duration limit, the memory
//! restart, the reaper, and resuming a session after its process stopped.

use csp_e2e::{Csp, Mode, Options, Ws, scripted, text_of};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const EXPIRING: &str = "Session will end in 1 minute. Save your work.";
const DURATION_ENDED: &str = "Session ended (duration limit). You can start a new session.";
const RESUME_FAILED: &str = "Previous session could not be restored. Starting a new session.";

async fn start(mode: Mode, env: &[(&str, &str)]) -> Csp {
    start_with(mode, 1, env).await
}

async fn start_with(mode: Mode, prewarm: usize, env: &[(&str, &str)]) -> Csp {
    Csp::start(
        mode,
        Options {
            prewarm,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Options::default()
        },
    )
    .await
    .expect("csp starts")
}

fn is_status(f: &Value, status: &str) -> bool {
    f["type"] == "session" && f["status"] == status
}

fn is_notice(f: &Value, code: &str) -> bool {
    f["type"] == "notice" && f["code"] == code
}

async fn ready(ws: &mut Ws) -> (String, Vec<Value>) {
    let frames = ws
        .until(|f| is_status(f, "ready"))
        .await
        .expect("session becomes ready");
    let id = frames.last().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, frames)
}

/// Sends a scripted text answer and returns the turn's frames.
async fn say(ws: &mut Ws, text: &str) -> Vec<Value> {
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":text}))}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    assert_eq!(text_of(&turn), text, "{turn:?}");
    assert_eq!(turn.last().unwrap()["is_error"], false, "{turn:?}");
    turn
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter_map(|f| f["seq"].as_u64()).collect()
}

fn assert_contiguous(seqs: &[u64]) {
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "seq has gaps or reuse: {seqs:?}");
    }
}

fn last_seq(frames: &[Value]) -> u64 {
    *seqs(frames).last().expect("a frame with a seq")
}

/// The user texts of every `/v1/messages` request the scripted model got.
async fn mock_log(csp: &Csp) -> Vec<Value> {
    let url = format!("{}/_mock/log", csp.mock_url().expect("distributed mode"));
    csp.http()
        .get(url)
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

/// The JSON of the messages of the last conversation request (title
/// requests excluded).
async fn last_request_messages(csp: &Csp) -> String {
    let log = mock_log(csp).await;
    let req = log
        .iter()
        .rev()
        .find(|e| e["path"] == "/v1/messages" && e["source"] != "title")
        .expect("a model request");
    req["body"]["messages"].to_string()
}

async fn session_entry(csp: &Csp, token: &str, id: &str) -> Value {
    let (status, list) = csp.get(token, "/api/v1/sessions").await.unwrap();
    assert_eq!(status, 200, "{list}");
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("session {id} listed: {list}"))
}

/// Polls the session list until the session has `status` (the idle
/// timeout runs on the server's clock, not the test's).
async fn wait_listed(csp: &Csp, token: &str, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = session_entry(csp, token, id).await;
        if s["status"] == status {
            return s;
        }
        assert!(Instant::now() < deadline, "never {status}: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every live descendant of `root`, from `/proc`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: fields start
        // after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let _state = fields.next();
        if let Some(ppid) = fields.next().and_then(|p| p.parse::<u32>().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// Whether a pid exists and is not a zombie waiting to be reaped.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// An idle session that reaches its duration limit is warned, then ended
/// for good; a new session works.
#[tokio::test(flavor = "multi_thread")]
async fn duration_limit_ends_an_idle_session() {
    let csp = start(
        Mode::Dev,
        &[
            ("SESSION_MAX_DURATION_SECONDS", "4"),
            ("CSP_LIMIT_CHECK_MS", "100"),
        ],
    )
    .await;
    let token = csp.login().await.unwrap();
    let connecting = Instant::now();
    let mut ws = csp.ws(&token, "").await.unwrap();
    let (id, _) = ready(&mut ws).await;

    let frames = ws
        .until(|f| is_notice(f, "session_expiring"))
        .await
        .unwrap();
    let warned_after = connecting.elapsed();
    println!("session_expiring after {} ms", warned_after.as_millis());
    let notice = frames.last().unwrap();
    assert_eq!(notice["message"], EXPIRING, "{notice}");
    assert_eq!(notice["minutes_left"], 1, "{notice}");
    // The run started after the socket was opened, so 90 % of 4 s cannot
    // have passed any earlier.
    assert!(
        warned_after >= Duration::from_millis(3600),
        "{warned_after:?}"
    );

    let frames = ws.until(|f| is_status(f, "ended")).await.unwrap();
    let error = frames
        .iter()
        .find(|f| f["type"] == "error")
        .unwrap_or_else(|| panic!("an error before the end: {frames:?}"));
    assert_eq!(error["code"], "duration_limit", "{error}");
    assert_eq!(error["message"], DURATION_ENDED, "{error}");
    let ended = frames.last().unwrap();
    assert_eq!(ended["reason"], "duration_limit", "{ended}");

    // Sending to the ended session is refused.
    ws.send(json!({"type":"send","text":"still there?"}))
        .await
        .unwrap();
    let refused = ws.until(|f| f["type"] == "error").await.unwrap();
    let refused = refused.last().unwrap();
    assert!(
        refused["code"] == "duration_limit" || refused["code"] == "session_unavailable",
        "{refused}"
    );
    ws.close().await;
    let listed = session_entry(&csp, &token, &id).await;
    assert_eq!(listed["status"], "ended", "{listed}");
    assert_eq!(listed["is_resumable"], false, "{listed}");

    // Reopening it does not restart it: the history replays, then the refusal.
    let mut ws = csp
        .ws(&token, &format!("session={id}&after_seq=0"))
        .await
        .unwrap();
    let frames = ws
        .until(|f| f["type"] == "error" && f.get("seq").is_none())
        .await
        .unwrap();
    let ended_seq = ended["seq"].as_u64().unwrap();
    assert!(
        frames
            .iter()
            .all(|f| f["seq"].as_u64().unwrap_or(0) <= ended_seq),
        "nothing new after the end: {frames:?}"
    );
    assert_eq!(
        frames.last().unwrap()["code"],
        "duration_limit",
        "{frames:?}"
    );
    ws.close().await;
    assert_eq!(session_entry(&csp, &token, &id).await["resume_count"], 0);

    // A new session works.
    let mut ws = csp.ws(&token, "").await.unwrap();
    let (new_id, _) = ready(&mut ws).await;
    assert_ne!(new_id, id);
    say(&mut ws, "a fresh start").await;
    ws.close().await;
    csp.stop().await;
}

/// A turn crossing the duration limit finishes before the session ends.
#[tokio::test(flavor = "multi_thread")]
async fn duration_limit_lets_the_turn_in_flight_finish() {
    let csp = start(
        Mode::Dev,
        &[
            ("SESSION_MAX_DURATION_SECONDS", "4"),
            ("CSP_LIMIT_CHECK_MS", "100"),
        ],
    )
    .await;
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    ready(&mut ws).await;
    // 25 chunks 250 ms apart: about 6 s, well past the 4 s limit.
    let long = "tick ".repeat(25);
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":long,"chunks":25,"chunk_delay_ms":250}))}))
        .await
        .unwrap();
    let frames = ws.until(|f| is_status(f, "ended")).await.unwrap();
    let result = frames
        .iter()
        .position(|f| f["type"] == "result")
        .unwrap_or_else(|| panic!("the turn completes: {frames:?}"));
    assert_eq!(frames[result]["is_error"], false, "{:?}", frames[result]);
    assert_eq!(text_of(&frames[..result]), long);
    let expiring = frames
        .iter()
        .position(|f| is_notice(f, "session_expiring"))
        .expect("warned");
    assert!(expiring < result, "warned during the turn: {frames:?}");
    let error = frames
        .iter()
        .position(|f| f["type"] == "error")
        .expect("duration_limit error");
    assert!(error > result, "ended only after the result: {frames:?}");
    assert_eq!(frames[error]["code"], "duration_limit");
    assert_eq!(frames.last().unwrap()["reason"], "duration_limit");
    assert_contiguous(&seqs(&frames));
    ws.close().await;
    csp.stop().await;
}

/// A CLI over the memory limit is replaced after its turn by one that
/// resumes the conversation: the model still sees the earlier messages.
#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_restarts_the_agent_with_its_history() {
    // A ready CLI uses ~170-180 MB: every process is over this limit, so
    // each one is replaced as soon as it has no turn in flight.
    let csp = start(
        Mode::Distributed,
        &[
            ("SESSION_MAX_RSS_BYTES", "100000000"),
            ("CSP_LIMIT_CHECK_MS", "200"),
        ],
    )
    .await;
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    let (id, mut all) = ready(&mut ws).await;
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"alpha-answer"})),"client_id":"alpha-marker"}))
        .await
        .unwrap();

    // The first turn completes, then a restart: notice, preparing, ready,
    // notice. (The warm CLI is over the limit already, so a restart may
    // also come before the turn; the message then waits for the new one.)
    let mut preparing_at = None;
    let mut restart_ms = None;
    let mut answered = None;
    loop {
        let f = ws.next().await.unwrap();
        if is_status(&f, "preparing") {
            assert_eq!(f["reason"], "restart", "{f}");
            preparing_at = Some(Instant::now());
        }
        if is_status(&f, "ready")
            && let Some(at) = preparing_at
        {
            restart_ms = Some(at.elapsed().as_millis());
        }
        if f["type"] == "result" {
            answered = Some(all.len());
        }
        let done = answered.is_some() && is_notice(&f, "session_restarted");
        all.push(f);
        if done {
            break;
        }
    }
    println!("restart_ms={}", restart_ms.expect("preparing then ready"));
    let result = answered.unwrap();
    assert_eq!(text_of(&all[..result]), "alpha-answer");
    assert_eq!(all[result]["is_error"], false);
    let restarting = all
        .iter()
        .skip(result)
        .find(|f| is_notice(f, "session_restarting"))
        .expect("session_restarting notice after the turn");
    assert_eq!(
        restarting["message"],
        "Session restarting due to resource limits"
    );
    let restarted = all.last().unwrap();
    assert_eq!(restarted["action"]["href"], format!("/?session={id}"));
    assert!(
        restarted["message"]
            .as_str()
            .unwrap()
            .contains("Your conversation history is preserved."),
        "{restarted}"
    );

    // The next message is answered by a CLI that resumed the conversation.
    ws.send(json!({"type":"send","text": scripted(json!({"type":"text","text":"beta-answer"}))}))
        .await
        .unwrap();
    let frames = ws.turn().await.unwrap();
    let start = frames
        .iter()
        .position(|f| f["type"] == "user_message")
        .expect("the message is taken");
    assert_eq!(text_of(&frames[start..]), "beta-answer");
    all.extend(frames);
    assert_contiguous(&seqs(&all));
    let sent = last_request_messages(&csp).await;
    assert!(sent.contains("beta-answer"), "{sent}");
    assert!(
        sent.contains("alpha-answer"),
        "the restarted CLI sent the earlier turn: {sent}"
    );
    ws.close().await;
    csp.stop().await;
}

/// A session ending in 8 s whose tool left an orphan: the subshell exits at
/// once and its `sleep` is orphaned (and becomes a zombie when it exits).
/// Returns the instance, csp's pid, the socket and csp's process tree then.
async fn session_with_an_orphan(sandbox: &str) -> (Csp, u32, Ws, Vec<u32>) {
    let csp = start_with(
        Mode::Dev,
        0,
        &[
            ("SESSION_MAX_DURATION_SECONDS", "8"),
            ("CSP_LIMIT_CHECK_MS", "100"),
            ("CSP_REAPER_INTERVAL_SECONDS", "1"),
            ("CSP_AGENT_SANDBOX", sandbox),
        ],
    )
    .await;
    let csp_pid = csp.pid_of("dev").unwrap();
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    ready(&mut ws).await;
    ws.send(json!({"type":"send","text":"run (sleep 1 >/dev/null 2>&1 &); echo started"}))
        .await
        .unwrap();
    let turn = ws.turn().await.unwrap();
    assert!(
        turn.iter()
            .any(|f| f["type"] == "tool_result" && f["status"] == "complete"),
        "{turn:?}"
    );
    let tree = descendants(csp_pid);
    assert!(!tree.is_empty(), "the CLI runs under csp");
    (csp, csp_pid, ws, tree)
}

/// When a session ends, its whole CLI process tree is gone, and orphans
/// re-parented to csp are reaped. Unsandboxed, orphans reach csp (the
/// nearest subreaper); sandboxed, they stay in the sandbox's PID namespace,
/// whose init reaps them (see the next test).
#[tokio::test(flavor = "multi_thread")]
async fn ended_session_leaves_no_processes_and_orphans_are_reaped() {
    let (csp, csp_pid, mut ws, tree) = session_with_an_orphan("off").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = csp.scrape_all().await.unwrap();
        if metric(&metrics, "csp_zombies_reaped_total") >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no zombie reaped; csp's children: {:?}\n{metrics}",
            descendants(csp_pid)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    ws.until(|f| is_status(f, "ended")).await.unwrap();
    let left: Vec<u32> = tree.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "processes outlived the session: {left:?}");
    ws.close().await;
    csp.stop().await;
}

/// Sandboxed, an orphaned tool process is reaped inside the sandbox (no
/// zombie ever reaches csp), and nothing of the sandbox outlives the session.
#[tokio::test(flavor = "multi_thread")]
async fn a_sandboxed_session_reaps_its_own_orphans_and_leaves_nothing() {
    let (csp, csp_pid, mut ws, tree) = session_with_an_orphan("bubblewrap").await;
    assert!(
        tree.len() >= 3,
        "bwrap, its init and the CLI run under csp: {tree:?}"
    );
    // The orphaned `sleep` exits after a second; its zombie belongs to the
    // sandbox's init, not to csp.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let zombies: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map(|(_, rest)| rest.split_whitespace().collect())
                    .unwrap_or_default();
                fields.first() == Some(&"Z") && fields.get(1) == Some(&csp_pid.to_string().as_str())
            })
        })
        .collect();
    assert!(zombies.is_empty(), "zombies of csp: {zombies:?}");
    let metrics = csp.scrape_all().await.unwrap();
    assert_eq!(metric(&metrics, "csp_zombies_reaped_total"), 0.0);

    ws.until(|f| is_status(f, "ended")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = tree.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes outlived the session: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ws.close().await;
    csp.stop().await;
}

/// Reattaching within the idle window continues the running process.
#[tokio::test(flavor = "multi_thread")]
async fn reattach_within_the_idle_window_keeps_the_process() {
    let csp = start(Mode::Dev, &[("SESSION_IDLE_TIMEOUT_SECONDS", "30")]).await;
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    let (id, mut all) = ready(&mut ws).await;
    all.extend(say(&mut ws, "one").await);
    all.extend(say(&mut ws, "two").await);
    let last = last_seq(&all);
    ws.close().await;

    let closed = Instant::now();
    let mut ws = csp
        .ws(&token, &format!("session={id}&after_seq={last}"))
        .await
        .unwrap();
    println!("reattach_ms={}", closed.elapsed().as_millis());
    let turn = say(&mut ws, "three").await;
    assert!(
        !turn.iter().any(|f| f["type"] == "session"),
        "no new process: {turn:?}"
    );
    assert_eq!(turn[0]["seq"].as_u64().unwrap(), last + 1, "{turn:?}");
    all.extend(turn);
    assert_contiguous(&seqs(&all));
    assert_eq!(session_entry(&csp, &token, &id).await["resume_count"], 0);
    ws.close().await;
    csp.stop().await;
}

/// After the idle timeout the process is gone; reopening resumes it with
/// the conversation intact.
#[tokio::test(flavor = "multi_thread")]
async fn reattach_after_the_idle_timeout_resumes() {
    let csp = start(
        Mode::Distributed,
        &[
            ("SESSION_IDLE_TIMEOUT_SECONDS", "1"),
            ("CSP_LIMIT_CHECK_MS", "100"),
        ],
    )
    .await;
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    let (id, mut all) = ready(&mut ws).await;
    all.extend(say(&mut ws, "first-answer").await);
    all.extend(say(&mut ws, "second-answer").await);
    let last = last_seq(&all);
    ws.close().await;
    let idle = wait_listed(&csp, &token, &id, "idle").await;
    assert_eq!(idle["is_resumable"], true, "{idle}");

    let mut ws = csp
        .ws(&token, &format!("session={id}&after_seq={last}"))
        .await
        .unwrap();
    let preparing_at = std::cell::Cell::new(None);
    let frames = ws
        .until(|f| {
            if is_status(f, "preparing") && preparing_at.get().is_none() {
                preparing_at.set(Some(Instant::now()));
            }
            is_status(f, "ready")
        })
        .await
        .unwrap();
    println!(
        "resume_ms={}",
        preparing_at.get().expect("preparing").elapsed().as_millis()
    );
    assert!(
        frames
            .iter()
            .any(|f| is_status(f, "idle") && f["reason"] == "idle_timeout"),
        "the idle frame replays: {frames:?}"
    );
    let preparing = frames.iter().find(|f| is_status(f, "preparing")).unwrap();
    assert_eq!(preparing["reason"], "resume", "{preparing}");
    assert!(
        !frames.iter().any(|f| is_notice(f, "resume_failed")),
        "{frames:?}"
    );
    all.extend(frames);

    let (status, history) = csp
        .get(&token, &format!("/api/v1/sessions/{id}/messages"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{history}");
    let msgs = history["messages"].as_array().unwrap();
    assert_eq!(
        msgs.iter().filter(|m| m["type"] == "user_message").count(),
        2,
        "{history}"
    );
    let kept = text_of(msgs);
    assert!(kept.contains("first-answer") && kept.contains("second-answer"));

    all.extend(say(&mut ws, "third-answer").await);
    assert_contiguous(&seqs(&all));
    let sent = last_request_messages(&csp).await;
    assert!(
        sent.contains("first-answer") && sent.contains("second-answer"),
        "the resumed CLI sent the earlier turns: {sent}"
    );
    assert_eq!(session_entry(&csp, &token, &id).await["resume_count"], 1);
    ws.close().await;
    csp.stop().await;
}

/// A transcript that cannot be restored: the user is told, and a fresh
/// agent answers in the same session.
async fn resume_fails(damage: fn(&std::path::Path)) {
    let csp = start(
        Mode::Dev,
        &[
            ("SESSION_IDLE_TIMEOUT_SECONDS", "1"),
            ("CSP_LIMIT_CHECK_MS", "100"),
        ],
    )
    .await;
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    let (id, mut all) = ready(&mut ws).await;
    all.extend(say(&mut ws, "before-damage").await);
    let last = last_seq(&all);
    ws.close().await;
    wait_listed(&csp, &token, &id, "idle").await;
    let transcripts = csp.transcripts(&id);
    assert!(!transcripts.is_empty(), "the CLI kept a transcript");
    for t in &transcripts {
        damage(t);
    }

    let mut ws = csp
        .ws(&token, &format!("session={id}&after_seq={last}"))
        .await
        .unwrap();
    let frames = ws.until(|f| is_status(f, "ready")).await.unwrap();
    let notice = frames
        .iter()
        .find(|f| is_notice(f, "resume_failed"))
        .unwrap_or_else(|| panic!("resume_failed notice: {frames:?}"));
    assert_eq!(notice["message"], RESUME_FAILED);
    all.extend(frames);
    all.extend(say(&mut ws, "after-damage").await);
    assert_contiguous(&seqs(&all));
    ws.close().await;
    csp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_with_a_deleted_transcript_starts_fresh() {
    resume_fails(|p| std::fs::remove_file(p).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_with_a_garbage_transcript_starts_fresh() {
    resume_fails(|p| {
        let garbage: Vec<u8> = (0..64)
            .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
            .collect();
        std::fs::write(p, garbage).unwrap();
    })
    .await;
}

/// Ten people who open and close a chat no longer lock out the eleventh:
/// with three slots, twelve open/close cycles all reach ready (each takes
/// the slot of the least recently left session), the replica stays ready,
/// and the first conversation resumes with its history.
#[tokio::test(flavor = "multi_thread")]
async fn open_close_cycles_take_the_slots_of_detached_sessions() {
    let csp = Csp::start(
        Mode::Distributed,
        Options {
            prewarm: 1,
            max_sessions: 3,
            // The replica's limit is under test here, not the user's.
            env: vec![("MAX_SESSIONS_PER_USER".into(), "12".into())],
            ..Options::default()
        },
    )
    .await
    .expect("csp starts");
    let token = csp.login().await.unwrap();
    let mut ws = csp.ws(&token, "").await.unwrap();
    let (first, mut all) = ready(&mut ws).await;
    all.extend(say(&mut ws, "first-answer").await);
    let last = last_seq(&all);
    ws.close().await;

    for i in 1..12 {
        let mut ws = csp.ws(&token, "").await.unwrap();
        let frames = ws
            .until(|f| is_status(f, "ready") || f["type"] == "error")
            .await
            .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        assert!(
            is_status(frames.last().unwrap(), "ready"),
            "cycle {i}: {frames:?}"
        );
        ws.close().await;
    }
    let idle = wait_listed(&csp, &token, &first, "idle").await;
    assert_eq!(idle["is_resumable"], true, "{idle}");
    assert_eq!(idle["ended_reason"], "idle_timeout", "{idle}");
    // Every slot is held by a session nobody uses: still ready.
    let (status, body) = csp.get(&token, "/api/v1/health/ready").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active_sessions"], 3, "{body}");

    let mut ws = csp
        .ws(&token, &format!("session={first}&after_seq={last}"))
        .await
        .unwrap();
    let frames = ws.until(|f| is_status(f, "ready")).await.unwrap();
    assert!(
        frames
            .iter()
            .any(|f| is_status(f, "idle") && f["reason"] == "idle_timeout"),
        "the browser saw the same suspension as after the idle timeout: {frames:?}"
    );
    let preparing = frames.iter().find(|f| is_status(f, "preparing")).unwrap();
    assert_eq!(preparing["reason"], "resume", "{preparing}");
    assert!(
        !frames.iter().any(|f| is_notice(f, "resume_failed")),
        "{frames:?}"
    );
    all.extend(frames);
    all.extend(say(&mut ws, "second-answer").await);
    assert_contiguous(&seqs(&all));
    let sent = last_request_messages(&csp).await;
    assert!(
        sent.contains("first-answer"),
        "the resumed CLI sent the earlier turn: {sent}"
    );
    let metrics = csp.scrape_all().await.unwrap();
    let evicted = metric(&metrics, "csp_sessions_evicted_total");
    // Thirteen starts (twelve opens and the resume) on three slots.
    assert!(evicted >= 10.0, "evictions: {evicted}");
    ws.close().await;
    csp.stop().await;
}

/// MAX_SESSIONS_PER_USER=2: with both chats open a third is refused with
/// the catalogued error; once both are left, a third suspends the one left
/// first and starts.
#[tokio::test(flavor = "multi_thread")]
async fn the_per_user_limit_yields_the_least_recently_left_session_first() {
    let csp = start(Mode::Dev, &[("MAX_SESSIONS_PER_USER", "2")]).await;
    let token = csp.login().await.unwrap();
    let mut a = csp.ws(&token, "").await.unwrap();
    let (a_id, _) = ready(&mut a).await;
    let mut b = csp.ws(&token, "").await.unwrap();
    let (b_id, _) = ready(&mut b).await;

    let mut c = csp.ws(&token, "").await.unwrap();
    let refused = c.next().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "too_many_sessions", "{refused}");
    assert_eq!(
        refused["message"],
        "You already have 2 active sessions. Close one to start another."
    );
    c.close().await;

    // b is left first, so b yields, not a.
    b.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = csp.ws(&token, "").await.unwrap();
    let (c_id, _) = ready(&mut c).await;
    let b_entry = wait_listed(&csp, &token, &b_id, "idle").await;
    assert_eq!(b_entry["is_resumable"], true, "{b_entry}");
    assert_eq!(b_entry["ended_reason"], "idle_timeout", "{b_entry}");
    assert_eq!(session_entry(&csp, &token, &a_id).await["status"], "ready");
    assert_eq!(session_entry(&csp, &token, &c_id).await["status"], "ready");
    c.close().await;
    csp.stop().await;
}
