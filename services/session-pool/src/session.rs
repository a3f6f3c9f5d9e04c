//! One session = one actor task that owns its agent process. Commands
//! (send, interrupt) arrive on a channel; agent output is translated into
//! session events, numbered, published and persisted — all in this one task,
//! which is what makes the per-session sequence gap-free and ordered.

use crate::translate::Translator;
use csp_agent::{Agent, AgentEvent, AgentEvents};
use csp_bus::EventBus;
use csp_domain::{ErrorCode, Event, SessionEvent, SessionId, SessionStatus, UserId};
use csp_store::{NewMessage, SessionStore};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Messages a user may stack behind the turn in flight.
const MAX_QUEUED: usize = 32;
/// How long an ending agent gets to exit after its stdin closes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub(crate) enum Command {
    Send {
        text: String,
        client_id: Option<String>,
        reply: oneshot::Sender<Result<bool, ErrorCode>>,
    },
    Interrupt {
        reply: oneshot::Sender<bool>,
    },
}

/// The pool's reference to a live session.
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) user: UserId,
    tx: mpsc::Sender<Command>,
}

impl Handle {
    pub(crate) async fn send(
        &self,
        text: String,
        client_id: Option<String>,
    ) -> Result<bool, ErrorCode> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Send {
                text,
                client_id,
                reply,
            })
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
}

/// A started agent, or the future that starts one (cold start).
pub(crate) enum Start {
    Warm(Agent, AgentEvents),
    Cold(futures::future::BoxFuture<'static, Result<(Agent, AgentEvents), csp_agent::Error>>),
}

pub(crate) struct Actor {
    pub(crate) id: SessionId,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) model_label: String,
    pub(crate) shutdown: CancellationToken,
    seq: u64,
    translator: Translator,
    queue: VecDeque<(String, Option<String>)>,
    in_flight: bool,
    /// Assistant text streamed since the last persisted message, and the seq
    /// of its last delta: deltas are persisted as one message per block.
    pending_text: Option<(String, u64)>,
    titled: bool,
}

/// How an actor's run ended, for the pool's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ended,
    Failed,
}

impl Actor {
    pub(crate) fn new(
        id: SessionId,
        user: UserId,
        bus: Arc<dyn EventBus>,
        store: Arc<dyn SessionStore>,
        model_label: String,
        shutdown: CancellationToken,
    ) -> (Self, Handle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(64);
        let actor = Self {
            id,
            bus,
            store,
            model_label,
            shutdown,
            seq: 0,
            translator: Translator::default(),
            queue: VecDeque::new(),
            in_flight: false,
            pending_text: None,
            titled: false,
        };
        (actor, Handle { user, tx }, rx)
    }

    pub(crate) async fn run(mut self, start: Start, mut rx: mpsc::Receiver<Command>) -> Outcome {
        let (agent, mut events) = match start {
            Start::Warm(agent, events) => (agent, events),
            Start::Cold(spawn) => {
                self.emit(Event::Session {
                    status: SessionStatus::Preparing,
                    session_id: self.id,
                    model: Some(self.model_label.clone()),
                })
                .await;
                match self.while_preparing(spawn, &mut rx).await {
                    Some(Ok(started)) => started,
                    Some(Err(e)) => {
                        tracing::warn!(session.id = %self.id, error = %e, "agent failed to start");
                        self.emit(Event::error(ErrorCode::AgentStartFailed)).await;
                        return self.finish(Outcome::Failed).await;
                    }
                    None => return self.finish(Outcome::Ended).await,
                }
            }
        };
        self.set_status("active").await;
        self.emit(Event::Session {
            status: SessionStatus::Ready,
            session_id: self.id,
            model: Some(self.model_label.clone()),
        })
        .await;
        if !self.start_queued(&agent).await {
            return self.crashed(agent, None).await;
        }

        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Command::Send { text, client_id, reply }) => {
                        let queued = self.accept(&text, self.in_flight);
                        match queued {
                            Err(code) => { let _ = reply.send(Err(code)); }
                            Ok(true) => {
                                self.queue.push_back((text, client_id));
                                let _ = reply.send(Ok(true));
                            }
                            Ok(false) => {
                                let sent = self.start_turn(&agent, text, client_id).await.is_ok();
                                let _ = reply.send(if sent { Ok(false) } else { Err(ErrorCode::AgentCrashed) });
                                if !sent {
                                    return self.crashed(agent, None).await;
                                }
                            }
                        }
                    }
                    Some(Command::Interrupt { reply }) => {
                        let interrupted = self.in_flight;
                        if interrupted {
                            self.translator.interrupt_requested();
                            if let Err(e) = agent.interrupt().await {
                                tracing::warn!(session.id = %self.id, error = %e, "interrupt failed");
                            }
                        }
                        let _ = reply.send(interrupted);
                    }
                    // Every handle is gone: the pool is shutting down.
                    None => break,
                },
                ev = events.recv() => match ev {
                    Some(AgentEvent::Message(msg)) => {
                        let turn_ended = matches!(msg, csp_agent::Message::Result(_));
                        for event in self.translator.translate(&msg, Instant::now()) {
                            self.emit(event).await;
                        }
                        if turn_ended {
                            self.in_flight = false;
                            if !self.start_queued(&agent).await {
                                return self.crashed(agent, None).await;
                            }
                        }
                    }
                    Some(AgentEvent::Exited { code, stderr_tail }) => {
                        tracing::debug!(session.id = %self.id, stderr = %stderr_tail, "agent stderr");
                        return self.crashed(agent, code).await;
                    }
                    None => return self.crashed(agent, None).await,
                },
                _ = self.shutdown.cancelled() => break,
            }
        }
        agent.shutdown(SHUTDOWN_GRACE).await;
        self.emit(Event::Session {
            status: SessionStatus::Ended,
            session_id: self.id,
            model: None,
        })
        .await;
        self.finish(Outcome::Ended).await
    }

    /// Waits for a cold start while still taking messages (they queue).
    async fn while_preparing(
        &mut self,
        mut spawn: futures::future::BoxFuture<
            'static,
            Result<(Agent, AgentEvents), csp_agent::Error>,
        >,
        rx: &mut mpsc::Receiver<Command>,
    ) -> Option<Result<(Agent, AgentEvents), csp_agent::Error>> {
        loop {
            tokio::select! {
                started = &mut spawn => return Some(started),
                cmd = rx.recv() => match cmd {
                    // Nothing can be said to the agent yet: every message queues.
                    Some(Command::Send { text, client_id, reply }) => {
                        let r = self
                            .accept(&text, true)
                            .inspect(|_| self.queue.push_back((text, client_id)));
                        let _ = reply.send(r);
                    }
                    Some(Command::Interrupt { reply }) => {
                        let _ = reply.send(false);
                    }
                    None => return None,
                },
                _ = self.shutdown.cancelled() => return None,
            }
        }
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
    async fn start_queued(&mut self, agent: &Agent) -> bool {
        match self.queue.pop_front() {
            Some((text, client_id)) => self.start_turn(agent, text, client_id).await.is_ok(),
            None => true,
        }
    }

    async fn start_turn(
        &mut self,
        agent: &Agent,
        text: String,
        client_id: Option<String>,
    ) -> Result<(), csp_agent::Error> {
        if !self.titled {
            self.titled = true;
            let title: String = text.trim().chars().take(80).collect();
            if let Err(e) = self.store.set_title(self.id, &title).await {
                tracing::warn!(session.id = %self.id, error = %e, "could not store the title");
            }
        }
        self.emit(Event::UserMessage {
            text: text.clone(),
            client_id,
        })
        .await;
        self.in_flight = true;
        agent.send_user(&text).await
    }

    async fn crashed(mut self, agent: Agent, code: Option<i32>) -> Outcome {
        tracing::warn!(session.id = %self.id, exit_code = ?code, in_flight = self.in_flight, "agent process ended unexpectedly");
        agent.shutdown(Duration::from_millis(100)).await;
        self.emit(Event::error(ErrorCode::AgentCrashed)).await;
        self.finish(Outcome::Failed).await
    }

    async fn finish(mut self, outcome: Outcome) -> Outcome {
        if outcome == Outcome::Failed {
            self.emit(Event::Session {
                status: SessionStatus::Failed,
                session_id: self.id,
                model: None,
            })
            .await;
        }
        self.flush_text().await;
        self.set_status(match outcome {
            Outcome::Ended => "ended",
            Outcome::Failed => "failed",
        })
        .await;
        outcome
    }

    async fn set_status(&self, status: &str) {
        if let Err(e) = self.store.set_session_status(self.id, status).await {
            tracing::warn!(session.id = %self.id, error = %e, "could not store the session status");
        }
    }

    /// Numbers, persists, then publishes one event. Persisting first means a
    /// browser that saw an event and reloads finds it in the history; deltas
    /// are only buffered here, so streaming pays no database round trip.
    async fn emit(&mut self, event: Event) {
        self.seq += 1;
        let ev = SessionEvent {
            session_id: self.id,
            seq: self.seq,
            event,
        };
        self.persist(&ev).await;
        if let Err(e) = self.bus.publish(&ev).await {
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
            | Event::Error { .. } => {
                self.flush_text().await;
                if let Event::Result { total_cost_usd, .. } = &ev.event {
                    let total_cost_usd = *total_cost_usd;
                    if let Err(e) = self.store.set_total_cost(self.id, total_cost_usd).await {
                        tracing::warn!(session.id = %self.id, error = %e, "could not store the session cost");
                    }
                }
                self.append(ev.seq, ev.event.kind(), ev.to_frame()).await;
            }
            // A reload must not show a dead session as ready: its last
            // state change is part of the history.
            Event::Session {
                status: SessionStatus::Failed | SessionStatus::Ended,
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
        if let Err(e) = self.store.append_message(msg).await {
            tracing::warn!(session.id = %self.id, seq, error = %e, "could not persist a message");
        }
    }
}
