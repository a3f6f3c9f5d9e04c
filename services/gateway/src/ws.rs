//! The browser WebSocket: one per open chat (see `docs/websocket-protocol.md`).
//!
//! Three tasks per connection: the reader (client frames → session-pool
//! RPCs), the relay (bus subscription → send queue) and the writer (send
//! queue → socket). The send queue is bounded: a browser that cannot keep up
//! is disconnected with 1013 and reconnects with `after_seq`, so memory stays
//! bounded and nothing is lost.

use crate::auth::{AuthUser, Via, origin_matches};
use crate::dto::{ClientFrame, ConnectionFrame, StreamFrame};
use crate::error::ApiError;
use crate::metrics as m;
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use csp_domain::{ErrorCode, SessionId};
use csp_proto::v1 as pb;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Hard limit enforced by the WebSocket codec: beyond it the connection
/// closes (1009). Below it, frames over `max_frame_bytes` get an error frame.
const HARD_FRAME_LIMIT: usize = 1 << 20;
const PRESENCE_TTL: Duration = Duration::from_secs(90);
const PRESENCE_REFRESH: Duration = Duration::from_secs(30);
/// How long a session's detach time is kept (longer than a session lives).
const DETACHED_TTL: Duration = Duration::from_secs(24 * 3600);
/// Close code for "your after_seq is older than the replay window".
const CLOSE_REPLAY_GAP: u16 = 4409;
const CLOSE_TRY_AGAIN: u16 = 1013;
/// "Service restart": the server is going away; reconnect with backoff.
const CLOSE_SERVICE_RESTART: u16 = 1012;

#[derive(Debug, Deserialize)]
pub(crate) struct WsQuery {
    session: Option<String>,
    after_seq: Option<u64>,
    /// A new session's ticket-enhancement tenant (refused with `session`).
    tenant: Option<String>,
}

/// What a socket opens: the user's session `session` (replayed after
/// `after_seq`; `not_running`: why it cannot run, told once the socket is
/// open), or a new session, bound to `tenant` when one is given.
enum Open {
    Attach {
        session: SessionId,
        after_seq: u64,
        not_running: Option<ErrorCode>,
    },
    New {
        tenant: Option<String>,
    },
}

/// The longest tenant id repeated in a refusal (a real one is at most 63).
const SHOWN_TENANT_CHARS: usize = 64;

/// `tenant` if the user may bind a chat session to it: it is in the
/// tickets service's list of the user's chat tenants. An unknown tenant is
/// refused with the same words as a forbidden one, so ids cannot be probed.
async fn chat_tenant(
    state: &AppState,
    user: &AuthUser,
    tenant: String,
) -> Result<String, ApiError> {
    let list = state
        .tickets
        .clone()
        .list_chat_tenants(state.as_user(user, pb::ListChatTenantsRequest {}))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    if list.tenants.iter().any(|t| t.tenant_id == tenant) {
        return Ok(tenant);
    }
    let shown: String = tenant.chars().take(SHOWN_TENANT_CHARS).collect();
    tracing::info!(user.id = %user.id, tenant.id = %shown, "chat about a tenant the user may not see refused");
    Err(ApiError {
        code: ErrorCode::Forbidden,
        message: Some(format!("You may not chat about tenant '{shown}'.")),
    })
}

/// Browsers always send Origin on WebSockets. Without one, this is a
/// programmatic client; only a bearer token (which a third-party page cannot
/// attach) is accepted then. A present Origin is checked even with a bearer.
fn origin_allowed(state: &AppState, headers: &http::HeaderMap, via: Via) -> bool {
    origin_matches(&state.allowed_origins, headers, via)
}

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<WsQuery>,
    headers: http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !origin_allowed(&state, &headers, user.via) {
        tracing::warn!(user.id = %user.id, origin = ?headers.get(http::header::ORIGIN), "WebSocket from a foreign origin refused");
        return Err(ApiError {
            code: ErrorCode::Forbidden,
            message: Some("This page's origin may not open a chat connection.".into()),
        });
    }
    // `tenant=` (empty) is no tenant.
    let tenant = q.tenant.filter(|t| !t.is_empty());
    if tenant.is_some() && q.session.is_some() {
        return Err(ApiError {
            code: ErrorCode::InvalidRequest,
            message: Some("tenant applies to a new session only".into()),
        });
    }
    // Reattach: the session must exist and be the user's, checked before
    // the upgrade so that a wrong id is a plain 404. A new session's tenant
    // too: a refusal is a plain 403, and nothing was acquired.
    let open = match q.session.as_deref() {
        Some(s) => {
            let id: SessionId = s
                .parse()
                .map_err(|_| ApiError::new(ErrorCode::SessionNotFound))?;
            state
                .default_pool
                .clone()
                .get_session(state.as_user(
                    &user,
                    pb::GetSessionRequest {
                        session_id: id.to_string(),
                        user_id: user.id.to_string(),
                    },
                ))
                .await
                .map_err(|s| ApiError::from_status(&s))?;
            // Reopening a session whose process stopped (idle, crash,
            // restart of the server) continues it. When it cannot run, the
            // socket still opens: the history replays and the error says why.
            // The seq the browser holds: a resumed process numbers after it.
            let after_seq = q.after_seq.unwrap_or(0);
            let not_running = state.ensure_running(id, &user, after_seq).await.err();
            Open::Attach {
                session: id,
                after_seq,
                not_running,
            }
        }
        None => match tenant {
            Some(t) => Open::New {
                tenant: Some(chat_tenant(&state, &user, t).await?),
            },
            None => Open::New { tenant: None },
        },
    };
    let ws = ws
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        // Small buffers: an idle connection should cost kilobytes, not the
        // 128 KiB per direction of the defaults.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(HARD_FRAME_LIMIT * 2);
    Ok(ws.on_upgrade(move |socket| connection(state, user, open, socket)))
}

struct Gauge;
impl Gauge {
    fn open() -> Self {
        metrics::gauge!(m::WEBSOCKET_CONNECTIONS).increment(1.0);
        Gauge
    }
}
impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::gauge!(m::WEBSOCKET_CONNECTIONS).decrement(1.0);
    }
}

fn text(frame: &impl Serialize) -> Message {
    let json = serde_json::to_string(frame).expect("frames always serialise");
    Message::Text(Utf8Bytes::from(json))
}

fn error_frame(code: ErrorCode, message: Option<String>) -> Message {
    text(&ConnectionFrame::Error {
        code,
        message: message.as_deref().unwrap_or(code.user_message()),
    })
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

fn shutting_down_frame(grace: u64) -> Message {
    text(&ConnectionFrame::ServerShuttingDown {
        message: ErrorCode::ServerShuttingDown.user_message(),
        grace_seconds: grace,
    })
}

async fn connection(state: AppState, user: AuthUser, open: Open, socket: WebSocket) {
    let _gauge = Gauge::open();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(state.limits.send_queue);
    let done = CancellationToken::new();

    // Cancelled by the relay when the send queue is full (frames or bytes).
    let backlog = Backlog::new(state.limits.send_queue_bytes);
    let writer = {
        let done = done.clone();
        let backlog = backlog.clone();
        let slow = backlog.slow.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = slow.cancelled() => {
                        let closing = sink.send(close(CLOSE_TRY_AGAIN, "slow_consumer"));
                        let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
                        break;
                    }
                    msg = rx.recv() => {
                        let Some(msg) = msg else { break };
                        backlog.dequeued(&msg);
                        let closing = matches!(msg, Message::Close(_));
                        // A browser that stopped reading blocks this send; the
                        // slow signal must still get through.
                        let sent = tokio::select! {
                            r = sink.send(msg) => r.is_ok(),
                            _ = slow.cancelled() => false,
                        };
                        if !sent || closing {
                            break;
                        }
                    }
                }
            }
            done.cancel();
        })
    };

    let (session, after_seq, not_running) = match open {
        Open::Attach {
            session,
            after_seq,
            not_running,
        } => (session, after_seq, not_running),
        Open::New { tenant } => match acquire(&state, &user, tenant).await {
            Ok(id) => (id, 0, None),
            Err(e) => {
                let _ = tx.send(error_frame(e.code, e.message)).await;
                let _ = tx.send(close(CLOSE_TRY_AGAIN, "acquire_failed")).await;
                drop(tx);
                let _ = writer.await;
                return;
            }
        },
    };
    let conn_id = format!("{}:{}", state.instance, uuid::Uuid::new_v4().simple());
    tracing::info!(session.id = %session, user.id = %user.id, after_seq, "WebSocket attached");

    let in_turn = Arc::new(AtomicBool::new(false));
    let relay = tokio::spawn(relay(
        state.bus.clone(),
        session,
        after_seq,
        tx.clone(),
        done.clone(),
        backlog,
        in_turn.clone(),
    ));
    let watchdog = tokio::spawn(watchdog(
        state.clone(),
        user.clone(),
        session,
        in_turn,
        tx.clone(),
        done.clone(),
    ));
    let presence = tokio::spawn(presence(
        state.clone(),
        session,
        conn_id.clone(),
        done.clone(),
    ));
    if let Some(code) = not_running {
        let _ = tx.try_send(error_frame(code, None));
    }

    let mut told_shutdown = false;
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = done.cancelled() => break,
            _ = state.shutting_down.cancelled(), if !told_shutdown => {
                told_shutdown = true;
                let _ = tx.try_send(shutting_down_frame(state.shutdown_grace_seconds));
                continue;
            }
            _ = state.closing.cancelled() => {
                if !told_shutdown {
                    let _ = tx.try_send(shutting_down_frame(0));
                }
                let closing = tx.send(close(CLOSE_SERVICE_RESTART, "server_restarting"));
                let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
                // The writer ends after sending the close frame.
                let _ = tokio::time::timeout(Duration::from_secs(2), done.cancelled()).await;
                break;
            }
        };
        let Some(Ok(msg)) = msg else { break };
        let reply = match msg {
            Message::Text(t) => handle_frame(&state, &user, session, t.as_str()).await,
            Message::Binary(_) => Some(error_frame(ErrorCode::BadFrame, None)),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => None,
        };
        if let Some(reply) = reply {
            // A full queue means the relay is about to close this socket anyway.
            let _ = tx.try_send(reply);
        }
    }
    done.cancel();
    drop(tx);
    relay.abort();
    watchdog.abort();
    let _ = presence.await;
    let _ = writer.await;
    if let Err(e) = state.cache.remove_presence(session, &conn_id).await {
        tracing::debug!(error = %e, "could not clear presence");
    }
    // When it was left: a session-pool that needs a slot suspends the least
    // recently detached idle session first.
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let key = csp_cache::detached_key(session);
    if let Err(e) = state
        .cache
        .put(&key, &now_ms.to_string(), DETACHED_TTL)
        .await
    {
        tracing::debug!(error = %e, "could not record the detach");
    }
    tracing::info!(session.id = %session, "WebSocket closed");
}

#[tracing::instrument(
    name = "acquire",
    skip_all,
    fields(user.id = %user.id, tenant.id = tenant.as_deref().unwrap_or_default())
)]
async fn acquire(
    state: &AppState,
    user: &AuthUser,
    tenant: Option<String>,
) -> Result<SessionId, ApiError> {
    let reply = state
        .default_pool
        .clone()
        .acquire(state.as_user(
            user,
            pb::AcquireRequest {
                user_id: user.id.to_string(),
                tenant_id: tenant.unwrap_or_default(),
            },
        ))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    reply
        .session_id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::Internal))
}

/// What one browser has waiting in its send queue. The channel bounds the
/// frames; this bounds their bytes too, since one frame can be a tool result
/// of a few hundred KiB and a thousand of them would be a lot of memory for
/// a browser that stopped reading.
#[derive(Clone)]
struct Backlog {
    /// Cancelled when the browser is too slow: the writer closes with 1013.
    slow: CancellationToken,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl Backlog {
    fn new(max_bytes: usize) -> Self {
        Self {
            slow: CancellationToken::new(),
            bytes: Arc::new(AtomicUsize::new(0)),
            max_bytes,
        }
    }

    /// Counts `msg` as queued, unless that would pass the byte bound. A
    /// frame larger than the bound still goes when nothing else waits.
    fn admit(&self, msg: &Message) -> bool {
        let len = frame_len(msg);
        let before = self.bytes.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.max_bytes {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// `msg` left the queue. Frames other tasks queued (pongs, errors) were
    /// never counted: the count saturates at 0 rather than wrap.
    fn dequeued(&self, msg: &Message) {
        let len = frame_len(msg);
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(len))
            });
    }
}

fn frame_len(msg: &Message) -> usize {
    match msg {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

/// Bus → send queue, in seq order. Never blocks on the browser: a full
/// queue (frames or bytes) closes the connection instead.
async fn relay(
    bus: std::sync::Arc<dyn csp_bus::EventBus>,
    session: SessionId,
    after_seq: u64,
    tx: mpsc::Sender<Message>,
    done: CancellationToken,
    backlog: Backlog,
    in_turn: Arc<AtomicBool>,
) {
    let mut events = match bus.subscribe(session, after_seq).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(session.id = %session, error = %e, "could not subscribe to session events");
            let _ = tx.try_send(error_frame(ErrorCode::Unavailable, None));
            let _ = tx.try_send(close(CLOSE_TRY_AGAIN, "bus_unavailable"));
            return;
        }
    };
    loop {
        let next = tokio::select! {
            n = events.next() => n,
            _ = done.cancelled() => return,
        };
        let msg = match next {
            Some(Ok(ev)) => {
                match ev.event {
                    csp_domain::Event::UserMessage { .. } => in_turn.store(true, Ordering::Release),
                    csp_domain::Event::Result { .. } | csp_domain::Event::Error { .. } => {
                        in_turn.store(false, Ordering::Release)
                    }
                    _ => {}
                }
                // A turn's events (deltas aside: too many to be useful) get
                // a span in the turn's trace, whose context came with them.
                let _relay = ev
                    .trace
                    .as_deref()
                    .filter(|_| !matches!(ev.event, csp_domain::Event::Delta { .. }))
                    .map(|traceparent| {
                        let span = tracing::info_span!(
                            "ws.relay",
                            session.id = %session,
                            seq = ev.seq,
                            event = ev.event.kind(),
                        );
                        csp_telemetry::set_parent(&span, |k| {
                            (k == "traceparent").then(|| traceparent.to_owned())
                        });
                        span.entered()
                    });
                text(&StreamFrame::from(&ev))
            }
            Some(Err(csp_bus::Error::Gap { .. } | csp_bus::Error::Lagged { .. })) => {
                let _ = tx.try_send(close(CLOSE_REPLAY_GAP, "replay_gap"));
                return;
            }
            Some(Err(e)) => {
                tracing::warn!(session.id = %session, error = %e, "session event stream failed");
                let _ = tx.try_send(close(CLOSE_TRY_AGAIN, "bus_error"));
                return;
            }
            None => return,
        };
        let queued = if backlog.admit(&msg) {
            tx.try_send(msg)
        } else {
            Err(mpsc::error::TrySendError::Full(msg))
        };
        match queued {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!(m::SLOW_CONSUMER_CLOSES).increment(1);
                tracing::info!(session.id = %session, "browser too slow; closing so it reconnects");
                // The queue is full, so the close frame cannot join it: the
                // writer sends it ahead of the queue.
                backlog.slow.cancel();
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// How often the watchdog looks at the replica of a turn in flight.
const WATCHDOG_EVERY: Duration = Duration::from_secs(2);

/// While a turn is in flight, checks that the replica running the session
/// is still there: a replica that died (killed, OOM, lost machine) sends no
/// more events, and without this the browser would wait forever. Two missed
/// checks in a row tell the browser the turn is lost (`agent_crashed`: the
/// conversation is saved, the next message resumes it elsewhere).
async fn watchdog(
    state: AppState,
    user: AuthUser,
    session: SessionId,
    in_turn: Arc<AtomicBool>,
    tx: mpsc::Sender<Message>,
    done: CancellationToken,
) {
    let mut missed = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WATCHDOG_EVERY) => {}
            _ = done.cancelled() => return,
        }
        if !in_turn.load(Ordering::Acquire) {
            missed = 0;
            continue;
        }
        let req = pb::GetSessionRequest {
            session_id: session.to_string(),
            user_id: user.id.to_string(),
        };
        // Answering is not enough: a replica restarted on the same address
        // answers at once but runs nothing of the turn (`running`).
        let reachable = match state.pool_for(session).await {
            Ok(mut pool) => match pool.get_session(state.as_user(&user, req)).await {
                Ok(info) => info.into_inner().running,
                Err(s) => csp_rpc::error_code(&s) != ErrorCode::Unavailable,
            },
            Err(code) => code != ErrorCode::Unavailable,
        };
        missed = if reachable { 0 } else { missed + 1 };
        if missed >= 2 && in_turn.swap(false, Ordering::AcqRel) {
            tracing::warn!(session.id = %session, "the session's replica is gone mid-turn");
            let _ = tx.try_send(error_frame(ErrorCode::AgentCrashed, None));
        }
    }
}

async fn presence(state: AppState, session: SessionId, conn: String, done: CancellationToken) {
    loop {
        if let Err(e) = state.cache.add_presence(session, &conn, PRESENCE_TTL).await {
            tracing::debug!(error = %e, "could not record presence");
        }
        tokio::select! {
            _ = tokio::time::sleep(PRESENCE_REFRESH) => {}
            _ = done.cancelled() => return,
        }
    }
}

/// Hands a message to the session's replica, resuming the session first
/// when its process had stopped; the error frame for the browser, if any.
async fn send(
    state: &AppState,
    user: &AuthUser,
    session: SessionId,
    text: String,
    client_id: Option<String>,
) -> Option<Message> {
    let client_id = client_id.filter(|c| c.len() <= 128).unwrap_or_default();
    let req = pb::SendRequest {
        session_id: session.to_string(),
        user_id: user.id.to_string(),
        text,
        client_id,
    };
    let first = match state.pool_for(session).await {
        Ok(mut pool) => pool
            .send(state.as_user(user, req.clone()))
            .await
            .map(drop)
            .map_err(|s| ApiError::from_status(&s)),
        Err(code) => Err(ApiError::new(code)),
    };
    // The session's process stopped (idle, crash, server restart):
    // resume it; the message waits in its queue while it starts.
    // A replica that is gone (Unavailable) too: resume elsewhere.
    let sent = match first {
        Err(e)
            if matches!(
                e.code,
                ErrorCode::SessionUnavailable | ErrorCode::Unavailable
            ) =>
        {
            // This socket's own frames were numbered by the live process;
            // what it attached with was passed on at the attach.
            match state.ensure_running(session, user, 0).await {
                Ok(mut pool) => pool
                    .send(state.as_user(user, req))
                    .await
                    .map(drop)
                    .map_err(|s| ApiError::from_status(&s)),
                Err(code) => Err(ApiError::new(code)),
            }
        }
        other => other,
    };
    sent.err().map(|e| error_frame(e.code, e.message))
}

/// Why a client frame was refused: the catalogued code, and a message for
/// the user when the catalogue's own text needs a figure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadFrame {
    pub(crate) code: ErrorCode,
    pub(crate) message: Option<String>,
}

impl BadFrame {
    fn code(code: ErrorCode) -> Self {
        Self {
            code,
            message: None,
        }
    }
}

/// A browser's text frame as a command: at most `max_frame_bytes`, JSON, a
/// known `type` with its fields, and a `send` with something to say. The
/// socket's only parser of what the browser sends.
pub(crate) fn parse_frame(raw: &str, max_frame_bytes: usize) -> Result<ClientFrame, BadFrame> {
    if raw.len() > max_frame_bytes {
        return Err(BadFrame {
            code: ErrorCode::FrameTooLarge,
            message: Some(format!(
                "That message is too long (limit {} KB). Please shorten it and try again.",
                max_frame_bytes / 1024
            )),
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| BadFrame::code(ErrorCode::BadFrame))?;
    let frame: ClientFrame = match serde_json::from_value(value.clone()) {
        Ok(f) => f,
        Err(_) => {
            let known = matches!(
                value.get("type").and_then(|t| t.as_str()),
                Some("send" | "interrupt" | "ping")
            );
            return Err(BadFrame::code(if known {
                ErrorCode::BadFrame
            } else {
                ErrorCode::UnknownType
            }));
        }
    };
    if let ClientFrame::Send { text, .. } = &frame
        && text.trim().is_empty()
    {
        return Err(BadFrame::code(ErrorCode::EmptyMessage));
    }
    Ok(frame)
}

/// One client frame; returns the connection-level reply, if any.
async fn handle_frame(
    state: &AppState,
    user: &AuthUser,
    session: SessionId,
    raw: &str,
) -> Option<Message> {
    let frame = match parse_frame(raw, state.limits.max_frame_bytes) {
        Ok(frame) => frame,
        Err(bad) => return Some(error_frame(bad.code, bad.message)),
    };
    match frame {
        ClientFrame::Ping => Some(text(&ConnectionFrame::Pong)),
        ClientFrame::Send { text, client_id } => {
            // The root of the turn's trace: the session-pool, the policy
            // service and the relay of the answer continue it.
            let span = tracing::info_span!("ws.send", session.id = %session, user.id = %user.id);
            tracing::Instrument::instrument(send(state, user, session, text, client_id), span).await
        }
        ClientFrame::Interrupt => {
            let mut pool = match state.pool_for(session).await {
                Ok(p) => p,
                Err(code) => return Some(error_frame(code, None)),
            };
            match pool
                .interrupt(state.as_user(
                    user,
                    pb::InterruptRequest {
                        session_id: session.to_string(),
                        user_id: user.id.to_string(),
                    },
                ))
                .await
            {
                Ok(_) => None,
                Err(s) => Some(error_frame(ApiError::from_status(&s).code, None)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_bus::{EventBus, InProcessBus};
    use csp_domain::{Event, SessionEvent};
    use std::sync::Arc;

    async fn publish(bus: &InProcessBus, session: SessionId, n: u64) {
        for seq in 1..=n {
            let ev = SessionEvent {
                session_id: session,
                seq,
                event: Event::Delta {
                    text: format!("d{seq}"),
                },
                trace: None,
            };
            bus.publish(&ev).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_browser_that_stops_reading_is_cut_off_not_buffered() {
        let bus = InProcessBus::new(Default::default()).unwrap();
        let session = SessionId::new();
        publish(&bus, session, 50).await;
        let (tx, mut rx) = mpsc::channel(4);
        let (done, backlog) = (CancellationToken::new(), Backlog::new(usize::MAX));
        let slow = backlog.slow.clone();
        let bus: Arc<dyn EventBus> = Arc::new(bus);
        // Nobody reads `rx`: the relay must give up instead of waiting or growing.
        tokio::time::timeout(
            Duration::from_secs(5),
            relay(bus, session, 0, tx, done, backlog, Default::default()),
        )
        .await
        .expect("the relay returns");
        assert!(
            slow.is_cancelled(),
            "the writer is told to close with slow_consumer"
        );
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 4, "never more than the queue bound");
    }

    #[tokio::test]
    async fn the_send_queue_is_bounded_in_bytes_too() {
        let bus = InProcessBus::new(Default::default()).unwrap();
        let session = SessionId::new();
        publish(&bus, session, 50).await;
        // Room for 1024 frames, but only ~500 bytes: a handful of deltas.
        let (tx, mut rx) = mpsc::channel(1024);
        let (done, backlog) = (CancellationToken::new(), Backlog::new(500));
        let slow = backlog.slow.clone();
        let bus: Arc<dyn EventBus> = Arc::new(bus);
        tokio::time::timeout(
            Duration::from_secs(5),
            relay(
                bus,
                session,
                0,
                tx,
                done,
                backlog.clone(),
                Default::default(),
            ),
        )
        .await
        .expect("the relay returns");
        assert!(slow.is_cancelled(), "closed as slow by bytes, not frames");
        let mut bytes = 0;
        let mut frames = 0;
        while let Ok(msg) = rx.try_recv() {
            bytes += frame_len(&msg);
            frames += 1;
            backlog.dequeued(&msg);
        }
        assert!(frames > 1 && frames < 50, "{frames} frames queued");
        assert!(bytes <= 500, "{bytes} bytes queued");
        assert_eq!(
            backlog.bytes.load(Ordering::Acquire),
            0,
            "all accounted for"
        );
    }

    #[test]
    fn one_frame_larger_than_the_bound_still_goes_when_nothing_waits() {
        let backlog = Backlog::new(10);
        let delta = SessionEvent {
            session_id: SessionId::new(),
            seq: 1,
            event: Event::Delta {
                text: "x".repeat(100),
            },
            trace: None,
        };
        let big = text(&StreamFrame::from(&delta));
        assert!(backlog.admit(&big), "alone, it goes");
        assert!(!backlog.admit(&big), "behind another, it does not");
        backlog.dequeued(&big);
        assert!(backlog.admit(&big));
    }

    #[tokio::test]
    async fn replays_after_seq_then_follows_live_in_order() {
        let bus = Arc::new(InProcessBus::new(Default::default()).unwrap());
        let session = SessionId::new();
        publish(&bus, session, 5).await;
        let (tx, mut rx) = mpsc::channel(64);
        let (done, backlog) = (CancellationToken::new(), Backlog::new(usize::MAX));
        let task = tokio::spawn(relay(
            bus.clone(),
            session,
            3,
            tx,
            done.clone(),
            backlog,
            Default::default(),
        ));
        let mut seqs = Vec::new();
        for _ in 0..2 {
            if let Some(Message::Text(t)) = rx.recv().await {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                seqs.push(v["seq"].as_u64().unwrap());
            }
        }
        assert_eq!(seqs, vec![4, 5]);
        done.cancel();
        task.await.unwrap();
    }

    mod tenants {
        //! `GET /ws?tenant=…` against a fake tickets service and a fake
        //! session-pool, over a real connection (the checks answer before
        //! the upgrade; an allowed socket upgrades and acquires).

        use crate::testing::{Backends, FakePool, FakeTickets, gateway_on, serve, ws_handshake};
        use csp_domain::Role;
        use csp_proto::v1 as pb;
        use http::StatusCode;
        use serde_json::json;
        use std::time::Duration;

        fn acme() -> pb::ChatTenant {
            pb::ChatTenant {
                tenant_id: "acme".into(),
                name: "Acme MSP".into(),
                tool_type: "servicedesk_plus".into(),
            }
        }

        /// The acquires the pool has seen, once there are `n` (5 s at most).
        async fn acquired(pool: &FakePool, n: usize) -> Vec<pb::AcquireRequest> {
            for _ in 0..500 {
                let seen = pool.acquires.lock().unwrap().clone();
                if seen.len() >= n {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("fewer than {n} acquires");
        }

        #[tokio::test]
        async fn a_tenant_outside_the_users_list_is_403_before_any_acquire() {
            let (tickets, tickets_addr) = FakeTickets::serve().await;
            let (pool, pool_addr) = FakePool::serve().await;
            let gw = gateway_on(Backends {
                tickets: Some(tickets_addr),
                pool: Some(pool_addr),
                ..Backends::default()
            })
            .await;
            let user = gw.user(Role::User).to_string();
            tickets
                .chat_tenants
                .lock()
                .unwrap()
                .insert(user.clone(), vec![acme()]);
            let addr = serve(gw.app.clone()).await;
            let token = gw.token(Role::User);
            // Another tenant and one that does not exist: the same answer.
            for tenant in ["globex", "nobody"] {
                let (status, body, _) =
                    ws_handshake(addr, &format!("/ws?tenant={tenant}"), token).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{tenant}: {body}");
                assert_eq!(body["error"]["code"], "forbidden");
                assert_eq!(
                    body["error"]["message"],
                    format!("You may not chat about tenant '{tenant}'.")
                );
            }
            assert!(pool.acquires.lock().unwrap().is_empty(), "nothing acquired");
            assert_eq!(
                *tickets.chat_tenant_lists.lock().unwrap(),
                [user.clone(), user.clone()]
            );
            // One in the list: the socket opens and the session is bound to it.
            let (status, body, _socket) = ws_handshake(addr, "/ws?tenant=acme", token).await;
            assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS, "{body}");
            let sent = acquired(&pool, 1).await;
            assert_eq!(
                (sent[0].user_id.as_str(), sent[0].tenant_id.as_str()),
                (user.as_str(), "acme")
            );
            // No tenant (or an empty one): a session bound to none, and
            // the tickets service is not asked.
            for path in ["/ws", "/ws?tenant="] {
                let (status, body, _socket) = ws_handshake(addr, path, token).await;
                assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS, "{path}: {body}");
            }
            let sent = acquired(&pool, 3).await;
            assert!(sent[1..].iter().all(|a| a.tenant_id.is_empty()));
            assert_eq!(tickets.chat_tenant_lists.lock().unwrap().len(), 3);
        }

        #[tokio::test]
        async fn a_tenant_on_a_reattach_is_400() {
            let (tickets, tickets_addr) = FakeTickets::serve().await;
            let (pool, pool_addr) = FakePool::serve().await;
            let gw = gateway_on(Backends {
                tickets: Some(tickets_addr),
                pool: Some(pool_addr),
                ..Backends::default()
            })
            .await;
            let addr = serve(gw.app.clone()).await;
            let path = format!(
                "/ws?session={}&after_seq=3&tenant=acme",
                csp_domain::SessionId::new()
            );
            let (status, body, _) = ws_handshake(addr, &path, gw.token(Role::Admin)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(
                (&body["error"]["code"], &body["error"]["message"]),
                (
                    &json!("invalid_request"),
                    &json!("tenant applies to a new session only")
                )
            );
            assert!(tickets.chat_tenant_lists.lock().unwrap().is_empty());
            assert!(pool.acquires.lock().unwrap().is_empty());
        }

        #[tokio::test]
        async fn a_tenant_cannot_be_checked_while_the_tickets_service_is_down() {
            let (pool, pool_addr) = FakePool::serve().await;
            let gw = gateway_on(Backends {
                pool: Some(pool_addr),
                ..Backends::default()
            })
            .await;
            let addr = serve(gw.app.clone()).await;
            let (status, body, _) =
                ws_handshake(addr, "/ws?tenant=acme", gw.token(Role::Admin)).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(body["error"]["code"], "unavailable");
            assert!(pool.acquires.lock().unwrap().is_empty());
        }
    }

    #[test]
    fn origin_rules() {
        use http::HeaderMap;
        fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
            let mut h = HeaderMap::new();
            h.insert(http::header::HOST, host.parse().unwrap());
            if let Some(o) = origin {
                h.insert(http::header::ORIGIN, o.parse().unwrap());
            }
            h
        }
        let same = |origin: Option<&str>, via| {
            origin_matches(&[], &headers(origin, "csp.example:8080"), via)
        };
        assert!(same(Some("https://csp.example:8080"), Via::Cookie));
        assert!(same(Some("http://CSP.example:8080"), Via::Cookie));
        assert!(!same(Some("https://evil.example"), Via::Cookie));
        assert!(!same(
            Some("https://csp.example:8080.evil.example"),
            Via::Cookie
        ));
        assert!(!same(None, Via::Cookie), "cookie without Origin");
        assert!(same(None, Via::Bearer), "programmatic bearer client");
        assert!(
            !same(Some("https://evil.example"), Via::Bearer),
            "a bearer socket still obeys a present Origin"
        );
        let listed = vec!["https://app.example".to_owned()];
        assert!(origin_matches(
            &listed,
            &headers(Some("https://app.example"), "gw:8080"),
            Via::Cookie
        ));
        assert!(!origin_matches(
            &listed,
            &headers(Some("https://gw:8080"), "gw:8080"),
            Via::Cookie
        ));
    }
}

/// Whatever a browser sends, [`parse_frame`] answers a command or a
/// catalogued refusal, never a panic; a well-formed frame reads back as sent.
#[cfg(test)]
mod properties {
    use super::*;
    use csp_testkit::proptest_config;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const MAX: usize = 16 * 1024;

    fn checked(raw: &str) -> Result<ClientFrame, BadFrame> {
        let result = parse_frame(raw, MAX);
        if let Err(bad) = &result {
            assert!(
                matches!(
                    bad.code,
                    ErrorCode::BadFrame
                        | ErrorCode::UnknownType
                        | ErrorCode::FrameTooLarge
                        | ErrorCode::EmptyMessage
                ),
                "{bad:?}"
            );
            assert!(!bad.code.user_message().is_empty());
            assert!(bad.message.as_deref().is_none_or(|m| !m.is_empty()));
        }
        result
    }

    fn send(text: &str, client_id: Option<&str>) -> Value {
        match client_id {
            Some(id) => json!({"type": "send", "text": text, "client_id": id}),
            None => json!({"type": "send", "text": text}),
        }
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            Just(json!(1.5)),
            "\\PC{0,20}".prop_map(Value::String),
            Just(json!([])),
            Just(json!({"text": "x"})),
        ]
    }

    proptest! {
        #![proptest_config(proptest_config(256))]

        #[test]
        fn arbitrary_text_is_a_command_or_a_catalogued_refusal(raw in "\\PC{0,300}") {
            let _ = checked(&raw);
        }

        #[test]
        fn json_like_text_is_a_command_or_a_catalogued_refusal(
            raw in "[{}\\[\\]\",:a-z_ 0-9\\\\]{0,200}",
        ) {
            let _ = checked(&raw);
        }

        #[test]
        fn a_send_frame_reads_back_as_sent(
            text in "\\PC*[^\\s]\\PC*",
            client_id in prop::option::of("\\PC{0,40}"),
            extra in prop::option::of(("[a-z]{1,8}", any_value())),
        ) {
            let mut frame = send(&text, client_id.as_deref());
            if let Some((k, v)) = extra && k != "type" && k != "text" && k != "client_id" {
                frame[k] = v;
            }
            match checked(&frame.to_string()) {
                Ok(ClientFrame::Send { text: t, client_id: c }) => {
                    prop_assert_eq!(t, text);
                    prop_assert_eq!(c, client_id);
                }
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
        }

        #[test]
        fn a_send_frame_with_a_field_dropped_or_retyped_is_a_bad_frame(
            field in prop::sample::select(vec!["text", "client_id"]),
            value in prop::option::of(any_value()),
        ) {
            let mut frame = send("hello", Some("c1"));
            match value {
                None if field == "text" => drop(frame.as_object_mut().unwrap().remove(field)),
                None => return Ok(()),
                Some(Value::String(_)) => return Ok(()),
                Some(Value::Null) if field == "client_id" => return Ok(()),
                Some(v) => frame[field] = v,
            }
            let bad = checked(&frame.to_string()).unwrap_err();
            prop_assert_eq!(bad.code, ErrorCode::BadFrame);
        }

        #[test]
        fn an_unknown_or_retyped_type_is_unknown(kind in any_value()) {
            prop_assume!(!matches!(kind.as_str(), Some("send" | "interrupt" | "ping")));
            let bad = checked(&json!({"type": kind, "text": "hi"}).to_string()).unwrap_err();
            prop_assert_eq!(bad.code, ErrorCode::UnknownType);
        }

        #[test]
        fn a_blank_send_is_empty(text in "[ \\t\\n\\r\u{a0}\u{2003}\u{3000}]{0,20}") {
            let bad = checked(&send(&text, None).to_string()).unwrap_err();
            prop_assert_eq!(bad.code, ErrorCode::EmptyMessage);
        }

        #[test]
        fn an_oversized_frame_is_refused_before_it_is_read(
            text in "\\PC{1,8}",
            extra in 0usize..64,
        ) {
            let pad = "x".repeat(MAX + extra);
            let raw = send(&format!("{text}{pad}"), None).to_string();
            let bad = checked(&raw).unwrap_err();
            prop_assert_eq!(bad.code, ErrorCode::FrameTooLarge);
            prop_assert!(bad.message.unwrap().contains("16 KB"));
        }

        #[test]
        fn deep_nesting_is_a_bad_frame_not_a_stack_overflow(
            depth in 100usize..4000,
            arrays in any::<bool>(),
        ) {
            let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
            let raw = format!(
                "{{\"type\":\"send\",\"text\":{}1{}}}",
                open.repeat(depth),
                close.repeat(depth)
            );
            if raw.len() <= MAX {
                prop_assert_eq!(checked(&raw).unwrap_err().code, ErrorCode::BadFrame);
            } else {
                prop_assert_eq!(checked(&raw).unwrap_err().code, ErrorCode::FrameTooLarge);
            }
        }
    }

    #[test]
    fn ping_and_interrupt_need_nothing_else() {
        assert!(matches!(
            checked(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping)
        ));
        assert!(matches!(
            checked(r#"{"type":"interrupt","text":1}"#),
            Ok(ClientFrame::Interrupt)
        ));
    }
}
