//! The tool door: where the built-in ticket tools' MCP server (`csp mcp
//! tickets`, running inside an agent's sandbox) sends each tool call.
//!
//! The server is untrusted: the agent's shell can read its environment and
//! call this door itself. So the door trusts nothing it is sent but the
//! token, a lease of its own (never the model lease) that names the csp
//! session of the agent process and dies with it. From the session it
//! takes the user and the tenant the session is bound to; the tool and its
//! input are checked (`csp-ticket-tools`: a `tenant_id` in the input is
//! refused); the policy service decides the call for the user's current
//! role, exactly as for a call the CLI's hook sees, so a call from the
//! shell meets the same rule; and the tickets service answers for that
//! tenant, checking once more that the user may see it. A call the CLI made
//! is audited by the session's actor like every tool call.

use crate::gate::Bindings;
use crate::governor::{Governor, ToolCall};
use bytes::Bytes;
use csp_domain::SessionId;
use csp_egress::{Leases, Listener};
use csp_proto::v1 as pb;
use csp_proto::v1::tickets_client::TicketsClient;
use csp_rpc::ServiceToken;
use csp_ticket_tools::door::{DoorReply, MAX_BODY};
use csp_ticket_tools::{TicketTool, ToolInput};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A tool call waits this long for the tickets service (a ticketing tool
/// behind it may take its own 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(45);

type Tickets = TicketsClient<InterceptedService<Channel, ServiceToken>>;

#[derive(Clone)]
pub(crate) struct ToolDoor {
    inner: Arc<Inner>,
}

struct Inner {
    leases: Leases,
    bindings: Bindings,
    governor: Arc<dyn Governor>,
    /// `None`: this deployment has no tickets service.
    tickets: Option<Tickets>,
}

fn reply(status: StatusCode, text: impl Into<String>, is_error: bool) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&DoorReply {
        text: text.into(),
        is_error,
    })
    .unwrap_or_default();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// A tool's outcome the model reads (the call itself worked).
fn answer(text: impl Into<String>) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, text, false)
}

/// A refusal the model reads: bad input, not allowed, nothing to read.
fn refusal(text: impl Into<String>) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, text, true)
}

fn bearer(request: &Request<Incoming>) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

impl ToolDoor {
    pub(crate) fn new(
        leases: Leases,
        bindings: Bindings,
        governor: Arc<dyn Governor>,
        tickets: Option<(Channel, ServiceToken)>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                leases,
                bindings,
                governor,
                tickets: tickets
                    .map(|(channel, token)| TicketsClient::with_interceptor(channel, token)),
            }),
        }
    }

    pub(crate) async fn serve(self, listener: Listener, stop: CancellationToken) {
        listener
            .serve_http("tool door", stop, move |request| {
                let door = self.clone();
                async move { door.handle(request).await }
            })
            .await;
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(grant) = bearer(&request).and_then(|t| self.inner.leases.check(t)) else {
            return reply(StatusCode::UNAUTHORIZED, "unknown or expired token", true);
        };
        let session = SessionId(grant.session);
        let Some(name) = request.uri().path().strip_prefix("/v1/tools/") else {
            return reply(StatusCode::NOT_FOUND, "no such path", true);
        };
        let Ok(tool) = name.parse::<TicketTool>() else {
            return reply(
                StatusCode::NOT_FOUND,
                format!("There is no ticket tool '{}'.", name.escape_debug()),
                true,
            );
        };
        if request.method() != http::Method::POST {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "use POST", true);
        }
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("A tool input may be at most {MAX_BODY} bytes."),
                    true,
                );
            }
        };
        let Ok(input) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return refusal("The tool input is not JSON.");
        };
        self.call(session, tool, input).await
    }

    async fn call(
        &self,
        session: SessionId,
        tool: TicketTool,
        input: serde_json::Value,
    ) -> Response<Full<Bytes>> {
        let Some((user, session_role, tenant)) = self.inner.bindings.identity(session) else {
            return refusal("This agent process serves no session yet; no tool may run.");
        };
        let Some(tenant) = tenant else {
            return refusal(
                "This chat session is not bound to a tenant, so the ticket tools have nothing to read. Start a chat for a tenant to use them.",
            );
        };
        let parsed = match ToolInput::parse(tool, &input) {
            Ok(parsed) => parsed,
            Err(e) => return refusal(e.to_string()),
        };
        let verdict = self
            .inner
            .governor
            .check_tool(ToolCall {
                session,
                user,
                session_role,
                tool_name: &tool.mcp_name(),
                input: &input,
                tool_use_id: None,
            })
            .await;
        if !verdict.allowed {
            return refusal(verdict.message);
        }
        let Some(tickets) = self.inner.tickets.clone() else {
            return refusal("This deployment runs no tickets service: there is no ticket context.");
        };
        let role = verdict.role.or(session_role).map(|r| r.as_str().to_owned());
        let mut request = tonic::Request::new(pb::ChatToolRequest {
            tenant_id: tenant.to_string(),
            user_id: user.to_string(),
            role: role.unwrap_or_default(),
            session_id: session.to_string(),
            tool: Some(parsed.into_proto()),
        });
        request.set_timeout(CALL_TIMEOUT);
        match tickets.clone().run_chat_tool(request).await {
            Ok(r) => answer(r.into_inner().text),
            Err(status) => {
                let code = csp_rpc::error_code(&status);
                match csp_rpc::user_message(&status) {
                    // The tickets service's answer, written for the model.
                    Some(message) if code != csp_domain::ErrorCode::Internal => refusal(message),
                    _ => {
                        tracing::warn!(session.id = %session, tool = tool.as_str(), error = %status, "a ticket tool call failed");
                        reply(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "The ticket context cannot be read right now; try again later.",
                            true,
                        )
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governor::{Refusal, Reservation, Verdict};
    use async_trait::async_trait;
    use csp_domain::{Role, TenantId, UserId};
    use csp_ticket_tools::DoorClient;
    use secrecy::SecretString;
    use serde_json::json;
    use std::sync::Mutex;

    /// Allows every call but `add_internal_note`, and remembers what it
    /// was asked.
    #[derive(Default)]
    struct Gate {
        asked: Mutex<Vec<(String, UserId)>>,
    }

    #[async_trait]
    impl Governor for Gate {
        async fn check_tool(&self, call: ToolCall<'_>) -> Verdict {
            self.asked
                .lock()
                .unwrap()
                .push((call.tool_name.to_owned(), call.user));
            if call.tool_name.ends_with("add_internal_note") {
                Verdict::deny("tool_role", "This action requires operator access.")
            } else {
                Verdict {
                    role: Some(Role::User),
                    ..Verdict::allow()
                }
            }
        }

        async fn admit_turn(
            &self,
            _: UserId,
            _: SessionId,
        ) -> Result<Option<Reservation>, Refusal> {
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

    struct Door {
        leases: Leases,
        bindings: Bindings,
        gate: Arc<Gate>,
        url: String,
        stop: CancellationToken,
    }

    impl Drop for Door {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    /// A door on loopback TCP; `tickets` at a closed port when asked for.
    async fn door(tickets: bool) -> Door {
        let (leases, bindings, gate) = (
            Leases::new(),
            Bindings::default(),
            Arc::new(Gate::default()),
        );
        let tickets = if tickets {
            // Bound and dropped: nothing listens there.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let channel = csp_rpc::channel(&format!("http://127.0.0.1:{port}")).unwrap();
            let secret = SecretString::from("a-test-secret-of-at-least-32-bytes!".to_owned());
            let tokens = csp_auth::Tokens::new(&secret, Duration::from_secs(60)).unwrap();
            Some((channel, ServiceToken::new(tokens, "session-pool")))
        } else {
            None
        };
        let door = ToolDoor::new(leases.clone(), bindings.clone(), gate.clone(), tickets);
        let listener = Listener::loopback().await.unwrap();
        let url = format!("http://{}", listener.local_addr());
        let stop = CancellationToken::new();
        tokio::spawn(door.serve(listener, stop.clone()));
        Door {
            leases,
            bindings,
            gate,
            url,
            stop,
        }
    }

    fn client(d: &Door, token: &str) -> DoorClient {
        DoorClient::new(&d.url, SecretString::from(token.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn only_a_live_token_of_a_bound_session_with_a_tenant_gets_through() {
        let d = door(false).await;
        let session = SessionId::default();
        let lease = d.leases.issue(session.0, &[]);
        let input = json!({"ip": "10.0.0.1"});

        let reply = client(&d, "csp-agent-guessed")
            .call("lookup_ip", &input)
            .await;
        assert!(reply.is_error, "{}", reply.text);
        let reply = client(&d, lease.token()).call("lookup_ip", &input).await;
        assert!(
            reply.text.contains("serves no session yet"),
            "{}",
            reply.text
        );

        let user = UserId::default();
        d.bindings.bind(session, user, Some(Role::User), None);
        let reply = client(&d, lease.token()).call("lookup_ip", &input).await;
        assert!(
            reply.text.contains("not bound to a tenant"),
            "{}",
            reply.text
        );
        assert!(
            d.gate.asked.lock().unwrap().is_empty(),
            "nothing to decide yet"
        );

        let token = lease.token().to_owned();
        drop(lease);
        let reply = client(&d, &token).call("lookup_ip", &input).await;
        assert!(reply.is_error, "a dead process's token is worth nothing");
    }

    #[tokio::test]
    async fn the_input_the_gate_and_the_tickets_service_decide_in_that_order() {
        let d = door(false).await;
        let session = SessionId::default();
        let lease = d.leases.issue(session.0, &[]);
        let user = UserId::default();
        let tenant = TenantId::parse("tenant-a").unwrap();
        d.bindings
            .bind(session, user, Some(Role::User), Some(tenant));
        let c = client(&d, lease.token());

        // A tenant in the input is refused before anyone is asked.
        let reply = c
            .call(
                "search_similar_tickets",
                &json!({"query": "vpn", "tenant_id": "tenant-b"}),
            )
            .await;
        assert!(reply.is_error);
        assert!(
            reply.text.contains("`tenant_id` is not an input"),
            "{}",
            reply.text
        );
        assert!(d.gate.asked.lock().unwrap().is_empty());

        // The policy decides for the session's user, by the tool's MCP name.
        let reply = c
            .call(
                "add_internal_note",
                &json!({"ticket_id": "1", "text": "hi"}),
            )
            .await;
        assert!(reply.is_error);
        assert!(
            reply.text.contains("requires operator access"),
            "{}",
            reply.text
        );
        assert_eq!(
            d.gate.asked.lock().unwrap().last().unwrap(),
            &("mcp__tickets__add_internal_note".to_owned(), user)
        );

        // Allowed, but this deployment has no tickets service.
        let reply = c.call("search_kb", &json!({"query": "vpn"})).await;
        assert!(reply.is_error);
        assert!(reply.text.contains("no tickets service"), "{}", reply.text);

        // An unknown tool is not a path to anything.
        let reply = c.call("drop_tables", &json!({})).await;
        assert!(reply.is_error);
    }

    #[tokio::test]
    async fn a_tickets_service_that_cannot_be_reached_is_a_retryable_failure() {
        let d = door(true).await;
        let session = SessionId::default();
        let lease = d.leases.issue(session.0, &[]);
        let tenant = TenantId::parse("tenant-a").unwrap();
        d.bindings
            .bind(session, UserId::default(), Some(Role::User), Some(tenant));
        let reply = client(&d, lease.token())
            .call("lookup_ip", &json!({"ip": "10.0.0.1"}))
            .await;
        assert!(reply.is_error);
        assert!(
            reply.text.contains("cannot be read right now"),
            "{}",
            reply.text
        );
    }
}
