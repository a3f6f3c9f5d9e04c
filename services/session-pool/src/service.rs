//! The gRPC `csp.v1.SessionPool` implementation: argument checks and
//! ownership, then the pool does the work.

use crate::pool::Pool;
use csp_auth::{Access, Caller};
use csp_domain::{ErrorCode, Role, SessionId, SessionStatus, TenantId, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::session_pool_server::SessionPool;
use csp_rpc::{status, status_with_message};
use csp_store::SessionRecord;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub(crate) struct Service {
    pub(crate) pool: Arc<Pool>,
}

/// What each method requires (see `proto/csp/v1/session_pool.proto`). A
/// method missing here is refused by the guard.
pub fn access(path: &str) -> Option<Access> {
    let method = path.strip_prefix("/csp.v1.SessionPool/")?;
    Some(match method {
        "Acquire" | "Send" | "Interrupt" | "GetSession" | "ListSessions" | "ListMessages"
        | "Resume" => Access::Role(Role::User),
        "ListAllSessions" => Access::Role(Role::Operator),
        "Status" => Access::Service,
        _ => return None,
    })
}

/// `user_id` of a request, if the caller may act for that user (the user,
/// an operator or admin, or a service); otherwise the same "not found" an
/// unknown id gets, so other users' ids cannot be probed.
fn acting_for<T>(req: &Request<T>, user_id: &str) -> Result<(UserId, Caller), Status> {
    let caller = csp_rpc::caller(req)?;
    let user = parse_user(user_id)?;
    if !caller.may_act_for(user) {
        return Err(status(ErrorCode::SessionNotFound, "not the caller's user"));
    }
    Ok((user, caller))
}

/// Operators and admins manage every user's sessions; services act for users.
fn oversees(caller: &Caller) -> bool {
    match caller {
        Caller::Service { .. } => true,
        Caller::User { role, .. } => role.includes(Role::Operator),
    }
}

/// The role a session records for the permission gate: the user's own,
/// as the (gateway-minted, current) token says.
fn role_of(caller: &Caller, user: UserId) -> Option<Role> {
    match caller {
        Caller::User { id, role, .. } if *id == user => Some(*role),
        _ => None,
    }
}

fn parse_user(s: &str) -> Result<UserId, Status> {
    s.parse()
        .map_err(|e: csp_domain::ParseIdError| status(ErrorCode::Unauthenticated, e.to_string()))
}

fn parse_session(s: &str) -> Result<SessionId, Status> {
    s.parse()
        .map_err(|e: csp_domain::ParseIdError| status(ErrorCode::SessionNotFound, e.to_string()))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A start the pool refused; the per-user limit names its number.
fn refused(pool: &Pool, code: ErrorCode, detail: &str) -> Status {
    match code {
        ErrorCode::TooManySessions => status_with_message(
            code,
            format!(
                "You already have {} active sessions. Close one to start another.",
                pool.max_sessions_per_user()
            ),
        ),
        _ => status(code, detail),
    }
}

fn store_error(e: csp_store::Error) -> Status {
    tracing::error!(error = %e, "session store failed");
    status(ErrorCode::Unavailable, "session store unavailable")
}

/// A stored status as the proto says it; `Unspecified` for text the store
/// should not hold.
fn status_of(stored: &str) -> pb::SessionStatus {
    SessionStatus::from_store_text(stored).map_or(pb::SessionStatus::Unspecified, Into::into)
}

fn info(r: &SessionRecord) -> pb::SessionInfo {
    pb::SessionInfo {
        session_id: r.session_id.to_string(),
        user_id: r.user_id.to_string(),
        status: status_of(&r.status) as i32,
        created_at: rfc3339(r.created_at),
        last_active_at: rfc3339(r.last_active_at),
        message_count: r.message_count,
        total_cost_usd: r.total_cost_usd,
        title: r.title.clone().unwrap_or_default(),
        resume_count: r.resume_count,
        is_resumable: r.is_resumable,
        ended_reason: r.ended_reason.clone().unwrap_or_default(),
        running: false,
        tenant_id: r
            .tenant_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    }
}

impl Service {
    /// The session's record, if it is the user's. Someone else's session is
    /// reported as missing, so ids cannot be probed.
    async fn owned(&self, session: SessionId, user: UserId) -> Result<SessionRecord, Status> {
        self.owned_or_overseen(session, user, false).await
    }

    /// Like `owned`; `oversees` (operators, services) skips the owner check.
    async fn owned_or_overseen(
        &self,
        session: SessionId,
        user: UserId,
        oversees: bool,
    ) -> Result<SessionRecord, Status> {
        match self
            .pool
            .store
            .session(session)
            .await
            .map_err(store_error)?
        {
            Some(r) if oversees || r.user_id == user => Ok(r),
            _ => Err(status(
                ErrorCode::SessionNotFound,
                "no such session for this user",
            )),
        }
    }

    async fn live(
        &self,
        session: SessionId,
        user: UserId,
    ) -> Result<crate::session::Handle, Status> {
        match self.pool.handle(session).await {
            Some(h) if h.user == user => Ok(h),
            Some(_) => Err(status(
                ErrorCode::SessionNotFound,
                "no such session for this user",
            )),
            None => {
                // Known but not running here: ended, failed, or on another replica.
                self.owned(session, user).await?;
                Err(status(
                    ErrorCode::SessionUnavailable,
                    "session is not running",
                ))
            }
        }
    }
}

#[tonic::async_trait]
impl SessionPool for Service {
    #[tracing::instrument(name = "session_pool.Acquire", skip_all)]
    async fn acquire(
        &self,
        req: Request<pb::AcquireRequest>,
    ) -> Result<Response<pb::AcquireResponse>, Status> {
        let (user, caller) = acting_for(&req, &req.get_ref().user_id)?;
        // The gateway checked that the user may see the tenant; the ticket
        // tools check it again on every call.
        let tenant = match req.get_ref().tenant_id.trim() {
            "" => None,
            text => Some(TenantId::parse(text).map_err(|e| {
                status_with_message(ErrorCode::InvalidRequest, format!("tenant_id: {e}"))
            })?),
        };
        let (id, warm) = self
            .pool
            .acquire(user, role_of(&caller, user), tenant)
            .await
            .map_err(|code| refused(&self.pool, code, "acquire failed"))?;
        Ok(Response::new(pb::AcquireResponse {
            session_id: id.to_string(),
            status: if warm {
                pb::SessionStatus::Ready
            } else {
                pb::SessionStatus::Preparing
            } as i32,
            warm,
        }))
    }

    #[tracing::instrument(name = "session_pool.Send", skip_all, fields(session.id = %req.get_ref().session_id))]
    async fn send(
        &self,
        req: Request<pb::SendRequest>,
    ) -> Result<Response<pb::SendResponse>, Status> {
        let (user, _) = acting_for(&req, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let session = parse_session(&r.session_id)?;
        let handle = self.live(session, user).await?;
        if r.text.trim().is_empty() {
            return Err(status(ErrorCode::EmptyMessage, "empty message"));
        }
        // Budget before the turn: the cap holds however many turns run.
        let reservation = self
            .pool
            .governor()
            .admit_turn(handle.user, session)
            .await
            .map_err(|refusal| match refusal.message {
                Some(message) => status_with_message(refusal.code, message),
                None => status(refusal.code, "turn not admitted"),
            })?;
        let client_id = (!r.client_id.is_empty()).then_some(r.client_id);
        match handle.send(r.text, client_id, reservation.clone()).await {
            Ok(queued) => Ok(Response::new(pb::SendResponse { queued })),
            Err(code) => {
                if let Some(r) = reservation {
                    self.pool
                        .governor()
                        .settle_turn(&r, handle.user, session, 0.0)
                        .await;
                }
                Err(status(code, "send failed"))
            }
        }
    }

    #[tracing::instrument(name = "session_pool.Interrupt", skip_all, fields(session.id = %req.get_ref().session_id))]
    async fn interrupt(
        &self,
        req: Request<pb::InterruptRequest>,
    ) -> Result<Response<pb::InterruptResponse>, Status> {
        let (user, _) = acting_for(&req, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let session = parse_session(&r.session_id)?;
        let handle = self.live(session, user).await?;
        let interrupted = handle
            .interrupt()
            .await
            .map_err(|code| status(code, "interrupt failed"))?;
        Ok(Response::new(pb::InterruptResponse { interrupted }))
    }

    async fn get_session(
        &self,
        req: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::SessionInfo>, Status> {
        let (user, caller) = acting_for(&req, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let record = self
            .owned_or_overseen(parse_session(&r.session_id)?, user, oversees(&caller))
            .await?;
        let mut info = info(&record);
        info.running = self.pool.runs(record.session_id).await;
        Ok(Response::new(info))
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let (user, _) = acting_for(&req, &req.get_ref().user_id)?;
        let sessions = self
            .pool
            .store
            .sessions_of(user)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: sessions.iter().map(info).collect(),
        }))
    }

    async fn list_messages(
        &self,
        req: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let (user, caller) = acting_for(&req, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let session = parse_session(&r.session_id)?;
        self.owned_or_overseen(session, user, oversees(&caller))
            .await?;
        let (mut messages, last_seq) = self
            .pool
            .store
            .messages(session)
            .await
            .map_err(store_error)?;
        // Rows stored before output was bounded can be megabytes: bounded
        // and redacted here too, and the whole answer kept under the gRPC
        // message limit (issue 12).
        let mut frames: Vec<_> = messages.iter_mut().map(|m| m.body.take()).collect();
        let skip = crate::output::bound_history(
            &mut frames,
            self.pool.known_secrets(),
            self.pool.limits().tool_output_max_bytes,
            crate::output::HISTORY_BUDGET_BYTES,
        );
        if skip > 0 {
            tracing::warn!(session.id = %session, left_out = skip, "history too large for one answer; the oldest messages are left out");
        }
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages
                .into_iter()
                .zip(frames)
                .skip(skip)
                .map(|(m, body)| pb::ChatMessage {
                    seq: m.seq,
                    kind: m.kind,
                    json: body.to_string(),
                    created_at: rfc3339(m.created_at),
                })
                .collect(),
            last_seq,
        }))
    }

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let s = self.pool.status().await;
        Ok(Response::new(pb::StatusResponse {
            active_sessions: s.active_sessions as u32,
            pool_depth: s.pool_depth as u32,
            max_sessions: s.max_sessions as u32,
            started: s.started_after_ms.is_some(),
            startup_duration_ms: s.started_after_ms.unwrap_or(0),
            ready: s.not_ready.is_none(),
            reason: s.not_ready.unwrap_or_default().to_owned(),
            circuit_breaker_state: s.circuit_breaker.gauge_value() as u32,
            agent_sandbox_off: !s.agent_sandbox,
        }))
    }

    #[tracing::instrument(name = "session_pool.Resume", skip_all, fields(session.id = %req.get_ref().session_id))]
    async fn resume(
        &self,
        req: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::ResumeResponse>, Status> {
        let (user, caller) = acting_for(&req, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let session = parse_session(&r.session_id)?;
        let resumed = self
            .pool
            .resume(session, user, role_of(&caller, user), r.seen_seq)
            .await
            .map_err(|code| refused(&self.pool, code, "resume failed"))?;
        Ok(Response::new(pb::ResumeResponse {
            resumed,
            status: if resumed {
                pb::SessionStatus::Preparing
            } else {
                pb::SessionStatus::Ready
            } as i32,
        }))
    }

    #[tracing::instrument(name = "session_pool.ListAllSessions", skip_all)]
    async fn list_all_sessions(
        &self,
        req: Request<pb::ListAllSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let limit = match req.get_ref().limit {
            0 => 500,
            n => n.min(5000),
        };
        let sessions = self
            .pool
            .store
            .all_sessions(limit)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: sessions.iter().map(info).collect(),
        }))
    }
}
