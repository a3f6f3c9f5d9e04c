//! What the session-pool asks the policy service: may this tool call run,
//! may this turn start (budget), and what did the turn cost.
//!
//! [`PolicyGovernor`] asks over gRPC with its own deadline and fails closed:
//! an unreachable policy service denies tool calls with a message that says
//! so and refuses new turns, because an unchecked tool call or unbounded
//! spend is worse than a pause. [`Unlimited`] (tests, benchmarks) applies a
//! fixed allow-list and no budget.

use async_trait::async_trait;
use csp_agent::{AllowList, Decision, PermissionHook, PermissionRequest};
use csp_domain::{ErrorCode, Role, SessionId, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::policy_client::PolicyClient;
use csp_rpc::ServiceToken;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The text the agent and the user see when no decision could be had.
pub const POLICY_UNREACHABLE_MESSAGE: &str = "Tool call blocked: the permission service is unreachable, so no tool can run right now. Try again in a minute.";

/// One tool call to decide.
#[derive(Debug, Clone)]
pub struct ToolCall<'a> {
    pub session: SessionId,
    pub user: UserId,
    /// The user's role when the session (re)started.
    pub session_role: Option<Role>,
    pub tool_name: &'a str,
    pub input: &'a serde_json::Value,
    pub tool_use_id: Option<&'a str>,
}

/// A decision. `reason` is empty when allowed, else one of tool_role,
/// permissions_changed, inactive, disabled, plugin_inactive,
/// plugin_undeclared, plugins_unreachable, policy_unavailable, unbound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub message: String,
    pub reason: String,
    /// The user's current role, when the governor knows it (the policy
    /// service says it with every answer).
    pub role: Option<Role>,
}

impl Verdict {
    pub fn allow() -> Self {
        Self {
            allowed: true,
            message: String::new(),
            reason: String::new(),
            role: None,
        }
    }

    pub fn deny(reason: &str, message: impl Into<String>) -> Self {
        Self {
            allowed: false,
            message: message.into(),
            reason: reason.into(),
            role: None,
        }
    }
}

/// Budget set aside for one turn, settled when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub month: String,
}

/// Why a turn may not start, with the text for the user when the catalogue's
/// is not enough ("Monthly budget exceeded ($100.00/$100.00). ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: Option<String>,
}

#[async_trait]
pub trait Governor: Send + Sync {
    /// Never fails: every problem is a denial.
    async fn check_tool(&self, call: ToolCall<'_>) -> Verdict;
    /// `Ok(None)`: admitted with nothing to settle (no cap).
    async fn admit_turn(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<Option<Reservation>, Refusal>;
    /// Records the turn's cost; returns a notice for the user (the 80 %
    /// warning), if any. Errors are logged, not returned: the turn is over.
    async fn settle_turn(
        &self,
        reservation: &Reservation,
        user: UserId,
        session: SessionId,
        cost_usd: f64,
    ) -> Option<String>;
}

/// A fixed allow-list and no budget.
pub struct Unlimited(pub AllowList);

#[async_trait]
impl Governor for Unlimited {
    async fn check_tool(&self, call: ToolCall<'_>) -> Verdict {
        let request = PermissionRequest {
            tool_name: call.tool_name.to_owned(),
            input: call.input.clone(),
            tool_use_id: call.tool_use_id.map(str::to_owned),
        };
        match self.0.decide(&request).await {
            Decision::Allow => Verdict::allow(),
            Decision::Deny { message } => Verdict::deny("tool_role", message),
        }
    }

    async fn admit_turn(&self, _: UserId, _: SessionId) -> Result<Option<Reservation>, Refusal> {
        Ok(None)
    }

    async fn settle_turn(
        &self,
        _: &Reservation,
        _: UserId,
        _: SessionId,
        _: f64,
    ) -> Option<String> {
        None
    }
}

type Client = PolicyClient<InterceptedService<Channel, ServiceToken>>;

/// Asks the policy service.
pub struct PolicyGovernor {
    client: Client,
    deadline: Duration,
}

impl PolicyGovernor {
    /// `deadline` bounds each call (the permission gate's own deadline: the
    /// CLI would wait for an answer forever).
    pub fn new(channel: Channel, token: ServiceToken, deadline: Duration) -> Self {
        Self {
            client: PolicyClient::with_interceptor(channel, token),
            deadline,
        }
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.deadline);
        req
    }
}

#[async_trait]
impl Governor for PolicyGovernor {
    async fn check_tool(&self, call: ToolCall<'_>) -> Verdict {
        let req = self.request(pb::CheckToolRequest {
            user_id: call.user.to_string(),
            session_id: call.session.to_string(),
            tool_name: call.tool_name.to_owned(),
            input_json: call.input.to_string(),
            tool_use_id: call.tool_use_id.unwrap_or_default().to_owned(),
            session_role: call
                .session_role
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
        });
        let asked = tokio::time::timeout(self.deadline, self.client.clone().check_tool(req)).await;
        match asked {
            Ok(Ok(r)) => {
                let r = r.into_inner();
                let verdict = if r.allowed {
                    Verdict::allow()
                } else {
                    Verdict::deny(&r.reason, r.message)
                };
                Verdict {
                    role: r.role.parse().ok(),
                    ..verdict
                }
            }
            Ok(Err(status)) => {
                tracing::warn!(tool = call.tool_name, error = %status, "permission check failed; denying");
                Verdict::deny("policy_unavailable", POLICY_UNREACHABLE_MESSAGE)
            }
            Err(_) => {
                tracing::warn!(tool = call.tool_name, deadline = ?self.deadline, "permission check timed out; denying");
                Verdict::deny("policy_unavailable", POLICY_UNREACHABLE_MESSAGE)
            }
        }
    }

    async fn admit_turn(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<Option<Reservation>, Refusal> {
        let req = self.request(pb::AdmitTurnRequest {
            user_id: user.to_string(),
            session_id: session.to_string(),
        });
        match tokio::time::timeout(self.deadline, self.client.clone().admit_turn(req)).await {
            Ok(Ok(r)) => {
                let r = r.into_inner();
                Ok((!r.reservation_id.is_empty()).then_some(Reservation {
                    id: r.reservation_id,
                    month: r.month,
                }))
            }
            Ok(Err(status)) => {
                let code = csp_rpc::error_code(&status);
                tracing::info!(user.id = %user, error = %status, "turn not admitted");
                Err(Refusal {
                    code,
                    message: csp_rpc::user_message(&status),
                })
            }
            Err(_) => Err(Refusal {
                code: ErrorCode::Unavailable,
                message: None,
            }),
        }
    }

    async fn settle_turn(
        &self,
        reservation: &Reservation,
        user: UserId,
        session: SessionId,
        cost_usd: f64,
    ) -> Option<String> {
        let msg = pb::SettleTurnRequest {
            reservation_id: reservation.id.clone(),
            user_id: user.to_string(),
            session_id: session.to_string(),
            cost_usd,
            month: reservation.month.clone(),
        };
        // Settling is idempotent: retry a few times so spend is not lost to
        // a blip (an unsettled reservation would also expire, but its cost
        // would then never count).
        for attempt in 0..3u32 {
            let req = self.request(msg.clone());
            match tokio::time::timeout(self.deadline, self.client.clone().settle_turn(req)).await {
                Ok(Ok(r)) => {
                    let notice = r.into_inner().notice;
                    return (!notice.is_empty()).then_some(notice);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, attempt, "settling a turn's cost failed"),
                Err(_) => tracing::warn!(attempt, "settling a turn's cost timed out"),
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt as u64 + 1))).await;
        }
        tracing::error!(user.id = %user, session.id = %session, cost_usd, "could not record a turn's cost");
        None
    }
}
