//! Tenants of every tool (Jira, Zendesk beside ServiceDesk Plus) and the
//! connection test, against the fakes of `csp-mock-ticketing`.

use crate::helpers::*;
use csp_domain::{AUDIT_TOPIC, AuditEvent, ErrorCode, TenantId};
use csp_mock_ticketing::{
    MockJira, MockSdp, MockZendesk, RunningJira, RunningMock, RunningZendesk,
};
use csp_proto::v1 as pb;
use csp_store::test_support::Backend;
use csp_store::{NewTenant, Owner, StoredSecret};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::time::Duration;

const JIRA_TOKEN: &str = "jira-token-Zk3v9Qw7";
const ZENDESK_TOKEN: &str = "zd-token-Pq8x2Lm5";
const SDP_KEY: &str = "sdp-key-Hy4n6Rt1";

fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn jira_fields(url: &str) -> HashMap<String, String> {
    fields(&[
        ("jira_url", url),
        ("jira_email", "bot@globex.example"),
        ("jira_api_token", JIRA_TOKEN),
        ("jira_project_key", "SUP"),
    ])
}

fn zendesk_fields(url: &str) -> HashMap<String, String> {
    fields(&[
        ("zendesk_subdomain", "initech"),
        ("zendesk_email", "bot@initech.example"),
        ("zendesk_api_token", ZENDESK_TOKEN),
        ("zendesk_url", url),
    ])
}

/// A create request for `tool` with only tool fields (no legacy ones).
fn tenant_of(
    id: &str,
    tool: &str,
    tool_fields: HashMap<String, String>,
) -> pb::CreateTenantRequest {
    pb::CreateTenantRequest {
        tool_type: tool.into(),
        servicedesk_url: String::new(),
        api_key: String::new(),
        tool_fields,
        ..new_tenant(id)
    }
}

impl Running {
    async fn sealed(&self, id: &str) -> Vec<StoredSecret> {
        self.shared.store.secrets(&Owner::tenant(id)).await.unwrap()
    }

    /// The plaintext of the tenant's secret `key`, opened with the test's
    /// keyring: proof that it is stored sealed under that name.
    async fn opened(&self, id: &str, key: &str) -> String {
        let s = self
            .sealed(id)
            .await
            .into_iter()
            .find(|s| s.key == key)
            .unwrap_or_else(|| panic!("no sealed {key}"));
        let plain = self
            .shared
            .keyring
            .as_ref()
            .unwrap()
            .open(&csp_secrets::Sealed {
                token: s.encrypted_value,
                key_version: s.encryption_key_version,
            })
            .unwrap();
        plain.expose_secret().to_owned()
    }

    async fn update(&self, r: pb::UpdateTenantRequest) -> Result<pb::Tenant, tonic::Status> {
        self.client()
            .update_tenant(as_(&self.admin, r))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get(&self, id: &str) -> pb::Tenant {
        self.client()
            .get_tenant(as_(
                &self.admin,
                pb::TenantRequest {
                    tenant_id: id.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn test(
        &self,
        target: pb::test_connection_request::Target,
    ) -> Result<pb::TestConnectionResult, tonic::Status> {
        self.client()
            .test_connection(as_(
                &self.admin,
                pb::TestConnectionRequest {
                    target: Some(target),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn test_saved(&self, id: &str) -> pb::TestConnectionResult {
        self.test(pb::test_connection_request::Target::TenantId(id.into()))
            .await
            .unwrap()
    }

    async fn test_unsaved(&self, settings: pb::ConnectionSettings) -> pb::TestConnectionResult {
        self.test(pb::test_connection_request::Target::Settings(settings))
            .await
            .unwrap()
    }
}

fn unsaved(tool: &str, tool_fields: HashMap<String, String>) -> pb::ConnectionSettings {
    pb::ConnectionSettings {
        tool_type: tool.into(),
        tool_fields,
        ..Default::default()
    }
}

fn with(mut f: HashMap<String, String>, key: &str, value: &str) -> HashMap<String, String> {
    f.insert(key.into(), value.into());
    f
}

/// An address where nothing listens.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// A failed test whose reason starts with `reason` and holds none of
/// `secrets`.
#[track_caller]
fn failed(result: &pb::TestConnectionResult, reason: &str, secrets: &[&str]) {
    assert!(!result.ok, "{result:?}");
    assert!(
        result.reason.starts_with(reason),
        "{:?} / {reason}",
        result.reason
    );
    for s in secrets {
        assert!(
            !result.reason.contains(s),
            "{:?} shows a secret",
            result.reason
        );
    }
}

pub(crate) async fn jira_and_zendesk_tenants_keep_their_fields_and_seal_their_tokens(
    backend: Backend,
) {
    let r = start(backend).await;
    // Jira: the plain fields stored by name, the token sealed under its own.
    let created = r
        .try_create(tenant_of(
            "globex",
            "jira",
            with(
                jira_fields("https://globex.atlassian.net"),
                "jira_issue_type",
                "Incident",
            ),
        ))
        .await
        .unwrap();
    let t = created.tenant.unwrap();
    assert_eq!(t.tool_type, "jira");
    assert_eq!(t.webhook_path, "/webhook/jira/globex");
    assert_eq!(
        t.tool_settings,
        fields(&[
            ("jira_url", "https://globex.atlassian.net"),
            ("jira_email", "bot@globex.example"),
            ("jira_project_key", "SUP"),
            ("jira_issue_type", "Incident"),
        ])
    );
    assert_eq!(t.secrets_set, ["jira_api_token"]);
    assert!(!t.api_key_set);
    assert_eq!(
        (t.servicedesk_url.as_str(), t.servicedesk_auth.as_str()),
        ("", "")
    );
    let record = r
        .shared
        .store
        .tenant(&TenantId::parse("globex").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.tool_type, "jira");
    assert_eq!(
        record.settings,
        serde_json::json!({
            "jira_url": "https://globex.atlassian.net", "jira_email": "bot@globex.example",
            "jira_project_key": "SUP", "jira_issue_type": "Incident",
        })
    );
    let keys: Vec<String> = r
        .sealed("globex")
        .await
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(keys, ["jira_api_token", "webhook_secret"]);
    for s in r.sealed("globex").await {
        assert!(!s.encrypted_value.contains(JIRA_TOKEN));
    }
    assert_eq!(r.opened("globex", "jira_api_token").await, JIRA_TOKEN);
    let got = r.get("globex").await;
    assert_eq!(got.tool_settings, t.tool_settings);
    assert_eq!(got.secrets_set, ["jira_api_token"]);
    assert!(!format!("{got:?}").contains(JIRA_TOKEN));

    // Update: a field, the token sent back redacted (kept), an optional
    // field cleared, kb_api_url beside them.
    let before = r.sealed("globex").await;
    let updated = r
        .update(pb::UpdateTenantRequest {
            tenant_id: "globex".into(),
            tool_type: Some("jira".into()),
            tool_fields: fields(&[
                ("jira_project_key", "OPS"),
                ("jira_issue_type", ""),
                ("jira_api_token", "[REDACTED]"),
            ]),
            kb_api_url: Some("https://kb.globex.example".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.tool_settings["jira_project_key"], "OPS");
    assert!(!updated.tool_settings.contains_key("jira_issue_type"));
    assert_eq!(updated.kb_api_url, "https://kb.globex.example");
    assert_eq!(r.sealed("globex").await, before, "the token is kept");
    r.update(pb::UpdateTenantRequest {
        tenant_id: "globex".into(),
        tool_fields: fields(&[("jira_api_token", "jira-token-new")]),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(r.opened("globex", "jira_api_token").await, "jira-token-new");
    for (req, want) in [
        (
            pb::UpdateTenantRequest {
                tool_type: Some("zendesk".into()),
                ..Default::default()
            },
            "tool_type cannot be changed (this tenant's is jira): create a new tenant for another tool",
        ),
        (
            pb::UpdateTenantRequest {
                servicedesk_url: Some("https://sdp.example".into()),
                ..Default::default()
            },
            "servicedesk_url is not a field of jira tenants",
        ),
        (
            pb::UpdateTenantRequest {
                tool_fields: fields(&[("jira_project_key", "not a key")]),
                ..Default::default()
            },
            "jira_project_key must be 2 to 10 characters",
        ),
    ] {
        let e = r
            .update(pb::UpdateTenantRequest {
                tenant_id: "globex".into(),
                ..req
            })
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::InvalidTenant, "{want}");
        assert!(message(&e).starts_with(want), "{}", message(&e));
    }

    // Zendesk.
    let t = r
        .try_create(tenant_of(
            "initech",
            "zendesk",
            zendesk_fields("https://initech.example/zendesk"),
        ))
        .await
        .unwrap()
        .tenant
        .unwrap();
    assert_eq!(
        t.tool_settings,
        fields(&[
            ("zendesk_subdomain", "initech"),
            ("zendesk_email", "bot@initech.example"),
            ("zendesk_url", "https://initech.example/zendesk"),
        ])
    );
    assert_eq!(t.secrets_set, ["zendesk_api_token"]);
    assert_eq!(
        r.opened("initech", "zendesk_api_token").await,
        ZENDESK_TOKEN
    );
    let e = r
        .try_create(tenant_of(
            "hooli",
            "zendesk",
            with(zendesk_fields(""), "zendesk_subdomain", "Hooli Inc"),
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidTenant);
    assert!(
        message(&e).starts_with("zendesk_subdomain must match"),
        "{}",
        message(&e)
    );
    let e = r
        .try_create(tenant_of("hooli", "freshservice", HashMap::new()))
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "Unknown tool_type 'freshservice'. Supported: servicedesk_plus, jira, zendesk."
    );

    // The audit rows name the fields, never a token.
    let events: Vec<AuditEvent> = r
        .drain(AUDIT_TOPIC, Duration::from_millis(300))
        .await
        .iter()
        .map(|d| serde_json::from_slice(&d.payload).unwrap())
        .collect();
    for e in &events {
        for token in [JIRA_TOKEN, "jira-token-new", ZENDESK_TOKEN] {
            assert!(!e.sanitized_input.contains(token), "{}", e.sanitized_input);
        }
    }
    let create = events
        .iter()
        .find(|e| e.tool_name == "tenant.create" && e.sanitized_input.contains("globex"))
        .unwrap();
    let details: serde_json::Value = serde_json::from_str(&create.sanitized_input).unwrap();
    assert_eq!(
        details["fields"],
        serde_json::json!([
            "name",
            "tool_type",
            "jira_url",
            "jira_email",
            "jira_api_token",
            "jira_project_key",
            "jira_issue_type",
            "webhook_secret",
            "enhancement_preferences"
        ])
    );
}

pub(crate) async fn a_servicedesk_plus_tenant_stored_before_other_tools_reads_and_tests_as_it_did(
    backend: Backend,
) {
    let r = start(backend).await;
    let sdp = RunningMock::start(MockSdp::builder().authtoken(SDP_KEY).build())
        .await
        .unwrap();
    // A row as the service wrote it before there were other tools.
    let sealed = r.shared.keyring.as_ref().unwrap().seal(SDP_KEY);
    r.shared
        .store
        .create_tenant(NewTenant {
            tenant_id: TenantId::parse("acme").unwrap(),
            name: "Acme".into(),
            tool_type: "servicedesk_plus".into(),
            settings: serde_json::json!({
                "servicedesk_url": sdp.base_url(), "servicedesk_auth": "authtoken",
                "kb_api_url": "https://kb.acme.example",
            }),
            preferences: serde_json::json!({}),
            monthly_budget_micros: None,
            dedicated_queue: false,
            secrets: vec![StoredSecret {
                key: "api_key".into(),
                encrypted_value: sealed.token,
                encryption_key_version: sealed.key_version,
            }],
        })
        .await
        .unwrap();
    let t = r.get("acme").await;
    assert_eq!(t.servicedesk_url, sdp.base_url());
    assert_eq!(t.servicedesk_auth, "authtoken");
    assert!(t.api_key_set);
    assert_eq!(t.kb_api_url, "https://kb.acme.example");
    assert_eq!(
        t.tool_settings,
        fields(&[
            ("servicedesk_url", &sdp.base_url()),
            ("servicedesk_auth", "authtoken")
        ])
    );
    assert_eq!(t.secrets_set, ["api_key"]);
    assert!(r.test_saved("acme").await.ok);
    // Updated through the legacy fields, its shape stays.
    r.update(pb::UpdateTenantRequest {
        tenant_id: "acme".into(),
        servicedesk_auth: Some("zoho_oauth".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let record = r
        .shared
        .store
        .tenant(&TenantId::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.settings,
        serde_json::json!({
            "servicedesk_url": sdp.base_url(), "servicedesk_auth": "zoho_oauth",
            "kb_api_url": "https://kb.acme.example",
        })
    );
    // The fake takes the key only as an authtoken.
    failed(
        &r.test_saved("acme").await,
        "ServiceDesk Plus rejected the API key or token",
        &[SDP_KEY],
    );
}

pub(crate) async fn servicedesk_plus_connection_tests_say_what_failed(backend: Backend) {
    let r = start(backend).await;
    let sdp = RunningMock::start(MockSdp::builder().authtoken(SDP_KEY).build())
        .await
        .unwrap();
    let legacy = |url: &str, key: &str| pb::ConnectionSettings {
        tool_type: "servicedesk_plus".into(),
        servicedesk_url: url.into(),
        api_key: key.into(),
        ..Default::default()
    };
    let wrong = "sdp-wrong-Vb7c3Xz9";
    assert_eq!(
        r.test_unsaved(legacy(&sdp.base_url(), SDP_KEY)).await,
        pb::TestConnectionResult {
            ok: true,
            reason: String::new()
        }
    );
    // Through tool_fields too.
    let through_fields = unsaved(
        "servicedesk_plus",
        fields(&[("servicedesk_url", &sdp.base_url()), ("api_key", SDP_KEY)]),
    );
    assert!(r.test_unsaved(through_fields).await.ok);
    failed(
        &r.test_unsaved(legacy(&sdp.base_url(), wrong)).await,
        "ServiceDesk Plus rejected the API key or token",
        &[wrong],
    );
    failed(
        &r.test_unsaved(legacy(&format!("{}/nothing-here", sdp.base_url()), SDP_KEY))
            .await,
        "no ServiceDesk Plus API v3 at this URL",
        &[SDP_KEY],
    );
    failed(
        &r.test_unsaved(legacy(&closed_port(), SDP_KEY)).await,
        "ServiceDesk Plus could not be reached",
        &[SDP_KEY],
    );
    let https = sdp.base_url().replace("http://", "https://");
    failed(
        &r.test_unsaved(legacy(&https, SDP_KEY)).await,
        "the TLS connection to ServiceDesk Plus failed",
        &[SDP_KEY],
    );
    // Settings that do not validate: the field's message, nothing tried.
    failed(
        &r.test_unsaved(legacy("sdp.example", SDP_KEY)).await,
        "servicedesk_url must be an http or https URL",
        &[SDP_KEY],
    );
    failed(
        &r.test_unsaved(legacy(&sdp.base_url(), "")).await,
        "api_key is required",
        &[],
    );
    failed(
        &r.test_unsaved(unsaved("remedy", HashMap::new())).await,
        "Unknown tool_type 'remedy'. Supported: servicedesk_plus, jira, zendesk.",
        &[],
    );
    // A saved tenant: its stored key, opened for the call.
    r.try_create(pb::CreateTenantRequest {
        servicedesk_url: sdp.base_url(),
        api_key: SDP_KEY.into(),
        ..new_tenant("acme")
    })
    .await
    .unwrap();
    assert!(r.test_saved("acme").await.ok);
    r.update(pb::UpdateTenantRequest {
        tenant_id: "acme".into(),
        api_key: Some(wrong.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    failed(
        &r.test_saved("acme").await,
        "ServiceDesk Plus rejected the API key or token",
        &[wrong],
    );
    // Who may ask, and about what.
    let e = r
        .test(pb::test_connection_request::Target::TenantId(
            "nobody".into(),
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::TenantNotFound);
    let e = r
        .client()
        .test_connection(as_(&r.admin, pb::TestConnectionRequest { target: None }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);
    for token in [&r.operator, &r.user] {
        let e = r
            .client()
            .test_connection(as_(
                token,
                pb::TestConnectionRequest {
                    target: Some(pb::test_connection_request::Target::TenantId("acme".into())),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(code(&e), ErrorCode::PermissionDenied);
    }
    // Audited with the outcome, never the key.
    let events: Vec<AuditEvent> = r
        .drain(AUDIT_TOPIC, Duration::from_millis(300))
        .await
        .iter()
        .map(|d| serde_json::from_slice(&d.payload).unwrap())
        .filter(|e: &AuditEvent| e.tool_name == "tenant.test_connection")
        .collect();
    assert_eq!(events.len(), 11, "one per test answered");
    for e in &events {
        assert_eq!(e.user_id, Some(r.admin_id));
        for secret in [SDP_KEY, wrong] {
            assert!(!e.sanitized_input.contains(secret), "{}", e.sanitized_input);
        }
    }
    assert!(events.iter().any(|e| {
        e.sanitized_input == r#"{"ok":true,"tenant_id":"acme"}"#
            || e.sanitized_input == r#"{"tenant_id":"acme","ok":true}"#
    }));
}

pub(crate) async fn jira_and_zendesk_connection_tests_use_their_fakes(backend: Backend) {
    let r = start(backend).await;
    let jira = RunningJira::start(
        MockJira::builder()
            .account("bot@globex.example", JIRA_TOKEN)
            .build(),
    )
    .await
    .unwrap();
    let zendesk = RunningZendesk::start(
        MockZendesk::builder()
            .credential("bot@initech.example", ZENDESK_TOKEN)
            .build(),
    )
    .await
    .unwrap();
    let wrong = "wrong-token-Ja8s7Df6";

    // Jira: the project is read with the account's token.
    assert!(
        r.test_unsaved(unsaved("jira", jira_fields(&jira.base_url())))
            .await
            .ok
    );
    failed(
        &r.test_unsaved(unsaved(
            "jira",
            with(jira_fields(&jira.base_url()), "jira_api_token", wrong),
        ))
        .await,
        "Jira rejected the e-mail or API token",
        &[wrong, JIRA_TOKEN],
    );
    failed(
        &r.test_unsaved(unsaved(
            "jira",
            with(jira_fields(&jira.base_url()), "jira_project_key", "NOPE"),
        ))
        .await,
        "Jira project 'NOPE' not found",
        &[JIRA_TOKEN],
    );
    failed(
        &r.test_unsaved(unsaved("jira", jira_fields(&closed_port())))
            .await,
        "Jira could not be reached",
        &[JIRA_TOKEN],
    );
    failed(
        &r.test_unsaved(unsaved(
            "jira",
            with(jira_fields(&jira.base_url()), "jira_project_key", "sup"),
        ))
        .await,
        "jira_project_key must be 2 to 10 characters",
        &[JIRA_TOKEN],
    );
    r.try_create(tenant_of("globex", "jira", jira_fields(&jira.base_url())))
        .await
        .unwrap();
    assert!(r.test_saved("globex").await.ok);

    // Zendesk: the API user behind the e-mail and token.
    assert!(
        r.test_unsaved(unsaved("zendesk", zendesk_fields(&zendesk.base_url())))
            .await
            .ok
    );
    failed(
        &r.test_unsaved(unsaved(
            "zendesk",
            with(
                zendesk_fields(&zendesk.base_url()),
                "zendesk_api_token",
                wrong,
            ),
        ))
        .await,
        "Zendesk rejected the e-mail or API token",
        &[wrong, ZENDESK_TOKEN],
    );
    failed(
        &r.test_unsaved(unsaved("zendesk", zendesk_fields(&closed_port())))
            .await,
        "Zendesk could not be reached",
        &[ZENDESK_TOKEN],
    );
    r.try_create(tenant_of(
        "initech",
        "zendesk",
        zendesk_fields(&zendesk.base_url()),
    ))
    .await
    .unwrap();
    assert!(r.test_saved("initech").await.ok);
    r.update(pb::UpdateTenantRequest {
        tenant_id: "initech".into(),
        tool_fields: fields(&[("zendesk_api_token", wrong)]),
        ..Default::default()
    })
    .await
    .unwrap();
    failed(
        &r.test_saved("initech").await,
        "Zendesk rejected the e-mail or API token",
        &[wrong],
    );
}
