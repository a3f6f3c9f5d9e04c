use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};
use uuid::Uuid;

use crate::lines::{Line, LineReader};
use crate::process::{kill_tree, signal_group, tree_rss_bytes};
use crate::reaper::{ManagedPid, spawn_managed};
use crate::sandbox::Sandbox;
use crate::{Config, Decision, Error, Message, PermissionHook, PermissionRequest, SpawnSpec};

/// The `initialize` reply alone is about 17 KB; tool results can be large.
const MAX_LINE: usize = 32 * 1024 * 1024;
const STDERR_TAIL: usize = 8 * 1024;
/// How long the exit report waits for the pipes to drain once the process
/// is gone; a surviving grandchild could otherwise hold them open forever.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const PRE_TOOL_USE_CALLBACK: &str = "csp_pre_tool_use";
/// The session id the official SDK's streaming client puts on user lines.
const USER_SESSION_ID: &str = "default";

/// What the model is told when the permission hook misses its deadline.
pub const PERMISSION_TIMEOUT_MESSAGE: &str = "Permission check timed out; the tool was not run.";
const PERMISSION_FAILED_MESSAGE: &str = "Permission check failed; the tool was not run.";

// Nearly every event is a `Message`; boxing it would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    Message(Message),
    /// Always the last event. `code` is `None` when a signal ended the process.
    Exited {
        code: Option<i32>,
        stderr_tail: String,
    },
}

/// Everything the agent says, in order. Must be drained: the reader never
/// waits for the consumer, because it also carries the control replies
/// (interrupt acks) that the consumer may be waiting for.
#[derive(Debug)]
pub struct AgentEvents {
    early: VecDeque<AgentEvent>,
    rx: mpsc::UnboundedReceiver<AgentEvent>,
}

impl AgentEvents {
    /// `None` after [`AgentEvent::Exited`] has been delivered.
    pub async fn recv(&mut self) -> Option<AgentEvent> {
        match self.early.pop_front() {
            Some(event) => Some(event),
            None => self.rx.recv().await,
        }
    }
}

/// A running Claude Code CLI. Dropping it kills its whole process tree,
/// running tools included.
#[derive(Debug)]
pub struct Agent {
    pid: u32,
    session_id: Uuid,
    link: Arc<Link>,
    exit: watch::Receiver<Option<Exit>>,
    close_stdin: CancellationToken,
    /// Parent of every pending permission decision.
    stop: CancellationToken,
    control_timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Exit {
    code: Option<i32>,
}

impl Agent {
    /// Starts the CLI and returns once it has answered `initialize`, i.e. is
    /// ready and idle. No API call is made before the first user message.
    #[instrument(skip_all, fields(session.id = %spec.session_id, resume = spec.resume), err)]
    pub async fn spawn(
        cfg: &Config,
        spec: SpawnSpec,
        hook: Arc<dyn PermissionHook>,
    ) -> Result<(Agent, AgentEvents), Error> {
        check_cli(&cfg.cli_path)?;
        prepare_dirs(&spec)?;

        let mut command = match &cfg.sandbox {
            Sandbox::Off => {
                let mut command = Command::new(&cfg.cli_path);
                command.args(cfg.args(&spec));
                command
            }
            Sandbox::Bubblewrap(bwrap) => {
                bwrap.command(&cfg.cli_path, &cfg.args(&spec), &spec.workdir, &spec.reach)
            }
        };
        command
            .env_clear()
            .envs(cfg.env(&spec))
            .current_dir(&spec.workdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let (mut child, managed) =
            spawn_managed(&mut command).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    Error::CliNotFound {
                        path: cfg.cli_path.clone(),
                    }
                }
                _ => Error::Spawn {
                    path: cfg.cli_path.clone(),
                    source,
                },
            })?;
        let (Some(pid), Some(stdin), Some(stdout), Some(stderr)) = (
            child.id(),
            child.stdin.take(),
            child.stdout.take(),
            child.stderr.take(),
        ) else {
            return Err(Error::Closed);
        };
        debug!(pid, "agent process started");

        let (outbound_tx, outbound_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = watch::channel(None);
        let link = Arc::new(Link {
            outbound: outbound_tx,
            pending: Mutex::new(Pending::default()),
            decisions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        let close_stdin = CancellationToken::new();
        let stop = CancellationToken::new();

        tokio::spawn(write_stdin(stdin, outbound_rx, close_stdin.clone()));
        let stdout_done = tokio::spawn(
            Reader {
                link: link.clone(),
                hook,
                permission_timeout: cfg.permission_timeout,
                events: events_tx.clone(),
                stop: stop.clone(),
            }
            .run(stdout),
        );
        let stderr_done = tokio::spawn(read_stderr(stderr));
        tokio::spawn(supervise(
            child,
            managed,
            pid,
            Readers {
                stdout: stdout_done,
                stderr: stderr_done,
            },
            exit_tx,
            events_tx,
            spec.exit_guard.clone(),
        ));

        let agent = Agent {
            pid,
            session_id: spec.session_id,
            link,
            exit: exit_rx,
            close_stdin,
            stop,
            control_timeout: cfg.control_timeout,
        };
        let mut events = AgentEvents {
            early: VecDeque::new(),
            rx: events_rx,
        };
        match tokio::time::timeout(cfg.init_timeout, agent.initialize(&mut events)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                return Err(Error::InitTimeout {
                    timeout: cfg.init_timeout,
                });
            }
        }
        info!(pid, "agent ready");
        Ok((agent, events))
    }

    /// Sends `initialize` and waits for its reply, or for the events that
    /// show it will never come: a failed `--resume` writes only a `result`
    /// and exits without answering.
    async fn initialize(&self, events: &mut AgentEvents) -> Result<(), Error> {
        let request = json!({
            "subtype": "initialize",
            // A matcher of null puts every tool call to the hook, including
            // the ones the CLI would auto-accept (`echo hi`).
            "hooks": {"PreToolUse": [{"matcher": null, "hookCallbackIds": [PRE_TOOL_USE_CALLBACK]}]},
        });
        let reply = self.link.call(request);
        tokio::pin!(reply);
        let mut reply_done = false;
        loop {
            tokio::select! {
                // Events first: when the process dies, its last `result` is
                // already queued by the time the pending reply is dropped.
                biased;
                event = events.rx.recv() => match event {
                    Some(AgentEvent::Message(Message::Result(result))) => {
                        return Err(Error::StartRejected { subtype: result.subtype, errors: result.errors });
                    }
                    Some(AgentEvent::Exited { code, stderr_tail }) => {
                        return Err(Error::ExitedBeforeReady { code, stderr_tail });
                    }
                    Some(event) => events.early.push_back(event),
                    None => return Err(Error::Closed),
                },
                reply = &mut reply, if !reply_done => match reply {
                    Ok(_) => return Ok(()),
                    // Gone: wait for the exit report, which says why.
                    Err(Error::Closed) => reply_done = true,
                    Err(error) => return Err(error),
                },
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory of the CLI and everything it runs, in bytes; see
    /// [`tree_rss_bytes`](crate::tree_rss_bytes). 0 once it has exited.
    pub fn rss_bytes(&self) -> u64 {
        tree_rss_bytes(self.pid)
    }

    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// Queues a user message; it starts a turn, or waits behind the current one.
    pub async fn send_user(&self, text: &str) -> Result<(), Error> {
        let line = json!({
            "type": "user",
            "message": {"role": "user", "content": text},
            "parent_tool_use_id": null,
            "session_id": USER_SESSION_ID,
        });
        let (written_tx, written_rx) = oneshot::channel();
        self.link.send(line, Some(written_tx))?;
        match written_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Error::Write(error)),
            Err(_) => Err(Error::Closed),
        }
    }

    /// Stops the current turn; it ends with an `error_during_execution`
    /// result. Returns once the CLI has acknowledged.
    pub async fn interrupt(&self) -> Result<(), Error> {
        self.request(json!({"subtype": "interrupt"}))
            .await
            .map(drop)
    }

    /// Any host → CLI control request, e.g. `{"subtype":"set_model","model":"…"}`.
    /// Returns the reply's `response` object.
    pub async fn request(&self, request: Value) -> Result<Value, Error> {
        let subtype = request
            .get("subtype")
            .and_then(Value::as_str)
            .ok_or(Error::InvalidRequest)?
            .to_owned();
        match tokio::time::timeout(self.control_timeout, self.link.call(request)).await {
            Ok(reply) => reply,
            Err(_) => Err(Error::ControlTimeout {
                subtype,
                timeout: self.control_timeout,
            }),
        }
    }

    /// Closes stdin (the CLI finishes the current turn, then exits), then
    /// escalates to SIGTERM of the process group and finally SIGKILL of the
    /// whole process tree, waiting `grace` before each step. Returns the exit
    /// code, `None` if a signal ended it.
    #[instrument(skip_all, fields(session.id = %self.session_id, pid = self.pid))]
    pub async fn shutdown(self, grace: Duration) -> Option<i32> {
        self.close_stdin.cancel();
        let mut exit = self.exit.clone();
        if let Ok(code) = tokio::time::timeout(grace, wait_exit(&mut exit)).await {
            return code;
        }
        // The CLI answers SIGTERM by stopping its running tools, then exits 143.
        debug!("agent did not exit after stdin closed; sending SIGTERM");
        signal_group(self.pid, Signal::SIGTERM);
        if let Ok(code) = tokio::time::timeout(grace, wait_exit(&mut exit)).await {
            return code;
        }
        warn!("agent did not exit after SIGTERM; killing its process tree");
        kill_tree(self.pid);
        wait_exit(&mut exit).await
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.cancel();
        self.close_stdin.cancel();
        if self.exit.borrow().is_none() {
            kill_tree(self.pid);
        }
    }
}

async fn wait_exit(exit: &mut watch::Receiver<Option<Exit>>) -> Option<i32> {
    match exit.wait_for(Option::is_some).await {
        Ok(state) => state.and_then(|exit| exit.code),
        Err(_) => None,
    }
}

fn check_cli(path: &Path) -> Result<(), Error> {
    let executable = std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if executable {
        Ok(())
    } else {
        Err(Error::CliNotFound {
            path: path.to_owned(),
        })
    }
}

fn prepare_dirs(spec: &SpawnSpec) -> Result<(), Error> {
    if !spec.workdir.is_dir() {
        return Err(Error::Workdir {
            path: spec.workdir.clone(),
        });
    }
    let prepare = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Prepare { path, source }
    };
    std::fs::create_dir_all(&spec.home).map_err(prepare(&spec.home))?;
    std::fs::create_dir_all(&spec.config_dir).map_err(prepare(&spec.config_dir))?;
    // Transcripts hold the whole conversation, tool output included.
    std::fs::set_permissions(&spec.config_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(prepare(&spec.config_dir))?;
    Ok(())
}

// ------------------------------------------------------------- the link

/// What the handle, the reader and the decision tasks share.
#[derive(Debug)]
struct Link {
    outbound: mpsc::UnboundedSender<Outbound>,
    pending: Mutex<Pending>,
    /// Permission decisions in progress, by the CLI's request id.
    decisions: Mutex<HashMap<String, CancellationToken>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Outbound {
    line: Value,
    written: Option<oneshot::Sender<std::io::Result<()>>>,
}

#[derive(Debug, Default)]
struct Pending {
    /// Set when stdout ends; no reply can arrive after that.
    closed: bool,
    waiting: HashMap<String, oneshot::Sender<Reply>>,
}

type Reply = Result<Value, Error>;

impl Link {
    fn send(
        &self,
        line: Value,
        written: Option<oneshot::Sender<std::io::Result<()>>>,
    ) -> Result<(), Error> {
        self.outbound
            .send(Outbound { line, written })
            .map_err(|_| Error::Closed)
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn decisions(&self) -> MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.decisions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends a control request and waits for its reply, without a deadline.
    async fn call(&self, request: Value) -> Reply {
        let subtype = request
            .get("subtype")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("req_{n}_{}", &Uuid::new_v4().simple().to_string()[..8]);
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.closed {
                return Err(Error::Closed);
            }
            pending.waiting.insert(id.clone(), reply_tx);
        }
        let _forget = ForgetOnDrop {
            link: self,
            id: &id,
        };
        self.send(
            json!({"type": "control_request", "request_id": id, "request": request}),
            None,
        )?;
        match reply_rx.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(Error::ControlRejected { message, code, .. })) => Err(Error::ControlRejected {
                subtype,
                message,
                code,
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(Error::Closed),
        }
    }

    fn respond(&self, request_id: &str, response: Value) {
        let line = json!({
            "type": "control_response",
            "response": {"subtype": "success", "request_id": request_id, "response": response},
        });
        // Fails only once stdin is gone, and then nobody is waiting.
        let _ = self.send(line, None);
    }

    fn respond_error(&self, request_id: &str, error: &str) {
        let line = json!({
            "type": "control_response",
            "response": {"subtype": "error", "request_id": request_id, "error": error},
        });
        let _ = self.send(line, None);
    }

    fn on_control_response(&self, line: &Value) {
        let response = &line["response"];
        let Some(id) = response.get("request_id").and_then(Value::as_str) else {
            debug!("control_response without a request_id");
            return;
        };
        let Some(waiter) = self.pending().waiting.remove(id) else {
            debug!(request.id = id, "control_response for no pending request");
            return;
        };
        let reply = if response.get("subtype").and_then(Value::as_str) == Some("success") {
            Ok(response.get("response").cloned().unwrap_or(Value::Null))
        } else {
            Err(Error::ControlRejected {
                subtype: String::new(),
                message: response
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no error message")
                    .to_owned(),
                code: response
                    .get("error_code")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        };
        let _ = waiter.send(reply);
    }

    fn close(&self) {
        let mut pending = self.pending();
        pending.closed = true;
        pending.waiting.clear();
        drop(pending);
        for (_, decision) in self.decisions().drain() {
            decision.cancel();
        }
    }
}

struct ForgetOnDrop<'a> {
    link: &'a Link,
    id: &'a str,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.link.pending().waiting.remove(self.id);
    }
}

// --------------------------------------------------------------- stdin

/// The only writer of stdin. Every line is serialized here from a `Value`:
/// one malformed line makes the CLI exit.
async fn write_stdin(
    mut stdin: ChildStdin,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    close: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            // Lines queued before the close still go out.
            biased;
            next = outbound.recv() => next,
            () = close.cancelled() => None,
        };
        let Some(Outbound { line, written }) = next else {
            break;
        };
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let result = stdin.write_all(&bytes).await;
        let failed = result.is_err();
        if let Err(error) = &result {
            debug!(%error, "writing to the agent's stdin failed");
        }
        if let Some(written) = written {
            let _ = written.send(result);
        }
        if failed {
            break;
        }
    }
    // Dropping stdin is the EOF that asks the CLI to finish and exit.
}

// -------------------------------------------------------------- stdout

struct Reader {
    link: Arc<Link>,
    hook: Arc<dyn PermissionHook>,
    permission_timeout: Duration,
    events: mpsc::UnboundedSender<AgentEvent>,
    stop: CancellationToken,
}

impl Reader {
    async fn run(self, stdout: impl AsyncRead + Unpin) {
        let mut lines = LineReader::new(BufReader::with_capacity(64 * 1024, stdout), MAX_LINE);
        let mut buf = Vec::new();
        loop {
            match lines.next(&mut buf).await {
                Ok(Some(Line::Complete)) => self.on_line(&buf),
                Ok(Some(Line::TooLong { len })) => {
                    warn!(len, "skipped an over-long line from the agent")
                }
                Ok(None) => break,
                Err(error) => {
                    warn!(%error, "reading the agent's stdout failed");
                    break;
                }
            }
        }
        self.link.close();
    }

    fn on_line(&self, line: &[u8]) {
        let line = line.trim_ascii();
        if !line.starts_with(b"{") {
            if !line.is_empty() {
                debug!(line = %String::from_utf8_lossy(line), "non-JSON line on the agent's stdout");
            }
            return;
        }
        let value: Value = match serde_json::from_slice(line) {
            Ok(value) => value,
            Err(error) => {
                debug!(%error, len = line.len(), "unparseable line on the agent's stdout");
                return;
            }
        };
        match value.get("type").and_then(Value::as_str) {
            Some("control_request") => self.on_control_request(&value),
            Some("control_response") => self.link.on_control_response(&value),
            Some("control_cancel_request") => self.on_cancel(&value),
            _ => {
                // The consumer may have dropped its receiver; control
                // traffic must keep flowing regardless.
                let _ = self
                    .events
                    .send(AgentEvent::Message(Message::from_value(value)));
            }
        }
    }

    fn on_control_request(&self, line: &Value) {
        let Some(id) = line.get("request_id").and_then(Value::as_str) else {
            debug!("control_request without a request_id");
            return;
        };
        let request = &line["request"];
        let subtype = request.get("subtype").and_then(Value::as_str).unwrap_or("");
        match subtype {
            "can_use_tool" => self.decide(
                id,
                Asked::CanUseTool,
                PermissionRequest {
                    tool_name: string_at(request, "tool_name"),
                    input: request.get("input").cloned().unwrap_or(Value::Null),
                    tool_use_id: request
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
            ),
            "hook_callback" => {
                let input = &request["input"];
                if input.get("hook_event_name").and_then(Value::as_str) != Some("PreToolUse") {
                    self.link.respond(id, json!({}));
                    return;
                }
                let tool_use_id = request
                    .get("tool_use_id")
                    .or_else(|| input.get("tool_use_id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.decide(
                    id,
                    Asked::PreToolUse,
                    PermissionRequest {
                        tool_name: string_at(input, "tool_name"),
                        input: input.get("tool_input").cloned().unwrap_or(Value::Null),
                        tool_use_id,
                    },
                );
            }
            "mcp_message" => self
                .link
                .respond_error(id, "This host serves no in-process MCP servers."),
            other => {
                debug!(
                    subtype = other,
                    "unsupported control request from the agent"
                );
                self.link
                    .respond_error(id, &format!("Unsupported control request subtype: {other}"));
            }
        }
    }

    /// Runs the hook off the reader, so that stdout (and the interrupt ack
    /// the caller may be waiting for) keeps flowing while it decides.
    fn decide(&self, id: &str, asked: Asked, request: PermissionRequest) {
        let id = id.to_owned();
        let cancelled = self.stop.child_token();
        self.link.decisions().insert(id.clone(), cancelled.clone());
        let link = self.link.clone();
        let hook = self.hook.clone();
        let deadline = self.permission_timeout;
        tokio::spawn(async move {
            let decision = tokio::select! {
                decision = decide_in_time(&*hook, &request, deadline) => decision,
                () = cancelled.cancelled() => return,
            };
            // Gone from the map means cancelled meanwhile: the CLI no longer
            // expects an answer.
            if link.decisions().remove(&id).is_none() {
                return;
            }
            match &decision {
                Decision::Allow => debug!(tool = %request.tool_name, "tool call allowed"),
                Decision::Deny { .. } => info!(tool = %request.tool_name, "tool call denied"),
            }
            link.respond(&id, asked.answer(&request, decision));
        });
    }

    fn on_cancel(&self, line: &Value) {
        let Some(id) = line.get("request_id").and_then(Value::as_str) else {
            return;
        };
        if let Some(decision) = self.link.decisions().remove(id) {
            debug!(request.id = id, "agent cancelled a permission request");
            decision.cancel();
        }
    }
}

fn string_at(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Fails closed: a hook that is too slow or panics denies the call.
async fn decide_in_time(
    hook: &dyn PermissionHook,
    request: &PermissionRequest,
    deadline: Duration,
) -> Decision {
    let decision = AssertUnwindSafe(hook.decide(request)).catch_unwind();
    match tokio::time::timeout(deadline, decision).await {
        Ok(Ok(decision)) => decision,
        Ok(Err(_)) => {
            warn!(tool = %request.tool_name, "permission hook panicked; denying");
            Decision::deny(PERMISSION_FAILED_MESSAGE)
        }
        Err(_) => {
            warn!(tool = %request.tool_name, ?deadline, "permission hook timed out; denying");
            Decision::deny(PERMISSION_TIMEOUT_MESSAGE)
        }
    }
}

/// Which of the two permission paths asked; they want different replies.
#[derive(Debug, Clone, Copy)]
enum Asked {
    PreToolUse,
    CanUseTool,
}

impl Asked {
    fn answer(self, request: &PermissionRequest, decision: Decision) -> Value {
        match (self, decision) {
            (Asked::PreToolUse, Decision::Allow) => json!({"hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "allow",
                "permissionDecisionReason": "Allowed by the deployment's tool policy.",
            }}),
            (Asked::PreToolUse, Decision::Deny { message }) => json!({"hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": message,
            }}),
            (Asked::CanUseTool, Decision::Allow) => {
                json!({"behavior": "allow", "updatedInput": request.input})
            }
            (Asked::CanUseTool, Decision::Deny { message }) => {
                json!({"behavior": "deny", "message": message})
            }
        }
    }
}

// ---------------------------------------------------- stderr and exit

/// Logs stderr at debug level and keeps its tail for the exit report.
async fn read_stderr(mut stderr: impl AsyncRead + Unpin) -> String {
    let mut tail = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                debug!(stderr = %String::from_utf8_lossy(&chunk[..n]).trim_end(), "agent stderr");
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
    String::from_utf8_lossy(&tail).into_owned()
}

/// The tasks reading the process's output.
struct Readers {
    stdout: JoinHandle<()>,
    /// Ends with the tail of stderr.
    stderr: JoinHandle<String>,
}

async fn supervise(
    mut child: Child,
    managed: ManagedPid,
    pid: u32,
    readers: Readers,
    exit: watch::Sender<Option<Exit>>,
    events: mpsc::UnboundedSender<AgentEvent>,
    exit_guard: Option<Arc<dyn std::any::Any + Send + Sync>>,
) {
    let code = match child.wait().await {
        Ok(status) => status.code(),
        Err(error) => {
            warn!(pid, %error, "waiting for the agent process failed");
            None
        }
    };
    // Reaped by tokio: the pid is free, the zombie reaper may have it.
    drop(managed);
    // Whatever the CLI left running (background shells) would be orphaned.
    signal_group(pid, Signal::SIGKILL);
    // Whatever the process held (its model credential) dies with it.
    drop(exit_guard);
    exit.send_replace(Some(Exit { code }));
    let drain = async {
        let _ = readers.stdout.await;
        readers.stderr.await.unwrap_or_default()
    };
    let stderr_tail = tokio::time::timeout(DRAIN_TIMEOUT, drain)
        .await
        .unwrap_or_default();
    info!(pid, code, "agent process exited");
    let _ = events.send(AgentEvent::Exited { code, stderr_tail });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_have_the_shapes_the_cli_accepts() {
        let request = PermissionRequest {
            tool_name: "Bash".into(),
            input: json!({"command": "echo hi"}),
            tool_use_id: None,
        };
        assert_eq!(
            Asked::CanUseTool.answer(&request, Decision::Allow),
            json!({"behavior": "allow", "updatedInput": {"command": "echo hi"}})
        );
        assert_eq!(
            Asked::CanUseTool.answer(&request, Decision::deny("no")),
            json!({"behavior": "deny", "message": "no"})
        );
        assert_eq!(
            Asked::PreToolUse.answer(&request, Decision::deny("no"))["hookSpecificOutput"],
            json!({"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": "no"})
        );
        assert_eq!(
            Asked::PreToolUse.answer(&request, Decision::Allow)["hookSpecificOutput"]["permissionDecision"],
            "allow"
        );
    }

    struct Never;

    #[async_trait::async_trait]
    impl PermissionHook for Never {
        async fn decide(&self, _: &PermissionRequest) -> Decision {
            futures::future::pending().await
        }
    }

    struct Panics;

    #[async_trait::async_trait]
    impl PermissionHook for Panics {
        async fn decide(&self, _: &PermissionRequest) -> Decision {
            panic!("policy engine crashed")
        }
    }

    fn bash() -> PermissionRequest {
        PermissionRequest {
            tool_name: "Bash".into(),
            input: Value::Null,
            tool_use_id: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_hook_is_denied_at_the_deadline() {
        let decision = decide_in_time(&Never, &bash(), Duration::from_secs(30)).await;
        assert_eq!(decision, Decision::deny(PERMISSION_TIMEOUT_MESSAGE));
    }

    #[tokio::test]
    async fn a_panicking_hook_is_denied() {
        let decision = decide_in_time(&Panics, &bash(), Duration::from_secs(30)).await;
        assert_eq!(decision, Decision::deny(PERMISSION_FAILED_MESSAGE));
    }
}
