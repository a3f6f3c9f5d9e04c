//! One webhook delivery, from the raw bytes the gateway received to a
//! durably recorded, queued job (or a stored resolved ticket).
//!
//! The order is the security argument:
//! 1. a body over 256 KiB is refused before anything is read;
//! 2. the tenant is resolved (the URL's, or on the seed's tenant-less paths
//!    the payload's `tenant_id`, the only field read before verification);
//!    an unknown or inactive tenant is answered only after a signature check
//!    against a fixed dummy secret, so the answer takes the time a bad
//!    signature takes and tenant ids cannot be probed by timing;
//! 3. the signature is verified over the raw bytes against the current and
//!    (within the 24 h grace period) the previous secret — always two HMACs;
//! 4. only then is the delivery counted against the tenant's rate limit
//!    (100 a minute, a sliding window in the shared cache): forged traffic
//!    never reaches the counter, so it cannot use up a tenant's budget;
//! 5. the payload is parsed and validated;
//! 6. a new ticket is recorded (idempotent on the signature: a repeated
//!    delivery finds the first job), and only after that commit pushed to
//!    the queue; the answer waits for that one commit only, as the job's
//!    queued mark is written in the background, batched (`marks.rs`). A
//!    push that fails is logged and left to the sweeper: the job is
//!    durable, so the answer is still "queued".

use crate::Clock;
use crate::audit::Auditor;
use crate::configs::{Configs, LoadError, TenantConfig};
use crate::metrics::{self, Reject, UNKNOWN_TENANT};
use crate::outbox::Outbox;
use csp_cache::Cache;
use csp_domain::{AuditStatus, EnhanceQueue, ErrorCode, HistorySource, TenantId};
use csp_proto::v1 as pb;
use csp_rpc::{status, status_with_message};
use csp_store::{HistoryTicket, NewEnhancement, Store};
use csp_ticketing::connector::{Delivery, Event, Route, ToolType};
use csp_ticketing::registry::connector;
use csp_ticketing::webhook::{
    MAX_WEBHOOK_BODY_BYTES, NewTicket, ResolvedTicketEvent, SIGNATURE_HEADER, ValidationError,
};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;
use tracing::Instrument;

/// Verified against when the tenant is unknown, inactive or has no secret,
/// so that answer costs what a bad signature costs. Nobody knows a
/// matching signature for it that is also a real tenant's.
const DUMMY_SECRET: &[u8] = b"csp-tickets-dummy-secret-for-unknown-tenants-0000000000000000";

/// The rate limit's window.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(60);

pub(crate) struct Intake {
    pub(crate) configs: Arc<Configs>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) audit: Auditor,
    pub(crate) clock: Arc<dyn Clock>,
    /// Deliveries per tenant per [`RATE_WINDOW`]; more are refused.
    pub(crate) rate_limit: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    New,
    Resolved,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::Resolved => "resolved",
        }
    }
}

/// A refusal: the status to answer and what to count it as.
struct Refused {
    status: Status,
    reason: Reject,
}

fn refused(reason: Reject, status: Status) -> Refused {
    Refused { status, reason }
}

impl Intake {
    pub(crate) async fn accept(
        &self,
        d: pb::WebhookDelivery,
    ) -> Result<pb::WebhookAccepted, Status> {
        let correlation_id = correlation(&d.correlation_id);
        let source_addr: String = d.source_addr.chars().take(100).collect();
        let kind = match pb::WebhookKind::try_from(d.kind) {
            Ok(pb::WebhookKind::New) => Kind::New,
            Ok(pb::WebhookKind::Resolved) => Kind::Resolved,
            _ => {
                return Err(status_with_message(
                    ErrorCode::InvalidWebhook,
                    "kind must be new or resolved",
                ));
            }
        };
        let span = tracing::info_span!("webhook_received", tenant_id = tracing::field::Empty,
            ticket_id = tracing::field::Empty, kind = kind.as_str(), correlation_id = %correlation_id);
        let mut tenant_label = UNKNOWN_TENANT.to_owned();
        let outcome = self
            .deliver(&d, kind, &correlation_id, &source_addr, &mut tenant_label)
            .instrument(span)
            .await;
        match outcome {
            Ok(accepted) => {
                match kind {
                    Kind::New => metrics::accepted(&tenant_label, accepted.duplicate),
                    Kind::Resolved => metrics::history(&tenant_label, "stored"),
                }
                Ok(accepted)
            }
            Err(r) => {
                match kind {
                    Kind::New => metrics::rejected(&tenant_label, r.reason),
                    Kind::Resolved => metrics::history(&tenant_label, "rejected"),
                }
                tracing::info!(tenant_id = %tenant_label, operation = "webhook_received", status = "rejected",
                    reason = r.reason.as_str(), correlation_id = %correlation_id, kind = kind.as_str(), "webhook refused");
                Err(r.status)
            }
        }
    }

    async fn deliver(
        &self,
        d: &pb::WebhookDelivery,
        kind: Kind,
        correlation_id: &str,
        source_addr: &str,
        tenant_label: &mut String,
    ) -> Result<pb::WebhookAccepted, Refused> {
        if d.body.len() > MAX_WEBHOOK_BODY_BYTES {
            return Err(refused(
                Reject::TooLarge,
                status_with_message(
                    ErrorCode::PayloadTooLarge,
                    format!("The webhook body exceeds {MAX_WEBHOOK_BODY_BYTES} bytes."),
                ),
            ));
        }
        let tool = ToolType::parse(&d.tool_type).map_err(|e| {
            refused(
                Reject::Invalid,
                status_with_message(ErrorCode::InvalidWebhook, e.to_string()),
            )
        })?;
        let connector = connector(tool);
        let now = self.clock.now();
        let headers: BTreeMap<String, String> = d
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let delivery = Delivery {
            headers: &headers,
            body: &d.body,
            now: now.into(),
        };
        let verify = |secrets: &[&[u8]]| connector.verify(secrets, &delivery);
        let Some(tenant) = self.resolve_tenant(d)? else {
            // A malformed id cannot name a tenant: answered like an unknown one.
            let _ = verify(&[DUMMY_SECRET, DUMMY_SECRET]);
            return Err(tenant_not_found());
        };
        tracing::Span::current().record("tenant_id", tracing::field::display(&tenant));
        let config = match self.configs.get(&tenant).await {
            // A tenant of another tool is not this path's: answered like
            // an unknown one, so the path says nothing of who uses what.
            Ok(Some(c)) if c.record.is_active && c.record.tool_type == tool.as_str() => c,
            Ok(_) => {
                // Same work as a real check, then the same answer for
                // unknown and inactive.
                let _ = verify(&[DUMMY_SECRET, DUMMY_SECRET]);
                return Err(tenant_not_found());
            }
            Err(e) => {
                let _ = verify(&[DUMMY_SECRET, DUMMY_SECRET]);
                log_load_error(&tenant, &e);
                return Err(refused(
                    Reject::Unavailable,
                    status(ErrorCode::Unavailable, "tenant configuration unavailable"),
                ));
            }
        };
        *tenant_label = tenant.to_string();
        let current = config
            .webhook_secret
            .as_ref()
            .map_or(DUMMY_SECRET, |s| s.expose_secret().as_bytes());
        let previous = config
            .previous_secret(now)
            .map_or(DUMMY_SECRET, |s| s.expose_secret().as_bytes());
        let verified = verify(&[current, previous]);
        if let Err(why) = &verified {
            // The security event: who and why, never the secret or the
            // signature.
            tracing::warn!(security = true, tenant_id = %tenant, source_addr, reason = %why,
                correlation_id, operation = "verify_signature", status = "denied", "webhook signature refused");
            self.audit.record(
                None,
                "tickets.webhook_signature_invalid",
                serde_json::json!({
                    "tenant_id": tenant.as_str(),
                    "source_addr": source_addr,
                    "reason": why.to_string(),
                    "kind": kind.as_str(),
                    "correlation_id": correlation_id,
                }),
                AuditStatus::Denied,
            );
            return Err(refused(
                Reject::Signature,
                status(ErrorCode::WebhookSignatureInvalid, why.to_string()),
            ));
        }
        let verified = verified.unwrap_or_default();
        tracing::info!(tenant_id = %tenant, correlation_id, operation = "verify_signature", status = "ok", "webhook signature verified");
        self.rate_limit(&tenant, now).await?;
        let route = match kind {
            Kind::New => Route::New,
            Kind::Resolved => Route::Resolved,
        };
        match connector.parse(route, &d.body).map_err(invalid)? {
            Event::NewTicket(ticket) => {
                // The tool's delivery id where it sends one; else the
                // signature, which a repeated delivery repeats.
                let delivery_key = match verified.delivery_id {
                    Some(id) => format!("{tool}:{id}"),
                    None => headers
                        .get(SIGNATURE_HEADER)
                        .map(|s| s.trim().trim_start_matches("sha256=").to_ascii_lowercase())
                        .unwrap_or_default(),
                };
                self.new_ticket(ticket, delivery_key, &config, correlation_id)
                    .await
            }
            Event::Resolved(event) => self.resolved_ticket(event, &config, correlation_id).await,
            Event::Ignored(why) => {
                tracing::info!(tenant_id = %tenant, correlation_id, operation = "webhook_received",
                    status = "ignored", reason = %why, "webhook event not acted on");
                Ok(pb::WebhookAccepted {
                    job_id: String::new(),
                    status: "ignored".into(),
                    duplicate: false,
                })
            }
        }
    }

    /// The URL's tenant, or on the seed's paths the payload's; `None` for
    /// an id that is not a tenant id at all.
    fn resolve_tenant(&self, d: &pb::WebhookDelivery) -> Result<Option<TenantId>, Refused> {
        let text = if d.tenant_id.is_empty() {
            // Only this one field is read before the signature is checked:
            // without it there is no secret to check against.
            #[derive(serde::Deserialize)]
            struct TenantOnly {
                tenant_id: Option<serde_json::Value>,
            }
            match serde_json::from_slice::<TenantOnly>(&d.body) {
                Ok(TenantOnly {
                    tenant_id: Some(serde_json::Value::String(s)),
                }) => s,
                Ok(_) => {
                    return Err(refused(
                        Reject::Invalid,
                        status_with_message(
                            ErrorCode::InvalidWebhook,
                            "tenant_id is required in the payload on this path",
                        ),
                    ));
                }
                Err(_) => {
                    return Err(refused(
                        Reject::Invalid,
                        status_with_message(
                            ErrorCode::InvalidWebhook,
                            "the body is not a JSON object",
                        ),
                    ));
                }
            }
        } else {
            d.tenant_id.clone()
        };
        Ok(TenantId::parse(&text).ok())
    }

    async fn rate_limit(
        &self,
        tenant: &TenantId,
        now: time::OffsetDateTime,
    ) -> Result<(), Refused> {
        let now_ms = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let key = format!("tickets:webhooks:{tenant}");
        match self.cache.window_add(&key, now_ms, RATE_WINDOW).await {
            Ok(n) if n > self.rate_limit => {
                tracing::warn!(tenant_id = %tenant, deliveries = n, limit = self.rate_limit,
                    operation = "rate_limit", status = "limited", "tenant webhook rate limit reached");
                // Refused deliveries count too, so the honest wait is the
                // whole window from now.
                let mut s = status_with_message(
                    ErrorCode::WebhookRateLimited,
                    format!(
                        "More than {} webhooks in a minute for tenant '{tenant}'. Retry after {} seconds.",
                        self.rate_limit,
                        RATE_WINDOW.as_secs()
                    ),
                );
                s.metadata_mut().insert(
                    "retry-after",
                    RATE_WINDOW.as_secs().to_string().parse().expect("digits"),
                );
                Err(refused(Reject::RateLimited, s))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                // Fails open, as the breaker does: a cache outage must not
                // stop every tenant's tickets.
                tracing::warn!(tenant_id = %tenant, error = %e, "rate limit unavailable; delivery let through");
                Ok(())
            }
        }
    }

    async fn new_ticket(
        &self,
        ticket: NewTicket,
        delivery_key: String,
        config: &TenantConfig,
        correlation_id: &str,
    ) -> Result<pb::WebhookAccepted, Refused> {
        let tenant = &config.record.tenant_id;
        check_same_tenant(tenant, ticket.tenant_id.as_deref())?;
        tracing::Span::current().record("ticket_id", ticket.ticket_id.as_str());
        let recorded = self
            .store
            .record_enhancement(NewEnhancement {
                job_id: uuid::Uuid::new_v4(),
                tenant_id: tenant.clone(),
                ticket_id: ticket.ticket_id.clone(),
                delivery_key,
                subject: ticket.subject,
                description: ticket.description,
                priority: ticket.priority,
                correlation_id: correlation_id.to_owned(),
            })
            .await
            .map_err(|e| {
                tracing::error!(tenant_id = %tenant, ticket_id = %ticket.ticket_id, error = %e,
                    operation = "record_job", status = "failed", "enhancement job not recorded");
                refused(
                    Reject::Unavailable,
                    status(ErrorCode::Unavailable, "enhancement store unavailable"),
                )
            })?;
        let job = recorded.job;
        if !recorded.created {
            tracing::info!(tenant_id = %tenant, ticket_id = %job.ticket_id, job_id = %job.job_id, correlation_id,
                operation = "record_job", status = "duplicate", "repeated delivery: the first job stands");
            return Ok(pb::WebhookAccepted {
                job_id: job.job_id.to_string(),
                status: "queued".into(),
                duplicate: true,
            });
        }
        tracing::info!(tenant_id = %tenant, ticket_id = %job.ticket_id, job_id = %job.job_id, correlation_id,
            operation = "record_job", status = "recorded", "enhancement job recorded");
        let queue = EnhanceQueue::of(&config.record.tenant_id, config.record.dedicated_queue);
        if let Err(e) = self.outbox.publish(&job, &queue).await {
            tracing::warn!(tenant_id = %tenant, ticket_id = %job.ticket_id, job_id = %job.job_id, correlation_id,
                operation = "job_queued", status = "deferred", error = %e, "job recorded but not queued; the sweeper will queue it");
        }
        Ok(pb::WebhookAccepted {
            job_id: job.job_id.to_string(),
            status: "queued".into(),
            duplicate: false,
        })
    }

    async fn resolved_ticket(
        &self,
        event: ResolvedTicketEvent,
        config: &TenantConfig,
        correlation_id: &str,
    ) -> Result<pb::WebhookAccepted, Refused> {
        let tenant = &config.record.tenant_id;
        check_same_tenant(tenant, event.tenant_id.as_deref())?;
        let t = event.ticket;
        tracing::Span::current().record("ticket_id", t.ticket_id.as_str());
        let ticket_id = t.ticket_id.clone();
        self.store
            .upsert_ticket_history(
                tenant,
                &[HistoryTicket {
                    ticket_id: t.ticket_id,
                    description: t.description,
                    resolution: t.resolution,
                    resolved_date: t.resolved_date,
                    tags: t.tags,
                }],
                HistorySource::WebhookResolved,
                self.clock.now(),
            )
            .await
            .map_err(|e| {
                tracing::error!(tenant_id = %tenant, ticket_id, error = %e, operation = "store_history",
                    status = "failed", "resolved ticket not stored");
                refused(
                    Reject::Unavailable,
                    status(ErrorCode::Unavailable, "ticket history unavailable"),
                )
            })?;
        tracing::info!(tenant_id = %tenant, ticket_id, correlation_id, operation = "store_history",
            status = "stored", source = HistorySource::WebhookResolved.as_str(), "resolved ticket stored");
        Ok(pb::WebhookAccepted {
            job_id: String::new(),
            status: "stored".into(),
            duplicate: false,
        })
    }
}

fn tenant_not_found() -> Refused {
    refused(
        Reject::TenantNotFound,
        status_with_message(
            ErrorCode::TenantNotFound,
            "No active tenant with this id: check the webhook URL (or the payload's tenant_id).",
        ),
    )
}

fn invalid(e: ValidationError) -> Refused {
    match e {
        ValidationError::TooLarge => refused(
            Reject::TooLarge,
            status_with_message(ErrorCode::PayloadTooLarge, e.to_string()),
        ),
        e => refused(
            Reject::Invalid,
            status_with_message(ErrorCode::InvalidWebhook, e.to_string()),
        ),
    }
}

/// A payload that names a tenant must name the one whose secret signed it.
fn check_same_tenant(tenant: &TenantId, named: Option<&str>) -> Result<(), Refused> {
    match named {
        Some(other) if other != tenant.as_str() => Err(refused(
            Reject::Invalid,
            status_with_message(
                ErrorCode::InvalidWebhook,
                "tenant_id does not match the tenant of the webhook URL",
            ),
        )),
        _ => Ok(()),
    }
}

fn log_load_error(tenant: &TenantId, e: &LoadError) {
    tracing::error!(tenant_id = %tenant, error = %e, operation = "load_tenant", status = "failed",
        "tenant configuration cannot be read");
}

/// The gateway's request id, or a fresh one: bounded and printable, since
/// it is logged, stored and used as a trace id.
fn correlation(given: &str) -> String {
    let ok = !given.is_empty()
        && given.len() <= 128
        && given
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        given.to_owned()
    } else {
        uuid::Uuid::new_v4().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_kept_when_tame() {
        assert_eq!(correlation("req-123_abc"), "req-123_abc");
        for bad in ["", "a b", "x\n", &"a".repeat(129)] {
            let c = correlation(bad);
            assert_ne!(c, bad);
            assert!(uuid::Uuid::parse_str(&c).is_ok());
        }
    }

    #[test]
    fn a_payload_naming_another_tenant_is_refused() {
        let acme = TenantId::parse("acme").unwrap();
        assert!(check_same_tenant(&acme, None).is_ok());
        assert!(check_same_tenant(&acme, Some("acme")).is_ok());
        let r = check_same_tenant(&acme, Some("other")).err().unwrap();
        assert_eq!(r.reason, Reject::Invalid);
        assert_eq!(csp_rpc::error_code(&r.status), ErrorCode::InvalidWebhook);
    }

    #[test]
    fn validation_errors_map_to_their_codes() {
        assert_eq!(
            csp_rpc::error_code(&invalid(ValidationError::TooLarge).status),
            ErrorCode::PayloadTooLarge
        );
        let r = invalid(ValidationError::TooLong {
            field: "description",
            max: 10_000,
        });
        assert_eq!(csp_rpc::error_code(&r.status), ErrorCode::InvalidWebhook);
        assert_eq!(
            csp_rpc::user_message(&r.status).unwrap(),
            "description exceeds 10000 characters"
        );
    }
}
