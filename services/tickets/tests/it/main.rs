//! The tickets service over real gRPC, each case on both databases
//! (`csp_store::backend_tests!`), with the in-process queue and the memory
//! cache.

mod charts;
mod chat;
mod dashboard;
mod feedback;
mod helpers;
mod import;
mod operations;
mod queues;
mod tools;
mod workers;

use charts::*;
use chat::*;
use csp_domain::{
    AUDIT_TOPIC, AuditEvent, ENHANCE_TOPIC, EnhanceJob, EnhancementStatus, ErrorCode, TenantId,
};
use csp_proto::v1 as pb;
use csp_store::test_support::Backend;
use csp_store::{NewEnhancement, Owner, TenantUpdate};
use dashboard::*;
use feedback::*;
use helpers::*;
use import::*;
use operations::*;
use queues::*;
use std::time::Duration;
use tools::*;
use workers::*;

const SHORT: Duration = Duration::from_millis(300);

async fn every_rpc_admits_exactly_the_roles_it_names(backend: Backend) {
    let r = start(backend).await;
    r.create("acme").await;
    let mut c = r.client();
    // Admin-only: an operator is refused.
    let e = c
        .create_tenant(as_(&r.operator, new_tenant("other")))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
    let e = c
        .set_processing(as_(&r.operator, pb::SetProcessingRequest { paused: true }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
    // Operator: history and processing state, not for a plain user.
    c.list_enhancements(as_(&r.operator, pb::ListEnhancementsRequest::default()))
        .await
        .unwrap();
    let e = c
        .get_processing(as_(&r.user, pb::GetProcessingRequest {}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
    // Service only: the gateway's webhook intake; an admin is refused.
    let e = c
        .accept_webhook(as_(&r.admin, pb::WebhookDelivery::default()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PermissionDenied);
    // No token at all.
    let e = c.list_tenants(pb::ListTenantsRequest {}).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::Unauthenticated);
}

async fn tenants_are_created_read_updated_deleted_and_rotated_without_showing_secrets(
    backend: Backend,
) {
    let r = start(backend).await;
    let created = r.create("acme").await;
    let secret = created.webhook_secret.clone();
    assert_eq!(secret.len(), 64, "32 random bytes, hex");
    let t = created.tenant.unwrap();
    assert_eq!(t.tenant_id, "acme");
    assert!(t.api_key_set && t.is_active);
    assert_eq!(t.webhook_path, "/webhook/servicedesk_plus/acme");
    assert_eq!(t.servicedesk_auth, "authtoken");
    assert_eq!(t.enhancement_preferences.as_ref().unwrap().max_words, 500);
    let mut c = r.client();
    // Taken ids, active or not.
    let e = r.try_create(new_tenant("acme")).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::TenantExists);
    // Sealed at rest: neither the key nor the webhook secret in the clear.
    let stored = r
        .shared
        .store
        .secrets(&Owner::tenant("acme"))
        .await
        .unwrap();
    let keys: Vec<&str> = stored.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["api_key", "webhook_secret"]);
    for s in &stored {
        assert!(!s.encrypted_value.contains(&secret));
        assert!(!s.encrypted_value.contains("api-key-of-acme"));
    }
    let got = c
        .get_tenant(as_(
            &r.admin,
            pb::TenantRequest {
                tenant_id: "acme".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name, "acme MSP");
    let listed = c
        .list_tenants(as_(&r.admin, pb::ListTenantsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .tenants;
    assert_eq!(listed.len(), 1);
    let e = c
        .get_tenant(as_(
            &r.admin,
            pb::TenantRequest {
                tenant_id: "nobody".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::TenantNotFound);
    // Update: only the named fields; "[REDACTED]" keeps the key.
    let before = r
        .shared
        .store
        .secrets(&Owner::tenant("acme"))
        .await
        .unwrap();
    let updated = c
        .update_tenant(as_(
            &r.admin,
            pb::UpdateTenantRequest {
                tenant_id: "acme".into(),
                name: Some("Acme Two".into()),
                api_key: Some("[REDACTED]".into()),
                monthly_budget_micros: Some(5_000_000),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "Acme Two");
    assert_eq!(updated.servicedesk_url, "https://sdp.acme.example");
    assert_eq!(updated.monthly_budget_micros, Some(5_000_000));
    assert_eq!(
        r.shared
            .store
            .secrets(&Owner::tenant("acme"))
            .await
            .unwrap(),
        before
    );
    let e = c
        .update_tenant(as_(
            &r.admin,
            pb::UpdateTenantRequest {
                tenant_id: "acme".into(),
                servicedesk_url: Some("not a url".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidTenant);
    assert_eq!(
        message(&e),
        "servicedesk_url must be an http or https URL without credentials, query or fragment"
    );
    // Rotate: a new secret once, the old one kept sealed as the previous.
    let rotated = c
        .rotate_webhook_secret(as_(
            &r.admin,
            pb::RotateWebhookSecretRequest {
                tenant_id: "acme".into(),
                webhook_secret: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.webhook_secret, secret);
    let until = time::OffsetDateTime::parse(
        &rotated.previous_valid_until,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let grace = until - r.now();
    assert!(grace > time::Duration::hours(23) && grace <= time::Duration::hours(24));
    let keys: Vec<String> = r
        .shared
        .store
        .secrets(&Owner::tenant("acme"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(
        keys,
        ["api_key", "webhook_secret", "webhook_secret_previous"]
    );
    // A secret the tool generated (Zendesk's): stored, never sent back;
    // one that is too short or has whitespace is refused, naming it.
    for bad in ["short", "has a space in it 0123456789"] {
        let e = c
            .rotate_webhook_secret(as_(
                &r.admin,
                pb::RotateWebhookSecretRequest {
                    tenant_id: "acme".into(),
                    webhook_secret: Some(bad.into()),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::InvalidTenant);
        assert!(
            message(&e).starts_with("webhook_secret must"),
            "{}",
            message(&e)
        );
    }
    let brought = c
        .rotate_webhook_secret(as_(
            &r.admin,
            pb::RotateWebhookSecretRequest {
                tenant_id: "acme".into(),
                webhook_secret: Some("zendesk-signing-secret-0123456789".into()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(brought.webhook_secret, "[REDACTED]");
    let stored = r
        .shared
        .store
        .secrets(&Owner::tenant("acme"))
        .await
        .unwrap();
    let current = stored.iter().find(|s| s.key == "webhook_secret").unwrap();
    assert!(
        !current.encrypted_value.contains("zendesk-signing-secret"),
        "sealed"
    );
    // Delete is soft.
    let deleted = c
        .delete_tenant(as_(
            &r.admin,
            pb::TenantRequest {
                tenant_id: "acme".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!deleted.is_active);
    assert!(
        r.shared
            .store
            .tenant(&TenantId::parse("acme").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    // The audit trail: every action, by the admin, with field names only.
    let events: Vec<AuditEvent> = r
        .drain(AUDIT_TOPIC, SHORT)
        .await
        .iter()
        .map(|d| serde_json::from_slice(&d.payload).unwrap())
        .collect();
    let mut actions: Vec<&str> = events.iter().map(|e| e.tool_name.as_str()).collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "tenant.delete",
            "tenant.rotate_webhook_secret",
            "tenant.rotate_webhook_secret",
            "tenant.update"
        ]
    );
    for e in &events {
        assert_eq!(e.user_id, Some(r.admin_id));
        for plain in [&secret, &rotated.webhook_secret, "api-key-of-acme"] {
            assert!(!e.sanitized_input.contains(plain), "{}", e.sanitized_input);
        }
    }
    let update = events
        .iter()
        .find(|e| e.tool_name == "tenant.update")
        .unwrap();
    let details: serde_json::Value = serde_json::from_str(&update.sanitized_input).unwrap();
    assert_eq!(
        details,
        serde_json::json!({"tenant_id": "acme", "fields": ["name", "monthly_budget_micros"]})
    );
}

async fn validation_messages_name_the_field(backend: Backend) {
    let r = start(backend).await;
    let cases: Vec<(pb::CreateTenantRequest, &str)> = vec![
        (
            pb::CreateTenantRequest {
                tenant_id: "Not A Slug".into(),
                ..new_tenant("x")
            },
            "tenant_id must be 2 to 63 characters",
        ),
        (
            pb::CreateTenantRequest {
                name: String::new(),
                ..new_tenant("acme")
            },
            "name must be 1 to 200 characters",
        ),
        (
            pb::CreateTenantRequest {
                tool_type: "freshservice".into(),
                ..new_tenant("acme")
            },
            "Unknown tool_type 'freshservice'. Supported: servicedesk_plus, jira, zendesk.",
        ),
        (
            pb::CreateTenantRequest {
                servicedesk_url: "ftp://x".into(),
                ..new_tenant("acme")
            },
            "servicedesk_url must be an http or https URL",
        ),
        (
            pb::CreateTenantRequest {
                servicedesk_auth: "basic".into(),
                ..new_tenant("acme")
            },
            "servicedesk_auth must be one of: authtoken, zoho_oauth",
        ),
        (
            pb::CreateTenantRequest {
                api_key: String::new(),
                ..new_tenant("acme")
            },
            "api_key is required",
        ),
        (
            pb::CreateTenantRequest {
                api_key: "k".repeat(4097),
                ..new_tenant("acme")
            },
            "api_key must be at most 4096 bytes",
        ),
        (
            pb::CreateTenantRequest {
                kb_api_url: "kb".into(),
                ..new_tenant("acme")
            },
            "kb_api_url must be an http or https URL",
        ),
        (
            pb::CreateTenantRequest {
                enhancement_preferences: Some(pb::EnhancementPreferences {
                    max_words: 501,
                    ..Default::default()
                }),
                ..new_tenant("acme")
            },
            "enhancement_preferences.max_words must be between 1 and 500",
        ),
        (
            pb::CreateTenantRequest {
                enhancement_preferences: Some(pb::EnhancementPreferences {
                    sources: vec!["crystal_ball".into()],
                    ..Default::default()
                }),
                ..new_tenant("acme")
            },
            "enhancement_preferences.sources: unknown source 'crystal_ball'",
        ),
        (
            pb::CreateTenantRequest {
                enhancement_preferences: Some(pb::EnhancementPreferences {
                    note_format: "pdf".into(),
                    ..Default::default()
                }),
                ..new_tenant("acme")
            },
            "enhancement_preferences.note_format must be html or markdown",
        ),
        (
            pb::CreateTenantRequest {
                monthly_budget_micros: Some(-1),
                ..new_tenant("acme")
            },
            "monthly_budget_micros must be 0 or more",
        ),
    ];
    for (req, expected) in cases {
        let e = r.try_create(req).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::InvalidTenant, "{expected}");
        assert!(
            message(&e).starts_with(expected),
            "{} / {expected}",
            message(&e)
        );
    }
    assert!(r.shared.store.list_tenants().await.unwrap().is_empty());
    // Without a keyring nothing can be sealed: refused, naming the key.
    let mut shared = r.shared.clone();
    shared.keyring = None;
    let bare = start_on(shared, Options::default()).await;
    let e = bare.try_create(new_tenant("acme")).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::Unavailable);
    assert!(message(&e).contains("CSP_SECRET_KEY"), "{}", message(&e));
}

async fn a_signed_webhook_is_recorded_then_queued(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let accepted = r.new_ticket("acme", &secret, "1234").await.unwrap();
    assert_eq!(accepted.status, "queued");
    assert!(!accepted.duplicate);
    let job_id: uuid::Uuid = accepted.job_id.parse().unwrap();
    let job = r.shared.store.enhancement(job_id).await.unwrap().unwrap();
    assert_eq!(job.status, EnhancementStatus::Pending);
    assert_eq!(job.ticket_id, "1234");
    assert_eq!(job.correlation_id, "req-1");
    // Marked queued after the push, in the background (batched within
    // 100 ms), not before the answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let job = r.shared.store.enhancement(job_id).await.unwrap().unwrap();
        if job.queued_at.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never marked queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let messages = r.drain(ENHANCE_TOPIC, SHORT).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].id, accepted.job_id);
    let m: EnhanceJob = serde_json::from_slice(&messages[0].payload).unwrap();
    assert_eq!(m.job_id, job_id);
    assert_eq!(m.tenant_id.as_str(), "acme");
    // The seed path: no tenant in the URL, the payload's.
    let body = serde_json::to_vec(&serde_json::json!({"ticket_id": "99", "subject": "s",
        "description": "d", "priority": "Low", "tenant_id": "acme"}))
    .unwrap();
    let headers = r.signed(&secret, r.now().unix_timestamp(), &body);
    let seed = r
        .deliver("", pb::WebhookKind::New, &body, headers)
        .await
        .unwrap();
    assert_eq!(seed.status, "queued");
    // A resolved ticket goes to the history, no job.
    let body = serde_json::to_vec(&serde_json::json!({"ticket_id": "77", "description": "VPN drops",
        "resolution": "Renewed the certificate", "resolved_date": "2025-02-01T10:00:00Z", "tags": ["vpn"]}))
    .unwrap();
    let headers = r.signed(&secret, r.now().unix_timestamp(), &body);
    let stored = r
        .deliver("acme", pb::WebhookKind::Resolved, &body, headers)
        .await
        .unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.job_id.as_str()),
        ("stored", "")
    );
    let acme = TenantId::parse("acme").unwrap();
    let h = r
        .shared
        .store
        .ticket_history(&acme, "77")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.source, csp_domain::HistorySource::WebhookResolved);
    assert_eq!(h.ticket.resolution, "Renewed the certificate");
    assert_eq!(
        r.drain(ENHANCE_TOPIC, SHORT).await.len(),
        2,
        "no job for the resolved ticket"
    );
}

async fn bad_signatures_are_refused_and_recorded_as_security_events(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let other = r.create("other").await.webhook_secret;
    let body = ticket_body("1", "printer");
    let now = r.now().unix_timestamp();
    let cases = [
        ("wrong secret", r.signed("not-the-secret", now, &body)),
        ("another tenant's secret", r.signed(&other, now, &body)),
        ("stale by 301 s", r.signed(&secret, now - 301, &body)),
        (
            "from the future by 301 s",
            r.signed(&secret, now + 301, &body),
        ),
        ("no headers", Default::default()),
    ];
    for (what, headers) in cases {
        let e = r
            .deliver("acme", pb::WebhookKind::New, &body, headers)
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::WebhookSignatureInvalid, "{what}");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }
    // Within the tolerance it passes: the cases above fail for their reason.
    r.deliver(
        "acme",
        pb::WebhookKind::New,
        &body,
        r.signed(&secret, now - 299, &body),
    )
    .await
    .unwrap();
    let counts = r.shared.store.enhancement_counts().await.unwrap();
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 1);
    let denied: Vec<AuditEvent> = r
        .drain(AUDIT_TOPIC, SHORT)
        .await
        .iter()
        .map(|d| serde_json::from_slice::<AuditEvent>(&d.payload).unwrap())
        .filter(|e| e.tool_name == "tickets.webhook_signature_invalid")
        .collect();
    assert_eq!(denied.len(), 5);
    for e in &denied {
        assert_eq!(e.result_status, csp_domain::AuditStatus::Denied);
        let d: serde_json::Value = serde_json::from_str(&e.sanitized_input).unwrap();
        assert_eq!(d["tenant_id"], "acme");
        assert_eq!(d["source_addr"], "203.0.113.9:5555");
        assert!(!e.sanitized_input.contains(&secret));
        assert!(!e.sanitized_input.contains("sha256="));
    }
}

async fn unknown_and_inactive_tenants_get_the_same_answer(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let unknown = r.new_ticket("nobody", &secret, "1").await.unwrap_err();
    let malformed = r
        .new_ticket("NOT/A/TENANT", &secret, "1")
        .await
        .unwrap_err();
    r.client()
        .delete_tenant(as_(
            &r.admin,
            pb::TenantRequest {
                tenant_id: "acme".into(),
            },
        ))
        .await
        .unwrap();
    let inactive = r.new_ticket("acme", &secret, "1").await.unwrap_err();
    for e in [&unknown, &malformed, &inactive] {
        assert_eq!(code(e), ErrorCode::TenantNotFound);
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert_eq!(message(e), message(&unknown));
    }
    assert!(r.drain(ENHANCE_TOPIC, SHORT).await.is_empty());
}

async fn a_repeated_delivery_returns_the_first_job_and_queues_nothing_new(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let body = ticket_body("1234", "Outlook crashes");
    let headers = r.signed(&secret, r.now().unix_timestamp(), &body);
    let first = r
        .deliver("acme", pb::WebhookKind::New, &body, headers.clone())
        .await
        .unwrap();
    let again = r
        .deliver("acme", pb::WebhookKind::New, &body, headers)
        .await
        .unwrap();
    assert_eq!(again.job_id, first.job_id);
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(again.status, "queued");
    assert_eq!(r.drain(ENHANCE_TOPIC, SHORT).await.len(), 1);
}

async fn the_101st_webhook_in_a_minute_is_rate_limited(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let other = r.create("other").await.webhook_secret;
    for i in 0..100 {
        r.new_ticket("acme", &secret, &format!("t{i}"))
            .await
            .unwrap();
    }
    let e = r.new_ticket("acme", &secret, "t100").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::WebhookRateLimited);
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    let wait: u64 = e
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Forged deliveries are not counted: another tenant's budget is intact,
    // and bad signatures against it do not use it up.
    for _ in 0..150 {
        r.new_ticket("other", "forged", "x").await.unwrap_err();
    }
    r.new_ticket("other", &other, "o1").await.unwrap();
}

async fn oversized_and_invalid_payloads_are_refused_naming_the_field(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    let now = r.now().unix_timestamp();
    let long = ticket_body("1", &"a".repeat(10_001));
    let e = r
        .deliver(
            "acme",
            pb::WebhookKind::New,
            &long,
            r.signed(&secret, now, &long),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidWebhook);
    assert_eq!(message(&e), "description exceeds 10000 characters");
    let fits = ticket_body("1", &"a".repeat(10_000));
    r.deliver(
        "acme",
        pb::WebhookKind::New,
        &fits,
        r.signed(&secret, now, &fits),
    )
    .await
    .unwrap();
    let big = vec![b' '; 256 * 1024 + 1];
    let e = r
        .deliver(
            "acme",
            pb::WebhookKind::New,
            &big,
            r.signed(&secret, now, &big),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::PayloadTooLarge);
    let no_subject = serde_json::to_vec(
        &serde_json::json!({"ticket_id": "2", "description": "d", "priority": "P"}),
    )
    .unwrap();
    let e = r
        .deliver(
            "acme",
            pb::WebhookKind::New,
            &no_subject,
            r.signed(&secret, now, &no_subject),
        )
        .await
        .unwrap_err();
    assert_eq!(message(&e), "subject is required");
}

async fn the_previous_secret_is_accepted_within_the_grace_period_only(backend: Backend) {
    let r = start(backend).await;
    let old = r.create("acme").await.webhook_secret;
    let new = r
        .client()
        .rotate_webhook_secret(as_(
            &r.admin,
            pb::RotateWebhookSecretRequest {
                tenant_id: "acme".into(),
                webhook_secret: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .webhook_secret;
    r.new_ticket("acme", &old, "a").await.unwrap();
    r.new_ticket("acme", &new, "b").await.unwrap();
    r.shared.clock.advance(Duration::from_secs(24 * 3600 - 60));
    r.new_ticket("acme", &old, "c").await.unwrap();
    r.shared.clock.advance(Duration::from_secs(120));
    let e = r.new_ticket("acme", &old, "d").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::WebhookSignatureInvalid);
    r.new_ticket("acme", &new, "e").await.unwrap();
}

async fn the_sweeper_queues_a_job_recorded_but_never_queued(backend: Backend) {
    let shared = Shared::new(backend).await;
    let r = start_on(
        shared,
        Options {
            sweep_every: Duration::from_millis(50),
            ..Options::default()
        },
    )
    .await;
    r.create("acme").await;
    let job_id = uuid::Uuid::new_v4();
    // As if the service died between the commit and the push.
    r.shared
        .store
        .record_enhancement(NewEnhancement {
            job_id,
            tenant_id: TenantId::parse("acme").unwrap(),
            ticket_id: "42".into(),
            delivery_key: "k".repeat(64),
            subject: "s".into(),
            description: "d".into(),
            priority: "High".into(),
            correlation_id: "c-42".into(),
        })
        .await
        .unwrap();
    // Too young: an intake may still be pushing it.
    assert!(r.drain(ENHANCE_TOPIC, SHORT).await.is_empty());
    r.shared.clock.advance(Duration::from_secs(6));
    let messages = r.drain(ENHANCE_TOPIC, Duration::from_secs(2)).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].id, job_id.to_string());
    let job = r.shared.store.enhancement(job_id).await.unwrap().unwrap();
    assert!(job.queued_at.is_some());
}

async fn a_change_on_one_replica_reaches_the_other_before_the_ttl(backend: Backend) {
    let shared = Shared::new(backend).await;
    let a = start_on(shared.clone(), Options::default()).await;
    let b = start_on(shared.clone(), Options::default()).await;
    let secret = a.create("acme").await.webhook_secret;
    // B loads and caches the tenant.
    b.new_ticket("acme", &secret, "1").await.unwrap();
    // A change behind the service's back is not seen: B really caches
    // (so the next step can fail).
    shared
        .store
        .update_tenant(
            &TenantId::parse("acme").unwrap(),
            TenantUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.new_ticket("acme", &secret, "2").await.unwrap();
    shared
        .store
        .update_tenant(
            &TenantId::parse("acme").unwrap(),
            TenantUpdate {
                is_active: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Through A's API, B sees it at once, well before the 5-minute TTL.
    a.client()
        .delete_tenant(as_(
            &a.admin,
            pb::TenantRequest {
                tenant_id: "acme".into(),
            },
        ))
        .await
        .unwrap();
    let e = b.new_ticket("acme", &secret, "3").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::TenantNotFound);
    a.client()
        .update_tenant(as_(
            &a.admin,
            pb::UpdateTenantRequest {
                tenant_id: "acme".into(),
                is_active: Some(true),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let rotated = a
        .client()
        .rotate_webhook_secret(as_(
            &a.admin,
            pb::RotateWebhookSecretRequest {
                tenant_id: "acme".into(),
                webhook_secret: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .webhook_secret;
    b.new_ticket("acme", &rotated, "4").await.unwrap();
}

async fn history_paging_filters_and_the_pause_flag(backend: Backend) {
    let r = start(backend).await;
    let secret = r.create("acme").await.webhook_secret;
    for i in 0..55 {
        r.new_ticket("acme", &secret, &format!("t{i}"))
            .await
            .unwrap();
    }
    let mut c = r.client();
    let page = |n: u32, q: &str| pb::ListEnhancementsRequest {
        tenant_id: "acme".into(),
        q: q.into(),
        page: n,
        ..Default::default()
    };
    let p1 = c
        .list_enhancements(as_(&r.operator, page(1, "")))
        .await
        .unwrap()
        .into_inner();
    let p2 = c
        .list_enhancements(as_(&r.operator, page(2, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (p1.enhancements.len(), p2.enhancements.len(), p1.total),
        (50, 5, 55)
    );
    assert_eq!(p1.per_page, 50);
    let mut ids: Vec<&str> = p1
        .enhancements
        .iter()
        .chain(&p2.enhancements)
        .map(|e| e.job_id.as_str())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 55, "stable paging: no job twice");
    let found = c
        .list_enhancements(as_(&r.operator, page(1, "t7")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.total, 1);
    assert_eq!(found.enhancements[0].ticket_id, "t7");
    let e = c
        .list_enhancements(as_(
            &r.operator,
            pb::ListEnhancementsRequest {
                status: "done".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    let job = c
        .get_enhancement(as_(
            &r.operator,
            pb::GetEnhancementRequest {
                job_id: found.enhancements[0].job_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (job.status.as_str(), job.tenant_id.as_str()),
        ("pending", "acme")
    );
    let e = c
        .get_enhancement(as_(
            &r.operator,
            pb::GetEnhancementRequest {
                job_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::EnhancementNotFound);
    let state = c
        .get_processing(as_(&r.operator, pb::GetProcessingRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((state.paused, state.queue_depth), (false, 55));
    let state = c
        .set_processing(as_(&r.admin, pb::SetProcessingRequest { paused: true }))
        .await
        .unwrap()
        .into_inner();
    assert!(state.paused);
    assert!(r.shared.store.processing_paused().await.unwrap());
    let audited = r.drain(AUDIT_TOPIC, SHORT).await.iter().any(|d| {
        serde_json::from_slice::<AuditEvent>(&d.payload)
            .unwrap()
            .tool_name
            == "tickets.pause"
    });
    assert!(audited);
}

async fn context_uploads_are_checked_and_upserted(backend: Backend) {
    let r = start(backend).await;
    r.create("acme").await;
    let mut c = r.client();
    let article = |url: &str| pb::KbArticle {
        title: "Reset VPN".into(),
        summary: "certificate".into(),
        url: url.into(),
        body: "steps".into(),
    };
    let n = c
        .upsert_kb_articles(as_(
            &r.admin,
            pb::UpsertKbArticlesRequest {
                tenant_id: "acme".into(),
                articles: vec![
                    article("https://kb.example/1"),
                    article("https://kb.example/2"),
                ],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .upserted;
    assert_eq!(n, 2);
    let e = c
        .upsert_kb_articles(as_(
            &r.admin,
            pb::UpsertKbArticlesRequest {
                tenant_id: "acme".into(),
                articles: vec![article("kb/1")],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(message(&e), "articles[0].url must be an http or https URL");
    let system = |ip: &str| pb::SystemInfo {
        ip: ip.into(),
        hostname: "db01".into(),
        role: "database".into(),
        client: "Acme".into(),
        location: "DC1".into(),
    };
    c.upsert_inventory(as_(
        &r.admin,
        pb::UpsertInventoryRequest {
            tenant_id: "acme".into(),
            systems: vec![system("10.0.0.5"), system("2001:db8::1")],
        },
    ))
    .await
    .unwrap();
    let found = r
        .shared
        .store
        .systems_by_ip(
            &TenantId::parse("acme").unwrap(),
            &["10.0.0.5".parse().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(found[0].hostname, "db01");
    let e = c
        .upsert_inventory(as_(
            &r.admin,
            pb::UpsertInventoryRequest {
                tenant_id: "acme".into(),
                systems: vec![system("10.0.0.999")],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(message(&e), "systems[0].ip must be an IPv4 or IPv6 address");
    let e = c
        .upsert_inventory(as_(
            &r.admin,
            pb::UpsertInventoryRequest {
                tenant_id: "nobody".into(),
                systems: vec![system("10.0.0.5")],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::TenantNotFound);
}

csp_store::backend_tests!(
    #[tokio::test(flavor = "multi_thread")]
    every_rpc_admits_exactly_the_roles_it_names,
    feedback_links_record_a_vote_per_click_and_refuse_what_csp_did_not_sign,
    the_feedback_summary_counts_each_tenants_votes_of_the_last_thirty_days,
    without_a_secret_key_feedback_links_are_unavailable,
    clearing_the_queue_fails_every_pending_job_and_is_audited,
    reloading_configs_reaches_every_replica_and_is_audited,
    only_a_failed_job_is_retried_queued_again_and_audited,
    pausing_and_resuming_are_audited_by_name,
    the_export_streams_every_matching_job_in_pages,
    tenants_are_created_read_updated_deleted_and_rotated_without_showing_secrets,
    validation_messages_name_the_field,
    a_signed_webhook_is_recorded_then_queued,
    a_dedicated_tenants_jobs_go_to_its_own_queue,
    bad_signatures_are_refused_and_recorded_as_security_events,
    unknown_and_inactive_tenants_get_the_same_answer,
    a_repeated_delivery_returns_the_first_job_and_queues_nothing_new,
    the_101st_webhook_in_a_minute_is_rate_limited,
    oversized_and_invalid_payloads_are_refused_naming_the_field,
    the_previous_secret_is_accepted_within_the_grace_period_only,
    the_sweeper_queues_a_job_recorded_but_never_queued,
    a_change_on_one_replica_reaches_the_other_before_the_ttl,
    history_paging_filters_and_the_pause_flag,
    context_uploads_are_checked_and_upserted,
    jira_and_zendesk_tenants_keep_their_fields_and_seal_their_tokens,
    a_servicedesk_plus_tenant_stored_before_other_tools_reads_and_tests_as_it_did,
    servicedesk_plus_connection_tests_say_what_failed,
    jira_and_zendesk_connection_tests_use_their_fakes,
    admins_grant_list_and_revoke_tenants_and_every_change_is_audited,
    chat_tenants_are_every_active_one_for_admins_and_the_granted_ones_for_others,
    chat_tools_read_only_a_tenant_the_user_may_see_now,
    chat_tool_input_is_checked_naming_the_field,
    kb_and_ip_lookups_answer_the_sessions_tenant_only,
    tickets_are_read_and_notes_posted_through_the_tenants_tool,
    text_for_the_model_is_redacted_and_masked_when_the_tenant_asks,
    the_dashboard_counts_the_last_day_and_states_the_first_reason,
    without_prometheus_the_charts_come_from_the_history,
    with_prometheus_the_charts_are_its_series_and_stale_ones_say_so,
    a_prometheus_url_that_is_not_http_is_refused_at_start,
    a_worker_that_stopped_heartbeating_is_unresponsive_and_not_counted,
    workers_are_listed_from_their_heartbeats,
    a_workers_log_lines_are_read_at_least_at_the_asked_level,
    a_workers_throughput_is_its_jobs_per_hour_over_seven_days,
    an_admin_restarts_a_worker_through_a_command_it_reads_and_it_is_audited,
    tool_types_come_from_the_connector_registry,
    an_import_runs_in_the_background_and_reports_its_progress,
    a_failed_import_says_why,
    one_import_per_tenant_at_a_time_seen_from_every_replica,
    an_edit_is_tested_with_the_stored_secrets,
);
