//! One session = one actor task that owns its agent process. Commands
//! (send, interrupt, yield) arrive on a channel; agent output is translated
//! into session events, numbered, published and persisted — all in this one
//! task, which is what makes the per-session sequence gap-free and ordered.
//!
//! The actor also enforces the session's limits (see `lifecycle`): it may
//! replace its process (memory, `--resume`), stop it while keeping the
//! session resumable (idle, shutdown) or end the session (duration). A
//! session outlives its processes: one actor can run several in turn.
//!
//! Who owns what: the actor owns its session's state (seq, queue, turn in
//! flight, the process it serves); it is given a [`Context`] (store, bus,
//! breaker, governor, gates, audit queue, limits) and gets processes from
//! its [`Spawner`](crate::process::Spawner). It never sees the pool: the
//! pool owns the slots and the table of live sessions, starts actors and
//! hears how each ended (its [`Outcome`]), so the dependency runs one way,
//! pool → session. Serving a process is one `select!` over three sources,
//! each with its handler: commands ([`Actor::on_command`]), the agent's
//! output ([`Actor::on_output`]) and time ([`Actor::on_tick`], plus the
//! pool's drain and kill signals).

use crate::context::Context;
use crate::governor::Reservation;
use crate::lifecycle::{Action, Lifecycle, Observation};
use crate::metrics as m;
use crate::output::Outgoing;
use crate::process::{self, Process, Started};
use crate::translate::{Failure, Translator};
use csp_agent::AgentEvent;
use csp_breaker::Permit;
use csp_domain::{
    AuditEvent, AuditStatus, ErrorCode, Event, SessionEvent, SessionId, SessionStatus,
    StatusReason, ToolStatus, UserId,
};
use csp_store::NewMessage;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[cfg(test)]
mod tests;

/// Now, on tokio's clock: the same as `Instant::now()` in production, and
/// paused time in the unit tests (limits are tested without waiting).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// How long an event waits for a database that refuses for now (restarting,
/// connection lost) before it is published unstored. Persisting first is
/// what lets a browser that saw an event find it in the history; the turn's
/// stream pauses meanwhile.
const PERSIST_PATIENCE: Duration = Duration::from_secs(30);

/// Messages a user may stack behind the turn in flight.
const MAX_QUEUED: usize = 32;
/// How long an ending agent gets to exit after its stdin closes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A process being started when shutdown begins gets this long to come up
/// (so it can be ended cleanly rather than abandoned mid-spawn).
const SPAWN_DRAIN_WAIT: Duration = Duration::from_secs(10);

/// A message waiting for its turn, with the budget set aside for it.
pub(crate) struct Turn {
    text: String,
    client_id: Option<String>,
    reservation: Option<Reservation>,
    /// From the `Send` that brought the message until its `result`; a child
    /// of the gRPC call's span, so the turn continues the gateway's trace.
    span: tracing::Span,
}

/// A turn that takes longer is marked `slow` on its span and logged.
const SLOW_TURN: Duration = Duration::from_secs(60);

pub(crate) enum Command {
    Send {
        turn: Turn,
        reply: oneshot::Sender<Result<bool, ErrorCode>>,
    },
    Interrupt {
        reply: oneshot::Sender<bool>,
    },
    /// The pool needs the slot (it is making room): true when the
    /// session is idle (a process, no turn in flight, nothing queued); with
    /// `suspend` it then stops exactly as after the idle timeout.
    Yield {
        suspend: bool,
        reply: oneshot::Sender<bool>,
    },
}

/// The pool's reference to a live session.
#[derive(Clone)]
pub(crate) struct Handle {
    id: SessionId,
    pub(crate) user: UserId,
    tx: mpsc::Sender<Command>,
}

impl Handle {
    /// Hands a message to the actor. On an error the reservation was not
    /// used and the caller releases it.
    pub(crate) async fn send(
        &self,
        text: String,
        client_id: Option<String>,
        reservation: Option<Reservation>,
    ) -> Result<bool, ErrorCode> {
        let (reply, rx) = oneshot::channel();
        let span = tracing::info_span!(
            "turn",
            session.id = %self.id,
            slow = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let turn = Turn {
            text,
            client_id,
            reservation,
            span,
        };
        self.tx
            .send(Command::Send { turn, reply })
            .await
            .map_err(|_| ErrorCode::SessionUnavailable)?;
        rx.await.map_err(|_| ErrorCode::SessionUnavailable)?
    }

    pub(crate) async fn interrupt(&self) -> Result<bool, ErrorCode> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Interrupt { reply })
            .await
            .map_err(|_| ErrorCode::SessionUnavailable)?;
        rx.await.map_err(|_| ErrorCode::SessionUnavailable)
    }

    /// Whether the session is idle; with `suspend`, an idle one stops its
    /// process (resumable, as after the idle timeout).
    pub(crate) async fn yield_process(&self, suspend: bool) -> bool {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Command::Yield { suspend, reply })
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

/// How the actor gets its first process.
pub(crate) enum Start {
    /// A pre-warmed process.
    Warm(Started),
    /// A new process for a new conversation.
    Cold,
    /// A new process continuing the stored conversation (`--resume`).
    Resume,
}

/// How the next process is obtained inside the actor's loop.
enum Next {
    Warm(Started),
    Cold,
    Resume,
    /// After the memory limit: resume, then say so.
    Restart,
}

/// How a session's run ended: its stored status and the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Process stopped, conversation resumable.
    Idle(StatusReason),
    /// Process died; conversation resumable.
    Failed(StatusReason),
    /// Over for good.
    Ended(StatusReason),
}

impl Outcome {
    pub(crate) fn reason(self) -> StatusReason {
        match self {
            Outcome::Idle(r) | Outcome::Failed(r) | Outcome::Ended(r) => r,
        }
    }

    /// The status it leaves the session in, and whether that is resumable.
    fn status(self) -> (SessionStatus, bool) {
        match self {
            Outcome::Idle(_) => (SessionStatus::Idle, true),
            Outcome::Failed(_) => (SessionStatus::Failed, true),
            Outcome::Ended(_) => (SessionStatus::Ended, false),
        }
    }
}

/// What serving one process led to.
enum Served {
    Restart,
    Done(Outcome),
}

/// A stopped process whose session stays resumable: the idle timeout's
/// outcome, and the same when the pool needs the slot of an idle session.
fn suspended() -> Served {
    Served::Done(Outcome::Idle(StatusReason::IdleTimeout))
}

/// Signals from the pool: `drain` lets the turn in flight finish, `kill`
/// ends everything now.
#[derive(Clone)]
pub(crate) struct Stop {
    pub(crate) drain: CancellationToken,
    pub(crate) kill: CancellationToken,
}

pub(crate) struct Actor {
    id: SessionId,
    ctx: Arc<Context>,
    stop: Stop,
    seq: u64,
    translator: Translator,
    queue: VecDeque<Turn>,
    user: UserId,
    /// Budget reservation of the turn in flight, settled by its `result`.
    reservation: Option<Reservation>,
    /// Tool calls seen and not yet finished: name, input, start (unix ms).
    tools: HashMap<String, (String, serde_json::Value, i64)>,
    /// "Your permissions have changed" is said once per process run.
    told_permissions_changed: bool,
    in_flight: bool,
    /// Breaker permit of the turn in flight.
    permit: Option<Permit>,
    /// Assistant text streamed since the last persisted message, and the seq
    /// of its last delta: deltas are persisted as one message per block.
    pending_text: Option<(String, u64)>,
    titled: bool,
    /// The CLI's session id (differs from `id` after a fresh restart).
    agent_session: Uuid,
    /// The span of the turn in flight, when it started, and its W3C
    /// `traceparent` (worked out once: every event of the turn carries it).
    turn_span: Option<(tracing::Span, Instant, Option<String>)>,
    /// Spans of the tool calls in flight, by `tool_use_id`.
    tool_spans: HashMap<String, tracing::Span>,
    /// Bounds and redacts every event before it is numbered (see `output`).
    outgoing: Outgoing,
}

/// Where an existing session's actor continues from.
pub(crate) struct Continue {
    pub(crate) last_seq: u64,
    pub(crate) total_cost_usd: f64,
    pub(crate) titled: bool,
    pub(crate) agent_session: Uuid,
}

/// One process being served, and the state of its limits.
struct Run {
    process: Box<dyn Process>,
    life: Lifecycle,
    /// Last output of the agent (or start of the turn): stalls count from it.
    last_output: Instant,
    /// Shutdown began: no new turn, the process ends after the one in flight.
    draining: bool,
}

impl Run {
    fn turn_started(&mut self) {
        self.last_output = now();
        self.life.turn_started();
    }
}

/// Why serving a process stops, and how the process is ended.
enum Exit {
    /// It died or its stdin broke (`code`: its exit code, when it told).
    Crashed(Option<i32>),
    /// A limit or the pool ends it (interrupted if busy, then closed).
    Stop(Served),
    /// Shutdown: it is closed with this grace, the session stays resumable.
    Shutdown(Duration),
}

impl Actor {
    pub(crate) fn new(
        ctx: Arc<Context>,
        id: SessionId,
        user: UserId,
        stop: Stop,
        from: Option<Continue>,
    ) -> (Self, Handle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(64);
        let from = from.unwrap_or(Continue {
            last_seq: 0,
            total_cost_usd: 0.0,
            titled: false,
            agent_session: id.0,
        });
        let outgoing = Outgoing::new(ctx.known_secrets.clone(), ctx.limits.tool_output_max_bytes);
        let actor = Self {
            id,
            ctx,
            stop,
            seq: from.last_seq,
            translator: Translator::resumed(from.total_cost_usd),
            queue: VecDeque::new(),
            user,
            reservation: None,
            tools: HashMap::new(),
            told_permissions_changed: false,
            in_flight: false,
            permit: None,
            pending_text: None,
            titled: from.titled,
            agent_session: from.agent_session,
            turn_span: None,
            tool_spans: HashMap::new(),
            outgoing,
        };
        (actor, Handle { id, user, tx }, rx)
    }

    pub(crate) async fn run(mut self, start: Start, mut rx: mpsc::Receiver<Command>) -> Outcome {
        let mut next = match start {
            Start::Warm(started) => Next::Warm(started),
            Start::Cold => Next::Cold,
            // Nothing was ever said: there is no conversation to restore.
            Start::Resume if !self.titled => Next::Cold,
            Start::Resume => Next::Resume,
        };
        loop {
            let restarted = matches!(next, Next::Restart);
            let started = match self.start(next, &mut rx).await {
                Some(Ok(started)) => started,
                Some(Err(e)) => {
                    tracing::warn!(session.id = %self.id, error = %e, "agent failed to start");
                    self.emit(Event::error(ErrorCode::AgentStartFailed)).await;
                    return self
                        .finish(Outcome::Failed(StatusReason::StartFailed))
                        .await;
                }
                None => return self.finish(Outcome::Idle(StatusReason::Shutdown)).await,
            };
            self.set_state(SessionStatus::Ready, true, None).await;
            self.emit_status(SessionStatus::Ready, None).await;
            if restarted {
                self.emit(Event::session_restarted(self.id)).await;
            }
            match self.serve(started, &mut rx).await {
                Served::Restart => next = Next::Restart,
                Served::Done(outcome) => return self.finish(outcome).await,
            }
        }
    }

    /// Gets the next process, saying `preparing` unless it is a warm one;
    /// `None` when shutdown came first.
    async fn start(
        &mut self,
        next: Next,
        rx: &mut mpsc::Receiver<Command>,
    ) -> Option<Result<Started, csp_agent::Error>> {
        match next {
            Next::Warm(started) => Some(Ok(started)),
            Next::Cold => {
                self.emit_status(SessionStatus::Preparing, None).await;
                let spawn = self.spawn(process::Reason::Cold);
                self.while_preparing(spawn, rx).await
            }
            Next::Resume | Next::Restart => {
                let reason = if matches!(next, Next::Restart) {
                    StatusReason::Restart
                } else {
                    StatusReason::Resume
                };
                self.emit_status(SessionStatus::Preparing, Some(reason))
                    .await;
                self.restore(rx).await
            }
        }
    }

    /// A start of a process for this session's CLI session, owned (it runs
    /// while the actor keeps taking commands).
    fn spawn(
        &self,
        reason: process::Reason,
    ) -> BoxFuture<'static, Result<Started, csp_agent::Error>> {
        let spawner = self.ctx.spawner.clone();
        let request = process::Request {
            session: self.id,
            agent_session: self.agent_session,
            reason,
        };
        async move { spawner.spawn(request).await }.boxed()
    }

    /// Starts a process that continues the conversation; if the CLI cannot
    /// restore it (transcript missing or corrupt), says so and starts a
    /// fresh CLI session under the same csp session.
    async fn restore(
        &mut self,
        rx: &mut mpsc::Receiver<Command>,
    ) -> Option<Result<Started, csp_agent::Error>> {
        let spawn = self.spawn(process::Reason::Resume);
        match self.while_preparing(spawn, rx).await? {
            Ok(started) => return Some(Ok(started)),
            Err(e) => {
                tracing::warn!(session.id = %self.id, agent_session = %self.agent_session, error = %e, "resume failed; starting a fresh agent session");
                metrics::counter!(m::SESSION_TERMINATIONS, "reason" => "resume_failed")
                    .increment(1);
            }
        }
        self.emit(Event::notice(ErrorCode::ResumeFailed)).await;
        self.agent_session = Uuid::new_v4();
        self.translator.fresh_process();
        if let Err(e) = self
            .ctx
            .store
            .set_agent_session(self.id, self.agent_session)
            .await
        {
            tracing::warn!(session.id = %self.id, error = %e, "could not store the new agent session id");
        }
        let spawn = self.spawn(process::Reason::Cold);
        self.while_preparing(spawn, rx).await
    }

    /// Serves one process until it must be replaced or the session stops.
    async fn serve(&mut self, started: Started, rx: &mut mpsc::Receiver<Command>) -> Served {
        let Started {
            process,
            mut output,
        } = started;
        let limits = self.ctx.limits.clone();
        let mut tick = tokio::time::interval(limits.check_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut run = Run {
            process,
            life: Lifecycle::new(limits, now()),
            last_output: now(),
            draining: self.stop.drain.is_cancelled(),
        };
        let mut exit = self.next_queued(&mut run).await;
        while exit.is_none() {
            exit = tokio::select! {
                cmd = rx.recv() => self.on_command(&mut run, cmd).await,
                ev = output.recv() => self.on_output(&mut run, ev).await,
                _ = tick.tick() => self.on_tick(&mut run).await,
                _ = self.stop.drain.cancelled(), if !run.draining => self.on_drain(&mut run),
                _ = self.stop.kill.cancelled() => Some(Exit::Shutdown(Duration::from_millis(500))),
            };
        }
        let exit = exit.expect("the loop ends with an exit");
        self.end_process(run.process, exit).await
    }

    /// A command while a process runs.
    async fn on_command(&mut self, run: &mut Run, cmd: Option<Command>) -> Option<Exit> {
        match cmd {
            Some(Command::Send { turn, reply }) => self.on_send(run, turn, reply).await,
            Some(Command::Interrupt { reply }) => {
                let _ = reply.send(self.on_interrupt(run).await);
                None
            }
            Some(Command::Yield { suspend, reply }) => {
                let idle = !self.in_flight && self.queue.is_empty() && !run.draining;
                let _ = reply.send(idle);
                (idle && suspend).then(|| Exit::Stop(suspended()))
            }
            // Every handle is gone: the pool is shutting down.
            None => Some(Exit::Shutdown(SHUTDOWN_GRACE)),
        }
    }

    /// A message: refused, queued behind the turn in flight, or its turn
    /// starts now.
    async fn on_send(
        &mut self,
        run: &mut Run,
        turn: Turn,
        reply: oneshot::Sender<Result<bool, ErrorCode>>,
    ) -> Option<Exit> {
        let refused = if run.draining {
            Some(ErrorCode::ServerShuttingDown)
        } else if now() >= run.life.deadline() {
            Some(ErrorCode::DurationLimit)
        } else {
            None
        };
        if let Some(code) = refused {
            let _ = reply.send(Err(code));
            return None;
        }
        match self.accept(&turn.text, self.in_flight) {
            Err(code) => {
                let _ = reply.send(Err(code));
                None
            }
            Ok(true) => {
                self.queue.push_back(turn);
                let _ = reply.send(Ok(true));
                None
            }
            Ok(false) => match self.start_turn(&*run.process, turn, false).await {
                Ok(()) => {
                    run.turn_started();
                    let _ = reply.send(Ok(false));
                    None
                }
                Err(Some(code)) => {
                    let _ = reply.send(Err(code));
                    None
                }
                Err(None) => {
                    let _ = reply.send(Err(ErrorCode::AgentCrashed));
                    Some(Exit::Crashed(None))
                }
            },
        }
    }

    /// Stops the turn in flight; whether there was one.
    async fn on_interrupt(&mut self, run: &Run) -> bool {
        if !self.in_flight {
            return false;
        }
        self.translator.interrupt_requested();
        if let Err(e) = run.process.interrupt().await {
            tracing::warn!(session.id = %self.id, error = %e, "interrupt failed");
        }
        true
    }

    /// What the agent said: translated into events; when it ends a turn,
    /// the turn is accounted for and the next one may start.
    async fn on_output(&mut self, run: &mut Run, ev: Option<AgentEvent>) -> Option<Exit> {
        let msg = match ev {
            Some(AgentEvent::Message(msg)) => msg,
            Some(AgentEvent::Exited { code, stderr_tail }) => {
                tracing::debug!(session.id = %self.id, stderr = %stderr_tail, "agent stderr");
                return Some(Exit::Crashed(code));
            }
            None => return Some(Exit::Crashed(None)),
        };
        run.last_output = now();
        if let Some(failure) = Failure::of(&msg) {
            // Only a turn still retrying is stopped; a final `result`
            // already ended its turn.
            let retrying = !matches!(msg, csp_agent::Message::Result(_));
            self.model_failure(&*run.process, failure, retrying).await;
        }
        // A turn's `result` goes out only once the turn is accounted for
        // (breaker, budget): whoever reacts to it, like the budget
        // indicator, sees the new state.
        let results = self.emit_translated(&msg).await;
        let csp_agent::Message::Result(result) = &msg else {
            for event in results {
                self.emit(event).await;
            }
            return None;
        };
        self.turn_ended(result.is_error, results).await;
        self.after_turn(run).await
    }

    /// Emits the events of one agent message, except `result`s, which it
    /// returns to be emitted once the turn is accounted for.
    async fn emit_translated(&mut self, msg: &csp_agent::Message) -> Vec<Event> {
        let mut results = Vec::new();
        for event in self.translator.translate(msg, now()) {
            for event in self.review(event) {
                if matches!(event, Event::Result { .. }) {
                    results.push(event);
                } else {
                    self.emit(event).await;
                }
            }
        }
        results
    }

    /// The turn in flight ended: the breaker hears of it, its budget is
    /// settled, and its `result` (then any budget warning) goes out.
    async fn turn_ended(&mut self, is_error: bool, results: Vec<Event>) {
        self.in_flight = false;
        if let Some(permit) = self.permit.take()
            && !is_error
        {
            self.ctx.breaker.on_success(permit).await;
        }
        let notice = self.settle().await;
        for event in results.into_iter().chain(notice) {
            self.emit(event).await;
        }
        self.end_turn_span(is_error);
    }

    /// Between turns: shutdown and the limits may end the process, else the
    /// next queued message starts.
    async fn after_turn(&mut self, run: &mut Run) -> Option<Exit> {
        if run.draining {
            return Some(Exit::Shutdown(SHUTDOWN_GRACE));
        }
        if let Some(done) = self.act(run).await {
            return Some(Exit::Stop(done));
        }
        self.next_queued(run).await
    }

    /// Starts the next queued message, if any.
    async fn next_queued(&mut self, run: &mut Run) -> Option<Exit> {
        if !self.start_queued(&*run.process).await {
            return Some(Exit::Crashed(None));
        }
        if self.in_flight {
            run.turn_started();
        }
        None
    }

    /// The periodic check of the limits.
    async fn on_tick(&mut self, run: &mut Run) -> Option<Exit> {
        self.act(run).await.map(Exit::Stop)
    }

    /// Shutdown began: an idle process ends now, a busy one after its turn.
    fn on_drain(&mut self, run: &mut Run) -> Option<Exit> {
        run.draining = true;
        if !self.in_flight {
            return Some(Exit::Shutdown(SHUTDOWN_GRACE));
        }
        tracing::info!(session.id = %self.id, "shutting down: letting the turn in flight finish");
        None
    }

    /// Ends the process the way `exit` says; what the session does next.
    async fn end_process(&mut self, process: Box<dyn Process>, exit: Exit) -> Served {
        match exit {
            Exit::Crashed(code) => self.crashed(process, code).await,
            Exit::Stop(served) => self.stop_process(process, served).await,
            Exit::Shutdown(grace) => {
                process.shutdown(grace).await;
                Served::Done(Outcome::Idle(StatusReason::Shutdown))
            }
        }
    }

    /// Checks the limits and carries out what needs no process change;
    /// returns what ends this process.
    async fn act(&mut self, run: &mut Run) -> Option<Served> {
        let rss_bytes = run.process.rss_bytes();
        self.ctx.usage.record_rss(self.id, rss_bytes);
        let attended = match self.ctx.cache.presence(self.id).await {
            Ok(n) => n > 0,
            // Unknown is not "away": never stop a session on a cache error.
            Err(e) => {
                tracing::debug!(session.id = %self.id, error = %e, "presence lookup failed");
                true
            }
        };
        let action = run.life.check(Observation {
            now: now(),
            in_flight: self.in_flight,
            tool_running: self.translator.tool_running(),
            last_output: run.last_output,
            rss_bytes,
            attended,
            queued: !self.queue.is_empty(),
        })?;
        match action {
            Action::WarnDuration { minutes_left } => {
                self.emit(Event::session_expiring(minutes_left)).await;
                None
            }
            Action::InterruptStalled => {
                tracing::warn!(session.id = %self.id, stall_s = run.life.limits().stall_timeout.as_secs(), "model API silent; stopping the turn");
                metrics::counter!(m::QUERY_ERRORS, "type" => "stalled").increment(1);
                self.translator.stopped(ErrorCode::ModelStalled);
                if let Err(e) = run.process.interrupt().await {
                    tracing::warn!(session.id = %self.id, error = %e, "interrupt failed");
                }
                None
            }
            Action::EndDuration => {
                self.emit(Event::error(ErrorCode::DurationLimit)).await;
                Some(Served::Done(Outcome::Ended(StatusReason::DurationLimit)))
            }
            Action::Suspend => Some(suspended()),
            Action::Restart => {
                tracing::info!(session.id = %self.id, rss_bytes, limit = run.life.limits().max_rss_bytes, "memory limit exceeded; restarting the agent");
                self.emit(Event::notice(ErrorCode::SessionRestarting)).await;
                Some(Served::Restart)
            }
        }
    }

    async fn stop_process(&mut self, process: Box<dyn Process>, served: Served) -> Served {
        if self.in_flight {
            // Only the duration limit ends a process mid-turn, after its grace.
            let _ = process.interrupt().await;
        }
        process.shutdown(SHUTDOWN_GRACE).await;
        self.ctx.usage.forget_rss(self.id);
        if matches!(served, Served::Restart) {
            metrics::counter!(m::SESSION_TERMINATIONS, "reason" => "rss_restart").increment(1);
        }
        served
    }

    /// One failed model API request: metrics, the shared breaker, and when
    /// the breaker is now open, the turn stops instead of retrying on.
    async fn model_failure(&mut self, process: &dyn Process, failure: Failure, retrying: bool) {
        metrics::counter!(m::QUERY_ERRORS, "type" => failure.as_str()).increment(1);
        if failure == Failure::Authentication {
            self.ctx.model_key.suspect();
        }
        if !failure.is_outage() {
            return;
        }
        self.ctx.breaker.on_failure().await;
        if retrying && self.in_flight && self.ctx.breaker.state().await == csp_breaker::State::Open
        {
            tracing::warn!(session.id = %self.id, "model API circuit open; stopping the retrying turn");
            self.translator.stopped(ErrorCode::ModelUnavailable);
            self.permit = None;
            if let Err(e) = process.interrupt().await {
                tracing::warn!(session.id = %self.id, error = %e, "interrupt failed");
            }
        }
    }

    /// Waits for a process start while still taking messages (they queue).
    async fn while_preparing(
        &mut self,
        mut spawn: BoxFuture<'static, Result<Started, csp_agent::Error>>,
        rx: &mut mpsc::Receiver<Command>,
    ) -> Option<Result<Started, csp_agent::Error>> {
        loop {
            tokio::select! {
                started = &mut spawn => return Some(started),
                cmd = rx.recv() => match cmd {
                    // Nothing can be said to the agent yet: every message queues.
                    Some(Command::Send { turn, reply }) => {
                        let r = self
                            .accept(&turn.text, true)
                            .inspect(|_| self.queue.push_back(turn));
                        let _ = reply.send(r);
                    }
                    Some(Command::Interrupt { reply } | Command::Yield { reply, .. }) => {
                        let _ = reply.send(false);
                    }
                    None => break,
                },
                _ = self.stop.drain.cancelled() => break,
            }
        }
        // Shutting down mid-start: let the start finish so the process can
        // be ended cleanly instead of abandoned half-spawned.
        if let Ok(Ok(started)) = tokio::time::timeout(SPAWN_DRAIN_WAIT, spawn).await {
            started.process.shutdown(SHUTDOWN_GRACE).await;
        }
        None
    }

    /// Checks a message; `Ok(true)` when it has to wait (`must_wait`: a turn
    /// is in flight or the agent is still starting).
    fn accept(&self, text: &str, must_wait: bool) -> Result<bool, ErrorCode> {
        if text.trim().is_empty() {
            return Err(ErrorCode::EmptyMessage);
        }
        if must_wait && self.queue.len() >= MAX_QUEUED {
            return Err(ErrorCode::QueueFull);
        }
        Ok(must_wait)
    }

    /// Starts the next queued message, if any; false when the agent is gone.
    /// A queued message the open circuit refuses is shown with the refusal
    /// (the user must not think it was answered or lost).
    async fn start_queued(&mut self, process: &dyn Process) -> bool {
        while let Some(turn) = self.queue.pop_front() {
            match self.start_turn(process, turn, true).await {
                Ok(()) => return true,
                Err(Some(_)) => continue,
                Err(None) => return false,
            }
        }
        true
    }

    /// `Err(Some(code))`: refused, nothing sent; `Err(None)`: the agent is gone.
    async fn start_turn(
        &mut self,
        process: &dyn Process,
        turn: Turn,
        queued: bool,
    ) -> Result<(), Option<ErrorCode>> {
        let Turn {
            text,
            client_id,
            reservation,
            span,
        } = turn;
        self.ctx.bindings.set_turn(self.id, Some(span.clone()));
        let traceparent = csp_telemetry::context_of(&span)
            .into_iter()
            .find(|(k, _)| *k == "traceparent")
            .map(|(_, v)| v);
        self.turn_span = Some((span, now(), traceparent));
        let permit = self.ctx.breaker.permit().await;
        if permit == Permit::Rejected {
            self.release(reservation);
            metrics::counter!(m::QUERY_ERRORS, "type" => "circuit_open").increment(1);
            if queued {
                self.emit(Event::UserMessage { text, client_id }).await;
                self.emit(Event::error(ErrorCode::ModelUnavailable)).await;
            }
            return Err(Some(ErrorCode::ModelUnavailable));
        }
        if !self.titled {
            self.titled = true;
            let text = self.outgoing.secrets().redact(&text);
            let title: String = text.trim().chars().take(80).collect();
            if let Err(e) = self.ctx.store.set_title(self.id, &title).await {
                tracing::warn!(session.id = %self.id, error = %e, "could not store the title");
            }
        }
        self.emit(Event::UserMessage {
            text: text.clone(),
            client_id,
        })
        .await;
        self.in_flight = true;
        self.permit = Some(permit);
        self.reservation = reservation;
        process.send_user(&text).await.map_err(|_| None)
    }

    /// Gives back budget set aside for a turn that did not run.
    fn release(&self, reservation: Option<Reservation>) {
        if let Some(r) = reservation {
            let governor = self.ctx.governor.clone();
            let (user, id) = (self.user, self.id);
            tokio::spawn(async move { governor.settle_turn(&r, user, id, 0.0).await });
        }
    }

    /// The turn in flight ended: its cost (from its `result`, already
    /// translated) settles its reservation. The 80 % warning, if this turn
    /// crossed it, to send after the `result`.
    async fn settle(&mut self) -> Option<Event> {
        let cost = self.translator.last_turn_cost();
        self.ctx.usage.add_cost(cost);
        let r = self.reservation.take()?;
        let notice = self
            .ctx
            .governor
            .settle_turn(&r, self.user, self.id, cost)
            .await?;
        Some(Event::Notice {
            code: ErrorCode::BudgetWarning,
            message: notice,
            action: None,
            minutes_left: None,
        })
    }

    /// Applies the permission gate's verdicts to tool events, audits every
    /// tool invocation, and adds the notice a downgrade calls for.
    fn review(&mut self, mut event: Event) -> Vec<Event> {
        let mut extra = None;
        match &mut event {
            Event::ToolUse {
                tool_use_id,
                name,
                input,
            } => {
                let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
                let span = tracing::info_span!(
                    parent: self.turn_span.as_ref().and_then(|(s, _, _)| s.id()),
                    "tool",
                    tool.name = %name,
                    tool.status = tracing::field::Empty,
                );
                self.tool_spans.insert(tool_use_id.clone(), span);
                self.tools.insert(
                    tool_use_id.clone(),
                    (name.clone(), input.clone(), now_ms as i64),
                );
            }
            Event::ToolResult {
                tool_use_id,
                status,
                duration_ms,
                content,
            } => {
                let denial = self.ctx.bindings.take_denial(self.id, tool_use_id);
                if let Some(verdict) = &denial {
                    *status = ToolStatus::Denied;
                    *content = verdict.message.clone();
                    if verdict.reason == "permissions_changed" && !self.told_permissions_changed {
                        self.told_permissions_changed = true;
                        extra = Some(Event::notice(ErrorCode::PermissionsChanged));
                    }
                }
                let (name, mut input, at_ms) = self
                    .tools
                    .remove(tool_use_id.as_str())
                    .unwrap_or_else(|| ("unknown".into(), serde_json::Value::Null, 0));
                // As stored in the conversation: no platform secret, and
                // small enough for one queue message.
                self.outgoing.secrets().redact_value(&mut input);
                crate::output::bound_json(&mut input, self.ctx.limits.tool_output_max_bytes);
                let (label, audit_status) = (status.as_str(), AuditStatus::from(*status));
                if let Some(span) = self.tool_spans.remove(tool_use_id.as_str()) {
                    span.record("tool.status", label);
                }
                metrics::counter!(m::TOOL_EXECUTIONS, "tool" => name.clone(), "status" => label)
                    .increment(1);
                if *status != ToolStatus::Denied {
                    metrics::histogram!(m::TOOL_DURATION, "tool" => name.clone())
                        .record(*duration_ms as f64 / 1000.0);
                }
                let at_ms = if at_ms == 0 {
                    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
                } else {
                    at_ms
                };
                self.ctx.audit(AuditEvent {
                    audit_id: Uuid::new_v4(),
                    timestamp_ms: at_ms,
                    user_id: Some(self.user),
                    session_id: Some(self.id),
                    tool_name: name,
                    sanitized_input: csp_redact::redact_json(&input).to_string(),
                    result_status: audit_status,
                    execution_duration_ms: (audit_status != AuditStatus::Denied)
                        .then_some(*duration_ms as i64),
                    // A tool call itself costs nothing; model spend is per
                    // turn (the session's result and the budget).
                    cost_usd: Some(0.0),
                });
            }
            _ => {}
        }
        let mut out = vec![event];
        out.extend(extra);
        out
    }

    /// Closes the span of the turn that just ended, marking a slow one.
    fn end_turn_span(&mut self, is_error: bool) {
        self.ctx.bindings.set_turn(self.id, None);
        self.tool_spans.clear();
        let Some((span, started, _)) = self.turn_span.take() else {
            return;
        };
        let took = now().saturating_duration_since(started);
        if took > SLOW_TURN {
            span.record("slow", true);
            tracing::warn!(session.id = %self.id, took_s = took.as_secs(), "slow turn");
        }
        if is_error {
            span.record("otel.status_code", "ERROR");
        }
    }

    async fn crashed(&mut self, process: Box<dyn Process>, code: Option<i32>) -> Served {
        tracing::warn!(session.id = %self.id, exit_code = ?code, in_flight = self.in_flight, "agent process ended unexpectedly");
        process.shutdown(Duration::from_millis(100)).await;
        metrics::counter!(m::QUERY_ERRORS, "type" => "agent_crashed").increment(1);
        // The CLI reported no cost for the turn it died in: nothing to charge.
        let reservation = self.reservation.take();
        self.release(reservation);
        self.emit(Event::error(ErrorCode::AgentCrashed)).await;
        Served::Done(Outcome::Failed(StatusReason::Crashed))
    }

    async fn finish(mut self, outcome: Outcome) -> Outcome {
        self.ctx.usage.forget_rss(self.id);
        let reservation = self.reservation.take();
        self.release(reservation);
        while let Some(turn) = self.queue.pop_front() {
            self.release(turn.reservation);
        }
        let (status, resumable) = outcome.status();
        self.emit_status(status, Some(outcome.reason())).await;
        self.flush_text().await;
        self.set_state(status, resumable, Some(outcome.reason()))
            .await;
        outcome
    }

    async fn set_state(
        &self,
        status: SessionStatus,
        resumable: bool,
        reason: Option<StatusReason>,
    ) {
        if let Err(e) = self
            .ctx
            .store
            .set_session_state(
                self.id,
                status.store_text(),
                resumable,
                reason.map(StatusReason::as_str),
            )
            .await
        {
            tracing::warn!(session.id = %self.id, error = %e, "could not store the session status");
        }
    }

    async fn emit_status(&mut self, status: SessionStatus, reason: Option<StatusReason>) {
        let model = matches!(status, SessionStatus::Preparing | SessionStatus::Ready)
            .then(|| self.ctx.model_label.clone());
        self.emit(Event::status(status, self.id, model, reason))
            .await;
    }

    /// Emits `event` bounded and with the platform's secrets redacted: what
    /// is stored and what is sent are the same. Streamed text that might
    /// begin a secret waits for the next piece, or goes out before the next
    /// other event.
    async fn emit(&mut self, event: Event) {
        for event in self.outgoing.process(event) {
            self.emit_one(event).await;
        }
    }

    /// Numbers, persists, then publishes one event. Persisting first means a
    /// browser that saw an event and reloads finds it in the history; deltas
    /// are only buffered here, so streaming pays no database round trip.
    async fn emit_one(&mut self, event: Event) {
        self.seq += 1;
        let ev = SessionEvent {
            session_id: self.id,
            seq: self.seq,
            event,
            trace: self.turn_span.as_ref().and_then(|(_, _, t)| t.clone()),
        };
        self.persist(&ev).await;
        if let Err(e) = self.ctx.bus.publish(&ev).await {
            // Live viewers miss this frame; the store still has it for a
            // reload. Logged, not fatal: the turn goes on.
            tracing::error!(session.id = %self.id, seq = ev.seq, error = %e, "could not publish a session event");
        }
    }

    async fn persist(&mut self, ev: &SessionEvent) {
        match &ev.event {
            Event::Delta { text } => {
                let pending = self.pending_text.get_or_insert_with(|| (String::new(), 0));
                pending.0.push_str(text);
                pending.1 = ev.seq;
            }
            Event::UserMessage { .. }
            | Event::ToolUse { .. }
            | Event::ToolResult { .. }
            | Event::Result { .. }
            | Event::Error { .. }
            | Event::Notice {
                code:
                    ErrorCode::SessionRestarted
                    | ErrorCode::ResumeFailed
                    | ErrorCode::SessionExpiring
                    | ErrorCode::BudgetWarning
                    | ErrorCode::PermissionsChanged,
                ..
            } => {
                self.flush_text().await;
                if let Event::Result { total_cost_usd, .. } = &ev.event {
                    let total_cost_usd = *total_cost_usd;
                    if let Err(e) = self.ctx.store.set_total_cost(self.id, total_cost_usd).await {
                        tracing::warn!(session.id = %self.id, error = %e, "could not store the session cost");
                    }
                }
                self.append(ev.seq, ev.event.kind(), ev.to_frame()).await;
            }
            // A reload must not show a stopped session as ready: its last
            // state change is part of the history.
            Event::Session {
                status: SessionStatus::Failed | SessionStatus::Ended | SessionStatus::Idle,
                ..
            } => {
                self.flush_text().await;
                self.append(ev.seq, ev.event.kind(), ev.to_frame()).await;
            }
            Event::Session { .. } | Event::Thinking { .. } | Event::Notice { .. } => {}
        }
    }

    /// Stores streamed text as one `delta` frame holding the whole block, at
    /// the seq of its last delta: history is the stream, compacted.
    async fn flush_text(&mut self) {
        if let Some((text, seq)) = self.pending_text.take() {
            let frame = SessionEvent {
                session_id: self.id,
                seq,
                event: Event::Delta { text },
                trace: None,
            }
            .to_frame();
            self.append(seq, "assistant", frame).await;
        }
    }

    async fn append(&self, seq: u64, kind: &str, body: serde_json::Value) {
        let msg = NewMessage {
            session_id: self.id,
            seq,
            kind: kind.to_owned(),
            body,
        };
        let deadline = tokio::time::Instant::now() + PERSIST_PATIENCE;
        let mut pause = Duration::from_millis(100);
        loop {
            // The append is idempotent on (session, seq): a retry of one
            // that committed unseen does nothing.
            match self.ctx.store.append_message(msg.clone()).await {
                Ok(()) => return,
                Err(e) if e.is_transient() && tokio::time::Instant::now() + pause < deadline => {
                    tracing::warn!(session.id = %self.id, seq, error = %e, "could not persist a message yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::warn!(session.id = %self.id, seq, error = %e, "could not persist a message");
                    return;
                }
            }
        }
    }
}
