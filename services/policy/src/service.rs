//! The gRPC `csp.v1.Policy` implementation.

use crate::budget::{self, Clock, micros, usd};
use crate::hasher::Hasher;
use crate::plugins::{PluginRoles, Rule};
use crate::tools::{Requirement, ToolRoles};
use csp_auth::{Access, Caller, Tokens};
use csp_domain::{ErrorCode, Role, UserId};
use csp_proto::v1 as pb;
use csp_proto::v1::policy_server::Policy;
use csp_rpc::{status, status_with_message};
use csp_store::{Admission, AuditQuery, NewUser, Reservation, Store, UserRecord, UserUpdate};
use std::sync::Arc;
use std::time::Duration;
use time::{OffsetDateTime, UtcOffset};
use tonic::{Request, Response, Status};

/// What each method requires (see `proto/csp/v1/policy.proto`). A method
/// missing here is refused by the guard.
pub fn access(path: &str) -> Option<Access> {
    let method = path.strip_prefix("/csp.v1.Policy/")?;
    Some(match method {
        "Login" => Access::Public,
        "GetUser" | "CheckTool" | "AdmitTurn" | "SettleTurn" => Access::Service,
        "ListUsers" | "CreateUser" | "UpdateUser" | "ListAudit" => Access::Role(Role::Admin),
        "GetBudget" => Access::Role(Role::User),
        _ => return None,
    })
}

/// Budget rules.
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    /// Set aside per admitted turn until its cost is known.
    pub turn_reserve_usd: f64,
    /// A reservation never settled (its replica died) stops counting after this.
    pub reservation_ttl: Duration,
    /// Months begin at midnight in this offset.
    pub month_offset: UtcOffset,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            turn_reserve_usd: 0.25,
            reservation_ttl: Duration::from_secs(6 * 3600),
            month_offset: UtcOffset::UTC,
        }
    }
}

pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: Tokens,
    /// Verified against when the username is unknown, so that a login for a
    /// missing user costs as much time as one with a wrong password.
    dummy_hash: String,
    pub(crate) tools: ToolRoles,
    /// The roles plugins declare for their tools.
    pub(crate) plugins: PluginRoles,
    pub(crate) budget: BudgetConfig,
    pub(crate) clock: Arc<dyn Clock>,
    /// Every password hash and check runs here: bounded concurrency, so
    /// bounded memory.
    hasher: Hasher,
}

impl Service {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        tokens: Tokens,
        tools: ToolRoles,
        budget: BudgetConfig,
        clock: Arc<dyn Clock>,
        hasher: Hasher,
    ) -> Result<Self, crate::Error> {
        let dummy_hash = csp_auth::hash_password(&csp_auth::generate_password())?;
        tracing::debug!(threads = hasher.threads(), "password hashing threads");
        Ok(Self {
            store,
            tokens,
            dummy_hash,
            tools,
            plugins: PluginRoles::Off,
            budget,
            clock,
            hasher,
        })
    }

    /// The user a login names: its NFKC form, or (for a name stored before
    /// names were normalised) the name as typed. Both lookups always run
    /// when the forms differ, so the time taken says nothing about which
    /// one found the user.
    async fn user_for_login(&self, typed: &str) -> Result<Option<UserRecord>, Status> {
        let name = csp_auth::username::normalize(typed);
        let normalized = self.store.user_by_name(&name).await.map_err(store_error)?;
        if name == typed {
            return Ok(normalized);
        }
        let as_typed = self.store.user_by_name(typed).await.map_err(store_error)?;
        Ok(normalized.or(as_typed))
    }

    /// Refuses a new name that equals or looks like an existing one
    /// ([`csp_auth::username::confusable`]).
    async fn check_name_free(&self, name: &str) -> Result<(), Status> {
        let users = self.store.list_users().await.map_err(store_error)?;
        let Some(other) = users
            .iter()
            .find(|u| csp_auth::username::confusable(name, &u.username))
        else {
            return Ok(());
        };
        if other.username.to_lowercase() == name.to_lowercase() {
            return Err(status(ErrorCode::UsernameTaken, "username taken"));
        }
        Err(status_with_message(
            ErrorCode::UsernameTaken,
            format!(
                "The username '{name}' looks like the existing username '{}'. Choose a name that cannot be mistaken for another.",
                other.username
            ),
        ))
    }

    fn month(&self) -> String {
        budget::month(self.clock.now(), self.budget.month_offset)
    }

    async fn user(&self, id: UserId) -> Result<UserRecord, Status> {
        self.store
            .user_by_id(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| status(ErrorCode::NotFound, "no such user"))
    }

    /// The acting admin, from the store (current state, not the token).
    async fn admin(&self, caller: &Caller) -> Result<UserRecord, Status> {
        let id = caller
            .user_id()
            .ok_or_else(|| status(ErrorCode::PermissionDenied, "admin actions need a user"))?;
        let user = self.user(id).await?;
        if !user.is_active {
            return Err(status(ErrorCode::AccountDeactivated, "deactivated"));
        }
        if !user.role.includes(Role::Admin) {
            return Err(status_with_message(
                ErrorCode::PermissionDenied,
                csp_auth::Denied::Role {
                    required: Role::Admin,
                }
                .message(),
            ));
        }
        Ok(user)
    }

    async fn to_proto(&self, u: &UserRecord) -> pb::User {
        let spend = self
            .store
            .spend(u.user_id, &self.month())
            .await
            .unwrap_or_default();
        let mut p = to_proto(u);
        p.current_month_spend_usd = usd(spend.spent_micros);
        p
    }

    async fn audit_admin(&self, actor: UserId, action: &str, details: serde_json::Value) {
        let entry = crate::audit::admin_action(actor, action, details);
        if let Err(e) = self.store.append_audit(entry).await {
            tracing::error!(error = %e, action, "could not audit-log an admin action");
        }
    }
}

pub(crate) fn to_proto(u: &UserRecord) -> pb::User {
    pb::User {
        user_id: u.user_id.to_string(),
        username: u.username.clone(),
        role: u.role.as_str().into(),
        is_active: u.is_active,
        created_at: rfc3339(u.created_at),
        last_login_at: u.last_login_at.map(rfc3339).unwrap_or_default(),
        monthly_cost_cap_usd: u.monthly_cost_cap_micros.map(usd),
        current_month_spend_usd: 0.0,
    }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn store_error(e: csp_store::Error) -> Status {
    tracing::error!(error = %e, "policy store failed");
    status(ErrorCode::Unavailable, "policy store unavailable")
}

fn invalid(message: impl Into<String>) -> Status {
    status_with_message(ErrorCode::InvalidRequest, message)
}

fn parse_user_id(s: &str) -> Result<UserId, Status> {
    s.parse().map_err(|_| {
        invalid(format!(
            "'{}' is not a user id.",
            s.chars().take(64).collect::<String>()
        ))
    })
}

fn parse_role(s: &str) -> Result<Role, Status> {
    s.parse()
        .map_err(|_| invalid("role must be admin, operator or user."))
}

fn parse_cap(usd_value: f64) -> Result<i64, Status> {
    if !usd_value.is_finite() || !(0.0..=1e9).contains(&usd_value) {
        return Err(invalid(
            "monthly_cost_cap_usd must be a number of dollars from 0 to 1000000000.",
        ));
    }
    Ok(micros(usd_value))
}

fn validate_username(name: &str) -> Result<(), Status> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "username must be 1 to 64 letters, digits, '.', '_', '-' or '@'.",
        ))
    }
}

/// The most actions one audit listing may filter by.
const MAX_TOOL_NAMES: usize = 20;

/// The actions an audit listing filters by: trimmed, the empty ones
/// dropped, at most [`MAX_TOOL_NAMES`] of at most 200 characters.
fn tool_names(names: Vec<String>) -> Result<Vec<String>, Status> {
    let names: Vec<String> = names
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    if names.len() > MAX_TOOL_NAMES {
        return Err(invalid(format!(
            "tool_name takes at most {MAX_TOOL_NAMES} actions."
        )));
    }
    if names.iter().any(|n| n.chars().count() > 200) {
        return Err(invalid("a tool_name is at most 200 characters."));
    }
    Ok(names)
}

fn parse_time(field: &str, s: &str) -> Result<Option<OffsetDateTime>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(|_| {
            invalid(format!(
                "{field} must be a date (YYYY-MM-DD) or an RFC 3339 time."
            ))
        })
}

#[tonic::async_trait]
impl Policy for Service {
    #[tracing::instrument(name = "policy.Login", skip_all, fields(username = %req.get_ref().username))]
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let pb::LoginRequest { username, password } = req.into_inner();
        if username.is_empty()
            || password.is_empty()
            || username.len() > 256
            || password.len() > 1024
        {
            return Err(status(
                ErrorCode::BadCredentials,
                "missing or oversize credentials",
            ));
        }
        let user = self.user_for_login(&username).await?;
        // Unknown users, wrong passwords and deactivated accounts all cost
        // one hash check and get the same answer; only the right password
        // of a deactivated account learns that it is deactivated.
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self.hasher.verify(password, hash).await;
        let user = match user {
            Some(u) if ok && u.is_active => u,
            Some(u) if ok => {
                tracing::info!(user.id = %u.user_id, "login refused: user is deactivated");
                return Err(status(ErrorCode::AccountDeactivated, "user deactivated"));
            }
            _ => {
                tracing::info!("login refused: wrong username or password");
                return Err(status(
                    ErrorCode::BadCredentials,
                    "wrong username or password",
                ));
            }
        };
        let now = OffsetDateTime::now_utc();
        self.store
            .record_login(user.user_id, now)
            .await
            .map_err(store_error)?;
        let (token, _) = self
            .tokens
            .issue(user.user_id, &user.username, user.role)
            .map_err(|e| status(ErrorCode::Internal, e.to_string()))?;
        let mut proto = to_proto(&user);
        proto.last_login_at = rfc3339(now);
        tracing::info!(user.id = %user.user_id, "login");
        Ok(Response::new(pb::LoginResponse {
            token,
            user: Some(proto),
            expires_in: self.tokens.ttl().as_secs(),
        }))
    }

    #[tracing::instrument(name = "policy.GetUser", skip_all)]
    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let id = parse_user_id(&req.get_ref().user_id)?;
        match self.store.user_by_id(id).await.map_err(store_error)? {
            Some(u) => Ok(Response::new(to_proto(&u))),
            None => Err(status(ErrorCode::Unauthenticated, "no such user")),
        }
    }

    #[tracing::instrument(name = "policy.ListUsers", skip_all)]
    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.admin(&csp_rpc::caller(&req)?).await?;
        let users = self.store.list_users().await.map_err(store_error)?;
        let mut out = Vec::with_capacity(users.len());
        for u in &users {
            out.push(self.to_proto(u).await);
        }
        Ok(Response::new(pb::ListUsersResponse { users: out }))
    }

    #[tracing::instrument(name = "policy.CreateUser", skip_all)]
    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let actor = self.admin(&csp_rpc::caller(&req)?).await?;
        let r = req.into_inner();
        let username = csp_auth::username::normalize(&r.username);
        validate_username(&username)?;
        if r.password.chars().count() < 8 || r.password.len() > 1024 {
            return Err(invalid("password must be at least 8 characters."));
        }
        let role = parse_role(&r.role)?;
        let cap = r.monthly_cost_cap_usd.map(parse_cap).transpose()?;
        // Two admins creating look-alikes at the same instant can both pass
        // this check; exact duplicates (ignoring case) the store refuses.
        self.check_name_free(&username).await?;
        let hash = self
            .hasher
            .hash(r.password)
            .await
            .map_err(|e| status(ErrorCode::Internal, e.to_string()))?;
        let user = match self
            .store
            .create_user(NewUser {
                username,
                password_hash: hash,
                role,
                monthly_cost_cap_micros: cap,
            })
            .await
        {
            Ok(u) => u,
            Err(csp_store::Error::Conflict(_)) => {
                return Err(status(ErrorCode::UsernameTaken, "username taken"));
            }
            Err(e) => return Err(store_error(e)),
        };
        self.audit_admin(
            actor.user_id,
            "admin.user.create",
            serde_json::json!({
                "user_id": user.user_id, "username": user.username, "role": role.as_str(),
                "monthly_cost_cap_usd": cap.map(usd),
            }),
        )
        .await;
        tracing::info!(actor = %actor.user_id, user.id = %user.user_id, role = %role, "user created");
        Ok(Response::new(self.to_proto(&user).await))
    }

    #[tracing::instrument(name = "policy.UpdateUser", skip_all)]
    async fn update_user(
        &self,
        req: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let actor = self.admin(&csp_rpc::caller(&req)?).await?;
        let r = req.into_inner();
        let id = parse_user_id(&r.user_id)?;
        let role = r.role.as_deref().map(parse_role).transpose()?;
        let cap = match (r.clear_cap, r.monthly_cost_cap_usd) {
            (true, _) => Some(None),
            (false, Some(v)) => Some(Some(parse_cap(v)?)),
            (false, None) => None,
        };
        if id == actor.user_id
            && (r.is_active == Some(false) || role.is_some_and(|r| r != Role::Admin))
        {
            // The last admin locking themself out leaves nobody to undo it.
            return Err(invalid("You cannot deactivate or demote your own account."));
        }
        let user = match self
            .store
            .update_user(
                id,
                UserUpdate {
                    role,
                    monthly_cost_cap_micros: cap,
                    is_active: r.is_active,
                },
            )
            .await
        {
            Ok(u) => u,
            Err(csp_store::Error::NotFound(_)) => {
                return Err(status(ErrorCode::NotFound, "no such user"));
            }
            Err(e) => return Err(store_error(e)),
        };
        let mut changes = serde_json::Map::new();
        changes.insert("user_id".into(), id.to_string().into());
        changes.insert("username".into(), user.username.clone().into());
        if let Some(role) = role {
            changes.insert("role".into(), role.as_str().into());
        }
        if let Some(cap) = cap {
            changes.insert("monthly_cost_cap_usd".into(), cap.map(usd).into());
        }
        if let Some(active) = r.is_active {
            changes.insert("is_active".into(), active.into());
        }
        self.audit_admin(actor.user_id, "admin.user.update", changes.into())
            .await;
        tracing::info!(actor = %actor.user_id, user.id = %id, "user updated");
        Ok(Response::new(self.to_proto(&user).await))
    }

    #[tracing::instrument(name = "policy.CheckTool", skip_all, fields(tool = %req.get_ref().tool_name))]
    async fn check_tool(
        &self,
        req: Request<pb::CheckToolRequest>,
    ) -> Result<Response<pb::CheckToolResponse>, Status> {
        let r = req.into_inner();
        let user = self.user(parse_user_id(&r.user_id)?).await?;
        let decision = decide(
            &self.tools,
            &self.plugins,
            &user,
            &r.tool_name,
            r.session_role.parse().ok(),
        );
        let (allowed, reason, message) = match decision {
            Ok(()) => (true, "", String::new()),
            Err((reason, message)) => (false, reason, message),
        };
        metrics::counter!(crate::metrics::PERMISSION_DECISIONS,
            "outcome" => if allowed { "allowed" } else { "denied" },
            "reason" => if allowed { "role" } else { reason })
        .increment(1);
        if !allowed {
            tracing::info!(user.id = %user.user_id, session.id = %r.session_id, tool = %r.tool_name, reason, "tool call denied");
        }
        Ok(Response::new(pb::CheckToolResponse {
            allowed,
            message,
            reason: reason.into(),
            role: user.role.as_str().into(),
        }))
    }

    #[tracing::instrument(name = "policy.AdmitTurn", skip_all)]
    async fn admit_turn(
        &self,
        req: Request<pb::AdmitTurnRequest>,
    ) -> Result<Response<pb::AdmitTurnResponse>, Status> {
        let r = req.into_inner();
        let user = self.user(parse_user_id(&r.user_id)?).await?;
        if !user.is_active {
            return Err(status(ErrorCode::AccountDeactivated, "deactivated"));
        }
        let month = self.month();
        // Without a cap the turn is still reserved and settled, so the
        // month's spend is known (the admin's overview, a cap set later).
        let cap = user.monthly_cost_cap_micros.unwrap_or(i64::MAX);
        let id = uuid::Uuid::new_v4();
        let expires_at = self.clock.now() + self.budget.reservation_ttl;
        let admission = self
            .store
            .reserve(Reservation {
                id,
                user_id: user.user_id,
                month: month.clone(),
                amount_micros: micros(self.budget.turn_reserve_usd).max(1),
                cap_micros: cap,
                expires_at,
            })
            .await
            .map_err(store_error)?;
        match admission {
            Admission::Admitted(_) => Ok(Response::new(pb::AdmitTurnResponse {
                reservation_id: id.to_string(),
                month,
            })),
            Admission::Exceeded(spend) if cap != i64::MAX => {
                metrics::counter!(crate::metrics::BUDGET_REJECTIONS).increment(1);
                tracing::info!(user.id = %user.user_id, "turn refused: monthly budget exceeded");
                // Turns in flight hold the rest of the cap: count what they
                // reserved, up to the cap, as used.
                let committed = cap.min(spend.spent_micros + spend.reserved_micros);
                Err(status_with_message(
                    ErrorCode::BudgetExceeded,
                    budget::exceeded(spend.spent_micros.max(committed), cap),
                ))
            }
            Admission::Exceeded(_) => Err(status(ErrorCode::Internal, "uncapped turn refused")),
        }
    }

    #[tracing::instrument(name = "policy.SettleTurn", skip_all)]
    async fn settle_turn(
        &self,
        req: Request<pb::SettleTurnRequest>,
    ) -> Result<Response<pb::SettleTurnResponse>, Status> {
        let r = req.into_inner();
        let user_id = parse_user_id(&r.user_id)?;
        let id: uuid::Uuid = r
            .reservation_id
            .parse()
            .map_err(|_| invalid("bad reservation id"))?;
        let cost = if r.cost_usd.is_finite() {
            micros(r.cost_usd.max(0.0))
        } else {
            0
        };
        let month = if r.month.is_empty() {
            self.month()
        } else {
            r.month
        };
        let settled = self
            .store
            .settle(id, user_id, &month, cost)
            .await
            .map_err(store_error)?;
        let mut notice = String::new();
        if settled.applied {
            let user = self.user(user_id).await?;
            if let Some(cap) = user.monthly_cost_cap_micros
                && budget::crosses_warning(settled.after.spent_micros, cap)
                && !settled.after.warned
                && self
                    .store
                    .mark_warned(user_id, &month)
                    .await
                    .map_err(store_error)?
            {
                notice = budget::warning(settled.after.spent_micros, cap);
            }
        }
        Ok(Response::new(pb::SettleTurnResponse { notice }))
    }

    #[tracing::instrument(name = "policy.GetBudget", skip_all)]
    async fn get_budget(
        &self,
        req: Request<pb::GetBudgetRequest>,
    ) -> Result<Response<pb::Budget>, Status> {
        let caller = csp_rpc::caller(&req)?;
        let id = parse_user_id(&req.get_ref().user_id)?;
        let may = match &caller {
            Caller::Service { .. } => true,
            Caller::User { id: me, .. } => {
                *me == id || self.user(*me).await?.role.includes(Role::Admin)
            }
        };
        if !may {
            return Err(status_with_message(
                ErrorCode::PermissionDenied,
                csp_auth::Denied::Role {
                    required: Role::Admin,
                }
                .message(),
            ));
        }
        let user = self.user(id).await?;
        let month = self.month();
        let spend = self.store.spend(id, &month).await.map_err(store_error)?;
        Ok(Response::new(pb::Budget {
            month,
            spent_usd: usd(spend.spent_micros),
            cap_usd: user.monthly_cost_cap_micros.map(usd),
            percent: user
                .monthly_cost_cap_micros
                .map(|cap| budget::percent(spend.spent_micros, cap)),
            reserved_usd: usd(spend.reserved_micros),
        }))
    }

    #[tracing::instrument(name = "policy.ListAudit", skip_all)]
    async fn list_audit(
        &self,
        req: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        self.admin(&csp_rpc::caller(&req)?).await?;
        let r = req.into_inner();
        let limit = match r.limit {
            0 => 100,
            n => n.min(1000),
        };
        let query = AuditQuery {
            user_id: if r.user_id.is_empty() {
                None
            } else {
                Some(parse_user_id(&r.user_id)?)
            },
            start: parse_time("start", &r.start)?,
            end: parse_time("end", &r.end)?,
            before_seq: (r.before_seq > 0).then_some(r.before_seq),
            limit,
            tool_names: tool_names(r.tool_names)?,
        };
        let rows = self.store.audit_page(&query).await.map_err(store_error)?;
        let next = if rows.len() as u32 == limit {
            rows.last().map(|r| r.seq).unwrap_or(0)
        } else {
            0
        };
        let entries = rows
            .into_iter()
            .map(|r| pb::AuditEntry {
                audit_id: r.entry.audit_id.to_string(),
                seq: r.seq,
                timestamp: rfc3339(r.entry.timestamp),
                user_id: r.entry.user_id.map(|u| u.to_string()).unwrap_or_default(),
                session_id: r
                    .entry
                    .session_id
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                tool_name: r.entry.tool_name,
                sanitized_input: r.entry.sanitized_input,
                result_status: r.entry.result_status,
                execution_duration_ms: r.entry.execution_duration_ms,
                cost_usd: r.entry.cost_micros.map(usd),
            })
            .collect();
        Ok(Response::new(pb::ListAuditResponse {
            entries,
            next_before_seq: next,
        }))
    }
}

/// What `tool` requires: an explicit `CSP_TOOL_ROLES` entry, else what the
/// plugin catalog says of an MCP tool, else the defaults.
fn rule(tools: &ToolRoles, plugins: &PluginRoles, tool: &str) -> Rule {
    if let Some(req) = tools.explicit(tool) {
        return Rule::Require(req);
    }
    if tool.starts_with("mcp__")
        && let Some(rule) = plugins.rule(tool)
    {
        return rule;
    }
    Rule::Require(tools.required(tool))
}

/// The permission gate's rule: `Ok` to allow, else `(reason, message)`.
pub(crate) fn decide(
    tools: &ToolRoles,
    plugins: &PluginRoles,
    user: &UserRecord,
    tool: &str,
    session_role: Option<Role>,
) -> Result<(), (&'static str, String)> {
    if !user.is_active {
        return Err((
            "inactive",
            ErrorCode::AccountDeactivated.user_message().to_owned(),
        ));
    }
    let required = match rule(tools, plugins, tool) {
        Rule::Require(required) => required,
        Rule::Deny { reason, message } => return Err((reason, message)),
    };
    match required {
        Requirement::Disabled => Err((
            "disabled",
            format!("Tool '{tool}' is disabled in this deployment."),
        )),
        Requirement::Role(required) if user.role.includes(required) => Ok(()),
        Requirement::Role(required) => {
            if session_role.is_some_and(|r| r.includes(required)) {
                Err((
                    "permissions_changed",
                    ErrorCode::PermissionsChanged.user_message().to_owned(),
                ))
            } else {
                Err((
                    "tool_role",
                    format!(
                        "Tool '{tool}' was denied. This action requires {required} access. Contact your administrator."
                    ),
                ))
            }
        }
    }
}
