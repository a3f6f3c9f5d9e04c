//! The permission gate of every agent process: each tool call the CLI is
//! about to make (the PreToolUse hook sees every one, including those the
//! CLI's own rules would accept) is decided by the [`Governor`] for the
//! session's user, as that user's role stands now.
//!
//! A pre-warmed process is spawned before it has a user, so the gate looks
//! the user up when a call arrives; a process with no user yet may run no
//! tool. Denials are remembered by `tool_use_id` so the session's actor can
//! show them as such on the tool card and in the audit log.

use crate::governor::{Governor, ToolCall, Verdict};
use async_trait::async_trait;
use csp_agent::{Decision, PermissionHook, PermissionRequest};
use csp_domain::{Role, SessionId, TenantId, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Denials kept per session before the oldest are dropped (a tool_result
/// normally takes them within the same turn).
const MAX_DENIALS: usize = 256;

pub(crate) struct Binding {
    pub(crate) user: UserId,
    /// The user's role when the session (re)started.
    pub(crate) role: Option<Role>,
    /// The tenant whose ticket context the session's ticket tools read.
    pub(crate) tenant: Option<TenantId>,
    denials: HashMap<String, Verdict>,
    /// The span of the turn in flight: the gate's policy decisions are
    /// its children (the hook runs in the driver's task, not the turn's).
    turn: Option<tracing::Span>,
}

/// Which user each running session belongs to.
#[derive(Clone, Default)]
pub(crate) struct Bindings(Arc<Mutex<HashMap<SessionId, Binding>>>);

impl Bindings {
    pub(crate) fn bind(
        &self,
        session: SessionId,
        user: UserId,
        role: Option<Role>,
        tenant: Option<TenantId>,
    ) {
        self.0.lock().expect("bindings lock").insert(
            session,
            Binding {
                user,
                role,
                tenant,
                denials: HashMap::new(),
                turn: None,
            },
        );
    }

    pub(crate) fn unbind(&self, session: SessionId) {
        self.0.lock().expect("bindings lock").remove(&session);
    }

    fn lookup(&self, session: SessionId) -> Option<(UserId, Option<Role>, Option<tracing::Span>)> {
        self.0
            .lock()
            .expect("bindings lock")
            .get(&session)
            .map(|b| (b.user, b.role, b.turn.clone()))
    }

    /// Whom a running session serves: its user, their role when it
    /// (re)started, and its tenant. `None` for a warm process not yet
    /// handed to anyone.
    pub(crate) fn identity(
        &self,
        session: SessionId,
    ) -> Option<(UserId, Option<Role>, Option<TenantId>)> {
        self.0
            .lock()
            .expect("bindings lock")
            .get(&session)
            .map(|b| (b.user, b.role, b.tenant.clone()))
    }

    /// The span of the session's turn in flight (`None` when it ends).
    pub(crate) fn set_turn(&self, session: SessionId, turn: Option<tracing::Span>) {
        if let Some(b) = self.0.lock().expect("bindings lock").get_mut(&session) {
            b.turn = turn;
        }
    }

    fn record_denial(&self, session: SessionId, tool_use_id: &str, verdict: Verdict) {
        if let Some(b) = self.0.lock().expect("bindings lock").get_mut(&session) {
            if b.denials.len() >= MAX_DENIALS {
                b.denials.clear();
            }
            b.denials.insert(tool_use_id.to_owned(), verdict);
        }
    }

    /// The denial of this tool call, if the gate denied it.
    pub(crate) fn take_denial(&self, session: SessionId, tool_use_id: &str) -> Option<Verdict> {
        self.0
            .lock()
            .expect("bindings lock")
            .get_mut(&session)
            .and_then(|b| b.denials.remove(tool_use_id))
    }
}

/// The hook of one agent process.
pub(crate) struct SessionGate {
    pub(crate) governor: Arc<dyn Governor>,
    pub(crate) bindings: Bindings,
    pub(crate) session: SessionId,
}

#[async_trait]
impl PermissionHook for SessionGate {
    async fn decide(&self, request: &PermissionRequest) -> Decision {
        let verdict = match self.bindings.lookup(self.session) {
            None => Verdict::deny("unbound", "This session has no user; no tool may run."),
            Some((user, role, turn)) => {
                let span = tracing::info_span!(
                    parent: turn.as_ref().and_then(|t| t.id()),
                    "policy.check_tool",
                    tool.name = %request.tool_name,
                    allowed = tracing::field::Empty,
                );
                let verdict = tracing::Instrument::instrument(
                    self.governor.check_tool(ToolCall {
                        session: self.session,
                        user,
                        session_role: role,
                        tool_name: &request.tool_name,
                        input: &request.input,
                        tool_use_id: request.tool_use_id.as_deref(),
                    }),
                    span.clone(),
                )
                .await;
                span.record("allowed", verdict.allowed);
                verdict
            }
        };
        metrics::counter!(crate::metrics::PERMISSION_CHECKS,
            "outcome" => if verdict.allowed { "allowed" } else { "denied" })
        .increment(1);
        if verdict.allowed {
            return Decision::Allow;
        }
        let message = verdict.message.clone();
        if let Some(id) = &request.tool_use_id {
            self.bindings.record_denial(self.session, id, verdict);
        }
        Decision::deny(message)
    }
}
